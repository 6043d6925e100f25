// Loader: plan (validate, #! scripts) and map a program into a slot, with execve's checks and errors.
import Bytes
import ColoABI
import Glibc

/// One ELF object mapped into a slot.
public struct MappedImage: Sendable, Equatable {
    /// The file it was mapped from.
    public let path: ByteString
    /// What was added to every p_vaddr.
    public let loadBias: UInt64
    /// The first mapped address (page aligned).
    public let start: UInt64
    /// The first address after the mapped span (page aligned).
    public let end: UInt64
}

/// A program mapped into its slot with its initial stack built, ready to be started.
public struct LoadedProgram: Sendable, Equatable {
    /// Where to jump: the interpreter's entry if there is one, else the program's.
    public let entry: UInt64
    /// The initial stack pointer, 16-byte aligned, pointing at argc.
    public let stackPointer: UInt64
    /// The initial program break: the program's page-aligned end plus COLO_BRK_GAP.
    public let brkStart: UInt64
    /// The first free address of the slot's mmap area (after the interpreter).
    public let mmapCursor: UInt64
    /// The program (for a #! script, the interpreter the script names).
    public let program: MappedImage
    /// The PT_INTERP interpreter (ld.so), if the program has one.
    public let interpreter: MappedImage?
    /// argv as executed, after #! rewriting.
    public let argv: [ByteString]
    /// The path given to execve (AT_EXECFN).
    public let execPath: ByteString
    /// The basename of execPath, at most 15 bytes, as the kernel's comm.
    public let comm: ByteString
}

/// A program that plan() found fit to colocate: the validated program, its interpreter and the
/// final argv. It owns the open files, which are closed when it is released.
public final class ProgramImage: Sendable {
    /// argv as it will be executed, after #! rewriting.
    public let argv: [ByteString]
    /// The path given to execve (AT_EXECFN).
    public let execPath: ByteString
    /// The basename of execPath, at most 15 bytes, as the kernel's comm.
    public let comm: ByteString
    let program: ElfObject
    let interpreter: ElfObject?

    init(program: ElfObject, interpreter: ElfObject?, argv: [ByteString], execPath: ByteString) {
        self.program = program
        self.interpreter = interpreter
        self.argv = argv
        self.execPath = execPath
        self.comm = Loader.commandName(execPath)
    }

    /// The ELF file that will be mapped (for a #! script, the interpreter the script names).
    public var path: ByteString { program.file.path }
    /// The PT_INTERP path, if the program has one.
    public var interpreterPath: ByteString? { interpreter?.file.path }
    /// What /proc/PID/exe names for the process: the ELF file executed (for a #! script, its
    /// interpreter), as the kernel names it.
    public var exePath: ByteString { program.file.kernelPath() }
}

/// What execve of a path should do.
public enum ExecPlan: Sendable {
    /// Map the program into a slot with Loader.map.
    case colocate(ProgramImage)
    /// Not colocatable (ET_EXEC, or see ElfObject.nativeExecReason): do a real execve of `path` with `argv`
    /// (both as given to plan, so the kernel redoes any #! processing itself).
    case nativeExec(path: ByteString, argv: [ByteString])
}

/// Loads ELF programs into colocation slots, with execve's checks and errors.
public enum Loader {
    /// Deepest chain of #! scripts followed; one more is ELOOP.
    public static let maxScriptDepth = 4
    /// Longest single argv or envp string, NUL included (Linux's MAX_ARG_STRLEN).
    public static let maxArgumentLength = 32 * 4096

    /// Resolve #! scripts, open and validate everything WITHOUT mapping anything. With the
    /// `stackSize` map() will be given, the arguments' E2BIG is found here, before an exec
    /// passes its point of no return.  Relative paths (the program's, a #! interpreter's, a
    /// PT_INTERP) are looked up from `directory` (the exec'ing process's cwd), else from ours.
    public static func plan(path: ByteString, argv: [ByteString], envp: [ByteString],
                            stackSize: Int? = nil, directory: ByteString? = nil) throws(LoadError) -> ExecPlan {
        var file = try ExecFile.open(path, from: directory)
        var arguments = argv.isEmpty ? [""] : argv   // Linux runs an empty argv as [""]
        try checkArguments(arguments + envp, totalLimit: nil)
        for depth in 0... {
            let header = try file.read(count: Shebang.headerSize, at: 0)
            guard let script = try Shebang(header: header) else { break }
            guard depth < maxScriptDepth else {
                throw LoadError(errno: .ELOOP, message: "\(path): more than \(maxScriptDepth) nested #! scripts")
            }
            arguments = [script.interpreter] + (script.argument.map { [$0] } ?? []) + [file.path]
                + arguments.dropFirst()
            file = try ExecFile.open(script.interpreter, from: directory)
        }
        let program = try ElfObject(file: file)
        guard program.nativeExecReason == nil else { return .nativeExec(path: path, argv: argv) }
        let interpreter = try program.interpreterPath.map { (p) throws(LoadError) in try loadInterpreter(p, from: directory) }
        guard interpreter?.nativeExecReason == nil else { return .nativeExec(path: path, argv: argv) }
        if let stackSize { try checkArguments(arguments + envp + [path], totalLimit: stackSize / 4) }
        return .colocate(ProgramImage(program: program, interpreter: interpreter,
                                      argv: arguments, execPath: path))
    }

    /// Where the vDSO is in process `pid`'s mm (its AT_SYSINFO_EHDR), nil if that cannot be read.
    public static func vdso(of pid: pid_t) -> UInt64? {
        LibC.auxv(of: String(pid))?[UInt64(AT_SYSINFO_EHDR)]
    }

    /// Map a validated program into the slot and build its stack, in this process's mm.
    /// `stackSize` must be a positive multiple of the page size that fits between slot.stackLimit and slot.stackTop.
    /// On failure everything mapped so far is unmapped again.
    public static func map(_ image: ProgramImage, into slot: SlotLayout, envp: [ByteString], capv: [UInt64],
                           stackSize: Int) throws(LoadError) -> LoadedProgram {
        let (loaded, plan) = try layout(image, into: slot, envp: envp, capv: capv, stackSize: stackSize)
        try plan.apply()
        return loaded
    }

    /// What mapping a validated program into the slot does, as a plan (nothing is mapped yet):
    /// the program as it will be once the plan is applied, while `image` (which holds the
    /// files the plan maps from) is still open.
    /// `vdso`: where the vDSO is in the mm the program is to run in (nil: this process's).
    public static func layout(_ image: ProgramImage, into slot: SlotLayout, envp: [ByteString], capv: [UInt64],
                              stackSize: Int, vdso: UInt64? = nil) throws(LoadError) -> (LoadedProgram, MappingPlan) {
        guard stackSize > 0, UInt64(stackSize) % Page.size == 0,
              UInt64(stackSize) <= slot.stackTop - slot.stackLimit else {
            throw LoadError(errno: .EINVAL, message: "bad stack size \(stackSize)")
        }
        try checkArguments(image.argv + envp + [image.execPath], totalLimit: stackSize / 4)
        var plan = MappingPlan()
        let program = plan.map(image.program, at: slot.imageBase(alignment: image.program.alignment))
        let programEntry = program.loadBias &+ image.program.entry
        var interpreter: MappedImage?
        var entry = programEntry
        if let object = image.interpreter {
            let mapped = plan.map(object, at: slot.mmapLow)
            interpreter = mapped
            entry = mapped.loadBias &+ object.entry
        }
        let stackTop = slot.stackTop(alignment: image.program.alignment)
        let stackLow = stackTop - UInt64(stackSize)
        plan.reserve(stackLow, length: UInt64(stackSize), prot: PROT_READ | PROT_WRITE, flags: MAP_NORESERVE, what: "stack")
        let aux = ProgramAux(
            phdr: program.loadBias &+ image.program.phdrVaddr,
            phnum: UInt64(image.program.phnum),
            base: interpreter?.loadBias ?? 0,
            entry: programEntry,
            vdso: vdso ?? LibC.auxval(AT_SYSINFO_EHDR))
        let stack = try InitialStack(top: stackTop, bottom: stackLow, argv: image.argv, envp: envp,
                                     execPath: image.execPath, capv: capv, aux: aux)
        plan.copy(stack.bytes, to: stack.stackPointer, what: "the initial stack")
        plan.entry = entry
        plan.stackPointer = stack.stackPointer
        let loaded = LoadedProgram(entry: entry, stackPointer: stack.stackPointer,
                                   brkStart: program.end + COLO_BRK_GAP,
                                   mmapCursor: interpreter?.end ?? slot.mmapLow,
                                   program: program, interpreter: interpreter, argv: image.argv,
                                   execPath: image.execPath, comm: image.comm)
        return (loaded, plan)
    }

    /// Opens and validates a PT_INTERP interpreter; format errors are ELIBBAD as in Linux (its
    /// own PT_INTERP is ignored, as Linux ignores it).
    private static func loadInterpreter(_ path: ByteString, from directory: ByteString?) throws(LoadError) -> ElfObject {
        let file = try ExecFile.open(path, from: directory)
        do throws(LoadError) {
            return try ElfObject(file: file, isInterpreter: true)
        } catch where error.errno == .ENOEXEC {
            throw LoadError(errno: .ELIBBAD, message: "bad interpreter: \(error.message)")
        }
    }

    /// E2BIG if a string is longer than maxArgumentLength or, when `totalLimit` is given, if the
    /// strings and their pointers take more than `totalLimit` bytes.
    private static func checkArguments(_ strings: [ByteString], totalLimit: Int?) throws(LoadError) {
        var total = 0
        for string in strings {
            let length = string.count + 1
            guard length <= maxArgumentLength else {
                throw LoadError(errno: .E2BIG, message: "an argument or environment string of \(length) bytes")
            }
            total += length + MemoryLayout<UInt64>.size
        }
        if let totalLimit, total > totalLimit {
            throw LoadError(errno: .E2BIG, message: "arguments and environment take \(total) bytes, more than \(totalLimit)")
        }
    }

    /// The kernel's comm for a path: its last component, cut to 15 bytes (as __set_task_comm
    /// cuts it: at a byte, whatever the encoding).
    static func commandName(_ path: ByteString) -> ByteString {
        ByteString(path.lastComponent.bytes.prefix(15))
    }
}
