/* Image platforms from registries (see images.h): a cache keyed by the image reference as
 * written in the pod, filled by one lookup thread (libcurl, blocking, bounded), read by the
 * scheduler under a mutex. */
#include "images/images.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "ctrl/ctrl.h"
#include "drover/buf.h"
#include "drover/challenge.h"
#include "drover/cleanup.h"
#include "drover/fmt.h"
#include "drover/log.h"
#include "drover/proc.h"
#include "drover/oci.h"
#include "drover/ref.h"

#define IMAGE_KEY_MAX 512
#define TOKEN_MAX 8192
#define HEADER_MAX 2048

typedef enum { ENT_NEW = 0, ENT_BUSY, ENT_KNOWN, ENT_FAILED } ent_state_t;

typedef struct entry {
    char image[IMAGE_KEY_MAX];
    ent_state_t state;
    bool had_answer; /* plats holds an earlier answer */
    char plats[DRV_IMAGES_PLATFORMS_MAX][DRV_PLATFORM_STR_MAX];
    size_t nplats;
    int64_t first_asked_ms, asked_ms, done_ms;
    bool wait_logged;
} entry_t;

struct drv_images {
    drv_images_opts_t o;
    char **insecure;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    bool running, stop;
    int efd; /* readable once a lookup finished (drv_images_fd) */
    entry_t *ents;
    size_t n;
    /* What drv_images_platforms returned last (valid until the next call). */
    const char *ret[DRV_IMAGES_PLATFORMS_MAX + 1];
    char ret_buf[DRV_IMAGES_PLATFORMS_MAX][DRV_PLATFORM_STR_MAX];
};

/* ---- one lookup ---- */

typedef struct body {
    drv_buf_t buf; /* at most the caller's max */
    bool over;     /* the answer was larger */
} body_t;

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    body_t *b = ud;
    drv_err_t e = drv_buf_append(&b->buf, p, size * n); /* curl: size is 1 */
    b->over = e == DRV_ERR_TOOBIG;
    return e == DRV_OK ? size * n : 0;
}

typedef struct hdrs {
    char content_type[DRV_MEDIA_TYPE_MAX];
    char www_auth[HEADER_MAX];
} hdrs_t;

static void header_value(const char *line, size_t n, const char *name, char *out, size_t outsz)
{
    size_t nl = strlen(name);
    if (n <= nl || strncasecmp(line, name, nl) || line[nl] != ':')
        return;
    const char *v = line + nl + 1;
    size_t vl = n - nl - 1;
    while (vl && (*v == ' ' || *v == '\t'))
        v++, vl--;
    while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
        vl--;
    if (vl >= outsz)
        vl = outsz - 1;
    memcpy(out, v, vl);
    out[vl] = '\0';
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    hdrs_t *h = ud;
    size_t len = size * n;
    if (len >= 5 && !strncmp(p, "HTTP/", 5)) /* a new response (redirect, retry) */
        memset(h, 0, sizeof(*h));
    header_value(p, len, "Content-Type", h->content_type, sizeof(h->content_type));
    header_value(p, len, "WWW-Authenticate", h->www_auth, sizeof(h->www_auth));
    return len;
}

/* GET url into *b (at most max bytes); *status gets the HTTP status. */
static drv_err_t http_get(const drv_images_opts_t *o, const char *url, const char *accept,
                          const char *auth, size_t max, body_t *b, hdrs_t *h, long *status,
                          drv_error_t *err)
{
    CURL *c = curl_easy_init();
    if (!c)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "curl");
    struct curl_slist *hl = NULL, *t;
    char line[TOKEN_MAX + 64];
    if (accept) {
        if (drv_fmt(line, sizeof(line), "Accept: %s", accept) != DRV_OK) {
            curl_easy_cleanup(c);
            return drv_error_set(err, DRV_ERR_TOOBIG, 0, "GET %s: Accept header too long", url);
        }
        hl = curl_slist_append(hl, line);
    }
    if (auth && hl) {
        if (drv_fmt(line, sizeof(line), "Authorization: %s", auth) != DRV_OK) {
            curl_slist_free_all(hl);
            curl_easy_cleanup(c);
            return drv_error_set(err, DRV_ERR_TOOBIG, 0, "GET %s: Authorization header too long",
                                 url);
        }
        if ((t = curl_slist_append(hl, line)))
            hl = t;
    }
    *b = (body_t){DRV_BUF_INIT(max), false};
    memset(h, 0, sizeof(*h));
    long timeout = o->timeout_ms > 0 ? (long)o->timeout_ms : 10000;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, h);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout < 3000 ? timeout : 3000L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "drover-hub");
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) {
        drv_buf_free(&b->buf);
        return drv_error_set(err, b->over ? DRV_ERR_TOOBIG : DRV_ERR_IO, 0, "GET %s: %s", url,
                             b->over ? "answer too large" : curl_easy_strerror(rc));
    }
    return DRV_OK;
}

static bool is_insecure(const drv_images_opts_t *o, const char *host)
{
    for (size_t i = 0; i < o->n_insecure; i++)
        if (o->insecure[i] && !strcasecmp(o->insecure[i], host))
            return true;
    return false;
}

/* An anonymous Bearer token for the challenge (registries that give them: Docker Hub, ghcr,
 * a registry with a token server), as "Bearer <token>" into auth. */
static drv_err_t anonymous_token(const drv_images_opts_t *o, const char *www_auth, char *auth,
                                 size_t authsz, drv_error_t *err)
{
    drv_auth_challenge_t ch;
    drv_err_t r = drv_challenge_parse(www_auth, &ch, err);
    if (r != DRV_OK)
        return r;
    if (strcasecmp(ch.scheme, "Bearer") || !ch.realm[0])
        return drv_error_set(err, DRV_ERR_PERM, 0, "the registry wants %s credentials", ch.scheme);
    CURL *c = curl_easy_init();
    if (!c)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "curl");
    char *svc = curl_easy_escape(c, ch.service, 0), *scope = curl_easy_escape(c, ch.scope, 0);
    char url[2048];
    drv_err_t fe = drv_fmt(url, sizeof(url), "%s%sservice=%s&scope=%s", ch.realm,
                           strchr(ch.realm, '?') ? "&" : "?", svc ? svc : "", scope ? scope : "");
    curl_free(svc);
    curl_free(scope);
    curl_easy_cleanup(c);
    if (fe != DRV_OK)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "token request: URL too long");
    body_t b;
    hdrs_t h;
    long status = 0;
    r = http_get(o, url, "application/json", NULL, 64 * 1024, &b, &h, &status, err);
    if (r != DRV_OK)
        return r;
    _cleanup_free_ char *data = b.buf.data;
    if (status != 200)
        return drv_error_set(err, DRV_ERR_PERM, 0, "token request: HTTP %ld", status);
    cJSON *j = data ? cJSON_Parse(data) : NULL;
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(j, "token");
    if (!cJSON_IsString(tok))
        tok = cJSON_GetObjectItemCaseSensitive(j, "access_token");
    bool ok = cJSON_IsString(tok) && drv_fmt(auth, authsz, "Bearer %s", tok->valuestring) == DRV_OK;
    cJSON_Delete(j);
    return ok ? DRV_OK : drv_error_set(err, DRV_ERR_PROTO, 0, "token request: no token");
}

/* GET /v2/<path>/<kind>/<ref>, with one anonymous token round on a 401. */
static drv_err_t registry_get(const drv_images_opts_t *o, const drv_image_ref_t *r,
                              const char *kind, const char *ref, const char *accept, size_t max,
                              char *auth, size_t authsz, body_t *b, hdrs_t *h, drv_error_t *err)
{
    const char *host = drv_image_ref_api_host(r);
    char url[2048];
    if (drv_fmt(url, sizeof(url), "%s://%s/v2/%s/%s/%s", is_insecure(o, host) ? "http" : "https",
                host, r->path, kind, ref) != DRV_OK)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "%s/%s: %s %s: URL too long", host, r->path,
                             kind, ref);
    long status = 0;
    drv_err_t e = http_get(o, url, accept, auth[0] ? auth : NULL, max, b, h, &status, err);
    if (e == DRV_OK && status == 401 && !auth[0] && h->www_auth[0]) {
        drv_buf_free(&b->buf);
        if ((e = anonymous_token(o, h->www_auth, auth, authsz, err)) != DRV_OK)
            return e;
        e = http_get(o, url, accept, auth, max, b, h, &status, err);
    }
    if (e == DRV_OK && status != 200) {
        drv_buf_free(&b->buf);
        return drv_error_set(err, status == 404 ? DRV_ERR_NOTFOUND : DRV_ERR_PROTO, 0,
                             "GET %s: HTTP %ld", url, status);
    }
    return e;
}

static bool add_platform(char ***out, size_t *n, const drv_platform_t *p)
{
    if (!strcmp(p->os, "unknown") || !strcmp(p->arch, "unknown")) /* attestations */
        return true;
    char s[DRV_PLATFORM_STR_MAX];
    drv_platform_format(p, s, sizeof(s));
    for (size_t i = 0; i < *n; i++)
        if (!strcmp((*out)[i], s))
            return true;
    if (*n >= DRV_IMAGES_PLATFORMS_MAX)
        return true;
    char *d = strdup(s);
    if (!d)
        return false;
    (*out)[(*n)++] = d;
    return true;
}

drv_err_t drv_images_lookup(const drv_images_opts_t *o, const char *image, char ***out,
                            drv_error_t *err)
{
    drv_image_ref_t r;
    drv_err_t e = drv_image_ref_parse(image, &r, err);
    if (e != DRV_OK)
        return e;
    char auth[TOKEN_MAX + 16] = "";
    body_t b;
    hdrs_t h;
    e = registry_get(o, &r, "manifests", drv_image_ref_manifest_ref(&r),
                     DRV_MT_OCI_INDEX ", " DRV_MT_DOCKER_LIST ", " DRV_MT_OCI_MANIFEST
                                      ", " DRV_MT_DOCKER_MANIFEST,
                     DRV_OCI_MANIFEST_MAX_BYTES, auth, sizeof(auth), &b, &h, err);
    if (e != DRV_OK)
        return drv_error_wrap(err, "image %s", image);
    drv_oci_manifest_t m;
    e = drv_oci_manifest_parse(drv_buf_str(&b.buf), b.buf.len, h.content_type, &m, err);
    drv_buf_free(&b.buf);
    if (e != DRV_OK)
        return drv_error_wrap(err, "image %s: manifest", image);
    char **list = calloc(DRV_IMAGES_PLATFORMS_MAX + 1, sizeof(*list));
    size_t n = 0;
    bool ok = list != NULL;
    if (ok && m.kind == DRV_OCI_INDEX) {
        for (size_t i = 0; ok && i < m.n_entries; i++)
            if (m.entries[i].has_platform)
                ok = add_platform(&list, &n, &m.entries[i].platform);
    } else if (ok) {
        /* A single image: its config says which platform. */
        char dg[DRV_DIGEST_STR_MAX];
        drv_digest_format(&m.config.digest, dg);
        e = registry_get(o, &r, "blobs", dg, NULL, DRV_OCI_CONFIG_MAX_BYTES, auth, sizeof(auth), &b,
                         &h, err);
        drv_oci_config_t cfg;
        if (e == DRV_OK) {
            e = drv_oci_config_parse(drv_buf_str(&b.buf), b.buf.len, &cfg, err);
            drv_buf_free(&b.buf);
        }
        if (e == DRV_OK) {
            ok = add_platform(&list, &n, &cfg.platform);
            drv_oci_config_free(&cfg);
        }
    }
    drv_oci_manifest_free(&m);
    if (e != DRV_OK || !ok || n == 0) {
        for (size_t i = 0; list && i < n; i++)
            free(list[i]);
        free(list);
        if (e != DRV_OK)
            return drv_error_wrap(err, "image %s: config", image);
        return drv_error_set(err, ok ? DRV_ERR_NOTFOUND : DRV_ERR_NOMEM, 0,
                             "image %s: no platform named", image);
    }
    *out = list;
    return DRV_OK;
}

/* ---- the cache and its thread ---- */

static entry_t *find(drv_images_t *im, const char *image)
{
    for (size_t i = 0; i < im->n; i++)
        if (!strcmp(im->ents[i].image, image))
            return &im->ents[i];
    return NULL;
}

/* The entry due for a lookup, or NULL. Called with mu held. */
static entry_t *due(drv_images_t *im, int64_t now)
{
    int64_t ttl = im->o.ttl_ms > 0 ? im->o.ttl_ms : 600000;
    int64_t retry = im->o.retry_ms > 0 ? im->o.retry_ms : 60000;
    for (size_t i = 0; i < im->n; i++) {
        entry_t *e = &im->ents[i];
        if (e->state == ENT_NEW || (e->state == ENT_KNOWN && now - e->done_ms >= ttl) ||
            (e->state == ENT_FAILED && now - e->done_ms >= retry))
            return e;
    }
    return NULL;
}

static void *worker(void *arg)
{
    drv_images_t *im = arg;
    pthread_mutex_lock(&im->mu);
    while (!im->stop) {
        entry_t *e = due(im, drv_now_ms());
        if (!e) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            pthread_cond_timedwait(&im->cv, &im->mu, &ts);
            continue;
        }
        char image[IMAGE_KEY_MAX];
        memcpy(image, e->image, sizeof(image)); /* one size */
        ent_state_t was = e->state;
        e->state = ENT_BUSY;
        pthread_mutex_unlock(&im->mu);
        char **list = NULL;
        drv_error_t err = DRV_ERROR_INIT;
        drv_err_t r = drv_images_lookup(&im->o, image, &list, &err);
        pthread_mutex_lock(&im->mu);
        e = find(im, image); /* (the table may have been reused meanwhile) */
        if (e) {
            e->done_ms = drv_now_ms();
            if (r == DRV_OK) {
                e->state = ENT_KNOWN;
                e->had_answer = true;
                e->nplats = 0;
                for (char **p = list; p && *p; p++) {
                    if (drv_fmt(e->plats[e->nplats], sizeof(e->plats[0]), "%s", *p) == DRV_OK)
                        e->nplats++;
                    else
                        drv_log_warn("image platform name too long: left out", "image=%s", image);
                }
            } else {
                e->state = ENT_FAILED;
                if (was != ENT_FAILED)
                    drv_log_info("image platforms unknown: pods using it go to any node",
                                 "image=%s error=\"%s\"", image, drv_error_msg(&err));
            }
        }
        for (char **p = list; p && *p; p++)
            free(*p);
        free(list);
        uint64_t one = 1;
        if (write(im->efd, &one, sizeof(one)) < 0) { /* a full counter: already readable */
        }
    }
    pthread_mutex_unlock(&im->mu);
    return NULL;
}

const char *const *drv_images_platforms(void *ctx, const char *image)
{
    drv_images_t *im = ctx;
    if (!im || !image || strlen(image) >= IMAGE_KEY_MAX)
        return NULL;
    int64_t now = drv_now_ms(), wait = im->o.wait_ms > 0 ? im->o.wait_ms : 10000;
    const char *const *ans = NULL;
    pthread_mutex_lock(&im->mu);
    entry_t *e = find(im, image);
    if (!e) {
        if (im->n < DRV_IMAGES_MAX) {
            e = &im->ents[im->n++];
        } else { /* the least recently asked goes (never one being looked up) */
            for (size_t i = 0; i < im->n; i++)
                if (im->ents[i].state != ENT_BUSY && (!e || im->ents[i].asked_ms < e->asked_ms))
                    e = &im->ents[i];
        }
        if (e) {
            memset(e, 0, sizeof(*e));
            memcpy(e->image, image, strlen(image) + 1); /* fits: checked on entry */
            e->first_asked_ms = now;
            pthread_cond_signal(&im->cv);
        }
    }
    if (e) {
        e->asked_ms = now;
        if (e->had_answer) {
            for (size_t i = 0; i < e->nplats; i++) {
                memcpy(im->ret_buf[i], e->plats[i], sizeof(im->ret_buf[i])); /* one size */
                im->ret[i] = im->ret_buf[i];
            }
            im->ret[e->nplats] = NULL;
            ans = im->ret;
        } else if (e->state != ENT_FAILED && now - e->first_asked_ms < wait) {
            ans = DRV_CTRL_PLATFORMS_PENDING;
        } else if (e->state != ENT_FAILED && !e->wait_logged) {
            e->wait_logged = true;
            drv_log_info("image platforms: no answer in time; placing its pods on any node",
                         "image=%s wait_ms=%lld", image, (long long)wait);
        }
    }
    pthread_mutex_unlock(&im->mu);
    return ans;
}

drv_err_t drv_images_new(const drv_images_opts_t *opts, drv_images_t **out, drv_error_t *err)
{
    drv_images_t *im = calloc(1, sizeof(*im));
    if (!im)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "images");
    im->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (im->efd < 0) {
        free(im);
        return drv_error_set(err, DRV_ERR_IO, errno, "images: eventfd");
    }
    if (opts)
        im->o = *opts;
    im->ents = calloc(DRV_IMAGES_MAX, sizeof(*im->ents));
    im->insecure = calloc(im->o.n_insecure + 1, sizeof(*im->insecure));
    bool ok = im->ents && im->insecure;
    for (size_t i = 0; ok && i < im->o.n_insecure; i++)
        ok = (im->insecure[i] = strdup(im->o.insecure[i])) != NULL;
    im->o.insecure = (const char *const *)im->insecure;
    if (!ok) {
        drv_images_free(im);
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "images");
    }
    pthread_mutex_init(&im->mu, NULL);
    pthread_cond_init(&im->cv, NULL);
    if (pthread_create(&im->thread, NULL, worker, im) != 0) {
        drv_images_free(im);
        return drv_error_set(err, DRV_ERR_IO, 0, "images: cannot start the lookup thread");
    }
    im->running = true;
    *out = im;
    return DRV_OK;
}

void drv_images_free(drv_images_t *im)
{
    if (!im)
        return;
    if (im->running) {
        pthread_mutex_lock(&im->mu);
        im->stop = true;
        pthread_cond_signal(&im->cv);
        pthread_mutex_unlock(&im->mu);
        pthread_join(im->thread, NULL);
        pthread_mutex_destroy(&im->mu);
        pthread_cond_destroy(&im->cv);
    }
    for (size_t i = 0; im->insecure && i < im->o.n_insecure; i++)
        free(im->insecure[i]);
    free(im->insecure);
    free(im->ents);
    close(im->efd);
    free(im);
}

int drv_images_fd(const drv_images_t *im)
{
    return im ? im->efd : -1;
}

void drv_images_drain(drv_images_t *im)
{
    uint64_t n;
    if (im && read(im->efd, &n, sizeof(n)) < 0) { /* nothing pending */
    }
}
