// Bytes are bytes: every byte 0x01–0xFF in argv, envp, the program's path, a #! interpreter's
// path and the cwd arrives as it was sent, through every route into an address space.
import Bytes
import Foundation
import Glibc
import Testing
@testable import Runtime

@Suite(.serialized) struct BytesTests {
    /// Every byte an argument or environment string can hold.
    static let every = [UInt8](1...255)
    /// A file name can hold every byte but NUL and "/" (254 of them, within NAME_MAX).
    static let name = every.filter { $0 != UInt8(ascii: "/") }
    /// A #! interpreter path ends at a space, a tab or a newline and the line at 255 bytes:
    /// its directory names split the other bytes into two.
    static let shebangNames = [[UInt8](0x80...0xFF),
                               [UInt8](1...0x7F).filter { ![0x09, 0x0A, 0x20, UInt8(ascii: "/")].contains($0) }]

    /// Bash's $'...' spelling of bytes.
    static func quoted(_ bytes: [UInt8]) -> String {
        "$'" + bytes.map { String(format: "\\x%02x", $0) }.joined() + "'"
    }
    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    /// A directory with a name of every byte holding bytes_echo, and scripts whose #! names a
    /// copy of it under each of the shebang directory names.
    struct Tree {
        let base: String
        let program: [UInt8]
        let scripts: [(path: [UInt8], interpreter: [UInt8])]

        init() throws {
            let echo = try Guests.build("bytes_echo", .dynamicGlibc)
            base = Guests.buildDir + "/bytes"
            let baseBytes = Array(base.utf8)
            program = baseBytes + [0x2F] + BytesTests.name + Array("/bytes_echo".utf8)
            var made: [(path: [UInt8], interpreter: [UInt8])] = []
            var setup = "set -e; rm -rf \(base); mkdir -p \(base)\n"
            setup += "d=\(base)/\(quoted(name)); mkdir \"$d\"; cp \(echo) \"$d/bytes_echo\"\n"
            for (i, dir) in shebangNames.enumerated() {
                let interpreter = baseBytes + [0x2F] + dir + Array("/bytes_echo".utf8)
                let script = baseBytes + Array("/script\(i)".utf8)
                setup += "d=\(base)/\(quoted(dir)); mkdir \"$d\"; cp \(echo) \"$d/bytes_echo\"\n"
                setup += "printf '#!%s\\n' \(quoted(interpreter)) > \(base)/script\(i); chmod +x \(base)/script\(i)\n"
                made.append((script, interpreter))
            }
            scripts = made
            let r = try Run.capture(["/bin/bash", "-c", setup])
            guard r.status == 0 else { throw TestFailure("setting up the tree: \(r.stderr)") }
        }
    }

    /// Runs a bash command line with P (the program), A (every byte) and B_ALL=A exported;
    /// returns bytes_echo's key=hex lines.
    func run(_ tree: Tree, _ command: String, extra: String = "") throws -> [String: String] {
        let script = "P=\(Self.quoted(tree.program)); A=\(Self.quoted(Self.every)); export B_ALL=\"$A\"; "
            + "COLO=\(Run.colo); \(extra)\n\(command)"
        let r = try Run.capture(["/bin/bash", "-c", script])
        #expect(r.status == 0, "\(command): \(r.stderr)")
        return values(r.stdout)
    }

    /// What bytes_echo printed is what was sent: argv[0] (unless nil), argv[1], B_ALL.
    func check(_ v: [String: String], argv0: [UInt8]?, _ route: String) {
        if let argv0 { #expect(v["argv0"] == Self.hex(argv0), "\(route): argv[0]") }
        #expect(v["argv1"] == Self.hex(Self.every), "\(route): argv[1]")
        #expect(v["env_B_ALL"] == Self.hex(Self.every), "\(route): the environment")
    }

    @Test func everyByteSurvivesEachRoute() throws {
        let tree = try Tree()
        let natively = try run(tree, "\"$P\" \"$A\"")
        check(natively, argv0: tree.program, "natively (the harness itself)")

        check(try run(tree, "\"$COLO\" \"$P\" \"$A\""), argv0: tree.program, "colo PROGRAM")
        // dash runs a command that is not its last with vfork and an exec in place.
        check(try run(tree, "\"$COLO\" /bin/dash -c '\"$0\" \"$1\"; :' \"$P\" \"$A\""), argv0: tree.program, "dash (exec in place)")
        check(try run(tree, "\"$COLO\" /bin/dash -c 'exec \"$0\" \"$1\"' \"$P\" \"$A\""), argv0: tree.program, "dash's exec builtin")
        // bash forks and the child's exec brings it back into the address space.
        check(try run(tree, "\"$COLO\" /bin/bash -c '\"$0\" \"$1\"; :' \"$P\" \"$A\""), argv0: tree.program, "bash (fork and exec)")
        check(try run(tree, "\"$COLO\" \(try Guests.probe()) coexec 0 \"$P\" \"$A\""), argv0: tree.program, "coexecve")
    }

    @Test func interpreterPathsOfEveryByte() throws {
        let tree = try Tree()
        for (script, interpreter) in tree.scripts {
            let command = "\"$COLO\" \(Self.quoted(script)) \"$A\""
            let v = try run(tree, command)
            // Linux runs the interpreter with argv [interpreter, script, A].
            #expect(v["argv0"] == Self.hex(interpreter), "the #! interpreter's path")
            #expect(v["argv1"] == Self.hex(script))
            #expect(v["argv2"] == Self.hex(Self.every))
            let native = try run(tree, "\(Self.quoted(script)) \"$A\"")
            #expect(native["argv0"] == v["argv0"] && native["argv1"] == v["argv1"], "as natively")
        }
    }

    @Test func joinCarriesBytesAndTheCwd() throws {
        let tree = try Tree()
        let holder = try Background([Run.colo, try Guests.probe(), "hold"])
        let pid = try holder.value("pid")
        let dir = Array(tree.base.utf8) + [0x2F] + Self.name
        let v = try run(tree, "cd \(Self.quoted(dir)) && \"$COLO\" --join \(pid) \"$P\" \"$A\"")
        check(v, argv0: tree.program, "colo --join")
        #expect(v["cwd"] == Self.hex(dir), "the joining program starts in the caller's cwd")
        kill(pid_t(pid)!, SIGUSR1)
        #expect(holder.wait() == 0)
    }

    @Test func colocatedProcessesListTheirBytes() throws {
        let tree = try Tree()
        let probe = try Guests.probe()
        let holder = try Background(["/bin/bash", "-c", "exec \(Run.colo) \(probe) hold \(Self.quoted(Self.every))"])
        let pid = try holder.value("pid")
        let ps = try Run.capture(["/bin/bash", "-c", "\(Run.colo) ps \(pid) | od -An -v -tx1 | tr -d ' \\n'"])
        // ps shows control bytes as "?" and every other byte as it is.
        let shown = Self.every.map { $0 < 0x20 || $0 == 0x7F ? UInt8(ascii: "?") : $0 }
        #expect(ps.stdout.contains(Self.hex(Array("hold ".utf8) + shown)), "colo ps: \(ps.stdout.prefix(400))")
        kill(pid_t(pid)!, SIGUSR1)
        #expect(holder.wait() == 0)
        _ = tree
    }

    /// colo trace shows a string argument as strace does: quoted, with strace's escapes.
    @Test func traceEscapesAsStraceDoes() throws {
        let tree = try Tree()
        let strace = try Run.capture(["/bin/bash", "-c", "command -v strace"])
        try #require(strace.status == 0, "strace is installed by scripts/setup")
        let command = "/bin/dash -c '\"$0\" \"$1\" >/dev/null; :' \"$P\" \"$A\""
        func traced(_ tracer: String) throws -> String {
            try Run.capture(["/bin/bash", "-c",
                "P=\(Self.quoted(tree.program)); A=\(Self.quoted(Self.every)); \(tracer) \(command) 2>&1 >/dev/null"]).stdout
        }
        /// The exec of bytes_echo as a tracer printed it: the path, and the argv list.
        func exec(_ out: String) -> (path: Substring, argv: Substring)? {
            guard let line = out.split(separator: "\n").first(where: { $0.contains("bytes_echo\", [") }),
                  let call = line.range(of: "execve(\""), let open = line.range(of: "\", [\""),
                  let close = line.range(of: "\"], ", range: open.upperBound..<line.endIndex)
            else { return nil }
            return (line[call.upperBound..<open.lowerBound], line[open.upperBound..<close.lowerBound])
        }
        let expected = try #require(exec(try traced("strace -f -qq -s 65536 -e trace=execve")))
        #expect(expected.path.contains("\\377") && expected.argv.contains("\\1\\2\\3"), "strace's escapes")
        // The ptrace tracer reads the whole strings; the in-process one keeps the path whole
        // and, when a 512-byte record has no room left for argv, shows it as "..." as strace
        // shows what it cut.
        let ptrace = exec(try traced("\(Run.colo) trace --ptrace -e execve --"))
        #expect(ptrace?.path == expected.path && ptrace?.argv == expected.argv, "colo trace --ptrace")
        let inProcess = exec(try traced("\(Run.colo) trace -e execve --"))
        #expect(inProcess?.path == expected.path, "colo trace")
        #expect(inProcess?.argv == expected.argv || inProcess?.argv == "...", "colo trace's argv")
    }

    /// Arguments past MAX_ARG_STRLEN or past a quarter of the stack: E2BIG before the point
    /// of no return, as execve gives it (the shell reports it and goes on), through an exec in
    /// place (dash) and a fork child's exec (bash); just under the limit the program runs.
    @Test func argumentLimitsAreExecves() throws {
        let echo = try Guests.build("bytes_echo", .dynamicGlibc)
        let oneLong = "x=$(head -c 140000 /dev/zero | tr '\\0' y); export x"
        // 20 strings of 100000 bytes fit in a quarter of an 8 MiB stack, 21 do not.
        func many(_ n: Int) -> String {
            "i=0; while [ $i -lt \(n) ]; do eval \"export v$i=\\$(head -c 100000 /dev/zero | tr '\\0' y)\"; i=$((i+1)); done"
        }
        for (setup, expected) in [(oneLong, 126), (many(21), 126), (many(20), 0)] {
            for shell in ["/bin/dash", "/bin/bash"] {
                let script = "ulimit -s 8192; \(setup); \(echo) >/dev/null; echo status=$?"
                let native = try Run.capture([shell, "-c", script])
                let colocated = try Run.colo([shell, "-c", script])
                #expect(values(native.stdout)["status"] == String(expected), "\(shell) natively: \(native.stderr)")
                #expect(values(colocated.stdout)["status"] == String(expected), "\(shell) colocated: \(colocated.stderr)")
                #expect(colocated.stderr.contains("Argument list too long") == (expected == 126))
            }
        }
    }

    /// The CheriBSD tools hand their command's arguments, names and socket paths on as
    /// bytes: clocks runs a command with every byte, coregister -n publishes a name of every
    /// byte, and colookup -n finds it.
    @Test func theToolsPassBytesOn() throws {
        let tree = try Tree()
        let bin = URL(fileURLWithPath: Run.colo).deletingLastPathComponent().path
        check(try run(tree, "\"$COLO\" \(bin)/clocks \"$P\" \"$A\""), argv0: tree.program, "clocks COMMAND")
        // A name of every byte but NUL: coregister -n relays calls to capv entry 8 (the
        // clocks service); colookup -n looks the name up (retrying until it is published)
        // and puts it in the command's vector, which capv -c lists.
        // name_lookup looks the exact bytes up (a replaced name would not be found).
        let name = Self.quoted(Self.every)
        let lookup = try Guests.buildWithAPI("name_lookup")
        let script = "COLO=\(Run.colo); \"$COLO\" \(bin)/clocks /bin/sh -c '\(bin)/coregister -i8 -n \"$0\" & "
            + "for i in $(seq 100); do \(bin)/colookup -i 3 -n \"$0\" \(bin)/capv -c && break; sleep 0.05; done; "
            + "\(lookup) \"$0\"; kill $!' \(name)"
        let out = try Run.capture(["/bin/bash", "-c", script])
        #expect(out.stdout.contains("3:"), "colookup found the name and capv lists entry 3: \(out.stdout) \(out.stderr)")
        #expect(values(out.stdout)["found"] == "1", "the name was published with its own bytes: \(out.stdout)")
    }
}
