// Mappings.swift: maps ELF segments into a slot as binfmt_elf does, and undoes a failed load.
import Bytes
import Glibc

/// The address ranges one Loader.map call has reserved, so that a failed load can unmap them.
struct Mappings {
    private var reserved: [(start: UInt64, length: UInt64)] = []

    /// Maps anonymous memory at exactly [start, start+length) without replacing anything there;
    /// ENOMEM if the range is (partly) in use.
    mutating func reserve(_ start: UInt64, length: UInt64, prot: Int32, flags: Int32,
                          what: String) throws(LoadError) {
        let wanted = pointer(start)
        let address = mmap(wanted, Int(length), prot,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | flags, -1, 0)
        guard address != mapFailed else {
            throw LoadError(errno: ENOMEM, message: "cannot reserve \(what) at \(hex(start)): \(String(cString: strerror(Glibc.errno)))")
        }
        guard address == wanted else {   // a kernel that ignores MAP_FIXED_NOREPLACE
            munmap(address, Int(length))
            throw LoadError(errno: ENOMEM, message: "cannot reserve \(what) at \(hex(start))")
        }
        reserved.append((start, length))
    }

    /// Unmaps everything reserved so far.
    func release() {
        for range in reserved { munmap(pointer(range.start), Int(range.length)) }
    }

    /// Maps `object` with its lowest page at `base`: the whole span reserved PROT_NONE first (gaps
    /// stay so), then each PT_LOAD in program-header order as binfmt_elf's elf_load maps it: its
    /// file pages; when p_memsz > p_filesz the rest of the last file page zeroed (padzero) and
    /// anonymous pages up to p_memsz, read-write (and executable if the segment is), as
    /// vm_brk_flags maps them whatever the segment's protection.
    mutating func map(_ object: ElfObject, at base: UInt64) throws(LoadError) -> MappedImage {
        let path = object.file.path
        let bias = base &- object.lowPage
        try reserve(base, length: object.span, prot: PROT_NONE, flags: MAP_NORESERVE, what: path.description)
        for segment in object.segments {
            let start = bias &+ segment.vaddr
            let pageStart = Page.floor(start)
            var anonymousStart = pageStart
            if segment.filesz > 0 {
                let fileEnd = start + segment.filesz
                anonymousStart = Page.ceil(fileEnd)
                let address = mmap(pointer(pageStart), Int(anonymousStart - pageStart), segment.prot,
                                   MAP_PRIVATE | MAP_FIXED, object.file.fd, off_t(Page.floor(segment.offset)))
                guard address != mapFailed else { throw .system("cannot map \(path) at \(hex(pageStart))") }
                if segment.memsz > segment.filesz && fileEnd < anonymousStart {
                    try padZero(from: fileEnd, to: anonymousStart, writable: segment.prot & PROT_WRITE != 0, path: path)
                }
            }
            let anonymousEnd = Page.ceil(start + segment.memsz)
            if segment.memsz > segment.filesz && anonymousEnd > anonymousStart {
                let address = mmap(pointer(anonymousStart), Int(anonymousEnd - anonymousStart),
                                   PROT_READ | PROT_WRITE | segment.prot & PROT_EXEC,
                                   MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS, -1, 0)
                guard address != mapFailed else { throw .system("cannot map the bss of \(path)") }
            }
        }
        return MappedImage(path: path, loadBias: bias, start: base, end: base + object.span)
    }

    /// Zeroes [from, to), the rest of a segment's last file page, as padzero does with clear_user:
    /// by reading /dev/zero into it, which fails (EFAULT) instead of faulting where the page
    /// cannot be written (a read-only segment, a page beyond the end of the file). Like Linux, a
    /// failure only matters for a writable segment.
    private func padZero(from: UInt64, to: UInt64, writable: Bool, path: ByteString) throws(LoadError) {
        let zero = open("/dev/zero", O_RDONLY | O_CLOEXEC)
        guard zero >= 0 else { throw .system("cannot open /dev/zero") }
        defer { close(zero) }
        guard read(zero, pointer(from), Int(to - from)) == Int(to - from) || !writable else {
            throw LoadError(errno: EFAULT, message: "cannot zero the bss of \(path)")
        }
    }
}

/// mmap's MAP_FAILED, which Swift does not import.
var mapFailed: UnsafeMutableRawPointer? { UnsafeMutableRawPointer(bitPattern: -1) }

/// An address as a pointer, for system calls (nil for 0).
func pointer(_ address: UInt64) -> UnsafeMutableRawPointer? { UnsafeMutableRawPointer(bitPattern: UInt(address)) }

/// An address in hex, for messages.
func hex(_ address: UInt64) -> String { "0x" + String(address, radix: 16) }
