// What one colocated process does must not reach the others or the runtime.
import Foundation
import Glibc
import Testing
@testable import Runtime

/// What one colocated process does must not reach the others or the runtime.
@Suite(.serialized) struct IsolationTests {
    /// A holder process with a page of its own, and the runtime running it.
    struct Holder {
        let bg: Background
        let pid: pid_t
        let addr: String
        init(_ variant: Guests.Variant = .staticGlibc) throws {
            bg = try Background([Run.colo, try Guests.probe(variant), "hold"])
            pid = pid_t(try bg.value("pid"))!
            addr = try bg.value("addr")
        }
        /// The holder's page must still be intact and it must exit cleanly.
        func finish() throws {
            kill(pid, SIGUSR1)
            #expect(try bg.value("content") == "intact")
            #expect(bg.wait() == 0)
        }
        func join(_ args: [String], _ variant: Guests.Variant = .staticGlibc) throws -> Run.Result {
            try Run.colo(["--join", String(pid), try Guests.probe(variant)] + args)
        }
    }

    @Test func foreignMappingsAreRefused() throws {
        let h = try Holder()
        for variant in Guests.Variant.allCases {
            let r = try h.join(["foreign", h.addr], variant)
            let v = values(r.stdout)
            for call in ["munmap", "mprotect", "madvise", "mremap", "mmap_fixed", "mmap_noreplace"] {
                #expect(v[call] == "EACCES", "\(variant) \(call) on another process's page: \(v[call] ?? "nil")")
            }
        }
        // The runtime's own memory (its address-space table) is just as foreign.
        let t = values(try h.join(["foreign", String(Layout.tableAddress, radix: 16)]).stdout)
        #expect(t["munmap"] == "EACCES" && t["mprotect"] == "EACCES")
        try h.finish()
    }

    @Test func ownMappingsAreNotRefused() throws {
        let v = values(try Run.colo([try Guests.probe(), "own"]).stdout)
        for call in ["mprotect", "madvise", "mmap_fixed", "munmap"] { #expect(v[call] == "OK", "\(call)") }
    }

    @Test(arguments: ["nocore", "core"])
    func aCrashLeavesTheOthersRunning(_ core: String) throws {
        let h = try Holder()
        let r = try h.join(["segv", core])
        #expect(r.status == 128 + SIGSEGV)
        #expect(!isGone(h.bg.pid), "the runtime survives")
        try h.finish()
    }

    @Test func exitGroupAndSIGKILLLeaveTheOthersRunning() throws {
        let h = try Holder()
        #expect(try h.join(["exit_group", "4"]).status == 4)
        let victim = try Background([Run.colo, "--join", String(h.pid), try Guests.probe(), "sleep", "30"])
        let vpid = pid_t(try victim.value("pid"))!
        kill(vpid, SIGKILL)
        #expect(victim.wait() == 128 + SIGKILL)
        try h.finish()
    }

    @Test func signalHandlersArePerProcess() throws {
        let handler = try Background([Run.colo, try Guests.probe(), "handler"])
        let hpid = pid_t(try handler.value("pid"))!
        let plain = try Background([Run.colo, "--join", String(hpid), try Guests.probe(), "sleep", "30"])
        let ppid = pid_t(try plain.value("pid"))!
        kill(ppid, SIGUSR1)                          // default action: terminate
        #expect(plain.wait() == 128 + SIGUSR1)
        kill(hpid, SIGUSR1)                          // its own handler
        #expect(try handler.value("handled") == "1")
        #expect(handler.wait() == 0)
    }

    @Test func credentialsDescriptorsAndCwdArePerProcess() throws {
        let h = try Holder()
        let setuid = try Background([Run.colo, "--join", String(h.pid), try Guests.probe(), "setuid", "65534"])
        #expect(try setuid.value("uid") == "65534")
        let closer = try Background([Run.colo, "--join", String(h.pid), try Guests.probe(), "close1"])
        let mover = try Background([Run.colo, "--join", String(h.pid), try Guests.probe(), "chdir", "/tmp"])
        #expect(try mover.value("cwd") == "/tmp")
        let other = values(try h.join(["cwd"]).stdout)
        #expect(other["uid"] == String(getuid()), "setuid in one process did not change another")
        #expect(other["cwd"] == FileManager.default.currentDirectoryPath, "chdir in one did not move another")
        for p in [setuid, closer, mover] { p.terminate() }
        try h.finish()                                // still writes to its stdout
    }

    @Test func signalMaskNeverBlocksSIGSYS() throws {
        for variant in Guests.Variant.allCases {
            let r = try Run.colo([try Guests.probe(variant), "sigmask"])
            let v = values(r.stdout)
            #expect(r.status == 0, "\(variant): \(r.stderr)")
            #expect(v["sigsys_blocked"] == "0" && v["usr1_blocked"] == "1", "\(variant)")
            #expect(v["mmap_slot_ok"] == "1")
            #expect(v["handler_mask_sigsys"] == "0")
            #expect(v["sigaction_sigsys"] == "OK" && v["sigsys_handler_recorded"] == "1")
            #expect(v["malloc_after"] == "1")
        }
    }

    @Test func aGuestSeccompFilterCombinesWithOurs() throws {
        let h = try Holder()
        let v = values(try h.join(["seccomp"]).stdout)
        #expect(v["seccomp"] == "OK")
        #expect(v["getppid"] == "EPERM", "the guest's own filter applies to it")
        #expect(v["malloc_ok"] == "1", "our emulation still works under it")
        #expect(values(try h.join(["info"]).stdout)["ppid"] != nil, "other processes are unaffected")
        try h.finish()
    }

    @Test func runtimeDeathKillsEveryMember() throws {
        let h = try Holder()
        let joined = try Background([Run.colo, "--join", String(h.pid), try Guests.probe(), "sleep", "60"])
        let jpid = pid_t(try joined.value("pid"))!
        kill(h.bg.pid, SIGKILL)                      // the runtime
        #expect(eventually { isGone(h.pid) && isGone(jpid) }, "no orphans left behind")
    }

    @Test func exitedProcessReleasesItsMappings() throws {
        let h = try Holder()
        let r = try h.join(["heap", "2000"])
        #expect(r.status == 0)
        let v = values(try h.join(["info"]).stdout)
        let maps = try String(contentsOfFile: "/proc/\(h.pid)/maps", encoding: .utf8)
        let ownSlot = UInt64(h.addr, radix: 16)! >> 36
        let liveSlots = Set(maps.split(separator: "\n").compactMap { UInt64($0.prefix { $0 != "-" }, radix: 16) }
            .map { $0 >> 36 }.filter { $0 >= 0x100 && $0 < 0x200 })
        #expect(liveSlots == [ownSlot], "only the holder's slot is still mapped (the exited ones' slot \(v["slot"] ?? "?") is free)")
        try h.finish()
    }
}
