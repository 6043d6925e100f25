// InitialStack: a program's initial stack (argv, envp, auxv with AT_CAPC/AT_CAPV) as create_elf_tables lays it out.
import Bytes
import CElf
import ColoABI
import Glibc

/// What the auxv says about the mapped program and interpreter (relocated addresses).
struct ProgramAux {
    /// AT_PHDR: where the program headers are mapped (0 if they are not).
    let phdr: UInt64
    /// AT_PHNUM.
    let phnum: UInt64
    /// AT_BASE: the interpreter's load bias, 0 without one.
    let base: UInt64
    /// AT_ENTRY: the program's own entry point.
    let entry: UInt64
    /// AT_SYSINFO_EHDR: where the vDSO is in the mm the program is to run in.
    let vdso: UInt64
}

/// A program's initial stack as Linux's create_elf_tables lays it out, from the top down: an
/// 8-byte NULL, the argv, envp and execfn strings, 16-byte alignment, the platform string, 16
/// random bytes, the capability vector (16-byte aligned), then auxv, envp, argv and argc at the
/// 16-byte aligned stack pointer.
struct InitialStack {
    /// The stack pointer: the address of argc.
    let stackPointer: UInt64
    /// The stack's contents from `stackPointer` up to the top.
    let bytes: [UInt8]

    /// The AT_PLATFORM string.
    static let platform = "x86_64"

    /// Lays out the stack in [bottom, top); E2BIG if it does not fit. Reads 16 fresh random
    /// bytes for AT_RANDOM.
    init(top: UInt64, bottom: UInt64, argv: [ByteString], envp: [ByteString], execPath: ByteString, capv: [UInt64],
         aux: ProgramAux) throws(LoadError) {
        var random = [UInt8](repeating: 0, count: 16)
        guard LibC.getrandom(&random, random.count, 0) == random.count else {
            throw .system("getrandom failed")
        }
        var cursor = top - 8
        var stringAddresses: [UInt64] = []
        let strings = (argv + envp + [execPath]).map(\.nulTerminated)
        cursor -= UInt64(strings.reduce(0) { $0 + $1.count })
        var next = cursor
        for string in strings {
            stringAddresses.append(next)
            next += UInt64(string.count)
        }
        cursor &= ~15
        let platform = Array(Self.platform.utf8) + [0]
        cursor -= UInt64(platform.count)
        let platformAddress = cursor
        cursor -= UInt64(random.count)
        let randomAddress = cursor
        var capvAddress: UInt64 = 0
        if !capv.isEmpty {
            guard UInt64(capv.count) < (cursor - bottom) / 8 else {
                throw LoadError(errno: .E2BIG, message: "a capability vector of \(capv.count) entries exceeds the stack")
            }
            cursor = (cursor - UInt64(capv.count * 8)) & ~15
            capvAddress = cursor
        }
        let auxv: [(Int32, UInt64)] = [
            (AT_SYSINFO_EHDR, aux.vdso),
            (AT_MINSIGSTKSZ, LibC.auxval(AT_MINSIGSTKSZ)),
            (AT_HWCAP, LibC.auxval(AT_HWCAP)),
            (AT_PAGESZ, Page.size),
            (AT_CLKTCK, LibC.auxval(AT_CLKTCK)),
            (AT_PHDR, aux.phdr),
            (AT_PHENT, UInt64(MemoryLayout<Elf64_Phdr>.size)),
            (AT_PHNUM, aux.phnum),
            (AT_BASE, aux.base),
            (AT_FLAGS, 0),
            (AT_ENTRY, aux.entry),
            (AT_UID, UInt64(getuid())),
            (AT_EUID, UInt64(geteuid())),
            (AT_GID, UInt64(getgid())),
            (AT_EGID, UInt64(getegid())),
            (AT_SECURE, 0),
            (AT_RANDOM, randomAddress),
            (AT_HWCAP2, LibC.auxval(AT_HWCAP2)),
            (AT_EXECFN, stringAddresses[stringAddresses.count - 1]),
            (AT_PLATFORM, platformAddress),
            (AT_CAPC, UInt64(capv.count)),
            (AT_CAPV, capvAddress),
            (AT_NULL, 0),
        ]
        var words: [UInt64] = [UInt64(argv.count)]
        words += stringAddresses.prefix(argv.count)
        words.append(0)
        words += stringAddresses[argv.count..<argv.count + envp.count]
        words.append(0)
        for (type, value) in auxv { words += [UInt64(type), value] }
        stackPointer = (cursor - UInt64(words.count * 8)) & ~15
        guard stackPointer >= bottom else {
            throw LoadError(errno: .E2BIG, message: "arguments, environment and capability vector exceed the stack")
        }

        let base = stackPointer
        var content = [UInt8](repeating: 0, count: Int(top - base))
        func put(_ data: [UInt8], at address: UInt64) {
            content.replaceSubrange(Int(address - base)..<Int(address - base) + data.count, with: data)
        }
        func put(_ values: [UInt64], at address: UInt64) {
            put(values.flatMap { value in withUnsafeBytes(of: value.littleEndian, Array.init) }, at: address)
        }
        for (string, address) in zip(strings, stringAddresses) { put(string, at: address) }
        put(platform, at: platformAddress)
        put(random, at: randomAddress)
        if !capv.isEmpty { put(capv, at: capvAddress) }
        put(words, at: stackPointer)
        bytes = content
    }
}
