// coexec(1): run a command colocated with another process.
import ArgumentParser
import Bytes
import ColoABI
import Glibc
import Runtime

/// coexec(1): run a command colocated with process `pid`.
///
/// Inside an address space this is coexecve(2): the command replaces coexec in
/// place, keeping its PID.  Outside one (a plain shell), Linux cannot move a
/// process into another mm, so coexec starts the command in the address space
/// of `pid` (as `colo --join` does) and waits for it.
@main
struct Coexec: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coexec",
        abstract: "Execute a command colocated with another process.",
        usage: "coexec pid command [args ...]")

    @Argument(parsing: .captureForPassthrough, help: "pid command [args ...]")
    var words: [String] = []

    func run() throws {
        guard words.count >= 2 else {
            printStderr("usage: coexec pid command [args ...]")
            Glibc.exit(1)
        }
        var end: UnsafeMutablePointer<CChar>? = nil
        errno = 0
        let value = strtoul(words[0], &end, 10)
        if end?.pointee != 0 || words[0].isEmpty {
            if errno == 0 { errno = EINVAL }
            err("invalid PID \"\(words[0])\"")
        }
        let pid = pid_t(truncatingIfNeeded: value)
        // The command as the kernel passed it (the parser's strings lost bytes that are not UTF-8).
        let argv = Array(rawArguments().suffix(words.count - 1))
        let envp = rawEnvironment()
        var lastError: Int32 = ENOENT
        for path in candidates(argv[0]) {
            let rc = argv.withCStringArray { av in envp.withCStringArray { ev in
                path.withCString { colo_syscall(Int(COLO_SYS_coexecve), Int(pid), Int(bitPattern: $0),
                                                Int(bitPattern: av), Int(bitPattern: ev), 0, 0) }
            } }
            if rc == -Int(ENOSYS) {
                // Not in a colocated address space: join the one of `pid`.
                do throws(ColoError) { Glibc.exit(try Join.run(into: pid, path: path, argv: argv, envp: envp)) }
                catch { errno = error.errno.rawValue; err(argv[0].description) }
            }
            lastError = Int32(-rc)
            if lastError != ENOENT && lastError != ENOTDIR { break }
        }
        errno = lastError
        err(argv[0].description)
    }

    /// The files execvp(3) would try for `name`.
    func candidates(_ name: ByteString) -> [ByteString] {
        if name.contains(UInt8(ascii: "/")) { return [name] }
        let path = environmentValue("PATH") ?? "/usr/local/bin:/usr/bin:/bin"
        return path.split(separator: UInt8(ascii: ":")).map { ($0.isEmpty ? "." : $0) + "/" + name }
    }
}

/// BSD err(3): "coexec: message: strerror(errno)" and exit 1.
func err(_ message: String) -> Never {
    printStderr("coexec: \(message): \(String(cString: strerror(errno)))")
    Glibc.exit(1)
}

func printStderr(_ s: String) {
    var line = s + "\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}
