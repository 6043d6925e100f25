/* internal.h - what the guest-side files of Sources/Switcher share. */
#ifndef COLO_SWITCHER_INTERNAL_H
#define COLO_SWITCHER_INTERNAL_H

#include <ucontext.h>
#include "switcher.h"

/* The kernel's struct sigaction for rt_sigaction(2). */
struct kernel_sigaction { uint64_t handler, flags, restorer, mask; };

/* Close every descriptor marked close-on-exec.  0 or -errno. */
long colo_close_cloexec_fds(void);

/* Dispositions as execve leaves them: handled signals back to default,
 * ignored ones kept; the shadowed SIGSYS record of slot `s` too, if given. */
void colo_reset_signals_for_exec(struct colo_slot *s);

/* execve (at = 0) or execveat (at = 1) trapped in slot `s`. */
long colo_do_execve(struct colo_slot *s, ucontext_t *uc, int at);

/* coexecve(pid, path, argv, envp) or coexecvec(..., capv, capc) trapped in slot `s`. */
long colo_do_coexecve(struct colo_slot *s, ucontext_t *uc, int vec);

/* vfork or clone(CLONE_VFORK) trapped in slot `s`; the parent returns only
 * through a resumed context, never to the caller. */
long colo_do_vfork(struct colo_slot *s, ucontext_t *uc, int nr);

#endif
