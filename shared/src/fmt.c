/* Truncation-refusing formatting into fixed buffers (see fmt.h). The length is measured
 * first so that a result that does not fit leaves the caller's buffer as it was. */
#include "drover/fmt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

drv_err_t drv_vfmt(char *out, size_t outsz, const char *fmt, va_list ap)
{
    if (out == NULL || outsz == 0 || fmt == NULL)
        return DRV_ERR_INVALID;
    va_list measure;
    va_copy(measure, ap);
    int need = vsnprintf(NULL, 0, fmt, measure);
    va_end(measure);
    if (need < 0)
        return DRV_ERR_INVALID;
    if ((size_t)need >= outsz)
        return DRV_ERR_TOOBIG;
    int n = vsnprintf(out, outsz, fmt, ap);
    if (n != need) {
        /* An argument changed under us (it cannot in correct code): never leave a cut name. */
        out[0] = '\0';
        return DRV_ERR_INVALID;
    }
    return DRV_OK;
}

drv_err_t drv_fmt(char *out, size_t outsz, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    drv_err_t rc = drv_vfmt(out, outsz, fmt, ap);
    va_end(ap);
    return rc;
}

void drv_vfmt_cut(char *out, size_t outsz, const char *fmt, va_list ap)
{
    if (out == NULL || outsz == 0)
        return;
    int n = fmt ? vsnprintf(out, outsz, fmt, ap) : -1;
    if (n < 0) {
        out[0] = '\0';
    } else if ((size_t)n >= outsz && outsz > 4) {
        out[outsz - 4] = '.'; /* cut: say so */
        out[outsz - 3] = '.';
        out[outsz - 2] = '.';
    }
}

void drv_fmt_cut(char *out, size_t outsz, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    drv_vfmt_cut(out, outsz, fmt, ap);
    va_end(ap);
}

drv_err_t drv_fmt_double(char *out, size_t outsz, double d)
{
    if (d == floor(d) && fabs(d) <= 9007199254740992.0)
        return drv_fmt(out, outsz, "%.0f", d);
    drv_err_t rc = DRV_OK;
    for (int prec = 1; prec <= 17; prec++) {
        rc = drv_fmt(out, outsz, "%.*g", prec, d);
        if (rc != DRV_OK || strtod(out, NULL) == d)
            break;
    }
    return rc;
}
