// A colocated shell used as people use one.
import Foundation
import Glibc
import Testing
@testable import Runtime

/// A colocated shell used as people use one: interactively under a terminal,
/// and programs spawning programs.
@Suite(.serialized) struct ShellTests {
    /// An interactive `colo /bin/sh -i` in a tmux pane.
    final class Terminal {
        let session = "colo-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        init(_ command: String) throws {
            let r = try Run.capture(["tmux", "new-session", "-d", "-s", session, "-x", "150", "-y", "40", command])
            guard r.status == 0 else { throw TestFailure("tmux: \(r.stderr)") }
        }
        func type(_ keys: String...) { _ = try? Run.capture(["tmux", "send-keys", "-t", session] + keys) }
        var screen: String { (try? Run.capture(["tmux", "capture-pane", "-t", session, "-p"]).stdout) ?? "" }
        /// Wait until the screen shows `text` (after `after` occurrences).
        func waitFor(_ text: String, count: Int = 1, timeout: Double = 10) -> Bool {
            eventually(timeout: timeout) { self.screen.components(separatedBy: text).count - 1 >= count }
        }
        deinit { _ = try? Run.capture(["tmux", "kill-session", "-t", session]) }
    }

    /// Wait until process `pid` leads the terminal's foreground process group,
    /// as the shell arranges for a foreground job (only then do ^C and ^Z reach it).
    func ownsTerminal(_ pid: pid_t) -> Bool {
        eventually {
            guard let s = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let f = s.split(separator: ")").last?.split(separator: " "), f.count > 5 else { return false }
            return f[2] == f[5]
        }
    }

    /// The last pid=N line on the screen.
    func lastPID(_ screen: String) -> pid_t {
        pid_t(screen.split(separator: "\n").last { $0.hasPrefix("pid=") }?.dropFirst(4) ?? "") ?? 0
    }

    @Test func jobControlUnderATerminal() throws {
        let probe = try Guests.probe()
        let out = Guests.buildDir + "/interactive-\(getpid()).txt"
        let t = try Terminal("\(Run.colo) /bin/sh -i")
        #expect(t.waitFor("#") || t.waitFor("$"), "a prompt: \(t.screen)")
        t.type("\(probe) info > \(out)", "Enter")
        #expect(eventually { (try? String(contentsOfFile: out, encoding: .utf8))?.contains("mmap_slot=") == true })
        let v = values((try? String(contentsOfFile: out, encoding: .utf8)) ?? "")
        #expect(v["slot"].flatMap { UInt64($0, radix: 16) }.map { $0 >= Layout.regionBase >> 36 && $0 < Layout.regionEnd >> 36 } == true,
                "an interactive simple command runs colocated")

        t.type("\(probe) sleep 30", "Enter")
        #expect(t.waitFor("ready"))
        #expect(ownsTerminal(lastPID(t.screen)))
        t.type("C-c")
        t.type("echo status=$?", "Enter")
        #expect(t.waitFor("status=130"), "Ctrl-C ends the foreground command: \(t.screen)")

        t.type("\(probe) sleep 30", "Enter")
        #expect(t.waitFor("ready", count: 2))
        let job = lastPID(t.screen)
        #expect(ownsTerminal(job))
        t.type("C-z")
        #expect(t.waitFor("Stopped"), "Ctrl-Z stops it: \(t.screen)")
        #expect(eventually { (try? String(contentsOfFile: "/proc/\(job)/stat", encoding: .utf8))?.contains(") T ") == true })
        t.type("kill -9 %1", "Enter")
        #expect(eventually { isGone(job) }, "kill %1 ends the stopped job")
        t.type("echo still=here", "Enter")
        #expect(t.waitFor("still=here"), "the shell goes on:\n\(t.screen)")
        t.type("exit", "Enter")
    }

    @Test func coloInsideAnAddressSpaceStaysInIt() throws {
        let probe = try Guests.probe()
        let r = try Run.colo(["/bin/sh", "-c", "\(Run.colo) \(probe) info; echo shell=$$"])
        #expect(r.status == 0, "\(r.stderr)")
        let v = values(r.stdout)
        let slot = try #require(v["slot"].flatMap { UInt64($0, radix: 16) })
        #expect(slot >= Layout.regionBase >> 36 && slot < Layout.regionEnd >> 36, "colo inside runs the command colocated")
        #expect(v["ppid"] == v["shell"], "in the shell's address space, as the shell's child: no nested runtime")
    }

    @Test func aSwiftProgramSpawnsColocatedChildren() throws {
        let dir = Guests.buildDir
        let src = dir + "/spawner.swift"
        try """
        import Foundation
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CommandLine.arguments[1])
        p.arguments = Array(CommandLine.arguments.dropFirst(2))
        try p.run()
        p.waitUntilExit()
        print("child_status=\\(p.terminationStatus)")
        """.write(toFile: src, atomically: true, encoding: .utf8)
        let bin = dir + "/spawner"
        let b = try Run.capture(["swiftc", "-module-name", "spawner", src, "-o", bin], timeout: 300)
        try #require(b.status == 0, "\(b.stderr)")
        let r = try Run.colo([bin, try Guests.probe(.dynamicGlibc), "info"], timeout: 60)
        #expect(r.status == 0, "\(r.stderr)")
        let v = values(r.stdout)
        #expect(v["child_status"] == "0")
        #expect(v["slot"].flatMap { UInt64($0, radix: 16) }.map { $0 >= Layout.regionBase >> 36 && $0 < Layout.regionEnd >> 36 } == true,
                "Process (posix_spawn) in a colocated Swift program starts a colocated child: \(r.stdout)")
    }
}
