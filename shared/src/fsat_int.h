/* Private to fsat.c and its unit test: the component walk that stands in for openat2 on
 * kernels without it, exposed so that the test runs every confinement case through both. */
#ifndef DROVER_FSAT_INT_H
#define DROVER_FSAT_INT_H

#include <sys/types.h>

/* Opens rel (already checked: relative, no "..") beneath dirfd one component at a time with
 * O_NOFOLLOW; a symlink anywhere fails with ELOOP. Returns the fd or -1 with errno set. */
int fsat_open_walk(int dirfd, const char *rel, int flags, mode_t mode);

#endif
