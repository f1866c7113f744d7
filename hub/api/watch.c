/* Watch streams, one implementation read from the store's change log in two encodings:
 * - Kubernetes' (`?watch=true` from kubectl, client-go and the official clients): one JSON
 *   object {"type":"ADDED|MODIFIED|DELETED|BOOKMARK|ERROR","object":{...}} per line. Without a
 *   resourceVersion (or with "0") the stream opens with an ADDED event for every object that
 *   matches, as the apiserver does; allowWatchBookmarks=true adds a BOOKMARK every
 *   DRV_API_BOOKMARK_MS (and, with sendInitialEvents=true, one marked
 *   k8s.io/initial-events-end after the initial events); timeoutSeconds ends the stream.
 * - Server-Sent Events, for browsers and for clients that send Accept: text/event-stream:
 *   event: ADDED|MODIFIED|DELETED\nid: <resourceVersion>\ndata: <object JSON>\n\n
 *   resumable with resourceVersion=N or Last-Event-ID, a keep-alive comment every 15 s.
 * A stream with nothing to send suspends its connection; drv_api_notify() resumes it. A stream
 * that falls behind the retained log, or asks for a resourceVersion older than it, gets an
 * ERROR event (410 Expired) and ends. */
#include "api/api_int.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "drover/cleanup.h"
#include "drover/fmt.h"
#include "drover/json.h"
#include "drover/log.h"
#include "drover/proc.h"

#define WATCH_BATCH 64
#define WATCH_HANGUP_CHECK_MS 1000      /* how often suspended streams are checked for hang-ups */
#define WATCH_OUT_SOFT (256 * 1024)     /* stop fetching past this much pending output */
#define WATCH_OUT_MAX (8 * 1024 * 1024) /* hard cap on one stream's pending output */

/* A multi-kind stream's kinds are bits of one mask: every kind must have its bit. */
_Static_assert(DRV_KIND__COUNT <= 64, "a watch's kind mask holds every kind");
#define KIND_BIT(k) ((uint64_t)1 << (k))

struct drv_api_watch {
    drv_api_watch_t *prev, *next;
    drv_api_t *api;
    struct MHD_Connection *conn;
    drv_kind_t kind; /* DRV_KIND_UNKNOWN: the kinds in mask (drv_api_watch_all) */
    uint64_t mask;   /* bit(kind) for each kind a multi-kind stream carries */
    int64_t last_hb; /* a multi-kind stream's last HEARTBEAT event */
    bool all_ns;
    char ns[256];
    drv_selector_t sel;
    drv_api_fieldsel_t fs;
    uint64_t rv; /* the last change consumed */
    bool json;   /* Kubernetes' encoding (else SSE) */
    bool bookmarks;
    int64_t last_bm;  /* the last BOOKMARK */
    int64_t deadline; /* timeoutSeconds, on drv_now_ms(); 0: none */
    cJSON *initial;   /* objects still to send as ADDED before the changes (an array) */
    bool initial_end; /* sendInitialEvents: a marked BOOKMARK once initial is sent */
    char table[16];   /* "v1" or "v1beta1": events carry meta.k8s.io Tables; "": objects */
    char include[16]; /* includeObject for those Tables */
    bool table_cols;  /* the column definitions went out (in the first Table) */
    drv_buf_t out;
    size_t off;
    bool suspended, ended;
    int64_t last_send;
};

static bool wants(const drv_api_watch_t *w, drv_kind_t kind, const cJSON *obj)
{
    if (w->kind == DRV_KIND_UNKNOWN && !(w->mask & KIND_BIT(kind)))
        return false;
    if (!obj || !drv_api_fieldsel_matches(&w->fs, obj))
        return false;
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    if (!w->all_ns) {
        const cJSON *ns = cJSON_GetObjectItemCaseSensitive(meta, "namespace");
        if (!cJSON_IsString(ns) || strcmp(ns->valuestring, w->ns))
            return false;
    }
    return drv_selector_matches(&w->sel, cJSON_GetObjectItemCaseSensitive(meta, "labels"));
}

static void end_with_status(drv_api_watch_t *w, unsigned code, const char *reason, const char *msg)
{
    cJSON *st = drv_api_status_json(code, reason, msg, NULL);
    char *s = st ? cJSON_PrintUnformatted(st) : NULL;
    cJSON_Delete(st);
    if (s && (w->json ? drv_buf_printf(&w->out, "{\"type\":\"ERROR\",\"object\":%s}\n", s)
                      : drv_buf_printf(&w->out, "event: ERROR\ndata: %s\n\n", s)) != DRV_OK)
        drv_log_warn("watch: no room for the final error event", NULL);
    free(s);
    w->ended = true;
}

/* obj as a Table of one row (kubectl get -w asks for them), the columns in the first only. */
static cJSON *as_table(drv_api_watch_t *w, const cJSON *obj)
{
    _cleanup_cjson_ cJSON *one = cJSON_CreateArray();
    if (!one || !cJSON_AddItemReferenceToArray(one, (cJSON *)obj))
        return NULL;
    unsigned code = 0;
    char why[160];
    cJSON *t = drv_api_table(drv_kind_name(w->kind), w->table, one, NULL, w->include,
                             !w->table_cols, drv_wall_ms(), &code, why, sizeof(why));
    if (t)
        w->table_cols = true;
    else
        drv_log_warn("watch: an event could not be shown as a table", "why=\"%s\"", why);
    return t;
}

/* Appends one event to w->out in the stream's encoding; on failure w->out is as it was. */
static drv_err_t emit(drv_api_watch_t *w, const char *type, uint64_t rv, const cJSON *obj)
{
    _cleanup_cjson_ cJSON *table =
        w->table[0] && strcmp(type, "BOOKMARK") ? as_table(w, obj) : NULL;
    if (w->table[0] && strcmp(type, "BOOKMARK") && !table)
        return DRV_ERR_NOMEM;
    _cleanup_free_ char *s = cJSON_PrintUnformatted(table ? table : obj);
    if (!s)
        return DRV_ERR_NOMEM;
    size_t mark = w->out.len;
    drv_err_t e = w->json ? drv_buf_printf(&w->out, "{\"type\":\"%s\",\"object\":%s}\n", type, s)
                          : drv_buf_printf(&w->out, "event: %s\nid: %llu\ndata: %s\n\n", type,
                                           (unsigned long long)rv, s);
    if (e != DRV_OK)
        drv_buf_truncate(&w->out, mark);
    return e;
}

/* A BOOKMARK at the stream's resourceVersion (Kubernetes' encoding only). */
static void bookmark(drv_api_watch_t *w, bool initial_end)
{
    w->last_bm = drv_now_ms();
    char rv[32];
    _cleanup_cjson_ cJSON *o = cJSON_CreateObject();
    cJSON *meta = NULL, *ann = NULL;
    bool ok = o && drv_fmt(rv, sizeof(rv), "%llu", (unsigned long long)w->rv) == DRV_OK &&
              cJSON_AddStringToObject(o, "kind", drv_kind_name(w->kind)) &&
              cJSON_AddStringToObject(o, "apiVersion", drv_kind_api_version(w->kind)) &&
              (meta = cJSON_AddObjectToObject(o, "metadata")) &&
              cJSON_AddStringToObject(meta, "resourceVersion", rv);
    if (ok && initial_end)
        ok = (ann = cJSON_AddObjectToObject(meta, "annotations")) &&
             cJSON_AddStringToObject(ann, "k8s.io/initial-events-end", "true");
    if (!ok || emit(w, "BOOKMARK", w->rv, o) != DRV_OK)
        drv_log_warn("watch: no room for a bookmark", NULL);
}

/* Sends what is left of the initial ADDED events, as room allows. */
static void fill_initial(drv_api_watch_t *w)
{
    while (w->initial && w->initial->child && w->out.len < WATCH_OUT_SOFT) {
        cJSON *it = cJSON_DetachItemViaPointer(w->initial, w->initial->child);
        if (w->kind == DRV_KIND_NODE)
            drv_api_show_node(w->api, it);
        if (emit(w, "ADDED", 0, it) != DRV_OK && w->out.len > 0) {
            cJSON_InsertItemInArray(w->initial, 0, it); /* next time, after what is pending */
            return;
        }
        cJSON_Delete(it);
    }
    if (w->initial && !w->initial->child) {
        cJSON_Delete(w->initial);
        w->initial = NULL;
        if (w->initial_end)
            bookmark(w, true);
    }
}

/* Appends the events after w->rv that the stream wants to w->out. */
static void fill(drv_api_watch_t *w)
{
    fill_initial(w);
    if (w->initial)
        return;
    for (int round = 0; round < 16 && w->out.len < WATCH_OUT_SOFT && !w->ended; round++) {
        drv_hstore_event_t *ev = NULL;
        size_t n = 0;
        drv_error_t err = DRV_ERROR_INIT;
        drv_err_t e = drv_hstore_changes(w->api->store, w->rv, w->kind, WATCH_BATCH, &ev, &n, &err);
        if (e == DRV_ERR_RANGE) {
            char msg[128];
            drv_fmt_cut(msg, sizeof(msg),
                        "too old resource version: %llu; the watch fell behind, list again",
                        (unsigned long long)w->rv);
            end_with_status(w, 410, "Expired", msg);
            return;
        }
        if (e != DRV_OK) {
            drv_log_error("watch: reading the change log failed", "err=%s", drv_strerror(e));
            end_with_status(w, 500, "InternalError", drv_error_msg(&err));
            return;
        }
        bool full = false;
        for (size_t i = 0; i < n && !full; i++) {
            if (wants(w, ev[i].kind, ev[i].obj)) {
                if (ev[i].kind == DRV_KIND_NODE && ev[i].type != DRV_HSTORE_DELETED)
                    drv_api_show_node(w->api, ev[i].obj);
                if (emit(w, drv_hstore_change_name(ev[i].type), ev[i].rv, ev[i].obj) != DRV_OK) {
                    if (w->out.len > 0) {
                        full = true; /* send what we have, retry this event next time */
                        break;
                    }
                    drv_log_error("watch: event dropped, too large", "rv=%llu",
                                  (unsigned long long)ev[i].rv);
                }
            }
            w->rv = ev[i].rv;
        }
        drv_hstore_events_free(ev, n);
        if (full || n < WATCH_BATCH)
            return;
    }
}

static void rfc3339_ms(int64_t ms, char out[40])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char base[24];
    if (!gmtime_r(&t, &tm) || !strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm) ||
        drv_fmt(out, 40, "%s.%03dZ", base, (int)(ms % 1000)) != DRV_OK)
        out[0] = '\0';
}

/* A multi-kind stream's HEARTBEAT: the hub's time and the nodes not heard from lately. */
static void heartbeat(drv_api_watch_t *w)
{
    drv_api_t *api = w->api;
    int64_t now = drv_wall_ms();
    w->last_hb = drv_now_ms();
    _cleanup_cjson_ cJSON *o = cJSON_CreateObject();
    cJSON *late = o ? cJSON_AddObjectToObject(o, "late") : NULL;
    char ts[40];
    rfc3339_ms(now, ts);
    if (!late || !cJSON_AddStringToObject(o, "now", ts))
        return;
    if (api->late)
        api->late(api->heartbeats_ctx, now, api->late_after_ms, late);
    char *s = cJSON_PrintUnformatted(o);
    if (!s || drv_buf_printf(&w->out, "event: HEARTBEAT\ndata: %s\n\n", s) != DRV_OK)
        drv_log_warn("watch: no room for a heartbeat event", NULL);
    free(s);
}

static bool heartbeat_due(const drv_api_watch_t *w, int64_t now)
{
    return w->kind == DRV_KIND_UNKNOWN && now - w->last_hb >= DRV_API_HEARTBEAT_MS;
}

static bool bookmark_due(const drv_api_watch_t *w, int64_t now)
{
    return w->bookmarks && !w->initial && now - w->last_bm >= DRV_API_BOOKMARK_MS;
}

static bool timed_out(const drv_api_watch_t *w, int64_t now)
{
    return w->deadline && now >= w->deadline;
}

static ssize_t watch_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    drv_api_watch_t *w = cls;
    if (w->off >= w->out.len) {
        drv_buf_reset(&w->out);
        w->off = 0;
        int64_t now = drv_now_ms();
        if (w->ended || w->api->stopping || timed_out(w, now))
            return MHD_CONTENT_READER_END_OF_STREAM;
        fill(w);
        if (!w->ended && heartbeat_due(w, now))
            heartbeat(w);
        if (!w->ended && w->out.len == 0 && bookmark_due(w, now))
            bookmark(w, false);
        if (w->out.len == 0) {
            if (!w->json && now - w->last_send >= DRV_API_KEEPALIVE_MS) {
                if (drv_buf_puts(&w->out, ": keep-alive\n\n") != DRV_OK)
                    return MHD_CONTENT_READER_END_WITH_ERROR;
            } else {
                w->suspended = true;
                MHD_suspend_connection(w->conn);
                return 0;
            }
        }
    }
    size_t n = w->out.len - w->off;
    if (n > max)
        n = max;
    memcpy(buf, w->out.data + w->off, n);
    w->off += n;
    w->last_send = drv_now_ms();
    w->api->streamed += n;
    return (ssize_t)n;
}

static void watch_free(void *cls)
{
    drv_api_watch_t *w = cls;
    drv_api_t *api = w->api;
    if (w->prev)
        w->prev->next = w->next;
    else
        api->watches = w->next;
    if (w->next)
        w->next->prev = w->prev;
    api->nwatches--;
    drv_selector_free(&w->sel);
    drv_buf_free(&w->out);
    cJSON_Delete(w->initial);
    free(w);
}

static bool parse_rv(const char *s, uint64_t *out)
{
    if (!s || !*s || *s < '0' || *s > '9')
        return false;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

static bool arg_true(drv_api_req_t *rq, const char *name)
{
    const char *v = MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, name);
    return v && (!strcmp(v, "1") || !strcasecmp(v, "true"));
}

/* Whether the client asked for Server-Sent Events (an EventSource does) rather than
 * Kubernetes' JSON lines. */
static bool wants_sse(drv_api_req_t *rq)
{
    const char *a = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
    return a && strstr(a, "text/event-stream");
}

static void watch_discard(drv_api_watch_t *w)
{
    drv_buf_free(&w->out);
    drv_selector_free(&w->sel);
    cJSON_Delete(w->initial);
    free(w);
}

/* The objects a stream opening without a resourceVersion starts with (Kubernetes sends them as
 * ADDED events); sets w->rv to the list's resourceVersion. */
static drv_err_t initial_state(drv_api_watch_t *w, drv_error_t *err)
{
    cJSON *items = NULL;
    uint64_t rv = 0;
    drv_err_t e = drv_hstore_list(w->api->store, w->kind, w->all_ns ? NULL : w->ns, &w->sel, &items,
                                  &rv, err);
    if (e != DRV_OK)
        return e;
    drv_api_fieldsel_filter(&w->fs, items);
    w->initial = items;
    w->rv = rv;
    return DRV_OK;
}

/* Opens a stream of kind (DRV_KIND_UNKNOWN: the kinds in mask) from the request's
 * resourceVersion or Last-Event-ID. Takes sel's contents. */
static enum MHD_Result start(drv_api_req_t *rq, drv_kind_t kind, uint64_t mask, const char *ns,
                             drv_selector_t *sel, const drv_api_fieldsel_t *fs, bool json)
{
    drv_api_t *api = rq->api;
    if (api->nwatches >= api->max_watches) {
        drv_selector_free(sel);
        char msg[128];
        drv_fmt_cut(msg, sizeof(msg), "too many watch streams open (limit %u); retry later",
                    api->max_watches);
        return drv_api_reply_status(rq, 429, NULL, msg, NULL);
    }
    uint64_t rv = drv_hstore_rv(api->store);
    const char *q = MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, "resourceVersion");
    const char *h =
        json ? NULL : MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, "Last-Event-ID");
    const char *given = h && *h ? h : (q && *q ? q : NULL);
    if (given && !parse_rv(given, &rv)) {
        drv_selector_free(sel);
        char msg[160];
        drv_fmt_cut(msg, sizeof(msg), "%s \"%.32s\" is not a resourceVersion (a decimal number)",
                    h && *h ? "Last-Event-ID" : "resourceVersion", given);
        return drv_api_reply_status(rq, 400, NULL, msg, NULL);
    }
    const char *tmo =
        MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, "timeoutSeconds");
    uint64_t timeout_s = 0;
    if (tmo && *tmo && !parse_rv(tmo, &timeout_s)) {
        drv_selector_free(sel);
        char msg[160];
        drv_fmt_cut(msg, sizeof(msg), "timeoutSeconds \"%.32s\" is not a number of seconds", tmo);
        return drv_api_reply_status(rq, 400, NULL, msg, NULL);
    }
    const char *sie =
        MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, "sendInitialEvents");
    /* Kubernetes: a watch from no resourceVersion or "0" starts with the current state. */
    bool initial = json && kind != DRV_KIND_UNKNOWN &&
                   (arg_true(rq, "sendInitialEvents") || ((!given || rv == 0) && !(sie && *sie)));
    drv_hstore_event_t *ev = NULL;
    size_t n = 0;
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t e = initial ? DRV_OK : drv_hstore_changes(api->store, rv, kind, 1, &ev, &n, &err);
    drv_hstore_events_free(ev, n);
    /* Streams say 410 as an ERROR event, as the apiserver does; the dashboard's must, as an
     * EventSource cannot read the status of a refused request, and would reconnect with the
     * same resourceVersion forever. */
    bool expired = e == DRV_ERR_RANGE && (kind == DRV_KIND_UNKNOWN || json);
    if (e != DRV_OK && !expired) {
        drv_selector_free(sel);
        char msg[DRV_ERROR_MSG_MAX + 64];
        if (e == DRV_ERR_RANGE && rv > drv_hstore_rv(api->store))
            drv_fmt_cut(msg, sizeof(msg), "resource version %llu is newer than the store's (%llu)",
                        (unsigned long long)rv, (unsigned long long)drv_hstore_rv(api->store));
        else /* the store's says which is the oldest it has */
            drv_fmt_cut(msg, sizeof(msg), "%s", drv_error_msg(&err));
        return drv_api_reply_error(rq, e, msg);
    }
    drv_api_watch_t *w = calloc(1, sizeof(*w));
    if (!w) {
        drv_selector_free(sel);
        return drv_api_reply_status(rq, 500, NULL, "out of memory", NULL);
    }
    w->api = api;
    w->conn = rq->conn;
    w->kind = kind;
    w->mask = mask;
    w->all_ns = ns == NULL;
    w->sel = *sel;
    memset(sel, 0, sizeof(*sel));
    w->fs = *fs;
    w->rv = rv;
    w->json = json;
    bool only_table = false;
    if (json && kind != DRV_KIND_UNKNOWN &&
        drv_api_accepts_table(rq->conn, w->table, sizeof(w->table), &only_table) &&
        !drv_api_table_renders(drv_kind_name(kind)))
        w->table[0] = '\0';
    const char *inc = MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, "includeObject");
    if (w->table[0] && inc && drv_fmt(w->include, sizeof(w->include), "%s", inc) != DRV_OK) {
        watch_discard(w);
        return drv_api_reply_status(rq, 400, NULL, "includeObject: None, Metadata or Object", NULL);
    }
    /* Tables carry no bookmarks here (kubectl get -w asks for none). */
    w->bookmarks =
        json && kind != DRV_KIND_UNKNOWN && !w->table[0] && arg_true(rq, "allowWatchBookmarks");
    w->initial_end = initial && w->bookmarks && arg_true(rq, "sendInitialEvents");
    w->last_send = w->last_bm = drv_now_ms();
    if (timeout_s)
        w->deadline = w->last_send + (int64_t)(timeout_s > 86400 ? 86400 : timeout_s) * 1000;
    drv_buf_init(&w->out, WATCH_OUT_MAX);
    if (drv_fmt(w->ns, sizeof(w->ns), "%s", ns ? ns : "") != DRV_OK) {
        watch_discard(w);
        return drv_api_reply_status(rq, 400, NULL, "namespace: name too long", NULL);
    }
    if (initial && (e = initial_state(w, &err)) != DRV_OK) {
        watch_discard(w);
        return drv_api_reply_error(rq, e, drv_error_msg(&err));
    }
    /* A first comment so that the client sees the stream open at once. */
    if (!json && drv_buf_printf(&w->out, ": watching %s from resourceVersion %llu\n\n",
                                kind ? drv_kind_plural(kind) : "several kinds",
                                (unsigned long long)rv) != DRV_OK) {
        watch_discard(w);
        return drv_api_reply_status(rq, 500, NULL, "out of memory", NULL);
    }
    if (expired) {
        char msg[DRV_ERROR_MSG_MAX + 64];
        if (rv > drv_hstore_rv(api->store))
            drv_fmt_cut(msg, sizeof(msg),
                        "resource version %llu is newer than the store's (%llu); list again",
                        (unsigned long long)rv, (unsigned long long)drv_hstore_rv(api->store));
        else
            drv_fmt_cut(msg, sizeof(msg), "too old resource version: %llu (%s)",
                        (unsigned long long)rv, drv_error_msg(&err));
        end_with_status(w, 410, "Expired", msg);
    }
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, watch_read, w, watch_free);
    if (!resp) {
        watch_discard(w);
        return MHD_NO;
    }
    w->next = api->watches;
    if (api->watches)
        api->watches->prev = w;
    api->watches = w;
    api->nwatches++;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            json ? "application/json" : "text/event-stream");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    return drv_api_queue(rq, 200, resp);
}

enum MHD_Result drv_api_watch_start(drv_api_req_t *rq, drv_kind_t kind, const char *ns,
                                    drv_selector_t *sel, const drv_api_fieldsel_t *fs)
{
    return start(rq, kind, 0, ns, sel, fs, !wants_sse(rq));
}

enum MHD_Result drv_api_watch_all(drv_api_req_t *rq)
{
    const char *q = MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, "kinds");
    if (!q || !*q)
        return drv_api_reply_status(rq, 400, NULL,
                                    "kinds: required, a comma-separated list of plural kind "
                                    "names (nodes,pods,deployments,...)",
                                    NULL);
    uint64_t mask = 0;
    for (const char *p = q; *p;) {
        size_t len = strcspn(p, ",");
        char name[64];
        drv_kind_t k = DRV_KIND_UNKNOWN;
        if (len < sizeof(name)) {
            memcpy(name, p, len);
            name[len] = '\0';
            k = drv_kind_parse(name);
        }
        if (k == DRV_KIND_UNKNOWN || k == DRV_KIND_SECRET) {
            char msg[160];
            drv_fmt_cut(msg, sizeof(msg), "kinds: \"%.*s\" is not a kind this stream carries%s",
                        (int)(len > 64 ? 64 : len), p,
                        k == DRV_KIND_SECRET ? " (Secrets are never streamed here)" : "");
            return drv_api_reply_status(rq, 400, NULL, msg, NULL);
        }
        mask |= KIND_BIT(k);
        p += len;
        if (*p == ',')
            p++;
    }
    drv_selector_t sel = {0};
    drv_api_fieldsel_t fs = {0};
    return start(rq, DRV_KIND_UNKNOWN, mask, NULL, &sel, &fs, false);
}

void drv_api_set_heartbeats(drv_api_t *api, drv_api_seen_fn seen, drv_api_late_fn late,
                            int64_t late_after_ms, void *ctx)
{
    api->seen = seen;
    api->late = late;
    api->late_after_ms = late_after_ms;
    api->heartbeats_ctx = ctx;
}

void drv_api_show_node(drv_api_t *api, cJSON *obj)
{
    if (!api->seen || !cJSON_IsObject(obj))
        return;
    const char *kind = drv_json_str(obj, "kind");
    const char *name = drv_json_str(drv_json_get(obj, "metadata"), "name");
    if (!kind || strcmp(kind, "Node") || !name)
        return;
    int64_t seen = api->seen(api->heartbeats_ctx, name);
    if (seen < 0)
        return;
    cJSON *c;
    cJSON_ArrayForEach(c, drv_json_get(drv_json_get(obj, "status"), "conditions"))
    {
        const char *type = drv_json_str(c, "type");
        if (!type || strcmp(type, "Ready"))
            continue;
        time_t t = (time_t)(seen / 1000);
        struct tm tm;
        char ts[32];
        if (!gmtime_r(&t, &tm) || !strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm))
            return;
        cJSON_DeleteItemFromObjectCaseSensitive(c, "lastHeartbeatTime");
        cJSON_AddStringToObject(c, "lastHeartbeatTime", ts);
        return;
    }
}

void drv_api_notify(drv_api_t *api)
{
    for (drv_api_watch_t *w = api->watches; w; w = w->next) {
        if (w->suspended) {
            w->suspended = false;
            MHD_resume_connection(w->conn);
        }
    }
}

/* MHD does not watch a suspended connection's socket, so a client that went away would hold
 * its slot until the next keep-alive write fails; look for the hang-up ourselves. */
bool drv_api_peer_gone(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci)
        return false;
    struct pollfd p = {.fd = ci->connect_fd, .events = POLLRDHUP};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

void drv_api_watch_tick(drv_api_t *api)
{
    int64_t now = drv_now_ms();
    for (drv_api_watch_t *w = api->watches; w; w = w->next) {
        if (!w->suspended)
            continue;
        bool gone = drv_api_peer_gone(w->conn);
        if (gone || (!w->json && now - w->last_send >= DRV_API_KEEPALIVE_MS) ||
            heartbeat_due(w, now) || bookmark_due(w, now) || timed_out(w, now)) {
            w->ended |= gone;
            w->suspended = false;
            MHD_resume_connection(w->conn);
        }
    }
}

int64_t drv_api_watch_deadline_ms(const drv_api_t *api)
{
    int64_t now = drv_now_ms(), best = -1;
    for (const drv_api_watch_t *w = api->watches; w; w = w->next) {
        if (!w->suspended)
            continue;
        int64_t d = w->json ? WATCH_HANGUP_CHECK_MS : w->last_send + DRV_API_KEEPALIVE_MS - now;
        if (w->kind == DRV_KIND_UNKNOWN && w->last_hb + DRV_API_HEARTBEAT_MS - now < d)
            d = w->last_hb + DRV_API_HEARTBEAT_MS - now;
        if (w->bookmarks && w->last_bm + DRV_API_BOOKMARK_MS - now < d)
            d = w->last_bm + DRV_API_BOOKMARK_MS - now;
        if (w->deadline && w->deadline - now < d)
            d = w->deadline - now;
        if (d > WATCH_HANGUP_CHECK_MS)
            d = WATCH_HANGUP_CHECK_MS;
        if (d < 0)
            d = 0;
        if (best < 0 || d < best)
            best = d;
    }
    return best;
}
