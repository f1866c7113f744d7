/* What the agent measures for the hub's usage history (docs/PROTOCOL.md "Usage"): per
 * container, from its cgroup v2 directory (cpu.stat: usage and throttling; memory.current
 * minus memory.stat's inactive_file, kubelet's working set; memory.events' oom_kill); per
 * node, /proc/stat, /proc/meminfo, the state directory's file system, the SoC's temperature
 * (thermal_zone0) and, on a Raspberry Pi, the firmware's throttling bits. CPU is a rate: the
 * first sample of a container has none (it needs two). Without cgroups, a container's usage
 * is summed from /proc over its PID namespace (and `unsupported` says "cgroup-v2"). Files are
 * read under a root ("" on a device, a directory of fakes in tests). */
#ifndef DROVER_AGENT_METRICS_COLLECT_H
#define DROVER_AGENT_METRICS_COLLECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "drover/error.h"
#include "drover/protocol.h"

typedef struct drv_collector drv_collector_t;

/* One container the supervisor runs (pointers valid during the call). pid: its init process
 * (0: unknown), for devices whose pods have no cgroups: then its usage is that of every
 * process in its PID namespace, from /proc (cpu time; resident memory, not the working set). */
typedef struct drv_collect_ctr {
    const char *ns, *pod, *uid, *name;
    int32_t restarts;
    int pid;
} drv_collect_ctr_t;

/* root: "" or a directory standing for "/"; state_dir: whose file system's free space is
 * reported; cgroups: whether pods have cgroups at all (allowNoCgroups devices do not). */
DRV_NODISCARD drv_err_t drv_collector_new(const char *root, const char *state_dir, bool cgroups,
                                          drv_collector_t **out, drv_error_t *err);
void drv_collector_free(drv_collector_t *c);

/* Samples the node and the n containers (grouped by pod uid in the output, in the order first
 * seen) at wall time now_ms and monotonic time mono_ms, into out (its pods array allocated,
 * freed by drv_proto_metrics_free). node: the node's name. */
DRV_NODISCARD drv_err_t drv_collector_sample(drv_collector_t *c, const char *node,
                                             const drv_collect_ctr_t *ctrs, size_t n,
                                             int64_t now_ms, int64_t mono_ms,
                                             drv_proto_metrics_t *out, drv_error_t *err);

/* Whether cur differs from prev enough to be sent before the keep-alive is due: a pod or
 * container came or went, a restart or OOM kill, cpu moved by more than 10 % and 10
 * millicores, memory by more than 5 % and 1 MiB (node or container). */
DRV_NODISCARD bool drv_collector_changed(const drv_proto_metrics_t *prev,
                                         const drv_proto_metrics_t *cur);

#endif
