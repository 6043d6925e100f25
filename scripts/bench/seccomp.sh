# scripts/bench/seccomp.sh - sourced by the syscall_timing benchmarks: the Seccomp mode
# (/proc/PID/status) of a syscall_timing run started the way a benchmark starts its
# native references (it must be 0: no filter) or its colocated tests (2).
#
#   seccomp_native BIN [WRAPPER ...]   mode of `WRAPPER ... BIN/syscall_timing getppid`
#   seccomp_colocated BIN SPACE        mode of `BIN/colo --join SPACE BIN/syscall_timing getppid`,
#                                      found among the address space's processes (colo ps)

seccomp_mode() { awk '/^Seccomp:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo "?"; }

seccomp_native() {
    local bin=$1; shift
    "$@" "$bin/syscall_timing" -s 0.5 -l 1 getppid > /dev/null &
    local pid=$! mode
    sleep 0.3
    mode=$(seccomp_mode "$pid")
    wait "$pid"
    echo "${mode:-?}"
}

seccomp_colocated() {
    local bin=$1 space=$2 marker pid mode=""
    marker=$(mktemp -u /tmp/seccomp-probe.XXXXXX)
    "$bin/colo" --join "$space" "$bin/syscall_timing" -p "$marker" -s 0.5 -l 1 getppid > /dev/null &
    local front=$!
    for _ in $(seq 50); do
        sleep 0.05
        pid=$("$bin/colo" ps "$space" | awk -v m="-p $marker" 'index($0, m) { print $2; exit }')
        if [ -n "$pid" ]; then mode=$(seccomp_mode "$pid"); break; fi
    done
    wait "$front"
    echo "${mode:-?}"
}
