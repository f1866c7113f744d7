/* From a Kubernetes container to an OCI runtime bundle's config.json: the process (args, env,
 * cwd, user, capabilities), mounts, namespaces, resources and seccomp filter crun runs it
 * with, following kubelet's and containerd's rules so that a pod behaves as it would on a
 * Kubernetes node. Pure apart from reading the rootfs' /etc/passwd and /etc/group, the
 * host's rlimits and /dev (privileged), and creating a missing subPath directory. */
#ifndef DROVER_AGENT_SPEC_H
#define DROVER_AGENT_SPEC_H

#include <stdbool.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include "drover/buf.h"
#include "drover/error.h"
#include "image/oci.h"
#include "runtime/seccomp.h"

#define DRV_SPEC_OCI_VERSION "1.0.2"
#define DRV_SPEC_DEFAULT_PIDS_LIMIT 1024
#define DRV_SPEC_NOFILE_MAX 1048576
#define DRV_SPEC_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
/* /etc/passwd and /etc/group of an image larger than this are refused. */
#define DRV_SPEC_ETC_FILE_MAX (1u << 20)

/* Values a fieldRef may ask for. NULL name/namespace: taken from the pod's metadata; other
 * NULLs resolve to "" (as kubelet does before the pod has an IP). */
typedef struct drv_spec_fields {
    const char *pod_name;
    const char *pod_namespace;
    const char *pod_uid;
    const char *node_name;
    const char *pod_ip;
    const char *host_ip;
} drv_spec_fields_t;

/* Everything one container's config needs. All pointers are borrowed: they must stay valid
 * for the duration of the call only; nothing is kept. */
typedef struct drv_spec_input {
    const cJSON *pod;       /* the Pod, normalized by drv_model_normalize (required) */
    const cJSON *container; /* an element of pod.spec.containers or .initContainers (required) */
    bool is_init;           /* container is an init container (annotations only) */

    const drv_oci_config_t *image; /* the image's config (Env, Entrypoint, Cmd, ...); NULL=none */
    const char *rootfs;            /* absolute path of the mounted root file system (required) */

    /* Namespaces to join, e.g. the pod's persistent ones bind-mounted by the sandbox.
     * hostNetwork: the host's network and UTS namespaces (paths ignored); hostIPC: the host's
     * IPC namespace; otherwise NULL creates a new private namespace for this container only.
     * PID: a new namespace unless hostPID. Mount and cgroup: always new. */
    const char *netns_path;
    const char *ipcns_path;
    const char *utsns_path;
    /* Bind-mounted at /dev/shm when set (the pod's shared shm); else a private tmpfs, or the
     * host's /dev/shm with hostIPC. */
    const char *shm_path;

    /* The hostname: set in the container's UTS namespace (new or joined) and as $HOSTNAME.
     * NULL: pod.spec.hostname, else metadata.name; with hostNetwork the node's hostname. */
    const char *hostname;

    /* Key sources for env valueFrom and envFrom: JSON objects mapping a name to the
     * normalized ConfigMap / Secret object (Secret data is base64). NULL = none exists. */
    const cJSON *configmaps;
    const cJSON *secrets;
    drv_spec_fields_t fields;

    /* Where the agent prepared each emptyDir, configMap and secret volume:
     * <volumes_dir>/<volume name>. hostPath volumes mount their own path. */
    const char *volumes_dir;

    /* Files bind-mounted at /etc/resolv.conf, /etc/hosts, /etc/hostname; NULL = not mounted.
     * A container's own volumeMount at one of these paths wins. */
    const char *resolv_conf;
    const char *hosts;
    const char *hostname_file;

    /* linux.cgroupsPath; NULL = cgroups disabled: no cgroupsPath and no linux.resources. */
    const char *cgroups_path;
    int64_t pids_limit; /* 0: DRV_SPEC_DEFAULT_PIDS_LIMIT; < 0: no pids limit */

    /* RuntimeDefault seccomp (unless the pod or container asks for Unconfined, or the
     * container is privileged): seccomp, the loaded profile (the agent's cache), or else
     * seccomp_path, loaded for this call (NULL: DRV_SECCOMP_DEFAULT_PATH). */
    const drv_seccomp_profile_t *seccomp;
    const char *seccomp_path;
    const char *arch;           /* for seccomp; NULL = this machine */
    const char *kernel_release; /* for seccomp minKernel; NULL = the running kernel */

    const char *dev_dir; /* host devices given to privileged containers; NULL = "/dev" */
} drv_spec_input_t;

/* The value a resourceFieldRef asks for, by kubelet's rules: resource "limits.cpu",
 * "limits.memory", "requests.cpu" or "requests.memory" of the container named container
 * (containers, initContainers) of the normalized pod, divided by divisor (NULL, "" or "0":
 * "1"; a CPU divisor in millicores, a memory divisor in bytes) and rounded up. A limit the
 * container does not set is the node's allocatable (drv_spec_node_allocatable); a request it
 * does not set is 0. out receives the decimal text. DRV_ERR_NOTFOUND: no such container;
 * DRV_ERR_INVALID: another resource, a bad divisor; DRV_ERR_TOOBIG: out too small. */
DRV_API DRV_NODISCARD drv_err_t drv_spec_resource_value(const cJSON *pod, const char *container,
                                                        const char *resource, const char *divisor,
                                                        char *out, size_t outsz, drv_error_t *err);

/* This node's allocatable CPU (millicores) and memory (bytes), as the agent reports them in
 * its node status: capacity less 100m CPU and 5 % of memory (at least 64 MiB). */
DRV_API void drv_spec_node_allocatable(int64_t *millicores, int64_t *bytes);

/* The pod's /etc/hosts as the kubelet writes it into out (reset first): localhost lines,
 * then "<pod_ip>\t<hostname>" when pod_ip is not empty, then the pod's spec.hostAliases under
 * "# Entries added by HostAliases." (one line per entry: ip, then its hostnames). With
 * hostNetwork the kubelet starts from the node's file instead: base (may be NULL) is then used
 * in place of the first two parts. DRV_ERR_TOOBIG when out's cap is reached. */
DRV_API DRV_NODISCARD drv_err_t drv_spec_hosts_file(const cJSON *pod, const char *pod_ip,
                                                    const char *hostname, const char *base,
                                                    drv_buf_t *out);

/* Builds the complete config.json object (ociVersion DRV_SPEC_OCI_VERSION) for one
 * container. Errors say which field of the pod is at fault and why, e.g.
 * "containers[app].env[DB_PASS]: secret \"db\" has no key \"pass\"" or
 * "containers[app]: runAsNonRoot and image will run as root". *config_json is a new tree
 * owned by the caller (cJSON_Delete); untouched on failure. */
DRV_API DRV_NODISCARD drv_err_t drv_spec_build(const drv_spec_input_t *in, cJSON **config_json,
                                               drv_error_t *err);

/* Kubernetes' $(VAR) expansion (kubelet's expansion package): "$(NAME)" is replaced by the
 * value of NAME in env (an array of "KEY=value" strings, n entries, later entries win), an
 * unknown name is kept as written, "$$" is "$", anything else stays. Returns a malloc'd
 * string (caller frees), NULL on allocation failure or if the result would exceed max bytes. */
DRV_API char *drv_spec_expand(const char *s, const char *const *env, size_t n, size_t max);

#endif
