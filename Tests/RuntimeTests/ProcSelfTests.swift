// A process sees itself: /proc/self/exe and its other spellings name the member's own
// program, and exec through them re-runs it, as natively.
import Foundation
import Glibc
import Testing
@testable import Runtime

@Suite(.serialized) struct ProcSelfTests {
    /// The output without the pid lines (they differ from run to run).
    func lines(_ r: Run.Result) -> [Substring] { r.stdout.split(separator: "\n").filter { !$0.hasPrefix("pid=") } }

    @Test(arguments: Guests.Variant.allCases)
    func exeLinksAndReExecAreAsNative(_ variant: Guests.Variant) throws {
        let program = try Guests.build("selfexe", variant)
        let real = try #require(realpath(program, nil).map { p in defer { free(p) }; return String(cString: p) })
        for mode in ["show", "execve", "execveat", "fexecve"] {
            let native = try Run.capture([program, mode])
            let colocated = try Run.colo([program, mode])
            #expect(colocated.status == native.status && native.status == 0, "\(mode): \(colocated.stderr)")
            #expect(lines(colocated) == lines(native), "\(mode), \(variant)")
            #expect(values(colocated.stdout)["exe"] == real, "\(mode): /proc/self/exe names the program")
            let pids = colocated.stdout.split(separator: "\n").filter { $0.hasPrefix("pid=") }
            #expect(pids.count == (mode == "show" ? 1 : 2) && Set(pids).count == 1, "\(mode): the PID is kept")
        }
    }

    @Test func anotherMembersExeLink() throws {
        let probe = try Guests.probe()
        let holder = try Background([Run.colo, probe, "hold"])
        let pid = try holder.value("pid")
        let program = try Guests.build("selfexe", .staticGlibc)
        let r = try Run.colo(["--join", pid, program, "other", pid])
        let real = try #require(realpath(probe, nil).map { p in defer { free(p) }; return String(cString: p) })
        #expect(values(r.stdout)["otherexe"] == real, "a member reading another member's link: \(r.stdout)")
        kill(pid_t(pid)!, SIGUSR1)
        #expect(holder.wait() == 0)
    }

    @Test func scriptsExeIsTheirInterpreter() throws {
        let program = try Guests.build("selfexe", .dynamicGlibc)
        let script = Guests.buildDir + "/selfexe-script"
        try "#!\(program) show\n".write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        let native = try Run.capture([script])
        let colocated = try Run.colo([script])
        #expect(lines(colocated) == lines(native) && values(native.stdout)["exe"]?.hasSuffix("selfexe-dynamic-glibc") == true)
    }
}
