// `colo trace`: trace the system calls of colocated processes (see man/colo-trace.1, Runtime/InProcessTracer.swift and Runtime/Tracer.swift for the ...
import ArgumentParser
import Glibc
import Observability
import Runtime

/// `colo trace`: trace the system calls of colocated processes (see man/colo-trace.1,
/// Runtime/InProcessTracer.swift and Runtime/Tracer.swift for the design).  The tracer
/// is a plain process that forks the runtime (which then runs exactly as `colo COMMAND`,
/// with tracing on); with -a it attaches to an existing address space.  By default the
/// traced threads record their own calls (Syscall User Dispatch); --ptrace stops them
/// at every call instead.
struct Trace: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Trace the system calls of colocated processes (like strace -f).",
        discussion: """
            colo trace -- COMMAND [ARGS...] runs COMMAND colocated and prints one line per \
            system call of it and of everything it starts: PID name(args) = result.  Calls \
            the SIGSYS handler makes on a process's behalf are folded into the call it \
            trapped.  The traced processes record their own calls (Syscall User Dispatch); \
            --ptrace stops them at every call instead, as strace does.  colo trace -a PID \
            attaches to every member of PID's address space and detaches on SIGINT.
            """)

    @Option(name: .short, help: "Write the trace to this file (default: standard error).")
    var o: String?

    @Option(name: .short, help: "Only show these PIDs (comma-separated).")
    var p: String?

    @Option(name: .short, help: "Only show these system calls (comma-separated names).")
    var e: String?

    @Option(name: .short, help: "Attach to the address space of this colocated process.")
    var a: Int32?

    @Flag(name: .customLong("json"), help: "One JSON object per line.")
    var json = false

    @Flag(name: .customLong("ptrace"), help: "Stop at every system call with ptrace, as strace does, instead of tracing in process.")
    var usePtrace = false

    @Argument(parsing: .captureForPassthrough, help: "The command and its arguments.")
    var command: [String] = []

    func run() throws {
        var options = Tracer.Options()
        if let o {
            let fd = open(o, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            if fd < 0 { fail("\(o): \(String(cString: strerror(errno)))") }
            options.output = fd
        }
        if let p { options.pids = Set(p.split(separator: ",").compactMap { Int32($0) }) }
        if let e { options.names = Set(e.split(separator: ",").map(String.init)) }
        options.json = json
        let tracer = Tracer(options: options)
        let inProcess = !usePtrace && Tracer.inProcessSupported
        if let a { Glibc.exit(inProcess ? tracer.attachInProcess(a) : tracer.attach(a)) }
        var argv = command
        // The command is captured as it is, options and all: help is only asked before it.
        if argv.first == "--help" || argv.first == "-h" { print(Trace.helpMessage()); Glibc.exit(0) }
        if argv.first == "--" { argv.removeFirst() }
        guard !argv.isEmpty else { fail("no command given (usage: colo trace [-o file] [-p PID] [-e names] [--json] -- command [args ...])", status: 2) }
        let outFD = options.output
        let start = inProcess ? tracer.launchInProcess : tracer.launch
        let status = start {
            if outFD != 2 { close(outFD) }
            do {
                var run = try Run.parse(["--"] + argv)
                run.traced = true
                try run.run()
            } catch { fail("\(error)") }
            Glibc.exit(0)
        }
        Glibc.exit(status)
    }
}
