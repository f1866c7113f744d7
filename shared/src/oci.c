/* Manifest, index and image config parsing. The bytes come from a registry, so every field
 * is checked for type and range before it is copied into fixed-size structs; nothing from
 * the document is trusted for an allocation size beyond the counted caps in manifest.h. */
#include "drover/oci.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "drover/cleanup.h"
#include "drover/fmt.h"
#include "drover/json.h"
#include "drover/namelist.h"

#define MAX_SAFE_SIZE 9007199254740991.0 /* 2^53 - 1: exact in a double */
#define CONFIG_MAX_STRINGS 4096          /* Env/Cmd/Entrypoint entries */

/* ---- platform ---- */

static drv_err_t copy_field(char *dst, size_t dstsz, const char *src, const char *field,
                            drv_error_t *err)
{
    size_t n = strlen(src);
    if (n >= dstsz)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: longer than %zu characters", field,
                             dstsz - 1);
    memcpy(dst, src, n + 1);
    return DRV_OK;
}

static bool plat_word_ok(const char *s)
{
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-' ||
              *s == '.'))
            return false;
    return true;
}

/* Normalises GOARCH aliases in place; variant may be changed too. */
static void normalise_arch(drv_platform_t *p, bool fill_variant)
{
    if (!strcmp(p->arch, "aarch64")) {
        DRV_FMT_LIT(p->arch, "arm64");
    } else if (!strcmp(p->arch, "x86_64") || !strcmp(p->arch, "x86-64")) {
        DRV_FMT_LIT(p->arch, "amd64");
    } else if (!strcmp(p->arch, "armhf")) {
        DRV_FMT_LIT(p->arch, "arm");
        if (p->variant[0] == '\0')
            DRV_FMT_LIT(p->variant, "v7");
    } else if (!strcmp(p->arch, "armel")) {
        DRV_FMT_LIT(p->arch, "arm");
        if (p->variant[0] == '\0')
            DRV_FMT_LIT(p->variant, "v6");
    } else if (!strcmp(p->arch, "i386") || !strcmp(p->arch, "i686")) {
        DRV_FMT_LIT(p->arch, "386");
    }
    if (!strcmp(p->arch, "arm64") && !strcmp(p->variant, "8"))
        DRV_FMT_LIT(p->variant, "v8");
    if (!strcmp(p->arch, "arm") && p->variant[0] >= '5' && p->variant[0] <= '8' &&
        p->variant[1] == '\0') {
        p->variant[1] = p->variant[0]; /* "7" -> "v7" */
        p->variant[0] = 'v';
        p->variant[2] = '\0';
    }
    if (fill_variant && p->variant[0] == '\0') {
        if (!strcmp(p->arch, "arm64"))
            DRV_FMT_LIT(p->variant, "v8");
        else if (!strcmp(p->arch, "arm"))
            DRV_FMT_LIT(p->variant, "v7");
    }
}

drv_err_t drv_platform_parse(const char *s, drv_platform_t *out, drv_error_t *err)
{
    if (s == NULL || *s == '\0')
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "platform: empty (expected OS/ARCH[/VARIANT])");
    drv_platform_t p;
    memset(&p, 0, sizeof(p));
    char buf[DRV_PLATFORM_STR_MAX];
    if (drv_fmt(buf, sizeof(buf), "%s", s) != DRV_OK)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "platform: too long (expected OS/ARCH[/VARIANT])");
    char *parts[4] = {0};
    size_t n = 0;
    char *cur = buf;
    for (;;) {
        char *slash = strchr(cur, '/');
        if (n == 3)
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "platform \"%s\": expected OS/ARCH[/VARIANT]", s);
        parts[n++] = cur;
        if (!slash)
            break;
        *slash = '\0';
        cur = slash + 1;
    }
    if (n < 2 || parts[0][0] == '\0' || parts[1][0] == '\0' || (n == 3 && parts[2][0] == '\0'))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "platform \"%s\": expected OS/ARCH[/VARIANT]",
                             s);
    for (size_t i = 0; i < n; i++) {
        for (char *c = parts[i]; *c; c++)
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c - 'A' + 'a');
        if (!plat_word_ok(parts[i]))
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "platform \"%s\": only letters, digits, '_', '-' and '.' allowed",
                                 s);
    }
    if (drv_fmt(p.os, sizeof(p.os), "%s", parts[0]) != DRV_OK ||
        drv_fmt(p.arch, sizeof(p.arch), "%s", parts[1]) != DRV_OK ||
        (n == 3 && drv_fmt(p.variant, sizeof(p.variant), "%s", parts[2]) != DRV_OK))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "platform \"%s\": a part is too long", s);
    normalise_arch(&p, true);
    *out = p;
    return DRV_OK;
}

void drv_platform_default(drv_platform_t *out)
{
    memset(out, 0, sizeof(*out));
    DRV_FMT_LIT(out->os, "linux");
#if defined(__aarch64__)
    DRV_FMT_LIT(out->arch, "arm64");
    DRV_FMT_LIT(out->variant, "v8");
#elif defined(__arm__)
    DRV_FMT_LIT(out->arch, "arm");
#if defined(__ARM_ARCH) && __ARM_ARCH >= 7
    DRV_FMT_LIT(out->variant, "v7");
#elif defined(__ARM_ARCH) && __ARM_ARCH == 6
    DRV_FMT_LIT(out->variant, "v6");
#else
    DRV_FMT_LIT(out->variant, "v5");
#endif
#elif defined(__x86_64__)
    DRV_FMT_LIT(out->arch, "amd64");
#elif defined(__i386__)
    DRV_FMT_LIT(out->arch, "386");
#elif defined(__riscv) && __riscv_xlen == 64
    DRV_FMT_LIT(out->arch, "riscv64");
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    DRV_FMT_LIT(out->arch, "ppc64le");
#elif defined(__s390x__)
    DRV_FMT_LIT(out->arch, "s390x");
#else
#error "drv_platform_default: unknown target architecture"
#endif
}

const char *drv_platform_format(const drv_platform_t *p, char *out, size_t outsz)
{
    if (outsz == 0)
        return out;
    /* Never a cut name: an out too small (DRV_PLATFORM_STR_MAX never is) gets "". */
    if (drv_fmt(out, outsz, "%s/%s%s%s", p->os, p->arch, p->variant[0] ? "/" : "", p->variant) !=
        DRV_OK)
        out[0] = '\0';
    return out;
}

/* Variant number of "vN", or -1. */
static int variant_num(const char *v)
{
    if (v[0] != 'v' || v[1] < '0' || v[1] > '9')
        return -1;
    char *end;
    long n = strtol(v + 1, &end, 10);
    if (*end != '\0' || n > 100)
        return -1;
    return (int)n;
}

/* How well an entry's platform suits want: -1 unusable, higher is better. */
int drv_platform_match(const drv_platform_t *want, const drv_platform_t *have)
{
    if (strcmp(want->os, have->os) != 0 || strcmp(want->arch, have->arch) != 0)
        return -1;
    if (!strcmp(want->variant, have->variant))
        return 100;
    int w = variant_num(want->variant), h = variant_num(have->variant);
    if (!strcmp(want->arch, "arm")) {
        if (have->variant[0] == '\0')
            return w >= 7 ? 90 : -1; /* Docker reads a bare "arm" as v7 */
        if (w > 0 && h >= 5 && h < w)
            return 50 + h;
        return -1;
    }
    if (!strcmp(want->arch, "arm64")) {
        if (have->variant[0] == '\0')
            return 90;
        if (w > 8 && h == 8)
            return 50;
        return -1;
    }
    if (have->variant[0] == '\0')
        return 90;
    if (want->variant[0] == '\0' && !strcmp(have->variant, "v1"))
        return 80;
    return -1;
}

drv_err_t drv_oci_index_select(const drv_oci_manifest_t *index, const drv_platform_t *want,
                               const drv_oci_descriptor_t **out, drv_error_t *err)
{
    char ws[DRV_PLATFORM_STR_MAX];
    if (index->kind != DRV_OCI_INDEX)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "not an image index");
    const drv_oci_descriptor_t *best = NULL;
    int best_score = -1;
    for (size_t i = 0; i < index->n_entries; i++) {
        const drv_oci_descriptor_t *d = &index->entries[i];
        if (!d->has_platform)
            continue;
        if (strcmp(d->media_type, DRV_MT_OCI_MANIFEST) != 0 &&
            strcmp(d->media_type, DRV_MT_DOCKER_MANIFEST) != 0)
            continue;
        int s = drv_platform_match(want, &d->platform);
        if (s > best_score) {
            best = d;
            best_score = s;
        }
    }
    if (best) {
        *out = best;
        return DRV_OK;
    }
    char avail[512] = "";
    size_t used = 0;
    for (size_t i = 0; i < index->n_entries && used + 1 < sizeof(avail); i++) {
        const drv_oci_descriptor_t *d = &index->entries[i];
        if (!d->has_platform)
            continue;
        char ps[DRV_PLATFORM_STR_MAX];
        int n = snprintf(avail + used, sizeof(avail) - used, "%s%s", used ? ", " : "",
                         drv_platform_format(&d->platform, ps, sizeof(ps)));
        if (n < 0 || (size_t)n >= sizeof(avail) - used)
            break;
        used += (size_t)n;
    }
    return drv_error_set(err, DRV_ERR_NOTFOUND, 0,
                         "no image for platform %s in the index (has: %s)",
                         drv_platform_format(want, ws, sizeof(ws)), used ? avail : "none");
}

/* ---- descriptors ---- */

static drv_err_t parse_descriptor(const cJSON *obj, const char *path, bool want_platform,
                                  drv_oci_descriptor_t *d, drv_error_t *err)
{
    char field[160];
    if (!cJSON_IsObject(obj))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: must be an object", path);
    memset(d, 0, sizeof(*d));
    const char *mt = NULL, *dg = NULL;
    drv_err_t rc = drv_json_read_string(obj, path, "mediaType", DRV_JSON_REQUIRED, &mt, NULL, err);
    if (rc != DRV_OK)
        return rc;
    drv_fmt_cut(field, sizeof(field), "%s.mediaType", path);
    rc = copy_field(d->media_type, sizeof(d->media_type), mt, field, err);
    if (rc != DRV_OK)
        return rc;
    rc = drv_json_read_string(obj, path, "digest", DRV_JSON_REQUIRED, &dg, NULL, err);
    if (rc != DRV_OK)
        return rc;
    rc = drv_digest_parse(dg, &d->digest, err);
    if (rc != DRV_OK)
        return drv_error_wrap(err, "%s.digest", path);
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(obj, "size");
    if (size == NULL)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s.size: required", path);
    if (!cJSON_IsNumber(size) ||
        !drv_json_to_uint(size->valuedouble, (uint64_t)MAX_SAFE_SIZE, &d->size))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s.size: must be a non-negative integer",
                             path);
    if (!want_platform)
        return DRV_OK;
    const cJSON *plat = cJSON_GetObjectItemCaseSensitive(obj, "platform");
    if (plat == NULL || cJSON_IsNull(plat))
        return DRV_OK;
    if (!cJSON_IsObject(plat))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s.platform: must be an object", path);
    const char *os = NULL, *arch = NULL, *variant = NULL;
    drv_fmt_cut(field, sizeof(field), "%s.platform", path);
    if ((rc = drv_json_read_string(plat, field, "os", DRV_JSON_REQUIRED, &os, NULL, err)) !=
            DRV_OK ||
        (rc = drv_json_read_string(plat, field, "architecture", DRV_JSON_REQUIRED, &arch, NULL,
                                   err)) != DRV_OK ||
        (rc = drv_json_read_string(plat, field, "variant", DRV_JSON_NULLABLE, &variant, NULL,
                                   err)) != DRV_OK)
        return rc;
    drv_fmt_cut(field, sizeof(field), "%s.platform.os", path);
    if ((rc = copy_field(d->platform.os, sizeof(d->platform.os), os, field, err)) != DRV_OK)
        return rc;
    drv_fmt_cut(field, sizeof(field), "%s.platform.architecture", path);
    if ((rc = copy_field(d->platform.arch, sizeof(d->platform.arch), arch, field, err)) != DRV_OK)
        return rc;
    drv_fmt_cut(field, sizeof(field), "%s.platform.variant", path);
    if (variant && (rc = copy_field(d->platform.variant, sizeof(d->platform.variant), variant,
                                    field, err)) != DRV_OK)
        return rc;
    normalise_arch(&d->platform, false);
    d->has_platform = true;
    return DRV_OK;
}

static bool is_layer_type(const char *mt)
{
    /* A name list (drover/namelist.h): no pointer to relocate per type. */
    static const char ok[] = "application/vnd.oci.image.layer.v1.tar\0"
                             "application/vnd.oci.image.layer.v1.tar+gzip\0"
                             "application/vnd.oci.image.layer.v1.tar+zstd\0"
                             "application/vnd.oci.image.layer.nondistributable.v1.tar\0"
                             "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip\0"
                             "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd\0"
                             "application/vnd.docker.image.rootfs.diff.tar.gzip\0"
                             "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip\0";
    return drv_namelist_has(ok, mt);
}

/* Media type without parameters ("application/json; charset=utf-8" -> "application/json"). */
static void bare_type(const char *ct, char *out, size_t outsz)
{
    size_t n = 0;
    while (ct[n] && ct[n] != ';' && ct[n] != ' ' && n + 1 < outsz) {
        out[n] = ct[n];
        n++;
    }
    out[n] = '\0';
}

drv_err_t drv_oci_manifest_parse(const char *data, size_t len, const char *content_type,
                                 drv_oci_manifest_t *out, drv_error_t *err)
{
    if (len > DRV_OCI_MANIFEST_MAX_BYTES)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0,
                             "manifest: %zu bytes, more than the %u allowed", len,
                             DRV_OCI_MANIFEST_MAX_BYTES);
    _cleanup_cjson_ cJSON *root = cJSON_ParseWithLength(data, len);
    if (root == NULL)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "manifest: not valid JSON");
    if (!cJSON_IsObject(root))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "manifest: must be a JSON object");
    const cJSON *sv = cJSON_GetObjectItemCaseSensitive(root, "schemaVersion");
    if (!cJSON_IsNumber(sv))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "schemaVersion: required number");
    if (sv->valuedouble == 1)
        return drv_error_set(err, DRV_ERR_UNSUPPORTED, 0,
                             "schemaVersion: 1 (Docker schema 1 manifests are not supported)");
    if (sv->valuedouble != 2)
        return drv_error_set(err, DRV_ERR_UNSUPPORTED, 0, "schemaVersion: %g, only 2 is supported",
                             sv->valuedouble);

    drv_oci_manifest_t m;
    memset(&m, 0, sizeof(m));
    const char *mt = NULL;
    drv_err_t rc = drv_json_read_string(root, NULL, "mediaType", DRV_JSON_NULLABLE, &mt, NULL, err);
    if (rc != DRV_OK)
        return rc;
    char ct[DRV_MEDIA_TYPE_MAX] = "";
    if (mt == NULL && content_type != NULL)
        bare_type(content_type, ct, sizeof(ct));
    const char *eff = mt ? mt : ct;
    const cJSON *manifests = cJSON_GetObjectItemCaseSensitive(root, "manifests");
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(root, "layers");
    if (!strcmp(eff, DRV_MT_OCI_INDEX) || !strcmp(eff, DRV_MT_DOCKER_LIST)) {
        m.kind = DRV_OCI_INDEX;
    } else if (!strcmp(eff, DRV_MT_OCI_MANIFEST) || !strcmp(eff, DRV_MT_DOCKER_MANIFEST)) {
        m.kind = DRV_OCI_MANIFEST;
    } else if (mt != NULL || (eff[0] != '\0' && strcmp(eff, "application/json") != 0)) {
        char q[DRV_MEDIA_TYPE_MAX];
        bare_type(eff, q, sizeof(q));
        return drv_error_set(err, DRV_ERR_UNSUPPORTED, 0,
                             "mediaType: \"%s\" is not an image manifest or index", q);
    } else if (manifests && !layers) {
        m.kind = DRV_OCI_INDEX;
        eff = DRV_MT_OCI_INDEX;
    } else if (layers && !manifests) {
        m.kind = DRV_OCI_MANIFEST;
        eff = DRV_MT_OCI_MANIFEST;
    } else {
        return drv_error_set(
            err, DRV_ERR_INVALID, 0,
            "manifest: no mediaType, and neither only \"layers\" nor only \"manifests\"");
    }
    if ((rc = copy_field(m.media_type, sizeof(m.media_type), eff, "mediaType", err)) != DRV_OK)
        return rc;

    const char *list_key = m.kind == DRV_OCI_INDEX ? "manifests" : "layers";
    const cJSON *list = m.kind == DRV_OCI_INDEX ? manifests : layers;
    size_t cap = m.kind == DRV_OCI_INDEX ? DRV_OCI_INDEX_MAX_ENTRIES : DRV_OCI_MAX_LAYERS;
    if (list == NULL)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: required", list_key);
    if (!cJSON_IsArray(list))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: must be an array", list_key);
    int count = cJSON_GetArraySize(list);
    if ((size_t)count > cap)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "%s: %d entries, more than the %zu allowed",
                             list_key, count, cap);
    if (m.kind == DRV_OCI_MANIFEST) {
        const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(root, "config");
        if (cfg == NULL)
            return drv_error_set(err, DRV_ERR_INVALID, 0, "config: required");
        if ((rc = parse_descriptor(cfg, "config", false, &m.config, err)) != DRV_OK)
            return rc;
        if (strcmp(m.config.media_type, DRV_MT_OCI_CONFIG) != 0 &&
            strcmp(m.config.media_type, DRV_MT_DOCKER_CONFIG) != 0)
            return drv_error_set(err, DRV_ERR_UNSUPPORTED, 0,
                                 "config.mediaType: \"%s\" is not a container image config",
                                 m.config.media_type);
        if (m.config.size > DRV_OCI_CONFIG_MAX_BYTES)
            return drv_error_set(err, DRV_ERR_TOOBIG, 0,
                                 "config.size: %llu bytes, more than the %u allowed",
                                 (unsigned long long)m.config.size, DRV_OCI_CONFIG_MAX_BYTES);
        if (count == 0)
            return drv_error_set(err, DRV_ERR_INVALID, 0, "layers: must not be empty");
    }
    _cleanup_free_ drv_oci_descriptor_t *entries = NULL;
    if (count > 0) {
        entries = calloc((size_t)count, sizeof(*entries));
        if (entries == NULL)
            return drv_error_set(err, DRV_ERR_NOMEM, 0, "manifest: out of memory");
    }
    size_t i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, list)
    {
        char path[48];
        drv_fmt_cut(path, sizeof(path), "%s[%zu]", list_key, i);
        rc = parse_descriptor(e, path, m.kind == DRV_OCI_INDEX, &entries[i], err);
        if (rc != DRV_OK)
            return rc;
        if (m.kind == DRV_OCI_MANIFEST && !is_layer_type(entries[i].media_type))
            return drv_error_set(err, DRV_ERR_UNSUPPORTED, 0,
                                 "%s.mediaType: \"%s\" is not a supported layer type", path,
                                 entries[i].media_type);
        i++;
    }
    m.entries = TAKE_PTR(entries);
    m.n_entries = i;
    *out = m;
    return DRV_OK;
}

void drv_oci_manifest_free(drv_oci_manifest_t *m)
{
    if (m == NULL)
        return;
    free(m->entries);
    m->entries = NULL;
    m->n_entries = 0;
}

/* ---- image config ---- */

static void free_strv(char **v)
{
    if (v == NULL)
        return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}

/* A JSON array of strings (or null/absent) into a NULL-terminated vector. */
static drv_err_t get_strv(const cJSON *obj, const char *key, char ***out, size_t *count,
                          drv_error_t *err)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = NULL;
    *count = 0;
    if (a == NULL || cJSON_IsNull(a))
        return DRV_OK;
    if (!cJSON_IsArray(a))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "config.%s: must be an array of strings",
                             key);
    int n = cJSON_GetArraySize(a);
    if (n > CONFIG_MAX_STRINGS)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0,
                             "config.%s: %d entries, more than the %d allowed", key, n,
                             CONFIG_MAX_STRINGS);
    char **v = calloc((size_t)n + 1, sizeof(*v));
    if (v == NULL)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "config.%s: out of memory", key);
    size_t i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a)
    {
        if (!cJSON_IsString(e) || e->valuestring == NULL) {
            free_strv(v);
            return drv_error_set(err, DRV_ERR_INVALID, 0, "config.%s[%zu]: must be a string", key,
                                 i);
        }
        v[i] = strdup(e->valuestring);
        if (v[i] == NULL) {
            free_strv(v);
            return drv_error_set(err, DRV_ERR_NOMEM, 0, "config.%s: out of memory", key);
        }
        i++;
    }
    *out = v;
    *count = i;
    return DRV_OK;
}

drv_err_t drv_oci_config_parse(const char *data, size_t len, drv_oci_config_t *out,
                               drv_error_t *err)
{
    if (len > DRV_OCI_CONFIG_MAX_BYTES)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0,
                             "image config: %zu bytes, more than the %u allowed", len,
                             DRV_OCI_CONFIG_MAX_BYTES);
    _cleanup_cjson_ cJSON *root = cJSON_ParseWithLength(data, len);
    if (root == NULL)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "image config: not valid JSON");
    if (!cJSON_IsObject(root))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "image config: must be a JSON object");
    drv_oci_config_t c;
    memset(&c, 0, sizeof(c));
    const char *os = NULL, *arch = NULL, *variant = NULL;
    const drv_json_field_t plat[] = {
        {.key = "os", .type = DRV_JSON_T_STRING, .need = DRV_JSON_REQUIRED, .dest = &os},
        {.key = "architecture",
         .type = DRV_JSON_T_STRING,
         .need = DRV_JSON_REQUIRED,
         .dest = &arch},
        {.key = "variant", .type = DRV_JSON_T_STRING, .need = DRV_JSON_NULLABLE, .dest = &variant},
    };
    drv_err_t rc = drv_json_read_table(root, NULL, plat, DRV_JSON_TABLE_LEN(plat), 0, err);
    if (rc != DRV_OK)
        return rc;
    if ((rc = copy_field(c.platform.os, sizeof(c.platform.os), os, "os", err)) != DRV_OK ||
        (rc = copy_field(c.platform.arch, sizeof(c.platform.arch), arch, "architecture", err)) !=
            DRV_OK ||
        (variant && (rc = copy_field(c.platform.variant, sizeof(c.platform.variant), variant,
                                     "variant", err)) != DRV_OK))
        return rc;
    normalise_arch(&c.platform, false);

    const cJSON *rootfs = cJSON_GetObjectItemCaseSensitive(root, "rootfs");
    if (rootfs != NULL && !cJSON_IsNull(rootfs)) {
        if (!cJSON_IsObject(rootfs))
            return drv_error_set(err, DRV_ERR_INVALID, 0, "rootfs: must be an object");
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(rootfs, "diff_ids");
        if (ids != NULL && !cJSON_IsArray(ids))
            return drv_error_set(err, DRV_ERR_INVALID, 0, "rootfs.diff_ids: must be an array");
        size_t i = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, ids)
        {
            drv_digest_t d;
            if (!cJSON_IsString(e))
                return drv_error_set(err, DRV_ERR_INVALID, 0,
                                     "rootfs.diff_ids[%zu]: must be a string", i);
            if ((rc = drv_digest_parse(e->valuestring, &d, err)) != DRV_OK)
                return drv_error_wrap(err, "rootfs.diff_ids[%zu]", i);
            i++;
        }
        c.n_diff_ids = i;
    }

    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(root, "config");
    const char *wd = NULL, *user = NULL;
    if (cfg != NULL && !cJSON_IsNull(cfg)) {
        if (!cJSON_IsObject(cfg))
            return drv_error_set(err, DRV_ERR_INVALID, 0, "config: must be an object");
        const drv_json_field_t fields[] = {
            {.key = "WorkingDir",
             .type = DRV_JSON_T_STRING,
             .need = DRV_JSON_NULLABLE,
             .dest = &wd},
            {.key = "User", .type = DRV_JSON_T_STRING, .need = DRV_JSON_NULLABLE, .dest = &user},
        };
        rc = drv_json_read_table(cfg, "config", fields, DRV_JSON_TABLE_LEN(fields), 0, err);
        if (rc != DRV_OK)
            return rc;
        if ((rc = get_strv(cfg, "Env", &c.env, &c.n_env, err)) != DRV_OK)
            goto fail;
        for (size_t i = 0; i < c.n_env; i++) {
            if (strchr(c.env[i], '=') == NULL || c.env[i][0] == '=') {
                rc =
                    drv_error_set(err, DRV_ERR_INVALID, 0, "config.Env[%zu]: must be KEY=value", i);
                goto fail;
            }
        }
        if ((rc = get_strv(cfg, "Entrypoint", &c.entrypoint, &c.n_entrypoint, err)) != DRV_OK ||
            (rc = get_strv(cfg, "Cmd", &c.cmd, &c.n_cmd, err)) != DRV_OK)
            goto fail;
    }
    c.working_dir = strdup(wd ? wd : "");
    c.user = strdup(user ? user : "");
    if (c.working_dir == NULL || c.user == NULL) {
        rc = drv_error_set(err, DRV_ERR_NOMEM, 0, "image config: out of memory");
        goto fail;
    }
    *out = c;
    return DRV_OK;
fail:
    drv_oci_config_free(&c);
    return rc;
}

void drv_oci_config_free(drv_oci_config_t *c)
{
    if (c == NULL)
        return;
    free_strv(c->env);
    free_strv(c->entrypoint);
    free_strv(c->cmd);
    free(c->working_dir);
    free(c->user);
    memset(c, 0, sizeof(*c));
}
