// Mappings.swift: the mapping plan of a program (ELF segments as binfmt_elf maps them, the stack), applied by colo_plan_apply.
import Bytes
import Errors
import Glibc
import GuestShim

/// What loading a program into a slot does to the mm, as data (struct colo_plan): built here
/// without touching memory, applied by C code in the mm that is to hold the program
/// (colo_plan_apply) — the runtime's own, or a fork child's becoming an address space.
public struct MappingPlan: Sendable {
    /// The operations, in order.
    public private(set) var operations: [colo_plan_op] = []
    /// What each operation maps, for error messages.
    private var subjects: [String] = []
    /// The bytes COPY operations take from.
    public private(set) var data: [UInt8] = []
    /// Where the program starts, and its initial stack pointer.
    public internal(set) var entry: UInt64 = 0, stackPointer: UInt64 = 0

    /// Anonymous memory at exactly [start, start+length), replacing nothing (ENOMEM if the
    /// range is partly in use); unmapped again if a later operation fails.
    mutating func reserve(_ start: UInt64, length: UInt64, prot: Int32, flags: Int32, what: String) {
        add(COLO_PLAN_RESERVE, prot: prot, flags: flags, start, length, what: what)
    }

    /// The operations that map `object` with its lowest page at `base`: the whole span reserved
    /// PROT_NONE first (gaps stay so), then each PT_LOAD in program-header order as binfmt_elf's
    /// elf_load maps it: its file pages; when p_memsz > p_filesz the rest of the last file page
    /// zeroed (padzero) and anonymous pages up to p_memsz, read-write (and executable if the
    /// segment is), as vm_brk_flags maps them whatever the segment's protection.
    mutating func map(_ object: ElfObject, at base: UInt64) -> MappedImage {
        let path = object.file.path.description
        let bias = base &- object.lowPage
        reserve(base, length: object.span, prot: PROT_NONE, flags: MAP_NORESERVE, what: path)
        for segment in object.segments {
            let start = bias &+ segment.vaddr
            let pageStart = Page.floor(start)
            var anonymousStart = pageStart
            if segment.filesz > 0 {
                let fileEnd = start + segment.filesz
                anonymousStart = Page.ceil(fileEnd)
                add(COLO_PLAN_FILE, fd: object.file.fd, prot: segment.prot, pageStart, anonymousStart - pageStart,
                    offset: Page.floor(segment.offset), what: path)
                if segment.memsz > segment.filesz && fileEnd < anonymousStart {
                    // Like Linux, a failure to zero only matters for a writable segment.
                    add(COLO_PLAN_ZERO, flags: segment.prot & PROT_WRITE != 0 ? 1 : 0, fileEnd, anonymousStart - fileEnd,
                        what: "the bss of \(path)")
                }
            }
            let anonymousEnd = Page.ceil(start + segment.memsz)
            if segment.memsz > segment.filesz && anonymousEnd > anonymousStart {
                add(COLO_PLAN_ANON, prot: PROT_READ | PROT_WRITE | segment.prot & PROT_EXEC, anonymousStart,
                    anonymousEnd - anonymousStart, what: "the bss of \(path)")
            }
        }
        return MappedImage(path: object.file.path, loadBias: bias, start: base, end: base + object.span)
    }

    /// Copy `bytes` to `address` (which an earlier operation maps writable).
    mutating func copy(_ bytes: [UInt8], to address: UInt64, what: String) {
        add(COLO_PLAN_COPY, address, UInt64(bytes.count), offset: UInt64(data.count), what: what)
        data += bytes
    }

    private mutating func add(_ kind: colo_plan_op_kind, fd: Int32 = -1, prot: Int32 = 0, flags: Int32 = 0,
                              _ address: UInt64, _ length: UInt64, offset: UInt64 = 0, what: String) {
        operations.append(colo_plan_op(kind: kind.rawValue, fd: fd, prot: prot, flags: flags,
                                       addr: address, len: length, offset: offset))
        subjects.append(what)
    }

    /// The descriptors the plan maps from.
    public var descriptors: Set<Int32> { Set(operations.compactMap { $0.kind == COLO_PLAN_FILE.rawValue ? $0.fd : nil }) }

    /// The same plan with its descriptors renumbered (for the process that applies it).
    public func renumbering(_ numbers: [Int32: Int32]) -> MappingPlan {
        var p = self
        for i in p.operations.indices where p.operations[i].kind == COLO_PLAN_FILE.rawValue {
            p.operations[i].fd = numbers[p.operations[i].fd] ?? -1
        }
        return p
    }

    /// The plan as struct colo_plan: header, operations, data.
    public func serialized() -> [UInt8] {
        let headerSize = MemoryLayout<colo_plan>.size
        let size = headerSize + operations.count * MemoryLayout<colo_plan_op>.stride + data.count
        var out = [UInt8](repeating: 0, count: size)
        out.withUnsafeMutableBytes { raw in
            var header = colo_plan()
            header.magic = UInt64(COLO_PLAN_MAGIC)
            header.nops = UInt32(operations.count)
            header.size = UInt32(size)
            header.data_len = UInt64(data.count)
            header.entry = entry
            header.sp = stackPointer
            raw.storeBytes(of: header, as: colo_plan.self)
            for (i, op) in operations.enumerated() {
                raw.storeBytes(of: op, toByteOffset: headerSize + i * MemoryLayout<colo_plan_op>.stride, as: colo_plan_op.self)
            }
            let dataStart = headerSize + operations.count * MemoryLayout<colo_plan_op>.stride
            data.withUnsafeBytes { raw.baseAddress!.advanced(by: dataStart).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        }
        return out
    }

    /// Apply the plan in this process's mm (colo_plan_apply); on failure nothing it reserved stays.
    public func apply() throws(LoadError) {
        try apply { bytes in
            var failed: UInt32 = 0
            let r = bytes.withUnsafeBytes {
                colo_plan_apply($0.baseAddress!.assumingMemoryBound(to: colo_plan.self), UInt64($0.count), &failed)
            }
            return (r, failed)
        }
    }

    /// Apply the plan through `applier`, which gets the serialized plan, applies it where the
    /// program is to live, and returns colo_plan_apply's result and failing operation.
    public func apply(_ applier: ([UInt8]) -> (result: Int, failed: UInt32)) throws(LoadError) {
        let (r, failed) = applier(serialized())
        guard r < 0 else { return }
        let e = Errno(Int32(-r))
        guard Int(failed) < operations.count else { throw LoadError(errno: e, message: "malformed mapping plan") }
        let op = operations[Int(failed)]
        let verb: String
        switch op.kind {
        case COLO_PLAN_RESERVE.rawValue: verb = "cannot reserve"
        case COLO_PLAN_ZERO.rawValue: verb = "cannot zero"
        case COLO_PLAN_COPY.rawValue: verb = "cannot copy"
        default: verb = "cannot map"
        }
        throw LoadError(errno: e, message: "\(verb) \(subjects[Int(failed)]) at \(hex(op.addr)): \(e)")
    }
}

/// An address in hex, for messages.
func hex(_ address: UInt64) -> String { "0x" + String(address, radix: 16) }
