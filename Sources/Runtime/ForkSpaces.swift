// ForkSpaces: a fork child of a colocated process becomes an address space of its own, served by a runtime started in its mm.
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
        Int32(COLO_SYS_space): { space, call in space.planForkSpace(call) },
    ]
}

/// A coexecve into a fork child that is no address space yet, waiting until it is one.
struct PendingCoexec {
    let call: GuestCall
    let target: pid_t
    let deadline: UInt64
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
        pendingCoexecs.append(PendingCoexec(call: call, target: target, deadline: monotonicNanoseconds() + 10_000_000_000))
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
    /// taken too long (EAGAIN).
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
                pendingCoexecs.append(p)
            }
        }
    }

    /// How space.c starts a fork child's runtime: `colo --serve-fork-space SLOT`.
    static let serveForkSpaceOption: ByteString = "--serve-fork-space"

    /// The runtime's own program, as the kernel names it.
    static let runtimeProgram: ByteString = {
        var buf = [UInt8](repeating: 0, count: Int(PATH_MAX))
        let n = readlink("/proc/self/exe", &buf, buf.count)
        return n > 0 ? ByteString(buf.prefix(n)) : "/proc/self/exe"
    }()

    /// COLO_SYS_space(buffer, size, slot), from the SIGSYS handler of a fork child that needs an
    /// address space of its own: the mapping plan (struct colo_plan) of this runtime's program
    /// at COLO_RUNTIME_AREA_BASE, written to the child's buffer, its files installed in the child
    /// as new descriptors (the plan names them).  The child applies it and starts the runtime.
    func planForkSpace(_ call: GuestCall) -> CallResult {
        let tid = call.pid
        // A process of this mm is in an address space already.
        guard !inThisSpace(tid) else { return .error(.EEXIST) }
        let slot = Int(call.long(2))
        guard slot >= 0, slot < Layout.maxSlots else { return .error(.EINVAL) }
        let capacity = Int(min(call.args[1], UInt64(COLO_JOIN_ARGS_SIZE)))
        let argv: [ByteString] = ["colo", Self.serveForkSpaceOption, ByteString(String(slot))]
        let envp = rawEnvironment()
        do throws(LoadError) {
            guard case .colocate(let image) = try Loader.plan(path: Self.runtimeProgram, argv: argv, envp: envp) else {
                return .error(.ENOEXEC)
            }
            let (_, plan) = try Loader.layout(image, into: SlotLayout(base: UInt64(COLO_RUNTIME_AREA_BASE)),
                                              envp: envp, capv: [], stackSize: 8 << 20)
            var numbers = [Int32: Int32]()
            for fd in plan.descriptors {
                let n = channel.addFD(id: call.id, fd, at: nil)
                guard n >= 0 else { return .error(Errno(negated: n)) }
                numbers[fd] = Int32(n)
            }
            let bytes = plan.renumbering(numbers).serialized()
            guard bytes.count <= capacity else { return .error(.E2BIG) }
            guard GuestMemory(pid: tid).write(bytes, at: call.args[0]) else { return .error(.EFAULT) }
            // The relay its runtime will get its calls over.
            let end = relays.open(for: tid)
            guard end >= 0 else { return .error(Errno(negated: end)) }
            defer { close(end) }
            let n = channel.addFD(id: call.id, end, at: nil)
            return n >= 0 ? .value(Int64(n)) : .error(Errno(negated: n))
        } catch {
            return .error(error.errno)
        }
    }

    /// If this process is the runtime space.c started for a fork child (`colo --serve-fork-space
    /// SLOT`, its parent the child, which owns SLOT and waits for it), serve the child's new
    /// address space until its last process has ended and return the status to exit with; nil
    /// for any other process.
    public static func serveForkSpace(arguments: [ByteString]) -> Int32? {
        guard arguments.count == 3, arguments[1] == serveForkSpaceOption,
              let slot = Int(arguments[2].description), slot >= 0, slot < Layout.maxSlots else { return nil }
        let child = getppid()
        let base = Layout.slotBase(slot)
        // The slot header must be mapped (mincore fails with ENOMEM where nothing is).
        var resident: UInt8 = 0
        guard mincore(UnsafeMutableRawPointer(bitPattern: UInt(base)), 4096, &resident) == 0 else { return nil }
        let header = UnsafeMutablePointer<colo_slot>(bitPattern: UInt(base))!
        guard header.pointee.magic == UInt64(COLO_SLOT_MAGIC), header.pointee.owner_pid == child,
              header.pointee.space_state == UInt32(COLO_SPACE_STARTING.rawValue) else { return nil }
        let home = header.pointee.runtime_pid
        let space: AddressSpace
        do throws(ColoError) { space = try AddressSpace(relay: header.pointee.space_relay) }
        catch { printError("colo: cannot make process \(child) an address space: \(error.message)"); return 1 }
        space.adoptForkChild(child, slot: slot, forkedFrom: home)
        space.channel.hello()
        colo_space_ready(header)
        let status = space.run(main: child)
        space.shutdown()
        return status
    }

    /// Make the fork child `child` (owner of `slot`) the first member of this address space,
    /// recorded as its parent's record in the address space of `home` showed it.
    private func adoptForkChild(_ child: pid_t, slot: Int, forkedFrom home: pid_t) {
        slotsInUse[slot] = true
        let e = table.entry(slot)
        if let parentTable = SpaceTable.open(path: SpaceDirectory.tablePath(runtimePID: home)) {
            e.pointee = parentTable.entry(slot).pointee
        }
        e.pointee.pid = child
        e.pointee.ppid = parent(of: child)
        e.pointee.slot = UInt32(slot)
        e.pointee.start_ns = realtimeNanoseconds()
        storeCString("", into: &e.pointee.wchan)
        e.pointee.state = UInt32(COLO_PROC_RUNNING.rawValue)
        slotHeader(slot).pointee.runtime_pid = runtimePID
        adoptExternal(Member(pid: child, slot: slot))
    }
}
