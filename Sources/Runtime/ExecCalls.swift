import Glibc
import GuestAPI
import Loader

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
    let envp: [String]
}

extension AddressSpace {
    /// COLO_SYS_exec(COLO_EXEC_PLAN, dirfd, path, argv, envp, flags): validate and
    /// decide (colocate, or a real execve); COLO_SYS_exec(COLO_EXEC_COMMIT): the
    /// handler has passed the point of no return, load the program.
    func execInPlace(_ call: GuestCall) -> CallResult {
        switch Int32(truncatingIfNeeded: call.args[0]) {
        case Int32(COLO_EXEC_PLAN.rawValue): return planExec(call)
        case Int32(COLO_EXEC_COMMIT.rawValue): return commitExec(call)
        default: return .error(EINVAL)
        }
    }

    private func planExec(_ call: GuestCall) -> CallResult {
        let tid = call.pid
        let native = CallResult.value(Int64(COLO_EXEC_NATIVE.rawValue))
        // Not colocated any more (a fork child), asked not to, or threaded
        // (exec would have to kill the other threads): a real execve.
        guard table[.opportunisticCoexecve] != 0, shareAddressSpace(tid, runtimePID),
              let tgid = threadGroup(of: tid), threadCount(tgid) == 1 else { return native }
        let mem = GuestMemory(pid: tid)
        let dirfd = Int32(truncatingIfNeeded: call.args[1])
        let flags = Int32(truncatingIfNeeded: call.args[5])
        guard let rawPath = mem.string(call.args[2], limit: Int(PATH_MAX)) else { return .error(EFAULT) }
        guard let argv = mem.strings(call.args[3]), let envp = mem.strings(call.args[4]) else { return .error(EFAULT) }
        let path: String
        if rawPath.isEmpty && flags & 0x1000 != 0 { path = "/proc/\(tid)/fd/\(dirfd)" }       // AT_EMPTY_PATH
        else if rawPath.hasPrefix("/") || dirfd == -100 { path = rawPath }
        else { path = "/proc/\(tid)/fd/\(dirfd)/\(rawPath)" }
        let plan: ExecPlan
        do { plan = try inDirectory("/proc/\(tid)/cwd") { () throws(LoadError) in try Loader.plan(path: path, argv: argv, envp: envp) } }
        catch { return .error(error.errno) }
        guard case .colocate(let image) = plan else { return native }
        pendingExecs[tid] = PendingExec(image: image, envp: envp)
        return .value(Int64(COLO_EXEC_COLOCATE.rawValue))
    }

    private func commitExec(_ call: GuestCall) -> CallResult {
        let tid = call.pid
        guard let pending = pendingExecs.removeValue(forKey: tid), let tgid = threadGroup(of: tid) else {
            return .error(EINVAL)
        }
        do throws(ColoError) {
            if let m = members[tgid], let index = m.slot {
                // The process's own slot: everything but the slot header goes.
                let base = Layout.slotBase(index)
                munmap(UnsafeMutableRawPointer(bitPattern: UInt(base + UInt64(COLO_SLOT_HEADER_SIZE))),
                       Int(Layout.slotSize - UInt64(COLO_SLOT_HEADER_SIZE)))
                try load(pending.image, envp: pending.envp, slot: index, owner: tgid, ppid: parent(of: tgid))
                return .value(Int64(index))
            }
            // A vfork child, still in its parent's slot: a slot of its own.
            let index = try allocateSlot()
            do throws(ColoError) {
                try mapSlotHeader(index)
                try load(pending.image, envp: pending.envp, slot: index, owner: tgid, ppid: parent(of: tgid))
            } catch {
                releaseSlot(index)
                throw error
            }
            adoptExternal(Member(pid: tgid, slot: index))
            return .value(Int64(index))
        } catch {
            printError("colo: exec in place of process \(tgid) failed: \(error.message)")
            return .error(error.errno)
        }
    }

    /// Run `body` with the runtime's working directory set to `dir` (a guest's
    /// cwd), so relative paths resolve as the guest would resolve them.
    private func inDirectory<R>(_ dir: String, _ body: () throws(LoadError) -> R) throws(LoadError) -> R {
        let saved = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        defer { if saved >= 0 { fchdir(saved); close(saved) } }
        guard chdir(dir) == 0 else { throw LoadError(errno: ESRCH, message: "the process is gone") }
        return try body()
    }
}

/// The thread group (process) a thread belongs to.
func threadGroup(of tid: pid_t) -> pid_t? {
    guard let s = readFile("/proc/\(tid)/status"),
          let line = s.split(separator: "\n").first(where: { $0.hasPrefix("Tgid:") }) else { return nil }
    return pid_t(line.split(separator: "\t").last ?? "")
}

/// The number of threads of a process.
func threadCount(_ pid: pid_t) -> Int {
    guard let dir = opendir("/proc/\(pid)/task") else { return 0 }
    defer { closedir(dir) }
    var n = 0
    while let e = readdir(dir) { if e.pointee.d_name.0 != 46 /* "." */ { n += 1 } }
    return n
}

/// The parent of a process, as the kernel knows it.
func parent(of pid: pid_t) -> pid_t {
    guard let s = readFile("/proc/\(pid)/stat"), let close = s.lastIndex(of: ")") else { return 0 }
    let f = s[s.index(after: close)...].split(separator: " ")
    return f.count > 1 ? pid_t(f[1]) ?? 0 : 0
}
