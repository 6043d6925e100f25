// Support: ColoError, layout constants, file and system-call helpers the runtime shares.
import Bytes
import CLinux
import ColoABI
import Errors
import Glibc
import GuestAPI

/// An error with the errno a system call would report, and a message for humans.
public struct ColoError: Error, CustomStringConvertible, Equatable {
    public let errno: Errno
    public let message: String
    public init(_ errno: Errno, _ message: String) { self.errno = errno; self.message = message }
    /// The current `errno`, for a failed libc call described by `what`.
    public static func last(_ what: String) -> ColoError {
        let e = Errno.current
        return ColoError(e, "\(what): \(e)")
    }
    public var description: String { message }
}

/// Copy a byte string into a fixed-size C char array (a tuple), NUL-terminated and truncated.
func storeCString<T>(_ s: ByteString, into field: inout T) {
    withUnsafeMutableBytes(of: &field) { raw in
        let bytes = Array(s.bytes.prefix(raw.count - 1))
        raw.copyBytes(from: bytes)
        raw[bytes.count] = 0
    }
}

/// Address-space layout constants, as Swift values.
public enum Layout {
    public static let regionBase = UInt64(COLO_SLOT_REGION_BASE)
    public static let slotShift = UInt64(COLO_SLOT_SHIFT)
    public static let slotSize = UInt64(1) << UInt64(COLO_SLOT_SHIFT)
    public static let maxSlots = Int(COLO_MAX_SLOTS)
    public static let regionEnd = regionBase + UInt64(maxSlots) << slotShift
    public static let tableAddress = UInt64(COLO_TABLE_ADDR)

    /// First address of slot `index`.
    public static func slotBase(_ index: Int) -> UInt64 { regionBase + UInt64(index) << slotShift }
    /// The slot that contains `address`, if it lies in the slot region.
    public static func slot(containing address: UInt64) -> Int? {
        guard address >= regionBase, address < regionEnd else { return nil }
        return Int((address - regionBase) >> slotShift)
    }
}

/// The bytes of a whole file (as in /proc, of any size), or nil.
public func readFileBytes(_ path: String) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var out = [UInt8]()
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = read(fd, &buf, buf.count)
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { break }
        out.append(contentsOf: buf[0..<n])
    }
    return out
}

/// A whole file of text the kernel writes (as in /proc), or nil.
public func readFile(_ path: String) -> String? {
    readFileBytes(path).map { String(decoding: $0, as: UTF8.self) }
}

/// Write all of `bytes` to `fd` (again after EINTR or a short write); false, with errno
/// set, if a write fails.
@discardableResult
public func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
    var off = 0
    while off < bytes.count {
        let n = write(fd, bytes.baseAddress! + off, bytes.count - off)
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { return false }
        off += n
    }
    return true
}

/// Do processes `a` and `b` share one mm?  (kcmp(2) KCMP_VM)
public func shareAddressSpace(_ a: pid_t, _ b: pid_t) -> Bool {
    rawSyscall(Int(SYS_kcmp), Int(a), Int(b), Int(KCMP_VM.rawValue)) == 0
}

/// Nanoseconds of CLOCK_REALTIME.
func realtimeNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// A GNU function that Swift's Glibc module does not declare, looked up at run time.
enum GNU {
    typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32
    /// posix_spawn_file_actions_addchdir_np (glibc 2.29).
    static let spawnAddChdir: AddChdir? = {
        guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: -2) /* RTLD_DEFAULT */, "posix_spawn_file_actions_addchdir_np") else { return nil }
        return unsafeBitCast(sym, to: AddChdir.self)
    }()
}


/// A raw system call with pointer or integer arguments: result or -errno.
/// (Default arguments rather than variadic ones: no array on the hot paths.)
@discardableResult
public func rawSyscall(_ n: Int, _ a: Int = 0, _ b: Int = 0, _ c: Int = 0, _ d: Int = 0, _ e: Int = 0, _ f: Int = 0) -> Int {
    colo_syscall(n, a, b, c, d, e, f)
}

/// Write a line to standard error.
public func printError(_ s: String) {
    var line = s + "\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

/// CLOCK_MONOTONIC in nanoseconds.
public func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}
