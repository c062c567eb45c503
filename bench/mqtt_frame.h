/* MQTT stream framing for the bench's minimal clients (bench_loadgen, bench_sink -s). */
#ifndef TBGW_BENCH_MQTT_FRAME_H
#define TBGW_BENCH_MQTT_FRAME_H

#include <stddef.h>
#include <stdint.h>

/* Whether a whole packet (fixed header, remaining length, body) starts at in[off] of the len bytes
 * read so far; if so *body is the index of its body and *body_len its length. */
static inline int mqtt_frame(const uint8_t *in, size_t len, size_t off, size_t *body, size_t *body_len) {
    size_t i = off + 1, rl = 0, mul = 1;
    while (i < len && i < off + 5) {
        rl += (in[i] & 127) * mul;
        mul *= 128;
        if (!(in[i++] & 128)) {
            if (len - i < rl) return 0;
            *body = i;
            *body_len = rl;
            return 1;
        }
    }
    return 0;
}

#endif
