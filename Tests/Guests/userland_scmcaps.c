/* userland_scmcaps.c - SCM_CAPS through colo_sendmsg/colo_recvmsg (<capv.h>):
 * capabilities, a descriptor and data in one message over a socketpair, and
 * a capability-only message without data.  Prints key=value lines. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <colo.h>
#include <capv.h>

int main(void)
{
    int sv[2], p[2];
    void *target = (void *)0xa000000000001234ULL;      /* not a capability here */
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0 || pipe(p) != 0)
        return 1;
    if (coregister(NULL, &target) == 0)
        printf("colocated=1\n");

    /* data + SCM_RIGHTS + SCM_CAPS {target, NULL} */
    union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int)) + CMSG_SPACE(2 * sizeof(void *))]; } cs;
    memset(&cs, 0, sizeof cs);
    char data[] = "hello";
    struct iovec iov = { data, sizeof data };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cs.b, .msg_controllen = sizeof cs.b };
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET; c->cmsg_type = SCM_RIGHTS; c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &p[1], sizeof(int));
    c = CMSG_NXTHDR(&m, c);
    void *caps[2] = { target, NULL };
    c->cmsg_level = SOL_SOCKET; c->cmsg_type = SCM_CAPS; c->cmsg_len = CMSG_LEN(sizeof caps);
    memcpy(CMSG_DATA(c), caps, sizeof caps);
    printf("send=%zd\n", colo_sendmsg(sv[0], &m, 0));

    union { struct cmsghdr h; char b[256]; } cr;
    char got[16] = { 0 };
    struct iovec riov = { got, sizeof got };
    struct msghdr r = { .msg_iov = &riov, .msg_iovlen = 1, .msg_control = cr.b, .msg_controllen = sizeof cr.b };
    ssize_t n = colo_recvmsg(sv[1], &r, 0);
    if (n < 0) {
        printf("recv=%s\n", errno == EPROT ? "EPROT" : strerror(errno));
        return 0;
    }
    printf("recv=%zd data=%s\n", n, got);
    for (c = CMSG_FIRSTHDR(&r); c != NULL; c = CMSG_NXTHDR(&r, c)) {
        if (c->cmsg_type == SCM_RIGHTS) {
            int fd;
            memcpy(&fd, CMSG_DATA(c), sizeof fd);
            printf("rights=%zu\n", (c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            write(fd, "x", 1);
            char x = 0;
            printf("fd_works=%d\n", read(p[0], &x, 1) == 1 && x == 'x');
        } else if (c->cmsg_type == SCM_CAPS) {
            void *in[2];
            memcpy(in, CMSG_DATA(c), sizeof in);
            printf("caps=%zu same=%d null=%d\n", (c->cmsg_len - CMSG_LEN(0)) / sizeof(void *), in[0] == target, in[1] == NULL);
        }
    }

    /* capabilities only, no data: the receiver sees 0 bytes */
    memset(&cs, 0, sizeof cs);
    struct msghdr m2 = { .msg_control = cs.b, .msg_controllen = CMSG_SPACE(sizeof(void *)) };
    c = CMSG_FIRSTHDR(&m2);
    c->cmsg_level = SOL_SOCKET; c->cmsg_type = SCM_CAPS; c->cmsg_len = CMSG_LEN(sizeof(void *));
    memcpy(CMSG_DATA(c), &target, sizeof target);
    printf("send_empty=%zd\n", colo_sendmsg(sv[0], &m2, 0));
    struct msghdr r2 = { .msg_control = cr.b, .msg_controllen = sizeof cr.b };
    n = colo_recvmsg(sv[1], &r2, MSG_WAITALL);
    c = CMSG_FIRSTHDR(&r2);
    printf("recv_empty=%zd type=%d\n", n, c ? c->cmsg_type : -1);
    return 0;
}
