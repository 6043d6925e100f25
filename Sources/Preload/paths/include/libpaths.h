/* libpaths: path lookups refused in capability mode, retried relative to a
 * directory paths(1) hands out (see paths.c). */
#ifndef LIBPATHS_H
#define LIBPATHS_H
#endif
