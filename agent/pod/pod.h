/* Private to the supervisor: the runtime record of a pod and its containers. */
#ifndef DROVER_AGENT_POD_H
#define DROVER_AGENT_POD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <cjson/cJSON.h>

#include "probe/probe.h"

#define POD_UID_MAX 64
#define CTR_ID_MAX 160

typedef enum { CS_WAITING = 0, CS_RUNNING, CS_TERMINATED } cstate_t;

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
typedef struct probe_ctx {
    struct pod *pod;
    struct ctr *ctr;
    drv_probe_kind_t kind;
    uint32_t token;
    void *glue;
} probe_ctx_t;

typedef struct ctr {
    char name[64];
    bool init;
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
    bool restart_requested; /* liveness or startup probe failed */
    bool probes_loaded;
    drv_probe_state_t probe;
    probe_ctx_t pctx[DRV_PROBE_KINDS];
    char probe_detail[DRV_PROBE_KINDS][160]; /* the last failure, for status */
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
    bool sandbox_ready;
    bool volumes_ready;
    char netns[256], ipcns[256], utsns[256];
    char pod_ip[64];
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
    /* usage sampling */
    uint64_t cpu_ticks_prev;
    long long cpu_sampled_at;
    int64_t usage_cpu_m, usage_mem;
    bool seen; /* mark for reconciling against the desired set */
} pod_t;

#endif
