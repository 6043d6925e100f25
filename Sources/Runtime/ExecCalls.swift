import Glibc
import GuestAPI

/// The exec area of the system-call table: coexecve(2), coexecvec(2).
enum ExecCalls {
    static let handlers: [Int32: SyscallTable.Handler] = [:]
}
