// coregister(1): share an inherited capability-vector entry with processes that are not descendants: over a unix socket (`-f`, SCM_CAPS) or under a ...
import ArgumentParser
import Bytes
import CoHelpers
import CoTools
import Glibc
import GuestAPI

/// coregister(1): share an inherited capability-vector entry with processes
/// that are not descendants: over a unix socket (`-f`, SCM_CAPS) or under a
/// coregistered name (`-n`, relaying every call, since coregister(2) can only
/// publish the caller's own target).
@main
struct Coregister: BSDTool {
    static let configuration = CommandConfiguration(
        commandName: "coregister",
        abstract: "Publish a capability-vector entry over a socket or under a name.",
        usage: usageText)
    static let optstring = "Cf:i:kn:v"
    static let usageLines = ["coregister [-Ckv] -i entry -f path", "coregister [-Ckv] -i entry -n new-name"]

    @Flag(name: .customShort("C"), help: "Do not enter capability mode.") var noCapsicum = false
    @Option(name: .customShort("f"), parsing: .unconditionalSingleValue, help: "Unix socket to serve the capability on.") var paths: [String] = []
    @Option(name: .customShort("i"), parsing: .unconditionalSingleValue, help: "Capability-vector entry to share.") var entries: [String] = []
    @Flag(name: .customShort("k"), help: "Use coaccept_slow(2) and cocall_slow(2).") var slow = false
    @Option(name: .customShort("n"), parsing: .unconditionalSingleValue, help: "Name to coregister.") var names: [String] = []
    @Flag(name: .customShort("v"), help: "Verbose.") var verbose = false
    @Argument(parsing: .postTerminator) var operands: [String] = []

    static func main() { bsdMain() }

    func run() {
        var path: String?, name: String?, entry: Int?
        for (letter, value) in commandLine.options {
            switch letter {
            case "f":
                if path != nil { Diag.errx(-1, "-f specified more than once") }
                if name != nil { Diag.errx(-1, "-f and -n are mutually exclusive") }
                path = value
            case "n":
                if name != nil { Diag.errx(-1, "-n specified more than once") }
                if path != nil { Diag.errx(-1, "-n and -f are mutually exclusive") }
                name = value
            case "i":
                if entry != nil { Diag.errx(-1, "-i specified more than once") }
                guard let n = number(value ?? "") else { Diag.errx(1, "argument to -i must be a number") }
                if n < 0 { Self.usage() }
                entry = n
            default:
                break
            }
        }
        guard operands.isEmpty, let entry, path != nil || name != nil else { Self.usage() }
        Colocation.ensure()
        cotool_line_buffer_stdout()
        let vector = CapVector.fetch()
        guard let cap = vector[entry] else { Diag.errx(1, "capv[\(entry)] is NULL") }
        if let path { serveSocket(path, commandLine.rawValue("f") ?? ByteString(path), cap) }
        if let name { relay(name, commandLine.rawValue("n") ?? ByteString(name), cap) }
    }

    /// -f: hand the capability to every client of the socket (`rawPath`: the path as given).
    func serveSocket(_ path: String, _ rawPath: ByteString, _ cap: Capability) -> Never {
        signal(SIGPIPE, SIG_IGN)
        var step: Int32 = 0
        let s = rawPath.withCString { cotool_listen_unix($0, &step) }
        if s < 0 {
            if step == 1 && errno == EADDRINUSE { Diag.errx(1, "cannot bind to existing socket; remove \(path) and try again") }
            Diag.err(1, step == 0 ? "socket" : step == 1 ? "bind" : "listen")
        }
        while true {
            let c = accept(s, nil, nil)
            if c < 0 {
                if errno != EINTR { Diag.warn("accept") }
                continue
            }
            if verbose { print("\(Diag.progname): accepted; will send back \(capText(cap))") }
            if cotool_send_cap(c, cap) != 0 {
                Diag.warn("sendmsg")
            } else if verbose {
                print("\(Diag.progname): sent; waiting for another client")
            }
            close(c)
        }
    }

    /// -n: coregister `name` (`rawName`: as given) for this thread and relay every call to `cap`.
    func relay(_ name: String, _ rawName: ByteString, _ cap: Capability) -> Never {
        Service.setupAcceptor()
        Service.setupCaller()
        var me: UnsafeMutableRawPointer? = nil
        if rawName.withCString({ coregister($0, &me) }) != 0 { Diag.err(1, "failed to coregister \"\(name)\"") }
        enterCapabilityMode(unless: noCapsicum)
        let buffer = 65536
        let a = Acceptor(slow: slow, inputSize: buffer, outputSize: buffer)
        let pid = getpid()
        while true {
            let received = a.accept()
            if received < 0 { continue }
            let caller = callerPID(a.cookie)
            let op = a.input.op
            if verbose {
                print("\(Diag.progname): cocall op \(op), len \(a.input.len), received \(received), from pid \(caller) -> pid \(pid)\(slowSuffix(slow))")
            }
            let n = call(cap, a.input, received, a.output, a.output.size, slow: slow)
            if n < 0 {
                Diag.warn(slow ? "cocall_slow" : "cocall")      // XXX we should send back an error response
                a.outlen = 0
                continue
            }
            a.outlen = n
            if op == 0 && n >= Layout.answerbackText {
                let text = a.output.string(at: Layout.answerbackText, max: Layout.answerbackMax)
                a.output.setString(text + " -- via coregister(1), pid \(pid), sharing \(capText(cap)) as \(name)"
                                   + slowSuffix(slow) + capsicumSuffix, at: Layout.answerbackText, max: Layout.answerbackMax)
                if verbose { print("\(Diag.progname): returning answerback to pid \(caller) <- pid \(pid)\(slowSuffix(slow))") }
            } else if verbose {
                print("\(Diag.progname): returning op \(a.output.op), len \(a.output.len) to pid \(caller) <- pid \(pid)\(slowSuffix(slow))")
            }
        }
    }
}
