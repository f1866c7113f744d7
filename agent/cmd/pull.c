/* drover-agent pull: fetch one image into the local store and print its manifest digest. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "image/registry.h"
#include "image/store.h"

#define MAX_LIST 32

static int usage(FILE *f)
{
    fprintf(f, "usage: drover-agent pull [OPTIONS] IMAGE\n"
               "\n"
               "Fetches IMAGE into the image store and prints the digest of the image manifest\n"
               "that was pulled (for a multi-platform image, the one for the platform).\n"
               "\n"
               "options:\n"
               "  --store DIR              image store (default " DRV_STORE_DEFAULT_DIR ")\n"
               "  --insecure HOST[:PORT]   talk plain http to this registry (repeatable)\n"
               "  --platform OS/ARCH[/VARIANT]  platform to pull for (default: this device's)\n"
               "  --auth HOST=USER:PASS    credentials for a registry (repeatable)\n"
               "  -v, --verbose            report what was fetched and the bytes downloaded\n"
               "  -h, --help               this text\n");
    return f == stderr ? 2 : 0;
}

int drv_agent_cmd_pull(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"store", required_argument, NULL, 's'},
        {"insecure", required_argument, NULL, 'i'},
        {"platform", required_argument, NULL, 'p'},
        {"auth", required_argument, NULL, 'a'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *store_dir = DRV_STORE_DEFAULT_DIR;
    const char *insecure[MAX_LIST];
    size_t n_insecure = 0;
    drv_registry_cred_t creds[MAX_LIST];
    char *cred_bufs[MAX_LIST];
    size_t n_creds = 0;
    const char *platform_arg = NULL;
    bool verbose = false;
    int status = 2;
    drv_registry_t *reg = NULL;
    drv_store_t *st = NULL;

    optind = 0; /* glibc: full re-initialisation, argv[0] is "pull" */
    int c;
    while ((c = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
        switch (c) {
        case 's':
            store_dir = optarg;
            break;
        case 'i':
            if (n_insecure == MAX_LIST) {
                fprintf(stderr, "drover-agent pull: --insecure: at most %d\n", MAX_LIST);
                goto out;
            }
            insecure[n_insecure++] = optarg;
            break;
        case 'p':
            platform_arg = optarg;
            break;
        case 'a': {
            if (n_creds == MAX_LIST) {
                fprintf(stderr, "drover-agent pull: --auth: at most %d\n", MAX_LIST);
                goto out;
            }
            char *copy = strdup(optarg);
            if (copy == NULL) {
                fprintf(stderr, "drover-agent pull: out of memory\n");
                status = 1;
                goto out;
            }
            char *eq = strchr(copy, '=');
            char *colon = eq ? strchr(eq + 1, ':') : NULL;
            if (eq == NULL || eq == copy || colon == NULL || colon == eq + 1) {
                free(copy);
                fprintf(stderr, "drover-agent pull: --auth: expected HOST=USER:PASS\n");
                goto out;
            }
            *eq = '\0';
            *colon = '\0';
            cred_bufs[n_creds] = copy;
            creds[n_creds] = (drv_registry_cred_t){copy, eq + 1, colon + 1};
            n_creds++;
            break;
        }
        case 'v':
            verbose = true;
            break;
        case 'h':
            status = usage(stdout);
            goto out;
        default:
            usage(stderr);
            goto out;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "drover-agent pull: expected exactly one IMAGE\n");
        usage(stderr);
        goto out;
    }
    const char *image = argv[optind];

    drv_error_t err = DRV_ERROR_INIT;
    drv_platform_t plat;
    if (platform_arg) {
        if (drv_platform_parse(platform_arg, &plat, &err) != DRV_OK) {
            fprintf(stderr, "drover-agent pull: --platform: %s\n", drv_error_msg(&err));
            goto out;
        }
    } else {
        drv_platform_default(&plat);
    }

    status = 1;
    drv_registry_opts_t opts = {
        .insecure = insecure, .n_insecure = n_insecure, .creds = creds, .n_creds = n_creds};
    if (drv_registry_new(&opts, &reg, &err) != DRV_OK ||
        drv_store_open(store_dir, &st, &err) != DRV_OK) {
        fprintf(stderr, "drover-agent pull: %s\n", drv_error_msg(&err));
        goto out;
    }
    drv_pull_result_t res;
    if (drv_registry_pull(reg, st, image, &plat, &res, &err) != DRV_OK) {
        fprintf(stderr, "drover-agent: %s (%s)\n", drv_error_msg(&err), drv_strerror(err.code));
        goto out;
    }
    char ds[DRV_DIGEST_STR_MAX], ps[DRV_PLATFORM_STR_MAX];
    if (verbose) {
        fprintf(stderr, "pulled %s\n", res.reference);
        if (res.has_index)
            fprintf(stderr, "index: %s\n", drv_digest_format(&res.index, ds));
        fprintf(stderr, "manifest: %s\n", drv_digest_format(&res.manifest, ds));
        fprintf(stderr, "platform: %s\n", drv_platform_format(&res.platform, ps, sizeof(ps)));
        fprintf(stderr, "layers: %zu (fetched %zu, unpacked %zu)\n", res.n_layers,
                res.layers_fetched, res.layers_unpacked);
        fprintf(stderr, "downloaded: %llu bytes\n", (unsigned long long)res.bytes);
    }
    printf("%s\n", drv_digest_format(&res.manifest, ds));
    status = fflush(stdout) == 0 ? 0 : 1;
out:
    drv_store_close(st);
    drv_registry_free(reg);
    for (size_t i = 0; i < n_creds; i++) {
        size_t len = strlen(creds[i].password);
        memset(cred_bufs[i], 0, (size_t)(creds[i].password - cred_bufs[i]) + len);
        free(cred_bufs[i]);
    }
    return status;
}
