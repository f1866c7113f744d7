/* drover logs: a container's output, fetched through the hub (which asks the pod's agent) and
 * written to stdout as it arrives; with -f it keeps streaming until the hub ends it or Ctrl-C. */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "drover/fmt.h"

#define PATH_MAX_LEN 2048
#define URL_MAX_LEN 4096
/* An error answer is a small JSON Status; anything longer is cut. */
#define ERROR_BODY_MAX (64u * 1024)
#define TAIL_MAX 10000000L

typedef struct logs_out {
    CURL *curl;
    bool decided; /* the status line has been looked at */
    bool ok;      /* 2xx: body goes to stdout */
    bool write_failed;
    int write_errno;
    drv_buf_t err; /* error answer body, bounded */
} logs_out_t;

static size_t on_data(char *data, size_t size, size_t n, void *ctx)
{
    logs_out_t *o = ctx;
    size_t total = size * n;
    if (!o->decided) {
        long st = 0;
        curl_easy_getinfo(o->curl, CURLINFO_RESPONSE_CODE, &st);
        o->ok = st / 100 == 2;
        o->decided = true;
    }
    if (!o->ok) {
        /* Keep what fits of an error answer; the rest is dropped, not an abort. */
        size_t room = ERROR_BODY_MAX - o->err.len;
        if (room && drv_buf_append(&o->err, data, total < room ? total : room) != DRV_OK)
            return 0; /* out of memory */
        return total;
    }
    if (total && (fwrite(data, 1, total, stdout) != total || fflush(stdout) != 0)) {
        o->write_failed = true;
        o->write_errno = errno;
        return 0;
    }
    return total;
}

/* An error answer as "drover: message" (plus one "  field: message" line per cause). */
static void print_error(long status, const drv_buf_t *body)
{
    cJSON *j = body->len ? cJSON_ParseWithLength(body->data, body->len) : NULL;
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(j, "message");
    if (cJSON_IsString(msg) && *msg->valuestring) {
        fprintf(stderr, "drover: %s\n", msg->valuestring);
    } else {
        /* Not a Status object: show the start of what came, on one line. */
        char shown[201] = "";
        size_t k = 0;
        for (size_t i = 0; i < body->len && k < sizeof(shown) - 1; i++)
            shown[k++] = body->data[i] == '\n' || body->data[i] == '\r' ? ' ' : body->data[i];
        shown[k] = '\0';
        fprintf(stderr, "drover: the hub answered HTTP %ld%s%s\n", status, k ? ": " : "", shown);
    }
    drv_cli_print_causes(j, "(request)");
    cJSON_Delete(j);
}

static int logs_usage(void)
{
    fprintf(stderr, "usage: drover logs POD [-n NS] [-c CONTAINER] [-f] [--tail N] [--hub URL]\n");
    return 2;
}

/* Builds the log path; false (after saying why) if a part does not fit. */
static bool logs_path(const char *ns, const char *pod, const char *container, long tail,
                      bool follow, char *out, size_t outsz)
{
    char ens[256], epod[512], ec[512] = "";
    if (!drv_cli_escape(ns, ens, sizeof(ens))) {
        fprintf(stderr, "drover logs: namespace: too long\n");
        return false;
    }
    if (!drv_cli_escape(pod, epod, sizeof(epod))) {
        fprintf(stderr, "drover logs: pod name: too long\n");
        return false;
    }
    if (container && !drv_cli_escape(container, ec, sizeof(ec))) {
        fprintf(stderr, "drover logs: container: too long\n");
        return false;
    }
    char tailq[40] = "";
    if (tail >= 0 && drv_fmt(tailq, sizeof(tailq), "&tailLines=%ld", tail) != DRV_OK) {
        fprintf(stderr, "drover logs: --tail: too long\n");
        return false;
    }
    int n = snprintf(out, outsz, "/api/v1/namespaces/%s/pods/%s/log?container=%s%s%s", ens, epod,
                     ec, tailq, follow ? "&follow=true" : "");
    if (n < 0 || (size_t)n >= outsz) {
        fprintf(stderr, "drover logs: request path too long\n");
        return false;
    }
    return true;
}

int drv_cli_logs(int argc, char **argv)
{
    const char *ns = "default", *container = NULL, *tail_s = NULL;
    bool follow = false;
    static const struct option opts[] = {{"namespace", required_argument, NULL, 'n'},
                                         {"container", required_argument, NULL, 'c'},
                                         {"follow", no_argument, NULL, 'f'},
                                         {"tail", required_argument, NULL, 't'},
                                         {"hub", required_argument, NULL, 'H'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "n:c:fh", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            ns = optarg;
            break;
        case 'c':
            container = optarg;
            break;
        case 'f':
            follow = true;
            break;
        case 't':
            tail_s = optarg;
            break;
        case 'H':
            drv_cli_hub_set(optarg);
            break;
        default:
            return logs_usage();
        }
    }
    if (argc - optind != 1)
        return logs_usage();
    const char *pod = argv[optind];
    /* kubectl accepts "pod/NAME" too. */
    if (!strncmp(pod, "pod/", 4))
        pod += 4;
    else if (!strncmp(pod, "pods/", 5))
        pod += 5;
    if (!*pod) {
        fprintf(stderr, "drover logs: pod name: required\n");
        return 2;
    }
    if (!*ns) {
        fprintf(stderr, "drover logs: --namespace: must not be empty\n");
        return 2;
    }
    if (container && !*container) {
        fprintf(stderr, "drover logs: --container: must not be empty\n");
        return 2;
    }
    long tail = -1; /* kubectl's default: the whole log */
    if (tail_s) {
        char *end;
        errno = 0;
        tail = strtol(tail_s, &end, 10);
        if (errno || end == tail_s || *end || tail < -1 || tail > TAIL_MAX) {
            fprintf(stderr,
                    "drover logs: --tail: must be a whole number from 0 to %ld (-1 for the whole "
                    "log), not '%s'\n",
                    TAIL_MAX, tail_s);
            return 2;
        }
    }
    char path[PATH_MAX_LEN];
    if (!logs_path(ns, pod, container, tail, follow, path, sizeof(path)))
        return 2;
    const char *base = drv_cli_hub_url();
    char url[URL_MAX_LEN];
    int n = snprintf(url, sizeof(url), "%s%s", base, path);
    if (n < 0 || (size_t)n >= sizeof(url)) {
        fprintf(stderr, "drover: request URL too long\n");
        return 2;
    }
    /* A closed stdout shows as EPIPE from fwrite (ended quietly below), not a SIGPIPE death. */
    signal(SIGPIPE, SIG_IGN);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "drover: cannot initialise libcurl\n");
        return 1;
    }
    CURL *h = curl_easy_init();
    if (!h) {
        fprintf(stderr, "drover: out of memory\n");
        curl_global_cleanup();
        return 1;
    }
    logs_out_t o = {.curl = h, .err = DRV_BUF_INIT(ERROR_BODY_MAX + 1)};
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdrs = curl_slist_append(NULL, "Accept: text/plain, application/json");
    hdrs = drv_cli_auth_header(hdrs);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "drover-cli");
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &o);
    drv_cli_tls_setup(h);
    /* No overall deadline: a log may be long, a followed one endless. A followed log may
     * also be quiet for hours, so only TCP keep-alive watches that stream; without -f the
     * hub answers within its own agent deadline, a minute of silence means it is gone. */
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    if (!follow) {
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
    }
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    long oserr = 0;
    curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &oserr);
    int ret = 0;
    if (o.write_failed) {
        /* A reader that went away (drover logs -f | head) is not an error worth a word. */
        if (o.write_errno != EPIPE) {
            fprintf(stderr, "drover logs: writing the log to stdout: %s\n",
                    strerror(o.write_errno));
            ret = 1;
        }
    } else if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
               (rc == CURLE_OPERATION_TIMEDOUT && !status)) {
        fprintf(stderr, "drover: cannot reach the hub at %s: %s\n", base,
                rc == CURLE_COULDNT_CONNECT && oserr ? strerror((int)oserr)
                : *errbuf                            ? errbuf
                                                     : curl_easy_strerror(rc));
        ret = 1;
    } else if (!status && rc != CURLE_OK && drv_cli_tls_error(rc, errbuf)) {
        ret = 1;
    } else if (status && status / 100 != 2) {
        print_error(status, &o.err);
        ret = 1;
    } else if (rc != CURLE_OK) {
        /* The answer started well and broke off (hub stopped, connection lost). */
        fprintf(stderr, "drover: log stream from the hub at %s ended early: %s\n", base,
                *errbuf ? errbuf : curl_easy_strerror(rc));
        ret = 1;
    }
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    curl_global_cleanup();
    drv_buf_free(&o.err);
    return ret;
}
