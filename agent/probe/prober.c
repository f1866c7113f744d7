/* Runs probe attempts inside the agent's event loop without blocking it: httpGet and tcpSocket
 * as libcurl multi transfers, exec as a `crun exec` child whose output is read through a
 * non-blocking pipe and which is killed at its deadline. Memory is bounded: at most
 * max_attempts slots, each allocated once and reused. */
#include "probe/probe.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "drover/fmt.h"
#include "drover/proc.h"
#include "drover/cleanup.h"

#define PROBE_USER_AGENT "kube-probe/1.30"
#define HOOK_USER_AGENT "kube-lifecycle/1.30"
#define CAPTURE_MAX 256      /* head of a response body or a command's output kept */
#define HEADER_LINE_MAX 4096 /* one "Name: value" */
#define HOST_MAX 253
#define PREFIX_MAX 8
#define DRAIN_PER_CALL 65536 /* exec output read per process() call and pipe */
#define INFINITE_WAIT_MS 86400000
#define GRPC_SERVICE_MAX 120 /* grpc.service; the request's length fits one varint byte */

/* ---- parsing a probe's handler ---- */

typedef enum { H_EXEC = 0, H_HTTP, H_TCP, H_GRPC } handler_t;

/* A probe's handler; pointers borrow from the probe object. */
typedef struct action {
    handler_t type;
    const cJSON *command; /* exec: array of strings */
    size_t argc;
    const char *path; /* httpGet */
    const char *host; /* NULL: the target IP */
    bool https;
    int port;
    const cJSON *headers; /* httpGet.httpHeaders, may be NULL */
    int64_t timeout_ms;
    bool hook; /* a lifecycle hook: any HTTP response is a success, as the kubelet has it */
    const char *service; /* grpc.service ("" when absent) */
} action_t;

static bool valid_host(const char *h)
{
    size_t n = strlen(h);
    if (n == 0 || n > HOST_MAX)
        return false;
    bool v6 = strchr(h, ':') != NULL;
    for (const char *p = h; *p; p++) {
        char c = *p;
        bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
                  c == '.' || c == ':';
        if (!v6)
            ok = ok || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '_';
        if (!ok)
            return false;
    }
    return h[0] != '-' && h[0] != '.';
}

static bool tchar(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static drv_err_t parse_port(const cJSON *h, const char *what, const cJSON *container, int *port,
                            drv_error_t *err)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(h, "port");
    if (!p || cJSON_IsNull(p))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s.port: required", what);
    if (cJSON_IsNumber(p)) {
        double d = p->valuedouble;
        if (!(d >= 1 && d <= 65535) || d != (double)(int)d)
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "%s.port: must be a number from 1 to 65535 or a port name", what);
        *port = (int)d;
        return DRV_OK;
    }
    if (!cJSON_IsString(p) || !p->valuestring[0])
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "%s.port: must be a number from 1 to 65535 or a port name", what);
    const char *name = p->valuestring;
    const cJSON *ports = container ? cJSON_GetObjectItemCaseSensitive(container, "ports") : NULL;
    const cJSON *list = cJSON_IsArray(ports) ? ports : NULL, *cp;
    cJSON_ArrayForEach(cp, list)
    {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(cp, "name");
        if (!cJSON_IsString(n) || strcmp(n->valuestring, name) != 0)
            continue;
        const cJSON *num = cJSON_GetObjectItemCaseSensitive(cp, "containerPort");
        double d = cJSON_IsNumber(num) ? num->valuedouble : 0;
        if (!(d >= 1 && d <= 65535) || d != (double)(int)d)
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "%s.port: container port \"%.64s\" has no valid containerPort",
                                 what, name);
        *port = (int)d;
        return DRV_OK;
    }
    return drv_error_set(err, DRV_ERR_INVALID, 0, "%s.port: no container port named \"%.64s\"",
                         what, name);
}

static drv_err_t parse_host(const cJSON *h, const char *what, const char **host, drv_error_t *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(h, "host");
    *host = NULL;
    if (!v || cJSON_IsNull(v) || (cJSON_IsString(v) && !v->valuestring[0]))
        return DRV_OK;
    if (!cJSON_IsString(v) || !valid_host(v->valuestring))
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "%s.host: must be a host name or an IP address", what);
    *host = v->valuestring;
    return DRV_OK;
}

static drv_err_t parse_exec(const cJSON *ex, action_t *a, drv_error_t *err)
{
    if (!cJSON_IsObject(ex))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "exec: must be an object");
    const cJSON *cmd = cJSON_GetObjectItemCaseSensitive(ex, "command");
    if (!cmd || cJSON_IsNull(cmd))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "exec.command: required");
    if (!cJSON_IsArray(cmd) || !cmd->child)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "exec.command: must be a non-empty list of strings");
    size_t n = 0, bytes = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, cmd)
    {
        if (!cJSON_IsString(s))
            return drv_error_set(err, DRV_ERR_INVALID, 0, "exec.command[%zu]: must be a string", n);
        bytes += strlen(s->valuestring) + 1;
        if (++n > DRV_PROBE_EXEC_MAX_ARGS)
            return drv_error_set(err, DRV_ERR_INVALID, 0, "exec.command: more than %d elements",
                                 DRV_PROBE_EXEC_MAX_ARGS);
        if (bytes > DRV_PROBE_EXEC_MAX_BYTES)
            return drv_error_set(err, DRV_ERR_INVALID, 0, "exec.command: longer than %d bytes",
                                 DRV_PROBE_EXEC_MAX_BYTES);
    }
    if (!cmd->child->valuestring[0])
        return drv_error_set(err, DRV_ERR_INVALID, 0, "exec.command[0]: must not be empty");
    a->type = H_EXEC;
    a->command = cmd;
    a->argc = n;
    return DRV_OK;
}

static drv_err_t parse_headers(const cJSON *hg, action_t *a, drv_error_t *err)
{
    const cJSON *hh = cJSON_GetObjectItemCaseSensitive(hg, "httpHeaders");
    if (!hh || cJSON_IsNull(hh))
        return DRV_OK;
    if (!cJSON_IsArray(hh))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "httpGet.httpHeaders: must be a list");
    size_t i = 0;
    const cJSON *h;
    cJSON_ArrayForEach(h, hh)
    {
        if (i >= DRV_PROBE_HTTP_MAX_HEADERS)
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "httpGet.httpHeaders: more than %d headers",
                                 DRV_PROBE_HTTP_MAX_HEADERS);
        if (!cJSON_IsObject(h))
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "httpGet.httpHeaders[%zu]: must be an object", i);
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(h, "name");
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(h, "value");
        if (!cJSON_IsString(n) || !n->valuestring[0])
            return drv_error_set(err, DRV_ERR_INVALID, 0, "httpGet.httpHeaders[%zu].name: required",
                                 i);
        for (const char *p = n->valuestring; *p; p++)
            if (!tchar(*p))
                return drv_error_set(err, DRV_ERR_INVALID, 0,
                                     "httpGet.httpHeaders[%zu].name: invalid HTTP header name "
                                     "\"%.64s\"",
                                     i, n->valuestring);
        if (v && !cJSON_IsNull(v) && !cJSON_IsString(v))
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "httpGet.httpHeaders[%zu].value: must be a string", i);
        const char *val = cJSON_IsString(v) ? v->valuestring : "";
        if (strpbrk(val, "\r\n"))
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "httpGet.httpHeaders[%zu].value: may not contain line breaks", i);
        if (strlen(n->valuestring) + strlen(val) + 3 > HEADER_LINE_MAX)
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "httpGet.httpHeaders[%zu]: longer than %d bytes", i,
                                 HEADER_LINE_MAX - 3);
        i++;
    }
    a->headers = hh;
    return DRV_OK;
}

static drv_err_t parse_http(const cJSON *hg, const cJSON *container, action_t *a, drv_error_t *err)
{
    if (!cJSON_IsObject(hg))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "httpGet: must be an object");
    const cJSON *path = cJSON_GetObjectItemCaseSensitive(hg, "path");
    a->path = "/";
    if (path && !cJSON_IsNull(path)) {
        if (!cJSON_IsString(path))
            return drv_error_set(err, DRV_ERR_INVALID, 0, "httpGet.path: must be a string");
        if (path->valuestring[0]) {
            if (path->valuestring[0] != '/')
                return drv_error_set(err, DRV_ERR_INVALID, 0, "httpGet.path: must start with '/'");
            if (strlen(path->valuestring) > DRV_PROBE_PATH_MAX)
                return drv_error_set(err, DRV_ERR_INVALID, 0, "httpGet.path: longer than %d bytes",
                                     DRV_PROBE_PATH_MAX);
            a->path = path->valuestring;
        }
    }
    const cJSON *scheme = cJSON_GetObjectItemCaseSensitive(hg, "scheme");
    a->https = false;
    if (scheme && !cJSON_IsNull(scheme)) {
        if (!cJSON_IsString(scheme) ||
            (strcmp(scheme->valuestring, "HTTP") && strcmp(scheme->valuestring, "HTTPS")))
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "httpGet.scheme: must be \"HTTP\" or \"HTTPS\"");
        a->https = !strcmp(scheme->valuestring, "HTTPS");
    }
    drv_err_t r;
    if ((r = parse_port(hg, "httpGet", container, &a->port, err)) != DRV_OK ||
        (r = parse_host(hg, "httpGet", &a->host, err)) != DRV_OK ||
        (r = parse_headers(hg, a, err)) != DRV_OK)
        return r;
    a->type = H_HTTP;
    return DRV_OK;
}

static drv_err_t parse_tcp(const cJSON *ts, const cJSON *container, action_t *a, drv_error_t *err)
{
    if (!cJSON_IsObject(ts))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "tcpSocket: must be an object");
    drv_err_t r;
    if ((r = parse_port(ts, "tcpSocket", container, &a->port, err)) != DRV_OK ||
        (r = parse_host(ts, "tcpSocket", &a->host, err)) != DRV_OK)
        return r;
    a->type = H_TCP;
    return DRV_OK;
}

static drv_err_t parse_grpc(const cJSON *g, action_t *a, drv_error_t *err)
{
    if (!cJSON_IsObject(g))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "grpc: must be an object");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(g, "port");
    /* Unlike httpGet's, a gRPC probe's port is a number only (Kubernetes: int32). */
    if (!p || cJSON_IsNull(p))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "grpc.port: required");
    if (!cJSON_IsNumber(p) || !(p->valuedouble >= 1 && p->valuedouble <= 65535) ||
        p->valuedouble != (double)(int)p->valuedouble)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "grpc.port: must be a number from 1 to 65535");
    const cJSON *sv = cJSON_GetObjectItemCaseSensitive(g, "service");
    a->service = "";
    if (sv && !cJSON_IsNull(sv)) {
        if (!cJSON_IsString(sv))
            return drv_error_set(err, DRV_ERR_INVALID, 0, "grpc.service: must be a string");
        if (strlen(sv->valuestring) > GRPC_SERVICE_MAX)
            return drv_error_set(err, DRV_ERR_INVALID, 0, "grpc.service: longer than %d bytes",
                                 GRPC_SERVICE_MAX);
        a->service = sv->valuestring;
    }
    a->port = (int)p->valuedouble;
    a->type = H_GRPC;
    return DRV_OK;
}

static const cJSON *present(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNull(v) ? NULL : v;
}

static drv_err_t parse_action(const cJSON *probe, const cJSON *container, action_t *a,
                              drv_error_t *err)
{
    drv_probe_spec_t spec;
    drv_err_t r = drv_probe_spec_parse(probe, &spec, err);
    if (r != DRV_OK)
        return r;
    memset(a, 0, sizeof(*a));
    a->timeout_ms = spec.timeout_ms;
    const cJSON *ex = present(probe, "exec"), *hg = present(probe, "httpGet"),
                *ts = present(probe, "tcpSocket"), *gr = present(probe, "grpc");
    if ((ex != NULL) + (hg != NULL) + (ts != NULL) + (gr != NULL) != 1)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "must specify exactly one handler: exec, httpGet, tcpSocket or grpc");
    if (ex)
        return parse_exec(ex, a, err);
    if (hg)
        return parse_http(hg, container, a, err);
    if (gr)
        return parse_grpc(gr, a, err);
    return parse_tcp(ts, container, a, err);
}

drv_err_t drv_probe_validate(const cJSON *probe, const cJSON *container, drv_error_t *err)
{
    action_t a;
    return parse_action(probe, container, &a, err);
}

/* ---- the prober ---- */

typedef enum { S_FREE = 0, S_RUNNING, S_DONE } sstate_t;

typedef struct slot {
    sstate_t state;
    handler_t type;
    drv_prober_cb_t cb;
    void *ctx;
    drv_probe_result_t result;
    int64_t timeout_ms;
    bool hook; /* action_t.hook */
    /* transfers */
    char grpc_req[5 + 2 + GRPC_SERVICE_MAX]; /* the request message, framed (grpc) */
    int grpc_status;                         /* the grpc-status trailer, -1 until seen */
    char grpc_message[128];                  /* the grpc-message trailer */
    CURL *easy;
    struct curl_slist *headers;
    bool capped; /* the body went past the capture and the transfer was stopped on purpose */
    char target[HOST_MAX + 16]; /* "host:port" */
    char errbuf[CURL_ERROR_SIZE];
    /* exec */
    pid_t pid;  /* > 0 until handed to drv_prober_child_exited */
    int out_fd; /* read end of the output pipe, -1 when closed */
    int64_t deadline;
    /* the head of the body or output */
    size_t cap_len;
    char cap[CAPTURE_MAX];
    char detail[DRV_PROBER_DETAIL_MAX];
} slot_t;

struct drv_prober {
    CURLM *multi;
    unsigned max;
    slot_t **slots; /* max entries, each allocated on first use */
    struct curl_waitfd *wfds;
    size_t pending;  /* RUNNING or DONE */
    size_t children; /* pid > 0 */
    bool curl_inited;
};

drv_err_t drv_prober_new(const drv_prober_opts_t *opts, drv_prober_t **out, drv_error_t *err)
{
    unsigned max = opts && opts->max_attempts ? opts->max_attempts : DRV_PROBER_MAX_ATTEMPTS;
    if (max > 65536)
        return drv_error_set(err, DRV_ERR_RANGE, 0, "prober: max_attempts %u over 65536", max);
    if (drv_curl_load(err) != DRV_OK)
        return drv_error_wrap(err, "prober");
    drv_prober_t *pr = calloc(1, sizeof(*pr));
    if (!pr)
        return drv_error_set(err, DRV_ERR_NOMEM, ENOMEM, "prober");
    pr->max = max;
    pr->slots = calloc(max, sizeof(*pr->slots));
    pr->wfds = calloc(max + DRV_PROBER_MAX_EXTRA_FDS, sizeof(*pr->wfds));
    if (!pr->slots || !pr->wfds) {
        drv_prober_free(pr);
        return drv_error_set(err, DRV_ERR_NOMEM, ENOMEM, "prober");
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        drv_prober_free(pr);
        return drv_error_set(err, DRV_ERR_IO, 0, "prober: curl_global_init failed");
    }
    pr->curl_inited = true;
    pr->multi = curl_multi_init();
    if (!pr->multi) {
        drv_prober_free(pr);
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "prober: curl_multi_init failed");
    }
    *out = pr;
    return DRV_OK;
}

static void close_out(slot_t *s)
{
    if (s->out_fd >= 0) {
        close(s->out_fd);
        s->out_fd = -1;
    }
}

static void kill_child(slot_t *s)
{
    if (s->pid > 0) {
        /* The child leads its own process group: take what it started along with it. */
        kill(-s->pid, SIGKILL);
        kill(s->pid, SIGKILL);
    }
}

static void end_transfer(drv_prober_t *pr, slot_t *s)
{
    if (s->easy) {
        curl_multi_remove_handle(pr->multi, s->easy);
        curl_easy_cleanup(s->easy);
        s->easy = NULL;
    }
    curl_slist_free_all(s->headers);
    s->headers = NULL;
}

/* Drops an attempt without a callback. A child stays recorded until it is reaped. */
static void abort_slot(drv_prober_t *pr, slot_t *s)
{
    end_transfer(pr, s);
    if (s->state == S_RUNNING && s->type == H_EXEC)
        kill_child(s);
    close_out(s);
    if (s->state != S_FREE)
        pr->pending--;
    s->state = S_FREE;
}

void drv_prober_free(drv_prober_t *pr)
{
    if (!pr)
        return;
    for (unsigned i = 0; pr->slots && i < pr->max; i++) {
        slot_t *s = pr->slots[i];
        if (!s)
            continue;
        abort_slot(pr, s);
        if (s->pid > 0) {
            kill_child(s);
            while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR)
                ;
        }
        free(s);
    }
    if (pr->multi)
        curl_multi_cleanup(pr->multi);
    if (pr->curl_inited)
        curl_global_cleanup();
    free(pr->slots);
    free(pr->wfds);
    free(pr);
}

static drv_err_t take_slot(drv_prober_t *pr, slot_t **out, drv_error_t *err)
{
    for (unsigned i = 0; i < pr->max; i++) {
        slot_t *s = pr->slots[i];
        if (!s) {
            s = calloc(1, sizeof(*s));
            if (!s)
                return drv_error_set(err, DRV_ERR_NOMEM, ENOMEM, "probe attempt");
            s->out_fd = -1;
            pr->slots[i] = s;
        }
        if (s->state == S_FREE && s->pid <= 0 && s->out_fd < 0 && !s->easy) {
            *out = s;
            return DRV_OK;
        }
    }
    return drv_error_set(err, DRV_ERR_AGAIN, 0, "too many probe attempts in flight (%u)", pr->max);
}

/* Appends to the capture; returns how much was kept. */
static size_t capture(slot_t *s, const char *data, size_t n)
{
    size_t room = sizeof(s->cap) - 1 - s->cap_len;
    size_t take = n < room ? n : room;
    memcpy(s->cap + s->cap_len, data, take);
    s->cap_len += take;
    s->cap[s->cap_len] = '\0';
    return take;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    slot_t *s = ud;
    size_t n = size * nmemb;
    if (capture(s, data, n) < n) {
        /* The head is all a probe keeps (kubelet reads at most 10 KiB): stop the transfer. */
        s->capped = true;
        return 0;
    }
    return n;
}

/* Writes s (len bytes) as printable text: control characters become spaces, bytes that are
 * not valid UTF-8 become '?', trailing space is dropped. */
static void sanitize(char *dst, size_t dstsz, const char *src, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 1 < dstsz;) {
        unsigned char c = (unsigned char)src[i];
        size_t n = c < 0x80             ? 1
                   : (c & 0xe0) == 0xc0 ? 2
                   : (c & 0xf0) == 0xe0 ? 3
                   : (c & 0xf8) == 0xf0 ? 4
                                        : 0;
        bool ok = n > 0 && i + n <= len && !(n == 2 && c < 0xc2) && !(n == 4 && c > 0xf4);
        for (size_t k = 1; ok && k < n; k++)
            ok = ((unsigned char)src[i + k] & 0xc0) == 0x80;
        if (!ok) {
            dst[o++] = '?';
            i++;
            continue;
        }
        if (n == 1) {
            dst[o++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
            i++;
            continue;
        }
        if (o + n >= dstsz)
            break;
        memcpy(dst + o, src + i, n);
        o += n;
        i += n;
    }
    while (o > 0 && dst[o - 1] == ' ')
        o--;
    dst[o] = '\0';
}

/* Formats into s->detail, cut to fit. */
static void DRV_PRINTF(2, 3) detailf(slot_t *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    drv_vfmt_cut(s->detail, sizeof(s->detail), fmt, ap);
    va_end(ap);
}

/* detail = prefix [": " sanitized capture] */
static void set_detail(slot_t *s, const char *prefix)
{
    char text[DRV_PROBER_DETAIL_MAX];
    sanitize(text, sizeof(text), s->cap, s->cap_len);
    if (!prefix)
        detailf(s, "%s", text);
    else if (text[0])
        detailf(s, "%s: %s", prefix, text);
    else
        detailf(s, "%s", prefix);
}

/* Percent-encodes what may not stand in a URL path as it is. */
static bool encode_path(char *out, size_t outsz, const char *path)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        bool raw = *p > 0x20 && *p < 0x7f && !strchr("\"<>\\^`{|}", *p);
        if (o + (raw ? 1 : 3) >= outsz)
            return false;
        if (raw) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = '\0';
    return true;
}

/* Headers and trailers of a gRPC answer: grpc-status and grpc-message are kept. */
static size_t on_grpc_header(char *data, size_t size, size_t nmemb, void *ud)
{
    slot_t *s = ud;
    size_t n = size * nmemb;
    if (n > 12 && !strncasecmp(data, "grpc-status:", 12)) {
        char num[16];
        size_t k = n - 12 < sizeof(num) - 1 ? n - 12 : sizeof(num) - 1;
        memcpy(num, data + 12, k);
        num[k] = '\0';
        char *end = NULL;
        long v = strtol(num, &end, 10);
        s->grpc_status = end != num && v >= 0 && v < 1000 ? (int)v : 2; /* else: Unknown */
    } else if (n > 13 && !strncasecmp(data, "grpc-message:", 13)) {
        const char *v = data + 13;
        size_t k = n - 13;
        while (k && (*v == ' ' || *v == '\t'))
            v++, k--;
        while (k && (v[k - 1] == '\r' || v[k - 1] == '\n' || v[k - 1] == ' '))
            k--;
        sanitize(s->grpc_message, sizeof(s->grpc_message), v, k);
    }
    return n;
}

#define SETOPT(opt, val)                                                                           \
    do {                                                                                           \
        if (rc == CURLE_OK)                                                                        \
            rc = curl_easy_setopt(s->easy, opt, val);                                              \
    } while (0)

static drv_err_t start_transfer(drv_prober_t *pr, slot_t *s, const action_t *a, const char *host,
                                drv_error_t *err)
{
    char hostpart[HOST_MAX + 3];
    if (drv_fmt(hostpart, sizeof(hostpart), strchr(host, ':') ? "[%s]" : "%s", host) != DRV_OK ||
        drv_fmt(s->target, sizeof(s->target), "%s:%d", hostpart, a->port) != DRV_OK)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "host: too long");
    char path[DRV_PROBE_PATH_MAX * 3 + 1];
    if (!encode_path(path, sizeof(path),
                     a->type == H_HTTP   ? a->path
                     : a->type == H_GRPC ? "/grpc.health.v1.Health/Check"
                                         : "/"))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "httpGet.path: too long");
    char url[sizeof(path) + sizeof(s->target) + 16];
    if (drv_fmt(url, sizeof(url), "%s://%s%s", a->type == H_HTTP && a->https ? "https" : "http",
                s->target, path) != DRV_OK)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "httpGet: URL too long");

    s->easy = curl_easy_init();
    if (!s->easy)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "probe: curl_easy_init failed");
    long timeout = a->timeout_ms > LONG_MAX ? LONG_MAX : (long)a->timeout_ms;
    if (timeout > INT32_MAX)
        timeout = INT32_MAX;
    CURLcode rc = CURLE_OK;
    SETOPT(CURLOPT_URL, url);
    SETOPT(CURLOPT_PRIVATE, (void *)s);
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    SETOPT(CURLOPT_ERRORBUFFER, s->errbuf);
    SETOPT(CURLOPT_TIMEOUT_MS, timeout);
    SETOPT(CURLOPT_CONNECTTIMEOUT_MS, timeout);
    /* Like kubelet: a fresh connection each time, no proxy, no redirects followed (a 3xx
     * counts as success), no certificate checks. */
    SETOPT(CURLOPT_FRESH_CONNECT, 1L);
    SETOPT(CURLOPT_FORBID_REUSE, 1L);
    SETOPT(CURLOPT_PROXY, "");
    SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
    SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
    if (a->type == H_TCP) {
        SETOPT(CURLOPT_CONNECT_ONLY, 1L);
    } else if (a->type == H_GRPC) {
        /* grpc.health.v1.Health/Check over HTTP/2 without TLS (prior knowledge), as the
         * kubelet's gRPC probe: one HealthCheckRequest {service = 1}, framed. */
        size_t sl = strlen(a->service), n = 5;
        size_t mlen = sl ? 2 + sl : 0; /* sl <= GRPC_SERVICE_MAX: one-byte varints */
        s->grpc_req[0] = 0;
        s->grpc_req[1] = s->grpc_req[2] = s->grpc_req[3] = 0;
        s->grpc_req[4] = (char)mlen;
        if (sl) {
            s->grpc_req[n++] = 0x0a;
            s->grpc_req[n++] = (char)sl;
            memcpy(s->grpc_req + n, a->service, sl);
            n += sl;
        }
        s->grpc_status = -1;
        s->grpc_message[0] = '\0';
        SETOPT(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
        SETOPT(CURLOPT_POST, 1L);
        SETOPT(CURLOPT_POSTFIELDS, s->grpc_req);
        SETOPT(CURLOPT_POSTFIELDSIZE, (long)n);
        SETOPT(CURLOPT_USERAGENT, PROBE_USER_AGENT);
        SETOPT(CURLOPT_WRITEFUNCTION, on_body);
        SETOPT(CURLOPT_WRITEDATA, (void *)s);
        SETOPT(CURLOPT_HEADERFUNCTION, on_grpc_header);
        SETOPT(CURLOPT_HEADERDATA, (void *)s);
        static const char hdrs[][31] = {"Content-Type: application/grpc", "TE: trailers",
                                        "Expect:"};
        for (size_t i = 0; i < 3; i++) {
            struct curl_slist *l = curl_slist_append(s->headers, hdrs[i]);
            if (!l) {
                end_transfer(pr, s);
                return drv_error_set(err, DRV_ERR_NOMEM, ENOMEM, "probe headers");
            }
            s->headers = l;
        }
        SETOPT(CURLOPT_HTTPHEADER, s->headers);
    } else {
        SETOPT(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
        SETOPT(CURLOPT_SSL_VERIFYPEER, 0L);
        SETOPT(CURLOPT_SSL_VERIFYHOST, 0L);
        SETOPT(CURLOPT_USERAGENT, a->hook ? HOOK_USER_AGENT : PROBE_USER_AGENT);
        SETOPT(CURLOPT_WRITEFUNCTION, on_body);
        SETOPT(CURLOPT_WRITEDATA, (void *)s);
        const cJSON *h;
        cJSON_ArrayForEach(h, a->headers)
        {
            const cJSON *n = cJSON_GetObjectItemCaseSensitive(h, "name");
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(h, "value");
            const char *val = cJSON_IsString(v) ? v->valuestring : "";
            char line[HEADER_LINE_MAX];
            /* curl sends "Name;" as an empty header ("Name:" would remove it). */
            drv_err_t fr = val[0] ? drv_fmt(line, sizeof(line), "%s: %s", n->valuestring, val)
                                  : drv_fmt(line, sizeof(line), "%s;", n->valuestring);
            if (fr != DRV_OK) {
                end_transfer(pr, s);
                return drv_error_set(err, DRV_ERR_INVALID, 0,
                                     "httpGet.httpHeaders: %.64s: too long", n->valuestring);
            }
            struct curl_slist *l = curl_slist_append(s->headers, line);
            if (!l) {
                end_transfer(pr, s);
                return drv_error_set(err, DRV_ERR_NOMEM, ENOMEM, "probe headers");
            }
            s->headers = l;
        }
        SETOPT(CURLOPT_HTTPHEADER, s->headers);
    }
    if (rc != CURLE_OK) {
        end_transfer(pr, s);
        return drv_error_set(err, DRV_ERR_IO, 0, "probe %s: %s", s->target, curl_easy_strerror(rc));
    }
    CURLMcode mc = curl_multi_add_handle(pr->multi, s->easy);
    if (mc != CURLM_OK) {
        curl_easy_cleanup(s->easy);
        s->easy = NULL;
        end_transfer(pr, s);
        return drv_error_set(err, mc == CURLM_OUT_OF_MEMORY ? DRV_ERR_NOMEM : DRV_ERR_IO, 0,
                             "probe %s: %s", s->target, curl_multi_strerror(mc));
    }
    return DRV_OK;
}

static drv_err_t start_exec(slot_t *s, const action_t *a, const drv_prober_exec_t *ex,
                            drv_error_t *err)
{
    if (!ex || !ex->container_id || !ex->container_id[0] || ex->container_id[0] == '-')
        return drv_error_set(err, DRV_ERR_INVALID, 0, "exec: no container to run the command in");
    if (ex->argv_prefix ? (ex->n_prefix == 0 || ex->n_prefix > PREFIX_MAX || !ex->argv_prefix[0])
                        : (!ex->crun || !ex->crun[0]))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "exec: no crun program given");
    char *argv[PREFIX_MAX + 4 + DRV_PROBE_EXEC_MAX_ARGS + 1];
    size_t n = 0;
    if (ex->argv_prefix) {
        for (size_t i = 0; i < ex->n_prefix; i++) {
            if (!ex->argv_prefix[i])
                return drv_error_set(err, DRV_ERR_INVALID, 0, "exec: crun argv[%zu] is NULL", i);
            argv[n++] = (char *)ex->argv_prefix[i];
        }
    } else {
        argv[n++] = (char *)ex->crun;
        if (ex->root && ex->root[0]) {
            argv[n++] = "--root";
            argv[n++] = (char *)ex->root;
        }
    }
    argv[n++] = "exec";
    argv[n++] = (char *)ex->container_id;
    const cJSON *c;
    cJSON_ArrayForEach(c, a->command)
    {
        argv[n++] = c->valuestring;
    }
    argv[n] = NULL;

    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return drv_error_set(err, DRV_ERR_IO, errno, "exec probe: pipe");
    _cleanup_close_ int rfd = p[0];
    _cleanup_close_ int wfd = p[1];
    if (fcntl(rfd, F_SETFL, O_NONBLOCK) < 0)
        return drv_error_set(err, DRV_ERR_IO, errno, "exec probe: pipe");

    /* Its own process group (killed as one at the deadline), signals as a new program
     * expects them whatever the agent blocks or ignores, nothing else of the agent's open. */
    drv_proc_opts_t o = {
        .argv = argv, .in_fd = -1, .out_fd = wfd, .err_fd = wfd, .new_pgroup = true};
    pid_t pid = -1;
    drv_error_t se = DRV_ERROR_INIT;
    if (drv_proc_start(&o, &pid, &se) != DRV_OK)
        return drv_error_set(err, DRV_ERR_IO, se.sys_errno, "exec probe: run %s", argv[0]);
    s->pid = pid;
    s->out_fd = TAKE_FD(rfd);
    return DRV_OK;
}

static drv_err_t start_action(drv_prober_t *pr, const action_t *ap, const char *target_ip,
                              const drv_prober_exec_t *exec, drv_prober_cb_t cb, void *ctx,
                              drv_error_t *err)
{
    action_t a = *ap;
    drv_err_t r;
    const char *host = a.host;
    if (a.type != H_EXEC && !host) {
        const char *what = a.type == H_HTTP ? "httpGet" : "tcpSocket";
        if (!target_ip || !target_ip[0])
            return drv_error_set(err, DRV_ERR_INVALID, 0, "%s.host: not set and the pod has no IP",
                                 what);
        if (!valid_host(target_ip))
            return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: bad pod IP \"%.64s\"", what,
                                 target_ip);
        host = target_ip;
    }
    slot_t *s = NULL;
    if ((r = take_slot(pr, &s, err)) != DRV_OK)
        return r;
    s->type = a.type;
    s->cb = cb;
    s->ctx = ctx;
    s->timeout_ms = a.timeout_ms;
    s->hook = a.hook;
    s->capped = false;
    s->cap_len = 0;
    s->cap[0] = '\0';
    s->errbuf[0] = '\0';
    s->detail[0] = '\0';
    s->target[0] = '\0';
    r = a.type == H_EXEC ? start_exec(s, &a, exec, err) : start_transfer(pr, s, &a, host, err);
    if (r != DRV_OK)
        return r;
    if (a.type == H_EXEC) {
        s->deadline = drv_now_ms() + a.timeout_ms;
        pr->children++;
    }
    s->state = S_RUNNING;
    pr->pending++;
    return DRV_OK;
}

drv_err_t drv_prober_start(drv_prober_t *pr, const cJSON *probe, const cJSON *container,
                           const char *target_ip, const drv_prober_exec_t *exec, drv_prober_cb_t cb,
                           void *ctx, drv_error_t *err)
{
    if (!pr || !cb)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "probe: no prober or callback");
    action_t a;
    drv_err_t r = parse_action(probe, container, &a, err);
    if (r != DRV_OK)
        return r;
    return start_action(pr, &a, target_ip, exec, cb, ctx, err);
}

drv_err_t drv_prober_start_hook(drv_prober_t *pr, const cJSON *handler, const cJSON *container,
                                const char *target_ip, const drv_prober_exec_t *exec,
                                int64_t timeout_ms, drv_prober_cb_t cb, void *ctx, drv_error_t *err)
{
    if (!pr || !cb)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "hook: no prober or callback");
    if (!cJSON_IsObject(handler))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "hook: must be an object");
    action_t a;
    memset(&a, 0, sizeof(a));
    const cJSON *ex = present(handler, "exec"), *hg = present(handler, "httpGet");
    drv_err_t r;
    if ((ex != NULL) + (hg != NULL) != 1)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "hook: must specify exactly one handler: exec or httpGet");
    r = ex ? parse_exec(ex, &a, err) : parse_http(hg, container, &a, err);
    if (r != DRV_OK)
        return r;
    a.hook = true;
    a.timeout_ms = timeout_ms < 1 ? 1 : timeout_ms > INT32_MAX ? INT32_MAX : timeout_ms;
    return start_action(pr, &a, target_ip, exec, cb, ctx, err);
}

size_t drv_prober_cancel(drv_prober_t *pr, void *ctx)
{
    size_t n = 0;
    for (unsigned i = 0; pr && i < pr->max; i++) {
        slot_t *s = pr->slots[i];
        if (s && s->state != S_FREE && s->ctx == ctx) {
            abort_slot(pr, s);
            n++;
        }
    }
    return n;
}

drv_err_t drv_prober_wait(drv_prober_t *pr, struct curl_waitfd *extra, unsigned n, int timeout_ms,
                          int *nready, drv_error_t *err)
{
    if (n > DRV_PROBER_MAX_EXTRA_FDS)
        return drv_error_set(err, DRV_ERR_RANGE, 0, "prober wait: %u fds, at most %d", n,
                             DRV_PROBER_MAX_EXTRA_FDS);
    if (n && !extra)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "prober wait: no fds");
    int64_t limit = timeout_ms < 0 ? INFINITE_WAIT_MS : timeout_ms;
    unsigned cnt = 0;
    for (unsigned i = 0; i < n; i++) {
        pr->wfds[cnt] = extra[i];
        pr->wfds[cnt++].revents = 0;
    }
    int64_t now = drv_now_ms();
    for (unsigned i = 0; i < pr->max; i++) {
        slot_t *s = pr->slots[i];
        if (!s)
            continue;
        if (s->state == S_DONE)
            limit = 0;
        if (s->state != S_RUNNING || s->type != H_EXEC)
            continue;
        if (s->deadline - now < limit)
            limit = s->deadline - now < 0 ? 0 : s->deadline - now;
        if (s->out_fd >= 0)
            pr->wfds[cnt++] = (struct curl_waitfd){.fd = s->out_fd, .events = CURL_WAIT_POLLIN};
    }
    int ready = 0;
    CURLMcode mc = curl_multi_poll(pr->multi, pr->wfds, cnt, (int)limit, &ready);
    if (mc != CURLM_OK)
        return drv_error_set(err, DRV_ERR_IO, 0, "prober wait: %s", curl_multi_strerror(mc));
    for (unsigned i = 0; i < n; i++)
        extra[i].revents = pr->wfds[i].revents;
    if (nready)
        *nready = ready;
    return DRV_OK;
}

/* Reads what the child wrote, at most max bytes this time; closes the pipe at EOF. */
static void drain(slot_t *s, size_t max)
{
    char buf[4096];
    size_t total = 0;
    while (s->out_fd >= 0 && total < max) {
        ssize_t r = read(s->out_fd, buf, sizeof(buf));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (r <= 0) {
            close_out(s);
            return;
        }
        capture(s, buf, (size_t)r); /* past the capture: read and dropped */
        total += (size_t)r;
    }
}

/* The verdict of a gRPC health check, with the kubelet's wording. */
static void finish_grpc(slot_t *s, CURLcode rc, long code, const char *why)
{
    char nb[32];
    s->result = DRV_PROBE_FAILURE;
    if (rc == CURLE_OPERATION_TIMEDOUT) {
        detailf(s, "timeout: health rpc to %s did not complete within %lld s", s->target,
                (long long)(s->timeout_ms / 1000));
        return;
    }
    if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && s->capped)) {
        detailf(s, "failed to connect service \"%s\": %s", s->target, why);
        return;
    }
    if (s->grpc_status > 0) {
        detailf(s, "rpc error: code = %s desc = %s",
                drv_grpc_code_name(s->grpc_status, nb, sizeof(nb)), s->grpc_message);
        return;
    }
    if (code != 200) {
        detailf(s, "health rpc to %s: HTTP status %ld, not a gRPC answer", s->target, code);
        return;
    }
    uint64_t st = 0;
    drv_error_t perr = DRV_ERROR_INIT;
    if (drv_grpc_health_parse((const uint8_t *)s->cap, s->cap_len, &st, &perr) != DRV_OK) {
        detailf(s, "health rpc to %s: %s", s->target, drv_error_msg(&perr));
        return;
    }
    if (st != DRV_GRPC_SERVING) {
        detailf(s, "service unhealthy (responded with \"%s\")",
                drv_grpc_status_name(st, nb, sizeof(nb)));
        return;
    }
    s->result = DRV_PROBE_SUCCESS;
    detailf(s, "gRPC health check to %s: SERVING", s->target);
}

static void finish_transfer(slot_t *s, CURLcode rc)
{
    long code = 0;
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &code);
    const char *why = s->errbuf[0] ? s->errbuf : curl_easy_strerror(rc);
    char prefix[DRV_PROBER_DETAIL_MAX];
    if (s->type == H_TCP) {
        s->result = rc == CURLE_OK ? DRV_PROBE_SUCCESS : DRV_PROBE_FAILURE;
        if (rc == CURLE_OK)
            detailf(s, "TCP connection to %s established", s->target);
        else if (rc == CURLE_OPERATION_TIMEDOUT)
            detailf(s, "dial tcp %s: timed out after %lld s", s->target,
                    (long long)(s->timeout_ms / 1000));
        else
            detailf(s, "dial tcp %s: %s", s->target, why);
        return;
    }
    if (s->type == H_GRPC) {
        finish_grpc(s, rc, code, why);
        return;
    }
    const char *url = NULL;
    curl_easy_getinfo(s->easy, CURLINFO_EFFECTIVE_URL, &url);
    if (!url)
        url = s->target;
    if (rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && s->capped)) {
        if (s->hook) {
            /* The kubelet fails an HTTP hook only when no response comes. */
            s->result = DRV_PROBE_SUCCESS;
            detailf(s, "HTTP lifecycle hook answered with statuscode: %ld", code);
        } else if (code >= 200 && code < 400) {
            s->result = DRV_PROBE_SUCCESS;
            detailf(s, "HTTP probe succeeded with statuscode: %ld", code);
        } else {
            s->result = DRV_PROBE_FAILURE;
            drv_fmt_cut(prefix, sizeof(prefix), "HTTP probe failed with statuscode: %ld", code);
            set_detail(s, prefix);
        }
        return;
    }
    s->result = DRV_PROBE_FAILURE;
    if (rc == CURLE_OPERATION_TIMEDOUT)
        detailf(s, "GET %.300s: timed out after %lld s", url, (long long)(s->timeout_ms / 1000));
    else
        detailf(s, "GET %.300s: %s", url, why);
}

static void finish_exec(slot_t *s, int status)
{
    char prefix[64];
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        s->result = DRV_PROBE_SUCCESS;
        set_detail(s, NULL);
        return;
    }
    s->result = DRV_PROBE_FAILURE;
    if (WIFEXITED(status))
        drv_fmt_cut(prefix, sizeof(prefix), "command exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        drv_fmt_cut(prefix, sizeof(prefix), "command killed by signal %d", WTERMSIG(status));
    else
        drv_fmt_cut(prefix, sizeof(prefix), "command ended with wait status %#x", status);
    set_detail(s, prefix);
}

bool drv_prober_child_exited(drv_prober_t *pr, pid_t pid, int wait_status)
{
    if (!pr || pid <= 0)
        return false;
    for (unsigned i = 0; i < pr->max; i++) {
        slot_t *s = pr->slots[i];
        if (!s || s->pid != pid)
            continue;
        s->pid = 0;
        pr->children--;
        if (s->state == S_RUNNING && s->type == H_EXEC) {
            /* What it wrote before exiting is in the pipe; a grandchild may hold the pipe
             * open, so read what is there and no more. */
            drain(s, DRAIN_PER_CALL);
            close_out(s);
            finish_exec(s, wait_status);
            s->state = S_DONE;
        }
        return true;
    }
    return false;
}

void drv_prober_process(drv_prober_t *pr, int64_t now)
{
    if (!pr)
        return;
    int running = 0;
    curl_multi_perform(pr->multi, &running);
    CURLMsg *m;
    int left = 0;
    while ((m = curl_multi_info_read(pr->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURL *easy = m->easy_handle;
        CURLcode rc = m->data.result;
        char *priv = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
        slot_t *s = (slot_t *)priv;
        if (!s || s->easy != easy || s->state != S_RUNNING) {
            curl_multi_remove_handle(pr->multi, easy);
            continue;
        }
        finish_transfer(s, rc);
        end_transfer(pr, s);
        s->state = S_DONE;
    }
    for (unsigned i = 0; i < pr->max; i++) {
        slot_t *s = pr->slots[i];
        if (!s || s->state != S_RUNNING || s->type != H_EXEC)
            continue;
        drain(s, DRAIN_PER_CALL);
        if (now >= s->deadline) {
            /* kubelet: a command past timeoutSeconds is a failure. The child is reaped later. */
            kill_child(s);
            close_out(s);
            s->result = DRV_PROBE_FAILURE;
            detailf(s, "command timed out after %lld s", (long long)(s->timeout_ms / 1000));
            s->state = S_DONE;
        }
    }
    for (unsigned i = 0; i < pr->max; i++) {
        slot_t *s = pr->slots[i];
        if (!s || s->state != S_DONE)
            continue;
        /* Release first: the callback may start the next attempt in this very slot. */
        char detail[DRV_PROBER_DETAIL_MAX];
        memcpy(detail, s->detail, sizeof(detail));
        drv_prober_cb_t cb = s->cb;
        void *ctx = s->ctx;
        drv_probe_result_t res = s->result;
        s->state = S_FREE;
        pr->pending--;
        cb(ctx, res, detail);
    }
}

size_t drv_prober_pending(const drv_prober_t *pr)
{
    return pr ? pr->pending : 0;
}

size_t drv_prober_children(const drv_prober_t *pr)
{
    return pr ? pr->children : 0;
}
