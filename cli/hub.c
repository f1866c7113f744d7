/* The drover CLI's hub client: where the hub is, one bounded libcurl request at a time,
 * kubectl-style error printing and Server-Sent-Event watch streams. */
#include <ctype.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "drover/doc.h"
#include "drover/fmt.h"

#define URL_MAX 1024
#define CONFIG_MAX (64u * 1024)
#define SSE_LINE_MAX (8u * 1024 * 1024)
#define TOKEN_MAX 512

static const char *hub_flag;
static const char *token_flag;
static const char *ca_flag;
static char hub_url[URL_MAX];

void drv_cli_hub_set(const char *url)
{
    hub_flag = url;
}

bool drv_cli_config_path(char *out, size_t outsz)
{
    const char *home = getenv("HOME");
    const char *xdg = getenv("XDG_CONFIG_HOME");
    if (!(xdg && *xdg) && !(home && *home))
        return false;
    int n = xdg && *xdg ? snprintf(out, outsz, "%s/drover/config", xdg)
                        : snprintf(out, outsz, "%s/.config/drover/config", home);
    return n > 0 && (size_t)n < outsz;
}

cJSON *drv_cli_config_load(bool quiet)
{
    char path[URL_MAX];
    if (!drv_cli_config_path(path, sizeof(path)))
        return NULL;
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    struct stat sb;
    bool open_to_others = fstat(fileno(f), &sb) == 0 && (sb.st_mode & 077);
    char *text = malloc(CONFIG_MAX + 1);
    size_t len = text ? fread(text, 1, CONFIG_MAX, f) : 0;
    fclose(f);
    if (!text)
        return NULL;
    drv_doc_list_t docs = {0};
    drv_error_t err = DRV_ERROR_INIT;
    cJSON *root = NULL;
    if (drv_doc_parse(text, len, NULL, &docs, &err) == DRV_OK && docs.count &&
        cJSON_IsObject(docs.docs[0].root)) {
        root = cJSON_Duplicate(docs.docs[0].root, true);
    } else if (err.code != DRV_OK && !quiet) {
        fprintf(stderr, "drover: ignoring %s: %s\n", path, drv_error_msg(&err));
    }
    drv_doc_list_free(&docs);
    free(text);
    if (root && open_to_others && !quiet &&
        cJSON_IsString(cJSON_GetObjectItemCaseSensitive(root, "token")))
        fprintf(stderr,
                "drover: warning: %s holds a token and is readable by others (chmod 600 it)\n",
                path);
    return root;
}

/* A string key of the config file into out; false if absent. */
static bool from_config(const char *key, char *out, size_t outsz)
{
    cJSON *root = drv_cli_config_load(false);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    bool ok =
        cJSON_IsString(v) && *v->valuestring && drv_fmt(out, outsz, "%s", v->valuestring) == DRV_OK;
    cJSON_Delete(root);
    return ok;
}

/* Copies a setting given as what (--hub, $DROVER_HUB, ...) into out. One that does not fit
 * ends the command: cut short, a URL or file name would name another. */
static void setting(char *out, size_t outsz, const char *what, const char *val)
{
    if (drv_fmt(out, outsz, "%s", val) != DRV_OK) {
        fprintf(stderr, "drover: %s is too long (at most %zu bytes)\n", what, outsz - 1);
        exit(2);
    }
}

bool drv_cli_hub_configured(void)
{
    const char *env = getenv("DROVER_HUB");
    char url[URL_MAX];
    return hub_flag || (env && *env) || from_config("hub", url, sizeof(url));
}

const char *drv_cli_hub_url(void)
{
    const char *env = getenv("DROVER_HUB");
    if (hub_flag && *hub_flag)
        setting(hub_url, sizeof(hub_url), "the --hub URL", hub_flag);
    else if (env && *env)
        setting(hub_url, sizeof(hub_url), "$DROVER_HUB", env);
    else if (!from_config("hub", hub_url, sizeof(hub_url)))
        setting(hub_url, sizeof(hub_url), "the default hub URL", "http://127.0.0.1:8080");
    size_t l = strlen(hub_url);
    while (l && hub_url[l - 1] == '/')
        hub_url[--l] = '\0';
    return hub_url;
}

void drv_cli_token_set(const char *token)
{
    token_flag = token;
}

const char *drv_cli_token(void)
{
    static bool done;
    static char token[TOKEN_MAX];
    if (done)
        return *token ? token : NULL;
    done = true;
    const char *env = getenv("DROVER_TOKEN");
    const char *from = "--token";
    if (token_flag && *token_flag) {
        setting(token, sizeof(token), "the --token token", token_flag);
    } else if (env && *env) {
        setting(token, sizeof(token), "$DROVER_TOKEN", env);
        from = "DROVER_TOKEN";
    } else if (!from_config("token", token, sizeof(token))) {
        token[0] = '\0';
        return NULL;
    } else {
        from = "the config file";
    }
    for (const char *p = token; *p; p++) {
        if ((unsigned char)*p <= 0x20 || *p == 0x7f) {
            fprintf(stderr,
                    "drover: the token from %s holds spaces or control characters; "
                    "not sending it\n",
                    from);
            token[0] = '\0';
            return NULL;
        }
    }
    return *token ? token : NULL;
}

void drv_cli_ca_set(const char *path)
{
    ca_flag = path;
}

const char *drv_cli_ca(void)
{
    static bool done;
    static char ca[URL_MAX];
    if (!done) {
        done = true;
        const char *env = getenv("DROVER_CA");
        if (ca_flag && *ca_flag)
            setting(ca, sizeof(ca), "the --ca file name", ca_flag);
        else if (env && *env)
            setting(ca, sizeof(ca), "$DROVER_CA", env);
        else if (!from_config("ca", ca, sizeof(ca)))
            ca[0] = '\0';
    }
    return *ca ? ca : NULL;
}

void drv_cli_tls_setup(void *curl)
{
    const char *ca = drv_cli_ca();
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    if (ca)
        curl_easy_setopt(curl, CURLOPT_CAINFO, ca);
}

bool drv_cli_tls_error(int rc, const char *errbuf)
{
    const char *url = drv_cli_hub_url();
    const char *ca = drv_cli_ca();
    const char *why = errbuf && *errbuf ? errbuf : curl_easy_strerror((CURLcode)rc);
    switch ((CURLcode)rc) {
    case CURLE_PEER_FAILED_VERIFICATION:
        if (ca)
            fprintf(stderr,
                    "drover: the hub at %s presented a certificate the CA in %s does not "
                    "verify (%s); is --ca the hub's <data>/pki/ca.crt, and does the URL name "
                    "the hub as its certificate does (drover-hub --san)?\n",
                    url, ca, why);
        else
            fprintf(stderr,
                    "drover: cannot verify the hub's certificate at %s (%s): pass the hub's CA "
                    "with --ca FILE (the hub's <data>/pki/ca.crt), $DROVER_CA, or ca: in the "
                    "config file\n",
                    url, why);
        return true;
    case CURLE_SSL_CACERT_BADFILE:
        fprintf(stderr, "drover: --ca %s: not a readable CA certificate file (%s)\n",
                ca ? ca : "(none)", why);
        return true;
    case CURLE_SSL_CONNECT_ERROR:
        fprintf(stderr,
                "drover: TLS handshake with the hub at %s failed (%s); does the hub serve "
                "HTTPS (drover-hub --tls)?\n",
                url, why);
        return true;
    case CURLE_GOT_NOTHING:
        if (strncmp(url, "http://", 7))
            return false;
        fprintf(stderr,
                "drover: the hub at %s closed the connection without an answer (%s); if it "
                "serves HTTPS, use an https:// URL and --ca FILE\n",
                url, why);
        return true;
    default:
        return false;
    }
}

struct curl_slist *drv_cli_auth_header(struct curl_slist *hdrs)
{
    const char *t = drv_cli_token();
    if (!t)
        return hdrs;
    char h[TOKEN_MAX + 32];
    if (drv_fmt(h, sizeof(h), "Authorization: Bearer %s", t) != DRV_OK) {
        fprintf(stderr, "drover: the token is too long for a header; not sending it\n");
        return hdrs;
    }
    struct curl_slist *n = curl_slist_append(hdrs, h);
    explicit_bzero(h, sizeof(h));
    return n ? n : hdrs;
}

static bool curl_ready(void)
{
    static bool done, ok;
    if (!done) {
        ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
        done = true;
    }
    if (!ok)
        fprintf(stderr, "drover: cannot initialise libcurl\n");
    return ok;
}

static size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
    drv_buf_t *b = ctx;
    if (drv_buf_append(b, data, size * n) != DRV_OK)
        return 0; /* over the cap: curl aborts with CURLE_WRITE_ERROR */
    return size * n;
}

/* accept: the whole Accept header line. */
static CURL *make_handle(const char *method, const char *path, char *url, size_t urlsz,
                         struct curl_slist **hdrs, const char *ctype, const char *accept)
{
    const char *base = drv_cli_hub_url();
    int n = snprintf(url, urlsz, "%s%s", base, path);
    if (n < 0 || (size_t)n >= urlsz) {
        fprintf(stderr, "drover: request URL too long\n");
        return NULL;
    }
    if (!curl_ready())
        return NULL;
    CURL *c = curl_easy_init();
    if (!c) {
        fprintf(stderr, "drover: out of memory\n");
        return NULL;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)DRV_CLI_MAX_RESPONSE);
    *hdrs = curl_slist_append(*hdrs, accept);
    *hdrs = drv_cli_auth_header(*hdrs);
    if (ctype) {
        char h[128];
        if (drv_fmt(h, sizeof(h), "Content-Type: %s", ctype) != DRV_OK) {
            fprintf(stderr, "drover: Content-Type %s too long\n", ctype);
            curl_easy_cleanup(c);
            return NULL;
        }
        *hdrs = curl_slist_append(*hdrs, h);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, *hdrs);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "drover-cli");
    drv_cli_tls_setup(c);
    return c;
}

static void print_curl_error(CURL *c, CURLcode rc, const char *errbuf)
{
    const char *why = *errbuf ? errbuf : curl_easy_strerror(rc);
    long oserr = 0;
    curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &oserr);
    if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
        rc == CURLE_OPERATION_TIMEDOUT) {
        /* libcurl says "Failed to connect to 127.0.0.1 port 1 after 0 ms: Couldn't connect to
         * server"; the system's reason is what a user needs. */
        fprintf(stderr, "drover: cannot reach the hub at %s: %s\n", hub_url,
                rc == CURLE_COULDNT_CONNECT && oserr ? strerror((int)oserr) : why);
    } else if (drv_cli_tls_error(rc, errbuf)) {
        /* said */
    } else if (rc == CURLE_WRITE_ERROR || rc == CURLE_FILESIZE_EXCEEDED) {
        fprintf(stderr, "drover: the hub at %s sent more than %u bytes\n", hub_url,
                DRV_CLI_MAX_RESPONSE);
    } else {
        fprintf(stderr, "drover: request to the hub at %s failed: %s\n", hub_url, why);
    }
}

int drv_cli_request(const char *method, const char *path, const char *ctype, const char *body,
                    drv_cli_resp_t *resp)
{
    memset(resp, 0, sizeof(*resp));
    drv_buf_init(&resp->body, DRV_CLI_MAX_RESPONSE);
    char url[URL_MAX * 2];
    struct curl_slist *hdrs = NULL;
    CURL *c = make_handle(method, path, url, sizeof(url), &hdrs, ctype, "Accept: application/json");
    if (!c) {
        curl_slist_free_all(hdrs);
        return 1;
    }
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, DRV_CLI_TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp->body);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    }
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK) {
        print_curl_error(c, rc, errbuf);
        curl_easy_cleanup(c);
        curl_slist_free_all(hdrs);
        drv_buf_free(&resp->body);
        return 1;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
    curl_easy_cleanup(c);
    curl_slist_free_all(hdrs);
    if (resp->body.len)
        resp->json = cJSON_ParseWithLength(resp->body.data, resp->body.len);
    return 0;
}

void drv_cli_resp_free(drv_cli_resp_t *resp)
{
    drv_buf_free(&resp->body);
    cJSON_Delete(resp->json);
    resp->json = NULL;
}

void drv_cli_print_status(const drv_cli_resp_t *resp)
{
    const cJSON *j = resp->json;
    const cJSON *reason = cJSON_GetObjectItemCaseSensitive(j, "reason");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(j, "message");
    if (cJSON_IsString(msg))
        fprintf(stderr, "Error from server (%s): %s\n",
                cJSON_IsString(reason) ? reason->valuestring : "Unknown", msg->valuestring);
    else
        fprintf(stderr, "Error from server: HTTP %ld: %.200s\n", resp->status,
                resp->body.len ? drv_buf_str(&resp->body) : "(no body)");
    drv_cli_print_causes(j, "(object)");
}

void drv_cli_print_causes(const cJSON *status, const char *no_field)
{
    const cJSON *details = cJSON_GetObjectItemCaseSensitive(status, "details");
    const cJSON *cause;
    cJSON_ArrayForEach(cause, cJSON_GetObjectItemCaseSensitive(details, "causes"))
    {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(cause, "field");
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(cause, "message");
        fprintf(stderr, "  %s: %s\n",
                cJSON_IsString(f) && *f->valuestring ? f->valuestring : no_field,
                cJSON_IsString(m) ? m->valuestring : "invalid");
    }
}

/* ---- Watch streams ---- */

typedef struct sse {
    drv_buf_t line;
    char type[32];
    drv_buf_t data;
    bool (*fn)(const char *type, cJSON *obj, void *ctx);
    void *ctx;
    bool stop;
    bool bad;
} sse_t;

static bool sse_line(sse_t *s, const char *l, size_t n)
{
    if (n == 0) { /* dispatch */
        if (s->data.len) {
            cJSON *obj = cJSON_ParseWithLength(s->data.data, s->data.len);
            if (!strcmp(s->type, "ERROR")) {
                const cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, "message");
                fprintf(stderr, "drover: watch ended by the hub: %s\n",
                        cJSON_IsString(m) ? m->valuestring : drv_buf_str(&s->data));
                s->bad = true;
                cJSON_Delete(obj);
                return false;
            }
            if (obj && !s->fn(*s->type ? s->type : "MODIFIED", obj, s->ctx))
                s->stop = true;
            cJSON_Delete(obj);
        }
        drv_buf_reset(&s->data);
        s->type[0] = '\0';
        return !s->stop;
    }
    if (n > 7 && !memcmp(l, "event: ", 7)) {
        if (n - 7 >= sizeof(s->type) ||
            drv_fmt(s->type, sizeof(s->type), "%.*s", (int)(n - 7), l + 7) != DRV_OK) {
            fprintf(stderr, "drover: watch event type too long\n");
            s->bad = true;
            return false;
        }
    } else if (n >= 6 && !memcmp(l, "data: ", 6)) {
        if ((s->data.len && drv_buf_putc(&s->data, '\n') != DRV_OK) ||
            drv_buf_append(&s->data, l + 6, n - 6) != DRV_OK) {
            fprintf(stderr, "drover: watch event too large\n");
            s->bad = true;
            return false;
        }
    }
    return true;
}

static size_t on_sse(char *data, size_t size, size_t n, void *ctx)
{
    sse_t *s = ctx;
    size_t total = size * n;
    for (size_t i = 0; i < total; i++) {
        if (data[i] == '\n') {
            size_t l = s->line.len;
            if (l && s->line.data[l - 1] == '\r')
                l--;
            bool go = sse_line(s, s->line.data ? s->line.data : "", l);
            drv_buf_reset(&s->line);
            if (!go)
                return 0;
        } else if (drv_buf_putc(&s->line, data[i]) != DRV_OK) {
            fprintf(stderr, "drover: watch line too long\n");
            s->bad = true;
            return 0;
        }
    }
    fflush(stdout);
    return total;
}

int drv_cli_watch(const char *path, bool (*fn)(const char *type, cJSON *obj, void *ctx), void *ctx)
{
    char url[URL_MAX * 2];
    struct curl_slist *hdrs = NULL;
    CURL *c = make_handle("GET", path, url, sizeof(url), &hdrs, NULL,
                          "Accept: text/event-stream"); /* the form on_sse reads */
    if (!c) {
        curl_slist_free_all(hdrs);
        return 1;
    }
    sse_t s = {.line = DRV_BUF_INIT(SSE_LINE_MAX),
               .data = DRV_BUF_INIT(SSE_LINE_MAX),
               .fn = fn,
               .ctx = ctx};
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    /* No overall deadline; the hub sends keep-alives every 15 s, so a minute of silence
     * means it is gone. */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_sse);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    CURLcode rc = curl_easy_perform(c);
    int ret = 0;
    if (s.bad) {
        ret = 1;
    } else if (rc == CURLE_HTTP_RETURNED_ERROR) {
        long st = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
        fprintf(stderr, "drover: watch refused by the hub: HTTP %ld\n", st);
        ret = 1;
    } else if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && s.stop)) {
        print_curl_error(c, rc, errbuf);
        ret = 1;
    }
    curl_easy_cleanup(c);
    curl_slist_free_all(hdrs);
    drv_buf_free(&s.line);
    drv_buf_free(&s.data);
    return ret;
}

/* ---- Paths ---- */

bool drv_cli_escape(const char *s, char *out, size_t outsz)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (isalnum(ch) || strchr("-._~", ch)) {
            if (o + 1 >= outsz)
                return false;
            out[o++] = (char)ch;
        } else {
            if (o + 3 >= outsz)
                return false;
            out[o++] = '%';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        }
    }
    if (o >= outsz)
        return false;
    out[o] = '\0';
    return true;
}

bool drv_cli_namespaced(drv_kind_t kind)
{
    /* Nodes, Namespaces, PersistentVolumes, StorageClasses are cluster-scoped. */
    return kind == DRV_KIND_UNKNOWN || drv_kind_namespaced(kind);
}

bool drv_cli_path(drv_kind_t kind, const char *ns, const char *name, char *out, size_t outsz)
{
    const char *av = drv_kind_api_version(kind);
    char nspart[300] = "";
    if (drv_cli_namespaced(kind) && ns && *ns) {
        char e[256];
        if (!drv_cli_escape(ns, e, sizeof(e)))
            return false;
        if (drv_fmt(nspart, sizeof(nspart), "/namespaces/%s", e) != DRV_OK)
            return false;
    }
    char namepart[600] = "";
    if (name) {
        char e[512];
        if (!drv_cli_escape(name, e, sizeof(e)))
            return false;
        if (drv_fmt(namepart, sizeof(namepart), "/%s", e) != DRV_OK)
            return false;
    }
    int n = snprintf(out, outsz, "%s/%s%s/%s%s", strchr(av, '/') ? "/apis" : "/api", av, nspart,
                     drv_kind_plural(kind), namepart);
    return n > 0 && (size_t)n < outsz;
}

const char *drv_cli_kind_ref(drv_kind_t kind)
{
    switch (kind) {
    case DRV_KIND_POD:
        return "pod";
    case DRV_KIND_DEPLOYMENT:
        return "deployment.apps";
    case DRV_KIND_DAEMONSET:
        return "daemonset.apps";
    case DRV_KIND_CONFIGMAP:
        return "configmap";
    case DRV_KIND_SECRET:
        return "secret";
    case DRV_KIND_SERVICE:
        return "service";
    case DRV_KIND_NODE:
        return "node";
    case DRV_KIND_EVENT:
        return "event";
    case DRV_KIND_HPA:
        return "horizontalpodautoscaler.autoscaling";
    case DRV_KIND_PVC:
        return "persistentvolumeclaim";
    case DRV_KIND_PV:
        return "persistentvolume";
    case DRV_KIND_STORAGECLASS:
        return "storageclass.storage.k8s.io";
    default:
        return "object";
    }
}

int drv_cli_list(const char *path, int argc, char **argv, int (*usage)(void), drv_cli_resp_t *resp,
                 const cJSON **items, bool *done)
{
    *done = true;
    bool json = false;
    if (argc == 3 && !strcmp(argv[1], "-o") && !strcmp(argv[2], "json"))
        json = true;
    else if (argc != 1)
        return usage();
    if (drv_cli_request("GET", path, NULL, NULL, resp))
        return 1;
    *items = cJSON_GetObjectItemCaseSensitive(resp->json, "items");
    if (resp->status != 200 || !cJSON_IsArray(*items)) {
        drv_cli_print_status(resp);
        drv_cli_resp_free(resp);
        return 1;
    }
    if (json) {
        char *s = cJSON_Print(resp->json);
        if (s)
            printf("%s\n", s);
        free(s);
        drv_cli_resp_free(resp);
        return 0;
    }
    *done = false;
    return 0;
}
