// A counter for `-c`: a perf event of the calling thread (perf_event_open(2)), where CheriBSD reads libstatcounters' CPU counters.
import CoTools
import Glibc
import TimingLoops

/// A counter for `-c`: a perf event of the calling thread (perf_event_open(2)),
/// where CheriBSD reads libstatcounters' CPU counters.  These VMs expose no
/// PMU, so only the kernel's software events can be opened here; hardware
/// events (and CheriBSD's statcounters names for them) are known, and asking
/// for one gives a clear error instead of a silent zero column.
struct Counter {
    let names: [String]
    let type: UInt32
    let config: UInt64
    var hardware: Bool { type != Counter.software }

    static let hardwareType: UInt32 = 0, software: UInt32 = 1, cache: UInt32 = 3

    /// L1D/DTLB/ITLB read misses (PERF_TYPE_HW_CACHE: id | op << 8 | result << 16).
    static func cacheMiss(_ id: UInt64) -> UInt64 { id | (0 << 8) | (1 << 16) }

    /// At most this many counters (a row of the raw file is the time and 9 counters).
    static let maximum = 9

    static let all: [Counter] = [
        Counter(names: ["task-clock"], type: software, config: 1),
        Counter(names: ["cpu-clock"], type: software, config: 0),
        Counter(names: ["context-switches", "cs"], type: software, config: 3),
        Counter(names: ["cpu-migrations", "migrations"], type: software, config: 4),
        Counter(names: ["page-faults", "faults"], type: software, config: 2),
        Counter(names: ["minor-faults"], type: software, config: 5),
        Counter(names: ["major-faults"], type: software, config: 6),
        Counter(names: ["alignment-faults"], type: software, config: 7),
        Counter(names: ["emulation-faults"], type: software, config: 8),
        Counter(names: ["cycles", "cycle"], type: hardwareType, config: 0),
        Counter(names: ["instructions", "inst"], type: hardwareType, config: 1),
        Counter(names: ["cache-references"], type: hardwareType, config: 2),
        Counter(names: ["cache-misses"], type: hardwareType, config: 3),
        Counter(names: ["branches", "branch-instructions"], type: hardwareType, config: 4),
        Counter(names: ["branch-misses"], type: hardwareType, config: 5),
        Counter(names: ["l1d_miss"], type: cache, config: cacheMiss(0)),
        Counter(names: ["dtlb_miss"], type: cache, config: cacheMiss(3)),
        Counter(names: ["itlb_miss"], type: cache, config: cacheMiss(4)),
    ]

    static func named(_ name: String) -> Counter? { all.first { $0.names.contains(name) } }

    /// The lines of the usage text listing the counters.
    static var usageLines: [String] {
        all.map { c in "  " + c.names.joined(separator: ", ") + (c.hardware ? " (hardware)" : "") }
    }

    /// Open the counter for the calling thread, or exit with the reason.
    func open(as name: String) -> Int32 {
        let fd = timing_perf_open(type, config)
        if fd >= 0 { return fd }
        let e = errno
        if hardware && (e == ENOENT || e == EOPNOTSUPP || e == ENODEV || e == EINVAL) {
            Diag.errx(1, "\(name): no hardware counters on this machine (perf_event_open: \(Diag.errorText(e))); "
                      + "use a software counter, see usage for list")
        }
        Diag.err(1, "\(name): perf_event_open", errno: e)
    }
}
