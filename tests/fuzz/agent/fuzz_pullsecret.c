/* libFuzzer target for imagePullSecrets content (agent/image/pullsecret.c): any bytes as a
 * .dockerconfigjson or .dockercfg must parse or fail with a message, every credential found
 * must have a host, a user without ':' and a password, and nothing may leak (ASan). The first
 * byte picks the legacy form. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "image/pullsecret.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    bool legacy = data[0] & 1;
    static drv_pull_creds_t c;
    memset(&c, 0, sizeof(c));
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t rc = drv_pullsecret_parse(&c, (const char *)data + 1, size - 1, legacy, "fuzz", &err);
    if (rc != DRV_OK && err.msg[0] == '\0')
        abort();
    for (size_t i = 0; i < c.n; i++)
        if (!c.creds[i].host || !*c.creds[i].host || !c.creds[i].username ||
            strchr(c.creds[i].username, ':') || !c.creds[i].password)
            abort();
    drv_pullsecret_free(&c);
    return 0;
}
