// What a debugger or profiler needs to know about a colocated process, found from outside.
import Bytes
import Glibc
import Runtime

/// What a debugger or profiler needs to know about a colocated process, found from
/// outside: its slot, and every ELF object mapped for it with its load bias.  /proc/PID/exe
/// and /proc/PID/auxv describe the runtime (they are per mm), so nothing here reads them:
/// the program and interpreter come from the address-space table, the shared libraries
/// from the guest's own dynamic linker (r_debug, found through the program's DT_DEBUG), or,
/// when there is no r_debug, from the file mappings of /proc/PID/maps inside the slot.
struct GuestImages {
    enum Kind: String { case program, interpreter, library, runtime }
    struct Object { let kind: Kind; let path: String; let base: UInt64 }

    let pid: pid_t
    let runtimePID: pid_t
    let slot: Int
    let argv: [ByteString]
    /// The program first, then the objects in the dynamic linker's order.
    let objects: [Object]
    /// The runtime's executable, where the SIGSYS handler that runs on the guest's threads
    /// lives (outside every slot); nil if its mapping was not found.
    let runtime: Object?
    /// true: the libraries come from the guest's r_debug list (so gdb's own reading of it,
    /// through the program's DT_DEBUG, finds the same); false: from /proc/PID/maps.
    let fromLinkMap: Bool

    var slotStart: UInt64 { Layout.slotBase(slot) }
    var slotEnd: UInt64 { Layout.slotBase(slot) + Layout.slotSize }

    /// The colocated process `pid`, or an error saying why it cannot be inspected.
    static func find(_ pid: pid_t) throws(ColoError) -> GuestImages {
        guard let space = SpaceDirectory.space(containing: pid) else {
            if kill(pid, 0) != 0 && errno == ESRCH { throw ColoError(.ESRCH, "\(pid): No such process") }
            throw ColoError(.ESRCH, "\(pid) is not a colocated process (see colo ps)")
        }
        let rt = space.table.runtimePID
        guard let member = space.members.first(where: { $0.pid == pid }) else {
            let others = space.members.map { String($0.pid) }.joined(separator: " ")
            throw ColoError(.EINVAL, "\(pid) is the runtime of its address space, not a colocated program"
                            + (others.isEmpty ? "" : " (its members: \(others))"))
        }
        guard let recorded = member.images.first else { throw ColoError(.ENOEXEC, "\(pid): no program recorded") }
        let slotStart = Layout.slotBase(member.slot), slotEnd = slotStart + Layout.slotSize
        let maps = MapLine.read(pid).filter { $0.start >= slotStart && $0.start < slotEnd }

        // The table keeps paths as they were executed (maybe relative to the guest's cwd):
        // name each recorded image by the file the kernel shows mapped at its start.
        func mappedPath(_ image: ProcessRecord.Image) -> String {
            guard let m = maps.first(where: { $0.start <= image.start && image.start < $0.end && !$0.path.isEmpty }) else {
                let path = String(validating: image.path.bytes, as: UTF8.self) ?? image.path.description
                return path.hasPrefix("/") ? path : "/proc/\(pid)/cwd/" + path
            }
            return m.usablePath(pid)
        }
        let program = Object(kind: .program, path: mappedPath(recorded), base: recorded.base)
        let interpreter = member.images.count > 1
            ? Object(kind: .interpreter, path: mappedPath(member.images[1]), base: member.images[1].base) : nil

        let runtime = runtimeObject(pid: pid, runtimePID: rt)
        let inSlot = { (a: UInt64) in a >= slotStart && a < slotEnd }
        if let listed = linkMap(pid: pid, program: program, inSlot: inSlot), !listed.isEmpty {
            var objects = [program]
            for (path, base) in listed {
                let kind: Kind = interpreter.map { $0.base == base } == true ? .interpreter : .library
                objects.append(Object(kind: kind, path: path, base: base))
            }
            if let interpreter, !objects.contains(where: { $0.base == interpreter.base }) { objects.append(interpreter) }
            return GuestImages(pid: pid, runtimePID: rt, slot: member.slot, argv: member.argv,
                               objects: objects, runtime: runtime, fromLinkMap: true)
        }
        // No r_debug (a static program, or a dynamic linker not yet started): every ELF
        // file mapped in the slot, with the bias its first mapping implies.
        var objects = [program] + (interpreter.map { [$0] } ?? [])
        for m in maps where m.path.hasPrefix("/") && !objects.contains(where: { $0.path == m.usablePath(pid) }) {
            let path = m.usablePath(pid)
            guard let elf = ElfFile(path: path),
                  let seg = elf.loads.first(where: { pageDown($0.offset) == m.offset }),
                  m.start >= pageDown(seg.vaddr) else { continue }
            objects.append(Object(kind: .library, path: path, base: m.start - pageDown(seg.vaddr)))
        }
        return GuestImages(pid: pid, runtimePID: rt, slot: member.slot, argv: member.argv,
                           objects: objects, runtime: runtime, fromLinkMap: false)
    }

    /// The runtime's executable (/proc/RUNTIME/exe) and its load bias, from its first mapping.
    static func runtimeObject(pid: pid_t, runtimePID: pid_t) -> Object? {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/\(runtimePID)/exe", &buf, buf.count - 1)
        guard n > 0 else { return nil }
        let exe = String(decoding: buf[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        // Through /proc: the file may have been replaced since (a rebuild), "PATH (deleted)".
        guard let elf = ElfFile(path: "/proc/\(runtimePID)/exe"), let first = elf.loads.first else { return nil }
        for m in MapLine.read(pid) where m.path == exe {
            if m.offset == pageDown(first.offset), m.start >= pageDown(first.vaddr) {
                return Object(kind: .runtime, path: m.usablePath(pid), base: m.start - pageDown(first.vaddr))
            }
        }
        return nil
    }

    /// The guest dynamic linker's list of loaded objects (path, l_addr), read from the
    /// process's memory: the program's PT_DYNAMIC → DT_DEBUG → struct r_debug → r_map.
    /// The main program (empty name) and objects without a file (the vDSO) are left out.
    static func linkMap(pid: pid_t, program: Object, inSlot: (UInt64) -> Bool) -> [(String, UInt64)]? {
        guard let elf = ElfFile(path: program.path), let dynamic = elf.dynamicVaddr,
              let mem = ProcessMemory(pid) else { return nil }
        var rdebug: UInt64 = 0
        var at = program.base &+ dynamic
        let dyn = MemoryLayout<Elf64_Dyn>.self
        for _ in 0..<1024 {
            guard let tag = mem.u64(at), let value = mem.u64(at + UInt64(dyn.offset(of: \Elf64_Dyn.d_un)!)) else { return nil }
            if tag == UInt64(DT_NULL) { break }
            if tag == UInt64(DT_DEBUG) { rdebug = value; break }
            at += UInt64(dyn.stride)
        }
        let rMap = UInt64(MemoryLayout<r_debug>.offset(of: \r_debug.r_map)!)
        let lAddr = UInt64(MemoryLayout<link_map>.offset(of: \link_map.l_addr)!)
        let lName = UInt64(MemoryLayout<link_map>.offset(of: \link_map.l_name)!)
        let lNext = UInt64(MemoryLayout<link_map>.offset(of: \link_map.l_next)!)
        guard rdebug != 0, inSlot(rdebug), var lm = mem.u64(rdebug + rMap) else { return nil }
        var out = [(String, UInt64)]()
        var seen = Set<UInt64>()
        while lm != 0, inSlot(lm), seen.insert(lm).inserted, seen.count < 4096 {
            guard let addr = mem.u64(lm + lAddr), let namePtr = mem.u64(lm + lName), let next = mem.u64(lm + lNext) else { break }
            let name = namePtr == 0 ? "" : mem.cString(namePtr) ?? ""
            // A relative name (LD_LIBRARY_PATH=.) is relative to the guest's cwd.
            let path = name.hasPrefix("/") ? name : "/proc/\(pid)/cwd/" + name
            if !name.isEmpty, access(path, R_OK) == 0, inSlot(addr) { out.append((path, addr)) }
            lm = next
        }
        return out
    }
}

/// One line of /proc/PID/maps.
struct MapLine {
    let start, end, offset: UInt64
    let perms: String
    let path: String

    static func read(_ pid: pid_t) -> [MapLine] {
        guard let text = readFileBytes("/proc/\(pid)/maps") else { return [] }
        var out = [MapLine]()
        for line in text.split(separator: UInt8(ascii: "\n")) {
            // The fields before the path are ASCII; the path is bytes.
            let f = line.split(separator: UInt8(ascii: " "), maxSplits: 5, omittingEmptySubsequences: true)
            guard f.count >= 5 else { continue }
            let ascii = f.prefix(3).map { String(decoding: $0, as: UTF8.self) }
            let r = ascii[0].split(separator: "-")
            guard r.count == 2, let s = UInt64(r[0], radix: 16), let e = UInt64(r[1], radix: 16),
                  let off = UInt64(ascii[2], radix: 16) else { continue }
            let pathBytes = f.count > 5 ? f[5].drop { $0 == UInt8(ascii: " ") } : []
            // gdb is given paths as text: a path that is not UTF-8 is named by its map_files link.
            let path = String(validating: pathBytes, as: UTF8.self) ?? mapFilesLink(pid, s, e)
            out.append(MapLine(start: s, end: e, offset: off, perms: ascii[1], path: path))
        }
        return out
    }

    /// /proc/PID/map_files/START-END: a link that opens the file mapped there.
    static func mapFilesLink(_ pid: pid_t, _ start: UInt64, _ end: UInt64) -> String {
        "/proc/\(pid)/map_files/" + String(start, radix: 16) + "-" + String(end, radix: 16)
    }

    /// A path that opens the mapped file: the file itself, or its map_files link once it
    /// was deleted or replaced (as after a rebuild of a running program).
    func usablePath(_ pid: pid_t) -> String {
        if path.hasSuffix(" (deleted)") {
            return Self.mapFilesLink(pid, start, end)
        }
        return path
    }
}

func pageDown(_ a: UInt64) -> UInt64 { a & ~UInt64(0xfff) }

/// Another process's memory, read through /proc/PID/mem (as a debugger may).
final class ProcessMemory {
    let fd: Int32
    init?(_ pid: pid_t) {
        fd = open("/proc/\(pid)/mem", O_RDONLY | O_CLOEXEC)
        if fd < 0 { return nil }
    }
    deinit { close(fd) }

    func bytes(_ address: UInt64, _ count: Int) -> [UInt8]? {
        var buf = [UInt8](repeating: 0, count: count)
        let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(truncatingIfNeeded: address)) }
        return n == count ? buf : nil
    }

    func u64(_ address: UInt64) -> UInt64? {
        guard let b = bytes(address, 8) else { return nil }
        return b.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
    }

    func cString(_ address: UInt64, max: Int = 4096) -> String? {
        var out = [UInt8]()
        var at = address
        while out.count < max {
            // Never read across a page boundary in one go: the next page may be unmapped.
            let chunk = Int(min(UInt64(256), 0x1000 - (at & 0xfff)))
            guard let b = bytes(at, chunk) else { return out.isEmpty ? nil : String(decoding: out, as: UTF8.self) }
            if let z = b.firstIndex(of: 0) { out += b[..<z]; return String(decoding: out, as: UTF8.self) }
            out += b
            at += UInt64(chunk)
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Just enough of an ELF64 little-endian file, mapped read-only: its loadable segments,
/// its dynamic section's address and its function symbols.
final class ElfFile {
    struct Segment { let type: UInt32; let offset, vaddr, filesz, memsz: UInt64 }
    struct Symbol { let value, size: UInt64; let name: String }

    private let base: UnsafeRawPointer
    private let size: Int

    init?(path: String) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_size >= MemoryLayout<Elf64_Ehdr>.size else { return nil }
        guard let p = mmap(nil, Int(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else { return nil }
        base = UnsafeRawPointer(p); size = Int(st.st_size)
        let ident = (0..<Int(EI_NIDENT)).map { base.load(fromByteOffset: $0, as: UInt8.self) }
        guard Array(ident.prefix(Int(SELFMAG))) == Array(ELFMAG.utf8), ident[Int(EI_CLASS)] == UInt8(ELFCLASS64),
              ident[Int(EI_DATA)] == UInt8(ELFDATA2LSB) else { munmap(p, size); return nil }
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: base), size) }

    private func u8(_ o: Int) -> UInt8 { o + 1 <= size ? base.load(fromByteOffset: o, as: UInt8.self) : 0 }
    /// The <elf.h> struct at file offset `o`, if the file holds all of it.
    private func load<T>(_ o: Int, as: T.Type) -> T? {
        o >= 0 && o + MemoryLayout<T>.size <= size ? base.loadUnaligned(fromByteOffset: o, as: T.self) : nil
    }
    private var header: Elf64_Ehdr { load(0, as: Elf64_Ehdr.self)! }
    /// The `count` <elf.h> structs of `entrySize` bytes each at file offset `offset` (program or
    /// section headers); none if the table does not fit the file.
    private func table<T>(_ offset: UInt64, _ entrySize: UInt16, _ count: UInt16, of: T.Type) -> [T] {
        let off = Int(offset), ent = Int(entrySize), n = Int(count)
        guard ent >= MemoryLayout<T>.size, off > 0, off + n * ent <= size else { return [] }
        return (0..<n).compactMap { load(off + $0 * ent, as: T.self) }
    }

    var segments: [Segment] {
        let h = header
        return table(h.e_phoff, h.e_phentsize, h.e_phnum, of: Elf64_Phdr.self).map {
            Segment(type: $0.p_type, offset: $0.p_offset, vaddr: $0.p_vaddr, filesz: $0.p_filesz, memsz: $0.p_memsz)
        }
    }

    var loads: [Segment] { segments.filter { $0.type == UInt32(PT_LOAD) } }
    var dynamicVaddr: UInt64? { segments.first { $0.type == UInt32(PT_DYNAMIC) }?.vaddr }

    private struct Section { let type: UInt32; let offset, size, entsize: UInt64; let link: UInt32 }

    private var sections: [Section] {
        let h = header
        return table(h.e_shoff, h.e_shentsize, h.e_shnum, of: Elf64_Shdr.self).map {
            Section(type: $0.sh_type, offset: $0.sh_offset, size: $0.sh_size, entsize: $0.sh_entsize, link: $0.sh_link)
        }
    }

    private func string(_ o: Int) -> String {
        guard o >= 0, o < size else { return "" }
        var end = o
        while end < size && u8(end) != 0 { end += 1 }
        return String(decoding: UnsafeRawBufferPointer(start: base + o, count: end - o), as: UTF8.self)
    }

    /// Defined functions (STT_FUNC, STT_GNU_IFUNC) of .symtab, or of .dynsym in a stripped file.
    func functions() -> [Symbol] {
        let all = sections
        guard let table = all.first(where: { $0.type == UInt32(SHT_SYMTAB) }) ?? all.first(where: { $0.type == UInt32(SHT_DYNSYM) }),
              Int(table.link) < all.count else { return [] }
        let strtab = all[Int(table.link)]
        let symSize = MemoryLayout<Elf64_Sym>.size
        let ent = Int(table.entsize == 0 ? UInt64(symSize) : table.entsize)
        guard ent >= symSize, Int(table.offset) + Int(table.size) <= size else { return [] }
        var out = [Symbol]()
        for i in 0..<Int(table.size) / ent {
            guard let sym = load(Int(table.offset) + i * ent, as: Elf64_Sym.self) else { continue }
            let type = Int32(sym.st_info & 0xf)      // ELF64_ST_TYPE
            guard type == STT_FUNC || type == STT_GNU_IFUNC, sym.st_shndx != SHN_UNDEF, sym.st_value != 0 else { continue }
            let nameOff = Int(sym.st_name)
            guard UInt64(nameOff) < strtab.size else { continue }
            out.append(Symbol(value: sym.st_value, size: sym.st_size, name: string(Int(strtab.offset) + nameOff)))
        }
        return out
    }
}
