// Service.swift - the service preamble of the CheriBSD tools and the callee loop (Acceptor).
import Bytes
import CoHelpers
import Glibc
import GuestAPI

/// The preamble every CheriBSD service tool shares (spec §3): SIGCHLD exits
/// the service with 0, cosetup, coregister(NULL), capvset at the service's
/// index, LD_PRELOAD appended, vfork + coexecvpc(getppid()) of the command.
/// There is no capability mode to enter (`-C` is how every service runs).
public struct Service {
    /// coregister(2)'s target for calling this thread.
    public let target: Capability?
    /// The vector handed to the command.
    public let vector: CapVector
    /// The command's PID.
    public let child: pid_t

    /// Run the preamble; `index` nil spawns the command with `vector` as given
    /// (interposers build their own), `library` is added to LD_PRELOAD.
    public static func start(index: Int32?, vector given: CapVector? = nil, library: String?,
                             command: [String], caller: Bool = false, spawnError: String? = nil) -> Service {
        cotool_line_buffer_stdout()      // as on a terminal: one line at a time
        cotool_exit_on_sigchld()
        setupAcceptor()
        if caller { setupCaller() }
        var target: UnsafeMutableRawPointer? = nil
        if coregister(nil, &target) != 0 { Diag.err(1, "coregister") }
        var vector = given ?? CapVector.fetch()
        if let index { vector.set(index, target) }
        if let library { Colocation.appendPreload(Colocation.preloadLibrary(library)) }
        let child = spawn(command, vector, errorName: spawnError)
        cotool_exit_with_child(child)
        return Service(target: target, vector: vector, child: child)
    }

    /// cosetup(COSETUP_COACCEPT); err(1, "cosetup") on failure.
    public static func setupAcceptor() {
        let e = cosetup(COSETUP_COACCEPT)
        if e != 0 { Diag.err(1, "cosetup", errno: e) }
    }

    /// cosetup(COSETUP_COCALL); err(1, "cosetup") on failure.
    public static func setupCaller() {
        let e = cosetup(COSETUP_COCALL)
        if e != 0 { Diag.err(1, "cosetup", errno: e) }
    }

    /// vfork + coexecvpc(getppid(), argv[0], argv, capv, capc): the child
    /// reports a failure as `err(1, "%s", argv[0])` (or `errorName`).
    public static func spawn(_ command: [String], _ vector: CapVector, errorName: String? = nil) -> pid_t {
        // The command's arguments as the kernel passed them to the tool.
        var argv: [UnsafeMutablePointer<CChar>?] = commandLine.raw(command).map { $0.withCString { strdup($0) } } + [nil]
        let pid = argv.withUnsafeMutableBufferPointer { av in
            Diag.progname.withCString { prog in
                if let errorName {
                    return errorName.withCString { cotool_spawn(av.baseAddress, vector.capv, vector.capc, prog, $0) }
                }
                return cotool_spawn(av.baseAddress, vector.capv, vector.capc, prog, nil)
            }
        }
        for p in argv { free(p) }
        if pid < 0 { Diag.err(1, "vfork") }
        return pid
    }
}

/// The callee side of a service: coaccept(2) (or coaccept_slow(2) with
/// `slow`) in a loop, each call answering the previous caller with `output`
/// or, after `reply(with:)`, a message built once.  Nothing on the way of a
/// call allocates or copies, and what changes per call lives outside the
/// object: a write of a class property, or passing one inout, costs a
/// dynamic exclusivity check (swift_beginAccess, about 10 ns).
public final class Acceptor {
    public let slow: Bool
    public let input: Message
    public let output: Message

    private struct State {
        var outlen: Int
        var reply: UnsafeMutableRawPointer
        var cookie: UnsafeMutableRawPointer?
    }
    private let state = UnsafeMutablePointer<State>.allocate(capacity: 1)

    public init(slow: Bool, inputSize: Int, outputSize: Int) {
        self.slow = slow
        input = Message(inputSize)
        output = Message(outputSize)
        state.initialize(to: State(outlen: 0, reply: output.raw, cookie: nil))
    }

    deinit { state.deallocate() }

    /// Bytes of the reply the next coaccept sends back.
    public var outlen: Int {
        get { state.pointee.outlen }
        set { state.pointee.outlen = newValue }
    }

    /// The reply the next coaccept sends: `output.raw` unless `reply(with:)`
    /// chose a prepared message for the current call.
    public var replyBytes: UnsafeMutableRawPointer { state.pointee.reply }

    /// The current caller (a cookie).
    public var cookie: UnsafeMutableRawPointer? { state.pointee.cookie }

    /// Answer the previous caller and wait for the next; the bytes received,
    /// or -1 after a warning (the next reply is then empty).
    public func accept() -> Int {
        let s = state, out = s.pointee.reply
        s.pointee.reply = output.raw
        let n = slow ? coaccept_slow(&s.pointee.cookie, out, s.pointee.outlen, input.raw, input.size)
                     : coaccept(&s.pointee.cookie, out, s.pointee.outlen, input.raw, input.size)
        if n < 0 {
            Diag.warn(slow ? "coaccept_slow" : "coaccept")
            s.pointee.outlen = 0
            return -1
        }
        return n
    }

    /// Prepare an answerback reply: `capv_answerback_t{len, op 0, text}`.
    public func answerback(_ text: String) {
        output.zero()
        output.len = Layout.answerback
        output.op = 0
        output.setString(text, at: Layout.answerbackText, max: Layout.answerbackMax)
        outlen = Layout.answerback
    }

    /// Answer the current call with `message` as it is (its `len` bytes):
    /// a reply that never changes, such as an answerback, is built once.
    public func reply(with message: Message) {
        state.pointee.reply = message.raw
        state.pointee.outlen = message.len
    }

    /// An answerback reply (`capv_answerback_t{len, op 0, text}`), to build
    /// once and answer with `reply(with:)`.
    public static func answerbackMessage(_ text: String) -> Message {
        let m = Message(Layout.answerback)
        m.len = Layout.answerback
        m.op = 0
        m.setString(text, at: Layout.answerbackText, max: Layout.answerbackMax)
        return m
    }
}
