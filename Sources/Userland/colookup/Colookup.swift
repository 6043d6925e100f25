// colookup(1): add capabilities to the vector, received from coregister(1) over a unix socket (`-f`) or looked up by name (`-n`), and run a command ...
import ArgumentParser
import Bytes
import CoHelpers
import CoTools
import Glibc
import GuestAPI

/// colookup(1): add capabilities to the vector, received from coregister(1)
/// over a unix socket (`-f`) or looked up by name (`-n`), and run a command
/// with it; or look one name up (`-c`), or show cosetup's capabilities (`-s`).
@main
struct Colookup: BSDTool {
    static let configuration = CommandConfiguration(
        commandName: "colookup",
        abstract: "Run a command with capabilities received from coregister(1).",
        usage: usageText)
    static let optstring = "c:f:i:n:sv"
    static let usageLines = ["colookup -c name",
                             "colookup -f path -i index [-f path -i index ...] command [args ...]",
                             "colookup -n name -i index [-n name -i index ...] command [args ...]",
                             "colookup -s"]

    @Option(name: .customShort("c"), parsing: .unconditional, help: "Look a name up and print its capability.") var check: String?
    @Option(name: .customShort("f"), parsing: .unconditionalSingleValue, help: "Receive a capability from this socket.") var paths: [String] = []
    @Option(name: .customShort("i"), parsing: .unconditionalSingleValue, help: "Vector index for the preceding or following -f/-n.") var indices: [String] = []
    @Option(name: .customShort("n"), parsing: .unconditionalSingleValue, help: "Look this name up.") var names: [String] = []
    @Flag(name: .customShort("s"), help: "Print cosetup's capabilities.") var setup = false
    @Flag(name: .customShort("v"), help: "Verbose.") var verbose = false
    @Argument(parsing: .postTerminator, help: "command [args ...]") var command: [String] = []

    /// Where a capability comes from: a socket path or a name, as the kernel passed them.
    enum Source { case path(ByteString), name(ByteString) }

    static func main() { bsdMain() }

    func run() {
        var pendingIndex: Int32?, pendingSource: Source?
        var pairs = [(Int32, Source)]()
        for (k, (letter, value)) in commandLine.options.enumerated() {
            let v = value ?? ""
            switch letter {
            case "f", "n":
                if pendingSource != nil { Self.usage() }
                let bytes = commandLine.rawValues[k] ?? ByteString(v)
                pendingSource = letter == "f" ? .path(bytes) : .name(bytes)
            case "i":
                if pendingIndex != nil { Self.usage() }
                guard let n = number(v) else { Diag.errx(1, "argument to -i must be a number") }
                if n < 0 || n > Int(Int32.max) { Self.usage() }
                pendingIndex = Int32(n)
            default:
                continue
            }
            if let i = pendingIndex, let s = pendingSource {
                pairs.append((i, s))
                pendingIndex = nil
                pendingSource = nil
            }
        }
        if pendingIndex != nil || pendingSource != nil { Self.usage() }
        Colocation.ensure()
        if let check { lookupOne(check) }
        if setup { showSetup() }
        if pairs.isEmpty || command.isEmpty { Self.usage() }

        var vector = CapVector.fetch()
        for (index, source) in pairs {
            switch source {
            case .name(let n):
                var cap: UnsafeMutableRawPointer? = nil
                if n.withCString({ colookup($0, &cap) }) != 0 { Diag.err(1, n.description) }
                if verbose { print("\(Diag.progname): \(index): colookedup \(capText(cap)) from \(n)") }
                vector.set(index, cap)
            case .path(let p):
                let cap = receive(p)
                if verbose { print("\(Diag.progname): \(index): received \(capText(cap)) from \(p)") }
                vector.set(index, cap)
            }
        }
        cotool_flush_stdout()
        var argv: [UnsafeMutablePointer<CChar>?] = commandLine.raw(command).map { $0.withCString { strdup($0) } } + [nil]
        _ = coexecvpc(getppid(), argv[0], &argv, vector.capv, vector.capc)
        Diag.err(1, command[0])
    }

    /// -c: print "name: capability".
    func lookupOne(_ name: String) -> Never {
        var cap: UnsafeMutableRawPointer? = nil
        if colookup(name, &cap) != 0 { Diag.err(1, name) }
        print("\(name): \(capText(cap))")
        cotool_flush_stdout()
        Glibc.exit(0)
    }

    /// -s: the (code, data) pairs _cosetup(2) hands out.
    func showSetup() -> Never {
        var code: UnsafeMutableRawPointer? = nil, data: UnsafeMutableRawPointer? = nil
        if _cosetup(COSETUP_COCALL, &code, &data) != 0 { Diag.err(1, "_cosetup") }
        print("cocall \(capText(code)), \(capText(data))")
        if _cosetup(COSETUP_COACCEPT, &code, &data) != 0 { Diag.err(1, "_cosetup") }
        print("coaccept \(capText(code)), \(capText(data))")
        cotool_flush_stdout()
        Glibc.exit(0)
    }

    /// The capability coregister(1) -f sends on `path`.
    func receive(_ path: ByteString) -> Capability? {
        var step: Int32 = 0
        let s = path.withCString { cotool_connect_unix($0, &step) }
        if s < 0 { Diag.err(1, step == 0 ? "socket" : "\(path): connect") }
        var r = cotool_received()
        if cotool_recv_cap(s, &r) < 0 {
            let e = errno
            if e == EPROTO { Diag.warnx("likely not colocated with coregister(1)") }
            Diag.err(1, "\(path): recvmsg", errno: e)
        }
        close(s)
        if r.flags & Int32(MSG_TRUNC) != 0 { Diag.errx(1, "\(path): message truncated") }
        if r.flags & Int32(MSG_CTRUNC) != 0 { Diag.errx(1, "\(path): control message truncated") }
        if r.has_cmsg == 0 { Diag.errx(1, "\(path): CMSG_FIRSTHDR returned NULL") }
        if UInt(r.len) != r.expected_len { Diag.errx(1, "\(path): received wrong cmsg_len \(r.len), expected \(r.expected_len)\n") }
        if r.level != SOL_SOCKET { Diag.errx(1, "\(path): received wrong cmsg_level \(r.level), expected \(SOL_SOCKET)\n") }
        if r.type != 0x10 /* SCM_CAPS */ { Diag.errx(1, "\(path): received wrong cmsg_type \(r.type), expected 16\n") }
        return r.cap
    }
}
