/* Prometheus text endpoint (/metrics) and /healthz, served by the HTTP module (tbgw_http.so,
 * modules/http/http_module.h, loaded only when enabled; tbgw extension, off by default). The core thread
 * publishes a snapshot of its counters (tbgw_metrics_update, under a mutex); the HTTP thread renders only
 * from the latest snapshot. */
#ifndef TBGW_CORE_METRICS_H
#define TBGW_CORE_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <tbgw/connector.h>
#include <tbgw/err.h>

#include "util/buf.h"

#define TBGW_METRICS_MAX_CONNS 64

typedef struct tbgw_metrics_conn {
    char name[128], type[64];
    int state; /* tbgw_conn_state */
    unsigned restarts;
    uint64_t stats[TBGW_STAT__COUNT]; /* cumulative */
    uint64_t storage_pushed, events_sent;
} tbgw_metrics_conn;

typedef struct tbgw_metrics_snap {
    int platform_connected;
    uint64_t msgs_sent, msgs_received, events_produced;
    uint64_t storage_refused, ingress_dropped, bad_records, downlink_errors;
    uint64_t ingress_refused;
    uint64_t filtered_records, filtered_datapoints, log_errors;
    uint64_t storage_records, storage_bytes, storage_disk_bytes, storage_dropped, storage_appended,
        storage_committed;
    uint64_t inflight, devices;
    size_t n_conns;
    tbgw_metrics_conn conns[TBGW_METRICS_MAX_CONNS];
} tbgw_metrics_snap;

typedef struct tbgw_metrics tbgw_metrics;

/* Listens on host:port (port 0: any free port, see tbgw_metrics_port). NULL with err on failure. */
tbgw_metrics *tbgw_metrics_start(const char *host, int port, tbgw_err *err);
int tbgw_metrics_port(const tbgw_metrics *m);
void tbgw_metrics_update(tbgw_metrics *m, const tbgw_metrics_snap *s);
void tbgw_metrics_stop(tbgw_metrics *m);

/* Prometheus text exposition format 0.0.4 of a snapshot. */
void tbgw_metrics_render(const tbgw_metrics_snap *s, tbgw_buf *out);
/* Health: 1 when the platform session is up and no connector failed; reason JSON in out. */
int tbgw_metrics_health(const tbgw_metrics_snap *s, tbgw_buf *out);

#endif
