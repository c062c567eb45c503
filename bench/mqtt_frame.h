/* MQTT framing and encoding shared by the bench's own minimal clients and servers (bench_loadgen,
 * bench_source, bench_sink -s / --serve), and the device message they all send or expect. */
#ifndef TBGW_BENCH_MQTT_FRAME_H
#define TBGW_BENCH_MQTT_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* At most this many QoS 1 messages are unacknowledged at the load side. */
#define BENCH_MAX_UNACKED 20000

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

/* Reads a variable byte integer at p[*i] (of n bytes), advancing *i; -1 when malformed or short. */
static inline long mqtt_varint(const uint8_t *p, size_t n, size_t *i) {
    long v = 0, mul = 1;
    for (int k = 0; k < 4 && *i < n; k++) {
        uint8_t b = p[(*i)++];
        v += (b & 127) * mul;
        if (!(b & 128)) return v;
        mul *= 128;
    }
    return -1;
}

/* A growing output buffer. */
typedef struct {
    uint8_t *p;
    size_t len, cap;
} mqtt_buf;

static inline void mqtt_put(mqtt_buf *b, const void *p, size_t n) {
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p) {
            fprintf(stderr, "bench: out of memory\n");
            exit(1);
        }
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static inline void mqtt_put_u8(mqtt_buf *b, uint8_t v) {
    mqtt_put(b, &v, 1);
}

static inline void mqtt_put_u16(mqtt_buf *b, uint16_t v) {
    uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    mqtt_put(b, x, 2);
}

static inline void mqtt_put_varint(mqtt_buf *b, size_t v) {
    do {
        uint8_t x = v % 128;
        v /= 128;
        mqtt_put_u8(b, v ? x | 0x80 : x);
    } while (v);
}

/* PUBLISH (MQTT 3.1.1, or 5 with an empty property list); returns the offset of the payload in b. */
static inline size_t mqtt_put_publish(mqtt_buf *b, int v5, const char *topic, const void *payload, size_t len,
                                      int qos, uint16_t id) {
    size_t tl = strlen(topic);
    mqtt_put_u8(b, (uint8_t)(0x30 | (qos << 1)));
    mqtt_put_varint(b, 2 + tl + (qos ? 2 : 0) + (v5 ? 1 : 0) + len);
    mqtt_put_u16(b, (uint16_t)tl);
    mqtt_put(b, topic, tl);
    if (qos) mqtt_put_u16(b, id);
    if (v5) mqtt_put_u8(b, 0);
    size_t at = b->len;
    mqtt_put(b, payload, len);
    return at;
}

/* The server side of CONNECT (body p of len bytes: 00 04 MQTT level flags keep-alive [properties]):
 * appends the CONNACK (accepted) to out; *recv_max becomes the MQTT 5 Receive Maximum the client
 * announced, if it did. Returns whether the client speaks MQTT 5, -1 if the packet is too short. */
static inline int mqtt_connect_accept(const uint8_t *p, size_t len, mqtt_buf *out, long *recv_max) {
    if (len < 10) return -1;
    int v5 = p[6] == 5;
    if (v5) {
        size_t i = 10;
        long pl = mqtt_varint(p, len, &i);
        size_t end = pl >= 0 && i + (size_t)pl <= len ? i + (size_t)pl : i;
        while (i < end) { /* properties: only Receive Maximum (0x21) matters here */
            uint8_t id = p[i++];
            if (id == 0x21 && i + 2 <= end) {
                long rm = p[i] << 8 | p[i + 1];
                if (rm > 0) *recv_max = rm;
                i += 2;
            } else if (id == 0x11 || id == 0x27) {
                i += 4;
            } else if (id == 0x17 || id == 0x19) {
                i += 1;
            } else if (id == 0x22) {
                i += 2;
            } else if ((id == 0x15 || id == 0x16) && i + 2 <= end) {
                i += 2 + (size_t)(p[i] << 8 | p[i + 1]);
            } else if (id == 0x26 && i + 2 <= end) {
                i += 2 + (size_t)(p[i] << 8 | p[i + 1]);
                if (i + 2 <= end) i += 2 + (size_t)(p[i] << 8 | p[i + 1]);
            } else {
                break;
            }
        }
    }
    const uint8_t ack4[] = {0x20, 2, 0, 0}, ack5[] = {0x20, 3, 0, 0, 0};
    if (v5)
        mqtt_put(out, ack5, sizeof ack5);
    else
        mqtt_put(out, ack4, sizeof ack4);
    return v5;
}

/* The server side of SUBSCRIBE (body p: id [properties] (filter, options)+): appends the SUBACK
 * granting each filter the QoS it asked, up to 1. Returns the QoS granted to the first filter, -1 if
 * there was none. */
static inline int mqtt_subscribe_accept(const uint8_t *p, size_t len, int v5, mqtt_buf *out) {
    if (len < 2) return -1;
    size_t i = 2, nc = 0;
    uint8_t codes[64];
    if (v5) {
        long pl = mqtt_varint(p, len, &i);
        i += pl > 0 ? (size_t)pl : 0;
    }
    while (i + 2 <= len && nc < sizeof codes) {
        i += 2 + (size_t)(p[i] << 8 | p[i + 1]);
        if (i >= len) break;
        uint8_t q = p[i++] & 3;
        codes[nc++] = q > 1 ? 1 : q;
    }
    mqtt_put_u8(out, 0x90);
    mqtt_put_varint(out, 2 + (v5 ? 1 : 0) + nc);
    mqtt_put(out, p, 2);
    if (v5) mqtt_put_u8(out, 0);
    mqtt_put(out, codes, nc);
    return nc ? codes[0] : -1;
}

/* The bench's device message number i of D devices: topic bench/dev<i % D>/data, payload
 * {"ts":<ts, epoch ms>,"v1":..,"v2":..,"v3":..,"v4":..}, the ts first (at BENCH_TS_AT). Returns the
 * payload's length. */
#define BENCH_TS_AT 6
static inline int bench_message(char *topic, size_t tn, char *payload, size_t pn, long i, long devices,
                                long long ts) {
    snprintf(topic, tn, "bench/dev%ld/data", i % devices);
    return snprintf(payload, pn, "{\"ts\":%lld,\"v1\":%ld.5,\"v2\":%ld,\"v3\":%s,\"v4\":\"s%ld\"}", ts,
                    i % 1000, i, (i & 1) ? "true" : "false", i % 97);
}

#endif
