// ExecCalls: exec in place, coexecve and the re-colocation phases, as the runtime serves them.
import Bytes
import CLinux
import ColoABI
import Errors
import Glibc
import GuestShim
import Loader
import Switcher

/// The exec area of the system-call table: exec in place, asked for by the
/// SIGSYS handler when a colocated process calls execve/execveat.
enum ExecCalls {
    static let handlers: [Int32: SyscallTable.Handler] = [
        Int32(COLO_SYS_exec): { space, call in space.execInPlace(call) },
    ]
}

/// A program planned for exec in place, waiting for the commit.
struct PendingExec {
    let image: ProgramImage
    let envp: [ByteString]
    /// A new capability vector (coexecvec), or nil to inherit the current one.
    let capv: [UInt64]?
}

extension AddressSpace {
    /// COLO_SYS_exec(COLO_EXEC_PLAN, dirfd, path, argv, envp, flags): validate and
    /// decide (colocate, or a real execve); COLO_SYS_exec(COLO_EXEC_COMMIT): the
    /// handler has passed the point of no return, load the program.
    func execInPlace(_ call: GuestCall) -> CallResult {
        abandonOrphanedRecolocations()
        switch call.int32(0) {
        case Int32(COLO_EXEC_PLAN.rawValue): return planExec(call)
        case Int32(COLO_EXEC_COMMIT.rawValue): return commitExec(call)
        case Int32(COLO_EXEC_PLAN_CO.rawValue): return planCoexec(call, vector: false)
        case Int32(COLO_EXEC_PLAN_COVEC.rawValue): return planCoexec(call, vector: true)
        case COLO_EXEC_RECOLO_COMMIT: return commitRecolocation(call)
        case COLO_EXEC_RECOLO_PARKED: return recolocationParked(call)
        case COLO_EXEC_RECOLO_START: return startRecolocated(call)
        case COLO_EXEC_RECOLO_FAILED: return recolocationFailed(call)
        default: return .error(.EINVAL)
        }
    }

    private func planExec(_ call: GuestCall) -> CallResult {
        let tid = call.pid
        let native = CallResult.value(Int64(COLO_EXEC_NATIVE.rawValue))
        guard table[.opportunisticCoexecve] != 0 else { return native }
        // A fork child (a private copy of the mm): back into its parent's
        // address space if it may be (Recolocation.swift), else a real execve.
        let forked = !inThisSpace(tid)
        // Threaded (exec would have to kill the other threads; the
        // re-colocation helper does not count, it stops itself): a real execve.
        if !forked {
            guard let tgid = threadGroup(of: tid),
                  threadCount(tgid) - (recolocationHelper(of: tgid) != nil ? 1 : 0) == 1 else { return native }
        }
        let mem = GuestMemory(pid: tid)
        let dirfd = call.int32(1)
        let flags = call.int32(5)
        guard let rawPath = mem.string(call.args[2], limit: Int(PATH_MAX)) else { return .error(.EFAULT) }
        let path: ByteString
        if rawPath.isEmpty && flags & clinux_at_empty_path != 0 { path = ByteString("/proc/\(tid)/fd/\(dirfd)") }
        else if rawPath.hasPrefix("/") || dirfd == clinux_at_fdcwd { path = rawPath }
        else { path = ByteString("/proc/\(tid)/fd/\(dirfd)/") + rawPath }
        if forked { return planRecolocation(call, path: path) }
        return plan(tid, path: path, argv: call.args[3], envp: call.args[4], capv: nil)
    }

    /// Validate a program for thread `tid` (the exec errors are its errnos) and keep it for the commit.
    func planProgram(_ tid: pid_t, path: ByteString, argv: UInt64, envp: UInt64) -> CallResult {
        plan(tid, path: path, argv: argv, envp: envp, capv: nil)
    }

    /// Validate a program for exec in place by thread `tid` and keep it for the commit.
    private func plan(_ tid: pid_t, path: ByteString, argv argvAddress: UInt64, envp envpAddress: UInt64,
                      capv: [UInt64]?) -> CallResult {
        let mem = GuestMemory(pid: tid)
        let argv: [ByteString], envp: [ByteString]
        do throws(GuestFault) { argv = try mem.arguments(argvAddress); envp = try mem.arguments(envpAddress) }
        catch { return .error(error.errno) }
        let plan: ExecPlan
        do throws(LoadError) {
            plan = try Loader.plan(path: path, argv: argv, envp: envp, stackSize: Self.stackSize,
                                   directory: ByteString("/proc/\(tid)/cwd"))
        }
        catch { return .error(error.errno) }
        guard case .colocate(let image) = plan else { return .value(Int64(COLO_EXEC_NATIVE.rawValue)) }
        pendingExecs[tid] = PendingExec(image: image, envp: envp, capv: capv)
        return .value(Int64(COLO_EXEC_COLOCATE.rawValue))
    }

    /// coexecve(pid, path, argv, envp) / coexecvec(..., capv, capc): args[5]
    /// points at {capv, capc, slot of the caller}.
    private func planCoexec(_ call: GuestCall, vector: Bool) -> CallResult {
        let tid = call.pid
        let mem = GuestMemory(pid: tid)
        guard let tgid = threadGroup(of: tid) else { return .error(.ESRCH) }
        // pid 0 (clearances(1) passes it) is the caller itself.
        let requested = call.pid(1)
        let target = requested == 0 ? tgid : requested
        guard target > 0, kill(target, 0) == 0 || errno == EPERM else { return .error(.ESRCH) }
        guard mayColocate(tgid, with: target) else { return .error(.EPERM) }
        guard let extra = mem.read(call.args[5], count: MemoryLayout<colo_coexec_extra>.size)?
                .withUnsafeBytes({ $0.loadUnaligned(as: colo_coexec_extra.self) }) else { return .error(.EFAULT) }
        let (capvAddress, capc, callerSlot) = (extra.capv, extra.capc, Int(extra.slot))
        var capv: [UInt64]? = nil
        if vector {
            guard capc >= 0 else { return .error(.EINVAL) }
            guard capc < Int64(COLO_CAPV_MAX) else { return .error(.E2BIG) }
            if capvAddress != 0 && capc > 0 {
                // A vector only means something in the address space it came from.
                // (CheriBSD: "usually caused by an attempt to call coexecvec after fork(2)")
                guard inThisSpace(target), inThisSpace(tid) else { return .error(.EPROTO) }
                guard let raw = mem.read(capvAddress, count: Int(capc) * 8) else { return .error(.EFAULT) }
                capv = raw.withUnsafeBytes { Array($0.bindMemory(to: UInt64.self)) }
            } else {
                capv = []
            }
        }
        guard let path = mem.string(call.args[2], limit: Int(PATH_MAX)) else { return .error(.EFAULT) }
        // CheriBSD always lets a process colocate with itself: for a fork child (outside the
        // address space) that is its own execve, back into its parent's address space if it
        // may be, else a real one.
        if target == tgid && !inThisSpace(tid) {
            return recolocateOrNative(call, path: path, capv: capv)
        }
        if inThisSpace(target), !inThisSpace(tid) {
            // A fork child (a private copy of the mm): into its parent's
            // address space by re-colocation, else a real execve.
            guard target == parent(of: tgid) else { return .value(Int64(COLO_EXEC_NATIVE.rawValue)) }
            return recolocateOrNative(call, path: path, capv: capv)
        }
        if inThisSpace(target) {
            guard threadCount(tgid) == 1 else { return .value(Int64(COLO_EXEC_NATIVE.rawValue)) }
            return plan(tid, path: path, argv: call.args[3], envp: call.args[4], capv: capv)
        }
        // Another address space: Linux cannot move a process into another mm,
        // so the caller becomes `colo --join target path args...`.
        guard SpaceDirectory.space(containing: target) != nil else {
            return awaitForkSpace(call, target: target) ?? .error(.EPERM)
        }
        guard let argv = mem.strings(call.args[3]), callerSlot >= 0, callerSlot < Layout.maxSlots else { return .error(.EFAULT) }
        let join = [ByteString("/proc/\(runtimePID)/exe"), "colo", "--join", ByteString(String(target)), "--", path]
            + argv.dropFirst()
        guard let block = argumentBlock(join, at: Layout.slotBase(callerSlot) + UInt64(COLO_JOIN_ARGS_OFFSET),
                                        size: Int(COLO_JOIN_ARGS_SIZE)) else { return .error(.E2BIG) }
        // The caller's slot header: its own copy if it is a fork child.
        guard mem.write(block, at: Layout.slotBase(callerSlot) + UInt64(COLO_JOIN_ARGS_OFFSET)) else { return .error(.EFAULT) }
        return .value(Int64(COLO_EXEC_JOIN.rawValue))
    }

    /// A fork child's coexecve: back into its parent's address space (with the vector, if
    /// the call gave one) if it may be, else a real execve.
    private func recolocateOrNative(_ call: GuestCall, path: ByteString, capv: [UInt64]?) -> CallResult {
        let tid = call.pid
        if case .value(let v) = planRecolocation(call, path: path), v == Int64(COLO_EXEC_RECOLOCATE) {
            if let capv { pendingExecs[tid] = pendingExecs[tid].map { PendingExec(image: $0.image, envp: $0.envp, capv: capv) } }
            return .value(v)
        }
        return .value(Int64(COLO_EXEC_NATIVE.rawValue))
    }

    /// [ptr(s[0]), ptr(s[1]) ... NULL] followed by the strings, as bytes to be put at `address`;
    /// nil if they take more than `size` bytes.
    private func argumentBlock(_ strings: [ByteString], at address: UInt64, size: Int) -> [UInt8]? {
        let table = (strings.count + 1) * 8
        guard table + strings.reduce(0, { $0 + $1.count + 1 }) <= size else { return nil }
        var pointers = [UInt64]()
        var text = [UInt8]()
        for s in strings {
            pointers.append(address + UInt64(table + text.count))
            text += s.nulTerminated
        }
        pointers.append(0)
        return pointers.withUnsafeBytes { Array($0) } + text
    }

    /// CheriBSD's p_cancolocate: the same process, one the caller could debug
    /// (same user, or root), or the caller's real parent.
    func mayColocate(_ caller: pid_t, with target: pid_t) -> Bool {
        if caller == target { return true }
        guard let c = credentials(of: caller), let t = credentials(of: target) else { return false }
        if c.uid[1] == 0 { return true }
        if Set(t.uid.prefix(3)) == [c.uid[1]] && Set(t.gid.prefix(3)) == [c.gid[1]] { return true }
        return parent(of: caller) == target
    }

    private func commitExec(_ call: GuestCall) -> CallResult {
        let tid = call.pid
        guard let pending = pendingExecs.removeValue(forKey: tid), let tgid = threadGroup(of: tid) else {
            return .error(.EINVAL)
        }
        // One pidfd for the parent's PID and, for a vfork child, for tracking it as a member.
        var pidfd = Int32(rawSyscall(Int(SYS_pidfd_open), Int(tgid), 0))
        defer { if pidfd >= 0 { close(pidfd) } }
        let ppid = parent(of: tgid, pidfd: pidfd)
        do throws(ColoError) {
            if let m = members[tgid], let index = m.slot {
                // The process's own slot: everything but the slot header goes.
                let base = Layout.slotBase(index)
                hands.unmap(base + UInt64(COLO_SLOT_HEADER_SIZE), Layout.slotSize - UInt64(COLO_SLOT_HEADER_SIZE))
                try load(pending.image, envp: pending.envp, slot: index, owner: tgid, ppid: ppid,
                         capv: pending.capv ?? inheritedVector(of: tgid))
                return .value(Int64(index))
            }
            // A vfork child, still in its parent's slot: a slot of its own.
            let index = try loadInNewSlot(pending, owner: tgid, ppid: ppid)
            adoptExternal(Member(pid: tgid, slot: index), pidfd: pidfd >= 0 ? pidfd : nil)
            pidfd = -1
            return .value(Int64(index))
        } catch {
            printError("colo: exec in place of process \(tgid) failed: \(error.message)")
            return .error(error.errno)
        }
    }

    /// A new slot with `pending`'s program loaded for process `owner`, a child of `ppid`
    /// (whose vector it inherits unless the exec gave one); the slot is released again if
    /// loading fails.
    func loadInNewSlot(_ pending: PendingExec, owner: pid_t, ppid: pid_t) throws(ColoError) -> Int {
        let index = try allocateSlot()
        do throws(ColoError) {
            try mapSlotHeader(index)
            try load(pending.image, envp: pending.envp, slot: index, owner: owner, ppid: ppid,
                     capv: pending.capv ?? inheritedVector(of: ppid))
        } catch {
            releaseSlot(index)
            throw error
        }
        return index
    }
}

/// Real, effective, saved and filesystem user and group ids of a process.
func credentials(of pid: pid_t) -> (uid: [UInt32], gid: [UInt32])? {
    guard let s = readFile("/proc/\(pid)/status") else { return nil }
    func ids(_ key: String) -> [UInt32]? {
        s.split(separator: "\n").first { $0.hasPrefix(key) }.map { $0.split(separator: "\t").dropFirst().compactMap { UInt32($0) } }
    }
    guard let u = ids("Uid:"), let g = ids("Gid:"), u.count == 4, g.count == 4 else { return nil }
    return (u, g)
}

/// The thread group (process) a thread belongs to.
func threadGroup(of tid: pid_t) -> pid_t? {
    if rawSyscall(Int(SYS_tgkill), Int(tid), Int(tid), 0) == 0 { return tid }     // the group's leader
    guard let s = readFile("/proc/\(tid)/status"),
          let line = s.split(separator: "\n").first(where: { $0.hasPrefix("Tgid:") }) else { return nil }
    return pid_t(line.split(separator: "\t").last ?? "")
}

/// /proc/PID/stat fields after the command name (field 3 is index 0), or [].
/// Parsed as bytes: the command name may hold any character, the rest is ASCII.
public func statFields(_ pid: pid_t) -> [Substring] {
    let fd = open("/proc/\(pid)/stat", O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return [] }
    defer { close(fd) }
    var buf = [UInt8](repeating: 0, count: 1024)
    let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
    guard n > 0, let close = buf[0..<n].lastIndex(of: UInt8(ascii: ")")) else { return [] }
    let tail = String(decoding: buf[(close + 1)..<n], as: UTF8.self)
    return tail.utf8.split(separator: UInt8(ascii: " ")).map { Substring($0) }
}

/// The number of threads of a process (0 if it is gone): the link count of /proc/PID/task is
/// its number of threads + 2 (proc_task_getattr); one stat, where reading /proc/PID/stat
/// formats the whole line (8.4 us against 1.5 us here).
func threadCount(_ pid: pid_t) -> Int {
    var st = stat()
    guard stat("/proc/\(pid)/task", &st) == 0, st.st_nlink > 2 else { return 0 }
    return Int(st.st_nlink) - 2
}

/// The parent of a process, as the kernel knows it.
func parent(of pid: pid_t) -> pid_t {
    let f = statFields(pid)
    return f.count > 1 ? pid_t(f[1]) ?? 0 : 0
}

/// The parent of the process a pidfd refers to (PIDFD_GET_INFO, Linux 6.13), else as
/// parent(of:) finds it.
func parent(of pid: pid_t, pidfd: Int32) -> pid_t {
    var info = clinux_pidfd_info()
    if pidfd >= 0, ioctl(pidfd, clinux_pidfd_get_info, &info) == 0, info.ppid != 0 { return pid_t(bitPattern: info.ppid) }
    return parent(of: pid)
}
