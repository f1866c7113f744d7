/* Name lists: constant tables of names written as one string literal, each name ended by its
 * NUL and an empty name last ("tcp://\0" "ssl://\0"; the literal's own NUL ends the list).
 * Not arrays of pointers: in a position-independent program every pointer in a table is a
 * relocation the loader fixes up at each start (24 bytes of it on arm64, plus the 8-byte
 * pointer), and the device agent had some 470 of them (issue 19: its size). A list cannot hold
 * the empty name. */
#ifndef DROVER_NAMELIST_H
#define DROVER_NAMELIST_H

#include <stdbool.h>
#include <stddef.h>
#include "drover/error.h"

/* The position of s in list, or -1 (also for a NULL list or s). */
DRV_API int drv_namelist_index(const char *list, const char *s);
/* Whether s is in list. */
DRV_API bool drv_namelist_has(const char *list, const char *s);
/* The name at position i, or NULL past the end. The pointer is into list. */
DRV_API const char *drv_namelist_at(const char *list, size_t i);
/* The next name after name (a pointer into a list), or NULL at the end: to walk a list,
 * for (const char *n = list; n; n = drv_namelist_next(n)) over a list that is not empty. */
DRV_API const char *drv_namelist_next(const char *name);

#endif
