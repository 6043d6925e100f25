/*
 * copool.h - service pools: N accepting threads behind one published target,
 * and callers that spread their calls over the pool's threads.  The
 * "higher-level wrapper API implementing the few typical ones" that CheriBSD's
 * colocation tutorial asks for; not part of CheriBSD.  See copool(3).
 *
 * Server side.  copool_create() starts `nthreads` threads; each one does
 * cosetup(COSETUP_COACCEPT), coregister(NULL, &target) and then loops on
 * coaccept(2), calling the handler for every call it receives.  A handler runs
 * as the member that took the call (with the switcher, the caller's thread
 * borrows the member's context), so with N members up to N calls are served
 * at once: the handler must be thread-safe.
 *
 * Published form.  A pool is published as ONE capability: the target of its
 * first thread (member 0), copool_target().  It travels like any target:
 * through capv (capvset, coexecvec), coregister(2) (the `name` argument of
 * copool_create registers member 0 under that name), SCM_CAPS.  Member 0
 * answers a discovery message (copool_request_t with op COPOOL_OP_DISCOVER and
 * magic COPOOL_MAGIC) with the list of every member's target
 * (copool_members_t); copool_open() sends it once and keeps the list.  The
 * capability needs nothing else to be passed along, so the caller never needs
 * to read the server's memory (it could not on CHERI), and a program that does
 * not know about pools (capv(1), coping(1), a plain cocall) still reaches
 * member 0 and is served as by a one-thread service.  Pool threads handle
 * these two reserved messages themselves; every other message goes to the
 * handler, op 0 (the answerback of <capv.h>) included.
 *
 * A client that already holds the members' targets (for example a range of
 * capv entries filled from copool_members()) can skip discovery with
 * copool_open_members().
 *
 * Client side: strategies (copool_open's `strategy`):
 *   COPOOL_AFFINITY    each calling thread keeps one member: the k-th thread
 *                      to call through this handle gets member k mod N;
 *   COPOOL_ROUNDROBIN  call i of the handle (all threads together) goes to
 *                      member i mod N;
 *   COPOOL_FIRSTFREE   the lowest-numbered member with no call of this handle
 *                      in progress; if every member is busy, the least busy.
 * Every call is one cocall(2) to one member: it is delivered once, answered
 * once, or fails (-1 with errno) without having been served twice.  A busy
 * member makes the call wait (the runtime queues callers), so no strategy
 * ever drops a call.  The busy counts of COPOOL_FIRSTFREE are the handle's
 * own (every thread of the process using it), not the calls of other
 * processes.
 *
 * Buffers follow cocall(2)'s rule: 8-byte aligned, lengths multiples of 8.
 */
#ifndef COPOOL_H
#define COPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef __capability
#define __capability
#endif

/* At most this many threads in a pool. */
#define COPOOL_MAX_THREADS  64

/* The reserved messages (their `op`, as in <capv.h>'s `size_t len; int op`
 * header; replies carry -op).  A message is reserved only with this exact
 * size, len and magic, so it cannot be mistaken for an application call. */
#define COPOOL_OP_DISCOVER  0x6c6f6f70      /* "pool" */
#define COPOOL_OP_STOP      0x706f7473      /* "stop" (the pool's own process only) */
#define COPOOL_MAGIC        0x31304c4f4f504f43ULL  /* "COPOOL01" */

/* flags of copool_create and copool_open */
#define COPOOL_SLOW         1   /* coaccept_slow / cocall_slow (no fast path); a slow
                                 * client falls back to cocall against a member
                                 * it cannot reach that way (EPROTOTYPE) */

/* strategies of copool_open */
#define COPOOL_AFFINITY     1
#define COPOOL_ROUNDROBIN   2
#define COPOOL_FIRSTFREE    3

typedef union {
    void * __capability aligner;
    struct {
        size_t len;                 /* sizeof(copool_request_t) */
        int op;                     /* COPOOL_OP_DISCOVER or COPOOL_OP_STOP */
        int version;                /* 1 */
        uint64_t magic;             /* COPOOL_MAGIC */
        uint64_t secret;            /* COPOOL_OP_STOP: the pool's secret */
    };
} copool_request_t;

typedef union {
    void * __capability aligner;
    struct {
        size_t len;                 /* sizeof(copool_members_t) */
        int op;                     /* -COPOOL_OP_DISCOVER */
        int nthreads;               /* members in targets[] */
        uint64_t magic;             /* COPOOL_MAGIC */
        void * __capability targets[COPOOL_MAX_THREADS];
    };
} copool_members_t;

/*
 * A pool's handler: serve one call received by member `member` from the caller
 * identified by `cookie` (see coaccept(2); cogetpid(2) and cocachedpid(3) work
 * here).  `request` holds `reqlen` bytes; write the reply into `reply` (room
 * for `replycap` bytes) and return its length, which the library rounds up to
 * a multiple of 8 with zero bytes; a negative return sends an empty reply.
 */
typedef ssize_t copool_handler_t(void *arg, int member, void * __capability cookie,
    const void *request, size_t reqlen, void *reply, size_t replycap);

struct copool;
struct copool_client;

/* Start a pool of `nthreads` (1 .. COPOOL_MAX_THREADS) threads whose request
 * and reply buffers hold `bufsize` bytes each (rounded up to a multiple of 8,
 * at least sizeof(copool_members_t)).  Member 0 is coregistered as `name`
 * unless it is NULL.  Returns 0 once every member is set up (calls may then
 * be made), or -1 with errno: EINVAL (bad argument), the error of cosetup,
 * coregister (EEXIST ...) or pthread_create, ENOMEM. */
int     copool_create(struct copool **poolp, const char *name, int nthreads,
            size_t bufsize, copool_handler_t *handler, void *arg, int flags);
/* The published target (member 0's). */
void * __capability copool_target(const struct copool *pool);
/* Number of members. */
int     copool_nthreads(const struct copool *pool);
/* Copy at most `n` member targets into `targets`; returns the number of members. */
int     copool_members(const struct copool *pool, void * __capability *targets, int n);
/* Stop every member and free the pool: each member is sent COPOOL_OP_STOP
 * (after the calls queued before it) and exits.  Calls that reach a member
 * after it stopped fail with ENOLINK.  Not from a handler.  0, or -1 with errno. */
int     copool_destroy(struct copool *pool);

/* Open a handle on the pool published as `target` (discovery: one cocall).
 * A target that does not answer as a pool is used as a pool of one member.
 * Sets the calling thread up for cocall.  0, or -1 with errno: EINVAL (bad
 * strategy or flags), ENOMEM, or the error of the discovery cocall. */
int     copool_open(struct copool_client **clientp, void * __capability target,
            int strategy, int flags);
/* The same, from the members' targets (no discovery call). */
int     copool_open_members(struct copool_client **clientp,
            void * __capability const *targets, int n, int strategy, int flags);
/* One call, to the member the strategy picks: as cocall(2) (it sets the
 * calling thread up for cocall on first use): the number of bytes received
 * into `inbuf`, or -1 with errno. */
ssize_t copool_call(struct copool_client *client, const void *outbuf, size_t outlen,
            void *inbuf, size_t inlen);
/* Number of members the handle spreads calls over. */
int     copool_client_nthreads(const struct copool_client *client);
/* The member the calling thread's last copool_call went to (-1 if none). */
int     copool_lastmember(void);
/* Free a handle (the pool is not affected). */
void    copool_close(struct copool_client *client);

#ifdef __cplusplus
}
#endif

#endif
