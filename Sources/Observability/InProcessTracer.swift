// InProcessTracer: colo trace without ptrace: reading the trace ring traced threads fill.
import Bytes
import CLinux
import ColoABI
import Glibc
import GuestShim
import Runtime
import Switcher

/// The tracer's mapping of an address space's trace ring (colo_abi.h, struct
/// colo_trace_ring): the records that traced threads append from their SIGSYS handler.
final class TraceRing {
    let ring: UnsafeMutablePointer<colo_trace_ring>
    /// The switcher's event log, which follows the ring in its file.
    var switchLog: UnsafeRawPointer { UnsafeRawPointer(ring) + SpaceTable.traceRingSize }
    /// The number of the next record to read.
    private(set) var next: UInt64 = 0
    /// Records skipped because their writer never completed them (it was killed).
    private(set) var lost: UInt64 = 0
    private var stuck: (n: UInt64, since: UInt64)?
    /// How long a claimed record may stay incomplete before it is given up.
    static let patienceNanoseconds: UInt64 = 500_000_000

    /// Map the ring's file (`writable`: to read the ring, which writes its tail).
    init?(path: String, writable: Bool = true) {
        let fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, Int(st.st_size) == SpaceTable.traceFileSize,
              let p = mmap(nil, SpaceTable.traceFileSize, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, 0),
              p != MAP_FAILED
        else { return nil }
        ring = p.assumingMemoryBound(to: colo_trace_ring.self)
    }

    deinit { munmap(ring, SpaceTable.traceFileSize) }

    /// The process that reads the ring (writers wait for it while it lives).
    var reader: pid_t {
        get { ring.pointee.reader_pid }
        set { ring.pointee.reader_pid = newValue }
    }

    /// Read from the records written from now on.
    func skipToHead() {
        next = colo_trace_head(ring)
        colo_trace_consumed(ring, next)
    }

    /// Are there records claimed but not read yet?
    var behind: Bool { next < colo_trace_head(ring) }

    /// The next complete record into `out`; false if there is none yet.
    func read(_ out: inout colo_trace_record) -> Bool {
        while next < colo_trace_head(ring) {
            if colo_trace_read(ring, next, &out) != 0 {
                next += 1
                stuck = nil
                return true
            }
            let now = monotonicNanoseconds()
            guard let s = stuck, s.n == next else { stuck = (next, now); return false }
            guard now - s.since > Self.patienceNanoseconds else { return false }
            next += 1
            lost += 1
            stuck = nil
        }
        return false
    }

    /// Tell the writers that everything before `next` is read.
    func consumed() { colo_trace_consumed(ring, next) }
}

/// In-process tracing: the default of `colo trace`.
///
/// The tracer turns the address space's trace selector on (the table header's
/// `trace_selector`); every guest thread then runs with Syscall User Dispatch, and its
/// SIGSYS handler makes each system call and appends a record to the trace ring, which
/// this process reads from its own mapping (Sources/GuestShim/trace.c).  No ptrace stop
/// happens per call.  `colo trace -- COMMAND` has the runtime start with tracing on
/// (COLO_TRACE_READER), so every thread traps from its first instruction; `-a PID` uses
/// ptrace once per thread, to switch dispatch on (PTRACE_SET_SYSCALL_USER_DISPATCH_CONFIG)
/// and off again when it detaches.  Exits, kills and job-control stops of the processes
/// the runtime started come from the runtime, which sees them in waitpid; a process
/// that ends with exit_group is shown exiting there.
extension Tracer {
    typealias DispatchConfig = clinux_ptrace_sud_config

    /// Does the kernel have Syscall User Dispatch (Linux 5.11)?
    public static var inProcessSupported: Bool {
        rawSyscall(Int(SYS_prctl), Int(PR_SET_SYSCALL_USER_DISPATCH), Int(PR_SYS_DISPATCH_OFF), 0, 0, 0) == 0
    }

    /// `colo trace -- COMMAND`: fork; the child becomes the runtime with tracing on
    /// from the start and this process as the reader.  Returns the runtime's status.
    public func launchInProcess(_ start: () -> Never) -> Int32 {
        let me = getpid()
        let child = fork()
        if child < 0 { return 1 }
        if child == 0 {
            setenv("COLO_TRACE_READER", String(me), 1)
            start()
        }
        rootPID = child
        runtimeTgid = child
        buffered = true
        let tablePath = SpaceDirectory.tablePath(runtimePID: child)
        logTablePath = tablePath
        // ^C and ^\ are for the traced programs (and the runtime).
        signal(SIGINT, SIG_IGN)
        signal(SIGQUIT, SIG_IGN)
        var ring: TraceRing?
        var status: Int32 = 0
        var ended = false
        while true {
            if ring == nil, let r = TraceRing(path: SpaceTable.traceRingPath(tablePath: tablePath)), r.reader == me {
                ring = r
                openLog(timer: false)
                log?.mapped = r
                colo_trace_reader_ready(r.ring)     // the runtime starts the command now
            }
            let read = ring.map { drain($0) } ?? 0
            if ended && (ring == nil || !ring!.behind) { break }
            if !ended, waitpid(child, &status, WNOHANG) == child { ended = true; continue }
            if read == 0 {
                if let ring { idle(ring) } else { usleep(1000) }     // the runtime waits for the ring to be read
            }
        }
        if status & 0x7f == 0 { rootStatus = (status >> 8) & 0xff } else { rootStatus = 128 + (status & 0x7f) }
        endAll()
        closeLog()
        flushOutput()
        return rootStatus
    }

    /// `colo trace -a PID`, in process: until SIGINT/SIGTERM or the address space ends.
    public func attachInProcess(_ pid: pid_t) -> Int32 {
        guard let space = SpaceDirectory.space(containing: pid) else {
            printError("colo trace: \(pid) is not in an address space"); return 1
        }
        let tablePath = space.table.path
        guard let table = SpaceTable.open(path: tablePath, writable: true),
              let ring = TraceRing(path: SpaceTable.traceRingPath(tablePath: tablePath)) else {
            printError("colo trace: cannot open the trace ring of \(pid)'s address space"); return 1
        }
        if ring.reader > 0 && ring.reader != getpid() && kill(ring.reader, 0) == 0 {
            printError("colo trace: the address space is traced already (by \(ring.reader))"); return 1
        }
        ring.reader = getpid()
        ring.skipToHead()
        runtimeTgid = table.runtimePID
        logTablePath = tablePath
        buffered = true
        openLog(timer: false)
        log?.mapped = ring
        colo_trace_set(table.header, 1)
        let (configured, failure) = setDispatchOfAllThreads(table, on: true)
        if configured == 0 {
            colo_trace_set(table.header, 0)
            ring.reader = 0
            printError("colo trace: cannot trace \(pid): \(failure ?? "no thread could be stopped")")
            return 1
        }
        Self.detachOnSignals()
        while tracerInterrupted == 0 && kill(table.runtimePID, 0) == 0 {
            if drain(ring) == 0 { idle(ring) }
        }
        colo_trace_set(table.header, 0)
        _ = setDispatchOfAllThreads(table, on: false)
        // What the threads wrote before they stopped trapping.
        let deadline = monotonicNanoseconds() + TraceRing.patienceNanoseconds
        while ring.behind && monotonicNanoseconds() < deadline { if drain(ring) == 0 { usleep(1000) } }
        ring.reader = 0
        ring.consumed()
        endAll()
        closeLog()
        flushOutput()
        return 0
    }

    // MARK: - Reading

    /// Print every record there is; how many there were.
    func drain(_ ring: TraceRing) -> Int {
        var r = colo_trace_record()
        var n = 0
        while ring.read(&r) {
            handle(&r)
            n += 1
            if n % 1024 == 0 { ring.consumed() }
        }
        if n > 0 { ring.consumed(); flushOutput(); idleRounds = 0 }
        return n
    }

    /// Nothing to read: print the switcher's events that nothing can precede any more,
    /// and wait a little: 1 ms, twice as long each time nothing came, at most 16 ms (the
    /// ring holds 8192 records; a writer waits only when it is full).  A record claimed in
    /// the ring but not written yet (its writer preempted) may precede them: the events wait
    /// for it.
    func idle(_ ring: TraceRing) {
        showWaiting()
        checkEnds()
        if !ring.behind { stamp = SwitcherLog.rdtsc() }
        tick()
        flushOutput()
        usleep(UInt32(1000 << min(idleRounds, 4)))
        idleRounds += 1
    }

    func handle(_ r: inout colo_trace_record) {
        stamp = r.tsc
        let tid = r.tid, pid = r.pid
        if pidfds[pid] == nil { watch(pid) }
        let nr = Int(r.nr)
        let args = withUnsafeBytes(of: r.args) { Array($0.bindMemory(to: UInt64.self)) }
        let kind = Int32(r.kind)
        switch kind {
        case Int32(COLO_TRACE_BEGIN.rawValue):
            showUnfinished(tid)      // a call begun inside another (a signal handler's)
            inProgress[tid, default: []].append((pid, call(&r, nr, args), r.tsc, false))
        case Int32(COLO_TRACE_CALL.rawValue):
            if let top = inProgress[tid]?.last, top.call.nr == nr {
                inProgress[tid]!.removeLast()
                if inProgress[tid]!.isEmpty { inProgress[tid] = nil }
                report(tid, top.call, r.result, part: top.shown ? .resumed : .whole)
            } else {
                showUnfinished(tid)
                report(tid, call(&r, nr, args), r.result)
            }
        case Int32(COLO_TRACE_ENTRY.rawValue):
            showUnfinished(tid)
            let c = call(&r, nr, args)
            if nr == Int(SYS_exit) || nr == Int(SYS_exit_group) {           // no return
                report(tid, c, nil)
                if nr == Int(SYS_exit_group) || tid != pid {
                    let code = Int32(truncatingIfNeeded: args[0]) & 0xff
                    showEnd(nr == Int(SYS_exit_group) ? pid : tid, status: code << 8)
                }
            } else {
                endsLater[tid] = (pid, c)
            }
        case Int32(COLO_TRACE_RESULT.rawValue):
            if let e = endsLater.removeValue(forKey: tid) { report(tid, e.call, r.result) }
        case Int32(COLO_TRACE_SIGNAL.rawValue):
            showUnfinished(tid)
            let name = Self.signalName(r.nr)
            event(tid, "signal", "--- \(name) ---", extra: "\"signal\":\"\(name)\"")
        case Int32(COLO_TRACE_WAIT.rawValue):
            let status = Int32(truncatingIfNeeded: r.result)
            if status & 0xff == 0x7f {
                let name = Self.signalName((status >> 8) & 0xff)
                event(pid, "stopped", "--- stopped by \(name) ---", extra: "\"signal\":\"\(name)\"")
                return
            }
            showEnd(pid, status: status)
        default:
            break
        }
    }

    /// Show the calls `tid` has begun and not ended as unfinished (each once).
    func showUnfinished(_ tid: pid_t) {
        guard let calls = inProgress[tid] else { return }
        for (i, c) in calls.enumerated() where !c.shown {
            report(tid, c.call, nil, at: c.began, part: .unfinished)
            inProgress[tid]![i].shown = true
        }
    }

    /// Calls begun `waitNanoseconds` ago or longer and not ended: show them unfinished.
    static let waitNanoseconds = 100_000_000.0
    func showWaiting() {
        guard !inProgress.isEmpty, let log else { return }
        let before = SwitcherLog.rdtsc() &- log.ticks(nanoseconds: Self.waitNanoseconds)
        for (tid, calls) in inProgress where calls.contains(where: { !$0.shown && $0.began < before }) {
            showUnfinished(tid)
        }
    }

    /// Process `pid` ended with wait status `status`: its exit line, once.
    func showEnd(_ pid: pid_t, status: Int32) {
        end(pid)
        guard !exitShown.contains(pid) else { return }
        exitShown.insert(pid)
        if status & 0x7f == 0 {
            let code = (status >> 8) & 0xff
            event(pid, "exited", "+++ exited with \(code) +++", extra: "\"status\":\(code)")
        } else {
            let name = Self.signalName(status & 0x7f)
            event(pid, "killed", "+++ killed by \(name) +++", extra: "\"signal\":\"\(name)\"")
        }
    }

    /// Watch process `pid` for its end (a pidfd): the runtime sees only the ends of the
    /// processes it started itself, not those of their children.
    func watch(_ pid: pid_t) {
        let fd = Int32(truncatingIfNeeded: rawSyscall(Int(SYS_pidfd_open), Int(pid), 0))
        pidfds[pid] = fd >= 0 ? fd : -1
    }


    /// Show the ends of watched processes that have been reaped (PIDFD_GET_INFO gives a
    /// reaped process's wait status to anyone holding its pidfd, Linux 6.15).
    func checkEnds() {
        let watched = pidfds.filter { $0.value >= 0 }
        guard !watched.isEmpty else { return }
        var fds = watched.map { pollfd(fd: $0.value, events: Int16(POLLIN), revents: 0) }
        guard poll(&fds, nfds_t(fds.count), 0) > 0 else { return }
        for (i, (pid, fd)) in watched.enumerated() where fds[i].revents != 0 {
            var info = clinux_pidfd_info()
            info.mask = clinux_pidfd_info_exit
            let r = withUnsafeMutablePointer(to: &info) { ioctl(fd, clinux_pidfd_get_info, $0) }
            if r == 0 && info.mask & clinux_pidfd_info_exit == 0 { continue }     // a zombie: not reaped yet
            close(fd)
            pidfds[pid] = -1
            if r == 0 { showEnd(pid, status: info.exit_code) }
        }
    }

    /// A record's call, its strings taken from the record (as they were at the call).
    func call(_ r: inout colo_trace_record, _ nr: Int, _ args: [UInt64]) -> Call {
        var strings = [ByteString]()
        withUnsafeBytes(of: &r.data) { raw in
            let bytes = raw.prefix(Int(r.data_len))
            var start = bytes.startIndex
            for i in bytes.indices where bytes[i] == 0 {
                strings.append(ByteString(bytes[start..<i]))
                start = i + 1
            }
        }
        let pathArg = Int(colo_trace_path_arg(Int32(truncatingIfNeeded: nr)))
        var rest = strings[...]
        var path: ByteString?
        if pathArg >= 0 && r.strings & (1 << pathArg) != 0 { path = rest.popFirst() }
        let argv = r.argv_count > 0 || colo_trace_argv_arg(Int32(truncatingIfNeeded: nr)) >= 0
            ? Array(rest.prefix(Int(r.argv_count))) + (r.truncated != 0 ? ["..."] : []) : nil
        let text = Self.format(nr, args, path: { _ in path }, argv: { _ in argv })
        return Call(nr: nr, args: args, text: text, guest: true)
    }

    /// Process `pid` has ended: its calls that were to end later end now (an exec that
    /// left the address space succeeded; anything else has no result).
    func end(_ pid: pid_t) {
        for (tid, e) in endsLater where e.pid == pid {
            endsLater[tid] = nil
            report(tid, e.call, Self.execLike.contains(e.call.nr) ? 0 : nil)
        }
        for (tid, calls) in inProgress where calls.first?.pid == pid {
            showUnfinished(tid)
            inProgress[tid] = nil
        }
    }

    /// The trace is over: what is still waiting for its end, and the switcher's events.
    func endAll() {
        checkEnds()
        for pid in Set(endsLater.values.map(\.pid)).union(inProgress.values.compactMap { $0.first?.pid }) { end(pid) }
        for fd in pidfds.values where fd >= 0 { close(fd) }
        stamp = SwitcherLog.rdtsc()
        releaseEvents(upTo: stamp)
    }

    // MARK: - Switching threads' dispatch on and off (attach, detach)

    /// Every thread of every member of the address space, stopped once with ptrace:
    /// dispatch on (selector: the table's trace selector) or off.  A switcher caller
    /// thread keeps its own selector (in its SCB): its idle value changes instead.
    /// Repeated until no new thread turns up.  Returns how many threads were set, and
    /// the first failure.
    func setDispatchOfAllThreads(_ table: SpaceTable, on: Bool) -> (Int, String?) {
        var done = Set<pid_t>()
        var failure: String?
        var callers = [(tid: pid_t, selector: UInt64)]()
        while true {
            var new = 0
            for m in table.members() {
                for tid in Self.threads(of: m.pid) where !done.contains(tid) {
                    done.insert(tid)
                    new += 1
                    var selector: UInt64 = 0
                    if let e = setDispatch(tid, on: on, table: table, scbSelector: &selector), failure == nil { failure = e }
                    if selector != 0 { callers.append((tid, selector)) }
                }
            }
            if new == 0 { break }
        }
        // A switcher caller stopped between loading its idle selector and storing it
        // stores the old value when it goes on: look again, and set it again.
        for _ in 0..<3 where on && !callers.isEmpty {
            usleep(2000)
            callers = callers.filter { c in
                let mem = GuestMemory(pid: c.tid)
                let scb = c.selector - colo_scb_selector_offset()
                guard let sel = mem.read(c.selector, count: 1), sel[0] == 0,
                      mem.word(scb + colo_scb_borrowing_offset()) == 0 else { return false }
                var again: UInt64 = 0
                _ = setDispatch(c.tid, on: true, table: table, scbSelector: &again)
                return true
            }
        }
        return (done.count - (failure == nil ? 0 : 1), failure)
    }

    static func threads(of pid: pid_t) -> [pid_t] {
        guard let dir = opendir("/proc/\(pid)/task") else { return [] }
        defer { closedir(dir) }
        var out = [pid_t]()
        while let ent = readdir(dir) {
            let name = withUnsafeBytes(of: ent.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if let tid = pid_t(name) { out.append(tid) }
        }
        return out
    }

    /// Stop `tid`, set its dispatch, let it go.  nil, or what went wrong; `scbSelector`:
    /// the address of its SCB's selector if it is a switcher caller.
    func setDispatch(_ tid: pid_t, on: Bool, table: SpaceTable, scbSelector: inout UInt64) -> String? {
        let seized = Self.ptrace(PTRACE_SEIZE, tid, 0, 0)
        guard seized == 0 else { return "ptrace(PTRACE_SEIZE, \(tid)): \(String(cString: strerror(Int32(-seized))))" }
        _ = Self.ptrace(PTRACE_INTERRUPT, tid)
        var status: Int32 = 0
        while waitpid(tid, &status, Self.wall) < 0 { if errno != EINTR { return nil } }
        guard status & 0xff == 0x7f else { return nil }         // it ended meanwhile
        let sig = (status >> 8) & 0xff, ev = (status >> 16) & 0xffff
        defer { _ = Self.ptrace(PTRACE_DETACH, tid, 0, ev == 0 && sig != SIGTRAP ? Int(sig) : 0) }
        let selector = UInt64(COLO_TRACE_SELECTOR_ADDR)
        var cfg = DispatchConfig()
        let got = withUnsafeMutablePointer(to: &cfg) {
            Self.ptrace(Int(clinux_ptrace_get_sud_config), tid, MemoryLayout<DispatchConfig>.size, Int(bitPattern: $0))
        }
        guard got == 0 else { return "PTRACE_GET_SYSCALL_USER_DISPATCH_CONFIG: \(String(cString: strerror(Int32(-got))))" }
        if cfg.mode != UInt64(PR_SYS_DISPATCH_OFF) && cfg.selector != selector && cfg.selector != 0 {
            // A switcher caller: its SCB's selector, BLOCK while it borrows a context.
            let scb = cfg.selector - colo_scb_selector_offset()
            scbSelector = cfg.selector
            let value: UInt8 = on ? 1 : 0
            _ = Self.pokeByte(tid, scb + colo_scb_idle_selector_offset(), value)
            if GuestMemory(pid: tid).word(scb + colo_scb_borrowing_offset()) == 0 { _ = Self.pokeByte(tid, cfg.selector, value) }
            return nil
        }
        var set = on ? DispatchConfig(mode: UInt64(PR_SYS_DISPATCH_ON), selector: selector, offset: table.header.pointee.sud_exempt_start,
                                      len: table.header.pointee.sud_exempt_len) : DispatchConfig()
        if !on && cfg.mode == 0 { return nil }
        let r = withUnsafeMutablePointer(to: &set) {
            Self.ptrace(Int(clinux_ptrace_set_sud_config), tid, MemoryLayout<DispatchConfig>.size, Int(bitPattern: $0))
        }
        return r == 0 ? nil : "PTRACE_SET_SYSCALL_USER_DISPATCH_CONFIG: \(String(cString: strerror(Int32(-r))))"
    }

    /// Write one byte of a stopped tracee's memory.
    static func pokeByte(_ tid: pid_t, _ address: UInt64, _ value: UInt8) -> Bool {
        let aligned = address & ~7
        var word: UInt64 = 0
        guard withUnsafeMutablePointer(to: &word, { Self.ptrace(PTRACE_PEEKDATA, tid, Int(aligned), Int(bitPattern: $0)) }) == 0
        else { return false }
        withUnsafeMutableBytes(of: &word) { $0[Int(address - aligned)] = value }
        return Self.ptrace(PTRACE_POKEDATA, tid, Int(aligned), Int(bitPattern: UInt(word))) == 0
    }
}
