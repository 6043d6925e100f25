// clearances(1), dispatch(1) and stevie.
import Foundation
import Glibc
import Testing

/// clearances(1), dispatch(1) and stevie.
@Suite(.serialized) struct UserlandMoreToolsTests {
    static let clearancesUsage = usageText(["clearances [-1OXCkv] -i entry command [args ...]"])
    static let cap = #"0x[0-9a-f]{16} \[target\] \(sealed\)"#

    func rawcall() throws -> String { try Guests.buildWithAPI("userland_rawcall") }

    @Test func clearancesUsageAndErrors() throws {
        let cases: [([String], Int32, String)] = [
            (["clearances"], 0, Self.clearancesUsage),
            (["clearances", "-1", "sh"], 0, Self.clearancesUsage),
            (["clearances", "-i", "8", "sh"], 0, Self.clearancesUsage),
            (["clearances", "-1", "-i", "8"], 0, Self.clearancesUsage),
            (["clearances", "-G", "-i", "8", "sh"], 0, Self.clearancesUsage),
            (["clearances", "-X", "-i", "8", "sh"], 0, Self.clearancesUsage),
            (["clearances", "-1", "-i", "-3", "sh"], 0, Self.clearancesUsage),
            (["clearances", "-1", "-O", "-i", "8", "sh"], 255, "clearances: -O conflicts with another policy\n"),
            (["clearances", "-O", "-E", "true", "-i", "8", "sh"], 255, "clearances: -E conflicts with another policy\n"),
            (["clearances", "-1", "-i", "1", "-i", "2", "sh"], 255, "clearances: -i specified more than once\n"),
            (["clearances", "-1", "-i", "x", "sh"], 1, "clearances: argument to -i must be a number\n"),
            (["clearances", "-1", "-i", "8", "sh"], 1, "clearances: capv[8] is NULL\n"),
        ]
        for (argv, status, stderr) in cases {
            let r = try Tools.run(argv)
            #expect(r.status == status && r.stderr == stderr, "\(argv): \(r.status) \(r.stderr)")
        }
    }

    @Test(arguments: [false, true]) func clearancesOneServesTheFirstCallerOnly(slow: Bool) throws {
        let raw = try rawcall()
        let k = slow ? ["-k"] : []
        let r = try Tools.run(["clocks", "clearances", "-1", "-v"] + k + ["-i", "8", "sh", "-c",
                               "\(raw) 8 8; \(raw) 8 8; \(raw) 8 0; capv -v"])
        #expect(r.status == 0, "\(r.stderr)")
        let replies = lines(r.stdout, matching: #"received=(\d+) len=(\d+) op=(-?\d+) error=(-?\d+) errno=(\d+)"#)
        try #require(replies.count == 3, "\(r.stdout)")
        #expect(replies[0][1] == "40" && replies[0][3] == "-8" && replies[0][4] == "0", "the first caller reaches clocks")
        #expect(replies[1][1] == "24" && replies[1][3] == "-8" && replies[1][4] == "-1" && replies[1][5] == String(ECANCELED),
                "a second caller: ECANCELED")
        let s = slow ? #" \(slow\)"# : ""
        #expect(hasLine(r.stdout, #"clearances: pid \d+ failed authorization; canceled"#))
        // A refused answerback request gets clearances' own answerback.
        #expect(hasLine(r.stdout, #"answerback=clearances\(1\), pid \d+, wrapping "# + Self.cap + s), "\(r.stdout)")
        #expect(hasLine(r.stdout, #"clearances: returning answerback to pid \d+ <- pid \d+"# + s))
    }

    @Test func clearancesAllowedAnswerbackIsWrapped() throws {
        // -E runs a command: not in capability mode (-C).
        let r = try Tools.run(["clocks", "clearances", "-C", "-E", "true", "-i", "8", "capv", "-v"])
        #expect(hasLine(r.stdout, #"8:\t"clocks\(1\), pid \d+, responding to clock_gettime\(\) -- via clearances\(1\), pid \d+, wrapping "#
                        + Self.cap + #" \(capsicum disabled\)""#), "\(r.stdout)")
        #expect(r.stderr.contains("authorise_exec: pclose 'true' ret 0"))
        let raw = try rawcall()
        let d = try Tools.run(["clocks", "clearances", "-C", "-E", "false", "-v", "-i", "8", raw, "8", "8"])
        #expect(hasLine(d.stdout, "received=24 len=24 op=-8 error=-1 errno=\(ECANCELED)"), "\(d.stdout) \(d.stderr)")
        #expect(hasLine(d.stdout, #"authorise_exec: "false" returned \d+"#))
    }

    @Test func clearancesOddMinutes() throws {
        var now = time(nil)
        if now % 60 > 50 { sleep(UInt32(62 - now % 60)); now = time(nil) }
        let raw = try rawcall()
        let r = try Tools.run(["clocks", "clearances", "-O", "-i", "8", raw, "8", "8"])
        let odd = (now / 60) % 2 != 0
        #expect(hasLine(r.stdout, odd ? "received=24 len=24 op=-8 error=-1 errno=\(ECANCELED)" : #"received=40 len=40 op=-8 error=0 errno=0"#),
                "minute \(now / 60): \(r.stdout)")
    }

    @Test func dispatchIsRefused() throws {
        var r = try Tools.run(["dispatch"])
        #expect(r.status == 0 && r.stderr == usageText(["dispatch [-Cv] command [args ...]"]))
        r = try Tools.run(["dispatch", "sh", "-c", "echo ran"])
        #expect(r.status == 1 && r.stderr == "dispatch: cosetup: Operation not permitted\n" && r.stdout.isEmpty, "\(r.stdout) \(r.stderr)")
    }

    @Test func stevieCallsItsOwnThread() throws {
        let r = try Tools.run(["stevie"])
        #expect(r.status == 0, "\(r.stderr)")
        let out = r.stdout.split(separator: "\n").map(String.init)
        try #require(out.count == 9, "\(r.stdout)")
        for i in 0..<3 {
            #expect(hasLine(out[3 * i], "calling " + Self.cap + #"\.\.\."#))
            #expect(out[3 * i + 1] == "accepted, counter is \(i)")
            #expect(out[3 * i + 2] == "returned, counter is \(i + 1)")
        }
    }
}
