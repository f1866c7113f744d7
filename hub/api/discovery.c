/* API discovery as Kubernetes clients read it (kubectl, client-go): /api (APIVersions), /apis
 * (APIGroupList), and an APIResourceList per served group version, from one table of what this
 * hub serves. metrics.k8s.io/v1beta1's own list is the usage handler's (usage_api.c). */
#include <microhttpd.h>
#include <string.h>

#include "api/api.h"
#include "api/api_int.h"
#include "drover/cleanup.h"

typedef struct resource {
    const char *gv; /* "v1", "apps/v1", ... */
    const char *name, *singular, *kind, *shorts;
    bool namespaced, status;
} resource_t;

static const resource_t resources[] = {
    {"v1", "pods", "pod", "Pod", "po", true, true},
    {"v1", "configmaps", "configmap", "ConfigMap", "cm", true, false},
    {"v1", "secrets", "secret", "Secret", "", true, false},
    {"v1", "services", "service", "Service", "svc", true, true},
    {"v1", "events", "event", "Event", "ev", true, false},
    {"v1", "nodes", "node", "Node", "no", false, true},
    {"v1", "namespaces", "namespace", "Namespace", "ns", false, true},
    {"apps/v1", "deployments", "deployment", "Deployment", "deploy", true, true},
    {"apps/v1", "daemonsets", "daemonset", "DaemonSet", "ds", true, true},
    {"apps/v1", "replicasets", "replicaset", "ReplicaSet", "rs", true, true},
    {"autoscaling/v2", "horizontalpodautoscalers", "horizontalpodautoscaler",
     "HorizontalPodAutoscaler", "hpa", true, true},
};

static const char *const groups[][2] = {
    {"apps", "v1"},
    {"autoscaling", "v2"},
    {"metrics.k8s.io", "v1beta1"},
};

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
    static const char *const verbs[] = {"create", "delete", "get",   "list",
                                        "patch",  "update", "watch", NULL};
    for (size_t i = 0; i < sizeof(resources) / sizeof(resources[0]); i++) {
        const resource_t *r = &resources[i];
        if (strcmp(r->gv, gv) != 0)
            continue;
        for (int sub = 0; sub < (r->status ? 2 : 1); sub++) {
            cJSON *e = cJSON_CreateObject(), *v = NULL, *sn = NULL;
            char name[96];
            size_t l = strlen(r->name);
            memcpy(name, r->name, l + 1);
            if (sub)
                memcpy(name + l, "/status", 8); /* every name is < 80 characters */
            bool ok = e && cJSON_AddStringToObject(e, "name", name) &&
                      cJSON_AddStringToObject(e, "singularName", sub ? "" : r->singular) &&
                      cJSON_AddBoolToObject(e, "namespaced", r->namespaced) &&
                      cJSON_AddStringToObject(e, "kind", r->kind) &&
                      (v = cJSON_AddArrayToObject(e, "verbs"));
            for (int k = 0; ok && verbs[k]; k++) {
                if (sub && strcmp(verbs[k], "get") && strcmp(verbs[k], "patch") &&
                    strcmp(verbs[k], "update"))
                    continue;
                ok = cJSON_AddItemToArray(v, cJSON_CreateString(verbs[k]));
            }
            if (ok && !sub && r->shorts[0])
                ok = (sn = cJSON_AddArrayToObject(e, "shortNames")) &&
                     cJSON_AddItemToArray(sn, cJSON_CreateString(r->shorts));
            if (!ok || !cJSON_AddItemToArray(arr, e)) {
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
        char gv[64];
        size_t a = strlen(groups[i][0]), b = strlen(groups[i][1]);
        memcpy(gv, groups[i][0], a); /* every group version fits */
        gv[a] = '/';
        memcpy(gv + a + 1, groups[i][1], b + 1);
        cJSON *g = cJSON_CreateObject(), *vs = NULL, *v = NULL, *pv = NULL;
        bool ok = g && cJSON_AddItemToArray(arr, g) &&
                  cJSON_AddStringToObject(g, "name", groups[i][0]) &&
                  (vs = cJSON_AddArrayToObject(g, "versions")) && (v = cJSON_CreateObject()) &&
                  cJSON_AddItemToArray(vs, v) && cJSON_AddStringToObject(v, "groupVersion", gv) &&
                  cJSON_AddStringToObject(v, "version", groups[i][1]) &&
                  (pv = cJSON_AddObjectToObject(g, "preferredVersion")) &&
                  cJSON_AddStringToObject(pv, "groupVersion", gv) &&
                  cJSON_AddStringToObject(pv, "version", groups[i][1]);
        if (!ok) {
            cJSON_Delete(o);
            return NULL;
        }
    }
    return o;
}

enum MHD_Result drv_api_discovery(drv_api_req_t *rq, const drv_api_match_t *m)
{
    const char *p = m->route->pattern;
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
