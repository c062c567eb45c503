/* Fuzzes the JSON and bytes uplink converters with fixed mappings; input = MQTT payload. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "convert/bytes_conv.h"
#include "convert/json_conv.h"
#include "util/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const json_cfgs[] = {
    "{\"deviceInfo\":{\"deviceNameExpressionSource\":\"message\",\"deviceNameExpression\":\"${name} "
    "${a.b[0]}\","
    "\"deviceProfileExpressionSource\":\"topic\",\"deviceProfileExpression\":\"(?<=s/)(.*?)(?=/d)\"},"
    "\"attributes\":[{\"type\":\"string\",\"key\":\"${k}\",\"value\":\"${v}\"},{\"type\":\"raw\",\"key\":"
    "\"r\","
    "\"value\":\"${a..x}\"}],\"timeseries\":[{\"type\":\"double\",\"key\":\"t\",\"value\":\"${t}\","
    "\"tsField\":"
    "\"${m.ts}\",\"dayfirst\":true},{\"type\":\"int\",\"key\":\"i\",\"value\":\"x${i}y\"},{\"type\":\"bool\","
    "\"key\":"
    "\"b\",\"value\":\"${b}\"},{\"type\":\"int\",\"key\":\"w\",\"value\":\"${a[*].w}\"}]}",
    "{\"deviceInfo\":{\"deviceNameExpression\":\"Dev\"},\"attributes\":\"*\",\"timeseries\":\"*\"}",
};

static const char *const bytes_cfg =
    "{\"deviceInfo\":{\"deviceNameExpressionSource\":\"message\",\"deviceNameExpression\":\"[0:4]\"},"
    "\"attributes\":[{\"key\":\"raw\",\"value\":\"[:]\"},{\"key\":\"h[1]\",\"value\":\"[-3:]\",\"hexMode\":"
    "true}],"
    "\"timeseries\":[{\"key\":\"t\",\"value\":\"[4:]\"},{\"key\":\"x\",\"value\":\"[2]\"}]}";

static tbgw_json_conv *jc[2];
static tbgw_bytes_conv *bc;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    tbgw_err err = {0};
    if (!bc) {
        for (size_t i = 0; i < 2; i++) {
            json_t *c = json_loads(json_cfgs[i], 0, NULL);
            if (!c || tbgw_json_conv_new(c, NULL, "converter", &jc[i], &err)) abort();
            json_decref(c);
        }
        json_t *c = json_loads(bytes_cfg, 0, NULL);
        if (!c || tbgw_bytes_conv_new(c, NULL, "converter", &bc, &err)) abort();
        json_decref(c);
    }
    tbgw_converted *out = NULL;
    json_t *p =
        tbgw_json_loadb(data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL); /* as the MQTT connector */
    if (p) {
        for (size_t i = 0; i < 2; i++) tbgw_json_conv_convert(jc[i], "s/x/d", p, 1, &out, &err);
        json_decref(p);
    }
    tbgw_bytes_conv_convert(bc, "s/x/d", data, size, 1, &out, &err);
    for (tbgw_converted *c = out; c; c = c->next)
        if (!c->device_name || tbgw_converted_count(c) == 0) abort();
    tbgw_converted_free(out);
    return 0;
}
