// coexecve(2), coexecvec(2) and coexec(1).
import Foundation
import Glibc
import Testing
@testable import Runtime

/// coexecve(2), coexecvec(2) and coexec(1).
@Suite(.serialized) struct CoexecTests {
    func pids(_ out: String) -> [String] { out.split(separator: "\n").filter { $0.hasPrefix("pid=") }.map(String.init) }

    /// The coexec executable, built next to colo.
    var coexec: String { URL(fileURLWithPath: Run.colo).deletingLastPathComponent().appendingPathComponent("coexec").path }

    @Test func coexecveInTheSameAddressSpaceIsExecInPlace() throws {
        // 0 is the caller itself.
        let r = try Run.colo([try Guests.probe(), "coexec", "0", try Guests.probe(.dynamicGlibc), "info", "co"])
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        let p = pids(r.stdout)
        #expect(p.count == 2 && p[0] == p[1], "the PID is kept: \(p)")
        #expect(values(r.stdout)["arg2"] == "co")
    }

    @Test func coexecveErrors() throws {
        let probe = try Guests.probe(), target = try Guests.probe(.dynamicGlibc)
        #expect(values(try Run.colo([probe, "coexec", "999999", target, "info"]).stdout)["coexec"] == "ESRCH")
        #expect(values(try Run.colo([probe, "coexec", "0", "/nonexistent", "info"]).stdout)["coexec"] == "ENOENT")
        // Another user's process (init) that is not our parent: EPERM.
        let r = try Run.capture(["/usr/bin/env", "COEXEC_UID=65534", Run.colo, probe, "coexec", "1", target, "info"])
        #expect(values(r.stdout)["coexec"] == "EPERM", "\(r.stdout) \(r.stderr)")
        // Outside any address space the call does not exist.
        #expect(values(try Run.capture([probe, "coexec", "1", target]).stdout)["coexec"] == "ENOSYS")
    }

    @Test func coexecvecInstallsAVector() throws {
        let probe = try Guests.probe(), target = try Guests.probe(.dynamicGlibc)
        let r = try Run.colo([probe, "coexecvec", "3", "0", target, "info"])
        #expect(values(r.stdout)["AT_CAPC"] == "3")
        #expect(values(try Run.colo([probe, "coexecvec", "42", "0", target, "info"]).stdout)["coexec"] == "E2BIG")
        #expect(values(try Run.colo([probe, "coexecvec", "-1", "0", target, "info"]).stdout)["coexec"] == "EINVAL")
    }

    @Test func coexecveIntoAnotherAddressSpaceJoinsIt() throws {
        let holder = try Background([Run.colo, try Guests.probe(), "hold"])
        let hpid = pid_t(try holder.value("pid"))!
        // The program holds (until SIGUSR1) so that where it runs can be seen with kcmp.
        let caller = try Background([Run.colo, try Guests.probe(), "coexec", String(hpid), try Guests.probe(.dynamicGlibc), "hold"])
        let callerPID = pid_t(try caller.value("pid"))!
        try caller.waitFor { $0 == "ready" }
        let newPID = try #require(caller.lines.filter { $0.hasPrefix("pid=") }.dropFirst().first.flatMap { pid_t($0.dropFirst(4)) },
                                  "\(caller.lines)")
        #expect(newPID != callerPID, "Linux cannot move a process into another mm: a new PID there")
        #expect(shareAddressSpace(newPID, hpid), "the program runs in the address space of \(hpid)")
        #expect(!shareAddressSpace(callerPID, hpid), "the caller stays in its own")
        #expect(!isGone(callerPID), "the caller waits for the program")
        kill(newPID, SIGUSR1)
        #expect(try caller.value("content") == "intact")
        #expect(caller.wait() == 0)
        // The program's exit status is passed on, a non-zero one too.
        let r = try Run.colo([try Guests.probe(), "coexec", String(hpid), try Guests.probe(.dynamicGlibc), "exit", "7"])
        #expect(r.status == 7, "\(r.stdout) \(r.stderr)")
        #expect(values(r.stdout)["coexec"] == nil, "coexecve did not return: \(r.stdout)")
        kill(hpid, SIGUSR1)
        #expect(holder.wait() == 0)
    }

    @Test func coexecCommand() throws {
        let usage = try Run.capture([coexec])
        #expect(usage.status == 1 && usage.stderr == "usage: coexec pid command [args ...]\n")
        let bad = try Run.capture([coexec, "12x", "ls"])
        #expect(bad.status == 1 && bad.stderr.hasPrefix("coexec: invalid PID \"12x\""))
        let none = try Run.capture([coexec, "999999", "/bin/true"])
        #expect(none.status == 1 && none.stderr == "coexec: /bin/true: No such process\n")
        // From a plain process: the command runs in the address space of the pid.
        let holder = try Background([Run.colo, try Guests.probe(), "hold"])
        let hpid = pid_t(try holder.value("pid"))!
        let r = try Run.capture([coexec, String(hpid), try Guests.probe(.dynamicGlibc), "info"])
        #expect(r.status == 0)
        let v = values(r.stdout)
        #expect(v["ppid"] == String(parent(of: hpid)), "started by the runtime of \(hpid)'s address space")
        kill(hpid, SIGUSR1)
        #expect(holder.wait() == 0)
    }
}
