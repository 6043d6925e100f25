// paths(1): hand out descriptors of directories (`-r path`) to a command in capability mode, whose libpaths retries refused path lookups relative to ...
import ArgumentParser
import CoHelpers
import CoTools
import Glibc
import GuestAPI

/// paths(1): hand out descriptors of directories (`-r path`) to a command
/// in capability mode, whose libpaths retries refused path lookups relative
/// to them.  paths itself always enters capability mode.
@main
struct Paths: BSDTool {
    static let configuration = CommandConfiguration(
        commandName: "paths",
        abstract: "Serve directory descriptors to a command in capability mode.",
        usage: usageText)
    static let optstring = "kqr:w:v"
    static let usageLines = ["paths [-kqv] [-r path] [-w path] command [args ...]"]

    @Flag(name: .customShort("k"), help: "Use coaccept_slow(2).") var slow = false
    @Flag(name: .customShort("q"), help: "Do not warn about refused paths.") var quiet = false
    @Option(name: .customShort("r"), parsing: .unconditionalSingleValue, help: "A directory to serve (read).") var read: [String] = []
    @Option(name: .customShort("w"), parsing: .unconditionalSingleValue, help: "(documented, not implemented: calls usage)") var write: [String] = []
    @Flag(name: .customShort("v"), help: "Verbose.") var verbose = false
    @Argument(parsing: .postTerminator, help: "command [args ...]") var command: [String] = []

    static func main() { bsdMain() }

    func run() {
        // Newest first, as CheriBSD's LIST_INSERT_HEAD keeps them.
        var dirs = [(path: String, fd: Int32)]()
        for (letter, value) in commandLine.options {
            switch letter {
            case "r":
                let p = value ?? ""
                if !p.hasPrefix("/") { Diag.errx(1, "\"\(p)\" is not an absolute path") }
                let fd = open(p, O_RDONLY | O_CLOEXEC)
                if fd < 0 { Diag.err(1, p) }
                dirs.insert((p, fd), at: 0)
            case "w":
                Self.usage()        // in getopt's string, but without a case
            default:
                break
            }
        }
        if command.isEmpty { Self.usage() }
        Colocation.ensure()
        _ = Service.start(index: CapvIndex.paths, library: "paths", command: command)
        if cap_enter() != 0 { Diag.err(1, "cap_enter") }

        let l = Layout.l, prog = Diag.progname, me = getpid(), s = slowSuffix(slow)
        let a = Acceptor(slow: slow, inputSize: Int(l.paths), outputSize: max(Int(l.paths_return), Layout.answerback))
        let answerback = "paths" + dirs.map { " -r " + $0.path }.joined() + ", pid \(me)" + s + capsicumSuffix

        /// capv_paths_return_t{len, op -14, fdcap, path}.
        func prepare(_ path: String, _ fdcap: UInt64) {
            let out = a.output
            out.zero()
            out.len = Int(l.paths_return)
            out.op = -CapvIndex.paths
            out.setInt64(Int64(bitPattern: fdcap), at: Int(l.paths_return_fdcap))
            out.setString(path, at: Int(l.paths_return_path), max: Int(PATH_MAX))
            a.outlen = out.len
        }
        func fail(_ e: Int32) { prepare("", UInt64(bitPattern: Int64(-e))) }

        while true {
            let received = a.accept()
            if received < 0 { continue }
            let input = a.input
            var pid: pid_t = -1
            if verbose {
                pid = callerPID(a.cookie)
                print("\(prog): len \(input.len) from pid \(pid) -> pid \(me)\(s)")
            }
            if input.op == 0 {
                if received < Layout.capv {
                    Diag.warnx("size mismatch: received \(received), expected \(Layout.capv)")
                    fail(ENOMSG)
                } else {
                    a.answerback(answerback)
                }
            } else if received != Int(l.paths) {
                Diag.warnx("size mismatch: received \(received), expected \(l.paths)")
                fail(ENOMSG)
            } else {
                let path = input.string(at: Int(l.paths_path), max: Int(PATH_MAX))
                if let d = dirs.first(where: { path.utf8.starts(with: $0.path.utf8) }) {
                    var cap: UnsafeMutableRawPointer? = nil
                    if capfromfd(&cap, d.fd) != 0 {
                        Diag.warn("capfromfd")
                        fail(ENOMSG)
                    } else {
                        prepare(d.path, UInt64(UInt(bitPattern: cap)))
                    }
                } else {
                    if !quiet { Diag.warnx("refusing \(path)") }
                    fail(EPERM)
                }
            }
            if verbose { print("\(prog): returning to pid \(pid) <- pid \(me): len \(a.output.len)\(s)") }
        }
    }
}
