/* Questions a client asks about itself, as kubectl auth can-i and kubectl auth whoami ask them:
 * SelfSubjectAccessReview (may I do this?), SelfSubjectRulesReview (what may I do?) and
 * SelfSubjectReview (who am I?). Every answer comes from the authorizer, asked about the route
 * the request in question would hit, with the caller's own credentials: a review never
 * disagrees with the request it is about, and the API stays free of roles. */
#include <string.h>

#include "api/api_int.h"
#include "drover/cleanup.h"
#include "drover/fmt.h"
#include "drover/json.h"

#define SEG_MAX 64

/* A route's pattern read as a Kubernetes resource: "/apis/apps/v1/namespaces/{namespace}/
 * deployments/{name}/scale" is group apps, resource deployments, named, subresource scale. */
typedef struct parts {
    char group[SEG_MAX];
    char resource[SEG_MAX];
    char sub[SEG_MAX];
    bool named;
} parts_t;

/* Copies the path segment at *p (up to '/' or the end) into out and moves past it. false for
 * an empty or too long one. */
static bool next_seg(const char **p, char out[SEG_MAX])
{
    size_t n = strcspn(*p, "/");
    if (n == 0 || n >= SEG_MAX)
        return false;
    memcpy(out, *p, n);
    out[n] = '\0';
    *p += n;
    if (**p == '/')
        (*p)++;
    return true;
}

/* false for a route that is no resource but a path: discovery, /healthz, /openapi, and the
 * routes of Drover's own that are no Kubernetes resource (sign-in, enrollment, apply, the
 * dashboard's watch). */
static bool parts_of(const drv_api_route_t *r, parts_t *o)
{
    memset(o, 0, sizeof(*o));
    switch (r->op) {
    case DRV_API_OP_HEALTHZ:
    case DRV_API_OP_METRICS:
    case DRV_API_OP_DISCOVERY:
    case DRV_API_OP_OPENAPI:
    case DRV_API_OP_SESSION:
    case DRV_API_OP_ENROLL:
    case DRV_API_OP_ENROLL_RENEW:
    case DRV_API_OP_WATCH_ALL:
    case DRV_API_OP_APPLY:
        return false;
    default:
        break;
    }
    const char *p = r->pattern;
    char version[SEG_MAX];
    if (!strncmp(p, "/api/v1/", 8))
        p += 8;
    else if (strncmp(p, "/apis/", 6) || (p += 6, !next_seg(&p, o->group)) || !next_seg(&p, version))
        return false;
    if (!strncmp(p, "namespaces/{namespace}/", 23))
        p += 23;
    char segs[3][SEG_MAX];
    size_t n = 0;
    while (*p) {
        if (n == 3 || !next_seg(&p, segs[n]))
            return false;
        n++;
    }
    if (n == 0 || segs[0][0] == '{' || (n >= 2 && strcmp(segs[1], "{name}")) ||
        (n == 3 && segs[2][0] == '{'))
        return false;
    memcpy(o->resource, segs[0], SEG_MAX);
    o->named = n >= 2;
    if (n == 3)
        memcpy(o->sub, segs[2], SEG_MAX);
    return true;
}

/* The Kubernetes verbs that method on route r (of parts pt) stands for, into out; the count. */
static size_t verbs_of(const drv_api_route_t *r, const parts_t *pt, unsigned method,
                       const char *out[2])
{
    switch (method) {
    case DRV_API_M_GET:
        if (pt->named) {
            out[0] = "get";
            return 1;
        }
        out[0] = "list";
        out[1] = "watch";
        return r->op == DRV_API_OP_COLLECTION ? 2 : 1;
    case DRV_API_M_POST:
        out[0] = "create";
        return 1;
    case DRV_API_M_PUT:
        out[0] = "update";
        return 1;
    case DRV_API_M_PATCH:
        out[0] = "patch";
        return 1;
    case DRV_API_M_DELETE:
        out[0] = pt->named ? "delete" : "deletecollection";
        return 1;
    default:
        return 0;
    }
}

static bool wild_eq(const char *want, const char *have)
{
    return !strcmp(want, "*") || !strcmp(want, have);
}

/* The answer of a SelfSubjectAccessReview. */
typedef struct verdict {
    bool allowed, denied;
    char reason[320];
} verdict_t;

/* Puts one route and method to the authorizer for v: false (stop) on the first refusal. 401
 * (the credentials stopped being good meanwhile) into *code. */
static bool ask(drv_api_req_t *rq, const drv_api_route_t *r, unsigned method, const char *ns,
                const char *name, bool watch, drv_api_user_t *user, verdict_t *v, unsigned *code)
{
    char msg[256] = "";
    unsigned c = drv_api_authorize_user(rq, r, method, ns, name, watch, user, msg, sizeof(msg));
    if (c == 0)
        return true;
    if (c == 401)
        *code = 401;
    v->allowed = false;
    v->denied = true;
    drv_fmt_cut(v->reason, sizeof(v->reason), "%s", msg);
    return false;
}

static void allowed_reason(drv_api_req_t *rq, const drv_api_user_t *user, verdict_t *v)
{
    if (!rq->api->authorize)
        DRV_FMT_LIT(v->reason, "access control is off on this hub");
    else if (user->known && *user->role)
        drv_fmt_cut(v->reason, sizeof(v->reason), "allowed: Drover role %s", user->role);
    else if (user->known)
        DRV_FMT_LIT(v->reason, "allowed by RBAC");
}

/* spec.resourceAttributes: every route serving group/resource/subresource with verb ("*"
 * stands for any) must be allowed, and one at least must exist. */
static drv_err_t decide_resource(drv_api_req_t *rq, const cJSON *ra, verdict_t *v, unsigned *code,
                                 drv_error_t *err)
{
    const char *ns = "", *verb = NULL, *group = "", *res = NULL, *sub = "", *name = "";
    const drv_json_field_t fields[] = {
        {.key = "namespace", .type = DRV_JSON_T_STRING, .dest = &ns},
        {.key = "verb", .type = DRV_JSON_T_STRING, .need = DRV_JSON_REQUIRED, .dest = &verb},
        {.key = "group", .type = DRV_JSON_T_STRING, .dest = &group},
        {.key = "resource", .type = DRV_JSON_T_STRING, .need = DRV_JSON_REQUIRED, .dest = &res},
        {.key = "subresource", .type = DRV_JSON_T_STRING, .dest = &sub},
        {.key = "name", .type = DRV_JSON_T_STRING, .dest = &name},
    };
    /* not strict: version, fieldSelector, labelSelector change nothing here */
    drv_err_t e = drv_json_read_table(ra, "spec.resourceAttributes", fields,
                                      DRV_JSON_TABLE_LEN(fields), 0, err);
    if (e != DRV_OK)
        return e;
    size_t n = 0;
    const drv_api_route_t *routes = drv_api_routes(&n);
    bool known = false, served = false;
    drv_api_user_t user = {0};
    v->allowed = true;
    for (size_t i = 0; i < n && v->allowed; i++) {
        parts_t pt;
        if (!parts_of(&routes[i], &pt) || !wild_eq(group, pt.group) || !wild_eq(res, pt.resource) ||
            !wild_eq(sub, pt.sub))
            continue;
        /* asked about one namespace: its routes, not the list over all namespaces (which a
         * service account's RoleBinding never allows) */
        if (*ns && !strstr(routes[i].pattern, "{namespace}") && drv_kind_namespaced(routes[i].kind))
            continue;
        known = true;
        for (unsigned m = DRV_API_M_GET; m <= DRV_API_M_DELETE && v->allowed; m <<= 1) {
            const char *vs[2];
            size_t nv = routes[i].methods & m ? verbs_of(&routes[i], &pt, m, vs) : 0;
            for (size_t k = 0; k < nv && v->allowed; k++) {
                if (!wild_eq(verb, vs[k]))
                    continue;
                served = true;
                /* a cluster-scoped kind is in no namespace, whatever kubectl sends */
                const char *rns = strstr(routes[i].pattern, "{namespace}") ? ns : "";
                (void)ask(rq, &routes[i], m, rns, name, !strcmp(vs[k], "watch"), &user, v, code);
            }
        }
    }
    char what[3 * SEG_MAX + 16];
    drv_fmt_cut(what, sizeof(what), "%.64s%s%.64s%s%.64s", res, *sub ? "/" : "", sub,
                *group ? "." : "", group);
    if (!known) {
        v->allowed = false;
        drv_fmt_cut(v->reason, sizeof(v->reason), "this hub serves no resource %s", what);
    } else if (!served) {
        v->allowed = false;
        drv_fmt_cut(v->reason, sizeof(v->reason), "this hub does not serve verb %.32s on %s", verb,
                    what);
    } else if (v->allowed) {
        allowed_reason(rq, &user, v);
    }
    return DRV_OK;
}

/* The DRV_API_M_* bits a non-resource verb stands for ("*": all of them); 0 for none. */
static unsigned methods_of(const char *verb)
{
    static const struct {
        const char *verb;
        unsigned bits;
    } vs[] = {{"get", DRV_API_M_GET},
              {"head", DRV_API_M_GET},
              {"post", DRV_API_M_POST},
              {"put", DRV_API_M_PUT},
              {"patch", DRV_API_M_PATCH},
              {"delete", DRV_API_M_DELETE},
              {"*", (DRV_API_M_DELETE << 1) - 1}};
    for (size_t i = 0; i < sizeof(vs) / sizeof(vs[0]); i++)
        if (!strcmp(verb, vs[i].verb))
            return vs[i].bits;
    return 0;
}

/* spec.nonResourceAttributes: the routes that serve path with verb. */
static drv_err_t decide_path(drv_api_req_t *rq, const cJSON *nra, verdict_t *v, unsigned *code,
                             drv_error_t *err)
{
    const char *path = NULL, *verb = NULL;
    const drv_json_field_t fields[] = {
        {.key = "path", .type = DRV_JSON_T_STRING, .need = DRV_JSON_REQUIRED, .dest = &path},
        {.key = "verb", .type = DRV_JSON_T_STRING, .need = DRV_JSON_REQUIRED, .dest = &verb},
    };
    drv_err_t e = drv_json_read_table(nra, "spec.nonResourceAttributes", fields,
                                      DRV_JSON_TABLE_LEN(fields), DRV_JSON_STRICT, err);
    if (e != DRV_OK)
        return e;
    unsigned served = 0;
    (void)drv_api_route_find(path, 0, NULL, &served);
    unsigned want = methods_of(verb) & served;
    drv_api_user_t user = {0};
    v->allowed = want != 0;
    for (unsigned m = DRV_API_M_GET; m <= DRV_API_M_DELETE && v->allowed; m <<= 1) {
        drv_api_match_t mm;
        const drv_api_route_t *r = want & m ? drv_api_route_find(path, m, &mm, NULL) : NULL;
        if (r && r->op != DRV_API_OP_HEALTHZ) /* /healthz takes no credentials */
            (void)ask(rq, r, m, mm.ns, mm.name, false, &user, v, code);
    }
    if (!want)
        drv_fmt_cut(v->reason, sizeof(v->reason), "this hub does not serve %.16s on %.200s", verb,
                    path);
    else if (v->allowed)
        allowed_reason(rq, &user, v);
    return DRV_OK;
}

/* The request's object checked to be a kind of the route's group version; *gv (gvsz bytes)
 * gets "group/version" from the route. */
static drv_err_t check_kind(const drv_api_match_t *m, const cJSON *obj, const char *kind, char *gv,
                            size_t gvsz, drv_error_t *err)
{
    const char *p = m->route->pattern + strlen("/apis/");
    const char *last = strrchr(p, '/');
    drv_fmt_cut(gv, gvsz, "%.*s", (int)(last - p), p);
    const char *k = drv_json_str(obj, "kind"), *av = drv_json_str(obj, "apiVersion");
    if (k && *k && strcmp(k, kind))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "kind: \"%.64s\" is not %s", k, kind);
    if (av && *av && strcmp(av, gv))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "apiVersion: \"%.64s\" is not %s", av, gv);
    return DRV_OK;
}

/* The request's object as the answer: apiVersion and kind set, status (taken; NULL: out of
 * memory) replaced. */
static bool answer_of(cJSON *obj, const char *gv, const char *kind, cJSON *status, bool ok)
{
    if (!ok) {
        cJSON_Delete(status);
        return false;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(obj, "status");
    cJSON_DeleteItemFromObjectCaseSensitive(obj, "apiVersion");
    cJSON_DeleteItemFromObjectCaseSensitive(obj, "kind");
    if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(obj, "metadata")))
        cJSON_DeleteItemFromObjectCaseSensitive(obj, "metadata");
    ok = status && cJSON_AddItemToObject(obj, "status", status);
    if (!ok)
        cJSON_Delete(status);
    return ok && cJSON_AddStringToObject(obj, "apiVersion", gv) &&
           cJSON_AddStringToObject(obj, "kind", kind) &&
           (cJSON_GetObjectItemCaseSensitive(obj, "metadata") ||
            cJSON_AddObjectToObject(obj, "metadata"));
}

static enum MHD_Result reply_answer(drv_api_req_t *rq, unsigned code, const char *why, drv_err_t e,
                                    const drv_error_t *err, cJSON *obj, bool ok)
{
    if (code == 401)
        return drv_api_reply_unauthorized(rq, why);
    if (e != DRV_OK)
        return drv_api_reply_error(rq, e, drv_error_msg(err));
    if (!ok)
        return drv_api_reply_status(rq, 500, NULL, "out of memory", NULL);
    return drv_api_reply_json(rq, 201, obj);
}

static enum MHD_Result access_review(drv_api_req_t *rq, const drv_api_match_t *m)
{
    enum MHD_Result r = MHD_NO;
    _cleanup_cjson_ cJSON *obj = drv_api_read_object(rq, &r);
    if (!obj)
        return r;
    char gv[64];
    drv_error_t err = DRV_ERROR_INIT;
    const cJSON *spec = NULL, *ra = NULL, *nra = NULL;
    drv_err_t e = check_kind(m, obj, "SelfSubjectAccessReview", gv, sizeof(gv), &err);
    if (e == DRV_OK)
        e = drv_json_read_object(obj, NULL, "spec", DRV_JSON_REQUIRED, &spec, NULL, &err);
    if (e == DRV_OK)
        e = drv_json_read_object(spec, "spec", "resourceAttributes", DRV_JSON_NULLABLE, &ra, NULL,
                                 &err);
    if (e == DRV_OK)
        e = drv_json_read_object(spec, "spec", "nonResourceAttributes", DRV_JSON_NULLABLE, &nra,
                                 NULL, &err);
    if (e == DRV_OK && !ra == !nra)
        e = drv_error_set(&err, DRV_ERR_INVALID, 0,
                          "spec: exactly one of resourceAttributes and nonResourceAttributes "
                          "is required");
    verdict_t v = {0};
    unsigned code = 0;
    if (e == DRV_OK)
        e = ra ? decide_resource(rq, ra, &v, &code, &err) : decide_path(rq, nra, &v, &code, &err);
    bool ok = true;
    if (e == DRV_OK && code != 401) {
        cJSON *st = cJSON_CreateObject();
        ok = st && cJSON_AddBoolToObject(st, "allowed", v.allowed) &&
             (!v.denied || cJSON_AddBoolToObject(st, "denied", true)) &&
             (!*v.reason || cJSON_AddStringToObject(st, "reason", v.reason));
        ok = answer_of(obj, gv, "SelfSubjectAccessReview", st, ok);
    }
    return reply_answer(rq, code, v.reason, e, &err, obj, ok);
}

/* Adds verb to rules' entry whose key (apiGroups[0] + resources[0], or nonResourceURLs[0])
 * is a/b, making the entry when there is none. */
static bool add_rule(cJSON *rules, bool resource, const char *a, const char *b, const char *verb)
{
    cJSON *rule = NULL, *it = NULL;
    cJSON_ArrayForEach(it, rules)
    {
        const cJSON *x = cJSON_GetArrayItem(
            cJSON_GetObjectItemCaseSensitive(it, resource ? "apiGroups" : "nonResourceURLs"), 0);
        const cJSON *y = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(it, "resources"), 0);
        if (cJSON_IsString(x) && !strcmp(x->valuestring, a) &&
            (!resource || (cJSON_IsString(y) && !strcmp(y->valuestring, b)))) {
            rule = it;
            break;
        }
    }
    if (!rule) {
        cJSON *x = NULL, *y = NULL;
        rule = cJSON_CreateObject();
        if (!rule || !cJSON_AddItemToArray(rules, rule) || !cJSON_AddArrayToObject(rule, "verbs") ||
            !(x = cJSON_AddArrayToObject(rule, resource ? "apiGroups" : "nonResourceURLs")) ||
            !cJSON_AddItemToArray(x, cJSON_CreateString(a)) ||
            (resource && (!(y = cJSON_AddArrayToObject(rule, "resources")) ||
                          !cJSON_AddItemToArray(y, cJSON_CreateString(b)))))
            return false;
    }
    cJSON *verbs = cJSON_GetObjectItemCaseSensitive(rule, "verbs");
    cJSON_ArrayForEach(it, verbs)
    {
        if (!strcmp(it->valuestring, verb))
            return true;
    }
    return cJSON_AddItemToArray(verbs, cJSON_CreateString(verb));
}

/* The rules of one route: per method, what the authorizer allows. */
static bool route_rules(drv_api_req_t *rq, const drv_api_route_t *r, const char *ns, cJSON *res,
                        cJSON *paths, unsigned *code)
{
    static const char *const methods[] = {"get", "post", "put", "patch", "delete"};
    parts_t pt;
    bool is_res = parts_of(r, &pt);
    char key[2 * SEG_MAX + 2], url[256];
    drv_fmt_cut(key, sizeof(key), "%s%s%s", pt.resource, *pt.sub ? "/" : "", pt.sub);
    /* a path with parameters as Kubernetes writes a prefix: up to the first one, then a star */
    drv_fmt_cut(url, sizeof(url), "%.*s%s", (int)strcspn(r->pattern, "{"), r->pattern,
                strchr(r->pattern, '{') ? "*" : "");
    for (unsigned i = 0; i < 5; i++) {
        unsigned m = 1u << i;
        if (!(r->methods & m))
            continue;
        const char *vs[2];
        size_t nv = is_res ? verbs_of(r, &pt, m, vs) : 1;
        for (size_t k = 0; k < nv; k++) {
            char msg[256];
            unsigned c =
                r->op == DRV_API_OP_HEALTHZ
                    ? 0
                    : drv_api_authorize_as(rq, r, m, ns, NULL, is_res && !strcmp(vs[k], "watch"),
                                           msg, sizeof(msg));
            if (c == 401) {
                *code = 401;
                return true;
            }
            if (c == 0 && !(is_res ? add_rule(res, true, pt.group, key, vs[k])
                                   : add_rule(paths, false, url, NULL, methods[i])))
                return false;
        }
    }
    return true;
}

static enum MHD_Result rules_review(drv_api_req_t *rq, const drv_api_match_t *m)
{
    enum MHD_Result r = MHD_NO;
    _cleanup_cjson_ cJSON *obj = drv_api_read_object(rq, &r);
    if (!obj)
        return r;
    char gv[64];
    drv_error_t err = DRV_ERROR_INIT;
    const cJSON *spec = NULL;
    const char *ns = "";
    drv_err_t e = check_kind(m, obj, "SelfSubjectRulesReview", gv, sizeof(gv), &err);
    if (e == DRV_OK)
        e = drv_json_read_object(obj, NULL, "spec", DRV_JSON_OPTIONAL, &spec, NULL, &err);
    if (e == DRV_OK && spec)
        e = drv_json_read_string(spec, "spec", "namespace", DRV_JSON_OPTIONAL, &ns, NULL, &err);
    unsigned code = 0;
    bool ok = true;
    if (e == DRV_OK) {
        cJSON *st = cJSON_CreateObject(), *res = NULL, *paths = NULL;
        ok = st && (res = cJSON_AddArrayToObject(st, "resourceRules")) &&
             (paths = cJSON_AddArrayToObject(st, "nonResourceRules")) &&
             cJSON_AddBoolToObject(st, "incomplete", false);
        size_t n = 0;
        const drv_api_route_t *routes = drv_api_routes(&n);
        for (size_t i = 0; ok && code != 401 && i < n; i++)
            ok = route_rules(rq, &routes[i], ns, res, paths, &code);
        ok = answer_of(obj, gv, "SelfSubjectRulesReview", st, ok);
    }
    return reply_answer(rq, code, "Unauthorized", e, &err, obj, ok);
}

/* Who the caller is. The body says nothing the answer needs, so it is not read (kubectl 1.33
 * sends it as protobuf). */
static enum MHD_Result self_review(drv_api_req_t *rq, const drv_api_match_t *m)
{
    drv_api_user_t user = {0};
    char msg[256] = "";
    unsigned c = drv_api_authorize_user(rq, m->route, DRV_API_M_POST, NULL, NULL, false, &user, msg,
                                        sizeof(msg));
    if (c == 401)
        return drv_api_reply_unauthorized(rq, msg);
    if (c)
        return drv_api_reply_status(rq, 403, "Forbidden", msg, NULL);
    if (!user.known) { /* no access control: nobody in particular */
        DRV_FMT_LIT(user.username, "system:anonymous");
        DRV_FMT_LIT(user.groups[0], "system:unauthenticated");
        user.ngroups = 1;
    }
    char gv[64];
    drv_error_t err = DRV_ERROR_INIT;
    _cleanup_cjson_ cJSON *obj = cJSON_CreateObject();
    cJSON *st = cJSON_CreateObject(), *ui = NULL, *groups = NULL, *extra = NULL, *d = NULL;
    bool ok = obj && check_kind(m, obj, "SelfSubjectReview", gv, sizeof(gv), &err) == DRV_OK &&
              st && (ui = cJSON_AddObjectToObject(st, "userInfo")) &&
              cJSON_AddStringToObject(ui, "username", user.username) &&
              (!*user.uid || cJSON_AddStringToObject(ui, "uid", user.uid)) &&
              (groups = cJSON_AddArrayToObject(ui, "groups"));
    for (size_t i = 0; ok && i < user.ngroups; i++)
        ok = cJSON_AddItemToArray(groups, cJSON_CreateString(user.groups[i]));
    if (ok && *user.description)
        ok = (extra = cJSON_AddObjectToObject(ui, "extra")) &&
             (d = cJSON_AddArrayToObject(extra, "drover.io/description")) &&
             cJSON_AddItemToArray(d, cJSON_CreateString(user.description));
    ok = answer_of(obj, gv, "SelfSubjectReview", st, ok);
    return reply_answer(rq, 0, NULL, DRV_OK, &err, obj, ok);
}

enum MHD_Result drv_api_review(drv_api_req_t *rq, const drv_api_match_t *m)
{
    const char *p = m->route->pattern;
    const char *last = strrchr(p, '/') + 1;
    if (!strcmp(last, "selfsubjectaccessreviews"))
        return access_review(rq, m);
    if (!strcmp(last, "selfsubjectrulesreviews"))
        return rules_review(rq, m);
    return self_review(rq, m);
}
