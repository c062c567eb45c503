/* REST connector internals (spec §7.4): an HTTP(S) server (the HTTP module, libmicrohttpd) whose
 * endpoints turn requests into telemetry/attributes or attribute requests, and outgoing HTTP requests
 * for attribute updates and RPC (util/http_client.h).
 *
 * Threads: requests are decoded, converted and emitted on the server's worker threads (the
 * converters are reentrant; a custom converter is called under a mutex). Answers that wait for the
 * platform (responseExpected, attribute requests) are parked in `pending` and completed on the
 * connector thread, which also runs the downlink and the outgoing requests: it sleeps on
 * host->downlink_fd, the outgoing transfers and the earliest parked deadline at once. */
#ifndef TBGW_REST_H
#define TBGW_REST_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <tbgw/connector.h>
#include "convert/custom_conv.h"
#include "convert/dl_tmpl.h"
#include "convert/expr.h"
#include "convert/http_out.h"
#include "convert/json_conv.h"
#include "convert/source_expr.h"
#include "modules/http/http_module.h"
#include "util/buf.h"
#include "util/http_client.h"

typedef struct rs_seg {
    char *text; /* literal segment, or the variable name of "{name}" */
    int var;
} rs_seg;

typedef enum rs_kind { RS_DATA, RS_ATTR_REQUEST } rs_kind;

typedef struct rs_endpoint {
    rs_kind kind;
    char *path;
    rs_seg *segs;
    size_t n_segs;
    unsigned methods;  /* RS_M_* bits */
    char *user, *pass; /* basic security when user is set */
    /* data endpoints */
    int response_expected;
    int64_t timeout_ms;
    char *resp_attr, *success, *unsuccess;
    tbgw_json_conv *json;
    tbgw_custom_conv *conv;
    pthread_mutex_t conv_mu;
    int custom, disabled;
    /* attribute requests */
    int client_scope;
    tbgw_expr *dev_expr, *attr_expr;
} rs_endpoint;

enum {
    RS_M_GET = 1,
    RS_M_POST = 2,
    RS_M_PUT = 4,
    RS_M_DELETE = 8,
    RS_M_PATCH = 16,
    RS_M_HEAD = 32,
    RS_M_OPTIONS = 64
};
unsigned rs_method_bit(const char *m);

typedef struct rs_config {
    char host[64];
    int port, ssl;
    char *cert_file, *key_file;
    size_t max_body;
    unsigned threads, max_connections, conn_timeout_s;
    rs_endpoint *eps;
    size_t n_eps;
    tbgw_http_out *upds, *rpcs; /* requestsMapping.attributeUpdates[], serverSideRpc[] */
    size_t n_upds, n_rpcs;
} rs_config;

typedef struct rs_pending {
    struct rs_pending *next;
    uint64_t http_id;
    const rs_endpoint *ep;
    int attr_request; /* else: waits for the responseAttribute of device */
    char *device;
    char client[48];
    uint64_t cookie;
    int64_t deadline; /* monotonic ms */
} rs_pending;

#define RS_SEEN 128

typedef struct rs_conn {
    const tbgw_host *host;
    rs_config cfg;
    const tbgw_http_module *mod;
    void *server;
    int bound_port;
    tbgw_http_client *http;
    atomic_int stop;
    tbgw_connector_status st;
    pthread_mutex_t mu; /* pending, wake_at, next_cookie, refusal log */
    rs_pending *pending;
    int64_t wake_at; /* when the connector thread wakes up next at the latest (monotonic ms) */
    uint64_t next_cookie;
    struct {
        char client[48];
        int64_t last_ms;
    } seen[RS_SEEN];
    size_t seen_next;
    atomic_ullong refused, suppressed;
} rs_conn;

/* rs_config.c */
int rs_config_parse(rs_config *cfg, const json_t *json, const tbgw_host *host, tbgw_err *err);
void rs_config_free(rs_config *cfg);
/* The REST connector's names for the outgoing requests' fields. */
extern const tbgw_http_out_dialect rs_dialect;
/* Path parameters of a matching endpoint into params (an object). 1 = match. */
int rs_route_match(const rs_endpoint *ep, const char *path, json_t *params);

/* rs_server.c */
/* The server's request handler (HTTP module worker threads; also driven directly by tests). */
int rs_handle(void *ud, const tbgw_http_request *rq, tbgw_http_reply *out);
int rs_server_start(rs_conn *c, tbgw_err *err);
void rs_server_stop(rs_conn *c);
void rs_pending_expire(rs_conn *c, int64_t now);
/* The earliest deadline of the parked requests (INT64_MAX: none), which the connector thread sleeps
 * until; a request parked later with an earlier deadline wakes it up (tbgw_http_client_wakeup). */
int64_t rs_pending_arm(rs_conn *c);
/* Completes parked requests: a responseAttribute update, an attribute response. */
void rs_pending_attribute(rs_conn *c, const char *device, const char *key, const json_t *value);
void rs_pending_attr_response(rs_conn *c, uint64_t cookie, const char *device, const json_t *data);
/* Counts a refused request and logs it once per client per minute. */
void rs_refusal(rs_conn *c, const char *client, unsigned status, const char *why);
/* A self-signed certificate and key (PEM) for host; 0 or TBGW_E*. */
int rs_selfsigned(const char *host, char **cert_pem, char **key_pem);

/* rs_downlink.c */
int rs_on_attribute_update(void *self, const tbgw_attr_update *u);
int rs_on_rpc(void *self, const tbgw_rpc_req *r);
int rs_on_attribute_response(void *self, uint64_t cookie, const char *device, const json_t *data);

#endif
