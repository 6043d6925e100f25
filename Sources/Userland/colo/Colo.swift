// colo(1): run a command colocated, join an address space, and the ps/procstat/sysctl/trace views.
import ArgumentParser
import Bytes
import Glibc
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
            catch { fail(error.message, status: error.errno == ENOENT ? 127 : 126) }
        }
        // Already colocated: stay in this address space (the exec is in place).
        if SpaceDirectory.space(containing: getpid()) != nil {
            argv.withCStringArray { av in path.withCString { _ = execv($0, av) } }
            fail("\(name): \(String(cString: strerror(errno)))", status: errno == ENOENT ? 127 : 126)
        }
        let space: AddressSpace
        do throws(ColoError) { space = try AddressSpace() } catch { fail(error.message) }
        let member: Member
        do throws(ColoError) { member = try space.spawn(SpawnRequest(path: path, argv: argv, envp: envp)) }
        catch {
            // As a shell reports it: 127 for a missing command, 126 otherwise.
            fail(error.message, status: error.errno == ENOENT || error.errno == ENOTDIR ? 127 : 126)
        }
        let status = space.run(main: member.pid)
        space.shutdown()
        Glibc.exit(status)
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
