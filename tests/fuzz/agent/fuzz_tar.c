/* libFuzzer target for the layer reader (agent/image/tar.c) alone, faster than fuzz_unpack: the
 * input is a layer blob (tar, gzip or zstd) read from a memfd entry by entry, all data read.
 * Checks that nothing crashes or leaks, that every entry's fields hold what tar.h promises
 * and that a failure says why. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "image/tar.h"

static void check_entry(const drv_tar_entry_t *e)
{
    if (strlen(e->name) >= DRV_TAR_NAME_MAX || strlen(e->link) >= DRV_TAR_NAME_MAX)
        abort();
    if (e->uid < 0 || e->gid < 0 || e->perm > 07777 || e->nxattrs > DRV_TAR_XATTR_MAX)
        abort();
    if (e->type != DRV_TAR_FILE && e->size != 0)
        abort();
    for (size_t i = 0; i < e->nxattrs; i++)
        if (e->xattrs[i].name[0] == '\0' || (e->xattrs[i].size > 0 && e->xattrs[i].value == NULL))
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("layer", 0);
    if (fd < 0)
        return 0;
    if (write(fd, data, size) != (ssize_t)size || lseek(fd, 0, SEEK_SET) != 0) {
        close(fd);
        return 0;
    }
    drv_error_t err = DRV_ERROR_INIT;
    drv_tar_t *t = NULL;
    drv_err_t rc = drv_tar_open(fd, &t, &err);
    while (rc == DRV_OK) {
        const drv_tar_entry_t *e = NULL;
        rc = drv_tar_next(t, &e, &err);
        if (rc != DRV_OK || e == NULL)
            break;
        check_entry(e);
        uint64_t got = 0;
        for (;;) {
            const void *p;
            size_t n;
            rc = drv_tar_read(t, &p, &n, &err);
            if (rc != DRV_OK || n == 0)
                break;
            got += n;
        }
        if (rc == DRV_OK && got != e->size)
            abort();
    }
    if (rc != DRV_OK && err.msg[0] == '\0')
        abort(); /* a failure must say why */
    drv_tar_free(t);
    close(fd);
    return 0;
}
