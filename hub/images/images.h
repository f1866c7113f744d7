/* The platforms (os/arch[/variant]) an image offers, read from its registry by the hub so that
 * the scheduler places a pod only on a node that can run its image (an arm64-only image never
 * lands on an armhf device). Lookups run on a thread of their own; the scheduler asks from the
 * hub's loop and gets an answer, "not yet" or "unknown" (then any node, as before). */
#ifndef DROVER_HUB_IMAGES_H
#define DROVER_HUB_IMAGES_H

#include <stddef.h>
#include <stdint.h>

#include "drover/error.h"

typedef struct drv_images drv_images_t;

typedef struct drv_images_opts {
    /* Registries (host[:port] as in image references) spoken to over plain HTTP; others over
     * HTTPS with the system's CAs. */
    const char *const *insecure;
    size_t n_insecure;
    int64_t ttl_ms;   /* an answer is used this long, then looked up again; <= 0: 10 min */
    int64_t retry_ms; /* a failed lookup is tried again after; <= 0: 60 s */
    /* How long the scheduler holds a pod back while its image's lookup runs; after that it
     * places the pod on any node (a registry the hub cannot reach must not stop scheduling).
     * <= 0: 10 s. */
    int64_t wait_ms;
    int64_t timeout_ms; /* one lookup's HTTP time limit; <= 0: 10 s */
} drv_images_opts_t;

#define DRV_IMAGES_MAX 4096 /* images remembered; the least recently asked go first */
#define DRV_IMAGES_PLATFORMS_MAX 32

/* Starts the lookup thread. *out is owned by the caller (drv_images_free). */
DRV_NODISCARD drv_err_t drv_images_new(const drv_images_opts_t *opts, drv_images_t **out,
                                       drv_error_t *err);
/* Stops the thread (an HTTP request in flight is abandoned within its time limit). */
void drv_images_free(drv_images_t *im);

/* An fd that becomes readable when a lookup finished (poll for POLLIN, then
 * drv_images_drain): new answers can place pods that were held back. */
int drv_images_fd(const drv_images_t *im);
void drv_images_drain(drv_images_t *im);

/* For drv_ctrl_platforms_fn (ctx is the drv_images_t): the image's platforms
 * ("os/arch[/variant]", NULL-terminated, valid until the next call), DRV_CTRL_PLATFORMS_PENDING
 * while its first lookup runs (within wait_ms), or NULL when unknown (the lookup failed, or took
 * too long: any node). The first call for an image starts its lookup. */
const char *const *drv_images_platforms(void *ctx, const char *image);

/* What a lookup found, for tests and logs: platforms of image into out (NULL-terminated, at most
 * DRV_IMAGES_PLATFORMS_MAX strings of at most 95 characters, malloc'd: free each and the array),
 * or an error naming the image. Blocking; used by the lookup thread. */
DRV_NODISCARD drv_err_t drv_images_lookup(const drv_images_opts_t *opts, const char *image,
                                          char ***out, drv_error_t *err);

#endif
