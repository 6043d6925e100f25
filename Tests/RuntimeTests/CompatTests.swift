// Source compatibility with CheriBSD (issue 7, point 9).
import Foundation
import Glibc
import Testing

/// Source compatibility with CheriBSD (issue 7, point 9): a program written
/// the way CheriBSD's colocation programs are, including only <unistd.h>,
/// <capv.h>, <sys/auxv.h>, <err.h> and <stdio.h>, builds with
/// `cc prog.c $(pkg-config --cflags --libs colo libbsd-overlay)` against an
/// installed prefix and runs colocated with the project's own tools.
@Suite(.serialized) struct CompatTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    /// scripts/install into a fresh prefix, once for the suite.
    final class Prefix: @unchecked Sendable {
        let path: String
        let error: String?
        init() {
            path = Guests.buildDir + "/compat-prefix-\(getpid())"
            let i = try? Tools.run([CompatTests.root + "/scripts/install", path], env: ["COLO_BIN=" + Tools.binDir], timeout: 300)
            error = i?.status == 0 ? nil : "install failed: \(i?.stdout ?? "") \(i?.stderr ?? "")"
        }
        deinit { try? FileManager.default.removeItem(atPath: path) }

        var bin: String { path + "/bin" }

        /// `cc SOURCE $(pkg-config --cflags --libs colo libbsd-overlay) -o OUT`, with every
        /// function the program calls declared by the headers it includes.
        func build(_ source: String, _ out: String) throws -> Run.Result {
            let flags = try Run.capture(["/usr/bin/env", "PKG_CONFIG_PATH=" + path + "/lib/pkgconfig",
                                         "pkg-config", "--cflags", "--libs", "colo", "libbsd-overlay"])
            guard flags.status == 0 else { throw TestFailure("pkg-config: \(flags.stderr)") }
            let args = flags.stdout.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
            return try Run.capture(["cc", "-Wall", "-Werror=implicit-function-declaration", source] + args + ["-o", out])
        }

        /// The installed tools first in PATH.
        func argv(_ argv: [String]) -> [String] { ["/usr/bin/env", "PATH=" + bin + ":/usr/bin:/bin"] + argv }
    }

    nonisolated(unsafe) static var shared: Prefix? = nil
    static func prefix() throws -> Prefix {
        Guests.lock.lock(); defer { Guests.lock.unlock() }
        if shared == nil { shared = Prefix() }
        if let e = shared!.error { throw TestFailure(e) }
        return shared!
    }

    /// Tests/Guests/NAME.c built with the installed prefix's pkg-config line (once).
    static func built(_ name: String) throws -> String {
        let p = try prefix()
        let out = p.path + "/" + name
        if FileManager.default.fileExists(atPath: out) { return out }
        let r = try p.build(Guests.sourceDir.appendingPathComponent("\(name).c").path, out)
        guard r.status == 0 else { throw TestFailure("\(name) does not build: \(r.stderr)") }
        return out
    }

    static func cheribsdStyle() throws -> String { try built("cheribsd_style") }

    @Test func installHasTheOverlayCopoolAndSectionTwoAndThreePages() throws {
        let p = try Self.prefix()
        for f in ["include/colo-overlay/unistd.h", "include/colo-overlay/stdio.h", "include/colo-overlay/sys/auxv.h",
                  "include/colo-overlay/errno.h", "include/colo-overlay/sys/param.h",
                  "include/colo-overlay/sys/sysctl.h", "include/colo-overlay/sys/syslimits.h",
                  "include/colo-overlay/sys/cdefs.h", "include/colo-overlay/sys/socket.h",
                  "include/colo-overlay/sys/un.h", "include/colo-overlay/pthread_np.h",
                  "share/man/man2/cocall_slow.2", "share/man/man2/colookup.2", "share/man/man2/captofd.2",
                  "share/man/man3/sysctl.3", "share/man/man3/pthread_getthreadid_np.3", "share/man/man1/stevie.1",
                  "include/copool.h", "include/colo.h", "include/capv.h", "include/sys/capsicum.h",
                  "share/man/man2/cocall.2", "share/man/man2/coaccept.2", "share/man/man2/cosetup.2",
                  "share/man/man2/coregister.2", "share/man/man2/cogetpid.2", "share/man/man2/coexecve.2",
                  "share/man/man2/capfromfd.2", "share/man/man2/cap_enter.2", "share/man/man3/coexecvpc.3",
                  "share/man/man3/capvfetch.3", "share/man/man3/cocachedpid.3", "share/man/man3/elf_aux_info.3",
                  "share/man/man3/copool.3"] {
            #expect(FileManager.default.fileExists(atPath: p.path + "/" + f), "\(f)")
        }
        let pc = try String(contentsOfFile: p.path + "/lib/pkgconfig/colo.pc", encoding: .utf8)
        #expect(pc.contains("Cflags: -I${includedir}/colo-overlay -I${includedir}"), "\(pc)")
        let nm = try Run.capture(["nm", p.path + "/lib/libcolo.a"])
        #expect(hasLine(nm.stdout, "[0-9a-f]+ T copool_create"), "libcolo.a has the pool API")
    }

    @Test func cheribsdStyleProgramBuildsWithThePkgConfigLine() throws {
        let exe = try Self.cheribsdStyle()
        // Its capv listing under the installed clocks and binds: elf_aux_info,
        // capvfetch, cosetup and cocall from <unistd.h> and <sys/auxv.h>.
        let p = try Self.prefix()
        let r = try Run.capture(p.argv(["clocks", "binds", exe, "-a"]))
        #expect(r.status == 0, "\(r.stderr)")
        #expect(hasLine(r.stdout, #"capc 11, auxv agrees 1"#), "\(r.stdout) \(r.stderr)")
        #expect(hasLine(r.stdout, #"8: "clocks\(1\), pid \d+, responding to clock_gettime\(\)""#), "\(r.stdout)")
        #expect(hasLine(r.stdout, #"10: "binds\(1\), pid \d+, allowed port -1 \(capsicum disabled\)""#), "\(r.stdout)")
        // BSD getopt: options stop at the first operand, as on CheriBSD.
        let g = try Run.capture([exe, "-a", "x", "-k"])
        #expect(g.status == 0 && g.stderr.hasPrefix("usage: cheribsd_style [-k] -a\n"), "\(g.stderr)")
        // Outside an address space: no vector.
        let none = try Run.capture([exe, "-a"])
        #expect(none.status == 1 && none.stderr.hasSuffix("no capability vector\n"), "\(none.stderr)")
    }

    @Test(arguments: [false, true]) func onlyUnistdAndCapvHeaders(slow: Bool) throws {
        // Issue 7's test: a program including nothing but <unistd.h> and <capv.h>.
        let p = try Self.prefix()
        let exe = p.path + "/cheribsd_minimal"
        if !FileManager.default.fileExists(atPath: exe) {
            let b = try p.build(Guests.sourceDir.appendingPathComponent("cheribsd_minimal.c").path, exe)
            #expect(b.status == 0, "\(b.stderr)")
        }
        let r = try Run.capture(p.argv(["clocks"] + (slow ? ["-k"] : []) + [exe]))
        #expect(hasLine(r.stdout, #"clocks\(1\), pid \d+, responding to clock_gettime\(\)"# + (slow ? #" \(slow\)"# : "")),
                "\(r.stdout) \(r.stderr)")
        #expect(r.stdout.hasSuffix("time ok\n"), "\(r.stdout) \(r.stderr)")
    }

    @Test(arguments: [false, true]) func cheribsdStyleProgramAndOurToolsCallEachOther(slow: Bool) throws {
        let exe = try Self.cheribsdStyle()
        let p = try Self.prefix()
        let k = slow ? ["-k"] : []
        let holder = try Background([Run.colo, try Guests.probe(), "hold"])
        let space = try holder.value("pid")
        defer { kill(pid_t(space)!, SIGUSR1); _ = holder.wait() }
        let name = "style" + (slow ? "-slow" : "")
        let style = try Background([Run.colo, "--join", space, exe] + k + ["-s", name])
        defer { style.terminate(); _ = style.wait() }
        try style.waitFor { $0 == "ready" }
        // Our coping calls it by name.
        let ping = try Run.colo(["--join", space, p.bin + "/coping", "-v", "-c", "2", "-s", "0"] + k + [name])
        #expect(ping.status == 0, "\(ping.stderr)")
        #expect(lines(ping.stdout, matching: #"coping: returned from "\#(name)" after .*, pid \d+"#).count == 2, "\(ping.stdout)")
        try style.waitFor { $0.hasPrefix("\(name): op 0, len 16, received 16 from pid ") }
        // It calls itself (another instance) and our copong.
        let me = try Run.colo(["--join", space, exe] + k + ["-c", name, "2"])
        #expect(lines(me.stdout, matching: #"received 1040, len 1040, op 0: "cheribsd_style\(1\), pid \d+, serving "\#(name)"\#(slow ? " \\(slow\\)" : "")""#).count == 2,
                "\(me.stdout) \(me.stderr)")
        let pong = try Background([Run.colo, "--join", space, p.bin + "/copong"] + k + ["pong-" + name])
        defer { pong.terminate(); _ = pong.wait() }
        var echoed = false
        for _ in 0..<50 where !echoed {
            let r = try Run.colo(["--join", space, exe] + k + ["-c", "pong-" + name, "1"])
            echoed = r.stdout == "received 1040, len 16, op 0: \"\"\n"     // copong echoes the 16-byte request
            if !echoed { usleep(100_000) }
        }
        #expect(echoed, "copong answers the CheriBSD-style caller")
    }

    @Test func thePoolApiIsInTheInstalledLibrary() throws {
        let p = try Self.prefix()
        let exe = p.path + "/copool_guest"
        let b = try p.build(Guests.sourceDir.appendingPathComponent("copool_guest.c").path, exe)
        #expect(b.status == 0, "\(b.stderr)")
        let r = try Run.colo([exe, "selftest", "2"], timeout: 120)
        #expect(r.status == 0 && r.stdout.contains("discovered=2") && r.stdout.contains("after_destroy=-1 errno=ENOLINK"),
                "\(r.stdout) \(r.stderr)")
    }

    /// cheribsd_compat.c built with the pkg-config line: the FreeBSD headers and
    /// functions CheriBSD's own tests and tools use (issue 14).
    static func compat() throws -> String { try built("cheribsd_compat") }

    @Test func kernProcPathnameNamesTheColocatedProgram() throws {
        let exe = try Self.compat()
        let real = URL(fileURLWithPath: exe).resolvingSymlinksInPath().path
        // Colocated, /proc/self/exe names the runtime; kern.proc.pathname the program,
        // also in a fork child (a copy of the address space); and outside colo.
        for r in [try Run.colo([exe, "sysctl"]), try Run.capture([exe, "sysctl"])] {
            let v = values(r.stdout)
            #expect(v["self"] == real && v["fork_child"] == real, "\(r.stdout) \(r.stderr)")
            #expect(v["length"] == "ok" && v["short"] == "ENOMEM" && v["other_node"] == "ENOENT", "\(r.stdout)")
        }
    }

    @Test func registryAndCoexecAsCheriBSDsTestsCheckThem() throws {
        let exe = try Self.compat()
        // coregister_test: the same capability from coregister and colookup; a
        // colocated helper finds the name, and registering it again is EEXIST.
        let reg = values(try Run.colo([exe, "registry"]).stdout)
        #expect(reg["same"] == "1" && reg["helper_lookup"] == "0" && reg["helper_reregister"] == "0", "\(reg)")
        // coexecve_test: ESRCH for a pid that does not exist, after fork and vfork;
        // vfork + coexecve into the parent; EPROT for a vector after fork; a vector
        // handed over after vfork; coexecvp's PATH search.
        let r = try Run.colo([exe, "coexec"])
        let v = values(r.stdout)
        for k in ["fork_wrong_pid", "vfork_wrong_pid", "vfork_right_pid", "fork_coexecvec_eprot", "vfork_coexecvec", "coexecvp"] {
            #expect(v[k] == "0", "\(k): \(r.stdout) \(r.stderr)")
        }
    }

    @Test func scmCapsTravelByPlainSendmsgOverASocketBoundWithSunLen() throws {
        let exe = try Self.compat()
        let r = try Run.colo([exe, "scmcaps"])
        #expect(r.stdout.contains("sent=0\n") && r.stdout.contains("received=0 truncated=0 same=1\n"), "\(r.stdout) \(r.stderr)")
    }

    @Test func threadIdNitemsAndSyslimits() throws {
        let exe = try Self.compat()
        let v = values(try Run.colo([exe, "misc"]).stdout)
        #expect(v["threadid"] == "gettid" && v["predict"] == "ok", "\(v)")
        #expect(try Run.colo([exe, "misc"]).stdout.contains("path_max=4096 nitems=4096\n"))
    }

    /// binds(1) and libbinds speak CheriBSD's protocol: requests carry SYS_bind
    /// or SYS_connect as their op, answers the negated op and errno 0 on success;
    /// the op of our older protocol (10) is unknown.
    @Test func bindsSpeaksCheriBSDsProtocol() throws {
        let exe = try Self.compat()
        let p = try Self.prefix()
        let nr = try Run.colo([exe, "misc"]).stdout
        let m = lines(nr, matching: #"sys_bind=(\d+) sys_connect=(\d+)"#)
        try #require(m.count == 1, "\(nr)")
        let (bind, connect) = (m[0][1], m[0][2])
        let r = try Run.capture(p.argv(["binds", "-v", exe, "connect"]))
        #expect(r.stdout.contains("connect=OK\n"), "\(r.stdout) \(r.stderr)")
        #expect(hasLine(r.stdout, #"binds: op \#(bind), len \d+ from pid \d+ -> pid \d+"#), "\(r.stdout)")
        #expect(hasLine(r.stdout, #"binds: op \#(connect), len \d+ from pid \d+ -> pid \d+"#), "\(r.stdout)")
        #expect(hasLine(r.stdout, #"binds: returning to pid \d+ <- pid \d+: op -\#(bind), len 24, error 0, errno 0"#))
        #expect(hasLine(r.stdout, #"binds: returning to pid \d+ <- pid \d+: op -\#(connect), len 24, error 0, errno 0"#))
        let raw = try Run.capture(p.argv(["binds", try Guests.buildWithAPI("userland_rawcall"), "10", "10"]))
        #expect(raw.stdout == "received=24 len=24 op=-10 error=-1 errno=\(ENOMSG)\n", "\(raw.stdout)")
        #expect(raw.stderr.contains("binds: unknown op 10\n"), "\(raw.stderr)")
    }

    /// Section 2 and 3 pages: one per call and function of <colo.h> and
    /// <copool.h>; each renders and passes mandoc's lint without warnings,
    /// and says where Linux differs.
    @Test func sectionTwoAndThreeManualPages() throws {
        let dir = Self.root + "/man"
        let want = ["cocall.2", "coaccept.2", "cosetup.2", "coregister.2", "cogetpid.2", "coexecve.2", "capfromfd.2",
                    "cap_enter.2", "coexecvpc.3", "capvfetch.3", "cocachedpid.3", "elf_aux_info.3", "copool.3", "colo_sendmsg.3"]
        let pages = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".2") || $0.hasSuffix(".3") }
        for p in want { #expect(pages.contains(p), "\(p)") }
        for p in pages {
            let lint = try Run.capture(["mandoc", "-Tlint", "-W", "warning", dir + "/" + p])
            #expect(lint.stdout.isEmpty && lint.stderr.isEmpty, "\(p): \(lint.stdout)\(lint.stderr)")
            let text = try String(contentsOfFile: dir + "/" + p, encoding: .utf8)
            #expect(text.contains(".Sh LINUX DIFFERENCES"), "\(p)")
            let shown = try Run.capture(["man", "-l", dir + "/" + p])
            #expect(shown.status == 0 && shown.stdout.contains("LINUX DIFFERENCES"), "\(p): \(shown.stderr)")
        }
        // Every function of <colo.h> and <copool.h> has a page that names it.
        let names = Set(pages.flatMap { p -> [String] in
            let text = (try? String(contentsOfFile: dir + "/" + p, encoding: .utf8)) ?? ""
            return text.split(separator: "\n").filter { $0.hasPrefix(".Nm ") }.map {
                String($0.dropFirst(4).split(separator: " ").first ?? "")
            }
        })
        // Every name a page describes can be asked for by name: it has a page,
        // or a link to one.
        let all = try FileManager.default.contentsOfDirectory(atPath: dir)
        for page in all where page.range(of: #"\.[1237]$"#, options: .regularExpression) != nil {
            let text = try String(contentsOfFile: dir + "/" + page, encoding: .utf8)
            let section = page.split(separator: ".").last!
            for line in text.split(separator: "\n") where line.hasPrefix(".Nm ") {
                let name = line.dropFirst(4).split(separator: " ").first.map(String.init) ?? ""
                guard name != "Ns", name.range(of: #"^[A-Za-z_][A-Za-z0-9_-]*$"#, options: .regularExpression) != nil else { continue }
                #expect(all.contains("\(name).\(section)"), "\(page) describes \(name) but man \(section) \(name) finds nothing")
            }
        }
        for f in ["coexecvp", "pthread_getthreadid_np", "sysctl"] {
            #expect(names.contains(f), "no page names \(f)")
        }
        for f in ["cocall", "cocall_slow", "_cocall", "coaccept", "coaccept_slow", "_coaccept", "cosetup", "_cosetup",
                  "coregister", "colookup", "cogetpid", "cogetpid2", "cogettid", "_cogetpid2", "_cogettid", "cocachedpid",
                  "coexecve", "coexecvec", "coexecvpc", "capvfetch", "capvset", "colo_capv_target", "capfromfd", "captofd",
                  "elf_aux_info", "cap_enter", "cap_getmode", "cap_sandboxed", "colo_sendmsg", "colo_recvmsg",
                  "copool_create", "copool_target", "copool_nthreads", "copool_members", "copool_destroy", "copool_open",
                  "copool_open_members", "copool_call", "copool_client_nthreads", "copool_lastmember", "copool_close"] {
            #expect(names.contains(f), "no page names \(f)")
        }
    }
}
