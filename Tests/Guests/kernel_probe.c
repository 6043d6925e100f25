/* kernel_probe.c - a guest of the kernel-call tests, written against <colo.h>
 * and <capv.h> like a CheriBSD program.  Each verb prints key=value lines.
 *   enosys                 every call outside an address space (run natively)
 *   errnos                 the errnos of one process (threads play callee)
 *   forge N                N random values and a real target with one bit flipped used as
 *                          capabilities, between two valid calls (the control) of the same shape
 *   fdcap                  capfromfd/captofd within one process
 *   service NAME [K]       cosetup, coregister(NAME), coaccept loop (see ops); K accepting
 *                          threads (default 1), registered as NAME.0 .. NAME.K-1 too
 *   client NAME T N SIZE [K]  T threads x N checksummed calls of SIZE bytes (with K,
 *                          thread i calls NAME.(i % K))
 *   call_sleep NAME MS     one call the service answers after MS ms
 *   eintr NAME             a call interrupted by a signal
 *   fetch_fd NAME          ask the service for an fd capability, read through it
 *   call_raw HEX           one answerback call to a capability given as a number
 *   register_exec NAME     coregister(NAME), print the target, exec itself in place ("pause")
 *   mixed NAME N           N calls alternating echo (pure computation in the service) and
 *                          identity (system calls in the service: getpid, gettid, a write
 *                          to a descriptor only the service has)
 *   crashy NAME N          N echo calls, every 1000th makes the service fault (it
 *                          recovers with siglongjmp): that call gives ENOLINK
 *   spin_call NAME MS      one call the service answers after MS ms of computing
 *   pause                  print pid= and paused, then wait for a signal
 *   fdcap_flood N          N capfromfd calls (the runtime keeps each file), then a new thread's cosetup
 *   signal_storm [restart] 4 callers x 3000 calls to a thread of the same process
 *                          while SIGUSR1 hits callers and callee (SA_RESTART or not)
 * Build: cc -I Sources/GuestAPI/include -I Sources/ABI/include kernel_probe.c Sources/GuestAPI/colo.c
 *        Sources/GuestAPI/syscall.c -pthread */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>
#include <colo.h>
#include <capv.h>

static const char *ename(int e)
{
    switch (e) {
    case 0: return "OK";
    case EINVAL: return "EINVAL";
    case EPERM: return "EPERM";
    case EFAULT: return "EFAULT";
    case ESRCH: return "ESRCH";
    case ENOSYS: return "ENOSYS";
    case EEXIST: return "EEXIST";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case EAGAIN: return "EAGAIN";
    case ENOLINK: return "ENOLINK";
    case EDEADLK: return "EDEADLK";
    case EINTR: return "EINTR";
    case EBADF: return "EBADF";
    case EPROT: return "EPROT";
    case EMFILE: return "EMFILE";
    default: return "E?";
    }
}

/* key=ERRNO of a call that returns -1 and sets errno on failure. */
#define REPORT(key, call) do { errno = 0; long r_ = (long)(call); \
    printf("%s=%s\n", key, r_ < 0 ? ename(errno) : "OK"); } while (0)

/* ---- the message of the service protocol (capv.h conventions) ---- */
enum { OP_ANSWERBACK = 0, OP_ECHO = 1, OP_SLEEP = 2, OP_STATS = 3, OP_FDCAP = 4,
       OP_IDENTITY = 5, OP_CRASH = 6, OP_SPIN = 7 };

struct msg {
    size_t   len;       /* capv.h: the length first ... */
    int      op;        /* ... then the opcode */
    int      thread;    /* caller's thread number */
    uint64_t seq;       /* caller's call number */
    uint64_t sum;       /* checksum of data[] */
    uint64_t arg;       /* OP_SLEEP: milliseconds; replies: pid of the caller as the service saw it */
    void    *cap;       /* OP_FDCAP reply */
    uint8_t  data[];
};
#define HDR sizeof(struct msg)
#define MAXMSG (HDR + 65536)

static uint64_t checksum(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

/* ---- service ---- */
struct seen { pid_t pid; int thread; uint64_t next; };

/* What every accepting thread of the service has seen, under stats_lock. */
static struct seen seen[256];
static int nseen;
static uint64_t served, dups, gaps, badsum;
static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *service_name;
/* A descriptor only the service has (OP_IDENTITY writes to it). */
#define PRIVATE_FD 100
static __thread sigjmp_buf crash_jmp;
static uint64_t crashes;

static void crashed(int sig)
{
    (void)sig;
    siglongjmp(crash_jmp, 1);
}

/* Set the calling thread up as an accepting thread registered as `name`. */
static int accept_as(const char *name, void **target)
{
    if (cosetup(COSETUP_COACCEPT) != 0) { perror("cosetup"); return 1; }
    if (coregister(name, target) != 0) { printf("coregister=%s\n", ename(errno)); return 1; }
    return 0;
}

/* The coaccept loop of one accepting thread. */
static void *serve_loop(void *arg)
{
    (void)arg;
    const char *name = service_name;
    uint64_t *in = aligned_alloc(8, MAXMSG), *out = aligned_alloc(8, MAXMSG);
    struct msg *req = (struct msg *)in, *rep = (struct msg *)out;
    size_t outlen = 0;
    for (;;) {
        void *cookie = NULL;
        /* No mask saved: that would be a system call on every call.  After
         * OP_CRASH faulted (no reply to anyone), SIGSEGV is unblocked by hand. */
        if (sigsetjmp(crash_jmp, 0)) {
            sigset_t segv;
            sigemptyset(&segv);
            sigaddset(&segv, SIGSEGV);
            pthread_sigmask(SIG_UNBLOCK, &segv, NULL);
            __atomic_add_fetch(&crashes, 1, __ATOMIC_RELAXED);
            outlen = 0;
        }
        ssize_t n = coaccept(&cookie, out, outlen, in, MAXMSG);
        if (n < 0) {        /* EINTR: offer the same reply again */
            if (errno != EINTR) { printf("coaccept=%s\n", ename(errno)); outlen = 0; }
            continue;
        }
        pid_t pid = -1;     /* (OP_SPIN makes no system call at all: no cogetpid) */
        if (req->op != OP_SPIN && cocachedpid(&pid, cookie) != 0) printf("cocachedpid=%s\n", ename(errno));
        size_t dlen = (size_t)n >= HDR ? (size_t)n - HDR : 0;
        memset(rep, 0, HDR);
        rep->op = -req->op;
        rep->thread = req->thread;
        rep->seq = req->seq;
        rep->arg = (uint64_t)pid;
        outlen = HDR;
        switch (req->op) {
        case OP_SLEEP:
            usleep((useconds_t)req->arg * 1000);
            /* fall through */
        case OP_ECHO: {
            pthread_mutex_lock(&stats_lock);
            served++;
            if ((size_t)n != req->len || checksum(req->data, dlen) != req->sum) badsum++;
            int k = 0;
            while (k < nseen && !(seen[k].pid == pid && seen[k].thread == req->thread)) k++;
            if (k == nseen && nseen < 256) seen[nseen++] = (struct seen){ pid, req->thread, 0 };
            if (k < 256) {
                if (req->seq < seen[k].next) dups++;
                else if (req->seq > seen[k].next) gaps++;
                seen[k].next = req->seq + 1;
            }
            pthread_mutex_unlock(&stats_lock);
            for (size_t i = 0; i < dlen; i++) rep->data[i] = (uint8_t)(req->data[i] + 1);
            rep->sum = checksum(rep->data, dlen);
            outlen = HDR + dlen;
            break;
        }
        case OP_IDENTITY:
            rep->arg = (uint64_t)getpid();
            rep->seq = (uint64_t)syscall(SYS_gettid);
            rep->sum = (uint64_t)write(PRIVATE_FD, "x", 1);
            rep->thread = (int)cogetpid2();         /* no system call */
            break;
        case OP_CRASH:
            *(volatile int *)(uintptr_t)req->arg = 1;
            break;
        case OP_SPIN: {
            struct timespec t0, t;
            clock_gettime(CLOCK_MONOTONIC, &t0);    /* the vDSO: no system call */
            do clock_gettime(CLOCK_MONOTONIC, &t);
            while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < (long)req->arg);
            rep->arg = __atomic_load_n(&crashes, __ATOMIC_RELAXED);
            break;
        }
        case OP_STATS:
            pthread_mutex_lock(&stats_lock);
            rep->seq = served; rep->sum = dups; rep->arg = gaps; rep->thread = (int)badsum;
            pthread_mutex_unlock(&stats_lock);
            break;
        case OP_FDCAP: {
            int p[2];
            if (pipe(p) != 0 || write(p[1], "through captofd", 15) != 15) exit(1);
            close(p[1]);
            if (capfromfd(&rep->cap, p[0]) != 0) printf("capfromfd=%s\n", ename(errno));
            close(p[0]);
            break;
        }
        default: {
            capv_answerback_t *ab = (capv_answerback_t *)out;
            ab->len = sizeof *ab; ab->op = 0;
            snprintf(ab->answerback, sizeof ab->answerback, "kernel_probe service %s, pid %d (slow)", name, getpid());
            outlen = sizeof *ab;
        }
        }
        rep->len = outlen;
    }
    return NULL;
}

static void *extra_acceptor(void *arg)
{
    char name[256];
    void *target;
    snprintf(name, sizeof name, "%s.%d", service_name, (int)(intptr_t)arg);
    if (accept_as(name, &target) != 0) exit(1);
    return serve_loop(NULL);
}

static int service(const char *name, int threads)
{
    void *target;
    char text[128], alias[256];
    service_name = name;
    int p[2];
    if (pipe(p) != 0 || dup2(p[1], PRIVATE_FD) != PRIVATE_FD) return 1;
    signal(SIGSEGV, crashed);
    if (accept_as(name, &target) != 0) return 1;
    snprintf(alias, sizeof alias, "%s.0", name);
    if (coregister(alias, NULL) != 0) return 1;
    for (int i = 1; i < threads; i++) {
        pthread_t t;
        pthread_create(&t, NULL, extra_acceptor, (void *)(intptr_t)i);
    }
    for (int i = 1; i < threads; i++) {     /* every thread has registered */
        void *c;
        snprintf(alias, sizeof alias, "%s.%d", name, i);
        while (colookup(alias, &c) != 0) usleep(1000);
    }
    colo_capfmt(text, sizeof text, target);
    printf("target=%s\npid=%d\nready\n", text, getpid());
    serve_loop(NULL);
    return 0;
}

/* ---- client ---- */
static void *service_target;
static int calls, size, targets;
static int use_slow;        /* KERNEL_PROBE_SLOW set: the client calls with cocall_slow */
static uint64_t total_ok, total_bad;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void *client_thread(void *arg)
{
    int id = (int)(intptr_t)arg;
    if (cosetup(COSETUP_COCALL) != 0) { printf("cosetup=%s\n", ename(errno)); return NULL; }
    void *target = service_target;
    if (targets > 0) {
        char name[256];
        snprintf(name, sizeof name, "%s.%d", service_name, id % targets);
        if (colookup(name, &target) != 0) { printf("colookup=%s\n", ename(errno)); return NULL; }
    }
    uint64_t *in = aligned_alloc(8, MAXMSG), *out = aligned_alloc(8, MAXMSG);
    struct msg *req = (struct msg *)out, *rep = (struct msg *)in;
    uint64_t ok = 0, bad = 0;
    for (int i = 0; i < calls; i++) {
        req->len = HDR + (size_t)size;
        req->op = OP_ECHO; req->thread = id; req->seq = (uint64_t)i;
        for (int j = 0; j < size; j++) req->data[j] = (uint8_t)(i * 7 + j + id);
        req->sum = checksum(req->data, (size_t)size);
        ssize_t n = use_slow ? cocall_slow(target, out, req->len, in, MAXMSG) : cocall(target, out, req->len, in, MAXMSG);
        int good = n == (ssize_t)(HDR + (size_t)size) && rep->op == -OP_ECHO && rep->seq == (uint64_t)i &&
                   rep->thread == id && rep->arg == (uint64_t)getpid() &&
                   rep->sum == checksum(rep->data, (size_t)size);
        for (int j = 0; good && j < size; j++) good = rep->data[j] == (uint8_t)(req->data[j] + 1);
        if (good) ok++; else { bad++; if (n < 0) printf("cocall=%s\n", ename(errno)); }
    }
    pthread_mutex_lock(&lock);
    total_ok += ok; total_bad += bad;
    pthread_mutex_unlock(&lock);
    return NULL;
}

static int lookup(const char *name)
{
    if (colookup(name, &service_target) != 0) { printf("colookup=%s\n", ename(errno)); return 1; }
    return 0;
}

static int client(const char *name, int threads, int n, int sz, int k)
{
    if (lookup(name)) return 1;
    calls = n; size = sz; targets = k; service_name = name;
    use_slow = getenv("KERNEL_PROBE_SLOW") != NULL;
    pthread_t t[64];
    for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, client_thread, (void *)(intptr_t)i);
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
    printf("ok=%lu\nbad=%lu\n", (unsigned long)total_ok, (unsigned long)total_bad);
    uint64_t buf[MAXMSG / 8];
    struct msg *m = (struct msg *)buf;
    memset(m, 0, HDR);
    m->len = HDR; m->op = OP_STATS;
    cosetup(COSETUP_COCALL);
    ssize_t r = cocall(service_target, m, HDR, m, HDR);
    if (r != (ssize_t)HDR) { printf("stats=%s\n", ename(errno)); return 1; }
    printf("served=%lu\ndups=%lu\ngaps=%lu\nbadsum=%d\n", (unsigned long)m->seq, (unsigned long)m->sum,
           (unsigned long)m->arg, m->thread);
    return total_bad != 0;
}

static int call_sleep(const char *name, int ms)
{
    if (lookup(name) || cosetup(COSETUP_COCALL) != 0) return 1;
    uint64_t buf[HDR / 8];
    struct msg *m = (struct msg *)buf;
    memset(m, 0, HDR);
    m->len = HDR; m->op = OP_SLEEP; m->arg = (uint64_t)ms; m->sum = checksum(NULL, 0);
    printf("pid=%d\ncalling\n", getpid());
    ssize_t r = cocall(service_target, m, HDR, m, HDR);
    printf("cocall=%s\nreceived=%ld\n", r < 0 ? ename(errno) : "OK", (long)r);
    return 0;
}

static void on_signal(int s) { (void)s; }

static void *poke(void *arg)
{
    usleep(300000);
    pthread_kill(*(pthread_t *)arg, SIGUSR1);
    return NULL;
}

/* A blocked call of the calling thread, interrupted by SIGUSR1 from another thread. */
static void interrupt_soon(pthread_t *self, pthread_t *poker)
{
    struct sigaction sa = { .sa_handler = on_signal };     /* no SA_RESTART */
    sigaction(SIGUSR1, &sa, NULL);
    *self = pthread_self();
    pthread_create(poker, NULL, poke, self);
}

static int eintr(const char *name)
{
    if (lookup(name) || cosetup(COSETUP_COCALL) != 0) return 1;
    uint64_t buf[HDR / 8];
    struct msg *m = (struct msg *)buf;
    memset(m, 0, HDR);
    m->len = HDR; m->op = OP_SLEEP; m->arg = 2000; m->sum = checksum(NULL, 0);
    pthread_t self, poker;
    interrupt_soon(&self, &poker);
    REPORT("cocall_interrupted", cocall(service_target, m, HDR, m, HDR));
    pthread_join(poker, NULL);
    return 0;
}

static int call_raw(const char *hex)
{
    void *target = (void *)(uintptr_t)strtoull(hex, NULL, 16);
    capv_answerback_t ab;
    capv_t q = { .len = sizeof(capv_t), .op = 0 };
    if (cosetup(COSETUP_COCALL) != 0) return 1;
    REPORT("cocall_raw", cocall(target, &q, sizeof q, &ab, sizeof ab));
    return 0;
}

static void *storm_target;
static long storm_ok, storm_intr, storm_other;

static void *storm_caller(void *arg)
{
    (void)arg;
    uint64_t out[8] = { 1 }, in[8];
    cosetup(COSETUP_COCALL);
    for (int k = 0; k < 3000; k++) {
        ssize_t n = cocall(storm_target, out, sizeof out, in, sizeof in);
        long *count = n == (ssize_t)sizeof in ? &storm_ok : errno == EINTR ? &storm_intr : &storm_other;
        __atomic_add_fetch(count, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

static void *storm_callee(void *arg)
{
    (void)arg;
    uint64_t buf[8];
    size_t outlen = 0;
    cosetup(COSETUP_COACCEPT);
    coregister(NULL, &storm_target);
    for (;;) {
        ssize_t n = coaccept(NULL, buf, outlen, buf, sizeof buf);
        if (n >= 0)
            outlen = (size_t)n;     /* after EINTR, offer the same reply again */
    }
    return NULL;
}

static int signal_storm(int restart)
{
    struct sigaction sa = { .sa_handler = on_signal, .sa_flags = restart ? SA_RESTART : 0 };
    sigaction(SIGUSR1, &sa, NULL);
    pthread_t callee, callers[4];
    pthread_create(&callee, NULL, storm_callee, NULL);
    while (storm_target == NULL) usleep(1000);
    for (int i = 0; i < 4; i++) pthread_create(&callers[i], NULL, storm_caller, NULL);
    for (int k = 0; k < 2000; k++) {
        pthread_kill(callers[k % 4], SIGUSR1);
        pthread_kill(callee, SIGUSR1);
        usleep(200);
    }
    for (int i = 0; i < 4; i++) pthread_join(callers[i], NULL);
    printf("ok=%ld\ninterrupted=%ld\nother=%ld\n", storm_ok, storm_intr, storm_other);
    return 0;
}

static void *late_thread(void *arg)
{
    void *target;
    (void)arg;
    REPORT("late_cosetup", cosetup(COSETUP_COACCEPT));
    REPORT("late_coregister", coregister(NULL, &target));
    return NULL;
}

static int fdcap_flood(long n)
{
    long ok = 0;
    int first_error = 0;
    for (long i = 0; i < n && first_error == 0; i++) {
        void *cap;
        if (capfromfd(&cap, 0) == 0) ok++;
        else first_error = errno;
    }
    printf("flood_ok=%ld\nflood_error=%s\n", ok, ename(first_error));
    pthread_t t;
    pthread_create(&t, NULL, late_thread, NULL);
    pthread_join(t, NULL);
    return 0;
}

/* A service that registers, then execs a new program in its place. */
static int register_exec(const char *self, const char *name)
{
    void *target;
    if (cosetup(COSETUP_COACCEPT) != 0 || coregister(name, &target) != 0) return 1;
    printf("target=%#lx\n", (unsigned long)(uintptr_t)target);
    execl(self, self, "pause", (char *)NULL);
    printf("exec=%s\n", ename(errno));
    return 1;
}

static int fetch_fd(const char *name)
{
    if (lookup(name) || cosetup(COSETUP_COCALL) != 0) return 1;
    uint64_t buf[HDR / 8];
    struct msg *m = (struct msg *)buf;
    memset(m, 0, HDR);
    m->len = HDR; m->op = OP_FDCAP;
    REPORT("cocall", cocall(service_target, m, HDR, m, HDR));
    int fd = -1;
    REPORT("captofd", captofd(m->cap, &fd));
    char text[64] = "";
    ssize_t n = read(fd, text, sizeof text - 1);
    printf("fd=%d\nread=%.*s\n", fd, (int)(n > 0 ? n : 0), text);
    return 0;
}

/* ---- one process: threads play the callee ---- */
static void *helper_target, *helper_cookie;
static pid_t helper_seen_pid;
static volatile int helper_go;
static char cookie_text[128];

static void *echo_helper(void *arg)
{
    (void)arg;
    cosetup(COSETUP_COACCEPT);
    coregister(NULL, &helper_target);
    while (!helper_go) usleep(1000);
    uint64_t in[8], out[8] = { 0 };
    size_t outlen = 0;
    for (;;) {
        ssize_t n = coaccept(&helper_cookie, out, outlen, in, sizeof in);
        if (n < 0) continue;
        cogetpid(&helper_seen_pid);
        colo_capfmt(cookie_text, sizeof cookie_text, helper_cookie);
        out[0] = (uint64_t)n; out[1] = in[0]; out[2] = 0x5eed;
        outlen = 24;
        if (n == 8 && in[0] == 0x51ee9)
            usleep(2000000);    /* a slow answer, for EINTR */
    }
    return NULL;
}

static void *accept_interrupted(void *arg)
{
    (void)arg;
    pthread_t self, poker;
    cosetup(COSETUP_COACCEPT);
    interrupt_soon(&self, &poker);
    REPORT("coaccept_interrupted", coaccept(NULL, NULL, 0, NULL, 0));
    pthread_join(poker, NULL);
    return NULL;
}

/* A callee with bad buffers.  An unmapped input buffer fails its coaccept
 * and the caller stays queued for the next coaccept; an unmapped output
 * buffer fails both that coaccept and the call it answers. */
static void *bad_buffers(void *arg)
{
    void **target = arg;
    uint64_t in[2], reply[2] = { 0xbadbeef, 0 };
    void *none = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cosetup(COSETUP_COACCEPT);
    coregister(NULL, target);
    REPORT("coaccept_unmapped_inbuf", coaccept(NULL, NULL, 0, none, 8));
    coaccept(NULL, NULL, 0, in, sizeof in);                     /* the first call, again */
    REPORT("coaccept_unmapped_outbuf", coaccept(NULL, none, 8, in, sizeof in));
    coaccept(NULL, NULL, 0, in, sizeof in);                     /* the second call */
    coaccept(NULL, reply, sizeof reply, in, sizeof in);         /* answered */
    return NULL;
}

static void *short_lived(void *arg)
{
    cosetup(COSETUP_COACCEPT);
    coregister("short-lived", (void **)arg);
    return NULL;
}

static int errnos(void)
{
    char text[128];
    void *code = NULL, *data = NULL, *cap = NULL, *own = NULL;
    int r = cosetup(99);
    printf("cosetup_bad=%s\n", r == EINVAL ? "EINVAL" : "unexpected");
    REPORT("cosetup_takeover", _cosetup(COSETUP_TAKEOVER, &code, &data));
    REPORT("cosetup_efault", _cosetup(COSETUP_COCALL, (void **)8, &data));
    REPORT("cogetpid_idle", cogetpid(&(pid_t){ 0 }));
    REPORT("coregister_self", coregister(NULL, &own));
    REPORT("cocall_no_cosetup", cocall_slow(own, NULL, 0, NULL, 0));
    REPORT("coaccept_no_cosetup", coaccept_slow(NULL, NULL, 0, NULL, 0));
    REPORT("coregister_empty", coregister("", &cap));
    char *longname = malloc(PATH_MAX + 1);
    memset(longname, 'n', PATH_MAX);
    longname[PATH_MAX] = 0;
    REPORT("coregister_toolong", coregister(longname, &cap));
    longname[PATH_MAX - 1] = 0;
    REPORT("coregister_longest", coregister(longname, &cap));
    REPORT("coregister_name", coregister("dup", &cap));
    REPORT("coregister_exists", coregister("dup", &cap));
    REPORT("coregister_name_efault", coregister((const char *)8, &cap));
    REPORT("coregister_cap_efault", coregister(NULL, (void **)8));
    void *found = NULL;
    REPORT("colookup", colookup("dup", &found));
    printf("colookup_same=%d\n", found == own);
    REPORT("colookup_missing", colookup("missing", &found));
    REPORT("colookup_efault", colookup("dup", (void **)8));
    colo_capfmt(text, sizeof text, own);
    printf("target_text=%s\n", text);
    printf("noncanonical=%d\n", ((uintptr_t)own >> 47) != 0 && ((uintptr_t)own >> 47) != 0x1ffff);

    REPORT("cosetup_cocall", cosetup(COSETUP_COCALL));
    REPORT("cocall_own_target", cocall(own, NULL, 0, NULL, 0));      /* the switcher would wait for itself */
    REPORT("cocall_null_target", cocall_slow(NULL, NULL, 0, NULL, 0));

    pthread_t h;
    pthread_create(&h, NULL, echo_helper, NULL);
    while (helper_target == NULL) usleep(1000);
    uint64_t out[16] = { 0x1234 }, in[16];
    char *raw = (char *)in;
    REPORT("cocall_before_accept", cocall_slow(helper_target, out, 8, in, sizeof in));
    REPORT("cocall_fast_before_accept", cocall(helper_target, out, 8, in, sizeof in));   /* after 0.5 s */
    REPORT("cocall_untagged_outbuf", cocall(helper_target, (void *)13, 8, in, sizeof in));
    REPORT("cocall_untagged_inbuf", cocall_slow(helper_target, out, 8, (void *)42, 8));
    helper_go = 1;
    void *none = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REPORT("cocall_null_outbuf", cocall(helper_target, NULL, 8, in, sizeof in));
    REPORT("cocall_null_inbuf", cocall(helper_target, out, 8, NULL, 8));
    REPORT("cocall_misaligned_outbuf", cocall(helper_target, raw + 4, 8, in, 64));
    REPORT("cocall_misaligned_inbuf", cocall(helper_target, out, 8, raw + 4, 64));
    REPORT("cocall_misaligned_outlen", cocall(helper_target, out, 12, in, sizeof in));
    REPORT("cocall_misaligned_inlen", cocall(helper_target, out, 8, in, 20));
    REPORT("cocall_unmapped_outbuf", cocall(helper_target, none, 8, in, sizeof in));
    REPORT("cocall_unmapped_inbuf", cocall(helper_target, out, 8, none, 8));
    REPORT("cocall_outside_outbuf", cocall(helper_target, (void *)0x800000000000ULL, 8, in, sizeof in));
    ssize_t n = cocall(helper_target, out, 16, in, 16);
    printf("cocall_truncated=%ld\n", (long)n);                  /* reply is 24 bytes, inlen 16 */
    printf("callee_received=%lu\n", (unsigned long)in[0]);      /* MIN(16, its 64) */
    n = cocall(helper_target, out, 8, in, sizeof in);
    printf("cocall_full=%ld\nechoed=%lx\n", (long)n, (unsigned long)in[1]);
    n = cocall(helper_target, NULL, 0, in, sizeof in);
    printf("cocall_empty=%ld\ncallee_received_empty=%lu\n", (long)n, (unsigned long)in[0]);
    printf("cookie_text=%s\n", cookie_text);
    printf("cogetpid_matches=%d\n", helper_seen_pid == getpid());
    REPORT("cocall_cookie_as_target", cocall_slow(helper_cookie, NULL, 0, NULL, 0));
    REPORT("cocall_scb_as_target", cocall_slow(data, NULL, 0, NULL, 0));
    REPORT("cocall_code_as_target", cocall_slow(code, NULL, 0, NULL, 0));

    void *fdcap = NULL;
    REPORT("capfromfd", capfromfd(&fdcap, 1));
    colo_capfmt(text, sizeof text, fdcap);
    printf("fdcap_text=%s\n", text);
    REPORT("cocall_fdcap_as_target", cocall_slow(fdcap, NULL, 0, NULL, 0));
    int fd = -1;
    REPORT("captofd_target", captofd(helper_target, &fd));
    REPORT("captofd_cookie", captofd(helper_cookie, &fd));
    REPORT("captofd_null", captofd(NULL, &fd));
    REPORT("captofd_efault", captofd(fdcap, (int *)8));
    REPORT("capfromfd_badfd", capfromfd(&cap, 999));
    REPORT("capfromfd_negative", capfromfd(&cap, -1));
    REPORT("capfromfd_efault", capfromfd((void **)8, 1));

    /* a signal interrupts a sleeping coaccept and a sleeping cocall */
    pthread_t a;
    pthread_create(&a, NULL, accept_interrupted, NULL);
    pthread_join(a, NULL);
    pthread_t self, poker;
    interrupt_soon(&self, &poker);
    out[0] = 0x51ee9;
    REPORT("cocall_interrupted", cocall(helper_target, out, 8, in, sizeof in));
    pthread_join(poker, NULL);

    /* faults on the callee's side */
    void *picky = NULL;
    pthread_t b;
    pthread_create(&b, NULL, bad_buffers, &picky);
    while (picky == NULL) usleep(1000);
    REPORT("cocall_callee_outbuf_fault", cocall(picky, out, 8, in, sizeof in));
    n = cocall(picky, out, 8, in, sizeof in);
    printf("cocall_after_faults=%ld\nreply_after_faults=%lx\n", (long)n, (unsigned long)in[0]);

    /* a thread that exits: its target gives ENOLINK, its name goes */
    void *gone = NULL;
    pthread_t s;
    pthread_create(&s, NULL, short_lived, &gone);
    pthread_join(s, NULL);
    usleep(100000);
    REPORT("cocall_exited_thread", cocall_slow(gone, NULL, 0, NULL, 0));
    REPORT("colookup_exited_thread", colookup("short-lived", &found));
    return 0;
}

/* forge's callee: a thread accepting with the switcher, counting the calls that reach it. */
static void *forge_target;
static long forge_received;

static void *forge_callee(void *arg)
{
    (void)arg;
    uint64_t in[8];
    void *t = NULL;
    if (cosetup(COSETUP_COACCEPT) != 0 || coregister(NULL, &t) != 0) { printf("forge_callee=%s\n", ename(errno)); exit(1); }
    __atomic_store_n(&forge_target, t, __ATOMIC_RELEASE);
    for (;;)
        if (coaccept(NULL, NULL, 0, in, sizeof in) >= 0) __atomic_add_fetch(&forge_received, 1, __ATOMIC_RELEASE);
}

/* A valid call to forge's callee, with the arguments the forged calls use: 0 or -1. */
static long forge_control(void)
{
    long r;
    while ((r = cocall_slow(forge_target, NULL, 0, NULL, 0)) < 0 && errno == EAGAIN) usleep(1000);   /* before its first coaccept */
    return r;
}

static int forge(long count)
{
    REPORT("forge_cosetup", cosetup(COSETUP_COCALL));
    pthread_t callee;
    pthread_create(&callee, NULL, forge_callee, NULL);
    while (__atomic_load_n(&forge_target, __ATOMIC_ACQUIRE) == NULL) usleep(1000);
    /* the same calls with a real target work, before and after: the refusals are the values' */
    REPORT("control_before", forge_control());
    long refused_target = 0, refused_fd = 0, refused_near = 0;
    for (long i = 0; i < count; i++) {
        uint64_t v;
        if (getrandom(&v, sizeof v, 0) != sizeof v) return 1;
        if (i % 2) v = (v & ~0x6000000000000000ULL) | 0xA000000000000000ULL;   /* looks sealed and tagged */
        if (cocall_slow((void *)v, NULL, 0, NULL, 0) < 0 && errno == EINVAL) refused_target++;
        int fd;
        if (captofd((void *)v, &fd) < 0 && errno == EINVAL) refused_fd++;
        /* a real capability with one bit flipped */
        uint64_t near = (uint64_t)(uintptr_t)forge_target ^ (1ULL << (i % 58));
        if (cocall_slow((void *)near, NULL, 0, NULL, 0) < 0 && errno == EINVAL) refused_near++;
    }
    printf("tried=%ld\nrefused_target=%ld\nrefused_fd=%ld\nrefused_near=%ld\n", count, refused_target, refused_fd,
           refused_near);
    REPORT("control_after", forge_control());
    printf("callee_received=%ld\n", __atomic_load_n(&forge_received, __ATOMIC_ACQUIRE));
    /* fd capabilities are revoked by nothing but stay of their own type */
    void *fdcap;
    REPORT("capfromfd_own", capfromfd(&fdcap, 0));
    int fd;
    REPORT("captofd_own", captofd(fdcap, &fd));
    REPORT("captofd_flipped", captofd((void *)((uintptr_t)fdcap ^ 1), &fd));
    return 0;
}

static int fdcap(void)
{
    int p[2];
    if (pipe(p) != 0) return 1;
    void *cap = NULL;
    REPORT("capfromfd", capfromfd(&cap, p[1]));
    int fd = -1;
    REPORT("captofd", captofd(cap, &fd));
    printf("newfd_distinct=%d\n", fd >= 0 && fd != p[1]);
    close(p[1]);
    ssize_t w = write(fd, "via capability", 14);
    close(fd);
    /* the runtime still holds a reference, so no EOF: read what arrived */
    char buf[32] = "";
    ssize_t n = read(p[0], buf, sizeof buf - 1);
    printf("written=%ld\nread=%.*s\n", (long)w, (int)(n > 0 ? n : 0), buf);
    int fd2 = -1;
    REPORT("captofd_again", captofd(cap, &fd2));
    printf("second_fd_distinct=%d\n", fd2 >= 0 && fd2 != fd);
    return 0;
}

static int enosys(void)
{
    void *cap = NULL, *code, *data;
    pid_t pid;
    int fd, capc = -1;
    void **capv = (void **)1;
    uint64_t buf[2];
    printf("cosetup=%s\n", cosetup(COSETUP_COCALL) == -1 ? ename(errno) : "unexpected");
    REPORT("_cosetup", _cosetup(COSETUP_COACCEPT, &code, &data));
    REPORT("coregister", coregister("x", &cap));
    REPORT("colookup", colookup("x", &cap));
    REPORT("cogetpid", cogetpid(&pid));
    REPORT("cocachedpid", cocachedpid(&pid, (void *)1));
    REPORT("cocall_slow", cocall_slow(cap, buf, 8, buf, 8));
    REPORT("cocall", cocall(cap, buf, 8, buf, 8));
    REPORT("coaccept_slow", coaccept_slow(&cap, buf, 8, buf, 8));
    REPORT("coaccept", coaccept(&cap, buf, 8, buf, 8));
    REPORT("capfromfd", capfromfd(&cap, 0));
    REPORT("captofd", captofd(cap, &fd));
    char *argv[] = { "true", NULL };
    REPORT("coexecve", coexecve(getpid(), "/bin/true", argv, argv + 1));
    REPORT("coexecvec", coexecvec(getpid(), "/bin/true", argv, argv + 1, NULL, 0));
    REPORT("coexecvpc", coexecvpc(getpid(), "true", argv, NULL, 0));
    capvfetch(&capc, &capv);
    printf("capc=%d\ncapv_null=%d\n", capc, capv == NULL);
    return 0;
}

/* Alternate echo and identity calls; check that the service's system calls
 * ran as the service (its pid, its thread, its descriptor). */
static int mixed(const char *name, int n)
{
    if (lookup(name) || cosetup(COSETUP_COCALL) != 0) return 1;
    uint64_t buf[(HDR + 64) / 8 + 1], rbuf[(HDR + 64) / 8 + 1];
    struct msg *m = (struct msg *)buf, *r = (struct msg *)rbuf;
    long ok = 0, bad = 0, service_pid = 0, service_tid = 0, wrote = 0;
    for (int i = 0; i < n; i++) {
        memset(m, 0, HDR + 8);
        m->op = i % 2 ? OP_IDENTITY : OP_ECHO;
        m->len = HDR + 8; m->seq = (uint64_t)i;
        memcpy(m->data, &i, sizeof i);
        m->sum = checksum(m->data, 8);
        ssize_t got = cocall(service_target, m, m->len, r, sizeof rbuf);
        if (got < 0) { bad++; printf("cocall=%s\n", ename(errno)); continue; }
        if (m->op == OP_ECHO) {
            int good = r->seq == (uint64_t)i && r->sum == checksum(r->data, 8);
            good ? ok++ : bad++;
        } else {
            service_pid = (long)r->arg; service_tid = (long)r->seq; wrote = (long)(int64_t)r->sum;
            (service_pid != getpid() && wrote == 1 && r->thread == service_pid) ? ok++ : bad++;
        }
    }
    printf("ok=%ld\nbad=%ld\nservice_pid=%ld\nservice_tid=%ld\nwrote=%ld\nmy_pid=%d\n",
           ok, bad, service_pid, service_tid, wrote, getpid());
    return 0;
}

/* Echo calls, every 1000th one a fault in the service. */
static int crashy(const char *name, int n)
{
    if (lookup(name) || cosetup(COSETUP_COCALL) != 0) return 1;
    uint64_t buf[(HDR + 64) / 8 + 1], rbuf[(HDR + 64) / 8 + 1];
    struct msg *m = (struct msg *)buf, *r = (struct msg *)rbuf;
    long ok = 0, bad = 0, enolink = 0;
    for (int i = 1; i <= n; i++) {
        memset(m, 0, HDR + 8);
        m->op = i % 1000 ? OP_ECHO : OP_CRASH;
        m->len = HDR + 8; m->seq = (uint64_t)i; m->arg = 8;     /* OP_CRASH writes at address 8 */
        m->sum = checksum(m->data, 8);
        ssize_t got = cocall(service_target, m, m->len, r, sizeof rbuf);
        if (m->op == OP_CRASH) { got < 0 && errno == ENOLINK ? enolink++ : bad++; continue; }
        got == (ssize_t)(HDR + 8) && r->seq == (uint64_t)i ? ok++ : bad++;
    }
    m->op = OP_SPIN; m->len = HDR; m->arg = 0;
    long crashes = cocall(service_target, m, HDR, r, sizeof rbuf) < 0 ? -1 : (long)r->arg;
    printf("ok=%ld\nbad=%ld\nenolink=%ld\ncrashes=%ld\n", ok, bad, enolink, crashes);
    return 0;
}

/* One call the service answers after computing for `ms` (it borrows this
 * thread all along: no system call). */
static int spin_call(const char *name, int ms)
{
    if (lookup(name) || cosetup(COSETUP_COCALL) != 0) return 1;
    uint64_t buf[HDR / 8 + 1], rbuf[HDR / 8 + 1];
    struct msg *m = (struct msg *)buf;
    memset(m, 0, HDR);
    m->op = OP_SPIN; m->len = HDR; m->arg = (uint64_t)ms;
    printf("pid=%d\ncalling\n", getpid());
    REPORT("cocall", cocall(service_target, m, HDR, rbuf, sizeof rbuf));
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    const char *verb = argc > 1 ? argv[1] : "";
    if (!strcmp(verb, "enosys")) return enosys();
    if (!strcmp(verb, "errnos")) return errnos();
    if (!strcmp(verb, "forge") && argc > 2) return forge(atol(argv[2]));
    if (!strcmp(verb, "fdcap")) return fdcap();
    if (!strcmp(verb, "service") && argc > 2) return service(argv[2], argc > 3 ? atoi(argv[3]) : 1);
    if (!strcmp(verb, "client") && argc > 5)
        return client(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), argc > 6 ? atoi(argv[6]) : 0);
    if (!strcmp(verb, "call_sleep") && argc > 3) return call_sleep(argv[2], atoi(argv[3]));
    if (!strcmp(verb, "eintr") && argc > 2) return eintr(argv[2]);
    if (!strcmp(verb, "fetch_fd") && argc > 2) return fetch_fd(argv[2]);
    if (!strcmp(verb, "call_raw") && argc > 2) return call_raw(argv[2]);
    if (!strcmp(verb, "register_exec") && argc > 2) return register_exec(argv[0], argv[2]);
    if (!strcmp(verb, "fdcap_flood") && argc > 2) return fdcap_flood(atol(argv[2]));
    if (!strcmp(verb, "pause")) { printf("pid=%d\npaused\n", getpid()); pause(); return 0; }
    if (!strcmp(verb, "mixed") && argc > 3) return mixed(argv[2], atoi(argv[3]));
    if (!strcmp(verb, "crashy") && argc > 3) return crashy(argv[2], atoi(argv[3]));
    if (!strcmp(verb, "spin_call") && argc > 3) return spin_call(argv[2], atoi(argv[3]));
    if (!strcmp(verb, "signal_storm")) return signal_storm(argc > 2 && !strcmp(argv[2], "restart"));
    fprintf(stderr, "kernel_probe: unknown verb %s\n", verb);
    return 2;
}
