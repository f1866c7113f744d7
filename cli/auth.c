/* drover login (the hub and a token saved in the config file, mode 0600) and drover token
 * create|list|revoke (the hub's /api/v1/tokens; admin only). */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "drover/file.h"
#include "drover/fmt.h"
#include "drover/json.h"

#define TOKEN_FILE_MAX 4096

/* Reads a token from a file (admin.token): the first line, without surrounding blanks, into
 * out. */
static bool token_from_file(const char *path, char *out, size_t outsz)
{
    char *text = NULL;
    size_t len = 0;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_file_read_capped(path, TOKEN_FILE_MAX, &text, &len, &err) != DRV_OK) {
        fprintf(stderr, "drover login: --token-file %s: %s\n", path, drv_error_msg(&err));
        return false;
    }
    char *p = text;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    size_t n = strcspn(p, " \t\r\n");
    bool ok = n > 0 && n < outsz;
    if (ok) {
        memcpy(out, p, n);
        out[n] = '\0';
    } else {
        fprintf(stderr, "drover login: --token-file %s: no token in it\n", path);
    }
    explicit_bzero(text, len);
    free(text);
    return ok;
}

/* --ca FILE: a readable PEM certificate; its absolute path (saved in the config) to out. */
static bool ca_file_check(const char *path, char *out, size_t outsz)
{
    char *text = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_file_read_capped(path, 1024 * 1024, &text, NULL, &err) != DRV_OK) {
        fprintf(stderr, "drover login: --ca %s: %s\n", path, drv_error_msg(&err));
        return false;
    }
    bool pem = strstr(text, "-----BEGIN CERTIFICATE-----") != NULL;
    free(text);
    if (!pem) {
        fprintf(stderr,
                "drover login: --ca %s: no PEM certificate in it (expected the hub's "
                "<data>/pki/ca.crt)\n",
                path);
        return false;
    }
    char abs[PATH_MAX];
    if (!realpath(path, abs) || drv_fmt(out, outsz, "%s", abs) != DRV_OK) {
        fprintf(stderr, "drover login: --ca %s: cannot resolve its path\n", path);
        return false;
    }
    return true;
}

static int login_usage(void)
{
    fprintf(stderr, "usage: drover login --hub URL [--ca FILE] --token TOKEN | --token-file PATH\n"
                    "  saves the hub, its CA certificate (for an https:// hub) and the token in\n"
                    "  the config file (mode 0600); later commands send the token (--token and\n"
                    "  $DROVER_TOKEN override it) and verify the hub with the CA (--ca and\n"
                    "  $DROVER_CA override it)\n");
    return 2;
}

int drv_cli_login(int argc, char **argv)
{
    static const struct option longopts[] = {{"hub", required_argument, NULL, 'H'},
                                             {"token", required_argument, NULL, 't'},
                                             {"token-file", required_argument, NULL, 'f'},
                                             {"ca", required_argument, NULL, 'c'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    const char *hub = NULL, *tok = NULL, *file = NULL, *ca = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'H':
            hub = optarg;
            break;
        case 't':
            tok = optarg;
            break;
        case 'f':
            file = optarg;
            break;
        case 'c':
            ca = optarg;
            break;
        default:
            return login_usage();
        }
    }
    if (optind < argc || (!tok && !file) || (tok && file))
        return login_usage();
    char token[512];
    if (file) {
        if (!token_from_file(file, token, sizeof(token)))
            return 1;
    } else if (drv_fmt(token, sizeof(token), "%s", tok) != DRV_OK) {
        fprintf(stderr, "drover login: --token: too long\n");
        return 1;
    }
    for (const char *p = token; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f) {
            fprintf(stderr, "drover login: --token: spaces or control characters in it\n");
            return 1;
        }
    char ca_abs[PATH_MAX];
    if (ca && !ca_file_check(ca, ca_abs, sizeof(ca_abs)))
        return 1;
    if (ca)
        drv_cli_ca_set(ca_abs);
    if (hub)
        drv_cli_hub_set(hub);
    drv_cli_token_set(token);
    const char *url = drv_cli_hub_url();
    if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)) {
        fprintf(stderr, "drover login: --hub \"%.200s\": expected http://HOST:PORT or https://\n",
                url);
        return 1;
    }
    /* Check it before saving: a token the hub refuses is not worth keeping. */
    drv_cli_resp_t resp;
    if (drv_cli_request("GET", "/api/v1/nodes", NULL, NULL, &resp))
        return 1;
    if (resp.status == 401) {
        fprintf(stderr, "drover login: the hub at %s refused the token\n", url);
        drv_cli_print_status(&resp);
        drv_cli_resp_free(&resp);
        return 1;
    }
    if (resp.status == 403)
        fprintf(stderr, "drover login: warning: the token may not list nodes (a bootstrap token "
                        "cannot use the API)\n");
    drv_cli_resp_free(&resp);

    char path[1024];
    if (!drv_cli_config_path(path, sizeof(path))) {
        fprintf(stderr, "drover login: neither HOME nor XDG_CONFIG_HOME is set\n");
        return 1;
    }
    cJSON *cfg = drv_cli_config_load(true);
    if (!cfg)
        cfg = cJSON_CreateObject();
    if (!cfg)
        return 1;
    cJSON_DeleteItemFromObjectCaseSensitive(cfg, "hub");
    cJSON_DeleteItemFromObjectCaseSensitive(cfg, "token");
    cJSON_AddStringToObject(cfg, "hub", url);
    cJSON_AddStringToObject(cfg, "token", token);
    if (ca) {
        cJSON_DeleteItemFromObjectCaseSensitive(cfg, "ca");
        cJSON_AddStringToObject(cfg, "ca", ca_abs);
    }
    explicit_bzero(token, sizeof(token));
    char *text = cJSON_Print(cfg);
    cJSON_Delete(cfg);
    if (!text)
        return 1;
    size_t len = strlen(text);
    char dir[1024];
    if (drv_fmt(dir, sizeof(dir), "%s", path) != DRV_OK) {
        fprintf(stderr, "drover login: config file name too long: %s\n", path);
        explicit_bzero(text, len);
        free(text);
        return 1;
    }
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t e = drv_file_mkdir_p(dir, 0700, &err);
    if (e == DRV_OK) {
        char *t2 = realloc(text, len + 2);
        if (!t2) {
            free(text);
            return 1;
        }
        text = t2;
        text[len++] = '\n';
        e = drv_file_write_atomic(path, text, len, 0600, &err);
    }
    explicit_bzero(text, len);
    free(text);
    if (e != DRV_OK) {
        fprintf(stderr, "drover login: %s\n", drv_error_msg(&err));
        return 1;
    }
    printf("Logged in to %s (saved in %s)\n", url, path);
    return 0;
}

/* ---- token ---- */

static int token_usage(void)
{
    fprintf(stderr, "usage: drover token create --role admin|operator|viewer [--ttl 24h] "
                    "[--description TEXT]\n"
                    "       drover token create [--ttl 24h] [--uses N] [--labels k=v,...] "
                    "[--description TEXT]\n"
                    "                           (without --role: a bootstrap token, for enrolling "
                    "devices)\n"
                    "       drover token list [-o json]\n"
                    "       drover token revoke ID|TOKEN...\n");
    return 2;
}

/* "k=v,k2=v2" into a JSON object; NULL after a message. */
static cJSON *parse_labels(const char *s)
{
    cJSON *o = cJSON_CreateObject();
    char *copy = strdup(s);
    if (!o || !copy) {
        cJSON_Delete(o);
        free(copy);
        return NULL;
    }
    for (char *kv = copy; kv;) {
        char *next = strchr(kv, ',');
        if (next)
            *next++ = '\0';
        char *eq = strchr(kv, '=');
        if (!eq || eq == kv) {
            fprintf(stderr, "drover token create: --labels \"%.64s\": expected key=value\n", kv);
            cJSON_Delete(o);
            free(copy);
            return NULL;
        }
        *eq = '\0';
        cJSON_DeleteItemFromObjectCaseSensitive(o, kv);
        cJSON_AddStringToObject(o, kv, eq + 1);
        kv = next;
    }
    free(copy);
    return o;
}

static int token_create(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"role", required_argument, NULL, 'r'},        {"ttl", required_argument, NULL, 't'},
        {"description", required_argument, NULL, 'd'}, {"uses", required_argument, NULL, 'u'},
        {"labels", required_argument, NULL, 'l'},      {NULL, 0, NULL, 0}};
    cJSON *req = cJSON_CreateObject();
    if (!req)
        return 1;
    const char *role = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'r':
            role = optarg;
            cJSON_AddStringToObject(req, "role", optarg);
            break;
        case 't':
            cJSON_AddStringToObject(req, "ttl", optarg);
            break;
        case 'd':
            cJSON_AddStringToObject(req, "description", optarg);
            break;
        case 'u': {
            char *end = NULL;
            long v = strtol(optarg, &end, 10);
            if (end == optarg || *end || v < 1 || v > 100000) {
                fprintf(stderr, "drover token create: --uses \"%s\": a number, 1 to 100000\n",
                        optarg);
                cJSON_Delete(req);
                return 2;
            }
            cJSON_AddNumberToObject(req, "uses", (double)v);
            break;
        }
        case 'l': {
            cJSON *l = parse_labels(optarg);
            if (!l) {
                cJSON_Delete(req);
                return 2;
            }
            cJSON_DeleteItemFromObjectCaseSensitive(req, "labels");
            cJSON_AddItemToObject(req, "labels", l);
            break;
        }
        default:
            cJSON_Delete(req);
            return token_usage();
        }
    }
    if (optind < argc) {
        cJSON_Delete(req);
        return token_usage();
    }
    cJSON_AddStringToObject(req, "kind", role ? "api" : "bootstrap");
    char *body = cJSON_PrintUnformatted(req);
    cJSON_Delete(req);
    if (!body)
        return 1;
    drv_cli_resp_t resp;
    int rc = drv_cli_request("POST", "/api/v1/tokens", "application/json", body, &resp);
    free(body);
    if (rc)
        return 1;
    const char *tok = drv_json_str_or(resp.json, "token", NULL);
    if (resp.status != 201 || !tok) {
        drv_cli_print_status(&resp);
        drv_cli_resp_free(&resp);
        return 1;
    }
    /* The token alone on stdout (T=$(drover token create ...)); the rest on stderr. */
    printf("%s\n", tok);
    fflush(stdout);
    const char *r = drv_json_str_or(resp.json, "role", NULL);
    fprintf(stderr, "token %s created (%s%s%s, expires %s). It is shown only this once.\n",
            drv_json_str_or(resp.json, "id", "?"), r ? "role " : "bootstrap", r ? r : "",
            r ? "" : " token: it can only enrol a device",
            drv_json_str_or(resp.json, "expires", "never"));
    drv_cli_resp_free(&resp);
    return 0;
}

static int token_list(int argc, char **argv)
{
    drv_cli_resp_t resp;
    const cJSON *items = NULL;
    bool done = false;
    int rc = drv_cli_list("/api/v1/tokens", argc, argv, token_usage, &resp, &items, &done);
    if (done)
        return rc;
    printf("%-10s %-10s %-9s %-8s %-21s %-21s %s\n", "ID", "KIND", "ROLE", "STATE", "CREATED",
           "EXPIRES", "DESCRIPTION");
    const cJSON *t;
    cJSON_ArrayForEach(t, items)
    {
        printf("%-10s %-10s %-9s %-8s %-21s %-21s %s\n", drv_json_str_or(t, "id", ""),
               drv_json_str_or(t, "kind", ""), drv_json_str_or(t, "role", "-"),
               drv_json_str_or(t, "state", ""), drv_json_str_or(t, "created", ""),
               drv_json_str_or(t, "expires", "never"), drv_json_str_or(t, "description", ""));
    }
    drv_cli_resp_free(&resp);
    return 0;
}

static int token_revoke(int argc, char **argv)
{
    if (argc < 2)
        return token_usage();
    int ret = 0;
    for (int i = 1; i < argc; i++) {
        /* A whole token names its id in it: drv1_<id>_... */
        char id[64] = "";
        const char *a = argv[i];
        drv_err_t fits = !strncmp(a, "drv1_", 5)
                             ? drv_fmt(id, sizeof(id), "%.*s", (int)strcspn(a + 5, "_"), a + 5)
                             : drv_fmt(id, sizeof(id), "%s", a);
        char path[128], esc[96];
        if (fits != DRV_OK || !*id || !drv_cli_escape(id, esc, sizeof(esc))) {
            fprintf(stderr, "drover token revoke: \"%.64s\" is not a token id\n", a);
            ret = 1;
            continue;
        }
        if (drv_fmt(path, sizeof(path), "/api/v1/tokens/%s", esc) != DRV_OK) {
            fprintf(stderr, "drover token revoke: \"%.64s\": API path too long\n", a);
            ret = 1;
            continue;
        }
        drv_cli_resp_t resp;
        if (drv_cli_request("DELETE", path, NULL, NULL, &resp))
            return 1;
        if (resp.status == 200) {
            printf("token %s revoked\n", id);
        } else {
            drv_cli_print_status(&resp);
            ret = 1;
        }
        drv_cli_resp_free(&resp);
    }
    return ret;
}

int drv_cli_token_cmd(int argc, char **argv)
{
    if (argc < 2)
        return token_usage();
    if (!strcmp(argv[1], "create"))
        return token_create(argc - 1, argv + 1);
    if (!strcmp(argv[1], "list"))
        return token_list(argc - 1, argv + 1);
    if (!strcmp(argv[1], "revoke"))
        return token_revoke(argc - 1, argv + 1);
    return token_usage();
}
