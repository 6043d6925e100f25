/* idle.c - benchmark guest: touch a little heap, say "ready", then sleep until killed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
    char *p = malloc(64 << 10);
    memset(p, 1, 64 << 10);
    printf("ready\n");
    fflush(stdout);
    for (;;) pause();
}
