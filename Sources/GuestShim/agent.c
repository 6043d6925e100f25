/* agent.c - the in-mm agent of an address space whose runtime lives in another mm (DESIGN §11).
 *
 * The runtime forks it once, before the address space has members: the agent's mm is a copy
 * of the runtime's, so this code, the SIGSYS handler and the switcher are at the same
 * addresses in both, and the shared structures the runtime mapped MAP_SHARED (process table,
 * capability table, SCB area, slot headers, trace ring) are the same memory in both.  The
 * agent drops the rest of the copy (the runtime's heap, libraries and stacks), installs the
 * address space's seccomp filter on itself (every member is its CLONE_VM child and inherits
 * it), hands its listener to the runtime, and then serves the runtime's requests
 * (colo_agent.h), batches of steps: map a slot header, apply a mapping plan, start a member,
 * unmap a range of a slot, retire a thread's SCB.  It decides nothing: every request is checked against the layout only, so a
 * request can do nothing outside the slot region and the SCB area.  When the runtime's end
 * of the socket closes (the runtime ended or was killed), it kills every other process of
 * its mm (space_end.c) and exits.  Raw system calls only, no libc. */
#define _GNU_SOURCE
#include <stddef.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <linux/errno.h>
#include <linux/sched.h>
#include <linux/prctl.h>
#include <linux/rseq.h>
#include "colo_agent.h"
#include "colo_plan.h"
#include "colo_sys.h"
#include "colo_layout.h"
#include "colo_switch.h"
#include "switcher.h"
#include "guest_shim.h"
#include "clone.h"
#include "process.h"
#include "start.h"
#include "space_end.h"
#include "filter.h"


#define AGENT_MAX_UNMAP 1024

static int in_slot_region(uint64_t addr, uint64_t len)
{
    return addr >= COLO_SLOT_REGION_BASE && len <= COLO_SLOT_REGION_END - COLO_SLOT_REGION_BASE
        && addr - COLO_SLOT_REGION_BASE <= COLO_SLOT_REGION_END - COLO_SLOT_REGION_BASE - len;
}

/* One request and its descriptors (at most COLO_AGENT_MAX_FDS, close-on-exec); 0 at the end. */
static long receive(long sock, struct colo_agent_request *rq, int *fds, uint32_t *nfds)
{
    union { char buf[CMSG_SPACE(sizeof(int) * COLO_AGENT_MAX_FDS)]; struct cmsghdr align; } ctl;
    struct iovec iov = { rq, sizeof *rq };
    struct msghdr m;
    colo_memset(&m, 0, sizeof m);
    colo_memset(&ctl, 0, sizeof ctl);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = ctl.buf;
    m.msg_controllen = sizeof ctl.buf;
    long n;
    do n = sys3(SYS_recvmsg, sock, &m, MSG_CMSG_CLOEXEC); while (n == -EINTR);
    *nfds = 0;
    if (n <= 0) return n;
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
        uint32_t k = (uint32_t)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        if (k > COLO_AGENT_MAX_FDS) k = COLO_AGENT_MAX_FDS;
        colo_memcpy(fds, CMSG_DATA(c), k * sizeof(int));
        *nfds = k;
    }
    return n == (long)sizeof *rq ? n : -EPROTO;
}

/* A reply, with descriptor `fd` attached if it is one (the listener, a member's pidfd). */
static void reply_with(long sock, long result, uint32_t failed_step, uint32_t failed_op, long fd)
{
    struct colo_agent_reply r = { result, failed_step, failed_op };
    struct iovec iov = { &r, sizeof r };
    union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } ctl;
    struct msghdr m;
    colo_memset(&m, 0, sizeof m);
    colo_memset(&ctl, 0, sizeof ctl);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    if (fd >= 0) {
        m.msg_control = ctl.buf;
        m.msg_controllen = sizeof ctl.buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        int v = (int)fd;
        colo_memcpy(CMSG_DATA(c), &v, sizeof v);
    }
    sys3(SYS_sendmsg, sock, &m, 0);
}

static void reply(long sock, long result, uint32_t failed_step, uint32_t failed_op)
{
    reply_with(sock, result, failed_step, failed_op, -1);
}


/* The agent's number of the descriptor the runtime calls `theirs`, or -1. */
static int32_t mine(const struct colo_agent_request *rq, const int *fds, uint32_t nfds, int64_t theirs)
{
    for (uint32_t k = 0; k < nfds && k < rq->nfds && k < COLO_AGENT_MAX_FDS; k++)
        if (rq->fds[k] == theirs) return fds[k];
    return -1;
}

static struct colo_slot *slot_header(int32_t slot)
{
    return slot >= 0 && slot < (int32_t)COLO_MAX_SLOTS ? colo_slot_at((uint64_t)slot) : 0;
}

/* A fork child's agent starts members as its own children: no process of its mm is the
 * runtime's child (agent_in_main). */
static int own_children;

static long agent_socket = -1;
/* A fork child's agent reaps its members as they exit: the runtime gets a pidfd of each new
 * one with the answer (SCM_RIGHTS), which names it, and keeps its status, even then. */
static long spawned_pidfd = -1;

static long spawn(const struct colo_agent_request *rq, const struct colo_agent_step *st, const int *fds, uint32_t nfds)
{
    struct colo_slot *s = slot_header(st->slot);
    if (!s) return -EINVAL;
    /* The agent's close-on-exec descriptors are its socket and what came with this request
     * (it closed the rest at its start): the member closes them as execve would. */
    uint32_t n = 0;
    s->start_close[n++] = (int32_t)agent_socket;
    for (uint32_t i = 0; i < nfds && n < COLO_START_CLOSE_MAX; i++) s->start_close[n++] = fds[i];
    s->start_nclose = n;
    for (int i = 0; i < 3; i++) {
        if (s->stdio[i] < 0) continue;
        int32_t fd = mine(rq, fds, nfds, s->stdio[i]);
        if (fd < 0) return -EBADF;
        s->stdio[i] = fd;
    }
    if (!own_children) return colo_spawn_as_sibling(s);
    int32_t pidfd = -1;
    long pid = colo_spawn_with_pidfd(s, &pidfd);
    if (pid > 0) spawned_pidfd = pidfd;
    return pid;
}

static long apply(const struct colo_agent_request *rq, const struct colo_agent_step *st, const int *fds, uint32_t nfds,
                  uint32_t *failed)
{
    *failed = 0;
    if (st->len < sizeof(struct colo_plan) || st->len > COLO_AGENT_STAGING_SIZE - COLO_AGENT_STACK_SIZE) return -EINVAL;
    struct colo_plan *p = (struct colo_plan *)(COLO_AGENT_STAGING_ADDR + COLO_AGENT_STACK_SIZE);
    if (p->magic != COLO_PLAN_MAGIC || p->nops > (st->len - sizeof *p) / sizeof p->ops[0]) return -EINVAL;
    for (uint32_t i = 0; i < p->nops; i++) {
        struct colo_plan_op *op = &p->ops[i];
        if (!in_slot_region(op->addr, op->len)) { *failed = i; return -EINVAL; }
        if (op->kind != COLO_PLAN_FILE) continue;
        int32_t fd = mine(rq, fds, nfds, op->fd);
        if (fd < 0) { *failed = i; return -EBADF; }
        op->fd = fd;
    }
    return colo_plan_apply(p, st->len, failed);
}

static long step(const struct colo_agent_request *rq, const struct colo_agent_step *st, const int *fds, uint32_t nfds,
                 uint32_t *failed_op)
{
    switch (st->op) {
    case COLO_AGENT_HEADER: {
        struct colo_slot *s = slot_header(st->slot);
        int32_t fd = mine(rq, fds, nfds, (int64_t)st->addr);
        if (!s || fd < 0) return -EINVAL;
        long r = sys6(SYS_mmap, (long)s, COLO_SLOT_HEADER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED_NOREPLACE,
                      fd, (uint64_t)st->slot * COLO_SLOT_HEADER_SIZE);
        return r < 0 && r > -4096 ? r : 0;
    }
    case COLO_AGENT_APPLY: return apply(rq, st, fds, nfds, failed_op);
    case COLO_AGENT_SPAWN: return spawn(rq, st, fds, nfds);
    case COLO_AGENT_UNMAP: return in_slot_region(st->addr, st->len) ? sys2(SYS_munmap, st->addr, st->len) : -EINVAL;
    case COLO_AGENT_RETIRE:
        if (!colo_is_scb_block(st->addr)) return -EINVAL;
        colo_scb_retire((struct colo_scb *)st->addr);
        return 0;
    default: return -ENOSYS;
    }
}

static void serve(long sock) __attribute__((noreturn));

/* What every agent does first.  Signals are for the members and the runtime: a terminal's ^C
 * does not end the agent.  Its members start from its dispositions: the defaults, not the
 * runtime's handlers (nor a fork child's). */
static void agent_begin(void)
{
    uint64_t all = ~0ULL;
    sys4(SYS_rt_sigprocmask, SIG_SETMASK, &all, 0, 8);
    colo_default_dispositions();
    sys5(SYS_prctl, PR_SET_NAME, (long)"colo agent", 0, 0, 0);
}

static void agent_main(void *arg)
{
    /* What the start record names lives in the copy of the runtime's memory this drops. */
    struct colo_agent_start st = *(const struct colo_agent_start *)arg;
    static uint64_t unmap[2 * AGENT_MAX_UNMAP];
    uint32_t nunmap = st.nunmap < AGENT_MAX_UNMAP ? st.nunmap : AGENT_MAX_UNMAP;
    colo_memcpy(unmap, st.unmap, nunmap * 2 * sizeof(uint64_t));
    long sock = st.sock;

    agent_begin();
    /* The kernel writes the rseq area on every return to user space: it must go first. */
    if (st.rseq_area) sys4(SYS_rseq, st.rseq_area, st.rseq_len, RSEQ_FLAG_UNREGISTER, st.rseq_sig);
    for (uint32_t i = 0; i < nunmap; i++)
        sys2(SYS_munmap, unmap[2 * i], unmap[2 * i + 1] - unmap[2 * i]);
    /* The runtime's descriptors stay the runtime's: only those a member inherits remain
     * (as when the runtime started members itself), and the socket. */
    colo_close_cloexec_fds_except((int)sock);

    /* The listener (or the error of installing the filter) is the first reply. */
    long listener = colo_install_filter(colo_filter_program, colo_filter_length);
    reply_with(sock, listener, 0, 0, listener);
    if (listener >= 0) sys1(SYS_close, listener);
    serve(sock);
}

/* The agent of a fork child's address space (colo_agent_start_in). */
static void agent_in_main(void *arg)
{
    long sock = (long)arg;
    agent_begin();
    /* Its members are its children, reaped as they exit (their ends reach the runtime through
     * pidfds, with their statuses); the child's descriptors are the child's. */
    struct kernel_sigaction ign = { (uint64_t)SIG_IGN, 0, 0, 0 };
    sys4(SYS_rt_sigaction, SIGCHLD, &ign, 0, 8);
    own_children = 1;
    if (sock > 0) sys3(SYS_close_range, 0, sock - 1, 0);
    sys3(SYS_close_range, sock + 1, ~0U, 0);
    reply(sock, sys0(SYS_getpid), 0, 0);
    serve(sock);
}

int colo_agent_start_in(int sock)
{
    /* Its stack in a fresh staging area, over the copy of the parent's agent's. */
    long area = sys6(SYS_mmap, COLO_AGENT_STAGING_ADDR, COLO_AGENT_STAGING_SIZE, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
    if (area < 0 && area > -4096) return (int)area;
    long copy = sys3(SYS_fcntl, sock, F_DUPFD_CLOEXEC, 0);
    if (copy < 0) return (int)copy;
    long pid = colo_clone_start(CLONE_VM, (char *)area + COLO_AGENT_STACK_SIZE, 0, agent_in_main, (void *)copy);
    sys1(SYS_close, copy);
    return (int)pid;
}

/* Serve the runtime's requests until its end of the socket closes; then end the mm. */
static void serve(long sock)
{
    static struct colo_agent_request rq;
    agent_socket = sock;
    int fds[COLO_AGENT_MAX_FDS];
    uint32_t nfds;
    long n;
    while ((n = receive(sock, &rq, fds, &nfds)) != 0) {
        if (n < 0 && n != -EPROTO) break;
        long r = n < 0 ? n : 0;
        uint32_t at = 0, failed_op = 0;
        if (n > 0)
            for (; at < rq.nsteps && at < COLO_AGENT_MAX_STEPS; at++)
                if ((r = step(&rq, &rq.steps[at], fds, nfds, &failed_op)) < 0) break;
        for (uint32_t i = 0; i < nfds; i++) sys1(SYS_close, fds[i]);
        reply_with(sock, r, r < 0 ? at : rq.nsteps, failed_op, spawned_pidfd);
        if (spawned_pidfd >= 0) sys1(SYS_close, spawned_pidfd);
        spawned_pidfd = -1;
    }
    colo_kill_address_space_and_exit();
}

int colo_agent_start(const struct colo_agent_start *st)
{
    long area = sys6(SYS_mmap, COLO_AGENT_STAGING_ADDR, COLO_AGENT_STAGING_SIZE, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
    if (area < 0 && area > -4096) return (int)area;
    long pid = colo_clone_start(SIGCHLD, (char *)area + COLO_AGENT_STACK_SIZE, 0, agent_main, (void *)st);
    /* The runtime needs no staging area of its own: the agent's copy is the one it writes to. */
    sys2(SYS_munmap, area, COLO_AGENT_STAGING_SIZE);
    return (int)pid;
}
