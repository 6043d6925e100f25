// colo ps and colo procstat: the views of processes and mappings, read from /proc and the tables.
import Bytes
import Glibc
import Runtime

/// What `colo ps` shows of one process: CheriBSD's `ps aux -o vmaddr`, per
/// colocated process, with the command line as that process executed it.
public struct ProcessView {
    public let user: String
    public let pid: pid_t
    public let ppid: pid_t
    public let state: String
    public let wchan: String
    public let vszKiB: Int
    public let rssKiB: Int
    public let startNanoseconds: UInt64
    public let cpuSeconds: Double
    public let vmaddr: UInt64
    /// The command line as the process executed it, control bytes shown as `?` (as ps does);
    /// every other byte as it is.
    public let command: ByteString
}

/// One mapping as `colo procstat -v` shows it, with the PID that owns it.
public struct MappingView {
    /// The owning process; nil for the kernel's own mappings (vdso, vvar).
    public let owner: pid_t?
    public let start, end: UInt64
    public let protection: String
    public let residentPages, privatePages: Int
    public let flags: String
    public let type: String
    public let path: ByteString
}

public enum Inspect {
    static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
    static let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))

    static func userName(_ pid: pid_t) -> String {
        guard let status = readFile("/proc/\(pid)/status"),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Uid:") }),
              let uid = UInt32(line.split(separator: "\t").dropFirst().first ?? "") else { return "?" }
        if let pw = getpwuid(uid) { return String(cString: pw.pointee.pw_name) }
        return String(uid)
    }

    static func view(pid: pid_t, ppid: pid_t?, wchan: String?, start: UInt64, vmaddr: UInt64, command: ByteString) -> ProcessView? {
        let f = statFields(pid)
        guard f.count > 20 else { return nil }
        let statm = readFile("/proc/\(pid)/statm")?.split(separator: " ").compactMap { Int($0) } ?? []
        let kernelWchan = readFile("/proc/\(pid)/wchan") ?? ""
        let cpu = (Double(f[11]) ?? 0) + (Double(f[12]) ?? 0)
        return ProcessView(user: userName(pid), pid: pid, ppid: ppid ?? pid_t(f[1]) ?? 0, state: String(f[0]),
                           wchan: (wchan?.isEmpty == false ? wchan! : kernelWchan == "0" || kernelWchan.isEmpty ? "-" : kernelWchan),
                           vszKiB: (statm.first ?? 0) * pageSize / 1024,
                           rssKiB: (statm.count > 1 ? statm[1] : 0) * pageSize / 1024,
                           startNanoseconds: start, cpuSeconds: cpu / ticks, vmaddr: vmaddr, command: command)
    }

    /// Every process of every live address space (the runtime first), or only
    /// those of the address spaces that contain one of `pids`.
    public static func processes(in pids: [pid_t] = []) -> [ProcessView] {
        var out = [ProcessView]()
        for space in SpaceDirectory.spaces() {
            let rt = space.table.runtimePID
            if !pids.isEmpty && !pids.contains(where: { p in p == rt || space.members.contains { $0.pid == p } }) { continue }
            let rtCommand: ByteString = "[colo runtime]"
            if let v = view(pid: rt, ppid: nil, wchan: nil, start: space.table.header.pointee.created_ns,
                            vmaddr: space.table.vmaddr, command: rtCommand) { out.append(v) }
            for m in space.members {
                // The table's ppid is the runtime; the kernel knows the real parent.
                if let v = view(pid: m.pid, ppid: nil, wchan: m.wchan, start: m.startNanoseconds,
                                vmaddr: space.table.vmaddr, command: printable(m.argv)) { out.append(v) }
            }
        }
        return out
    }

    /// Every mapping of the address space of `pid`, with its owner: the process
    /// whose slot holds it, the runtime for its own, none for the kernel's.
    public static func mappings(of pid: pid_t) throws(ColoError) -> [MappingView] {
        guard let smaps = readFileBytes("/proc/\(pid)/smaps"), !smaps.isEmpty else {
            if kill(pid, 0) != 0 && errno == ESRCH { throw ColoError(.ESRCH, "\(pid): No such process") }
            throw ColoError(.EACCES, "\(pid): cannot read /proc/\(pid)/smaps")
        }
        let space = SpaceDirectory.space(containing: pid)
        var slotOwner = [Int: pid_t]()
        for m in space?.members ?? [] { slotOwner[m.slot] = m.pid }
        let processOwner = space?.table.runtimePID ?? pid

        var out = [MappingView]()
        var cur: (start: UInt64, end: UInt64, perms: Substring, path: ByteString)? = nil
        var rss = 0, priv = 0, huge = 0
        var vmflags = [Substring]()
        func flush() {
            guard let c = cur else { return }
            let kernel = c.path.hasPrefix("[v")   // [vdso], [vvar], [vsyscall]
            let owner: pid_t? = kernel ? nil : Layout.slot(containing: c.start).map { slotOwner[$0] } ?? processOwner
            let r = c.perms.contains("r"), w = c.perms.contains("w"), x = c.perms.contains("x")
            let prot = (r ? "r" : "-") + (w ? "w" : "-") + (x ? "x" : "-") + "--"
            let cow = c.perms.hasSuffix("p") && w
            let flags = (cow ? "C" : "-") + "-" + (huge > 0 ? "S" : "-") + (vmflags.contains("gd") ? "D" : "-") + (vmflags.contains("lo") ? "L" : "-")
            let type: String
            if kernel { type = "ph" }
            else if c.path.hasPrefix("/") { type = "vn" }
            else if !r && !w && !x { type = "--" }
            else { type = "sw" }
            out.append(MappingView(owner: owner, start: c.start, end: c.end, protection: prot,
                                   residentPages: rss * 1024 / pageSize, privatePages: priv * 1024 / pageSize,
                                   flags: flags, type: type, path: c.path.hasPrefix("/") ? c.path : ""))
        }
        for lineBytes in smaps.split(separator: UInt8(ascii: "\n")) {
            // Every field is ASCII but a mapping's path, which is taken as bytes.
            let line = Substring(String(decoding: lineBytes, as: UTF8.self))
            if let dash = line.firstIndex(of: "-"), line[line.startIndex..<dash].allSatisfy(\.isHexDigit) {
                flush()
                let parts = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
                let range = parts[0].split(separator: "-")
                let byteFields = lineBytes.split(separator: UInt8(ascii: " "), maxSplits: 5, omittingEmptySubsequences: true)
                let path = byteFields.count > 5 ? ByteString(byteFields[5].drop { $0 == 0x20 }) : ByteString()
                cur = (UInt64(range[0], radix: 16) ?? 0, UInt64(range[1], radix: 16) ?? 0, parts[1], path)
                rss = 0; priv = 0; huge = 0; vmflags = []
                continue
            }
            let kv = line.split(separator: ":", maxSplits: 1)
            guard kv.count == 2 else { continue }
            let value = kv[1].split(separator: " ")
            switch kv[0] {
            case "Rss": rss = Int(value.first ?? "") ?? 0
            case "Private_Clean", "Private_Dirty": priv += Int(value.first ?? "") ?? 0
            case "AnonHugePages": huge = Int(value.first ?? "") ?? 0
            case "VmFlags": vmflags = value
            default: break
            }
        }
        flush()
        return out
    }
}

/// A command line for one line of output: its arguments joined by spaces, control bytes
/// shown as `?` as ps(1) does; every other byte, UTF-8 or not, as it is.
func printable(_ argv: [ByteString]) -> ByteString {
    var out = [UInt8]()
    for (i, a) in argv.enumerated() {
        if i > 0 { out.append(0x20) }
        out += a.bytes.map { $0 < 0x20 || $0 == 0x7f ? UInt8(ascii: "?") : $0 }
    }
    return ByteString(out)
}
