/* drover-agent run: the long-running agent; drover-agent stop-pods: what stopping it for good
 * adds (stopping the agent alone leaves its pods running, for the next agent to adopt). */
#include <getopt.h>
#include <stdio.h>
#include <sys/mman.h>

#include "cmd/cmd.h"
#include "daemon/daemon.h"

static void config_unmap(drv_agent_config_t **cfg)
{
    if (*cfg)
        munmap(*cfg, sizeof(**cfg));
}

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
    /* A mapping of its own, not this frame nor the heap: the configuration is about 60 KB,
     * mostly registry, mirror and label tables that few devices fill. A stack page once
     * written stays dirty for the life of the long-running agent; in a fresh mapping the
     * entries never written stay pages never backed (drv_agent_config_defaults writes around
     * them; issue 19: the idle footprint). */
    __attribute__((cleanup(config_unmap))) drv_agent_config_t *cfg =
        mmap(NULL, sizeof(*cfg), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (cfg == MAP_FAILED) {
        cfg = NULL;
        perror("drover-agent: mmap");
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
