// colo(1): run a command colocated, join an address space, and the ps/procstat/sysctl/trace views.
import ArgumentParser
import Bytes
import CLinux
import ColoABI
import Errors
import Glibc
import Observability
import Runtime

@main
struct Colo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "colo",
        abstract: "Run programs colocated in one address space, CheriBSD-style.",
        discussion: """
            colo COMMAND [ARGS...] creates an address space and runs COMMAND in it as a \
            colocated process.  colo --join PID COMMAND starts COMMAND in the address space \
            of the colocated process PID.  To run a program whose name is also a colo \
            subcommand, give its path or write `colo run ps`.
            """,
        subcommands: [Run.self, Ps.self, Procstat.self, Sysctl.self, Trace.self, SwitcherLogCommand.self, Gdb.self, PerfMap.self],
        defaultSubcommand: Run.self)

    static func main() {
        // The runtime a fork child started in its own mm to become an address space (space.c).
        if let status = AddressSpace.serveForkSpace(arguments: rawArguments()) { Glibc.exit(status) }
        Self.main(nil)
    }
}

/// Print "colo: message" and exit with `status`.
func fail(_ message: String, status: Int32 = 1) -> Never {
    var line = "colo: \(message)\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    Glibc.exit(status)
}

/// Resolve a command name like execvp does: names with a slash are paths,
/// others are searched in PATH.
func resolve(_ name: ByteString) -> ByteString {
    if name.contains(UInt8(ascii: "/")) { return name }
    let path = environmentValue("PATH") ?? "/usr/local/bin:/usr/bin:/bin"
    for dir in path.split(separator: UInt8(ascii: ":")) {
        let candidate = (dir.isEmpty ? "." : dir) + "/" + name
        if candidate.withCString({ access($0, X_OK) }) == 0 { return candidate }
    }
    return name
}

func resolve(_ name: String) -> String {
    resolve(ByteString(name)).description
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a command colocated (the default subcommand).")

    @Option(name: .customLong("join"), help: "Start the command in the address space of this colocated process.")
    var join: Int32?

    @Argument(parsing: .captureForPassthrough, help: "The command and its arguments.")
    var command: [String] = []

    func run() throws {
        // The parser's strings had bytes that are not UTF-8 replaced: the command is taken
        // from the process's own argv, whose last command.count entries it is.
        var argv = Array(rawArguments().suffix(command.count))
        if argv.first == "--" { argv.removeFirst() }
        guard let name = argv.first else { fail("no command given (usage: colo [--join PID] command [args ...])", status: 2) }
        let path = resolve(name)
        let envp = rawEnvironment()
        if let pid = join {
            do throws(ColoError) { Glibc.exit(try Join.run(into: pid, path: path, argv: argv, envp: envp)) }
            catch { fail(error.message, status: error.errno == .ENOENT ? 127 : 126) }
        }
        // Already colocated: stay in this address space (the exec is in place).
        if SpaceDirectory.space(containing: getpid()) != nil {
            argv.withCStringArray { av in path.withCString { _ = execv($0, av) } }
            fail("\(name): \(String(cString: strerror(errno)))", status: errno == ENOENT ? 127 : 126)
        }
        if traced { serve(path: path, argv: argv, envp: envp, frontEnd: nil) }
        // The process the shell waits for ends with the command; the runtime, forked from it,
        // serves the address space until its last process has ended.
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { fail("pipe: \(String(cString: strerror(errno)))") }
        let frontEnd = getpid()
        let runtime = fork()
        guard runtime >= 0 else { fail("fork: \(String(cString: strerror(errno)))") }
        if runtime == 0 {
            close(fds[0])
            _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
            serve(path: path, argv: argv, envp: envp, frontEnd: (frontEnd, fds[1]))
        }
        close(fds[1])
        Glibc.exit(FrontEnd.wait(runtime: runtime, reports: fds[0]))
    }

    /// Set `traced` when `colo trace` runs the command: the tracer is the process the shell
    /// waits for, and the runtime its child.
    var traced = false

    /// The runtime: create the address space, start the command and serve until the last
    /// process ends.  With a front end (its PID and the pipe to it), the runtime dies with it
    /// while the command runs, and tells it the command's PID and status.
    private func serve(path: ByteString, argv: [ByteString], envp: [ByteString], frontEnd: (pid: pid_t, pipe: Int32)?) -> Never {
        if let frontEnd {
            _ = colo_syscall(Int(SYS_prctl), Int(PR_SET_PDEATHSIG), Int(SIGKILL), 0, 0, 0, 0)
            if getppid() != frontEnd.pid { Glibc.exit(127) }
        }
        let space: AddressSpace
        do throws(ColoError) { space = try AddressSpace() } catch { fail(error.message) }
        let member: Member
        do throws(ColoError) { member = try space.spawn(SpawnRequest(path: path, argv: argv, envp: envp)) }
        catch {
            // As a shell reports it: 127 for a missing command, 126 otherwise.
            fail(error.message, status: error.errno == .ENOENT || error.errno == .ENOTDIR ? 127 : 126)
        }
        if let frontEnd { FrontEnd.report(frontEnd.pipe, member.pid) }
        let status = space.run(main: member.pid) { status in
            guard let frontEnd else { return }
            // From now on the runtime outlives the process the shell waited for; its
            // standard streams are no longer anyone's to hold open.
            _ = colo_syscall(Int(SYS_prctl), Int(PR_SET_PDEATHSIG), 0, 0, 0, 0, 0)
            FrontEnd.report(frontEnd.pipe, status)
            close(frontEnd.pipe)
            let null = open("/dev/null", O_RDWR | O_CLOEXEC)
            for fd: Int32 in 0...2 { dup2(null, fd) }
            close(null)
        }
        space.shutdown()
        Glibc.exit(status)
    }
}

/// The process `colo COMMAND` is to its shell: it waits for the command's status, which the
/// runtime reports as soon as the command ends, and passes SIGTERM and SIGHUP on to the
/// command (the terminal's SIGINT and SIGQUIT reach the command without it).
enum FrontEnd {
    nonisolated(unsafe) static var command: pid_t = 0
    /// A signal that came before the command's PID was known, passed on once it is.
    nonisolated(unsafe) static var pending: Int32 = 0

    static func report(_ fd: Int32, _ value: Int32) {
        var v = value
        _ = write(fd, &v, 4)
    }

    static func wait(runtime: pid_t, reports fd: Int32) -> Int32 {
        signal(SIGINT, SIG_IGN)
        signal(SIGQUIT, SIG_IGN)
        for s in [SIGTERM, SIGHUP] {
            signal(s) { sig in
                if FrontEnd.command > 0 { kill(FrontEnd.command, sig) } else { FrontEnd.pending = sig }
            }
        }
        func next() -> Int32? {
            var v: Int32 = 0
            while true {
                let n = read(fd, &v, 4)
                if n == 4 { return v }
                if n < 0 && errno == EINTR { continue }
                return nil
            }
        }
        if let pid = next() {
            command = pid
            if pending != 0 { kill(pid, pending) }
            if let status = next() { return status }
        }
        // The runtime ended without a report: it could not start the command (it said
        // why), or it was killed; its own status says which.
        var st: Int32 = 0
        while waitpid(runtime, &st, 0) < 0 && errno == EINTR {}
        return shellStatus(st)
    }
}

struct Ps: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List colocated processes (like CheriBSD's ps aux -o vmaddr).",
        discussion: "Processes showing the same VMADDR share one address space.")

    @Argument(help: "Only the address spaces containing these PIDs.")
    var pids: [Int32] = []

    func run() throws {
        let rows = Inspect.processes(in: pids)
        printRow([pad("USER", 8), pad("PID", 7, right: true), pad("PPID", 7, right: true), pad("STAT", 4),
                  pad("WCHAN", 12), pad("VSZ", 9, right: true), pad("RSS", 8, right: true), pad("STARTED", 8),
                  pad("TIME", 9, right: true), pad("VMADDR", 16)], "COMMAND")
        for r in rows {
            var t = time_t(Int(r.startNanoseconds / 1_000_000_000))
            var tmv = tm()
            localtime_r(&t, &tmv)
            let started = String(format2(Int(tmv.tm_hour))) + ":" + format2(Int(tmv.tm_min))
            let cpu = Int(r.cpuSeconds)
            let time = "\(cpu / 60):" + format2(cpu % 60) + "." + format2(Int((r.cpuSeconds - Double(cpu)) * 100))
            printRow([pad(r.user, 8), pad(String(r.pid), 7, right: true), pad(String(r.ppid), 7, right: true),
                      pad(r.state, 4), pad(String(r.wchan.prefix(12)), 12), pad(String(r.vszKiB), 9, right: true),
                      pad(String(r.rssKiB), 8, right: true), pad(started, 8), pad(time, 9, right: true),
                      pad(String(r.vmaddr, radix: 16), 16)], r.command)
        }
    }
}

struct Procstat: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the mappings of a process's address space with their owners (like procstat -v).",
        discussion: "The PID column is the process that owns each mapping; '-' marks the kernel's.")

    @Flag(name: .short, help: "Show the virtual memory mappings (the only view).")
    var v = false

    @Argument(help: "A process of the address space.")
    var pid: Int32

    func run() throws {
        let maps: [MappingView]
        do throws(ColoError) { maps = try Inspect.mappings(of: pid) } catch { fail(error.message) }
        printRow([pad("PID", 5, right: true), pad("START", 18, right: true), pad("END", 18, right: true), pad("PRT", 5),
                  pad("RES", 6, right: true), pad("PRES", 4, right: true), pad("REF", 3, right: true),
                  pad("SHD", 3, right: true), pad("FLAG", 5), pad("TP", 3, right: true)], "PATH")
        for m in maps {
            printRow([pad(m.owner.map(String.init) ?? "-", 5, right: true),
                      pad("0x" + String(m.start, radix: 16), 18, right: true),
                      pad("0x" + String(m.end, radix: 16), 18, right: true), pad(m.protection, 5),
                      pad(String(m.residentPages), 6, right: true), pad(String(m.privatePages), 4, right: true),
                      pad("-", 3, right: true), pad("-", 3, right: true), pad(m.flags, 5), pad(m.type, 3, right: true)], m.path)
        }
    }
}

struct Sysctl: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read or set the knobs of an address space (CheriBSD's sysctl names).",
        discussion: "Knobs: " + Knob.allCases.map(\.rawValue).joined(separator: ", ") + ".")

    @Option(name: .customLong("pid"), help: "A process of the address space (default: this process's own).")
    var pid: Int32?

    @Flag(name: .short, help: "Print every knob.")
    var a = false

    @Flag(name: .short, help: "Print each knob's description instead of its value.")
    var d = false

    @Argument(help: "name or name=value")
    var settings: [String] = []

    func run() throws {
        let target = pid ?? getpid()
        guard let space = SpaceDirectory.space(containing: target) else {
            fail(pid == nil ? "not in a colocated address space (use --pid PID)" : "no colocated process \(target)")
        }
        guard let table = SpaceTable.open(path: space.table.path, writable: settings.contains { $0.contains("=") }) else {
            fail("cannot open \(space.table.path): \(String(cString: strerror(errno)))")
        }
        let names = a || settings.isEmpty ? Knob.allCases.map(\.rawValue) : settings
        for setting in names {
            let parts = setting.split(separator: "=", maxSplits: 1).map(String.init)
            guard let knob = Knob(rawValue: parts[0]) else { fail("unknown oid '\(parts[0])'") }
            if d { print("\(knob.rawValue): \(knob.summary)"); continue }
            if parts.count == 2 {
                guard let value = Int32(parts[1]) else { fail("invalid integer '\(parts[1])'") }
                let old = table[knob]
                table.set(knob, value)
                print("\(knob.rawValue): \(old) -> \(value)")
            } else {
                print("\(knob.rawValue): \(table[knob])")
            }
        }
    }
}

/// One line of a table, written at once to standard output: the text columns, then the last
/// column (a command line or a path) as its bytes, whatever they are.
func printRow(_ columns: [String], _ last: ByteString) {
    let line = Array((columns.joined(separator: " ") + " ").utf8) + last.bytes + [UInt8(ascii: "\n")]
    line.withUnsafeBytes { _ = writeAll(1, $0) }
}

func pad(_ s: String, _ width: Int, right: Bool = false) -> String {
    let fill = String(repeating: " ", count: max(0, width - s.count))
    return right ? fill + s : s + fill
}

func format2(_ n: Int) -> String { n < 10 ? "0\(n)" : String(n) }
