/* The agent's event loop (see daemon.h). */
#include <errno.h>
#include <malloc.h>
#include <stdarg.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "drover/digest.h"
#include "drover/file.h"
#include "drover/fmt.h"
#include "drover/log.h"
#include "drover/manifest.h"
#include "drover/model.h"
#include "link/link.h"
#include "pod/satoken.h"
#include "pod/secrets.h"
#include "pod/supervisor.h"
#include "proc/proc.h"

#define STATUS_PERIOD_MS 5000

static void add_problem(cJSON *problems, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void add_problem(cJSON *problems, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    drv_vfmt_cut(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cJSON_AddItemToArray(problems, cJSON_CreateString(msg));
    drv_log_error("invalid static manifest", "problem=\"%s\"", msg);
}

/* A static pod's uid: stable for the same content, new when the manifest changes (so an
 * edited manifest replaces the pod, as with kubelet's static pods). */
static void set_uid(cJSON *pod, const char *node)
{
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(pod, "metadata");
    cJSON *spec = cJSON_GetObjectItemCaseSensitive(pod, "spec");
    if (spec && !cJSON_GetObjectItemCaseSensitive(spec, "nodeName"))
        cJSON_AddStringToObject(spec, "nodeName", node);
    if (cJSON_GetObjectItemCaseSensitive(meta, "uid"))
        return;
    char *text = drv_model_to_json(pod, false);
    drv_digest_t sum;
    char hex[DRV_DIGEST_HEX_MAX], uid[64];
    drv_digest_of(text ? text : "", text ? strlen(text) : 0, &sum);
    free(text);
    if (drv_fmt(uid, sizeof(uid), "static-%.24s", drv_digest_hex(&sum, hex)) == DRV_OK)
        cJSON_AddStringToObject(meta, "uid", uid);
}

cJSON *drv_daemon_load_manifests(const char *dir, const char *node, cJSON **problems_out)
{
    cJSON *desired = cJSON_CreateObject();
    cJSON *problems = cJSON_CreateArray();
    cJSON *pods = cJSON_AddArrayToObject(desired, "pods");
    cJSON *cms = cJSON_AddArrayToObject(desired, "configMaps");
    cJSON *secrets = cJSON_AddArrayToObject(desired, "secrets");
    if (!desired || !problems || !pods || !cms || !secrets) {
        cJSON_Delete(desired);
        cJSON_Delete(problems);
        return NULL;
    }
    char **files = NULL;
    size_t nfiles = 0;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_manifest_list_files(dir, false, &files, &nfiles, &err) != DRV_OK) {
        if (err.code != DRV_ERR_NOTFOUND)
            add_problem(problems, "%s", drv_error_msg(&err));
        *problems_out = problems;
        return desired;
    }
    drv_manifest_set_t set = {0};
    for (size_t i = 0; i < nfiles; i++) {
        drv_error_clear(&err);
        if (drv_manifest_load_file(files[i], &set, &err) != DRV_OK)
            add_problem(problems, "%s", drv_error_msg(&err));
    }
    drv_manifest_files_free(files, nfiles);
    for (size_t i = 0; i < set.count; i++) {
        drv_manifest_t *m = &set.items[i];
        char where[600];
        drv_manifest_where(m, where, sizeof(where));
        drv_diags_t d = {0};
        drv_err_t r = drv_model_normalize(m->obj, &d);
        if (r != DRV_OK) {
            char *text = drv_diags_format(&d, "");
            for (char *line = text, *nl; line && *line; line = nl ? nl + 1 : NULL) {
                nl = strchr(line, '\n');
                if (nl)
                    *nl = '\0';
                add_problem(problems, "%s: %s", where, line);
                if (!nl)
                    break;
            }
            free(text);
            drv_diags_free(&d);
            continue;
        }
        drv_diags_free(&d);
        cJSON *target = NULL;
        switch (drv_model_kind(m->obj)) {
        case DRV_KIND_POD:
            set_uid(m->obj, node);
            target = pods;
            break;
        case DRV_KIND_CONFIGMAP:
            target = cms;
            break;
        case DRV_KIND_SECRET:
            target = secrets;
            break;
        default:
            add_problem(problems,
                        "%s: %s: static manifests may hold Pods, ConfigMaps and Secrets only",
                        where, drv_kind_name(drv_model_kind(m->obj)));
            continue;
        }
        cJSON_AddItemToArray(target, m->obj);
        m->obj = NULL;
    }
    drv_manifest_set_free(&set);
    *problems_out = problems;
    return desired;
}

struct daemon {
    const drv_agent_config_t *cfg;
    drv_supervisor_t *sv;
    drv_link_t *link;      /* NULL when standalone */
    cJSON *static_desired; /* the manifest directory's objects */
    cJSON *problems;       /* the manifest problems, shown in status */
    char *last_manifests;
    char *last_status;
    long long last_status_at;
    bool trim_due; /* pods changed since the heap was last given back */
};

/* What runs: the static manifests and the hub's desired state, together. */
static void apply(struct daemon *d)
{
    cJSON *desired = drv_link_merge(d->static_desired, drv_link_hub_desired(d->link));
    if (!desired)
        return;
    drv_error_t err = DRV_ERROR_INIT;
    if (pod_satoken_apply(desired, d->cfg->state_dir, d->cfg->node_name, d->cfg->hub_url, &err) !=
        DRV_OK) {
        drv_log_error("cannot give pods their service account tokens", "error=\"%s\"",
                      drv_error_msg(&err));
        pod_secret_wipe_delete(desired);
        return;
    }
    if (drv_supervisor_set_desired(d->sv, desired, &err) != DRV_OK)
        drv_log_error("cannot apply desired state", "error=\"%s\"", drv_error_msg(&err));
}

static void hub_desired_changed(void *userdata)
{
    apply(userdata);
}

static void rescan(struct daemon *d)
{
    cJSON *problems = NULL;
    cJSON *desired = drv_daemon_load_manifests(d->cfg->manifest_dir, d->cfg->node_name, &problems);
    if (!desired)
        return;
    char *text = cJSON_PrintUnformatted(desired);
    cJSON_Delete(d->problems);
    d->problems = problems;
    if (text && d->last_manifests && !strcmp(text, d->last_manifests)) {
        free(text);
        cJSON_Delete(desired);
        return;
    }
    free(d->last_manifests);
    d->last_manifests = text;
    cJSON_Delete(d->static_desired);
    d->static_desired = desired;
    apply(d);
}

static void write_status(struct daemon *d, long long now)
{
    bool dirty = drv_supervisor_status_dirty(d->sv);
    if (!dirty && now - d->last_status_at < STATUS_PERIOD_MS)
        return;
    d->last_status_at = now;
    /* Starting and stopping pods (specs, bundles, CNI results, parsed documents) leaves holes
     * in the heap that stay dirty for as long as the pods then run quietly: the first quiet
     * status after a change hands them back once (issue 19: memory per pod). */
    if (dirty)
        d->trim_due = true;
    else if (d->trim_due) {
        d->trim_due = false;
        malloc_trim(0);
    }
    cJSON *st = drv_supervisor_status(d->sv);
    if (!st)
        return;
    drv_link_set_status(d->link, st, dirty);
    if (d->link) {
        cJSON *hub = cJSON_AddObjectToObject(st, "hub");
        cJSON_AddStringToObject(hub, "broker", d->cfg->hub_broker);
        cJSON_AddNumberToObject(hub, "generation", (double)drv_link_generation(d->link));
    }
    cJSON_AddItemToObject(st, "manifestProblems", cJSON_Duplicate(d->problems, 1));
    char *text = cJSON_Print(st);
    cJSON_Delete(st);
    if (!text || (d->last_status && !strcmp(text, d->last_status))) {
        free(text);
        return;
    }
    char path[512];
    if (drv_fmt(path, sizeof(path), "%s/status.json", d->cfg->run_dir) != DRV_OK) {
        drv_log_warn("cannot write status: path too long", "run_dir=%s", d->cfg->run_dir);
        free(text);
        return;
    }
    drv_error_t err = DRV_ERROR_INIT;
    /* On the run directory's tmpfs, rewritten on every change: replaced, not fsynced. */
    if (drv_file_write_replace(path, text, strlen(text), 0644, &err) != DRV_OK)
        drv_log_warn("cannot write status", "error=\"%s\"", drv_error_msg(&err));
    free(d->last_status);
    d->last_status = text;
}

drv_err_t drv_daemon_stop_pods(const drv_agent_config_t *cfg, drv_error_t *err)
{
    char path[512];
    if (drv_fmt(path, sizeof(path), "%s/desired.json", cfg->state_dir) != DRV_OK)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "stateDir %s: path too long", cfg->state_dir);
    if (access(path, F_OK) != 0 && errno == ENOENT) {
        drv_log_info("no pods to stop", "state_dir=%s", cfg->state_dir);
        return DRV_OK; /* the agent never ran here */
    }
    drv_err_t r = drv_file_mkdir_p(cfg->run_dir, 0755, err);
    drv_supervisor_t *sv = NULL;
    if (r == DRV_OK)
        r = drv_supervisor_new(cfg, &sv, err);
    if (r == DRV_OK)
        r = drv_supervisor_restore(sv, err);
    if (r == DRV_OK) {
        cJSON *none = cJSON_CreateObject();
        r = none ? drv_supervisor_set_desired(sv, none, err)
                 : drv_error_set(err, DRV_ERR_NOMEM, 0, "desired state");
    }
    if (r == DRV_OK)
        drv_log_info("stopping pods", "pods=%zu", drv_supervisor_pod_count(sv));
    /* Adopted containers are watched through pidfds; crun's runs are waited for by pid. */
    while (r == DRV_OK && drv_supervisor_pod_count(sv) > 0) {
        long long now = drv_now_ms();
        drv_supervisor_tick(sv, now);
        if (drv_supervisor_pod_count(sv) == 0)
            break;
        int timeout = drv_supervisor_next_wakeup(sv, now);
        if (drv_supervisor_wait(sv, NULL, NULL, 0, timeout < 200 ? timeout : 200) < 0 &&
            errno != EINTR)
            drv_log_warn("wait failed", "errno=%d", errno);
        int st;
        pid_t pid;
        while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
            drv_supervisor_child_exited(sv, pid, st);
    }
    if (r == DRV_OK)
        drv_log_info("pods stopped", NULL);
    drv_supervisor_free(sv);
    return r;
}

drv_err_t drv_daemon_run(const drv_agent_config_t *cfg, drv_error_t *err)
{
    /* Containers run detached; as their subreaper we are told when they exit. */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
        return drv_error_set(err, DRV_ERR_IO, errno, "prctl(PR_SET_CHILD_SUBREAPER)");
    signal(SIGPIPE, SIG_IGN);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0)
        return drv_error_set(err, DRV_ERR_IO, errno, "signalfd");
    drv_err_t r = drv_file_mkdir_p(cfg->run_dir, 0755, err);
    if (r == DRV_OK)
        r = drv_file_mkdir_p(cfg->manifest_dir, 0755, err);
    if (r != DRV_OK) {
        close(sfd);
        return r;
    }
    int ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (ifd >= 0 && inotify_add_watch(ifd, cfg->manifest_dir,
                                      IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE |
                                          IN_CREATE) < 0) {
        drv_log_warn("cannot watch the manifest directory; rescanning every second",
                     "dir=%s errno=%d", cfg->manifest_dir, errno);
        close(ifd);
        ifd = -1;
    }
    struct daemon d = {.cfg = cfg, .problems = cJSON_CreateArray()};
    r = drv_supervisor_new(cfg, &d.sv, err);
    if (r == DRV_OK)
        r = drv_supervisor_restore(d.sv, err);
    if (r != DRV_OK) {
        drv_supervisor_free(d.sv);
        cJSON_Delete(d.problems);
        close(sfd);
        if (ifd >= 0)
            close(ifd);
        return r;
    }
    /* The hub's saved desired state is loaded before the first apply, so that its pods keep
     * running across a restart even with no broker. */
    drv_link_hooks_t hooks = {.desired_changed = hub_desired_changed, .userdata = &d};
    /* The MQTT client's threads allocate too; one malloc arena for all of them keeps each
     * thread from dirtying an arena of its own (the loop is the only busy thread). A fixed
     * mmap threshold: log chunks (512 KiB and their base64) are mapped and given back, instead
     * of glibc raising the threshold after the first one and keeping them in the heap. */
    if (cfg->hub_broker[0]) {
        mallopt(M_ARENA_MAX, 1);
        mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    }
    r = drv_link_new(cfg, &hooks, &d.link, err);
    if (r != DRV_OK) {
        drv_supervisor_free(d.sv);
        cJSON_Delete(d.problems);
        close(sfd);
        if (ifd >= 0)
            close(ifd);
        return r;
    }
    drv_log_info("agent started", "node=%s state_dir=%s manifests=%s hub=%s", cfg->node_name,
                 cfg->state_dir, cfg->manifest_dir, cfg->hub_broker[0] ? cfg->hub_broker : "none");
    rescan(&d);
    write_status(&d, drv_now_ms());
    bool running = true;
    long long last_scan = drv_now_ms();
    while (running) {
        long long now = drv_now_ms();
        /* fds: the signals, then the manifest directory and the link when there are. */
        int fds[3] = {sfd, ifd, drv_link_fd(d.link)};
        short rev[3] = {0, 0, 0};
        unsigned nfds = ifd >= 0 ? 2 : 1;
        if (fds[2] >= 0)
            fds[nfds++] = fds[2];
        int timeout = drv_supervisor_next_wakeup(d.sv, now);
        int lt = drv_link_next_wakeup(d.link, now);
        if (d.link && lt < timeout)
            timeout = lt;
        if (drv_supervisor_wait(d.sv, fds, rev, nfds, timeout) < 0 && errno != EINTR)
            drv_log_warn("wait failed", "errno=%d", errno);
        if (rev[0] & POLLIN) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
                if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
                    running = false;
                else if (si.ssi_signo == SIGHUP)
                    rescan(&d);
            }
            /* Reap every child that is done: signals coalesce. */
            int st;
            pid_t pid;
            while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
                drv_supervisor_child_exited(d.sv, pid, st);
        }
        now = drv_now_ms();
        if (ifd >= 0 && (rev[1] & POLLIN)) {
            char buf[4096];
            while (read(ifd, buf, sizeof(buf)) > 0)
                ;
            rescan(&d);
            last_scan = now;
        } else if (ifd < 0 && now - last_scan >= 1000) {
            rescan(&d);
            last_scan = now;
        }
        drv_supervisor_tick(d.sv, now);
        for (cJSON *ev; (ev = drv_supervisor_take_event(d.sv));)
            drv_link_send_event(d.link, ev);
        write_status(&d, now);
        drv_link_tick(d.link, drv_now_ms());
    }
    drv_log_info("agent stopping; pods keep running", NULL);
    drv_link_free(d.link);
    drv_supervisor_free(d.sv);
    cJSON_Delete(d.static_desired);
    cJSON_Delete(d.problems);
    free(d.last_manifests);
    free(d.last_status);
    close(sfd);
    if (ifd >= 0)
        close(ifd);
    return DRV_OK;
}
