// CoPool: service pools (copool(3)) for Swift programs.
import Glibc
import GuestAPI

/// What a pool's handler knows about the call it serves.
public struct PoolCall: Sendable {
    /// The member (accepting thread, 0 ..< threads) that took the call.
    public let member: Int
    /// The caller's cookie (coaccept(2)); `Colo.callerPID()` works in the handler too.
    public let cookie: Capability?
}

/// A service pool (copool(3)): `threads` accepting threads behind one
/// published target, member 0's (`target`), which passes through capv,
/// coregister and SCM_CAPS like any capability.  Callers open it with
/// `CoPoolClient`, which asks member 0 for the other members once and then
/// spreads calls over them.  Plain callers (a single cocall to `target`) are
/// served by member 0.
///
/// The handler runs as the member that took the call (with the switcher, the
/// caller's thread borrows its context), so up to
/// `threads` calls run at once: it must be thread-safe.
public final class CoPool: @unchecked Sendable {
    /// Serve one call: read the request, write the reply into the buffer
    /// given and return its length (rounded up to 8 with zeros; negative: an
    /// empty reply).
    public typealias Handler = @Sendable (_ request: UnsafeRawBufferPointer, _ reply: UnsafeMutableRawBufferPointer,
                                          _ call: PoolCall) -> Int

    private final class Box: @unchecked Sendable {
        let handler: Handler
        init(_ h: @escaping Handler) { handler = h }
    }

    private let pool: OpaquePointer
    private let box: Unmanaged<Box>
    private var stopped = false
    private var lock = pthread_mutex_t()

    /// Start the pool; member 0 is coregistered as `name` unless it is nil.
    /// `capacity`: the largest request and reply, in bytes.
    public init(threads: Int, name: String? = nil, capacity: Int = 4096, slow: Bool = false,
                handler: @escaping Handler) throws(CoError) {
        let box = Unmanaged.passRetained(Box(handler))
        let entry: @convention(c) (UnsafeMutableRawPointer?, Int32, UnsafeMutableRawPointer?, UnsafeRawPointer?,
                                   Int, UnsafeMutableRawPointer?, Int) -> Int = { arg, member, cookie, req, reqlen, reply, cap in
            let h = Unmanaged<Box>.fromOpaque(arg!).takeUnretainedValue().handler
            return h(UnsafeRawBufferPointer(start: req, count: reqlen),
                     UnsafeMutableRawBufferPointer(start: reply, count: cap),
                     PoolCall(member: Int(member), cookie: Capability(cookie)))
        }
        var p: OpaquePointer? = nil
        let flags: Int32 = slow ? COPOOL_SLOW : 0
        let r: Int32
        if let name {
            r = name.withCString { copool_create(&p, $0, Int32(threads), capacity, entry, box.toOpaque(), flags) }
        } else {
            r = copool_create(&p, nil, Int32(threads), capacity, entry, box.toOpaque(), flags)
        }
        guard r == 0, let p else {
            let e = CoError.last
            box.release()
            throw e
        }
        pool = p
        self.box = box
        pthread_mutex_init(&lock, nil)
    }

    /// A pool whose handler works on byte arrays (replies at most `capacity`
    /// bytes; longer ones are cut).
    public convenience init(threads: Int, name: String? = nil, capacity: Int = 4096, slow: Bool = false,
                            bytes handler: @escaping @Sendable ([UInt8], PoolCall) -> [UInt8]) throws(CoError) {
        try self.init(threads: threads, name: name, capacity: capacity, slow: slow) { request, reply, call in
            let out = handler(Array(request), call)
            let n = Swift.min(out.count, reply.count)
            reply.copyBytes(from: out[0..<n])
            return n
        }
    }

    /// The published target: member 0's.
    public var target: Capability { Capability(copool_target(pool))! }

    /// Number of accepting threads.
    public var threadCount: Int { Int(copool_nthreads(pool)) }

    /// Every member's target, member 0 first (for a capv range, say).
    public var members: [Capability] {
        var targets = [UnsafeMutableRawPointer?](repeating: nil, count: Int(COPOOL_MAX_THREADS))
        let n = Int(copool_members(pool, &targets, COPOOL_MAX_THREADS))
        return targets.prefix(n).compactMap { Capability($0) }
    }

    /// Stop every member (after the calls queued before) and free the pool;
    /// later calls to its targets fail with ENOLINK.  Not from a handler.
    public func stop() throws(CoError) {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        if stopped { return }
        guard copool_destroy(pool) == 0 else { throw .last }
        stopped = true
        box.release()
    }

    deinit {
        try? stop()
        pthread_mutex_destroy(&lock)
    }
}

/// A caller's handle on a service pool: each call goes to one member, chosen
/// by the strategy; every call is delivered and answered once (or fails).
public final class CoPoolClient: @unchecked Sendable {
    /// How calls are spread over the members.
    public enum Strategy: Int32, Sendable {
        /// Each calling thread keeps one member (the k-th thread: member k mod N).
        case affinity = 1
        /// Call i of the handle goes to member i mod N.
        case roundRobin = 2
        /// The first member with no call of this handle in progress (else the least busy).
        case firstFree = 3
    }

    private let client: OpaquePointer

    /// Open the pool published as `target` (one discovery call; a target
    /// that is not a pool is used as a pool of one).
    public init(_ target: Capability, strategy: Strategy = .roundRobin, slow: Bool = false) throws(CoError) {
        var c: OpaquePointer? = nil
        guard copool_open(&c, UnsafeMutableRawPointer(bitPattern: target.rawValue), strategy.rawValue,
                          slow ? COPOOL_SLOW : 0) == 0, let c else { throw .last }
        client = c
    }

    /// A handle on the given members (no discovery call).
    public init(members: [Capability], strategy: Strategy = .roundRobin, slow: Bool = false) throws(CoError) {
        var c: OpaquePointer? = nil
        let targets = members.map { UnsafeMutableRawPointer(bitPattern: $0.rawValue) }
        guard copool_open_members(&c, targets, Int32(targets.count), strategy.rawValue,
                                  slow ? COPOOL_SLOW : 0) == 0, let c else { throw .last }
        client = c
    }

    deinit { copool_close(client) }

    /// Number of members calls are spread over.
    public var memberCount: Int { Int(copool_client_nthreads(client)) }

    /// The member the calling thread's last call went to (-1 if none).
    public static var lastMember: Int { Int(copool_lastmember()) }

    /// One call with raw buffers (8-byte aligned, lengths multiples of 8):
    /// the number of bytes received into `reply`.
    public func call(_ request: UnsafeRawBufferPointer, into reply: UnsafeMutableRawBufferPointer) throws(CoError) -> Int {
        let n = copool_call(client, request.baseAddress, request.count, reply.baseAddress, reply.count)
        guard n >= 0 else { throw .last }
        return n
    }

    /// One call: send `request` (zero-padded to a multiple of 8), return the
    /// reply (at most `replyCapacity` bytes, padded to a multiple of 8).
    public func call(_ request: [UInt8], replyCapacity: Int = 4096) throws(CoError) -> [UInt8] {
        let out = AlignedBuffer(capacity: request.count), input = AlignedBuffer(capacity: replyCapacity)
        defer { out.free(); input.free() }
        let n = out.load(request)
        let received = try call(UnsafeRawBufferPointer(rebasing: out.base[0..<n]), into: input.base)
        return input.bytes(received)
    }
}
