/* agent/pod/satoken.c: a pod's token from desired state becomes a clear Secret (token, ca.crt,
 * namespace), a secret volume at the Kubernetes path in every container and the
 * KUBERNETES_SERVICE_* environment from hub.url; sealed tokens open with the node's key in the
 * state directory; a token for another node, or for no pod, is left out and the rest applies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "drover/base64.h"
#include "drover/file.h"
#include "drover/fmt.h"
#include "drover/json.h"
#include "drover/pki.h"
#include "drover/protocol.h"
#include "pod/satoken.h"

static const char *secret_data(const cJSON *desired, const char *key)
{
    const cJSON *s = cJSON_GetArrayItem(drv_json_get(desired, "secrets"), 0);
    return drv_json_str(drv_json_get(s, "data"), key);
}

static char *decoded(const char *b64)
{
    unsigned char *out = NULL;
    size_t n = 0;
    assert_int_equal(drv_base64_decode(b64, strlen(b64), &out, &n), DRV_OK);
    return (char *)out;
}

static const cJSON *env_named(const cJSON *ctr, const char *name)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, drv_json_get(ctr, "env"))
    {
        if (!strcmp(drv_json_str_or(e, "name", ""), name))
            return e;
    }
    return NULL;
}

static void test_apply(void **state)
{
    (void)state;
    char dir[] = "/tmp/drv-satoken-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    drv_error_t err = DRV_ERROR_INIT;
    /* the node's key and the hub CA, as enrollment leaves them */
    char *key = NULL, *pub = NULL;
    assert_int_equal(drv_pki_key_generate(&key, &err), DRV_OK);
    assert_int_equal(drv_pki_key_public(key, &pub, &err), DRV_OK);
    assert_int_equal(drv_fmt(path, sizeof(path), "%s/identity", dir), DRV_OK);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(drv_fmt(path, sizeof(path), "%s/identity/node.key", dir), DRV_OK);
    assert_int_equal(drv_file_write_atomic(path, key, strlen(key), 0600, &err), DRV_OK);
    assert_int_equal(drv_fmt(path, sizeof(path), "%s/identity/ca.crt", dir), DRV_OK);
    assert_int_equal(drv_file_write_atomic(path, "CA", 2, 0644, &err), DRV_OK);

    cJSON *desired = cJSON_Parse(
        "{\"pods\": [{\"metadata\": {\"name\": \"p\", \"namespace\": \"edge\", \"uid\": \"u-1\"},"
        "\"spec\": {\"containers\": [{\"name\": \"c\", \"env\": [{\"name\": "
        "\"KUBERNETES_SERVICE_PORT\", \"value\": \"mine\"}]}], \"initContainers\": [{\"name\": "
        "\"i\", \"volumeMounts\": [{\"name\": \"x\", \"mountPath\": "
        "\"/var/run/secrets/kubernetes.io/serviceaccount\"}]}]}},"
        "{\"metadata\": {\"name\": \"q\", \"uid\": \"u-2\"}, \"spec\": {\"containers\": "
        "[{\"name\": \"c\"}]}}], \"secrets\": []}");
    assert_non_null(desired);
    cJSON *toks = cJSON_AddArrayToObject(desired, "serviceAccountTokens");
    cJSON_AddItemToArray(toks,
                         drv_proto_satoken_build("dev1", "u-1", "jwt-1", 1800000000, pub, &err));
    /* another node's token, and one for no pod here: skipped */
    cJSON_AddItemToArray(toks,
                         drv_proto_satoken_build("dev2", "u-2", "jwt-2", 1800000000, pub, &err));
    cJSON_AddItemToArray(toks,
                         drv_proto_satoken_build("dev1", "u-9", "jwt-9", 1800000000, NULL, &err));
    assert_int_equal(pod_satoken_apply(desired, dir, "dev1", "https://10.0.0.5:6443", &err),
                     DRV_OK);
    assert_null(drv_json_get(desired, "serviceAccountTokens"));
    assert_int_equal(cJSON_GetArraySize(drv_json_get(desired, "secrets")), 1);
    char *tok = decoded(secret_data(desired, "token")),
         *ns = decoded(secret_data(desired, "namespace")),
         *ca = decoded(secret_data(desired, "ca.crt"));
    assert_string_equal(tok, "jwt-1");
    assert_string_equal(ns, "edge");
    assert_string_equal(ca, "CA");
    free(tok);
    free(ns);
    free(ca);
    const cJSON *s = cJSON_GetArrayItem(drv_json_get(desired, "secrets"), 0);
    assert_string_equal(drv_json_str_at(s, "metadata.name"), POD_SATOKEN_SECRET_PREFIX "u-1");
    assert_string_equal(drv_json_str_at(s, "metadata.namespace"), "edge");

    const cJSON *pod = cJSON_GetArrayItem(drv_json_get(desired, "pods"), 0);
    const cJSON *vol = cJSON_GetArrayItem(drv_json_at(pod, "spec.volumes"), 0);
    assert_string_equal(drv_json_str(vol, "name"), POD_SATOKEN_VOLUME);
    assert_string_equal(drv_json_str_at(vol, "secret.secretName"), POD_SATOKEN_SECRET_PREFIX "u-1");
    const cJSON *c = cJSON_GetArrayItem(drv_json_at(pod, "spec.containers"), 0);
    const cJSON *m = cJSON_GetArrayItem(drv_json_get(c, "volumeMounts"), 0);
    assert_string_equal(drv_json_str(m, "mountPath"), POD_SATOKEN_MOUNT);
    assert_true(cJSON_IsTrue(drv_json_get(m, "readOnly")));
    assert_string_equal(drv_json_str(env_named(c, "KUBERNETES_SERVICE_HOST"), "value"), "10.0.0.5");
    /* the container's own value stays */
    assert_string_equal(drv_json_str(env_named(c, "KUBERNETES_SERVICE_PORT"), "value"), "mine");
    assert_string_equal(drv_json_str(env_named(c, "KUBERNETES_SERVICE_PORT_HTTPS"), "value"),
                        "6443");
    /* a container that mounts something there already keeps it */
    const cJSON *ic = cJSON_GetArrayItem(drv_json_at(pod, "spec.initContainers"), 0);
    assert_int_equal(cJSON_GetArraySize(drv_json_get(ic, "volumeMounts")), 1);
    /* the pod whose token was another node's: untouched */
    const cJSON *q = cJSON_GetArrayItem(drv_json_get(desired, "pods"), 1);
    assert_null(drv_json_at(q, "spec.volumes"));
    assert_null(drv_json_get(cJSON_GetArrayItem(drv_json_at(q, "spec.containers"), 0), "env"));

    /* applied again (same document): nothing added twice */
    toks = cJSON_AddArrayToObject(desired, "serviceAccountTokens");
    cJSON_AddItemToArray(toks,
                         drv_proto_satoken_build("dev1", "u-1", "jwt-1", 1800000000, pub, &err));
    assert_int_equal(pod_satoken_apply(desired, dir, "dev1", "https://[fd00::1]:443", &err),
                     DRV_OK);
    assert_int_equal(cJSON_GetArraySize(drv_json_at(pod, "spec.volumes")), 1);
    cJSON_Delete(desired);
    drv_pki_secret_free(key);
    free(pub);
    char cmd[128];
    assert_int_equal(drv_fmt(cmd, sizeof(cmd), "rm -rf %s", dir), DRV_OK);
    assert_int_equal(system(cmd), 0);
}

/* A projected volume as Kubernetes' admission writes it (token, kube-root-ca.crt, namespace),
 * with automount off: a secret volume over the files, and no default mount. */
static void test_projected(void **state)
{
    (void)state;
    drv_error_t err = DRV_ERROR_INIT;
    cJSON *desired = cJSON_Parse(
        "{\"pods\": [{\"metadata\": {\"name\": \"p\", \"namespace\": \"edge\", \"uid\": \"u-1\","
        "\"labels\": {\"b\": \"2\", \"a\": \"1\"}},"
        "\"spec\": {\"automountServiceAccountToken\": false, \"containers\": [{\"name\": \"c\"}],"
        "\"volumes\": [{\"name\": \"kube-api-access-x\", \"projected\": {\"defaultMode\": 420,"
        "\"sources\": [{\"serviceAccountToken\": {\"expirationSeconds\": 3607, \"path\": "
        "\"token\"}}, {\"configMap\": {\"name\": \"kube-root-ca.crt\", \"items\": [{\"key\": "
        "\"ca.crt\", \"path\": \"ca.crt\"}]}}, {\"downwardAPI\": {\"items\": [{\"path\": "
        "\"namespace\", \"fieldRef\": {\"fieldPath\": \"metadata.namespace\"}}, {\"path\": "
        "\"labels\", \"fieldRef\": {\"fieldPath\": \"metadata.labels\"}}]}}]}}]}}],"
        "\"configMaps\": [{\"metadata\": {\"name\": \"kube-root-ca.crt\", \"namespace\": "
        "\"edge\"}, \"data\": {\"ca.crt\": \"PEM\", \"other\": \"x\"}}], \"secrets\": []}");
    assert_non_null(desired);
    cJSON *toks = cJSON_AddArrayToObject(desired, "serviceAccountTokens");
    cJSON *ent = drv_proto_satoken_build("dev1", "u-1", "jwt-1", 1800000000, NULL, &err);
    cJSON_AddFalseToObject(ent, "automount");
    cJSON_AddItemToArray(toks, ent);
    assert_int_equal(pod_satoken_apply(desired, "/nonexistent", "dev1", "", &err), DRV_OK);
    const cJSON *pod = cJSON_GetArrayItem(drv_json_get(desired, "pods"), 0);
    /* no default mount */
    assert_int_equal(cJSON_GetArraySize(drv_json_at(pod, "spec.volumes")), 1);
    assert_null(
        drv_json_get(cJSON_GetArrayItem(drv_json_at(pod, "spec.containers"), 0), "volumeMounts"));
    const cJSON *vol = cJSON_GetArrayItem(drv_json_at(pod, "spec.volumes"), 0);
    assert_null(drv_json_get(vol, "projected"));
    assert_string_equal(drv_json_str_at(vol, "secret.secretName"),
                        "drover-projected-u-1-kube-api-access-x");
    const cJSON *items = drv_json_at(vol, "secret.items");
    assert_int_equal(cJSON_GetArraySize(items), 4);
    static const char *const paths[] = {"token", "ca.crt", "namespace", "labels"};
    static const char *const want[] = {"jwt-1", "PEM", "edge", "a=\"1\"\nb=\"2\""};
    const cJSON *s = cJSON_GetArrayItem(drv_json_get(desired, "secrets"), 0);
    for (int i = 0; i < 4; i++) {
        const cJSON *it = cJSON_GetArrayItem(items, i);
        assert_string_equal(drv_json_str(it, "path"), paths[i]);
        char *v = decoded(drv_json_str(drv_json_get(s, "data"), drv_json_str(it, "key")));
        assert_string_equal(v, want[i]);
        free(v);
    }
    cJSON_Delete(desired);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_apply),
        cmocka_unit_test(test_projected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
