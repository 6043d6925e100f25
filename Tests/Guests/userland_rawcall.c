/* userland_rawcall.c - one cocall to capv[INDEX] with capv_t{len, OP}, the
 * reply printed raw: received, len, op and (for 24/40-byte replies) the
 * error and errno fields.  Usage: userland_rawcall INDEX OP */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <colo.h>
#include <capv.h>

int main(int argc, char **argv)
{
    void **capv;
    int capc;
    if (argc < 3)
        return 2;
    int index = atoi(argv[1]);
    capvfetch(&capc, &capv);
    if (index >= capc || capv[index] == NULL) {
        printf("rawcall=no capability\n");
        return 1;
    }
    if (cosetup(COSETUP_COCALL) != 0)
        return 1;
    capv_t out = { .len = sizeof(capv_t), .op = atoi(argv[2]) };
    union { capv_answerback_t ab; capv_clearances_return_t r; } in;
    memset(&in, 0, sizeof in);
    ssize_t received = cocall(capv[index], &out, out.len, &in, sizeof in);
    if (received < 0) {
        printf("rawcall=%s\n", strerror(errno));
        return 1;
    }
    printf("received=%zd len=%zu op=%d error=%d errno=%d\n", received, in.r.len, in.r.op, in.r.error, in.r.errno_);
    if (in.r.op == 0)
        printf("answerback=%s\n", in.ab.answerback);
    return 0;
}
