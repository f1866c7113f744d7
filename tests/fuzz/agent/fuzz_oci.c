/* libFuzzer target for the OCI parsers (agent/image/oci.c): the input is read as a manifest or
 * index (with and without a Content-Type) and as an image config; an index is asked for each
 * of a few device platforms. Checks that nothing crashes or leaks and that every failure says
 * why. Needs drover-agent-core (like fuzz_unpack). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "image/oci.h"

static void check_failure(drv_err_t rc, const drv_error_t *err)
{
    if (rc != DRV_OK && err->msg[0] == '\0')
        abort(); /* a failure must say why */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const types[] = {NULL, DRV_MT_OCI_INDEX, DRV_MT_DOCKER_MANIFEST,
                                        "application/json; charset=utf-8"};
    static const char *const platforms[] = {"linux/amd64", "linux/arm64", "linux/arm/v7",
                                            "linux/arm/v6"};
    for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
        drv_oci_manifest_t m;
        drv_error_t err = DRV_ERROR_INIT;
        drv_err_t rc = drv_oci_manifest_parse((const char *)data, size, types[t], &m, &err);
        check_failure(rc, &err);
        if (rc != DRV_OK)
            continue;
        if (m.kind == DRV_OCI_INDEX) {
            for (size_t p = 0; p < sizeof(platforms) / sizeof(platforms[0]); p++) {
                drv_platform_t want;
                if (drv_platform_parse(platforms[p], &want, NULL) != DRV_OK)
                    abort();
                const drv_oci_descriptor_t *d = NULL;
                drv_error_t serr = DRV_ERROR_INIT;
                rc = drv_oci_index_select(&m, &want, &d, &serr);
                check_failure(rc, &serr);
                if (rc == DRV_OK && (d < m.entries || d >= m.entries + m.n_entries))
                    abort();
            }
        } else if (m.n_entries == 0 || m.n_entries > DRV_OCI_MAX_LAYERS) {
            abort();
        }
        drv_oci_manifest_free(&m);
    }
    drv_oci_config_t c;
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t rc = drv_oci_config_parse((const char *)data, size, &c, &err);
    check_failure(rc, &err);
    if (rc == DRV_OK) {
        if (c.working_dir == NULL || c.user == NULL || (c.n_env && c.env[c.n_env] != NULL))
            abort();
        drv_oci_config_free(&c);
    }
    return 0;
}
