/* Request connector internals (spec §7.5): HTTP polling of device APIs, attribute updates and RPC
 * as outgoing HTTP requests. Everything runs on the connector thread around one libcurl multi handle
 * (util/http_client.h). */
#ifndef TBGW_REQUEST_H
#define TBGW_REQUEST_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdint.h>
#include <tbgw/connector.h>
#include "convert/custom_conv.h"
#include "convert/dl_tmpl.h"
#include "convert/expr.h"
#include "convert/http_out.h"
#include "convert/json_conv.h"
#include "convert/pyexpr.h"
#include "convert/source_expr.h"
#include "util/backoff.h"
#include "util/buf.h"
#include "util/http_client.h"

typedef struct rq_sub { /* mapping.subRequests.<key> */
    char *key;
    tbgw_expr *url;
    tbgw_py_def *fn; /* processingFunction, called with (the answer, the key) */
    int unsupported; /* its processingFunction cannot run here: the sub-request is skipped */
} rq_sub;

typedef struct rq_map { /* one polled endpoint */
    char *url;          /* absolute */
    char *method;
    json_t *headers;
    char *body; /* "content" */
    size_t body_len;
    int redirects;
    int64_t timeout_ms, period_ms;
    tbgw_path *unpack; /* dataUnpackExpression */
    rq_sub *subs;
    size_t n_subs;
    int custom; /* custom converter (raw body) instead of JSON */
    int disabled;
    tbgw_json_conv *json;
    tbgw_custom_conv *conv;
    /* schedule */
    int64_t next_due, last_start; /* monotonic ms */
    int in_flight, last_ok;
    tbgw_backoff backoff;
    uint64_t polls, failures, late;
    size_t heap_pos; /* index in rq_conn.heap + 1; 0 = not scheduled (in flight or disabled) */
} rq_map;

typedef struct rq_config {
    char *host; /* with scheme, no trailing '/' */
    int verify;
    char *user, *pass;
    rq_map *maps;
    size_t n_maps;
    tbgw_http_out *upds, *rpcs; /* attributeUpdates[], serverSideRpc[] */
    size_t n_upds, n_rpcs;
} rq_config;

typedef struct rq_conn {
    const tbgw_host *host;
    rq_config cfg;
    tbgw_http_client *http;
    atomic_int stop;
    tbgw_connector_status st;
    uint64_t emitted, refused;
    tbgw_py_ctx *py; /* processingFunction calls (connector thread) */
    rq_map **heap;   /* endpoints waiting for their next poll, earliest next_due first */
    size_t n_heap;
} rq_conn;

/* rq_config.c */
int rq_config_parse(rq_config *cfg, const json_t *json, const tbgw_host *host, tbgw_err *err);
void rq_config_free(rq_config *cfg);
/* The Request connector's names for the outgoing requests' fields. */
extern const tbgw_http_out_dialect rq_dialect;
/* Absolute URL: http(s) URLs as they are, else host + "/" + url. malloc'ed. */
#define rq_join_url tbgw_http_join_url

/* rq_connector.c: puts m (not in flight) on the schedule at m->next_due. */
void rq_schedule(rq_conn *c, rq_map *m);

/* rq_poll.c */
void rq_poll_start(rq_conn *c, rq_map *m);
void rq_emit(rq_conn *c, tbgw_converted *chain);
/* Handles a response of m's endpoint as if a poll had just got it (tests and fuzzing). */
void rq_poll_feed(rq_conn *c, rq_map *m, const tbgw_http_resp *r);

/* rq_downlink.c */
int rq_on_attribute_update(void *self, const tbgw_attr_update *u);
int rq_on_rpc(void *self, const tbgw_rpc_req *r);
/* Fills common request fields of an outgoing request (auth, TLS verification). */
void rq_req_auth(const rq_conn *c, tbgw_http_req *req);

#endif
