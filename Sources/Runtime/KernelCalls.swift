// KernelCalls: cosetup, coregister, colookup, cogetpid, the slow-path calls and fd capabilities.
import CLinux
import ColoABI
import Errors
import Glibc
import GuestShim
import Switcher

/// The capability and call area of the system-call table: cosetup, coregister,
/// colookup, cogetpid, cocall_slow, coaccept_slow, capfromfd, captofd.
/// Arguments are in the registers of CheriBSD's syscalls.master; the state
/// lives in the address space's `Kernel`.  A fork child of a member becomes an address
/// space of its own at its first call; any other caller that is not a colocated process of
/// the address space gets ENOSYS.
enum KernelCalls {
    static let handlers: [Int32: SyscallTable.Handler] = [
        Int32(COLO_SYS_cosetup): { s, c in guarded(s, c, cosetup) },
        Int32(COLO_SYS_coregister): { s, c in guarded(s, c, coregister) },
        Int32(COLO_SYS_colookup): { s, c in guarded(s, c, colookup) },
        Int32(COLO_SYS_cogetpid): { s, c in guarded(s, c, cogetpid) },
        Int32(COLO_SYS_cocall_slow): { s, c in guarded(s, c, cocallSlow) },
        Int32(COLO_SYS_coaccept_slow): { s, c in guarded(s, c, coacceptSlow) },
        Int32(COLO_SYS_capfromfd): { s, c in guarded(s, c, capfromfd) },
        Int32(COLO_SYS_captofd): { s, c in guarded(s, c, captofd) },
    ]

    typealias Body = (AddressSpace, GuestCall, ThreadContext) -> CallResult

    /// Run `body` for a caller that belongs to the address space; a fork child of a member
    /// becomes an address space of its own first (ForkSpaces.swift); else ENOSYS.
    private static func guarded(_ space: AddressSpace, _ call: GuestCall, _ body: Body) -> CallResult {
        guard let t = space.kernel.context(call, space) else { return space.becomeSpaceFirst(call) ?? .error(.ENOSYS) }
        return body(space, call, t)
    }

    /// `int _cosetup(int what, void **code, void **data)`.
    static func cosetup(_ space: AddressSpace, _ call: GuestCall, _ t: ThreadContext) -> CallResult {
        let what = call.int32(0)
        switch what {
        case Int32(0) /* COSETUP_COCALL */, Int32(1) /* COSETUP_COACCEPT */:
            let k = space.kernel
            guard k.ensureSCB(t, space) else { return .error(.ENOMEM) }
            guard space.memory.store(k.codeCapability(t.pid), at: call.args[1]),
                  space.memory.store(t.scb, at: call.args[2]) else { return .error(.EFAULT) }
            if what == 0 { t.cocallReady = true } else { t.coacceptReady = true }
            return .value(0)
        case Int32(2) /* COSETUP_TAKEOVER */:
            // Replacing the switcher (dispatch(1)) needs PRIV_KMEM_WRITE in
            // CheriBSD; there is no replaceable switcher here, so nobody has it.
            return .error(.EPERM)
        default:
            return .error(.EINVAL)
        }
    }

    /// `int coregister(const char *name, void **cap)`: the capability for
    /// calling this thread, published under `name` unless it is NULL.
    static func coregister(_ space: AddressSpace, _ call: GuestCall, _ t: ThreadContext) -> CallResult {
        let k = space.kernel
        guard k.ensureSCB(t, space) else { return .error(.ENOMEM) }
        if t.target == 0 {
            guard let c = k.caps.mint(.target, pid: t.pid, tid: t.tid,
                                      object: UInt64(UInt(bitPattern: t.block))) else { return .error(.ENOMEM) }
            t.target = c
        }
        if call.args[1] != 0 && !space.memory.store(t.target, at: call.args[1]) { return .error(.EFAULT) }
        guard call.args[0] != 0 else { return .value(0) }
        let name: [UInt8]
        switch space.memory.path(at: call.args[0]) {
        case .success(let n): name = n
        case .failure(let e): return .error(e.errno)
        }
        guard !name.isEmpty else { return .error(.EINVAL) }
        guard k.names[name] == nil else { return .error(.EEXIST) }
        k.names[name] = t.target
        return .value(0)
    }

    /// `int colookup(const char *name, void **cap)`.
    static func colookup(_ space: AddressSpace, _ call: GuestCall, _ t: ThreadContext) -> CallResult {
        guard space.table[.allowColookup] != 0 else { return .error(.ENOSYS) }
        switch space.memory.path(at: call.args[0]) {
        case .failure(let e): return .error(e.errno)
        case .success(let name):
            let k = space.kernel
            // The name of a thread whose program exec'd goes as it retires.
            if let cap = k.names[name], let e = k.caps.lookup(cap, .target), e.flags & UInt32(COLO_CAP_DEAD) == 0 {
                _ = k.current(e.tid, space)
            }
            guard let cap = k.names[name] else { return .error(.ESRCH) }
            return space.memory.store(cap, at: call.args[1]) ? .value(0) : .error(.EFAULT)
        }
    }

    /// `int cogetpid(pid_t *pidp)`: the PID of the caller being served.
    static func cogetpid(_ space: AddressSpace, _ call: GuestCall, _ t: ThreadContext) -> CallResult {
        let pid: pid_t
        if let s = t.serving {
            pid = s.caller.pid
        } else if let b = t.block, case let caller = colo_scb_caller_pid(b), caller != 0 {
            pid = caller      // a fast call, unborrowed by this very system call
        } else {
            return .error(.ESRCH)
        }
        return space.memory.store(pid, at: call.args[0]) ? .value(0) : .error(.EFAULT)
    }

    /// The buffer arguments (args 1–4) of cocall/coaccept: a NULL buffer only
    /// with length 0 (EINVAL); an untagged one (below COLO_UNTAGGED_LIMIT) EPROTO
    /// for a caller, while a callee's copy fails later; non-NULL buffers and all
    /// lengths 8-byte aligned (EINVAL), and inside the user address space (EFAULT).
    /// `staged`: what the thread's library left in its SCB's staging area for these buffers
    /// (colo_scb_take_stage's COLO_STAGED_OUT/IN).
    static func buffers(_ a: [UInt64], untaggedOK: Bool = false, staged: Int32 = 0) -> Result<CallBuffers, ColoError> {
        if let e = check(a[1], a[2], untaggedOK) ?? check(a[3], a[4], untaggedOK) { return .failure(ColoError(e, "bad buffer")) }
        return .success(CallBuffers(out: a[1], outLength: a[2], input: a[3], inLength: a[4],
                                    outStaged: staged & Int32(COLO_STAGED_OUT) != 0,
                                    inStaged: staged & Int32(COLO_STAGED_IN) != 0))
    }

    /// Take the staging record of the thread's call (every cocall_slow and coaccept_slow takes
    /// it, so a later call made without the library never finds one of an earlier call).
    private static func takeStage(_ t: ThreadContext, _ a: [UInt64]) -> Int32 {
        guard let b = t.block else { return 0 }
        return colo_scb_take_stage(b, a[1], a[2], a[3], a[4])
    }

    /// The errno for one buffer and its length, or nil if it is acceptable.
    private static func check(_ p: UInt64, _ n: UInt64, _ untaggedOK: Bool) -> Errno? {
        if p == 0 && n != 0 { return .EINVAL }
        if p != 0 && p < UInt64(COLO_UNTAGGED_LIMIT) { return untaggedOK ? nil : .EPROTO }
        if (p | n) % 8 != 0 { return .EINVAL }
        return GuestMemory.inRange(p, n) ? nil : .EFAULT
    }

    /// `ssize_t cocall_slow(void *target, const void *outbuf, size_t outlen, void *inbuf, size_t inlen)`.
    static func cocallSlow(_ space: AddressSpace, _ call: GuestCall, _ t: ThreadContext) -> CallResult {
        switch buffers(call.args, staged: takeStage(t, call.args)) {
        case .failure(let e): return .error(e.errno)
        case .success(let b): return space.kernel.cocall(call, from: t, target: call.args[0], b, space)
        }
    }

    /// `ssize_t coaccept_slow(void **cookiep, const void *outbuf, size_t outlen, void *inbuf, size_t inlen)`.
    static func coacceptSlow(_ space: AddressSpace, _ call: GuestCall, _ t: ThreadContext) -> CallResult {
        switch buffers(call.args, untaggedOK: true, staged: takeStage(t, call.args)) {
        case .failure(let e): return .error(e.errno)
        case .success(let b): return space.kernel.coaccept(call, by: t, cookiep: call.args[0], b, space)
        }
    }

    /// `int capfromfd(void **capp, int fd)`: the runtime takes its own
    /// reference to the open file (pidfd_getfd) and seals it.  As in CheriBSD,
    /// the reference is kept for the life of the address space.
    static func capfromfd(_ space: AddressSpace, _ call: GuestCall, _ t: ThreadContext) -> CallResult {
        let fd = call.int32(1)
        let k = space.kernel
        guard space.memory.store(UInt64(0), at: call.args[0]) else { return .error(.EFAULT) }
        guard k.roomForFileCapability() else { return .error(.EMFILE) }
        let own = Int32(truncatingIfNeeded: rawSyscall(Int(SYS_pidfd_getfd), Int(t.pidfd), Int(fd), 0))
        guard own >= 0 else { return .error(Errno(negated: own)) }
        guard let cap = k.caps.mint(.fd, pid: t.pid, object: UInt64(own)) else { close(own); return .error(.ENFILE) }
        guard space.memory.store(cap, at: call.args[0]) else {
            k.caps.revoke(cap); close(own)
            return .error(.EFAULT)
        }
        k.fileCapabilities += 1
        return .value(0)
    }

    /// `int captofd(void *cap, int *fdp)`: a new descriptor, in the caller,
    /// for the open file the capability holds (SECCOMP_IOCTL_NOTIF_ADDFD).
    static func captofd(_ space: AddressSpace, _ call: GuestCall, _ t: ThreadContext) -> CallResult {
        guard let e = space.kernel.caps.lookup(call.args[0], .fd) else { return .error(.EINVAL) }
        guard space.memory.store(Int32(-1), at: call.args[1]) else { return .error(.EFAULT) }
        let fd = space.channel.addFD(id: call.id, Int32(truncatingIfNeeded: e.object), at: nil)
        guard fd >= 0 else { return .error(Errno(negated: fd)) }
        guard space.memory.store(Int32(fd), at: call.args[1]) else { return .error(.EFAULT) }
        return .value(0)
    }
}
