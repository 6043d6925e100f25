// binds(1) with libbinds (spec §3.4).
import Foundation
import Glibc
import Testing

/// binds(1) with libbinds (spec §3.4): the port policy, the socket passed as an
/// fd capability, verbose lines, usage and errors.
@Suite(.serialized) struct UserlandBindsTests {
    static let usage = usageText(["binds [-Ckv] [-p port] command [args ...]"])

    /// A port in the ephemeral-free high range, different per run.
    func port() -> Int { 40000 + Int(UInt16.random(in: 0...9000)) }

    @Test func bindsUsageAndErrors() throws {
        let cases: [([String], Int32, String)] = [
            (["binds"], 0, Self.usage),
            (["binds", "-x", "sh"], 0, "binds: illegal option -- x\n" + Self.usage),
            (["binds", "-p"], 0, "binds: option requires an argument -- p\n" + Self.usage),
            (["binds", "-p", "x", "sh"], 1, "binds: argument to -p must be a number\n"),
            (["binds", "-p", "-1", "sh"], 0, Self.usage),
            (["binds", "/nonexistent"], 0, "binds: coexecvpc: No such file or directory\n"),
        ]
        for (argv, status, stderr) in cases {
            let r = try Tools.run(argv)
            #expect(r.status == status && r.stderr == stderr, "\(argv): \(r.status) \(r.stderr)")
        }
    }

    @Test(arguments: [false, true]) func portPolicy(slow: Bool) throws {
        let guest = try Guests.build("userland_bind", .dynamicGlibc)
        let p = port(), q = p + 1
        let sock = Guests.buildDir + "/binds-\(p).sock"
        defer { unlink(sock) }
        let r = try Tools.run(["binds", "-v", "-p", String(p)] + (slow ? ["-k"] : []) + [guest, String(p), String(q), "unix:" + sock])
        #expect(r.status == 0, "\(r.stderr)")
        let v = values(r.stdout)
        #expect(v["bind_\(p)"] == "OK" && v["bound_\(p)"] == String(p), "the service bound the client's own socket: \(r.stdout)")
        #expect(v["bind_\(q)"] == "Permission denied", "EACCES for another port")
        #expect(v["bind_unix"] == "OK", "families other than AF_INET are allowed")
        let s = slow ? #" \(slow\)"# : ""
        #expect(lines(r.stdout, matching: #"binds: op 49, len \d+ from pid \d+ -> pid \d+"# + s).count == 3)
        // CheriBSD prints sin_port without ntohs().
        #expect(hasLine(r.stdout, #"binds: pid \d+: allowing port "# + String(UInt16(p).bigEndian)), "\(r.stdout)")
        #expect(hasLine(r.stdout, #"binds: pid \d+: disallowed port \#(q); returning EACCES"#))
        #expect(hasLine(r.stdout, #"binds: pid \d+: ss_family 1 != AF_INET 2; allowing"#))
        #expect(hasLine(r.stdout, #"binds: returning to pid \d+ <- pid \d+: op -49, len 24, error 0, errno 0"# + s), "errno 0 on success (CheriBSD's protocol)")
        #expect(hasLine(r.stdout, #"binds: returning to pid \d+ <- pid \d+: op -49, len 24, error -1, errno 13"# + s))
    }

    @Test func everyPortByDefaultAndTheAnswerback() throws {
        let guest = try Guests.build("userland_bind", .dynamicGlibc)
        let p = port()
        let r = try Tools.run(["binds", "sh", "-c", "capv -v; \(guest) \(p) \(p + 2)"])
        #expect(hasLine(r.stdout, #"10:\t"binds\(1\), pid \d+, allowed port -1 \(capsicum disabled\)""#), "\(r.stdout)")
        let v = values(r.stdout)
        #expect(v["bind_\(p)"] == "OK" && v["bind_\(p + 2)"] == "OK")
        let k = try Tools.run(["binds", "-kp", "7", "capv", "-v"])
        #expect(hasLine(k.stdout, #"10:\t"binds\(1\), pid \d+, allowed port 7 \(slow\) \(capsicum disabled\)""#), "\(k.stdout)")
    }

    @Test func aRealBindErrorComesBack() throws {
        let guest = try Guests.build("userland_bind", .dynamicGlibc)
        // Port 1 needs privileges an ordinary user lacks; as root, a port in use.
        let busy = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(busy) }
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_addr.s_addr = UInt32(0x7f000001).bigEndian
        let p = port()
        sin.sin_port = UInt16(p).bigEndian
        let ok = withUnsafePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(busy, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        try #require(ok == 0)
        listen(busy, 1)
        let r = try Tools.run(["binds", guest, String(p)])
        #expect(values(r.stdout)["bind_\(p)"] == "Address already in use", "\(r.stdout) \(r.stderr)")
    }

    @Test func libbindsWithoutTheServiceFailsWithENOLINK() throws {
        let guest = try Guests.build("userland_bind", .dynamicGlibc)
        let r = try Tools.run([Run.colo, "/usr/bin/env", "LD_PRELOAD=" + Tools.path("libbinds-preload.so"), guest, "46000"])
        #expect(values(r.stdout)["bind_46000"] == "Link has been severed", "\(r.stdout)")
        #expect(r.stderr.contains("null capability 10: Link has been severed"))
    }
}
