/* drover kubeconfig: a kubeconfig file for kubectl and the Kubernetes client libraries, naming
 * the hub (its URL and the CA the CLI trusts it with) and a token: the CLI's own, or a new one
 * of a given role made through the hub's token API, to hand to someone else. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "drover/base64.h"
#include "drover/cleanup.h"
#include "drover/doc.h"
#include "drover/file.h"
#include "drover/fmt.h"
#include "drover/json.h"

#define CA_FILE_MAX (1024u * 1024)
#define NAME_MAX_LEN 63
#define OUT_MAX (256u * 1024)

static int kubeconfig_usage(void)
{
    fprintf(stderr,
            "usage: drover kubeconfig [--role viewer|operator|admin] [--name NAME] [--ttl 24h]\n"
            "                         [--server URL]\n"
            "  prints a kubeconfig for kubectl and the Kubernetes clients: the hub (--server,\n"
            "  default the CLI's hub URL) with the CA certificate the CLI trusts it with, and a\n"
            "  token: the CLI's own, or with --role a new token of that role (admin only; --ttl\n"
            "  its lifetime). --name names the cluster, user and context (default drover).\n"
            "  e.g. drover kubeconfig --role viewer --ttl 72h >viewer.kubeconfig\n");
    return 2;
}

/* A name kubectl shows and the YAML holds: letters, digits and ".-_@", 1 to 63 of them. */
static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= NAME_MAX_LEN &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTU"
                     "VWXYZ0123456789.-_@") == n;
}

/* The CA file's certificate(s), base64 as certificate-authority-data wants, into *out (caller
 * frees); false after a message. */
static bool ca_data(const char *path, char **out)
{
    _cleanup_free_ char *pem = NULL;
    size_t len = 0;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_file_read_capped(path, CA_FILE_MAX, &pem, &len, &err) != DRV_OK) {
        fprintf(stderr, "drover kubeconfig: the hub's CA file %s: %s\n", path, drv_error_msg(&err));
        return false;
    }
    if (!strstr(pem, "-----BEGIN CERTIFICATE-----")) {
        fprintf(stderr,
                "drover kubeconfig: the hub's CA file %s holds no PEM certificate (expected the "
                "hub's <data>/pki/ca.crt; see --ca)\n",
                path);
        return false;
    }
    *out = drv_base64_encode(pem, len);
    if (!*out) {
        fprintf(stderr, "drover kubeconfig: out of memory\n");
        return false;
    }
    return true;
}

/* A new API token of role (ttl may be NULL: the hub's default) into *out (caller frees);
 * false after a message. */
static bool token_new(const char *role, const char *ttl, const char *name, char **out)
{
    _cleanup_cjson_ cJSON *req = cJSON_CreateObject();
    char desc[128];
    drv_fmt_cut(desc, sizeof(desc), "kubeconfig %s", name);
    if (!req || !cJSON_AddStringToObject(req, "kind", "api") ||
        !cJSON_AddStringToObject(req, "role", role) ||
        !cJSON_AddStringToObject(req, "description", desc) ||
        (ttl && !cJSON_AddStringToObject(req, "ttl", ttl))) {
        fprintf(stderr, "drover kubeconfig: out of memory\n");
        return false;
    }
    _cleanup_free_ char *body = cJSON_PrintUnformatted(req);
    if (!body)
        return false;
    drv_cli_resp_t resp;
    if (drv_cli_request("POST", "/api/v1/tokens", "application/json", body, &resp))
        return false;
    const char *tok = drv_json_str_or(resp.json, "token", NULL);
    if (resp.status != 201 || !tok) {
        fprintf(stderr, "drover kubeconfig: the hub did not create a %s token (HTTP %ld)%s\n", role,
                resp.status,
                resp.status == 403 || resp.status == 401
                    ? ": only an admin token may create tokens (drover login with one, or "
                      "--token)"
                    : "");
        drv_cli_print_status(&resp);
        drv_cli_resp_free(&resp);
        return false;
    }
    *out = strdup(tok);
    fprintf(stderr, "drover kubeconfig: token %s created (role %s, expires %s)\n",
            drv_json_str_or(resp.json, "id", "?"), role,
            drv_json_str_or(resp.json, "expires", "never"));
    drv_cli_resp_free(&resp);
    return *out != NULL;
}

/* A new object appended to the array arr (which owns it); NULL if out of memory. */
static cJSON *array_add_object(cJSON *arr)
{
    cJSON *o = cJSON_CreateObject();
    if (o && !cJSON_AddItemToArray(arr, o)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* The kubeconfig document: one cluster, one user, one context, current (ca64 and token may be
 * NULL: no such field). NULL if out of memory. */
static cJSON *kubeconfig_doc(const char *name, const char *ctx, const char *server,
                             const char *ca64, const char *token)
{
    _cleanup_cjson_ cJSON *doc = cJSON_CreateObject();
    if (!doc || !cJSON_AddStringToObject(doc, "apiVersion", "v1") ||
        !cJSON_AddStringToObject(doc, "kind", "Config"))
        return NULL;
    cJSON *cl = array_add_object(cJSON_AddArrayToObject(doc, "clusters"));
    cJSON *u = array_add_object(cJSON_AddArrayToObject(doc, "users"));
    cJSON *cx = array_add_object(cJSON_AddArrayToObject(doc, "contexts"));
    if (!cl || !u || !cx)
        return NULL;
    cJSON *cld = cJSON_AddObjectToObject(cl, "cluster");
    cJSON *ud = cJSON_AddObjectToObject(u, "user");
    cJSON *cxd = cJSON_AddObjectToObject(cx, "context");
    bool ok = cld && ud && cxd && cJSON_AddStringToObject(cl, "name", name) &&
              cJSON_AddStringToObject(cld, "server", server) &&
              (!ca64 || cJSON_AddStringToObject(cld, "certificate-authority-data", ca64)) &&
              cJSON_AddStringToObject(u, "name", ctx) &&
              (!token || cJSON_AddStringToObject(ud, "token", token)) &&
              cJSON_AddStringToObject(cx, "name", ctx) &&
              cJSON_AddStringToObject(cxd, "cluster", name) &&
              cJSON_AddStringToObject(cxd, "user", ctx) &&
              cJSON_AddStringToObject(cxd, "namespace", "default") &&
              cJSON_AddStringToObject(doc, "current-context", ctx) &&
              cJSON_AddObjectToObject(doc, "preferences");
    return ok ? TAKE_PTR(doc) : NULL;
}

int drv_cli_kubeconfig(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"role", required_argument, NULL, 'r'}, {"name", required_argument, NULL, 'n'},
        {"ttl", required_argument, NULL, 't'},  {"server", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0}};
    const char *role = NULL, *name = "drover", *ttl = NULL, *server = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'r':
            role = optarg;
            break;
        case 'n':
            name = optarg;
            break;
        case 't':
            ttl = optarg;
            break;
        case 's':
            server = optarg;
            break;
        default:
            return kubeconfig_usage();
        }
    }
    if (optind < argc) {
        fprintf(stderr, "drover kubeconfig: unexpected argument \"%.64s\"\n", argv[optind]);
        return kubeconfig_usage();
    }
    if (role && strcmp(role, "viewer") && strcmp(role, "operator") && strcmp(role, "admin")) {
        fprintf(stderr, "drover kubeconfig: --role \"%.64s\": expected viewer, operator or admin\n",
                role);
        return 2;
    }
    if (ttl && !role) {
        fprintf(stderr, "drover kubeconfig: --ttl needs --role (the CLI's own token keeps the "
                        "lifetime it has)\n");
        return 2;
    }
    if (!name_ok(name)) {
        fprintf(stderr,
                "drover kubeconfig: --name \"%.64s\": 1 to %d letters, digits, '.', '-', '_' "
                "or '@'\n",
                name, NAME_MAX_LEN);
        return 2;
    }
    if (!server)
        server = drv_cli_hub_url();
    bool https = !strncmp(server, "https://", 8);
    if (!https && strncmp(server, "http://", 7)) {
        fprintf(stderr,
                "drover kubeconfig: --server \"%.200s\": expected https://HOST:PORT or "
                "http://HOST:PORT\n",
                server);
        return 2;
    }
    char ctx[NAME_MAX_LEN + 16];
    if (drv_fmt(ctx, sizeof(ctx), "%s%s%s", name, role ? "-" : "", role ? role : "") != DRV_OK) {
        fprintf(stderr, "drover kubeconfig: --name \"%s\": too long\n", name);
        return 2;
    }

    /* The CA the CLI itself verifies the hub with; without one it trusts the system's store,
     * and so will kubectl. */
    _cleanup_free_ char *ca64 = NULL;
    const char *ca = drv_cli_ca();
    if (https && ca && !ca_data(ca, &ca64))
        return 1;
    if (!https && ca)
        fprintf(stderr,
                "drover kubeconfig: warning: %s is plain HTTP: the CA file %s is not "
                "used, and the token travels unencrypted\n",
                server, ca);

    _cleanup_free_ char *token = NULL;
    if (role) {
        if (!token_new(role, ttl, name, &token))
            return 1;
    } else if (drv_cli_token()) {
        token = strdup(drv_cli_token());
        if (!token)
            return 1;
    } else {
        fprintf(stderr, "drover kubeconfig: warning: the CLI has no token (drover login, "
                        "--token or $DROVER_TOKEN): the kubeconfig has none either, which only "
                        "a hub run with --no-auth accepts\n");
    }

    _cleanup_cjson_ cJSON *doc = kubeconfig_doc(name, ctx, server, ca64, token);
    if (token)
        explicit_bzero(token, strlen(token));
    if (!doc) {
        fprintf(stderr, "drover kubeconfig: out of memory\n");
        return 1;
    }
    _cleanup_buf_ drv_buf_t out = DRV_BUF_INIT(OUT_MAX);
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_doc_emit_yaml(doc, &out, &err) != DRV_OK) {
        fprintf(stderr, "drover kubeconfig: cannot print YAML: %s\n", drv_error_msg(&err));
        return 1;
    }
    bool written = fwrite(out.data, 1, out.len, stdout) == out.len && fflush(stdout) == 0;
    explicit_bzero(out.data, out.len);
    if (!written) {
        perror("drover kubeconfig: stdout");
        return 1;
    }
    return 0;
}
