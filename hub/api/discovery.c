/* API discovery as Kubernetes clients read it (kubectl, client-go, the official clients), from
 * one table of what this hub serves: /api (APIVersions), /apis (APIGroupList) and an
 * APIResourceList per group version; and, for clients that ask for it in their Accept header
 * (kubectl 1.26+), the aggregated form (apidiscovery.k8s.io v2 or v2beta1
 * APIGroupDiscoveryList) that tells everything in two requests instead of one per group
 * version. metrics.k8s.io/v1beta1's own list is the usage handler's (usage_api.c); the
 * aggregated form lists it from this table. /version says which Kubernetes API Drover follows. */
#include <microhttpd.h>
#include <string.h>

#include "api/api.h"
#include "api/api_int.h"
#include "drover/cleanup.h"
#include "drover/fmt.h"

#define VERBS_ALL "create,delete,get,list,patch,update,watch"
#define VERBS_SUB "get,patch,update"

typedef struct subresource {
    const char *name;  /* "status" */
    const char *group; /* of its kind; NULL: the resource's */
    const char *version, *kind;
    const char *verbs;
} subresource_t;

typedef struct resource {
    const char *gv; /* "v1", "apps/v1", ... */
    const char *name, *singular, *kind, *shorts;
    bool namespaced;
    const char *verbs;      /* comma-separated */
    const char *categories; /* comma-separated; "" none */
    subresource_t subs[3];  /* ended by a NULL name */
} resource_t;

static const resource_t resources[] = {
    {"v1",
     "pods",
     "pod",
     "Pod",
     "po",
     true,
     VERBS_ALL,
     "all",
     {{"status", NULL, NULL, "Pod", VERBS_SUB}, {"log", NULL, NULL, "Pod", "get"}}},
    {"v1", "configmaps", "configmap", "ConfigMap", "cm", true, VERBS_ALL, "", {{0}}},
    {"v1", "secrets", "secret", "Secret", "", true, VERBS_ALL, "", {{0}}},
    {"v1",
     "services",
     "service",
     "Service",
     "svc",
     true,
     VERBS_ALL,
     "all",
     {{"status", NULL, NULL, "Service", VERBS_SUB}}},
    {"v1", "events", "event", "Event", "ev", true, VERBS_ALL, "", {{0}}},
    {"v1", "endpoints", "endpoints", "Endpoints", "ep", true, VERBS_ALL, "", {{0}}},
    {"discovery.k8s.io/v1",
     "endpointslices",
     "endpointslice",
     "EndpointSlice",
     "",
     true,
     VERBS_ALL,
     "",
     {{0}}},
    {"networking.k8s.io/v1",
     "networkpolicies",
     "networkpolicy",
     "NetworkPolicy",
     "netpol",
     true,
     VERBS_ALL,
     "",
     {{0}}},
    {"scheduling.k8s.io/v1",
     "priorityclasses",
     "priorityclass",
     "PriorityClass",
     "pc",
     false,
     VERBS_ALL,
     "",
     {{0}}},
    {"v1",
     "persistentvolumeclaims",
     "persistentvolumeclaim",
     "PersistentVolumeClaim",
     "pvc",
     true,
     VERBS_ALL,
     "",
     {{"status", NULL, NULL, "PersistentVolumeClaim", VERBS_SUB}}},
    {"v1",
     "persistentvolumes",
     "persistentvolume",
     "PersistentVolume",
     "pv",
     false,
     VERBS_ALL,
     "",
     {{"status", NULL, NULL, "PersistentVolume", VERBS_SUB}}},
    {"storage.k8s.io/v1",
     "storageclasses",
     "storageclass",
     "StorageClass",
     "sc",
     false,
     VERBS_ALL,
     "",
     {{0}}},
    {"v1",
     "nodes",
     "node",
     "Node",
     "no",
     false,
     VERBS_ALL,
     "",
     {{"status", NULL, NULL, "Node", VERBS_SUB}}},
    {"v1",
     "namespaces",
     "namespace",
     "Namespace",
     "ns",
     false,
     VERBS_ALL,
     "",
     {{"status", NULL, NULL, "Namespace", VERBS_SUB}}},
    {"apps/v1",
     "deployments",
     "deployment",
     "Deployment",
     "deploy",
     true,
     VERBS_ALL,
     "all",
     {{"status", NULL, NULL, "Deployment", VERBS_SUB},
      {"scale", "autoscaling", "v1", "Scale", VERBS_SUB}}},
    {"apps/v1",
     "daemonsets",
     "daemonset",
     "DaemonSet",
     "ds",
     true,
     VERBS_ALL,
     "all",
     {{"status", NULL, NULL, "DaemonSet", VERBS_SUB}}},
    /* Kept by their Deployment: users read them and may delete one (it comes back). */
    {"apps/v1",
     "replicasets",
     "replicaset",
     "ReplicaSet",
     "rs",
     true,
     "delete,get,list,watch",
     "all",
     {{"status", NULL, NULL, "ReplicaSet", "get"}}},
    /* A DaemonSet's template history, kept by its controller: read, and deleted. */
    {"apps/v1",
     "controllerrevisions",
     "controllerrevision",
     "ControllerRevision",
     "",
     true,
     "delete,get,list,watch",
     "",
     {{0}}},
    {"autoscaling/v2",
     "horizontalpodautoscalers",
     "horizontalpodautoscaler",
     "HorizontalPodAutoscaler",
     "hpa",
     true,
     VERBS_ALL,
     "all",
     {{"status", NULL, NULL, "HorizontalPodAutoscaler", VERBS_SUB}}},
    {"metrics.k8s.io/v1beta1", "nodes", "", "NodeMetrics", "", false, "get,list", "", {{0}}},
    {"metrics.k8s.io/v1beta1", "pods", "", "PodMetrics", "", true, "get,list", "", {{0}}},
    /* kubectl auth can-i and whoami (review.c); kubectl 1.27 asks v1beta1 for whoami */
    {"authorization.k8s.io/v1",
     "selfsubjectaccessreviews",
     "selfsubjectaccessreview",
     "SelfSubjectAccessReview",
     "",
     false,
     "create",
     "",
     {{0}}},
    {"authorization.k8s.io/v1",
     "selfsubjectrulesreviews",
     "selfsubjectrulesreview",
     "SelfSubjectRulesReview",
     "",
     false,
     "create",
     "",
     {{0}}},
    {"authentication.k8s.io/v1",
     "selfsubjectreviews",
     "selfsubjectreview",
     "SelfSubjectReview",
     "",
     false,
     "create",
     "",
     {{0}}},
    {"authentication.k8s.io/v1beta1",
     "selfsubjectreviews",
     "selfsubjectreview",
     "SelfSubjectReview",
     "",
     false,
     "create",
     "",
     {{0}}},
};

/* Each named group and its versions, comma-separated, the preferred one first. */
static const char *const groups[][2] = {
    {"apps", "v1"},
    {"autoscaling", "v2"},
    {"discovery.k8s.io", "v1"},
    {"networking.k8s.io", "v1"},
    {"storage.k8s.io", "v1"},
    {"scheduling.k8s.io", "v1"},
    {"metrics.k8s.io", "v1beta1"},
    {"authorization.k8s.io", "v1"},
    {"authentication.k8s.io", "v1,v1beta1"},
};

/* Adds the comma-separated words of list to arr (an array); "" adds none. */
static bool add_words(cJSON *arr, const char *list)
{
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, ",");
        char w[64];
        if (n >= sizeof(w) || drv_fmt(w, sizeof(w), "%.*s", (int)n, p) != DRV_OK ||
            !cJSON_AddItemToArray(arr, cJSON_CreateString(w)))
            return false;
        p += n;
        if (*p == ',')
            p++;
    }
    return true;
}

static bool add_words_to(cJSON *o, const char *key, const char *list)
{
    cJSON *arr = cJSON_AddArrayToObject(o, key);
    return arr && add_words(arr, list);
}

/* The group and version of a "group/version" or "v1" (core: group ""). */
static void split_gv(const char *gv, char *group, size_t gsz, const char **version)
{
    const char *slash = strchr(gv, '/');
    drv_fmt_cut(group, gsz, "%.*s", slash ? (int)(slash - gv) : 0, gv);
    *version = slash ? slash + 1 : gv;
}

/* One APIResource of a legacy APIResourceList: the resource (sub NULL) or its subresource. */
static cJSON *legacy_entry(const resource_t *r, const subresource_t *sub)
{
    char name[96];
    cJSON *e = cJSON_CreateObject();
    bool ok = e &&
              drv_fmt(name, sizeof(name), "%s%s%s", r->name, sub ? "/" : "",
                      sub ? sub->name : "") == DRV_OK &&
              cJSON_AddStringToObject(e, "name", name) &&
              cJSON_AddStringToObject(e, "singularName", sub ? "" : r->singular) &&
              cJSON_AddBoolToObject(e, "namespaced", r->namespaced) &&
              cJSON_AddStringToObject(e, "kind", sub ? sub->kind : r->kind) &&
              add_words_to(e, "verbs", sub ? sub->verbs : r->verbs);
    if (ok && sub && sub->group)
        ok = cJSON_AddStringToObject(e, "group", sub->group) &&
             cJSON_AddStringToObject(e, "version", sub->version);
    if (ok && !sub && r->shorts[0])
        ok = add_words_to(e, "shortNames", r->shorts);
    if (ok && !sub && r->categories[0])
        ok = add_words_to(e, "categories", r->categories);
    if (!ok) {
        cJSON_Delete(e);
        return NULL;
    }
    return e;
}

static cJSON *resource_list(const char *gv)
{
    cJSON *o = cJSON_CreateObject(), *arr = NULL;
    if (!o || !cJSON_AddStringToObject(o, "kind", "APIResourceList") ||
        !cJSON_AddStringToObject(o, "apiVersion", "v1") ||
        !cJSON_AddStringToObject(o, "groupVersion", gv) ||
        !(arr = cJSON_AddArrayToObject(o, "resources"))) {
        cJSON_Delete(o);
        return NULL;
    }
    for (size_t i = 0; i < sizeof(resources) / sizeof(resources[0]); i++) {
        const resource_t *r = &resources[i];
        if (strcmp(r->gv, gv) != 0)
            continue;
        cJSON *e = legacy_entry(r, NULL);
        if (!e || !cJSON_AddItemToArray(arr, e)) {
            cJSON_Delete(e);
            cJSON_Delete(o);
            return NULL;
        }
        for (const subresource_t *s = r->subs; s < r->subs + 3 && s->name; s++) {
            e = legacy_entry(r, s);
            if (!e || !cJSON_AddItemToArray(arr, e)) {
                cJSON_Delete(e);
                cJSON_Delete(o);
                return NULL;
            }
        }
    }
    return o;
}

static cJSON *api_versions(void)
{
    return cJSON_Parse("{\"kind\":\"APIVersions\",\"versions\":[\"v1\"],"
                       "\"serverAddressByClientCIDRs\":[]}");
}

/* The next version of a comma-separated list at *p into out; false if it does not fit. */
static bool next_version(const char **p, char *out, size_t outsz)
{
    size_t n = strcspn(*p, ",");
    if (drv_fmt(out, outsz, "%.*s", (int)n, *p) != DRV_OK)
        return false;
    *p += n;
    if (**p == ',')
        (*p)++;
    return true;
}

static cJSON *group_list(void)
{
    cJSON *o = cJSON_CreateObject(), *arr = NULL;
    if (!o || !cJSON_AddStringToObject(o, "kind", "APIGroupList") ||
        !cJSON_AddStringToObject(o, "apiVersion", "v1") ||
        !(arr = cJSON_AddArrayToObject(o, "groups"))) {
        cJSON_Delete(o);
        return NULL;
    }
    for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
        char gv[64], ver[16];
        cJSON *g = cJSON_CreateObject(), *vs = NULL, *pv = NULL;
        bool ok = g && cJSON_AddItemToArray(arr, g) &&
                  cJSON_AddStringToObject(g, "name", groups[i][0]) &&
                  (vs = cJSON_AddArrayToObject(g, "versions"));
        for (const char *p = groups[i][1]; ok && *p;) {
            cJSON *v = NULL;
            ok = next_version(&p, ver, sizeof(ver)) &&
                 drv_fmt(gv, sizeof(gv), "%s/%s", groups[i][0], ver) == DRV_OK &&
                 (v = cJSON_CreateObject()) && cJSON_AddItemToArray(vs, v) &&
                 cJSON_AddStringToObject(v, "groupVersion", gv) &&
                 cJSON_AddStringToObject(v, "version", ver);
            if (ok && !pv) /* the first */
                ok = (pv = cJSON_AddObjectToObject(g, "preferredVersion")) &&
                     cJSON_AddStringToObject(pv, "groupVersion", gv) &&
                     cJSON_AddStringToObject(pv, "version", ver);
        }
        if (!ok) {
            cJSON_Delete(o);
            return NULL;
        }
    }
    return o;
}

/* ---- the aggregated form (apidiscovery.k8s.io) ---- */

static bool add_kind(cJSON *o, const char *key, const char *group, const char *version,
                     const char *kind)
{
    cJSON *k = cJSON_AddObjectToObject(o, key);
    return k && cJSON_AddStringToObject(k, "group", group) &&
           cJSON_AddStringToObject(k, "version", version) &&
           cJSON_AddStringToObject(k, "kind", kind);
}

/* One APIResourceDiscovery, with its subresources. */
static cJSON *aggregated_entry(const resource_t *r)
{
    char group[64];
    const char *version = NULL;
    split_gv(r->gv, group, sizeof(group), &version);
    cJSON *e = cJSON_CreateObject(), *subs = NULL;
    bool ok = e && cJSON_AddStringToObject(e, "resource", r->name) &&
              add_kind(e, "responseKind", group, version, r->kind) &&
              cJSON_AddStringToObject(e, "scope", r->namespaced ? "Namespaced" : "Cluster") &&
              cJSON_AddStringToObject(e, "singularResource", r->singular) &&
              add_words_to(e, "verbs", r->verbs);
    if (ok && r->shorts[0])
        ok = add_words_to(e, "shortNames", r->shorts);
    if (ok && r->categories[0])
        ok = add_words_to(e, "categories", r->categories);
    if (ok && r->subs[0].name)
        ok = (subs = cJSON_AddArrayToObject(e, "subresources")) != NULL;
    for (const subresource_t *s = r->subs; ok && s < r->subs + 3 && s->name; s++) {
        cJSON *se = cJSON_CreateObject();
        ok = se && cJSON_AddItemToArray(subs, se) &&
             cJSON_AddStringToObject(se, "subresource", s->name) &&
             add_kind(se, "responseKind", s->group ? s->group : group,
                      s->group ? s->version : version, s->kind) &&
             add_words_to(se, "verbs", s->verbs);
    }
    if (!ok) {
        cJSON_Delete(e);
        return NULL;
    }
    return e;
}

/* One version of an APIGroupDiscovery into vs. */
static bool aggregated_version(cJSON *vs, const char *group, const char *version)
{
    char gv[64];
    cJSON *v = NULL, *res = NULL;
    bool ok = drv_fmt(gv, sizeof(gv), "%s%s%s", group, *group ? "/" : "", version) == DRV_OK &&
              (v = cJSON_CreateObject()) && cJSON_AddItemToArray(vs, v) &&
              cJSON_AddStringToObject(v, "version", version) &&
              (res = cJSON_AddArrayToObject(v, "resources")) &&
              cJSON_AddStringToObject(v, "freshness", "Current");
    for (size_t i = 0; ok && i < sizeof(resources) / sizeof(resources[0]); i++) {
        if (strcmp(resources[i].gv, gv))
            continue;
        cJSON *e = aggregated_entry(&resources[i]);
        ok = e && cJSON_AddItemToArray(res, e);
        if (!ok)
            cJSON_Delete(e);
    }
    return ok;
}

/* An APIGroupDiscovery of group (versions comma-separated, the preferred first) into items. */
static bool aggregated_group(cJSON *items, const char *group, const char *versions)
{
    cJSON *g = cJSON_CreateObject(), *meta = NULL, *vs = NULL;
    bool ok = g && cJSON_AddItemToArray(items, g) &&
              (meta = cJSON_AddObjectToObject(g, "metadata")) &&
              cJSON_AddStringToObject(meta, "name", group) &&
              (vs = cJSON_AddArrayToObject(g, "versions"));
    for (const char *p = versions; ok && *p;) {
        char ver[16];
        ok = next_version(&p, ver, sizeof(ver)) && aggregated_version(vs, group, ver);
    }
    return ok;
}

/* /api (core) or /apis (the named groups) as an APIGroupDiscoveryList of apiVersion av. */
static cJSON *aggregated(bool core, const char *av)
{
    cJSON *o = cJSON_CreateObject(), *items = NULL;
    bool ok = o && cJSON_AddStringToObject(o, "kind", "APIGroupDiscoveryList") &&
              cJSON_AddStringToObject(o, "apiVersion", av) &&
              cJSON_AddObjectToObject(o, "metadata") &&
              (items = cJSON_AddArrayToObject(o, "items"));
    if (ok && core)
        ok = aggregated_group(items, "", "v1");
    for (size_t i = 0; ok && !core && i < sizeof(groups) / sizeof(groups[0]); i++)
        ok = aggregated_group(items, groups[i][0], groups[i][1]);
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* The aggregated version the Accept header asks for first ("v2" or "v2beta1"), or NULL. Its
 * media ranges are tried in order: the first one the hub can answer wins, as the apiserver
 * negotiates (kubectl lists v2, then v2beta1, then plain application/json). */
static const char *aggregated_wanted(struct MHD_Connection *conn)
{
    const char *a = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
    for (const char *p = a; p && *p;) {
        size_t n = strcspn(p, ",");
        char range[256];
        if (n < sizeof(range) && drv_fmt(range, sizeof(range), "%.*s", (int)n, p) == DRV_OK) {
            bool agg =
                strstr(range, "as=APIGroupDiscoveryList") && strstr(range, "g=apidiscovery.k8s.io");
            if (agg && strstr(range, "v=v2beta1"))
                return "v2beta1";
            if (agg && strstr(range, "v=v2"))
                return "v2";
            if (!agg && (strstr(range, "application/json") || strstr(range, "*/*")))
                return NULL;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return NULL;
}

enum MHD_Result drv_api_discovery(drv_api_req_t *rq, const drv_api_match_t *m)
{
    const char *p = m->route->pattern;
    bool root = !strcmp(p, "/api") || !strcmp(p, "/apis");
    const char *agg = root ? aggregated_wanted(rq->conn) : NULL;
    if (agg) {
        char av[48], ctype[128];
        _cleanup_cjson_ cJSON *out = NULL;
        if (drv_fmt(av, sizeof(av), "apidiscovery.k8s.io/%s", agg) != DRV_OK ||
            drv_fmt(ctype, sizeof(ctype),
                    "application/json;g=apidiscovery.k8s.io;v=%s;as=APIGroupDiscoveryList",
                    agg) != DRV_OK ||
            !(out = aggregated(!strcmp(p, "/api"), av)))
            return drv_api_reply_status(rq, 500, NULL, "out of memory", NULL);
        char *s = cJSON_PrintUnformatted(out);
        if (!s)
            return drv_api_reply_status(rq, 500, NULL, "out of memory", NULL);
        return drv_api_reply_text(rq, 200, ctype, s, strlen(s));
    }
    cJSON *out =
        !strcmp(p, "/api")    ? api_versions()
        : !strcmp(p, "/apis") ? group_list()
        : !strcmp(p, "/version")
            ? cJSON_Parse("{\"major\":\"1\",\"minor\":\"30\",\"gitVersion\":\"v1.30.0+drover\","
                          "\"platform\":\"linux\"}")
            : resource_list(strncmp(p, "/apis/", 6) == 0 ? p + 6 : p + 5);
    if (!out)
        return drv_api_reply_status(rq, 500, NULL, "out of memory", NULL);
    enum MHD_Result r = drv_api_reply_json(rq, 200, out);
    cJSON_Delete(out);
    return r;
}
