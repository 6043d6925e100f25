// Capabilities: the software capability tagger of one address space.
import CLinux
import ColoABI
import Errors
import Glibc
import GuestAPI

/// The software capability tagger of one address space (format: colo_cap.h).
/// Capabilities are minted only here, each with a fresh random nonce, into a
/// table mapped at COLO_CAP_TABLE_ADDR; a value is valid while its table entry
/// holds exactly that value, so forged, stale and foreign values are refused.
final class CapabilityTable {
    /// What a capability names (enum colo_cap_type).
    enum Kind: UInt32 {
        case target = 1, scb = 2, code = 3, fd = 4
    }

    let table: UnsafeMutablePointer<colo_cap_table>
    /// Indices of free entries.
    private var free: [UInt32]
    /// Entries of exited threads' targets (kept so that calls give ENOLINK),
    /// oldest first; reused only when no entry is free.
    private var dead = [UInt32]()
    private var deadHead = 0
    /// One more than the highest index ever minted (the table's `used`, which a guest could
    /// overwrite, is set from it).
    private var used: UInt32 = 0

    /// The table's memory (a memfd), which the address space maps too: inherited by the agent's
    /// fork, or mapped by a fork child that becomes an address space (space.c).
    let file: Int32

    /// Map an empty table with a fresh per-address-space key: shared memory, the same in the
    /// runtime's mm and in the address space's (agent.c), and private in a fork child.
    init() throws(ColoError) {
        let size = Self.size
        file = clinux_memfd("colo capability table")
        guard file >= 0, ftruncate(file, off_t(size)) == 0 else { throw .last("cannot create the capability table") }
        guard let p = mmap(UnsafeMutableRawPointer(bitPattern: UInt(COLO_CAP_TABLE_ADDR)), size, PROT_READ | PROT_WRITE,
                           MAP_SHARED | MAP_FIXED_NOREPLACE, file, 0),
              p != MAP_FAILED else { throw .last("cannot map the capability table") }
        table = p.assumingMemoryBound(to: colo_cap_table.self)
        table.pointee.magic = UInt64(COLO_CAP_TABLE_MAGIC)
        table.pointee.key = UInt64.random(in: 0...UInt64.max) & UInt64(COLO_CAP_KEY_MASK)
        // The last index is never minted: its SCB block holds the switcher's event log (colo_abi.h).
        free = (0..<UInt32(COLO_SWITCH_LOG_INDEX)).reversed()
    }

    deinit { munmap(table, Self.size); close(file) }

    /// Bytes mapped: the header and every entry.
    static let size = MemoryLayout<colo_cap_table>.size + Int(COLO_CAP_TABLE_CAPACITY) * MemoryLayout<colo_cap_entry>.stride

    private func entry(_ index: UInt32) -> UnsafeMutablePointer<colo_cap_entry> {
        colo_cap_entry_at(table, index)
    }

    /// The table index a capability of this table is stored at.
    func index(of cap: UInt64) -> UInt32 {
        UInt32(truncatingIfNeeded: ((cap ^ table.pointee.key) >> UInt64(COLO_CAP_INDEX_SHIFT)) & UInt64(COLO_CAP_INDEX_MASK))
    }

    /// A new sealed capability of `kind`, or nil when the table is full.
    func mint(_ kind: Kind, pid: pid_t, tid: pid_t = 0, object: UInt64 = 0) -> UInt64? {
        let i: UInt32
        if let f = free.popLast() {
            i = f
        } else if deadHead < dead.count {
            i = dead[deadHead]; deadHead += 1
            if deadHead == dead.count { dead.removeAll(); deadHead = 0 }
        } else {
            return nil
        }
        let nonce = UInt64.random(in: 0...UInt64.max) & UInt64(COLO_CAP_NONCE_MASK)
        let secret = ((UInt64(i) << UInt64(COLO_CAP_INDEX_SHIFT)) | nonce) ^ table.pointee.key
        let cap = UInt64(COLO_CAP_SEALED) | UInt64(COLO_CAP_TAG) | UInt64(kind.rawValue) << UInt64(COLO_CAP_TYPE_SHIFT)
            | (secret & UInt64(COLO_CAP_KEY_MASK))
        entry(i).pointee = colo_cap_entry(value: cap, object: object, pid: pid, tid: tid, flags: 0, reserved: 0)
        used = max(used, i + 1)
        table.pointee.used = used
        return cap
    }

    /// The entry of `cap` if it is a valid (live or dead) capability of `kind`.
    func lookup(_ cap: UInt64, _ kind: Kind) -> colo_cap_entry? {
        colo_cap_lookup(table, cap, kind.rawValue)?.pointee
    }

    /// Set what a live capability refers to (its entry's `object`).
    func setObject(_ cap: UInt64, _ object: UInt64) {
        let i = index(of: cap)
        if entry(i).pointee.value == cap { entry(i).pointee.object = object }
    }

    /// Invalidate `cap` at once; its entry becomes free.
    func revoke(_ cap: UInt64) {
        let i = index(of: cap)
        guard entry(i).pointee.value == cap else { return }
        entry(i).pointee.value = 0
        free.append(i)
    }

    /// Mark `cap` as naming an exited thread: it still checks, and calls give
    /// ENOLINK, until its entry is needed again.
    func markDead(_ cap: UInt64) {
        let i = index(of: cap)
        guard entry(i).pointee.value == cap, entry(i).pointee.flags & UInt32(COLO_CAP_DEAD) == 0 else { return }
        entry(i).pointee.flags |= UInt32(COLO_CAP_DEAD)
        dead.append(i)
    }

    /// The `%#lp`-like text of a capability, as capv -c prints it.
    static func describe(_ cap: UInt64) -> String {
        var buf = [CChar](repeating: 0, count: 64)
        _ = colo_capfmt(&buf, UInt(buf.count), UnsafeRawPointer(bitPattern: UInt(cap)))
        return String(decoding: buf.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
