/*
 * overlay/stdio.h - <stdio.h> as FreeBSD programs see it: the C library's
 * header plus asprintf(3) and vasprintf(3), which FreeBSD declares by default
 * and glibc only with _GNU_SOURCE.  (The functions are glibc's own.)
 *
 * Installed in the overlay directory that colo.pc puts first on the include
 * path (see overlay/unistd.h).
 */
#ifndef COLO_OVERLAY_STDIO_H
#define COLO_OVERLAY_STDIO_H

#include_next <stdio.h>

#if defined(__GLIBC__) && !defined(__USE_GNU)
#include <stdarg.h>
#ifdef __cplusplus
extern "C" {
#endif
int asprintf(char **, const char *, ...) __attribute__((__format__(__printf__, 2, 3)));
int vasprintf(char **, const char *, va_list) __attribute__((__format__(__printf__, 2, 0)));
#ifdef __cplusplus
}
#endif
#endif

#endif
