// Clocks.swift - clocks(1): clock_gettime(2) as a colocated service.
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
        // The options as constants: every read of an ArgumentParser property
        // wrapper looks up generic metadata (tens of ns), too much per call.
        let verbose = self.verbose, slow = self.slow
        Colocation.ensure()
        _ = Service.start(index: CapvIndex.clocks, library: "clocks", command: command)
        enterCapabilityMode(unless: noCapsicum)
        let l = Layout.l
        let a = Acceptor(slow: slow, inputSize: Layout.answerback, outputSize: Int(l.clocks))
        let me = getpid()
        let answerback = Acceptor.answerbackMessage("clocks(1), pid \(me), responding to clock_gettime()"
                                                    + slowSuffix(slow) + capsicumSuffix)
        // Per call: loads and stores of the two messages, nothing else.
        let input = a.input.raw, out = a.output.raw
        let size = Int(l.clocks), request = Layout.capv
        let opAt = Int(l.capv_op), lenAt = Int(l.capv_len), errorAt = Int(l.clocks_error), errnoAt = Int(l.clocks_errno), tsAt = Int(l.clocks_ts)
        while true {
            let received = a.accept()
            if received < 0 { continue }
            let len = input.load(fromByteOffset: lenAt, as: Int.self), op = input.load(fromByteOffset: opAt, as: Int32.self)
            var pid: pid_t = -1
            if verbose {
                pid = callerPID(a.cookie)
                print("\(Diag.progname): op \(op), len \(len) from pid \(pid) -> pid \(me)\(slowSuffix(slow))")
            }
            if op == 0 {
                a.reply(with: answerback)
            } else {
                out.initializeMemory(as: UInt8.self, repeating: 0, count: size)
                out.storeBytes(of: size, toByteOffset: lenAt, as: Int.self)
                a.outlen = size
                if received != len || len != request {
                    Diag.warnx("size mismatch: received \(received), in.len \(len), expected \(request)")
                    out.storeBytes(of: ENOMSG, toByteOffset: errnoAt, as: Int32.self)
                } else {
                    var ts = timespec()
                    let error = clock_gettime(clockid_t(op - CapvIndex.clocks), &ts)
                    out.storeBytes(of: -CapvIndex.clocks, toByteOffset: opAt, as: Int32.self)
                    out.storeBytes(of: error, toByteOffset: errorAt, as: Int32.self)
                    out.storeBytes(of: error != 0 ? errno : 0, toByteOffset: errnoAt, as: Int32.self)
                    out.storeBytes(of: Int64(ts.tv_sec), toByteOffset: tsAt, as: Int64.self)
                    out.storeBytes(of: Int64(ts.tv_nsec), toByteOffset: tsAt + 8, as: Int64.self)
                }
            }
            if verbose {
                let r = a.replyBytes
                let rlen = r.load(fromByteOffset: lenAt, as: Int.self), isClock = rlen == size
                print("\(Diag.progname): returning to pid \(pid) <- pid \(me): op \(r.load(fromByteOffset: opAt, as: Int32.self)), "
                      + "len \(rlen), error \(isClock ? r.load(fromByteOffset: errorAt, as: Int32.self) : 0), "
                      + "errno \(isClock ? r.load(fromByteOffset: errnoAt, as: Int32.self) : 0)\(slowSuffix(slow))")
            }
        }
    }
}
