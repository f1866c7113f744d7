/* drover-agent: parses the subcommand and hands over; the work is in the modules. */
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} cmds[] = {
    {"run", drv_agent_cmd_run,
     "run [--config FILE]                 run the agent (pods from the manifest directory)"},
    {"stop-pods", drv_agent_cmd_stop_pods,
     "stop-pods [--config FILE]           stop every pod gracefully (with the agent stopped)"},
    {"status", drv_agent_cmd_status,
     "status [--config FILE]              print the observed state as JSON"},
    {"logs", drv_agent_cmd_logs, "logs [--config FILE] POD [CONTAINER] print a container's output"},
    {"enroll", drv_agent_cmd_enroll,
     "enroll [--config FILE]              get the node's certificate from the hub (hub.url)"},
    {"pull", drv_agent_cmd_pull,
     "pull [OPTIONS] IMAGE                fetch an image into the local store"},
};

static int usage(FILE *f)
{
    fprintf(f, "usage: drover-agent COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        fprintf(f, "  %s\n", cmds[i].help);
    return f == stderr ? 2 : 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage(stderr);
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help"))
        return usage(stdout);
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (!strcmp(argv[1], cmds[i].name))
            return cmds[i].run(argc - 1, argv + 1);
    fprintf(stderr, "drover-agent: unknown command '%s'\n", argv[1]);
    return usage(stderr);
}
