/* Private to the supervisor: the runtime record of a pod and its containers. */
#ifndef DROVER_AGENT_POD_H
#define DROVER_AGENT_POD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <cjson/cJSON.h>

#include "drover/error.h"
#include "probe/probe.h"

#define POD_UID_MAX 64
#define CTR_ID_MAX 160

typedef enum { CS_WAITING = 0, CS_RUNNING, CS_TERMINATED } cstate_t;

/* The lifecycle hook a running container is in, and how it went (pod/supervisor.c). */
typedef enum { HOOK_NONE = 0, HOOK_POST_START, HOOK_PRE_STOP } hook_t;
typedef enum { HOOK_PENDING = 0, HOOK_OK, HOOK_FAILED } hook_result_t;

typedef enum {
    STAGE_PULL = 0, /* images: pull child to start or running */
    STAGE_SETUP,    /* volumes and sandbox */
    STAGE_INIT,     /* init containers, in order */
    STAGE_RUN,      /* app containers */
    STAGE_DONE,     /* all containers finished for good (Succeeded or Failed) */
} pod_stage_t;

typedef struct term_info {
    bool valid;
    int exit_code; /* -1: unknown (exited while the agent was away) */
    int signal;
    char reason[32];                 /* Completed, Error, OOMKilled, Unknown */
    int64_t started_at, finished_at; /* unix ms */
} term_info_t;

struct ctr;
struct pod;
/* Identifies one probe kind of one container to the prober's callback. */
typedef struct pod_probe_ctx {
    struct pod *pod;
    struct ctr *ctr;
    drv_probe_kind_t kind;
    uint32_t token;
    void *host; /* the pod_host_t */
} pod_probe_ctx_t;

typedef struct ctr {
    char name[64];
    bool init;
    bool sidecar;      /* an init container with restartPolicy Always (a native sidecar) */
    bool stop_sent;    /* the pod is stopping it: preStop started or SIGTERM sent */
    const cJSON *spec; /* into the pod's object */
    char id[CTR_ID_MAX];
    cstate_t state;
    char reason[48];   /* waiting reason: ContainerCreating, CrashLoopBackOff, ... */
    char message[512]; /* waiting message */
    pid_t pid;
    int pidfd;          /* for adopted containers, which are not our children; -1 otherwise */
    int64_t started_at; /* unix ms, while running */
    long long started_mono;
    term_info_t last; /* the last termination */
    unsigned restarts;
    long long backoff_ms;
    long long next_start; /* monotonic ms; 0 = as soon as possible */
    bool ready;
    bool started; /* startup probe passed (or none) */
    bool rootfs_mounted;
    bool restart_requested;    /* liveness or startup probe failed */
    int64_t restart_grace_s;   /* that probe's terminationGracePeriodSeconds; -1: the pod's */
    long long restart_kill_at; /* stopping it to restart: SIGKILL at this monotonic ms; 0 none */
    bool probes_loaded;
    drv_probe_state_t probe;
    pod_probe_ctx_t pctx[DRV_PROBE_KINDS];
    char probe_detail[DRV_PROBE_KINDS][160]; /* the last failure, for status */
    /* Its lifecycle hook in progress (postStart: the container is not reported Running and
     * not probed until it returns; preStop: SIGTERM waits for it). Not persisted: an agent
     * restart treats an adopted container as past its postStart. */
    hook_t hook;
    hook_result_t hook_result;
    long long hook_until;  /* a sleep hook: monotonic ms it ends; 0 for exec and httpGet */
    char hook_detail[256]; /* why it failed */
    pod_probe_ctx_t hctx;  /* the prober's context for an exec or httpGet hook */
} ctr_t;

typedef struct pod {
    char uid[POD_UID_MAX];
    char name[254];
    char ns[64];
    cJSON *obj; /* owned: the normalized Pod */
    pod_stage_t stage;
    bool terminating;
    bool kill_sent;
    long long kill_deadline;
    bool grace_extended;    /* a preStop outran the grace period: the 2 s the kubelet adds, given */
    bool deadline_exceeded; /* spec.activeDeadlineSeconds passed: Failed, DeadlineExceeded */
    bool sandbox_ready;
    bool volumes_ready;
    char netns[256], ipcns[256], utsns[256];
    char pod_ip[64];
    char last_ip[64]; /* its sandbox's address as state.json last said ("": none) */
    pid_t pull_pid;
    int pull_fd; /* read end of the pull child's message pipe */
    long long next_setup;
    long long setup_backoff_ms;
    char reason[48]; /* pod-level waiting reason for every container: ErrImagePull, ... */
    char message[512];
    size_t init_next; /* index of the next init container to run */
    ctr_t *ctrs;      /* init containers first, then app containers */
    size_t n_ctrs, n_init;
    char dir[512];
    int64_t start_time; /* unix ms when the agent first saw the pod */
    /* Initialized, ContainersReady and Ready as last reported, and since when (unix ms; 0:
     * not yet reported): the conditions' lastTransitionTime, which the HPA's readiness rules
     * read. Not persisted: an agent restart reports its own start as the transition. */
    bool cond_ok[3];
    int64_t cond_since[3];
    /* usage sampling */
    uint64_t cpu_ticks_prev;
    long long cpu_sampled_at;
    int64_t usage_cpu_m, usage_mem;
    bool seen; /* mark for reconciling against the desired set */
} pod_t;

/* ---- the pod record: <pod dir>/state.json (pod/state.c) ----
 *
 * What the agent needs to take a pod back after it restarted (adoption after an upgrade or a
 * crash): one JSON object, written whole (temp file, fsync, rename) whenever a container
 * starts or stops, read once when the pod is first seen. At most POD_STATE_MAX_BYTES.
 *
 *   version     format version, a whole number; this agent writes POD_STATE_VERSION (1).
 *               Absent: a file from an agent before versioning, whose fields are those of
 *               version 1 (read as version 0, the same layout).
 *   uid         the pod's metadata.uid (string; informative, not read back)
 *   startTime   unix ms when the agent first saw the pod, 0 to 2^53-1
 *   initNext    index of the next init container to run, 0 to the pod's init container count
 *   podIP       the sandbox's address (string; the sandbox record is the truth: read back only
 *               to tell that a pod had a network before a reboot, whose leftovers go first)
 *   containers  an object keyed by container name (names the pod no longer has are ignored):
 *     state       "waiting", "running" (then checked against crun) or "terminated"
 *     pid         0 to 2^31-1 (replaced by crun's answer when adopted)
 *     startedAt   unix ms, 0 to 2^53-1
 *     restarts    0 to 2^32-1
 *     backoffMs   the crash-loop back-off, 0 to POD_BACKOFF_MAX_MS
 *     last        the last termination, optional: exitCode and signal (whole numbers in the
 *                 range of an int), reason (string, under 32 bytes), startedAt and finishedAt
 *                 (unix ms, 0 to 2^53-1)
 *   Members not listed are ignored, so that a later version 1 writer may add some.
 *
 * An unreadable file, one that is not JSON, or one with any field of the wrong type or out of
 * its range is corrupt: it is moved aside to state.json.bad, reported in the log, and the pod
 * starts from no record (nothing of it applied). A version newer than POD_STATE_VERSION (an
 * agent downgraded) is refused the same way, with the version named: its layout is unknown. */
#define POD_STATE_VERSION 1
#define POD_STATE_MAX_BYTES (256u * 1024)
#define POD_BACKOFF_MAX_MS 300000

/* The record of p as JSON text (malloc'd, caller frees), NULL when out of memory. */
char *pod_state_format(const pod_t *p);
/* Applies the record text to p's start time, init progress and containers, all or nothing:
 * DRV_ERR_INVALID naming the field of a corrupt record, DRV_ERR_UNSUPPORTED for a newer version
 * (p untouched either way). */
DRV_NODISCARD drv_err_t pod_state_parse(const char *text, size_t len, pod_t *p, drv_error_t *err);
/* Writes <p->dir>/state.json (a failure is logged: the next change writes it again). */
void pod_state_save(const pod_t *p);
/* Reads <p->dir>/state.json into p when there is one; a corrupt or newer one is moved aside to
 * state.json.bad and logged. */
void pod_state_load(pod_t *p);

#endif
