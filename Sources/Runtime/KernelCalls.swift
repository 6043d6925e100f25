import Glibc
import GuestAPI

/// The capability and call area of the system-call table: cosetup, coregister,
/// colookup, cogetpid, cocall_slow, coaccept_slow, capfromfd, captofd.
enum KernelCalls {
    static let handlers: [Int32: SyscallTable.Handler] = [:]
}
