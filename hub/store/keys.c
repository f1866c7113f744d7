/* The hub's at-rest keys for Secrets: the key file in the data directory (secret.keys) and
 * key rotation with re-encryption of every Secret in the store. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "drover/base64.h"
#include "drover/cleanup.h"
#include "drover/file.h"
#include "drover/fmt.h"
#include "drover/log.h"
#include "drover/pki.h"
#include "store/store.h"
#include "store/store_int.h"

static drv_err_t parse_line(const char *path, int lineno, char *line, drv_hstore_key_t *k,
                            drv_error_t *err)
{
    char *sp = strchr(line, ' ');
    if (!sp)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "%s: line %d: expected \"<key id> <base64 key>\"", path, lineno);
    *sp = '\0';
    const char *b64 = sp + 1;
    size_t idlen = strlen(line);
    if (idlen == 0 || idlen >= sizeof(k->id))
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "%s: line %d: key id: must be 1 to %zu characters", path, lineno,
                             sizeof(k->id) - 1);
    for (const char *p = line; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_'))
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "%s: line %d: key id: only letters, digits, '-' and '_'", path,
                                 lineno);
    unsigned char *raw = NULL;
    size_t rawlen = 0;
    if (drv_base64_decode(b64, strlen(b64), &raw, &rawlen) != DRV_OK ||
        rawlen != DRV_PKI_AEAD_KEY_LEN) {
        if (raw)
            drv_pki_wipe_free(raw, rawlen);
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "%s: line %d: key %s: not the base64 of %d bytes", path, lineno, line,
                             DRV_PKI_AEAD_KEY_LEN);
    }
    memcpy(k->id, line, idlen + 1);
    memcpy(k->key, raw, DRV_PKI_AEAD_KEY_LEN);
    drv_pki_wipe_free(raw, rawlen);
    return DRV_OK;
}

drv_err_t drv_hstore_keys_load(const char *path, drv_hstore_key_t *keys, size_t *n,
                               drv_error_t *err)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return drv_error_set(err, errno == ENOENT ? DRV_ERR_NOTFOUND : DRV_ERR_IO, errno, "%s",
                             path);
    if (st.st_mode & 077)
        return drv_error_set(err, DRV_ERR_PERM, 0,
                             "%s: readable by others (mode %03o): chmod 600 it after checking "
                             "who may have read it",
                             path, (unsigned)(st.st_mode & 0777));
    char *text = NULL;
    size_t len = 0;
    drv_err_t r = drv_file_read_capped(path, DRV_HSTORE_KEY_FILE_MAX, &text, &len, err);
    if (r != DRV_OK)
        return r;
    drv_hstore_key_t tmp[DRV_HSTORE_KEYS_MAX];
    size_t count = 0;
    int lineno = 0;
    char *save = NULL;
    for (char *line = text; r == DRV_OK && line && *line; line = save) {
        lineno++;
        char *nl = strchr(line, '\n');
        save = nl ? nl + 1 : NULL;
        if (nl)
            *nl = '\0';
        size_t l = strlen(line);
        if (l && line[l - 1] == '\r')
            line[--l] = '\0';
        if (l == 0 || line[0] == '#')
            continue;
        if (count == DRV_HSTORE_KEYS_MAX) {
            r = drv_error_set(err, DRV_ERR_INVALID, 0, "%s: more than %d keys", path,
                              DRV_HSTORE_KEYS_MAX);
            break;
        }
        r = parse_line(path, lineno, line, &tmp[count], err);
        for (size_t j = 0; r == DRV_OK && j < count; j++)
            if (strcmp(tmp[j].id, tmp[count].id) == 0)
                r = drv_error_set(err, DRV_ERR_INVALID, 0, "%s: line %d: key %s: given twice", path,
                                  lineno, tmp[count].id);
        if (r == DRV_OK)
            count++;
    }
    drv_pki_wipe_free(text, len + 1);
    if (r == DRV_OK && count == 0)
        r = drv_error_set(err, DRV_ERR_INVALID, 0, "%s: no key in the file", path);
    if (r == DRV_OK) {
        memcpy(keys, tmp, count * sizeof(*tmp));
        *n = count;
    }
    memset(tmp, 0, sizeof(tmp));
    return r;
}

drv_err_t drv_hstore_keys_save(const char *path, const drv_hstore_key_t *keys, size_t n,
                               drv_error_t *err)
{
    if (n == 0 || n > DRV_HSTORE_KEYS_MAX)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: 1 to %d keys", path,
                             DRV_HSTORE_KEYS_MAX);
    char buf[DRV_HSTORE_KEY_FILE_MAX];
    size_t used = (size_t)snprintf(buf, sizeof(buf),
                                   "# drover-hub: keys that encrypt Secrets in hub.db; the first "
                                   "encrypts, all decrypt.\n# Without this file the Secrets in "
                                   "hub.db cannot be read: back it up apart from hub.db.\n");
    drv_err_t r = DRV_OK;
    for (size_t i = 0; i < n && r == DRV_OK; i++) {
        char *b64 = drv_base64_encode(keys[i].key, DRV_PKI_AEAD_KEY_LEN);
        if (!b64) {
            r = drv_error_set(err, DRV_ERR_NOMEM, 0, "%s", path);
            break;
        }
        int k = snprintf(buf + used, sizeof(buf) - used, "%s %s\n", keys[i].id, b64);
        drv_pki_secret_free(b64);
        if (k < 0 || (size_t)k >= sizeof(buf) - used)
            r = drv_error_set(err, DRV_ERR_TOOBIG, 0, "%s: too many keys", path);
        else
            used += (size_t)k;
    }
    if (r == DRV_OK)
        r = drv_file_write_atomic(path, buf, used, 0600, err);
    memset(buf, 0, sizeof(buf));
    return r;
}

drv_err_t drv_hstore_keys_ensure(const char *path, drv_hstore_key_t *keys, size_t *n, bool *created,
                                 drv_error_t *err)
{
    *created = false;
    drv_error_t e = DRV_ERROR_INIT;
    drv_err_t r = drv_hstore_keys_load(path, keys, n, &e);
    if (r != DRV_ERR_NOTFOUND) {
        if (r != DRV_OK && err)
            *err = e;
        return r;
    }
    drv_hstore_key_t k = {.id = "k1"};
    r = drv_pki_aead_key_generate(k.key, err);
    if (r == DRV_OK)
        r = drv_hstore_keys_save(path, &k, 1, err);
    if (r == DRV_OK) {
        keys[0] = k;
        *n = 1;
        *created = true;
    }
    memset(&k, 0, sizeof(k));
    return r;
}

/* "k<N>" with N one above the highest "k<number>" id in keys. */
static DRV_NODISCARD drv_err_t next_id(const drv_hstore_key_t *keys, size_t n,
                                       char out[DRV_PKI_KEY_ID_MAX])
{
    unsigned long top = 0;
    for (size_t i = 0; i < n; i++) {
        if (keys[i].id[0] != 'k')
            continue;
        char *end = NULL;
        errno = 0;
        unsigned long v = strtoul(keys[i].id + 1, &end, 10);
        if (!errno && end != keys[i].id + 1 && !*end && v > top && v < 1000000000UL)
            top = v;
    }
    return drv_fmt(out, DRV_PKI_KEY_ID_MAX, "k%lu", top + 1);
}

drv_err_t drv_hstore_keys_rotate(const char *db_path, const char *key_path,
                                 char new_id[DRV_PKI_KEY_ID_MAX], drv_hstore_reseal_t *stats,
                                 drv_error_t *err)
{
    drv_hstore_key_t keys[DRV_HSTORE_KEYS_MAX + 1];
    size_t n = 0;
    drv_err_t r = drv_hstore_keys_load(key_path, keys + 1, &n, err);
    if (r != DRV_OK)
        return r;
    if (n + 1 > DRV_HSTORE_KEYS_MAX) {
        memset(keys, 0, sizeof(keys));
        return drv_error_set(err, DRV_ERR_RANGE, 0,
                             "%s: %zu keys already (an unfinished rotation?): at most %d", key_path,
                             n, DRV_HSTORE_KEYS_MAX);
    }
    memset(&keys[0], 0, sizeof(keys[0]));
    drv_hstore_t *s = NULL;
    if (next_id(keys + 1, n, keys[0].id) != DRV_OK)
        r = drv_error_set(err, DRV_ERR_RANGE, 0, "%s: no free key id", key_path);
    else
        r = drv_pki_aead_key_generate(keys[0].key, err);
    if (r == DRV_OK)
        r = drv_hstore_open(db_path, &s, err);
    if (r == DRV_OK)
        r = drv_hstore_lock_exclusive(s, err);
    if (r == DRV_OK)
        r = drv_hstore_set_keys(s, keys, n + 1, err);
    /* The new key first, the old ones kept: every row opens whatever happens next. */
    if (r == DRV_OK)
        r = drv_hstore_keys_save(key_path, keys, n + 1, err);
    if (r == DRV_OK)
        r = drv_hstore_reseal(s, true, stats, err);
    drv_hstore_close(s);
    if (r == DRV_OK)
        r = drv_hstore_keys_save(key_path, keys, 1, err);
    if (r == DRV_OK) {
        memcpy(new_id, keys[0].id, DRV_PKI_KEY_ID_MAX); /* one size */
        drv_log_info("hub store: secret key rotated", "path=%s key=%s", key_path, keys[0].id);
    } else {
        drv_error_wrap(err, "rotate the secret key");
    }
    memset(keys, 0, sizeof(keys));
    return r;
}

drv_err_t drv_hstore_keys_rotate_dir(const char *data_dir, char new_id[DRV_PKI_KEY_ID_MAX],
                                     drv_hstore_reseal_t *stats, drv_error_t *err)
{
    char db[PATH_MAX], keys[PATH_MAX];
    int n1 = snprintf(db, sizeof(db), "%s/hub.db", data_dir);
    int n2 = snprintf(keys, sizeof(keys), "%s/secret.keys", data_dir);
    if (n1 < 0 || (size_t)n1 >= sizeof(db) || n2 < 0 || (size_t)n2 >= sizeof(keys))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "--data: path too long");
    return drv_hstore_keys_rotate(db, keys, new_id, stats, err);
}
