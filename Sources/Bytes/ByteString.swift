// ByteString: a path, argv or envp string as the kernel sees it — bytes, never decoded as text.
import Glibc

/// A NUL-free string of bytes: what execve, open and every path-taking system call take.
///
/// Linux gives no encoding to paths, arguments or environment strings: any byte but NUL is
/// allowed. A Swift `String` cannot hold bytes that are not UTF-8 (decoding replaces them with
/// U+FFFD), so everything that carries such a string between a guest, the loader, the runtime
/// and the commands carries a ByteString. Text is made from one only to show it to a person,
/// through `escaped` (strace's escapes) or `lossyDescription`.
public struct ByteString: Hashable, Sendable, Comparable, ExpressibleByStringLiteral,
                          CustomStringConvertible, CustomDebugStringConvertible {
    /// The bytes, without a terminating NUL.
    public var bytes: [UInt8]

    public init() { bytes = [] }

    public init<S: Sequence>(_ bytes: S) where S.Element == UInt8 { self.bytes = Array(bytes) }

    /// The UTF-8 bytes of a string the project wrote itself (a literal, a number, a /proc path).
    public init(_ text: String) { bytes = Array(text.utf8) }

    public init(stringLiteral text: String) { self.init(text) }

    /// The bytes of a C string, up to its NUL.
    public init(cString: UnsafePointer<CChar>) {
        bytes = Array(UnsafeRawBufferPointer(start: cString, count: strlen(cString)))
    }

    /// The bytes of a fixed-size C array field, up to its first NUL (or all of it).
    public init<T>(cField field: T) {
        bytes = withUnsafeBytes(of: field) { Array($0.prefix { $0 != 0 }) }
    }

    public var count: Int { bytes.count }
    public var isEmpty: Bool { bytes.isEmpty }

    /// Calls `body` with a NUL-terminated copy.
    public func withCString<R, E: Error>(_ body: (UnsafePointer<CChar>) throws(E) -> R) throws(E) -> R {
        var copy = bytes
        copy.append(0)
        return try copy.withUnsafeBufferPointer { (buffer) throws(E) -> R in
            try buffer.withMemoryRebound(to: CChar.self) { (chars) throws(E) -> R in try body(chars.baseAddress!) }
        }
    }

    /// The bytes followed by a NUL, as they go on a stack or into a message.
    public var nulTerminated: [UInt8] { bytes + [0] }

    public func hasPrefix(_ prefix: ByteString) -> Bool { bytes.starts(with: prefix.bytes) }
    public func contains(_ byte: UInt8) -> Bool { bytes.contains(byte) }

    /// The last path component (everything after the last "/"; the whole string without one).
    public var lastComponent: ByteString {
        guard let slash = bytes.lastIndex(of: UInt8(ascii: "/")) else { return self }
        return ByteString(bytes[(slash + 1)...])
    }

    /// The string split at `separator`, empty pieces kept (as PATH's components are).
    public func split(separator: UInt8) -> [ByteString] {
        bytes.split(separator: separator, omittingEmptySubsequences: false).map { ByteString($0) }
    }

    public static func + (lhs: ByteString, rhs: ByteString) -> ByteString { ByteString(lhs.bytes + rhs.bytes) }
    public static func += (lhs: inout ByteString, rhs: ByteString) { lhs.bytes += rhs.bytes }
    public static func < (lhs: ByteString, rhs: ByteString) -> Bool { lhs.bytes.lexicographicallyPrecedes(rhs.bytes) }

    /// The string as a C literal with strace's escapes: printable ASCII as is, `"` and `\`
    /// escaped, \t \n \v \f \r, every other byte as an octal escape (\377). Nothing is lost:
    /// each byte can be read back from the text.
    public var escaped: String {
        var out = ""
        out.reserveCapacity(bytes.count)
        for (i, b) in bytes.enumerated() {
            switch b {
            case UInt8(ascii: "\""): out += "\\\""
            case UInt8(ascii: "\\"): out += "\\\\"
            case 0x09: out += "\\t"
            case 0x0A: out += "\\n"
            case 0x0B: out += "\\v"
            case 0x0C: out += "\\f"
            case 0x0D: out += "\\r"
            case 0x20...0x7E: out.unicodeScalars.append(Unicode.Scalar(b))
            default:
                // A digit right after a short octal escape would join it: use all three digits.
                let next = i + 1 < bytes.count ? bytes[i + 1] : 0
                let digits = String(b, radix: 8)
                let wide = (0x30...0x37).contains(next)
                out += "\\" + (wide ? String(repeating: "0", count: 3 - digits.count) : "") + digits
            }
        }
        return out
    }

    /// For messages to a person: UTF-8 shown as text, any other byte as \xHH.
    public var description: String {
        var out = ""
        var rest = bytes[...]
        while !rest.isEmpty {
            // The longest prefix that is valid UTF-8 goes through as text.
            var decoder = UTF8()
            var iterator = rest.makeIterator()
            var consumed = 0
            var scalars = String.UnicodeScalarView()
            decode: while true {
                switch decoder.decode(&iterator) {
                case .scalarValue(let s):
                    scalars.append(s)
                    consumed += UTF8.width(s)
                case .emptyInput, .error: break decode
                }
            }
            out.unicodeScalars.append(contentsOf: scalars)
            rest = rest.dropFirst(consumed)
            if let bad = rest.first {
                out += "\\x" + (bad < 16 ? "0" : "") + String(bad, radix: 16)
                rest = rest.dropFirst()
            }
        }
        return out
    }

    public var debugDescription: String { "\"" + escaped + "\"" }
}

extension Array where Element == ByteString {
    /// Calls `body` with a NULL-terminated array of NUL-terminated C strings (an argv or envp).
    public func withCStringArray<R>(_ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) throws -> R) rethrows -> R {
        var storage = [UInt8]()
        var offsets = [Int]()
        for s in self {
            offsets.append(storage.count)
            storage += s.bytes
            storage.append(0)
        }
        return try storage.withUnsafeMutableBufferPointer { buffer in
            let base = UnsafeMutableRawPointer(buffer.baseAddress!).assumingMemoryBound(to: CChar.self)
            var pointers: [UnsafeMutablePointer<CChar>?] = offsets.map { base + $0 }
            pointers.append(nil)
            return try pointers.withUnsafeBufferPointer { try body($0.baseAddress!) }
        }
    }
}

/// The process's own argv, as the kernel passed it.
public func rawArguments() -> [ByteString] {
    (0..<Int(CommandLine.argc)).map { i in CommandLine.unsafeArgv[i].map { ByteString(cString: $0) } ?? ByteString() }
}

/// The process's environment, as it is now.
public func rawEnvironment() -> [ByteString] {
    var out = [ByteString]()
    guard var p = environ as UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? else { return out }
    while let s = p.pointee { out.append(ByteString(cString: s)); p += 1 }
    return out
}

/// The value of environment variable `name`, as bytes.
public func environmentValue(_ name: String) -> ByteString? {
    getenv(name).map { ByteString(cString: $0) }
}
