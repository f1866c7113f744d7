/* drover flash's parsers (cli/flash/parse.c): the MBR, FAT boot sector and ext superblock
 * checks, ELF architectures, cmdline.txt's cgroup options, debugfs's stat output, token ids. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "flash/flash.h"

#define MIB (1024u * 1024)

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void entry(uint8_t *s, int i, uint8_t status, uint8_t type, uint32_t start, uint32_t count)
{
    uint8_t *e = s + 446 + 16 * i;
    memset(e, 0, 16);
    e[0] = status;
    e[4] = type;
    put32(e + 8, start);
    put32(e + 12, count);
}

/* A Raspberry Pi OS layout: FAT32 LBA at 4 MiB (512 MiB), Linux after it to the end. */
static void pi_mbr(uint8_t s[512], uint64_t size)
{
    memset(s, 0, 512);
    entry(s, 0, 0x00, 0x0c, 8192, 1048576);
    entry(s, 1, 0x00, 0x83, 8192 + 1048576, (uint32_t)(size / 512 - 8192 - 1048576));
    s[510] = 0x55;
    s[511] = 0xaa;
}

static void test_mbr(void **state)
{
    (void)state;
    uint8_t s[512];
    uint64_t size = 2048ull * MIB;
    drv_flash_mbr_t m;
    drv_error_t err = DRV_ERROR_INIT;
    pi_mbr(s, size);
    assert_int_equal(drv_flash_mbr_parse(s, sizeof(s), size, &m, &err), DRV_OK);
    assert_int_equal(m.part[0].type, 0x0c);
    assert_int_equal(m.part[0].offset, 4 * MIB);
    assert_int_equal(m.part[0].size, 512 * MIB);
    assert_int_equal(m.part[1].type, 0x83);
    assert_int_equal(m.part[1].offset + m.part[1].size, size);
    assert_int_equal(m.part[2].type, 0);
    assert_true(drv_flash_part_is_fat(m.part[0].type));
    assert_false(drv_flash_part_is_fat(m.part[1].type));

    /* No signature. */
    s[511] = 0;
    assert_int_equal(drv_flash_mbr_parse(s, sizeof(s), size, &m, &err), DRV_ERR_INVALID);
    assert_string_equal(drv_error_msg(&err), "no MBR (no 0x55AA signature)");
    /* A truncated image: partition 2 ends beyond it. */
    pi_mbr(s, size);
    assert_int_equal(drv_flash_mbr_parse(s, sizeof(s), size - MIB, &m, &err), DRV_ERR_INVALID);
    assert_non_null(strstr(drv_error_msg(&err), "partition 2"));
    assert_non_null(strstr(drv_error_msg(&err), "ends beyond the image"));
    /* GPT. */
    memset(s + 446, 0, 64);
    entry(s, 0, 0, 0xee, 1, 0xffffffff);
    assert_int_equal(drv_flash_mbr_parse(s, sizeof(s), size, &m, &err), DRV_ERR_INVALID);
    assert_non_null(strstr(drv_error_msg(&err), "GPT"));
    /* A boot sector of a file system, not an MBR: status bytes that are not 0/0x80. */
    pi_mbr(s, size);
    s[446] = 0x12;
    assert_int_equal(drv_flash_mbr_parse(s, sizeof(s), size, &m, &err), DRV_ERR_INVALID);
    assert_non_null(strstr(drv_error_msg(&err), "status byte 0x12"));
    /* Overlap. */
    pi_mbr(s, size);
    entry(s, 1, 0, 0x83, 8192 + 1000, 4096);
    assert_int_equal(drv_flash_mbr_parse(s, sizeof(s), size, &m, &err), DRV_ERR_INVALID);
    assert_string_equal(drv_error_msg(&err), "partitions 1 and 2 overlap");
    /* Nothing in it; a partition at sector 0. */
    memset(s + 446, 0, 64);
    assert_int_equal(drv_flash_mbr_parse(s, sizeof(s), size, &m, &err), DRV_ERR_INVALID);
    assert_string_equal(drv_error_msg(&err), "no partitions in the MBR");
    entry(s, 0, 0, 0x83, 0, 100);
    assert_int_equal(drv_flash_mbr_parse(s, sizeof(s), size, &m, &err), DRV_ERR_INVALID);
    /* Short input. */
    assert_int_equal(drv_flash_mbr_parse(s, 100, size, &m, &err), DRV_ERR_INVALID);
    /* The active flag. */
    pi_mbr(s, size);
    s[446] = 0x80;
    assert_int_equal(drv_flash_mbr_parse(s, sizeof(s), size, &m, &err), DRV_OK);
    assert_true(m.part[0].active);
}

static void test_fat_ext(void **state)
{
    (void)state;
    uint8_t bs[512] = {0};
    drv_error_t err = DRV_ERROR_INIT;
    bs[11] = 0x00, bs[12] = 0x02; /* 512 bytes per sector */
    bs[13] = 4;                   /* sectors per cluster */
    bs[14] = 32;                  /* reserved */
    bs[16] = 2;                   /* FATs */
    bs[510] = 0x55, bs[511] = 0xaa;
    assert_int_equal(drv_flash_fat_check(bs, sizeof(bs), &err), DRV_OK);
    bs[13] = 3;
    assert_int_equal(drv_flash_fat_check(bs, sizeof(bs), &err), DRV_ERR_INVALID);
    assert_non_null(strstr(drv_error_msg(&err), "3 sectors per cluster"));
    bs[13] = 4;
    bs[12] = 0x03;
    assert_int_equal(drv_flash_fat_check(bs, sizeof(bs), &err), DRV_ERR_INVALID);
    bs[12] = 0x02;
    bs[510] = 0;
    assert_int_equal(drv_flash_fat_check(bs, sizeof(bs), &err), DRV_ERR_INVALID);

    uint8_t sb[1024] = {0};
    bool ext4 = false;
    assert_int_equal(drv_flash_ext_check(sb, sizeof(sb), &ext4, &err), DRV_ERR_INVALID);
    assert_string_equal(drv_error_msg(&err), "no ext2/3/4 superblock");
    sb[56] = 0x53, sb[57] = 0xef;
    assert_int_equal(drv_flash_ext_check(sb, sizeof(sb), &ext4, &err), DRV_OK);
    assert_false(ext4);
    sb[96] = 0x40 | 0x02; /* extents, filetype */
    assert_int_equal(drv_flash_ext_check(sb, sizeof(sb), &ext4, &err), DRV_OK);
    assert_true(ext4);
    sb[96] |= 0x04; /* needs recovery */
    assert_int_equal(drv_flash_ext_check(sb, sizeof(sb), &ext4, &err), DRV_ERR_INVALID);
    assert_non_null(strstr(drv_error_msg(&err), "e2fsck"));
    assert_int_equal(drv_flash_ext_check(sb, 100, &ext4, &err), DRV_ERR_INVALID);
}

/* An ELF header: class (1 or 2), machine, flags (32-bit only). */
static void elf(uint8_t h[64], int cls, int data, uint16_t machine, uint32_t flags)
{
    memset(h, 0, 64);
    memcpy(h, "\177ELF", 4);
    h[4] = (uint8_t)cls;
    h[5] = (uint8_t)data;
    h[6] = 1;
    h[16] = 2;
    h[18] = (uint8_t)machine;
    h[19] = (uint8_t)(machine >> 8);
    if (cls == 1)
        put32(h + 36, flags);
}

static void test_elf(void **state)
{
    (void)state;
    uint8_t h[64];
    drv_flash_arch_t a = DRV_FLASH_ARCH_NONE;
    drv_error_t err = DRV_ERROR_INIT;
    elf(h, 2, 1, 183, 0);
    assert_int_equal(drv_flash_elf_arch(h, sizeof(h), &a, &err), DRV_OK);
    assert_int_equal(a, DRV_FLASH_ARCH_ARM64);
    assert_string_equal(drv_flash_arch_name(a), "arm64");
    elf(h, 1, 1, 40, 0x05000400);
    assert_int_equal(drv_flash_elf_arch(h, sizeof(h), &a, &err), DRV_OK);
    assert_int_equal(a, DRV_FLASH_ARCH_ARMHF);
    assert_string_equal(drv_flash_arch_name(a), "armhf");
    elf(h, 2, 1, 62, 0);
    assert_int_equal(drv_flash_elf_arch(h, sizeof(h), &a, &err), DRV_OK);
    assert_string_equal(drv_flash_arch_name(a), "amd64");
    elf(h, 1, 1, 40, 0x05000200);
    assert_int_equal(drv_flash_elf_arch(h, sizeof(h), &a, &err), DRV_ERR_UNSUPPORTED);
    assert_string_equal(drv_error_msg(&err), "32-bit ARM soft-float (armel)");
    elf(h, 1, 1, 40, 0x04000000);
    assert_int_equal(drv_flash_elf_arch(h, sizeof(h), &a, &err), DRV_ERR_UNSUPPORTED);
    assert_non_null(strstr(drv_error_msg(&err), "EABI version 4"));
    elf(h, 1, 1, 3, 0);
    assert_int_equal(drv_flash_elf_arch(h, sizeof(h), &a, &err), DRV_ERR_UNSUPPORTED);
    assert_string_equal(drv_error_msg(&err), "i386 (32-bit ELF)");
    elf(h, 2, 1, 243, 0);
    assert_int_equal(drv_flash_elf_arch(h, sizeof(h), &a, &err), DRV_ERR_UNSUPPORTED);
    assert_string_equal(drv_error_msg(&err), "RISC-V (64-bit ELF)");
    elf(h, 2, 2, 183, 0);
    assert_int_equal(drv_flash_elf_arch(h, sizeof(h), &a, &err), DRV_ERR_UNSUPPORTED);
    assert_string_equal(drv_error_msg(&err), "a big-endian ELF file");
    elf(h, 2, 1, 183, 0);
    assert_int_equal(drv_flash_elf_arch(h, 20, &a, &err), DRV_ERR_INVALID);
    assert_int_equal(drv_flash_elf_arch((const uint8_t *)"#!/bin/sh\n", 10, &a, &err),
                     DRV_ERR_INVALID);
    assert_string_equal(drv_error_msg(&err), "not an ELF file");
    elf(h, 3, 1, 183, 0);
    assert_int_equal(drv_flash_elf_arch(h, sizeof(h), &a, &err), DRV_ERR_INVALID);
}

static void merge_is(const char *in, const char *want, bool want_changed)
{
    drv_buf_t out = DRV_BUF_INIT(8192);
    bool changed = !want_changed;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_flash_cmdline_merge(in, strlen(in), &out, &changed, &err), DRV_OK);
    assert_string_equal(drv_buf_str(&out), want);
    assert_int_equal(changed, want_changed);
    /* Once is enough: merging the result changes nothing. */
    drv_buf_t again = DRV_BUF_INIT(8192);
    assert_int_equal(drv_flash_cmdline_merge(out.data, out.len, &again, &changed, &err), DRV_OK);
    assert_false(changed);
    assert_string_equal(drv_buf_str(&again), want);
    drv_buf_free(&again);
    drv_buf_free(&out);
}

static void test_cmdline(void **state)
{
    (void)state;
    merge_is("console=serial0,115200 console=tty1 root=PARTUUID=1-02 rootfstype=ext4 "
             "fsck.repair=yes rootwait\n",
             "console=serial0,115200 console=tty1 root=PARTUUID=1-02 rootfstype=ext4 "
             "fsck.repair=yes rootwait cgroup_enable=memory cgroup_memory=1\n",
             true);
    merge_is("root=/dev/mmcblk0p2 cgroup_memory=1 cgroup_enable=memory quiet\n",
             "root=/dev/mmcblk0p2 cgroup_memory=1 cgroup_enable=memory quiet\n", false);
    merge_is("root=/dev/mmcblk0p2 cgroup_enable=memory\n",
             "root=/dev/mmcblk0p2 cgroup_enable=memory cgroup_memory=1\n", true);
    /* No newline stays none; CRLF stays; trailing blanks go; further lines are kept. */
    merge_is("root=/dev/sda2", "root=/dev/sda2 cgroup_enable=memory cgroup_memory=1", true);
    merge_is("root=/dev/sda2  \r\n", "root=/dev/sda2 cgroup_enable=memory cgroup_memory=1\r\n",
             true);
    merge_is("root=/dev/sda2\n# notes\n",
             "root=/dev/sda2 cgroup_enable=memory cgroup_memory=1\n# notes\n", true);
    /* A word that only starts like an option is not it. */
    merge_is("root=/dev/sda2 cgroup_enable=memoryx\n",
             "root=/dev/sda2 cgroup_enable=memoryx cgroup_enable=memory cgroup_memory=1\n", true);
    /* cgroup_disable=memory goes, wherever it is. */
    merge_is("cgroup_disable=memory root=/dev/sda2 quiet\n",
             "root=/dev/sda2 quiet cgroup_enable=memory cgroup_memory=1\n", true);
    merge_is("cgroup_disable=memory\n", "cgroup_enable=memory cgroup_memory=1\n", true);
    /* A carriage return inside the line separates options, as for the kernel. */
    merge_is("a\rcgroup_disable=memory b\rcgroup_memory=1\n",
             "a b\rcgroup_memory=1 cgroup_enable=memory\n", true);
    merge_is("root=/dev/sda2\tcgroup_disable=memory quiet\n",
             "root=/dev/sda2 quiet cgroup_enable=memory cgroup_memory=1\n", true);

    drv_buf_t out = DRV_BUF_INIT(8192);
    bool changed = false;
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(drv_flash_cmdline_merge("  \n", 3, &out, &changed, &err), DRV_ERR_INVALID);
    assert_non_null(strstr(drv_error_msg(&err), "cmdline.txt is empty"));
    assert_int_equal(drv_flash_cmdline_merge("root=x\0y\n", 9, &out, &changed, &err),
                     DRV_ERR_INVALID);
    assert_non_null(strstr(drv_error_msg(&err), "not text"));
    char big[5000];
    memset(big, 'a', sizeof(big));
    assert_int_equal(drv_flash_cmdline_merge(big, sizeof(big), &out, &changed, &err),
                     DRV_ERR_INVALID);
    assert_null(out.data);
    /* Nor may the options make it too long (it would be refused next time). */
    memset(big, 'a', 4090);
    assert_int_equal(drv_flash_cmdline_merge(big, 4090, &out, &changed, &err), DRV_ERR_INVALID);
    assert_non_null(strstr(drv_error_msg(&err), "with the cgroup options"));
    assert_null(out.data);
    /* The output's own maximum holds. */
    drv_buf_t small = DRV_BUF_INIT(10);
    assert_int_equal(drv_flash_cmdline_merge("root=/dev/sda2\n", 15, &small, &changed, &err),
                     DRV_ERR_TOOBIG);
    drv_buf_free(&small);
}

static void test_stat(void **state)
{
    (void)state;
    drv_flash_stat_t st;
    drv_error_t err = DRV_ERROR_INIT;
    const char *reg = "debugfs 1.47.0 (5-Feb-2023)\n"
                      "Inode: 28   Type: regular    Mode:  0755   Flags: 0x80000\n"
                      "Generation: 0    Version: 0x00000000:00000000\n"
                      "User:     0   Group:     0   Project:     0   Size: 4120\n"
                      "File ACL: 0\nLinks: 1   Blockcount: 10\n";
    assert_int_equal(drv_flash_stat_parse(reg, strlen(reg), &st, &err), DRV_OK);
    assert_int_equal(st.type, DRV_FLASH_FT_REG);
    assert_int_equal(st.mode, 0755);
    assert_int_equal(st.uid, 0);
    assert_int_equal(st.size, 4120);
    assert_false(st.link_known);
    const char *lnk = "debugfs 1.47.0 (5-Feb-2023)\n"
                      "Inode: 12   Type: symlink    Mode:  0777   Flags: 0x0\n"
                      "User:  1000   Group:    27   Size: 7\n"
                      "Fast link dest: \"usr/bin\"";
    assert_int_equal(drv_flash_stat_parse(lnk, strlen(lnk), &st, &err), DRV_OK);
    assert_int_equal(st.type, DRV_FLASH_FT_LINK);
    assert_int_equal(st.uid, 1000);
    assert_int_equal(st.gid, 27);
    assert_true(st.link_known);
    assert_string_equal(st.link, "usr/bin");
    const char *dir = "Inode: 2   Type: directory    Mode:  1777   Flags: 0x80000\n"
                      "User:     0   Group:     0   Project:     0   Size: 4096\n";
    assert_int_equal(drv_flash_stat_parse(dir, strlen(dir), &st, &err), DRV_OK);
    assert_int_equal(st.type, DRV_FLASH_FT_DIR);
    assert_int_equal(st.mode, 01777);
    const char *none = "debugfs 1.47.0 (5-Feb-2023)\n/nope: File not found by ext2_lookup \n";
    assert_int_equal(drv_flash_stat_parse(none, strlen(none), &st, &err), DRV_OK);
    assert_int_equal(st.type, DRV_FLASH_FT_NONE);
    const char *broken = "debugfs 1.47.0 (5-Feb-2023)\ndebugfs: Bad magic number in super-block "
                         "while trying to open x.img\n";
    assert_int_equal(drv_flash_stat_parse(broken, strlen(broken), &st, &err), DRV_ERR_PROTO);
    assert_non_null(strstr(drv_error_msg(&err), "Bad magic number"));
    assert_int_equal(drv_flash_stat_parse("", 0, &st, &err), DRV_ERR_PROTO);
}

static void test_token_id(void **state)
{
    (void)state;
    char id[9];
    drv_error_t err = DRV_ERROR_INIT;
    assert_int_equal(
        drv_flash_token_id("drv1_0123abcd_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_01234", id, &err),
        DRV_OK);
    assert_string_equal(id, "0123abcd");
    assert_int_equal(drv_flash_token_id("drv1_0123abcd_short", id, &err), DRV_ERR_INVALID);
    assert_non_null(strstr(drv_error_msg(&err), "not a bootstrap token"));
    assert_int_equal(
        drv_flash_token_id("drv1_0123abcg_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_01234", id, &err),
        DRV_ERR_INVALID);
    assert_int_equal(
        drv_flash_token_id("drv1_0123abcd_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_0123/", id, &err),
        DRV_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mbr),  cmocka_unit_test(test_fat_ext),
        cmocka_unit_test(test_elf),  cmocka_unit_test(test_cmdline),
        cmocka_unit_test(test_stat), cmocka_unit_test(test_token_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
