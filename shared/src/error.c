/* Error codes and error contexts: the one way Drover reports a failure with enough detail for
 * the user to act on it. Messages are bounded by DRV_ERROR_MSG_MAX and always NUL-terminated. */
#include "drover/error.h"
#include "drover/namelist.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* The messages in the enum's order, a name list (drover/namelist.h): no pointer to relocate
 * per code. test_error checks that every code has its own. */
static const char drv_err_names[] = "success\0"                 /* DRV_OK */
                                    "invalid input\0"           /* DRV_ERR_INVALID */
                                    "out of memory\0"           /* DRV_ERR_NOMEM */
                                    "input/output error\0"      /* DRV_ERR_IO */
                                    "protocol error\0"          /* DRV_ERR_PROTO */
                                    "not found\0"               /* DRV_ERR_NOTFOUND */
                                    "already exists\0"          /* DRV_ERR_EXISTS */
                                    "out of range\0"            /* DRV_ERR_RANGE */
                                    "too big\0"                 /* DRV_ERR_TOOBIG */
                                    "permission denied\0"       /* DRV_ERR_PERM */
                                    "conflict\0"                /* DRV_ERR_CONFLICT */
                                    "not supported\0"           /* DRV_ERR_UNSUPPORTED */
                                    "temporarily unavailable\0" /* DRV_ERR_AGAIN */
                                    "timed out\0"               /* DRV_ERR_TIMEOUT */
                                    "integrity check failed\0"; /* DRV_ERR_INTEGRITY */

const char *drv_strerror(drv_err_t code)
{
    const char *name = (int)code < 0 ? NULL : drv_namelist_at(drv_err_names, (size_t)code);
    return name ? name : "unknown error";
}

/* Appends src to the NUL-terminated string in dst (capacity dstsz), cutting it to fit. */
static void append_bounded(char *dst, size_t dstsz, const char *src)
{
    size_t used = strnlen(dst, dstsz);
    if (used + 1 >= dstsz)
        return;
    size_t room = dstsz - used - 1;
    size_t n = strlen(src);
    if (n > room)
        n = room;
    memcpy(dst + used, src, n);
    dst[used + n] = '\0';
}

drv_err_t drv_error_vset(drv_error_t *err, drv_err_t code, int errnum, const char *fmt, va_list ap)
{
    if (err == NULL)
        return code;
    err->code = code;
    err->sys_errno = errnum;
    err->msg[0] = '\0';
    if (fmt != NULL) {
        int n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        if (n < 0)
            err->msg[0] = '\0';
    }
    if (errnum != 0) {
        char ebuf[256];
        /* GNU strerror_r returns a pointer that may or may not be ebuf. */
        const char *etext = strerror_r(errnum, ebuf, sizeof(ebuf));
        if (err->msg[0] != '\0')
            append_bounded(err->msg, sizeof(err->msg), ": ");
        append_bounded(err->msg, sizeof(err->msg), etext ? etext : "unknown errno");
    }
    return code;
}

drv_err_t drv_error_set(drv_error_t *err, drv_err_t code, int errnum, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    drv_err_t rc = drv_error_vset(err, code, errnum, fmt, ap);
    va_end(ap);
    return rc;
}

drv_err_t drv_error_wrap(drv_error_t *err, const char *fmt, ...)
{
    if (err == NULL)
        return DRV_ERR_INVALID;
    if (err->code == DRV_OK)
        err->code = DRV_ERR_INVALID;

    char prefix[DRV_ERROR_MSG_MAX];
    prefix[0] = '\0';
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(prefix, sizeof(prefix), fmt, ap);
        va_end(ap);
        if (n < 0)
            prefix[0] = '\0';
    }
    if (prefix[0] == '\0')
        return err->code;

    /* The old message may be empty (only a code was recorded): keep its meaning visible. */
    char old[DRV_ERROR_MSG_MAX];
    size_t oldlen = strnlen(err->msg, sizeof(err->msg) - 1);
    if (oldlen == 0) {
        const char *name = drv_strerror(err->code);
        oldlen = strnlen(name, sizeof(old) - 1);
        memcpy(old, name, oldlen);
    } else {
        memcpy(old, err->msg, oldlen);
    }
    old[oldlen] = '\0';

    err->msg[0] = '\0';
    append_bounded(err->msg, sizeof(err->msg), prefix);
    append_bounded(err->msg, sizeof(err->msg), ": ");
    append_bounded(err->msg, sizeof(err->msg), old);
    return err->code;
}

const char *drv_error_msg(const drv_error_t *err)
{
    if (err == NULL)
        return drv_strerror(DRV_OK);
    if (err->msg[0] == '\0')
        return drv_strerror(err->code);
    return err->msg;
}

void drv_error_clear(drv_error_t *err)
{
    if (err == NULL)
        return;
    err->code = DRV_OK;
    err->sys_errno = 0;
    err->msg[0] = '\0';
}

drv_err_t drv_error_from_errno(int errnum)
{
    switch (errnum) {
    case ENOENT:
    case ENOTDIR:
        return DRV_ERR_NOTFOUND;
    case EACCES:
    case EPERM:
    case EROFS:
        return DRV_ERR_PERM;
    case EEXIST:
        return DRV_ERR_EXISTS;
    case ENOMEM:
        return DRV_ERR_NOMEM;
    case ENAMETOOLONG:
    case ENOSPC:
    case EDQUOT:
        return DRV_ERR_TOOBIG;
    case EAGAIN:
        return DRV_ERR_AGAIN;
    case ETIMEDOUT:
        return DRV_ERR_TIMEOUT;
    default:
        return DRV_ERR_IO;
    }
}
