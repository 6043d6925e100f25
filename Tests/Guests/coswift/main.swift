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
    guard pipe(&p) == 0 else { throw CoError(Glibc.errno) }
    let fdcap = try Colo.capability(fromFD: p[1])      // the runtime keeps the file open from now on
    say("fdcap=\(fdcap)")
    let fd = try Colo.fileDescriptor(from: fdcap)
    say("captofd_fd_ok=\(fd > 2 && write(fd, "x", 1) == 1)")
    say("vector=\(Colo.vector().count)")
}

do {
    switch args.count > 2 ? args[1] : "" {
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
