// #! scripts, parsed and rewritten as Linux's binfmt_script does.
import Bytes
import Glibc
import Testing
@testable import Loader

/// #! scripts, parsed and rewritten as Linux's binfmt_script does.
@Suite struct ScriptTests {
    let fixtures = Fixtures.shared

    @Test func scriptRunsItsInterpreterWithOneOptionalArgument() throws {
        let script = fixtures.write("script-arg", text: "#!\(fixtures.staticPie) -x\necho ignored\n")
        let image = try colocatable(script, argv: ["name", "a", "b"])
        #expect(image.argv == [fixtures.staticPie, "-x", script, "a", "b"])
        #expect(image.path == fixtures.staticPie)
        #expect(image.execPath == script)
        #expect(image.comm == "script-arg")
    }

    @Test func scriptWithoutArgument() throws {
        let script = fixtures.write("script-plain", text: "#!\(fixtures.staticPie)\n")
        #expect(try colocatable(script, argv: ["s", "1"]).argv == [fixtures.staticPie, script, "1"])
    }

    @Test func argumentIsTheTrimmedRestOfTheLine() throws {
        let script = fixtures.write("script-spaces", text: "#! \t\(fixtures.staticPie) \t one  two \t \nrest\n")
        #expect(try colocatable(script).argv == [fixtures.staticPie, "one  two", script])
    }

    @Test func scriptWithoutNewline() throws {
        let script = fixtures.write("script-nonl", text: "#!\(fixtures.staticPie)")
        #expect(try colocatable(script).argv == [fixtures.staticPie, script])
    }

    @Test func argumentIsCutAtTheLineLimit() throws {
        let script = fixtures.write("script-longarg", text: "#!\(fixtures.staticPie) " + String(repeating: "y", count: 400))
        let argument = try colocatable(script).argv[1]
        #expect(argument == String(repeating: "y", count: 255 - 3 - fixtures.staticPie.utf8.count))
    }

    @Test(arguments: ["#!\n", "#! \t \n", "#!", "#!" + String(repeating: "p", count: 300)])
    func scriptWithoutUsableInterpreterIsENOEXEC(text: String) {
        let script = fixtures.write("script-bad-\(text.utf8.count)-\(text.hashValue)", text: text)
        #expect(planErrno(script) == ENOEXEC)
    }

    @Test func missingInterpreterIsENOENT() {
        let script = fixtures.write("script-missing", text: "#!\(fixtures.directory)/nothing-here\n")
        #expect(planErrno(script) == ENOENT)
    }

    @Test func directoryInterpreterIsEACCES() {
        let script = fixtures.write("script-dir", text: "#!\(fixtures.directory)\n")
        #expect(planErrno(script) == EACCES)
    }

    @Test func scriptWithoutExecutePermissionIsEACCES() {
        let script = fixtures.write("script-nox", text: "#!\(fixtures.staticPie)\n", mode: 0o644)
        #expect(planErrno(script) == EACCES)
    }

    @Test func fourNestedScriptsAreFollowedAndFiveAreELOOP() throws {
        var interpreter = fixtures.staticPie
        var chain: [String] = []
        for level in 1...5 {
            interpreter = fixtures.write("nested-\(level)", text: "#!\(interpreter)\n")
            chain.insert(interpreter, at: 0)
        }
        let four = chain[1]
        let image = try colocatable(four, argv: ["four", "arg"])
        #expect(image.argv == [fixtures.staticPie] + chain[1...].reversed() + ["arg"])
        #expect(image.execPath == four)
        #expect(planErrno(chain[0]) == ELOOP)
    }

    @Test func scriptForANonPieInterpreterIsANativeExecOfTheScript() throws {
        let script = fixtures.write("script-nopie", text: "#!\(fixtures.noPie) -q\n")
        let plan = try Loader.plan(path: script, argv: ["s", "x"], envp: [])
        guard case .nativeExec(let path, let argv) = plan else {
            Issue.record("planned as \(plan)")
            return
        }
        #expect(path == script)
        #expect(argv == ["s", "x"])
    }

    @Test func parserFollowsBinfmtScript() throws {
        /// [interpreter, argument], nil if not a script.
        func parse(_ text: String) throws -> [ByteString?]? {
            try Shebang(header: Array(text.utf8)).map { [$0.interpreter, $0.argument] }
        }
        #expect(try parse("\u{7f}ELF") == nil)
        #expect(try parse("#!/bin/sh\n") == ["/bin/sh", nil])
        #expect(try parse("#!/bin/sh -e -u\n") == ["/bin/sh", "-e -u"])
        #expect(try parse("#!/bin/sh\0 ignored\n") == ["/bin/sh", nil])
        #expect(try parse("#!/bin/sh\t-e\r\n") == ["/bin/sh", "-e\r"])
    }
}
