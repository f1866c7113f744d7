/* Serving container logs to the hub (see link_int.h): the log as it is (rotated files oldest
 * first, then the current one, honouring tailBytes), then for a follow the bytes written since,
 * looked for twice a second, across copytruncate rotations (the rest of the old file is read
 * from its copy, <log>.1). A bounded number of chunks leaves per call, so that a large log
 * never holds the event loop or piles up in the MQTT client. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "drover/cleanup.h"
#include "drover/fmt.h"
#include "drover/log.h"
#include "link/link.h"
#include "link/link_int.h"

#define CHECK_MS 500
#define RETRY_MS 100
#define CHUNKS_PER_PUMP 4

typedef struct sess {
    char id[DRV_PROTO_ID_MAX + 1];
    char uid[64];
    char path[700]; /* the current log file; rotated ones are path.N */
    bool follow;
    bool waiting; /* follow: at the end of the current file, looking again at next_at */
    int file;     /* file being read: N..1 rotated, 0 the current one */
    uint64_t off; /* offset in it */
    uint64_t seq;
    long long started, next_at;
} sess_t;

struct drv_link_logs {
    const drv_agent_config_t *cfg;
    drv_link_send_fn send;
    void *userdata;
    sess_t *s[DRV_LINK_MAX_SESSIONS];
};

drv_link_logs_t *drv_link_logs_new(const drv_agent_config_t *cfg, drv_link_send_fn send,
                                   void *userdata)
{
    drv_link_logs_t *lg = calloc(1, sizeof(*lg));
    if (lg) {
        lg->cfg = cfg;
        lg->send = send;
        lg->userdata = userdata;
    }
    return lg;
}

/* File N of the log (0: the current one), or "" (no file) should it not fit: the buffers of
 * the callers hold path and any ".N". */
static void file_path(const sess_t *s, int file, char *out, size_t outsz)
{
    drv_err_t r = file == 0 ? drv_fmt(out, outsz, "%s", s->path)
                            : drv_fmt(out, outsz, "%s.%d", s->path, file);
    if (r != DRV_OK)
        out[0] = '\0';
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* Sends a final chunk: eof, with an error message or none. DRV_ERR_AGAIN: not sent. */
static drv_err_t send_final(drv_link_logs_t *lg, sess_t *s, const char *error)
{
    drv_error_t err = DRV_ERROR_INIT;
    cJSON *c = error ? drv_proto_logs_error_build(s->id, s->seq, error, &err)
                     : drv_proto_logs_chunk_build(s->id, s->seq, NULL, 0, true, &err);
    if (!c)
        return err.code;
    drv_err_t r = lg->send(lg->userdata, s->id, c);
    cJSON_Delete(c);
    if (r == DRV_OK)
        s->seq++;
    return r;
}

static void send_error_for(drv_link_logs_t *lg, const char *id, const char *msg)
{
    sess_t tmp = {0};
    if (drv_fmt(tmp.id, sizeof(tmp.id), "%s", id) != DRV_OK) {
        drv_log_warn("logs request refused, unanswered: id too long", "error=\"%s\"", msg);
        return;
    }
    (void)send_final(lg, &tmp, msg);
}

static void end_session(drv_link_logs_t *lg, size_t i)
{
    free(lg->s[i]);
    lg->s[i] = NULL;
}

unsigned drv_link_logs_count(const drv_link_logs_t *lg, unsigned *follows)
{
    unsigned n = 0, f = 0;
    for (size_t i = 0; lg && i < DRV_LINK_MAX_SESSIONS; i++)
        if (lg->s[i]) {
            n++;
            f += lg->s[i]->follow;
        }
    if (follows)
        *follows = f;
    return n;
}

void drv_link_logs_request(drv_link_logs_t *lg, const cJSON *sv_status,
                           const drv_proto_logs_req_t *req, long long now)
{
    if (!lg)
        return;
    size_t free_slot = DRV_LINK_MAX_SESSIONS;
    for (size_t i = 0; i < DRV_LINK_MAX_SESSIONS; i++) {
        if (lg->s[i] && !strcmp(lg->s[i]->id, req->id)) {
            if (req->cancel) {
                drv_log_debug("logs follow cancelled", "id=%s", req->id);
                if (send_final(lg, lg->s[i], NULL) == DRV_OK)
                    end_session(lg, i);
                else
                    lg->s[i]->follow = false; /* ends at its next turn */
            }
            return; /* a redelivered request is being served already */
        }
        if (!lg->s[i] && free_slot == DRV_LINK_MAX_SESSIONS)
            free_slot = i;
    }
    if (req->cancel) {
        drv_log_debug("cancel for a logs request that is not open", "id=%s", req->id);
        return;
    }
    char uid[64], ctr[64];
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_link_logs_target(sv_status, req, uid, sizeof(uid), ctr, sizeof(ctr), &err) != DRV_OK) {
        send_error_for(lg, req->id, drv_error_msg(&err));
        return;
    }
    unsigned follows = 0;
    drv_link_logs_count(lg, &follows);
    if (free_slot == DRV_LINK_MAX_SESSIONS) {
        send_error_for(lg, req->id, "too many logs requests at once; try again");
        return;
    }
    if (req->follow && follows >= DRV_LINK_MAX_FOLLOWS) {
        char msg[128];
        drv_fmt_cut(msg, sizeof(msg), "too many logs followed at once (at most %d)",
                    DRV_LINK_MAX_FOLLOWS);
        send_error_for(lg, req->id, msg);
        return;
    }
    sess_t *s = calloc(1, sizeof(*s));
    if (!s) {
        send_error_for(lg, req->id, "out of memory");
        return;
    }
    if (drv_fmt(s->id, sizeof(s->id), "%s", req->id) != DRV_OK ||
        drv_fmt(s->uid, sizeof(s->uid), "%s", uid) != DRV_OK ||
        drv_fmt(s->path, sizeof(s->path), "%s/pods/%s/logs/%s.log", lg->cfg->state_dir, uid, ctr) !=
            DRV_OK) {
        free(s);
        send_error_for(lg, req->id, "log path too long");
        return;
    }
    s->follow = req->follow;
    s->started = now;
    s->next_at = now;
    /* Where the tail starts: the files oldest first, as one log. */
    unsigned nfiles = lg->cfg->log_max_files;
    uint64_t total = 0;
    char p[720];
    for (int f = (int)nfiles; f >= 0; f--) {
        file_path(s, f, p, sizeof(p));
        total += file_size(p);
    }
    uint64_t skip = req->tail_bytes && req->tail_bytes < total ? total - req->tail_bytes : 0;
    s->file = 0;
    s->off = 0;
    for (int f = (int)nfiles; f >= 0; f--) {
        file_path(s, f, p, sizeof(p));
        uint64_t sz = file_size(p);
        if (skip < sz || f == 0) {
            s->file = f;
            s->off = skip < sz ? skip : sz;
            break;
        }
        skip -= sz;
    }
    lg->s[free_slot] = s;
    drv_log_debug("logs request", "id=%s pod=%s/%s container=%s follow=%d tail=%llu", req->id,
                  req->namespace_, req->pod, ctr, req->follow, (unsigned long long)req->tail_bytes);
}

static bool pod_exists(const cJSON *sv_status, const char *uid)
{
    const cJSON *p;
    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(sv_status, "pods"))
    {
        const cJSON *u = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(p, "metadata"), "uid");
        if (cJSON_IsString(u) && !strcmp(u->valuestring, uid))
            return true;
    }
    return false;
}

/* Reads up to max bytes of file at off. Returns bytes read, 0 at its end or when it is gone. */
static size_t read_at(const char *path, uint64_t off, unsigned char *buf, size_t max)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return 0;
    size_t got = 0;
    while (got < max) {
        ssize_t n = pread(fd, buf + got, max - got, (off_t)(off + got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    return got;
}

/* One session's turn: false when it is over (removed by the caller). */
static bool pump_one(drv_link_logs_t *lg, sess_t *s, const cJSON *sv_status, unsigned char *buf,
                     long long now)
{
    if (now < s->next_at)
        return true;
    if (s->waiting) {
        if (now - s->started >= DRV_LINK_FOLLOW_MAX_MS || !pod_exists(sv_status, s->uid)) {
            s->follow = false;
        } else {
            /* copytruncate: the current file is shorter than what was sent; the rest of it is
             * in the copy (<log>.1). */
            uint64_t sz = file_size(s->path);
            if (sz < s->off) {
                if (lg->cfg->log_max_files > 0) {
                    s->file = 1;
                } else {
                    s->off = 0;
                }
            }
        }
        s->waiting = false;
    }
    for (unsigned sent = 0; sent < CHUNKS_PER_PUMP;) {
        char p[720];
        file_path(s, s->file, p, sizeof(p));
        size_t got = read_at(p, s->off, buf, DRV_PROTO_LOGS_CHUNK_MAX);
        if (got == 0) {
            if (s->file > 0) { /* on to the next newer file */
                s->file--;
                s->off = 0;
                continue;
            }
            if (s->follow) {
                s->waiting = true;
                s->next_at = now + CHECK_MS;
                return true;
            }
            if (send_final(lg, s, NULL) == DRV_ERR_AGAIN) {
                s->next_at = now + RETRY_MS;
                return true;
            }
            return false;
        }
        drv_error_t err = DRV_ERROR_INIT;
        cJSON *c = drv_proto_logs_chunk_build(s->id, s->seq, buf, got, false, &err);
        if (!c)
            return false;
        drv_err_t r = lg->send(lg->userdata, s->id, c);
        cJSON_Delete(c);
        if (r == DRV_ERR_AGAIN) {
            s->next_at = now + RETRY_MS;
            return true;
        }
        if (r != DRV_OK)
            return false;
        s->seq++;
        s->off += got;
        sent++;
    }
    s->next_at = now; /* more to send: next turn */
    return true;
}

void drv_link_logs_pump(drv_link_logs_t *lg, const cJSON *sv_status, long long now)
{
    if (!lg)
        return;
    unsigned char *buf = NULL;
    for (size_t i = 0; i < DRV_LINK_MAX_SESSIONS; i++) {
        sess_t *s = lg->s[i];
        if (!s || now < s->next_at)
            continue;
        if (!buf && !(buf = malloc(DRV_PROTO_LOGS_CHUNK_MAX)))
            return;
        if (!pump_one(lg, s, sv_status, buf, now))
            end_session(lg, i);
    }
    free(buf);
}

int drv_link_logs_next_wakeup(const drv_link_logs_t *lg, long long now)
{
    long long t = 1000;
    for (size_t i = 0; lg && i < DRV_LINK_MAX_SESSIONS; i++)
        if (lg->s[i] && lg->s[i]->next_at - now < t)
            t = lg->s[i]->next_at - now;
    return t < 0 ? 0 : (int)t;
}

void drv_link_logs_free(drv_link_logs_t *lg, const char *why)
{
    if (!lg)
        return;
    for (size_t i = 0; i < DRV_LINK_MAX_SESSIONS; i++) {
        if (lg->s[i] && why)
            (void)send_final(lg, lg->s[i], why);
        end_session(lg, i);
    }
    free(lg);
}
