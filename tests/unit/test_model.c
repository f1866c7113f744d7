/* The resource model: Kubernetes manifests people write load unchanged, defaults are those
 * of Kubernetes, and every problem in a document is reported with its field path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/doc.h"
#include "drover/file.h"
#include "drover/manifest.h"
#include "drover/model.h"

/* Parses one YAML document. */
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

/* Normalizes and returns the problems as "path: msg\n" lines ("" when valid). */
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

static void assert_has(const char *problems, const char *line)
{
    if (!strstr(problems, line))
        fail_msg("expected problem \"%s\" in:\n%s", line, problems);
}

static const char *get_s(cJSON *obj, const char *path)
{
    /* Dotted path with [n] indexes: "spec.template.spec.containers[0].image". */
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", path);
    cJSON *cur = obj;
    for (char *save = NULL, *tok = strtok_r(buf, ".", &save); tok && cur;
         tok = strtok_r(NULL, ".", &save)) {
        char *br = strchr(tok, '[');
        if (br)
            *br = '\0';
        cur = cJSON_GetObjectItemCaseSensitive(cur, tok);
        if (br)
            cur = cJSON_GetArrayItem(cur, (int)strtol(br + 1, NULL, 10));
    }
    if (cJSON_IsString(cur))
        return cur->valuestring;
    static char num[64];
    if (cJSON_IsNumber(cur)) {
        snprintf(num, sizeof(num), "%g", cur->valuedouble);
        return num;
    }
    if (cJSON_IsBool(cur))
        return cJSON_IsTrue(cur) ? "true" : "false";
    return cur ? "<object>" : NULL;
}

static const char *minimal_deploy = "apiVersion: apps/v1\n"
                                    "kind: Deployment\n"
                                    "metadata: {name: web}\n"
                                    "spec:\n"
                                    "  selector: {matchLabels: {app: web}}\n"
                                    "  template:\n"
                                    "    metadata: {labels: {app: web}}\n"
                                    "    spec:\n"
                                    "      containers:\n"
                                    "      - name: web\n"
                                    "        image: nginx\n";

static void test_deployment_defaults(void **state)
{
    cJSON *o = yaml(minimal_deploy);
    char *p = check(o);
    assert_string_equal(p, "");
    assert_string_equal(get_s(o, "metadata.namespace"), "default");
    assert_string_equal(get_s(o, "spec.replicas"), "1");
    assert_string_equal(get_s(o, "spec.strategy.type"), "RollingUpdate");
    assert_string_equal(get_s(o, "spec.strategy.rollingUpdate.maxSurge"), "25%");
    assert_string_equal(get_s(o, "spec.strategy.rollingUpdate.maxUnavailable"), "25%");
    assert_string_equal(get_s(o, "spec.revisionHistoryLimit"), "10");
    assert_string_equal(get_s(o, "spec.progressDeadlineSeconds"), "600");
    assert_string_equal(get_s(o, "spec.template.spec.restartPolicy"), "Always");
    assert_string_equal(get_s(o, "spec.template.spec.terminationGracePeriodSeconds"), "30");
    assert_string_equal(get_s(o, "spec.template.spec.dnsPolicy"), "ClusterFirst");
    /* No tag means :latest, which Kubernetes always pulls. */
    assert_string_equal(get_s(o, "spec.template.spec.containers[0].imagePullPolicy"), "Always");
    free(p);
    cJSON_Delete(o);
}

static void test_pull_policy_follows_tag(void **state)
{
    const char *cases[][2] = {
        {"nginx:1.25", "IfNotPresent"},
        {"nginx:latest", "Always"},
        {"registry:5000/nginx", "Always"},
        {"registry:5000/nginx:2", "IfNotPresent"},
        {"nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
         "IfNotPresent"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[1024];
        snprintf(text, sizeof(text),
                 "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: "
                 "c, image: \"%s\"}\n",
                 cases[i][0]);
        cJSON *o = yaml(text);
        char *p = check(o);
        assert_string_equal(p, "");
        assert_string_equal(get_s(o, "spec.containers[0].imagePullPolicy"), cases[i][1]);
        free(p);
        cJSON_Delete(o);
    }
}

static void test_missing_image_names_path(void **state)
{
    cJSON *o = yaml(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n"
        "  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n"
        "    spec:\n      containers:\n      - name: web\n");
    char *p = check(o);
    assert_has(p, "spec.template.spec.containers[0].image: required\n");
    free(p);
    cJSON_Delete(o);
}

static void test_every_problem_reported(void **state)
{
    char *text = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    char path[1024];
    snprintf(path, sizeof(path), "%s/manifests/invalid/broken-deployment.yaml",
             getenv("DROVER_TESTDATA"));
    assert_int_equal(drv_file_read_capped(path, 1 << 20, &text, NULL, &err), DRV_OK);
    cJSON *o = yaml(text);
    char *p = check(o);
    assert_has(p, "metadata.name: invalid value \"Bad_Name\"");
    assert_has(p, "spec.replicas: must be between 0 and 100000, not -1");
    assert_has(p, "spec.template.metadata.labels: `selector` does not match template `labels`");
    assert_has(p, "spec.template.spec.affinity.podAntiAffinity."
                  "requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey: required");
    assert_has(p, "spec.template.spec.containers[0].image: required");
    assert_has(
        p, "spec.template.spec.containers[0].ports[0].containerPort: must be between 1 and 65535");
    assert_has(
        p,
        "spec.template.spec.containers[0].resources.limits[nvidia.com/gpu]: unsupported resource");
    assert_has(p, "spec.template.spec.containers[0].resources.requests[cpu]: must be less than or "
                  "equal to cpu "
                  "limit of 1");
    assert_has(p,
               "spec.template.spec.containers[0].livenessProbe: must specify exactly one handler");
    assert_has(p,
               "spec.template.spec.containers[0].livenessProbe.periodSeconds: must be between 1");
    assert_has(p, "spec.template.spec.containers[1].name: duplicate container name \"web\"");
    assert_has(
        p, "spec.template.spec.containers[1].volumeMounts[0].name: volume \"missing\" not found");
    assert_has(
        p, "spec.template.spec.containers[1].volumeMounts[0].mountPath: must be an absolute path");
    free(p);
    free(text);
    cJSON_Delete(o);
}

static void test_unknown_and_unsupported_fields(void **state)
{
    cJSON *o = yaml(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p, finalizers: [x]}\nspec:\n"
        "  readinessGates: [{conditionType: r}]\n  containers:\n  - name: c\n    image: busybox\n"
        "    imagee: typo\n    stdin: true\n"
        "  volumes:\n  - name: data\n    nfs: {server: s, path: /x}\n");
    char *p = check(o);
    assert_has(p, "metadata.finalizers: not supported by Drover\n");
    assert_has(p, "spec.readinessGates: not supported by Drover\n");
    assert_has(p, "spec.containers[0].imagee: unknown field\n");
    assert_has(p, "spec.containers[0].stdin: not supported by Drover\n");
    assert_has(p, "spec.volumes[0].nfs: not supported by Drover\n");
    free(p);
    cJSON_Delete(o);
}

static void test_informational_fields_dropped_or_kept(void **state)
{
    cJSON *o = yaml(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  uid: 1234\n"
        "  creationTimestamp: \"2024-01-01T00:00:00Z\"\n  managedFields: [{manager: kubectl}]\n"
        "  annotations: {note: hi}\nspec:\n  schedulerName: default-scheduler\n"
        "  serviceAccountName: default\n  enableServiceLinks: true\n  containers:\n"
        "  - {name: c, image: busybox, terminationMessagePath: /dev/termination-log, tty: false}\n"
        "status: {phase: Running}\n");
    char *p = check(o);
    /* uid must be a string: Kubernetes never writes a number there. */
    assert_has(p, "metadata.uid: must be a string, not number");
    free(p);
    cJSON_Delete(o);
    o = yaml(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  uid: abc\n"
        "  creationTimestamp: \"2024-01-01T00:00:00Z\"\n  managedFields: [{manager: kubectl}]\n"
        "  annotations: {note: hi}\nspec:\n  schedulerName: default-scheduler\n"
        "  serviceAccountName: default\n  containers:\n"
        "  - {name: c, image: busybox, terminationMessagePath: /dev/termination-log, tty: false}\n"
        "status: {phase: Running}\n");
    p = check(o);
    assert_string_equal(p, "");
    assert_null(cJSON_GetObjectItem(o, "status"));
    assert_null(get_s(o, "metadata.managedFields"));
    assert_null(get_s(o, "spec.schedulerName"));
    assert_null(get_s(o, "spec.containers[0].terminationMessagePath"));
    assert_string_equal(get_s(o, "metadata.annotations.note"), "hi");
    assert_string_equal(get_s(o, "metadata.uid"), "abc");
    free(p);
    cJSON_Delete(o);
    /* A value that would change behaviour is refused, naming the field. */
    o = yaml("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  serviceAccountName: robot\n"
             "  containers: [{name: c, image: busybox, tty: true}]\n");
    p = check(o);
    assert_null(strstr(p, "serviceAccountName"));
    assert_has(p, "spec.containers[0].tty: not supported by Drover");
    free(p);
    cJSON_Delete(o);
}

static void test_secret_string_data_folded(void **state)
{
    cJSON *o =
        yaml("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n"
             "data: {username: YWRtaW4=, password: b2xk}\nstringData: {password: new-pass}\n");
    char *p = check(o);
    assert_string_equal(p, "");
    assert_string_equal(get_s(o, "type"), "Opaque");
    assert_string_equal(get_s(o, "data.username"), "YWRtaW4=");
    assert_string_equal(get_s(o, "data.password"), "bmV3LXBhc3M="); /* stringData wins */
    assert_null(cJSON_GetObjectItem(o, "stringData"));
    free(p);
    cJSON_Delete(o);
}

static void test_secret_problems(void **state)
{
    cJSON *o = yaml("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n"
                    "data: {password: \"not base64!!\", \"bad key\": eA==, short: eA}\n");
    char *p = check(o);
    assert_has(p, "data[password]: illegal base64 data\n");
    assert_has(p, "data[short]: illegal base64 data\n");
    assert_has(p, "data[bad key]: invalid key");
    free(p);
    cJSON_Delete(o);
    o = yaml("apiVersion: v1\nkind: Secret\nmetadata: {name: t}\ntype: kubernetes.io/tls\n"
             "data: {tls.crt: eA==}\n");
    p = check(o);
    assert_has(p, "data[tls.key]: required for a Secret of type kubernetes.io/tls\n");
    free(p);
    cJSON_Delete(o);
}

static void test_configmap_rules(void **state)
{
    cJSON *o = yaml("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"
                    "data: {a: x, n: 5}\nbinaryData: {a: eA==}\n");
    char *p = check(o);
    assert_has(p, "binaryData[a]: duplicate of key \"a\" in data\n");
    assert_has(p, "data[n]: must be a string, not number\n");
    free(p);
    cJSON_Delete(o);
}

static void test_quantities_canonical(void **state)
{
    cJSON *o = yaml(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
        "  - name: c\n    image: busybox\n    resources:\n"
        "      limits: {cpu: \"0.5\", memory: 1024Mi}\n      requests: {cpu: 2000m, memory: 1G}\n");
    char *p = check(o);
    assert_has(p, "spec.containers[0].resources.requests[cpu]: must be less than or equal to cpu "
                  "limit of 500m");
    free(p);
    cJSON_Delete(o);
    o = yaml("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
             "  - name: c\n    image: busybox\n    resources:\n      limits: {cpu: 2, memory: "
             "1024Mi}\n");
    p = check(o);
    assert_string_equal(p, "");
    assert_string_equal(get_s(o, "spec.containers[0].resources.limits.cpu"), "2");
    assert_string_equal(get_s(o, "spec.containers[0].resources.limits.memory"), "1Gi");
    /* A limit without a request: the request is the limit, as in Kubernetes. */
    assert_string_equal(get_s(o, "spec.containers[0].resources.requests.cpu"), "2");
    assert_string_equal(get_s(o, "spec.containers[0].resources.requests.memory"), "1Gi");
    free(p);
    cJSON_Delete(o);
    /* A YAML float is the decimal its author wrote: 0.1 cpu is 100m, not 101m. */
    o = yaml("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
             "  - name: c\n    image: busybox\n    resources:\n      limits: {cpu: 0.1, memory: "
             "0.5Gi}\n");
    p = check(o);
    assert_string_equal(p, "");
    assert_string_equal(get_s(o, "spec.containers[0].resources.limits.cpu"), "100m");
    free(p);
    cJSON_Delete(o);
    o = yaml("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
             "  - name: c\n    image: busybox\n    resources:\n      limits: {cpu: 1.5.5, memory: "
             "-1Mi}\n");
    p = check(o);
    assert_has(p, "spec.containers[0].resources.limits[cpu]: invalid quantity \"1.5.5\"");
    assert_has(p, "spec.containers[0].resources.limits[memory]: invalid quantity \"-1Mi\"");
    free(p);
    cJSON_Delete(o);
    /* Empty resources (what Go clients send) are the same as none: one canonical form. */
    o = yaml("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
             "  - {name: c, image: busybox, resources: {}}\n"
             "  - {name: d, image: busybox, resources: {requests: {}, limits: {}}}\n"
             "  - {name: e, image: busybox, resources: {limits: {}, requests: {cpu: 1}}}\n");
    p = check(o);
    assert_string_equal(p, "");
    cJSON *ctrs = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "spec"), "containers");
    assert_null(cJSON_GetObjectItem(cJSON_GetArrayItem(ctrs, 0), "resources"));
    assert_null(cJSON_GetObjectItem(cJSON_GetArrayItem(ctrs, 1), "resources"));
    assert_string_equal(get_s(o, "spec.containers[2].resources.requests.cpu"), "1");
    assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(ctrs, 2), "resources"),
                                    "limits"));
    free(p);
    cJSON_Delete(o);
}

static void test_rolling_update_rules(void **state)
{
    const char *cases[][2] = {
        {"{type: RollingUpdate, rollingUpdate: {maxSurge: 0, maxUnavailable: 0}}",
         "spec.strategy.rollingUpdate.maxUnavailable: may not be 0 when maxSurge is 0"},
        {"{rollingUpdate: {maxSurge: \"150%\"}}",
         "spec.strategy.rollingUpdate.maxSurge: invalid value \"150%\""},
        {"{type: Recreate, rollingUpdate: {maxSurge: 1}}",
         "spec.strategy.rollingUpdate: may not be specified when strategy `type` is 'Recreate'"},
        {"{type: BlueGreen}", "spec.strategy.type: unsupported value \"BlueGreen\""},
        {"{rollingUpdate: {maxUnavailable: \"0%\", maxSurge: \"0%\"}}",
         "spec.strategy.rollingUpdate.maxUnavailable: may not be 0 when maxSurge is 0"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[2048];
        snprintf(text, sizeof(text), "%s  strategy: %s\n", minimal_deploy, cases[i][0]);
        cJSON *o = yaml(text);
        char *p = check(o);
        assert_has(p, cases[i][1]);
        free(p);
        cJSON_Delete(o);
    }
    char text[2048];
    snprintf(text, sizeof(text), "%s  strategy: {type: Recreate}\n", minimal_deploy);
    cJSON *o = yaml(text);
    char *p = check(o);
    assert_string_equal(p, "");
    assert_null(get_s(o, "spec.strategy.rollingUpdate"));
    free(p);
    cJSON_Delete(o);
}

static void test_lifecycle_rules(void **state)
{
    cJSON *o =
        yaml("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n"
             "  terminationGracePeriodSeconds: 10\n  containers:\n"
             "  - name: c\n    image: busybox\n    ports: [{name: web, containerPort: 8080}]\n"
             "    lifecycle:\n"
             "      postStart: {exec: {command: [x]}, sleep: {seconds: 1}}\n"
             "      preStop: {sleep: {seconds: 11}}\n"
             "  - name: d\n    image: busybox\n"
             "    lifecycle: {preStop: {tcpSocket: {port: 80}}, postStart: {}, onStop: {}}\n"
             "  - name: e\n    image: busybox\n"
             "    lifecycle: {preStop: {httpGet: {port: admin, path: x}}}\n"
             "  initContainers:\n  - {name: i, image: busybox, lifecycle: {preStop: {sleep: "
             "{seconds: 1}}}}\n");
    char *p = check(o);
    assert_has(p, "spec.containers[0].lifecycle.postStart: must specify exactly one handler: "
                  "exec, httpGet or sleep\n");
    assert_has(p, "spec.containers[0].lifecycle.preStop.sleep.seconds: must be at most "
                  "terminationGracePeriodSeconds (10)\n");
    assert_has(p, "spec.containers[1].lifecycle.preStop.tcpSocket: not supported by Drover: "
                  "deprecated in Kubernetes");
    /* The refused tcpSocket was its one handler: no false "exactly one" after it. */
    assert_null(strstr(p, "spec.containers[1].lifecycle.preStop: must specify"));
    assert_has(p, "spec.containers[1].lifecycle.postStart: must specify exactly one handler");
    assert_has(p, "spec.containers[1].lifecycle.onStop: unknown field\n");
    assert_has(p, "spec.containers[2].lifecycle.preStop.httpGet.port: no container port named "
                  "\"admin\"\n");
    assert_has(p, "spec.containers[2].lifecycle.preStop.httpGet.path: must start with '/'\n");
    assert_has(p, "spec.initContainers[0].lifecycle: may not be set for init containers\n");
    free(p);
    cJSON_Delete(o);
    o = yaml("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
             "  - name: c\n    image: busybox\n    ports: [{name: web, containerPort: 8080}]\n"
             "    lifecycle:\n      postStart: {httpGet: {port: web}}\n"
             "      preStop: {sleep: {seconds: 30}}\n"
             "  - name: d\n    image: busybox\n"
             "    lifecycle: {preStop: {exec: {command: [sh, -c, x]}}}\n");
    p = check(o);
    assert_string_equal(p, "");
    assert_string_equal(get_s(o, "spec.containers[0].lifecycle.postStart.httpGet.path"), "/");
    assert_string_equal(get_s(o, "spec.containers[0].lifecycle.postStart.httpGet.scheme"), "HTTP");
    free(p);
    cJSON_Delete(o);
}

static void test_sidecar_rules(void **state)
{
    cJSON *o =
        yaml("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
             "  - {name: c, image: busybox, restartPolicy: Always}\n"
             "  initContainers:\n"
             "  - name: side\n    image: busybox\n    restartPolicy: Always\n"
             "    startupProbe: {exec: {command: [x]}}\n    readinessProbe: {grpc: {port: 9}}\n"
             "    lifecycle: {preStop: {sleep: {seconds: 1}}}\n"
             "  - {name: once, image: busybox, restartPolicy: OnFailure}\n"
             "  - {name: plain, image: busybox, startupProbe: {exec: {command: [x]}}}\n");
    char *p = check(o);
    assert_has(p, "spec.containers[0].restartPolicy: not supported by Drover: only init "
                  "containers (sidecars) may set it");
    assert_null(strstr(p, "spec.initContainers[0]"));
    assert_has(p, "spec.initContainers[1].restartPolicy: unsupported value \"OnFailure\": must be "
                  "one of \"Always\"");
    assert_has(p, "spec.initContainers[2].startupProbe: may not be set for init containers");
    free(p);
    cJSON_Delete(o);
    o = yaml("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n"
             "  activeDeadlineSeconds: 0\n  containers: [{name: c, image: busybox}]\n");
    p = check(o);
    assert_has(p, "spec.activeDeadlineSeconds: must be between 1 and 2147483647");
    free(p);
    cJSON_Delete(o);
    o = yaml("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n"
             "  activeDeadlineSeconds: 30\n  containers: [{name: c, image: busybox}]\n");
    p = check(o);
    assert_string_equal(p, "");
    free(p);
    cJSON_Delete(o);
}

static void test_probe_rules(void **state)
{
    cJSON *o = yaml(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
        "  - name: c\n    image: busybox\n    ports: [{name: web, containerPort: 8080}]\n"
        "    livenessProbe: {exec: {command: [true]}, tcpSocket: {port: 1}, successThreshold: 2}\n"
        "    readinessProbe: {httpGet: {port: admin}}\n"
        "    startupProbe: {grpc: {port: web, service: x}}\n"
        "  initContainers:\n  - {name: i, image: busybox, readinessProbe: {exec: {command: "
        "[x]}}}\n");
    char *p = check(o);
    assert_has(p, "spec.containers[0].livenessProbe: must specify exactly one handler");
    assert_has(p, "spec.containers[0].livenessProbe.successThreshold: must be 1");
    assert_has(p,
               "spec.containers[0].readinessProbe.httpGet.port: no container port named \"admin\"");
    assert_has(p, "spec.containers[0].startupProbe.grpc.port: must be an integer");
    assert_has(p, "spec.initContainers[0].readinessProbe: may not be set for init containers");
    free(p);
    cJSON_Delete(o);
    o = yaml("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
             "  - name: c\n    image: busybox\n    ports: [{name: web, containerPort: 8080}]\n"
             "    readinessProbe: {httpGet: {port: web}}\n"
             "    livenessProbe: {grpc: {port: 9090, service: my.Svc}}\n");
    p = check(o);
    assert_string_equal(p, "");
    assert_string_equal(get_s(o, "spec.containers[0].readinessProbe.httpGet.path"), "/");
    assert_string_equal(get_s(o, "spec.containers[0].readinessProbe.httpGet.scheme"), "HTTP");
    assert_string_equal(get_s(o, "spec.containers[0].readinessProbe.periodSeconds"), "10");
    assert_string_equal(get_s(o, "spec.containers[0].readinessProbe.timeoutSeconds"), "1");
    assert_string_equal(get_s(o, "spec.containers[0].readinessProbe.failureThreshold"), "3");
    free(p);
    cJSON_Delete(o);
}

static void test_kind_and_api_version(void **state)
{
    cJSON *o = yaml("apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: c}\n");
    char *p = check(o);
    assert_has(p, "kind: unsupported kind \"PodDisruptionBudget\"");
    free(p);
    cJSON_Delete(o);
    o = yaml("apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata: {name: d}\n");
    p = check(o);
    assert_has(p,
               "apiVersion: \"extensions/v1beta1\" is not supported for Deployment: use apps/v1");
    assert_has(p, "spec: required");
    free(p);
    cJSON_Delete(o);
    o = yaml("- just\n- a list\n");
    p = check(o);
    assert_has(p, "a manifest must be a mapping (an object), not array");
    free(p);
    cJSON_Delete(o);
    o = yaml("kind: 5\napiVersion: v1\n");
    p = check(o);
    assert_has(p, "kind: must be a string, not number");
    free(p);
    cJSON_Delete(o);
}

static void test_kind_names(void **state)
{
    assert_int_equal(drv_kind_parse("deploy"), DRV_KIND_DEPLOYMENT);
    assert_int_equal(drv_kind_parse("Deployments"), DRV_KIND_DEPLOYMENT);
    assert_int_equal(drv_kind_parse("ds"), DRV_KIND_DAEMONSET);
    assert_int_equal(drv_kind_parse("cm"), DRV_KIND_CONFIGMAP);
    assert_int_equal(drv_kind_parse("svc"), DRV_KIND_SERVICE);
    assert_int_equal(drv_kind_parse("no"), DRV_KIND_NODE);
    assert_int_equal(drv_kind_parse("po"), DRV_KIND_POD);
    assert_int_equal(drv_kind_parse("cronjob"), DRV_KIND_CRONJOB);
    assert_int_equal(drv_kind_parse("cj"), DRV_KIND_CRONJOB);
    assert_int_equal(drv_kind_parse("jobs"), DRV_KIND_JOB);
    assert_int_equal(drv_kind_parse("poddisruptionbudget"), DRV_KIND_UNKNOWN);
    assert_string_equal(drv_kind_plural(DRV_KIND_DAEMONSET), "daemonsets");
    assert_string_equal(drv_kind_api_version(DRV_KIND_DAEMONSET), "apps/v1");
    assert_int_equal(drv_kind_parse("ns"), DRV_KIND_NAMESPACE);
    assert_int_equal(drv_kind_parse("rs"), DRV_KIND_REPLICASET);
    assert_string_equal(drv_kind_api_version(DRV_KIND_REPLICASET), "apps/v1");
    assert_false(drv_kind_namespaced(DRV_KIND_NAMESPACE));
    assert_false(drv_kind_namespaced(DRV_KIND_NODE));
    assert_true(drv_kind_namespaced(DRV_KIND_REPLICASET));
    /* A Namespace: no spec needed, no namespace kept, a DNS label for a name. */
    cJSON *o = yaml("apiVersion: v1\nkind: Namespace\nmetadata: {name: team, namespace: x}\n");
    assert_int_equal(drv_model_normalize(o, NULL), DRV_OK);
    assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "metadata"), "namespace"));
    assert_non_null(cJSON_GetObjectItem(o, "spec"));
    cJSON_Delete(o);
    o = yaml("apiVersion: v1\nkind: Namespace\nmetadata: {name: a.b}\n");
    char *p = check(o);
    assert_has(p, "metadata.name: invalid value");
    free(p);
    cJSON_Delete(o);
    /* A ReplicaSet: its template must match its selector, as a Deployment's. */
    o = yaml("apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: web-x}\nspec:\n"
             "  selector: {matchLabels: {app: web}}\n  template:\n"
             "    metadata: {labels: {app: other}}\n"
             "    spec: {containers: [{name: c, image: nginx}]}\n");
    p = check(o);
    assert_has(p, "spec.template.metadata.labels: `selector` does not match template `labels`");
    free(p);
    cJSON_Delete(o);
    /* A ControllerRevision: no spec; data kept as it is, revision required. */
    assert_int_equal(drv_kind_parse("controllerrevisions"), DRV_KIND_CONTROLLERREVISION);
    assert_int_equal(drv_kind_parse("ControllerRevision"), DRV_KIND_CONTROLLERREVISION);
    assert_true(drv_kind_namespaced(DRV_KIND_CONTROLLERREVISION));
    o = yaml("apiVersion: apps/v1\nkind: ControllerRevision\nmetadata: {name: ds-x}\n"
             "revision: 2\ndata: {spec: {template: {$patch: replace, zz: 1}}}\n");
    assert_int_equal(drv_model_normalize(o, NULL), DRV_OK);
    cJSON *tpl = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "data"), "spec"),
                                     "template");
    assert_non_null(cJSON_GetObjectItem(tpl, "zz"));
    assert_non_null(cJSON_GetObjectItem(tpl, "$patch"));
    assert_null(cJSON_GetObjectItem(o, "spec"));
    cJSON_Delete(o);
    o = yaml("apiVersion: apps/v1\nkind: ControllerRevision\nmetadata: {name: ds-x}\n"
             "data: 5\nspec: {}\n");
    p = check(o);
    assert_has(p, "revision: required");
    assert_has(p, "data: must be an object");
    assert_has(p, "spec: unknown field");
    free(p);
    cJSON_Delete(o);
}

static void test_wrong_types(void **state)
{
    char text[2048];
    snprintf(text, sizeof(text), "%s  replicas: \"3\"\n  paused: yes\n", minimal_deploy);
    cJSON *o = yaml(text);
    char *p = check(o);
    assert_has(p, "spec.replicas: must be an integer, not string");
    assert_has(p, "spec.paused: must be a boolean, not string");
    free(p);
    cJSON_Delete(o);
    snprintf(text, sizeof(text), "%s  replicas: 2.5\n  minReadySeconds: 1e300\n", minimal_deploy);
    o = yaml(text);
    p = check(o);
    assert_has(p, "spec.replicas: must be an integer");
    assert_has(p, "spec.minReadySeconds: must be between 0 and");
    free(p);
    cJSON_Delete(o);
}

static void test_service_rules(void **state)
{
    cJSON *o = yaml("apiVersion: v1\nkind: Service\nmetadata: {name: 1web}\nspec:\n"
                    "  ports: [{port: 80}, {port: 81, nodePort: 30001}]\n");
    char *p = check(o);
    assert_has(p, "metadata.name: invalid value \"1web\"");
    assert_has(p, "spec.ports[0].name: required");
    assert_has(p, "spec.ports[1].nodePort: may only be set for a NodePort or LoadBalancer Service");
    free(p);
    cJSON_Delete(o);
    o = yaml("apiVersion: v1\nkind: Service\nmetadata: {name: db}\nspec: {type: ExternalName, "
             "ports: [{port: 1}]}\n");
    p = check(o);
    assert_has(p, "spec.type: \"ExternalName\" is not supported by Drover");
    free(p);
    cJSON_Delete(o);
    o = yaml("apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {selector: {app: w}, "
             "ports: [{port: 8080}]}\n");
    p = check(o);
    assert_string_equal(p, "");
    assert_string_equal(get_s(o, "spec.ports[0].targetPort"), "8080");
    assert_string_equal(get_s(o, "spec.ports[0].protocol"), "TCP");
    assert_string_equal(get_s(o, "spec.type"), "ClusterIP");
    free(p);
    cJSON_Delete(o);
}

static void test_node_and_event(void **state)
{
    cJSON *o = yaml("apiVersion: v1\nkind: Node\nmetadata: {name: pi-1, namespace: x}\n"
                    "spec: {taints: [{key: k, value: v}]}\nstatus: {capacity: {cpu: 4}}\n");
    char *p = check(o);
    assert_has(p, "spec.taints[0].effect: required");
    free(p);
    cJSON_Delete(o);
    o = yaml("apiVersion: v1\nkind: Node\nmetadata: {name: pi-1, namespace: x}\nstatus: {capacity: "
             "{cpu: 4}}\n");
    p = check(o);
    assert_string_equal(p, "");
    assert_null(get_s(o, "metadata.namespace")); /* nodes are cluster-scoped */
    assert_null(cJSON_GetObjectItem(o, "status"));
    free(p);
    cJSON_Delete(o);
    o = yaml(
        "apiVersion: v1\nkind: Event\nmetadata: {name: e1}\ninvolvedObject: {kind: Pod, name: p}\n"
        "reason: BackOff\ntype: Warning\ncount: 3\n");
    p = check(o);
    assert_string_equal(p, "");
    free(p);
    cJSON_Delete(o);
}

/* The smaller pod fields podmisc runs: downwardAPI, resourceFieldRef, imagePullSecrets,
 * hostAliases, fsGroup, supplementalGroups, mountPropagation; accepted as Kubernetes has them,
 * every bad value named. */
static void test_podmisc_fields(void **state)
{
    cJSON *o = yaml(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n"
        "  imagePullSecrets: [{name: regcred}]\n"
        "  hostAliases: [{ip: 10.1.2.3, hostnames: [foo.local, bar]}, {ip: '::1', hostnames: "
        "[v6]}]\n"
        "  securityContext: {fsGroup: 2000, fsGroupChangePolicy: OnRootMismatch, "
        "supplementalGroups: [3000, 4000]}\n"
        "  containers:\n  - name: c\n    image: busybox\n"
        "    resources: {limits: {cpu: 500m, memory: 64Mi}}\n"
        "    env:\n"
        "    - {name: A, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}}\n"
        "    - {name: B, valueFrom: {resourceFieldRef: {containerName: c, resource: requests.cpu, "
        "divisor: 1m}}}\n"
        "    - {name: C, valueFrom: {fieldRef: {fieldPath: \"metadata.labels['app']\"}}}\n"
        "    - {name: D, valueFrom: {fieldRef: {fieldPath: spec.serviceAccountName}}}\n"
        "    volumeMounts:\n    - {name: info, mountPath: /info, mountPropagation: None}\n"
        "    - {name: host, mountPath: /h, mountPropagation: HostToContainer}\n"
        "  volumes:\n  - name: info\n    downwardAPI:\n      items:\n"
        "      - {path: labels, fieldRef: {fieldPath: metadata.labels}}\n"
        "      - {path: cpu, resourceFieldRef: {containerName: c, resource: limits.cpu, divisor: "
        "1m}}\n"
        "  - {name: host, hostPath: {path: /mnt}}\n");
    char *p = check(o);
    assert_string_equal(p, "");
    free(p);
    assert_int_equal(cJSON_GetObjectItem(
                         cJSON_GetObjectItem(
                             cJSON_GetArrayItem(
                                 cJSON_GetObjectItem(cJSON_GetObjectItem(o, "spec"), "volumes"), 0),
                             "downwardAPI"),
                         "defaultMode")
                         ->valueint,
                     0644);
    assert_string_equal(get_s(o, "spec.imagePullSecrets[0].name"), "regcred");
    cJSON_Delete(o);

    o = yaml(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n"
        "  imagePullSecrets: [{}]\n"
        "  hostAliases: [{ip: 10.1.2, hostnames: [\"bad name\"]}]\n"
        "  securityContext: {fsGroup: -1, fsGroupChangePolicy: Sometimes, "
        "supplementalGroups: [x]}\n"
        "  containers:\n  - name: c\n    image: busybox\n"
        "    env:\n"
        "    - {name: A, valueFrom: {resourceFieldRef: {resource: limits.cpu, divisor: 1Mi}}}\n"
        "    - {name: B, valueFrom: {resourceFieldRef: {containerName: x, resource: "
        "limits.memory}}}\n"
        "    - {name: C, valueFrom: {fieldRef: {fieldPath: metadata.labels}}}\n"
        "    volumeMounts:\n    - {name: info, mountPath: /info, mountPropagation: "
        "Bidirectional}\n"
        "  volumes:\n  - name: info\n    downwardAPI:\n      items:\n"
        "      - {path: ../x, fieldRef: {fieldPath: spec.nodeName}}\n"
        "      - {path: y, resourceFieldRef: {resource: limits.cpu}}\n"
        "      - {path: z}\n");
    p = check(o);
    assert_has(p, "spec.imagePullSecrets[0].name: required");
    assert_has(p, "spec.hostAliases[0].ip: must be a valid IP address");
    assert_has(p, "spec.hostAliases[0].hostnames[0]: invalid value \"bad name\"");
    assert_has(p, "spec.securityContext.fsGroup: must be between 0 and");
    assert_has(p, "spec.securityContext.fsGroupChangePolicy: unsupported value \"Sometimes\"");
    assert_has(p, "spec.securityContext.supplementalGroups[0]: must be a group id");
    assert_has(p, "spec.containers[0].env[0].valueFrom.resourceFieldRef.divisor: only divisor's "
                  "values 1m and 1 are supported with the cpu resource");
    assert_has(p, "spec.containers[0].env[1].valueFrom.resourceFieldRef.containerName: container "
                  "\"x\" not found");
    assert_has(p, "spec.containers[0].env[2].valueFrom.fieldRef.fieldPath: unsupported value "
                  "\"metadata.labels\"");
    assert_has(p, "spec.containers[0].volumeMounts[0].mountPropagation: Bidirectional mount "
                  "propagation is available only to privileged containers");
    assert_has(p, "spec.volumes[0].downwardAPI.items[0].path: must be a relative path");
    assert_has(p, "spec.volumes[0].downwardAPI.items[0].fieldRef.fieldPath: unsupported value "
                  "\"spec.nodeName\"");
    assert_has(p, "spec.volumes[0].downwardAPI.items[1].resourceFieldRef.containerName: required");
    assert_has(p, "spec.volumes[0].downwardAPI.items[2]: must specify exactly one of fieldRef, "
                  "resourceFieldRef");
    free(p);
    cJSON_Delete(o);
}

static void test_tolerations_and_env(void **state)
{
    cJSON *o = yaml(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n"
        "  tolerations:\n  - {key: a, operator: Exists, value: x}\n  - {operator: "
        "Equal, value: y}\n"
        "  - {key: b, effect: NoSchedule, tolerationSeconds: 5}\n"
        "  containers:\n  - name: c\n    image: busybox\n    env:\n"
        "    - {name: A, value: x, valueFrom: {configMapKeyRef: {name: m, key: k}}}\n"
        "    - {name: \"B=C\"}\n    - {name: D, valueFrom: {}}\n"
        "    - {name: E, valueFrom: {resourceFieldRef: {resource: limits.ephemeral-storage}}}\n");
    char *p = check(o);
    assert_has(p, "spec.tolerations[0].value: must be empty when operator is Exists");
    assert_has(p, "spec.tolerations[1].operator: must be Exists when key is empty");
    assert_has(p,
               "spec.tolerations[2].tolerationSeconds: may only be set when effect is NoExecute");
    assert_has(
        p, "spec.containers[0].env[0].valueFrom: may not be specified when `value` is not empty");
    assert_has(p, "spec.containers[0].env[1].name: invalid value \"B=C\"");
    assert_has(p, "spec.containers[0].env[2].valueFrom: must specify exactly one of");
    assert_has(p,
               "spec.containers[0].env[3].valueFrom.resourceFieldRef.resource: unsupported value "
               "\"limits.ephemeral-storage\"");
    free(p);
    cJSON_Delete(o);
}

static void test_host_ports_and_network(void **state)
{
    cJSON *o = yaml("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  hostNetwork: true\n  "
                    "containers:\n"
                    "  - {name: a, image: x, ports: [{containerPort: 80, hostPort: 8080}]}\n"
                    "  - {name: b, image: x, ports: [{containerPort: 8080, hostPort: 8080}]}\n");
    char *p = check(o);
    assert_has(p, "spec.containers[1].ports[0].hostPort: duplicate hostPort 8080/TCP in this pod");
    assert_has(
        p,
        "spec.containers[0].ports[0].hostPort: must match containerPort when hostNetwork is true");
    free(p);
    cJSON_Delete(o);
}

static size_t occurrences(const char *s, const char *sub)
{
    size_t n = 0;
    for (const char *q = strstr(s, sub); q; q = strstr(q + 1, sub))
        n++;
    return n;
}

/* Each problem once: a refused value is not reported again as an unsupported field, and a
 * refused choice (volume source, probe handler, valueFrom) is not followed by a false
 * "exactly one" error. Two choices, one of them refused, still get it. */
static void test_problems_reported_once(void **state)
{
    cJSON *o =
        yaml("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n"
             "  schedulerName: other\n"
             "  volumes:\n  - {name: a, nfs: {server: s, path: /x}}\n"
             "  - {name: b, emptyDir: {}, nfs: {server: s, path: /x}}\n"
             "  containers:\n  - name: c\n    image: busybox\n"
             "    env: [{name: X, valueFrom: {fileKeyRef: {path: a, key: b, volumeName: v}}}]\n"
             "    livenessProbe: {grpc: {port: 1}}\n"
             "    readinessProbe: {grpc: {port: 1}, exec: {command: [x]}}\n");
    char *p = check(o);
    assert_int_equal(occurrences(p, "spec.schedulerName:"), 1);
    assert_has(p, "spec.schedulerName: not supported by Drover: the hub schedules every pod\n");
    assert_has(p, "spec.volumes[0].nfs: not supported by Drover\n");
    assert_int_equal(occurrences(p, "spec.volumes[0]: must specify exactly one"), 0);
    assert_has(p, "spec.volumes[1]: must specify exactly one volume source");
    assert_has(p, "spec.containers[0].env[0].valueFrom.fileKeyRef: not supported by Drover\n");
    assert_int_equal(occurrences(p, "valueFrom: must specify exactly one"), 0);
    assert_int_equal(occurrences(p, "livenessProbe: must specify exactly one"), 0);
    assert_has(p, "spec.containers[0].readinessProbe: must specify exactly one handler");
    free(p);
    cJSON_Delete(o);
}

/* Under hostNetwork a port without hostPort gets hostPort = containerPort (Kubernetes'
 * default), which the per-pod uniqueness check then sees; without it nothing is added. */
static void test_host_network_defaults_host_port(void **state)
{
    cJSON *o = yaml("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  hostNetwork: true\n"
                    "  containers:\n  - {name: a, image: x, ports: [{containerPort: 9100}]}\n"
                    "  initContainers:\n  - {name: i, image: x, ports: [{containerPort: 53, "
                    "protocol: UDP, hostPort: 0}]}\n");
    char *p = check(o);
    assert_string_equal(p, "");
    assert_string_equal(get_s(o, "spec.containers[0].ports[0].hostPort"), "9100");
    assert_string_equal(get_s(o, "spec.initContainers[0].ports[0].hostPort"), "53");
    free(p);
    cJSON_Delete(o);
    o = yaml("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  hostNetwork: true\n"
             "  containers:\n  - {name: a, image: x, ports: [{containerPort: 80}]}\n"
             "  - {name: b, image: x, ports: [{containerPort: 80}]}\n");
    p = check(o);
    assert_has(p, "spec.containers[1].ports[0].hostPort: duplicate hostPort 80/TCP in this pod");
    free(p);
    cJSON_Delete(o);
    o = yaml("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n"
             "  containers:\n  - {name: a, image: x, ports: [{containerPort: 80}]}\n");
    p = check(o);
    assert_string_equal(p, "");
    assert_null(get_s(o, "spec.containers[0].ports[0].hostPort"));
    free(p);
    cJSON_Delete(o);
}

/* Affinity as Kubernetes validates it: operators and their values, matchFields on
 * metadata.name only, weights 1-100, a topologyKey on every pod affinity term; a valid one is
 * kept for the scheduler. */
static void test_affinity_rules(void **state)
{
    cJSON *o = yaml(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: "
        "x}]\n"
        "  priorityClassName: system-node-critical\n  preemptionPolicy: Never\n"
        "  affinity:\n    nodeAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n"
        "        nodeSelectorTerms:\n        - matchExpressions:\n"
        "          - {key: kubernetes.io/arch, operator: In, values: [arm64, arm]}\n"
        "          - {key: gpu, operator: DoesNotExist}\n"
        "          - {key: cores, operator: Gt, values: ['2']}\n"
        "        - matchFields: [{key: metadata.name, operator: In, values: [n1]}]\n"
        "      preferredDuringSchedulingIgnoredDuringExecution:\n"
        "      - {weight: 10, preference: {matchExpressions: [{key: zone, operator: In, values: "
        "[a]}]}}\n"
        "    podAntiAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n"
        "      - {labelSelector: {matchLabels: {app: web}}, topologyKey: kubernetes.io/hostname}\n"
        "      preferredDuringSchedulingIgnoredDuringExecution:\n"
        "      - weight: 50\n        podAffinityTerm: {labelSelector: {matchExpressions: [{key: "
        "app, operator: Exists}]}, namespaces: [a, b], namespaceSelector: {}, topologyKey: "
        "zone}\n");
    char *p = check(o);
    assert_string_equal(p, "");
    assert_string_equal(get_s(o, "spec.affinity.podAntiAffinity."
                                 "requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey"),
                        "kubernetes.io/hostname");
    assert_string_equal(get_s(o, "spec.priorityClassName"), "system-node-critical");
    free(p);
    cJSON_Delete(o);
    o = yaml(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: "
        "x}]\n"
        "  preemptionPolicy: Sometimes\n"
        "  affinity:\n    nodeAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n"
        "        nodeSelectorTerms:\n        - matchExpressions:\n"
        "          - {key: a, operator: In}\n"
        "          - {key: b, operator: Exists, values: [x]}\n"
        "          - {key: c, operator: Gt, values: [ten]}\n"
        "          - {key: d, operator: Near, values: [x]}\n"
        "          matchFields: [{key: metadata.labels, operator: In, values: [n1, n2]}]\n"
        "      preferredDuringSchedulingIgnoredDuringExecution: [{weight: 0, preference: {}}]\n"
        "    podAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n"
        "      - {labelSelector: {matchLabels: {app: web}}, topologyKey: '', matchLabelKeys: [x],"
        " namespaceSelector: {matchLabels: {team: a}}}\n"
        "    nodeAfinity: {}\n");
    p = check(o);
    const char *na = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution."
                     "nodeSelectorTerms[0].";
    char line[512];
    snprintf(line, sizeof(line), "%smatchExpressions[0].values: must be specified when", na);
    assert_has(p, line);
    snprintf(line, sizeof(line), "%smatchExpressions[1].values: may not be specified when", na);
    assert_has(p, line);
    snprintf(line, sizeof(line), "%smatchExpressions[2].values[0]: invalid value \"ten\"", na);
    assert_has(p, line);
    snprintf(line, sizeof(line), "%smatchExpressions[3].operator: unsupported value", na);
    assert_has(p, line);
    snprintf(line, sizeof(line), "%smatchFields[0].key: unsupported value \"metadata.labels\"", na);
    assert_has(p, line);
    assert_has(p, "spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0]."
                  "weight: must be between 1 and 100");
    const char *pa = "spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].";
    snprintf(line, sizeof(line), "%stopologyKey: required", pa);
    assert_has(p, line);
    snprintf(line, sizeof(line), "%smatchLabelKeys: not supported by Drover", pa);
    assert_has(p, line);
    snprintf(line, sizeof(line), "%snamespaceSelector: not supported by Drover unless empty", pa);
    assert_has(p, line);
    assert_has(p, "spec.affinity.nodeAfinity: unknown field");
    assert_has(p, "spec.preemptionPolicy: unsupported value");
    free(p);
    cJSON_Delete(o);
}

/* PriorityClass (scheduling.k8s.io/v1): value required and at most 1e9 for user classes, the
 * "system-" prefix reserved for the two built-in classes at their own values, defaults. */
static void test_priority_class_rules(void **state)
{
    cJSON *o = yaml("apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: "
                    "gold}\nvalue: 1000\ndescription: for the important ones\n");
    char *p = check(o);
    assert_string_equal(p, "");
    assert_string_equal(get_s(o, "globalDefault"), "false");
    assert_string_equal(get_s(o, "preemptionPolicy"), "PreemptLowerPriority");
    free(p);
    cJSON_Delete(o);
    o = yaml("apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: "
             "system-node-critical}\nvalue: 2000001000\n");
    p = check(o);
    assert_string_equal(p, "");
    free(p);
    cJSON_Delete(o);
    o = yaml("apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: big}\n"
             "value: 1000000001\npreemptionPolicy: Sometimes\nspec: {}\n");
    p = check(o);
    assert_has(p, "value: maximum allowed value of a user defined priority is 1000000000");
    assert_has(p, "preemptionPolicy: unsupported value \"Sometimes\"");
    assert_has(p, "spec: unknown field");
    free(p);
    cJSON_Delete(o);
    o = yaml("apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: "
             "system-mine}\nvalue: 5\n");
    p = check(o);
    assert_has(p, "metadata.name: priority class names with 'system-' prefix are reserved");
    free(p);
    cJSON_Delete(o);
    o = yaml("apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: "
             "system-cluster-critical}\nvalue: 5\n");
    p = check(o);
    assert_has(p, "value: value of system-cluster-critical PriorityClass must be 2000000000");
    free(p);
    cJSON_Delete(o);
    o = yaml("apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: x}\n");
    p = check(o);
    assert_has(p, "value: required");
    free(p);
    cJSON_Delete(o);
}

/* topologySpreadConstraints as Kubernetes validates them. */
static void test_topology_spread_rules(void **state)
{
    cJSON *o = yaml("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: "
                    "c, image: x}]\n  topologySpreadConstraints:\n  - {maxSkew: 1, topologyKey: "
                    "zone, whenUnsatisfiable: DoNotSchedule, minDomains: 2, labelSelector: "
                    "{matchLabels: {app: a}}, nodeTaintsPolicy: Honor}\n  - {maxSkew: 2, "
                    "topologyKey: kubernetes.io/hostname, whenUnsatisfiable: ScheduleAnyway}\n");
    char *p = check(o);
    assert_string_equal(p, "");
    free(p);
    cJSON_Delete(o);
    o = yaml("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, "
             "image: x}]\n  topologySpreadConstraints:\n  - {maxSkew: 0, topologyKey: zone, "
             "whenUnsatisfiable: ScheduleAnyway, minDomains: 2, matchLabelKeys: [a]}\n"
             "  - {maxSkew: 1, topologyKey: zone, whenUnsatisfiable: ScheduleAnyway, "
             "nodeAffinityPolicy: Sometimes}\n  - {maxSkew: 1, whenUnsatisfiable: Maybe}\n");
    p = check(o);
    assert_has(p, "spec.topologySpreadConstraints[0].maxSkew: must be greater than zero");
    assert_has(p, "spec.topologySpreadConstraints[0].minDomains: can only use minDomains if "
                  "whenUnsatisfiable=DoNotSchedule");
    assert_has(p, "spec.topologySpreadConstraints[0].matchLabelKeys: not supported by Drover");
    assert_has(p, "spec.topologySpreadConstraints[1].topologyKey: duplicate value");
    assert_has(p, "spec.topologySpreadConstraints[1].nodeAffinityPolicy: unsupported value");
    assert_has(p, "spec.topologySpreadConstraints[2].topologyKey: required");
    assert_has(p, "spec.topologySpreadConstraints[2].whenUnsatisfiable: unsupported value");
    free(p);
    cJSON_Delete(o);
}

static void test_workload_restart_policy(void **state)
{
    char text[2048];
    snprintf(text, sizeof(text), "%s        restartPolicy: Never\n", minimal_deploy);
    /* restartPolicy sits under the template's pod spec: append at that indentation. */
    snprintf(text, sizeof(text),
             "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: d}\nspec:\n"
             "  selector: {matchLabels: {app: d}}\n  template:\n    metadata: {labels: {app: d}}\n"
             "    spec:\n      restartPolicy: Never\n      containers: [{name: c, image: x}]\n");
    cJSON *o = yaml(text);
    char *p = check(o);
    assert_has(p, "spec.template.spec.restartPolicy: unsupported value \"Never\"");
    free(p);
    cJSON_Delete(o);
    snprintf(text, sizeof(text),
             "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: d}\nspec:\n"
             "  selector: {matchLabels: {app: d}}\n  template:\n    metadata: {labels: {app: d}}\n"
             "    spec:\n      containers: [{name: c, image: x}]\n");
    o = yaml(text);
    p = check(o);
    assert_string_equal(p, "");
    assert_string_equal(get_s(o, "spec.updateStrategy.type"), "RollingUpdate");
    assert_string_equal(get_s(o, "spec.updateStrategy.rollingUpdate.maxUnavailable"), "1");
    assert_string_equal(get_s(o, "spec.updateStrategy.rollingUpdate.maxSurge"), "0");
    free(p);
    cJSON_Delete(o);
}

static void test_diags_are_bounded(void **state)
{
    /* 5,000 broken containers: the report is capped and says how many more there were. */
    cJSON *o = yaml("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: []}\n");
    cJSON *ctrs = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "spec"), "containers");
    for (int i = 0; i < 5000; i++)
        cJSON_AddItemToArray(ctrs, cJSON_CreateObject());
    drv_diags_t d = {0};
    assert_int_equal(drv_model_normalize(o, &d), DRV_ERR_INVALID);
    assert_int_equal(d.count, DRV_DIAGS_MAX);
    assert_true(d.dropped > 5000);
    char *s = drv_diags_format(&d, "x: ");
    assert_non_null(strstr(s, "more problems"));
    free(s);
    drv_diags_free(&d);
    cJSON_Delete(o);
}

/* Every sample manifest is valid, and normalizing is idempotent and deterministic. */
static void test_samples_idempotent(void **state)
{
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s/manifests/valid", getenv("DROVER_TESTDATA"));
    char **files = NULL;
    size_t n = 0;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_manifest_list_files(dir, false, &files, &n, &err), DRV_OK);
    assert_true(n >= 5);
    drv_manifest_set_t set = {0};
    for (size_t i = 0; i < n; i++)
        assert_int_equal(drv_manifest_load_file(files[i], &set, &err), DRV_OK);
    assert_true(set.count >= 10);
    for (size_t i = 0; i < set.count; i++) {
        char *p = check(set.items[i].obj);
        if (*p)
            fail_msg("%s document %u: %s", set.items[i].source, set.items[i].doc, p);
        free(p);
        char *once = drv_model_to_json(set.items[i].obj, false);
        cJSON *again = cJSON_Parse(once);
        p = check(again);
        assert_string_equal(p, "");
        char *twice = drv_model_to_json(again, false);
        assert_string_equal(once, twice);
        free(p);
        free(once);
        free(twice);
        cJSON_Delete(again);
    }
    drv_manifest_set_free(&set);
    drv_manifest_files_free(files, n);
}

static void test_canonical_key_order(void **state)
{
    cJSON *o = cJSON_Parse("{\"b\":1,\"a\":{\"z\":1,\"y\":[{\"d\":1,\"c\":2}]},\"c\":3}");
    char *s = drv_model_to_json(o, false);
    assert_string_equal(s, "{\"a\":{\"y\":[{\"c\":2,\"d\":1}],\"z\":1},\"b\":1,\"c\":3}");
    free(s);
    s = drv_model_to_json(o, true);
    assert_non_null(strstr(s, "\n  \"a\": {"));
    free(s);
    cJSON_Delete(o);
}

/* The Secrets the agent makes for pods' tokens cannot be named by any pod: no pod reads
 * another pod's token through them. */
static void test_token_secrets_reserved(void **state)
{
    (void)state;
    cJSON *o = yaml(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: thief}\nspec:\n"
        "  containers: [{name: c, image: busybox, env: [{name: T, valueFrom: {secretKeyRef: "
        "{name: drover-sa-token-abc, key: token}}}], envFrom: [{secretRef: {name: "
        "drover-projected-a-b}}]}]\n"
        "  imagePullSecrets: [{name: drover-sa-token-x}]\n"
        "  volumes:\n  - {name: a, projected: {sources: [{secret: {name: drover-sa-token-u}}]}}\n"
        "  - {name: b, secret: {secretName: drover-projected-x}}\n");
    char *p = check(o);
    assert_has(p, "spec.containers[0].env[0].valueFrom.secretKeyRef.name: \"drover-sa-token-abc\"");
    assert_has(p, "spec.containers[0].envFrom[0].secretRef.name: \"drover-projected-a-b\"");
    assert_has(p, "spec.imagePullSecrets[0].name: \"drover-sa-token-x\"");
    assert_has(p, "spec.volumes[0].projected.sources[0].secret.name: \"drover-sa-token-u\"");
    assert_has(p, "spec.volumes[1].secret.secretName: \"drover-projected-x\": names starting");
    free(p);
    cJSON_Delete(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deployment_defaults),
        cmocka_unit_test(test_pull_policy_follows_tag),
        cmocka_unit_test(test_missing_image_names_path),
        cmocka_unit_test(test_every_problem_reported),
        cmocka_unit_test(test_unknown_and_unsupported_fields),
        cmocka_unit_test(test_informational_fields_dropped_or_kept),
        cmocka_unit_test(test_secret_string_data_folded),
        cmocka_unit_test(test_secret_problems),
        cmocka_unit_test(test_configmap_rules),
        cmocka_unit_test(test_quantities_canonical),
        cmocka_unit_test(test_rolling_update_rules),
        cmocka_unit_test(test_probe_rules),
        cmocka_unit_test(test_kind_and_api_version),
        cmocka_unit_test(test_kind_names),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_service_rules),
        cmocka_unit_test(test_node_and_event),
        cmocka_unit_test(test_tolerations_and_env),
        cmocka_unit_test(test_podmisc_fields),
        cmocka_unit_test(test_host_ports_and_network),
        cmocka_unit_test(test_problems_reported_once),
        cmocka_unit_test(test_host_network_defaults_host_port),
        cmocka_unit_test(test_affinity_rules),
        cmocka_unit_test(test_priority_class_rules),
        cmocka_unit_test(test_topology_spread_rules),
        cmocka_unit_test(test_workload_restart_policy),
        cmocka_unit_test(test_diags_are_bounded),
        cmocka_unit_test(test_samples_idempotent),
        cmocka_unit_test(test_canonical_key_order),
        cmocka_unit_test(test_lifecycle_rules),
        cmocka_unit_test(test_sidecar_rules),
        cmocka_unit_test(test_token_secrets_reserved),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
