/* The RuntimeDefault seccomp profile: the containers-common profile file
 * (/usr/share/containers/seccomp.json, moby's format) parsed and checked once, then turned
 * into the OCI linux.seccomp object for one container's architecture, capabilities and the
 * running kernel, with moby's rules for includes/excludes. */
#ifndef DROVER_AGENT_SECCOMP_H
#define DROVER_AGENT_SECCOMP_H

#include <stddef.h>
#include <cjson/cJSON.h>
#include "drover/error.h"

#define DRV_SECCOMP_DEFAULT_PATH "/usr/share/containers/seccomp.json"
#define DRV_SECCOMP_MAX_BYTES (1u << 20) /* a profile file larger than this is refused */

/* A parsed and validated profile. Immutable once loaded: the agent loads it at start and
 * passes the same object to every drv_seccomp_build (that is the cache). */
typedef struct drv_seccomp_profile drv_seccomp_profile_t;

/* Reads (at most DRV_SECCOMP_MAX_BYTES) and checks the profile file at path. Every field is
 * validated here, so that building never fails on the file's content; a bad file is
 * DRV_ERR_INVALID naming the field ("seccomp.json: syscalls[3].args[0].op: ..."). *out is
 * owned by the caller (drv_seccomp_free); untouched on failure. */
DRV_API DRV_NODISCARD drv_err_t drv_seccomp_load(const char *path, drv_seccomp_profile_t **out,
                                                 drv_error_t *err);
/* Same from memory; what names the source in errors. */
DRV_API DRV_NODISCARD drv_err_t drv_seccomp_parse(const char *data, size_t len, const char *what,
                                                  drv_seccomp_profile_t **out, drv_error_t *err);
DRV_API void drv_seccomp_free(drv_seccomp_profile_t *p);

/* What the filter is built for. */
typedef struct drv_seccomp_target {
    /* "x86_64"/"amd64", "aarch64"/"arm64" or "arm" (also "armv7l", "armv6l", "armhf");
     * NULL: the machine this runs on (uname). Others are DRV_ERR_UNSUPPORTED. */
    const char *arch;
    /* The container's bounding capability set, names as "CAP_CHOWN"; n_caps entries. */
    const char *const *caps;
    size_t n_caps;
    /* Kernel release for minKernel ("6.1.0-rpi7"); NULL: the running kernel (uname). */
    const char *kernel_release;
} drv_seccomp_target_t;

/* Builds the OCI linux.seccomp object: defaultAction/defaultErrnoRet of the profile,
 * architectures = the target's SCMP_ARCH_* plus its archMap sub-architectures, and every
 * syscall rule that applies (includes.arches/caps all present, no excludes.arches/caps
 * present, includes.minKernel <= kernel < excludes.minKernel), in file order. *out is a new
 * tree owned by the caller (cJSON_Delete); untouched on failure. */
DRV_API DRV_NODISCARD drv_err_t drv_seccomp_build(const drv_seccomp_profile_t *p,
                                                  const drv_seccomp_target_t *target, cJSON **out,
                                                  drv_error_t *err);

/* The SCMP_ARCH_* name of an architecture as accepted in drv_seccomp_target_t.arch (NULL:
 * this machine), or NULL if unsupported. Static string. */
DRV_API const char *drv_seccomp_arch_name(const char *arch);

#endif
