/* Registry mirrors, as K3s's registries.yaml declares them: for a registry ("docker.io", or "*"
 * for every registry), endpoints tried in order before the registry itself, each optionally with
 * rewrites of the repository path. An image pulled through a mirror is stored under its own name,
 * so pods and `imagePullPolicy` see no difference. */
#ifndef DROVER_AGENT_MIRROR_H
#define DROVER_AGENT_MIRROR_H

#include <stdbool.h>
#include <stddef.h>
#include "drover/error.h"
#include "drover/ref.h"

#define DRV_MIRROR_MAX 8           /* registries with mirrors */
#define DRV_MIRROR_MAX_ENDPOINTS 4 /* per registry */
#define DRV_MIRROR_MAX_REWRITES 4  /* per registry */
#define DRV_MIRROR_PATTERN_MAX 128
/* Every endpoint of every mirror, plus the registry itself. */
#define DRV_MIRROR_MAX_SOURCES (DRV_MIRROR_MAX_ENDPOINTS + 1)

typedef struct drv_mirror_endpoint {
    char host[DRV_REF_DOMAIN_MAX]; /* "host[:port]" */
    bool plain_http;               /* the endpoint was written http:// */
} drv_mirror_endpoint_t;

typedef struct drv_mirror_rewrite {
    char pattern[DRV_MIRROR_PATTERN_MAX]; /* POSIX extended regex over the repository path */
    char replace[DRV_MIRROR_PATTERN_MAX]; /* "$1"/"${1}" name groups, "$$" is a "$" */
} drv_mirror_rewrite_t;

typedef struct drv_mirror_conf {
    char registry[DRV_REF_DOMAIN_MAX]; /* as in image references ("docker.io"), or "*" */
    drv_mirror_endpoint_t endpoints[DRV_MIRROR_MAX_ENDPOINTS];
    size_t n_endpoints;
    drv_mirror_rewrite_t rewrites[DRV_MIRROR_MAX_REWRITES];
    size_t n_rewrites;
} drv_mirror_conf_t;

/* One place to pull an image from. */
typedef struct drv_mirror_source {
    drv_image_ref_t ref; /* the reference to fetch, at the endpoint (or the registry) */
    bool plain_http;
    bool upstream; /* the registry itself, not a mirror */
} drv_mirror_source_t;

/* Reads "http[s]://host[:port]" (a trailing "/" or "/v2" allowed) into *out. why (may be
 * NULL) gets the reason of a refusal. */
DRV_NODISCARD bool drv_mirror_parse_endpoint(const char *url, drv_mirror_endpoint_t *out, char *why,
                                             size_t whysz);

/* Whether pattern compiles and replace names only groups the pattern has. */
DRV_NODISCARD bool drv_mirror_check_rewrite(const char *pattern, const char *replace, char *why,
                                            size_t whysz);

/* The mirror entry that applies to ref: its registry's, else "*"'s, else NULL. */
const drv_mirror_conf_t *drv_mirror_find(const drv_mirror_conf_t *mirrors, size_t n,
                                         const drv_image_ref_t *ref);

/* The sources to try for ref, in order: each endpoint of its mirror entry (the first rewrite
 * whose pattern matches the path applied), then the registry itself unless an endpoint already
 * is it. *n_out >= 1 on success. A rewrite that yields an invalid repository name is an error
 * naming the pattern. */
DRV_NODISCARD drv_err_t drv_mirror_sources(const drv_mirror_conf_t *mirrors, size_t n,
                                           const drv_image_ref_t *ref,
                                           drv_mirror_source_t out[DRV_MIRROR_MAX_SOURCES],
                                           size_t *n_out, drv_error_t *err);

/* The plain-HTTP endpoint hosts of all mirrors, for the registry client's insecure list: at
 * most max are written to out (pointers into mirrors). Returns how many. */
size_t drv_mirror_plain_hosts(const drv_mirror_conf_t *mirrors, size_t n, const char **out,
                              size_t max);

struct drv_registry;
struct drv_store;
struct drv_platform;

/* Pulls image into st as drv_registry_pull does, trying the sources above in turn; the image is
 * recorded under its own name whichever source served it. When every source fails, the error
 * is the registry's own, preceded by what the first mirror said. */
DRV_NODISCARD drv_err_t drv_mirror_pull(struct drv_registry *reg, struct drv_store *st,
                                        const drv_mirror_conf_t *mirrors, size_t n,
                                        const char *image, const struct drv_platform *platform,
                                        drv_error_t *err);

#endif
