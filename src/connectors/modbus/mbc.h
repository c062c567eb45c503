/* Internals of the Modbus connector: parsed configuration and runtime state. */
#ifndef TBGW_CONNECTORS_MBC_H
#define TBGW_CONNECTORS_MBC_H

#include <jansson.h>
#include <stdatomic.h>
#include <tbgw/connector.h>

#include "connectors/modbus/mb_value.h"
#include "convert/custom_conv.h"
#include "proto/modbus/mb_loop.h"
#include "util/backoff.h"
#include "util/hmap.h"

/* One value read by polling (timeseries or attribute; ranges are expanded into one point each). */
typedef struct mbc_point { /* packed: a slave of 10 registers has 10 */
    char *key;
    tbgw_report_strategy *rs;  /* the entry's own reportStrategy, NULL when it has none */
    const tbgw_mbv_spec *spec; /* shared by the points with an equal one (mbc.specs) */
    int block;                 /* index in the slave's blocks */
    uint16_t addr;
    uint16_t count;           /* 1..2000 */
    uint16_t max_per_request; /* limit on the block holding it */
    uint16_t block_off;       /* in registers or bits from the block start (< 2000) */
    uint8_t fc;
    uint8_t is_attr;
} mbc_point;

/* A merged read of adjacent addresses with one function code. */
typedef struct mbc_block {
    struct mbc_slave *sl;
    int fc;
    uint16_t addr, count;
    int done, status; /* per poll */
    uint8_t exception;
    int tries;
    int64_t last_warn; /* rate limit of this block's warnings */
    uint64_t suppressed;
    uint8_t *data; /* cap bytes (the answer to this block's read) in the slave's block_data */
    uint16_t cap, len;
} mbc_block;

/* An attributeUpdates or rpc entry (or an ad-hoc get/set). */
typedef struct mbc_write {
    char *tag;
    int fc;
    uint16_t addr;
    int count;
    tbgw_mbv_spec spec;
    char *error; /* an rpc entry the configuration could not use: the answer to every call of it */
} mbc_write;

typedef struct mbc_slave {
    struct mbc *m;
    tbgw_mb_endpoint ep;
    uint8_t unit;
    char *device_name, *device_type;
    int64_t poll_ms;
    int retries; /* extra attempts of a request: timeouts always, see retry_on_* */
    int retry_on_empty, retry_on_invalid;
    int repack; /* writes: registers unpacked with byteOrder (pymodbus BinaryPayloadBuilder repack) */
    int64_t attempt_ms, wait_after_ms;
    int attempt_count;
    tbgw_report_strategy rs;
    int has_rs;
    mbc_point *points;
    size_t n_points, cap_points;
    char *key_pool; /* the points' keys once parsed (NULL: each key is its own allocation) */
    mbc_block *blocks;
    size_t n_blocks;
    uint8_t *block_data; /* the blocks' data, one allocation */
    mbc_write *attr_updates;
    size_t n_attr_updates;
    mbc_write *rpcs;
    size_t n_rpcs;
    int is_self;              /* the gateway's own server (slave section) */
    tbgw_custom_conv *uplink; /* uplink_converter: replaces the built-in decoding when set */
    int byte_little, word_little;
    /* runtime */
    tbgw_mb_conn *conn;
    int64_t next_poll, poll_ts, hold_until;
    int outstanding, polling;
    int connected, failures;
    uint64_t polls, poll_errors;
    uint64_t retried, empty_drops,
        invalid_drops; /* retried requests; blocks dropped for short/invalid answers */
} mbc_slave;

typedef struct mbc {
    const tbgw_host *host;
    mbc_slave *slaves;
    size_t n_slaves, cap_slaves;
    tbgw_hmap specs; /* the points' value specs, one per distinct spec (its bytes are the key) */
    int block_gap;   /* max address gap merged into one block */
    /* slave (server) mode */
    int server_enabled;
    tbgw_mb_endpoint server_ep;
    uint8_t server_unit;
    tbgw_mb_store *store;
    tbgw_mb_identity identity; /* function 43 answers; strings owned (but obj[2] default) */
    char *identity_strs[7];    /* the owned ones */
    tbgw_mb_server *server;
    /* runtime */
    tbgw_mb_loop *loop;
    tbgw_mb_endpoint *adhoc; /* endpoints of ad-hoc RPC connections (their strings), for this run */
    size_t n_adhoc;
    atomic_int stop;
    struct mbc_rpc *rpcs; /* in-flight RPC requests */
    tbgw_conn_state state;
    char last_error[256];
} mbc;

/* config.c */
int mbc_config_parse(mbc *m, const json_t *cfg, tbgw_err *err);
void mbc_config_free(mbc *m);
/* Fills w (its tag and variants are its own: mbc_write_clear; on error nothing is left). */
int mbc_parse_write(const json_t *o, const char *path, int byte_little, int word_little, mbc_write *w,
                    tbgw_err *err);
void mbc_write_clear(mbc_write *w);
int mbc_parse_report_strategy(const json_t *o, const char *path, tbgw_report_strategy *rs, int *has,
                              tbgw_err *err);
/* Fills ep with strings of its own (mbc_endpoint_clear frees them; on error nothing is left). */
int mbc_parse_endpoint(const json_t *o, const char *path, tbgw_mb_endpoint *ep, tbgw_err *err);
void mbc_endpoint_clear(tbgw_mb_endpoint *ep);
int mbc_slave_add(mbc *m, const json_t *o, const char *path, tbgw_err *err);
int mbc_plan_blocks(mbc_slave *sl, int gap);
/* modbus.c: the shared connection for an endpoint (one per host:port or serial port) */
tbgw_mb_conn *mbc_conn_for(mbc *m, const tbgw_mb_endpoint *ep);
/* The same for an ad-hoc endpoint whose strings it takes over (kept until the loop is freed). */
tbgw_mb_conn *mbc_conn_adhoc(mbc *m, tbgw_mb_endpoint *ep);
/* poll.c */
void mbc_poll_due(mbc *m, int64_t now_mono);
/* Whether a request that ended with status after `tries` retries gets another attempt. */
int mbc_retry_ok(int status, int tries, int retries, int on_empty, int on_invalid);
int64_t mbc_poll_next_ms(mbc *m, int64_t now_mono);
/* rpc.c */
int mbc_on_rpc(mbc *m, const tbgw_rpc_req *r);
int mbc_on_attribute_update(mbc *m, const tbgw_attr_update *u);
void mbc_rpc_expire(mbc *m, int64_t now_mono);
int64_t mbc_rpc_next_deadline(const mbc *m); /* monotonic ms; INT64_MAX when none is pending */
void mbc_rpc_free_all(mbc *m);
/* slave.c: the gateway's own Modbus server */
int mbc_server_parse(mbc *m, const json_t *sec, tbgw_err *err);
int mbc_server_start(mbc *m, tbgw_err *err);

#endif
