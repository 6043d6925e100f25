// scripts/install and the manual pages.
import Foundation
import Glibc
import Testing

/// scripts/install and the manual pages.
@Suite(.serialized) struct UserlandInstallTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    @Test func installedToolsFindTheirLibrariesAndColoPcBuildsAProgram() throws {
        let prefix = Guests.buildDir + "/prefix-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: prefix) }
        let i = try Tools.run([Self.root + "/scripts/install", prefix], env: ["COLO_BIN=" + Tools.binDir], timeout: 180)
        #expect(i.status == 0, "\(i.stdout) \(i.stderr)")
        for f in ["bin/colo", "bin/capv", "bin/clocks", "bin/binds", "bin/cotrace", "bin/coping", "bin/copong", "bin/coregister",
                  "bin/colookup", "lib/libcolo.a", "lib/libcolo.so.0", "lib/libclocks.so", "lib/libbinds.so", "lib/libcs.so", "lib/libpaths.so",
                  "bin/cs", "bin/paths", "bin/clearances", "include/sys/capsicum.h",
                  "include/colo.h", "include/capv.h", "lib/pkgconfig/colo.pc", "share/man/man1/capv.1", "share/man/man7/capv.7",
                  "share/man/man7/colocation.7"] {
            #expect(FileManager.default.fileExists(atPath: prefix + "/" + f), "\(f)")
        }
        // The installed clocks preloads PREFIX/lib/libclocks.so, and date goes through it.
        let path = prefix + "/bin:/usr/bin:/bin"
        let r = try Run.capture(["/usr/bin/env", "PATH=" + path, "clocks", "-v", "sh", "-c", "echo $LD_PRELOAD; date"])
        #expect(r.stdout.hasPrefix(prefix + "/lib/libclocks.so\n"), "\(r.stdout) \(r.stderr)")
        #expect(hasLine(r.stdout, #"clocks: op 8, len 16 from pid \d+ -> pid \d+"#))
        // A CheriBSD-style program built with pkg-config against the prefix.
        let exe = prefix + "/answerback"
        let flags = try Run.capture(["/usr/bin/env", "PKG_CONFIG_PATH=" + prefix + "/lib/pkgconfig", "pkg-config", "--cflags", "--libs", "colo"])
        #expect(flags.status == 0, "\(flags.stderr)")
        let src = Guests.sourceDir.appendingPathComponent("userland_answerback.c").path
        let cc = try Run.capture(["cc", "-O1", "-fPIE", "-pie", src, "-o", exe] + flags.stdout.split(separator: " ").map { String($0).trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty })
        #expect(cc.status == 0, "\(cc.stderr)")
        let run = try Run.capture(["/usr/bin/env", "PATH=" + path, "clocks", "binds", exe])
        #expect(hasLine(run.stdout, #"8: clocks\(1\), pid \d+, responding to clock_gettime\(\)"#), "\(run.stdout) \(run.stderr)")
        #expect(hasLine(run.stdout, #"10: binds\(1\), pid \d+, allowed port -1 \(capsicum disabled\)"#))
    }

    @Test func manualPagesPassMandocLint() throws {
        let dir = Self.root + "/man"
        let pages = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".1") || $0.hasSuffix(".7") }
        let ours = ["capv.1", "clocks.1", "binds.1", "cotrace.1", "coping.1", "copong.1", "coregister.1", "colookup.1",
                    "clearances.1", "dispatch.1", "cs.1", "paths.1", "capv.7", "colocation.7"]
        for p in ours { #expect(pages.contains(p), "\(p)") }
        for p in pages {
            let r = try Run.capture(["mandoc", "-Tlint", dir + "/" + p])
            let problems = (r.stdout + r.stderr).split(separator: "\n").filter {
                $0.contains(": ERROR: ") || $0.contains(": UNSUPP: ") || (ours.contains(p) && $0.contains(": WARNING: "))
            }
            #expect(problems.isEmpty, "\(p): \(problems)")
        }
    }

    @Test func manSevenCapvIsShorterThanTheTutorial() throws {
        let capv7 = try String(contentsOfFile: Self.root + "/man/capv.7", encoding: .utf8)
        #expect(capv7.count < 21_263, "\"man 7 capv is shorter\"")
    }
}
