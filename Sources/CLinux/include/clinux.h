/* CLinux: Linux's interface as its C headers define it (numbers, flags, layouts), for Swift. */
#ifndef CLINUX_H
#define CLINUX_H
#include <sys/syscall.h>
#include <linux/seccomp.h>
#include <linux/prctl.h>

/* Flags whose glibc definitions need _GNU_SOURCE, which the Swift Glibc module is not built
 * with (a header defining it here would give this module struct layouts that differ from
 * Glibc's): clinux.c takes their values from <fcntl.h>. */
extern const int clinux_at_fdcwd;
extern const int clinux_at_empty_path;
extern const int clinux_at_symlink_nofollow;
#endif
