/* Pods and the workloads that template them (Deployment, DaemonSet): validation against the
 * subset Drover runs, Kubernetes' defaults, and canonical quantities. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/json.h"
#include "drover/fmt.h"
#include "drover/names.h"
#include "drover/quantity.h"
#include "drover/selector.h"
#include "model_int.h"

/* What the checks of one container need of its pod. */
struct pod_ctx {
    cJSON *spec;
    bool init;
    bool privileged; /* the container being checked is (for mountPropagation) */
};

/* True if the relative path has no ".." element (Kubernetes' rule for subPath and items). */
static bool no_dotdot(const char *p)
{
    for (const char *s = p; *s;) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 2 && s[0] == '.' && s[1] == '.')
            return false;
        s += n;
        while (*s == '/')
            s++;
    }
    return true;
}

/* Runs fn on each element of parent[key] (an array of objects), with the path set. */
void v_each(vctx_t *c, cJSON *parent, const char *key, bool required, velem_fn fn, void *arg)
{
    cJSON *a = v_arr(c, parent, key, required);
    if (!a)
        return;
    size_t old = v_push_key(c, key), i = 0;
    if (required && !a->child)
        v_fail(c, "must have at least one element");
    for (cJSON *e = a->child; e; e = e->next, i++) {
        size_t o2 = v_push_index(c, i);
        if (cJSON_IsObject(e))
            fn(c, e, i, arg);
        else
            v_fail(c, "must be an object");
        v_pop(c, o2);
    }
    v_pop(c, old);
}

/* ---- resources ---- */

/* How many members of obj list names: a choice the user made that Drover refuses still
 * counts as a choice, so "exactly one of" is not reported on top of its refusal. */
static int count_present(const cJSON *obj, const char *names)
{
    int n = 0;
    for (const char *k = names; k && *k; k += strlen(k) + 1)
        n += drv_json_get(obj, k) != NULL;
    return n;
}

static bool qty_field(vctx_t *c, cJSON *map, const char *res, int64_t *value)
{
    cJSON *m = drv_json_get(map, res);
    if (!m)
        return false;
    size_t old = v_push_mapkey(c, res);
    char text[64];
    bool ok = false;
    if (cJSON_IsNumber(m)) {
        if (drv_fmt_double(text, sizeof(text), m->valuedouble) != DRV_OK) {
            v_fail(c, "invalid quantity: too long");
            v_pop(c, old);
            return false;
        }
    } else if (cJSON_IsString(m)) {
        if (drv_fmt(text, sizeof(text), "%s", m->valuestring) != DRV_OK) {
            v_fail(c, "invalid quantity: too long");
            v_pop(c, old);
            return false;
        }
    } else {
        v_fail(c, "must be a quantity string such as \"250m\" or \"64Mi\"");
        v_pop(c, old);
        return false;
    }
    drv_error_t err = DRV_ERROR_INIT;
    drv_qty_format_t fmt = DRV_QTY_DECIMAL;
    char canon[64];
    drv_err_t r = !strcmp(res, "cpu") ? drv_qty_parse_cpu(text, value, &fmt, &err)
                                      : drv_qty_parse_memory(text, value, &fmt, &err);
    if (r != DRV_OK) {
        v_fail(c, "invalid quantity \"%.32s\": %s", text, drv_error_msg(&err));
    } else {
        r = !strcmp(res, "cpu") ? drv_qty_format_cpu(*value, canon, sizeof(canon))
                                : drv_qty_format_memory(*value, fmt, canon, sizeof(canon));
        if (r == DRV_OK) {
            v_set_str(c, map, res, canon);
            ok = true;
        } else {
            v_fail(c, "invalid quantity \"%.32s\": cannot be represented", text);
        }
    }
    v_pop(c, old);
    return ok;
}

static void v_resource_map(vctx_t *c, cJSON *res, const char *key, int64_t vals[2], bool have[2])
{
    cJSON *m = v_obj(c, res, key, false);
    if (!m)
        return;
    size_t old = v_push_key(c, key);
    for (cJSON *e = m->child; e; e = e->next) {
        if (strcmp(e->string, "cpu") && strcmp(e->string, "memory")) {
            size_t o2 = v_push_mapkey(c, e->string);
            v_fail(c, "unsupported resource: Drover schedules and limits cpu and memory");
            v_pop(c, o2);
        }
    }
    have[0] = qty_field(c, m, "cpu", &vals[0]);
    have[1] = qty_field(c, m, "memory", &vals[1]);
    v_pop(c, old);
}

static void v_resources(vctx_t *c, cJSON *ctr)
{
    static const char known[] = "requests\0"
                                "limits\0";
    static const char unsupported[] = "claims\0";
    cJSON *res = v_obj(c, ctr, "resources", false);
    if (!res)
        return;
    size_t old = v_push_key(c, "resources");
    v_fields(c, res, known, NULL, unsupported);
    int64_t req[2] = {0}, lim[2] = {0};
    bool hreq[2] = {false}, hlim[2] = {false};
    v_resource_map(c, res, "requests", req, hreq);
    v_resource_map(c, res, "limits", lim, hlim);
    static const char *const names[2] = {"cpu", "memory"};
    for (int i = 0; i < 2; i++) {
        if (hreq[i] && hlim[i] && req[i] > lim[i]) {
            const char *ls = drv_json_str(drv_json_get(res, "limits"), names[i]);
            size_t o1 = v_push_key(c, "requests"), o2 = v_push_mapkey(c, names[i]);
            v_fail(c, "must be less than or equal to %s limit of %s", names[i], ls ? ls : "?");
            v_pop(c, o2);
            v_pop(c, o1);
        }
        /* Kubernetes: a limit without a request makes the request equal to the limit. */
        if (hlim[i] && !hreq[i] && !drv_json_get(drv_json_get(res, "requests"), names[i])) {
            cJSON *r = drv_json_get(res, "requests");
            if (!r)
                r = cJSON_AddObjectToObject(res, "requests");
            if (!r || !cJSON_AddStringToObject(r, names[i],
                                               drv_json_str(drv_json_get(res, "limits"), names[i])))
                c->nomem = true;
        }
    }
    v_pop(c, old);
    /* Canonical form: no resources is one form, not two. Kubernetes' Go clients always send
     * `resources: {}` (kubectl rollout undo copies a template that way); a template's hash must
     * not change with it. */
    static const char *const maps[] = {"requests", "limits"};
    for (int i = 0; i < 2; i++) {
        const cJSON *m = drv_json_get(res, maps[i]);
        if (cJSON_IsObject(m) && !m->child)
            cJSON_DeleteItemFromObjectCaseSensitive(res, maps[i]);
    }
    if (!res->child)
        cJSON_DeleteItemFromObjectCaseSensitive(ctr, "resources");
}

/* ---- env ---- */

void v_secret_ref_reserved(vctx_t *c, cJSON *obj, const char *key)
{
    static const char *const reserved[] = {"drover-sa-token-", "drover-projected-"};
    const char *name = drv_json_str(obj, key);
    for (size_t i = 0; name && i < sizeof(reserved) / sizeof(reserved[0]); i++)
        if (!strncmp(name, reserved[i], strlen(reserved[i])))
            v_failk(c, key,
                    "\"%.64s\": names starting with \"%s\" are Drover's own Secrets for pods' "
                    "service account tokens",
                    name, reserved[i]);
}

static void v_key_ref(vctx_t *c, cJSON *parent, const char *key)
{
    static const char known[] = "name\0"
                                "key\0"
                                "optional\0";
    cJSON *r = drv_json_get(parent, key);
    if (!cJSON_IsObject(r))
        return;
    size_t old = v_push_key(c, key);
    v_fields(c, r, known, NULL, NULL);
    v_name(c, r, "name", true, drv_name_dns_subdomain);
    if (!strcmp(key, "secretKeyRef"))
        v_secret_ref_reserved(c, r, "name");
    v_name(c, r, "key", true, drv_name_config_key);
    v_bool(c, r, "optional", NULL);
    v_pop(c, old);
}

/* A fieldRef: fieldPath one of paths, or a label or annotation by key
 * ("metadata.labels['app']"), as the downward API allows both in env and volumes. */
static void v_field_ref(vctx_t *c, cJSON *parent, const char *paths)
{
    static const char fknown[] = "fieldPath\0"
                                 "apiVersion\0";
    cJSON *fr = v_obj(c, parent, "fieldRef", false);
    if (!fr)
        return;
    size_t old = v_push_key(c, "fieldRef");
    v_fields(c, fr, fknown, NULL, NULL);
    const char *fp = v_str(c, fr, "fieldPath", true);
    const char *av = v_str(c, fr, "apiVersion", false);
    if (av && *av && strcmp(av, "v1"))
        v_failk(c, "apiVersion", "unsupported value \"%.32s\": must be \"v1\"", av);
    static const char *const maps[] = {"metadata.labels['", "metadata.annotations['"};
    bool ok = false, subscript = false;
    for (int i = 0; fp && i < 2 && !subscript; i++) {
        size_t pl = strlen(maps[i]), n = strlen(fp);
        if (strncmp(fp, maps[i], pl))
            continue;
        subscript = true;
        char key[320], why[256] = "";
        if (n < pl + 2 || strcmp(fp + n - 2, "']") || n - pl - 2 >= sizeof(key)) {
            v_failk(c, "fieldPath",
                    "invalid value \"%.64s\": the key must be quoted and closed, "
                    "as in metadata.labels['app']",
                    fp);
        } else {
            memcpy(key, fp + pl, n - pl - 2);
            key[n - pl - 2] = '\0';
            if (!drv_name_label_key(key, why, sizeof(why)))
                v_failk(c, "fieldPath", "invalid key \"%.64s\": %s", key, why);
        }
    }
    for (const char *p = paths; fp && !subscript && *p && !ok; p += strlen(p) + 1)
        ok = !strcmp(fp, p);
    if (fp && !subscript && !ok) {
        char list[512] = "";
        size_t len = 0;
        for (const char *p = paths; *p; p += strlen(p) + 1) {
            drv_fmt_cut(list + len, sizeof(list) - len, "%s\"%s\"", len ? ", " : "", p);
            len = strlen(list);
        }
        v_failk(c, "fieldPath", "unsupported value \"%.64s\": supported values: %s", fp, list);
    }
    v_pop(c, old);
}

static bool container_named(cJSON *spec, const char *name)
{
    static const char *const lists[] = {"containers", "initContainers"};
    for (int l = 0; l < 2; l++) {
        cJSON *a = drv_json_get(spec, lists[l]);
        for (cJSON *e = cJSON_IsArray(a) ? a->child : NULL; e; e = e->next)
            if (drv_json_str(e, "name") && !strcmp(drv_json_str(e, "name"), name))
                return true;
    }
    return false;
}

/* A resourceFieldRef: limits or requests of cpu or memory of a container of the pod (named:
 * required in volumes, this container by default in env), divided by divisor. */
static void v_resource_field_ref(vctx_t *c, cJSON *parent, cJSON *spec, bool need_container)
{
    static const char known[] = "containerName\0"
                                "resource\0"
                                "divisor\0";
    static const char resources[] = "limits.cpu\0"
                                    "limits.memory\0"
                                    "requests.cpu\0"
                                    "requests.memory\0";
    static const char cpu_div[] = "1m\0"
                                  "1\0";
    static const char mem_div[] = "1\0"
                                  "1k\0"
                                  "1M\0"
                                  "1G\0"
                                  "1T\0"
                                  "1P\0"
                                  "1E\0"
                                  "1Ki\0"
                                  "1Mi\0"
                                  "1Gi\0"
                                  "1Ti\0"
                                  "1Pi\0"
                                  "1Ei\0";
    cJSON *rf = v_obj(c, parent, "resourceFieldRef", false);
    if (!rf)
        return;
    size_t old = v_push_key(c, "resourceFieldRef");
    v_fields(c, rf, known, NULL, NULL);
    const char *cn = v_str(c, rf, "containerName", need_container);
    if (cn && *cn && !container_named(spec, cn))
        v_failk(c, "containerName", "container \"%.64s\" not found in the pod", cn);
    else if (need_container && cn && !*cn)
        v_failk(c, "containerName", "required");
    const char *res = drv_json_str(rf, "resource");
    if (res && (strstr(res, "ephemeral-storage") || strstr(res, "hugepages-")))
        v_failk(c, "resource",
                "unsupported value \"%.64s\": Drover gives the limits and requests of cpu and "
                "memory",
                res);
    else
        res = v_enum(c, rf, "resource", true, resources);
    cJSON *d = drv_json_get(rf, "divisor");
    if (d && res) {
        char text[32] = "";
        if (cJSON_IsNumber(d))
            drv_fmt_cut(text, sizeof(text), "%.17g", d->valuedouble);
        else if (cJSON_IsString(d))
            drv_fmt_cut(text, sizeof(text), "%s", d->valuestring);
        bool cpu = strstr(res, "cpu") != NULL, ok = !strcmp(text, "0");
        for (const char *v = cpu ? cpu_div : mem_div; *v && !ok; v += strlen(v) + 1)
            ok = !strcmp(text, v);
        if (!ok)
            v_failk(c, "divisor",
                    cpu ? "only divisor's values 1m and 1 are supported with the cpu resource"
                        : "only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, "
                          "1Pi, 1Ei are supported with the memory resource");
        else
            v_set_str(c, rf, "divisor", text);
    }
    v_pop(c, old);
}

static void v_env(vctx_t *c, cJSON *e, size_t i, void *arg)
{
    static const char known[] = "name\0"
                                "value\0"
                                "valueFrom\0";
    v_fields(c, e, known, NULL, NULL);
    v_name(c, e, "name", true, drv_name_env_var);
    v_str(c, e, "value", false);
    cJSON *vf = v_obj(c, e, "valueFrom", false);
    if (!vf)
        return;
    if (drv_json_get(e, "value") && drv_json_str(e, "value") && *drv_json_str(e, "value"))
        v_failk(c, "valueFrom", "may not be specified when `value` is not empty");
    size_t old = v_push_key(c, "valueFrom");
    static const char vknown[] = "configMapKeyRef\0"
                                 "secretKeyRef\0"
                                 "fieldRef\0"
                                 "resourceFieldRef\0";
    static const char vunsupported[] = "fileKeyRef\0";
    v_fields(c, vf, vknown, NULL, vunsupported);
    int n = 0;
    for (const char *k = vknown; *k; k += strlen(k) + 1)
        if (v_obj(c, vf, k, false))
            n++;
    if (n + count_present(vf, vunsupported) != 1)
        v_fail(c, "must specify exactly one of configMapKeyRef, secretKeyRef, fieldRef, "
                  "resourceFieldRef");
    v_key_ref(c, vf, "configMapKeyRef");
    v_key_ref(c, vf, "secretKeyRef");
    static const char paths[] = "metadata.name\0"
                                "metadata.namespace\0"
                                "metadata.uid\0"
                                "spec.nodeName\0"
                                "spec.serviceAccountName\0"
                                "status.podIP\0"
                                "status.podIPs\0"
                                "status.hostIP\0"
                                "status.hostIPs\0";
    v_field_ref(c, vf, paths);
    struct pod_ctx *pc = arg;
    v_resource_field_ref(c, vf, pc->spec, false);
    v_pop(c, old);
}

static void v_env_from(vctx_t *c, cJSON *e, size_t i, void *arg)
{
    static const char known[] = "prefix\0"
                                "configMapRef\0"
                                "secretRef\0";
    static const char rknown[] = "name\0"
                                 "optional\0";
    v_fields(c, e, known, NULL, NULL);
    v_str(c, e, "prefix", false);
    int n = 0;
    for (const char *k = "configMapRef"; k; k = strcmp(k, "configMapRef") ? NULL : "secretRef") {
        cJSON *r = v_obj(c, e, k, false);
        if (!r)
            continue;
        n++;
        size_t old = v_push_key(c, k);
        v_fields(c, r, rknown, NULL, NULL);
        v_name(c, r, "name", true, drv_name_dns_subdomain);
        if (!strcmp(k, "secretRef"))
            v_secret_ref_reserved(c, r, "name");
        v_bool(c, r, "optional", NULL);
        v_pop(c, old);
    }
    if (n != 1)
        v_fail(c, "must specify exactly one of configMapRef, secretRef");
}

/* ---- ports ---- */

struct port_seen {
    cJSON *ctrs[2]; /* containers, initContainers: for hostPort uniqueness across the pod */
};

static void v_port(vctx_t *c, cJSON *p, size_t i, void *arg)
{
    static const char known[] = "name\0"
                                "containerPort\0"
                                "hostPort\0"
                                "protocol\0"
                                "hostIP\0";
    static const char protocols[] = "TCP\0"
                                    "UDP\0"
                                    "SCTP\0";
    v_fields(c, p, known, NULL, NULL);
    v_name(c, p, "name", false, drv_name_port_name);
    v_int(c, p, "containerPort", true, 1, 65535, NULL);
    v_int(c, p, "hostPort", false, 0, 65535, NULL);
    v_enum(c, p, "protocol", false, protocols);
    v_default_str(c, p, "protocol", "TCP");
    v_str(c, p, "hostIP", false);
}

/* ---- probes ---- */

static void v_probe_port(vctx_t *c, cJSON *h, cJSON *ctr)
{
    if (!v_int_or_string(c, h, "port", true, VIOS_PORT))
        return;
    const char *name = drv_json_str(h, "port");
    if (!name)
        return;
    /* A named port must be one the container declares. */
    cJSON *ports = drv_json_get(ctr, "ports");
    for (cJSON *p = ports ? ports->child : NULL; p; p = p->next)
        if (drv_json_str(p, "name") && !strcmp(drv_json_str(p, "name"), name))
            return;
    v_failk(c, "port", "no container port named \"%s\"", name);
}

/* An httpGet action, of a probe or of a lifecycle hook (the same fields in Kubernetes). */
static void v_http_get(vctx_t *c, cJSON *hg, cJSON *ctr)
{
    static const char hknown[] = "path\0"
                                 "port\0"
                                 "host\0"
                                 "scheme\0"
                                 "httpHeaders\0";
    static const char schemes[] = "HTTP\0"
                                  "HTTPS\0";
    size_t o2 = v_push_key(c, "httpGet");
    v_fields(c, hg, hknown, NULL, NULL);
    const char *path = v_str(c, hg, "path", false);
    if (path && *path && path[0] != '/')
        v_failk(c, "path", "must start with '/'");
    v_default_str(c, hg, "path", "/");
    v_probe_port(c, hg, ctr);
    v_str(c, hg, "host", false);
    v_enum(c, hg, "scheme", false, schemes);
    v_default_str(c, hg, "scheme", "HTTP");
    cJSON *hh = v_arr(c, hg, "httpHeaders", false);
    size_t i = 0;
    for (cJSON *h = hh ? hh->child : NULL; h; h = h->next, i++) {
        static const char hhknown[] = "name\0"
                                      "value\0";
        size_t o3 = v_push_key(c, "httpHeaders"), o4 = v_push_index(c, i);
        if (!cJSON_IsObject(h)) {
            v_fail(c, "must be an object");
        } else {
            v_fields(c, h, hhknown, NULL, NULL);
            const char *n = v_str(c, h, "name", true);
            if (n && strpbrk(n, " :\r\n\t"))
                v_failk(c, "name", "invalid HTTP header name \"%.64s\"", n);
            const char *v = v_str(c, h, "value", false);
            if (v && strpbrk(v, "\r\n"))
                v_failk(c, "value", "may not contain line breaks");
        }
        v_pop(c, o4);
        v_pop(c, o3);
    }
    v_pop(c, o2);
}

/* parent.exec ({command}), the handler probes and lifecycle hooks share; 1 when present. */
static int v_exec_action(vctx_t *c, cJSON *parent)
{
    static const char eknown[] = "command\0";
    cJSON *ex = v_obj(c, parent, "exec", false);
    if (!ex)
        return 0;
    size_t old = v_push_key(c, "exec");
    v_fields(c, ex, eknown, NULL, NULL);
    v_str_list(c, ex, "command", true);
    v_pop(c, old);
    return 1;
}

static void v_probe(vctx_t *c, cJSON *ctr, const char *key, bool liveness_like)
{
    static const char known[] = "exec\0"
                                "httpGet\0"
                                "tcpSocket\0"
                                "initialDelaySeconds\0"
                                "timeoutSeconds\0"
                                "periodSeconds\0"
                                "successThreshold\0"
                                "failureThreshold\0"
                                "terminationGracePeriodSeconds\0"
                                "grpc\0";
    cJSON *p = v_obj(c, ctr, key, false);
    if (!p)
        return;
    size_t old = v_push_key(c, key);
    v_fields(c, p, known, NULL, NULL);
    int handlers = 0;
    handlers += v_exec_action(c, p);
    cJSON *hg = v_obj(c, p, "httpGet", false);
    if (hg) {
        handlers++;
        v_http_get(c, hg, ctr);
    }
    cJSON *ts = v_obj(c, p, "tcpSocket", false);
    if (ts) {
        static const char tknown[] = "port\0"
                                     "host\0";
        handlers++;
        size_t o2 = v_push_key(c, "tcpSocket");
        v_fields(c, ts, tknown, NULL, NULL);
        v_probe_port(c, ts, ctr);
        v_str(c, ts, "host", false);
        v_pop(c, o2);
    }
    cJSON *gr = v_obj(c, p, "grpc", false);
    if (gr) {
        /* grpc.health.v1 Health/Check over HTTP/2 without TLS; the port is a number only. */
        static const char gknown[] = "port\0"
                                     "service\0";
        handlers++;
        size_t o2 = v_push_key(c, "grpc");
        v_fields(c, gr, gknown, NULL, NULL);
        v_int(c, gr, "port", true, 1, 65535, NULL);
        const char *svc = v_str(c, gr, "service", false);
        if (svc && strlen(svc) > 120)
            v_failk(c, "service", "must be at most 120 bytes");
        v_pop(c, o2);
    }
    if (handlers != 1)
        v_fail(c, "must specify exactly one handler: exec, httpGet, tcpSocket or grpc");
    int64_t success = 1;
    v_int(c, p, "initialDelaySeconds", false, 0, INT32_MAX, NULL);
    v_int(c, p, "timeoutSeconds", false, 1, INT32_MAX, NULL);
    v_int(c, p, "periodSeconds", false, 1, INT32_MAX, NULL);
    if (v_int(c, p, "successThreshold", false, 1, INT32_MAX, &success) && liveness_like &&
        success != 1)
        v_failk(c, "successThreshold", "must be 1");
    v_int(c, p, "failureThreshold", false, 1, INT32_MAX, NULL);
    v_int(c, p, "terminationGracePeriodSeconds", false, 1, INT32_MAX, NULL);
    v_default_int(c, p, "timeoutSeconds", 1);
    v_default_int(c, p, "periodSeconds", 10);
    v_default_int(c, p, "successThreshold", 1);
    v_default_int(c, p, "failureThreshold", 3);
    v_pop(c, old);
}

/* ---- lifecycle hooks ---- */

/* A postStart or preStop handler: exactly one of exec, httpGet and sleep, as the kubelet runs
 * them. tcpSocket is in the Kubernetes API only for compatibility (the kubelet never ran it). */
static void v_lifecycle_handler(vctx_t *c, cJSON *lc, const char *key, cJSON *ctr, int64_t grace)
{
    static const char known[] = "exec\0"
                                "httpGet\0"
                                "sleep\0";
    static const char unsupported[] = "tcpSocket\0";
    cJSON *h = v_obj(c, lc, key, false);
    if (!h)
        return;
    size_t old = v_push_key(c, key);
    bool refused = drv_json_get(h, "tcpSocket") != NULL;
    if (refused) {
        /* Named apart from the generic "not supported": the kubelet ignores it, Drover says so. */
        v_failk(c, "tcpSocket",
                "not supported by Drover: deprecated in Kubernetes, which never runs it; use "
                "exec, httpGet or sleep");
        cJSON_DeleteItemFromObjectCaseSensitive(h, "tcpSocket");
    }
    v_fields(c, h, known, NULL, unsupported);
    int handlers = 0;
    handlers += v_exec_action(c, h);
    cJSON *hg = v_obj(c, h, "httpGet", false);
    if (hg) {
        handlers++;
        v_http_get(c, hg, ctr);
    }
    cJSON *sl = v_obj(c, h, "sleep", false);
    if (sl) {
        static const char sknown[] = "seconds\0";
        handlers++;
        size_t o2 = v_push_key(c, "sleep");
        v_fields(c, sl, sknown, NULL, NULL);
        int64_t secs = 0;
        /* Kubernetes: 0 (PodLifecycleSleepActionAllowZero, on by default since 1.33) up to the
         * pod's grace period, which the sleep would otherwise outlast. */
        if (v_int(c, sl, "seconds", true, 0, INT32_MAX, &secs) && secs > grace)
            v_failk(c, "seconds", "must be at most terminationGracePeriodSeconds (%lld)",
                    (long long)grace);
        v_pop(c, o2);
    }
    /* A refused tcpSocket was the user's one handler: no second error for it. */
    if (handlers > 1 || (handlers == 0 && !refused))
        v_fail(c, "must specify exactly one handler: exec, httpGet or sleep");
    v_pop(c, old);
}

static void v_lifecycle(vctx_t *c, cJSON *ctr, const cJSON *spec)
{
    static const char known[] = "postStart\0"
                                "preStop\0";
    static const char unsupported[] = "stopSignal\0";
    cJSON *lc = v_obj(c, ctr, "lifecycle", false);
    if (!lc)
        return;
    int64_t grace = 30;
    const cJSON *g = drv_json_get(spec, "terminationGracePeriodSeconds");
    if (cJSON_IsNumber(g) && g->valuedouble >= 0 && g->valuedouble <= INT32_MAX)
        grace = (int64_t)g->valuedouble;
    size_t old = v_push_key(c, "lifecycle");
    v_fields(c, lc, known, NULL, unsupported);
    v_lifecycle_handler(c, lc, "postStart", ctr, grace);
    v_lifecycle_handler(c, lc, "preStop", ctr, grace);
    v_pop(c, old);
}

/* ---- security context ---- */

static bool cap_name_ok(const char *s)
{
    const char *p = !strncmp(s, "CAP_", 4) ? s + 4 : s;
    if (!*p || strlen(p) > 32)
        return false;
    for (; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || *p == '_' || (*p >= '0' && *p <= '9')))
            return false;
    return true;
}

static void v_caps(vctx_t *c, cJSON *caps, const char *key)
{
    v_str_list(c, caps, key, false);
    cJSON *a = drv_json_get(caps, key);
    size_t i = 0;
    for (cJSON *e = cJSON_IsArray(a) ? a->child : NULL; e; e = e->next, i++) {
        if (!cJSON_IsString(e) || cap_name_ok(e->valuestring))
            continue;
        size_t old = v_push_key(c, key), o2 = v_push_index(c, i);
        v_fail(c, "invalid capability \"%.32s\"", e->valuestring);
        v_pop(c, o2);
        v_pop(c, old);
    }
}

static void v_seccomp_profile(vctx_t *c, cJSON *sc)
{
    static const char known[] = "type\0";
    static const char unsupported[] = "localhostProfile\0";
    static const char types[] = "RuntimeDefault\0"
                                "Unconfined\0";
    cJSON *sp = v_obj(c, sc, "seccompProfile", false);
    if (!sp)
        return;
    size_t old = v_push_key(c, "seccompProfile");
    v_fields(c, sp, known, NULL, unsupported);
    cJSON *t = drv_json_get(sp, "type");
    if (cJSON_IsString(t) && !strcmp(t->valuestring, "Localhost"))
        v_failk(c, "type",
                "unsupported value \"Localhost\": Drover applies RuntimeDefault or Unconfined");
    else
        v_enum(c, sp, "type", true, types);
    v_pop(c, old);
}

static void v_container_security(vctx_t *c, cJSON *ctr)
{
    static const char known[] = "runAsUser\0"
                                "runAsGroup\0"
                                "runAsNonRoot\0"
                                "readOnlyRootFilesystem\0"
                                "privileged\0"
                                "allowPrivilegeEscalation\0"
                                "capabilities\0"
                                "seccompProfile\0";
    static const char unsupported[] = "seLinuxOptions\0"
                                      "windowsOptions\0"
                                      "procMount\0"
                                      "appArmorProfile\0";
    cJSON *sc = v_obj(c, ctr, "securityContext", false);
    if (!sc)
        return;
    size_t old = v_push_key(c, "securityContext");
    v_fields(c, sc, known, NULL, unsupported);
    v_int(c, sc, "runAsUser", false, 0, INT32_MAX, NULL);
    v_int(c, sc, "runAsGroup", false, 0, INT32_MAX, NULL);
    v_bool(c, sc, "runAsNonRoot", NULL);
    v_bool(c, sc, "readOnlyRootFilesystem", NULL);
    bool priv = false, escalate = true;
    v_bool(c, sc, "privileged", &priv);
    if (v_bool(c, sc, "allowPrivilegeEscalation", &escalate) && priv && !escalate)
        v_failk(c, "allowPrivilegeEscalation", "cannot be false when privileged is true");
    cJSON *caps = v_obj(c, sc, "capabilities", false);
    if (caps) {
        static const char cknown[] = "add\0"
                                     "drop\0";
        size_t o2 = v_push_key(c, "capabilities");
        v_fields(c, caps, cknown, NULL, NULL);
        v_caps(c, caps, "add");
        v_caps(c, caps, "drop");
        v_pop(c, o2);
    }
    v_seccomp_profile(c, sc);
    v_pop(c, old);
}

/* ---- containers ---- */

static bool volume_exists(cJSON *spec, const char *name)
{
    cJSON *vols = drv_json_get(spec, "volumes");
    for (cJSON *v = cJSON_IsArray(vols) ? vols->child : NULL; v; v = v->next)
        if (drv_json_str(v, "name") && !strcmp(drv_json_str(v, "name"), name))
            return true;
    return false;
}

static void v_mount(vctx_t *c, cJSON *m, size_t i, void *arg)
{
    static const char known[] = "name\0"
                                "mountPath\0"
                                "readOnly\0"
                                "subPath\0"
                                "mountPropagation\0";
    static const char unsupported[] = "subPathExpr\0"
                                      "recursiveReadOnly\0";
    static const char props[] = "None\0"
                                "HostToContainer\0"
                                "Bidirectional\0";
    struct pod_ctx *pc = arg;
    v_fields(c, m, known, NULL, unsupported);
    const char *name = v_str(c, m, "name", true);
    if (name && !volume_exists(pc->spec, name))
        v_failk(c, "name", "volume \"%.64s\" not found in spec.volumes", name);
    v_abspath(c, m, "mountPath", true);
    v_bool(c, m, "readOnly", NULL);
    const char *prop = v_enum(c, m, "mountPropagation", false, props);
    if (prop && !strcmp(prop, "Bidirectional") && !pc->privileged)
        v_failk(c, "mountPropagation",
                "Bidirectional mount propagation is available only to privileged containers");
    const char *sub = v_str(c, m, "subPath", false);
    if (sub && (sub[0] == '/' || !no_dotdot(sub))) {
        v_failk(c, "subPath", "must be a relative path without '..'");
    }
}

static void v_unique_mounts(vctx_t *c, cJSON *ctr)
{
    cJSON *ms = drv_json_get(ctr, "volumeMounts");
    size_t i = 0;
    for (cJSON *m = cJSON_IsArray(ms) ? ms->child : NULL; m; m = m->next, i++) {
        const char *p = drv_json_str(m, "mountPath");
        size_t j = 0;
        for (cJSON *n = ms->child; p && n != m; n = n->next, j++) {
            if (drv_json_str(n, "mountPath") && !strcmp(drv_json_str(n, "mountPath"), p)) {
                size_t old = v_push_key(c, "volumeMounts"), o2 = v_push_index(c, i);
                v_failk(c, "mountPath", "duplicate value \"%.64s\" (also in volumeMounts[%zu])", p,
                        j);
                v_pop(c, o2);
                v_pop(c, old);
            }
        }
    }
}

static const char *image_tag(const char *image)
{
    /* The tag is after the last ':' that follows the last '/'; a digest pins the image. */
    if (strchr(image, '@'))
        return "@digest";
    const char *slash = strrchr(image, '/');
    const char *colon = strrchr(slash ? slash : image, ':');
    return colon ? colon + 1 : "";
}

static void v_container(vctx_t *c, cJSON *ctr, size_t i, void *arg)
{
    static const char known[] = "name\0"
                                "image\0"
                                "imagePullPolicy\0"
                                "command\0"
                                "args\0"
                                "workingDir\0"
                                "env\0"
                                "envFrom\0"
                                "ports\0"
                                "resources\0"
                                "volumeMounts\0"
                                "livenessProbe\0"
                                "readinessProbe\0"
                                "startupProbe\0"
                                "securityContext\0"
                                "lifecycle\0"
                                "restartPolicy\0";
    /* Kubernetes fills these in; at their defaults they change nothing here. */
    static const char ignored[] = "terminationMessagePath\0"
                                  "terminationMessagePolicy\0";
    static const char unsupported[] = "stdin\0"
                                      "stdinOnce\0"
                                      "tty\0"
                                      "volumeDevices\0"
                                      "resizePolicy\0";
    static const char policies[] = "Always\0"
                                   "IfNotPresent\0"
                                   "Never\0";
    struct pod_ctx *pc = arg;
    /* stdin/tty false is what Kubernetes writes back; only true would change behaviour. */
    for (const char *k = "stdin"; k; k = !strcmp(k, "stdin") ? "tty"
                                         : !strcmp(k, "tty") ? "stdinOnce"
                                                             : NULL)
        if (cJSON_IsFalse(drv_json_get(ctr, k)))
            cJSON_DeleteItemFromObjectCaseSensitive(ctr, k);
    v_fields(c, ctr, known, ignored, unsupported);
    v_name(c, ctr, "name", true, drv_name_dns_label);
    const char *image = v_str(c, ctr, "image", true);
    if (image && (strpbrk(image, " \t\r\n") || strlen(image) > 512))
        v_failk(c, "image", "invalid image reference \"%.64s\"", image);
    v_enum(c, ctr, "imagePullPolicy", false, policies);
    if (image) {
        const char *tag = image_tag(image);
        v_default_str(c, ctr, "imagePullPolicy",
                      (!*tag || !strcmp(tag, "latest")) ? "Always" : "IfNotPresent");
    }
    v_str_list(c, ctr, "command", false);
    v_str_list(c, ctr, "args", false);
    v_abspath(c, ctr, "workingDir", false);
    v_each(c, ctr, "env", false, v_env, pc);
    v_each(c, ctr, "envFrom", false, v_env_from, pc);
    v_each(c, ctr, "ports", false, v_port, pc);
    v_resources(c, ctr);
    pc->privileged = drv_json_true(drv_json_get(ctr, "securityContext"), "privileged");
    v_each(c, ctr, "volumeMounts", false, v_mount, pc);
    v_unique_mounts(c, ctr);
    /* A native sidecar: an init container with restartPolicy Always, started in order, kept
     * running beside the app containers, probed and hooked like them. */
    bool sidecar = false;
    if (pc->init) {
        static const char always[] = "Always\0";
        const char *rp = v_enum(c, ctr, "restartPolicy", false, always);
        sidecar = rp != NULL;
    } else if (drv_json_get(ctr, "restartPolicy")) {
        v_failk(c, "restartPolicy",
                "not supported by Drover: only init containers (sidecars) may set it, to "
                "\"Always\"");
    }
    if (pc->init && !sidecar) {
        for (const char *k = "livenessProbe"; k; k = !strcmp(k, "livenessProbe") ? "readinessProbe"
                                                     : !strcmp(k, "readinessProbe") ? "startupProbe"
                                                                                    : NULL)
            if (drv_json_get(ctr, k))
                v_failk(c, k, "may not be set for init containers");
        if (drv_json_get(ctr, "lifecycle"))
            v_failk(c, "lifecycle", "may not be set for init containers");
    } else {
        v_lifecycle(c, ctr, pc->spec);
        v_probe(c, ctr, "livenessProbe", true);
        v_probe(c, ctr, "readinessProbe", false);
        v_probe(c, ctr, "startupProbe", true);
    }
    v_container_security(c, ctr);
}

/* Container names are unique across containers and initContainers; so are named ports in a
 * container, and hostPort/protocol pairs in the pod. */
static void v_pod_uniques(vctx_t *c, cJSON *spec)
{
    const char *lists[2] = {"initContainers", "containers"};
    for (int l = 0; l < 2; l++) {
        cJSON *a = drv_json_get(spec, lists[l]);
        size_t i = 0;
        for (cJSON *ctr = cJSON_IsArray(a) ? a->child : NULL; ctr; ctr = ctr->next, i++) {
            const char *name = drv_json_str(ctr, "name");
            bool dup = false;
            for (int m = 0; m <= l && name && !dup; m++) {
                cJSON *b = drv_json_get(spec, lists[m]);
                for (cJSON *o = cJSON_IsArray(b) ? b->child : NULL; o && o != ctr && !dup;
                     o = o->next)
                    dup = drv_json_str(o, "name") && !strcmp(drv_json_str(o, "name"), name);
            }
            size_t old = v_push_key(c, lists[l]), o2 = v_push_index(c, i);
            if (dup)
                v_failk(c, "name", "duplicate container name \"%s\"", name);
            cJSON *ports = drv_json_get(ctr, "ports");
            size_t pi = 0;
            for (cJSON *p = cJSON_IsArray(ports) ? ports->child : NULL; p; p = p->next, pi++) {
                size_t o3 = v_push_key(c, "ports"), o4 = v_push_index(c, pi);
                const char *pn = drv_json_str(p, "name");
                for (cJSON *q = ports->child; pn && q != p; q = q->next)
                    if (drv_json_str(q, "name") && !strcmp(drv_json_str(q, "name"), pn))
                        v_failk(c, "name", "duplicate port name \"%s\"", pn);
                cJSON *hp = drv_json_get(p, "hostPort");
                if (l == 1 && cJSON_IsNumber(hp) && hp->valuedouble > 0) {
                    /* Earlier ports in this container and all ports of earlier containers. */
                    for (cJSON *o = a->child; o; o = o->next) {
                        cJSON *op = drv_json_get(o, "ports");
                        for (cJSON *q = cJSON_IsArray(op) ? op->child : NULL; q; q = q->next) {
                            if (q == p)
                                goto next_port;
                            cJSON *qh = drv_json_get(q, "hostPort");
                            const char *p1 = drv_json_str(p, "protocol"),
                                       *p2 = drv_json_str(q, "protocol");
                            if (cJSON_IsNumber(qh) && qh->valuedouble == hp->valuedouble && p1 &&
                                p2 && !strcmp(p1, p2))
                                v_failk(c, "hostPort", "duplicate hostPort %.0f/%s in this pod",
                                        hp->valuedouble, p1);
                        }
                    }
                }
            next_port:
                v_pop(c, o4);
                v_pop(c, o3);
            }
            v_pop(c, o2);
            v_pop(c, old);
        }
    }
}

/* ---- volumes ---- */

static void v_key_items(vctx_t *c, cJSON *src)
{
    cJSON *items = v_arr(c, src, "items", false);
    size_t old = v_push_key(c, "items"), i = 0;
    for (cJSON *it = items ? items->child : NULL; it; it = it->next, i++) {
        static const char known[] = "key\0"
                                    "path\0"
                                    "mode\0";
        size_t o2 = v_push_index(c, i);
        if (!cJSON_IsObject(it)) {
            v_fail(c, "must be an object");
        } else {
            v_fields(c, it, known, NULL, NULL);
            v_name(c, it, "key", true, drv_name_config_key);
            const char *p = v_str(c, it, "path", true);
            if (p && (p[0] == '/' || !no_dotdot(p)))
                v_failk(c, "path", "must be a relative path without '..'");
            v_int(c, it, "mode", false, 0, 0777, NULL);
        }
        v_pop(c, o2);
    }
    v_pop(c, old);
}

/* A downwardAPI volume source (also a projected volume's downwardAPI source): items of
 * metadata fields or container resources, each written to its path. */
static void v_downward_api(vctx_t *c, cJSON *da, cJSON *spec)
{
    static const char known[] = "items\0"
                                "defaultMode\0";
    static const char iknown[] = "path\0"
                                 "fieldRef\0"
                                 "resourceFieldRef\0"
                                 "mode\0";
    static const char paths[] = "metadata.name\0"
                                "metadata.namespace\0"
                                "metadata.uid\0"
                                "metadata.labels\0"
                                "metadata.annotations\0";
    v_fields(c, da, known, NULL, NULL);
    v_int(c, da, "defaultMode", false, 0, 0777, NULL);
    v_default_int(c, da, "defaultMode", 0644);
    cJSON *items = v_arr(c, da, "items", false);
    size_t old = v_push_key(c, "items"), i = 0;
    for (cJSON *it = items ? items->child : NULL; it; it = it->next, i++) {
        size_t o2 = v_push_index(c, i);
        if (!cJSON_IsObject(it)) {
            v_fail(c, "must be an object");
            v_pop(c, o2);
            continue;
        }
        v_fields(c, it, iknown, NULL, NULL);
        const char *p = v_str(c, it, "path", true);
        if (p && (!*p || p[0] == '/' || !no_dotdot(p) || !strncmp(p, "..", 2)))
            v_failk(c, "path", "must be a relative path without '..' and not start with '..'");
        v_int(c, it, "mode", false, 0, 0777, NULL);
        bool fr = cJSON_IsObject(drv_json_get(it, "fieldRef"));
        bool rf = cJSON_IsObject(drv_json_get(it, "resourceFieldRef"));
        if (fr == rf)
            v_fail(c, "must specify exactly one of fieldRef, resourceFieldRef");
        v_field_ref(c, it, paths);
        v_resource_field_ref(c, it, spec, true);
        v_pop(c, o2);
    }
    v_pop(c, old);
}

static void v_volume(vctx_t *c, cJSON *v, size_t i, void *arg)
{
    static const char known[] = "name\0"
                                "emptyDir\0"
                                "hostPath\0"
                                "configMap\0"
                                "secret\0"
                                "persistentVolumeClaim\0"
                                "downwardAPI\0"
                                "projected\0";
    static const char unsupported[] = "nfs\0"
                                      "csi\0"
                                      "ephemeral\0"
                                      "iscsi\0"
                                      "awsElasticBlockStore\0"
                                      "gcePersistentDisk\0"
                                      "azureDisk\0"
                                      "azureFile\0"
                                      "cephfs\0"
                                      "rbd\0"
                                      "glusterfs\0"
                                      "local\0"
                                      "gitRepo\0"
                                      "fc\0"
                                      "flexVolume\0"
                                      "image\0";
    cJSON *spec = arg;
    v_fields(c, v, known, NULL, unsupported);
    v_name(c, v, "name", true, drv_name_dns_label);
    const char *name = drv_json_str(v, "name");
    cJSON *vols = drv_json_get(spec, "volumes");
    for (cJSON *o = vols->child; name && o != v; o = o->next)
        if (drv_json_str(o, "name") && !strcmp(drv_json_str(o, "name"), name))
            v_failk(c, "name", "duplicate volume name \"%s\"", name);
    int sources = 0;
    cJSON *ed = v_obj(c, v, "emptyDir", false);
    if (ed) {
        static const char eknown[] = "medium\0"
                                     "sizeLimit\0";
        static const char media[] = V_EMPTY_OK "Memory\0";
        sources++;
        size_t old = v_push_key(c, "emptyDir");
        v_fields(c, ed, eknown, NULL, NULL);
        v_enum(c, ed, "medium", false, media);
        if (drv_json_get(ed, "sizeLimit")) {
            /* Reuse the memory quantity rules under the field's own name. */
            cJSON *tmp = cJSON_CreateObject();
            cJSON *sl = cJSON_DetachItemFromObjectCaseSensitive(ed, "sizeLimit");
            int64_t bytes;
            if (!tmp || !sl) {
                c->nomem = true;
                cJSON_Delete(sl);
            } else {
                cJSON_AddItemToObject(tmp, "memory", sl);
                size_t o2 = c->plen;
                if (qty_field(c, tmp, "memory", &bytes))
                    cJSON_AddItemToObject(ed, "sizeLimit",
                                          cJSON_DetachItemFromObjectCaseSensitive(tmp, "memory"));
                v_pop(c, o2);
            }
            cJSON_Delete(tmp);
        }
        v_pop(c, old);
    }
    cJSON *hp = v_obj(c, v, "hostPath", false);
    if (hp) {
        static const char hknown[] = "path\0"
                                     "type\0";
        static const char types[] = V_EMPTY_OK "DirectoryOrCreate\0"
                                               "Directory\0"
                                               "FileOrCreate\0"
                                               "File\0"
                                               "Socket\0"
                                               "CharDevice\0"
                                               "BlockDevice\0";
        sources++;
        size_t old = v_push_key(c, "hostPath");
        v_fields(c, hp, hknown, NULL, NULL);
        v_abspath(c, hp, "path", true);
        v_enum(c, hp, "type", false, types);
        v_pop(c, old);
    }
    for (const char *k = "configMap"; k; k = !strcmp(k, "configMap") ? "secret" : NULL) {
        cJSON *src = v_obj(c, v, k, false);
        if (!src)
            continue;
        static const char cknown[] = "name\0"
                                     "items\0"
                                     "defaultMode\0"
                                     "optional\0";
        static const char sknown[] = "secretName\0"
                                     "items\0"
                                     "defaultMode\0"
                                     "optional\0";
        bool secret = !strcmp(k, "secret");
        sources++;
        size_t old = v_push_key(c, k);
        v_fields(c, src, secret ? sknown : cknown, NULL, NULL);
        v_name(c, src, secret ? "secretName" : "name", true, drv_name_dns_subdomain);
        if (secret)
            v_secret_ref_reserved(c, src, "secretName");
        v_key_items(c, src);
        v_int(c, src, "defaultMode", false, 0, 0777, NULL);
        v_default_int(c, src, "defaultMode", 0644);
        v_bool(c, src, "optional", NULL);
        v_pop(c, old);
    }
    cJSON *pvc = v_obj(c, v, "persistentVolumeClaim", false);
    if (pvc) {
        static const char pknown[] = "claimName\0"
                                     "readOnly\0";
        sources++;
        size_t old = v_push_key(c, "persistentVolumeClaim");
        v_fields(c, pvc, pknown, NULL, NULL);
        v_name(c, pvc, "claimName", true, drv_name_dns_subdomain);
        v_bool(c, pvc, "readOnly", NULL);
        v_pop(c, old);
    }
    cJSON *da = v_obj(c, v, "downwardAPI", false);
    if (da) {
        sources++;
        size_t old = v_push_key(c, "downwardAPI");
        v_downward_api(c, da, spec);
        v_pop(c, old);
    }
    cJSON *proj = v_obj(c, v, "projected", false);
    if (proj) {
        sources++;
        size_t old = v_push_key(c, "projected");
        v_projected_volume(c, proj);
        v_pop(c, old);
    }
    if (sources + count_present(v, unsupported) != 1)
        v_fail(c, "must specify exactly one volume source: emptyDir, hostPath, configMap, secret, "
                  "persistentVolumeClaim, downwardAPI or projected");
}

/* ---- pod spec ---- */

static void v_toleration(vctx_t *c, cJSON *t, size_t i, void *arg)
{
    static const char known[] = "key\0"
                                "operator\0"
                                "value\0"
                                "effect\0"
                                "tolerationSeconds\0";
    static const char ops[] = "Exists\0"
                              "Equal\0";
    static const char effects[] = V_EMPTY_OK "NoSchedule\0"
                                             "PreferNoSchedule\0"
                                             "NoExecute\0";
    v_fields(c, t, known, NULL, NULL);
    const char *key = v_str(c, t, "key", false);
    char why[512];
    if (key && *key && !drv_name_label_key(key, why, sizeof(why)))
        v_failk(c, "key", "invalid value \"%.64s\": %s", key, why);
    const char *op = v_enum(c, t, "operator", false, ops);
    v_default_str(c, t, "operator", "Equal");
    const char *value = v_str(c, t, "value", false);
    if (op && !strcmp(op, "Exists") && value && *value)
        v_failk(c, "value", "must be empty when operator is Exists");
    if ((!key || !*key) && !(op && !strcmp(op, "Exists")))
        v_failk(c, "operator", "must be Exists when key is empty");
    const char *effect = v_enum(c, t, "effect", false, effects);
    if (drv_json_get(t, "tolerationSeconds")) {
        if (!effect || strcmp(effect, "NoExecute"))
            v_failk(c, "tolerationSeconds", "may only be set when effect is NoExecute");
        else
            v_int(c, t, "tolerationSeconds", false, INT64_MIN / 2, INT64_MAX / 2, NULL);
    }
}

static void v_pod_security(vctx_t *c, cJSON *spec)
{
    static const char known[] = "runAsUser\0"
                                "runAsGroup\0"
                                "runAsNonRoot\0"
                                "seccompProfile\0"
                                "fsGroup\0"
                                "fsGroupChangePolicy\0"
                                "supplementalGroups\0";
    static const char unsupported[] = "supplementalGroupsPolicy\0"
                                      "sysctls\0"
                                      "seLinuxOptions\0"
                                      "windowsOptions\0"
                                      "appArmorProfile\0"
                                      "seLinuxChangePolicy\0";
    cJSON *sc = v_obj(c, spec, "securityContext", false);
    if (!sc)
        return;
    size_t old = v_push_key(c, "securityContext");
    v_fields(c, sc, known, NULL, unsupported);
    v_int(c, sc, "runAsUser", false, 0, INT32_MAX, NULL);
    v_int(c, sc, "runAsGroup", false, 0, INT32_MAX, NULL);
    v_bool(c, sc, "runAsNonRoot", NULL);
    v_seccomp_profile(c, sc);
    static const char fsg_policies[] = "OnRootMismatch\0"
                                       "Always\0";
    v_int(c, sc, "fsGroup", false, 0, INT32_MAX, NULL);
    v_enum(c, sc, "fsGroupChangePolicy", false, fsg_policies);
    cJSON *sg = v_arr(c, sc, "supplementalGroups", false);
    size_t i = 0;
    for (cJSON *g = sg ? sg->child : NULL; g; g = g->next, i++) {
        if (cJSON_IsNumber(g) && g->valuedouble >= 0 && g->valuedouble <= INT32_MAX &&
            g->valuedouble == (double)(int64_t)g->valuedouble)
            continue;
        size_t o1 = v_push_key(c, "supplementalGroups"), o2 = v_push_index(c, i);
        v_fail(c, "must be a group id between 0 and %d", INT32_MAX);
        v_pop(c, o2);
        v_pop(c, o1);
    }
    v_pop(c, old);
}

/* spec.imagePullSecrets[]: a Secret of the pod's namespace by name (its type is checked
 * where it is used, as Kubernetes does). */
static void v_pull_secret(vctx_t *c, cJSON *e, size_t i, void *arg)
{
    static const char known[] = "name\0";
    v_fields(c, e, known, NULL, NULL);
    v_name(c, e, "name", true, drv_name_dns_subdomain);
    v_secret_ref_reserved(c, e, "name");
}

/* spec.hostAliases[]: lines added to the pod's /etc/hosts. */
static void v_host_alias(vctx_t *c, cJSON *e, size_t i, void *arg)
{
    static const char known[] = "ip\0"
                                "hostnames\0";
    v_fields(c, e, known, NULL, NULL);
    const char *ip = v_str(c, e, "ip", true);
    unsigned char addr[16];
    if (ip && inet_pton(AF_INET, ip, addr) != 1 && inet_pton(AF_INET6, ip, addr) != 1)
        v_failk(c, "ip", "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)");
    v_str_list(c, e, "hostnames", false);
    cJSON *hn = drv_json_get(e, "hostnames");
    size_t j = 0;
    for (cJSON *h = cJSON_IsArray(hn) ? hn->child : NULL; h; h = h->next, j++) {
        char why[256];
        if (!cJSON_IsString(h) || drv_name_dns_subdomain(h->valuestring, why, sizeof(why)))
            continue;
        size_t o1 = v_push_key(c, "hostnames"), o2 = v_push_index(c, j);
        v_fail(c, "invalid value \"%.64s\": %s", h->valuestring, why);
        v_pop(c, o2);
        v_pop(c, o1);
    }
}

/* A field Kubernetes writes at a value that means what Drover does anyway: accepted at
 * those values and dropped; any other value is a problem that names it. */
static void v_accept_only(vctx_t *c, cJSON *obj, const char *key, const char *values,
                          const char *why)
{
    cJSON *m = drv_json_get(obj, key);
    if (!m)
        return;
    bool ok = false;
    for (const char *v = values; *v && !ok; v += strlen(v) + 1) {
        if (!strcmp(v, "false"))
            ok = cJSON_IsFalse(m);
        else if (!strcmp(v, "true"))
            ok = cJSON_IsTrue(m);
        else
            ok = cJSON_IsString(m) && !strcmp(m->valuestring, v);
    }
    if (!ok)
        v_failk(c, key, "%s", why);
    /* Refused or not, the member is dealt with: v_fields must not report it a second time. */
    cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
}

/* Kubernetes' default under hostNetwork: a port without hostPort is bound on the node at its
 * containerPort, so the pod holds that port there (and the scheduler counts it). */
static void default_host_ports(vctx_t *c, cJSON *spec)
{
    static const char *const lists[] = {"containers", "initContainers", NULL};
    for (const char *const *l = lists; *l; l++) {
        cJSON *ctrs = drv_json_get(spec, *l);
        for (cJSON *ctr = cJSON_IsArray(ctrs) ? ctrs->child : NULL; ctr; ctr = ctr->next) {
            cJSON *ports = drv_json_get(ctr, "ports");
            for (cJSON *p = cJSON_IsArray(ports) ? ports->child : NULL; p; p = p->next) {
                cJSON *hp = drv_json_get(p, "hostPort"), *cp = drv_json_get(p, "containerPort");
                if (!cJSON_IsObject(p) || !cJSON_IsNumber(cp) ||
                    (hp && (!cJSON_IsNumber(hp) || hp->valuedouble != 0)))
                    continue;
                cJSON_DeleteItemFromObjectCaseSensitive(p, "hostPort");
                if (!cJSON_AddNumberToObject(p, "hostPort", cp->valuedouble))
                    c->nomem = true;
            }
        }
    }
}

/* serviceAccountName (serviceAccount is its deprecated alias, kept equal as the API server
 * does) and automountServiceAccountToken; a pod's defaults to "default", as the
 * ServiceAccount admission of Kubernetes sets it (templates keep what they say). */
static void v_pod_service_account(vctx_t *c, cJSON *spec, podctx_t where)
{
    v_name(c, spec, "serviceAccountName", false, drv_name_dns_subdomain);
    v_name(c, spec, "serviceAccount", false, drv_name_dns_subdomain);
    v_bool(c, spec, "automountServiceAccountToken", NULL);
    const char *sa = drv_json_str(spec, "serviceAccountName");
    const char *alias = drv_json_str(spec, "serviceAccount");
    if (sa && alias && *sa && *alias && strcmp(sa, alias))
        v_failk(c, "serviceAccount",
                "must equal serviceAccountName (\"%.64s\"): it is its "
                "deprecated alias",
                sa);
    if ((!sa || !*sa) && alias && *alias) {
        cJSON_DeleteItemFromObjectCaseSensitive(spec, "serviceAccountName");
        v_default_str(c, spec, "serviceAccountName", alias);
    }
    if (where == PODCTX_POD)
        v_default_str(c, spec, "serviceAccountName", "default");
    sa = drv_json_str(spec, "serviceAccountName");
    if (where == PODCTX_POD && sa && *sa) {
        cJSON_DeleteItemFromObjectCaseSensitive(spec, "serviceAccount");
        v_default_str(c, spec, "serviceAccount", sa);
    }
}

void v_pod_spec(vctx_t *c, cJSON *spec, podctx_t where)
{
    static const char known[] = "containers\0"
                                "initContainers\0"
                                "volumes\0"
                                "restartPolicy\0"
                                "nodeSelector\0"
                                "nodeName\0"
                                "tolerations\0"
                                "hostNetwork\0"
                                "hostPID\0"
                                "hostIPC\0"
                                "hostname\0"
                                "terminationGracePeriodSeconds\0"
                                "securityContext\0"
                                "dnsPolicy\0"
                                "imagePullSecrets\0"
                                "hostAliases\0"
                                "affinity\0"
                                "priorityClassName\0"
                                "priority\0"
                                "preemptionPolicy\0"
                                "topologySpreadConstraints\0"
                                "serviceAccountName\0"
                                "serviceAccount\0"
                                "automountServiceAccountToken\0"
                                "subdomain\0"
                                "activeDeadlineSeconds\0";
    static const char unsupported[] = "shareProcessNamespace\0"
                                      "dnsConfig\0"
                                      "readinessGates\0"
                                      "runtimeClassName\0"
                                      "overhead\0"
                                      "setHostnameAsFQDN\0"
                                      "os\0"
                                      "hostUsers\0"
                                      "schedulingGates\0"
                                      "resourceClaims\0"
                                      "ephemeralContainers\0"
                                      "enableServiceLinks\0"
                                      "schedulerName\0"
                                      "resources\0";
    static const char policies[] = "Always\0"
                                   "OnFailure\0"
                                   "Never\0";
    static const char dns[] = "ClusterFirst\0"
                              "ClusterFirstWithHostNet\0"
                              "Default\0";
    static const char sched[] = "default-scheduler\0";
    static const char links[] = "true\0"
                                "false\0";

    v_accept_only(c, spec, "schedulerName", sched,
                  "not supported by Drover: the hub schedules every pod");
    v_accept_only(c, spec, "enableServiceLinks", links, "must be a boolean");
    v_fields(c, spec, known, NULL, unsupported);
    struct pod_ctx pc = {spec, false, false};
    v_each(c, spec, "volumes", false, v_volume, spec);
    v_each(c, spec, "containers", true, v_container, &pc);
    pc.init = true;
    v_each(c, spec, "initContainers", false, v_container, &pc);
    bool hostnet = false;
    v_bool(c, spec, "hostNetwork", &hostnet);
    if (hostnet)
        default_host_ports(c, spec);
    v_pod_uniques(c, spec);
    const char *rp = v_enum(c, spec, "restartPolicy", false, policies);
    if (where == PODCTX_TEMPLATE && rp && strcmp(rp, "Always"))
        v_failk(c, "restartPolicy",
                "unsupported value \"%s\": only \"Always\" is supported for workloads", rp);
    /* A Job's pods run to completion: Kubernetes wants the policy said, and not Always. */
    if (where == PODCTX_JOB && (!rp || !strcmp(rp, "Always")) &&
        (rp || !drv_json_get(spec, "restartPolicy")))
        v_failk(c, "restartPolicy", "%s: supported values: \"OnFailure\", \"Never\"",
                rp ? "unsupported value \"Always\"" : "required");
    v_default_str(c, spec, "restartPolicy", "Always");
    v_str_map(c, spec, "nodeSelector", drv_name_label_key, drv_name_label_value);
    v_name(c, spec, "nodeName", false, drv_name_dns_subdomain);
    v_each(c, spec, "tolerations", false, v_toleration, NULL);
    v_bool(c, spec, "hostPID", NULL);
    v_bool(c, spec, "hostIPC", NULL);
    v_name(c, spec, "hostname", false, drv_name_dns_label);
    /* With a hostname, the pod's DNS name under the headless Service of that name. */
    v_name(c, spec, "subdomain", false, drv_name_dns_label);
    v_int(c, spec, "terminationGracePeriodSeconds", false, 0, INT32_MAX, NULL);
    /* The agent fails the pod (DeadlineExceeded) once it has been active that long. */
    v_int(c, spec, "activeDeadlineSeconds", false, 1, INT32_MAX, NULL);
    v_default_int(c, spec, "terminationGracePeriodSeconds", 30);
    v_pod_security(c, spec);
    v_each(c, spec, "imagePullSecrets", false, v_pull_secret, NULL);
    v_each(c, spec, "hostAliases", false, v_host_alias, NULL);
    v_affinity(c, spec);
    v_topology_spread(c, spec);
    v_pod_priority(c, spec);
    v_pod_service_account(c, spec, where);
    v_enum(c, spec, "dnsPolicy", false, dns);
    v_default_str(c, spec, "dnsPolicy", "ClusterFirst");
    /* With hostNetwork a hostPort must equal the containerPort, as in Kubernetes. */
    if (hostnet) {
        cJSON *ctrs = drv_json_get(spec, "containers");
        size_t i = 0;
        for (cJSON *ctr = cJSON_IsArray(ctrs) ? ctrs->child : NULL; ctr; ctr = ctr->next, i++) {
            cJSON *ports = drv_json_get(ctr, "ports");
            size_t j = 0;
            for (cJSON *p = cJSON_IsArray(ports) ? ports->child : NULL; p; p = p->next, j++) {
                cJSON *hp = drv_json_get(p, "hostPort"), *cp = drv_json_get(p, "containerPort");
                if (cJSON_IsNumber(hp) && cJSON_IsNumber(cp) && hp->valuedouble != 0 &&
                    hp->valuedouble != cp->valuedouble) {
                    size_t o1 = v_push_key(c, "containers"), o2 = v_push_index(c, i);
                    size_t o3 = v_push_key(c, "ports"), o4 = v_push_index(c, j);
                    v_failk(c, "hostPort", "must match containerPort when hostNetwork is true");
                    v_pop(c, o4);
                    v_pop(c, o3);
                    v_pop(c, o2);
                    v_pop(c, o1);
                }
            }
        }
    }
}

/* ---- workloads ---- */

void v_template_ctx(vctx_t *c, cJSON *spec, const char *sel_key, bool selector_required,
                    podctx_t where)
{
    cJSON *sel = v_obj(c, spec, sel_key, selector_required);
    drv_selector_t selector = {0};
    bool have_sel = false;
    if (sel) {
        static const char known[] = "matchLabels\0"
                                    "matchExpressions\0";
        size_t old = v_push_key(c, sel_key);
        v_fields(c, sel, known, NULL, NULL);
        drv_error_t err = DRV_ERROR_INIT;
        if (drv_selector_from_json(sel, &selector, &err) != DRV_OK)
            v_fail(c, "%s", drv_error_msg(&err));
        else if (drv_selector_empty(&selector))
            v_fail(c, "empty selector is invalid for a workload");
        else
            have_sel = true;
        v_pop(c, old);
    }
    cJSON *tpl = v_obj(c, spec, "template", true);
    if (tpl) {
        static const char known[] = "metadata\0"
                                    "spec\0";
        size_t old = v_push_key(c, "template");
        v_fields(c, tpl, known, NULL, NULL);
        cJSON *meta = v_obj(c, tpl, "metadata", false);
        if (meta) {
            size_t o2 = v_push_key(c, "metadata");
            v_object_meta(c, meta, DRV_KIND_POD, true);
            v_pop(c, o2);
        }
        if (have_sel && !drv_selector_matches(&selector, drv_json_get(meta, "labels"))) {
            size_t o1 = v_push_key(c, "metadata"), o2 = v_push_key(c, "labels");
            v_fail(c, "`selector` does not match template `labels`");
            v_pop(c, o2);
            v_pop(c, o1);
        }
        cJSON *ps = v_obj(c, tpl, "spec", true);
        if (ps) {
            size_t o2 = v_push_key(c, "spec");
            v_pod_spec(c, ps, where);
            v_pop(c, o2);
        }
        v_pop(c, old);
    }
    drv_selector_free(&selector);
}

void v_template(vctx_t *c, cJSON *spec, const char *sel_key, bool selector_required)
{
    v_template_ctx(c, spec, sel_key, selector_required, PODCTX_TEMPLATE);
}

/* Resolves an int-or-percent against nothing: true if it is zero. */
static bool ios_is_zero(cJSON *v)
{
    if (cJSON_IsNumber(v))
        return v->valuedouble == 0;
    return cJSON_IsString(v) && strtol(v->valuestring, NULL, 10) == 0;
}

static void v_rolling(vctx_t *c, cJSON *strategy, const char *def_surge, const char *def_unavail,
                      bool ds)
{
    cJSON *ru = v_obj(c, strategy, "rollingUpdate", false);
    if (!ru) {
        if (drv_json_get(strategy, "rollingUpdate"))
            return;
        ru = cJSON_AddObjectToObject(strategy, "rollingUpdate");
        if (!ru) {
            c->nomem = true;
            return;
        }
    }
    static const char known[] = "maxSurge\0"
                                "maxUnavailable\0";
    size_t old = v_push_key(c, "rollingUpdate");
    v_fields(c, ru, known, NULL, NULL);
    bool ok1 = v_int_or_string(c, ru, "maxSurge", false, VIOS_PERCENT);
    bool ok2 = v_int_or_string(c, ru, "maxUnavailable", false, VIOS_PERCENT);
    if (!drv_json_get(ru, "maxSurge")) {
        ok1 = true;
        if (def_surge[strlen(def_surge) - 1] == '%')
            v_default_str(c, ru, "maxSurge", def_surge);
        else
            v_default_int(c, ru, "maxSurge", strtol(def_surge, NULL, 10));
    }
    if (!drv_json_get(ru, "maxUnavailable")) {
        ok2 = true;
        if (def_unavail[strlen(def_unavail) - 1] == '%')
            v_default_str(c, ru, "maxUnavailable", def_unavail);
        else
            v_default_int(c, ru, "maxUnavailable", strtol(def_unavail, NULL, 10));
    }
    if (ok1 && ok2 && ios_is_zero(drv_json_get(ru, "maxSurge")) &&
        ios_is_zero(drv_json_get(ru, "maxUnavailable")))
        v_failk(c, "maxUnavailable", "may not be 0 when maxSurge is 0");
    if (ds && ok1 && ok2 && !ios_is_zero(drv_json_get(ru, "maxSurge")) &&
        !ios_is_zero(drv_json_get(ru, "maxUnavailable")))
        v_failk(c, "maxUnavailable", "must be 0 when maxSurge is not 0");
    v_pop(c, old);
}

/* A workload's update strategy (Deployment.spec.strategy, DaemonSet.spec.updateStrategy):
 * type defaults to RollingUpdate with the given surge/unavailable defaults; the other type
 * (Recreate, OnDelete) takes no rollingUpdate. */
static void v_strategy(vctx_t *c, cJSON *spec, const char *key, const char *types,
                       const char *other, const char *def_surge, const char *def_unavail, bool ds)
{
    cJSON *st = v_obj(c, spec, key, false);
    if (!st && !drv_json_get(spec, key)) {
        st = cJSON_AddObjectToObject(spec, key);
        if (!st) {
            c->nomem = true;
            return;
        }
    }
    if (!st)
        return;
    static const char sknown[] = "type\0"
                                 "rollingUpdate\0";
    size_t old = v_push_key(c, key);
    v_fields(c, st, sknown, NULL, NULL);
    bool had_type = drv_json_get(st, "type") != NULL;
    const char *type = v_enum(c, st, "type", false, types);
    v_default_str(c, st, "type", "RollingUpdate");
    if (type && !strcmp(type, other)) {
        if (drv_json_get(st, "rollingUpdate"))
            v_failk(c, "rollingUpdate", "may not be specified when strategy `type` is '%s'", other);
    } else if (type || !had_type) {
        v_rolling(c, st, def_surge, def_unavail, ds);
    }
    v_pop(c, old);
}

void v_deployment_spec(vctx_t *c, cJSON *spec)
{
    static const char known[] = "replicas\0"
                                "selector\0"
                                "template\0"
                                "strategy\0"
                                "revisionHistoryLimit\0"
                                "minReadySeconds\0"
                                "paused\0"
                                "progressDeadlineSeconds\0";
    static const char types[] = "RollingUpdate\0"
                                "Recreate\0";
    v_fields(c, spec, known, NULL, NULL);
    v_int(c, spec, "replicas", false, 0, 100000, NULL);
    v_default_int(c, spec, "replicas", 1);
    v_template(c, spec, "selector", true);
    int64_t min_ready = 0, deadline = 600;
    v_int(c, spec, "revisionHistoryLimit", false, 0, INT32_MAX, NULL);
    v_default_int(c, spec, "revisionHistoryLimit", 10);
    v_int(c, spec, "minReadySeconds", false, 0, INT32_MAX, &min_ready);
    v_bool(c, spec, "paused", NULL);
    if (v_int(c, spec, "progressDeadlineSeconds", false, 1, INT32_MAX, &deadline) &&
        deadline <= min_ready)
        v_failk(c, "progressDeadlineSeconds", "must be greater than minReadySeconds");
    v_default_int(c, spec, "progressDeadlineSeconds", 600);
    v_strategy(c, spec, "strategy", types, "Recreate", "25%", "25%", false);
}

void v_daemonset_spec(vctx_t *c, cJSON *spec)
{
    static const char known[] = "selector\0"
                                "template\0"
                                "updateStrategy\0"
                                "revisionHistoryLimit\0"
                                "minReadySeconds\0";
    static const char types[] = "RollingUpdate\0"
                                "OnDelete\0";
    v_fields(c, spec, known, NULL, NULL);
    v_template(c, spec, "selector", true);
    v_int(c, spec, "revisionHistoryLimit", false, 0, INT32_MAX, NULL);
    v_default_int(c, spec, "revisionHistoryLimit", 10);
    v_int(c, spec, "minReadySeconds", false, 0, INT32_MAX, NULL);
    v_strategy(c, spec, "updateStrategy", types, "OnDelete", "0", "1", true);
}

/* A ReplicaSet as the Deployment controller writes it (users cannot write one: the API
 * refuses), so only the fields that controller sets. */
void v_replicaset_spec(vctx_t *c, cJSON *spec)
{
    static const char known[] = "replicas\0"
                                "selector\0"
                                "template\0"
                                "minReadySeconds\0";
    v_fields(c, spec, known, NULL, NULL);
    v_int(c, spec, "replicas", false, 0, 100000, NULL);
    v_default_int(c, spec, "replicas", 1);
    v_template(c, spec, "selector", true);
    v_int(c, spec, "minReadySeconds", false, 0, INT32_MAX, NULL);
}

/* ---- updates ---- */

/* spec without what a pod update may change, for comparison. */
static cJSON *pod_fixed_spec(const cJSON *pod)
{
    cJSON *spec = cJSON_Duplicate(drv_json_get(pod, "spec"), true);
    if (!spec)
        return NULL;
    static const char *const mutable_keys[] = {"activeDeadlineSeconds", "tolerations",
                                               "terminationGracePeriodSeconds"};
    for (size_t i = 0; i < sizeof(mutable_keys) / sizeof(mutable_keys[0]); i++)
        cJSON_DeleteItemFromObjectCaseSensitive(spec, mutable_keys[i]);
    static const char *const lists[] = {"containers", "initContainers"};
    for (size_t i = 0; i < 2; i++) {
        cJSON *ctr;
        cJSON_ArrayForEach(ctr, cJSON_GetObjectItemCaseSensitive(spec, lists[i]))
        {
            cJSON_DeleteItemFromObjectCaseSensitive(ctr, "image");
        }
    }
    return spec;
}

bool drv_model_pod_update_ok(const cJSON *old, const cJSON *obj, char *msg, size_t msgsz)
{
    cJSON *a = pod_fixed_spec(old), *b = pod_fixed_spec(obj);
    bool ok = a && b && cJSON_Compare(a, b, true);
    cJSON_Delete(a);
    cJSON_Delete(b);
    /* Tolerations may only be added to. */
    const cJSON *ot = drv_json_get(drv_json_get(old, "spec"), "tolerations"),
                *nt = drv_json_get(drv_json_get(obj, "spec"), "tolerations");
    for (const cJSON *t = cJSON_IsArray(ot) ? ot->child : NULL; ok && t; t = t->next) {
        bool kept = false;
        for (const cJSON *u = cJSON_IsArray(nt) ? nt->child : NULL; u && !kept; u = u->next)
            kept = cJSON_Compare(t, u, true);
        ok = kept;
    }
    /* activeDeadlineSeconds may be set, or lowered, never removed or raised. */
    const cJSON *od = drv_json_get(drv_json_get(old, "spec"), "activeDeadlineSeconds"),
                *nd = drv_json_get(drv_json_get(obj, "spec"), "activeDeadlineSeconds");
    if (ok && cJSON_IsNumber(od) && (!cJSON_IsNumber(nd) || nd->valuedouble > od->valuedouble))
        ok = false;
    if (!ok)
        drv_fmt_cut(msg, msgsz,
                    "pod updates may not change fields other than `spec.containers[*].image`, "
                    "`spec.initContainers[*].image`, `spec.activeDeadlineSeconds`, "
                    "`spec.tolerations` (only additions to existing tolerations), "
                    "`spec.terminationGracePeriodSeconds`");
    return ok;
}
