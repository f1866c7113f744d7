/* Kubernetes resource quantities: "250m", "2", "0.5" CPU and "64Mi", "1G", "512k", "1e3"
 * memory. Values are exact integers (millicores, bytes); fractions round up like Kubernetes'.
 * Negative, malformed and overflowing input is rejected. */
#ifndef DROVER_QUANTITY_H
#define DROVER_QUANTITY_H

#include <stdint.h>
#include <stddef.h>
#include "drover/error.h"

/* The suffix family a quantity was written in; canonical output keeps it (as Kubernetes does). */
typedef enum { DRV_QTY_DECIMAL = 0, DRV_QTY_BINARY, DRV_QTY_EXPONENT } drv_qty_format_t;

/* Largest accepted value in either unit (2^62): beyond any real device, far from overflow. */
#define DRV_QTY_MAX ((int64_t)1 << 62)

/* Parses a CPU quantity into millicores, or a memory quantity into bytes.
 * fmt may be NULL. On error err (may be NULL) says what is wrong with s. */
DRV_API DRV_NODISCARD drv_err_t drv_qty_parse_cpu(const char *s, int64_t *millicores,
                                                  drv_qty_format_t *fmt, drv_error_t *err);
DRV_API DRV_NODISCARD drv_err_t drv_qty_parse_memory(const char *s, int64_t *bytes,
                                                     drv_qty_format_t *fmt, drv_error_t *err);

/* Canonical text: CPU as "2" or "250m"; memory in the largest suffix of its family that
 * divides it exactly ("64Mi", "1G", "1500"); a binary value that no binary suffix divides
 * falls back to decimal suffixes, like Kubernetes. Fails with DRV_ERR_TOOBIG if out is short. */
DRV_API DRV_NODISCARD drv_err_t drv_qty_format_cpu(int64_t millicores, char *out, size_t outsz);
DRV_API DRV_NODISCARD drv_err_t drv_qty_format_memory(int64_t bytes, drv_qty_format_t fmt,
                                                      char *out, size_t outsz);

#endif
