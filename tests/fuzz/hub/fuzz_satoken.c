/* Fuzzes what a client or the broker hands the service account token code: the input, split at
 * its first NUL byte, is a bearer token for drv_satoken_verify (hub/auth/satoken.c: base64url,
 * JOSE header, ES256 signature form, claims) and a serviceAccountTokens entry for
 * drv_proto_satoken_open (shared/src/protocol.c), opened with a node key. Looks for crashes,
 * leaks, and any token accepted (none can be: the issuer's key is made here and signs nothing). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/satoken.h"
#include "drover/base64.h"
#include "drover/pki.h"
#include "drover/protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static drv_satoken_t *issuer;
static char *node_key;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    drv_error_t err = DRV_ERROR_INIT;
    if (!issuer && (drv_satoken_new(NULL, &issuer, &err) != DRV_OK ||
                    drv_pki_key_generate(&node_key, &err) != DRV_OK))
        abort();
    const uint8_t *sep = memchr(data, 0, size);
    size_t tlen = sep ? (size_t)(sep - data) : size;
    char *tok = malloc(tlen + 1);
    if (!tok)
        return 0;
    memcpy(tok, data, tlen);
    tok[tlen] = '\0';
    drv_satoken_claims_t c;
    if (drv_satoken_verify(issuer, tok, 1700000000, &c, &err) == DRV_OK)
        abort(); /* nothing here was signed by the issuer */
    unsigned char *raw = NULL;
    size_t n = 0;
    if (drv_base64url_decode(tok, tlen, &raw, &n) == DRV_OK) {
        char *again = drv_base64url_encode(raw, n);
        if (again && strcmp(again, tok))
            abort(); /* strict decoding: one text per byte string */
        free(again);
        free(raw);
    }
    free(tok);
    if (sep) {
        cJSON *entry = cJSON_ParseWithLength((const char *)sep + 1, size - tlen - 1);
        char uid[65], *out = NULL;
        if (entry && drv_proto_satoken_open(entry, "dev1", node_key, uid, &out, &err) == DRV_OK)
            free(out);
        cJSON_Delete(entry);
    }
    return 0;
}
