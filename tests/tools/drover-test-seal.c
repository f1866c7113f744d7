/* Test tool: plays the hub's signing and sealing for tests that speak for the hub with
 * mosquitto_pub (tests/integration/test_agent_mqtt.sh and friends).
 *   drover-test-seal sign KEY.pem < NodeDesiredState   -> SignedNodeDesiredState
 *   drover-test-seal seal NODE PUB.pem < Secret         -> the Secret with sealedData */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drover/buf.h"
#include "drover/cleanup.h"
#include "drover/file.h"
#include "drover/pki.h"
#include "drover/protocol.h"

static int fail(const char *what, const drv_error_t *err)
{
    fprintf(stderr, "drover-test-seal: %s: %s\n", what, drv_error_msg(err));
    return 1;
}

static drv_err_t read_stdin(drv_buf_t *b, drv_error_t *err)
{
    char chunk[65536];
    ssize_t n;
    while ((n = read(0, chunk, sizeof chunk)) > 0)
        if (drv_buf_append(b, chunk, (size_t)n) != DRV_OK)
            return drv_error_set(err, DRV_ERR_TOOBIG, 0, "stdin: too long");
    return n < 0 ? drv_error_set(err, DRV_ERR_IO, 0, "stdin: read failed") : DRV_OK;
}

int main(int argc, char **argv)
{
    drv_error_t err = DRV_ERROR_INIT;
    drv_buf_t in = DRV_BUF_INIT(2 * (size_t)DRV_PROTO_DESIRED_MAX);
    if (argc == 3 && !strcmp(argv[1], "sign")) {
        _cleanup_free_ char *key = NULL, *out = NULL;
        size_t len = 0;
        if (drv_file_read_capped(argv[2], 65536, &key, NULL, &err) != DRV_OK)
            return fail(argv[2], &err);
        if (read_stdin(&in, &err) != DRV_OK)
            return fail("stdin", &err);
        size_t n = in.len;
        while (n && (in.data[n - 1] == '\n' || in.data[n - 1] == '\r'))
            n--; /* what echo adds */
        if (drv_proto_desired_sign(drv_buf_str(&in), n, key, &out, &len, &err) != DRV_OK)
            return fail("sign", &err);
        fwrite(out, 1, len, stdout);
        drv_buf_free(&in);
        return 0;
    }
    if (argc == 4 && !strcmp(argv[1], "seal")) {
        _cleanup_free_ char *pub = NULL;
        if (drv_file_read_capped(argv[3], 65536, &pub, NULL, &err) != DRV_OK)
            return fail(argv[3], &err);
        if (read_stdin(&in, &err) != DRV_OK)
            return fail("stdin", &err);
        cJSON *s = cJSON_ParseWithLength(drv_buf_str(&in), in.len);
        drv_buf_free(&in);
        if (!cJSON_IsObject(s))
            return fprintf(stderr, "drover-test-seal: stdin: not a JSON object\n"), 1;
        if (drv_proto_secret_seal(s, argv[2], pub, &err) != DRV_OK)
            return fail("seal", &err);
        char *t = cJSON_PrintUnformatted(s);
        puts(t);
        free(t);
        cJSON_Delete(s);
        return 0;
    }
    fprintf(stderr, "usage: drover-test-seal sign KEY.pem < doc\n"
                    "       drover-test-seal seal NODE PUB.pem < secret\n");
    return 2;
}
