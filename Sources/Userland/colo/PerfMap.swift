// `colo perfmap`: the function symbols of a colocated process's program, interpreter and shared libraries at their load addresses, in perf's ...
import ArgumentParser
import Glibc
import Runtime

/// `colo perfmap`: the function symbols of a colocated process's program, interpreter and
/// shared libraries at their load addresses, in perf's map-file format (START SIZE NAME,
/// hexadecimal), /tmp/perf-PID.map by default.  See man/colo-gdb.1 for what perf does
/// with it (and does not).
struct PerfMap: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "perfmap",
        abstract: "Write a perf map file (/tmp/perf-PID.map) of a colocated process's symbols.",
        discussion: """
            One line per function of the guest's program, interpreter and shared libraries, \
            at the address it has in the process's slot: START SIZE NAME.  perf(1) reads \
            /tmp/perf-PID.map for anonymous executable memory only; colo-gdb(1) says when \
            the file helps and how to profile colocated programs.
            """)

    @Option(name: .short, help: "Write here instead of /tmp/perf-PID.map ('-': standard output).")
    var o: String?

    @Argument(help: "A colocated process.")
    var pid: Int32

    func run() throws {
        let images: GuestImages
        do throws(ColoError) { images = try GuestImages.find(pid) } catch { fail(error.message) }
        var lines = [(UInt64, String)]()
        for object in images.objects {
            guard let elf = ElfFile(path: object.path) else { continue }
            for f in elf.functions() where f.size > 0 {
                let start = object.base &+ f.value
                lines.append((start, String(start, radix: 16) + " " + String(f.size, radix: 16) + " " + f.name))
            }
        }
        lines.sort { $0.0 < $1.0 }
        var text = ""
        var last = ""
        var count = 0
        for (_, l) in lines where l != last { text += l + "\n"; last = l; count += 1 }   // aliases at one address stay
        let target = o ?? "/tmp/perf-\(pid).map"
        if target == "-" { print(text, terminator: ""); return }
        let fd = open(target, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd < 0 { fail("\(target): \(String(cString: strerror(errno)))") }
        if !Array(text.utf8).withUnsafeBytes({ writeAll(fd, $0) }) { fail("\(target): \(String(cString: strerror(errno)))") }
        close(fd)
        print("\(target): \(count) functions of \(images.objects.count) objects")
    }
}
