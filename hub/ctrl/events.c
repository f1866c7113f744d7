/* Event retention: Events are deleted once they are older than a TTL (as the Kubernetes API
 * server's --event-ttl, 1 h by default), so that what devices and controllers record cannot
 * grow the store without bound. */
#include "ctrl/ctrl_int.h"

#include <string.h>

#include "drover/cleanup.h"

/* When the event last happened: lastTimestamp, else eventTime, firstTimestamp, then the
 * object's creation; -1 if none parses. */
static int64_t event_time(const cJSON *ev)
{
    static const char *const keys[] = {"lastTimestamp", "eventTime", "firstTimestamp"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        int64_t t = drv_ctrl_time_parse(drv_json_str(ev, keys[i]));
        if (t >= 0)
            return t;
    }
    return drv_ctrl_time_parse(ctrl_meta(ev, "creationTimestamp"));
}

drv_err_t drv_ctrl_events_expire(drv_hstore_t *s, int64_t now_ms, int64_t ttl_ms, size_t *deleted,
                                 drv_error_t *err)
{
    if (ttl_ms <= 0)
        ttl_ms = DRV_CTRL_EVENT_TTL_MS_DEFAULT;
    _cleanup_cjson_ cJSON *events = NULL;
    drv_err_t r = drv_hstore_list(s, DRV_KIND_EVENT, NULL, NULL, &events, NULL, err);
    if (r != DRV_OK)
        return r;
    size_t n = 0;
    const cJSON *ev;
    cJSON_ArrayForEach(ev, events)
    {
        int64_t t = event_time(ev);
        if (t >= 0 && now_ms - t <= ttl_ms)
            continue;
        drv_error_t e = DRV_ERROR_INIT;
        r = drv_hstore_delete(s, DRV_KIND_EVENT, ctrl_meta(ev, "namespace"), ctrl_meta(ev, "name"),
                              NULL, &e);
        if (r != DRV_OK && r != DRV_ERR_NOTFOUND)
            return drv_error_set(err, r, e.sys_errno, "expire event %s: %s",
                                 ctrl_meta(ev, "name") ? ctrl_meta(ev, "name") : "?",
                                 drv_error_msg(&e));
        n += r == DRV_OK;
    }
    if (deleted)
        *deleted = n;
    return DRV_OK;
}
