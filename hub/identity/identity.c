/* The hub's CA, server certificate and desired-state signing key in <data>/pki: created on the
 * first start, checked (and the server certificate renewed) on every later one. */
#include "identity/identity.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "drover/base64.h"
#include "drover/cleanup.h"
#include "drover/file.h"
#include "drover/fmt.h"
#include "drover/log.h"

#define NAME_MAX_LEN 254
#define N_FIXED 3 /* localhost, 127.0.0.1, ::1 */
#define DAY 86400

struct drv_identity {
    char dir[PATH_MAX];
    char ca_path[PATH_MAX];
    char *ca_key, *ca_cert, *server_key, *server_cert, *signing_key, *signing_pub;
    char fingerprint[DRV_PKI_FINGERPRINT_MAX];
    bool created, reissued;
};

/* The SANs the server certificate must carry, split into DNS names and IP addresses. */
typedef struct {
    char dns[DRV_PKI_SAN_MAX][NAME_MAX_LEN + 1];
    char ip[DRV_PKI_SAN_MAX][INET6_ADDRSTRLEN];
    size_t n_dns, n_ip;
} sans_t;

static drv_err_t path_of(const drv_identity_t *id, const char *file, char *out, size_t outsz,
                         drv_error_t *err)
{
    if ((size_t)snprintf(out, outsz, "%s/%s", id->dir, file) >= outsz)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "pki: path %s/%s too long", id->dir, file);
    return DRV_OK;
}

/* Reads <dir>/file into *out; a missing file leaves *out NULL and is DRV_OK. A private key
 * readable by others is narrowed to 0600 (and said so). */
static drv_err_t read_pem(const drv_identity_t *id, const char *file, bool secret, char **out,
                          drv_error_t *err)
{
    char path[PATH_MAX];
    drv_err_t e = path_of(id, file, path, sizeof(path), err);
    if (e != DRV_OK)
        return e;
    char *text = NULL;
    e = drv_file_read_capped(path, DRV_PKI_PEM_MAX, &text, NULL, err);
    if (e == DRV_ERR_NOTFOUND) {
        *err = (drv_error_t)DRV_ERROR_INIT;
        *out = NULL;
        return DRV_OK;
    }
    if (e != DRV_OK)
        return drv_error_wrap(err, "pki: %s", path);
    struct stat sb;
    if (secret && stat(path, &sb) == 0 && (sb.st_mode & 077)) {
        if (chmod(path, 0600) == 0)
            drv_log_warn("pki: private key was readable by others, now 0600", "file=%s", path);
    }
    *out = text;
    return DRV_OK;
}

static drv_err_t write_pem(const drv_identity_t *id, const char *file, const char *pem, bool secret,
                           drv_error_t *err)
{
    char path[PATH_MAX];
    drv_err_t e = path_of(id, file, path, sizeof(path), err);
    if (e != DRV_OK)
        return e;
    e = drv_file_write_atomic(path, pem, strlen(pem), secret ? 0600 : 0644, err);
    if (e != DRV_OK)
        return drv_error_wrap(err, "pki: write %s", path);
    return DRV_OK;
}

static bool is_wildcard(const char *addr)
{
    unsigned char b[16];
    if (!addr || !*addr)
        return true;
    if (inet_pton(AF_INET, addr, b) == 1)
        return !memcmp(b, "\0\0\0\0", 4);
    if (inet_pton(AF_INET6, addr, b) == 1) {
        static const unsigned char zero[16];
        return !memcmp(b, zero, 16);
    }
    return false;
}

/* Adds name to the right list unless an equal entry is there (IPs compared as bytes). */
static drv_err_t sans_add(sans_t *s, const char *name, const char *what, drv_error_t *err)
{
    unsigned char b[16], o[16];
    int fam = inet_pton(AF_INET, name, b) == 1    ? AF_INET
              : inet_pton(AF_INET6, name, b) == 1 ? AF_INET6
                                                  : 0;
    if (fam) {
        for (size_t i = 0; i < s->n_ip; i++) {
            int f2 = strchr(s->ip[i], ':') ? AF_INET6 : AF_INET;
            if (f2 == fam && inet_pton(f2, s->ip[i], o) == 1 &&
                !memcmp(b, o, fam == AF_INET ? 4 : 16))
                return DRV_OK;
        }
        if (s->n_ip >= DRV_PKI_SAN_MAX)
            return drv_error_set(err, DRV_ERR_RANGE, 0, "%s \"%.64s\": more than %d IP addresses",
                                 what, name, DRV_PKI_SAN_MAX);
        inet_ntop(fam, b, s->ip[s->n_ip++], INET6_ADDRSTRLEN);
        return DRV_OK;
    }
    size_t len = strlen(name);
    if (!len || len > NAME_MAX_LEN)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "%s \"%.64s\": a DNS name is 1 to %d characters", what, name,
                             NAME_MAX_LEN);
    for (const char *p = name; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.'))
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "%s \"%.64s\": not an IP address nor a DNS name (letters, "
                                 "digits, '-' and '.')",
                                 what, name);
    }
    if (name[0] == '.' || name[0] == '-' || name[len - 1] == '.' || strstr(name, ".."))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s \"%.64s\": not a valid DNS name", what,
                             name);
    for (size_t i = 0; i < s->n_dns; i++)
        if (!strcasecmp(s->dns[i], name))
            return DRV_OK;
    if (s->n_dns >= DRV_PKI_SAN_MAX)
        return drv_error_set(err, DRV_ERR_RANGE, 0, "%s \"%.64s\": more than %d DNS names", what,
                             name, DRV_PKI_SAN_MAX);
    if (drv_fmt(s->dns[s->n_dns], sizeof(s->dns[0]), "%s", name) != DRV_OK)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s \"%.64s\": longer than %d characters",
                             what, name, NAME_MAX_LEN);
    s->n_dns++;
    return DRV_OK;
}

static drv_err_t sans_build(const drv_identity_opts_t *opts, sans_t *s, drv_error_t *err)
{
    memset(s, 0, sizeof(*s));
    static const char *const fixed[N_FIXED] = {"localhost", "127.0.0.1", "::1"};
    drv_err_t e = DRV_OK;
    for (size_t i = 0; i < N_FIXED && e == DRV_OK; i++)
        e = sans_add(s, fixed[i], "SAN", err);
    if (e == DRV_OK && !is_wildcard(opts->listen_addr))
        e = sans_add(s, opts->listen_addr, "--listen", err);
    for (size_t i = 0; i < opts->n_sans && e == DRV_OK; i++) {
        if (!opts->sans[i])
            return drv_error_set(err, DRV_ERR_INVALID, 0, "--san: empty");
        e = sans_add(s, opts->sans[i], "--san", err);
    }
    return e;
}

/* The DER of a one-certificate PEM (for the host check). */
static drv_err_t pem_der(const char *pem, unsigned char **der, size_t *len, drv_error_t *err)
{
    const char *b = strstr(pem, "-----BEGIN CERTIFICATE-----");
    const char *end = b ? strstr(b, "-----END CERTIFICATE-----") : NULL;
    if (!b || !end)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "not a PEM certificate");
    b += strlen("-----BEGIN CERTIFICATE-----");
    size_t n = (size_t)(end - b);
    _cleanup_free_ char *clean = malloc(n + 1);
    if (!clean)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (b[i] != '\n' && b[i] != '\r' && b[i] != ' ' && b[i] != '\t')
            clean[k++] = b[i];
    clean[k] = '\0';
    if (drv_base64_decode(clean, k, der, len) != DRV_OK)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "certificate PEM: bad base64");
    return DRV_OK;
}

/* Whether cert names every required SAN. */
static drv_err_t sans_covered(const char *cert, const sans_t *s, bool *covered, drv_error_t *err)
{
    unsigned char *der = NULL;
    size_t len = 0;
    drv_err_t e = pem_der(cert, &der, &len, err);
    if (e != DRV_OK)
        return e;
    *covered = true;
    drv_error_t ignore = DRV_ERROR_INIT;
    for (size_t i = 0; i < s->n_dns && *covered; i++)
        if (drv_pki_cert_check_host(der, len, s->dns[i], &ignore) != DRV_OK)
            *covered = false;
    for (size_t i = 0; i < s->n_ip && *covered; i++)
        if (drv_pki_cert_check_host(der, len, s->ip[i], &ignore) != DRV_OK)
            *covered = false;
    free(der);
    return DRV_OK;
}

static drv_err_t load_ca(drv_identity_t *id, int64_t now, drv_error_t *err)
{
    drv_err_t e = read_pem(id, "ca.key", true, &id->ca_key, err);
    if (e == DRV_OK)
        e = read_pem(id, "ca.crt", false, &id->ca_cert, err);
    if (e != DRV_OK)
        return e;
    if (!id->ca_key && id->ca_cert)
        return drv_error_set(err, DRV_ERR_NOTFOUND, 0,
                             "pki: %s/ca.crt exists but ca.key is missing: restore it from a "
                             "backup (devices pin this CA), or move %s aside to start a new CA",
                             id->dir, id->dir);
    if (!id->ca_key) {
        e = drv_pki_key_generate(&id->ca_key, err);
        if (e == DRV_OK)
            e = write_pem(id, "ca.key", id->ca_key, true, err);
        if (e != DRV_OK)
            return e;
        id->created = true;
    } else if ((e = drv_pki_key_check(id->ca_key, err)) != DRV_OK) {
        return drv_error_wrap(err, "pki: %s/ca.key", id->dir);
    }
    if (!id->ca_cert) {
        /* A key without its certificate: the first start stopped between the two writes. */
        e = drv_pki_ca_create(id->ca_key, "drover-hub CA", 0, DRV_IDENTITY_CA_DAYS, &id->ca_cert,
                              err);
        if (e == DRV_OK)
            e = write_pem(id, "ca.crt", id->ca_cert, false, err);
        if (e != DRV_OK)
            return e;
        id->created = true;
    }
    drv_pki_cert_info_t info;
    if ((e = drv_pki_cert_info(id->ca_cert, &info, err)) != DRV_OK)
        return drv_error_wrap(err, "pki: %s/ca.crt", id->dir);
    if (!info.is_ca)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "pki: %s/ca.crt is not a CA certificate",
                             id->dir);
    if (drv_pki_key_matches_cert(id->ca_key, id->ca_cert, err) != DRV_OK)
        return drv_error_set(err, DRV_ERR_INTEGRITY, 0,
                             "pki: %s/ca.key does not belong to %s/ca.crt", id->dir, id->dir);
    if (now < info.not_before || now >= info.not_after)
        return drv_error_set(err, DRV_ERR_INTEGRITY, 0,
                             "pki: the CA %s/ca.crt is %s (valid %lld to %lld, unix time): "
                             "move %s aside to start a new CA (devices must then re-pin it)",
                             id->dir, now < info.not_before ? "not valid yet" : "expired",
                             (long long)info.not_before, (long long)info.not_after, id->dir);
    if (info.not_after - now < (int64_t)DRV_IDENTITY_RENEW_DAYS * DAY)
        drv_log_warn("pki: the CA expires soon", "file=%s/ca.crt not_after=%lld", id->dir,
                     (long long)info.not_after);
    if (drv_fmt(id->fingerprint, sizeof(id->fingerprint), "%s", info.fingerprint) != DRV_OK)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s/ca.crt: fingerprint too long", id->dir);
    return DRV_OK;
}

static drv_err_t issue_server(drv_identity_t *id, const sans_t *s, int64_t now, drv_error_t *err)
{
    const char *dns[DRV_PKI_SAN_MAX], *ips[DRV_PKI_SAN_MAX];
    for (size_t i = 0; i < s->n_dns; i++)
        dns[i] = s->dns[i];
    for (size_t i = 0; i < s->n_ip; i++)
        ips[i] = s->ip[i];
    _cleanup_free_ char *pub = NULL;
    drv_err_t e = drv_pki_key_public(id->server_key, &pub, err);
    if (e != DRV_OK)
        return drv_error_wrap(err, "pki: %s/server.key", id->dir);
    drv_pki_issue_t o = {.cn = DRV_IDENTITY_SERVER_CN,
                         .usage = DRV_PKI_SERVER_AUTH,
                         .dns_names = dns,
                         .n_dns = s->n_dns,
                         .ip_addrs = ips,
                         .n_ips = s->n_ip,
                         .not_before = now - DRV_PKI_SKEW,
                         .days = DRV_IDENTITY_SERVER_DAYS};
    char *cert = NULL;
    e = drv_pki_issue_key(id->ca_key, id->ca_cert, pub, &o, &cert, err);
    if (e != DRV_OK)
        return drv_error_wrap(err, "pki: issue the server certificate");
    e = write_pem(id, "server.crt", cert, false, err);
    if (e != DRV_OK) {
        free(cert);
        return e;
    }
    free(id->server_cert);
    id->server_cert = cert;
    id->reissued = true;
    return DRV_OK;
}

static drv_err_t load_server(drv_identity_t *id, const sans_t *s, int64_t now, drv_error_t *err)
{
    drv_err_t e = read_pem(id, "server.key", true, &id->server_key, err);
    if (e == DRV_OK)
        e = read_pem(id, "server.crt", false, &id->server_cert, err);
    if (e != DRV_OK)
        return e;
    if (!id->server_key) {
        /* Nothing pins the server certificate: a lost key just means a new one. */
        free(id->server_cert);
        id->server_cert = NULL;
        e = drv_pki_key_generate(&id->server_key, err);
        if (e == DRV_OK)
            e = write_pem(id, "server.key", id->server_key, true, err);
        if (e != DRV_OK)
            return e;
    } else if ((e = drv_pki_key_check(id->server_key, err)) != DRV_OK) {
        return drv_error_wrap(err, "pki: %s/server.key", id->dir);
    }
    if (!id->server_cert)
        return issue_server(id, s, now, err);
    drv_pki_cert_info_t info;
    if ((e = drv_pki_cert_info(id->server_cert, &info, err)) != DRV_OK)
        return drv_error_wrap(err, "pki: %s/server.crt", id->dir);
    if (drv_pki_key_matches_cert(id->server_key, id->server_cert, err) != DRV_OK)
        return drv_error_set(err, DRV_ERR_INTEGRITY, 0,
                             "pki: %s/server.key does not belong to %s/server.crt", id->dir,
                             id->dir);
    /* Checked at a time it was valid, so that only the issuer and usage decide here; expiry
     * is a reason to renew, not an error. */
    int64_t at = now;
    if (at >= info.not_after)
        at = info.not_after - 1;
    if (at < info.not_before)
        at = info.not_before;
    if (drv_pki_cert_verify(id->server_cert, id->ca_cert, at, DRV_PKI_SERVER_AUTH, err) != DRV_OK)
        return drv_error_wrap(err,
                              "pki: %s/server.crt was not issued by %s/ca.crt for server use "
                              "(remove server.crt and server.key to issue a new one)",
                              id->dir, id->dir);
    bool covered = false;
    if ((e = sans_covered(id->server_cert, s, &covered, err)) != DRV_OK)
        return drv_error_wrap(err, "pki: %s/server.crt", id->dir);
    const char *why = NULL;
    if (now >= info.not_after)
        why = "expired";
    else if (info.not_after - now < (int64_t)DRV_IDENTITY_RENEW_DAYS * DAY)
        why = "expires within 30 days";
    else if (now < info.not_before)
        why = "not valid yet";
    else if (!covered)
        why = "does not name every configured address";
    if (!why)
        return DRV_OK;
    drv_log_info("pki: re-issuing the server certificate", "file=%s/server.crt reason=\"%s\"",
                 id->dir, why);
    return issue_server(id, s, now, err);
}

static drv_err_t load_signing(drv_identity_t *id, drv_error_t *err)
{
    drv_err_t e = read_pem(id, "signing.key", true, &id->signing_key, err);
    if (e == DRV_OK)
        e = read_pem(id, "signing.pub", false, &id->signing_pub, err);
    if (e != DRV_OK)
        return e;
    if (!id->signing_key) {
        e = drv_pki_key_generate(&id->signing_key, err);
        if (e == DRV_OK)
            e = write_pem(id, "signing.key", id->signing_key, true, err);
        if (e != DRV_OK)
            return e;
    } else if ((e = drv_pki_key_check(id->signing_key, err)) != DRV_OK) {
        return drv_error_wrap(err, "pki: %s/signing.key", id->dir);
    }
    char *pub = NULL;
    if ((e = drv_pki_key_public(id->signing_key, &pub, err)) != DRV_OK)
        return drv_error_wrap(err, "pki: %s/signing.key", id->dir);
    if (id->signing_pub && !strcmp(id->signing_pub, pub)) {
        free(pub);
        return DRV_OK;
    }
    if (id->signing_pub)
        drv_log_warn("pki: signing.pub did not match signing.key; rewritten", "dir=%s", id->dir);
    e = write_pem(id, "signing.pub", pub, false, err);
    if (e != DRV_OK) {
        free(pub);
        return e;
    }
    free(id->signing_pub);
    id->signing_pub = pub;
    return DRV_OK;
}

drv_err_t drv_identity_load(const drv_identity_opts_t *opts, drv_identity_t **out, drv_error_t *err)
{
    if (!opts || !opts->data_dir || !*opts->data_dir)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "pki: a data directory is required");
    sans_t *s = calloc(1, sizeof(*s));
    drv_identity_t *id = calloc(1, sizeof(*id));
    if (!s || !id) {
        free(s);
        free(id);
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "out of memory");
    }
    drv_err_t e = sans_build(opts, s, err);
    if (e != DRV_OK)
        goto fail;
    if ((size_t)snprintf(id->dir, sizeof(id->dir), "%s/pki", opts->data_dir) >=
            sizeof(id->dir) - 16 ||
        (size_t)snprintf(id->ca_path, sizeof(id->ca_path), "%s/ca.crt", id->dir) >=
            sizeof(id->ca_path)) {
        e = drv_error_set(err, DRV_ERR_INVALID, 0, "pki: data directory path too long");
        goto fail;
    }
    if ((e = drv_file_mkdir_p(id->dir, 0700, err)) != DRV_OK) {
        drv_error_wrap(err, "pki: %s", id->dir);
        goto fail;
    }
    struct stat sb;
    if (stat(id->dir, &sb) == 0 && (sb.st_mode & 077) && chmod(id->dir, 0700) != 0) {
        e = drv_error_set(err, DRV_ERR_IO, errno, "pki: chmod 0700 %s", id->dir);
        goto fail;
    }
    int64_t now = opts->now ? opts->now : (int64_t)time(NULL);
    if ((e = load_ca(id, now, err)) != DRV_OK || (e = load_server(id, s, now, err)) != DRV_OK ||
        (e = load_signing(id, err)) != DRV_OK)
        goto fail;
    free(s);
    *out = id;
    return DRV_OK;
fail:
    free(s);
    drv_identity_free(id);
    return e;
}

void drv_identity_free(drv_identity_t *id)
{
    if (!id)
        return;
    drv_pki_secret_free(id->ca_key);
    drv_pki_secret_free(id->server_key);
    drv_pki_secret_free(id->signing_key);
    free(id->ca_cert);
    free(id->server_cert);
    free(id->signing_pub);
    free(id);
}

const char *drv_identity_ca_cert(const drv_identity_t *id)
{
    return id->ca_cert;
}

const char *drv_identity_ca_key(const drv_identity_t *id)
{
    return id->ca_key;
}

const char *drv_identity_server_cert(const drv_identity_t *id)
{
    return id->server_cert;
}

const char *drv_identity_server_key(const drv_identity_t *id)
{
    return id->server_key;
}

const char *drv_identity_signing_key(const drv_identity_t *id)
{
    return id->signing_key;
}

const char *drv_identity_signing_pub(const drv_identity_t *id)
{
    return id->signing_pub;
}

const char *drv_identity_ca_fingerprint(const drv_identity_t *id)
{
    return id->fingerprint;
}

const char *drv_identity_dir(const drv_identity_t *id)
{
    return id->dir;
}

const char *drv_identity_ca_path(const drv_identity_t *id)
{
    return id->ca_path;
}

bool drv_identity_created(const drv_identity_t *id)
{
    return id->created;
}

bool drv_identity_reissued(const drv_identity_t *id)
{
    return id->reissued;
}
