/* libFuzzer target for the text drover flash reads (cli/flash/parse.c): cmdline.txt (merged
 * with the cgroup options: the result holds them once merged, and merging it again changes
 * nothing), debugfs's stat output and a bootstrap token. Needs drover-cli-flash. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "flash/flash.h"

static bool has_word(const char *s, size_t len, const char *w)
{
    size_t wl = strlen(w);
    for (size_t i = 0; i + wl <= len; i++)
        if (!memcmp(s + i, w, wl) &&
            (i == 0 || s[i - 1] == ' ' || s[i - 1] == '\t' || s[i - 1] == '\r') &&
            (i + wl == len || s[i + wl] == ' ' || s[i + wl] == '\t' || s[i + wl] == '\n' ||
             s[i + wl] == '\r'))
            return true;
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    drv_buf_t out = DRV_BUF_INIT(1024 * 1024);
    bool changed = false;
    drv_error_t err = DRV_ERROR_INIT;
    if (drv_flash_cmdline_merge(text, size, &out, &changed, &err) == DRV_OK) {
        const char *nl = memchr(out.data, '\n', out.len);
        size_t first = nl ? (size_t)(nl - out.data) : out.len;
        if (!has_word(out.data, first, "cgroup_enable=memory") ||
            !has_word(out.data, first, "cgroup_memory=1") ||
            has_word(out.data, first, "cgroup_disable=memory"))
            abort();
        if (changed != (out.len != size || memcmp(out.data, text, size)))
            abort();
        drv_buf_t again = DRV_BUF_INIT(1024 * 1024);
        bool changed2 = true;
        if (drv_flash_cmdline_merge(out.data, out.len, &again, &changed2, &err) != DRV_OK ||
            changed2)
            abort();
        drv_buf_free(&again);
    } else if (!err.msg[0]) {
        abort();
    }
    drv_buf_free(&out);

    drv_flash_stat_t st;
    drv_error_clear(&err);
    if (drv_flash_stat_parse(text, size, &st, &err) == DRV_OK) {
        if (st.mode > 07777 || (st.link_known && strlen(st.link) >= sizeof(st.link)))
            abort();
    } else if (!err.msg[0]) {
        abort();
    }

    char tok[64], id[9];
    if (size < sizeof(tok) && !memchr(text, '\0', size)) {
        memcpy(tok, text, size);
        tok[size] = '\0';
        drv_error_clear(&err);
        if (drv_flash_token_id(tok, id, &err) == DRV_OK ? strlen(id) != 8 : !err.msg[0])
            abort();
    }
    return 0;
}
