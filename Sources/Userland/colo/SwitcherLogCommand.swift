// `colo switcher-log PID`: the switcher's event log of PID's address space (the ring that `colo sysctl debug.colocation_debug=1` or a running `colo ...
import ArgumentParser
import Glibc
import Observability
import Runtime

/// `colo switcher-log PID`: the switcher's event log of PID's address space (the
/// ring that `colo sysctl debug.colocation_debug=1` or a running `colo trace` fills).
struct SwitcherLogCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "switcher-log",
        abstract: "Print the switcher's event log of an address space (fast cocalls, unborrows, ...).",
        discussion: """
            Prints the events still in the ring (at most the last 1024), one per line in \
            colo trace's format, and with -f goes on printing new ones until interrupted or \
            until the address space ends.  The switcher logs only while \
            debug.colocation_debug is 1 (colo sysctl --pid PID debug.colocation_debug=1) or a \
            colo trace runs.  Reading the ring needs ptrace rights over the address space.
            """)

    @Flag(name: .short, help: "Follow: keep printing new events.")
    var f = false

    @Flag(name: .customLong("json"), help: "One JSON object per line (colo trace's fields).")
    var json = false

    @Argument(help: "A process of the address space.")
    var pid: Int32

    func run() throws {
        guard let space = SpaceDirectory.space(containing: pid) else { fail("no colocated process \(pid)") }
        let rt = space.table.runtimePID
        let log = SwitcherLog(table: space.table, readers: [rt] + space.members.map(\.pid), fromStart: true)
        log.mapFile()
        if log.flags == 0 {
            var note = "colo: switcher-log: logging is off (colo sysctl --pid \(pid) debug.colocation_debug=1)\n"
            note.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
        }
        signal(SIGINT, { _ in switcherLogInterrupted = 1 })
        signal(SIGTERM, { _ in switcherLogInterrupted = 1 })
        while true {
            let events = log.poll()
            if log.readError != 0 {
                fail("cannot read the log of \(pid): \(String(cString: strerror(log.readError)))")
            }
            for e in events { print(json ? log.json(e) : log.text(e)) }
            fflush(nil)
            if !f || switcherLogInterrupted != 0 || kill(rt, 0) != 0 { break }
            usleep(50_000)
        }
    }
}

nonisolated(unsafe) var switcherLogInterrupted: sig_atomic_t = 0
