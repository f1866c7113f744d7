/* Secrets at rest on the device: sealed Secrets open only with this node's key and context,
 * in memory, for the pods that use them (and a broken one fails only its pods, with an error
 * naming it and not its data); the supervisor keeps clear Secrets out of <state_dir> (only in
 * <run_dir>/secrets) and merges them back after an agent restart. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "config/config.h"
#include "drover/file.h"
#include "drover/pki.h"
#include "drover/protocol.h"
#include "pod/secrets.h"
#include "pod/supervisor.h"

/* "VALUE-cl3ar" / "VALUE-s3aled" and their base64, searched for in files. */
#define CLEAR_VALUE "VALUE-cl3ar"
#define CLEAR_B64 "VkFMVUUtY2wzYXI="
#define SEALED_VALUE "VALUE-s3aled"
#define SEALED_B64 "VkFMVUUtczNhbGVk"

struct fx {
    char dir[64];
    char state[128], run[128], key_path[256];
    char *key, *pub, *other_key, *other_pub;
};

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(p);
}

static char *read_all(const char *path)
{
    char *text = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_file_read_capped(path, 1 << 20, &text, NULL, &err) != DRV_OK)
        return NULL;
    return text;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/drv-secrets-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->state, sizeof(f->state), "%s/state", f->dir);
    snprintf(f->run, sizeof(f->run), "%s/run", f->dir);
    snprintf(f->key_path, sizeof(f->key_path), "%s/identity/node.key", f->state);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_pki_key_generate(&f->key, &err), DRV_OK);
    assert_int_equal(drv_pki_key_public(f->key, &f->pub, &err), DRV_OK);
    assert_int_equal(drv_pki_key_generate(&f->other_key, &err), DRV_OK);
    assert_int_equal(drv_pki_key_public(f->other_key, &f->other_pub, &err), DRV_OK);
    char idir[256];
    snprintf(idir, sizeof(idir), "%s/identity", f->state);
    assert_int_equal(drv_file_mkdir_p(idir, 0700, &err), DRV_OK);
    assert_int_equal(drv_file_write_atomic(f->key_path, f->key, strlen(f->key), 0600, &err),
                     DRV_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    nftw(f->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    drv_pki_secret_free(f->key);
    drv_pki_secret_free(f->other_key);
    free(f->pub);
    free(f->other_pub);
    free(f);
    return 0;
}

/* A Secret as the hub sends it: {"data": {key: b64}} sealed to pub for node/ns/name. */
static cJSON *sealed_secret(const char *pub, const char *node, const char *name, const char *key,
                            const char *b64)
{
    char plain[256], context[256];
    snprintf(plain, sizeof(plain), "{\"data\":{\"%s\":\"%s\"}}", key, b64);
    snprintf(context, sizeof(context), "drover/v1 secret %s/default/%s", node, name);
    char *blob = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_pki_seal(pub, context, plain, strlen(plain), &blob, &err), DRV_OK);
    cJSON *s = cJSON_CreateObject();
    cJSON_AddStringToObject(s, "apiVersion", "v1");
    cJSON_AddStringToObject(s, "kind", "Secret");
    cJSON *meta = cJSON_AddObjectToObject(s, "metadata");
    cJSON_AddStringToObject(meta, "name", name);
    cJSON_AddStringToObject(meta, "namespace", "default");
    cJSON_AddStringToObject(s, "sealedData", blob);
    free(blob);
    return s;
}

static cJSON *clear_secret(const char *name, const char *key, const char *b64)
{
    char text[512];
    snprintf(text, sizeof(text),
             "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"%s\","
             "\"namespace\":\"default\"},\"data\":{\"%s\":\"%s\"}}",
             name, key, b64);
    cJSON *s = cJSON_Parse(text);
    assert_non_null(s);
    return s;
}

/* A pod using the Secret vol_secret as a volume and env_secret through secretKeyRef. */
static cJSON *pod_using(const char *vol_secret, const char *env_secret)
{
    char text[1024];
    snprintf(text, sizeof(text),
             "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"app\","
             "\"namespace\":\"default\",\"uid\":\"u1\"},\"spec\":{\"nodeName\":\"n1\","
             "\"containers\":[{\"name\":\"main\",\"image\":\"busybox\",\"env\":[{\"name\":"
             "\"T\",\"valueFrom\":{\"secretKeyRef\":{\"name\":\"%s\",\"key\":\"token\"}}}]}],"
             "\"volumes\":[{\"name\":\"s\",\"secret\":{\"secretName\":\"%s\"}}]}}",
             env_secret, vol_secret);
    cJSON *p = cJSON_Parse(text);
    assert_non_null(p);
    return p;
}

static const char *data_of(const cJSON *secret, const char *key)
{
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(secret, "data");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(d, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* ---- opening ---------------------------------------------------------------------------- */

static void test_unseal_right_key_and_context_only(void **state)
{
    struct fx *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    cJSON *s = sealed_secret(f->pub, "n1", "db", "token", SEALED_B64);
    cJSON *copy = cJSON_Duplicate(s, 1);
    assert_int_equal(pod_secret_unseal(copy, "n1", f->key, &err), DRV_OK);
    assert_string_equal(data_of(copy, "token"), SEALED_B64);
    assert_null(cJSON_GetObjectItemCaseSensitive(copy, "sealedData"));
    pod_secret_wipe_delete(copy);

    /* Another node's key, another node's name (context): refused, the Secret untouched. */
    copy = cJSON_Duplicate(s, 1);
    drv_error_clear(&err);
    assert_int_equal(pod_secret_unseal(copy, "n1", f->other_key, &err), DRV_ERR_INTEGRITY);
    assert_non_null(strstr(drv_error_msg(&err), "sealedData"));
    assert_true(pod_secret_is_sealed(copy));
    drv_error_clear(&err);
    assert_int_equal(pod_secret_unseal(copy, "n2", f->key, &err), DRV_ERR_INTEGRITY);
    /* Tampered: one character of the blob changed. */
    cJSON *blob = cJSON_GetObjectItemCaseSensitive(copy, "sealedData");
    size_t mid = strlen(blob->valuestring) / 2;
    blob->valuestring[mid] = blob->valuestring[mid] == 'A' ? 'B' : 'A';
    drv_error_clear(&err);
    assert_int_equal(pod_secret_unseal(copy, "n1", f->key, &err), DRV_ERR_INTEGRITY);
    assert_true(pod_secret_is_sealed(copy));
    pod_secret_wipe_delete(copy);
    cJSON_Delete(s);
}

/* As the hub seals (drv_proto_secret_seal), stringData included: opened into data, base64. */
static void test_unseal_what_the_hub_seals(void **state)
{
    struct fx *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    cJSON *s = cJSON_Parse(
        "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":"
        "\"db\",\"namespace\":\"default\"},\"stringData\":{\"token\":\"" SEALED_VALUE "\"}}");
    assert_non_null(s);
    assert_int_equal(drv_proto_secret_seal(s, "n1", f->pub, &err), DRV_OK);
    char *text = cJSON_PrintUnformatted(s);
    assert_null(strstr(text, SEALED_VALUE));
    free(text);
    assert_int_equal(pod_secret_unseal(s, "n1", f->key, &err), DRV_OK);
    assert_string_equal(data_of(s, "token"), SEALED_B64);
    assert_null(cJSON_GetObjectItemCaseSensitive(s, "stringData"));
    assert_false(pod_secret_is_sealed(s));
    pod_secret_wipe_delete(s);
}

static void test_open_for_pod(void **state)
{
    struct fx *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    cJSON *ns = cJSON_CreateObject();
    cJSON_AddItemToObject(ns, "db", sealed_secret(f->pub, "n1", "db", "token", SEALED_B64));
    cJSON_AddItemToObject(ns, "plain", clear_secret("plain", "token", CLEAR_B64));
    /* Sealed for another node's key: harmless as long as no pod of ours uses it. */
    cJSON_AddItemToObject(ns, "theirs",
                          sealed_secret(f->other_pub, "n1", "theirs", "token", SEALED_B64));
    cJSON *pod = pod_using("db", "plain");
    cJSON *open = NULL;
    assert_int_equal(pod_secrets_open(ns, pod, "n1", f->key_path, &open, &err), DRV_OK);
    assert_string_equal(data_of(cJSON_GetObjectItemCaseSensitive(open, "db"), "token"), SEALED_B64);
    assert_string_equal(data_of(cJSON_GetObjectItemCaseSensitive(open, "plain"), "token"),
                        CLEAR_B64);
    assert_null(cJSON_GetObjectItemCaseSensitive(open, "theirs"));
    pod_secrets_release(open);
    /* What the supervisor holds stays sealed. */
    assert_true(pod_secret_is_sealed(cJSON_GetObjectItemCaseSensitive(ns, "db")));
    cJSON_Delete(pod);

    /* A pod using the Secret sealed for another key: an error naming it, not its data. */
    pod = pod_using("plain", "theirs");
    open = NULL;
    assert_int_equal(pod_secrets_open(ns, pod, "n1", f->key_path, &open, &err), DRV_ERR_INTEGRITY);
    assert_null(open);
    assert_non_null(strstr(drv_error_msg(&err), "Secret default/theirs"));
    assert_non_null(strstr(drv_error_msg(&err), "this node's key"));
    assert_null(strstr(drv_error_msg(&err), SEALED_B64));
    cJSON_Delete(pod);

    /* No key on the device (not enrolled): the same, saying so. */
    pod = pod_using("db", "plain");
    char missing[PATH_MAX + 16];
    snprintf(missing, sizeof(missing), "%s/none.key", f->dir);
    drv_error_clear(&err);
    assert_int_not_equal(pod_secrets_open(ns, pod, "n1", missing, &open, &err), DRV_OK);
    assert_non_null(strstr(drv_error_msg(&err), "Secret default/db"));
    assert_non_null(strstr(drv_error_msg(&err), "not enrolled"));
    /* A pod that uses no sealed Secret does not need the key. */
    cJSON_Delete(pod);
    pod = pod_using("plain", "plain");
    assert_int_equal(pod_secrets_open(ns, pod, "n1", missing, &open, &err), DRV_OK);
    pod_secrets_release(open);
    cJSON_Delete(pod);
    cJSON_Delete(ns);
}

static void test_pod_uses_secret(void **state)
{
    (void)state;
    cJSON *p = cJSON_Parse(
        "{\"spec\":{\"initContainers\":[{\"name\":\"i\",\"envFrom\":[{\"secretRef\":"
        "{\"name\":\"from-init\"}}]}],\"containers\":[{\"name\":\"c\",\"env\":[{\"name\":\"A\","
        "\"value\":\"x\"}]}],\"volumes\":[{\"name\":\"v\",\"configMap\":{\"name\":\"cm\"}}]}}");
    assert_true(pod_uses_secret(p, "from-init"));
    assert_false(pod_uses_secret(p, "cm"));
    assert_false(pod_uses_secret(p, "x"));
    cJSON_Delete(p);
}

/* ---- persistence ------------------------------------------------------------------------ */

static void config_for(struct fx *f, drv_agent_config_t *cfg)
{
    drv_agent_config_defaults(cfg);
    snprintf(cfg->node_name, sizeof(cfg->node_name), "n1");
    snprintf(cfg->state_dir, sizeof(cfg->state_dir), "%s", f->state);
    snprintf(cfg->run_dir, sizeof(cfg->run_dir), "%s", f->run);
    cfg->cgroups = DRV_CGROUPS_DISABLED;
}

static cJSON *desired_with(cJSON *secret_a, cJSON *secret_b)
{
    cJSON *d = cJSON_CreateObject();
    cJSON *pods = cJSON_AddArrayToObject(d, "pods");
    cJSON_AddItemToArray(pods, pod_using("db", "plain"));
    cJSON_AddArrayToObject(d, "configMaps");
    cJSON *secrets = cJSON_AddArrayToObject(d, "secrets");
    if (secret_a)
        cJSON_AddItemToArray(secrets, secret_a);
    if (secret_b)
        cJSON_AddItemToArray(secrets, secret_b);
    return d;
}

static void test_supervisor_keeps_clear_secrets_off_disk(void **state)
{
    struct fx *f = *state;
    drv_agent_config_t cfg;
    config_for(f, &cfg);
    drv_error_t err = DRV_ERROR_INIT;
    drv_supervisor_t *sv = NULL;
    assert_int_equal(drv_supervisor_new(&cfg, &sv, &err), DRV_OK);
    cJSON *d = desired_with(clear_secret("plain", "token", CLEAR_B64),
                            sealed_secret(f->pub, "n1", "db", "token", SEALED_B64));
    assert_int_equal(drv_supervisor_set_desired(sv, d, &err), DRV_OK);
    drv_supervisor_free(sv);

    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/desired.json", f->state);
    char *text = read_all(path);
    assert_non_null(text);
    assert_null(strstr(text, CLEAR_B64));
    assert_null(strstr(text, SEALED_B64));
    assert_non_null(strstr(text, "sealedData")); /* sealed ones are kept, sealed */
    assert_non_null(strstr(text, "\"uid\":\"u1\""));
    free(text);
    snprintf(path, sizeof(path), "%s/secrets/desired-secrets.json", f->run);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    text = read_all(path);
    assert_non_null(text);
    assert_non_null(strstr(text, CLEAR_B64));
    assert_null(strstr(text, "sealedData"));
    free(text);

    /* Without clear Secrets, the file goes. */
    assert_int_equal(drv_supervisor_new(&cfg, &sv, &err), DRV_OK);
    d = desired_with(sealed_secret(f->pub, "n1", "db", "token", SEALED_B64), NULL);
    assert_int_equal(drv_supervisor_set_desired(sv, d, &err), DRV_OK);
    drv_supervisor_free(sv);
    assert_int_equal(access(path, F_OK), -1);
}

static void test_restore_merges_back_and_moves_legacy_secrets(void **state)
{
    struct fx *f = *state;
    drv_agent_config_t cfg;
    config_for(f, &cfg);
    drv_error_t err = DRV_ERROR_INIT;
    drv_supervisor_t *sv = NULL;
    assert_int_equal(drv_supervisor_new(&cfg, &sv, &err), DRV_OK);
    assert_int_equal(drv_supervisor_set_desired(
                         sv, desired_with(clear_secret("plain", "token", CLEAR_B64), NULL), &err),
                     DRV_OK);
    drv_supervisor_free(sv);

    /* An older agent's desired.json, with a clear Secret of its own in it. */
    cJSON *legacy = desired_with(clear_secret("old", "token", SEALED_B64), NULL);
    char *text = cJSON_PrintUnformatted(legacy);
    cJSON_Delete(legacy);
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/desired.json", f->state);
    assert_int_equal(drv_file_write_atomic(path, text, strlen(text), 0600, &err), DRV_OK);
    free(text);

    assert_int_equal(drv_supervisor_new(&cfg, &sv, &err), DRV_OK);
    assert_int_equal(drv_supervisor_restore(sv, &err), DRV_OK);
    drv_supervisor_free(sv);
    text = read_all(path);
    assert_non_null(text);
    assert_null(strstr(text, SEALED_B64)); /* moved out */
    assert_null(strstr(text, CLEAR_B64));
    free(text);
    /* Both are on tmpfs now: the one restored from there and the one moved. */
    snprintf(path, sizeof(path), "%s/secrets/desired-secrets.json", f->run);
    text = read_all(path);
    assert_non_null(text);
    assert_non_null(strstr(text, SEALED_B64));
    assert_non_null(strstr(text, CLEAR_B64));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_unseal_right_key_and_context_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unseal_what_the_hub_seals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_for_pod, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pod_uses_secret, setup, teardown),
        cmocka_unit_test_setup_teardown(test_supervisor_keeps_clear_secrets_off_disk, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_restore_merges_back_and_moves_legacy_secrets, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
