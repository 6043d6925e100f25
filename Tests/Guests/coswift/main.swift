// coswift - a Swift service and caller written with the Colo module, for the
// kernel tests.  `coswift serve NAME`: register NAME and answer every call
// with the caller's PID followed by the request reversed.  `coswift call NAME
// N`: N checked calls, then the errors of a few bad calls.
import Colo
import Glibc

let args = CommandLine.arguments

/// Print a line at once (stdout is a pipe in the tests).
func say(_ line: String) {
    print(line)
    fflush(nil)
}

func serve(_ name: String) throws(CoError) -> Never {
    let acceptor = try Acceptor(capacity: 256)
    let target = try Colo.register(name)
    say("target=\(target)\npid=\(getpid())\nready")
    try acceptor.serve { request, cookie in
        let pid = cookie.flatMap { try? Colo.callerPID(cookie: $0) } ?? -1
        return withUnsafeBytes(of: Int64(pid).littleEndian) { Array($0) } + request.reversed()
    }
}

func call(_ name: String, _ count: Int) throws(CoError) {
    try Colo.setup(.call)
    let target = try Colo.lookup(name)
    var good = 0
    for i in 0..<count {
        let request = (0..<16).map { UInt8(truncatingIfNeeded: i &+ $0) }
        let reply = try Colo.call(target, request, replyCapacity: 64)
        let pid = reply.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: Int64.self) }
        if reply.count == 24 && pid == Int64(getpid()) && Array(reply.dropFirst(8)) == request.reversed() { good += 1 }
    }
    say("good=\(good)")
    do { _ = try Colo.lookup("no such service") } catch { say("lookup_missing=\(error == .notFound)") }
    do { _ = try Colo.call(Capability(rawValue: 0xdead_beef), [1]) } catch { say("call_forged=\(error == .invalid)") }
    var p: [Int32] = [0, 0]
    guard pipe(&p) == 0 else { throw CoError(.current) }
    let fdcap = try Colo.capability(fromFD: p[1])      // the runtime keeps the file open from now on
    say("fdcap=\(fdcap)")
    let fd = try Colo.fileDescriptor(from: fdcap)
    say("captofd_fd_ok=\(fd > 2 && write(fd, "x", 1) == 1)")
    say("vector=\(Colo.vector().count)")
}

/// `coswift pool N CALLS`: a CoPool of N threads in this process, called
/// through CoPoolClient round-robin and first-free, then stopped.
func pool(_ threads: Int, _ calls: Int) throws(CoError) {
    let p = try CoPool(threads: threads, capacity: 256) { request, call in
        [UInt8(call.member)] + request.map { $0 ^ 0x5a }
    }
    say("pool_members=\(p.members.count) published_is_member0=\(p.members.first == p.target)")
    let rr = try CoPoolClient(p.target, strategy: .roundRobin)
    var good = 0, order = [Int]()
    for i in 0..<calls {
        let request = (0..<7).map { UInt8(truncatingIfNeeded: i &* 3 &+ $0) }
        let reply = try rr.call(request, replyCapacity: 64)
        order.append(CoPoolClient.lastMember)
        // The 7-byte request arrives padded to 8; the 9-byte reply comes back padded to 16.
        if reply.count == 16 && Int(reply[0]) == CoPoolClient.lastMember && Array(reply[1..<9]) == (request + [0]).map({ $0 ^ 0x5a }) { good += 1 }
    }
    say("rr_discovered=\(rr.memberCount) rr_good=\(good) rr_order_ok=\(order == (0..<calls).map { $0 % threads })")
    let ff = try CoPoolClient(members: p.members, strategy: .firstFree)
    var ffGood = 0
    for i in 0..<calls where (try ff.call([UInt8(i & 0x7f)], replyCapacity: 16)).prefix(2) == [0, UInt8(i & 0x7f) ^ 0x5a] { ffGood += 1 }
    say("ff_good=\(ffGood)")
    try p.stop()
    do { _ = try rr.call([1]) } catch { say("after_stop=\(error == .calleeGone)") }
}

do {
    switch args.count > 2 ? args[1] : "" {
    case "pool": try pool(Int(args[2]) ?? 2, args.count > 3 ? Int(args[3]) ?? 30 : 30)
    case "serve": try serve(args[2])
    case "call": try call(args[2], args.count > 3 ? Int(args[3]) ?? 1 : 1)
    default:
        say("usage: coswift serve NAME | coswift call NAME [N]")
        exit(2)
    }
} catch {
    say("error=\(error.errno)")
    exit(1)
}
