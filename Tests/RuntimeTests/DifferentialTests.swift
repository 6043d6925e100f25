// Differential tests: third-party test suites (short lists) give the same result per case natively and colocated.
import Foundation
import Glibc
import Testing

/// Runs `scripts/differential --short` (a short module list of each suite, both sides,
/// alternating) and fails when any case's result differs between the native and the
/// colocated run.  The full runs' reports are bench-results/differential-*.md.
@Suite(.serialized) struct DifferentialTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path

    /// Run the harness on `suite`'s short list; returns its summary line.
    func differential(_ suite: String) throws -> String {
        let work = NSTemporaryDirectory() + "colo-differential-\(suite)-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: work) }
        let r = try Run.capture([Self.root + "/scripts/differential", "--suite", suite, "--short", "--no-setup",
                                 "--colo", Run.colo, "--work", work, "--timeout", "120", "--reruns", "1"],
                                timeout: 400)
        let report = (try? String(contentsOfFile: work + "/report.md", encoding: .utf8)) ?? "(no report)"
        #expect(r.status == 0, "differential \(suite): \(r.stdout)\n\(r.stderr)\n\(report)")
        // "N modules, C cases natively, C colocated, 0 differing (0 firm), wall ..."
        let summary = r.stdout.split(separator: "\n").first { $0.contains(" modules, ") }.map(String.init) ?? ""
        #expect(summary.contains(" 0 differing"), "\(summary)\n\(report)")
        let cases = summary.split(separator: " ").dropFirst(2).first.flatMap { Int($0) } ?? 0
        #expect(cases > 100, "too few cases ran: \(summary)\n\(r.stderr)")
        #expect(report.contains("every native run had `Seccomp: 0`, every colocated run `Seccomp: 2`"), "\(report)")
        return summary
    }

    /// CPython's regression tests: files, processes, signals, threads, locale, sockets, mmap, ctypes.
    @Test func cpythonShortListSameAsNative() throws {
        _ = try differential("cpython")
    }

    /// GLib's installed tests (libglib2.0-tests): spawning, Unix signals and fds, threads, UTF-8, sockets, files.
    @Test func glibShortListSameAsNative() throws {
        _ = try differential("glib")
    }
}
