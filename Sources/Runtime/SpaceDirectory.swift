// SpaceDirectory: where address spaces announce themselves (table files and control sockets).
import Errors
import Glibc

/// Where address spaces announce themselves: one table file and one control
/// socket per runtime, named after the runtime's PID.
public enum SpaceDirectory {
    /// The directory of this user's address spaces (/run/colo for root).
    public static var path: String {
        if getuid() == 0 { return "/run/colo" }
        // A directory whose name is not UTF-8 cannot be named by a String: /tmp is used instead.
        if let x = getenv("XDG_RUNTIME_DIR"), access(x, W_OK) == 0, let dir = String(validatingCString: x) { return dir + "/colo" }
        return "/tmp/colo-\(getuid())"
    }

    static func ensure() throws(ColoError) {
        if mkdir(path, 0o755) != 0 && errno != EEXIST { throw .last("cannot create \(path)") }
    }

    public static func tablePath(runtimePID: pid_t) -> String { "\(path)/\(runtimePID).space" }
    static func socketPath(runtimePID: pid_t) -> String { "\(path)/\(runtimePID).sock" }

    /// A live address space: its table, with its members checked against the kernel.
    public struct Space {
        public let table: SpaceTable
        public let members: [ProcessRecord]
    }

    /// Every live address space.  Tables (and trace rings) whose runtime is gone are removed.
    public static func spaces() -> [Space] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names = [String]()
        while let ent = readdir(dir) {
            let name = withUnsafeBytes(of: ent.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name.hasSuffix(".space") { names.append(name) }
            if name.hasSuffix(".space.trace"), let rt = pid_t(name.dropLast(".space.trace".count)),
               kill(rt, 0) != 0 && errno == ESRCH {
                unlink("\(path)/\(name)")
            }
        }
        var out = [Space]()
        for name in names.sorted() {
            let file = "\(path)/\(name)"
            guard let t = SpaceTable.open(path: file) else { continue }
            let rt = t.runtimePID
            guard kill(rt, 0) == 0 || errno == EPERM, readFile("/proc/\(rt)/comm") != nil else {
                unlink(file); unlink(socketPath(runtimePID: rt)); unlink(SpaceTable.traceRingPath(tablePath: file)); continue
            }
            let members = t.members().filter { shareAddressSpace($0.pid, t.mmPID) }
            out.append(Space(table: t, members: members))
        }
        return out
    }

    /// The address space that `pid` (the runtime or a member) lives in.
    public static func space(containing pid: pid_t) -> Space? {
        spaces().first { $0.table.runtimePID == pid || $0.members.contains { $0.pid == pid } }
    }
}
