// Loader.plan: which programs are colocated, which need a native exec, and execve's errors.
import Bytes
import Foundation
import Glibc
import Testing
@testable import Loader

/// Loader.plan: which programs are colocated, which need a native exec, and execve's errors.
@Suite struct PlanTests {
    let fixtures = Fixtures.shared

    @Test func glibcStaticPieIsColocated() throws {
        // PT_DYNAMIC without PT_INTERP: self-relocating, needs no interpreter.
        #expect(ElfBytes(fixtures.bytes(of: fixtures.staticPie)).headers(ofType: 2).count == 1)
        let image = try colocatable(fixtures.staticPie, argv: ["spie", "a"], envp: ["X=1"])
        #expect(image.path == fixtures.staticPie)
        #expect(image.interpreterPath == nil)
        #expect(image.argv == ["spie", "a"])
        #expect(image.execPath == fixtures.staticPie)
        #expect(image.comm == "spie")
    }

    @Test(.enabled(if: Fixtures.hasMusl, "musl-gcc is not installed (apt-get install musl-tools)"))
    func muslStaticPieIsColocated() throws {
        let path = try #require(fixtures.muslStaticPie)
        let image = try colocatable(path)
        #expect(image.interpreterPath == nil)
        #expect(image.program.nativeExecReason == nil)
    }

    @Test func dynamicPieBringsItsInterpreter() throws {
        let image = try colocatable(fixtures.dynamicPie)
        #expect(image.interpreterPath == "/lib64/ld-linux-x86-64.so.2")
        #expect(image.interpreter?.interpreterPath == nil)
    }

    @Test func nonPieNeedsANativeExec() throws {
        let plan = try Loader.plan(path: fixtures.noPie, argv: ["nopie", "x"], envp: [])
        guard case .nativeExec(let path, let argv) = plan else {
            Issue.record("ET_EXEC planned as \(plan)")
            return
        }
        #expect(path == fixtures.noPie)
        #expect(argv == ["nopie", "x"])
    }

    @Test func emptyArgvBecomesOneEmptyString() throws {
        #expect(try colocatable(fixtures.staticPie, argv: []).argv == [""])
    }

    @Test func commIsTheBasenameCutTo15Bytes() throws {
        let path = fixtures.write("a-rather-long-program-name", fixtures.bytes(of: fixtures.staticPie))
        #expect(try colocatable(path).comm == "a-rather-long-p")
        // The kernel cuts at a byte (strscpy into task->comm), even inside a character: seven
        // "é" (c3 a9) and the first byte of the eighth.
        #expect(Loader.commandName("/x/ééééééééé") == ByteString(Array("ééééééé".utf8) + [0xC3]))
    }

    @Test func sharedLibraryIsLoadedLikeAProgram() {
        // Linux maps it and jumps to e_entry 0, its ELF header: the program dies of SIGSEGV.
        #expect(PlanOutcome(fixtures.sharedLibrary) == .colocated)
    }

    // MARK: path and permission errors

    @Test func missingFileIsENOENT() {
        #expect(planErrno(fixtures.directory + "/no-such-file") == ENOENT)
        #expect(planErrno("") == ENOENT)
    }

    @Test func fileAsDirectoryIsENOTDIR() {
        #expect(planErrno(fixtures.staticPie + "/x") == ENOTDIR)
    }

    @Test func longNamesAreENAMETOOLONG() {
        #expect(planErrno(fixtures.directory + "/" + String(repeating: "n", count: 300)) == ENAMETOOLONG)
        #expect(planErrno(String(repeating: "/d", count: 2100)) == ENAMETOOLONG)
    }

    @Test func symlinkLoopIsELOOP() {
        let a = fixtures.directory + "/loop-a", b = fixtures.directory + "/loop-b"
        symlink(b, a)
        symlink(a, b)
        #expect(planErrno(a) == ELOOP)
    }

    @Test func directoryIsEACCES() {
        #expect(planErrno(fixtures.directory) == EACCES)
    }

    @Test func fileWithoutExecutePermissionIsEACCES() {
        // Root too: X_OK needs at least one x bit on a regular file.
        let path = fixtures.write("no-x", fixtures.bytes(of: fixtures.staticPie), mode: 0o644)
        #expect(planErrno(path) == EACCES)
    }

    @Test func fifoIsEACCESWithoutBlocking() {
        let path = fixtures.directory + "/fifo"
        mkfifo(path, 0o755)
        #expect(planErrno(path) == EACCES)
    }

    // MARK: format errors

    @Test(arguments: [0, 3, 10, 40, 100])
    func truncatedFileIsENOEXEC(length: Int) {
        let path = fixtures.write("truncated-\(length)", Array(fixtures.bytes(of: fixtures.staticPie).prefix(length)))
        #expect(planErrno(path) == ENOEXEC)
    }

    @Test func textFileIsENOEXEC() {
        #expect(planErrno(fixtures.write("text", text: "echo hello\n")) == ENOEXEC)
    }

    @Test(arguments: MalformedElf.allCases)
    func malformedElfIsPlannedAsLinuxLoadsIt(_ kind: MalformedElf) {
        let path = fixtures.patched(fixtures.staticPie, "malformed-\(kind)", kind.patch)
        #expect(PlanOutcome(path) == kind.outcome, "\(kind)")
    }

    @Test(arguments: BadInterpreter.allCases)
    func badInterpreterIsPlannedAsLinuxLoadsIt(_ kind: BadInterpreter) {
        let target = kind.interpreterFile(fixtures)
        let path = fixtures.patched(fixtures.dynamicPie, "bad-interp-\(kind)") { elf in
            let interp = elf.headers(ofType: 3)[0]
            let offset = Int(elf.read(interp + ElfBytes.pOffset, 8))
            let size = Int(elf.read(interp + ElfBytes.pFilesz, 8))
            switch kind {
            case .tooLong: elf.write(interp + ElfBytes.pFilesz, 8, 5000)
            case .notTerminated: elf.bytes[offset + size - 1] = UInt8(ascii: "x")
            case .empty: elf.bytes[offset] = 0
            case .beyondFile: elf.write(interp + ElfBytes.pOffset, 8, UInt64(elf.bytes.count - 4))
            case .offsetTooLarge: elf.write(interp + ElfBytes.pOffset, 8, UInt64(Int64.max) - 4)
            default:
                let name = Array(target!.utf8) + [0]
                precondition(name.count <= size, "fixture path \(target!) too long for PT_INTERP")
                elf.bytes.replaceSubrange(offset..<offset + name.count, with: name)
            }
        }
        #expect(PlanOutcome(path) == kind.outcome, "\(kind)")
    }

    @Test func argumentLongerThan32PagesIsE2BIG() {
        let long = String(repeating: "a", count: Loader.maxArgumentLength)
        #expect(planErrno(fixtures.staticPie, argv: ["p", long]) == E2BIG)
        #expect(planErrno(fixtures.staticPie, envp: ["X=" + long]) == E2BIG)
        #expect(planErrno(fixtures.staticPie, argv: ["p", String(long.dropFirst())]) == nil)
    }

    /// Random byte mutations of a real static-pie: plan() may refuse them, never trap.
    @Test func mutatedBinariesNeverCrashPlan() {
        let original = fixtures.bytes(of: fixtures.staticPie)
        var random = SplitMix64(seed: 0xC010)
        var refused = 0
        for round in 0..<300 {
            var bytes = original
            for _ in 0..<(1 + random.next() % 8) {
                // Mostly the headers, where the parsing is.
                let range = random.next() % 4 == 0 ? UInt64(bytes.count) : 1024
                bytes[Int(random.next() % range)] = UInt8(truncatingIfNeeded: random.next())
            }
            let path = fixtures.write("fuzz", bytes)
            if planErrno(path, argv: ["fuzz-\(round)"]) != nil { refused += 1 }
        }
        #expect(refused > 0)
    }
}

/// A deterministic generator for the mutation test.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Ways to break a static-pie's headers, and what Linux's binfmt_elf does with each.
enum MalformedElf: String, CaseIterable, Sendable, CustomStringConvertible {
    case elfClass32, bigEndian, machine386, typeRel, typeCore, noProgramHeaders, tooManyProgramHeaders
    case wrongPhentsize, programHeadersBeyondFile, entryZero
    case fileszAboveMemsz, segmentBeyondFile, pageOffsetMismatch, overlappingLoads, descendingLoads
    case spanBeyondTheSlot, vaddrPlusMemszOverflows, noLoadSegment

    var description: String { rawValue }

    var outcome: PlanOutcome {
        switch self {
        // Refused before the point of no return.
        case .typeRel, .typeCore, .noProgramHeaders, .tooManyProgramHeaders, .wrongPhentsize,
             .programHeadersBeyondFile: .refused(ENOEXEC)
        // Not looked at (EI_DATA), or loaded as binfmt_elf loads it; entryZero dies of SIGSEGV.
        case .bigEndian, .entryZero, .segmentBeyondFile, .overlappingLoads, .descendingLoads: .colocated
        // Perhaps the compat loader's; binfmt_elf kills the process after the point of no
        // return; or more than a slot holds.
        case .elfClass32, .machine386, .fileszAboveMemsz, .pageOffsetMismatch, .spanBeyondTheSlot,
             .vaddrPlusMemszOverflows, .noLoadSegment: .nativeExec
        }
    }

    func patch(_ elf: inout ElfBytes) {
        let loads = elf.loads
        let first = loads[0], second = loads[1], last = loads[loads.count - 1]
        switch self {
        case .elfClass32: elf.bytes[4] = 1
        case .bigEndian: elf.bytes[5] = 2
        case .machine386: elf.write(0x12, 2, 3)
        case .typeRel: elf.write(0x10, 2, 1)
        case .typeCore: elf.write(0x10, 2, 4)
        case .noProgramHeaders: elf.write(0x38, 2, 0)
        case .tooManyProgramHeaders: elf.write(0x38, 2, 2000)
        case .wrongPhentsize: elf.write(0x36, 2, 32)
        case .programHeadersBeyondFile: elf.write(0x20, 8, UInt64(elf.bytes.count - 100))
        case .entryZero: elf.write(0x18, 8, 0)
        case .fileszAboveMemsz:
            elf.write(last + ElfBytes.pFilesz, 8, elf.read(last + ElfBytes.pMemsz, 8) + 1)
        case .segmentBeyondFile:
            elf.write(last + ElfBytes.pFilesz, 8, UInt64(elf.bytes.count))
            elf.write(last + ElfBytes.pMemsz, 8, UInt64(elf.bytes.count))
        case .pageOffsetMismatch: elf.write(second + ElfBytes.pOffset, 8, elf.read(second + ElfBytes.pOffset, 8) + 8)
        case .overlappingLoads:
            // The second segment starts inside the first, with p_vaddr and p_offset still congruent.
            let firstStart = elf.read(first + ElfBytes.pVaddr, 8)
            precondition(elf.read(first + ElfBytes.pMemsz, 8) > 0x1000)
            elf.write(second + ElfBytes.pVaddr, 8, firstStart + elf.read(second + ElfBytes.pOffset, 8) % 0x1000)
        case .descendingLoads:
            let a = Array(elf.bytes[first..<first + 56]), b = Array(elf.bytes[second..<second + 56])
            elf.bytes.replaceSubrange(first..<first + 56, with: b)
            elf.bytes.replaceSubrange(second..<second + 56, with: a)
        case .spanBeyondTheSlot: elf.write(last + ElfBytes.pVaddr, 8, elf.read(last + ElfBytes.pVaddr, 8) + (8 << 30))
        case .vaddrPlusMemszOverflows: elf.write(last + ElfBytes.pMemsz, 8, UInt64.max - 0x100)
        case .noLoadSegment: for load in loads { elf.write(load, 4, 0x6474e551) }   // PT_GNU_STACK
        }
    }
}

/// Ways a dynamic PIE's PT_INTERP can be wrong, and what execve does with each.
enum BadInterpreter: String, CaseIterable, Sendable, CustomStringConvertible {
    case tooLong, notTerminated, empty, beyondFile, offsetTooLarge, missing, shortFile, notElf, wrongMachine
    case hasInterpreter, notPie, notExecutable

    var description: String { rawValue }

    var outcome: PlanOutcome {
        switch self {
        case .tooLong, .notTerminated: .refused(ENOEXEC)
        case .empty: .refused(EACCES)            // open_exec("") opens the working directory
        case .beyondFile: .refused(EIO)          // a short read
        case .offsetTooLarge: .refused(EINVAL)   // kernel_read's position check
        case .missing: .refused(ENOENT)
        case .shortFile: .refused(EIO)           // shorter than an ELF header: a short read
        case .notElf, .wrongMachine: .refused(ELIBBAD)
        case .hasInterpreter: .colocated         // an interpreter's own PT_INTERP is ignored
        case .notPie: .nativeExec                // mapped at its fixed addresses
        case .notExecutable: .refused(EACCES)
        }
    }

    /// The file PT_INTERP is made to name (nil when only the header is broken).
    func interpreterFile(_ fixtures: Fixtures) -> String? {
        let ldso = "/lib64/ld-linux-x86-64.so.2"
        switch self {
        case .tooLong, .notTerminated, .empty, .beyondFile, .offsetTooLarge: return nil
        case .missing: return fixtures.directory + "/none"
        case .shortFile: return fixtures.write("i-short", text: "not an ELF file\n")
        case .notElf: return fixtures.write("i-text", text: String(repeating: "not an ELF file\n", count: 8))
        case .wrongMachine: return fixtures.patched(ldso, "i-386") { $0.write(0x12, 2, 3) }
        case .hasInterpreter: return fixtures.dynamicPie
        case .notPie: return fixtures.noPie
        case .notExecutable: return fixtures.write("i-nox", fixtures.bytes(of: ldso), mode: 0o644)
        }
    }
}
