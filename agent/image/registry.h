/* OCI Distribution API client (libcurl): manifests and blobs by digest, anonymous, basic and
 * bearer-token auth, HTTPS with certificate checks (plain HTTP only for hosts listed
 * insecure), resumable blob downloads verified against their digests; and the pull of a
 * whole image into a drv_store_t. */
#ifndef DROVER_AGENT_REGISTRY_H
#define DROVER_AGENT_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "drover/buf.h"
#include "drover/digest.h"
#include "drover/error.h"
#include "image/oci.h"
#include "image/ref.h"
#include "drover/challenge.h"
#include "image/store.h"

typedef struct drv_registry drv_registry_t;

typedef struct drv_registry_cred {
    const char *host; /* "host[:port]" as written in image references ("docker.io" too) */
    const char *username;
    const char *password;
} drv_registry_cred_t;

typedef struct drv_registry_opts {
    const char *const *insecure; /* "host[:port]" spoken to over plain HTTP */
    size_t n_insecure;
    const drv_registry_cred_t *creds;
    size_t n_creds;
    const char *ca_file;  /* extra CA bundle, NULL for the system's */
    long connect_timeout; /* seconds; 0 = 15 */
    long stall_timeout;   /* seconds below 1 byte/s before a transfer is dropped; 0 = 60 */
    long max_redirects;   /* 0 = 5 */
} drv_registry_opts_t;

/* Creates a client; opts (may be NULL) is copied. *out is owned by the caller
 * (drv_registry_free). Tokens are cached per repository inside the client. A client holds
 * one libcurl handle (connections are reused): use it from one thread at a time. */
DRV_API DRV_NODISCARD drv_err_t drv_registry_new(const drv_registry_opts_t *opts,
                                                 drv_registry_t **out, drv_error_t *err);
DRV_API void drv_registry_free(drv_registry_t *reg);

/* Body bytes received in successful responses (manifests and blobs) since creation. */
DRV_API uint64_t drv_registry_bytes_received(const drv_registry_t *reg);

/* WWW-Authenticate challenges (drover/challenge.h): the parser lives in libdrover-shared,
 * where the hub reads registries too. */
static inline DRV_NODISCARD drv_err_t drv_registry_parse_challenge(const char *header,
                                                                   drv_auth_challenge_t *out,
                                                                   drv_error_t *err)
{
    return drv_challenge_parse(header, out, err);
}

/* Fetches the manifest ref names by reference (a tag or "sha256:..."), at most
 * DRV_OCI_MANIFEST_MAX_BYTES, into body (reset first; body->max is raised to the cap).
 * Verifies the content against the digest when reference is one, else against a
 * Docker-Content-Digest header if the registry sent one. content_type gets the response's
 * Content-Type ("" if none); *digest the content's digest. */
DRV_API DRV_NODISCARD drv_err_t drv_registry_get_manifest(drv_registry_t *reg,
                                                          const drv_image_ref_t *ref,
                                                          const char *reference, drv_buf_t *body,
                                                          char *content_type, size_t ctsz,
                                                          drv_digest_t *digest, drv_error_t *err);

/* Downloads blob d of exactly size bytes into the store unless it is there, resuming a
 * partial download with a Range request, retrying a transfer that broke off after progress.
 * what names the blob in errors ("layer sha256:..."). */
DRV_API DRV_NODISCARD drv_err_t drv_registry_fetch_blob(drv_registry_t *reg,
                                                        const drv_image_ref_t *ref, drv_store_t *st,
                                                        const drv_digest_t *d, uint64_t size,
                                                        const char *what, drv_error_t *err);

typedef struct drv_pull_result {
    char reference[DRV_REF_STR_MAX]; /* canonical */
    drv_digest_t manifest;           /* the image manifest that was pulled */
    bool has_index;
    drv_digest_t index; /* the index (manifest list) it was chosen from */
    drv_platform_t platform;
    size_t n_layers;
    size_t layers_fetched;  /* blobs that were not in the store */
    size_t layers_unpacked; /* layers that were not unpacked yet */
    uint64_t bytes;         /* body bytes received for this pull */
} drv_pull_result_t;

/* Pulls image (any drv_image_ref_parse form) for platform (NULL: this device's) into st:
 * manifest (an index resolves to the platform's entry), config and layers, each verified
 * against its digest, layers unpacked once per digest, then the image record. Errors read
 * "pull <image>: manifest: HTTP 404 MANIFEST_UNKNOWN: manifest unknown". A registry that
 * cannot be reached is DRV_ERR_AGAIN, an unknown image DRV_ERR_NOTFOUND, credentials
 * missing or refused DRV_ERR_PERM, a digest mismatch DRV_ERR_INTEGRITY. res may be NULL. */
DRV_API DRV_NODISCARD drv_err_t drv_registry_pull(drv_registry_t *reg, drv_store_t *st,
                                                  const char *image, const drv_platform_t *platform,
                                                  drv_pull_result_t *res, drv_error_t *err);

/* The same, fetching from via (the same repository at a mirror, image/mirror.h) while the
 * image is recorded under image's own name. via NULL: from image's registry. */
DRV_API DRV_NODISCARD drv_err_t drv_registry_pull_via(drv_registry_t *reg, drv_store_t *st,
                                                      const char *image, const drv_image_ref_t *via,
                                                      const drv_platform_t *platform,
                                                      drv_pull_result_t *res, drv_error_t *err);

#endif
