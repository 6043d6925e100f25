/* copool.c - service pools (copool.h, copool(3)): N accepting threads behind
 * one published target, and client handles that spread calls over them. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>
#include "colo.h"
#include "copool.h"

/* ---- server ---- */

struct copool_member {
    struct copool *pool;
    int index;
    pthread_t thread;
    int started;                /* pthread_create succeeded */
    void *target;
    int error;                  /* set-up failure (errno value) */
    void *inbuf, *outbuf;
};

struct copool {
    copool_handler_t *handler;
    void *arg;
    const char *name;
    int nthreads, flags;
    size_t bufsize;
    uint64_t secret;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int ready;                  /* members done with set-up (well or not) */
    struct copool_member members[];
};

static int is_reserved(const void *buf, ssize_t received, int op, uint64_t secret)
{
    const copool_request_t *r = buf;
    if (received != (ssize_t)sizeof *r || r->len != sizeof *r || r->magic != COPOOL_MAGIC || r->op != op)
        return 0;
    return op != COPOOL_OP_STOP || r->secret == secret;
}

static size_t round8(size_t n) { return (n + 7) & ~(size_t)7; }

static void *member_main(void *p)
{
    struct copool_member *m = p;
    struct copool *pool = m->pool;
    int slow = (pool->flags & COPOOL_SLOW) != 0;
    int error = cosetup(COSETUP_COACCEPT);
    if (error == -1)
        error = errno;
    if (error == 0 && coregister(m->index == 0 ? pool->name : NULL, &m->target) != 0)
        error = errno;
    pthread_mutex_lock(&pool->lock);
    m->error = error;
    pool->ready++;
    pthread_cond_broadcast(&pool->cond);
    pthread_mutex_unlock(&pool->lock);
    if (error != 0)
        return NULL;

    size_t outlen = 0;
    for (;;) {
        void *cookie = NULL;
        ssize_t received = slow ?
            coaccept_slow(&cookie, m->outbuf, outlen, m->inbuf, pool->bufsize) :
            coaccept(&cookie, m->outbuf, outlen, m->inbuf, pool->bufsize);
        if (received < 0) {
            /* EINTR: offer the same reply again (it reaches its caller once).
             * Anything else: the reply is lost to its caller, who got the error. */
            if (errno != EINTR) {
                outlen = 0;
                usleep(1000);       /* no busy loop on a persistent error */
            }
            continue;
        }
        if (is_reserved(m->inbuf, received, COPOOL_OP_STOP, pool->secret))
            return NULL;    /* the stopping caller gets ENOLINK when we are gone */
        if (is_reserved(m->inbuf, received, COPOOL_OP_DISCOVER, 0)) {
            copool_members_t *out = m->outbuf;
            memset(out, 0, sizeof *out);
            out->len = sizeof *out;
            out->op = -COPOOL_OP_DISCOVER;
            out->nthreads = pool->nthreads;
            out->magic = COPOOL_MAGIC;
            for (int i = 0; i < pool->nthreads; i++)
                out->targets[i] = pool->members[i].target;
            outlen = sizeof *out;
            continue;
        }
        ssize_t n = pool->handler(pool->arg, m->index, cookie, m->inbuf, (size_t)received,
                                  m->outbuf, pool->bufsize);
        if (n < 0)
            n = 0;
        if ((size_t)n > pool->bufsize)
            n = (ssize_t)pool->bufsize;
        outlen = round8((size_t)n);
        memset((char *)m->outbuf + n, 0, outlen - (size_t)n);
    }
}

/* Send COPOOL_OP_STOP to member m and wait for its thread. */
static void stop_member(struct copool *pool, struct copool_member *m)
{
    copool_request_t req;
    uint64_t reply[2];
    memset(&req, 0, sizeof req);
    req.len = sizeof req;
    req.op = COPOOL_OP_STOP;
    req.version = 1;
    req.magic = COPOOL_MAGIC;
    req.secret = pool->secret;
    /* The member exits instead of answering: ENOLINK is the expected result. */
    int saved = errno;
    for (;;) {
        ssize_t r = (pool->flags & COPOOL_SLOW) ?
            cocall_slow(m->target, &req, sizeof req, reply, sizeof reply) :
            cocall(m->target, &req, sizeof req, reply, sizeof reply);
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
            usleep(1000);
            continue;
        }
        break;
    }
    errno = saved;
    pthread_join(m->thread, NULL);
    m->started = 0;
}

static void free_pool(struct copool *pool)
{
    for (int i = 0; i < pool->nthreads; i++) {
        free(pool->members[i].inbuf);
        free(pool->members[i].outbuf);
    }
    pthread_mutex_destroy(&pool->lock);
    pthread_cond_destroy(&pool->cond);
    free(pool);
}

static __thread int cocall_ready;

static int ensure_cocall(void)
{
    if (cocall_ready)
        return 0;
    int error = cosetup(COSETUP_COCALL);
    if (error != 0) {
        if (error != -1)
            errno = error;
        return -1;
    }
    cocall_ready = 1;
    return 0;
}

int copool_create(struct copool **poolp, const char *name, int nthreads, size_t bufsize,
                  copool_handler_t *handler, void *arg, int flags)
{
    if (poolp == NULL || handler == NULL || nthreads < 1 || nthreads > COPOOL_MAX_THREADS ||
        (flags & ~COPOOL_SLOW) != 0 || bufsize > ((size_t)1 << 30)) {
        errno = EINVAL;
        return -1;
    }
    bufsize = round8(bufsize);
    if (bufsize < sizeof(copool_members_t))
        bufsize = sizeof(copool_members_t);
    struct copool *pool = calloc(1, sizeof *pool + (size_t)nthreads * sizeof pool->members[0]);
    if (pool == NULL)
        return -1;
    pool->handler = handler;
    pool->arg = arg;
    pool->name = name;
    pool->nthreads = nthreads;
    pool->flags = flags;
    pool->bufsize = bufsize;
    if (getrandom(&pool->secret, sizeof pool->secret, 0) != (ssize_t)sizeof pool->secret)
        pool->secret = ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)pool ^ 0x9e3779b97f4a7c15ULL;
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->cond, NULL);
    for (int i = 0; i < nthreads; i++) {
        struct copool_member *m = &pool->members[i];
        m->pool = pool;
        m->index = i;
        m->inbuf = aligned_alloc(16, bufsize);
        m->outbuf = aligned_alloc(16, bufsize);
        if (m->inbuf == NULL || m->outbuf == NULL) {
            free_pool(pool);
            errno = ENOMEM;
            return -1;
        }
        memset(m->inbuf, 0, bufsize);
        memset(m->outbuf, 0, bufsize);
    }

    /* Member 0 first, alone: it registers the name, and a name that is taken
     * fails the pool before the other threads exist. */
    int error = 0, started = 0;
    for (int i = 0; i < nthreads && error == 0; i++) {
        struct copool_member *m = &pool->members[i];
        error = pthread_create(&m->thread, NULL, member_main, m);
        if (error != 0)
            break;
        m->started = 1;
        started++;
        pthread_mutex_lock(&pool->lock);
        while (pool->ready < started)
            pthread_cond_wait(&pool->cond, &pool->lock);
        error = m->error;
        pthread_mutex_unlock(&pool->lock);
        if (error != 0) {
            pthread_join(m->thread, NULL);
            m->started = 0;
        }
    }
    if (error != 0) {
        if (ensure_cocall() == 0)
            for (int i = 0; i < nthreads; i++)
                if (pool->members[i].started)
                    stop_member(pool, &pool->members[i]);
        free_pool(pool);
        errno = error;
        return -1;
    }
    *poolp = pool;
    return 0;
}

void *copool_target(const struct copool *pool)
{
    return pool->members[0].target;
}

int copool_nthreads(const struct copool *pool)
{
    return pool->nthreads;
}

int copool_members(const struct copool *pool, void **targets, int n)
{
    for (int i = 0; i < n && i < pool->nthreads; i++)
        targets[i] = pool->members[i].target;
    return pool->nthreads;
}

int copool_destroy(struct copool *pool)
{
    if (pool == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (ensure_cocall() != 0)
        return -1;
    for (int i = 0; i < pool->nthreads; i++)
        if (pool->members[i].started)
            stop_member(pool, &pool->members[i]);
    free_pool(pool);
    return 0;
}

/* ---- client ---- */

struct copool_client {
    uint64_t id;                /* never reused: keys the affinity cache */
    int strategy, flags, nthreads;
    _Atomic unsigned next;      /* round-robin position, affinity assignments */
    _Atomic int busy[COPOOL_MAX_THREADS];   /* calls in progress per member */
    void *targets[COPOOL_MAX_THREADS];
};

static _Atomic uint64_t next_client_id = 1;

/* Per-thread affinity: the member this thread was given by each of the last
 * few handles it called through. */
#define AFFINITY_CACHE 8
static __thread struct { uint64_t id; int member; } affinity[AFFINITY_CACHE];
static __thread unsigned affinity_victim;
static __thread int last_member = -1;

static int make_client(struct copool_client **clientp, void * const *targets, int n, int strategy, int flags)
{
    if (clientp == NULL || n < 1 || n > COPOOL_MAX_THREADS || (flags & ~COPOOL_SLOW) != 0 ||
        strategy < COPOOL_AFFINITY || strategy > COPOOL_FIRSTFREE) {
        errno = EINVAL;
        return -1;
    }
    struct copool_client *c = calloc(1, sizeof *c);
    if (c == NULL)
        return -1;
    c->id = atomic_fetch_add(&next_client_id, 1);
    c->strategy = strategy;
    c->flags = flags;
    c->nthreads = n;
    memcpy(c->targets, targets, (size_t)n * sizeof targets[0]);
    *clientp = c;
    return 0;
}

/* One call to a member; a member that has not accepted yet (EAGAIN: it is
 * still starting) is asked again a millisecond later. */
static ssize_t raw_call(int flags, void *target, const void *out, size_t outlen, void *in, size_t inlen)
{
    for (;;) {
        ssize_t r;
        if (!(flags & COPOOL_SLOW)) {
            r = cocall(target, out, outlen, in, inlen);
        } else {
            r = cocall_slow(target, out, outlen, in, inlen);
            if (r < 0 && errno == EPROTOTYPE)       /* the member accepts with the switcher */
                r = cocall(target, out, outlen, in, inlen);
        }
        if (r >= 0 || errno != EAGAIN)
            return r;
        usleep(1000);
    }
}

int copool_open_members(struct copool_client **clientp, void * const *targets, int n, int strategy, int flags)
{
    if (targets == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (make_client(clientp, targets, n, strategy, flags) != 0)
        return -1;
    if (ensure_cocall() != 0) {
        int e = errno;
        free(*clientp);
        *clientp = NULL;
        errno = e;
        return -1;
    }
    return 0;
}

int copool_open(struct copool_client **clientp, void *target, int strategy, int flags)
{
    if (clientp == NULL || target == NULL || (flags & ~COPOOL_SLOW) != 0 ||
        strategy < COPOOL_AFFINITY || strategy > COPOOL_FIRSTFREE) {
        errno = EINVAL;
        return -1;
    }
    if (ensure_cocall() != 0)
        return -1;
    copool_request_t req;
    copool_members_t *reply = aligned_alloc(16, sizeof *reply);
    if (reply == NULL)
        return -1;
    memset(&req, 0, sizeof req);
    memset(reply, 0, sizeof *reply);
    req.len = sizeof req;
    req.op = COPOOL_OP_DISCOVER;
    req.version = 1;
    req.magic = COPOOL_MAGIC;
    ssize_t r = raw_call(flags, target, &req, sizeof req, reply, sizeof *reply);
    if (r < 0) {
        int e = errno;
        free(reply);
        errno = e;
        return -1;
    }
    int ret;
    if (r == (ssize_t)sizeof *reply && reply->len == sizeof *reply && reply->magic == COPOOL_MAGIC &&
        reply->op == -COPOOL_OP_DISCOVER && reply->nthreads >= 1 && reply->nthreads <= COPOOL_MAX_THREADS)
        ret = make_client(clientp, reply->targets, reply->nthreads, strategy, flags);
    else
        ret = make_client(clientp, &target, 1, strategy, flags);   /* not a pool: one member */
    int e = errno;
    free(reply);
    errno = e;
    return ret;
}

static int pick_affinity(struct copool_client *c)
{
    for (int i = 0; i < AFFINITY_CACHE; i++)
        if (affinity[i].id == c->id)
            return affinity[i].member;
    int member = (int)(atomic_fetch_add(&c->next, 1) % (unsigned)c->nthreads);
    unsigned slot = affinity_victim++ % AFFINITY_CACHE;
    affinity[slot].id = c->id;
    affinity[slot].member = member;
    return member;
}

ssize_t copool_call(struct copool_client *c, const void *out, size_t outlen, void *in, size_t inlen)
{
    if (c == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (ensure_cocall() != 0)
        return -1;
    int member;
    switch (c->strategy) {
    case COPOOL_AFFINITY:
        member = pick_affinity(c);
        atomic_fetch_add(&c->busy[member], 1);
        break;
    case COPOOL_ROUNDROBIN:
        member = (int)(atomic_fetch_add(&c->next, 1) % (unsigned)c->nthreads);
        atomic_fetch_add(&c->busy[member], 1);
        break;
    default:
        member = -1;
        for (int i = 0; i < c->nthreads && member < 0; i++) {
            int zero = 0;
            if (atomic_load(&c->busy[i]) == 0 && atomic_compare_exchange_strong(&c->busy[i], &zero, 1))
                member = i;
        }
        if (member < 0) {
            /* Everyone is busy: queue on the least busy member. */
            int best = 0, load = atomic_load(&c->busy[0]);
            for (int i = 1; i < c->nthreads; i++) {
                int l = atomic_load(&c->busy[i]);
                if (l < load) {
                    best = i;
                    load = l;
                }
            }
            member = best;
            atomic_fetch_add(&c->busy[member], 1);
        }
        break;
    }
    last_member = member;
    ssize_t r = raw_call(c->flags, c->targets[member], out, outlen, in, inlen);
    int e = errno;
    atomic_fetch_sub(&c->busy[member], 1);
    errno = e;
    return r;
}

int copool_client_nthreads(const struct copool_client *c)
{
    return c->nthreads;
}

int copool_lastmember(void)
{
    return last_member;
}

void copool_close(struct copool_client *c)
{
    free(c);
}
