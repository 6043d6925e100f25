// LoaderFuzz.swift: the libFuzzer entry point of scripts/fuzz/loader: each input becomes an executable file that Loader.plan validates and plans (no mapping).
import Bytes
import Glibc

/// The memfd every input is written to (its mode, 0777, lets execve's X_OK check pass); the
/// Glibc module leaves memfd_create(2) out.
private let input: Int32 = {
    typealias MemfdCreate = @convention(c) (UnsafePointer<CChar>, UInt32) -> Int32
    guard let address = dlsym(nil, "memfd_create") else { fatalError("libc has no memfd_create") }
    return unsafeBitCast(address, to: MemfdCreate.self)("colo-fuzz-input", 0)
}()

/// The path by which plan opens it.
private let inputPath = ByteString("/proc/self/fd/\(input)")

/// Writes the input to the memfd and plans an execve of it; every outcome but a crash, a hang
/// or a leak is fine.
@_cdecl("LLVMFuzzerTestOneInput")
public func loaderFuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard input >= 0, ftruncate(input, 0) == 0 else { fatalError("memfd: \(errno)") }
    var done = 0
    while done < size {
        let n = pwrite(input, data + done, size - done, off_t(done))
        guard n > 0 else { fatalError("cannot write the memfd: \(errno)") }
        done += n
    }
    _ = try? Loader.plan(path: inputPath, argv: [inputPath, "a"], envp: ["X=1"])
    return 0
}
