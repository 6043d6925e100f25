// capv(1): list the capability vector, asking each entry for its answerback, or run a command with only some of the entries.
import ArgumentParser
import CoTools
import Glibc
import GuestAPI

/// capv(1): list the capability vector, asking each entry for its answerback,
/// or run a command with only some of the entries.
@main
struct Capv: BSDTool {
    static let configuration = CommandConfiguration(
        commandName: "capv",
        abstract: "Print or restrict the capability vector.",
        usage: usageText)
    static let optstring = "ci:knv"
    static let usageLines = ["capv [-ckn]", "capv [-k] -i entry [-i entry ...] command [args ...]"]

    @Flag(name: .customShort("c"), help: "Print the raw capabilities.") var raw = false
    @Option(name: .customShort("i"), parsing: .unconditionalSingleValue, help: "Allow entry (repeatable).") var entries: [String] = []
    @Flag(name: .customShort("k"), help: "Use cocall_slow(2).") var slow = false
    @Flag(name: .customShort("n"), help: "Do not interrogate the entries.") var quiet = false
    @Flag(name: .customShort("v"), help: "Do not truncate answerbacks.") var verbose = false
    @Argument(parsing: .postTerminator, help: "command [args ...]") var command: [String] = []

    static func main() { bsdMain() }

    func run() {
        Colocation.ensure()
        var indices = [Int]()
        for e in entries {
            guard let n = number(e) else { Diag.errx(1, "argument to -i must be a number") }
            if n < 0 { Self.usage() }
            indices.append(n)
        }
        let vector = CapVector.fetch()
        if vector.capc <= 0 { Diag.errx(1, "no capability vector") }
        if !entries.isEmpty {
            if command.isEmpty { Self.usage() }
            restrict(vector, to: indices)
        }
        if !command.isEmpty { Self.usage() }
        list(vector)
    }

    /// Run the command with a vector holding only `indices` (same capc),
    /// colocated with capv's parent.
    func restrict(_ vector: CapVector, to indices: [Int]) -> Never {
        var allowed = [UnsafeMutableRawPointer?](repeating: nil, count: Int(vector.capc))
        for i in indices where i < Int(vector.capc) { allowed[i] = vector[i] }
        var argv: [UnsafeMutablePointer<CChar>?] = command.map { strdup($0) } + [nil]
        allowed.withUnsafeBufferPointer { capv in
            _ = coexecvpc(getppid(), argv[0], &argv, capv.baseAddress, vector.capc)
        }
        Diag.err(1, command[0])
    }

    func list(_ vector: CapVector) {
        if !quiet {
            let e = cosetup(COSETUP_COCALL)
            if e != 0 { Diag.err(1, "cosetup", errno: e) }
        }
        let out = Message(Layout.capv), input = Message(Layout.answerback)
        for i in 0..<Int(vector.capc) {
            guard let cap = vector[i] else { continue }
            var line = "\(i)"
            if raw { line += ":\t" + capText(cap) }
            if !quiet {
                out.zero(); input.zero()
                out.len = Layout.capv
                out.op = 0
                let received = call(cap, out, out.len, input, input.size, slow: slow)
                if received < 0 {
                    line += ":\t" + Diag.errorText(errno)
                } else {
                    if received != input.len {
                        Diag.warnx("truncated: received \(received), in.len \(input.len)")
                    } else if input.len != Layout.answerback {
                        Diag.warnx("size mismatch: in.len \(input.len), expected \(Layout.answerback)")
                    }
                    let text = input.raw.advanced(by: Layout.answerbackText).assumingMemoryBound(to: UInt8.self)
                    text[Layout.answerbackMax - 1] = 0
                    if !verbose {
                        // answerback[66..68] = '.', [69] = '\0'
                        text[66] = 46; text[67] = 46; text[68] = 46; text[69] = 0
                    }
                    line += ":\t\"" + input.string(at: Layout.answerbackText, max: Layout.answerbackMax) + "\""
                }
            }
            print(line)
        }
    }
}
