/* The drover CLI's subcommands. Each takes the arguments after its own name (argv[0] is the
 * subcommand) and returns the exit status: 0 success, 1 failure, 2 usage error. */
#ifndef DROVER_CLI_H
#define DROVER_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>

#include "drover/buf.h"
#include "drover/model.h"

/* validate -f FILE|DIR|- [-f ...] [-R] [-o json|yaml] */
int drv_cli_validate(int argc, char **argv);
/* apply -f FILE|DIR|- [-f ...] [-R] [-n NS] */
int drv_cli_apply(int argc, char **argv);
/* get KIND [NAME] [-n NS | -A] [-l SELECTOR] [-o wide|json|yaml] [-w] */
int drv_cli_get(int argc, char **argv);
/* delete KIND NAME... [-n NS] | delete -f FILE */
int drv_cli_delete(int argc, char **argv);
/* describe KIND NAME [-n NS] */
int drv_cli_describe(int argc, char **argv);
/* scale deployment NAME --replicas N [-n NS] */
int drv_cli_scale(int argc, char **argv);
/* cordon NODE / uncordon NODE */
int drv_cli_cordon(int argc, char **argv);
int drv_cli_uncordon(int argc, char **argv);
/* rollout status|history|undo deployment NAME [-n NS] [--timeout S] [--revision N]
 * (pause/resume: not supported, Drover's Deployments have no spec.paused) */
int drv_cli_rollout(int argc, char **argv);
/* logs POD [-n NS] [-c CONTAINER] [-f] [--tail N]: a container's output via the hub */
int drv_cli_logs(int argc, char **argv);
/* top nodes|pods: current usage (cli/top.c). */
int drv_cli_top(int argc, char **argv);
/* drain NODE [--ignore-daemonsets]: cordon, then delete the node's pods */
int drv_cli_drain(int argc, char **argv);
/* flash [options] IMAGE|DIR...: prepare Raspberry Pi OS-style disk images (cli/flash.c) */
int drv_cli_flash(int argc, char **argv);

/* ---- The hub client (cli/hub.c), shared by the commands above. ---- */

/* Largest response body accepted (bytes). */
#define DRV_CLI_MAX_RESPONSE (64u * 1024 * 1024)
/* Whole-request deadline for ordinary requests (seconds). */
#define DRV_CLI_TIMEOUT_S 30L

/* Sets the hub URL from a --hub flag (string borrowed; must outlive the command). */
void drv_cli_hub_set(const char *url);
/* The hub URL: --hub, else $DROVER_HUB, else hub: in ~/.config/drover/config, else
 * http://127.0.0.1:8080. Static storage; no trailing slash. */
const char *drv_cli_hub_url(void);

/* Whether a hub was named: --hub, $DROVER_HUB or hub: in the config file (not the default). */
bool drv_cli_hub_configured(void);

/* Sets the token from a --token flag (string borrowed). */
void drv_cli_token_set(const char *token);
/* The API token: --token, else $DROVER_TOKEN, else token: in the config file; NULL if none
 * (or one with spaces or control characters, refused with a message). Static storage. */
const char *drv_cli_token(void);
/* Sets the hub's CA certificate file from a --ca flag (string borrowed). */
void drv_cli_ca_set(const char *path);
/* The CA file that verifies an https:// hub: --ca, else $DROVER_CA, else ca: in the config
 * file; NULL: the system's trust store. Static storage. */
const char *drv_cli_ca(void);
/* Sets up a libcurl handle (CURL *) to verify the hub with drv_cli_ca(). */
void drv_cli_tls_setup(void *curl);
/* For a failed request (rc a CURLcode): if it failed over TLS (the hub's certificate could
 * not be verified, the CA file is unusable, the hub speaks HTTPS to an http:// URL), prints
 * what to do (naming --ca) and returns true; false otherwise, having printed nothing. */
bool drv_cli_tls_error(int rc, const char *errbuf);
/* Appends "Authorization: Bearer TOKEN" to hdrs when there is a token; returns the list. */
struct curl_slist;
struct curl_slist *drv_cli_auth_header(struct curl_slist *hdrs);
/* The config file: $XDG_CONFIG_HOME/drover/config or ~/.config/drover/config (YAML or JSON,
 * keys hub, token and ca). false if neither variable is set or the path does not fit. */
bool drv_cli_config_path(char *out, size_t outsz);
/* Its contents as a new JSON object (caller frees); NULL if absent or unreadable (quiet:
 * without a message). */
cJSON *drv_cli_config_load(bool quiet);

/* login --hub URL --token TOKEN|--token-file PATH */
int drv_cli_login(int argc, char **argv);
/* token create|list|revoke */
int drv_cli_token_cmd(int argc, char **argv);
/* kubeconfig [--role ROLE] [--name NAME] [--ttl D] [--server URL]: a kubeconfig on stdout
 * (cli/kubeconfig.c) */
int drv_cli_kubeconfig(int argc, char **argv);
/* node revoke NAME... | node forget NAME... | node list-identities [-o json] */
int drv_cli_node_cmd(int argc, char **argv);

typedef struct drv_cli_resp {
    long status;    /* HTTP status */
    drv_buf_t body; /* owned */
    cJSON *json;    /* owned; the parsed body, NULL if it was not JSON */
} drv_cli_resp_t;

/* One request to the hub. path starts with '/' and is already escaped. ctype may be NULL
 * (no body). Returns 0 when an HTTP answer arrived (whatever its status; *resp filled, free
 * with drv_cli_resp_free), 1 after printing why the hub could not be reached. */
int drv_cli_request(const char *method, const char *path, const char *ctype, const char *body,
                    drv_cli_resp_t *resp);
void drv_cli_resp_free(drv_cli_resp_t *resp);

/* Prints an error answer as kubectl does ("Error from server (Invalid): message", then one
 * "  field: message" line per details.causes entry) to stderr. */
void drv_cli_print_status(const drv_cli_resp_t *resp);
/* The "  field: message" lines of a Status's details.causes (no_field where a cause names
 * none), to stderr. */
void drv_cli_print_causes(const cJSON *status, const char *no_field);
/* A "list [-o json]" subcommand's request: GET path, expecting {"items": [...]}. Sets *done
 * and returns the exit status when nothing is left to do (bad arguments: usage(); the hub
 * unreachable or refusing: 1 after saying why; -o json: 0 after printing the answer).
 * Otherwise returns 0 with *resp (the caller frees it) and *items for the caller's table. */
int drv_cli_list(const char *path, int argc, char **argv, int (*usage)(void), drv_cli_resp_t *resp,
                 const cJSON **items, bool *done);

/* Streams a watch (SSE) at path; calls fn for every event until the stream ends or fn
 * returns false. Returns 0 on a clean end, 1 after printing an error. */
int drv_cli_watch(const char *path, bool (*fn)(const char *type, cJSON *obj, void *ctx), void *ctx);

/* Percent-escapes s for a query string into out; false if it does not fit. */
bool drv_cli_escape(const char *s, char *out, size_t outsz);

/* API path of a kind's collection (name NULL) or item; ns NULL or "" for all namespaces of a
 * namespaced kind. false if it does not fit. */
bool drv_cli_path(drv_kind_t kind, const char *ns, const char *name, char *out, size_t outsz);
/* "deployment.apps" / "pod" / "node": how kubectl names a kind in messages. */
const char *drv_cli_kind_ref(drv_kind_t kind);
bool drv_cli_namespaced(drv_kind_t kind);

#endif
