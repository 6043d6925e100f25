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

    @Test func namesStayInTheAddressSpaceTheyWereRegisteredIn() throws {
        let r = try Run.colo([try Self.guest(), "isolation"])
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        let v = values(r.stdout)
        #expect(v["parent_lookup"] == "ESRCH", "the child's name is not the parent's: \(r.stdout)")
        #expect(v["child_lookup"] == "ESRCH", "nor the parent's, registered after the fork, the child's")
        #expect(r.stdout.contains("child status 0"))
    }

    /// The runtime the child was forked from holds the listener its calls arrive on: when it
    /// is killed, the child's runtime sees its relay close and waits, idle, for its members.
    @Test func aChildsRuntimeStaysIdleWhenTheRuntimeItWasForkedFromDies() throws {
        let bg = try Background([Run.colo, try Self.guest(), "hold"])
        _ = try bg.waitFor { $0 == "ready" }
        let p = pid_t(try bg.value("parent"))!, c = pid_t(try bg.value("server"))!
        let home = try #require(SpaceDirectory.space(containing: p)).table.runtimePID
        let own = try #require(SpaceDirectory.space(containing: c)).table.runtimePID
        func cpuTicks(_ pid: pid_t) -> Int {
            let f = statFields(pid)             // [11] utime, [12] stime
            return f.count > 12 ? (Int(f[11]) ?? 0) + (Int(f[12]) ?? 0) : -1
        }
        kill(home, SIGKILL)
        #expect(eventually { kill(p, 0) != 0 }, "the watchdog killed the parent, in the dead runtime's mm")
        let before = cpuTicks(own)
        usleep(1_000_000)
        let used = cpuTicks(own) - before
        #expect(before >= 0 && used < 20, "the child's runtime spent \(used) ticks of 100 in a second")
        #expect(kill(c, 0) == 0, "the child, in its own mm, lives on")
        kill(c, SIGTERM)
        // Gone, or a zombie of whoever adopted it once its subreaper died.
        #expect(eventually { kill(own, 0) != 0 || statFields(own).first == "Z" }, "its runtime ends with its last member")
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
