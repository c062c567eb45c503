/* Example custom uplink converters for the HTTP connectors (include/tbgw/converter.h).
 *
 * "CustomRequestUplinkConverter" mirrors the reference gateway's example extension: the response is
 * JSON {"data": {"value": "<hex bytes>"}}; the device name and type are deviceNameJsonExpression /
 * deviceTypeJsonExpression (taken literally here); every entry of "extension-config" (a list) reads
 * telemetry from the bytes:
 *   {"key", "type": "float"|"int", "fromByte", "toByte", "byteorder": "big"|"little", "signed", "multiplier"}
 *   {"key", "type": "int", "byteAddress", "fromBit", "toBit", "byteorder"}   (bits of one byte)
 * A float is 4 bytes IEEE 754. The value is multiplied by "multiplier" (default 1).
 *
 * "CustomRestUplinkConverter" (REST connector): the request body is the bytes (raw, or as hex text);
 * the device is deviceInfo.deviceNameExpression / deviceProfileExpression (literal); extensionConfig
 * is one entry of the same form with "datatype" for "type" (the reference's rest.json example).
 *
 * Build: any folder examples/<name>/ becomes build/plugins/<name>.so. Install under the converter's
 * name: <config dir>/extensions/request/CustomRequestUplinkConverter.so or
 * <config dir>/extensions/rest/CustomRestUplinkConverter.so (a symlink to this one file). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <tbgw/converter.h>

typedef struct rconv {
    const tbgw_converter_api *api;
    json_t *layout; /* list of entries */
    char *name, *type;
    int rest;
} rconv;

static int fail(tbgw_err *err, const char *msg) {
    if (err) {
        err->code = TBGW_EINVAL;
        strncpy(err->msg, msg, sizeof err->msg - 1);
    }
    return TBGW_EINVAL;
}

static int rc_create(const tbgw_converter_api *api, const json_t *config, tbgw_logger *log, void **self,
                     tbgw_err *err) {
    (void)log;
    json_t *layout = json_object_get(config, "extension-config");
    if (!layout) layout = json_object_get(config, "extensionConfig");
    if (layout && !json_is_array(layout)) return fail(err, "extension-config: expected a list");
    size_t i;
    json_t *e;
    json_array_foreach(layout, i, e) {
        if (!json_is_string(json_object_get(e, "key"))) return fail(err, "extension-config[]: key missing");
    }
    rconv *c = calloc(1, sizeof *c);
    if (!c) return TBGW_ENOMEM;
    const char *n = json_string_value(json_object_get(config, "deviceNameJsonExpression"));
    const char *t = json_string_value(json_object_get(config, "deviceTypeJsonExpression"));
    c->api = api;
    c->layout = layout ? json_incref(layout) : NULL;
    c->name = strdup(n ? n : "CustomRequestDevice");
    c->type = t ? strdup(t) : NULL;
    *self = c;
    return 0;
}

/* REST: extensionConfig is one entry object; "datatype" names the type. */
static int rest_create(const tbgw_converter_api *api, const json_t *config, tbgw_logger *log, void **self,
                       tbgw_err *err) {
    (void)log;
    const json_t *ext = json_object_get(config, "extensionConfig");
    if (!json_is_object(ext) || !json_is_string(json_object_get(ext, "key")))
        return fail(err, "extensionConfig: expected an object with \"key\"");
    json_t *entry = json_deep_copy(ext);
    if (json_object_get(entry, "datatype"))
        json_object_set(entry, "type", json_object_get(entry, "datatype"));
    rconv *c = calloc(1, sizeof *c);
    if (!c) {
        json_decref(entry);
        return TBGW_ENOMEM;
    }
    const json_t *di = json_object_get(config, "deviceInfo");
    const char *n = json_string_value(json_object_get(di, "deviceNameExpression"));
    const char *t = json_string_value(json_object_get(di, "deviceProfileExpression"));
    c->api = api;
    c->layout = json_array();
    json_array_append_new(c->layout, entry);
    c->name = strdup(n ? n : "CustomRestDevice");
    c->type = t ? strdup(t) : NULL;
    c->rest = 1;
    *self = c;
    return 0;
}

static int hexval(int ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    ch = tolower(ch);
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

static int num(const json_t *o, const char *k, int dflt) {
    const json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? (int)json_integer_value(v) : dflt;
}

/* One entry's value; 0 or -1 when the bytes are not there. */
static int read_entry(const json_t *e, const uint8_t *b, size_t n, double *out) {
    const char *order = json_string_value(json_object_get(e, "byteorder"));
    int little = order && !strcmp(order, "little");
    const char *type = json_string_value(json_object_get(e, "type"));
    int addr = num(e, "byteAddress", -1);
    if (addr >= 0) {
        if ((size_t)addr >= n) return -1;
        unsigned byte = b[addr];
        if (little) { /* the bit string is reversed first */
            unsigned r = 0;
            for (int i = 0; i < 8; i++) r |= ((byte >> i) & 1u) << (7 - i);
            byte = r;
        }
        int from = num(e, "fromBit", 0), to = num(e, "toBit", 8);
        if (from < 0 || to > 8 || from >= to) return -1;
        *out = (double)((byte >> from) & ((1u << (to - from)) - 1));
        return 0;
    }
    int from = num(e, "fromByte", 0), to = num(e, "toByte", (int)n);
    if (from < 0 || to > (int)n || from >= to || to - from > 8) return -1;
    uint64_t u = 0;
    int len = to - from;
    for (int i = 0; i < len; i++) u = (u << 8) | b[little ? to - 1 - i : from + i];
    if (type && !strcmp(type, "float")) {
        if (len != 4) return -1;
        uint32_t w = (uint32_t)u;
        float f;
        memcpy(&f, &w, sizeof f);
        *out = f;
        return 0;
    }
    const json_t *sj = json_object_get(e, "signed");
    int sgn = sj ? json_is_true(sj) : 1;
    if (sgn && len < 8 && (u >> (8 * len - 1)) & 1u) {
        *out = (double)(int64_t)(u | (~0ull << (8 * len)));
    } else {
        *out = sgn ? (double)(int64_t)u : (double)u;
    }
    return 0;
}

static int rc_convert(void *self, const char *topic, const uint8_t *payload, size_t len, tbgw_converted **out,
                      tbgw_err *err) {
    (void)topic;
    rconv *c = self;
    uint8_t bytes[256];
    size_t n = 0;
    json_t *body = c->rest ? NULL : json_loadb((const char *)payload, len, 0, NULL);
    const char *hex = json_string_value(json_object_get(json_object_get(body, "data"), "value"));
    if (c->rest) {
        size_t digits = 0;
        while (digits < len && hexval(payload[digits]) >= 0) digits++;
        if (digits == len && len % 2 == 0 && len) {
            hex = (const char *)payload; /* hex text (NUL-terminated by the server) */
        } else {
            for (; n < len && n < sizeof bytes; n++) bytes[n] = payload[n];
        }
    } else if (!hex) {
        json_decref(body);
        return fail(err, "expected {\"data\": {\"value\": \"<hex>\"}}");
    }
    for (const char *p = hex; p && p[0] && p[1] && n < sizeof bytes; p += 2) {
        int hi = hexval(p[0]), lo = hexval(p[1]);
        if (hi < 0 || lo < 0) break;
        bytes[n++] = (uint8_t)(hi << 4 | lo);
    }
    json_decref(body);
    tbgw_converted *r = c->api->converted_new(c->name, c->type);
    if (!r) return TBGW_ENOMEM;
    int64_t ts = c->api->now_ms();
    size_t i;
    json_t *e;
    json_array_foreach(c->layout, i, e) {
        double v;
        if (read_entry(e, bytes, n, &v)) continue;
        const json_t *mj = json_object_get(e, "multiplier");
        double mul = json_is_number(mj) ? json_number_value(mj) : 1.0;
        const char *type = json_string_value(json_object_get(e, "type"));
        int integral = (!type || strcmp(type, "float")) && (!mj || json_is_integer(mj));
        tbgw_value tv = integral ? tbgw_value_int((int64_t)(v * mul)) : tbgw_value_double(v * mul);
        c->api->add_telemetry(r, ts, json_string_value(json_object_get(e, "key")), &tv);
    }
    *out = r;
    return 0;
}

static void rc_destroy(void *self) {
    rconv *c = self;
    json_decref(c->layout);
    free(c->name);
    free(c->type);
    free(c);
}

static const tbgw_converter_ops ops = {
    .abi = TBGW_CONVERTER_ABI,
    .name = "CustomRequestUplinkConverter",
    .create = rc_create,
    .convert = rc_convert,
    .destroy = rc_destroy,
};

static const tbgw_converter_ops rest_ops = {
    .abi = TBGW_CONVERTER_ABI,
    .name = "CustomRestUplinkConverter",
    .create = rest_create,
    .convert = rc_convert,
    .destroy = rc_destroy,
};

const tbgw_converter_ops *tbgw_converter_entry(uint32_t abi, const char *name);
const tbgw_converter_ops *tbgw_converter_entry(uint32_t abi, const char *name) {
    if (abi != TBGW_CONVERTER_ABI || !name) return NULL;
    if (!strcmp(name, ops.name)) return &ops;
    if (!strcmp(name, rest_ops.name)) return &rest_ops;
    return NULL;
}
