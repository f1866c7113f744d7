/* The supervisor's use of the runtime modules and of the host (see host.h). */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <net/if.h>
#include <ifaddrs.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "drover/proc.h"
#include "drover/cleanup.h"
#include "drover/file.h"
#include "drover/fmt.h"
#include "drover/fsat.h"
#include "drover/log.h"
#include "drover/json.h"
#include "drover/pki.h"
#include "pod/host.h"
#include "pod/pvc.h"
#include "pod/network.h"
#include "pod/secrets.h"
#include "pod/volumes.h"
#include "probe/probe.h"
#include "runtime/crun.h"
#include "runtime/rootfs.h"
#include "runtime/sandbox.h"
#include "runtime/spec.h"

drv_err_t pod_host_init(pod_host_t *g, struct drv_supervisor *sv, const drv_agent_config_t *cfg,
                        bool cgroups, drv_error_t *err)
{
    memset(g, 0, sizeof(*g));
    g->sv = sv;
    g->cfg = cfg;
    g->cgroups = cgroups;
    pod_pvc_storage_dir(cfg, g->storage_dir, sizeof(g->storage_dir));
    if (!(g->pvc_removed = cJSON_CreateArray()))
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "out of memory");
    /* host-local's leases live as long as the sandboxes they belong to: on the run directory
     * (tmpfs), so that a reboot, which takes every sandbox, takes them too; on disk they would
     * refuse the same pod its address again ("duplicate allocation") after a power cut. */
    if (drv_fmt(g->cni_state, sizeof(g->cni_state), "%s", cfg->run_dir) != DRV_OK)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "agent config: runDir: too long");
    g->cni.plugin_dir = cfg->cni_plugin_dir;
    g->cni.state_dir = g->cni_state;
    g->cni.subnet = cfg->pod_subnet;
    g->cni.bridge = cfg->bridge;
    drv_err_t r = drv_cni_config_validate(&g->cni, err);
    if (r != DRV_OK)
        return drv_error_wrap(err, "agent config");
    if (drv_seccomp_load(cfg->seccomp_profile, &g->seccomp, err) != DRV_OK) {
        /* Without the profile pods run unconfined by seccomp: say so, loudly, once. */
        drv_log_warn(
            "seccomp profile not loaded: containers run without the default seccomp filter",
            "path=%s error=\"%s\"", cfg->seccomp_profile, drv_error_msg(err));
        drv_error_clear(err);
        g->seccomp = NULL;
    }
    return DRV_OK;
}

void pod_host_fini(pod_host_t *g)
{
    cJSON_Delete(g->pvc_removed);
    g->pvc_removed = NULL;
    drv_prober_free(g->prober);
    g->prober = NULL;
    drv_seccomp_free(g->seccomp);
    g->seccomp = NULL;
}

/* ---- volumes ---- */

drv_err_t pod_host_volumes_prepare(pod_host_t *g, pod_t *p, const cJSON *configmaps,
                                   const cJSON *secrets, drv_error_t *err)
{
    drv_volume_sources_t src = {configmaps, secrets, g->pvs, g->storage_dir};
    return drv_volumes_prepare(p->obj, p->dir, &src, err);
}

drv_err_t pod_host_volumes_update(pod_host_t *g, pod_t *p, const cJSON *configmaps,
                                  const cJSON *secrets, drv_error_t *err)
{
    (void)g;
    drv_volume_sources_t src = {configmaps, secrets, g->pvs, g->storage_dir};
    return drv_volumes_update(p->obj, p->dir, &src, NULL, err);
}

drv_err_t pod_host_volumes_teardown(pod_host_t *g, pod_t *p, drv_error_t *err)
{
    return drv_volumes_teardown(p->dir, err);
}

/* ---- sandbox ---- */

static drv_err_t sandbox_take(pod_t *p, drv_sandbox_t *sb, drv_error_t *err)
{
    if (drv_fmt(p->netns, sizeof(p->netns), "%s", sb->net_ns ? sb->net_ns : "") != DRV_OK ||
        drv_fmt(p->ipcns, sizeof(p->ipcns), "%s", sb->ipc_ns ? sb->ipc_ns : "") != DRV_OK ||
        drv_fmt(p->utsns, sizeof(p->utsns), "%s", sb->uts_ns ? sb->uts_ns : "") != DRV_OK ||
        drv_fmt(p->pod_ip, sizeof(p->pod_ip), "%s", sb->pod_ip) != DRV_OK) {
        p->netns[0] = p->ipcns[0] = p->utsns[0] = p->pod_ip[0] = '\0';
        return drv_error_set(err, DRV_ERR_TOOBIG, 0,
                             "sandbox of pod %s/%s: namespace path or pod IP too long", p->ns,
                             p->name);
    }
    return DRV_OK;
}

/* /etc/hosts, /etc/resolv.conf and /etc/hostname for the pod's containers. */
static drv_err_t write_etc(const pod_host_t *g, pod_t *p, const char *hostname, drv_error_t *err)
{
    char dir[600], path[700], text[1024];
    if (drv_fmt(dir, sizeof(dir), "%s/etc", p->dir) != DRV_OK)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "%s/etc: path too long", p->dir);
    /* Its files are written again at each sandbox start, without fsync: so is the directory. */
    drv_err_t r = drv_file_mkdir_p_unsynced(dir, 0755, err);
    if (r != DRV_OK)
        return r;
    if (drv_fmt(path, sizeof(path), "%s/hosts", dir) != DRV_OK)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "%s/hosts: path too long", dir);
    /* The kubelet's file: localhost, the pod's address, then spec.hostAliases. */
    drv_buf_t hosts = DRV_BUF_INIT(64 * 1024);
    r = drv_spec_hosts_file(p->obj, p->pod_ip, hostname, NULL, &hosts);
    r = r == DRV_OK ? drv_file_write_replace(path, drv_buf_str(&hosts), hosts.len, 0644, err)
                    : drv_error_set(err, r, 0, "%s: hostAliases too long", path);
    drv_buf_free(&hosts);
    if (r != DRV_OK)
        return r;
    int n;
    if (drv_fmt(path, sizeof(path), "%s/hostname", dir) != DRV_OK)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "%s/hostname: path too long", dir);
    n = snprintf(text, sizeof(text), "%s\n", hostname);
    r = drv_file_write_replace(path, text, (size_t)n, 0644, err);
    if (r != DRV_OK)
        return r;
    /* The host's resolver (what dnsPolicy Default gives, and the search domains the cluster
     * policies add); behind systemd-resolved's stub (127.0.0.53, unreachable from a pod) the
     * real upstream list. */
    const char *src = "/etc/resolv.conf";
    _cleanup_free_ char *rc = NULL;
    size_t len = 0;
    if (drv_file_read_capped(src, 64 * 1024, &rc, &len, NULL) != DRV_OK ||
        strstr(rc, "127.0.0.53")) {
        free(rc);
        rc = NULL;
        if (drv_file_read_capped("/run/systemd/resolve/resolv.conf", 64 * 1024, &rc, &len, NULL) !=
            DRV_OK) {
            rc = strdup("");
            len = 0;
        }
    }
    if (drv_fmt(path, sizeof(path), "%s/resolv.conf", dir) != DRV_OK)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "%s/resolv.conf: path too long", dir);
    /* The pod's own by its dnsPolicy: the node's cluster DNS first when there is one. */
    drv_buf_t out = DRV_BUF_INIT(64 * 1024);
    r = pod_net_resolv_conf(g->net, cJSON_GetObjectItemCaseSensitive(p->obj, "spec"), p->ns,
                            rc ? rc : "", &out, err);
    if (r == DRV_OK)
        r = drv_file_write_replace(path, drv_buf_str(&out), out.len, 0644, err);
    drv_buf_free(&out);
    return r;
}

static const char *pod_hostname(const pod_t *p)
{
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(p->obj, "spec");
    const char *h = drv_json_str(spec, "hostname");
    return h && *h ? h : p->name;
}

drv_err_t pod_host_sandbox_create(pod_host_t *g, pod_t *p, drv_error_t *err)
{
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(p->obj, "spec");
    drv_cni_port_t ports[64];
    size_t nports = 0;
    const cJSON *ctrs = cJSON_GetObjectItemCaseSensitive(spec, "containers");
    for (const cJSON *c = ctrs ? ctrs->child : NULL; c; c = c->next) {
        const cJSON *ps = cJSON_GetObjectItemCaseSensitive(c, "ports");
        for (const cJSON *pt = ps ? ps->child : NULL; pt && nports < 64; pt = pt->next) {
            int64_t hp = 0, cp = 0;
            /* Not a port number (the model refused it already): skipped, never cast. */
            if (!drv_json_int(pt, "hostPort", &hp) || hp <= 0 || hp > 65535 ||
                !drv_json_int(pt, "containerPort", &cp) || cp <= 0 || cp > 65535)
                continue;
            ports[nports++] =
                (drv_cni_port_t){(uint16_t)cp, (uint16_t)hp, drv_json_str(pt, "protocol"),
                                 drv_json_str(pt, "hostIP")};
        }
    }
    drv_sandbox_opts_t o = {.run_dir = g->cfg->run_dir,
                            .pod_uid = p->uid,
                            .pod_name = p->name,
                            .pod_namespace = p->ns,
                            .hostname = drv_json_str(spec, "hostname"),
                            .host_network = drv_json_true(spec, "hostNetwork"),
                            .host_ipc = drv_json_true(spec, "hostIPC"),
                            .ports = ports,
                            .nports = nports,
                            .cni = &g->cni};
    drv_sandbox_t sb = {0};
    drv_err_t r = drv_sandbox_load(g->cfg->run_dir, p->uid, &sb, err);
    if (r != DRV_OK) {
        /* Missing, half made, or gone with a reboot: start clean. */
        drv_error_clear(err);
        r = drv_sandbox_destroy(g->cfg->run_dir, p->uid, &g->cni, err);
        /* A pod that had an address (its state.json says so) but no sandbox record: the run
         * directory went, with a reboot. What its old sandbox left in the kernel (its host
         * ports' portmap rules, its masquerade rule) is let go first, so that the new one does
         * not sit behind stale rules: nothing to do after a real reboot, which takes them too,
         * but it matters when only the agent's tmpfs went. One DEL, only then. */
        if (r == DRV_OK && (p->pod_ip[0] || p->last_ip[0]) && !o.host_network) {
            drv_cni_pod_t cp = {.container_id = p->uid,
                                .ifname = "eth0",
                                .pod_name = p->name,
                                .pod_namespace = p->ns,
                                .ports = ports,
                                .nports = nports};
            drv_error_t derr = DRV_ERROR_INIT;
            if (drv_cni_del(&g->cni, NULL, &cp, NULL, &derr) != DRV_OK)
                drv_log_debug("stale pod network not released", "pod=%s/%s error=\"%s\"", p->ns,
                              p->name, drv_error_msg(&derr));
        }
        if (r == DRV_OK)
            r = drv_sandbox_create(&o, &sb, err);
    }
    if (r != DRV_OK)
        return r;
    r = sandbox_take(p, &sb, err);
    drv_sandbox_free(&sb);
    if (r != DRV_OK)
        return r;
    return write_etc(g, p, pod_hostname(p), err);
}

drv_err_t pod_host_sandbox_load(pod_host_t *g, pod_t *p, drv_error_t *err)
{
    drv_sandbox_t sb = {0};
    drv_err_t r = drv_sandbox_load(g->cfg->run_dir, p->uid, &sb, err);
    if (r == DRV_OK) {
        r = sandbox_take(p, &sb, err);
        drv_sandbox_free(&sb);
    }
    return r;
}

drv_err_t pod_host_sandbox_destroy(pod_host_t *g, pod_t *p, drv_error_t *err)
{
    return drv_sandbox_destroy(g->cfg->run_dir, p->uid, &g->cni, err);
}

/* ---- containers ---- */

drv_err_t pod_host_rootfs_dir(const pod_t *p, const ctr_t *c, char *out, size_t outsz,
                              drv_error_t *err)
{
    if (drv_fmt(out, outsz, "%s/containers/%s", p->dir, c->name) != DRV_OK)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "%s/containers/%s: path too long", p->dir,
                             c->name);
    return DRV_OK;
}

drv_err_t pod_host_bundle_dir(const pod_host_t *g, const pod_t *p, const ctr_t *c, char *out,
                              size_t outsz, drv_error_t *err)
{
    if (drv_fmt(out, outsz, "%s/bundles/%s/%s", g->cfg->run_dir, p->uid, c->name) != DRV_OK)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "%s/bundles/%s/%s: path too long",
                             g->cfg->run_dir, p->uid, c->name);
    return DRV_OK;
}

void pod_host_bundles_remove(const pod_host_t *g, const pod_t *p)
{
    char dir[PATH_MAX];
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_fmt(dir, sizeof(dir), "%s/bundles/%s", g->cfg->run_dir, p->uid) != DRV_OK)
        (void)drv_error_set(&err, DRV_ERR_TOOBIG, 0, "%s/bundles/%s: path too long",
                            g->cfg->run_dir, p->uid);
    else
        (void)!drv_fsat_remove_tree_path(dir, NULL, &err);
    if (err.code != DRV_OK)
        drv_log_warn("cannot remove pod bundles", "pod=%s/%s error=\"%s\"", p->ns, p->name,
                     drv_error_msg(&err));
}

drv_err_t pod_host_container_prepare(pod_host_t *g, drv_store_t *store, pod_t *p, ctr_t *c,
                                     const char *bundle, bool cgroups, const cJSON *configmaps,
                                     const cJSON *secrets, drv_error_t *err)
{
    char rootdir[600];
    drv_err_t r = pod_host_rootfs_dir(p, c, rootdir, sizeof(rootdir), err);
    if (r != DRV_OK)
        return r;
    drv_image_t *img = NULL;
    r = drv_store_resolve(store, drv_json_str(c->spec, "image"), &img, err);
    if (r != DRV_OK)
        return r;
    bool adopted = false;
    r = drv_rootfs_mount((const char *const *)img->layer_dirs, img->n_layers, rootdir, &adopted,
                         err);
    if (r != DRV_OK) {
        drv_image_free(img);
        return r;
    }
    char rootfs[700], volumes[600], resolv[600], hosts[600], hostname[600], cgpath[300];
    if (drv_rootfs_path(rootdir, rootfs, sizeof(rootfs)) != DRV_OK ||
        drv_fmt(volumes, sizeof(volumes), "%s/volumes", p->dir) != DRV_OK ||
        drv_fmt(resolv, sizeof(resolv), "%s/etc/resolv.conf", p->dir) != DRV_OK ||
        drv_fmt(hosts, sizeof(hosts), "%s/etc/hosts", p->dir) != DRV_OK ||
        drv_fmt(hostname, sizeof(hostname), "%s/etc/hostname", p->dir) != DRV_OK ||
        drv_fmt(cgpath, sizeof(cgpath), "/drover/pod-%s/%s", p->uid, c->name) != DRV_OK)
        r = drv_error_set(err, DRV_ERR_TOOBIG, 0, "container %s of pod %s/%s: path too long",
                          c->name, p->ns, p->name);
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(p->obj, "spec");
    bool hostnet = drv_json_true(spec, "hostNetwork");
    drv_spec_input_t in = {
        .pod = p->obj,
        .container = c->spec,
        .is_init = c->init,
        .image = &img->config,
        .rootfs = rootfs,
        .netns_path = p->netns[0] ? p->netns : NULL,
        .ipcns_path = p->ipcns[0] ? p->ipcns : NULL,
        .utsns_path = p->utsns[0] ? p->utsns : NULL,
        .configmaps = configmaps,
        .secrets = secrets,
        .fields = {.pod_name = p->name,
                   .pod_namespace = p->ns,
                   .pod_uid = p->uid,
                   .node_name = g->cfg->node_name,
                   .pod_ip = p->pod_ip,
                   .host_ip = g->host_ip},
        .volumes_dir = volumes,
        .resolv_conf = resolv,
        .hosts = hostnet ? NULL : hosts,
        .hostname_file = hostnet ? NULL : hostname,
        .cgroups_path = cgroups ? cgpath : NULL,
        .pids_limit = g->cfg->default_pids_limit,
        .seccomp = g->seccomp,
        .seccomp_path = g->seccomp ? NULL : g->cfg->seccomp_profile,
    };
    cJSON *config = NULL;
    if (r == DRV_OK)
        r = drv_spec_build(&in, &config, err);
    drv_image_free(img);
    if (r != DRV_OK) {
        drv_error_t e2 = DRV_ERROR_INIT;
        (void)!drv_rootfs_unmount(rootdir, true, &e2);
        return r;
    }
    /* The config holds the env, Secret values included: wiped from memory once written. */
    char *text = cJSON_Print(config);
    pod_secret_wipe_delete(config);
    char path[800];
    if (drv_fmt(path, sizeof(path), "%s/config.json", bundle) != DRV_OK)
        r = drv_error_set(err, DRV_ERR_TOOBIG, 0, "%s/config.json: path too long", bundle);
    else
        r = text ? drv_file_write_replace(path, text, strlen(text), 0600, err) : DRV_ERR_NOMEM;
    if (text)
        drv_pki_wipe_free(text, strlen(text));
    /* Older agents kept config.json next to the rootfs, on disk: it goes. */
    if (drv_fmt(path, sizeof(path), "%s/config.json", rootdir) == DRV_OK && unlink(path) != 0 &&
        errno != ENOENT)
        drv_log_warn("cannot remove an old bundle config", "path=%s errno=%d", path, errno);
    return r;
}

drv_err_t pod_host_container_release(pod_host_t *g, pod_t *p, ctr_t *c, drv_error_t *err)
{
    char rootdir[600];
    drv_err_t r = pod_host_rootfs_dir(p, c, rootdir, sizeof(rootdir), err);
    if (r != DRV_OK)
        return r;
    return drv_rootfs_unmount(rootdir, true, err);
}

/* ---- probes ---- */

bool pod_host_container_oom_killed(const pod_t *p, const ctr_t *c)
{
    char path[512];
    int n = snprintf(path, sizeof(path), "/sys/fs/cgroup/drover/pod-%s/%s/memory.events", p->uid,
                     c->name);
    if (n < 0 || (size_t)n >= sizeof(path))
        return false;
    _cleanup_free_ char *text = NULL;
    if (drv_file_read_capped(path, 4096, &text, NULL, NULL) != DRV_OK)
        return false;
    for (const char *l = text; l != NULL && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
        if (strncmp(l, "oom_kill ", 9) == 0)
            return l[9] >= '1' && l[9] <= '9';
    }
    return false;
}

drv_err_t pod_host_set_crun(pod_host_t *g, const char *path, const char *root, bool cgroups,
                            drv_error_t *err)
{
    if (drv_fmt(g->crun_path, sizeof(g->crun_path), "%s", path) != DRV_OK ||
        drv_fmt(g->crun_root, sizeof(g->crun_root), "%s", root) != DRV_OK)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "crun %s --root %s: path too long", path,
                             root);
    g->crun_cgroups = cgroups;
    return DRV_OK;
}

void pod_host_probes_reset(pod_host_t *g, ctr_t *c, long long now)
{
    if (!c->probes_loaded) {
        drv_error_t err = DRV_ERROR_INIT;
        /* The model validated the probes already; a failure here leaves the container
         * without probes rather than without a chance to run. */
        if (drv_probe_state_init(&c->probe, c->spec, &err) != DRV_OK) {
            drv_log_warn("probes ignored", "container=%s error=\"%s\"", c->id, drv_error_msg(&err));
            memset(&c->probe, 0, sizeof(c->probe));
        }
        c->probes_loaded = true;
    }
    drv_probe_state_container_started(&c->probe, now);
    c->ready = drv_probe_state_ready(&c->probe);
    c->started = drv_probe_state_started(&c->probe);
    memset(c->probe_detail, 0, sizeof(c->probe_detail));
}

void pod_host_probes_cancel(pod_host_t *g, ctr_t *c)
{
    if (g->prober)
        for (int k = 0; k < DRV_PROBE_KINDS; k++)
            drv_prober_cancel(g->prober, &c->pctx[k]);
    drv_probe_state_container_stopped(&c->probe);
    c->ready = false;
}

void pod_host_probes_free(pod_host_t *g, ctr_t *c)
{
    pod_host_probes_cancel(g, c);
    pod_host_hook_cancel(g, c);
}

static void on_probe(void *ctx, drv_probe_result_t result, const char *detail)
{
    pod_probe_ctx_t *pc = ctx;
    ctr_t *c = pc->ctr;
    pod_host_t *g = pc->host;
    unsigned ev = drv_probe_state_result(&c->probe, pc->kind, pc->token, result, drv_now_ms());
    if (result == DRV_PROBE_FAILURE) {
        drv_fmt_cut(c->probe_detail[pc->kind], sizeof(c->probe_detail[pc->kind]), "%s", detail);
        drv_log_info("probe failed", "pod=%s/%s container=%s probe=%s detail=\"%.120s\"",
                     pc->pod->ns, pc->pod->name, c->name, drv_probe_kind_name(pc->kind), detail);
    } else if (result == DRV_PROBE_SUCCESS) {
        c->probe_detail[pc->kind][0] = '\0';
    }
    if (ev & DRV_PROBE_EV_READY)
        c->ready = drv_probe_state_ready(&c->probe);
    if (ev & DRV_PROBE_EV_STARTED)
        c->started = true;
    if (ev & DRV_PROBE_EV_RESTART) {
        c->restart_requested = true;
        const cJSON *pspec =
            drv_json_get(c->spec, pc->kind == DRV_PROBE_STARTUP ? "startupProbe" : "livenessProbe");
        c->restart_grace_s =
            drv_json_int_at(pspec, "terminationGracePeriodSeconds", 1, INT32_MAX, -1);
    }
    if (ev)
        drv_supervisor_mark_dirty(g->sv);
}

/* The argv prefix of `crun exec` for exec probes and hooks, pointing into *crun; 0 when the
 * paths do not fit. */
static size_t crun_prefix(const pod_host_t *g, drv_crun_t *crun, char *prefix[8])
{
    _Static_assert(sizeof(crun->path) >= sizeof(g->crun_path) &&
                       sizeof(crun->root) >= sizeof(g->crun_root),
                   "the crun paths kept for probes fit drv_crun_t");
    if (drv_fmt(crun->path, sizeof(crun->path), "%s", g->crun_path) != DRV_OK ||
        drv_fmt(crun->root, sizeof(crun->root), "%s", g->crun_root) != DRV_OK)
        return 0;
    crun->cgroups = g->crun_cgroups;
    return drv_crun_argv_prefix(crun, prefix);
}

/* The prober (and with it libcurl and its TLS library) starts with the first probe: an agent
 * whose pods have no probes never pays for them. */
static bool any_probes(pod_t **pods, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < pods[i]->n_ctrs; j++)
            if (pods[i]->ctrs[j].state == CS_RUNNING &&
                drv_probe_state_next_due(&pods[i]->ctrs[j].probe) != INT64_MAX)
                return true;
    return false;
}

void pod_host_probes_tick(pod_host_t *g, struct drv_supervisor *sv, long long now)
{
    pod_t **pods0;
    size_t n0 = drv_supervisor_pods(sv, &pods0);
    if (!g->prober) {
        drv_error_t err = DRV_ERROR_INIT;
        if (!any_probes(pods0, n0))
            return;
        if (drv_prober_new(NULL, &g->prober, &err) != DRV_OK) {
            drv_log_error("cannot start the prober", "error=\"%s\"", drv_error_msg(&err));
            return;
        }
    }
    drv_prober_process(g->prober, now);
    pod_t **pods;
    size_t n = drv_supervisor_pods(sv, &pods);
    char *prefix[8];
    drv_crun_t crun;
    size_t np = crun_prefix(g, &crun, prefix);
    if (!np)
        return;
    for (size_t i = 0; i < n; i++) {
        pod_t *p = pods[i];
        if (p->terminating)
            continue;
        const char *ip = p->pod_ip[0] ? p->pod_ip : "127.0.0.1";
        for (size_t j = 0; j < p->n_ctrs; j++) {
            ctr_t *c = &p->ctrs[j];
            drv_probe_kind_t kind;
            uint32_t token;
            if (c->state != CS_RUNNING)
                continue;
            while (drv_probe_state_next(&c->probe, now, &kind, &token)) {
                pod_probe_ctx_t *pc = &c->pctx[kind];
                *pc = (pod_probe_ctx_t){p, c, kind, token, g};
                drv_prober_exec_t ex = {.argv_prefix = (const char *const *)prefix,
                                        .n_prefix = np,
                                        .container_id = c->id};
                drv_error_t err = DRV_ERROR_INIT;
                if (drv_prober_start(g->prober, drv_probe_spec_json(c->spec, kind), c->spec, ip,
                                     &ex, on_probe, pc, &err) != DRV_OK) {
                    drv_log_warn("probe not run", "container=%s probe=%s error=\"%s\"", c->id,
                                 drv_probe_kind_name(kind), drv_error_msg(&err));
                    drv_probe_state_result(&c->probe, kind, token, DRV_PROBE_UNKNOWN, now);
                }
            }
        }
    }
}

/* ---- lifecycle hooks ---- */

static void on_hook(void *ctx, drv_probe_result_t result, const char *detail)
{
    pod_probe_ctx_t *pc = ctx;
    ctr_t *c = pc->ctr;
    pod_host_t *g = pc->host;
    if (c->hook == HOOK_NONE || c->hook_result != HOOK_PENDING)
        return;
    c->hook_result = result == DRV_PROBE_SUCCESS ? HOOK_OK : HOOK_FAILED;
    drv_fmt_cut(c->hook_detail, sizeof(c->hook_detail), "%s", detail);
    drv_supervisor_mark_dirty(g->sv);
}

drv_err_t pod_host_hook_start(pod_host_t *g, pod_t *p, ctr_t *c, const cJSON *handler,
                              int64_t timeout_ms, drv_error_t *err)
{
    if (!g->prober && drv_prober_new(NULL, &g->prober, err) != DRV_OK)
        return drv_error_wrap(err, "lifecycle hook");
    char *prefix[8];
    drv_crun_t crun;
    size_t np = crun_prefix(g, &crun, prefix);
    if (!np)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "lifecycle hook: crun paths too long");
    drv_prober_exec_t ex = {
        .argv_prefix = (const char *const *)prefix, .n_prefix = np, .container_id = c->id};
    c->hctx = (pod_probe_ctx_t){p, c, DRV_PROBE_LIVENESS, 0, g};
    const char *ip = p->pod_ip[0] ? p->pod_ip : "127.0.0.1";
    return drv_prober_start_hook(g->prober, handler, c->spec, ip, &ex, timeout_ms, on_hook,
                                 &c->hctx, err);
}

void pod_host_hook_cancel(pod_host_t *g, ctr_t *c)
{
    if (g->prober)
        drv_prober_cancel(g->prober, &c->hctx);
}

bool pod_host_probe_child_exited(pod_host_t *g, pid_t pid, int status)
{
    return g->prober && drv_prober_child_exited(g->prober, pid, status);
}

void pod_host_probe_status(const ctr_t *c, cJSON *cs)
{
    cJSON *probes = NULL;
    for (int k = 0; k < DRV_PROBE_KINDS; k++) {
        if (!c->probe_detail[k][0])
            continue;
        if (!probes)
            probes = cJSON_AddObjectToObject(cs, "probeFailures");
        cJSON_AddStringToObject(probes, drv_probe_kind_name((drv_probe_kind_t)k),
                                c->probe_detail[k]);
    }
}

int pod_host_wait(pod_host_t *g, int *fds, short *revents, unsigned nfds, int timeout_ms)
{
    if (nfds > POD_HOST_WAIT_FDS)
        nfds = POD_HOST_WAIT_FDS;
    if (!g->prober) {
        struct pollfd pf[POD_HOST_WAIT_FDS];
        for (unsigned i = 0; i < nfds; i++)
            pf[i] = (struct pollfd){fds[i], POLLIN, 0};
        int n = poll(pf, nfds, timeout_ms);
        for (unsigned i = 0; i < nfds; i++)
            revents[i] = n > 0 ? pf[i].revents : 0;
        return n;
    }
    struct curl_waitfd w[POD_HOST_WAIT_FDS];
    for (unsigned i = 0; i < nfds; i++)
        w[i] = (struct curl_waitfd){fds[i], CURL_WAIT_POLLIN, 0};
    int nready = 0;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_prober_wait(g->prober, w, nfds, timeout_ms, &nready, &err) != DRV_OK)
        return -1;
    for (unsigned i = 0; i < nfds; i++)
        revents[i] = (w[i].revents & CURL_WAIT_POLLIN) ? POLLIN : 0;
    return nready;
}

/* ---- host ---- */

/* copytruncate: the container holds the log open with O_APPEND, so after the copy and the
 * truncation its next write lands at the start of the fresh file. */
void pod_host_rotate_log(const char *path, uint64_t max_bytes, unsigned max_files)
{
    struct stat st;
    if (stat(path, &st) != 0 || (uint64_t)st.st_size <= max_bytes)
        return;
    char from[800], to[800];
    /* A name that does not fit keeps no rotated copy; the log is truncated all the same. */
    for (unsigned i = max_files; i > 1; i--) {
        if (drv_fmt(from, sizeof(from), "%s.%u", path, i - 1) == DRV_OK &&
            drv_fmt(to, sizeof(to), "%s.%u", path, i) == DRV_OK)
            rename(from, to);
    }
    if (max_files > 0 && drv_fmt(to, sizeof(to), "%s.1", path) == DRV_OK) {
        _cleanup_close_ int in = open(path, O_RDONLY | O_CLOEXEC);
        _cleanup_close_ int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
        if (in < 0 || out < 0)
            return;
        char buf[65536];
        ssize_t n;
        uint64_t copied = 0;
        while (copied < (uint64_t)st.st_size && (n = read(in, buf, sizeof(buf))) > 0) {
            if (write(out, buf, (size_t)n) != n)
                break;
            copied += (uint64_t)n;
        }
    }
    if (truncate(path, 0) != 0)
        drv_log_warn("cannot truncate container log", "path=%s errno=%d", path, errno);
}

/* Usage without cgroups: every process whose PID namespace is a container's is counted to
 * that container's pod (resident memory, CPU time from /proc). */
void pod_host_sample_usage(pod_t **pods, size_t n, long long now)
{
    long page = sysconf(_SC_PAGESIZE), hz = sysconf(_SC_CLK_TCK);
    struct map {
        ino_t ns;
        pod_t *pod;
    } map[512];
    size_t nm = 0;
    for (size_t i = 0; i < n; i++) {
        pods[i]->usage_mem = 0;
        for (size_t j = 0; j < pods[i]->n_ctrs && nm < 512; j++) {
            if (pods[i]->ctrs[j].state != CS_RUNNING || pods[i]->ctrs[j].pid <= 0)
                continue;
            char path[64];
            struct stat st;
            if (drv_fmt(path, sizeof(path), "/proc/%d/ns/pid", (int)pods[i]->ctrs[j].pid) ==
                    DRV_OK &&
                stat(path, &st) == 0)
                map[nm++] = (struct map){st.st_ino, pods[i]};
        }
    }
    uint64_t ticks[256] = {0};
    _cleanup_closedir_ DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && nm && (e = readdir(d))) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        char path[300];
        struct stat st;
        if (drv_fmt(path, sizeof(path), "/proc/%s/ns/pid", e->d_name) != DRV_OK ||
            stat(path, &st) != 0)
            continue;
        pod_t *pod = NULL;
        for (size_t k = 0; k < nm && !pod; k++)
            if (map[k].ns == st.st_ino)
                pod = map[k].pod;
        if (!pod)
            continue;
        char buf[1024];
        if (drv_fmt(path, sizeof(path), "/proc/%s/statm", e->d_name) != DRV_OK)
            continue;
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        unsigned long size = 0, resident = 0;
        if (f && fscanf(f, "%lu %lu", &size, &resident) == 2)
            pod->usage_mem += (int64_t)resident * page;
        if (drv_fmt(path, sizeof(path), "/proc/%s/stat", e->d_name) != DRV_OK)
            continue;
        _cleanup_fclose_ FILE *s = fopen(path, "re");
        if (s && fgets(buf, sizeof(buf), s)) {
            const char *rp = strrchr(buf, ')');
            unsigned long ut = 0, stt = 0;
            /* Fields after the command: state ppid pgrp session tty tpgid flags minflt cminflt
             * majflt cmajflt utime stime. */
            if (rp && sscanf(rp + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
                             &stt) == 2) {
                for (size_t i = 0; i < n && i < 256; i++)
                    if (pods[i] == pod)
                        ticks[i] += ut + stt;
            }
        }
    }
    for (size_t i = 0; i < n && i < 256; i++) {
        pod_t *p = pods[i];
        if (p->cpu_sampled_at && now > p->cpu_sampled_at && ticks[i] >= p->cpu_ticks_prev)
            p->usage_cpu_m = (int64_t)((ticks[i] - p->cpu_ticks_prev) * 1000 * 1000 / (uint64_t)hz /
                                       (uint64_t)(now - p->cpu_sampled_at));
        p->cpu_ticks_prev = ticks[i];
        p->cpu_sampled_at = now;
    }
}

static const char *go_arch(const char *machine)
{
    if (!strcmp(machine, "aarch64") || !strcmp(machine, "arm64"))
        return "arm64";
    if (!strncmp(machine, "armv", 4) || !strcmp(machine, "arm"))
        return "arm";
    if (!strcmp(machine, "x86_64"))
        return "amd64";
    if (!strcmp(machine, "i686") || !strcmp(machine, "i386"))
        return "386";
    return machine;
}

/* A quantity of the node's capacity (a number, always short): added only when it fits. */
static void DRV_PRINTF(3, 4) add_quantity(cJSON *o, const char *key, const char *fmt, ...)
{
    char q[64];
    va_list ap;
    va_start(ap, fmt);
    drv_err_t r = drv_vfmt(q, sizeof(q), fmt, ap);
    va_end(ap);
    if (r == DRV_OK)
        cJSON_AddStringToObject(o, key, q);
}

/* The first line of a small file (an id such as /etc/machine-id), into out; "" when unreadable. */
static void first_line(const char *path, char *out, size_t outsz)
{
    _cleanup_free_ char *text = NULL;
    out[0] = '\0';
    if (drv_file_read_capped(path, 4096, &text, NULL, NULL) == DRV_OK)
        drv_fmt_cut(out, outsz, "%.*s", (int)strcspn(text, "\r\n"), text);
}

cJSON *pod_host_node_status(const drv_agent_config_t *cfg)
{
    cJSON *n = cJSON_CreateObject();
    cJSON_AddStringToObject(n, "name", cfg->node_name);
    struct utsname u;
    uname(&u);
    struct sysinfo si;
    sysinfo(&si);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    uint64_t mem = (uint64_t)si.totalram * si.mem_unit;
    cJSON *cap = cJSON_AddObjectToObject(n, "capacity");
    add_quantity(cap, "cpu", "%ld", cpus);
    add_quantity(cap, "memory", "%lluKi", (unsigned long long)(mem / 1024));
    cJSON_AddStringToObject(cap, "pods", "110");
    /* Allocatable keeps back what the system and the agent need: 100m CPU and 5% of memory
     * (at least 64 MiB), like kubelet's system-reserved. */
    cJSON *alloc = cJSON_AddObjectToObject(n, "allocatable");
    add_quantity(alloc, "cpu", "%ldm", cpus * 1000 - 100);
    uint64_t reserve = mem / 20 > (64u << 20) ? mem / 20 : (64u << 20);
    add_quantity(alloc, "memory", "%lluKi",
                 (unsigned long long)((mem > reserve ? mem - reserve : 0) / 1024));
    cJSON_AddStringToObject(alloc, "pods", "110");
    cJSON *info = cJSON_AddObjectToObject(n, "nodeInfo");
    cJSON_AddStringToObject(info, "architecture", go_arch(u.machine));
    cJSON_AddStringToObject(info, "operatingSystem", "linux");
    cJSON_AddStringToObject(info, "kernelVersion", u.release);
    _cleanup_free_ char *osr = NULL;
    char pretty[128] = "Linux";
    if (drv_file_read_capped("/etc/os-release", 64 * 1024, &osr, NULL, NULL) == DRV_OK) {
        const char *pn = strstr(osr, "PRETTY_NAME=\"");
        if (pn) {
            pn += 13;
            size_t l = strcspn(pn, "\"\n");
            drv_fmt_cut(pretty, sizeof(pretty), "%.*s", (int)(l < 127 ? l : 127), pn);
        }
    }
    cJSON_AddStringToObject(info, "osImage", pretty);
    cJSON_AddStringToObject(info, "agentVersion", "drover-agent/0.1.0");
    /* The rest of Kubernetes' NodeSystemInfo, which clients (python3-kubernetes) require. */
    char id[128];
    first_line("/etc/machine-id", id, sizeof(id));
    cJSON_AddStringToObject(info, "machineID", id);
    first_line("/sys/class/dmi/id/product_uuid", id, sizeof(id));
    if (!id[0]) /* boards without DMI (a Raspberry Pi): the SoC's serial number */
        first_line("/sys/firmware/devicetree/base/serial-number", id, sizeof(id));
    cJSON_AddStringToObject(info, "systemUUID", id);
    first_line("/proc/sys/kernel/random/boot_id", id, sizeof(id));
    cJSON_AddStringToObject(info, "bootID", id);
    cJSON_AddStringToObject(info, "containerRuntimeVersion", "crun");
    cJSON_AddStringToObject(info, "kubeletVersion", "v1.30.0+drover");
    cJSON_AddStringToObject(info, "kubeProxyVersion", "");
    cJSON *conds = cJSON_AddArrayToObject(n, "conditions");
    cJSON *ready = cJSON_CreateObject();
    cJSON_AddStringToObject(ready, "type", "Ready");
    cJSON_AddStringToObject(ready, "status", "True");
    cJSON_AddItemToArray(conds, ready);
    return n;
}

void pod_host_internal_ip(const char *skip_if, const char *skip_if2, char *out, size_t outsz)
{
    out[0] = '\0';
    struct ifaddrs *ifa = NULL;
    if (getifaddrs(&ifa) != 0)
        return;
    for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || (i->ifa_flags & IFF_LOOPBACK) ||
            !(i->ifa_flags & IFF_UP) || (skip_if && !strcmp(i->ifa_name, skip_if)) ||
            (skip_if2 && !strcmp(i->ifa_name, skip_if2)))
            continue;
        const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)i->ifa_addr;
        if (inet_ntop(AF_INET, &sin->sin_addr, out, (socklen_t)outsz))
            break;
        out[0] = '\0';
    }
    freeifaddrs(ifa);
}
