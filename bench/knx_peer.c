/* A fast KNXnet/IP tunnelling server for the KNX benchmark (bench/knx_bench.py): accepts one tunnel and
 * pushes GroupValueWrite indications (DPT 9, 21.5) to n group addresses (0x0800 + i: 1/0/0 ...) as
 * TUNNELING_REQUESTs, each after the client acknowledged the previous one (the standard's window of one), at
 * up to `rate` per second (0 = as fast as the ACKs come). Requests of the client are acknowledged and
 * confirmed (L_Data.con), connection state requests answered. knxd paces its dummy bus like a TP1 line (about
 * 50 telegrams/s), so this peer measures the gateway rather than the bus.
 * usage: bench_knx_peer port addresses rate seconds   (prints one JSON line when done) */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto/knx/knx_frame.h"
#include "util/time.h"

typedef struct peer {
    int fd;
    struct sockaddr_in client;
    int up;
    uint8_t seq_out, seq_in;
    int waiting_ack;
    int64_t sent_at;
    long sent, acked, repeats, requests;
} peer;

static void tx(peer *p, const uint8_t *b, int n) {
    if (n > 0) sendto(p->fd, b, (size_t)n, 0, (struct sockaddr *)&p->client, sizeof p->client);
}

static void push(peer *p, int naddr) {
    uint8_t cemi[32], b[64];
    knx_payload v = {.small = 0, .len = 2, .data = {0x0C, 0x33}};
    uint16_t ga = (uint16_t)(0x0800 + p->sent % naddr);
    int n = knx_cemi_encode_group(cemi, sizeof cemi, KNX_CEMI_LDATA_IND, 0x1105, ga, KNX_APCI_WRITE, &v);
    tx(p, b, knx_enc_tunnel_req(b, sizeof b, 1, p->seq_out, cemi, (size_t)n));
    p->waiting_ack = 1;
    p->sent_at = tbgw_mono_ms();
}

static void on_datagram(peer *p, const uint8_t *d, size_t n) {
    knx_frame f;
    uint8_t b[64];
    if (knx_frame_parse(d, n, &f) != 0) return;
    if (f.service == KNX_CONNECT_REQ) {
        const uint8_t r[] = {0x06, 0x10, 0x02, 0x06, 0x00, 0x14, 0x01, 0x00, 0x08, 0x01,
                             0,    0,    0,    0,    0,    0,    0x04, 0x04, 0x11, 0xFF};
        tx(p, r, sizeof r);
        p->up = 1;
        p->seq_out = p->seq_in = 0;
    } else if (f.service == KNX_CONNSTATE_REQ) {
        const uint8_t r[] = {0x06, 0x10, 0x02, 0x08, 0x00, 0x08, 0x01, 0x00};
        tx(p, r, sizeof r);
    } else if (f.service == KNX_TUNNEL_ACK && p->waiting_ack && f.seq == p->seq_out) {
        p->waiting_ack = 0;
        p->seq_out++;
        p->sent++;
        p->acked++;
    } else if (f.service == KNX_TUNNEL_REQ) {
        tx(p, b, knx_enc_tunnel_ack(b, sizeof b, 1, f.seq, 0));
        if (f.seq != p->seq_in) return;
        p->seq_in++;
        p->requests++;
        uint8_t con[32];
        memcpy(con, f.cemi, f.cemi_len < sizeof con ? f.cemi_len : sizeof con);
        con[0] = KNX_CEMI_LDATA_CON;
        /* the confirmation goes out with our own sequence; it is acknowledged like the pushes */
        if (!p->waiting_ack) {
            tx(p, b,
               knx_enc_tunnel_req(b, sizeof b, 1, p->seq_out, con,
                                  f.cemi_len < sizeof con ? f.cemi_len : sizeof con));
            p->waiting_ack = 1;
            p->sent_at = tbgw_mono_ms();
            p->sent--; /* not a push */
        }
    }
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s port addresses rate seconds\n", argv[0]);
        return 2;
    }
    peer p = {0};
    int naddr = atoi(argv[2]);
    double rate = atof(argv[3]), seconds = atof(argv[4]);
    if (naddr < 1) naddr = 1;
    p.fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)atoi(argv[1])),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(p.fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        perror("bind");
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    int64_t start = 0, end = 0;
    uint8_t buf[512];
    for (;;) {
        int64_t now = tbgw_mono_ms();
        if (p.up && !start) {
            start = now + 1000; /* let the first polls pass */
            end = start + (int64_t)(seconds * 1000);
        }
        if (start && now >= end) break;
        if (p.up && start && now >= start && !p.waiting_ack &&
            (rate <= 0 || p.sent < (long)((double)(now - start) * rate / 1000.0)))
            push(&p, naddr);
        if (p.waiting_ack && now - p.sent_at >= 1000) { /* lost: send again */
            p.repeats++;
            p.waiting_ack = 0;
        }
        struct pollfd pfd = {.fd = p.fd, .events = POLLIN};
        if (poll(&pfd, 1, p.waiting_ack || rate > 0 ? 1 : 10) > 0) {
            socklen_t sl = sizeof p.client;
            ssize_t n = recvfrom(p.fd, buf, sizeof buf, 0, (struct sockaddr *)&p.client, &sl);
            if (n > 0) on_datagram(&p, buf, (size_t)n);
        }
    }
    printf("{\"pushed\":%ld,\"seconds\":%.3f,\"repeats\":%ld,\"requests\":%ld}\n", p.sent, seconds, p.repeats,
           p.requests);
    return 0;
}
