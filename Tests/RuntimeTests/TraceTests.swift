// colo trace: system calls of colocated processes, with the SIGSYS handler's own calls folded into the calls they implement; exec in place, signals, ...
import Foundation
import Glibc
import Testing
@testable import Runtime

/// colo trace: system calls of colocated processes, with the SIGSYS handler's own
/// calls folded into the calls they implement; exec in place, signals, exits; attach
/// and detach; --json.
@Suite(.serialized) struct TraceTests {
    static func guest() throws -> String { try Guests.build("trace_guest", .staticGlibc) }

    func tempFile(_ tag: String) -> String { NSTemporaryDirectory() + "colo-trace-\(tag)-\(getpid()).out" }

    /// The trace of `trace_guest steps`: the lines, and the guest's PID.
    func traceSteps(_ extra: [String] = []) throws -> (lines: [String], pid: String, result: Run.Result) {
        let out = tempFile("steps\(extra.count)")
        defer { unlink(out) }
        let g = try Self.guest()
        let r = try Run.colo(["trace", "-o", out] + extra + ["--", g, "steps"])
        let pid = values(r.stdout)["pid"] ?? "?"
        let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        return (text.split(separator: "\n").map(String.init), pid, r)
    }

    @Test func getpidOpenExecSegvInOrder() throws {
        let (lines, pid, r) = try traceSteps()
        let g = try Self.guest()
        #expect(r.status == 128 + SIGSEGV)
        #expect(values(r.stdout)["open"] == "-1")
        let ok = inOrder(lines, [
            { $0 == "\(pid) getpid() = \(pid)" },
            { $0.hasPrefix("\(pid) openat(AT_FDCWD, \"/nonexistent/colo-trace-missing\", ")
                && $0.hasSuffix(" = -1 ENOENT (No such file or directory)") },
            { $0.hasPrefix("\(pid) execve(\"\(g)\", [\"\(g)\", \"segv\"], ") && $0.hasSuffix(") = 0") },
            { $0 == "\(pid) --- SIGSEGV ---" },
            { $0 == "\(pid) +++ killed by SIGSEGV +++" },
        ])
        #expect(ok, "trace:\n\(lines.joined(separator: "\n"))")
        // The SIGSYS handler's calls are folded: no SIGSYS, no rt_sigreturn of the handler,
        // and the emulated brk shows its result.
        #expect(!lines.contains { $0.contains("SIGSYS") || $0.contains("rt_sigreturn") })
        #expect(lines.contains { $0.hasPrefix("\(pid) brk(0) = 0x") })
        // Only the guest is shown: not the runtime.
        #expect(lines.allSatisfy { $0.hasPrefix(pid + " ") })
    }

    @Test func filtersByNameAndPid() throws {
        let (lines, pid, _) = try traceSteps(["-e", "getpid,openat"])
        let calls = lines.filter { !$0.contains("---") && !$0.contains("+++") }
        #expect(calls.count == 2, "\(lines)")
        #expect(calls.first == "\(pid) getpid() = \(pid)")
        #expect(lines.last == "\(pid) +++ killed by SIGSEGV +++")
        // -p of another process: the guest ran to its end, and nothing of it is shown.
        let (none, nonePID, noneRun) = try traceSteps(["-p", "1"])
        #expect(noneRun.status == 128 + SIGSEGV && Int(nonePID) != nil, "\(noneRun.stdout) \(noneRun.stderr)")
        #expect(none.isEmpty, "\(none)")
    }

    @Test func exitStatusAndExitLine() throws {
        let out = tempFile("exit")
        defer { unlink(out) }
        let r = try Run.colo(["trace", "-o", out, "--", try Self.guest(), "loop", "1"])
        #expect(r.status == 0)
        let pid = values(r.stdout)["pid"] ?? "?"
        let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        #expect(text.contains("\(pid) getppid() = "))
        #expect(text.hasSuffix("\(pid) +++ exited with 0 +++\n"), "\(text)")
    }

    @Test func jsonLinesParse() throws {
        let (lines, pid, _) = try traceSteps(["--json"])
        #expect(!lines.isEmpty)
        var objects = [[String: Any]]()
        for l in lines {
            let o = try JSONSerialization.jsonObject(with: Data(l.utf8)) as? [String: Any]
            #expect(o != nil, "\(l)")
            if let o { objects.append(o) }
        }
        #expect(objects.allSatisfy { ($0["pid"] as? Int).map(String.init) == pid && $0["event"] is String })
        let open = objects.first { $0["name"] as? String == "openat" }
        #expect(open?["errno"] as? String == "ENOENT")
        #expect(open?["result"] as? Int == -1)
        #expect((open?["args"] as? [String])?[1] == "\"/nonexistent/colo-trace-missing\"")
        let getpid = objects.first { $0["name"] as? String == "getpid" }
        #expect((getpid?["result"] as? Int).map(String.init) == pid)
        #expect(getpid?["errno"] is NSNull)
        #expect(objects.contains { $0["event"] as? String == "signal" && $0["signal"] as? String == "SIGSEGV" })
        #expect(objects.last?["event"] as? String == "killed")
    }

    @Test func attachAndDetachLeaveTheProgramRunning() throws {
        let loop = try Background([Run.colo, try Self.guest(), "loop", "60"])
        let pid = try loop.value("pid")
        let out = tempFile("attach")
        defer { unlink(out) }
        let tracer = try Spawned([Run.colo, "trace", "-a", pid, "-o", out])
        let seen = eventually(timeout: 10) {
            ((try? String(contentsOfFile: out, encoding: .utf8)) ?? "").contains("\(pid) getppid() = ")
        }
        #expect(seen)
        // A member started later by the runtime is traced too.
        let joined = try Run.colo(["--join", pid, try Self.guest(), "loop", "1"])
        #expect(joined.status == 0, "\(joined.stderr)")
        let jpid = try #require(values(joined.stdout)["pid"])
        let seenJoined = eventually(timeout: 10) {
            ((try? String(contentsOfFile: out, encoding: .utf8)) ?? "").contains("\(jpid) +++ exited with 0 +++")
        }
        #expect(seenJoined)
        #expect(((try? String(contentsOfFile: out, encoding: .utf8)) ?? "").contains("\(jpid) getppid() = "))
        kill(tracer.pid, SIGINT)
        #expect(tracer.wait(timeout: 10) == 0)
        // Detached: no tracer any more, and the loop finishes normally.
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        #expect(status.contains("TracerPid:\t0"), "\(status)")
        let rt = try #require(SpaceDirectory.space(containing: pid_t(pid)!)?.table.runtimePID)
        let rs = (try? String(contentsOfFile: "/proc/\(rt)/status", encoding: .utf8)) ?? ""
        #expect(rs.contains("TracerPid:\t0"), "\(rs)")
        try loop.waitFor(timeout: 20) { $0 == "done" }
        #expect(loop.wait(timeout: 20) == 0)
    }
}

/// Processes started by a traced process, and the colocation calls.
@Suite(.serialized) struct TraceChildrenTests {
    func trace(_ args: [String]) throws -> (lines: [String], result: Run.Result) {
        let out = NSTemporaryDirectory() + "colo-trace-children-\(getpid()).out"
        defer { unlink(out) }
        let r = try Run.colo(["trace", "-o", out, "--"] + args)
        let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        return (text.split(separator: "\n").map(String.init), r)
    }

    @Test func probeInfoGetpid() throws {
        let (lines, r) = try trace([try Guests.probe(), "info"])
        let v = values(r.stdout)
        let pid = try #require(v["pid"]), ppid = try #require(v["ppid"])
        #expect(lines.contains("\(pid) getpid() = \(pid)"), "\(lines)")
        #expect(lines.contains("\(pid) getppid() = \(ppid)"), "\(lines)")
        #expect(lines.last == "\(pid) +++ exited with 0 +++")
    }

    @Test func vforkChildIsTracedWithItsExec() throws {
        let g = try TraceTests.guest()
        let (lines, r) = try trace([try Guests.probe(), "vfork", g, "loop", "1"])
        #expect(r.status == 0)
        let v = values(r.stdout)
        let parent = try #require(v["parent"]), child = try #require(v["child"])
        #expect(lines.contains("\(parent) vfork() = \(child)"), "\(lines)")
        #expect(lines.contains { $0.hasPrefix("\(child) execve(\"\(g)\", [\"\(g)\", \"loop\", \"1\"], ") && $0.hasSuffix(" = 0") })
        #expect(lines.contains { $0.hasPrefix("\(child) getppid() = \(parent)") })
        #expect(lines.contains("\(child) +++ exited with 0 +++"))
        #expect(lines.contains { $0.hasPrefix("\(parent) wait4(\(child), ") && $0.hasSuffix(" = \(child)") })
        #expect(lines.last == "\(parent) +++ exited with 0 +++")
    }

    @Test func colocationCallsByName() throws {
        let probe = try Guests.probe()
        let (lines, r) = try trace([probe, "coexec", "0", probe, "info", "co"])
        #expect(r.status == 0)
        let pid = try #require(values(r.stdout)["pid"])
        #expect(lines.contains { $0.hasPrefix("\(pid) coexecve(0, \"\(probe)\", [\"\(probe)\", \"info\", \"co\"], ") && $0.hasSuffix(" = 0") },
                "\(lines)")
    }
}

/// Job control under colo trace: SIGSTOP stops a traced guest until SIGCONT.
@Suite(.serialized) struct TraceJobControlTests {
    func state(_ pid: String) -> String {
        let s = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
        return s.split(separator: ")").last.flatMap { $0.split(separator: " ").first.map(String.init) } ?? "?"
    }

    @Test func stopAndContinueATracedGuest() throws {
        let out = NSTemporaryDirectory() + "colo-trace-stop-\(getpid()).out"
        defer { unlink(out) }
        let traced = try Background([Run.colo, "trace", "-o", out, "--", try TraceTests.guest(), "loop", "30"])
        let pid = try traced.value("pid")
        kill(pid_t(pid)!, SIGSTOP)
        #expect(eventually(timeout: 5) { state(pid) == "T" || state(pid) == "t" })
        usleep(300_000)
        let stopped = state(pid)
        #expect(stopped == "T" || stopped == "t", "\(stopped)")
        kill(pid_t(pid)!, SIGCONT)
        try traced.waitFor(timeout: 20) { $0 == "done" }
        #expect(traced.wait(timeout: 20) == 0)
        let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        #expect(text.contains("\(pid) --- stopped by SIGSTOP ---"), "\(text)")
        #expect(text.contains("\(pid) +++ exited with 0 +++"))
    }
}

extension TraceJobControlTests {
    /// A guest's own signal handler: the signal, the interrupted pause, and the handler's
    /// rt_sigreturn (its own, so shown) around the SIGSYS-folded calls.  In process, the
    /// handler runs inside the pause, which is shown unfinished, then resumed with EINTR;
    /// with ptrace, as strace shows it, the pause is seen interrupted first.
    @Test(arguments: [false, true]) func signalToAGuestHandler(ptrace: Bool) throws {
        let out = NSTemporaryDirectory() + "colo-trace-usr1-\(getpid()).out"
        defer { unlink(out) }
        let traced = try Background([Run.colo, "trace", "-o", out] + (ptrace ? ["--ptrace"] : []) + ["--", try Guests.probe(.dynamicGlibc), "handler"])
        let pid = try traced.value("pid")
        try traced.waitFor { $0 == "ready" }
        #expect(eventually(timeout: 5) { ((try? String(contentsOfFile: out, encoding: .utf8)) ?? "").contains("\(pid) write(1, ") })
        usleep(100_000)
        kill(pid_t(pid)!, SIGUSR1)
        try traced.waitFor { $0 == "handled=1" }
        #expect(traced.wait() == 0)
        let lines = ((try? String(contentsOfFile: out, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        let i = try #require(lines.firstIndex(of: "\(pid) --- SIGUSR1 ---"), "\(lines)")
        try #require(i > 0 && i + 2 < lines.count, "\(lines)")
        if ptrace {
            #expect(lines[i - 1] == "\(pid) pause() = ? ERESTARTNOHAND (To be restarted if no handler)")
            #expect(lines[i + 1] == "\(pid) rt_sigreturn() = -1 EINTR (Interrupted system call)")
        } else {
            #expect(lines[i - 1] == "\(pid) pause( <unfinished ...>")
            #expect(lines[i + 1] == "\(pid) rt_sigreturn() = -1 EINTR (Interrupted system call)")
            #expect(lines[i + 2] == "\(pid) <... pause resumed>) = -1 EINTR (Interrupted system call)")
        }
        #expect(lines.contains { $0.hasPrefix("\(pid) mmap(0, ") && $0.contains(", -1, 0) = 0x") })
        #expect(!lines.contains { $0.contains("SIGSYS") })
    }
}

/// colo trace's usage errors and help.
@Suite struct TraceUsageTests {
    @Test func usageErrorsAndHelp() throws {
        let none = try Run.colo(["trace"])
        #expect(none.status == 2 && none.stderr.contains("no command given"))
        let missing = try Run.colo(["trace", "-o", "/dev/null", "--", "/nonexistent/colo-trace"])
        #expect(missing.status == 127)
        let notColocated = try Run.colo(["trace", "-a", "1"])
        #expect(notColocated.status == 1 && notColocated.stderr.contains("not in an address space"))
        let help = try Run.colo(["trace", "--help"])
        #expect(help.status == 0 && help.stdout.contains("--json"))
    }
}
