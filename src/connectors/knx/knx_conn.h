/* Internals of the KNX connector (spec connectors.md §9): parsed configuration and runtime state. */
#ifndef TBGW_CONNECTORS_KNX_CONN_H
#define TBGW_CONNECTORS_KNX_CONN_H

#include <jansson.h>
#include <stdatomic.h>
#include <tbgw/connector.h>

#include "convert/source_expr.h"
#include "proto/knx/knx_client.h"
#include "proto/knx/knx_dpt.h"
#include "util/buf.h"

#define KX_MAX_NAME_GA 8

/* A device name/type: constant text, or text with ${group address} placeholders read from the bus. */
typedef struct kx_tmpl {
    char *text;
    int is_expr;
    size_t n_ga;
    uint16_t ga[KX_MAX_NAME_GA];
    const knx_dpt *dpt; /* how placeholder values decode (NULL: placeholders stay) */
} kx_tmpl;

typedef struct kx_point {
    char *key;
    uint16_t ga;
    const knx_dpt *dpt;
    int is_attr;
    tbgw_report_strategy rs;
    int has_rs;
} kx_point;

typedef struct kx_device {
    kx_tmpl name, type;
    int64_t poll_ms;
    kx_point *points;
    size_t n_points;
    tbgw_report_strategy rs;
    int has_rs;
    uint16_t *gas; /* distinct addresses read per poll: name/type placeholders first */
    size_t n_gas;
    /* runtime */
    int64_t next_poll, poll_deadline;
    int polling;
    uint16_t gen;             /* poll generation: outcomes of an earlier poll's reads are ignored */
    size_t reads_unconfirmed; /* reads of this poll not yet confirmed by the gateway */
    uint8_t *answered;        /* per gas[]: answered (or failed) in this poll */
    int64_t poll_ts;
} kx_device;

/* attributeUpdates[] / serverSideRpc[] entries. */
typedef struct kx_write {
    tbgw_regex *filter;
    char *key;    /* attribute key or RPC method */
    int is_write; /* RPC requestType */
    uint16_t ga;
    const knx_dpt *dpt;
} kx_write;

/* One address somebody listens to, with the last value seen on the bus. */
typedef struct kx_ga {
    uint16_t ga;
    int has_value;
    knx_payload last;
} kx_ga;

/* An RPC waiting for its telegram's confirmation and, for reads, the response. */
typedef struct kx_rpc {
    struct kx_rpc *next;
    uint64_t id, handle;
    uint16_t ga;
    const knx_dpt *dpt;
    int is_read, sent;
    int64_t deadline;
    char *written; /* repr of the written value */
} kx_rpc;

typedef struct kx {
    const tbgw_host *host;
    knx_client_cfg ccfg;
    knx_ga_style ga_style;
    kx_device *devices;
    size_t n_devices;
    kx_write *attr_updates, *rpcs;
    size_t n_attr_updates, n_rpcs;
    kx_ga *gas; /* sorted by address */
    size_t n_gas;
    int64_t read_timeout_ms; /* response wait after a GroupValueRead (2000) */
    /* runtime */
    knx_client *client;
    atomic_int stop;
    kx_rpc *pending;
    uint64_t next_rpc_id;
    int connected;
    tbgw_conn_state state;
    char last_error[256];
    uint64_t undecodable;
    int64_t warn_at, queue_warn_at;
    uint64_t warn_suppressed;
} kx;

/* knx_config.c */
int kx_config_parse(kx *k, const json_t *cfg, tbgw_err *err);
void kx_config_free(kx *k);
kx_ga *kx_ga_find(kx *k, uint16_t ga);

/* knx_uplink.c */
void kx_poll_due(kx *k, int64_t now);
int64_t kx_poll_next_ms(const kx *k, int64_t now);
void kx_on_telegram(kx *k, const knx_ldata *ld);
void kx_poll_sent(kx *k, size_t dev, uint32_t gen_gi, int ok);
void kx_polls_reset(kx *k);
/* str() of a decoded value as Python prints it (strings raw). */
void kx_value_str(const tbgw_value *v, tbgw_buf *out);
/* repr(): strings quoted. */
void kx_value_repr(const tbgw_value *v, tbgw_buf *out);
/* Rate-limited warning about a telegram that did not decode. */
void kx_warn_undecodable(kx *k, uint16_t ga, const knx_dpt *d, const knx_payload *p, const char *who);

/* knx_downlink.c */
int kx_on_attribute_update(kx *k, const tbgw_attr_update *u);
int kx_on_rpc(kx *k, const tbgw_rpc_req *r);
void kx_rpc_sent(kx *k, uint64_t id, int ok, const char *why);
void kx_rpc_telegram(kx *k, const knx_ldata *ld);
void kx_rpc_expire(kx *k, int64_t now);
/* Milliseconds until the next sent RPC times out (INT64_MAX: none). */
int64_t kx_rpc_next_ms(const kx *k, int64_t now);
void kx_rpc_fail_all(kx *k, const char *why);

/* Tags of queued telegrams. */
#define KX_TAG_POLL  1u
#define KX_TAG_RPC   2u
#define KX_TAG_WRITE 3u
static inline uint64_t kx_tag(unsigned kind, uint64_t a, uint64_t b) {
    return (uint64_t)kind << 56 | (a & 0xFFFFFFu) << 32 | (b & 0xFFFFFFFFu);
}

#endif
