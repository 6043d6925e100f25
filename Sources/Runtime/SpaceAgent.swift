// Agent: what only a thread of an address space's mm can do, done for the runtime (which lives outside it) by the in-mm agent.
import CLinux
import Errors
import Glibc
import GuestShim
import Loader
import Switcher

/// The in-mm agent (agent.c): a process of the address space's mm, forked from the runtime
/// before the address space had members, that carries out the runtime's requests.  The
/// runtime's own mm holds none of the guests' memory but the shared structures.
///
/// The operations are those the runtime cannot do with process_vm_writev or shared memory: map
/// and unmap, start a member, retire a thread's SCB (which wakes its waiters with futexes keyed
/// by that mm).  A fork child that becomes an address space starts its agent itself (space.c):
/// the runtime adopts it (`init(forkChild:)`, `adopt`).
final class Agent {
    private(set) var pid: pid_t
    private var socket: Int32
    /// The listener of the address space's seccomp filter, which the agent installed on itself
    /// (-1 for a fork child's, which inherited its filter: the listener is another runtime's).
    let listener: Int32
    /// Are the members it starts the runtime's children (CLONE_PARENT)?  A fork child's agent
    /// starts them as its own, reaped as they exit (the runtime follows them with pidfds).
    let startsRuntimeChildren: Bool
    /// A process whose mm is the address space's (for kcmp KCMP_VM, process_vm_readv).
    var mmProcess: pid_t { pid }

    /// Fork the agent.  Call once the shared structures are mapped (MAP_SHARED: the agent's
    /// copies are the same memory) and the seccomp program is built.
    init() throws(ColoError) {
        var fds: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
            throw .last("socketpair")
        }
        let drop = Self.runtimeOnlyMappings()
        var start = colo_agent_start()
        start.sock = fds[1]
        clinux_rseq_area(&start.rseq_area, &start.rseq_len, &start.rseq_sig)
        let pid = drop.withUnsafeBufferPointer { ranges -> Int32 in
            start.unmap = ranges.baseAddress
            start.nunmap = UInt32(ranges.count / 2)
            return colo_agent_start(&start)
        }
        close(fds[1])
        guard pid > 0 else { close(fds[0]); throw ColoError(Errno(negated: pid), "cannot start the address space's agent") }
        let end = fds[0]
        var first = colo_agent_reply()
        var fd: Int32 = -1
        let n = withUnsafeMutableBytes(of: &first) { clinux_receive_fd(end, $0.baseAddress, $0.count, &fd) }
        guard n == MemoryLayout<colo_agent_reply>.size, first.result >= 0, fd >= 0 else {
            close(end)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            let e = first.result < 0 ? Errno(negated: first.result) : .EPROTO
            throw ColoError(e, "cannot install the seccomp filter: \(e)")
        }
        self.pid = pid
        socket = end
        listener = fd
        startsRuntimeChildren = true
    }

    /// The agent the fork child `child` is about to start in its mm (space.c); until it is
    /// adopted, the child stands for the mm, and requests fail (EPIPE).
    init(forkChild child: pid_t) {
        pid = child
        socket = -1
        listener = -1
        startsRuntimeChildren = false
    }

    /// Adopt the fork child's agent on `socket` (the runtime's end): its first message is its
    /// PID, which must be a process of the child's mm.
    func adopt(socket end: Int32) throws(ColoError) {
        var p = pollfd(fd: end, events: Int16(POLLIN), revents: 0)
        var first = colo_agent_reply()
        var none: Int32 = -1
        guard poll(&p, 1, 10_000) == 1,
              withUnsafeMutableBytes(of: &first, { clinux_receive_fd(end, $0.baseAddress, $0.count, &none) }) == MemoryLayout<colo_agent_reply>.size,
              first.result > 0, first.result <= Int64(Int32.max), shareAddressSpace(pid_t(first.result), pid) else {
            if none >= 0 { close(none) }
            throw ColoError(.EPROTO, "the fork child's agent did not start")
        }
        pid = pid_t(first.result)
        socket = end
    }

    deinit { close(socket); close(listener) }

    /// The ranges of this process's mappings that the agent's mm does not need: everything but
    /// the runtime's own executable (the SIGSYS handler, the switcher and the agent are in it),
    /// the kernel's vDSO pages and stack, and the colocation structures above 14 TiB.
    private static func runtimeOnlyMappings() -> [UInt64] {
        guard let maps = readFileBytes("/proc/self/maps") else { return [] }
        var exe = [UInt8](repeating: 0, count: Int(PATH_MAX))
        let n = readlink("/proc/self/exe", &exe, exe.count)
        let exePath = n > 0 ? Array(exe.prefix(n)) : []
        var out = [UInt64]()
        var exeEnd: UInt64 = 0
        for line in maps.split(separator: UInt8(ascii: "\n")) {
            let fields = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: true)
            guard let range = fields.first else { continue }
            let bounds = range.split(separator: UInt8(ascii: "-"))
            guard bounds.count == 2, let lo = UInt64(String(decoding: bounds[0], as: UTF8.self), radix: 16),
                  let hi = UInt64(String(decoding: bounds[1], as: UTF8.self), radix: 16) else { continue }
            let path = fields.count >= 6 ? Array(line[fields[5].startIndex...]) : []
            if lo >= UInt64(COLO_RUNTIME_AREA_BASE) && hi <= Layout.regionEnd { continue }
            if path == exePath { exeEnd = hi; continue }
            // The executable's bss beyond its file: the anonymous mapping right after it.
            if path.isEmpty && lo == exeEnd { continue }
            if path.starts(with: Array("[v".utf8)) || path == Array("[stack]".utf8) { continue }
            out += [lo, hi]
        }
        return out
    }

    /// Steps that need no answer of their own (a header to map, a range to unmap), with the
    /// descriptors they name: sent with the next request that needs one, in order, so that a
    /// start or an exec costs one round trip to the agent (flush() sends them when idle).
    private var queued = [colo_agent_step]()
    private var queuedFDs = [Int32]()

    private func step(_ op: colo_agent_op, slot: Int = -1, addr: UInt64 = 0, len: UInt64 = 0) -> colo_agent_step {
        var s = colo_agent_step()
        s.op = op.rawValue
        s.slot = Int32(slot)
        s.addr = addr
        s.len = len
        return s
    }

    /// The queued steps and `steps` as one request: the reply of the last one, or of the first
    /// that failed (EPIPE if the agent is gone), and the descriptor it came with (or -1).
    private func run(_ steps: [colo_agent_step], fds: [Int32] = [], received: UnsafeMutablePointer<Int32>? = nil) -> colo_agent_reply {
        let all = queued + steps
        var names = [Int32]()
        for fd in queuedFDs + fds where !names.contains(fd) { names.append(fd) }
        queued = []
        queuedFDs = []
        var reply = colo_agent_reply()
        guard all.count <= Int(COLO_AGENT_MAX_STEPS), names.count <= Int(COLO_AGENT_MAX_FDS) else {
            reply.result = -Int64(E2BIG)
            return reply
        }
        var rq = colo_agent_request()
        rq.nsteps = UInt32(all.count)
        rq.nfds = UInt32(names.count)
        withUnsafeMutableBytes(of: &rq.fds) { raw in
            for (i, fd) in names.enumerated() { raw.storeBytes(of: fd, toByteOffset: i * 4, as: Int32.self) }
        }
        withUnsafeMutableBytes(of: &rq.steps) { raw in
            for (i, s) in all.enumerated() { raw.storeBytes(of: s, toByteOffset: i * MemoryLayout<colo_agent_step>.stride, as: colo_agent_step.self) }
        }
        let sent = withUnsafeBytes(of: &rq) { b in names.withUnsafeBufferPointer { clinux_send_fds(socket, b.baseAddress, b.count, $0.baseAddress, Int32(names.count)) } }
        guard sent == MemoryLayout<colo_agent_request>.size else { reply.result = Int64(sent < 0 ? sent : -Int(EPIPE)); return reply }
        var fd: Int32 = -1
        let n = withUnsafeMutableBytes(of: &reply) { clinux_receive_fd(socket, $0.baseAddress, $0.count, &fd) }
        if let received { received.pointee = fd } else if fd >= 0 { close(fd) }
        if n != MemoryLayout<colo_agent_reply>.size { reply.result = -Int64(EPIPE); reply.failed_step = UInt32(all.count) }
        return reply
    }

    /// Carry out what was left for later (unmaps and header mappings), before the runtime waits.
    func flush() {
        if !queued.isEmpty { _ = run([]) }
    }

    /// Apply a mapping plan in the address space's mm; `late`: possibly only with the next
    /// request that needs an answer (the start of the program it maps), whose error it is then.
    func apply(_ plan: MappingPlan, late: Bool) throws(LoadError) {
        let descriptors = Array(plan.descriptors)
        // One plan at a time in the staging area: one queued already goes first.
        if queued.contains(where: { $0.op == COLO_AGENT_APPLY.rawValue }) { flush() }
        try plan.apply { bytes in
            let staging = UInt64(COLO_AGENT_STAGING_ADDR) + UInt64(COLO_AGENT_STACK_SIZE)
            guard UInt64(bytes.count) <= UInt64(COLO_AGENT_STAGING_SIZE - COLO_AGENT_STACK_SIZE) else { return (-Int(E2BIG), UInt32.max) }
            guard GuestMemory(pid: pid).write(bytes, at: staging) else { return (-Int(EFAULT), UInt32.max) }
            if late {
                queued.append(step(COLO_AGENT_APPLY, len: UInt64(bytes.count)))
                queuedFDs += descriptors
                return (0, 0)
            }
            let applyStep = UInt32(queued.count)
            let r = run([step(COLO_AGENT_APPLY, len: UInt64(bytes.count))], fds: descriptors)
            // A queued step that failed (a header's mapping) is no operation of the plan's.
            return (Int(r.result), r.result < 0 && r.failed_step == applyStep ? r.failed_op : UInt32.max)
        }
    }

    /// Map slot `index`'s header (the header file's block `index`, shared with the runtime) at
    /// its slot.
    func mapHeader(_ index: Int, file: Int32) throws(ColoError) {
        queued.append(step(COLO_AGENT_HEADER, slot: index, addr: UInt64(UInt32(bitPattern: file))))
        queuedFDs.append(file)
    }

    /// Unmap [address, address+length) of the slot region.
    func unmap(_ address: UInt64, _ length: UInt64) {
        queued.append(step(COLO_AGENT_UNMAP, addr: address, len: length))
    }

    /// Start the program set up in slot `index`; `stdio` are the runtime's descriptors its
    /// header names (in header order).  Its PID, and a pidfd of it from a fork child's agent
    /// (which reaps it: the pidfd still names it then), else -1.
    func spawn(slot index: Int, stdio: [Int32]) throws(ColoError) -> (pid: pid_t, pidfd: Int32) {
        let spawnStep = UInt32(queued.count)
        var pidfd: Int32 = -1
        let r = run([step(COLO_AGENT_SPAWN, slot: index)], fds: stdio, received: &pidfd)
        guard r.result > 0 else {
            if pidfd >= 0 { close(pidfd) }
            let e = r.result < 0 ? Errno(negated: r.result) : .EPROTO
            let what = r.failed_step == spawnStep ? "clone" : "cannot map the program into slot \(index)"
            throw ColoError(e, "\(what): \(e)")
        }
        return (pid_t(r.result), pidfd)
    }

    /// colo_scb_retire of an SCB.
    func retire(_ scb: OpaquePointer) {
        _ = run([step(COLO_AGENT_RETIRE, addr: UInt64(UInt(bitPattern: UnsafeRawPointer(scb))))])
    }
}
