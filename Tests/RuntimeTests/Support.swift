import Foundation
import Glibc

/// Builds the C guest programs once per test run and runs `colo` on them.
enum Guests {
    /// The guest variants every colocation test runs against.
    enum Variant: String, CaseIterable, Sendable {
        case staticGlibc = "static-glibc", staticMusl = "static-musl", dynamicGlibc = "dynamic-glibc"
    }

    static let sourceDir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Guests")
    static let buildDir: String = {
        let d = NSTemporaryDirectory() + "colo-guests-\(getpid())"
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }()

    /// Kernel headers for musl-gcc, which has none of its own.
    static let muslHeaders: String = {
        let d = buildDir + "/kh"
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        for (n, t) in [("linux", "/usr/include/linux"), ("asm-generic", "/usr/include/asm-generic"),
                       ("asm", "/usr/include/x86_64-linux-gnu/asm")] {
            try? FileManager.default.createSymbolicLink(atPath: d + "/" + n, withDestinationPath: t)
        }
        return d
    }()

    nonisolated(unsafe) static var built = [String: String]()
    static let lock = NSLock()

    /// Path of the probe guest built as `variant`.
    static func probe(_ variant: Variant = .staticGlibc) throws -> String {
        try build("probe", variant)
    }

    static func build(_ name: String, _ variant: Variant) throws -> String {
        lock.lock(); defer { lock.unlock() }
        let key = "\(name)-\(variant.rawValue)"
        if let p = built[key] { return p }
        let out = buildDir + "/" + key
        let src = sourceDir.appendingPathComponent("\(name).c").path
        let cmd: [String]
        switch variant {
        case .staticGlibc: cmd = ["cc", "-O1", "-static-pie", src, "-o", out]
        case .dynamicGlibc: cmd = ["cc", "-O1", "-fPIE", "-pie", src, "-o", out]
        case .staticMusl: cmd = ["musl-gcc", "-O1", "-I", muslHeaders, "-static-pie", src, "-o", out]
        }
        let r = try Run.capture(cmd)
        guard r.status == 0 else { throw TestFailure("building \(key) failed: \(r.stderr)") }
        built[key] = out
        return out
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// Running commands and the colo binary under test.
enum Run {
    /// The colo executable built next to the test bundle.
    static let colo: String = {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
        while dir.path != "/" && !FileManager.default.fileExists(atPath: dir.appendingPathComponent("colo").path) {
            dir = dir.deletingLastPathComponent()
        }
        return dir.appendingPathComponent("colo").path
    }()

    struct Result { let status: Int32; let stdout: String; let stderr: String }

    /// Run to completion, capturing output.
    static func capture(_ argv: [String], timeout: Double = 60) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: argv[0].contains("/") ? argv[0] : "/usr/bin/env")
        p.arguments = argv[0].contains("/") ? Array(argv.dropFirst()) : argv
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let deadline = Date().addingTimeInterval(timeout)
        var o = Data(), e = Data()
        let group = DispatchGroup()
        group.enter(); DispatchQueue.global().async { o = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        group.enter(); DispatchQueue.global().async { e = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        while p.isRunning && Date() < deadline { usleep(2000) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
        group.wait()
        let status = p.terminationReason == .uncaughtSignal ? 128 + p.terminationStatus : p.terminationStatus
        return Result(status: status, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    /// `colo ARGS...` to completion.
    static func colo(_ args: [String], timeout: Double = 60) throws -> Result {
        try capture([colo] + args, timeout: timeout)
    }
}

/// A process started in the background whose output is read line by line.
final class Background {
    let process = Process()
    private let out = Pipe()
    private var buffer = Data()
    private(set) var lines = [String]()

    init(_ argv: [String]) throws {
        process.executableURL = URL(fileURLWithPath: argv[0])
        process.arguments = Array(argv.dropFirst())
        process.standardOutput = out
        process.standardError = FileHandle.standardError
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    var pid: pid_t { process.processIdentifier }

    /// Read until a line satisfies `match` (or time out); returns that line.
    @discardableResult
    func waitFor(timeout: Double = 20, _ match: (String) -> Bool) throws -> String {
        if let l = lines.first(where: match) { return l }
        let fd = out.fileHandleForReading.fileDescriptor
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&pfd, 1, 100) <= 0 { continue }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = read(fd, &chunk, chunk.count)
            if n <= 0 { break }
            buffer.append(contentsOf: chunk[0..<n])
            while let nl = buffer.firstIndex(of: 10) {
                let line = String(decoding: buffer[buffer.startIndex..<nl], as: UTF8.self)
                buffer.removeSubrange(buffer.startIndex...nl)
                lines.append(line)
                if match(line) { return line }
            }
        }
        throw TestFailure("timed out waiting; output so far: \(lines)")
    }

    /// The value of a `key=value` line, waiting for it.
    func value(_ key: String) throws -> String {
        String(try waitFor { $0.hasPrefix(key + "=") }.dropFirst(key.count + 1))
    }

    /// Wait for exit; the status as a shell reports it.
    func wait(timeout: Double = 20) -> Int32 {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(2000) }
        if process.isRunning { kill(pid, SIGKILL) }
        process.waitUntilExit()
        return process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
    }

    deinit { if process.isRunning { kill(pid, SIGKILL); process.waitUntilExit() } }
}

/// key=value lines of a guest's output.
func values(_ output: String) -> [String: String] {
    var d = [String: String]()
    for line in output.split(separator: "\n") {
        if let eq = line.firstIndex(of: "=") { d[String(line[..<eq])] = String(line[line.index(after: eq)...]) }
    }
    return d
}

/// Is the process gone (or a zombie)?
func isGone(_ pid: pid_t) -> Bool {
    guard let s = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return true }
    return s.split(separator: ")").last?.split(separator: " ").first == "Z"
}

/// Wait until `cond` holds, up to `timeout` seconds.
func eventually(timeout: Double = 10, _ cond: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline { if cond() { return true }; usleep(10_000) }
    return cond()
}
