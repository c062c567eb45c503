/* Fuzzes the BLE connector's converters: input = valueExpression, a NUL byte, then the bytes a
 * device sent; each is converted by the Bytes converter, the HexBytes converter and the HexBytes
 * converter with a compute expression. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/ble/ble_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static tbgw_ble_conv cv;
    static tbgw_py *compute;
    if (!cv.ctx) {
        tbgw_err err;
        static const char c[] = "value * 3 // 2 if value else -1";
        if (tbgw_ble_conv_init(&cv) || tbgw_py_compile(c, sizeof c - 1, 0, &compute, &err, NULL)) abort();
    }
    const uint8_t *nul = memchr(data, 0, size);
    size_t elen = nul ? (size_t)(nul - data) : size;
    char *expr = malloc(elen + 1);
    if (!expr) return 0;
    memcpy(expr, data, elen);
    expr[elen] = 0;
    const uint8_t *payload = nul ? nul + 1 : data + size;
    size_t plen = nul ? size - elen - 1 : 0;
    tbgw_converted *rec = tbgw_converted_new("dev", "default");
    for (int k = 0; k < 3; k++) {
        bitem it = {
            .key = "k", .expr = expr, .hex = k > 0, .telemetry = k & 1, .compute = k == 2 ? compute : NULL};
        tbgw_err err;
        tbgw_ble_add(&cv, rec, &it, payload, plen, &err);
    }
    tbgw_converted_free(rec);
    free(expr);
    return 0;
}
