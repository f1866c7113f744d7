/* What the agent's subcommands share: loading the configuration (and filling a node name
 * pattern, so every subcommand sees the same name). */
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "config/nodename.h"
#include "drover/log.h"

int drv_agent_cmd_load_config(const char *path, drv_agent_config_t *cfg)
{
    drv_agent_config_defaults(cfg);
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t r = drv_agent_config_load(path ? path : DRV_AGENT_CONFIG_PATH, cfg, &err);
    if (r == DRV_ERR_NOTFOUND && !path)
        r = DRV_OK; /* no config file: the defaults */
    if (r != DRV_OK) {
        fprintf(stderr, "drover-agent: %s\n", drv_error_msg(&err));
        return 1;
    }
    drv_log_level_t lvl;
    if (drv_log_parse_level(cfg->log_level, &lvl) == DRV_OK)
        drv_log_set_level(lvl);
    if (drv_nodename_resolve(cfg, "", &err) != DRV_OK) {
        fprintf(stderr, "drover-agent: %s\n", drv_error_msg(&err));
        return 1;
    }
    return 0;
}
