// Coping.swift - coping(1): cocall services and time the round trips.
import ArgumentParser
import CoHelpers
import CoTools
import Glibc
import GuestAPI

/// coping(1): cocall services (answerback requests) and time the round trips.
@main
struct Coping: BSDTool {
    static let configuration = CommandConfiguration(
        commandName: "coping",
        abstract: "Ping colocated services with cocall(2).",
        usage: usageText)
    static let optstring = "ac:i:ks:v"
    static let usageLines = ["coping [-c count] [-s time] [-kv] -a",
                             "coping [-c count] [-s time] [-kv] -i index",
                             "coping [-c count] [-s time] [-kv] service-name ..."]

    @Flag(name: .customShort("a"), help: "Ping every non-NULL capability-vector entry.") var all = false
    @Option(name: .customShort("c"), parsing: .unconditional, help: "Number of iterations.") var count: String?
    @Option(name: .customShort("i"), parsing: .unconditional, help: "Ping capability-vector entry index.") var index: String?
    @Flag(name: .customShort("k"), help: "Use cocall_slow(2).") var slow = false
    @Option(name: .customShort("s"), parsing: .unconditional, help: "Seconds between iterations.") var interval: String?
    @Flag(name: .customShort("v"), help: "Verbose.") var verbose = false
    @Argument(parsing: .postTerminator, help: "service-name ...") var names: [String] = []

    static func main() { bsdMain() }

    func run() {
        let count = self.count.map { Int(atoi($0)) } ?? 1
        if count <= 0 { Self.usage() }
        let dt = interval.map(seconds) ?? 1.0
        let index = self.index.map { Int(atoi($0)) }
        if all && index != nil { Diag.errx(1, "-a and -i are mutually exclusive") }
        if all && !names.isEmpty { Diag.errx(1, "-a and target name are mutually exclusive") }
        if index != nil && !names.isEmpty { Diag.errx(1, "-i and target name are mutually exclusive") }
        if !all && index == nil && names.isEmpty { Self.usage() }
        Colocation.ensure()

        var targets = [(Capability?, String)]()
        if all || index != nil {
            let vector = CapVector.fetch()
            if vector.capc <= 0 { Diag.errx(1, "no capability vector") }
            if let index {
                if index >= Int(vector.capc) { Diag.errx(1, "index \(index) must be lower than capc \(vector.capc)") }
                targets = [(vector[index], "capv[\(index)]")]
            } else {
                for (i, c) in vector.entries.enumerated() where c != nil { targets.append((c, "capv[\(i)]")) }
            }
        } else {
            for n in names { targets.append((lookupOrExit(n), n)) }
        }
        Service.setupCaller()

        // The options as constants (every read of an ArgumentParser property
        // wrapper looks up generic metadata, tens of ns), the targets in a C
        // array and the request built once: the loops below only cocall.
        let p = Pinger(slow: slow, verbose: verbose, all: all)
        let caps = UnsafeMutableBufferPointer<Capability?>.allocate(capacity: targets.count)
        for (k, t) in targets.enumerated() { caps[k] = t.0 }
        if all {
            for (k, t) in targets.enumerated() { p.ping(caps[k], t.1, count) }
            return
        }
        var i = 0
        while true {
            for k in 0..<caps.count {
                if p.timed {
                    p.ping(caps[k], targets[k].1, 1)
                } else {
                    p.call(caps[k])
                    putchar(0x2e)       // "."
                    cotool_flush_if_tty()
                }
            }
            i += 1
            if count != 1 && i >= count { break }
            if dt > 0 { pause(dt) }
        }
        if !verbose { print("") }
    }
}

/// The calls themselves: an answerback request (`capv_t{len, op 0}`) built
/// once, the reply read into a buffer of its own and ignored ("It's
/// truncated anyway").
struct Pinger {
    let slow: Bool, verbose: Bool, all: Bool
    let size = Layout.capv
    let out = Message(Layout.capv), input = Message(Layout.capv)

    init(slow: Bool, verbose: Bool, all: Bool) {
        self.slow = slow
        self.verbose = verbose
        self.all = all
        out.len = size
        out.op = 0
    }

    /// Is each round trip timed and printed (-v or -a), or only dotted?
    var timed: Bool { verbose || all }

    /// One cocall (or cocall_slow) to `target`; warn("cocall") on failure.
    func call(_ target: Capability?) {
        let r = slow ? cocall_slow(target, out.raw, size, input.raw, size) : cocall(target, out.raw, size, input.raw, size)
        if r < 0 { Diag.warn("cocall") }
    }

    /// `n` back-to-back calls to `target`, timed with CLOCK_REALTIME and printed.
    func ping(_ target: Capability?, _ name: String, _ n: Int) {
        if verbose && !all { Diag.stderr("\(Diag.progname): cocalling \"\(name)\"...\n") }
        let o = out.raw, i = input.raw
        var before = timespec(), after = timespec()
        clock_gettime(CLOCK_REALTIME, &before)
        for _ in 0..<n {
            let r = slow ? cocall_slow(target, o, size, i, size) : cocall(target, o, size, i, size)
            if r < 0 { Diag.warn("cocall") }
        }
        clock_gettime(CLOCK_REALTIME, &after)
        var took = timespec(tv_sec: after.tv_sec - before.tv_sec, tv_nsec: after.tv_nsec - before.tv_nsec)
        if took.tv_nsec < 0 { took.tv_sec -= 1; took.tv_nsec += 1_000_000_000 }
        let line = verbose ? "\(Diag.progname): returned from \"\(name)\" after \(humanize(took)), pid \(getpid())"
                           : "\(Diag.progname): \(name): \(humanize(took))"
        if n == 1 {
            print(line)
        } else {
            // timespecdiv (kern/13326, by kbyanc@): seconds and nanoseconds divided separately.
            let each = timespec(tv_sec: took.tv_sec / n, tv_nsec: took.tv_nsec / n)
            print(line + " for \(n) iterations, \(humanize(each)) each")
        }
    }

    /// "%.3fs", "%.3fms", "%.3fus" or "%.3fns".
    func humanize(_ t: timespec) -> String {
        let ns = Double(t.tv_sec) * 1e9 + Double(t.tv_nsec)
        if ns > 1e9 { return format(ns / 1e9) + "s" }
        if ns > 1e6 { return format(ns / 1e6) + "ms" }
        if ns > 1e3 { return format(ns / 1e3) + "us" }
        return format(ns) + "ns"
    }

    func format(_ v: Double) -> String {
        var buf = [CChar](repeating: 0, count: 64)
        _ = withVaList([v]) { vsnprintf(&buf, buf.count, "%.3f", $0) }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
