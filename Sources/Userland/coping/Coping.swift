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

        let out = Message(Layout.capv), input = Message(Layout.capv)
        if all {
            for (t, name) in targets { ping(t, name, count, out, input) }
            return
        }
        var i = 0
        while true {
            for (t, name) in targets { ping(t, name, 1, out, input) }
            i += 1
            if count != 1 && i >= count { break }
            pause(dt)
        }
        if !verbose { print("") }
    }

    /// `n` back-to-back answerback requests to `target`, timed with
    /// CLOCK_REALTIME; the reply is ignored ("It's truncated anyway").
    func ping(_ target: Capability?, _ name: String, _ n: Int, _ out: Message, _ input: Message) {
        if verbose && !all { Diag.stderr("\(Diag.progname): cocalling \"\(name)\"...\n") }
        var before = timespec(), after = timespec()
        clock_gettime(CLOCK_REALTIME, &before)
        for _ in 0..<n {
            out.len = Layout.capv
            out.op = 0
            if call(target, out, Layout.capv, input, Layout.capv, slow: slow) < 0 { Diag.warn("cocall") }
        }
        clock_gettime(CLOCK_REALTIME, &after)
        var took = timespec(tv_sec: after.tv_sec - before.tv_sec, tv_nsec: after.tv_nsec - before.tv_nsec)
        if took.tv_nsec < 0 { took.tv_sec -= 1; took.tv_nsec += 1_000_000_000 }
        var line: String
        if verbose {
            line = "\(Diag.progname): returned from \"\(name)\" after \(humanize(took)), pid \(getpid())"
        } else if all {
            line = "\(Diag.progname): \(name): \(humanize(took))"
        } else {
            print(".", terminator: "")
            cotool_flush_if_tty()
            return
        }
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
