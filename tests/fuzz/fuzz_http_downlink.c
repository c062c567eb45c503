/* Fuzzes the HTTP connectors' downlink: attribute updates and RPC (named methods, reserved get/set
 * with "key=value;" params, connector RPC with object params) turned into outgoing requests. Byte 0:
 * bit 0 = REST (else Request), bit 1 = RPC (else attribute update); the rest is JSON
 * {"device": ..., "method": ..., "params": ..., "data": {...}}. Requests are queued on a real HTTP
 * client but never run (the client is freed at once, to loopback port 1 anyway). */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "connectors/request/request.h"
#include "connectors/rest/rest.h"
#include "stub_host.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *RQ_CONFIG =
    "{\"host\":\"127.0.0.1:1\",\"attributeUpdates\":[{\"httpMethod\":\"POST\",\"httpHeaders\":{\"Content-"
    "Type\":"
    "\"application/json\"},\"deviceNameFilter\":\".*\",\"attributeFilter\":\".*\",\"requestUrlExpression\":"
    "\"sensor/${deviceName}/${attributeKey}\",\"requestValueExpression\":\"{\\\"${attributeKey}\\\":"
    "\\\"${attributeValue}\\\"}\"}],\"serverSideRpc\":[{\"deviceNameFilter\":\".*\",\"methodFilter\":\"echo.*"
    "\","
    "\"requestUrlExpression\":\"s/${deviceName}/${methodName}/"
    "${requestId}?p=${params.a}\",\"responseTimeout\":1,"
    "\"httpMethod\":\"GET\",\"responseValueExpression\":\"${temp}\",\"requestValueExpression\":\"${params}\"}"
    "]}";
static const char *RS_CONFIG =
    "{\"server\":{\"port\":0},\"requestsMapping\":{\"attributeUpdates\":[{\"HTTPMethod\":\"POST\","
    "\"httpHeaders\":{\"Content-Type\":\"application/json\"},\"requestUrlExpression\":\"http://127.0.0.1:1/"
    "\","
    "\"valueExpression\":\"{\\\"d\\\":\\\"${deviceName}\\\",\\\"${attributeKey}\\\":\\\"${attributeValue}"
    "\\\"}\"}],"
    "\"serverSideRpc\":[{\"methodFilter\":\".*\",\"requestUrlExpression\":\"http://127.0.0.1:1/"
    "${deviceName}\","
    "\"HTTPMethod\":\"GET\",\"valueExpression\":\"${params}\"}]}}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static rq_conn *rq;
    static rs_conn *rs;
    if (!rq) {
        tbgw_err err = {0};
        json_t *a = json_loads(RQ_CONFIG, 0, NULL), *b = json_loads(RS_CONFIG, 0, NULL);
        rq = calloc(1, sizeof *rq);
        rs = calloc(1, sizeof *rs);
        rq->host = rs->host = stub_host();
        if (!a || !b || rq_config_parse(&rq->cfg, a, rq->host, &err) ||
            rs_config_parse(&rs->cfg, b, rs->host, &err))
            abort();
        pthread_mutex_init(&rs->mu, NULL);
        json_decref(a);
        json_decref(b);
    }
    if (size < 1 || size > 16384) return 0;
    json_t *j = json_loadb((const char *)data + 1, size - 1, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        return 0;
    }
    tbgw_err err = {0};
    tbgw_http_client *http = tbgw_http_client_new(&err);
    if (!http) abort();
    rq->http = rs->http = http;
    atomic_store(&rq->stop, 0);
    atomic_store(&rs->stop, 0);
    const char *dev = json_string_value(json_object_get(j, "device"));
    const char *method = json_string_value(json_object_get(j, "method"));
    int rest = data[0] & 1;
    if (data[0] & 2) {
        tbgw_rpc_req r = {.handle = 1,
                          .device = dev,
                          .id = json_integer_value(json_object_get(j, "id")),
                          .method = method ? method : "echo",
                          .params = json_object_get(j, "params"),
                          .timeout_ms = 1000};
        if (rest)
            rs_on_rpc(rs, &r);
        else
            rq_on_rpc(rq, &r);
    } else if (dev && json_is_object(json_object_get(j, "data"))) {
        tbgw_attr_update u = {.device = dev, .data = json_object_get(j, "data")};
        if (rest)
            rs_on_attribute_update(rs, &u);
        else
            rq_on_attribute_update(rq, &u);
    }
    atomic_store(&rq->stop, 1);
    atomic_store(&rs->stop, 1);
    tbgw_http_client_free(http); /* the queued calls end "aborted" and free themselves */
    rq->http = rs->http = NULL;
    json_decref(j);
    return 0;
}
