/* scb_forge: a guest that writes pointers of its choosing into its own SCB's `caller` field
 * (shared memory the runtime reads) and asks cogetpid, which reads it.  Prints, per forged
 * value, cogetpid's result (OK or the errno's name), then calls once more and exits 0. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <asm/prctl.h>
#include <colo.h>
#include <colo_abi.h>

static const char *result(int r) { return r == 0 ? "OK" : errno == ESRCH ? "ESRCH" : strerror(errno); }

int main(void)
{
    if (cosetup(COSETUP_COACCEPT) != 0) { printf("cosetup=%s\n", strerror(errno)); return 1; }
    unsigned long gs = 0;
    syscall(SYS_arch_prctl, ARCH_GET_GS, &gs);
    printf("scb=%s\n", gs ? "found" : "none");
    if (!gs) return 0;
    struct colo_scb *me = (struct colo_scb *)gs;
    pid_t pid = 0;
    printf("control=%s\n", result(cogetpid(&pid)));     /* serving nobody: ESRCH */
    const struct { const char *name; uint64_t value; } forged[] = {
        { "noncanonical", 0xdead000000000000ULL },
        { "low", 0x1000 },
        { "misaligned", COLO_SCB_AREA_ADDR + 8 },
        { "log", COLO_SWITCH_LOG_ADDR },
        { "outside", COLO_SCB_AREA_ADDR - COLO_SCB_SIZE },
    };
    for (unsigned i = 0; i < sizeof forged / sizeof forged[0]; i++) {
        __atomic_store_n((uint64_t *)&me->caller, forged[i].value, __ATOMIC_SEQ_CST);
        printf("%s=%s\n", forged[i].name, result(cogetpid(&pid)));
    }
    me->caller = 0;
    printf("after=%s\n", result(cogetpid(&pid)));
    fflush(stdout);
    return 0;
}
