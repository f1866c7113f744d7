/* Pod sandboxes without a pause container: a pod's network, IPC and UTS namespaces are kept
 * alive by bind mounts (as `ip netns add` does), so they outlive every container process and
 * crun joins them by path. The network namespace is attached to the pod network by CNI.
 *
 * On disk, under <run_dir>/pods/<pod-uid>/:
 *   ns/net, ns/ipc, ns/uts  bind mounts of the namespaces (only those the pod does not share
 *                           with the host)
 *   sandbox.json            the pod's sandbox record (written with drv_file_write_atomic):
 *                           state "creating" before anything is made, "ready" when done, plus
 *                           the CNI configuration used and the CNI result, so that DEL after a
 *                           restart is given exactly what ADD was.
 * <run_dir>/pods is made a private mount point (bind-mounted onto itself once), so the
 * namespace mounts neither propagate into other mount namespaces (where copies would keep a
 * destroyed pod's namespaces alive) nor get unmounted by propagation from elsewhere.
 *
 * Host sharing follows Kubernetes: hostNetwork uses the host's network and UTS namespaces (the
 * pod's hostname is the node's) and runs no CNI; hostIPC uses the host's IPC namespace.
 *
 * All calls need root (CAP_SYS_ADMIN and CAP_NET_ADMIN). Calls for one pod UID must not run
 * concurrently; calls for different pods may. */
#ifndef DROVER_AGENT_SANDBOX_H
#define DROVER_AGENT_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include "drover/error.h"
#include "runtime/cni.h"

#define DRV_SANDBOX_UID_MAX 128
#define DRV_SANDBOX_STATE_MAX (1024u * 1024u) /* cap on sandbox.json */

/* What to create. Every pointer is borrowed for the duration of the call. */
typedef struct drv_sandbox_opts {
    const char *run_dir;         /* required, absolute: e.g. /run/drover */
    const char *pod_uid;         /* required: 1-128 of [A-Za-z0-9_.-], starting alphanumeric
                                    (Kubernetes UIDs are UUIDs); names the directory and is the
                                    CNI container ID */
    const char *pod_name;        /* required (metadata.name) */
    const char *pod_namespace;   /* required (metadata.namespace) */
    const char *hostname;        /* spec.hostname; NULL or "": the pod name cut to 63
                                    characters, as the kubelet does. Ignored for hostNetwork. */
    bool host_network;           /* spec.hostNetwork */
    bool host_ipc;               /* spec.hostIPC */
    const drv_cni_port_t *ports; /* hostPort mappings (see drv_cni_ports_validate); ignored
                                    for hostNetwork, where containers bind host ports directly */
    size_t nports;
    const drv_cni_config_t *cni; /* required unless host_network */
} drv_sandbox_opts_t;

/* A created or loaded sandbox. Every pointer is malloc'd and owned by the struct; release
 * with drv_sandbox_free(). */
typedef struct drv_sandbox {
    char *dir;                   /* <run_dir>/pods/<uid> */
    char *net_ns;                /* path to join the pod's network namespace; NULL: host network */
    char *ipc_ns;                /* NULL: host IPC */
    char *uts_ns;                /* NULL: host UTS (hostNetwork) */
    char *hostname;              /* the hostname set in uts_ns; NULL when uts_ns is NULL */
    char *cni_result;            /* the CNI ADD result (JSON); NULL for hostNetwork */
    char pod_ip[DRV_CNI_IP_MAX]; /* "10.88.0.2"; "" for hostNetwork (the node's IP applies) */
    bool host_network;
    bool host_ipc;
} drv_sandbox_t;

/* Creates the sandbox of a pod: directory, record, namespaces (hostname set, loopback up) and,
 * unless hostNetwork, the CNI attachment with hostPort mappings. On success fills *out.
 * All or nothing: on failure everything made so far is undone (CNI DEL included) and *out is
 * untouched. A sandbox that exists already (even half made) is DRV_ERR_EXISTS: load it or
 * destroy it first. Errors read "sandbox ns/name: ..." and keep the CNI plugin's message
 * ("sandbox default/web: cni bridge ADD: failed to allocate ..."). */
DRV_NODISCARD drv_err_t drv_sandbox_create(const drv_sandbox_opts_t *opts, drv_sandbox_t *out,
                                           drv_error_t *err);

/* Re-opens the sandbox of pod_uid after an agent restart: reads sandbox.json and checks that
 * every namespace it names is still mounted and of the right type. DRV_ERR_NOTFOUND if there
 * is no sandbox or a namespace mount is gone (the host rebooted); DRV_ERR_CONFLICT if it was
 * never finished (the agent stopped while creating it); a corrupt record is moved aside to
 * sandbox.json.bad and reported (DRV_ERR_INVALID). In each failure case the caller should
 * destroy the sandbox and create it again. */
DRV_NODISCARD drv_err_t drv_sandbox_load(const char *run_dir, const char *pod_uid,
                                         drv_sandbox_t *out, drv_error_t *err);

/* Removes the sandbox of pod_uid: CNI DEL (with the configuration and result recorded at
 * create; built from cni when the record is missing or corrupt), then unmounts and removes
 * the namespaces and the directory. Idempotent: a missing sandbox is DRV_OK, and a half-made
 * or half-destroyed one (a crash at any point) is finished off. If CNI DEL fails the sandbox
 * is kept (namespaces included, so a retry can still clean up the pod's interfaces) and the
 * error returned. cni gives the plugin directory and deadline; it may be NULL only when the
 * pod has no network of its own. */
DRV_NODISCARD drv_err_t drv_sandbox_destroy(const char *run_dir, const char *pod_uid,
                                            const drv_cni_config_t *cni, drv_error_t *err);

/* Runs CNI CHECK for a loaded network sandbox: DRV_OK if its interfaces, address and port
 * mappings are still in place. A hostNetwork sandbox is always fine. */
DRV_NODISCARD drv_err_t drv_sandbox_check_network(const drv_sandbox_t *sb,
                                                  const drv_cni_config_t *cni, drv_error_t *err);

/* Frees what *sb owns and zeroes it; safe on a zeroed or freed struct. */
void drv_sandbox_free(drv_sandbox_t *sb);

#endif
