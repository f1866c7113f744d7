/* drover apply / drover delete -f: read manifests, validate them locally (every problem with
 * its field path), then create, update or leave each object on the hub, or delete it. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "drover/fmt.h"
#include "drover/manifest.h"
#include "drover/model.h"

#define MAX_SOURCES 64
#define PATH_MAX_LEN 2048

static void where_prefix(const drv_manifest_t *m, char *out, size_t outsz)
{
    char where[512];
    drv_manifest_where(m, where, sizeof(where));
    drv_fmt_cut(out, outsz, "%s: ", where);
}

/* Loads every source into set; returns the count of unreadable sources. */
static size_t load_sources(const char **sources, size_t n, bool recursive, drv_manifest_set_t *set)
{
    size_t problems = 0;
    for (size_t s = 0; s < n; s++) {
        char **files = NULL;
        size_t nfiles = 0;
        drv_error_t err = DRV_ERROR_INIT;
        if (drv_manifest_list_files(sources[s], recursive, &files, &nfiles, &err) != DRV_OK) {
            fprintf(stderr, "%s\n", drv_error_msg(&err));
            problems++;
            continue;
        }
        for (size_t f = 0; f < nfiles; f++) {
            drv_error_clear(&err);
            if (drv_manifest_load_file(files[f], set, &err) != DRV_OK) {
                fprintf(stderr, "%s\n", drv_error_msg(&err));
                problems++;
            }
        }
        drv_manifest_files_free(files, nfiles);
    }
    return problems;
}

/* Sets the namespace (flag, else the object's, else "default") and normalizes; prints the
 * problems. */
static bool prepare(drv_manifest_t *m, const char *ns_flag, const char **ns, const char **name,
                    drv_kind_t *kind)
{
    char prefix[600];
    where_prefix(m, prefix, sizeof(prefix));
    *kind = drv_model_kind(m->obj);
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(m->obj, "metadata");
    if (*kind != DRV_KIND_UNKNOWN && drv_cli_namespaced(*kind) && cJSON_IsObject(meta)) {
        const cJSON *cur = cJSON_GetObjectItemCaseSensitive(meta, "namespace");
        if (ns_flag && cJSON_IsString(cur) && strcmp(cur->valuestring, ns_flag)) {
            fprintf(stderr,
                    "%smetadata.namespace: \"%s\" differs from the namespace given with -n "
                    "(\"%s\")\n",
                    prefix, cur->valuestring, ns_flag);
            return false;
        }
        if (!cJSON_IsString(cur)) {
            cJSON_DeleteItemFromObjectCaseSensitive(meta, "namespace");
            if (!cJSON_AddStringToObject(meta, "namespace", ns_flag ? ns_flag : "default")) {
                fprintf(stderr, "%sout of memory\n", prefix);
                return false;
            }
        }
    }
    drv_diags_t diags = {0};
    drv_err_t r = drv_model_normalize(m->obj, &diags);
    if (r != DRV_OK) {
        char *text = r == DRV_ERR_INVALID ? drv_diags_format(&diags, prefix) : NULL;
        fputs(text ? text : prefix, stderr);
        if (!text)
            fprintf(stderr, "%s\n", drv_strerror(r));
        free(text);
        drv_diags_free(&diags);
        return false;
    }
    drv_diags_free(&diags);
    *kind = drv_model_kind(m->obj);
    meta = cJSON_GetObjectItemCaseSensitive(m->obj, "metadata");
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(meta, "name");
    const cJSON *nsj = cJSON_GetObjectItemCaseSensitive(meta, "namespace");
    *name = cJSON_IsString(n) ? n->valuestring : "";
    *ns = cJSON_IsString(nsj) ? nsj->valuestring : NULL;
    return true;
}

/* The server's copy reduced to what a manifest says, for comparison. */
static void strip_server_fields(cJSON *obj)
{
    static const char *const meta_fields[] = {
        "uid",           "resourceVersion",   "generation", "creationTimestamp",
        "managedFields", "deletionTimestamp", NULL};
    cJSON_DeleteItemFromObjectCaseSensitive(obj, "status");
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    for (size_t i = 0; meta_fields[i]; i++)
        cJSON_DeleteItemFromObjectCaseSensitive(meta, meta_fields[i]);
}

/* Annotations the hub's controllers write (revision history): a manifest does not own them,
 * so an apply keeps the hub's values unless the manifest sets them itself. */
static bool hub_owned_annotation(const char *key)
{
    return !strncmp(key, "deployment.kubernetes.io/", 25) || !strncmp(key, "drover.io/", 10);
}

static bool keep_hub_annotations(const cJSON *server, cJSON *local)
{
    const cJSON *sann = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(server, "metadata"), "annotations");
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(local, "metadata");
    const cJSON *a;
    cJSON_ArrayForEach(a, sann)
    {
        if (!a->string || !hub_owned_annotation(a->string))
            continue;
        cJSON *lann = cJSON_GetObjectItemCaseSensitive(meta, "annotations");
        if (!lann && !(lann = cJSON_AddObjectToObject(meta, "annotations")))
            return false;
        if (cJSON_GetObjectItemCaseSensitive(lann, a->string))
            continue;
        cJSON *dup = cJSON_Duplicate(a, true);
        if (!dup || !cJSON_AddItemToObject(lann, a->string, dup)) {
            cJSON_Delete(dup);
            return false;
        }
    }
    return true;
}

#define APPLY_CONFLICT 3

static int apply_attempt(drv_manifest_t *m, drv_kind_t kind, const char *ns, const char *name);

static int apply_one(drv_manifest_t *m, const char *ns_flag)
{
    const char *ns, *name;
    drv_kind_t kind;
    if (!prepare(m, ns_flag, &ns, &name, &kind))
        return 1;
    /* A controller may update the object between our GET and PUT: try again a few times. */
    for (int i = 0;; i++) {
        cJSON *copy = cJSON_Duplicate(m->obj, true);
        if (!copy) {
            fprintf(stderr, "drover apply: out of memory\n");
            return 1;
        }
        drv_manifest_t attempt = *m;
        attempt.obj = copy;
        int r = apply_attempt(&attempt, kind, ns, name);
        cJSON_Delete(copy);
        if (r != APPLY_CONFLICT)
            return r;
        if (i == 4) {
            fprintf(stderr, "drover apply: %s/%s keeps changing on the hub; try again\n",
                    drv_cli_kind_ref(kind), name);
            return 1;
        }
    }
}

static int apply_attempt(drv_manifest_t *m, drv_kind_t kind, const char *ns, const char *name)
{
    char coll[PATH_MAX_LEN], item[PATH_MAX_LEN];
    if (!drv_cli_path(kind, ns, NULL, coll, sizeof(coll)) ||
        !drv_cli_path(kind, ns, name, item, sizeof(item))) {
        fprintf(stderr, "drover apply: name or namespace too long\n");
        return 1;
    }
    drv_cli_resp_t cur;
    if (drv_cli_request("GET", item, NULL, NULL, &cur))
        return 2; /* hub unreachable: stop */
    const char *verb;
    const char *method;
    const char *path;
    if (cur.status == 404) {
        verb = "created";
        method = "POST";
        path = coll;
    } else if (cur.status == 200 && cJSON_IsObject(cur.json)) {
        const cJSON *rv = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(cur.json, "metadata"), "resourceVersion");
        char rvs[64] = "";
        if (cJSON_IsString(rv) && drv_fmt(rvs, sizeof(rvs), "%s", rv->valuestring) != DRV_OK) {
            drv_cli_resp_free(&cur);
            fprintf(stderr, "drover apply: %s/%s: the hub's resourceVersion is too long\n",
                    drv_cli_kind_ref(kind), name);
            return 1;
        }
        strip_server_fields(cur.json);
        if (!keep_hub_annotations(cur.json, m->obj)) {
            drv_cli_resp_free(&cur);
            fprintf(stderr, "drover apply: out of memory\n");
            return 1;
        }
        drv_json_sort_keys(cur.json);
        drv_json_sort_keys(m->obj);
        if (cJSON_Compare(cur.json, m->obj, true)) {
            printf("%s/%s unchanged\n", drv_cli_kind_ref(kind), name);
            drv_cli_resp_free(&cur);
            return 0;
        }
        cJSON *meta = cJSON_GetObjectItemCaseSensitive(m->obj, "metadata");
        if (*rvs && !cJSON_AddStringToObject(meta, "resourceVersion", rvs)) {
            drv_cli_resp_free(&cur);
            fprintf(stderr, "drover apply: out of memory\n");
            return 1;
        }
        verb = "configured";
        method = "PUT";
        path = item;
    } else {
        drv_cli_print_status(&cur);
        drv_cli_resp_free(&cur);
        return 1;
    }
    drv_cli_resp_free(&cur);
    char *body = drv_model_to_json(m->obj, false);
    if (!body) {
        fprintf(stderr, "drover apply: out of memory\n");
        return 1;
    }
    drv_cli_resp_t resp;
    int rc = drv_cli_request(method, path, "application/json", body, &resp);
    free(body);
    if (rc)
        return 2;
    if (resp.status == 409 && !strcmp(method, "PUT")) {
        drv_cli_resp_free(&resp);
        return APPLY_CONFLICT;
    }
    if (resp.status / 100 != 2) {
        char prefix[600];
        where_prefix(m, prefix, sizeof(prefix));
        fprintf(stderr, "%s%s/%s:\n", prefix, drv_cli_kind_ref(kind), name);
        drv_cli_print_status(&resp);
        drv_cli_resp_free(&resp);
        return 1;
    }
    printf("%s/%s %s\n", drv_cli_kind_ref(kind), name, verb);
    drv_cli_resp_free(&resp);
    return 0;
}

static int delete_one(drv_manifest_t *m, const char *ns_flag, bool ignore_missing)
{
    const char *ns, *name;
    drv_kind_t kind;
    if (!prepare(m, ns_flag, &ns, &name, &kind))
        return 1;
    char item[PATH_MAX_LEN];
    if (!drv_cli_path(kind, ns, name, item, sizeof(item))) {
        fprintf(stderr, "drover delete: name or namespace too long\n");
        return 1;
    }
    drv_cli_resp_t resp;
    if (drv_cli_request("DELETE", item, NULL, NULL, &resp))
        return 2;
    int rc = 0;
    if (resp.status / 100 == 2) {
        printf("%s \"%s\" deleted\n", drv_cli_kind_ref(kind), name);
    } else if (resp.status == 404 && ignore_missing) {
    } else {
        drv_cli_print_status(&resp);
        rc = 1;
    }
    drv_cli_resp_free(&resp);
    return rc;
}

static int run_files(const char *cmd, const char **sources, size_t nsources, bool recursive,
                     const char *ns, bool del, bool ignore_missing)
{
    drv_manifest_set_t set = {0};
    size_t problems = load_sources(sources, nsources, recursive, &set);
    if (!problems && !set.count) {
        fprintf(stderr, "drover %s: no objects passed to %s\n", cmd, cmd);
        problems++;
    }
    for (size_t i = 0; i < set.count; i++) {
        int r = del ? delete_one(&set.items[i], ns, ignore_missing) : apply_one(&set.items[i], ns);
        if (r == 2) { /* the hub is unreachable: no point going on */
            problems++;
            break;
        }
        problems += (size_t)r;
    }
    drv_manifest_set_free(&set);
    return problems ? 1 : 0;
}

int drv_cli_apply(int argc, char **argv)
{
    const char *sources[MAX_SOURCES];
    size_t nsources = 0;
    bool recursive = false;
    const char *ns = NULL;
    static const struct option opts[] = {{"filename", required_argument, NULL, 'f'},
                                         {"recursive", no_argument, NULL, 'R'},
                                         {"namespace", required_argument, NULL, 'n'},
                                         {"hub", required_argument, NULL, 'H'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "f:Rn:h", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            if (nsources == MAX_SOURCES) {
                fprintf(stderr, "drover apply: at most %d -f options\n", MAX_SOURCES);
                return 2;
            }
            sources[nsources++] = optarg;
            break;
        case 'R':
            recursive = true;
            break;
        case 'n':
            ns = optarg;
            break;
        case 'H':
            drv_cli_hub_set(optarg);
            break;
        default:
            fprintf(stderr,
                    "usage: drover apply -f FILE|DIR|- [-f ...] [-R] [-n NS] [--hub URL]\n");
            return 2;
        }
    }
    if (!nsources || optind != argc) {
        fprintf(stderr, "usage: drover apply -f FILE|DIR|- [-f ...] [-R] [-n NS] [--hub URL]\n");
        return 2;
    }
    return run_files("apply", sources, nsources, recursive, ns, false, false);
}

static int delete_usage(void)
{
    fprintf(stderr, "usage: drover delete KIND NAME... [-n NS] [--hub URL]\n"
                    "       drover delete -f FILE|DIR|- [-R] [--ignore-not-found]\n");
    return 2;
}

int drv_cli_delete(int argc, char **argv)
{
    const char *sources[MAX_SOURCES];
    size_t nsources = 0;
    bool recursive = false, ignore = false;
    const char *ns = NULL;
    static const struct option opts[] = {{"filename", required_argument, NULL, 'f'},
                                         {"recursive", no_argument, NULL, 'R'},
                                         {"namespace", required_argument, NULL, 'n'},
                                         {"hub", required_argument, NULL, 'H'},
                                         {"ignore-not-found", no_argument, NULL, 'I'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "f:Rn:h", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            if (nsources == MAX_SOURCES)
                return delete_usage();
            sources[nsources++] = optarg;
            break;
        case 'R':
            recursive = true;
            break;
        case 'n':
            ns = optarg;
            break;
        case 'H':
            drv_cli_hub_set(optarg);
            break;
        case 'I':
            ignore = true;
            break;
        default:
            return delete_usage();
        }
    }
    if (nsources) {
        if (optind != argc)
            return delete_usage();
        return run_files("delete", sources, nsources, recursive, ns, true, ignore);
    }
    if (argc - optind < 2)
        return delete_usage();
    drv_kind_t kind = drv_kind_parse(argv[optind]);
    if (kind == DRV_KIND_UNKNOWN) {
        fprintf(stderr, "drover: the server doesn't have a resource type \"%s\"\n", argv[optind]);
        return 1;
    }
    int rc = 0;
    for (int i = optind + 1; i < argc; i++) {
        char item[PATH_MAX_LEN];
        if (!drv_cli_path(kind, ns ? ns : "default", argv[i], item, sizeof(item))) {
            fprintf(stderr, "drover delete: name too long\n");
            rc = 1;
            continue;
        }
        drv_cli_resp_t resp;
        if (drv_cli_request("DELETE", item, NULL, NULL, &resp))
            return 1;
        if (resp.status / 100 == 2)
            printf("%s \"%s\" deleted\n", drv_cli_kind_ref(kind), argv[i]);
        else if (!(resp.status == 404 && ignore)) {
            drv_cli_print_status(&resp);
            rc = 1;
        }
        drv_cli_resp_free(&resp);
    }
    return rc;
}
