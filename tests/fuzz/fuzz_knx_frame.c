/* Fuzzes the KNXnet/IP frame decoder, the TCP stream framing and the cEMI L_Data decoder (every datagram
 * or stream a gateway or the multicast group may send), and checks that a decoded group telegram re-encodes
 * to the same values. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto/knx/knx_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void cemi(const uint8_t *p, size_t n) {
    knx_ldata ld;
    if (knx_cemi_parse(p, n, &ld) != 0 || !ld.group || ld.apci > KNX_APCI_WRITE) return;
    uint8_t out[64];
    int len = knx_cemi_encode_group(out, sizeof out, ld.code, ld.src, ld.dst, ld.apci, &ld.value);
    if (len < 0) __builtin_trap();
    knx_ldata again;
    if (knx_cemi_parse(out, (size_t)len, &again) != 0) __builtin_trap();
    if (again.dst != ld.dst || again.src != ld.src || again.apci != ld.apci) __builtin_trap();
    if (ld.apci != KNX_APCI_READ &&
        (again.value.small != ld.value.small || again.value.len != ld.value.len ||
         memcmp(again.value.data, ld.value.data, ld.value.small ? 1 : ld.value.len)))
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    knx_frame f;
    if (knx_frame_parse(data, size, &f) == 0 && f.cemi) {
        if (f.cemi < data || f.cemi + f.cemi_len > data + size) __builtin_trap();
        cemi(f.cemi, f.cemi_len);
    }
    cemi(data, size);
    /* a TCP stream: frames cut by their length, each decoded */
    size_t off = 0;
    for (;;) {
        int n = knx_stream_frame_len(data + off, size - off);
        if (n <= 0) break;
        if ((size_t)n > size - off) __builtin_trap();
        knx_frame_parse(data + off, (size_t)n, &f);
        off += (size_t)n;
    }
    uint16_t a;
    char s[64];
    size_t n = size < sizeof s - 1 ? size : sizeof s - 1;
    memcpy(s, data, n);
    s[n] = '\0';
    if (knx_ga_parse(s, &a) == 0) {
        char back[32];
        knx_ga_format(a, KNX_GA_LONG, back, sizeof back);
        uint16_t b;
        if (knx_ga_parse(back, &b) != 0 || b != a) __builtin_trap();
    }
    knx_ia_parse(s, &a);
    return 0;
}
