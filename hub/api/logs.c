/* GET .../pods/NAME/log: a pod's container log, fetched from its node by a provider (the hub's
 * MQTT bridge) and streamed to the client. The request is held (its connection suspended)
 * until the first bytes or an error arrive, so that an agent's "no such container" or
 * silence still becomes a proper HTTP error; after that the log streams as text/plain,
 * suspended while there is nothing new. */
#include "api/api_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/fmt.h"
#include "drover/log.h"

#define LOG_OUT_MAX (8u << 20)      /* bytes held for one slow reader */
#define LOG_TAIL_BYTES (512u << 10) /* asked of the agent when tailLines is given */
#define LOG_STREAMS_MAX 64u
#define LOG_HANGUP_CHECK_MS 1000

struct drv_api_log_sink {
    drv_api_log_sink_t *prev, *next;
    drv_api_t *api;
    drv_api_req_t *rq; /* while waiting for the first bytes */
    struct MHD_Connection *conn;
    drv_buf_t out;
    size_t off;
    uint64_t tail_lines; /* 0: all */
    bool got_data;
    bool queued; /* the 200 response is out: the sink belongs to it */
    bool ended;
    bool provider_done; /* drv_api_log_end was called: no cancel */
    bool suspended;
    unsigned code;
    char error[512];
    char handle[96];
};

void drv_api_set_log_provider(drv_api_t *api, const drv_api_log_provider_t *p)
{
    api->log_provider = *p;
}

static void sink_resume(drv_api_log_sink_t *s)
{
    if (s->suspended) {
        s->suspended = false;
        MHD_resume_connection(s->conn);
    }
}

static void sink_free(drv_api_log_sink_t *s)
{
    drv_api_t *api = s->api;
    if (!s->provider_done && api->log_provider.cancel)
        api->log_provider.cancel(api->log_provider.ctx, s->handle);
    if (s->prev)
        s->prev->next = s->next;
    else
        api->logs = s->next;
    if (s->next)
        s->next->prev = s->prev;
    api->nlogs--;
    drv_buf_free(&s->out);
    free(s);
}

/* Keeps the last n lines of the buffer (a final line without a newline counts). */
static void keep_last_lines(drv_buf_t *b, uint64_t n)
{
    if (b->len == 0 || n == 0)
        return;
    size_t i = b->len;
    if (b->data[i - 1] == '\n')
        i--;
    uint64_t seen = 0;
    while (i > 0) {
        if (b->data[i - 1] == '\n' && ++seen == n)
            break;
        i--;
    }
    if (i > 0) {
        memmove(b->data, b->data + i, b->len - i);
        drv_buf_truncate(b, b->len - i);
    }
}

void drv_api_log_write(drv_api_log_sink_t *s, const void *data, size_t len)
{
    if (s->ended || len == 0)
        return;
    if (drv_buf_append(&s->out, data, len) != DRV_OK) {
        /* The reader does not keep up: end the stream rather than hold more. */
        static const char note[] = "\n[drover: log stream ended: the reader fell behind]\n";
        (void)!drv_buf_append(&s->out, note, sizeof(note) - 1);
        s->ended = true;
        if (!s->provider_done && s->api->log_provider.cancel)
            s->api->log_provider.cancel(s->api->log_provider.ctx, s->handle);
        s->provider_done = true;
    }
    if (!s->got_data && s->tail_lines)
        keep_last_lines(&s->out, s->tail_lines); /* the first chunk holds the tail */
    s->got_data = true;
    sink_resume(s);
}

void drv_api_log_end(drv_api_log_sink_t *s, unsigned code, const char *error)
{
    s->provider_done = true;
    if (s->ended)
        return;
    s->ended = true;
    if (error && !s->got_data) {
        s->code = code ? code : 500;
        drv_fmt_cut(s->error, sizeof(s->error), "%s", error);
    }
    sink_resume(s);
}

static ssize_t log_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    drv_api_log_sink_t *s = cls;
    if (s->off >= s->out.len) {
        drv_buf_reset(&s->out);
        s->off = 0;
        if (s->ended || s->api->stopping)
            return MHD_CONTENT_READER_END_OF_STREAM;
        s->suspended = true;
        MHD_suspend_connection(s->conn);
        return 0;
    }
    size_t n = s->out.len - s->off;
    if (n > max)
        n = max;
    memcpy(buf, s->out.data + s->off, n);
    s->off += n;
    return (ssize_t)n;
}

static void log_response_free(void *cls)
{
    sink_free(cls);
}

static bool container_named(const cJSON *pod, const char *name)
{
    static const char *const lists[] = {"containers", "initContainers"};
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(pod, "spec");
    for (size_t l = 0; l < 2; l++) {
        const cJSON *c;
        cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(spec, lists[l]))
        {
            const cJSON *n = cJSON_GetObjectItemCaseSensitive(c, "name");
            if (cJSON_IsString(n) && !strcmp(n->valuestring, name))
                return true;
        }
    }
    return false;
}

enum MHD_Result drv_api_log_start(drv_api_req_t *rq, const drv_api_match_t *m)
{
    drv_api_t *api = rq->api;
    cJSON *pod = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t e = drv_hstore_get(api->store, DRV_KIND_POD, m->ns, m->name, &pod, &err);
    if (e != DRV_OK) {
        char msg[600];
        drv_fmt_cut(msg, sizeof(msg), "pods \"%s\" not found", m->name);
        return drv_api_reply_error(rq, e, e == DRV_ERR_NOTFOUND ? msg : drv_error_msg(&err));
    }
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(pod, "spec");
    const cJSON *node = cJSON_GetObjectItemCaseSensitive(spec, "nodeName");
    const char *container =
        MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, "container");
    const char *tail = MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, "tailLines");
    const char *follow = MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, "follow");
    char msg[768], cname[64] = "";
    enum MHD_Result r;
    if (!cJSON_IsString(node) || !node->valuestring[0]) {
        drv_fmt_cut(msg, sizeof(msg), "pod \"%s\" is not scheduled to a node yet: no log", m->name);
        r = drv_api_reply_status(rq, 400, "BadRequest", msg, NULL);
        goto out;
    }
    if (container && *container) {
        if (!container_named(pod, container)) {
            drv_fmt_cut(msg, sizeof(msg), "container \"%.63s\" is not valid for pod \"%s\"",
                        container, m->name);
            r = drv_api_reply_status(rq, 400, "BadRequest", msg, NULL);
            goto out;
        }
        if (drv_fmt(cname, sizeof(cname), "%s", container) != DRV_OK) {
            r = drv_api_reply_status(rq, 400, "BadRequest", "container: name too long", NULL);
            goto out;
        }
    } else {
        const cJSON *cs = cJSON_GetObjectItemCaseSensitive(spec, "containers");
        if (cJSON_GetArraySize(cs) != 1) {
            int l = snprintf(
                msg, sizeof(msg),
                "a container name must be specified for pod \"%s\", choose one of:", m->name);
            const cJSON *c;
            cJSON_ArrayForEach(c, cs)
            {
                const cJSON *n = cJSON_GetObjectItemCaseSensitive(c, "name");
                if (l > 0 && (size_t)l < sizeof(msg) && cJSON_IsString(n))
                    l += snprintf(msg + l, sizeof(msg) - (size_t)l, " %s", n->valuestring);
            }
            r = drv_api_reply_status(rq, 400, "BadRequest", msg, NULL);
            goto out;
        }
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(cs->child, "name");
        if (drv_fmt(cname, sizeof(cname), "%s", cJSON_IsString(n) ? n->valuestring : "") !=
            DRV_OK) {
            r = drv_api_reply_status(rq, 400, "BadRequest", "container: name too long", NULL);
            goto out;
        }
    }
    uint64_t tail_lines = 0;
    if (tail && *tail) {
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(tail, &end, 10);
        if (errno || *end || *tail == '-' || v > 1000000) {
            r = drv_api_reply_status(rq, 400, "BadRequest",
                                     "tailLines: must be a whole number from 0 to 1000000", NULL);
            goto out;
        }
        tail_lines = v;
    }
    bool want_follow = follow && (!strcmp(follow, "true") || !strcmp(follow, "1"));
    if (!api->log_provider.start) {
        r = drv_api_reply_status(rq, 503, NULL, "logs need the hub's MQTT connection to agents",
                                 NULL);
        goto out;
    }
    if (api->nlogs >= LOG_STREAMS_MAX) {
        r = drv_api_reply_status(rq, 429, NULL, "too many log streams open; retry later", NULL);
        goto out;
    }
    drv_api_log_sink_t *s = calloc(1, sizeof(*s));
    if (!s) {
        r = MHD_NO;
        goto out;
    }
    s->api = api;
    s->rq = rq;
    s->conn = rq->conn;
    s->tail_lines = tail_lines;
    drv_buf_init(&s->out, LOG_OUT_MAX);
    s->next = api->logs;
    if (api->logs)
        api->logs->prev = s;
    api->logs = s;
    api->nlogs++;
    e = api->log_provider.start(api->log_provider.ctx, node->valuestring, m->ns, m->name, cname,
                                tail_lines ? LOG_TAIL_BYTES : LOG_OUT_MAX, want_follow, s,
                                s->handle, sizeof(s->handle), &err);
    if (e != DRV_OK) {
        s->provider_done = true;
        sink_free(s);
        r = drv_api_reply_error(rq, e, drv_error_msg(&err));
        goto out;
    }
    rq->log = s;
    s->suspended = true;
    MHD_suspend_connection(rq->conn);
    r = MHD_YES;
out:
    cJSON_Delete(pod);
    return r;
}

enum MHD_Result drv_api_log_continue(drv_api_req_t *rq)
{
    drv_api_log_sink_t *s = rq->log;
    if (s->ended && !s->got_data && s->error[0]) {
        rq->log = NULL;
        unsigned code = s->code;
        char msg[sizeof(s->error)];
        drv_fmt_cut(msg, sizeof(msg), "%s", s->error);
        sink_free(s);
        const char *reason = code == 504   ? "Timeout"
                             : code == 404 ? "NotFound"
                             : code == 400 ? "BadRequest"
                                           : NULL;
        return drv_api_reply_status(rq, code, reason, msg, NULL);
    }
    if (!s->ended && !s->got_data && !rq->api->stopping) {
        s->suspended = true; /* woken for nothing (a hang-up check): wait on */
        MHD_suspend_connection(rq->conn);
        return MHD_YES;
    }
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32 * 1024,
                                                                  log_read, s, log_response_free);
    if (!resp)
        return MHD_NO; /* on_completed frees s */
    rq->log = NULL;
    s->rq = NULL;
    s->queued = true;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    return drv_api_queue(rq, 200, resp);
}

void drv_api_log_abandon(drv_api_req_t *rq)
{
    if (rq->log) {
        drv_api_log_sink_t *s = rq->log;
        rq->log = NULL;
        sink_free(s);
    }
}

void drv_api_log_tick(drv_api_t *api)
{
    for (drv_api_log_sink_t *s = api->logs; s; s = s->next) {
        if (!s->suspended)
            continue;
        if (api->stopping || drv_api_peer_gone(s->conn)) {
            if (!s->ended) {
                s->ended = true;
                if (!s->provider_done && api->log_provider.cancel)
                    api->log_provider.cancel(api->log_provider.ctx, s->handle);
                s->provider_done = true;
                if (!s->got_data && !s->error[0]) {
                    s->code = 499;
                    DRV_FMT_LIT(s->error, "the client went away");
                }
            }
            sink_resume(s);
        }
    }
}

int64_t drv_api_log_deadline_ms(const drv_api_t *api)
{
    for (const drv_api_log_sink_t *s = api->logs; s; s = s->next)
        if (s->suspended)
            return LOG_HANGUP_CHECK_MS;
    return -1;
}
