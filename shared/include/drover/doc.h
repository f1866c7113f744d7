/* Manifest documents: a YAML stream (YAML 1.2 core schema, many documents separated by
 * "---") or JSON text, turned into cJSON trees under hard limits, so that no input (alias
 * bombs, deep nesting, huge scalars) can make us crash or hold unbounded memory; and the
 * reverse, a cJSON tree written out as block-style YAML. */
#ifndef DROVER_DOC_H
#define DROVER_DOC_H

#include <stddef.h>
#include <cjson/cJSON.h>
#include "drover/buf.h"
#include "drover/error.h"

typedef struct drv_doc_limits {
    size_t max_input;   /* whole input, bytes */
    size_t max_scalar;  /* one string value or key, bytes */
    unsigned max_depth; /* nesting of mappings and sequences */
    size_t max_nodes;   /* values created for the whole input, counting alias expansions */
    size_t max_docs;    /* documents in one stream */
} drv_doc_limits_t;

/* 16 MiB input, 1 MiB scalars (the Kubernetes object limit), depth 64, 1M nodes, 1000 docs. */
DRV_API extern const drv_doc_limits_t drv_doc_default_limits;

typedef struct drv_doc {
    cJSON *root;    /* owned by the list; never NULL */
    unsigned index; /* 0-based position among the non-empty documents of the stream */
    unsigned line;  /* 1-based line where the document starts */
} drv_doc_t;

typedef struct drv_doc_list {
    drv_doc_t *docs; /* owned */
    size_t count;
} drv_doc_list_t;

/* Parses data (len bytes, need not be NUL-terminated). Text whose first non-blank character
 * is '{' or '[' is read as one JSON value, anything else as a YAML stream; empty documents
 * (only comments or "---") are skipped. Plain YAML scalars follow the core schema (null,
 * true/false, integers incl. 0x/0o, floats incl. .inf/.nan as errors since JSON cannot hold
 * them); quoted scalars are strings; tags !!str !!int !!float !!bool !!null are honoured,
 * others refused. Anchors, aliases and "<<" merge keys work within the node budget; a
 * duplicate mapping key is an error. Errors carry "line L, column C: ...". On failure *out
 * is untouched. lim may be NULL for the defaults. */
DRV_API DRV_NODISCARD drv_err_t drv_doc_parse(const char *data, size_t len,
                                              const drv_doc_limits_t *lim, drv_doc_list_t *out,
                                              drv_error_t *err);
DRV_API void drv_doc_list_free(drv_doc_list_t *list);

/* Appends root as a block-style YAML document (no "---" header) to out. Strings that would
 * read back as another type ("true", "1.0", "null", "") are quoted. */
DRV_API DRV_NODISCARD drv_err_t drv_doc_emit_yaml(const cJSON *root, drv_buf_t *out,
                                                  drv_error_t *err);

#endif
