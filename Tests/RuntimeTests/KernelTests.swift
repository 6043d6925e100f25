// The kernel calls: capabilities, the name registry, the slow-path rendezvous and fd capabilities, through the guest library.
import Foundation
import Glibc
import Testing
@testable import Runtime

/// The kernel calls: capabilities, the name registry, the slow-path
/// rendezvous and fd capabilities, through the guest library.
@Suite(.serialized) struct KernelTests {
    @Test func everyCallFailsWithENOSYSOutsideAnAddressSpace() throws {
        let r = try Run.capture([try Guests.buildWithAPI("kernel_probe"), "enosys"])
        #expect(r.status == 0, "\(r.stderr)")
        let v = values(r.stdout)
        for call in ["cosetup", "_cosetup", "coregister", "colookup", "cogetpid", "cocachedpid", "cocall_slow", "cocall",
                     "coaccept_slow", "coaccept", "capfromfd", "captofd", "coexecve", "coexecvec", "coexecvpc"] {
            #expect(v[call] == "ENOSYS", "\(call)")
        }
        #expect(v["capc"] == "0" && v["capv_null"] == "1", "no vector outside an address space")
    }

    @Test func errnosOfOneProcess() throws {
        let r = try Run.colo([try Guests.buildWithAPI("kernel_probe"), "errnos"])
        #expect(r.status == 0, "\(r.stderr)")
        let v = values(r.stdout)
        let expected: [String: String] = [
            "cosetup_bad": "EINVAL", "cosetup_takeover": "EPERM", "cosetup_efault": "EFAULT",
            "cogetpid_idle": "ESRCH", "coregister_self": "OK",
            "cocall_no_cosetup": "EINVAL", "coaccept_no_cosetup": "EINVAL",
            "coregister_empty": "EINVAL", "coregister_toolong": "ENAMETOOLONG", "coregister_longest": "OK",
            "coregister_name": "OK", "coregister_exists": "EEXIST",
            "coregister_name_efault": "EFAULT", "coregister_cap_efault": "EFAULT",
            "colookup": "OK", "colookup_same": "1", "colookup_missing": "ESRCH", "colookup_efault": "EFAULT",
            "noncanonical": "1", "cosetup_cocall": "OK", "cocall_own_target": "EDEADLK", "cocall_null_target": "EINVAL",
            "cocall_before_accept": "EAGAIN", "cocall_fast_before_accept": "EAGAIN",
            // Untagged on CHERI (integers below any mappable address): EPROT (CheriBSD's copy).
            "cocall_untagged_outbuf": "EPROT", "cocall_untagged_inbuf": "EPROT",
            "cocall_null_outbuf": "EINVAL", "cocall_null_inbuf": "EINVAL",
            "cocall_misaligned_outbuf": "EINVAL", "cocall_misaligned_inbuf": "EINVAL",
            "cocall_misaligned_outlen": "EINVAL", "cocall_misaligned_inlen": "EINVAL",
            "cocall_unmapped_outbuf": "EFAULT", "cocall_unmapped_inbuf": "EFAULT", "cocall_outside_outbuf": "EFAULT",
            "cocall_truncated": "16", "callee_received": "16", "cocall_full": "24", "echoed": "1234",
            "cocall_empty": "24", "callee_received_empty": "0", "cogetpid_matches": "1",
            "cocall_cookie_as_target": "EINVAL", "cocall_scb_as_target": "EINVAL", "cocall_code_as_target": "EINVAL",
            "capfromfd": "OK", "cocall_fdcap_as_target": "EINVAL",
            "captofd_target": "EINVAL", "captofd_cookie": "EINVAL", "captofd_null": "EINVAL", "captofd_efault": "EFAULT",
            "capfromfd_badfd": "EBADF", "capfromfd_negative": "EBADF", "capfromfd_efault": "EFAULT",
            "coaccept_interrupted": "EINTR", "cocall_interrupted": "EINTR",
            "coaccept_unmapped_inbuf": "EFAULT", "coaccept_unmapped_outbuf": "EFAULT",
            "cocall_callee_outbuf_fault": "EFAULT", "cocall_after_faults": "16", "reply_after_faults": "badbeef",
            "cocall_exited_thread": "ENOLINK", "colookup_exited_thread": "ESRCH",
        ]
        for (k, e) in expected.sorted(by: { $0.key < $1.key }) { #expect(v[k] == e, "\(k)") }
        #expect(v["target_text"]?.hasSuffix("[target] (sealed)") == true)
        #expect(v["cookie_text"]?.hasSuffix("[scb] (cookie)") == true)
        #expect(v["fdcap_text"]?.hasSuffix("[fd] (sealed)") == true)
    }

    @Test func forgedCapabilitiesAreRefused() throws {
        let r = try Run.colo([try Guests.buildWithAPI("kernel_probe"), "forge", "10000"], timeout: 120)
        #expect(r.status == 0, "\(r.stderr)")
        let v = values(r.stdout)
        // The positive control: the same call with the real target works before and after,
        // and only those two calls reach the callee.
        #expect(v["forge_cosetup"] == "OK" && v["control_before"] == "OK" && v["control_after"] == "OK", "\(r.stdout)")
        #expect(v["callee_received"] == "2", "no forged call reached the callee: \(r.stdout)")
        #expect(v["tried"] == "10000")
        #expect(v["refused_target"] == "10000", "random values as targets")
        #expect(v["refused_fd"] == "10000", "random values as fd capabilities")
        #expect(v["refused_near"] == "10000", "a real target with one bit flipped")
        #expect(v["capfromfd_own"] == "OK" && v["captofd_own"] == "OK")
        #expect(v["captofd_flipped"] == "EINVAL")
    }

    @Test func aTargetIsValidInItsOwnAddressSpaceOnly() throws {
        let s = try KernelService(name: "home")
        let text = try s.service.value("target")
        let hex = try #require(text.split(separator: " ").first).dropFirst(2)
        #expect(values(try s.join(["call_raw", String(hex)]).stdout)["cocall_raw"] == "OK", "copied as a number, same space")
        let elsewhere = try Run.colo([try Guests.buildWithAPI("kernel_probe"), "call_raw", String(hex)])
        #expect(values(elsewhere.stdout)["cocall_raw"] == "EINVAL", "another address space")
    }

    /// The slow path's staging area (struct colo_scb's stage): the library's cocall_slow and
    /// coaccept_slow copy through their threads' SCBs, which the runtime maps, instead of
    /// between mms.  Every size around the area's 2 KiB arrives intact; a call made without
    /// the library after one made with it reads its own buffer; a record the runtime finds
    /// is honoured once; buffers that fault give the errnos the copy between mms gave (the
    /// same run with COLO_SLOW_PATH, where nothing is staged, gives the same answers).
    @Test func theSlowPathCopiesThroughTheSCBsAndFaultsAsBefore() throws {
        let guest = try Guests.buildWithAPI("slow_stage")
        let staged = try Run.colo([guest])
        let unstaged = try Run.capture(["/usr/bin/env", "COLO_SLOW_PATH=1", Run.colo, guest])
        #expect(staged.status == 0 && unstaged.status == 0, "\(staged.stderr) \(unstaged.stderr)")
        let v = values(staged.stdout), u = values(unstaged.stdout)
        for size in [8, 1024, 2048, 2056, 4096, 8192] { #expect(v["echo_\(size)"] == "OK", "\(size) bytes") }
        #expect(v["raw_after_staged"] == "OK" && v["staged_record_used"] == "OK" && v["staged_record_taken"] == "OK",
                "\(staged.stdout)")
        #expect(v["cocall_unmapped_inbuf"] == "EFAULT" && v["after_unmapped_inbuf"] == "OK")
        #expect(v["coaccept_unmapped_inbuf"] == "EFAULT" && v["served_after_bad_inbuf_0"] == "OK")
        #expect(v["coaccept_untagged_inbuf"] == "EPROTO" && v["served_after_bad_inbuf_1"] == "OK")
        #expect(v["done"] == "1")
        #expect(u["staged_record_used"] == "unattached")
        for (key, value) in u where !key.hasPrefix("staged_record") { #expect(v[key] == value, "\(key): \(v[key] ?? "-") staged, \(value) not") }
    }

    @Test func aCheriBSDStyleServiceAndClientWork() throws {
        let cs = try Guests.buildWithAPI("coservice")
        let r = try Run.colo([cs, "serve", cs, "ask", "200"])
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        let v = values(r.stdout)
        #expect(v["capc"] == "4", "capvset grew the vector to index 3, coexecvpc passed it")
        #expect(v["answerback"]?.hasPrefix("coservice, pid ") == true && v["answerback"]?.hasSuffix("(slow)") == true)
        #expect(v["good"] == "199")
    }

    /// fd capabilities keep their files open in the runtime (as CheriBSD
    /// keeps the struct file); a guest minting many cannot starve the runtime.
    @Test func manyFdCapabilitiesLeaveTheRuntimeWorking() throws {
        let r = try Run.colo([try Guests.buildWithAPI("kernel_probe"), "fdcap_flood", "30000"], timeout: 120)
        #expect(r.status == 0, "\(r.stderr)")
        let v = values(r.stdout)
        #expect((Int(v["flood_ok"] ?? "") ?? 0) >= 900)
        #expect(v["flood_error"] == "OK" || v["flood_error"] == "EMFILE", "at the hard limit: EMFILE")
        #expect(v["late_cosetup"] == "OK" && v["late_coregister"] == "OK", "the runtime still has descriptors of its own")
    }

    @Test func captofdGivesANewDescriptorForTheSameFile() throws {
        let r = try Run.colo([try Guests.buildWithAPI("kernel_probe"), "fdcap"])
        #expect(r.status == 0, "\(r.stderr)")
        let v = values(r.stdout)
        #expect(v["capfromfd"] == "OK" && v["captofd"] == "OK" && v["captofd_again"] == "OK")
        #expect(v["newfd_distinct"] == "1" && v["second_fd_distinct"] == "1")
        #expect(v["read"] == "via capability", "written through the new descriptor, read from the pipe")
    }

    /// N caller threads of one process against a service with K accepting
    /// threads (thread i calls the target of accepting thread i % K).
    @Test(arguments: [(1, 8, 1), (2, 4096, 1), (8, 8, 1), (1, 65536, 1), (8, 64, 3)])
    func everyCallIsAnsweredExactlyOnce(threads: Int, size: Int, acceptors: Int) throws {
        let s = try KernelService(name: "echo", acceptors: acceptors)
        #expect(try s.wchan(s.pid) == "copark", "the idle service's thread is parked by the switcher's coaccept")
        let calls = 300
        let r = try s.join(["client", "echo", String(threads), String(calls), String(size), String(acceptors)], timeout: 120)
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        let v = values(r.stdout)
        let total = String(threads * calls)
        #expect(v["ok"] == total && v["bad"] == "0")
        #expect(v["served"] == total, "the service saw every call once")
        #expect(v["dups"] == "0" && v["gaps"] == "0" && v["badsum"] == "0")
    }

    @Test func aCallerWaitsInCobusyAndAKilledCallerLeavesTheServiceServing() throws {
        let s = try KernelService(name: "slow")
        let first = try s.start(["call_sleep", "slow", "1500"])
        let firstPID = pid_t(try first.value("pid"))!
        try first.waitFor { $0 == "calling" }
        #expect(eventually { (try? s.wchan(firstPID)) == "cocall" }, "a served caller sleeps in cocall")
        let second = try s.start(["call_sleep", "slow", "10"])
        let secondPID = pid_t(try second.value("pid"))!
        #expect(eventually { (try? s.wchan(secondPID)) == "cobusy" }, "a queued caller sleeps in cobusy")
        let third = try s.start(["call_sleep", "slow", "10"])
        let thirdPID = pid_t(try third.value("pid"))!
        #expect(eventually { (try? s.wchan(thirdPID)) == "cobusy" })
        kill(firstPID, SIGKILL)      // mid-call
        kill(secondPID, SIGKILL)     // while queued
        #expect(try third.value("cocall") == "OK")
        #expect(try third.value("received") == "48")
        let r = try s.join(["call_sleep", "slow", "0"])
        #expect(values(r.stdout)["cocall"] == "OK", "the service still serves")
    }

    /// CheriBSD's kern_cocall_slow: a callee that dies while it serves a call wakes its caller,
    /// whose call returns the 0 bytes it started with (cocall_callee_abort); calls after that
    /// give ENOLINK (colocation_thread_exit).
    @Test func aKilledCalleeEndsItsCallerEmptyHanded() throws {
        let s = try KernelService(name: "victim")
        let caller = try s.start(["call_sleep", "victim", "10000"])
        try caller.waitFor { $0 == "calling" }
        #expect(eventually { (try? s.wchan(pid_t(try caller.value("pid"))!)) == "cocall" })
        kill(s.pid, SIGKILL)
        #expect(try caller.value("cocall") == "OK")
        #expect(try caller.value("received") == "0")
        let again = try s.join(["call_sleep", "victim", "0"])
        #expect(values(again.stdout)["colookup"] == "ESRCH", "the dead service's name is gone")
    }

    @Test func namesOfADeadServiceStayWhenTheKnobSaysSo() throws {
        let s = try KernelService(name: "ghost")
        #expect(try Run.colo(["sysctl", "--pid", String(s.spacePID), "debug.counregister_on_exit=0"]).status == 0)
        kill(s.pid, SIGKILL)
        #expect(eventually { isGone(s.pid) })
        let v = values(try s.join(["call_sleep", "ghost", "0"]).stdout)
        #expect(v["colookup"] == nil, "the name is still registered")
        #expect(v["cocall"] == "ENOLINK", "its target names an exited thread")
    }

    @Test func execInPlaceEndsTheOldProgramsTargetAndNames() throws {
        let s = try KernelService(name: "unrelated")
        let svc = try s.start(["register_exec", "reborn"])
        let target = try svc.value("target")
        try svc.waitFor { $0 == "paused" }
        let raw = values(try s.join(["call_raw", String(target.dropFirst(2))]).stdout)
        #expect(raw["cocall_raw"] == "ENOLINK", "the target named the program before the exec")
        #expect(values(try s.join(["call_sleep", "reborn", "0"]).stdout)["colookup"] == "ESRCH", "its name went with it")
        kill(pid_t(try svc.value("pid"))!, SIGKILL)
    }

    @Test func aSignalInterruptsACallToAnotherProcess() throws {
        let s = try KernelService(name: "sleepy")
        let r = try s.join(["eintr", "sleepy"])
        #expect(values(r.stdout)["cocall_interrupted"] == "EINTR", "\(r.stdout)")
    }

    /// Signals fired at callers and callee during a load run: without
    /// SA_RESTART a call may end in EINTR, with it every call completes.
    @Test(arguments: [false, true])
    func signalsDuringALoadRun(restart: Bool) throws {
        let r = try Run.colo([try Guests.buildWithAPI("kernel_probe"), "signal_storm"] + (restart ? ["restart"] : []),
                             timeout: 120)
        #expect(r.status == 0, "\(r.stderr)")
        let v = values(r.stdout)
        let ok = Int(v["ok"] ?? "") ?? -1, interrupted = Int(v["interrupted"] ?? "") ?? -1
        #expect(v["other"] == "0", "no call failed otherwise")
        #expect(ok + interrupted == 12000)
        if restart { #expect(ok == 12000) }
    }

    @Test func anFdCapabilityCrossesProcesses() throws {
        let s = try KernelService(name: "files")
        let v = values(try s.join(["fetch_fd", "files"]).stdout)
        #expect(v["cocall"] == "OK" && v["captofd"] == "OK")
        #expect(v["read"] == "through captofd")
    }

    @Test func colookupFollowsItsKnob() throws {
        let s = try KernelService(name: "knob")
        #expect(try Run.colo(["sysctl", "--pid", String(s.spacePID), "security.bsd.allow_colookup=0"]).status == 0)
        #expect(values(try s.join(["call_sleep", "knob", "0"]).stdout)["colookup"] == "ENOSYS")
        #expect(try Run.colo(["sysctl", "--pid", String(s.spacePID), "security.bsd.allow_colookup=1"]).status == 0)
        #expect(values(try s.join(["call_sleep", "knob", "0"]).stdout)["cocall"] == "OK")
    }

    @Test func aSwiftServiceAndCallerUseTheColoModule() throws {
        let coswift = URL(fileURLWithPath: Run.colo).deletingLastPathComponent().appendingPathComponent("coswift").path
        let s = try KernelService(coswift, ["serve", "swifty"])
        #expect(try s.service.value("target").hasSuffix("[target] (sealed)"))
        let r = try Run.colo(["--join", String(s.spacePID), coswift, "call", "swifty", "200"])
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        let v = values(r.stdout)
        #expect(v["good"] == "200")
        #expect(v["lookup_missing"] == "true" && v["call_forged"] == "true")
        #expect(v["fdcap"]?.hasSuffix("[fd] (sealed)") == true && v["captofd_fd_ok"] == "true")
        #expect(v["vector"] == "0")
    }

    @Test func capabilityFormatting() {
        #expect(CapabilityTable.describe(0x1000) == "0x1000")
        let sealed: UInt64 = 0xA400_0000_0000_1234    // sealed, tagged, type 1
        #expect(CapabilityTable.describe(sealed) == "0xa400000000001234 [target] (sealed)")
        #expect(CapabilityTable.describe(sealed & ~(UInt64(1) << 61)) == "0x8400000000001234 [target] (cookie)")
    }
}
