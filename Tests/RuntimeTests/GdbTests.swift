// colo gdb: gdb in batch mode against a colocated program blocked in a known function (Tests/Guests/gdbtarget.c: main → middle → stop_here → pause), ...
import Foundation
import ColoABI
import Glibc
import Testing
@testable import Runtime

/// colo gdb: gdb in batch mode against a colocated program blocked in a known function
/// (Tests/Guests/gdbtarget.c: main → middle → stop_here → pause), with the guest's program,
/// load bias and shared libraries rather than the runtime's; colo perfmap; perf, if usable.
@Suite(.serialized) struct GdbTests {
    static let gdbInstalled = access("/usr/bin/gdb", X_OK) == 0 || (try? Run.capture(["gdb", "--version"]).status) == 0

    /// The guest started colocated, blocked in stop_here; its PID.
    func start(_ variant: Guests.Variant, _ args: [String] = []) throws -> (Background, String) {
        let g = try Guests.build("gdbtarget", variant)
        let bg = try Background([Run.colo, g] + args)
        let pid = try bg.value("pid")
        // Wait until it is blocked (pause), so that the backtrace is the one we know.
        let blocked = eventually(timeout: 10) {
            let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
            return stat.split(separator: ")").last?.split(separator: " ").first == "S"
        }
        #expect(blocked)
        return (bg, pid)
    }

    /// The frames of a gdb `bt`: (number, function) in order.
    func frames(_ out: String) -> [(Int, String)] {
        out.split(separator: "\n").compactMap { line -> (Int, String)? in
            guard line.hasPrefix("#"), let sp = line.firstIndex(of: " "), let n = Int(line.dropFirst().prefix(upTo: sp)) else { return nil }
            // "#1  0x... in stop_here (count=0) at ..." or "#0  stop_here (...)"
            var rest = line[sp...].drop(while: { $0 == " " })
            if rest.hasPrefix("0x"), let r = rest.range(of: " in ") { rest = rest[r.upperBound...] }
            return (n, String(rest.prefix { $0 != " " && $0 != "(" }))
        }
    }

    @Test(.enabled(if: gdbInstalled), arguments: [Guests.Variant.staticGlibc, .dynamicGlibc])
    func backtraceShowsTheGuestsFunctions(_ variant: Guests.Variant) throws {
        let (bg, pid) = try start(variant)
        let r = try Run.colo(["gdb", "--batch", "-ex", "bt", pid], timeout: 120)
        #expect(r.status == 0, "\(r.stderr)")
        let f = frames(r.stdout).map(\.1)
        // pause (glibc names it __libc_pause when its debug information is installed),
        // then the guest's own frames, in order, down to main.
        #expect(f.first?.hasSuffix("pause") == true, "\(r.stdout)\n\(r.stderr)")
        let stop = f.firstIndex(of: "stop_here"), middle = f.firstIndex(of: "middle"), main = f.firstIndex(of: "main")
        #expect(stop != nil && middle != nil && main != nil, "\(r.stdout)")
        if let stop, let middle, let main { #expect(stop < middle && middle < main) }
        // Every frame named, none of the runtime's (a Swift program).
        let stack = r.stdout.split(separator: "\n").filter { $0.hasPrefix("#") }
        #expect(!stack.isEmpty && stack.allSatisfy { !$0.contains("??") && !$0.contains("swift") }, "\(r.stdout)")
        // Detached, the guest is still there, blocked.
        #expect(!isGone(Int32(pid)!))
        #expect(bg.child.isRunning)
    }

    @Test(.enabled(if: gdbInstalled)) func sharedLibrariesAreTheGuestsOwn() throws {
        let (guest, pid) = try start(.dynamicGlibc)
        defer { withExtendedLifetime(guest) {} }   // the runtime lives as long as its Background
        let r = try Run.colo(["gdb", "--batch", "-ex", "info sharedlibrary", "-ex", "bt 1", pid], timeout: 120)
        #expect(r.status == 0, "\(r.stderr)")
        let slot = try #require(SpaceDirectory.space(containing: Int32(pid)!)?.members.first { $0.pid == Int32(pid)! }?.slot)
        let lo = Layout.slotBase(slot), hi = lo + Layout.slotSize
        let libs = r.stdout.split(separator: "\n").filter { $0.hasPrefix("0x") && !$0.contains(" in ") }
        // libc and the dynamic linker, each loaded inside the guest's slot; none of the
        // runtime's libraries (Swift's, libstdc++, libseccomp), which /proc/PID/auxv would give.
        #expect(libs.contains { $0.hasSuffix("/libc.so.6") }, "\(r.stdout)")
        #expect(libs.contains { $0.contains("/ld-linux-x86-64.so.2") }, "\(r.stdout)")
        #expect(libs.count == 2, "\(r.stdout)")
        for l in libs {
            let from = UInt64(l.split(separator: " ")[0].dropFirst(2), radix: 16) ?? 0
            #expect(from >= lo && from < hi, "\(l) outside slot \(slot)")
        }
        // The innermost frame is libc's pause, at an address of the guest's libc.
        let frame0 = r.stdout.split(separator: "\n").first { $0.hasPrefix("#0 ") } ?? ""
        #expect(frame0.contains("pause"), "\(r.stdout)")
    }

    @Test(.enabled(if: gdbInstalled)) func theGuestKeepsRunningAfterGdbDetaches() throws {
        // Blocked in sigsuspend, which the SIGSYS handler serves: the stack goes from the
        // handler (the runtime's code, on the guest's thread) through its restorer back to
        // the guest's sigsuspend and stop_here.
        let (bg, pid) = try start(.dynamicGlibc, ["count"])
        for _ in 0..<2 {
            let r = try Run.colo(["gdb", "--batch", "-ex", "bt", pid], timeout: 120)
            #expect(r.status == 0, "\(r.stderr)")
            let f = frames(r.stdout).map(\.1)
            let handler = f.firstIndex(of: "colo_sigsys_handler")
            let suspend = handler.flatMap { h in f[h...].firstIndex { $0.hasSuffix("sigsuspend") } }
            let stop = f.firstIndex(of: "stop_here"), main = f.firstIndex(of: "main")
            #expect(handler != nil && suspend != nil && stop != nil && main != nil, "\(r.stdout)")
            if let handler, let suspend, let stop, let main { #expect(handler < suspend && suspend < stop && stop < main) }
            // The runtime's restorer is shown as gdb shows a signal trampoline.
            #expect(r.stdout.contains(" in <signal handler called> ()"), "\(r.stdout)")
            // The runtime's debug information is not read (a copy without it is given).
            #expect(!r.stderr.contains("DWO"), "\(r.stderr)")
        }
        // Not stopped, not traced, and its signal handler still runs.
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        #expect(status.contains("TracerPid:\t0\n"), "\(status)")
        kill(Int32(pid)!, SIGUSR1)
        #expect(try bg.waitFor { $0 == "alive=1" } == "alive=1")
        kill(Int32(pid)!, SIGUSR1)
        #expect(try bg.waitFor { $0 == "alive=2" } == "alive=2")
    }

    @Test(.enabled(if: gdbInstalled)) func aMuslProgramShowsItsOwnSymbols() throws {
        // musl's system-call wrappers have no unwind information, so the backtrace stops
        // there; what must hold is that the frames are the guest's, not the runtime's.
        let (guest, pid) = try start(.staticMusl)
        defer { withExtendedLifetime(guest) {} }   // the runtime lives as long as its Background
        let r = try Run.colo(["gdb", "--batch", "-ex", "bt", pid], timeout: 120)
        #expect(r.status == 0, "\(r.stderr)")
        let f = frames(r.stdout).map(\.1)
        #expect(f.contains("pause"), "\(r.stdout)")
        #expect(!r.stdout.contains("swift"), "\(r.stdout)")
    }

    @Test func scriptNamesProgramBiasAndAttach() throws {
        let (guest, pid) = try start(.dynamicGlibc)
        defer { withExtendedLifetime(guest) {} }   // the runtime lives as long as its Background
        let r = try Run.colo(["gdb", "--script", pid])
        #expect(r.status == 0, "\(r.stderr)")
        let member = try #require(SpaceDirectory.space(containing: Int32(pid)!)?.members.first { $0.pid == Int32(pid)! })
        let program = try #require(member.images.first)
        let bias = "0x" + String(program.base, radix: 16)
        #expect(program.base == Layout.slotBase(member.slot) + COLO_IMAGE_OFFSET + COLO_IMAGE_PACK_OFFSET)   // a 4 KiB-aligned program
        let lines = r.stdout.split(separator: "\n").map(String.init).filter { !$0.hasPrefix("#") }
        let exe = try Guests.build("gdbtarget", .dynamicGlibc)
        // The runtime's executable (the SIGSYS handler's code) at its own bias, outside every slot.
        let runtime = URL(fileURLWithPath: Run.colo).resolvingSymlinksInPath().path
        let rtMap = try #require(try String(contentsOfFile: "/proc/\(pid)/maps", encoding: .utf8)
            .split(separator: "\n").first { $0.hasSuffix(" " + runtime) })
        let rtBase = "0x" + String(rtMap.prefix { $0 != "-" }).drop { $0 == "0" }
        #expect(Array(lines.prefix(6)) == ["set exec-file-mismatch off", "exec-file \(exe)", "symbol-file -o \(bias) \(exe)",
                                            "with confirm off -- add-symbol-file -o \(rtBase) \(runtime)", "attach \(pid)", "python"],
                "\(r.stdout)")
        #expect(lines.last == "end")
        #expect(r.stdout.contains("# library: /lib/x86_64-linux-gnu/libc.so.6 at 0x"), "\(r.stdout)")
        #expect(r.stdout.contains("# interpreter: "), "\(r.stdout)")

        // A static program has no r_debug: gdb must not fall back on the runtime's libraries.
        let (staticGuest, spid) = try start(.staticGlibc)
        defer { withExtendedLifetime(staticGuest) {} }   // the runtime lives as long as its Background
        let s = try Run.colo(["gdb", "--script", spid])
        #expect(s.stdout.contains("set auto-solib-add off\n"), "\(s.stdout)")
        #expect(s.stdout.split(separator: "\n").filter { $0.contains("add-symbol-file") }.count == 1, "\(s.stdout)")
    }

    @Test func refusesWhatIsNotAColocatedProgram() throws {
        let (guest, pid) = try start(.staticGlibc)
        defer { withExtendedLifetime(guest) {} }   // the runtime lives as long as its Background
        let rt = try #require(SpaceDirectory.space(containing: Int32(pid)!)?.table.runtimePID)
        let r = try Run.colo(["gdb", "--script", String(rt)])
        #expect(r.status == 1)
        #expect(r.stderr.contains("is the runtime of its address space, not a colocated program (its members: \(pid))"), "\(r.stderr)")
        let none = try Run.colo(["gdb", "--script", "1"])
        #expect(none.status == 1 && none.stderr.contains("1 is not a colocated process"), "\(none.stderr)")
        let noPID = try Run.colo(["gdb", "--batch"])
        #expect(noPID.status == 2 && noPID.stderr.contains("no PID given"), "\(noPID.stderr)")
        let other = try Run.colo(["gdb", "-p", pid, pid])
        #expect(other.status == 2 && other.stderr.contains("colo gdb chooses the program and the process itself"))
        let help = try Run.colo(["gdb", "--help"])
        #expect(help.status == 0 && help.stdout.contains("USAGE: colo gdb [--script] [--gdb PATH] [GDB-OPTIONS ...] PID"), "\(help.stdout)")
    }

    @Test func perfmapListsTheGuestsFunctionsAtTheirAddresses() throws {
        let (guest, pid) = try start(.dynamicGlibc)
        defer { withExtendedLifetime(guest) {} }   // the runtime lives as long as its Background
        let out = NSTemporaryDirectory() + "colo-perfmap-\(getpid()).map"
        defer { unlink(out) }
        let r = try Run.colo(["perfmap", "-o", out, pid])
        #expect(r.status == 0, "\(r.stderr)")
        let text = try String(contentsOfFile: out, encoding: .utf8)
        var byName = [String: (UInt64, UInt64)]()
        for l in text.split(separator: "\n") {
            let f = l.split(separator: " ", maxSplits: 2)
            #expect(f.count == 3, "\(l)")
            if f.count == 3, let a = UInt64(f[0], radix: 16), let n = UInt64(f[1], radix: 16) { byName[String(f[2])] = (a, n) }
        }
        let member = try #require(SpaceDirectory.space(containing: Int32(pid)!)?.members.first { $0.pid == Int32(pid)! })
        let base = try #require(member.images.first?.base)
        // stop_here at the program's bias plus its value in the file (nm).
        let exe = try Guests.build("gdbtarget", .dynamicGlibc)
        let nm = try Run.capture(["nm", exe]).stdout
        let value = nm.split(separator: "\n").first { $0.hasSuffix(" T stop_here") }.flatMap { UInt64($0.prefix(16), radix: 16) }
        #expect(byName["stop_here"]?.0 == base + (value ?? 0), "\(String(describing: byName["stop_here"]))")
        #expect((byName["stop_here"]?.1 ?? 0) > 0)
        // libc's pause, inside the slot.
        let lo = Layout.slotBase(member.slot)
        let pause = try #require(byName["pause"])
        #expect(pause.0 >= lo && pause.0 < lo + Layout.slotSize)
        // Sorted by address.
        let addrs = text.split(separator: "\n").compactMap { UInt64($0.prefix { $0 != " " }, radix: 16) }
        #expect(addrs == addrs.sorted())
    }

    /// perf comes from Debian's linux-perf, which scripts/setup installs; where it is missing
    /// or may not count cpu-clock (perf_event_paranoid > 2 without CAP_PERFMON), the perf
    /// tests are skipped with this comment.
    static let perfSkipped: Comment = "perf is not installed (Debian linux-perf, see scripts/setup) or cannot count cpu-clock: perf stat -e cpu-clock true fails"
    static let perfUsable: Bool = {
        guard let r = try? Run.capture(["perf", "stat", "-e", "cpu-clock", "-x", ",", "true"]) else { return false }
        return r.status == 0
    }()

    @Test(.enabled(if: perfUsable, perfSkipped)) func perfReportNamesTheGuestsFunction() throws {
        let g = try Guests.build("gdbtarget", .dynamicGlibc)
        let data = NSTemporaryDirectory() + "colo-perf-\(getpid()).data"
        defer { unlink(data); unlink(data + ".old") }
        let rec = try Run.capture(["perf", "record", "-q", "-e", "cpu-clock", "-F", "499", "-o", data, "--", Run.colo, g, "spin", "1"], timeout: 120)
        #expect(rec.status == 0, "\(rec.stderr)")
        let pid = values(rec.stdout)["pid"] ?? "?"
        let rep = try Run.capture(["perf", "report", "-i", data, "--stdio", "--sort", "pid,sym"], timeout: 120)
        let line = rep.stdout.split(separator: "\n").first { $0.contains("spin_here") } ?? ""
        #expect(line.contains("\(pid):gdbtarget"), "\(rep.stdout.prefix(2000))")
    }

    /// A program started by exec in place: the runtime mapped it, so a recording of the whole
    /// run cannot name it (colo-gdb(1)); recorded by PID, perf reads /proc/PID/maps and can.
    @Test(.enabled(if: perfUsable, perfSkipped)) func perfByPIDNamesAProgramExecutedInPlace() throws {
        let g = try Guests.build("gdbtarget", .dynamicGlibc)
        let bg = try Background([Run.colo, "/bin/sh", "-c", "exec \(g) spin 4"])
        let pid = try bg.value("pid")
        let data = NSTemporaryDirectory() + "colo-perf-p-\(getpid()).data"
        defer { unlink(data); unlink(data + ".old") }
        let rec = try Run.capture(["perf", "record", "-q", "-e", "cpu-clock", "-F", "499", "-p", pid, "-o", data, "--", "sleep", "1"], timeout: 120)
        #expect(rec.status == 0, "\(rec.stderr)")
        let rep = try Run.capture(["perf", "report", "-i", data, "--stdio", "--sort", "pid,sym"], timeout: 120)
        let line = rep.stdout.split(separator: "\n").first { $0.contains("spin_here") } ?? ""
        #expect(line.contains("\(pid):gdbtarget"), "\(rep.stdout.prefix(2000))")
        #expect(bg.wait(timeout: 30) == 0)
    }
}
