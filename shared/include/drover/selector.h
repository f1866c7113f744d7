/* Label selectors: the string form used by `-l` ("app=web,tier!=db,env in (a,b),!legacy")
 * and the structured form of Deployments and DaemonSets (matchLabels + matchExpressions),
 * parsed into one representation and matched against a set of labels. */
#ifndef DROVER_SELECTOR_H
#define DROVER_SELECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>
#include "drover/error.h"

typedef enum {
    DRV_SEL_EQ,        /* key=value, key==value, matchLabels */
    DRV_SEL_NE,        /* key!=value */
    DRV_SEL_IN,        /* key in (a,b) */
    DRV_SEL_NOTIN,     /* key notin (a,b) */
    DRV_SEL_EXISTS,    /* key */
    DRV_SEL_NOTEXISTS, /* !key */
} drv_sel_op_t;

#define DRV_SEL_MAX_REQS 64
#define DRV_SEL_MAX_VALUES 64

typedef struct drv_sel_req {
    drv_sel_op_t op;
    char *key;     /* owned */
    char **values; /* owned, nvalues entries; one for EQ/NE, none for EXISTS/NOTEXISTS */
    size_t nvalues;
} drv_sel_req_t;

/* All requirements must hold (AND). An empty selector matches everything. */
typedef struct drv_selector {
    drv_sel_req_t *reqs; /* owned */
    size_t nreqs;
} drv_selector_t;

/* Parses the string form. Keys and values are checked with the label rules in names.h. */
DRV_API DRV_NODISCARD drv_err_t drv_selector_parse(const char *s, drv_selector_t *out,
                                                   drv_error_t *err);
/* Parses {matchLabels: {...}, matchExpressions: [{key, operator, values}]} (already
 * structurally validated by the model, but checked again here). */
DRV_API DRV_NODISCARD drv_err_t drv_selector_from_json(const cJSON *sel, drv_selector_t *out,
                                                       drv_error_t *err);
/* labels is a JSON object of string values (metadata.labels); NULL means no labels. */
DRV_API bool drv_selector_matches(const drv_selector_t *sel, const cJSON *labels);
DRV_API bool drv_selector_empty(const drv_selector_t *sel);
/* The string form of sel ("app=web,env in (a,b),!legacy"), requirements in sel's order, as
 * Kubernetes prints a selector (Scale's status.selector, kubectl's SELECTOR column). DRV_ERR_RANGE
 * when it does not fit in out (out then holds ""). */
DRV_API DRV_NODISCARD drv_err_t drv_selector_format(const drv_selector_t *sel, char *out,
                                                    size_t outsz);
DRV_API void drv_selector_free(drv_selector_t *sel);

#endif
