/* Private to agent/link/: the log-serving sessions (logs.c) the link drives. Chunks go out
 * through a send function so that the sessions are tested without a broker. */
#ifndef DROVER_AGENT_LINK_INT_H
#define DROVER_AGENT_LINK_INT_H

#include <stdbool.h>
#include <cjson/cJSON.h>

#include "config/config.h"
#include "drover/error.h"
#include "drover/protocol.h"

/* Publishes one logs/res chunk (borrowed) for request id; DRV_ERR_AGAIN = try again later,
 * nothing was sent. */
typedef drv_err_t (*drv_link_send_fn)(void *userdata, const char *id, const cJSON *chunk);

typedef struct drv_link_logs drv_link_logs_t;

drv_link_logs_t *drv_link_logs_new(const drv_agent_config_t *cfg, drv_link_send_fn send,
                                   void *userdata);
/* Ends every session with a final error chunk saying why (when why is not NULL), frees. */
void drv_link_logs_free(drv_link_logs_t *lg, const char *why);

/* A new request (or a cancel) from the hub; sv_status is the supervisor's latest status. */
void drv_link_logs_request(drv_link_logs_t *lg, const cJSON *sv_status,
                           const drv_proto_logs_req_t *req, long long now);
/* Sends what is due (a bounded amount per call); sv_status tells which pods still exist. */
void drv_link_logs_pump(drv_link_logs_t *lg, const cJSON *sv_status, long long now);
/* ms until drv_link_logs_pump has work; 1000 when idle. */
int drv_link_logs_next_wakeup(const drv_link_logs_t *lg, long long now);
/* Sessions open, and those of them that follow. */
unsigned drv_link_logs_count(const drv_link_logs_t *lg, unsigned *follows);

#endif
