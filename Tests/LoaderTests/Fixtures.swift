// C programs compiled once per test run into a short temporary directory (short, so that its paths fit into the PT_INTERP string of a ....
import ColoABI
import Errors
import Foundation
import Glibc
@testable import Loader

/// C programs compiled once per test run into a short temporary directory (short, so that its
/// paths fit into the PT_INTERP string of a dynamic PIE when tests patch it).
struct Fixtures: Sendable {
    /// The directory holding every fixture; removed when the test process exits.
    let directory: String
    /// `cc -static-pie` (glibc).
    let staticPie: String
    /// `cc -static-pie` with 64 KiB segment alignment: unmapped gaps between its PT_LOADs.
    let gappedStaticPie: String
    /// `cc` (dynamically linked PIE with PT_INTERP).
    let dynamicPie: String
    /// `cc -no-pie` (ET_EXEC).
    let noPie: String
    /// `cc -shared` (ET_DYN with e_entry 0).
    let sharedLibrary: String
    /// musl static-pie, nil without musl-gcc.
    let muslStaticPie: String?

    /// The fixtures of this test run.
    static let shared = Fixtures()

    /// Whether musl-gcc is installed.
    static var hasMusl: Bool { shared.muslStaticPie != nil }

    private static let source = """
        #include <stdio.h>
        char greeting[] = "colo-loader-fixture";
        static char big[1 << 20];   /* bss well past the last file page */
        int main(int argc, char **argv) { big[argc] = 1; puts(greeting); return big[1]; }
        """

    private init() {
        var template = Array("/tmp/ldXXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { fatalError("mkdtemp: \(errno)") }
        directory = String(cString: made)
        fixtureDirectory = directory
        atexit { try? FileManager.default.removeItem(atPath: fixtureDirectory) }
        let source = directory + "/hello.c"
        _ = FileManager.default.createFile(atPath: source, contents: Data(Self.source.utf8))
        staticPie = Self.compile("cc", ["-static-pie", "-O1"], source, into: directory + "/spie")
        gappedStaticPie = Self.compile("cc", ["-static-pie", "-O1", "-Wl,-z,max-page-size=0x10000",
                                              "-Wl,-z,separate-code"], source, into: directory + "/gpie")
        dynamicPie = Self.compile("cc", ["-pie", "-fPIE", "-O1"], source, into: directory + "/dpie")
        noPie = Self.compile("cc", ["-no-pie", "-O1"], source, into: directory + "/nopie")
        sharedLibrary = Self.compile("cc", ["-shared", "-fPIC"], source, into: directory + "/lib.so")
        // Debian's musl-gcc specs ignore -static-pie: link with rcrt1.o and no dynamic linker by hand.
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/musl-gcc") {
            let musl = "/usr/lib/x86_64-linux-musl"
            let crt = { (name: String) in Self.run("gcc", ["-print-file-name=\(name)"]).trimmingCharacters(in: .whitespacesAndNewlines) }
            muslStaticPie = Self.compile("musl-gcc", [
                "-static-pie", "-O1", "-nostartfiles", "-Wl,--no-dynamic-linker", "-Wl,-Bstatic",
                "\(musl)/rcrt1.o", "\(musl)/crti.o", crt("crtbeginS.o"),
            ], source, after: [crt("crtendS.o"), "\(musl)/crtn.o"], into: directory + "/mpie")
        } else {
            muslStaticPie = nil
        }
    }

    private static func compile(_ compiler: String, _ flags: [String], _ source: String,
                                after: [String] = [], into output: String) -> String {
        _ = run(compiler, flags + [source] + after + ["-o", output])
        return output
    }

    @discardableResult
    private static func run(_ tool: String, _ arguments: [String]) -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [tool] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        do { try process.run() } catch { fatalError("cannot run \(tool): \(error)") }
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { fatalError("\(tool) \(arguments) failed") }
        return String(decoding: output, as: UTF8.self)
    }

    /// Writes `bytes` to a new file `name` in the fixture directory with `mode`; returns its path.
    @discardableResult
    func write(_ name: String, _ bytes: [UInt8], mode: mode_t = 0o755) -> String {
        let path = directory + "/" + name
        unlink(path)
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        chmod(path, mode)
        return path
    }

    /// Writes a text file (a #! script by default executable).
    @discardableResult
    func write(_ name: String, text: String, mode: mode_t = 0o755) -> String {
        write(name, Array(text.utf8), mode: mode)
    }

    /// A copy of the file at `path`, edited by `edit`, as an executable `name`.
    func patched(_ path: String, _ name: String, _ edit: (inout ElfBytes) -> Void) -> String {
        var elf = ElfBytes(bytes(of: path))
        edit(&elf)
        return write(name, elf.bytes)
    }

    /// The contents of a file.
    func bytes(of path: String) -> [UInt8] {
        [UInt8](FileManager.default.contents(atPath: path) ?? Data())
    }
}

/// The fixture directory, for the atexit handler (which cannot capture).
nonisolated(unsafe) private var fixtureDirectory = ""

/// Raw little-endian access to an ELF64 file's bytes, for crafting malformed files.
struct ElfBytes {
    var bytes: [UInt8]

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    func read(_ offset: Int, _ size: Int) -> UInt64 {
        (0..<size).reduce(0) { $0 | UInt64(bytes[offset + $1]) << (8 * UInt64($1)) }
    }

    mutating func write(_ offset: Int, _ size: Int, _ value: UInt64) {
        for i in 0..<size { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
    }

    var phoff: Int { Int(read(0x20, 8)) }
    var phnum: Int { Int(read(0x38, 2)) }

    /// File offset of program header `index`.
    func phdr(_ index: Int) -> Int { phoff + 56 * index }

    /// Offsets of the program headers of `type`, in order.
    func headers(ofType type: UInt32) -> [Int] {
        (0..<phnum).map(phdr).filter { read($0, 4) == UInt64(type) }
    }

    /// Offsets of the PT_LOAD headers.
    var loads: [Int] { headers(ofType: 1) }

    // Field offsets inside an Elf64_Phdr.
    static let pFlags = 4, pOffset = 8, pVaddr = 16, pFilesz = 32, pMemsz = 40
}

/// The errno plan() throws for `path`, nil if it succeeds.
func planErrno(_ path: String, argv: [String]? = nil, envp: [String] = []) -> Int32? {
    do {
        _ = try Loader.plan(path: path, argv: argv ?? [path], envp: envp)
        return nil
    } catch {
        return error.errno.rawValue
    }
}

/// The ProgramImage plan() returns for a colocatable program; records an issue otherwise.
func colocatable(_ path: String, argv: [String]? = nil, envp: [String] = []) throws -> ProgramImage {
    switch try Loader.plan(path: path, argv: argv ?? [path], envp: envp) {
    case .colocate(let image): return image
    case .nativeExec: throw LoadError(errno: Errno(0), message: "\(path) unexpectedly needs a native exec")
    }
}

/// The slot with index `k` (each test uses its own k, as tests run in parallel).
func testSlot(_ k: Int) -> SlotLayout {
    SlotLayout(base: COLO_SLOT_REGION_BASE + (UInt64(k) << COLO_SLOT_SHIFT))
}

/// Unmaps a whole slot.
func release(_ slot: SlotLayout) {
    munmap(UnsafeMutableRawPointer(bitPattern: UInt(slot.base)), Int(COLO_SLOT_SIZE))
}

/// Reads mapped memory of this process.
enum Memory {
    static func word(_ address: UInt64) -> UInt64 {
        UnsafeRawPointer(bitPattern: UInt(address))!.loadUnaligned(as: UInt64.self)
    }

    static func bytes(_ address: UInt64, _ count: Int) -> [UInt8] {
        Array(UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: UInt(address)), count: count))
    }

    static func string(_ address: UInt64) -> String {
        String(cString: UnsafePointer<CChar>(bitPattern: UInt(address))!)
    }

    /// The permissions ("r-xp", …) /proc/self/maps gives the mapping holding `address`, nil if unmapped.
    static func permissions(at address: UInt64) -> String? {
        let maps = (try? String(contentsOfFile: "/proc/self/maps", encoding: .utf8)) ?? ""
        for line in maps.split(separator: "\n") {
            let fields = line.split(separator: " ")
            let range = fields[0].split(separator: "-").map { UInt64($0, radix: 16)! }
            if range[0] <= address && address < range[1] { return String(fields[1]) }
        }
        return nil
    }

    /// Whether any mapping of this process intersects [start, end).
    static func anyMapping(in start: UInt64, _ end: UInt64) -> Bool {
        let maps = (try? String(contentsOfFile: "/proc/self/maps", encoding: .utf8)) ?? ""
        return maps.split(separator: "\n").contains { line in
            let range = line.split(separator: " ")[0].split(separator: "-").map { UInt64($0, radix: 16)! }
            return range[0] < end && start < range[1]
        }
    }
}
