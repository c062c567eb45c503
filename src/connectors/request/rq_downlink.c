/* Request connector downlink (spec §7.5): attribute updates and server-side RPC become HTTP requests
 * on the connector's curl multi handle (convert/http_out.h: the same requests as the REST
 * connector's, with the Request file's field names). A request is retried (up to `tries`, with
 * backoff) when the transfer fails or the server answers 5xx; an RPC is answered once, with
 * {"result":{"value":...}} from the device's answer or an error, within its responseTimeout. */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "connectors/request/request.h"

void rq_req_auth(const rq_conn *c, tbgw_http_req *req) {
    req->username = c->cfg.user;
    req->password = c->cfg.pass;
    req->verify_tls = c->cfg.verify;
}

static tbgw_http_sender sender(rq_conn *c) {
    return (tbgw_http_sender){.host = c->host,
                              .http = c->http,
                              .base = c->cfg.host,
                              .user = c->cfg.user,
                              .pass = c->cfg.pass,
                              .verify = c->cfg.verify,
                              .answer = TBGW_HTTP_ANSWER_VALUE,
                              .stop = &c->stop};
}

int rq_on_attribute_update(void *self, const tbgw_attr_update *u) {
    rq_conn *c = self;
    tbgw_http_sender s = sender(c);
    tbgw_http_out_attribute_update(&s, c->cfg.upds, c->cfg.n_upds, u);
    return 0;
}

/* Reserved get/set: params "requestUrlExpression=<url>;[httpMethod=<m>;][value=<v>;]" (set needs value)
 * with the reference's defaults; a connector RPC (no device) may give the same fields as an object. */
static int reserved_entry(tbgw_http_out *o, const tbgw_rpc_req *r, int set, char *why, size_t why_len) {
    json_t *defaults =
        json_pack("{s:{s:s},s:f,s:i,s:i,s:s}", "httpHeaders", "Content-Type", "application/json", "timeout",
                  0.5, "responseTimeout", 1, "tries", 3, "methodFilter", ".*");
    int rc = tbgw_http_out_reserved(o, r, set, &rq_dialect, defaults,
                                    set ? "The requested RPC does not match with the schema: "
                                          "requestUrlExpression=<url>;[httpMethod=<method>;]value=<value>;"
                                        : "The requested RPC does not match with the schema: "
                                          "requestUrlExpression=<url>;[httpMethod=<method>;]",
                                    why, why_len);
    json_decref(defaults);
    return rc;
}

int rq_on_rpc(void *self, const tbgw_rpc_req *r) {
    rq_conn *c = self;
    tbgw_http_sender s = sender(c);
    int set = !strcasecmp(r->method, "set");
    tbgw_http_out tmp = {0};
    char why[300];
    if (!r->device || set || !strcasecmp(r->method, "get")) {
        if (reserved_entry(&tmp, r, set, why, sizeof why))
            tbgw_http_rpc_failed(c->host, r->handle, "%s", why);
        else
            tbgw_http_out_rpc(&s, NULL, 0, &tmp, r); /* the request keeps no pointer into tmp */
        tbgw_http_out_clear(&tmp);
    } else if (tbgw_http_out_rpc(&s, c->cfg.rpcs, c->cfg.n_rpcs, NULL, r) == TBGW_ENOENT) {
        tbgw_http_rpc_failed(c->host, r->handle, "Neither of configured device rpc methods match with %s",
                             r->method);
    }
    return 0;
}
