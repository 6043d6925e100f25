// The switcher: fast cocalls that borrow the callee's context, under load, with callees that make system calls, fault, or lose their borrower.
import Foundation
import Glibc
import Testing
@testable import Runtime

/// The switcher: fast cocalls that borrow the callee's context, under load,
/// with callees that make system calls, fault, or lose their borrower.
@Suite(.serialized) struct SwitcherTests {
    /// 10^6 checksummed calls from 2 and from 8 threads of one process to a
    /// one-thread service: every reply is the right one, none lost or doubled.
    @Test(arguments: [2, 8]) func aMillionCallsFromSeveralThreads(threads: Int) throws {
        let s = try KernelService(name: "stress")
        #expect(try s.wchan(s.pid) == "copark", "the idle service's thread is parked")
        let each = 1_000_000 / threads
        let r = try s.join(["client", "stress", String(threads), String(each), "24"], timeout: 300)
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        let v = values(r.stdout)
        #expect(v["ok"] == String(threads * each) && v["bad"] == "0", "\(r.stdout)")
        #expect(v["served"] == String(threads * each), "the service saw every call once")
        #expect(v["dups"] == "0" && v["gaps"] == "0" && v["badsum"] == "0")
    }

    /// Callers using cocall and callers using cocall_slow, at the same time,
    /// against one service that accepts with the switcher.
    @Test func fastAndSlowCallersTogether() throws {
        let s = try KernelService(name: "mixed")
        let slow = try Background([Run.colo, "--join", String(s.spacePID), "/usr/bin/env", "KERNEL_PROBE_SLOW=1",
                                   try Guests.buildWithAPI("kernel_probe"), "client", "mixed", "2", "20000", "64"])
        let fast = try s.join(["client", "mixed", "2", "20000", "64"], timeout: 120)
        #expect(slow.wait() == 0)
        #expect(fast.status == 0)
        let v = values(fast.stdout)
        #expect(v["ok"] == "40000" && v["bad"] == "0", "\(fast.stdout)")
        #expect(v["dups"] == "0" && v["badsum"] == "0")
    }

    /// COLO_SLOW_PATH=1 keeps a program off the switcher: a service started
    /// with it accepts through the runtime (WCHAN coaccept, not copark), and
    /// callers with and without it reach it.
    @Test func coloSlowPathKeepsAProgramOffTheSwitcher() throws {
        let probe = try Guests.buildWithAPI("kernel_probe")
        let s = try KernelService("/usr/bin/env", ["COLO_SLOW_PATH=1", probe, "service", "slowpath"])
        #expect(try s.wchan(s.pid) == "coaccept", "the service waits in coaccept_slow")
        let slow = try Run.colo(["--join", String(s.spacePID), "/usr/bin/env", "COLO_SLOW_PATH=1", probe,
                                 "client", "slowpath", "1", "200", "8"], timeout: 60)
        #expect(values(slow.stdout)["ok"] == "200", "\(slow.stdout) \(slow.stderr)")
        let fast = try s.join(["client", "slowpath", "1", "200", "8"])
        #expect(values(fast.stdout)["ok"] == "200", "a switcher caller falls back to cocall_slow: \(fast.stdout)")
    }

    /// A callee alternating between computing and making system calls: the
    /// calls run as the callee (its pid and thread, its descriptor), while
    /// cogetpid2 names it without a system call.
    @Test func theCalleesSystemCallsRunAsTheCallee() throws {
        let s = try KernelService(name: "identity")
        let r = try s.join(["mixed", "identity", "20000"], timeout: 120)
        #expect(r.status == 0, "\(r.stderr)")
        let v = values(r.stdout)
        #expect(v["ok"] == "20000" && v["bad"] == "0", "\(r.stdout)")
        #expect(v["service_pid"] == String(s.pid), "getpid() in the callee gives the callee's pid")
        #expect(v["service_tid"] == String(s.pid), "gettid() gives the service's (only) thread")
        #expect(v["wrote"] == "1", "a descriptor only the callee has")
        #expect(v["my_pid"] != String(s.pid))
    }

    /// Every 1000th call makes the callee fault; it recovers (siglongjmp from
    /// its SIGSEGV handler), the faulting call gives ENOLINK, the caller and
    /// the other calls go on.
    @Test func aCalleeThatFaultsEveryThousandCalls() throws {
        let s = try KernelService(name: "crashy")
        let r = try s.join(["crashy", "crashy", "10000"], timeout: 120)
        #expect(r.status == 0, "\(r.stderr)")
        let v = values(r.stdout)
        #expect(v["ok"] == "9990" && v["bad"] == "0" && v["enolink"] == "10", "\(r.stdout)")
        #expect(v["crashes"] == "10", "the callee itself took each fault")
    }

    /// A caller killed while the callee computes on its borrowed thread: the
    /// callee's context is lost, its coaccept returns EINTR in its own
    /// thread, and it serves the next caller.
    @Test func aCallerKilledWhileBorrowingLeavesTheServiceServing() throws {
        let s = try KernelService(name: "spinner")
        let caller = try s.start(["spin_call", "spinner", "10000"])
        try caller.waitFor { $0 == "calling" }
        usleep(200_000)
        kill(pid_t(try caller.value("pid"))!, SIGKILL)
        _ = caller.wait()
        let started = Date()
        let r = try s.join(["client", "spinner", "1", "100", "8"], timeout: 60)
        #expect(values(r.stdout)["ok"] == "100", "\(r.stdout)")
        #expect(Date().timeIntervalSince(started) < 6, "served without waiting for the 10 s the lost call would have taken")
        #expect(eventually { (try? s.wchan(s.pid)) == "copark" })
    }

    /// A caller killed while it waits for a callee that made a system call:
    /// the callee finishes, its answer goes nowhere, and it serves on.
    @Test func aCallerKilledWhileWaitingLeavesTheServiceServing() throws {
        let s = try KernelService(name: "sleeper")
        let caller = try s.start(["call_sleep", "sleeper", "500"])
        try caller.waitFor { $0 == "calling" }
        #expect(eventually { (try? s.wchan(pid_t(try caller.value("pid"))!)) == "cocall" })
        kill(pid_t(try caller.value("pid"))!, SIGKILL)
        _ = caller.wait()
        let r = try s.join(["client", "sleeper", "1", "100", "8"], timeout: 60)
        #expect(values(r.stdout)["ok"] == "100", "\(r.stdout)")
    }
}
