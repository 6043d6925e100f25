// colo trace's in-process tracing (the default).
import Foundation
import Glibc
import Runtime
import Testing

/// colo trace's in-process tracing (the default): threads, signals, fork and exec,
/// switcher calls, attaching and detaching, and a tracer that dies.
@Suite(.serialized) struct TraceInProcessTests {
    func tempFile(_ tag: String) -> String { NSTemporaryDirectory() + "colo-trace-ip-\(tag)-\(getpid()).out" }

    func lines(_ path: String) -> [String] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// Four callers and a callee thread of one process, SIGUSR1 hitting them all: the
    /// calls come out as untraced, and each new thread's calls are shown with its tid.
    @Test func threadsSignalsAndSwitcherCalls() throws {
        let out = tempFile("storm")
        defer { unlink(out) }
        let r = try Run.colo(["trace", "-o", out, "--", try Guests.buildWithAPI("kernel_probe"), "signal_storm"], timeout: 120)
        #expect(r.status == 0, "\(r.stderr)")
        let v = values(r.stdout)
        #expect(v["ok"] == "12000" && v["other"] == "0", "\(r.stdout)")
        let trace = lines(out)
        let threads = trace.compactMap { l -> String? in
            guard l.contains(" clone("), let eq = l.range(of: " = ") else { return nil }
            return String(l[eq.upperBound...])
        }
        #expect(threads.count == 5, "\(threads)")
        for tid in threads { #expect(trace.contains { $0.hasPrefix("\(tid) ") && !$0.contains(" clone(") }, "thread \(tid)") }
        #expect(trace.contains { $0.contains("--- SIGUSR1 ---") })
        #expect(trace.contains { $0.contains(" cocall(fast) -> ") })
        #expect(!trace.contains { $0.contains("SIGSYS") })
    }

    /// The errno matrix of the kernel calls is the same traced and untraced.
    @Test func errnosTracedAsUntraced() throws {
        let probe = try Guests.buildWithAPI("kernel_probe")
        let plain = try Run.colo([probe, "errnos"], timeout: 120)
        let traced = try Run.colo(["trace", "-o", "/dev/null", "--", probe, "errnos"], timeout: 120)
        #expect(plain.status == 0 && traced.status == 0, "\(traced.stderr)")
        // Capability values are random, and threads print in either order; every other
        // value must agree.
        let keep = { (s: String) in values(s).filter { !$0.key.hasSuffix("_text") && $0.key != "pid" } }
        #expect(keep(plain.stdout) == keep(traced.stdout))
        #expect(keep(traced.stdout).count > 40)
    }

    /// A shell's command substitution and pipeline: forked children that exec come back
    /// into the address space (re-colocation); their execs and exits are shown.
    @Test func shellForkAndExec() throws {
        let out = tempFile("sh")
        defer { unlink(out) }
        let r = try Run.colo(["trace", "-o", out, "--", "/bin/sh", "-c", "echo $(echo sub) | cat; echo done"])
        #expect(r.status == 0)
        #expect(r.stdout == "sub\ndone\n", "\(r.stdout)")
        let trace = lines(out)
        let cat = trace.first { $0.contains(" execve(\"/usr/bin/cat\", [\"cat\"], ") && $0.hasSuffix(" = 0") }
        let catPID = try #require(cat?.split(separator: " ").first.map(String.init), "\(trace)")
        #expect(trace.contains("\(catPID) +++ exited with 0 +++"))
        #expect(trace.contains { $0.hasPrefix("\(catPID) read(0, ") })
        // The shell (the first process traced) ends the trace of its own calls with its exit.
        // (Other processes' last records may be written after it under load.)
        let shPID = try #require(trace.first?.split(separator: " ").first.map(String.init))
        let shExit = trace.lastIndex(of: "\(shPID) +++ exited with 0 +++")
        #expect(shExit != nil && !trace[(shExit ?? 0) + 1 ..< trace.count].contains { $0.hasPrefix("\(shPID) ") },
                "the shell's exit closes its calls: \(trace.suffix(6))")
    }

    /// The trace ring of a runtime that died without shutting down is removed with its
    /// table the next time the address spaces are listed.
    @Test func aDeadRuntimesTraceRingIsRemoved() throws {
        try? FileManager.default.createDirectory(atPath: SpaceDirectory.path, withIntermediateDirectories: true)
        // A PID that has no process: above the kernel's pid_max.
        let max = Int32((readFile("/proc/sys/kernel/pid_max") ?? "4194304").split(separator: "\n").first ?? "") ?? 4_194_304
        let stale = SpaceDirectory.path + "/\(max + 1).space.trace"
        #expect(FileManager.default.createFile(atPath: stale, contents: Data("x".utf8)))
        _ = SpaceDirectory.spaces()
        #expect(!FileManager.default.fileExists(atPath: stale))
    }

    /// A thread blocked in a call shows it as unfinished, before the call returns; the
    /// attached tracer sees the call that was in progress when it attached.
    @Test func aBlockedCallShowsUnfinished() throws {
        let paused = try Background([Run.colo, try Guests.buildWithAPI("kernel_probe"), "pause"])
        let pid = try paused.value("pid")
        try paused.waitFor { $0 == "paused" }
        let out = tempFile("blocked")
        defer { unlink(out) }
        let tracer = try Spawned([Run.colo, "trace", "-a", pid, "-o", out])
        #expect(eventually(timeout: 10) { lines(out).contains("\(pid) pause( <unfinished ...>") }, "\(lines(out))")
        kill(tracer.pid, SIGINT)
        #expect(tracer.wait(timeout: 20) == 0)
        kill(pid_t(pid)!, SIGTERM)
        #expect(paused.wait(timeout: 20) == 128 + SIGTERM)
    }

    /// A tracer killed with SIGKILL: once the ring is full and its reader gone, the
    /// threads stop trapping and the program runs on to its end.
    @Test func aKilledTracerLeavesTheProgramRunning() throws {
        let loop = try Guests.build("syscall_loop", .staticGlibc)
        let traced = try Background([Run.colo, "trace", "-o", "/dev/null", "--", loop, "300000", "3"])
        usleep(300_000)
        kill(traced.pid, SIGKILL)
        _ = traced.wait(timeout: 5)
        // The runtime and the loop (children of the dead tracer) run on to the end, on
        // the pipe the tracer shared with them.
        let done = try traced.waitFor(timeout: 60) { $0.hasPrefix("getppid_ns=") }
        #expect(Double(done.dropFirst("getppid_ns=".count)).map { $0 > 0 } == true, "\(done)")
        #expect(eventually(timeout: 30) { !SpaceDirectory.spaces().contains { $0.members.contains { $0.argv.contains("300000") } } })
    }

    /// Attaching to a service with several accepting threads and detaching again: the
    /// calls of a client that joins meanwhile are traced, the service threads are
    /// released (the trace selector is off), and it serves an untraced client after.
    @Test func attachToThreadsAndDetach() throws {
        let svc = try KernelService(name: "trace-ip-svc", acceptors: 3)
        let out = tempFile("attach")
        defer { unlink(out) }
        let tracer = try Spawned([Run.colo, "trace", "-a", String(svc.pid), "-o", out])
        #expect(eventually(timeout: 10) {
            SpaceDirectory.space(containing: svc.pid).map { $0.table.traceSelector == 1 } == true
        })
        let traced = try svc.join(["client", "trace-ip-svc", "2", "500", "64", "3"])
        #expect(values(traced.stdout)["ok"] == "1000", "\(traced.stdout) \(traced.stderr)")
        // The client's process: the one that looked the service up (the tracer writes
        // what it has read in batches, so wait for it).
        var client: String?
        #expect(eventually(timeout: 10) {
            client = lines(out).first { $0.contains(" colookup(") }?.split(separator: " ").first.map(String.init)
            return client != nil
        })
        let clientPID = try #require(client, "\(lines(out).suffix(20))")
        #expect(eventually(timeout: 10) { lines(out).contains { $0.hasPrefix("\(clientPID) ") && $0.contains(" cocall(fast) -> \(svc.pid)") } },
                "\(lines(out).suffix(20))")
        kill(tracer.pid, SIGINT)
        #expect(tracer.wait(timeout: 20) == 0)
        #expect(SpaceDirectory.space(containing: svc.pid)?.table.traceSelector == 0)
        let status = (try? String(contentsOfFile: "/proc/\(svc.pid)/status", encoding: .utf8)) ?? ""
        #expect(status.contains("TracerPid:\t0"))
        let after = try svc.join(["client", "trace-ip-svc", "2", "500", "64", "3"])
        #expect(values(after.stdout)["ok"] == "1000", "\(after.stdout)")
    }
}
