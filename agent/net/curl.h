/* libcurl, loaded on first use. The agent's long-running process needs HTTP only for image
 * pulls (in a child) and HTTP/TCP probes; linking libcurl outright would load its TLS
 * library, GnuTLS (through librtmp), Kerberos and LDAP into every agent at start-up, whose
 * constructors and relocations alone cost megabytes of private memory on a 512 MB device.
 * Code that speaks HTTP includes this header instead of <curl/curl.h> and calls
 * drv_curl_load() before its first curl call; the curl_* names then go through the table. */
#ifndef DROVER_AGENT_NET_CURL_H
#define DROVER_AGENT_NET_CURL_H

#ifndef CURL_DISABLE_TYPECHECK
#define CURL_DISABLE_TYPECHECK 1 /* the type-checking macros would call the real symbols */
#endif
#include <curl/curl.h>

#include "drover/error.h"

typedef struct drv_curl_api {
    CURLcode (*global_init)(long flags);
    void (*global_cleanup)(void);
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *h, CURLoption opt, ...);
    CURLcode (*easy_getinfo)(CURL *h, CURLINFO info, ...);
    CURLcode (*easy_perform)(CURL *h);
    void (*easy_cleanup)(CURL *h);
    void (*easy_reset)(CURL *h);
    const char *(*easy_strerror)(CURLcode c);
    char *(*easy_escape)(CURL *h, const char *s, int len);
    void (*free)(void *p);
    struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
    void (*slist_free_all)(struct curl_slist *l);
    CURLM *(*multi_init)(void);
    CURLMcode (*multi_cleanup)(CURLM *m);
    CURLMcode (*multi_add_handle)(CURLM *m, CURL *h);
    CURLMcode (*multi_remove_handle)(CURLM *m, CURL *h);
    CURLMcode (*multi_perform)(CURLM *m, int *running);
    CURLMcode (*multi_poll)(CURLM *m, struct curl_waitfd extra[], unsigned n, int timeout_ms,
                            int *numfds);
    CURLMsg *(*multi_info_read)(CURLM *m, int *left);
    const char *(*multi_strerror)(CURLMcode c);
} drv_curl_api_t;

/* Filled by drv_curl_load: process-wide, written once, read-only afterwards. */
extern drv_curl_api_t drv_curl;

/* Loads libcurl (libcurl.so.4) and every function above; idempotent. DRV_ERR_UNSUPPORTED
 * with dlerror()'s text if the library or a symbol is missing. */
DRV_NODISCARD drv_err_t drv_curl_load(drv_error_t *err);

#ifndef DROVER_CURL_IMPL
#undef curl_easy_setopt
#undef curl_easy_getinfo
#define curl_global_init drv_curl.global_init
#define curl_global_cleanup drv_curl.global_cleanup
#define curl_easy_init drv_curl.easy_init
#define curl_easy_setopt drv_curl.easy_setopt
#define curl_easy_getinfo drv_curl.easy_getinfo
#define curl_easy_perform drv_curl.easy_perform
#define curl_easy_cleanup drv_curl.easy_cleanup
#define curl_easy_reset drv_curl.easy_reset
#define curl_easy_strerror drv_curl.easy_strerror
#define curl_easy_escape drv_curl.easy_escape
#define curl_free drv_curl.free
#define curl_slist_append drv_curl.slist_append
#define curl_slist_free_all drv_curl.slist_free_all
#define curl_multi_init drv_curl.multi_init
#define curl_multi_cleanup drv_curl.multi_cleanup
#define curl_multi_add_handle drv_curl.multi_add_handle
#define curl_multi_remove_handle drv_curl.multi_remove_handle
#define curl_multi_perform drv_curl.multi_perform
#define curl_multi_poll drv_curl.multi_poll
#define curl_multi_info_read drv_curl.multi_info_read
#define curl_multi_strerror drv_curl.multi_strerror
#endif

#endif
