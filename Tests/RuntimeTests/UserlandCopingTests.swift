// coping(1) and copong(1) (spec §3.6, §3.7).
import Foundation
import Glibc
import Testing

/// coping(1) and copong(1) (spec §3.6, §3.7): usage, errors, output formats,
/// the never-ending default count, names through colookup.
@Suite(.serialized) struct UserlandCopingTests {
    static let copingUsage = usageText(["coping [-c count] [-s time] [-kv] -a",
                                        "coping [-c count] [-s time] [-kv] -i index",
                                        "coping [-c count] [-s time] [-kv] service-name ..."])
    static let copongUsage = usageText(["copong [-s time] [-kxv] service-name [target-name ...]"])
    static let time = #"\d+\.\d{3}(s|ms|us|ns)"#

    @Test func copingUsageAndErrors() throws {
        let cases: [([String], Int32, String)] = [
            (["coping"], 0, Self.copingUsage),
            (["coping", "-x"], 0, "coping: illegal option -- x\n" + Self.copingUsage),
            (["coping", "-a", "-c", "0"], 0, Self.copingUsage),
            (["coping", "-a", "-s", "x"], 1, "coping: argument to -s must be a number\n"),
            (["coping", "-a", "-s", "-1"], 1, "coping: argument to -s must be >= 0.0\n"),
            (["coping", "-a", "-i", "3"], 1, "coping: -a and -i are mutually exclusive\n"),
            (["coping", "-a", "foo"], 1, "coping: -a and target name are mutually exclusive\n"),
            (["coping", "-i", "3", "foo"], 1, "coping: -i and target name are mutually exclusive\n"),
            (["coping", "-a"], 1, "coping: no capability vector\n"),
            // (clocks exits 0 whatever its command's status)
            (["clocks", "coping", "-i", "9"], 0, "coping: index 9 must be lower than capc 9\n"),
            (["coping", "nothing-here"], 1, "coping: received ESRCH; this usually means there's nothing coregistered for \"nothing-here\"\n"
                + "coping: use coexec(1) to colocate; you might also find \"ps aux -o vmaddr\" useful\n"
                + "coping: colookup: No such process\n"),
        ]
        for (argv, status, stderr) in cases {
            let r = try Tools.run(argv)
            #expect(r.status == status && r.stderr == stderr, "\(argv): \(r.status) \(r.stderr)")
        }
    }

    @Test(arguments: [false, true]) func copingAllFormats(slow: Bool) throws {
        let k = slow ? " -k" : ""
        let r = try Tools.run(["clocks", "sh", "-c", "coping -ac 1000\(k); coping -a\(k); coping -av -c 10\(k)"])
        #expect(r.status == 0 && r.stderr.isEmpty, "\(r.stderr)")
        let out = r.stdout.split(separator: "\n").map(String.init)
        try #require(out.count == 3, "\(r.stdout)")
        #expect(hasLine(out[0], #"coping: capv\[8\]: "# + Self.time + " for 1000 iterations, " + Self.time + " each"), "\(out[0])")
        #expect(hasLine(out[1], #"coping: capv\[8\]: "# + Self.time), "count 1: no per-iteration figure: \(out[1])")
        #expect(hasLine(out[2], #"coping: returned from "capv\[8\]" after "# + Self.time + #", pid \d+ for 10 iterations, "#
                        + Self.time + " each"), "\(out[2])")
    }

    @Test func copingPerIterationTimeIsTotalOverCount() throws {
        let r = try Tools.run(["clocks", "coping", "-ac", "200"])
        let m = lines(r.stdout, matching: #"coping: capv\[8\]: ([0-9.]+)(ms|us) for 200 iterations, ([0-9.]+)(us|ns) each"#)
        try #require(m.count == 1, "\(r.stdout)")
        let scale = ["ms": 1e6, "us": 1e3, "ns": 1.0]
        let total = Double(m[0][1])! * scale[m[0][2]]!, each = Double(m[0][3])! * scale[m[0][4]]!
        #expect(abs(total / 200 - each) <= max(2, each * 0.01), "\(total) / 200 vs \(each)")
    }

    @Test func copingIndexPrintsDots() throws {
        let r = try Tools.run(["clocks", "sh", "-c", "coping -i 8 -c 3 -s 0; coping -v -i 8 -c 2 -s 0"])
        #expect(r.status == 0)
        let out = r.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(out.first == "...", "one dot per ping, then a newline: \(r.stdout)")
        #expect(lines(r.stdout, matching: #"coping: returned from "capv\[8\]" after "# + Self.time + #", pid \d+"#).count == 2)
        #expect(r.stderr == String(repeating: "coping: cocalling \"capv[8]\"...\n", count: 2))
    }

    @Test(arguments: [[], ["-c", "1"]]) func copingNeverEndsWithCountOne(count: [String]) throws {
        let p = try Tools.start(["clocks", "coping", "-i", "8", "-s", "0.01"] + count)
        usleep(1_500_000)
        #expect(p.child.isRunning, "count 1 pings forever")
        p.terminate()
        _ = p.wait()
    }

    /// An address space (an idle probe) to join copong and coping into.
    func space() throws -> (Background, String) {
        let holder = try Background([Run.colo, try Guests.probe(), "hold"])
        return (holder, try holder.value("pid"))
    }

    @Test(arguments: [false, true]) func copongAnswersCopingByName(slow: Bool) throws {
        let (holder, pid) = try space()
        defer { kill(pid_t(pid)!, SIGUSR1); _ = holder.wait() }
        let k = slow ? ["-k"] : []
        let pong = try Background([Run.colo, "--join", pid, Tools.path("copong"), "-v"] + k + ["meh"])
        defer { pong.terminate() }
        usleep(300_000)
        let r = try Run.colo(["--join", pid, Tools.path("coping"), "-v", "-c", "3", "-s", "0"] + k + ["meh"])
        #expect(r.status == 0, "\(r.stderr)")
        let pings = lines(r.stdout, matching: #"coping: returned from "meh" after "# + Self.time + #", pid (\d+)"#)
        #expect(pings.count == 3, "\(r.stdout)")
        let accepted = try pong.waitFor { $0.hasPrefix("copong: meh: coaccepted") }
        let m = lines(accepted, matching: #"copong: meh: coaccepted, pid (\d+), caller pid (\d+), cookie 0x[0-9a-f]+"#)
        #expect(m.first?[2] == pings.first?[2], "cogetpid names coping: \(accepted)")
        // Registered once per address space.
        let again = try Run.colo(["--join", pid, Tools.path("copong"), "meh"])
        #expect(again.status == 1 && again.stderr == "copong: coregister: File exists\n")
    }

    @Test func copongForwardsToItsTargets() throws {
        let (holder, pid) = try space()
        defer { kill(pid_t(pid)!, SIGUSR1); _ = holder.wait() }
        let a = try Background([Run.colo, "--join", pid, Tools.path("copong"), "-v", "a"])
        defer { a.terminate() }
        usleep(300_000)
        let b = try Background([Run.colo, "--join", pid, Tools.path("copong"), "-v", "b", "a"])
        defer { b.terminate() }
        usleep(300_000)
        let r = try Run.colo(["--join", pid, Tools.path("coping"), "-c", "2", "-s", "0", "b"])
        #expect(r.status == 0 && r.stdout == "..\n", "\(r.stdout)")
        _ = try a.waitFor { $0.hasPrefix("copong: a: coaccepted") }
        _ = try b.waitFor { $0.hasPrefix("copong: b: returned from \"a\", pid ") }
    }

    @Test func copongUsageAndErrors() throws {
        var r = try Tools.run(["copong"])
        #expect(r.status == 0 && r.stderr == Self.copongUsage)
        r = try Tools.run(["copong", "-s", "x", "a"])
        #expect(r.status == 1 && r.stderr == "copong: argument to -s must be a number\n")
        r = try Tools.run(["copong", "a", "missing"])
        #expect(r.status == 1 && r.stderr.hasSuffix("copong: colookup: No such process\n") && r.stderr.contains("nothing coregistered for \"missing\""))
    }

    @Test func copongAbortsWithX() throws {
        let (holder, pid) = try space()
        defer { kill(pid_t(pid)!, SIGUSR1); _ = holder.wait() }
        let x = try Background([Run.colo, "--join", pid, Tools.path("copong"), "-x", "crash"])
        usleep(300_000)
        let r = try Run.colo(["--join", pid, Tools.path("coping"), "-c", "2", "-s", "0", "crash"])
        #expect(x.wait() == 134, "SIGABRT after the first call")
        #expect(r.stderr.contains("coping: cocall: Link has been severed"), "\(r.stderr)")
    }
}
