// ForkSpaceTests: a fork child of a colocated process is an address space of its own (CheriBSD's cocall tests' pattern).
import Foundation
import Glibc
import Testing
@testable import Runtime

/// A fork child of a colocated process is an address space of its own, its only member: it
/// can cosetup, coregister, coaccept; a sibling can coexecve into it and call it, fast and
/// slow; its names are its own; colo ps shows it with its own VMADDR.  (The pattern of every
/// cocall case of CheriBSD's lib/libc/tests/sys: scripts/cheribsd-tests runs those.)
@Suite(.serialized) struct ForkSpaceTests {
    static func guest() throws -> String { try Guests.buildWithAPI("forkspace") }

    @Test(arguments: ["fast", "slow"])
    func aSiblingCoexecvesIntoAForkChildAndCallsIt(_ path: String) throws {
        let r = try Run.colo([try Self.guest(), "test", path])
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        let v = values(r.stdout)
        #expect(r.stdout.contains("called "), "100 calls answered in the child's address space: \(r.stdout)")
        #expect(r.stdout.contains("caller status 0"), "\(r.stdout)")
        #expect(r.stdout.contains("server terminated"), "the server served until killed: \(r.stdout)")
        #expect(v["server"] != nil && v["parent"] != nil)
    }

    /// The child made no colocation call: the runtime asks it to become an address space.
    @Test func coexecveIntoAForkChildThatNeverAskedForOne() throws {
        let r = try Run.colo([try Self.guest(), "lazy"])
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        let v = values(r.stdout)
        #expect(v["same_mm"] == "1", "the program runs in the child's mm: \(r.stdout)")
        #expect(v["where_pid"] != v["server"], "with a PID of its own")
        #expect(r.stdout.contains("caller status 0"), "\(r.stdout)")
    }

    /// The program a sibling coexecve()s into the child runs there with a new PID, started by
    /// the child's agent as its own child: its status still reaches the caller (the runtime
    /// reads it from a pidfd).
    @Test func aStatusComesBackFromAForkChildsAddressSpace() throws {
        let r = try Run.colo([try Self.guest(), "lazy", "3"])
        let v = values(r.stdout)
        #expect(v["same_mm"] == "1", "\(r.stdout) \(r.stderr)")
        #expect(r.stdout.contains("caller status 3"), "\(r.stdout) \(r.stderr)")
    }

    @Test func namesStayInTheAddressSpaceTheyWereRegisteredIn() throws {
        let r = try Run.colo([try Self.guest(), "isolation"])
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        let v = values(r.stdout)
        #expect(v["parent_lookup"] == "ESRCH", "the child's name is not the parent's: \(r.stdout)")
        #expect(v["child_lookup"] == "ESRCH", "nor the parent's, registered after the fork, the child's")
        #expect(r.stdout.contains("child status 0"))
    }

    /// The runtime the child was forked from holds the listener its calls arrive on and started
    /// the child's runtime: when it is killed, the child's runtime ends with it and the child's
    /// agent kills every process of the child's address space, as the home agent kills the
    /// parent's: no process outlives the runtime that served it.
    @Test func killingTheHomeRuntimeEndsTheChildsAddressSpaceToo() throws {
        let bg = try Background([Run.colo, try Self.guest(), "hold"])
        _ = try bg.waitFor { $0 == "ready" }
        let p = pid_t(try bg.value("parent"))!, c = pid_t(try bg.value("server"))!
        let home = try #require(SpaceDirectory.space(containing: p)).table.runtimePID
        let own = try #require(SpaceDirectory.space(containing: c)).table.runtimePID
        #expect(own != home && !shareAddressSpace(own, c) && !shareAddressSpace(home, c),
                "the child's runtime is a process of its own, outside the child's mm")
        let seccomp = readFile("/proc/\(own)/status")?.split(separator: "\n").first { $0.hasPrefix("Seccomp:") }
        #expect(seccomp?.split(separator: "\t").last == "0", "and carries no filter: \(seccomp ?? "?")")
        #expect(kill(c, 0) == 0 && kill(own, 0) == 0, "positive control: both alive before")
        kill(home, SIGKILL)
        #expect(eventually { kill(p, 0) != 0 }, "the parent's agent killed the parent")
        func gone(_ pid: pid_t) -> Bool { kill(pid, 0) != 0 || statFields(pid).first == "Z" }
        #expect(eventually { gone(own) }, "the child's runtime ended with the runtime that started it")
        #expect(eventually { gone(c) }, "the child's agent killed the child")
        _ = bg.wait()
    }

    @Test func coloPsShowsTheChildWithAVmaddrOfItsOwn() throws {
        let bg = try Background([Run.colo, try Self.guest(), "hold"])
        _ = try bg.waitFor { $0 == "ready" }
        let parent = try bg.value("parent"), child = try bg.value("server")
        let (p, c) = (pid_t(parent)!, pid_t(child)!)
        #expect(!shareAddressSpace(p, c), "a private mm")
        func vmaddr(_ pid: String) throws -> String? {
            let rows = try Run.colo(["ps", pid]).stdout.split(separator: "\n").dropFirst()
            return rows.map { $0.split(separator: " ", omittingEmptySubsequences: true) }
                .first { $0.count > 9 && $0[1] == pid }.map { String($0[9]) }
        }
        let pv = try vmaddr(parent), cv = try vmaddr(child)
        #expect(pv != nil && cv != nil, "both listed")
        #expect(pv != cv, "two address spaces: \(pv ?? "-") \(cv ?? "-")")
        let space = try #require(SpaceDirectory.space(containing: c))
        #expect(space.members.map(\.pid) == [c], "the child is its space's only member")
        kill(c, SIGTERM)
        kill(p, SIGTERM)
        _ = bg.wait()
    }
}
