/* Driving the crun program (see crun.h). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "drover/buf.h"
#include "drover/cleanup.h"
#include "drover/file.h"
#include "drover/fmt.h"
#include "drover/json.h"
#include "proc/proc.h"
#include "runtime/crun.h"

#define CRUN_TIMEOUT_MS 30000
#define CRUN_OUTPUT_MAX 16384

static char cgroup_opt[] = "--cgroup-manager=disabled";
static char root_opt[] = "--root";

size_t drv_crun_argv_prefix(const drv_crun_t *c, char **argv)
{
    size_t n = 0;
    argv[n++] = (char *)c->path;
    argv[n++] = root_opt;
    argv[n++] = (char *)c->root;
    if (!c->cgroups)
        argv[n++] = cgroup_opt;
    return n;
}

/* The last line of crun's log, for error messages; crun writes one JSON-ish line per error. */
static void last_log_line(const char *bundle, char *out, size_t outsz)
{
    char path[512];
    out[0] = '\0';
    if (drv_fmt(path, sizeof(path), "%s/crun.log", bundle) != DRV_OK)
        return;
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    if (drv_file_read_capped(path, 1 << 20, &text, &len, NULL) != DRV_OK)
        return;
    while (len && (text[len - 1] == '\n' || text[len - 1] == ' '))
        text[--len] = '\0';
    const char *line = strrchr(text, '\n');
    line = line ? line + 1 : text;
    /* crun --log-format=json writes {"msg":"...","level":"error","time":"..."}. */
    cJSON *j = cJSON_Parse(line);
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(j, "msg");
    drv_fmt_cut(out, outsz, "%s", cJSON_IsString(msg) ? msg->valuestring : line);
    cJSON_Delete(j);
}

static drv_err_t simple(const drv_crun_t *c, char **args, size_t nargs, const char *what,
                        const char *id, drv_buf_t *out, int *status, drv_error_t *err)
{
    char *argv[16];
    size_t n = drv_crun_argv_prefix(c, argv);
    for (size_t i = 0; i < nargs && n < 15; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    int st = 0;
    drv_err_t r = drv_proc_run(argv, -1, out, CRUN_TIMEOUT_MS, &st, err);
    if (r != DRV_OK)
        return drv_error_wrap(err, "crun %s %s", what, id);
    if (status)
        *status = st;
    return DRV_OK;
}

drv_err_t drv_crun_run(const drv_crun_t *c, const char *id, const char *bundle, int log_fd,
                       pid_t *pid, drv_error_t *err)
{
    char logopt[600], pidfile[512];
    if (drv_fmt(logopt, sizeof(logopt), "--log=file:%s/crun.log", bundle) != DRV_OK ||
        drv_fmt(pidfile, sizeof(pidfile), "%s/pid", bundle) != DRV_OK)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "crun run %s: bundle path too long", id);
    unlink(pidfile);
    char *argv[20];
    size_t n = drv_crun_argv_prefix(c, argv);
    argv[n++] = logopt;
    argv[n++] = "--log-format=json";
    argv[n++] = "run";
    argv[n++] = "--detach";
    argv[n++] = "--bundle";
    argv[n++] = (char *)bundle;
    argv[n++] = "--pid-file";
    argv[n++] = pidfile;
    argv[n++] = (char *)id;
    argv[n] = NULL;
    pid_t crun_pid;
    drv_err_t r = drv_proc_spawn(argv, -1, log_fd, log_fd, &crun_pid, err);
    if (r != DRV_OK)
        return drv_error_wrap(err, "crun run %s", id);
    /* crun returns once the container runs; its init is then our child (subreaper). */
    int st = 0;
    long long deadline = drv_now_ms() + CRUN_TIMEOUT_MS;
    for (;;) {
        pid_t w = waitpid(crun_pid, &st, WNOHANG);
        if (w == crun_pid)
            break;
        if (w < 0 && errno != EINTR)
            return drv_error_set(err, DRV_ERR_IO, errno, "crun run %s: wait", id);
        if (drv_now_ms() > deadline) {
            kill(crun_pid, SIGKILL);
            waitpid(crun_pid, &st, 0);
            return drv_error_set(err, DRV_ERR_TIMEOUT, 0, "crun run %s: no answer within %d s", id,
                                 CRUN_TIMEOUT_MS / 1000);
        }
        usleep(2000);
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        char why[512], how[64];
        last_log_line(bundle, why, sizeof(why));
        drv_proc_describe(st, how, sizeof(how));
        return drv_error_set(err, DRV_ERR_IO, 0, "crun run %s: %s%s%s", id, how, why[0] ? ": " : "",
                             why);
    }
    _cleanup_free_ char *text = NULL;
    if (drv_file_read_capped(pidfile, 64, &text, NULL, err) != DRV_OK)
        return drv_error_wrap(err, "crun run %s: pid file", id);
    char *end = NULL;
    long v = strtol(text, &end, 10);
    if (v <= 1 || end == text)
        return drv_error_set(err, DRV_ERR_PROTO, 0, "crun run %s: bad pid file \"%.16s\"", id,
                             text);
    *pid = (pid_t)v;
    return DRV_OK;
}

drv_err_t drv_crun_kill(const drv_crun_t *c, const char *id, int sig, bool all, drv_error_t *err)
{
    char signum[16];
    if (drv_fmt(signum, sizeof(signum), "%d", sig) != DRV_OK)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "crun kill %s: signal %d", id, sig);
    char *args[4];
    size_t n = 0;
    args[n++] = "kill";
    if (all)
        args[n++] = "--all";
    args[n++] = (char *)id;
    args[n++] = signum;
    drv_buf_t out = DRV_BUF_INIT(CRUN_OUTPUT_MAX);
    int st = 0;
    drv_err_t r = simple(c, args, n, "kill", id, &out, &st, err);
    if (r == DRV_OK && (!WIFEXITED(st) || WEXITSTATUS(st) != 0))
        r = drv_error_set(err, DRV_ERR_IO, 0, "crun kill %s: %s", id, drv_buf_str(&out));
    drv_buf_free(&out);
    return r;
}

drv_err_t drv_crun_delete(const drv_crun_t *c, const char *id, bool force, drv_error_t *err)
{
    char *args[3];
    size_t n = 0;
    args[n++] = "delete";
    if (force)
        args[n++] = "--force";
    args[n++] = (char *)id;
    drv_buf_t out = DRV_BUF_INIT(CRUN_OUTPUT_MAX);
    int st = 0;
    drv_err_t r = simple(c, args, n, "delete", id, &out, &st, err);
    if (r == DRV_OK && (!WIFEXITED(st) || WEXITSTATUS(st) != 0) &&
        !strstr(drv_buf_str(&out), "does not exist"))
        r = drv_error_set(err, DRV_ERR_IO, 0, "crun delete %s: %s", id, drv_buf_str(&out));
    drv_buf_free(&out);
    return r;
}

drv_err_t drv_crun_state(const drv_crun_t *c, const char *id, char *status, size_t statussz,
                         pid_t *pid, drv_error_t *err)
{
    char *args[2] = {"state", (char *)id};
    drv_buf_t out = DRV_BUF_INIT(CRUN_OUTPUT_MAX);
    int st = 0;
    drv_err_t r = simple(c, args, 2, "state", id, &out, &st, err);
    if (r != DRV_OK) {
        drv_buf_free(&out);
        return r;
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        drv_buf_free(&out);
        return drv_error_set(err, DRV_ERR_NOTFOUND, 0, "crun state %s: unknown container", id);
    }
    cJSON *j = cJSON_Parse(drv_buf_str(&out));
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "status");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "pid");
    if (!cJSON_IsString(s) || drv_fmt(status, statussz, "%s", s->valuestring) != DRV_OK) {
        cJSON_Delete(j);
        drv_buf_free(&out);
        return drv_error_set(err, DRV_ERR_PROTO, 0, "crun state %s: unexpected output", id);
    }
    int64_t v = 0;
    if (pid)
        *pid =
            cJSON_IsNumber(p) && drv_json_to_int(p->valuedouble, 0, INT32_MAX, &v) ? (pid_t)v : 0;
    cJSON_Delete(j);
    drv_buf_free(&out);
    return DRV_OK;
}
