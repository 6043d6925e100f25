// FilterCacheTests.swift - the seccomp program decides every call it always allows from the architecture and the number alone, so the kernel's action cache skips it.
import Foundation
import Glibc
import Testing
@testable import Runtime

/// The address space's seccomp program (Sources/GuestShim/filter.c), run by
/// Tests/Guests/filter_cache.c: the kernel's action-cache emulation per number
/// (kernel/seccomp.c, seccomp_is_const_allow: only arch and nr are known), and
/// the program's decision for instruction pointers outside the slot region and
/// in three slots, with three sets of arguments each.
@Suite struct FilterCacheTests {
    struct Decisions {
        var numbers = [String: Int]()
        var samples = [String]()
        var cached = [Int: Bool]()
        var actions = [Int: [String]]()

        /// The number of a call the helper names ("brk", "coexecve": <sys/syscall.h>, colo_abi.h).
        func nr(_ name: String) -> Int { numbers[name] ?? -1 }
        /// The decisions of call `nr` for the samples whose instruction pointer is `ip` ("slot0", ...).
        func at(_ nr: Int, _ ip: String) -> [String] {
            zip(samples, actions[nr] ?? []).filter { $0.0.hasPrefix(ip + "/") }.map(\.1)
        }
        func at(_ name: String, _ ip: String) -> [String] { at(nr(name), ip) }
    }

    static let outside = ["low", "runtime", "library"]
    static let inside = ["slot0", "slot100", "slot_last"]

    /// Calls that need the SIGSYS handler from inside the slot region, whatever their arguments.
    static let trapped = ["brk", "rt_sigaction", "mremap", "shmat", "fork", "vfork", "execve", "wait4", "waitid", "readlink", "readlinkat",
                          "execveat", "rt_sigsuspend"]
    /// Memory calls: native when their range lies in the caller's own slot (mmap only with MAP_FIXED).
    static let ranged = ["mmap", "mprotect", "munmap", "msync", "madvise", "mlock", "munlock", "remap_file_pages",
                         "mbind", "mlock2", "pkey_mprotect"]
    /// Refused with ENOSYS from inside (libc falls back).
    static let refused = ["rseq", "clone3"]
    /// Decided by their arguments.
    static let byArguments = ["clone", "rt_sigprocmask"]

    /// Built and run once for every test of the suite.
    static let run = Result<Decisions, any Error> { try load() }
    static func decisions() throws -> Decisions { try run.get() }

    static func load() throws -> Decisions {
        let root = Guests.sourceDir.deletingLastPathComponent().deletingLastPathComponent()
        let shim = root.appendingPathComponent("Sources/GuestShim").path
        let sources = root.appendingPathComponent("Sources").path
        let exe = Guests.buildDir + "/filter_cache"
        let b = try Run.capture(["cc", "-O1", "-I", shim + "/include", "-I", shim, "-I", sources + "/Switcher/include",
                                 "-I", sources + "/ABI/include",
                                 Guests.sourceDir.appendingPathComponent("filter_cache.c").path,
                                 shim + "/filter.c", shim + "/bpf.c", "-o", exe])
        guard b.status == 0 else { throw TestFailure("building filter_cache failed: \(b.stderr)") }
        let r = try Run.capture([exe])
        guard r.status == 0 else { throw TestFailure("filter_cache: \(r.stdout) \(r.stderr)") }
        var d = Decisions()
        for line in r.stdout.split(separator: "\n") {
            let f = line.split(separator: " ").map(String.init)
            if f.first == "samples" { d.samples = Array(f.dropFirst()); continue }
            if f.first == "call", f.count == 3 { d.numbers[f[1]] = Int(f[2]); continue }
            guard f.count >= 2, let nr = Int(f[0]) else { continue }
            d.cached[nr] = f[1] == "1"
            d.actions[nr] = Array(f.dropFirst(2))
        }
        guard d.samples.count == 18, d.cached.count == 512 + 1001 else { throw TestFailure("filter_cache: \(r.stdout)") }
        return d
    }

    /// The cache allows exactly the calls the program allows from everywhere
    /// with any arguments: each of them reaches ALLOW from arch and nr alone.
    @Test func theCacheCoversEveryAlwaysAllowedCall() throws {
        let d = try Self.decisions()
        for nr in 0..<512 {
            let always = d.actions[nr]!.allSatisfy { $0 == "allow" }
            #expect(d.cached[nr] == always, "call \(nr): cached \(d.cached[nr]!), decisions \(d.actions[nr]!)")
        }
        for name in ["getppid", "read", "write", "futex", "getpid", "close", "openat", "fstat", "clock_gettime",
                     "nanosleep", "sched_yield", "exit_group", "gettid", "tgkill"] {
            #expect(d.cached[d.nr(name)] == true, "\(name) is not cacheable")
        }
    }

    /// Only the calls the colocation needs look at where they come from (and
    /// a newer header's memory call, which behaves like mprotect).
    @Test func onlyTheColocationsCallsAreUncached() throws {
        let d = try Self.decisions()
        let named = Set((Self.trapped + Self.ranged + Self.refused + Self.byArguments).map(d.nr))
        let uncached = Set((0..<512).filter { d.cached[$0] == false })
        #expect(named.isSubset(of: uncached), "\(named.subtracting(uncached).sorted()) became cacheable")
        for nr in uncached.subtracting(named) {
            #expect(d.actions[nr] == d.actions[d.nr("mprotect")], "call \(nr): \(d.actions[nr]!)")
        }
        #expect(uncached.count <= named.count + 1)
    }

    /// Outside the slot region every call is allowed but the colocation calls,
    /// which go to the runtime.
    @Test func callsFromOutsideTheSlotRegion() throws {
        let d = try Self.decisions()
        for ip in Self.outside {
            for nr in 0..<512 { #expect(d.at(nr, ip) == ["allow", "allow", "allow"], "call \(nr) from \(ip)") }
            for nr in 1000...1999 { #expect(d.at(nr, ip) == ["notif", "notif", "notif"], "call \(nr) from \(ip)") }
            #expect(d.at(2000, ip) == ["allow", "allow", "allow"])
        }
    }

    /// Inside a slot: the same decisions as before the decision tree.
    @Test func callsFromInsideASlot() throws {
        let d = try Self.decisions()
        for ip in Self.inside {
            for name in Self.trapped { #expect(d.at(name, ip) == ["trap", "trap", "trap"], "\(name) from \(ip)") }
            for name in Self.ranged { #expect(d.at(name, ip) == ["trap", "trap", "allow"], "\(name) from \(ip)") }
            for name in Self.refused {
                #expect(d.at(name, ip) == Array(repeating: "errno\(ENOSYS)", count: 3), "\(name) from \(ip)")
            }
            // clone without CLONE_VM (zero, own) or with CLONE_VFORK (ones): the handler.
            #expect(d.at("clone", ip) == ["trap", "trap", "trap"])
            // rt_sigprocmask(SIG_BLOCK, NULL) cannot block SIGSYS; a set can.
            #expect(d.at("rt_sigprocmask", ip) == ["allow", "trap", "trap"])
            #expect(d.at("getppid", ip) == ["allow", "allow", "allow"])
            for nr in 1000...1999 {
                // colo_syscalls.def's calls served in the guest go to the handler from a slot.
                let handler = SyscallTable.entries[Int32(nr)]?.servedInGuest == true
                #expect(d.at(nr, ip) == Array(repeating: handler ? "trap" : "notif", count: 3), "call \(nr) from \(ip)")
            }
            #expect(d.at(2000, ip) == ["allow", "allow", "allow"])
        }
    }

    /// The live filter: a colocated process runs under one seccomp filter
    /// (/proc/self/status), and its getppid, read, write and futex work.
    @Test func aColocatedProcessCarriesTheFilter() throws {
        let exe = try Guests.build("syscall_bench", .staticGlibc)
        let r = try Run.colo([exe, "1000", "1"])
        #expect(r.status == 0, "\(r.stderr)")
        let v = Dictionary(r.stdout.split(separator: "\n").map { $0.split(separator: "=", maxSplits: 1).map(String.init) }
            .filter { $0.count == 2 }.map { ($0[0], $0[1]) }, uniquingKeysWith: { a, _ in a })
        #expect(v["seccomp"] == "2" && v["seccomp_filters"] == "1", "\(r.stdout)")
        for call in ["getppid", "read", "write", "futex"] { #expect(v[call + "_ns"] != nil, "\(r.stdout)") }
    }
}
