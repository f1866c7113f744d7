/* Role-based access control as Kubernetes evaluates it (plugin/pkg/auth/authorizer/rbac): the
 * rules of the Roles and ClusterRoles that RoleBindings and ClusterRoleBindings in the store
 * give to a subject, read from the store on each request (no cache: the hub's loop is the only
 * writer, and a binding removed takes effect at once). Used for service account tokens; the
 * hub's own API tokens keep their roles (auth.h). */
#ifndef DROVER_HUB_RBAC_H
#define DROVER_HUB_RBAC_H

#include <stdbool.h>
#include <stddef.h>

#include "drover/error.h"
#include "store/store.h"

/* What a request asks, in RBAC's terms. A resource request names group/resource; a
 * non-resource request has path set (and resource NULL). */
typedef struct drv_rbac_request {
    const char *verb;        /* get, list, watch, create, update, patch, delete, ... */
    const char *group;       /* "" the core group */
    const char *resource;    /* "pods"; NULL for a non-resource request */
    const char *subresource; /* "" or NULL none; "status", "log", "scale" */
    const char *ns;          /* "" or NULL: cluster-wide */
    const char *name;        /* "" or NULL: none */
    const char *path;        /* non-resource requests: the URL path ("/metrics") */
} drv_rbac_request_t;

/* Who asks: a user name and its groups. */
typedef struct drv_rbac_subject {
    const char *user;
    const char *const *groups;
    size_t ngroups;
} drv_rbac_subject_t;

/* Whether some binding in s gives who a rule that allows rq: *allowed. Bindings to a role that
 * does not exist give nothing. why (whysz bytes, may be NULL) gets the binding that allowed
 * it. Store failures as they come. */
DRV_NODISCARD drv_err_t drv_rbac_allowed(drv_hstore_t *s, const drv_rbac_subject_t *who,
                                         const drv_rbac_request_t *rq, bool *allowed, char *why,
                                         size_t whysz, drv_error_t *err);

/* Whether one PolicyRule (a JSON object) allows rq: verbs, apiGroups, resources (with
 * "resource/subresource" and "*\/subresource"), resourceNames, nonResourceURLs (exact or a
 * prefix ending in '*'), with '*' wildcards. */
bool drv_rbac_rule_allows(const cJSON *rule, const drv_rbac_request_t *rq);

#endif
