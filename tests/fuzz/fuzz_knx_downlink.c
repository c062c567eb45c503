/* Fuzzes the KNX connector's downlink: attribute updates and RPCs (named entries, reserved get/set with
 * their "k=v;" parameter strings) from arbitrary JSON {"device","method","params"} or {"device","data"},
 * and bus telegrams for the listened addresses. Telegrams are queued on a client that never connects
 * and then failed, which answers every RPC. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <tbgw/connector.h>

#include "connectors/knx/knx_conn.h"

extern const tbgw_connector_ops tbgw_connector_knx;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replies;

static int discard_reply(const tbgw_host *h, uint64_t handle, json_t *content, int success) {
    (void)h, (void)handle, (void)success;
    replies++;
    json_decref(content);
    return 0;
}

static int discard_emit(const tbgw_host *h, tbgw_converted *c) {
    (void)h;
    tbgw_converted_free(c);
    return 0;
}

static const char *CFG =
    "{\"client\":{\"gatewayIP\":\"127.0.0.1\",\"gatewayPort\":9},"
    "\"devices\":[{\"deviceInfo\":{\"deviceNameExpressionSource\":\"expression\","
    "\"deviceNameExpression\":\"D ${1/0/5}\",\"deviceNameDataType\":\"string\"},"
    "\"attributes\":[{\"key\":\"t\",\"groupAddress\":\"1/0/6\",\"type\":\"temperature\"}],"
    "\"timeseries\":[{\"key\":\"s\",\"groupAddress\":\"1/0/7\",\"type\":\"switch\"}]}],"
    "\"attributeUpdates\":[{\"deviceNameFilter\":\".*\",\"key\":\"a\",\"groupAddress\":\"1/0/9\","
    "\"dataType\":\"percentU8\"},{\"deviceNameFilter\":\"D.*\",\"key\":\"b\",\"groupAddress\":\"1/0/10\","
    "\"dataType\":\"datetime\"}],"
    "\"serverSideRpc\":[{\"deviceNameFilter\":\".*\",\"method\":\"r\",\"requestType\":\"read\","
    "\"groupAddress\":\"1/0/5\",\"dataType\":\"string\"},{\"deviceNameFilter\":\".*\",\"method\":\"w\","
    "\"requestType\":\"write\",\"groupAddress\":\"1/0/5\",\"dataType\":\"color_rgb\"}]}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static tbgw_host host;
    static void *self;
    if (!self) {
        host.abi = TBGW_CONNECTOR_ABI;
        host.log = tbgw_logger_get("fuzz");
        host.log->level = TBGW_NONE;
        host.conv_log = host.log;
        host.rpc_reply = discard_reply;
        host.emit = discard_emit;
        json_t *cfg = json_loads(CFG, 0, NULL);
        tbgw_err err;
        if (tbgw_connector_knx.create(&host, cfg, &self, &err)) __builtin_trap();
        json_decref(cfg);
    }
    kx *k = self;
    knx_client_cfg cc = k->ccfg;
    k->client = knx_client_new(&cc, NULL, host.log);
    k->connected = 1;
    json_t *in = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
    if (json_is_object(in)) {
        const char *device = json_string_value(json_object_get(in, "device"));
        const json_t *d = json_object_get(in, "data");
        if (json_is_object(d)) {
            tbgw_attr_update u = {.device = device ? device : "D x", .data = d};
            tbgw_connector_knx.on_attribute_update(self, &u);
        } else {
            const char *method = json_string_value(json_object_get(in, "method"));
            tbgw_rpc_req r = {.handle = 1,
                              .device = device,
                              .id = 1,
                              .method = method ? method : "get",
                              .params = json_object_get(in, "params"),
                              .timeout_ms = 5000};
            replies = 0;
            tbgw_connector_knx.on_rpc(self, &r);
            kx_rpc_fail_all(k, "fuzz");
            if (replies != 1) __builtin_trap();
        }
    } else if (size >= 3) { /* a telegram for one of the listened addresses */
        knx_ldata ld = {.code = KNX_CEMI_LDATA_IND,
                        .group = 1,
                        .dst = (uint16_t)(0x0805 + data[0] % 3),
                        .apci = (data[1] & 1) ? KNX_APCI_WRITE : KNX_APCI_RESPONSE};
        ld.value.small = (data[1] & 2) ? 1 : 0;
        ld.value.data[0] = data[2];
        ld.value.len = (uint8_t)((size - 2) < KNX_MAX_APDU_DATA ? size - 2 : KNX_MAX_APDU_DATA);
        if (!ld.value.small) memcpy(ld.value.data, data + 2, ld.value.len);
        kx_on_telegram(k, &ld);
    }
    json_decref(in);
    k->connected = 0;
    knx_client_free(k->client);
    k->client = NULL;
    return 0;
}
