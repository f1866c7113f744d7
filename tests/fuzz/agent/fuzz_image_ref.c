/* libFuzzer target for image references (agent/image/ref.c) and platforms: whatever parses
 * must format to a canonical string that parses to the same reference, and failures must say
 * why. Needs drover-agent-core (like fuzz_unpack). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "image/oci.h"
#include "image/ref.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char s[1024];
    if (size >= sizeof(s))
        size = sizeof(s) - 1;
    memcpy(s, data, size);
    s[size] = '\0';
    drv_image_ref_t r;
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t rc = drv_image_ref_parse(s, &r, &err);
    if (rc != DRV_OK && err.msg[0] == '\0')
        abort();
    if (rc == DRV_OK) {
        char canon[DRV_REF_STR_MAX];
        drv_image_ref_format(&r, canon, sizeof(canon));
        drv_image_ref_t again;
        if (drv_image_ref_parse(canon, &again, NULL) != DRV_OK || strcmp(again.domain, r.domain) ||
            strcmp(again.path, r.path) || strcmp(again.tag, r.tag) ||
            strcmp(again.digest, r.digest))
            abort();
        if (drv_image_ref_manifest_ref(&r)[0] == '\0')
            abort();
    }
    drv_platform_t p;
    drv_error_t perr = DRV_ERROR_INIT;
    rc = drv_platform_parse(s, &p, &perr);
    if (rc != DRV_OK && perr.msg[0] == '\0')
        abort();
    if (rc == DRV_OK) {
        char ps[DRV_PLATFORM_STR_MAX];
        drv_platform_t again;
        if (drv_platform_parse(drv_platform_format(&p, ps, sizeof(ps)), &again, NULL) != DRV_OK ||
            strcmp(again.os, p.os) || strcmp(again.arch, p.arch) ||
            strcmp(again.variant, p.variant))
            abort();
    }
    return 0;
}
