/* OCI / Docker v2 image manifests, image indexes (manifest lists) and image configs: parsed
 * from registry bytes under hard limits into plain structs, every field checked, errors
 * naming the field ("layers[2].digest: ..."). Also the device platform and how an index
 * entry is chosen for it. */
#ifndef DROVER_OCI_H
#define DROVER_OCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "drover/digest.h"
#include "drover/error.h"

#define DRV_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define DRV_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define DRV_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define DRV_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define DRV_MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define DRV_MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"

#define DRV_OCI_MANIFEST_MAX_BYTES (4u << 20) /* manifests and indexes */
#define DRV_OCI_CONFIG_MAX_BYTES (4u << 20)   /* image configs */
#define DRV_OCI_MAX_LAYERS 256
#define DRV_OCI_INDEX_MAX_ENTRIES 1024
#define DRV_MEDIA_TYPE_MAX 128

typedef struct drv_platform {
    char os[32];      /* "linux" */
    char arch[32];    /* "arm64", "arm", "amd64" (GOARCH names) */
    char variant[16]; /* "v8", "v7", "v6" or "" */
} drv_platform_t;

#define DRV_PLATFORM_STR_MAX 96

/* "os/arch[/variant]". Aliases are normalised: aarch64 -> arm64, x86_64 -> amd64,
 * armhf -> arm/v7, armel -> arm/v6; arm64 without variant becomes arm64/v8, arm without
 * variant arm/v7. Errors name the input. */
DRV_API DRV_NODISCARD drv_err_t drv_platform_parse(const char *s, drv_platform_t *out,
                                                   drv_error_t *err);
/* The platform this program was built for (linux/arm64/v8, linux/arm/v7, linux/amd64, ...). */
DRV_API void drv_platform_default(drv_platform_t *out);
/* How well an image for have suits a device that wants want: -1 not at all, else higher is
 * better (100 exact). Rules as for drv_oci_index_select. */
DRV_API int drv_platform_match(const drv_platform_t *want, const drv_platform_t *have);
/* "linux/arm/v7" (no trailing "/" without a variant). Returns out, "" when outsz is too small
 * (DRV_PLATFORM_STR_MAX never is): never a cut name. */
DRV_API const char *drv_platform_format(const drv_platform_t *p, char *out, size_t outsz);

typedef struct drv_oci_descriptor {
    char media_type[DRV_MEDIA_TYPE_MAX];
    drv_digest_t digest;
    uint64_t size;
    bool has_platform;       /* index entries only */
    drv_platform_t platform; /* as written in the index (aliases normalised, variant kept) */
} drv_oci_descriptor_t;

typedef enum { DRV_OCI_MANIFEST = 0, DRV_OCI_INDEX } drv_oci_kind_t;

typedef struct drv_oci_manifest {
    drv_oci_kind_t kind;
    char media_type[DRV_MEDIA_TYPE_MAX]; /* the effective media type */
    drv_oci_descriptor_t config;         /* DRV_OCI_MANIFEST only */
    drv_oci_descriptor_t *entries;       /* layers (image, bottom first) or manifests (index) */
    size_t n_entries;
} drv_oci_manifest_t;

/* Parses a manifest or index. content_type (the HTTP Content-Type, may be NULL) is used only
 * when the document has no mediaType field; with neither, the kind is told from the keys.
 * Schema 1 manifests, non-container artifacts (config media type) and unknown layer media
 * types are DRV_ERR_UNSUPPORTED; anything malformed DRV_ERR_INVALID naming the field.
 * *out owns its entries (drv_oci_manifest_free); untouched on failure. */
DRV_API DRV_NODISCARD drv_err_t drv_oci_manifest_parse(const char *data, size_t len,
                                                       const char *content_type,
                                                       drv_oci_manifest_t *out, drv_error_t *err);
DRV_API void drv_oci_manifest_free(drv_oci_manifest_t *m);

/* Chooses the index entry to run on want: same os and architecture; for the variant the
 * exact one first, then a compatible one (arm/v7 takes an entry without variant, then v6,
 * then v5; arm64/v8 takes an entry without variant). Ties go to the earlier entry. *out
 * points into index. No match: DRV_ERR_NOTFOUND listing the platforms offered. */
DRV_API DRV_NODISCARD drv_err_t drv_oci_index_select(const drv_oci_manifest_t *index,
                                                     const drv_platform_t *want,
                                                     const drv_oci_descriptor_t **out,
                                                     drv_error_t *err);

/* The parts of an image config the runtime needs. Arrays are NULL-terminated as well as
 * counted; all strings owned by the struct (drv_oci_config_free). */
typedef struct drv_oci_config {
    drv_platform_t platform; /* os/architecture/variant of the config */
    char **env;              /* "KEY=value" */
    size_t n_env;
    char **entrypoint;
    size_t n_entrypoint;
    char **cmd;
    size_t n_cmd;
    char *working_dir; /* "" when unset, never NULL */
    char *user;        /* "" when unset, never NULL */
    size_t n_diff_ids; /* rootfs.diff_ids count, to check against the manifest's layers */
} drv_oci_config_t;

DRV_API DRV_NODISCARD drv_err_t drv_oci_config_parse(const char *data, size_t len,
                                                     drv_oci_config_t *out, drv_error_t *err);
DRV_API void drv_oci_config_free(drv_oci_config_t *c);

#endif
