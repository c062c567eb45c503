/* REST connector downlink (spec §7.4): responseAttribute updates complete parked requests;
 * requestsMapping.attributeUpdates / serverSideRpc become outgoing HTTP requests on the connector
 * thread (convert/http_out.h: the same requests as the Request connector's, with the REST file's
 * field names; URLs must be absolute, an RPC reply is {"result": <the device's answer>}). */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "connectors/rest/rest.h"

static tbgw_http_sender sender(rs_conn *c) {
    return (tbgw_http_sender){
        .host = c->host, .http = c->http, .answer = TBGW_HTTP_ANSWER_RESULT, .stop = &c->stop};
}

int rs_on_attribute_update(void *self, const tbgw_attr_update *u) {
    rs_conn *c = self;
    const char *key;
    const json_t *value;
    json_object_foreach((json_t *)u->data, key, value) rs_pending_attribute(c, u->device, key, value);
    tbgw_http_sender s = sender(c);
    tbgw_http_out_attribute_update(&s, c->cfg.upds, c->cfg.n_upds, u);
    return 0;
}

int rs_on_rpc(void *self, const tbgw_rpc_req *r) {
    rs_conn *c = self;
    tbgw_http_sender s = sender(c);
    int set = !strcasecmp(r->method, "set");
    char why[300];
    if (!r->device || set || !strcasecmp(r->method, "get")) {
        /* reserved get/set: "requestUrlExpression=<url>;[HTTPMethod=<m>;][value=<v>;]" */
        tbgw_http_out tmp = {0};
        json_t *defaults = json_pack("{s:s}", "HTTPMethod", set ? "POST" : "GET");
        if (tbgw_http_out_reserved(
                &tmp, r, set, &rs_dialect, defaults,
                set ? "expected params \"requestUrlExpression=<url>;[HTTPMethod=<method>;]"
                      "value=<value>;\""
                    : "expected params \"requestUrlExpression=<url>;[HTTPMethod=<method>;]\"",
                why, sizeof why))
            tbgw_http_rpc_failed(c->host, r->handle, "%s", why);
        else
            tbgw_http_out_rpc(&s, NULL, 0, &tmp, r); /* the request keeps no pointer into tmp */
        json_decref(defaults);
        tbgw_http_out_clear(&tmp);
    } else if (tbgw_http_out_rpc(&s, c->cfg.rpcs, c->cfg.n_rpcs, NULL, r) == TBGW_ENOENT) {
        tbgw_http_rpc_failed(c->host, r->handle, "no serverSideRpc entry takes method %s of %s", r->method,
                             r->device);
    }
    return 0;
}

int rs_on_attribute_response(void *self, uint64_t cookie, const char *device, const json_t *data) {
    rs_pending_attr_response(self, cookie, device, data);
    return 0;
}
