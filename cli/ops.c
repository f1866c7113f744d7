/* drover scale / cordon / uncordon: small merge patches on the hub's objects. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "drover/fmt.h"
#include "drover/json.h"
#include "cli.h"
#include "drover/proc.h"

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
    if (drv_fmt(body, sizeof(body), "{\"spec\":{\"replicas\":%ld}}", n) != DRV_OK) {
        fprintf(stderr, "drover scale: --replicas: too long\n");
        return 2;
    }
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

/* ---- rollout status ---- */

static int rollout_usage(void)
{
    fprintf(stderr, "usage: drover rollout status deployment NAME [-n NS] [--timeout SECONDS]\n"
                    "       drover rollout history deployment NAME [--revision N]\n"
                    "       drover rollout undo deployment NAME [--to-revision N]\n"
                    "       drover rollout pause|resume deployment NAME\n");
    return 2;
}

/* Polls the Deployment until its status shows the current generation fully rolled out. */
static int rollout_status(const char *ns, const char *name, long timeout_s)
{
    char path[PATH_MAX_LEN];
    if (!drv_cli_path(DRV_KIND_DEPLOYMENT, ns, name, path, sizeof(path))) {
        fprintf(stderr, "drover: name too long\n");
        return 2;
    }
    char last[256] = "";
    long long start_ms = drv_now_ms();
    for (;;) {
        drv_cli_resp_t resp;
        if (drv_cli_request("GET", path, NULL, NULL, &resp))
            return 1;
        if (resp.status != 200 || !cJSON_IsObject(resp.json)) {
            drv_cli_print_status(&resp);
            drv_cli_resp_free(&resp);
            return 1;
        }
        const cJSON *o = resp.json;
        long want = (long)drv_json_int_at(o, "spec.replicas", LONG_MIN, LONG_MAX, 1);
        long gen = (long)drv_json_int_at(o, "metadata.generation", LONG_MIN, LONG_MAX, 0);
        long seen = (long)drv_json_int_at(o, "status.observedGeneration", LONG_MIN, LONG_MAX, 0);
        long updated = (long)drv_json_int_at(o, "status.updatedReplicas", LONG_MIN, LONG_MAX, 0);
        long total = (long)drv_json_int_at(o, "status.replicas", LONG_MIN, LONG_MAX, 0);
        long avail = (long)drv_json_int_at(o, "status.availableReplicas", LONG_MIN, LONG_MAX, 0);
        drv_cli_resp_free(&resp);
        char msg[256];
        if (seen < gen)
            drv_fmt_cut(msg, sizeof(msg), "Waiting for deployment spec update to be observed...");
        else if (updated < want)
            drv_fmt_cut(msg, sizeof(msg),
                        "Waiting for deployment \"%s\" rollout to finish: %ld out of %ld new "
                        "replicas have been updated...",
                        name, updated, want);
        else if (total > updated)
            drv_fmt_cut(msg, sizeof(msg),
                        "Waiting for deployment \"%s\" rollout to finish: %ld old replicas are "
                        "pending termination...",
                        name, total - updated);
        else if (avail < updated)
            drv_fmt_cut(msg, sizeof(msg),
                        "Waiting for deployment \"%s\" rollout to finish: %ld of %ld updated "
                        "replicas are available...",
                        name, avail, updated);
        else {
            printf("deployment \"%s\" successfully rolled out\n", name);
            return 0;
        }
        if (strcmp(msg, last)) {
            printf("%s\n", msg);
            fflush(stdout);
            drv_fmt_cut(last, sizeof(last), "%s", msg);
        }
        if (timeout_s > 0 && drv_now_ms() - start_ms >= (long long)timeout_s * 1000) {
            fprintf(stderr, "drover: timed out waiting for the rollout of deployment \"%s\"\n",
                    name);
            return 1;
        }
        struct timespec nap = {0, 500 * 1000 * 1000};
        nanosleep(&nap, NULL);
    }
}

/* The Deployment and its kept revisions (the hub's controller keeps them in the
 * drover.io/history annotation and in status.history). */
static int load_history(const char *path, drv_cli_resp_t *resp, const cJSON **hist, cJSON **parsed)
{
    *parsed = NULL;
    *hist = NULL;
    if (drv_cli_request("GET", path, NULL, NULL, resp))
        return 1;
    if (resp->status != 200 || !cJSON_IsObject(resp->json)) {
        drv_cli_print_status(resp);
        drv_cli_resp_free(resp);
        return 1;
    }
    const cJSON *ann = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(resp->json, "metadata"), "annotations");
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(ann, "drover.io/history");
    if (cJSON_IsString(h))
        *parsed = cJSON_Parse(h->valuestring);
    if (cJSON_IsArray(*parsed) && cJSON_GetArraySize(*parsed)) {
        *hist = *parsed;
    } else {
        cJSON_Delete(*parsed);
        *parsed = NULL;
        *hist = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(resp->json, "status"), "history");
    }
    return 0;
}

static int rollout_history(const char *ns, const char *name, long revision)
{
    char path[PATH_MAX_LEN];
    if (!drv_cli_path(DRV_KIND_DEPLOYMENT, ns, name, path, sizeof(path))) {
        fprintf(stderr, "drover: name too long\n");
        return 2;
    }
    drv_cli_resp_t resp;
    const cJSON *hist;
    cJSON *parsed;
    if (load_history(path, &resp, &hist, &parsed))
        return 1;
    int rc = 0;
    const cJSON *e;
    if (revision) {
        const cJSON *found = NULL;
        cJSON_ArrayForEach(e, hist)
        {
            if (drv_json_int_at(e, "revision", 1, LONG_MAX, 0) == revision)
                found = e;
        }
        if (!found) {
            fprintf(stderr, "drover rollout: deployment \"%s\" has no revision %ld\n", name,
                    revision);
            rc = 1;
        } else {
            char *t = cJSON_Print(cJSON_GetObjectItemCaseSensitive(found, "template"));
            printf("deployment.apps/%s with revision #%ld\nPod Template:\n%s\n", name, revision,
                   t ? t : "");
            free(t);
        }
    } else {
        printf("deployment.apps/%s\nREVISION  CHANGE-CAUSE\n", name);
        cJSON_ArrayForEach(e, hist)
        {
            const cJSON *cause = cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(
                    cJSON_GetObjectItemCaseSensitive(
                        cJSON_GetObjectItemCaseSensitive(e, "template"), "metadata"),
                    "annotations"),
                "kubernetes.io/change-cause");
            printf("%-9ld %s\n", (long)drv_json_int_at(e, "revision", LONG_MIN, LONG_MAX, 0),
                   cJSON_IsString(cause) ? cause->valuestring : "<none>");
        }
    }
    cJSON_Delete(parsed);
    drv_cli_resp_free(&resp);
    return rc;
}

/* Puts a kept revision's template back (0: the one before the newest), as the hub's
 * rollback does; the controller rolls it out as a new revision. */
static int rollout_undo(const char *ns, const char *name, long revision)
{
    char path[PATH_MAX_LEN];
    if (!drv_cli_path(DRV_KIND_DEPLOYMENT, ns, name, path, sizeof(path))) {
        fprintf(stderr, "drover: name too long\n");
        return 2;
    }
    for (int attempt = 0; attempt < 5; attempt++) {
        drv_cli_resp_t resp;
        const cJSON *hist;
        cJSON *parsed;
        if (load_history(path, &resp, &hist, &parsed))
            return 1;
        const cJSON *e, *found = NULL, *newest = NULL;
        long newest_rev = -1;
        cJSON_ArrayForEach(e, hist)
        {
            long rv = (long)drv_json_int_at(e, "revision", LONG_MIN, LONG_MAX, -1);
            if (rv > newest_rev) {
                newest_rev = rv;
                newest = e;
            }
        }
        long best = -1;
        cJSON_ArrayForEach(e, hist)
        {
            long rv = (long)drv_json_int_at(e, "revision", LONG_MIN, LONG_MAX, -1);
            if (revision ? rv == revision : (e != newest && rv > best)) {
                found = e;
                best = rv;
            }
        }
        const cJSON *tmpl = cJSON_GetObjectItemCaseSensitive(found, "template");
        if (!cJSON_IsObject(tmpl)) {
            if (revision)
                fprintf(stderr, "drover rollout: deployment \"%s\" has no revision %ld\n", name,
                        revision);
            else
                fprintf(stderr, "drover rollout: deployment \"%s\" has no previous revision\n",
                        name);
            cJSON_Delete(parsed);
            drv_cli_resp_free(&resp);
            return 1;
        }
        cJSON *obj = resp.json;
        cJSON *spec = cJSON_GetObjectItemCaseSensitive(obj, "spec");
        cJSON *copy = cJSON_Duplicate(tmpl, true);
        cJSON_DeleteItemFromObjectCaseSensitive(obj, "status");
        bool ok = copy && cJSON_IsObject(spec) &&
                  cJSON_ReplaceItemInObjectCaseSensitive(spec, "template", copy);
        if (!ok)
            cJSON_Delete(copy);
        char *body = ok ? cJSON_PrintUnformatted(obj) : NULL;
        cJSON_Delete(parsed);
        drv_cli_resp_free(&resp);
        if (!body) {
            fprintf(stderr, "drover rollout: out of memory or a malformed Deployment\n");
            return 1;
        }
        int rc = drv_cli_request("PUT", path, "application/json", body, &resp);
        free(body);
        if (rc)
            return 1;
        if (resp.status == 409) {
            drv_cli_resp_free(&resp);
            continue;
        }
        rc = 0;
        if (resp.status / 100 == 2) {
            printf("deployment.apps/%s rolled back\n", name);
        } else {
            drv_cli_print_status(&resp);
            rc = 1;
        }
        drv_cli_resp_free(&resp);
        return rc;
    }
    fprintf(stderr, "drover rollout: deployment \"%s\" keeps changing on the hub; try again\n",
            name);
    return 1;
}

int drv_cli_rollout(int argc, char **argv)
{
    const char *ns = NULL;
    long timeout_s = 0, revision = 0;
    static const struct option opts[] = {{"namespace", required_argument, NULL, 'n'},
                                         {"timeout", required_argument, NULL, 't'},
                                         {"revision", required_argument, NULL, 'r'},
                                         {"to-revision", required_argument, NULL, 'r'},
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
        case 't': {
            char *end;
            errno = 0;
            timeout_s = strtol(optarg, &end, 10);
            if (errno || end == optarg || (*end && strcmp(end, "s")) || timeout_s < 0) {
                fprintf(stderr, "drover rollout: --timeout must be seconds, not '%s'\n", optarg);
                return 2;
            }
            break;
        }
        case 'r': {
            char *end;
            errno = 0;
            revision = strtol(optarg, &end, 10);
            if (errno || end == optarg || *end || revision < 0) {
                fprintf(stderr, "drover rollout: --revision must be a revision number, not '%s'\n",
                        optarg);
                return 2;
            }
            break;
        }
        case 'H':
            drv_cli_hub_set(optarg);
            break;
        default:
            return rollout_usage();
        }
    }
    if (argc - optind < 1)
        return rollout_usage();
    const char *sub = argv[optind];
    if (strcmp(sub, "status") && strcmp(sub, "history") && strcmp(sub, "undo") &&
        strcmp(sub, "pause") && strcmp(sub, "resume")) {
        fprintf(stderr,
                "drover rollout: '%s' is not a rollout command (status, history, undo, pause, "
                "resume)\n",
                sub);
        return 2;
    }
    const char *name = NULL;
    if (argc - optind == 3 && drv_kind_parse(argv[optind + 1]) == DRV_KIND_DEPLOYMENT)
        name = argv[optind + 2];
    else if (argc - optind == 2 && !strncmp(argv[optind + 1], "deployment/", 11))
        name = argv[optind + 1] + 11;
    else if (argc - optind == 2 && !strncmp(argv[optind + 1], "deploy/", 7))
        name = argv[optind + 1] + 7;
    if (!name || !*name)
        return rollout_usage();
    if (!strcmp(sub, "history"))
        return rollout_history(ns ? ns : "default", name, revision);
    if (!strcmp(sub, "undo"))
        return rollout_undo(ns ? ns : "default", name, revision);
    /* spec.paused: the Deployment controller makes no rollout progress while it is set. */
    if (!strcmp(sub, "pause"))
        return patch(DRV_KIND_DEPLOYMENT, ns ? ns : "default", name, "{\"spec\":{\"paused\":true}}",
                     "paused");
    if (!strcmp(sub, "resume"))
        return patch(DRV_KIND_DEPLOYMENT, ns ? ns : "default", name,
                     "{\"spec\":{\"paused\":false}}", "resumed");
    return rollout_status(ns ? ns : "default", name, timeout_s);
}

/* ---- drain ---- */

static bool owned_by_daemonset(const cJSON *pod)
{
    const cJSON *refs = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(pod, "metadata"), "ownerReferences");
    const cJSON *r;
    cJSON_ArrayForEach(r, refs)
    {
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(r, "kind");
        if (cJSON_IsString(k) && !strcmp(k->valuestring, "DaemonSet"))
            return true;
    }
    return false;
}

int drv_cli_drain(int argc, char **argv)
{
    bool ignore_ds = false;
    static const struct option opts[] = {{"ignore-daemonsets", no_argument, NULL, 'D'},
                                         {"hub", required_argument, NULL, 'H'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'D') {
            ignore_ds = true;
        } else if (c == 'H') {
            drv_cli_hub_set(optarg);
        } else {
            fprintf(stderr, "usage: drover drain NODE [--ignore-daemonsets] [--hub URL]\n");
            return 2;
        }
    }
    if (argc - optind != 1) {
        fprintf(stderr, "usage: drover drain NODE [--ignore-daemonsets] [--hub URL]\n");
        return 2;
    }
    const char *node = argv[optind];
    int rc = patch(DRV_KIND_NODE, NULL, node, "{\"spec\":{\"unschedulable\":true}}", "cordoned");
    if (rc)
        return rc;
    char path[PATH_MAX_LEN], sel[600], esc[1800];
    if (drv_fmt(sel, sizeof(sel), "spec.nodeName=%s", node) != DRV_OK ||
        !drv_cli_path(DRV_KIND_POD, NULL, NULL, path, sizeof(path)) ||
        !drv_cli_escape(sel, esc, sizeof(esc)) || strlen(path) + strlen(esc) + 16 >= sizeof(path)) {
        fprintf(stderr, "drover drain: node name too long\n");
        return 2;
    }
    size_t plen = strlen(path);
    if (drv_fmt(path + plen, sizeof(path) - plen, "?fieldSelector=%s", esc) != DRV_OK) {
        fprintf(stderr, "drover drain: node name too long\n");
        return 2;
    }
    drv_cli_resp_t list;
    if (drv_cli_request("GET", path, NULL, NULL, &list))
        return 1;
    if (list.status != 200) {
        drv_cli_print_status(&list);
        drv_cli_resp_free(&list);
        return 1;
    }
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(list.json, "items");
    const cJSON *p;
    size_t ds = 0;
    cJSON_ArrayForEach(p, items) ds += owned_by_daemonset(p);
    if (ds && !ignore_ds) {
        fprintf(stderr,
                "drover drain: cannot delete %zu DaemonSet-managed pod(s) on %s (use "
                "--ignore-daemonsets)\n",
                ds, node);
        drv_cli_resp_free(&list);
        return 1;
    }
    cJSON_ArrayForEach(p, items)
    {
        if (owned_by_daemonset(p))
            continue;
        const char *ns = drv_json_str_or(drv_json_get(p, "metadata"), "namespace", ""),
                   *name = drv_json_str_or(drv_json_get(p, "metadata"), "name", "");
        char item[PATH_MAX_LEN];
        if (!drv_cli_path(DRV_KIND_POD, ns, name, item, sizeof(item)))
            continue;
        printf("evicting pod %s/%s\n", ns, name);
        drv_cli_resp_t resp;
        if (drv_cli_request("DELETE", item, NULL, NULL, &resp)) {
            drv_cli_resp_free(&list);
            return 1;
        }
        if (resp.status / 100 == 2 || resp.status == 404) {
            printf("pod/%s evicted\n", name);
        } else {
            drv_cli_print_status(&resp);
            rc = 1;
        }
        drv_cli_resp_free(&resp);
    }
    drv_cli_resp_free(&list);
    if (!rc)
        printf("node/%s drained\n", node);
    return rc;
}
