// Errno: the one error number type every layer's errors carry (a Linux errno from <errno.h>).
import Glibc

/// A Linux error number, as a system call reports it: the value every error of the project
/// carries (a load's, a runtime operation's, a colocation call's answer, the guest API's).
/// The named values are <errno.h>'s.
public struct Errno: Error, RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
    public init(_ rawValue: Int32) { self.rawValue = rawValue }

    /// What the last failed C call left in `errno`.
    public static var current: Errno { Errno(Glibc.errno) }

    /// The errno of a raw system call's result, if it is one (-4095 ... -1).
    public init?(result: Int) {
        guard result < 0 && result >= -4095 else { return nil }
        rawValue = Int32(-result)
    }

    /// The errno of a -errno result (a raw system call's, or a C helper's that returns one).
    public init<T: SignedInteger>(negated result: T) { rawValue = Int32(truncatingIfNeeded: 0 - result) }

    /// strerror(3)'s text.
    public var description: String { String(cString: strerror(rawValue)) }

    public static let EPERM = Errno(Glibc.EPERM)
    public static let ENOENT = Errno(Glibc.ENOENT)
    public static let ESRCH = Errno(Glibc.ESRCH)
    public static let EINTR = Errno(Glibc.EINTR)
    public static let EIO = Errno(Glibc.EIO)
    public static let E2BIG = Errno(Glibc.E2BIG)
    public static let ENOEXEC = Errno(Glibc.ENOEXEC)
    public static let EBADF = Errno(Glibc.EBADF)
    public static let ECHILD = Errno(Glibc.ECHILD)
    public static let EAGAIN = Errno(Glibc.EAGAIN)
    public static let ENOMEM = Errno(Glibc.ENOMEM)
    public static let EACCES = Errno(Glibc.EACCES)
    public static let EFAULT = Errno(Glibc.EFAULT)
    public static let EBUSY = Errno(Glibc.EBUSY)
    public static let EEXIST = Errno(Glibc.EEXIST)
    public static let ENOTDIR = Errno(Glibc.ENOTDIR)
    public static let EISDIR = Errno(Glibc.EISDIR)
    public static let EINVAL = Errno(Glibc.EINVAL)
    public static let ENFILE = Errno(Glibc.ENFILE)
    public static let EMFILE = Errno(Glibc.EMFILE)
    public static let ETXTBSY = Errno(Glibc.ETXTBSY)
    public static let EPIPE = Errno(Glibc.EPIPE)
    public static let ERANGE = Errno(Glibc.ERANGE)
    public static let ENAMETOOLONG = Errno(Glibc.ENAMETOOLONG)
    public static let ENOSYS = Errno(Glibc.ENOSYS)
    public static let ETIMEDOUT = Errno(Glibc.ETIMEDOUT)
    public static let ELOOP = Errno(Glibc.ELOOP)
    public static let ENOLINK = Errno(Glibc.ENOLINK)
    public static let EPROTO = Errno(Glibc.EPROTO)
    public static let ELIBBAD = Errno(Glibc.ELIBBAD)
    public static let EPROTOTYPE = Errno(Glibc.EPROTOTYPE)
    public static let ENOTSUP = Errno(Glibc.ENOTSUP)
    public static let ECANCELED = Errno(Glibc.ECANCELED)
}
