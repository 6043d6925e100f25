// `colo ps` and `colo procstat -v`, parsed and checked against the processes started.
import Foundation
import Glibc
import Testing
@testable import Runtime

/// `colo ps` and `colo procstat -v`, parsed and checked against the processes started.
@Suite(.serialized) struct ViewTests {
    struct PsRow { let pid: pid_t; let ppid: pid_t; let vmaddr: String; let command: String }

    /// Parse `colo ps` by its header's columns (COMMAND is last and may contain spaces).
    func ps(_ args: [String] = []) throws -> [PsRow] {
        let r = try Run.colo(["ps"] + args)
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        let header = try #require(lines.first)
        #expect(header.split(separator: " ", omittingEmptySubsequences: true) ==
                ["USER", "PID", "PPID", "STAT", "WCHAN", "VSZ", "RSS", "STARTED", "TIME", "VMADDR", "COMMAND"])
        let cmdCol = try #require(header.range(of: "COMMAND")).lowerBound.utf16Offset(in: header)
        return lines.dropFirst().map { line in
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            let cmd = String(line.dropFirst(cmdCol))
            return PsRow(pid: pid_t(f[1])!, ppid: pid_t(f[2])!, vmaddr: String(f[9]), command: cmd)
        }
    }

    @Test func psShowsOneVmaddrPerAddressSpace() throws {
        let probe = try Guests.probe()
        let a = try Background([Run.colo, probe, "hold"])
        let apid = pid_t(try a.value("pid"))!
        let b = try Background([Run.colo, "--join", String(apid), try Guests.probe(.dynamicGlibc), "sleep", "30"])
        let bpid = pid_t(try b.value("pid"))!
        let other = try Background([Run.colo, probe, "sleep", "30"])
        let opid = pid_t(try other.value("pid"))!

        let rows = try ps()
        let ra = try #require(rows.first { $0.pid == apid })
        let rb = try #require(rows.first { $0.pid == bpid })
        // colo's own process ends with the command; the runtime is the command's parent.
        let runtime = parent(of: apid)
        #expect(runtime != a.pid && runtime > 1)
        let rr = try #require(rows.first { $0.pid == runtime })
        let ro = try #require(rows.first { $0.pid == opid })
        #expect(ra.vmaddr == rb.vmaddr && ra.vmaddr == rr.vmaddr, "colocated processes share a VMADDR")
        #expect(ro.vmaddr != ra.vmaddr, "another address space has another VMADDR")
        #expect(ra.command == "\(probe) hold", "command line as the process executed it")
        #expect(rb.command.hasSuffix("probe-dynamic-glibc sleep 30"))
        #expect(rr.command == "[colo runtime]")
        #expect(ra.ppid == runtime, "the runtime is the parent")
        for r in rows where r.vmaddr == ra.vmaddr && r.pid != runtime { #expect(shareAddressSpace(r.pid, apid)) }
        #expect(!shareAddressSpace(runtime, apid), "the runtime lives outside the address space it serves")

        let multi = try Background([Run.colo, "--join", String(apid), probe, "sleep", "30", "two\nlines"])
        let mpid = pid_t(try multi.value("pid"))!
        let withMulti = try ps([String(apid)])
        #expect(withMulti.first { $0.pid == mpid }?.command == "\(probe) sleep 30 two?lines", "control characters show as ?")
        multi.terminate()

        let only = try ps([String(opid)])
        #expect(Set(only.map(\.pid)) == [parent(of: opid), opid], "ps PID shows only that address space (its runtime and member)")

        other.terminate(); b.terminate()
        kill(apid, SIGUSR1)
        _ = a.wait()
    }

    @Test func procstatShowsOwners() throws {
        let probe = try Guests.probe()
        let a = try Background([Run.colo, probe, "hold"])
        let apid = pid_t(try a.value("pid"))!
        let dyn = try Guests.probe(.dynamicGlibc)
        let b = try Background([Run.colo, "--join", String(apid), dyn, "sleep", "30"])
        let bpid = pid_t(try b.value("pid"))!

        let r = try Run.colo(["procstat", "-v", String(bpid)])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.first?.split(separator: " ") == ["PID", "START", "END", "PRT", "RES", "PRES", "REF", "SHD", "FLAG", "TP", "PATH"])
        var owners = [String: Set<String>]()        // path -> owner PIDs
        var ownerOfHeld = ""
        let held = UInt64(try a.value("addr"), radix: 16)!
        for l in lines.dropFirst() {
            let f = l.split(separator: " ", omittingEmptySubsequences: true)
            let start = UInt64(f[1].dropFirst(2), radix: 16)!, end = UInt64(f[2].dropFirst(2), radix: 16)!
            if held >= start && held < end { ownerOfHeld = String(f[0]) }
            if f.count > 10 { owners[String(f[10]), default: []].insert(String(f[0])) }
            if f.count > 10 && f[10].hasPrefix("[") == false && String(f[0]) == "-" { Issue.record("a file mapping without owner: \(l)") }
        }
        #expect(owners[probe] == [String(apid)], "the holder's image is owned by the holder")
        #expect(owners[dyn] == [String(bpid)], "the joined program's image is owned by it")
        #expect(ownerOfHeld == String(apid), "the holder's mmap(NULL) page is owned by the holder")
        let libcOwners = owners.filter { $0.key.contains("/libc.so") }.values.reduce(Set<String>()) { $0.union($1) }
        #expect(libcOwners.contains(String(bpid)), "the dynamic guest's libc is its own: \(libcOwners)")
        let runtime = parent(of: apid)
        #expect(!libcOwners.contains(String(runtime)), "the runtime's own libraries are not in the address space: \(libcOwners)")
        #expect(owners.values.contains { $0.contains(String(runtime)) }, "the runtime owns its own mappings")

        let missing = try Run.colo(["procstat", "-v", "999999"])
        #expect(missing.status != 0 && missing.stderr.contains("No such process"))
        b.terminate()
        kill(apid, SIGUSR1)
        _ = a.wait()
    }
}
