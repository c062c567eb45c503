/* The connector's MQTT client: exact octets of the packets it encodes, decoding of what a broker
 * sends (v3 and v5, properties), malformed input refused with a reason, and the session against a
 * scripted broker on 127.0.0.1 (acknowledgements of one burst in one write, QoS 2 duplicates not
 * delivered twice, a pause keeps packets unacknowledged, DUP resend after a reconnect). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <tbgw/err.h>
#include <unistd.h>

#include "proto/mqtt/mqtt_codec.h"
#include "proto/mqtt/mqtt_session.h"
#include "util/time.h"

static void frame(const uint8_t *p, size_t n, mqtt_frame *f) {
    size_t need;
    const char *why = NULL;
    assert_int_equal(mqtt_frame_next(p, n, f, &need, &why), 1);
}

static void test_connect_encoding(void **st) {
    (void)st;
    tbgw_buf b;
    tbgw_buf_init(&b);
    mqtt_connect_opts o = {.version = MQTT_V311,
                           .client_id = "gw",
                           .keepalive = 60,
                           .clean = 1,
                           .username = "u",
                           .password = "pw"};
    assert_int_equal(mqtt_enc_connect(&b, &o), 0);
    const uint8_t v311[] = {0x10, 21, 0,   4,   'M', 'Q', 'T', 'T', 4, 0xC2, 0,  60,
                            0,    2,  'g', 'w', 0,   1,   'u', 0,   2, 'p',  'w'};
    assert_int_equal(b.len, sizeof v311);
    assert_memory_equal(b.p, v311, sizeof v311);
    tbgw_buf_reset(&b);
    mqtt_connect_opts o5 = {.version = MQTT_V5, .client_id = "c", .keepalive = 10, .session_expiry = 3600};
    assert_int_equal(mqtt_enc_connect(&b, &o5), 0);
    const uint8_t v5[] = {0x10, 19, 0,    4, 'M', 'Q',  'T',  'T', 5, 0x00, 0,
                          10,   5,  0x11, 0, 0,   0x0e, 0x10, 0,   1, 'c'};
    assert_int_equal(b.len, sizeof v5);
    assert_memory_equal(b.p, v5, sizeof v5);
    tbgw_buf_reset(&b);
    mqtt_connect_opts o3 = {.version = MQTT_V31, .client_id = "c", .keepalive = 0, .clean = 1};
    assert_int_equal(mqtt_enc_connect(&b, &o3), 0);
    const uint8_t v31[] = {0x10, 15, 0, 6, 'M', 'Q', 'I', 's', 'd', 'p', 3, 0x02, 0, 0, 0, 1, 'c'};
    assert_int_equal(b.len, sizeof v31);
    assert_memory_equal(b.p, v31, sizeof v31);
    tbgw_buf_free(&b);
}

static void test_publish_roundtrip(void **st) {
    (void)st;
    tbgw_buf b;
    tbgw_buf_init(&b);
    char big[300];
    memset(big, 'x', sizeof big);
    for (int v = MQTT_V311; v <= MQTT_V5; v++) {
        tbgw_buf_reset(&b);
        assert_int_equal(mqtt_enc_publish(&b, v, "a/b", big, sizeof big, 1, 1, 0, 7), 0);
        /* remaining length over 127: two length bytes */
        size_t rem = 2 + 3 + 2 + (v == MQTT_V5 ? 1 : 0) + sizeof big;
        assert_int_equal((uint8_t)b.p[0], 0x33);
        assert_int_equal((uint8_t)b.p[1], (rem & 0x7f) | 0x80);
        assert_int_equal((uint8_t)b.p[2], rem >> 7);
        mqtt_frame f;
        frame((const uint8_t *)b.p, b.len, &f);
        assert_int_equal(f.type, MQTT_PUBLISH);
        assert_int_equal(f.total, b.len);
        mqtt_publish m;
        const char *why = NULL;
        assert_int_equal(mqtt_parse_publish(&f, v, &m, &why), 0);
        assert_int_equal(m.qos, 1);
        assert_int_equal(m.retain, 1);
        assert_int_equal(m.mid, 7);
        assert_int_equal(m.topic_len, 3);
        assert_memory_equal(m.topic, "a/b", 3);
        assert_int_equal(m.payload_len, sizeof big);
        /* cut anywhere: more is needed, never a frame */
        for (size_t cut = 0; cut < b.len; cut++) {
            size_t need;
            assert_int_equal(mqtt_frame_next((const uint8_t *)b.p, cut, &f, &need, &why), 0);
            if (cut >= 3) assert_int_equal(need, b.len);
        }
    }
    tbgw_buf_reset(&b);
    assert_int_equal(mqtt_enc_subscribe(&b, MQTT_V5, 0x0102, "t/#", 2), 0);
    const uint8_t sub[] = {0x82, 9, 1, 2, 0, 0, 3, 't', '/', '#', 2};
    assert_memory_equal(b.p, sub, sizeof sub);
    tbgw_buf_reset(&b);
    assert_int_equal(mqtt_enc_ack(&b, MQTT_PUBREL, 0x1234), 0);
    const uint8_t rel[] = {0x62, 2, 0x12, 0x34};
    assert_memory_equal(b.p, rel, sizeof rel);
    tbgw_buf_free(&b);
}

static void test_v5_properties(void **st) {
    (void)st;
    /* CONNACK, refused (0x87) with a reason string, receive maximum, server keep alive, a user property */
    const uint8_t ca[] = {0x20, 23, 0x00, 0x87, 20, 0x1F, 0, 4, 'n', 'o', 'p', 'e', 0x21,
                          0,    5,  0x13, 0,    30, 0x26, 0, 1, 'k', 0,   1,   'v'};
    mqtt_frame f;
    frame(ca, sizeof ca, &f);
    mqtt_connack c;
    const char *why = NULL;
    assert_int_equal(mqtt_parse_connack(&f, MQTT_V5, &c, &why), 0);
    assert_int_equal(c.code, 0x87);
    assert_int_equal(c.props.reason_len, 4);
    assert_memory_equal(c.props.reason, "nope", 4);
    assert_int_equal(c.props.receive_max, 5);
    assert_int_equal(c.props.server_keepalive, 30);
    assert_string_equal(mqtt_connack_text(MQTT_V5, c.code), "not authorized");
    assert_string_equal(mqtt_connack_text(MQTT_V311, 4), "bad user name or password");
    /* PUBLISH v5 with a message expiry and a subscription identifier before the payload */
    const uint8_t pub[] = {0x30, 13, 0, 1, 't', 8, 0x02, 0, 0, 0, 9, 0x0B, 0x81, 0x01, 'P'};
    frame(pub, sizeof pub, &f);
    mqtt_publish m;
    assert_int_equal(mqtt_parse_publish(&f, MQTT_V5, &m, &why), 0);
    assert_int_equal(m.payload_len, 1);
    assert_int_equal(m.payload[0], 'P');
    /* SUBACK with one failure code */
    const uint8_t sa[] = {0x90, 4, 0, 9, 0, 0x87};
    frame(sa, sizeof sa, &f);
    mqtt_suback s;
    assert_int_equal(mqtt_parse_suback(&f, MQTT_V5, &s, &why), 0);
    assert_int_equal(s.mid, 9);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.codes[0], 0x87);
    /* DISCONNECT with a reason code */
    const uint8_t dc[] = {0xE0, 2, 0x8B, 0};
    frame(dc, sizeof dc, &f);
    mqtt_ack a;
    assert_int_equal(mqtt_parse_ack(&f, MQTT_V5, &a, &why), 0);
    assert_int_equal(a.code, 0x8B);
}

static void test_malformed(void **st) {
    (void)st;
    mqtt_frame f;
    size_t need;
    const char *why = NULL;
    const uint8_t longlen[] = {0x30, 0xff, 0xff, 0xff, 0xff, 0x01};
    assert_int_equal(mqtt_frame_next(longlen, sizeof longlen, &f, &need, &why), -1);
    assert_non_null(strstr(why, "remaining length"));
    const uint8_t type0[] = {0x00, 0};
    assert_int_equal(mqtt_frame_next(type0, sizeof type0, &f, &need, &why), -1);
    mqtt_publish m;
    /* topic length beyond the packet */
    const uint8_t tl[] = {0x30, 4, 0, 9, 'a', 'b'};
    frame(tl, sizeof tl, &f);
    assert_int_equal(mqtt_parse_publish(&f, MQTT_V311, &m, &why), TBGW_EPROTO);
    assert_non_null(strstr(why, "topic length"));
    /* QoS 3 */
    const uint8_t q3[] = {0x36, 5, 0, 1, 't', 0, 1};
    frame(q3, sizeof q3, &f);
    assert_int_equal(mqtt_parse_publish(&f, MQTT_V311, &m, &why), TBGW_EPROTO);
    /* property length beyond the packet, a truncated property, an unknown property */
    const uint8_t pl[] = {0x30, 5, 0, 1, 't', 9, 0x02};
    frame(pl, sizeof pl, &f);
    assert_int_equal(mqtt_parse_publish(&f, MQTT_V5, &m, &why), TBGW_EPROTO);
    assert_non_null(strstr(why, "property length"));
    const uint8_t tp[] = {0x30, 6, 0, 1, 't', 2, 0x02, 0};
    frame(tp, sizeof tp, &f);
    assert_int_equal(mqtt_parse_publish(&f, MQTT_V5, &m, &why), TBGW_EPROTO);
    assert_non_null(strstr(why, "truncated"));
    const uint8_t up[] = {0x30, 6, 0, 1, 't', 2, 0x7f, 0};
    frame(up, sizeof up, &f);
    assert_int_equal(mqtt_parse_publish(&f, MQTT_V5, &m, &why), TBGW_EPROTO);
    /* empty topic, packet id 0 */
    const uint8_t et[] = {0x30, 2, 0, 0};
    frame(et, sizeof et, &f);
    assert_int_equal(mqtt_parse_publish(&f, MQTT_V311, &m, &why), TBGW_EPROTO);
    const uint8_t id0[] = {0x32, 5, 0, 1, 't', 0, 0};
    frame(id0, sizeof id0, &f);
    assert_int_equal(mqtt_parse_publish(&f, MQTT_V311, &m, &why), TBGW_EPROTO);
    /* acknowledgements: wrong flags, truncated */
    mqtt_ack a;
    const uint8_t rel[] = {0x60, 2, 0, 1};
    frame(rel, sizeof rel, &f);
    assert_int_equal(mqtt_parse_ack(&f, MQTT_V311, &a, &why), TBGW_EPROTO);
    const uint8_t pa[] = {0x40, 1, 0};
    frame(pa, sizeof pa, &f);
    assert_int_equal(mqtt_parse_ack(&f, MQTT_V311, &a, &why), TBGW_EPROTO);
    mqtt_connack c;
    const uint8_t ca[] = {0x20, 1, 0};
    frame(ca, sizeof ca, &f);
    assert_int_equal(mqtt_parse_connack(&f, MQTT_V311, &c, &why), TBGW_EPROTO);
}

/* ------------------------------------------------------------------ session against a scripted broker */

typedef struct rec {
    int connacks, lost, delivered;
    char topics[8][32];
    char payloads[8][32];
    mqtt_session *s;
    int pause_after;
} rec;

static void r_connack(void *ud, int code, const char *text) {
    (void)text;
    rec *r = ud;
    if (!code) r->connacks++;
}

static void r_message(void *ud, const char *topic, const uint8_t *p, size_t len, int qos, int retain) {
    (void)qos;
    (void)retain;
    rec *r = ud;
    assert_int_equal(p[len], 0); /* NUL-terminated in place */
    if (r->delivered < 8) {
        snprintf(r->topics[r->delivered], 32, "%s", topic);
        snprintf(r->payloads[r->delivered], 32, "%s", (const char *)p);
    }
    r->delivered++;
    if (r->pause_after && r->delivered == r->pause_after) mqtt_session_pause(r->s, 1);
}

static void r_lost(void *ud, const char *why, int pe) {
    (void)why;
    (void)pe;
    ((rec *)ud)->lost++;
}

static int listener(int *port) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(l, 4), 0);
    socklen_t al = sizeof a;
    getsockname(l, (struct sockaddr *)&a, &al);
    *port = ntohs(a.sin_port);
    return l;
}

/* Drives the session until cond holds or 3 s pass. */
#define DRIVE(s, cond)                                                                                       \
    do {                                                                                                     \
        int64_t end_ = tbgw_mono_ms() + 3000;                                                                \
        while (!(cond) && tbgw_mono_ms() < end_) {                                                           \
            mqtt_session_flush(s, tbgw_mono_ms());                                                           \
            struct pollfd p_ = {.fd = mqtt_session_fd(s), .events = mqtt_session_events(s, 1)};              \
            if (p_.fd < 0) break;                                                                            \
            if (poll(&p_, 1, 20) > 0) mqtt_session_io(s, p_.revents, tbgw_mono_ms());                        \
            mqtt_session_flush(s, tbgw_mono_ms());                                                           \
        }                                                                                                    \
    } while (0)

/* Reads what the client wrote within a short while (one recv per call). */
static ssize_t peer_read(int fd, uint8_t *buf, size_t cap) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 2000) <= 0) return -1;
    return recv(fd, buf, cap, 0);
}

static int accept_connect(int l, mqtt_session *s, rec *r, int session_present) {
    int fd = -1;
    int64_t end = tbgw_mono_ms() + 3000;
    while (fd < 0 && tbgw_mono_ms() < end) {
        struct pollfd p[2] = {{.fd = l, .events = POLLIN},
                              {.fd = mqtt_session_fd(s), .events = mqtt_session_events(s, 1)}};
        poll(p, 2, 20);
        if (p[1].revents) mqtt_session_io(s, p[1].revents, tbgw_mono_ms());
        if (p[0].revents) fd = accept(l, NULL, NULL);
    }
    assert_true(fd >= 0);
    DRIVE(s, s->state == MQS_CONNACK);
    uint8_t buf[256];
    ssize_t n = peer_read(fd, buf, sizeof buf);
    assert_true(n > 2);
    assert_int_equal(buf[0], 0x10);
    const uint8_t ack[] = {0x20, 2, (uint8_t)session_present, 0};
    assert_int_equal(send(fd, ack, sizeof ack, 0), 4);
    int before = r->connacks;
    DRIVE(s, r->connacks > before);
    assert_int_equal(r->connacks, before + 1);
    return fd;
}

static void test_session(void **st) {
    (void)st;
    int port;
    int l = listener(&port);
    rec r = {0};
    mqtt_session s;
    mqtt_session_cfg cfg = {.host = "127.0.0.1",
                            .port = port,
                            .client_id = "t",
                            .version = MQTT_V311,
                            .keepalive = 60,
                            .clean = 1};
    mqtt_session_cb cb = {.ud = &r, .on_connack = r_connack, .on_message = r_message, .on_lost = r_lost};
    char err[200];
    assert_int_equal(mqtt_session_init(&s, &cfg, &cb, err, sizeof err), 0);
    r.s = &s;
    assert_int_equal(mqtt_session_start(&s, tbgw_mono_ms()), 0);
    int fd = accept_connect(l, &s, &r, 0);

    /* three QoS 1 messages in one segment: three deliveries, three PUBACKs in one write */
    const uint8_t burst[] = {0x32, 6, 0, 1,   'a',  0, 1, 'x', 0x32, 6, 0, 1,
                             'b',  0, 2, 'y', 0x32, 6, 0, 1,   'c',  0, 3, 'z'};
    assert_int_equal(send(fd, burst, sizeof burst, 0), (ssize_t)sizeof burst);
    DRIVE(&s, r.delivered == 3);
    assert_int_equal(r.delivered, 3);
    assert_string_equal(r.topics[1], "b");
    assert_string_equal(r.payloads[2], "z");
    uint8_t in[256];
    ssize_t n = peer_read(fd, in, sizeof in);
    const uint8_t acks[] = {0x40, 2, 0, 1, 0x40, 2, 0, 2, 0x40, 2, 0, 3};
    assert_int_equal(n, sizeof acks);
    assert_memory_equal(in, acks, sizeof acks);

    /* QoS 2: delivered once although the broker resends it; PUBREC twice, PUBCOMP on PUBREL */
    const uint8_t q2[] = {0x34, 6, 0, 1, 'q', 0, 9, '2', 0x3C, 6, 0, 1, 'q', 0, 9, '2', 0x62, 2, 0, 9};
    assert_int_equal(send(fd, q2, sizeof q2, 0), (ssize_t)sizeof q2);
    DRIVE(&s, r.delivered == 4);
    n = peer_read(fd, in, sizeof in);
    const uint8_t q2acks[] = {0x50, 2, 0, 9, 0x50, 2, 0, 9, 0x70, 2, 0, 9};
    assert_int_equal(n, sizeof q2acks);
    assert_memory_equal(in, q2acks, sizeof q2acks);
    assert_int_equal(r.delivered, 4);

    /* a pause after the first of two messages: the second stays in the buffer, unacknowledged */
    r.pause_after = 5;
    const uint8_t two[] = {0x32, 6, 0, 1, 'd', 0, 4, '1', 0x32, 6, 0, 1, 'e', 0, 5, '2'};
    assert_int_equal(send(fd, two, sizeof two, 0), (ssize_t)sizeof two);
    DRIVE(&s, r.delivered == 5);
    n = peer_read(fd, in, sizeof in);
    assert_int_equal(n, 4);
    assert_int_equal(in[3], 4);
    assert_int_equal(r.delivered, 5);
    mqtt_session_pause(&s, 0);
    assert_int_equal(mqtt_session_process(&s, tbgw_mono_ms()), 1);
    mqtt_session_flush(&s, tbgw_mono_ms());
    n = peer_read(fd, in, sizeof in);
    assert_int_equal(n, 4);
    assert_int_equal(in[3], 5);

    /* outgoing QoS 1 unacknowledged, the connection drops: resent with DUP after the reconnect */
    assert_int_equal(mqtt_session_publish(&s, "down", "hi", 2, 1, 0), 0);
    mqtt_session_flush(&s, tbgw_mono_ms());
    n = peer_read(fd, in, sizeof in);
    assert_true(n > 0);
    assert_int_equal(in[0], 0x32);
    close(fd);
    DRIVE(&s, r.lost == 1);
    assert_int_equal(r.lost, 1);
    assert_int_equal(mqtt_session_start(&s, tbgw_mono_ms()), 0);
    fd = accept_connect(l, &s, &r, 1);
    DRIVE(&s, s.wbuf.len == 0);
    n = peer_read(fd, in, sizeof in);
    assert_true(n > 6);
    assert_int_equal(in[0], 0x3A); /* PUBLISH, DUP, QoS 1 */
    assert_int_equal(s.n_out, 1);
    const uint8_t puback[] = {0x40, 2, in[8], in[9]};
    assert_int_equal(send(fd, puback, 4, 0), 4);
    DRIVE(&s, s.n_out == 0);
    assert_int_equal(s.n_out, 0);

    /* a malformed packet drops the connection, counted as a protocol error */
    const uint8_t bad[] = {0x30, 0xff, 0xff, 0xff, 0xff, 0x7f};
    assert_int_equal(send(fd, bad, sizeof bad, 0), (ssize_t)sizeof bad);
    DRIVE(&s, r.lost == 2);
    assert_int_equal(r.lost, 2);
    assert_int_equal(s.protocol_errors, 1);
    close(fd);
    mqtt_session_free(&s);
    close(l);
}

/* Runs the session's loop (I/O and timers) for ms milliseconds or until lost changes. */
static void run_for(mqtt_session *s, rec *r, int ms) {
    int lost = r->lost;
    int64_t end = tbgw_mono_ms() + ms;
    while (tbgw_mono_ms() < end && r->lost == lost) {
        int64_t now = tbgw_mono_ms();
        mqtt_session_flush(s, now);
        struct pollfd p = {.fd = mqtt_session_fd(s), .events = mqtt_session_events(s, 1)};
        if (p.fd < 0) break;
        if (poll(&p, 1, 10) > 0) mqtt_session_io(s, p.revents, tbgw_mono_ms());
        mqtt_session_tick(s, tbgw_mono_ms());
        mqtt_session_flush(s, tbgw_mono_ms());
    }
}

/* keep-alive: a PINGREQ after keepalive seconds without a write; no PINGRESP within keepalive
 * seconds drops the connection. A broker that never sends CONNACK hits the connect timeout. */
static void test_keepalive_and_timeouts(void **st) {
    (void)st;
    int port;
    int l = listener(&port);
    rec r = {0};
    mqtt_session s;
    mqtt_session_cfg cfg = {.host = "127.0.0.1",
                            .port = port,
                            .client_id = "k",
                            .version = MQTT_V5,
                            .keepalive = 1,
                            .clean = 1,
                            .connect_timeout_ms = 300};
    mqtt_session_cb cb = {.ud = &r, .on_connack = r_connack, .on_message = r_message, .on_lost = r_lost};
    char err[200];
    assert_int_equal(mqtt_session_init(&s, &cfg, &cb, err, sizeof err), 0);
    r.s = &s;
    assert_int_equal(mqtt_session_start(&s, tbgw_mono_ms()), 0);
    int fd = accept_connect(l, &s, &r, 0);
    uint8_t in[64];
    run_for(&s, &r, 1200);
    ssize_t n = peer_read(fd, in, sizeof in);
    assert_int_equal(n, 2);
    assert_int_equal(in[0], 0xC0); /* PINGREQ */
    const uint8_t resp[] = {0xD0, 0};
    assert_int_equal(send(fd, resp, 2, 0), 2);
    run_for(&s, &r, 300);
    assert_int_equal(s.ping_sent, 0);
    assert_int_equal(r.lost, 0);
    run_for(&s, &r, 3000); /* the next PINGREQ stays unanswered */
    assert_int_equal(r.lost, 1);
    assert_non_null(strstr(s.err, "keep-alive timeout"));
    close(fd);
    /* a broker that accepts but never answers CONNECT */
    assert_int_equal(mqtt_session_start(&s, tbgw_mono_ms()), 0);
    int64_t t0 = tbgw_mono_ms();
    run_for(&s, &r, 3000);
    assert_int_equal(r.lost, 2);
    assert_true(tbgw_mono_ms() - t0 < 1500);
    assert_non_null(strstr(s.err, "timed out after 300 ms"));
    int a = accept(l, NULL, NULL);
    if (a >= 0) close(a);
    mqtt_session_free(&s);
    close(l);
}

static size_t last_len;
static void r_len(void *ud, const char *topic, const uint8_t *p, size_t len, int qos, int retain) {
    r_message(ud, topic, p, len, qos, retain);
    last_len = len;
}

/* Send all of a large buffer while driving the session (the socket buffers are smaller). */
static void send_driving(int fd, mqtt_session *s, rec *r, const uint8_t *p, size_t n) {
    size_t off = 0;
    int64_t end = tbgw_mono_ms() + 5000;
    while (off < n && tbgw_mono_ms() < end && r->lost == 0) {
        ssize_t w = send(fd, p + off, n - off, MSG_DONTWAIT);
        if (w > 0) off += (size_t)w;
        struct pollfd q = {.fd = mqtt_session_fd(s), .events = mqtt_session_events(s, 1)};
        if (q.fd < 0) break;
        if (poll(&q, 1, 5) > 0) mqtt_session_io(s, q.revents, tbgw_mono_ms());
    }
}

/* A packet larger than the read buffer grows it (and the buffer is released once drained); one
 * larger than max_packet drops the connection with an error naming the sizes. */
static void test_large_packets(void **st) {
    (void)st;
    int port;
    int l = listener(&port);
    rec r = {0};
    mqtt_session s;
    mqtt_session_cfg cfg = {.host = "127.0.0.1",
                            .port = port,
                            .client_id = "big",
                            .version = MQTT_V311,
                            .keepalive = 60,
                            .clean = 1,
                            .max_packet = 200000};
    mqtt_session_cb cb = {.ud = &r, .on_connack = r_connack, .on_message = r_len, .on_lost = r_lost};
    char err[200];
    assert_int_equal(mqtt_session_init(&s, &cfg, &cb, err, sizeof err), 0);
    r.s = &s;
    assert_int_equal(mqtt_session_start(&s, tbgw_mono_ms()), 0);
    int fd = accept_connect(l, &s, &r, 0);
    static char payload[300000];
    memset(payload, 'p', sizeof payload);
    tbgw_buf b;
    tbgw_buf_init(&b);
    assert_int_equal(mqtt_enc_publish(&b, MQTT_V311, "big/1", payload, 100000, 0, 0, 0, 0), 0);
    send_driving(fd, &s, &r, (const uint8_t *)b.p, b.len);
    DRIVE(&s, r.delivered == 1);
    assert_int_equal(r.delivered, 1);
    assert_int_equal(last_len, 100000);
    assert_string_equal(r.topics[0], "big/1");
    assert_int_equal(s.rcap, 0); /* drained: the grown buffer was given back */
    tbgw_buf_reset(&b);
    assert_int_equal(mqtt_enc_publish(&b, MQTT_V311, "big/2", payload, sizeof payload, 0, 0, 0, 0), 0);
    send_driving(fd, &s, &r, (const uint8_t *)b.p, 16);
    DRIVE(&s, r.lost == 1);
    assert_int_equal(r.lost, 1);
    assert_non_null(strstr(s.err, "more than the limit of 200000"));
    assert_int_equal(s.protocol_errors, 1);
    tbgw_buf_free(&b);
    close(fd);
    mqtt_session_free(&s);
    close(l);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connect_encoding), cmocka_unit_test(test_publish_roundtrip),
        cmocka_unit_test(test_v5_properties),    cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_session),          cmocka_unit_test(test_keepalive_and_timeouts),
        cmocka_unit_test(test_large_packets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
