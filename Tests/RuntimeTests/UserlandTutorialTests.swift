// scripts/tutorial, the tutorial's session, run on the tools of this build.
import Foundation
import Glibc
import Testing

/// scripts/tutorial, the tutorial's session, run on the tools of this build.
@Suite struct UserlandTutorialTests {
    @Test func theTutorialRunsAndShowsWhatItShould() throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/tutorial").path
        let r = try Tools.run([script], env: ["COLO_BIN=" + Tools.binDir], timeout: 180)
        #expect(r.status == 0, "\(r.stderr)")
        let out = r.stdout
        let steps = lines(out, matching: "# (.*)").map { $0[1] }
        #expect(steps == ["colo ps $$", "colo procstat -v $$", "capv", "clocks sh", "colo ps $$", "capv -c", "cotrace -v capv",
                          "clocks cotrace capv", "date", "^D", "clocks -v coregister -i8 -f socket-path &",
                          "colookup -f socket-path -i8 capv", "clocks binds sh", "capv", "coping -ac 1000", "^D",
                          "clocks binds -k sh", "capv", "coping -ac 1000", "^D"], "\(steps)")
        #expect(hasLine(out, "capv: no capability vector") || r.stderr.contains("capv: no capability vector"))
        #expect(hasLine(out, #"\S+\s+\d+\s+\d+\s+S\s+copark\s.*clocks sh .*"#), "clocks's thread is parked by the switcher's coaccept")
        #expect(hasLine(out, #"8:\t0x[0-9a-f]{16} \[target\] \(sealed\):\t"clocks\(1\), pid \d+, responding to clock_gettime\(\).*""#))
        #expect(hasLine(out, #"cotrace: returning answerback to pid\[\d+\] 8 <- pid \d+"#))
        #expect(hasLine(out, #"clocks: op 0, len 16 from pid \d+ -> pid \d+"#), "colookup's capv calls clocks")
        #expect(hasLine(out, #"10:\t"binds\(1\), pid \d+, allowed port -1 \(slow\) \(capsicum disabled\)""#))
        #expect(lines(out, matching: #"coping: capv\[(8|10)\]: [0-9.]+(s|ms|us|ns) for 1000 iterations, [0-9.]+(s|ms|us|ns) each"#).count == 4)
        #expect(hasLine(out, #"capv\[10\] binds: [0-9.]+us per cocall by default, [0-9.]+us with binds -k \(cocall_slow\): [0-9.]+x"#), "\(out)")
    }
}
