/* NetworkPolicy, Endpoints, EndpointSlice and Service validation (shared/src/model_net.c and the
 * Service section of model.c): upstream-style manifests load with Kubernetes' defaults, every
 * bad one is refused with the field path named, and what Drover does not serve (IPv6,
 * dual-stack, ExternalName) is refused by name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/doc.h"
#include "drover/json.h"
#include "drover/model.h"

static cJSON *yaml(const char *text)
{
    drv_doc_list_t l = {0};
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_doc_parse(text, strlen(text), NULL, &l, &err) != DRV_OK)
        fail_msg("parse: %s", drv_error_msg(&err));
    assert_int_equal(l.count, 1);
    cJSON *root = l.docs[0].root;
    l.docs[0].root = NULL;
    drv_doc_list_free(&l);
    return root;
}

/* Normalizes; returns the problems as "path: msg" lines ("" when valid). */
static char *check(cJSON *obj)
{
    drv_diags_t d = {0};
    drv_err_t r = drv_model_normalize(obj, &d);
    char *s = drv_diags_format(&d, NULL);
    assert_non_null(s);
    if (r == DRV_OK)
        assert_int_equal(d.count, 0);
    else
        assert_int_equal(r, DRV_ERR_INVALID);
    drv_diags_free(&d);
    return s;
}

/* A valid manifest: normalized, and normalizing its canonical JSON again gives the same bytes. */
static cJSON *good(const char *text)
{
    cJSON *o = yaml(text);
    char *p = check(o);
    if (*p)
        fail_msg("refused:\n%s\nmanifest:\n%s", p, text);
    free(p);
    char *once = drv_model_to_json(o, false);
    cJSON *again = cJSON_Parse(once);
    assert_non_null(again);
    assert_int_equal(drv_model_normalize(again, NULL), DRV_OK);
    char *twice = drv_model_to_json(again, false);
    assert_string_equal(once, twice);
    free(once);
    free(twice);
    cJSON_Delete(again);
    return o;
}

/* A bad manifest: refused, with line among the problems. */
static void bad(const char *text, const char *line)
{
    cJSON *o = yaml(text);
    char *p = check(o);
    if (!strstr(p, line))
        fail_msg("expected problem \"%s\" in:\n%s\nmanifest:\n%s", line, p, text);
    free(p);
    cJSON_Delete(o);
}

/* The compact JSON of what sits at path (plain keys, then optional [i] after it via idx). */
static void assert_json(const cJSON *o, const char *path, const char *want)
{
    const cJSON *n = drv_json_at(o, path);
    char *s = n ? cJSON_PrintUnformatted(n) : NULL;
    if (!s || strcmp(s, want))
        fail_msg("%s: expected %s, got %s", path, want, s ? s : "(absent)");
    free(s);
}

static const cJSON *item(const cJSON *o, const char *path, int i)
{
    const cJSON *a = drv_json_at(o, path);
    assert_true(cJSON_IsArray(a));
    const cJSON *e = cJSON_GetArrayItem(a, i);
    assert_non_null(e);
    return e;
}

#define NP "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: np}\n"

/* ---- NetworkPolicy: the examples of the Kubernetes documentation ---- */

static void test_netpol_default_deny(void **state)
{
    (void)state;
    cJSON *o = good(NP "spec:\n  podSelector: {}\n  policyTypes: [Ingress]\n");
    assert_json(o, "spec.podSelector", "{}");
    assert_json(o, "spec.policyTypes", "[\"Ingress\"]");
    assert_json(o, "metadata.namespace", "\"default\"");
    cJSON_Delete(o);

    /* No policyTypes and no egress rules: Ingress alone, as Kubernetes defaults it. */
    o = good(NP "spec:\n  podSelector: {}\n");
    assert_json(o, "spec.policyTypes", "[\"Ingress\"]");
    cJSON_Delete(o);

    /* Default deny egress; allow all ingress (an empty rule). */
    o = good(NP "spec:\n  podSelector: {}\n  policyTypes: [Egress]\n");
    assert_json(o, "spec.policyTypes", "[\"Egress\"]");
    cJSON_Delete(o);
    o = good(NP "spec:\n  podSelector: {}\n  ingress:\n  - {}\n");
    assert_json(o, "spec.ingress", "[{}]");
    cJSON_Delete(o);
}

static void test_netpol_docs_example(void **state)
{
    (void)state;
    /* The "test-network-policy" of the NetworkPolicy concept page. */
    cJSON *o = good(NP "spec:\n"
                       "  podSelector:\n    matchLabels: {role: db}\n"
                       "  policyTypes: [Ingress, Egress]\n"
                       "  ingress:\n"
                       "  - from:\n"
                       "    - ipBlock:\n        cidr: 172.17.0.0/16\n"
                       "        except: [172.17.1.0/24]\n"
                       "    - namespaceSelector:\n        matchLabels: {project: myproject}\n"
                       "    - podSelector:\n        matchLabels: {role: frontend}\n"
                       "    ports:\n    - {protocol: TCP, port: 6379}\n"
                       "  egress:\n"
                       "  - to:\n    - ipBlock: {cidr: 10.0.0.0/24}\n"
                       "    ports:\n    - {protocol: TCP, port: 5978}\n");
    const cJSON *peer = item(item(o, "spec.ingress", 0), "from", 0);
    assert_json(peer, "ipBlock.except", "[\"172.17.1.0/24\"]");
    assert_json(item(item(o, "spec.egress", 0), "ports", 0), "port", "5978");
    cJSON_Delete(o);
}

static void test_netpol_namespace_and_pod(void **state)
{
    (void)state;
    /* One peer with both selectors: pods labelled role=client in namespaces user=alice. */
    cJSON *o = good(NP "spec:\n  podSelector: {matchLabels: {app: web}}\n  ingress:\n"
                       "  - from:\n    - namespaceSelector:\n        matchLabels: {user: alice}\n"
                       "      podSelector:\n        matchExpressions:\n"
                       "        - {key: role, operator: In, values: [client, admin]}\n"
                       "    ports:\n    - port: http\n");
    const cJSON *peer = item(item(o, "spec.ingress", 0), "from", 0);
    assert_non_null(drv_json_get(peer, "namespaceSelector"));
    assert_non_null(drv_json_get(peer, "podSelector"));
    /* A named port, and the protocol defaulted. */
    const cJSON *port = item(item(o, "spec.ingress", 0), "ports", 0);
    assert_json(port, "port", "\"http\"");
    assert_json(port, "protocol", "\"TCP\"");
    cJSON_Delete(o);
}

static void test_netpol_egress_port_range(void **state)
{
    (void)state;
    /* The docs' endPort example: egress to 10.0.0.0/24 on TCP 32000-32768. No policyTypes:
     * Egress is added since there are egress rules. */
    cJSON *o = good(NP "spec:\n  podSelector: {matchLabels: {role: db}}\n  egress:\n"
                       "  - to:\n    - ipBlock: {cidr: 10.0.0.0/24}\n"
                       "    ports:\n    - {protocol: TCP, port: 32000, endPort: 32768}\n"
                       "    - {protocol: UDP, port: 53}\n    - {protocol: SCTP}\n");
    assert_json(o, "spec.policyTypes", "[\"Ingress\",\"Egress\"]");
    assert_json(item(item(o, "spec.egress", 0), "ports", 0), "endPort", "32768");
    cJSON_Delete(o);
}

static void test_netpol_bad_selectors(void **state)
{
    (void)state;
    bad(NP "spec:\n  podSelector: {}\n  ingress:\n  - from:\n    - podSelector: {}\n"
           "    - namespaceSelector:\n        matchExpressions:\n"
           "        - {key: team, operator: Has, values: [a]}\n",
        "spec.ingress[0].from[1].namespaceSelector.matchExpressions[0].operator: \"Has\" is not "
        "a valid label selector operator");
    bad(NP "spec:\n  podSelector:\n    matchExpressions:\n    - {key: team, operator: In}\n",
        "spec.podSelector.matchExpressions[0].values: must be specified when `operator` is 'In'");
    bad(NP "spec:\n  podSelector:\n    matchExpressions:\n"
           "    - {key: team, operator: Exists, value: x}\n",
        "spec.podSelector.matchExpressions[0].value: unknown field");
    bad(NP "spec:\n  podSelector:\n    matchLabels: {app: \"bad value!\"}\n",
        "spec.podSelector.matchLabels.app: invalid value");
    bad(NP "spec:\n  podSelector: {matchLabel: {app: web}}\n",
        "spec.podSelector.matchLabel: unknown field");
    bad(NP "spec:\n  policyTypes: [Ingress]\n", "spec.podSelector: required");
    bad(NP "spec:\n  podSelector: []\n", "spec.podSelector: must be an object");
    bad(NP "spec:\n  podSelector: {}\n  egress:\n  - to:\n    - namespaceSelector: 5\n",
        "spec.egress[0].to[0].namespaceSelector: must be an object");
}

static void test_netpol_bad_peers(void **state)
{
    (void)state;
    bad(NP "spec:\n  podSelector: {}\n  ingress:\n  - from:\n    - {}\n",
        "spec.ingress[0].from[0]: must specify a peer");
    bad(NP "spec:\n  podSelector: {}\n  ingress:\n  - from:\n"
           "    - {ipBlock: {cidr: 10.0.0.0/8}, podSelector: {}}\n",
        "spec.ingress[0].from[0].ipBlock: may not be combined with podSelector or "
        "namespaceSelector");
    bad(NP "spec:\n  podSelector: {}\n  egress:\n  - to:\n    - ipBlock: {cidr: \"fd00::/8\"}\n",
        "spec.egress[0].to[0].ipBlock.cidr: IPv6 CIDR \"fd00::/8\" is not supported by Drover");
    bad(NP "spec:\n  podSelector: {}\n  egress:\n  - to:\n    - ipBlock: {cidr: 10.0.0.0}\n",
        "spec.egress[0].to[0].ipBlock.cidr: invalid value \"10.0.0.0\": must be an IPv4 CIDR");
    bad(NP "spec:\n  podSelector: {}\n  egress:\n  - to:\n    - ipBlock: {cidr: 10.0.0.0/33}\n",
        "spec.egress[0].to[0].ipBlock.cidr: invalid value");
    bad(NP "spec:\n  podSelector: {}\n  egress:\n  - to:\n    - ipBlock: {except: [10.1.0.0/16]}\n",
        "spec.egress[0].to[0].ipBlock.cidr: required");
    bad(NP "spec:\n  podSelector: {}\n  ingress:\n  - from:\n"
           "    - ipBlock: {cidr: 172.17.0.0/16, except: [172.17.1.0/24, 172.18.0.0/24]}\n",
        "spec.ingress[0].from[0].ipBlock.except[1]: invalid value \"172.18.0.0/24\": must be a "
        "strict subset of cidr \"172.17.0.0/16\"");
    /* The same prefix is not a strict subset. */
    bad(NP "spec:\n  podSelector: {}\n  ingress:\n  - from:\n"
           "    - ipBlock: {cidr: 172.17.0.0/16, except: [172.17.0.0/16]}\n",
        "spec.ingress[0].from[0].ipBlock.except[0]: invalid value \"172.17.0.0/16\": must be a "
        "strict subset");
    bad(NP "spec:\n  podSelector: {}\n  ingress:\n  - from:\n"
           "    - ipBlock: {cidr: 10.0.0.0/8, except: [\"10::/16\"]}\n",
        "spec.ingress[0].from[0].ipBlock.except[0]: IPv6 CIDR \"10::/16\" is not supported");
    bad(NP "spec:\n  podSelector: {}\n  ingress:\n  - sources: []\n",
        "spec.ingress[0].sources: unknown field");
    bad(NP "spec:\n  podSelector: {}\n  egress:\n  - from: []\n",
        "spec.egress[0].from: unknown field");
    bad(NP "spec:\n  podSelector: {}\n  ingress:\n  - from:\n    - {ipBlock: {cidr: 10.0.0.0/8, "
           "exclude: []}}\n",
        "spec.ingress[0].from[0].ipBlock.exclude: unknown field");
    bad(NP "spec:\n  podSelector: {}\n  ingress: [5]\n", "spec.ingress[0]: must be an object");
}

static void test_netpol_bad_ports(void **state)
{
    (void)state;
#define PORTS NP "spec:\n  podSelector: {}\n  egress:\n  - ports:\n"
    bad(PORTS "    - {port: 32000, endPort: 31999}\n",
        "spec.egress[0].ports[0].endPort: must be greater than or equal to port (32000)");
    bad(PORTS "    - {port: http, endPort: 9000}\n",
        "spec.egress[0].ports[0].endPort: may not be set when port is a named port");
    bad(PORTS "    - {endPort: 9000}\n",
        "spec.egress[0].ports[0].port: required when endPort is set");
    bad(PORTS "    - {port: 80, endPort: 70000}\n",
        "spec.egress[0].ports[0].endPort: must be between 1 and 65535");
    bad(PORTS "    - {port: 0}\n", "spec.egress[0].ports[0].port: must be between 1 and 65535");
    bad(PORTS "    - {port: HTTP_1}\n", "spec.egress[0].ports[0].port: invalid port name");
    bad(PORTS "    - {port: \"80\"}\n", "spec.egress[0].ports[0].port: invalid port name");
    bad(PORTS "    - {protocol: ICMP}\n",
        "spec.egress[0].ports[0].protocol: unsupported value \"ICMP\"");
    bad(PORTS "    - {port: 80, range: 2}\n", "spec.egress[0].ports[0].range: unknown field");
#undef PORTS
    bad(NP "spec:\n  podSelector: {}\n  policyTypes: [Ingress, Sideways]\n",
        "spec.policyTypes[1]: unsupported value \"Sideways\"");
    bad(NP "spec:\n  podSelector: {}\n  policyTypes: [Ingress, Egress, Ingress]\n",
        "spec.policyTypes: may not specify more than two policyTypes");
    bad(NP "spec:\n  podSelector: {}\n  egres: []\n", "spec.egres: unknown field");
}

/* ---- Endpoints (v1) ---- */

#define EP "apiVersion: v1\nkind: Endpoints\nmetadata: {name: web}\n"

static void test_endpoints(void **state)
{
    (void)state;
    cJSON *o = good(EP "subsets:\n- addresses:\n  - ip: 10.42.2.7\n    nodeName: pi-2\n"
                       "    hostname: web-0\n"
                       "    targetRef: {kind: Pod, name: web-abc, namespace: default, uid: u1}\n"
                       "  notReadyAddresses:\n  - {ip: 10.42.3.9}\n"
                       "  ports:\n  - {name: http, port: 8080}\n"
                       "  - {name: dns, port: 53, protocol: UDP, appProtocol: dns}\n");
    const cJSON *s = item(o, "subsets", 0);
    assert_json(item(s, "ports", 0), "protocol", "\"TCP\"");
    assert_json(item(s, "addresses", 0), "targetRef.name", "\"web-abc\"");
    cJSON_Delete(o);
    o = good(EP "subsets:\n- notReadyAddresses: [{ip: 10.42.3.9}]\n  ports: [{port: 80}]\n");
    cJSON_Delete(o);
    o = good(EP); /* a Service that selects nothing */
    cJSON_Delete(o);

    bad(EP "subsets:\n- addresses: [{ip: 127.0.0.1}]\n",
        "subsets[0].addresses[0].ip: invalid value \"127.0.0.1\": may not be in the loopback "
        "range");
    bad(EP "subsets:\n- addresses: [{ip: 169.254.1.2}]\n",
        "subsets[0].addresses[0].ip: invalid value \"169.254.1.2\": may not be in the link-local");
    bad(EP "subsets:\n- addresses: [{ip: 0.0.0.0}]\n",
        "subsets[0].addresses[0].ip: invalid value \"0.0.0.0\": may not be unspecified");
    bad(EP "subsets:\n- notReadyAddresses: [{ip: \"fd00::7\"}]\n",
        "subsets[0].notReadyAddresses[0].ip: IPv6 address \"fd00::7\" is not supported by "
        "Drover");
    bad(EP "subsets:\n- addresses: [{ip: 10.42.2.256}]\n",
        "subsets[0].addresses[0].ip: invalid value \"10.42.2.256\": must be a valid IPv4 address");
    bad(EP "subsets:\n- addresses: [{hostname: a}]\n", "subsets[0].addresses[0].ip: required");
    bad(EP "subsets:\n- ports: [{port: 80}]\n",
        "subsets[0]: must specify addresses or notReadyAddresses");
    bad(EP "subsets:\n- addresses: [{ip: 10.42.2.7}]\n  ports: [{port: 80}, {port: 81}]\n",
        "subsets[0].ports[0].name: required");
    bad(EP "subsets:\n- addresses: [{ip: 10.42.2.7}]\n  ports: [{name: Http, port: 80}]\n",
        "subsets[0].ports[0].name: invalid value \"Http\"");
    bad(EP "subsets:\n- addresses: [{ip: 10.42.2.7}]\n  ports: [{name: a}]\n",
        "subsets[0].ports[0].port: required");
    bad(EP "subsets:\n- addresses: [{ip: 10.42.2.7, podIP: 10.42.2.7}]\n",
        "subsets[0].addresses[0].podIP: unknown field");
    bad(EP "subsets:\n- addresses: [{ip: 10.42.2.7, targetRef: {kind: Pod, pod: x}}]\n",
        "subsets[0].addresses[0].targetRef.pod: unknown field");
    bad(EP "spec: {}\n", "spec: unknown field");
}

/* ---- EndpointSlice (discovery.k8s.io/v1) ---- */

#define EPS                                                                                        \
    "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: web-abc12\n"         \
    "  labels: {kubernetes.io/service-name: web}\n"

static void test_endpointslice(void **state)
{
    (void)state;
    cJSON *o =
        good(EPS "addressType: IPv4\n"
                 "ports:\n- {name: http, port: 8080, protocol: TCP}\n- {name: dns, port: 53, "
                 "protocol: UDP}\n"
                 "endpoints:\n"
                 "- addresses: [10.42.2.7]\n"
                 "  conditions: {ready: true, serving: true, terminating: false}\n"
                 "  nodeName: pi-2\n  zone: lab-a\n  hostname: web-0\n"
                 "  targetRef: {kind: Pod, name: web-abc, namespace: default}\n"
                 "  hints: {forZones: [{name: lab-a}]}\n"
                 "  deprecatedTopology: {kubernetes.io/hostname: pi-2}\n"
                 "- addresses: [10.42.3.9]\n  conditions: {ready: false}\n");
    const cJSON *e = item(o, "endpoints", 0);
    assert_json(e, "hints.forZones", "[{\"name\":\"lab-a\"}]");
    assert_null(drv_json_get(e, "deprecatedTopology"));
    assert_json(e, "conditions.terminating", "false");
    cJSON_Delete(o);
    /* No ports (all ports), no endpoints, a port without a name or number. */
    o = good(EPS "addressType: IPv4\nendpoints: []\nports: [{}]\n");
    assert_json(item(o, "ports", 0), "protocol", "\"TCP\"");
    cJSON_Delete(o);

    bad(EPS "addressType: IPv6\nendpoints: []\n",
        "addressType: \"IPv6\" is not supported by Drover (IPv4 only)");
    bad(EPS "addressType: FQDN\nendpoints: [{addresses: [example.com]}]\n",
        "addressType: \"FQDN\" is not supported by Drover (IPv4 only)");
    bad(EPS "addressType: IPv5\n", "addressType: unsupported value \"IPv5\"");
    bad(EPS "endpoints: []\n", "addressType: required");
    bad(EPS "addressType: IPv4\nendpoints: [{addresses: []}]\n",
        "endpoints[0].addresses: must contain at least 1 address");
    bad(EPS "addressType: IPv4\nendpoints: [{conditions: {ready: true}}]\n",
        "endpoints[0].addresses: required");
    bad(EPS "addressType: IPv4\nendpoints: [{addresses: [10.42.2.7, \"fd00::1\"]}]\n",
        "endpoints[0].addresses[1]: IPv6 address \"fd00::1\" is not supported by Drover");
    bad(EPS "addressType: IPv4\nendpoints: [{addresses: [127.0.0.2]}]\n",
        "endpoints[0].addresses[0]: invalid value \"127.0.0.2\": may not be in the loopback");
    bad(EPS "addressType: IPv4\nendpoints: [{addresses: [10.0.0.1], conditions: {ready: yes}}]\n",
        "endpoints[0].conditions.ready: must be a boolean");
    bad(EPS "addressType: IPv4\nendpoints: [{addresses: [10.0.0.1], conditions: {up: true}}]\n",
        "endpoints[0].conditions.up: unknown field");
    bad(EPS "addressType: IPv4\nendpoints: [{addresses: [10.0.0.1], zone: \"lab a\"}]\n",
        "endpoints[0].zone: invalid value \"lab a\"");
    bad(EPS "addressType: IPv4\nendpoints: [{addresses: [10.0.0.1], nodeName: Pi_2}]\n",
        "endpoints[0].nodeName: invalid value \"Pi_2\"");
    bad(EPS "addressType: IPv4\nports: [{name: http, port: 80}, {name: http, port: 81}]\n",
        "ports[1].name: duplicate value \"http\" (also in ports[0])");
    bad(EPS "addressType: IPv4\nports: [{port: 65536}]\n",
        "ports[0].port: must be between 1 and 65535");
    bad(EPS "addressType: IPv4\nports: [{port: 80, protocol: tcp}]\n",
        "ports[0].protocol: unsupported value \"tcp\"");
    bad("apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: x\n"
        "  labels: {kubernetes.io/service-name: 9web}\naddressType: IPv4\n",
        "metadata.labels[kubernetes.io/service-name]: invalid value \"9web\": must be a Service "
        "name");

    /* 101 addresses in one endpoint. */
    char text[4096];
    size_t n = (size_t)snprintf(text, sizeof(text), "%s",
                                EPS "addressType: IPv4\nendpoints:\n- addresses: [10.0.0.1");
    for (int i = 2; i <= 101; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, ", 10.0.0.%d", i);
    snprintf(text + n, sizeof(text) - n, "]\n");
    bad(text, "endpoints[0].addresses: may not contain more than 100 addresses, has 101");
}

/* ---- Service ---- */

#define SVC "apiVersion: v1\nkind: Service\nmetadata: {name: web}\n"

static void test_service_defaults(void **state)
{
    (void)state;
    cJSON *o = good(SVC "spec:\n  selector: {app: web}\n  ports: [{port: 80}]\n");
    assert_json(o, "spec.type", "\"ClusterIP\"");
    assert_json(o, "spec.sessionAffinity", "\"None\"");
    assert_json(o, "spec.internalTrafficPolicy", "\"Cluster\"");
    assert_json(o, "spec.ipFamilyPolicy", "\"SingleStack\"");
    assert_json(o, "spec.ipFamilies", "[\"IPv4\"]");
    assert_null(drv_json_get(drv_json_get(o, "spec"), "externalTrafficPolicy"));
    assert_null(drv_json_get(drv_json_get(o, "spec"), "sessionAffinityConfig"));
    cJSON_Delete(o);

    /* LoadBalancer is served; the external policy gets its default. */
    o = good(SVC "spec:\n  type: LoadBalancer\n  selector: {app: web}\n"
                 "  ports: [{port: 80, targetPort: http}]\n");
    assert_json(o, "spec.externalTrafficPolicy", "\"Cluster\"");
    assert_json(o, "spec.allocateLoadBalancerNodePorts", "true");
    cJSON_Delete(o);

    /* ClientIP affinity: the timeout defaulted to Kubernetes' 10800 s, or kept as given. */
    o = good(SVC "spec:\n  sessionAffinity: ClientIP\n  ports: [{port: 80}]\n");
    assert_json(o, "spec.sessionAffinityConfig", "{\"clientIP\":{\"timeoutSeconds\":10800}}");
    cJSON_Delete(o);
    o = good(SVC "spec:\n  sessionAffinity: ClientIP\n  sessionAffinityConfig:\n"
                 "    clientIP: {timeoutSeconds: 60}\n  ports: [{port: 80}]\n");
    assert_json(o, "spec.sessionAffinityConfig.clientIP.timeoutSeconds", "60");
    cJSON_Delete(o);
    o = good(SVC "spec:\n  sessionAffinity: ClientIP\n  sessionAffinityConfig: {clientIP: {}}\n"
                 "  ports: [{port: 80}]\n");
    assert_json(o, "spec.sessionAffinityConfig.clientIP.timeoutSeconds", "10800");
    cJSON_Delete(o);
    /* Under None the config has no effect: Kubernetes' defaulting clears it. */
    o = good(SVC "spec:\n  sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}\n"
                 "  ports: [{port: 80}]\n");
    assert_null(drv_json_get(drv_json_get(o, "spec"), "sessionAffinityConfig"));
    cJSON_Delete(o);

    /* Traffic policies, PreferDualStack as single-stack IPv4, publishNotReadyAddresses kept. */
    o = good(SVC "spec:\n  type: NodePort\n  externalTrafficPolicy: Local\n"
                 "  internalTrafficPolicy: Local\n  ipFamilyPolicy: PreferDualStack\n"
                 "  ipFamilies: [IPv4]\n  publishNotReadyAddresses: true\n"
                 "  ports: [{port: 80, nodePort: 30080}]\n");
    assert_json(o, "spec.externalTrafficPolicy", "\"Local\"");
    assert_json(o, "spec.internalTrafficPolicy", "\"Local\"");
    assert_json(o, "spec.ipFamilyPolicy", "\"PreferDualStack\"");
    assert_json(o, "spec.publishNotReadyAddresses", "true");
    cJSON_Delete(o);

    /* clusterIP and clusterIPs fill each other; headless needs no ports. */
    o = good(SVC "spec:\n  clusterIP: 10.43.0.12\n  ports: [{port: 80}]\n");
    assert_json(o, "spec.clusterIPs", "[\"10.43.0.12\"]");
    cJSON_Delete(o);
    o = good(SVC "spec:\n  clusterIPs: [10.43.0.12]\n  ports: [{port: 80}]\n");
    assert_json(o, "spec.clusterIP", "\"10.43.0.12\"");
    cJSON_Delete(o);
    o = good(SVC "spec:\n  clusterIP: None\n  selector: {app: db}\n");
    assert_json(o, "spec.clusterIPs", "[\"None\"]");
    cJSON_Delete(o);
    o = good(SVC "spec:\n  clusterIP: \"\"\n  ports: [{port: 80}]\n");
    assert_null(drv_json_get(drv_json_get(o, "spec"), "clusterIPs"));
    cJSON_Delete(o);

    /* DNS on 53 over both protocols: the same port, different protocols, two names. */
    o = good(SVC "spec:\n  ports:\n  - {name: dns, port: 53, protocol: UDP}\n"
                 "  - {name: dns-tcp, port: 53, protocol: TCP, appProtocol: kubernetes.io/h2c}\n");
    cJSON_Delete(o);
}

static void test_service_refusals(void **state)
{
    (void)state;
    bad(SVC "spec:\n  type: ExternalName\n  externalName: db.example.com\n",
        "spec.type: \"ExternalName\" is not supported by Drover");
    bad(SVC "spec:\n  type: ExternalName\n  externalName: db.example.com\n",
        "spec.externalName: not supported by Drover");
    bad(SVC "spec:\n  type: Balanced\n  ports: [{port: 80}]\n",
        "spec.type: unsupported value \"Balanced\"");
    bad(SVC "spec:\n  externalTrafficPolicy: Local\n  ports: [{port: 80}]\n",
        "spec.externalTrafficPolicy: may only be set for a NodePort or LoadBalancer Service");
    bad(SVC "spec:\n  type: NodePort\n  externalTrafficPolicy: Nearest\n  ports: [{port: 80}]\n",
        "spec.externalTrafficPolicy: unsupported value \"Nearest\"");
    bad(SVC "spec:\n  internalTrafficPolicy: Node\n  ports: [{port: 80}]\n",
        "spec.internalTrafficPolicy: unsupported value \"Node\"");
    bad(SVC "spec:\n  sessionAffinity: Sticky\n  ports: [{port: 80}]\n",
        "spec.sessionAffinity: unsupported value \"Sticky\"");
    bad(SVC "spec:\n  sessionAffinityConfig: {clientIP: {timeoutSeconds: 0}}\n"
            "  ports: [{port: 80}]\n",
        "spec.sessionAffinityConfig.clientIP.timeoutSeconds: must be between 1 and 86400");
    bad(SVC "spec:\n  sessionAffinity: ClientIP\n"
            "  sessionAffinityConfig: {clientIP: {timeoutSeconds: 0}}\n  ports: [{port: 80}]\n",
        "spec.sessionAffinityConfig.clientIP.timeoutSeconds: must be between 1 and 86400");
    bad(SVC "spec:\n  sessionAffinity: ClientIP\n"
            "  sessionAffinityConfig: {clientIP: {timeoutSeconds: 86401}}\n  ports: [{port: 80}]\n",
        "spec.sessionAffinityConfig.clientIP.timeoutSeconds: must be between 1 and 86400");
    bad(SVC "spec:\n  sessionAffinity: ClientIP\n"
            "  sessionAffinityConfig: {clientIP: {timeout: 5}}\n  ports: [{port: 80}]\n",
        "spec.sessionAffinityConfig.clientIP.timeout: unknown field");
    bad(SVC "spec:\n  ipFamilyPolicy: RequireDualStack\n  ports: [{port: 80}]\n",
        "spec.ipFamilyPolicy: \"RequireDualStack\" is not supported by Drover");
    bad(SVC "spec:\n  ipFamilies: [IPv6]\n  ports: [{port: 80}]\n",
        "spec.ipFamilies[0]: \"IPv6\" is not supported by Drover");
    bad(SVC "spec:\n  ipFamilies: [IPv4, IPv6]\n  ports: [{port: 80}]\n",
        "spec.ipFamilies[1]: \"IPv6\" is not supported by Drover");
    bad(SVC "spec:\n  ipFamilies: [IPv4, IPv4]\n  ports: [{port: 80}]\n",
        "spec.ipFamilies[1]: duplicate value");
    bad(SVC "spec:\n  clusterIP: 10.43.0.300\n  ports: [{port: 80}]\n",
        "spec.clusterIP: invalid value \"10.43.0.300\": must be a valid IPv4 address");
    bad(SVC "spec:\n  clusterIP: \"fd00::12\"\n  ports: [{port: 80}]\n",
        "spec.clusterIP: IPv6 address \"fd00::12\" is not supported by Drover");
    bad(SVC "spec:\n  clusterIP: 10.43.0.12\n  clusterIPs: [10.43.0.13]\n  ports: [{port: 80}]\n",
        "spec.clusterIPs[0]: must be the same as clusterIP (\"10.43.0.12\")");
    bad(SVC "spec:\n  clusterIPs: [10.43.0.12, \"fd00::12\"]\n  ports: [{port: 80}]\n",
        "spec.clusterIPs: may hold one address");
    bad(SVC "spec:\n  type: LoadBalancer\n  clusterIP: None\n  ports: [{port: 80}]\n",
        "spec.clusterIP: may not be \"None\" for a LoadBalancer Service");
    bad(SVC "spec:\n  type: LoadBalancer\n  allocateLoadBalancerNodePorts: false\n"
            "  ports: [{port: 80}]\n",
        "spec.allocateLoadBalancerNodePorts: false is not supported by Drover");
    bad(SVC "spec:\n  allocateLoadBalancerNodePorts: true\n  ports: [{port: 80}]\n",
        "spec.allocateLoadBalancerNodePorts: may only be set for a LoadBalancer Service");
    bad(SVC "spec:\n  type: LoadBalancer\n  loadBalancerClass: example.com/lb\n"
            "  ports: [{port: 80}]\n",
        "spec.loadBalancerClass: not supported by Drover");
    bad(SVC "spec:\n  externalIPs: [192.168.1.5]\n  ports: [{port: 80}]\n",
        "spec.externalIPs: not supported by Drover");
    bad(SVC "spec:\n  ports: [{name: a, port: 80}, {name: b, port: 80}]\n",
        "spec.ports[1]: duplicate port 80/TCP (also in ports[0])");
    bad(SVC "spec:\n  ports: [{name: a, port: 80}, {name: a, port: 81}]\n",
        "spec.ports[1].name: duplicate value \"a\" (also in ports[0])");
    bad(SVC "spec:\n  ports: [{port: 80}, {name: b, port: 81}]\n", "spec.ports[0].name: required");
    bad(SVC "spec:\n  type: NodePort\n  ports: [{port: 80, nodePort: 8080}]\n",
        "spec.ports[0].nodePort: must be between 30000 and 32767");
    bad(SVC "spec:\n  ports: [{port: 80, nodePort: 30080}]\n",
        "spec.ports[0].nodePort: may only be set for a NodePort or LoadBalancer Service");
    bad(SVC "spec:\n  type: LoadBalancer\n  ports:\n  - {name: a, port: 80, nodePort: 30080}\n"
            "  - {name: b, port: 81, nodePort: 30080}\n",
        "spec.ports[1].nodePort: duplicate value 30080 (also in ports[0])");
    bad(SVC "spec:\n  ports: [{port: 80, targetPort: Web_Port}]\n",
        "spec.ports[0].targetPort: invalid port name");
    bad(SVC "spec:\n  ports: [{port: 80, appProtocol: \"not valid!\"}]\n",
        "spec.ports[0].appProtocol: invalid value");
    bad(SVC "spec:\n  selector: {app: web}\n", "spec.ports: required");
}

/* An update that turns a LoadBalancer back into a ClusterIP Service: the server's defaults for
 * the old type are dropped, what the user changed is kept (and then judged). */
static void test_service_type_change(void **state)
{
    (void)state;
    cJSON *old = good(SVC "spec:\n  type: LoadBalancer\n  ports:\n"
                          "  - {name: a, port: 80, nodePort: 30080}\n"
                          "  - {name: b, port: 81, nodePort: 30081}\n");
    cJSON *obj = cJSON_Duplicate(old, true);
    cJSON_ReplaceItemInObjectCaseSensitive(drv_json_get(obj, "spec"), "type",
                                           cJSON_CreateString("ClusterIP"));
    drv_model_service_drop_type_fields(old, obj);
    char *p = check(obj);
    assert_string_equal(p, "");
    free(p);
    assert_null(drv_json_at(obj, "spec.externalTrafficPolicy"));
    assert_null(drv_json_at(obj, "spec.allocateLoadBalancerNodePorts"));
    assert_null(drv_json_get(item(obj, "spec.ports", 1), "nodePort"));
    cJSON_Delete(obj);

    /* A nodePort the user changed in the same update stays, and is refused for ClusterIP. */
    obj = cJSON_Duplicate(old, true);
    cJSON_ReplaceItemInObjectCaseSensitive(drv_json_get(obj, "spec"), "type",
                                           cJSON_CreateString("ClusterIP"));
    cJSON_ReplaceItemInObjectCaseSensitive((cJSON *)item(obj, "spec.ports", 1), "nodePort",
                                           cJSON_CreateNumber(30090));
    drv_model_service_drop_type_fields(old, obj);
    p = check(obj);
    assert_non_null(strstr(p, "spec.ports[1].nodePort: may only be set for a NodePort or "
                              "LoadBalancer Service"));
    free(p);
    cJSON_Delete(obj);

    /* The same type: nothing is touched. */
    obj = cJSON_Duplicate(old, true);
    drv_model_service_drop_type_fields(old, obj);
    assert_true(cJSON_Compare(obj, old, true));
    cJSON_Delete(obj);
    cJSON_Delete(old);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_netpol_default_deny),
        cmocka_unit_test(test_netpol_docs_example),
        cmocka_unit_test(test_netpol_namespace_and_pod),
        cmocka_unit_test(test_netpol_egress_port_range),
        cmocka_unit_test(test_netpol_bad_selectors),
        cmocka_unit_test(test_netpol_bad_peers),
        cmocka_unit_test(test_netpol_bad_ports),
        cmocka_unit_test(test_endpoints),
        cmocka_unit_test(test_endpointslice),
        cmocka_unit_test(test_service_defaults),
        cmocka_unit_test(test_service_refusals),
        cmocka_unit_test(test_service_type_change),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
