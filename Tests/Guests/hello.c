/* hello.c - the smallest useful guest: print a line and exit 0. */
#include <stdio.h>

int main(void)
{
    puts("hello");
    return 0;
}
