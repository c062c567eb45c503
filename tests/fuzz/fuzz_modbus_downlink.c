/* Fuzzes the Modbus connector's downlink handling: device RPC (by tag, reserved get/set with their
 * parameter strings), connector RPC modbus_get/modbus_set (ad-hoc slaves included) and shared attribute
 * updates, from arbitrary JSON {"device","method","params"} or {"device","data"}. Requests are queued
 * on a loop that never runs, then dropped. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <tbgw/connector.h>

#include "connectors/modbus/mbc.h"

extern const tbgw_connector_ops tbgw_connector_modbus;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int discard_reply(const tbgw_host *h, uint64_t handle, json_t *content, int success) {
    (void)h, (void)handle, (void)success;
    json_decref(content);
    return 0;
}

static const char *CFG =
    "{\"master\":{\"slaves\":[{\"host\":\"127.0.0.1\",\"port\":1,\"unitId\":1,\"deviceName\":\"D\","
    "\"repack\":true,"
    "\"attributeUpdates\":[{\"tag\":\"a\",\"type\":\"32float\",\"functionCode\":16,\"objectsCount\":2,"
    "\"address\":0},"
    "{\"tag\":\"c\",\"type\":\"bits\",\"functionCode\":15,\"objectsCount\":8,\"address\":0}],"
    "\"rpc\":{\"w\":{\"type\":\"string\",\"functionCode\":16,\"objectsCount\":4,\"address\":0},"
    "\"r\":{\"type\":\"bits\",\"functionCode\":1,\"objectsCount\":3,\"address\":0}}}]}}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static tbgw_host host;
    static void *self;
    if (!self) {
        host.abi = TBGW_CONNECTOR_ABI;
        host.log = tbgw_logger_get("fuzz");
        host.log->level = TBGW_NONE;
        host.conv_log = host.log;
        host.rpc_reply = discard_reply;
        json_t *cfg = json_loads(CFG, 0, NULL);
        tbgw_err err;
        if (tbgw_connector_modbus.create(&host, cfg, &self, &err)) __builtin_trap();
        json_decref(cfg);
    }
    json_t *in = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
    if (!json_is_object(in)) {
        json_decref(in);
        return 0;
    }
    mbc *m = self;
    m->loop = tbgw_mb_loop_new(host.log);
    for (size_t i = 0; i < m->n_slaves; i++) m->slaves[i].conn = mbc_conn_for(m, &m->slaves[i].ep);
    const char *device = json_string_value(json_object_get(in, "device"));
    const json_t *d = json_object_get(in, "data");
    if (d) {
        tbgw_attr_update u = {.device = device ? device : "D", .data = d};
        tbgw_connector_modbus.on_attribute_update(self, &u);
    } else {
        const char *method = json_string_value(json_object_get(in, "method"));
        tbgw_rpc_req r = {.handle = 1,
                          .device = device,
                          .id = 1,
                          .method = method ? method : "get",
                          .params = json_object_get(in, "params"),
                          .timeout_ms = 5000};
        tbgw_connector_modbus.on_rpc(self, &r);
    }
    mbc_rpc_expire(m, INT64_MAX);
    mbc_rpc_free_all(m);
    tbgw_mb_loop_free(m->loop);
    m->loop = NULL;
    json_decref(in);
    return 0;
}
