/* Kubernetes name rules (apimachinery's util/validation), with the same messages so that a
 * Drover validation error reads like the Kubernetes one. Several problems with one name are
 * reported together, separated by "; ". */
#include "drover/names.h"

#include <stdio.h>
#include <string.h>

#include "drover/fmt.h"

#define DNS1123_LABEL_MAX 63
#define DNS1123_SUBDOMAIN_MAX 253
#define DNS1035_LABEL_MAX 63
#define LABEL_NAME_MAX 63
#define LABEL_VALUE_MAX 63
#define PORT_NAME_MAX 15
#define CONFIG_KEY_MAX 253

/* Kubernetes' RegexError(msg, fmt, examples...) spelled out, double space included. */
#define DNS1123_LABEL_MSG                                                                          \
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "       \
    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "       \
    "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
#define DNS1123_SUBDOMAIN_MSG                                                                      \
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "      \
    "or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex "    \
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
#define DNS1035_LABEL_MSG                                                                          \
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with "      \
    "an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "        \
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
#define LABEL_KEY_RULE                                                                             \
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "       \
    "an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "      \
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
#define LABEL_KEY_MSG                                                                              \
    "a valid label key " LABEL_KEY_RULE " with an optional DNS subdomain prefix and '/' (e.g. "    \
    "'example.com/MyName')"
#define LABEL_VALUE_MSG                                                                            \
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "       \
    "or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "          \
    "'my_value',  or '12345', regex used for validation is "                                       \
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
#define CONFIG_KEY_MSG                                                                             \
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. "           \
    "'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is "                    \
    "'[-._a-zA-Z0-9]+')"
#define ENV_VAR_MSG                                                                                \
    "a valid environment variable name must consist only of printable ASCII characters other "     \
    "than '='"

/* Collects reasons into the caller's buffer (which may be absent). */
typedef struct {
    char *buf;
    size_t sz;
    bool any;
} why_t;

static void why_init(why_t *w, char *buf, size_t sz)
{
    w->buf = (buf != NULL && sz > 0) ? buf : NULL;
    w->sz = sz;
    w->any = false;
    if (w->buf != NULL)
        w->buf[0] = '\0';
}

static void why_add(why_t *w, const char *prefix, const char *msg)
{
    if (w->buf != NULL) {
        size_t used = strnlen(w->buf, w->sz);
        if (used + 1 < w->sz) {
            /* checksrc: allow snprintf-unchecked: why is cut to fit (test_short_why_buffer) */
            snprintf(w->buf + used, w->sz - used, "%s%s%s", w->any ? "; " : "", prefix, msg);
        }
    }
    w->any = true;
}

static void why_maxlen(why_t *w, const char *prefix, int max)
{
    char msg[64];
    drv_fmt_cut(msg, sizeof(msg), "must be no more than %d characters", max);
    why_add(w, prefix, msg);
}

static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
    return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

/* [a-z0-9]([-a-z0-9]*[a-z0-9])? over s[0..len) */
static bool match_dns1123_label(const char *s, size_t len)
{
    if (len == 0 || !is_lower_alnum(s[0]) || !is_lower_alnum(s[len - 1]))
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!is_lower_alnum(s[i]) && s[i] != '-')
            return false;
    }
    return true;
}

/* Labels as above joined by single dots (Kubernetes does not cap each label here). */
static bool match_dns1123_subdomain(const char *s, size_t len)
{
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == '.') {
            if (!match_dns1123_label(s + start, i - start))
                return false;
            start = i + 1;
        }
    }
    return true;
}

/* ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9] */
static bool match_qualified_name(const char *s, size_t len)
{
    if (len == 0 || !is_alnum(s[0]) || !is_alnum(s[len - 1]))
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            return false;
    }
    return true;
}

static void check_subdomain(why_t *w, const char *prefix, const char *s, size_t len)
{
    if (len > DNS1123_SUBDOMAIN_MAX)
        why_maxlen(w, prefix, DNS1123_SUBDOMAIN_MAX);
    if (!match_dns1123_subdomain(s, len))
        why_add(w, prefix, DNS1123_SUBDOMAIN_MSG);
}

bool drv_name_dns_label(const char *s, char *why, size_t whysz)
{
    why_t w;
    why_init(&w, why, whysz);
    if (s == NULL)
        s = "";
    size_t len = strlen(s);
    if (len > DNS1123_LABEL_MAX)
        why_maxlen(&w, "", DNS1123_LABEL_MAX);
    if (!match_dns1123_label(s, len)) {
        /* A valid subdomain of the right length can only be wrong by its dots. */
        if (match_dns1123_subdomain(s, len))
            why_add(&w, "", "must not contain dots");
        else
            why_add(&w, "", DNS1123_LABEL_MSG);
    }
    return !w.any;
}

bool drv_name_dns_subdomain(const char *s, char *why, size_t whysz)
{
    why_t w;
    why_init(&w, why, whysz);
    if (s == NULL)
        s = "";
    check_subdomain(&w, "", s, strlen(s));
    return !w.any;
}

bool drv_name_dns1035_label(const char *s, char *why, size_t whysz)
{
    why_t w;
    why_init(&w, why, whysz);
    if (s == NULL)
        s = "";
    size_t len = strlen(s);
    if (len > DNS1035_LABEL_MAX)
        why_maxlen(&w, "", DNS1035_LABEL_MAX);
    if (!match_dns1123_label(s, len) || !(s[0] >= 'a' && s[0] <= 'z'))
        why_add(&w, "", DNS1035_LABEL_MSG);
    return !w.any;
}

bool drv_name_label_key(const char *s, char *why, size_t whysz)
{
    why_t w;
    why_init(&w, why, whysz);
    if (s == NULL)
        s = "";
    const char *slash = strchr(s, '/');
    const char *name = s;
    if (slash != NULL) {
        if (strchr(slash + 1, '/') != NULL) {
            why_add(&w, "", LABEL_KEY_MSG);
            return false;
        }
        size_t plen = (size_t)(slash - s);
        if (plen == 0)
            why_add(&w, "prefix part ", "must be non-empty");
        else
            check_subdomain(&w, "prefix part ", s, plen);
        name = slash + 1;
    }
    size_t len = strlen(name);
    if (len == 0)
        why_add(&w, "name part ", "must be non-empty");
    else if (len > LABEL_NAME_MAX)
        why_maxlen(&w, "name part ", LABEL_NAME_MAX);
    if (!match_qualified_name(name, len))
        why_add(&w, "name part ", LABEL_KEY_RULE);
    return !w.any;
}

bool drv_name_label_value(const char *s, char *why, size_t whysz)
{
    why_t w;
    why_init(&w, why, whysz);
    if (s == NULL)
        s = "";
    size_t len = strlen(s);
    if (len > LABEL_VALUE_MAX)
        why_maxlen(&w, "", LABEL_VALUE_MAX);
    if (len > 0 && !match_qualified_name(s, len))
        why_add(&w, "", LABEL_VALUE_MSG);
    return !w.any;
}

bool drv_name_port_name(const char *s, char *why, size_t whysz)
{
    why_t w;
    why_init(&w, why, whysz);
    if (s == NULL)
        s = "";
    size_t len = strlen(s);
    bool charset = len > 0;
    bool letter = false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] >= 'a' && s[i] <= 'z')
            letter = true;
        else if (!(s[i] >= '0' && s[i] <= '9') && s[i] != '-')
            charset = false;
    }
    if (len > PORT_NAME_MAX)
        why_maxlen(&w, "", PORT_NAME_MAX);
    if (!charset)
        why_add(&w, "", "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
    if (!letter)
        why_add(&w, "", "must contain at least one letter (a-z)");
    if (strstr(s, "--") != NULL)
        why_add(&w, "", "must not contain consecutive hyphens");
    if (len > 0 && (s[0] == '-' || s[len - 1] == '-'))
        why_add(&w, "", "must not begin or end with a hyphen");
    return !w.any;
}

bool drv_name_config_key(const char *s, char *why, size_t whysz)
{
    why_t w;
    why_init(&w, why, whysz);
    if (s == NULL)
        s = "";
    size_t len = strlen(s);
    bool charset = len > 0;
    for (size_t i = 0; i < len; i++) {
        if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            charset = false;
    }
    if (len > CONFIG_KEY_MAX)
        why_maxlen(&w, "", CONFIG_KEY_MAX);
    if (!charset)
        why_add(&w, "", CONFIG_KEY_MSG);
    /* Like Kubernetes, also refuse a ".." prefix: the mounted volume keeps "..data" there. */
    if (strcmp(s, ".") == 0)
        why_add(&w, "", "must not be '.'");
    else if (strcmp(s, "..") == 0)
        why_add(&w, "", "must not be '..'");
    else if (strncmp(s, "..", 2) == 0)
        why_add(&w, "", "must not start with '..'");
    return !w.any;
}

bool drv_name_env_var(const char *s, char *why, size_t whysz)
{
    why_t w;
    why_init(&w, why, whysz);
    if (s == NULL || s[0] == '\0') {
        why_add(&w, "", "environment variable name must be non-empty");
        return false;
    }
    for (const char *p = s; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c > 0x7e || c == '=') {
            why_add(&w, "", ENV_VAR_MSG);
            break;
        }
    }
    return !w.any;
}

bool drv_name_node_is_pattern(const char *s)
{
    return s != NULL && strchr(s, '{') != NULL;
}

bool drv_name_node_pattern(const char *s, char *why, size_t whysz)
{
    static const char placeholders[][11] = {"{serial}", "{hostname}", "{mac}"};
    why_t w;
    why_init(&w, why, whysz);
    if (s == NULL)
        s = "";
    /* The name with every placeholder one character long: the shortest it can be. */
    char sample[DNS1123_SUBDOMAIN_MAX + 2];
    size_t n = 0;
    for (const char *p = s; *p != '\0'; p++) {
        if (n + 1 >= sizeof(sample)) {
            why_maxlen(&w, "", DRV_NAME_NODE_MAX);
            return false;
        }
        if (*p == '}') {
            why_add(&w, "", "'}' without its '{'");
            return false;
        }
        if (*p != '{') {
            sample[n++] = *p;
            continue;
        }
        const char *end = strchr(p, '}');
        if (end == NULL) {
            why_add(&w, "", "'{' without its '}'");
            return false;
        }
        bool known = false;
        for (size_t i = 0; i < sizeof(placeholders) / sizeof(placeholders[0]); i++)
            known = known || ((size_t)(end - p + 1) == strlen(placeholders[i]) &&
                              strncmp(p, placeholders[i], strlen(placeholders[i])) == 0);
        if (!known) {
            char msg[160];
            drv_fmt_cut(msg, sizeof(msg), "unknown placeholder '%.*s': a pattern may use %s",
                        (int)(end - p + 1 < 32 ? end - p + 1 : 32), p, DRV_NAME_NODE_PLACEHOLDERS);
            why_add(&w, "", msg);
            return false;
        }
        sample[n++] = '0';
        p = end;
    }
    sample[n] = '\0';
    if (n > DRV_NAME_NODE_MAX) {
        why_maxlen(&w, "", DRV_NAME_NODE_MAX);
        return false;
    }
    char sub[512];
    if (!drv_name_dns_subdomain(sample, sub, sizeof(sub)))
        why_add(&w, "", sub);
    return !w.any;
}

bool drv_name_runtime_id(const char *s, size_t max)
{
    if (s == NULL || s[0] == '\0' || strlen(s) > max)
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (p == s || (c != '_' && c != '.' && c != '-')))
            return false;
    }
    return true;
}
