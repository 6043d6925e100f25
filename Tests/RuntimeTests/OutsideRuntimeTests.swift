// The runtime outside the address space it serves: its memory is out of the guests' reach, the in-mm agent does what needs the mm, and a guest that scribbles over everything outside its slot cannot take the runtime down.
import Foundation
import Glibc
import Testing
@testable import Runtime

@Suite(.serialized) struct OutsideRuntimeTests {
    /// The `Seccomp:` line of /proc/PID/status.
    func seccompMode(_ pid: pid_t) -> String? {
        (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("Seccomp:") }
            .map { $0.dropFirst("Seccomp:".count).trimmingCharacters(in: .whitespaces) }
    }

    /// The runtime is its own mm with no filter of ours; the members share another mm, the
    /// agent's, whose mappings hold none of the runtime's libraries or heap.
    @Test func theRuntimeIsNotInTheAddressSpace() throws {
        let holder = try Background([Run.colo, try Guests.probe(.dynamicGlibc), "hold"])
        defer { holder.terminate() }
        let member = pid_t(try holder.value("pid"))!
        let runtime = parent(of: member)
        #expect(!shareAddressSpace(member, runtime), "the member's mm is not the runtime's")
        #expect(seccompMode(runtime) == "0", "the runtime carries no filter")
        #expect(seccompMode(member) == "2", "the member does")
        let space = try #require(SpaceDirectory.space(containing: member))
        let agent = space.table.mmPID
        #expect(agent != runtime && shareAddressSpace(agent, member), "the table names a process of the members' mm: the agent")
        #expect(parent(of: agent) == runtime)
        let maps = try #require(readFile("/proc/\(member)/maps"))
        let runtimeMaps = try #require(readFile("/proc/\(runtime)/maps"))
        #expect(runtimeMaps.contains("libswiftCore.so") || runtimeMaps.contains("libc.so"),
                "positive control: the runtime (\(runtime), parent of \(member)) maps its libraries: \(runtimeMaps.prefix(3000))")
        #expect(!maps.contains("libswiftCore.so") && !maps.contains("libFoundation"), "the runtime's Swift libraries are not in the address space")
        #expect(!maps.contains("[heap]"), "nor its heap")
        // The guest's own libc (it is dynamically linked) is; the runtime's copy is not.
        let libcLines = maps.split(separator: "\n").filter { $0.contains("/libc.so") }
        #expect(!libcLines.isEmpty && libcLines.allSatisfy { Layout.slot(containing: UInt64($0.prefix { $0 != "-" }, radix: 16)!) != nil },
                "every libc mapping of the address space is in a slot: \(libcLines)")
        kill(member, SIGUSR1)
        #expect(holder.wait() == 0)
    }

    /// A guest that writes over every writable byte of its mm outside its own slot (other
    /// slots, process table, capability table, SCB area, slot headers, trace ring, the
    /// handler's data, the agent's stack): the runtime lives on, reports the guest's status,
    /// and ends when the address space has no process left.
    @Test func aScribblingGuestCannotTakeTheRuntimeDown() throws {
        let scribble = try Guests.build("scribble", .staticGlibc)
        let r = try Run.colo([scribble], timeout: 60)
        #expect(r.status == 7, "colo reports the scribbler's own status: \(r.stdout) \(r.stderr)")
        let counted = r.stdout.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        #expect(counted >= 5, "it found the shared structures to write over: \(r.stdout)")
        #expect(!r.stderr.contains("Fatal") && !r.stderr.contains("Segmentation"), "\(r.stderr)")
    }

    /// Scribbling while others run: another member of the same address space may die of it
    /// (its handler's memory is gone, as on a machine without CHERI), but the runtime answers
    /// for it with its status, and another address space is untouched.
    @Test func aScribbleReachesNoOtherAddressSpace() throws {
        let other = try Background([Run.colo, try Guests.probe(), "hold"])
        defer { other.terminate() }
        let otherPID = pid_t(try other.value("pid"))!
        let shell = try Background([Run.colo, "/bin/sh", "-c", "\(try Guests.build("scribble", .staticGlibc)); echo status=$?; exit 3"])
        let status = shell.wait()
        #expect(status == 3 || status == 128 + SIGSEGV, "the shell's status comes back, whether or not it survived: \(status)")
        // The other address space's holder still has its page and still gets its calls served.
        #expect(try Run.colo(["--join", String(otherPID), try Guests.probe(), "exit", "5"]).status == 5)
        kill(otherPID, SIGUSR1)
        #expect(try other.value("content") == "intact")
        #expect(other.wait() == 0)
    }

    /// Killing the agent: the runtime notices, the members it can no longer serve are killed
    /// (nothing is left behind), and colo returns the command's status.
    @Test func killingTheAgentEndsTheAddressSpaceCleanly() throws {
        let holder = try Background([Run.colo, try Guests.probe(), "hold"])
        let member = pid_t(try holder.value("pid"))!
        let space = try #require(SpaceDirectory.space(containing: member))
        let agent = space.table.mmPID
        let runtime = space.table.runtimePID
        try #require(agent != runtime)
        kill(agent, SIGKILL)
        #expect(holder.wait() == 128 + SIGKILL, "the member is killed with its agent")
        #expect(eventually(timeout: 10) { kill(runtime, 0) != 0 }, "and the runtime ends")
    }

    /// The runtime follows no pointer a guest wrote: a forged `caller` in the guest's own SCB
    /// makes cogetpid answer ESRCH, and the runtime goes on serving.
    @Test func aForgedSCBPointerIsNotFollowed() throws {
        let r = try Run.colo([try Guests.buildWithAPI("scb_forge")])
        let v = values(r.stdout)
        try #require(v["scb"] == "found", "the switcher is offered here: \(r.stdout) \(r.stderr)")
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        #expect(v["control"] == "ESRCH", "positive control: serving nobody")
        for name in ["noncanonical", "low", "misaligned", "log", "outside"] {
            #expect(v[name] == "ESRCH", "\(name): \(v[name] ?? "nil")")
        }
        #expect(v["after"] == "ESRCH", "the runtime still serves")
    }

    /// Code that runs in the address space without a libc (the SIGSYS handler, the switcher,
    /// the agent) must not call into one: the runtime's libraries are not mapped there.
    @Test func guestSideCodeNeedsNoLibrary() throws {
        let linkerSymbols: Set<String> = ["__executable_start", "etext", "_GLOBAL_OFFSET_TABLE_"]
        // The switcher and the guest shim (Sources/Switcher, Sources/GuestShim).
        for (target, least) in [("Switcher", 4), ("GuestShim", 12)] {
            let objects = URL(fileURLWithPath: Tools.binDir).appendingPathComponent("\(target).build").path
            let files = try FileManager.default.contentsOfDirectory(atPath: objects).filter { $0.hasSuffix(".o") }
            #expect(files.count >= least, "positive control: \(target)'s objects are where the build puts them")
            for f in files {
                let r = try Run.capture(["nm", "-u", objects + "/" + f])
                let undefined = r.stdout.split(separator: "\n").compactMap { $0.split(separator: " ").last.map(String.init) }
                    .filter { !$0.hasPrefix("colo_") && !linkerSymbols.contains($0) }
                #expect(undefined.isEmpty, "\(target)/\(f) calls outside the guest-side code: \(undefined)")
            }
        }
    }
}
