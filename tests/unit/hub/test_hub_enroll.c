/* hub/enroll through its API handler (drv_enroll_api) on a real store and a real hub
 * identity: the token, CSR and name checks with their HTTP codes, the issued certificate, the
 * Node and its labels, renewal, revocation (Node NotReady, the node shut out of the broker),
 * forget. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cmocka.h>

#include "auth/auth.h"
#include "broker/broker.h"
#include "drover/file.h"
#include "drover/pki.h"
#include "enroll/enroll.h"
#include "identity/identity.h"
#include "store/store.h"

typedef struct {
    char dir[64];
    drv_hstore_t *store;
    drv_identity_t *id;
    drv_enroll_t *e;
    int changes;
    char shut_out[256]; /* nodes passed to on_shut_out, each followed by a space */
} fx_t;

static int64_t fake_now; /* 0: the real time */

static int64_t now_fn(void)
{
    return fake_now ? fake_now : (int64_t)time(NULL);
}

static void changed(void *ctx)
{
    ((fx_t *)ctx)->changes++;
}

static void shut_out(void *ctx, const char *node)
{
    fx_t *f = ctx;
    size_t n = strlen(f->shut_out);
    snprintf(f->shut_out + n, sizeof(f->shut_out) - n, "%s ", node);
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/drv-enroll-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char p[128];
    snprintf(p, sizeof(p), "%s/broker", f->dir);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof(p), "%s/hub.db", f->dir);
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_hstore_open(p, &f->store, &err), DRV_OK);
    drv_identity_opts_t io = {.data_dir = f->dir};
    assert_int_equal(drv_identity_load(&io, &f->id, &err), DRV_OK);
    drv_enroll_opts_t eo = {.store = f->store,
                            .identity = f->id,
                            .on_change = changed,
                            .on_shut_out = shut_out,
                            .ctx = f,
                            .now = now_fn};
    fake_now = 0;
    assert_int_equal(drv_enroll_new(&eo, &f->e, &err), DRV_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    drv_enroll_free(f->e);
    drv_identity_free(f->id);
    drv_hstore_close(f->store);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void token(fx_t *f, const char *kind, int64_t uses, const char *labels,
                  char out[DRV_AUTH_TOKEN_MAX])
{
    cJSON *l = labels ? cJSON_Parse(labels) : NULL;
    drv_auth_spec_t s = {.kind = kind,
                         .role = strcmp(kind, "api") ? DRV_AUTH_ROLE_NONE : DRV_AUTH_ROLE_ADMIN,
                         .uses = uses,
                         .labels = l};
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_auth_create(f->store, &s, (int64_t)time(NULL), out, NULL, &err) != DRV_OK)
        fail_msg("token: %s", drv_error_msg(&err));
    cJSON_Delete(l);
}

/* A request body {token?, csr} for CN cn with key (PEM). */
static cJSON *body(const char *tok, const char *key, const char *cn)
{
    char *csr = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_pki_csr_create(key, cn, &csr, &err), DRV_OK);
    cJSON *b = cJSON_CreateObject();
    if (tok)
        cJSON_AddStringToObject(b, "token", tok);
    cJSON_AddStringToObject(b, "csr", csr);
    free(csr);
    return b;
}

/* Calls the handler; returns the HTTP code (200 for a 0 success code), *out the answer. */
static unsigned call(fx_t *f, unsigned op, const char *name, const char *authz, cJSON *b,
                     cJSON **out, char *msg, size_t msgsz)
{
    unsigned code = 0;
    drv_error_t err = DRV_ERROR_INIT;
    cJSON *o = NULL;
    drv_err_t r = drv_enroll_api(f->e, op, name, authz, b, &o, &code, &err);
    cJSON_Delete(b);
    if (msg)
        snprintf(msg, msgsz, "%s", r == DRV_OK ? "" : drv_error_msg(&err));
    if (r != DRV_OK) {
        assert_null(o);
        return code ? code : 500;
    }
    if (out)
        *out = o;
    else
        cJSON_Delete(o);
    return code ? code : 200;
}

static void test_enroll_flow(void **state)
{
    fx_t *f = *state;
    drv_error_t err = DRV_ERROR_INIT;
    char *ka = NULL, *kb = NULL;
    assert_int_equal(drv_pki_key_generate(&ka, &err), DRV_OK);
    assert_int_equal(drv_pki_key_generate(&kb, &err), DRV_OK);
    char two[DRV_AUTH_TOKEN_MAX], api[DRV_AUTH_TOKEN_MAX], many[DRV_AUTH_TOKEN_MAX];
    token(f, "bootstrap", 2, "{\"site\":\"north\"}", two);
    token(f, "api", 0, NULL, api);
    token(f, "bootstrap", 0, NULL, many);
    char msg[256];
    assert_string_equal(f->shut_out, "");

    /* Success: a client certificate of the hub CA for dev-a, the Node with the labels. */
    cJSON *o = NULL;
    assert_int_equal(
        call(f, DRV_API_OP_ENROLL, NULL, NULL, body(two, ka, "dev-a"), &o, msg, sizeof(msg)), 201);
    const char *cert = cJSON_GetObjectItem(o, "certificate")->valuestring;
    assert_int_equal(
        drv_pki_cert_verify(cert, drv_identity_ca_cert(f->id), 0, DRV_PKI_CLIENT_AUTH, &err),
        DRV_OK);
    drv_pki_cert_info_t info;
    assert_int_equal(drv_pki_cert_info(cert, &info, &err), DRV_OK);
    assert_string_equal(info.cn, "dev-a");
    int64_t days = (info.not_after - info.not_before) / 86400;
    assert_true(days >= 89 && days <= 91);
    assert_string_equal(cJSON_GetObjectItem(o, "signingKey")->valuestring,
                        drv_identity_signing_pub(f->id));
    assert_string_equal(cJSON_GetObjectItem(o, "ca")->valuestring, drv_identity_ca_cert(f->id));
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "labels"), "site")->valuestring,
                        "north");
    assert_non_null(cJSON_GetObjectItem(o, "renewAfter"));
    cJSON_Delete(o);
    cJSON *node = NULL;
    assert_int_equal(drv_hstore_get(f->store, DRV_KIND_NODE, NULL, "dev-a", &node, &err), DRV_OK);
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(node, "metadata"), "labels"),
                            "site")
            ->valuestring,
        "north");
    cJSON_Delete(node);
    assert_true(f->changes > 0);
    drv_hstore_identity_t id;
    assert_int_equal(drv_hstore_identity_get(f->store, "dev-a", &id, &err), DRV_OK);
    assert_string_equal(id.serial, info.serial);
    assert_false(id.revoked);
    assert_string_equal(f->shut_out, ""); /* enrolling shuts nobody out */

    /* The same key again, the token in the Authorization header; then the token is used up. */
    char bearer[DRV_AUTH_TOKEN_MAX + 8];
    snprintf(bearer, sizeof(bearer), "Bearer %s", two);
    assert_int_equal(
        call(f, DRV_API_OP_ENROLL, NULL, bearer, body(NULL, ka, "dev-a"), NULL, msg, sizeof(msg)),
        201);
    assert_int_equal(
        call(f, DRV_API_OP_ENROLL, NULL, NULL, body(two, kb, "dev-b"), NULL, msg, sizeof(msg)),
        401);
    assert_non_null(strstr(msg, "bootstrap token"));

    /* Refusals. */
    assert_int_equal(
        call(f, DRV_API_OP_ENROLL, NULL, NULL, body(NULL, kb, "dev-b"), NULL, msg, sizeof(msg)),
        401);
    assert_int_equal(
        call(f, DRV_API_OP_ENROLL, NULL, NULL, body(api, kb, "dev-b"), NULL, msg, sizeof(msg)),
        401);
    assert_int_equal(
        call(f, DRV_API_OP_ENROLL, NULL, NULL, body(many, kb, "dev-a"), NULL, msg, sizeof(msg)),
        409);
    assert_int_equal(call(f, DRV_API_OP_ENROLL, NULL, NULL, body(many, kb, "drover-hub"), NULL, msg,
                          sizeof(msg)),
                     403);
    assert_int_equal(call(f, DRV_API_OP_ENROLL, NULL, NULL, body(many, kb, "drover-other"), NULL,
                          msg, sizeof(msg)),
                     403);
    cJSON *nocsr = cJSON_CreateObject();
    cJSON_AddStringToObject(nocsr, "token", many);
    assert_int_equal(call(f, DRV_API_OP_ENROLL, NULL, NULL, nocsr, NULL, msg, sizeof(msg)), 400);
    assert_string_equal(msg, "csr: required");
    cJSON *badcsr = cJSON_CreateObject();
    cJSON_AddStringToObject(badcsr, "token", many);
    cJSON_AddStringToObject(badcsr, "csr", "not a csr");
    assert_int_equal(call(f, DRV_API_OP_ENROLL, NULL, NULL, badcsr, NULL, msg, sizeof(msg)), 400);
    assert_int_equal(strncmp(msg, "csr", 3), 0);

    /* Renewal. */
    assert_int_equal(
        call(f, DRV_API_OP_ENROLL_RENEW, NULL, NULL, body(NULL, ka, "dev-a"), &o, msg, sizeof(msg)),
        201);
    assert_null(cJSON_GetObjectItem(o, "labels"));
    cJSON_Delete(o);
    assert_int_equal(call(f, DRV_API_OP_ENROLL_RENEW, NULL, NULL, body(NULL, kb, "dev-a"), NULL,
                          msg, sizeof(msg)),
                     409);
    assert_int_equal(call(f, DRV_API_OP_ENROLL_RENEW, NULL, NULL, body(NULL, kb, "dev-z"), NULL,
                          msg, sizeof(msg)),
                     404);

    /* Revocation: kept and marked, shut out of the broker, Node NotReady, renew and enrol
     * refused. */
    assert_int_equal(call(f, DRV_API_OP_NODE_REVOKE, "dev-a", NULL, NULL, &o, msg, sizeof(msg)),
                     200);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(o, "revoked")));
    cJSON_Delete(o);
    assert_string_equal(f->shut_out, "dev-a ");
    assert_int_equal(drv_hstore_get(f->store, DRV_KIND_NODE, NULL, "dev-a", &node, &err), DRV_OK);
    const cJSON *c;
    bool revoked = false;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(cJSON_GetObjectItem(node, "status"), "conditions"))
    {
        if (!strcmp(cJSON_GetObjectItem(c, "type")->valuestring, "Ready"))
            revoked = !strcmp(cJSON_GetObjectItem(c, "status")->valuestring, "False") &&
                      !strcmp(cJSON_GetObjectItem(c, "reason")->valuestring, "Revoked");
    }
    cJSON_Delete(node);
    assert_true(revoked);
    assert_int_equal(call(f, DRV_API_OP_ENROLL_RENEW, NULL, NULL, body(NULL, ka, "dev-a"), NULL,
                          msg, sizeof(msg)),
                     403);
    assert_int_equal(
        call(f, DRV_API_OP_ENROLL, NULL, NULL, body(many, ka, "dev-a"), NULL, msg, sizeof(msg)),
        403);
    assert_int_equal(call(f, DRV_API_OP_NODE_REVOKE, "dev-q", NULL, NULL, NULL, msg, sizeof(msg)),
                     404);

    /* The list, then forget: the name is free again. */
    assert_int_equal(call(f, DRV_API_OP_IDENTITIES, NULL, NULL, NULL, &o, msg, sizeof(msg)), 200);
    cJSON *items = cJSON_GetObjectItem(o, "items");
    assert_int_equal(cJSON_GetArraySize(items), 1);
    cJSON *it = cJSON_GetArrayItem(items, 0);
    assert_string_equal(cJSON_GetObjectItem(it, "node")->valuestring, "dev-a");
    assert_int_equal(strncmp(cJSON_GetObjectItem(it, "fingerprint")->valuestring, "sha256:", 7), 0);
    assert_int_equal(strlen(cJSON_GetObjectItem(it, "fingerprint")->valuestring), 7 + 64);
    cJSON_Delete(o);
    /* Forget: only once the last certificate has expired (else the old device's certificate
     * would be let in again under a re-enrolled name). */
    assert_int_equal(call(f, DRV_API_OP_IDENTITY, "dev-a", NULL, NULL, NULL, msg, sizeof(msg)),
                     409);
    assert_non_null(strstr(msg, "stays valid until"));
    assert_int_equal(drv_hstore_identity_get(f->store, "dev-a", &id, &err), DRV_OK);
    fake_now = id.not_after + 1;
    assert_int_equal(call(f, DRV_API_OP_IDENTITY, "dev-a", NULL, NULL, NULL, msg, sizeof(msg)),
                     200);
    assert_string_equal(f->shut_out, "dev-a dev-a ");
    assert_int_equal(call(f, DRV_API_OP_IDENTITY, "dev-a", NULL, NULL, NULL, msg, sizeof(msg)),
                     404);
    assert_int_equal(
        call(f, DRV_API_OP_ENROLL, NULL, NULL, body(many, kb, "dev-a"), NULL, msg, sizeof(msg)),
        201);
    assert_string_equal(f->shut_out, "dev-a dev-a ");
    assert_int_equal(call(f, DRV_API_OP_IDENTITY, "dev-a", NULL, NULL, NULL, msg, sizeof(msg)),
                     409);
    assert_non_null(strstr(msg, "not revoked"));
    drv_pki_secret_free(ka);
    drv_pki_secret_free(kb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_enroll_flow, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
