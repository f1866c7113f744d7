/* checksrc fixture: a public header. Declares what agent/fixture/bad.c may leave non-static. */
#ifndef DROVER_FIXTURE_H
#define DROVER_FIXTURE_H

#include "drover/error.h"

typedef drv_err_t (*drv_fixture_fn)(void *ctx);

DRV_API DRV_NODISCARD drv_err_t drv_fixture_open(const char *path, drv_error_t *err);
DRV_API drv_err_t drv_fixture_close(int fd, drv_error_t *err);
DRV_API drv_err_t drv_fixture_sync(int fd, drv_error_t *err) __attribute__((warn_unused_result));
/* checksrc: allow missing-nodiscard: returns the code it is given, so callers may ignore it */
DRV_API drv_err_t drv_fixture_fail(drv_error_t *err, drv_err_t code);
DRV_API drv_err_t *drv_fixture_last(void);
DRV_API void drv_fixture_shared(int fd);

struct drv_fixture {
    drv_err_t (*start)(void *ctx);
};

#endif
