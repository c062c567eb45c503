/* Shared body of the Modbus framer fuzz targets: decodes frames of one framing in both directions
 * and runs the PDU parsers behind them (server side: the register store executes requests). */
#ifndef TBGW_FUZZ_MODBUS_FRAME_H
#define TBGW_FUZZ_MODBUS_FRAME_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto/modbus/mb_loop.h"
#include "proto/modbus/mb_pdu.h"

static inline void fuzz_modbus_frames(int framing, const uint8_t *data, size_t size) {
    static tbgw_mb_store store;
    static tbgw_mb_identity ident;
    static char long_obj[300];
    if (!store.identity) { /* function 43: basic, regular, extended and an object longer than a PDU */
        memset(long_obj, 'x', sizeof long_obj - 1);
        ident.obj[0] = "vendor";
        ident.obj[2] = "1.0";
        ident.obj[5] = "model";
        for (int i = 0x80; i < 0x88; i++) ident.obj[i] = long_obj + 200;
        ident.obj[0xFF] = long_obj;
        store.identity = &ident;
    }
    for (int dir = 0; dir < 2; dir++) {
        size_t off = 0;
        while (off < size) {
            tbgw_mb_frame fr;
            int n = tbgw_mb_frame_decode(framing, dir, data + off, size - off, &fr);
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
}
#endif
