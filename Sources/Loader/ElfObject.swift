// ElfObject.swift: an ELF program or interpreter, checked and laid out as Linux's binfmt_elf does.
import Bytes
import CElf
import ColoABI
import Glibc

/// A PT_LOAD segment with a non-zero p_memsz, as binfmt_elf's elf_load maps it.
struct Segment: Sendable, Equatable {
    let vaddr: UInt64
    let memsz: UInt64
    let offset: UInt64
    let filesz: UInt64
    /// PROT_* bits from p_flags.
    let prot: Int32
}

/// An ELF64 x86-64 executable or interpreter with its open file, checked as Linux's binfmt_elf
/// checks it before the point of no return (those errors are execve's); what binfmt_elf would do
/// after it (map it, or kill the process) is either emulated exactly or left to a real execve.
struct ElfObject: Sendable {
    /// load_elf_phdrs's limit on the size of the program header table (no Linux header names it).
    static let maxProgramHeaderBytes = 1 << 16
    /// Largest span of PT_LOAD segments mapped into a slot: the program's, with the brk gap and
    /// heap after it, ends where the mmap area (which the interpreter starts) begins.
    static let maxSpan = COLO_MMAP_LO_OFFSET - COLO_IMAGE_OFFSET - COLO_BRK_GAP - COLO_BRK_LIMIT
    /// Largest PT_LOAD alignment a slot honours: that of the program's place in its slot (the
    /// interpreter's, COLO_MMAP_LO_OFFSET, is a multiple of it).
    static let maxAlignment = COLO_IMAGE_OFFSET & (~COLO_IMAGE_OFFSET &+ 1)
    /// Addresses at and above it need a real execve: far below Linux's TASK_SIZE, so that what
    /// the loader maps, binfmt_elf's checks on p_vaddr and p_memsz accept too.
    static let addressLimit = COLO_SLOT_REGION_BASE

    let file: ExecFile
    /// Why only a real execve does what Linux does with this file (fixed addresses, a 32-bit
    /// program, a failure after the point of no return, something a slot cannot give); nil when
    /// the loader maps it exactly as binfmt_elf would.
    let nativeExecReason: String?
    /// e_entry, unrelocated.
    let entry: UInt64
    /// Unrelocated address of the program headers as Linux's AT_PHDR gives it: e_phoff inside
    /// the last PT_LOAD whose file bytes hold it, else 0 (AT_PHDR is then the load bias).
    let phdrVaddr: UInt64
    let phnum: Int
    /// The PT_LOAD segments with p_memsz > 0 in program-header order, in which they are mapped
    /// (a later one replaces an earlier one where they overlap).
    let segments: [Segment]
    /// The PT_INTERP path, if any.
    let interpreterPath: ByteString?
    /// The lowest mapped address, unrelocated, page aligned.
    let lowPage: UInt64
    /// Bytes from lowPage to the page-aligned end of the highest segment.
    let span: UInt64
    /// The largest PT_LOAD alignment (a power of two; 0 if none is given): the load bias is a
    /// multiple of it, as binfmt_elf's maximum_alignment makes it.
    let alignment: UInt64

    /// Parses and checks the ELF object in `file` as load_elf_binary does (for an interpreter,
    /// as load_elf_binary and load_elf_interp check the interpreter; its PT_INTERP is ignored).
    /// Errors are ENOEXEC, EIO or EINVAL as Linux gives them.
    init(file: ExecFile, isInterpreter: Bool = false) throws(LoadError) {
        self.file = file
        let path = file.path
        let ehdr = try Self.header(of: file, isInterpreter: isInterpreter)
        let ident = withUnsafeBytes(of: ehdr.e_ident) { Array($0) }
        guard ident.prefix(Int(SELFMAG)).elementsEqual(ELFMAG.utf8) else {
            throw .noexec("\(path) is not an ELF file")
        }
        // The checks before the point of no return, in load_elf_binary's order. EI_CLASS, EI_DATA,
        // EI_VERSION, EI_OSABI, e_version and the section headers are not looked at; 32-bit files
        // (and i386 programs) may be the compat loader's.
        let type = Int32(ehdr.e_type)
        var reason: String?
        if !isInterpreter {
            guard type == ET_DYN || type == ET_EXEC else {
                throw .noexec("\(path) has e_type \(ehdr.e_type), not an executable")
            }
            if ident[Int(EI_CLASS)] != ELFCLASS64 || ehdr.e_machine == EM_386 {
                reason = "\(path) may be a 32-bit program"
            }
        }
        guard reason != nil || ehdr.e_machine == EM_X86_64 else {
            throw .noexec("\(path) is for machine \(ehdr.e_machine), not x86-64")
        }
        let headers = reason == nil ? try Self.programHeaders(file: file, ehdr: ehdr) : []
        entry = ehdr.e_entry
        phnum = headers.count
        interpreterPath = isInterpreter || reason != nil ? nil : try Self.interpreter(headers, file: file)
        phdrVaddr = headers.last {
            $0.p_type == UInt32(PT_LOAD) && $0.p_offset <= ehdr.e_phoff && ehdr.e_phoff - $0.p_offset < $0.p_filesz
        }.map { ehdr.e_phoff - $0.p_offset &+ $0.p_vaddr } ?? 0   // unsigned long arithmetic, as Linux's
        let loads = headers.filter { $0.p_type == UInt32(PT_LOAD) }
        alignment = Self.largestAlignment(loads)
        segments = loads.filter { $0.p_memsz > 0 }.map { ph in
            var prot: Int32 = 0
            if ph.p_flags & UInt32(PF_R) != 0 { prot |= PROT_READ }
            if ph.p_flags & UInt32(PF_W) != 0 { prot |= PROT_WRITE }
            if ph.p_flags & UInt32(PF_X) != 0 { prot |= PROT_EXEC }
            return Segment(vaddr: ph.p_vaddr, memsz: ph.p_memsz, offset: ph.p_offset, filesz: ph.p_filesz, prot: prot)
        }
        var pages: Range<UInt64> = 0..<0
        if reason == nil, type != ET_DYN {
            reason = "\(path) has e_type \(ehdr.e_type), not ET_DYN: fixed addresses"
        } else if reason == nil {
            switch Self.placement(loads, fileSize: file.size, path: path) {
            case .success(let range): pages = range
            case .failure(let native): reason = native.reason
            }
        }
        if reason == nil, !pages.contains(entry) {
            reason = "\(path): the entry point is outside its segments"
        }
        lowPage = pages.lowerBound
        span = pages.upperBound - pages.lowerBound
        let stack = headers.last { $0.p_type == UInt32(PT_GNU_STACK) }
        if reason == nil, !isInterpreter, let stack, stack.p_flags & UInt32(PF_X) != 0 {
            reason = "\(path) asks for an executable stack"
        }
        nativeExecReason = reason
    }

    /// The ELF header: as load_elf_binary sees a program (the file's first bytes, zeros past
    /// its end), or as it reads an interpreter's (EIO if the file is shorter).
    private static func header(of file: ExecFile, isInterpreter: Bool) throws(LoadError) -> Elf64_Ehdr {
        let size = MemoryLayout<Elf64_Ehdr>.size
        var bytes = try file.read(count: size, at: 0)
        guard bytes.count == size || !isInterpreter else {
            throw LoadError(errno: .EIO, message: "\(file.path): an ELF header of \(bytes.count) bytes")
        }
        bytes += [UInt8](repeating: 0, count: size - bytes.count)
        return bytes.withUnsafeBytes { $0.loadUnaligned(as: Elf64_Ehdr.self) }
    }

    /// The program headers as load_elf_phdrs reads them: e_phentsize must be Elf64_Phdr's size,
    /// and 1 to maxProgramHeaderBytes of them must be in the file at e_phoff.
    private static func programHeaders(file: ExecFile, ehdr: Elf64_Ehdr) throws(LoadError) -> [GElf_Phdr] {
        let entrySize = MemoryLayout<Elf64_Phdr>.size
        guard Int(ehdr.e_phentsize) == entrySize else { throw .noexec("\(file.path): e_phentsize \(ehdr.e_phentsize)") }
        let size = Int(ehdr.e_phnum) * entrySize
        guard size > 0, size <= Self.maxProgramHeaderBytes else { throw .noexec("\(file.path): \(ehdr.e_phnum) program headers") }
        guard ehdr.e_phoff <= UInt64(Int64.max) - UInt64(size),
              let table = try? file.read(count: size, at: ehdr.e_phoff), table.count == size else {
            throw .noexec("\(file.path): program headers beyond the file")
        }
        return (0..<Int(ehdr.e_phnum)).map { index in
            table.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: index * entrySize, as: Elf64_Phdr.self) }
        }
    }

    /// The largest power-of-two p_align of `loads` (0 if none), as maximum_alignment takes it.
    private static func largestAlignment(_ loads: [GElf_Phdr]) -> UInt64 {
        var alignment: UInt64 = 0
        for ph in loads where ph.p_align != 0 && ph.p_align & (ph.p_align - 1) == 0 { alignment = max(alignment, ph.p_align) }
        return alignment
    }

    /// Why a real execve is needed instead of Mappings.map.
    private struct NativeExec: Error {
        let reason: String
    }

    /// The pages (unrelocated) that binfmt_elf maps for these PT_LOADs of an ET_DYN object, if
    /// Mappings.map maps them as it does; else why not (Linux would kill the process, or place
    /// them where a slot cannot).
    private static func placement(_ loads: [GElf_Phdr], fileSize: UInt64,
                                  path: ByteString) -> Result<Range<UInt64>, NativeExec> {
        func native(_ reason: String) -> Result<Range<UInt64>, NativeExec> { .failure(NativeExec(reason: reason)) }
        guard let first = loads.first else { return native("\(path) has no PT_LOAD segment") }
        // The first mapping carries the whole image; with no file bytes it is anonymous, at the
        // address the first p_vaddr names.
        guard first.p_filesz > 0 else { return native("\(path): the first PT_LOAD maps no file bytes") }
        // total_mapping_size, in Linux's unsigned arithmetic: from the lowest page to the highest
        // end of any PT_LOAD.
        let total = loads.map { $0.p_vaddr &+ $0.p_memsz }.max()! &- loads.map { Page.floor($0.p_vaddr) }.min()!
        guard total > 0, total <= addressLimit else { return native("\(path): total mapping size \(total)") }
        let alignment = largestAlignment(loads)
        guard alignment <= maxAlignment else { return native("\(path): PT_LOAD alignment \(alignment)") }
        var low = UInt64.max, high: UInt64 = 0
        for (index, ph) in loads.enumerated() {
            // Text only for a refusal: formatting the path costs more than checking the segment.
            func what() -> String { "\(path): PT_LOAD \(index)" }
            guard ph.p_filesz <= ph.p_memsz else { return native("\(what()) has p_filesz > p_memsz") }
            guard ph.p_vaddr < addressLimit, ph.p_memsz <= addressLimit - ph.p_vaddr else {
                return native("\(what()) ends at or above \(hex(addressLimit))")
            }
            if ph.p_memsz > 0 {
                low = min(low, Page.floor(ph.p_vaddr))
                high = max(high, Page.ceil(ph.p_vaddr + ph.p_memsz))
            }
            guard ph.p_filesz > 0 else { continue }
            guard ph.p_offset % Page.size == ph.p_vaddr % Page.size else {
                return native("\(what()): p_offset and p_vaddr differ in their page offset")
            }
            // elf_map maps the first segment's file pages with the whole image's size.
            let fileLength = Page.ceil(ph.p_filesz + ph.p_vaddr % Page.size)
            guard ph.p_offset <= UInt64(Int64.max) - (index == 0 ? Page.ceil(total) : fileLength) else {
                return native("\(what()): p_offset \(ph.p_offset) is too large to map")
            }
            // padzero: zeroing the rest of the last file page faults beyond the end of the file,
            // which kills the process when the segment is writable.
            let tail = ph.p_offset + ph.p_filesz
            if ph.p_memsz > ph.p_filesz, tail % Page.size != 0, ph.p_flags & UInt32(PF_W) != 0,
               Page.floor(tail) >= Page.ceil(fileSize) {
                return native("\(what()): its bss starts in a page beyond the end of the file")
            }
        }
        guard high - low <= maxSpan else { return native("\(path): PT_LOAD segments span more than \(maxSpan) bytes") }
        guard (Page.floor(first.p_vaddr) - low) % max(alignment, Page.size) == 0 else {
            return native("\(path): the first PT_LOAD is not at an aligned place in the image")
        }
        return .success(low..<high)
    }

    /// The path in the first PT_INTERP: 2...PATH_MAX bytes ending in NUL.
    private static func interpreter(_ headers: [GElf_Phdr], file: ExecFile) throws(LoadError) -> ByteString? {
        guard let ph = headers.first(where: { $0.p_type == UInt32(PT_INTERP) }) else { return nil }
        guard (2...UInt64(PATH_MAX)).contains(ph.p_filesz) else {
            throw .noexec("\(file.path): PT_INTERP of \(ph.p_filesz) bytes")
        }
        // kernel_read: EINVAL for a position past the largest file offset, EIO for a short read.
        guard ph.p_offset <= UInt64(Int64.max) - ph.p_filesz else {
            throw LoadError(errno: .EINVAL, message: "\(file.path): PT_INTERP at offset \(ph.p_offset)")
        }
        let bytes = try file.read(count: Int(ph.p_filesz), at: ph.p_offset)
        guard bytes.count == Int(ph.p_filesz) else {
            throw LoadError(errno: .EIO, message: "\(file.path): PT_INTERP beyond the end of the file")
        }
        guard bytes.last == 0 else { throw .noexec("\(file.path): PT_INTERP is not NUL terminated") }
        // open_exec("") opens the working directory, not a regular file.
        guard bytes[0] != 0 else { throw LoadError(errno: .EACCES, message: "\(file.path): PT_INTERP names no file") }
        return ByteString(bytes.prefix { $0 != 0 })
    }
}
