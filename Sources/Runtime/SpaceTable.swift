// SpaceTable: the shared address-space table that colo ps and procstat read from outside.
import Bytes
import CLinux
import ColoABI
import Errors
import Glibc
import GuestShim
import Switcher

/// One colocated process as the address-space table records it.
public struct ProcessRecord: Sendable {
    /// An ELF object mapped for the process.
    public struct Image: Sendable { public let path: ByteString; public let base, start, end: UInt64 }
    public let pid: pid_t
    public let ppid: pid_t
    public let slot: Int
    public let startNanoseconds: UInt64
    public let wchan: String
    public let images: [Image]
    /// argv as the process was executed (not the mm-wide /proc cmdline).
    public let argv: [ByteString]
}

/// The address-space table: a MAP_SHARED file that the runtime maps at a fixed
/// address of its address space and keeps up to date, and that `colo ps` and
/// `colo procstat` map read-only from outside.
public final class SpaceTable {
    public let path: String
    let base: UnsafeMutableRawPointer
    let size: Int
    let owned: Bool

    static let entryStride = MemoryLayout<colo_proc_entry>.stride
    static let fileSize = 4096 + Int(COLO_MAX_SLOTS) * entryStride

    public var header: UnsafeMutablePointer<colo_table_header> { base.assumingMemoryBound(to: colo_table_header.self) }

    private init(path: String, base: UnsafeMutableRawPointer, size: Int, owned: Bool) {
        self.path = path; self.base = base; self.size = size; self.owned = owned
    }

    /// Create the table of a new address space, mapped at COLO_TABLE_ADDR.
    static func create(path: String, runtimePID: pid_t) throws(ColoError) -> SpaceTable {
        unlink(path)
        let fd = Glibc.open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .last("cannot create \(path)") }
        defer { close(fd) }
        guard ftruncate(fd, off_t(fileSize)) == 0 else { throw .last("ftruncate \(path)") }
        let p = mmap(UnsafeMutableRawPointer(bitPattern: UInt(Layout.tableAddress)), fileSize,
                     PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0)
        guard let p, p != MAP_FAILED else { throw .last("cannot map the address-space table") }
        let t = SpaceTable(path: path, base: p, size: fileSize, owned: true)
        var vmaddr: UInt64 = 0
        withUnsafeMutablePointer(to: &vmaddr) { _ = rawSyscall(Int(SYS_getrandom), Int(bitPattern: $0), 8) }
        t.header.pointee.magic = UInt64(COLO_TABLE_MAGIC)
        t.header.pointee.version = UInt32(COLO_TABLE_VERSION)
        t.header.pointee.runtime_pid = runtimePID
        t.header.pointee.vmaddr = 0xffff_ff00_0000_0000 | (vmaddr & 0x00ff_ffff_ffff_ffc0)
        t.header.pointee.max_slots = UInt32(COLO_MAX_SLOTS)
        t.header.pointee.entry_size = UInt32(entryStride)
        t.header.pointee.created_ns = realtimeNanoseconds()
        t.setDefaultKnobs()
        return t
    }

    /// COLO_TRACE_RING_SIZE: the ring's header page, then its records.
    public static let traceRingSize = 4096 + Int(COLO_TRACE_RECORDS) * Int(COLO_TRACE_RECORD_SIZE)
    /// The trace ring's file holds the switcher's event log after the ring (mapped at
    /// COLO_SWITCH_LOG_ADDR), so that tools read both without entering the kernel.
    public static let traceFileSize = traceRingSize + Int(COLO_SCB_SIZE)

    /// The trace ring's file: next to the table.
    public static func traceRingPath(tablePath: String) -> String { tablePath + ".trace" }

    /// Create the address space's trace ring (colo_abi.h, struct colo_trace_ring),
    /// mapped at COLO_TRACE_RING_ADDR, and the switcher's event log after it; their
    /// pages cost nothing until they are written.  Call after the SCB area exists.
    /// If `reader` is not 0 (`colo trace -- COMMAND`), tracing is on from the start
    /// with that process as its reader.
    func createTraceRing(reader: pid_t) throws(ColoError) {
        let path = Self.traceRingPath(tablePath: self.path)
        unlink(path)
        let fd = Glibc.open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .last("cannot create \(path)") }
        defer { close(fd) }
        let size = Self.traceRingSize
        guard ftruncate(fd, off_t(Self.traceFileSize)) == 0 else { throw .last("ftruncate \(path)") }
        let p = mmap(UnsafeMutableRawPointer(bitPattern: UInt(COLO_TRACE_RING_ADDR)), size,
                     PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0)
        guard let p, p != MAP_FAILED else { throw .last("cannot map the trace ring") }
        // Over the SCB area's last block (reserved by Kernel for the log).
        let log = mmap(UnsafeMutableRawPointer(bitPattern: UInt(COLO_SWITCH_LOG_ADDR)), Int(COLO_SCB_SIZE),
                       PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, off_t(size))
        guard let log, log != MAP_FAILED else { throw .last("cannot map the switcher's event log") }
        colo_trace_publish(header)
        if reader != 0 {
            // Traced from the first program on, fast calls included: once the tracer has
            // mapped the ring and the table (it holds them from then on).
            let ring = p.assumingMemoryBound(to: colo_trace_ring.self)
            ring.pointee.reader_pid = reader
            header.pointee.trace_selector = 1
            _ = colo_trace_wait_for_reader(ring, 10)
        }
    }

    /// Map an existing table anywhere (read-only unless `writable`, which
    /// `colo sysctl -w` uses); nil if it is not a valid table.
    public static func open(path: String, writable: Bool = false) -> SpaceTable? {
        let fd = Glibc.open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, Int(st.st_size) == fileSize else { return nil }
        guard let p = mmap(nil, fileSize, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, 0),
              p != MAP_FAILED else { return nil }
        let t = SpaceTable(path: path, base: p, size: fileSize, owned: false)
        guard t.header.pointee.magic == UInt64(COLO_TABLE_MAGIC),
              t.header.pointee.version == UInt32(COLO_TABLE_VERSION),
              Int(t.header.pointee.entry_size) == entryStride else { return nil }
        return t
    }

    deinit {
        munmap(base, size)
    }

    public var runtimePID: pid_t { header.pointee.runtime_pid }
    /// A process of the address space's mm (its agent, or the runtime if it lives there).
    public var mmPID: pid_t { header.pointee.mm_pid != 0 ? header.pointee.mm_pid : header.pointee.runtime_pid }
    /// The identity of the address space, printed as ps's VMADDR.
    public var vmaddr: UInt64 { header.pointee.vmaddr }
    /// 1 while a `colo trace` traces the address space in process.
    public var traceSelector: UInt8 { header.pointee.trace_selector }

    func entry(_ slot: Int) -> UnsafeMutablePointer<colo_proc_entry> {
        (base + 4096 + slot * SpaceTable.entryStride).assumingMemoryBound(to: colo_proc_entry.self)
    }

    /// Record a process starting in `slot`.
    func record(slot: Int, pid: pid_t, ppid: pid_t, argv: [ByteString], images: [ProcessRecord.Image], brkStart: UInt64) {
        let e = entry(slot)
        e.pointee.pid = pid
        e.pointee.ppid = ppid
        e.pointee.slot = UInt32(slot)
        e.pointee.start_ns = realtimeNanoseconds()
        e.pointee.brk_start = brkStart
        storeCString("", into: &e.pointee.wchan)
        withUnsafeMutablePointer(to: &e.pointee.images) { tuplePtr in
            tuplePtr.withMemoryRebound(to: colo_image_rec.self, capacity: Int(COLO_MAX_IMAGES)) { recs in
                for i in 0..<Int(COLO_MAX_IMAGES) {
                    if i < images.count {
                        recs[i].base = images[i].base; recs[i].start = images[i].start; recs[i].end = images[i].end
                        storeCString(images[i].path, into: &recs[i].path)
                    } else {
                        recs[i].base = 0; recs[i].start = 0; recs[i].end = 0
                        storeCString("", into: &recs[i].path)
                    }
                }
            }
        }
        var bytes = [UInt8]()
        for a in argv { bytes += a.nulTerminated }
        if bytes.count > Int(COLO_CMDLINE_LEN) { bytes = Array(bytes.prefix(Int(COLO_CMDLINE_LEN))) }
        withUnsafeMutableBytes(of: &e.pointee.cmdline) { $0.copyBytes(from: bytes) }
        e.pointee.cmdline_len = UInt32(bytes.count)
        e.pointee.state = UInt32(COLO_PROC_RUNNING.rawValue)
    }

    /// Forget the process in `slot`.
    func clear(slot: Int) {
        let e = entry(slot)
        e.pointee.state = UInt32(COLO_PROC_FREE.rawValue)
        e.pointee.pid = 0
    }

    /// Every running process of the address space.
    public func members() -> [ProcessRecord] {
        var out = [ProcessRecord]()
        for slot in 0..<Int(header.pointee.max_slots) {
            let e = entry(slot).pointee
            guard e.state == UInt32(COLO_PROC_RUNNING.rawValue), e.pid > 0 else { continue }
            var images = [ProcessRecord.Image]()
            withUnsafeBytes(of: e.images) { raw in
                for r in raw.bindMemory(to: colo_image_rec.self) where r.end > r.start {
                    images.append(.init(path: ByteString(cField: r.path), base: r.base, start: r.start, end: r.end))
                }
            }
            let argv: [ByteString] = withUnsafeBytes(of: e.cmdline) { raw in
                raw.prefix(Int(e.cmdline_len)).split(separator: 0, omittingEmptySubsequences: false)
                    .dropLast().map { ByteString($0) }
            }
            out.append(ProcessRecord(pid: e.pid, ppid: e.ppid, slot: slot, startNanoseconds: e.start_ns,
                                     wchan: ByteString(cField: e.wchan).description, images: images, argv: argv))
        }
        return out
    }
}
