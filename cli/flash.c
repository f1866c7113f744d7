/* drover flash: prepares Raspberry Pi OS-style disk images for the fleet, offline and without
 * root: the agent binary of the image's architecture, /etc/drover/agent.yaml, the bootstrap
 * token, the systemd unit (ports/raspberrypi/drover-agent.service, built in), its stop helper
 * (ports/debian/agent-stop-post, built in) and its multi-user.target.wants link, and the cgroup
 * options on cmdline.txt. Never a private key: the device makes its own when it enrols. Idempotent:
 * what is there is compared first. */
#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "drover/cleanup.h"
#include "drover/doc.h"
#include "drover/file.h"
#include "drover/fmt.h"
#include "drover/json.h"
#include "drover/names.h"
#include "drover/path.h"
#include "drover/pki.h"
#include "drover/proc.h"
#include "flash/flash.h"
#include "flash_unit.h" /* generated from ports/raspberrypi and ports/debian */

#define AGENT_MAX (128u * 1024 * 1024)
#define CMDLINE_MAX (64u * 1024)
#define ELF_PROBE_MAX (64u * 1024 * 1024)
#define TEXT_MAX (1024u * 1024)
#define MAX_IMAGES 4096

#define AGENT_PATH "/usr/local/bin/drover-agent"
#define CONFIG_PATH "/etc/drover/agent.yaml"
#define TOKEN_PATH "/etc/drover/bootstrap.token"
#define UNIT_PATH "/etc/systemd/system/drover-agent.service"
#define STOP_POST_PATH "/usr/local/lib/drover/agent-stop-post"
#define WANTS_PATH "/etc/systemd/system/multi-user.target.wants/drover-agent.service"

/* Where the image's userland architecture is read from: the first that is an ELF file. */
static const char *const elf_probes[] = {
    "/usr/bin/env",
    "/bin/busybox",
    "/usr/bin/busybox",
    "/lib/ld-linux-aarch64.so.1",
    "/lib/ld-linux-armhf.so.3",
    "/bin/sh",
};

/* A device that ran the agent keeps these: an image that holds them would clone an identity. */
static const char *const identity_paths[] = {"/var/lib/drover/identity/node.key",
                                             "/var/lib/drover/node-name.json"};

/* The directories the files go in (created when missing, mode 0755, root's). */
static const char *const dirs[] = {"/usr",
                                   "/usr/local",
                                   "/usr/local/bin",
                                   "/usr/local/lib",
                                   "/usr/local/lib/drover",
                                   "/etc",
                                   "/etc/drover",
                                   "/etc/systemd",
                                   "/etc/systemd/system",
                                   "/etc/systemd/system/multi-user.target.wants"};

typedef struct agent_bin {
    char path[1024];
    char *data; /* owned */
    size_t len;
    drv_flash_arch_t arch;
} agent_bin_t;

typedef struct flash_opts {
    const char *agent, *agent_dir, *hub_url, *broker, *token_file, *node_name;
    char token[128];
    char ca_fp[80];
    cJSON *labels; /* owned */
    bool no_token_check, dry_run, keep_identity;
    char tmpdir[256];
    drv_flash_tools_t tools;
    agent_bin_t agents[4]; /* by drv_flash_arch_t */
    char *config;          /* agent.yaml's text (owned) */
    size_t config_len;
} flash_opts_t;

typedef enum { R_FLASHED, R_UNCHANGED, R_REFUSED, R_FAILED } result_t;

static int usage(void)
{
    fprintf(stderr,
            "usage: drover flash (--agent PATH | --agent-dir DIR) --hub-url https://HOST[:PORT]\n"
            "                    --broker ssl://HOST:PORT (--token-file PATH | --token TOKEN)\n"
            "                    [--ca-fingerprint sha256:HEX] [--node-name NAME|PATTERN]\n"
            "                    [--label KEY=VALUE]... [--no-token-check] [--keep-identity]\n"
            "                    [--dry-run] IMAGE|DIR...\n"
            "  Writes into each Raspberry Pi OS-style disk image (MBR; partition 1 FAT with\n"
            "  config.txt and cmdline.txt, then an ext4 root), offline and without root:\n"
            "  " AGENT_PATH " (the --agent, or --agent-dir's drover-agent-<arch>, matching the\n"
            "  image's architecture), " CONFIG_PATH ", " TOKEN_PATH ",\n"
            "  " UNIT_PATH " enabled for multi-user.target (with\n"
            "  " STOP_POST_PATH ", which stops the pods when the unit\n"
            "  is stopped for good), and\n"
            "  " DRV_FLASH_CMDLINE_OPTS " on cmdline.txt. A DIR means its *.img files.\n"
            "  --node-name      a name, or a pattern the device fills at its first start:\n"
            "                   {serial}, {hostname}, {mac} (default pi-{serial})\n"
            "  --ca-fingerprint the hub's CA (drover-hub prints it); default: that of the\n"
            "                   CLI's --ca file (drover login --ca)\n"
            "  The bootstrap token is checked with the CLI's hub when one is configured\n"
            "  (--hub, $DROVER_HUB, drover login): expired, used up, revoked or unknown is\n"
            "  refused (--no-token-check: do not ask). One line per image; exit 1 if any\n"
            "  was refused or failed.\n");
    return 2;
}

static double now_s(void)
{
    return (double)drv_now_ms() / 1000.0;
}

/* ---- inputs ---- */

/* https://HOST[:PORT] with nothing after it. */
static bool url_ok(const char *u, const char *scheme, bool port_required)
{
    size_t sl = strlen(scheme);
    if (strncmp(u, scheme, sl) || !u[sl] || strpbrk(u + sl, "/ \t@?#\"\\") || strlen(u) > 200)
        return false;
    const char *colon = strrchr(u + sl, ':');
    if (colon && strchr(u + sl, ']') > colon)
        colon = NULL;
    if (!colon)
        return !port_required;
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    return colon[1] && !*end && port >= 1 && port <= 65535;
}

static bool fingerprint_ok(const char *fp)
{
    if (strncmp(fp, "sha256:", 7) || strlen(fp) != 7 + 64)
        return false;
    return strspn(fp + 7, "0123456789abcdef") == 64;
}

/* The fingerprint of the CLI's CA file (drover --ca, $DROVER_CA, drover login --ca). */
static bool fingerprint_from_ca(char *out, size_t outsz)
{
    const char *ca = drv_cli_ca();
    if (!ca)
        return false;
    _cleanup_free_ char *pem = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    drv_pki_cert_info_t info;
    if (drv_file_read_capped(ca, 1024 * 1024, &pem, NULL, &err) != DRV_OK ||
        drv_pki_cert_info(pem, &info, &err) != DRV_OK) {
        fprintf(stderr, "drover flash: the CLI's CA file %s: %s\n", ca, drv_error_msg(&err));
        return false;
    }
    if (drv_fmt(out, outsz, "%s", info.fingerprint) != DRV_OK) {
        fprintf(stderr, "drover flash: the CLI's CA file %s: fingerprint too long\n", ca);
        return false;
    }
    return true;
}

static bool read_token(flash_opts_t *o, const char *tok_arg)
{
    char *text = NULL;
    size_t len = 0;
    const char *what = o->token_file ? "--token-file" : "--token";
    if (o->token_file) {
        drv_error_t err = DRV_ERROR_INIT;
        if (drv_file_read_capped(o->token_file, 4096, &text, &len, &err) != DRV_OK) {
            fprintf(stderr, "drover flash: --token-file %s: %s\n", o->token_file,
                    drv_error_msg(&err));
            return false;
        }
        char *p = text + strspn(text, " \t\r\n");
        size_t n = strcspn(p, " \t\r\n");
        /* One too long stays unset and is refused below. */
        if (n < sizeof(o->token) &&
            drv_fmt(o->token, sizeof(o->token), "%.*s", (int)n, p) != DRV_OK)
            o->token[0] = '\0';
        explicit_bzero(text, len);
        free(text);
    } else if (drv_fmt(o->token, sizeof(o->token), "%s", tok_arg) != DRV_OK) {
        o->token[0] = '\0'; /* too long: refused below */
    }
    char id[9];
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_flash_token_id(o->token, id, &err) != DRV_OK) {
        fprintf(stderr, "drover flash: %s: %s\n", what, drv_error_msg(&err));
        return false;
    }
    return true;
}

/* Asks the CLI's hub about the bootstrap token (GET /api/v1/tokens/ID, an admin's right):
 * true when it can enrol devices. n_images: to warn when it has fewer uses left. */
static bool check_token(const flash_opts_t *o, size_t n_images)
{
    char id[9];
    if (drv_flash_token_id(o->token, id, NULL) != DRV_OK)
        return false;
    if (o->no_token_check) {
        fprintf(stderr, "drover flash: bootstrap token %s not checked (--no-token-check)\n", id);
        return true;
    }
    if (!drv_cli_hub_configured()) {
        fprintf(stderr,
                "drover flash: bootstrap token %s not checked: no hub configured for this CLI "
                "(drover login, --hub or $DROVER_HUB)\n",
                id);
        return true;
    }
    char path[64];
    if (drv_fmt(path, sizeof(path), "/api/v1/tokens/%s", id) != DRV_OK) {
        fprintf(stderr, "drover flash: bootstrap token %s: API path too long\n", id);
        return false;
    }
    drv_cli_resp_t resp;
    if (drv_cli_request("GET", path, NULL, NULL, &resp)) {
        fprintf(stderr,
                "drover flash: cannot check the bootstrap token with the hub at %s "
                "(--no-token-check to flash without asking)\n",
                drv_cli_hub_url());
        return false;
    }
    bool ok = false;
    if (resp.status == 404) {
        fprintf(stderr,
                "drover flash: refused: bootstrap token %s is unknown to the hub at %s (made "
                "for another hub, or removed)\n",
                id, drv_cli_hub_url());
    } else if (resp.status == 401 || resp.status == 403) {
        fprintf(stderr,
                "drover flash: cannot check the bootstrap token: the hub at %s answers %ld (an "
                "admin token is needed: drover login; --no-token-check to flash without "
                "asking)\n",
                drv_cli_hub_url(), resp.status);
        drv_cli_print_status(&resp);
    } else if (resp.status != 200 || !cJSON_IsObject(resp.json)) {
        drv_cli_print_status(&resp);
    } else {
        const char *kind = drv_json_str(resp.json, "kind"),
                   *state = drv_json_str(resp.json, "state");
        const char *expires = drv_json_str(resp.json, "expires");
        const cJSON *left = cJSON_GetObjectItemCaseSensitive(resp.json, "usesLeft");
        if (!kind || strcmp(kind, "bootstrap")) {
            fprintf(stderr,
                    "drover flash: refused: token %s is an API token, not a bootstrap token "
                    "(drover token create without --role makes one)\n",
                    id);
        } else if (!state || strcmp(state, "active")) {
            const char *why = !state                      ? "is not usable"
                              : !strcmp(state, "expired") ? "expired"
                              : !strcmp(state, "used")    ? "is used up (no uses left)"
                              : !strcmp(state, "revoked") ? "was revoked"
                                                          : state;
            fprintf(stderr,
                    "drover flash: refused: bootstrap token %s %s%s%s: a device could not enrol "
                    "with it (drover token create [--ttl 7d] [--uses N] makes a new one)\n",
                    id, why, expires && !strcmp(why, "expired") ? " at " : "",
                    expires && !strcmp(why, "expired") ? expires : "");
        } else {
            ok = true;
            char uses[48] = "unlimited uses";
            if (cJSON_IsNumber(left))
                drv_fmt_cut(uses, sizeof(uses), "%.0f uses left", left->valuedouble);
            fprintf(stderr, "drover flash: bootstrap token %s: active, expires %s, %s (hub %s)\n",
                    id, expires ? expires : "never", uses, drv_cli_hub_url());
            if (cJSON_IsNumber(left) && left->valuedouble < (double)n_images)
                fprintf(stderr,
                        "drover flash: warning: token %s has %.0f uses left for %zu images: "
                        "the devices past that will not enrol\n",
                        id, left->valuedouble, n_images);
        }
    }
    drv_cli_resp_free(&resp);
    return ok;
}

/* agent.yaml: what the device needs to enrol and connect, nothing else. */
static bool make_config(flash_opts_t *o)
{
    cJSON *c = cJSON_CreateObject();
    cJSON *hub = cJSON_CreateObject();
    bool ok = c && hub && cJSON_AddStringToObject(c, "nodeName", o->node_name) &&
              cJSON_AddItemToObject(c, "hub", hub) &&
              cJSON_AddStringToObject(hub, "url", o->hub_url) &&
              cJSON_AddStringToObject(hub, "caFingerprint", o->ca_fp) &&
              cJSON_AddStringToObject(hub, "broker", o->broker) &&
              cJSON_AddStringToObject(hub, "tokenFile", TOKEN_PATH);
    if (ok && o->labels && o->labels->child) {
        ok = cJSON_AddItemToObject(c, "labels", o->labels);
        if (ok)
            o->labels = NULL;
    }
    if (!ok && c && !cJSON_GetObjectItemCaseSensitive(c, "hub"))
        cJSON_Delete(hub);
    drv_buf_t b = DRV_BUF_INIT(64 * 1024);
    drv_error_t err = DRV_ERROR_INIT;
    ok = ok &&
         drv_buf_puts(&b, "# Written by drover flash: the agent's settings (README, "
                          "\"Configuration\").\n# The device fills nodeName's {...} at its "
                          "first start and keeps the name in\n# /var/lib/drover/"
                          "node-name.json; it makes its key there when it enrols.\n") == DRV_OK &&
         drv_doc_emit_yaml(c, &b, &err) == DRV_OK;
    /* What is written must read back as what was meant (the agent parses it as YAML). */
    drv_doc_list_t docs = {0};
    ok = ok && drv_doc_parse(b.data, b.len, NULL, &docs, &err) == DRV_OK && docs.count == 1 &&
         cJSON_Compare(docs.docs[0].root, c, true);
    drv_doc_list_free(&docs);
    cJSON_Delete(c);
    if (!ok) {
        fprintf(stderr, "drover flash: cannot write agent.yaml: %s\n", drv_error_msg(&err));
        drv_buf_free(&b);
        return false;
    }
    o->config = drv_buf_steal(&b, &o->config_len);
    return o->config != NULL;
}

static bool load_agent(const char *path, agent_bin_t *a, char *why, size_t whysz)
{
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_fmt(a->path, sizeof(a->path), "%s", path) != DRV_OK) {
        drv_fmt_cut(why, whysz, "path too long");
        return false;
    }
    if (drv_file_read_capped(path, AGENT_MAX, &a->data, &a->len, &err) != DRV_OK) {
        drv_fmt_cut(why, whysz, "%s", drv_error_msg(&err));
        return false;
    }
    drv_err_t r = drv_flash_elf_arch((const uint8_t *)a->data, a->len, &a->arch, &err);
    if (r == DRV_OK)
        return true;
    drv_fmt_cut(why, whysz, "%s is %s, not a drover-agent for a device", path, drv_error_msg(&err));
    free(a->data);
    a->data = NULL;
    return false;
}

/* The agent for arch; NULL with the reason in why. */
static const agent_bin_t *agent_for(flash_opts_t *o, drv_flash_arch_t arch, const char *from,
                                    char *why, size_t whysz)
{
    if (o->agent) {
        agent_bin_t *a = &o->agents[0];
        if (a->arch != arch) {
            drv_fmt_cut(why, whysz, "wrong architecture: the image is %s (%s) but --agent %s is %s",
                        drv_flash_arch_name(arch), from, a->path, drv_flash_arch_name(a->arch));
            return NULL;
        }
        return a;
    }
    agent_bin_t *a = &o->agents[arch];
    if (!a->data) {
        char path[1024], e[1200];
        if (drv_fmt(path, sizeof(path), "%s/drover-agent-%s", o->agent_dir,
                    drv_flash_arch_name(arch)) != DRV_OK) {
            drv_fmt_cut(why, whysz, "the image is %s (%s) but the --agent-dir path is too long",
                        drv_flash_arch_name(arch), from);
            return NULL;
        }
        if (!load_agent(path, a, e, sizeof(e))) {
            drv_fmt_cut(why, whysz,
                        "the image is %s (%s) but --agent-dir has no usable %.300s: %.400s",
                        drv_flash_arch_name(arch), from, path, e);
            return NULL;
        }
        if (a->arch != arch) {
            drv_fmt_cut(why, whysz, "wrong architecture: %s is %s", path,
                        drv_flash_arch_name(a->arch));
            free(a->data);
            a->data = NULL;
            return NULL;
        }
    }
    return a;
}

/* ---- one image ---- */

typedef struct want {
    const char *path, *label;
    drv_flash_ftype_t type;
    const char *data; /* REG: contents; LINK: target */
    size_t len;
    unsigned mode;
} want_t;

/* Whether the image holds what w asks for. A file's contents are compared only when type,
 * mode, owner and size already match. */
static drv_err_t holds(drv_flash_img_t *img, const want_t *w, const drv_flash_stat_t *st,
                       bool *same, drv_error_t *err)
{
    *same = false;
    if (st->type != w->type || st->uid != 0 || st->gid != 0)
        return DRV_OK;
    if (w->type == DRV_FLASH_FT_LINK) {
        if (st->link_known) {
            *same = !strcmp(st->link, w->data);
            return DRV_OK;
        }
    } else if (st->mode != w->mode || st->size != w->len) {
        return DRV_OK;
    }
    _cleanup_free_ char *have = NULL;
    size_t len = 0;
    drv_err_t r = drv_flash_ext_read(img, w->path, w->len + 1, &have, &len, err);
    if (r == DRV_ERR_TOOBIG) {
        drv_error_clear(err);
        return DRV_OK;
    }
    if (r != DRV_OK)
        return r;
    *same = len == w->len && !memcmp(have, w->data, len);
    return DRV_OK;
}

/* The image's userland architecture, from the first ELF file among elf_probes (symlinks
 * followed inside the image). from gets "/usr/bin/env: AArch64"-like text. */
static drv_err_t image_arch(drv_flash_img_t *img, drv_flash_arch_t *arch, char *from, size_t fromsz,
                            drv_error_t *err)
{
    char tried[512] = "";
    for (size_t i = 0; i < sizeof(elf_probes) / sizeof(elf_probes[0]); i++) {
        char path[512];
        drv_flash_stat_t st;
        if (drv_fmt(path, sizeof(path), "%s", elf_probes[i]) != DRV_OK)
            return drv_error_set(err, DRV_ERR_TOOBIG, 0, "%s: path too long", elf_probes[i]);
        for (int hop = 0; hop < 8; hop++) {
            drv_err_t r = drv_flash_ext_stat(img, path, &st, err);
            if (r != DRV_OK)
                return r;
            if (st.type != DRV_FLASH_FT_LINK)
                break;
            char target[512], joined[1100];
            /* A link whose target or joined path does not fit leads nowhere usable. */
            if (st.link_known) {
                if (drv_fmt(target, sizeof(target), "%s", st.link) != DRV_OK) {
                    st.type = DRV_FLASH_FT_NONE;
                    break;
                }
            } else {
                _cleanup_free_ char *t = NULL;
                if (drv_flash_ext_read(img, path, 400, &t, NULL, err) != DRV_OK) {
                    drv_error_clear(err);
                    st.type = DRV_FLASH_FT_NONE;
                    break;
                }
                if (drv_fmt(target, sizeof(target), "%s", t) != DRV_OK) {
                    st.type = DRV_FLASH_FT_NONE;
                    break;
                }
            }
            drv_err_t jr;
            if (target[0] == '/') {
                jr = drv_fmt(joined, sizeof(joined), "%s", target);
            } else {
                char dir[512];
                jr = drv_fmt(dir, sizeof(dir), "%s", path);
                if (jr == DRV_OK) {
                    *strrchr(dir, '/') = '\0';
                    jr = drv_fmt(joined, sizeof(joined), "%s/%s", dir, target);
                }
            }
            if (jr != DRV_OK || drv_path_clean(joined, path, sizeof(path)) != DRV_OK ||
                path[0] != '/') {
                st.type = DRV_FLASH_FT_NONE;
                break;
            }
        }
        if (st.type != DRV_FLASH_FT_REG) {
            size_t tl = strlen(tried);
            drv_fmt_cut(tried + tl, sizeof(tried) - tl, "%s%s", tl ? ", " : "", elf_probes[i]);
            continue;
        }
        _cleanup_free_ char *data = NULL;
        size_t len = 0;
        drv_err_t r = drv_flash_ext_read(img, path, ELF_PROBE_MAX, &data, &len, err);
        if (r == DRV_ERR_TOOBIG) {
            drv_error_clear(err);
            continue;
        }
        if (r != DRV_OK)
            return r;
        drv_error_t e = DRV_ERROR_INIT;
        r = drv_flash_elf_arch((const uint8_t *)data, len, arch, &e);
        if (r == DRV_ERR_UNSUPPORTED)
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "its userland (%s) is %s: drover-agent runs on arm64 and armhf",
                                 elf_probes[i], drv_error_msg(&e));
        if (r == DRV_OK) {
            drv_fmt_cut(from, fromsz, "%s is %s", elf_probes[i],
                        *arch == DRV_FLASH_ARCH_ARM64   ? "AArch64"
                        : *arch == DRV_FLASH_ARCH_ARMHF ? "ARM EABI5 hard-float"
                                                        : "x86-64");
            return DRV_OK;
        }
    }
    return drv_error_set(err, DRV_ERR_INVALID, 0,
                         "cannot tell its architecture: no ELF file at %s in the root partition",
                         tried);
}

/* Appends a debugfs command line. */
static drv_err_t cmd(drv_buf_t *b, const char *fmt, ...) DRV_PRINTF(2, 3);
static drv_err_t cmd(drv_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    drv_err_t r = drv_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return r == DRV_OK ? drv_buf_putc(b, '\n') : r;
}

/* Plans (and, unless dry, applies) the root partition's part. changed lists what differs. */
static result_t flash_root(drv_flash_img_t *img, const want_t *wants, size_t n_wants, bool dry,
                           drv_buf_t *changed, char *msg, size_t msgsz)
{
    drv_error_t err = DRV_ERROR_INIT;
    _cleanup_buf_ drv_buf_t cmds = DRV_BUF_INIT(64 * 1024);
    drv_err_t r = DRV_OK;
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]) && r == DRV_OK; i++) {
        drv_flash_stat_t st;
        r = drv_flash_ext_stat(img, dirs[i], &st, &err);
        if (r != DRV_OK)
            break;
        if (st.type == DRV_FLASH_FT_NONE) {
            r = cmd(&cmds, "mkdir \"%s\"", dirs[i]);
            if (r == DRV_OK)
                r = cmd(&cmds, "set_inode_field \"%s\" mode 040755", dirs[i]);
        } else if (st.type != DRV_FLASH_FT_DIR && st.type != DRV_FLASH_FT_LINK) {
            drv_fmt_cut(msg, msgsz, "refused: %s is in the way (not a directory)", dirs[i]);
            return R_REFUSED;
        }
    }
    for (size_t i = 0; i < n_wants && r == DRV_OK; i++) {
        const want_t *w = &wants[i];
        drv_flash_stat_t st;
        bool same = false;
        r = drv_flash_ext_stat(img, w->path, &st, &err);
        if (r == DRV_OK)
            r = holds(img, w, &st, &same, &err);
        if (r != DRV_OK || same)
            continue;
        if (st.type == DRV_FLASH_FT_DIR) {
            drv_fmt_cut(msg, msgsz, "refused: %s is a directory", w->path);
            return R_REFUSED;
        }
        (void)!drv_buf_printf(changed, "%s%s", changed->len ? ", " : "", w->label);
        if (st.type != DRV_FLASH_FT_NONE)
            r = cmd(&cmds, "rm \"%s\"", w->path);
        if (r == DRV_OK && w->type == DRV_FLASH_FT_LINK) {
            r = cmd(&cmds, "symlink \"%s\" \"%s\"", w->path, w->data);
        } else if (r == DRV_OK) {
            char src[400];
            r = drv_flash_scratch_file(img, w->data, w->len, src, sizeof(src), &err);
            if (r == DRV_OK)
                r = cmd(&cmds, "write \"%s\" \"%s\"", src, w->path);
            if (r == DRV_OK)
                r = cmd(&cmds, "set_inode_field \"%s\" mode 0%o", w->path, 0100000 | w->mode);
        }
        if (r == DRV_OK)
            r = cmd(&cmds, "set_inode_field \"%s\" uid 0", w->path);
        if (r == DRV_OK)
            r = cmd(&cmds, "set_inode_field \"%s\" gid 0", w->path);
    }
    if (r != DRV_OK) {
        drv_fmt_cut(msg, msgsz, "failed: %s", drv_error_msg(&err));
        return R_FAILED;
    }
    if (!changed->len || dry)
        return R_FLASHED;
    _cleanup_buf_ drv_buf_t out = DRV_BUF_INIT(256 * 1024);
    r = drv_flash_ext_apply(img, drv_buf_str(&cmds), &out, &err);
    /* debugfs's exit status says little: what was asked for must now be there. */
    for (size_t i = 0; i < n_wants && r == DRV_OK; i++) {
        drv_flash_stat_t st;
        bool same = false;
        r = drv_flash_ext_stat(img, wants[i].path, &st, &err);
        if (r == DRV_OK)
            r = holds(img, &wants[i], &st, &same, &err);
        if (r == DRV_OK && !same) {
            drv_fmt_cut(msg, msgsz, "failed: %s was not written (debugfs said: %.400s)",
                        wants[i].path, drv_buf_str(&out));
            for (char *p = msg; *p; p++)
                if (*p == '\n')
                    *p = ' ';
            return R_FAILED;
        }
    }
    if (r != DRV_OK) {
        drv_fmt_cut(msg, msgsz, "failed: %s", drv_error_msg(&err));
        return R_FAILED;
    }
    return R_FLASHED;
}

static result_t flash_one(flash_opts_t *o, const char *path, char *msg, size_t msgsz)
{
    drv_flash_img_t img;
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t r = drv_flash_img_open(&img, &o->tools, path, o->tmpdir, &err);
    result_t res = R_FAILED;
    _cleanup_buf_ drv_buf_t changed = DRV_BUF_INIT(1024);
    _cleanup_buf_ drv_buf_t cmdline = DRV_BUF_INIT(CMDLINE_MAX + 64);
    _cleanup_free_ char *old_cmdline = NULL;
    size_t old_len = 0;
    bool cmdline_changed = false;
    if (r != DRV_OK) {
        drv_fmt_cut(msg, msgsz, "%s: %s", r == DRV_ERR_INVALID ? "refused" : "failed",
                    drv_error_msg(&err));
        res = r == DRV_ERR_INVALID ? R_REFUSED : R_FAILED;
        goto out;
    }
    for (size_t i = 0; i < 2; i++) {
        const char *need = i ? "config.txt" : "cmdline.txt";
        if (!drv_flash_fat_name(&img, need)) {
            drv_fmt_cut(msg, msgsz, "refused: no FAT boot partition with %s", need);
            res = R_REFUSED;
            goto out;
        }
    }
    r = drv_flash_fat_read(&img, "cmdline.txt", CMDLINE_MAX, &old_cmdline, &old_len, &err);
    if (r == DRV_OK)
        r = drv_flash_cmdline_merge(old_cmdline, old_len, &cmdline, &cmdline_changed, &err);
    if (r != DRV_OK) {
        drv_fmt_cut(msg, msgsz, "%s: %s", r == DRV_ERR_INVALID ? "refused" : "failed",
                    drv_error_msg(&err));
        res = r == DRV_ERR_INVALID ? R_REFUSED : R_FAILED;
        goto out;
    }
    drv_flash_arch_t arch = DRV_FLASH_ARCH_NONE;
    char from[128], why[1400];
    r = image_arch(&img, &arch, from, sizeof(from), &err);
    if (r != DRV_OK) {
        drv_fmt_cut(msg, msgsz, "%s: %s", r == DRV_ERR_INVALID ? "refused" : "failed",
                    drv_error_msg(&err));
        res = r == DRV_ERR_INVALID ? R_REFUSED : R_FAILED;
        goto out;
    }
    const agent_bin_t *agent = agent_for(o, arch, from, why, sizeof(why));
    if (!agent) {
        drv_fmt_cut(msg, msgsz, "refused: %s", why);
        res = R_REFUSED;
        goto out;
    }
    for (size_t i = 0; !o->keep_identity && i < sizeof(identity_paths) / sizeof(identity_paths[0]);
         i++) {
        drv_flash_stat_t st;
        if (drv_flash_ext_stat(&img, identity_paths[i], &st, &err) != DRV_OK) {
            drv_fmt_cut(msg, msgsz, "failed: %s", drv_error_msg(&err));
            goto out;
        }
        if (st.type != DRV_FLASH_FT_NONE) {
            drv_fmt_cut(
                msg, msgsz,
                "refused: it holds a device's identity (%s): its clones would share it; "
                "remove /var/lib/drover from the image first (--keep-identity: reflash that "
                "device's own card)",
                identity_paths[i]);
            res = R_REFUSED;
            goto out;
        }
    }
    size_t tok_len = strlen(o->token);
    char tok_line[160];
    if (drv_fmt(tok_line, sizeof(tok_line), "%s\n", o->token) != DRV_OK) {
        drv_fmt_cut(msg, msgsz, "failed: the bootstrap token is too long");
        goto out;
    }
    const want_t wants[] = {
        {AGENT_PATH, "agent", DRV_FLASH_FT_REG, agent->data, agent->len, 0755},
        {CONFIG_PATH, "agent.yaml", DRV_FLASH_FT_REG, o->config, o->config_len, 0644},
        {TOKEN_PATH, "bootstrap.token", DRV_FLASH_FT_REG, tok_line, tok_len + 1, 0600},
        {STOP_POST_PATH, "agent-stop-post", DRV_FLASH_FT_REG, drv_flash_stop_post_text,
         sizeof(drv_flash_stop_post_text) - 1, 0755},
        {UNIT_PATH, "drover-agent.service", DRV_FLASH_FT_REG, drv_flash_unit_text,
         sizeof(drv_flash_unit_text) - 1, 0644},
        /* Last: a half-done image never starts an agent that is not all there. */
        {WANTS_PATH, "multi-user.target.wants", DRV_FLASH_FT_LINK, UNIT_PATH, strlen(UNIT_PATH),
         0777},
    };
    res =
        flash_root(&img, wants, sizeof(wants) / sizeof(wants[0]), o->dry_run, &changed, msg, msgsz);
    explicit_bzero(tok_line, sizeof(tok_line));
    if (res != R_FLASHED)
        goto out;
    if (cmdline_changed) {
        (void)!drv_buf_printf(&changed, "%scmdline.txt", changed.len ? ", " : "");
        if (!o->dry_run) {
            _cleanup_free_ char *back = NULL;
            size_t back_len = 0;
            r = drv_flash_fat_write(&img, "cmdline.txt", cmdline.data, cmdline.len, &err);
            if (r == DRV_OK)
                r = drv_flash_fat_read(&img, "cmdline.txt", CMDLINE_MAX, &back, &back_len, &err);
            if (r == DRV_OK && (back_len != cmdline.len || memcmp(back, cmdline.data, back_len)))
                r = drv_error_set(&err, DRV_ERR_IO, 0, "cmdline.txt reads back otherwise");
            if (r != DRV_OK) {
                drv_fmt_cut(msg, msgsz, "failed: %s", drv_error_msg(&err));
                res = R_FAILED;
                goto out;
            }
        }
    }
    if (!changed.len) {
        drv_fmt_cut(msg, msgsz, "unchanged (%s, node %s)", drv_flash_arch_name(arch), o->node_name);
        res = R_UNCHANGED;
    } else {
        drv_fmt_cut(msg, msgsz, "%s (%s, node %s: %s)", o->dry_run ? "would flash" : "flashed",
                    drv_flash_arch_name(arch), o->node_name, drv_buf_str(&changed));
    }
out:
    drv_flash_img_close(&img);
    return res;
}

/* ---- the command ---- */

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The images named by the arguments: files as given, a directory's *.img sorted. */
static char **collect(int argc, char **argv, size_t *n)
{
    char **list = calloc(MAX_IMAGES + 1, sizeof(char *));
    *n = 0;
    for (int i = 0; list && i < argc; i++) {
        struct stat sb;
        if (stat(argv[i], &sb) != 0 || !S_ISDIR(sb.st_mode)) {
            if (*n < MAX_IMAGES)
                list[(*n)++] = strdup(argv[i]);
            continue;
        }
        _cleanup_closedir_ DIR *d = opendir(argv[i]);
        struct dirent *e;
        size_t first = *n;
        while (d && (e = readdir(d)) != NULL && *n < MAX_IMAGES) {
            size_t l = strlen(e->d_name);
            if (l <= 4 || strcmp(e->d_name + l - 4, ".img") || e->d_name[0] == '.')
                continue;
            char *p = NULL;
            size_t al = strlen(argv[i]);
            bool slash = al && argv[i][al - 1] == '/';
            if (asprintf(&p, "%s%s%s", argv[i], slash ? "" : "/", e->d_name) >= 0)
                list[(*n)++] = p;
        }
        qsort(list + first, *n - first, sizeof(char *), name_cmp);
        if (*n == first)
            fprintf(stderr, "drover flash: %s: no *.img files in it\n", argv[i]);
    }
    return list;
}

static bool parse_label(flash_opts_t *o, const char *kv)
{
    const char *eq = strchr(kv, '=');
    char key[320], why[512];
    if (!eq || eq == kv || (size_t)(eq - kv) >= sizeof(key) ||
        drv_fmt(key, sizeof(key), "%.*s", (int)(eq - kv), kv) != DRV_OK) {
        fprintf(stderr, "drover flash: --label \"%.80s\": expected KEY=VALUE\n", kv);
        return false;
    }
    if (!drv_name_label_key(key, why, sizeof(why))) {
        fprintf(stderr, "drover flash: --label %s: not a valid label name: %s\n", key, why);
        return false;
    }
    if (!drv_name_label_value(eq + 1, why, sizeof(why))) {
        fprintf(stderr, "drover flash: --label %s: not a valid label value: %s\n", key, why);
        return false;
    }
    if (!o->labels)
        o->labels = cJSON_CreateObject();
    cJSON_DeleteItemFromObjectCaseSensitive(o->labels, key);
    return o->labels && cJSON_AddStringToObject(o->labels, key, eq + 1);
}

static void opts_free(flash_opts_t *o)
{
    for (size_t i = 0; i < sizeof(o->agents) / sizeof(o->agents[0]); i++)
        free(o->agents[i].data);
    cJSON_Delete(o->labels);
    free(o->config);
    explicit_bzero(o->token, sizeof(o->token));
}

static int flash_run(flash_opts_t *o, int argc, char **argv)
{
    const char *token_arg = NULL;
    bool ca_fp_long = false;
    static const struct option longopts[] = {{"agent", required_argument, NULL, 'a'},
                                             {"agent-dir", required_argument, NULL, 'A'},
                                             {"hub-url", required_argument, NULL, 'u'},
                                             {"broker", required_argument, NULL, 'b'},
                                             {"ca-fingerprint", required_argument, NULL, 'f'},
                                             {"token", required_argument, NULL, 't'},
                                             {"token-file", required_argument, NULL, 'T'},
                                             {"node-name", required_argument, NULL, 'N'},
                                             {"label", required_argument, NULL, 'l'},
                                             {"no-token-check", no_argument, NULL, 'C'},
                                             {"keep-identity", no_argument, NULL, 'K'},
                                             {"dry-run", no_argument, NULL, 'n'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "nh", longopts, NULL)) != -1) {
        switch (c) {
        case 'a':
            o->agent = optarg;
            break;
        case 'A':
            o->agent_dir = optarg;
            break;
        case 'u':
            o->hub_url = optarg;
            break;
        case 'b':
            o->broker = optarg;
            break;
        case 'f':
            /* One too long is no fingerprint: refused with the malformed ones below. */
            ca_fp_long = drv_fmt(o->ca_fp, sizeof(o->ca_fp), "%s", optarg) != DRV_OK;
            break;
        case 't':
            token_arg = optarg;
            break;
        case 'T':
            o->token_file = optarg;
            break;
        case 'N':
            o->node_name = optarg;
            break;
        case 'l':
            if (!parse_label(o, optarg))
                return 2;
            break;
        case 'C':
            o->no_token_check = true;
            break;
        case 'K':
            o->keep_identity = true;
            break;
        case 'n':
            o->dry_run = true;
            break;
        default:
            return usage();
        }
    }
    if (optind >= argc || !o->agent == !o->agent_dir || !o->hub_url || !o->broker ||
        !token_arg == !o->token_file)
        return usage();
    char why[512];
    if (!o->node_name)
        o->node_name = "pi-{serial}";
    if (!drv_name_node_pattern(o->node_name, why, sizeof(why))) {
        fprintf(stderr, "drover flash: --node-name \"%s\": %s\n", o->node_name, why);
        return 2;
    }
    if (!url_ok(o->hub_url, "https://", false)) {
        fprintf(stderr,
                "drover flash: --hub-url \"%.200s\": must be https://HOST[:PORT], as the "
                "devices reach the hub's API\n",
                o->hub_url);
        return 2;
    }
    if (!url_ok(o->broker, "ssl://", true) && !url_ok(o->broker, "mqtts://", true)) {
        fprintf(stderr,
                "drover flash: --broker \"%.200s\": must be ssl://HOST:PORT (or "
                "mqtts://), the hub's TLS broker as the devices reach it\n",
                o->broker);
        return 2;
    }
    if (ca_fp_long || (o->ca_fp[0] && !fingerprint_ok(o->ca_fp))) {
        fprintf(stderr, "drover flash: --ca-fingerprint: must be \"sha256:\" and 64 lower-case "
                        "hex digits, as drover-hub prints it\n");
        return 2;
    }
    if (!o->ca_fp[0] && !fingerprint_from_ca(o->ca_fp, sizeof(o->ca_fp))) {
        fprintf(stderr, "drover flash: --ca-fingerprint: required (what drover-hub prints at "
                        "start), or give the CLI the hub's CA (drover --ca FILE, drover login "
                        "--ca)\n");
        return 2;
    }
    if (!read_token(o, token_arg))
        return 2;
    /* Scratch files go under $TMPDIR when its name is plain (debugfs reads them by name). */
    const char *t = getenv("TMPDIR");
    if (drv_fmt(o->tmpdir, sizeof(o->tmpdir), "%s",
                t && *t == '/' && strlen(t) < 200 && !strpbrk(t, "\"\\ \t\n") ? t : "/tmp") !=
        DRV_OK) {
        fprintf(stderr, "drover flash: $TMPDIR too long\n");
        return 1;
    }
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_flash_tools_find(&o->tools, &err) != DRV_OK) {
        fprintf(stderr, "drover flash: %s\n", drv_error_msg(&err));
        return 1;
    }
    if (o->agent) {
        if (!load_agent(o->agent, &o->agents[0], why, sizeof(why))) {
            fprintf(stderr, "drover flash: --agent %s: %s\n", o->agent, why);
            return 1;
        }
    } else {
        struct stat sb;
        if (stat(o->agent_dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
            fprintf(stderr, "drover flash: --agent-dir %s: not a directory\n", o->agent_dir);
            return 1;
        }
    }
    if (!make_config(o))
        return 1;
    size_t n = 0;
    char **images = collect(argc - optind, argv + optind, &n);
    if (!images)
        return 1;
    int ret = n ? 0 : 1;
    /* Nothing is flashed with a token no device could use. */
    bool token_ok = n && check_token(o, n);
    if (!token_ok)
        ret = 1;
    for (size_t i = 0; token_ok && i < n; i++) {
        char msg[2048];
        double t0 = now_s();
        result_t res = flash_one(o, images[i], msg, sizeof(msg));
        if (res == R_REFUSED || res == R_FAILED)
            printf("%s: %s\n", images[i], msg);
        else
            printf("%s: %s in %.2f s\n", images[i], msg, now_s() - t0);
        fflush(stdout);
        if (res == R_REFUSED || res == R_FAILED)
            ret = 1;
    }
    for (size_t i = 0; i < n; i++)
        free(images[i]);
    free(images);
    return ret;
}

int drv_cli_flash(int argc, char **argv)
{
    flash_opts_t o;
    memset(&o, 0, sizeof(o));
    int rc = flash_run(&o, argc, argv);
    opts_free(&o);
    return rc;
}
