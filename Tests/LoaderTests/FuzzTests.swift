// FuzzTests.swift: a 20-second run of scripts/fuzz/loader (libFuzzer over Loader.plan, seeded with real programs) finds no crash, hang or leak.
import Foundation
import Testing

@Suite struct FuzzTests {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/fuzz/loader").path

    @Test(.timeLimit(.minutes(10))) func twentySecondsOfFuzzingFindNothing() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.script)
        process.arguments = ["-max_total_time=20"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "scripts/fuzz/loader: \(output)")
        let executed = output.split(separator: "\n").first { $0.hasPrefix("stat::number_of_executed_units:") }
            .flatMap { Int($0.split(separator: " ").last ?? "") }
        #expect((executed ?? 0) > 1000, "inputs run: \(output)")
    }
}
