// capv(1) and clocks(1) with libclocks.
import Foundation
import Glibc
import Testing

/// capv(1) and clocks(1) with libclocks: usage, errors, and the output formats
/// of spec §3.2/§3.3 on real runs.
@Suite(.serialized) struct UserlandCapvTests {
    static let capvUsage = usageText(["capv [-ckn]", "capv [-k] -i entry [-i entry ...] command [args ...]"])
    static let clocksUsage = usageText(["clocks [-Ckv] command [args ...]"])
    /// capv's answerback line for clocks, truncated (66 characters and "...") or not.
    static let clocksAnswer = #"clocks\(1\), pid (\d+), responding to clock_gettime\(\)"#

    @Test func capvUsageAndErrors() throws {
        var r = try Tools.run(["capv", "-z"])
        #expect(r.status == 0 && r.stderr == "capv: illegal option -- z\n" + Self.capvUsage, "\(r.stderr)")
        r = try Tools.run(["capv", "-i"])
        #expect(r.status == 0 && r.stderr == "capv: option requires an argument -- i\n" + Self.capvUsage)
        r = try Tools.run(["capv", "-i", "x", "sh"])
        #expect(r.status == 1 && r.stderr == "capv: argument to -i must be a number\n")
        r = try Tools.run(["capv", "-i", "-1", "sh"])
        #expect(r.status == 0 && r.stderr == Self.capvUsage, "a negative entry calls usage")
        r = try Tools.run(["capv"])
        #expect(r.status == 1 && r.stderr == "capv: no capability vector\n" && r.stdout.isEmpty)
        // Operands without -i, -i without a command: usage.
        r = try Tools.run(["clocks", "capv", "extra"])
        #expect(r.status == 0 && r.stderr == Self.capvUsage)
        r = try Tools.run(["clocks", "capv", "-i", "8"])
        #expect(r.stderr == Self.capvUsage)
    }

    @Test(arguments: [false, true]) func capvListsTheVectorWithAnswerbacks(slow: Bool) throws {
        let k = slow ? " -k" : ""
        // clocks -C stays out of capability mode: its answerback then ends with
        // " (capsicum disabled)", long enough to be truncated.
        let r = try Tools.run(["clocks", "-C", "sh", "-c", "capv\(k); echo; capv -c\(k); echo; capv -n; echo; capv -cn; echo; capv -v\(k)"])
        #expect(r.status == 0, "\(r.stderr)")
        let parts = r.stdout.components(separatedBy: "\n\n")
        try #require(parts.count == 5, "\(r.stdout)")
        let cap = #"0x[0-9a-f]{16} \[target\] \(sealed\)"#
        // Without -v the answerback is cut to 66 characters plus "...".
        let m = lines(parts[0], matching: #"8:\t"(.*)""#)
        #expect(m.count == 1 && m[0][1].count == 69 && m[0][1].hasSuffix("...") && hasLine(parts[0], #"8:\t""# + Self.clocksAnswer + #" \(capsicum.*\.\.\.""#),
                "\(parts[0])")
        #expect(hasLine(parts[1], #"8:\t"# + cap + #":\t""# + Self.clocksAnswer + #".*\.\.\.""#), "\(parts[1])")
        #expect(parts[2] == "8", "-n: indices only")
        #expect(hasLine(parts[3], "8:\t" + cap), "\(parts[3])")
        let full = lines(parts[4], matching: #"8:\t""# + Self.clocksAnswer + #"(.*)""#)
        #expect(full.count == 1 && full.first?[2] == " (capsicum disabled)", "\(parts[4])")
    }

    @Test func servicesEnterCapabilityModeUnlessC() throws {
        let r = try Tools.run(["clocks", "capv", "-v"])
        #expect(hasLine(r.stdout, #"8:\t""# + Self.clocksAnswer + #"""#), "as in the tutorial: \(r.stdout)")
        let c = try Tools.run(["clocks", "-C", "capv", "-v"])
        #expect(hasLine(c.stdout, #"8:\t""# + Self.clocksAnswer + #" \(capsicum disabled\)""#), "\(c.stdout)")
    }

    @Test func capvRestrictsTheVectorForACommand() throws {
        let r = try Tools.run(["clocks", "sh", "-c", "capv -i 8 capv -n; echo; capv -i 3 -i 99 capv -n; echo rc=$?; capv -i 8 /nonexistent; echo rc=$?"])
        let parts = r.stdout.components(separatedBy: "\n")
        #expect(parts.first == "8", "\(r.stdout)")
        #expect(r.stdout.contains("\n\nrc=0\n"), "entries 3 and 99 are NULL or beyond capc: nothing listed")
        #expect(r.stdout.contains("rc=1") && r.stderr.contains("capv: /nonexistent: No such file or directory"))
    }

    @Test func clocksUsageAndExitStatus() throws {
        var r = try Tools.run(["clocks"])
        #expect(r.status == 0 && r.stderr == Self.clocksUsage)
        r = try Tools.run(["clocks", "-x", "sh"])
        #expect(r.status == 0 && r.stderr == "clocks: illegal option -- x\n" + Self.clocksUsage)
        // The command's status is not passed on: SIGCHLD makes clocks exit 0.
        r = try Tools.run(["clocks", "sh", "-c", "exit 3"])
        #expect(r.status == 0)
        r = try Tools.run(["clocks", "/nonexistent"])
        #expect(r.status == 0 && r.stderr == "clocks: /nonexistent: No such file or directory\n")
    }

    @Test(arguments: [false, true]) func dateRoutesThroughClocks(slow: Bool) throws {
        let r = try Tools.run(["clocks", "-v"] + (slow ? ["-k"] : []) + ["sh", "-c", "date +%s; capv"])
        #expect(r.status == 0, "\(r.stderr)")
        let s = slow ? #" \(slow\)"# : ""
        let calls = lines(r.stdout, matching: #"clocks: op (-?\d+), len (\d+) from pid (\d+) -> pid (\d+)"# + s)
        #expect(calls.contains { $0[1] == "8" && $0[2] == "16" }, "date's CLOCK_REALTIME is op 8: \(r.stdout)")
        #expect(calls.contains { $0[1] == "0" }, "capv's answerback request")
        #expect(hasLine(r.stdout, #"clocks: returning to pid \d+ <- pid \d+: op -8, len 40, error 0, errno 0"# + s))
        let date = lines(r.stdout, matching: #"(\d{9,})"#)
        let now = Int(Date().timeIntervalSince1970)
        #expect(date.count == 1 && abs((Int(date.first?[1] ?? "") ?? 0) - now) < 30, "date got the time from clocks")
    }

    @Test func libclocksClientCalls() throws {
        let guest = try Guests.build("userland_clock", .dynamicGlibc)
        let r = try Tools.run(["clocks", "-v", guest])
        let v = values(r.stdout)
        #expect(v["realtime"]?.hasPrefix("0 ") == true && v["monotonic"] == "0", "\(r.stdout) \(r.stderr)")
        #expect(v["badclock"] == "-1 Invalid argument", "the service's error and errno come back")
        // Linux's CLOCK_MONOTONIC is 1 (FreeBSD's 4, op 12 in the tutorial).
        #expect(hasLine(r.stdout, #"clocks: op 9, len 16 from pid \d+ -> pid \d+"#), "CLOCK_MONOTONIC is op 9")
        #expect(hasLine(r.stdout, #"clocks: returning to pid \d+ <- pid \d+: op -8, len 40, error -1, errno 22"#))
    }

    @Test func libclocksWithoutTheServiceFailsWithENOLINK() throws {
        let guest = try Guests.build("userland_clock", .dynamicGlibc)
        let lib = Tools.path("libclocks-preload.so")
        // Colocated, but with no capability at index 8; and outside colocation.
        for argv in [[Run.colo, "/usr/bin/env", "LD_PRELOAD=" + lib, guest], ["/usr/bin/env", "LD_PRELOAD=" + lib, guest]] {
            let r = try Tools.run(argv)
            #expect(r.status == 0)
            #expect(values(r.stdout)["realtime"] == "-1 -1", "\(r.stdout)")
            #expect(r.stderr.contains("userland_clock-dynamic-glibc: null capability 8: Link has been severed"), "\(r.stderr)")
        }
    }

    @Test func aToolForkedOutOfAnAddressSpaceDoesNotTryToCreateOne() throws {
        // A pipeline stage is forked: outside the address space (no vector),
        // or back in it once fork re-colocation exists, never a failed runtime.
        let r = try Tools.run(["clocks", "sh", "-c", "capv | cat"])
        #expect(!r.stderr.contains("colo:"), "\(r.stderr)")
        #expect(r.stderr == "capv: no capability vector\n" || hasLine(r.stdout, #"8:\t"clocks\(1\).*""#), "\(r.stdout) \(r.stderr)")
    }

    @Test func aToolStartedFromAPlainShellCreatesAnAddressSpace() throws {
        let samevm = try Guests.build("samevm", .staticGlibc)
        let r = try Tools.run(["clocks", "sh", "-c", "colo ps $$; \(samevm) $$ \(getpid()); echo sh=$$"])
        let sh = values(r.stdout)["sh"] ?? "?"
        let rows = r.stdout.split(separator: "\n").filter { $0.hasPrefix("USER") == false && $0.split(separator: " ").count > 10 }
            .map { $0.split(separator: " ", omittingEmptySubsequences: true) }
        // ps prints the VMADDR of the address space it lists on every row: what is checked is
        // who it lists, and (kcmp) that the shell really runs in the address space clocks made.
        #expect(rows.count == 4, "runtime, clocks, sh and colo ps in one address space: \(r.stdout)")
        #expect(rows.contains { $0[10] == "[colo" }, "\(r.stdout)")
        #expect(rows.contains { $0[10].hasSuffix("/clocks") && $0[11] == "sh" })
        #expect(rows.contains { String($0[1]) == sh && $0[10] == "sh" }, "\(r.stdout)")
        #expect(rows.contains { $0[10].hasSuffix("colo") && $0[11] == "ps" })
        #expect(r.stdout.contains("samevm \(sh)=1\nsamevm \(getpid())=0\n"), "\(r.stdout)")
    }
}
