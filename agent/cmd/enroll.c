/* drover-agent enroll: gets the node its identity now (a flashing tool or the first boot runs
 * it), or checks the one it has; prints the node name, the certificate's expiry and
 * fingerprint. */
#include <getopt.h>
#include <stdio.h>
#include <time.h>

#include "cmd/cmd.h"
#include "drover/cleanup.h"
#include "drover/file.h"
#include "drover/pki.h"
#include "enroll/enroll.h"

int drv_agent_cmd_enroll(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {NULL, 0, NULL, 0}};
    const char *config = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
        if (c != 'c') {
            fprintf(stderr, "usage: drover-agent enroll [--config FILE]\n");
            return 2;
        }
        config = optarg;
    }
    if (optind != argc) {
        fprintf(stderr, "usage: drover-agent enroll [--config FILE]\n");
        return 2;
    }
    drv_agent_config_t cfg;
    if (drv_agent_cmd_load_config(config, &cfg) != 0)
        return 1;
    drv_error_t err = DRV_ERROR_INIT;
    drv_enroll_paths_t p;
    if (drv_enroll_ensure(&cfg, &p, &err) != DRV_OK) {
        fprintf(stderr, "drover-agent enroll: %s\n", drv_error_msg(&err));
        return 1;
    }
    _cleanup_free_ char *cert = NULL;
    drv_pki_cert_info_t info;
    if (drv_file_read_capped(p.cert, DRV_PKI_PEM_MAX, &cert, NULL, &err) != DRV_OK ||
        drv_pki_cert_info(cert, &info, &err) != DRV_OK) {
        fprintf(stderr, "drover-agent enroll: %s\n", drv_error_msg(&err));
        return 1;
    }
    char when[32];
    time_t na = (time_t)info.not_after;
    struct tm tm;
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&na, &tm));
    printf("node: %s\ncertificate: %s\nexpires: %s\nfingerprint: %s\n", info.cn, p.cert, when,
           info.fingerprint);
    return 0;
}
