/* Field selectors as Kubernetes clients send them (?fieldSelector=metadata.name=web,
 * spec.nodeName!=n1): equality on dotted paths into the object, a missing field reading as
 * "". Used by list and watch to follow one object or the pods of one node. */
#include "api/api_int.h"

#include <stdio.h>
#include <string.h>

#include "drover/fmt.h"
#include "drover/json.h"

bool drv_api_fieldsel_parse(const char *s, drv_api_fieldsel_t *out, char *why, size_t whysz)
{
    memset(out, 0, sizeof(*out));
    const char *p = s;
    while (p && *p) {
        size_t len = strcspn(p, ",");
        if (out->n == DRV_API_FIELDSEL_MAX) {
            drv_fmt_cut(why, whysz, "more than %d requirements", DRV_API_FIELDSEL_MAX);
            return false;
        }
        drv_api_fieldreq_t *r = &out->reqs[out->n];
        const char *eq = memchr(p, '=', len);
        if (!eq || eq == p || (eq == p + 1 && *p == '!')) {
            drv_fmt_cut(why, whysz, "\"%.*s\": expected FIELD=VALUE or FIELD!=VALUE",
                        (int)(len > 64 ? 64 : len), p);
            return false;
        }
        size_t klen = (size_t)(eq - p);
        const char *v = eq + 1;
        if (eq[-1] == '!') {
            r->neg = true;
            klen--;
        } else if (*v == '=') {
            v++;
        }
        size_t vlen = len - (size_t)(v - p);
        if (klen >= sizeof(r->path) || vlen >= sizeof(r->value)) {
            drv_fmt_cut(why, whysz, "\"%.64s...\": field or value too long", p);
            return false;
        }
        memcpy(r->path, p, klen);
        r->path[klen] = '\0';
        memcpy(r->value, v, vlen);
        r->value[vlen] = '\0';
        for (size_t i = 0; i < klen; i++) {
            char c = r->path[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_') ||
                (c == '.' && (i == 0 || i + 1 == klen || r->path[i + 1] == '.'))) {
                drv_fmt_cut(why, whysz, "\"%s\" is not a field path", r->path);
                return false;
            }
        }
        out->n++;
        p += len;
        if (*p == ',')
            p++;
    }
    return true;
}

/* The field's value as text; false when it does not fit out, and then it equals no
 * requirement's value (those fit in the same size): never compare a cut value. */
static bool field_value(const cJSON *obj, const char *path, char *out, size_t outsz)
{
    const cJSON *cur = drv_json_at(obj, path);
    out[0] = '\0';
    drv_err_t rc = DRV_OK;
    if (cJSON_IsString(cur))
        rc = drv_fmt(out, outsz, "%s", cur->valuestring);
    else if (cJSON_IsBool(cur))
        rc = drv_fmt(out, outsz, "%s", cJSON_IsTrue(cur) ? "true" : "false");
    else if (cJSON_IsNumber(cur))
        rc = drv_fmt_double(out, outsz, cur->valuedouble);
    return rc == DRV_OK;
}

bool drv_api_fieldsel_matches(const drv_api_fieldsel_t *fs, const cJSON *obj)
{
    for (size_t i = 0; i < fs->n; i++) {
        char v[sizeof(fs->reqs[i].value)];
        bool eq = field_value(obj, fs->reqs[i].path, v, sizeof(v)) && !strcmp(v, fs->reqs[i].value);
        if (eq == fs->reqs[i].neg)
            return false;
    }
    return true;
}

void drv_api_fieldsel_filter(const drv_api_fieldsel_t *fs, cJSON *items)
{
    for (cJSON *it = fs->n ? items->child : NULL, *next = NULL; it; it = next) {
        next = it->next;
        if (!drv_api_fieldsel_matches(fs, it))
            cJSON_Delete(cJSON_DetachItemViaPointer(items, it));
    }
}
