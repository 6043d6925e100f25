// KernelMemory: the kernel calls' copies between guest buffers, stores and copyinstr.
import CLinux
import ColoABI
import Errors
import Glibc
import GuestAPI
import Switcher

/// What the kernel calls need beyond reading: copies between two guest
/// buffers, stores, and CheriBSD's copyinstr.  Every member shares one mm, so
/// the kernel calls use `AddressSpace.memory` (a process of that mm the runtime
/// controls: its agent, which any guest address is valid in and which needs no
/// ptrace permission over guests that changed credentials).
extension GuestMemory {
    /// Which side of a copy faulted.
    enum Fault { case source, destination }
    /// End of the x86-64 user address space (47 bits, less the guard page).
    static let userEnd: UInt64 = 0x7fff_ffff_f000
    static let processVMWritev = Int(SYS_process_vm_writev)

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

    /// One end of a slow-path copy: a guest buffer, or a thread's staging area (its SCB's
    /// `stage`, which the runtime maps: see struct colo_scb), at most COLO_STAGE_SIZE bytes.
    enum CopyEnd { case guest(UInt64), stage(OpaquePointer) }

    /// Copy `count` bytes between two ends; a staging area that receives bytes records
    /// their number for its thread's library.  Only guest buffers fault.
    func copy(to dst: CopyEnd, from src: CopyEnd, count: UInt64) -> Fault? {
        guard count > 0 else { return nil }
        switch (dst, src) {
        case (.guest(let d), .guest(let s)):
            return copy(to: d, from: s, count: count)
        case (.guest(let d), .stage(let b)):
            guard Self.inRange(d, count) else { return .destination }
            let local = UInt64(UInt(bitPattern: colo_scb_stage(b)))
            return transfer(Self.processVMWritev, local: local, remote: d, Int(count)) == Int(count) ? nil : .destination
        case (.stage(let b), .guest(let s)):
            guard Self.inRange(s, count) else { return .source }
            let local = UInt64(UInt(bitPattern: colo_scb_stage(b)))
            guard transfer(Self.processVMReadv, local: local, remote: s, Int(count)) == Int(count) else { return .source }
            colo_scb_stage_got(b, Int64(count))
        case (.stage(let d), .stage(let s)):
            colo_scb_stage(d).copyMemory(from: colo_scb_stage(s), byteCount: Int(count))
            colo_scb_stage_got(d, Int64(count))
        }
        return nil
    }

    /// Copy `count` bytes from guest buffer `src` to guest buffer `dst` through a buffer of
    /// the runtime's (the guests' mm is not the runtime's): a read and a write per 64 KiB; nil
    /// on success, else the side that faulted.
    func copy(to dst: UInt64, from src: UInt64, count: UInt64) -> Fault? {
        guard count > 0 else { return nil }
        guard Self.inRange(src, count) else { return .source }
        guard Self.inRange(dst, count) else { return .destination }
        return Self.bounce.withUnsafeMutableBytes { buffer -> Fault? in
            let local = UInt64(UInt(bitPattern: buffer.baseAddress!))
            var done: UInt64 = 0
            while done < count {
                let chunk = Int(min(UInt64(buffer.count), count - done))
                let n = transfer(Self.processVMReadv, local: local, remote: src + done, chunk)
                if n <= 0 { return .source }
                if transfer(Self.processVMWritev, local: local, remote: dst + done, n) != n { return .destination }
                done += UInt64(n)
            }
            return nil
        }
    }

    /// The runtime's buffer for copies between guest buffers (one thread serves every call).
    nonisolated(unsafe) private static var bounce = [UInt8](repeating: 0, count: 65536)

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
            guard at != 0, let part = read(at, count: chunk) else { return .failure(ColoError(.EFAULT, "bad address")) }
            if let nul = part.firstIndex(of: 0) { return .success(bytes + part[..<nul]) }
            bytes += part
            at += UInt64(chunk)
        }
        return .failure(ColoError(.ENAMETOOLONG, "name too long"))
    }
}
