// Linux's interface comes from its C headers (the CLinux target, libseccomp), never from numbers written in Swift.
import Foundation
import Testing

/// Linux's interface comes from its C headers (the CLinux target, libseccomp), never from
/// numbers written in Swift: no system-call or ioctl numbers, ptrace requests or
/// hand-made enums of them in Sources/**/*.swift.
@Suite struct LinuxInterfaceTests {
    static let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Sources")

    /// What must not come back, with why.
    static let forbidden: [(pattern: String, why: String)] = [
        (#"rawSyscall\(\s*-?(0x[0-9a-fA-F_]+|[0-9][0-9_]*)\b(?!\.)"#, "a system-call number: SYS_* from <sys/syscall.h>"),
        (#"colo_syscall\(\s*-?(0x[0-9a-fA-F_]+|[0-9][0-9_]*)\b(?!\.)"#, "a system-call number: SYS_* from <sys/syscall.h>"),
        (#"\b0x[48cC]0[0-9a-fA-F]{2}_?[0-9a-fA-F]{4}\b"#, "an ioctl request number (_IOR/_IOW/_IOWR): from its header, through CLinux"),
        (#"ioctl\([^,()]+,\s*-?(0x[0-9a-fA-F_]+|[0-9][0-9_]*)\b(?!\.)"#, "an ioctl request number: from its header, through CLinux"),
        (#"\b(nr|number)\s*(==|!=)\s*[0-9]+\b(?!\.)"#, "a system-call number compared: SYS_* from <sys/syscall.h>"),
        (#"\benum\s+(Linux|Epoll)\b"#, "an enum of Linux numbers: CLinux has them"),
        (#"ptrace\(\s*(0x[0-9a-fA-F_]+|[0-9][0-9_]*)\s*(/\*[^*]*\*/\s*)?,"#, "a ptrace request number: PTRACE_* from <sys/ptrace.h>"),
        (#"\blet\s+PTRACE_[A-Z_]+\s*=\s*(0x)?[0-9]"#, "a ptrace request number: PTRACE_* from <sys/ptrace.h>"),
    ]

    /// Every line of `text` that matches a forbidden pattern, as "path:line: why: text".
    static func violations(in text: String, path: String) throws -> [String] {
        let regexes = try forbidden.map { (try Regex($0.pattern).wordBoundaryKind(.simple), $0.why) }   // "call.nr" has a boundary before "nr"
        var found = [String]()
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            for (regex, why) in regexes where line.contains(regex) {
                found.append("\(path):\(i + 1): \(why): \(line.trimmingCharacters(in: .whitespaces))")
            }
        }
        return found
    }

    static func swiftSources() -> [URL] {
        guard let walk = FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil) else { return [] }
        return walk.compactMap { $0 as? URL }.filter { $0.pathExtension == "swift" }
    }

    @Test func noLinuxNumbersInSwift() throws {
        let files = Self.swiftSources()
        #expect(files.count > 20, "the Swift sources are found (\(Self.sources.path))")
        var found = [String]()
        for file in files {
            let text = try String(contentsOf: file, encoding: .utf8)
            found += try Self.violations(in: text, path: String(file.path.dropFirst(Self.sources.path.count + 1)))
        }
        #expect(found.isEmpty, "Linux numbers written in Swift:\n\(found.joined(separator: "\n"))")
    }

    /// The check catches what it is for (and lets the header-derived spellings through).
    @Test func patternsCatchLiterals() throws {
        let bad = [
            "rawSyscall(434 /* pidfd_open */, Int(pid), 0)",
            "rawSyscall(0x1b5, 0)",
            "static let recv: UInt = 0xC050_2100",
            "static let idValid: UInt = 0x40082102",
            "enum Linux {",
            "enum Epoll {",
            "Self.ptrace(0x4206, pid, 0, 0)",
            "ptrace(0x4202 /* PTRACE_GETSIGINFO */, pid, 0, p)",
            "static let PTRACE_SEIZE = 0x4206",
            "ioctl(fd, 0xC0405FF0B, &info)",
            "colo_syscall(157, 59, 0, 0, 0, 0, 0)",
            "if nr == 60 || nr == 231 {",
            "} else if call.nr == 15, let pending = t.trapped {",
        ]
        for line in bad { #expect(try !Self.violations(in: line, path: "x").isEmpty, "\(line)") }
        let good = [
            "rawSyscall(Int(SYS_pidfd_open), Int(pid), 0)",
            "rawSyscall(Int(SYS_ioctl), Int(fd), Int(bitPattern: clinux_seccomp_ioctl_notif_recv), p)",
            "Self.ptrace(PTRACE_SEIZE, tid, 0, 0)",
            "// ptrace(2) options and events",
            "guard u32(0) == 0x464c_457f else { return nil }",
        ]
        for line in good { #expect(try Self.violations(in: line, path: "x").isEmpty, "\(line)") }
    }
}
