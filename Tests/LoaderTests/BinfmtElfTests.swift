// BinfmtElfTests.swift: the loader follows Linux's binfmt_elf where it is lenient (e_ident, program-header order, bss) and where it is not.
import Bytes
import CElf
import Foundation
import Glibc
import Testing
@testable import Loader

/// What plan() does with a program: colocate it, leave it to a real execve, or refuse it.
enum PlanOutcome: Equatable, CustomStringConvertible {
    case colocated, nativeExec, refused(Int32)

    init(_ path: String) {
        do {
            switch try Loader.plan(path: ByteString(path), argv: [ByteString(path)], envp: []) {
            case .colocate: self = .colocated
            case .nativeExec: self = .nativeExec
            }
        } catch {
            self = .refused(error.errno.rawValue)
        }
    }

    var description: String {
        switch self {
        case .colocated: "colocated"
        case .nativeExec: "native exec"
        case .refused(let errno): "refused with errno \(errno)"
        }
    }
}

/// Checks of binfmt_elf's rules that the plan and map tests do not make.
@Suite struct BinfmtElfTests {
    let fixtures = Fixtures.shared

    @Test func identBytesOtherThanTheMagicAreIgnored() throws {
        let path = fixtures.patched(fixtures.staticPie, "ident") { elf in
            elf.bytes[Int(EI_DATA)] = UInt8(ELFDATA2MSB)
            elf.bytes[Int(EI_VERSION)] = 0
            elf.bytes[Int(EI_OSABI)] = 0x61
            elf.write(0x14, 4, 7)   // e_version
        }
        #expect(PlanOutcome(path) == .colocated)
    }

    @Test(arguments: [(1170, PlanOutcome.colocated), (1171, .refused(ENOEXEC))])
    func programHeaderTablesUpTo64KiBAreRead(count: Int, outcome: PlanOutcome) {
        // load_elf_phdrs reads up to 64 KiB of them (1,170): the table is moved to the end of
        // the file and padded with PT_NULL entries.
        let path = fixtures.patched(fixtures.staticPie, "phnum-\(count)") { elf in
            let table = Array(elf.bytes[elf.phoff..<elf.phdr(elf.phnum)])
            elf.write(0x20, 8, UInt64(elf.bytes.count))
            elf.write(0x38, 2, UInt64(count))
            elf.bytes += table + [UInt8](repeating: 0, count: 56 * count - table.count)
        }
        #expect(PlanOutcome(path) == outcome)
    }

    @Test func atPhdrIsEPhoffInsideTheLastPtLoadThatHoldsIt() throws {
        // PT_PHDR says otherwise: Linux ignores it.
        let path = fixtures.patched(fixtures.dynamicPie, "phdr-moved") { elf in
            elf.write(elf.headers(ofType: UInt32(PT_PHDR))[0] + ElfBytes.pVaddr, 8, 0x123000)
        }
        let image = try colocatable(path)
        let elf = ElfBytes(fixtures.bytes(of: path))
        let load = elf.loads.last { elf.read($0 + ElfBytes.pOffset, 8) <= UInt64(elf.phoff)
            && UInt64(elf.phoff) < elf.read($0 + ElfBytes.pOffset, 8) + elf.read($0 + ElfBytes.pFilesz, 8) }!
        #expect(image.program.phdrVaddr == UInt64(elf.phoff) - elf.read(load + ElfBytes.pOffset, 8) + elf.read(load + ElfBytes.pVaddr, 8))
    }

    @Test func withoutAPtLoadHoldingThemAtPhdrIsTheLoadBias() throws {
        let path = fixtures.patched(fixtures.staticPie, "phdr-unmapped") { elf in
            let first = elf.loads[0]
            elf.write(first + ElfBytes.pOffset, 8, 0x1000 + elf.read(first + ElfBytes.pOffset, 8))
            elf.write(first + ElfBytes.pVaddr, 8, 0x1000 + elf.read(first + ElfBytes.pVaddr, 8))
            elf.write(first + ElfBytes.pFilesz, 8, 0x100)
            elf.write(first + ElfBytes.pMemsz, 8, 0x100)
        }
        #expect(try colocatable(path).program.phdrVaddr == 0)
    }

    @Test func segmentsAreKeptInProgramHeaderOrder() throws {
        let path = fixtures.patched(fixtures.staticPie, "descending") { elf in
            let a = elf.loads[0], b = elf.loads[1]
            let first = Array(elf.bytes[a..<a + 56])
            elf.bytes.replaceSubrange(a..<a + 56, with: elf.bytes[b..<b + 56])
            elf.bytes.replaceSubrange(b..<b + 56, with: first)
        }
        let program = try colocatable(path).program
        #expect(program.segments[0].vaddr > program.segments[1].vaddr)
        #expect(program.lowPage == 0)
    }

    @Test func theTailOfAReadOnlyFilePageKeepsTheFileBytes() throws {
        let slot = testSlot(20)
        defer { release(slot) }
        // The text segment ends 0x40 bytes earlier in the file (p_memsz unchanged): padzero cannot
        // write the read-only page, and Linux ignores that.
        let path = fixtures.patched(fixtures.staticPie, "ro-tail") { elf in
            let text = elf.loads[1]
            elf.write(text + ElfBytes.pFilesz, 8, elf.read(text + ElfBytes.pFilesz, 8) - 0x40)
        }
        let image = try colocatable(path)
        let loaded = try Loader.map(image, into: slot, envp: [], capv: [], stackSize: 1 << 20)
        let text = image.program.segments[1]
        let end = loaded.program.loadBias + text.vaddr + text.filesz
        let fileEnd = Int(text.offset + text.filesz)
        #expect(Memory.bytes(end, 0x40) == Array(fixtures.bytes(of: path)[fileEnd..<fileEnd + 0x40]))
        #expect(Memory.permissions(at: end) == "r-xp")
    }

    @Test func bssPagesOfAReadOnlySegmentAreReadWrite() throws {
        let slot = testSlot(21)
        defer { release(slot) }
        let path = fixtures.patched(fixtures.staticPie, "ro-data") { elf in
            elf.write(elf.loads.last! + ElfBytes.pFlags, 4, UInt64(PF_R))
        }
        let image = try colocatable(path)
        let loaded = try Loader.map(image, into: slot, envp: [], capv: [], stackSize: 1 << 20)
        let data = image.program.segments.last!
        let start = loaded.program.loadBias + data.vaddr
        #expect(Memory.permissions(at: start) == "r--p")
        #expect(Memory.permissions(at: Page.floor(start + data.memsz - 1)) == "rw-p")
        let fileEnd = Int(data.offset + data.filesz)
        #expect(Memory.bytes(start + data.filesz, 16) == Array(fixtures.bytes(of: path)[fileEnd..<fileEnd + 16]))
    }

    @Test func aWritableBssStartingInAPageBeyondTheFileNeedsARealExec() {
        // padzero would fault there: Linux kills the process, which only a real execve gives.
        let path = fixtures.patched(fixtures.staticPie, "bss-beyond-eof") { elf in
            let data = elf.loads.last!
            let size = UInt64(elf.bytes.count)
            let vaddr = elf.read(data + ElfBytes.pVaddr, 8), offset = elf.read(data + ElfBytes.pOffset, 8)
            elf.write(data + ElfBytes.pFilesz, 8, Page.ceil(size) + 8 - offset)
            elf.write(data + ElfBytes.pMemsz, 8, Page.ceil(size) + 0x10000 - offset + vaddr % 0x1000)
        }
        #expect(PlanOutcome(path) == .nativeExec)
    }

    @Test func anEntryPointOutsideTheSegmentsNeedsARealExec() {
        // It would jump into memory of the address space that is not the program's.
        let path = fixtures.patched(fixtures.staticPie, "far-entry") { $0.write(0x18, 8, 1 << 40) }
        #expect(PlanOutcome(path) == .nativeExec)
    }

    @Test func anExecutableStackNeedsARealExec() {
        let path = fixtures.patched(fixtures.staticPie, "exec-stack") { elf in
            let stack = elf.headers(ofType: UInt32(PT_GNU_STACK))[0]
            elf.write(stack + ElfBytes.pFlags, 4, UInt64(PF_R | PF_W | PF_X))
        }
        #expect(PlanOutcome(path) == .nativeExec)
    }

    @Test func alignmentsBeyondTheSlotsNeedARealExec() {
        let path = fixtures.patched(fixtures.staticPie, "align-1t") { elf in
            elf.write(elf.loads[0] + 48, 8, 1 << 40)   // p_align
        }
        #expect(PlanOutcome(path) == .nativeExec)
    }
}
