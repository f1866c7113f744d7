/* Container health probes, as Kubernetes defines them (livenessProbe, readinessProbe,
 * startupProbe of a container). Two parts:
 *  - drv_probe_state_t: the timing and verdict state machine of one container, pure, driven by
 *    an injected monotonic clock (when the next attempt is due, consecutive results counted
 *    against the thresholds, ready / started / restart needed);
 *  - drv_prober_t: runs attempts asynchronously inside the agent's single-threaded event loop
 *    (httpGet and tcpSocket through a libcurl multi handle, exec as a `crun exec` child with a
 *    deadline), never blocking it.
 *
 * Typical flow in the supervisor:
 *   container started  -> drv_probe_state_container_started(&st, now)
 *   every tick         -> while (drv_probe_state_next(&st, now, &kind, &token))
 *                             drv_prober_start(pr, drv_probe_spec_json(ctr, kind), ctr, ...)
 *                         (a start error: drv_probe_state_result(..., DRV_PROBE_UNKNOWN, ...))
 *   callback           -> drv_probe_state_result(&st, kind, token, result, now); act on
 *                         DRV_PROBE_EV_READY / DRV_PROBE_EV_STARTED / DRV_PROBE_EV_RESTART
 *   container stopped  -> drv_prober_cancel(pr, ctx); drv_probe_state_container_stopped(&st)
 *   event loop         -> drv_prober_wait(...); drv_prober_process(pr, now); every reaped pid
 *                         goes to drv_prober_child_exited first. */
#ifndef DROVER_AGENT_PROBE_H
#define DROVER_AGENT_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <cjson/cJSON.h>
#include "net/curl.h"
#include "drover/error.h"

/* ---- probe specifications ---- */

typedef enum {
    DRV_PROBE_LIVENESS = 0,
    DRV_PROBE_READINESS = 1,
    DRV_PROBE_STARTUP = 2,
} drv_probe_kind_t;
#define DRV_PROBE_KINDS 3

/* "liveness", "readiness", "startup" (static). */
const char *drv_probe_kind_name(drv_probe_kind_t kind);
/* The container's probe object for kind ("livenessProbe", ...), NULL if it has none. Borrowed
 * from container. */
const cJSON *drv_probe_spec_json(const cJSON *container, drv_probe_kind_t kind);

/* The timing fields of a probe, in milliseconds, Kubernetes defaults applied. */
typedef struct drv_probe_spec {
    int64_t initial_delay_ms;   /* initialDelaySeconds, default 0 */
    int64_t timeout_ms;         /* timeoutSeconds, default 1 s */
    int64_t period_ms;          /* periodSeconds, default 10 s */
    uint32_t success_threshold; /* default 1 */
    uint32_t failure_threshold; /* default 3 */
} drv_probe_spec_t;

/* Reads the timing fields of a probe object (missing ones defaulted). Errors name the field
 * ("periodSeconds: must be an integer from 1 to 2147483647"). *out is untouched on error. */
DRV_NODISCARD drv_err_t drv_probe_spec_parse(const cJSON *probe, drv_probe_spec_t *out,
                                             drv_error_t *err);

/* Checks a whole probe object as drv_prober_start will use it: the timing fields and exactly
 * one handler (exec.command; httpGet path, port (number or a name among the container's
 * ports[].name), host, scheme, httpHeaders; tcpSocket port and host). container may be NULL
 * when the port is a number. */
DRV_NODISCARD drv_err_t drv_probe_validate(const cJSON *probe, const cJSON *container,
                                           drv_error_t *err);

/* ---- gRPC health checking (grpc.health.v1) ---- */

/* HealthCheckResponse.ServingStatus values. */
#define DRV_GRPC_UNKNOWN 0
#define DRV_GRPC_SERVING 1
#define DRV_GRPC_NOT_SERVING 2
#define DRV_GRPC_SERVICE_UNKNOWN 3

/* "UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN", or "status <n>" in buf. */
const char *drv_grpc_status_name(uint64_t status, char *buf, size_t bufsz);
/* The name of a gRPC status code (grpc-status trailer: 0 "OK", 5 "NotFound", 12
 * "Unimplemented", ...), as Go's grpc prints them; "Code(<n>)" in buf for others. */
const char *drv_grpc_code_name(long code, char *buf, size_t bufsz);

/* Reads a Health/Check answer body: one length-prefixed gRPC message (flag byte 0: not
 * compressed; 4-byte big-endian length) holding a HealthCheckResponse (field 1, varint:
 * status; absent = UNKNOWN; unknown fields skipped). *status gets the ServingStatus.
 * DRV_ERR_PROTO naming what is wrong for anything else (short, compressed, bad varint,
 * truncated field). Never reads past len. */
DRV_NODISCARD drv_err_t drv_grpc_health_parse(const uint8_t *body, size_t len, uint64_t *status,
                                              drv_error_t *err);

/* ---- the state machine of one container ---- */

typedef enum {
    DRV_PROBE_SUCCESS = 0,
    DRV_PROBE_FAILURE = 1,
    /* The attempt could not be run at all (the prober refused to start it). Like kubelet's
     * "probe errored" results it is not counted; the next attempt comes one period later. */
    DRV_PROBE_UNKNOWN = 2,
} drv_probe_result_t;

/* Events returned by drv_probe_state_result (a bit set). */
#define DRV_PROBE_EV_READY 0x1u /* drv_probe_state_ready() changed */
#define DRV_PROBE_EV_STARTED                                                                       \
    0x2u                          /* the startup probe succeeded: the container counts as started  \
                                   */
#define DRV_PROBE_EV_RESTART 0x4u /* liveness or startup failed failureThreshold times in a row */

/* One probe kind of one container. Fields are private: use the functions below. */
typedef struct drv_probe_track {
    bool configured;
    bool in_flight; /* an attempt was handed out and its result not yet taken */
    bool on_hold;   /* liveness/startup after a restart verdict, startup after success */
    int8_t last;    /* -1 none yet, else the drv_probe_result_t of the last counted attempt */
    uint32_t run;   /* how many times in a row last was seen */
    int64_t next_due;
    drv_probe_spec_t spec;
} drv_probe_track_t;

/* Embeddable (no allocation); zero-initialised it is a container without probes that is not
 * running. */
typedef struct drv_probe_state {
    drv_probe_track_t t[DRV_PROBE_KINDS];
    bool running;
    bool started;
    bool ready;   /* the readiness verdict (with no readiness probe: started) */
    bool restart; /* a restart was asked for since the container started */
    drv_probe_kind_t restart_kind;
    uint32_t gen; /* bumped on every start and stop: tokens of older attempts are stale */
} drv_probe_state_t;

/* Reads the container's three probes (any may be absent) with drv_probe_validate; errors are
 * prefixed with the probe's key ("readinessProbe.httpGet.port: ..."). The container is not
 * running afterwards. *st is untouched on error. */
DRV_NODISCARD drv_err_t drv_probe_state_init(drv_probe_state_t *st, const cJSON *container,
                                             drv_error_t *err);

/* The container (re)started at now (monotonic ms): every count, verdict and hold is reset; each
 * probe is first due initialDelaySeconds later. With no startup probe the container counts as
 * started at once; with no readiness probe it is ready as soon as it is started. Attempts
 * handed out before are stale from now on. */
void drv_probe_state_container_started(drv_probe_state_t *st, int64_t now);

/* The container is not running: not ready, nothing due, outstanding attempts stale. */
void drv_probe_state_container_stopped(drv_probe_state_t *st);

/* Hands out one attempt that is due at now, if any: *kind and *token are set and the kind is in
 * flight until its result is given back; its next attempt is due periodSeconds after now. While
 * a startup probe has not succeeded, liveness and readiness are not handed out (they become
 * due at once when it succeeds, once their own initial delay has passed); a succeeded startup
 * probe and a probe whose failures asked for a restart are not run again until the container
 * restarts. Call repeatedly until it returns false. */
bool drv_probe_state_next(drv_probe_state_t *st, int64_t now, drv_probe_kind_t *kind,
                          uint32_t *token);

/* The earliest time drv_probe_state_next may hand something out: INT64_MAX if nothing is
 * scheduled (not running, all probes on hold or in flight). May be in the past. */
int64_t drv_probe_state_next_due(const drv_probe_state_t *st);

/* Counts the result of an attempt handed out with (kind, token). A stale token or a kind not in
 * flight is ignored (returns 0). Kubernetes' rule: the verdict changes only after
 * successThreshold consecutive successes or failureThreshold consecutive failures. Returns the
 * DRV_PROBE_EV_* bits for what changed. now is the completion time: if the next attempt was
 * due meanwhile (an attempt slower than the period), it is due at once. */
unsigned drv_probe_state_result(drv_probe_state_t *st, drv_probe_kind_t kind, uint32_t token,
                                drv_probe_result_t result, int64_t now);

bool drv_probe_state_ready(const drv_probe_state_t *st);
bool drv_probe_state_started(const drv_probe_state_t *st);
/* True once liveness or startup asked for a restart (until the next container start); *why
 * (may be NULL) gets the probe that asked. */
bool drv_probe_state_restart_needed(const drv_probe_state_t *st, drv_probe_kind_t *why);

/* ---- the asynchronous prober ---- */

#define DRV_PROBER_MAX_ATTEMPTS 256    /* default cap of attempts in flight */
#define DRV_PROBER_MAX_EXTRA_FDS 64    /* caller fds one drv_prober_wait may watch */
#define DRV_PROBER_DETAIL_MAX 512      /* a callback's detail, NUL included */
#define DRV_PROBE_EXEC_MAX_ARGS 128    /* exec.command elements */
#define DRV_PROBE_EXEC_MAX_BYTES 32768 /* exec.command, all elements together */
#define DRV_PROBE_HTTP_MAX_HEADERS 64
#define DRV_PROBE_PATH_MAX 2048

typedef struct drv_prober drv_prober_t;

typedef struct drv_prober_opts {
    unsigned max_attempts; /* 0: DRV_PROBER_MAX_ATTEMPTS */
} drv_prober_opts_t;

/* How exec probes reach the container: `<prefix...> exec <container_id> <command...>`, where
 * the prefix is argv_prefix (the crun program and its global options, e.g. from
 * drv_crun_argv_prefix) when set, else `<crun> [--root <root>]`. Borrowed for the call. */
typedef struct drv_prober_exec {
    const char *const *argv_prefix; /* NULL: use crun and root */
    size_t n_prefix;                /* at most 8 */
    const char *crun;               /* absolute path, or a name looked up in PATH */
    const char *root;               /* NULL: crun's default state root */
    const char *container_id;       /* required */
} drv_prober_exec_t;

/* Called exactly once per started attempt that was not cancelled, always from inside
 * drv_prober_process (never from drv_prober_start). detail says why (status code, connect
 * error, the command's output, "timed out"), printable ASCII/UTF-8, at most
 * DRV_PROBER_DETAIL_MAX - 1 bytes; it is valid only during the callback. The callback may call
 * drv_prober_start and drv_prober_cancel, not drv_prober_process, _wait or _free. */
typedef void (*drv_prober_cb_t)(void *ctx, drv_probe_result_t result, const char *detail);

/* Creates a prober (opts may be NULL). Owned by the caller (drv_prober_free). The program
 * should ignore SIGPIPE (transfers run with CURLOPT_NOSIGNAL). */
DRV_NODISCARD drv_err_t drv_prober_new(const drv_prober_opts_t *opts, drv_prober_t **out,
                                       drv_error_t *err);
/* Aborts every attempt without callbacks: transfers closed, exec children killed (SIGKILL)
 * and reaped with waitpid on their pid. NULL is allowed. */
void drv_prober_free(drv_prober_t *pr);

/* Starts one attempt of probe (a container's probe object) against target_ip (the pod IP:
 * httpGet/tcpSocket host unless the probe names one; may be NULL for exec probes). Named ports
 * are resolved against container's ports. exec is needed for exec probes only. The timeout
 * is timeoutSeconds: HTTP whole request, TCP connect, exec until the child is killed.
 * Nothing is kept from probe, container, target_ip or exec after the call.
 * Errors (no callback follows): DRV_ERR_INVALID for a malformed probe (field named),
 * DRV_ERR_AGAIN when max_attempts are in flight, DRV_ERR_IO when the exec child cannot be
 * spawned (e.g. no crun), DRV_ERR_NOMEM. ctx identifies the attempt for cancel. */
DRV_NODISCARD drv_err_t drv_prober_start(drv_prober_t *pr, const cJSON *probe,
                                         const cJSON *container, const char *target_ip,
                                         const drv_prober_exec_t *exec, drv_prober_cb_t cb,
                                         void *ctx, drv_error_t *err);

/* A container's lifecycle hook handler (postStart or preStop: {"exec": ...} or {"httpGet": ...};
 * sleep is the caller's timer) run like a probe attempt, with the kubelet's rules: an exec hook
 * succeeds when the command exits 0, an httpGet hook when any HTTP response comes back (the
 * status code is not looked at); timeout_ms bounds the attempt (the exec child is killed, the
 * transfer aborted). Same errors, callback and cancellation as drv_prober_start. */
DRV_NODISCARD drv_err_t drv_prober_start_hook(drv_prober_t *pr, const cJSON *handler,
                                              const cJSON *container, const char *target_ip,
                                              const drv_prober_exec_t *exec, int64_t timeout_ms,
                                              drv_prober_cb_t cb, void *ctx, drv_error_t *err);

/* Drops every pending attempt started with ctx, without callbacks (also ones completed but not
 * yet called back). Exec children are killed with SIGKILL; their pids are still recognised by
 * drv_prober_child_exited. Returns how many attempts were dropped. */
size_t drv_prober_cancel(drv_prober_t *pr, void *ctx);

/* Waits until a transfer or exec child needs attention, one of the caller's extra fds (at
 * most DRV_PROBER_MAX_EXTRA_FDS; their revents are filled in) is ready, or timeout_ms passes
 * (-1: no limit of the caller's own). The wait is shortened to the next exec deadline and is
 * zero while completed attempts wait for drv_prober_process. *nready (may be NULL) gets the
 * number of ready fds, curl_multi_poll's count. Wraps curl_multi_poll (EINTR is no error). */
DRV_NODISCARD drv_err_t drv_prober_wait(drv_prober_t *pr, struct curl_waitfd *extra, unsigned n,
                                        int timeout_ms, int *nready, drv_error_t *err);

/* Moves transfers on, reads exec output, kills exec children whose deadline passed (their
 * attempt fails at once), and calls back every completed attempt. now: drv_now_ms()
 * (drover/proc.h). */
void drv_prober_process(drv_prober_t *pr, int64_t now);

/* The agent reaps every child in one place and hands each pid here first: returns true if it
 * was a probe's exec child (its attempt completes on the next drv_prober_process), false if
 * it belongs to someone else. */
bool drv_prober_child_exited(drv_prober_t *pr, pid_t pid, int wait_status);

/* Attempts started and not yet called back or cancelled. */
size_t drv_prober_pending(const drv_prober_t *pr);
/* Exec children not yet handed to drv_prober_child_exited (including killed ones). */
size_t drv_prober_children(const drv_prober_t *pr);

#endif
