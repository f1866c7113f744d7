/* Tests of imagePullSecrets: Docker config Secrets (both types) into registry credentials,
 * server keys reduced to the host the registry client matches, "auth" over username/password,
 * missing Secrets named, other types skipped, bad content refused with the Secret named. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "drover/base64.h"
#include "image/pullsecret.h"

static char *b64(const char *s)
{
    char *out = drv_base64_encode(s, strlen(s));
    assert_non_null(out);
    return out;
}

/* A Secret name -> {type, data: {key: base64(text)}} map entry. */
static void add_secret(cJSON *map, const char *name, const char *type, const char *key,
                       const char *text)
{
    cJSON *s = cJSON_AddObjectToObject(map, name);
    cJSON_AddStringToObject(s, "type", type);
    char *v = b64(text);
    cJSON_AddStringToObject(cJSON_AddObjectToObject(s, "data"), key, v);
    free(v);
}

static void test_both_types_and_missing(void **state)
{
    (void)state;
    cJSON *pod = cJSON_Parse("{\"spec\":{\"imagePullSecrets\":[{\"name\":\"json\"},{\"name\":"
                             "\"gone\"},{\"name\":\"legacy\"},{\"name\":\"opaque\"}]}}");
    cJSON *secrets = cJSON_CreateObject();
    /* "auth" is base64 of "alice:pa:ss" (a password may hold ':'). */
    add_secret(secrets, "json", "kubernetes.io/dockerconfigjson", ".dockerconfigjson",
               "{\"auths\":{\"https://index.docker.io/v1/\":{\"auth\":\"YWxpY2U6cGE6c3M=\"},"
               "\"http://127.0.0.1:5000/v2/\":{\"username\":\"bob\",\"password\":\"pw\"},"
               "\"nouser.example\":{\"password\":\"x\"}}}");
    add_secret(secrets, "legacy", "kubernetes.io/dockercfg", ".dockercfg",
               "{\"registry.example.com:443\":{\"username\":\"carol\",\"password\":\"c\","
               "\"auth\":\"ZGF2ZTpk\"}}");
    add_secret(secrets, "opaque", "Opaque", ".dockerconfigjson", "{\"auths\":{\"x\":{}}}");
    drv_pull_creds_t c;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_pullsecret_creds(pod, secrets, &c, &err), DRV_OK);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.creds[0].host, "docker.io");
    assert_string_equal(c.creds[0].username, "alice");
    assert_string_equal(c.creds[0].password, "pa:ss");
    assert_string_equal(c.creds[1].host, "127.0.0.1:5000");
    assert_string_equal(c.creds[1].username, "bob");
    assert_string_equal(c.creds[1].password, "pw");
    assert_string_equal(c.creds[2].host, "registry.example.com:443");
    assert_string_equal(c.creds[2].username, "dave"); /* auth wins */
    assert_string_equal(c.creds[2].password, "d");
    assert_string_equal(c.missing, "gone");
    drv_pullsecret_free(&c);
    assert_int_equal(c.n, 0);
    cJSON_Delete(pod);
    cJSON_Delete(secrets);
}

static void test_bad_content_names_secret(void **state)
{
    (void)state;
    cJSON *pod = cJSON_Parse("{\"spec\":{\"imagePullSecrets\":[{\"name\":\"bad\"}]}}");
    const char *cases[][2] = {
        {"not json", "imagePullSecrets: Secret \"bad\": not a Docker config JSON object"},
        {"{\"auths\":{\"h\":{\"auth\":\"***\"}}}", "auths[h].auth: illegal base64"},
        {"{\"auths\":{\"h\":{\"auth\":\"bm9jb2xvbg==\"}}}", "not \"user:password\""},
        {"{\"auths\":[1]}", "not a Docker config JSON object"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *secrets = cJSON_CreateObject();
        add_secret(secrets, "bad", "kubernetes.io/dockerconfigjson", ".dockerconfigjson",
                   cases[i][0]);
        drv_pull_creds_t c;
        drv_error_t err = DRV_ERROR_INIT;
        assert_int_equal(drv_pullsecret_creds(pod, secrets, &c, &err), DRV_ERR_INVALID);
        if (!strstr(err.msg, cases[i][1]))
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err.msg, cases[i][1]);
        drv_pullsecret_free(&c);
        cJSON_Delete(secrets);
    }
    cJSON_Delete(pod);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_both_types_and_missing),
        cmocka_unit_test(test_bad_content_names_secret),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
