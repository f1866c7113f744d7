/* The pod record state.json: written when a container starts or stops, read back when the agent
 * restarts so that running containers are adopted and restart counts survive. Its format, and
 * what an old, newer or corrupt file gets, is described in pod/pod.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drover/cleanup.h"
#include "drover/file.h"
#include "drover/fmt.h"
#include "drover/json.h"
#include "drover/log.h"
#include "pod/pod.h"

#define MS_MAX 9007199254740991LL /* 2^53 - 1: unix ms exact in a double */

char *pod_state_format(const pod_t *p)
{
    _cleanup_cjson_ cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddNumberToObject(o, "version", POD_STATE_VERSION))
        return NULL;
    cJSON *cs = cJSON_AddObjectToObject(o, "containers");
    cJSON_AddStringToObject(o, "uid", p->uid);
    cJSON_AddNumberToObject(o, "startTime", (double)p->start_time);
    cJSON_AddNumberToObject(o, "initNext", (double)p->init_next);
    cJSON_AddStringToObject(o, "podIP", p->pod_ip);
    for (size_t i = 0; cs && i < p->n_ctrs; i++) {
        const ctr_t *c = &p->ctrs[i];
        cJSON *j = cJSON_AddObjectToObject(cs, c->name);
        cJSON_AddStringToObject(j, "state",
                                c->state == CS_RUNNING      ? "running"
                                : c->state == CS_TERMINATED ? "terminated"
                                                            : "waiting");
        cJSON_AddNumberToObject(j, "pid", c->pid);
        cJSON_AddNumberToObject(j, "startedAt", (double)c->started_at);
        cJSON_AddNumberToObject(j, "restarts", c->restarts);
        cJSON_AddNumberToObject(j, "backoffMs", (double)c->backoff_ms);
        if (c->last.valid) {
            cJSON *l = cJSON_AddObjectToObject(j, "last");
            cJSON_AddNumberToObject(l, "exitCode", c->last.exit_code);
            cJSON_AddNumberToObject(l, "signal", c->last.signal);
            cJSON_AddStringToObject(l, "reason", c->last.reason);
            cJSON_AddNumberToObject(l, "startedAt", (double)c->last.started_at);
            cJSON_AddNumberToObject(l, "finishedAt", (double)c->last.finished_at);
        }
    }
    return cJSON_PrintUnformatted(o);
}

/* What the record holds for one container, checked before any of it is applied. */
typedef struct ctr_rec {
    bool have;
    cstate_t state;
    int64_t pid, started_at, restarts, backoff_ms;
    term_info_t last;
} ctr_rec_t;

static drv_err_t parse_last(const cJSON *l, const char *path, term_info_t *t, drv_error_t *err)
{
    int64_t code = 0, sig = 0;
    const drv_json_field_t fields[] = {
        {.key = "exitCode",
         .type = DRV_JSON_T_INT,
         .dest = &code,
         .min = INT32_MIN,
         .max = INT32_MAX},
        {.key = "signal", .type = DRV_JSON_T_INT, .dest = &sig, .min = INT32_MIN, .max = INT32_MAX},
        {.key = "reason", .type = DRV_JSON_T_STRBUF, .dest = t->reason, .size = sizeof(t->reason)},
        {.key = "startedAt", .type = DRV_JSON_T_INT, .dest = &t->started_at, .max = MS_MAX},
        {.key = "finishedAt", .type = DRV_JSON_T_INT, .dest = &t->finished_at, .max = MS_MAX},
    };
    drv_err_t rc = drv_json_read_table(l, path, fields, DRV_JSON_TABLE_LEN(fields), 0, err);
    if (rc != DRV_OK)
        return rc;
    t->valid = true;
    t->exit_code = (int)code;
    t->signal = (int)sig;
    return DRV_OK;
}

static drv_err_t parse_ctr(const cJSON *j, const char *path, ctr_rec_t *r, drv_error_t *err)
{
    const char *state = NULL;
    const cJSON *last = NULL;
    const drv_json_field_t fields[] = {
        {.key = "state", .type = DRV_JSON_T_STRING, .dest = &state},
        {.key = "pid", .type = DRV_JSON_T_INT, .dest = &r->pid, .max = INT32_MAX},
        {.key = "startedAt", .type = DRV_JSON_T_INT, .dest = &r->started_at, .max = MS_MAX},
        {.key = "restarts", .type = DRV_JSON_T_INT, .dest = &r->restarts, .max = UINT32_MAX},
        {.key = "backoffMs",
         .type = DRV_JSON_T_INT,
         .dest = &r->backoff_ms,
         .max = POD_BACKOFF_MAX_MS},
        {.key = "last", .type = DRV_JSON_T_OBJECT, .dest = &last},
    };
    drv_err_t rc = drv_json_read_table(j, path, fields, DRV_JSON_TABLE_LEN(fields), 0, err);
    if (rc != DRV_OK)
        return rc;
    if (state == NULL || !strcmp(state, "waiting"))
        r->state = CS_WAITING;
    else if (!strcmp(state, "running"))
        r->state = CS_RUNNING;
    else if (!strcmp(state, "terminated"))
        r->state = CS_TERMINATED;
    else
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "%s.state: must be \"waiting\", \"running\" or \"terminated\"", path);
    if (last) {
        char lpath[128];
        drv_fmt_cut(lpath, sizeof(lpath), "%.100s.last", path);
        rc = parse_last(last, lpath, &r->last, err);
    }
    r->have = true;
    return rc;
}

drv_err_t pod_state_parse(const char *text, size_t len, pod_t *p, drv_error_t *err)
{
    _cleanup_cjson_ cJSON *o = cJSON_ParseWithLength(text, len);
    if (!cJSON_IsObject(o))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "not a JSON object");
    uint64_t version = 0;
    int64_t start = p->start_time, init_next = (int64_t)p->init_next;
    const cJSON *cs = NULL;
    const char *uid = NULL, *ip = NULL;
    const drv_json_field_t fields[] = {
        {.key = "version", .type = DRV_JSON_T_UINT, .dest = &version},
        {.key = "uid", .type = DRV_JSON_T_STRING, .dest = &uid},
        {.key = "startTime", .type = DRV_JSON_T_INT, .dest = &start, .max = MS_MAX},
        {.key = "initNext", .type = DRV_JSON_T_INT, .dest = &init_next, .max = (int64_t)p->n_init},
        {.key = "podIP", .type = DRV_JSON_T_STRING, .dest = &ip},
        {.key = "containers", .type = DRV_JSON_T_OBJECT, .dest = &cs},
    };
    /* The version first: a newer file is refused for its version, not for a field it moved. */
    drv_err_t rc = drv_json_read_table(o, NULL, fields, 1, 0, err);
    if (rc != DRV_OK)
        return rc;
    if (version > POD_STATE_VERSION)
        return drv_error_set(err, DRV_ERR_UNSUPPORTED, 0,
                             "version %llu is newer than this agent reads (%d)",
                             (unsigned long long)version, POD_STATE_VERSION);
    rc = drv_json_read_table(o, NULL, fields + 1, DRV_JSON_TABLE_LEN(fields) - 1, 0, err);
    if (rc != DRV_OK)
        return rc;
    _cleanup_free_ ctr_rec_t *recs = calloc(p->n_ctrs ? p->n_ctrs : 1, sizeof(*recs));
    if (!recs)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "out of memory");
    for (size_t i = 0; cs && i < p->n_ctrs; i++) {
        const cJSON *j = drv_json_get(cs, p->ctrs[i].name);
        if (!j)
            continue;
        char path[128];
        drv_fmt_cut(path, sizeof(path), "containers.%.64s", p->ctrs[i].name);
        rc = parse_ctr(j, path, &recs[i], err);
        if (rc != DRV_OK)
            return rc;
    }
    p->start_time = start;
    p->init_next = (size_t)init_next;
    drv_fmt_cut(p->last_ip, sizeof(p->last_ip), "%s", ip ? ip : "");
    for (size_t i = 0; i < p->n_ctrs; i++) {
        const ctr_rec_t *r = &recs[i];
        ctr_t *c = &p->ctrs[i];
        if (!r->have)
            continue;
        c->state = r->state; /* running is checked against crun by the caller */
        c->pid = (pid_t)r->pid;
        c->started_at = r->started_at;
        c->restarts = (unsigned)r->restarts;
        c->backoff_ms = r->backoff_ms;
        if (r->last.valid)
            c->last = r->last;
    }
    return DRV_OK;
}

void pod_state_save(const pod_t *p)
{
    char path[600];
    if (drv_fmt(path, sizeof(path), "%s/state.json", p->dir) != DRV_OK) {
        drv_log_warn("cannot save pod state: path too long", "pod=%s/%s", p->ns, p->name);
        return;
    }
    _cleanup_free_ char *text = pod_state_format(p);
    drv_error_t err = DRV_ERROR_INIT;
    /* The pod's directory is made without an fsync on the start path (volumes.c): its first
     * state.json makes its entry in pods/ durable too, once, off that path. */
    bool first = access(path, F_OK) != 0;
    if (!text || drv_file_write_atomic(path, text, strlen(text), 0600, &err) != DRV_OK ||
        (first && drv_file_sync_dir_of(p->dir, &err) != DRV_OK))
        drv_log_warn("cannot save pod state", "pod=%s/%s error=\"%s\"", p->ns, p->name,
                     text ? drv_error_msg(&err) : "out of memory");
}

void pod_state_load(pod_t *p)
{
    char path[600];
    if (drv_fmt(path, sizeof(path), "%s/state.json", p->dir) != DRV_OK) {
        drv_log_warn("cannot load pod state: path too long", "pod=%s/%s", p->ns, p->name);
        return;
    }
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    if (drv_file_read_capped(path, POD_STATE_MAX_BYTES, &text, &len, NULL) != DRV_OK)
        return;
    drv_error_t err = DRV_ERROR_INIT;
    if (pod_state_parse(text, len, p, &err) == DRV_OK)
        return;
    drv_error_t qerr = DRV_ERROR_INIT;
    drv_log_warn("corrupt pod state moved aside", "pod=%s/%s path=%s error=\"%s\"", p->ns, p->name,
                 path, drv_error_msg(&err));
    (void)!drv_file_quarantine(path, &qerr);
}
