// The switcher's event log: fast cocalls in `colo trace` (in order with the ptrace lines, with -e/-p filters and --json), the debug.colocation_debug ...
import Foundation
import Glibc
import Testing
@testable import Runtime

/// The switcher's event log: fast cocalls in `colo trace` (in order with the ptrace
/// lines, with -e/-p filters and --json), the debug.colocation_debug knob and
/// `colo switcher-log`, and a tracer that turns the log off when it detaches.
@Suite(.serialized) struct SwitcherTraceTests {
    static func guest() throws -> String { try Guests.buildWithAPI("trace_coguest") }

    func tempFile(_ tag: String) -> String { NSTemporaryDirectory() + "colo-swtrace-\(tag)-\(getpid()).out" }

    /// `colo trace [extra] -- trace_coguest steps`: the lines, the guest's and the service's PIDs.
    func traceSteps(_ extra: [String] = []) throws -> (lines: [String], pid: String, service: String, result: Run.Result) {
        let out = tempFile("steps\(extra.count)")
        defer { unlink(out) }
        let r = try Run.colo(["trace", "-o", out] + extra + ["--", try Self.guest(), "steps"])
        let v = values(r.stdout)
        let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        return (text.split(separator: "\n").map(String.init), v["pid"] ?? "?", v["service"] ?? "?", r)
    }

    /// A duration in strace's -T format: <seconds with nine decimals>.
    func hasDuration(_ line: String) -> Bool {
        line.range(of: #" <[0-9]+\.[0-9]{9}>$"#, options: .regularExpression) != nil
    }

    /// Issue 8's test: getpid, an open of a missing file, a 24-byte cocall, an exec in
    /// place and a SIGSEGV, each in order with the right PID; and the unborrow of the
    /// second call, whose callee makes a system call on its own thread.
    @Test func fastCallsInOrderWithTheOtherCalls() throws {
        let (lines, pid, svc, r) = try traceSteps()
        let g = try Self.guest()
        #expect(r.status == 128 + SIGSEGV, "\(r.stdout) \(r.stderr)")
        #expect(values(r.stdout)["cocall"] == "16" && values(r.stdout)["cocall_syscall"] == "16", "\(r.stdout)")
        let ok = inOrder(lines, [
            { $0 == "\(pid) getpid() = \(pid)" },
            { $0.hasPrefix("\(pid) openat(AT_FDCWD, \"/nonexistent/colo-trace-missing\", ")
                && $0.hasSuffix(" = -1 ENOENT (No such file or directory)") },
            { $0.hasPrefix("\(pid) colookup(") && $0.hasSuffix(" = 0") },
            { $0.hasPrefix("\(pid) cocall(fast) -> \(svc) op 8 out 24 in 16 = 16 <") && self.hasDuration($0) },
            { $0 == "\(pid) --- unborrow -> \(svc): getpid runs on the callee's thread ---" },
            { $0 == "\(svc) getpid() = \(svc)" },
            { $0.hasPrefix("\(pid) cocall(fast) -> \(svc) op 9 out 24 in 16 = 16 <") && self.hasDuration($0) },
            { $0.hasPrefix("\(pid) execve(\"\(g)\", [\"\(g)\", \"segv\"], ") && $0.hasSuffix(") = 0") },
            { $0 == "\(pid) --- SIGSEGV ---" },
            { $0 == "\(pid) +++ killed by SIGSEGV +++" },
        ])
        #expect(ok, "trace:\n\(lines.joined(separator: "\n"))")
        // Exactly the two calls, and no SIGSYS of Syscall User Dispatch (the unborrow).
        #expect(lines.filter { $0.contains("cocall(fast)") }.count == 2, "\(lines)")
        #expect(!lines.contains { $0.contains("SIGSYS") || $0.contains("events lost") }, "\(lines)")
    }

    /// -e trace=cocall keeps the switcher's lines (and signals and exits), -e unborrow
    /// only the unborrows; -p of another process drops them.
    @Test func filters() throws {
        let (lines, pid, svc, _) = try traceSteps(["-e", "trace=cocall"])
        let calls = lines.filter { !$0.contains("+++") && !$0.contains("--- SIG") }
        #expect(calls.count == 3, "\(lines)")
        #expect(calls.allSatisfy { $0.hasPrefix("\(pid) cocall(fast) -> \(svc) ") || $0.hasPrefix("\(pid) --- unborrow") }, "\(lines)")
        let (unborrows, _, _, _) = try traceSteps(["-e", "unborrow"])
        #expect(unborrows.filter { $0.contains("unborrow") }.count == 1 && !unborrows.contains { $0.contains("cocall(fast)") }, "\(unborrows)")
        // -p of another process: the guest ran to its end (both calls made), nothing is shown.
        let (none, _, _, noneRun) = try traceSteps(["-p", "1"])
        #expect(noneRun.status == 128 + SIGSEGV && values(noneRun.stdout)["cocall"] == "16", "\(noneRun.stdout) \(noneRun.stderr)")
        #expect(none.isEmpty, "\(none)")
    }

    /// --json: the documented fields of a fast call and of an unborrow.
    @Test func jsonFields() throws {
        let (lines, pid, svc, _) = try traceSteps(["--json"])
        var objects = [[String: Any]]()
        for l in lines {
            let o = try JSONSerialization.jsonObject(with: Data(l.utf8)) as? [String: Any]
            #expect(o != nil, "\(l)")
            if let o { objects.append(o) }
        }
        let calls = objects.filter { $0["event"] as? String == "cocall" }
        #expect(calls.count == 2, "\(lines)")
        if let c = calls.first {
            #expect((c["pid"] as? Int).map(String.init) == pid)
            #expect((c["caller_pid"] as? Int).map(String.init) == pid && (c["caller_tid"] as? Int).map(String.init) == pid)
            #expect((c["callee_pid"] as? Int).map(String.init) == svc && (c["callee_tid"] as? Int).map(String.init) == svc)
            #expect(c["op"] as? Int == 8 && c["out"] as? Int == 24 && c["in"] as? Int == 16)
            #expect(c["result"] as? Int == 16 && c["errno"] is NSNull)
            #expect((c["duration"] as? Double).map { $0 > 0 && $0 < 1 } == true)
            #expect((c["time"] as? Double).map { $0 > 0 } == true)
        }
        let unborrow = objects.first { $0["event"] as? String == "unborrow" }
        #expect(unborrow?["syscall"] as? String == "getpid" && unborrow?["nr"] as? Int == 39, "\(lines)")
        #expect((unborrow?["callee_pid"] as? Int).map(String.init) == svc)
    }

    /// A fast cocall to a service that accepts with coaccept_slow falls back (EPROTOTYPE,
    /// then cocall_slow); callee code that faults on the borrowed context is handed to
    /// the callee, which dies of it, and the call fails with ENOLINK.
    @Test func fallbackAndFaultHandover() throws {
        let out = tempFile("events")
        defer { unlink(out) }
        let r = try Run.colo(["trace", "-o", out, "--", try Self.guest(), "events"])
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        let v = values(r.stdout)
        let pid = v["pid"] ?? "?", fast = v["fast"] ?? "?", slow = v["slow"] ?? "?"
        #expect(v["slowcall"] == "16" && v["crash"] == "-1" && v["errno"] == String(ENOLINK), "\(r.stdout)")
        let lines = ((try? String(contentsOfFile: out, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        let ok = inOrder(lines, [
            { $0 == "\(pid) --- fallback -> \(slow): EPROTOTYPE, the call goes through cocall_slow ---" },
            { $0.hasPrefix("\(pid) cocall_slow(") && $0.hasSuffix(", 24, 0x") == false && $0.hasSuffix(" = 16") },
            { $0 == "\(pid) --- handover -> \(fast): SIGSEGV at 0x8 in the callee's code ---" },
            { $0 == "\(fast) --- SIGSEGV ---" },
            { $0 == "\(fast) +++ killed by SIGSEGV +++" },
        ])
        #expect(ok, "trace:\n\(lines.joined(separator: "\n"))")
        // The caller's call ends at once (ENOLINK), while the callee's thread repeats the
        // faulting instruction: the two orders are both right.
        let ended = inOrder(lines, [
            { $0 == "\(pid) --- handover -> \(fast): SIGSEGV at 0x8 in the callee's code ---" },
            { $0.hasPrefix("\(pid) cocall(fast) -> \(fast) op 6 out 24 in 0 = -1 ENOLINK (") && self.hasDuration($0) },
            { $0 == "\(pid) +++ exited with 0 +++" },
        ])
        #expect(ended, "trace:\n\(lines.joined(separator: "\n"))")
        // The caller's own SIGSEGV (callee code on its thread) is the switcher's business.
        #expect(!lines.contains("\(pid) --- SIGSEGV ---"), "\(lines)")
    }

    /// The knob turns the log on and off; colo switcher-log prints it.
    @Test func knobAndSwitcherLog() throws {
        let g = try Self.guest()
        let space = try Background([Run.colo, try Guests.probe(), "sleep", "120"])
        defer { kill(space.pid, SIGTERM); _ = space.wait() }
        let spacePID = try space.value("pid")
        let name = "swlog-\(getpid())"
        let svc = try Background([Run.colo, "--join", spacePID, g, "service", name])
        defer { kill(svc.pid, SIGKILL); _ = svc.wait() }
        let svcPID = try svc.value("service_pid")
        try svc.waitFor { $0 == "ready" }

        // Off by default: calls leave nothing.
        let off = try Run.colo(["switcher-log", spacePID])
        #expect(off.status == 0 && off.stderr.contains("logging is off"), "\(off.stderr)")
        var r = try Run.colo(["--join", spacePID, g, "calls", name, "3"])
        #expect(values(r.stdout)["calls"] == "3", "\(r.stdout) \(r.stderr)")
        #expect(try Run.colo(["switcher-log", spacePID]).stdout.isEmpty)

        // On: five calls, five lines, with the caller's and the callee's PIDs.
        let on = try Run.colo(["sysctl", "--pid", spacePID, "debug.colocation_debug=1"])
        #expect(on.stdout.contains("debug.colocation_debug: 0 -> 1"), "\(on.stdout) \(on.stderr)")
        r = try Run.colo(["--join", spacePID, g, "calls", name, "5"])
        #expect(values(r.stdout)["calls"] == "5")
        let log = try Run.colo(["switcher-log", spacePID])
        #expect(log.status == 0 && !log.stderr.contains("logging is off"), "\(log.stderr)")
        let lines = log.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 5, "\(log.stdout)")
        #expect(lines.allSatisfy { $0.contains(" cocall(fast) -> \(svcPID) op 8 out 24 in 16 = 16 <") && hasDuration($0) }, "\(log.stdout)")
        let caller = lines.first.map { String($0.prefix { $0 != " " }) } ?? "?"
        #expect(caller != svcPID && caller != spacePID && Int(caller) != nil)
        let json = try Run.colo(["switcher-log", "--json", spacePID])
        let jsonLines = json.stdout.split(separator: "\n")
        #expect(json.status == 0 && jsonLines.count == 5, "the same five events: \(json.stdout) \(json.stderr)")
        #expect(jsonLines.allSatisfy { $0.hasPrefix("{\"pid\":\(caller),\"event\":\"cocall\"") }, "\(json.stdout)")

        // Off again: the ring keeps the old events, and no new ones come.
        #expect(try Run.colo(["sysctl", "--pid", spacePID, "debug.colocation_debug=0"]).status == 0)
        r = try Run.colo(["--join", spacePID, g, "calls", name, "4"])
        #expect(values(r.stdout)["calls"] == "4")
        let after = try Run.colo(["switcher-log", spacePID])
        #expect(after.stdout.split(separator: "\n").count == 5 && after.stderr.contains("logging is off"), "\(after.stdout)")
    }

    /// A caller SIGKILLed while it borrows a spinning callee's context: the runtime,
    /// retiring its SCB, logs the lost borrower.
    @Test func aBorrowerKilledIsLogged() throws {
        let s = try KernelService(name: "swlog-spinner")
        #expect(try Run.colo(["sysctl", "--pid", String(s.spacePID), "debug.colocation_debug=1"]).status == 0)
        let caller = try s.start(["spin_call", "swlog-spinner", "3000"])
        try caller.waitFor { $0 == "calling" }
        usleep(200_000)
        let cpid = try caller.value("pid")
        kill(pid_t(cpid)!, SIGKILL)
        _ = caller.wait()
        var text = ""
        #expect(eventually(timeout: 10) {
            text = (try? Run.colo(["switcher-log", String(s.spacePID)]))?.stdout ?? ""
            return text.contains("\(cpid) --- borrower_killed -> \(s.pid): its coaccept returns EINTR ---")
        }, "\(text)")
    }

    /// colo trace -a turns the log on while it traces and off when it detaches, and
    /// shows the calls of a running client.
    @Test func attachTurnsTheLogOnAndDetachOff() throws {
        let g = try Self.guest()
        let space = try Background([Run.colo, try Guests.probe(), "sleep", "120"])
        defer { kill(space.pid, SIGTERM); _ = space.wait() }
        let spacePID = try space.value("pid")
        let name = "swattach-\(getpid())"
        let svc = try Background([Run.colo, "--join", spacePID, g, "service", name])
        defer { kill(svc.pid, SIGKILL); _ = svc.wait() }
        let svcPID = try svc.value("service_pid")
        try svc.waitFor { $0 == "ready" }
        let out = tempFile("attach")
        defer { unlink(out) }
        let tracer = try Spawned([Run.colo, "trace", "-a", spacePID, "-e", "cocall", "-o", out])
        #expect(eventually(timeout: 10) { (try? Run.colo(["switcher-log", spacePID]))?.stderr.contains("logging is off") == false })
        let r = try Run.colo(["--join", spacePID, g, "calls", name, "3"])
        #expect(values(r.stdout)["calls"] == "3")
        #expect(eventually(timeout: 10) {
            ((try? String(contentsOfFile: out, encoding: .utf8)) ?? "").components(separatedBy: "cocall(fast) -> \(svcPID) op 8").count == 4
        }, "\((try? String(contentsOfFile: out, encoding: .utf8)) ?? "")")
        kill(tracer.pid, SIGINT)
        #expect(tracer.wait(timeout: 10) == 0)
        let after = try Run.colo(["switcher-log", spacePID])
        #expect(after.stderr.contains("logging is off"), "\(after.stderr)")
    }
}
