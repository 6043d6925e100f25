/* A guest for colo trace's tests.
 *   trace_guest steps   getpid, open a missing file, then exec itself in place with "segv"
 *   trace_guest segv    die of SIGSEGV
 *   trace_guest loop N  print pid=, then N times: sleep 50 ms and getppid; exit 0 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    const char *verb = argc > 1 ? argv[1] : "steps";
    if (!strcmp(verb, "steps")) {
        printf("pid=%d\n", getpid());
        fflush(stdout);
        int fd = open("/nonexistent/colo-trace-missing", O_RDONLY);
        printf("open=%d\n", fd);
        fflush(stdout);
        char *args[] = { argv[0], "segv", NULL };
        execv(argv[0], args);
        perror("execv");
        return 1;
    }
    if (!strcmp(verb, "segv")) {
        *(volatile int *)8 = 1;
        return 2;
    }
    if (!strcmp(verb, "loop")) {
        int n = argc > 2 ? atoi(argv[2]) : 40;
        printf("pid=%d\n", getpid());
        fflush(stdout);
        struct timespec ts = { 0, 50 * 1000 * 1000 };
        for (int i = 0; i < n; i++) { nanosleep(&ts, NULL); getppid(); }
        printf("done\n");
        return 0;
    }
    return 3;
}
