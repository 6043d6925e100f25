/* copool_guest.c - service pools (copool.h) under test and benchmark.
 *
 *   copool_guest serve NAME NTHREADS [slow]
 *       a pool of NTHREADS members, member 0 coregistered as NAME; prints
 *       pid= and ready, serves until killed.  The handler checks each call's
 *       checksum, counts it per (caller, seq) and per member, and answers with
 *       a transformed, checksummed payload naming the member.
 *   copool_guest call NAME STRATEGY NCALLERS NCALLS [slow]
 *       NCALLERS threads of NCALLS calls each through one copool_open handle
 *       (STRATEGY: affinity, roundrobin, firstfree); every reply is checked,
 *       then the pool's report: key=value lines.
 *   copool_guest bench NAME STRATEGY NCALLERS SECONDS
 *       throughput: calls=, seconds=, calls_per_s=.
 *   copool_guest selftest NTHREADS
 *       pool and callers in one process, then copool_destroy: a call after
 *       it fails with ENOLINK.
 *   copool_guest plain NAME
 *       copool_open on a target that is not a pool (one member).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <colo.h>
#include <copool.h>

#define OP_CALL   1
#define OP_REPORT 2
#define OP_RESET  3
#define MAX_CALLERS 16
#define MAX_SEQ     65536
#define MAX_WORDS   64

struct msg {
    size_t len;
    int op;
    int caller;
    uint64_t seq;
    uint64_t sum;
    int32_t member;
    int32_t nwords;
    uint64_t data[MAX_WORDS];
};

struct report {
    size_t len;
    int op;
    int nthreads;
    uint64_t total, once, missing, duplicated, bad;
    uint64_t per_member[COPOOL_MAX_THREADS];
};

/* Room for every message and reply. */
#define BUFSIZE (sizeof(struct msg) > sizeof(struct report) ? sizeof(struct msg) : sizeof(struct report))

static _Atomic uint16_t *hits;
static _Atomic uint64_t per_member[COPOOL_MAX_THREADS], total, bad;
static int pool_threads;

static uint64_t checksum(const uint64_t *w, int n, uint64_t seed)
{
    uint64_t h = seed ^ 0xcbf29ce484222325ULL;
    for (int i = 0; i < n; i++) {
        h ^= w[i];
        h *= 0x100000001b3ULL;
        h ^= h >> 29;
    }
    return h;
}

static size_t msg_size(int nwords) { return offsetof(struct msg, data) + (size_t)nwords * 8; }

static ssize_t handler(void *arg, int member, void *cookie, const void *request, size_t reqlen,
                       void *reply, size_t replycap)
{
    (void)arg; (void)cookie;
    const struct msg *in = request;
    if (reqlen < offsetof(struct msg, data))
        return -1;
    if (in->op == OP_REPORT) {
        struct report *r = reply;
        if (replycap < sizeof *r)
            return -1;
        uint64_t expect_callers = in->data[0], expect_calls = in->data[1];
        memset(r, 0, sizeof *r);
        r->len = sizeof *r;
        r->op = -OP_REPORT;
        r->nthreads = pool_threads;
        r->total = atomic_load(&total);
        r->bad = atomic_load(&bad);
        for (uint64_t c = 0; c < MAX_CALLERS; c++)
            for (uint64_t s = 0; s < MAX_SEQ; s++) {
                uint16_t h = atomic_load(&hits[c * MAX_SEQ + s]);
                if (c < expect_callers && s < expect_calls) {
                    if (h == 0) r->missing++;
                    else if (h == 1) r->once++;
                    else r->duplicated++;
                } else if (h != 0) {
                    r->duplicated++;        /* a call nobody made */
                }
            }
        for (int i = 0; i < COPOOL_MAX_THREADS; i++)
            r->per_member[i] = atomic_load(&per_member[i]);
        return (ssize_t)sizeof *r;
    }
    if (in->op == OP_RESET) {
        for (size_t i = 0; i < (size_t)MAX_CALLERS * MAX_SEQ; i++)
            atomic_store(&hits[i], 0);
        for (int i = 0; i < COPOOL_MAX_THREADS; i++)
            atomic_store(&per_member[i], 0);
        atomic_store(&total, 0);
        atomic_store(&bad, 0);
        struct msg *out = reply;
        memset(out, 0, offsetof(struct msg, data));
        out->len = offsetof(struct msg, data);
        out->op = -OP_RESET;
        return (ssize_t)out->len;
    }
    if (in->op != OP_CALL || in->nwords < 0 || in->nwords > MAX_WORDS || reqlen != msg_size(in->nwords) ||
        in->len != reqlen || in->sum != checksum(in->data, in->nwords, in->seq) ||
        in->caller < 0 || in->caller >= MAX_CALLERS || in->seq >= MAX_SEQ || replycap < reqlen) {
        atomic_fetch_add(&bad, 1);
        return -1;
    }
    atomic_fetch_add(&hits[(size_t)in->caller * MAX_SEQ + in->seq], 1);
    atomic_fetch_add(&per_member[member], 1);
    atomic_fetch_add(&total, 1);
    struct msg *out = reply;
    out->len = reqlen;
    out->op = -OP_CALL;
    out->caller = in->caller;
    out->seq = in->seq;
    out->member = member;
    out->nwords = in->nwords;
    for (int i = 0; i < in->nwords; i++)
        out->data[i] = in->data[i] ^ (0x5555555555555555ULL + in->seq);
    out->sum = checksum(out->data, out->nwords, in->seq + 1);
    return (ssize_t)reqlen;
}

static int parse_strategy(const char *s)
{
    if (strcmp(s, "affinity") == 0) return COPOOL_AFFINITY;
    if (strcmp(s, "roundrobin") == 0) return COPOOL_ROUNDROBIN;
    if (strcmp(s, "firstfree") == 0) return COPOOL_FIRSTFREE;
    fprintf(stderr, "unknown strategy %s\n", s);
    exit(2);
}

struct caller {
    struct copool_client *client;
    int index, ncalls;
    double seconds;
    pthread_t thread;
    uint64_t done, wrong, errors, members_seen, member_mismatch;
    int first_member;
};

static _Atomic int go;

/* One call with a checksummed payload; 0 if the reply is right. */
static int one_call(struct caller *c, uint64_t seq, struct msg *out, struct msg *in)
{
    int nwords = (int)((seq * 7 + (uint64_t)c->index * 3) % MAX_WORDS) + 1;
    out->len = msg_size(nwords);
    out->op = OP_CALL;
    out->caller = c->index;
    out->seq = seq;
    out->member = -1;
    out->nwords = nwords;
    for (int i = 0; i < nwords; i++)
        out->data[i] = (seq << 32) ^ ((uint64_t)c->index << 24) ^ (uint64_t)i * 0x9e3779b97f4a7c15ULL;
    out->sum = checksum(out->data, nwords, seq);
    memset(in, 0, sizeof *in);
    ssize_t r = copool_call(c->client, out, out->len, in, sizeof *in);
    if (r < 0) {
        c->errors++;
        return -1;
    }
    int ok = r == (ssize_t)out->len && in->len == out->len && in->op == -OP_CALL && in->caller == c->index &&
             in->seq == seq && in->nwords == nwords && in->sum == checksum(in->data, nwords, seq + 1);
    for (int i = 0; ok && i < nwords; i++)
        ok = in->data[i] == (out->data[i] ^ (0x5555555555555555ULL + seq));
    if (!ok) {
        c->wrong++;
        return -1;
    }
    if (in->member != copool_lastmember())
        c->member_mismatch++;
    c->members_seen |= 1ULL << in->member;
    if (c->first_member < 0)
        c->first_member = in->member;
    return 0;
}

static void *caller_main(void *p)
{
    struct caller *c = p;
    struct msg *out = aligned_alloc(16, sizeof *out), *in = aligned_alloc(16, sizeof *in);
    c->first_member = -1;
    while (!atomic_load(&go))
        ;
    if (c->seconds > 0) {
        struct timespec t0, t;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (uint64_t seq = 0;; seq++) {
            one_call(c, seq % MAX_SEQ, out, in);
            c->done++;
            if ((seq & 63) == 0) {
                clock_gettime(CLOCK_MONOTONIC, &t);
                if ((double)(t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9 >= c->seconds)
                    break;
            }
        }
    } else {
        for (int seq = 0; seq < c->ncalls; seq++) {
            one_call(c, (uint64_t)seq, out, in);
            c->done++;
        }
    }
    free(out);
    free(in);
    return NULL;
}

static void *lookup(const char *name)
{
    void *target = NULL;
    for (int i = 0; i < 2000; i++) {
        if (colookup(name, &target) == 0)
            return target;
        usleep(5000);
    }
    perror("colookup");
    exit(1);
}

static ssize_t control(struct copool_client *client, int op, uint64_t a, uint64_t b, void *reply, size_t size)
{
    struct msg *m = aligned_alloc(16, sizeof *m);
    memset(m, 0, sizeof *m);
    m->len = msg_size(2);
    m->op = op;
    m->data[0] = a;
    m->data[1] = b;
    ssize_t r = copool_call(client, m, m->len, reply, size);
    free(m);
    return r;
}

static int run_callers(struct copool_client *client, int ncallers, int ncalls, double seconds,
                       int strategy, const char *prefix)
{
    struct caller cs[MAX_CALLERS];
    struct timespec t0, t1;
    memset(cs, 0, sizeof cs);
    atomic_store(&go, 0);
    for (int i = 0; i < ncallers; i++) {
        cs[i].client = client;
        cs[i].index = i;
        cs[i].ncalls = ncalls;
        cs[i].seconds = seconds;
        pthread_create(&cs[i].thread, NULL, caller_main, &cs[i]);
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    atomic_store(&go, 1);
    uint64_t done = 0, wrong = 0, errors = 0, mismatch = 0, seen_union = 0;
    int affinity_ok = 1;
    for (int i = 0; i < ncallers; i++) {
        pthread_join(cs[i].thread, NULL);
        done += cs[i].done;
        wrong += cs[i].wrong;
        errors += cs[i].errors;
        mismatch += cs[i].member_mismatch;
        if (__builtin_popcountll(cs[i].members_seen) != 1)
            affinity_ok = 0;        /* a thread saw more than one member */
        else if (seen_union & cs[i].members_seen && ncallers <= copool_client_nthreads(client))
            affinity_ok = 0;        /* two threads share a member while one is idle */
        seen_union |= cs[i].members_seen;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("%scalls=%llu\n%swrong=%llu\n%serrors=%llu\n%smember_mismatch=%llu\n",
           prefix, (unsigned long long)done, prefix, (unsigned long long)wrong, prefix,
           (unsigned long long)errors, prefix, (unsigned long long)mismatch);
    printf("%smembers_used=%d\n", prefix, __builtin_popcountll(seen_union));
    if (strategy == COPOOL_AFFINITY)
        printf("%saffinity_ok=%d\n", prefix, affinity_ok);
    printf("%sseconds=%.6f\n%scalls_per_s=%.1f\n", prefix, secs, prefix, secs > 0 ? done / secs : 0.0);
    return wrong == 0 && errors == 0 ? 0 : 1;
}

static void print_report(struct copool_client *client, int ncallers, int ncalls, const char *prefix)
{
    struct report *r = aligned_alloc(16, sizeof *r);
    memset(r, 0, sizeof *r);
    ssize_t n = control(client, OP_REPORT, (uint64_t)ncallers, (uint64_t)ncalls, r, sizeof *r);
    if (n != (ssize_t)sizeof *r || r->op != -OP_REPORT) {
        printf("%sreport=failed\n", prefix);
        free(r);
        return;
    }
    printf("%sserved=%llu\n%sonce=%llu\n%smissing=%llu\n%sduplicated=%llu\n%sbad=%llu\n", prefix,
           (unsigned long long)r->total, prefix, (unsigned long long)r->once, prefix,
           (unsigned long long)r->missing, prefix, (unsigned long long)r->duplicated, prefix,
           (unsigned long long)r->bad);
    printf("%sper_member=", prefix);
    for (int i = 0; i < r->nthreads; i++)
        printf("%s%llu", i ? "," : "", (unsigned long long)r->per_member[i]);
    printf("\n");
    free(r);
}

static void alloc_hits(void)
{
    hits = calloc((size_t)MAX_CALLERS * MAX_SEQ, sizeof *hits);
    if (hits == NULL) {
        perror("calloc");
        exit(1);
    }
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 4 && strcmp(argv[1], "serve") == 0) {
        alloc_hits();
        pool_threads = atoi(argv[3]);
        int flags = argc > 4 && strcmp(argv[4], "slow") == 0 ? COPOOL_SLOW : 0;
        struct copool *pool;
        if (copool_create(&pool, argv[2], pool_threads, BUFSIZE, handler, NULL, flags) != 0) {
            perror("copool_create");
            return 1;
        }
        printf("pid=%d\nnthreads=%d\nready\n", getpid(), copool_nthreads(pool));
        for (;;)
            pause();
    }
    if (argc >= 6 && (strcmp(argv[1], "call") == 0 || strcmp(argv[1], "bench") == 0)) {
        int bench = strcmp(argv[1], "bench") == 0;
        int strategy = parse_strategy(argv[3]);
        int ncallers = atoi(argv[4]);
        int flags = argc > 6 && strcmp(argv[6], "slow") == 0 ? COPOOL_SLOW : 0;
        if (ncallers < 1 || ncallers > MAX_CALLERS)
            return 2;
        struct copool_client *client;
        if (copool_open(&client, lookup(argv[2]), strategy, flags) != 0) {
            perror("copool_open");
            return 1;
        }
        printf("members=%d\n", copool_client_nthreads(client));
        struct msg *ack = aligned_alloc(16, sizeof *ack);
        if (control(client, OP_RESET, 0, 0, ack, sizeof *ack) < 0) {
            perror("reset");
            return 1;
        }
        int rc;
        if (bench) {
            rc = run_callers(client, ncallers, 0, atof(argv[5]), strategy, "");
        } else {
            int ncalls = atoi(argv[5]);
            if (ncalls < 1 || ncalls > MAX_SEQ)
                return 2;
            rc = run_callers(client, ncallers, ncalls, 0, strategy, "");
            print_report(client, ncallers, ncalls, "");
        }
        copool_close(client);
        return rc;
    }
    if (argc >= 3 && strcmp(argv[1], "selftest") == 0) {
        alloc_hits();
        pool_threads = atoi(argv[2]);
        struct copool *pool;
        if (copool_create(&pool, NULL, pool_threads, BUFSIZE, handler, NULL, 0) != 0) {
            perror("copool_create");
            return 1;
        }
        void *targets[COPOOL_MAX_THREADS];
        int n = copool_members(pool, targets, COPOOL_MAX_THREADS);
        printf("nthreads=%d\n", n);
        int distinct = 1;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < i; j++)
                if (targets[i] == targets[j] || targets[i] == NULL)
                    distinct = 0;
        printf("distinct_targets=%d\npublished_is_member0=%d\n", distinct, copool_target(pool) == targets[0]);
        struct copool_client *viaopen, *viamembers;
        if (copool_open(&viaopen, copool_target(pool), COPOOL_ROUNDROBIN, 0) != 0 ||
            copool_open_members(&viamembers, targets, n, COPOOL_FIRSTFREE, 0) != 0) {
            perror("copool_open");
            return 1;
        }
        printf("discovered=%d\n", copool_client_nthreads(viaopen));
        int rc = run_callers(viaopen, 2, 500, 0, COPOOL_ROUNDROBIN, "rr.");
        print_report(viaopen, 2, 500, "rr.");
        struct msg *ack = aligned_alloc(16, sizeof *ack);
        control(viamembers, OP_RESET, 0, 0, ack, sizeof *ack);
        rc |= run_callers(viamembers, 3, 300, 0, COPOOL_FIRSTFREE, "ff.");
        print_report(viamembers, 3, 300, "ff.");
        printf("destroy=%d\n", copool_destroy(pool));
        ssize_t r = control(viaopen, OP_REPORT, 0, 0, ack, sizeof *ack);
        printf("after_destroy=%zd errno=%s\n", r, r < 0 ? strerrorname_np(errno) : "0");
        copool_close(viaopen);
        copool_close(viamembers);
        return rc;
    }
    if (argc >= 3 && strcmp(argv[1], "plain") == 0) {
        struct copool_client *client;
        if (copool_open(&client, lookup(argv[2]), COPOOL_ROUNDROBIN, 0) != 0) {
            perror("copool_open");
            return 1;
        }
        printf("members=%d\n", copool_client_nthreads(client));
        uint64_t out[4] = { 32, 0, 42, 43 }, in[4] = { 0 };
        ssize_t r = copool_call(client, out, sizeof out, in, sizeof in);
        printf("received=%zd echo=%d lastmember=%d\n", r, r == 32 && in[2] == 42 && in[3] == 43, copool_lastmember());
        return 0;
    }
    fprintf(stderr, "usage: copool_guest serve NAME NTHREADS [slow] | call NAME STRATEGY NCALLERS NCALLS [slow] |\n"
                    "       bench NAME STRATEGY NCALLERS SECONDS [slow] | selftest NTHREADS | plain NAME\n");
    return 2;
}
