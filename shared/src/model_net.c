/* NetworkPolicy (networking.k8s.io/v1), Endpoints (v1) and EndpointSlice (discovery.k8s.io/v1)
 * validation and defaults, as Kubernetes validates and defaults them (pkg/apis/networking,
 * pkg/apis/core ValidateEndpoints, pkg/apis/discovery), cut to Drover's single-stack IPv4
 * network: IPv6 and FQDN addresses are refused by name, never silently dropped. Also the address
 * and label selector helpers the Service validation in model.c shares. */
#include <arpa/inet.h>
#include <string.h>

#include "drover/ipv4.h"
#include "drover/json.h"
#include "drover/names.h"
#include "drover/selector.h"
#include "model_int.h"

#define EPS_ENDPOINTS_MAX 1000 /* discovery's maxEndpoints */
#define EPS_ADDRESSES_MAX 100  /* addresses of one endpoint */
#define EPS_PORTS_MAX 20000    /* discovery's maxPorts */
#define EPS_ZONE_HINTS_MAX 8
#define SERVICE_NAME_LABEL "kubernetes.io/service-name"

static const char protocols[] = "TCP\0"
                                "UDP\0"
                                "SCTP\0";

/* ---- addresses ---- */

static bool is_ipv6(const char *s)
{
    struct in6_addr a;
    const char *slash = strchr(s, '/');
    char head[64];
    size_t n = slash ? (size_t)(slash - s) : strlen(s);
    if (n >= sizeof(head))
        return false;
    memcpy(head, s, n);
    head[n] = '\0';
    return inet_pton(AF_INET6, head, &a) == 1;
}

/* Records why s is not an IPv4 address at the current path; IPv6 named as unsupported. */
static void fail_not_ipv4(vctx_t *c, const char *s, bool cidr)
{
    if (is_ipv6(s))
        v_fail(c, "IPv6 %s \"%.64s\" is not supported by Drover (IPv4 only)",
               cidr ? "CIDR" : "address", s);
    else if (cidr)
        v_fail(c, "invalid value \"%.64s\": must be an IPv4 CIDR (e.g. 10.0.0.0/16)", s);
    else
        v_fail(c, "invalid value \"%.64s\": must be a valid IPv4 address", s);
}

bool v_ipv4_value(vctx_t *c, const char *s, uint32_t *out)
{
    uint32_t ip = 0;
    if (!drv_net_ip_parse(s, &ip)) {
        fail_not_ipv4(c, s, false);
        return false;
    }
    if (out)
        *out = ip;
    return true;
}

/* An endpoint's address: Kubernetes' ValidateNonSpecialIP on top of the IPv4 syntax. Records at
 * the current path. */
static void check_endpoint_ip(vctx_t *c, const char *s)
{
    uint32_t ip = 0;
    if (!v_ipv4_value(c, s, &ip))
        return;
    if (ip == 0)
        v_fail(c, "invalid value \"%s\": may not be unspecified (0.0.0.0)", s);
    else if ((ip >> 24) == 127)
        v_fail(c, "invalid value \"%s\": may not be in the loopback range (127.0.0.0/8)", s);
    else if ((ip >> 16) == 0xa9fe)
        v_fail(c, "invalid value \"%s\": may not be in the link-local range (169.254.0.0/16)", s);
    else if ((ip >> 8) == 0xe00000)
        v_fail(c,
               "invalid value \"%s\": may not be in the link-local multicast range (224.0.0.0/24)",
               s);
}

/* ---- shared pieces ---- */

void v_label_selector(vctx_t *c, cJSON *parent, const char *key, bool required)
{
    cJSON *sel = v_obj(c, parent, key, required);
    if (!sel)
        return;
    static const char known[] = "matchLabels\0"
                                "matchExpressions\0";
    static const char eknown[] = "key\0"
                                 "operator\0"
                                 "values\0";
    size_t old = v_push_key(c, key);
    v_fields(c, sel, known, NULL, NULL);
    cJSON *me = drv_json_get(sel, "matchExpressions");
    size_t i = 0;
    for (cJSON *e = cJSON_IsArray(me) ? me->child : NULL; e; e = e->next, i++) {
        if (!cJSON_IsObject(e))
            continue; /* the selector module says so below */
        size_t o1 = v_push_key(c, "matchExpressions"), o2 = v_push_index(c, i);
        v_fields(c, e, eknown, NULL, NULL);
        v_pop(c, o2);
        v_pop(c, o1);
    }
    drv_selector_t parsed = {0};
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_selector_from_json(sel, &parsed, &err) != DRV_OK) {
        /* The module's message starts with the field inside the selector
         * ("matchExpressions[0].operator: ..."): moved into the path. */
        const char *msg = drv_error_msg(&err);
        const char *sep = strstr(msg, ": ");
        bool field = sep &&
                     (!strncmp(msg, "matchLabels", 11) || !strncmp(msg, "matchExpressions", 16)) &&
                     !memchr(msg, ' ', (size_t)(sep - msg));
        if (field) {
            char sub[VPATH_MAX];
            size_t n = (size_t)(sep - msg) < sizeof(sub) ? (size_t)(sep - msg) : sizeof(sub) - 1;
            memcpy(sub, msg, n);
            sub[n] = '\0';
            size_t o1 = v_push_key(c, sub);
            v_fail(c, "%s", sep + 2);
            v_pop(c, o1);
        } else {
            v_fail(c, "%s", msg);
        }
    }
    drv_selector_free(&parsed);
    v_pop(c, old);
}

/* The current element must be an object; records it otherwise. */
static bool is_object(vctx_t *c, cJSON *e)
{
    if (cJSON_IsObject(e))
        return true;
    v_fail(c, "must be an object");
    return false;
}

static void v_object_ref(vctx_t *c, cJSON *parent, const char *key)
{
    static const char known[] = "kind\0"
                                "namespace\0"
                                "name\0"
                                "uid\0"
                                "apiVersion\0"
                                "resourceVersion\0"
                                "fieldPath\0";
    cJSON *ref = v_obj(c, parent, key, false);
    if (!ref)
        return;
    size_t old = v_push_key(c, key);
    v_fields(c, ref, known, NULL, NULL);
    for (const char *k = known; *k; k += strlen(k) + 1)
        v_str(c, ref, k, false);
    v_pop(c, old);
}

/* ---- NetworkPolicy ---- */

static void v_netpol_port(vctx_t *c, cJSON *p)
{
    static const char known[] = "protocol\0"
                                "port\0"
                                "endPort\0";
    v_fields(c, p, known, NULL, NULL);
    v_enum(c, p, "protocol", false, protocols);
    v_default_str(c, p, "protocol", "TCP");
    v_int_or_string(c, p, "port", false, VIOS_PORT);
    if (!drv_json_get(p, "endPort"))
        return;
    cJSON *port = drv_json_get(p, "port");
    int64_t end = 0;
    if (!v_int(c, p, "endPort", true, 1, 65535, &end))
        return;
    if (!port)
        v_failk(c, "port", "required when endPort is set");
    else if (cJSON_IsString(port))
        v_failk(c, "endPort", "may not be set when port is a named port");
    else if (cJSON_IsNumber(port) && (double)end < port->valuedouble)
        v_failk(c, "endPort", "must be greater than or equal to port (%.0f), not %lld",
                port->valuedouble, (long long)end);
}

static void v_ip_block(vctx_t *c, cJSON *peer)
{
    static const char known[] = "cidr\0"
                                "except\0";
    cJSON *b = v_obj(c, peer, "ipBlock", true);
    if (!b)
        return;
    size_t old = v_push_key(c, "ipBlock");
    v_fields(c, b, known, NULL, NULL);
    const char *cidr = v_str(c, b, "cidr", true);
    /* Host bits may be set, as Kubernetes' ipBlock allows. */
    drv_net_cidr_t block;
    bool have_block = cidr && drv_net_cidr_parse(cidr, true, &block, NULL) == DRV_OK;
    if (cidr && !have_block) {
        size_t o1 = v_push_key(c, "cidr");
        fail_not_ipv4(c, cidr, true);
        v_pop(c, o1);
    }
    v_str_list(c, b, "except", false);
    cJSON *ex = drv_json_get(b, "except");
    size_t i = 0;
    for (cJSON *e = cJSON_IsArray(ex) ? ex->child : NULL; e; e = e->next, i++) {
        if (!cJSON_IsString(e))
            continue;
        size_t o1 = v_push_key(c, "except"), o2 = v_push_index(c, i);
        drv_net_cidr_t ex_block;
        if (drv_net_cidr_parse(e->valuestring, true, &ex_block, NULL) != DRV_OK)
            fail_not_ipv4(c, e->valuestring, true);
        else if (have_block &&
                 (ex_block.prefix == block.prefix || !drv_net_cidr_covers(block, ex_block)))
            v_fail(c, "invalid value \"%.64s\": must be a strict subset of cidr \"%.64s\"",
                   e->valuestring, cidr);
        v_pop(c, o2);
        v_pop(c, o1);
    }
    v_pop(c, old);
}

static void v_netpol_peer(vctx_t *c, cJSON *peer)
{
    static const char known[] = "podSelector\0"
                                "namespaceSelector\0"
                                "ipBlock\0";
    v_fields(c, peer, known, NULL,
             NULL); /* drops explicit nulls first: they do not count as a peer */
    bool pod = drv_json_get(peer, "podSelector") != NULL;
    bool ns = drv_json_get(peer, "namespaceSelector") != NULL;
    bool ip = drv_json_get(peer, "ipBlock") != NULL;
    if (!pod && !ns && !ip)
        v_fail(c, "must specify a peer: podSelector, namespaceSelector or ipBlock");
    if (ip && (pod || ns))
        v_failk(c, "ipBlock", "may not be combined with podSelector or namespaceSelector");
    if (pod)
        v_label_selector(c, peer, "podSelector", false);
    if (ns)
        v_label_selector(c, peer, "namespaceSelector", false);
    if (ip)
        v_ip_block(c, peer);
}

/* Each element of arr is an object checked by fn at its index under key. */
static void each_object(vctx_t *c, cJSON *parent, const char *key, void (*fn)(vctx_t *, cJSON *))
{
    cJSON *arr = v_arr(c, parent, key, false);
    if (!arr)
        return;
    size_t old = v_push_key(c, key), i = 0;
    for (cJSON *e = arr->child; e; e = e->next, i++) {
        size_t o2 = v_push_index(c, i);
        if (is_object(c, e))
            fn(c, e);
        v_pop(c, o2);
    }
    v_pop(c, old);
}

static void v_ingress_rule(vctx_t *c, cJSON *r)
{
    static const char known[] = "ports\0"
                                "from\0";
    v_fields(c, r, known, NULL, NULL);
    each_object(c, r, "ports", v_netpol_port);
    each_object(c, r, "from", v_netpol_peer);
}

static void v_egress_rule(vctx_t *c, cJSON *r)
{
    static const char known[] = "ports\0"
                                "to\0";
    v_fields(c, r, known, NULL, NULL);
    each_object(c, r, "ports", v_netpol_port);
    each_object(c, r, "to", v_netpol_peer);
}

static void add_str(vctx_t *c, cJSON *arr, const char *s)
{
    cJSON *n = cJSON_CreateString(s);
    if (!n || !cJSON_AddItemToArray(arr, n)) {
        cJSON_Delete(n);
        c->nomem = true;
    }
}

void v_netpol_spec(vctx_t *c, cJSON *spec)
{
    static const char known[] = "podSelector\0"
                                "policyTypes\0"
                                "ingress\0"
                                "egress\0";
    static const char *const types[] = {"Ingress", "Egress", NULL};
    v_fields(c, spec, known, NULL, NULL);
    v_label_selector(c, spec, "podSelector", true);
    each_object(c, spec, "ingress", v_ingress_rule);
    each_object(c, spec, "egress", v_egress_rule);
    cJSON *pt = v_arr(c, spec, "policyTypes", false);
    if (pt) {
        size_t old = v_push_key(c, "policyTypes"), i = 0;
        if (cJSON_GetArraySize(pt) > 2)
            v_fail(c, "may not specify more than two policyTypes");
        for (cJSON *e = pt->child; e; e = e->next, i++) {
            size_t o2 = v_push_index(c, i);
            if (!cJSON_IsString(e))
                v_fail(c, "must be a string");
            else if (strcmp(e->valuestring, "Ingress") && strcmp(e->valuestring, "Egress"))
                v_fail(c, "unsupported value \"%.64s\": must be one of \"%s\", \"%s\"",
                       e->valuestring, types[0], types[1]);
            v_pop(c, o2);
        }
        v_pop(c, old);
    }
    /* Kubernetes' default: Ingress always, Egress when there are egress rules. */
    if (!drv_json_get(spec, "policyTypes") || (pt && cJSON_GetArraySize(pt) == 0)) {
        cJSON_DeleteItemFromObjectCaseSensitive(spec, "policyTypes");
        cJSON *arr = cJSON_AddArrayToObject(spec, "policyTypes");
        if (!arr) {
            c->nomem = true;
            return;
        }
        add_str(c, arr, "Ingress");
        if (drv_json_array_len(drv_json_get(spec, "egress")) > 0)
            add_str(c, arr, "Egress");
    }
}

/* ---- Endpoints and EndpointSlice ports ---- */

/* A port of an Endpoints subset or an EndpointSlice: names DNS labels, unique among siblings,
 * required in Endpoints when there is more than one. */
static void v_endpoint_ports(vctx_t *c, cJSON *parent, bool slice)
{
    static const char known[] = "name\0"
                                "port\0"
                                "protocol\0"
                                "appProtocol\0";
    cJSON *ports = v_arr(c, parent, "ports", false);
    if (!ports)
        return;
    size_t old = v_push_key(c, "ports"), i = 0;
    int n = cJSON_GetArraySize(ports);
    if (slice && n > EPS_PORTS_MAX)
        v_fail(c, "must have at most %d items, has %d", EPS_PORTS_MAX, n);
    for (cJSON *p = ports->child; p; p = p->next, i++) {
        size_t o2 = v_push_index(c, i);
        if (!is_object(c, p)) {
            v_pop(c, o2);
            continue;
        }
        v_fields(c, p, known, NULL, NULL);
        v_name(c, p, "name", !slice && n > 1, drv_name_dns_label);
        const char *name = drv_json_str(p, "name");
        size_t j = 0;
        for (cJSON *q = ports->child; name && q != p; q = q->next, j++) {
            const char *qn = drv_json_str(q, "name");
            if (qn && !strcmp(qn, name))
                v_failk(c, "name", "duplicate value \"%s\" (also in ports[%zu])", name, j);
        }
        v_int(c, p, "port", !slice, 1, 65535, NULL);
        v_enum(c, p, "protocol", false, protocols);
        v_default_str(c, p, "protocol", "TCP");
        v_name(c, p, "appProtocol", false, drv_name_label_key);
        v_pop(c, o2);
    }
    v_pop(c, old);
}

/* ---- Endpoints (v1) ---- */

static void v_endpoint_address(vctx_t *c, cJSON *a)
{
    static const char known[] = "ip\0"
                                "hostname\0"
                                "nodeName\0"
                                "targetRef\0";
    v_fields(c, a, known, NULL, NULL);
    const char *ip = v_str(c, a, "ip", true);
    if (ip) {
        size_t old = v_push_key(c, "ip");
        check_endpoint_ip(c, ip);
        v_pop(c, old);
    }
    v_name(c, a, "hostname", false, drv_name_dns_label);
    v_name(c, a, "nodeName", false, drv_name_dns_subdomain);
    v_object_ref(c, a, "targetRef");
}

static void v_endpoint_subset(vctx_t *c, cJSON *s)
{
    static const char known[] = "addresses\0"
                                "notReadyAddresses\0"
                                "ports\0";
    v_fields(c, s, known, NULL, NULL);
    each_object(c, s, "addresses", v_endpoint_address);
    each_object(c, s, "notReadyAddresses", v_endpoint_address);
    if (drv_json_array_len(drv_json_get(s, "addresses")) == 0 &&
        drv_json_array_len(drv_json_get(s, "notReadyAddresses")) == 0)
        v_fail(c, "must specify addresses or notReadyAddresses");
    v_endpoint_ports(c, s, false);
}

void v_endpoints(vctx_t *c, cJSON *obj)
{
    static const char known[] = "apiVersion\0"
                                "kind\0"
                                "metadata\0"
                                "subsets\0";
    v_fields(c, obj, known, NULL, NULL);
    each_object(c, obj, "subsets", v_endpoint_subset);
}

/* ---- EndpointSlice (discovery.k8s.io/v1) ---- */

static void v_conditions(vctx_t *c, cJSON *e)
{
    static const char known[] = "ready\0"
                                "serving\0"
                                "terminating\0";
    cJSON *cond = v_obj(c, e, "conditions", false);
    if (!cond)
        return;
    size_t old = v_push_key(c, "conditions");
    v_fields(c, cond, known, NULL, NULL);
    for (const char *k = known; *k; k += strlen(k) + 1)
        v_bool(c, cond, k, NULL);
    v_pop(c, old);
}

static void v_hint_name(vctx_t *c, cJSON *h)
{
    static const char known[] = "name\0";
    v_fields(c, h, known, NULL, NULL);
    v_str(c, h, "name", true);
}

/* Topology hints are kept as written: Drover routes to every endpoint, which the hints allow. */
static void v_hints(vctx_t *c, cJSON *e)
{
    static const char known[] = "forZones\0"
                                "forNodes\0";
    cJSON *h = v_obj(c, e, "hints", false);
    if (!h)
        return;
    size_t old = v_push_key(c, "hints");
    v_fields(c, h, known, NULL, NULL);
    if (cJSON_GetArraySize(drv_json_get(h, "forZones")) > EPS_ZONE_HINTS_MAX)
        v_failk(c, "forZones", "must have at most %d items", EPS_ZONE_HINTS_MAX);
    each_object(c, h, "forZones", v_hint_name);
    each_object(c, h, "forNodes", v_hint_name);
    v_pop(c, old);
}

static void v_slice_endpoint(vctx_t *c, cJSON *e)
{
    static const char known[] = "addresses\0"
                                "conditions\0"
                                "hostname\0"
                                "nodeName\0"
                                "zone\0"
                                "targetRef\0"
                                "hints\0";
    /* Kubernetes deprecated it for nodeName and zone and no consumer reads it. */
    static const char ignored[] = "deprecatedTopology\0";
    v_fields(c, e, known, ignored, NULL);
    cJSON *addrs = v_arr(c, e, "addresses", true);
    if (addrs) {
        size_t old = v_push_key(c, "addresses"), i = 0;
        int n = cJSON_GetArraySize(addrs);
        if (n < 1)
            v_fail(c, "must contain at least 1 address");
        else if (n > EPS_ADDRESSES_MAX)
            v_fail(c, "may not contain more than %d addresses, has %d", EPS_ADDRESSES_MAX, n);
        for (cJSON *a = addrs->child; a; a = a->next, i++) {
            size_t o2 = v_push_index(c, i);
            if (!cJSON_IsString(a))
                v_fail(c, "must be a string");
            else
                check_endpoint_ip(c, a->valuestring);
            v_pop(c, o2);
        }
        v_pop(c, old);
    }
    v_conditions(c, e);
    v_name(c, e, "hostname", false, drv_name_dns_label);
    v_name(c, e, "nodeName", false, drv_name_dns_subdomain);
    v_name(c, e, "zone", false, drv_name_label_value);
    v_object_ref(c, e, "targetRef");
    v_hints(c, e);
}

void v_endpointslice(vctx_t *c, cJSON *obj)
{
    static const char known[] = "apiVersion\0"
                                "kind\0"
                                "metadata\0"
                                "addressType\0"
                                "endpoints\0"
                                "ports\0";
    v_fields(c, obj, known, NULL, NULL);
    const char *at = v_str(c, obj, "addressType", true);
    bool ipv4 = false;
    if (at && (!strcmp(at, "IPv6") || !strcmp(at, "FQDN")))
        v_failk(c, "addressType", "\"%s\" is not supported by Drover (IPv4 only)", at);
    else if (at && strcmp(at, "IPv4"))
        v_failk(c, "addressType",
                "unsupported value \"%.64s\": must be one of \"IPv4\", \"IPv6\", \"FQDN\"", at);
    else
        ipv4 = at != NULL;
    cJSON *eps = v_arr(c, obj, "endpoints", false);
    if (eps && cJSON_GetArraySize(eps) > EPS_ENDPOINTS_MAX)
        v_failk(c, "endpoints", "must have at most %d items, has %d", EPS_ENDPOINTS_MAX,
                cJSON_GetArraySize(eps));
    /* Addresses are checked as IPv4 only once the type says so (else one problem is enough). */
    if (ipv4)
        each_object(c, obj, "endpoints", v_slice_endpoint);
    v_endpoint_ports(c, obj, true);
    /* The label that ties a slice to its Service names a Service. */
    const char *svc = drv_json_str(drv_json_at(obj, "metadata.labels"), SERVICE_NAME_LABEL);
    char why[512];
    if (svc && !drv_name_dns1035_label(svc, why, sizeof(why))) {
        size_t o1 = v_push_key(c, "metadata"), o2 = v_push_key(c, "labels"),
               o3 = v_push_mapkey(c, SERVICE_NAME_LABEL);
        v_fail(c, "invalid value \"%.64s\": must be a Service name: %s", svc, why);
        v_pop(c, o3);
        v_pop(c, o2);
        v_pop(c, o1);
    }
}
