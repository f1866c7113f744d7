/* Manifest sources: the files, directories and standard input that `drover validate`,
 * `drover apply` and the agent's static-pod directory read. A source yields its documents
 * in order; a `kind: List` document yields its items. Normalizing them is the caller's job
 * (drv_model_normalize), so that every problem can be reported with where it came from. */
#ifndef DROVER_MANIFEST_H
#define DROVER_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>
#include "drover/error.h"

/* Largest manifest file read (bytes). */
#define DRV_MANIFEST_MAX_FILE (16u * 1024 * 1024)
/* Files listed from one directory tree at most. */
#define DRV_MANIFEST_MAX_FILES 10000

typedef struct drv_manifest {
    char *source;  /* owned: the file name, or "-" for standard input */
    unsigned doc;  /* 0-based document index in the source */
    int item;      /* index within a List document, or -1 */
    unsigned line; /* 1-based line where the document starts */
    cJSON *obj;    /* owned */
} drv_manifest_t;

typedef struct drv_manifest_set {
    drv_manifest_t *items; /* owned */
    size_t count;
    size_t cap;
} drv_manifest_set_t;

/* The manifest files a path names, sorted: the path itself if it is a file (or "-"); the
 * *.yaml, *.yml and *.json files in it if it is a directory, descending into
 * subdirectories when recursive (hidden entries skipped). *files is a malloc'd array of
 * malloc'd strings (free with drv_manifest_files_free). */
DRV_API DRV_NODISCARD drv_err_t drv_manifest_list_files(const char *path, bool recursive,
                                                        char ***files, size_t *count,
                                                        drv_error_t *err);
DRV_API void drv_manifest_files_free(char **files, size_t count);

/* Reads one file ("-": standard input), parses its documents and appends them to set.
 * On failure (unreadable, too large, malformed YAML/JSON) nothing is appended and err says
 * "FILE: line L, column C: problem". */
DRV_API DRV_NODISCARD drv_err_t drv_manifest_load_file(const char *file, drv_manifest_set_t *set,
                                                       drv_error_t *err);

/* Parses text already in memory, as if read from a file named source. */
DRV_API DRV_NODISCARD drv_err_t drv_manifest_load_text(const char *source, const char *text,
                                                       size_t len, drv_manifest_set_t *set,
                                                       drv_error_t *err);

/* "FILE: document 2", or "FILE: document 2, item 0" — where a manifest came from. */
DRV_API void drv_manifest_where(const drv_manifest_t *m, char *out, size_t outsz);

DRV_API void drv_manifest_set_free(drv_manifest_set_t *set);

#endif
