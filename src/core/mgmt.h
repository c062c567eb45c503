/* Gateway management on the core thread: remote logging (RemoteLoggingLevel) and error counters
 * (spec §1.9), device filtering (§1.12), device inactivity (§1.11), the metrics endpoint, and the
 * gateway_reboot / remote shell RPCs (§1.8). Hooks called by gateway.c and router.c. */
#ifndef TBGW_CORE_MGMT_H
#define TBGW_CORE_MGMT_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "core/config.h"

struct tbgw_gateway;
struct conn_inst;

/* Creates gw->mgmt (loads the device filter list). Returns 0, or an error already logged. */
int tbgw_mgmt_new(struct tbgw_gateway *gw);
/* Starts what runs beside the loop (remote log sink, metrics server). */
void tbgw_mgmt_start(struct tbgw_gateway *gw);
void tbgw_mgmt_free(struct tbgw_gateway *gw);
/* Device filter: 1 when data (datapoints, 0 for a connect) of device from ci may pass; a drop is
 * counted and logged (rate-limited). */
int tbgw_mgmt_accept(struct tbgw_gateway *gw, struct conn_inst *ci, const char *device, size_t datapoints);
/* Every core tick (100 ms): remote log batches, error counters, inactivity, metrics snapshot. */
void tbgw_mgmt_tick(struct tbgw_gateway *gw, int64_t mono_now);
/* When tbgw_mgmt_tick has work next (monotonic ms; INT64_MAX = none). */
int64_t tbgw_mgmt_next_due(struct tbgw_gateway *gw, int64_t mono_now);
/* RemoteLoggingLevel changed (TBGW_NONE and above: off). */
void tbgw_mgmt_remote_level(struct tbgw_gateway *gw, int level);
/* Gateway RPCs handled here (gateway_reboot, remote shell). Returns 1 when handled (replied). */
int tbgw_mgmt_rpc(struct tbgw_gateway *gw, int64_t id, const char *method, const json_t *params);
/* --check-config: validates the filter list file and the metrics section. Returns the error count. */
int tbgw_mgmt_check(const tbgw_config *cfg, FILE *out);

/* Remote log telemetry key for a logger ("service" -> SERVICE_LOGS, "connector.X" -> X_LOGS);
 * NULL when the logger is not sent. Exposed for tests. */
const char *tbgw_mgmt_log_key(const char *logger, char *buf, size_t n);
#endif
