// dispatch(1): replace the switcher of a new address space and run a command there.
import ArgumentParser
import CoHelpers
import CoTools
import Glibc
import GuestAPI

/// dispatch(1): replace the switcher of a new address space and run a
/// command there.  Taking the switcher over (cosetup(COSETUP_TAKEOVER))
/// needs PRIV_KMEM_WRITE on CheriBSD; here there is no replaceable switcher,
/// so the runtime refuses it to everybody with EPERM and dispatch fails.
@main
struct Dispatch: BSDTool {
    static let configuration = CommandConfiguration(
        commandName: "dispatch",
        abstract: "Run a command in a new address space with a replacement switcher (refused here).",
        usage: usageText)
    static let optstring = "Cv"
    static let usageLines = ["dispatch [-Cv] command [args ...]"]

    @Flag(name: .customShort("C"), help: "Do not enter capability mode.") var noCapsicum = false
    @Flag(name: .customShort("v"), help: "Verbose.") var verbose = false
    @Argument(parsing: .postTerminator, help: "command [args ...]") var command: [String] = []

    static func main() { bsdMain() }

    func run() {
        if command.isEmpty { Self.usage() }
        Colocation.ensure()
        // CheriBSD forks, and the child calls setsid() "to make sure the
        // kernel won't opportunistically colocate us back", then takes the
        // switcher over.  A fork()ed child is not colocated here, so the
        // takeover is attempted where the tool runs, with the same result.
        var code: UnsafeMutableRawPointer? = nil, data: UnsafeMutableRawPointer? = nil
        if verbose { print("\(Diag.progname): taking over the switcher") }
        if _cosetup(COSETUP_TAKEOVER, &code, &data) != 0 { Diag.err(1, "cosetup") }
        _ = Service.spawn(command, CapVector(capc: 1, capv: nil))
        enterCapabilityMode(unless: noCapsicum)
        var status: Int32 = 0
        while wait(&status) < 0 && errno == EINTR {}
        Glibc.exit((status >> 8) & 0xff)
    }
}
