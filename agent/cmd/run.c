/* drover-agent run: the long-running agent; drover-agent stop-pods: what stopping it for good
 * adds (stopping the agent alone leaves its pods running, for the next agent to adopt). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cmd/cmd.h"
#include "daemon/daemon.h"
#include "drover/cleanup.h"

/* Runs fn with the configuration of [--config FILE]; the process exit status. */
static int with_config(int argc, char **argv, const char *name,
                       drv_err_t (*fn)(const drv_agent_config_t *, drv_error_t *))
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {NULL, 0, NULL, 0}};
    const char *config = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
        if (c != 'c') {
            fprintf(stderr, "usage: drover-agent %s [--config FILE]\n", name);
            return 2;
        }
        config = optarg;
    }
    if (optind != argc) {
        fprintf(stderr, "usage: drover-agent %s [--config FILE]\n", name);
        return 2;
    }
    /* On the heap, not in this frame: the configuration is about 60 KB (its registry, mirror
     * and label tables), and a stack page once written stays dirty for the life of the
     * long-running agent (issue 19: the idle footprint). */
    _cleanup_free_ drv_agent_config_t *cfg = malloc(sizeof(*cfg));
    if (!cfg) {
        fprintf(stderr, "drover-agent: out of memory\n");
        return 1;
    }
    if (drv_agent_cmd_load_config(config, cfg) != 0)
        return 1;
    drv_error_t err = DRV_ERROR_INIT;
    if (fn(cfg, &err) != DRV_OK) {
        fprintf(stderr, "drover-agent: %s\n", drv_error_msg(&err));
        return 1;
    }
    return 0;
}

int drv_agent_cmd_run(int argc, char **argv)
{
    return with_config(argc, argv, "run", drv_daemon_run);
}

int drv_agent_cmd_stop_pods(int argc, char **argv)
{
    return with_config(argc, argv, "stop-pods", drv_daemon_stop_pods);
}
