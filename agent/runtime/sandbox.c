/* Pod sandboxes: namespaces kept alive by bind mounts under <run_dir>/pods/<uid>/ns, attached
 * to the pod network with CNI, recorded in sandbox.json (replaced by rename, never torn; on
 * the run directory's tmpfs, which an agent crash leaves and a reboot empties, so no fsync)
 * so that an agent that restarts (or crashed half-way) can find, check or finish removing
 * every sandbox. */
#include "runtime/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/nsfs.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "drover/cleanup.h"
#include "drover/file.h"
#include "drover/fmt.h"
#include "drover/json.h"
#include "drover/log.h"
#include "drover/names.h"

#define RECORD_VERSION 1
#define HOSTNAME_MAX 63

typedef struct sb_paths {
    char pods[PATH_MAX];
    char dir[PATH_MAX];
    char nsdir[PATH_MAX];
    char net[PATH_MAX];
    char ipc[PATH_MAX];
    char uts[PATH_MAX];
    char state[PATH_MAX];
} sb_paths_t;

/* sandbox.json, parsed and checked. Strings point into root. */
typedef struct record {
    cJSON *root;
    bool ready;
    bool host_network;
    bool host_ipc;
    const char *pod_name;
    const char *pod_namespace;
    const char *hostname;    /* NULL if none */
    const cJSON *conflist;   /* NULL if none */
    const cJSON *cni_result; /* NULL if none */
    drv_cni_port_t ports[DRV_CNI_PORTS_MAX];
    size_t nports;
} record_t;

static void record_free(record_t *r)
{
    cJSON_Delete(r->root);
    r->root = NULL;
}
#define _cleanup_record_ __attribute__((cleanup(record_free)))

/* ---- names and paths ---- */

static bool valid_uid(const char *s)
{
    return drv_name_runtime_id(s, DRV_SANDBOX_UID_MAX);
}

/* The paths of the sandbox whose directory is dir (<run_dir>/pods/<uid>). */
static drv_err_t paths_of_dir(const char *dir, sb_paths_t *p, drv_error_t *err)
{
    int n[6];
    n[0] = snprintf(p->dir, sizeof(p->dir), "%s", dir);
    n[1] = snprintf(p->nsdir, sizeof(p->nsdir), "%s/ns", dir);
    n[2] = snprintf(p->net, sizeof(p->net), "%s/ns/net", dir);
    n[3] = snprintf(p->ipc, sizeof(p->ipc), "%s/ns/ipc", dir);
    n[4] = snprintf(p->uts, sizeof(p->uts), "%s/ns/uts", dir);
    n[5] = snprintf(p->state, sizeof(p->state), "%s/sandbox.json", dir);
    for (int i = 0; i < 6; i++)
        if (n[i] < 0 || (size_t)n[i] >= PATH_MAX - 32) /* room for ".tmp.<pid>" */
            return drv_error_set(err, DRV_ERR_INVALID, 0, "sandbox: run directory too long");
    return DRV_OK;
}

static drv_err_t paths_of(const char *run_dir, const char *uid, sb_paths_t *p, drv_error_t *err)
{
    if (run_dir == NULL || run_dir[0] != '/')
        return drv_error_set(err, DRV_ERR_INVALID, 0, "sandbox: run directory must be absolute");
    if (!valid_uid(uid))
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "sandbox: pod uid \"%.80s\" must be 1-%d letters, digits, '_', '.' "
                             "or '-', starting with a letter or digit",
                             uid ? uid : "", DRV_SANDBOX_UID_MAX);
    char dir[PATH_MAX];
    int n = snprintf(p->pods, sizeof(p->pods), "%s/pods", run_dir);
    int m = snprintf(dir, sizeof(dir), "%s/pods/%s", run_dir, uid);
    if (n < 0 || (size_t)n >= sizeof(p->pods) || m < 0 || (size_t)m >= sizeof(dir))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "sandbox: run directory too long");
    return paths_of_dir(dir, p, err);
}

/* The hostname the kubelet would give: spec.hostname, else the pod name cut to 63
 * characters without a trailing '-' or '.'. */
static drv_err_t pod_hostname(const drv_sandbox_opts_t *o, char out[HOSTNAME_MAX + 1],
                              drv_error_t *err)
{
    char why[160];
    if (o->hostname && o->hostname[0]) {
        if (!drv_name_dns_label(o->hostname, why, sizeof(why)))
            return drv_error_set(err, DRV_ERR_INVALID, 0, "hostname: %s", why);
        if (drv_fmt(out, HOSTNAME_MAX + 1, "%s", o->hostname) != DRV_OK)
            return drv_error_set(err, DRV_ERR_INVALID, 0, "hostname: too long");
        return DRV_OK;
    }
    size_t n = strlen(o->pod_name);
    if (n > HOSTNAME_MAX)
        n = HOSTNAME_MAX;
    while (n > 0 && (o->pod_name[n - 1] == '-' || o->pod_name[n - 1] == '.'))
        n--;
    if (n == 0)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "hostname: pod name \"%.80s\" leaves no hostname", o->pod_name);
    memcpy(out, o->pod_name, n);
    out[n] = '\0';
    return DRV_OK;
}

/* Is path a mounted namespace of the given CLONE_NEW* type? */
static bool is_ns_mount(const char *path, int type)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return false;
    int t = ioctl(fd, NS_GET_NSTYPE);
    return t == type;
}

/* ---- the record ---- */

static drv_err_t write_record(const sb_paths_t *p, const drv_sandbox_opts_t *o,
                              const char *hostname, const cJSON *conflist,
                              const drv_cni_result_t *res, bool ready, drv_error_t *err)
{
    _cleanup_cjson_ cJSON *root = cJSON_CreateObject();
    bool ok = cJSON_AddNumberToObject(root, "version", RECORD_VERSION) &&
              cJSON_AddStringToObject(root, "state", ready ? "ready" : "creating") &&
              cJSON_AddStringToObject(root, "podUID", o->pod_uid) &&
              cJSON_AddStringToObject(root, "podName", o->pod_name) &&
              cJSON_AddStringToObject(root, "podNamespace", o->pod_namespace) &&
              cJSON_AddBoolToObject(root, "hostNetwork", o->host_network) &&
              cJSON_AddBoolToObject(root, "hostIPC", o->host_ipc);
    if (ok && hostname)
        ok = cJSON_AddStringToObject(root, "hostname", hostname) != NULL;
    cJSON *maps = cJSON_AddArrayToObject(root, "portMappings");
    ok = ok && maps;
    for (size_t i = 0; ok && !o->host_network && i < o->nports; i++) {
        const drv_cni_port_t *pm = &o->ports[i];
        cJSON *m = cJSON_CreateObject();
        if (m == NULL || !cJSON_AddItemToArray(maps, m)) {
            cJSON_Delete(m);
            ok = false;
            break;
        }
        ok = cJSON_AddNumberToObject(m, "containerPort", pm->container_port) &&
             cJSON_AddNumberToObject(m, "hostPort", pm->host_port) &&
             cJSON_AddStringToObject(m, "protocol", pm->protocol ? pm->protocol : "TCP") &&
             cJSON_AddStringToObject(m, "hostIP", pm->host_ip ? pm->host_ip : "");
    }
    if (ok && conflist) {
        cJSON *dup = cJSON_Duplicate(conflist, true);
        ok = dup && cJSON_AddItemToObject(root, "cniConfList", dup);
        if (!ok)
            cJSON_Delete(dup);
    }
    if (ok && res && res->json) {
        cJSON *r = cJSON_Parse(res->json);
        ok = r && cJSON_AddItemToObject(root, "cniResult", r);
        if (!ok)
            cJSON_Delete(r);
        ok = ok && cJSON_AddStringToObject(root, "podIP", res->ip);
    }
    _cleanup_free_ char *text = ok ? cJSON_Print(root) : NULL;
    if (text == NULL)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "writing %s", p->state);
    /* On the run directory's tmpfs: replaced by rename, an fsync would only cost time. */
    return drv_file_write_replace(p->state, text, strlen(text), 0600, err);
}

/* Reads and checks sandbox.json. uid may be NULL (not compared). DRV_ERR_NOTFOUND if there is
 * none, DRV_ERR_INVALID if it is corrupt (with what is wrong). */
static drv_err_t read_record(const sb_paths_t *p, const char *uid, record_t *rec, drv_error_t *err)
{
    memset(rec, 0, sizeof(*rec));
    _cleanup_free_ char *data = NULL;
    size_t len = 0;
    drv_err_t rc = drv_file_read_capped(p->state, DRV_SANDBOX_STATE_MAX, &data, &len, err);
    if (rc == DRV_ERR_TOOBIG)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: over %u bytes", p->state,
                             DRV_SANDBOX_STATE_MAX);
    if (rc != DRV_OK)
        return rc;
    rec->root = cJSON_ParseWithLength(data, len);
    cJSON *root = rec->root;
    if (root == NULL || !cJSON_IsObject(root))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: not a JSON object", p->state);
    int64_t version = 0;
    const char *state = NULL, *puid = NULL;
    const cJSON *maps = NULL;
    const drv_json_field_t fields[] = {
        {.key = "version",
         .type = DRV_JSON_T_INT,
         .need = DRV_JSON_REQUIRED,
         .dest = &version,
         .min = RECORD_VERSION,
         .max = RECORD_VERSION},
        {.key = "state", .type = DRV_JSON_T_STRING, .need = DRV_JSON_REQUIRED, .dest = &state},
        {.key = "podUID", .type = DRV_JSON_T_STRING, .need = DRV_JSON_REQUIRED, .dest = &puid},
        {.key = "podName",
         .type = DRV_JSON_T_STRING,
         .need = DRV_JSON_REQUIRED,
         .dest = &rec->pod_name},
        {.key = "podNamespace",
         .type = DRV_JSON_T_STRING,
         .need = DRV_JSON_REQUIRED,
         .dest = &rec->pod_namespace},
        {.key = "hostname", .type = DRV_JSON_T_STRING, .dest = &rec->hostname},
        {.key = "hostNetwork",
         .type = DRV_JSON_T_BOOL,
         .need = DRV_JSON_REQUIRED,
         .dest = &rec->host_network},
        {.key = "hostIPC",
         .type = DRV_JSON_T_BOOL,
         .need = DRV_JSON_REQUIRED,
         .dest = &rec->host_ipc},
        {.key = "portMappings", .type = DRV_JSON_T_ARRAY, .dest = &maps},
        {.key = "cniConfList", .type = DRV_JSON_T_OBJECT, .dest = &rec->conflist},
        {.key = "cniResult", .type = DRV_JSON_T_OBJECT, .dest = &rec->cni_result},
    };
    if (drv_json_read_table(root, NULL, fields, DRV_JSON_TABLE_LEN(fields), 0, err) != DRV_OK)
        return drv_error_wrap(err, "%s", p->state);
    if (strcmp(state, "ready") && strcmp(state, "creating"))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: state: unknown \"%.40s\"", p->state,
                             state);
    rec->ready = !strcmp(state, "ready");
    if (uid && strcmp(puid, uid))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: podUID \"%.80s\" is another pod's",
                             p->state, puid);

    if (cJSON_GetArraySize(maps) > DRV_CNI_PORTS_MAX)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "%s: portMappings: must be an array of at most %d", p->state,
                             DRV_CNI_PORTS_MAX);
    const cJSON *m;
    cJSON_ArrayForEach(m, maps)
    {
        drv_cni_port_t *port = &rec->ports[rec->nports];
        int64_t cp = 0, hp = 0;
        const drv_json_field_t pf[] = {
            {.key = "containerPort",
             .type = DRV_JSON_T_INT,
             .need = DRV_JSON_REQUIRED,
             .dest = &cp,
             .min = 1,
             .max = 65535},
            {.key = "hostPort",
             .type = DRV_JSON_T_INT,
             .need = DRV_JSON_REQUIRED,
             .dest = &hp,
             .min = 1,
             .max = 65535},
            {.key = "protocol", .type = DRV_JSON_T_STRING, .dest = &port->protocol},
            {.key = "hostIP", .type = DRV_JSON_T_STRING, .dest = &port->host_ip},
        };
        char path[64];
        drv_fmt_cut(path, sizeof(path), "portMappings[%zu]", rec->nports);
        if (drv_json_read_table(m, path, pf, DRV_JSON_TABLE_LEN(pf), 0, err) != DRV_OK)
            return drv_error_wrap(err, "%s", p->state);
        port->container_port = (uint16_t)cp;
        port->host_port = (uint16_t)hp;
        rec->nports++;
    }
    drv_error_t perr = DRV_ERROR_INIT;
    if (drv_cni_ports_validate(rec->ports, rec->nports, &perr) != DRV_OK)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: %s", p->state, drv_error_msg(&perr));

    if (!rec->host_network && rec->ready && (!rec->conflist || !rec->cni_result))
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "%s: a ready pod network needs cniConfList and cniResult", p->state);
    if (!rec->host_network && rec->conflist == NULL)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: cniConfList: missing", p->state);
    return DRV_OK;
}

/* ---- namespaces ---- */

enum { STEP_UNSHARE = 1, STEP_HOSTNAME, STEP_LOOPBACK, STEP_MOUNT };

struct ns_report {
    int step;
    int err;
    int index;
};

/* Sets "lo" up in the calling process's network namespace. Async-signal-safe. */
static int loopback_up(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    memcpy(ifr.ifr_name, "lo", 3);
    int rc = ioctl(fd, SIOCGIFFLAGS, &ifr);
    if (rc == 0) {
        ifr.ifr_flags |= IFF_UP;
        rc = ioctl(fd, SIOCSIFFLAGS, &ifr);
    }
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

/* Creates the namespaces in flags in a child that unshares them, sets the hostname, brings
 * loopback up and bind-mounts them onto their files; the mounts keep them alive after the
 * child exits. */
static drv_err_t make_namespaces(const sb_paths_t *p, int flags, const char *hostname,
                                 drv_error_t *err)
{
    static const struct {
        int flag;
        const char *proc;
        const char *name;
    } kinds[] = {{CLONE_NEWNET, "/proc/self/ns/net", "net"},
                 {CLONE_NEWIPC, "/proc/self/ns/ipc", "ipc"},
                 {CLONE_NEWUTS, "/proc/self/ns/uts", "uts"}};
    const char *targets[3] = {p->net, p->ipc, p->uts};
    if (flags == 0)
        return DRV_OK;
    for (int i = 0; i < 3; i++) {
        if (!(flags & kinds[i].flag))
            continue;
        int fd = open(targets[i], O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0400);
        if (fd < 0)
            return drv_error_set(err, DRV_ERR_IO, errno, "create %s", targets[i]);
        close(fd);
    }
    size_t hlen = hostname ? strlen(hostname) : 0;
    int rep[2];
    if (pipe2(rep, O_CLOEXEC) < 0)
        return drv_error_set(err, DRV_ERR_IO, errno, "pipe");
    pid_t pid = fork();
    if (pid == 0) {
        /* Child: system calls only. */
        struct ns_report r = {0, 0, 0};
        close(rep[0]);
        if (unshare(flags) < 0) {
            r.step = STEP_UNSHARE;
        } else if ((flags & CLONE_NEWUTS) && sethostname(hostname, hlen) < 0) {
            r.step = STEP_HOSTNAME;
        } else if ((flags & CLONE_NEWNET) && loopback_up() < 0) {
            r.step = STEP_LOOPBACK;
        } else {
            for (int i = 0; i < 3; i++) {
                if ((flags & kinds[i].flag) &&
                    mount(kinds[i].proc, targets[i], NULL, MS_BIND, NULL) < 0) {
                    r.step = STEP_MOUNT;
                    r.index = i;
                    break;
                }
            }
        }
        if (r.step != 0) {
            r.err = errno;
            ssize_t w = write(rep[1], &r, sizeof(r));
            (void)w;
            _exit(1);
        }
        _exit(0);
    }
    int fork_errno = errno;
    close(rep[1]);
    if (pid < 0) {
        close(rep[0]);
        return drv_error_set(err, DRV_ERR_IO, fork_errno, "fork");
    }
    struct ns_report r = {0, 0, 0};
    ssize_t got;
    do
        got = read(rep[0], &r, sizeof(r));
    while (got < 0 && errno == EINTR);
    close(rep[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (got == (ssize_t)sizeof(r)) {
        switch (r.step) {
        case STEP_UNSHARE:
            return drv_error_set(err, r.err == EPERM ? DRV_ERR_PERM : DRV_ERR_IO, r.err,
                                 "unshare namespaces");
        case STEP_HOSTNAME:
            return drv_error_set(err, DRV_ERR_IO, r.err, "set hostname \"%s\"", hostname);
        case STEP_LOOPBACK:
            return drv_error_set(err, DRV_ERR_IO, r.err, "bring up loopback");
        default:
            return drv_error_set(err, DRV_ERR_IO, r.err, "bind-mount the %s namespace on %s",
                                 kinds[r.index % 3].name, targets[r.index % 3]);
        }
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return drv_error_set(err, DRV_ERR_IO, 0, "namespace helper failed (status %d)", status);
    return DRV_OK;
}

/* Makes the pods directory a private mount point (bind-mounting it onto itself the first
 * time), like `ip netns` does for /run/netns. */
static drv_err_t ensure_private_mount(const char *pods, drv_error_t *err)
{
    if (mount(NULL, pods, NULL, MS_PRIVATE | MS_REC, NULL) == 0)
        return DRV_OK;
    if (errno != EINVAL)
        return drv_error_set(err, DRV_ERR_IO, errno, "make %s a private mount", pods);
    if (mount(pods, pods, NULL, MS_BIND | MS_REC, NULL) < 0)
        return drv_error_set(err, DRV_ERR_IO, errno, "bind-mount %s onto itself", pods);
    if (mount(NULL, pods, NULL, MS_PRIVATE | MS_REC, NULL) < 0)
        return drv_error_set(err, DRV_ERR_IO, errno, "make %s a private mount", pods);
    return DRV_OK;
}

/* Unmounts (all stacked mounts) and removes one namespace file. */
static drv_err_t remove_ns_file(const char *path, drv_error_t *err)
{
    for (int i = 0; i < 16; i++) {
        if (umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW) == 0)
            continue;
        if (errno == EINVAL || errno == ENOENT)
            break;
        return drv_error_set(err, DRV_ERR_IO, errno, "unmount %s", path);
    }
    if (unlink(path) < 0 && errno != ENOENT)
        return drv_error_set(err, DRV_ERR_IO, errno, "remove %s", path);
    return DRV_OK;
}

/* Removes everything the sandbox owns on disk (no CNI): namespace mounts and files, the
 * record with its temporaries and quarantined copy, then the directory if that left it
 * empty. */
static drv_err_t remove_local(const sb_paths_t *p, drv_error_t *err)
{
    {
        _cleanup_closedir_ DIR *d = opendir(p->nsdir);
        if (d == NULL && errno != ENOENT)
            return drv_error_set(err, DRV_ERR_IO, errno, "open %s", p->nsdir);
        struct dirent *de;
        while (d && (de = readdir(d)) != NULL) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                continue;
            char path[PATH_MAX];
            int n = snprintf(path, sizeof(path), "%s/%s", p->nsdir, de->d_name);
            if (n < 0 || (size_t)n >= sizeof(path))
                continue;
            drv_err_t rc = remove_ns_file(path, err);
            if (rc != DRV_OK)
                return rc;
        }
    }
    if (rmdir(p->nsdir) < 0 && errno != ENOENT)
        return drv_error_set(err, DRV_ERR_IO, errno, "remove %s", p->nsdir);
    {
        _cleanup_closedir_ DIR *d = opendir(p->dir);
        if (d == NULL && errno != ENOENT)
            return drv_error_set(err, DRV_ERR_IO, errno, "open %s", p->dir);
        struct dirent *de;
        while (d && (de = readdir(d)) != NULL) {
            if (strncmp(de->d_name, "sandbox.json", 12) != 0)
                continue;
            char path[PATH_MAX];
            int n = snprintf(path, sizeof(path), "%s/%s", p->dir, de->d_name);
            if (n < 0 || (size_t)n >= sizeof(path))
                continue;
            if (unlink(path) < 0 && errno != ENOENT)
                return drv_error_set(err, DRV_ERR_IO, errno, "remove %s", path);
        }
    }
    /* Other modules may keep files of the pod here; then they remove the directory. */
    if (rmdir(p->dir) < 0 && errno != ENOENT && errno != ENOTEMPTY && errno != EEXIST)
        return drv_error_set(err, DRV_ERR_IO, errno, "remove %s", p->dir);
    return DRV_OK;
}

/* ---- public ---- */

void drv_sandbox_free(drv_sandbox_t *sb)
{
    if (sb == NULL)
        return;
    free(sb->dir);
    free(sb->net_ns);
    free(sb->ipc_ns);
    free(sb->uts_ns);
    free(sb->hostname);
    free(sb->cni_result);
    memset(sb, 0, sizeof(*sb));
}

static char *dup_or_null(const char *s, bool *ok)
{
    if (s == NULL)
        return NULL;
    char *d = strdup(s);
    if (d == NULL)
        *ok = false;
    return d;
}

static drv_err_t fill_result(const sb_paths_t *p, bool host_network, bool host_ipc,
                             const char *hostname, const char *cni_json, const char *ip,
                             drv_sandbox_t *out, drv_error_t *err)
{
    drv_sandbox_t sb;
    memset(&sb, 0, sizeof(sb));
    bool ok = true;
    sb.host_network = host_network;
    sb.host_ipc = host_ipc;
    sb.dir = dup_or_null(p->dir, &ok);
    sb.net_ns = dup_or_null(host_network ? NULL : p->net, &ok);
    sb.ipc_ns = dup_or_null(host_ipc ? NULL : p->ipc, &ok);
    sb.uts_ns = dup_or_null(host_network ? NULL : p->uts, &ok);
    sb.hostname = dup_or_null(host_network ? NULL : hostname, &ok);
    sb.cni_result = dup_or_null(host_network ? NULL : cni_json, &ok);
    if (drv_fmt(sb.pod_ip, sizeof(sb.pod_ip), "%s", (ip && !host_network) ? ip : "") != DRV_OK) {
        drv_sandbox_free(&sb);
        return drv_error_set(err, DRV_ERR_INVALID, 0, "sandbox result: pod IP too long");
    }
    if (!ok) {
        drv_sandbox_free(&sb);
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "sandbox result");
    }
    *out = sb;
    return DRV_OK;
}

static drv_err_t opts_validate(const drv_sandbox_opts_t *o, drv_error_t *err)
{
    char why[160];
    if (o == NULL)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "sandbox: no options");
    if (o->pod_name == NULL || !drv_name_dns_subdomain(o->pod_name, why, sizeof(why)))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "sandbox: pod name: %s",
                             o->pod_name ? why : "required");
    if (o->pod_namespace == NULL || !drv_name_dns_label(o->pod_namespace, why, sizeof(why)))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "sandbox: pod namespace: %s",
                             o->pod_namespace ? why : "required");
    if (o->host_network)
        return DRV_OK;
    if (o->cni == NULL)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "sandbox: CNI configuration required for a pod network");
    drv_err_t rc = drv_cni_config_validate(o->cni, err);
    if (rc == DRV_OK)
        rc = drv_cni_ports_validate(o->ports, o->nports, err);
    return rc;
}

drv_err_t drv_sandbox_create(const drv_sandbox_opts_t *o, drv_sandbox_t *out, drv_error_t *err)
{
    drv_err_t rc = opts_validate(o, err);
    sb_paths_t p;
    if (rc == DRV_OK)
        rc = paths_of(o->run_dir, o->pod_uid, &p, err);
    char hostname[HOSTNAME_MAX + 1] = "";
    if (rc == DRV_OK && !o->host_network)
        rc = pod_hostname(o, hostname, err);
    _cleanup_cjson_ cJSON *conflist = NULL;
    if (rc == DRV_OK && !o->host_network)
        rc = drv_cni_conflist_build(o->cni, o->nports > 0, &conflist, err);
    if (rc != DRV_OK)
        return o && o->pod_name && o->pod_namespace
                   ? drv_error_wrap(err, "sandbox %s/%s", o->pod_namespace, o->pod_name)
                   : rc;

    /* Under the run directory (a tmpfs, gone at reboot): nothing to fsync. */
    rc = drv_file_mkdir_p_unsynced(p.pods, 0700, err);
    if (rc == DRV_OK)
        rc = ensure_private_mount(p.pods, err);
    if (rc == DRV_OK)
        rc = drv_file_mkdir_p_unsynced(p.dir, 0700, err);
    if (rc != DRV_OK)
        return drv_error_wrap(err, "sandbox %s/%s", o->pod_namespace, o->pod_name);
    struct stat st;
    bool exists = lstat(p.state, &st) == 0;
    if (!exists && mkdir(p.nsdir, 0700) < 0) {
        if (errno != EEXIST)
            return drv_error_set(err, DRV_ERR_IO, errno, "sandbox %s/%s: create %s",
                                 o->pod_namespace, o->pod_name, p.nsdir);
        exists = true;
    }
    if (exists)
        return drv_error_set(err, DRV_ERR_EXISTS, 0,
                             "sandbox %s/%s: pod %s has a sandbox already (load or destroy it)",
                             o->pod_namespace, o->pod_name, o->pod_uid);

    /* From here on a failure undoes everything. */
    drv_cni_result_t res;
    memset(&res, 0, sizeof(res));
    bool cni_added = false;
    int flags =
        (o->host_network ? 0 : CLONE_NEWNET | CLONE_NEWUTS) | (o->host_ipc ? 0 : CLONE_NEWIPC);
    drv_cni_pod_t pod = {
        .container_id = o->pod_uid,
        .netns = p.net,
        .ifname = "eth0",
        .pod_name = o->pod_name,
        .pod_namespace = o->pod_namespace,
        .ports = o->ports,
        .nports = o->nports,
    };
    rc = write_record(&p, o, o->host_network ? NULL : hostname, conflist, NULL, false, err);
    if (rc == DRV_OK)
        rc = make_namespaces(&p, flags, hostname, err);
    if (rc == DRV_OK && !o->host_network) {
        rc = drv_cni_add(o->cni, conflist, &pod, &res, err);
        cni_added = rc == DRV_OK;
    }
    if (rc == DRV_OK)
        rc = write_record(&p, o, o->host_network ? NULL : hostname, conflist, &res, true, err);
    if (rc == DRV_OK)
        rc = fill_result(&p, o->host_network, o->host_ipc, hostname, res.json, res.ip, out, err);
    if (rc != DRV_OK) {
        drv_error_t cerr = DRV_ERROR_INIT;
        char q[DRV_ERROR_MSG_MAX + 64];
        if (cni_added && drv_cni_del(o->cni, conflist, &pod, res.json, &cerr) != DRV_OK)
            drv_log_warn("sandbox cleanup: cni DEL failed", "pod=%s error=%s", o->pod_uid,
                         drv_log_quote(drv_error_msg(&cerr), q, sizeof(q)));
        if (remove_local(&p, &cerr) != DRV_OK)
            drv_log_warn("sandbox cleanup failed", "pod=%s error=%s", o->pod_uid,
                         drv_log_quote(drv_error_msg(&cerr), q, sizeof(q)));
        drv_cni_result_free(&res);
        return drv_error_wrap(err, "sandbox %s/%s", o->pod_namespace, o->pod_name);
    }
    drv_log_info("pod sandbox created", "pod=%s/%s uid=%s ip=%s", o->pod_namespace, o->pod_name,
                 o->pod_uid, res.ip[0] ? res.ip : "host");
    drv_cni_result_free(&res);
    return DRV_OK;
}

drv_err_t drv_sandbox_load(const char *run_dir, const char *pod_uid, drv_sandbox_t *out,
                           drv_error_t *err)
{
    sb_paths_t p;
    drv_err_t rc = paths_of(run_dir, pod_uid, &p, err);
    if (rc != DRV_OK)
        return rc;
    _cleanup_record_ record_t rec;
    rc = read_record(&p, pod_uid, &rec, err);
    if (rc == DRV_ERR_NOTFOUND)
        return drv_error_set(err, DRV_ERR_NOTFOUND, 0, "sandbox %s: none", pod_uid);
    if (rc == DRV_ERR_INVALID) {
        drv_error_t qerr = DRV_ERROR_INIT;
        bool moved = drv_file_quarantine(p.state, &qerr) == DRV_OK;
        drv_log_warn("corrupt sandbox record", "pod=%s moved_aside=%s", pod_uid,
                     moved ? "yes" : "no");
        return drv_error_wrap(err, "sandbox %s%s", pod_uid,
                              moved ? " (record moved aside to sandbox.json.bad)" : "");
    }
    if (rc != DRV_OK)
        return drv_error_wrap(err, "sandbox %s", pod_uid);
    if (!rec.ready)
        return drv_error_set(err, DRV_ERR_CONFLICT, 0,
                             "sandbox %s: never finished (the agent stopped while creating it)",
                             pod_uid);
    struct {
        bool want;
        const char *path;
        int type;
    } checks[] = {{!rec.host_network, p.net, CLONE_NEWNET},
                  {!rec.host_ipc, p.ipc, CLONE_NEWIPC},
                  {!rec.host_network, p.uts, CLONE_NEWUTS}};
    for (size_t i = 0; i < 3; i++)
        if (checks[i].want && !is_ns_mount(checks[i].path, checks[i].type))
            return drv_error_set(err, DRV_ERR_NOTFOUND, 0,
                                 "sandbox %s: %s is no longer a mounted namespace (host "
                                 "rebooted?)",
                                 pod_uid, checks[i].path);
    drv_cni_result_t res;
    memset(&res, 0, sizeof(res));
    if (!rec.host_network) {
        _cleanup_free_ char *json = cJSON_PrintUnformatted(rec.cni_result);
        if (json == NULL)
            return drv_error_set(err, DRV_ERR_NOMEM, 0, "sandbox %s", pod_uid);
        rc = drv_cni_result_parse(json, strlen(json), &res, err);
        if (rc != DRV_OK)
            return drv_error_wrap(err, "sandbox %s: recorded CNI result", pod_uid);
    }
    rc = fill_result(&p, rec.host_network, rec.host_ipc, rec.hostname, res.json, res.ip, out, err);
    drv_cni_result_free(&res);
    return rc;
}

drv_err_t drv_sandbox_destroy(const char *run_dir, const char *pod_uid, const drv_cni_config_t *cni,
                              drv_error_t *err)
{
    sb_paths_t p;
    drv_err_t rc = paths_of(run_dir, pod_uid, &p, err);
    if (rc != DRV_OK)
        return rc;
    struct stat st;
    if (lstat(p.dir, &st) < 0) {
        if (errno == ENOENT)
            return DRV_OK;
        return drv_error_set(err, DRV_ERR_IO, errno, "sandbox %s: %s", pod_uid, p.dir);
    }
    _cleanup_record_ record_t rec;
    drv_error_t rerr = DRV_ERROR_INIT;
    char q[DRV_ERROR_MSG_MAX + 64];
    drv_err_t rrc = read_record(&p, pod_uid, &rec, &rerr);
    if (rrc != DRV_OK && rrc != DRV_ERR_NOTFOUND)
        drv_log_warn("sandbox record unreadable, cleaning up from what is on disk",
                     "pod=%s error=%s", pod_uid, drv_log_quote(drv_error_msg(&rerr), q, sizeof(q)));
    /* The record is written before the namespaces are made and removed after they are
     * unmounted, so without a usable record the net file tells whether CNI may have run. */
    bool need_cni = rrc == DRV_OK ? !rec.host_network : lstat(p.net, &st) == 0;
    if (need_cni) {
        if (cni == NULL)
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "sandbox %s: the CNI configuration is needed to detach the pod "
                                 "network",
                                 pod_uid);
        _cleanup_free_ char *prev =
            rrc == DRV_OK && rec.cni_result ? cJSON_PrintUnformatted(rec.cni_result) : NULL;
        drv_cni_pod_t pod = {
            .container_id = pod_uid,
            .netns = is_ns_mount(p.net, CLONE_NEWNET) ? p.net : NULL,
            .ifname = "eth0",
            .pod_name = rrc == DRV_OK ? rec.pod_name : NULL,
            .pod_namespace = rrc == DRV_OK ? rec.pod_namespace : NULL,
            .ports = rrc == DRV_OK ? rec.ports : NULL,
            .nports = rrc == DRV_OK ? rec.nports : 0,
        };
        rc = drv_cni_del(cni, rrc == DRV_OK ? rec.conflist : NULL, &pod, prev, err);
        if (rc != DRV_OK)
            return drv_error_wrap(err, "sandbox %s", pod_uid);
    }
    rc = remove_local(&p, err);
    if (rc != DRV_OK)
        return drv_error_wrap(err, "sandbox %s", pod_uid);
    drv_log_info("pod sandbox removed", "uid=%s", pod_uid);
    return DRV_OK;
}

drv_err_t drv_sandbox_check_network(const drv_sandbox_t *sb, const drv_cni_config_t *cni,
                                    drv_error_t *err)
{
    if (sb == NULL || sb->dir == NULL)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "sandbox: none given");
    if (sb->host_network)
        return DRV_OK;
    const char *slash = strrchr(sb->dir, '/');
    const char *uid = slash ? slash + 1 : sb->dir;
    sb_paths_t p;
    drv_err_t rc = paths_of_dir(sb->dir, &p, err);
    if (rc != DRV_OK)
        return rc;
    _cleanup_record_ record_t rec;
    rc = read_record(&p, uid, &rec, err);
    if (rc != DRV_OK)
        return drv_error_wrap(err, "sandbox %s", uid);
    drv_cni_pod_t pod = {
        .container_id = uid,
        .netns = p.net,
        .ifname = "eth0",
        .pod_name = rec.pod_name,
        .pod_namespace = rec.pod_namespace,
        .ports = rec.ports,
        .nports = rec.nports,
    };
    rc = drv_cni_check(cni, rec.conflist, &pod, sb->cni_result, err);
    if (rc != DRV_OK)
        return drv_error_wrap(err, "sandbox %s", uid);
    return DRV_OK;
}
