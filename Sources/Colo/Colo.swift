// Colo: the guest API (<colo.h>) for Swift programs: typed errors and byte-array calls.
@_exported import Errors
import Glibc
import GuestAPI

/// The errno of a failed colocation call (see cocall(2), coregister(2) ...).
public struct CoError: Error, Equatable, Sendable, CustomStringConvertible {
    public let errno: Errno
    public init(_ errno: Errno) { self.errno = errno }

    /// The callee has not called coaccept yet.
    public static let notAccepting = CoError(.EAGAIN)
    /// The callee is gone (it exited).
    public static let calleeGone = CoError(.ENOLINK)
    /// Bad target, buffer, or no cosetup.
    public static let invalid = CoError(.EINVAL)
    /// A buffer lies outside the address space.
    public static let fault = CoError(.EFAULT)
    /// A signal interrupted the call.
    public static let interrupted = CoError(.EINTR)
    /// No such name (colookup), or no caller being served (cogetpid).
    public static let notFound = CoError(.ESRCH)
    /// The name is registered already.
    public static let exists = CoError(.EEXIST)
    /// Not in a colocated address space (or colookup is switched off).
    public static let notColocated = CoError(.ENOSYS)

    public var description: String { errno.description }

    /// The error of a C call that returned -1 with errno set.
    static var last: CoError { CoError(.current) }
}

/// A capability: an opaque, pointer-sized value minted by the runtime (a
/// target to call, an fd capability, a caller's cookie ...).
public struct Capability: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt
    public init(rawValue: UInt) { self.rawValue = rawValue }

    init?(_ pointer: UnsafeMutableRawPointer?) {
        guard let p = pointer else { return nil }
        rawValue = UInt(bitPattern: p)
    }

    var pointer: UnsafeMutableRawPointer? { UnsafeMutableRawPointer(bitPattern: rawValue) }

    /// As `capv -c` prints it, e.g. `0xa4... [target] (sealed)`.
    public var description: String {
        var buf = [CChar](repeating: 0, count: 96)
        _ = colo_capfmt(&buf, UInt(buf.count), UnsafeRawPointer(bitPattern: rawValue))
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// An 8-byte aligned buffer: cocall and coaccept want buffers and lengths
/// that are multiples of the capability size.
struct AlignedBuffer {
    let base: UnsafeMutableRawBufferPointer

    init(capacity: Int) {
        base = .allocate(byteCount: Colo.padded(Swift.max(capacity, 8)), alignment: 8)
        base.initializeMemory(as: UInt8.self, repeating: 0)
    }

    /// Copy `bytes` in, zero-padded to a multiple of 8; the padded length.
    func load(_ bytes: [UInt8]) -> Int {
        precondition(bytes.count <= base.count, "message larger than the buffer")
        let n = Colo.padded(bytes.count)
        base.copyBytes(from: bytes)
        for i in bytes.count..<n { base[i] = 0 }
        return n
    }

    func bytes(_ count: Int) -> [UInt8] { Array(base.prefix(count)) }

    func free() { base.deallocate() }
}

/// CheriBSD's colocation calls for Swift programs run by colo(1).
///
/// Messages travel as bytes padded with zeros to a multiple of 8 (the
/// runtime's alignment rule), so a reply of 5 bytes arrives as 8: carry the
/// length inside the message, as <capv.h> does, where it matters.
public enum Colo {
    /// Round up to the alignment cocall/coaccept require.
    static func padded(_ n: Int) -> Int { (n + 7) & ~7 }

    /// What a thread sets itself up for (cosetup(2)).
    public enum Role: Int32, Sendable { case call = 0, accept = 1 }

    /// cosetup(2) for the calling thread.
    public static func setup(_ role: Role) throws(CoError) {
        let r = cosetup(role.rawValue)
        if r == -1 { throw .last }
        if r != 0 { throw CoError(Errno(r)) }
    }

    /// coregister(2): the capability for calling this thread, published as
    /// `name` unless it is nil.
    public static func register(_ name: String? = nil) throws(CoError) -> Capability {
        var cap: UnsafeMutableRawPointer? = nil
        let r: Int32
        if let name { r = coregister(name, &cap) } else { r = coregister(nil, &cap) }
        guard r == 0, let c = Capability(cap) else { throw .last }
        return c
    }

    /// colookup(2).
    public static func lookup(_ name: String) throws(CoError) -> Capability {
        var cap: UnsafeMutableRawPointer? = nil
        guard colookup(name, &cap) == 0, let c = Capability(cap) else { throw .last }
        return c
    }

    /// cogetpid(2): the PID of the caller this thread is serving.
    public static func callerPID() throws(CoError) -> pid_t {
        var pid: pid_t = 0
        guard cogetpid(&pid) == 0 else { throw .last }
        return pid
    }

    /// cocachedpid(3): the PID of the caller identified by `cookie`.
    public static func callerPID(cookie: Capability) throws(CoError) -> pid_t {
        var pid: pid_t = 0
        guard cocachedpid(&pid, cookie.pointer) == 0 else { throw .last }
        return pid
    }

    /// cocall(2) with raw buffers (8-byte aligned, lengths multiples of 8):
    /// the number of bytes received into `reply`.
    public static func call(_ target: Capability, _ request: UnsafeRawBufferPointer,
                            into reply: UnsafeMutableRawBufferPointer) throws(CoError) -> Int {
        let n = cocall(target.pointer, request.baseAddress, request.count, reply.baseAddress, reply.count)
        guard n >= 0 else { throw .last }
        return n
    }

    /// cocall(2): send `request`, return the callee's reply (at most
    /// `replyCapacity` bytes, padded to a multiple of 8).
    public static func call(_ target: Capability, _ request: [UInt8], replyCapacity: Int = 4096) throws(CoError) -> [UInt8] {
        let out = AlignedBuffer(capacity: request.count), input = AlignedBuffer(capacity: replyCapacity)
        defer { out.free(); input.free() }
        let n = out.load(request)
        let received = try call(target, UnsafeRawBufferPointer(rebasing: out.base[0..<n]), into: input.base)
        return input.bytes(received)
    }

    /// capvfetch(3): the capability vector this process was started with.
    public static func vector() -> [Capability?] {
        var capc: Int32 = 0
        var capv: UnsafeMutablePointer<UnsafeMutableRawPointer?>? = nil
        capvfetch(&capc, &capv)
        guard let capv else { return [] }
        return (0..<Int(capc)).map { Capability(capv[$0]) }
    }

    /// capfromfd(2): a capability for the open file behind `fd`.
    public static func capability(fromFD fd: Int32) throws(CoError) -> Capability {
        var cap: UnsafeMutableRawPointer? = nil
        guard capfromfd(&cap, fd) == 0, let c = Capability(cap) else { throw .last }
        return c
    }

    /// captofd(2): a new descriptor for the open file an fd capability holds.
    public static func fileDescriptor(from cap: Capability) throws(CoError) -> Int32 {
        var fd: Int32 = -1
        guard captofd(cap.pointer, &fd) == 0 else { throw .last }
        return fd
    }
}

/// The accepting side of one thread (cosetup(COSETUP_COACCEPT) and a
/// coaccept(2) loop): each `accept` answers the previous caller and waits for
/// the next.
public final class Acceptor {
    private let input: AlignedBuffer
    private let output: AlignedBuffer
    private var outputLength = 0

    /// Set the calling thread up to accept calls of at most `capacity` bytes.
    public init(capacity: Int = 4096) throws(CoError) {
        try Colo.setup(.accept)
        input = AlignedBuffer(capacity: capacity)
        output = AlignedBuffer(capacity: capacity)
    }

    deinit { input.free(); output.free() }

    /// Send `reply` to the previous caller (if any), then wait for the next
    /// call: its request and its cookie.  After `CoError.interrupted`, call
    /// again with the same reply (it is delivered at most once).
    public func accept(reply: [UInt8] = []) throws(CoError) -> (request: [UInt8], cookie: Capability?) {
        outputLength = output.load(reply)
        var cookie: UnsafeMutableRawPointer? = nil
        let n = coaccept(&cookie, output.base.baseAddress, outputLength, input.base.baseAddress, input.base.count)
        guard n >= 0 else { throw .last }
        return (input.bytes(n), Capability(cookie))
    }

    /// Serve forever: each request's reply is `handler(request, cookie)`.
    /// Throws only if coaccept fails with something other than EINTR (after
    /// which the same reply is offered again: it reaches its caller once).
    public func serve(_ handler: ([UInt8], Capability?) -> [UInt8]) throws(CoError) -> Never {
        var reply = [UInt8]()
        while true {
            do {
                let (request, cookie) = try accept(reply: reply)
                reply = handler(request, cookie)
            } catch where error == .interrupted {
                continue
            }
        }
    }
}
