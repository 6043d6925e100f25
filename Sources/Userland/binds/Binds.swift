import ArgumentParser
import CoHelpers
import CoTools
import Glibc
import GuestAPI

/// binds(1): bind(2) as a service at capv index 10, with a port policy; the
/// command runs with libbinds in LD_PRELOAD, so its bind calls become cocalls
/// that pass the socket as an fd capability.
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
        Colocation.ensure()
        _ = Service.start(index: CapvIndex.binds, library: "binds", command: command, spawnError: "coexecvpc")
        let l = Layout.l
        let a = Acceptor(slow: slow, inputSize: max(Layout.answerback, Int(l.binds)), outputSize: Layout.answerback)
        let me = getpid(), prog = Diag.progname, s = slowSuffix(slow)
        let answerback = "binds(1), pid \(me), allowed port \(allowed)" + s + capsicumSuffix
        while true {
            let received = a.accept()
            if received < 0 { continue }
            let input = a.input, out = a.output
            let pid = callerPID(a.cookie)
            if verbose { print("\(prog): op \(input.op), len \(input.len) from pid \(pid) -> pid \(me)\(s)") }
            if input.op == 0 {
                a.answerback(answerback)
                continue
            }
            var error: Int32 = -1, code: Int32 = ENOMSG
            if input.op != CapvIndex.binds {
                Diag.warnx("unknown op \(input.op)")
            } else if received != input.len || input.len != Int(l.binds) {
                Diag.warnx("size mismatch: received \(received), in.len \(input.len), expected \(l.binds)")
            } else {
                (error, code) = bind(input, from: pid, allowed: allowed)
            }
            out.zero()
            out.len = Int(l.binds_return)
            out.op = -CapvIndex.binds
            out.setInt32(error, at: Int(l.binds_return_error))
            out.setInt32(code, at: Int(l.binds_return_errno))
            a.outlen = out.len
            if verbose {
                print("\(prog): returning to pid \(pid) <- pid \(me): op \(out.op), len \(out.len), error \(error), errno \(code)\(s)")
            }
        }
    }

    /// Check the address against the policy and bind the caller's socket:
    /// (bind's result, errno to return).  As CheriBSD's binds, a successful
    /// bind answers errno ENOMSG; a failed one answers bind's own errno.
    func bind(_ input: Message, from pid: pid_t, allowed: Int) -> (Int32, Int32) {
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
        if family != AF_INET {
            if verbose { print("\(prog): pid \(pid): ss_family \(family) != AF_INET \(AF_INET); allowing") }
        } else if addrlen < MemoryLayout<sockaddr_in>.size {
            if verbose { print("\(prog): pid \(pid): sslen \(addrlen) < \(MemoryLayout<sockaddr_in>.size); returning EACCES") }
            return (-1, EACCES)
        } else {
            let sin = addr.loadUnaligned(as: sockaddr_in.self)
            let port = Int(UInt16(bigEndian: sin.sin_port))
            if allowed != -1 && port != allowed {
                if verbose { print("\(prog): pid \(pid): disallowed port \(port); returning EACCES") }
                return (-1, EACCES)
            }
            // CheriBSD prints sin_port as it is, without ntohs().
            if verbose { print("\(prog): pid \(pid): allowing port \(sin.sin_port)") }
        }
        let len = socklen_t(min(max(addrlen, 0), MemoryLayout<sockaddr_storage>.size))
        let r = Glibc.bind(fd, addr.assumingMemoryBound(to: sockaddr.self), len)
        return r == 0 ? (0, ENOMSG) : (r, errno)
    }
}
