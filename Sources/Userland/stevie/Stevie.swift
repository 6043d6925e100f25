// stevie: the smallest example of coaccept(2) and cocall(2), between two threads of one process (CheriBSD's usr.bin/stevie).
import CoHelpers
import CoTools
import Glibc
import GuestAPI

/// stevie: the smallest example of coaccept(2) and cocall(2), between two
/// threads of one process (CheriBSD's usr.bin/stevie).  With processes it
/// works the same, except that the target must be handed over (capv(7)).

@main
enum Stevie {
    /// The target of the service thread, set by coregister(2) (in plain
    /// memory: a static variable's accesses from two threads would trip
    /// Swift's exclusivity checks).
    nonisolated(unsafe) static let target: UnsafeMutablePointer<UnsafeMutableRawPointer?> = {
        let p = UnsafeMutablePointer<UnsafeMutableRawPointer?>.allocate(capacity: 1)
        p.pointee = nil
        return p
    }()

    /// The service thread: cosetup, coregister, then bump a counter per call.
    static func service() {
        // A capability-sized integer: buffers must be capability-aligned.
        let buf = UnsafeMutablePointer<Int>.allocate(capacity: 1)
        buf.pointee = 0
        let e = cosetup(COSETUP_COACCEPT)
        if e != 0 { Diag.err(1, "cosetup", errno: e) }
        if coregister(nil, target) != 0 { Diag.err(1, "coregister") }
        while true {
            // Send back the response, if any, then wait for the next caller.
            if coaccept(nil, buf, 8, buf, 8) < 0 { Diag.err(1, "cocall") }
            print("accepted, counter is \(Int32(truncatingIfNeeded: buf.pointee))")
            buf.pointee += 1
        }
    }

    /// Create the thread that waits in coaccept(2).  (Not from main(), which
    /// is main-actor isolated: a C thread entered through a closure formed
    /// there would fail Swift's dynamic isolation check.)
    static func startService() {
        var thread = pthread_t()
        if pthread_create(&thread, nil, { _ in Stevie.service(); return nil }, nil) != 0 { Diag.err(1, "pthread_create") }
    }

    static func main() {
        Diag.setProgname(CommandLine.arguments.first ?? "stevie")
        Colocation.ensure()
        startService()
        // Give the service thread a moment to start coaccepting (otherwise
        // cocall might wait for it); here also until it has its target.
        usleep(1000)
        while target.pointee == nil { usleep(1000) }
        let e = cosetup(COSETUP_COCALL)
        if e != 0 { Diag.err(1, "cosetup", errno: e) }
        let buf = UnsafeMutablePointer<Int>.allocate(capacity: 1)
        buf.pointee = 0
        for _ in 0..<3 {
            print("calling \(capText(target.pointee))...")
            if cocall(target.pointee, buf, 8, buf, 8) < 0 { Diag.err(1, "cocall") }
            print("returned, counter is \(Int32(truncatingIfNeeded: buf.pointee))")
        }
        cotool_flush_stdout()
        exit(0)
    }
}
