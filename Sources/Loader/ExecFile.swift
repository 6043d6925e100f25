// ExecFile: a file opened for execution with execve's checks.
import Bytes
import CLinux
import Glibc

/// A file opened for execution with execve's permission checks; closes its descriptor on deinit.
final class ExecFile: Sendable {
    /// The path it was opened by.
    let path: ByteString
    /// The open descriptor (read-only, close-on-exec).
    let fd: Int32
    /// The file size when it was opened.
    let size: UInt64

    private init(path: ByteString, fd: Int32, size: UInt64) {
        self.path = path
        self.fd = fd
        self.size = size
    }

    deinit { close(fd) }

    /// Opens `path` and checks it as execve does: path errors (ENOENT, ENOTDIR, ENAMETOOLONG,
    /// ELOOP, EACCES) come from open(2); a non-regular file or one without execute permission
    /// for the effective credentials (noexec mounts included) is EACCES.  A relative path is
    /// looked up from `directory` (a process's cwd, as /proc/PID/cwd), else from ours; a
    /// directory that cannot be opened is ESRCH (the process is gone).
    static func open(_ path: ByteString, from directory: ByteString? = nil) throws(LoadError) -> ExecFile {
        var dirfd = AT_FDCWD
        if let directory, !path.isEmpty, !path.hasPrefix("/") {
            dirfd = directory.withCString { Glibc.open($0, clinux_o_path | O_DIRECTORY | O_CLOEXEC) }
            guard dirfd >= 0 else { throw LoadError(errno: .ESRCH, message: "the process is gone") }
        }
        // O_NONBLOCK: opening a FIFO must not wait for a writer (execve refuses it anyway).
        let fd = path.withCString { openat(dirfd, $0, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK) }
        let openError = Glibc.errno
        if dirfd != AT_FDCWD { close(dirfd) }
        Glibc.errno = openError
        guard fd >= 0 else { throw .system("cannot open \(path)") }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let error = LoadError.system("cannot stat \(path)")
            close(fd)
            throw error
        }
        let file = ExecFile(path: path, fd: fd, size: UInt64(st.st_size))
        guard st.st_mode & S_IFMT == S_IFREG else {
            throw LoadError(errno: .EACCES, message: "\(path) is not a regular file")
        }
        guard faccessat(fd, "", X_OK, AT_EACCESS | clinux_at_empty_path) == 0 else {
            throw .system("\(path) is not executable")
        }
        return file
    }

    /// The file's absolute path as the kernel names it (what /proc/PID/exe shows for a
    /// program mapped from it); the path it was opened by if that cannot be read.
    func kernelPath() -> ByteString {
        var buf = [UInt8](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = buf.withUnsafeMutableBytes { readlink("/proc/self/fd/\(fd)", $0.baseAddress!.assumingMemoryBound(to: CChar.self), $0.count) }
        return n > 0 && n < buf.count ? ByteString(buf[..<n]) : path
    }

    /// Up to `count` bytes at `offset`; fewer only at the end of the file.
    func read(count: Int, at offset: UInt64) throws(LoadError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = bytes.withUnsafeMutableBytes { buffer in
                pread(fd, buffer.baseAddress! + done, count - done, off_t(offset) + off_t(done))
            }
            if n < 0 && Glibc.errno == EINTR { continue }
            guard n >= 0 else { throw .system("cannot read \(path)") }
            if n == 0 { break }
            done += n
        }
        return Array(bytes.prefix(done))
    }
}
