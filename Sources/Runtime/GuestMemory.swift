import Glibc

/// Reading a guest's memory from the runtime with process_vm_readv, so that a
/// bad pointer is an EFAULT for the guest rather than a crash of the runtime.
struct GuestMemory {
    let pid: pid_t

    static let processVMReadv = 310

    /// `count` bytes at `address`, or nil if any of them is not readable.
    func read(_ address: UInt64, count: Int) -> [UInt8]? {
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

    /// A 64-bit word at `address`.
    func word(_ address: UInt64) -> UInt64? {
        read(address, count: 8).map { $0.withUnsafeBytes { $0.load(as: UInt64.self) } }
    }

    /// The NUL-terminated string at `address` (at most `limit` bytes), or nil
    /// if unreadable or unterminated.
    func string(_ address: UInt64, limit: Int = 131072) -> String? {
        var bytes = [UInt8]()
        var at = address
        while bytes.count < limit {
            let chunk = 256 - Int(at % 256)      // stays within one page
            guard let part = read(at, count: chunk) else { return nil }
            if let nul = part.firstIndex(of: 0) { return String(decoding: bytes + part[..<nul], as: UTF8.self) }
            bytes += part
            at += UInt64(part.count)
        }
        return nil
    }

    /// A NULL-terminated array of string pointers (argv, envp); nil on EFAULT.
    func strings(_ address: UInt64, limit: Int = 1 << 17) -> [String]? {
        if address == 0 { return [] }
        var out = [String]()
        var at = address
        while out.count < limit {
            guard let p = word(at) else { return nil }
            if p == 0 { return out }
            guard let s = string(p) else { return nil }
            out.append(s)
            at += 8
        }
        return nil
    }
}
