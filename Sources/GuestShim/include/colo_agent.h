/* colo_agent.h - the in-mm agent: a process of an address space's mm, outside every slot and
 * without a libc, that does for a runtime living in another mm what only a thread of this mm
 * can do (agent.c).  The runtime talks to it over a SOCK_SEQPACKET socket: one request, with
 * descriptors attached as SCM_RIGHTS, then one reply. */
#ifndef COLO_AGENT_H
#define COLO_AGENT_H

#include <stdint.h>
#include "colo_abi.h"

enum colo_agent_op {
    COLO_AGENT_HEADER = 1,  /* map slot `slot`'s header: block `slot` of the file the runtime calls `addr`,
                             * shared */
    COLO_AGENT_APPLY = 2,   /* apply the plan of `len` bytes the runtime wrote into the staging area */
    COLO_AGENT_SPAWN = 3,   /* start the program set up in slot `slot` (colo_spawn with CLONE_PARENT: the
                             * runtime is its parent); its header's stdio entries name the runtime's
                             * descriptors.  Result: its PID */
    COLO_AGENT_UNMAP = 4,   /* munmap(addr, len) inside the slot region */
    COLO_AGENT_RETIRE = 5,  /* colo_scb_retire of the SCB at `addr` (an index's block of the SCB area) */
};

#define COLO_AGENT_MAX_FDS 8
#define COLO_AGENT_MAX_STEPS 8

struct colo_agent_step {
    uint32_t op;            /* enum colo_agent_op */
    int32_t  slot;
    uint64_t addr, len;
};

/* A request: steps carried out in order until one fails.  Descriptors are attached as SCM_RIGHTS,
 * `fds` holding the runtime's numbers of them in the same order: every descriptor a step names
 * (a plan's FILE operations, a header's stdio, HEADER's file) is named by the runtime's number. */
struct colo_agent_request {
    uint32_t nsteps;
    uint32_t nfds;
    int32_t  fds[COLO_AGENT_MAX_FDS];
    struct colo_agent_step steps[COLO_AGENT_MAX_STEPS];
};

struct colo_agent_reply {
    int64_t  result;        /* the last step's result (>= 0), or the failing step's -errno */
    uint32_t failed_step;   /* the step that failed (nsteps: none) */
    uint32_t failed_op;     /* APPLY: the plan operation that failed */
};

/* Where the runtime writes plans for the agent (process_vm_writev), outside the slot region. */
#define COLO_AGENT_STAGING_ADDR 0x0e8000000000ULL   /* 14.5 TiB */
#define COLO_AGENT_STAGING_SIZE (64ULL << 20)
#define COLO_AGENT_STACK_SIZE   (256ULL << 10)

struct colo_agent_start {
    int32_t sock;           /* the agent's end of the socket */
    uint32_t filter_len;    /* the seccomp program to install (colo_filter_program) */
    const struct colo_sock_filter *filter;
    const uint64_t *unmap;  /* [start, end) pairs of the runtime's mappings the agent drops */
    uint32_t nunmap;
    uint32_t rseq_len;      /* the forking thread's rseq registration, which a fork inherits and */
    uint64_t rseq_area;     /* the agent ends before it drops the memory it lies in (0: none) */
    uint32_t rseq_sig;
    uint32_t pad;
};

/* Fork the agent (a new mm, a copy of the caller's, on its own stack in the staging area's
 * reservation): it drops the ranges `st->unmap` names, closes every descriptor but 0, 1, 2 and
 * its socket, installs the address space's seccomp filter and sends its listener over the
 * socket, then serves requests until the socket closes, when it kills every other process of
 * its mm (space_end.c) and exits.  Its PID, or -errno.  `st` must stay valid until the
 * call returns (the child has its own copy). */
int colo_agent_start(const struct colo_agent_start *st);

/* Start the agent of the address space a fork child becomes (space.c), on socket `sock` (its
 * copy: the caller keeps its own): a CLONE_VM process of the caller's mm that inherits its
 * filter (it installs none and sends no listener: its first reply is its PID), keeps only the
 * socket of the caller's descriptors, and starts members as its own children, reaped as they
 * exit (the runtime sees their ends through pidfds).  Its PID, or -errno. */
int colo_agent_start_in(int sock);

#endif
