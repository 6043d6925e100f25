// coregister(1) and colookup(1) (spec §3.8, §3.9).
import Foundation
import Glibc
import Testing

/// coregister(1) and colookup(1) (spec §3.8, §3.9): SCM_CAPS over a unix
/// socket within one address space and refused across two, name relays,
/// usage and every error message.
@Suite(.serialized) struct UserlandRegistryTests {
    static let coregisterUsage = usageText(["coregister [-Ckv] -i entry -f path", "coregister [-Ckv] -i entry -n new-name"])
    static let colookupUsage = usageText(["colookup -c name",
                                          "colookup -f path -i index [-f path -i index ...] command [args ...]",
                                          "colookup -n name -i index [-n name -i index ...] command [args ...]",
                                          "colookup -s"])
    static let cap = #"0x[0-9a-f]{16} \[target\] \(sealed\)"#
    static let clocksAnswer = #"clocks\(1\), pid \d+, responding to clock_gettime\(\)"#
    static let slowClocksAnswer = #"clocks\(1\), pid \d+, responding to clock_gettime\(\) \(slow\)"#

    /// A fresh socket path.
    func socketPath() -> String { Guests.buildDir + "/sock-\(UInt32.random(in: 0...UInt32.max))" }

    /// An address space held by an idle probe, to join tools into.
    func space() throws -> (Background, String) {
        let holder = try Background([Run.colo, try Guests.probe(), "hold"])
        return (holder, try holder.value("pid"))
    }

    func release(_ holder: Background, _ pid: String) {
        kill(pid_t(pid)!, SIGUSR1)
        _ = holder.wait()
    }

    @Test func coregisterUsageAndErrors() throws {
        let cases: [([String], Int32, String)] = [
            (["coregister"], 0, Self.coregisterUsage),
            (["coregister", "-i", "8"], 0, Self.coregisterUsage),
            (["coregister", "-f", "x"], 0, Self.coregisterUsage),
            (["coregister", "-i", "8", "-f", "x", "extra"], 0, Self.coregisterUsage),
            (["coregister", "-i", "-1", "-f", "x"], 0, Self.coregisterUsage),
            (["coregister", "-z"], 0, "coregister: illegal option -- z\n" + Self.coregisterUsage),
            (["coregister", "-f", "a", "-f", "b", "-i", "1"], 255, "coregister: -f specified more than once\n"),
            (["coregister", "-n", "a", "-f", "b", "-i", "1"], 255, "coregister: -f and -n are mutually exclusive\n"),
            (["coregister", "-f", "a", "-n", "b", "-i", "1"], 255, "coregister: -n and -f are mutually exclusive\n"),
            (["coregister", "-n", "a", "-n", "b", "-i", "1"], 255, "coregister: -n specified more than once\n"),
            (["coregister", "-i1", "-i2", "-n", "a"], 255, "coregister: -i specified more than once\n"),
            (["coregister", "-i", "x", "-n", "a"], 1, "coregister: argument to -i must be a number\n"),
            (["coregister", "-i8", "-f", socketPath()], 1, "coregister: capv[8] is NULL\n"),
        ]
        for (argv, status, stderr) in cases {
            let r = try Tools.run(argv)
            #expect(r.status == status && r.stderr == stderr, "\(argv): \(r.status) \(r.stderr)")
        }
        // An existing socket; a name already coregistered (clocks passes neither status on).
        let path = socketPath()
        FileManager.default.createFile(atPath: path, contents: nil)
        defer { unlink(path) }
        var r = try Tools.run(["clocks", "coregister", "-i8", "-f", path])
        #expect(r.stderr == "coregister: cannot bind to existing socket; remove \(path) and try again\n")
        let (holder, pid) = try space()
        defer { release(holder, pid) }
        let pong = try Background([Run.colo, "--join", pid, Tools.path("copong"), "fab"])
        defer { pong.terminate() }
        usleep(300_000)
        r = try Run.colo(["--join", pid, Tools.path("clocks"), Tools.path("coregister"), "-i8", "-n", "fab"])
        #expect(r.stderr == "coregister: failed to coregister \"fab\": File exists\n", "\(r.stderr)")
    }

    @Test func colookupUsageAndErrors() throws {
        let missing = socketPath()
        let cases: [([String], Int32, String)] = [
            (["colookup"], 0, Self.colookupUsage),
            (["colookup", "-i", "5", "sh"], 0, Self.colookupUsage),
            (["colookup", "-f", "x", "sh"], 0, Self.colookupUsage),
            (["colookup", "-f", "x", "-f", "y", "-i", "1", "sh"], 0, Self.colookupUsage),
            (["colookup", "-n", "x", "-i", "5"], 0, Self.colookupUsage),
            (["colookup", "-q"], 0, "colookup: illegal option -- q\n" + Self.colookupUsage),
            (["colookup", "-n", "x", "-i", "y", "sh"], 1, "colookup: argument to -i must be a number\n"),
            (["colookup", "-c", "nothing"], 1, "colookup: nothing: No such process\n"),
            (["colookup", "-n", "nothing", "-i", "5", "sh"], 1, "colookup: nothing: No such process\n"),
            (["colookup", "-f", missing, "-i", "5", "sh"], 1, "colookup: \(missing): connect: No such file or directory\n"),
        ]
        for (argv, status, stderr) in cases {
            let r = try Tools.run(argv)
            #expect(r.status == status && r.stderr == stderr, "\(argv): \(r.status) \(r.stderr)")
        }
    }

    @Test func colookupShowsCosetupCapabilities() throws {
        let r = try Tools.run(["colookup", "-s"])
        #expect(r.status == 0)
        let code = #"0x[0-9a-f]{16} \[code\] \(sealed\)"#, scb = #"0x[0-9a-f]{16} \[scb\] \(sealed\)"#
        #expect(hasLine(r.stdout, "cocall " + code + ", " + scb) && hasLine(r.stdout, "coaccept " + code + ", " + scb), "\(r.stdout)")
    }

    @Test(arguments: [false, true]) func socketHandsTheCapabilityOverInOneAddressSpace(slow: Bool) throws {
        let (holder, pid) = try space()
        defer { release(holder, pid) }
        let path = socketPath()
        defer { unlink(path) }
        let k = slow ? ["-k"] : []
        let svc = try Background([Run.colo, "--join", pid, Tools.path("clocks"), "-v"] + k
                                 + [Tools.path("coregister"), "-v", "-i8", "-f", path])
        defer { svc.terminate() }
        #expect(eventually { access(path, F_OK) == 0 })
        let r = try Tools.run(["colo", "--join", pid, Tools.path("colookup"), "-v", "-f", path, "-i8", "capv", "-v"] + k)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(hasLine(r.stdout, "colookup: 8: received " + Self.cap + " from " + NSRegularExpression.escapedPattern(for: path)), "\(r.stdout)")
        #expect(hasLine(r.stdout, #"8:\t""# + (slow ? Self.slowClocksAnswer : Self.clocksAnswer) + #"""#),
                "capv calls clocks although it is not its descendant: \(r.stdout)")
        try svc.waitFor { hasLine($0, "coregister: accepted; will send back " + Self.cap) }
        try svc.waitFor { $0 == "coregister: sent; waiting for another client" }
        try svc.waitFor { hasLine($0, #"clocks: op 0, len 16 from pid \d+ -> pid \d+"# + (slow ? #" \(slow\)"# : "")) }
        // Another client of the same socket.
        let again = try Tools.run(["colo", "--join", pid, Tools.path("colookup"), "-f", path, "-i", "3", "capv", "-n"])
        #expect(again.stdout == "3\n", "a joined process starts with no vector: \(again.stdout)")
    }

    @Test func socketRefusesTheCapabilityAcrossAddressSpaces() throws {
        let path = socketPath()
        defer { unlink(path) }
        let svc = try Tools.start(["clocks", "coregister", "-i8", "-f", path])
        defer { svc.terminate() }
        #expect(eventually { access(path, F_OK) == 0 })
        // From a plain shell, colookup creates an address space of its own.
        let r = try Tools.run(["colookup", "-f", path, "-i8", "capv"])
        #expect(r.status == 1)
        #expect(r.stderr == "colookup: likely not colocated with coregister(1)\ncolookup: \(path): recvmsg: Protocol error\n", "\(r.stderr)")
    }

    @Test(arguments: [false, true]) func nameModeRelaysEveryCall(slow: Bool) throws {
        let (holder, pid) = try space()
        defer { release(holder, pid) }
        let k = slow ? ["-k"] : []
        let svc = try Background([Run.colo, "--join", pid, Tools.path("clocks"), Tools.path("coregister"), "-v", "-i8", "-n", "fab"] + k)
        defer { svc.terminate() }
        usleep(500_000)
        let r = try Run.colo(["--join", pid, Tools.path("colookup"), "-v", "-n", "fab", "-i", "5", Tools.path("capv"), "-v"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(hasLine(r.stdout, "colookup: 5: colookedup " + Self.cap + " from fab"), "\(r.stdout)")
        let s = slow ? #" \(slow\)"# : ""
        #expect(hasLine(r.stdout, #"5:\t""# + Self.clocksAnswer + #" -- via coregister\(1\), pid \d+, sharing "# + Self.cap
                        + " as fab" + s + #"""#), "\(r.stdout)")
        try svc.waitFor { hasLine($0, #"coregister: cocall op 0, len 16, received 16, from pid \d+ -> pid \d+"# + s) }
        try svc.waitFor { hasLine($0, #"coregister: returning answerback to pid \d+ <- pid \d+"# + s) }
        // A clock call through the relay: op 8 forwarded, the reply passed back.
        let guest = try Guests.build("userland_clock", .dynamicGlibc)
        let c = try Run.colo(["--join", pid, Tools.path("colookup"), "-n", "fab", "-i", "8", "/usr/bin/env",
                              "LD_PRELOAD=" + Tools.path("libclocks-preload.so"), guest])
        #expect(values(c.stdout)["realtime"]?.hasPrefix("0 ") == true, "\(c.stdout) \(c.stderr)")
        try svc.waitFor { hasLine($0, #"coregister: returning op -8, len 40 to pid \d+ <- pid \d+"# + s) }
        let lookup = try Run.colo(["--join", pid, Tools.path("colookup"), "-c", "fab"])
        #expect(hasLine(lookup.stdout, "fab: " + Self.cap))
    }

    @Test func capvReportsADeadService() throws {
        let (holder, pid) = try space()
        defer { release(holder, pid) }
        let path = socketPath()
        defer { unlink(path) }
        let svc = try Background([Run.colo, "--join", pid, Tools.path("clocks"), Tools.path("coregister"), "-i8", "-f", path])
        defer { svc.terminate() }
        #expect(eventually { access(path, F_OK) == 0 })
        let client = try Background([Run.colo, "--join", pid, Tools.path("colookup"), "-f", path, "-i8",
                                     "/bin/sh", "-c", "\(Tools.path("capv")) -v; sleep 1; \(Tools.path("capv"))"])
        let first = try client.waitFor { $0.hasPrefix("8:") }
        let clocksPID = try #require(lines(first, matching: #"8:\t"clocks\(1\), pid (\d+), .*""#).first?[1])
        kill(pid_t(clocksPID)!, SIGKILL)
        try client.waitFor { $0 == "8:\tLink has been severed" }
    }
}

/// colo_sendmsg/colo_recvmsg: SCM_CAPS with data and descriptors.
@Suite struct UserlandScmCapsTests {
    @Test func capabilitiesDescriptorsAndDataArriveTogether() throws {
        let guest = try Guests.buildWithAPI("userland_scmcaps")
        let r = try Run.colo([guest])
        let v = values(r.stdout)
        #expect(v["colocated"] == "1" && v["send"] == "6", "\(r.stdout) \(r.stderr)")
        #expect(v["recv"] == "6 data=hello" && v["rights"] == "1" && v["fd_works"] == "1")
        #expect(v["caps"] == "2 same=1 null=1")
        #expect(v["send_empty"] == "0" && v["recv_empty"] == "0 type=16", "a message without data stays without data")
    }

    @Test func outsideAnAddressSpaceCapabilitiesAreRefused() throws {
        let r = try Run.capture([try Guests.buildWithAPI("userland_scmcaps")])
        #expect(values(r.stdout)["recv"] == "EPROT", "\(r.stdout)")
    }
}
