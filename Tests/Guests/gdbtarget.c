/* gdbtarget.c - guest for the gdb and perf tests: prints pid=N, then blocks in
 * stop_here(), which main calls through one more named frame.
 *
 *   gdbtarget            block in pause() (a libc call) until killed
 *   gdbtarget spin N     burn CPU in spin_here() for N seconds, then exit 0
 *   gdbtarget count      block in sigsuspend(); on each SIGUSR1 print "alive=N" (N: signals so far)
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t hits;
volatile unsigned long spin_sink;

static void on_usr1(int sig) { (void)sig; hits++; }

__attribute__((noinline)) void stop_here(int count)
{
    if (!count)
        for (;;) pause();
    /* SIGUSR1 only arrives inside sigsuspend, so none is lost while printing. */
    sigset_t usr1, old;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigprocmask(SIG_BLOCK, &usr1, &old);
    for (;;) {
        sigsuspend(&old);
        printf("alive=%d\n", (int)hits);
        fflush(stdout);
    }
}

__attribute__((noinline)) void spin_here(int seconds)
{
    time_t end = time(NULL) + seconds;
    while (time(NULL) < end)
        for (int i = 0; i < 1000000; i++) spin_sink += (unsigned long)i * 2654435761u;
}

__attribute__((noinline)) void middle(int count)
{
    stop_here(count);
    __asm__ volatile("" ::: "memory");   /* not a tail call: keep middle's frame */
}

int main(int argc, char **argv)
{
    signal(SIGUSR1, on_usr1);
    printf("pid=%d\n", (int)getpid());
    fflush(stdout);
    if (argc > 2 && strcmp(argv[1], "spin") == 0) {
        spin_here(atoi(argv[2]));
        return 0;
    }
    middle(argc > 1 && strcmp(argv[1], "count") == 0);
    return 0;
}
