/* drover-agent: parses the subcommand and hands over; the work is in the modules. */
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"

/* The subcommands: name, function, help line. Expanded into one help text and a chain of
 * comparisons, not a table: a table of pointers is relocated at every start (issue 19). */
#define CMDS(X)                                                                                    \
    X("run", drv_agent_cmd_run,                                                                    \
      "run [--config FILE]                 run the agent (pods from the manifest directory)")      \
    X("stop-pods", drv_agent_cmd_stop_pods,                                                        \
      "stop-pods [--config FILE]           stop every pod gracefully (with the agent stopped)")    \
    X("status", drv_agent_cmd_status,                                                              \
      "status [--config FILE]              print the observed state as JSON")                      \
    X("logs", drv_agent_cmd_logs,                                                                  \
      "logs [--config FILE] POD [CONTAINER] print a container's output")                           \
    X("enroll", drv_agent_cmd_enroll,                                                              \
      "enroll [--config FILE]              get the node's certificate from the hub (hub.url)")     \
    X("pull", drv_agent_cmd_pull,                                                                  \
      "pull [OPTIONS] IMAGE                fetch an image into the local store")

static int usage(FILE *f)
{
#define HELP(name, fn, help) "  " help "\n"
    fputs("usage: drover-agent COMMAND [ARGS]\n\ncommands:\n" CMDS(HELP), f);
#undef HELP
    return f == stderr ? 2 : 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage(stderr);
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help"))
        return usage(stdout);
#define RUN(name, fn, help)                                                                        \
    if (!strcmp(argv[1], name))                                                                    \
        return fn(argc - 1, argv + 1);
    CMDS(RUN)
#undef RUN
    fprintf(stderr, "drover-agent: unknown command '%s'\n", argv[1]);
    return usage(stderr);
}
