// LoaderFidelityTests.swift: hello-world programs with headers mutated as scripts/fuzz/mutate mutates them run the same under colo as natively.
import CElf
import Foundation
import Glibc
import Testing

/// Mutations of scripts/fuzz/hello.c's binaries that the loader once got wrong: Linux runs them
/// (or kills the process, or refuses them with an errno) and colo did something else.
enum FidelityMutation: String, CaseIterable, Sendable, CustomStringConvertible {
    /// EI_CLASS, EI_DATA, EI_VERSION, EI_OSABI (binfmt_elf looks at the magic only): was ENOEXEC.
    case identBytes
    /// The first two PT_LOADs swapped: was ENOEXEC.
    case descendingLoads
    /// The first PT_LOAD reaching into the second, which is mapped over it: was ENOEXEC.
    case overlappingLoads
    /// The text's p_filesz 0x40 short of its p_memsz: padzero cannot write a read-only page, so
    /// those bytes (_fini) stay; the loader zeroed them and the program crashed.
    case readOnlyTailKept
    /// A read-only PT_LOAD reaching past the end of the file: was ENOEXEC.
    case segmentBeyondFile
    /// p_filesz > p_memsz: Linux kills the process after the point of no return (SIGSEGV): was ENOEXEC.
    case fileszAboveMemsz
    /// An empty PT_INTERP path: open_exec("") is EACCES: was ENOENT.
    case emptyInterpreter
    /// PT_INTERP past the end of the file: a short read, EIO: was ENOEXEC.
    case interpreterBeyondFile

    var description: String { rawValue }

    /// Whether Linux runs the mutant to its normal end.
    var runs: Bool { ![.fileszAboveMemsz, .emptyInterpreter, .interpreterBeyondFile].contains(self) }

    var isDynamic: Bool { self == .emptyInterpreter || self == .interpreterBeyondFile }

    func apply(_ elf: inout [UInt8]) {
        func read(_ offset: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(elf[offset + $1]) << (8 * UInt64($1)) } }
        func write(_ offset: Int, _ value: UInt64) {
            for i in 0..<8 { elf[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
        }
        let phoff = Int(read(0x20)), phnum = Int(read(0x38) & 0xffff)
        let headers = (0..<phnum).map { phoff + 56 * $0 }
        let loads = headers.filter { read($0) & 0xffff_ffff == UInt64(PT_LOAD) }
        let interp = headers.first { read($0) & 0xffff_ffff == UInt64(PT_INTERP) }
        let (offset, vaddr, filesz, memsz) = (8, 16, 32, 40)
        switch self {
        case .identBytes:
            elf[Int(EI_CLASS)] = 1
            elf[Int(EI_DATA)] = 2
            elf[Int(EI_VERSION)] = 0
            elf[Int(EI_OSABI)] = 0x61
        case .descendingLoads:
            let first = Array(elf[loads[0]..<loads[0] + 56])
            elf.replaceSubrange(loads[0]..<loads[0] + 56, with: elf[loads[1]..<loads[1] + 56])
            elf.replaceSubrange(loads[1]..<loads[1] + 56, with: first)
        case .overlappingLoads:
            write(loads[0] + filesz, read(loads[1] + vaddr) + 0x100)
            write(loads[0] + memsz, read(loads[1] + vaddr) + 0x100)
        case .readOnlyTailKept:
            write(loads[1] + filesz, read(loads[1] + filesz) - 0x40)
        case .segmentBeyondFile:
            write(loads[2] + filesz, 0x50000)
            write(loads[2] + memsz, 0x50000)
        case .fileszAboveMemsz:
            write(loads[loads.count - 1] + filesz, read(loads[loads.count - 1] + memsz) + 1)
        case .emptyInterpreter:
            elf[Int(read(interp! + offset))] = 0
        case .interpreterBeyondFile:
            write(interp! + offset, UInt64(elf.count - 4))
        }
    }
}

@Suite struct LoaderFidelityTests {
    static let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/fuzz/hello.c").path

    @Test(arguments: FidelityMutation.allCases)
    func mutantRunsColocatedAsNatively(_ mutation: FidelityMutation) throws {
        let path = try #require(try Self.mutants()[mutation])
        // A child forked by another test while a file was open for writing holds it until it
        // execs: executing the file meanwhile is ETXTBSY, so that is tried again.
        var colocated = try Run.colo([path])
        for _ in 0..<20 where colocated.stderr.hasSuffix(": \(String(cString: strerror(ETXTBSY)))\n") {
            usleep(50_000)
            colocated = try Run.colo([path])
        }
        var errno = Self.execErrno(path)
        for _ in 0..<20 where errno == ETXTBSY {
            usleep(50_000)
            errno = Self.execErrno(path)
        }
        if let errno {
            #expect(!mutation.runs, "Linux refuses it: \(String(cString: strerror(errno)))")
            #expect([126, 127].contains(colocated.status), "colocated: \(colocated.status) \(colocated.stderr)")
            #expect(colocated.stderr.hasSuffix(": \(String(cString: strerror(errno)))\n"), "colocated: \(colocated.stderr)")
            return
        }
        let native = try Run.capture([path])
        #expect(mutation.runs == (native.status == 0 && native.stdout == "hello, world\n"), "native: \(native.status)")
        #expect(colocated.status == native.status, "colocated: \(colocated.stderr)")
        #expect(colocated.stdout == native.stdout)
    }

    /// Every mutant, written once (all before any is executed): the glibc static-pie or dynamic
    /// PIE of scripts/fuzz/hello.c, mutated.
    static func mutants() throws -> [FidelityMutation: String] {
        Guests.lock.lock()
        defer { Guests.lock.unlock() }
        if let written = written { return written }
        var seeds: [Bool: [UInt8]] = [:]
        for dynamic in [false, true] {
            let output = Guests.buildDir + (dynamic ? "/fidelity-dpie" : "/fidelity-spie")
            let built = try Run.capture(["cc", "-O1", dynamic ? "-pie" : "-static-pie", source, "-o", output])
            guard built.status == 0 else { throw TestFailure("cc \(source): \(built.stderr)") }
            seeds[dynamic] = [UInt8](try Data(contentsOf: URL(fileURLWithPath: output)))
        }
        var paths: [FidelityMutation: String] = [:]
        for mutation in FidelityMutation.allCases {
            var bytes = seeds[mutation.isDynamic]!
            mutation.apply(&bytes)
            let path = Guests.buildDir + "/fidelity-\(mutation)"
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            chmod(path, 0o755)
            paths[mutation] = path
        }
        written = paths
        return paths
    }

    nonisolated(unsafe) private static var written: [FidelityMutation: String]?

    /// The errno with which execve refuses `path`, nil if it runs it (then waited for).
    static func execErrno(_ path: String) -> Int32? {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for fd: Int32 in [1, 2] { posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", O_WRONLY, 0) }
        var pid: pid_t = 0
        var argv: [UnsafeMutablePointer<CChar>?] = [strdup(path), nil]
        defer { free(argv[0]) }
        let rc = posix_spawn(&pid, path, &actions, nil, &argv, environ)
        guard rc == 0 else { return rc }
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        return nil
    }
}
