// paths(1) with libpaths and cs(1) with libcs.
import Foundation
import Glibc
import Testing

/// paths(1) with libpaths and cs(1) with libcs: commands in capability mode
/// whose refused path lookups are served (spec §3.11, §3.12).
@Suite(.serialized) struct UserlandPathsCsTests {
    static let pathsUsage = usageText(["paths [-kqv] [-r path] [-w path] command [args ...]"])
    static let csUsage = usageText(["cs [-kv] command [args ...]"])

    @Test func pathsUsageAndErrors() throws {
        let cases: [([String], Int32, String)] = [
            (["paths"], 0, Self.pathsUsage),
            (["paths", "-x", "ls"], 0, "paths: illegal option -- x\n" + Self.pathsUsage),
            (["paths", "-w", "/usr", "ls"], 0, Self.pathsUsage),
            (["paths", "-r", "usr", "ls"], 1, "paths: \"usr\" is not an absolute path\n"),
            (["paths", "-r", "/nonexistent", "ls"], 1, "paths: /nonexistent: No such file or directory\n"),
        ]
        for (argv, status, stderr) in cases {
            let r = try Tools.run(argv)
            #expect(r.status == status && r.stderr == stderr, "\(argv): \(r.status) \(r.stderr)")
        }
    }

    @Test(arguments: [false, true]) func pathsServesADirectoryToACommandInCapabilityMode(slow: Bool) throws {
        let k = slow ? ["-k"] : []
        let r = try Tools.run(["paths", "-v"] + k + ["-r", "/usr", "ls", "/usr"])
        #expect(r.status == 0, "\(r.stderr)")
        let listing = Set(r.stdout.split(separator: "\n").map(String.init))
        #expect(listing.isSuperset(of: ["bin", "lib", "share"]), "\(r.stdout)")
        let s = slow ? #" \(slow\)"# : ""
        #expect(hasLine(r.stdout, #"paths: len 4112 from pid \d+ -> pid \d+"# + s))
        #expect(hasLine(r.stdout, #"paths: returning to pid \d+ <- pid \d+: len 4120"# + s))
    }

    @Test func plainLsIsRefusedInCapabilityMode() throws {
        // libpaths enters capability mode; without paths(1) the lookup stays refused.
        let r = try Tools.run(["colo", "/usr/bin/env", "LD_PRELOAD=" + Tools.path("libpaths-preload.so"), "ls", "/usr"])
        #expect(r.status != 0 && r.stdout.isEmpty)
        #expect(r.stderr.contains("ls: init_maybe: null capability 14: Link has been severed"), "\(r.stderr)")
        // A directory paths(1) does not serve: refused with EPERM (and a warning unless -q).
        let other = try Tools.run(["paths", "-r", "/etc", "ls", "/usr"])
        #expect(other.stderr.contains("paths: refusing /usr") && other.stderr.contains("Operation not permitted"), "\(other.stderr)")
        let quiet = try Tools.run(["paths", "-q", "-r", "/etc", "ls", "/usr"])
        #expect(!quiet.stderr.contains("refusing"))
    }

    @Test func pathsAnswerbackAndFiles() throws {
        let r = try Tools.run(["paths", "-r", "/usr", "-r", "/etc", "capv", "-v"])
        #expect(hasLine(r.stdout, #"14:\t"paths -r /etc -r /usr, pid \d+""#), "newest first, in capability mode: \(r.stdout)")
        let k = try Tools.run(["paths", "-k", "-r", "/etc", "capv", "-v"])
        #expect(hasLine(k.stdout, #"14:\t"paths -r /etc, pid \d+ \(slow\)""#), "\(k.stdout)")
        let host = try String(contentsOfFile: "/etc/hostname", encoding: .utf8)
        let cat = try Tools.run(["paths", "-r", "/etc", "cat", "/etc/hostname"])
        #expect(cat.stdout == host, "\(cat.stderr)")
    }

    @Test func csUsage() throws {
        var r = try Tools.run(["cs"])
        #expect(r.status == 0 && r.stderr == Self.csUsage)
        r = try Tools.run(["cs", "-z", "ls"])
        #expect(r.status == 0 && r.stderr == "cs: illegal option -- z\n" + Self.csUsage)
    }

    @Test(arguments: [false, true]) func csOpensAFileForAClientInCapabilityMode(slow: Bool) throws {
        let k = slow ? ["-k"] : []
        let host = try String(contentsOfFile: "/etc/hostname", encoding: .utf8)
        let r = try Tools.run(["cs", "-v"] + k + ["cat", "/etc/hostname"])
        #expect(r.status == 0, "\(r.stderr)")
        let s = slow ? #" \(slow\)"# : ""
        #expect(r.stdout.hasSuffix(host), "\(r.stdout)")
        #expect(hasLine(r.stdout, #"cs: op 257<openat>, len 80 from pid \d+ -> pid \d+"# + s), "\(r.stdout)")
        #expect(hasLine(r.stdout, #"cs: returning to pid \d+ <- pid \d+: op -257, len 32, error \d+, errno 0"# + s))
        // Without cs(1), the client's calls fail.
        let plain = try Tools.run(["colo", "/usr/bin/env", "LD_PRELOAD=" + Tools.path("libcs-preload.so"), "cat", "/etc/hostname"])
        #expect(plain.status != 0 && plain.stderr.contains("cat: init_maybe: null capability 12: Link has been severed"))
    }

    @Test func csListsAndAnswers() throws {
        let a = try Tools.run(["cs", "capv", "-v"])
        #expect(hasLine(a.stdout, #"12:\t"cs\(1\), pid \d+""#), "\(a.stdout) \(a.stderr)")
        let ls = try Tools.run(["cs", "ls", "/usr"])
        #expect(Set(ls.stdout.split(separator: "\n").map(String.init)).isSuperset(of: ["bin", "lib"]), "\(ls.stdout) \(ls.stderr)")
        let missing = try Tools.run(["cs", "cat", "/nonexistent"])
        #expect(missing.stderr.contains("/nonexistent: No such file or directory"), "the errno comes back")
    }
}
