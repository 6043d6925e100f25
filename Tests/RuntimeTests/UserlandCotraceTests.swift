// cotrace(1), the threaded form (spec §3.5).
import Foundation
import Glibc
import Testing

/// cotrace(1), the threaded form (spec §3.5): every non-NULL entry interposed,
/// strvisx dumps, the answerback rewrite, terse and verbose lines.
@Suite(.serialized) struct UserlandCotraceTests {
    static let usage = usageText(["cotrace [-Ckv] command [args ...]"])
    /// strvisx of capv_t{len 16, op 0} and capv_t{len 16, op 8 (CLOCK_REALTIME)}.
    static let answerbackRequest = #"\\020\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0"#
    static let clockRequest = #"\\020\\0\\0\\0\\0\\0\\0\\0\\b\\0\\0\\0\\0\\0\\0\\0"#

    @Test func cotraceUsage() throws {
        var r = try Tools.run(["cotrace"])
        #expect(r.status == 0 && r.stderr == Self.usage)
        r = try Tools.run(["cotrace", "-x", "capv"])
        #expect(r.status == 0 && r.stderr == "cotrace: illegal option -- x\n" + Self.usage)
    }

    @Test(arguments: [false, true]) func verboseTraceOfAnAnswerback(slow: Bool) throws {
        let k = slow ? ["-k"] : []
        let r = try Tools.run(["clocks", "cotrace", "-v"] + k + ["capv", "-v"] + k)
        #expect(r.status == 0, "\(r.stderr)")
        let s = slow ? #" \(slow\)"# : ""
        let req = lines(r.stdout, matching: #"cotrace: cocall from pid (\d+)\[8\] -> pid (\d+), received 16, len 16, op 0"# + s + ": \"" + Self.answerbackRequest + "\"")
        try #require(req.count == 1, "\(r.stdout)")
        let (caller, tracer) = (req[0][1], req[0][2])
        let reply: String = #"cotrace: returning to pid \#(caller)\[8\] <- pid \#(tracer), len 1040, op 0: "# +
            #""\\020\\004\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0clocks\(1\), pid \d+, responding to clock_gettime\(\).*(\\0)+""# + s
        #expect(hasLine(r.stdout, reply), "\(r.stdout)")
        #expect(hasLine(r.stdout, #"cotrace: returning answerback to pid\[\#(caller)\] 8 <- pid \#(tracer)"# + s))
        // Both services are in capability mode: no "(capsicum disabled)".
        let rewritten: String = #"8:\t"clocks\(1\), pid \d+, responding to clock_gettime\(\)"#
            + #" -- via cotrace\(1\), pid \#(tracer), threadid \d+, tracing 0x[0-9a-f]{16} \[target\] \(sealed\)"#
            + s + #"""#
        #expect(hasLine(r.stdout, rewritten), "\(r.stdout)")
    }

    @Test func traceOfClockCallsAndTerseLines() throws {
        let r = try Tools.run(["clocks", "sh", "-c", "cotrace -v date; echo; cotrace capv"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(hasLine(r.stdout, #"cotrace: cocall from pid \d+\[8\] -> pid \d+, received 16, len 16, op 8: ""# + Self.clockRequest + "\""), "\(r.stdout)")
        #expect(hasLine(r.stdout, #"cotrace: returning to pid \d+\[8\] <- pid \d+, len 40, op -8: "\(\\0\\0\\0\\0\\0\\0\\0\\370\\377\\377\\377.*""#), "a timespec reply")
        let terse = r.stdout.components(separatedBy: "\n\n").last ?? ""
        #expect(hasLine(terse, #"-> 8: ""# + Self.answerbackRequest + "\""), "\(terse)")
        let back = lines(terse, matching: #"<- 8: "(.*)""#)
        #expect(back.count == 1 && back[0][1].count == 69 && back[0][1].hasSuffix("..."), "dumps cut to 66 characters: \(terse)")
    }

    @Test func everyEntryIsInterposed() throws {
        let r = try Tools.run(["clocks", "binds", "cotrace", "capv", "-v"])
        #expect(hasLine(r.stdout, #"8:\t"clocks\(1\).* -- via cotrace\(1\), pid (\d+), threadid (\d+), .*""#), "\(r.stdout)")
        #expect(hasLine(r.stdout, #"10:\t"binds\(1\).* -- via cotrace\(1\), pid (\d+), threadid (\d+), .*""#))
        let tids = lines(r.stdout, matching: #"\d+:\t".* threadid (\d+), .*""#).map { $0[1] }
        #expect(Set(tids).count == 2, "one thread per entry: \(tids)")
        #expect(lines(r.stdout, matching: "-> (8|10): .*").count == 2)
    }
}
