/* Scope-bound cleanup helpers (crun's utils.h idea): a variable declared with one of these is
 * released when it leaves scope; TAKE_PTR / TAKE_FD hand ownership on and disarm the cleanup. */
#ifndef DROVER_CLEANUP_H
#define DROVER_CLEANUP_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <dirent.h>
#include <cjson/cJSON.h>

static inline void drv_freep(void *p)
{
    free(*(void **)p);
}
static inline void drv_closep(int *fd)
{
    if (*fd >= 0)
        close(*fd);
}
static inline void drv_fclosep(FILE **f)
{
    if (*f)
        fclose(*f);
}
static inline void drv_closedirp(DIR **d)
{
    if (*d)
        closedir(*d);
}
static inline void drv_cjson_deletep(cJSON **j)
{
    cJSON_Delete(*j); /* NULL is fine */
}

#define _cleanup_free_ __attribute__((cleanup(drv_freep)))
#define _cleanup_close_ __attribute__((cleanup(drv_closep)))
#define _cleanup_fclose_ __attribute__((cleanup(drv_fclosep)))
#define _cleanup_closedir_ __attribute__((cleanup(drv_closedirp)))
#define _cleanup_cjson_ __attribute__((cleanup(drv_cjson_deletep)))

#define TAKE_PTR(p)                                                                                \
    ({                                                                                             \
        __typeof__(p) drv_tmp_ = (p);                                                              \
        (p) = NULL;                                                                                \
        drv_tmp_;                                                                                  \
    })
#define TAKE_FD(fd)                                                                                \
    ({                                                                                             \
        int drv_tmpfd_ = (fd);                                                                     \
        (fd) = -1;                                                                                 \
        drv_tmpfd_;                                                                                \
    })

#endif
