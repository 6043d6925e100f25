// SyscallTimingTests.swift - syscall_timing(1) and syscall_timing_pong: output, errors, every test, native and colocated runs.
import Foundation
import Glibc
import Testing

/// syscall_timing(1) and syscall_timing_pong (spec §4): the output format,
/// every error text, and every test of the table running with a positive
/// time per iteration (tiny -i so that the suite stays fast).
@Suite(.serialized) struct SyscallTimingTests {
    static let header = "test\tloop\ttime\titerations\tperiteration"
    static let resolution = #"Clock resolution: \d+\.\d{9}"#
    /// One run: test, loop, time, iterations, time per iteration.
    static let run = #"([a-z_0-9]+)\t(\d+)\t(\d+)\.(\d{9})\t(\d+)\t0\.(\d{9})"#

    /// The tests the tool lists in its usage.
    static func listedTests() throws -> [String] {
        let r = try Tools.run(["syscall_timing"])
        #expect(r.status == 255)
        let lines = r.stderr.split(separator: "\n").map(String.init)
        guard let start = lines.firstIndex(of: "Available tests:"),
              let end = lines.firstIndex(of: "Available counters, to use with -c:") else {
            throw TestFailure("no test list in the usage: \(r.stderr)")
        }
        return lines[(start + 1)..<end].map { $0.trimmingCharacters(in: .whitespaces) }
    }

    /// The runs printed, by test name: (loop, seconds, iterations, ns per iteration).
    static func runs(_ output: String) -> [String: [(loop: Int, ns: UInt64, iterations: UInt64, each: UInt64)]] {
        var d = [String: [(loop: Int, ns: UInt64, iterations: UInt64, each: UInt64)]]()
        for m in lines(output, matching: run) {
            let ns = UInt64(m[3])! * 1_000_000_000 + UInt64(m[4])!
            d[m[1], default: []].append((Int(m[2])!, ns, UInt64(m[5])!, UInt64(m[6])!))
        }
        return d
    }

    /// Does every listed test in `names` print `loops` runs with a positive time per iteration?
    static func expectRan(_ names: [String], in output: String, loops: Int = 1) {
        let got = runs(output)
        for n in names {
            let r = got[n] ?? []
            #expect(r.count == loops && r.allSatisfy { $0.each > 0 && $0.iterations > 0 }, "\(n): \(r) in \(output)")
        }
    }

    @Test func outputFormat() throws {
        let r = try Tools.run(["syscall_timing", "-i", "1000", "-l", "3", "getppid", "getuid"])
        #expect(r.status == 0 && r.stderr.isEmpty, "\(r.stderr)")
        let out = r.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        try #require(out.count == 9, "\(r.stdout)")
        #expect(hasLine(out[0], Self.resolution), "\(out[0])")
        #expect(out[1] == Self.header)
        #expect(out[8] == "", "ends with a newline")
        for (k, line) in out[2..<8].enumerated() {
            let m = lines(line, matching: Self.run)
            try #require(m.count == 1, "\(line)")
            #expect(m[0][1] == (k < 3 ? "getppid" : "getuid") && m[0][2] == String(k % 3), "\(line)")
            #expect(m[0][5] == "1000", "-i bounds the run: \(line)")
            // periteration = time in ns / iterations, truncated ("0.%09ju").
            let ns = UInt64(m[0][3])! * 1_000_000_000 + UInt64(m[0][4])!
            #expect(UInt64(m[0][6])! == ns / 1000, "\(line)")
        }
    }

    /// A plain program, as FreeBSD's: started outside an address space its
    /// plain tests run natively, in its own process without any seccomp
    /// filter; only the co* tests make it enter an address space.
    @Test func plainTestsRunNatively() throws {
        let p = try Background([Tools.path("syscall_timing"), "-s", "1", "-l", "1", "getppid"])
        defer { p.terminate(); _ = p.wait() }
        usleep(300_000)
        let exe = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(p.pid)/exe")
        #expect(exe.hasSuffix("/syscall_timing"), "not run again under colo: \(exe)")
        let status = try String(contentsOfFile: "/proc/\(p.pid)/status", encoding: .utf8)
        #expect(status.split(separator: "\n").contains("Seccomp:\t0"), "\(status)")
    }

    @Test func theAlarmEndsARun() throws {
        let r = try Tools.run(["syscall_timing", "-s", "0.2", "-l", "1", "getppid"])
        #expect(r.status == 0, "\(r.stderr)")
        let run = try #require(Self.runs(r.stdout)["getppid"]?.first, "\(r.stdout)")
        #expect(run.ns >= 190_000_000 && run.ns < 1_000_000_000, "\(run)")
        #expect(run.iterations > 1000, "\(run)")
    }

    @Test func usageAndErrors() throws {
        let usage = try Tools.run(["syscall_timing"]).stderr
        #expect(usage.hasPrefix("syscall_timing [-c counter,...] [-i iterations] [-l loops] [-n name] [-p path] "
                                + "[-r path] [-s seconds] [-t] test ...\nAvailable tests:\n  access\n"), "\(usage)")
        for t in ["getppid", "coping_8000000", "coping_slow_8", "coping_syscall_80", "futexping_8", "unixping"] {
            #expect(usage.contains("\n  \(t)\n"), "\(t)")
        }
        let counters: [String] = ["task-clock", "cpu-clock", "context-switches, cs", "cpu-migrations, migrations",
                                  "page-faults, faults", "minor-faults", "major-faults", "alignment-faults", "emulation-faults",
                                  "cycles, cycle (hardware)", "instructions, inst (hardware)", "cache-references (hardware)",
                                  "cache-misses (hardware)", "branches, branch-instructions (hardware)",
                                  "branch-misses (hardware)", "l1d_miss (hardware)", "dtlb_miss (hardware)", "itlb_miss (hardware)"]
        let counterList = "Available counters, to use with -c:\n" + counters.map { "  \($0)\n" }.joined()
        #expect(usage.hasSuffix(counterList), "\(usage)")
        let p = "syscall_timing: "
        let esrch = p + "received ESRCH; this usually means there's nothing coregistered for \"nothing-here\"\n"
            + p + "use coexec(1) to colocate; you might also find \"ps aux -o vmaddr\" useful\n"
            + p + "colookup: No such process\n"
        let ten = ["-r", "/dev/null", "-i", "1"] + Array(repeating: ["-c", "task-clock"], count: 10).flatMap { $0 }
        let cases: [([String], Int32, String)] = [
            (["-x", "getppid"], 255, p + "illegal option -- x\n" + usage),
            (["-i"], 255, p + "option requires an argument -- i\n" + usage),
            (["-i", "0", "getppid"], 255, usage),
            (["-i", "5x", "getppid"], 255, usage),
            (["-l", "0", "getppid"], 255, usage),
            (["-l", "100001", "getppid"], 255, usage),
            (["-s", "0", "getppid"], 255, usage),
            (["-s", "3601", "getppid"], 255, usage),
            (["-s", "x", "getppid"], 255, usage),
            (["no_such_test"], 255, usage),
            (["getppid", "no_such_test"], 255, usage),
            (["coping_8"], 1, p + "test coping_8 requires -n\n"),
            (["getppid", "coping_slow_8000000"], 1, p + "test coping_slow_8000000 requires -n\n"),
            (["coping_syscall_80"], 1, p + "test coping_syscall_80 requires -n\n"),
            (["-r", "/dev/null", "getppid"], 1, p + "-r must be followed by -i\n"),
            (["-c", "task-clock", "getppid"], 1, p + "-c must be followed by -r\n"),
            (["-c", "no-such-counter", "getppid"], 1, p + "invalid counter name, see usage for list\n"),
            (["-c", "task-clock,", "getppid"], 1, p + "invalid counter name, see usage for list\n"),
            (ten + ["getppid"], 1, p + "must specify at most 9 counters\n"),
            (["-n", "-3", "coping_8"], 1, p + "path argument must be a positive number\n"),
            (["-n", "8x", "coping_8"], 1, p + "path argument must be a positive number\n"),
            (["-n", "", "coping_8"], 1, p + "path argument must be a positive number\n"),
            (["-n", "3", "coping_8"], 1, p + "no capability vector\n"),
            (["-n", "nothing-here", "coping_8"], 1, esrch),
        ]
        for (argv, status, stderr) in cases {
            let r = try Tools.run(["syscall_timing"] + argv)
            #expect(r.status == status && r.stderr == stderr, "\(argv): \(r.status) \(r.stderr)")
        }
        // A vector of 9 entries (clocks at 8): index 9 is past its end.
        let clocks = try Tools.run(["clocks", "syscall_timing", "-n", "9", "coping_8"])
        #expect(clocks.stderr == p + "entry 9 >= capc 9\n", "\(clocks.stderr)")
        #expect(clocks.stdout.hasSuffix(Self.header + "\n"), "the error comes after the header, as in CheriBSD")
    }

    @Test func hardwareCountersFailClearly() throws {
        let r = try Tools.run(["syscall_timing", "-i", "1", "-l", "1", "-r", "/dev/null", "-c", "cycle", "getppid"])
        // The kernel lists a CPU's PMU as event source "cpu" (or "cpu_core"/"cpu_atom" on hybrid parts).
        let sources = (try? FileManager.default.contentsOfDirectory(atPath: "/sys/bus/event_source/devices")) ?? []
        if sources.contains(where: { $0 == "cpu" || $0.hasPrefix("cpu_") }) {
            #expect(r.status == 0 && r.stderr.isEmpty, "a machine with a PMU counts cycles: \(r.stderr)")
        } else {
            #expect(r.status == 1 && r.stderr == "syscall_timing: cycle: no hardware counters on this machine "
                    + "(perf_event_open: No such file or directory); use a software counter, see usage for list\n", "\(r.stderr)")
        }
    }

    @Test func rawFileWithSoftwareCounters() throws {
        let raw = NSTemporaryDirectory() + "syscall-timing-raw-\(getpid())"
        defer { unlink(raw) }
        let r = try Tools.run(["syscall_timing", "-i", "50", "-l", "2", "-r", raw, "-c", "task-clock,cs", "-c", "minor-faults",
                               "getppid", "pipeping_8"])
        #expect(r.status == 0 && r.stderr.isEmpty, "\(r.stderr)")
        let rows = try String(contentsOfFile: raw, encoding: .utf8).split(separator: "\n").map { $0.split(separator: "\t") }
        // The last run (pipeping_8), one row per iteration: ns, task-clock ns, context switches, minor faults.
        #expect(rows.count == 50 && rows.allSatisfy { $0.count == 4 }, "\(rows)")
        #expect(rows.allSatisfy { Int($0[0])! > 0 && Int($0[1])! > 0 }, "\(rows)")
        // A round trip usually blocks in read until the peer answers (a context switch);
        // on two CPUs the answer is sometimes there first.
        #expect(rows.filter { Int($0[2])! >= 1 }.count >= rows.count / 2, "round trips that blocked for the peer: \(rows)")
    }

    @Test func traceMarkers() throws {
        let r = try Tools.run(["syscall_timing", "-t", "-i", "10", "-l", "1", "getppid"])
        if access("/sys/kernel/tracing/trace_marker", F_OK) != 0 && access("/sys/kernel/debug/tracing/trace_marker", F_OK) != 0 {
            #expect(r.status == 1 && r.stderr == "syscall_timing: -t: tracefs is not mounted (mount -t tracefs nodev /sys/kernel/tracing)\n",
                    "\(r.stderr)")
        } else {
            #expect(r.status == 0 && r.stderr.isEmpty, "tracefs is mounted here: \(r.stderr)")
        }
        // With tracefs (mounted in a mount namespace of our own, unless the machine has it
        // mounted already: perf does that): a start and a stop marker per run.
        let u = try Tools.run(["unshare", "-m", "sh", "-c", """
            [ -e /sys/kernel/tracing/trace_marker ] || mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || exit 77
            syscall_timing -t -i 10 -l 2 getppid >/dev/null & pid=$!
            wait $pid || exit 1
            # Only this run's markers: the buffer is the machine's, and other tests write to it.
            grep -c -- "-$pid *\\[.*syscall_timing: st[a-z]* getppid$" /sys/kernel/tracing/trace
            """])
        // 77: tracefs could not be mounted; only acceptable where the kernel has no tracefs
        // or this process may not mount (no CAP_SYS_ADMIN, bit 21 of CapEff).
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let capEff = status.split(separator: "\n").first { $0.hasPrefix("CapEff:") }.flatMap { UInt64($0.dropFirst(7).trimmingCharacters(in: .whitespaces), radix: 16) } ?? 0
        let canMount = ((try? String(contentsOfFile: "/proc/filesystems", encoding: .utf8)) ?? "").contains("\ttracefs\n")
            && capEff & (1 << 21) != 0
        #expect(u.status != 77 || !canMount, "tracefs exists and we may mount, but it could not be mounted: \(u.stderr)")
        if u.status != 77 {
            #expect(u.status == 0 && u.stdout == "6\n", "warm-up and two runs, each marked: \(u.stdout) \(u.stderr)")
        }
    }

    /// The path tests: on -p's file, or on a temporary file removed at the end.
    @Test func pathTests() throws {
        let temporary = { (try? FileManager.default.contentsOfDirectory(atPath: "/tmp"))?.filter { $0.hasPrefix("syscall_timing.") }.count ?? 0 }
        let before = temporary()
        let names = ["access", "lstat", "readlink", "open_close", "open_read_close_1000", "read_1000000", "create_unlink"]
        var r = try Tools.run(["syscall_timing", "-i", "3", "-l", "1"] + names)
        #expect(r.status == 0 && r.stderr.isEmpty, "\(r.stderr)")
        Self.expectRan(names, in: r.stdout)
        #expect(temporary() == before, "the temporary directory is removed")
        let file = NSTemporaryDirectory() + "syscall-timing-p-\(getpid())"
        FileManager.default.createFile(atPath: file, contents: Data(repeating: 1, count: 4096))
        defer { unlink(file) }
        r = try Tools.run(["syscall_timing", "-p", file, "-i", "3", "-l", "1", "access", "read_1000"])
        #expect(r.status == 0 && r.stderr.isEmpty, "\(r.stderr)")
        Self.expectRan(["access", "read_1000"], in: r.stdout)
        r = try Tools.run(["syscall_timing", "-p", "/nonexistent/file", "-i", "3", "access"])
        #expect(r.status == 255 && r.stderr == "syscall_timing: test_access: /nonexistent/file: No such file or directory\n", "\(r.stderr)")
    }

    @Test func everyTestWithoutATargetRuns() throws {
        let all = try Self.listedTests()
        #expect(all.count > 90, "\(all)")
        var names = all.filter { !$0.hasPrefix("coping") }
        if geteuid() != 0 { names.removeAll { $0 == "chroot" } }
        let r = try Tools.run(["syscall_timing", "-i", "3", "-l", "1", "-s", "5"] + names, timeout: 240)
        #expect(r.status == 0 && r.stderr.isEmpty, "\(r.stderr)")
        Self.expectRan(names, in: r.stdout)
    }

    /// syscall_timing_pong (echo) and syscall_timing_pong -y in one address
    /// space, syscall_timing joined to it.
    @Test func everyCopingTestRunsByName() throws {
        let echo = try Background([Tools.path("syscall_timing_pong"), "-v", "st-echo"])
        defer { echo.terminate(); _ = echo.wait() }
        let line = try echo.waitFor { $0.hasPrefix("syscall_timing_pong: st-echo: coregistered, pid ") }
        let pid = String(line.split(separator: " ").last!)
        let sys = try Background([Run.colo, "--join", pid, Tools.path("syscall_timing_pong"), "-v", "-y", "st-sys"])
        defer { sys.terminate(); _ = sys.wait() }
        _ = try sys.waitFor { $0.hasPrefix("syscall_timing_pong: st-sys: coregistered, pid ") }

        let names = try Self.listedTests().filter { $0.hasPrefix("coping") }
        #expect(names.count == 21, "\(names)")
        let plain = names.filter { !$0.hasPrefix("coping_syscall") }, syscall = names.filter { $0.hasPrefix("coping_syscall") }
        let timing = Tools.path("syscall_timing")
        var r = try Run.colo(["--join", pid, timing, "-n", "st-echo", "-i", "3", "-l", "2"] + plain, timeout: 120)
        #expect(r.status == 0 && r.stderr.isEmpty, "\(r.stderr)")
        Self.expectRan(plain, in: r.stdout, loops: 2)
        r = try Run.colo(["--join", pid, timing, "-n", "st-sys", "-i", "3", "-l", "1"] + syscall, timeout: 120)
        #expect(r.status == 0 && r.stderr.isEmpty, "\(r.stderr)")
        Self.expectRan(syscall, in: r.stdout)

        // An echoing callee is no system-call callee.
        r = try Run.colo(["--join", pid, timing, "-n", "st-echo", "-i", "3", "coping_syscall_8"])
        #expect(r.status == 1 && r.stderr == "syscall_timing: test coping_syscall_8: st-echo does not make a system call "
                + "per call (start it as syscall_timing_pong -y)\n", "\(r.stderr)")
        // The name lives in that address space only.
        r = try Tools.run(["syscall_timing", "-n", "st-echo", "-i", "3", "coping_8"])
        #expect(r.status == 1 && r.stderr.hasSuffix("syscall_timing: colookup: No such process\n"), "\(r.stderr)")
    }

    /// CheriBSD's generation 3: -n is an index into the capability vector (clocks puts itself at 8).
    @Test func copingThroughTheCapabilityVector() throws {
        let r = try Tools.run(["clocks", "syscall_timing", "-n", "8", "-i", "3", "-l", "2", "coping_80", "coping_slow_80"])
        Self.expectRan(["coping_80", "coping_slow_80"], in: r.stdout, loops: 2)
    }

    @Test func copingWithCopong() throws {
        let pong = try Background([Tools.path("syscall_timing_pong"), "-v", "holder"])
        defer { pong.terminate(); _ = pong.wait() }
        let pid = String(try pong.waitFor { $0.contains("coregistered") }.split(separator: " ").last!)
        let copong = try Background([Run.colo, "--join", pid, Tools.path("copong"), "meh"])
        defer { copong.terminate(); _ = copong.wait() }
        usleep(300_000)
        let r = try Run.colo(["--join", pid, Tools.path("syscall_timing"), "-n", "meh", "-i", "3", "-l", "1", "coping_8", "coping_8000000"])
        #expect(r.status == 0 && r.stderr.isEmpty, "\(r.stderr)")
        Self.expectRan(["coping_8", "coping_8000000"], in: r.stdout)
    }

    @Test func pongUsageAndErrors() throws {
        let usage = usageText(["syscall_timing_pong [-kvy] [-b bytes] service-name"])
        var r = try Tools.run(["syscall_timing_pong"])
        #expect(r.status == 0 && r.stderr == usage, "\(r.stderr)")
        r = try Tools.run(["syscall_timing_pong", "a", "b"])
        #expect(r.status == 0 && r.stderr == usage, "\(r.stderr)")
        r = try Tools.run(["syscall_timing_pong", "-q", "a"])
        #expect(r.status == 0 && r.stderr == "syscall_timing_pong: illegal option -- q\n" + usage, "\(r.stderr)")
        for b in ["0", "12", "x", "-8"] {
            r = try Tools.run(["syscall_timing_pong", "-b", b, "a"])
            #expect(r.status == 1 && r.stderr == "syscall_timing_pong: argument to -b must be a positive multiple of 8\n", "\(b): \(r.stderr)")
        }
    }
}
