import CElf
import Glibc

/// A validated PT_LOAD segment with a non-zero p_memsz.
struct Segment: Sendable, Equatable {
    let vaddr: UInt64
    let memsz: UInt64
    let offset: UInt64
    let filesz: UInt64
    /// PROT_* bits from p_flags.
    let prot: Int32
}

/// An ELF64 x86-64 executable or interpreter, validated like Linux's binfmt_elf, with its open file.
struct ElfObject: Sendable {
    /// Most program headers accepted (Linux's limit is 64 KiB of them; no real program has more).
    static let maxProgramHeaders = 128
    /// Largest span of PT_LOAD segments accepted.
    static let maxSpan: UInt64 = 4 << 30

    let file: ExecFile
    /// ET_DYN (position independent); false for ET_EXEC.
    let isPositionIndependent: Bool
    /// e_entry, unrelocated.
    let entry: UInt64
    /// Unrelocated address of the program headers in memory (PT_PHDR, else the PT_LOAD holding
    /// e_phoff), nil when they are not mapped.
    let phdrVaddr: UInt64?
    let phnum: Int
    /// PT_LOAD segments, ascending and non-overlapping.
    let segments: [Segment]
    /// The PT_INTERP path, if any.
    let interpreterPath: String?

    /// The lowest mapped address, unrelocated, page aligned.
    var lowPage: UInt64 { Page.floor(segments[0].vaddr) }
    /// Bytes from lowPage to the page-aligned end of the last segment.
    var span: UInt64 {
        let last = segments[segments.count - 1]
        return Page.ceil(last.vaddr + last.memsz) - lowPage
    }

    /// Parses and validates the ELF object in `file`; every format error is ENOEXEC.
    init(file: ExecFile) throws(LoadError) {
        self.file = file
        let path = file.path
        guard libelfReady else { throw LoadError(errno: ENOEXEC, message: "libelf is unusable") }
        guard let elf = elf_begin(file.fd, ELF_C_READ, nil) else {
            throw .noexec("\(path): \(String(cString: elf_errmsg(-1)))")
        }
        defer { elf_end(elf) }
        guard elf_kind(elf) == ELF_K_ELF else { throw .noexec("\(path) is not an ELF file") }
        guard gelf_getclass(elf) == ELFCLASS64 else { throw .noexec("\(path) is not ELF64") }
        var ehdr = GElf_Ehdr()
        guard gelf_getehdr(elf, &ehdr) != nil else { throw .noexec("\(path): bad ELF header") }
        guard withUnsafeBytes(of: ehdr.e_ident, { $0[Int(EI_DATA)] }) == ELFDATA2LSB else {
            throw .noexec("\(path) is not little-endian")
        }
        guard ehdr.e_machine == EM_X86_64 else {
            throw .noexec("\(path) is for machine \(ehdr.e_machine), not x86-64")
        }
        switch Int32(ehdr.e_type) {
        case ET_DYN: isPositionIndependent = true
        case ET_EXEC: isPositionIndependent = false
        default: throw .noexec("\(path) has e_type \(ehdr.e_type), not an executable")
        }
        guard Int(ehdr.e_phentsize) == MemoryLayout<Elf64_Phdr>.size else {
            throw .noexec("\(path): e_phentsize \(ehdr.e_phentsize)")
        }
        var count = 0
        guard elf_getphdrnum(elf, &count) == 0, (1...Self.maxProgramHeaders).contains(count) else {
            throw .noexec("\(path): bad number of program headers")
        }
        let (tableEnd, overflow) = ehdr.e_phoff.addingReportingOverflow(UInt64(count * Int(ehdr.e_phentsize)))
        guard !overflow, tableEnd <= file.size else { throw .noexec("\(path): program headers beyond the file") }

        var headers: [GElf_Phdr] = []
        for index in 0..<Int32(count) {
            var phdr = GElf_Phdr()
            guard gelf_getphdr(elf, index, &phdr) != nil else {
                throw .noexec("\(path): unreadable program header \(index)")
            }
            headers.append(phdr)
        }
        entry = ehdr.e_entry
        phnum = count
        guard entry != 0 else { throw .noexec("\(path) has no entry point (a shared library?)") }
        segments = try Self.loadSegments(headers, fileSize: file.size, path: path)
        phdrVaddr = Self.programHeaderAddress(headers, phoff: ehdr.e_phoff, tableSize: tableEnd - ehdr.e_phoff)
        interpreterPath = try Self.interpreter(headers, file: file)
    }

    /// The PT_LOAD segments with p_memsz > 0, checked as described on each guard.
    private static func loadSegments(_ headers: [GElf_Phdr], fileSize: UInt64,
                                     path: String) throws(LoadError) -> [Segment] {
        var segments: [Segment] = []
        for (index, ph) in headers.enumerated() where ph.p_type == UInt32(PT_LOAD) {
            let what = "\(path): PT_LOAD \(index)"
            guard ph.p_filesz <= ph.p_memsz else { throw .noexec("\(what) has p_filesz > p_memsz") }
            let (fileEnd, fileOverflow) = ph.p_offset.addingReportingOverflow(ph.p_filesz)
            guard !fileOverflow, fileEnd <= fileSize else { throw .noexec("\(what) extends beyond the file") }
            let (memEnd, memOverflow) = ph.p_vaddr.addingReportingOverflow(ph.p_memsz)
            guard !memOverflow, memEnd <= UInt64.max - Page.size else {
                throw .noexec("\(what): p_vaddr + p_memsz overflows")
            }
            guard ph.p_vaddr % Page.size == ph.p_offset % Page.size else {
                throw .noexec("\(what): p_vaddr and p_offset differ in their page offset")
            }
            guard ph.p_memsz > 0 else { continue }
            if let previous = segments.last, ph.p_vaddr < previous.vaddr + previous.memsz {
                throw .noexec("\(what) overlaps or precedes the previous PT_LOAD")
            }
            var prot: Int32 = 0
            if ph.p_flags & UInt32(PF_R) != 0 { prot |= PROT_READ }
            if ph.p_flags & UInt32(PF_W) != 0 { prot |= PROT_WRITE }
            if ph.p_flags & UInt32(PF_X) != 0 { prot |= PROT_EXEC }
            segments.append(Segment(vaddr: ph.p_vaddr, memsz: ph.p_memsz, offset: ph.p_offset,
                                    filesz: ph.p_filesz, prot: prot))
        }
        guard let first = segments.first, let last = segments.last else {
            throw .noexec("\(path) has no PT_LOAD segment")
        }
        guard Page.ceil(last.vaddr + last.memsz) - Page.floor(first.vaddr) <= maxSpan else {
            throw .noexec("\(path): PT_LOAD segments span more than 4 GiB")
        }
        return segments
    }

    /// PT_PHDR's p_vaddr, else the address of e_phoff inside the PT_LOAD that maps it.
    private static func programHeaderAddress(_ headers: [GElf_Phdr], phoff: UInt64,
                                             tableSize: UInt64) -> UInt64? {
        if let phdr = headers.first(where: { $0.p_type == UInt32(PT_PHDR) }) { return phdr.p_vaddr }
        let load = headers.first {
            $0.p_type == UInt32(PT_LOAD) && $0.p_offset <= phoff && phoff + tableSize <= $0.p_offset + $0.p_filesz
        }
        return load.map { $0.p_vaddr + (phoff - $0.p_offset) }
    }

    /// The path in the first PT_INTERP: 2...PATH_MAX bytes ending in NUL.
    private static func interpreter(_ headers: [GElf_Phdr], file: ExecFile) throws(LoadError) -> String? {
        guard let ph = headers.first(where: { $0.p_type == UInt32(PT_INTERP) }) else { return nil }
        guard (2...UInt64(PATH_MAX)).contains(ph.p_filesz) else {
            throw .noexec("\(file.path): PT_INTERP of \(ph.p_filesz) bytes")
        }
        let (end, overflow) = ph.p_offset.addingReportingOverflow(ph.p_filesz)
        guard !overflow, end <= file.size else { throw .noexec("\(file.path): PT_INTERP beyond the file") }
        let bytes = try file.read(count: Int(ph.p_filesz), at: ph.p_offset)
        guard bytes.count == Int(ph.p_filesz), bytes.last == 0 else {
            throw .noexec("\(file.path): PT_INTERP is not NUL terminated")
        }
        return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }
}

/// elf_version must be called once before libelf parses anything.
private let libelfReady = elf_version(UInt32(EV_CURRENT)) != UInt32(EV_NONE)
