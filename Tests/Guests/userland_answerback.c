/* userland_answerback.c - written like a CheriBSD program against <colo.h>
 * and <capv.h>, built with `pkg-config --cflags --libs colo`: ask every
 * entry of the capability vector for its answerback. */
#include <err.h>
#include <errno.h>
#include <stdio.h>
#include <colo.h>
#include <capv.h>

int main(void)
{
    void **capv;
    int capc, error;

    capvfetch(&capc, &capv);
    if (capc <= 0)
        errx(1, "no capability vector");
    error = cosetup(COSETUP_COCALL);
    if (error != 0) {
        errno = error;
        err(1, "cosetup");
    }
    for (int i = 0; i < capc; i++) {
        capv_t out = { .len = sizeof(capv_t), .op = 0 };
        capv_answerback_t in;
        if (capv[i] == NULL)
            continue;
        ssize_t received = cocall(capv[i], &out, out.len, &in, sizeof(in));
        if (received < 0)
            err(1, "cocall");
        printf("%d: %s\n", i, in.answerback);
    }
    return 0;
}
