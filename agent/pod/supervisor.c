/* The pod supervisor (see supervisor.h). One event loop drives it; nothing here blocks for
 * long: image pulls run in a forked child, crun calls return once the container runs. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "drover/buf.h"
#include "drover/cleanup.h"
#include "drover/digest.h"
#include "drover/file.h"
#include "drover/fmt.h"
#include "drover/fsat.h"
#include "drover/json.h"
#include "drover/log.h"
#include "drover/proc.h"
#include "drover/pki.h"
#include "drover/protocol.h"
#include "image/pullsecret.h"
#include "image/mirror.h"
#include "image/registry.h"
#include "image/store.h"
#include "pod/host.h"
#include "pod/network.h"
#include "pod/pod.h"
#include "pod/secrets.h"
#include "pod/pvc.h"
#include "pod/supervisor.h"
#include "proc/proc.h"
#include "runtime/crun.h"

#define SV_TICK_BUDGET_MS 300 /* pod work per tick before the loop gets a turn */
#define MAX_PODS 256
#define BACKOFF_INITIAL_MS 10000
#define BACKOFF_MAX_MS POD_BACKOFF_MAX_MS
#define BACKOFF_RESET_MS 600000
#define DESIRED_MAX_BYTES (8u * 1024 * 1024)
#define MAX_EVENTS 64               /* pod events held for the link; older ones are dropped */
#define PRESTOP_EXTRA_GRACE_MS 2000 /* the kubelet's minimum grace after a preStop */
#define POSTSTART_TIMEOUT_MS ((int64_t)INT32_MAX) /* the kubelet gives none: about 24 days */
#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

struct drv_supervisor {
    const drv_agent_config_t *cfg;
    drv_crun_t crun;
    drv_store_t *store;
    pod_host_t host;
    cJSON *desired;      /* owned: {"pods", "configMaps", "secrets"} */
    cJSON *cm_by_ns;     /* owned: namespace -> name -> ConfigMap (references) */
    cJSON *secret_by_ns; /* owned: namespace -> name -> Secret (references) */
    pod_t *pods[MAX_PODS];
    size_t n_pods;
    bool dirty;
    long long host_ip_at;    /* when host.host_ip was last read (0: never) */
    bool cgroups;            /* pods get cgroup limits */
    drv_cgroup_verdict_t cg; /* !cg.ready: the node is NotReady, no pod starts */
    char cgroups_note[400];
    long long last_rotate;
    size_t next_pod; /* where the next tick starts: pods take turns when a tick runs out */
    bool more;       /* the last tick ran out of time before every pod had its turn */
    long long last_usage;
    pod_net_t net; /* the cluster network: WireGuard, Services, policies, DNS */
    cJSON *events; /* owned: Events for the hub, oldest first (drv_supervisor_take_event) */
};

static void rfc3339(int64_t ms, char *out, size_t outsz)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, outsz, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Records an Event about pod p for the hub (and the log); at most MAX_EVENTS wait. */
static void DRV_PRINTF(5, 6) pod_event(drv_supervisor_t *sv, const pod_t *p, const char *type,
                                       const char *reason, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    drv_vfmt_cut(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    drv_log_info("pod event", "pod=%s/%s type=%s reason=%s message=\"%s\"", p->ns, p->name, type,
                 reason, msg);
    drv_error_t err = DRV_ERROR_INIT;
    cJSON *ev =
        drv_proto_event_build(sv->cfg->node_name, "Pod", p->name, p->ns, type, reason, msg, &err);
    if (!ev)
        return;
    cJSON_AddStringToObject(drv_json_get(ev, "involvedObject"), "uid", p->uid);
    if (!sv->events)
        sv->events = cJSON_CreateArray();
    if (cJSON_GetArraySize(sv->events) >= MAX_EVENTS)
        cJSON_DeleteItemFromArray(sv->events, 0);
    if (sv->events)
        cJSON_AddItemToArray(sv->events, ev);
    else
        cJSON_Delete(ev);
}

cJSON *drv_supervisor_take_event(drv_supervisor_t *sv)
{
    if (!sv->events || !sv->events->child)
        return NULL;
    return cJSON_DetachItemFromArray(sv->events, 0);
}

/* ---- cgroups ---- */

/* Whether name is one of the blank-separated words of list. */
static bool has_word(const char *list, const char *name)
{
    size_t want = strlen(name);
    for (const char *s = list; s && *s;) {
        s += strspn(s, " \t\n");
        size_t n = strcspn(s, " \t\n");
        if (n == want && !strncmp(s, name, n))
            return true;
        s += n;
    }
    return false;
}

/* What /proc/cgroups says of a controller ("memory 0 85 0": hierarchy, cgroups, enabled):
 * 'a' absent (or no table), 'd' disabled on the kernel command line, '1' bound to a cgroup v1
 * hierarchy, 'u' enabled and unbound. */
static char proc_cgroups_state(const char *table, const char *name)
{
    size_t want = strlen(name);
    for (const char *line = table; line && *line;) {
        const char *next = strchr(line, '\n');
        unsigned long hier = 0, num = 0, enabled = 0;
        if (!strncmp(line, name, want) && (line[want] == ' ' || line[want] == '\t') &&
            sscanf(line + want, "%lu %lu %lu", &hier, &num, &enabled) == 3)
            return !enabled ? 'd' : hier ? '1' : 'u';
        line = next ? next + 1 : NULL;
    }
    return 'a';
}

void drv_supervisor_cgroup_decide(drv_cgroups_mode_t mode, bool allow_no_cgroups, bool v2,
                                  const char *controllers, const char *proc_cgroups,
                                  drv_cgroup_verdict_t *out)
{
    memset(out, 0, sizeof(*out));
    out->ready = true;
    if (mode == DRV_CGROUPS_DISABLED) {
        drv_fmt_cut(out->message, sizeof(out->message),
                    "disabled by configuration: no resource limits");
        return;
    }
    char why[300] = "";
    if (!v2) {
        drv_fmt_cut(
            why, sizeof(why),
            "/sys/fs/cgroup is not a cgroup v2 file system (v1 or hybrid layout): boot with "
            "systemd.unified_cgroup_hierarchy=1");
    } else if (!controllers) {
        drv_fmt_cut(why, sizeof(why), "cannot read /sys/fs/cgroup/cgroup.controllers");
    } else {
        static const char *const need[] = {"memory", "cpu", "pids"};
        for (size_t i = 0; i < 3 && !why[0]; i++) {
            if (has_word(controllers, need[i]))
                continue;
            char st = proc_cgroups_state(proc_cgroups, need[i]);
            if (!strcmp(need[i], "memory") && (st == 'd' || st == 'a'))
                /* Raspberry Pi kernels leave it off unless the command line turns it on. */
                drv_fmt_cut(why, sizeof(why),
                            "the memory cgroup controller is not enabled: add cgroup_enable=memory "
                            "cgroup_memory=1 to cmdline.txt");
            else if (st == 'd')
                drv_fmt_cut(why, sizeof(why),
                            "the %s cgroup controller is disabled on the kernel command line "
                            "(cgroup_disable=%s)",
                            need[i], need[i]);
            else if (st == '1')
                drv_fmt_cut(why, sizeof(why),
                            "the %s cgroup controller is bound to cgroup v1 (hybrid layout): boot "
                            "with systemd.unified_cgroup_hierarchy=1",
                            need[i]);
            else
                drv_fmt_cut(why, sizeof(why),
                            "the %s cgroup controller is not available in /sys/fs/cgroup "
                            "(cgroup.controllers)",
                            need[i]);
        }
    }
    if (!why[0]) {
        out->limits = true;
        return;
    }
    if (mode == DRV_CGROUPS_AUTO && allow_no_cgroups) {
        /* Today's behaviour where asked for: pods run, without limits, and the status says so. */
        drv_fmt_cut(out->message, sizeof(out->message),
                    "%.300s: running pods WITHOUT resource limits", why);
        return;
    }
    out->ready = false;
    drv_fmt_cut(out->reason, sizeof(out->reason), "CgroupControllersMissing");
    drv_fmt_cut(out->message, sizeof(out->message), "%s", why);
}

/* The host's facts for drv_supervisor_cgroup_decide. */
static void cgroups_probe(const drv_agent_config_t *cfg, drv_cgroup_verdict_t *out)
{
    struct statfs sfs;
    bool v2 =
        statfs("/sys/fs/cgroup", &sfs) == 0 && (unsigned long)sfs.f_type == CGROUP2_SUPER_MAGIC;
    _cleanup_free_ char *ctl = NULL, *table = NULL;
    if (v2 &&
        drv_file_read_capped("/sys/fs/cgroup/cgroup.controllers", 4096, &ctl, NULL, NULL) != DRV_OK)
        ctl = NULL;
    if (drv_file_read_capped("/proc/cgroups", 64 * 1024, &table, NULL, NULL) != DRV_OK)
        table = NULL;
    drv_supervisor_cgroup_decide(cfg->cgroups, cfg->allow_no_cgroups, v2, ctl, table, out);
}

/* ---- pods: lookup and creation ---- */

static pod_t *pod_find(drv_supervisor_t *sv, const char *uid)
{
    for (size_t i = 0; i < sv->n_pods; i++)
        if (!strcmp(sv->pods[i]->uid, uid))
            return sv->pods[i];
    return NULL;
}

static drv_err_t ctr_id(const pod_t *p, const char *name, char *out, size_t outsz)
{
    return drv_fmt(out, outsz, "%s-%s", p->uid, name);
}

static void pod_free(pod_host_t *host, pod_t *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_ctrs; i++) {
        if (p->ctrs[i].pidfd >= 0)
            close(p->ctrs[i].pidfd);
        pod_host_probes_free(host, &p->ctrs[i]);
    }
    if (p->pull_fd >= 0)
        close(p->pull_fd);
    free(p->ctrs);
    cJSON_Delete(p->obj);
    free(p);
}

static pod_t *pod_new(drv_supervisor_t *sv, const cJSON *obj)
{
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(obj, "spec");
    const char *uid = drv_json_str(meta, "uid"), *name = drv_json_str(meta, "name"),
               *ns = drv_json_str(meta, "namespace");
    if (!uid || !name || strlen(uid) >= POD_UID_MAX || strpbrk(uid, "/."))
        return NULL;
    pod_t *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->pull_fd = -1;
    if (drv_fmt(p->uid, sizeof(p->uid), "%s", uid) != DRV_OK ||
        drv_fmt(p->name, sizeof(p->name), "%s", name) != DRV_OK ||
        drv_fmt(p->ns, sizeof(p->ns), "%s", ns ? ns : "default") != DRV_OK ||
        drv_fmt(p->dir, sizeof(p->dir), "%s/pods/%s", sv->cfg->state_dir, uid) != DRV_OK) {
        free(p);
        return NULL; /* a name or its directory too long */
    }
    p->obj = cJSON_Duplicate(obj, 1);
    const cJSON *init = cJSON_GetObjectItemCaseSensitive(spec, "initContainers");
    const cJSON *app = cJSON_GetObjectItemCaseSensitive(spec, "containers");
    p->n_init = (size_t)cJSON_GetArraySize(init);
    p->n_ctrs = p->n_init + (size_t)cJSON_GetArraySize(app);
    p->ctrs = calloc(p->n_ctrs ? p->n_ctrs : 1, sizeof(*p->ctrs));
    if (!p->obj || !p->ctrs) {
        cJSON_Delete(p->obj);
        free(p->ctrs);
        free(p);
        return NULL;
    }
    /* The containers point into our own copy. */
    spec = cJSON_GetObjectItemCaseSensitive(p->obj, "spec");
    init = cJSON_GetObjectItemCaseSensitive(spec, "initContainers");
    app = cJSON_GetObjectItemCaseSensitive(spec, "containers");
    size_t i = 0;
    for (int pass = 0; pass < 2; pass++) {
        const cJSON *list = pass ? app : init;
        for (const cJSON *c = list ? list->child : NULL; c; c = c->next, i++) {
            ctr_t *ct = &p->ctrs[i];
            ct->init = pass == 0;
            ct->sidecar = ct->init && drv_json_str(c, "restartPolicy") &&
                          !strcmp(drv_json_str(c, "restartPolicy"), "Always");
            ct->spec = c;
            ct->pidfd = -1;
            if (drv_fmt(ct->name, sizeof(ct->name), "%s", drv_json_str(c, "name")) != DRV_OK ||
                ctr_id(p, ct->name, ct->id, sizeof(ct->id)) != DRV_OK) {
                cJSON_Delete(p->obj);
                free(p->ctrs);
                free(p);
                return NULL; /* a container name too long */
            }
            drv_fmt_cut(ct->reason, sizeof(ct->reason),
                        ct->init ? "PodInitializing" : "ContainerCreating");
            ct->started = !cJSON_GetObjectItemCaseSensitive(c, "startupProbe");
        }
    }
    p->start_time = (int64_t)drv_wall_ms();
    p->stage = STAGE_PULL;
    return p;
}

/* ---- images ---- */

/* The pull child: applies each container's imagePullPolicy, pulling what is needed. A
 * registry that cannot be reached is not an error when the image is in the store already,
 * so that a device without network brings its pods back. Writes one line of error text to
 * fd and exits 1 on failure. Runs in a forked child: it may block. */
static drv_err_t pod_secrets(drv_supervisor_t *sv, pod_t *p, cJSON **out, drv_error_t *err);

static int pull_child(drv_supervisor_t *sv, pod_t *p, int fd)
{
    const drv_agent_config_t *cfg = sv->cfg;
    const char *insecure[DRV_CONFIG_MAX_REGISTRIES + DRV_MIRROR_MAX * DRV_MIRROR_MAX_ENDPOINTS];
    drv_registry_cred_t creds[DRV_PULLSECRET_MAX_CREDS + DRV_CONFIG_MAX_REGISTRIES];
    size_t ni = 0, nc = 0;
    /* The pod's imagePullSecrets first: for their registries they win over the agent's own. */
    static drv_pull_creds_t pc; /* this child's only: too big for its stack */
    cJSON *opened = NULL;
    drv_error_t perr = DRV_ERROR_INIT;
    if (pod_secrets(sv, p, &opened, &perr) != DRV_OK ||
        drv_pullsecret_creds(p->obj, opened, &pc, &perr) != DRV_OK) {
        ssize_t w = write(fd, drv_error_msg(&perr), strlen(drv_error_msg(&perr)));
        (void)w;
        pod_secrets_release(opened);
        drv_pullsecret_free(&pc);
        return 1;
    }
    pod_secrets_release(opened);
    if (pc.missing[0])
        drv_log_warn("FailedToRetrieveImagePullSecret: unable to retrieve some image pull "
                     "secrets; attempting to pull the image may not succeed",
                     "pod=%s/%s secrets=\"%s\"", p->ns, p->name, pc.missing);
    for (size_t i = 0; i < pc.n; i++)
        creds[nc++] = pc.creds[i];
    for (size_t i = 0; i < cfg->n_registries; i++) {
        const drv_registry_conf_t *r = &cfg->registries[i];
        if (r->insecure)
            insecure[ni++] = r->host;
        if (r->username[0])
            creds[nc++] = (drv_registry_cred_t){r->host, r->username, r->password};
    }
    ni += drv_mirror_plain_hosts(cfg->mirrors, cfg->n_mirrors, insecure + ni,
                                 DRV_MIRROR_MAX * DRV_MIRROR_MAX_ENDPOINTS);
    drv_registry_opts_t opts = {
        .insecure = insecure, .n_insecure = ni, .creds = creds, .n_creds = nc};
    drv_platform_t plat, *platp = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    if (cfg->platform[0] && drv_platform_parse(cfg->platform, &plat, &err) == DRV_OK)
        platp = &plat;
    drv_registry_t *reg = NULL;
    drv_err_t r = drv_registry_new(&opts, &reg, &err);
    for (size_t i = 0; r == DRV_OK && i < p->n_ctrs; i++) {
        const char *image = drv_json_str(p->ctrs[i].spec, "image");
        const char *policy = drv_json_str(p->ctrs[i].spec, "imagePullPolicy");
        drv_image_t *img = NULL;
        drv_error_t lerr = DRV_ERROR_INIT;
        bool local = drv_store_resolve(sv->store, image, &img, &lerr) == DRV_OK;
        drv_image_free(img);
        if (policy && !strcmp(policy, "Never")) {
            if (!local)
                r = drv_error_set(
                    &err, DRV_ERR_NOTFOUND, 0,
                    "ErrImageNeverPull: image %s is not present and imagePullPolicy is Never",
                    image);
            continue;
        }
        if (local && policy && !strcmp(policy, "IfNotPresent"))
            continue;
        drv_error_clear(&err);
        r = drv_mirror_pull(reg, sv->store, cfg->mirrors, cfg->n_mirrors, image, platp, &err);
        if (r != DRV_OK && local &&
            (r == DRV_ERR_AGAIN || r == DRV_ERR_TIMEOUT || r == DRV_ERR_IO)) {
            /* Offline: run what we have. */
            r = DRV_OK;
        }
    }
    drv_registry_free(reg);
    if (r != DRV_OK) {
        char line[1024];
        int n = pc.missing[0] ? snprintf(line, sizeof(line), "%s (imagePullSecrets not found: %s)",
                                         drv_error_msg(&err), pc.missing)
                              : snprintf(line, sizeof(line), "%s", drv_error_msg(&err));
        if (n >= (int)sizeof(line))
            n = (int)sizeof(line) - 1;
        drv_pullsecret_free(&pc);
        ssize_t w = write(fd, line, n > 0 ? (size_t)n : 0);
        (void)w;
        return r == DRV_ERR_AGAIN ? 3 : 1;
    }
    drv_pullsecret_free(&pc);
    return 0;
}

/* True when every image is in the store and no imagePullPolicy asks for a pull: the pod
 * can go on without a pull child. */
static bool images_local(drv_supervisor_t *sv, pod_t *p)
{
    for (size_t i = 0; i < p->n_ctrs; i++) {
        const char *policy = drv_json_str(p->ctrs[i].spec, "imagePullPolicy");
        if (!policy || !strcmp(policy, "Always"))
            return false;
        drv_image_t *img = NULL;
        drv_error_t err = DRV_ERROR_INIT;
        if (drv_store_resolve(sv->store, drv_json_str(p->ctrs[i].spec, "image"), &img, &err) !=
            DRV_OK)
            return false;
        drv_image_free(img);
    }
    return true;
}

static void pull_start(drv_supervisor_t *sv, pod_t *p)
{
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0)
        return;
    pid_t pid = fork();
    if (pid < 0) {
        close(pfd[0]);
        close(pfd[1]);
        return;
    }
    if (pid == 0) {
        close(pfd[0]);
        _exit(pull_child(sv, p, pfd[1]));
    }
    close(pfd[1]);
    p->pull_pid = pid;
    p->pull_fd = pfd[0];
    drv_log_debug("pulling images", "pod=%s/%s child=%d", p->ns, p->name, (int)pid);
}

static void set_pod_waiting(pod_t *p, const char *reason, const char *message)
{
    drv_fmt_cut(p->reason, sizeof(p->reason), "%s", reason);
    drv_fmt_cut(p->message, sizeof(p->message), "%s", message);
}

static long long next_backoff(long long cur)
{
    if (cur <= 0)
        return BACKOFF_INITIAL_MS;
    return cur * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : cur * 2;
}

static void pull_done(drv_supervisor_t *sv, pod_t *p, int status)
{
    char msg[1024] = "";
    ssize_t n = read(p->pull_fd, msg, sizeof(msg) - 1);
    msg[n > 0 ? n : 0] = '\0';
    close(p->pull_fd);
    p->pull_fd = -1;
    p->pull_pid = 0;
    sv->dirty = true;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        p->stage = STAGE_SETUP;
        p->setup_backoff_ms = 0;
        p->next_setup = 0;
        set_pod_waiting(p, "", "");
        return;
    }
    if (!msg[0])
        drv_proc_describe(status, msg, sizeof(msg));
    p->setup_backoff_ms = next_backoff(p->setup_backoff_ms);
    p->next_setup = drv_now_ms() + p->setup_backoff_ms;
    set_pod_waiting(p, strstr(msg, "ErrImageNeverPull") ? "ErrImageNeverPull" : "ImagePullBackOff",
                    msg);
    drv_log_warn("image pull failed", "pod=%s/%s retry_in_s=%lld error=\"%s\"", p->ns, p->name,
                 p->setup_backoff_ms / 1000, msg);
}

/* ---- containers ---- */

/* The Secrets of the pod's namespace as the pod may use them, sealed ones opened in memory
 * (pod/secrets.h); release with pod_secrets_release right after use. */
static drv_err_t pod_secrets(drv_supervisor_t *sv, pod_t *p, cJSON **out, drv_error_t *err)
{
    char key[600];
    if (drv_fmt(key, sizeof(key), "%s/%s", sv->cfg->state_dir, POD_NODE_KEY) != DRV_OK)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "%s/%s: path too long", sv->cfg->state_dir,
                             POD_NODE_KEY);
    return pod_secrets_open(cJSON_GetObjectItemCaseSensitive(sv->secret_by_ns, p->ns), p->obj,
                            sv->cfg->node_name, key, out, err);
}

static drv_err_t log_path(const pod_t *p, const ctr_t *c, char *out, size_t outsz)
{
    return drv_fmt(out, outsz, "%s/logs/%s.log", p->dir, c->name);
}

/* ---- lifecycle hooks ---- */

static const cJSON *ctr_hook_spec(const ctr_t *c, hook_t kind)
{
    const cJSON *h = drv_json_get(drv_json_get(c->spec, "lifecycle"),
                                  kind == HOOK_POST_START ? "postStart" : "preStop");
    return cJSON_IsObject(h) ? h : NULL;
}

static const char *hook_name(hook_t kind)
{
    return kind == HOOK_POST_START ? "PostStart" : "PreStop";
}

/* Starts hook kind of container c: a sleep is a timer; exec and httpGet go to the prober. A
 * handler that cannot be started has failed already. */
static void hook_begin(drv_supervisor_t *sv, pod_t *p, ctr_t *c, hook_t kind, const cJSON *h,
                       int64_t timeout_ms, long long now)
{
    c->hook = kind;
    c->hook_result = HOOK_PENDING;
    c->hook_until = 0;
    c->hook_detail[0] = '\0';
    const cJSON *sl = drv_json_get(h, "sleep");
    if (sl) {
        int64_t secs = drv_json_int_at(h, "sleep.seconds", 0, INT32_MAX, 0);
        c->hook_until = now + (secs * 1000 < timeout_ms ? secs * 1000 : timeout_ms);
        if (c->hook_until == 0)
            c->hook_until = 1; /* 0 means "not a sleep" */
    } else {
        drv_error_t err = DRV_ERROR_INIT;
        if (pod_host_hook_start(&sv->host, p, c, h, timeout_ms, &err) != DRV_OK) {
            c->hook_result = HOOK_FAILED;
            drv_fmt_cut(c->hook_detail, sizeof(c->hook_detail), "%s", drv_error_msg(&err));
        }
    }
    drv_log_info("lifecycle hook started", "pod=%s/%s container=%s hook=%s handler=%s", p->ns,
                 p->name, c->name, hook_name(kind),
                 sl                        ? "sleep"
                 : drv_json_get(h, "exec") ? "exec"
                                           : "httpGet");
}

/* Whether c's hook has an outcome at now (a sleep ends by the clock). */
static bool hook_finished(ctr_t *c, long long now)
{
    if (c->hook != HOOK_NONE && c->hook_until && now >= c->hook_until &&
        c->hook_result == HOOK_PENDING)
        c->hook_result = HOOK_OK;
    return c->hook != HOOK_NONE && c->hook_result != HOOK_PENDING;
}

/* Ends c's hook (its outcome taken or dropped); true when it failed, after the event. */
static bool hook_end(drv_supervisor_t *sv, pod_t *p, ctr_t *c)
{
    bool failed = c->hook_result == HOOK_FAILED;
    hook_t kind = c->hook;
    pod_host_hook_cancel(&sv->host, c);
    c->hook = HOOK_NONE;
    c->hook_until = 0;
    if (failed) {
        const cJSON *h = ctr_hook_spec(c, kind);
        const char *how = drv_json_get(h, "exec") ? "Exec" : "HTTP";
        pod_event(sv, p, "Warning",
                  kind == HOOK_POST_START ? "FailedPostStartHook" : "FailedPreStopHook",
                  "%s lifecycle hook for Container \"%s\" in Pod \"%s_%s(%s)\" failed - error: %s",
                  how, c->name, p->name, p->ns, p->uid, c->hook_detail);
    } else {
        drv_log_info("lifecycle hook done", "pod=%s/%s container=%s hook=%s", p->ns, p->name,
                     c->name, hook_name(kind));
    }
    return failed;
}

/* A container in its postStart hook is not Running yet, as in Kubernetes. */
static bool ctr_running(const ctr_t *c)
{
    return c->state == CS_RUNNING && c->hook != HOOK_POST_START;
}

static drv_err_t ctr_start(drv_supervisor_t *sv, pod_t *p, ctr_t *c, drv_error_t *err)
{
    char bundle[700], rootdir[700], logp[700];
    drv_err_t r = pod_host_bundle_dir(&sv->host, p, c, bundle, sizeof(bundle), err);
    if (r == DRV_OK)
        r = pod_host_rootfs_dir(p, c, rootdir, sizeof(rootdir), err);
    if (r != DRV_OK)
        return r;
    if (log_path(p, c, logp, sizeof(logp)) != DRV_OK)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "%s/logs/%s.log: path too long", p->dir,
                             c->name);
    /* Made again whenever a container starts: no fsync of theirs on the start path (the bundle
     * is on /run; a container's rootfs starts from the image again; logs are appended without
     * fsync). What adoption after a reboot reads (desired.json, state.json, volumes) is
     * written crash-safely elsewhere. */
    r = drv_file_mkdir_p_unsynced(bundle, 0700, err);
    if (r == DRV_OK)
        r = drv_file_mkdir_p_unsynced(rootdir, 0700, err);
    if (r == DRV_OK) {
        char logdir[640];
        r = drv_fmt(logdir, sizeof(logdir), "%s/logs", p->dir) == DRV_OK
                ? drv_file_mkdir_p_unsynced(logdir, 0700, err)
                : drv_error_set(err, DRV_ERR_TOOBIG, 0, "%s/logs: path too long", p->dir);
    }
    if (r != DRV_OK)
        return r;
    /* A stale container of the same id (from a crash) would make crun refuse; crun keeps
     * its state in <root>/<id>. */
    char stale[600];
    if (drv_fmt(stale, sizeof(stale), "%s/%s", sv->crun.root, c->id) == DRV_OK &&
        access(stale, F_OK) == 0) {
        drv_error_t ignored = DRV_ERROR_INIT;
        (void)!drv_crun_delete(&sv->crun, c->id, true, &ignored);
    }
    cJSON *secrets = NULL;
    r = pod_secrets(sv, p, &secrets, err);
    if (r == DRV_OK)
        r = pod_host_container_prepare(&sv->host, sv->store, p, c, bundle, sv->cgroups,
                                       cJSON_GetObjectItemCaseSensitive(sv->cm_by_ns, p->ns),
                                       secrets, err);
    pod_secrets_release(secrets);
    if (r != DRV_OK)
        return r;
    c->rootfs_mounted = true;
    _cleanup_close_ int logfd = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (logfd < 0)
        return drv_error_set(err, DRV_ERR_IO, errno, "open %s", logp);
    pid_t pid = 0;
    r = drv_crun_run(&sv->crun, c->id, bundle, logfd, &pid, err);
    if (r != DRV_OK)
        return r;
    c->pid = pid;
    if (c->last.valid)
        c->restarts++; /* counted when it runs again, as Kubernetes does */
    c->state = CS_RUNNING;
    c->stop_sent = false;
    c->started_at = (int64_t)drv_wall_ms();
    c->started_mono = drv_now_ms();
    c->ready = false;
    c->restart_requested = false;
    c->restart_kill_at = 0;
    c->started = !cJSON_GetObjectItemCaseSensitive(c->spec, "startupProbe");
    c->reason[0] = c->message[0] = '\0';
    const cJSON *post = ctr_hook_spec(c, HOOK_POST_START);
    if (post) {
        /* Not Running, not probed, and the next container not started until it returns. */
        c->started = false;
        hook_begin(sv, p, c, HOOK_POST_START, post, POSTSTART_TIMEOUT_MS, c->started_mono);
    } else {
        pod_host_probes_reset(&sv->host, c, c->started_mono);
    }
    drv_log_info("container started", "pod=%s/%s container=%s pid=%d restarts=%u", p->ns, p->name,
                 c->name, (int)pid, c->restarts);
    return DRV_OK;
}

/* Releases what a stopped container held: crun's record, the rootfs mount, its writable
 * layer (a restarted container starts from the image again, as in Kubernetes). */
static void ctr_cleanup(drv_supervisor_t *sv, pod_t *p, ctr_t *c)
{
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_crun_delete(&sv->crun, c->id, true, &err) != DRV_OK)
        drv_log_warn("crun delete failed", "container=%s error=\"%s\"", c->id, drv_error_msg(&err));
    if (c->rootfs_mounted) {
        drv_error_clear(&err);
        if (pod_host_container_release(&sv->host, p, c, &err) != DRV_OK)
            drv_log_warn("cannot release rootfs", "container=%s error=\"%s\"", c->id,
                         drv_error_msg(&err));
        c->rootfs_mounted = false;
    }
    if (c->pidfd >= 0) {
        close(c->pidfd);
        c->pidfd = -1;
    }
    pod_host_probes_cancel(&sv->host, c);
    /* A hook does not outlive its container (the kubelet aborts it too). */
    pod_host_hook_cancel(&sv->host, c);
    c->hook = HOOK_NONE;
    c->hook_until = 0;
}

static void ctr_kill(drv_supervisor_t *sv, const char *id, int sig)
{
    drv_error_t err = DRV_ERROR_INIT;
    /* Without cgroups crun cannot find every process; the container's init is enough: its
     * PID namespace dies with it. */
    if (drv_crun_kill(&sv->crun, id, sig, sv->cgroups, &err) != DRV_OK)
        drv_log_warn("cannot signal container", "container=%s signal=%d error=\"%s\"", id, sig,
                     drv_error_msg(&err));
}

static bool should_restart(const pod_t *p, const ctr_t *c)
{
    if (p->deadline_exceeded)
        return false;
    if (c->sidecar) /* whatever the pod's policy, until the app containers are done */
        return p->stage != STAGE_DONE;
    const char *policy = drv_json_str(drv_json_get(p->obj, "spec"), "restartPolicy");
    if (!policy || !strcmp(policy, "Always"))
        return true;
    if (!strcmp(policy, "OnFailure"))
        return c->last.exit_code != 0;
    return false;
}

static void ctr_exited(drv_supervisor_t *sv, pod_t *p, ctr_t *c, int exit_code, int sig,
                       const char *reason)
{
    long long now = drv_now_ms();
    c->last.valid = true;
    c->last.exit_code = exit_code;
    c->last.signal = sig;
    c->last.started_at = c->started_at;
    c->last.finished_at = (int64_t)drv_wall_ms();
    drv_fmt_cut(c->last.reason, sizeof(c->last.reason), "%s",
                reason           ? reason
                : exit_code == 0 ? "Completed"
                                 : "Error");
    /* Back-off resets after ten minutes of running. */
    if (c->started_mono && now - c->started_mono >= BACKOFF_RESET_MS)
        c->backoff_ms = 0;
    c->state = CS_TERMINATED;
    c->pid = 0;
    c->ready = false;
    ctr_cleanup(sv, p, c);
    drv_log_info("container exited", "pod=%s/%s container=%s exit_code=%d reason=%s", p->ns,
                 p->name, c->name, exit_code, c->last.reason);
    if (!p->terminating && should_restart(p, c)) {
        c->backoff_ms = c->backoff_ms ? next_backoff(c->backoff_ms) : 0;
        /* The first restart is immediate, like kubelet's; then 10 s doubling to 5 min. */
        c->next_start = now + c->backoff_ms;
        if (!c->backoff_ms)
            c->backoff_ms = BACKOFF_INITIAL_MS / 2;
        c->state = CS_WAITING;
        drv_fmt_cut(c->reason, sizeof(c->reason), "%s",
                    c->next_start > now ? "CrashLoopBackOff" : "Restarting");
        drv_fmt_cut(c->message, sizeof(c->message), "back-off %llds restarting failed container",
                    c->backoff_ms / 1000);
    }
    pod_state_save(p);
    sv->dirty = true;
}

/* ---- the per-pod state machine ---- */

static void pod_fail_setup(drv_supervisor_t *sv, pod_t *p, const char *reason,
                           const drv_error_t *err)
{
    p->setup_backoff_ms = next_backoff(p->setup_backoff_ms);
    p->next_setup = drv_now_ms() + p->setup_backoff_ms;
    set_pod_waiting(p, reason, drv_error_msg(err));
    sv->dirty = true;
    drv_log_warn("pod setup failed", "pod=%s/%s reason=%s retry_in_s=%lld error=\"%s\"", p->ns,
                 p->name, reason, p->setup_backoff_ms / 1000, drv_error_msg(err));
}

static void try_start(drv_supervisor_t *sv, pod_t *p, ctr_t *c, long long now)
{
    if (c->state != CS_WAITING || now < c->next_start)
        return;
    drv_error_t err = DRV_ERROR_INIT;
    if (ctr_start(sv, p, c, &err) != DRV_OK) {
        ctr_cleanup(sv, p, c);
        c->backoff_ms = next_backoff(c->backoff_ms);
        c->next_start = now + c->backoff_ms;
        drv_fmt_cut(c->reason, sizeof(c->reason), "CreateContainerError");
        drv_fmt_cut(c->message, sizeof(c->message), "%s", drv_error_msg(&err));
        drv_log_warn("container start failed",
                     "pod=%s/%s container=%s retry_in_s=%lld error=\"%s\"", p->ns, p->name, c->name,
                     c->backoff_ms / 1000, drv_error_msg(&err));
    }
    pod_state_save(p);
    sv->dirty = true;
}

/* Stops a running container so that it restarts (a failed liveness or startup probe, a failed
 * postStart) as the kubelet kills one: its preStop, then SIGTERM, within grace_s seconds (the
 * probe's terminationGracePeriodSeconds, else the pod's); SIGKILL at the end. */
static void ctr_restart_kill(drv_supervisor_t *sv, pod_t *p, ctr_t *c, int64_t grace_s,
                             long long now)
{
    if (grace_s < 0)
        grace_s = drv_json_int_at(p->obj, "spec.terminationGracePeriodSeconds", 0, INT32_MAX, 30);
    c->restart_kill_at = now + grace_s * 1000;
    if (c->restart_kill_at == 0)
        c->restart_kill_at = 1; /* 0 means none */
    const cJSON *pre = ctr_hook_spec(c, HOOK_PRE_STOP);
    if (pre && grace_s > 0)
        hook_begin(sv, p, c, HOOK_PRE_STOP, pre, grace_s * 1000, now);
    else
        ctr_kill(sv, c->id, grace_s > 0 ? SIGTERM : SIGKILL);
}

/* A container being stopped to restart: SIGTERM once its preStop is over, SIGKILL at the end
 * of the grace period. */
static void ctr_restart_kill_step(drv_supervisor_t *sv, pod_t *p, ctr_t *c, long long now)
{
    if (c->state != CS_RUNNING || !c->restart_kill_at)
        return;
    if (c->hook == HOOK_PRE_STOP && hook_finished(c, now)) {
        (void)hook_end(sv, p, c);
        ctr_kill(sv, c->id, SIGTERM);
    }
    if (now >= c->restart_kill_at) {
        if (c->hook == HOOK_PRE_STOP) {
            c->hook_result = HOOK_FAILED;
            drv_fmt_cut(c->hook_detail, sizeof(c->hook_detail),
                        "did not finish within the grace period");
            (void)hook_end(sv, p, c);
        }
        ctr_kill(sv, c->id, SIGKILL);
        c->restart_kill_at = now + 5000; /* again if it still runs then */
    }
}

/* One running-or-restartable container's turn: its postStart outcome, a restart a probe asked
 * for, and its (re)start when due (unless hold: an earlier container is in its postStart). */
static void ctr_step(drv_supervisor_t *sv, pod_t *p, ctr_t *c, long long now, bool hold)
{
    if (c->state == CS_RUNNING && c->hook == HOOK_POST_START && hook_finished(c, now)) {
        if (hook_end(sv, p, c)) {
            /* The kubelet kills a container whose postStart failed (preStop, SIGTERM, the
             * pod's grace period); it restarts per restartPolicy. */
            ctr_restart_kill(sv, p, c, -1, now);
        } else {
            pod_host_probes_reset(&sv->host, c, now);
        }
        sv->dirty = true;
    }
    if (c->state == CS_RUNNING && c->restart_requested) {
        drv_log_info("restarting container", "pod=%s/%s container=%s reason=\"probe failed\"",
                     p->ns, p->name, c->name);
        c->restart_requested = false;
        if (!c->restart_kill_at) {
            pod_host_probes_cancel(&sv->host, c);
            ctr_restart_kill(sv, p, c, c->restart_grace_s, now);
        }
    }
    ctr_restart_kill_step(sv, p, c, now);
    if (!hold)
        try_start(sv, p, c, now);
}

/* The sidecars already started (those before init_next) keep running: restarted, probed. */
static void sidecars_step(drv_supervisor_t *sv, pod_t *p, long long now)
{
    for (size_t i = 0; i < p->init_next && i < p->n_init; i++)
        if (p->ctrs[i].sidecar)
            ctr_step(sv, p, &p->ctrs[i], now, false);
}

static void stop_step(drv_supervisor_t *sv, pod_t *p, long long now);

/* spec.activeDeadlineSeconds, counted from the pod's start time as the kubelet does: once
 * past, the pod fails (DeadlineExceeded) and its containers are stopped with its grace
 * period. Returns true when the pod is past it. */
static bool deadline_step(drv_supervisor_t *sv, pod_t *p)
{
    if (p->deadline_exceeded)
        return true;
    int64_t secs = drv_json_int_at(p->obj, "spec.activeDeadlineSeconds", 0, INT32_MAX, 0);
    if (secs <= 0 || p->stage == STAGE_DONE || (int64_t)drv_wall_ms() - p->start_time < secs * 1000)
        return false;
    if (p->pull_pid) {
        kill(p->pull_pid, SIGKILL); /* reaped through child_exited; then the pod fails */
        return true;
    }
    p->deadline_exceeded = true;
    p->stage = STAGE_DONE;
    sv->dirty = true;
    pod_event(sv, p, "Normal", "DeadlineExceeded",
              "Pod was active on the node longer than the specified deadline");
    return true;
}

/* The first claim p mounts that a stopping pod of its namespace still has mounted (its name
 * into who), or NULL: a claim's directory is on this node only, so this keeps one claim from
 * being written by the old and the new pod at once (a StatefulSet's pod made again under its
 * name while the old one is in its grace period), as the kubelet's wait for the old pod does. */
static const char *claim_held(drv_supervisor_t *sv, const pod_t *p, char *who, size_t whosz)
{
    const cJSON *v;
    cJSON_ArrayForEach(v, drv_json_get(drv_json_get(p->obj, "spec"), "volumes"))
    {
        const char *claim = drv_json_str(drv_json_get(v, "persistentVolumeClaim"), "claimName");
        for (size_t i = 0; claim && i < sv->n_pods; i++) {
            const pod_t *q = sv->pods[i];
            if (q == p || !q->terminating || !q->volumes_ready || strcmp(q->ns, p->ns))
                continue;
            const cJSON *w;
            cJSON_ArrayForEach(w, drv_json_get(drv_json_get(q->obj, "spec"), "volumes"))
            {
                const char *qc =
                    drv_json_str(drv_json_get(w, "persistentVolumeClaim"), "claimName");
                if (qc && !strcmp(qc, claim)) {
                    drv_fmt_cut(who, whosz, "%s", q->name);
                    return claim;
                }
            }
        }
    }
    return NULL;
}

static void pod_step(drv_supervisor_t *sv, pod_t *p, long long now)
{
    if (deadline_step(sv, p) && p->stage != STAGE_DONE)
        return;
    if (!sv->cg.ready && (p->stage == STAGE_PULL || p->stage == STAGE_SETUP)) {
        /* No pod starts on a node that cannot bound it (drv_supervisor_cgroup_decide). */
        if (strcmp(p->reason, sv->cg.reason)) {
            set_pod_waiting(p, sv->cg.reason, sv->cg.message);
            sv->dirty = true;
        }
        return;
    }
    const char *nreason = NULL, *nmessage = NULL;
    if (p->stage == STAGE_SETUP && !p->sandbox_ready &&
        !pod_net_ready(&sv->net, &nreason, &nmessage)) {
        /* No pod gets a network its policies cannot guard. */
        if (strcmp(p->reason, nreason)) {
            set_pod_waiting(p, nreason, nmessage);
            sv->dirty = true;
        }
        return;
    }
    if (p->stage == STAGE_PULL) {
        if (p->pull_pid || now < p->next_setup)
            return;
        if (!images_local(sv, p)) {
            pull_start(sv, p);
            return;
        }
        p->stage = STAGE_SETUP;
    }
    if (p->stage == STAGE_SETUP) {
        if (now < p->next_setup)
            return;
        drv_error_t err = DRV_ERROR_INIT;
        char who[256];
        const char *held = p->volumes_ready ? NULL : claim_held(sv, p, who, sizeof(who));
        if (held) {
            char msg[sizeof(p->message)];
            drv_fmt_cut(msg, sizeof(msg),
                        "persistentvolumeclaim \"%s\" is still mounted by the stopping pod %s",
                        held, who);
            if (strcmp(p->message, msg)) {
                set_pod_waiting(p, "ContainerCreating", msg);
                sv->dirty = true;
            }
            return;
        }
        if (!p->volumes_ready) {
            cJSON *secrets = NULL;
            drv_err_t r = pod_secrets(sv, p, &secrets, &err);
            if (r == DRV_OK)
                r = pod_host_volumes_prepare(&sv->host, p,
                                             cJSON_GetObjectItemCaseSensitive(sv->cm_by_ns, p->ns),
                                             secrets, &err);
            pod_secrets_release(secrets);
            if (r != DRV_OK) {
                pod_fail_setup(sv, p, "CreateContainerConfigError", &err);
                return;
            }
            p->volumes_ready = true;
        }
        if (!p->sandbox_ready) {
            if (pod_host_sandbox_create(&sv->host, p, &err) != DRV_OK) {
                pod_fail_setup(sv, p, "SandboxCreateError", &err);
                return;
            }
            p->sandbox_ready = true;
            drv_log_info("pod sandbox ready", "pod=%s/%s ip=%s", p->ns, p->name,
                         p->pod_ip[0] ? p->pod_ip : "host");
            /* Its address into the table before any of its containers runs (until then the
             * table drops every address of the pod subnet it does not know). */
            if (p->pod_ip[0])
                pod_net_sync(&sv->net, sv->pods, sv->n_pods, now, true);
        }
        set_pod_waiting(p, "", "");
        p->stage = p->init_next < p->n_init ? STAGE_INIT : STAGE_RUN;
        sv->dirty = true;
    }
    if (p->stage == STAGE_INIT || p->stage == STAGE_RUN)
        sidecars_step(sv, p, now);
    if (p->stage == STAGE_INIT && p->ctrs[p->init_next].sidecar) {
        /* A sidecar: the next init container waits until it runs and has started (startup
         * probe passed, postStart returned), not until it exits. */
        ctr_t *c = &p->ctrs[p->init_next];
        ctr_step(sv, p, c, now, false);
        if (!ctr_running(c) || !c->started)
            return;
        p->init_next++;
        pod_state_save(p);
        sv->dirty = true;
        if (p->init_next < p->n_init)
            return;
        p->stage = STAGE_RUN;
    }
    if (p->stage == STAGE_INIT) {
        ctr_t *c = &p->ctrs[p->init_next];
        if (c->state == CS_TERMINATED && c->last.exit_code == 0) {
            p->init_next++;
            pod_state_save(p);
            sv->dirty = true;
            if (p->init_next >= p->n_init)
                p->stage = STAGE_RUN;
            else
                return;
        } else if (c->state == CS_TERMINATED) {
            p->stage = STAGE_DONE; /* an init container failed for good: the pod failed */
            sv->dirty = true;
            return;
        } else {
            try_start(sv, p, c, now);
            return;
        }
    }
    if (p->stage == STAGE_RUN) {
        bool all_done = true, in_post_start = false;
        for (size_t i = p->n_init; i < p->n_ctrs; i++) {
            ctr_t *c = &p->ctrs[i];
            /* The kubelet starts a pod's containers one by one, each after the previous
             * one's postStart returned. */
            ctr_step(sv, p, c, now, in_post_start);
            if (c->state == CS_RUNNING && c->hook == HOOK_POST_START)
                in_post_start = true;
            if (c->state != CS_TERMINATED)
                all_done = false;
        }
        if (all_done && p->n_ctrs > p->n_init) {
            p->stage = STAGE_DONE;
            sv->dirty = true;
        }
    }
    /* A pod done (its app containers, or an init container, failed for good) stops its
     * sidecars, last one first, within the grace period. */
    if (p->stage == STAGE_DONE)
        for (size_t i = 0; i < p->n_ctrs; i++)
            if ((p->ctrs[i].sidecar || p->deadline_exceeded) && p->ctrs[i].state == CS_RUNNING) {
                stop_step(sv, p, now);
                break;
            }
}

/* Stops p's running containers within one grace period: the app containers at once, then the
 * sidecars one by one, last one first (as Kubernetes since 1.29); each gets its preStop, then
 * SIGTERM; at the deadline SIGKILL (2 s more once when a preStop outran it). */
static void stop_step(drv_supervisor_t *sv, pod_t *p, long long now)
{
    if (!p->kill_sent) {
        long long grace =
            drv_json_int_at(p->obj, "spec.terminationGracePeriodSeconds", 0, INT64_MAX / 1000, 30) *
            1000;
        p->kill_deadline = now + grace;
        p->kill_sent = true;
        drv_log_info("stopping pod", "pod=%s/%s grace_s=%lld", p->ns, p->name, grace / 1000);
    }
    bool app_running = false;
    for (size_t i = p->n_init; i < p->n_ctrs; i++)
        app_running |= p->ctrs[i].state == CS_RUNNING;
    for (size_t i = 0; i < p->n_ctrs; i++) {
        ctr_t *c = &p->ctrs[i];
        if (c->state != CS_RUNNING || c->stop_sent)
            continue;
        if (c->sidecar) {
            /* A sidecar waits for the app containers and for the sidecars after it. */
            bool later = false;
            for (size_t j = i + 1; j < p->n_init; j++)
                later |= p->ctrs[j].state == CS_RUNNING;
            if (app_running || later)
                continue;
        }
        c->stop_sent = true;
        if (c->hook == HOOK_PRE_STOP)
            continue; /* already stopping to restart: SIGTERM when its preStop ends */
        if (c->hook == HOOK_POST_START)
            (void)hook_end(sv, p, c); /* dropped: the container is going */
        /* preStop first, inside the grace period (its time counts); SIGTERM after. */
        const cJSON *pre = ctr_hook_spec(c, HOOK_PRE_STOP);
        long long left = p->kill_deadline - now;
        if (pre && left > 0)
            hook_begin(sv, p, c, HOOK_PRE_STOP, pre, left, now);
        else
            ctr_kill(sv, c->id, SIGTERM);
    }
    for (size_t i = 0; i < p->n_ctrs; i++) {
        ctr_t *c = &p->ctrs[i];
        if (c->state == CS_RUNNING && c->hook == HOOK_PRE_STOP && hook_finished(c, now)) {
            (void)hook_end(sv, p, c);
            ctr_kill(sv, c->id, SIGTERM);
        }
    }
    if (now >= p->kill_deadline) {
        bool cut = false;
        for (size_t i = 0; i < p->n_ctrs; i++) {
            ctr_t *c = &p->ctrs[i];
            if (c->state == CS_RUNNING && c->hook == HOOK_PRE_STOP) {
                /* The preStop outran the grace period: SIGTERM now, and the 2 s the
                 * kubelet grants before SIGKILL. */
                c->hook_result = HOOK_FAILED;
                drv_fmt_cut(c->hook_detail, sizeof(c->hook_detail),
                            "did not finish within the grace period");
                (void)hook_end(sv, p, c);
                ctr_kill(sv, c->id, SIGTERM);
                cut = true;
            }
        }
        if (cut && !p->grace_extended) {
            p->grace_extended = true;
            p->kill_deadline = now + PRESTOP_EXTRA_GRACE_MS;
            return;
        }
        for (size_t i = 0; i < p->n_ctrs; i++)
            if (p->ctrs[i].state == CS_RUNNING)
                ctr_kill(sv, p->ctrs[i].id, SIGKILL);
        p->kill_deadline = now + 5000;
    }
}

/* Stopping: SIGTERM to every running container, SIGKILL after the grace period; when all
 * have stopped, the sandbox, volumes and files go. Returns true when the pod is gone. */
static bool pod_terminate_step(drv_supervisor_t *sv, pod_t *p, long long now)
{
    bool running = false;
    for (size_t i = 0; i < p->n_ctrs; i++)
        running |= p->ctrs[i].state == CS_RUNNING;
    if (p->pull_pid) {
        kill(p->pull_pid, SIGKILL);
        return false; /* reaped through child_exited */
    }
    if (running) {
        stop_step(sv, p, now);
        return false;
    }
    drv_error_t err = DRV_ERROR_INIT;
    for (size_t i = 0; i < p->n_ctrs; i++)
        ctr_cleanup(sv, p, &p->ctrs[i]);
    if (pod_host_sandbox_destroy(&sv->host, p, &err) != DRV_OK)
        drv_log_warn("cannot remove pod sandbox", "pod=%s/%s error=\"%s\"", p->ns, p->name,
                     drv_error_msg(&err));
    drv_error_clear(&err);
    if (pod_host_volumes_teardown(&sv->host, p, &err) != DRV_OK)
        drv_log_warn("cannot remove pod volumes", "pod=%s/%s error=\"%s\"", p->ns, p->name,
                     drv_error_msg(&err));
    drv_error_clear(&err);
    if (drv_fsat_remove_tree_path(p->dir, NULL, &err) != DRV_OK)
        drv_log_warn("cannot remove pod directory", "pod=%s/%s error=\"%s\"", p->ns, p->name,
                     drv_error_msg(&err));
    pod_host_bundles_remove(&sv->host, p);
    drv_log_info("pod removed", "pod=%s/%s", p->ns, p->name);
    return true;
}

/* ---- desired state ---- */

static cJSON *index_by_ns(const cJSON *list)
{
    cJSON *idx = cJSON_CreateObject();
    for (const cJSON *o = list ? list->child : NULL; idx && o; o = o->next) {
        const cJSON *meta = cJSON_GetObjectItemCaseSensitive(o, "metadata");
        const char *ns = drv_json_str(meta, "namespace"), *name = drv_json_str(meta, "name");
        if (!name)
            continue;
        ns = ns ? ns : "default";
        cJSON *m = cJSON_GetObjectItemCaseSensitive(idx, ns);
        if (!m)
            m = cJSON_AddObjectToObject(idx, ns);
        if (m && !cJSON_GetObjectItemCaseSensitive(m, name))
            cJSON_AddItemToObject(m, name, cJSON_CreateObjectReference(o->child));
    }
    return idx;
}

/* Removes the directories of Released Delete volumes (pod/pvc.h) that no pod here, desired,
 * running or stopping, names, and reports them. */
static void pvc_reclaim(drv_supervisor_t *sv)
{
    if (!cJSON_GetArraySize(sv->host.pvs) && !cJSON_GetArraySize(sv->host.pvc_removed))
        return;
    _cleanup_cjson_ cJSON *users = cJSON_CreateArray();
    _cleanup_cjson_ cJSON *was = cJSON_Duplicate(sv->host.pvc_removed, true);
    if (!users || !was)
        return;
    const cJSON *o;
    cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(sv->desired, "pods"))
    {
        cJSON_AddItemToArray(users, cJSON_CreateObjectReference(o->child));
    }
    for (size_t i = 0; i < sv->n_pods; i++)
        cJSON_AddItemToArray(users, cJSON_CreateObjectReference(sv->pods[i]->obj->child));
    pod_pvc_reclaim(sv->host.pvs, users, sv->host.storage_dir, sv->host.pvc_removed);
    if (!cJSON_Compare(was, sv->host.pvc_removed, true))
        sv->dirty = true;
}

/* Takes the labels and annotations of the pod's new desired object o into p->obj (the rest
 * of a running pod does not change in place). */
static void pod_metadata_refresh(pod_t *p, const cJSON *o)
{
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(p->obj, "metadata");
    const cJSON *nmeta = drv_json_get(o, "metadata");
    static const char *const keys[] = {"labels", "annotations"};
    for (int i = 0; i < 2 && cJSON_IsObject(meta); i++) {
        const cJSON *nv = drv_json_get(nmeta, keys[i]);
        cJSON *copy = nv ? cJSON_Duplicate(nv, 1) : NULL;
        if (nv && !copy)
            continue; /* out of memory: keep the old ones */
        cJSON_DeleteItemFromObjectCaseSensitive(meta, keys[i]);
        if (copy)
            cJSON_AddItemToObject(meta, keys[i], copy);
    }
}

static void apply_desired(drv_supervisor_t *sv)
{
    /* PersistentVolumes (pod/pvc.h): mounted from here; Released ones removed and reported. */
    sv->host.pvs = cJSON_GetObjectItemCaseSensitive(sv->desired, "persistentVolumes");
    pvc_reclaim(sv);
    if (pod_net_set(&sv->net, cJSON_GetObjectItemCaseSensitive(sv->desired, "network"),
                    &sv->host.cni))
        sv->dirty = true;
    cJSON_Delete(sv->cm_by_ns);
    cJSON_Delete(sv->secret_by_ns);
    sv->cm_by_ns = index_by_ns(cJSON_GetObjectItemCaseSensitive(sv->desired, "configMaps"));
    sv->secret_by_ns = index_by_ns(cJSON_GetObjectItemCaseSensitive(sv->desired, "secrets"));
    for (size_t i = 0; i < sv->n_pods; i++)
        sv->pods[i]->seen = false;
    const cJSON *pods = cJSON_GetObjectItemCaseSensitive(sv->desired, "pods");
    for (const cJSON *o = pods ? pods->child : NULL; o; o = o->next) {
        const char *uid = drv_json_str(drv_json_get(o, "metadata"), "uid");
        if (!uid)
            continue;
        pod_t *p = pod_find(sv, uid);
        if (p) {
            p->seen = true;
            /* Labels and annotations may have changed: downwardAPI volumes follow them. */
            pod_metadata_refresh(p, o);
            /* ConfigMaps and Secrets may have changed: their volumes follow (env vars taken
             * from them change only when a container restarts, as in Kubernetes). */
            drv_error_t e = DRV_ERROR_INIT;
            if (p->volumes_ready && !p->terminating) {
                cJSON *secrets = NULL;
                drv_err_t r = pod_secrets(sv, p, &secrets, &e);
                if (r == DRV_OK)
                    r = pod_host_volumes_update(
                        &sv->host, p, cJSON_GetObjectItemCaseSensitive(sv->cm_by_ns, p->ns),
                        secrets, &e);
                pod_secrets_release(secrets);
                if (r != DRV_OK)
                    drv_log_warn("cannot refresh the pod's configMap/secret volumes",
                                 "pod=%s/%s error=\"%s\"", p->ns, p->name, drv_error_msg(&e));
            }
            continue;
        }
        if (sv->n_pods == MAX_PODS) {
            drv_log_error("too many pods", "max=%d", MAX_PODS);
            break;
        }
        p = pod_new(sv, o);
        if (!p) {
            drv_log_error("cannot track pod", "uid=%s", uid);
            continue;
        }
        p->seen = true;
        pod_state_load(p);
        sv->pods[sv->n_pods++] = p;
        drv_log_info("pod added", "pod=%s/%s uid=%s", p->ns, p->name, p->uid);
    }
    for (size_t i = 0; i < sv->n_pods; i++) {
        pod_t *p = sv->pods[i];
        if (!p->seen && !p->terminating) {
            p->terminating = true;
            drv_log_info("pod no longer desired", "pod=%s/%s", p->ns, p->name);
        }
    }
    sv->dirty = true;
    /* A new desired state arrives from the link after this loop pass's tick: the next tick
     * runs at once (new pods, the network's table), not after the wait's up to 1 s. */
    sv->more = true;
}

/* Writes text to path unless it holds that already (SD cards wear). */
static drv_err_t write_if_changed(const char *path, const char *text, size_t max, drv_error_t *err)
{
    char *old = NULL;
    size_t oldlen = 0;
    bool same = drv_file_read_capped(path, max, &old, &oldlen, NULL) == DRV_OK &&
                oldlen == strlen(text) && !memcmp(old, text, oldlen);
    if (old)
        drv_pki_wipe_free(old, oldlen);
    return same ? DRV_OK : drv_file_write_atomic(path, text, strlen(text), 0600, err);
}

static drv_err_t secrets_file(const drv_supervisor_t *sv, char *out, size_t outsz)
{
    return drv_fmt(out, outsz, "%s/%s/%s", sv->cfg->run_dir, POD_SECRETS_DIR, POD_SECRETS_FILE);
}

/* Persists desired crash-safely: everything but clear Secrets in <state_dir>/desired.json;
 * the clear Secrets (static manifests, a hub that does not seal) only on tmpfs, in
 * <run_dir>/secrets/desired-secrets.json (0600), so that no Secret value reaches the disk.
 * Sealed Secrets stay in desired.json, sealed. */
static drv_err_t save_desired(drv_supervisor_t *sv, const cJSON *desired, drv_error_t *err)
{
    cJSON *disk = cJSON_CreateObject(), *clear = cJSON_CreateObject();
    cJSON *clear_list = cJSON_AddArrayToObject(clear, "secrets");
    bool ok = disk && clear_list;
    for (cJSON *item = desired ? desired->child : NULL; ok && item; item = item->next) {
        if (!item->string)
            continue;
        if (strcmp(item->string, "secrets") || !cJSON_IsArray(item)) {
            ok = cJSON_AddItemReferenceToObject(disk, item->string, item);
            continue;
        }
        cJSON *sealed = cJSON_AddArrayToObject(disk, "secrets");
        ok = sealed != NULL;
        for (cJSON *sec = item->child; ok && sec; sec = sec->next)
            ok =
                cJSON_AddItemReferenceToArray(pod_secret_is_sealed(sec) ? sealed : clear_list, sec);
    }
    char *text = ok ? cJSON_PrintUnformatted(disk) : NULL;
    char *ctext = ok && cJSON_GetArraySize(clear_list) > 0 ? cJSON_PrintUnformatted(clear) : NULL;
    bool has_clear = cJSON_GetArraySize(clear_list) > 0;
    cJSON_Delete(disk);
    cJSON_Delete(clear);
    drv_err_t r = DRV_OK;
    char path[600];
    if (!text || (has_clear && !ctext))
        r = drv_error_set(err, DRV_ERR_NOMEM, 0, "desired state");
    /* The clear Secrets first: desired.json never points to Secrets that are nowhere. */
    char dir[600];
    if (r == DRV_OK &&
        (secrets_file(sv, path, sizeof(path)) != DRV_OK ||
         drv_fmt(dir, sizeof(dir), "%s/%s", sv->cfg->run_dir, POD_SECRETS_DIR) != DRV_OK))
        r = drv_error_set(err, DRV_ERR_TOOBIG, 0, "runDir %s: path too long", sv->cfg->run_dir);
    if (r == DRV_OK && has_clear) {
        r = drv_file_mkdir_p(dir, 0700, err);
        if (r == DRV_OK)
            r = write_if_changed(path, ctext, DESIRED_MAX_BYTES, err);
    } else if (r == DRV_OK && unlink(path) != 0 && errno != ENOENT) {
        r = drv_error_set(err, DRV_ERR_IO, errno, "remove %s", path);
    }
    if (ctext)
        drv_pki_wipe_free(ctext, strlen(ctext));
    if (r == DRV_OK && drv_fmt(path, sizeof(path), "%s/desired.json", sv->cfg->state_dir) != DRV_OK)
        r = drv_error_set(err, DRV_ERR_TOOBIG, 0, "stateDir %s: path too long", sv->cfg->state_dir);
    if (r == DRV_OK)
        r = write_if_changed(path, text, DESIRED_MAX_BYTES, err);
    free(text);
    return r;
}

drv_err_t drv_supervisor_set_desired(drv_supervisor_t *sv, cJSON *desired, drv_error_t *err)
{
    drv_err_t r = save_desired(sv, desired, err);
    if (r != DRV_OK) {
        pod_secret_wipe_delete(desired);
        return drv_error_wrap(err, "save desired state");
    }
    pod_secret_wipe_delete(sv->desired);
    sv->desired = desired;
    apply_desired(sv);
    return DRV_OK;
}

/* Merges the clear Secrets kept on tmpfs back into d (a restart of the agent; after a reboot
 * the file is gone and the static manifests bring their Secrets back at the first rescan).
 * Returns true when d held clear Secrets itself (a desired.json written by an older agent),
 * which must then be saved again without them. */
static bool restore_clear_secrets(drv_supervisor_t *sv, cJSON *d)
{
    cJSON *list = cJSON_GetObjectItemCaseSensitive(d, "secrets");
    if (!cJSON_IsArray(list)) {
        cJSON_DeleteItemFromObjectCaseSensitive(d, "secrets");
        list = cJSON_AddArrayToObject(d, "secrets");
    }
    if (!list)
        return false;
    bool legacy = false;
    for (const cJSON *s = list->child; s; s = s->next)
        legacy |= !pod_secret_is_sealed(s);
    char path[600];
    if (secrets_file(sv, path, sizeof(path)) != DRV_OK)
        return legacy;
    char *text = NULL;
    size_t len = 0;
    if (drv_file_read_capped(path, DESIRED_MAX_BYTES, &text, &len, NULL) != DRV_OK)
        return legacy;
    cJSON *o = cJSON_ParseWithLength(text, len);
    drv_pki_wipe_free(text, len);
    cJSON *clear = cJSON_GetObjectItemCaseSensitive(o, "secrets");
    if (!cJSON_IsArray(clear)) {
        drv_log_warn("corrupt clear Secrets file ignored", "path=%s", path);
        pod_secret_wipe_delete(o);
        return legacy;
    }
    while (clear->child) {
        cJSON *s = cJSON_DetachItemViaPointer(clear, clear->child);
        bool dup = false;
        for (const cJSON *t = list->child; t && !dup; t = t->next)
            dup = drv_json_same_object(s, t);
        if (dup)
            pod_secret_wipe_delete(s);
        else
            cJSON_AddItemToArray(list, s);
    }
    pod_secret_wipe_delete(o);
    return legacy;
}

/* Adopts a container crun still runs (the agent was restarted): same pid, watched through a
 * pidfd since it is no longer our child. */
static void adopt(drv_supervisor_t *sv, pod_t *p, ctr_t *c)
{
    char status[32] = "";
    pid_t pid = 0;
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t r = drv_crun_state(&sv->crun, c->id, status, sizeof(status), &pid, &err);
    if (r == DRV_OK && !strcmp(status, "running") && pid > 1) {
        int fd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (fd >= 0) {
            c->pid = pid;
            c->pidfd = fd;
            c->state = CS_RUNNING;
            c->rootfs_mounted = true;
            c->started_mono = drv_now_ms();
            pod_host_probes_reset(&sv->host, c, c->started_mono);
            c->started = true; /* it was serving before the agent restarted */
            drv_log_info("container adopted", "pod=%s/%s container=%s pid=%d", p->ns, p->name,
                         c->name, (int)pid);
            return;
        }
    }
    /* It stopped while we were away (or the device lost power): its exit code is gone. */
    c->state = CS_RUNNING;
    c->rootfs_mounted = true;
    ctr_exited(sv, p, c, -1, 0, "Unknown");
}

drv_err_t drv_supervisor_restore(drv_supervisor_t *sv, drv_error_t *err)
{
    char path[512];
    if (drv_fmt(path, sizeof(path), "%s/desired.json", sv->cfg->state_dir) != DRV_OK)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "stateDir %s: path too long",
                             sv->cfg->state_dir);
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    drv_err_t r = drv_file_read_capped(path, DESIRED_MAX_BYTES, &text, &len, err);
    if (r == DRV_ERR_NOTFOUND) {
        drv_error_clear(err);
        return DRV_OK;
    }
    if (r != DRV_OK)
        return r;
    cJSON *d = cJSON_ParseWithLength(text, len);
    if (!cJSON_IsObject(d)) {
        cJSON_Delete(d);
        drv_log_error("corrupt desired state moved aside", "path=%s", path);
        return drv_file_quarantine(path, err);
    }
    if (restore_clear_secrets(sv, d)) {
        drv_error_t e = DRV_ERROR_INIT;
        if (save_desired(sv, d, &e) != DRV_OK)
            drv_log_warn("cannot move clear Secrets out of the state directory",
                         "path=%s error=\"%s\"", path, drv_error_msg(&e));
        else
            drv_log_info("clear Secrets moved out of the state directory to tmpfs", "path=%s",
                         path);
    }
    pod_secret_wipe_delete(sv->desired);
    sv->desired = d;
    apply_desired(sv);
    for (size_t i = 0; i < sv->n_pods; i++) {
        pod_t *p = sv->pods[i];
        bool any = false;
        for (size_t j = 0; j < p->n_ctrs; j++) {
            if (p->ctrs[j].state == CS_RUNNING) {
                adopt(sv, p, &p->ctrs[j]);
                any = true;
            }
        }
        if (any || p->init_next > 0) {
            /* Images are in the store; the sandbox is found again or made anew. */
            drv_error_t e = DRV_ERROR_INIT;
            p->stage = STAGE_SETUP;
            if (pod_host_sandbox_load(&sv->host, p, &e) == DRV_OK)
                p->sandbox_ready = true;
            p->volumes_ready = false;
        }
    }
    return DRV_OK;
}

/* ---- loop hooks ---- */

static ctr_t *ctr_by_pid(drv_supervisor_t *sv, pid_t pid, pod_t **pod)
{
    for (size_t i = 0; i < sv->n_pods; i++)
        for (size_t j = 0; j < sv->pods[i]->n_ctrs; j++)
            if (sv->pods[i]->ctrs[j].state == CS_RUNNING && sv->pods[i]->ctrs[j].pid == pid) {
                *pod = sv->pods[i];
                return &sv->pods[i]->ctrs[j];
            }
    return NULL;
}

void drv_supervisor_child_exited(drv_supervisor_t *sv, pid_t pid, int status)
{
    if (pod_host_probe_child_exited(&sv->host, pid, status))
        return;
    for (size_t i = 0; i < sv->n_pods; i++) {
        if (sv->pods[i]->pull_pid == pid) {
            pull_done(sv, sv->pods[i], status);
            return;
        }
    }
    pod_t *p = NULL;
    ctr_t *c = ctr_by_pid(sv, pid, &p);
    if (!c)
        return; /* a grandchild reparented to us: nothing to track */
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    /* Like kubelet: a container whose cgroup saw an OOM kill is OOMKilled, whatever its code
     * (crun's exit code is its init's, which may be a shell that outlived the victim). */
    bool oom = code != 0 && sv->cgroups && pod_host_container_oom_killed(p, c);
    ctr_exited(sv, p, c, code, sig, oom ? "OOMKilled" : NULL);
}

/* Image garbage collection: when the disk holding the store is fuller than
 * imageGCHighPercent, images no desired pod uses go (oldest first) until it is down to
 * imageGCLowPercent. */
static void image_gc(drv_supervisor_t *sv)
{
    char dir[600];
    if (drv_fmt(dir, sizeof(dir), "%s/images", sv->cfg->state_dir) != DRV_OK) {
        drv_log_warn("image GC skipped: path too long", "state_dir=%s", sv->cfg->state_dir);
        return;
    }
    struct statvfs vfs;
    if (statvfs(dir, &vfs) != 0 || vfs.f_blocks == 0)
        return;
    uint64_t total = (uint64_t)vfs.f_blocks * vfs.f_frsize,
             avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
    uint64_t used_pct = (total - avail) * 100 / total;
    if (used_pct < sv->cfg->gc_high_percent)
        return;
    const char *keep[MAX_PODS * 4];
    size_t nk = 0;
    for (size_t i = 0; i < sv->n_pods && nk < MAX_PODS * 4; i++)
        for (size_t j = 0; j < sv->pods[i]->n_ctrs && nk < MAX_PODS * 4; j++)
            keep[nk++] = drv_json_str(sv->pods[i]->ctrs[j].spec, "image");
    uint64_t target_free = total / 100 * (100 - sv->cfg->gc_low_percent);
    drv_gc_stats_t st = {0};
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_store_gc(sv->store, keep, nk, target_free, &st, &err) != DRV_OK)
        drv_log_warn("image garbage collection failed", "error=\"%s\"", drv_error_msg(&err));
    else
        drv_log_info("image garbage collection",
                     "disk_used_percent=%llu images_removed=%zu bytes_removed=%llu",
                     (unsigned long long)used_pct, st.images_removed,
                     (unsigned long long)st.bytes_removed);
}

static void rotate_logs(drv_supervisor_t *sv)
{
    for (size_t i = 0; i < sv->n_pods; i++) {
        pod_t *p = sv->pods[i];
        for (size_t j = 0; j < p->n_ctrs; j++) {
            char path[700];
            if (log_path(p, &p->ctrs[j], path, sizeof(path)) == DRV_OK)
                pod_host_rotate_log(path, sv->cfg->log_max_bytes, sv->cfg->log_max_files);
        }
    }
}

void drv_supervisor_tick(drv_supervisor_t *sv, long long now)
{
    /* Adopted containers are watched through pidfds. */
    for (size_t i = 0; i < sv->n_pods; i++) {
        pod_t *p = sv->pods[i];
        for (size_t j = 0; j < p->n_ctrs; j++) {
            ctr_t *c = &p->ctrs[j];
            if (c->pidfd >= 0 && c->state == CS_RUNNING) {
                struct pollfd pf = {c->pidfd, POLLIN, 0};
                if (poll(&pf, 1, 0) == 1)
                    ctr_exited(sv, p, c, -1, 0, "Unknown");
            }
        }
    }
    pod_host_probes_tick(&sv->host, sv, now);
    pod_net_sync(&sv->net, sv->pods, sv->n_pods, now, false);
    if (sv->net.status_dirty) {
        sv->net.status_dirty = false;
        sv->dirty = true;
    }
    /* Pod steps run crun, CNI and mounts synchronously (seconds each on a slow device): a tick
     * stops after SV_TICK_BUDGET_MS so that the daemon's loop gets back to the hub link
     * (heartbeats) and signals between them, and the next tick goes on where this one stopped.
     * Ten pods applied at once must not silence a device past the hub's node grace. */
    long long t0 = drv_now_ms();
    size_t visited = 0, n_start = sv->n_pods;
    size_t i = sv->n_pods ? sv->next_pod % sv->n_pods : 0;
    sv->more = false;
    while (visited < n_start && sv->n_pods > 0) {
        if (i >= sv->n_pods)
            i = 0;
        pod_t *p = sv->pods[i];
        visited++;
        if (p->terminating) {
            if (pod_terminate_step(sv, p, now)) {
                pod_free(&sv->host, p);
                sv->pods[i] = sv->pods[--sv->n_pods]; /* the last one takes its place */
                sv->dirty = true;
                continue;
            }
        } else {
            pod_step(sv, p, now);
        }
        i++;
        if (visited < n_start && drv_now_ms() - t0 >= SV_TICK_BUDGET_MS) {
            sv->more = true;
            break;
        }
    }
    sv->next_pod = i;
    if (!sv->host_ip_at || now - sv->host_ip_at >= 10000) {
        /* The node's address may change (DHCP): read it again every 10 s. */
        sv->host_ip_at = now;
        char ip[sizeof(sv->host.host_ip)];
        pod_host_internal_ip(sv->cfg->bridge, sv->cfg->wg_interface, ip, sizeof(ip));
        if (strcmp(ip, sv->host.host_ip)) {
            memcpy(sv->host.host_ip, ip, sizeof(ip));
            sv->dirty = true;
        }
    }
    if (now - sv->last_rotate >= 10000) {
        sv->last_rotate = now;
        rotate_logs(sv);
        image_gc(sv);
    }
    /* A volume whose last pod was still stopping at the last desired state. */
    if (now - sv->host.pvc_last >= 2000) {
        sv->host.pvc_last = now;
        pvc_reclaim(sv);
    }
}

int drv_supervisor_next_wakeup(drv_supervisor_t *sv, long long now)
{
    if (sv->more)
        return 0; /* pods still waiting for their turn */
    long long next = now + 1000;
    for (size_t i = 0; i < sv->n_pods; i++) {
        pod_t *p = sv->pods[i];
        if (p->stage == STAGE_PULL && !p->pull_pid && p->next_setup < next)
            next = p->next_setup;
        for (size_t j = 0; j < p->n_ctrs; j++) {
            const ctr_t *c = &p->ctrs[j];
            if (c->state == CS_WAITING && c->next_start < next)
                next = c->next_start;
            if (c->hook != HOOK_NONE && c->hook_until && c->hook_until < next)
                next = c->hook_until;
            if (c->state == CS_RUNNING && c->restart_kill_at && c->restart_kill_at < next)
                next = c->restart_kill_at;
        }
        if (p->terminating && p->kill_sent && p->kill_deadline < next)
            next = p->kill_deadline;
    }
    long long d = next - now;
    int dns = pod_net_next_wakeup(&sv->net, now);
    if (dns >= 0 && dns < d)
        d = dns;
    return d < 0 ? 0 : d > 1000 ? 1000 : (int)d;
}

int drv_supervisor_wait(drv_supervisor_t *sv, int *fds, short *revents, unsigned nfds,
                        int timeout_ms)
{
    /* The caller's fds, then the DNS server's. */
    int all[8 + POD_NET_MAX_FDS];
    short rev[8 + POD_NET_MAX_FDS];
    if (nfds > 8)
        nfds = 8;
    for (unsigned i = 0; i < nfds; i++)
        all[i] = fds[i];
    size_t nd = pod_net_fds(&sv->net, all + nfds, POD_NET_MAX_FDS);
    int n = pod_host_wait(&sv->host, all, rev, nfds + (unsigned)nd, timeout_ms);
    for (unsigned i = 0; i < nfds; i++)
        revents[i] = n > 0 ? rev[i] : 0;
    if (n > 0) {
        long long now = drv_now_ms();
        for (size_t i = 0; i < nd; i++)
            if (rev[nfds + i] & POLLIN)
                pod_net_handle(&sv->net, all[nfds + i], now);
    }
    return n;
}

bool drv_supervisor_status_dirty(drv_supervisor_t *sv)
{
    bool d = sv->dirty;
    sv->dirty = false;
    return d;
}

/* Called by the probe side of pod/host.c when a probe changes a container's readiness or asks for a
 * restart. */
void drv_supervisor_mark_dirty(drv_supervisor_t *sv)
{
    sv->dirty = true;
}

/* ---- status ---- */

static void add_state(cJSON *parent, const char *key, const ctr_t *c, bool last)
{
    cJSON *s = cJSON_AddObjectToObject(parent, key);
    char t[40];
    if (last) {
        if (!c->last.valid)
            return;
        cJSON *term = cJSON_AddObjectToObject(s, "terminated");
        cJSON_AddNumberToObject(term, "exitCode", c->last.exit_code);
        if (c->last.signal)
            cJSON_AddNumberToObject(term, "signal", c->last.signal);
        cJSON_AddStringToObject(term, "reason", c->last.reason);
        rfc3339(c->last.started_at, t, sizeof(t));
        cJSON_AddStringToObject(term, "startedAt", t);
        rfc3339(c->last.finished_at, t, sizeof(t));
        cJSON_AddStringToObject(term, "finishedAt", t);
        return;
    }
    if (c->state == CS_RUNNING) {
        cJSON *run = cJSON_AddObjectToObject(s, "running");
        rfc3339(c->started_at, t, sizeof(t));
        cJSON_AddStringToObject(run, "startedAt", t);
    } else if (c->state == CS_TERMINATED) {
        add_state(s, "x", c, true); /* reuse the terminated writer below */
        cJSON *x = cJSON_DetachItemFromObject(s, "x");
        cJSON *term = cJSON_DetachItemFromObject(x, "terminated");
        cJSON_Delete(x);
        if (term)
            cJSON_AddItemToObject(s, "terminated", term);
    } else {
        cJSON *w = cJSON_AddObjectToObject(s, "waiting");
        cJSON_AddStringToObject(w, "reason", c->reason[0] ? c->reason : "ContainerCreating");
        if (c->message[0])
            cJSON_AddStringToObject(w, "message", c->message);
    }
}

static const char *pod_phase(const pod_t *p)
{
    if (p->deadline_exceeded)
        return "Failed";
    if (p->stage == STAGE_DONE) {
        for (size_t i = 0; i < p->n_ctrs; i++)
            if (!p->ctrs[i].sidecar && p->ctrs[i].state == CS_TERMINATED &&
                p->ctrs[i].last.exit_code != 0)
                return "Failed";
        return "Succeeded";
    }
    if (p->stage == STAGE_RUN)
        for (size_t i = p->n_init; i < p->n_ctrs; i++)
            if (ctr_running(&p->ctrs[i]) || p->ctrs[i].restarts > 0)
                return "Running";
    return "Pending";
}

static cJSON *pod_status(drv_supervisor_t *sv, pod_t *p)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(o, "metadata");
    cJSON_AddStringToObject(meta, "name", p->name);
    cJSON_AddStringToObject(meta, "namespace", p->ns);
    cJSON_AddStringToObject(meta, "uid", p->uid);
    cJSON *st = cJSON_AddObjectToObject(o, "status");
    const char *phase = pod_phase(p);
    cJSON_AddStringToObject(st, "phase", p->terminating ? "Terminating" : phase);
    char t[40];
    rfc3339(p->start_time, t, sizeof(t));
    cJSON_AddStringToObject(st, "startTime", t);
    /* The node's address is the pod's too under hostNetwork, once its sandbox is up (Services
     * select node agents such as node-exporter by it). */
    const char *host_ip = sv->host.host_ip;
    const char *pod_ip =
        p->pod_ip[0] ? p->pod_ip
        : (host_ip[0] && drv_json_true(drv_json_get(p->obj, "spec"), "hostNetwork") &&
           p->stage >= STAGE_INIT && p->stage <= STAGE_RUN)
            ? host_ip
            : NULL;
    if (host_ip[0]) {
        cJSON *ips = cJSON_AddArrayToObject(st, "hostIPs"), *ip = cJSON_CreateObject();
        cJSON_AddStringToObject(st, "hostIP", host_ip);
        cJSON_AddStringToObject(ip, "ip", host_ip);
        if (!cJSON_AddItemToArray(ips, ip))
            cJSON_Delete(ip);
    }
    if (pod_ip) {
        cJSON *ips = cJSON_AddArrayToObject(st, "podIPs"), *ip = cJSON_CreateObject();
        cJSON_AddStringToObject(st, "podIP", pod_ip);
        cJSON_AddStringToObject(ip, "ip", pod_ip);
        if (!cJSON_AddItemToArray(ips, ip))
            cJSON_Delete(ip);
    }
    if (p->deadline_exceeded) {
        cJSON_AddStringToObject(st, "reason", "DeadlineExceeded");
        cJSON_AddStringToObject(st, "message",
                                "Pod was active on the node longer than the specified deadline");
    } else if (p->reason[0]) {
        cJSON_AddStringToObject(st, "reason", p->reason);
        cJSON_AddStringToObject(st, "message", p->message);
    }
    bool all_ready = p->n_ctrs > p->n_init;
    cJSON *lists[2] = {cJSON_AddArrayToObject(st, "initContainerStatuses"),
                       cJSON_AddArrayToObject(st, "containerStatuses")};
    for (size_t i = 0; i < p->n_ctrs; i++) {
        const ctr_t *c = &p->ctrs[i];
        ctr_t creating;
        if (c->state == CS_RUNNING && !ctr_running(c)) {
            /* In its postStart hook: still ContainerCreating, as the kubelet reports it. */
            creating = *c;
            creating.state = CS_WAITING;
            creating.ready = creating.started = false;
            drv_fmt_cut(creating.reason, sizeof(creating.reason), "ContainerCreating");
            creating.message[0] = '\0';
            c = &creating;
        }
        cJSON *cs = cJSON_CreateObject();
        cJSON_AddStringToObject(cs, "name", c->name);
        cJSON_AddStringToObject(cs, "image", drv_json_str(c->spec, "image"));
        /* As a kubelet that has no digest to tell: "" (clients such as python3-kubernetes
         * require the field). */
        cJSON_AddStringToObject(cs, "imageID", "");
        cJSON_AddStringToObject(cs, "containerID", c->state == CS_RUNNING ? c->id : "");
        bool ready = c->init && !c->sidecar ? (c->state == CS_TERMINATED && c->last.exit_code == 0)
                                            : (c->state == CS_RUNNING && c->ready);
        cJSON_AddBoolToObject(cs, "ready", ready);
        cJSON_AddBoolToObject(cs, "started", c->state == CS_RUNNING && c->started);
        cJSON_AddNumberToObject(cs, "restartCount", c->restarts);
        if (c->state == CS_RUNNING)
            cJSON_AddNumberToObject(cs, "pid", c->pid); /* Drover: the init process on the device */
        if (c->state == CS_WAITING && p->reason[0]) {
            ctr_t tmp = *c;
            drv_fmt_cut(tmp.reason, sizeof(tmp.reason), "%s", p->reason);
            drv_fmt_cut(tmp.message, sizeof(tmp.message), "%s", p->message);
            add_state(cs, "state", &tmp, false);
        } else {
            add_state(cs, "state", c, false);
        }
        if (c->last.valid && c->state != CS_TERMINATED)
            add_state(cs, "lastState", c, true);
        pod_host_probe_status(c, cs);
        if ((!c->init || c->sidecar) && !ready)
            all_ready = false; /* sidecars count for readiness, as in Kubernetes */
        cJSON_AddItemToArray(lists[c->init ? 0 : 1], cs);
    }
    cJSON *conds = cJSON_AddArrayToObject(st, "conditions");
    struct {
        const char *type;
        bool ok;
    } cs[] = {{"Initialized", p->init_next >= p->n_init},
              {"ContainersReady", all_ready},
              {"Ready", all_ready && !p->terminating}};
    for (size_t i = 0; i < 3; i++) {
        if (p->cond_since[i] == 0 || p->cond_ok[i] != cs[i].ok) {
            p->cond_ok[i] = cs[i].ok;
            p->cond_since[i] =
                p->cond_since[i] == 0 && p->start_time ? p->start_time : (int64_t)drv_wall_ms();
        }
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "type", cs[i].type);
        cJSON_AddStringToObject(c, "status", cs[i].ok ? "True" : "False");
        char ts[40];
        rfc3339(p->cond_since[i], ts, sizeof(ts));
        cJSON_AddStringToObject(c, "lastTransitionTime", ts);
        cJSON_AddItemToArray(conds, c);
    }
    cJSON *usage = cJSON_AddObjectToObject(st, "usage");
    char q[32];
    if (drv_fmt(q, sizeof(q), "%lldm", (long long)p->usage_cpu_m) == DRV_OK)
        cJSON_AddStringToObject(usage, "cpu", q);
    if (drv_fmt(q, sizeof(q), "%lldKi", (long long)(p->usage_mem / 1024)) == DRV_OK)
        cJSON_AddStringToObject(usage, "memory", q);
    (void)sv;
    return o;
}

cJSON *drv_supervisor_status(drv_supervisor_t *sv)
{
    long long now = drv_now_ms();
    if (now - sv->last_usage >= 5000) {
        sv->last_usage = now;
        pod_host_sample_usage(sv->pods, sv->n_pods, now);
    }
    cJSON *o = cJSON_CreateObject();
    cJSON *node = pod_host_node_status(sv->cfg);
    if (!sv->cg.ready) {
        cJSON *c;
        cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(node, "conditions"))
        {
            const char *type = drv_json_str(c, "type");
            if (!type || strcmp(type, "Ready"))
                continue;
            cJSON_DeleteItemFromObjectCaseSensitive(c, "status");
            cJSON_AddStringToObject(c, "status", "False");
            cJSON_AddStringToObject(c, "reason", sv->cg.reason);
            cJSON_AddStringToObject(c, "message", sv->cg.message);
        }
    }
    pod_net_status(&sv->net, node);
    pod_pvc_status(node, sv->host.storage_dir, sv->host.pvc_removed);
    cJSON *cg = cJSON_AddObjectToObject(node, "cgroups");
    cJSON_AddBoolToObject(cg, "enabled", sv->cgroups);
    if (sv->cgroups_note[0])
        cJSON_AddStringToObject(cg, "message", sv->cgroups_note);
    cJSON_AddItemToObject(o, "node", node);
    cJSON *pods = cJSON_AddArrayToObject(o, "pods");
    for (size_t i = 0; i < sv->n_pods; i++)
        cJSON_AddItemToArray(pods, pod_status(sv, sv->pods[i]));
    return o;
}

/* ---- life cycle ---- */

drv_err_t drv_supervisor_new(const drv_agent_config_t *cfg, drv_supervisor_t **out,
                             drv_error_t *err)
{
    drv_supervisor_t *sv = calloc(1, sizeof(*sv));
    if (!sv)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "supervisor");
    sv->cfg = cfg;
    if (drv_fmt(sv->crun.path, sizeof(sv->crun.path), "%s", cfg->crun_path) != DRV_OK) {
        free(sv);
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "crun too long");
    }
    if (drv_fmt(sv->crun.root, sizeof(sv->crun.root), "%s/crun", cfg->run_dir) != DRV_OK) {
        free(sv);
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "runDir too long");
    }
    /* Without enforceable limits the node is NotReady and runs no pods (unless
     * allowNoCgroups), rather than silently running them unbounded; it still starts, so the
     * hub and `drover-agent status` say why. */
    cgroups_probe(cfg, &sv->cg);
    sv->cgroups = sv->cg.limits;
    drv_fmt_cut(sv->cgroups_note, sizeof(sv->cgroups_note), "%s", sv->cg.message);
    if (!sv->cg.ready)
        drv_log_error("cgroups cannot be used: the node is NotReady and runs no pods (set "
                      "allowNoCgroups: true in the agent config to run them without limits)",
                      "reason=%s message=\"%s\"", sv->cg.reason, sv->cg.message);
    else if (!sv->cgroups && cfg->cgroups != DRV_CGROUPS_DISABLED)
        drv_log_warn("cgroups cannot be used; pods run without resource limits (allowNoCgroups)",
                     "reason=\"%s\"", sv->cg.message);
    sv->crun.cgroups = sv->cgroups;
    char dir[512];
    drv_err_t r = drv_file_mkdir_p(cfg->state_dir, 0700, err);
    if (r == DRV_OK)
        r = drv_file_mkdir_p(sv->crun.root, 0700, err);
    if (r == DRV_OK && drv_fmt(dir, sizeof(dir), "%s/pods", cfg->state_dir) != DRV_OK)
        r = drv_error_set(err, DRV_ERR_TOOBIG, 0, "stateDir %s: path too long", cfg->state_dir);
    if (r == DRV_OK)
        r = drv_file_mkdir_p(dir, 0700, err);
    if (r == DRV_OK && drv_fmt(dir, sizeof(dir), "%s/images", cfg->state_dir) != DRV_OK)
        r = drv_error_set(err, DRV_ERR_TOOBIG, 0, "stateDir %s: path too long", cfg->state_dir);
    if (r == DRV_OK)
        r = drv_store_open(dir, &sv->store, err);
    if (r == DRV_OK)
        r = pod_host_init(&sv->host, sv, cfg, sv->cgroups, err);
    if (r == DRV_OK)
        r = pod_host_set_crun(&sv->host, sv->crun.path, sv->crun.root, sv->crun.cgroups, err);
    if (r == DRV_OK)
        r = pod_net_init(&sv->net, cfg, err);
    sv->host.net = &sv->net;
    if (r != DRV_OK) {
        drv_supervisor_free(sv);
        return r;
    }
    sv->desired = cJSON_CreateObject();
    *out = sv;
    return DRV_OK;
}

void drv_supervisor_free(drv_supervisor_t *sv)
{
    if (!sv)
        return;
    for (size_t i = 0; i < sv->n_pods; i++)
        pod_free(&sv->host, sv->pods[i]);
    pod_host_fini(&sv->host);
    pod_net_fini(&sv->net);
    if (sv->store)
        drv_store_close(sv->store);
    pod_secret_wipe_delete(sv->desired);
    cJSON_Delete(sv->cm_by_ns);
    cJSON_Delete(sv->secret_by_ns);
    cJSON_Delete(sv->events);
    free(sv);
}

size_t drv_supervisor_pod_count(const drv_supervisor_t *sv)
{
    return sv->n_pods;
}

size_t drv_supervisor_pods(drv_supervisor_t *sv, pod_t ***pods)
{
    *pods = sv->pods;
    return sv->n_pods;
}
