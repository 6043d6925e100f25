// SyscallTiming.swift - syscall_timing(1): the test table, the options and the runs, FreeBSD's tool for colocated processes on Linux.
import ArgumentParser
import CoHelpers
import CoTools
import Glibc
import GuestAPI
import TimingLoops

/// One test of the table: FreeBSD's name, loop and integer argument.
struct TimingTest {
    struct Flags: OptionSet {
        let rawValue: Int
        /// Needs a file (-p, or a temporary one).
        static let path = Flags(rawValue: 1)
        /// Needs a target (-n).
        static let name = Flags(rawValue: 2)
        /// The target must make one system call per call (syscall_timing_pong -y).
        static let syscallCallee = Flags(rawValue: 4)
        /// Runs inside an address space (the co* tests): every other test is
        /// a plain program's, and runs natively unless started colocated.
        static let colocated = Flags(rawValue: 8)
    }

    let name: String
    let run: timing_fn
    var flags: Flags = []
    var arg: UInt = 0

    /// The message sizes of the ping-pong and copy tests (CheriBSD's 8 ... 8000000).
    static let sizes: [UInt] = [8, 80, 800, 8000, 80000, 800000, 8000000]

    static func sized(_ prefix: String, _ run: timing_fn, _ flags: Flags = [], sizes: [UInt] = sizes) -> [TimingTest] {
        sizes.map { TimingTest(name: "\(prefix)_\($0)", run: run, flags: flags, arg: $0) }
    }

    /// Every test, in the order the usage lists them.
    static let all: [TimingTest] = {
        let files: [UInt] = [1, 10, 100, 1000, 10000, 100000, 1000000]
        var t = [TimingTest]()
        t.append(TimingTest(name: "access", run: timing_access, flags: .path))
        t.append(TimingTest(name: "bad_open", run: timing_bad_open))
        t.append(TimingTest(name: "chroot", run: timing_chroot))
        t.append(TimingTest(name: "clock_gettime", run: timing_clock_gettime))
        t += sized("coping", timing_coping, [.name, .colocated])
        t += sized("coping_slow", timing_coping_slow, [.name, .colocated])
        t += sized("coping_syscall", timing_coping, [.name, .colocated, .syscallCallee])
        t.append(TimingTest(name: "create_unlink", run: timing_create_unlink, flags: .path))
        t.append(TimingTest(name: "dup", run: timing_dup))
        t.append(TimingTest(name: "fork", run: timing_fork))
        t.append(TimingTest(name: "fork_exec", run: timing_fork_exec))
        t.append(TimingTest(name: "fstat_shmfd", run: timing_fstat_shmfd))
        t.append(TimingTest(name: "futexping", run: timing_futexping))
        t += sized("futexping", timing_futexping)
        t.append(TimingTest(name: "getpid", run: timing_getpid))
        t.append(TimingTest(name: "getppid", run: timing_getppid))
        t.append(TimingTest(name: "getpriority", run: timing_getpriority))
        t.append(TimingTest(name: "getprogname", run: timing_getprogname))
        t.append(TimingTest(name: "getresuid", run: timing_getresuid))
        t.append(TimingTest(name: "gettimeofday", run: timing_gettimeofday))
        t.append(TimingTest(name: "getuid", run: timing_getuid))
        t.append(TimingTest(name: "lstat", run: timing_lstat, flags: .path))
        t += sized("memcpy", timing_memcpy)
        t.append(TimingTest(name: "open_close", run: timing_open_close, flags: .path))
        t += sized("open_read_close", timing_open_read_close, .path, sizes: files)
        t.append(TimingTest(name: "pipe", run: timing_pipe))
        t += sized("pipeping", timing_pipeping)
        t += sized("pipepingtd", timing_pipepingtd)
        t += sized("read", timing_read, .path, sizes: files)
        t.append(TimingTest(name: "readlink", run: timing_readlink, flags: .path))
        t.append(TimingTest(name: "select", run: timing_select))
        t.append(TimingTest(name: "semaping", run: timing_semaping))
        t.append(TimingTest(name: "setuid", run: timing_setuid))
        t.append(TimingTest(name: "shmfd", run: timing_shmfd))
        t.append(TimingTest(name: "socket_local_stream", run: timing_socket_stream, arg: UInt(PF_LOCAL)))
        t.append(TimingTest(name: "socket_local_dgram", run: timing_socket_dgram, arg: UInt(PF_LOCAL)))
        t.append(TimingTest(name: "socketpair_stream", run: timing_socketpair_stream))
        t.append(TimingTest(name: "socketpair_dgram", run: timing_socketpair_dgram))
        t.append(TimingTest(name: "socket_tcp", run: timing_socket_stream, arg: UInt(PF_INET)))
        t.append(TimingTest(name: "socket_udp", run: timing_socket_dgram, arg: UInt(PF_INET)))
        t.append(TimingTest(name: "unixping", run: timing_unixping))
        t += sized("unixping", timing_unixping)
        t.append(TimingTest(name: "vfork", run: timing_vfork))
        t.append(TimingTest(name: "vfork_exec", run: timing_vfork_exec))
        return t
    }()

    /// The test called `name`; a message-size test also runs at sizes the
    /// usage does not list (coping_4096), since the switcher's costs are
    /// judged at page sizes too.
    static func named(_ name: String) -> TimingTest? {
        if let t = all.first(where: { $0.name == name }) { return t }
        guard let us = name.lastIndex(of: "_"), let n = UInt(name[name.index(after: us)...]), n > 0,
              let model = all.first(where: { $0.name == name[..<us] + "_8" }) else { return nil }
        return TimingTest(name: name, run: model.run, flags: model.flags, arg: n)
    }
}

/// syscall_timing(1): FreeBSD's tools/tools/syscall_timing (CheriBSD's, with
/// the cocall tests) for colocated processes on Linux.
@main
struct SyscallTiming: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "syscall_timing",
        abstract: "Time system calls, cocalls and the ways of crossing a protection boundary.")
    static let optstring = "c:i:l:n:p:r:s:t"

    @Option(name: .customShort("c"), parsing: .unconditionalSingleValue, help: "Counters to sample with -r.") var counters: [String] = []
    @Option(name: .customShort("i"), parsing: .unconditional, help: "Iterations per run.") var iterations: String?
    @Option(name: .customShort("l"), parsing: .unconditional, help: "Runs per test (after one warm-up).") var loops: String?
    @Option(name: .customShort("n"), parsing: .unconditional, help: "Coregistered name or capability-vector index of the coping target.") var name: String?
    @Option(name: .customShort("p"), parsing: .unconditional, help: "File for the path tests.") var path: String?
    @Option(name: .customShort("r"), parsing: .unconditional, help: "File for the per-iteration samples.") var raw: String?
    @Option(name: .customShort("s"), parsing: .unconditional, help: "Seconds per run (the alarm).") var seconds: String?
    @Flag(name: .customShort("t"), help: "Mark each run in the ftrace buffer.") var trace = false
    @Argument(parsing: .postTerminator, help: "test ...") var tests: [String] = []

    static var usageText: String {
        "syscall_timing [-c counter,...] [-i iterations] [-l loops] [-n name] [-p path] [-r path] [-s seconds] [-t] test ...\n"
            + "Available tests:\n" + TimingTest.all.map { "  \($0.name)\n" }.joined()
            + "Available counters, to use with -c:\n" + Counter.usageLines.map { $0 + "\n" }.joined()
    }

    /// FreeBSD's usage(): the text on stderr, exit(-1).
    static func usage() -> Never {
        Diag.stderr(usageText)
        Glibc.exit(255)
    }

    /// BSD getopt(3) decides, ArgumentParser declares (as the other tools, with this tool's usage).
    static func main() {
        Diag.setProgname(CommandLine.arguments.first ?? "syscall_timing")
        switch Getopt.parse(Array(CommandLine.arguments.dropFirst()), optstring) {
        case .failure(let f):
            Diag.stderr("\(Diag.progname): \(f.message)\n")
            usage()
        case .success(let g):
            commandLine = g
            guard let parsed = try? parseAsRoot(g.tokens), var command = parsed as? SyscallTiming else { usage() }
            command.run()
        }
    }

    /// strtol(3) of the whole string, as FreeBSD checks -i, -l and -s.
    static func integer(_ s: String) -> Int? {
        s.withCString { p -> Int? in
            var end: UnsafeMutablePointer<CChar>? = nil
            let v = strtol(p, &end, 10)
            return end?.pointee == 0 ? v : nil
        }
    }

    /// -s: whole seconds as FreeBSD (1 ... 3600), or a decimal fraction (a
    /// Linux extension, for short runs in CI).
    static func alarmSeconds(_ s: String) -> Double? {
        s.withCString { p -> Double? in
            var end: UnsafeMutablePointer<CChar>? = nil
            let v = strtod(p, &end)
            guard end != UnsafeMutablePointer(mutating: p), end?.pointee == 0, v > 0, v <= 3600 else { return nil }
            return v
        }
    }

    /// -t: the ftrace marker file (tracefs).
    static func openTraceMarker() -> Int32 {
        for p in ["/sys/kernel/tracing/trace_marker", "/sys/kernel/debug/tracing/trace_marker"] {
            let fd = open(p, O_WRONLY | O_CLOEXEC)
            if fd >= 0 { return fd }
            if errno != ENOENT { Diag.err(1, "-t: \(p)") }
        }
        Diag.errx(1, "-t: tracefs is not mounted (mount -t tracefs nodev /sys/kernel/tracing)")
    }

    mutating func run() {
        var iterations: UInt = 0, loops: UInt = 10, alarm = 1.0
        var name: String?, path: String?, rawPath: String?
        var counterFDs = [Int32]()
        for (letter, value) in commandLine.options {
            let v = value ?? ""
            switch letter {
            case "c":
                for n in v.split(separator: ",", omittingEmptySubsequences: false).map(String.init) {
                    if counterFDs.count >= Counter.maximum { Diag.errx(1, "must specify at most \(Counter.maximum) counters") }
                    guard let c = Counter.named(n) else { Diag.errx(1, "invalid counter name, see usage for list") }
                    counterFDs.append(c.open(as: n))
                }
            case "i":
                guard let n = Self.integer(v), n >= 1 else { Self.usage() }
                iterations = UInt(n)
            case "l":
                guard let n = Self.integer(v), n >= 1, n <= 100000 else { Self.usage() }
                loops = UInt(n)
            case "n": name = v
            case "p": path = v
            case "r": rawPath = v
            case "s":
                guard let s = Self.alarmSeconds(v) else { Self.usage() }
                alarm = s
            case "t": timing_set_trace(Self.openTraceMarker())
            default: Self.usage()
            }
        }
        if rawPath != nil && iterations == 0 { Diag.errx(1, "-r must be followed by -i") }
        if !counterFDs.isEmpty && rawPath == nil { Diag.errx(1, "-c must be followed by -r") }
        if iterations < 1 { iterations = UInt(UInt64.max) }
        if tests.isEmpty { Self.usage() }

        var needsFile = false
        var selected = [TimingTest]()
        for t in tests {
            guard let test = TimingTest.named(t) else { Self.usage() }
            if test.flags.contains(.path) && path == nil { needsFile = true }
            if test.flags.contains(.name) && name == nil { Diag.errx(1, "test \(t) requires -n") }
            selected.append(test)
        }

        // A plain program, as FreeBSD's: started outside an address space it
        // runs its tests natively, and enters one (runs itself again as
        // `colo syscall_timing ...`) only for the co* tests.
        if selected.contains(where: { $0.flags.contains(.colocated) }) { Colocation.ensure() }
        cotool_line_buffer_stdout()
        timing_set_alarm(alarm)

        var tmpDir: String?, tmpPath: String?
        if needsFile {
            var template = Array("/tmp/syscall_timing.XXXXXXXX".utf8CString)
            guard mkdtemp(&template) != nil else { Diag.err(1, "mkdtemp") }
            tmpDir = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
            tmpPath = tmpDir! + "/testfile"
        }

        var rawFile: UnsafeMutablePointer<FILE>?
        if let rawPath {
            rawFile = fopen(rawPath, "w")
            if rawFile == nil { Diag.err(1, rawPath) }
            if timing_raw_setup(UInt(iterations), Int32(counterFDs.count), counterFDs) != 0 { Diag.err(1, "calloc") }
        }

        var res = timespec()
        clock_getres(CLOCK_REALTIME, &res)
        print("Clock resolution: \(res.tv_sec).\(Self.nine(res.tv_nsec))")
        print("test\tloop\ttime\titerations\tperiteration")

        var target: Capability?? = nil
        for test in selected {
            if let tmpPath {
                let fd = open(tmpPath, O_WRONLY | O_CREAT, 0o700)
                if fd < 0 { Diag.err(1, "cannot open \(tmpPath)") }
                if ftruncate(fd, 1_000_000) != 0 { Diag.err(1, "ftruncate") }
                if close(fd) != 0 { Diag.err(1, "close") }
                path = tmpPath
            }
            var argument = path
            if test.flags.contains(.name), let name {
                argument = name
                if target == nil { target = .some(Self.resolve(name)) }
                timing_set_target(target!)
                if test.flags.contains(.syscallCallee) { Self.checkSyscallCallee(target!, name, test) }
            }
            let p = argument.map { strdup($0) } ?? nil
            defer { free(p) }
            test.name.withCString { label in
                timing_set_label(label)
                // One warm-up, then the real thing, `loops` times.
                _ = test.run(UInt(iterations), UInt(test.arg), p)
                for k in 0..<loops {
                    let calls = test.run(UInt(iterations), UInt(test.arg), p)
                    var ts = timespec()
                    timing_elapsed(&ts)
                    // Assumes an iteration takes less than a second, as FreeBSD's.
                    let total = UInt(ts.tv_sec) * 1_000_000_000 + UInt(ts.tv_nsec)
                    let each = calls == 0 ? 0 : total / UInt(calls)
                    print("\(test.name)\t\(k)\t\(ts.tv_sec).\(Self.nine(ts.tv_nsec))\t\(calls)\t0.\(Self.nine(Int(each)))")
                }
            }
        }

        if let rawFile {
            let values = timing_raw_values()!
            let width = 1 + counterFDs.count
            for i in 1..<(Int(iterations) + 1) {
                let row = (0..<width).map { String(values[i * width + $0]) }.joined(separator: "\t") + "\n"
                fputs(row, rawFile)
            }
            if fclose(rawFile) != 0 { Diag.warn(rawPath!) }
        }
        if let tmpPath, let tmpDir {
            if unlink(tmpPath) != 0 && errno != ENOENT { Diag.warn("cannot unlink \(tmpPath)") }
            if rmdir(tmpDir) != 0 { Diag.warn("cannot rmdir \(tmpDir)") }
        }
        cotool_flush_stdout()
        Glibc.exit(0)
    }

    /// "%09ju".
    static func nine(_ v: Int) -> String {
        let s = String(v)
        return String(repeating: "0", count: max(0, 9 - s.count)) + s
    }

    /// The target of the coping tests: a capability-vector index (CheriBSD's
    /// generation 3, `syscall_timing.c@0922f7a0`) when -n is a number, else a
    /// name coregistered in this address space (`@5fad35f6`, colookup(2)).
    static func resolve(_ name: String) -> Capability? {
        Service.setupCaller()
        let first = name.utf8.first
        let numeric = first == nil || (first! >= UInt8(ascii: "0") && first! <= UInt8(ascii: "9"))
            || first == UInt8(ascii: "-") || first == UInt8(ascii: "+")
        guard numeric else { return lookupOrExit(name) }
        guard let index = integer(name), !name.isEmpty, index >= 0, index <= Int(Int32.max) else {
            Diag.errx(1, "path argument must be a positive number")
        }
        let vector = CapVector.fetch()
        if vector.capc <= 0 || vector.capv == nil { Diag.errx(1, "no capability vector") }
        if index >= Int(vector.capc) { Diag.errx(1, "entry \(index) >= capc \(vector.capc)") }
        return vector[index]
    }

    /// coping_syscall_N measures a callee that makes one system call per
    /// call: syscall_timing_pong -y answers with the first word complemented.
    static func checkSyscallCallee(_ target: Capability?, _ name: String, _ test: TimingTest) {
        let word = UInt64(0x5359_5343_414c_4c00) | UInt64(test.arg & 0xff)
        var reply: UInt64 = 0
        let n = timing_cocall_once(target, Int(test.arg), word, &reply)
        if n < 0 { Diag.err(1, "cocall") }
        if n < 8 || reply != ~word {
            Diag.errx(1, "test \(test.name): \(name) does not make a system call per call (start it as syscall_timing_pong -y)")
        }
    }
}
