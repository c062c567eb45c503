/* MQTT connector internals (spec §7.1): configuration model, connector state, request handling. */
#ifndef TBGW_MQTT_INTERNAL_H
#define TBGW_MQTT_INTERNAL_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdint.h>
#include <tbgw/connector.h>
#include "convert/bytes_conv.h"
#include "convert/custom_conv.h"
#include "convert/expr.h"
#include "convert/json_conv.h"
#include "convert/source_expr.h"
#include "proto/mqtt/mqtt_session.h"
#include "util/backoff.h"
#include "util/buf.h"

typedef enum mq_conv_kind { MQ_CONV_JSON, MQ_CONV_BYTES, MQ_CONV_CUSTOM } mq_conv_kind;

typedef struct mq_mapping {
    char *topic_filter; /* as subscribed (may carry $share/<group>/) */
    int qos;
    mq_conv_kind kind;
    int disabled; /* custom converter not found: logged at start, mapping ignored */
    tbgw_json_conv *json;
    tbgw_bytes_conv *bytes;
    tbgw_custom_conv *custom;
} mq_mapping;

typedef struct mq_dev_req { /* connectRequests / disconnectRequests */
    char *topic_filter;
    tbgw_devinfo *dev;
} mq_dev_req;

typedef struct mq_attr_req {
    char *topic_filter;
    tbgw_devinfo *dev;
    tbgw_src name_src;
    tbgw_expr *name_expr;  /* message / constant */
    tbgw_regex *name_re;   /* topic */
    char *scope;           /* "shared" | "client" | a template such as "${scope}" */
    tbgw_expr *scope_expr; /* when scope is a template */
    tbgw_expr *topic_expr, *value_expr;
    int retain, qos;
} mq_attr_req;

typedef struct mq_attr_upd {
    tbgw_regex *dev_filter, *attr_filter;
    tbgw_expr *topic_expr, *value_expr;
    int retain, qos;
} mq_attr_upd;

typedef struct mq_rpc_cfg {
    tbgw_regex *dev_filter, *method_filter;
    tbgw_expr *req_topic, *resp_topic, *value;
    int64_t timeout_ms; /* 0 = none */
    int resp_qos, retain, qos;
} mq_rpc_cfg;

typedef struct mq_config {
    char *host;
    int port;
    char *client_id;
    int version; /* 3, 4 or 5 */
    int keepalive;
    int clean_session, clean_start;
    int64_t session_expiry;
    /* security */
    char *username, *password;
    int tls, tls_insecure;
    char *ca_cert, *cert, *key;
    /* mapping and requests */
    mq_mapping *maps;
    size_t n_maps;
    mq_dev_req *connects, *disconnects;
    size_t n_connects, n_disconnects;
    mq_attr_req *attr_reqs;
    size_t n_attr_reqs;
    mq_attr_upd *attr_upds;
    size_t n_attr_upds;
    mq_rpc_cfg *rpcs;
    size_t n_rpcs;
} mq_config;

/* Pending two-way RPC waiting for its response topic. */
typedef struct mq_pending_rpc {
    struct mq_pending_rpc *next;
    uint64_t handle;
    char *topic;
    int64_t deadline; /* monotonic ms */
} mq_pending_rpc;

/* Pending attribute request (cookie -> request config + keys). */
typedef struct mq_pending_attr {
    struct mq_pending_attr *next;
    uint64_t cookie;
    size_t req; /* index into attr_reqs */
    char *device;
    char **keys;
    size_t n_keys;
    int64_t deadline;
} mq_pending_attr;

/* Names of topics whose malformed payloads were already logged (logged once per topic). */
typedef struct mq_seen {
    char **topics;
    size_t n, cap;
    uint64_t suppressed;
} mq_seen;

typedef struct mq_conn {
    const tbgw_host *host;
    mq_config cfg;
    mqtt_session sess;
    int sess_ready; /* sess initialised (TLS context loaded) */
    atomic_int stop;
    int connected;
    tbgw_backoff backoff;
    int64_t next_connect; /* monotonic ms */
    tbgw_connector_status st;
    mq_pending_rpc *rpcs;
    mq_pending_attr *attrs;
    uint64_t next_cookie;
    char **devices; /* connected through connectRequests */
    size_t n_devices, cap_devices;
    mq_seen seen;
    tbgw_converted *batch; /* records collected for the next emit */
    tbgw_converted **batch_tail;
    size_t batch_n;
    int64_t batch_since_us;   /* monotonic time the oldest record of the batch was converted */
    int gathering;            /* a short burst left records: the socket waits for the window's end */
    int64_t read_pause_until; /* monotonic ms: the core was saturated, let the broker hold messages */
    uint64_t saturated;       /* emits refused by the core */
    int held;                 /* the batch was refused: kept, offered again after read_pause_until */
    int refused;              /* the broker refused the CONNECT: its reason stays the state's text */
    tbgw_buf scratch;
} mq_conn;

/* mqtt_config.c */
int mq_config_parse(mq_config *cfg, const json_t *json, const tbgw_host *host, tbgw_err *err);
void mq_config_free(mq_config *cfg);
/* Converts old-format configurations (spec §7.1) into the current one; returns a new reference. */
json_t *mq_config_adapt(const json_t *in);

/* mqtt_requests.c */
int mq_handle_requests(mq_conn *c, const char *topic, const uint8_t *payload, size_t len);
int mq_handle_rpc_response(mq_conn *c, const char *topic, const uint8_t *payload, size_t len);
void mq_check_timeouts(mq_conn *c);
void mq_pending_free(mq_conn *c);
int mq_on_attribute_update(void *self, const tbgw_attr_update *u);
int mq_on_rpc(void *self, const tbgw_rpc_req *r);
int mq_on_attribute_response(void *self, uint64_t cookie, const char *device, const json_t *data);

/* mqtt_connector.c */
int mq_publish(mq_conn *c, const char *topic, const char *payload, size_t len, int qos, int retain);
int mq_subscribe(mq_conn *c, const char *topic, int qos);
void mq_unsubscribe(mq_conn *c, const char *topic);
/* Logs a malformed-payload problem once per topic and counts it. */
void mq_malformed(mq_conn *c, const char *topic, const char *what);

#endif
