/* drover flash's parsers (see flash.h): every input here comes from a disk image or from a tool
 * that read one, so each length is checked before it is used. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/fmt.h"
#include "flash/flash.h"

#define CMDLINE_LINE_MAX 4096

static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

drv_err_t drv_flash_mbr_parse(const uint8_t *s, size_t len, uint64_t image_size,
                              drv_flash_mbr_t *out, drv_error_t *err)
{
    if (len < DRV_FLASH_SECTOR)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "no MBR (shorter than one sector)");
    if (s[510] != 0x55 || s[511] != 0xaa)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "no MBR (no 0x55AA signature)");
    drv_flash_mbr_t m;
    memset(&m, 0, sizeof(m));
    uint64_t sectors = image_size / DRV_FLASH_SECTOR;
    size_t used = 0;
    for (int i = 0; i < 4; i++) {
        const uint8_t *e = s + 446 + 16 * i;
        uint8_t status = e[0], type = e[4];
        uint64_t start = le32(e + 8), count = le32(e + 12);
        if (type == 0xee)
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "a GPT disk (protective MBR), not an MBR partition table");
        if (type == 0 && start == 0 && count == 0)
            continue;
        if (status != 0 && status != 0x80)
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "no MBR (partition %d: status byte 0x%02x, not 0x00 or 0x80)",
                                 i + 1, status);
        if (type == 0 || count == 0)
            continue; /* an unused slot with leftovers */
        if (start == 0)
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "no MBR (partition %d starts at sector 0)", i + 1);
        if (start + count > sectors)
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "partition %d (sectors %llu-%llu) ends beyond the image (%llu "
                                 "sectors): a truncated image?",
                                 i + 1, (unsigned long long)start,
                                 (unsigned long long)(start + count - 1),
                                 (unsigned long long)sectors);
        for (int j = 0; j < i; j++) {
            const drv_flash_part_t *o = &m.part[j];
            uint64_t os = o->offset / DRV_FLASH_SECTOR, oc = o->size / DRV_FLASH_SECTOR;
            if (o->type && start < os + oc && os < start + count)
                return drv_error_set(err, DRV_ERR_INVALID, 0, "partitions %d and %d overlap", j + 1,
                                     i + 1);
        }
        m.part[i].type = type;
        m.part[i].active = status == 0x80;
        m.part[i].offset = start * DRV_FLASH_SECTOR;
        m.part[i].size = count * DRV_FLASH_SECTOR;
        used++;
    }
    if (!used)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "no partitions in the MBR");
    *out = m;
    return DRV_OK;
}

bool drv_flash_part_is_fat(uint8_t type)
{
    return type == 0x01 || type == 0x04 || type == 0x06 || type == 0x0b || type == 0x0c ||
           type == 0x0e;
}

static bool pow2(unsigned v)
{
    return v && !(v & (v - 1));
}

drv_err_t drv_flash_fat_check(const uint8_t *bs, size_t len, drv_error_t *err)
{
    if (len < 512)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "FAT boot sector: truncated");
    if (bs[510] != 0x55 || bs[511] != 0xaa)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "FAT boot sector: no 0x55AA signature");
    unsigned bps = le16(bs + 11), spc = bs[13], reserved = le16(bs + 14), fats = bs[16];
    if (!pow2(bps) || bps < 512 || bps > 4096)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "FAT boot sector: %u bytes per sector (expected 512-4096)", bps);
    if (!pow2(spc))
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "FAT boot sector: %u sectors per cluster (not a power of two)", spc);
    if (!reserved || fats < 1 || fats > 2)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "FAT boot sector: %u reserved sectors, %u FATs", reserved, fats);
    return DRV_OK;
}

drv_err_t drv_flash_ext_check(const uint8_t *sb, size_t len, bool *ext4, drv_error_t *err)
{
    if (len < 1024)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "ext superblock: truncated");
    if (le16(sb + 56) != 0xef53)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "no ext2/3/4 superblock");
    uint32_t incompat = le32(sb + 96);
    if (incompat & 0x0004)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "its ext4 journal needs recovery (an image of a running system?): "
                             "run e2fsck -fy on the root partition first");
    if (ext4)
        *ext4 = (incompat & 0x0040) != 0;
    return DRV_OK;
}

const char *drv_flash_arch_name(drv_flash_arch_t arch)
{
    switch (arch) {
    case DRV_FLASH_ARCH_ARM64:
        return "arm64";
    case DRV_FLASH_ARCH_ARMHF:
        return "armhf";
    case DRV_FLASH_ARCH_AMD64:
        return "amd64";
    case DRV_FLASH_ARCH_NONE:
        break;
    }
    return "";
}

drv_err_t drv_flash_elf_arch(const uint8_t *d, size_t len, drv_flash_arch_t *out, drv_error_t *err)
{
    if (len < 4 || memcmp(d, "\177ELF", 4))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "not an ELF file");
    if (len < 52)
        return drv_error_set(err, DRV_ERR_INVALID, 0, "a truncated ELF header");
    uint8_t cls = d[4], data = d[5];
    if (data == 2)
        return drv_error_set(err, DRV_ERR_UNSUPPORTED, 0, "a big-endian ELF file");
    if (data != 1 || (cls != 1 && cls != 2))
        return drv_error_set(err, DRV_ERR_INVALID, 0, "an ELF file with a bad header");
    uint16_t machine = le16(d + 18);
    if (cls == 2 && machine == 183) {
        *out = DRV_FLASH_ARCH_ARM64;
        return DRV_OK;
    }
    if (cls == 2 && machine == 62) {
        *out = DRV_FLASH_ARCH_AMD64;
        return DRV_OK;
    }
    if (cls == 1 && machine == 40) {
        uint32_t flags = le32(d + 36);
        if ((flags & 0xff000000u) != 0x05000000u)
            return drv_error_set(err, DRV_ERR_UNSUPPORTED, 0,
                                 "32-bit ARM, EABI version %u (armhf needs EABI5)", flags >> 24);
        if (!(flags & 0x400))
            return drv_error_set(err, DRV_ERR_UNSUPPORTED, 0, "32-bit ARM soft-float (armel)");
        *out = DRV_FLASH_ARCH_ARMHF;
        return DRV_OK;
    }
    static const struct {
        uint16_t machine;
        const char *name;
    } known[] = {{3, "i386"},        {8, "MIPS"},      {20, "PowerPC"},
                 {21, "PowerPC 64"}, {22, "s390"},     {40, "32-bit ARM"},
                 {62, "x86-64"},     {183, "AArch64"}, {243, "RISC-V"}};
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (known[i].machine == machine)
            return drv_error_set(err, DRV_ERR_UNSUPPORTED, 0, "%s (%d-bit ELF)", known[i].name,
                                 cls == 2 ? 64 : 32);
    return drv_error_set(err, DRV_ERR_UNSUPPORTED, 0, "ELF machine %u", machine);
}

/* What separates options on the kernel command line here: the kernel splits at any space
 * (a carriage return included); text has no other control characters (checked first). */
static bool blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* Whether the blank-separated word w is on line (ll bytes). */
static bool has_opt(const char *line, size_t ll, const char *w)
{
    size_t wl = strlen(w);
    for (size_t i = 0; i < ll;) {
        while (i < ll && blank(line[i]))
            i++;
        size_t j = i;
        while (j < ll && !blank(line[j]))
            j++;
        if (j - i == wl && !memcmp(line + i, w, wl))
            return true;
        i = j;
    }
    return false;
}

drv_err_t drv_flash_cmdline_merge(const char *text, size_t len, drv_buf_t *out, bool *changed,
                                  drv_error_t *err)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == 0 || (c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f)
            return drv_error_set(err, DRV_ERR_INVALID, 0,
                                 "cmdline.txt is not text (byte 0x%02x at %zu)", c, i);
    }
    const char *nl = memchr(text, '\n', len);
    size_t line_len = nl ? (size_t)(nl - text) : len;
    if (line_len > CMDLINE_LINE_MAX)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "cmdline.txt: its line is longer than %d bytes", CMDLINE_LINE_MAX);
    /* Kept after the options: a CRLF's carriage return, the newline and what follows. */
    size_t rest = line_len && text[line_len - 1] == '\r' ? line_len - 1 : line_len;
    size_t end = line_len; /* the options, without trailing blanks */
    while (end && blank(text[end - 1]))
        end--;
    if (rest < end)
        rest = end;
    size_t begin = 0;
    while (begin < end && blank(text[begin]))
        begin++;
    if (begin == end)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "cmdline.txt is empty (an image that cannot boot)");
    drv_buf_t tmp = DRV_BUF_INIT(out->max);
    drv_err_t r = DRV_OK;
    /* The line with each cgroup_disable=memory taken out together with the blanks before it. */
    for (size_t i = 0; i < end && r == DRV_OK;) {
        size_t b = i;
        while (b < end && blank(text[b]))
            b++;
        size_t e = b;
        while (e < end && !blank(text[e]))
            e++;
        static const char off[] = "cgroup_disable=memory";
        if (!(e - b == sizeof(off) - 1 && !memcmp(text + b, off, e - b)))
            r = drv_buf_append(&tmp, text + i, e - i);
        i = e;
    }
    /* A line that started with the option taken out starts with the next one. */
    size_t lead = 0;
    while (r == DRV_OK && begin == 0 && lead < tmp.len && blank(tmp.data[lead]))
        lead++;
    if (lead) {
        memmove(tmp.data, tmp.data + lead, tmp.len - lead);
        drv_buf_truncate(&tmp, tmp.len - lead);
    }
    static const char *const need[] = {"cgroup_enable=memory", "cgroup_memory=1"};
    for (size_t k = 0; k < 2 && r == DRV_OK; k++)
        if (!has_opt(text, end, need[k]))
            r = drv_buf_printf(&tmp, "%s%s", tmp.len ? " " : "", need[k]);
    /* (What stays of the line after the options — blanks before a CRLF's carriage return —
     * counts too: the line written must be readable again.) */
    if (r == DRV_OK && tmp.len + (line_len - rest) > CMDLINE_LINE_MAX) {
        drv_buf_free(&tmp);
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "cmdline.txt: with the cgroup options its line would be longer than "
                             "%d bytes",
                             CMDLINE_LINE_MAX);
    }
    if (r == DRV_OK)
        r = drv_buf_append(&tmp, text + rest, len - rest);
    if (r != DRV_OK) {
        drv_buf_free(&tmp);
        return drv_error_set(err, r, 0, "cmdline.txt: too long");
    }
    *changed = tmp.len != len || memcmp(drv_buf_str(&tmp), text, len);
    drv_buf_free(out);
    *out = tmp;
    return DRV_OK;
}

/* The text after key on line (up to the next blank), as an unsigned number in base. */
static bool field_num(const char *line, const char *key, int base, unsigned long long *v)
{
    const char *p = strstr(line, key);
    if (!p)
        return false;
    p += strlen(key);
    while (*p == ' ')
        p++;
    char *end = NULL;
    unsigned long long n = strtoull(p, &end, base);
    if (end == p || !isdigit((unsigned char)*p))
        return false;
    *v = n;
    return true;
}

drv_err_t drv_flash_stat_parse(const char *text, size_t len, drv_flash_stat_t *out,
                               drv_error_t *err)
{
    drv_flash_stat_t st;
    memset(&st, 0, sizeof(st));
    bool inode = false, owner = false;
    char first[200] = "";
    char line[1024];
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t n = nl ? (size_t)(nl - (text + i)) : len - i;
        size_t c = n < sizeof(line) - 1 ? n : sizeof(line) - 1;
        memcpy(line, text + i, c);
        line[c] = '\0';
        i += n + 1;
        if (memchr(line, '\0', c))
            continue; /* not a line debugfs wrote */
        if (strstr(line, "File not found by ext2_lookup")) {
            st.type = DRV_FLASH_FT_NONE;
            *out = st;
            return DRV_OK;
        }
        unsigned long long v;
        const char *t = strstr(line, "Type: ");
        if (!strncmp(line, "Inode: ", 7) && t && field_num(line, "Mode:", 8, &v)) {
            t += 6;
            st.type = !strncmp(t, "regular", 7)     ? DRV_FLASH_FT_REG
                      : !strncmp(t, "directory", 9) ? DRV_FLASH_FT_DIR
                      : !strncmp(t, "symlink", 7)   ? DRV_FLASH_FT_LINK
                                                    : DRV_FLASH_FT_OTHER;
            st.mode = (unsigned)(v & 07777);
            inode = true;
            continue;
        }
        unsigned long long u, g, s;
        if (!strncmp(line, "User: ", 6) && field_num(line, "User:", 10, &u) &&
            field_num(line, "Group:", 10, &g) && field_num(line, "Size:", 10, &s)) {
            st.uid = (unsigned)u;
            st.gid = (unsigned)g;
            st.size = s;
            owner = true;
            continue;
        }
        const char *fl = strstr(line, "Fast link dest: \"");
        if (fl) {
            fl += 17;
            const char *q = strrchr(fl, '"');
            size_t tl = q ? (size_t)(q - fl) : 0;
            if (q && tl < sizeof(st.link)) {
                memcpy(st.link, fl, tl);
                st.link[tl] = '\0';
                st.link_known = true;
            }
            continue;
        }
        if (!first[0] && c && strncmp(line, "debugfs ", 8))
            drv_fmt_cut(first, sizeof(first), "%.180s", line);
    }
    if (!inode || !owner)
        return drv_error_set(err, DRV_ERR_PROTO, 0, "debugfs: %s", first[0] ? first : "no answer");
    *out = st;
    return DRV_OK;
}

drv_err_t drv_flash_token_id(const char *token, char id[9], drv_error_t *err)
{
    size_t n = strlen(token);
    bool ok = n == 5 + 8 + 1 + 43 && !strncmp(token, "drv1_", 5) && token[13] == '_';
    for (size_t i = 5; ok && i < 13; i++)
        ok = isxdigit((unsigned char)token[i]) != 0;
    for (size_t i = 14; ok && i < n; i++)
        ok = isalnum((unsigned char)token[i]) || token[i] == '-' || token[i] == '_';
    if (!ok)
        return drv_error_set(err, DRV_ERR_INVALID, 0,
                             "not a bootstrap token (drv1_<id>_<secret>, from drover token "
                             "create)");
    memcpy(id, token + 5, 8);
    id[8] = '\0';
    return DRV_OK;
}
