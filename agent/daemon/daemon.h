/* The agent's long-running mode: one event loop over signals, the static-pod manifest
 * directory, the pod supervisor and, with hub.broker set, the MQTT link to the hub (link/);
 * what runs is the union of the static manifests and the hub's desired state. The observed
 * state is written to <run_dir>/status.json whenever it changes (tmpfs: no SD-card wear) and
 * reported to the hub. Stopping the agent never stops pods. */
#ifndef DROVER_AGENT_DAEMON_H
#define DROVER_AGENT_DAEMON_H

#include <cjson/cJSON.h>
#include "config/config.h"
#include "drover/error.h"

/* Runs until SIGTERM or SIGINT. */
DRV_NODISCARD drv_err_t drv_daemon_run(const drv_agent_config_t *cfg, drv_error_t *err);

/* Stops every pod the agent left running, gracefully (SIGTERM, SIGKILL after the pod's
 * terminationGracePeriodSeconds; then its sandbox, volumes and files), and returns when none
 * is left. Only while no agent runs on the same directories: drover-agent stop-pods, which
 * drover-agent.service runs when the unit is stopped for good. The saved desired state is
 * emptied; the static manifests and the hub's saved document (hub-desired.json) bring the pods
 * back when the agent starts again. */
DRV_NODISCARD drv_err_t drv_daemon_stop_pods(const drv_agent_config_t *cfg, drv_error_t *err);

/* Reads the static pods, ConfigMaps and Secrets in dir into a desired-state object
 * {"pods", "configMaps", "secrets"}; pods get a stable uid derived from their content and
 * spec.nodeName = node. Invalid documents are skipped and described in *problems (a JSON
 * array of strings, caller frees). Returns NULL only when out of memory. */
cJSON *drv_daemon_load_manifests(const char *dir, const char *node, cJSON **problems);

#endif
