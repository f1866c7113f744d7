/* libFuzzer target for the hub's enrollment answer as the agent checks it (agent/enroll,
 * drv_enroll_parse_answer): the input is the HTTP body. Checks that nothing crashes or leaks,
 * that an accepted answer yields a certificate and a signing key, and that a refused one says
 * why. A fixed CA and node key are made once; an input can only be accepted if it carries a
 * certificate of that CA for that key, so mostly the JSON and PEM handling is exercised. Needs
 * drover-agent-core. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "enroll/enroll_int.h"

static char *ca_key, *ca_cert, *node_key;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_pki_key_generate(&ca_key, &err) != DRV_OK ||
        drv_pki_ca_create(ca_key, "fuzz CA", 0, 10, &ca_cert, &err) != DRV_OK ||
        drv_pki_key_generate(&node_key, &err) != DRV_OK)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *cert = NULL, *pub = NULL;
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t r = drv_enroll_parse_answer((const char *)data, size, "dev-a", node_key, ca_cert,
                                          (int64_t)time(NULL), &cert, &pub, &err);
    if (r == DRV_OK) {
        if (!cert || !pub)
            abort();
    } else if (err.msg[0] == '\0' || cert || pub) {
        abort();
    }
    free(cert);
    free(pub);
    return 0;
}
