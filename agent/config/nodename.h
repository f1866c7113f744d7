/* Node name patterns: a nodeName such as "pi-{serial}" is filled from the device at the
 * agent's first start and kept, so that one image flashed onto many cards gives each its own
 * name, and a name never changes afterwards (its certificate's CN, its MQTT client id).
 *
 * Placeholders (each value lower-cased and made a DNS label: runs of other characters become
 * one '-', none at either end):
 *   {serial}    the board's serial number: /proc/device-tree/serial-number, else
 *               /sys/firmware/devicetree/base/serial-number, else the "Serial" line of
 *               /proc/cpuinfo (Raspberry Pi), an all-zero one skipped; else /etc/machine-id
 *               (per installation, not per board: two cards cloned after their first boot
 *               share it)
 *   {hostname}  the host name's first label (/proc/sys/kernel/hostname)
 *   {mac}       the hardware address of the first physical network interface by name
 *               (/sys/class/net/<if>/device exists), 12 hex digits without ':'
 *
 * The state file, <stateDir>/node-name.json (mode 0600, written crash-safely, read here):
 *   {"version": 1, "pattern": "pi-{serial}", "nodeName": "pi-10000000a1b2c3d4",
 *    "source": "/proc/device-tree/serial-number"}
 * version 1 is the only one. At most 4 KiB. The name in it is used as long as "pattern" is
 * the configured nodeName; a changed pattern is filled again (and logged). A file that is not
 * JSON, has another version, or holds an invalid name is moved aside to node-name.json.bad,
 * logged as an error, and the name is filled again from the device. */
#ifndef DROVER_AGENT_NODENAME_H
#define DROVER_AGENT_NODENAME_H

#include <stddef.h>

#include "config/config.h"
#include "drover/error.h"

#define DRV_NODENAME_STATE_FILE "node-name.json"
#define DRV_NODENAME_STATE_MAX 4096

typedef struct drv_nodename_state {
    char pattern[64];
    char node_name[64];
    char source[160];
} drv_nodename_state_t;

/* Parses and checks a state file's text (len bytes, need not be NUL-terminated).
 * DRV_ERR_INVALID naming the bad field; *out untouched on failure. */
DRV_NODISCARD drv_err_t drv_nodename_state_parse(const char *text, size_t len,
                                                 drv_nodename_state_t *out, drv_error_t *err);

/* Fills pattern from the device whose "/" is root ("" for this machine; tests pass a directory)
 * into out (DRV_NAME_NODE_MAX + 1 bytes); source (may be NULL) gets where the values came from.
 * Errors name nodeName and say what is missing or too long. */
DRV_NODISCARD drv_err_t drv_nodename_fill(const char *pattern, const char *root, char *out,
                                          size_t outsz, char *source, size_t sourcesz,
                                          drv_error_t *err);

/* When cfg->node_name_pattern is set: takes the name kept in <stateDir>/node-name.json for
 * that pattern, or fills it and keeps it there (creating stateDir, 0700), and sets
 * cfg->node_name. Nothing to do for a literal name. */
DRV_NODISCARD drv_err_t drv_nodename_resolve(drv_agent_config_t *cfg, const char *root,
                                             drv_error_t *err);

#endif
