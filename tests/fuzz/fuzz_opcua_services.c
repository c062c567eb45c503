/* Fuzz target: the OPC UA service response bodies the connector's rescans rely on — the
 * StatusCode-results decoder (DeleteMonitoredItems, Write, DeleteSubscriptions) and the
 * CreateMonitoredItems-results decoder — with the operation count taken from the input, plus the
 * DeleteMonitoredItems request encoding of ids taken from the input. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/opcua/ua_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    size_t n = data[1]; /* operations the response must answer */
    uint32_t st[256], ids[256];
    tbgw_ua_dec d;
    tbgw_ua_dec_init(&d, data + 2, size - 2);
    switch (data[0] % 3) {
    case 0:
        if (tbgw_ua_dec_status_results(&d, n, st) == 0 && n > 0) (void)st[n - 1];
        break;
    case 1:
        tbgw_ua_dec_create_mi_results(&d, n, st, (data[0] & 0x80) ? NULL : ids);
        break;
    default: {
        size_t k = (size - 2) / 4 < 256 ? (size - 2) / 4 : 256;
        memcpy(ids, data + 2, k * 4);
        tbgw_buf b;
        tbgw_buf_init(&b);
        tbgw_ua_enc_delete_mi(&b, (uint32_t)n, ids, k);
        if (!b.oom && b.len != 8 + 4 * k) abort();
        tbgw_buf_free(&b);
        break;
    }
    }
    return 0;
}
