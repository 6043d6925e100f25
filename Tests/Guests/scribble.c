/* scribble: a misbehaving guest.  It writes a pattern over every writable mapping of its mm
 * outside its own slot -- the other slots, the shared structures (process table, capability
 * table, SCB area, slot headers, trace ring), the code and data of whatever else is mapped --
 * then prints how much it wrote and exits with status 7.  Memory is written 64 KiB at the
 * start of every MiB (so that a 4 GiB reservation costs 256 MiB at most, not 4 GiB).
 *   scribble            scribble, then exit 7
 *   scribble wait       print "ready", wait for a line on stdin, then scribble and exit 7 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SLOT_BASE 0x100000000000ULL
#define SLOT_SHIFT 36

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "wait") == 0) {
        char line[16];
        printf("ready\n");
        fflush(stdout);
        if (!fgets(line, sizeof line, stdin)) return 1;
    }
    uint64_t self = (uint64_t)(uintptr_t)&main;
    uint64_t own_lo = self >= SLOT_BASE ? SLOT_BASE + (((self - SLOT_BASE) >> SLOT_SHIFT) << SLOT_SHIFT) : 0;
    uint64_t own_hi = own_lo ? own_lo + (1ULL << SLOT_SHIFT) : 0;
    /* Read the whole map first: what is written may include what reading it needs. */
    static char maps[1 << 20];
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return 2;
    size_t n = fread(maps, 1, sizeof maps - 1, f);
    fclose(f);
    maps[n] = 0;
    static uint64_t lo[4096], hi[4096];
    int count = 0;
    for (char *line = maps; line && *line && count < 4096; ) {
        char *next = strchr(line, '\n');
        if (next) *next++ = 0;
        unsigned long long a, b;
        char perms[8];
        if (sscanf(line, "%llx-%llx %7s", &a, &b, perms) == 3 && perms[1] == 'w'
            && !(a >= own_lo && b <= own_hi) && !strstr(line, "[stack]") && !strstr(line, "[v")) {
            lo[count] = a;
            hi[count] = b;
            count++;
        }
        line = next;
    }
    uint64_t written = 0;
    for (int i = 0; i < count; i++)
        for (uint64_t at = lo[i]; at < hi[i]; at += 1 << 20) {
            uint64_t end = at + (64 << 10) < hi[i] ? at + (64 << 10) : hi[i];
            for (volatile uint64_t *p = (uint64_t *)at; (uint64_t)p < end; p++) *p = 0xa5a5a5a5a5a5a5a5ULL;
            written += end - at;
        }
    /* Only system calls from here on, none of them trapped: the handler's own memory may be gone. */
    char msg[64];
    int len = snprintf(msg, sizeof msg, "scribbled %d mappings %llu bytes\n", count, (unsigned long long)written);
    write(1, msg, len);
    _exit(7);
}
