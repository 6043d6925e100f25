// exec in place, vfork and posix_spawn.
import Foundation
import Glibc
import Testing
@testable import Runtime

/// exec in place, vfork and posix_spawn: programs started by colocated
/// programs stay colocated, each with its own PID and slot.
@Suite(.serialized) struct ExecTests {
    /// Is this slot number (address >> 36) inside the slot region?
    func colocated(_ slot: String?) -> Bool {
        guard let s = slot, let n = UInt64(s, radix: 16) else { return false }
        return n >= Layout.regionBase >> 36 && n < Layout.regionEnd >> 36
    }

    @Test(arguments: Guests.Variant.allCases)
    func execInPlaceKeepsThePID(_ variant: Guests.Variant) throws {
        let from = try Guests.probe(.staticGlibc), to = try Guests.probe(variant)
        let r = try Run.colo([from, "exec", to, "info", "after"])
        #expect(r.status == 0, "\(r.stderr)")
        let pids = r.stdout.split(separator: "\n").filter { $0.hasPrefix("pid=") }
        #expect(pids.count == 2 && pids[0] == pids[1], "same PID before and after: \(pids)")
        let v = values(r.stdout)
        #expect(v["arg2"] == "after")
        #expect(colocated(v["slot"]), "the new program is colocated")
        #expect(v["AT_EXECFN"] == to)
    }

    @Test func execKeepsWhatExecveKeeps() throws {
        let r = try Run.colo([try Guests.probe(), "execstate", try Guests.probe(.dynamicGlibc), "state"])
        let v = values(r.stdout)
        #expect(v["usr1_default"] == "1", "handled signals are reset")
        #expect(v["usr2_ignored"] == "1", "ignored signals stay ignored")
        #expect(v["hup_blocked"] == "1", "the signal mask is kept")
        #expect(v["keep_open"] == "1" && v["drop_open"] == "0", "close-on-exec descriptors are closed, others kept")
        #expect(colocated(v["slot"]))
    }

    @Test func execErrorsAreExecves() throws {
        let (text, noexec) = try execErrorFiles("")
        let loop = Guests.buildDir + "/loop-\(getpid())"
        unlink(loop)
        symlink(loop, loop)
        let long = "/" + String(repeating: "x", count: 300)
        for (path, expected) in [("/nonexistent/x", "ENOENT"), (text, "ENOEXEC"), (noexec, "EACCES"),
                                 ("/tmp", "EACCES"), (text + "/x", "ENOTDIR"), (loop, "ELOOP"), (long, "ENAMETOOLONG")] {
            let r = try Run.colo([try Guests.probe(), "exec", path])
            #expect(values(r.stdout)["exec"] == expected, "exec \(path): \(r.stdout)")
            #expect(r.status == 1, "the caller survives a failed exec")
        }
    }

    @Test func scriptsAreColocated() throws {
        let script = Guests.buildDir + "/probe-script"
        try "#!\(try Guests.probe(.dynamicGlibc)) info\n".write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        let r = try Run.colo([try Guests.probe(), "exec", script, "arg"])
        let v = values(r.stdout)
        #expect(colocated(v["slot"]), "\(r.stdout) \(r.stderr)")
        #expect(v["arg2"] == script, "the interpreter gets the script as its argument")
    }

    @Test func nonPIEFallsBackToARealExecve() throws {
        let src = Guests.sourceDir.appendingPathComponent("probe.c").path
        let bin = Guests.buildDir + "/probe-nopie-exec"
        try #require(try Run.capture(["cc", "-O1", "-no-pie", src, "-o", bin]).status == 0)
        let r = try Run.colo([try Guests.probe(), "exec", bin, "info"])
        #expect(r.status == 0)
        let pids = r.stdout.split(separator: "\n").filter { $0.hasPrefix("pid=") }
        #expect(pids.count == 2 && pids[0] == pids[1], "a real execve keeps the PID too")
        #expect(!colocated(values(r.stdout)["slot"]), "but the program is not colocated")
    }

    @Test(arguments: ["vfork", "spawn"])
    func childrenExecIntoTheirOwnSlot(_ how: String) throws {
        let r = try Run.colo([try Guests.probe(), how, try Guests.probe(.dynamicGlibc), "info", "child"])
        #expect(r.status == 0, "\(r.stderr)")
        let v = values(r.stdout)
        let child = try #require(v["child"])
        #expect(v["pid"] == child, "the child keeps its PID through the exec")
        #expect(v["ppid"] == v["parent"])
        #expect(v["child_status"] == "0", "the parent reaps it")
        #expect(colocated(v["slot"]) && v["slot"] != nil)
        let parentSlot = r.stdout.split(separator: "\n").first { $0.hasPrefix("slot=") }
        #expect(parentSlot == "slot=\(v["slot"]!)", "only the child printed a slot")
    }

    @Test func posixSpawnReportsTheExecError() throws {
        let r = try Run.colo([try Guests.probe(), "spawn", "/nonexistent/program"])
        #expect(values(r.stdout)["spawn"] == "ENOENT", "\(r.stdout) \(r.stderr)")
        let v = try Run.colo([try Guests.probe(), "vfork", "/nonexistent/program"])
        #expect(values(v.stdout)["child_status"] == "127", "the vfork child's _exit(127) releases the parent")
    }

    @Test func theVectorIsInheritedAcrossExecUnlessTheKnobSaysNo() throws {
        let probe = try Guests.probe(), dyn = try Guests.probe(.dynamicGlibc)
        let on = try Run.colo([probe, "coexecvec", "3", "0", probe, "exec", dyn, "info"])
        #expect(values(on.stdout)["AT_CAPC"] == "3", "kern.opportunistic_capv=1: the vector follows exec")
        let h = try Background([Run.colo, probe, "hold"])
        let pid = pid_t(try h.value("pid"))!
        #expect(try Run.colo(["sysctl", "--pid", String(pid), "kern.opportunistic_capv=0"]).status == 0)
        let off = try Run.colo(["--join", String(pid), probe, "coexecvec", "3", "0", probe, "exec", dyn, "info"])
        #expect(values(off.stdout)["AT_CAPC"] == "0", "kern.opportunistic_capv=0: it does not")
        kill(pid, SIGUSR1)
        #expect(h.wait() == 0)
    }

    @Test func runtimeDeathTakesAShellsChildrenToo() throws {
        let shell = try Background([Run.colo, "/bin/sh", "-c", "\(try Guests.probe()) sleep 60"])
        let child = pid_t(try shell.value("pid"))!
        #expect(!isGone(child))
        kill(shell.pid, SIGKILL)                     // the runtime
        #expect(eventually { isGone(child) }, "the shell's exec'd child dies with the shell")
    }

    @Test(arguments: ["vfork", "spawn"])
    func theParentResumesBeforeTheChildExits(_ how: String) throws {
        let bg = try Background([Run.colo, try Guests.probe(), how, try Guests.probe(.dynamicGlibc), "sleep", "3"])
        let started = Date()
        let child = pid_t(try bg.value("child"))!
        #expect(Date().timeIntervalSince(started) < 2.5, "the parent got the child's PID while the child still sleeps")
        #expect(!isGone(child))
        #expect(try bg.value("child_status") == "0")
        #expect(bg.wait() == 0)
    }

    @Test func execedChildrenShareTheVmaddrAndReleaseTheirSlot() throws {
        let holder = try Background([Run.colo, try Guests.probe(), "vfork", try Guests.probe(), "sleep", "30"])
        let child = pid_t(try holder.value("child"))!
        try holder.waitFor { $0 == "ready" }
        let parent = pid_t(try holder.value("parent"))!
        #expect(shareAddressSpace(child, parent))
        let ps = try Run.colo(["ps", String(parent)])
        let rows = ps.stdout.split(separator: "\n").filter { $0.contains(" \(child) ") || $0.contains(" \(parent) ") }
        #expect(rows.count == 2, "ps lists the parent and the exec'd child: \(ps.stdout)")
        // ps prints its address space's VMADDR on every row: what counts is that both are
        // listed (above) and that every process it lists shares the parent's mm.
        let listed = ps.stdout.split(separator: "\n").dropFirst().filter { !$0.hasSuffix("[colo runtime]") }
            .compactMap { pid_t($0.split(separator: " ", omittingEmptySubsequences: true)[1]) }
        #expect(listed.count >= 2 && listed.allSatisfy { shareAddressSpace($0, parent) }, "\(ps.stdout)")
        #expect(rows.contains { $0.hasSuffix("sleep 30") }, "the child's command line is its own")
        kill(child, SIGKILL)
        #expect(try holder.value("child_status") == String(128 + SIGKILL))
        #expect(holder.wait() == 0)
    }

    @Test func dashRunsSimpleCommandsColocated() throws {
        let probe = try Guests.probe()
        let r = try Run.colo(["/bin/sh", "-c", "\(probe) info; \(probe) exit 3; echo status=$?"])
        let v = values(r.stdout)
        #expect(colocated(v["slot"]), "a simple command of a colocated dash is colocated")
        #expect(v["status"] == "3")
        #expect(try Run.colo(["/bin/sh", "-c", "exit 3"]).status == 3)
    }

    @Test func opportunisticColocationCanBeTurnedOff() throws {
        let h = try Background([Run.colo, try Guests.probe(), "hold"])
        let pid = pid_t(try h.value("pid"))!
        #expect(try Run.colo(["sysctl", "--pid", String(pid), "kern.opportunistic_coexecve=0"]).status == 0)
        let off = try Run.colo(["--join", String(pid), try Guests.probe(), "exec", try Guests.probe(.dynamicGlibc), "info"])
        let v = values(off.stdout)
        let pids = off.stdout.split(separator: "\n").filter { $0.hasPrefix("pid=") }
        #expect(off.status == 0 && pids.count == 2 && pids[0] == pids[1], "the program ran, with the PID kept: \(off.stdout) \(off.stderr)")
        #expect(v["slot"] != nil && !colocated(v["slot"]), "with the knob off, exec is a real execve: \(off.stdout)")
        #expect(colocated(values(try Run.colo(["--join", String(pid), try Guests.probe(), "info"]).stdout)["slot"]),
                "the joined program itself is colocated")
        let show = try Run.colo(["sysctl", "--pid", String(pid), "kern.opportunistic_coexecve"])
        #expect(show.stdout == "kern.opportunistic_coexecve: 0\n")
        kill(pid, SIGUSR1)
        #expect(h.wait() == 0)
    }
}
