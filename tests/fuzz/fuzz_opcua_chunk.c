/* Fuzz target: a UA-TCP byte stream cut into frames, parsed and fed to the chunk assembler, the way
 * the client's receive path does it. */
#include <stddef.h>
#include <stdint.h>

#include "proto/opcua/ua_chunk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    tbgw_ua_assembler a;
    tbgw_ua_asm_init(&a, 1 << 16, 16);
    size_t off = 0;
    while (off < size) {
        int64_t fs = tbgw_ua_frame_size(data + off, size - off, 1 << 16);
        if (fs < 0 || (size_t)fs > size - off) break;
        tbgw_ua_chunk c;
        if (tbgw_ua_chunk_parse(data + off, (size_t)fs, &c) == 0) {
            if (c.type[0] == 'A' && c.type[1] == 'C') {
                tbgw_ua_ack ack;
                tbgw_ua_ack_decode(c.body, c.body_len, &ack);
            } else if (c.type[0] == 'E') {
                uint32_t st;
                char reason[64];
                tbgw_ua_err_decode(c.body, c.body_len, &st, reason, sizeof reason);
            } else if (c.type[0] == 'M' || c.type[0] == 'O' || c.type[0] == 'C') {
                const uint8_t *msg;
                size_t len;
                uint32_t rid;
                if (tbgw_ua_asm_feed(&a, &c, &msg, &len, &rid) == 1 && len > 0) {
                    tbgw_ua_dec d;
                    tbgw_ua_dec_init(&d, msg, len);
                    tbgw_ua_nodeid id;
                    if (tbgw_ua_dec_nodeid(&d, &id) == 0) tbgw_ua_nodeid_clear(&id);
                }
            }
        }
        off += (size_t)fs;
    }
    tbgw_ua_asm_free(&a);
    return 0;
}
