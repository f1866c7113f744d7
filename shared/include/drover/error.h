/* The one error convention of Drover: a closed enum returned by every function that can fail,
 * plus an optional context that carries a human message and errno, wrapped on the way up
 * ("pull alpine:3.19: layer sha256:...: entry ../x escapes the root"). */
#ifndef DROVER_ERROR_H
#define DROVER_ERROR_H

#include <stdarg.h>
#include <stddef.h>

#define DRV_NODISCARD __attribute__((warn_unused_result))
#define DRV_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define DRV_API __attribute__((visibility("default")))

typedef enum {
    DRV_OK = 0,
    DRV_ERR_INVALID,     /* bad input: a manifest, a message, an argument */
    DRV_ERR_NOMEM,       /* allocation failed */
    DRV_ERR_IO,          /* a system call on a file, socket or process failed */
    DRV_ERR_PROTO,       /* a peer spoke the protocol wrongly */
    DRV_ERR_NOTFOUND,    /* the thing asked for does not exist */
    DRV_ERR_EXISTS,      /* the thing to create exists already */
    DRV_ERR_RANGE,       /* a number or size beyond its limit */
    DRV_ERR_TOOBIG,      /* a buffer, file or body over its hard maximum */
    DRV_ERR_PERM,        /* not allowed */
    DRV_ERR_CONFLICT,    /* a stale version or a clash with current state */
    DRV_ERR_UNSUPPORTED, /* valid in Kubernetes, not supported by Drover */
    DRV_ERR_AGAIN,       /* temporary: retry later */
    DRV_ERR_TIMEOUT,     /* a deadline passed */
    DRV_ERR_INTEGRITY,   /* a digest or signature did not match */
    DRV_ERR__COUNT
} drv_err_t;

#define DRV_ERROR_MSG_MAX 1024

/* Error context. Zero-initialise (DRV_ERROR_INIT) before use; code DRV_OK means no error. */
typedef struct drv_error {
    drv_err_t code;
    int sys_errno; /* errno at the failure, 0 if none */
    char msg[DRV_ERROR_MSG_MAX];
} drv_error_t;

/* A brace initialiser that clang-format would spread over seven lines. */
/* clang-format off */
#define DRV_ERROR_INIT {DRV_OK, 0, {0}}
/* clang-format on */

/* Short, static, English name of an error code ("invalid input"). Never NULL. */
DRV_API const char *drv_strerror(drv_err_t code);

/* Records an error in err (which may be NULL) and returns code, so that
 *   return drv_error_set(err, DRV_ERR_IO, errno, "open %s", path);
 * both records and propagates. With errnum != 0, ": <strerror(errnum)>" is appended. */
/* checksrc: allow missing-nodiscard: returns the code it records, so that a caller may record
 * an error as a statement as well as return it */
DRV_API drv_err_t drv_error_set(drv_error_t *err, drv_err_t code, int errnum, const char *fmt, ...)
    DRV_PRINTF(4, 5);
/* checksrc: allow missing-nodiscard: returns the code it records, so that a caller may record
 * an error as a statement as well as return it */
DRV_API drv_err_t drv_error_vset(drv_error_t *err, drv_err_t code, int errnum, const char *fmt,
                                 va_list ap) DRV_PRINTF(4, 0);

/* Prefixes the message in err with "<context>: " and returns err->code (DRV_ERR_INVALID
 * if err carried no code). A NULL err is allowed and yields DRV_ERR_INVALID. */
/* checksrc: allow missing-nodiscard: returns the code it records, so that a caller may record
 * an error as a statement as well as return it */
DRV_API drv_err_t drv_error_wrap(drv_error_t *err, const char *fmt, ...) DRV_PRINTF(2, 3);

/* The message, or drv_strerror(code) when no message was recorded. */
DRV_API const char *drv_error_msg(const drv_error_t *err);

DRV_API void drv_error_clear(drv_error_t *err);

/* The error code for a failed system call's errno: the one mapping of Drover (ENOENT and
 * ENOTDIR: DRV_ERR_NOTFOUND, EACCES/EPERM/EROFS: DRV_ERR_PERM, EEXIST: DRV_ERR_EXISTS, ENOMEM:
 * DRV_ERR_NOMEM, ENAMETOOLONG/ENOSPC/EDQUOT: DRV_ERR_TOOBIG, EAGAIN: DRV_ERR_AGAIN, ETIMEDOUT:
 * DRV_ERR_TIMEOUT, anything else DRV_ERR_IO). */
DRV_API DRV_NODISCARD drv_err_t drv_error_from_errno(int errnum);

#endif
