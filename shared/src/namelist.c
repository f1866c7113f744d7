/* Name lists (drover/namelist.h): lookups in the NUL-separated tables that replace arrays of
 * string pointers in the device agent. */
#include <string.h>

#include "drover/namelist.h"

int drv_namelist_index(const char *list, const char *s)
{
    if (!list || !s)
        return -1;
    int i = 0;
    for (const char *n = list; *n; n += strlen(n) + 1, i++)
        if (!strcmp(n, s))
            return i;
    return -1;
}

bool drv_namelist_has(const char *list, const char *s)
{
    return drv_namelist_index(list, s) >= 0;
}

const char *drv_namelist_at(const char *list, size_t i)
{
    if (!list)
        return NULL;
    for (const char *n = list; *n; n += strlen(n) + 1)
        if (i-- == 0)
            return n;
    return NULL;
}

const char *drv_namelist_next(const char *name)
{
    name += strlen(name) + 1;
    return *name ? name : NULL;
}
