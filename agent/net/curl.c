/* libcurl, loaded on first use (see curl.h). */
#define DROVER_CURL_IMPL 1
#include <dlfcn.h>
#include <stddef.h>

#include "net/curl.h"

drv_curl_api_t drv_curl;

drv_err_t drv_curl_load(drv_error_t *err)
{
    if (drv_curl.multi_strerror)
        return DRV_OK;
    void *h = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return drv_error_set(err, DRV_ERR_UNSUPPORTED, 0, "cannot load libcurl: %s", dlerror());
    drv_curl_api_t api;
    static const struct {
        const char *name;
        size_t offset;
    } syms[] = {
#define SYM(field, name) {name, offsetof(drv_curl_api_t, field)}
        SYM(global_init, "curl_global_init"),
        SYM(global_cleanup, "curl_global_cleanup"),
        SYM(easy_init, "curl_easy_init"),
        SYM(easy_setopt, "curl_easy_setopt"),
        SYM(easy_getinfo, "curl_easy_getinfo"),
        SYM(easy_perform, "curl_easy_perform"),
        SYM(easy_cleanup, "curl_easy_cleanup"),
        SYM(easy_reset, "curl_easy_reset"),
        SYM(easy_strerror, "curl_easy_strerror"),
        SYM(easy_escape, "curl_easy_escape"),
        SYM(free, "curl_free"),
        SYM(slist_append, "curl_slist_append"),
        SYM(slist_free_all, "curl_slist_free_all"),
        SYM(multi_init, "curl_multi_init"),
        SYM(multi_cleanup, "curl_multi_cleanup"),
        SYM(multi_add_handle, "curl_multi_add_handle"),
        SYM(multi_remove_handle, "curl_multi_remove_handle"),
        SYM(multi_perform, "curl_multi_perform"),
        SYM(multi_poll, "curl_multi_poll"),
        SYM(multi_info_read, "curl_multi_info_read"),
        SYM(multi_strerror, "curl_multi_strerror"),
#undef SYM
    };
    for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
        void *f = dlsym(h, syms[i].name);
        if (!f) {
            drv_err_t r = drv_error_set(err, DRV_ERR_UNSUPPORTED, 0, "libcurl: %s", dlerror());
            dlclose(h);
            return r;
        }
        *(void **)((char *)&api + syms[i].offset) = f;
    }
    drv_curl = api; /* the library stays loaded for the life of the process */
    return DRV_OK;
}
