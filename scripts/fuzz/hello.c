/* hello.c - the seed program of scripts/fuzz: prints a line from .data, fails if its .bss is not zero. */
#include <stdio.h>

char greeting[] = "hello, world";
static char bss[1 << 16];

int main(void)
{
    for (unsigned i = 0; i < sizeof bss; i++)
        if (bss[i] != 0)
            return 3;
    puts(greeting);
    return 0;
}
