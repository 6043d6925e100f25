/* name_lookup: colookup(2) of the name given as argv[1], exactly as its bytes are; prints
 * found=1 when the name is published, found=0 otherwise. */
#include <stdio.h>
#include <colo.h>

int main(int argc, char **argv)
{
    void *cap = NULL;
    if (argc < 2) return 2;
    printf("found=%d\n", colookup(argv[1], &cap) == 0 && cap != NULL);
    return 0;
}
