// SwitcherLog: the switcher's event log of fast cocalls, read from outside the address space.
import ColoABI
import Glibc
import GuestShim
import Runtime
import Switcher

/// The switcher's event log, read from outside the address space.
///
/// The switcher (Sources/Switcher/events.c) appends a `colo_switch_event` for every
/// fast cocall, unborrow, fault hand-over, borrower killed while borrowing and
/// EPROTOTYPE fallback while the table header's `switch_log` word is not 0: bit 0
/// is `debug.colocation_debug`, and each `colo trace` adds COLO_SWITCH_LOG_TRACER
/// while it traces.  The ring (COLO_SWITCH_LOG_EVENTS records) lives in the SCB
/// area's last block, which is a shared mapping of the end of the address space's
/// trace-ring file: a reader maps that file, or copies the ring with process_vm_readv
/// from any process of the address space (which needs ptrace rights over it).
/// Its head (the number of the next event) is in the table file, which anyone
/// maps, so an idle log costs a reader no system call.
public final class SwitcherLog {
    /// One event, as read.
    public struct Event {
        public enum Kind: UInt32 {
            case lost = 0, call = 1, unborrow = 2, fault = 3, killed = 4, fallback = 5
        }
        public var kind: Kind
        public var seq: UInt64
        /// rdtsc when it happened (a call: when it ended).
        public var tsc: UInt64
        /// A call: rdtsc when it began; a fault: the faulting address.
        public var arg: UInt64
        public var op: Int32
        public var pid, tid, peerPID, peerTID: pid_t
        /// A call: bytes received or -errno; unborrow: the system call; fault: the signal;
        /// lost: how many events were lost.
        public var result: Int64
        public var out, `in`: UInt32
    }

    let table: SpaceTable
    /// Processes of the address space to read the ring from (the first that answers).
    public var readers: [pid_t]
    /// The ring's file, mapped: read from it instead of from `readers`.
    var mapped: TraceRing?
    /// Number of the next event to read.
    public private(set) var next: UInt64
    /// errno of the last failed read of the ring (0: it was read).
    public private(set) var readError: Int32 = 0
    /// Events lost so far (overwritten before they were read, or torn).
    public private(set) var lost: UInt64 = 0
    private var stuck: (seq: UInt64, since: UInt64)?
    private let clock = Calibration()

    static let events = UInt64(COLO_SWITCH_LOG_EVENTS)
    static let eventSize = MemoryLayout<colo_switch_event>.stride

    /// A reader of `table`'s log.  `fromStart`: begin with the oldest events still in
    /// the ring (else with the next one written).
    public init(table: SpaceTable, readers: [pid_t], fromStart: Bool) {
        self.table = table
        self.readers = readers
        let head = colo_switch_log_head(table.header)
        next = fromStart ? (head > Self.events ? head - Self.events : 0) : head
    }

    /// Read the ring from the address space's trace-ring file from now on (no ptrace
    /// rights needed); false if the file cannot be mapped.
    @discardableResult public func mapFile() -> Bool {
        if mapped == nil { mapped = TraceRing(path: SpaceTable.traceRingPath(tablePath: table.path), writable: false) }
        return mapped != nil
    }

    /// The table header's switch_log word.
    public var flags: UInt32 { colo_switch_log_flags(table.header) }

    /// Turn logging on (`delta` > 0) or off for a tracer: `table` must be writable.
    public static func adjust(_ table: SpaceTable, by delta: Int32) {
        colo_switch_log_adjust(table.header, delta)
    }

    /// debug.colocation_debug was set (Knobs).
    public static func rdtsc() -> UInt64 { colo_rdtsc() }

    /// The events written since the last poll, in the order they were claimed; a gap
    /// (overwritten or torn records) comes as one `.lost` event.
    public func poll() -> [Event] {
        let head = colo_switch_log_head(table.header)
        guard head > next else { return [] }
        var out = [Event]()
        if head - next > Self.events {
            let skipped = head - Self.events - next
            out.append(lostEvent(skipped, before: head - Self.events))
            lost += skipped
            next = head - Self.events
        }
        let count = Int(head - next)
        guard let first = copy(from: next, count: count), let again = copy(from: next, count: count) else { return out }
        for i in 0..<count {
            let n = next + UInt64(i)
            let e = first[i], seq = again[i].seq
            if e.seq == 2 * n + 2 && seq == e.seq {
                out.append(Self.decode(e, n))
                continue
            }
            if e.seq == 2 * n + 1 || e.seq < 2 * n + 1 {
                // Still being written (or not yet begun): wait for it, unless its writer
                // has been gone for a while (killed between claiming and completing it).
                let now = Self.rdtsc()
                if stuck?.seq != n { stuck = (n, now) }
                if now - stuck!.since < clock.ticks(nanoseconds: 100_000_000) {
                    next = n
                    return out
                }
            }
            out.append(lostEvent(1, before: n))
            lost += 1
        }
        next = head
        stuck = nil
        return merged(out)
    }

    /// Neighbouring `.lost` events as one.
    private func merged(_ events: [Event]) -> [Event] {
        var out = [Event]()
        for e in events {
            if e.kind == .lost, let last = out.last, last.kind == .lost {
                out[out.count - 1].result += e.result
            } else {
                out.append(e)
            }
        }
        return out
    }

    private func lostEvent(_ count: UInt64, before seq: UInt64) -> Event {
        Event(kind: .lost, seq: seq, tsc: 0, arg: 0, op: -1, pid: 0, tid: 0, peerPID: 0, peerTID: 0,
              result: Int64(count), out: 0, in: 0)
    }

    /// Records `from ..< from + count` of the ring, copied in (at most) two pieces.
    private func copy(from: UInt64, count: Int) -> [colo_switch_event]? {
        var out = [colo_switch_event](repeating: colo_switch_event(), count: count)
        let start = Int(from % Self.events)
        let firstCount = min(count, Int(Self.events) - start)
        if let mapped {
            out.withUnsafeMutableBytes { buf in
                let ring = mapped.switchLog
                buf.baseAddress!.copyMemory(from: ring + start * Self.eventSize, byteCount: firstCount * Self.eventSize)
                if count > firstCount {
                    (buf.baseAddress! + firstCount * Self.eventSize).copyMemory(from: ring, byteCount: (count - firstCount) * Self.eventSize)
                }
            }
            return out
        }
        let ok = out.withUnsafeMutableBytes { buf -> Bool in
            var local = [iovec(iov_base: buf.baseAddress, iov_len: firstCount * Self.eventSize),
                         iovec(iov_base: buf.baseAddress! + firstCount * Self.eventSize, iov_len: (count - firstCount) * Self.eventSize)]
            var remote = [iovec(iov_base: UnsafeMutableRawPointer(bitPattern: UInt(COLO_SWITCH_LOG_ADDR) + UInt(start * Self.eventSize)),
                                iov_len: firstCount * Self.eventSize),
                          iovec(iov_base: UnsafeMutableRawPointer(bitPattern: UInt(COLO_SWITCH_LOG_ADDR)),
                                iov_len: (count - firstCount) * Self.eventSize)]
            let pieces = count > firstCount ? 2 : 1
            for (i, pid) in readers.enumerated() {
                let n = local.withUnsafeMutableBufferPointer { l in remote.withUnsafeMutableBufferPointer { r in
                    rawSyscall(GuestMemory.processVMReadv, Int(pid), Int(bitPattern: l.baseAddress), pieces,
                               Int(bitPattern: r.baseAddress), pieces, 0)
                } }
                if n == buf.count {
                    if i > 0 { readers.swapAt(0, i) }
                    readError = 0
                    return true
                }
                readError = n < 0 ? Int32(-n) : EIO
            }
            return false
        }
        return ok ? out : nil
    }

    static func decode(_ e: colo_switch_event, _ n: UInt64) -> Event {
        Event(kind: Event.Kind(rawValue: e.kind) ?? .lost, seq: n, tsc: e.tsc, arg: e.arg, op: e.op,
              pid: e.pid, tid: e.tid, peerPID: e.peer_pid, peerTID: e.peer_tid, result: e.result, out: e.out, in: e.in)
    }

    // MARK: - Time

    /// rdtsc against CLOCK_MONOTONIC, measured by the reader: the slope over the
    /// reader's lifetime so far (at least 2 ms).
    final class Calibration {
        let tsc0: UInt64
        let ns0: UInt64
        var perNanosecond = 0.0
        var measuredAt: UInt64 = 0

        init() {
            ns0 = monotonicNanoseconds()
            tsc0 = colo_rdtsc()
        }

        /// TSC ticks per nanosecond.
        func rate() -> Double {
            var ns = monotonicNanoseconds(), tsc = colo_rdtsc()
            if perNanosecond > 0 && ns - measuredAt < 1_000_000_000 { return perNanosecond }
            while ns - ns0 < 2_000_000 { usleep(200); ns = monotonicNanoseconds(); tsc = colo_rdtsc() }
            perNanosecond = Double(tsc &- tsc0) / Double(ns - ns0)
            measuredAt = ns
            return perNanosecond
        }

        func ticks(nanoseconds: Double) -> UInt64 { UInt64(nanoseconds * rate()) }

        /// CLOCK_MONOTONIC (ns) at TSC value `tsc`.
        func monotonic(_ tsc: UInt64) -> Double {
            Double(ns0) + Double(Int64(bitPattern: tsc &- tsc0)) / rate()
        }
    }

    /// Seconds between two TSC values.
    public func seconds(from a: UInt64, to b: UInt64) -> Double {
        Double(Int64(bitPattern: b &- a)) / clock.rate() / 1e9
    }

    /// CLOCK_MONOTONIC, in seconds, of a TSC value.
    public func monotonicSeconds(_ tsc: UInt64) -> Double { clock.monotonic(tsc) / 1e9 }

    /// `ns` nanoseconds in TSC ticks.
    public func ticks(nanoseconds ns: Double) -> UInt64 { clock.ticks(nanoseconds: ns) }

    // MARK: - Formatting

    /// The -e names an event answers to: "cocall" and "switcher" for every event,
    /// and its own name.
    public static func name(_ kind: Event.Kind) -> String {
        switch kind {
        case .lost: "lost"
        case .call: "cocall"
        case .unborrow: "unborrow"
        case .fault: "handover"
        case .killed: "borrower_killed"
        case .fallback: "fallback"
        }
    }

    /// The PID a line starts with: the calling thread (as ptrace's lines name threads).
    public static func linePID(_ e: Event) -> pid_t { e.tid != 0 ? e.tid : e.pid }

    static func peer(_ e: Event) -> String {
        e.peerTID == 0 || e.peerTID == e.peerPID ? "\(e.peerPID)" : "\(e.peerPID)/\(e.peerTID)"
    }

    /// The strace-like line of an event.
    public func text(_ e: Event) -> String {
        let who = "\(Self.linePID(e))"
        switch e.kind {
        case .lost:
            return "--- \(e.result) switcher events lost ---"
        case .call:
            let dur = fixed9(max(0, seconds(from: e.arg, to: e.tsc)))
            let result: String
            if e.result < 0 {
                let err = Int32(-e.result)
                result = "-1 \(Tracer.errnoName(err)) (\(String(cString: strerror(err))))"
            } else {
                result = "\(e.result)"
            }
            return "\(who) cocall(fast) -> \(Self.peer(e)) op \(e.op) out \(e.out) in \(e.in) = \(result) <\(dur)>"
        case .unborrow:
            return "\(who) --- unborrow -> \(Self.peer(e)): \(Tracer.name(Int(e.result))) runs on the callee's thread ---"
        case .fault:
            return "\(who) --- handover -> \(Self.peer(e)): \(Tracer.signalName(Int32(e.result))) at 0x\(String(e.arg, radix: 16)) in the callee's code ---"
        case .killed:
            return "\(who) --- borrower_killed -> \(Self.peer(e)): its coaccept returns EINTR ---"
        case .fallback:
            return "\(who) --- fallback -> \(Self.peer(e)): EPROTOTYPE, the call goes through cocall_slow ---"
        }
    }

    /// The JSON object of an event (fields in man/colo-trace.1).
    public func json(_ e: Event) -> String {
        if e.kind == .lost { return "{\"event\":\"lost\",\"count\":\(e.result)}" }
        var f = ["\"pid\":\(Self.linePID(e))", "\"event\":\"\(Self.name(e.kind))\"",
                 "\"caller_pid\":\(e.pid)", "\"caller_tid\":\(e.tid)", "\"callee_pid\":\(e.peerPID)", "\"callee_tid\":\(e.peerTID)",
                 "\"time\":" + fixed9(monotonicSeconds(e.tsc))]
        switch e.kind {
        case .call:
            f += ["\"op\":\(e.op)", "\"out\":\(e.out)", "\"in\":\(e.in)",
                  e.result < 0 ? "\"result\":-1,\"errno\":\"\(Tracer.errnoName(Int32(-e.result)))\"" : "\"result\":\(e.result),\"errno\":null",
                  "\"duration\":" + fixed9(max(0, seconds(from: e.arg, to: e.tsc)))]
        case .unborrow:
            f += ["\"syscall\":\"\(Tracer.name(Int(e.result)))\"", "\"nr\":\(e.result)"]
        case .fault:
            f += ["\"signal\":\"\(Tracer.signalName(Int32(e.result)))\"", "\"address\":\(e.arg)"]
        case .fallback:
            f += ["\"errno\":\"EPROTOTYPE\""]
        case .killed, .lost:
            break
        }
        return "{" + f.joined(separator: ",") + "}"
    }
}

/// `s` with nine decimals (strace's -T format), without Foundation.
func fixed9(_ s: Double) -> String {
    let ns = Int64((s * 1e9).rounded())
    let frac = String(ns % 1_000_000_000)
    return "\(ns / 1_000_000_000)." + String(repeating: "0", count: 9 - frac.count) + frac
}
