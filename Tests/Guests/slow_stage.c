/* slow_stage.c - the slow path's staging area (struct colo_scb's stage): cocall_slow and
 * coaccept_slow through the library copy through the caller's and callee's SCBs instead of
 * between mms; a call made without the library, and buffers that fault, behave as before.
 * One process, a callee thread and the main thread as caller, both attached to the switcher.
 * Prints KEY=VALUE lines (values: OK, an errno name, or a count).
 * Build: cc -I Sources/GuestAPI/include -I Sources/ABI/include slow_stage.c
 *        Sources/GuestAPI/colo.c Sources/GuestAPI/syscall.c -pthread */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <colo.h>

#define BIG 8192

static void *volatile target;
static void *none;                  /* an unmapped page */

static const char *ename(long r)
{
    if (r >= 0) return "OK";
    switch (errno) {
    case EFAULT: return "EFAULT";
    case EPROTO: return "EPROTO";
    case EINVAL: return "EINVAL";
    default: return strerror(errno);
    }
}

/* The callee: every request's bytes + 1, back.  Request 1 of the script (a first word of
 * 0xbad1) is received into an unmapped buffer, request 0xbad2 into one below the untagged
 * limit: both coaccepts fail, and the next coaccept answers that caller. */
static void *callee(void *arg)
{
    (void)arg;
    static uint64_t in[BIG / 8], out[BIG / 8];
    size_t outlen = 0;
    void *t;
    if (cosetup(COSETUP_COACCEPT) != 0 || coregister(NULL, &t) != 0) exit(2);
    target = t;
    for (int bad = 0; ; ) {
        void *buf = in;
        if (bad == 1) buf = none;
        if (bad == 2) buf = (void *)0x1000;
        ssize_t n = coaccept_slow(NULL, out, outlen, buf, sizeof in);
        if (n < 0) {
            printf("coaccept_%s=%s\n", bad == 1 ? "unmapped_inbuf" : bad == 2 ? "untagged_inbuf" : "other", ename(n));
            bad = 0;
            outlen = 8;
            out[0] = 0x600d;            /* the answer for the caller it stays serving */
            continue;
        }
        if (n >= 8 && (in[0] == 0xbad0 || in[0] == 0xbad3)) {   /* the next coaccept: bad buffer */
            bad = in[0] == 0xbad0 ? 1 : 2;
            outlen = 8;
            out[0] = 0x5eed;
            continue;
        }
        for (ssize_t i = 0; i < n; i++) ((uint8_t *)out)[i] = (uint8_t)(((uint8_t *)in)[i] + 1);
        outlen = (size_t)n;
    }
    return NULL;
}

static int echo(size_t size)
{
    static uint8_t out[BIG], in[BIG];
    for (size_t i = 0; i < size; i++) out[i] = (uint8_t)(i * 7 + size);
    memset(in, 0, sizeof in);
    ssize_t n = cocall_slow(target, out, size, in, sizeof in);
    if (n != (ssize_t)size) return 0;
    for (size_t i = 0; i < size; i++) if (in[i] != (uint8_t)(out[i] + 1)) return 0;
    return 1;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    none = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (cosetup(COSETUP_COCALL) != 0) return 2;
    pthread_t t;
    pthread_create(&t, NULL, callee, NULL);
    uint64_t out[2] = { 1, 2 }, in[2] = { 0, 0 };
    while (target == NULL) usleep(1000);
    while (cocall_slow(target, out, 8, in, 8) < 0 && errno == EAGAIN) usleep(1000);
    /* Sizes around the staging area's (2048): staged, and copied between mms. */
    size_t sizes[] = { 8, 1024, 2048, 2056, 4096, 8192 };
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
        printf("echo_%zu=%s\n", sizes[i], echo(sizes[i]) ? "OK" : "wrong");
    /* A call made without the library after one made with it, the same buffers with other
     * bytes: the runtime reads the buffer, not what the earlier call left staged. */
    out[0] = 41;
    long r = cocall_slow(target, out, 8, in, 8);
    out[0] = 99;
    r = colo_syscall(COLO_SYS_cocall_slow, (long)target, (long)out, 8, (long)in, 8, 0);
    printf("raw_after_staged=%s\n", r == 8 && *(uint8_t *)in == 100 ? "OK" : *(uint8_t *)in == 42 ? "stale" : "wrong");
    /* A record the runtime finds is honoured: the bytes in the staging area are the
     * output, not the buffer's (this is what the library relies on); the next call
     * finds none. */
    const struct colo_table_header *h = (const struct colo_table_header *)COLO_TABLE_ADDR;
    struct colo_scb *me = ((struct colo_scb *(*)(void))h->switcher[COLO_SWITCHER_SELF])();
    if (me == NULL) {       /* not attached (COLO_SLOW_PATH): nothing is staged */
        printf("staged_record_used=unattached\n");
        goto faults;
    }
    me->stage_got = -1;
    me->stage_in = 0;
    memset(me->stage, 0, 8);
    me->stage[0] = 7;
    me->stage_outlen = 8;
    me->stage_out = (uint64_t)out;
    out[0] = 99;
    r = colo_syscall(COLO_SYS_cocall_slow, (long)target, (long)out, 8, (long)in, 8, 0);
    printf("staged_record_used=%s\n", r == 8 && *(uint8_t *)in == 8 ? "OK" : "wrong");
    r = colo_syscall(COLO_SYS_cocall_slow, (long)target, (long)out, 8, (long)in, 8, 0);
    printf("staged_record_taken=%s\n", r == 8 && *(uint8_t *)in == 100 ? "OK" : "wrong");
faults:
    /* The caller's input buffer unmapped: EFAULT, nothing lost for the next call. */
    out[0] = 5;
    r = cocall_slow(target, out, 8, none, 8);
    printf("cocall_unmapped_inbuf=%s\n", ename(r));
    printf("after_unmapped_inbuf=%s\n", echo(16) ? "OK" : "wrong");
    /* The callee's input buffer unmapped, then below the untagged limit: its coaccept fails
     * (EFAULT, EPROT) and its next one answers this call. */
    uint64_t bad[2][1] = { { 0xbad0 }, { 0xbad3 } };
    for (int i = 0; i < 2; i++) {
        cocall_slow(target, bad[i], 8, in, 8);              /* answered 0x5eed: the callee arms */
        in[0] = 0;
        r = cocall_slow(target, out, 8, in, 8);
        printf("served_after_bad_inbuf_%d=%s\n", i, r == 8 && in[0] == 0x600d ? "OK" : "wrong");
    }
    printf("done=1\n");
    return 0;
}
