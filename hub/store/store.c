/* The hub's object store on SQLite: a versioned schema migrated on open, one transaction per
 * change (counter bump, object row, change-log entry), Kubernetes' server-side fields.
 *
 * Durability: WAL with synchronous=NORMAL. The database file can never be corrupted by a crash
 * or power loss, but a power loss may forget the last transactions committed before it (they
 * were in the WAL, not yet synced); a process crash loses nothing. FULL would fsync on every
 * commit, which wears SD cards and buys little here: the hub's state is re-derived from the
 * agents' reports and the controllers' next pass. Watchers that saw a lost resourceVersion get
 * DRV_ERR_RANGE (it is then ahead of the store) and list again. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "drover/cleanup.h"
#include "drover/fmt.h"
#include "drover/log.h"
#include "drover/json.h"
#include "drover/pki.h"
#include "drover/proc.h"
#include "drover/vec.h"
#include "store/store.h"
#include "store/store_int.h"

#define BUSY_TIMEOUT_MS 5000
#define GENERATE_TRIES 8
#define NAME_MAX_LEN 253

enum stmt_id {
    ST_GET,
    ST_INSERT,
    ST_UPDATE,
    ST_UPDATE_STATUS,
    ST_DELETE,
    ST_SET_RV,
    ST_LOG,
    ST_PRUNE,
    ST_LOG_FLOOR,
    ST_LIST_ALL,
    ST_LIST_NS,
    ST_PAGE_ALL,
    ST_PAGE_NS,
    ST_COUNT_ALL,
    ST_COUNT_NS,
    ST_CHANGES_ALL,
    ST_CHANGES_KIND,
    ST_TOKEN_COUNT,
    ST_TOKEN_ADD,
    ST_TOKEN_GET,
    ST_TOKEN_LIST,
    ST_TOKEN_REVOKE,
    ST_TOKEN_USE,
    ST_TOKEN_PURGE,
    ST_ID_COUNT,
    ST_ID_GET,
    ST_ID_PUT,
    ST_ID_LIST,
    ST_ID_REVOKE,
    ST_ID_DELETE,
    ST__COUNT
};

static const char *const stmt_sql[ST__COUNT] = {
    [ST_GET] = "SELECT uid, rv, generation, created, body, status FROM objects "
               "WHERE kind = ?1 AND namespace = ?2 AND name = ?3",
    [ST_INSERT] = "INSERT INTO objects (kind, namespace, name, uid, rv, generation, created, body, "
                  "status, labels) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [ST_UPDATE] =
        "UPDATE objects SET rv = ?4, generation = ?5, body = ?6, status = ?7, labels = ?8 "
        "WHERE kind = ?1 AND namespace = ?2 AND name = ?3",
    /* A status write leaves the labels column (made from the body, which it keeps) alone. */
    [ST_UPDATE_STATUS] = "UPDATE objects SET rv = ?4, generation = ?5, body = ?6, status = ?7 "
                         "WHERE kind = ?1 AND namespace = ?2 AND name = ?3",
    [ST_DELETE] = "DELETE FROM objects WHERE kind = ?1 AND namespace = ?2 AND name = ?3",
    [ST_SET_RV] = "UPDATE meta SET value = ?1 WHERE key = 'rv'",
    [ST_LOG] = "INSERT INTO changes (rv, kind, namespace, name, type, body) "
               "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_PRUNE] = "DELETE FROM changes WHERE rv <= ?1",
    [ST_LOG_FLOOR] = "SELECT MIN(rv) FROM changes",
    [ST_LIST_ALL] = "SELECT namespace, name, body, status FROM objects WHERE kind = ?1 "
                    "ORDER BY namespace, name",
    [ST_LIST_NS] = "SELECT namespace, name, body, status FROM objects WHERE kind = ?1 AND "
                   "namespace = ?2 ORDER BY name",
    /* Pages (drv_hstore_list_page): a key range of the primary key's index, in its order. */
    [ST_PAGE_ALL] = "SELECT namespace, name, labels, body, status FROM objects WHERE kind = ?1 "
                    "AND (namespace, name) > (?2, ?3) ORDER BY namespace, name",
    [ST_PAGE_NS] = "SELECT namespace, name, labels, body, status FROM objects WHERE kind = ?1 "
                   "AND namespace = ?2 AND name > ?3 ORDER BY name",
    [ST_COUNT_ALL] =
        "SELECT COUNT(*) FROM objects WHERE kind = ?1 AND (namespace, name) > (?2, ?3)",
    [ST_COUNT_NS] = "SELECT COUNT(*) FROM objects WHERE kind = ?1 AND namespace = ?2 AND name > ?3",
    [ST_CHANGES_ALL] = "SELECT rv, kind, namespace, name, type, body FROM changes WHERE rv > ?1 "
                       "ORDER BY rv LIMIT ?2",
    [ST_CHANGES_KIND] = "SELECT rv, kind, namespace, name, type, body FROM changes WHERE rv > ?1 "
                        "AND kind = ?3 ORDER BY rv LIMIT ?2",
    [ST_TOKEN_COUNT] = "SELECT COUNT(*) FROM tokens",
    [ST_TOKEN_ADD] = "INSERT INTO tokens (id, kind, role, hash, description, created, expires, "
                     "revoked, uses_left, labels) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [ST_TOKEN_GET] = "SELECT id, kind, role, hash, description, created, expires, revoked, "
                     "uses_left, labels FROM tokens WHERE id = ?1",
    [ST_TOKEN_LIST] = "SELECT id, kind, role, hash, description, created, expires, revoked, "
                      "uses_left, labels FROM tokens ORDER BY created, id",
    [ST_TOKEN_REVOKE] = "UPDATE tokens SET revoked = 1 WHERE id = ?1",
    [ST_TOKEN_PURGE] = "DELETE FROM tokens WHERE revoked = 1 OR (expires != 0 AND expires <= ?1) "
                       "OR (kind = 'bootstrap' AND uses_left = 0)",
    [ST_TOKEN_USE] = "UPDATE tokens SET uses_left = uses_left - 1 WHERE id = ?1 AND uses_left > 0",
    [ST_ID_COUNT] = "SELECT COUNT(*), SUM(node = ?1) FROM identities",
    [ST_ID_GET] = "SELECT node, pubkey, serial, not_after, created, revoked FROM identities "
                  "WHERE node = ?1",
    [ST_ID_PUT] = "INSERT INTO identities (node, pubkey, serial, not_after, created, revoked) "
                  "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (node) DO UPDATE SET "
                  "pubkey = excluded.pubkey, serial = excluded.serial, "
                  "not_after = excluded.not_after, revoked = excluded.revoked",
    [ST_ID_LIST] = "SELECT node, pubkey, serial, not_after, created, revoked FROM identities "
                   "ORDER BY node",
    [ST_ID_REVOKE] = "UPDATE identities SET revoked = 1 WHERE node = ?1",
    [ST_ID_DELETE] = "DELETE FROM identities WHERE node = ?1",
};

/* The migrations, in order; migration i brings the schema to version i + 1. Each runs in one
 * transaction together with the schema_version update. Never edit one that has shipped: add
 * the next. */
static const char *const migrations[] = {
    /* 1: the objects, the change log and the counters. */
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "INSERT INTO meta (key, value) VALUES ('rv', 0);"
    "CREATE TABLE objects ("
    " kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,"
    " uid TEXT NOT NULL, rv INTEGER NOT NULL, generation INTEGER NOT NULL,"
    " created TEXT NOT NULL, body TEXT NOT NULL, status TEXT, labels TEXT,"
    " PRIMARY KEY (kind, namespace, name));"
    "CREATE TABLE changes ("
    " rv INTEGER PRIMARY KEY, kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,"
    " type TEXT NOT NULL, body TEXT NOT NULL);"
    "CREATE INDEX changes_by_kind ON changes (kind, rv);",
    /* 2: API and bootstrap tokens (hub/auth): only a SHA-256 of each secret is kept. IF NOT
     * EXISTS: a version-1 database that had the table put back by hand still migrates. */
    "CREATE TABLE IF NOT EXISTS tokens ("
    " id TEXT PRIMARY KEY, kind TEXT NOT NULL, role TEXT NOT NULL, hash BLOB NOT NULL,"
    " description TEXT NOT NULL DEFAULT '', created INTEGER NOT NULL,"
    " expires INTEGER NOT NULL DEFAULT 0, revoked INTEGER NOT NULL DEFAULT 0,"
    " uses_left INTEGER NOT NULL DEFAULT -1, labels TEXT NOT NULL DEFAULT '{}');",
    /* 3: enrolled node identities (hub/core/enroll.c): public key, last certificate, revoked. */
    "CREATE TABLE IF NOT EXISTS identities ("
    " node TEXT PRIMARY KEY, pubkey TEXT NOT NULL, serial TEXT NOT NULL,"
    " not_after INTEGER NOT NULL, created INTEGER NOT NULL,"
    " revoked INTEGER NOT NULL DEFAULT 0);",
};
_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == DRV_HSTORE_SCHEMA_VERSION,
               "one migration per schema version");

struct drv_hstore {
    sqlite3 *db;
    char *path;
    uint64_t rv;
    uint64_t log_keep;
    bool batch;         /* inside drv_hstore_batch_begin: each write is a savepoint */
    uint64_t batch_rv0; /* rv when the batch began */
    struct {
        long long period, next; /* ms (drv_now_ms) */
        drv_hstore_yield_fn fn; /* NULL: none (drv_hstore_batch_set_yield) */
        void *ctx;
    } yield;
    bool dry;        /* drv_hstore_set_dry_run: writes are rolled back instead of committed */
    bool namespaces; /* drv_hstore_namespaces_enable: creates admitted by hstore_ns_admit */
    bool priorities; /* drv_hstore_priority_classes_enable: hstore_priority_admit for Pods */
    drv_hstore_key_t keys[DRV_HSTORE_KEYS_MAX]; /* keys[0] seals; every one opens */
    size_t nkeys;                               /* 0: Secrets are stored as plain JSON */
    sqlite3_stmt *st[ST__COUNT];
    /* drv_hstore_list_shared: one listing per kind and the state it was read in. Every write
     * that commits moves rv; epoch moves on whatever else may change rows (a rollback, a
     * batch's end, keys, resealing), so (rv, epoch) unchanged means the rows are. */
    uint64_t epoch;
    struct shared_list {
        cJSON *items;
        uint64_t rv, epoch;
    } shared[DRV_KIND__COUNT];
};

/* A stored row, loaded by load_row(). */
struct row {
    char *uid;
    uint64_t rv;
    int64_t generation;
    char *created;
    char *body;
    char *status; /* NULL: none */
};

static void row_free(struct row *r)
{
    free(r->uid);
    free(r->created);
    free(r->body);
    free(r->status);
    memset(r, 0, sizeof(*r));
}

static const char *const change_names[] = {"ADDED", "MODIFIED", "DELETED"};

const char *drv_hstore_change_name(drv_hstore_change_t t)
{
    if ((unsigned)t < sizeof(change_names) / sizeof(change_names[0]))
        return change_names[t];
    return "";
}

static bool parse_change(const char *s, drv_hstore_change_t *out)
{
    for (size_t i = 0; i < sizeof(change_names) / sizeof(change_names[0]); i++)
        if (strcmp(s, change_names[i]) == 0) {
            *out = (drv_hstore_change_t)i;
            return true;
        }
    return false;
}

static bool cluster_scoped(drv_kind_t kind)
{
    return !drv_kind_namespaced(kind);
}

/* The namespace a row is stored under: "" for cluster-scoped kinds, "default" when none. */
static const char *row_ns(drv_kind_t kind, const char *ns)
{
    if (cluster_scoped(kind))
        return "";
    return ns && *ns ? ns : "default";
}

static drv_err_t db_error(drv_hstore_t *s, drv_error_t *err, const char *what)
{
    int rc = sqlite3_extended_errcode(s->db);
    drv_err_t code = DRV_ERR_IO;
    if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)
        code = DRV_ERR_AGAIN;
    else if ((rc & 0xff) == SQLITE_NOMEM)
        code = DRV_ERR_NOMEM;
    return drv_error_set(err, code, 0, "%s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
}

static sqlite3_stmt *stmt(drv_hstore_t *s, enum stmt_id id, drv_error_t *err)
{
    if (s->st[id] == NULL && sqlite3_prepare_v3(s->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                                                &s->st[id], NULL) != SQLITE_OK) {
        db_error(s, err, "prepare");
        return NULL;
    }
    return s->st[id];
}

/* The shared listings are freed (batch end, close) or only marked stale (anything else). */
static void shared_drop(drv_hstore_t *s, bool free_them)
{
    s->epoch++;
    for (size_t k = 0; free_them && k < DRV_KIND__COUNT; k++) {
        cJSON_Delete(s->shared[k].items);
        s->shared[k].items = NULL;
    }
}

static drv_err_t begin(drv_hstore_t *s, drv_error_t *err)
{
    if (sqlite3_exec(s->db, s->batch ? "SAVEPOINT w" : "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
        SQLITE_OK)
        return db_error(s, err, "begin transaction");
    return DRV_OK;
}

static void rollback(drv_hstore_t *s);

static drv_err_t commit(drv_hstore_t *s, drv_error_t *err)
{
    if (s->dry) { /* every check passed; nothing is kept */
        rollback(s);
        return DRV_OK;
    }
    if (sqlite3_exec(s->db, s->batch ? "RELEASE w" : "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        drv_err_t r = db_error(s, err, "commit");
        (void)sqlite3_exec(s->db, s->batch ? "ROLLBACK TO w; RELEASE w" : "ROLLBACK", NULL, NULL,
                           NULL);
        return r;
    }
    return DRV_OK;
}

static void rollback(drv_hstore_t *s)
{
    shared_drop(s, false);
    if (s->batch)
        (void)sqlite3_exec(s->db, "ROLLBACK TO w; RELEASE w", NULL, NULL, NULL);
    else if (!sqlite3_get_autocommit(s->db))
        (void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

static drv_err_t load_rv(drv_hstore_t *s, drv_error_t *err);
static drv_err_t set_rv_prune(drv_hstore_t *s, uint64_t rv, drv_error_t *err);

drv_err_t drv_hstore_batch_begin(drv_hstore_t *s, drv_error_t *err)
{
    if (s->batch)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "store: a batch is open already");
    if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return db_error(s, err, "begin batch");
    s->batch = true;
    s->batch_rv0 = s->rv;
    s->yield.fn = NULL;
    return DRV_OK;
}

void drv_hstore_batch_set_yield(drv_hstore_t *s, long long period_ms, drv_hstore_yield_fn fn,
                                void *ctx)
{
    if (!s->batch)
        return;
    s->yield.period = period_ms > 0 ? period_ms : 1;
    s->yield.next = drv_now_ms() + s->yield.period;
    s->yield.fn = fn;
    s->yield.ctx = ctx;
}

drv_err_t drv_hstore_batch_point(drv_hstore_t *s, drv_error_t *err)
{
    if (!s->batch || !s->yield.fn || drv_now_ms() < s->yield.next)
        return DRV_OK;
    /* fn may open and end batches of its own (the bridge's): ours is restored after it. */
    long long period = s->yield.period;
    drv_hstore_yield_fn fn = s->yield.fn;
    void *ctx = s->yield.ctx;
    drv_err_t r = drv_hstore_batch_end(s, err);
    if (r != DRV_OK)
        return r;
    fn(ctx);
    if (!s->batch && drv_hstore_batch_begin(s, NULL) == DRV_OK)
        drv_hstore_batch_set_yield(s, period, fn, ctx);
    return DRV_OK;
}

drv_err_t drv_hstore_batch_end(drv_hstore_t *s, drv_error_t *err)
{
    /* The shared listings stay: the next round brings them up to date from the change log
     * (shared_catch_up) instead of parsing every row again. */
    if (!s->batch)
        return DRV_OK;
    s->batch = false;
    /* The counter and the log's pruning, once for the batch's writes (log_change). */
    drv_err_t r = s->rv != s->batch_rv0 && !s->dry ? set_rv_prune(s, s->rv, err) : DRV_OK;
    if (r == DRV_OK && sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
        return DRV_OK;
    if (r == DRV_OK)
        r = db_error(s, err, "commit batch");
    shared_drop(s, true);
    (void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    (void)load_rv(s, NULL); /* the counter as the database has it */
    return r;
}

void drv_hstore_batch_abort(drv_hstore_t *s)
{
    shared_drop(s, true);
    if (!s->batch)
        return;
    s->batch = false;
    (void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    (void)load_rv(s, NULL); /* the counter as the database has it */
}

/* ---- random names, UUIDs and time ---- */

static drv_err_t make_uuid(char out[37], drv_error_t *err)
{
    unsigned char b[16];
    drv_err_t r = drv_pki_random(b, sizeof(b), err);
    if (r != DRV_OK)
        return r;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    if (drv_fmt(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
                b[13], b[14], b[15]) != DRV_OK)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "uid");
    return DRV_OK;
}

/* Kubernetes' generateName alphabet: no vowels (no words), no 0/1/3 (no look-alikes). */
static const char name_alphabet[] = "bcdfghjklmnpqrstvwxz2456789";
#define NAME_SUFFIX_LEN 5

static drv_err_t random_suffix(char out[NAME_SUFFIX_LEN + 1], drv_error_t *err)
{
    const unsigned n = sizeof(name_alphabet) - 1;
    const unsigned limit = 256 - 256 % n; /* rejection sampling: no modulo bias */
    size_t have = 0;
    while (have < NAME_SUFFIX_LEN) {
        unsigned char b[16];
        drv_err_t r = drv_pki_random(b, sizeof(b), err);
        if (r != DRV_OK)
            return r;
        for (size_t i = 0; i < sizeof(b) && have < NAME_SUFFIX_LEN; i++)
            if (b[i] < limit)
                out[have++] = name_alphabet[b[i] % n];
    }
    out[NAME_SUFFIX_LEN] = '\0';
    return DRV_OK;
}

static void now_rfc3339(char out[32])
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    if (strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        memcpy(out, "1970-01-01T00:00:00Z", sizeof("1970-01-01T00:00:00Z"));
}

/* ---- JSON helpers ---- */

static bool set_item(cJSON *obj, const char *key, cJSON *item)
{
    if (item == NULL)
        return false;
    if (cJSON_GetObjectItemCaseSensitive(obj, key))
        return cJSON_ReplaceItemInObjectCaseSensitive(obj, key, item);
    return cJSON_AddItemToObject(obj, key, item);
}

static bool set_str(cJSON *obj, const char *key, const char *v)
{
    return set_item(obj, key, cJSON_CreateString(v));
}

static bool set_rv(cJSON *meta, uint64_t rv)
{
    char buf[24];
    return drv_fmt(buf, sizeof(buf), "%" PRIu64, rv) == DRV_OK &&
           set_str(meta, "resourceVersion", buf);
}

/* Adds item under key keeping the keys of obj sorted (status goes among canonical keys). */
static void add_sorted(cJSON *obj, const char *key, cJSON *item)
{
    int i = 0;
    for (cJSON *c = obj->child; c; c = c->next, i++)
        if (c->string && strcmp(c->string, key) > 0) {
            item->string = strdup(key);
            if (item->string && cJSON_InsertItemInArray(obj, i, item))
                return;
            free(item->string);
            item->string = NULL;
            break;
        }
    if (!cJSON_AddItemToObject(obj, key, item))
        cJSON_Delete(item);
}

/* Replaces the members of dst with those of src (consumed), so that a caller's pointer to
 * dst sees the stored object. */
static void swap_into(cJSON *dst, cJSON *src)
{
    cJSON *old = dst->child;
    dst->child = src->child;
    src->child = old;
    cJSON_Delete(src);
}

/* Canonical text of obj without metadata and status: what generation tracks. */
static char *spec_text(const cJSON *obj)
{
    cJSON *c = cJSON_Duplicate(obj, true);
    if (!c)
        return NULL;
    cJSON_DeleteItemFromObjectCaseSensitive(c, "metadata");
    cJSON_DeleteItemFromObjectCaseSensitive(c, "status");
    char *t = drv_model_to_json(c, false);
    cJSON_Delete(c);
    return t;
}

/* Builds the object from a row's body and status; a row that does not parse is reported
 * with its key. */
static drv_err_t assemble(drv_kind_t kind, const char *ns, const char *name, const char *body,
                          const char *status, cJSON **out, drv_error_t *err)
{
    cJSON *o = body ? cJSON_Parse(body) : NULL;
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return drv_error_set(err, DRV_ERR_IO, 0,
                             "stored %s %s%s%s is corrupt: body is not a JSON object",
                             drv_kind_name(kind), ns, *ns ? "/" : "", name);
    }
    if (status) {
        cJSON *st = cJSON_Parse(status);
        if (!st) {
            cJSON_Delete(o);
            return drv_error_set(err, DRV_ERR_IO, 0,
                                 "stored %s %s%s%s is corrupt: status is not JSON",
                                 drv_kind_name(kind), ns, *ns ? "/" : "", name);
        }
        cJSON_DeleteItemFromObjectCaseSensitive(o, "status");
        add_sorted(o, "status", st);
    }
    *out = o;
    return DRV_OK;
}

/* ---- Secrets at rest ----
 * With keys, a Secret's "data" and "stringData" leave the stored body (row and change log) as
 * one member SEALED_MEMBER: AES-256-GCM of {"data":...,"stringData":...} with keys[0], the
 * object's "namespace/name" as associated data (a blob copied onto another Secret does not
 * open). Everything else of the body stays plain JSON (metadata, type, labels column). */
#define SEALED_MEMBER "drover.sealed"

static DRV_NODISCARD drv_err_t aad_text(const char *ns, const char *name, char *out, size_t outsz,
                                        drv_error_t *err)
{
    if (drv_fmt(out, outsz, "%s/%s", ns, name) != DRV_OK)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "Secret %.64s/%.64s: name too long", ns,
                             name);
    return DRV_OK;
}

static void wipe_free_str(char *t)
{
    if (t)
        drv_pki_wipe_free(t, strlen(t) + 1);
}

/* The body to store for plain body text: *out is NULL when text goes in as it is (no keys,
 * not a Secret, nothing to hide), else a malloc'd sealed body. */
static drv_err_t seal_text(drv_hstore_t *s, drv_kind_t kind, const char *ns, const char *name,
                           const char *text, char **out, drv_error_t *err)
{
    *out = NULL;
    if (s->nkeys == 0 || kind != DRV_KIND_SECRET || !text)
        return DRV_OK;
    cJSON *o = cJSON_Parse(text);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return DRV_OK; /* a corrupt row being deleted: logged as it was */
    }
    cJSON *data = cJSON_DetachItemFromObjectCaseSensitive(o, "data");
    cJSON *sdata = cJSON_DetachItemFromObjectCaseSensitive(o, "stringData");
    drv_err_t r = DRV_OK;
    if (!data && !sdata)
        goto out;
    cJSON *payload = cJSON_CreateObject();
    if (!payload) {
        r = drv_error_set(err, DRV_ERR_NOMEM, 0, "seal Secret");
        goto out;
    }
    if (data)
        cJSON_AddItemToObject(payload, "data", TAKE_PTR(data));
    if (sdata)
        cJSON_AddItemToObject(payload, "stringData", TAKE_PTR(sdata));
    char *plain = drv_model_to_json(payload, false);
    cJSON_Delete(payload);
    char aad[2 * NAME_MAX_LEN + 2], *blob = NULL;
    if ((r = aad_text(ns, name, aad, sizeof(aad), err)) != DRV_OK) {
        wipe_free_str(plain);
        goto out;
    }
    if (!plain) {
        r = drv_error_set(err, DRV_ERR_NOMEM, 0, "seal Secret");
        goto out;
    }
    r = drv_pki_aead_seal(s->keys[0].id, s->keys[0].key, aad, strlen(aad), plain, strlen(plain),
                          &blob, err);
    wipe_free_str(plain);
    if (r != DRV_OK) {
        drv_error_wrap(err, "Secret %s", aad);
        goto out;
    }
    if (!set_str(o, SEALED_MEMBER, blob) || !(*out = drv_model_to_json(o, false)))
        r = drv_error_set(err, DRV_ERR_NOMEM, 0, "seal Secret");
    free(blob);
out:
    cJSON_Delete(data);
    cJSON_Delete(sdata);
    cJSON_Delete(o);
    return r;
}

/* The key id a stored body is sealed with; false for a plain (or unparsable) body. */
static bool sealed_key_id(const cJSON *o, char id[DRV_PKI_KEY_ID_MAX])
{
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, SEALED_MEMBER);
    if (!cJSON_IsString(b))
        return false;
    if (drv_pki_aead_key_id(b->valuestring, id, NULL) != DRV_OK)
        memcpy(id, "?", sizeof("?"));
    return true;
}

/* The plain body of stored body text: *out NULL when text is plain already, else malloc'd
 * (free with wipe_free_str). A key that is missing or a blob that does not open is
 * DRV_ERR_INTEGRITY naming the object and the key. */
static drv_err_t open_text(drv_hstore_t *s, drv_kind_t kind, const char *ns, const char *name,
                           const char *text, char **out, drv_error_t *err)
{
    *out = NULL;
    if (kind != DRV_KIND_SECRET || !text || !strstr(text, "\"" SEALED_MEMBER "\""))
        return DRV_OK;
    cJSON *o = cJSON_Parse(text);
    char id[DRV_PKI_KEY_ID_MAX];
    if (!cJSON_IsObject(o) || !sealed_key_id(o, id)) {
        cJSON_Delete(o);
        return DRV_OK; /* assemble reports a body that is not JSON */
    }
    char aad[2 * NAME_MAX_LEN + 2];
    drv_err_t r = aad_text(ns, name, aad, sizeof(aad), err);
    if (r != DRV_OK) {
        cJSON_Delete(o);
        return r;
    }
    const drv_hstore_key_t *k = NULL;
    for (size_t i = 0; i < s->nkeys && !k; i++)
        if (strcmp(s->keys[i].id, id) == 0)
            k = &s->keys[i];
    if (!k) {
        r = drv_error_set(err, DRV_ERR_INTEGRITY, 0,
                          "stored Secret %s is encrypted with key \"%s\", which %s", aad, id,
                          s->nkeys ? "is not in the key file" : "cannot be read: no keys loaded");
        cJSON_Delete(o);
        return r;
    }
    unsigned char *plain = NULL;
    size_t plen = 0;
    drv_error_t e = DRV_ERROR_INIT;
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, SEALED_MEMBER);
    if (drv_pki_aead_open(k->id, k->key, aad, strlen(aad), b->valuestring, &plain, &plen, &e) !=
        DRV_OK) {
        r = drv_error_set(err, e.code == DRV_ERR_NOMEM ? DRV_ERR_NOMEM : DRV_ERR_INTEGRITY, 0,
                          "stored Secret %s (key \"%s\"): %s", aad, id, drv_error_msg(&e));
        cJSON_Delete(o);
        return r;
    }
    cJSON *payload = cJSON_ParseWithLength((const char *)plain, plen);
    drv_pki_wipe_free(plain, plen);
    if (!cJSON_IsObject(payload)) {
        cJSON_Delete(payload);
        cJSON_Delete(o);
        return drv_error_set(err, DRV_ERR_INTEGRITY, 0,
                             "stored Secret %s (key \"%s\"): decrypted data is not a JSON object",
                             aad, id);
    }
    cJSON_DeleteItemFromObjectCaseSensitive(o, SEALED_MEMBER);
    cJSON *d = cJSON_DetachItemFromObjectCaseSensitive(payload, "data");
    cJSON *sd = cJSON_DetachItemFromObjectCaseSensitive(payload, "stringData");
    cJSON_Delete(payload);
    if (d)
        cJSON_AddItemToObject(o, "data", d);
    if (sd)
        cJSON_AddItemToObject(o, "stringData", sd);
    if (!(*out = drv_model_to_json(o, false)))
        r = drv_error_set(err, DRV_ERR_NOMEM, 0, "open Secret %s", aad);
    cJSON_Delete(o);
    return r;
}

/* ---- rows ---- */

static char *col_dup(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? strdup((const char *)t) : NULL;
}

/* Loads a row: DRV_OK, DRV_ERR_NOTFOUND or an error. */
static drv_err_t load_row(drv_hstore_t *s, drv_kind_t kind, const char *ns, const char *name,
                          struct row *row, drv_error_t *err)
{
    sqlite3_stmt *st = stmt(s, ST_GET, err);
    if (!st)
        return err ? err->code : DRV_ERR_IO;
    sqlite3_bind_text(st, 1, drv_kind_name(kind), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    drv_err_t r = DRV_OK;
    if (rc == SQLITE_ROW) {
        memset(row, 0, sizeof(*row));
        row->uid = col_dup(st, 0);
        row->rv = (uint64_t)sqlite3_column_int64(st, 1);
        row->generation = sqlite3_column_int64(st, 2);
        row->created = col_dup(st, 3);
        row->body = col_dup(st, 4);
        row->status = col_dup(st, 5);
        if (!row->uid || !row->created || !row->body ||
            (sqlite3_column_type(st, 5) != SQLITE_NULL && !row->status)) {
            row_free(row);
            r = drv_error_set(err, DRV_ERR_NOMEM, 0, "loading %s %s", drv_kind_name(kind), name);
        }
    } else if (rc == SQLITE_DONE) {
        r = drv_error_set(err, DRV_ERR_NOTFOUND, 0, "%s \"%s\" not found%s%s", drv_kind_name(kind),
                          name, *ns ? " in namespace " : "", ns);
    } else {
        r = db_error(s, err, "read");
    }
    sqlite3_reset(st);
    return r;
}

/* Replaces a loaded Secret row's sealed body with its plain text. */
static drv_err_t row_open(drv_hstore_t *s, drv_kind_t kind, const char *ns, const char *name,
                          struct row *row, drv_error_t *err)
{
    char *plain = NULL;
    drv_err_t r = open_text(s, kind, ns, name, row->body, &plain, err);
    if (r == DRV_OK && plain) {
        free(row->body);
        row->body = plain;
    }
    return r;
}

/* Binds body text to parameter i, sealed when it is a Secret's and the store has keys. */
static drv_err_t bind_body(drv_hstore_t *s, sqlite3_stmt *st, int i, drv_kind_t kind,
                           const char *ns, const char *name, const char *body, drv_error_t *err)
{
    char *sealed = NULL;
    drv_err_t r = seal_text(s, kind, ns, name, body, &sealed, err);
    if (r != DRV_OK)
        return r;
    if (sealed) {
        sqlite3_bind_text(st, i, sealed, -1, free);
    } else {
        sqlite3_bind_text(st, i, body, -1, SQLITE_STATIC);
    }
    return DRV_OK;
}

static drv_err_t step_done(drv_hstore_t *s, sqlite3_stmt *st, const char *what, drv_error_t *err)
{
    int rc = sqlite3_step(st);
    drv_err_t r = rc == SQLITE_DONE ? DRV_OK : db_error(s, err, what);
    sqlite3_reset(st);
    return r;
}

/* Inside a transaction: sets the counter to rv, logs the change and prunes the log. */
/* The stored resourceVersion counter. */
static drv_err_t set_rv_only(drv_hstore_t *s, uint64_t rv, drv_error_t *err)
{
    sqlite3_stmt *st = stmt(s, ST_SET_RV, err);
    if (!st)
        return err ? err->code : DRV_ERR_IO;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)rv);
    return step_done(s, st, "bump resourceVersion", err);
}

/* The change log keeps the last log_keep changes up to rv. */
static drv_err_t prune_log(drv_hstore_t *s, uint64_t rv, drv_error_t *err)
{
    if (rv <= s->log_keep)
        return DRV_OK;
    sqlite3_stmt *st = stmt(s, ST_PRUNE, err);
    if (!st)
        return err ? err->code : DRV_ERR_IO;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)(rv - s->log_keep));
    return step_done(s, st, "prune change log", err);
}

static drv_err_t set_rv_prune(drv_hstore_t *s, uint64_t rv, drv_error_t *err)
{
    drv_err_t r = set_rv_only(s, rv, err);
    return r == DRV_OK ? prune_log(s, rv, err) : r;
}

static drv_err_t log_change(drv_hstore_t *s, uint64_t rv, drv_kind_t kind, const char *ns,
                            const char *name, drv_hstore_change_t type, const char *body,
                            drv_error_t *err)
{
    if (!s->batch) {
        drv_err_t r = set_rv_only(s, rv, err);
        if (r != DRV_OK)
            return r;
    }
    sqlite3_stmt *st = stmt(s, ST_LOG, err);
    if (!st)
        return err ? err->code : DRV_ERR_IO;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)rv);
    sqlite3_bind_text(st, 2, drv_kind_name(kind), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, drv_hstore_change_name(type), -1, SQLITE_STATIC);
    drv_err_t r = bind_body(s, st, 6, kind, ns, name, body, err);
    if (r != DRV_OK) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return r;
    }
    r = step_done(s, st, "write change log", err);
    if (r != DRV_OK || s->batch) /* a batch sets the counter and prunes once, at its end */
        return r;
    return set_rv_prune(s, rv, err);
}

static drv_err_t check_size(drv_kind_t kind, const char *name, size_t body, size_t status,
                            drv_error_t *err)
{
    if (body + status > DRV_HSTORE_OBJECT_MAX)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0,
                             "%s \"%s\" is %zu bytes of JSON, over the maximum of %d",
                             drv_kind_name(kind), name, body + status, DRV_HSTORE_OBJECT_MAX);
    return DRV_OK;
}

/* Labels column text ("{}" when none); NULL on allocation failure. */
static char *labels_text(const cJSON *obj)
{
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "labels");
    if (!cJSON_IsObject(l))
        return strdup("{}");
    return drv_model_to_json(l, false);
}

/* Canonical text of body with status (either may be NULL text for status). */
static char *full_text(const cJSON *body, const cJSON *status)
{
    if (!status)
        return drv_model_to_json(body, false);
    cJSON *c = cJSON_Duplicate(body, true);
    cJSON *st = cJSON_Duplicate(status, true);
    char *t = NULL;
    if (c && st && cJSON_AddItemToObject(c, "status", st)) {
        st = NULL;
        t = drv_model_to_json(c, false);
    }
    cJSON_Delete(st);
    cJSON_Delete(c);
    return t;
}

/* ---- open and migrate ---- */

static drv_err_t exec_sql(drv_hstore_t *s, const char *sql, const char *what, drv_error_t *err)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        drv_err_t r = drv_error_set(err, DRV_ERR_IO, 0, "%s: %s: %s", s->path, what,
                                    msg ? msg : sqlite3_errmsg(s->db));
        sqlite3_free(msg);
        return r;
    }
    return DRV_OK;
}

/* One integer from a query; *found false when it returned no row. */
static drv_err_t query_int(drv_hstore_t *s, const char *sql, int64_t *out, bool *found,
                           const char *what, drv_error_t *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return db_error(s, err, what);
    int rc = sqlite3_step(st);
    drv_err_t r = DRV_OK;
    *found = false;
    if (rc == SQLITE_ROW) {
        *found = sqlite3_column_type(st, 0) != SQLITE_NULL;
        *out = sqlite3_column_int64(st, 0);
    } else if (rc != SQLITE_DONE) {
        r = db_error(s, err, what);
    }
    sqlite3_finalize(st);
    return r;
}

/* The schema version of the open database: 0 for an empty one. A database with tables but
 * no Drover meta table is not ours. */
static drv_err_t schema_version(drv_hstore_t *s, int64_t *version, drv_error_t *err)
{
    int64_t n = 0;
    bool found = false;
    drv_err_t r =
        query_int(s, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
                  &n, &found, "read schema", err);
    if (r != DRV_OK)
        return r;
    if (n == 0) {
        r = query_int(s, "SELECT COUNT(*) FROM sqlite_master", &n, &found, "read schema", err);
        if (r != DRV_OK)
            return r;
        if (n != 0)
            return drv_error_set(
                err, DRV_ERR_INVALID, 0,
                "%s: an SQLite database, but not a Drover hub store (no meta table)", s->path);
        *version = 0;
        return DRV_OK;
    }
    r = query_int(s, "SELECT value FROM meta WHERE key = 'schema_version'", version, &found,
                  "read schema version", err);
    if (r == DRV_OK && !found)
        *version = 0;
    return r;
}

static drv_err_t migrate(drv_hstore_t *s, drv_error_t *err)
{
    for (int64_t target = 1; target <= DRV_HSTORE_SCHEMA_VERSION; target++) {
        drv_err_t r = begin(s, err);
        if (r != DRV_OK)
            return r;
        int64_t v = 0;
        r = schema_version(s, &v, err);
        if (r == DRV_OK && v > DRV_HSTORE_SCHEMA_VERSION)
            r = drv_error_set(
                err, DRV_ERR_UNSUPPORTED, 0,
                "%s: database schema version %" PRId64
                " is newer than this drover-hub supports (%d): use a newer drover-hub",
                s->path, v, DRV_HSTORE_SCHEMA_VERSION);
        if (r == DRV_OK && v < target) {
            char what[64];
            drv_fmt_cut(what, sizeof(what), "migration to schema version %" PRId64, target);
            r = exec_sql(s, migrations[target - 1], what, err);
            char sql[128];
            if (r == DRV_OK &&
                drv_fmt(sql, sizeof(sql),
                        "INSERT INTO meta (key, value) VALUES ('schema_version', %" PRId64 ") "
                        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        target) != DRV_OK)
                r = drv_error_set(err, DRV_ERR_INVALID, 0, "%s: statement too long", what);
            if (r == DRV_OK)
                r = exec_sql(s, sql, what, err);
            if (r == DRV_OK)
                drv_log_info("hub store migrated", "path=%s schema_version=%" PRId64, s->path,
                             target);
        }
        if (r != DRV_OK) {
            rollback(s);
            return r;
        }
        r = commit(s, err);
        if (r != DRV_OK)
            return r;
    }
    return DRV_OK;
}

void drv_hstore_close(drv_hstore_t *s)
{
    if (!s)
        return;
    shared_drop(s, true);
    for (size_t i = 0; i < ST__COUNT; i++)
        sqlite3_finalize(s->st[i]);
    sqlite3_close(s->db);
    free(s->path);
    free(s);
}

drv_err_t drv_hstore_open(const char *path, drv_hstore_t **out, drv_error_t *err)
{
    if (!path || !*path || !out)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "hub store: no database path");
    /* Create the file ourselves so that it (and the -wal and -shm files SQLite gives the same
     * mode) is private: it holds Secrets. */
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return drv_error_set(err, DRV_ERR_IO, errno, "open %s", path);
    close(fd);

    drv_hstore_t *s = calloc(1, sizeof(*s));
    if (!s || !(s->path = strdup(path))) {
        free(s);
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "open %s", path);
    }
    s->log_keep = DRV_HSTORE_LOG_KEEP;
    int rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    drv_err_t r = DRV_OK;
    if (rc != SQLITE_OK) {
        r = drv_error_set(err, DRV_ERR_IO, 0, "open %s: %s", path,
                          s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
    sqlite3_extended_result_codes(s->db, 1);

    /* The first read of the file: a file that is not a database fails here. */
    char *mode = NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        mode = t ? strdup((const char *)t) : NULL;
    }
    rc = sqlite3_extended_errcode(s->db);
    sqlite3_finalize(st);
    if (!mode) {
        if ((rc & 0xff) == SQLITE_NOTADB || (rc & 0xff) == SQLITE_CORRUPT)
            r = drv_error_set(err, DRV_ERR_INVALID, 0,
                              "%s: not a Drover hub store (%s); move it aside or choose another "
                              "data directory",
                              path, sqlite3_errstr(rc));
        else
            r = drv_error_set(err, DRV_ERR_IO, 0, "%s: enable WAL: %s", path,
                              sqlite3_errmsg(s->db));
        goto fail;
    }
    bool wal = strcmp(mode, "wal") == 0;
    free(mode);
    if (!wal) {
        r = drv_error_set(err, DRV_ERR_IO, 0,
                          "%s: the file system does not support SQLite's WAL mode", path);
        goto fail;
    }
    r = exec_sql(s, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;", "pragmas", err);
    if (r == DRV_OK)
        r = migrate(s, err);
    if (r != DRV_OK)
        goto fail;
    int64_t rv = 0;
    bool found = false;
    r = query_int(s, "SELECT value FROM meta WHERE key = 'rv'", &rv, &found, "read resourceVersion",
                  err);
    if (r == DRV_OK && (!found || rv < 0))
        r = drv_error_set(err, DRV_ERR_IO, 0, "%s: corrupt store: no resourceVersion counter",
                          path);
    if (r != DRV_OK)
        goto fail;
    s->rv = (uint64_t)rv;
    *out = s;
    return DRV_OK;
fail:
    drv_hstore_close(s);
    return r;
}

static drv_err_t load_rv(drv_hstore_t *s, drv_error_t *err)
{
    int64_t rv = 0;
    bool found = false;
    drv_err_t r = query_int(s, "SELECT value FROM meta WHERE key = 'rv'", &rv, &found,
                            "read resourceVersion", err);
    if (r == DRV_OK && found && rv >= 0)
        s->rv = (uint64_t)rv;
    return r;
}

drv_err_t drv_hstore_set_keys(drv_hstore_t *s, const drv_hstore_key_t *keys, size_t n,
                              drv_error_t *err)
{
    if (n > DRV_HSTORE_KEYS_MAX || (n && !keys))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "secret keys: at most %d",
                             DRV_HSTORE_KEYS_MAX);
    shared_drop(s, false);
    for (size_t i = 0; i < n; i++) {
        size_t len = strnlen(keys[i].id, sizeof(keys[i].id));
        if (len == 0 || len == sizeof(keys[i].id))
            return drv_error_set(err, DRV_ERR_INVALID, 0, "secret keys: key %zu: no id", i + 1);
        for (size_t j = 0; j < i; j++)
            if (strcmp(keys[i].id, keys[j].id) == 0)
                return drv_error_set(err, DRV_ERR_INVALID, 0, "secret keys: key \"%s\" twice",
                                     keys[i].id);
    }
    /* Freed pages are zeroed: a Secret deleted or rewritten leaves no old bytes behind. */
    if (n && sqlite3_exec(s->db, "PRAGMA secure_delete = ON", NULL, NULL, NULL) != SQLITE_OK)
        return db_error(s, err, "secure_delete");
    memset(s->keys, 0, sizeof(s->keys));
    if (n)
        memcpy(s->keys, keys, n * sizeof(*keys));
    s->nkeys = n;
    return DRV_OK;
}

/* One row to rewrite by drv_hstore_reseal. */
struct reseal_item {
    int64_t rv; /* change log entry; -1: objects row */
    char *ns, *name, *body;
};

/* Secret rows one re-encryption rewrites at most (objects and change log together). */
#define RESEAL_ROWS_MAX (1024 * 1024)

static void reseal_item_free(struct reseal_item *it)
{
    free(it->ns);
    free(it->name);
    wipe_free_str(it->body);
}

static void reseal_items_free(drv_vec_t *v)
{
    for (size_t i = 0; i < v->len; i++)
        reseal_item_free(drv_vec_at(v, i));
    drv_vec_free(v);
}

/* Collects the Secret rows of one query (namespace, name, body[, rv]) that are not sealed
 * with keys[0], as plain text; checks that every sealed one opens. */
static drv_err_t reseal_collect(drv_hstore_t *s, const char *sql, bool log, drv_vec_t *v,
                                drv_hstore_reseal_t *stats, bool strict, drv_error_t *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return db_error(s, err, "read Secrets");
    drv_err_t r = DRV_OK;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *ns = (const char *)sqlite3_column_text(st, 0);
        const char *name = (const char *)sqlite3_column_text(st, 1);
        const char *body = (const char *)sqlite3_column_text(st, 2);
        if (!ns || !name || !body)
            continue;
        stats->checked++;
        char *plain = NULL;
        drv_error_t e = DRV_ERROR_INIT;
        drv_err_t o = open_text(s, DRV_KIND_SECRET, ns, name, body, &plain, &e);
        if (o != DRV_OK) {
            stats->failed++;
            if (!stats->first_error[0])
                drv_fmt_cut(stats->first_error, sizeof(stats->first_error), "%s%s",
                            log ? "change log: " : "", drv_error_msg(&e));
            if (strict) {
                r = drv_error_set(err, o, 0, "%s%s", log ? "change log: " : "", drv_error_msg(&e));
                break;
            }
            drv_log_error("hub store: a Secret does not decrypt", "path=%s error=\"%s\"", s->path,
                          drv_error_msg(&e));
            continue;
        }
        cJSON *parsed = cJSON_Parse(body);
        char id[DRV_PKI_KEY_ID_MAX];
        bool current = plain && cJSON_IsObject(parsed) && sealed_key_id(parsed, id) &&
                       strcmp(id, s->keys[0].id) == 0;
        bool hides = plain || (cJSON_IsObject(parsed) &&
                               (cJSON_GetObjectItemCaseSensitive(parsed, "data") ||
                                cJSON_GetObjectItemCaseSensitive(parsed, "stringData")));
        cJSON_Delete(parsed);
        if (current || !hides) {
            wipe_free_str(plain);
            continue;
        }
        struct reseal_item it = {log ? sqlite3_column_int64(st, 3) : -1, strdup(ns), strdup(name),
                                 plain ? plain : strdup(body)};
        r = it.ns && it.name && it.body ? drv_vec_push(v, &it) : DRV_ERR_NOMEM;
        if (r != DRV_OK) {
            reseal_item_free(&it);
            if (r == DRV_ERR_TOOBIG)
                r = drv_error_set(err, r, 0, "re-encrypt Secrets: more than %d Secret rows",
                                  RESEAL_ROWS_MAX);
            else
                r = drv_error_set(err, DRV_ERR_NOMEM, 0, "re-encrypt Secrets");
            break;
        }
    }
    if (r == DRV_OK && rc != SQLITE_DONE)
        r = db_error(s, err, "read Secrets");
    sqlite3_finalize(st);
    return r;
}

drv_err_t drv_hstore_reseal(drv_hstore_t *s, bool strict, drv_hstore_reseal_t *stats,
                            drv_error_t *err)
{
    shared_drop(s, false);
    drv_hstore_reseal_t local;
    if (!stats)
        stats = &local;
    memset(stats, 0, sizeof(*stats));
    if (s->nkeys == 0)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "re-encrypt Secrets: the store has no keys");
    if (s->batch)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "re-encrypt Secrets: inside a batch");
    drv_vec_t items = DRV_VEC_INIT(struct reseal_item, RESEAL_ROWS_MAX);
    drv_err_t r = begin(s, err); /* one transaction: the rows are read and rewritten at once */
    if (r != DRV_OK)
        return r;
    r = reseal_collect(s,
                       "SELECT namespace, name, body FROM objects WHERE kind = 'Secret' "
                       "ORDER BY namespace, name",
                       false, &items, stats, strict, err);
    if (r == DRV_OK)
        r = reseal_collect(s,
                           "SELECT namespace, name, body, rv FROM changes WHERE kind = 'Secret' "
                           "ORDER BY rv",
                           true, &items, stats, strict, err);
    sqlite3_stmt *obj_st = NULL, *log_st = NULL;
    if (r == DRV_OK && (sqlite3_prepare_v2(s->db,
                                           "UPDATE objects SET body = ?3 WHERE kind = 'Secret' AND "
                                           "namespace = ?1 AND name = ?2",
                                           -1, &obj_st, NULL) != SQLITE_OK ||
                        sqlite3_prepare_v2(s->db, "UPDATE changes SET body = ?3 WHERE rv = ?4", -1,
                                           &log_st, NULL) != SQLITE_OK))
        r = db_error(s, err, "re-encrypt Secrets");
    const struct reseal_item *v = items.data;
    size_t n = items.len;
    for (size_t i = 0; r == DRV_OK && i < n; i++) {
        sqlite3_stmt *st = v[i].rv < 0 ? obj_st : log_st;
        sqlite3_bind_text(st, 1, v[i].ns, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, v[i].name, -1, SQLITE_STATIC);
        if (v[i].rv >= 0)
            sqlite3_bind_int64(st, 4, v[i].rv);
        r = bind_body(s, st, 3, DRV_KIND_SECRET, v[i].ns, v[i].name, v[i].body, err);
        if (r == DRV_OK)
            r = step_done(s, st, "re-encrypt Secrets", err);
        sqlite3_clear_bindings(st);
    }
    sqlite3_finalize(obj_st);
    sqlite3_finalize(log_st);
    if (r == DRV_OK)
        r = commit(s, err);
    else
        rollback(s);
    if (r == DRV_OK) {
        stats->resealed = n;
        /* Old ciphertexts (or plain text from before there were keys) out of the WAL. */
        if (n)
            (void)sqlite3_exec(s->db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
    }
    reseal_items_free(&items);
    return r;
}

drv_err_t drv_hstore_lock_exclusive(drv_hstore_t *s, drv_error_t *err)
{
    sqlite3_busy_timeout(s->db, 200);
    drv_err_t r = DRV_OK;
    if (sqlite3_exec(s->db, "PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; COMMIT", NULL, NULL,
                     NULL) != SQLITE_OK) {
        int rc = sqlite3_extended_errcode(s->db) & 0xff;
        if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
            r = drv_error_set(err, DRV_ERR_AGAIN, 0,
                              "%s is in use by another process (a running drover-hub?): stop it "
                              "first",
                              s->path);
        else
            r = db_error(s, err, "lock");
        (void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    }
    sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
    return r;
}

void hstore_set_namespaces(drv_hstore_t *s, bool on)
{
    s->namespaces = on;
}

void hstore_set_priorities(drv_hstore_t *s, bool on)
{
    s->priorities = on;
}

void drv_hstore_set_log_keep(drv_hstore_t *s, uint64_t keep)
{
    s->log_keep = keep ? keep : 1;
}

uint64_t drv_hstore_rv(const drv_hstore_t *s)
{
    return s->rv;
}

/* ---- mutations ---- */

static drv_err_t check_obj(drv_kind_t kind, const cJSON *obj, const char *op, drv_error_t *err)
{
    if (kind <= DRV_KIND_UNKNOWN || kind >= DRV_KIND__COUNT)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s: unknown kind", op);
    if (!cJSON_IsObject(obj))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "%s %s: not a JSON object", op,
                             drv_kind_name(kind));
    drv_kind_t k = drv_model_kind(obj);
    if (k != kind)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "kind: %s expected, not \"%s\"",
                             drv_kind_name(kind), k ? drv_kind_name(k) : "unknown");
    if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(obj, "metadata")))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "metadata: required");
    return DRV_OK;
}

/* Writes a new object (inside a transaction). */
static drv_err_t insert_new(drv_hstore_t *s, drv_kind_t kind, const char *ns, const char *name,
                            const char *uid, const char *created, const char *body,
                            const char *status, const char *labels, const char *full,
                            drv_error_t *err)
{
    uint64_t rv = s->rv + 1;
    sqlite3_stmt *st = stmt(s, ST_INSERT, err);
    if (!st)
        return err ? err->code : DRV_ERR_IO;
    sqlite3_bind_text(st, 1, drv_kind_name(kind), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, uid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)rv);
    sqlite3_bind_int64(st, 6, 1);
    sqlite3_bind_text(st, 7, created, -1, SQLITE_STATIC);
    drv_err_t r = bind_body(s, st, 8, kind, ns, name, body, err);
    if (r != DRV_OK) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return r;
    }
    if (status)
        sqlite3_bind_text(st, 9, status, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 9);
    sqlite3_bind_text(st, 10, labels, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || (rc & 0xff) == SQLITE_CONSTRAINT)
        r = drv_error_set(err, DRV_ERR_EXISTS, 0, "%s \"%s\" already exists%s%s",
                          drv_kind_name(kind), name, *ns ? " in namespace " : "", ns);
    else if (rc != SQLITE_DONE)
        r = db_error(s, err, "insert");
    sqlite3_reset(st);
    if (r == DRV_OK)
        r = log_change(s, rv, kind, ns, name, DRV_HSTORE_ADDED, full, err);
    return r;
}

drv_err_t drv_hstore_create(drv_hstore_t *s, drv_kind_t kind, cJSON *obj, drv_error_t *err)
{
    drv_err_t r = check_obj(kind, obj, "create", err);
    if (r != DRV_OK)
        return r;
    const char *name = drv_json_str(drv_json_get(obj, "metadata"), "name");
    const char *gen_name = drv_json_str(drv_json_get(obj, "metadata"), "generateName");
    bool generate = (!name || !*name) && gen_name && *gen_name;
    if (!generate && (!name || !*name))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "metadata.name: required");
    if (generate && strlen(gen_name) > NAME_MAX_LEN - NAME_SUFFIX_LEN)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "metadata.generateName: too long");
    if (!generate && strlen(name) > NAME_MAX_LEN)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "metadata.name: too long");
    const char *ns_in = drv_json_str(drv_json_get(obj, "metadata"), "namespace");
    if (ns_in && strlen(ns_in) > NAME_MAX_LEN)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "metadata.namespace: too long");
    if (s->namespaces && !cluster_scoped(kind) &&
        (r = hstore_ns_admit(s, row_ns(kind, ns_in), err)) != DRV_OK)
        return r;

    /* Work on a copy: obj changes only on success. */
    cJSON *o = cJSON_Duplicate(obj, true);
    if (!o)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "create");
    if (kind == DRV_KIND_POD && s->priorities && (r = hstore_priority_admit(s, o, err)) != DRV_OK) {
        cJSON_Delete(o);
        return r;
    }
    cJSON *status = cJSON_DetachItemFromObjectCaseSensitive(o, "status");
    if (kind == DRV_KIND_NAMESPACE && !status) /* a new Namespace is Active */
        status = cJSON_Parse("{\"phase\":\"Active\"}");
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(o, "metadata");
    const char *ns = row_ns(kind, drv_json_str(drv_json_get(o, "metadata"), "namespace"));
    char nsbuf[NAME_MAX_LEN + 1];
    if (drv_fmt(nsbuf, sizeof(nsbuf), "%s", ns) != DRV_OK) {
        cJSON_Delete(status);
        cJSON_Delete(o);
        return drv_error_set(err, DRV_ERR_INVALID, 0, "metadata.namespace: too long");
    }
    char uid[37], created[32];
    now_rfc3339(created);
    bool ok = true;
    if (cluster_scoped(kind))
        cJSON_DeleteItemFromObjectCaseSensitive(meta, "namespace");
    else
        ok = set_str(meta, "namespace", nsbuf);
    r = make_uuid(uid, err);
    ok = ok && set_str(meta, "uid", uid) && set_str(meta, "creationTimestamp", created) &&
         set_item(meta, "generation", cJSON_CreateNumber(1)) && set_rv(meta, s->rv + 1);
    if (r == DRV_OK && !ok)
        r = drv_error_set(err, DRV_ERR_NOMEM, 0, "create");

    for (int attempt = 0; r == DRV_OK; attempt++) {
        char namebuf[NAME_MAX_LEN + 1];
        if (generate) {
            char suffix[NAME_SUFFIX_LEN + 1];
            r = random_suffix(suffix, err);
            if (r != DRV_OK)
                break;
            if (drv_fmt(namebuf, sizeof(namebuf), "%s%s", gen_name, suffix) != DRV_OK) {
                r = drv_error_set(err, DRV_ERR_INVALID, 0, "metadata.generateName: too long");
                break;
            }
            if (!set_str(meta, "name", namebuf)) {
                r = drv_error_set(err, DRV_ERR_NOMEM, 0, "create");
                break;
            }
        } else if (drv_fmt(namebuf, sizeof(namebuf), "%s", name) != DRV_OK) {
            r = drv_error_set(err, DRV_ERR_INVALID, 0, "metadata.name: too long");
            break;
        }
        _cleanup_free_ char *body = drv_model_to_json(o, false);
        _cleanup_free_ char *st_text = status ? drv_model_to_json(status, false) : NULL;
        _cleanup_free_ char *labels = labels_text(o);
        _cleanup_free_ char *full = status ? full_text(o, status) : NULL;
        if (!body || !labels || (status && (!st_text || !full))) {
            r = drv_error_set(err, DRV_ERR_NOMEM, 0, "create");
            break;
        }
        r = check_size(kind, namebuf, strlen(body), st_text ? strlen(st_text) : 0, err);
        if (r != DRV_OK)
            break;
        r = begin(s, err);
        if (r != DRV_OK)
            break;
        r = insert_new(s, kind, nsbuf, namebuf, uid, created, body, st_text, labels,
                       full ? full : body, err);
        if (r == DRV_OK) {
            r = commit(s, err);
        } else {
            rollback(s);
            if (r == DRV_ERR_EXISTS && generate && attempt + 1 < GENERATE_TRIES) {
                drv_error_clear(err);
                r = DRV_OK;
                continue;
            }
        }
        break;
    }
    if (r != DRV_OK) {
        cJSON_Delete(status);
        cJSON_Delete(o);
        return r;
    }
    if (!s->dry)
        s->rv++;
    drv_json_sort_keys(o);
    if (status)
        add_sorted(o, "status", status);
    swap_into(obj, o);
    return DRV_OK;
}

drv_err_t drv_hstore_get(drv_hstore_t *s, drv_kind_t kind, const char *ns, const char *name,
                         cJSON **out, drv_error_t *err)
{
    if (kind <= DRV_KIND_UNKNOWN || kind >= DRV_KIND__COUNT || !name || !out)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "get: unknown kind or no name");
    ns = row_ns(kind, ns);
    struct row row;
    drv_err_t r = load_row(s, kind, ns, name, &row, err);
    if (r != DRV_OK)
        return r;
    r = row_open(s, kind, ns, name, &row, err);
    if (r == DRV_OK)
        r = assemble(kind, ns, name, row.body, row.status, out, err);
    row_free(&row);
    return r;
}

drv_err_t drv_hstore_list(drv_hstore_t *s, drv_kind_t kind, const char *ns,
                          const drv_selector_t *sel, cJSON **items, uint64_t *rv, drv_error_t *err)
{
    if (kind <= DRV_KIND_UNKNOWN || kind >= DRV_KIND__COUNT || !items)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "list: unknown kind");
    bool all = !ns || !*ns || cluster_scoped(kind);
    sqlite3_stmt *st = stmt(s, all ? ST_LIST_ALL : ST_LIST_NS, err);
    if (!st)
        return err ? err->code : DRV_ERR_IO;
    cJSON *arr = cJSON_CreateArray();
    if (!arr)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "list");
    sqlite3_bind_text(st, 1, drv_kind_name(kind), -1, SQLITE_STATIC);
    if (!all)
        sqlite3_bind_text(st, 2, ns, -1, SQLITE_STATIC);
    drv_err_t r = DRV_OK;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *rns = (const char *)sqlite3_column_text(st, 0);
        const char *rname = (const char *)sqlite3_column_text(st, 1);
        cJSON *o = NULL;
        drv_error_t e = DRV_ERROR_INIT;
        char *plain = NULL;
        const char *body = (const char *)sqlite3_column_text(st, 2);
        drv_err_t ar = open_text(s, kind, rns ? rns : "", rname ? rname : "", body, &plain, &e);
        if (ar == DRV_OK)
            ar = assemble(kind, rns ? rns : "", rname ? rname : "", plain ? plain : body,
                          (const char *)sqlite3_column_text(st, 3), &o, &e);
        wipe_free_str(plain);
        if (ar != DRV_OK) {
            /* One bad row must not hide every other object of its kind from the controllers. */
            drv_log_error("hub store: skipping a corrupt row", "path=%s error=\"%s\"", s->path,
                          drv_error_msg(&e));
            continue;
        }
        const cJSON *labels = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(o, "metadata"), "labels");
        if (sel && !drv_selector_matches(sel, labels)) {
            cJSON_Delete(o);
            continue;
        }
        cJSON_AddItemToArray(arr, o);
    }
    if (rc != SQLITE_DONE)
        r = db_error(s, err, "list");
    sqlite3_reset(st);
    if (r != DRV_OK) {
        cJSON_Delete(arr);
        return r;
    }
    *items = arr;
    if (rv)
        *rv = s->rv;
    return DRV_OK;
}

/* Whether a row's labels column (JSON text, "{}" or NULL when none) matches sel. */
static bool row_labels_match(const drv_selector_t *sel, const char *text)
{
    if (!sel || sel->nreqs == 0)
        return true;
    cJSON *l = text ? cJSON_Parse(text) : NULL;
    bool m = drv_selector_matches(sel, cJSON_IsObject(l) ? l : NULL);
    cJSON_Delete(l);
    return m;
}

/* The rows after the key that no selector drops, counted from the index alone. */
static drv_err_t count_after(drv_hstore_t *s, drv_kind_t kind, bool all, const char *ns,
                             const char *after_ns, const char *after_name, size_t *n,
                             drv_error_t *err)
{
    sqlite3_stmt *st = stmt(s, all ? ST_COUNT_ALL : ST_COUNT_NS, err);
    if (!st)
        return err ? err->code : DRV_ERR_IO;
    sqlite3_bind_text(st, 1, drv_kind_name(kind), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, all ? after_ns : ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, after_name, -1, SQLITE_STATIC);
    drv_err_t r = DRV_OK;
    if (sqlite3_step(st) == SQLITE_ROW)
        *n = (size_t)sqlite3_column_int64(st, 0);
    else
        r = db_error(s, err, "count");
    sqlite3_reset(st);
    return r;
}

drv_err_t drv_hstore_list_page(drv_hstore_t *s, drv_kind_t kind, const char *ns,
                               const drv_selector_t *sel, drv_hstore_filter_fn keep, void *ctx,
                               const char *after_ns, const char *after_name, size_t limit,
                               cJSON **items, size_t *remaining, uint64_t *rv, drv_error_t *err)
{
    if (kind <= DRV_KIND_UNKNOWN || kind >= DRV_KIND__COUNT || !items || !remaining)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "list: unknown kind");
    bool all = !ns || !*ns || cluster_scoped(kind);
    after_ns = after_ns ? after_ns : "";
    after_name = after_name ? after_name : "";
    /* Listing one namespace after a key from another: the rows after the key are the whole
     * namespace (key before it) or none (key after it), as the store's order has them. */
    if (!all) {
        int c = strcmp(after_ns, ns);
        if (c < 0)
            after_name = "";
        else if (c > 0) {
            cJSON *none = cJSON_CreateArray();
            if (!none)
                return drv_error_set(err, DRV_ERR_NOMEM, 0, "list");
            *items = none;
            *remaining = 0;
            if (rv)
                *rv = s->rv;
            return DRV_OK;
        }
    }
    sqlite3_stmt *st = stmt(s, all ? ST_PAGE_ALL : ST_PAGE_NS, err);
    if (!st)
        return err ? err->code : DRV_ERR_IO;
    cJSON *arr = cJSON_CreateArray();
    if (!arr)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "list");
    sqlite3_bind_text(st, 1, drv_kind_name(kind), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, all ? after_ns : ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, after_name, -1, SQLITE_STATIC);
    bool labels_only = !keep; /* after the page, a row is counted from its labels alone */
    size_t got = 0, more = 0;
    drv_err_t r = DRV_OK;
    int rc;
    /* Without any selector the count after the page comes from the index (count_after). */
    bool counted = false;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *rns = (const char *)sqlite3_column_text(st, 0);
        const char *rname = (const char *)sqlite3_column_text(st, 1);
        rns = rns ? rns : "";
        rname = rname ? rname : "";
        if (!row_labels_match(sel, (const char *)sqlite3_column_text(st, 2)))
            continue;
        bool full = limit && got >= limit;
        if (full && labels_only) {
            if (!sel || sel->nreqs == 0) {
                /* The last row of the page is the key of the rest. */
                const cJSON *last = cJSON_GetArrayItem(arr, (int)got - 1);
                const cJSON *meta = cJSON_GetObjectItemCaseSensitive(last, "metadata");
                sqlite3_reset(st);
                r = count_after(s, kind, all, ns, all ? drv_json_str_or(meta, "namespace", "") : ns,
                                drv_json_str_or(meta, "name", ""), &more, err);
                counted = true;
                break;
            }
            more++;
            continue;
        }
        cJSON *o = NULL;
        drv_error_t e = DRV_ERROR_INIT;
        char *plain = NULL;
        const char *body = (const char *)sqlite3_column_text(st, 3);
        drv_err_t ar = open_text(s, kind, rns, rname, body, &plain, &e);
        if (ar == DRV_OK)
            ar = assemble(kind, rns, rname, plain ? plain : body,
                          (const char *)sqlite3_column_text(st, 4), &o, &e);
        wipe_free_str(plain);
        if (ar != DRV_OK) {
            drv_log_error("hub store: skipping a corrupt row", "path=%s error=\"%s\"", s->path,
                          drv_error_msg(&e));
            continue;
        }
        if (keep && !keep(o, ctx)) {
            cJSON_Delete(o);
            continue;
        }
        if (full) {
            cJSON_Delete(o);
            more++;
            continue;
        }
        cJSON_AddItemToArray(arr, o);
        got++;
    }
    if (!counted) {
        if (rc != SQLITE_DONE)
            r = db_error(s, err, "list");
        sqlite3_reset(st);
    }
    if (r != DRV_OK) {
        cJSON_Delete(arr);
        return r;
    }
    *items = arr;
    *remaining = more;
    if (rv)
        *rv = s->rv;
    return DRV_OK;
}

/* A listed object's key, as the listing is ordered: (namespace as stored, name). */
struct skey {
    const char *ns, *name;
    cJSON *item; /* NULL: deleted by the catch-up */
};

static int skey_cmp(const struct skey *a, const struct skey *b)
{
    int c = strcmp(a->ns, b->ns);
    return c ? c : strcmp(a->name, b->name);
}

static int skey_qcmp(const void *a, const void *b)
{
    return skey_cmp(a, b);
}

static struct skey skey_of(drv_kind_t kind, cJSON *o)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "metadata");
    const char *name = drv_json_str(m, "name");
    return (struct skey){
        .ns = row_ns(kind, drv_json_str(m, "namespace")), .name = name ? name : "", .item = o};
}

/* One change to apply: the last of its object's (the events are in rv order). */
struct schange {
    struct skey k;
    size_t at; /* its place in the log, for a stable order */
    drv_hstore_event_t *ev;
};

static int schange_cmp(const void *a, const void *b)
{
    const struct schange *x = a, *y = b;
    int c = skey_cmp(&x->k, &y->k);
    return c ? c : (x->at > y->at) - (x->at < y->at);
}

/* Brings the shared listing c of kind from c->rv up to the store's rv with the change log's
 * entries for that kind: only the objects that changed are parsed, not every row again. The
 * listing keeps the rows' order (namespace, name). false: the log does not reach back that far,
 * or the changes are as many as the rows, or memory ran out; the caller lists again. */
static bool shared_catch_up(drv_hstore_t *s, drv_kind_t kind, struct shared_list *c)
{
    size_t n = (size_t)cJSON_GetArraySize(c->items), most = n + 64;
    drv_hstore_event_t *ev = NULL;
    size_t nev = 0;
    if (drv_hstore_changes(s, c->rv, kind, most, &ev, &nev, NULL) != DRV_OK)
        return false;
    if (nev >= most) { /* as many changes as rows: a listing costs no more */
        drv_hstore_events_free(ev, nev);
        return false;
    }
    struct skey *keys = calloc(n + 1, sizeof(*keys));
    struct schange *ch = calloc(nev + 1, sizeof(*ch));
    bool ok = keys && ch;
    size_t i = 0;
    cJSON *o;
    cJSON_ArrayForEach(o, (ok ? c->items : NULL))
    {
        keys[i] = skey_of(kind, o);
        /* The rows' order is the listing's; a listing out of order is not searched. */
        ok = ok && (i == 0 || skey_cmp(&keys[i - 1], &keys[i]) < 0);
        i++;
    }
    for (size_t j = 0; ok && j < nev; j++)
        ch[j] = (struct schange){.k = skey_of(kind, ev[j].obj), .at = j, .ev = &ev[j]};
    if (ok && nev > 1)
        qsort(ch, nev, sizeof(*ch), schange_cmp);
    /* The new objects, in key order (the changes are), merged into the listing at the end. */
    cJSON **added = ok ? calloc(nev + 1, sizeof(*added)) : NULL;
    cJSON **gone = ok ? calloc(nev + 1, sizeof(*gone)) : NULL;
    ok = ok && added && gone;
    size_t nadded = 0, ngone = 0;
    for (size_t j = 0; ok && j < nev; j++) {
        if (j + 1 < nev && skey_cmp(&ch[j].k, &ch[j + 1].k) == 0)
            continue; /* a later change of the same object follows */
        drv_hstore_event_t *e = ch[j].ev;
        struct skey *at = bsearch(&ch[j].k, keys, n, sizeof(*keys), skey_qcmp);
        if (at && e->type == DRV_HSTORE_DELETED) {
            /* Freed only at the end: at->ns and at->name point into it, and the searches
             * after this one still compare with them. */
            gone[ngone++] = cJSON_DetachItemViaPointer(c->items, at->item);
            at->item = NULL;
        } else if (at) {
            cJSON *fresh = e->obj;
            e->obj = NULL;
            ok = cJSON_ReplaceItemViaPointer(c->items, at->item, fresh);
            *at = skey_of(kind, fresh);
        } else if (e->type != DRV_HSTORE_DELETED) {
            added[nadded++] = e->obj;
            e->obj = NULL;
        }
    }
    if (ok && nadded) {
        /* Merge the listing and the new objects, both in key order, into one array. */
        cJSON *merged = cJSON_CreateArray();
        ok = merged != NULL;
        size_t a = 0, b = 0;
        while (ok && (a < n || b < nadded)) {
            if (a < n && !keys[a].item) {
                a++;
                continue;
            }
            struct skey kb = b < nadded ? skey_of(kind, added[b]) : (struct skey){0};
            cJSON *next;
            if (b >= nadded || (a < n && skey_cmp(&keys[a], &kb) < 0))
                next = cJSON_DetachItemViaPointer(c->items, keys[a++].item);
            else
                next = added[b++];
            cJSON_AddItemToArray(merged, next);
        }
        if (ok) {
            cJSON_Delete(c->items); /* empty now */
            c->items = merged;
            nadded = 0;
        } else {
            cJSON_Delete(merged);
        }
    }
    for (size_t j = 0; j < nadded; j++)
        cJSON_Delete(added[j]);
    for (size_t j = 0; j < ngone; j++)
        cJSON_Delete(gone[j]);
    free(added);
    free(gone);
    free(keys);
    free(ch);
    drv_hstore_events_free(ev, nev);
    if (ok)
        c->rv = s->rv;
    return ok;
}

drv_err_t drv_hstore_list_shared(drv_hstore_t *s, drv_kind_t kind, const cJSON **items,
                                 drv_error_t *err)
{
    if (kind <= DRV_KIND_UNKNOWN || kind >= DRV_KIND__COUNT || !items)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "list: unknown kind");
    if (kind == DRV_KIND_SECRET)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "list: Secrets are not shared");
    struct shared_list *c = &s->shared[kind];
    if (c->items && c->epoch == s->epoch && (c->rv == s->rv || shared_catch_up(s, kind, c))) {
        *items = c->items;
        return DRV_OK;
    }
    cJSON *fresh = NULL;
    drv_err_t r = drv_hstore_list(s, kind, NULL, NULL, &fresh, NULL, err);
    if (r != DRV_OK)
        return r;
    cJSON_Delete(c->items);
    *c = (struct shared_list){.items = fresh, .rv = s->rv, .epoch = s->epoch};
    *items = fresh;
    return DRV_OK;
}

static drv_err_t parse_rv(const char *text, uint64_t *out)
{
    if (!text || *text < '0' || *text > '9')
        return DRV_ERR_INVALID;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || *end)
        return DRV_ERR_INVALID;
    *out = v;
    return DRV_OK;
}

drv_err_t drv_hstore_update(drv_hstore_t *s, drv_kind_t kind, cJSON *obj, drv_error_t *err)
{
    drv_err_t r = check_obj(kind, obj, "update", err);
    if (r != DRV_OK)
        return r;
    const char *name = drv_json_str(drv_json_get(obj, "metadata"), "name");
    if (!name || !*name)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "metadata.name: required");
    const char *ns = row_ns(kind, drv_json_str(drv_json_get(obj, "metadata"), "namespace"));
    struct row row;
    r = load_row(s, kind, ns, name, &row, err);
    if (r == DRV_OK && (r = row_open(s, kind, ns, name, &row, err)) != DRV_OK)
        row_free(&row);
    if (r != DRV_OK)
        return r;
    cJSON *stored = NULL, *o = NULL, *status = NULL;
    char *old_spec = NULL, *new_spec = NULL, *body = NULL, *full = NULL, *labels = NULL;
    const char *want_rv = drv_json_str(drv_json_get(obj, "metadata"), "resourceVersion");
    const char *want_uid = drv_json_str(drv_json_get(obj, "metadata"), "uid");
    uint64_t want = 0;
    if (want_rv && *want_rv && parse_rv(want_rv, &want) != DRV_OK) {
        r = drv_error_set(err, DRV_ERR_INVALID, 0,
                          "metadata.resourceVersion: invalid value \"%.32s\": must be a decimal "
                          "number",
                          want_rv);
        goto out;
    }
    if ((want_rv && *want_rv && want != row.rv) ||
        (want_uid && *want_uid && strcmp(want_uid, row.uid))) {
        r = drv_error_set(err, DRV_ERR_CONFLICT, 0,
                          "Operation cannot be fulfilled on %s \"%s\": the object has been "
                          "modified; please apply your changes to the latest version and try again",
                          drv_kind_plural(kind), name);
        goto out;
    }
    if (row.status) {
        status = cJSON_Parse(row.status);
        if (!status) {
            r = drv_error_set(err, DRV_ERR_IO, 0, "stored %s %s is corrupt: status is not JSON",
                              drv_kind_name(kind), name);
            goto out;
        }
    }
    o = cJSON_Duplicate(obj, true);
    if (!o) {
        r = drv_error_set(err, DRV_ERR_NOMEM, 0, "update");
        goto out;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(o, "status");
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(o, "metadata");
    bool ok = true;
    if (cluster_scoped(kind))
        cJSON_DeleteItemFromObjectCaseSensitive(meta, "namespace");
    else
        ok = set_str(meta, "namespace", ns);
    ok = ok && set_str(meta, "uid", row.uid) && set_str(meta, "creationTimestamp", row.created) &&
         set_item(meta, "generation", cJSON_CreateNumber((double)row.generation)) &&
         set_rv(meta, row.rv);
    if (!ok || !(body = drv_model_to_json(o, false))) {
        r = drv_error_set(err, DRV_ERR_NOMEM, 0, "update");
        goto out;
    }
    /* What generation tracks is the text outside metadata (bodies hold no status): cut from
     * the two canonical texts, or printed from the trees when a text cannot be walked. */
    old_spec = hstore_canon_without(row.body, "metadata");
    new_spec = old_spec ? hstore_canon_without(body, "metadata") : NULL;
    if (!old_spec || !new_spec) {
        free(old_spec);
        free(new_spec);
        r = assemble(kind, ns, name, row.body, NULL, &stored, err);
        if (r != DRV_OK)
            goto out;
        old_spec = spec_text(stored);
        new_spec = spec_text(o);
        if (!old_spec || !new_spec) {
            r = drv_error_set(err, DRV_ERR_NOMEM, 0, "update");
            goto out;
        }
    }
    int64_t gen = row.generation + (strcmp(old_spec, new_spec) != 0);
    if (gen != row.generation) {
        /* The new generation in the tree and in the text (cJSON prints a whole number that
         * fits an int as "%d"), or the tree printed again. */
        char num[32], *b = NULL;
        if (!set_item(meta, "generation", cJSON_CreateNumber((double)gen))) {
            r = drv_error_set(err, DRV_ERR_NOMEM, 0, "update");
            goto out;
        }
        if (gen <= INT_MAX && drv_fmt(num, sizeof(num), "%" PRId64, gen) == DRV_OK)
            b = hstore_canon_set_meta(body, "generation", num);
        if (!b && !(b = drv_model_to_json(o, false))) {
            r = drv_error_set(err, DRV_ERR_NOMEM, 0, "update");
            goto out;
        }
        free(body);
        body = b;
    }
    if (strcmp(body, row.body) != 0) {
        uint64_t rv = s->rv + 1;
        char rvq[32], *b = NULL;
        if (!set_rv(meta, rv)) {
            r = drv_error_set(err, DRV_ERR_NOMEM, 0, "update");
            goto out;
        }
        if (drv_fmt(rvq, sizeof(rvq), "\"%" PRIu64 "\"", rv) == DRV_OK)
            b = hstore_canon_set_meta(body, "resourceVersion", rvq);
        if (!b && !(b = drv_model_to_json(o, false))) {
            r = drv_error_set(err, DRV_ERR_NOMEM, 0, "update");
            goto out;
        }
        free(body);
        body = b;
        /* The labels column and the change log's object, from the text as well. */
        if ((labels = hstore_canon_meta_member(body, "labels")) && labels[0] != '{') {
            free(labels);
            labels = strdup("{}");
        } else if (!labels) {
            labels = labels_text(o);
        }
        if (status && !(full = hstore_canon_with(body, "status", row.status)))
            full = full_text(o, status);
        if (!labels || (status && !full)) {
            r = drv_error_set(err, DRV_ERR_NOMEM, 0, "update");
            goto out;
        }
        r = check_size(kind, name, strlen(body), row.status ? strlen(row.status) : 0, err);
        if (r == DRV_OK)
            r = begin(s, err);
        if (r != DRV_OK)
            goto out;
        sqlite3_stmt *st = stmt(s, ST_UPDATE, err);
        if (!st) {
            r = err ? err->code : DRV_ERR_IO;
        } else {
            sqlite3_bind_text(st, 1, drv_kind_name(kind), -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 2, ns, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 4, (sqlite3_int64)rv);
            sqlite3_bind_int64(st, 5, gen);
            if (row.status)
                sqlite3_bind_text(st, 7, row.status, -1, SQLITE_STATIC);
            else
                sqlite3_bind_null(st, 7);
            sqlite3_bind_text(st, 8, labels, -1, SQLITE_STATIC);
            r = bind_body(s, st, 6, kind, ns, name, body, err);
            if (r == DRV_OK)
                r = step_done(s, st, "update", err);
            else
                sqlite3_reset(st);
        }
        if (r == DRV_OK)
            r = log_change(s, rv, kind, ns, name, DRV_HSTORE_MODIFIED, full ? full : body, err);
        if (r == DRV_OK)
            r = commit(s, err);
        else
            rollback(s);
        if (r != DRV_OK)
            goto out;
        if (!s->dry)
            s->rv = rv;
        drv_json_sort_keys(o);
    } else {
        /* Nothing changed: hand back what is stored. */
        if (!stored && (r = assemble(kind, ns, name, row.body, NULL, &stored, err)) != DRV_OK)
            goto out;
        cJSON_Delete(o);
        o = TAKE_PTR(stored);
    }
    if (status)
        add_sorted(o, "status", TAKE_PTR(status));
    swap_into(obj, TAKE_PTR(o));
out:
    cJSON_Delete(stored);
    cJSON_Delete(o);
    cJSON_Delete(status);
    free(old_spec);
    free(new_spec);
    free(body);
    free(full);
    free(labels);
    row_free(&row);
    return r;
}

drv_err_t drv_hstore_update_status(drv_hstore_t *s, drv_kind_t kind, const char *ns,
                                   const char *name, cJSON *status, uint64_t *rv_out,
                                   drv_error_t *err)
{
    if (kind <= DRV_KIND_UNKNOWN || kind >= DRV_KIND__COUNT || !name) {
        cJSON_Delete(status);
        return drv_error_set(err, DRV_ERR_INVALID, 0, "update status: unknown kind or no name");
    }
    if (!cJSON_IsObject(status)) {
        cJSON_Delete(status);
        return drv_error_set(err, DRV_ERR_INVALID, 0, "status: must be an object");
    }
    ns = row_ns(kind, ns);
    struct row row;
    drv_err_t r = load_row(s, kind, ns, name, &row, err);
    if (r == DRV_OK && (r = row_open(s, kind, ns, name, &row, err)) != DRV_OK)
        row_free(&row);
    if (r != DRV_OK) {
        cJSON_Delete(status);
        return r;
    }
    cJSON *o = NULL;
    char *st_text = drv_model_to_json(status, false), *body = NULL, *full = NULL;
    if (!st_text) {
        r = drv_error_set(err, DRV_ERR_NOMEM, 0, "update status");
        goto out;
    }
    if (row.status && strcmp(row.status, st_text) == 0) {
        if (rv_out)
            *rv_out = row.rv;
        goto out;
    }
    uint64_t rv = s->rv + 1;
    /* The stored body's text with the new resourceVersion, and the status put in, edited as
     * text: what printing the parsed body would give, without parsing and printing it. */
    char rvq[32];
    if (drv_fmt(rvq, sizeof(rvq), "\"%" PRIu64 "\"", rv) == DRV_OK &&
        (body = hstore_canon_set_meta(row.body, "resourceVersion", rvq)))
        full = hstore_canon_with(body, "status", st_text);
    if (!body || !full) {
        free(body);
        free(full);
        body = full = NULL;
        r = assemble(kind, ns, name, row.body, NULL, &o, err);
        if (r != DRV_OK)
            goto out;
        if (!set_rv(cJSON_GetObjectItemCaseSensitive(o, "metadata"), rv) ||
            !(body = drv_model_to_json(o, false)) || !(full = full_text(o, status))) {
            r = drv_error_set(err, DRV_ERR_NOMEM, 0, "update status");
            goto out;
        }
    }
    r = check_size(kind, name, strlen(body), strlen(st_text), err);
    if (r == DRV_OK)
        r = begin(s, err);
    if (r != DRV_OK)
        goto out;
    sqlite3_stmt *st = stmt(s, ST_UPDATE_STATUS, err);
    if (!st) {
        r = err ? err->code : DRV_ERR_IO;
    } else {
        sqlite3_bind_text(st, 1, drv_kind_name(kind), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, ns, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, (sqlite3_int64)rv);
        sqlite3_bind_int64(st, 5, row.generation);
        sqlite3_bind_text(st, 7, st_text, -1, SQLITE_STATIC);
        r = bind_body(s, st, 6, kind, ns, name, body, err);
        if (r == DRV_OK)
            r = step_done(s, st, "update status", err);
        else
            sqlite3_reset(st);
    }
    if (r == DRV_OK)
        r = log_change(s, rv, kind, ns, name, DRV_HSTORE_MODIFIED, full, err);
    if (r == DRV_OK)
        r = commit(s, err);
    else
        rollback(s);
    if (r == DRV_OK) {
        if (!s->dry)
            s->rv = rv;
        if (rv_out)
            *rv_out = rv;
    }
out:
    cJSON_Delete(o);
    cJSON_Delete(status);
    free(st_text);
    free(body);
    free(full);
    row_free(&row);
    return r;
}

drv_err_t drv_hstore_delete(drv_hstore_t *s, drv_kind_t kind, const char *ns, const char *name,
                            cJSON **deleted, drv_error_t *err)
{
    if (kind <= DRV_KIND_UNKNOWN || kind >= DRV_KIND__COUNT || !name)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "delete: unknown kind or no name");
    ns = row_ns(kind, ns);
    struct row row;
    drv_err_t r = load_row(s, kind, ns, name, &row, err);
    if (r != DRV_OK)
        return r;
    uint64_t rv = s->rv + 1;
    cJSON *o = NULL;
    char *full = NULL;
    drv_error_t e = DRV_ERROR_INIT;
    /* A corrupt row can still be deleted: that is how an operator gets rid of it. A Secret
     * that does not open is logged sealed as it was. */
    if (row_open(s, kind, ns, name, &row, &e) == DRV_OK &&
        assemble(kind, ns, name, row.body, row.status, &o, &e) == DRV_OK) {
        if (!set_rv(cJSON_GetObjectItemCaseSensitive(o, "metadata"), rv) ||
            !(full = drv_model_to_json(o, false))) {
            r = drv_error_set(err, DRV_ERR_NOMEM, 0, "delete");
            goto out;
        }
    } else {
        full = strdup(row.body ? row.body : "");
        if (!full) {
            r = drv_error_set(err, DRV_ERR_NOMEM, 0, "delete");
            goto out;
        }
    }
    r = begin(s, err);
    if (r != DRV_OK)
        goto out;
    sqlite3_stmt *st = stmt(s, ST_DELETE, err);
    if (!st) {
        r = err ? err->code : DRV_ERR_IO;
    } else {
        sqlite3_bind_text(st, 1, drv_kind_name(kind), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, ns, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
        r = step_done(s, st, "delete", err);
    }
    if (r == DRV_OK)
        r = log_change(s, rv, kind, ns, name, DRV_HSTORE_DELETED, full, err);
    if (r == DRV_OK)
        r = commit(s, err);
    else
        rollback(s);
    if (r != DRV_OK)
        goto out;
    if (!s->dry)
        s->rv = rv;
    if (deleted)
        *deleted = TAKE_PTR(o);
out:
    cJSON_Delete(o);
    free(full);
    row_free(&row);
    return r;
}

/* ---- the change log ---- */

void drv_hstore_events_free(drv_hstore_event_t *events, size_t n)
{
    if (!events)
        return;
    for (size_t i = 0; i < n; i++)
        cJSON_Delete(events[i].obj);
    free(events);
}

drv_err_t drv_hstore_changes(drv_hstore_t *s, uint64_t since_rv, drv_kind_t kind, size_t max,
                             drv_hstore_event_t **events, size_t *n, drv_error_t *err)
{
    if ((int)kind < 0 || kind >= DRV_KIND__COUNT || !events || !n)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "changes: bad arguments");
    if (since_rv > s->rv)
        return drv_error_set(err, DRV_ERR_RANGE, 0,
                             "resourceVersion %" PRIu64 " is newer than the store's (%" PRIu64
                             "): list again",
                             since_rv, s->rv);
    sqlite3_stmt *st = stmt(s, ST_LOG_FLOOR, err);
    if (!st)
        return err ? err->code : DRV_ERR_IO;
    int rc = sqlite3_step(st);
    /* Every change has its own resourceVersion and log entry, so the log is contiguous: it
     * covers everything after (its oldest entry - 1). An empty log covers nothing before now. */
    uint64_t floor = s->rv;
    if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        floor = (uint64_t)sqlite3_column_int64(st, 0) - 1;
    drv_err_t r = rc == SQLITE_ROW ? DRV_OK : db_error(s, err, "read change log");
    sqlite3_reset(st);
    if (r != DRV_OK)
        return r;
    if (since_rv < floor)
        return drv_error_set(err, DRV_ERR_RANGE, 0,
                             "too old resource version: %" PRIu64
                             " (the oldest retained is %" PRIu64 "): list again",
                             since_rv, floor);
    if (max == 0 || since_rv == s->rv) {
        *events = NULL;
        *n = 0;
        return DRV_OK;
    }
    st = stmt(s, kind == DRV_KIND_UNKNOWN ? ST_CHANGES_ALL : ST_CHANGES_KIND, err);
    if (!st)
        return err ? err->code : DRV_ERR_IO;
    uint64_t avail = s->rv - since_rv;
    size_t cap = max < avail ? max : (size_t)avail;
    drv_hstore_event_t *ev = calloc(cap, sizeof(*ev));
    if (!ev)
        return drv_error_set(err, DRV_ERR_NOMEM, 0, "changes");
    size_t count = 0;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)since_rv);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)cap);
    if (kind != DRV_KIND_UNKNOWN)
        sqlite3_bind_text(st, 3, drv_kind_name(kind), -1, SQLITE_STATIC);
    while (count < cap && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        uint64_t rv = (uint64_t)sqlite3_column_int64(st, 0);
        const char *k = (const char *)sqlite3_column_text(st, 1);
        const char *rns = (const char *)sqlite3_column_text(st, 2);
        const char *rname = (const char *)sqlite3_column_text(st, 3);
        const char *type = (const char *)sqlite3_column_text(st, 4);
        const char *body = (const char *)sqlite3_column_text(st, 5);
        drv_kind_t ek = k ? drv_kind_parse(k) : DRV_KIND_UNKNOWN;
        drv_hstore_change_t t;
        char *plain = NULL;
        drv_error_t e = DRV_ERROR_INIT;
        if (open_text(s, ek, rns ? rns : "", rname ? rname : "", body, &plain, &e) != DRV_OK) {
            drv_log_error("hub store: skipping a change log entry that does not decrypt",
                          "path=%s rv=%" PRIu64 " error=\"%s\"", s->path, rv, drv_error_msg(&e));
            continue;
        }
        cJSON *o = plain ? cJSON_Parse(plain) : body ? cJSON_Parse(body) : NULL;
        wipe_free_str(plain);
        if (ek == DRV_KIND_UNKNOWN || !type || !parse_change(type, &t) || !cJSON_IsObject(o)) {
            cJSON_Delete(o);
            drv_log_error("hub store: skipping a corrupt change log entry",
                          "path=%s rv=%" PRIu64 " kind=%s namespace=%s name=%s", s->path, rv,
                          k ? k : "", rns ? rns : "", rname ? rname : "");
            continue;
        }
        ev[count++] = (drv_hstore_event_t){.rv = rv, .type = t, .kind = ek, .obj = o};
    }
    if (count < cap && rc != SQLITE_DONE)
        r = db_error(s, err, "read change log");
    sqlite3_reset(st);
    if (r != DRV_OK) {
        drv_hstore_events_free(ev, count);
        return r;
    }
    if (count == 0) {
        free(ev);
        ev = NULL;
    }
    *events = ev;
    *n = count;
    return DRV_OK;
}

/* ---- tokens ---- */

static bool token_text_ok(const char *v, size_t cap)
{
    return v && strnlen(v, cap) < cap;
}

static drv_err_t token_check(const drv_hstore_token_t *t, drv_error_t *err)
{
    if (!token_text_ok(t->id, sizeof(t->id)) || !*t->id)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "token: id: required");
    if (!token_text_ok(t->kind, sizeof(t->kind)) || !*t->kind)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "token %s: kind: required", t->id);
    if (!token_text_ok(t->role, sizeof(t->role)))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "token %s: role: too long", t->id);
    if (!token_text_ok(t->description, sizeof(t->description)))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "token %s: description: too long", t->id);
    if (!token_text_ok(t->labels, sizeof(t->labels)))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "token %s: labels: too long", t->id);
    return DRV_OK;
}

drv_err_t drv_hstore_token_add(drv_hstore_t *s, const drv_hstore_token_t *t, drv_error_t *err)
{
    drv_err_t r = token_check(t, err);
    if (r != DRV_OK)
        return r;
    sqlite3_stmt *st = stmt(s, ST_TOKEN_COUNT, err);
    if (!st)
        return err ? err->code : DRV_ERR_IO;
    int rc = sqlite3_step(st);
    int64_t count = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    r = rc == SQLITE_ROW ? DRV_OK : db_error(s, err, "count tokens");
    sqlite3_reset(st);
    if (r != DRV_OK)
        return r;
    if (count >= DRV_HSTORE_TOKENS_MAX)
        return drv_error_set(err, DRV_ERR_RANGE, 0,
                             "token table full (%d tokens, revoked ones included)",
                             DRV_HSTORE_TOKENS_MAX);
    st = stmt(s, ST_TOKEN_ADD, err);
    if (!st)
        return err ? err->code : DRV_ERR_IO;
    sqlite3_bind_text(st, 1, t->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, t->kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, t->role, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 4, t->hash, (int)sizeof(t->hash), SQLITE_STATIC);
    sqlite3_bind_text(st, 5, t->description, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, t->created);
    sqlite3_bind_int64(st, 7, t->expires);
    sqlite3_bind_int(st, 8, t->revoked ? 1 : 0);
    sqlite3_bind_int64(st, 9, t->uses_left);
    sqlite3_bind_text(st, 10, *t->labels ? t->labels : "{}", -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        r = DRV_OK;
    else if ((rc & 0xff) == SQLITE_CONSTRAINT)
        r = drv_error_set(err, DRV_ERR_EXISTS, 0, "token %s exists already", t->id);
    else
        r = db_error(s, err, "add token");
    sqlite3_reset(st);
    return r;
}

/* A text column into a fixed field; a value too long for it (a damaged database) reads as "",
 * never cut: an empty kind, role or key matches nothing. */
static void col_copy(sqlite3_stmt *st, int i, char *out, size_t outsz)
{
    const unsigned char *v = sqlite3_column_text(st, i);
    if (drv_fmt(out, outsz, "%s", v ? (const char *)v : "") != DRV_OK) {
        out[0] = '\0';
        drv_log_warn("hub store: a column value is too long: read as empty", "column=%d", i);
    }
}

static void token_row(sqlite3_stmt *st, drv_hstore_token_t *t)
{
    memset(t, 0, sizeof(*t));
    col_copy(st, 0, t->id, sizeof(t->id));
    col_copy(st, 1, t->kind, sizeof(t->kind));
    col_copy(st, 2, t->role, sizeof(t->role));
    const void *h = sqlite3_column_blob(st, 3);
    if (h && sqlite3_column_bytes(st, 3) == (int)sizeof(t->hash))
        memcpy(t->hash, h, sizeof(t->hash)); /* otherwise all zero: matches no secret */
    col_copy(st, 4, t->description, sizeof(t->description));
    t->created = sqlite3_column_int64(st, 5);
    t->expires = sqlite3_column_int64(st, 6);
    t->revoked = sqlite3_column_int(st, 7) != 0;
    t->uses_left = sqlite3_column_int64(st, 8);
    col_copy(st, 9, t->labels, sizeof(t->labels));
}

drv_err_t drv_hstore_token_get(drv_hstore_t *s, const char *id, drv_hstore_token_t *out,
                               drv_error_t *err)
{
    sqlite3_stmt *st = stmt(s, ST_TOKEN_GET, err);
    if (!st)
        return err ? err->code : DRV_ERR_IO;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    drv_err_t r = DRV_OK;
    if (rc == SQLITE_ROW)
        token_row(st, out);
    else if (rc == SQLITE_DONE)
        r = drv_error_set(err, DRV_ERR_NOTFOUND, 0, "token \"%.32s\" not found", id);
    else
        r = db_error(s, err, "read token");
    sqlite3_reset(st);
    return r;
}

drv_err_t drv_hstore_token_list(drv_hstore_t *s, drv_hstore_token_t **out, size_t *n,
                                drv_error_t *err)
{
    sqlite3_stmt *st = stmt(s, ST_TOKEN_LIST, err);
    if (!st)
        return err ? err->code : DRV_ERR_IO;
    _cleanup_vec_ drv_vec_t v = DRV_VEC_INIT(drv_hstore_token_t, DRV_HSTORE_TOKENS_MAX);
    drv_err_t r = DRV_OK;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && v.len < v.max) {
        if (drv_vec_push(&v, NULL) != DRV_OK) {
            r = drv_error_set(err, DRV_ERR_NOMEM, 0, "list tokens");
            break;
        }
        token_row(st, drv_vec_last(&v));
    }
    if (r == DRV_OK && rc != SQLITE_ROW && rc != SQLITE_DONE)
        r = db_error(s, err, "list tokens");
    sqlite3_reset(st);
    if (r != DRV_OK)
        return r;
    *out = drv_vec_steal(&v, n);
    return DRV_OK;
}

/* Runs an UPDATE keyed by token id; DRV_ERR_NOTFOUND when no row changed. */
static drv_err_t token_update(drv_hstore_t *s, enum stmt_id id_st, const char *id, const char *what,
                              drv_error_t *err)
{
    sqlite3_stmt *st = stmt(s, id_st, err);
    if (!st)
        return err ? err->code : DRV_ERR_IO;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    drv_err_t r = step_done(s, st, what, err);
    if (r == DRV_OK && sqlite3_changes(s->db) == 0)
        r = DRV_ERR_NOTFOUND;
    return r;
}

drv_err_t drv_hstore_token_revoke(drv_hstore_t *s, const char *id, drv_error_t *err)
{
    drv_err_t r = token_update(s, ST_TOKEN_REVOKE, id, "revoke token", err);
    if (r == DRV_ERR_NOTFOUND)
        return drv_error_set(err, r, 0, "token \"%.32s\" not found", id);
    return r;
}

drv_err_t drv_hstore_token_use(drv_hstore_t *s, const char *id, drv_error_t *err)
{
    drv_err_t r = token_update(s, ST_TOKEN_USE, id, "use token", err);
    if (r == DRV_ERR_NOTFOUND)
        return drv_error_set(err, DRV_ERR_PERM, 0, "token \"%.32s\": no uses left", id);
    return r;
}

drv_err_t drv_hstore_token_purge(drv_hstore_t *s, int64_t now, size_t *purged, drv_error_t *err)
{
    sqlite3_stmt *st = stmt(s, ST_TOKEN_PURGE, err);
    if (!st)
        return err ? err->code : DRV_ERR_IO;
    sqlite3_bind_int64(st, 1, now);
    drv_err_t r = step_done(s, st, "purge tokens", err);
    if (r == DRV_OK && purged)
        *purged = (size_t)sqlite3_changes(s->db);
    return r;
}

/* ---- node identities ---- */

static drv_err_t identity_check(const drv_hstore_identity_t *id, drv_error_t *err)
{
    if (!token_text_ok(id->node, sizeof(id->node)) || !*id->node)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "identity: node: required");
    if (!token_text_ok(id->pubkey, sizeof(id->pubkey)) || !*id->pubkey)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "identity %s: pubkey: required", id->node);
    if (!token_text_ok(id->serial, sizeof(id->serial)) || !*id->serial)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "identity %s: serial: required", id->node);
    return DRV_OK;
}

drv_err_t drv_hstore_identity_put(drv_hstore_t *s, const drv_hstore_identity_t *id,
                                  drv_error_t *err)
{
    drv_err_t r = identity_check(id, err);
    if (r != DRV_OK)
        return r;
    sqlite3_stmt *st = stmt(s, ST_ID_COUNT, err);
    if (!st)
        return err ? err->code : DRV_ERR_IO;
    sqlite3_bind_text(st, 1, id->node, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int64_t count = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    bool exists = rc == SQLITE_ROW && sqlite3_column_int64(st, 1) > 0;
    r = rc == SQLITE_ROW ? DRV_OK : db_error(s, err, "count identities");
    sqlite3_reset(st);
    if (r != DRV_OK)
        return r;
    if (!exists && count >= DRV_HSTORE_IDENTITIES_MAX)
        return drv_error_set(err, DRV_ERR_RANGE, 0,
                             "identity table full (%d nodes, revoked ones included)",
                             DRV_HSTORE_IDENTITIES_MAX);
    st = stmt(s, ST_ID_PUT, err);
    if (!st)
        return err ? err->code : DRV_ERR_IO;
    sqlite3_bind_text(st, 1, id->node, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, id->pubkey, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, id->serial, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, id->not_after);
    sqlite3_bind_int64(st, 5, id->created);
    sqlite3_bind_int(st, 6, id->revoked ? 1 : 0);
    return step_done(s, st, "store identity", err);
}

static void identity_row(sqlite3_stmt *st, drv_hstore_identity_t *id)
{
    memset(id, 0, sizeof(*id));
    col_copy(st, 0, id->node, sizeof(id->node));
    col_copy(st, 1, id->pubkey, sizeof(id->pubkey));
    col_copy(st, 2, id->serial, sizeof(id->serial));
    id->not_after = sqlite3_column_int64(st, 3);
    id->created = sqlite3_column_int64(st, 4);
    id->revoked = sqlite3_column_int(st, 5) != 0;
}

drv_err_t drv_hstore_identity_get(drv_hstore_t *s, const char *node, drv_hstore_identity_t *out,
                                  drv_error_t *err)
{
    sqlite3_stmt *st = stmt(s, ST_ID_GET, err);
    if (!st)
        return err ? err->code : DRV_ERR_IO;
    sqlite3_bind_text(st, 1, node, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    drv_err_t r = DRV_OK;
    if (rc == SQLITE_ROW)
        identity_row(st, out);
    else if (rc == SQLITE_DONE)
        r = drv_error_set(err, DRV_ERR_NOTFOUND, 0, "node \"%.64s\" is not enrolled", node);
    else
        r = db_error(s, err, "read identity");
    sqlite3_reset(st);
    return r;
}

drv_err_t drv_hstore_identity_list(drv_hstore_t *s, drv_hstore_identity_t **out, size_t *n,
                                   drv_error_t *err)
{
    sqlite3_stmt *st = stmt(s, ST_ID_LIST, err);
    if (!st)
        return err ? err->code : DRV_ERR_IO;
    _cleanup_vec_ drv_vec_t v = DRV_VEC_INIT(drv_hstore_identity_t, DRV_HSTORE_IDENTITIES_MAX);
    drv_err_t r = DRV_OK;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && v.len < v.max) {
        if (drv_vec_push(&v, NULL) != DRV_OK) {
            r = drv_error_set(err, DRV_ERR_NOMEM, 0, "list identities");
            break;
        }
        identity_row(st, drv_vec_last(&v));
    }
    if (r == DRV_OK && rc != SQLITE_ROW && rc != SQLITE_DONE)
        r = db_error(s, err, "list identities");
    sqlite3_reset(st);
    if (r != DRV_OK)
        return r;
    *out = drv_vec_steal(&v, n);
    return DRV_OK;
}

drv_err_t drv_hstore_identity_revoke(drv_hstore_t *s, const char *node, drv_error_t *err)
{
    drv_err_t r = token_update(s, ST_ID_REVOKE, node, "revoke identity", err);
    if (r == DRV_ERR_NOTFOUND)
        return drv_error_set(err, r, 0, "node \"%.64s\" is not enrolled", node);
    return r;
}

drv_err_t drv_hstore_identity_delete(drv_hstore_t *s, const char *node, drv_error_t *err)
{
    drv_err_t r = token_update(s, ST_ID_DELETE, node, "delete identity", err);
    if (r == DRV_ERR_NOTFOUND)
        return drv_error_set(err, r, 0, "node \"%.64s\" is not enrolled", node);
    return r;
}

void drv_hstore_set_dry_run(drv_hstore_t *s, bool on)
{
    s->dry = on;
}
