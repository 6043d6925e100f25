import Glibc
import GuestAPI

/// A colocation system call made by a guest, as seccomp's user notification
/// delivers it to the runtime.
struct GuestCall {
    let id: UInt64
    let pid: pid_t
    let number: Int32
    let instructionPointer: UInt64
    let args: [UInt64]
}

/// What the runtime answers a guest's system call with.
enum CallResult {
    case value(Int64)
    case error(Int32)
    /// No answer yet: the caller sleeps until the handler's area answers it
    /// later with `AddressSpace.answer(_:_:)` (e.g. a coaccept_slow waiting for a caller).
    case pending
}

/// The colocation system calls, by number (CheriBSD's + 1000), as colo_syscalls.def lists
/// them: the one table the runtime serves, the filter routes and the tracers name.  An entry
/// served by the runtime has a handler in one of the areas' tables below (SyscallTableTests
/// checks both ways); a number without an entry fails with ENOSYS, exactly as it does
/// outside an address space.
enum SyscallTable {
    typealias Handler = @Sendable (AddressSpace, GuestCall) -> CallResult

    struct Entry: Sendable {
        let name: String
        let nargs: Int
        /// Served by the in-guest SIGSYS handler (colo_do_<id> in sigsys.c), which reaches
        /// the runtime only through colo_exec.
        let servedInGuest: Bool
        /// Done by the switcher in user space (copark): the call itself answers ENOSYS.
        let servedBySwitcher: Bool
        let handler: Handler?
    }

    /// Handlers by area: each area of the runtime (exec, capabilities and calls)
    /// contributes a `[number: handler]` table in its own file.
    static let handlers: [Int32: Handler] = [Int32: Handler]()
        .merging(ExecCalls.handlers) { a, _ in a }
        .merging(KernelCalls.handlers) { a, _ in a }

    /// colo_syscalls.def's entries, with their handlers.
    static let entries: [Int32: Entry] = {
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
    static var names: [Int32: String] { entries.mapValues(\.name) }

    /// The name of a colocation system call, if it is one.
    static func name(_ number: Int32) -> String? { entries[number]?.name }

    static func dispatch(_ space: AddressSpace, _ call: GuestCall) -> CallResult {
        guard let handler = entries[call.number]?.handler else { return .error(ENOSYS) }
        return handler(space, call)
    }
}

/// seccomp user notifications (linux/seccomp.h), for the runtime's listener.
enum UserNotification {
    static let recv: UInt = 0xC050_2100      // SECCOMP_IOCTL_NOTIF_RECV, struct seccomp_notif (80 bytes)
    static let send: UInt = 0xC018_2101      // SECCOMP_IOCTL_NOTIF_SEND, struct seccomp_notif_resp (24 bytes)
    static let idValid: UInt = 0x4008_2102   // SECCOMP_IOCTL_NOTIF_ID_VALID, u64
    static let addFD: UInt = 0x4018_2103     // SECCOMP_IOCTL_NOTIF_ADDFD, struct seccomp_notif_addfd (24 bytes)
    static let ioctlNumber = 16

    /// Receive one pending notification, or nil (none pending, or the caller went away).
    static func receive(_ fd: Int32) -> GuestCall? {
        var raw = [UInt64](repeating: 0, count: 10)
        let r = raw.withUnsafeMutableBytes { rawSyscall(ioctlNumber, Int(fd), Int(bitPattern: recv), Int(bitPattern: $0.baseAddress!)) }
        guard r == 0 else { return nil }
        let pid = pid_t(truncatingIfNeeded: raw[1] & 0xffff_ffff)
        let nr = Int32(truncatingIfNeeded: raw[2] & 0xffff_ffff)
        return GuestCall(id: raw[0], pid: pid, number: nr, instructionPointer: raw[3], args: Array(raw[4..<10]))
    }

    /// Answer a notification.  False if the caller is no longer waiting (signal, death).
    @discardableResult
    static func respond(_ fd: Int32, id: UInt64, _ result: CallResult) -> Bool {
        var resp = [UInt64](repeating: 0, count: 3)
        resp[0] = id
        switch result {
        case .value(let v): resp[1] = UInt64(bitPattern: v)
        case .error(let e): resp[2] = UInt64(UInt32(bitPattern: -e))
        case .pending: return false
        }
        let r = resp.withUnsafeMutableBytes { rawSyscall(ioctlNumber, Int(fd), Int(bitPattern: send), Int(bitPattern: $0.baseAddress!)) }
        return r == 0
    }
}
