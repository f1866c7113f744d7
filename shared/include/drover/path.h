/* Lexical path handling: joining a relative path under a root without ever leaving it.
 * Lexical only: symlinks on disk are not followed here (see the agent's confined unpacker for
 * that); these functions decide what a name means, not what the file system holds. */
#ifndef DROVER_PATH_H
#define DROVER_PATH_H

#include <stdbool.h>
#include <stddef.h>
#include "drover/error.h"

/* Normalises path lexically into out: collapses "//" and "/./", resolves ".." against earlier
 * components, drops a trailing "/". An absolute path stays absolute ("/.." is "/"); a relative
 * one whose ".." would climb above its start fails with DRV_ERR_INVALID. "" becomes ".". */
DRV_API DRV_NODISCARD drv_err_t drv_path_clean(const char *path, char *out, size_t outsz);

/* Joins rel under root: out = root + "/" + clean(rel), where rel is taken relative to root
 * even if it starts with "/", and any ".." that would climb above root fails with
 * DRV_ERR_INVALID. A result longer than outsz fails with DRV_ERR_TOOBIG. NUL or empty
 * root fails with DRV_ERR_INVALID. */
DRV_API DRV_NODISCARD drv_err_t drv_path_join(const char *root, const char *rel, char *out,
                                              size_t outsz);

/* True if the relative path, once cleaned, stays inside its start (no leading ".."). */
DRV_API bool drv_path_is_contained(const char *rel);

#endif
