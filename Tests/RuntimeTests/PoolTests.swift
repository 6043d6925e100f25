// Service pools (copool(3), Sources/GuestAPI/copool.c) run colocated.
import Foundation
import Glibc
import Testing

/// Service pools (copool(3), Sources/GuestAPI/copool.c) run colocated: C guest
/// programs (Tests/Guests/copool_guest.c) with checksummed payloads, every
/// call counted by the pool per (caller, sequence number), per strategy.
@Suite(.serialized) struct PoolTests {
    /// copool_guest linked with the guest library's sources, copool.c included.
    static func guest() throws -> String {
        Guests.lock.lock(); defer { Guests.lock.unlock() }
        let key = "copool_guest-pool"
        if let p = Guests.built[key] { return p }
        let out = Guests.buildDir + "/" + key
        let api = Guests.apiDir
        let r = try Run.capture(["cc", "-O1", "-static-pie", "-pthread", "-I", api + "/include", "-I", api + "/../ABI/include",
                                 Guests.sourceDir.appendingPathComponent("copool_guest.c").path,
                                 api + "/colo.c", api + "/syscall.c", api + "/copool.c", "-o", out])
        guard r.status == 0 else { throw TestFailure("building copool_guest failed: \(r.stderr)") }
        Guests.built[key] = out
        return out
    }

    /// An address space held by an idle probe (ended with SIGUSR1), and its PID.
    final class Space {
        let holder: Background
        let pid: String
        init() throws {
            holder = try Background([Run.colo, try Guests.probe(), "hold"])
            pid = try holder.value("pid")
        }
        func join(_ argv: [String], timeout: Double = 120) throws -> Run.Result {
            try Run.colo(["--join", pid] + argv, timeout: timeout)
        }
        func start(_ argv: [String]) throws -> Background {
            try Background([Run.colo, "--join", pid] + argv)
        }
        deinit { kill(pid_t(pid)!, SIGUSR1); _ = holder.wait() }
    }

    /// A pool of `threads` members serving as `name` in `space`.
    static func serve(_ space: Space, _ name: String, threads: Int, slow: Bool = false) throws -> Background {
        let s = try space.start([try guest(), "serve", name, String(threads)] + (slow ? ["slow"] : []))
        try s.waitFor { $0 == "ready" }
        return s
    }

    /// Every call made was served exactly once and answered with the right payload.
    static func expectExactlyOnce(_ v: [String: String], calls: Int, _ context: String) {
        for (k, want) in [("calls", calls), ("served", calls), ("once", calls), ("wrong", 0), ("errors", 0),
                          ("missing", 0), ("duplicated", 0), ("bad", 0), ("member_mismatch", 0)] {
            #expect(v[k] == String(want), "\(context): \(k)=\(v[k] ?? "nil"), want \(want): \(v)")
        }
    }

    @Test func poolInOneProcessThenDestroy() throws {
        let r = try Run.colo([try Self.guest(), "selftest", "3"], timeout: 120)
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        let v = values(r.stdout)
        #expect(v["nthreads"] == "3" && v["distinct_targets"] == "1" && v["published_is_member0"] == "1", "\(r.stdout)")
        #expect(v["discovered"] == "3", "copool_open finds every member through the published target")
        for (p, calls) in [("rr.", 1000), ("ff.", 900)] {
            let sub = Dictionary(uniqueKeysWithValues: v.filter { $0.key.hasPrefix(p) }.map { (String($0.key.dropFirst(p.count)), $0.value) })
            Self.expectExactlyOnce(sub, calls: calls, p)
        }
        #expect(v["rr.per_member"] == "334,333,333", "round-robin spreads evenly: \(r.stdout)")
        #expect(v["destroy"] == "0")
        #expect(r.stdout.contains("after_destroy=-1 errno=ENOLINK"), "a stopped pool answers ENOLINK: \(r.stdout)")
    }

    @Test func outsideAnAddressSpaceCreateFailsWithENOSYS() throws {
        let r = try Run.capture([try Self.guest(), "selftest", "2"])
        #expect(r.status == 1 && r.stderr == "copool_create: Function not implemented\n", "\(r.stdout) \(r.stderr)")
    }

    @Test(arguments: ["affinity", "roundrobin", "firstfree"])
    func twoCallersAgainstTwoThreads(strategy: String) throws {
        let space = try Space()
        let pool = try Self.serve(space, "pool-\(strategy)", threads: 2)
        defer { pool.terminate(); _ = pool.wait() }
        let r = try space.join([try Self.guest(), "call", "pool-\(strategy)", strategy, "2", "2000"])
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        let v = values(r.stdout)
        #expect(v["members"] == "2", "\(r.stdout)")
        Self.expectExactlyOnce(v, calls: 4000, strategy)
        switch strategy {
        case "affinity":
            #expect(v["members_used"] == "2", "both members served: \(r.stdout)")
            #expect(v["affinity_ok"] == "1", "each caller thread stays on its own member")
            #expect(v["per_member"] == "2000,2000", "\(r.stdout)")
        case "roundrobin":
            #expect(v["members_used"] == "2", "both members served: \(r.stdout)")
            #expect(v["per_member"] == "2000,2000", "\(r.stdout)")
        default:
            // Which members: a matter of timing (the second member only when calls overlap).
            let counts = (v["per_member"] ?? "").split(separator: ",").compactMap { Int($0) }
            #expect(counts.count == 2 && counts.reduce(0, +) == 4000, "\(r.stdout)")
        }
    }

    @Test func firstFreeWithOneCallerStaysOnMemberZero() throws {
        let space = try Space()
        let pool = try Self.serve(space, "pool-ff1", threads: 3)
        defer { pool.terminate(); _ = pool.wait() }
        let r = try space.join([try Self.guest(), "call", "pool-ff1", "firstfree", "1", "500"])
        let v = values(r.stdout)
        Self.expectExactlyOnce(v, calls: 500, "firstfree, one caller")
        #expect(v["per_member"] == "500,0,0", "member 0 is always free for a lone caller: \(r.stdout)")
    }

    @Test func manyCallersSlowPathOnePoolThread() throws {
        let space = try Space()
        let pool = try Self.serve(space, "pool-slow", threads: 1, slow: true)
        defer { pool.terminate(); _ = pool.wait() }
        let r = try space.join([try Self.guest(), "call", "pool-slow", "roundrobin", "4", "300", "slow"])
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        let v = values(r.stdout)
        #expect(v["members"] == "1")
        Self.expectExactlyOnce(v, calls: 1200, "4 callers queued on one slow member")
    }

    @Test func slowClientsOfAFastPoolFallBackToTheSwitcher() throws {
        // cocall_slow against members waiting in the switcher's coaccept: the
        // library (or, failing that, the handle: EPROTOTYPE) calls through the switcher.
        let space = try Space()
        let pool = try Self.serve(space, "pool-mixed", threads: 2)
        defer { pool.terminate(); _ = pool.wait() }
        let r = try space.join([try Self.guest(), "call", "pool-mixed", "roundrobin", "2", "300", "slow"])
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        Self.expectExactlyOnce(values(r.stdout), calls: 600, "slow callers, fast pool")
    }

    @Test func aTargetThatIsNotAPoolIsAPoolOfOne() throws {
        let space = try Space()
        let pong = try space.start([Tools.path("copong"), "notapool"])
        defer { pong.terminate(); _ = pong.wait() }
        usleep(300_000)
        let r = try space.join([try Self.guest(), "plain", "notapool"])
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        #expect(r.stdout.contains("members=1\n"), "\(r.stdout)")
        #expect(r.stdout.contains("received=32 echo=1 lastmember=0"), "copong echoes through the handle: \(r.stdout)")
    }

    @Test func aPoolIsReachedByPlainCallersThroughItsPublishedTarget() throws {
        // coping(1) knows nothing of pools: colookup + cocall reach member 0.
        let space = try Space()
        let pool = try Self.serve(space, "pool-plain", threads: 2)
        defer { pool.terminate(); _ = pool.wait() }
        let r = try space.join([Tools.path("coping"), "-v", "-c", "3", "-s", "0", "pool-plain"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(lines(r.stdout, matching: #"coping: returned from "pool-plain" after .*"#).count == 3, "\(r.stdout)")
    }

    @Test func swiftWrapperCoPool() throws {
        let coswift = URL(fileURLWithPath: Run.colo).deletingLastPathComponent().appendingPathComponent("coswift").path
        let r = try Run.colo([coswift, "pool", "3", "30"])
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        #expect(r.stdout.contains("pool_members=3 published_is_member0=true"), "\(r.stdout)")
        #expect(r.stdout.contains("rr_discovered=3 rr_good=30 rr_order_ok=true"), "\(r.stdout)")
        #expect(r.stdout.contains("ff_good=30"), "\(r.stdout)")
        #expect(r.stdout.contains("after_stop=true"), "\(r.stdout)")
    }
}
