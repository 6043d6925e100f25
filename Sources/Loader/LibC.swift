// LibC: what the Glibc module leaves out, looked up once.
import Glibc

/// What the Glibc module leaves out (GNU extensions, <sys/auxv.h>, <sys/random.h>), looked up once.
enum LibC {
    /// getauxval(3) of the current process.
    static let getauxval = symbol("getauxval", as: (@convention(c) (UInt) -> UInt).self)

    /// getrandom(2).
    static let getrandom = symbol("getrandom",
                                  as: (@convention(c) (UnsafeMutableRawPointer?, Int, UInt32) -> Int).self)

    /// The value of auxv entry `type` the kernel gave the current process, 0 when absent.
    /// From /proc/self/auxv when it can be read: glibc's getauxval(AT_HWCAP) on x86-64 returns
    /// glibc's own HWCAP_X86_64 bits, not the kernel's CPUID bits.
    static func auxval(_ type: Int32) -> UInt64 {
        guard let auxv = processAuxv else { return UInt64(getauxval(UInt(type))) }
        return auxv[UInt64(type)] ?? 0
    }

    /// /proc/self/auxv as type → value, nil if it cannot be read.
    private static let processAuxv: [UInt64: UInt64]? = auxv(of: "self")

    /// /proc/PID/auxv (the auxiliary vector its mm was started with) as type → value, nil if
    /// it cannot be read.
    static func auxv(of pid: String) -> [UInt64: UInt64]? {
        let fd = open("/proc/\(pid)/auxv", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var words = [UInt64](repeating: 0, count: 256)
        let count = words.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        var auxv: [UInt64: UInt64] = [:]
        for index in stride(from: 0, to: count / 8 - 1, by: 2) where auxv[words[index]] == nil {
            auxv[words[index]] = words[index + 1]
        }
        return auxv
    }

    private static func symbol<F>(_ name: String, as type: F.Type) -> F {
        guard let address = dlsym(nil, name) else { fatalError("libc has no \(name)") }
        return unsafeBitCast(address, to: type)
    }
}

/// Page arithmetic for the host's page size.
enum Page {
    /// The page size.
    static let size = UInt64(sysconf(Int32(_SC_PAGESIZE)))

    /// `address` rounded down to a page boundary.
    static func floor(_ address: UInt64) -> UInt64 { address & ~(size - 1) }

    /// `address` rounded up to a page boundary (the caller ensures it does not overflow).
    static func ceil(_ address: UInt64) -> UInt64 { floor(address + size - 1) }
}
