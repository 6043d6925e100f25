// SyscallTable: dispatch of the colocation system calls colo_syscalls.def lists, and the user-notification listener.
import CLinux
import ColoABI
import Errors
import Glibc

/// A colocation system call made by a guest, as seccomp's user notification
/// delivers it to the runtime.
struct GuestCall {
    let id: UInt64
    let pid: pid_t
    let number: Int32
    let instructionPointer: UInt64
    let args: [UInt64]

    /// Argument `i` as the C int the ABI passes in the register's low 32 bits (a descriptor,
    /// flags, a PID): the kernel's truncation, in one place.
    func int32(_ i: Int) -> Int32 { Int32(truncatingIfNeeded: args[i]) }
    /// Argument `i` as a PID (pid_t).
    func pid(_ i: Int) -> pid_t { pid_t(truncatingIfNeeded: args[i]) }
    /// Argument `i` as a C long (a count, a slot, a signed result).
    func long(_ i: Int) -> Int64 { Int64(bitPattern: args[i]) }
}

/// What the runtime answers a guest's system call with.
enum CallResult {
    case value(Int64)
    case error(Errno)
    /// No answer yet: the caller sleeps until the handler's area answers it
    /// later with `AddressSpace.answer(_:_:)` (e.g. a coaccept_slow waiting for a caller).
    case pending
}

/// The colocation system calls, by number (CheriBSD's + 1000), as colo_syscalls.def lists
/// them: the one table the runtime serves, the filter routes and the tracers name.  An entry
/// served by the runtime has a handler in one of the areas' tables below (SyscallTableTests
/// checks both ways); a number without an entry fails with ENOSYS, exactly as it does
/// outside an address space.
public enum SyscallTable {
    typealias Handler = @Sendable (AddressSpace, GuestCall) -> CallResult

    public struct Entry: Sendable {
        public let name: String
        public let nargs: Int
        /// Served by the in-guest SIGSYS handler (colo_do_<id> in sigsys.c), which reaches
        /// the runtime only through colo_exec.
        public let servedInGuest: Bool
        /// Done by the switcher in user space (copark): the call itself answers ENOSYS.
        public let servedBySwitcher: Bool
        let handler: Handler?
    }

    /// Handlers by area: each area of the runtime (exec, capabilities and calls)
    /// contributes a `[number: handler]` table in its own file.
    static let handlers: [Int32: Handler] = [Int32: Handler]()
        .merging(ExecCalls.handlers) { a, _ in a }
        .merging(KernelCalls.handlers) { a, _ in a }
        .merging(SpaceCalls.handlers) { a, _ in a }

    /// colo_syscalls.def's entries, with their handlers.
    public static let entries: [Int32: Entry] = {
        var out = [Int32: Entry]()
        var i: UInt32 = 0
        while let d = colo_syscall_at(i) {
            out[d.pointee.number] = Entry(name: String(cString: d.pointee.name), nargs: Int(d.pointee.nargs),
                                          servedInGuest: d.pointee.served == UInt8(COLO_SERVED_GUEST.rawValue),
                                          servedBySwitcher: d.pointee.served == UInt8(COLO_SERVED_SWITCHER.rawValue),
                                          handler: handlers[d.pointee.number])
            i += 1
        }
        return out
    }()

    /// Every number with its name.
    public static var names: [Int32: String] { entries.mapValues(\.name) }

    /// The name of a colocation system call, if it is one.
    public static func name(_ number: Int32) -> String? { entries[number]?.name }

    static func dispatch(_ space: AddressSpace, _ call: GuestCall) -> CallResult {
        guard let handler = entries[call.number]?.handler else { return .error(.ENOSYS) }
        return handler(space, call)
    }
}

/// seccomp user notifications, for the runtime's listener: the ioctls, their
/// numbers and their structs as <linux/seccomp.h> defines them (CLinux).
enum UserNotification {
    /// Receive one pending notification, or nil (none pending, or the caller went away).
    static func receive(_ fd: Int32) -> GuestCall? {
        var n = seccomp_notif()
        let r = withUnsafeMutablePointer(to: &n) {
            rawSyscall(Int(SYS_ioctl), Int(fd), Int(bitPattern: clinux_seccomp_ioctl_notif_recv), Int(bitPattern: $0))
        }
        guard r == 0 else { return nil }
        let a = n.data.args
        return GuestCall(id: n.id, pid: pid_t(bitPattern: n.pid), number: n.data.nr,
                         instructionPointer: n.data.instruction_pointer, args: [a.0, a.1, a.2, a.3, a.4, a.5])
    }

    /// Answer a notification.  False if the caller is no longer waiting (signal, death).
    @discardableResult
    static func respond(_ fd: Int32, id: UInt64, _ result: CallResult) -> Bool {
        var resp = seccomp_notif_resp()
        resp.id = id
        switch result {
        case .value(let v): resp.val = v
        case .error(let e): resp.error = -e.rawValue
        case .pending: return false
        }
        let r = withUnsafeMutablePointer(to: &resp) {
            rawSyscall(Int(SYS_ioctl), Int(fd), Int(bitPattern: clinux_seccomp_ioctl_notif_send), Int(bitPattern: $0))
        }
        return r == 0
    }

    /// Is the caller of notification `id` still waiting?  (SECCOMP_IOCTL_NOTIF_ID_VALID)
    static func isValid(_ fd: Int32, id: UInt64) -> Bool {
        var id = id
        return withUnsafeMutablePointer(to: &id) {
            rawSyscall(Int(SYS_ioctl), Int(fd), Int(bitPattern: clinux_seccomp_ioctl_notif_id_valid), Int(bitPattern: $0)) == 0
        }
    }

    /// Install descriptor `fd` into the caller of notification `id`, at `target` (or the
    /// lowest free number): its number there, or -errno.  (SECCOMP_IOCTL_NOTIF_ADDFD)
    static func addFD(_ fd: Int32, id: UInt64, _ source: Int32, at target: Int32?) -> Int {
        var req = seccomp_notif_addfd()
        req.id = id
        req.flags = target == nil ? 0 : UInt32(clinux_seccomp_addfd_flag_setfd)
        req.srcfd = UInt32(bitPattern: source)
        req.newfd = UInt32(bitPattern: target ?? 0)
        return withUnsafeMutablePointer(to: &req) {
            rawSyscall(Int(SYS_ioctl), Int(fd), Int(bitPattern: clinux_seccomp_ioctl_notif_addfd), Int(bitPattern: $0))
        }
    }
}
