// Shebang: a "#!" line parsed as bytes by the rules of Linux's binfmt_script.
import Bytes

/// A "#!" line parsed by the rules of Linux's binfmt_script.
struct Shebang: Equatable {
    /// Bytes of a file that Linux looks at (BINPRM_BUF_SIZE): the line is at most 255 of them.
    static let headerSize = 256

    /// The interpreter path.
    let interpreter: ByteString
    /// The single optional argument: the rest of the line after the path, trimmed.
    let argument: ByteString?

    /// Parses the start of a file; nil if it does not start with "#!", ENOEXEC if it names no
    /// interpreter (Linux gives ENOENT for an empty name after a NUL) or the interpreter path may
    /// have been cut off by the 255-byte limit.
    init?(header: [UInt8]) throws(LoadError) {
        var buf = Array(header.prefix(Self.headerSize))
        buf += [UInt8](repeating: 0, count: Self.headerSize - buf.count)
        guard buf[0] == UInt8(ascii: "#"), buf[1] == UInt8(ascii: "!") else { return nil }

        let last = Self.headerSize - 1
        func isSpaceTab(_ i: Int) -> Bool { buf[i] == 0x20 || buf[i] == 0x09 }
        func nextNonSpaceTab(_ from: Int, _ through: Int) -> Int? {
            (from...through).first { !isSpaceTab($0) }
        }
        func nextTerminator(_ from: Int, _ through: Int) -> Int? {
            (from...through).first { isSpaceTab($0) || buf[$0] == 0 }
        }

        // The line ends at a newline before the first NUL, else the path must end inside the buffer.
        var end: Int
        if let newline = buf.prefix(while: { $0 != 0 }).firstIndex(of: 0x0A) {
            end = newline
        } else {
            guard let start = nextNonSpaceTab(2, last), nextTerminator(start, last) != nil else {
                throw .noexec("#! line too long: the interpreter path is cut off")
            }
            end = last
        }
        while isSpaceTab(end - 1) { end -= 1 }
        guard let name = nextNonSpaceTab(2, end), name != end else {
            throw .noexec("#! line names no interpreter")
        }
        var argumentStart: Int?
        let separator = nextTerminator(name, end)
        if let separator, buf[separator] != 0 {
            argumentStart = nextNonSpaceTab(separator, end)
        }
        buf[end] = 0
        if argumentStart != nil, let separator { buf[separator] = 0 }

        func string(at start: Int) -> ByteString {
            ByteString(buf[start...].prefix { $0 != 0 })
        }
        interpreter = string(at: name)
        guard !interpreter.isEmpty else { throw .noexec("#! line names no interpreter") }
        argument = argumentStart.map(string(at:))
    }
}
