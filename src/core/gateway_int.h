/* Internals shared by gateway.c, connector_host.c and router.c. */
#ifndef TBGW_CORE_GATEWAY_INT_H
#define TBGW_CORE_GATEWAY_INT_H

#include <pthread.h>
#include <stdint.h>
#include <tbgw/connector.h>
#include <uv.h>

#include "core/config.h"
#include "core/devices.h"
#include "core/report.h"
#include "core/stats.h"
#include "platform/rate_limit.h"
#include "platform/tb_client.h"
#include "storage/storage.h"
#include "util/backoff.h"
#include "util/buf.h"

typedef struct conn_inst conn_inst;

/* connector thread -> core */
typedef enum in_kind { IN_DATA, IN_DEV_CONNECT, IN_DEV_DISCONNECT, IN_RPC_REPLY, IN_ATTR_REQUEST } in_kind;

typedef struct in_item {
    struct in_item *next;
    in_kind kind;
    conn_inst *inst;
    tbgw_converted *data;
    char *device, *type;
    uint64_t handle, cookie;
    json_t *json;
    int success, client;
    size_t weight;
} in_item;

/* core -> connector thread */
typedef enum dn_kind { DN_ATTR_UPDATE, DN_RPC, DN_ATTR_RESPONSE } dn_kind;

typedef struct dn_item {
    struct dn_item *next;
    dn_kind kind;
    char *device, *method;
    json_t *data, *params;
    uint64_t handle, cookie;
    int64_t id, timeout_ms;
} dn_item;

struct conn_inst {
    tbgw_host host; /* first member: a host pointer is the instance pointer */
    struct tbgw_gateway *gw;
    const tbgw_connector_ops *ops;
    void *self;
    tbgw_conn_entry *entry;
    pthread_t thread;
    int thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    dn_item *inbox_head, *inbox_tail;
    size_t inbox_len;
    int efd;       /* host.downlink_fd: an eventfd, readable while the inbox is non-empty or stop is set */
    int efd_armed; /* under mu: efd holds a count (readable) */
    int stop;      /* set under mu */
    int finished;  /* thread left its loop */
    tbgw_conn_state state;
    char last_error[256];
    uint64_t stats[TBGW_STAT__COUNT];           /* atomic adds */
    uint64_t storage_pushed, stats_prev_pushed; /* records of its devices appended to storage (core thread) */
    uint64_t events_sent; /* records of its devices the platform acknowledged (core thread) */
    unsigned restarts;
    int owns_entry;                         /* entry was created at run time (remote configuration) */
    int64_t file_mtime;                     /* connector file watch (checkConnectorsConfigurationInSeconds) */
    uint64_t stats_total[TBGW_STAT__COUNT]; /* core thread: what statistics reset so far (metrics) */
};

/* connector_host.c */
conn_inst *tbgw_conn_new(struct tbgw_gateway *gw, tbgw_conn_entry *e, const char *config_dir, tbgw_err *err);
int tbgw_conn_start(conn_inst *ci);
/* Asks the connector to stop and joins its thread (waits at most timeout_ms; 0 if joined). */
int tbgw_conn_stop(conn_inst *ci, int timeout_ms);
void tbgw_conn_free(conn_inst *ci);
/* Queues downlink work for the connector (takes ownership of it). */
void tbgw_conn_post(conn_inst *ci, dn_item *it);
void tbgw_dn_free(dn_item *it);
const char *tbgw_conn_state_name(tbgw_conn_state st);
void tbgw_conn_state_get(conn_inst *ci, tbgw_conn_state *st, char *err, size_t errlen);

/* A pack being published: committed once every message of it was acknowledged. */
/* How many records of a pack each connector produced (for "<name>EventsSent"). */
typedef struct conn_count {
    void *ci; /* conn_inst; checked against gw->conns before use */
    uint64_t n;
} conn_count;

typedef struct flight {
    struct flight *next;
    tbgw_pack pack;
    int *mids;
    size_t n_mids, pending;
    conn_count *by_conn;
    size_t n_by_conn;
} flight;

/* Encoded messages of one pack. */
typedef struct msg_vec {
    tbgw_buf topics, payloads; /* concatenated, NUL-terminated each */
    size_t n, cap;
    struct {
        size_t t, p, len;
        uint32_t dp;
        int tel;
    } * m;
} msg_vec;

typedef struct staged_pack {
    int active;
    tbgw_pack pack;
    msg_vec mv;
    conn_count *by_conn;
    size_t n_by_conn;
} staged_pack;

/* An RPC waiting for its connector's reply (or for its device to appear). */
typedef struct pending_rpc {
    struct pending_rpc *next;
    uint64_t handle;
    char *device; /* platform name; NULL for the gateway's own RPC */
    int64_t id;
    int64_t deadline; /* monotonic ms */
    dn_item *waiting; /* not yet dispatched: device unknown so far */
} pending_rpc;

typedef struct pending_attr {
    struct pending_attr *next;
    int64_t id;
    conn_inst *inst;
    uint64_t cookie;
    char *device; /* connector-side name */
    json_t *keys;
    int64_t deadline;
} pending_attr;

/* Limits applied to one class of traffic: [0] messages, [1] telemetry+attribute messages, [2] datapoints */
typedef struct traffic_limits {
    tb_limit l[3];
} traffic_limits;

typedef struct tbgw_counters {
    uint64_t events_produced, events_sent, msgs_pushed, msgs_received, attr_produced, ts_produced;
    uint64_t storage_drops, ingress_drops, bad_records, downlink_errors;
    uint64_t ingress_refused; /* batches offered while the ingress queue was full (kept by their connector) */
    uint64_t records_appended; /* records storage accepted */
} tbgw_counters;

struct tbgw_gateway {
    tbgw_config *cfg;
    char **argv;
    uv_loop_t loop;
    uv_async_t async;
    uv_signal_t sig_term, sig_int;
    uv_timer_t tick_timer, pump_timer, stats_timer, custom_timer;
    uv_work_t custom_work; /* custom statistics commands run in the thread pool */
    json_t *custom_cmds, *custom_result;
    int custom_busy;
    uv_prepare_t prepare;
    tb_client *tb;
    tbgw_storage *st;
    size_t pack_size;
    tbgw_devices devs;
    tbgw_report *report;
    conn_inst **conns;
    size_t n_conns;
    /* ingress */
    pthread_mutex_t in_mu;
    in_item *in_head, *in_tail;
    size_t in_weight, in_cap;
    int stop_requested; /* atomic */
    /* platform session */
    int ready, limits_once;
    int64_t limits_req_id, limits_deadline;
    int64_t own_req_counter, attr_req_counter, own_attr_req_counter;
    int64_t next_file_check;
    int64_t tick_at;    /* monotonic ms the tick timer is armed for (0 = not armed) */
    int64_t trim_at;    /* heap trim due (0 = none): after a burst was delivered */
    int64_t trim_since; /* when that trim became due (bounds how long it waits for a pause) */
    uint64_t trim_mark; /* cnt.events_sent at the last trim */
    size_t max_payload;
    size_t max_inflight, inflight_msgs;
    traffic_limits dev_limits, own_limits;
    flight *fl_head, *fl_tail;
    staged_pack staged; /* read and encoded, waiting for rate-limit tokens */
    int pump_scheduled;
    /* downlink */
    uint64_t next_handle;
    pending_rpc *rpcs;
    pending_attr *attrs;
    /* lifecycle */
    int stopping, draining, restart_requested;
    int64_t drain_deadline;
    int64_t last_drop_log;
    tbgw_counters cnt;
    tbgw_cpu_sample cpu_prev;
    uint64_t stats_prev_committed, stats_prev_pushed;
    tbgw_logger *log, *slog;
    struct tbgw_mgmt *mgmt; /* core/mgmt.c: logging, filtering, inactivity, metrics, management RPCs */
};

/* router.c */
void tbgw_router_on_message(struct tbgw_gateway *gw, const char *topic, const void *payload, size_t len);
void tbgw_router_rpc_reply(struct tbgw_gateway *gw, in_item *it);
void tbgw_router_attr_request(struct tbgw_gateway *gw, in_item *it);
void tbgw_router_tick(struct tbgw_gateway *gw, int64_t now);
/* The earliest RPC or attribute request deadline (monotonic ms; INT64_MAX = none). */
int64_t tbgw_router_next_due(const struct tbgw_gateway *gw);
void tbgw_router_session_lost(struct tbgw_gateway *gw);
void tbgw_router_dispatch_waiting(struct tbgw_gateway *gw, const char *device);
void tbgw_router_free(struct tbgw_gateway *gw);
/* gateway.c services used by the router */
int tbgw_gw_publish(struct tbgw_gateway *gw, const char *topic, const char *payload, size_t len, int qos);
void tbgw_gw_apply_session_limits(struct tbgw_gateway *gw, const json_t *resp);
void tbgw_gw_request_stop(struct tbgw_gateway *gw, int restart);
void tbgw_gw_publish_connect(struct tbgw_gateway *gw, tbgw_device *d);
void tbgw_gw_publish_disconnect(struct tbgw_gateway *gw, const char *name);
/* Stores a record of the gateway's own device (v1/devices/me/...). */
void tbgw_gw_store_own_converted(struct tbgw_gateway *gw, const tbgw_converted *c);
/* Stores gateway-own attributes (telemetry=0) or telemetry (1) from a JSON object. */
void tbgw_gw_store_own(struct tbgw_gateway *gw, json_t *values, int telemetry);
/* Processes everything connectors queued so far (before an instance is freed: queued items
 * point to it and to its configuration). */
void tbgw_gw_drain_ingress(struct tbgw_gateway *gw);
/* A device whose connector is gone: v1/gateway/disconnect and forget it. */
void tbgw_gw_device_gone(struct tbgw_gateway *gw, const char *name);
/* RemoteLoggingLevel shared attribute. */
void tbgw_gw_remote_logging(struct tbgw_gateway *gw, const json_t *level);

/* remote.c */
void tbgw_remote_publish_all(struct tbgw_gateway *gw);
void tbgw_remote_on_ready(struct tbgw_gateway *gw);
void tbgw_remote_on_attributes(struct tbgw_gateway *gw, const json_t *shared);
void tbgw_remote_check_files(struct tbgw_gateway *gw);
int tbgw_remote_apply_connector(struct tbgw_gateway *gw, const char *name, const char *type,
                                const json_t *cfg, const char *file, const char *klass, int write_files,
                                char *errbuf, size_t errlen);

/* gateway.c: the ingress queue (thread-safe). Takes ownership of it; TBGW_EAGAIN when full. */
/* keep: a refused IN_DATA item's records stay with the caller (host->offer) */
int tbgw_gw_ingress_push(struct tbgw_gateway *gw, in_item *it, int keep);
void tbgw_in_free(in_item *it);

#endif
