// colo --join: the request framing over the runtime's control socket, and the client side.
import Bytes
import CLinux
import Errors
import Glibc

/// A request to start a program in an existing address space, sent by
/// `colo --join` over the runtime's control socket with the client's stdio.
struct JoinRequest {
    var path: ByteString
    var cwd: ByteString
    var argv: [ByteString]
    var envp: [ByteString]
    var fds: [Int32]
}

/// The control socket's framing: each message is a 4-byte length and a
/// payload; a request's payload is NUL-separated strings and carries the
/// client's descriptors 0, 1, 2 (SCM_RIGHTS) with its first byte.
/// Replies are text: "started PID", "error ERRNO MESSAGE", "exit STATUS".
enum JoinWire {
    static func send(_ fd: Int32, _ text: String) {
        _ = sendFrame(fd, Array(text.utf8), fds: [])
    }

    static func receive(_ fd: Int32) -> String? {
        guard let (bytes, _) = receiveFrame(fd) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func sendRequest(_ fd: Int32, _ r: JoinRequest) -> Bool {
        var payload = [UInt8]()
        for s in [r.path, r.cwd, ByteString(String(r.argv.count))] + r.argv + [ByteString(String(r.envp.count))] + r.envp {
            payload += s.nulTerminated
        }
        return sendFrame(fd, payload, fds: r.fds)
    }

    static func receiveRequest(_ fd: Int32) -> JoinRequest? {
        guard let (bytes, fds) = receiveFrame(fd) else { return nil }
        var fields = bytes.split(separator: 0, omittingEmptySubsequences: false).map { ByteString($0) }
        guard fields.last == "" else { fds.forEach { close($0) }; return nil }
        fields.removeLast()
        func take(_ n: Int) -> [ByteString]? {
            guard fields.count >= n else { return nil }
            defer { fields.removeFirst(n) }
            return Array(fields.prefix(n))
        }
        func count(_ s: ByteString) -> Int? { Int(String(decoding: s.bytes, as: UTF8.self)) }
        guard let head = take(3), let argc = count(head[2]), argc >= 1, let argv = take(argc),
              let ec = take(1), let envc = count(ec[0]), envc >= 0, let envp = take(envc), fields.isEmpty else {
            fds.forEach { close($0) }; return nil
        }
        return JoinRequest(path: head[0], cwd: head[1], argv: argv, envp: envp, fds: fds)
    }

    private static func sendFrame(_ fd: Int32, _ payload: [UInt8], fds: [Int32]) -> Bool {
        let frame = withUnsafeBytes(of: UInt32(payload.count).littleEndian) { Array($0) } + payload
        var sent = 0
        while sent < frame.count {
            // The descriptors ride with the first bytes (clinux_send_fds: sendmsg, again after EINTR).
            let attached = sent == 0 ? fds : []
            let n = frame.withUnsafeBytes { buf in
                attached.withUnsafeBufferPointer {
                    clinux_send_fds(fd, buf.baseAddress! + sent, buf.count - sent, $0.baseAddress, Int32(attached.count))
                }
            }
            if n <= 0 { return false }
            sent += n
        }
        return true
    }

    private static func receiveFrame(_ fd: Int32) -> ([UInt8], [Int32])? {
        var header = [UInt8](repeating: 0, count: 4)
        var received = [Int32](repeating: -1, count: 3)
        var count: Int32 = 0
        let n = header.withUnsafeMutableBytes { hb in
            clinux_receive_fds(fd, hb.baseAddress, 4, Int32(MSG_WAITALL), &received, 3, &count)
        }
        let fds = Array(received.prefix(Int(count)))
        guard n == 4 else { fds.forEach { close($0) }; return nil }
        let len = Int(UInt32(littleEndian: header.withUnsafeBytes { $0.load(as: UInt32.self) }))
        guard len <= 4 << 20 else { fds.forEach { close($0) }; return nil }
        var payload = [UInt8](repeating: 0, count: len)
        var got = 0
        while got < len {
            let r = payload.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + got, len - got, 0) }
            if r < 0 && errno == EINTR { continue }
            if r <= 0 { fds.forEach { close($0) }; return nil }
            got += r
        }
        return (payload, fds)
    }
}

/// The process a join client is waiting for, so its signal handler can forward signals.
nonisolated(unsafe) private var joinedPID: pid_t = 0

/// The client side of `colo --join`.
public enum Join {
    /// Start `argv` in the address space of `pid` with this process's stdio, cwd
    /// and environment, forward SIGINT/SIGTERM/SIGHUP/SIGQUIT to it, wait for
    /// it and return its status as a shell reports it.
    public static func run(into pid: pid_t, path: ByteString, argv: [ByteString], envp: [ByteString]) throws(ColoError) -> Int32 {
        guard let space = SpaceDirectory.space(containing: pid) else {
            throw ColoError(.ESRCH, "no colocated process \(pid)")
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .last("socket") }
        defer { close(fd) }
        var addr = unixAddress(SpaceDirectory.socketPath(runtimePID: space.table.runtimePID))
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else { throw .last("cannot reach the runtime of process \(pid)") }
        var cwdBuf = [CChar](repeating: 0, count: Int(PATH_MAX))
        let cwd: ByteString = getcwd(&cwdBuf, cwdBuf.count) != nil ? ByteString(cString: cwdBuf) : "/"
        guard JoinWire.sendRequest(fd, JoinRequest(path: path, cwd: cwd, argv: argv, envp: envp, fds: [0, 1, 2])) else {
            throw .last("cannot send the join request")
        }
        guard let first = JoinWire.receive(fd) else { throw ColoError(.EPIPE, "the runtime closed the connection") }
        let words = first.split(separator: " ", maxSplits: 2).map(String.init)
        if words.first == "error", words.count >= 2 {
            throw ColoError(Int32(words[1]).map { Errno($0) } ?? .EIO, words.count > 2 ? words[2] : "join failed")
        }
        guard words.first == "started", words.count == 2, let child = pid_t(words[1]) else {
            throw ColoError(.EPROTO, "unexpected reply: \(first)")
        }
        joinedPID = child
        for s in [SIGINT, SIGTERM, SIGHUP, SIGQUIT] {
            signal(s) { sig in if joinedPID > 0 { kill(joinedPID, sig) } }
        }
        while true {
            guard let msg = JoinWire.receive(fd) else {
                if errno == EINTR || errno == EAGAIN { continue }
                throw ColoError(.EPIPE, "the runtime went away before process \(child) exited")
            }
            let w = msg.split(separator: " ").map(String.init)
            if w.count == 2, w[0] == "exit", let st = Int32(w[1]) { return st }
        }
    }
}
