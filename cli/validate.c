/* drover validate: reads manifests, prints each normalized, or every problem with where it
 * is (file, document, field path). Exit 0 when all are valid, 1 otherwise, 2 for usage. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "drover/buf.h"
#include "drover/doc.h"
#include "drover/fmt.h"
#include "drover/manifest.h"
#include "drover/model.h"

#define MAX_SOURCES 64
#define OUTPUT_MAX (256u * 1024 * 1024)

static int usage(void)
{
    fprintf(stderr, "usage: drover validate -f FILE|DIR|- [-f ...] [-R] [-o json|yaml]\n");
    return 2;
}

/* Prints the valid objects: one JSON object, or a v1 List of them; YAML documents joined
 * by "---". */
static int print_all(drv_manifest_set_t *set, bool yaml)
{
    drv_buf_t out = DRV_BUF_INIT(OUTPUT_MAX);
    drv_err_t r = DRV_OK;
    if (yaml) {
        for (size_t i = 0; i < set->count && r == DRV_OK; i++) {
            drv_error_t err = DRV_ERROR_INIT;
            if (set->count > 1)
                r = drv_buf_puts(&out, "---\n");
            if (r == DRV_OK)
                r = drv_doc_emit_yaml(set->items[i].obj, &out, &err);
        }
    } else {
        cJSON *top = set->items[0].obj, *list = NULL;
        if (set->count > 1) {
            list = cJSON_CreateObject();
            cJSON *items = list ? cJSON_AddArrayToObject(list, "items") : NULL;
            if (!items || !cJSON_AddStringToObject(list, "apiVersion", "v1") ||
                !cJSON_AddStringToObject(list, "kind", "List")) {
                cJSON_Delete(list);
                fprintf(stderr, "drover validate: out of memory\n");
                return 1;
            }
            for (size_t i = 0; i < set->count; i++) {
                cJSON_AddItemToArray(items, set->items[i].obj);
                set->items[i].obj = NULL;
            }
            top = list;
        }
        char *s = drv_model_to_json(top, true);
        r = s ? drv_buf_puts(&out, s) : DRV_ERR_NOMEM;
        if (r == DRV_OK)
            r = drv_buf_putc(&out, '\n');
        free(s);
        cJSON_Delete(list);
    }
    if (r != DRV_OK) {
        fprintf(stderr, "drover validate: cannot print the result: %s\n", drv_strerror(r));
        drv_buf_free(&out);
        return 1;
    }
    fwrite(out.data, 1, out.len, stdout);
    drv_buf_free(&out);
    return fflush(stdout) == 0 ? 0 : 1;
}

int drv_cli_validate(int argc, char **argv)
{
    const char *sources[MAX_SOURCES];
    size_t nsources = 0;
    bool recursive = false, yaml = false;
    static const struct option opts[] = {{"filename", required_argument, NULL, 'f'},
                                         {"recursive", no_argument, NULL, 'R'},
                                         {"output", required_argument, NULL, 'o'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "f:Ro:h", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            if (nsources == MAX_SOURCES) {
                fprintf(stderr, "drover validate: at most %d -f options\n", MAX_SOURCES);
                return 2;
            }
            sources[nsources++] = optarg;
            break;
        case 'R':
            recursive = true;
            break;
        case 'o':
            if (!strcmp(optarg, "yaml"))
                yaml = true;
            else if (strcmp(optarg, "json")) {
                fprintf(stderr, "drover validate: -o must be json or yaml, not '%s'\n", optarg);
                return 2;
            }
            break;
        default:
            return usage();
        }
    }
    if (!nsources || optind != argc)
        return usage();

    drv_manifest_set_t set = {0};
    size_t problems = 0;
    for (size_t s = 0; s < nsources; s++) {
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
            if (drv_manifest_load_file(files[f], &set, &err) != DRV_OK) {
                fprintf(stderr, "%s\n", drv_error_msg(&err));
                problems++;
            }
        }
        drv_manifest_files_free(files, nfiles);
    }
    for (size_t i = 0; i < set.count; i++) {
        drv_diags_t diags = {0};
        drv_err_t r = drv_model_normalize(set.items[i].obj, &diags);
        if (r != DRV_OK) {
            char where[512];
            drv_manifest_where(&set.items[i], where, sizeof(where));
            char prefix[600];
            drv_fmt_cut(prefix, sizeof(prefix), "%s: ", where);
            char *text = r == DRV_ERR_INVALID ? drv_diags_format(&diags, prefix) : NULL;
            fputs(text ? text : prefix, stderr);
            if (!text)
                fprintf(stderr, "%s\n", drv_strerror(r));
            free(text);
            problems++;
        }
        drv_diags_free(&diags);
    }
    int rc;
    if (problems) {
        fprintf(stderr, "drover validate: %zu invalid document(s) or unreadable file(s)\n",
                problems);
        rc = 1;
    } else if (!set.count) {
        fprintf(stderr, "drover validate: no documents found\n");
        rc = 1;
    } else {
        rc = print_all(&set, yaml);
    }
    drv_manifest_set_free(&set);
    return rc;
}
