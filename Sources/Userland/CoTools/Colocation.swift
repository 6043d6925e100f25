// Colocation: where the CheriBSD tools run (inside an address space) and how they get there.
import CoHelpers
import Glibc
import GuestAPI

/// Where the tools run: always inside a colocated address space.
public enum Colocation {
    private static let reexecMarker = "COLO_TOOL_STARTED"
    private static let savedPreload = "COLO_TOOL_LD_PRELOAD"

    private static func restorePreload() {
        if let p = getenv(savedPreload) {
            setenv("LD_PRELOAD", String(cString: p), 1)
            unsetenv(savedPreload)
        }
    }

    /// Started from a plain shell, a tool first creates an address space, as
    /// `colo COMMAND` does: it runs itself again as the first process of a new
    /// one (`colo /path/to/tool ARGS...`).  Inside one it stays where it is.
    public static func ensure() {
        if cotool_colocated() != 0 {
            unsetenv(reexecMarker)
            restorePreload()
            return
        }
        // Started by colo and still not colocated (e.g. not a PIE): carry on
        // outside, where every colocation call fails with ENOSYS.
        if getenv(reexecMarker) != nil { unsetenv(reexecMarker); restorePreload(); return }
        // fork()ed out of an address space (a pipeline, `&`, `$(...)`): the
        // child keeps the runtime's seccomp filter, under which no new address
        // space can be created.  Carry on outside, as CheriBSD's forked child is.
        if underSeccompFilter { return }
        guard let me = selfPath, let colo = coloPath(near: me) else { return }
        setenv(reexecMarker, "1", 1)
        // The runtime must not load the services' client libraries (libbinds
        // would bind its own socket through a service that does not exist):
        // LD_PRELOAD goes around it, and the tool puts it back for its children.
        if let p = getenv("LD_PRELOAD") {
            setenv(savedPreload, p, 1)
            unsetenv("LD_PRELOAD")
        }
        // The arguments as the kernel passed them (CommandLine.arguments has bytes that are
        // not UTF-8 replaced).
        var cargs: [UnsafeMutablePointer<CChar>?] = [strdup(colo), strdup(me)]
            + (1..<Int(CommandLine.argc)).map { CommandLine.unsafeArgv[$0].flatMap { strdup($0) } } + [nil]
        execv(colo, &cargs)
        Diag.err(1, colo)
    }

    /// Does a seccomp filter (the runtime's, inherited across fork) apply?
    static var underSeccompFilter: Bool {
        let fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: 8192)
        let n = read(fd, &bytes, bytes.count)
        guard n > 0 else { return false }
        let text = String(decoding: bytes[..<n], as: UTF8.self)
        return text.split(separator: "\n").contains { $0.hasPrefix("Seccomp:") && $0.hasSuffix("2") }
    }

    /// The tool's own executable: AT_EXECFN inside an address space (where
    /// /proc/self/exe names the runtime), /proc/self/exe outside.
    public static var selfPath: String? {
        if cotool_colocated() != 0, let s = cotool_execfn() {
            return realPath(String(cString: s))
        }
        return realPath("/proc/self/exe")
    }

    static func realPath(_ p: String) -> String? {
        guard let r = realpath(p, nil) else { return nil }
        defer { free(r) }
        return String(cString: r)
    }

    /// colo next to the tool (build tree, installed bin directory), else in PATH.
    static func coloPath(near tool: String) -> String? {
        let dir = String(tool[..<(tool.lastIndex(of: "/") ?? tool.startIndex)])
        if access(dir + "/colo", X_OK) == 0 { return dir + "/colo" }
        let path = getenv("PATH").map { String(cString: $0) } ?? "/usr/local/bin:/usr/bin:/bin"
        for d in path.split(separator: ":") where access(d + "/colo", X_OK) == 0 { return d + "/colo" }
        return nil
    }

    /// The path of preload library `name` (e.g. "clocks" for libclocks.so):
    /// PREFIX/lib/libNAME.so next to an installed PREFIX/bin, else the build
    /// tree's libNAME-preload.so next to the tool (SwiftPM cannot name a
    /// library product like an executable product: "clocks" is the command).
    public static func preloadLibrary(_ name: String) -> String {
        let tool = selfPath ?? "/usr/local/bin/\(name)"
        let dir = String(tool[..<(tool.lastIndex(of: "/") ?? tool.startIndex)])
        let installed = realPath(dir + "/../lib") .map { $0 + "/lib\(name).so" }
        if let p = installed, access(p, R_OK) == 0 { return p }
        let built = dir + "/lib\(name)-preload.so"
        if access(built, R_OK) == 0 { return built }
        return installed ?? "/usr/local/lib/lib\(name).so"
    }

    /// Add `library` to LD_PRELOAD: after the existing value, or alone.
    public static func appendPreload(_ library: String) {
        if let old = getenv("LD_PRELOAD"), old.pointee != 0 {
            setenv("LD_PRELOAD", String(cString: old) + ":" + library, 1)
        } else {
            setenv("LD_PRELOAD", library, 1)
        }
    }
}

/// A capability as the tools hold it.
public typealias Capability = UnsafeMutableRawPointer

/// The capability vector of this process (capvfetch(3)/capvset(3)).
public struct CapVector {
    public var capc: Int32 = 0
    public var capv: UnsafeMutablePointer<UnsafeMutableRawPointer?>? = nil

    public init(capc: Int32 = 0, capv: UnsafeMutablePointer<UnsafeMutableRawPointer?>? = nil) {
        self.capc = capc
        self.capv = capv
    }

    /// capvfetch(3) (which exits the process if the auxv cannot be read),
    /// copied: capvset(3) on the vector itself would change this process's
    /// own AT_CAPV in place, and a client library initialised later in the
    /// process (libclocks in clearances -O) would then call the tool itself.
    public static func fetch() -> CapVector {
        var v = CapVector()
        capvfetch(&v.capc, &v.capv)
        if v.capc > 0, let original = v.capv {
            let copy = UnsafeMutablePointer<UnsafeMutableRawPointer?>.allocate(capacity: Int(v.capc))
            copy.initialize(from: original, count: Int(v.capc))
            v.capv = copy
        }
        return v
    }

    public subscript(i: Int) -> Capability? {
        guard i >= 0, i < Int(capc), let capv else { return nil }
        return capv[i]
    }

    /// capvset(3): err(1, "capvset") on failure.
    public mutating func set(_ index: Int32, _ cap: Capability?) {
        if capvset(&capc, &capv, index, cap) != 0 { Diag.err(1, "capvset") }
    }

    /// The entries as an array (nil for NULL entries).
    public var entries: [Capability?] { (0..<Int(capc)).map { self[$0] } }
}

/// `%#lp`-style text of a capability (colo_capfmt): "0x... [target] (sealed)".
public func capText(_ cap: UnsafeRawPointer?) -> String {
    var buf = [CChar](repeating: 0, count: 80)
    _ = colo_capfmt(&buf, UInt(buf.count), cap)
    return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// An output or input buffer of cocall/coaccept: capability-aligned, zeroed,
/// with <capv.h>'s `len` (size_t at 0) and `op` (int at 8) header.
public final class Message {
    public let raw: UnsafeMutableRawPointer
    public let size: Int

    public init(_ size: Int) {
        self.size = (size + 15) & ~15
        raw = .allocate(byteCount: self.size, alignment: 16)
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: self.size)
    }

    deinit { raw.deallocate() }

    public func zero() { raw.initializeMemory(as: UInt8.self, repeating: 0, count: size) }

    public var len: Int {
        get { raw.load(as: Int.self) }
        set { raw.storeBytes(of: newValue, as: Int.self) }
    }

    public var op: Int32 {
        get { int32(at: 8) }
        set { setInt32(newValue, at: 8) }
    }

    public func int32(at o: Int) -> Int32 { raw.load(fromByteOffset: o, as: Int32.self) }
    public func setInt32(_ v: Int32, at o: Int) { raw.storeBytes(of: v, toByteOffset: o, as: Int32.self) }
    public func int64(at o: Int) -> Int64 { raw.load(fromByteOffset: o, as: Int64.self) }
    public func setInt64(_ v: Int64, at o: Int) { raw.storeBytes(of: v, toByteOffset: o, as: Int64.self) }
    public func pointer(at o: Int) -> UnsafeMutableRawPointer? { UnsafeMutableRawPointer(bitPattern: UInt(bitPattern: Int(int64(at: o)))) }
    public func setPointer(_ p: UnsafeRawPointer?, at o: Int) { setInt64(Int64(Int(bitPattern: p)), at: o) }

    /// The NUL-terminated string at `o` (at most `max` bytes).
    public func string(at o: Int, max: Int) -> String {
        let p = raw.advanced(by: o).assumingMemoryBound(to: UInt8.self)
        var n = 0
        while n < max && o + n < size && p[n] != 0 { n += 1 }
        return String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self)
    }

    /// Store `s` at `o` as a NUL-terminated string, truncated to `max - 1` bytes.
    public func setString(_ s: String, at o: Int, max: Int) {
        let bytes = Array(s.utf8.prefix(max - 1))
        let p = raw.advanced(by: o).assumingMemoryBound(to: UInt8.self)
        for (k, b) in bytes.enumerated() { p[k] = b }
        p[bytes.count] = 0
    }

    /// The first `count` bytes.
    public func bytes(_ count: Int) -> [UInt8] {
        Array(UnsafeRawBufferPointer(start: raw, count: min(max(count, 0), size)))
    }

    /// Copy `count` bytes from another message.
    public func copy(from m: Message, count: Int) {
        raw.copyMemory(from: m.raw, byteCount: min(count, size, m.size))
    }
}

/// <capv.h> layouts (offsets from the C compiler).
public enum Layout {
    public static var l: cotool_layout { cotool_capv_layout }
    public static var capv: Int { Int(l.capv) }
    public static var answerback: Int { Int(l.answerback) }
    public static var answerbackText: Int { Int(l.answerback_text) }
    public static var answerbackMax: Int { Int(l.answerback_max) }
}

/// Well-known capability-vector indices of <capv.h>.
public enum CapvIndex {
    public static let clocks: Int32 = 8, binds: Int32 = 10, syscall: Int32 = 12, paths: Int32 = 14
}

/// cocall(2) or, with `slow`, cocall_slow(2).
public func call(_ target: Capability?, _ out: Message, _ outlen: Int, _ input: Message, _ inlen: Int, slow: Bool) -> Int {
    slow ? cocall_slow(target, out.raw, outlen, input.raw, inlen) : cocall(target, out.raw, outlen, input.raw, inlen)
}

/// " (slow)" when `slow`.
public func slowSuffix(_ slow: Bool) -> String { slow ? " (slow)" : "" }

/// " (capsicum disabled)" unless the process is in capability mode.
public var capsicumSuffix: String {
    var mode: UInt32 = 0
    return cap_getmode(&mode) == 0 && mode == 0 ? " (capsicum disabled)" : ""
}

/// cap_enter(2) unless `-C` (err(1, "cap_enter") on failure).
public func enterCapabilityMode(unless noCapsicum: Bool) {
    if !noCapsicum && cap_enter() != 0 { Diag.err(1, "cap_enter") }
}

/// The PID of the caller a cookie names (cocachedpid(3)); warn("cogetpid")
/// and -1 on failure.
public func callerPID(_ cookie: Capability?) -> pid_t {
    var pid: pid_t = -1
    if cocachedpid(&pid, cookie) != 0 { Diag.warn("cogetpid"); return -1 }
    return pid
}

/// colookup(2) of a coregistered name, as coping(1)/copong(1) do it: ESRCH
/// prints CheriBSD's two hints, then every failure is `err(1, "colookup")`.
public func lookupOrExit(_ name: String) -> Capability? {
    var cap: UnsafeMutableRawPointer? = nil
    if colookup(name, &cap) != 0 {
        let e = errno
        if e == ESRCH {
            Diag.warnx("received ESRCH; this usually means there's nothing coregistered for \"\(name)\"")
            Diag.warnx("use coexec(1) to colocate; you might also find \"ps aux -o vmaddr\" useful")
        }
        Diag.err(1, "colookup", errno: e)
    }
    return cap
}

/// A seconds argument (`-s time`): strtod of the whole string, >= 0.
public func seconds(_ s: String) -> Double {
    let v = s.withCString { p -> Double in
        var end: UnsafeMutablePointer<CChar>? = nil
        let d = strtod(p, &end)
        guard let e = end, e != UnsafeMutablePointer(mutating: p), e.pointee == 0 else { return .nan }
        return d
    }
    if v.isNaN { Diag.errx(1, "argument to -s must be a number") }
    if v < 0 { Diag.errx(1, "argument to -s must be >= 0.0") }
    return v
}

/// Sleep `dt` seconds (usleep(dt * 1e6)) when dt > 0.
public func pause(_ dt: Double) {
    if dt > 0 { usleep(useconds_t(dt * 1e6)) }
}
