// `colo gdb`: gdb attached to a colocated process with the guest's program, load bias and shared libraries instead of what /proc/PID/exe and ...
import ArgumentParser
import Bytes
import Glibc
import Runtime

/// `colo gdb`: gdb attached to a colocated process with the guest's program, load bias and
/// shared libraries instead of what /proc/PID/exe and /proc/PID/auxv say (the runtime's,
/// since both are per mm).  See man/colo-gdb.1.
struct Gdb: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Debug a colocated process with gdb, with the guest's program and libraries.",
        usage: "colo gdb [--script] [--gdb PATH] [GDB-OPTIONS ...] PID",
        discussion: """
            Finds PID's slot, program, load bias and shared libraries, and runs gdb \
            attached to PID with them (so that bt shows the guest's symbols, not the \
            runtime's).  Options other than --script and --gdb are passed to gdb: \
            colo gdb --batch -ex bt PID prints a backtrace and detaches.  --script prints \
            the gdb commands instead of running gdb (gdb -x FILE runs them).
            """)

    @Argument(parsing: .captureForPassthrough, help: "[--script] [--gdb PATH] [gdb options ...] PID")
    var arguments: [String] = []

    /// gdb options that take a value (so the value is never taken for the PID).
    static let valued: Set<String> = [
        "-ex", "-eval-command", "-iex", "-init-eval-command", "-x", "-command", "-ix", "-init-command",
        "-cd", "-d", "-directory", "-data-directory", "-D", "-b", "-l", "-tty", "-i", "-interpreter",
    ]
    /// gdb options that would choose another program or process: colo gdb chooses those.
    static let refused: Set<String> = ["-p", "-pid", "-e", "-exec", "-se", "-s", "-symbols", "-c", "-core", "-args"]

    /// `--opt` and `-opt` are the same option to gdb; `--opt=value` carries its value.
    static func canonical(_ a: String) -> String {
        var s = a.hasPrefix("--") ? String(a.dropFirst()) : a
        if let eq = s.firstIndex(of: "=") { s = String(s[..<eq]) }
        return s
    }

    func run() throws {
        var script = false
        var gdb: String? = nil
        var pid: pid_t? = nil
        var passed = [String]()
        var i = 0
        let args = arguments
        while i < args.count {
            let a = args[i]
            let c = Self.canonical(a)
            if a == "--script" {
                script = true
            } else if a == "--gdb" {
                guard i + 1 < args.count else { fail("--gdb needs a path", status: 2) }
                gdb = args[i + 1]; i += 1
            } else if a.hasPrefix("--gdb=") {
                gdb = String(a.dropFirst(6))
            } else if a == "-h" || a == "--help" {
                print(Gdb.helpMessage()); Glibc.exit(0)
            } else if a.hasPrefix("-") && Self.refused.contains(c) {
                fail("\(a): colo gdb chooses the program and the process itself (usage: \(Self.configuration.usage!))", status: 2)
            } else if a.hasPrefix("-") && Self.valued.contains(c) && !a.contains("=") {
                guard i + 1 < args.count else { fail("\(a) needs a value", status: 2) }
                passed += [a, args[i + 1]]; i += 1
            } else if pid == nil, !a.hasPrefix("-"), let n = Int32(a), n > 0 {
                pid = n
            } else {
                passed.append(a)
            }
            i += 1
        }
        guard let pid else { fail("no PID given (usage: \(Self.configuration.usage!))", status: 2) }

        let images: GuestImages
        do throws(ColoError) { images = try GuestImages.find(pid) } catch { fail(error.message) }
        if script { print(GdbScript.commands(for: images), terminator: ""); return }
        // The runtime without its debug information: gdb needs its symbols and unwind tables
        // only, and a debug build's Swift DWARF makes gdb print a warning per missing clang
        // module.  (--script names the file itself, to stay valid after this process.)
        let runtimeFile = images.runtime.flatMap { strippedCopy($0.path) }.map { "/dev/fd/\($0)" }
        let commands = GdbScript.commands(for: images, runtimePath: runtimeFile)

        let exe = gdb ?? (getenv("COLO_GDB").map { String(cString: $0) } ?? "gdb")
        let path = resolve(exe)
        guard access(path, X_OK) == 0 else { fail("\(exe): not found (install gdb, or give --gdb PATH)", status: 127) }
        // The command file is an unlinked file that gdb reads through /dev/fd: nothing
        // to clean up, and gdb replaces this process (terminal, signals and status are its own).
        let fd = commandFile(commands)
        ([exe, "-q", "-x", "/dev/fd/\(fd)"] + passed).map { ByteString($0) }.withCStringArray { _ = execv(path, $0) }
        fail("\(exe): \(String(cString: strerror(errno)))", status: 126)
    }

    /// A descriptor (inherited across exec) of an unlinked copy of `path` without debug
    /// sections (objcopy --strip-debug keeps .symtab and .eh_frame); nil if that fails.
    func strippedCopy(_ path: String) -> Int32? {
        let dir = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        var template = Array((dir + "/colo-gdb-runtime-XXXXXX").utf8CString)
        let tmpfd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard tmpfd >= 0 else { return nil }
        close(tmpfd)
        let tmp = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        defer { unlink(tmp) }
        var fa = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fa)
        defer { posix_spawn_file_actions_destroy(&fa) }
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0)
        var child: pid_t = 0
        let rc = ["objcopy", "--strip-debug", path, tmp].map { ByteString($0) }.withCStringArray { argv in
            posix_spawnp(&child, "objcopy", &fa, nil, argv, environ)
        }
        guard rc == 0 else { return nil }
        var status: Int32 = 0
        while waitpid(child, &status, 0) < 0 && errno == EINTR {}
        guard status == 0 else { return nil }
        let fd = open(tmp, O_RDONLY)
        return fd >= 0 ? fd : nil
    }

    /// A descriptor (inherited across exec) of an unlinked file holding `text`.
    func commandFile(_ text: String) -> Int32 {
        let dir = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        var template = Array((dir + "/colo-gdb-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        if fd < 0 { fail("cannot create the gdb command file in \(dir): \(String(cString: strerror(errno)))") }
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }   // /dev/fd/N still opens it
        if !Array(text.utf8).withUnsafeBytes({ writeAll(fd, $0) }) {
            fail("cannot write the gdb command file: \(String(cString: strerror(errno)))")
        }
        lseek(fd, 0, SEEK_SET)
        return fd
    }
}

/// The gdb commands that set up a colocated process.
enum GdbScript {
    /// A file name as gdb's argument splitter reads it.
    static func quoted(_ path: String) -> String {
        if !path.contains(where: { $0 == " " || $0 == "\t" || $0 == "\"" || $0 == "'" || $0 == "\\" }) { return path }
        return "\"" + path.replacing("\\", with: "\\\\").replacing("\"", with: "\\\"") + "\""
    }

    static func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }

    /// The command file; `runtimePath` replaces the runtime executable's path.
    static func commands(for g: GuestImages, runtimePath: String? = nil) -> String {
        var s = "# colo gdb: process \(g.pid), slot \(g.slot) [\(hex(g.slotStart)), \(hex(g.slotEnd))) of the address space of runtime \(g.runtimePID)\n"
        s += "# command: \(printableArgs(g.argv))\n"
        for o in g.objects {
            s += "# \(o.kind.rawValue): \(o.path) at \(hex(o.base))\n"
        }
        s += "# libraries from: " + (g.fromLinkMap ? "the guest's r_debug (gdb reads it through the program's DT_DEBUG)" : "/proc/\(g.pid)/maps (no r_debug)") + "\n"
        // /proc/PID/exe is the runtime: never let gdb swap the program for it.
        s += "set exec-file-mismatch off\n"
        if !g.fromLinkMap {
            // gdb would fall back on /proc/PID/auxv, i.e. the runtime's r_debug and libraries.
            s += "set auto-solib-add off\n"
        }
        let program = g.objects[0]
        s += "exec-file \(quoted(program.path))\n"
        s += "symbol-file -o \(hex(program.base)) \(quoted(program.path))\n"
        if let rt = g.runtime {
            // The SIGSYS handler runs on the guest's threads from the runtime's image: its
            // symbols and unwind tables name those frames (and lead back to the guest's).
            s += "with confirm off -- add-symbol-file -o \(hex(rt.base)) \(quoted(runtimePath ?? rt.path))\n"
        }
        s += "attach \(g.pid)\n"
        if !g.fromLinkMap {
            for o in g.objects.dropFirst() {
                s += "with confirm off -- add-symbol-file -o \(hex(o.base)) \(quoted(o.path))\n"
            }
        }
        s += sigreturnUnwinder
        return s
    }

    /// The handler returns to the runtime's restorer (mov $15,%eax; syscall), which gdb does
    /// not take for a signal trampoline (glibc's is mov $15,%rax): without this, a backtrace
    /// of a process inside the SIGSYS handler (a blocking sigsuspend, an exec in place) stops
    /// there.  The interrupted registers are in the ucontext at the restorer frame's %rsp
    /// (uc_mcontext at offset 40, gregs in <sys/ucontext.h> order).  Last in the file: a gdb
    /// without Python fails here and loses only this.
    static let sigreturnUnwinder = """
        python
        import gdb, struct
        from gdb.unwinder import Unwinder, register_unwinder
        from gdb.FrameDecorator import FrameDecorator

        class ColoFrameId:
            def __init__(self, sp, pc):
                self.sp = sp
                self.pc = pc

        def colo_restorer_at(pc):
            try:
                return bytes(gdb.selected_inferior().read_memory(int(pc), 7)) == b"\\xb8\\x0f\\x00\\x00\\x00\\x0f\\x05"
            except gdb.MemoryError:
                return False

        class ColoSigreturn(Unwinder):
            names = ("r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
                     "rdi", "rsi", "rbp", "rbx", "rdx", "rax", "rcx", "rsp", "rip")

            def __init__(self):
                super().__init__("colo-sigreturn")

            def __call__(self, pending):
                pc = pending.read_register("rip")
                if not colo_restorer_at(pc):
                    return None
                sp = pending.read_register("rsp")
                try:
                    memory = gdb.selected_inferior().read_memory(int(sp) + 40, 17 * 8)
                except gdb.MemoryError:
                    return None
                regs = struct.unpack("<17Q", bytes(memory))
                info = pending.create_unwind_info(ColoFrameId(sp, pc))
                for name, value in zip(self.names, regs):
                    info.add_saved_register(name, gdb.Value(value).cast(pending.read_register(name).type))
                return info

        register_unwinder(None, ColoSigreturn(), replace=True)

        class ColoFrame(FrameDecorator):
            def __init__(self, base, restorer):
                super().__init__(base)
                self.restorer = restorer

            def function(self):
                if self.restorer:
                    return "<signal handler called>"
                # gdb's own name (looked up at pc - 1 in caller frames, as bt does), not the
                # default's lookup at pc, which names the next function after a call that
                # ends its function.
                name = self.inferior_frame().name()
                return name if name is not None else super().function()

        class ColoFrameFilter:
            def __init__(self):
                self.name = "colo-sigreturn"
                self.priority = 100
                self.enabled = True
                gdb.frame_filters[self.name] = self

            def filter(self, frames):
                return (ColoFrame(f, colo_restorer_at(f.inferior_frame().pc())) for f in frames)

        ColoFrameFilter()
        end

        """

    /// The command line for a comment line: each argument with strace's escapes.
    static func printableArgs(_ argv: [ByteString]) -> String {
        argv.map(\.escaped).joined(separator: " ")
    }
}
