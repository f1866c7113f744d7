/* The endpoints controller: what Kubernetes' EndpointSlice and Endpoints controllers do, in
 * one pass. For each Service with a selector, the pods it selects become EndpointSlices (one
 * per distinct set of resolved target ports) and the v1 Endpoints of the Service's name; the
 * hub's bridge builds every node's Service table from the slices. */
#include "ctrl/ctrl_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/cleanup.h"
#include "drover/fmt.h"
#include "drover/log.h"

#define LABEL_SERVICE "kubernetes.io/service-name"
#define LABEL_MANAGED "endpointslice.kubernetes.io/managed-by"
#define MANAGER "endpointslice-controller.k8s.io"
#define LABEL_EP_MANAGED "endpoints.kubernetes.io/managed-by"
#define EP_MANAGER "endpoint-controller"

/* Every label of the Service's selector is on the pod. */
static bool selects(const cJSON *sel, const cJSON *pod)
{
    const cJSON *labels = drv_json_get(drv_json_get(pod, "metadata"), "labels"), *l;
    cJSON_ArrayForEach(l, sel)
    {
        const char *v = drv_json_str(labels, l->string);
        if (!cJSON_IsString(l) || !v || strcmp(v, l->valuestring))
            return false;
    }
    return true;
}

/* The container port of pod named name with protocol, or 0. */
static int64_t named_port(const cJSON *pod, const char *name, const char *proto)
{
    const cJSON *spec = drv_json_get(pod, "spec"), *c, *p;
    cJSON_ArrayForEach(c, drv_json_get(spec, "containers"))
    {
        cJSON_ArrayForEach(p, drv_json_get(c, "ports"))
        {
            const char *pn = drv_json_str(p, "name");
            if (pn && !strcmp(pn, name) && !strcmp(drv_json_str_or(p, "protocol", "TCP"), proto))
                return ctrl_int(p, "containerPort", 0);
        }
    }
    return 0;
}

/* The Service's ports as pod resolves them: [{name, port, protocol[, appProtocol]}], ports
 * that do not resolve left out (as Kubernetes does). */
static cJSON *resolve_ports(const cJSON *svc, const cJSON *pod)
{
    cJSON *out = cJSON_CreateArray();
    const cJSON *sp;
    cJSON_ArrayForEach(sp, (out ? drv_json_get(drv_json_get(svc, "spec"), "ports") : NULL))
    {
        const char *proto = drv_json_str_or(sp, "protocol", "TCP");
        const cJSON *tp = drv_json_get(sp, "targetPort");
        int64_t port = cJSON_IsString(tp)   ? named_port(pod, tp->valuestring, proto)
                       : cJSON_IsNumber(tp) ? ctrl_int(sp, "targetPort", 0)
                                            : ctrl_int(sp, "port", 0);
        if (port <= 0 || port > 65535)
            continue;
        cJSON *p = cJSON_CreateObject();
        const char *app = drv_json_str(sp, "appProtocol");
        if (!p || !cJSON_AddItemToArray(out, p) ||
            !cJSON_AddStringToObject(p, "name", drv_json_str_or(sp, "name", "")) ||
            !cJSON_AddNumberToObject(p, "port", (double)port) ||
            !cJSON_AddStringToObject(p, "protocol", proto) ||
            (app && !cJSON_AddStringToObject(p, "appProtocol", app))) {
            cJSON_Delete(out);
            return NULL;
        }
    }
    return out;
}

/* One group of endpoints sharing resolved ports: a slice and an Endpoints subset. */
typedef struct group {
    cJSON *ports;     /* owned */
    cJSON *endpoints; /* owned: the slice's endpoints */
    cJSON *ready;     /* owned: the subset's addresses */
    cJSON *notready;  /* owned: the subset's notReadyAddresses */
} group_t;

static void groups_free(group_t *g, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        cJSON_Delete(g[i].ports);
        cJSON_Delete(g[i].endpoints);
        cJSON_Delete(g[i].ready);
        cJSON_Delete(g[i].notready);
    }
    free(g);
}

static cJSON *target_ref(const cJSON *pod)
{
    cJSON *t = cJSON_CreateObject();
    if (!t || !cJSON_AddStringToObject(t, "kind", "Pod") ||
        !cJSON_AddStringToObject(t, "namespace", ctrl_meta(pod, "namespace")) ||
        !cJSON_AddStringToObject(t, "name", ctrl_meta(pod, "name")) ||
        !cJSON_AddStringToObject(t, "uid", ctrl_meta(pod, "uid"))) {
        cJSON_Delete(t);
        return NULL;
    }
    return t;
}

/* Adds pod (ip) to its group: a slice endpoint and an Endpoints address. */
static bool add_endpoint(group_t *g, const cJSON *svc, const cJSON *pod, const char *ip)
{
    const cJSON *spec = drv_json_get(pod, "spec");
    bool publish =
        cJSON_IsTrue(drv_json_get(drv_json_get(svc, "spec"), "publishNotReadyAddresses"));
    bool serving = drv_ctrl_pod_ready(pod);
    bool terminating = *ctrl_meta(pod, "deletionTimestamp") != '\0';
    bool ready = publish || (serving && !terminating);
    const char *node = drv_json_str(spec, "nodeName");
    /* A pod's DNS name under the Service: its hostname when its subdomain is the Service. */
    const char *host = drv_json_str(spec, "hostname"), *sub = drv_json_str(spec, "subdomain");
    bool named = host && *host && sub && !strcmp(sub, ctrl_meta(svc, "name"));
    cJSON *ep = cJSON_CreateObject(), *addrs = cJSON_CreateArray(), *cond = cJSON_CreateObject();
    bool ok = ep && addrs && cond && cJSON_AddItemToArray(g->endpoints, ep);
    if (!ok) {
        cJSON_Delete(ep);
        cJSON_Delete(addrs);
        cJSON_Delete(cond);
        return false;
    }
    ok = cJSON_AddItemToObject(ep, "addresses", addrs) &&
         cJSON_AddItemToArray(addrs, cJSON_CreateString(ip));
    if (!cJSON_AddItemToObject(ep, "conditions", cond)) {
        cJSON_Delete(cond);
        return false;
    }
    ok = ok && cJSON_AddBoolToObject(cond, "ready", ready) &&
         cJSON_AddBoolToObject(cond, "serving", serving) &&
         cJSON_AddBoolToObject(cond, "terminating", terminating) &&
         (!named || cJSON_AddStringToObject(ep, "hostname", host)) &&
         (!node || !*node || cJSON_AddStringToObject(ep, "nodeName", node)) &&
         ctrl_set(ep, "targetRef", target_ref(pod));
    /* v1 Endpoints leave terminating pods out unless not-ready ones are published. */
    if (!ok || (terminating && !publish))
        return ok;
    cJSON *a = cJSON_CreateObject();
    if (!a || !cJSON_AddItemToArray(ready ? g->ready : g->notready, a)) {
        cJSON_Delete(a);
        return false;
    }
    return cJSON_AddStringToObject(a, "ip", ip) &&
           (!named || cJSON_AddStringToObject(a, "hostname", host)) &&
           (!node || !*node || cJSON_AddStringToObject(a, "nodeName", node)) &&
           ctrl_set(a, "targetRef", target_ref(pod));
}

/* Groups svc's pods (of pods, every namespace's) by resolved ports. */
static bool group_pods(const cJSON *svc, const cJSON *pods, group_t **out, size_t *nout)
{
    const cJSON *sel = drv_json_get(drv_json_get(svc, "spec"), "selector"), *pod;
    const char *ns = ctrl_meta(svc, "namespace");
    group_t *g = NULL;
    size_t n = 0;
    cJSON_ArrayForEach(pod, pods)
    {
        const char *ip = drv_json_str(drv_json_get(pod, "status"), "podIP");
        if (strcmp(ctrl_meta(pod, "namespace"), ns) || !ip || !*ip || ctrl_pod_finished(pod) ||
            !selects(sel, pod))
            continue;
        cJSON *ports = resolve_ports(svc, pod);
        if (!ports)
            goto fail;
        size_t i = 0;
        while (i < n && !cJSON_Compare(g[i].ports, ports, true))
            i++;
        if (i == n) {
            group_t *ng = realloc(g, (n + 1) * sizeof(*g));
            if (!ng) {
                cJSON_Delete(ports);
                goto fail;
            }
            g = ng;
            g[n] = (group_t){ports, cJSON_CreateArray(), cJSON_CreateArray(), cJSON_CreateArray()};
            n++;
            if (!g[i].endpoints || !g[i].ready || !g[i].notready)
                goto fail;
        } else {
            cJSON_Delete(ports);
        }
        if (!add_endpoint(&g[i], svc, pod, ip))
            goto fail;
    }
    *out = g;
    *nout = n;
    return true;
fail:
    groups_free(g, n);
    return false;
}

static bool labels_for(cJSON *meta, const cJSON *svc, const char *k2, const char *v2)
{
    cJSON *l = cJSON_CreateObject();
    if (!l || !cJSON_AddItemToObject(meta, "labels", l)) {
        cJSON_Delete(l);
        return false;
    }
    return cJSON_AddStringToObject(l, LABEL_SERVICE, ctrl_meta(svc, "name")) &&
           cJSON_AddStringToObject(l, k2, v2);
}

/* A new object of kind with svc's namespace, name and owner. */
static cJSON *new_owned(const cJSON *svc, const char *apiv, const char *kind, const char *name,
                        bool slice)
{
    cJSON *o = cJSON_CreateObject(), *meta = cJSON_CreateObject();
    if (!o || !meta || !cJSON_AddItemToObject(o, "metadata", meta)) {
        cJSON_Delete(o);
        cJSON_Delete(meta);
        return NULL;
    }
    if (!cJSON_AddStringToObject(o, "apiVersion", apiv) ||
        !cJSON_AddStringToObject(o, "kind", kind) || !cJSON_AddStringToObject(meta, "name", name) ||
        !cJSON_AddStringToObject(meta, "namespace", ctrl_meta(svc, "namespace")) ||
        !labels_for(meta, svc, slice ? LABEL_MANAGED : LABEL_EP_MANAGED,
                    slice ? MANAGER : EP_MANAGER) ||
        !ctrl_set(meta, "ownerReferences", ctrl_owner_refs(svc, DRV_KIND_SERVICE))) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* Whether stored already says what want says (the keys listed, and labels/owners). */
static bool same_content(const cJSON *have, const cJSON *want, const char *const *keys)
{
    for (; *keys; keys++) {
        const cJSON *a = drv_json_get(have, *keys), *b = drv_json_get(want, *keys);
        if ((a || b) && (!a || !b || !cJSON_Compare(a, b, true)))
            return false;
    }
    const cJSON *hm = drv_json_get(have, "metadata"), *wm = drv_json_get(want, "metadata");
    static const char *const mk[] = {"labels", "ownerReferences", NULL};
    for (const char *const *k = mk; *k; k++) {
        const cJSON *a = drv_json_get(hm, *k), *b = drv_json_get(wm, *k);
        if ((a || b) && (!a || !b || !cJSON_Compare(a, b, true)))
            return false;
    }
    return true;
}

/* Creates want, or updates have to it when it differs; nothing when it says the same. */
static drv_err_t put(drv_hstore_t *s, drv_kind_t kind, const cJSON *have, cJSON *want,
                     const char *const *keys, drv_error_t *err)
{
    drv_error_t e = DRV_ERROR_INIT;
    drv_err_t r;
    if (!have) {
        r = drv_hstore_create(s, kind, want, &e);
    } else {
        if (same_content(have, want, keys))
            return DRV_OK;
        cJSON *meta = (cJSON *)drv_json_get(want, "metadata");
        const char *rv = ctrl_meta(have, "resourceVersion");
        if (*rv && !ctrl_set(meta, "resourceVersion", cJSON_CreateString(rv)))
            return drv_error_set(err, DRV_ERR_NOMEM, 0, "endpoints");
        r = drv_hstore_update(s, kind, want, &e);
    }
    if (r == DRV_ERR_CONFLICT || r == DRV_ERR_EXISTS || r == DRV_ERR_PERM)
        return DRV_OK; /* changed since listed, or its namespace is going: the next round */
    if (r != DRV_OK)
        return drv_error_set(err, r, e.sys_errno, "%s %s/%s: %s", drv_kind_name(kind),
                             ctrl_meta(want, "namespace"), ctrl_meta(want, "name"),
                             drv_error_msg(&e));
    return DRV_OK;
}

static drv_err_t del(drv_hstore_t *s, drv_kind_t kind, const cJSON *o, drv_error_t *err)
{
    drv_error_t e = DRV_ERROR_INIT;
    drv_err_t r =
        drv_hstore_delete(s, kind, ctrl_meta(o, "namespace"), ctrl_meta(o, "name"), NULL, &e);
    if (r != DRV_OK && r != DRV_ERR_NOTFOUND)
        return drv_error_set(err, r, e.sys_errno, "delete %s %s/%s: %s", drv_kind_name(kind),
                             ctrl_meta(o, "namespace"), ctrl_meta(o, "name"), drv_error_msg(&e));
    return DRV_OK;
}

static const char *const SLICE_KEYS[] = {"addressType", "endpoints", "ports", NULL};
static const char *const EP_KEYS[] = {"subsets", NULL};

/* The slices and Endpoints svc should have, written; stored slices of svc (slices: every
 * managed slice of its namespace) not among them deleted. */
static drv_err_t sync_service(drv_hstore_t *s, const cJSON *svc, const cJSON *pods,
                              const cJSON *slices, const cJSON *eps, drv_error_t *err)
{
    group_t *g = NULL;
    size_t n = 0;
    if (!group_pods(svc, pods, &g, &n))
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "endpoints");
    const char *svcname = ctrl_meta(svc, "name");
    drv_err_t r = DRV_OK;
    /* Names from what the group resolves to, so that a round finds its own slice again. */
    char(*names)[96] = calloc(n ? n : 1, sizeof(*names));
    _cleanup_cjson_ cJSON *ep = new_owned(svc, "v1", "Endpoints", svcname, false);
    cJSON *subsets = cJSON_CreateArray();
    if (!names || !ep || !subsets || !cJSON_AddItemToObject(ep, "subsets", subsets)) {
        cJSON_Delete(subsets);
        r = drv_error_set(err, DRV_ERR_NOMEM, 0, "endpoints");
    }
    for (size_t i = 0; r == DRV_OK && i < (n ? n : 1); i++) {
        char h[11];
        drv_ctrl_template_hash(n ? g[i].ports : NULL, h, sizeof(h));
        drv_fmt_cut(names[i], sizeof(names[i]), "%.63s-%.5s", svcname, h);
        _cleanup_cjson_ cJSON *sl =
            new_owned(svc, "discovery.k8s.io/v1", "EndpointSlice", names[i], true);
        bool ok = sl && cJSON_AddStringToObject(sl, "addressType", "IPv4");
        if (ok && n)
            ok = cJSON_AddItemToObject(sl, "endpoints", TAKE_PTR(g[i].endpoints)) &&
                 cJSON_AddItemToObject(sl, "ports", cJSON_Duplicate(g[i].ports, true));
        else if (ok)
            ok = cJSON_AddArrayToObject(sl, "endpoints") != NULL;
        if (ok && n && (cJSON_GetArraySize(g[i].ready) || cJSON_GetArraySize(g[i].notready))) {
            cJSON *sub = cJSON_CreateObject();
            ok = sub && cJSON_AddItemToArray(subsets, sub);
            if (!ok)
                cJSON_Delete(sub);
            if (ok && cJSON_GetArraySize(g[i].ready))
                ok = cJSON_AddItemToObject(sub, "addresses", TAKE_PTR(g[i].ready));
            if (ok && cJSON_GetArraySize(g[i].notready))
                ok = cJSON_AddItemToObject(sub, "notReadyAddresses", TAKE_PTR(g[i].notready));
            if (ok)
                ok = cJSON_AddItemToObject(sub, "ports", TAKE_PTR(g[i].ports));
        }
        if (!ok) {
            r = drv_error_set(err, DRV_ERR_NOMEM, 0, "endpoint slice");
            break;
        }
        const cJSON *have = NULL, *o;
        cJSON_ArrayForEach(o, slices)
        {
            if (!strcmp(ctrl_meta(o, "name"), names[i]))
                have = o;
        }
        r = put(s, DRV_KIND_ENDPOINTSLICE, have, sl, SLICE_KEYS, err);
    }
    const cJSON *o;
    cJSON_ArrayForEach(o, (r == DRV_OK ? slices : NULL))
    {
        const char *sn =
            drv_json_str(drv_json_get(drv_json_get(o, "metadata"), "labels"), LABEL_SERVICE);
        if (!sn || strcmp(sn, svcname))
            continue;
        bool want = false;
        for (size_t i = 0; i < (n ? n : 1); i++)
            want = want || !strcmp(ctrl_meta(o, "name"), names[i]);
        if (!want && (r = del(s, DRV_KIND_ENDPOINTSLICE, o, err)) != DRV_OK)
            break;
    }
    if (r == DRV_OK && !cJSON_GetArraySize(subsets))
        cJSON_DeleteItemFromObjectCaseSensitive(ep, "subsets"); /* as Kubernetes: none */
    if (r == DRV_OK) {
        const cJSON *have = NULL;
        cJSON_ArrayForEach(o, eps)
        {
            if (!strcmp(ctrl_meta(o, "name"), svcname))
                have = o;
        }
        r = put(s, DRV_KIND_ENDPOINTS, have, ep, EP_KEYS, err);
    }
    free(names);
    groups_free(g, n);
    return r;
}

static bool has_selector(const cJSON *svc)
{
    const cJSON *sel = drv_json_get(drv_json_get(svc, "spec"), "selector");
    return cJSON_IsObject(sel) && sel->child;
}

/* The Service of ns/name in svcs (as listed), or NULL. */
static const cJSON *find_svc(const cJSON *svcs, const char *ns, const char *name)
{
    const cJSON *o;
    cJSON_ArrayForEach(o, svcs)
    {
        if (!strcmp(ctrl_meta(o, "namespace"), ns) && !strcmp(ctrl_meta(o, "name"), name))
            return o;
    }
    return NULL;
}

/* The objects of list in ns: a new array of references (borrowed items). */
static cJSON *in_ns(const cJSON *list, const char *ns)
{
    cJSON *out = cJSON_CreateArray();
    const cJSON *o;
    cJSON_ArrayForEach(o, (out ? list : NULL))
    {
        if (!strcmp(ctrl_meta(o, "namespace"), ns) &&
            !cJSON_AddItemReferenceToArray(out, (cJSON *)o)) {
            cJSON_Delete(out);
            return NULL;
        }
    }
    return out;
}

/* The addresses a LoadBalancer Service is served on: every Ready node's (its ExternalIP, else
 * its InternalIP), as K3s's ServiceLB reports them; sorted, so that the status only changes
 * when the set does. */
static cJSON *lb_ingress(const cJSON *nodes)
{
    cJSON *ips = cJSON_CreateArray();
    const cJSON *n;
    cJSON_ArrayForEach(n, nodes)
    {
        const cJSON *st = drv_json_get(n, "status");
        bool ready = false;
        const cJSON *c;
        cJSON_ArrayForEach(c, drv_json_get(st, "conditions"))
        {
            const char *t = drv_json_str(c, "type"), *v = drv_json_str(c, "status");
            ready = ready || (t && v && !strcmp(t, "Ready") && !strcmp(v, "True"));
        }
        const char *ext = NULL, *in = NULL;
        cJSON_ArrayForEach(c, drv_json_get(st, "addresses"))
        {
            const char *t = drv_json_str(c, "type"), *a = drv_json_str(c, "address");
            if (t && a && !strcmp(t, "ExternalIP") && !ext)
                ext = a;
            if (t && a && !strcmp(t, "InternalIP") && !in)
                in = a;
        }
        const char *ip = ext ? ext : in;
        if (!ready || !ip)
            continue;
        cJSON *e = cJSON_CreateObject();
        if (!e || !cJSON_AddItemToArray(ips, e) || !cJSON_AddStringToObject(e, "ip", ip) ||
            !cJSON_AddStringToObject(e, "ipMode", "VIP")) {
            cJSON_Delete(ips);
            return NULL;
        }
    }
    /* Insertion sort by address text: a handful of nodes. */
    cJSON *sorted = cJSON_CreateArray();
    while (sorted && ips && cJSON_GetArraySize(ips) > 0) {
        cJSON *min = ips->child;
        for (cJSON *e = ips->child; e; e = e->next)
            if (strcmp(drv_json_str(e, "ip"), drv_json_str(min, "ip")) < 0)
                min = e;
        cJSON_AddItemToArray(sorted, cJSON_DetachItemViaPointer(ips, min));
    }
    cJSON_Delete(ips);
    return sorted;
}

/* status.loadBalancer of every LoadBalancer Service (the others: none), written on change. */
static drv_err_t lb_status(drv_hstore_t *s, const cJSON *svcs, drv_error_t *err)
{
    _cleanup_cjson_ cJSON *nodes = NULL, *ingress = NULL;
    const cJSON *svc;
    bool any = false;
    cJSON_ArrayForEach(svc, svcs)
    {
        const char *type = drv_json_str(drv_json_get(svc, "spec"), "type");
        any = any || (type && !strcmp(type, "LoadBalancer"));
    }
    if (!any)
        return DRV_OK;
    drv_err_t r = drv_hstore_list(s, DRV_KIND_NODE, NULL, NULL, &nodes, NULL, err);
    if (r != DRV_OK)
        return r;
    if (!(ingress = lb_ingress(nodes)))
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "LoadBalancer status");
    cJSON_ArrayForEach(svc, svcs)
    {
        const char *type = drv_json_str(drv_json_get(svc, "spec"), "type");
        if (!type || strcmp(type, "LoadBalancer"))
            continue;
        const cJSON *have =
            drv_json_get(drv_json_get(drv_json_get(svc, "status"), "loadBalancer"), "ingress");
        if (have ? cJSON_Compare(have, ingress, true) : cJSON_GetArraySize(ingress) == 0)
            continue;
        cJSON *st = cJSON_CreateObject();
        cJSON *lb = cJSON_AddObjectToObject(st, "loadBalancer");
        cJSON *ing = cJSON_Duplicate(ingress, true);
        if (!st || !lb || !ing || !cJSON_AddItemToObject(lb, "ingress", ing)) {
            cJSON_Delete(st);
            if (!lb || !cJSON_GetObjectItemCaseSensitive(lb, "ingress"))
                cJSON_Delete(ing);
            return drv_error_set(err, DRV_ERR_NOMEM, 0, "LoadBalancer status");
        }
        r = drv_hstore_update_status(s, DRV_KIND_SERVICE, ctrl_meta(svc, "namespace"),
                                     ctrl_meta(svc, "name"), st, NULL, err);
        if (r != DRV_OK && r != DRV_ERR_NOTFOUND)
            return r;
    }
    return DRV_OK;
}

drv_err_t drv_ctrl_endpoints_reconcile(drv_hstore_t *s, int64_t now_ms, drv_error_t *err)
{
    (void)now_ms;
    _cleanup_cjson_ cJSON *svcs = NULL, *pods = NULL, *slices = NULL, *eps = NULL;
    drv_err_t r = drv_hstore_list(s, DRV_KIND_SERVICE, NULL, NULL, &svcs, NULL, err);
    if (r == DRV_OK)
        r = drv_hstore_list(s, DRV_KIND_ENDPOINTSLICE, NULL, NULL, &slices, NULL, err);
    if (r == DRV_OK)
        r = drv_hstore_list(s, DRV_KIND_ENDPOINTS, NULL, NULL, &eps, NULL, err);
    if (r != DRV_OK)
        return r;
    /* Pods only when some Service needs them. */
    const cJSON *svc;
    bool need = false;
    cJSON_ArrayForEach(svc, svcs)
    {
        need = need || has_selector(svc);
    }
    if (need && (r = drv_hstore_list(s, DRV_KIND_POD, NULL, NULL, &pods, NULL, err)) != DRV_OK)
        return r;
    /* Slices not ours are left alone (a user's own, for a Service without a selector). */
    for (cJSON *o = slices ? slices->child : NULL, *next; o; o = next) {
        next = o->next;
        const char *m =
            drv_json_str(drv_json_get(drv_json_get(o, "metadata"), "labels"), LABEL_MANAGED);
        if (!m || strcmp(m, MANAGER))
            cJSON_Delete(cJSON_DetachItemViaPointer(slices, o));
    }
    drv_err_t first = DRV_OK;
    cJSON_ArrayForEach(svc, svcs)
    {
        if (!has_selector(svc))
            continue;
        const char *ns = ctrl_meta(svc, "namespace");
        _cleanup_cjson_ cJSON *nsl = in_ns(slices, ns), *nep = in_ns(eps, ns);
        drv_error_t e = DRV_ERROR_INIT;
        r = nsl && nep ? sync_service(s, svc, pods, nsl, nep, &e)
                       : drv_error_set(&e, DRV_ERR_NOMEM, 0, "endpoints");
        if (r != DRV_OK && first == DRV_OK)
            first = drv_error_set(err, r, e.sys_errno, "%s", drv_error_msg(&e));
    }
    /* Ours whose Service is gone or selects nothing any more. */
    const cJSON *o;
    cJSON_ArrayForEach(o, slices)
    {
        const char *sn =
            drv_json_str(drv_json_get(drv_json_get(o, "metadata"), "labels"), LABEL_SERVICE);
        const cJSON *owner = find_svc(svcs, ctrl_meta(o, "namespace"), sn ? sn : "");
        drv_error_t e = DRV_ERROR_INIT;
        if ((!owner || !has_selector(owner)) &&
            (r = del(s, DRV_KIND_ENDPOINTSLICE, o, &e)) != DRV_OK && first == DRV_OK)
            first = drv_error_set(err, r, e.sys_errno, "%s", drv_error_msg(&e));
    }
    cJSON_ArrayForEach(o, eps)
    {
        const char *m =
            drv_json_str(drv_json_get(drv_json_get(o, "metadata"), "labels"), LABEL_EP_MANAGED);
        const cJSON *owner = find_svc(svcs, ctrl_meta(o, "namespace"), ctrl_meta(o, "name"));
        drv_error_t e = DRV_ERROR_INIT;
        if (m && !strcmp(m, EP_MANAGER) && (!owner || !has_selector(owner)) &&
            (r = del(s, DRV_KIND_ENDPOINTS, o, &e)) != DRV_OK && first == DRV_OK)
            first = drv_error_set(err, r, e.sys_errno, "%s", drv_error_msg(&e));
    }
    drv_error_t e = DRV_ERROR_INIT;
    if ((r = lb_status(s, svcs, &e)) != DRV_OK && first == DRV_OK)
        first = drv_error_set(err, r, e.sys_errno, "%s", drv_error_msg(&e));
    return first;
}
