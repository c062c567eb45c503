/* Example custom uplink converter for the Modbus connector (include/tbgw/converter.h).
 *
 * A Modbus slave with "uplink_converter": "CustomModbusUplinkConverter" hands every poll to this
 * converter as one JSON document (see docs/connectors/modbus.md, "Custom uplink converter"):
 *   {"deviceName": "...", "deviceType": "...", "ts": <ms>, "unitId": 1,
 *    "data": {"<key>": {"kind": "timeseries"|"attributes", "type": "...", "functionCode": 3,
 *                       "address": 0, "objectsCount": 2, "registers": [4660, 22136]} |
 *                      {..., "functionCode": 1, "bits": [1, 0, 1]}}}
 * This one reports, for each key, the registers joined big-endian as an unsigned integer (at most 4
 * registers) or the bits as a "101" string, under the same key and kind, times extensionConfig.scale
 * (a number, default 1) for registers. The device name and type are taken from the document.
 *
 * Build: any folder examples/<name>/ becomes build/plugins/<name>.so. */
#include <stdlib.h>
#include <string.h>
#include <tbgw/converter.h>

typedef struct mconv {
    const tbgw_converter_api *api;
    double scale;
} mconv;

static int fail(tbgw_err *err, int code, const char *msg) {
    if (err) {
        err->code = code;
        strncpy(err->msg, msg, sizeof err->msg - 1);
        err->msg[sizeof err->msg - 1] = 0;
    }
    return code;
}

static int mc_create(const tbgw_converter_api *api, const json_t *config, tbgw_logger *log, void **self,
                     tbgw_err *err) {
    (void)log;
    const json_t *sc = json_object_get(json_object_get(config, "extensionConfig"), "scale");
    if (sc && !json_is_number(sc)) return fail(err, TBGW_EINVAL, "extensionConfig.scale: expected a number");
    mconv *c = calloc(1, sizeof *c);
    if (!c) return TBGW_ENOMEM;
    c->api = api;
    c->scale = sc ? json_number_value(sc) : 1;
    *self = c;
    return 0;
}

static int mc_convert(void *self, const char *topic, const uint8_t *payload, size_t len, tbgw_converted **out,
                      tbgw_err *err) {
    mconv *c = self;
    (void)topic;
    json_error_t je;
    json_t *doc = json_loadb((const char *)payload, len, 0, &je);
    if (!doc) return fail(err, TBGW_EINVAL, "payload: not JSON");
    const char *dev = json_string_value(json_object_get(doc, "deviceName"));
    const char *type = json_string_value(json_object_get(doc, "deviceType"));
    json_t *data = json_object_get(doc, "data");
    json_t *tsj = json_object_get(doc, "ts");
    int64_t ts = json_is_integer(tsj) ? json_integer_value(tsj) : c->api->now_ms();
    if (!dev || !json_is_object(data)) {
        json_decref(doc);
        return fail(err, TBGW_EINVAL, "payload: deviceName and data expected");
    }
    tbgw_converted *r = c->api->converted_new(dev, type);
    if (!r) {
        json_decref(doc);
        return TBGW_ENOMEM;
    }
    *out = r;
    int rc = 0;
    const char *key;
    json_t *e;
    json_object_foreach(data, key, e) {
        json_t *regs = json_object_get(e, "registers"), *bits = json_object_get(e, "bits");
        tbgw_value v;
        char text[2048];
        if (json_is_array(regs) && json_array_size(regs) >= 1 && json_array_size(regs) <= 4) {
            uint64_t u = 0;
            for (size_t i = 0; i < json_array_size(regs); i++)
                u = u << 16 | (uint16_t)json_integer_value(json_array_get(regs, i));
            v = c->scale == 1 ? tbgw_value_uint(u) : tbgw_value_double((double)u * c->scale);
        } else if (json_is_array(bits) && json_array_size(bits) < sizeof text) {
            size_t i;
            for (i = 0; i < json_array_size(bits); i++)
                text[i] = json_integer_value(json_array_get(bits, i)) ? '1' : '0';
            text[i] = 0;
            v = tbgw_value_string(text);
        } else {
            continue;
        }
        const char *kind = json_string_value(json_object_get(e, "kind"));
        rc = kind && !strcmp(kind, "attributes") ? c->api->add_attribute(r, key, &v)
                                                 : c->api->add_telemetry(r, ts, key, &v);
        if (rc) break;
    }
    json_decref(doc);
    return rc;
}

static void mc_destroy(void *self) {
    free(self);
}

static const tbgw_converter_ops OPS = {
    .abi = TBGW_CONVERTER_ABI,
    .name = "CustomModbusUplinkConverter",
    .create = mc_create,
    .convert = mc_convert,
    .destroy = mc_destroy,
};

const tbgw_converter_ops *tbgw_converter_entry(uint32_t abi, const char *name);
const tbgw_converter_ops *tbgw_converter_entry(uint32_t abi, const char *name) {
    if (abi != TBGW_CONVERTER_ABI || !name || strcmp(name, OPS.name)) return NULL;
    return &OPS;
}
