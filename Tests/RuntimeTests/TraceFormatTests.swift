// The tracers' formatting of a call's arguments: strings with strace's escapes, flags by name.
import Bytes
import CLinux
import ColoABI
import Glibc
import Testing
@testable import Observability
@testable import Runtime

@Suite struct TraceFormatTests {
    func format(_ nr: Int32, _ args: [UInt64], path: ByteString? = nil) -> String {
        Tracer.format(Int(nr), args + Array(repeating: 0, count: 6 - args.count), path: { _ in path }, argv: { _ in nil })
    }

    @Test func flagsAreNamedAsStraceNamesThem() {
        let minus1 = UInt64(bitPattern: -1)
        #expect(format(SYS_mmap, [0, 8192, 3, 34, minus1, 0]) == "0, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0")
        #expect(format(SYS_mprotect, [0x7f00_0000_0000, 4096, 0]) == "0x7f0000000000, 4096, PROT_NONE")
        #expect(format(SYS_mmap, [0, 4096, 5, UInt64(MAP_SHARED | MAP_FIXED | 0x1000_0000), 3, 0])
                == "0, 4096, PROT_READ|PROT_EXEC, MAP_SHARED|MAP_FIXED|0x10000000, 3, 0", "unknown bits stay in hex")
        let fdcwd = UInt64(bitPattern: Int64(clinux_at_fdcwd))
        #expect(format(SYS_openat, [fdcwd, 0x1000, 0x80000, 0], path: "/etc") == "AT_FDCWD, \"/etc\", O_RDONLY|O_CLOEXEC, 0")
        #expect(format(SYS_openat, [3, 0x1000, UInt64(O_WRONLY | O_CREAT | O_TRUNC), 0o644], path: "f")
                == "3, \"f\", O_WRONLY|O_CREAT|O_TRUNC, 420")
    }

    @Test func stringsKeepEveryByte() {
        let s = ByteString([0x61, 0xFF, 0x0A, 0x22, 0x5C, 0x01, 0x37])
        #expect(s.escaped == "a\\377\\n\\\"\\\\\\0017", "a short escape before a digit takes three digits, as strace's")
        #expect(format(Int32(COLO_SYS_coexecve), [0, 0x1000], path: s).contains("\"a\\377\\n"))
    }
}
