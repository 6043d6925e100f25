// colo-bench: the measurements behind scripts/bench for the address-space layer.
// Every figure is a median over repetitions taken in this one run, side by side
// with its reference, pinned to one CPU.
//
//   colo-bench start  HELLO [N]   median start-to-exit of a colocated program
//   colo-bench memory IDLE  [N]   page tables and RSS of N idle processes, colocated vs separate
//   colo-bench syscall LOOP       getppid() cost inside a colocated process
//
// The native references of start and syscall run in separate processes
// (Tests/Guests/spawn_native.c, syscall_loop.c): a process that created an
// address space carries its seccomp filter, and so would its native children;
// memory spawns its separate processes before it creates its address space.
import Bytes
import Glibc
import Runtime

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) * 1e9 + Double(ts.tv_nsec)
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.isEmpty ? .nan : s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

func fmt(_ x: Double, _ digits: Int = 1) -> String {
    var p = 1.0
    for _ in 0..<digits { p *= 10 }
    let v = (x * p).rounded() / p
    return String(v)
}

let devnull = open("/dev/null", O_RDWR)

/// posix_spawn `argv` with stdio on `out` (default /dev/null); returns its pid.
func spawnNative(_ argv: [String], out: Int32 = devnull) -> pid_t {
    var fa = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&fa)
    posix_spawn_file_actions_adddup2(&fa, devnull, 0)
    posix_spawn_file_actions_adddup2(&fa, out, 1)
    posix_spawn_file_actions_adddup2(&fa, devnull, 2)
    var pid: pid_t = 0
    let rc = argv.map { ByteString($0) }.withCStringArray { av in
        rawEnvironment().withCStringArray { ev in posix_spawn(&pid, argv[0], &fa, nil, av, ev) }
    }
    posix_spawn_file_actions_destroy(&fa)
    precondition(rc == 0, "posix_spawn \(argv[0]): \(rc)")
    return pid
}

func waitNative(_ pid: pid_t) -> Int32 {
    var st: Int32 = 0
    while waitpid(pid, &st, 0) < 0 && errno == EINTR {}
    return st
}

func spawnColocated(_ space: AddressSpace, _ argv: [String], out: Int32 = devnull) -> pid_t {
    var r = SpawnRequest(path: ByteString(argv[0]), argv: argv.map { ByteString($0) }, envp: rawEnvironment())
    r.stdio = [devnull, out, devnull]
    do { return try space.spawn(r).pid } catch { fatalError("spawn \(argv[0]): \(error)") }
}

/// The number of line `key` of /proc/PID/status (KiB for the Vm lines), or 0.
func procStatusNumber(_ pid: pid_t, _ key: String) -> Int {
    guard let s = readFile("/proc/\(pid)/status"),
          let line = s.split(separator: "\n").first(where: { $0.hasPrefix(key + ":") }) else { return 0 }
    return Int(line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first ?? "") ?? 0
}

func pssKiB(_ pid: pid_t) -> Int {
    guard let s = readFile("/proc/\(pid)/smaps_rollup"),
          let line = s.split(separator: "\n").first(where: { $0.hasPrefix("Pss:") }) else { return 0 }
    return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
}

func benchStart(_ hello: String, _ n: Int) throws {
    let space = try AddressSpace()
    var colo = [Double]()
    for i in -n / 10..<n {
        let t = now()
        _ = space.wait(for: spawnColocated(space, [hello]))
        if i >= 0 { colo.append(now() - t) }
    }
    print("start.colocated_us=\(fmt(median(colo) / 1000))")
}

func benchMemory(_ idle: String, _ n: Int) throws {
    // The separate processes first: spawned after AddressSpace() installed
    // the filter on this process, they would carry it.
    var colo = [pid_t](), sep = [pid_t]()
    for _ in 0..<n { sep.append(spawnNative([idle])) }
    let space = try AddressSpace()
    let aloneKiB = procStatusNumber(getpid(), "VmPTE")
    for _ in 0..<n { colo.append(spawnColocated(space, [idle])) }
    usleep(500_000)
    // What colocation costs: the address space's mm (its agent's) and the runtime's own,
    // a separate mm since the runtime left the address space (the same process before).
    let me = getpid(), mm = space.table.mmPID
    let spacePTE = procStatusNumber(mm, "VmPTE"), spaceRSS = procStatusNumber(mm, "VmRSS"), spacePSS = pssKiB(mm)
    let ownPTE = mm == me ? 0 : procStatusNumber(me, "VmPTE"), ownRSS = mm == me ? 0 : procStatusNumber(me, "VmRSS")
    let ownPSS = mm == me ? 0 : pssKiB(me)
    let coloPTE = spacePTE + ownPTE, coloRSS = spaceRSS + ownRSS, coloPSS = spacePSS + ownPSS
    let sepPTE = sep.map { procStatusNumber($0, "VmPTE") }.reduce(0, +)
    let sepRSS = sep.map { procStatusNumber($0, "VmRSS") }.reduce(0, +)
    let sepPSS = sep.map { pssKiB($0) }.reduce(0, +)
    let modes = { (ps: [pid_t]) in Set(ps.map { procStatusNumber($0, "Seccomp") }).sorted().map(String.init).joined(separator: "/") }
    let sepSeccomp = modes(sep), coloSeccomp = modes(colo)
    for p in colo + sep { kill(p, SIGKILL) }
    for p in colo { _ = space.wait(for: p) }
    for p in sep { _ = waitNative(p) }
    print("memory.processes=\(n)")
    print("memory.separate_seccomp=\(sepSeccomp) colocated_seccomp=\(coloSeccomp)")
    print("memory.runtime_alone_page_tables_kib=\(aloneKiB)")
    print("memory.colocated_page_tables_kib=\(coloPTE) (the address space \(spacePTE) + the runtime \(ownPTE))")
    print("memory.separate_page_tables_kib=\(sepPTE)")
    print("memory.ratio_page_tables=\(fmt(Double(coloPTE) / Double(sepPTE), 3))")
    print("memory.colocated_rss_kib=\(coloRSS) pss_kib=\(coloPSS) (the address space \(spaceRSS)/\(spacePSS) + the runtime \(ownRSS)/\(ownPSS))")
    print("memory.separate_rss_kib=\(sepRSS) pss_kib=\(sepPSS)")
    print("memory.ratio_rss=\(fmt(Double(coloRSS) / Double(sepRSS), 3)) ratio_pss=\(fmt(Double(coloPSS) / Double(sepPSS), 3))")
}

func benchSyscall(_ loop: String) throws {
    let space = try AddressSpace()
    var p: [Int32] = [0, 0]
    pipe(&p)
    let cp = spawnColocated(space, [loop], out: p[1]); close(p[1])
    _ = space.wait(for: cp)
    var out = [UInt8](repeating: 0, count: 4096)
    let n = read(p[0], &out, out.count)
    let line = String(decoding: out.prefix(max(0, n)), as: UTF8.self)
    print("syscall.getppid_colocated_ns=" + (line.split(separator: "=").last.map(String.init) ?? "nan"), terminator: "")
}

let args = CommandLine.arguments
guard args.count >= 3 else {
    print("usage: colo-bench start HELLO [N] | memory IDLE [N] | syscall LOOP")
    exit(2)
}
do {
    switch args[1] {
    case "start": try benchStart(args[2], args.count > 3 ? Int(args[3])! : 300)
    case "memory": try benchMemory(args[2], args.count > 3 ? Int(args[3])! : 50)
    case "syscall": try benchSyscall(args[2])
    default: print("unknown benchmark \(args[1])"); exit(2)
    }
} catch {
    print("colo-bench: \(error)")
    exit(1)
}
