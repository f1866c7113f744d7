/* drover: the command-line client. Parses the subcommand and hands over. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} cmds[] = {
    {"validate", drv_cli_validate,
     "validate -f FILE|DIR|- [-R] [-o json|yaml]   check manifests, print them normalized"},
#ifndef DROVER_CLI_NO_HUB
    {"apply", drv_cli_apply,
     "apply -f FILE|DIR|- [-R] [-n NS]   create or update objects on the hub"},
    {"get", drv_cli_get,
     "get KIND [NAME] [-n NS | -A] [-l SEL] [-o wide|json|yaml|name] [-w]   list objects"},
    {"logs", drv_cli_logs,
     "logs POD [-n NS] [-c CONTAINER] [-f] [--tail N]   a container's output (-f: keep streaming)"},
    {"top", drv_cli_top,
     "top nodes|pods [NAME] [-n NS | -A] [-l SEL] [--containers]   current cpu and memory use"},
    {"describe", drv_cli_describe, "describe KIND NAME [-n NS]   an object and its events"},
    {"delete", drv_cli_delete, "delete KIND NAME... [-n NS] | delete -f FILE   delete objects"},
    {"scale", drv_cli_scale, "scale deployment NAME --replicas N [-n NS]   set the replica count"},
    {"cordon", drv_cli_cordon, "cordon NODE...   mark nodes unschedulable"},
    {"uncordon", drv_cli_uncordon, "uncordon NODE...   mark nodes schedulable again"},
    {"drain", drv_cli_drain, "drain NODE [--ignore-daemonsets]   cordon a node, delete its pods"},
    {"login", drv_cli_login,
     "login --hub URL [--ca FILE] --token TOKEN|--token-file PATH   save the hub, its CA and a\n"
     "        token (0600 config)"},
    {"token", drv_cli_token_cmd,
     "token create [--role admin|operator|viewer] [--ttl 24h] [--description TEXT] [--uses N]\n"
     "        [--labels k=v,...] | token list | token revoke ID...   API and bootstrap tokens"},
    {"kubeconfig", drv_cli_kubeconfig,
     "kubeconfig [--role viewer|operator|admin] [--name NAME] [--ttl 24h] [--server URL]\n"
     "        a kubeconfig for kubectl (--role: with a new token of that role)"},
    {"node", drv_cli_node_cmd,
     "node revoke NAME... | node forget NAME... | node list-identities [-o json]   enrolled\n"
     "        device identities (revoke: the device loses the broker and cannot renew)"},
    {"flash", drv_cli_flash,
     "flash (--agent PATH | --agent-dir DIR) --hub-url URL --broker ssl://HOST:PORT\n"
     "        (--token-file PATH | --token TOKEN) [--node-name pi-{serial}] IMAGE|DIR...\n"
     "        write the agent, its config and unit into Raspberry Pi OS disk images"},
    {"rollout", drv_cli_rollout,
     "rollout status|history|undo|pause|resume deployment NAME [--timeout S] [--revision N]   "
     "rollouts"},
#endif
};

static int usage(FILE *f)
{
    fprintf(f,
            "usage: drover [--hub URL] [--token TOKEN] [--ca FILE] COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        fprintf(f, "  %s\n", cmds[i].help);
    return f == stderr ? 2 : 0;
}

int main(int argc, char **argv)
{
#ifndef DROVER_CLI_NO_HUB
    /* --hub URL before the command: the hub for every command (like $DROVER_HUB). */
    while (argc >= 2 && (!strncmp(argv[1], "--hub", 5) || !strncmp(argv[1], "--token", 7) ||
                         !strncmp(argv[1], "--ca", 4))) {
        if (!strncmp(argv[1], "--ca", 4)) {
            /* --ca FILE: the hub's CA certificate (like $DROVER_CA) */
            if (argv[1][4] == '=') {
                drv_cli_ca_set(argv[1] + 5);
                argc--, argv++;
            } else if (!argv[1][4] && argc >= 3) {
                drv_cli_ca_set(argv[2]);
                argc -= 2, argv += 2;
            } else {
                return usage(stderr);
            }
        } else if (!strncmp(argv[1], "--token", 7)) {
            /* --token TOKEN (like $DROVER_TOKEN) */
            if (argv[1][7] == '=') {
                drv_cli_token_set(argv[1] + 8);
                argc--, argv++;
            } else if (!argv[1][7] && argc >= 3) {
                drv_cli_token_set(argv[2]);
                argc -= 2, argv += 2;
            } else {
                return usage(stderr);
            }
        } else if (argv[1][5] == '=') {
            drv_cli_hub_set(argv[1] + 6);
            argc--, argv++;
        } else if (!argv[1][5] && argc >= 3) {
            drv_cli_hub_set(argv[2]);
            argc -= 2, argv += 2;
        } else {
            return usage(stderr);
        }
    }
#endif
    if (argc < 2)
        return usage(stderr);
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help"))
        return usage(stdout);
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (!strcmp(argv[1], cmds[i].name))
            return cmds[i].run(argc - 1, argv + 1);
    fprintf(stderr, "drover: unknown command '%s'\n", argv[1]);
    return usage(stderr);
}
