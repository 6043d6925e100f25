/* userland_bind.c - a client of binds(1) through libbinds (LD_PRELOAD): bind
 * TCP sockets on 127.0.0.1 to each port given, and a unix socket to a path
 * ("unix:PATH"); print bind_X=OK or the error, and getsockname's port. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "unix:", 5) == 0) {
            int s = socket(AF_UNIX, SOCK_STREAM, 0);
            struct sockaddr_un sun = { .sun_family = AF_UNIX };
            strncpy(sun.sun_path, argv[i] + 5, sizeof sun.sun_path - 1);
            int r = bind(s, (struct sockaddr *)&sun, sizeof sun);
            printf("bind_unix=%s\n", r == 0 ? "OK" : strerror(errno));
            close(s);
            continue;
        }
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[i])) };
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        errno = 0;
        int r = bind(s, (struct sockaddr *)&sin, sizeof sin);
        printf("bind_%s=%s\n", argv[i], r == 0 ? "OK" : strerror(errno));
        if (r == 0) {
            struct sockaddr_in got;
            socklen_t len = sizeof got;
            getsockname(s, (struct sockaddr *)&got, &len);
            printf("bound_%s=%d\n", argv[i], ntohs(got.sin_port));
        }
        close(s);
    }
    return 0;
}
