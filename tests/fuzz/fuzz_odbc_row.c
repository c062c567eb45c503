/* Fuzzes the ODBC connector's row conversion: the input is a result row as JSON ({column: value}),
 * mapped with the reference configuration's mapping and with one using nameExpressions and "*"
 * telemetry, and in the whole-mapping "*" mode (deviceName, attributes, telemetry columns as JSON
 * text); the same bytes are also read as DECIMAL text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/odbc/odbc_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static odbc_mapping make(const char *json) {
    json_error_t je;
    json_t *m = json_loads(json, JSON_DECODE_ANY, &je);
    odbc_mapping out;
    tbgw_err err;
    if (!m || odbc_mapping_parse(m, &out, NULL, NULL, &err) != 0) abort();
    json_decref(m);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static odbc_mapping ref, other, whole;
    static tbgw_py_ctx *ctx;
    if (!ctx) {
        ref = make(
            "{\"device\": {\"type\": \"postgres\", \"name\": \"'ODBC ' + entity_id\"}, \"attributes\": \"*\","
            "\"timeseries\": [{\"name\": \"value\", \"value\": "
            "\"[i for i in [str_v, long_v, dbl_v,bool_v] if i is not None][0]\"}]}");
        other =
            make("{\"device\": {\"type\": \"kind or 'x'\", \"name\": \"str(id) + '-' + str(len(str(v)))\"},"
                 "\"attributes\": [{\"nameExpression\": \"'a' + str(id)\", \"column\": \"v\"},"
                 "{\"name\": \"twice\", \"value\": \"v * 2\"}], \"timeseries\": \"*\"}");
        whole = make("\"*\"");
        tbgw_py_limits lim = {.max_steps = 100000, .max_memory = 1 << 20};
        ctx = tbgw_py_ctx_new(&lim);
        if (!ctx) abort();
    }
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    json_t *d = odbc_decimal_json(text);
    json_decref(d);
    json_error_t je;
    json_t *row = json_loadb(text, size, 0, &je);
    if (json_is_object(row)) {
        odbc_mapping *ms[3] = {&ref, &other, &whole};
        for (int i = 0; i < 3; i++) {
            size_t item_errors = 0;
            tbgw_err err = {0};
            tbgw_converted *rec = odbc_convert_row(ms[i], ctx, row, &item_errors, &err);
            tbgw_converted_free(rec);
        }
    }
    json_decref(row);
    free(text);
    return 0;
}
