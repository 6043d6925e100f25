// Loader.map: segments, interpreter and stack read back from memory.
import Bytes
import CElf
import ColoABI
import Foundation
import Glibc
import Testing
@testable import Loader

/// Loader.map: segments, interpreter and stack read back from memory. Each test maps into its
/// own slot (testSlot(k) with a k no other test uses) and unmaps the whole slot at the end.
@Suite struct MapTests {
    let fixtures = Fixtures.shared
    static let stackSize = 8 << 20

    @Test func staticPieIsMappedWithItsStack() throws {
        let slot = testSlot(1)
        defer { release(slot) }
        let argv = ["spie", "hello"], envp: [ByteString] = ["A=1", "B=two"], capv: [UInt64] = [0x1111, 0x2222, 0x3333]
        let image = try colocatable(fixtures.staticPie, argv: argv)
        let loaded = try Loader.map(image, into: slot, envp: envp, capv: capv, stackSize: Self.stackSize)
        let elf = ElfBytes(fixtures.bytes(of: fixtures.staticPie))
        // A 4 KiB-aligned program goes 1 MiB above COLO_IMAGE_OFFSET, its stack's top 64 KiB below it.
        let imageBase = slot.base + COLO_IMAGE_OFFSET + COLO_IMAGE_PACK_OFFSET, stackTop = imageBase - 0x10000
        #expect(image.program.alignment <= 0x100000 && slot.imageBase(alignment: image.program.alignment) == imageBase)
        #expect(loaded.program == MappedImage(path: ByteString(fixtures.staticPie), loadBias: imageBase,
                                              start: imageBase, end: imageBase + image.program.span))
        #expect(loaded.interpreter == nil)
        #expect(loaded.entry == imageBase + elf.read(0x18, 8))
        #expect(loaded.brkStart == loaded.program.end + COLO_BRK_GAP)
        #expect(loaded.mmapCursor == slot.mmapLow)
        #expect(loaded.argv == argv && loaded.execPath == fixtures.staticPie && loaded.comm == "spie")
        checkSegments(image.program, loaded.program, file: elf)

        let stack = try StackView(loaded.stackPointer)
        try checkStack(stack, loaded, image, envp: envp.map(\.description), capv: capv)
        #expect(stack.value(AT_BASE) == 0)
        #expect(Memory.permissions(at: stackTop - 1) == "rw-p")
        #expect(Memory.permissions(at: stackTop - UInt64(Self.stackSize)) == "rw-p")
        #expect(Memory.permissions(at: stackTop - UInt64(Self.stackSize) - 1) == nil)
        #expect(Memory.permissions(at: stackTop) == nil, "the 64 KiB guard below the program")
    }

    @Test func dynamicPieGetsItsInterpreterAtMmapLow() throws {
        let slot = testSlot(2)
        defer { release(slot) }
        let image = try colocatable(fixtures.dynamicPie, argv: ["dpie"])
        let loaded = try Loader.map(image, into: slot, envp: [], capv: [], stackSize: Self.stackSize)
        let interpreterPath = try #require(image.interpreterPath)
        let ldso = ElfBytes(fixtures.bytes(of: interpreterPath.description))
        let interpreter = try #require(loaded.interpreter)
        let interpreterObject = try #require(image.interpreter)

        #expect(interpreter.path == interpreterPath)
        #expect(interpreter.start == slot.mmapLow && interpreter.end == slot.mmapLow + interpreterObject.span)
        #expect(loaded.entry == interpreter.loadBias + ldso.read(0x18, 8))
        #expect(loaded.mmapCursor == interpreter.end)
        checkSegments(interpreterObject, interpreter, file: ldso)
        checkSegments(image.program, loaded.program, file: ElfBytes(fixtures.bytes(of: fixtures.dynamicPie)))

        let stack = try StackView(loaded.stackPointer)
        try checkStack(stack, loaded, image, envp: [], capv: [])
        #expect(stack.value(AT_BASE) == interpreter.loadBias)
        let phdr = ElfBytes(fixtures.bytes(of: fixtures.dynamicPie)).headers(ofType: UInt32(PT_PHDR))[0]
        #expect(stack.value(AT_PHDR) == loaded.program.loadBias + ElfBytes(fixtures.bytes(of: fixtures.dynamicPie)).read(phdr + ElfBytes.pVaddr, 8))
    }

    @Test(.enabled(if: Fixtures.hasMusl, "musl-gcc is not installed (apt-get install musl-tools)"))
    func muslStaticPieIsMapped() throws {
        let slot = testSlot(3)
        defer { release(slot) }
        let path = try #require(fixtures.muslStaticPie)
        let image = try colocatable(path)
        let loaded = try Loader.map(image, into: slot, envp: ["M=1"], capv: [7], stackSize: Self.stackSize)
        checkSegments(image.program, loaded.program, file: ElfBytes(fixtures.bytes(of: path)))
        try checkStack(try StackView(loaded.stackPointer), loaded, image, envp: ["M=1"], capv: [7])
    }

    @Test func gapsBetweenSegmentsStayReservedWithoutAccess() throws {
        let slot = testSlot(12)
        defer { release(slot) }
        let image = try colocatable(fixtures.gappedStaticPie)
        let segments = image.program.segments
        try #require(Page.ceil(segments[0].vaddr + segments[0].memsz) < segments[1].vaddr, "fixture has a gap")
        let loaded = try Loader.map(image, into: slot, envp: [], capv: [], stackSize: Self.stackSize)
        checkSegments(image.program, loaded.program, file: ElfBytes(fixtures.bytes(of: fixtures.gappedStaticPie)))
        #expect(Memory.permissions(at: loaded.program.loadBias + segments[1].vaddr - 1) == "---p")
    }

    @Test func everyMapGetsFreshRandomBytes() throws {
        let first = testSlot(4), second = testSlot(5)
        defer { release(first); release(second) }
        let image = try colocatable(fixtures.staticPie)
        var random: [[UInt8]] = []
        for slot in [first, second] {
            let loaded = try Loader.map(image, into: slot, envp: [], capv: [], stackSize: Self.stackSize)
            random.append(Memory.bytes(try #require(try StackView(loaded.stackPointer).value(AT_RANDOM)), 16))
        }
        #expect(random[0] != random[1])
    }

    @Test func occupiedStackRangeIsENOMEMAndNothingStaysMapped() throws {
        let slot = testSlot(7)
        defer { release(slot) }
        let image = try colocatable(fixtures.dynamicPie)
        let page = slot.stackTop(alignment: image.program.alignment) - 0x1000
        try #require(mmap(UnsafeMutableRawPointer(bitPattern: UInt(page)), 0x1000, PROT_READ,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) == UnsafeMutableRawPointer(bitPattern: UInt(page)))
        #expect(mapErrno(image, slot) == ENOMEM)
        #expect(!Memory.anyMapping(in: slot.base, page))
    }

    @Test func occupiedImageRangeIsENOMEM() throws {
        let slot = testSlot(8)
        defer { release(slot) }
        let image = try colocatable(fixtures.staticPie)
        let page = slot.imageBase(alignment: image.program.alignment) + 0x3000
        try #require(mmap(UnsafeMutableRawPointer(bitPattern: UInt(page)), 0x1000, PROT_READ,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) == UnsafeMutableRawPointer(bitPattern: UInt(page)))
        #expect(mapErrno(image, slot) == ENOMEM)
        #expect(!Memory.anyMapping(in: page + 0x1000, slot.end))
    }

    @Test func argumentsBeyondAQuarterOfTheStackAreE2BIG() throws {
        let slot = testSlot(9)
        defer { release(slot) }
        let image = try colocatable(fixtures.staticPie)
        let envp = (0..<20).map { ByteString("V\($0)=" + String(repeating: "v", count: 1000)) }
        #expect(mapErrno(image, slot, envp: envp, stackSize: 64 << 10) == E2BIG)
        #expect(mapErrno(image, slot, capv: Array(repeating: 1, count: 9000), stackSize: 64 << 10) == E2BIG)
        #expect(!Memory.anyMapping(in: slot.base, slot.end))
    }

    @Test func badStackSizeIsEINVAL() throws {
        let image = try colocatable(fixtures.staticPie)
        #expect(mapErrno(image, testSlot(10), stackSize: 0) == EINVAL)
        #expect(mapErrno(image, testSlot(10), stackSize: 100) == EINVAL)
        #expect(mapErrno(image, testSlot(10), stackSize: 8 << 30) == EINVAL)
    }

    @Test func scriptStackHasTheRewrittenArgvAndTheScriptAsExecfn() throws {
        let slot = testSlot(11)
        defer { release(slot) }
        let script = fixtures.write("mapped-script", text: "#!\(fixtures.staticPie) -v\n")
        let image = try colocatable(script, argv: ["x", "1"])
        let loaded = try Loader.map(image, into: slot, envp: ["E=1"], capv: [], stackSize: Self.stackSize)
        let stack = try StackView(loaded.stackPointer)
        #expect(stack.argv == [fixtures.staticPie, "-v", script, "1"])
        #expect(stack.value(AT_EXECFN).map(Memory.string) == script)
        #expect(loaded.comm == "mapped-script" && loaded.program.path == fixtures.staticPie)
    }

    // MARK: helpers

    /// The errno map() throws, nil if it succeeds.
    private func mapErrno(_ image: ProgramImage, _ slot: SlotLayout, envp: [ByteString] = [], capv: [UInt64] = [],
                          stackSize: Int = stackSize) -> Int32? {
        do {
            _ = try Loader.map(image, into: slot, envp: envp, capv: capv, stackSize: stackSize)
            return nil
        } catch {
            return error.errno.rawValue
        }
    }

    /// Each segment's file bytes, zeroed bss (the tail of the last file page only if writable, as
    /// padzero zeroes it) and protections; the gaps between them PROT_NONE.
    private func checkSegments(_ object: ElfObject, _ mapped: MappedImage, file: ElfBytes) {
        #expect(Memory.bytes(mapped.start, 64) == Array(file.bytes[0..<64]), "ELF header at the lowest address")
        var previousEnd = mapped.start
        for segment in object.segments {
            let start = mapped.loadBias + segment.vaddr
            let offset = Int(segment.offset), size = Int(segment.filesz)
            for range in [0..<min(size, 64), max(0, size - 64)..<size] where !range.isEmpty {
                #expect(Memory.bytes(start + UInt64(range.lowerBound), range.count)
                        == Array(file.bytes[offset + range.lowerBound..<offset + range.upperBound]))
            }
            if segment.memsz > segment.filesz {
                let bssStart = start + segment.filesz, pageEnd = (bssStart + 0xfff) & ~0xfff
                if segment.prot & PROT_WRITE != 0 {
                    #expect(Memory.bytes(bssStart, Int(pageEnd - bssStart)).allSatisfy { $0 == 0 }, "bss tail")
                }
                #expect(Memory.bytes(start + segment.memsz - 16, 16).allSatisfy { $0 == 0 }, "bss end")
            }
            let expected = (segment.prot & PROT_READ != 0 ? "r" : "-") + (segment.prot & PROT_WRITE != 0 ? "w" : "-")
                + (segment.prot & PROT_EXEC != 0 ? "x" : "-") + "p"
            #expect(Memory.permissions(at: start) == expected)
            let pageStart = start & ~0xfff
            if pageStart > previousEnd { #expect(Memory.permissions(at: previousEnd) == "---p", "gap") }
            previousEnd = (start + segment.memsz + 0xfff) & ~0xfff
        }
        #expect(previousEnd == mapped.end)
    }

    /// argc, argv, envp, every auxv entry in order, the strings and the capability vector.
    private func checkStack(_ stack: StackView, _ loaded: LoadedProgram, _ image: ProgramImage,
                            envp: [String], capv: [UInt64]) throws {
        #expect(loaded.stackPointer % 16 == 0)
        #expect(stack.argv == loaded.argv)
        #expect(stack.envp == envp)
        #expect(stack.auxv.map(\.type) == [
            AT_SYSINFO_EHDR, AT_MINSIGSTKSZ, AT_HWCAP, AT_PAGESZ, AT_CLKTCK, AT_PHDR, AT_PHENT, AT_PHNUM,
            AT_BASE, AT_FLAGS, AT_ENTRY, AT_UID, AT_EUID, AT_GID, AT_EGID, AT_SECURE, AT_RANDOM, AT_HWCAP2,
            AT_EXECFN, AT_PLATFORM, AT_CAPC, AT_CAPV, AT_NULL,
        ].map(UInt64.init))
        let own = try ownAuxv()
        for type in [AT_SYSINFO_EHDR, AT_MINSIGSTKSZ, AT_HWCAP, AT_CLKTCK, AT_HWCAP2] {
            #expect(stack.value(type) == own[UInt64(type)] ?? 0, "auxv type \(type)")
        }
        #expect(stack.value(AT_PAGESZ) == 4096)
        #expect(stack.value(AT_PHENT) == 56)
        #expect(stack.value(AT_PHNUM) == UInt64(image.program.phnum))
        let phdr = try #require(stack.value(AT_PHDR))
        let file = ElfBytes(fixtures.bytes(of: image.path.description))
        #expect(Memory.bytes(phdr, 56 * image.program.phnum) == Array(file.bytes[file.phoff..<file.phdr(file.phnum)]))
        #expect(stack.value(AT_FLAGS) == 0 && stack.value(AT_SECURE) == 0)
        #expect(stack.value(AT_ENTRY) == loaded.program.loadBias + file.read(0x18, 8))
        #expect(stack.value(AT_UID) == UInt64(getuid()) && stack.value(AT_EUID) == UInt64(geteuid()))
        #expect(stack.value(AT_GID) == UInt64(getgid()) && stack.value(AT_EGID) == UInt64(getegid()))
        #expect(stack.value(AT_EXECFN).map(Memory.string).map { ByteString($0) } == loaded.execPath)
        #expect(stack.value(AT_PLATFORM).map(Memory.string) == "x86_64")
        let random = try #require(stack.value(AT_RANDOM))
        #expect(random > loaded.stackPointer && random + 16 <= loaded.stackPointer + 4096 * 64)
        #expect(stack.value(AT_CAPC) == UInt64(capv.count))
        let capvAddress = try #require(stack.value(AT_CAPV))
        if capv.isEmpty {
            #expect(capvAddress == 0)
        } else {
            #expect(capvAddress % 16 == 0)
            #expect((0..<capv.count).map { Memory.word(capvAddress + UInt64($0 * 8)) } == capv)
        }
    }

    /// This process's own auxv, from /proc/self/auxv.
    private func ownAuxv() throws -> [UInt64: UInt64] {
        let data = try #require(FileManager.default.contents(atPath: "/proc/self/auxv"))
        let words = data.withUnsafeBytes { Array($0.bindMemory(to: UInt64.self)) }
        return Dictionary(stride(from: 0, to: words.count - 1, by: 2).map { (words[$0], words[$0 + 1]) },
                          uniquingKeysWith: { first, _ in first })
    }
}

/// argc, argv, envp and auxv as a program finds them at its initial stack pointer.
struct StackView {
    let argv: [String]
    let envp: [String]
    let auxv: [(type: UInt64, value: UInt64)]

    init(_ sp: UInt64) throws {
        let argc = Int(Memory.word(sp))
        var address = sp + 8
        argv = (0..<argc).map { Memory.string(Memory.word(address + UInt64($0 * 8))) }
        address += UInt64(argc * 8)
        try #require(Memory.word(address) == 0, "argv is NULL terminated")
        address += 8
        var envp: [String] = []
        while Memory.word(address) != 0 {
            envp.append(Memory.string(Memory.word(address)))
            address += 8
        }
        self.envp = envp
        address += 8
        var auxv: [(UInt64, UInt64)] = []
        repeat {
            auxv.append((Memory.word(address), Memory.word(address + 8)))
            address += 16
        } while auxv.last!.0 != UInt64(AT_NULL) && auxv.count < 64
        self.auxv = auxv
    }

    /// The value of the first auxv entry of `type`.
    func value(_ type: Int32) -> UInt64? { auxv.first { $0.type == UInt64(type) }?.value }
}
