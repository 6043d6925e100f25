/* libbinds: bind(2) and connect(2) served by binds(1) (see binds.c). */
#ifndef LIBBINDS_H
#define LIBBINDS_H
#include <sys/socket.h>
int bind(int s, const struct sockaddr *addr, socklen_t addrlen);
int connect(int s, const struct sockaddr *addr, socklen_t addrlen);
#endif
