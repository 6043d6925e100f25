// Support: building the C guest programs, running colo and reading their output, for every runtime test.
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
        case .staticMusl:
            // Debian's musl-gcc ignores -static-pie; spell the static-pie link out.
            let m = "/usr/lib/x86_64-linux-musl"
            let gccFile = { (f: String) in (try? Run.capture(["gcc", "-print-file-name=\(f)"]).stdout
                .trimmingCharacters(in: .whitespacesAndNewlines)) ?? f }
            cmd = ["musl-gcc", "-O1", "-I", muslHeaders, "-fPIE", "-static-pie", "-nostartfiles",
                   "-Wl,--no-dynamic-linker", "-Wl,-Bstatic", m + "/rcrt1.o", m + "/crti.o", gccFile("crtbeginS.o"),
                   src, gccFile("crtendS.o"), m + "/crtn.o", "-o", out]
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

/// A child started with posix_spawn, with an empty signal mask and default
/// dispositions (the test runner's threads block most signals, and a spawned
/// program would inherit that mask, as after execve).  stdout (and stderr unless
/// `mergeStderr` is false) are pipes.
final class Spawned {
    let pid: pid_t
    let stdoutFD: Int32
    let stderrFD: Int32
    private var reaped: Int32? = nil

    init(_ argv: [String]) throws {
        var o: [Int32] = [0, 0], e: [Int32] = [0, 0]
        guard pipe(&o) == 0, pipe(&e) == 0 else { throw TestFailure("pipe") }
        for fd in o + e { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var fa = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fa)
        defer { posix_spawn_file_actions_destroy(&fa) }
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&fa, o[1], 1)
        posix_spawn_file_actions_adddup2(&fa, e[1], 2)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var empty = sigset_t(), all = sigset_t()
        sigemptyset(&empty); sigfillset(&all)
        posix_spawnattr_setsigmask(&attr, &empty)
        posix_spawnattr_setsigdefault(&attr, &all)
        // A process group of its own: what the child leaves running (an address space lives
        // while any of its processes lives) is killed with the group when the test is done.
        posix_spawnattr_setpgroup(&attr, 0)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))
        let path = argv[0].contains("/") ? argv[0] : "/usr/bin/env"
        let args = argv[0].contains("/") ? argv : ["env"] + argv
        var cargs = args.map { strdup($0) } + [nil]
        defer { cargs.forEach { free($0) } }
        var p: pid_t = 0
        let rc = posix_spawn(&p, path, &fa, &attr, &cargs, environ)
        close(o[1]); close(e[1])
        guard rc == 0 else { close(o[0]); close(e[0]); throw TestFailure("posix_spawn \(path): \(rc)") }
        pid = p; stdoutFD = o[0]; stderrFD = e[0]
    }

    /// Wait for exit (SIGKILL after `timeout`); the status as a shell reports it.
    func wait(timeout: Double = 30) -> Int32 {
        if let r = reaped { return r }
        let deadline = Date().addingTimeInterval(timeout)
        var st: Int32 = 0
        while true {
            let r = waitpid(pid, &st, WNOHANG)
            if r == pid { break }
            if Date() > deadline { kill(-pid, SIGKILL); kill(pid, SIGKILL) }
            usleep(2000)
        }
        let code = (st & 0x7f) == 0 ? (st >> 8) & 0xff : 128 + (st & 0x7f)
        reaped = code
        return code
    }

    var isRunning: Bool { reaped == nil && waitpid(pid, nil, WNOHANG) == 0 }

    /// Kill what is left of the child's process group (processes it left running).
    func killGroup() { kill(-pid, SIGKILL) }

    deinit {
        if reaped == nil { kill(pid, SIGKILL); _ = wait() }
        killGroup()
        close(stdoutFD); close(stderrFD)
    }
}

/// Read a whole descriptor (until EOF) into a string.
func drain(_ fd: Int32) -> String {
    var out = [UInt8]()
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = read(fd, &buf, buf.count)
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { break }
        out += buf[0..<n]
    }
    return String(decoding: out, as: UTF8.self)
}

/// Output collected by a reader thread (read after the thread is joined).
final class Collected: @unchecked Sendable { var text = "" }

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
        let p = try Spawned(argv)
        let o = Collected(), e = Collected()
        let group = DispatchGroup()
        let (ofd, efd) = (p.stdoutFD, p.stderrFD)
        group.enter(); DispatchQueue.global().async { o.text = drain(ofd); group.leave() }
        group.enter(); DispatchQueue.global().async { e.text = drain(efd); group.leave() }
        let status = p.wait(timeout: timeout)
        // Processes the command left running would hold its output open: the test is done
        // with them.
        p.killGroup()
        group.wait()
        return Result(status: status, stdout: o.text, stderr: e.text)
    }

    /// `colo ARGS...` to completion.
    static func colo(_ args: [String], timeout: Double = 60) throws -> Result {
        try capture([colo] + args, timeout: timeout)
    }
}

/// A process started in the background whose output is read line by line.
final class Background {
    let child: Spawned
    private var buffer = [UInt8]()
    private(set) var lines = [String]()

    init(_ argv: [String]) throws { child = try Spawned(argv) }

    var pid: pid_t { child.pid }

    /// Read until a line satisfies `match` (or time out); returns that line.
    @discardableResult
    func waitFor(timeout: Double = 20, _ match: (String) -> Bool) throws -> String {
        if let l = lines.first(where: match) { return l }
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            while let nl = buffer.firstIndex(of: 10) {
                let line = String(decoding: buffer[..<nl], as: UTF8.self)
                buffer.removeSubrange(...nl)
                lines.append(line)
                if match(line) { return line }
            }
            guard Date() < deadline else { break }
            var pfd = pollfd(fd: child.stdoutFD, events: Int16(POLLIN), revents: 0)
            if poll(&pfd, 1, 100) <= 0 { continue }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = read(child.stdoutFD, &chunk, chunk.count)
            if n <= 0 { break }
            buffer += chunk[0..<n]
        }
        throw TestFailure("timed out waiting; output so far: \(lines)")
    }

    /// The value of a `key=value` line, waiting for it.
    func value(_ key: String) throws -> String {
        String(try waitFor { $0.hasPrefix(key + "=") }.dropFirst(key.count + 1))
    }

    /// Wait for exit; the status as a shell reports it.
    func wait(timeout: Double = 20) -> Int32 { child.wait(timeout: timeout) }

    /// Ask the process to stop (SIGTERM).
    func terminate() { kill(pid, SIGTERM) }
}

/// key=value lines of a guest's output.
func values(_ output: String) -> [String: String] {
    var d = [String: String]()
    for line in output.split(separator: "\n") {
        if let eq = line.firstIndex(of: "=") { d[String(line[..<eq])] = String(line[line.index(after: eq)...]) }
    }
    return d
}

/// Files an exec fails on, in the guest build directory (names start with `tag`): an
/// executable text file (ENOEXEC) and a script without execute permission (EACCES).
func execErrorFiles(_ tag: String) throws -> (text: String, noexec: String) {
    let text = Guests.buildDir + "/\(tag)plain.txt"
    try "just text\n".write(toFile: text, atomically: true, encoding: .utf8)
    chmod(text, 0o755)
    let noexec = Guests.buildDir + "/\(tag)noexec"
    try "#!/bin/sh\n".write(toFile: noexec, atomically: true, encoding: .utf8)
    chmod(noexec, 0o644)
    return (text, noexec)
}

/// Do lines matching each predicate come in this order (each after the one before)?
func inOrder(_ lines: [String], _ preds: [(String) -> Bool]) -> Bool {
    var at = 0
    for p in preds {
        guard let i = lines[at...].firstIndex(where: p) else { return false }
        at = i + 1
    }
    return true
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
