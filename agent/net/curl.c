/* libcurl, loaded on first use (see curl.h). */
#define DROVER_CURL_IMPL 1
#include <dlfcn.h>
#include <stddef.h>

#include "drover/namelist.h"
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
    /* One name list and one table of offsets, in the same order (drover/namelist.h: no
     * pointer to relocate per symbol). */
#define CURL_SYMS(X)                                                                               \
    X(global_init, "curl_global_init")                                                             \
    X(global_cleanup, "curl_global_cleanup")                                                       \
    X(easy_init, "curl_easy_init")                                                                 \
    X(easy_setopt, "curl_easy_setopt")                                                             \
    X(easy_getinfo, "curl_easy_getinfo")                                                           \
    X(easy_perform, "curl_easy_perform")                                                           \
    X(easy_cleanup, "curl_easy_cleanup")                                                           \
    X(easy_reset, "curl_easy_reset")                                                               \
    X(easy_strerror, "curl_easy_strerror")                                                         \
    X(easy_escape, "curl_easy_escape")                                                             \
    X(free, "curl_free")                                                                           \
    X(slist_append, "curl_slist_append")                                                           \
    X(slist_free_all, "curl_slist_free_all")                                                       \
    X(multi_init, "curl_multi_init")                                                               \
    X(multi_cleanup, "curl_multi_cleanup")                                                         \
    X(multi_add_handle, "curl_multi_add_handle")                                                   \
    X(multi_remove_handle, "curl_multi_remove_handle")                                             \
    X(multi_perform, "curl_multi_perform")                                                         \
    X(multi_poll, "curl_multi_poll")                                                               \
    X(multi_info_read, "curl_multi_info_read")                                                     \
    X(multi_strerror, "curl_multi_strerror")
#define SYM_NAME(field, name) name "\0"
#define SYM_OFFSET(field, name) offsetof(drv_curl_api_t, field),
    static const char names[] = CURL_SYMS(SYM_NAME);
    static const unsigned short offsets[] = {CURL_SYMS(SYM_OFFSET)};
#undef SYM_NAME
#undef SYM_OFFSET
#undef CURL_SYMS
    size_t i = 0;
    for (const char *name = names; name; name = drv_namelist_next(name), i++) {
        void *f = dlsym(h, name);
        if (!f) {
            drv_err_t r = drv_error_set(err, DRV_ERR_UNSUPPORTED, 0, "libcurl: %s", dlerror());
            dlclose(h);
            return r;
        }
        *(void **)((char *)&api + offsets[i]) = f;
    }
    drv_curl = api; /* the library stays loaded for the life of the process */
    return DRV_OK;
}
