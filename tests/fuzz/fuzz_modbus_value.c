/* Fuzzes value decoding of arbitrary register/coil payloads with every type and order, and encoding of
 * arbitrary JSON values for the write function codes. */
#include <stddef.h>
#include <stdint.h>

#include "connectors/modbus/mb_value.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 3) return 0;
    tbgw_mbv_spec s;
    tbgw_mbv_spec_init(&s);
    s.type = (tbgw_mbv_type)(data[0] % (MBV_BITS + 1));
    s.count = data[1] % 130;
    s.byte_little = data[2] & 1;
    s.word_little = (data[2] >> 1) & 1;
    s.bit = (data[2] & 4) ? (data[2] >> 3) : -1;
    s.divider = (data[2] & 0x80) ? 10 : 0;
    int fc = 1 + (data[0] >> 4) % 4;
    char err[128] = "";
    json_t *v = tbgw_mbv_decode(&s, fc, data + 3, size - 3, err, sizeof err);
    json_decref(v);
    /* the same bytes as a JSON value to write (bits lists, "0101" strings, numbers...) */
    v = json_loadb((const char *)data + 3, size - 3, JSON_DECODE_ANY, NULL);
    if (v) {
        static const int wfc[] = {5, 6, 15, 16};
        uint16_t regs[130];
        uint8_t coils[2000];
        size_t n = 0;
        int w = wfc[(data[0] >> 6) & 3];
        tbgw_mbv_encode(&s, w, v, regs, coils, w == 5 || w == 15 ? sizeof coils : 130, &n, err, sizeof err);
        json_decref(v);
    }
    return 0;
}
