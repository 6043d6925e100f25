// One address space, several real processes.
import Foundation
import Glibc
import Testing
@testable import Runtime

/// One address space, several real processes: identity, memory placement, exit status.
@Suite(.serialized) struct ColocationTests {
    @Test(arguments: Guests.Variant.allCases)
    func runsAloneInItsOwnSlot(_ variant: Guests.Variant) throws {
        let probe = try Guests.probe(variant)
        let r = try Run.colo([probe, "info", "hello world"])
        #expect(r.status == 0, "\(r.stderr)")
        let v = values(r.stdout)
        let slot = try #require(v["slot"])
        #expect(UInt64(slot, radix: 16).map { $0 >= 0x100 && $0 < 0x200 } == true, "stack lies in the slot region")
        #expect(v["code_slot"] == slot)
        #expect(v["heap_slot"] == slot)
        #expect(v["mmap_slot"] == slot)
        #expect(v["arg2"] == "hello world")
        #expect(v["AT_CAPC"] == "0")
        #expect(v["AT_PAGESZ"] == "4096")
        #expect(v["AT_EXECFN"] == probe)
        #expect((v["AT_BASE"] == "0") == (variant != .dynamicGlibc), "AT_BASE is 0 only for static-pie")
        #expect(v["pid"] != nil && v["pid"] != v["ppid"])
    }

    @Test(arguments: Guests.Variant.allCases)
    func exitStatusIsTheCommands(_ variant: Guests.Variant) throws {
        let probe = try Guests.probe(variant)
        #expect(try Run.colo([probe, "exit", "7"]).status == 7)
        #expect(try Run.colo([probe, "exit_group", "9"]).status == 9)
        #expect(try Run.colo([probe, "segv"]).status == 128 + SIGSEGV)
    }

    /// The command `colo` starts sees the descriptors its shell gave colo, as natively: the
    /// inherited ones (here 7), none of the runtime's or its agent's (close-on-exec: the
    /// agent's socket, the files a start is mapped from).
    @Test func theCommandSeesExactlyTheInheritedDescriptors() throws {
        let list = "ls /proc/self/fd 7</dev/null"
        let native = try Run.capture(["/bin/sh", "-c", list])
        let colocated = try Run.capture(["/bin/sh", "-c", "'\(Run.colo)' " + list])
        #expect(native.status == 0 && native.stdout.split(separator: "\n").contains("7"), "positive control: \(native.stdout)")
        #expect(colocated.status == 0 && colocated.stdout == native.stdout,
                "colocated \(colocated.stdout) vs native \(native.stdout) \(colocated.stderr)")
    }

    @Test func freshRandomPerProcess() throws {
        let probe = try Guests.probe()
        let a = values(try Run.colo([probe, "info"]).stdout)["AT_RANDOM"]
        let b = values(try Run.colo([probe, "info"]).stdout)["AT_RANDOM"]
        #expect(a != nil && a != b)
    }

    @Test func threeVariantsShareOneAddressSpace() throws {
        let first = try Background([Run.colo, try Guests.probe(.staticGlibc), "hold"])
        let firstPID = pid_t(try first.value("pid"))!
        var pids = [firstPID]
        let slotOf = { (addr: String) in (UInt64(addr, radix: 16) ?? 0) >> 36 }
        var slots: Set<UInt64> = [slotOf(try first.value("addr"))]
        var joined = [Background]()
        for variant in [Guests.Variant.staticMusl, .dynamicGlibc] {
            let g = try Background([Run.colo, "--join", String(firstPID), try Guests.probe(variant), "hold"])
            let pid = pid_t(try g.value("pid"))!
            pids.append(pid)
            #expect(shareAddressSpace(pid, firstPID), "\(variant) joined the address space of \(firstPID)")
            slots.insert(slotOf(try g.value("addr")))
            joined.append(g)
        }
        #expect(Set(pids).count == 3, "three distinct PIDs")
        #expect(slots.count == 3 && !slots.contains(0), "three live processes, three slots: \(slots)")
        for (g, pid) in zip(joined, pids.dropFirst()) {
            kill(pid, SIGUSR1)
            #expect(try g.value("content") == "intact")
            #expect(g.wait() == 0)
        }
        #expect(!shareAddressSpace(parent(of: firstPID), firstPID), "the runtime, the command's parent, lives outside the address space")
        #expect(!shareAddressSpace(first.pid, firstPID), "colo's own process, which the shell waits for, is not")
        #expect(try Run.colo(["--join", String(firstPID), try Guests.probe(), "exit", "5"]).status == 5)
        kill(firstPID, SIGUSR1)
        #expect(first.wait() == 0)
    }

    @Test func joinUnknownProcessFails() throws {
        let r = try Run.colo(["--join", "999999", try Guests.probe(), "info"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("no colocated process 999999"))
    }

    @Test func heapAndMappingsStayInTheSlot() throws {
        for variant in Guests.Variant.allCases {
            let r = try Run.colo([try Guests.probe(variant), "heap", "3000"])
            #expect(r.status == 0, "\(variant): \(r.stdout) \(r.stderr)")
            let v = values(r.stdout)
            #expect(v["bad"] == "0")
            #expect(v["brk_grew"] == "1", "\(variant) grew its emulated brk")
        }
    }

    @Test func aSwiftProgramRunsColocated() throws {
        let dir = Guests.buildDir
        let src = dir + "/hello.swift"
        try "import Glibc\nprint(\"swift pid\", getpid())\nexit(3)\n".data(using: .utf8)!.write(to: URL(fileURLWithPath: src))
        let bin = dir + "/hello-swift"
        let b = try Run.capture(["swiftc", "-module-name", "hello", src, "-o", bin], timeout: 300)
        try #require(b.status == 0, "\(b.stderr)")
        let r = try Run.colo([bin])
        #expect(r.status == 3, "\(r.stderr)")
        #expect(r.stdout.hasPrefix("swift pid "))
    }

    @Test func nonPIEProgramRunsNatively() throws {
        let src = Guests.sourceDir.appendingPathComponent("probe.c").path
        let bin = Guests.buildDir + "/probe-nopie"
        try #require(try Run.capture(["cc", "-O1", "-no-pie", src, "-o", bin]).status == 0)
        let r = try Run.colo([bin, "info"])
        #expect(r.status == 0, "\(r.stderr)")
        let slot = try #require(UInt64(values(r.stdout)["slot"] ?? "", radix: 16), "the program ran: \(r.stdout)")
        #expect(slot >= 0x200 || slot < 0x100, "a non-PIE program is not placed in a slot")
    }

    @Test func missingCommandGives127() throws {
        let r = try Run.colo(["/nonexistent/program"])
        #expect(r.status == 127)
        #expect(r.stderr.contains("No such file or directory"))
    }
}
