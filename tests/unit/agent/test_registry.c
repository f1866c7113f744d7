/* Tests for the registry client against a scripted HTTP server on 127.0.0.1 (a thread in
 * this process): manifests verified by digest and capped, registry errors turned into clear
 * messages and the right codes, bearer tokens fetched with credentials and cached per
 * repository, basic auth, blob downloads that resume with Range (and cope with a server that
 * ignores it), retries after a dropped connection, redirects that do not carry credentials to
 * another origin nor switch scheme, and the WWW-Authenticate parser. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "drover/base64.h"
#include "image/registry.h"

/* ---- a scripted HTTP/1.1 server ---- */

typedef struct request {
    char path[1024];
    char auth[1024];
    char range[128];
    char accept[512];
} request_t;

typedef struct reply {
    int status;
    char headers[2048];
    const void *body;
    size_t len;
    size_t send_len; /* < len: close the connection after this many body bytes */
} reply_t;

struct server;
typedef void (*handler_t)(struct server *s, const request_t *req, reply_t *rep);

typedef struct server {
    int fd;
    int port;
    pthread_t th;
    handler_t handler;
    void *ctx;
    pthread_mutex_t mu;
    request_t log[64];
    int nlog;
    int stop;
} server_t;

static void *serve(void *arg)
{
    server_t *s = arg;
    for (;;) {
        struct pollfd p = {.fd = s->fd, .events = POLLIN};
        int pr = poll(&p, 1, 50);
        pthread_mutex_lock(&s->mu);
        int stop = s->stop;
        pthread_mutex_unlock(&s->mu);
        if (stop)
            return NULL;
        if (pr <= 0)
            continue;
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            continue;
        char buf[8192];
        size_t n = 0;
        while (n < sizeof(buf) - 1) {
            ssize_t r = read(c, buf + n, sizeof(buf) - 1 - n);
            if (r <= 0)
                break;
            n += (size_t)r;
            buf[n] = '\0';
            if (strstr(buf, "\r\n\r\n") || strncmp(buf, "GET ", n < 4 ? n : 4) != 0)
                break;
        }
        buf[n] = '\0';
        if (strncmp(buf, "GET ", 4) != 0) { /* e.g. a TLS ClientHello: answer as Go's http does */
            static const char bad[] = "HTTP/1.0 400 Bad Request\r\n\r\n";
            if (write(c, bad, sizeof(bad) - 1) < 0) {
                /* nothing to do: the client sees the connection close */
            }
            close(c);
            continue;
        }
        request_t req;
        memset(&req, 0, sizeof(req));
        sscanf(buf, "GET %1023s", req.path);
        for (char *line = strstr(buf, "\r\n"); line && line[2]; line = strstr(line + 2, "\r\n")) {
            char *l = line + 2;
            char *end = strstr(l, "\r\n");
            size_t ll = end ? (size_t)(end - l) : strlen(l);
            char *dst = NULL;
            size_t dsz = 0, kl = 0;
            if (!strncasecmp(l, "Authorization: ", 15))
                dst = req.auth, dsz = sizeof(req.auth), kl = 15;
            else if (!strncasecmp(l, "Range: ", 7))
                dst = req.range, dsz = sizeof(req.range), kl = 7;
            else if (!strncasecmp(l, "Accept: ", 8))
                dst = req.accept, dsz = sizeof(req.accept), kl = 8;
            if (dst)
                snprintf(dst, dsz, "%.*s", (int)(ll - kl), l + kl);
        }
        pthread_mutex_lock(&s->mu);
        if (s->nlog < 64)
            s->log[s->nlog++] = req;
        pthread_mutex_unlock(&s->mu);
        reply_t rep;
        memset(&rep, 0, sizeof(rep));
        rep.status = 404;
        s->handler(s, &req, &rep);
        if (rep.send_len == 0 || rep.send_len > rep.len)
            rep.send_len = rep.len;
        char head[4096];
        int hl =
            snprintf(head, sizeof(head),
                     "HTTP/1.1 %d Whatever\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n",
                     rep.status, rep.len, rep.headers);
        if (write(c, head, (size_t)hl) != hl) {
            close(c);
            continue;
        }
        const char *b = rep.body;
        size_t off = 0;
        while (off < rep.send_len) {
            ssize_t w = write(c, b + off, rep.send_len - off);
            if (w <= 0)
                break;
            off += (size_t)w;
        }
        shutdown(c, SHUT_WR);
        close(c);
    }
}

static void server_start(server_t *s, handler_t h, void *ctx)
{
    memset(s, 0, sizeof(*s));
    s->handler = h;
    s->ctx = ctx;
    pthread_mutex_init(&s->mu, NULL);
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s->fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->fd, 16), 0);
    socklen_t al = sizeof(a);
    assert_int_equal(getsockname(s->fd, (struct sockaddr *)&a, &al), 0);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&s->th, NULL, serve, s), 0);
}

static void server_stop(server_t *s)
{
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->th, NULL);
    close(s->fd);
    pthread_mutex_destroy(&s->mu);
}

static int count_requests(server_t *s, const char *prefix)
{
    int n = 0;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->nlog; i++)
        if (!strncmp(s->log[i].path, prefix, strlen(prefix)))
            n++;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static request_t last_request(server_t *s)
{
    pthread_mutex_lock(&s->mu);
    request_t r = s->log[s->nlog - 1];
    pthread_mutex_unlock(&s->mu);
    return r;
}

/* ---- test fixture: a store, a client that may use plain http to the server ---- */

struct fx {
    char dir[64];
    drv_store_t *st;
    server_t srv;
    server_t other; /* a second origin, for redirects */
    bool other_started;
    char addr[64];
    drv_registry_t *reg;
    /* scenario data the handlers read */
    const char *manifest;
    const char *lie_digest;
    int token_requests;
    const char *user, *pass;
    uint8_t *blob;
    size_t blob_len;
    bool honour_range;
    int drop_after; /* first blob reply sends only this many bytes (0: all) */
    int blob_gets;
    const char *bad_content_range;
};

static int rm_entry(const char *p, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    return remove(p);
}

static void new_client(struct fx *f, const char *user, const char *pass)
{
    drv_registry_free(f->reg);
    const char *insecure[] = {f->addr};
    drv_registry_cred_t cred = {f->addr, user, pass};
    drv_registry_opts_t o = {.insecure = insecure,
                             .n_insecure = 1,
                             .creds = &cred,
                             .n_creds = user ? 1 : 0,
                             .connect_timeout = 5,
                             .stall_timeout = 10};
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_registry_new(&o, &f->reg, &err), DRV_OK);
}

static void fx_start(struct fx *f, handler_t h)
{
    server_start(&f->srv, h, f);
    snprintf(f->addr, sizeof(f->addr), "127.0.0.1:%d", f->srv.port);
    new_client(f, NULL, NULL);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/drover-test-registry-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    char p[128];
    snprintf(p, sizeof(p), "%s/store", f->dir);
    if (drv_store_open(p, &f->st, NULL) != DRV_OK)
        return -1;
    f->blob_len = 200000;
    f->blob = malloc(f->blob_len);
    for (size_t i = 0; i < f->blob_len; i++)
        f->blob[i] = (uint8_t)((i * 7919) >> 5);
    f->honour_range = true;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (f->srv.port)
        server_stop(&f->srv);
    if (f->other_started)
        server_stop(&f->other);
    drv_registry_free(f->reg);
    drv_store_close(f->st);
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f->blob);
    free(f);
    return 0;
}

static drv_image_ref_t ref_for(struct fx *f, const char *repo_tag)
{
    char s[256];
    snprintf(s, sizeof(s), "%s/%s", f->addr, repo_tag);
    drv_image_ref_t r;
    assert_int_equal(drv_image_ref_parse(s, &r, NULL), DRV_OK);
    return r;
}

static const char manifest_json[] =
    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
    "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":"
    "\"sha256:1111111111111111111111111111111111111111111111111111111111111111\",\"size\":5},"
    "\"layers\":[]}";

/* ---- manifests ---- */

static void manifest_handler(server_t *s, const request_t *req, reply_t *rep)
{
    struct fx *f = s->ctx;
    static const char notfound[] =
        "{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":\"manifest unknown\","
        "\"detail\":{\"Tag\":\"nope\"}}]}";
    if (strstr(req->path, "/manifests/nope")) {
        rep->status = 404;
        rep->body = notfound;
        rep->len = strlen(notfound);
        return;
    }
    if (strstr(req->path, "/manifests/busy")) {
        rep->status = 503;
        return;
    }
    if (strstr(req->path, "/manifests/teapot")) {
        rep->status = 418;
        rep->body = "{\"errors\":[{\"code\":\"X\\u001b[31m\",\"message\":\"m\\n\"}]}";
        rep->len = strlen(rep->body);
        return;
    }
    if (strstr(req->path, "/manifests/")) {
        rep->status = 200;
        rep->body = f->manifest;
        rep->len = strlen(f->manifest);
        drv_digest_t d;
        char ds[DRV_DIGEST_STR_MAX];
        drv_digest_of(f->manifest, strlen(f->manifest), &d);
        snprintf(rep->headers, sizeof(rep->headers),
                 "Content-Type: application/vnd.oci.image.manifest.v1+json\r\n"
                 "Docker-Content-Digest: %s\r\n",
                 f->lie_digest ? f->lie_digest : drv_digest_format(&d, ds));
    }
}

static void test_manifest_by_tag_and_digest(void **state)
{
    struct fx *f = *state;
    f->manifest = manifest_json;
    fx_start(f, manifest_handler);
    drv_image_ref_t ref = ref_for(f, "app:1");
    drv_buf_t body = DRV_BUF_INIT(16);
    char ct[128];
    drv_digest_t d, want;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_registry_get_manifest(f->reg, &ref, "1", &body, ct, sizeof(ct), &d, &err) != DRV_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(body.len, strlen(manifest_json));
    assert_string_equal(ct, "application/vnd.oci.image.manifest.v1+json");
    drv_digest_of(manifest_json, strlen(manifest_json), &want);
    assert_true(drv_digest_equal(&d, &want));
    request_t r = last_request(&f->srv);
    assert_string_equal(r.path, "/v2/app/manifests/1");
    assert_non_null(strstr(r.accept, DRV_MT_OCI_INDEX));
    assert_non_null(strstr(r.accept, DRV_MT_OCI_MANIFEST));
    assert_non_null(strstr(r.accept, DRV_MT_DOCKER_LIST));
    assert_non_null(strstr(r.accept, DRV_MT_DOCKER_MANIFEST));
    assert_int_equal(drv_registry_bytes_received(f->reg), strlen(manifest_json));

    /* by digest: the content must hash to it */
    char ds[DRV_DIGEST_STR_MAX];
    drv_digest_format(&want, ds);
    assert_int_equal(drv_registry_get_manifest(f->reg, &ref, ds, &body, ct, sizeof(ct), &d, &err),
                     DRV_OK);
    const char *wrong = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    assert_int_equal(
        drv_registry_get_manifest(f->reg, &ref, wrong, &body, ct, sizeof(ct), &d, &err),
        DRV_ERR_INTEGRITY);
    assert_non_null(strstr(err.msg, "digest mismatch: expected sha256:2222"));
    assert_non_null(strstr(err.msg, ds));

    /* by tag with a Docker-Content-Digest that does not match the bytes */
    f->lie_digest = wrong;
    assert_int_equal(drv_registry_get_manifest(f->reg, &ref, "1", &body, ct, sizeof(ct), &d, &err),
                     DRV_ERR_INTEGRITY);
    assert_non_null(strstr(err.msg, "registry says sha256:2222"));
    /* a header in another algorithm is not ours to check */
    f->lie_digest = "sha512:abcd";
    assert_int_equal(drv_registry_get_manifest(f->reg, &ref, "1", &body, ct, sizeof(ct), &d, &err),
                     DRV_OK);
    drv_buf_free(&body);
}

static void test_manifest_errors(void **state)
{
    struct fx *f = *state;
    f->manifest = manifest_json;
    fx_start(f, manifest_handler);
    drv_image_ref_t ref = ref_for(f, "app:1");
    drv_buf_t body = DRV_BUF_INIT(16);
    char ct[128];
    drv_digest_t d;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(
        drv_registry_get_manifest(f->reg, &ref, "nope", &body, ct, sizeof(ct), &d, &err),
        DRV_ERR_NOTFOUND);
    assert_string_equal(err.msg, "HTTP 404 MANIFEST_UNKNOWN: manifest unknown");
    assert_int_equal(
        drv_registry_get_manifest(f->reg, &ref, "busy", &body, ct, sizeof(ct), &d, &err),
        DRV_ERR_AGAIN);
    assert_string_equal(err.msg, "HTTP 503 (temporary, retry later)");
    assert_int_equal(
        drv_registry_get_manifest(f->reg, &ref, "teapot", &body, ct, sizeof(ct), &d, &err),
        DRV_ERR_PROTO);
    assert_null(strchr(err.msg, '\x1b'));
    assert_null(strchr(err.msg, '\n'));
    assert_int_equal(drv_registry_bytes_received(f->reg), 0); /* error bodies do not count */

    /* a manifest over 4 MiB is cut off */
    size_t big = DRV_OCI_MANIFEST_MAX_BYTES + 10;
    char *huge = malloc(big + 1);
    memset(huge, ' ', big);
    huge[big] = '\0';
    f->manifest = huge;
    assert_int_equal(drv_registry_get_manifest(f->reg, &ref, "1", &body, ct, sizeof(ct), &d, &err),
                     DRV_ERR_TOOBIG);
    assert_non_null(strstr(err.msg, "larger than 4194304 bytes"));
    free(huge);
    drv_buf_free(&body);

    /* nobody listening: retryable */
    server_stop(&f->srv);
    f->srv.port = 0;
    assert_int_equal(drv_registry_get_manifest(f->reg, &ref, "1", &body, ct, sizeof(ct), &d, &err),
                     DRV_ERR_AGAIN);
    assert_non_null(strstr(err.msg, "retry later"));
    drv_buf_free(&body);
}

static void test_https_by_default(void **state)
{
    struct fx *f = *state;
    f->manifest = manifest_json;
    fx_start(f, manifest_handler);
    drv_registry_free(f->reg);
    assert_int_equal(drv_registry_new(NULL, &f->reg, NULL), DRV_OK); /* nothing insecure */
    drv_image_ref_t ref = ref_for(f, "app:1");
    drv_buf_t body = DRV_BUF_INIT(16);
    drv_digest_t d;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_not_equal(drv_registry_get_manifest(f->reg, &ref, "1", &body, NULL, 0, &d, &err),
                         DRV_OK);
    assert_non_null(strstr(err.msg, "listed insecure"));
    assert_int_equal(count_requests(&f->srv, "/v2/"), 0); /* no plain request was made */
    drv_buf_free(&body);
}

/* ---- auth ---- */

static bool basic_ok(const struct fx *f, const char *auth)
{
    if (f->user == NULL || strncmp(auth, "Basic ", 6) != 0)
        return false;
    char up[256];
    snprintf(up, sizeof(up), "%s:%s", f->user, f->pass);
    char *b64 = drv_base64_encode(up, strlen(up));
    bool ok = b64 && !strcmp(auth + 6, b64);
    free(b64);
    return ok;
}

static void bearer_handler(server_t *s, const request_t *req, reply_t *rep)
{
    struct fx *f = s->ctx;
    static char tokbody[256];
    if (!strncmp(req->path, "/token", 6)) {
        f->token_requests++;
        if (f->user && !basic_ok(f, req->auth)) {
            rep->status = 401;
            return;
        }
        const char *scope = strstr(req->path, "scope=");
        snprintf(tokbody, sizeof(tokbody), "{\"token\":\"tok-%.40s\",\"expires_in\":300}",
                 scope ? scope + 6 : "none");
        /* a token must not carry header-breaking characters: make it plain */
        for (char *p = tokbody + 10; *p && *p != '"'; p++)
            if (*p == '%')
                *p = '_';
        rep->status = 200;
        rep->body = tokbody;
        rep->len = strlen(tokbody);
        return;
    }
    if (!strncmp(req->auth, "Bearer tok-repository_3A", 24)) {
        rep->status = 200;
        rep->body = f->manifest;
        rep->len = strlen(f->manifest);
        return;
    }
    rep->status = 401;
    snprintf(rep->headers, sizeof(rep->headers),
             "WWW-Authenticate: Basic realm=\"other\"\r\n"
             "WWW-Authenticate: Bearer realm=\"http://127.0.0.1:%d/token\",service=\"reg test\","
             "scope=\"repository:x:pull\"\r\n",
             s->port);
}

static void test_bearer_token(void **state)
{
    struct fx *f = *state;
    f->manifest = manifest_json;
    f->user = "drover";
    f->pass = "s3cret:with colon";
    fx_start(f, bearer_handler);
    new_client(f, f->user, f->pass);
    drv_image_ref_t ra = ref_for(f, "team/a:1"), rb = ref_for(f, "team/b:1");
    drv_buf_t body = DRV_BUF_INIT(16);
    drv_digest_t d;
    drv_error_t err = DRV_ERROR_INIT;
    for (int i = 0; i < 3; i++)
        if (drv_registry_get_manifest(f->reg, &ra, "1", &body, NULL, 0, &d, &err) != DRV_OK)
            fail_msg("%s", err.msg);
    assert_int_equal(f->token_requests, 1); /* cached for the repository */
    request_t tok;
    pthread_mutex_lock(&f->srv.mu);
    tok = f->srv.log[1];
    pthread_mutex_unlock(&f->srv.mu);
    assert_string_equal(tok.path, "/token?service=reg%20test&scope=repository%3Ateam%2Fa%3Apull");
    assert_true(basic_ok(f, tok.auth));
    assert_int_equal(drv_registry_get_manifest(f->reg, &rb, "1", &body, NULL, 0, &d, &err), DRV_OK);
    assert_int_equal(f->token_requests, 2); /* another repository, another token */

    /* wrong password: the token endpoint says no */
    new_client(f, "drover", "wrong");
    assert_int_equal(drv_registry_get_manifest(f->reg, &ra, "1", &body, NULL, 0, &d, &err),
                     DRV_ERR_PERM);
    assert_non_null(strstr(err.msg, "/token: credentials refused"));
    /* no credentials at all */
    new_client(f, NULL, NULL);
    assert_int_equal(drv_registry_get_manifest(f->reg, &ra, "1", &body, NULL, 0, &d, &err),
                     DRV_ERR_PERM);
    assert_non_null(strstr(err.msg, "anonymous access refused"));
    drv_buf_free(&body);
}

static void basic_handler(server_t *s, const request_t *req, reply_t *rep)
{
    struct fx *f = s->ctx;
    if (basic_ok(f, req->auth)) {
        rep->status = 200;
        rep->body = f->manifest;
        rep->len = strlen(f->manifest);
        return;
    }
    rep->status = 401;
    rep->body =
        "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"authentication required\"}]}";
    rep->len = strlen(rep->body);
    snprintf(rep->headers, sizeof(rep->headers), "WWW-Authenticate: Basic realm=\"test\"\r\n");
}

static void test_basic_auth(void **state)
{
    struct fx *f = *state;
    f->manifest = manifest_json;
    f->user = "u";
    f->pass = "p";
    fx_start(f, basic_handler);
    drv_image_ref_t ref = ref_for(f, "app:1");
    drv_buf_t body = DRV_BUF_INIT(16);
    drv_digest_t d;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_registry_get_manifest(f->reg, &ref, "1", &body, NULL, 0, &d, &err),
                     DRV_ERR_PERM);
    assert_non_null(strstr(err.msg, "needs credentials (--auth"));
    assert_non_null(strstr(err.msg, "HTTP 401 UNAUTHORIZED: authentication required"));
    new_client(f, "u", "p");
    assert_int_equal(drv_registry_get_manifest(f->reg, &ref, "1", &body, NULL, 0, &d, &err),
                     DRV_OK);
    int before = count_requests(&f->srv, "/v2/");
    assert_int_equal(drv_registry_get_manifest(f->reg, &ref, "1", &body, NULL, 0, &d, &err),
                     DRV_OK);
    assert_int_equal(count_requests(&f->srv, "/v2/"), before + 1); /* sent up front now */
    new_client(f, "u", "bad");
    assert_int_equal(drv_registry_get_manifest(f->reg, &ref, "1", &body, NULL, 0, &d, &err),
                     DRV_ERR_PERM);
    assert_non_null(strstr(err.msg, "refused"));
    drv_buf_free(&body);
}

/* ---- blobs ---- */

static void blob_handler(server_t *s, const request_t *req, reply_t *rep)
{
    struct fx *f = s->ctx;
    static char hdr[256];
    if (strncmp(req->path, "/v2/app/blobs/", 14) != 0)
        return;
    f->blob_gets++;
    unsigned long long from = 0;
    if (f->honour_range && req->range[0] && sscanf(req->range, "bytes=%llu-", &from) == 1 &&
        from < f->blob_len) {
        rep->status = 206;
        snprintf(hdr, sizeof(hdr), "Content-Range: bytes %llu-%zu/%zu\r\n",
                 f->bad_content_range ? 0ULL : from, f->blob_len - 1, f->blob_len);
        snprintf(rep->headers, sizeof(rep->headers), "%s", hdr);
        rep->body = f->blob + from;
        rep->len = f->blob_len - from;
    } else {
        rep->status = 200;
        rep->body = f->blob;
        rep->len = f->blob_len;
    }
    if (f->drop_after && f->blob_gets == 1)
        rep->send_len = (size_t)f->drop_after;
}

static void put_partial(struct fx *f, const drv_digest_t *d, size_t n)
{
    char p[4096], pp[4200];
    assert_int_equal(drv_store_blob_path(f->st, d, p, sizeof(p)), DRV_OK);
    snprintf(pp, sizeof(pp), "%s.partial", p);
    int fd = open(pp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, f->blob, n), (ssize_t)n);
    close(fd);
}

static void test_blob_resume(void **state)
{
    struct fx *f = *state;
    fx_start(f, blob_handler);
    drv_image_ref_t ref = ref_for(f, "app:1");
    drv_digest_t d;
    drv_digest_of(f->blob, f->blob_len, &d);
    drv_error_t err = DRV_ERROR_INIT;
    put_partial(f, &d, 50000);
    if (drv_registry_fetch_blob(f->reg, &ref, f->st, &d, f->blob_len, "layer", &err) != DRV_OK)
        fail_msg("%s", err.msg);
    request_t r = last_request(&f->srv);
    assert_string_equal(r.range, "bytes=50000-");
    assert_int_equal(drv_registry_bytes_received(f->reg), f->blob_len - 50000);
    assert_true(drv_store_has_blob(f->st, &d));
    /* present: no request at all */
    int before = f->blob_gets;
    assert_int_equal(drv_registry_fetch_blob(f->reg, &ref, f->st, &d, f->blob_len, "layer", &err),
                     DRV_OK);
    assert_int_equal(f->blob_gets, before);
}

static void test_blob_server_ignores_range(void **state)
{
    struct fx *f = *state;
    f->honour_range = false;
    fx_start(f, blob_handler);
    drv_image_ref_t ref = ref_for(f, "app:1");
    drv_digest_t d;
    drv_digest_of(f->blob, f->blob_len, &d);
    drv_error_t err = DRV_ERROR_INIT;
    put_partial(f, &d, 50000);
    if (drv_registry_fetch_blob(f->reg, &ref, f->st, &d, f->blob_len, "layer", &err) != DRV_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(drv_registry_bytes_received(f->reg), f->blob_len);
    char p[4096];
    assert_int_equal(drv_store_blob_path(f->st, &d, p, sizeof(p)), DRV_OK);
    drv_digest_t got;
    uint64_t size;
    assert_int_equal(drv_digest_file(p, &got, &size, NULL), DRV_OK);
    assert_int_equal(size, f->blob_len);
    assert_true(drv_digest_equal(&got, &d));
}

static void test_blob_bad_content_range(void **state)
{
    struct fx *f = *state;
    f->bad_content_range = "yes";
    fx_start(f, blob_handler);
    drv_image_ref_t ref = ref_for(f, "app:1");
    drv_digest_t d;
    drv_digest_of(f->blob, f->blob_len, &d);
    drv_error_t err = DRV_ERROR_INIT;
    put_partial(f, &d, 50000);
    assert_int_equal(drv_registry_fetch_blob(f->reg, &ref, f->st, &d, f->blob_len, "layer", &err),
                     DRV_ERR_PROTO);
    assert_non_null(strstr(err.msg, "asked for bytes from 50000, got Content-Range \"bytes 0-"));
    assert_false(drv_store_has_blob(f->st, &d));
}

static void test_blob_dropped_connection_resumes(void **state)
{
    struct fx *f = *state;
    f->drop_after = 70000;
    fx_start(f, blob_handler);
    drv_image_ref_t ref = ref_for(f, "app:1");
    drv_digest_t d;
    drv_digest_of(f->blob, f->blob_len, &d);
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_registry_fetch_blob(f->reg, &ref, f->st, &d, f->blob_len, "layer", &err) != DRV_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(f->blob_gets, 2);
    request_t r = last_request(&f->srv);
    assert_string_equal(r.range, "bytes=70000-");
    assert_int_equal(drv_registry_bytes_received(f->reg), f->blob_len);
    assert_true(drv_store_has_blob(f->st, &d));
}

static void test_blob_size_and_digest_checked(void **state)
{
    struct fx *f = *state;
    fx_start(f, blob_handler);
    drv_image_ref_t ref = ref_for(f, "app:1");
    drv_digest_t d, wrong;
    drv_digest_of(f->blob, f->blob_len, &d);
    drv_digest_of("other", 5, &wrong);
    drv_error_t err = DRV_ERROR_INIT;
    /* the descriptor says it is smaller than what comes */
    assert_int_equal(drv_registry_fetch_blob(f->reg, &ref, f->st, &d, 1000, "layer", &err),
                     DRV_ERR_TOOBIG);
    assert_non_null(strstr(err.msg, "larger than the 1000 bytes its descriptor gives"));
    /* the bytes do not hash to the digest asked for: refused, nothing kept */
    assert_int_equal(
        drv_registry_fetch_blob(f->reg, &ref, f->st, &wrong, f->blob_len, "layer x", &err),
        DRV_ERR_INTEGRITY);
    char ws[DRV_DIGEST_STR_MAX], ds[DRV_DIGEST_STR_MAX], expect[300];
    snprintf(expect, sizeof(expect), "layer x: digest mismatch: expected %s, got %s",
             drv_digest_format(&wrong, ws), drv_digest_format(&d, ds));
    assert_string_equal(err.msg, expect);
    char p[4096], pp[4200];
    assert_int_equal(drv_store_blob_path(f->st, &wrong, p, sizeof(p)), DRV_OK);
    snprintf(pp, sizeof(pp), "%s.partial", p);
    assert_int_equal(access(pp, F_OK), -1);
    assert_int_equal(access(p, F_OK), -1);
}

/* ---- redirects ---- */

static void storage_handler(server_t *s, const request_t *req, reply_t *rep)
{
    struct fx *f = s->ctx;
    if (req->auth[0]) { /* credentials must not travel to another origin */
        rep->status = 403;
        return;
    }
    rep->status = 200;
    rep->body = f->blob;
    rep->len = f->blob_len;
}

static void redirect_handler(server_t *s, const request_t *req, reply_t *rep)
{
    struct fx *f = s->ctx;
    if (strstr(req->path, "/blobs/") && strcmp(req->auth, "Basic dTpw") != 0) {
        rep->status = 401;
        snprintf(rep->headers, sizeof(rep->headers), "WWW-Authenticate: Basic realm=\"r\"\r\n");
        return;
    }
    rep->status = 307;
    if (strstr(req->path, "/loop"))
        snprintf(rep->headers, sizeof(rep->headers), "Location: /v2/loop/blobs/x\r\n");
    else if (strstr(req->path, "/file"))
        snprintf(rep->headers, sizeof(rep->headers), "Location: file:///etc/passwd\r\n");
    else
        snprintf(rep->headers, sizeof(rep->headers),
                 "Location: http://127.0.0.1:%d/storage/blob?sig=1\r\n", f->other.port);
}

static void test_redirects(void **state)
{
    struct fx *f = *state;
    server_start(&f->other, storage_handler, f);
    f->other_started = true;
    fx_start(f, redirect_handler);
    new_client(f, "u", "p");
    drv_image_ref_t ref = ref_for(f, "app:1");
    drv_digest_t d;
    drv_digest_of(f->blob, f->blob_len, &d);
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_registry_fetch_blob(f->reg, &ref, f->st, &d, f->blob_len, "layer", &err) != DRV_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(count_requests(&f->other, "/storage/blob?sig=1"), 1);
    request_t r = last_request(&f->other);
    assert_string_equal(r.auth, "");

    drv_image_ref_t loop = ref_for(f, "loop:1"), file = ref_for(f, "file:1");
    drv_digest_t d2;
    drv_digest_of("x", 1, &d2);
    assert_int_equal(drv_registry_fetch_blob(f->reg, &loop, f->st, &d2, 1, "layer", &err),
                     DRV_ERR_PROTO);
    assert_non_null(strstr(err.msg, "redirect"));
    assert_int_equal(drv_registry_fetch_blob(f->reg, &file, f->st, &d2, 1, "layer", &err),
                     DRV_ERR_PROTO);
    assert_non_null(strstr(err.msg, "not allowed"));
}

/* ---- challenge parsing ---- */

static void test_parse_challenge(void **state)
{
    (void)state;
    drv_auth_challenge_t c;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(
        drv_registry_parse_challenge(
            "Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
            "scope=\"repository:library/busybox:pull\"",
            &c, &err),
        DRV_OK);
    assert_string_equal(c.scheme, "Bearer");
    assert_string_equal(c.realm, "https://auth.docker.io/token");
    assert_string_equal(c.service, "registry.docker.io");
    assert_string_equal(c.scope, "repository:library/busybox:pull");

    assert_int_equal(
        drv_registry_parse_challenge(
            "  bearer  Realm = https://r/t , error=\"insufficient_scope\",service=s", &c, &err),
        DRV_OK);
    assert_string_equal(c.scheme, "bearer");
    assert_string_equal(c.realm, "https://r/t");
    assert_string_equal(c.service, "s");
    assert_string_equal(c.scope, "");

    assert_int_equal(
        drv_registry_parse_challenge("Basic realm=\"a \\\"quoted\\\" realm\"", &c, &err), DRV_OK);
    assert_string_equal(c.scheme, "Basic");
    assert_string_equal(c.realm, "a \"quoted\" realm");

    assert_int_equal(drv_registry_parse_challenge("Basic", &c, &err), DRV_OK);
    assert_string_equal(c.realm, "");

    assert_int_equal(drv_registry_parse_challenge("", &c, &err), DRV_ERR_PROTO);
    assert_int_equal(drv_registry_parse_challenge(NULL, &c, &err), DRV_ERR_PROTO);
    assert_int_equal(drv_registry_parse_challenge("=x", &c, &err), DRV_ERR_PROTO);
    assert_int_equal(drv_registry_parse_challenge("Bearer realm=\"open", &c, &err), DRV_ERR_PROTO);
    assert_non_null(strstr(err.msg, "unterminated"));
    char longv[3000];
    snprintf(longv, sizeof(longv), "Bearer realm=\"");
    memset(longv + 14, 'a', 1500);
    snprintf(longv + 1514, sizeof(longv) - 1514, "\"");
    assert_int_equal(drv_registry_parse_challenge(longv, &c, &err), DRV_ERR_PROTO);
    assert_non_null(strstr(err.msg, "realm is longer than"));
    memset(longv + 14, 'a', 2500);
    snprintf(longv + 2514, sizeof(longv) - 2514, "\"");
    assert_int_equal(drv_registry_parse_challenge(longv, &c, &err), DRV_ERR_PROTO);
    assert_int_equal(drv_registry_parse_challenge("VeryLongSchemeNameBeyondLimit x=y", &c, &err),
                     DRV_ERR_PROTO);
}

static void test_options_checked(void **state)
{
    (void)state;
    drv_registry_t *reg = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    const char *insecure[] = {""};
    drv_registry_opts_t o = {.insecure = insecure, .n_insecure = 1};
    assert_int_equal(drv_registry_new(&o, &reg, &err), DRV_ERR_INVALID);
    assert_non_null(strstr(err.msg, "insecure[0]"));
    drv_registry_cred_t cred = {"h", "us:er", "p"};
    drv_registry_opts_t o2 = {.creds = &cred, .n_creds = 1};
    assert_int_equal(drv_registry_new(&o2, &reg, &err), DRV_ERR_INVALID);
    assert_non_null(strstr(err.msg, "creds[0]"));
    assert_null(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_manifest_by_tag_and_digest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_manifest_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_https_by_default, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bearer_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_basic_auth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blob_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blob_server_ignores_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blob_bad_content_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blob_dropped_connection_resumes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blob_size_and_digest_checked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redirects, setup, teardown),
        cmocka_unit_test(test_parse_challenge),
        cmocka_unit_test(test_options_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
