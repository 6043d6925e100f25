// ForkSpaces: a fork child of a colocated process becomes an address space of its own, served by a runtime of its own from outside.
import Bytes
import CLinux
import ColoABI
import Errors
import Glibc
import GuestShim
import Loader
import Switcher

/// The internal call with which a fork child's SIGSYS handler (space.c) asks for a runtime.
enum SpaceCalls {
    static let handlers: [Int32: SyscallTable.Handler] = [
        Int32(COLO_SYS_space): { space, call in space.startForkSpace(call) },
    ]
}

/// A coexecve into a fork child that is no address space yet, waiting until it is one.
struct PendingCoexec {
    let call: GuestCall
    let target: pid_t
    let deadline: UInt64
    /// When the target was last asked to become an address space.
    var asked: UInt64
}

extension AddressSpace {
    /// The slot (header) process `pid` has a copy of if it is a fork child of a member that
    /// is in no address space yet; nil for any other process.
    private func forkChildSlot(_ pid: pid_t) -> Int? {
        inThisSpace(pid) ? nil : members[parent(of: pid)]?.slot
    }

    /// A coexecve into `target`, a fork child of a member that is no address space yet: ask it
    /// to become one (a queued SIGSYS its handler takes, space.c) and answer the call once it
    /// is (`retryCoexecs`).  nil if `target` is not such a child.
    func awaitForkSpace(_ call: GuestCall, target: pid_t) -> CallResult? {
        guard let slot = forkChildSlot(target) else { return nil }
        guard askToBecomeSpace(target, thread: 0, slot: slot) else { return .error(.ESRCH) }
        let now = monotonicNanoseconds()
        pendingCoexecs.append(PendingCoexec(call: call, target: target, deadline: now + 10_000_000_000, asked: now))
        return .pending
    }

    /// Ask process `pid` (its thread `thread`, if not 0), a fork child owning (a copy of) `slot`,
    /// to become an address space: a queued SIGSYS its handler takes (space.c).
    func askToBecomeSpace(_ pid: pid_t, thread: pid_t, slot: Int) -> Bool {
        clinux_queue_signal(pid, thread, SIGSYS, UInt64(COLO_SPACE_SIGNAL) << 32 | UInt64(slot)) == 0
    }

    /// A colocation call from a process that is in no address space: if it is a fork child of
    /// a member, it is one of its own as soon as it needs one.  Ask the calling thread to become
    /// one (the signal interrupts this very call, which the thread makes again afterwards,
    /// then as a member of its new address space: this one stays unanswered); nil if it is not
    /// such a child, or was asked already and did not become one (the call then fails, ENOSYS).
    func becomeSpaceFirst(_ call: GuestCall) -> CallResult? {
        let tid = call.pid
        guard let tgid = threadGroup(of: tid), let slot = forkChildSlot(tgid) else { return nil }
        let now = monotonicNanoseconds()
        if let asked = askedToBecome[tgid], now - asked < 10_000_000_000 { return nil }
        askedToBecome[tgid] = now
        return askToBecomeSpace(tgid, thread: tid, slot: slot) ? .pending : nil
    }

    /// Answer the waiting coexecve()s whose target has become an address space, died, or
    /// taken too long (EAGAIN).  A target that is not one yet is asked again every second: a
    /// request that came while it was still inside its fork (its header not yet its own) is
    /// lost, and one that comes while it is becoming one changes nothing (space.c).
    func retryCoexecs() {
        let waiting = pendingCoexecs
        guard !waiting.isEmpty else { return }
        pendingCoexecs = []
        let now = monotonicNanoseconds()
        for p in waiting {
            if kill(p.target, 0) != 0 && errno == ESRCH {
                channel.respond(id: p.call.id, .error(.ESRCH))
            } else if SpaceDirectory.space(containing: p.target) != nil {
                let result = SyscallTable.dispatch(self, p.call)
                if case .pending = result { continue }
                channel.respond(id: p.call.id, result)
            } else if now > p.deadline || !channel.isValid(id: p.call.id) {
                channel.respond(id: p.call.id, .error(.EAGAIN))
            } else {
                var p = p
                if now - p.asked > 1_000_000_000, let slot = forkChildSlot(p.target) {
                    _ = askToBecomeSpace(p.target, thread: 0, slot: slot)
                    p.asked = now
                }
                pendingCoexecs.append(p)
            }
        }
    }

    /// How a fork child's runtime is started: `colo --serve-fork-space SLOT CHILD`, its relay
    /// on descriptor 3.
    static let serveForkSpaceOption: ByteString = "--serve-fork-space"
    private static let relayDescriptor: Int32 = 3

    /// The runtime's own program, as the kernel names it.
    static let runtimeProgram: ByteString = {
        var buf = [UInt8](repeating: 0, count: Int(PATH_MAX))
        let n = readlink("/proc/self/exe", &buf, buf.count)
        return n > 0 ? ByteString(buf.prefix(n)) : "/proc/self/exe"
    }()

    /// COLO_SYS_space(buffer, size, slot, SCB), from the SIGSYS handler of a fork child that
    /// needs an address space of its own (space.c), made to the runtime that holds the filter
    /// chain's listener: start a runtime for it (a process of its own, this one's child) with a
    /// relay, and pass the call on to it; the new runtime answers it (`answerSpaceRequest`).
    func startForkSpace(_ call: GuestCall) -> CallResult {
        let tid = call.pid
        // A process of this mm is in an address space already.
        guard !inThisSpace(tid) else { return .error(.EEXIST) }
        let slot = Int(call.long(2))
        guard slot >= 0, slot < Layout.maxSlots, let child = threadGroup(of: tid) else { return .error(.EINVAL) }
        // The same request again (a signal interrupted the child's call, which was restarted):
        // the runtime started for the first one answers it.
        if relays.starting(child) { return relays.pass(call, toRuntimeOf: child) ? .pending : .error(.EAGAIN) }
        let end = relays.open(for: child)
        guard end >= 0 else { return .error(Errno(negated: end)) }
        defer { close(end) }
        var fa = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fa)
        defer { posix_spawn_file_actions_destroy(&fa) }
        posix_spawn_file_actions_adddup2(&fa, end, Self.relayDescriptor)
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDWR, 0)
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_RDWR, 0)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv: [ByteString] = ["colo", Self.serveForkSpaceOption, ByteString(String(slot)), ByteString(String(child))]
        var pid: pid_t = 0
        let rc = argv.withCStringArray { av in rawEnvironment().withCStringArray { ev in
            Self.runtimeProgram.withCString { posix_spawn(&pid, $0, &fa, &attr, av, ev) }
        } }
        guard rc == 0, relays.started(runtime: pid, for: child) else {
            relays.drop(child: child)
            return .error(rc != 0 ? Errno(rc) : .EAGAIN)
        }
        return relays.pass(call, toRuntimeOf: child) ? .pending : .error(.EAGAIN)
    }

    /// The answer to the fork child's COLO_SYS_space, in the runtime started for it: where
    /// the address space's shared structures are (struct colo_space_plan in the child's
    /// buffer: the files, installed in the child, to map shared at their addresses, keeping
    /// what is the child's own: its slot header and its thread's SCB) and its
    /// agent's end of a new socket.  This runtime's end, or the call's error.
    func answerSpaceRequest(_ call: GuestCall, child: pid_t, slot: Int) -> Result<Int32, Errno> {
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            return .failure(.current)
        }
        var ok = false
        defer { close(pair[1]); if !ok { close(pair[0]) } }
        let tableFD = open(table.path, O_RDWR | O_CLOEXEC)
        let ringFD = open(SpaceTable.traceRingPath(tablePath: table.path), O_RDWR | O_CLOEXEC)
        defer { if tableFD >= 0 { close(tableFD) }; if ringFD >= 0 { close(ringFD) } }
        guard tableFD >= 0, ringFD >= 0 else { return .failure(.current) }
        let scb = call.args[3]
        let ownSCB: (UInt64, UInt64) = colo_is_scb_block(scb) != 0 ? (scb - UInt64(COLO_SCB_AREA_ADDR), UInt64(COLO_SCB_SIZE)) : (0, 0)
        // In the order they are mapped: the event log lies over the SCB area's last block.
        let maps: [(fd: Int32, addr: UInt64, len: Int, offset: UInt64, keep: (UInt64, UInt64))] = [
            // A table of its own, with a key of its own: capabilities of the parent's address
            // space mean nothing in the new one (calls with them fail as with any forged one).
            (kernel.caps.file, UInt64(COLO_CAP_TABLE_ADDR), CapabilityTable.size, 0, (0, 0)),
            (kernel.scbFile, UInt64(COLO_SCB_AREA_ADDR), Kernel.scbAreaSize, 0, ownSCB),
            (ringFD, UInt64(COLO_SWITCH_LOG_ADDR), Int(COLO_SCB_SIZE), UInt64(SpaceTable.traceRingSize), (0, 0)),
            (ringFD, UInt64(COLO_TRACE_RING_ADDR), SpaceTable.traceRingSize, 0, (0, 0)),
            (tableFD, Layout.tableAddress, SpaceTable.fileSize, 0, (0, 0)),
            (headerFile, Layout.slotBase(slot), Int(COLO_SLOT_HEADER_SIZE), UInt64(slot) * UInt64(COLO_SLOT_HEADER_SIZE),
             (0, UInt64(COLO_JOIN_ARGS_OFFSET))),
        ]
        var plan = colo_space_plan()
        plan.magic = UInt64(COLO_SPACE_PLAN_MAGIC)
        plan.nmaps = UInt32(maps.count)
        var numbers = [Int32: Int32]()
        for fd in maps.map(\.fd) + [pair[1]] where numbers[fd] == nil {
            let n = channel.addFD(id: call.id, fd, at: nil)
            guard n >= 0 else { return .failure(Errno(negated: n)) }
            numbers[fd] = Int32(n)
        }
        plan.agent = numbers[pair[1]]!
        withUnsafeMutableBytes(of: &plan.maps) { raw in
            for (i, m) in maps.enumerated() {
                var op = colo_space_map()
                op.fd = numbers[m.fd]!
                op.addr = m.addr
                op.len = UInt64(m.len)
                op.offset = m.offset
                op.keep_from = m.keep.0
                op.keep_len = m.keep.1
                raw.storeBytes(of: op, toByteOffset: i * MemoryLayout<colo_space_map>.stride, as: colo_space_map.self)
            }
        }
        let bytes = withUnsafeBytes(of: &plan) { Array($0) }
        guard call.args[1] >= UInt64(bytes.count), GuestMemory(pid: call.pid).write(bytes, at: call.args[0]) else {
            return .failure(.EFAULT)
        }
        ok = true
        return .success(pair[0])
    }

    /// If this process is a fork child's runtime (`colo --serve-fork-space SLOT CHILD`, started
    /// by the runtime that holds the listener, its relay on descriptor 3), make the child's
    /// address space, serve it until its last process has ended and return the status to exit
    /// with; nil for any other process.
    public static func serveForkSpace(arguments: [ByteString]) -> Int32? {
        guard arguments.count == 4, arguments[1] == serveForkSpaceOption,
              let slot = Int(arguments[2].description), slot >= 0, slot < Layout.maxSlots,
              let child = pid_t(arguments[3].description), child > 0 else { return nil }
        var st = stat()
        guard fstat(relayDescriptor, &st) == 0, st.st_mode & S_IFMT == S_IFSOCK else { return nil }
        // It ends with the runtime that started it (which holds the listener its calls come
        // from); its agent then kills every process of the address space.
        _ = rawSyscall(Int(SYS_prctl), Int(PR_SET_PDEATHSIG), Int(SIGKILL), 0, 0, 0)
        let space: AddressSpace
        do throws(ColoError) {
            space = try AddressSpace(forkChild: (child, relayDescriptor))
            try space.becomeForkSpace(child: child, slot: slot)
        } catch {
            // A child that went away meanwhile (its call ended: ENOENT from SECCOMP_IOCTL_NOTIF_ADDFD)
            // asked for nothing any more.
            if kill(child, 0) == 0 && error.errno != .ENOENT {
                printError("colo: cannot make process \(child) an address space: \(error.message)")
            }
            return 1
        }
        let status = space.run(main: child)
        space.shutdown()
        return status
    }

    /// Wait for the child's COLO_SYS_space (the first call the relay brings), answer it, adopt
    /// the agent the child then starts, and make the child this address space's first member.
    private func becomeForkSpace(child: pid_t, slot: Int) throws(ColoError) {
        channel.hello(mm: child)
        let deadline = monotonicNanoseconds() + 10_000_000_000
        var agentEnd: Int32 = -1
        while agentEnd < 0 {
            guard monotonicNanoseconds() < deadline else { throw ColoError(.ETIMEDOUT, "the child asked for nothing") }
            var p = pollfd(fd: channel.fd, events: Int16(POLLIN), revents: 0)
            if !channel.hasQueued { _ = poll(&p, 1, 100) }
            guard let call = channel.receive() else {
                guard channel.fd >= 0 else { throw ColoError(.EPIPE, "the relay closed") }
                continue
            }
            guard call.number == Int32(COLO_SYS_space), threadGroup(of: call.pid) == child else {
                channel.respond(id: call.id, .error(.EAGAIN))
                continue
            }
            switch answerSpaceRequest(call, child: child, slot: slot) {
            case .success(let end):
                agentEnd = end
                channel.respond(id: call.id, .value(0))
            case .failure(let e) where e == .ENOENT:
                continue        // the call was interrupted; the child makes it again
            case .failure(let e):
                channel.respond(id: call.id, .error(e))
                throw ColoError(e, "cannot answer its request: \(e)")
            }
        }
        try hands.adopt(socket: agentEnd)
        table.header.pointee.mm_pid = hands.mmProcess
        channel.hello(mm: hands.mmProcess)
        adoptForkChild(child, slot: slot)
        colo_space_ready(slotHeader(slot))
    }

    /// Make the fork child `child` (owner of `slot`) the first member of this address space,
    /// recorded as its parent's record in the address space it was forked from showed it.
    private func adoptForkChild(_ child: pid_t, slot: Int) {
        slotsInUse[slot] = true
        let header = slotHeader(slot)
        let e = table.entry(slot)
        if let parentTable = SpaceTable.open(path: SpaceDirectory.tablePath(runtimePID: header.pointee.runtime_pid)) {
            e.pointee = parentTable.entry(slot).pointee
        }
        e.pointee.pid = child
        e.pointee.ppid = parent(of: child)
        e.pointee.slot = UInt32(slot)
        e.pointee.start_ns = realtimeNanoseconds()
        storeCString("", into: &e.pointee.wchan)
        e.pointee.state = UInt32(COLO_PROC_RUNNING.rawValue)
        header.pointee.runtime_pid = runtimePID
        adoptExternal(Member(pid: child, slot: slot))
    }
}
