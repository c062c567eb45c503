/* Fuzzes the DPT codecs: the first octet picks a datapoint type, the second whether the payload is a
 * 6-bit value; the rest is decoded as the group value and, parsed as JSON, encoded. What encodes must
 * decode again. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto/knx/knx_dpt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    const knx_dpt *d = knx_dpt_at(data[0] % knx_dpt_count());
    knx_payload p = {0};
    p.small = data[1] & 1;
    size_t n = size - 2;
    if (p.small)
        p.data[0] = n ? data[2] & 0x3F : 0;
    else {
        p.len = (uint8_t)(n < KNX_MAX_APDU_DATA ? n : KNX_MAX_APDU_DATA);
        memcpy(p.data, data + 2, p.len);
    }
    tbgw_value v;
    char text[KNX_DPT_TEXT_CAP];
    knx_dpt_decode(d, &p, &v, text, sizeof text);
    json_t *j = json_loadb((const char *)data + 2, n, JSON_DECODE_ANY, NULL);
    if (j) {
        char err[160];
        knx_payload e;
        if (knx_dpt_encode(d, j, &e, err, sizeof err) == 0 &&
            knx_dpt_decode(d, &e, &v, text, sizeof text) != 0)
            __builtin_trap();
        json_decref(j);
    }
    knx_dpt_find((const char *)text);
    return 0;
}
