/* The node's identity (enroll.h): checks the files under <state_dir>/identity, enrols with a
 * bootstrap token when there is no valid identity and renews the certificate when it is due.
 * HTTP goes through the agent's dlopen'd libcurl (net/curl.h). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "drover/buf.h"
#include "drover/cleanup.h"
#include "drover/file.h"
#include "drover/fmt.h"
#include "drover/log.h"
#include "drover/json.h"
#include "enroll/enroll_int.h"
#include "net/curl.h"

#define PEM_FILE_MAX DRV_PKI_PEM_MAX
#define ANSWER_MAX (64 * 1024) /* the hub's enrollment answer */
#define TOKEN_FILE_MAX 4096    /* hub.tokenFile */
#define CONNECT_TIMEOUT_S 10L  /* per HTTPS request */
#define REQUEST_TIMEOUT_S 30L  /* whole request */
/* Renewing a certificate that is still valid blocks the agent's loop (heartbeats included) for
 * as long as the request takes, and is retried every minute: kept below the hub's default
 * node grace period (10 s). */
#define QUICK_CONNECT_TIMEOUT_S 3L
#define QUICK_REQUEST_TIMEOUT_S 6L
#define CHAIN_MAX 8         /* certificates taken from the hub's chain */
#define CHILD_TIMEOUT_S 120 /* the enrollment child process, at most */
#define ENROLL_PATH "/api/v1/enroll"
#define RENEW_PATH "/api/v1/enroll/renew"

void drv_enroll_paths(const drv_agent_config_t *cfg, drv_enroll_paths_t *out)
{
    /* Every path fits whatever stateDir holds (checked when compiling); were one not to, all
     * stay "", which names no file. */
    _Static_assert(sizeof(out->dir) >= sizeof(cfg->state_dir) + sizeof("/identity") &&
                       sizeof(out->key) >= sizeof(cfg->state_dir) + sizeof("/identity/node.key") &&
                       sizeof(out->signing_pub) >=
                           sizeof(cfg->state_dir) + sizeof("/identity/signing.pub"),
                   "identity paths must hold any stateDir");
    memset(out, 0, sizeof(*out));
    if (drv_fmt(out->dir, sizeof(out->dir), "%s/identity", cfg->state_dir) != DRV_OK ||
        drv_fmt(out->key, sizeof(out->key), "%s/identity/node.key", cfg->state_dir) != DRV_OK ||
        drv_fmt(out->cert, sizeof(out->cert), "%s/identity/node.crt", cfg->state_dir) != DRV_OK ||
        drv_fmt(out->ca, sizeof(out->ca), "%s/identity/ca.crt", cfg->state_dir) != DRV_OK ||
        drv_fmt(out->signing_pub, sizeof(out->signing_pub), "%s/identity/signing.pub",
                cfg->state_dir) != DRV_OK)
        memset(out, 0, sizeof(*out));
}

/* ---- checks that need no network ---- */

drv_err_t drv_enroll_pick_ca(const char *const *pems, size_t n, const char *fingerprint,
                             char **ca_pem, drv_error_t *err)
{
    char seen[CHAIN_MAX * (DRV_PKI_FINGERPRINT_MAX + 2) + 1] = "";
    size_t used = 0;
    for (size_t i = 0; i < n && i < CHAIN_MAX; i++) {
        drv_pki_cert_info_t info;
        drv_error_t ierr = DRV_ERROR_INIT;
        if (drv_pki_cert_info(pems[i], &info, &ierr) != DRV_OK)
            continue; /* not ours to judge: only the pinned one matters */
        if (strcasecmp(info.fingerprint, fingerprint) != 0) {
            int w = snprintf(seen + used, sizeof(seen) - used, "%s%s", used ? ", " : "",
                             info.fingerprint);
            if (w > 0 && (size_t)w < sizeof(seen) - used)
                used += (size_t)w;
            continue;
        }
        if (!info.is_ca)
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "hub.caFingerprint: %s is the hub's certificate \"%s\", not its "
                                 "CA: use the CA fingerprint drover-hub prints",
                                 fingerprint, info.cn);
        char *dup = strdup(pems[i]);
        if (!dup)
            return drv_error_set(err, DRV_ERR_NOMEM, 0, "hub.caFingerprint");
        *ca_pem = dup;
        return DRV_OK;
    }
    return drv_error_set(err, DRV_ERR_INTEGRITY, 0,
                         "hub.caFingerprint: no certificate in the hub's chain has %s (the "
                         "chain has: %s); is hub.url the right hub?",
                         fingerprint, used ? seen : "no certificates");
}

int64_t drv_enroll_renew_at(const drv_pki_cert_info_t *info)
{
    int64_t life = info->not_after - info->not_before;
    if (life < 0)
        life = 0;
    return info->not_before + life / 3 * 2;
}

static drv_err_t read_pem(const char *path, char **out, drv_error_t *err)
{
    drv_err_t r = drv_file_read_capped(path, PEM_FILE_MAX, out, NULL, err);
    if (r != DRV_OK && r != DRV_ERR_NOTFOUND)
        drv_error_wrap(err, "%s", path);
    return r;
}

drv_err_t drv_enroll_check_identity(const drv_enroll_paths_t *p, const char *node, int64_t now,
                                    drv_pki_cert_info_t *info, drv_error_t *err)
{
    _cleanup_free_ char *cert = NULL, *ca = NULL, *pub = NULL;
    _cleanup_secret_ char *key = NULL;
    drv_err_t r = read_pem(p->cert, &cert, err);
    if (r == DRV_ERR_NOTFOUND)
        return drv_error_set(err, r, 0, "%s: no certificate yet", p->cert);
    if (r != DRV_OK)
        return r;
    drv_pki_cert_info_t ci;
    if (drv_pki_cert_info(cert, &ci, err) != DRV_OK)
        return drv_error_wrap(err, "%s", p->cert);
    *info = ci;
    if ((r = read_pem(p->key, &key, err)) != DRV_OK)
        return r == DRV_ERR_NOTFOUND ? drv_error_set(err, DRV_ERR_INTEGRITY, 0,
                                                     "%s: missing (node.crt has no key)", p->key)
                                     : r;
    if ((r = read_pem(p->ca, &ca, err)) != DRV_OK)
        return r == DRV_ERR_NOTFOUND
                   ? drv_error_set(err, DRV_ERR_INTEGRITY, 0, "%s: missing", p->ca)
                   : r;
    if (strcmp(ci.cn, node) != 0)
        return drv_error_set(err, DRV_ERR_INTEGRITY, 0,
                             "%s: issued to \"%s\", but this node is \"%s\" (nodeName)", p->cert,
                             ci.cn, node);
    if (drv_pki_key_check(key, err) != DRV_OK)
        return drv_error_wrap(err, "%s", p->key);
    if (drv_pki_key_matches_cert(key, cert, err) != DRV_OK)
        return drv_error_wrap(err, "%s and %s", p->key, p->cert);
    if (now >= ci.not_after)
        return drv_error_set(err, DRV_ERR_RANGE, 0, "%s: expired", p->cert);
    if (drv_pki_cert_verify(cert, ca, now, DRV_PKI_CLIENT_AUTH, err) != DRV_OK)
        return drv_error_wrap(err, "%s against %s", p->cert, p->ca);
    if ((r = read_pem(p->signing_pub, &pub, err)) != DRV_OK)
        return r == DRV_ERR_NOTFOUND
                   ? drv_error_set(err, DRV_ERR_INTEGRITY, 0, "%s: missing", p->signing_pub)
                   : r;
    if (drv_pki_pubkey_check(pub, err) != DRV_OK)
        return drv_error_wrap(err, "%s", p->signing_pub);
    return DRV_OK;
}

drv_err_t drv_enroll_parse_answer(const char *text, size_t len, const char *node,
                                  const char *key_pem, const char *ca_pem, int64_t now,
                                  char **cert_pem, char **signing_pub, drv_error_t *err)
{
    cJSON *doc = cJSON_ParseWithLength(text, len);
    if (!doc || !cJSON_IsObject(doc)) {
        cJSON_Delete(doc);
        return drv_error_set(err, DRV_ERR_PROTO, 0, "hub's answer: not a JSON object");
    }
    drv_err_t r = DRV_OK;
    const char *kind = drv_json_str(doc, "kind"), *name = drv_json_str(doc, "node");
    const char *cert = drv_json_str(doc, "certificate"), *pub = drv_json_str(doc, "signingKey");
    drv_pki_cert_info_t ci;
    if (!kind || strcmp(kind, "Enrollment") != 0)
        r = drv_error_set(err, DRV_ERR_PROTO, 0, "hub's answer: kind: not Enrollment");
    else if (!name || strcmp(name, node) != 0)
        r = drv_error_set(err, DRV_ERR_PROTO, 0, "hub's answer: node: \"%.64s\", not \"%s\"",
                          name ? name : "", node);
    else if (!cert || !pub)
        r = drv_error_set(err, DRV_ERR_PROTO, 0,
                          "hub's answer: certificate and signingKey: required");
    else if (drv_pki_cert_info(cert, &ci, err) != DRV_OK ||
             drv_pki_cert_verify(cert, ca_pem, now, DRV_PKI_CLIENT_AUTH, err) != DRV_OK ||
             drv_pki_key_matches_cert(key_pem, cert, err) != DRV_OK)
        r = drv_error_wrap(err, "hub's answer: certificate");
    else if (strcmp(ci.cn, node) != 0)
        r = drv_error_set(err, DRV_ERR_PROTO, 0, "hub's answer: certificate: CN \"%s\", not \"%s\"",
                          ci.cn, node);
    else if (drv_pki_pubkey_check(pub, err) != DRV_OK)
        r = drv_error_wrap(err, "hub's answer: signingKey");
    if (r == DRV_OK) {
        char *c = strdup(cert), *s = strdup(pub);
        if (!c || !s) {
            free(c);
            free(s);
            r = drv_error_set(err, DRV_ERR_NOMEM, 0, "hub's answer");
        } else {
            *cert_pem = c;
            *signing_pub = s;
        }
    }
    cJSON_Delete(doc);
    return r;
}

/* ---- HTTPS ---- */

static size_t on_body(char *data, size_t size, size_t n, void *userdata)
{
    drv_buf_t *b = userdata;
    return drv_buf_append(b, data, size * n) == DRV_OK ? size * n : 0; /* 0: over the cap */
}

/* Options every request sets: https only, no redirects, bounded time, no signals. */
static bool common_opts(CURL *c, const char *url, bool quick, char *errbuf, drv_buf_t *body)
{
    return curl_easy_setopt(c, CURLOPT_URL, url) == CURLE_OK &&
#if LIBCURL_VERSION_NUM >= 0x075500
           curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https") == CURLE_OK &&
#else
           curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)CURLPROTO_HTTPS) == CURLE_OK &&
#endif
           curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
           curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT,
                            quick ? QUICK_CONNECT_TIMEOUT_S : CONNECT_TIMEOUT_S) == CURLE_OK &&
           curl_easy_setopt(c, CURLOPT_TIMEOUT,
                            quick ? QUICK_REQUEST_TIMEOUT_S : REQUEST_TIMEOUT_S) == CURLE_OK &&
           curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
           curl_easy_setopt(c, CURLOPT_USERAGENT, "drover-agent") == CURLE_OK &&
           curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf) == CURLE_OK &&
           curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK &&
           curl_easy_setopt(c, CURLOPT_WRITEDATA, body) == CURLE_OK;
}

static drv_err_t curl_failed(CURLcode rc, const char *errbuf, const char *url, drv_error_t *err)
{
    return drv_error_set(err, rc == CURLE_OPERATION_TIMEDOUT ? DRV_ERR_TIMEOUT : DRV_ERR_IO, 0,
                         "hub.url: %s: %s", url, errbuf[0] ? errbuf : curl_easy_strerror(rc));
}

/* GET <url>/healthz without verification (no token or other secret is sent), only to see the
 * chain the hub presents; then picks the pinned CA from it. */
static drv_err_t fetch_pinned_ca(const drv_agent_config_t *cfg, char **ca_pem, drv_error_t *err)
{
    char url[320];
    if (drv_fmt(url, sizeof(url), "%s/healthz", cfg->hub_url) != DRV_OK)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "hub.url: too long");
    CURL *c = curl_easy_init();
    if (!c)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "hub.url: curl_easy_init");
    char errbuf[CURL_ERROR_SIZE] = "";
    drv_buf_t body = DRV_BUF_INIT(ANSWER_MAX);
    bool ok = common_opts(c, url, false, errbuf, &body) &&
              curl_easy_setopt(c, CURLOPT_HTTPGET, 1L) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_CERTINFO, 1L) == CURLE_OK;
    drv_err_t r = DRV_OK;
    CURLcode rc = CURLE_OK;
    if (!ok)
        r = drv_error_set(err, DRV_ERR_UNSUPPORTED, 0, "hub.url: libcurl refused an option");
    else if ((rc = curl_easy_perform(c)) != CURLE_OK)
        r = curl_failed(rc, errbuf, url, err);
    struct curl_certinfo *ci = NULL;
    if (r == DRV_OK &&
        (curl_easy_getinfo(c, CURLINFO_CERTINFO, &ci) != CURLE_OK || !ci || ci->num_of_certs <= 0))
        r = drv_error_set(err, DRV_ERR_UNSUPPORTED, 0,
                          "hub.url: %s: libcurl gave no certificate chain (CURLINFO_CERTINFO)",
                          url);
    if (r == DRV_OK) {
        const char *pems[CHAIN_MAX];
        size_t n = 0;
        for (int i = 0; i < ci->num_of_certs && n < CHAIN_MAX; i++)
            for (const struct curl_slist *s = ci->certinfo[i]; s; s = s->next)
                if (!strncmp(s->data, "Cert:", 5)) {
                    pems[n++] = s->data + 5;
                    break;
                }
        r = drv_enroll_pick_ca(pems, n, cfg->hub_ca_fingerprint, ca_pem, err);
    }
    drv_buf_free(&body);
    curl_easy_cleanup(c);
    return r;
}

/* POSTs json to <hub.url><path> over HTTPS verified against ca_file only (host checked); the
 * status in *status and the answer in *answer (caller frees). quick: the short time limits. */
static drv_err_t post_verified(const drv_agent_config_t *cfg, const char *path, const char *ca_file,
                               bool quick, const char *json, long *status, char **answer,
                               size_t *answer_len, drv_error_t *err)
{
    char url[320];
    if (drv_fmt(url, sizeof(url), "%s%s", cfg->hub_url, path) != DRV_OK)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "hub.url: too long");
    CURL *c = curl_easy_init();
    if (!c)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "hub.url: curl_easy_init");
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    char errbuf[CURL_ERROR_SIZE] = "";
    drv_buf_t body = DRV_BUF_INIT(ANSWER_MAX);
    /* Only ca.crt is trusted: CAINFO replaces the default bundle, and CAPATH NULL drops the
     * system's certificate directory. */
    bool ok = hdrs && common_opts(c, url, quick, errbuf, &body) &&
              curl_easy_setopt(c, CURLOPT_POST, 1L) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_POSTFIELDS, json) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(json)) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_CAINFO, ca_file) == CURLE_OK;
    if (ok)
        (void)curl_easy_setopt(c, CURLOPT_CAPATH, (char *)NULL);
    drv_err_t r = DRV_OK;
    CURLcode rc = CURLE_OK;
    if (!ok)
        r = drv_error_set(err, DRV_ERR_UNSUPPORTED, 0, "hub.url: libcurl refused an option");
    else if ((rc = curl_easy_perform(c)) != CURLE_OK)
        r = rc == CURLE_WRITE_ERROR
                ? drv_error_set(err, DRV_ERR_TOOBIG, 0, "hub.url: %s: answer over %d bytes", url,
                                ANSWER_MAX)
                : curl_failed(rc, errbuf, url, err);
    if (r == DRV_OK) {
        long code = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        *status = code;
        *answer_len = body.len;
        *answer = drv_buf_steal(&body, NULL);
        if (!*answer)
            r = drv_error_set(err, DRV_ERR_NOMEM, 0, "hub's answer");
    }
    drv_buf_free(&body);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    return r;
}

/* The message of a Status answer, or a placeholder. */
static void status_message(const char *answer, size_t len, char *out, size_t outsz)
{
    cJSON *doc = cJSON_ParseWithLength(answer ? answer : "", answer ? len : 0);
    const char *m = doc ? drv_json_str(doc, "message") : NULL;
    drv_fmt_cut(out, outsz, "%s", m ? m : "(no message)");
    cJSON_Delete(doc);
}

/* An error answer of the enrollment API, turned into what the user should fix. */
static drv_err_t answer_error(const drv_agent_config_t *cfg, bool renew, long status,
                              const char *answer, size_t len, drv_error_t *err)
{
    char msg[512];
    status_message(answer, len, msg, sizeof(msg));
    const char *what = renew ? "renewal" : "enrollment";
    switch (status) {
    case 401:
        return drv_error_set(err, DRV_ERR_PERM, 0,
                             "%s: the hub refused the bootstrap token (expired, used up, "
                             "revoked or unknown; make one with drover token create): %s",
                             cfg->hub_token_file[0] ? "hub.tokenFile" : "hub.token", msg);
    case 403:
        return drv_error_set(err, DRV_ERR_PERM, 0, "nodeName: \"%s\": %s refused (403): %s",
                             cfg->node_name, what, msg);
    case 404:
        return drv_error_set(err, DRV_ERR_NOTFOUND, 0,
                             "nodeName: \"%s\": the hub does not know this node (404): %s",
                             cfg->node_name, msg);
    case 409:
        return drv_error_set(err, DRV_ERR_CONFLICT, 0,
                             "nodeName: \"%s\" is enrolled with another key (409; drover node "
                             "forget it on the hub, or pick another name): %s",
                             cfg->node_name, msg);
    default:
        return drv_error_set(err, DRV_ERR_PROTO, 0, "hub.url: %s%s: HTTP %ld: %s", cfg->hub_url,
                             renew ? RENEW_PATH : ENROLL_PATH, status, msg);
    }
}

/* ---- files ---- */

static drv_err_t write_file(const char *path, const char *text, mode_t mode, drv_error_t *err)
{
    if (drv_file_write_atomic(path, text, strlen(text), mode, err) != DRV_OK)
        return drv_error_wrap(err, "%s", path);
    return DRV_OK;
}

/* node.key as it is, or a new one (written 0600 before it is used, so that a crash after the
 * hub issued a certificate leaves the key that certificate is for). */
static drv_err_t load_or_make_key(const drv_enroll_paths_t *p, char **key_pem, drv_error_t *err)
{
    char *key = NULL;
    drv_error_t kerr = DRV_ERROR_INIT;
    drv_err_t r = read_pem(p->key, &key, &kerr);
    if (r == DRV_OK && drv_pki_key_check(key, &kerr) == DRV_OK) {
        (void)chmod(p->key, 0600);
        *key_pem = key;
        return DRV_OK;
    }
    if (r == DRV_OK) {
        drv_log_warn("node key unusable; making a new one", "path=%s error=\"%s\"", p->key,
                     drv_error_msg(&kerr));
        drv_pki_secret_free(key);
        key = NULL;
        (void)!drv_file_quarantine(p->key, &kerr);
    } else if (r != DRV_ERR_NOTFOUND) {
        *err = kerr;
        return r;
    }
    if ((r = drv_pki_key_generate(&key, err)) != DRV_OK)
        return r;
    if ((r = write_file(p->key, key, 0600, err)) != DRV_OK) {
        drv_pki_secret_free(key);
        return r;
    }
    *key_pem = key;
    return DRV_OK;
}

static drv_err_t read_token(const drv_agent_config_t *cfg, char *out, size_t outsz,
                            drv_error_t *err)
{
    if (cfg->hub_token[0]) {
        if (drv_fmt(out, outsz, "%s", cfg->hub_token) != DRV_OK)
            return drv_error_set(err, DRV_ERR_TOOBIG, 0, "hub.token: too long");
        return DRV_OK;
    }
    if (!cfg->hub_token_file[0])
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "hub.tokenFile: required to enrol this node (or hub.token): a "
                             "bootstrap token from drover token create");
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    drv_error_t ferr = DRV_ERROR_INIT;
    if (drv_file_read_capped(cfg->hub_token_file, TOKEN_FILE_MAX, &text, &len, &ferr) != DRV_OK)
        return drv_error_set(err, ferr.code, 0, "hub.tokenFile: %s", drv_error_msg(&ferr));
    while (len && isspace((unsigned char)text[len - 1]))
        text[--len] = '\0';
    const char *t = text;
    while (isspace((unsigned char)*t))
        t++;
    if (strncmp(t, "drv1_", 5) || strpbrk(t, " \t\r\n\"\\") ||
        drv_fmt(out, outsz, "%s", t) != DRV_OK)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "hub.tokenFile: %s does not hold a bootstrap token \"drv1_...\"",
                             cfg->hub_token_file);
    return DRV_OK;
}

/* ---- enrol and renew ---- */

/* The request body: {"csr": ...} and, when enrolling, "token". */
static char *request_json(const char *csr, const char *token)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || (token && !cJSON_AddStringToObject(o, "token", token)) ||
        !cJSON_AddStringToObject(o, "csr", csr)) {
        cJSON_Delete(o);
        return NULL;
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* Sends a CSR for key to the hub (enroll with token, or renew without), checks the answer
 * against ca_pem and writes signing.pub, then node.crt (the last write completes the
 * identity). */
static drv_err_t request_cert(const drv_agent_config_t *cfg, const drv_enroll_paths_t *p,
                              const char *key, const char *ca_pem, const char *token, bool quick,
                              drv_error_t *err)
{
    const bool renew = token == NULL;
    _cleanup_free_ char *csr = NULL, *answer = NULL, *cert = NULL, *pub = NULL;
    drv_err_t r = drv_pki_csr_create(key, cfg->node_name, &csr, err);
    if (r != DRV_OK)
        return drv_error_wrap(err, "nodeName");
    char *json = request_json(csr, token);
    if (!json)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "enrollment request");
    long status = 0;
    size_t len = 0;
    r = post_verified(cfg, renew ? RENEW_PATH : ENROLL_PATH, p->ca, quick, json, &status, &answer,
                      &len, err);
    size_t jl = strlen(json);
    memset(json, 0, jl); /* it held the token */
    free(json);
    if (r != DRV_OK)
        return r;
    if (status != 201 && status != 200)
        return answer_error(cfg, renew, status, answer, len, err);
    if ((r = drv_enroll_parse_answer(answer, len, cfg->node_name, key, ca_pem, (int64_t)time(NULL),
                                     &cert, &pub, err)) != DRV_OK)
        return r;
    if ((r = write_file(p->signing_pub, pub, 0644, err)) != DRV_OK ||
        (r = write_file(p->cert, cert, 0644, err)) != DRV_OK)
        return r;
    return DRV_OK;
}

static drv_err_t renew_as(const drv_agent_config_t *cfg, const drv_enroll_paths_t *p, bool quick,
                          drv_error_t *err)
{
    _cleanup_secret_ char *key = NULL;
    _cleanup_free_ char *ca = NULL;
    drv_err_t r;
    if ((r = read_pem(p->key, &key, err)) != DRV_OK || (r = read_pem(p->ca, &ca, err)) != DRV_OK)
        return r;
    if ((r = drv_curl_load(err)) != DRV_OK)
        return r;
    return request_cert(cfg, p, key, ca, NULL, quick, err);
}

/* Renewal of an expired certificate: nothing runs on it meanwhile, take the time it takes. */
static drv_err_t renew(const drv_agent_config_t *cfg, const drv_enroll_paths_t *p, drv_error_t *err)
{
    return renew_as(cfg, p, false, err);
}

/* Renewal of a certificate still in use: the short time limits. */
static drv_err_t renew_quick(const drv_agent_config_t *cfg, const drv_enroll_paths_t *p,
                             drv_error_t *err)
{
    return renew_as(cfg, p, true, err);
}

/* Removes hub.tokenFile once this node holds its certificate, as balena's supervisor drops its
 * provisioning key: the token is usually one for a whole batch of cards (--uses 50), and a card
 * taken from a device must not enrol anything more. A node that loses its identity later is
 * flashed again. Failing to remove it (a read-only /etc) is said, not fatal. */
static void forget_token(const drv_agent_config_t *cfg)
{
    if (!cfg->hub_token_file[0])
        return; /* hub.token in agent.yaml: the operator's file to edit */
    char q[512];
    if (unlink(cfg->hub_token_file) == 0)
        drv_log_info("bootstrap token removed: this node is enrolled", "path=%s",
                     drv_log_quote(cfg->hub_token_file, q, sizeof q));
    else if (errno != ENOENT)
        drv_log_warn("cannot remove the bootstrap token after enrolling; remove it by hand",
                     "path=%s errno=%d", drv_log_quote(cfg->hub_token_file, q, sizeof q), errno);
}

static drv_err_t enroll(const drv_agent_config_t *cfg, const drv_enroll_paths_t *p,
                        drv_error_t *err)
{
    char token[256];
    drv_err_t r = read_token(cfg, token, sizeof(token), err);
    if (r != DRV_OK)
        return r;
    _cleanup_free_ char *ca = NULL;
    _cleanup_secret_ char *key = NULL;
    if ((r = drv_curl_load(err)) != DRV_OK || (r = fetch_pinned_ca(cfg, &ca, err)) != DRV_OK ||
        (r = write_file(p->ca, ca, 0644, err)) != DRV_OK ||
        (r = load_or_make_key(p, &key, err)) != DRV_OK)
        goto out;
    r = request_cert(cfg, p, key, ca, token, false, err);
    if (r == DRV_OK)
        forget_token(cfg);
out:
    memset(token, 0, sizeof(token));
    return r;
}

/* ---- in a child process ---- */

typedef drv_err_t (*net_fn)(const drv_agent_config_t *cfg, const drv_enroll_paths_t *p,
                            drv_error_t *err);

/* Runs fn in a forked child and waits for it: libcurl, and the TLS library it brings, are then
 * mapped only by the child, never by the long-running agent (the reason net/curl.h exists; a
 * pull child does the same). The child's drv_error_t comes back whole over a pipe. */
static drv_err_t in_child(net_fn fn, const drv_agent_config_t *cfg, const drv_enroll_paths_t *p,
                          drv_error_t *err)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return drv_error_set(err, DRV_ERR_IO, errno, "enroll: pipe");
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(fds[0]);
        close(fds[1]);
        return drv_error_set(err, DRV_ERR_IO, e, "enroll: fork");
    }
    if (pid == 0) {
        close(fds[0]);
        sigset_t all;
        sigfillset(&all);
        sigprocmask(SIG_UNBLOCK, &all, NULL); /* the agent blocks signals for its signalfd */
        signal(SIGPIPE, SIG_IGN);
        signal(SIGALRM, SIG_DFL);
        alarm(CHILD_TIMEOUT_S); /* backstop over curl's own time limits */
        drv_error_t e = DRV_ERROR_INIT;
        drv_err_t r = fn(cfg, p, &e);
        if (r != DRV_OK) {
            e.code = r;
            (void)!write(fds[1], &e, sizeof(e));
        }
        _exit(r == DRV_OK ? 0 : 1);
    }
    close(fds[1]);
    drv_error_t e = DRV_ERROR_INIT;
    size_t got = 0;
    while (got < sizeof(e)) {
        ssize_t n = read(fds[0], (char *)&e + got, sizeof(e) - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fds[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return DRV_OK;
    if (got == sizeof(e) && e.code > DRV_OK && e.code < DRV_ERR__COUNT) {
        e.msg[sizeof(e.msg) - 1] = '\0';
        *err = e;
        return e.code;
    }
    if (WIFSIGNALED(st))
        return drv_error_set(err, WTERMSIG(st) == SIGALRM ? DRV_ERR_TIMEOUT : DRV_ERR_IO, 0,
                             "hub.url: %s: the enrollment process %s (signal %d)", cfg->hub_url,
                             WTERMSIG(st) == SIGALRM ? "timed out" : "died", WTERMSIG(st));
    return drv_error_set(err, DRV_ERR_IO, 0, "hub.url: %s: the enrollment process failed",
                         cfg->hub_url);
}

static drv_err_t ensure_locked(const drv_agent_config_t *cfg, const drv_enroll_paths_t *p,
                               drv_error_t *err);

drv_err_t drv_enroll_ensure(const drv_agent_config_t *cfg, drv_enroll_paths_t *out,
                            drv_error_t *err)
{
    drv_enroll_paths(cfg, out);
    const drv_enroll_paths_t *p = out;
    drv_err_t r = drv_file_mkdir_p(p->dir, 0700, err);
    if (r != DRV_OK)
        return drv_error_wrap(err, "stateDir");
    if (chmod(p->dir, 0700) != 0)
        return drv_error_set(err, DRV_ERR_IO, errno, "%s", p->dir);
    /* One enrollment at a time per identity (the daemon's and `drover-agent enroll`, or an
     * agent restarted mid-way): two would each make a key, and the hub would keep the other. */
    char lock[340];
    if (drv_fmt(lock, sizeof(lock), "%s/.lock", p->dir) != DRV_OK)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "stateDir: %s: path too long", p->dir);
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return drv_error_set(err, DRV_ERR_IO, errno, "%s", lock);
    while (flock(fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            int e = errno;
            close(fd);
            return drv_error_set(err, DRV_ERR_IO, e, "lock %s", lock);
        }
    }
    r = ensure_locked(cfg, p, err);
    close(fd); /* unlocks */
    return r;
}

static drv_err_t ensure_locked(const drv_agent_config_t *cfg, const drv_enroll_paths_t *p,
                               drv_error_t *err)
{
    drv_err_t r;

    int64_t now = (int64_t)time(NULL);
    drv_pki_cert_info_t info;
    memset(&info, 0, sizeof(info));
    drv_error_t cerr = DRV_ERROR_INIT;
    drv_err_t cr = drv_enroll_check_identity(p, cfg->node_name, now, &info, &cerr);
    if (cr == DRV_OK) {
        (void)chmod(p->key, 0600);
        if (now < drv_enroll_renew_at(&info) || !cfg->hub_url[0])
            return DRV_OK;
        drv_error_t rerr = DRV_ERROR_INIT;
        if (in_child(renew_quick, cfg, p, &rerr) != DRV_OK) {
            char when[32];
            time_t na = (time_t)info.not_after;
            struct tm tm;
            strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&na, &tm));
            drv_log_warn("certificate renewal failed; the current one stays in use",
                         "expires=%s error=\"%s\"", when, drv_error_msg(&rerr));
            return DRV_OK;
        }
        drv_log_info("certificate renewed", "node=%s", cfg->node_name);
        return drv_enroll_check_identity(p, cfg->node_name, (int64_t)time(NULL), &info, err);
    }
    if (cr != DRV_ERR_NOTFOUND)
        drv_log_warn("identity not valid", "error=\"%s\"", drv_error_msg(&cerr));
    if (!cfg->hub_url[0])
        return drv_error_set(err, cr == DRV_ERR_NOTFOUND ? DRV_ERR_NOTFOUND : DRV_ERR_INTEGRITY, 0,
                             "hub.url: required to enrol this node (%s)", drv_error_msg(&cerr));
    /* An expired certificate of ours, one whose signing.pub was lost, or none at all while
     * our key and the CA are there (the hub answered but the certificate was never saved: a
     * crash, a cut connection): renewing needs no token, only the key the hub knows. A hub
     * that does not know the key answers 404 and enrolling follows. */
    bool unsaved = cr == DRV_ERR_NOTFOUND && access(p->key, R_OK) == 0;
    if ((unsaved || ((cr == DRV_ERR_RANGE || (cr == DRV_ERR_INTEGRITY && info.not_after > now)) &&
                     strcmp(info.cn, cfg->node_name) == 0)) &&
        access(p->ca, R_OK) == 0) {
        drv_error_t rerr = DRV_ERROR_INIT;
        if (in_child(renew, cfg, p, &rerr) == DRV_OK &&
            drv_enroll_check_identity(p, cfg->node_name, (int64_t)time(NULL), &info, &rerr) ==
                DRV_OK) {
            drv_log_info("certificate renewed", "node=%s", cfg->node_name);
            return DRV_OK;
        }
        drv_log_warn("renewal failed; enrolling again", "error=\"%s\"", drv_error_msg(&rerr));
    }
    if ((r = in_child(enroll, cfg, p, err)) != DRV_OK)
        return r;
    if ((r = drv_enroll_check_identity(p, cfg->node_name, (int64_t)time(NULL), &info, err)) !=
        DRV_OK)
        return drv_error_wrap(err, "after enrolling");
    drv_log_info("enrolled", "node=%s fingerprint=%s", cfg->node_name, info.fingerprint);
    return DRV_OK;
}

bool drv_enroll_current(const drv_agent_config_t *cfg, drv_enroll_paths_t *out, int64_t now_unix_s)
{
    drv_enroll_paths(cfg, out);
    drv_pki_cert_info_t info;
    memset(&info, 0, sizeof(info));
    drv_error_t err = DRV_ERROR_INIT;
    return drv_enroll_check_identity(out, cfg->node_name, now_unix_s, &info, &err) == DRV_OK &&
           now_unix_s < drv_enroll_renew_at(&info);
}

int64_t drv_enroll_next_check_ms(const drv_enroll_paths_t *p, int64_t now_unix_s)
{
    const int64_t min_ms = 60000;
    _cleanup_free_ char *cert = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    drv_pki_cert_info_t info;
    if (drv_file_read_capped(p->cert, PEM_FILE_MAX, &cert, NULL, &err) != DRV_OK ||
        drv_pki_cert_info(cert, &info, &err) != DRV_OK)
        return min_ms;
    int64_t wait_s = drv_enroll_renew_at(&info) - now_unix_s;
    if (wait_s > DRV_ENROLL_CHECK_MAX_S)
        wait_s = DRV_ENROLL_CHECK_MAX_S;
    int64_t ms = wait_s * 1000;
    return ms < min_ms ? min_ms : ms;
}
