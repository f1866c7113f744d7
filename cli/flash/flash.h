/* drover flash's image handling: the parsers of what it reads from a Raspberry Pi OS-style disk
 * image (MBR, FAT boot sector, ext superblock, ELF header, cmdline.txt, debugfs's "stat"
 * output; parse.c, pure and fuzzed) and the access to the image's two file systems through
 * mtools and e2fsprogs' debugfs run as child processes (image.c), so that nothing is mounted
 * and no root is needed. Built as drover-cli-flash, which the drover program and the tests
 * link. */
#ifndef DROVER_CLI_FLASH_H
#define DROVER_CLI_FLASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "drover/buf.h"
#include "drover/error.h"

#define DRV_FLASH_SECTOR 512u

/* ---- parsers (parse.c) ---- */

typedef struct drv_flash_part {
    uint8_t type;    /* MBR partition type: 0x0c FAT32 (LBA), 0x83 Linux, 0: unused slot */
    bool active;     /* the boot flag */
    uint64_t offset; /* bytes from the start of the image */
    uint64_t size;   /* bytes */
} drv_flash_part_t;

typedef struct drv_flash_mbr {
    drv_flash_part_t part[4]; /* the four primary slots, in order */
} drv_flash_mbr_t;

/* Parses the MBR in the image's first sector (len bytes, at least 512) of an image of
 * image_size bytes. DRV_ERR_INVALID with the reason when there is no MBR signature, it is a
 * GPT's protective MBR, a status byte is neither 0 nor 0x80, a partition starts at sector 0,
 * ends beyond the image or overlaps another, or no partition is used. *out untouched then. */
DRV_NODISCARD drv_err_t drv_flash_mbr_parse(const uint8_t *sector, size_t len, uint64_t image_size,
                                            drv_flash_mbr_t *out, drv_error_t *err);
/* FAT12/16/32 partition types (0x01, 0x04, 0x06, 0x0b, 0x0c, 0x0e). */
bool drv_flash_part_is_fat(uint8_t type);
/* Checks a FAT boot sector (the partition's first sector, len >= 512): signature, a sane BIOS
 * parameter block (bytes per sector a power of two 512-4096, sectors per cluster a power of
 * two, reserved sectors, one or two FATs). DRV_ERR_INVALID with the reason. */
DRV_NODISCARD drv_err_t drv_flash_fat_check(const uint8_t *bs, size_t len, drv_error_t *err);
/* Checks an ext2/3/4 superblock (the 1024 bytes at offset 1024 of the partition): its magic,
 * and no journal left to recover (debugfs writes past the journal; a replay at mount would
 * undo them). DRV_ERR_INVALID with the reason; *ext4 (may be NULL) whether it uses extents. */
DRV_NODISCARD drv_err_t drv_flash_ext_check(const uint8_t *sb, size_t len, bool *ext4,
                                            drv_error_t *err);

typedef enum {
    DRV_FLASH_ARCH_NONE = 0,
    DRV_FLASH_ARCH_ARM64, /* ELF64 little-endian AArch64 */
    DRV_FLASH_ARCH_ARMHF, /* ELF32 little-endian ARM, EABI5, hard-float */
    DRV_FLASH_ARCH_AMD64, /* ELF64 little-endian x86-64 */
} drv_flash_arch_t;

/* "arm64", "armhf", "amd64" ("" for NONE): the Debian name, as in drover-agent-<arch>. */
const char *drv_flash_arch_name(drv_flash_arch_t arch);
/* The architecture of an ELF file from its first len bytes. DRV_ERR_INVALID "not an ELF file"
 * (or a truncated header); DRV_ERR_UNSUPPORTED naming what it is ("32-bit ARM soft-float
 * (armel)", "big-endian", "ELF machine 8"). */
DRV_NODISCARD drv_err_t drv_flash_elf_arch(const uint8_t *data, size_t len, drv_flash_arch_t *out,
                                           drv_error_t *err);

/* The kernel command line options drover needs on a Raspberry Pi. */
#define DRV_FLASH_CMDLINE_OPTS "cgroup_enable=memory cgroup_memory=1"
/* cmdline.txt (text, len bytes) with DRV_FLASH_CMDLINE_OPTS on its first line: each option
 * missing is appended after a space, a cgroup_disable=memory is taken out, everything else is
 * kept byte for byte (other options, the line ending, any further lines). *changed whether
 * the result differs. DRV_ERR_INVALID when it is empty, not text, or its first line is longer
 * than 4 KiB; out (a buffer with its own maximum) untouched then. */
DRV_NODISCARD drv_err_t drv_flash_cmdline_merge(const char *text, size_t len, drv_buf_t *out,
                                                bool *changed, drv_error_t *err);

typedef enum {
    DRV_FLASH_FT_NONE = 0, /* not found */
    DRV_FLASH_FT_REG,
    DRV_FLASH_FT_DIR,
    DRV_FLASH_FT_LINK,
    DRV_FLASH_FT_OTHER,
} drv_flash_ftype_t;

typedef struct drv_flash_stat {
    drv_flash_ftype_t type;
    unsigned mode; /* permission bits (07777) */
    unsigned uid, gid;
    uint64_t size;
    bool link_known; /* a fast symlink: link holds its target */
    char link[256];
} drv_flash_stat_t;

/* Parses what `debugfs -R "stat PATH"` printed (banner and all). A missing file is DRV_OK with
 * type NONE; output that is neither (debugfs could not open the file system, ...) is
 * DRV_ERR_PROTO with its first meaningful line. */
DRV_NODISCARD drv_err_t drv_flash_stat_parse(const char *text, size_t len, drv_flash_stat_t *out,
                                             drv_error_t *err);

/* The id of a token "drv1_<8 hex>_<43 base64url>" into id (9 bytes). DRV_ERR_INVALID if it is
 * not one. */
DRV_NODISCARD drv_err_t drv_flash_token_id(const char *token, char id[9], drv_error_t *err);

/* ---- the image through mtools and debugfs (image.c) ---- */

typedef struct drv_flash_tools {
    char mcopy[256], mdir[256], debugfs[256];
} drv_flash_tools_t;

/* Finds mcopy, mdir (mtools) and debugfs (e2fsprogs) in PATH, then /usr/sbin and /sbin.
 * DRV_ERR_NOTFOUND naming the program and the Debian package to install. */
DRV_NODISCARD drv_err_t drv_flash_tools_find(drv_flash_tools_t *t, drv_error_t *err);

typedef struct drv_flash_img {
    drv_flash_tools_t tools; /* a copy: argv wants char * */
    char scratch[256];       /* a private directory for this image's temporary files (owned) */
    char fat[600];           /* "<scratch>/image@@<offset>": mtools' -i */
    char ext[600];           /* "<scratch>/image?offset=<offset>": debugfs's device */
    uint64_t size;           /* bytes */
    drv_flash_mbr_t mbr;
    int boot, root;         /* indexes of the FAT boot and ext root partitions in mbr.part */
    char boot_names[8][64]; /* the boot partition's root entries as mdir lists them */
    size_t n_boot_names;
    unsigned seq; /* names the scratch files */
} drv_flash_img_t;

/* Opens path (a regular file or a block device): reads and checks the MBR, the FAT boot
 * partition (the first FAT partition, its boot sector) and the ext root (the first Linux
 * partition, 0x83, with an ext2/3/4 superblock), and lists the boot partition's root. A
 * scratch directory is made under tmpdir and the image linked into it (so that a '?' or an
 * '@' in its name means nothing to the tools). DRV_ERR_INVALID: not a recognised image, with
 * the reason ("no FAT boot partition", ...); DRV_ERR_IO etc. otherwise. Close with
 * drv_flash_img_close, also after a failure. */
DRV_NODISCARD drv_err_t drv_flash_img_open(drv_flash_img_t *img, const drv_flash_tools_t *tools,
                                           const char *path, const char *tmpdir, drv_error_t *err);
/* Removes the scratch directory. */
void drv_flash_img_close(drv_flash_img_t *img);

/* The boot partition's root entry named name (case-insensitively, as FAT does), NULL if
 * none. */
const char *drv_flash_fat_name(const drv_flash_img_t *img, const char *name);
/* Reads a file of the boot partition's root (at most max bytes) into *out (NUL-terminated,
 * caller frees). DRV_ERR_NOTFOUND if absent. */
DRV_NODISCARD drv_err_t drv_flash_fat_read(drv_flash_img_t *img, const char *name, size_t max,
                                           char **out, size_t *len, drv_error_t *err);
/* Replaces (or creates) a file of the boot partition's root. */
DRV_NODISCARD drv_err_t drv_flash_fat_write(drv_flash_img_t *img, const char *name,
                                            const void *data, size_t len, drv_error_t *err);

/* debugfs's stat of path in the root file system (intermediate symlinks followed, the last
 * one not). */
DRV_NODISCARD drv_err_t drv_flash_ext_stat(drv_flash_img_t *img, const char *path,
                                           drv_flash_stat_t *st, drv_error_t *err);
/* A file's contents (at most max bytes: DRV_ERR_TOOBIG beyond) into *out (NUL-terminated,
 * caller frees). A symlink's gives its target. */
DRV_NODISCARD drv_err_t drv_flash_ext_read(drv_flash_img_t *img, const char *path, size_t max,
                                           char **out, size_t *len, drv_error_t *err);
/* Writes data to a scratch file (mode 0600) and puts its path into out, for a "write"
 * command of drv_flash_ext_apply. */
DRV_NODISCARD drv_err_t drv_flash_scratch_file(drv_flash_img_t *img, const void *data, size_t len,
                                               char *out, size_t outsz, drv_error_t *err);
/* Runs debugfs -w with cmds (one command a line) on the root file system. debugfs says little
 * through its exit status: the caller checks the result (stat, read) afterwards; output (may
 * be NULL) gets what it printed. */
DRV_NODISCARD drv_err_t drv_flash_ext_apply(drv_flash_img_t *img, const char *cmds,
                                            drv_buf_t *output, drv_error_t *err);

#endif
