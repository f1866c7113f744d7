/* RBAC evaluation (rbac.h): ClusterRoleBindings first (their ClusterRoles apply everywhere and
 * to paths), then the RoleBindings of the request's namespace (a Role of that namespace or a
 * ClusterRole, applied in that namespace only). The first rule that allows wins; nothing
 * denies. */
#include "auth/rbac.h"

#include <string.h>

#include "drover/cleanup.h"
#include "drover/fmt.h"
#include "drover/json.h"
#include "drover/model.h"
#include "drover/selector.h"

static const char *nz(const char *s)
{
    return s ? s : "";
}

/* Whether list (an array of strings) holds "*" or s. */
static bool has(const cJSON *list, const char *s)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, list)
    {
        if (cJSON_IsString(it) && (!strcmp(it->valuestring, "*") || !strcmp(it->valuestring, s)))
            return true;
    }
    return false;
}

static bool resource_matches(const cJSON *list, const char *res, const char *sub)
{
    char combined[256];
    if (drv_fmt(combined, sizeof(combined), "%s%s%s", res, *sub ? "/" : "", sub) != DRV_OK)
        return false;
    const cJSON *it;
    cJSON_ArrayForEach(it, list)
    {
        if (!cJSON_IsString(it))
            continue;
        const char *r = it->valuestring;
        if (!strcmp(r, "*") || !strcmp(r, combined))
            return true;
        /* "*\/status": that subresource of every resource */
        if (*sub && r[0] == '*' && r[1] == '/' && !strcmp(r + 2, sub))
            return true;
    }
    return false;
}

static bool url_matches(const cJSON *list, const char *path)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, list)
    {
        if (!cJSON_IsString(it))
            continue;
        const char *u = it->valuestring;
        size_t n = strlen(u);
        if (!strcmp(u, "*") || !strcmp(u, path))
            return true;
        if (n && u[n - 1] == '*' && !strncmp(u, path, n - 1))
            return true;
    }
    return false;
}

bool drv_rbac_rule_allows(const cJSON *rule, const drv_rbac_request_t *rq)
{
    if (!has(drv_json_get(rule, "verbs"), nz(rq->verb)))
        return false;
    if (!rq->resource)
        return rq->path && url_matches(drv_json_get(rule, "nonResourceURLs"), rq->path);
    if (!has(drv_json_get(rule, "apiGroups"), nz(rq->group)) ||
        !resource_matches(drv_json_get(rule, "resources"), rq->resource, nz(rq->subresource)))
        return false;
    const cJSON *names = drv_json_get(rule, "resourceNames");
    if (cJSON_GetArraySize(names) == 0)
        return true;
    /* resourceNames never match a request without a name (list, create) */
    const cJSON *it;
    cJSON_ArrayForEach(it, names)
    {
        if (cJSON_IsString(it) && *nz(rq->name) && !strcmp(it->valuestring, rq->name))
            return true;
    }
    return false;
}

/* Whether a subject of binding b (in namespace bns, "" for a ClusterRoleBinding) is who. */
static bool applies_to(const cJSON *b, const char *bns, const drv_rbac_subject_t *who)
{
    const cJSON *s;
    cJSON_ArrayForEach(s, drv_json_get(b, "subjects"))
    {
        const char *kind = drv_json_str(s, "kind"), *name = drv_json_str(s, "name");
        if (!kind || !name)
            continue;
        if (!strcmp(kind, "User") && !strcmp(name, nz(who->user)))
            return true;
        if (!strcmp(kind, "Group"))
            for (size_t i = 0; i < who->ngroups; i++)
                if (!strcmp(name, who->groups[i]))
                    return true;
        if (!strcmp(kind, "ServiceAccount")) {
            const char *ns = drv_json_str(s, "namespace");
            char user[600];
            if (drv_fmt(user, sizeof(user), "system:serviceaccount:%s:%s", ns && *ns ? ns : bns,
                        name) == DRV_OK &&
                !strcmp(user, nz(who->user)))
                return true;
        }
    }
    return false;
}

static bool rules_allow(const cJSON *role, const drv_rbac_request_t *rq)
{
    const cJSON *rule;
    cJSON_ArrayForEach(rule, drv_json_get(role, "rules"))
    {
        if (drv_rbac_rule_allows(rule, rq))
            return true;
    }
    return false;
}

/* An aggregated ClusterRole: the rules of every ClusterRole its clusterRoleSelectors select
 * (what Kubernetes' aggregation controller copies into its rules), read now. */
static drv_err_t aggregated_allows(drv_hstore_t *s, const cJSON *role, const drv_rbac_request_t *rq,
                                   bool *allowed, drv_error_t *err)
{
    _cleanup_cjson_ cJSON *all = NULL;
    drv_err_t r = drv_hstore_list(s, DRV_KIND_CLUSTERROLE, NULL, NULL, &all, NULL, err);
    if (r != DRV_OK)
        return r;
    const cJSON *sel;
    cJSON_ArrayForEach(sel,
                       drv_json_get(drv_json_get(role, "aggregationRule"), "clusterRoleSelectors"))
    {
        drv_selector_t parsed = {0};
        drv_error_t e = DRV_ERROR_INIT;
        if (drv_selector_from_json(sel, &parsed, &e) != DRV_OK)
            continue; /* validated when stored */
        const cJSON *cr;
        cJSON_ArrayForEach(cr, all)
        {
            /* one level, as the controller's result: an aggregated role's own selectors are
             * not followed from here */
            if (drv_json_get(cr, "aggregationRule") ||
                !drv_selector_matches(&parsed,
                                      drv_json_get(drv_json_get(cr, "metadata"), "labels")))
                continue;
            if (rules_allow(cr, rq)) {
                *allowed = true;
                break;
            }
        }
        drv_selector_free(&parsed);
        if (*allowed)
            break;
    }
    return DRV_OK;
}

/* Whether the role b refers to (looked up in ns for a Role) has a rule allowing rq. */
static drv_err_t role_allows(drv_hstore_t *s, const cJSON *b, const char *ns,
                             const drv_rbac_request_t *rq, bool *allowed, drv_error_t *err)
{
    const cJSON *ref = drv_json_get(b, "roleRef");
    const char *kind = drv_json_str(ref, "kind"), *name = drv_json_str(ref, "name");
    *allowed = false;
    if (!kind || !name)
        return DRV_OK;
    bool cluster = !strcmp(kind, "ClusterRole");
    if (!cluster && (strcmp(kind, "Role") || !*ns))
        return DRV_OK;
    _cleanup_cjson_ cJSON *role = NULL;
    drv_error_t e = DRV_ERROR_INIT;
    drv_err_t r =
        drv_hstore_get(s, cluster ? DRV_KIND_CLUSTERROLE : DRV_KIND_ROLE, ns, name, &role, &e);
    if (r == DRV_ERR_NOTFOUND)
        return DRV_OK;
    if (r != DRV_OK)
        return drv_error_set(err, r, e.sys_errno, "rbac: %s %s: %s", kind, name, drv_error_msg(&e));
    if (cluster && drv_json_get(role, "aggregationRule"))
        return aggregated_allows(s, role, rq, allowed, err);
    *allowed = rules_allow(role, rq);
    return DRV_OK;
}

/* The bindings of kind in ns (NULL: all) that apply to who and allow rq. */
static drv_err_t scan(drv_hstore_t *s, drv_kind_t kind, const char *ns,
                      const drv_rbac_subject_t *who, const drv_rbac_request_t *rq, bool *allowed,
                      char *why, size_t whysz, drv_error_t *err)
{
    _cleanup_cjson_ cJSON *items = NULL;
    drv_err_t r = drv_hstore_list(s, kind, ns, NULL, &items, NULL, err);
    if (r != DRV_OK)
        return r;
    const cJSON *b;
    cJSON_ArrayForEach(b, items)
    {
        if (!applies_to(b, ns ? ns : "", who))
            continue;
        r = role_allows(s, b, ns ? ns : "", rq, allowed, err);
        if (r != DRV_OK)
            return r;
        if (*allowed) {
            if (why && whysz)
                drv_fmt_cut(why, whysz, "%s %s", drv_kind_name(kind),
                            drv_json_str_or(drv_json_get(b, "metadata"), "name", ""));
            return DRV_OK;
        }
    }
    return DRV_OK;
}

drv_err_t drv_rbac_allowed(drv_hstore_t *s, const drv_rbac_subject_t *who,
                           const drv_rbac_request_t *rq, bool *allowed, char *why, size_t whysz,
                           drv_error_t *err)
{
    *allowed = false;
    if (why && whysz)
        why[0] = '\0';
    drv_err_t r = scan(s, DRV_KIND_CLUSTERROLEBINDING, NULL, who, rq, allowed, why, whysz, err);
    if (r != DRV_OK || *allowed || !rq->resource || !*nz(rq->ns))
        return r;
    return scan(s, DRV_KIND_ROLEBINDING, rq->ns, who, rq, allowed, why, whysz, err);
}
