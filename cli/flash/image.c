/* drover flash: a disk image's boot (FAT) and root (ext4) file systems through mtools and
 * debugfs, run as child processes with drv_proc_run (see flash.h). Nothing is mounted. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "drover/cleanup.h"
#include "drover/file.h"
#include "drover/fmt.h"
#include "drover/proc.h"
#include "flash/flash.h"

#define TOOL_TIMEOUT_MS 120000u
#define TOOL_OUTPUT_MAX (256u * 1024)

/* Looks prog up in PATH, then /usr/sbin and /sbin (debugfs is there, outside a user's PATH). */
static bool find_prog(const char *prog, char *out, size_t outsz)
{
    const char *path = getenv("PATH");
    char dirs[4096];
    if (drv_fmt(dirs, sizeof(dirs), "%s:/usr/sbin:/sbin", path && *path ? path : "/usr/bin:/bin") !=
        DRV_OK) {
        fprintf(stderr, "drover flash: $PATH too long to look for %s in it\n", prog);
        return false;
    }
    for (char *d = dirs; d && *d;) {
        char *next = strchr(d, ':');
        if (next)
            *next++ = '\0';
        int n = snprintf(out, outsz, "%s/%s", *d ? d : ".", prog);
        if (n > 0 && (size_t)n < outsz && access(out, X_OK) == 0)
            return true;
        d = next;
    }
    return false;
}

drv_err_t drv_flash_tools_find(drv_flash_tools_t *t, drv_error_t *err)
{
    static const struct {
        const char *prog, *package;
        size_t off;
    } need[] = {
        {"mcopy", "mtools", offsetof(drv_flash_tools_t, mcopy)},
        {"mdir", "mtools", offsetof(drv_flash_tools_t, mdir)},
        {"debugfs", "e2fsprogs", offsetof(drv_flash_tools_t, debugfs)},
    };
    for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++)
        if (!find_prog(need[i].prog, (char *)t + need[i].off, 256))
            return drv_error_set(err, DRV_ERR_NOTFOUND, 0,
                                 "%s not found: install %s (apt-get install %s)", need[i].prog,
                                 need[i].package, need[i].package);
    /* mtools: no complaints about geometry the firmware does not care about; debugfs: no
     * pager. The children inherit these. */
    setenv("MTOOLS_SKIP_CHECK", "1", 1);
    setenv("DEBUGFS_PAGER", "__none__", 1);
    setenv("PAGER", "__none__", 1);
    return DRV_OK;
}

/* Runs argv; DRV_OK only for exit 0. out (may be NULL) gets stdout and stderr. */
static drv_err_t run(char *const argv[], drv_buf_t *out, drv_error_t *err)
{
    drv_buf_t local = DRV_BUF_INIT(TOOL_OUTPUT_MAX);
    drv_buf_t *o = out ? out : &local;
    int st = 0;
    drv_err_t r = drv_proc_run(argv, -1, o, TOOL_TIMEOUT_MS, &st, err);
    if (r == DRV_OK && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
        char how[64];
        drv_proc_describe(st, how, sizeof(how));
        /* The tool's last line says why. */
        const char *text = drv_buf_str(o);
        size_t len = strlen(text);
        while (len && (text[len - 1] == '\n' || text[len - 1] == ' '))
            len--;
        size_t start = len;
        while (start && text[start - 1] != '\n')
            start--;
        r = drv_error_set(err, DRV_ERR_IO, 0, "%s: %s%s%.*s", argv[0], how, len ? ": " : "",
                          (int)(len - start > 300 ? 300 : len - start), text + start);
    }
    drv_buf_free(&local);
    return r;
}

static drv_err_t read_at(int fd, uint64_t off, void *buf, size_t len, drv_error_t *err)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return drv_error_set(err, DRV_ERR_IO, errno, "read at %llu", (unsigned long long)off);
        if (n == 0)
            return drv_error_set(err, DRV_ERR_INVALID, 0, "truncated at %llu",
                                 (unsigned long long)(off + done));
        done += (size_t)n;
    }
    return DRV_OK;
}

/* Lists the boot partition's root with mdir -b ("::/NAME" a line). */
static drv_err_t list_boot(drv_flash_img_t *img, drv_error_t *err)
{
    char *argv[] = {img->tools.mdir, "-b", "-i", img->fat, "::/", NULL};
    _cleanup_buf_ drv_buf_t out = DRV_BUF_INIT(TOOL_OUTPUT_MAX);
    drv_err_t r = run(argv, &out, err);
    if (r != DRV_OK) {
        char why[DRV_ERROR_MSG_MAX];
        drv_fmt_cut(why, sizeof(why), "%s", drv_error_msg(err));
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "no FAT boot partition (mtools cannot read partition %d: %.300s)",
                             img->boot + 1, why);
    }
    img->n_boot_names = 0;
    for (char *line = out.data; line && *line;) {
        char *next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (!strncmp(line, "::/", 3) && line[3] && !strchr(line + 3, '/') &&
            strlen(line + 3) < sizeof(img->boot_names[0]) &&
            img->n_boot_names < sizeof(img->boot_names) / sizeof(img->boot_names[0])) {
            const char *name = line + 3;
            /* Only the names this tool looks for are kept. */
            if ((!strcasecmp(name, "cmdline.txt") || !strcasecmp(name, "config.txt")) &&
                drv_fmt(img->boot_names[img->n_boot_names], sizeof(img->boot_names[0]), "%s",
                        name) == DRV_OK)
                img->n_boot_names++;
        }
        line = next;
    }
    return DRV_OK;
}

drv_err_t drv_flash_img_open(drv_flash_img_t *img, const drv_flash_tools_t *tools, const char *path,
                             const char *tmpdir, drv_error_t *err)
{
    memset(img, 0, sizeof(*img));
    img->tools = *tools;
    img->boot = img->root = -1;
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return drv_error_set(err, errno == ENOENT ? DRV_ERR_NOTFOUND : DRV_ERR_IO, errno, "open");
    struct stat sb;
    if (fstat(fd, &sb) != 0)
        return drv_error_set(err, DRV_ERR_IO, errno, "stat");
    if (!S_ISREG(sb.st_mode) && !S_ISBLK(sb.st_mode))
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "not a disk image (neither a file nor a "
                             "block device)");
    off_t end = lseek(fd, 0, SEEK_END);
    if (end < 0)
        return drv_error_set(err, DRV_ERR_IO, errno, "size");
    img->size = (uint64_t)end;
    uint8_t sector[DRV_FLASH_SECTOR];
    if (img->size < DRV_FLASH_SECTOR)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "no MBR (shorter than one sector)");
    drv_err_t r = read_at(fd, 0, sector, sizeof(sector), err);
    if (r == DRV_OK)
        r = drv_flash_mbr_parse(sector, sizeof(sector), img->size, &img->mbr, err);
    if (r != DRV_OK)
        return r;
    for (int i = 0; i < 4; i++) {
        if (img->boot < 0 && drv_flash_part_is_fat(img->mbr.part[i].type))
            img->boot = i;
        else if (img->root < 0 && img->mbr.part[i].type == 0x83)
            img->root = i;
    }
    if (img->boot < 0)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "no FAT boot partition in the MBR");
    if (img->root < 0)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "no ext4 root partition in the MBR (no Linux partition, type 0x83)");
    const drv_flash_part_t *boot = &img->mbr.part[img->boot], *root = &img->mbr.part[img->root];
    r = read_at(fd, boot->offset, sector, sizeof(sector), err);
    if (r == DRV_OK)
        r = drv_flash_fat_check(sector, sizeof(sector), err);
    char why[DRV_ERROR_MSG_MAX];
    if (r != DRV_OK) {
        drv_fmt_cut(why, sizeof(why), "%s", drv_error_msg(err));
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "no FAT boot partition (partition %d: %.300s)", img->boot + 1, why);
    }
    uint8_t sb_ext[1024];
    r = root->size >= 2048 ? read_at(fd, root->offset + 1024, sb_ext, sizeof(sb_ext), err)
                           : drv_error_set(err, DRV_ERR_INVALID, 0, "too small");
    if (r == DRV_OK)
        r = drv_flash_ext_check(sb_ext, sizeof(sb_ext), NULL, err);
    if (r != DRV_OK) {
        drv_fmt_cut(why, sizeof(why), "%s", drv_error_msg(err));
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "no ext4 root partition (partition %d: %.300s)", img->root + 1, why);
    }

    /* The tools get a link of our own to the image: its name holds no '?' or '@@'. */
    char abs[PATH_MAX];
    if (!realpath(path, abs))
        return drv_error_set(err, DRV_ERR_IO, errno, "realpath");
    int n = snprintf(img->scratch, sizeof(img->scratch), "%s/drover-flash.XXXXXX", tmpdir);
    if (n < 0 || (size_t)n >= sizeof(img->scratch) || !mkdtemp(img->scratch)) {
        int e = errno;
        img->scratch[0] = '\0';
        return drv_error_set(err, DRV_ERR_IO, e, "scratch directory in %s", tmpdir);
    }
    char link[400];
    if (drv_fmt(link, sizeof(link), "%s/image", img->scratch) != DRV_OK)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "scratch directory name too long: %s",
                             img->scratch);
    if (symlink(abs, link) != 0)
        return drv_error_set(err, DRV_ERR_IO, errno, "link %s", link);
    if (drv_fmt(img->fat, sizeof(img->fat), "%s@@%llu", link, (unsigned long long)boot->offset) !=
            DRV_OK ||
        drv_fmt(img->ext, sizeof(img->ext), "%s?offset=%llu", link,
                (unsigned long long)root->offset) != DRV_OK)
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "image link name too long: %s", link);
    return list_boot(img, err);
}

void drv_flash_img_close(drv_flash_img_t *img)
{
    if (!img->scratch[0])
        return;
    _cleanup_closedir_ DIR *d = opendir(img->scratch);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char p[600];
        if (drv_fmt(p, sizeof(p), "%s/%s", img->scratch, e->d_name) == DRV_OK)
            unlink(p);
    }
    rmdir(img->scratch);
    img->scratch[0] = '\0';
}

const char *drv_flash_fat_name(const drv_flash_img_t *img, const char *name)
{
    for (size_t i = 0; i < img->n_boot_names; i++)
        if (!strcasecmp(img->boot_names[i], name))
            return img->boot_names[i];
    return NULL;
}

/* A fresh scratch file name into out (DRV_ERR_RANGE if it does not fit: DRV_ERR_TOOBIG means
 * a file over its cap to the readers below). */
DRV_NODISCARD static drv_err_t scratch_name(drv_flash_img_t *img, const char *what, char *out,
                                            size_t outsz, drv_error_t *err)
{
    if (drv_fmt(out, outsz, "%s/%u-%s", img->scratch, img->seq++, what) != DRV_OK)
        return drv_error_set(err, DRV_ERR_RANGE, 0, "scratch file name too long in %s",
                             img->scratch);
    return DRV_OK;
}

drv_err_t drv_flash_fat_read(drv_flash_img_t *img, const char *name, size_t max, char **out,
                             size_t *len, drv_error_t *err)
{
    const char *real = drv_flash_fat_name(img, name);
    if (!real)
        return drv_error_set(err, DRV_ERR_NOTFOUND, 0, "no %s in the boot partition", name);
    char src[128], dst[400];
    if (drv_fmt(src, sizeof(src), "::/%s", real) != DRV_OK)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "boot partition %s: name too long", name);
    drv_err_t r = scratch_name(img, "fat", dst, sizeof(dst), err);
    if (r != DRV_OK)
        return r;
    char *argv[] = {img->tools.mcopy, "-n", "-i", img->fat, src, dst, NULL};
    r = run(argv, NULL, err);
    if (r == DRV_OK)
        r = drv_file_read_capped(dst, max, out, len, err);
    unlink(dst);
    return r == DRV_OK ? DRV_OK : drv_error_wrap(err, "boot partition %s", name);
}

drv_err_t drv_flash_fat_write(drv_flash_img_t *img, const char *name, const void *data, size_t len,
                              drv_error_t *err)
{
    const char *real = drv_flash_fat_name(img, name);
    char src[400], dst[128];
    drv_err_t r = drv_flash_scratch_file(img, data, len, src, sizeof(src), err);
    if (r != DRV_OK)
        return r;
    if (drv_fmt(dst, sizeof(dst), "::/%s", real ? real : name) != DRV_OK) {
        unlink(src);
        return drv_error_set(err, DRV_ERR_TOOBIG, 0, "boot partition: write %s: name too long",
                             name);
    }
    /* -o: overwrite without asking; -D o the same for a clash of short names. */
    char *argv[] = {img->tools.mcopy, "-o", "-D", "o", "-i", img->fat, src, dst, NULL};
    r = run(argv, NULL, err);
    unlink(src);
    return r == DRV_OK ? DRV_OK : drv_error_wrap(err, "boot partition: write %s", name);
}

drv_err_t drv_flash_ext_stat(drv_flash_img_t *img, const char *path, drv_flash_stat_t *st,
                             drv_error_t *err)
{
    char cmd[300];
    if (drv_fmt(cmd, sizeof(cmd), "stat \"%s\"", path) != DRV_OK)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "root partition: %s: path too long", path);
    char *argv[] = {img->tools.debugfs, "-R", cmd, img->ext, NULL};
    _cleanup_buf_ drv_buf_t out = DRV_BUF_INIT(TOOL_OUTPUT_MAX);
    drv_err_t r = run(argv, &out, err);
    if (r == DRV_OK)
        r = drv_flash_stat_parse(out.data ? out.data : "", out.len, st, err);
    return r == DRV_OK ? DRV_OK : drv_error_wrap(err, "root partition: %s", path);
}

drv_err_t drv_flash_ext_read(drv_flash_img_t *img, const char *path, size_t max, char **out,
                             size_t *len, drv_error_t *err)
{
    char cmd[800], dst[400];
    drv_err_t r = scratch_name(img, "ext", dst, sizeof(dst), err);
    if (r != DRV_OK)
        return r;
    if (drv_fmt(cmd, sizeof(cmd), "dump \"%s\" \"%s\"", path, dst) != DRV_OK)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "root partition: %s: path too long", path);
    char *argv[] = {img->tools.debugfs, "-R", cmd, img->ext, NULL};
    _cleanup_buf_ drv_buf_t o = DRV_BUF_INIT(TOOL_OUTPUT_MAX);
    r = run(argv, &o, err);
    if (r == DRV_OK && access(dst, F_OK) != 0)
        r = drv_error_set(err, DRV_ERR_NOTFOUND, 0, "not read: %.300s", drv_buf_str(&o));
    if (r == DRV_OK)
        r = drv_file_read_capped(dst, max, out, len, err);
    unlink(dst);
    return r == DRV_OK ? DRV_OK : drv_error_wrap(err, "root partition: %s", path);
}

drv_err_t drv_flash_scratch_file(drv_flash_img_t *img, const void *data, size_t len, char *out,
                                 size_t outsz, drv_error_t *err)
{
    drv_err_t r = scratch_name(img, "new", out, outsz, err);
    return r == DRV_OK ? drv_file_write_replace(out, data, len, 0600, err) : r;
}

drv_err_t drv_flash_ext_apply(drv_flash_img_t *img, const char *cmds, drv_buf_t *output,
                              drv_error_t *err)
{
    char file[400];
    drv_err_t r = drv_flash_scratch_file(img, cmds, strlen(cmds), file, sizeof(file), err);
    if (r != DRV_OK)
        return r;
    char *argv[] = {img->tools.debugfs, "-w", "-f", file, img->ext, NULL};
    r = run(argv, output, err);
    unlink(file);
    return r == DRV_OK ? DRV_OK : drv_error_wrap(err, "root partition: debugfs -w");
}
