/* libFuzzer target for what drover flash reads from a disk image's bytes (cli/flash/parse.c):
 * the MBR (with the image size taken from the input's first 8 bytes, so partitions beyond the
 * end are reached), a FAT boot sector, an ext superblock and an ELF header, all on the rest of
 * the input. Checks that nothing crashes and that an accepted MBR has in-bounds, non-overlapping
 * partitions, and that a refusal says why. Needs drover-cli-flash. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "flash/flash.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 8)
        return 0;
    uint64_t image_size = 0;
    memcpy(&image_size, data, 8);
    image_size &= (1ull << 44) - 1; /* up to 16 TiB */
    data += 8;
    size -= 8;
    drv_flash_mbr_t m;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_flash_mbr_parse(data, size, image_size, &m, &err) == DRV_OK) {
        for (int i = 0; i < 4; i++) {
            const drv_flash_part_t *p = &m.part[i];
            if (!p->type)
                continue;
            if (p->offset == 0 || p->size == 0 || p->offset + p->size > image_size)
                abort();
            for (int j = 0; j < i; j++)
                if (m.part[j].type && p->offset < m.part[j].offset + m.part[j].size &&
                    m.part[j].offset < p->offset + p->size)
                    abort();
        }
    } else if (!err.msg[0]) {
        abort();
    }
    drv_error_clear(&err);
    if (drv_flash_fat_check(data, size, &err) != DRV_OK && !err.msg[0])
        abort();
    drv_error_clear(&err);
    bool ext4 = false;
    if (drv_flash_ext_check(data, size, &ext4, &err) != DRV_OK && !err.msg[0])
        abort();
    drv_error_clear(&err);
    drv_flash_arch_t arch = DRV_FLASH_ARCH_NONE;
    drv_err_t r = drv_flash_elf_arch(data, size, &arch, &err);
    if (r == DRV_OK ? !drv_flash_arch_name(arch)[0] : !err.msg[0])
        abort();
    return 0;
}
