/* The agent's usage sampling (see collect.h): small reads of kernel files, rates from the
 * previous sample of each container and of the node. */
#include "metrics/collect.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "drover/cleanup.h"
#include "drover/file.h"
#include "drover/fmt.h"
#include "drover/map.h"

#define READ_MAX 65536
#define PREV_MAX 4096 /* containers remembered for their rates */

typedef struct prev {
    char *key; /* "uid/name" (the map's key) */
    uint64_t usage_usec;
    int64_t mono_ms;
    bool seen;
} prev_t;

struct drv_collector {
    char root[512];
    char state_dir[512];
    bool cgroups;
    drv_map_t prev;
    bool has_node_prev;
    uint64_t node_busy, node_total; /* jiffies */
    int ncpu;
    int64_t last_mono;
};

/* Reads root + path (a small kernel file) into a fresh string. */
static char *slurp(const drv_collector_t *c, const char *path)
{
    char full[1024];
    if (drv_fmt(full, sizeof(full), "%s%s", c->root, path) != DRV_OK)
        return NULL;
    char *text = NULL;
    if (drv_file_read_capped(full, READ_MAX, &text, NULL, NULL) != DRV_OK)
        return NULL;
    return text;
}

/* The value after "key " on a line of "key value" lines (cpu.stat, memory.stat, ...). */
static bool keyed(const char *text, const char *key, uint64_t *out)
{
    size_t kl = strlen(key);
    for (const char *l = text; l && *l;) {
        if (strncmp(l, key, kl) == 0 && l[kl] == ' ') {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(l + kl + 1, &end, 10);
            if (errno || end == l + kl + 1)
                return false;
            *out = v;
            return true;
        }
        l = strchr(l, '\n');
        if (l)
            l++;
    }
    return false;
}

static bool number(const char *text, int base, int64_t *out)
{
    if (text == NULL)
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, base);
    if (errno || end == text)
        return false;
    *out = v;
    return true;
}

drv_err_t drv_collector_new(const char *root, const char *state_dir, bool cgroups,
                            drv_collector_t **out, drv_error_t *err)
{
    drv_collector_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "out of memory");
    if (drv_fmt(c->root, sizeof(c->root), "%s", root ? root : "") != DRV_OK ||
        drv_fmt(c->state_dir, sizeof(c->state_dir), "%s", state_dir ? state_dir : "/") != DRV_OK) {
        free(c);
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "metrics: root or stateDir: path too long");
    }
    c->cgroups = cgroups;
    drv_map_init(&c->prev, PREV_MAX);
    *out = c;
    return DRV_OK;
}

void drv_collector_free(drv_collector_t *c)
{
    if (c == NULL)
        return;
    size_t it = 0;
    const char *k;
    void *v;
    while (drv_map_next(&c->prev, &it, &k, &v)) {
        prev_t *p = v;
        free(p->key);
        free(p);
    }
    drv_map_free(&c->prev);
    free(c);
}

/* ---- the node ---------------------------------------------------------------------------- */

static void sample_node(drv_collector_t *c, drv_proto_metrics_t *m, int64_t mono_ms)
{
    _cleanup_free_ char *stat = slurp(c, "/proc/stat");
    unsigned long long v[8] = {0};
    if (stat && sscanf(stat, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
                       &v[3], &v[4], &v[5], &v[6], &v[7]) >= 4) {
        uint64_t total = 0;
        for (int i = 0; i < 8; i++)
            total += v[i];
        uint64_t busy = total - v[3] - v[4]; /* not idle, not iowait */
        int ncpu = 0;
        for (const char *l = stat; (l = strstr(l, "\ncpu")) != NULL; l++)
            if (l[4] >= '0' && l[4] <= '9')
                ncpu++;
        c->ncpu = ncpu > 0 ? ncpu : 1;
        if (c->has_node_prev && total > c->node_total && busy >= c->node_busy) {
            /* double, not long double: on arm64 a long double is software quad precision,
             * whose routines alone would cost the agent 5 KB */
            double share = (double)(busy - c->node_busy) / (double)(total - c->node_total);
            m->has_cpu = true;
            m->cpu_nanocores = (int64_t)(share * c->ncpu * 1e9);
        }
        c->node_busy = busy;
        c->node_total = total;
        c->has_node_prev = true;
    } else {
        memcpy(m->unsupported[m->n_unsupported++], "node-cpu", 9);
    }
    _cleanup_free_ char *mem = slurp(c, "/proc/meminfo");
    uint64_t total_kb = 0, avail_kb = 0;
    if (mem) {
        const char *t = strstr(mem, "MemTotal:"), *a = strstr(mem, "MemAvailable:");
        if (t && a && sscanf(t, "MemTotal: %" SCNu64, &total_kb) == 1 &&
            sscanf(a, "MemAvailable: %" SCNu64, &avail_kb) == 1 && avail_kb <= total_kb) {
            m->has_memory = true;
            m->memory_total_bytes = (int64_t)total_kb * 1024;
            m->memory_bytes = (int64_t)(total_kb - avail_kb) * 1024;
        }
    }
    if (!m->has_memory)
        memcpy(m->unsupported[m->n_unsupported++], "node-memory", 12);
    char sd[1100];
    struct statvfs sv;
    if (drv_fmt(sd, sizeof(sd), "%s%s", c->root, c->state_dir) == DRV_OK && statvfs(sd, &sv) == 0) {
        m->has_disk = true;
        m->disk_total_bytes = (int64_t)((uint64_t)sv.f_blocks * sv.f_frsize);
        m->disk_free_bytes = (int64_t)((uint64_t)sv.f_bavail * sv.f_frsize);
    }
    _cleanup_free_ char *temp = slurp(c, "/sys/class/thermal/thermal_zone0/temp");
    int64_t t;
    if (number(temp, 10, &t) && t > -100000 && t < 200000) {
        m->has_temp = true;
        m->temp_millicelsius = t;
    }
    _cleanup_free_ char *thr = slurp(c, "/sys/devices/platform/soc/soc:firmware/get_throttled");
    if (number(thr, 16, &t) && t >= 0 && t <= UINT32_MAX) {
        m->has_throttled = true;
        m->throttled = (uint32_t)t;
    }
    (void)mono_ms;
}

/* ---- containers -------------------------------------------------------------------------- */

/* The cpu rate of container key from its cumulative usage (usec) against the last sample. */
static void cpu_rate(drv_collector_t *c, const drv_collect_ctr_t *in, uint64_t usage_usec,
                     int64_t mono_ms, drv_proto_ctr_usage_t *o)
{
    char key[200];
    if (drv_fmt(key, sizeof(key), "%s/%s", in->uid, in->name) != DRV_OK)
        return;
    prev_t *p = drv_map_get(&c->prev, key);
    if (p && mono_ms > p->mono_ms && usage_usec >= p->usage_usec) {
        o->has_cpu = true;
        uint64_t r = (usage_usec - p->usage_usec) * 1000000ULL / (uint64_t)(mono_ms - p->mono_ms);
        o->cpu_nanocores =
            r > (uint64_t)DRV_PROTO_METRICS_CPU_MAX ? DRV_PROTO_METRICS_CPU_MAX : (int64_t)r;
    }
    if (p == NULL && (p = calloc(1, sizeof(*p))) != NULL) {
        p->key = strdup(key);
        if (p->key == NULL || drv_map_put(&c->prev, p->key, p) != DRV_OK) {
            free(p->key);
            free(p);
            p = NULL;
        }
    }
    if (p) {
        p->usage_usec = usage_usec;
        p->mono_ms = mono_ms;
        p->seen = true;
    }
}

/* Containers without cgroup files: cpu time and resident memory of every process in the PID
 * namespace of each one's init process, in one pass over /proc. */
static void sample_procfs(drv_collector_t *c, const drv_collect_ctr_t *ins,
                          drv_proto_ctr_usage_t **outs, size_t n, int64_t mono_ms)
{
    if (n == 0)
        return;
    _cleanup_free_ ino_t *ns = calloc(n, sizeof(*ns));
    _cleanup_free_ uint64_t *ticks = calloc(n, sizeof(*ticks));
    _cleanup_free_ uint64_t *rss = calloc(n, sizeof(*rss));
    if (!ns || !ticks || !rss)
        return;
    char path[600];
    struct stat st;
    size_t known = 0;
    for (size_t i = 0; i < n; i++) {
        if (ins[i].pid > 0 &&
            drv_fmt(path, sizeof(path), "%s/proc/%d/ns/pid", c->root, ins[i].pid) == DRV_OK &&
            stat(path, &st) == 0) {
            ns[i] = st.st_ino;
            known++;
        }
    }
    if (known == 0)
        return;
    long page = sysconf(_SC_PAGESIZE), hz = sysconf(_SC_CLK_TCK);
    if (drv_fmt(path, sizeof(path), "%s/proc", c->root) != DRV_OK)
        return;
    _cleanup_closedir_ DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        if (drv_fmt(path, sizeof(path), "%s/proc/%s/ns/pid", c->root, e->d_name) != DRV_OK ||
            stat(path, &st) != 0)
            continue;
        size_t k = 0;
        while (k < n && (ns[k] == 0 || ns[k] != st.st_ino))
            k++;
        if (k == n)
            continue;
        char rel[64];
        if (drv_fmt(rel, sizeof(rel), "/proc/%s/stat", e->d_name) != DRV_OK)
            continue;
        _cleanup_free_ char *stat_text = slurp(c, rel);
        const char *rp = stat_text ? strrchr(stat_text, ')') : NULL;
        unsigned long ut = 0, stt = 0;
        long cut = 0, cst = 0, rs = 0;
        /* after the command: state ppid pgrp session tty tpgid flags minflt cminflt majflt
         * cmajflt utime stime cutime cstime priority nice threads itrealvalue starttime vsize
         * rss. cutime/cstime hold the time of children that ended and were waited for: short
         * jobs a shell starts would otherwise be lost between two samples. */
        if (rp && sscanf(rp + 2,
                         "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %ld %ld %*d %*d "
                         "%*d %*d %*u %*u %ld",
                         &ut, &stt, &cut, &cst, &rs) == 5) {
            ticks[k] += ut + stt + (uint64_t)(cut > 0 ? cut : 0) + (uint64_t)(cst > 0 ? cst : 0);
            rss[k] += rs > 0 ? (uint64_t)rs * (uint64_t)page : 0;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (ns[i] == 0)
            continue;
        cpu_rate(c, &ins[i], hz > 0 ? ticks[i] * 1000000ULL / (uint64_t)hz : 0, mono_ms, outs[i]);
        outs[i]->has_memory = true;
        outs[i]->memory_bytes = (int64_t)rss[i];
    }
}

/* A container's figures from its cgroup; false when it has no cgroup to read. */
static bool sample_ctr(drv_collector_t *c, const drv_collect_ctr_t *in, drv_proto_ctr_usage_t *o,
                       int64_t mono_ms, bool *cpu_ok, bool *mem_ok)
{
    memset(o, 0, sizeof(*o));
    if (drv_fmt(o->name, sizeof(o->name), "%s", in->name) != DRV_OK)
        o->name[0] = '\0';
    o->restarts = in->restarts;
    if (!c->cgroups)
        return false;
    char dir[512];
    if (drv_fmt(dir, sizeof(dir), "/sys/fs/cgroup/drover/pod-%s/%s/", in->uid, in->name) != DRV_OK)
        return false;
    char path[600];
    uint64_t v;
    /* cpu.stat: usage_usec is always there (cgroup v2 core); throttling needs the cpu
     * controller. */
    _cleanup_free_ char *cpu = NULL;
    if (drv_fmt(path, sizeof(path), "%scpu.stat", dir) == DRV_OK)
        cpu = slurp(c, path);
    if (cpu && keyed(cpu, "usage_usec", &v)) {
        cpu_rate(c, in, v, mono_ms, o);
        uint64_t x;
        if (keyed(cpu, "nr_throttled", &x))
            o->throttled_periods = x;
        if (keyed(cpu, "throttled_usec", &x))
            o->throttled_usec = x;
        *cpu_ok = true;
    }
    _cleanup_free_ char *cur = NULL, *stat = NULL, *events = NULL;
    if (drv_fmt(path, sizeof(path), "%smemory.current", dir) == DRV_OK)
        cur = slurp(c, path);
    int64_t current;
    if (number(cur, 10, &current) && current >= 0) {
        uint64_t inactive = 0;
        if (drv_fmt(path, sizeof(path), "%smemory.stat", dir) == DRV_OK)
            stat = slurp(c, path);
        if (stat)
            (void)keyed(stat, "inactive_file", &inactive);
        o->has_memory = true;
        o->memory_bytes =
            (uint64_t)current > inactive ? current - (int64_t)inactive : 0; /* working set */
        *mem_ok = true;
    }
    if (drv_fmt(path, sizeof(path), "%smemory.events", dir) == DRV_OK)
        events = slurp(c, path);
    if (events)
        (void)keyed(events, "oom_kill", &o->oom_kills);
    return cpu != NULL;
}

drv_err_t drv_collector_sample(drv_collector_t *c, const char *node, const drv_collect_ctr_t *ctrs,
                               size_t n, int64_t now_ms, int64_t mono_ms, drv_proto_metrics_t *out,
                               drv_error_t *err)
{
    drv_proto_metrics_t m;
    memset(&m, 0, sizeof(m));
    if (drv_fmt(m.node, sizeof(m.node), "%s", node) != DRV_OK)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "metrics: node name too long");
    m.time_ms = now_ms;
    m.window_ms = c->last_mono && mono_ms > c->last_mono ? mono_ms - c->last_mono : 1;
    if (m.window_ms > DRV_PROTO_METRICS_WINDOW_MAX_MS)
        m.window_ms = DRV_PROTO_METRICS_WINDOW_MAX_MS; /* after a long pause: a rate still */
    c->last_mono = mono_ms;
    sample_node(c, &m, mono_ms);

    size_t cap = n < DRV_PROTO_METRICS_PODS_MAX ? n : DRV_PROTO_METRICS_PODS_MAX;
    if (cap > 0) {
        m.pods = calloc(cap, sizeof(*m.pods));
        if (m.pods == NULL)
            return drv_error_set(err, DRV_ERR_NOMEM, 0, "out of memory");
    }
    size_t it = 0;
    const char *k;
    void *v;
    while (drv_map_next(&c->prev, &it, &k, &v))
        ((prev_t *)v)->seen = false;
    bool any = false, cpu_ok = false, mem_ok = false;
    _cleanup_free_ drv_collect_ctr_t *fb_in = n ? calloc(n, sizeof(*fb_in)) : NULL;
    _cleanup_free_ drv_proto_ctr_usage_t **fb_out = n ? calloc(n, sizeof(*fb_out)) : NULL;
    size_t n_fb = 0;
    for (size_t i = 0; i < n; i++) {
        const drv_collect_ctr_t *in = &ctrs[i];
        drv_proto_pod_usage_t *p = NULL;
        for (size_t j = 0; j < m.n_pods && !p; j++)
            if (strcmp(m.pods[j].uid, in->uid) == 0)
                p = &m.pods[j];
        if (p == NULL) {
            if (m.n_pods == cap)
                continue; /* over the message's cap: the rest go unreported */
            p = &m.pods[m.n_pods];
            if (drv_fmt(p->ns, sizeof(p->ns), "%s", in->ns) != DRV_OK ||
                drv_fmt(p->name, sizeof(p->name), "%s", in->pod) != DRV_OK ||
                drv_fmt(p->uid, sizeof(p->uid), "%s", in->uid) != DRV_OK)
                continue;
            m.n_pods++;
        }
        if (p->n_ctrs == DRV_PROTO_METRICS_CTRS_MAX)
            continue;
        drv_proto_ctr_usage_t *o = &p->ctrs[p->n_ctrs++];
        if (!sample_ctr(c, in, o, mono_ms, &cpu_ok, &mem_ok) && fb_in && fb_out) {
            fb_in[n_fb] = *in;
            fb_out[n_fb++] = o;
        }
        any = true;
    }
    /* Containers without a cgroup: from /proc, by PID namespace. */
    sample_procfs(c, fb_in, fb_out, n_fb, mono_ms);
    bool procfs = false;
    for (size_t i = 0; i < n_fb; i++)
        if (fb_out[i]->has_memory) {
            procfs = cpu_ok = mem_ok = true;
        }
    if (procfs && m.n_unsupported < DRV_PROTO_METRICS_UNSUPPORTED_MAX)
        memcpy(m.unsupported[m.n_unsupported++], "cgroup-v2", 10);
    /* Containers gone since the last sample: their rates' memory goes too. */
    it = 0;
    while (drv_map_next(&c->prev, &it, &k, &v)) {
        prev_t *p = v;
        if (!p->seen) {
            drv_map_del(&c->prev, p->key); /* the entry just returned: allowed */
            free(p->key);
            free(p);
        }
    }
    if (any && !cpu_ok && m.n_unsupported < DRV_PROTO_METRICS_UNSUPPORTED_MAX)
        memcpy(m.unsupported[m.n_unsupported++], "container-cpu", 14);
    if (any && !mem_ok && m.n_unsupported < DRV_PROTO_METRICS_UNSUPPORTED_MAX)
        memcpy(m.unsupported[m.n_unsupported++], "container-memory", 17);
    *out = m;
    return DRV_OK;
}

/* ---- change ------------------------------------------------------------------------------ */

static bool moved(bool ha, int64_t a, bool hb, int64_t b, int64_t abs_min, int pct)
{
    if (ha != hb)
        return true;
    if (!ha)
        return false;
    int64_t d = a > b ? a - b : b - a;
    int64_t base = a > b ? a : b;
    return d > abs_min && d * 100 > base * pct;
}

bool drv_collector_changed(const drv_proto_metrics_t *prev, const drv_proto_metrics_t *cur)
{
    if (prev == NULL)
        return true;
    const int64_t mcore10 = 10 * 1000000LL, mib = 1 << 20;
    if (prev->n_pods != cur->n_pods ||
        moved(prev->has_cpu, prev->cpu_nanocores, cur->has_cpu, cur->cpu_nanocores, mcore10, 10) ||
        moved(prev->has_memory, prev->memory_bytes, cur->has_memory, cur->memory_bytes, mib, 5))
        return true;
    for (size_t i = 0; i < cur->n_pods; i++) {
        const drv_proto_pod_usage_t *a = &prev->pods[i], *b = &cur->pods[i];
        if (strcmp(a->uid, b->uid) || a->n_ctrs != b->n_ctrs)
            return true;
        for (size_t j = 0; j < b->n_ctrs; j++) {
            const drv_proto_ctr_usage_t *x = &a->ctrs[j], *y = &b->ctrs[j];
            if (strcmp(x->name, y->name) || x->restarts != y->restarts ||
                x->oom_kills != y->oom_kills ||
                moved(x->has_cpu, x->cpu_nanocores, y->has_cpu, y->cpu_nanocores, mcore10, 10) ||
                moved(x->has_memory, x->memory_bytes, y->has_memory, y->memory_bytes, mib, 5))
                return true;
        }
    }
    return false;
}
