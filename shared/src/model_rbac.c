/* ServiceAccount (v1) and the RBAC kinds (rbac.authorization.k8s.io/v1 Role, ClusterRole,
 * RoleBinding, ClusterRoleBinding), validated as Kubernetes validates them (pkg/apis/rbac
 * validation): what the hub's authorizer (hub/auth/rbac.c) then evaluates for service account
 * tokens, aggregated ClusterRoles included (their selectors are read at evaluation). */
#include <string.h>

#include "drover/fmt.h"
#include "drover/json.h"
#include "drover/names.h"
#include "drover/selector.h"
#include "model_int.h"

#define RBAC_GROUP "rbac.authorization.k8s.io"

/* Kubernetes' path segment names (ValidateRBACName): anything but "." and "..", without '/'
 * or '%', so that "system:controller:x" is a name. */
bool v_rbac_name(const char *s, char *why, size_t whysz)
{
    const char *bad = NULL;
    if (!*s)
        bad = "must not be empty";
    else if (!strcmp(s, ".") || !strcmp(s, ".."))
        bad = "may not be '.' or '..'";
    else if (strchr(s, '/') || strchr(s, '%'))
        bad = "may not contain '/' or '%'";
    else if (strlen(s) > 253)
        bad = "must be no more than 253 characters";
    if (bad && why && whysz)
        drv_fmt_cut(why, whysz, "%s", bad);
    return bad == NULL;
}

/* A list of strings at parent.key where every item is non-empty. */
static void v_nonempty_strs(vctx_t *c, cJSON *parent, const char *key, bool required)
{
    cJSON *a = v_arr(c, parent, key, required);
    if (!a)
        return;
    if (required && cJSON_GetArraySize(a) == 0)
        v_failk(c, key, "required: at least one");
    size_t old = v_push_key(c, key), i = 0;
    for (cJSON *it = a->child; it; it = it->next, i++) {
        size_t o2 = v_push_index(c, i);
        if (!cJSON_IsString(it))
            v_fail(c, "must be a string");
        v_pop(c, o2);
    }
    v_pop(c, old);
}

static void v_policy_rule(vctx_t *c, cJSON *r, bool namespaced)
{
    static const char known[] = "apiGroups\0"
                                "resources\0"
                                "verbs\0"
                                "resourceNames\0"
                                "nonResourceURLs\0";
    v_fields(c, r, known, NULL, NULL);
    v_nonempty_strs(c, r, "verbs", true);
    v_nonempty_strs(c, r, "apiGroups", false);
    v_nonempty_strs(c, r, "resources", false);
    v_nonempty_strs(c, r, "resourceNames", false);
    v_nonempty_strs(c, r, "nonResourceURLs", false);
    int nurls = cJSON_GetArraySize(drv_json_get(r, "nonResourceURLs"));
    int nres = cJSON_GetArraySize(drv_json_get(r, "resources"));
    if (nurls > 0) {
        if (namespaced)
            v_failk(c, "nonResourceURLs", "namespaced rules cannot apply to non-resource URLs");
        else if (nres > 0 || cJSON_GetArraySize(drv_json_get(r, "apiGroups")) > 0)
            v_failk(c, "nonResourceURLs",
                    "rules cannot apply to both regular resources and "
                    "non-resource URLs");
        return;
    }
    if (nres == 0)
        v_failk(c, "resources", "resource rules must supply at least one resource");
    if (cJSON_GetArraySize(drv_json_get(r, "apiGroups")) == 0)
        v_failk(c, "apiGroups", "resource rules must supply at least one api group");
}

static void v_rules(vctx_t *c, cJSON *obj, bool namespaced)
{
    cJSON *rules = v_arr(c, obj, "rules", false);
    size_t old = v_push_key(c, "rules"), i = 0;
    for (cJSON *r = rules ? rules->child : NULL; r; r = r->next, i++) {
        size_t o2 = v_push_index(c, i);
        if (cJSON_IsObject(r))
            v_policy_rule(c, r, namespaced);
        else
            v_fail(c, "must be an object");
        v_pop(c, o2);
    }
    v_pop(c, old);
}

/* A ClusterRole's aggregationRule: clusterRoleSelectors, label selectors of the ClusterRoles
 * whose rules it gets (the authorizer reads them when it evaluates the role). */
static void v_aggregation(vctx_t *c, cJSON *obj)
{
    cJSON *ar = v_obj(c, obj, "aggregationRule", false);
    if (!ar)
        return;
    static const char known[] = "clusterRoleSelectors\0";
    size_t old = v_push_key(c, "aggregationRule");
    v_fields(c, ar, known, NULL, NULL);
    cJSON *sels = v_arr(c, ar, "clusterRoleSelectors", false);
    if (!cJSON_GetArraySize(sels))
        v_failk(c, "clusterRoleSelectors", "must have at least one clusterRoleSelector");
    size_t o2 = v_push_key(c, "clusterRoleSelectors"), i = 0;
    for (cJSON *sel = sels ? sels->child : NULL; sel; sel = sel->next, i++) {
        static const char sknown[] = "matchLabels\0"
                                     "matchExpressions\0";
        size_t o3 = v_push_index(c, i);
        drv_selector_t parsed = {0};
        drv_error_t err = DRV_ERROR_INIT;
        if (!cJSON_IsObject(sel)) {
            v_fail(c, "must be an object (a label selector)");
        } else {
            v_fields(c, sel, sknown, NULL, NULL);
            if (drv_selector_from_json(sel, &parsed, &err) != DRV_OK)
                v_fail(c, "%s", drv_error_msg(&err));
            drv_selector_free(&parsed);
        }
        v_pop(c, o3);
    }
    v_pop(c, o2);
    v_pop(c, old);
}

void v_role(vctx_t *c, cJSON *obj, bool cluster)
{
    static const char known[] = "apiVersion\0"
                                "kind\0"
                                "metadata\0"
                                "rules\0";
    static const char cknown[] = "apiVersion\0"
                                 "kind\0"
                                 "metadata\0"
                                 "rules\0"
                                 "aggregationRule\0";
    v_fields(c, obj, cluster ? cknown : known, NULL, NULL);
    if (cluster)
        v_aggregation(c, obj);
    v_rules(c, obj, !cluster);
    if (!drv_json_get(obj, "rules") && !cJSON_AddArrayToObject(obj, "rules"))
        c->nomem = true;
}

static void v_subject(vctx_t *c, cJSON *s, bool cluster)
{
    static const char known[] = "kind\0"
                                "apiGroup\0"
                                "name\0"
                                "namespace\0";
    static const char kinds[] = "ServiceAccount\0"
                                "User\0"
                                "Group\0";
    v_fields(c, s, known, NULL, NULL);
    const char *kind = v_enum(c, s, "kind", true, kinds);
    const char *name = v_str(c, s, "name", true);
    if (name && !*name)
        v_failk(c, "name", "required");
    if (!kind)
        return;
    if (!strcmp(kind, "ServiceAccount")) {
        const char *g = v_str(c, s, "apiGroup", false);
        if (g && *g)
            v_failk(c, "apiGroup", "unsupported value \"%.64s\": must be \"\" for a ServiceAccount",
                    g);
        v_name(c, s, "name", false, drv_name_dns_subdomain);
        const char *ns = v_str(c, s, "namespace", false);
        if (ns && *ns)
            v_name(c, s, "namespace", false, drv_name_dns_label);
        else if (cluster)
            v_failk(c, "namespace", "required");
        return;
    }
    v_default_str(c, s, "apiGroup", RBAC_GROUP);
    const char *g = v_str(c, s, "apiGroup", false);
    if (g && strcmp(g, RBAC_GROUP))
        v_failk(c, "apiGroup", "unsupported value \"%.64s\": must be \"" RBAC_GROUP "\"", g);
    const char *ns = v_str(c, s, "namespace", false);
    if (ns && *ns)
        v_failk(c, "namespace", "a %s subject has no namespace", kind);
}

void v_role_binding(vctx_t *c, cJSON *obj, bool cluster)
{
    static const char known[] = "apiVersion\0"
                                "kind\0"
                                "metadata\0"
                                "subjects\0"
                                "roleRef\0";
    v_fields(c, obj, known, NULL, NULL);
    cJSON *subjects = v_arr(c, obj, "subjects", false);
    size_t old = v_push_key(c, "subjects"), i = 0;
    for (cJSON *s = subjects ? subjects->child : NULL; s; s = s->next, i++) {
        size_t o2 = v_push_index(c, i);
        if (cJSON_IsObject(s))
            v_subject(c, s, cluster);
        else
            v_fail(c, "must be an object");
        v_pop(c, o2);
    }
    v_pop(c, old);
    cJSON *ref = v_obj(c, obj, "roleRef", true);
    if (!ref)
        return;
    static const char rknown[] = "apiGroup\0"
                                 "kind\0"
                                 "name\0";
    static const char rkinds[] = "Role\0"
                                 "ClusterRole\0";
    static const char ckinds[] = "ClusterRole\0";
    old = v_push_key(c, "roleRef");
    v_fields(c, ref, rknown, NULL, NULL);
    const char *g = v_str(c, ref, "apiGroup", true);
    if (g && strcmp(g, RBAC_GROUP))
        v_failk(c, "apiGroup", "supported values: \"" RBAC_GROUP "\"");
    v_enum(c, ref, "kind", true, cluster ? ckinds : rkinds);
    v_name(c, ref, "name", true, v_rbac_name);
    v_pop(c, old);
}

void v_serviceaccount(vctx_t *c, cJSON *obj)
{
    static const char known[] = "apiVersion\0"
                                "kind\0"
                                "metadata\0"
                                "secrets\0"
                                "imagePullSecrets\0"
                                "automountServiceAccountToken\0";
    v_fields(c, obj, known, NULL, NULL);
    v_bool(c, obj, "automountServiceAccountToken", NULL);
    static const char *const lists[] = {"secrets", "imagePullSecrets"};
    for (size_t l = 0; l < 2; l++) {
        cJSON *a = v_arr(c, obj, lists[l], false);
        size_t old = v_push_key(c, lists[l]), i = 0;
        for (cJSON *s = a ? a->child : NULL; s; s = s->next, i++) {
            /* secrets are ObjectReferences; Kubernetes reads only their names */
            static const char rknown[] = "name\0"
                                         "namespace\0"
                                         "kind\0"
                                         "apiVersion\0"
                                         "uid\0"
                                         "resourceVersion\0"
                                         "fieldPath\0";
            static const char pknown[] = "name\0";
            size_t o2 = v_push_index(c, i);
            if (!cJSON_IsObject(s)) {
                v_fail(c, "must be an object");
            } else {
                v_fields(c, s, l == 0 ? rknown : pknown, NULL, NULL);
                v_name(c, s, "name", l == 1, drv_name_dns_subdomain);
            }
            v_pop(c, o2);
        }
        v_pop(c, old);
    }
}

/* ---- projected volumes ---- */

#define PROJECTED_TTL_DEFAULT 3600
#define PROJECTED_TTL_MIN 600
#define PROJECTED_TTL_MAX (1LL << 32)

/* A relative path without "..", unique in the volume (paths: "\n"-joined so far). */
static void v_projected_path(vctx_t *c, cJSON *obj, const char *key, char *paths, size_t psz)
{
    const char *p = v_str(c, obj, key, true);
    if (!p)
        return;
    bool dotdot = false;
    for (const char *s = p; *s;) {
        size_t n = strcspn(s, "/");
        dotdot |= n == 2 && s[0] == '.' && s[1] == '.';
        s += n;
        s += strspn(s, "/");
    }
    if (!*p || p[0] == '/' || dotdot) {
        v_failk(c, key, "must be a relative path without '..'");
        return;
    }
    char line[300];
    drv_fmt_cut(line, sizeof(line), "\n%s\n", p);
    if (strstr(paths, line))
        v_failk(c, key, "conflicting duplicate paths: \"%.64s\"", p);
    size_t used = strlen(paths);
    if (used + strlen(line) < psz)
        drv_fmt_cut(paths + used, psz - used, "%s", line + (used ? 1 : 0));
}

static void v_projected_items(vctx_t *c, cJSON *src, bool downward, char *paths, size_t psz)
{
    cJSON *items = v_arr(c, src, "items", downward);
    size_t old = v_push_key(c, "items"), i = 0;
    for (cJSON *it = items ? items->child : NULL; it; it = it->next, i++) {
        static const char known[] = "key\0"
                                    "path\0"
                                    "mode\0";
        static const char dknown[] = "path\0"
                                     "fieldRef\0"
                                     "mode\0";
        static const char dunsup[] = "resourceFieldRef\0";
        static const char fields[] = "metadata.name\0"
                                     "metadata.namespace\0"
                                     "metadata.uid\0"
                                     "metadata.labels\0"
                                     "metadata.annotations\0";
        size_t o2 = v_push_index(c, i);
        if (!cJSON_IsObject(it)) {
            v_fail(c, "must be an object");
            v_pop(c, o2);
            continue;
        }
        v_fields(c, it, downward ? dknown : known, NULL, downward ? dunsup : NULL);
        if (!downward)
            v_name(c, it, "key", true, drv_name_config_key);
        v_projected_path(c, it, "path", paths, psz);
        v_int(c, it, "mode", false, 0, 0777, NULL);
        cJSON *fr = downward ? v_obj(c, it, "fieldRef", true) : NULL;
        if (fr) {
            static const char fknown[] = "apiVersion\0"
                                         "fieldPath\0";
            size_t o3 = v_push_key(c, "fieldRef");
            v_fields(c, fr, fknown, NULL, NULL);
            v_default_str(c, fr, "apiVersion", "v1");
            const char *fp = v_str(c, fr, "fieldPath", true);
            bool ok = false;
            for (const char *k = fields; fp && *k && !ok; k += strlen(k) + 1)
                ok = !strcmp(fp, k);
            if (fp && !ok)
                v_failk(c, "fieldPath",
                        "unsupported value \"%.64s\": supported values: metadata.name, "
                        "metadata.namespace, metadata.uid, metadata.labels, metadata.annotations",
                        fp);
            v_pop(c, o3);
        }
        v_pop(c, o2);
    }
    v_pop(c, old);
}

void v_projected_volume(vctx_t *c, cJSON *proj)
{
    static const char known[] = "sources\0"
                                "defaultMode\0";
    v_fields(c, proj, known, NULL, NULL);
    v_int(c, proj, "defaultMode", false, 0, 0777, NULL);
    v_default_int(c, proj, "defaultMode", 0644);
    cJSON *sources = v_arr(c, proj, "sources", false);
    char paths[4096] = "";
    size_t old = v_push_key(c, "sources"), i = 0;
    for (cJSON *s = sources ? sources->child : NULL; s; s = s->next, i++) {
        static const char sknown[] = "serviceAccountToken\0"
                                     "configMap\0"
                                     "secret\0"
                                     "downwardAPI\0";
        static const char sunsup[] = "clusterTrustBundle\0"
                                     "podCertificate\0";
        size_t o2 = v_push_index(c, i);
        if (!cJSON_IsObject(s)) {
            v_fail(c, "must be an object");
            v_pop(c, o2);
            continue;
        }
        v_fields(c, s, sknown, NULL, sunsup);
        int n = 0;
        cJSON *tok = v_obj(c, s, "serviceAccountToken", false);
        if (tok) {
            static const char tknown[] = "audience\0"
                                         "expirationSeconds\0"
                                         "path\0";
            size_t o3 = v_push_key(c, "serviceAccountToken");
            n++;
            v_fields(c, tok, tknown, NULL, NULL);
            v_projected_path(c, tok, "path", paths, sizeof(paths));
            v_int(c, tok, "expirationSeconds", false, PROJECTED_TTL_MIN, PROJECTED_TTL_MAX, NULL);
            v_default_int(c, tok, "expirationSeconds", PROJECTED_TTL_DEFAULT);
            const char *aud = v_str(c, tok, "audience", false);
            if (aud && *aud && strcmp(aud, "https://kubernetes.default.svc.cluster.local"))
                v_failk(c, "audience",
                        "unsupported value \"%.64s\": the hub issues tokens for its own API "
                        "only (audience \"\" or https://kubernetes.default.svc.cluster.local)",
                        aud);
            v_pop(c, o3);
        }
        static const char *const keyed[] = {"configMap", "secret"};
        for (size_t k = 0; k < 2; k++) {
            cJSON *src = v_obj(c, s, keyed[k], false);
            if (!src)
                continue;
            static const char cknown[] = "name\0"
                                         "items\0"
                                         "optional\0";
            size_t o3 = v_push_key(c, keyed[k]);
            n++;
            v_fields(c, src, cknown, NULL, NULL);
            v_name(c, src, "name", true, drv_name_dns_subdomain);
            if (!strcmp(keyed[k], "secret"))
                v_secret_ref_reserved(c, src, "name");
            v_bool(c, src, "optional", NULL);
            v_projected_items(c, src, false, paths, sizeof(paths));
            v_pop(c, o3);
        }
        cJSON *dw = v_obj(c, s, "downwardAPI", false);
        if (dw) {
            static const char dknown[] = "items\0";
            size_t o3 = v_push_key(c, "downwardAPI");
            n++;
            v_fields(c, dw, dknown, NULL, NULL);
            v_projected_items(c, dw, true, paths, sizeof(paths));
            v_pop(c, o3);
        }
        if (n > 1)
            v_fail(c, "may not specify more than 1 volume projection type");
        v_pop(c, o2);
    }
    v_pop(c, old);
}
