/* The agent's subcommands. Each takes the arguments after its own name (argv[0] is the
 * subcommand) and returns the process exit status: 0 success, 1 failure, 2 usage error. */
#ifndef DROVER_AGENT_CMD_H
#define DROVER_AGENT_CMD_H

/* pull IMAGE: fetch an image into the local store and print its digest. */
int drv_agent_cmd_pull(int argc, char **argv);

#endif
