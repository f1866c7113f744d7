/* libFuzzer target for the agent's configuration file (agent/config/config.c), registry mirrors
 * and their rewrites included (agent/image/mirror.c): a refused file says why and leaves the
 * configuration as it was; an accepted one yields mirror sources for any image without error
 * other than a rewrite's named refusal. Needs drover-agent-core. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "image/mirror.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static drv_agent_config_t cfg, before;
    drv_agent_config_defaults(&cfg);
    before = cfg;
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t rc = drv_agent_config_parse("fuzz.yaml", (const char *)data, size, &cfg, &err);
    if (rc != DRV_OK) {
        if (err.msg[0] == '\0' || memcmp(&cfg, &before, sizeof(cfg)))
            abort();
        return 0;
    }
    static const char *const images[] = {"busybox", "mysql:8.0", "ghcr.io/a/b:1",
                                         "127.0.0.1:5000/x/y@sha256:"
                                         "0123456789abcdef0123456789abcdef"
                                         "0123456789abcdef0123456789abcdef"};
    for (size_t i = 0; i < sizeof(images) / sizeof(images[0]); i++) {
        drv_image_ref_t ref;
        if (drv_image_ref_parse(images[i], &ref, NULL) != DRV_OK)
            abort();
        drv_mirror_source_t src[DRV_MIRROR_MAX_SOURCES];
        size_t n = 0;
        drv_error_t merr = DRV_ERROR_INIT;
        rc = drv_mirror_sources(cfg.mirrors, cfg.n_mirrors, &ref, src, &n, &merr);
        if (rc != DRV_OK && (rc != DRV_ERR_INVALID || merr.msg[0] == '\0'))
            abort();
        if (rc == DRV_OK && (n == 0 || n > DRV_MIRROR_MAX_SOURCES))
            abort();
    }
    const char *hosts[DRV_MIRROR_MAX * DRV_MIRROR_MAX_ENDPOINTS];
    (void)drv_mirror_plain_hosts(cfg.mirrors, cfg.n_mirrors, hosts,
                                 sizeof(hosts) / sizeof(hosts[0]));
    return 0;
}
