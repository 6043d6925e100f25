/* colo_recolo.h - re-colocation of a fork()ed child that execs.
 *
 * A forked child C of a colocated process P has a private copy of the mm.  When
 * C execs with opportunistic colocation on, its program goes back into P's
 * address space with C's PID: the runtime loads the program into a fresh slot
 * and takes copies of C's descriptors; C exits; a helper thread of P (the
 * "re-colocation helper", started by P's first fork) reaps C and recreates the
 * PID with clone3(set_tid) in the shared mm.  The new process N sets itself up
 * as C was (descriptors, cwd, umask, rlimits, process group, credentials,
 * signals) and enters the program.  P's wait calls are served by the SIGSYS
 * handler, which never reports C's intermediate exit; the helper keeps
 * SIGCHLD from being delivered for it.  A pidfd P opened on C names C's
 * struct pid, not N's: the helper records both (pidfs inodes), and P's
 * waitid(P_PIDFD) on such a pidfd first makes the descriptor name N.  The
 * helper holds copies of C's close-on-exec descriptors until N exists: when
 * P sees them closed (the exec done), the PID names N.
 *
 * Layout shared by the runtime and the guest-side code, in the slot header. */
#ifndef COLO_RECOLO_H
#define COLO_RECOLO_H

#include <stdint.h>
#include "colo_abi.h"

/* COLO_SYS_exec phases (args[0]) and the plan's answer for a forked child. */
#define COLO_EXEC_RECOLOCATE      16   /* PLAN answer: re-colocate into the parent's address space */
#define COLO_EXEC_RECOLO_COMMIT   16   /* C: args[1] = signal mask, args[2] = int32_t fds[] it keeps,
                                          args[3] = their count or -1; 0: exit now, <0: real execve */
#define COLO_EXEC_RECOLO_PARKED   17   /* helper: args[1] = pid; SIGCHLD is parked, let C exit */
#define COLO_EXEC_RECOLO_START    18   /* N: args[1] = slot; install C's descriptors, answer the cwd fd */
#define COLO_EXEC_RECOLO_FAILED   19   /* helper: args[1] = pid, args[2] = -errno of clone3 */

/* Offsets in a slot header (below the start-up stack, above struct colo_slot). */
#define COLO_RECOLO_OFFSET        0x8000ULL    /* struct colo_recolo_area (the parent's side) */
#define COLO_RECOLO_START_OFFSET  0x8800ULL    /* struct colo_recolo_start (the new process's side) */
#define COLO_RECOLO_STACK_TOP     0x10000ULL   /* the helper thread's stack: [0x9000, 0x10000) */
#define COLO_RECOLO_REQUESTS      16
#define COLO_RECOLO_PIDFDS        32   /* hand-overs remembered for pidfds naming the old child */

enum colo_recolo_state {
    COLO_RQ_FREE = 0,
    COLO_RQ_REQUESTED = 1,     /* posted by the runtime, before C may exit */
    COLO_RQ_PARKED = 2,        /* the helper parked SIGCHLD and let C exit */
};

enum colo_helper_state { COLO_HELPER_NONE = 0, COLO_HELPER_RUNNING = 1, COLO_HELPER_QUIT = 2, COLO_HELPER_STARTING = 3 };

struct colo_recolo_request {
    int32_t  pid;                 /* the forked child being replaced */
    int32_t  slot;                /* the slot its new program was loaded into */
    uint32_t state;               /* enum colo_recolo_state (atomic) */
    uint32_t reaped;              /* futex: the parent's own wait reaped C's exit */
};

/* A hand-over as pidfds see it: a pidfd opened on C names C's struct pid,
 * which the hand-over ends; N's is another.  pidfs (Linux 6.9+) gives each
 * struct pid an inode number of its own (fstat of a pidfd). */
struct colo_recolo_pidfd {
    uint64_t old_ino;             /* C's pidfs inode; 0: entry being written (atomic) */
    uint64_t new_ino;             /* N's, 0 until N exists (atomic) */
    int32_t  pid;
    int32_t  pad;
};

/* In the parent's slot header. */
struct colo_recolo_area {
    uint32_t helper_state;        /* enum colo_helper_state */
    int32_t  helper_tid;          /* futex: set and cleared by the kernel (CHILD_SETTID/CLEARTID) */
    int32_t  helper_tgid;         /* the process the helper belongs to */
    uint32_t seq;                 /* futex: bumped for each request and to quit */
    uint32_t in_flight;           /* futex: requests not finished */
    uint32_t swaps;               /* statistics: re-colocations done */
    struct colo_recolo_request req[COLO_RECOLO_REQUESTS];
    /* The last hand-overs, written by the helper only (a ring); kept when the
     * helper stops, so the parent's program after exec in place still finds them. */
    uint32_t pidfd_next;          /* hand-overs recorded (the next entry, modulo the size) */
    uint32_t pidfd_pad;
    struct colo_recolo_pidfd pidfds[COLO_RECOLO_PIDFDS];
};

#define COLO_RECOLO_MAGIC 0x4f4c4f434f434552ULL   /* "RECOCOLO" */
#define COLO_RECOLO_MAX_GROUPS 64

/* In the new slot's header: what N restores before entering its program. */
struct colo_recolo_start {
    uint64_t magic;
    int32_t  pid;
    uint32_t umask;
    uint32_t uid[3], gid[3];      /* real, effective, saved */
    int32_t  ngroups;             /* supplementary groups, -1: keep */
    uint32_t groups[COLO_RECOLO_MAX_GROUPS];
    int32_t  pgid, sid;           /* C's process group and session */
    int32_t  foreground;          /* C's group was the terminal's foreground group */
    int32_t  pad;
    uint64_t ignored;             /* bit sig-1: SIG_IGN */
    uint64_t mask;                /* the signal mask */
    uint64_t rlim[16][2];         /* cur, max */
    int32_t  error, step;         /* a set-up step that failed (N exits 127) */
};

/* For the runtime: is the helper of process `tgid` running in `slot`'s header? */
int colo_recolo_helper_alive(struct colo_slot *slot, int32_t tgid);
/* For the runtime: post a request for child `pid` whose program is in slot
 * `newslot`; wakes the helper.  0, or -EAGAIN when no entry is free. */
int colo_recolo_post(struct colo_slot *slot, int32_t pid, int32_t newslot);

#endif
