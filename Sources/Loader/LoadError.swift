// LoadError: why a program cannot be loaded, with the errno execve would give.
import Errors
import Glibc

/// Why a program cannot be loaded: the errno execve(2) would give, and what was wrong.
public struct LoadError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The errno execve(2) would have returned.
    public let errno: Errno
    /// What was wrong, for humans.
    public let message: String

    /// Makes an error from an errno value and a message.
    public init(errno: Errno, message: String) {
        self.errno = errno
        self.message = message
    }

    /// The message followed by the errno's strerror text.
    public var description: String { "\(message): \(errno)" }

    /// An ENOEXEC error ("Exec format error").
    static func noexec(_ message: String) -> LoadError { LoadError(errno: .ENOEXEC, message: message) }

    /// An error from the C `errno` a failed system call just left.
    static func system(_ message: String) -> LoadError { LoadError(errno: .current, message: message) }
}
