// syscall_timing_pong: the responder of syscall_timing(1)'s coping tests.
import ArgumentParser
import CoHelpers
import CoTools
import Glibc
import GuestAPI
import TimingLoops

/// syscall_timing_pong: the responder of syscall_timing(1)'s coping tests.
/// Unlike copong(1), whose `char inout[BUFSIZ]` truncates every message to
/// 8 KiB, it echoes as many bytes as came in, up to `-b bytes` (default
/// 8000000, the largest coping test), so that coping_N moves N bytes each
/// way; with `-y` it makes one system call (getppid(2)) per call and answers
/// with the first word complemented, which coping_syscall_N checks.
@main
struct Pong: BSDTool {
    static let configuration = CommandConfiguration(
        commandName: "syscall_timing_pong",
        abstract: "Answer syscall_timing's cocalls under a coregistered name.",
        usage: usageText)
    static let optstring = "b:kvy"
    static let usageLines = ["syscall_timing_pong [-kvy] [-b bytes] service-name"]

    @Option(name: .customShort("b"), parsing: .unconditional, help: "Largest message, in bytes (a multiple of 8).") var bytes: String?
    @Flag(name: .customShort("k"), help: "Use coaccept_slow(2).") var slow = false
    @Flag(name: .customShort("v"), help: "Say when the name is registered.") var verbose = false
    @Flag(name: .customShort("y"), help: "Make one system call per call.") var syscall = false
    @Argument(parsing: .postTerminator, help: "service-name") var names: [String] = []

    static func main() { bsdMain() }

    func run() {
        var size = 8_000_000
        if let bytes {
            guard let n = number(bytes), n > 0, n % 8 == 0 else { Diag.errx(1, "argument to -b must be a positive multiple of 8") }
            size = n
        }
        guard names.count == 1 else { Self.usage() }
        Colocation.ensure()
        Service.setupAcceptor()
        if coregister(names[0], nil) != 0 { Diag.err(1, "coregister") }
        if verbose {
            print("\(Diag.progname): \(names[0]): coregistered, pid \(getpid())")
            cotool_flush_stdout()
        }
        timing_pong(size, slow ? 1 : 0, syscall ? 1 : 0)
    }
}
