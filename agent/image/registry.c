/* Registry client over libcurl, after the OCI Distribution spec: GET /v2/<name>/manifests/<ref>
 * and /v2/<name>/blobs/<digest>, with the token dance of the Docker registry auth spec on a
 * 401. Whatever a registry sends is bounded (manifest and token sizes, blob sizes from the
 * descriptor) and verified by digest before it is used. */
#include "registry.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include "net/curl.h"
#include <cjson/cJSON.h>

#include "drover/base64.h"
#include "drover/cleanup.h"
#include "drover/fmt.h"

#define AUTH_CACHE_SIZE 16
#define TOKEN_BODY_MAX (1u << 20)
#define TOKEN_MAX (64u * 1024)
#define ERRBODY_MAX 2048
#define URL_MAX 4096
#define BLOB_ATTEMPTS 4

#define ACCEPT_MANIFESTS                                                                           \
    "Accept: " DRV_MT_OCI_INDEX ", " DRV_MT_OCI_MANIFEST ", " DRV_MT_DOCKER_LIST                   \
    ", " DRV_MT_DOCKER_MANIFEST

typedef struct auth_entry {
    char host[DRV_REF_DOMAIN_MAX];
    char repo[DRV_REF_PATH_MAX]; /* "" for host-wide basic credentials */
    char *header;                /* "Authorization: ..." */
    time_t expires;              /* 0: never */
} auth_entry_t;

typedef struct cred {
    char *host, *user, *pass;
} cred_t;

struct drv_registry {
    CURL *curl;
    char **insecure;
    size_t n_insecure;
    cred_t *creds;
    size_t n_creds;
    char *ca_file;
    long connect_timeout, stall_timeout, max_redirects;
    auth_entry_t auth[AUTH_CACHE_SIZE];
    unsigned auth_next;
    uint64_t bytes;
};

/* One HTTP exchange: what to send, where the body goes, what came back. */
typedef struct http_req {
    drv_registry_t *reg;
    const char *url;
    bool insecure; /* plain http allowed, also for redirects */
    const char *accept;
    const char *auth;
    uint64_t range_from;
    drv_buf_t *body;         /* sink for 2xx bodies, or */
    drv_blob_writer_t *blob; /* ... this one */
    /* results */
    long status;
    char content_type[DRV_MEDIA_TYPE_MAX];
    char docker_digest[DRV_DIGEST_STR_MAX + 16];
    char www_auth[2048];
    char content_range[128];
    char errbody[ERRBODY_MAX];
    size_t errlen;
    bool count;   /* add 2xx body bytes to the client's counter (manifests, blobs) */
    bool started; /* a 2xx body (or its absence) was handled */
    uint64_t received;
    bool failed; /* the sink refused data: werr says why */
    drv_error_t werr;
} http_req_t;

/* ---- setup ---- */

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

void drv_registry_free(drv_registry_t *reg)
{
    if (reg == NULL)
        return;
    if (reg->curl)
        curl_easy_cleanup(reg->curl);
    for (size_t i = 0; i < reg->n_insecure; i++)
        free(reg->insecure[i]);
    free(reg->insecure);
    for (size_t i = 0; i < reg->n_creds; i++) {
        free(reg->creds[i].host);
        free(reg->creds[i].user);
        if (reg->creds[i].pass) {
            explicit_bzero(reg->creds[i].pass, strlen(reg->creds[i].pass));
            free(reg->creds[i].pass);
        }
    }
    free(reg->creds);
    free(reg->ca_file);
    for (size_t i = 0; i < AUTH_CACHE_SIZE; i++)
        free(reg->auth[i].header);
    free(reg);
}

static void registry_freep(drv_registry_t **p)
{
    drv_registry_free(*p);
}

drv_err_t drv_registry_new(const drv_registry_opts_t *opts, drv_registry_t **out, drv_error_t *err)
{
    static const drv_registry_opts_t none = {0};
    if (opts == NULL)
        opts = &none;
    if (drv_curl_load(err) != DRV_OK)
        return drv_error_wrap(err, "registry client");
    __attribute__((cleanup(registry_freep))) drv_registry_t *reg = calloc(1, sizeof(*reg));
    if (reg == NULL)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "registry client: out of memory");
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || (reg->curl = curl_easy_init()) == NULL)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "registry client: libcurl init failed");
    if (opts->n_insecure) {
        reg->insecure = calloc(opts->n_insecure, sizeof(char *));
        if (reg->insecure == NULL)
            return drv_error_set(err, DRV_ERR_NOMEM, 0, "registry client: out of memory");
        for (; reg->n_insecure < opts->n_insecure; reg->n_insecure++) {
            const char *h = opts->insecure[reg->n_insecure];
            if (h == NULL || *h == '\0' || strlen(h) >= DRV_REF_DOMAIN_MAX)
                return drv_error_set(err, DRV_ERR_INVALID, 0, "insecure[%zu]: must be HOST[:PORT]",
                                     reg->n_insecure);
            if ((reg->insecure[reg->n_insecure] = strdup(h)) == NULL)
                return drv_error_set(err, DRV_ERR_NOMEM, 0, "registry client: out of memory");
        }
    }
    if (opts->n_creds) {
        reg->creds = calloc(opts->n_creds, sizeof(cred_t));
        if (reg->creds == NULL)
            return drv_error_set(err, DRV_ERR_NOMEM, 0, "registry client: out of memory");
        for (; reg->n_creds < opts->n_creds; reg->n_creds++) {
            const drv_registry_cred_t *c = &opts->creds[reg->n_creds];
            if (c->host == NULL || c->host[0] == '\0' || c->username == NULL ||
                c->password == NULL || strchr(c->username, ':') != NULL)
                return drv_error_set(err, DRV_ERR_INVALID, 0,
                                     "creds[%zu]: needs a host, a user name without ':' and a "
                                     "password",
                                     reg->n_creds);
            cred_t *d = &reg->creds[reg->n_creds];
            d->host = strdup(c->host);
            d->user = strdup(c->username);
            d->pass = strdup(c->password);
            if (!d->host || !d->user || !d->pass) {
                reg->n_creds++;
                return drv_error_set(err, DRV_ERR_NOMEM, 0, "registry client: out of memory");
            }
        }
    }
    if (opts->ca_file && (reg->ca_file = xstrdup(opts->ca_file)) == NULL)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "registry client: out of memory");
    reg->connect_timeout = opts->connect_timeout > 0 ? opts->connect_timeout : 15;
    reg->stall_timeout = opts->stall_timeout > 0 ? opts->stall_timeout : 60;
    reg->max_redirects = opts->max_redirects > 0 ? opts->max_redirects : 5;
    *out = TAKE_PTR(reg);
    return DRV_OK;
}

uint64_t drv_registry_bytes_received(const drv_registry_t *reg)
{
    return reg->bytes;
}

static bool host_listed(char *const *list, size_t n, const char *host)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(list[i], host) == 0)
            return true;
    return false;
}

static bool is_insecure(const drv_registry_t *reg, const drv_image_ref_t *ref)
{
    return host_listed(reg->insecure, reg->n_insecure, ref->domain) ||
           host_listed(reg->insecure, reg->n_insecure, drv_image_ref_api_host(ref));
}

static const cred_t *find_cred(const drv_registry_t *reg, const drv_image_ref_t *ref)
{
    for (size_t i = 0; i < reg->n_creds; i++)
        if (!strcasecmp(reg->creds[i].host, ref->domain) ||
            !strcasecmp(reg->creds[i].host, drv_image_ref_api_host(ref)))
            return &reg->creds[i];
    return NULL;
}

/* ---- HTTP ---- */

static bool header_is(const char *line, size_t n, const char *name, const char **val, size_t *vlen)
{
    size_t kl = strlen(name);
    if (n <= kl || strncasecmp(line, name, kl) != 0 || line[kl] != ':')
        return false;
    const char *v = line + kl + 1;
    const char *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *val = v;
    *vlen = (size_t)(end - v);
    return true;
}

static void set_hdr(char *dst, size_t dstsz, const char *v, size_t n)
{
    if (n >= dstsz)
        n = dstsz - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

static size_t on_header(char *line, size_t size, size_t nitems, void *ud)
{
    http_req_t *r = ud;
    size_t n = size * nitems;
    const char *v;
    size_t vl;
    if (n >= 5 && !strncmp(line, "HTTP/", 5)) {
        /* a new response (after a redirect or a 100): forget the previous one's headers */
        r->content_type[0] = r->docker_digest[0] = r->www_auth[0] = r->content_range[0] = '\0';
    } else if (header_is(line, n, "content-type", &v, &vl)) {
        set_hdr(r->content_type, sizeof(r->content_type), v, vl);
    } else if (header_is(line, n, "docker-content-digest", &v, &vl)) {
        set_hdr(r->docker_digest, sizeof(r->docker_digest), v, vl);
    } else if (header_is(line, n, "content-range", &v, &vl)) {
        set_hdr(r->content_range, sizeof(r->content_range), v, vl);
    } else if (header_is(line, n, "www-authenticate", &v, &vl)) {
        /* several challenges may come: prefer Bearer, else the first */
        if (r->www_auth[0] == '\0' || (strncasecmp(r->www_auth, "bearer", 6) != 0 && vl >= 6 &&
                                       strncasecmp(v, "bearer", 6) == 0))
            set_hdr(r->www_auth, sizeof(r->www_auth), v, vl);
    }
    return n;
}

static size_t sink_fail(http_req_t *r)
{
    r->failed = true;
    return 0; /* makes libcurl stop with CURLE_WRITE_ERROR */
}

/* The first bytes of a 2xx body to a blob writer: check the range we asked for was honoured,
 * or start over when the server sent the whole blob. */
static bool blob_start(http_req_t *r)
{
    r->started = true;
    if (r->range_from == 0) {
        if (r->status == 206) {
            drv_error_set(&r->werr, DRV_ERR_PROTO, 0, "HTTP 206 to a request without Range");
            return false;
        }
        return true;
    }
    if (r->status == 206) {
        unsigned long long start = 0;
        if (sscanf(r->content_range, "bytes %llu-", &start) != 1 || start != r->range_from) {
            drv_error_set(&r->werr, DRV_ERR_PROTO, 0,
                          "asked for bytes from %llu, got Content-Range \"%s\"",
                          (unsigned long long)r->range_from, r->content_range);
            return false;
        }
        return true;
    }
    /* 200: the server ignored Range and sends everything */
    return drv_blob_writer_restart(r->blob, &r->werr) == DRV_OK;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    http_req_t *r = ud;
    size_t n = size * nmemb;
    long code = 0;
    curl_easy_getinfo(r->reg->curl, CURLINFO_RESPONSE_CODE, &code);
    r->status = code;
    if (code < 200 || code >= 300) {
        size_t room = sizeof(r->errbody) - 1 - r->errlen;
        size_t take = n < room ? n : room;
        memcpy(r->errbody + r->errlen, data, take);
        r->errlen += take;
        r->errbody[r->errlen] = '\0';
        return n;
    }
    if (r->blob) {
        if (!r->started && !blob_start(r))
            return sink_fail(r);
        if (drv_blob_writer_write(r->blob, data, n, &r->werr) != DRV_OK)
            return sink_fail(r);
    } else if (r->body) {
        if (drv_buf_append(r->body, data, n) != DRV_OK) {
            drv_error_set(&r->werr, DRV_ERR_TOOBIG, 0, "response is larger than %zu bytes",
                          r->body->max);
            return sink_fail(r);
        }
    }
    r->received += n;
    if (r->count)
        r->reg->bytes += n;
    return n;
}

static drv_err_t curl_code(CURLcode c)
{
    switch (c) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return DRV_ERR_AGAIN;
    case CURLE_OUT_OF_MEMORY:
        return DRV_ERR_NOMEM;
    case CURLE_URL_MALFORMAT:
        return DRV_ERR_INVALID;
    case CURLE_WRITE_ERROR:
        return DRV_ERR_IO;
    default:
        return DRV_ERR_PROTO;
    }
}

static void slist_freep(struct curl_slist **l)
{
    curl_slist_free_all(*l);
}

/* Performs r. DRV_OK means a response arrived (any status: see r->status). */
static drv_err_t http_perform(http_req_t *r, drv_error_t *err)
{
    CURL *c = r->reg->curl;
    r->status = 0;
    r->content_type[0] = r->docker_digest[0] = r->www_auth[0] = r->content_range[0] = '\0';
    r->errbody[0] = '\0';
    r->errlen = 0;
    r->started = false;
    r->received = 0;
    r->failed = false;
    drv_error_clear(&r->werr);

    __attribute__((cleanup(slist_freep))) struct curl_slist *hdrs = NULL;
    struct curl_slist *t;
    if (r->accept && (t = curl_slist_append(hdrs, r->accept)) != NULL)
        hdrs = t;
    if (r->auth && (t = curl_slist_append(hdrs, r->auth)) != NULL)
        hdrs = t;
    char range[64] = "";
    if (r->range_from > 0 &&
        drv_fmt(range, sizeof(range), "%llu-", (unsigned long long)r->range_from) != DRV_OK)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "range: cannot format");
    char errbuf[CURL_ERROR_SIZE] = "";

    const char *protos = r->insecure ? "http,https" : "https";
    curl_easy_reset(c);
    bool ok = curl_easy_setopt(c, CURLOPT_URL, r->url) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_HTTPGET, 1L) == CURLE_OK &&
#if LIBCURL_VERSION_NUM >= 0x075500
              curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, protos) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, protos) == CURLE_OK &&
#else
              curl_easy_setopt(c, CURLOPT_PROTOCOLS,
                               r->insecure ? (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS)
                                           : (long)CURLPROTO_HTTPS) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS,
                               r->insecure ? (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS)
                                           : (long)CURLPROTO_HTTPS) == CURLE_OK &&
#endif
              curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_MAXREDIRS, r->reg->max_redirects) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, r->reg->connect_timeout) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, r->reg->stall_timeout) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_USERAGENT,
                               "drover-agent/"
                               "0.1") == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_HEADERDATA, r) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_WRITEDATA, r) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf) == CURLE_OK &&
              (r->reg->ca_file == NULL ||
               curl_easy_setopt(c, CURLOPT_CAINFO, r->reg->ca_file) == CURLE_OK) &&
              (range[0] == '\0' || curl_easy_setopt(c, CURLOPT_RANGE, range) == CURLE_OK);
    if (!ok)
        return drv_error_set(err, DRV_ERR_UNSUPPORTED, 0, "libcurl refused an option");
    CURLcode cc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    r->status = code;
    /* the handle outlives this call: do not leave it pointing at our stack */
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    if (r->failed) {
        if (err)
            *err = r->werr;
        return r->werr.code;
    }
    if (cc != CURLE_OK) {
        drv_err_t code2 = curl_code(cc);
        const char *hint = "";
        if (code2 == DRV_ERR_AGAIN)
            hint = " (temporary, retry later)";
        else if (cc == CURLE_UNSUPPORTED_PROTOCOL)
            hint = " (a redirect or URL to a scheme that is not allowed; plain http needs the "
                   "host listed insecure)";
        else if (cc == CURLE_SSL_CONNECT_ERROR && !r->insecure)
            hint = " (TLS handshake failed; a plain http registry must be listed insecure)";
        else if (cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE)
            hint = " (TLS certificate not trusted)";
        return drv_error_set(err, code2, 0, "%s%s", errbuf[0] ? errbuf : curl_easy_strerror(cc),
                             hint);
    }
    if (r->blob && code >= 200 && code < 300 && !r->started && !blob_start(r)) {
        if (err)
            *err = r->werr;
        return r->werr.code;
    }
    return DRV_OK;
}

/* "HTTP 404 MANIFEST_UNKNOWN: manifest unknown" from a non-2xx response. */
static drv_err_t http_status_error(const http_req_t *r, drv_error_t *err)
{
    drv_err_t code;
    if (r->status == 404)
        code = DRV_ERR_NOTFOUND;
    else if (r->status == 401 || r->status == 403)
        code = DRV_ERR_PERM;
    else if (r->status == 408 || r->status == 429 || r->status >= 500)
        code = DRV_ERR_AGAIN;
    else
        code = DRV_ERR_PROTO;
    char detail[512] = "";
    cJSON *j = r->errlen ? cJSON_ParseWithLength(r->errbody, r->errlen) : NULL;
    const cJSON *errors = cJSON_GetObjectItemCaseSensitive(j, "errors");
    const cJSON *first = cJSON_IsArray(errors) ? cJSON_GetArrayItem(errors, 0) : NULL;
    const cJSON *ec = cJSON_GetObjectItemCaseSensitive(first, "code");
    const cJSON *em = cJSON_GetObjectItemCaseSensitive(first, "message");
    if (cJSON_IsString(ec) || cJSON_IsString(em))
        drv_fmt_cut(detail, sizeof(detail), " %.64s%s%.300s",
                    cJSON_IsString(ec) ? ec->valuestring : "",
                    cJSON_IsString(ec) && cJSON_IsString(em) ? ": " : "",
                    cJSON_IsString(em) ? em->valuestring : "");
    cJSON_Delete(j);
    for (char *p = detail; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
            *p = ' ';
    return drv_error_set(err, code, 0, "HTTP %ld%s%s", r->status, detail,
                         code == DRV_ERR_AGAIN ? " (temporary, retry later)" : "");
}

/* ---- auth ---- */

static auth_entry_t *auth_find(drv_registry_t *reg, const char *host, const char *repo)
{
    time_t now = time(NULL);
    auth_entry_t *basic = NULL;
    for (size_t i = 0; i < AUTH_CACHE_SIZE; i++) {
        auth_entry_t *e = &reg->auth[i];
        if (e->header == NULL || strcasecmp(e->host, host) != 0)
            continue;
        if (e->expires && e->expires <= now) {
            free(e->header);
            e->header = NULL;
            continue;
        }
        if (!strcmp(e->repo, repo))
            return e;
        if (e->repo[0] == '\0')
            basic = e;
    }
    return basic;
}

static drv_err_t auth_store(drv_registry_t *reg, const char *host, const char *repo, char *header,
                            long ttl, drv_error_t *err)
{
    auth_entry_t *e = NULL;
    for (size_t i = 0; i < AUTH_CACHE_SIZE && !e; i++)
        if (reg->auth[i].header && !strcasecmp(reg->auth[i].host, host) &&
            !strcmp(reg->auth[i].repo, repo))
            e = &reg->auth[i];
    if (e == NULL)
        e = &reg->auth[reg->auth_next++ % AUTH_CACHE_SIZE];
    free(e->header);
    e->header = NULL; /* a free slot until filled */
    if (drv_fmt(e->host, sizeof(e->host), "%s", host) != DRV_OK ||
        drv_fmt(e->repo, sizeof(e->repo), "%s", repo) != DRV_OK) {
        free(header);
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "credentials for %.200s/%.200s: name too long",
                             host, repo);
    }
    e->header = header;
    /* renew a little early; registries give 60 s at least */
    e->expires = ttl > 0 ? time(NULL) + (ttl > 30 ? ttl - 10 : ttl) : 0;
    return DRV_OK;
}

static char *basic_header(const cred_t *c)
{
    char userpass[1024];
    int n = snprintf(userpass, sizeof(userpass), "%s:%s", c->user, c->pass);
    if (n < 0 || (size_t)n >= sizeof(userpass))
        return NULL;
    _cleanup_free_ char *b64 = drv_base64_encode(userpass, (size_t)n);
    explicit_bzero(userpass, sizeof(userpass));
    if (b64 == NULL)
        return NULL;
    size_t len = strlen(b64) + 32;
    char *h = malloc(len);
    if (h && drv_fmt(h, len, "Authorization: Basic %s", b64) != DRV_OK) {
        free(h);
        h = NULL;
    }
    explicit_bzero(b64, strlen(b64));
    return h;
}

/* The host[:port] of an http(s) URL, for the insecure list. */
static void url_host(const char *url, char *out, size_t outsz)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    size_t n = strcspn(p, "/?#");
    const char *at = memchr(p, '@', n);
    if (at) {
        n -= (size_t)(at + 1 - p);
        p = at + 1;
    }
    set_hdr(out, outsz, p, n);
}

static drv_err_t fetch_token(drv_registry_t *reg, const drv_image_ref_t *ref,
                             const drv_auth_challenge_t *ch, char **header, long *ttl,
                             drv_error_t *err)
{
    bool insecure = is_insecure(reg, ref);
    if (strncasecmp(ch->realm, "https://", 8) != 0) {
        char rh[DRV_REF_DOMAIN_MAX];
        url_host(ch->realm, rh, sizeof(rh));
        if (strncasecmp(ch->realm, "http://", 7) != 0)
            return drv_error_set(err, DRV_ERR_PROTO, 0,
                                 "token realm \"%.200s\" is not an http(s) URL", ch->realm);
        if (!insecure && !host_listed(reg->insecure, reg->n_insecure, rh))
            return drv_error_set(err, DRV_ERR_PERM, 0,
                                 "token realm %.200s is plain http and %s is not listed insecure",
                                 ch->realm, rh);
        insecure = true;
    }
    char scope[DRV_REF_PATH_MAX + 32];
    if (drv_fmt(scope, sizeof(scope), "repository:%s:pull", ref->path) != DRV_OK)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "token scope for %.200s: name too long",
                             ref->path);
    char *esc_service = curl_easy_escape(reg->curl, ch->service, 0);
    char *esc_scope = curl_easy_escape(reg->curl, scope, 0);
    char url[URL_MAX];
    int n = snprintf(url, sizeof(url), "%s%s%s%s%sscope=%s", ch->realm,
                     strchr(ch->realm, '?') ? "&" : "?", ch->service[0] ? "service=" : "",
                     ch->service[0] && esc_service ? esc_service : "", ch->service[0] ? "&" : "",
                     esc_scope ? esc_scope : "");
    curl_free(esc_service);
    curl_free(esc_scope);
    if (n < 0 || (size_t)n >= sizeof(url))
        return drv_error_set(err, DRV_ERR_PROTO, 0, "token realm URL too long");

    const cred_t *cred = find_cred(reg, ref);
    _cleanup_free_ char *basic = cred ? basic_header(cred) : NULL;
    if (cred && basic == NULL)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "credentials for %s too long", ref->domain);
    _cleanup_buf_ drv_buf_t body = DRV_BUF_INIT(TOKEN_BODY_MAX);
    http_req_t r = {.reg = reg, .url = url, .insecure = insecure, .auth = basic, .body = &body};
    drv_err_t rc = http_perform(&r, err);
    if (basic)
        explicit_bzero(basic, strlen(basic));
    if (rc != DRV_OK)
        return drv_error_wrap(err, "token from %.200s", ch->realm);
    if (r.status == 401 || r.status == 403) {
        (void)http_status_error(&r, err);
        return drv_error_wrap(err, "token from %.200s: %s", ch->realm,
                              cred ? "credentials refused"
                                   : "anonymous access refused (no --auth for this registry)");
    }
    if (r.status != 200) {
        rc = http_status_error(&r, err);
        return drv_error_wrap(err, "token from %.200s", ch->realm);
    }
    cJSON *j = cJSON_ParseWithLength(body.data ? body.data : "", body.len);
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(j, "token");
    if (!cJSON_IsString(tok) || tok->valuestring[0] == '\0')
        tok = cJSON_GetObjectItemCaseSensitive(j, "access_token");
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(j, "expires_in");
    *ttl = cJSON_IsNumber(exp) && exp->valuedouble >= 1 && exp->valuedouble < 1e7
               ? (long)exp->valuedouble
               : 60;
    if (!cJSON_IsString(tok) || tok->valuestring[0] == '\0' ||
        strlen(tok->valuestring) > TOKEN_MAX) {
        cJSON_Delete(j);
        return drv_error_set(err, DRV_ERR_PROTO, 0,
                             "token from %.200s: no usable \"token\" in the answer", ch->realm);
    }
    for (const char *p = tok->valuestring; *p; p++) {
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) {
            cJSON_Delete(j);
            return drv_error_set(
                err, DRV_ERR_PROTO, 0,
                "token from %.200s: token holds characters not allowed in a header", ch->realm);
        }
    }
    size_t hl = strlen(tok->valuestring) + 32;
    char *h = malloc(hl);
    if (h && drv_fmt(h, hl, "Authorization: Bearer %s", tok->valuestring) != DRV_OK) {
        free(h);
        h = NULL;
    }
    cJSON_Delete(j);
    if (h == NULL)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "token: out of memory");
    *header = h;
    return DRV_OK;
}

/* Performs r against the registry of ref, answering a 401 once with credentials: a token
 * from the challenge's realm (Bearer) or the configured user and password (Basic). */
static drv_err_t registry_request(drv_registry_t *reg, const drv_image_ref_t *ref, http_req_t *r,
                                  drv_error_t *err)
{
    const char *host = drv_image_ref_api_host(ref);
    r->insecure = is_insecure(reg, ref);
    for (int attempt = 0;; attempt++) {
        auth_entry_t *e = auth_find(reg, host, ref->path);
        r->auth = e ? e->header : NULL;
        drv_err_t rc = http_perform(r, err);
        if (rc != DRV_OK || r->status != 401)
            return rc;
        if (attempt > 0) {
            (void)http_status_error(r, err);
            return drv_error_wrap(err, "credentials for %s refused", ref->domain);
        }
        drv_auth_challenge_t ch;
        if (r->www_auth[0] == '\0') {
            (void)http_status_error(r, err);
            return drv_error_wrap(err, "no WWW-Authenticate challenge");
        }
        if ((rc = drv_registry_parse_challenge(r->www_auth, &ch, err)) != DRV_OK)
            return rc;
        char *header = NULL;
        long ttl = 0;
        const char *repo = ref->path;
        if (!strcasecmp(ch.scheme, "bearer")) {
            if (ch.realm[0] == '\0')
                return drv_error_set(err, DRV_ERR_PROTO, 0, "Bearer challenge without a realm");
            if ((rc = fetch_token(reg, ref, &ch, &header, &ttl, err)) != DRV_OK)
                return rc;
        } else if (!strcasecmp(ch.scheme, "basic")) {
            const cred_t *cred = find_cred(reg, ref);
            if (cred == NULL) {
                (void)http_status_error(r, err);
                return drv_error_wrap(err, "%s needs credentials (--auth %s=USER:PASS)",
                                      ref->domain, ref->domain);
            }
            if ((header = basic_header(cred)) == NULL)
                return drv_error_set(err, DRV_ERR_NOMEM, 0, "credentials for %s too long",
                                     ref->domain);
            repo = ""; /* basic credentials hold for the whole host */
        } else {
            return drv_error_set(err, DRV_ERR_UNSUPPORTED, 0, "HTTP 401 with auth scheme \"%s\"",
                                 ch.scheme);
        }
        if ((rc = auth_store(reg, host, repo, header, ttl, err)) != DRV_OK)
            return rc;
    }
}

static drv_err_t build_url(const drv_registry_t *reg, const drv_image_ref_t *ref, const char *kind,
                           const char *what, char *url, size_t urlsz, drv_error_t *err)
{
    int n = snprintf(url, urlsz, "%s://%s/v2/%s/%s/%s", is_insecure(reg, ref) ? "http" : "https",
                     drv_image_ref_api_host(ref), ref->path, kind, what);
    if (n < 0 || (size_t)n >= urlsz)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "URL too long");
    return DRV_OK;
}

/* ---- manifests and blobs ---- */

drv_err_t drv_registry_get_manifest(drv_registry_t *reg, const drv_image_ref_t *ref,
                                    const char *reference, drv_buf_t *body, char *content_type,
                                    size_t ctsz, drv_digest_t *digest, drv_error_t *err)
{
    drv_digest_t want;
    bool by_digest = !strncmp(reference, "sha256:", 7);
    drv_err_t rc;
    if (by_digest && (rc = drv_digest_parse(reference, &want, err)) != DRV_OK)
        return rc;
    char url[URL_MAX];
    if ((rc = build_url(reg, ref, "manifests", reference, url, sizeof(url), err)) != DRV_OK)
        return rc;
    drv_buf_reset(body);
    body->max = DRV_OCI_MANIFEST_MAX_BYTES;
    http_req_t r = {
        .reg = reg, .url = url, .accept = ACCEPT_MANIFESTS, .body = body, .count = true};
    if ((rc = registry_request(reg, ref, &r, err)) != DRV_OK)
        return rc;
    if (r.status != 200)
        return http_status_error(&r, err);
    drv_digest_t got;
    drv_digest_of(body->data ? body->data : "", body->len, &got);
    if (by_digest && (rc = drv_digest_verify(&want, &got, NULL, err)) != DRV_OK)
        return rc;
    if (!by_digest && r.docker_digest[0]) {
        drv_digest_t said;
        drv_error_t ignore = DRV_ERROR_INIT;
        if (drv_digest_parse(r.docker_digest, &said, &ignore) == DRV_OK &&
            !drv_digest_equal(&said, &got)) {
            char a[DRV_DIGEST_STR_MAX], b[DRV_DIGEST_STR_MAX];
            return drv_error_set(
                err, DRV_ERR_INTEGRITY, 0,
                "digest mismatch: registry says %s (Docker-Content-Digest), content "
                "is %s",
                drv_digest_format(&said, a), drv_digest_format(&got, b));
        }
    }
    if (content_type && ctsz)
        set_hdr(content_type, ctsz, r.content_type, strlen(r.content_type));
    *digest = got;
    return DRV_OK;
}

drv_err_t drv_registry_fetch_blob(drv_registry_t *reg, const drv_image_ref_t *ref, drv_store_t *st,
                                  const drv_digest_t *d, uint64_t size, const char *what,
                                  drv_error_t *err)
{
    char ds[DRV_DIGEST_STR_MAX], url[URL_MAX];
    drv_err_t rc = build_url(reg, ref, "blobs", drv_digest_format(d, ds), url, sizeof(url), err);
    if (rc != DRV_OK)
        return rc;
    drv_blob_writer_t w;
    bool done = false;
    if ((rc = drv_store_blob_begin(st, d, size, &w, &done, err)) != DRV_OK || done)
        return rc;
    bool restarted_416 = false;
    for (int attempt = 1;; attempt++) {
        http_req_t r = {.reg = reg, .url = url, .blob = &w, .range_from = w.offset, .count = true};
        rc = registry_request(reg, ref, &r, err);
        if (rc == DRV_OK && r.status == 416 && r.range_from > 0 && !restarted_416) {
            /* the server does not like our range: fetch it all */
            restarted_416 = true;
            if ((rc = drv_blob_writer_restart(&w, err)) != DRV_OK)
                break;
            continue;
        }
        if (rc == DRV_OK && (r.status < 200 || r.status >= 300)) {
            rc = http_status_error(&r, err);
            break;
        }
        if (rc == DRV_OK) {
            return drv_blob_writer_commit(&w, what, err); /* closes w */
        }
        /* broke off after progress: resume from where it stopped */
        if (rc == DRV_ERR_AGAIN && r.received > 0 && attempt < BLOB_ATTEMPTS) {
            sleep((unsigned)attempt);
            continue;
        }
        break;
    }
    /* keep what is good for a later resume; drop what is known bad */
    drv_blob_writer_abort(&w,
                          rc != DRV_ERR_TOOBIG && rc != DRV_ERR_INTEGRITY && rc != DRV_ERR_PROTO);
    return rc;
}

/* ---- pull ---- */

static drv_err_t fetch_small_blob(drv_registry_t *reg, const drv_image_ref_t *ref, drv_store_t *st,
                                  const drv_oci_descriptor_t *desc, size_t max, char **out,
                                  size_t *len, bool *fetched, drv_error_t *err)
{
    if (desc->size > max)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "%llu bytes, more than the %zu allowed",
                             (unsigned long long)desc->size, max);
    *fetched = !drv_store_has_blob(st, &desc->digest);
    drv_err_t rc = drv_registry_fetch_blob(reg, ref, st, &desc->digest, desc->size, NULL, err);
    if (rc != DRV_OK)
        return rc;
    return drv_store_read_blob(st, &desc->digest, max, out, len, err);
}

drv_err_t drv_registry_pull(drv_registry_t *reg, drv_store_t *st, const char *image,
                            const drv_platform_t *platform, drv_pull_result_t *res,
                            drv_error_t *err)
{
    return drv_registry_pull_via(reg, st, image, NULL, platform, res, err);
}

drv_err_t drv_registry_pull_via(drv_registry_t *reg, drv_store_t *st, const char *image,
                                const drv_image_ref_t *via, const drv_platform_t *platform,
                                drv_pull_result_t *res, drv_error_t *err)
{
    const char *shown = image ? image : "";
    drv_image_ref_t ref;
    drv_err_t rc = drv_image_ref_parse(image, &ref, err);
    if (rc != DRV_OK)
        return drv_error_wrap(err, "pull");
    const drv_image_ref_t *from = via ? via : &ref; /* a mirror (image/mirror.c) or the registry */
    drv_platform_t want;
    if (platform)
        want = *platform;
    else
        drv_platform_default(&want);
    uint64_t bytes0 = reg->bytes;
    drv_pull_result_t out;
    memset(&out, 0, sizeof(out));
    drv_image_ref_format(&ref, out.reference, sizeof(out.reference));

    if ((rc = drv_store_lock(st, false, err)) != DRV_OK)
        return drv_error_wrap(err, "pull %s", shown);
    _cleanup_buf_ drv_buf_t body = DRV_BUF_INIT(DRV_OCI_MANIFEST_MAX_BYTES);
    drv_oci_manifest_t m = {0}, idx = {0};
    drv_oci_config_t cfg = {0};
    _cleanup_free_ char *cfgdata = NULL;
    _cleanup_free_ drv_digest_t *layers = NULL;
    char ct[DRV_MEDIA_TYPE_MAX], ds[DRV_DIGEST_STR_MAX], what[DRV_DIGEST_STR_MAX + 16];
    drv_digest_t dg;

    rc = drv_registry_get_manifest(reg, from, drv_image_ref_manifest_ref(&ref), &body, ct,
                                   sizeof(ct), &dg, err);
    if (rc == DRV_OK)
        rc = drv_oci_manifest_parse(body.data, body.len, ct, &m, err);
    if (rc != DRV_OK) {
        (void)drv_error_wrap(err, "manifest");
        goto done;
    }
    if (m.kind == DRV_OCI_INDEX) {
        const drv_oci_descriptor_t *sel;
        if ((rc = drv_store_put_blob(st, &dg, body.data, body.len, "index", err)) != DRV_OK ||
            (rc = drv_oci_index_select(&m, &want, &sel, err)) != DRV_OK) {
            (void)drv_error_wrap(err, "index %s", drv_digest_format(&dg, ds));
            goto done;
        }
        out.has_index = true;
        out.index = dg;
        out.platform = sel->platform;
        out.manifest = sel->digest;
        uint64_t sel_size = sel->size;
        idx = m;
        memset(&m, 0, sizeof(m));
        drv_fmt_cut(what, sizeof(what), "manifest %s", drv_digest_format(&out.manifest, ds));
        if (sel_size > DRV_OCI_MANIFEST_MAX_BYTES) {
            rc = drv_error_set(err, DRV_ERR_TOOBIG, 0, "%s: %llu bytes, more than the %u allowed",
                               what, (unsigned long long)sel_size, DRV_OCI_MANIFEST_MAX_BYTES);
            goto done;
        }
        rc = drv_registry_get_manifest(reg, from, ds, &body, ct, sizeof(ct), &dg, err);
        if (rc == DRV_OK && body.len != sel_size)
            rc = drv_error_set(err, DRV_ERR_INTEGRITY, 0, "%zu bytes, the index says %llu",
                               body.len, (unsigned long long)sel_size);
        if (rc == DRV_OK)
            rc = drv_oci_manifest_parse(body.data, body.len, ct, &m, err);
        if (rc == DRV_OK && m.kind != DRV_OCI_MANIFEST)
            rc = drv_error_set(err, DRV_ERR_UNSUPPORTED, 0,
                               "nested image indexes are not supported");
        if (rc != DRV_OK) {
            (void)drv_error_wrap(err, "%s", what);
            goto done;
        }
    } else {
        out.manifest = dg;
    }
    drv_fmt_cut(what, sizeof(what), "manifest %s", drv_digest_format(&out.manifest, ds));
    if ((rc = drv_store_put_blob(st, &out.manifest, body.data, body.len, what, err)) != DRV_OK)
        goto done;

    /* config */
    size_t cfglen = 0;
    bool fetched = false;
    drv_fmt_cut(what, sizeof(what), "config %s", drv_digest_format(&m.config.digest, ds));
    rc = fetch_small_blob(reg, from, st, &m.config, DRV_OCI_CONFIG_MAX_BYTES, &cfgdata, &cfglen,
                          &fetched, err);
    if (rc == DRV_OK)
        rc = drv_oci_config_parse(cfgdata, cfglen, &cfg, err);
    if (rc == DRV_OK && cfg.n_diff_ids != m.n_entries)
        rc = drv_error_set(err, DRV_ERR_INVALID, 0,
                           "rootfs.diff_ids has %zu entries, the manifest %zu layers",
                           cfg.n_diff_ids, m.n_entries);
    if (rc != DRV_OK) {
        (void)drv_error_wrap(err, "%s", what);
        goto done;
    }
    if (!out.has_index) {
        out.platform = cfg.platform;
        if (drv_platform_match(&want, &cfg.platform) < 0) {
            char a[DRV_PLATFORM_STR_MAX], b[DRV_PLATFORM_STR_MAX];
            rc = drv_error_set(err, DRV_ERR_UNSUPPORTED, 0,
                               "image is for %s, not for %s (choose with --platform)",
                               drv_platform_format(&cfg.platform, a, sizeof(a)),
                               drv_platform_format(&want, b, sizeof(b)));
            goto done;
        }
    }

    /* layers */
    layers = calloc(m.n_entries, sizeof(*layers));
    if (layers == NULL) {
        rc = drv_error_set(err, DRV_ERR_NOMEM, 0, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < m.n_entries; i++) {
        const drv_oci_descriptor_t *l = &m.entries[i];
        drv_fmt_cut(what, sizeof(what), "layer %s", drv_digest_format(&l->digest, ds));
        if (!drv_store_has_blob(st, &l->digest)) {
            rc = drv_registry_fetch_blob(reg, from, st, &l->digest, l->size, NULL, err);
            if (rc != DRV_OK) {
                (void)drv_error_wrap(err, "%s", what);
                goto done;
            }
            out.layers_fetched++;
        }
        char uwhat[DRV_REF_STR_MAX + 96];
        drv_fmt_cut(uwhat, sizeof(uwhat), "%s %s", out.reference, what);
        bool unpacked = false;
        if ((rc = drv_store_unpack_layer(st, &l->digest, uwhat, &unpacked, err)) != DRV_OK)
            goto done;
        if (unpacked)
            out.layers_unpacked++;
        layers[i] = l->digest;
    }
    out.n_layers = m.n_entries;

    drv_store_record_t rec = {.manifest = out.manifest,
                              .has_index = out.has_index,
                              .index = out.index,
                              .platform = out.platform,
                              .config = m.config.digest,
                              .layers = layers,
                              .n_layers = m.n_entries,
                              .pulled = (int64_t)time(NULL)};
    if (drv_fmt(rec.reference, sizeof(rec.reference), "%s", out.reference) != DRV_OK)
        rc = drv_error_set(err, DRV_ERR_TOOBIG, 0, "%s: reference too long", out.reference);
    else
        rc = drv_store_put_record(st, &rec, err);

done:
    drv_store_unlock(st);
    drv_oci_manifest_free(&m);
    drv_oci_manifest_free(&idx);
    drv_oci_config_free(&cfg);
    if (rc != DRV_OK)
        return drv_error_wrap(err, "pull %s", shown);
    out.bytes = reg->bytes - bytes0;
    if (res)
        *res = out;
    return DRV_OK;
}
