// KernelMemory: the kernel calls' copies between guest buffers, stores and copyinstr.
import Glibc
import GuestAPI

/// What the kernel calls need beyond reading: copies between two guest
/// buffers, stores, and CheriBSD's copyinstr.  Guests share the runtime's
/// memory, so the kernel calls use `GuestMemory.shared` (the runtime's own
/// pid, which any guest address is valid in and which needs no ptrace
/// permission over guests that changed credentials).
extension GuestMemory {
    /// Which side of a copy faulted.
    enum Fault { case source, destination }

    /// The whole address space, through the runtime itself.
    static let shared = GuestMemory(pid: getpid())
    /// End of the x86-64 user address space (47 bits, less the guard page).
    static let userEnd: UInt64 = 0x7fff_ffff_f000
    static let processVMWritev = 311

    /// Does [address, address+count) lie in the user address space?
    static func inRange(_ address: UInt64, _ count: UInt64) -> Bool {
        count == 0 || (address < userEnd && count <= userEnd - address)
    }

    /// One process_vm_readv/writev of `count` bytes between `local` and
    /// `remote` (colo_syscall directly: this is on every cocall's path).
    private func transfer(_ number: Int, local: UInt64, remote: UInt64, _ count: Int) -> Int {
        var l = iovec(iov_base: UnsafeMutableRawPointer(bitPattern: UInt(local)), iov_len: count)
        var r = iovec(iov_base: UnsafeMutableRawPointer(bitPattern: UInt(remote)), iov_len: count)
        return withUnsafePointer(to: &l) { lp in
            withUnsafePointer(to: &r) { rp in colo_syscall(number, Int(pid), Int(bitPattern: lp), 1, Int(bitPattern: rp), 1, 0) }
        }
    }

    /// Copy `count` bytes from guest buffer `src` to guest buffer `dst`
    /// (one system call); nil on success, else the side that faulted.
    func copy(to dst: UInt64, from src: UInt64, count: UInt64) -> Fault? {
        guard count > 0 else { return nil }
        guard Self.inRange(src, count) else { return .source }
        guard Self.inRange(dst, count) else { return .destination }
        var done: UInt64 = 0
        while done < count {
            let n = transfer(Self.processVMReadv, local: dst + done, remote: src + done, Int(count - done))
            if n <= 0 { return readable(src + done, count - done) ? .destination : .source }
            done += UInt64(n)
        }
        return nil
    }

    /// Can every byte of the range be read?  (Only asked after a failed copy.)
    private func readable(_ address: UInt64, _ count: UInt64) -> Bool {
        var off: UInt64 = 0
        while off < count {
            let chunk = Int(min(65536, count - off))
            guard read(address + off, count: chunk) != nil else { return false }
            off += UInt64(chunk)
        }
        return true
    }

    /// Store a value at a guest address; false if it is not writable.
    func store<T>(_ value: T, at address: UInt64) -> Bool {
        var v = value
        let size = MemoryLayout<T>.size
        guard address != 0, Self.inRange(address, UInt64(size)) else { return false }
        return withUnsafeMutableBytes(of: &v) {
            transfer(Self.processVMWritev, local: UInt64(UInt(bitPattern: $0.baseAddress!)), remote: address, size) == size
        }
    }

    /// copyinstr with PATH_MAX: the bytes of a NUL-terminated string shorter
    /// than PATH_MAX; EFAULT if unreadable, ENAMETOOLONG if it is longer.
    func path(at address: UInt64) -> Result<[UInt8], ColoError> {
        let max = Int(PATH_MAX)
        var bytes = [UInt8]()
        var at = address
        while bytes.count < max {
            let chunk = min(4096 - Int(at & 4095), max - bytes.count)      // stays within one page
            guard at != 0, let part = read(at, count: chunk) else { return .failure(ColoError(EFAULT, "bad address")) }
            if let nul = part.firstIndex(of: 0) { return .success(bytes + part[..<nul]) }
            bytes += part
            at += UInt64(chunk)
        }
        return .failure(ColoError(ENAMETOOLONG, "name too long"))
    }
}
