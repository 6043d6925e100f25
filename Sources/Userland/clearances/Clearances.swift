// clearances(1): a policy interposer for one capability-vector entry: calls are forwarded to the service only when the policy allows them, otherwise ...
import ArgumentParser
import CoHelpers
import CoTools
import Glibc
import GuestAPI

/// clearances(1): a policy interposer for one capability-vector entry: calls
/// are forwarded to the service only when the policy allows them, otherwise
/// answered with ECANCELED.
@main
struct Clearances: BSDTool {
    static let configuration = CommandConfiguration(
        commandName: "clearances",
        abstract: "Interpose a policy on a capability-vector entry.",
        usage: usageText)
    static let optstring = "1E:GOXCi:kv"
    static let usageLines = ["clearances [-1OXCkv] -i entry command [args ...]"]

    @Flag(name: .customShort("1"), help: "Allow the first caller only.") var one = false
    @Option(name: .customShort("E"), parsing: .unconditional, help: "Allow a caller when `cmd PID` succeeds.") var exec: String?
    @Flag(name: .customShort("G"), help: "(not implemented)") var g = false
    @Flag(name: .customShort("O"), help: "Deny calls during odd minutes.") var odd = false
    @Flag(name: .customShort("X"), help: "(not implemented)") var x = false
    @Flag(name: .customShort("C"), help: "Do not enter capability mode.") var noCapsicum = false
    @Option(name: .customShort("i"), parsing: .unconditionalSingleValue, help: "The entry to interpose.") var entries: [String] = []
    @Flag(name: .customShort("k"), help: "Use coaccept_slow(2) and cocall_slow(2).") var slow = false
    @Flag(name: .customShort("v"), help: "Verbose.") var verbose = false
    @Argument(parsing: .postTerminator, help: "command [args ...]") var command: [String] = []

    enum Policy { case first, exec(String), oddMinutes }

    static func main() { bsdMain() }

    func run() {
        var policy: Policy?
        var chosen = -1
        for (letter, value) in commandLine.options {
            switch letter {
            case "1", "E", "O":
                if policy != nil { Diag.errx(-1, "-\(letter) conflicts with another policy") }
                policy = letter == "1" ? .first : letter == "O" ? .oddMinutes : .exec(value ?? "")
            case "G", "X":
                Self.usage()        // compiled out in CheriBSD
            case "i":
                if chosen >= 0 { Diag.errx(-1, "-i specified more than once") }
                guard let n = number(value ?? "") else { Diag.errx(1, "argument to -i must be a number") }
                if n < 0 { Self.usage() }
                chosen = n
            default:
                break
            }
        }
        guard !command.isEmpty, chosen >= 0, let policy else { Self.usage() }
        Colocation.ensure()
        cotool_line_buffer_stdout()
        cotool_exit_on_sigchld()
        Service.setupAcceptor()
        let e = cosetup(COSETUP_COCALL)
        if e != 0 { Diag.err(1, "2nd cosetup", errno: e) }
        var pub: UnsafeMutableRawPointer? = nil
        if coregister(nil, &pub) != 0 { Diag.err(1, "coregister") }
        var vector = CapVector.fetch()
        guard let target = vector[chosen] else { Diag.errx(1, "capv[\(chosen)] is NULL") }
        vector.set(Int32(chosen), pub)
        var pid = Service.spawn(command, vector)
        cotool_exit_with_child(pid)
        enterCapabilityMode(unless: noCapsicum)

        let l = Layout.l, prog = Diag.progname, me = getpid(), s = slowSuffix(slow)
        let size = 65536        // MAXBSIZE
        let a = Acceptor(slow: slow, inputSize: size, outputSize: size)
        var firstCaller: pid_t = -1

        func authorise(_ cookie: UnsafeMutableRawPointer?) -> Int32 {
            switch policy {
            case .first:
                var p: pid_t = 0
                if cocachedpid(&p, cookie) != 0 { Diag.warn("cocachedpid"); return ECANCELED }
                if firstCaller == p { return 0 }
                if firstCaller == -1 { firstCaller = p; return 0 }
                return ECANCELED
            case .exec(let cmd):
                var p: pid_t = 0
                if cocachedpid(&p, cookie) != 0 { Diag.warn("cocachedpid"); return ECANCELED }
                guard let f = popen("\(cmd) \(p)", "r") else { Diag.warn("popen: \(cmd)"); return ECANCELED }
                Diag.stderr("authorise_exec: popen '\(cmd)' ret \(String(describing: UnsafeRawPointer(f)))\n")
                let ret = pclose(f)
                Diag.stderr("authorise_exec: pclose '\(cmd)' ret \(ret)\n")
                if ret != 0 {
                    if verbose { print("authorise_exec: \"\(cmd)\" returned \(ret)") }
                    return ECANCELED
                }
                return 0
            case .oddMinutes:
                var ts = timespec()
                if clock_gettime(CLOCK_REALTIME_COARSE, &ts) != 0 { Diag.warn("clock_gettime"); return errno }
                return (ts.tv_sec / 60) % 2 != 0 ? ECANCELED : 0
            }
        }

        /// Replace the reply with clearances' answerback, after the service's text.
        func answerback() {
            let text = a.output.string(at: Layout.answerbackText, max: Layout.answerbackMax)
            a.answerback(text + (text.isEmpty ? "" : " -- via ") + "clearances(1), pid \(me), wrapping \(capText(target))"
                         + s + capsicumSuffix)
            if verbose { print("\(prog): returning answerback to pid \(pid) <- pid \(me)\(s)") }
        }

        while true {
            let received = a.accept()
            if received < 0 { continue }
            let input = a.input, out = a.output
            if received != input.len {
                Diag.warnx("size mismatch: received \(received), in.len \(input.len), buflen \(Layout.capv)")
            }
            let isAnswerback = input.len >= Layout.capv && input.op == 0
            if authorise(a.cookie) == 0 {
                // Forward the call; note the reversed directions.
                let n = call(target, input, received, out, out.size, slow: slow)
                if n < 0 {
                    Diag.warn(slow ? "cocall_slow" : "cocall")     // XXX we should send back an error response
                    out.len = 0
                    a.outlen = 0
                } else {
                    a.outlen = n
                }
                if isAnswerback { answerback() }
                continue
            }
            if verbose {
                if cocachedpid(&pid, a.cookie) != 0 { Diag.warn("cogetpid") }
                print("\(prog): pid \(pid) failed authorization; canceled")
            }
            out.zero()
            if isAnswerback {
                answerback()
            } else {
                out.len = Int(l.clearances_return)
                out.op = -input.op
                out.setInt32(-1, at: Int(l.binds_return_error))
                out.setInt32(ECANCELED, at: Int(l.binds_return_errno))
                a.outlen = out.len
            }
        }
    }
}
