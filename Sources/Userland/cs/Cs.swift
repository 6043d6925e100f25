// cs(1): the "Capsicum service": performs system calls for a command in capability mode (libcs), at capv index 12.
import ArgumentParser
import CoHelpers
import CoTools
import Glibc
import GuestAPI

/// cs(1): the "Capsicum service": performs system calls for a command in
/// capability mode (libcs), at capv index 12.  Pointers in the requests are
/// used as they are, since the address space is shared; descriptors travel
/// as fd capabilities.  cs itself does not enter capability mode.
@main
struct Cs: BSDTool {
    static let configuration = CommandConfiguration(
        commandName: "cs",
        abstract: "Perform system calls for a command in capability mode.",
        usage: usageText)
    static let optstring = "kv"
    static let usageLines = ["cs [-kv] command [args ...]"]

    @Flag(name: .customShort("k"), help: "Use coaccept_slow(2).") var slow = false
    @Flag(name: .customShort("v"), help: "Verbose.") var verbose = false
    @Argument(parsing: .postTerminator, help: "command [args ...]") var command: [String] = []

    /// The calls served (Linux numbers), and how their first argument is passed.
    enum First { case fd, dirfd, plain }
    static let calls: [Int32: (name: String, first: First)] = {
        let n = cotool_sysnos
        return [
            n.bind: ("bind", .fd), n.connect: ("connect", .fd),
            n.newfstatat: ("fstatat", .dirfd), n.statx: ("statx", .dirfd),
            n.fchmodat: ("fchmodat", .dirfd), n.fchownat: ("fchownat", .dirfd),
            n.utimensat: ("utimensat", .dirfd), n.openat: ("openat", .dirfd),
            n.faccessat2: ("faccessat2", .dirfd), n.unlinkat: ("unlinkat", .dirfd),
            n.fchdir: ("fchdir", .fd), n.mkdir: ("mkdir", .plain),
            n.rmdir: ("rmdir", .plain), n.getcwd: ("getcwd", .plain),
        ]
    }()

    static func main() { bsdMain() }

    func run() {
        if command.isEmpty { Self.usage() }
        Colocation.ensure()
        _ = Service.start(index: CapvIndex.syscall, library: "cs", command: command)
        let l = Layout.l, prog = Diag.progname, me = getpid(), s = slowSuffix(slow)
        let a = Acceptor(slow: slow, inputSize: max(Int(l.syscall), Layout.capv), outputSize: Layout.answerback)
        let answerback = "cs(1), pid \(me)" + s
        while true {
            let received = a.accept()
            if received < 0 { continue }
            let input = a.input, out = a.output
            let op = input.op
            let name = op == 0 ? "answerback" : Self.calls[op]?.name ?? "?"
            var pid: pid_t = -1
            if verbose {
                pid = callerPID(a.cookie)
                print("\(prog): op \(op)<\(name)>, len \(input.len) from pid \(pid) -> pid \(me)\(s)")
            }
            if op == 0 {
                a.answerback(answerback)
                continue
            }
            var error: Int64 = -1, code: Int32 = ENOMSG, fdcap: UInt64 = 0
            if let call = Self.calls[op] {
                if received != input.len || input.len != Int(l.syscall) {
                    Diag.warnx("size mismatch: received \(received), in.len \(input.len), expected \(l.syscall)")
                } else {
                    (error, code, fdcap) = perform(op, call.first, input)
                }
            } else {
                Diag.warnx("unknown op \(op)<\(name)>")
            }
            out.zero()
            out.len = Int(l.syscall_return)
            out.op = -op
            out.setInt32(Int32(truncatingIfNeeded: error), at: Int(l.syscall_return_error))
            out.setInt32(code, at: Int(l.syscall_return_errno))
            out.setInt64(Int64(bitPattern: fdcap), at: Int(l.syscall_return_fdcap))
            a.outlen = out.len
            if verbose {
                print("\(prog): returning to pid \(pid) <- pid \(me): op \(out.op), len \(out.len), error \(error), errno \(code)\(s)")
            }
        }
    }

    /// Run system call `op` with the request's arguments: (result, errno, fd capability).
    func perform(_ op: Int32, _ first: First, _ input: Message) -> (Int64, Int32, UInt64) {
        let argOffset = Int(Layout.l.syscall_arg)
        var args = (0..<6).map { input.int64(at: argOffset + 8 * $0) }
        var opened: Int32 = -1
        if first == .fd || (first == .dirfd && Int32(truncatingIfNeeded: args[0]) != AT_FDCWD) {
            var fd: Int32 = -1
            let cap = UnsafeMutableRawPointer(bitPattern: Int(args[0]))
            if captofd(cap, &fd) != 0 {
                Diag.warn("captofd: \(capText(cap))")
                return (-1, ENOMSG, 0)
            }
            opened = fd
            args[0] = Int64(fd)
        }
        defer { if opened >= 0 { close(opened) } }
        let r = colo_syscall(Int(op), Int(args[0]), Int(args[1]), Int(args[2]), Int(args[3]), Int(args[4]), Int(args[5]))
        if r < 0 && r > -4096 { return (-1, Int32(-r), 0) }
        if op == cotool_sysnos.openat && r >= 0 {
            // The descriptor goes back as a capability; the runtime holds its own reference.
            var cap: UnsafeMutableRawPointer? = nil
            let e = capfromfd(&cap, Int32(r))
            close(Int32(r))
            if e != 0 { Diag.warn("capfromfd"); return (-1, ENOMSG, 0) }
            return (Int64(r), 0, UInt64(UInt(bitPattern: cap)))
        }
        return (Int64(r), 0, 0)
    }
}
