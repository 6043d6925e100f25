/* colo.c - the guest library behind <colo.h>: CheriBSD's colocation calls as
 * system calls served by the colo runtime (numbers of colo_abi.h), with
 * CheriBSD libc's wrappers on top (cosetup's per-thread capabilities,
 * cocall's fallback to cocall_slow and its wait for a starting callee,
 * cocachedpid's cache, capvfetch/capvset,
 * coexecvpc's PATH search).  Outside a colocated address space the kernel
 * answers every call with ENOSYS. */
#define _GNU_SOURCE
#include <err.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "colo.h"
#include "colo_cap.h"

extern char **environ;

/* A raw call's result as libc reports it: -1 with errno, or the value. */
static long result(long r)
{
    if (r < 0 && r > -4096) {
        errno = (int)-r;
        return -1;
    }
    return r;
}

#define CALL(nr, a, b, c, d, e, f) \
    result(colo_syscall(nr, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f)))

/* A call that never sleeps in CheriBSD, so never fails with EINTR there.
 * Here a signal can interrupt it on its way to the runtime (before the
 * runtime took it: nothing happened) or on its way back (it happened, the
 * answer is lost): retry.  Repeating is harmless for these calls, except
 * that a repeated capfromfd leaves the runtime one more reference to the file
 * (coregister with a name is handled by its wrapper). */
static long instant(long nr, long a, long b, long c)
{
    long r;
    do
        r = colo_syscall(nr, a, b, c, 0, 0, 0);
    while (r == -EINTR);
    return result(r);
}

/* Thread-local state at fixed offsets from %fs (initial-exec: no
 * __tls_get_addr on the call path; the library is loaded at start-up, also
 * when it comes with an LD_PRELOAD client library). */
#define TLS __thread __attribute__((tls_model("initial-exec")))

/* Per-thread capabilities handed out by _cosetup (cosetup.c). */
static TLS void *cocall_code, *cocall_data, *coaccept_code, *coaccept_data;
/* This thread uses the switcher (cosetup attached it): as a caller, as a callee. */
static TLS int fast_calls, fast_accepts;

typedef long (*switcher_call)(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);

/* The runtime's switcher entry points, read from the address-space table by
 * the first cosetup that succeeded (so inside an address space). */
static switcher_call switch_cocall, switch_coaccept;
static const struct colo_scb *(*switch_self)(void);
static long (*switch_copy)(void *, const void *, uint64_t, uint64_t *);

static uint64_t switcher_entry(int i)
{
    const struct colo_table_header *h = (const struct colo_table_header *)COLO_TABLE_ADDR;
    return h->magic == COLO_TABLE_MAGIC ? h->switcher[i] : 0;
}

int _cosetup(int what, void **code, void **data)
{
    return (int)instant(COLO_SYS_cosetup, what, (long)code, (long)data);
}

/* Attach the thread to the switcher with its SCB capability; 1 if it can
 * use the fast path (else calls take the slow path). */
static int attach(void *data, int calls)
{
    uint64_t entry = switcher_entry(COLO_SWITCHER_ATTACH);
    if (entry == 0 || getenv("COLO_SLOW_PATH") != NULL)
        return 0;
    switch_cocall = (switcher_call)switcher_entry(COLO_SWITCHER_COCALL);
    switch_coaccept = (switcher_call)switcher_entry(COLO_SWITCHER_COACCEPT);
    switch_self = (const struct colo_scb *(*)(void))switcher_entry(COLO_SWITCHER_SELF);
    switch_copy = (long (*)(void *, const void *, uint64_t, uint64_t *))switcher_entry(COLO_SWITCHER_COPY);
    return ((long (*)(uint64_t, long))entry)((uint64_t)data, calls) == 0;
}

int cosetup(int what)
{
    int error;
    switch (what) {
    case COSETUP_COCALL:
        error = _cosetup(what, &cocall_code, &cocall_data);
        if (error == 0 && !fast_calls)
            fast_calls = attach(cocall_data, 1);
        return error;
    case COSETUP_COACCEPT:
        error = _cosetup(what, &coaccept_code, &coaccept_data);
        if (error == 0 && !fast_accepts)
            fast_accepts = attach(coaccept_data, 0);
        return error;
    default:
        return EINVAL;      /* CheriBSD's quirk: the errno is the return value */
    }
}

int coregister(const char *name, void **cap)
{
    int interrupted = 0;
    long r;
    while ((r = colo_syscall(COLO_SYS_coregister, (long)name, (long)cap, 0, 0, 0, 0)) == -EINTR)
        interrupted = 1;
    if (r == -EEXIST && interrupted) {
        /* The interrupted attempt may have registered the name: then it is ours. */
        void *mine = NULL, *found = NULL;
        if (instant(COLO_SYS_coregister, 0, (long)&mine, 0) == 0 &&
            instant(COLO_SYS_colookup, (long)name, (long)&found, 0) == 0 && found == mine) {
            if (cap != NULL)
                *cap = mine;
            return 0;
        }
    }
    return (int)result(r);
}

int colookup(const char *name, void **cap)
{
    return (int)instant(COLO_SYS_colookup, (long)name, (long)cap, 0);
}

int cogetpid(pid_t *pidp)
{
    return (int)instant(COLO_SYS_cogetpid, (long)pidp, 0, 0);
}

/* How many times cocall(3) and cocall_slow(2) ask again, a millisecond apart, while the
 * callee has not called coaccept yet (EAGAIN), before they give EAGAIN. */
#define EAGAIN_RETRIES 500

static inline ssize_t _cocall_fast(void *data, const void *target, const void *outbuf, size_t outlen,
                            void *inbuf, size_t inlen);

/* The slow path's staging (struct colo_scb's stage): the thread's SCB, if this thread is
 * attached and runs its own context (callee code on a borrowed one has its call made by
 * the callee's thread, whose SCB is another). */
static struct colo_scb *stage_scb(void)
{
    if ((!fast_calls && !fast_accepts) || switch_copy == NULL)
        return NULL;
    struct colo_scb *me = (struct colo_scb *)switch_self();
    if (me == NULL || me->magic != COLO_SCB_MAGIC || me->borrowing != NULL)
        return NULL;
    return me;
}

/* Before each attempt of a slow call: the output in the staging area, if it fits and can be
 * read (else the runtime reads the buffer and gives its errno), and the input buffer named
 * (what arrives goes through the staging area if it fits).  Buffers the runtime refuses
 * (unaligned) are left to it. */
static void stage(struct colo_scb *me, const void *out, size_t outlen, void *in, size_t inlen)
{
    me->stage_got = -1;
    me->stage_in = me->stage_out = 0;
    if (out != NULL && outlen <= COLO_STAGE_SIZE && (((uintptr_t)out | outlen) & 7) == 0 &&
        switch_copy(me->stage, out, outlen, NULL) == 0) {
        me->stage_outlen = outlen;
        me->stage_out = (uint64_t)out;
    }
    if (in != NULL && (((uintptr_t)in | inlen) & 7) == 0) {
        me->stage_inlen = inlen;
        me->stage_in = (uint64_t)in;
    }
}

/* After a slow call returned r: what the runtime put in the staging area goes into the input
 * buffer; a buffer that faults gives what the runtime's copy would have (EPROT below the
 * untagged limit, else EFAULT). */
static long unstage(struct colo_scb *me, void *in, long r)
{
    int64_t got = me->stage_got;
    me->stage_got = -1;
    if (got < 0 || r < 0)       /* nothing arrived, or the call failed (EINTR: it comes again) */
        return r;
    if (switch_copy(in, me->stage, (uint64_t)got, NULL) != 0)
        return (uintptr_t)in < COLO_UNTAGGED_LIMIT ? -EPROT : -EFAULT;
    return r;
}

/* One slow call (cocall_slow, coaccept_slow: `a0` the target or cookiep), through the staging
 * area when this thread has one: the result, or -errno. */
static long slow_call(long nr, long a0, const void *out, size_t outlen, void *in, size_t inlen)
{
    struct colo_scb *me = stage_scb();
    if (me != NULL)
        stage(me, out, outlen, in, inlen);
    long r = colo_syscall(nr, a0, (long)out, (long)outlen, (long)in, (long)inlen, 0);
    return me != NULL ? unstage(me, in, r) : r;
}

/* cocall_slow(2).  A callee waiting in the switcher's coaccept cannot be
 * reached through the runtime (EPROTOTYPE): the call goes through the
 * switcher instead, so that slow callers and fast services work together. */
ssize_t cocall_slow(void *target, const void *outbuf, size_t outlen, void *inbuf, size_t inlen)
{
    long r;
    /* A callee that has not called coaccept yet: EAGAIN, after half a second of asking
     * again, as cocall() does. */
    for (int tries = 0; (r = slow_call(COLO_SYS_cocall_slow, (long)target, outbuf, outlen, inbuf, inlen)) == -EAGAIN &&
                        tries < EAGAIN_RETRIES; tries++)
        usleep(1000);
    if (r == -EPROTOTYPE && fast_calls)
        return _cocall_fast(cocall_data, target, outbuf, outlen, inbuf, inlen);
    return result(r);
}

ssize_t coaccept_slow(void **cookiep, const void *outbuf, size_t outlen, void *inbuf, size_t inlen)
{
    return result(slow_call(COLO_SYS_coaccept_slow, (long)cookiep, outbuf, outlen, inbuf, inlen));
}

/* The switcher entry points: the fast path when this thread is attached,
 * else the slow path.  Callee code running on a borrowed context that calls
 * out is first moved to its own thread by a system call (any will do). */
static inline ssize_t _cocall_fast(void *data, const void *target, const void *outbuf, size_t outlen,
                            void *inbuf, size_t inlen)
{
    long r = switch_cocall((uint64_t)data, (uint64_t)target, (uint64_t)outbuf, outlen, (uint64_t)inbuf, inlen);
    if (__builtin_expect(r == -COLO_SWITCH_UNBORROW_FIRST, 0)) {
        (void)syscall(SYS_getpid);
        r = switch_cocall((uint64_t)data, (uint64_t)target, (uint64_t)outbuf, outlen, (uint64_t)inbuf, inlen);
    }
    return result(r);
}

ssize_t _cocall(void *code, void *data, const void *target, const void *outbuf, size_t outlen,
                void *inbuf, size_t inlen)
{
    (void)code;
    if (fast_calls)
        return _cocall_fast(data, target, outbuf, outlen, inbuf, inlen);
    return cocall_slow((void *)target, outbuf, outlen, inbuf, inlen);
}

ssize_t _coaccept(void *code, void *data, void **cookiep, const void *outbuf, size_t outlen,
                  void *inbuf, size_t inlen)
{
    (void)code;
    if (fast_accepts)
        return result(switch_coaccept((uint64_t)data, (uint64_t)cookiep, (uint64_t)outbuf, outlen, (uint64_t)inbuf, inlen));
    return coaccept_slow(cookiep, outbuf, outlen, inbuf, inlen);
}

/* cocall(2): _cocall, and a callee that accepts with coaccept_slow
 * (EPROTOTYPE) is called with cocall_slow, as cocall.2 describes.  A callee
 * that has not called coaccept yet gives EAGAIN, as CheriBSD's newest libc
 * (cocall.c@5fad35f6 returns _cocall's result) and cocall_eagain expect --
 * after half a second of asking again every millisecond (the older libc asked
 * forever), so that a caller started together with its callee, which cannot
 * say "ready" after it called coaccept, does not fail for a moment's lead. */
ssize_t cocall(void *target, const void *outbuf, size_t outlen, void *inbuf, size_t inlen)
{
    for (int tries = 0;; tries++) {
        ssize_t r = _cocall(cocall_code, cocall_data, target, outbuf, outlen, inbuf, inlen);
        if (r < 0 && errno == EPROTOTYPE)
            return cocall_slow(target, outbuf, outlen, inbuf, inlen);
        if (r >= 0 || errno != EAGAIN || tries == EAGAIN_RETRIES)
            return r;
        usleep(1000);
        errno = EAGAIN;
    }
}

ssize_t coaccept(void **cookiep, const void *outbuf, size_t outlen, void *inbuf, size_t inlen)
{
    return _coaccept(coaccept_code, coaccept_data, cookiep, outbuf, outlen, inbuf, inlen);
}

/* The subject of the running code: the callee whose context this thread
 * borrows, else the thread itself; read from the thread's SCB, no system
 * call, once the thread is attached to the switcher. */
static const struct colo_scb *subject(void)
{
    if (!fast_calls && !fast_accepts)
        return NULL;
    const struct colo_scb *me = switch_self();
    if (me == NULL || me->magic != COLO_SCB_MAGIC)
        return NULL;
    return me->borrowing != NULL ? me->borrowing : me;
}

pid_t _cogetpid2(void *code, void *data)
{
    (void)code; (void)data;
    const struct colo_scb *s = subject();
    return s != NULL ? s->pid : getpid();
}

lwpid_t _cogettid(void *code, void *data)
{
    (void)code; (void)data;
    const struct colo_scb *s = subject();
    return s != NULL ? (lwpid_t)s->tid : (lwpid_t)syscall(SYS_gettid);
}

pid_t cogetpid2(void) { return _cogetpid2(NULL, NULL); }
lwpid_t cogettid(void) { return _cogettid(NULL, NULL); }

/* cocachedpid(3): cogetpid(2) cached per cookie; entries are never evicted
 * (CheriBSD: "XXX: LRU?").  A full cache just stops caching. */
#define PIDCACHE_SIZE 1024
static struct { uintptr_t cookie; pid_t pid; } pidcache[PIDCACHE_SIZE];
static pthread_mutex_t pidcache_lock = PTHREAD_MUTEX_INITIALIZER;

int cocachedpid(pid_t *pidp, void *cookie)
{
    uintptr_t key = (uintptr_t)cookie;
    unsigned h = (unsigned)((key ^ (key >> 17) ^ (key >> 41)) % PIDCACHE_SIZE);
    pthread_mutex_lock(&pidcache_lock);
    for (unsigned i = 0; i < PIDCACHE_SIZE; i++) {
        unsigned j = (h + i) % PIDCACHE_SIZE;
        if (pidcache[j].cookie == key && key != 0) {
            *pidp = pidcache[j].pid;
            pthread_mutex_unlock(&pidcache_lock);
            return 0;
        }
        if (pidcache[j].cookie == 0)
            break;
    }
    pthread_mutex_unlock(&pidcache_lock);
    pid_t pid;
    if (cogetpid(&pid) != 0)
        return -1;
    *pidp = pid;
    pthread_mutex_lock(&pidcache_lock);
    for (unsigned i = 0; i < PIDCACHE_SIZE && key != 0; i++) {
        unsigned j = (h + i) % PIDCACHE_SIZE;
        if (pidcache[j].cookie == 0 || pidcache[j].cookie == key) {
            pidcache[j].cookie = key;
            pidcache[j].pid = pid;
            break;
        }
    }
    pthread_mutex_unlock(&pidcache_lock);
    return 0;
}

int capfromfd(void **capp, int fd)
{
    return (int)instant(COLO_SYS_capfromfd, (long)capp, fd, 0);
}

int captofd(void *cap, int *fdp)
{
    return (int)instant(COLO_SYS_captofd, (long)cap, (long)fdp, 0);
}

int coexecvec(pid_t pid, const char *path, char * const *argv, char * const *envp, void * const *capv, int capc)
{
    return (int)CALL(COLO_SYS_coexecvec, pid, path, argv, envp, capv, capc);
}

int coexecve(pid_t pid, const char *path, char * const *argv, char * const *envp)
{
    return (int)CALL(COLO_SYS_coexecve, pid, path, argv, envp, 0, 0);
}

/* One candidate of coexecvpc/coexecvp: a plain execve for pid < 0, else
 * coexecvec with the vector, or coexecve (the vector is inherited) without. */
static int coexec_candidate(pid_t pid, const char *path, char * const *argv, int vector,
                            void * const *capv, int capc)
{
    if (pid < 0)
        return execve(path, argv, environ);
    if (vector)
        return coexecvec(pid, path, argv, environ, capv, capc);
    return coexecve(pid, path, argv, environ);
}

/* execvp's PATH search over coexec_candidate.  As CheriBSD's, an ENOEXEC
 * candidate is not run with /bin/sh. */
static int coexec_search(pid_t pid, const char *name, char * const *argv, int vector,
                         void * const *capv, int capc)
{
    if (*name == '\0') {
        errno = ENOENT;
        return -1;
    }
    if (strchr(name, '/') != NULL)
        return coexec_candidate(pid, name, argv, vector, capv, capc);
    const char *path = getenv("PATH");
    if (path == NULL)
        path = "/bin:/usr/bin";
    size_t nlen = strlen(name);
    int seen_eacces = 0;
    for (const char *p = path;; ) {
        const char *end = strchrnul(p, ':');
        size_t dlen = (size_t)(end - p);
        char buf[PATH_MAX];
        if (dlen + 1 + nlen + 1 <= sizeof buf) {
            if (dlen == 0)
                buf[dlen++] = '.';
            else
                memcpy(buf, p, dlen);
            buf[dlen] = '/';
            memcpy(buf + dlen + 1, name, nlen + 1);
            coexec_candidate(pid, buf, argv, vector, capv, capc);
            switch (errno) {
            case EACCES:
                seen_eacces = 1;
                break;
            case ENOENT: case ENOTDIR: case ELOOP: case ENAMETOOLONG:
                break;
            default:
                return -1;
            }
        }
        if (*end == '\0')
            break;
        p = end + 1;
    }
    errno = seen_eacces ? EACCES : ENOENT;
    return -1;
}

/* coexecvpc(3): the PATH search with coexecvec; pid < 0 is a plain execve. */
int coexecvpc(pid_t pid, const char *name, char * const *argv, void * const *capv, int capc)
{
    return coexec_search(pid, name, argv, 1, capv, capc);
}

/* coexecvp(3): the PATH search with coexecve, so the vector is inherited. */
int coexecvp(pid_t pid, const char *name, char * const *argv)
{
    return coexec_search(pid, name, argv, 0, NULL, 0);
}

int elf_aux_info(int aux, void *buf, int buflen)
{
    if (buf == NULL)
        return EINVAL;
    errno = 0;
    unsigned long v = getauxval((unsigned long)aux);
    int missing = v == 0 && errno == ENOENT;
    if (missing && aux != AT_CAPC && aux != AT_CAPV)
        return ENOENT;          /* a process without a vector has an empty one */
    if (buflen == (int)sizeof(int)) {
        *(int *)buf = (int)v;
        return 0;
    }
    if (buflen == (int)sizeof(long)) {
        *(unsigned long *)buf = v;
        return 0;
    }
    return EINVAL;
}

/* Is the caller colocated (the runtime answers its calls)? */
static int colocated(void)
{
    return colo_syscall(COLO_SYS_cogetpid, 0, 0, 0, 0, 0, 0) != -ENOSYS;
}

/* Copy `path` into the sysctl answer: FreeBSD's rules (the length with the
 * NUL; ENOMEM and as much as fits when the buffer is short). */
static int sysctl_string(const char *path, void *oldp, size_t *oldlenp)
{
    size_t need = strlen(path) + 1;
    if (oldp == NULL) {
        *oldlenp = need;
        return 0;
    }
    size_t room = *oldlenp;
    memcpy(oldp, path, need < room ? need : room);
    *oldlenp = need < room ? need : room;
    if (need > room) {
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

/* The file this process's main program is mapped from: the mapping that
 * holds its program headers (AT_PHDR), from /proc/self/maps.  The maps are
 * the whole address space's, and the program lies in the process's own
 * slot, so this is right for a colocated process (whose /proc/self/exe names
 * the runtime) and for a fork child alike. */
static int own_program(char *out, size_t size)
{
    unsigned long addr = getauxval(AT_PHDR);
    FILE *f = fopen("/proc/self/maps", "re");
    if (f == NULL)
        return errno;
    char line[PATH_MAX + 128];
    int error = ENOENT;
    while (fgets(line, sizeof line, f) != NULL) {
        unsigned long lo, hi;
        int n = 0;
        if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &lo, &hi, &n) != 2 || n == 0 ||
            addr < lo || addr >= hi)
            continue;
        char *path = line + n;
        path[strcspn(path, "\n")] = '\0';
        size_t len = strlen(path);
        static const char deleted[] = " (deleted)";
        if (len >= sizeof deleted - 1 && strcmp(path + len - (sizeof deleted - 1), deleted) == 0)
            path[len -= sizeof deleted - 1] = '\0';
        if (path[0] == '/')
            error = len < size ? 0 : ENAMETOOLONG;
        if (error == 0)
            memcpy(out, path, len + 1);
        break;
    }
    fclose(f);
    return error;
}

/* The program of another process: its record in the address-space table if
 * it is a member of ours, else what /proc says. */
static int other_program(pid_t pid, char *out, size_t size)
{
    if (colocated()) {
        const struct colo_table_header *h = (const struct colo_table_header *)COLO_TABLE_ADDR;
        for (uint32_t i = 0; h->magic == COLO_TABLE_MAGIC && i < h->max_slots; i++) {
            const struct colo_proc_entry *e =
                (const struct colo_proc_entry *)(COLO_TABLE_ADDR + 4096 + (uint64_t)i * h->entry_size);
            if (e->pid != pid || e->state != COLO_PROC_RUNNING || e->images[0].path[0] != '/')
                continue;
            if (strnlen(e->images[0].path, COLO_PATH_LEN) >= size)
                return ENAMETOOLONG;
            strcpy(out, e->images[0].path);
            return 0;
        }
    }
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/%d/exe", (int)pid);
    ssize_t n = readlink(proc, out, size - 1);
    if (n < 0)
        return errno == ENOENT ? ESRCH : errno;
    out[n] = '\0';
    return 0;
}

int sysctl(const int *name, unsigned int namelen, void *oldp, size_t *oldlenp,
           const void *newp, size_t newlen)
{
    if (namelen != 4 || name[0] != COLO_CTL_KERN || name[1] != COLO_KERN_PROC ||
        name[2] != COLO_KERN_PROC_PATHNAME) {
        errno = ENOENT;         /* FreeBSD's answer for a node that does not exist */
        return -1;
    }
    if (newp != NULL || newlen != 0) {
        errno = EPERM;          /* read-only node */
        return -1;
    }
    if (oldlenp == NULL) {
        errno = EINVAL;
        return -1;
    }
    char path[PATH_MAX];
    pid_t pid = name[3];
    int error = pid == -1 || pid == getpid() ? own_program(path, sizeof path)
                                              : other_program(pid, path, sizeof path);
    if (error != 0) {
        errno = error;
        return -1;
    }
    return sysctl_string(path, oldp, oldlenp);
}

int pthread_getthreadid_np(void)
{
    return (int)cogettid();
}

/* capvfetch(3): the vector given at exec (AT_CAPC/AT_CAPV); exits on error. */
void capvfetch(int *capcp, void ***capvp)
{
    int capc, error;
    void **capv = NULL;
    error = elf_aux_info(AT_CAPC, &capc, sizeof capc);
    if (error != 0) {
        errno = error;
        err(1, "AT_CAPC");
    }
    if (capc > 0) {
        error = elf_aux_info(AT_CAPV, &capv, sizeof capv);
        if (error != 0) {
            errno = error;
            err(1, "AT_CAPV");
        }
    } else {
        capc = 0;
    }
    *capcp = capc;
    *capvp = capv;
}

/* capvset(3): store new_value at new_index, growing the vector into a fresh
 * calloc'd array when needed (the old one is not freed, as in CheriBSD). */
void *colo_capv_target(int index, const char *who)
{
    void **capv;
    int capc, error;

    capvfetch(&capc, &capv);
    if (capc <= index || capv[index] == NULL) {
        errno = ENOLINK;
        if (who != NULL)
            warn("%s: null capability %d", who, index);
        else
            warn("null capability %d", index);
        errno = ENOLINK;
        return (NULL);
    }
    error = cosetup(COSETUP_COCALL);
    if (error != 0) {
        errno = error;
        if (who != NULL)
            warn("%s: cosetup", who);
        else
            warn("cosetup");
        errno = error;
        return (NULL);
    }
    return (capv[index]);
}

int capvset(int *capcp, void ***capvp, int new_index, void *new_value)
{
    int capc = *capcp;
    void **capv = *capvp;
    if (new_index < 0) {
        errno = EINVAL;
        return -1;
    }
    if (capc <= new_index) {
        void **grown = calloc((size_t)new_index + 1, sizeof *grown);
        if (grown == NULL)
            return -1;
        if (capv != NULL && capc > 0)
            memcpy(grown, capv, (size_t)capc * sizeof *grown);
        capv = grown;
        capc = new_index + 1;
    }
    capv[new_index] = new_value;
    *capcp = capc;
    *capvp = capv;
    return 0;
}

int colo_capfmt(char *buf, size_t size, const void *cap)
{
    static const char *names[] = { "?", "target", "scb", "code", "fd", "?", "?", "?" };
    uint64_t v = (uint64_t)(uintptr_t)cap;
    unsigned type = colo_cap_type_of(v);
    if (type == 0)
        return snprintf(buf, size, "%#lx", (unsigned long)v);
    return snprintf(buf, size, "%#lx [%s] (%s)", (unsigned long)v, names[type & 7],
                    (v & COLO_CAP_TAG) ? "sealed" : "cookie");
}

/* ---- SCM_CAPS (see capv.h) ---- */

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include "capv.h"

#define SCM_CAPS_MAGIC 0x53504143434f4c43ULL    /* "CLOCCAPS" */
#define SCM_CAPS_MAX   1024

struct scm_caps_wire {
    uint64_t magic;
    uint32_t count;
    uint32_t dummy;         /* 1: the message carried one filler byte */
    uint64_t caps[];
};

ssize_t colo_sendmsg(int s, const struct msghdr *msg, int flags)
{
    struct cmsghdr *c;
    size_t ncaps = 0, other = 0;

    for (c = CMSG_FIRSTHDR(msg); c != NULL; c = CMSG_NXTHDR((struct msghdr *)msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CAPS)
            ncaps += (c->cmsg_len - CMSG_LEN(0)) / sizeof(void *);
        else
            other += CMSG_ALIGN(c->cmsg_len);
    }
    if (msg->msg_controllen == 0 || (ncaps == 0 && other == msg->msg_controllen))
        return sendmsg(s, msg, flags);
    if (ncaps > SCM_CAPS_MAX) {
        errno = EMSGSIZE;
        return -1;
    }

    size_t datalen = 0;
    for (size_t i = 0; i < msg->msg_iovlen; i++)
        datalen += msg->msg_iov[i].iov_len;
    size_t wlen = sizeof(struct scm_caps_wire) + ncaps * sizeof(uint64_t);
    struct scm_caps_wire *w = calloc(1, wlen);
    if (w == NULL)
        return -1;
    w->magic = SCM_CAPS_MAGIC;
    w->count = (uint32_t)ncaps;
    w->dummy = datalen == 0;
    size_t k = 0;
    for (c = CMSG_FIRSTHDR(msg); c != NULL; c = CMSG_NXTHDR((struct msghdr *)msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_CAPS)
            continue;
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(void *);
        memcpy(&w->caps[k], CMSG_DATA(c), n * sizeof(uint64_t));
        k += n;
    }

    int fd = memfd_create("colo-scm-caps", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) {
        free(w);
        return -1;
    }
    ssize_t wr = write(fd, w, wlen);
    free(w);
    if (wr != (ssize_t)wlen || fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) != 0) {
        int e = errno;
        close(fd);
        errno = wr < 0 ? e : (wr != (ssize_t)wlen ? EIO : e);
        return -1;
    }

    /* The other control messages, then SCM_RIGHTS with the memfd. */
    size_t clen = other + CMSG_SPACE(sizeof(int));
    char *control = calloc(1, clen);
    if (control == NULL) {
        close(fd);
        return -1;
    }
    size_t off = 0;
    for (c = CMSG_FIRSTHDR(msg); c != NULL; c = CMSG_NXTHDR((struct msghdr *)msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CAPS)
            continue;
        memcpy(control + off, c, c->cmsg_len);
        off += CMSG_ALIGN(c->cmsg_len);
    }
    struct cmsghdr *r = (struct cmsghdr *)(control + off);
    r->cmsg_level = SOL_SOCKET;
    r->cmsg_type = SCM_RIGHTS;
    r->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(r), &fd, sizeof fd);

    char filler = 0;
    struct iovec one = { &filler, 1 };
    struct msghdr m = *msg;
    m.msg_control = control;
    m.msg_controllen = clen;
    if (datalen == 0) {
        m.msg_iov = &one;
        m.msg_iovlen = 1;
    }
    ssize_t ret = sendmsg(s, &m, flags);
    int e = errno;
    free(control);
    close(fd);
    errno = e;
    if (ret > 0 && datalen == 0)
        ret = 0;
    return ret;
}

/* Is `fd` one of colo_sendmsg's capability memfds?  Then read it. */
static struct scm_caps_wire *scm_caps_read(int fd)
{
    struct scm_caps_wire head;
    if (pread(fd, &head, sizeof head, 0) != (ssize_t)sizeof head || head.magic != SCM_CAPS_MAGIC ||
        head.count > SCM_CAPS_MAX)
        return NULL;
    if ((fcntl(fd, F_GET_SEALS) & F_SEAL_WRITE) == 0)
        return NULL;
    size_t wlen = sizeof head + head.count * sizeof(uint64_t);
    struct scm_caps_wire *w = malloc(wlen);
    if (w == NULL)
        return NULL;
    if (pread(fd, w, wlen, 0) != (ssize_t)wlen) {
        free(w);
        return NULL;
    }
    return w;
}

/* Is every capability valid in this address space (NULL is allowed)? */
static int scm_caps_ours(const struct scm_caps_wire *w)
{
    if (!colocated())
        return 0;           /* not colocated: no capability can be ours */
    struct colo_cap_table *t = (struct colo_cap_table *)COLO_CAP_TABLE_ADDR;
    if (t->magic != COLO_CAP_TABLE_MAGIC)
        return 0;
    for (uint32_t i = 0; i < w->count; i++) {
        uint64_t v = w->caps[i];
        if (v == 0)
            continue;
        unsigned type = colo_cap_type_of(v);
        if (type == 0 || colo_cap_lookup(t, v, type) == NULL)
            return 0;
    }
    return 1;
}

ssize_t colo_recvmsg(int s, struct msghdr *msg, int flags)
{
    size_t ulen = msg->msg_controllen;
    size_t clen = ulen + CMSG_SPACE(64 * sizeof(int));
    char *control = calloc(1, clen);
    if (control == NULL)
        return -1;
    size_t datalen = 0;
    for (size_t i = 0; i < msg->msg_iovlen; i++)
        datalen += msg->msg_iov[i].iov_len;
    char filler;
    struct iovec one = { &filler, 1 };
    struct msghdr m = *msg;
    m.msg_control = control;
    m.msg_controllen = clen;
    if (datalen == 0) {
        m.msg_iov = &one;
        m.msg_iovlen = 1;
    }
    ssize_t ret = recvmsg(s, &m, flags | MSG_CMSG_CLOEXEC);
    if (ret < 0) {
        int e = errno;
        free(control);
        errno = e;
        return -1;
    }

    /* Rebuild the control messages in the caller's buffer, SCM_RIGHTS
     * without our memfd, SCM_CAPS from it. */
    struct scm_caps_wire *w = NULL;
    char *out = msg->msg_control;
    size_t off = 0;
    int flagsout = m.msg_flags & ~MSG_CTRUNC;
    int truncated = (m.msg_flags & MSG_CTRUNC) != 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c != NULL; c = CMSG_NXTHDR(&m, c)) {
        char *data = (char *)CMSG_DATA(c);
        size_t dlen = c->cmsg_len - CMSG_LEN(0);
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && dlen >= sizeof(int) && w == NULL) {
            int last;
            memcpy(&last, data + dlen - sizeof(int), sizeof last);
            if ((w = scm_caps_read(last)) != NULL) {
                close(last);
                dlen -= sizeof(int);
                if (dlen == 0)
                    continue;
            }
        }
        if (off + CMSG_SPACE(dlen) > ulen || out == NULL) {
            truncated = 1;
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
                for (size_t i = 0; i < dlen / sizeof(int); i++)
                    close(((int *)data)[i]);
            continue;
        }
        struct cmsghdr *o = (struct cmsghdr *)(out + off);
        o->cmsg_level = c->cmsg_level;
        o->cmsg_type = c->cmsg_type;
        o->cmsg_len = CMSG_LEN(dlen);
        memcpy(CMSG_DATA(o), data, dlen);
        off += CMSG_SPACE(dlen);
        /* Descriptors the caller receives are close-on-exec only if it asked. */
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && !(flags & MSG_CMSG_CLOEXEC))
            for (size_t i = 0; i < dlen / sizeof(int); i++)
                fcntl(((int *)data)[i], F_SETFD, 0);
    }
    free(control);
    if (w != NULL) {
        if (w->dummy && ret > 0)
            ret--;
        if (!scm_caps_ours(w)) {
            free(w);
            errno = EPROT;
            return -1;
        }
        size_t dlen = w->count * sizeof(uint64_t);
        if (out == NULL || off + CMSG_SPACE(dlen) > ulen) {
            truncated = 1;
        } else {
            struct cmsghdr *o = (struct cmsghdr *)(out + off);
            o->cmsg_level = SOL_SOCKET;
            o->cmsg_type = SCM_CAPS;
            o->cmsg_len = CMSG_LEN(dlen);
            memcpy(CMSG_DATA(o), w->caps, dlen);
            off += CMSG_SPACE(dlen);
        }
        free(w);
    }
    msg->msg_controllen = off;
    msg->msg_flags = flagsout | (truncated ? MSG_CTRUNC : 0);
    msg->msg_namelen = m.msg_namelen;
    return ret;
}
