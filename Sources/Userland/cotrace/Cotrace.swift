// cotrace(1): interpose every non-NULL entry of the capability vector, one thread per entry, and print each call and reply as strvisx(3) dumps.
import ArgumentParser
import CoHelpers
import CoTools
import Glibc
import GuestAPI

/// cotrace(1): interpose every non-NULL entry of the capability vector, one
/// thread per entry, and print each call and reply as strvisx(3) dumps.
@main
struct Cotrace: BSDTool {
    static let configuration = CommandConfiguration(
        commandName: "cotrace",
        abstract: "Trace the cocalls a command makes through its capability vector.",
        usage: usageText)
    static let optstring = "Ckv"
    static let usageLines = ["cotrace [-Ckv] command [args ...]"]

    @Flag(name: .customShort("C"), help: "Do not enter capability mode.") var noCapsicum = false
    @Flag(name: .customShort("k"), help: "Use coaccept_slow(2) and cocall_slow(2).") var slow = false
    @Flag(name: .customShort("v"), help: "Verbose: full dumps.") var verbose = false
    @Argument(parsing: .postTerminator, help: "command [args ...]") var command: [String] = []

    static func main() { bsdMain() }

    func run() {
        if command.isEmpty { Self.usage() }
        Colocation.ensure()
        cotool_line_buffer_stdout()
        var vector = CapVector.fetch()
        var tracers = [Tracer]()
        for (i, cap) in vector.entries.enumerated() where cap != nil {
            tracers.append(Tracer(index: Int32(i), target: cap!, slow: slow, verbose: verbose))
        }
        for t in tracers { t.start() }
        for t in tracers {
            t.ready.wait()
            vector.set(t.index, t.publicTarget)
        }
        cotool_exit_on_sigchld()
        cotool_exit_with_child(Service.spawn(command, vector))
        enterCapabilityMode(unless: noCapsicum)
        for t in tracers { t.join() }
        while true { pause() }
    }
}

/// A counting semaphore for "registered" hand-over between threads.
final class Signal: @unchecked Sendable {
    private var mutex = pthread_mutex_t(), cond = pthread_cond_t(), done = false
    init() { pthread_mutex_init(&mutex, nil); pthread_cond_init(&cond, nil) }
    func post() { pthread_mutex_lock(&mutex); done = true; pthread_cond_broadcast(&cond); pthread_mutex_unlock(&mutex) }
    func wait() { pthread_mutex_lock(&mutex); while !done { pthread_cond_wait(&cond, &mutex) }; pthread_mutex_unlock(&mutex) }
}

/// One interposed entry: a thread that accepts the command's calls on its own
/// target and forwards them to the original one.
final class Tracer: @unchecked Sendable {
    static let maxbsize = 65536     // MAXBSIZE

    let index: Int32
    let target: Capability
    let slow: Bool
    let verbose: Bool
    let ready = Signal()
    var publicTarget: Capability? = nil
    private var thread = pthread_t()

    init(index: Int32, target: Capability, slow: Bool, verbose: Bool) {
        self.index = index; self.target = target; self.slow = slow; self.verbose = verbose
    }

    func start() {
        let me = Unmanaged.passRetained(self).toOpaque()
        pthread_create(&thread, nil, { arg in
            Unmanaged<Tracer>.fromOpaque(arg!).takeRetainedValue().loop()
            return nil
        }, me)
    }

    func join() { pthread_join(thread, nil) }

    /// strvisx(VIS_DQ | VIS_NL | VIS_CSTYLE | VIS_OCTAL) of the first `count` bytes.
    func dump(_ m: Message, _ count: Int) -> String {
        let n = min(max(count, 0), m.size)
        var buf = [CChar](repeating: 0, count: 4 * n + 1)
        _ = cotool_strvisx(&buf, m.raw.assumingMemoryBound(to: CChar.self), n)
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The dump cut to 66 characters plus "...".
    func terse(_ s: String) -> String { s.count > 66 ? String(s.prefix(66)) + "..." : s }

    func loop() {
        Service.setupAcceptor()
        Service.setupCaller()
        var me: UnsafeMutableRawPointer? = nil
        if coregister(nil, &me) != 0 { Diag.err(1, "coregister") }
        publicTarget = me
        ready.post()

        let prog = Diag.progname, pid = getpid(), s = slowSuffix(slow)
        let tid = cogettid()
        let a = Acceptor(slow: slow, inputSize: Self.maxbsize, outputSize: Self.maxbsize)
        while true {
            let received = a.accept()
            if received < 0 { continue }
            let input = a.input, out = a.output
            let caller = callerPID(a.cookie)
            let op = input.op
            if received != input.len { Diag.warnx("size mismatch: received \(received), in.len \(input.len)") }
            let request = dump(input, received)
            if verbose {
                print("\(prog): cocall from pid \(caller)[\(index)] -> pid \(pid), received \(received), len \(input.len), op \(op)\(s): \"\(request)\"")
            } else {
                print("-> \(index): \"\(terse(request))\"\(s)")
            }
            let n = call(target, input, received, out, out.size, slow: slow)
            if n < 0 {
                Diag.warn(slow ? "cocall_slow" : "cocall")     // XXX we should send back an error response
                a.outlen = 0
                continue
            }
            let reply = dump(out, n)
            if verbose {
                print("\(prog): returning to pid \(caller)[\(index)] <- pid \(pid), len \(out.len), op \(out.op): \"\(reply)\"\(s)")
            } else {
                print("<- \(index): \"\(terse(reply))\"\(s)")
            }
            if op == 0 && n >= Layout.answerbackText {
                let text = out.string(at: Layout.answerbackText, max: Layout.answerbackMax)
                out.setString(text + " -- via cotrace(1), pid \(pid), threadid \(tid), tracing \(capText(target))" + s + capsicumSuffix,
                              at: Layout.answerbackText, max: Layout.answerbackMax)
                if verbose { print("\(prog): returning answerback to pid[\(caller)] \(index) <- pid \(pid)\(s)") }
            }
            a.outlen = n
        }
    }
}
