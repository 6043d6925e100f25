// An address space lives while any of its processes lives: colo returns the command's status
// when the command ends, what the command left running goes on, served, and the runtime's end
// (killed, or after its last process) takes every member with it.
import Foundation
import Glibc
import Testing
@testable import Runtime

@Suite(.serialized) struct LifetimeTests {
    /// The state letter of a process (R, S, Z ...), nil once it is gone.
    func state(_ pid: pid_t) -> Character? {
        guard let s = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = s.lastIndex(of: ")") else { return nil }
        return s[s.index(close, offsetBy: 2)]
    }
    func dead(_ pid: pid_t) -> Bool { let s = state(pid); return s == nil || s == "Z" || s == "X" }

    @Test func theCommandsStatusComesWhenItEndsAndWhatItStartedGoesOn() throws {
        let probe = try Guests.probe()
        // The command starts a holder without waiting for it and exits with 7.  (Background:
        // its process group, the runtime's, lives until the end of the test.)
        let colo = try Background([Run.colo, probe, "detach", "7", probe, "hold"])
        let child = try #require(pid_t(try colo.value("child")))
        let pdeathsig = try colo.value("pdeathsig")
        #expect(colo.wait() == 7, "colo returns the command's status")
        defer { kill(child, SIGKILL) }
        #expect(pdeathsig == "0", "no parent-death signal, as natively")
        #expect(!dead(child), "the detached member goes on after the command and colo ended")
        // Still colocated and served: colo ps lists it in the same address space.
        let ps = try Run.colo(["ps", String(child)])
        let rows = ps.stdout.split(separator: "\n").dropFirst()
        #expect(rows.contains { $0.split(separator: " ", omittingEmptySubsequences: true)[1] == String(child) }, "\(ps.stdout)")
        let runtime = try #require(rows.first { $0.hasSuffix("[colo runtime]") }.flatMap { pid_t($0.split(separator: " ", omittingEmptySubsequences: true)[1]) })
        #expect(parent(of: child) == runtime, "an orphan of the address space is the runtime's (its subreaper)")
        kill(child, SIGUSR1)
        // After its last process, the runtime ends too.
        #expect(eventually(timeout: 10) { dead(runtime) }, "the runtime ends after its last member")
    }

    @Test func killingTheRuntimeKillsEveryMember() throws {
        let probe = try Guests.probe()
        let colo = try Background([Run.colo, probe, "detach", "0", probe, "hold"])
        let child = try #require(pid_t(try colo.value("child")))
        #expect(colo.wait() == 0)
        defer { kill(child, SIGKILL) }
        let runtime = parent(of: child)
        try #require(runtime > 1 && !dead(child))
        kill(runtime, SIGKILL)
        #expect(eventually(timeout: 10) { dead(child) }, "the watchdog kills what the runtime served")
    }

    @Test func killingColoWhileTheCommandRunsKillsTheAddressSpace() throws {
        let probe = try Guests.probe()
        let holder = try Background([Run.colo, probe, "hold"])
        let member = pid_t(try holder.value("pid"))!
        let runtime = parent(of: member)
        #expect(runtime != holder.pid, "the process the shell waits for is not the runtime")
        kill(holder.pid, SIGKILL)
        #expect(holder.wait() == 128 + SIGKILL)
        #expect(eventually(timeout: 10) { dead(member) && dead(runtime) })
    }

    @Test func signalsForColoReachTheCommand() throws {
        let probe = try Guests.probe()
        let holder = try Background([Run.colo, probe, "hold"])
        _ = try holder.value("pid")
        kill(holder.pid, SIGTERM)
        #expect(holder.wait() == 128 + SIGTERM, "SIGTERM to colo is the command's, and so is its status")
    }
}
