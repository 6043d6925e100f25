// swift-tools-version: 6.1
import PackageDescription

/// Code in Switcher and GuestShim runs on guest threads: no stack protector (it would read the
/// guest's %fs:0x28), no libc calls, no builtins turned into libc calls.
let guestSafeC: [CSetting] = [
    .unsafeFlags(["-fno-stack-protector", "-fno-builtin", "-fno-exceptions",
                  "-fcf-protection=none", "-O2", "-fno-omit-frame-pointer"]),
]

let package = Package(
    name: "colo",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "colo", targets: ["colo"]),
        .executable(name: "coexec", targets: ["coexec"]),
        .executable(name: "capv", targets: ["capv"]),
        .executable(name: "clocks", targets: ["clocks"]),
        .executable(name: "coping", targets: ["coping"]),
        .executable(name: "copong", targets: ["copong"]),
        .executable(name: "syscall_timing", targets: ["syscall_timing"]),
        .executable(name: "syscall_timing_pong", targets: ["syscall_timing_pong"]),
        .executable(name: "coregister", targets: ["coregister"]),
        .executable(name: "colookup", targets: ["colookup"]),
        .executable(name: "binds", targets: ["binds"]),
        .executable(name: "cotrace", targets: ["cotrace"]),
        .executable(name: "clearances", targets: ["clearances"]),
        .executable(name: "dispatch", targets: ["dispatch"]),
        .executable(name: "stevie", targets: ["stevie"]),
        .executable(name: "paths", targets: ["paths"]),
        .executable(name: "cs", targets: ["cs"]),
        /// LD_PRELOAD client libraries of the services, built as libNAME-preload.so
        /// (the product name NAME belongs to the command); scripts/install installs
        /// them as PREFIX/lib/libNAME.so, the name CheriBSD uses.
        .library(name: "clocks-preload", type: .dynamic, targets: ["libclocks"]),
        .library(name: "binds-preload", type: .dynamic, targets: ["libbinds"]),
        .library(name: "paths-preload", type: .dynamic, targets: ["libpaths"]),
        .library(name: "cs-preload", type: .dynamic, targets: ["libcs"]),
        /// CheriBSD's colocation API for Swift programs run colocated.
        .library(name: "Colo", targets: ["Colo"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(name: "CElf", path: "Sources/CElf", pkgConfig: "libelf",
                       providers: [.apt(["libelf-dev"])]),
        .systemLibrary(name: "CSeccomp", path: "Sources/CSeccomp", pkgConfig: "libseccomp",
                       providers: [.apt(["libseccomp-dev"])]),
        /// The colocation ABI, headers only: system-call numbers and the one table of
        /// colocation calls, address-space layout, shared structures.  Everything depends on it.
        .target(name: "ColoABI", path: "Sources/ABI"),
        /// The guest library (<colo.h>, <capv.h>, libcolo) colocated programs link.
        .target(name: "GuestAPI", dependencies: ["ColoABI"], path: "Sources/GuestAPI"),
        /// The switcher: fast cocall/coaccept on guest threads, the signal dispatcher, unborrow,
        /// saving and continuing guest contexts, its event log.
        .target(name: "Switcher", dependencies: ["ColoABI"], path: "Sources/Switcher",
                cSettings: guestSafeC),
        /// The guest shim: what runs in an address space for the runtime, on guest threads or
        /// in the in-mm agent: seccomp filter, start-up, SIGSYS handler, exec and fork
        /// emulation, fork children as address spaces, in-process tracing, watchdog, agent.
        .target(name: "GuestShim", dependencies: ["ColoABI", "Switcher"], path: "Sources/GuestShim",
                cSettings: guestSafeC),
        /// Linux's numbers, flags and layouts from its C headers (<sys/syscall.h>, <fcntl.h> ...).
        .target(name: "CLinux", path: "Sources/CLinux"),
        /// Errno: the error number every layer's errors carry.
        .target(name: "Errors", path: "Sources/Errors"),
        /// Byte strings: paths, argv and envp as the kernel sees them, never decoded as text.
        .target(name: "Bytes", path: "Sources/Bytes"),
        .target(name: "Loader", dependencies: ["Bytes", "CElf", "CLinux", "ColoABI", "Errors", "GuestShim"], path: "Sources/Loader"),
        .target(name: "Runtime", dependencies: ["Bytes", "CLinux", "Errors", "Loader", "Switcher", "GuestShim", "ColoABI", "GuestAPI", "CSeccomp"],
                path: "Sources/Runtime"),
        /// What shows an address space from outside: the tracers (ptrace and in-process),
        /// the switcher's event log, the ps/procstat views.
        .target(name: "Observability", dependencies: ["Bytes", "CLinux", "CSeccomp", "ColoABI", "GuestShim", "Switcher", "Runtime"],
                path: "Sources/Observability"),
        .executableTarget(name: "colo",
                          dependencies: ["Bytes", "CLinux", "ColoABI", "Errors", "Runtime", "Observability", .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          path: "Sources/Userland/colo"),
        .executableTarget(name: "coexec",
                          dependencies: ["Bytes", "Runtime", "ColoABI", .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          path: "Sources/Userland/coexec"),
        /// What the CheriBSD tools (capv, clocks, ...) share: C helpers for guest
        /// context (vfork spawn, SIGCHLD, <capv.h> layouts, libbsd's strvisx) and
        /// the Swift side (BSD getopt over ArgumentParser, err/warn, the service preamble).
        .target(name: "CoHelpers", dependencies: ["GuestAPI"], path: "Sources/Userland/CoHelpers",
                linkerSettings: [.linkedLibrary("bsd")]),
        .target(name: "CoTools",
                dependencies: ["Bytes", "CoHelpers", "GuestAPI", .product(name: "ArgumentParser", package: "swift-argument-parser")],
                path: "Sources/Userland/CoTools"),
        .executableTarget(name: "capv", dependencies: ["CoTools"], path: "Sources/Userland/capv"),
        .executableTarget(name: "clocks", dependencies: ["CoTools"], path: "Sources/Userland/clocks"),
        .executableTarget(name: "coping", dependencies: ["CoTools"], path: "Sources/Userland/coping"),
        .executableTarget(name: "copong", dependencies: ["CoTools"], path: "Sources/Userland/copong"),
        /// syscall_timing(1) and its responder: Swift, with the timed loops in C
        /// (TimingLoops, optimised in every configuration so debug and release time the same loops).
        .target(name: "TimingLoops", dependencies: ["GuestAPI"], path: "Sources/Userland/syscall_timing/TimingLoops",
                cSettings: [.unsafeFlags(["-O2"])], linkerSettings: [.linkedLibrary("bsd")]),
        .executableTarget(name: "syscall_timing", dependencies: ["CoTools", "TimingLoops"],
                          path: "Sources/Userland/syscall_timing", exclude: ["TimingLoops", "pong"]),
        .executableTarget(name: "syscall_timing_pong", dependencies: ["CoTools", "TimingLoops"],
                          path: "Sources/Userland/syscall_timing/pong"),
        .executableTarget(name: "coregister", dependencies: ["Bytes", "CoTools"], path: "Sources/Userland/coregister"),
        .executableTarget(name: "colookup", dependencies: ["Bytes", "CoTools"], path: "Sources/Userland/colookup"),
        .executableTarget(name: "binds", dependencies: ["CoTools"], path: "Sources/Userland/binds"),
        .executableTarget(name: "cotrace", dependencies: ["CoTools"], path: "Sources/Userland/cotrace"),
        .executableTarget(name: "clearances", dependencies: ["CoTools"], path: "Sources/Userland/clearances"),
        .executableTarget(name: "dispatch", dependencies: ["CoTools"], path: "Sources/Userland/dispatch"),
        .executableTarget(name: "stevie", dependencies: ["CoTools"], path: "Sources/Userland/stevie"),
        .executableTarget(name: "paths", dependencies: ["CoTools"], path: "Sources/Userland/paths"),
        .executableTarget(name: "cs", dependencies: ["CoTools"], path: "Sources/Userland/cs"),
        .target(name: "libclocks", dependencies: ["GuestAPI"], path: "Sources/Preload/clocks"),
        .target(name: "libbinds", dependencies: ["GuestAPI"], path: "Sources/Preload/binds"),
        .target(name: "libpaths", dependencies: ["GuestAPI"], path: "Sources/Preload/paths"),
        .target(name: "libcs", dependencies: ["GuestAPI"], path: "Sources/Preload/cs"),
        /// scripts/bench drives it: start-up, memory and system-call costs.
        .executableTarget(name: "colo-bench", dependencies: ["Bytes", "Runtime"], path: "Sources/Bench"),
        /// The guest library (<colo.h>) for Swift: typed errors, byte-array calls.
        .target(name: "Colo", dependencies: ["Errors", "GuestAPI"], path: "Sources/Colo"),
        /// A Swift service and caller using Colo, run colocated by the kernel tests.
        .executableTarget(name: "coswift", dependencies: ["Colo"], path: "Tests/Guests/coswift"),
        .testTarget(name: "LoaderTests", dependencies: ["Bytes", "Errors", "Loader"], path: "Tests/LoaderTests"),
        .testTarget(name: "RuntimeTests", dependencies: ["Bytes", "Errors", "Runtime", "Observability"], path: "Tests/RuntimeTests"),
    ]
)
