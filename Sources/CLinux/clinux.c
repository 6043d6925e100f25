/* CLinux: the values of the flags clinux.h declares, from glibc's own headers. */
#define _GNU_SOURCE
#include <fcntl.h>
#include "clinux.h"

const int clinux_at_fdcwd = AT_FDCWD;
const int clinux_at_empty_path = AT_EMPTY_PATH;
const int clinux_at_symlink_nofollow = AT_SYMLINK_NOFOLLOW;
