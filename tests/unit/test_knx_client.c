/* The KNXnet/IP tunnelling client against a scripted gateway on a loopback UDP socket, on an injected
 * clock: connect, ACK repeat after 1 s, confirmation before the next request, sequence counters both
 * ways (repeats acknowledged but not delivered twice), heartbeat, loss after a second missing ACK,
 * reconnect, gateway-initiated disconnect, search. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <tbgw/err.h>
#include <unistd.h>

#include "proto/knx/knx_client.h"

typedef struct peer {
    int fd;
    uint16_t port;
    struct sockaddr_in client; /* where the last datagram came from */
} peer;

typedef struct rec {
    int telegrams, sent_ok, sent_fail, ups, downs;
    knx_ldata last;
    uint64_t last_tag;
} rec;

static void on_telegram(void *ud, const knx_ldata *ld) {
    rec *r = ud;
    r->telegrams++;
    r->last = *ld;
}
static void on_sent(void *ud, uint64_t tag, int ok, const char *why) {
    rec *r = ud;
    (void)why;
    if (ok)
        r->sent_ok++;
    else
        r->sent_fail++;
    r->last_tag = tag;
}
static void on_state(void *ud, int up, const char *why) {
    rec *r = ud;
    (void)why;
    if (up)
        r->ups++;
    else
        r->downs++;
}

static void peer_open(peer *p) {
    p->fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(p->fd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t sl = sizeof sa;
    getsockname(p->fd, (struct sockaddr *)&sa, &sl);
    p->port = ntohs(sa.sin_port);
}

/* The next datagram within 500 ms, parsed; its service must be want (0 = expect none). */
static int peer_recv(peer *p, uint16_t want, knx_frame *f, uint8_t *buf, size_t cap) {
    struct pollfd pfd = {.fd = p->fd, .events = POLLIN};
    if (poll(&pfd, 1, want ? 500 : 50) <= 0) {
        if (want) fail_msg("peer: no datagram, wanted %s", knx_service_name(want));
        return 0;
    }
    socklen_t sl = sizeof p->client;
    ssize_t n = recvfrom(p->fd, buf, cap, 0, (struct sockaddr *)&p->client, &sl);
    assert_true(n > 0);
    assert_int_equal(knx_frame_parse(buf, (size_t)n, f), 0);
    if (!want) fail_msg("peer: unexpected %s", knx_service_name(f->service));
    assert_int_equal(f->service, want);
    return (int)n;
}

static void peer_send(peer *p, const uint8_t *b, size_t n) {
    assert_int_equal(sendto(p->fd, b, n, 0, (struct sockaddr *)&p->client, sizeof p->client), (ssize_t)n);
}

static void send_connect_res(peer *p, uint8_t channel) {
    const uint8_t r[] = {0x06, 0x10, 0x02, 0x06, 0x00, 0x14, channel, 0x00, 0x08, 0x01,
                         0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04,    0x04, 0x11, 0x0A};
    peer_send(p, r, sizeof r);
}

static void send_tunnel(peer *p, uint8_t channel, uint8_t seq, const uint8_t *cemi, size_t n) {
    uint8_t b[64];
    int len = knx_enc_tunnel_req(b, sizeof b, channel, seq, cemi, n);
    peer_send(p, b, (size_t)len);
}

static knx_client *connect_client(peer *p, rec *r, int64_t *now) {
    knx_client_cfg cfg = {.gw_ip = INADDR_LOOPBACK,
                          .gw_port = p->port,
                          .local_ip = INADDR_LOOPBACK,
                          .heartbeat_ms = 60000,
                          .reconnect_base_ms = 100,
                          .reconnect_cap_ms = 100};
    knx_client_cb cb = {r, on_telegram, on_sent, on_state};
    knx_client *c = knx_client_new(&cfg, &cb, tbgw_logger_get("test.knx"));
    assert_non_null(c);
    knx_client_step(c, *now);
    knx_frame f;
    uint8_t b[128];
    peer_recv(p, KNX_CONNECT_REQ, &f, b, sizeof b);
    assert_int_equal(f.hpai.ip, INADDR_LOOPBACK); /* our control endpoint */
    send_connect_res(p, 7);
    usleep(2000);
    knx_client_step(c, ++*now);
    assert_true(knx_client_connected(c));
    assert_int_equal(knx_client_address(c), 0x110A);
    return c;
}

static void test_request_ack_repeat_confirm(void **st) {
    (void)st;
    peer p;
    peer_open(&p);
    rec r = {0};
    int64_t now = 1000;
    knx_client *c = connect_client(&p, &r, &now);
    assert_int_equal(r.ups, 1);
    knx_payload v = {.small = 1, .data = {1}};
    assert_int_equal(knx_client_send(c, 0x0806, KNX_APCI_WRITE, &v, 42), 0);
    assert_int_equal(knx_client_send(c, 0x0807, KNX_APCI_READ, NULL, 43), 0);
    knx_client_step(c, now);
    knx_frame f;
    uint8_t b[128];
    peer_recv(&p, KNX_TUNNEL_REQ, &f, b, sizeof b);
    assert_int_equal(f.channel, 7);
    assert_int_equal(f.seq, 0);
    /* no ACK: nothing before 1 s, the same request repeated after it, and only one request in flight */
    knx_client_step(c, now + 999);
    peer_recv(&p, 0, &f, b, sizeof b);
    knx_client_step(c, now + 1000);
    peer_recv(&p, KNX_TUNNEL_REQ, &f, b, sizeof b);
    assert_int_equal(f.seq, 0);
    now += 1000;
    uint8_t ack[16];
    peer_send(&p, ack, (size_t)knx_enc_tunnel_ack(ack, sizeof ack, 7, 0, 0));
    usleep(2000);
    knx_client_step(c, ++now);
    peer_recv(&p, 0, &f, b, sizeof b); /* the read waits for the confirmation of the write */
    assert_int_equal(r.sent_ok, 0);
    const uint8_t con[] = {0x2E, 0x00, 0xBC, 0xE0, 0x11, 0x0A, 0x08, 0x06, 0x01, 0x00, 0x81};
    send_tunnel(&p, 7, 0, con, sizeof con);
    usleep(2000);
    knx_client_step(c, ++now);
    peer_recv(&p, KNX_TUNNEL_ACK, &f, b, sizeof b); /* our ACK of the confirmation */
    assert_int_equal(f.seq, 0);
    assert_int_equal(r.sent_ok, 1);
    assert_int_equal(r.last_tag, 42);
    peer_recv(&p, KNX_TUNNEL_REQ, &f, b, sizeof b); /* now the read, with the next sequence number */
    assert_int_equal(f.seq, 1);
    knx_ldata ld;
    assert_int_equal(knx_cemi_parse(f.cemi, f.cemi_len, &ld), 0);
    assert_int_equal(ld.dst, 0x0807);
    assert_int_equal(ld.apci, KNX_APCI_READ);
    peer_send(&p, ack, (size_t)knx_enc_tunnel_ack(ack, sizeof ack, 7, 1, 0));
    /* a confirmation with the error bit fails the request */
    const uint8_t nak[] = {0x2E, 0x00, 0xBD, 0xE0, 0x11, 0x0A, 0x08, 0x07, 0x01, 0x00, 0x00};
    send_tunnel(&p, 7, 1, nak, sizeof nak);
    usleep(2000);
    knx_client_step(c, ++now);
    peer_recv(&p, KNX_TUNNEL_ACK, &f, b, sizeof b);
    assert_int_equal(r.sent_fail, 1);
    assert_int_equal(r.last_tag, 43);
    knx_client_free(c);
    peer_recv(&p, KNX_DISCONNECT_REQ, &f, b, sizeof b);
    close(p.fd);
}

static void test_incoming_sequence_and_loss(void **st) {
    (void)st;
    peer p;
    peer_open(&p);
    rec r = {0};
    int64_t now = 1000;
    knx_client *c = connect_client(&p, &r, &now);
    knx_frame f;
    uint8_t b[128];
    const uint8_t ind[] = {0x29, 0x00, 0xBC, 0xE0, 0x11, 0x05, 0x08, 0x06, 0x03, 0x00, 0x80, 0x0C, 0x33};
    send_tunnel(&p, 7, 0, ind, sizeof ind);
    send_tunnel(&p, 7, 0, ind, sizeof ind); /* a repeat: ACKed again, not delivered again */
    send_tunnel(&p, 7, 5, ind, sizeof ind); /* out of sequence: dropped */
    send_tunnel(&p, 9, 1, ind, sizeof ind); /* another channel: dropped */
    const uint8_t junk[] = {0x06, 0x10, 0x04, 0x20, 0x00, 0x0A, 0x04, 0x07};
    peer_send(&p, junk, sizeof junk);
    usleep(2000);
    knx_client_step(c, ++now);
    peer_recv(&p, KNX_TUNNEL_ACK, &f, b, sizeof b);
    assert_int_equal(f.seq, 0);
    peer_recv(&p, KNX_TUNNEL_ACK, &f, b, sizeof b);
    assert_int_equal(f.seq, 0);
    peer_recv(&p, 0, &f, b, sizeof b);
    assert_int_equal(r.telegrams, 1);
    assert_int_equal(r.last.dst, 0x0806);
    assert_int_equal(r.last.value.len, 2);
    knx_client_stats s;
    knx_client_get_stats(c, &s);
    assert_int_equal(s.frames_bad, 1);
    send_tunnel(&p, 7, 1, ind, sizeof ind);
    usleep(2000);
    knx_client_step(c, ++now);
    peer_recv(&p, KNX_TUNNEL_ACK, &f, b, sizeof b);
    assert_int_equal(r.telegrams, 2);
    /* heartbeat after 60 s, answered */
    knx_client_step(c, now + 60000);
    peer_recv(&p, KNX_CONNSTATE_REQ, &f, b, sizeof b);
    assert_int_equal(f.channel, 7);
    const uint8_t csr[] = {0x06, 0x10, 0x02, 0x08, 0x00, 0x08, 0x07, 0x00};
    peer_send(&p, csr, sizeof csr);
    now += 60000;
    usleep(2000);
    knx_client_step(c, ++now);
    assert_true(knx_client_connected(c));
    /* a request never acknowledged: repeated once, then the tunnel is lost and the request fails */
    knx_payload str = {.small = 0, .len = 14, .data = "KNX is OK"}; /* the longest telegram */
    assert_int_equal(knx_client_send(c, 0x0806, KNX_APCI_WRITE, &str, 7), 0);
    knx_client_step(c, now);
    assert_int_equal(peer_recv(&p, KNX_TUNNEL_REQ, &f, b, sizeof b), 35);
    knx_client_step(c, now + 1000);
    assert_int_equal(peer_recv(&p, KNX_TUNNEL_REQ, &f, b, sizeof b), 35);
    knx_client_step(c, now + 2000);
    assert_false(knx_client_connected(c));
    assert_int_equal(r.downs, 1);
    assert_int_equal(r.sent_fail, 1);
    assert_int_equal(knx_client_send(c, 0x0806, KNX_APCI_READ, NULL, 8), TBGW_EAGAIN);
    peer_recv(&p, KNX_DISCONNECT_REQ, &f, b, sizeof b); /* the gateway may free the channel */
    assert_int_equal(f.channel, 7);
    /* reconnect after the backoff (100 ms cap) */
    knx_client_step(c, now + 2100);
    peer_recv(&p, KNX_CONNECT_REQ, &f, b, sizeof b);
    send_connect_res(&p, 8);
    usleep(2000);
    knx_client_step(c, now + 2101);
    assert_true(knx_client_connected(c));
    assert_int_equal(r.ups, 2);
    /* the gateway closes the tunnel */
    const uint8_t dreq[] = {0x06, 0x10, 0x02, 0x09, 0x00, 0x10, 0x08, 0x00,
                            0x08, 0x01, 127,  0,    0,    1,    0x0E, 0x57};
    peer_send(&p, dreq, sizeof dreq);
    usleep(2000);
    knx_client_step(c, now + 2102);
    peer_recv(&p, KNX_DISCONNECT_RES, &f, b, sizeof b);
    assert_int_equal(r.downs, 2);
    knx_client_free(c);
    close(p.fd);
}

static void test_heartbeat_unanswered_and_refused(void **st) {
    (void)st;
    peer p;
    peer_open(&p);
    rec r = {0};
    int64_t now = 1000;
    knx_client *c = connect_client(&p, &r, &now);
    knx_frame f;
    uint8_t b[128];
    /* three unanswered connection state requests (10 s each) end the tunnel */
    int64_t t = now + 60000;
    for (int i = 0; i < 3; i++) {
        knx_client_step(c, t);
        peer_recv(&p, KNX_CONNSTATE_REQ, &f, b, sizeof b);
        t += 10000;
    }
    knx_client_step(c, t);
    assert_false(knx_client_connected(c));
    peer_recv(&p, KNX_DISCONNECT_REQ, &f, b, sizeof b);
    /* a refused CONNECT_REQUEST: retried after the backoff */
    knx_client_step(c, t + 100);
    peer_recv(&p, KNX_CONNECT_REQ, &f, b, sizeof b);
    const uint8_t refused[] = {0x06, 0x10, 0x02, 0x06, 0x00, 0x08, 0x00, 0x24};
    peer_send(&p, refused, sizeof refused);
    usleep(2000);
    knx_client_step(c, t + 101);
    assert_false(knx_client_connected(c));
    knx_client_step(c, t + 300);
    peer_recv(&p, KNX_CONNECT_REQ, &f, b, sizeof b);
    knx_client_free(c);
    close(p.fd);
}

static void test_search(void **st) {
    (void)st;
    peer p;
    peer_open(&p);
    rec r = {0};
    /* the search target is the peer (a unicast "multicast group"), no gateway configured */
    knx_client_cfg cfg = {.mcast_ip = INADDR_LOOPBACK,
                          .mcast_port = p.port,
                          .local_ip = INADDR_LOOPBACK,
                          .search_ms = 1000,
                          .search_stop_on_found = 1};
    knx_client_cb cb = {&r, on_telegram, on_sent, on_state};
    knx_client *c = knx_client_new(&cfg, &cb, tbgw_logger_get("test.knx"));
    knx_client_step(c, 0);
    knx_frame f;
    uint8_t b[128];
    peer_recv(&p, KNX_SEARCH_REQ, &f, b, sizeof b);
    uint8_t res[6 + 8 + 54] = {0x06, 0x10, 0x02, 0x02, 0x00, sizeof res, 0x08, 0x01, 127, 0, 0, 1};
    res[12] = (uint8_t)(p.port >> 8);
    res[13] = (uint8_t)p.port;
    res[14] = 54;
    res[15] = 1;
    memcpy(res + 14 + 24, "peer", 4);
    peer_send(&p, res, sizeof res);
    usleep(2000);
    knx_client_step(c, 1);
    knx_client_step(c, 2);
    peer_recv(&p, KNX_CONNECT_REQ, &f, b, sizeof b);
    send_connect_res(&p, 3);
    usleep(2000);
    knx_client_step(c, 3);
    assert_true(knx_client_connected(c));
    knx_client_stats s;
    knx_client_get_stats(c, &s);
    assert_int_equal(s.search_found, 1);
    knx_client_free(c);
    close(p.fd);
}

/* Reads one KNXnet/IP frame from a TCP stream. */
static void tcp_frame(int fd, uint16_t want, knx_frame *f, uint8_t *b, size_t cap) {
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    size_t got = 0, total = KNX_HDR_LEN;
    while (got < total) {
        assert_true(poll(&pfd, 1, 500) > 0);
        ssize_t n = recv(fd, b + got, total - got, 0);
        assert_true(n > 0);
        got += (size_t)n;
        if (got == KNX_HDR_LEN) total = (size_t)(b[4] << 8 | b[5]);
        assert_true(total <= cap);
    }
    assert_int_equal(knx_frame_parse(b, total, f), 0);
    assert_int_equal(f->service, want);
}

static void test_tcp_tunnel(void **st) {
    (void)st;
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(ls, (struct sockaddr *)&sa, sizeof sa), 0);
    listen(ls, 1);
    socklen_t sl = sizeof sa;
    getsockname(ls, (struct sockaddr *)&sa, &sl);
    rec r = {0};
    knx_client_cfg cfg = {.tcp = 1,
                          .gw_ip = INADDR_LOOPBACK,
                          .gw_port = ntohs(sa.sin_port),
                          .reconnect_base_ms = 100,
                          .reconnect_cap_ms = 100};
    knx_client_cb cb = {&r, on_telegram, on_sent, on_state};
    knx_client *c = knx_client_new(&cfg, &cb, tbgw_logger_get("test.knx"));
    knx_client_step(c, 0);
    assert_int_equal(knx_client_events(c), POLLIN | POLLOUT); /* the connect's completion is awaited */
    int fd = accept(ls, NULL, NULL);
    assert_true(fd >= 0);
    usleep(2000);
    knx_client_step(c, 1); /* connected: CONNECT_REQUEST with "this connection" HPAIs */
    assert_int_equal(knx_client_events(c), POLLIN);
    knx_frame f;
    uint8_t b[256];
    tcp_frame(fd, KNX_CONNECT_REQ, &f, b, sizeof b);
    assert_int_equal(f.hpai.proto, KNX_HPAI_TCP);
    assert_int_equal(f.hpai.ip, 0);
    /* the response and an indication in one segment, the indication split over two writes */
    const uint8_t cres[] = {0x06, 0x10, 0x02, 0x06, 0x00, 0x14, 0x05, 0x00, 0x08, 0x02,
                            0,    0,    0,    0,    0,    0,    0x04, 0x04, 0x11, 0x0A};
    uint8_t ind[64];
    const uint8_t cemi[] = {0x29, 0x00, 0xBC, 0xE0, 0x11, 0x05, 0x08, 0x06, 0x01, 0x00, 0x81};
    int il = knx_enc_tunnel_req(ind, sizeof ind, 5, 9, cemi, sizeof cemi);
    uint8_t seg[128];
    memcpy(seg, cres, sizeof cres);
    memcpy(seg + sizeof cres, ind, 7);
    assert_int_equal(send(fd, seg, sizeof cres + 7, 0), (ssize_t)(sizeof cres + 7));
    usleep(2000);
    knx_client_step(c, 2);
    assert_true(knx_client_connected(c));
    assert_int_equal(r.telegrams, 0);
    send(fd, ind + 7, (size_t)il - 7, 0);
    usleep(2000);
    knx_client_step(c, 3);
    assert_int_equal(r.telegrams, 1); /* delivered without ACK or sequence check */
    /* a request: no ACK over TCP, the confirmation completes it */
    assert_int_equal(knx_client_send(c, 0x0806, KNX_APCI_READ, NULL, 11), 0);
    knx_client_step(c, 4);
    tcp_frame(fd, KNX_TUNNEL_REQ, &f, b, sizeof b);
    assert_int_equal(f.channel, 5);
    const uint8_t con[] = {0x2E, 0x00, 0xBC, 0xE0, 0x11, 0x0A, 0x08, 0x06, 0x01, 0x00, 0x00};
    il = knx_enc_tunnel_req(ind, sizeof ind, 5, 0, con, sizeof con);
    send(fd, ind, (size_t)il, 0);
    usleep(2000);
    knx_client_step(c, 5000); /* well past the UDP ACK timeout: no repeat, no loss */
    assert_int_equal(r.sent_ok, 1);
    assert_true(knx_client_connected(c));
    /* the gateway closes the connection: lost, then reconnected */
    close(fd);
    usleep(2000);
    knx_client_step(c, 5001);
    assert_false(knx_client_connected(c));
    assert_int_equal(r.downs, 1);
    knx_client_step(c, 5200);
    fd = accept(ls, NULL, NULL);
    assert_true(fd >= 0);
    close(fd);
    knx_client_free(c);
    close(ls);
}

/* Routing on the multicast group over lo: indications out, ours looped back ignored, the group's
 * delivered, ROUTING_BUSY pausing the next telegram for its wait time. */
static void test_routing_busy(void **st) {
    (void)st;
    int port = 0;
    { /* a free UDP port */
        peer tmp;
        peer_open(&tmp);
        port = tmp.port;
        close(tmp.fd);
    }
    const uint32_t grp = 0xE000170C;
    int g = socket(AF_INET, SOCK_DGRAM, 0), one = 1;
    setsockopt(g, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    assert_int_equal(bind(g, (struct sockaddr *)&sa, sizeof sa), 0);
    struct ip_mreqn mr = {.imr_multiaddr.s_addr = htonl(grp), .imr_address.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(setsockopt(g, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof mr), 0);
    struct in_addr ifa = {htonl(INADDR_LOOPBACK)};
    setsockopt(g, IPPROTO_IP, IP_MULTICAST_IF, &ifa, sizeof ifa);
    rec r = {0};
    knx_client_cfg cfg = {.mode = KNX_MODE_ROUTING,
                          .mcast_ip = grp,
                          .mcast_port = (uint16_t)port,
                          .local_ip = INADDR_LOOPBACK,
                          .individual = 0x100A};
    knx_client_cb cb = {&r, on_telegram, on_sent, on_state};
    knx_client *c = knx_client_new(&cfg, &cb, tbgw_logger_get("test.knx"));
    knx_client_step(c, 0);
    assert_true(knx_client_connected(c));
    knx_payload v = {.small = 1, .data = {1}};
    assert_int_equal(knx_client_send(c, 0x0806, KNX_APCI_WRITE, &v, 1), 0);
    knx_client_step(c, 1);
    assert_int_equal(r.sent_ok, 1);
    struct sockaddr_in grp_sa = {
        .sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(grp)};
    uint8_t b[128];
    struct pollfd pfd = {.fd = g, .events = POLLIN};
    assert_true(poll(&pfd, 1, 500) > 0);
    ssize_t n = recv(g, b, sizeof b, 0);
    knx_frame f;
    assert_int_equal(knx_frame_parse(b, (size_t)n, &f), 0);
    assert_int_equal(f.service, KNX_ROUTING_IND);
    knx_ldata ld;
    assert_int_equal(knx_cemi_parse(f.cemi, f.cemi_len, &ld), 0);
    assert_int_equal(ld.code, KNX_CEMI_LDATA_IND);
    assert_int_equal(ld.src, 0x100A);
    usleep(2000);
    knx_client_step(c, 2); /* our own indication came back on the group: ignored */
    assert_int_equal(r.telegrams, 0);
    /* the group: an indication from another device, then ROUTING_BUSY with 200 ms */
    uint8_t cemi[16];
    int cl = knx_cemi_encode_group(cemi, sizeof cemi, KNX_CEMI_LDATA_IND, 0x1105, 0x0807, KNX_APCI_WRITE, &v);
    n = knx_enc_routing_ind(b, sizeof b, cemi, (size_t)cl);
    sendto(g, b, (size_t)n, 0, (struct sockaddr *)&grp_sa, sizeof grp_sa);
    const uint8_t busy[] = {0x06, 0x10, 0x05, 0x32, 0x00, 0x0C, 0x06, 0x00, 0x00, 0xC8, 0x00, 0x00};
    sendto(g, busy, sizeof busy, 0, (struct sockaddr *)&grp_sa, sizeof grp_sa);
    usleep(5000);
    knx_client_step(c, 10);
    assert_int_equal(r.telegrams, 1);
    assert_int_equal(r.last.src, 0x1105);
    while (recv(g, b, sizeof b, MSG_DONTWAIT) > 0) {
    }
    assert_int_equal(knx_client_send(c, 0x0806, KNX_APCI_WRITE, &v, 2), 0);
    knx_client_step(c, 100);
    assert_int_equal(r.sent_ok, 1); /* paused */
    assert_int_equal(knx_client_queued(c), 1);
    knx_client_step(c, 210);
    assert_int_equal(r.sent_ok, 2);
    knx_client_free(c);
    close(g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_ack_repeat_confirm),
        cmocka_unit_test(test_incoming_sequence_and_loss),
        cmocka_unit_test(test_heartbeat_unanswered_and_refused),
        cmocka_unit_test(test_search),
        cmocka_unit_test(test_tcp_tunnel),
        cmocka_unit_test(test_routing_busy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
