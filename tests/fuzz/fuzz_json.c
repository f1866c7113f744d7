/* libFuzzer target for shared/json's table reader: the input is parsed as JSON and read through a
 * table of every field type, loose and strict. Every read either succeeds with values inside
 * their bounds or fails with DRV_ERR_INVALID and a message naming the field path; integers come
 * only from finite, whole, in-range numbers (UBSan would flag a bad cast). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/json.h"

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_json: %s: %s\n", what, detail);
    abort();
}

static void read_once(const cJSON *o, unsigned flags)
{
    const char *image = NULL;
    char name[16] = "";
    bool priv = false, have_ratio = false;
    int64_t replicas = 0, any_int = 0;
    uint64_t size = 0;
    double ratio = 0;
    const cJSON *labels = NULL, *ports = NULL, *any = NULL;
    const drv_json_field_t table[] = {
        {.key = "image", .type = DRV_JSON_T_STRING, .dest = &image},
        {.key = "name", .type = DRV_JSON_T_STRBUF, .dest = name, .size = sizeof(name)},
        {.key = "privileged", .type = DRV_JSON_T_BOOL, .need = DRV_JSON_NULLABLE, .dest = &priv},
        {.key = "replicas", .type = DRV_JSON_T_INT, .dest = &replicas, .min = -5, .max = 100},
        {.key = "big", .type = DRV_JSON_T_INT, .dest = &any_int},
        {.key = "size", .type = DRV_JSON_T_UINT, .dest = &size, .umax = 1000},
        {.key = "ratio",
         .type = DRV_JSON_T_DOUBLE,
         .dest = &ratio,
         .dmin = 0,
         .dmax = 1,
         .present = &have_ratio},
        {.key = "labels", .type = DRV_JSON_T_OBJECT, .dest = &labels},
        {.key = "ports", .type = DRV_JSON_T_ARRAY, .dest = &ports},
        {.key = "any", .type = DRV_JSON_T_ANY, .dest = &any},
    };
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t rc =
        drv_json_read_table(o, "spec.x[0]", table, DRV_JSON_TABLE_LEN(table), flags, &err);
    if (rc != DRV_OK) {
        if (rc != DRV_ERR_INVALID || err.code != rc)
            die("unexpected error code", drv_error_msg(&err));
        if (strncmp(err.msg, "spec.x[0]", 9) != 0)
            die("error does not name the path", err.msg);
        return;
    }
    if (replicas < -5 || replicas > 100 || size > 1000 || ratio < 0 || ratio > 1)
        die("value out of bounds", "");
    if (strlen(name) >= sizeof(name))
        die("name overflow", name);
    if ((labels && !cJSON_IsObject(labels)) || (ports && !cJSON_IsArray(ports)))
        die("wrong type", "");
    (void)image;
    (void)priv;
    (void)have_ratio;
    (void)any;
    (void)drv_json_int_at(o, "labels.a", INT64_MIN, INT64_MAX, 0);
    (void)drv_json_str_at(o, "labels.a");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *o = cJSON_ParseWithLength((const char *)data, size);
    read_once(o, 0);
    read_once(o, DRV_JSON_STRICT);
    if (cJSON_IsNumber(o)) {
        int64_t i;
        uint64_t u;
        (void)drv_json_to_int(o->valuedouble, INT64_MIN, INT64_MAX, &i);
        (void)drv_json_to_uint(o->valuedouble, UINT64_MAX, &u);
    }
    cJSON_Delete(o);
    return 0;
}
