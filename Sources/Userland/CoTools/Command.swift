// BSD-style command lines for the CheriBSD tools: getopt, usage, err/warn, the tool protocol.
import ArgumentParser
import Bytes
import CoHelpers
import Glibc

/// BSD getopt(3) in POSIX mode, as CheriBSD's tools parse their command
/// lines: options until the first operand or `--`, grouped flags (`-kv`),
/// values attached or separate (`-i8`, `-i 8`, `-vi5`), any value accepted
/// (`-i -5`).  Diagnostics are FreeBSD getopt's.
public struct Getopt: Sendable {
    /// Options in command-line order, with their values.
    public var options: [(letter: Character, value: String?)] = []
    /// What follows the options.
    public var operands: [String] = []
    /// The options' values and the operands as the kernel passed them (when parsed from the
    /// process's own argv): what the tools hand on to system calls and commands, since a
    /// String has every byte that is not UTF-8 replaced.
    public var rawValues: [ByteString?] = []
    public var rawOperands: [ByteString] = []

    public enum Failure: Error, Equatable {
        case illegal(Character), needsArgument(Character)

        /// FreeBSD getopt's message for it (without the program name).
        public var message: String {
            switch self {
            case .illegal(let c): return "illegal option -- \(c)"
            case .needsArgument(let c): return "option requires an argument -- \(c)"
            }
        }
    }

    /// Parse `args` (without argv[0]) with a getopt option string.
    /// `raw`, if given, is `args` as bytes (one entry each).
    public static func parse(_ args: [String], _ optstring: String, raw: [ByteString]? = nil) -> Result<Getopt, Failure> {
        let raw = raw?.count == args.count ? raw : nil
        var takes = [Character: Bool]()
        let spec = Array(optstring)
        for (k, c) in spec.enumerated() where c != ":" {
            takes[c] = k + 1 < spec.count && spec[k + 1] == ":"
        }
        var g = Getopt()
        var i = 0
        scan: while i < args.count {
            let a = args[i]
            if a == "--" { i += 1; break }
            guard a.hasPrefix("-"), a != "-" else { break }
            let letters = Array(a.dropFirst())
            var j = 0
            while j < letters.count {
                let c = letters[j]
                guard let needsValue = takes[c] else { return .failure(.illegal(c)) }
                if !needsValue {
                    g.options.append((c, nil))
                    g.rawValues.append(nil)
                    j += 1
                    continue
                }
                if j + 1 < letters.count {
                    g.options.append((c, String(letters[(j + 1)...])))
                    // The option letters before the value are ASCII: one byte each, after "-".
                    g.rawValues.append(raw.map { ByteString($0[i].bytes.dropFirst(j + 2)) })
                } else if i + 1 < args.count {
                    g.options.append((c, args[i + 1]))
                    g.rawValues.append(raw?[i + 1])
                    i += 1
                } else {
                    return .failure(.needsArgument(c))
                }
                i += 1
                continue scan
            }
            i += 1
        }
        g.operands = Array(args[i...])
        g.rawOperands = raw.map { Array($0[i...]) } ?? g.operands.map { ByteString($0) }
        return .success(g)
    }

    /// `strings` (a tool's command) as bytes: the operands as the kernel passed them when
    /// they are these.
    public func raw(_ strings: [String]) -> [ByteString] {
        if strings.count <= operands.count, Array(operands.suffix(strings.count)) == strings {
            return Array(rawOperands.suffix(strings.count))
        }
        return strings.map { ByteString($0) }
    }

    /// The last value of option `letter`, as bytes.
    public func rawValue(_ letter: Character) -> ByteString? {
        guard let k = options.lastIndex(where: { $0.letter == letter }), k < rawValues.count else { return nil }
        return rawValues[k] ?? options[k].value.map { ByteString($0) }
    }

    /// The same command line spelled one token per option, then `--` and the
    /// operands: what the ArgumentParser declarations of a tool parse.
    public var tokens: [String] {
        var t = [String]()
        for (c, v) in options {
            t.append("-\(c)")
            if let v { t.append(v) }
        }
        if !operands.isEmpty { t.append("--"); t += operands }
        return t
    }

    /// How many times option `c` was given.
    public func count(_ c: Character) -> Int { options.filter { $0.letter == c }.count }

    /// The values of option `c`, in order.
    public func values(_ c: Character) -> [String] { options.filter { $0.letter == c }.compactMap(\.value) }
}

/// A CheriBSD tool's command line: swift-argument-parser declares the options
/// (flags `@Flag(name: .customShort(...))`, values `@Option(..., parsing:
/// .unconditional...)`, operands `@Argument(parsing: .postTerminator)`),
/// BSD getopt decides what the command line means, and errors are the tool's:
/// `usage()` prints the usage text to stderr and exits with `usageStatus`
/// (0 for almost every CheriBSD tool).
public protocol BSDTool: ParsableCommand {
    /// getopt(3) option string.
    static var optstring: String { get }
    /// Every line of the usage text, without "usage: " and indentation.
    static var usageLines: [String] { get }
    /// Exit status of usage().
    static var usageStatus: Int32 { get }
}

/// The command line as getopt saw it (set before `run()`).
nonisolated(unsafe) public var commandLine = Getopt()

extension BSDTool {
    public static var usageStatus: Int32 { 0 }

    /// The usage text as the tool prints it.
    public static var usageText: String {
        var s = ""
        for (k, l) in usageLines.enumerated() { s += (k == 0 ? "usage: " : "       ") + l + "\n" }
        return s
    }

    /// Print the usage text and exit.
    public static func usage() -> Never {
        Diag.stderr(usageText)
        Glibc.exit(usageStatus)
    }

    /// Parse the command line BSD-style and run the tool.
    public static func bsdMain(_ arguments: [String] = Array(CommandLine.arguments.dropFirst())) -> Never {
        Diag.setProgname(CommandLine.arguments.first ?? "")
        let raw = Array(rawArguments().dropFirst())
        switch Getopt.parse(arguments, optstring, raw: raw.count == arguments.count ? raw : nil) {
        case .failure(let f):
            Diag.stderr("\(Diag.progname): \(f.message)\n")
            usage()
        case .success(let g):
            commandLine = g
            var command: ParsableCommand
            do { command = try parseAsRoot(g.tokens) } catch { usage() }
            do { try command.run() } catch { Diag.errx(1, "\(error)") }
            cotool_flush_stdout()
            Glibc.exit(0)
        }
    }
}

/// BSD err(3)/warn(3): messages prefixed with the program's name, on stderr.
public enum Diag {
    nonisolated(unsafe) public private(set) static var progname = "colo-tool"

    /// getprogname(3): the last component of argv[0].
    public static func setProgname(_ argv0: String) {
        if let slash = argv0.lastIndex(of: "/") { progname = String(argv0[argv0.index(after: slash)...]) } else if !argv0.isEmpty { progname = argv0 }
    }

    public static func stderr(_ s: String) {
        cotool_flush_stdout()
        var t = s
        t.withUTF8 { p in
            var off = 0
            while off < p.count {
                let n = write(2, p.baseAddress! + off, p.count - off)
                if n <= 0 { break }
                off += n
            }
        }
    }

    public static func errorText(_ code: Int32) -> String { String(cString: strerror(code)) }

    /// warn(3): "prog: message: strerror(errno)".
    public static func warn(_ message: String, errno code: Int32 = errno) {
        stderr("\(progname): \(message): \(errorText(code))\n")
    }

    /// warnx(3): "prog: message".
    public static func warnx(_ message: String) { stderr("\(progname): \(message)\n") }

    /// err(3): warn and exit.
    public static func err(_ status: Int32, _ message: String, errno code: Int32 = errno) -> Never {
        warn(message, errno: code)
        Glibc.exit(status)
    }

    /// errx(3): warnx and exit; `errx(-1, ...)` exits 255 as on CheriBSD.
    public static func errx(_ status: Int32, _ message: String) -> Never {
        warnx(message)
        Glibc.exit(status)
    }
}

/// A C-style integer argument, as the tools check them: the whole string must
/// be a (possibly negative) decimal number.
public func number(_ s: String) -> Int? {
    guard !s.isEmpty else { return nil }
    return Int(s)
}
