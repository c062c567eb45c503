/* Fuzzes the Modbus rtu frame decoder in both directions, and the PDU parsers behind it. */
#include <stddef.h>
#include <stdint.h>

#include "proto/modbus/mb_loop.h"
#include "proto/modbus/mb_pdu.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static tbgw_mb_store store;
    for (int dir = 0; dir < 2; dir++) {
        size_t off = 0;
        while (off < size) {
            tbgw_mb_frame fr;
            int n = tbgw_mb_frame_decode(TBGW_MB_FRAMING_RTU, dir, data + off, size - off, &fr);
            if (n <= 0) break;
            off += (size_t)n;
            if (dir) {
                uint8_t rsp[TBGW_MB_MAX_PDU];
                int wrote;
                tbgw_mb_store_execute(&store, fr.pdu, fr.pdu_len, rsp, &wrote, NULL);
            } else {
                tbgw_mb_req req = {
                    .fc = fr.pdu[0] & 0x7F, .addr = 0, .count = (uint16_t)(fr.pdu_len > 1 ? fr.pdu[1] : 1)};
                tbgw_mb_rsp rsp;
                tbgw_mb_pdu_parse_rsp(&req, fr.pdu, fr.pdu_len, &rsp);
            }
        }
    }
    return 0;
}
