/* Fuzz target: the OPC-UA connector's configuration parser (the connector JSON file), and the text
 * helpers used on RPC parameters. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/opcua/opcua.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    json_t *j = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
    if (j) {
        opcua_cfg cfg;
        tbgw_err err = {0};
        opcua_cfg_parse(j, "/tmp", NULL, &cfg, &err);
        opcua_cfg_free(&cfg);
        tbgw_ua_variant v;
        if (opcua_variant_from_json(j, &v) == 0) {
            json_t *back = opcua_variant_to_json(&v);
            json_decref(back);
            tbgw_ua_variant_clear(&v);
        }
        for (uint8_t t = 1; t <= TBGW_UA_STRING; t++) {
            if (opcua_variant_cast(j, t, &v) == 0) tbgw_ua_variant_clear(&v);
        }
        json_decref(j);
    }
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    json_t *t = opcua_json_from_text(text);
    json_decref(t);
    char *body = opcua_expr_body(text);
    char **segs;
    size_t n;
    if (body && opcua_path_split(body, &segs, &n) == 0) opcua_path_free(segs, n);
    free(body);
    free(text);
    return 0;
}
