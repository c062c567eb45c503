/* Example custom uplink converter for the ODBC connector (include/tbgw/converter.h, docs/connectors/odbc.md).
 *
 * The ODBC connector hands a converter one result row per call: the payload is the row as a JSON
 * object {column: value} (SQL types kept: integers, reals, booleans, text, null), the topic is the
 * device name computed by mapping.device.name (the connector's name without a mapping).
 *
 * "OdbcRowConverter": columns named in extensionConfig.attributes become attributes, every other
 * numeric or boolean column becomes telemetry (text columns outside "attributes" are left out), the
 * row's "ts" column (epoch ms) is the telemetry time and extensionConfig.scale ({column: factor})
 * multiplies a telemetry value. The device type is extensionConfig.deviceType (default "default").
 *
 *   "converter": {"type": "custom", "extension": "OdbcRowConverter",
 *                 "extensionConfig": {"attributes": ["model"], "scale": {"temp_c10": 0.1}}}
 *
 * Build: examples/<name>/ becomes build/plugins/<name>.so; tbgw finds the converter by asking every
 * .so in <folder of tbgw>/plugins/ (or install it as <config dir>/extensions/odbc/OdbcRowConverter.so). */
#include <stdlib.h>
#include <string.h>
#include <tbgw/converter.h>

typedef struct rowconv {
    const tbgw_converter_api *api;
    json_t *attrs, *scale;
    char *type;
} rowconv;

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
    const json_t *ext = json_object_get(config, "extensionConfig");
    const json_t *attrs = json_object_get(ext, "attributes"), *scale = json_object_get(ext, "scale");
    const json_t *type = json_object_get(ext, "deviceType");
    if (attrs && !json_is_array(attrs))
        return fail(err, "extensionConfig.attributes: expected a list of columns");
    if (scale && !json_is_object(scale)) return fail(err, "extensionConfig.scale: expected {column: factor}");
    rowconv *c = calloc(1, sizeof *c);
    if (!c) return TBGW_ENOMEM;
    c->api = api;
    c->attrs = attrs ? json_incref((json_t *)attrs) : json_array();
    c->scale = scale ? json_incref((json_t *)scale) : json_object();
    c->type = strdup(json_is_string(type) ? json_string_value(type) : "default");
    *self = c;
    return 0;
}

static int is_attr(const rowconv *c, const char *col) {
    size_t i;
    const json_t *e;
    json_array_foreach(c->attrs, i, e) if (json_is_string(e) && !strcmp(json_string_value(e), col)) return 1;
    return 0;
}

/* A number or boolean as a value; -1 for anything else. */
static int value_of(const json_t *v, tbgw_value *out) {
    if (json_is_integer(v))
        *out = tbgw_value_int(json_integer_value(v));
    else if (json_is_real(v))
        *out = tbgw_value_double(json_real_value(v));
    else if (json_is_boolean(v))
        *out = tbgw_value_bool(json_is_true(v));
    else
        return -1;
    return 0;
}

static int rc_convert(void *self, const char *topic, const uint8_t *payload, size_t len, tbgw_converted **out,
                      tbgw_err *err) {
    rowconv *c = self;
    json_error_t je;
    json_t *row = json_loadb((const char *)payload, len, 0, &je);
    if (!json_is_object(row)) {
        json_decref(row);
        return fail(err, "the row is not a JSON object");
    }
    tbgw_converted *rec = c->api->converted_new(topic && *topic ? topic : "ODBC device", c->type);
    if (!rec) {
        json_decref(row);
        return TBGW_ENOMEM;
    }
    const json_t *ts = json_object_get(row, "ts");
    int64_t t = json_is_integer(ts) && json_integer_value(ts) > 0 ? (int64_t)json_integer_value(ts)
                                                                  : c->api->now_ms();
    const char *k;
    json_t *v;
    json_object_foreach(row, k, v) {
        tbgw_value tv = tbgw_value_null();
        if (json_is_null(v) || !strcmp(k, "ts")) continue;
        if (is_attr(c, k)) {
            if (json_is_string(v))
                tv.type = TBGW_V_STRING, tv.u.s = json_string_value(v);
            else if (value_of(v, &tv) != 0)
                continue;
            c->api->add_attribute(rec, k, &tv);
            continue;
        }
        const json_t *f = json_object_get(c->scale, k);
        if (json_is_number(f) && json_is_number(v))
            tv = tbgw_value_double(json_number_value(v) * json_number_value(f));
        else if (value_of(v, &tv) != 0)
            continue;
        c->api->add_telemetry(rec, t, k, &tv);
    }
    json_decref(row);
    *out = rec;
    return 0;
}

static void rc_destroy(void *self) {
    rowconv *c = self;
    json_decref(c->attrs);
    json_decref(c->scale);
    free(c->type);
    free(c);
}

static const tbgw_converter_ops row_ops = {
    .abi = TBGW_CONVERTER_ABI,
    .name = "OdbcRowConverter",
    .create = rc_create,
    .convert = rc_convert,
    .destroy = rc_destroy,
};

const tbgw_converter_ops *tbgw_converter_entry(uint32_t abi, const char *name);
const tbgw_converter_ops *tbgw_converter_entry(uint32_t abi, const char *name) {
    if (abi != TBGW_CONVERTER_ABI || !name || strcmp(name, row_ops.name)) return NULL;
    return &row_ops;
}
