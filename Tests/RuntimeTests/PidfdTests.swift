// PidfdTests.swift - a pidfd opened on a fork child before its exec (its re-colocation) waits for the program that took the PID.
import Foundation
import Glibc
import Testing

/// Waiting for a child through a pidfd: pidfd_open, poll, waitid(P_PIDFD).  Colocated,
/// the fork child's exec swaps it for a new process with its PID (see ForkTests); the
/// pidfd must give that program's status (exit 5, SIGKILL), as natively.
@Suite(.serialized) struct PidfdTests {
    /// "": the pidfd is opened right after fork (usually before the exec) and waitid
    /// blocks; "glib": as GLib 2.74's spawn and child watch, the pidfd is opened once the
    /// exec is done (a close-on-exec pipe reached its end) and POLLIN is taken for the
    /// exit (waitid with WNOHANG).
    @Test(arguments: [false, true], ["", "glib"])
    func waitidThroughAPidfdGivesTheExecdProgramsStatus(_ colocated: Bool, _ mode: String) throws {
        let guest = try Guests.build("pidfd_wait", .dynamicGlibc)
        let iterations = 50
        let r = try Run.capture((colocated ? [Run.colo] : []) + [guest, String(iterations)] + (mode.isEmpty ? [] : [mode]),
                                timeout: 120)
        let v = values(r.stdout)
        let side = colocated ? "colocated" : "natively"
        #expect(r.status == 0 && v["wrong"] == "0",
                "\(side) \(mode): every waitid(P_PIDFD) gives exit 5 or SIGKILL: \(r.stdout) \(r.stderr.prefix(2000))")
        // Each child reports whether its program shares the parent's address space:
        // colocated, every exec is a re-colocation (the case under test), natively none.
        #expect(v["recolocated"] == (colocated ? String(2 * iterations) : "0"), "\(side) \(mode): \(r.stdout)")
    }
}
