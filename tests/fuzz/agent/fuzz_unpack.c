/* libFuzzer target for the confined layer unpacker (agent/image/unpack.c): the input is a layer
 * blob (tar, gzip or zstd), unpacked in APPLY mode into a fresh directory. Checks that nothing
 * crashes or leaks, that a failure says why, and that nothing appears or changes outside the
 * destination (a canary next to it). Needs drover-agent-core; see the report in the commit. */
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include "image/unpack.h"

#define CANARY "canary\n"

static char g_base[64];
static char g_blob[PATH_MAX];
static char g_dest[PATH_MAX];
static char g_outside[PATH_MAX];
static char g_canary[PATH_MAX];

static int open_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)ftw;
    if (flag == FTW_D)
        (void)chmod(path, (st->st_mode & 07777) | S_IRWXU); /* layers may lock themselves */
    return 0;
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void rm_rf(const char *path)
{
    (void)nftw(path, open_cb, 64, FTW_PHYS);
    (void)nftw(path, rm_cb, 64, FTW_DEPTH | FTW_PHYS);
}

static void setup_once(void)
{
    if (g_base[0])
        return;
    snprintf(g_base, sizeof g_base, "/tmp/drv-fuzz-unpack-XXXXXX");
    if (mkdtemp(g_base) == NULL)
        abort();
    snprintf(g_blob, sizeof g_blob, "%s/blob", g_base);
    snprintf(g_dest, sizeof g_dest, "%s/dest", g_base);
    snprintf(g_outside, sizeof g_outside, "%s/outside", g_base);
    snprintf(g_canary, sizeof g_canary, "%s/canary", g_outside);
    if (mkdir(g_outside, 0755) < 0)
        abort();
    int fd = open(g_canary, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, CANARY, strlen(CANARY)) != (ssize_t)strlen(CANARY))
        abort();
    close(fd);
}

/* Only blob, dest and outside next to each other; only the canary, unchanged, in outside. */
static void check_outside(void)
{
    char buf[32];
    struct stat st;
    int fd = open(g_canary, O_RDONLY | O_NOFOLLOW);
    if (fd < 0 || fstat(fd, &st) < 0 || st.st_nlink != 1 || (st.st_mode & 07777) != 0644)
        abort();
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    if (n != (ssize_t)strlen(CANARY) || memcmp(buf, CANARY, (size_t)n) != 0)
        abort();
    const char *dirs[] = {g_base, g_outside};
    for (int i = 0; i < 2; i++) {
        DIR *d = opendir(dirs[i]);
        if (d == NULL)
            abort();
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            const char *nm = de->d_name;
            if (!strcmp(nm, ".") || !strcmp(nm, ".."))
                continue;
            if (i == 0 && strcmp(nm, "blob") && strcmp(nm, "dest") && strcmp(nm, "outside"))
                abort(); /* something escaped next to the destination */
            if (i == 1 && strcmp(nm, "canary"))
                abort(); /* something escaped into the outside directory */
        }
        closedir(d);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup_once();
    int fd = open(g_blob, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size))
        abort();
    close(fd);
    rm_rf(g_dest);
    if (mkdir(g_dest, 0755) < 0)
        abort();

    drv_unpack_opts_t opts = {
        .mode = DRV_UNPACK_APPLY,
        .max_bytes = 16u << 20,
        .max_entries = 4096,
        .what = "fuzz layer",
        .preserve_owner = 0,
    };
    drv_unpack_stats_t stats = {0};
    drv_error_t err = DRV_ERROR_INIT;
    drv_err_t rc = drv_unpack_layer(g_blob, g_dest, &opts, &stats, &err);
    if (rc != DRV_OK && (err.code != rc || strncmp(err.msg, "fuzz layer: ", 12) != 0))
        abort(); /* a failure must name the layer and say why */
    if (rc == DRV_OK && (stats.entries > opts.max_entries || stats.bytes > opts.max_bytes))
        abort();
    check_outside();
    rm_rf(g_dest);
    return 0;
}
