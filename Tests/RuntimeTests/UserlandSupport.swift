// The CheriBSD tools (capv, clocks, ...) built next to colo, run the way a user runs them.
import Foundation
import Glibc
import Testing

/// The CheriBSD tools (capv, clocks, ...) built next to colo, run the way a
/// user runs them: by name, from a shell whose PATH holds the build tree.
enum Tools {
    static let binDir = URL(fileURLWithPath: Run.colo).deletingLastPathComponent().path

    /// Path of tool `name` in the build tree.
    static func path(_ name: String) -> String { binDir + "/" + name }

    /// PATH with the build tree first.
    static var searchPath: String { binDir + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin") }

    /// `env PATH=... [VAR=value ...] argv...`: run with the tools in PATH.
    static func argv(_ argv: [String], env: [String] = []) -> [String] {
        ["/usr/bin/env", "PATH=" + searchPath] + env + argv
    }

    /// Run a tool (or any command) from the plain test process, to completion.
    static func run(_ argv: [String], env: [String] = [], timeout: Double = 60) throws -> Run.Result {
        try Run.capture(Self.argv(argv, env: env), timeout: timeout)
    }

    /// `sh -c SCRIPT` with the tools in PATH.
    static func sh(_ script: String, env: [String] = [], timeout: Double = 60) throws -> Run.Result {
        try run(["sh", "-c", script], env: env, timeout: timeout)
    }

    /// Start a tool in the background (stdout read line by line).
    static func start(_ argv: [String], env: [String] = []) throws -> Background {
        try Background(Self.argv(argv, env: env))
    }
}

/// The lines of `text` that match `pattern` entirely (NSRegularExpression).
func lines(_ text: String, matching pattern: String) -> [[String]] {
    let re = try! NSRegularExpression(pattern: "^" + pattern + "$")
    var out = [[String]]()
    for line in text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
        let ns = line as NSString
        guard let m = re.firstMatch(in: line, range: NSRange(location: 0, length: ns.length)) else { continue }
        out.append((0..<m.numberOfRanges).map { m.range(at: $0).location == NSNotFound ? "" : ns.substring(with: m.range(at: $0)) })
    }
    return out
}

/// Does `text` have a line matching `pattern` entirely?
func hasLine(_ text: String, _ pattern: String) -> Bool { !lines(text, matching: pattern).isEmpty }

/// The usage text of a tool as its usage() prints it.
func usageText(_ lines: [String]) -> String {
    lines.enumerated().map { ($0.offset == 0 ? "usage: " : "       ") + $0.element + "\n" }.joined()
}

extension Guests {
    /// A guest linked with every source of the guest library, capsicum.c
    /// (cap_enter) included: static-pie glibc with threads.
    static func buildWithGuestLibrary(_ name: String) throws -> String {
        lock.lock(); defer { lock.unlock() }
        let key = "\(name)-guest-library"
        if let p = built[key] { return p }
        let out = buildDir + "/" + key
        let api = sourceDir.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Sources/GuestAPI").path
        let r = try Run.capture(["cc", "-O1", "-static-pie", "-pthread", "-I", api + "/include", "-I", api + "/../ABI/include",
                                 sourceDir.appendingPathComponent("\(name).c").path,
                                 api + "/colo.c", api + "/syscall.c", api + "/capsicum.c", "-o", out])
        guard r.status == 0 else { throw TestFailure("building \(key) failed: \(r.stderr)") }
        built[key] = out
        return out
    }
}
