/* drover top nodes|pods: current usage from the hub's metrics.k8s.io API, as kubectl top prints
 * it (CPU in millicores, memory in Mi; nodes also as a share of their capacity). */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "drover/fmt.h"
#include "drover/json.h"
#include "drover/quantity.h"

#define PATH_LEN 1024

static int usage(void)
{
    fprintf(stderr, "usage: drover top nodes [NAME] [-l SELECTOR]\n"
                    "       drover top pods [NAME] [-n NS | -A] [-l SELECTOR] [--containers]\n");
    return 2;
}

/* "123456789n" / "250m" / "2" -> millicores; "1234Ki" / "5Mi" -> bytes. */
static int64_t cpu_milli(const char *q)
{
    if (!q)
        return -1;
    size_t l = strlen(q);
    if (l > 1 && q[l - 1] == 'n') {
        char *end;
        long long v = strtoll(q, &end, 10);
        return end == q + l - 1 ? v / 1000000 : -1;
    }
    int64_t m;
    drv_error_t e = DRV_ERROR_INIT;
    return drv_qty_parse_cpu(q, &m, NULL, &e) == DRV_OK ? m : -1;
}

static int64_t mem_bytes(const char *q)
{
    int64_t b;
    drv_error_t e = DRV_ERROR_INIT;
    return q && drv_qty_parse_memory(q, &b, NULL, &e) == DRV_OK ? b : -1;
}

static int top_nodes(const char *name, const char *sel)
{
    char path[PATH_LEN], esc[512];
    if (sel && !drv_cli_escape(sel, esc, sizeof(esc)))
        return usage();
    if (drv_fmt(path, sizeof(path), "/apis/metrics.k8s.io/v1beta1/nodes%s%s%s%s", name ? "/" : "",
                name ? name : "", sel ? "?labelSelector=" : "", sel ? esc : "") != DRV_OK) {
        fprintf(stderr, "drover: top: the node name or selector is too long\n");
        return 2;
    }
    drv_cli_resp_t resp;
    if (drv_cli_request("GET", path, NULL, NULL, &resp) != 0)
        return 1;
    if (resp.status / 100 != 2 || !resp.json) {
        drv_cli_print_status(&resp);
        drv_cli_resp_free(&resp);
        return 1;
    }
    /* The nodes' capacity, for the percentages. */
    drv_cli_resp_t nodes = {0};
    bool have_nodes = drv_cli_request("GET", "/api/v1/nodes", NULL, NULL, &nodes) == 0 &&
                      nodes.status / 100 == 2 && nodes.json;
    const cJSON *items = drv_json_get(resp.json, "items");
    cJSON *one = NULL;
    if (name) {
        one = cJSON_CreateArray();
        if (one)
            cJSON_AddItemReferenceToArray(one, resp.json);
        items = one;
    }
    printf("%-24s %-12s %-6s %-15s %s\n", "NAME", "CPU(cores)", "CPU%", "MEMORY(bytes)", "MEMORY%");
    size_t rows = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, items)
    {
        const char *n = drv_json_str_at(it, "metadata.name");
        int64_t cpu = cpu_milli(drv_json_str_at(it, "usage.cpu"));
        int64_t mem = mem_bytes(drv_json_str_at(it, "usage.memory"));
        int64_t cap_cpu = -1, cap_mem = -1;
        const cJSON *nd;
        const cJSON *node_items = have_nodes ? drv_json_get(nodes.json, "items") : NULL;
        cJSON_ArrayForEach(nd, node_items)
        {
            const char *nn = drv_json_str_at(nd, "metadata.name");
            if (n && nn && !strcmp(nn, n)) {
                cap_cpu = cpu_milli(drv_json_str_at(nd, "status.allocatable.cpu"));
                cap_mem = mem_bytes(drv_json_str_at(nd, "status.allocatable.memory"));
            }
        }
        char c1[24], c2[24], c3[24], c4[24];
        drv_fmt_cut(c1, sizeof(c1), "%" PRId64 "m", cpu);
        if (cap_cpu > 0)
            drv_fmt_cut(c2, sizeof(c2), "%" PRId64 "%%", cpu * 100 / cap_cpu);
        else
            drv_fmt_cut(c2, sizeof(c2), "<unknown>");
        drv_fmt_cut(c3, sizeof(c3), "%" PRId64 "Mi", mem / (1024 * 1024));
        if (cap_mem > 0)
            drv_fmt_cut(c4, sizeof(c4), "%" PRId64 "%%", mem * 100 / cap_mem);
        else
            drv_fmt_cut(c4, sizeof(c4), "<unknown>");
        printf("%-24s %-12s %-6s %-15s %s\n", n ? n : "?", c1, c2, c3, c4);
        rows++;
    }
    cJSON_Delete(one);
    if (have_nodes)
        drv_cli_resp_free(&nodes);
    drv_cli_resp_free(&resp);
    if (rows == 0)
        fprintf(stderr,
                "drover: no usage yet: agents push it every 15 s (metrics.intervalSeconds)\n");
    return 0;
}

static int top_pods(const char *name, const char *ns, bool all, const char *sel, bool containers)
{
    char path[PATH_LEN], esc[512];
    if (sel && !drv_cli_escape(sel, esc, sizeof(esc)))
        return usage();
    drv_err_t rc;
    if (all)
        rc = drv_fmt(path, sizeof(path), "/apis/metrics.k8s.io/v1beta1/pods%s%s",
                     sel ? "?labelSelector=" : "", sel ? esc : "");
    else
        rc = drv_fmt(path, sizeof(path), "/apis/metrics.k8s.io/v1beta1/namespaces/%s/pods%s%s%s%s",
                     ns, name ? "/" : "", name ? name : "", sel ? "?labelSelector=" : "",
                     sel ? esc : "");
    if (rc != DRV_OK) {
        fprintf(stderr, "drover: top: the name, namespace or selector is too long\n");
        return 2;
    }
    drv_cli_resp_t resp;
    if (drv_cli_request("GET", path, NULL, NULL, &resp) != 0)
        return 1;
    if (resp.status / 100 != 2 || !resp.json) {
        drv_cli_print_status(&resp);
        drv_cli_resp_free(&resp);
        return 1;
    }
    const cJSON *items = drv_json_get(resp.json, "items");
    cJSON *one = NULL;
    if (name) {
        one = cJSON_CreateArray();
        if (one)
            cJSON_AddItemReferenceToArray(one, resp.json);
        items = one;
    }
    if (all)
        printf("%-16s ", "NAMESPACE");
    if (containers)
        printf("%-32s %-20s %-12s %s\n", "POD", "NAME", "CPU(cores)", "MEMORY(bytes)");
    else
        printf("%-40s %-12s %s\n", "NAME", "CPU(cores)", "MEMORY(bytes)");
    size_t rows = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, items)
    {
        const char *pn = drv_json_str_at(it, "metadata.name");
        const char *pns = drv_json_str_at(it, "metadata.namespace");
        int64_t cpu = 0, mem = 0;
        const cJSON *c;
        cJSON_ArrayForEach(c, drv_json_get(it, "containers"))
        {
            int64_t cc = cpu_milli(drv_json_str_at(c, "usage.cpu"));
            int64_t cm = mem_bytes(drv_json_str_at(c, "usage.memory"));
            if (containers) {
                if (all)
                    printf("%-16s ", pns ? pns : "");
                char a[24], b[24];
                drv_fmt_cut(a, sizeof(a), "%" PRId64 "m", cc);
                drv_fmt_cut(b, sizeof(b), "%" PRId64 "Mi", cm / (1024 * 1024));
                printf("%-32s %-20s %-12s %s\n", pn ? pn : "?",
                       drv_json_str(c, "name") ? drv_json_str(c, "name") : "?", a, b);
            }
            cpu += cc > 0 ? cc : 0;
            mem += cm > 0 ? cm : 0;
        }
        if (!containers) {
            if (all)
                printf("%-16s ", pns ? pns : "");
            char a[24], b[24];
            drv_fmt_cut(a, sizeof(a), "%" PRId64 "m", cpu);
            drv_fmt_cut(b, sizeof(b), "%" PRId64 "Mi", mem / (1024 * 1024));
            printf("%-40s %-12s %s\n", pn ? pn : "?", a, b);
        }
        rows++;
    }
    cJSON_Delete(one);
    drv_cli_resp_free(&resp);
    if (rows == 0)
        fprintf(stderr, "drover: no usage yet for these pods (agents push it every 15 s)\n");
    return 0;
}

int drv_cli_top(int argc, char **argv)
{
    static const struct option longopts[] = {{"namespace", required_argument, NULL, 'n'},
                                             {"all-namespaces", no_argument, NULL, 'A'},
                                             {"selector", required_argument, NULL, 'l'},
                                             {"containers", no_argument, NULL, 'c'},
                                             {NULL, 0, NULL, 0}};
    const char *ns = "default", *sel = NULL;
    bool all = false, containers = false;
    optind = 1;
    int ch;
    while ((ch = getopt_long(argc, argv, "n:Al:", longopts, NULL)) != -1) {
        switch (ch) {
        case 'n':
            ns = optarg;
            break;
        case 'A':
            all = true;
            break;
        case 'l':
            sel = optarg;
            break;
        case 'c':
            containers = true;
            break;
        default:
            return usage();
        }
    }
    if (optind >= argc)
        return usage();
    const char *what = argv[optind];
    const char *name = optind + 1 < argc ? argv[optind + 1] : NULL;
    if (optind + 2 < argc)
        return usage();
    if (!strcmp(what, "nodes") || !strcmp(what, "node") || !strcmp(what, "no"))
        return top_nodes(name, sel);
    if (!strcmp(what, "pods") || !strcmp(what, "pod") || !strcmp(what, "po"))
        return top_pods(name, ns, all && !name, sel, containers);
    return usage();
}
