// ClaimsTests.swift - tests for README claims that had none: signals held while borrowing, SIGSYS through sigsuspend, the slot and process limits, MAP_32BIT, rseq/clone3, a full trace ring.
import Foundation
import Glibc
import Testing
@testable import Runtime

/// README claims, each checked colocated and, where it is a refusal, natively too (the
/// positive control: the same call works outside an address space).
@Suite(.serialized) struct ClaimsTests {
    static func guest() throws -> String { try Guests.buildWithAPI("claims") }

    /// "No handler of the caller ever runs on the callee's stack or TLS": a SIGUSR1 that the
    /// kernel delivers while the caller's thread runs callee code is held, and its handler
    /// runs once the call has returned, on the caller's stack with the caller's TLS.
    @Test func aCallersHandlerNeverRunsOnTheCalleesContext() throws {
        let r = try Run.colo([try Self.guest(), "borrow_signal"], timeout: 30)
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        let v = values(r.stdout)
        #expect(v["cocall"] == "8" && v["reply"] == "42", "\(r.stdout)")
        #expect(v["delivered_while_borrowing"] == "1", "the signal reached the thread during the borrow: \(r.stdout)")
        #expect(v["held_while_borrowing"] == "1", "and its handler did not run then")
        #expect(v["handler_runs"] == "1" && v["handler_after_release"] == "1", "it ran once, after the call: \(r.stdout)")
        #expect(v["handler_on_own_stack"] == "1" && v["handler_own_tls"] == "1", "on the caller's stack and TLS: \(r.stdout)")
    }

    /// "SIGSYS can never be blocked by a guest (… sigsuspend)": while a guest waits in
    /// sigsuspend with every signal blocked but one, SIGSYS is not blocked, and a handler
    /// run inside the wait can make a trapped call.  Natively the same mask blocks SIGSYS.
    @Test func sigsysStaysUnblockedInSigsuspend() throws {
        let r = try Run.colo([try Self.guest(), "sigsuspend"], timeout: 30)
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        let v = values(r.stdout)
        #expect(v["suspend_mask_seen"] == "1", "the wait's mask was in force when /proc was read: \(r.stdout)")
        #expect(v["sigsys_blocked_in_sigsuspend"] == "0", "\(r.stdout)")
        #expect(v["handler_mmap_in_slot"] == "1", "mmap(NULL) in the handler went through the SIGSYS handler")
        let native = values(try Run.capture([try Self.guest(), "sigsuspend"], timeout: 30).stdout)
        #expect(native["suspend_mask_seen"] == "1" && native["sigsys_blocked_in_sigsuspend"] == "1",
                "the control: natively the mask blocks SIGSYS, and /proc shows it: \(native)")
    }

    /// "At most 64 GiB of address space (its slot)", "MAP_32BIT mappings are refused with
    /// ENOMEM", "rseq(2) and clone3(2) answer ENOSYS": refused colocated, allowed natively.
    @Test func slotSizeMap32BitRseqAndClone3() throws {
        let r = try Run.colo([try Self.guest(), "limits"])
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        let v = values(r.stdout)
        #expect(v["map32"] == "ENOMEM" && v["map65g"] == "ENOMEM", "\(r.stdout)")
        let chunks = Int(v["gib_chunks"] ?? "") ?? -1
        #expect(chunks > 0 && chunks < 64 && v["chunks_in_own_slot"] == "1", "1 GiB mappings, all in the slot, fewer than 64: \(r.stdout)")
        #expect(v["rseq"] == "ENOSYS" && v["clone3"] == "ENOSYS", "\(r.stdout)")
        let n = values(try Run.capture([try Self.guest(), "limits"]).stdout)
        #expect(n["map32"] == "OK" && n["map65g"] == "OK" && n["gib_chunks"] == "100", "the control, natively: \(n)")
        #expect(n["rseq"] != nil && n["rseq"] != "ENOSYS" && n["clone3"] != nil && n["clone3"] != "ENOSYS", "\(n)")
    }

    /// "An address space holds at most 256 processes": a guest starts children until one is
    /// not in its mm (kcmp); 255 are, with the guest 256, and the next one runs outside.
    @Test func anAddressSpaceHoldsAtMost256Processes() throws {
        let g = try Self.guest()
        let r = try Run.colo([g, "fill", g], timeout: 60)
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        let v = values(r.stdout)
        #expect(v["colocated_children"] == "255", "\(r.stdout) \(r.stderr)")
        #expect(v["next"] == "outside" || v["next"] == "EAGAIN", "the 257th is refused or runs outside: \(r.stdout)")
        #expect(r.stderr.contains("address space is full"), "\(r.stderr)")
    }

    /// "A writer that would overwrite an unread record waits for the tracer, so nothing is
    /// lost": with the tracer stopped, a guest making three rings' worth of calls blocks
    /// (the ring is full), and once the tracer goes on every call is in the trace.
    @Test func aFullTraceRingLosesNoRecord() throws {
        let calls = 3 * 8192      // COLO_TRACE_RECORDS
        let out = NSTemporaryDirectory() + "colo-claims-ring-\(getpid()).out"
        defer { unlink(out) }
        let tracer = try Background([Run.colo, "trace", "-e", "getppid", "-o", out, "--", try Self.guest(), "ring", String(calls)])
        let pid = try tracer.value("pid")
        try tracer.waitFor { $0 == "ready" }
        kill(tracer.pid, SIGSTOP)
        defer { kill(tracer.pid, SIGCONT) }
        kill(pid_t(pid)!, SIGUSR1)
        try tracer.waitFor { $0 == "burst" }
        // Its loop never sleeps but to wait for room in the ring.
        let blocked = eventually(timeout: 10) { statFields(pid_t(pid)!).first == "S" }
        #expect(blocked, "the writer waits for the stopped tracer")
        #expect(!tracer.lines.contains("done"), "\(tracer.lines)")
        kill(tracer.pid, SIGCONT)
        try tracer.waitFor(timeout: 30) { $0 == "done" }
        #expect(tracer.wait(timeout: 30) == 0)
        let lines = ((try? String(contentsOfFile: out, encoding: .utf8)) ?? "").split(separator: "\n")
        let getppid = lines.filter { $0.hasPrefix("\(pid) getppid() = ") }
        #expect(getppid.count == calls, "every call traced: \(getppid.count) of \(calls)")
        #expect(!lines.contains { $0.contains("lost") }, "\(lines.filter { !$0.contains("getppid") })")
    }
}
