// Copong.swift - copong(1): answer cocalls under a coregistered name.
import ArgumentParser
import CoTools
import Glibc
import GuestAPI

/// copong(1): the responder of coping(1) and syscall_timing: coregister a
/// name, echo every call back, and pass each one on to the targets.
@main
struct Copong: BSDTool {
    static let configuration = CommandConfiguration(
        commandName: "copong",
        abstract: "Answer cocalls under a coregistered name.",
        usage: usageText)
    static let optstring = "ks:vx"
    static let usageLines = ["copong [-s time] [-kxv] service-name [target-name ...]"]

    @Flag(name: .customShort("k"), help: "Use coaccept_slow(2) and cocall_slow(2).") var slow = false
    @Option(name: .customShort("s"), parsing: .unconditional, help: "Seconds to sleep after each call.") var interval: String?
    @Flag(name: .customShort("v"), help: "Verbose.") var verbose = false
    @Flag(name: .customShort("x"), help: "abort(3) after the first call.") var crash = false
    @Argument(parsing: .postTerminator, help: "service-name [target-name ...]") var names: [String] = []

    static func main() { bsdMain() }

    func say(_ s: String) { if verbose { Diag.stderr("\(Diag.progname): \(names[0]): \(s)\n") } }

    func run() {
        let dt = interval.map(seconds) ?? 0
        guard let service = names.first else { Self.usage() }
        // The options as constants: every read of an ArgumentParser property
        // wrapper looks up generic metadata (tens of ns), too much per call.
        let verbose = self.verbose, slow = self.slow, crash = self.crash
        Colocation.ensure()
        say("setting up...")
        Service.setupAcceptor()
        // The targets' capabilities in a C array (names[k + 1] is target k's).
        let targets = UnsafeMutableBufferPointer<Capability?>.allocate(capacity: names.count - 1)
        if names.count > 1 {
            say("setting up the caller side...")
            Service.setupCaller()
            for k in 0..<targets.count {
                say("colooking up \"\(names[k + 1])\"...")
                targets[k] = lookupOrExit(names[k + 1])
            }
        }
        say("coregistering...")
        if coregister(service, nil) != 0 { Diag.err(1, "coregister") }
        // char inout[BUFSIZ]: the whole buffer goes back to the caller (the
        // switcher copies no more than the caller takes).  Raw memory that
        // lives as long as the loop, which never ends.
        let size = Int(BUFSIZ)
        let raw = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: size)
        var cookie: UnsafeMutableRawPointer? = nil
        var outlen = 0
        while true {
            if verbose { say("coaccepting...") }
            let n = slow ? coaccept_slow(&cookie, raw, outlen, raw, size) : coaccept(&cookie, raw, outlen, raw, size)
            if n < 0 { Diag.warn("coaccept"); outlen = 0; continue }
            outlen = size
            if verbose {
                print("\(Diag.progname): \(service): coaccepted, pid \(getpid()), caller pid \(callerPID(cookie)), "
                      + "cookie \(hex(cookie))")
            }
            for k in 0..<targets.count {
                if verbose { say("cocalling \"\(names[k + 1])\"...") }
                let r = slow ? cocall_slow(targets[k], raw, size, raw, size) : cocall(targets[k], raw, size, raw, size)
                if r < 0 { Diag.warn("cocall") }
                if verbose { print("\(Diag.progname): \(service): returned from \"\(names[k + 1])\", pid \(getpid())") }
            }
            if dt > 0 { pause(dt) }
            if crash { abort() }
        }
    }

    /// The cookie as "%#lx" (CheriBSD prints the two halves of a 128-bit
    /// capability; cookies here are 64 bits).
    func hex(_ p: UnsafeMutableRawPointer?) -> String { "0x" + String(UInt(bitPattern: p), radix: 16) }
}
