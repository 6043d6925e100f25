// Reading and writing a guest's memory from the runtime (process_vm_readv/writev): words, byte strings, argv/envp arrays.
import Bytes
import CLinux
import Errors
import Glibc
import Loader

/// Reading (and writing) a guest's memory from the runtime with process_vm_readv, so that a
/// bad pointer is an EFAULT for the guest rather than a crash of the runtime.
public struct GuestMemory {
    public let pid: pid_t

    public init(pid: pid_t) { self.pid = pid }

    public static let processVMReadv = Int(SYS_process_vm_readv)

    /// `count` bytes at `address`, or nil if any of them is not readable.
    public func read(_ address: UInt64, count: Int) -> [UInt8]? {
        if count == 0 { return [] }
        var out = [UInt8](repeating: 0, count: count)
        let n = out.withUnsafeMutableBytes { buf -> Int in
            var local = iovec(iov_base: buf.baseAddress, iov_len: count)
            var remote = iovec(iov_base: UnsafeMutableRawPointer(bitPattern: UInt(address)), iov_len: count)
            return withUnsafePointer(to: &local) { l in withUnsafePointer(to: &remote) { r in
                rawSyscall(Self.processVMReadv, Int(pid), Int(bitPattern: l), 1, Int(bitPattern: r), 1, 0)
            } }
        }
        return n == count ? out : nil
    }

    /// Write `bytes` at `address` (process_vm_writev); false if any of them is not writable.
    public func write(_ bytes: [UInt8], at address: UInt64) -> Bool {
        if bytes.isEmpty { return true }
        let n = bytes.withUnsafeBytes { buf -> Int in
            var local = iovec(iov_base: UnsafeMutableRawPointer(mutating: buf.baseAddress), iov_len: buf.count)
            var remote = iovec(iov_base: UnsafeMutableRawPointer(bitPattern: UInt(address)), iov_len: buf.count)
            return withUnsafePointer(to: &local) { l in withUnsafePointer(to: &remote) { r in
                rawSyscall(Int(SYS_process_vm_writev), Int(pid), Int(bitPattern: l), 1, Int(bitPattern: r), 1, 0)
            } }
        }
        return n == bytes.count
    }

    /// A 64-bit word at `address`.
    public func word(_ address: UInt64) -> UInt64? {
        read(address, count: 8).map { $0.withUnsafeBytes { $0.load(as: UInt64.self) } }
    }

    /// The NUL-terminated string at `address` (at most `limit` bytes), or nil
    /// if unreadable or unterminated.
    public func string(_ address: UInt64, limit: Int = Loader.maxArgumentLength) -> ByteString? {
        try? argument(address, limit: limit)
    }

    /// The NUL-terminated string at `address` as execve reads an argument: EFAULT if it
    /// cannot be read, E2BIG if it is longer than `limit` bytes (MAX_ARG_STRLEN).
    func argument(_ address: UInt64, limit: Int = Loader.maxArgumentLength) throws(GuestFault) -> ByteString {
        var bytes = [UInt8]()
        var at = address
        while bytes.count < limit {
            let chunk = 256 - Int(at % 256)      // stays within one page
            guard let part = read(at, count: chunk) else { throw GuestFault(errno: .EFAULT) }
            if let nul = part.firstIndex(of: 0) {
                guard bytes.count + nul < limit else { break }
                return ByteString(bytes + part[..<nul])
            }
            bytes += part
            at += UInt64(part.count)
        }
        throw GuestFault(errno: .E2BIG)
    }

    /// A NULL-terminated array of string pointers (argv, envp); nil on EFAULT or E2BIG.
    public func strings(_ address: UInt64, limit: Int = 1 << 20) -> [ByteString]? {
        try? arguments(address, limit: limit)
    }

    /// A NULL-terminated array of string pointers as execve reads argv and envp: EFAULT if
    /// any of it cannot be read, E2BIG for a string longer than MAX_ARG_STRLEN or more than
    /// `limit` pointers.
    /// The pointers come in page-sized reads and the strings' pages in vectored reads.
    func arguments(_ address: UInt64, limit: Int = 1 << 20) throws(GuestFault) -> [ByteString] {
        if address == 0 { return [] }
        var pointers = [UInt64]()
        var at = address
        scan: while pointers.count < limit {
            let count = Int(4096 - at % 4096) / 8
            guard let raw = read(at, count: count * 8) ?? read(at, count: 8) else { throw GuestFault(errno: .EFAULT) }
            for i in 0..<raw.count / 8 {
                let p = raw.withUnsafeBytes { $0.load(fromByteOffset: i * 8, as: UInt64.self) }
                if p == 0 { break scan }
                pointers.append(p)
            }
            at += UInt64(raw.count)
        }
        guard pointers.count < limit else { throw GuestFault(errno: .E2BIG) }
        // Every page that holds the start of a string, each read once: strings sit side by
        // side, so a few pages hold them all (reading the rest of each string's page copied a
        // page a string).  One vectored read per 512 pages; a read stops at a page it cannot
        // read, and a string on a page not read, or running past the pages read, is read again
        // by itself (which gives its errno).
        let pages = Array(Set(pointers.map { $0 & ~4095 })).sorted()
        var bytes = [UInt8](repeating: 0, count: pages.count * 4096)
        var index = [UInt64: Int]()         // page -> its offset in `bytes`, for the pages read
        bytes.withUnsafeMutableBytes { buf in
            for batch in stride(from: 0, to: pages.count, by: 512) {
                let group = pages[batch..<min(batch + 512, pages.count)]
                let local = group.indices.map { iovec(iov_base: buf.baseAddress! + $0 * 4096, iov_len: 4096) }
                let remote = group.map { iovec(iov_base: UnsafeMutableRawPointer(bitPattern: UInt($0)), iov_len: 4096) }
                let got = local.withUnsafeBufferPointer { l in remote.withUnsafeBufferPointer { r in
                    rawSyscall(Self.processVMReadv, Int(pid), Int(bitPattern: l.baseAddress!), group.count,
                               Int(bitPattern: r.baseAddress!), group.count, 0)
                } }
                for (i, page) in group.enumerated() where (i + 1) * 4096 <= got { index[page] = (batch + i) * 4096 }
            }
        }
        var out = [ByteString]()
        out.reserveCapacity(pointers.count)
        for p in pointers {
            var piece = [UInt8]()
            var at = p
            var found: ByteString? = nil
            while piece.count < Loader.maxArgumentLength, let offset = index[at & ~4095] {
                let start = offset + Int(at & 4095), end = offset + 4096
                if let nul = bytes[start..<end].firstIndex(of: 0) {
                    if piece.count + (nul - start) < Loader.maxArgumentLength { found = ByteString(piece + bytes[start..<nul]) }
                    break
                }
                piece += bytes[start..<end]
                at = (at & ~4095) + 4096
            }
            if let found { out.append(found) } else { out.append(try argument(p)) }
        }
        return out
    }
}

/// Why a guest's memory could not be read as asked: the errno the system call gives.
struct GuestFault: Error {
    let errno: Errno
}
