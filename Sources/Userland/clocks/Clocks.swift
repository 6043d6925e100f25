import ArgumentParser
import CoTools
import Glibc
import GuestAPI

/// clocks(1): clock_gettime(2) as a service at capv index 8; the command runs
/// with libclocks in LD_PRELOAD, so its clock_gettime calls become cocalls.
@main
struct Clocks: BSDTool {
    static let configuration = CommandConfiguration(
        commandName: "clocks",
        abstract: "Run a command with clock_gettime(2) served by a colocated service.",
        usage: usageText)
    static let optstring = "Ckv"
    static let usageLines = ["clocks [-Ckv] command [args ...]"]

    @Flag(name: .customShort("C"), help: "Do not enter capability mode.") var noCapsicum = false
    @Flag(name: .customShort("k"), help: "Use coaccept_slow(2).") var slow = false
    @Flag(name: .customShort("v"), help: "Verbose.") var verbose = false
    @Argument(parsing: .postTerminator, help: "command [args ...]") var command: [String] = []

    static func main() { bsdMain() }

    func run() {
        if command.isEmpty { Self.usage() }
        Colocation.ensure()
        _ = Service.start(index: CapvIndex.clocks, library: "clocks", command: command)
        enterCapabilityMode(unless: noCapsicum)
        let l = Layout.l
        let a = Acceptor(slow: slow, inputSize: Layout.answerback, outputSize: max(Layout.answerback, Int(l.clocks)))
        let me = getpid()
        let answerback = "clocks(1), pid \(me), responding to clock_gettime()" + slowSuffix(slow) + capsicumSuffix
        while true {
            let received = a.accept()
            if received < 0 { continue }
            let input = a.input, out = a.output
            var pid: pid_t = -1
            if verbose {
                pid = callerPID(a.cookie)
                print("\(Diag.progname): op \(input.op), len \(input.len) from pid \(pid) -> pid \(me)\(slowSuffix(slow))")
            }
            if input.op == 0 {
                a.answerback(answerback)
            } else {
                out.zero()
                out.len = Int(l.clocks)
                a.outlen = Int(l.clocks)
                if received != input.len || input.len != Layout.capv {
                    Diag.warnx("size mismatch: received \(received), in.len \(input.len), expected \(Layout.capv)")
                    out.op = 0
                    out.setInt32(0, at: Int(l.clocks_error))
                    out.setInt32(ENOMSG, at: Int(l.clocks_errno))
                } else {
                    var ts = timespec()
                    let error = clock_gettime(clockid_t(input.op - CapvIndex.clocks), &ts)
                    out.op = -CapvIndex.clocks
                    out.setInt32(error, at: Int(l.clocks_error))
                    out.setInt32(error != 0 ? errno : 0, at: Int(l.clocks_errno))
                    out.setInt64(Int64(ts.tv_sec), at: Int(l.clocks_ts))
                    out.setInt64(Int64(ts.tv_nsec), at: Int(l.clocks_ts) + 8)
                }
            }
            if verbose {
                let isClock = out.len == Int(l.clocks)
                print("\(Diag.progname): returning to pid \(pid) <- pid \(me): op \(out.op), len \(out.len), "
                      + "error \(isClock ? out.int32(at: Int(l.clocks_error)) : 0), "
                      + "errno \(isClock ? out.int32(at: Int(l.clocks_errno)) : 0)\(slowSuffix(slow))")
            }
        }
    }
}
