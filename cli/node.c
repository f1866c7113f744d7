/* drover node: the enrolled device identities on the hub (docs/PROTOCOL.md "Enrollment"):
 * revoke a node, forget a revoked one (its name becomes free), list them. Admin only. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/json.h"
#include "cli.h"
#include "drover/fmt.h"

static int node_usage(void)
{
    fprintf(stderr, "usage: drover node revoke NAME... | node forget NAME... |\n"
                    "       node list-identities [-o json]\n");
    return 2;
}

/* POST .../nodes/NAME/revoke or DELETE .../identities/NAME for each name. */
static int each_node(int argc, char **argv, bool revoke)
{
    if (argc < 2)
        return node_usage();
    int ret = 0;
    for (int i = 1; i < argc; i++) {
        char esc[256], path[384];
        if (!*argv[i] || !drv_cli_escape(argv[i], esc, sizeof(esc))) {
            fprintf(stderr, "drover node %s: \"%.64s\" is not a node name\n",
                    revoke ? "revoke" : "forget", argv[i]);
            ret = 1;
            continue;
        }
        if ((revoke ? drv_fmt(path, sizeof(path), "/api/v1/nodes/%s/revoke", esc)
                    : drv_fmt(path, sizeof(path), "/api/v1/identities/%s", esc)) != DRV_OK) {
            fprintf(stderr, "drover node %s: \"%.64s\": API path too long\n",
                    revoke ? "revoke" : "forget", argv[i]);
            ret = 1;
            continue;
        }
        drv_cli_resp_t resp;
        if (drv_cli_request(revoke ? "POST" : "DELETE", path, revoke ? "application/json" : NULL,
                            revoke ? "{}" : NULL, &resp))
            return 1;
        if (resp.status == 200) {
            printf(revoke ? "node/%s revoked\n" : "node/%s identity forgotten\n", argv[i]);
        } else {
            drv_cli_print_status(&resp);
            ret = 1;
        }
        drv_cli_resp_free(&resp);
    }
    return ret;
}

static int list_identities(int argc, char **argv)
{
    drv_cli_resp_t resp;
    const cJSON *items = NULL;
    bool done = false;
    int rc = drv_cli_list("/api/v1/identities", argc, argv, node_usage, &resp, &items, &done);
    if (done)
        return rc;
    printf("%-24s %-8s %-21s %-21s %-33s %s\n", "NODE", "STATE", "CREATED", "NOT AFTER", "SERIAL",
           "KEY FINGERPRINT");
    const cJSON *t;
    cJSON_ArrayForEach(t, items)
    {
        const cJSON *rv = cJSON_GetObjectItemCaseSensitive(t, "revoked");
        printf("%-24s %-8s %-21s %-21s %-33s %s\n", drv_json_str_or(t, "node", ""),
               cJSON_IsTrue(rv) ? "revoked" : "active", drv_json_str_or(t, "created", ""),
               drv_json_str_or(t, "notAfter", ""), drv_json_str_or(t, "serial", ""),
               drv_json_str_or(t, "fingerprint", ""));
    }
    drv_cli_resp_free(&resp);
    return 0;
}

int drv_cli_node_cmd(int argc, char **argv)
{
    if (argc < 2)
        return node_usage();
    if (!strcmp(argv[1], "revoke"))
        return each_node(argc - 1, argv + 1, true);
    if (!strcmp(argv[1], "forget"))
        return each_node(argc - 1, argv + 1, false);
    if (!strcmp(argv[1], "list-identities"))
        return list_identities(argc - 1, argv + 1);
    return node_usage();
}
