/* Internals of the SNMP connector (connectors spec §4): configuration, value conversion, the
 * per-device request queue and the event loop over net-snmp's single-session asynchronous API. */
#ifndef TBGW_CONNECTORS_SNMPC_H
#define TBGW_CONNECTORS_SNMPC_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <tbgw/connector.h>

#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>

#include "convert/custom_conv.h"
#include "util/buf.h"

typedef enum snmp_method {
    SM_GET = 0,
    SM_MULTIGET,
    SM_GETNEXT,
    SM_WALK,
    SM_MULTIWALK,
    SM_BULKWALK,
    SM_BULKGET,
    SM_TABLE,
    SM_BULKTABLE,
    SM_SET,
    SM_MULTISET,
    SM__COUNT
} snmp_method;

typedef struct snmp_oid {
    oid v[MAX_OID_LEN];
    size_t len;
} snmp_oid;

/* ---- values (snmp_value.c; pure functions, fuzzed) ---------------------------------------- */

/* Parses a numeric OID ("1.3.6.1.2.1.1.1.0" or with a leading dot). 0 or TBGW_EINVAL. */
int snmp_oid_parse(const char *text, snmp_oid *out);
/* Dotted text without a leading dot. */
void snmp_oid_format(const oid *v, size_t len, char *out, size_t cap);
int snmp_oid_in_subtree(const oid *v, size_t len, const snmp_oid *base);
const char *snmp_method_name(snmp_method m);
int snmp_method_parse(const char *s, snmp_method *out);
/* One varbind as JSON: integers/counters/gauges as numbers, TimeTicks as seconds (real), octet
 * strings as text when they are UTF-8 (else lowercase hex), OIDs and IP addresses as text.
 * Exceptions (noSuchObject, noSuchInstance, endOfMibView) and malformed values give NULL with err. */
json_t *snmp_vb_to_json(const netsnmp_variable_list *vb, char *err, size_t errlen);
/* The text of a converted value inside a dict (Python str()): strings as is, numbers as JSON. */
int snmp_json_text(const json_t *v, tbgw_buf *out);
/* Typed SET value for a variable of ASN type `type` from a JSON value ("5", 5, true, "1.3.6", ...).
 * Fills buf/len for snmp_pdu_add_variable. 0 or TBGW_EINVAL with err. */
int snmp_set_value(u_char type, const json_t *v, u_char *buf, size_t cap, size_t *len, char *err,
                   size_t errlen);
/* An explicit `type` of a set entry: snmpset letters (i u s x d n o t a c g) or names (Integer,
 * OctetString, ...). Returns the ASN type or 0 when unknown. */
u_char snmp_type_parse(const char *s);
/* Table rows as the reference merges them: tail of each OID after base+entry: first node the
 * column, the rest the row index; rows {"0": index, column: text}; later rows win. */
int snmp_table_add(json_t *merged, const snmp_oid *base, const oid *v, size_t len, const json_t *value);

/* ---- configuration (snmp_config.c) -------------------------------------------------------- */

typedef struct snmp_item {
    char *key;
    snmp_method method;
    snmp_oid *oids; /* oid (string or list), or scalarOid for bulkget */
    size_t n_oids;
    snmp_oid *rep; /* repeatingOid (bulkget) */
    size_t n_rep;
    int max_list, bulk;
    u_char set_type;    /* explicit `type` of a set entry, 0 = learnt from the agent */
    json_t *value;      /* `value` of a set entry (RPC/attribute updates pass their own) */
    json_t *mappings;   /* multiset {oid: value} */
    char *filter;       /* attributeFilter / requestFilter */
    void *filter_rx;    /* pcre2_code */
    int64_t timeout_ms; /* RPC entries */
    tbgw_report_strategy rs;
    int has_rs;
    int is_attr;
} snmp_item;

typedef struct snmp_dev_cfg {
    char *name, *type, *host;
    int port;
    long version; /* SNMP_VERSION_1 / _2c / _3 */
    char *community;
    /* v3 */
    char *user, *auth_pass, *priv_pass, *context;
    int sec_level; /* SNMP_SEC_LEVEL_* */
    const oid *auth_proto;
    size_t auth_proto_len;
    const oid *priv_proto;
    size_t priv_proto_len;
    int64_t timeout_ms, poll_ms;
    int retries;
    snmp_item *items; /* attributes then telemetry */
    size_t n_items;
    snmp_item *attr_updates, *rpcs;
    size_t n_attr_updates, n_rpcs;
    tbgw_report_strategy rs;
    int has_rs;
    tbgw_custom_conv *custom;
} snmp_dev_cfg;

typedef struct snmp_cfg {
    snmp_dev_cfg *devices;
    size_t n_devices;
} snmp_cfg;

int snmp_config_parse(snmp_cfg *c, const json_t *cfg, const tbgw_host *h, tbgw_err *err);
void snmp_config_free(snmp_cfg *c);
void snmp_item_free(snmp_item *it);
/* Parses one request entry. downlink: 0 a polled item (key required), 1 attributeUpdateRequests
 * (attributeFilter), 2 serverSideRpcRequests (requestFilter), 3 the params of a reserved get/set.
 * 0, or TBGW_EINVAL with err naming path. */
int snmp_item_parse(const json_t *o, const char *path, int downlink, snmp_item *it, tbgw_err *err);
/* Whether a filter entry matches a name (regex search of the filter in the name, or equality). */
int snmp_filter_matches(const snmp_item *it, const char *name);

/* ---- runtime (snmp_ops.c, snmp_connector.c) ----------------------------------------------- */

struct snmp_dev;

/* One method run to completion (one or more PDUs). */
typedef struct snmp_op {
    struct snmp_dev *dev;
    const snmp_item *item; /* borrowed (config) or owned (ad-hoc) */
    snmp_item *owned;
    json_t *value;  /* the value to set (RPC params, attribute value) */
    json_t *result; /* accumulated result */
    size_t idx;     /* oid index (multi/bulk walks), stage (set) */
    snmp_oid cur;   /* next OID of a walk */
    u_char *types;  /* set: learnt types per OID */
    int stage;
    size_t walked; /* varbinds a walk has seen (bounded) */
    int reqid;
    int64_t started;
    /* completion */
    int kind; /* OP_POLL, OP_RPC, OP_ATTR */
    uint64_t rpc;
    struct snmp_op *next;
} snmp_op;

enum { OP_POLL = 0, OP_RPC, OP_ATTR };

typedef struct snmp_dev {
    struct snmp *s;
    snmp_dev_cfg *cfg;
    void *sess; /* net-snmp single session */
    int fd;
    int closing;
    /* host names are resolved by a helper thread; the session is opened on the connector thread */
    pthread_t resolver;
    atomic_int resolve_state; /* 0 idle, 1 resolving, 2 done */
    int resolver_joinable;
    char resolved[64]; /* numeric address ("" when resolution failed) */
    char open_error[256];
    int64_t next_open;
    /* polling */
    int64_t next_poll, cycle_start;
    size_t cycle_left;
    int cycle_failed;
    json_t *cycle_results;
    snmp_op *queue, *queue_tail; /* head is in flight */
    size_t queued;
    int failing; /* last cycle failed (state changes are logged once) */
    uint64_t polls, errors, timeouts;
    char last_err[320]; /* repeated errors are logged once a minute */
    int64_t last_err_ts;
    uint64_t err_repeats;
} snmp_dev;

typedef struct snmp {
    const tbgw_host *host;
    snmp_cfg cfg;
    atomic_int stop;
    snmp_dev *devs;
    size_t n_devs;
    netsnmp_large_fd_set fdset;
    int resolved_fd; /* wakefd kicked by a resolver thread when it is done (in the loop's poll set) */
    tbgw_conn_state state;
    char last_error[256];
    uint64_t vb_errors;
} snmp;

/* snmp_ops.c */
/* Queues an operation (RPC and attribute updates go before queued polls). */
void snmp_op_submit(snmp_dev *d, snmp_op *op, int urgent);
/* Sends the head of the queue when nothing is in flight. */
void snmp_dev_kick(snmp_dev *d);
void snmp_op_free(snmp_op *op);
/* Fails every queued operation (session closed). */
void snmp_dev_fail_all(snmp_dev *d, const char *why);
/* Completion hooks implemented in snmp_connector.c. */
void snmp_op_done(snmp_op *op, int ok, const char *error);
int snmp_session_callback(int op, netsnmp_session *sess, int reqid, netsnmp_pdu *pdu, void *magic);

/* snmp_connector.c */
void snmp_warn(snmp *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A device's error: a new text is a warning, the same text again at most once a minute. */
void snmp_dev_error(snmp_dev *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
