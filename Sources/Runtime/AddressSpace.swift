// AddressSpace: the colocation kernel of one address space: spawning, slots, the serving loop, joins, lifetime.
import Bytes
import CLinux
import ColoABI
import Errors
import Glibc
import GuestShim
import Loader
import Switcher

/// What to run in the address space, and with which process context.
public struct SpawnRequest {
    public var path: ByteString
    public var argv: [ByteString]
    public var envp: [ByteString]
    /// Descriptors to install as 0, 1, 2 (nil: inherit the runtime's).
    public var stdio: [Int32]? = nil
    /// Working directory (nil: the runtime's).
    public var cwd: ByteString? = nil
    /// Credentials to switch to (nil: the runtime's).
    public var credentials: (uid: uid_t, gid: gid_t)? = nil

    public init(path: ByteString, argv: [ByteString], envp: [ByteString]) {
        self.path = path; self.argv = argv; self.envp = envp
    }
}

/// A process the runtime started: colocated in a slot, or (not colocatable) run natively.
public struct Member {
    public let pid: pid_t
    /// The slot, or nil for a program that ran with a real execve.
    public let slot: Int?
}

/// The colocation kernel of one address space.  The process that creates it never runs
/// guest code.  A new address space is a new mm, held by the in-mm agent the runtime forks
/// (SpaceAgent.swift, agent.c): every colocated process is a CLONE_VM process of the agent's
/// mm (and the runtime's child), living in a slot of its own, while the runtime's own memory
/// stays out of the guests' reach.  The address space of a fork child (ForkSpaces.swift) is
/// served the same way by a runtime of its own, whose agent the child starts in its mm.
public final class AddressSpace {
    public let table: SpaceTable
    public let runtimePID: pid_t
    var slotsInUse = [Bool](repeating: false, count: Layout.maxSlots)
    var members = [pid_t: Member]()
    /// Members that are not the runtime's children, with a pidfd each.
    var externalMembers = [pid_t: Int32]()
    /// The capability vector each slot's program was started with (AT_CAPV), by slot.
    var vectors = [Int: [UInt64]]()
    /// Exec in place between its plan and its commit, by thread.
    var pendingExecs = [pid_t: PendingExec]()
    /// Join clients waiting for the exit status of the process they started.
    var joinClients = [pid_t: Int32]()
    let initialIgnored: UInt64
    let initialBlocked: UInt64
    var controlSocket: Int32 = -1
    let socketPath: String
    /// Where the address space's colocation calls come from: the listener of its filter, or
    /// (a fork child's address space) the relay of the runtime that holds that listener.
    let channel: CallChannel
    /// Relays to the runtimes of fork children's address spaces (CallChannel.swift).
    let relays = RelayHub()
    /// coexecve()s waiting for their target, a fork child, to become an address space, and
    /// the fork children asked to become one, with when (ForkSpaces.swift).
    var pendingCoexecs = [PendingCoexec]()
    var askedToBecome = [pid_t: UInt64]()
    /// Capabilities, names and the slow-path rendezvous (KernelCalls).
    let kernel: Kernel
    /// What only a thread of the address space's mm can do, which the runtime asks of it.  It
    /// kills every process of the mm when the runtime ends, however that comes.
    let hands: Agent
    /// The agent's PID, if it is the runtime's child (not a fork child's agent).
    var agentPID: pid_t? { hands.startsRuntimeChildren ? hands.pid : nil }
    /// The address space's memory, through a process of its mm (KernelMemory.swift).
    var memory: GuestMemory { GuestMemory(pid: hands.mmProcess) }
    /// The slot headers' memory: block `i` is slot i's header, mapped shared by the runtime
    /// and the address space (a memfd; a fork child's copy becomes private, space.c).
    let headerFile: Int32
    /// Where the runtime sees the headers: the part of each it uses
    /// (COLO_SLOT_HEADER_RUNTIME_PART) side by side, slot i's at i times that size, each mapped
    /// from its block of the file when the slot is first used (a header at its slot's address,
    /// 64 GiB from the next, or the whole file in one mapping, 2 MiB a header, would cost a
    /// page-table page or more a member).  Only the runtime uses these addresses: what goes
    /// into shared memory names the slot's own (Layout.slotBase).
    let headerView: UInt64
    private var headerViewMapped = [Bool](repeating: false, count: Layout.maxSlots)
    /// Where the vDSO is in the address space's mm (a fork child's is its parent's, not this
    /// process's); nil: this process's, which the agent's fork keeps.
    let vdso: UInt64?

    /// Create a new address space: its agent's mm; with `forkChild`, the address space fork
    /// child `forkChild.child` becomes, whose calls come over the relay (space.c,
    /// ForkSpaces.swift) and whose agent it starts itself.
    public init(forkChild: (child: pid_t, relay: Int32)? = nil) throws(ColoError) {
        var ign: UInt64 = 0, blk: UInt64 = 0
        colo_capture_initial_signals(&ign, &blk)
        initialIgnored = ign
        initialBlocked = blk
        runtimePID = getpid()
        // The switcher reports signals to the in-process tracer: set in this image before the
        // agent's fork copies it (and before a fork child's runtime starts members from it).
        colo_trace_install()
        kernel = try Kernel()
        headerFile = clinux_memfd("colo slot headers")
        guard headerFile >= 0, ftruncate(headerFile, off_t(Layout.maxSlots) * off_t(COLO_SLOT_HEADER_SIZE)) == 0 else {
            throw .last("cannot create the slot headers' file")
        }
        try SpaceDirectory.ensure()
        table = try SpaceTable.create(path: SpaceDirectory.tablePath(runtimePID: runtimePID), runtimePID: runtimePID)
        Kernel.publishSwitcher(in: table)
        // `colo trace -- COMMAND` names itself the trace's reader; no program sees it.
        let reader = getenv("COLO_TRACE_READER").flatMap { pid_t(String(cString: $0)) } ?? 0
        unsetenv("COLO_TRACE_READER")
        try table.createTraceRing(reader: reader)
        socketPath = SpaceDirectory.socketPath(runtimePID: runtimePID)
        if let forkChild {
            _ = fcntl(forkChild.relay, F_SETFD, FD_CLOEXEC)
            channel = CallChannel(relay: forkChild.relay)
            hands = Agent(forkChild: forkChild.child)
            guard let v = Loader.vdso(of: forkChild.child) else { throw ColoError(.ESRCH, "process \(forkChild.child) is gone") }
            vdso = v
        } else {
            // Every shared structure is mapped: the agent's copies of them are the same memory.
            try Self.buildFilter()
            let agent = try Agent()
            channel = CallChannel(listener: agent.listener)
            hands = agent
            vdso = nil
        }
        // After the agent's fork: its mm has no use for the view.
        let size = Layout.maxSlots * Int(COLO_SLOT_HEADER_RUNTIME_PART)
        guard let v = mmap(nil, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0), v != MAP_FAILED else {
            throw .last("cannot reserve the slot headers' view")
        }
        headerView = UInt64(UInt(bitPattern: v))
        table.header.pointee.mm_pid = hands.mmProcess
        // Members orphaned by their parent's end (a shell's background job) become the
        // runtime's children, which it serves and reaps until the last one ends.
        _ = rawSyscall(Int(SYS_prctl), Int(PR_SET_CHILD_SUBREAPER), 1, 0, 0, 0)
        try openControlSocket()
    }

    deinit { shutdown() }

    /// Build the address space's seccomp program (colo_filter_program), which the agent
    /// installs on itself; every colocated process is cloned from it and inherits it.
    private static func buildFilter() throws(ColoError) {
        var prog = [colo_sock_filter](repeating: colo_sock_filter(), count: Int(COLO_FILTER_MAX))
        guard colo_build_filter(&prog, UInt32(prog.count)) > 0 else { throw ColoError(.E2BIG, "the seccomp filter does not fit") }
    }

    /// Is `pid` a process of this address space: one of its mm (kcmp KCMP_VM), or the runtime,
    /// which stands for it (it is the parent of the members it started, and `colo ps` lists it
    /// with them), so that coexecve(getppid(), ...) of such a member runs in place, as it did
    /// when the runtime lived in the mm.
    func inThisSpace(_ pid: pid_t) -> Bool { pid == runtimePID || shareAddressSpace(pid, hands.mmProcess) }

    /// Withdraw the address space from view: remove its table file and control
    /// socket.  Call before exiting (exit(3) runs no deinitializers).
    public func shutdown() {
        unlink(table.path)
        unlink(SpaceTable.traceRingPath(tablePath: table.path))
        if controlSocket >= 0 { close(controlSocket); unlink(socketPath); controlSocket = -1 }
    }

    /// The runtime's own executable (device, inode): a descriptor a member opened on
    /// /proc/self/exe refers to it.
    static let runtimeExecutable: (dev: UInt64, ino: UInt64) = {
        var st = stat()
        return stat("/proc/self/exe", &st) == 0 ? (UInt64(st.st_dev), UInt64(st.st_ino)) : (0, 0)
    }()

    static var stackSize: Int {
        var rl = rlimit()
        getrlimit(__rlimit_resource_t(RLIMIT_STACK.rawValue), &rl)
        if rl.rlim_cur == rlim_t.max { return 8 << 20 }   // RLIM_INFINITY
        let room = Int(COLO_STACK_TOP_OFFSET - COLO_STACK_LIMIT_OFFSET)
        return min(max(Int(rl.rlim_cur) & ~4095, 128 << 10), room)
    }

    /// Start a program: colocated in a fresh slot if it can be, otherwise natively.
    public func spawn(_ r: SpawnRequest) throws(ColoError) -> Member {
        let plan: ExecPlan
        do throws(LoadError) { plan = try Loader.plan(path: r.path, argv: r.argv, envp: r.envp, stackSize: Self.stackSize) }
        catch { throw ColoError(error.errno, error.description) }
        switch plan {
        case .nativeExec(let path, let argv):
            return try spawnNative(r, path: path, argv: argv)
        case .colocate(let image):
            return try spawnColocated(r, image: image)
        }
    }

    func allocateSlot() throws(ColoError) -> Int {
        guard let i = slotsInUse.firstIndex(of: false) else { throw ColoError(.EAGAIN, "address space is full") }
        slotsInUse[i] = true
        return i
    }

    /// The vector a program exec'd by `pid` inherits (kern.opportunistic_capv):
    /// the one `pid` was started with, if it is a member of this address space.
    func inheritedVector(of pid: pid_t) -> [UInt64] {
        guard table[.opportunisticCapv] != 0, let s = members[pid]?.slot else { return [] }
        return vectors[s] ?? []
    }

    func releaseSlot(_ i: Int) {
        vectors[i] = nil
        hands.unmap(Layout.slotBase(i), Layout.slotSize)
        _ = clinux_punch_hole(headerFile, Int64(i) * Int64(COLO_SLOT_HEADER_SIZE), Int64(COLO_SLOT_HEADER_SIZE))
        table.clear(slot: i)
        slotsInUse[i] = false
    }

    func slotHeader(_ index: Int) -> UnsafeMutablePointer<colo_slot> {
        let at = headerView + UInt64(index) * UInt64(COLO_SLOT_HEADER_RUNTIME_PART)
        if !headerViewMapped[index] {
            // Over the reserved view: fails only without memory for the mapping itself.
            let p = mmap(UnsafeMutableRawPointer(bitPattern: UInt(at)), Int(COLO_SLOT_HEADER_RUNTIME_PART), PROT_READ | PROT_WRITE,
                         MAP_SHARED | MAP_FIXED, headerFile, off_t(index) * off_t(COLO_SLOT_HEADER_SIZE))
            precondition(p != MAP_FAILED, "cannot map slot \(index)'s header into the runtime's view")
            headerViewMapped[index] = true
        }
        return UnsafeMutablePointer<colo_slot>(bitPattern: UInt(at))!
    }

    /// Map a fresh, zeroed slot header (its block of the header file) at its slot in the address
    /// space; the runtime sees it through `slotHeader`.
    func mapSlotHeader(_ index: Int) throws(ColoError) {
        try hands.mapHeader(index, file: headerFile)
    }

    /// Map a validated program into slot `index` (header mapped, rest empty),
    /// set the header up for it and record it in the table.
    @discardableResult
    /// With `beforeStart`, the plan may be applied as late as the start of the slot's program
    /// (an error of applying it is then that start's).
    func load(_ image: ProgramImage, envp: [ByteString], slot index: Int, owner: pid_t, ppid: pid_t,
              capv: [UInt64] = [], beforeStart: Bool = false) throws(ColoError) -> LoadedProgram {
        let base = Layout.slotBase(index)
        let loaded: LoadedProgram
        do throws(LoadError) {
            let plan: MappingPlan
            (loaded, plan) = try Loader.layout(image, into: SlotLayout(base: base), envp: envp, capv: capv, stackSize: Self.stackSize,
                                               vdso: vdso)
            try hands.apply(plan, late: beforeStart)
        } catch { throw ColoError(error.errno, error.description) }
        // The process's threads belonged to its previous program: their
        // targets die with it (callers get ENOLINK, names go).
        if owner != 0 { kernel.programReplaced(owner, self) }
        let slot = slotHeader(index)
        slot.pointee.magic = UInt64(COLO_SLOT_MAGIC)
        slot.pointee.index = UInt32(index)
        slot.pointee.runtime_pid = runtimePID
        slot.pointee.owner_pid = owner
        slot.pointee.brk_start = loaded.brkStart
        slot.pointee.brk_cur = loaded.brkStart
        slot.pointee.brk_mapped_end = loaded.brkStart
        slot.pointee.brk_limit = UInt64(COLO_BRK_LIMIT)
        slot.pointee.mmap_lo = base + UInt64(COLO_MMAP_LO_OFFSET)
        slot.pointee.mmap_hi = base + UInt64(COLO_MMAP_HI_OFFSET)
        slot.pointee.mmap_cursor = loaded.mmapCursor
        slot.pointee.entry = loaded.entry
        slot.pointee.initial_sp = loaded.stackPointer
        slot.pointee.guest_sigsys = colo_sigaction_rec()
        withUnsafeMutableBytes(of: &slot.pointee.guest_actions) { _ = memset($0.baseAddress!, 0, $0.count) }
        slot.pointee.switcher_signals = 0
        storeCString(loaded.comm, into: &slot.pointee.comm)
        let exe = image.exePath.bytes.prefix(Int(PATH_MAX) - 1)
        storeCString(ByteString(exe), into: &slot.pointee.exe)
        slot.pointee.exe_len = UInt32(exe.count)
        slot.pointee.runtime_exe_dev = Self.runtimeExecutable.dev
        slot.pointee.runtime_exe_ino = Self.runtimeExecutable.ino
        var images = [ProcessRecord.Image(path: loaded.program.path, base: loaded.program.loadBias,
                                          start: loaded.program.start, end: loaded.program.end)]
        if let i = loaded.interpreter {
            images.append(.init(path: i.path, base: i.loadBias, start: i.start, end: i.end))
        }
        table.record(slot: index, pid: owner, ppid: ppid, argv: loaded.argv, images: images, brkStart: loaded.brkStart)
        vectors[index] = capv
        return loaded
    }

    private func spawnColocated(_ r: SpawnRequest, image: ProgramImage) throws(ColoError) -> Member {
        let index = try allocateSlot()
        var started = false
        defer { if !started { releaseSlot(index) } }
        try mapSlotHeader(index)
        try load(image, envp: r.envp, slot: index, owner: 0, ppid: runtimePID, beforeStart: true)
        let slot = slotHeader(index)
        slot.pointee.ignored_signals = initialIgnored
        slot.pointee.signal_mask = initialBlocked
        let stdio = r.stdio ?? [-1, -1, -1]
        slot.pointee.stdio = (stdio[0], stdio[1], stdio[2])
        if let c = r.credentials {
            slot.pointee.set_creds = 1; slot.pointee.uid = c.uid; slot.pointee.gid = c.gid
        }
        storeCString(r.cwd ?? "", into: &slot.pointee.cwd)
        let (pid, pidfd) = try hands.spawn(slot: index, stdio: stdio.filter { $0 >= 0 })
        started = true
        slot.pointee.owner_pid = pid
        table.entry(index).pointee.pid = pid
        let m = Member(pid: pid, slot: index)
        // A fork child's agent starts members as its own children (and sends their pidfds).
        if pidfd >= 0 { adoptExternal(m, pidfd: pidfd) } else { members[pid] = m }
        return m
    }

    /// Track a member that is not the runtime's child (an exec'd vfork child):
    /// its exit is seen through a pidfd (`pidfd`, or one opened now), and its parent reaps it.
    func adoptExternal(_ m: Member, pidfd: Int32? = nil) {
        let fd = pidfd ?? Int32(rawSyscall(Int(SYS_pidfd_open), Int(m.pid), 0))
        guard fd >= 0 else { if let s = m.slot { releaseSlot(s) }; return }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        members[m.pid] = m
        externalMembers[m.pid] = fd
    }

    /// Release the slots of external members that have exited and tell their join clients;
    /// their statuses (as a shell reports them), once their parents have reaped them (the
    /// kernel keeps a reaped process's status for its pidfds), else 0.
    @discardableResult
    func reapExternal() -> [(pid_t, Int32)] {
        var out = [(pid_t, Int32)]()
        for (pid, fd) in externalMembers {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 0) > 0 else { continue }
            var info = clinux_pidfd_info()
            info.mask = clinux_pidfd_info_exit
            let reaped = ioctl(fd, clinux_pidfd_get_info, &info) == 0 && info.mask & clinux_pidfd_info_exit != 0
            close(fd)
            externalMembers[pid] = nil
            let code = reaped ? shellStatus(info.exit_code) : 0
            if let m = members.removeValue(forKey: pid), let s = m.slot { releaseSlot(s) }
            if let c = joinClients.removeValue(forKey: pid) {
                JoinWire.send(c, "exit \(code)")
                close(c)
            }
            out.append((pid, code))
        }
        return out
    }

    /// A program that cannot be colocated (non-PIE) runs with a real execve, as
    /// CheriBSD falls back to an ordinary exec.
    private func spawnNative(_ r: SpawnRequest, path: ByteString, argv: [ByteString]) throws(ColoError) -> Member {
        if let c = r.credentials, c.uid != geteuid() || c.gid != getegid() {
            throw ColoError(.EPERM, "\(path): cannot run a non-colocatable program as another user")
        }
        var fa = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fa)
        defer { posix_spawn_file_actions_destroy(&fa) }
        if let s = r.stdio { for i in 0..<3 where s[i] >= 0 { posix_spawn_file_actions_adddup2(&fa, s[i], Int32(i)) } }
        if let cwd = r.cwd, let addchdir = GNU.spawnAddChdir { _ = cwd.withCString { addchdir(&fa, $0) } }
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var dfl = sigset_t(), mask = sigset_t()
        sigemptyset(&dfl); sigemptyset(&mask)
        for sig in 1...64 where sig != SIGKILL && sig != SIGSTOP {
            if (initialIgnored >> UInt64(sig - 1)) & 1 == 0 { sigaddset(&dfl, Int32(sig)) }
            if (initialBlocked >> UInt64(sig - 1)) & 1 == 1 { sigaddset(&mask, Int32(sig)) }
        }
        posix_spawnattr_setsigdefault(&attr, &dfl)
        posix_spawnattr_setsigmask(&attr, &mask)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        var pid: pid_t = 0
        let rc = argv.withCStringArray { av in r.envp.withCStringArray { ev in
            path.withCString { posix_spawn(&pid, $0, &fa, &attr, av, ev) }
        } }
        guard rc == 0 else { throw ColoError(Errno(rc), "\(path): \(Errno(rc))") }
        let m = Member(pid: pid, slot: nil)
        members[pid] = m
        return m
    }

    /// Serve the address space until `main` has exited and, after it, every other process
    /// the runtime serves (members, background jobs that outlived their shell, fork children:
    /// the runtime is their subreaper) has ended.  `mainEnded` gets main's status, as a shell
    /// reports it, as soon as main exits; the same status is returned at the end.
    public func run(main: pid_t, mainEnded: (Int32) -> Void = { _ in }) -> Int32 {
        var set = sigset_t()
        sigemptyset(&set)
        for s in [SIGCHLD, SIGTERM, SIGHUP] { sigaddset(&set, s) }
        sigprocmask(SIG_BLOCK, &set, nil)
        signal(SIGINT, SIG_IGN)     // the terminal sends these to the command too
        signal(SIGQUIT, SIG_IGN)
        let sfd = Int32(withUnsafePointer(to: &set) { rawSyscall(Int(SYS_signalfd4), -1, Int(bitPattern: $0), 8, Int(O_CLOEXEC | O_NONBLOCK)) })
        var mainStatus: Int32? = nil
        var mainExternalStatus: Int32? = nil
        // A fork child that became an address space is not the runtime's child: its end is
        // seen through its pidfd, and its parent has its status.
        let external = externalMembers[main] != nil
        // A child's change of state raises SIGCHLD (every child the runtime has exits with it:
        // members, the agent, orphans it adopts), which the signalfd reports: only then is
        // there anything to reap, not at every call served.
        var childrenChanged = true
        while mainStatus == nil || hasChildren || !externalMembers.isEmpty || !relays.isEmpty {
            if childrenChanged {
                childrenChanged = false
                for (pid, status) in reapExited() where pid == main && mainStatus == nil {
                    mainStatus = status
                    mainEnded(status)
                }
            }
            if external && mainStatus == nil && externalMembers[main] == nil {
                mainStatus = mainExternalStatus ?? 0
                mainEnded(mainStatus!)
            }
            if mainStatus != nil && !hasChildren && externalMembers.isEmpty && relays.isEmpty { break }
            var fds = [pollfd(fd: sfd, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: controlSocket, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: channel.fd, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: kernel.watchFD, events: Int16(POLLIN), revents: 0)]
            let relaySockets = relays.sockets
            fds += relaySockets.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            fds += externalMembers.values.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            let timeout: Int32 = channel.hasQueued ? 0 : pendingCoexecs.isEmpty ? -1 : 100
            if timeout != 0 { hands.flush() }
            if poll(&fds, nfds_t(fds.count), timeout) < 0 && errno != EINTR { break }
            // Relays first: a relayed runtime's hello comes before the calls it serves.
            for (i, socket) in relaySockets.enumerated() where fds[4 + i].revents != 0 {
                relays.serve(socket, listener: channel.fd)
            }
            retryCoexecs()
            if fds[0].revents != 0 {
                var si = [UInt32](repeating: 0, count: 32)     // struct signalfd_siginfo
                while read(sfd, &si, 128) > 0 {
                    if si[0] == UInt32(SIGCHLD) { childrenChanged = true }
                    else if mainStatus == nil { kill(main, Int32(si[0])) }
                }
            }
            if fds[1].revents != 0 { acceptJoin() }
            if fds.dropFirst(4 + relaySockets.count).contains(where: { $0.revents != 0 }) {
                for (pid, status) in reapExternal() where pid == main { mainExternalStatus = status }
            }
            if fds[3].revents != 0 { kernel.threadsExited(self) }
            if fds[2].revents & Int16(POLLIN) != 0 || channel.hasQueued, let call = channel.receive() {
                if let relay = relays.route(call, home: hands.mmProcess) {
                    if relays.pass(call, to: relay) { continue }
                    channel.respond(id: call.id, .error(.ENOSYS))
                    continue
                }
                let result = SyscallTable.dispatch(self, call)
                if case .pending = result { continue }
                channel.respond(id: call.id, result)
            }
        }
        close(sfd)
        return mainStatus ?? 127
    }

    /// Has the runtime a child left (a member, or an orphan it adopted as subreaper), the
    /// agent aside?
    var hasChildren: Bool {
        guard let agentPID else {
            var info = siginfo_t()
            return waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT | __WALL) == 0
        }
        guard let children = runtimeChildren else { return true }
        return children.contains { $0 != agentPID }
    }

    /// The runtime's children, as the kernel lists them (nil if it cannot be read).
    var runtimeChildren: [pid_t]? {
        readFile("/proc/self/task/\(runtimePID)/children")?
            .split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { pid_t($0) }
    }

    /// Answer a system call left pending earlier.  False if its caller stopped
    /// waiting meanwhile (interrupted by a signal, or dead).
    @discardableResult
    func answer(_ call: GuestCall, _ result: CallResult) -> Bool {
        channel.respond(id: call.id, result)
    }

    /// Is the guest still waiting for this call?  (SECCOMP_IOCTL_NOTIF_ID_VALID)
    func isWaiting(_ call: GuestCall) -> Bool {
        channel.isValid(id: call.id)
    }

    /// Block until member `pid` exits; its status as a shell reports it.
    public func wait(for pid: pid_t) -> Int32? {
        while members[pid] != nil {
            for (p, status) in reapExited(block: true) where p == pid { return status }
        }
        return nil
    }

    /// Reap every exited child; release its slot and tell its join client.
    @discardableResult
    func reapExited(block: Bool = false) -> [(pid_t, Int32)] {
        var out = [(pid_t, Int32)]()
        while true {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, (block && out.isEmpty ? 0 : WNOHANG) | __WALL | WUNTRACED)
            if pid <= 0 { break }
            if status & 0xff == 0x7f {        // stopped (job control): only a tracer cares
                if members[pid] != nil { colo_trace_wait_status(pid, status) }
                continue
            }
            if pid == agentPID { agentEnded(); continue }
            let code = shellStatus(status)
            if let m = members.removeValue(forKey: pid) {
                colo_trace_wait_status(pid, status)
                if let s = m.slot {
                    reportStartFailure(slot: s)
                    releaseSlot(s)
                }
            }
            if let c = joinClients.removeValue(forKey: pid) {
                JoinWire.send(c, "exit \(code)")
                close(c)
            }
            out.append((pid, code))
        }
        return out
    }

    /// The agent is gone (killed, or its memory scribbled over): nothing can be started,
    /// mapped or retired in the address space any more, so every process of it is killed, as
    /// when the runtime ends; their statuses are reaped and reported as usual.
    private func agentEnded() {
        printError("colo: the address space's agent (process \(agentPID ?? 0)) ended; its processes are killed")
        // What the runtime itself knows (its records and its children), never the table's
        // PIDs, which a guest can write: they could name any process.
        let pids = Set(members.keys).union(runtimeChildren ?? [])
        for pid in pids where pid > 0 && pid != runtimePID && pid != agentPID { kill(pid, SIGKILL) }
    }

    private func reportStartFailure(slot: Int) {
        let p = slotHeader(slot)
        // The header is guest-writable: a step or errno start.c cannot have written is noise.
        if p.pointee.start_error > 0 && p.pointee.start_error < 4096 && (1...6).contains(p.pointee.start_step) {
            let e = p.pointee.start_error
            printError("colo: start-up of a colocated process failed at step \(p.pointee.start_step): \(String(cString: strerror(e)))")
        }
    }

    // MARK: joining from outside

    private func openControlSocket() throws(ColoError) {
        unlink(socketPath)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw .last("socket") }
        var addr = unixAddress(socketPath)
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard ok == 0, listen(fd, 16) == 0 else { close(fd); throw .last("cannot listen on \(socketPath)") }
        chmod(socketPath, 0o666)    // who may join is decided by SO_PEERCRED
        controlSocket = fd
    }

    private func acceptJoin() {
        while true {
            let c = Int32(rawSyscall(Int(SYS_accept4), Int(controlSocket), 0, 0, Int(O_CLOEXEC)))
            if c < 0 { return }
            var cred: (pid: Int32, uid: UInt32, gid: UInt32) = (0, 0, 0)     // SO_PEERCRED
            // A client whose credentials cannot be read is nobody's: refused.
            let known = clinux_peer_credentials(c, &cred.pid, &cred.uid, &cred.gid) == 0
            var tv = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            guard known, cred.uid == geteuid() || cred.uid == 0 || geteuid() == 0 else {
                JoinWire.send(c, "error \(EPERM) permission denied: not the address space's user")
                close(c); continue
            }
            guard let req = JoinWire.receiveRequest(c) else {
                JoinWire.send(c, "error \(EPROTO) malformed join request"); close(c); continue
            }
            var sr = SpawnRequest(path: req.path, argv: req.argv, envp: req.envp)
            sr.stdio = req.fds.count == 3 ? req.fds : nil
            sr.cwd = req.cwd
            if cred.uid != geteuid() || cred.gid != getegid() { sr.credentials = (cred.uid, cred.gid) }
            do throws(ColoError) {
                let m = try spawn(sr)
                joinClients[m.pid] = c
                JoinWire.send(c, "started \(m.pid)")
            } catch {
                JoinWire.send(c, "error \(error.errno) \(error.message)")
                close(c)
            }
            for fd in req.fds { close(fd) }
        }
    }
}

/// The status a shell reports for a wait status: the exit code, or 128+signal.
public func shellStatus(_ status: Int32) -> Int32 {
    let sig = status & 0x7f
    return sig == 0 ? (status >> 8) & 0xff : 128 + sig
}

func unixAddress(_ path: String) -> sockaddr_un {
    unixAddress(ByteString(path))
}

func unixAddress(_ path: ByteString) -> sockaddr_un {
    var addr = sockaddr_un()
    addr.sun_family = sa_family_t(AF_UNIX)
    storeCString(path, into: &addr.sun_path)
    return addr
}

