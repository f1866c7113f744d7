/* The agent's subcommands. Each takes the arguments after its own name (argv[0] is the
 * subcommand) and returns the process exit status: 0 success, 1 failure, 2 usage error. */
#ifndef DROVER_AGENT_CMD_H
#define DROVER_AGENT_CMD_H

#include "config/config.h"

/* pull IMAGE: fetch an image into the local store and print its digest. */
int drv_agent_cmd_pull(int argc, char **argv);
/* run [--config FILE]: the long-running agent. */
int drv_agent_cmd_run(int argc, char **argv);
/* stop-pods [--config FILE]: stop every pod gracefully, with the agent stopped. */
int drv_agent_cmd_stop_pods(int argc, char **argv);
/* status [--config FILE]: the observed state as JSON. */
int drv_agent_cmd_status(int argc, char **argv);
/* logs [--config FILE] POD [CONTAINER]: a container's output. */
int drv_agent_cmd_logs(int argc, char **argv);
/* enroll [--config FILE]: get (or check) the node's certificate from the hub. */
int drv_agent_cmd_enroll(int argc, char **argv);

/* Loads path (NULL: DRV_AGENT_CONFIG_PATH, which may be missing) over the defaults, sets the
 * log level and fills a nodeName pattern (config/nodename.h); prints the problem and returns
 * 1 on failure. */
int drv_agent_cmd_load_config(const char *path, drv_agent_config_t *cfg);

#endif
