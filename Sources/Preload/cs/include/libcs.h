/* libcs: system calls performed by cs(1) (see cs.c). */
#ifndef LIBCS_H
#define LIBCS_H
#endif
