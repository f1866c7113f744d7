/* The probe timing and verdict state machine of one container, with Kubernetes' semantics
 * (kubelet's prober worker): initial delay, period, consecutive-result thresholds, startup
 * gating, restart verdicts. Pure: the clock is passed in. */
#include "probe/probe.h"

#include <string.h>

#include "drover/fmt.h"
#include "drover/json.h"

/* Names in place, not pointers: no relocation per entry (issue 19: the agent's size). */
static const char kind_names[DRV_PROBE_KINDS][10] = {"liveness", "readiness", "startup"};
static const char kind_keys[DRV_PROBE_KINDS][16] = {"livenessProbe", "readinessProbe",
                                                    "startupProbe"};

const char *drv_probe_kind_name(drv_probe_kind_t kind)
{
    return (unsigned)kind < DRV_PROBE_KINDS ? kind_names[kind] : "unknown";
}

const cJSON *drv_probe_spec_json(const cJSON *container, drv_probe_kind_t kind)
{
    if (!cJSON_IsObject(container) || (unsigned)kind >= DRV_PROBE_KINDS)
        return NULL;
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(container, kind_keys[kind]);
    return cJSON_IsNull(p) ? NULL : p;
}

/* An optional integer field in [min, INT32_MAX], def when absent. */
static drv_err_t int_field(const cJSON *obj, const char *key, int64_t min, int64_t def,
                           int64_t *out, drv_error_t *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v)) {
        *out = def;
        return DRV_OK;
    }
    if (!cJSON_IsNumber(v) || !drv_json_to_int(v->valuedouble, min, INT32_MAX, out))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: must be an integer from %lld to %d", key,
                             (long long)min, INT32_MAX);
    return DRV_OK;
}

drv_err_t drv_probe_spec_parse(const cJSON *probe, drv_probe_spec_t *out, drv_error_t *err)
{
    if (!cJSON_IsObject(probe))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "must be an object");
    int64_t delay, timeout, period, succ, fail;
    drv_err_t r;
    if ((r = int_field(probe, "initialDelaySeconds", 0, 0, &delay, err)) != DRV_OK ||
        (r = int_field(probe, "timeoutSeconds", 1, 1, &timeout, err)) != DRV_OK ||
        (r = int_field(probe, "periodSeconds", 1, 10, &period, err)) != DRV_OK ||
        (r = int_field(probe, "successThreshold", 1, 1, &succ, err)) != DRV_OK ||
        (r = int_field(probe, "failureThreshold", 1, 3, &fail, err)) != DRV_OK)
        return r;
    out->initial_delay_ms = delay * 1000;
    out->timeout_ms = timeout * 1000;
    out->period_ms = period * 1000;
    out->success_threshold = (uint32_t)succ;
    out->failure_threshold = (uint32_t)fail;
    return DRV_OK;
}

drv_err_t drv_probe_state_init(drv_probe_state_t *st, const cJSON *container, drv_error_t *err)
{
    if (!cJSON_IsObject(container))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "container: must be an object");
    drv_probe_state_t s;
    memset(&s, 0, sizeof(s));
    for (int k = 0; k < DRV_PROBE_KINDS; k++) {
        const cJSON *p = drv_probe_spec_json(container, (drv_probe_kind_t)k);
        if (!p)
            continue;
        if (drv_probe_validate(p, container, err) != DRV_OK ||
            drv_probe_spec_parse(p, &s.t[k].spec, err) != DRV_OK)
            return drv_error_wrap(err, "%s", kind_keys[k]);
        s.t[k].configured = true;
        s.t[k].last = -1;
    }
    *st = s;
    return DRV_OK;
}

void drv_probe_state_container_started(drv_probe_state_t *st, int64_t now)
{
    st->gen++;
    st->running = true;
    st->restart = false;
    for (int k = 0; k < DRV_PROBE_KINDS; k++) {
        drv_probe_track_t *t = &st->t[k];
        t->in_flight = false;
        t->on_hold = false;
        t->last = -1;
        t->run = 0;
        t->next_due = now + t->spec.initial_delay_ms;
    }
    /* kubelet: with no startup probe the container is started once running; with no
     * readiness probe it is ready once started; a readiness probe starts out "failure". */
    st->started = !st->t[DRV_PROBE_STARTUP].configured;
    st->ready = st->started && !st->t[DRV_PROBE_READINESS].configured;
}

void drv_probe_state_container_stopped(drv_probe_state_t *st)
{
    st->gen++;
    st->running = false;
    st->started = false;
    st->ready = false;
    for (int k = 0; k < DRV_PROBE_KINDS; k++)
        st->t[k].in_flight = false;
}

/* Whether kind may be handed out at all now (whatever its due time). */
static bool eligible(const drv_probe_state_t *st, int k)
{
    const drv_probe_track_t *t = &st->t[k];
    if (!st->running || !t->configured || t->in_flight || t->on_hold)
        return false;
    /* Liveness and readiness wait for the startup probe to succeed. */
    return k == DRV_PROBE_STARTUP || st->started;
}

bool drv_probe_state_next(drv_probe_state_t *st, int64_t now, drv_probe_kind_t *kind,
                          uint32_t *token)
{
    static const int order[DRV_PROBE_KINDS] = {DRV_PROBE_STARTUP, DRV_PROBE_LIVENESS,
                                               DRV_PROBE_READINESS};
    for (int i = 0; i < DRV_PROBE_KINDS; i++) {
        int k = order[i];
        drv_probe_track_t *t = &st->t[k];
        if (!eligible(st, k) || t->next_due > now)
            continue;
        t->in_flight = true;
        t->next_due = now + t->spec.period_ms;
        *kind = (drv_probe_kind_t)k;
        *token = st->gen;
        return true;
    }
    return false;
}

int64_t drv_probe_state_next_due(const drv_probe_state_t *st)
{
    int64_t best = INT64_MAX;
    for (int k = 0; k < DRV_PROBE_KINDS; k++)
        if (eligible(st, k) && st->t[k].next_due < best)
            best = st->t[k].next_due;
    return best;
}

static unsigned set_ready(drv_probe_state_t *st, bool ready)
{
    if (st->ready == ready)
        return 0;
    st->ready = ready;
    return DRV_PROBE_EV_READY;
}

unsigned drv_probe_state_result(drv_probe_state_t *st, drv_probe_kind_t kind, uint32_t token,
                                drv_probe_result_t result, int64_t now)
{
    (void)now; /* next_due was set when the attempt was handed out; if passed, it is due now */
    if ((unsigned)kind >= DRV_PROBE_KINDS || !st->running || token != st->gen)
        return 0;
    drv_probe_track_t *t = &st->t[kind];
    if (!t->in_flight)
        return 0;
    t->in_flight = false;
    if (result != DRV_PROBE_SUCCESS && result != DRV_PROBE_FAILURE)
        return 0; /* not run: not counted */
    if (t->last == (int8_t)result) {
        if (t->run < UINT32_MAX)
            t->run++;
    } else {
        t->last = (int8_t)result;
        t->run = 1;
    }
    if ((result == DRV_PROBE_FAILURE && t->run < t->spec.failure_threshold) ||
        (result == DRV_PROBE_SUCCESS && t->run < t->spec.success_threshold))
        return 0; /* below the threshold: the verdict stands */

    unsigned ev = 0;
    switch (kind) {
    case DRV_PROBE_READINESS:
        ev |= set_ready(st, result == DRV_PROBE_SUCCESS && st->started);
        break;
    case DRV_PROBE_LIVENESS:
    case DRV_PROBE_STARTUP:
        if (result == DRV_PROBE_FAILURE) {
            /* kubelet holds the probe until the container is replaced. */
            t->on_hold = true;
            t->run = 0;
            if (!st->restart) {
                st->restart = true;
                st->restart_kind = kind;
                ev |= DRV_PROBE_EV_RESTART;
            }
        } else if (kind == DRV_PROBE_STARTUP && !st->started) {
            st->started = true;
            t->on_hold = true; /* a started container is not startup-probed again */
            ev |= DRV_PROBE_EV_STARTED;
            if (!st->t[DRV_PROBE_READINESS].configured)
                ev |= set_ready(st, true);
        }
        break;
    }
    return ev;
}

bool drv_probe_state_ready(const drv_probe_state_t *st)
{
    return st->running && st->ready;
}

bool drv_probe_state_started(const drv_probe_state_t *st)
{
    return st->running && st->started;
}

bool drv_probe_state_restart_needed(const drv_probe_state_t *st, drv_probe_kind_t *why)
{
    if (st->restart && why)
        *why = st->restart_kind;
    return st->restart;
}

/* ---- gRPC health checking ---- */

const char *drv_grpc_status_name(uint64_t status, char *buf, size_t bufsz)
{
    static const char names[][16] = {"UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"};
    if (status < 4)
        return names[status];
    drv_fmt_cut(buf, bufsz, "status %llu", (unsigned long long)status);
    return buf;
}

const char *drv_grpc_code_name(long code, char *buf, size_t bufsz)
{
    static const char names[][19] = {
        "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
        "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
        "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
        "DataLoss", "Unauthenticated"};
    if (code >= 0 && code < (long)(sizeof(names) / sizeof(names[0])))
        return names[code];
    drv_fmt_cut(buf, bufsz, "Code(%ld)", code);
    return buf;
}

/* A protobuf varint at *pos (at most 10 bytes); false if it runs past end or is too long. */
static bool varint(const uint8_t *p, size_t end, size_t *pos, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64 && *pos < end; shift += 7) {
        uint8_t b = p[(*pos)++];
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

drv_err_t drv_grpc_health_parse(const uint8_t *body, size_t len, uint64_t *status, drv_error_t *err)
{
    if (len < 5)
        return drv_error_set(err, DRV_ERR_PROTO, 0, "grpc: answer of %zu bytes, no message", len);
    if (body[0] != 0)
        return drv_error_set(err, DRV_ERR_PROTO, 0, "grpc: compressed answer (flag %u)", body[0]);
    uint64_t mlen =
        (uint64_t)body[1] << 24 | (uint64_t)body[2] << 16 | (uint64_t)body[3] << 8 | body[4];
    if (mlen > len - 5)
        return drv_error_set(err, DRV_ERR_PROTO, 0, "grpc: message of %llu bytes, %zu received",
                             (unsigned long long)mlen, len - 5);
    const uint8_t *m = body + 5;
    size_t end = (size_t)mlen, pos = 0;
    uint64_t st = DRV_GRPC_UNKNOWN;
    while (pos < end) {
        uint64_t key, v;
        if (!varint(m, end, &pos, &key))
            return drv_error_set(err, DRV_ERR_PROTO, 0, "grpc: bad field key at byte %zu", pos);
        unsigned wire = (unsigned)(key & 7);
        uint64_t field = key >> 3;
        switch (wire) {
        case 0: /* varint */
            if (!varint(m, end, &pos, &v))
                return drv_error_set(err, DRV_ERR_PROTO, 0, "grpc: field %llu: bad varint",
                                     (unsigned long long)field);
            if (field == 1)
                st = v;
            break;
        case 1: /* 64-bit */
        case 5: /* 32-bit */
            if (end - pos < (wire == 1 ? 8u : 4u))
                return drv_error_set(err, DRV_ERR_PROTO, 0, "grpc: field %llu: truncated",
                                     (unsigned long long)field);
            pos += wire == 1 ? 8 : 4;
            break;
        case 2: /* length-delimited */
            if (!varint(m, end, &pos, &v) || v > end - pos)
                return drv_error_set(err, DRV_ERR_PROTO, 0, "grpc: field %llu: truncated",
                                     (unsigned long long)field);
            pos += (size_t)v;
            break;
        default:
            return drv_error_set(err, DRV_ERR_PROTO, 0, "grpc: field %llu: wire type %u",
                                 (unsigned long long)field, wire);
        }
    }
    *status = st;
    return DRV_OK;
}
