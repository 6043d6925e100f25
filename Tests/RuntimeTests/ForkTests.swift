// fork + exec: the forked child has a private copy of the mm, and its exec brings it back into the parent's address space with its PID (re-colocation).
import Foundation
import Glibc
import Testing
@testable import Runtime

/// fork + exec: the forked child has a private copy of the mm, and its exec
/// brings it back into the parent's address space with its PID (re-colocation).
@Suite(.serialized) struct ForkTests {
    func colocated(_ slot: String?) -> Bool {
        guard let s = slot, let n = UInt64(s, radix: 16) else { return false }
        return n >= Layout.regionBase >> 36 && n < Layout.regionEnd >> 36
    }

    /// The PIDs `colo ps PID` lists: the processes of PID's address space, by the table.
    func listed(_ pid: pid_t) throws -> [pid_t] {
        let ps = try Run.colo(["ps", String(pid)])
        return ps.stdout.split(separator: "\n").dropFirst().compactMap {
            let f = $0.split(separator: " ", omittingEmptySubsequences: true)
            return f.count > 9 ? pid_t(f[1]) : nil
        }
    }

    /// A fork child's copies of its slot header (brk state), capability table and SCB are the
    /// fork's, taken by the parent before it: a copy the child took after the fork raced with
    /// the parent, whose brk right after the fork left the child believing in heap pages its
    /// mm did not have (SIGSEGV in every child, pinned; syscall_timing pipeping_80000 died so).
    @Test func aForkChildKeepsItsHeapWhenTheParentMovesItsOwnFirst() throws {
        let guest = try Guests.build("fork_brk", .staticGlibc)
        let r = try Run.colo([guest, "20"])
        #expect(r.status == 0 && r.stdout == "forks=20\nchildren_ok=20\n", "\(r.stdout) \(r.stderr)")
    }

    @Test func theExecdChildIsBackInTheParentsAddressSpaceWithItsPID() throws {
        let probe = try Guests.probe()
        let bg = try Background([Run.colo, probe, "fork", try Guests.probe(.dynamicGlibc), "sleep", "30"])
        let child = pid_t(try bg.value("child"))!
        let parent = pid_t(try bg.value("parent"))!
        #expect(try bg.value("pid") == String(child), "the program runs with the forked child's PID")
        #expect(shareAddressSpace(child, parent), "in the parent's mm again")
        let rows = try listed(parent)
        #expect(rows.contains(child) && rows.contains(parent), "colo ps lists both as members: \(rows)")
        #expect(Runtime.parent(of: child) == parent, "still the parent's child")
        kill(child, SIGTERM)
        #expect(try bg.value("child_status") == String(128 + SIGTERM), "the parent reaps what became of it")
        #expect(bg.wait() == 0)
    }

    @Test(arguments: [false, true])
    func theParentSeesExactlyOneExit(_ blockSIGCHLD: Bool) throws {
        let probe = try Guests.probe()
        let env = ["/usr/bin/env"] + (blockSIGCHLD ? ["FORK_BLOCK=1"] : [])
        let r = try Run.capture(env + [Run.colo, probe, "fork", probe, "exit", "7"])
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        let v = values(r.stdout)
        #expect(v["child_status"] == "7", "waitpid gives the exec'd program's status: \(r.stdout)")
        #expect(v["sigchld"] == "1", "one SIGCHLD, not one for the old child too: \(r.stdout)")
        #expect(v["sigchld_pid"] == v["child"])
        #expect(v["after"] == "ECHILD", "nothing else to reap")
    }

    /// The same with waitid, for the child's PID and for any child: the status is the
    /// exec'd program's, never the old child's, and nothing else is reported.
    @Test(arguments: ["pid", "all"])
    func waitidDuringTheHandOverSeesOneExit(_ which: String) throws {
        let probe = try Guests.probe()
        let r = try Run.capture(["/usr/bin/env", "FORK_WAITID=\(which)", Run.colo, probe, "fork", probe, "exit", "7"])
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        let v = values(r.stdout)
        #expect(v["wait"] == nil && v["child_status"] == "7", "waitid gives the exec'd program's status: \(r.stdout)")
        #expect(v["sigchld"] == "1" && v["sigchld_pid"] == v["child"], "\(r.stdout)")
        #expect(v["after"] == "ECHILD", "nothing else to reap")
    }

    @Test func theExecdProgramIsColocatedAndKeepsThePID() throws {
        let probe = try Guests.probe()
        for variant in Guests.Variant.allCases {
            let r = try Run.colo([probe, "fork", try Guests.probe(variant), "info"])
            let v = values(r.stdout)
            #expect(colocated(v["slot"]), "\(variant): \(r.stdout) \(r.stderr)")
            #expect(v["pid"] == v["child"] && v["ppid"] == v["parent"], "\(variant): \(r.stdout)")
            #expect(v["child_status"] == "0")
        }
    }

    @Test func execErrorsReachTheForkedChild() throws {
        let (text, noexec) = try execErrorFiles("fork-")
        for (path, expected) in [("/nonexistent/x", "ENOENT"), (text, "ENOEXEC"), (noexec, "EACCES"), (text + "/x", "ENOTDIR")] {
            let r = try Run.colo([try Guests.probe(), "fork", path])
            let v = values(r.stdout)
            #expect(v["exec"] == expected, "exec \(path): \(r.stdout)")
            #expect(v["child_status"] == "1", "the child survives its failed exec")
        }
    }

    @Test func theChildKeepsWhatExecveKeeps() throws {
        let r = try Run.capture(["/usr/bin/env", "FORK_SETUP=1", "FORK_UID=65534", Run.colo, try Guests.probe(), "fork",
                                 try Guests.probe(.dynamicGlibc), "state"])
        let v = values(r.stdout)
        #expect(colocated(v["slot"]), "\(r.stdout) \(r.stderr)")
        #expect(v["pid"] == v["child"] && v["ppid"] == v["parent"])
        #expect(v["keep_open"] == "1" && v["drop_open"] == "0", "its descriptors, minus close-on-exec")
        #expect(v["cwd"] == "/tmp" && v["umask"] == "027" && v["nofile"] == "200/300")
        #expect(v["usr1_default"] == "1" && v["usr2_ignored"] == "1" && v["hup_blocked"] == "1")
        #expect(v["pgid_is_pid"] == "1", "the process group it made for itself")
        #expect(v["uid"] == "65534" && v["euid"] == "65534", "its credentials")
        #expect(v["child_status"] == "0" && v["sigchld"] == "1")
    }

    /// The commands of a shell script print their stack slot and parent; the
    /// `colo ps` in a pipeline lists itself, `cat` and the shell as members of the
    /// shell's address space; samevm (kcmp) in a pipeline and in $(...) finds the shell's mm.
    func checkShell(_ shell: String) throws {
        let probe = try Guests.probe(), samevm = try Guests.build("samevm", .staticGlibc)
        let script = "\(probe) info | cat; x=$(\(probe) info); echo \"$x\"; \(Run.colo) ps $$ | cat; "
            + "\(samevm) $$ | cat; echo \"$(\(samevm) $$)\"; \(samevm) \(getpid()); echo shell=$$"
        let r = try Run.colo([shell, "-c", script])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n")
        let slots = lines.filter { $0.hasPrefix("slot=") }.map { String($0.dropFirst(5)) }
        #expect(slots.count == 2 && slots.allSatisfy(colocated), "\(shell): the pipeline stage and $(...) are colocated: \(r.stdout)")
        let shellPID = values(r.stdout)["shell"] ?? ""
        #expect(lines.filter { $0.hasPrefix("ppid=") }.allSatisfy { $0 == "ppid=\(shellPID)" }, "the shell's children")
        let rows = lines.filter { $0.contains(" \(shellPID) ") }.map { $0.split(separator: " ", omittingEmptySubsequences: true) }
        #expect(rows.count >= 3, "shell, colo ps and cat: \(r.stdout)")
        let vm = lines.filter { $0.hasPrefix("samevm ") }.map(String.init)
        #expect(vm == ["samevm \(shellPID)=1", "samevm \(shellPID)=1", "samevm \(getpid())=0"], "kcmp(KCMP_VM) with the shell: \(r.stdout)")
        #expect(rows.contains { $0.count > 11 && $0[10].hasSuffix("colo") && $0[11] == "ps" } && rows.contains { $0.last == "cat" })
    }

    @Test func dashPipelinesAndCommandSubstitutionsAreColocated() throws { try checkShell("/bin/sh") }

    @Test func bashCommandsAreColocated() throws { try checkShell("/bin/bash") }

    @Test func withoutThePrivilegeToChoosePIDsExecIsARealOne() throws {
        let probe = try Guests.probe()
        let r = try Run.capture(["/usr/bin/setpriv", "--inh-caps=-sys_admin,-checkpoint_restore",
                                 "--bounding-set=-sys_admin,-checkpoint_restore", Run.colo, probe, "fork", probe, "info"])
        #expect(r.status == 0, "\(r.stderr)")
        let v = values(r.stdout)
        #expect(!colocated(v["slot"]), "no CAP_SYS_ADMIN/CAP_CHECKPOINT_RESTORE: a real execve: \(r.stdout)")
        #expect(v["pid"] == v["child"] && v["child_status"] == "0" && v["sigchld"] == "1")
    }

    /// Hundreds of fork + exec in a row, with and without re-colocation: the
    /// shell's SIGCHLD handler runs while the shell is inside trapped calls.
    @Test(arguments: [false, true])
    func aBashLoopRunsToTheEnd(_ fallback: Bool) throws {
        let probe = try Guests.probe()
        let script = "i=0; while [ $i -lt 300 ]; do \(probe) exit 0; i=$((i+1)); done; x=$(\(probe) info); echo \"$x\"; echo done=$i"
        let prefix = fallback ? ["/usr/bin/setpriv", "--inh-caps=-sys_admin,-checkpoint_restore",
                                 "--bounding-set=-sys_admin,-checkpoint_restore"] : []
        let r = try Run.capture(prefix + [Run.colo, "/bin/bash", "-c", script], timeout: 120)
        #expect(r.status == 0 && values(r.stdout)["done"] == "300", "\(r.stdout) \(r.stderr)")
        #expect(colocated(values(r.stdout)["slot"]) == !fallback)
    }

    @Test func aShellThatForkedStillExecsInPlace() throws {
        let probe = try Guests.probe()
        let r = try Run.colo(["/bin/sh", "-c", "x=$(\(probe) exit 0); echo shell=$$; exec \(probe) info"])
        let v = values(r.stdout)
        #expect(v["pid"] == v["shell"], "exec keeps the shell's PID: \(r.stdout)")
        #expect(colocated(v["slot"]), "in place, although the shell has a re-colocation helper thread")
    }

    @Test func aChildWithChildrenOfItsOwnExecsForReal() throws {
        let probe = try Guests.probe()
        let r = try Run.colo(["/bin/sh", "-c", "( \(probe) exit 0 & exec \(probe) info ); x=$(\(probe) info); echo \"$x\""])
        let slots = r.stdout.split(separator: "\n").filter { $0.hasPrefix("slot=") }.map { String($0.dropFirst(5)) }
        #expect(slots.count == 2 && !colocated(slots[0]), "a subshell with a background child keeps it: a real execve: \(r.stdout)")
        #expect(slots.count == 2 && colocated(slots[1]))
    }

    @Test func coexecveToTheParentFromAForkChild() throws {
        let probe = try Guests.probe()
        let r = try Run.capture(["/usr/bin/env", "FORK_COEXEC=1", Run.colo, probe, "fork", probe, "info"])
        let v = values(r.stdout)
        #expect(colocated(v["slot"]) && v["pid"] == v["child"] && v["child_status"] == "0", "\(r.stdout) \(r.stderr)")
        let vec = try Run.capture(["/usr/bin/env", "FORK_COEXEC=vec", Run.colo, probe, "fork", probe, "info"])
        #expect(values(vec.stdout)["exec"] == "EPROTO", "coexecvec with a vector after fork: \(vec.stdout)")
    }

    /// CheriBSD's coexecve_right_pid: a fork child may always colocate with itself; here that
    /// is its own exec, back into its parent's address space.
    @Test func coexecveOfAForkChildIntoItself() throws {
        let probe = try Guests.probe()
        let r = try Run.capture(["/usr/bin/env", "FORK_COEXEC=self", Run.colo, probe, "fork", probe, "info"])
        let v = values(r.stdout)
        #expect(v["exec"] == nil, "not refused: \(r.stdout) \(r.stderr)")
        #expect(colocated(v["slot"]) && v["pid"] == v["child"] && v["child_status"] == "0", "\(r.stdout) \(r.stderr)")
    }

    @Test func reColocationCanBeTurnedOff() throws {
        let probe = try Guests.probe()
        let r = try Run.capture(["/usr/bin/env", "COLO_RECOLOCATION=0", Run.colo, probe, "fork", probe, "info"])
        let v = values(r.stdout)
        #expect(!colocated(v["slot"]) && v["pid"] == v["child"] && v["child_status"] == "0", "\(r.stdout) \(r.stderr)")
    }

    @Test func interactiveBashJobControl() throws {
        let probe = try Guests.probe()
        let t = try ShellTests.Terminal("\(Run.colo) /bin/bash --norc --noprofile -i")
        #expect(t.waitFor("#") || t.waitFor("$"), "a prompt: \(t.screen)")
        t.type("\(probe) sleep 30", "Enter")
        #expect(t.waitFor("ready"))
        let job = pid_t(t.screen.split(separator: "\n").last { $0.hasPrefix("pid=") }?.dropFirst(4) ?? "") ?? 0
        #expect(eventually { ShellTests.leadsForeground(job) }, "the re-colocated command leads the terminal's foreground group")
        let bash = parent(of: job)
        #expect(shareAddressSpace(job, bash), "and runs in bash's address space")
        t.type("C-c")
        t.type("echo status=$?", "Enter")
        #expect(t.waitFor("status=130"), "Ctrl-C reaches it: \(t.screen)")
        t.type("exit", "Enter")
    }
}

extension ShellTests {
    /// Does `pid` lead the terminal's foreground process group?
    static func leadsForeground(_ pid: pid_t) -> Bool {
        let f = statFields(pid)
        return f.count > 5 && pid_t(f[2]) == pid && f[2] == f[5]
    }
}
