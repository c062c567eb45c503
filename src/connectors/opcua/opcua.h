/* OPC-UA connector internals (spec gateway.md §7.3). Files:
 *   opcua_config.c    parse and validate the connector JSON
 *   opcua_nodes.c     node expressions: node ids, absolute and relative browse paths (regex per segment)
 *   opcua_values.c    Variant -> tbgw_value / JSON, JSON -> Variant
 *   opcua_rpc.c       attribute updates, reserved get/set, method calls, connector RPCs
 *   opcua_args.c      get/set params text, method arguments typed as the method declares them
 *   opcua_connector.c lifecycle, scanning, polling and subscriptions */
#ifndef TBGW_CONNECTORS_OPCUA_H
#define TBGW_CONNECTORS_OPCUA_H

#include <jansson.h>
#include <stdint.h>
#include <tbgw/connector.h>

#include "proto/opcua/ua_argument.h"
#include "proto/opcua/ua_client.h"
#include "util/json.h"

typedef enum opcua_src {
    OPCUA_SRC_PATH = 0,
    OPCUA_SRC_IDENTIFIER,
    OPCUA_SRC_CONST,
} opcua_src;

typedef enum opcua_tsloc {
    OPCUA_TS_GATEWAY = 0,
    OPCUA_TS_SOURCE,
    OPCUA_TS_SERVER,
} opcua_tsloc;

typedef struct opcua_dp_cfg {
    char *key;
    opcua_src type;
    char *value; /* "${...}" expression, or the constant */
    opcua_tsloc tsloc;
    tbgw_report_strategy rs;
    int has_rs;
} opcua_dp_cfg;

typedef struct opcua_rpc_cfg {
    char *method;
    json_t *args; /* array of {"type","value"}; owned */
} opcua_rpc_cfg;

typedef struct opcua_upd_cfg {
    char *key;
    opcua_src type;
    char *value;
} opcua_upd_cfg;

typedef struct opcua_mapping {
    opcua_src dev_src;
    char *pattern;
    char *name_expr, *profile_expr;
    opcua_src name_src, profile_src;
    opcua_dp_cfg *attrs, *ts;
    size_t n_attrs, n_ts;
    opcua_rpc_cfg *rpcs;
    size_t n_rpcs;
    opcua_upd_cfg *upds;
    size_t n_upds;
    tbgw_report_strategy rs;
    int has_rs;
} opcua_mapping;

typedef struct opcua_cfg {
    char *url;
    int timeout_ms;
    int64_t scan_period_ms, poll_period_ms, sub_period_ms;
    int subscriptions;
    double session_timeout_ms;
    char *app_uri;
    char *security;
    char *username, *password;
    int cert_identity;
    char *cert_path, *key_path, *ca_path; /* resolved against the config folder */
    char *crl_path;                       /* identity.crl / pathToCRL (needs ca_path) */
    int user_token;                       /* identity.userToken: TBGW_UA_TOKEN_AUTO / _CERTIFICATE */
    int mode;                             /* 2 Sign, 3 SignAndEncrypt */
    int reconnect_retries;                /* 0 = forever */
    int64_t reconnect_delay_ms;
    double reconnect_factor;
    opcua_mapping *maps;
    size_t n_maps;
} opcua_cfg;

/* config_dir (may be NULL) resolves relative certificate paths. */
/* Per-key entries (and whole device mappings) that cannot be used are reported through h (may be NULL)
 * and skipped; the server section and the mapping list itself are required. */
int opcua_cfg_parse(const json_t *j, const char *config_dir, const tbgw_host *h, opcua_cfg *cfg,
                    tbgw_err *err);
void opcua_cfg_free(opcua_cfg *cfg);

/* ---- node resolution (opcua_nodes.c) ---- */

/* A browse-name cache shared by one scan so repeated paths cost one Browse per node. */
typedef struct opcua_browse_cache opcua_browse_cache;
opcua_browse_cache *opcua_cache_new(void);
void opcua_cache_free(opcua_browse_cache *bc);
/* yield(ctx) is called after every browse request made through this cache; a non-zero return
 * aborts the resolution with that code. */
void opcua_cache_set_yield(opcua_browse_cache *bc, int (*yield)(void *ctx), void *ctx);
/* Stores refs (ownership passes to the cache) as the children of node, as a Browse would: tests and
 * tools resolve paths without a server this way. */
int opcua_cache_put(opcua_browse_cache *bc, const tbgw_ua_nodeid *node, tbgw_ua_ref *refs, size_t n);

/* Splits a path on the escaped dot "\." into segments (caller frees each and the array). */
int opcua_path_split(const char *path, char ***segs, size_t *n);
void opcua_path_free(char **segs, size_t n);

/* Resolves an expression body (the text inside ${...}, or a bare pattern): a node id, an absolute
 * path starting with Root, or a path relative to base (NULL base = Objects). Matches may be many
 * when segments are regular expressions; up to max results are stored in out. Returns the number
 * found (>= 0) or a negative TBGW_E* on a client failure. */
int opcua_resolve(tbgw_ua_client *c, opcua_browse_cache *bc, const tbgw_ua_nodeid *base, const char *expr,
                  tbgw_ua_nodeid *out, size_t max);
/* Extracts the text inside the first ${...}; returns a malloc'ed copy, or a copy of s when there is
 * no ${...}. */
char *opcua_expr_body(const char *s);

/* ---- values (opcua_values.c) ---- */

/* Converts a DataValue as the reference's converter does; tmp receives owned text for string
 * results (free after use). node_text names the node in the bad-status message. */
int opcua_value_convert(const tbgw_ua_datavalue *dv, const char *node_text, tbgw_value *out, char **tmp);
/* JSON form of a variant for RPC replies (new reference). */
json_t *opcua_variant_to_json(const tbgw_ua_variant *v);
/* JSON -> Variant with the natural type (bool, Int64, Double, String). */
int opcua_variant_from_json(const json_t *j, tbgw_ua_variant *out);
/* Casts a JSON value (or its string form) to a built-in type (for write retries). */
int opcua_variant_cast(const json_t *j, uint8_t type, tbgw_ua_variant *out);
/* Variant from a configured argument {"type":"integer|float|double|string|boolean", "value"}. */
int opcua_variant_from_arg(const json_t *arg, tbgw_ua_variant *out);
/* Parses RPC text ("true", "12", "1.5", other) into JSON. */
json_t *opcua_json_from_text(const char *s);

/* ---- RPC inputs (opcua_args.c) ---- */

/* The node a `get` names: params without surrounding spaces and trailing ';' (NULL when empty). */
char *opcua_get_target(const char *params);
/* Splits `set` params into the node (a node id, a datapoint key or a browse path) and the value
 * text: "ns=3;i=9; 456.34", "ns=2;s=Temp 25", "i=2258=7", "Temp=25", "Temp;25", "Temp 25",
 * "Root\.Objects\.Dev\.Temp 25". Spaces and ';' around both are dropped. Returns 0 (both
 * malloc'ed) or TBGW_EINVAL. */
int opcua_set_split(const char *params, char **target, char **value);
/* Encodes one RPC value as the declared argument a (the index-th, counted from 0) whose DataType is
 * encoded as the built-in type (tbgw_ua_builtin_of_datatype, or of a supertype): range checks,
 * scalar or array per ValueRank. type 0 (BaseDataType, Number, unknown) takes the JSON type.
 * TBGW_EINVAL with err naming the argument, its type and the reason. */
int opcua_arg_from_json(const json_t *j, const tbgw_ua_argument *a, uint8_t type, size_t index,
                        tbgw_ua_variant *out, char *err, size_t errlen);

/* ---- runtime ---- */

/* The input arguments a method declares (its InputArguments property), read once per session. */
typedef struct opcua_method_sig {
    tbgw_ua_nodeid method;
    int known; /* 0: no readable InputArguments; values then take their JSON types */
    tbgw_ua_argument *args;
    uint8_t *types; /* built-in type of each argument's DataType (0: as JSON says) */
    size_t n;
    struct opcua_method_sig *next;
} opcua_method_sig;

typedef struct opcua_dp {
    const opcua_dp_cfg *cfg;
    int is_attr;
    struct opcua_device *dev;
    tbgw_ua_nodeid node;
    int resolved;
    char *node_text;
    int monitored;   /* a monitored item of the subscription reports this node */
    uint32_t handle; /* its client handle (index into opcua_conn.items); 0 = none */
    uint32_t mon_id; /* its monitoredItemId on the server */
} opcua_dp;

typedef struct opcua_device {
    const opcua_mapping *map;
    tbgw_ua_nodeid node;
    char *name, *profile;
    opcua_dp *dps;
    size_t n_dps;
    tbgw_converted *pending; /* values collected from the current publish round */
    int matched;             /* scratch for a rescan: found in the other device set */
} opcua_device;

typedef struct opcua_conn {
    const tbgw_host *host;
    opcua_cfg cfg;
    tbgw_ua_client *client;
    opcua_browse_cache *cache; /* of the last completed scan; downlink resolves paths with it */
    opcua_device *devs;        /* the device set of the last completed scan */
    size_t n_devs;
    opcua_dp **flat; /* all resolved datapoints (the read list when polling) */
    size_t n_flat;
    opcua_dp **items;          /* by monitored item client handle; NULL = no (longer a) datapoint */
    size_t n_items, items_cap; /* handles given out so far + 1 (handle 0 is never used) */
    uint32_t sub_id;
    int sub_lost;
    volatile int stop;
    int64_t next_poll_ms, next_scan_ms;
    tbgw_conn_state state;
    char last_error[256];
    size_t incomplete;       /* nodes not found or not subscribed: retried by an early rescan */
    uint64_t bytes_reported; /* of tbgw_ua_client_bytes_received, already added to the stats */
    /* scans: while one runs, publishing and downlink are served between its requests */
    int scanning, in_yield;
    int announce_all; /* the next scan reports every device as connected (new session) */
    int64_t last_yield_ms;
    uint64_t scans;         /* completed scans */
    opcua_method_sig *sigs; /* of the current session */
} opcua_conn;

/* Introspection for tests and benchmarks; call on the connector thread (e.g. from host callbacks). */
typedef struct opcua_scan_info {
    uint32_t sub_id;
    uint64_t scans;
    int scanning;
    size_t monitored, devices;
} opcua_scan_info;
void opcua_scan_info_get(const void *self, opcua_scan_info *out);

opcua_device *opcua_find_device(opcua_conn *oc, const char *name);
int opcua_on_attribute_update(void *self, const tbgw_attr_update *u);
int opcua_on_rpc(void *self, const tbgw_rpc_req *r);
void opcua_sigs_free(opcua_conn *oc);

#endif
