/* drover scale / cordon / uncordon: small merge patches on the hub's objects. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define PATH_MAX_LEN 2048

/* PATCHes body onto the object; prints "<ref>/<name> <verb>". */
static int patch(drv_kind_t kind, const char *ns, const char *name, const char *body,
                 const char *verb)
{
    char path[PATH_MAX_LEN];
    if (!drv_cli_path(kind, ns, name, path, sizeof(path))) {
        fprintf(stderr, "drover: name too long\n");
        return 2;
    }
    drv_cli_resp_t resp;
    if (drv_cli_request("PATCH", path, "application/merge-patch+json", body, &resp))
        return 1;
    int rc = 0;
    if (resp.status / 100 == 2) {
        printf("%s/%s %s\n", drv_cli_kind_ref(kind), name, verb);
    } else {
        drv_cli_print_status(&resp);
        rc = 1;
    }
    drv_cli_resp_free(&resp);
    return rc;
}

static int scale_usage(void)
{
    fprintf(stderr, "usage: drover scale deployment NAME --replicas N [-n NS] [--hub URL]\n");
    return 2;
}

int drv_cli_scale(int argc, char **argv)
{
    const char *ns = NULL, *replicas = NULL;
    static const struct option opts[] = {{"namespace", required_argument, NULL, 'n'},
                                         {"replicas", required_argument, NULL, 'r'},
                                         {"hub", required_argument, NULL, 'H'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "n:h", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            ns = optarg;
            break;
        case 'r':
            replicas = optarg;
            break;
        case 'H':
            drv_cli_hub_set(optarg);
            break;
        default:
            return scale_usage();
        }
    }
    if (argc - optind != 2 || !replicas)
        return scale_usage();
    char *end;
    errno = 0;
    long n = strtol(replicas, &end, 10);
    if (errno || end == replicas || *end || n < 0 || n > 1000000) {
        fprintf(stderr,
                "drover scale: --replicas must be a whole number from 0 to 1000000, "
                "not '%s'\n",
                replicas);
        return 2;
    }
    drv_kind_t kind = drv_kind_parse(argv[optind]);
    if (kind == DRV_KIND_UNKNOWN) {
        fprintf(stderr, "drover: the server doesn't have a resource type \"%s\"\n", argv[optind]);
        return 1;
    }
    if (kind != DRV_KIND_DEPLOYMENT) {
        fprintf(stderr, "drover scale: only deployments can be scaled, not %s\n",
                drv_kind_plural(kind));
        return 1;
    }
    char body[64];
    snprintf(body, sizeof(body), "{\"spec\":{\"replicas\":%ld}}", n);
    return patch(kind, ns ? ns : "default", argv[optind + 1], body, "scaled");
}

static int cordon(int argc, char **argv, bool on)
{
    static const struct option opts[] = {{"hub", required_argument, NULL, 'H'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'H') {
            drv_cli_hub_set(optarg);
        } else {
            fprintf(stderr, "usage: drover %s NODE... [--hub URL]\n", on ? "cordon" : "uncordon");
            return 2;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "usage: drover %s NODE... [--hub URL]\n", on ? "cordon" : "uncordon");
        return 2;
    }
    int rc = 0;
    for (int i = optind; i < argc; i++) {
        int r = patch(DRV_KIND_NODE, NULL, argv[i],
                      on ? "{\"spec\":{\"unschedulable\":true}}"
                         : "{\"spec\":{\"unschedulable\":null}}",
                      on ? "cordoned" : "uncordoned");
        if (r > rc)
            rc = r;
    }
    return rc;
}

int drv_cli_cordon(int argc, char **argv)
{
    return cordon(argc, argv, true);
}

int drv_cli_uncordon(int argc, char **argv)
{
    return cordon(argc, argv, false);
}
