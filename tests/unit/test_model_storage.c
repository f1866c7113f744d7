/* PersistentVolumeClaim, PersistentVolume and StorageClass validation and defaults
 * (shared/src/model_storage.c), and the Pod volume source persistentVolumeClaim: Kubernetes'
 * defaults land in the object, quantities come out canonical, every problem names its field,
 * and what node-local volumes cannot do is refused by name. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "drover/json.h"
#include "drover/model.h"

#define PVC                                                                                        \
    "{\"apiVersion\":\"v1\",\"kind\":\"PersistentVolumeClaim\",\"metadata\":{\"name\":\"data\"},"
#define PV "{\"apiVersion\":\"v1\",\"kind\":\"PersistentVolume\",\"metadata\":{\"name\":\"pv1\"},"
#define SC                                                                                         \
    "{\"apiVersion\":\"storage.k8s.io/v1\",\"kind\":\"StorageClass\",\"metadata\":{\"name\":"      \
    "\"fast\"},"

static cJSON *norm(const char *json, drv_err_t *rc, char **problems)
{
    cJSON *o = cJSON_Parse(json);
    assert_non_null(o);
    drv_diags_t d = {0};
    *rc = drv_model_normalize(o, &d);
    *problems = drv_diags_format(&d, NULL);
    drv_diags_free(&d);
    return o;
}

static cJSON *ok(const char *json)
{
    drv_err_t rc;
    char *p;
    cJSON *o = norm(json, &rc, &p);
    if (rc != DRV_OK)
        fail_msg("refused: %s", p ? p : "?");
    free(p);
    return o;
}

static void bad(const char *json, const char *expect)
{
    drv_err_t rc;
    char *p;
    cJSON *o = norm(json, &rc, &p);
    if (rc == DRV_OK || !p || !strstr(p, expect))
        fail_msg("expected \"%s\", got %d: %s", expect, (int)rc, p ? p : "");
    free(p);
    cJSON_Delete(o);
}

static void test_kinds(void **state)
{
    (void)state;
    assert_int_equal(drv_kind_parse("pvc"), DRV_KIND_PVC);
    assert_int_equal(drv_kind_parse("persistentvolumes"), DRV_KIND_PV);
    assert_int_equal(drv_kind_parse("sc"), DRV_KIND_STORAGECLASS);
    assert_true(drv_kind_namespaced(DRV_KIND_PVC));
    assert_false(drv_kind_namespaced(DRV_KIND_PV));
    assert_false(drv_kind_namespaced(DRV_KIND_STORAGECLASS));
    assert_string_equal(drv_kind_api_version(DRV_KIND_STORAGECLASS), "storage.k8s.io/v1");
}

static void test_pvc(void **state)
{
    (void)state;
    cJSON *o = ok(PVC "\"spec\":{\"accessModes\":[\"ReadWriteOnce\"],"
                      "\"resources\":{\"requests\":{\"storage\":\"1024Mi\"}}},"
                      "\"status\":{\"phase\":\"Bound\"}}");
    assert_string_equal(drv_json_str_at(o, "spec.resources.requests.storage"), "1Gi");
    assert_string_equal(drv_json_str_at(o, "spec.volumeMode"), "Filesystem");
    assert_string_equal(drv_json_str_at(o, "metadata.namespace"), "default");
    assert_null(drv_json_get(o, "status"));
    cJSON_Delete(o);
    o = ok(PVC "\"spec\":{\"accessModes\":[\"ReadWriteOncePod\"],\"storageClassName\":\"local-"
               "path\",\"resources\":{\"requests\":{\"storage\":\"500M\"}}}}");
    assert_string_equal(drv_json_str_at(o, "spec.resources.requests.storage"), "500M");
    cJSON_Delete(o);
    bad(PVC "\"spec\":{\"accessModes\":[\"ReadWriteMany\"],"
            "\"resources\":{\"requests\":{\"storage\":\"1Gi\"}}}}",
        "spec.accessModes[0]: ReadWriteMany is not supported by Drover");
    bad(PVC "\"spec\":{\"accessModes\":[],\"resources\":{\"requests\":{\"storage\":\"1Gi\"}}}}",
        "spec.accessModes: at least 1 access mode is required");
    bad(PVC "\"spec\":{\"accessModes\":[\"ReadWriteOncePod\",\"ReadWriteOnce\"],"
            "\"resources\":{\"requests\":{\"storage\":\"1Gi\"}}}}",
        "may not use ReadWriteOncePod with other access modes");
    bad(PVC
        "\"spec\":{\"accessModes\":[\"RWO\"],\"resources\":{\"requests\":{\"storage\":\"1Gi\"}}}}",
        "spec.accessModes[0]: unsupported value \"RWO\"");
    bad(PVC "\"spec\":{\"accessModes\":[\"ReadWriteOnce\"],\"resources\":{\"requests\":{}}}}",
        "spec.resources.requests.storage: required");
    bad(PVC "\"spec\":{\"accessModes\":[\"ReadWriteOnce\"],"
            "\"resources\":{\"requests\":{\"storage\":\"ten\"}}}}",
        "spec.resources.requests.storage: invalid quantity \"ten\"");
    bad(PVC "\"spec\":{\"accessModes\":[\"ReadWriteOnce\"],"
            "\"resources\":{\"requests\":{\"storage\":\"0\"}}}}",
        "spec.resources.requests.storage: must be greater than zero");
    bad(PVC "\"spec\":{\"accessModes\":[\"ReadWriteOnce\"],"
            "\"resources\":{\"requests\":{\"storage\":\"1Gi\",\"cpu\":\"1\"}}}}",
        "spec.resources.requests[cpu]: unsupported resource");
    bad(PVC "\"spec\":{\"accessModes\":[\"ReadWriteOnce\"],\"volumeMode\":\"Block\","
            "\"resources\":{\"requests\":{\"storage\":\"1Gi\"}}}}",
        "spec.volumeMode: Block is not supported by Drover");
    bad(PVC "\"spec\":{\"accessModes\":[\"ReadWriteOnce\"],\"dataSource\":{},"
            "\"resources\":{\"requests\":{\"storage\":\"1Gi\"}}}}",
        "spec.dataSource: not supported by Drover");
    bad(PVC "\"spec\":{\"accessModes\":[\"ReadWriteOnce\"],\"storageClassName\":\"Bad_Name\","
            "\"resources\":{\"requests\":{\"storage\":\"1Gi\"}}}}",
        "spec.storageClassName: invalid value");
    bad(PVC "\"spec\":{\"accessModes\":[\"ReadWriteOnce\"]}}", "spec.resources: required");
}

static void test_pv(void **state)
{
    (void)state;
    cJSON *o =
        ok(PV "\"spec\":{\"capacity\":{\"storage\":\"2Gi\"},\"accessModes\":[\"ReadWriteOnce\"],"
              "\"local\":{\"path\":\"/var/lib/drover/storage/x\"},\"nodeAffinity\":{\"required\":"
              "{\"nodeSelectorTerms\":[{\"matchExpressions\":[{\"key\":\"kubernetes.io/"
              "hostname\",\"operator\":\"In\",\"values\":[\"dev1\"]}]}]}},"
              "\"claimRef\":{\"namespace\":\"default\",\"name\":\"data\"}}}");
    assert_string_equal(drv_json_str_at(o, "spec.persistentVolumeReclaimPolicy"), "Retain");
    assert_null(drv_json_at(o, "metadata.namespace"));
    cJSON_Delete(o);
    o = ok(PV "\"spec\":{\"capacity\":{\"storage\":\"1Gi\"},\"accessModes\":[\"ReadOnlyMany\"],"
              "\"persistentVolumeReclaimPolicy\":\"Delete\",\"hostPath\":{\"path\":\"/srv/x\"}}}");
    assert_string_equal(drv_json_str_at(o, "spec.persistentVolumeReclaimPolicy"), "Delete");
    cJSON_Delete(o);
    bad(PV "\"spec\":{\"capacity\":{\"storage\":\"1Gi\"},\"accessModes\":[\"ReadWriteOnce\"],"
           "\"local\":{\"path\":\"/srv/x\"}}}",
        "spec.nodeAffinity: required for a local volume");
    bad(PV "\"spec\":{\"capacity\":{\"storage\":\"1Gi\"},\"accessModes\":[\"ReadWriteOnce\"],"
           "\"nfs\":{\"server\":\"a\",\"path\":\"/x\"}}}",
        "spec.nfs: not supported by Drover");
    bad(PV "\"spec\":{\"capacity\":{\"storage\":\"1Gi\"},\"accessModes\":[\"ReadWriteOnce\"]}}",
        "spec: must specify exactly one volume source: hostPath or local");
    bad(PV "\"spec\":{\"accessModes\":[\"ReadWriteOnce\"],\"hostPath\":{\"path\":\"/x\"}}}",
        "spec.capacity: required");
    bad(PV "\"spec\":{\"capacity\":{\"storage\":\"1Gi\"},\"accessModes\":[\"ReadWriteOnce\"],"
           "\"persistentVolumeReclaimPolicy\":\"Recycle\",\"hostPath\":{\"path\":\"/x\"}}}",
        "spec.persistentVolumeReclaimPolicy: Recycle is not supported by Drover");
    bad(PV "\"spec\":{\"capacity\":{\"storage\":\"1Gi\"},\"accessModes\":[\"ReadWriteOnce\"],"
           "\"hostPath\":{\"path\":\"relative\"}}}",
        "spec.hostPath.path: must be an absolute path");
    bad(PV
        "\"spec\":{\"capacity\":{\"storage\":\"1Gi\"},\"accessModes\":[\"ReadWriteOnce\"],"
        "\"local\":{\"path\":\"/x\"},\"nodeAffinity\":{\"required\":{\"nodeSelectorTerms\":"
        "[{\"matchExpressions\":[{\"key\":\"kubernetes.io/hostname\",\"operator\":\"In\"}]}]}}}}",
        "spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].values: must be "
        "specified when the operator is In");
}

static void test_storageclass(void **state)
{
    (void)state;
    cJSON *o = ok(SC "\"provisioner\":\"drover.io/local-path\"}");
    assert_string_equal(drv_json_str(o, "reclaimPolicy"), "Delete");
    assert_string_equal(drv_json_str(o, "volumeBindingMode"), "Immediate");
    cJSON_Delete(o);
    o = ok(SC "\"provisioner\":\"kubernetes.io/no-provisioner\",\"reclaimPolicy\":\"Retain\","
              "\"volumeBindingMode\":\"WaitForFirstConsumer\",\"parameters\":{\"a\":\"b\"}}");
    assert_string_equal(drv_json_str(o, "reclaimPolicy"), "Retain");
    cJSON_Delete(o);
    bad(SC "\"reclaimPolicy\":\"Delete\"}", "provisioner: required");
    bad(SC "\"provisioner\":\"x\",\"volumeBindingMode\":\"Later\"}",
        "volumeBindingMode: unsupported value \"Later\"");
    bad(SC "\"provisioner\":\"x\",\"allowVolumeExpansion\":true}",
        "allowVolumeExpansion: true is not supported by Drover");
    bad(SC "\"provisioner\":\"x\",\"mountOptions\":[\"ro\"]}", "mountOptions: not supported");
    bad(SC "\"provisioner\":\"x\",\"spec\":{}}", "spec: unknown field");
}

static void test_pod_volume(void **state)
{
    (void)state;
    cJSON *o = ok("{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\"},"
                  "\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"busybox\","
                  "\"volumeMounts\":[{\"name\":\"d\",\"mountPath\":\"/data\"}]}],"
                  "\"volumes\":[{\"name\":\"d\",\"persistentVolumeClaim\":{\"claimName\":\"data\","
                  "\"readOnly\":false}}]}}");
    cJSON_Delete(o);
    bad("{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\"},"
        "\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"busybox\"}],"
        "\"volumes\":[{\"name\":\"d\",\"persistentVolumeClaim\":{\"readOnly\":true}}]}}",
        "spec.volumes[0].persistentVolumeClaim.claimName: required");
    bad("{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\"},"
        "\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"busybox\"}],"
        "\"volumes\":[{\"name\":\"d\",\"persistentVolumeClaim\":{\"claimName\":\"x\"},"
        "\"emptyDir\":{}}]}}",
        "must specify exactly one volume source");
}

static void test_keep_binding(void **state)
{
    (void)state;
    cJSON *old = ok(PVC "\"spec\":{\"accessModes\":[\"ReadWriteOnce\"],\"volumeName\":\"pvc-1\","
                        "\"storageClassName\":\"local-path\",\"resources\":{\"requests\":{"
                        "\"storage\":\"1Gi\"}}}}");
    cJSON *obj = ok(PVC "\"spec\":{\"accessModes\":[\"ReadWriteOnce\"],\"resources\":{"
                        "\"requests\":{\"storage\":\"1Gi\"}}}}");
    drv_model_pvc_keep_binding(old, obj);
    assert_string_equal(drv_json_str_at(obj, "spec.volumeName"), "pvc-1");
    assert_string_equal(drv_json_str_at(obj, "spec.storageClassName"), "local-path");
    cJSON_Delete(obj);
    /* A class the user names stays the user's. */
    obj = ok(PVC "\"spec\":{\"accessModes\":[\"ReadWriteOnce\"],\"storageClassName\":\"\","
                 "\"resources\":{\"requests\":{\"storage\":\"1Gi\"}}}}");
    drv_model_pvc_keep_binding(old, obj);
    assert_string_equal(drv_json_str_at(obj, "spec.storageClassName"), "");
    cJSON_Delete(obj);
    cJSON_Delete(old);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kinds),      cmocka_unit_test(test_pvc),
        cmocka_unit_test(test_pv),         cmocka_unit_test(test_storageclass),
        cmocka_unit_test(test_pod_volume), cmocka_unit_test(test_keep_binding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
