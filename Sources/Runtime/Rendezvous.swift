// Rendezvous: guest threads as the kernel calls know them, and the slow-path cocall/coaccept meeting.
import CLinux
import ColoABI
import Errors
import Glibc
import GuestShim
import Switcher

/// A guest thread as the kernel knows it from its first colocation call: its
/// identity and its call state (CheriBSD's switcher control block, SCB).
final class ThreadContext {
    /// Where a thread sleeps in the kernel, as `colo ps` shows it (WCHAN):
    /// "coaccept", "cocall" (being served), "cobusy" (queued).
    enum Sleep { case accept, call, busy }

    let tid: pid_t
    /// The thread's process (thread group).
    let pid: pid_t
    /// The process's slot and the time its program was loaded there (the
    /// table's start_ns, rewritten by every exec in place): the context
    /// belongs to that program only.
    let slot: Int, programStart: UInt64
    /// pidfd of the thread (PIDFD_THREAD), readable once it has exited.
    let pidfd: Int32
    /// cosetup(COSETUP_COCALL) / cosetup(COSETUP_COACCEPT) done.
    var cocallReady = false, coacceptReady = false
    /// cosetup's data capability (the sealed SCB); the thread's cookies derive from it.
    var scb: UInt64 = 0
    /// The switcher control block the SCB capability names (in the SCB area).
    var block: OpaquePointer?
    /// coregister's capability for calling this thread (0: none yet).
    var target: UInt64 = 0
    /// Has called coaccept at least once (before that, cocalls give EAGAIN).
    var hasAccepted = false
    /// Its coaccept_slow, while it waits for a caller.
    var acceptor: Accept?
    /// The caller whose request it is handling (answered by its next coaccept).
    var serving: Call?
    /// Callers waiting for it to accept, oldest first.
    var queue = [Call]()
    /// Where it sleeps, and in which call.
    var sleep: (Sleep, UInt64)?

    init(tid: pid_t, pid: pid_t, pidfd: Int32, slot: Int, programStart: UInt64) {
        self.tid = tid; self.pid = pid; self.pidfd = pidfd; self.slot = slot; self.programStart = programStart
    }

    /// The cookie that identifies this thread to the callees it calls.
    var cookie: UInt64 { scb & ~UInt64(COLO_CAP_TAG) }
}

/// The buffers of a cocall or coaccept (validated: aligned, in range), and whether the
/// thread's library staged them in its SCB (the output's bytes are in its staging area; what
/// the call receives goes there).
struct CallBuffers {
    var out: UInt64, outLength: UInt64, input: UInt64, inLength: UInt64
    var outStaged = false, inStaged = false

    /// Where the call's output is read from, for thread `t`.
    func source(_ t: ThreadContext) -> GuestMemory.CopyEnd {
        if outStaged, let b = t.block { return .stage(b) }
        return .guest(out)
    }

    /// Where `count` bytes the call receives are written, for thread `t`.
    func destination(_ t: ThreadContext, _ count: UInt64) -> GuestMemory.CopyEnd {
        if inStaged, count <= UInt64(COLO_STAGE_SIZE), let b = t.block { return .stage(b) }
        return .guest(input)
    }
}

/// A cocall_slow waiting in a callee's queue or being served.
struct Call {
    let call: GuestCall
    let caller: ThreadContext
    let buffers: CallBuffers
}

/// A coaccept_slow waiting for a caller.
struct Accept {
    let call: GuestCall
    let cookiep: UInt64
    let buffers: CallBuffers
}

/// The colocation kernel's own state for one address space: capabilities,
/// threads, the name registry, and the slow-path rendezvous between callers
/// (cocall_slow) and callees (coaccept_slow).  Single-threaded: it runs on the
/// runtime's poll loop.
final class Kernel {
    /// The address space's capabilities.
    let caps: CapabilityTable
    /// epoll instance watching every known thread's pidfd; readable when one exits.
    let watchFD: Int32
    /// Every thread that has made a kernel call and not exited, by tid.
    var threads = [pid_t: ThreadContext]()
    /// coregister'd names of the address space and their targets.
    var names = [[UInt8]: UInt64]()
    /// Descriptors the runtime holds for fd capabilities (never closed, as in CheriBSD).
    var fileCapabilities = 0
    /// Descriptors always left free for the runtime's own work (pidfds, joins, /proc).
    static let descriptorReserve = 256
    /// cosetup's code capability (the switcher's entry), one per address space.
    private(set) var code: UInt64 = 0
    /// WCHAN of each process in the table: how many of its threads sleep in a
    /// call, and what the table shows.
    private final class Wchan {
        let field: UnsafeMutableRawPointer      // colo_proc_entry.wchan (16 bytes)
        var sleepers = 0
        var shown: ThreadContext.Sleep?
        init(_ field: UnsafeMutableRawPointer) { self.field = field }
    }
    private var wchans = [pid_t: Wchan]()

    /// The SCB area: one COLO_SCB_SIZE block per capability-table index,
    /// reserved (not committed) for the life of the address space; shared memory, the same in
    /// the runtime's mm and in the address space's (agent.c), and private in a fork child.
    private let scbArea: UnsafeMutableRawPointer
    static let scbAreaSize = Int(COLO_CAP_TABLE_CAPACITY) * Int(COLO_SCB_SIZE)
    /// The SCB area's memory (a memfd), as the capability table's.
    let scbFile: Int32

    init() throws(ColoError) {
        caps = try CapabilityTable()
        scbFile = clinux_memfd("colo SCB area")
        guard scbFile >= 0, ftruncate(scbFile, off_t(Self.scbAreaSize)) == 0 else { throw .last("cannot create the SCB area") }
        guard let area = mmap(UnsafeMutableRawPointer(bitPattern: UInt(COLO_SCB_AREA_ADDR)), Self.scbAreaSize,
                              PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE | MAP_FIXED_NOREPLACE, scbFile, 0),
              area != MAP_FAILED else { throw .last("cannot map the SCB area") }
        scbArea = area
        watchFD = clinux_epoll_create()
        guard watchFD >= 0 else { throw ColoError(Errno(negated: watchFD), "epoll_create1: \(Errno(negated: watchFD))") }
    }

    deinit {
        close(watchFD)
        munmap(scbArea, Self.scbAreaSize)
        close(scbFile)
    }

    /// Offer the switcher to the address space's guests (their library reads
    /// the entry points from the table), if this CPU lets user code read and
    /// write the FS and GS bases; without it every call takes the slow path.
    static func publishSwitcher(in table: SpaceTable) {
        guard colo_switcher_supported() != 0 else { return }
        var entries = [UInt64](repeating: 0, count: 8)
        colo_switcher_entries(&entries)
        withUnsafeMutableBytes(of: &table.header.pointee.switcher) { raw in
            for (i, e) in entries.enumerated() { raw.storeBytes(of: e, toByteOffset: i * 8, as: UInt64.self) }
        }
    }

    // MARK: threads

    /// The calling thread's context, created at its first call (or its first
    /// since its process exec'd); nil if the caller is not a colocated process
    /// of this address space (ENOSYS).
    func context(_ call: GuestCall, _ space: AddressSpace) -> ThreadContext? {
        if let t = current(call.pid, space) { return t }
        let tid = call.pid
        guard let status = readFile("/proc/\(tid)/status"),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Tgid:") }),
              let pid = pid_t(line.dropFirst(5).trimmingPrefix(while: { $0 == " " || $0 == "\t" })),
              let slot = space.members[pid]?.slot, space.inThisSpace(tid) else { return nil }
        let fd = Int32(rawSyscall(Int(SYS_pidfd_open), Int(tid), Int(clinux_pidfd_thread)))
        guard fd >= 0 else { return nil }
        guard clinux_epoll_add_readable(watchFD, fd, UInt64(UInt32(bitPattern: tid))) == 0 else { close(fd); return nil }
        let t = ThreadContext(tid: tid, pid: pid, pidfd: fd, slot: slot, programStart: space.table.entry(slot).pointee.start_ns)
        threads[tid] = t
        return t
    }

    /// The context of thread `tid` if it still runs the program it was made
    /// for; a context left over from before an exec in place is retired, as
    /// if the thread had exited (its callers get ENOLINK, its names go).
    func current(_ tid: pid_t, _ space: AddressSpace) -> ThreadContext? {
        guard let t = threads[tid] else { return nil }
        if space.members[t.pid]?.slot == t.slot && space.table.entry(t.slot).pointee.start_ns == t.programStart { return t }
        retire(t, space)
        return nil
    }

    /// Process `pid` is loading a new program (exec in place): retire its
    /// threads' contexts now, so that the switcher, which cannot ask, sees
    /// their targets dead.
    func programReplaced(_ pid: pid_t, _ space: AddressSpace) {
        for t in threads.values where t.pid == pid { retire(t, space) }
    }

    /// May the runtime hold one more descriptor for an fd capability?  It
    /// raises its soft RLIMIT_NOFILE up to the hard limit as needed, and
    /// always keeps `descriptorReserve` descriptors free, so that guests
    /// cannot starve it (capfromfd then fails with EMFILE).
    func roomForFileCapability() -> Bool {
        var rl = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &rl) == 0 else { return false }
        // Held: fd capabilities, a pidfd per known thread, and a few of its own.
        let needed = rlim_t(fileCapabilities + threads.count + 64 + Kernel.descriptorReserve)
        if needed <= rl.rlim_cur { return true }
        guard needed <= rl.rlim_max else { return false }
        rl.rlim_cur = min(rl.rlim_max, max(needed, rl.rlim_cur * 2))
        return setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &rl) == 0
    }

    /// Give `t` its SCB capability (cosetup's data, source of its cookies)
    /// and its switcher control block.
    func ensureSCB(_ t: ThreadContext, _ space: AddressSpace) -> Bool {
        if t.scb == 0, let c = caps.mint(.scb, pid: t.pid, tid: t.tid) {
            let block = OpaquePointer(scbArea + Int(caps.index(of: c)) * Int(COLO_SCB_SIZE))
            let wchan = MemoryLayout<colo_proc_entry>.offset(of: \colo_proc_entry.wchan).map {
                (UnsafeMutableRawPointer(space.table.entry(t.slot)) + $0).assumingMemoryBound(to: CChar.self)
            }
            colo_scb_init(block, t.pid, t.tid, c & ~UInt64(COLO_CAP_TAG), Layout.slotBase(t.slot), wchan)
            caps.setObject(c, UInt64(UInt(bitPattern: block)))
            t.scb = c
            t.block = block
        }
        return t.scb != 0
    }

    /// cosetup's code capability, minted on first use.
    func codeCapability(_ pid: pid_t) -> UInt64 {
        if code == 0, let c = caps.mint(.code, pid: pid) { code = c }
        return code
    }

    /// Retire every thread whose pidfd says it has exited (a process's exit
    /// is the exit of all its threads).
    func threadsExited(_ space: AddressSpace) {
        while true {
            var ready = [UInt64](repeating: 0, count: 32)
            let n = ready.withUnsafeMutableBufferPointer { clinux_epoll_ready(watchFD, $0.baseAddress, 32) }
            if n <= 0 { return }
            for tid in ready.prefix(Int(n)) {
                if let t = threads[pid_t(truncatingIfNeeded: tid)] { retire(t, space) }
            }
        }
    }

    /// Forget an exited thread: the caller it was serving gets 0 (nothing received), those
    /// queued for it ENOLINK, its target stays
    /// known as dead (later calls: ENOLINK), its names go (knob
    /// debug.counregister_on_exit), its SCB capability is revoked.
    func retire(_ t: ThreadContext, _ space: AddressSpace) {
        threads[t.tid] = nil
        close(t.pidfd)
        if t.target != 0 {
            caps.markDead(t.target)
            if space.table[.counregisterOnExit] != 0 { names = names.filter { $0.value != t.target } }
        }
        if t.scb != 0 { caps.revoke(t.scb) }
        if let b = t.block { space.hands.retire(b) }
        t.acceptor = nil
        // The call it was serving received nothing (kern_cocall_slow: the exiting callee
        // wakes its caller, which returns the 0 bytes it started with).
        if let s = t.serving { t.serving = nil; finish(s, .value(0), space) }
        let waiting = t.queue
        t.queue = []
        for c in waiting { finish(c, .error(.ENOLINK), space) }
        if let s = t.sleep { clearSleep(t, s.1, space) }
    }

    // MARK: the rendezvous

    /// cocall_slow: queue the caller on the callee and hand over what can be
    /// handed over now.  The caller's answer comes with the callee's next coaccept.
    func cocall(_ call: GuestCall, from caller: ThreadContext, target: UInt64, _ b: CallBuffers,
                _ space: AddressSpace) -> CallResult {
        guard caller.cocallReady, let e = caps.lookup(target, .target) else { return .error(.EINVAL) }
        guard e.flags & UInt32(COLO_CAP_DEAD) == 0, let callee = current(e.tid, space) else { return .error(.ENOLINK) }
        if !callee.hasAccepted, let b = callee.block, colo_scb_state(b) != UInt32(COLO_SCB_NEW.rawValue) {
            return .error(.EPROTOTYPE)       // it accepts with the switcher's coaccept
        }
        guard callee.hasAccepted else { return .error(.EAGAIN) }
        callee.queue.append(Call(call: call, caller: caller, buffers: b))
        setSleep(caller, .busy, call, space)
        offer(callee, handling: call.id, space)
        return .pending
    }

    /// coaccept_slow: answer the previous caller with this call's output
    /// buffer, then take the next caller or sleep until one comes.
    func coaccept(_ call: GuestCall, by callee: ThreadContext, cookiep: UInt64, _ b: CallBuffers,
                  _ space: AddressSpace) -> CallResult {
        guard callee.coacceptReady else { return .error(.EINVAL) }
        if let s = callee.serving {
            callee.serving = nil
            let n = min(b.outLength, s.buffers.inLength)
            switch space.memory.copy(to: s.buffers.destination(s.caller, n), from: b.source(callee), count: n) {
            case nil: finish(s, .value(Int64(n)), space)
            case .destination: finish(s, .error(.EFAULT), space)
            case .source: finish(s, .error(.EFAULT), space); return .error(.EFAULT)
            }
        }
        callee.hasAccepted = true
        if let b = callee.block { colo_scb_set_slow(b) }
        callee.acceptor = Accept(call: call, cookiep: cookiep, buffers: b)
        setSleep(callee, .accept, call, space)
        offer(callee, handling: call.id, space)
        return .pending
    }

    /// While the callee waits in coaccept and callers queue, hand the oldest
    /// caller's request over: cookie and input buffer, then wake the callee.
    /// `handling` is the call being dispatched now (known to be waiting).
    private func offer(_ callee: ThreadContext, handling: UInt64, _ space: AddressSpace) {
        while let acc = callee.acceptor, !callee.queue.isEmpty {
            let c = callee.queue.removeFirst()
            if c.call.id != handling && !space.isWaiting(c.call) {
                clearSleep(c.caller, c.call, space)      // interrupted or gone meanwhile
                continue
            }
            if acc.cookiep != 0 && !space.memory.store(c.caller.cookie, at: acc.cookiep) {
                callee.queue.insert(c, at: 0)
                callee.acceptor = nil
                finishAccept(callee, acc, .error(.EFAULT), space)
                return
            }
            let n = min(c.buffers.outLength, acc.buffers.inLength)
            switch space.memory.copy(to: acc.buffers.destination(callee, n), from: c.buffers.source(c.caller), count: n) {
            case .source:
                finish(c, .error(.EFAULT), space)
            case .destination:
                // As kern_coaccept_slow: the callee's coaccept fails, the caller stays its
                // caller (its next coaccept answers it; if it dies, the call received nothing).
                callee.acceptor = nil
                let e: Errno = acc.buffers.input < UInt64(COLO_UNTAGGED_LIMIT) ? .EPROTO : .EFAULT
                if finishAccept(callee, acc, .error(e), space) {
                    callee.serving = c
                    setSleep(c.caller, .call, c.call, space)
                } else {
                    callee.queue.insert(c, at: 0)
                }
                return
            case nil:
                callee.acceptor = nil
                if finishAccept(callee, acc, .value(Int64(n)), space) {
                    callee.serving = c
                    setSleep(c.caller, .call, c.call, space)
                } else {
                    callee.queue.insert(c, at: 0)       // the callee stopped waiting (signal)
                }
            }
        }
    }

    /// Answer a caller and wake it.
    private func finish(_ c: Call, _ r: CallResult, _ space: AddressSpace) {
        space.answer(c.call, r)
        clearSleep(c.caller, c.call, space)
    }

    /// Answer a callee's coaccept; false if it was no longer waiting.
    @discardableResult
    private func finishAccept(_ callee: ThreadContext, _ acc: Accept, _ r: CallResult, _ space: AddressSpace) -> Bool {
        let ok = space.answer(acc.call, r)
        clearSleep(callee, acc.call, space)
        return ok
    }

    // MARK: WCHAN

    /// The WCHAN record of a process that has a slot.
    private func wchan(_ pid: pid_t, _ space: AddressSpace) -> Wchan? {
        if let w = wchans[pid] { return w }
        guard let slot = space.members[pid]?.slot,
              let offset = MemoryLayout<colo_proc_entry>.offset(of: \colo_proc_entry.wchan) else { return nil }
        let w = Wchan(UnsafeMutableRawPointer(space.table.entry(slot)) + offset)
        wchans[pid] = w
        return w
    }

    private func setSleep(_ t: ThreadContext, _ s: ThreadContext.Sleep, _ call: GuestCall, _ space: AddressSpace) {
        guard let w = wchan(t.pid, space) else { return }
        if t.sleep == nil { w.sleepers += 1 }
        t.sleep = (s, call.id)
        show(w, s)
    }

    private func clearSleep(_ t: ThreadContext, _ call: GuestCall, _ space: AddressSpace) {
        clearSleep(t, call.id, space)
    }

    /// The thread no longer sleeps in call `id`; the table shows no WCHAN once
    /// no thread of its process sleeps in a call.
    private func clearSleep(_ t: ThreadContext, _ id: UInt64, _ space: AddressSpace) {
        guard let s = t.sleep, s.1 == id else { return }
        t.sleep = nil
        guard let w = wchans[t.pid] else { return }
        w.sleepers -= 1
        if w.sleepers <= 0 {
            show(w, nil)
            wchans[t.pid] = nil     // the slot may be reused by another process
        }
    }

    /// Write a WCHAN into the table (the latest sleep of one of the process's threads).
    private func show(_ w: Wchan, _ s: ThreadContext.Sleep?) {
        guard w.shown != s else { return }
        w.shown = s
        let text: (UInt64, UInt64)
        switch s {
        case .accept?: text = Self.coaccept
        case .call?: text = Self.cocall
        case .busy?: text = Self.cobusy
        case nil: text = (0, 0)
        }
        // Two word stores: a reader sees the old name or the new one, never a mix of letters.
        w.field.storeBytes(of: text.0, toByteOffset: 0, as: UInt64.self)
        w.field.storeBytes(of: text.1, toByteOffset: MemoryLayout<UInt64>.size, as: UInt64.self)
    }

    /// A WCHAN name as the table's 16-byte field holds it (NUL-padded), in two words.
    private static func wchanWords(_ name: String) -> (UInt64, UInt64) {
        var words: (UInt64, UInt64) = (0, 0)
        withUnsafeMutableBytes(of: &words) { $0.copyBytes(from: name.utf8.prefix(15)) }
        return words
    }
    private static let coaccept = wchanWords("coaccept"), cocall = wchanWords("cocall"), cobusy = wchanWords("cobusy")
}
