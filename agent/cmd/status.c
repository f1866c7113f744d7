/* drover-agent status and logs: what the running agent observes, read from its files. */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cmd/cmd.h"
#include "drover/cleanup.h"
#include "drover/file.h"
#include "drover/fmt.h"

#define STATUS_MAX (16u * 1024 * 1024)

static int parse_config_opt(int argc, char **argv, const char *usage, const char **config)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+c:", opts, NULL)) != -1) {
        if (c != 'c') {
            fprintf(stderr, "usage: %s\n", usage);
            return 2;
        }
        *config = optarg;
    }
    return 0;
}

static cJSON *read_status(const drv_agent_config_t *cfg)
{
    char path[512];
    if (drv_fmt(path, sizeof(path), "%s/status.json", cfg->run_dir) != DRV_OK) {
        fprintf(stderr, "drover-agent: run directory path too long: %s\n", cfg->run_dir);
        return NULL;
    }
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_file_read_capped(path, STATUS_MAX, &text, &len, &err) != DRV_OK) {
        fprintf(stderr, "drover-agent: no status (is the agent running?): %s\n",
                drv_error_msg(&err));
        return NULL;
    }
    cJSON *st = cJSON_ParseWithLength(text, len);
    if (!st)
        fprintf(stderr, "drover-agent: %s: not valid JSON\n", path);
    return st;
}

int drv_agent_cmd_status(int argc, char **argv)
{
    const char *config = NULL;
    int rc = parse_config_opt(argc, argv, "drover-agent status [--config FILE]", &config);
    if (rc || optind != argc)
        return rc ? rc : 2;
    drv_agent_config_t cfg;
    if (drv_agent_cmd_load_config(config, &cfg) != 0)
        return 1;
    cJSON *st = read_status(&cfg);
    if (!st)
        return 1;
    char *text = cJSON_Print(st);
    cJSON_Delete(st);
    if (!text)
        return 1;
    puts(text);
    free(text);
    return 0;
}

static void cat_file(const char *path)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    char buf[65536];
    ssize_t n;
    while (fd >= 0 && (n = read(fd, buf, sizeof(buf))) > 0)
        if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
            return;
}

int drv_agent_cmd_logs(int argc, char **argv)
{
    const char *usage = "drover-agent logs [--config FILE] POD [CONTAINER]";
    const char *config = NULL;
    int rc = parse_config_opt(argc, argv, usage, &config);
    if (rc)
        return rc;
    if (argc - optind < 1 || argc - optind > 2) {
        fprintf(stderr, "usage: %s\n", usage);
        return 2;
    }
    const char *pod = argv[optind], *ctr = argc - optind == 2 ? argv[optind + 1] : NULL;
    drv_agent_config_t cfg;
    if (drv_agent_cmd_load_config(config, &cfg) != 0)
        return 1;
    cJSON *st = read_status(&cfg);
    if (!st)
        return 1;
    const cJSON *pods = cJSON_GetObjectItemCaseSensitive(st, "pods"), *found = NULL;
    for (const cJSON *p = pods ? pods->child : NULL; p && !found; p = p->next) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(p, "metadata"), "name");
        if (cJSON_IsString(name) && !strcmp(name->valuestring, pod))
            found = p;
    }
    if (!found) {
        fprintf(stderr, "drover-agent: pod \"%s\" not found\n", pod);
        cJSON_Delete(st);
        return 1;
    }
    const char *uid =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(found, "metadata"), "uid")
            ->valuestring;
    const cJSON *cs = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(found, "status"), "containerStatuses");
    if (!ctr) {
        if (cJSON_GetArraySize(cs) != 1) {
            fprintf(stderr, "drover-agent: pod \"%s\" has %d containers: name one\n", pod,
                    cJSON_GetArraySize(cs));
            cJSON_Delete(st);
            return 2;
        }
        ctr = cJSON_GetObjectItemCaseSensitive(cs->child, "name")->valuestring;
    }
    char path[1024];
    if (drv_fmt(path, sizeof(path), "%s/pods/%s/logs/%s.log", cfg.state_dir, uid, ctr) != DRV_OK) {
        fprintf(stderr, "drover-agent: log path too long for container \"%s\" of pod \"%s\"\n", ctr,
                pod);
        cJSON_Delete(st);
        return 1;
    }
    if (access(path, R_OK) != 0) {
        fprintf(stderr, "drover-agent: no logs for container \"%s\" of pod \"%s\"\n", ctr, pod);
        cJSON_Delete(st);
        return 1;
    }
    /* Oldest first: the rotated files, then the current one. */
    for (unsigned i = cfg.log_max_files; i >= 1; i--) {
        char old[1100];
        if (drv_fmt(old, sizeof(old), "%s.%u", path, i) == DRV_OK)
            cat_file(old);
    }
    cat_file(path);
    cJSON_Delete(st);
    return fflush(stdout) == 0 ? 0 : 1;
}
