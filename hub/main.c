/* drover-hub: parses options and runs the hub's loop (hub/core/hub.c). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub.h"
#include "api/api.h"
#include "ctrl/ctrl.h"
#include "enroll/enroll.h"
#include "store/store.h"
#include "drover/log.h"
#include "drover/pki.h"

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: drover-hub [--data DIR] [--listen ADDR:PORT] [--log-level LEVEL]\n"
        "                  [--no-tls] [--san NAME|IP]... [--no-auth]\n"
        "                  [--broker URL | --broker-listen ADDR:PORT [--no-broker-tls]]\n"
        "                  [--mosquitto PATH]\n"
        "  --data DIR          state directory (default " DRV_HUB_DEFAULT_DATA ")\n"
        "  --listen ADDR:PORT  API address (default " DRV_HUB_DEFAULT_LISTEN
        "; port 0 picks a free one)\n"
        "  --log-level LEVEL   debug, info, warn, error (default info)\n"
        "  --broker URL        external MQTT 3.1.1/5 broker (tcp://HOST:PORT); without it\n"
        "                      the hub runs and supervises its own Mosquitto\n"
        "  --broker-listen ADDR:PORT  that Mosquitto's address (default 127.0.0.1:1883;\n"
        "                      a free port when --listen's port is 0)\n"
        "  --broker-tls        that Mosquitto only over TLS: clients present a certificate\n"
        "                      of the hub's CA, whose CN is their node name, and may use\n"
        "                      only their own node's topics (docs/PROTOCOL.md)%s\n"
        "  --no-broker-tls     that Mosquitto over plain TCP, any client, any topic%s\n"
        "  --mosquitto PATH    Mosquitto binary (default /usr/sbin/mosquitto)\n"
        "  --broker-plugin PATH  its drover-auth plugin (default: ../lib/drover/drover-auth.so\n"
        "                      beside drover-hub, or the build tree's)\n"
        "  --insecure-registry HOST[:PORT]  a registry the scheduler reads image platforms\n"
        "                      from over plain HTTP (repeatable; others over HTTPS)\n"
        "  --no-controllers    do not run the scheduler and the Deployment, DaemonSet and\n"
        "                      node controllers (they run by default)\n"
        "  --node-grace SECONDS  a node whose agent is silent this long is NotReady\n"
        "                      (default 10)\n"
        "  --hpa-sync-seconds S how often each HorizontalPodAutoscaler is evaluated (default 15,\n"
        "                        as Kubernetes)\n"
        "  --cluster-cidr CIDR the pod network: each node's pods get a block of it\n"
        "                      (default 10.42.0.0/16)\n"
        "  --node-cidr-mask-size N  the size of each node's block (default 24)\n"
        "  --service-cidr CIDR the Services' ClusterIPs (default 10.43.0.0/16; .1 and\n"
        "                      .10, the cluster DNS, are reserved)\n"
        "  --usage-history-mib N  memory for the usage history of nodes and pods (default 64);\n"
        "                        series beyond it keep their latest sample only\n"
        "  --session-hours N   how long a dashboard sign-in lasts (default 12; never past\n"
        "                      its token's expiry)\n"
        "  --auth              every API route but /healthz needs a bearer token; the\n"
        "                      first start writes an admin token to DIR/admin.token%s\n"
        "  --no-auth           no access control on the API%s\n"
        "  --tls               serve the API over HTTPS with DIR/pki/server.crt, issued by\n"
        "                      the hub's own CA (DIR/pki/ca.crt; clients: drover --ca)%s\n"
        "  --no-tls            serve the API over plain HTTP%s\n"
        "  --san NAME|IP       a further DNS name or IP address for the server certificate\n"
        "                      (repeatable; localhost, 127.0.0.1, ::1 and the --listen\n"
        "                      address are always in it)\n"
        "  --print-routes      print the API's routes (pattern and methods) and exit\n"
        "  --rotate-secret-key with the hub stopped: add a new key to DIR/secret.keys,\n"
        "                      re-encrypt every Secret with it, drop the old key, exit\n",
        DRV_HUB_DEFAULT_BROKER_TLS ? " (default)" : "",
        DRV_HUB_DEFAULT_BROKER_TLS ? "" : " (default)", DRV_HUB_DEFAULT_AUTH ? " (default)" : "",
        DRV_HUB_DEFAULT_AUTH ? "" : " (default)", DRV_HUB_DEFAULT_TLS ? " (default)" : "",
        DRV_HUB_DEFAULT_TLS ? "" : " (default)");
}

/* --rotate-secret-key: re-encrypts every Secret in DIR/hub.db with a new key. */
static int rotate_secret_key(const char *dir)
{
    drv_error_t err = DRV_ERROR_INIT;
    char id[DRV_PKI_KEY_ID_MAX];
    drv_hstore_reseal_t st;
    if (drv_hstore_keys_rotate_dir(dir, id, &st, &err) != DRV_OK) {
        fprintf(stderr, "drover-hub: %s\n", drv_error_msg(&err));
        return 1;
    }
    printf("secret key rotated: now %s; %zu Secret rows and change-log entries re-encrypted\n", id,
           st.resealed);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"data", required_argument, NULL, 'd'},
                                             {"listen", required_argument, NULL, 'l'},
                                             {"log-level", required_argument, NULL, 'L'},
                                             {"broker", required_argument, NULL, 'b'},
                                             {"broker-listen", required_argument, NULL, 'B'},
                                             {"broker-tls", no_argument, NULL, 'Y'},
                                             {"no-broker-tls", no_argument, NULL, 'W'},
                                             {"mosquitto", required_argument, NULL, 'M'},
                                             {"broker-plugin", required_argument, NULL, 'Q'},
                                             {"insecure-registry", required_argument, NULL, 'E'},
                                             {"controllers", no_argument, NULL, 'C'},
                                             {"no-controllers", no_argument, NULL, 'N'},
                                             {"node-grace", required_argument, NULL, 'G'},
                                             {"hpa-sync-seconds", required_argument, NULL, 'H'},
                                             {"usage-history-mib", required_argument, NULL, 'u'},
                                             {"cluster-cidr", required_argument, NULL, 'X'},
                                             {"node-cidr-mask-size", required_argument, NULL, 'm'},
                                             {"service-cidr", required_argument, NULL, 'V'},
                                             {"session-hours", required_argument, NULL, 'O'},
                                             {"auth", no_argument, NULL, 'A'},
                                             {"no-auth", no_argument, NULL, 'U'},
                                             {"tls", no_argument, NULL, 'T'},
                                             {"no-tls", no_argument, NULL, 'P'},
                                             {"san", required_argument, NULL, 'S'},
                                             {"print-routes", no_argument, NULL, 'R'},
                                             {"rotate-secret-key", no_argument, NULL, 'K'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    drv_hub_opts_t opts = {.data_dir = DRV_HUB_DEFAULT_DATA,
                           .listen = DRV_HUB_DEFAULT_LISTEN,
                           .run_broker = true,
                           .run_controllers = true,
                           .auth = DRV_HUB_DEFAULT_AUTH,
                           .tls = DRV_HUB_DEFAULT_TLS};
    static const char *sans[DRV_PKI_SAN_MAX], *insecure[DRV_PKI_SAN_MAX];
    drv_error_t err = DRV_ERROR_INIT;
    bool rotate_key = false;
    int broker_tls = -1; /* --broker-tls 1, --no-broker-tls 0, neither: the default */
    int c;
    while ((c = getopt_long(argc, argv, "d:l:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            opts.data_dir = optarg;
            break;
        case 'l':
            opts.listen = optarg;
            break;
        case 'b':
            opts.broker = optarg;
            opts.run_broker = false;
            break;
        case 'B':
            opts.broker_listen = optarg;
            break;
        case 'Y':
            broker_tls = 1;
            break;
        case 'W':
            broker_tls = 0;
            break;
        case 'M':
            opts.mosquitto = optarg;
            break;
        case 'Q':
            opts.broker_plugin = optarg;
            break;
        case 'E':
            if (opts.n_insecure_registries >= DRV_PKI_SAN_MAX) {
                fprintf(stderr, "drover-hub: --insecure-registry: at most %d\n", DRV_PKI_SAN_MAX);
                return 2;
            }
            insecure[opts.n_insecure_registries++] = optarg;
            opts.insecure_registries = insecure;
            break;
        case 'C':
            opts.run_controllers = true;
            break;
        case 'N':
            opts.run_controllers = false;
            break;
        case 'A':
            opts.auth = true;
            break;
        case 'U':
            opts.auth = false;
            break;
        case 'T':
            opts.tls = true;
            break;
        case 'P':
            opts.tls = false;
            break;
        case 'S':
            if (opts.n_sans >= DRV_PKI_SAN_MAX) {
                fprintf(stderr, "drover-hub: --san: at most %d names\n", DRV_PKI_SAN_MAX);
                return 2;
            }
            sans[opts.n_sans++] = optarg;
            opts.sans = sans;
            break;
        case 'R':
            return drv_api_print_routes(stdout) == 0 ? 0 : 1;
        case 'K':
            rotate_key = true;
            break;
        case 'G': {
            char *end = NULL;
            errno = 0;
            long v = strtol(optarg, &end, 10);
            if (errno || end == optarg || *end || v < 1 || v > 86400) {
                fprintf(stderr,
                        "drover-hub: --node-grace \"%s\": must be whole seconds, 1 to "
                        "86400\n",
                        optarg);
                return 2;
            }
            opts.node_grace_ms = (int64_t)v * 1000;
            break;
        }
        case 'H': {
            char *end = NULL;
            errno = 0;
            long v = strtol(optarg, &end, 10);
            if (errno || end == optarg || *end || v < 1 || v > 3600) {
                fprintf(stderr,
                        "drover-hub: --hpa-sync-seconds \"%s\": must be whole seconds, 1 to "
                        "3600\n",
                        optarg);
                return 2;
            }
            opts.hpa_sync_ms = (int64_t)v * 1000;
            break;
        }
        case 'O': {
            char *end = NULL;
            errno = 0;
            long v = strtol(optarg, &end, 10);
            if (errno || end == optarg || *end || v < 1 || v > 720) {
                fprintf(stderr,
                        "drover-hub: --session-hours \"%s\": must be whole hours, 1 to 720\n",
                        optarg);
                return 2;
            }
            opts.session_ttl_s = (int64_t)v * 3600;
            break;
        }
        case 'u': {
            char *end = NULL;
            errno = 0;
            long v = strtol(optarg, &end, 10);
            if (errno || end == optarg || *end || v < 1 || v > 65536) {
                fprintf(stderr,
                        "drover-hub: --usage-history-mib \"%s\": must be whole MiB, 1 to 65536\n",
                        optarg);
                return 2;
            }
            opts.usage_history_bytes = (size_t)v << 20;
            break;
        }
        case 'X':
            opts.cluster_cidr = optarg;
            break;
        case 'V':
            opts.service_cidr = optarg;
            break;
        case 'm': {
            char *end = NULL;
            errno = 0;
            long v = strtol(optarg, &end, 10);
            if (errno || end == optarg || *end || v < 1 || v > 30) {
                fprintf(stderr, "drover-hub: --node-cidr-mask-size \"%s\": must be 1 to 30\n",
                        optarg);
                return 2;
            }
            opts.node_cidr_mask = (int)v;
            break;
        }
        case 'L': {
            drv_log_level_t lvl;
            if (drv_log_parse_level(optarg, &lvl) != DRV_OK) {
                fprintf(stderr, "drover-hub: --log-level \"%s\": unknown level\n", optarg);
                return 2;
            }
            drv_log_set_level(lvl);
            break;
        }
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (broker_tls < 0) /* the default applies to the hub's own broker */
        opts.broker_tls = opts.run_broker && DRV_HUB_DEFAULT_BROKER_TLS;
    else
        opts.broker_tls = broker_tls == 1;
    if (broker_tls == 1 && !opts.run_broker) {
        fprintf(stderr, "drover-hub: --broker-tls: only for the hub's own Mosquitto (an external "
                        "broker is configured as docs/PROTOCOL.md \"Broker security\" says)\n");
        return 2;
    }
    drv_ctrl_netcfg_t netcfg;
    if (drv_ctrl_netcfg_init(&netcfg, opts.cluster_cidr, opts.node_cidr_mask, opts.service_cidr,
                             &err) != DRV_OK) {
        fprintf(stderr, "drover-hub: %s\n", drv_error_msg(&err));
        return 2;
    }
    if (optind < argc) {
        fprintf(stderr, "drover-hub: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (rotate_key)
        return rotate_secret_key(opts.data_dir);
    drv_hub_t *hub = NULL;
    if (drv_hub_new(&opts, &hub, &err) != DRV_OK) {
        fprintf(stderr, "drover-hub: %s\n", drv_error_msg(&err));
        return 1;
    }
    if (drv_enroll_attach(hub, opts.data_dir, opts.broker_tls, &err) != DRV_OK) {
        fprintf(stderr, "drover-hub: %s\n", drv_error_msg(&err));
        drv_hub_free(hub);
        return 1;
    }
    drv_err_t e = drv_hub_run(hub, &err);
    drv_hub_free(hub);
    if (e != DRV_OK) {
        fprintf(stderr, "drover-hub: %s\n", drv_error_msg(&err));
        return 1;
    }
    return 0;
}
