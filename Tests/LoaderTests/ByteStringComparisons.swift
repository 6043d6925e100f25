// Test shorthands: compare the loader's byte strings with the fixtures' String paths, and plan
// with String arguments (every fixture name is ASCII).
import Bytes
@testable import Loader

func == (lhs: ByteString, rhs: String) -> Bool { lhs == ByteString(rhs) }
func == (lhs: ByteString?, rhs: String?) -> Bool { lhs == rhs.map { ByteString($0) } }
func == (lhs: [ByteString], rhs: [String]) -> Bool { lhs == rhs.map { ByteString($0) } }
func == (lhs: [String], rhs: [ByteString]) -> Bool { lhs.map { ByteString($0) } == rhs }

extension Loader {
    static func plan(path: String, argv: [String], envp: [String]) throws(LoadError) -> ExecPlan {
        try plan(path: ByteString(path), argv: argv.map { ByteString($0) }, envp: envp.map { ByteString($0) })
    }
}
