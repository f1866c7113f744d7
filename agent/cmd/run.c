/* drover-agent run: the long-running agent. */
#include <getopt.h>
#include <stdio.h>

#include "cmd/cmd.h"
#include "daemon/daemon.h"

int drv_agent_cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {NULL, 0, NULL, 0}};
    const char *config = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
        if (c != 'c') {
            fprintf(stderr, "usage: drover-agent run [--config FILE]\n");
            return 2;
        }
        config = optarg;
    }
    drv_agent_config_t cfg;
    if (drv_agent_load_config(config, &cfg) != 0)
        return 1;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_daemon_run(&cfg, &err) != DRV_OK) {
        fprintf(stderr, "drover-agent: %s\n", drv_error_msg(&err));
        return 1;
    }
    return 0;
}
