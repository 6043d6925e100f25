// Capability mode (cap_enter(2), <sys/capsicum.h>).
import Foundation
import Glibc
import Testing

/// Capability mode (cap_enter(2), <sys/capsicum.h>): what it refuses with
/// ECAPMODE and what still works, colocated and not.
@Suite(.serialized) struct UserlandCapModeTests {
    static let expected: [String: String] = [
        "mode_before": "0", "cap_enter": "OK", "mode_after": "1 sandboxed=1",
        "open_absolute": "ECAPMODE", "open_relative": "ECAPMODE", "openat_cwd": "ECAPMODE", "openat_dirfd": "OK",
        "stat": "ECAPMODE", "fstatat_dirfd": "OK", "fstat": "OK", "mkdir": "ECAPMODE", "chdir": "ECAPMODE",
        "fchdir": "OK", "bind": "ECAPMODE", "connect": "ECAPMODE", "kill_self": "OK", "kill_parent": "ECAPMODE",
        "cap_enter_again": "OK", "child_mode": "1", "child_refused": "1",
    ]

    @Test func refusedAndAllowedColocated() throws {
        let r = try Run.colo([try Guests.buildWithGuestLibrary("userland_capmode")])
        #expect(r.status == 0, "\(r.stderr)")
        let v = values(r.stdout)
        for (k, e) in Self.expected.sorted(by: { $0.key < $1.key }) { #expect(v[k] == e, "\(k): \(v[k] ?? "-")") }
        #expect(v["coregister"] == "ECAPMODE" && v["colookup"] == "ECAPMODE", "not CAPENABLED in CheriBSD")
    }

    @Test func worksOutsideAnAddressSpaceToo() throws {
        let r = try Run.capture([try Guests.buildWithGuestLibrary("userland_capmode")])
        let v = values(r.stdout)
        for (k, e) in Self.expected.sorted(by: { $0.key < $1.key }) { #expect(v[k] == e, "\(k): \(v[k] ?? "-")") }
    }

    @Test func servicesServeFromCapabilityMode() throws {
        // clocks, cotrace and clearances enter capability mode once their
        // command runs; binds never does.
        let r = try Tools.run(["clocks", "binds", "cotrace", "clearances", "-1", "-i", "8", "sh", "-c", "date +%Y; capv -v"])
        #expect(hasLine(r.stdout, #"8:\t"clearances\(1\), pid \d+, wrapping 0x[0-9a-f]+ \[target\] \(sealed\)""#),
                "the first caller was date, capv is refused and gets clearances' answerback: \(r.stdout) \(r.stderr)")
        #expect(hasLine(r.stdout, #"10:\t"binds\(1\), pid \d+, allowed port -1 \(capsicum disabled\) -- via cotrace\(1\), .*\(sealed\)""#))
        #expect(hasLine(r.stdout, #"20\d\d"#), "date through clearances, cotrace and clocks")
    }
}
