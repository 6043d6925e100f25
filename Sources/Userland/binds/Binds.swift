// Binds.swift - binds(1): bind(2) and connect(2) as a colocated service.
import ArgumentParser
import CoHelpers
import CoTools
import Glibc
import GuestAPI

/// binds(1): bind(2) and connect(2) as a service at capv index 10, with a
/// port policy; the command runs with libbinds in LD_PRELOAD, so its bind and
/// connect calls become cocalls that pass the socket as an fd capability.
/// The protocol is CheriBSD's: a request's op is the system call it stands
/// for (SYS_bind, SYS_connect), the answer's op its negation.
@main
struct Binds: BSDTool {
    static let configuration = CommandConfiguration(
        commandName: "binds",
        abstract: "Run a command with bind(2) served by a colocated service.",
        usage: usageText)
    static let optstring = "Ckp:v"
    static let usageLines = ["binds [-Ckv] [-p port] command [args ...]"]

    @Flag(name: .customShort("C"), help: "Accepted; binds never enters capability mode (it must bind).") var noCapsicum = false
    @Flag(name: .customShort("k"), help: "Use coaccept_slow(2).") var slow = false
    @Option(name: .customShort("p"), parsing: .unconditional, help: "The one port allowed (default: every port).") var port: String?
    @Flag(name: .customShort("v"), help: "Verbose.") var verbose = false
    @Argument(parsing: .postTerminator, help: "command [args ...]") var command: [String] = []

    static func main() { bsdMain() }

    func run() {
        var allowed = -1
        if let port {
            guard let n = number(port) else { Diag.errx(1, "argument to -p must be a number") }
            if n < 0 { Self.usage() }
            allowed = n
        }
        if command.isEmpty { Self.usage() }
        // The options as constants: every read of an ArgumentParser property
        // wrapper looks up generic metadata (tens of ns), too much per call.
        let verbose = self.verbose, slow = self.slow
        Colocation.ensure()
        _ = Service.start(index: CapvIndex.binds, library: "binds", command: command, spawnError: "coexecvpc")
        let l = Layout.l
        let a = Acceptor(slow: slow, inputSize: max(Layout.answerback, Int(l.binds)), outputSize: Int(l.binds_return))
        let me = getpid(), prog = Diag.progname, s = slowSuffix(slow)
        let answerback = Acceptor.answerbackMessage("binds(1), pid \(me), allowed port \(allowed)" + s + capsicumSuffix)
        let bindOp = cotool_sysnos.bind, connectOp = cotool_sysnos.connect
        // Per call: loads and stores of the two messages, nothing else (the
        // caller's PID only for -v).
        let input = a.input, out = a.output.raw
        let request = Int(l.binds), size = Int(l.binds_return), capvSize = Layout.capv
        let errorAt = Int(l.binds_return_error), errnoAt = Int(l.binds_return_errno)
        let opAt = Int(l.capv_op), lenAt = Int(l.capv_len)
        while true {
            let received = a.accept()
            if received < 0 { continue }
            let op = input.raw.load(fromByteOffset: opAt, as: Int32.self)
            let pid = verbose ? callerPID(a.cookie) : -1
            if verbose { print("\(prog): op \(op), len \(input.len) from pid \(pid) -> pid \(me)\(s)") }
            var reply: (op: Int32, error: Int32, errno: Int32)
            switch op {
            case 0:
                // An answerback request: only the op has to be there.
                if received >= capvSize {
                    a.reply(with: answerback)
                    continue
                }
                Diag.warnx("size mismatch: received \(received), expected \(capvSize)")
                reply = (0, -1, ENOMSG)
            case bindOp, connectOp:
                if received != request {
                    Diag.warnx("size mismatch: received \(received), expected \(request)")
                    reply = (0, -1, ENOMSG)
                } else {
                    let (error, code) = serve(input, connect: op == connectOp, from: pid, allowed: allowed, verbose: verbose)
                    reply = (-op, error, code)
                }
            default:
                Diag.warnx("unknown op \(op)")
                reply = (-op, -1, ENOMSG)
            }
            out.initializeMemory(as: UInt8.self, repeating: 0, count: size)
            out.storeBytes(of: size, toByteOffset: lenAt, as: Int.self)
            out.storeBytes(of: reply.op, toByteOffset: opAt, as: Int32.self)
            out.storeBytes(of: reply.error, toByteOffset: errorAt, as: Int32.self)
            out.storeBytes(of: reply.errno, toByteOffset: errnoAt, as: Int32.self)
            a.outlen = size
            if verbose {
                print("\(prog): returning to pid \(pid) <- pid \(me): op \(reply.op), len \(size), error \(reply.error), errno \(reply.errno)\(s)")
            }
        }
    }

    /// Check the address against the policy, then bind or connect the
    /// caller's socket: (the call's result, errno to return: 0 after a
    /// success, as CheriBSD's binds answers).
    func serve(_ input: Message, connect: Bool, from pid: pid_t, allowed: Int, verbose: Bool) -> (Int32, Int32) {
        let l = Layout.l, prog = Diag.progname
        var fd: Int32 = -1
        let cap = input.pointer(at: Int(l.binds_s))
        if captofd(cap, &fd) != 0 {
            Diag.warn("captofd: \(capText(cap))")
            return (-1, ENOMSG)
        }
        defer { close(fd) }
        let addr = input.raw.advanced(by: Int(l.binds_addr))
        let addrlen = Int(input.int32(at: Int(l.binds_addrlen)))
        let family = Int32(addr.load(as: sa_family_t.self))
        if allowed < 0 {
            // No policy.
        } else if family != AF_INET {
            if verbose { print("\(prog): pid \(pid): ss_family \(family) != AF_INET \(AF_INET); allowing") }
        } else if addrlen < MemoryLayout<sockaddr_in>.size {
            if verbose { print("\(prog): pid \(pid): sslen \(addrlen) < \(MemoryLayout<sockaddr_in>.size); returning EACCES") }
            return (-1, EACCES)
        } else {
            let sin = addr.loadUnaligned(as: sockaddr_in.self)
            let port = Int(UInt16(bigEndian: sin.sin_port))
            if port != allowed {
                if verbose { print("\(prog): pid \(pid): disallowed port \(port); returning EACCES") }
                return (-1, EACCES)
            }
            // CheriBSD prints sin_port as it is, without ntohs().
            if verbose { print("\(prog): pid \(pid): allowing port \(sin.sin_port)") }
        }
        let len = socklen_t(min(max(addrlen, 0), MemoryLayout<sockaddr_storage>.size))
        let sa = addr.assumingMemoryBound(to: sockaddr.self)
        let r = connect ? Glibc.connect(fd, sa, len) : Glibc.bind(fd, sa, len)
        if r == 0 { return (0, 0) }
        let code = errno
        Diag.warn("\(connect ? "connect" : "bind")(\(fd), ..., \(len))", errno: code)
        return (r, code)
    }
}
