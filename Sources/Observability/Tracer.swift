// Tracer: colo trace with ptrace (like strace -f), and the argument formatting both tracers share.
import Bytes
import CLinux
import ColoABI
import CSeccomp
import Glibc
import GuestShim
import Runtime
import Switcher

/// `colo trace`: a system-call tracer for colocated processes (ptrace, like strace -f).
///
/// Design.  The tracer is a separate, ordinary process that is not a member of any
/// address space and is not under the address space's seccomp filter:
///
/// - `colo trace -- COMMAND` forks.  The child waits on a pipe until the parent has
///   seized it (`PTRACE_SEIZE` with TRACESYSGOOD|TRACEFORK|TRACEVFORK|TRACECLONE|TRACEEXEC
///   and EXITKILL), then becomes the runtime exactly as `colo COMMAND` does (creates the
///   AddressSpace and spawns COMMAND).  Every guest the runtime clones, and everything the
///   guests start, is attached automatically through the fork/vfork/clone options.  The
///   runtime itself (and its threads) is resumed with `PTRACE_CONT`, so its own system
///   calls are neither stopped nor shown; guests are resumed with `PTRACE_SYSCALL`.
/// - `colo trace -a PID` seizes every member of PID's address space
///   (`SpaceDirectory.space(containing:)`) and interrupts each once to start system-call
///   stops; it also seizes the runtime's threads (quietly, as above) so that members
///   started later (`colo --join`, coexec) are traced too.  On SIGINT/SIGTERM it interrupts every tracee and `PTRACE_DETACH`es it in that
///   stop (re-injecting a pending signal), which leaves the programs running.
///
/// Each stop is decoded with `PTRACE_GET_SYSCALL_INFO`.  Calls whose instruction pointer
/// lies outside the slot region `[Layout.regionBase, Layout.regionEnd)` are issued by the
/// switcher (the SIGSYS handler, the start and exec-in-place code), and are folded: a
/// call made by the guest whose exit is followed by a SIGSYS signal-delivery-stop was
/// trapped by the filter; it is reported once, with the result that the handler's
/// `rt_sigreturn` puts in the guest's registers (or `0` for an `execve` that replaced the
/// program in place, seen as the next call from guest code or as `PTRACE_EVENT_EXEC`).
/// Processes that left colocation by a real `execve` are traced without folding.
public final class Tracer {
    public struct Options {
        public var output: Int32 = 2
        public var pids: Set<pid_t> = []
        public var names: Set<String> = []
        public var json = false
        public init() {}
    }

    // ptrace(2) options and events (the requests are <sys/ptrace.h>'s PTRACE_*, through CLinux).
    static let traceOptions = Int(PTRACE_O_TRACESYSGOOD.rawValue | PTRACE_O_TRACEFORK.rawValue | PTRACE_O_TRACEVFORK.rawValue
                                  | PTRACE_O_TRACECLONE.rawValue | PTRACE_O_TRACEEXEC.rawValue)
    static let exitKill = Int(PTRACE_O_EXITKILL.rawValue)
    static let eventExec = Int32(PTRACE_EVENT_EXEC.rawValue), eventStop = Int32(PTRACE_EVENT_STOP.rawValue)
    static let wall: Int32 = __WALL

    static let infoEntry = UInt8(PTRACE_SYSCALL_INFO_ENTRY.rawValue), infoExit = UInt8(PTRACE_SYSCALL_INFO_EXIT.rawValue)

    struct Call { var nr: Int; var args: [UInt64]; var text: String; var guest: Bool }

    final class Tracee {
        let pid: pid_t
        var quiet: Bool          // the runtime and its threads: no syscall stops
        var native = false       // left colocation with a real execve: no folding
        var entry: Call?         // between entry and exit
        var finished: (Call, Int64)?   // completed guest call, printed at the next stop
        var trapped: Call?       // trapped to the SIGSYS handler, awaiting its result
        var child: pid_t?        // the child the handler created for a trapped fork/vfork/clone
        var finishedAt: UInt64 = 0   // rdtsc at the stop that completed `finished`
        var trappedAt: UInt64 = 0    // ... and the call now in `trapped`
        init(pid: pid_t, quiet: Bool) { self.pid = pid; self.quiet = quiet }
    }

    var options: Options
    static let debug = getenv("COLO_TRACE_DEBUG") != nil
    var tracees = [pid_t: Tracee]()
    var rootPID: pid_t = 0
    var runtimeTgid: pid_t = 0     // the runtime: its threads are traced quietly
    var rootStatus: Int32 = 0
    /// Lines not yet written; `buffered`: write them in batches (the in-process tracer).
    var output = [UInt8]()
    var buffered = false
    /// The in-process tracer's calls that end later (exec, vfork), by tid, with their pid.
    var endsLater = [pid_t: (pid: pid_t, call: Call)]()
    /// Processes whose exit line is shown already.
    var exitShown = Set<pid_t>()
    /// pidfds of the processes the in-process tracer has seen (-1: done with it).
    var pidfds = [pid_t: Int32]()
    /// Times in a row the in-process tracer found nothing to read.
    var idleRounds = 0
    /// Calls that may block and have begun, by tid: shown as unfinished once they have
    /// taken a while or something else of the thread comes first.
    var inProgress = [pid_t: [(pid: pid_t, call: Call, began: UInt64, shown: Bool)]]()

    // The switcher's event log (fast cocalls, which make no system call): on while the
    // tracer runs, read at every stop and every `tickMicroseconds`, and merged into the
    // ptrace-derived lines by time stamp (rdtsc when the tracer saw each stop).
    var log: SwitcherLog?
    var logTable: SpaceTable?
    var logTablePath: String?
    var pendingEvents = [SwitcherLog.Event]()
    var stamp: UInt64 = 0
    static let tickMicroseconds = 20_000
    /// How long a switcher event may wait for an earlier ptrace line that is held back.
    static let holdNanoseconds = 200_000_000.0

    public init(options: Options) {
        self.options = options
        // strace's -e trace=NAME,... spelling too.
        self.options.names = Set(options.names.map { $0.hasPrefix("trace=") ? String($0.dropFirst(6)) : $0 })
    }

    static func ptrace(_ req: Int, _ pid: pid_t, _ addr: Int = 0, _ data: Int = 0) -> Int {
        rawSyscall(Int(SYS_ptrace), req, Int(pid), addr, data)
    }

    static func ptrace(_ req: __ptrace_request, _ pid: pid_t, _ addr: Int = 0, _ data: Int = 0) -> Int {
        ptrace(Int(req.rawValue), pid, addr, data)
    }

    // MARK: - Starting

    /// Fork; the child runs `start` (which becomes the runtime) once seized.  Returns the
    /// exit status to give (the runtime's).
    public func launch(_ start: () -> Never) -> Int32 {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { return 1 }
        let child = fork()
        if child < 0 { return 1 }
        if child == 0 {
            close(fds[1])
            var b: UInt8 = 0
            _ = read(fds[0], &b, 1)
            close(fds[0])
            start()
        }
        close(fds[0])
        rootPID = child
        runtimeTgid = child
        let r = Self.ptrace(PTRACE_SEIZE, child, 0, Self.traceOptions | Self.exitKill)
        if r < 0 { printError("colo trace: ptrace(PTRACE_SEIZE, \(child)): \(String(cString: strerror(Int32(-r))))"); kill(child, SIGKILL); return 1 }
        tracees[child] = Tracee(pid: child, quiet: true)
        logTablePath = SpaceDirectory.tablePath(runtimePID: child)
        close(fds[1])
        // ^C and ^\ are for the traced programs (and the runtime): the tracer stays to
        // report their ends, and ends with the runtime.
        signal(SIGINT, SIG_IGN)
        signal(SIGQUIT, SIG_IGN)
        loop()
        closeLog()
        return rootStatus
    }

    /// Attach to every member of `pid`'s address space; returns when they are gone or on
    /// SIGINT/SIGTERM (after detaching).
    public func attach(_ pid: pid_t) -> Int32 {
        guard let space = SpaceDirectory.space(containing: pid) else {
            printError("colo trace: \(pid) is not in an address space"); return 1
        }
        var any = false
        for m in space.members {
            let r = Self.ptrace(PTRACE_SEIZE, m.pid, 0, Self.traceOptions)
            if r < 0 { printError("colo trace: attach \(m.pid): \(String(cString: strerror(Int32(-r))))"); continue }
            tracees[m.pid] = Tracee(pid: m.pid, quiet: false)
            _ = Self.ptrace(PTRACE_INTERRUPT, m.pid)
            any = true
        }
        guard any else { return 1 }
        // The runtime's threads, quietly (no system-call stops): members it starts from now
        // on (colo --join, coexec) are traced from their first instruction.
        let rt = space.table.runtimePID
        runtimeTgid = rt
        logTablePath = space.table.path
        openLog()
        if let dir = opendir("/proc/\(rt)/task") {
            while let ent = readdir(dir) {
                let name = withUnsafeBytes(of: ent.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                guard let tid = pid_t(name), tracees[tid] == nil else { continue }
                if Self.ptrace(PTRACE_SEIZE, tid, 0, Self.traceOptions) == 0 { tracees[tid] = Tracee(pid: tid, quiet: true) }
            }
            closedir(dir)
        }
        Self.detachOnSignals()
        loop()
        closeLog()
        return 0
    }

    /// SIGINT and SIGTERM end an attached trace (tracerInterrupted); without SA_RESTART,
    /// so that a waitpid returns EINTR.
    static func detachOnSignals() {
        var sa = sigaction()
        sa.__sigaction_handler.sa_handler = { _ in tracerInterrupted = 1 }
        sa.sa_flags = 0
        sigaction(SIGINT, &sa, nil)
        sigaction(SIGTERM, &sa, nil)
    }

    // MARK: - The loop

    func loop() {
        while true {
            if tracerInterrupted != 0 { detachAll(); return }
            var status: Int32 = 0
            let pid = waitpid(-1, &status, Self.wall)
            stamp = SwitcherLog.rdtsc()
            if pid < 0 {
                if errno == EINTR { tick(); continue }
                return
            }
            if log == nil { openLog() }
            let t = tracee(pid)
            if status & 0x7f == 0 || (status & 0x7f != 0x7f) {      // exited or killed
                flush(t)
                if status & 0x7f == 0 {
                    let code = (status >> 8) & 0xff
                    if pid == rootPID { rootStatus = code }
                    if !t.quiet { event(pid, "exited", "+++ exited with \(code) +++", extra: "\"status\":\(code)") }
                } else {
                    let sig = status & 0x7f
                    if pid == rootPID { rootStatus = 128 + sig }
                    if !t.quiet { event(pid, "killed", "+++ killed by \(Self.signalName(sig)) +++", extra: "\"signal\":\"\(Self.signalName(sig))\"") }
                }
                tracees[pid] = nil
                continue
            }
            let sig = (status >> 8) & 0xff
            let ev = (status >> 16) & 0xffff
            if Self.debug && sig != SIGTRAP | 0x80 { printError("[\(pid) stop sig=\(sig) ev=\(ev)]") }
            if sig == SIGTRAP | 0x80 {
                syscallStop(t)
                resume(t, 0)
            } else if sig == SIGTRAP && ev != 0 {
                if ev == Self.eventExec {
                    flush(t)
                    if let call = t.trapped ?? t.entry, Self.execLike.contains(call.nr) {
                        report(t.pid, call, 0)
                    }
                    t.trapped = nil; t.entry = nil; t.native = true
                    if t.quiet && pid != rootPID { t.quiet = false }
                } else if ev >= 1 && ev <= 3, t.trapped != nil {
                    var msg: UInt = 0
                    _ = withUnsafeMutablePointer(to: &msg) {
                        Self.ptrace(PTRACE_GETEVENTMSG, pid, 0, Int(bitPattern: $0))
                    }
                    t.child = pid_t(truncatingIfNeeded: msg)
                }
                resume(t, 0)
            } else if ev == Self.eventStop {
                if [SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU].contains(sig) {
                    // A group-stop (job control): stay stopped until SIGCONT, still traced.
                    flush(t)
                    if !t.quiet { event(pid, "stopped", "--- stopped by \(Self.signalName(sig)) ---", extra: "\"signal\":\"\(Self.signalName(sig))\"") }
                    _ = Self.ptrace(PTRACE_LISTEN, pid)
                } else {
                    resume(t, 0)     // new-child, interrupt or end-of-listen stop
                }
            } else {
                // signal-delivery-stop
                if !t.native && Self.switcherSignal(pid, sig) {
                    // Syscall User Dispatch (a callee's system call on a borrowed context)
                    // or a fault of callee code: the switcher hands both to the callee's own
                    // thread, and its log says so.
                } else if sig == SIGSYS, !t.native, let (call, _) = t.finished, call.guest {
                    t.finished = nil
                    t.trapped = call
                    t.trappedAt = t.finishedAt
                } else {
                    flush(t)
                    if !t.quiet { event(pid, "signal", "--- \(Self.signalName(sig)) ---", extra: "\"signal\":\"\(Self.signalName(sig))\"") }
                }
                resume(t, sig)
            }
        }
    }

    func tracee(_ pid: pid_t) -> Tracee {
        if let t = tracees[pid] { return t }
        // A new child: quiet if it is a thread of the runtime.
        var quiet = false
        if runtimeTgid != 0, let s = readFile("/proc/\(pid)/status"),
           let line = s.split(separator: "\n").first(where: { $0.hasPrefix("Tgid:") }),
           Int32(line.dropFirst(5).trimmingCharactersSpace()) == runtimeTgid { quiet = true }
        let t = Tracee(pid: pid, quiet: quiet)
        tracees[pid] = t
        return t
    }

    func resume(_ t: Tracee, _ sig: Int32) {
        _ = Self.ptrace(t.quiet ? PTRACE_CONT : PTRACE_SYSCALL, t.pid, 0, Int(sig))
    }

    func detachAll() {
        for t in tracees.values { _ = Self.ptrace(PTRACE_INTERRUPT, t.pid) }
        var pending = Set(tracees.keys)
        while !pending.isEmpty {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, Self.wall)
            if pid < 0 { if errno == EINTR { continue }; break }
            guard pending.contains(pid) else { continue }
            let t = tracee(pid)
            flush(t)
            if status & 0xff != 0x7f { pending.remove(pid); continue }   // gone
            let sig = (status >> 8) & 0xff, ev = (status >> 16) & 0xffff
            let inject = (sig == SIGTRAP | 0x80 || ev != 0 || sig == SIGTRAP) ? 0 : sig
            _ = Self.ptrace(PTRACE_DETACH, pid, 0, Int(inject))
            pending.remove(pid)
        }
    }

    // MARK: - System calls

    func syscallStop(_ t: Tracee) {
        var info = __ptrace_syscall_info()      // <sys/ptrace.h>'s struct ptrace_syscall_info
        let n = withUnsafeMutablePointer(to: &info) {
            Self.ptrace(PTRACE_GET_SYSCALL_INFO, t.pid, MemoryLayout<__ptrace_syscall_info>.size, Int(bitPattern: $0))
        }
        guard n > 0 else { return }
        let ip = info.instruction_pointer
        let guest = t.native || (ip >= Layout.regionBase && ip < Layout.regionEnd)
        if Self.debug { printError("[\(t.pid) op=\(info.op) ip=0x\(String(ip, radix: 16)) nr/rv=\(info.exit.rval) guest=\(guest)]") }
        if info.op == Self.infoEntry {
            flush(t)
            let nr = Int(info.entry.nr)
            let a = info.entry.args
            let args = [UInt64(a.0), UInt64(a.1), UInt64(a.2), UInt64(a.3), UInt64(a.4), UInt64(a.5)]
            if guest, let pending = t.trapped {
                // The handler never returned: an exec in place replaced the program.
                t.trapped = nil
                report(t.pid, pending, Self.execLike.contains(pending.nr) ? 0
                                       : Self.forkLike.contains(pending.nr) ? t.child.map(Int64.init) : nil)
                t.child = nil
            }
            t.entry = Call(nr: nr, args: args, text: guest ? format(t.pid, nr, args) : "", guest: guest)
        } else if info.op == Self.infoExit {
            guard let call = t.entry else { return }
            t.entry = nil
            let rval = Int64(info.exit.rval)
            if call.guest {
                if call.nr == Int(SYS_rt_sigreturn), t.trapped == nil || t.native {
                    report(t.pid, call, rval)    // a guest's own handler returning
                } else {
                    t.finished = (call, rval)
                    t.finishedAt = stamp
                }
            } else if call.nr == Int(SYS_rt_sigreturn), let pending = t.trapped {
                // The SIGSYS handler returns: the trapped call's result is in rax.
                t.trapped = nil
                report(t.pid, pending, rval)
            }
        }
    }

    /// Print a completed guest call that was held until the next stop.
    func flush(_ t: Tracee) {
        if let (call, rval) = t.finished { t.finished = nil; report(t.pid, call, rval, at: t.finishedAt) }
    }

    /// How a call's line is written: whole, the beginning of one that has not returned yet
    /// (`name(args <unfinished ...>`), or the end of such a one (`<... name resumed>) = r`).
    enum Part { case whole, unfinished, resumed }

    func report(_ pid: pid_t, _ call: Call, _ rval: Int64?, at: UInt64? = nil, part: Part = .whole) {
        releaseEvents(upTo: at ?? stamp)
        let name = Self.name(call.nr)
        if !options.pids.isEmpty && !options.pids.contains(pid) { return }
        if !options.names.isEmpty && !options.names.contains(name) { return }
        var result = "?", errName = "", json = "\"result\":null,\"errno\":null"
        if let r = rval {
            if let (kname, text) = Self.restartErrors[-r] {
                // Kernel-internal: the call is restarted or fails with EINTR afterwards.
                result = "? \(kname) (\(text))"
                json = "\"result\":null,\"errno\":\"\(kname)\""
            } else if r < 0 && r >= -4095 {
                let e = Int32(-r)
                errName = Self.errnoName(e)
                result = "-1 \(errName) (\(String(cString: strerror(e))))"
                json = "\"result\":-1,\"errno\":\"\(errName)\""
            } else {
                result = Self.addressResults.contains(call.nr) ? "0x" + String(UInt64(bitPattern: r), radix: 16) : String(r)
                json = "\"result\":\(r),\"errno\":null"
            }
        }
        if options.json {
            guard part != .unfinished else { return }      // one object per call, when it ends
            let args = call.text.isEmpty ? "" : splitArgs(call.text).map { "\"\(Self.jsonEscape($0))\"" }.joined(separator: ",")
            emit("{\"pid\":\(pid),\"event\":\"syscall\",\"name\":\"\(name)\",\"args\":[\(args)],\(json)}")
        } else {
            switch part {
            case .whole: emit("\(pid) \(name)(\(call.text)) = \(result)")
            case .unfinished: emit("\(pid) \(name)(\(call.text) <unfinished ...>")
            case .resumed: emit("\(pid) <... \(name) resumed>) = \(result)")
            }
        }
    }

    func event(_ pid: pid_t, _ kind: String, _ text: String, extra: String) {
        releaseEvents(upTo: stamp)
        if !options.pids.isEmpty && !options.pids.contains(pid) { return }
        if options.json {
            emit("{\"pid\":\(pid),\"event\":\"\(kind)\",\(extra)}")
        } else {
            emit("\(pid) \(text)")
        }
    }

    func emit(_ line: String) {
        output.append(contentsOf: line.utf8)
        output.append(10)
        if !buffered || output.count >= 1 << 16 { flushOutput() }
    }

    /// Write what `emit` has gathered.
    func flushOutput() {
        output.withUnsafeBytes { _ = writeAll(options.output, $0) }
        output.removeAll(keepingCapacity: true)
    }

    // MARK: - The switcher's event log

    /// Open the address space's table (once it exists) and turn the log on; `timer`: read
    /// it every `tickMicroseconds` too (the ptrace loop sleeps in waitpid).
    func openLog(timer: Bool = true) {
        guard log == nil, let path = logTablePath, let table = SpaceTable.open(path: path, writable: true) else { return }
        SwitcherLog.adjust(table, by: Int32(COLO_SWITCH_LOG_TRACER))
        logTable = table
        log = SwitcherLog(table: table, readers: [runtimeTgid], fromStart: false)
        guard timer else { return }
        var it = itimerval(it_interval: timeval(tv_sec: 0, tv_usec: Self.tickMicroseconds),
                           it_value: timeval(tv_sec: 0, tv_usec: Self.tickMicroseconds))
        var sa = sigaction()
        sa.__sigaction_handler.sa_handler = { _ in }
        sa.sa_flags = 0   // no SA_RESTART: waitpid returns EINTR, and tick() reads the log
        sigaction(SIGALRM, &sa, nil)
        setitimer(__itimer_which_t(ITIMER_REAL.rawValue), &it, nil)
    }

    /// Turn the log off (this tracer's share of it) and print what is left.
    func closeLog() {
        guard log != nil, let logTable else { return }
        var off = itimerval()
        setitimer(__itimer_which_t(ITIMER_REAL.rawValue), &off, nil)
        SwitcherLog.adjust(logTable, by: -Int32(COLO_SWITCH_LOG_TRACER))
        stamp = SwitcherLog.rdtsc()
        releaseEvents(upTo: stamp)
    }

    /// Move new events from the ring to `pendingEvents`, in time order.
    func readEvents() {
        guard let log else { return }
        if log.readers.count == 1 { log.readers += tracees.keys.filter { $0 != runtimeTgid } }
        let new = log.poll()
        guard !new.isEmpty else { return }
        var last = pendingEvents.last?.tsc ?? 0
        for var e in new {
            if e.kind == .lost { e.tsc = last } else { last = e.tsc }
            pendingEvents.append(e)
        }
        pendingEvents.sort { ($0.tsc, $0.seq) < ($1.tsc, $1.seq) }
    }

    /// Print the events that happened before `t` (a ptrace line's stamp).
    func releaseEvents(upTo t: UInt64) {
        guard log != nil else { return }
        readEvents()
        var i = 0
        while i < pendingEvents.count && pendingEvents[i].tsc <= t { printEvent(pendingEvents[i]); i += 1 }
        if i > 0 { pendingEvents.removeFirst(i) }
    }

    /// The timer: print events that no held-back ptrace line can precede any more.
    func tick() {
        guard let log else { return }
        var mark = stamp
        for t in tracees.values {
            if t.finished != nil { mark = min(mark, t.finishedAt) }
            if t.trapped != nil { mark = min(mark, t.trappedAt) }
        }
        let oldest = stamp &- log.ticks(nanoseconds: Self.holdNanoseconds)
        releaseEvents(upTo: max(mark, oldest))
    }

    func printEvent(_ e: SwitcherLog.Event) {
        guard let log else { return }
        if e.kind != .lost {
            if !options.pids.isEmpty && ![e.pid, e.tid, e.peerPID, e.peerTID].contains(where: options.pids.contains) { return }
            if !options.names.isEmpty && !options.names.contains("cocall") && !options.names.contains("switcher")
                && !options.names.contains(SwitcherLog.name(e.kind)) { return }
        }
        emit(options.json ? log.json(e) : log.text(e))
    }

    /// A signal the switcher handles for a borrowing thread: SIGSYS from Syscall User
    /// Dispatch (si_code SYS_USER_DISPATCH), or a fault of callee code on a borrowed
    /// context (the thread's SCB, at its GS base, names the callee it borrows).
    static func switcherSignal(_ pid: pid_t, _ sig: Int32) -> Bool {
        let faults: Set<Int32> = [SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP]
        guard sig == SIGSYS || faults.contains(sig) else { return false }
        var info = siginfo_t()
        let r = withUnsafeMutablePointer(to: &info) { ptrace(PTRACE_GETSIGINFO, pid, 0, Int(bitPattern: $0)) }
        guard r == 0 else { return false }
        if sig == SIGSYS { return info.si_code == clinux_sys_user_dispatch }
        guard info.si_code > 0 else { return false }          // sent, not a fault
        var regs = user_regs_struct()
        let g = withUnsafeMutablePointer(to: &regs) { ptrace(PTRACE_GETREGS, pid, 0, Int(bitPattern: $0)) }
        let gs = UInt64(regs.gs_base)
        guard g == 0, gs >= UInt64(COLO_SCB_AREA_ADDR), gs < UInt64(COLO_SWITCH_LOG_ADDR),
              let borrowing = GuestMemory(pid: pid).word(gs + colo_scb_borrowing_offset()) else { return false }
        return borrowing != 0
    }

    // MARK: - Formatting

    /// Arguments split on the top-level ", " (strings and arrays kept whole).
    func splitArgs(_ text: String) -> [String] {
        var out = [String](), cur = "", depth = 0, inString = false, escaped = false
        var chars = Array(text)[...]
        while let c = chars.first {
            chars = chars.dropFirst()
            if inString {
                cur.append(c)
                if escaped { escaped = false } else if c == "\\" { escaped = true } else if c == "\"" { inString = false }
                continue
            }
            if c == "\"" { inString = true } else if c == "[" { depth += 1 } else if c == "]" { depth -= 1 }
            if c == ",", depth == 0, chars.first == " " {
                out.append(cur); cur = ""; chars = chars.dropFirst(); continue
            }
            cur.append(c)
        }
        out.append(cur)
        return out
    }

    static func jsonEscape(_ s: String) -> String {
        var o = ""
        for u in s.unicodeScalars {
            switch u {
            case "\"": o += "\\\""
            case "\\": o += "\\\\"
            case "\n": o += "\\n"
            default:
                if u.value < 0x20 { o += "\\u" + String(repeating: "0", count: 4 - String(u.value, radix: 16).count) + String(u.value, radix: 16) }
                else { o.unicodeScalars.append(u) }
            }
        }
        return o
    }

    /// A string argument as strace shows it: quoted, with strace's escapes for the bytes that
    /// are not printable ASCII (nothing replaced).
    static func quote(_ s: ByteString?) -> String {
        guard let s else { return "NULL?" }
        return "\"" + s.escaped + "\""
    }

    /// The kernel's restart codes, which a tracer sees at the exit of an interrupted call.
    static let restartErrors: [Int64: (String, String)] = [
        512: ("ERESTARTSYS", "To be restarted if SA_RESTART is set"),
        513: ("ERESTARTNOINTR", "To be restarted"),
        514: ("ERESTARTNOHAND", "To be restarted if no handler"),
        516: ("ERESTART_RESTARTBLOCK", "Interrupted by signal"),
    ]

    /// Calls that replace the program (execve, execveat, and the colocation calls served in
    /// the guest: coexecve, coexecvec): 0 when the handler or the runtime never returns to
    /// the old one.
    static let execLike: Set<Int> = Set([Int(SYS_execve), Int(SYS_execveat)]
        + SyscallTable.entries.filter { $0.value.servedInGuest }.keys.map { Int($0) })
    /// Calls that create a process: the child's PID when the handler returns by a jump.
    /// Calls whose result is an address (shown in hex).
    static let addressResults: Set<Int> = [Int(SYS_mmap), Int(SYS_brk), Int(SYS_mremap)]
    /// Calls whose first argument is a directory descriptor (AT_FDCWD shown by name).
    static let atCalls: Set<Int> = [Int(SYS_openat), Int(SYS_newfstatat), Int(SYS_readlinkat), Int(SYS_faccessat),
                                    Int(SYS_execveat), Int(SYS_statx), Int(SYS_faccessat2), Int(SYS_openat2)]
    static let forkLike: Set<Int> = [Int(SYS_clone), Int(SYS_fork), Int(SYS_vfork), Int(SYS_clone3)]

    /// How many arguments to show (others: 6); the colocation calls' from colo_syscalls.def.
    static let argCount: [Int: Int] = [
        Int(SYS_read): 3, Int(SYS_write): 3, Int(SYS_open): 3, Int(SYS_close): 1, Int(SYS_stat): 2,
        Int(SYS_fstat): 2, Int(SYS_lstat): 2, Int(SYS_poll): 3, Int(SYS_lseek): 3, Int(SYS_mmap): 6,
        Int(SYS_mprotect): 3, Int(SYS_munmap): 2, Int(SYS_brk): 1, Int(SYS_rt_sigaction): 4,
        Int(SYS_rt_sigprocmask): 4, Int(SYS_rt_sigreturn): 0, Int(SYS_ioctl): 3, Int(SYS_pread64): 4,
        Int(SYS_pwrite64): 4, Int(SYS_readv): 3, Int(SYS_writev): 3, Int(SYS_access): 2, Int(SYS_pipe): 1,
        Int(SYS_select): 5, Int(SYS_sched_yield): 0, Int(SYS_mremap): 5, Int(SYS_madvise): 3,
        Int(SYS_dup): 1, Int(SYS_dup2): 2, Int(SYS_pause): 0, Int(SYS_nanosleep): 2, Int(SYS_getpid): 0,
        Int(SYS_socket): 3, Int(SYS_connect): 3, Int(SYS_clone): 5, Int(SYS_fork): 0, Int(SYS_vfork): 0,
        Int(SYS_execve): 3, Int(SYS_exit): 1, Int(SYS_wait4): 4, Int(SYS_kill): 2, Int(SYS_uname): 1,
        Int(SYS_fcntl): 3, Int(SYS_getcwd): 2, Int(SYS_chdir): 1, Int(SYS_mkdir): 2, Int(SYS_unlink): 1,
        Int(SYS_readlink): 3, Int(SYS_gettimeofday): 2, Int(SYS_getuid): 0, Int(SYS_getgid): 0,
        Int(SYS_geteuid): 0, Int(SYS_getegid): 0, Int(SYS_getppid): 0, Int(SYS_restart_syscall): 0,
        Int(SYS_arch_prctl): 2, Int(SYS_gettid): 0, Int(SYS_futex): 6, Int(SYS_getdents64): 3,
        Int(SYS_set_tid_address): 1, Int(SYS_clock_gettime): 2, Int(SYS_clock_nanosleep): 4,
        Int(SYS_exit_group): 1, Int(SYS_tgkill): 3, Int(SYS_openat): 4, Int(SYS_newfstatat): 4,
        Int(SYS_readlinkat): 4, Int(SYS_faccessat): 3, Int(SYS_set_robust_list): 2, Int(SYS_pipe2): 2,
        Int(SYS_prlimit64): 4, Int(SYS_getrandom): 3, Int(SYS_execveat): 5, Int(SYS_statx): 5,
        Int(SYS_rseq): 4, Int(SYS_clone3): 2, Int(SYS_faccessat2): 4,
    ].merging(SyscallTable.entries.mapValues { Int($0.nargs) }.map { (Int($0.key), $0.value) }) { a, _ in a }

    /// A traced process's call as text, its strings read from its memory now.
    func format(_ pid: pid_t, _ nr: Int, _ args: [UInt64]) -> String {
        let mem = GuestMemory(pid: pid)
        return Self.format(nr, args, path: { mem.string($0, limit: 4096) }, argv: { mem.strings($0, limit: 64) })
    }

    /// A call's arguments as text: `path` and `argv` give the strings an argument points to
    /// (colo_trace_path_arg and colo_trace_argv_arg say which), or nil if they cannot.
    static func format(_ nr: Int, _ args: [UInt64], path: (UInt64) -> ByteString?, argv: (UInt64) -> [ByteString]?) -> String {
        let count = Self.argCount[nr] ?? 6
        let pathArg = Int(colo_trace_path_arg(Int32(truncatingIfNeeded: nr)))
        let argvArg = Int(colo_trace_argv_arg(Int32(truncatingIfNeeded: nr)))
        var parts = [String]()
        for i in 0..<count {
            let a = args[i]
            if pathArg == i {
                parts.append(a == 0 ? "NULL" : Self.quote(path(a)))
            } else if argvArg == i {
                if a != 0, let v = argv(a) { parts.append("[" + v.map { Self.quote($0) }.joined(separator: ", ") + "]") }
                else { parts.append("0x" + String(a, radix: 16)) }
            } else if argvArg >= 0 && argvArg + 1 == i {
                parts.append("0x" + String(a, radix: 16))
            } else if Self.atCalls.contains(nr) && i == 0 && Int32(truncatingIfNeeded: a) == clinux_at_fdcwd {
                parts.append("AT_FDCWD")
            } else if let kind = Self.flagArgs[nr]?[i] {
                parts.append(Self.decode(a, kind))
            } else if a >= 0xffff_f000 && a <= 0xffff_ffff {
                parts.append(String(Int32(truncatingIfNeeded: a)))      // an int: -1 and other small negatives
            } else if a < 0x10000 || Int64(bitPattern: a) > -4096 && Int64(bitPattern: a) < 0 {
                parts.append(String(Int64(bitPattern: a)))
            } else {
                parts.append("0x" + String(a, radix: 16))
            }
        }
        return parts.joined(separator: ", ")
    }

    /// Flag arguments decoded by name, as strace shows them.
    enum FlagKind { case protection, mapping, open }
    static let flagArgs: [Int: [Int: FlagKind]] = [
        Int(SYS_mmap): [2: .protection, 3: .mapping],
        Int(SYS_mprotect): [2: .protection],
        Int(SYS_open): [1: .open],
        Int(SYS_openat): [2: .open],
    ]
    static let protectionNames: [(Int32, String)] = [(PROT_READ, "PROT_READ"), (PROT_WRITE, "PROT_WRITE"), (PROT_EXEC, "PROT_EXEC")]
    static let mappingNames: [(Int32, String)] = [
        (MAP_FIXED, "MAP_FIXED"), (MAP_ANONYMOUS, "MAP_ANONYMOUS"), (MAP_32BIT, "MAP_32BIT"), (MAP_GROWSDOWN, "MAP_GROWSDOWN"),
        (MAP_DENYWRITE, "MAP_DENYWRITE"), (MAP_EXECUTABLE, "MAP_EXECUTABLE"), (MAP_LOCKED, "MAP_LOCKED"),
        (MAP_NORESERVE, "MAP_NORESERVE"), (MAP_POPULATE, "MAP_POPULATE"), (MAP_NONBLOCK, "MAP_NONBLOCK"),
        (MAP_STACK, "MAP_STACK"), (MAP_HUGETLB, "MAP_HUGETLB"),
    ]
    static let openNames: [(Int32, String)] = [
        (O_CREAT, "O_CREAT"), (O_EXCL, "O_EXCL"), (O_NOCTTY, "O_NOCTTY"), (O_TRUNC, "O_TRUNC"), (O_APPEND, "O_APPEND"),
        (O_NONBLOCK, "O_NONBLOCK"), (O_DSYNC, "O_DSYNC"), (O_ASYNC, "O_ASYNC"), (O_DIRECTORY, "O_DIRECTORY"),
        (O_NOFOLLOW, "O_NOFOLLOW"), (O_CLOEXEC, "O_CLOEXEC"),
    ]

    /// A flag argument by name: the bits strace names joined by `|`, what is left in hex.
    static func decode(_ value: UInt64, _ kind: FlagKind) -> String {
        var v = Int32(truncatingIfNeeded: value)
        var names = [String]()
        let table: [(Int32, String)]
        switch kind {
        case .protection:
            if v == PROT_NONE { return "PROT_NONE" }
            table = protectionNames
        case .mapping:
            let type = v & MAP_TYPE
            names.append(type == MAP_SHARED ? "MAP_SHARED" : type == MAP_PRIVATE ? "MAP_PRIVATE"
                         : "0x" + String(type, radix: 16))
            v &= ~MAP_TYPE
            table = mappingNames
        case .open:
            let mode = v & O_ACCMODE
            names.append(mode == O_RDONLY ? "O_RDONLY" : mode == O_WRONLY ? "O_WRONLY" : mode == O_RDWR ? "O_RDWR" : "O_ACCMODE")
            v &= ~O_ACCMODE
            table = openNames
        }
        for (bit, name) in table where v & bit == bit {
            names.append(name)
            v &= ~bit
        }
        if v != 0 { names.append("0x" + String(UInt32(bitPattern: v), radix: 16)) }
        return names.joined(separator: "|")
    }

    nonisolated(unsafe) static var names = [Int: String]()

    /// The colocation table's names, then libseccomp's.
    public static func name(_ nr: Int) -> String {
        if let n = names[nr] { return n }
        var out = "syscall_\(nr)"
        if let n = SyscallTable.names[Int32(truncatingIfNeeded: nr)] {
            out = n
        } else if let p = seccomp_syscall_resolve_num_arch(clinux_audit_arch_x86_64 /* SCMP_ARCH_X86_64 */, Int32(truncatingIfNeeded: nr)) {
            out = String(cString: p)
            free(p)
        }
        names[nr] = out
        return out
    }

    typealias NameFunction = @convention(c) (Int32) -> UnsafePointer<CChar>?
    /// glibc 2.32's sigabbrev_np and strerrorname_np (not exported to Swift by Glibc).
    static let sigabbrev: NameFunction? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "sigabbrev_np").map { unsafeBitCast($0, to: NameFunction.self) }
    static let errnoname: NameFunction? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "strerrorname_np").map { unsafeBitCast($0, to: NameFunction.self) }

    public static func signalName(_ sig: Int32) -> String {
        if let f = sigabbrev, let p = f(sig) { return "SIG" + String(cString: p) }
        return "SIG\(sig)"
    }

    public static func errnoName(_ e: Int32) -> String {
        if let f = errnoname, let p = f(e) { return String(cString: p) }
        return "E\(e)"
    }
}

nonisolated(unsafe) var tracerInterrupted: sig_atomic_t = 0

extension Substring {
    func trimmingCharactersSpace() -> String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
