/* Fuzzes the MQTT client's packet decoders and its session's handling of what a broker sends: the
 * first byte picks the protocol version, the rest is the byte stream from the broker. Every packet
 * framed from it is decoded by type; then the same stream is handed to a session (as if just read
 * from its socket, first in CONNACK state) which must drop the connection on anything malformed,
 * never read outside the packet. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto/mqtt/mqtt_codec.h"
#include "proto/mqtt/mqtt_session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void on_msg(void *ud, const char *topic, const uint8_t *p, size_t len, int qos, int retain) {
    (void)ud;
    (void)qos;
    (void)retain;
    if (p[len] != 0 || !topic[0]) __builtin_trap();
    volatile size_t n = strlen(topic) + len;
    (void)n;
}

static void on_connack(void *ud, int code, const char *text) {
    (void)ud;
    if (code && !text) __builtin_trap();
}

static void on_suback(void *ud, const char *filter, int code) {
    (void)ud;
    (void)filter;
    (void)code;
}

static void on_lost(void *ud, const char *why, int pe) {
    (void)pe;
    if (!why || !why[0]) __builtin_trap();
    (*(int *)ud)++;
}

static void decode(const uint8_t *p, size_t n, int version) {
    size_t off = 0;
    for (;;) {
        mqtt_frame f;
        size_t need;
        const char *why = NULL;
        int r = mqtt_frame_next(p + off, n - off, &f, &need, &why);
        if (r < 0 && !why) __builtin_trap();
        if (r <= 0) break;
        if (f.total > n - off || f.body + f.len != p + off + f.total) __builtin_trap();
        mqtt_connack ca;
        mqtt_publish pub;
        mqtt_ack ack;
        mqtt_suback sa;
        switch (f.type) {
        case MQTT_CONNACK:
            r = mqtt_parse_connack(&f, version, &ca, &why);
            break;
        case MQTT_PUBLISH:
            r = mqtt_parse_publish(&f, version, &pub, &why);
            if (!r && (pub.topic < f.body || pub.payload + pub.payload_len != f.body + f.len))
                __builtin_trap();
            break;
        case MQTT_SUBACK:
            r = mqtt_parse_suback(&f, version, &sa, &why);
            if (!r && sa.codes + sa.n != f.body + f.len) __builtin_trap();
            break;
        default:
            r = mqtt_parse_ack(&f, version, &ack, &why);
            break;
        }
        if (r && !why) __builtin_trap();
        off += f.total;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int version = data[0] % 3 + 3;
    data++;
    size--;
    decode(data, size, version);

    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv)) return 0;
    int lost = 0;
    mqtt_session s;
    mqtt_session_cfg cfg = {
        .host = "broker", .port = 1883, .client_id = "f", .version = version, .keepalive = 5};
    mqtt_session_cb cb = {.ud = &lost,
                          .on_connack = on_connack,
                          .on_message = on_msg,
                          .on_suback = on_suback,
                          .on_lost = on_lost};
    char err[100];
    if (mqtt_session_init(&s, &cfg, &cb, err, sizeof err)) abort();
    mqtt_session_publish(&s, "up", "x", 1, 1, 0); /* a message in flight: acknowledgements find it */
    s.fd = sv[0];
    s.state = MQS_CONNACK;
    s.rbuf = malloc(size + 1);
    s.rcap = size + 1;
    if (size) memcpy(s.rbuf, data, size);
    s.rlen = size;
    mqtt_session_process(&s, 1);
    mqtt_session_flush(&s, 1);
    if (s.state == MQS_IDLE && lost != 1) __builtin_trap();
    mqtt_session_free(&s);
    close(sv[1]);
    return 0;
}
