// CallChannel: where a runtime gets the system calls it serves and answers them: the seccomp listener, or a relay from the runtime that holds it.
import CLinux
import ColoABI
import Errors
import Glibc

/// The relay's messages (SOCK_SEQPACKET, one message each): 16 words.  To the served runtime:
/// a call (kind, id, pid, number, instruction pointer, six arguments) or the reply to its last
/// request (kind, id, value).  From it: hello (kind, a process of the mm it serves), respond
/// (kind, id, value, errno), addfd (kind, id, its descriptor, target or -1), valid (kind, id).
private enum RelayKind: UInt64 {
    case call = 1, reply = 2, hello = 3, respond = 4, addFD = 5, valid = 6
}
private let relayWords = 16

private func sendWords(_ fd: Int32, _ words: [UInt64]) -> Bool {
    var w = words + [UInt64](repeating: 0, count: relayWords - words.count)
    return w.withUnsafeMutableBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == relayWords * 8
}

/// What one read of a relay gives.
private enum Received {
    case message([UInt64])
    /// Nothing waiting (without `wait`).
    case none
    /// The other end has gone (or the socket failed).
    case closed
}

private func receiveWords(_ fd: Int32, wait: Bool) -> Received {
    var w = [UInt64](repeating: 0, count: relayWords)
    while true {
        let n = w.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, wait ? 0 : Int32(MSG_DONTWAIT)) }
        if n == relayWords * 8 { return .message(w) }
        if n > 0 { continue }                   // not a relay message: skipped
        if n < 0 && errno == EINTR { continue }
        if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return .none }
        return .closed
    }
}

/// Where an address space's runtime gets its guests' colocation calls and answers them.  The
/// runtime that installed the filter reads its listener.  Linux allows one listener per filter
/// chain, so a fork child that became an address space (space.c) still makes its calls to that
/// listener: its runtime gets them relayed, and answers through the relay (RelayHub).
final class CallChannel {
    private let descriptor: Int32
    private let relayed: Bool
    /// The relay's other end has gone: no call can come any more.
    private var closed = false
    /// What to poll for calls (-1, which poll ignores, once a relay has closed).
    var fd: Int32 { closed ? -1 : descriptor }
    /// Calls that came while a relayed request waited for its reply.
    private var queued = [GuestCall]()

    init(listener: Int32) { descriptor = listener; relayed = false }

    /// The served end of a relay.
    init(relay: Int32) { descriptor = relay; relayed = true }

    /// Tell the other end of the relay which process's mm this runtime serves (the child, then
    /// its agent): the calls of that mm are to come over the relay.
    func hello(mm: pid_t) {
        if relayed { _ = sendWords(descriptor, [RelayKind.hello.rawValue, UInt64(UInt32(bitPattern: mm))]) }
    }

    /// A call is ready without waiting.
    var hasQueued: Bool { !queued.isEmpty }

    /// The next call, or nil (none pending, or its caller went away).
    func receive() -> GuestCall? {
        guard relayed else { return UserNotification.receive(descriptor) }
        if !queued.isEmpty { return queued.removeFirst() }
        switch receiveWords(descriptor, wait: false) {
        case .message(let w) where w[0] == RelayKind.call.rawValue: return Self.call(w)
        case .closed: closed = true; return nil
        default: return nil
        }
    }

    /// Answer a call; false if its caller is no longer waiting.
    @discardableResult
    func respond(id: UInt64, _ result: CallResult) -> Bool {
        guard relayed else { return UserNotification.respond(descriptor, id: id, result) }
        switch result {
        case .pending: return false
        case .value(let v): return request([RelayKind.respond.rawValue, id, UInt64(bitPattern: v), 0]) == 1
        case .error(let e): return request([RelayKind.respond.rawValue, id, 0, UInt64(UInt32(bitPattern: e.rawValue))]) == 1
        }
    }

    /// Install descriptor `source` into the caller of call `id` (at `target`, or the lowest free
    /// number): its number there, or -errno.
    func addFD(id: UInt64, _ source: Int32, at target: Int32?) -> Int {
        guard relayed else { return UserNotification.addFD(descriptor, id: id, source, at: target) }
        return Int(request([RelayKind.addFD.rawValue, id, UInt64(UInt32(bitPattern: source)),
                            UInt64(bitPattern: Int64(target ?? -1))]))
    }

    /// Is the caller of call `id` still waiting?
    func isValid(id: UInt64) -> Bool {
        guard relayed else { return UserNotification.isValid(descriptor, id: id) }
        return request([RelayKind.valid.rawValue, id]) == 1
    }

    /// Send a request and wait for its reply (calls arriving meanwhile are queued).
    private func request(_ words: [UInt64]) -> Int64 {
        guard sendWords(descriptor, words) else { return -Int64(EPIPE) }
        while case .message(let w) = receiveWords(descriptor, wait: true) {
            if w[0] == RelayKind.reply.rawValue { return Int64(bitPattern: w[2]) }
            if w[0] == RelayKind.call.rawValue { queued.append(Self.call(w)) }
        }
        closed = true
        return -Int64(EPIPE)
    }

    private static func call(_ w: [UInt64]) -> GuestCall {
        GuestCall(id: w[1], pid: pid_t(truncatingIfNeeded: w[2]), number: Int32(truncatingIfNeeded: w[3]),
                  instructionPointer: w[4], args: Array(w[5..<11]))
    }
}

/// The listener-holding runtime's end of the relays to the runtimes of fork children's
/// address spaces (its children, started by startForkSpace): it passes each call to the
/// runtime of the address space the caller is in (or, for a fork child in none, its parent's),
/// and carries out their answers on its listener for exactly the calls it passed to them.
final class RelayHub {
    final class Relay {
        let socket: Int32
        /// The fork child that became the address space.
        let child: pid_t
        /// A process of the mm it serves: the child, then its agent (the runtime's hello).
        var mm: pid_t
        var runtime: pid_t = 0
        var runtimePidfd: Int32 = -1
        /// Calls passed to it and not yet answered.
        var passed = Set<UInt64>()
        init(socket: Int32, child: pid_t) { self.socket = socket; self.child = child; mm = child }
    }

    private(set) var relays = [Relay]()

    var isEmpty: Bool { relays.isEmpty }
    var sockets: [Int32] { relays.map(\.socket) }

    /// A new relay for fork child `child`: the end to give it (close-on-exec), or -errno.
    func open(for child: pid_t) -> Int32 {
        var pair: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            return -errno
        }
        relays.append(Relay(socket: pair[0], child: child))
        return pair[1]
    }

    /// The runtime `runtime` (this one's child) was started for fork child `child`'s relay.
    func started(runtime: pid_t, for child: pid_t) -> Bool {
        guard let r = relays.last(where: { $0.child == child && $0.runtime == 0 }) else { return false }
        r.runtime = runtime
        r.runtimePidfd = Int32(rawSyscall(Int(SYS_pidfd_open), Int(runtime), 0))
        return r.runtimePidfd >= 0
    }

    /// Is a runtime started for fork child `child` still making its address space (alive, and
    /// its agent not yet announced)?
    func starting(_ child: pid_t) -> Bool {
        relays.contains { $0.child == child && $0.runtime != 0 && $0.mm == child && kill($0.runtime, 0) == 0 }
    }

    /// Forget the relay opened for `child` whose runtime could not be started.
    func drop(child: pid_t) {
        guard let i = relays.lastIndex(where: { $0.child == child && $0.passed.isEmpty }) else { return }
        close(relays[i].socket)
        if relays[i].runtimePidfd >= 0 { close(relays[i].runtimePidfd) }
        relays.remove(at: i)
    }

    /// The relay serving the caller of `call`, or nil if the runtime itself serves it.  A
    /// fork child's request for an address space is passed by startForkSpace.
    func route(_ call: GuestCall, home: pid_t) -> Relay? {
        if relays.isEmpty || call.number == Int32(COLO_SYS_space) || shareAddressSpace(call.pid, home) { return nil }
        if let r = relays.first(where: { shareAddressSpace(call.pid, $0.mm) }) { return r }
        guard let tgid = threadGroup(of: call.pid) else { return nil }
        let parent = parent(of: tgid)
        return relays.first { shareAddressSpace(parent, $0.mm) }
    }

    /// Pass `call` to the runtime just started for fork child `child`.
    func pass(_ call: GuestCall, toRuntimeOf child: pid_t) -> Bool {
        guard let r = relays.last(where: { $0.child == child }) else { return false }
        return pass(call, to: r)
    }

    /// Pass `call` on; false if the relay is gone.
    func pass(_ call: GuestCall, to r: Relay) -> Bool {
        r.passed.insert(call.id)
        return sendWords(r.socket, [RelayKind.call.rawValue, call.id, UInt64(UInt32(bitPattern: call.pid)),
                                    UInt64(UInt32(bitPattern: call.number)), call.instructionPointer] + call.args)
    }

    /// Serve the messages waiting on relay `socket` with `listener`; a relay whose runtime
    /// has gone is dropped.
    func serve(_ socket: Int32, listener: Int32) {
        guard let i = relays.firstIndex(where: { $0.socket == socket }) else { return }
        let r = relays[i]
        var received = receiveWords(socket, wait: false)
        while case .message(let w) = received {
            defer { received = receiveWords(socket, wait: false) }
            let id = w[1]
            var reply: Int64 = -Int64(EPERM)
            switch RelayKind(rawValue: w[0]) {
            case .hello:
                // The mm stays the one it was: the agent's is the child's.
                let pid = pid_t(truncatingIfNeeded: w[1])
                if shareAddressSpace(pid, r.mm) { r.mm = pid }
                continue
            case .respond where r.passed.contains(id):
                let e = Int32(truncatingIfNeeded: w[3])
                r.passed.remove(id)
                reply = UserNotification.respond(listener, id: id, e != 0 ? .error(Errno(e)) : .value(Int64(bitPattern: w[2]))) ? 1 : 0
            case .addFD where r.passed.contains(id) && r.runtimePidfd >= 0:
                let own = Int32(truncatingIfNeeded: rawSyscall(Int(SYS_pidfd_getfd), Int(r.runtimePidfd), Int(w[2]), 0))
                guard own >= 0 else { reply = Int64(own); break }
                let target = Int64(bitPattern: w[3])
                reply = Int64(UserNotification.addFD(listener, id: id, own, at: target < 0 ? nil : Int32(target)))
                close(own)
            case .valid where r.passed.contains(id):
                reply = UserNotification.isValid(listener, id: id) ? 1 : 0
                if reply == 0 { r.passed.remove(id) }
            default:
                break
            }
            _ = sendWords(socket, [RelayKind.reply.rawValue, id, UInt64(bitPattern: reply)])
        }
        if case .closed = received {
            close(r.socket)
            if r.runtimePidfd >= 0 { close(r.runtimePidfd) }
            relays.remove(at: i)
        }
    }
}
