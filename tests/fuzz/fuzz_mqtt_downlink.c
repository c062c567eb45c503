/* Fuzzes the MQTT connector's downlink handlers (server-side RPC incl. reserved get/set params,
 * attribute updates, attribute responses) with the reference requestsMapping. Input: a JSON object
 * {"device": .., "method": .., "params": .., "data": {..}}. No broker: publishes fail cleanly. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "connectors/mqtt/mqtt_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const cfg_text =
    "{\"broker\":{\"host\":\"127.0.0.1\"},\"requestsMapping\":{"
    "\"attributeRequests\":[{\"topicFilter\":\"req\",\"deviceInfo\":{\"deviceNameExpressionSource\":"
    "\"constant\","
    "\"deviceNameExpression\":\"D\"},\"attributeNameExpression\":\"${a}${b}\",\"topicExpression\":\"d/"
    "${deviceName}/"
    "${attributeKey}\",\"valueExpression\":\"{\\\"v\\\":${attributeValue}}\"}],"
    "\"attributeUpdates\":[{\"deviceNameFilter\":\".*\",\"attributeFilter\":\".*\",\"topicExpression\":"
    "\"s/${deviceName}/${attributeKey}\",\"valueExpression\":\"${attributeValue}\"}],"
    "\"serverSideRpc\":[{\"deviceNameFilter\":\".*\",\"methodFilter\":\"two\",\"requestTopicExpression\":"
    "\"r/${deviceName}/${methodName}/${requestId}/${params.x}\",\"responseTopicExpression\":\"p/"
    "${requestId}\","
    "\"responseTimeout\":1000,\"valueExpression\":\"${params}|${params.a[0]}\"},{\"deviceNameFilter\":\".*\","
    "\"methodFilter\":\".*\",\"requestTopicExpression\":\"o/"
    "${methodName}\",\"valueExpression\":\"${params}\"}]}}";

static int replies;
static int f_rpc_reply(const tbgw_host *h, uint64_t handle, json_t *content, int success) {
    (void)h, (void)handle, (void)success;
    json_decref(content);
    replies++;
    return 0;
}
static int f_request(const tbgw_host *h, const char *d, const char *const *k, size_t n, int c,
                     uint64_t cookie) {
    (void)h, (void)d, (void)k, (void)n, (void)c, (void)cookie;
    return 0;
}
static int f_dev(const tbgw_host *h, const char *d, const char *t) {
    (void)h, (void)d, (void)t;
    return 0;
}
static int f_devd(const tbgw_host *h, const char *d) {
    (void)h, (void)d;
    return 0;
}
static void f_stat(const tbgw_host *h, tbgw_stat s, uint64_t n) {
    (void)h, (void)s, (void)n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static tbgw_host host;
    static mq_conn *c;
    if (!c) {
        host.log = tbgw_logger_get("fuzz");
        host.conv_log = host.log;
        host.log->level = TBGW_NONE;
        host.rpc_reply = f_rpc_reply;
        host.request_attributes = f_request;
        host.device_connected = f_dev;
        host.device_disconnected = f_devd;
        host.stat_add = f_stat;
        c = calloc(1, sizeof *c);
        json_t *j = json_loads(cfg_text, 0, NULL);
        tbgw_err err = {0};
        c->host = &host;
        c->next_cookie = 1;
        if (!j || mq_config_parse(&c->cfg, j, &host, &err)) abort();
        json_decref(j);
    }
    json_t *in = json_loadb((const char *)data, size, 0, NULL);
    if (!json_is_object(in)) {
        json_decref(in);
        /* raw bytes as a device request payload and as an RPC response */
        mq_handle_requests(c, "req", data, size);
        mq_handle_rpc_response(c, "p/1", data, size);
        mq_pending_free(c);
        return 0;
    }
    const char *dev = json_string_value(json_object_get(in, "device"));
    const char *method = json_string_value(json_object_get(in, "method"));
    tbgw_rpc_req r = {
        .handle = 1, .device = dev, .id = 1, .method = method, .params = json_object_get(in, "params")};
    mq_on_rpc(c, &r);
    json_t *d = json_object_get(in, "data");
    if (json_is_object(d) && dev) {
        tbgw_attr_update u = {dev, d};
        mq_on_attribute_update(c, &u);
    }
    mq_handle_requests(c, "req", data, size);
    for (mq_pending_attr *a = c->attrs; a;) {
        mq_pending_attr *next = a->next;
        mq_on_attribute_response(c, a->cookie, dev, json_is_object(d) ? d : NULL);
        a = next;
    }
    mq_handle_rpc_response(c, "p/1", data, size);
    mq_pending_free(c);
    json_decref(in);
    return 0;
}
