// KernelSupport: guests built with the guest library, and a colocated service for the kernel-call tests.
import Foundation
import Glibc

extension Guests {
    /// Sources/GuestAPI: the guest library and its headers.
    static let apiDir = sourceDir.deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Sources/GuestAPI").path

    /// A guest program built against <colo.h>/<capv.h> and linked with the
    /// guest library's sources (static-pie glibc, with threads).
    static func buildWithAPI(_ name: String) throws -> String {
        lock.lock(); defer { lock.unlock() }
        let key = "\(name)-colo-api"
        if let p = built[key] { return p }
        let out = buildDir + "/" + key
        let r = try Run.capture(["cc", "-O1", "-static-pie", "-pthread", "-I", apiDir + "/include", "-I", apiDir + "/../ABI/include",
                                 sourceDir.appendingPathComponent("\(name).c").path,
                                 apiDir + "/colo.c", apiDir + "/syscall.c", "-o", out])
        guard r.status == 0 else { throw TestFailure("building \(key) failed: \(r.stderr)") }
        built[key] = out
        return out
    }
}

/// A colocated service (kernel_probe's by default) and the address space it
/// runs in: the first process is an idle probe, so the service can die alone.
final class KernelService {
    let space: Background
    let service: Background
    let spacePID: pid_t
    let pid: pid_t

    /// Start `program args` (which prints pid= and ready) as the service.
    init(_ program: String, _ args: [String]) throws {
        space = try Background([Run.colo, try Guests.probe(), "sleep", "120"])
        spacePID = pid_t(try space.value("pid"))!
        service = try Background([Run.colo, "--join", String(spacePID), program] + args)
        pid = pid_t(try service.value("pid"))!
        try service.waitFor { $0 == "ready" }
    }

    /// kernel_probe's service registered as `name`, with `acceptors` accepting threads.
    convenience init(name: String, acceptors: Int = 1) throws {
        try self.init(try Guests.buildWithAPI("kernel_probe"), ["service", name, String(acceptors)])
    }

    /// Run kernel_probe ARGS in the service's address space, to completion.
    func join(_ args: [String], timeout: Double = 60) throws -> Run.Result {
        try Run.colo(["--join", String(spacePID), try Guests.buildWithAPI("kernel_probe")] + args, timeout: timeout)
    }

    /// Start kernel_probe ARGS in the service's address space.
    func start(_ args: [String]) throws -> Background {
        try Background([Run.colo, "--join", String(spacePID), try Guests.buildWithAPI("kernel_probe")] + args)
    }

    /// WCHAN of a process of the address space, as `colo ps` shows it.
    func wchan(_ pid: pid_t) throws -> String? {
        let ps = try Run.colo(["ps", String(spacePID)]).stdout
        for line in ps.split(separator: "\n") {
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            if f.count > 4 && f[1] == "\(pid)" { return String(f[4]) }
        }
        return nil
    }

    deinit {
        kill(pid, SIGKILL)
        kill(space.pid, SIGTERM)
        _ = space.wait()
    }
}
