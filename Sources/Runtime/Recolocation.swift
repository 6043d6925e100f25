// Recolocation: the runtime's part of bringing a fork child back into its parent's address space with its PID.
import Bytes
import CLinux
import ColoABI
import Errors
import Glibc
import GuestShim
import Switcher

/// Re-colocation: a fork()ed child of a colocated process that execs goes back
/// into its parent's address space with the same PID (CheriBSD's opportunistic
/// colocation after fork).  The runtime's part:
///
/// 1. PLAN (from the child's execve): may it?  The parent is a member with a
///    running helper thread that may create PIDs (CAP_SYS_ADMIN or
///    CAP_CHECKPOINT_RESTORE), the child is single-threaded, has no children
///    of its own, and its PID will be free once it exits (no other process in
///    a group or session it leads).  Otherwise: a real execve.
///    The program is validated here, so exec errors reach the child as errnos.
/// 2. COMMIT (the child, nothing irreversible yet): load the program into a
///    fresh slot, take copies of the child's descriptors (pidfd_getfd) and cwd,
///    note its umask, credentials, rlimits, process group and ignored signals
///    in the new slot's header, post a request to the parent's helper.  The
///    child's call stays pending.
/// 3. PARKED (the helper, SIGCHLD parked): let the child exit.
/// 4. START (the new process, created by the helper with the child's PID):
///    install the descriptors at their numbers (SECCOMP_IOCTL_NOTIF_ADDFD),
///    answer the cwd descriptor, adopt the process as a member.
struct Recolocation {
    var call: GuestCall
    let slot: Int
    let parent: pid_t
    var fds: [(target: Int32, fd: Int32)]
    var cwd: Int32
    var parked = false

    func closeAll() {
        for f in fds { close(f.fd) }
        if cwd >= 0 { close(cwd) }
    }
}

final class RecolocationTable {
    var byPID = [pid_t: Recolocation]()
    /// mayCreatePIDs of each helper thread, by its tid (a helper's
    /// credentials do not change: it makes no credential calls).
    var helperMayCreatePIDs = [pid_t: Bool]()
}

nonisolated(unsafe) private var recolocationTables = [ObjectIdentifier: RecolocationTable]()

extension AddressSpace {
    var recolocations: RecolocationTable {
        if let t = recolocationTables[ObjectIdentifier(self)] { return t }
        let t = RecolocationTable()
        recolocationTables[ObjectIdentifier(self)] = t
        return t
    }

    func recolocationArea(_ slot: Int) -> UnsafeMutablePointer<colo_recolo_area> {
        UnsafeMutableRawPointer(slotHeader(slot)).advanced(by: Int(COLO_RECOLO_OFFSET))
            .assumingMemoryBound(to: colo_recolo_area.self)
    }

    /// The thread id of process `pid`'s re-colocation helper, if it runs.
    func recolocationHelper(of pid: pid_t) -> pid_t? {
        guard let s = members[pid]?.slot, colo_recolo_helper_alive(slotHeader(s), pid) != 0 else { return nil }
        return recolocationArea(s).pointee.helper_tid
    }

    /// PLAN for a thread that no longer shares the address space (a fork child).
    func planRecolocation(_ call: GuestCall, path: ByteString) -> CallResult {
        let native = CallResult.value(Int64(COLO_EXEC_NATIVE.rawValue))
        guard recolocationEnabled else { return native }
        let tid = call.pid
        // stat: [1] ppid, [2] pgrp, [3] session, [17] threads
        let f = statFields(tid)
        guard threadGroup(of: tid) == tid, f.count > 17, f[17] == "1", let ppid = pid_t(f[1]), ppid > 0,
              inThisSpace(ppid), let helper = recolocationHelper(of: ppid) else { return native }
        let table = recolocations
        let permitted = table.helperMayCreatePIDs[helper] ?? mayCreatePIDs(ppid, thread: helper)
        table.helperMayCreatePIDs[helper] = permitted
        guard permitted else { return native }
        // Children of its own would lose their parent (execve keeps them).
        if let children = readProcBytes("/proc/\(tid)/task/\(tid)/children"), !children.isEmpty { return native }
        // The PID must be free once the child is gone: it may not name a
        // process group or session that outlives it.
        if (pid_t(f[2]) == tid || pid_t(f[3]) == tid) && otherProcessUses(group: tid) { return native }
        let r = planProgram(tid, path: path, argv: call.args[3], envp: call.args[4])
        if case .value(let v) = r, v == Int64(COLO_EXEC_COLOCATE.rawValue) { return .value(Int64(COLO_EXEC_RECOLOCATE)) }
        return r
    }

    /// COMMIT: args[1] = the child's signal mask.
    func commitRecolocation(_ call: GuestCall) -> CallResult {
        let tid = call.pid
        let table = recolocations
        if var r = table.byPID[tid] {             // asked again after a signal interrupted the call
            r.call = call
            table.byPID[tid] = r
            return r.parked ? .value(0) : .pending
        }
        guard let pending = pendingExecs.removeValue(forKey: tid) else { return .error(.EINVAL) }
        let ppid = parent(of: tid)
        guard let pslot = members[ppid]?.slot, colo_recolo_helper_alive(slotHeader(pslot), ppid) != 0 else { return .error(.ESRCH) }
        var kept: [Int32]? = nil              // the descriptors the child keeps, as it listed them
        let count = Int(call.long(3))
        if count >= 0, count <= 4096 {
            guard let raw = GuestMemory(pid: tid).read(call.args[2], count: count * 4) else { return .error(.EFAULT) }
            kept = raw.withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) }
        }
        guard var captured = capture(tid, kept: kept) else { return .error(.ESRCH) }
        let index: Int
        do throws(ColoError) {
            index = try loadInNewSlot(pending, owner: tid, ppid: ppid)
        } catch {
            captured.recolocation.closeAll()
            return .error(error.errno)
        }
        let start = UnsafeMutableRawPointer(slotHeader(index)).advanced(by: Int(COLO_RECOLO_START_OFFSET))
            .assumingMemoryBound(to: colo_recolo_start.self)
        captured.start.mask = call.args[1]
        start.pointee = captured.start
        guard colo_recolo_post(slotHeader(pslot), tid, Int32(index)) == 0 else {
            releaseSlot(index)
            captured.recolocation.closeAll()
            return .error(.EAGAIN)
        }
        table.byPID[tid] = Recolocation(call: call, slot: index, parent: ppid,
                                        fds: captured.recolocation.fds, cwd: captured.recolocation.cwd)
        return .pending
    }

    /// Hand-overs whose parent died before its helper took them: the child
    /// gets EAGAIN and makes a real execve.
    func abandonOrphanedRecolocations() {
        let table = recolocations
        guard !table.byPID.isEmpty else { return }
        for (pid, r) in table.byPID where !r.parked && processIsGone(r.parent) {
            table.byPID[pid] = nil
            answer(r.call, .error(.EAGAIN))
            r.closeAll()
            releaseSlot(r.slot)
        }
    }

    /// PARKED: args[1] = the child's PID.  Let it exit.
    func recolocationParked(_ call: GuestCall) -> CallResult {
        let pid = call.pid(1)
        let table = recolocations
        guard var r = table.byPID[pid] else { return .error(.ESRCH) }
        r.parked = true
        table.byPID[pid] = r
        if answer(r.call, .value(0)) || !processIsGone(pid) { return .value(0) }   // or it asks again
        table.byPID[pid] = nil
        r.closeAll()
        releaseSlot(r.slot)
        return .error(.ESRCH)
    }

    /// START: the process that took the child's PID over asks for its descriptors.
    func startRecolocated(_ call: GuestCall) -> CallResult {
        guard let r = recolocations.byPID.removeValue(forKey: call.pid) else { return .error(.ESRCH) }
        defer { r.closeAll() }
        for f in r.fds where addFD(call, f.fd, at: f.target) < 0 {
            printError("colo: re-colocation of process \(call.pid): descriptor \(f.target) could not be installed")
        }
        let cwd = addFD(call, r.cwd, at: nil)
        adoptExternal(Member(pid: call.pid, slot: r.slot))
        return cwd >= 0 ? .value(Int64(cwd)) : .error(Errno(negated: cwd))
    }

    /// FAILED: args[1] = PID, args[2] = -errno of clone3.
    func recolocationFailed(_ call: GuestCall) -> CallResult {
        let pid = call.pid(1)
        let err = -call.int32(2)
        printError("colo: process \(pid) could not be re-colocated (clone3: \(String(cString: strerror(err))))")
        recolocations.helperMayCreatePIDs[call.pid] = nil     // ask again next time
        if let r = recolocations.byPID.removeValue(forKey: pid) {
            r.closeAll()
            releaseSlot(r.slot)
        }
        return .value(0)
    }

    /// Install the runtime's `fd` into the notifying process, at `target` (or the lowest free number).
    private func addFD(_ call: GuestCall, _ fd: Int32, at target: Int32?) -> Int {
        channel.addFD(id: call.id, fd, at: target)
    }

    /// What the new process must restore, and copies of the child's open
    /// descriptors (those execve keeps) and of its cwd.
    private func capture(_ pid: pid_t, kept: [Int32]?) -> (start: colo_recolo_start, recolocation: Recolocation)? {
        guard let status = readProcBytes("/proc/\(pid)/status") else { return nil }
        // "Key:\tv1\tv2 ..." lines, numbers parsed from the bytes (radix per key)
        var fields = [String: [UInt64]]()
        let wanted: [(String, UInt64)] = [("Umask:", 8), ("Uid:", 10), ("Gid:", 10), ("Groups:", 10), ("SigIgn:", 16)]
        var start = 0
        while start < status.count {
            let end = status[start...].firstIndex(of: 10) ?? status.count
            for (key, radix) in wanted where end - start >= key.utf8.count && status[start..<start + key.utf8.count].elementsEqual(key.utf8) {
                var values = [UInt64](), v: UInt64 = 0, inNumber = false
                for c in status[(start + key.utf8.count)..<end] {
                    let d: UInt64? = c >= 48 && c <= 57 ? UInt64(c - 48) : c >= 97 && c <= 102 ? UInt64(c - 87) : nil
                    if let d, d < radix { v = v * radix + d; inNumber = true }
                    else if inNumber { values.append(v); v = 0; inNumber = false }
                }
                if inNumber { values.append(v) }
                fields[key] = values
            }
            start = end + 1
        }
        let stat = statFields(pid)
        guard stat.count > 5, let uid = fields["Uid:"], let gid = fields["Gid:"], uid.count >= 3, gid.count >= 3 else { return nil }
        var st = colo_recolo_start()
        st.magic = UInt64(COLO_RECOLO_MAGIC)
        st.pid = pid
        st.umask = UInt32(truncatingIfNeeded: fields["Umask:"]?.first ?? 0o022)
        st.uid = (UInt32(truncatingIfNeeded: uid[0]), UInt32(truncatingIfNeeded: uid[1]), UInt32(truncatingIfNeeded: uid[2]))
        st.gid = (UInt32(truncatingIfNeeded: gid[0]), UInt32(truncatingIfNeeded: gid[1]), UInt32(truncatingIfNeeded: gid[2]))
        let groups = (fields["Groups:"] ?? []).map { UInt32(truncatingIfNeeded: $0) }
        st.ngroups = groups.count <= Int(COLO_RECOLO_MAX_GROUPS) ? Int32(groups.count) : -1
        withUnsafeMutableBytes(of: &st.groups) { b in
            for (i, g) in groups.prefix(Int(COLO_RECOLO_MAX_GROUPS)).enumerated() { b.storeBytes(of: g, toByteOffset: i * 4, as: UInt32.self) }
        }
        st.pgid = pid_t(stat[2]) ?? 0
        st.sid = pid_t(stat[3]) ?? 0
        st.foreground = pid_t(stat[5]) == st.pgid ? 1 : 0
        st.ignored = fields["SigIgn:"]?.first ?? 0
        // prlimit(2), or /proc/PID/limits (in resource order) for another
        // user's process (prlimit needs CAP_SYS_RESOURCE in its namespace then).
        var direct = [(UInt64, UInt64)]()
        for i in 0..<16 {
            var rl = rlimit()       // struct rlimit64 on x86-64
            guard withUnsafeMutablePointer(to: &rl, { rawSyscall(Int(SYS_prlimit64), Int(pid), i, 0, Int(bitPattern: $0)) }) == 0 else { break }
            direct.append((UInt64(rl.rlim_cur), UInt64(rl.rlim_max)))
        }
        let limits = direct.count == 16 ? [] : readProcFile("/proc/\(pid)/limits")?.split(separator: "\n").dropFirst().map { Array($0.utf8) } ?? []
        withUnsafeMutableBytes(of: &st.rlim) { b in
            for i in 0..<16 {
                var rl: (UInt64, UInt64) = (UInt64.max, UInt64.max)
                if direct.count == 16 {
                    rl = direct[i]
                } else if i < limits.count, limits[i].count >= 68 {
                    func value(_ r: Range<Int>) -> UInt64 {
                        String(decoding: limits[i][r], as: UTF8.self).split(separator: " ").first.flatMap { UInt64($0) } ?? UInt64.max
                    }
                    rl = (value(26..<47), value(47..<68))
                }
                b.storeBytes(of: rl.0, toByteOffset: i * 16, as: UInt64.self)
                b.storeBytes(of: rl.1, toByteOffset: i * 16 + 8, as: UInt64.self)
            }
        }
        // (not O_PATH: SECCOMP_IOCTL_NOTIF_ADDFD cannot pass such descriptors)
        let cwd = open("/proc/\(pid)/cwd", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard cwd >= 0 else { return nil }
        var fds = [(target: Int32, fd: Int32)]()
        let pidfd = Int32(rawSyscall(Int(SYS_pidfd_open), Int(pid), 0))
        if pidfd >= 0, let kept {
            for n in kept {
                let fd = Int32(rawSyscall(Int(SYS_pidfd_getfd), Int(pidfd), Int(n), 0))
                if fd >= 0 { fds.append((n, fd)) }
            }
        } else if pidfd >= 0, let dir = opendir("/proc/\(pid)/fd") {
            while let e = readdir(dir) {
                let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                guard let n = Int32(name) else { continue }
                // close-on-exec descriptors end with the exec
                if let info = readProcFile("/proc/\(pid)/fdinfo/\(n)"),
                   let flags = info.split(separator: "\n").first(where: { $0.hasPrefix("flags:") })?
                    .split(separator: "\t").last.flatMap({ Int($0, radix: 8) }), flags & Int(O_CLOEXEC) != 0 { continue }
                let fd = Int32(rawSyscall(Int(SYS_pidfd_getfd), Int(pidfd), Int(n), 0))
                if fd >= 0 { fds.append((n, fd)) }
            }
            closedir(dir)
        }
        if pidfd >= 0 { close(pidfd) }
        return (st, Recolocation(call: GuestCall(id: 0, pid: pid, number: 0, instructionPointer: 0, args: []),
                                 slot: -1, parent: 0, fds: fds, cwd: cwd))
    }
}

/// COLO_RECOLOCATION=0 in the environment of `colo` turns re-colocation off
/// (a forked child's exec is then a real execve, as without the privilege).
let recolocationEnabled: Bool = {
    guard let v = getenv("COLO_RECOLOCATION") else { return true }
    return String(cString: v) != "0"
}()

/// May a thread of `pid` create processes with a chosen PID (clone3 set_tid)?
/// CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE, effective.
func mayCreatePIDs(_ pid: pid_t, thread: pid_t) -> Bool {
    guard let s = readFile("/proc/\(pid)/task/\(thread)/status"),
          let line = s.split(separator: "\n").first(where: { $0.hasPrefix("CapEff:") }),
          let caps = UInt64(line.split(separator: "\t").last ?? "", radix: 16) else { return false }
    return caps & (1 << 21) != 0 || caps & (1 << 40) != 0
}

/// Is any process other than `pid` in the process group or session `pid`?
func otherProcessUses(group pid: pid_t) -> Bool {
    guard let dir = opendir("/proc") else { return true }
    defer { closedir(dir) }
    while let e = readdir(dir) {
        let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        guard let p = pid_t(name), p != pid else { continue }
        let f = statFields(p)
        if f.count > 3, pid_t(f[2]) == pid || pid_t(f[3]) == pid { return true }
    }
    return false
}

/// Has the process exited (or is it a zombie)?
func processIsGone(_ pid: pid_t) -> Bool {
    let f = statFields(pid)
    return f.isEmpty || f[0] == "Z" || f[0] == "X"
}

/// A small /proc file (status, limits, fdinfo), read into a stack buffer.
func readProcFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 8192) { buf -> String? in
        var used = 0
        while used < buf.count {
            let n = read(fd, buf.baseAddress! + used, buf.count - used)
            if n <= 0 { break }
            used += n
        }
        return String(decoding: UnsafeBufferPointer(rebasing: buf[..<used]), as: UTF8.self)
    }
}

/// The bytes of a small /proc file.
func readProcBytes(_ path: String) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    return [UInt8](unsafeUninitializedCapacity: 8192) { buf, used in
        used = 0
        while used < buf.count {
            let n = read(fd, buf.baseAddress! + used, buf.count - used)
            if n <= 0 { break }
            used += n
        }
    }
}
