/* Image references as users write them ("busybox", "127.0.0.1:5000/app:1.2",
 * "ghcr.io/org/x@sha256:...") parsed and normalised the way Docker does: docker.io when no
 * registry is named, "library/" for its one-component names, tag "latest" when neither a tag
 * nor a digest is given. */
#ifndef DROVER_REF_H
#define DROVER_REF_H

#include <stddef.h>
#include "drover/digest.h"
#include "drover/error.h"

#define DRV_REF_DOMAIN_MAX 256 /* "host[:port]" */
#define DRV_REF_PATH_MAX 256   /* repository path; domain + "/" + path is at most 255 */
#define DRV_REF_TAG_MAX 129    /* 128 characters + NUL */
#define DRV_REF_STR_MAX 512    /* the canonical form, with tag and digest */

#define DRV_REF_DOCKER_DOMAIN "docker.io"
#define DRV_REF_DOCKER_API_HOST "registry-1.docker.io"

typedef struct drv_image_ref {
    char domain[DRV_REF_DOMAIN_MAX]; /* "docker.io", "127.0.0.1:5000", "[::1]:5000" */
    char path[DRV_REF_PATH_MAX];     /* "library/busybox" */
    char tag[DRV_REF_TAG_MAX];       /* "" when only a digest was given */
    char digest[DRV_DIGEST_STR_MAX]; /* "sha256:<hex>" or "" */
} drv_image_ref_t;

/* Parses s into *out (untouched on failure). Errors quote the reference and say which part
 * is wrong ("image \"Busybox\": repository name must be lowercase"). A digest with another
 * algorithm than sha256 is DRV_ERR_UNSUPPORTED. */
DRV_API DRV_NODISCARD drv_err_t drv_image_ref_parse(const char *s, drv_image_ref_t *out,
                                                    drv_error_t *err);

/* The canonical string: "docker.io/library/busybox:latest", "host:5000/app@sha256:...",
 * or with both tag and digest "host/app:1@sha256:...". Cut to fit outsz (>= DRV_REF_STR_MAX
 * never cuts). Returns out. */
DRV_API const char *drv_image_ref_format(const drv_image_ref_t *r, char *out, size_t outsz);

/* The repository name without tag or digest: "docker.io/library/busybox". Returns out, ""
 * when outsz is too small (DRV_REF_STR_MAX never is): never a cut name. */
DRV_API const char *drv_image_ref_name(const drv_image_ref_t *r, char *out, size_t outsz);

/* The host[:port] to talk to: "registry-1.docker.io" for docker.io, else the domain.
 * Points into r or to a static string. */
DRV_API const char *drv_image_ref_api_host(const drv_image_ref_t *r);

/* What goes after /manifests/: the digest when there is one, else the tag. Points into r. */
DRV_API const char *drv_image_ref_manifest_ref(const drv_image_ref_t *r);

#endif
