/* KNXnet/IP client: tunnelling over UDP and routing (see knx_client.h). */
#include "proto/knx/knx_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <tbgw/err.h>
#include <unistd.h>

#include "util/backoff.h"
#include "util/time.h"

typedef enum cl_state { ST_IDLE = 0, ST_SEARCH, ST_TCP, ST_CONNECT, ST_UP, ST_WAIT } cl_state;

typedef struct out_item {
    uint8_t cemi[32];
    uint8_t len;
    uint16_t dst;
    uint64_t tag;
} out_item;

/* Where the head of the queue is. */
typedef enum head_state { H_NONE = 0, H_SENT, H_ACKED } head_state;

struct knx_client {
    knx_client_cfg cfg;
    knx_client_cb cb;
    tbgw_logger *log;
    int fd;
    cl_state st;
    uint32_t gw_ip; /* the gateway in use (configured or found) */
    uint16_t gw_port;
    uint32_t data_ip; /* the tunnel's data endpoint (from CONNECT_RESPONSE) */
    uint16_t data_port;
    knx_hpai local; /* our control/data endpoint */
    uint8_t channel, send_seq, recv_seq;
    uint16_t ia;
    int64_t deadline;       /* state timer: search end, connect timeout, retry time */
    int64_t next_heartbeat; /* ST_UP: next CONNECTIONSTATE_REQUEST */
    int64_t hb_deadline;    /* a heartbeat is outstanding until then (0 = none) */
    int hb_tries;
    int64_t next_send_ok; /* rate limit / ROUTING_BUSY */
    int search_done_once;
    /* outgoing queue (ring) */
    out_item *q;
    size_t q_cap, q_head, q_len;
    head_state hs;
    int64_t head_deadline;
    int head_repeats;
    tbgw_backoff bo;
    knx_client_stats stats;
    int port_warned;
    int described;                 /* the DESCRIPTION_RESPONSE was logged */
    uint8_t rx[2 * KNX_MAX_FRAME]; /* TCP: bytes of a frame not complete yet */
    size_t rx_len;
};

static void set_defaults(knx_client_cfg *c) {
    if (!c->gw_port) c->gw_port = KNX_DEFAULT_PORT;
    if (!c->mcast_ip) c->mcast_ip = 0xE000170C; /* 224.0.23.12 */
    if (!c->mcast_port) c->mcast_port = KNX_DEFAULT_PORT;
    if (c->search_ms <= 0) c->search_ms = 3000;
    if (c->heartbeat_ms <= 0) c->heartbeat_ms = 60000;
    if (c->ack_timeout_ms <= 0) c->ack_timeout_ms = 1000;
    if (c->confirm_timeout_ms <= 0) c->confirm_timeout_ms = 3000;
    if (c->connect_timeout_ms <= 0) c->connect_timeout_ms = 10000;
    if (c->reconnect_base_ms <= 0) c->reconnect_base_ms = 3000;
    if (c->reconnect_cap_ms < c->reconnect_base_ms) c->reconnect_cap_ms = 8 * c->reconnect_base_ms;
    if (!c->queue_cap) c->queue_cap = 1024;
}

static void ip_str(uint32_t ip, char *out, size_t cap) {
    struct in_addr a = {htonl(ip)};
    inet_ntop(AF_INET, &a, out, (socklen_t)cap);
}

static void close_fd(knx_client *c) {
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
}

static int send_to(knx_client *c, uint32_t ip, uint16_t port, const uint8_t *buf, int len) {
    if (c->fd < 0 || len <= 0) return TBGW_EIO;
    if (c->cfg.tcp && c->st != ST_SEARCH) { /* one stream carries every frame of the tunnel */
        ssize_t n = send(c->fd, buf, (size_t)len, MSG_NOSIGNAL);
        if (n != len) {
            TBGW_DEBUGF(c->log, "knx: TCP send failed: %s", n < 0 ? strerror(errno) : "short write");
            return TBGW_EIO;
        }
        return 0;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(ip)};
    if (sendto(c->fd, buf, (size_t)len, 0, (struct sockaddr *)&sa, sizeof sa) < 0) {
        TBGW_DEBUGF(c->log, "knx: sendto failed: %s", strerror(errno));
        return TBGW_EIO;
    }
    return 0;
}

static int send_gw(knx_client *c, const uint8_t *buf, int len) {
    return send_to(c, c->gw_ip, c->gw_port, buf, len);
}

/* Tunnelling requests and ACKs go to the data endpoint the gateway named. */
static int send_data(knx_client *c, const uint8_t *buf, int len) {
    return send_to(c, c->data_ip, c->data_port, buf, len);
}

/* The local IPv4 address the kernel would use towards ip (for the HPAI). */
static uint32_t local_addr_towards(uint32_t ip) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return 0;
    struct sockaddr_in sa = {
        .sin_family = AF_INET, .sin_port = htons(KNX_DEFAULT_PORT), .sin_addr.s_addr = htonl(ip)};
    uint32_t out = 0;
    socklen_t sl = sizeof sa;
    if (connect(s, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(s, (struct sockaddr *)&sa, &sl) == 0)
        out = ntohl(sa.sin_addr.s_addr);
    close(s);
    return out;
}

/* A non-blocking UDP socket bound to local_ip:port (port 0 = any). */
static int open_udp(uint32_t ip, uint16_t port, int reuse) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s < 0) return -1;
    int one = 1;
    if (reuse) setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(ip)};
    if (bind(s, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(s);
        return -1;
    }
    return s;
}

static int open_unicast(knx_client *c) {
    int s = open_udp(c->cfg.local_ip, c->cfg.local_port, 0);
    if (s < 0 && c->cfg.local_port) {
        if (!c->port_warned)
            TBGW_WARNF(c->log, "knx: local port %u is not available (%s); using an ephemeral port",
                       (unsigned)c->cfg.local_port, strerror(errno));
        c->port_warned = 1;
        s = open_udp(c->cfg.local_ip, 0, 0);
    }
    if (s < 0) return TBGW_EIO;
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    getsockname(s, (struct sockaddr *)&sa, &sl);
    uint32_t toward = c->gw_ip ? c->gw_ip : c->cfg.mcast_ip;
    c->local.proto = KNX_HPAI_UDP;
    c->local.ip = c->cfg.local_ip ? c->cfg.local_ip : local_addr_towards(toward);
    c->local.port = ntohs(sa.sin_port);
    struct in_addr ifa = {htonl(c->local.ip)}; /* search requests leave on the interface of local_ip */
    setsockopt(s, IPPROTO_IP, IP_MULTICAST_IF, &ifa, sizeof ifa);
    int one = 1; /* ICMP errors (gateway port closed, host unreachable) end a tunnel at once */
    setsockopt(s, IPPROTO_IP, IP_RECVERR, &one, sizeof one);
    c->fd = s;
    return 0;
}

/* Starts a non-blocking TCP connection to the gateway; the HPAIs then say "this connection". */
static int open_tcp(knx_client *c) {
    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s < 0) return TBGW_EIO;
    int one = 1;
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (c->cfg.local_ip) {
        struct sockaddr_in la = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(c->cfg.local_ip)};
        bind(s, (struct sockaddr *)&la, sizeof la);
    }
    struct sockaddr_in sa = {
        .sin_family = AF_INET, .sin_port = htons(c->gw_port), .sin_addr.s_addr = htonl(c->gw_ip)};
    if (connect(s, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS) {
        close(s);
        return TBGW_EIO;
    }
    c->local = (knx_hpai){KNX_HPAI_TCP, 0, 0};
    c->rx_len = 0;
    c->fd = s;
    return 0;
}

static int open_routing(knx_client *c) {
    int s = open_udp(0, c->cfg.mcast_port, 1);
    if (s < 0) return TBGW_EIO;
    struct ip_mreqn mr = {.imr_multiaddr.s_addr = htonl(c->cfg.mcast_ip),
                          .imr_address.s_addr = htonl(c->cfg.local_ip)};
    if (setsockopt(s, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof mr) < 0) {
        TBGW_ERRORF(c->log, "knx: joining multicast group failed: %s", strerror(errno));
        close(s);
        return TBGW_EIO;
    }
    struct in_addr ifa = {htonl(c->cfg.local_ip)};
    setsockopt(s, IPPROTO_IP, IP_MULTICAST_IF, &ifa, sizeof ifa);
    int one = 1;
    setsockopt(s, IPPROTO_IP, IP_MULTICAST_LOOP, &one, sizeof one);
    c->fd = s;
    return 0;
}

/* ---- queue ---- */

static out_item *head(knx_client *c) {
    return c->q_len ? &c->q[c->q_head] : NULL;
}

static void pop_head(knx_client *c, int ok, const char *why) {
    out_item it = c->q[c->q_head];
    c->q_head = (c->q_head + 1) % c->q_cap;
    c->q_len--;
    c->hs = H_NONE;
    c->head_repeats = 0;
    if (c->cb.on_sent) c->cb.on_sent(c->cb.ud, it.tag, ok, why);
}

static void fail_all(knx_client *c, const char *why) {
    while (c->q_len) pop_head(c, 0, why);
}

/* ---- state changes ---- */

static void go_wait(knx_client *c, int64_t now, const char *why) {
    int was_up = c->st == ST_UP;
    close_fd(c);
    c->st = ST_WAIT;
    c->hb_deadline = 0;
    if (!c->cfg.gw_ip && c->cfg.mode == KNX_MODE_TUNNEL) c->gw_ip = 0; /* a found gateway: search again */
    int64_t d = tbgw_backoff_next(&c->bo);
    c->deadline = now + d;
    if (was_up) {
        c->stats.losses++;
        TBGW_WARNF(c->log, "knx: connection lost (%s); reconnecting in %lld ms", why, (long long)d);
    } else
        TBGW_INFOF(c->log, "knx: %s; retrying in %lld ms", why, (long long)d);
    fail_all(c, why);
    if (was_up && c->cb.on_state) c->cb.on_state(c->cb.ud, 0, why);
}

/* Ends a tunnel the gateway may still hold (so its channel is freed), then waits to reconnect. */
static void drop_tunnel(knx_client *c, int64_t now, const char *why) {
    if (c->st == ST_UP && c->cfg.mode == KNX_MODE_TUNNEL && c->fd >= 0) {
        uint8_t buf[32];
        send_gw(c, buf, knx_enc_disconnect_req(buf, sizeof buf, c->channel, &c->local));
    }
    go_wait(c, now, why);
}

static void go_up(knx_client *c, int64_t now) {
    c->st = ST_UP;
    c->stats.connects++;
    tbgw_backoff_reset(&c->bo);
    c->next_heartbeat = now + c->cfg.heartbeat_ms;
    c->hb_deadline = 0;
    c->hb_tries = 0;
    c->hs = H_NONE;
    if (c->cfg.describe && c->cfg.mode == KNX_MODE_TUNNEL && !c->described) {
        uint8_t buf[32]; /* who the gateway is, for the log (answered on the control endpoint) */
        send_gw(c, buf, knx_enc_description_req(buf, sizeof buf, &c->local));
    }
    if (c->cb.on_state) c->cb.on_state(c->cb.ud, 1, NULL);
}

static void send_connect(knx_client *c, int64_t now) {
    uint8_t buf[64];
    c->st = ST_CONNECT;
    c->deadline = now + c->cfg.connect_timeout_ms;
    send_gw(c, buf, knx_enc_connect_req(buf, sizeof buf, &c->local, &c->local));
}

static void send_search(knx_client *c, int64_t now) {
    uint8_t buf[32];
    c->st = ST_SEARCH;
    c->deadline = now + c->cfg.search_ms;
    char ip[32];
    ip_str(c->cfg.mcast_ip, ip, sizeof ip);
    TBGW_INFOF(c->log, "knx: searching for KNXnet/IP gateways on %s:%u", ip, (unsigned)c->cfg.mcast_port);
    send_to(c, c->cfg.mcast_ip, c->cfg.mcast_port, buf, knx_enc_search_req(buf, sizeof buf, &c->local));
}

static void start_tcp(knx_client *c, int64_t now) {
    close_fd(c);
    if (open_tcp(c) < 0) return go_wait(c, now, "cannot open a TCP connection");
    c->st = ST_TCP;
    c->deadline = now + c->cfg.connect_timeout_ms;
}

/* ST_TCP: the connection attempt finished? */
static void tcp_connecting(knx_client *c, int64_t now) {
    struct pollfd pfd = {.fd = c->fd, .events = POLLOUT};
    if (poll(&pfd, 1, 0) <= 0) {
        if (now >= c->deadline) go_wait(c, now, "TCP connection to the gateway timed out");
        return;
    }
    int e = 0;
    socklen_t el = sizeof e;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &el);
    if (e) {
        char why[96];
        snprintf(why, sizeof why, "TCP connection to the gateway failed (%s)", strerror(e));
        return go_wait(c, now, why);
    }
    send_connect(c, now);
}

static void start(knx_client *c, int64_t now) {
    if (c->cfg.mode == KNX_MODE_ROUTING) {
        if (open_routing(c) < 0) return go_wait(c, now, "cannot open the routing socket");
        char ip[32];
        ip_str(c->cfg.mcast_ip, ip, sizeof ip);
        TBGW_INFOF(c->log, "knx: routing on %s:%u", ip, (unsigned)c->cfg.mcast_port);
        return go_up(c, now);
    }
    int search = !c->gw_ip || (c->cfg.search && !c->search_done_once);
    if (c->cfg.tcp && !search) return start_tcp(c, now);
    if (open_unicast(c) < 0) return go_wait(c, now, "cannot open a UDP socket");
    if (search) return send_search(c, now);
    send_connect(c, now);
}

/* ---- sending ---- */

static void transmit_head(knx_client *c, int64_t now) {
    out_item *it = head(c);
    uint8_t buf[64];
    if (c->cfg.mode == KNX_MODE_ROUTING) {
        int n = knx_enc_routing_ind(buf, sizeof buf, it->cemi, it->len);
        int rc = send_to(c, c->cfg.mcast_ip, c->cfg.mcast_port, buf, n);
        c->stats.telegrams_out++;
        c->next_send_ok = now + c->cfg.min_interval_ms;
        pop_head(c, rc == 0, rc == 0 ? NULL : "send failed");
        return;
    }
    int rc =
        send_data(c, buf, knx_enc_tunnel_req(buf, sizeof buf, c->channel, c->send_seq, it->cemi, it->len));
    if (c->cfg.tcp) { /* no TUNNELING_ACK over TCP: the stream is reliable */
        if (rc < 0) return go_wait(c, now, "TCP connection to the gateway broken");
        c->send_seq++;
        c->hs = H_ACKED;
        c->head_deadline = now + c->cfg.confirm_timeout_ms;
        return;
    }
    c->hs = H_SENT;
    c->head_deadline = now + c->cfg.ack_timeout_ms;
}

static void pump(knx_client *c, int64_t now) {
    while (c->st == ST_UP && c->q_len && c->hs == H_NONE && now >= c->next_send_ok) {
        transmit_head(c, now);
        if (c->cfg.mode == KNX_MODE_ROUTING && c->cfg.min_interval_ms) break;
    }
}

int knx_client_send(knx_client *c, uint16_t ga, uint16_t apci, const knx_payload *value, uint64_t tag) {
    if (c->st != ST_UP) return TBGW_EAGAIN;
    if (c->q_len == c->q_cap) return TBGW_EFULL;
    out_item *it = &c->q[(c->q_head + c->q_len) % c->q_cap];
    uint8_t code = c->cfg.mode == KNX_MODE_ROUTING ? KNX_CEMI_LDATA_IND : KNX_CEMI_LDATA_REQ;
    uint16_t src = c->cfg.mode == KNX_MODE_ROUTING ? c->cfg.individual : 0;
    int n = knx_cemi_encode_group(it->cemi, sizeof it->cemi, code, src, ga, apci, value);
    if (n < 0) return TBGW_EINVAL;
    it->len = (uint8_t)n;
    it->dst = ga;
    it->tag = tag;
    c->q_len++;
    return 0;
}

/* ---- receiving ---- */

static void on_cemi(knx_client *c, const uint8_t *p, size_t len, int64_t now) {
    knx_ldata ld;
    int rc = knx_cemi_parse(p, len, &ld);
    if (rc == TBGW_ENOENT) return; /* other cEMI services: not ours */
    if (rc < 0) {
        c->stats.frames_bad++;
        TBGW_DEBUGF(c->log, "knx: malformed cEMI frame (%zu octets) dropped", len);
        return;
    }
    if (ld.code == KNX_CEMI_LDATA_CON) {
        out_item *it = head(c);
        if (it && c->hs != H_NONE && ld.dst == it->dst) {
            c->stats.telegrams_out++;
            c->next_send_ok = now + c->cfg.min_interval_ms;
            pop_head(c, !ld.confirm_error, ld.confirm_error ? "not confirmed by the bus" : NULL);
        }
        return;
    }
    if (ld.code != KNX_CEMI_LDATA_IND || !ld.group) return;
    if (c->cfg.mode == KNX_MODE_ROUTING && ld.src == c->cfg.individual) return; /* our own, looped back */
    c->stats.telegrams_in++;
    if (c->cb.on_telegram) c->cb.on_telegram(c->cb.ud, &ld);
}

static void on_tunnel_req(knx_client *c, const knx_frame *f, int64_t now) {
    if (c->st != ST_UP || f->channel != c->channel) return;
    if (c->cfg.tcp) return on_cemi(c, f->cemi, f->cemi_len, now); /* neither ACK nor sequence check */
    uint8_t buf[16];
    if (f->seq == (uint8_t)(c->recv_seq - 1)) { /* a repeat of the last one: acknowledge again only */
        send_data(c, buf, knx_enc_tunnel_ack(buf, sizeof buf, c->channel, f->seq, KNX_E_NO_ERROR));
        return;
    }
    if (f->seq != c->recv_seq) return; /* out of sequence: dropped without ACK (the server repeats) */
    send_data(c, buf, knx_enc_tunnel_ack(buf, sizeof buf, c->channel, f->seq, KNX_E_NO_ERROR));
    c->recv_seq++;
    on_cemi(c, f->cemi, f->cemi_len, now);
}

static void on_tunnel_ack(knx_client *c, const knx_frame *f, int64_t now) {
    if (c->cfg.tcp || c->st != ST_UP || f->channel != c->channel || c->hs != H_SENT || f->seq != c->send_seq)
        return;
    if (f->status != KNX_E_NO_ERROR) {
        char why[64];
        snprintf(why, sizeof why, "tunnelling ACK with %s", knx_status_name(f->status));
        return drop_tunnel(c, now, why);
    }
    c->send_seq++;
    c->hs = H_ACKED;
    c->head_deadline = now + c->cfg.confirm_timeout_ms;
}

static void on_search_res(knx_client *c, const knx_frame *f, uint32_t from_ip, uint16_t from_port,
                          int64_t now) {
    if (c->st != ST_SEARCH) return;
    uint32_t ip = f->hpai.ip ? f->hpai.ip : from_ip;
    uint16_t port = f->hpai.port ? f->hpai.port : from_port;
    char is[32], ia[16];
    ip_str(ip, is, sizeof is);
    knx_ia_format(f->dev_ia, ia, sizeof ia);
    c->stats.search_found++;
    TBGW_INFOF(c->log, "knx: found gateway \"%s\" (%s) at %s:%u", f->name, ia, is, (unsigned)port);
    if (!c->gw_ip) {
        c->gw_ip = ip;
        c->gw_port = port;
    }
    if (c->cfg.search_stop_on_found) c->deadline = now;
}

static const char *medium_name(uint8_t m) {
    switch (m) {
    case 0x02:
        return "TP1";
    case 0x04:
        return "PL110";
    case 0x10:
        return "RF";
    case 0x20:
        return "KNX IP";
    default:
        return "unknown";
    }
}

static void on_frame(knx_client *c, const uint8_t *p, size_t len, uint32_t from_ip, uint16_t from_port,
                     int64_t now) {
    knx_frame f;
    c->stats.frames_in++;
    int rc = knx_frame_parse(p, len, &f);
    if (rc == TBGW_ENOENT) return;
    if (rc < 0) {
        c->stats.frames_bad++;
        TBGW_DEBUGF(c->log, "knx: malformed KNXnet/IP frame (%zu octets) dropped", len);
        return;
    }
    uint8_t buf[32];
    switch (f.service) {
    case KNX_SEARCH_RES:
        return on_search_res(c, &f, from_ip, from_port, now);
    case KNX_DESCRIPTION_RES:
        if (!c->described) {
            char ia[16];
            knx_ia_format(f.dev_ia, ia, sizeof ia);
            TBGW_INFOF(c->log, "knx: gateway \"%s\" (%s), medium %s", f.name, ia, medium_name(f.medium));
        }
        c->described = 1;
        return;
    case KNX_CONNECT_RES:
        if (c->st != ST_CONNECT) return;
        if (f.status != KNX_E_NO_ERROR) {
            char why[80];
            snprintf(why, sizeof why, "gateway refused the tunnel: %s", knx_status_name(f.status));
            return go_wait(c, now, why);
        }
        c->channel = f.channel;
        c->ia = f.ia;
        c->data_ip = f.hpai.ip ? f.hpai.ip : c->gw_ip; /* 0.0.0.0 = the address the response came from */
        c->data_port = f.hpai.port ? f.hpai.port : c->gw_port;
        c->send_seq = c->recv_seq = 0;
        {
            char ia[16], is[32];
            knx_ia_format(f.ia, ia, sizeof ia);
            ip_str(c->gw_ip, is, sizeof is);
            TBGW_INFOF(c->log, "knx: tunnel to %s:%u open (channel %u, address %s)", is, (unsigned)c->gw_port,
                       (unsigned)f.channel, ia);
        }
        return go_up(c, now);
    case KNX_CONNSTATE_RES:
        if (c->st != ST_UP || f.channel != c->channel || !c->hb_deadline) return;
        if (f.status != KNX_E_NO_ERROR) return drop_tunnel(c, now, "connection state check failed");
        c->hb_deadline = 0;
        c->hb_tries = 0;
        c->next_heartbeat = now + c->cfg.heartbeat_ms;
        return;
    case KNX_DISCONNECT_REQ:
        if (c->st != ST_UP || f.channel != c->channel) return;
        send_gw(c, buf, knx_enc_disconnect_res(buf, sizeof buf, c->channel, KNX_E_NO_ERROR));
        return go_wait(c, now, "the gateway closed the tunnel");
    case KNX_TUNNEL_REQ:
        return on_tunnel_req(c, &f, now);
    case KNX_TUNNEL_ACK:
        return on_tunnel_ack(c, &f, now);
    case KNX_ROUTING_IND:
        if (c->cfg.mode == KNX_MODE_ROUTING) on_cemi(c, f.cemi, f.cemi_len, now);
        return;
    case KNX_ROUTING_BUSY:
        if (c->cfg.mode == KNX_MODE_ROUTING) {
            int64_t w = f.busy_wait_ms ? f.busy_wait_ms : 100;
            c->next_send_ok = now + w;
            TBGW_DEBUGF(c->log, "knx: ROUTING_BUSY, pausing %lld ms", (long long)w);
        }
        return;
    default:
        return;
    }
}

/* Reads the queued ICMP errors (IP_RECVERR) so they are reported once. */
static void drain_errqueue(knx_client *c) {
    uint8_t buf[256], ctl[512];
    for (int i = 0; i < 16; i++) {
        struct iovec iov = {buf, sizeof buf};
        struct msghdr mh = {
            .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
        if (recvmsg(c->fd, &mh, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) return;
    }
}

/* TCP: frames are cut from the stream by the header's total length. */
static void read_tcp(knx_client *c, int64_t now) {
    for (int i = 0; i < 64 && c->fd >= 0; i++) {
        ssize_t n = recv(c->fd, c->rx + c->rx_len, sizeof c->rx - c->rx_len, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n <= 0) {
            char why[96];
            snprintf(why, sizeof why, "the gateway closed the TCP connection%s%s", n < 0 ? ": " : "",
                     n < 0 ? strerror(errno) : "");
            return go_wait(c, now, why);
        }
        c->rx_len += (size_t)n;
        size_t off = 0;
        for (;;) {
            int total = knx_stream_frame_len(c->rx + off, c->rx_len - off);
            if (total < 0) {
                c->stats.frames_bad++;
                return go_wait(c, now, "malformed frame on the TCP connection");
            }
            if (total == 0) break;
            on_frame(c, c->rx + off, (size_t)total, c->gw_ip, c->gw_port, now);
            if (c->fd < 0) return; /* the frame ended the connection */
            off += (size_t)total;
        }
        memmove(c->rx, c->rx + off, c->rx_len - off);
        c->rx_len -= off;
    }
}

static void read_all(knx_client *c, int64_t now) {
    if (c->cfg.tcp && c->st != ST_SEARCH && c->st != ST_IDLE && c->st != ST_WAIT) {
        if (c->st != ST_TCP) read_tcp(c, now);
        return;
    }
    uint8_t buf[KNX_MAX_FRAME + 64];
    for (int i = 0; i < 256 && c->fd >= 0; i++) {
        struct sockaddr_in sa;
        socklen_t sl = sizeof sa;
        ssize_t n = recvfrom(c->fd, buf, sizeof buf, 0, (struct sockaddr *)&sa, &sl);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            int e = errno;
            drain_errqueue(c);
            if (c->st == ST_CONNECT || c->st == ST_UP) {
                char why[96];
                snprintf(why, sizeof why, "gateway unreachable (%s)", strerror(e));
                return go_wait(c, now, why);
            }
            continue;
        }
        on_frame(c, buf, (size_t)n, ntohl(sa.sin_addr.s_addr), ntohs(sa.sin_port), now);
    }
}

/* ---- timers ---- */

static void timers_up(knx_client *c, int64_t now) {
    uint8_t buf[64]; /* a repeated request: up to 10 + 32 octets */
    if (c->cfg.mode == KNX_MODE_TUNNEL) {
        if (c->hb_deadline && now >= c->hb_deadline) {
            if (++c->hb_tries >= 3) return drop_tunnel(c, now, "no answer to connection state requests");
            c->hb_deadline = 0;
            c->next_heartbeat = now;
        }
        if (!c->hb_deadline && now >= c->next_heartbeat) {
            send_gw(c, buf, knx_enc_connstate_req(buf, sizeof buf, c->channel, &c->local));
            c->hb_deadline = now + c->cfg.connect_timeout_ms;
        }
        if (c->hs == H_SENT && now >= c->head_deadline) {
            if (c->head_repeats++ >= 1) return drop_tunnel(c, now, "no tunnelling ACK after a repeat");
            out_item *it = head(c);
            c->stats.repeats++;
            send_data(c, buf,
                      knx_enc_tunnel_req(buf, sizeof buf, c->channel, c->send_seq, it->cemi, it->len));
            c->head_deadline = now + c->cfg.ack_timeout_ms;
        } else if (c->hs == H_ACKED && now >= c->head_deadline) {
            c->next_send_ok = now + c->cfg.min_interval_ms;
            pop_head(c, 0, "no confirmation from the gateway");
        }
    }
    pump(c, now);
}

void knx_client_step(knx_client *c, int64_t now) {
    read_all(c, now);
    switch (c->st) {
    case ST_IDLE:
        start(c, now);
        break;
    case ST_SEARCH:
        if (now < c->deadline) break;
        c->search_done_once = 1;
        if (!c->gw_ip) {
            go_wait(c, now, "no KNXnet/IP gateway answered the search");
            break;
        }
        if (c->cfg.tcp)
            start_tcp(c, now);
        else
            send_connect(c, now);
        break;
    case ST_TCP:
        tcp_connecting(c, now);
        break;
    case ST_CONNECT:
        if (now >= c->deadline) go_wait(c, now, "no answer to CONNECT_REQUEST");
        break;
    case ST_UP:
        timers_up(c, now);
        break;
    case ST_WAIT:
        if (now >= c->deadline) {
            c->st = ST_IDLE;
            start(c, now);
        }
        break;
    }
}

int64_t knx_client_next_ms(const knx_client *c, int64_t now) {
    int64_t t = now + 1000;
    if (c->st == ST_IDLE) return 0;
    if (c->st != ST_UP)
        t = c->deadline;
    else {
        if (c->cfg.mode == KNX_MODE_TUNNEL) {
            if (c->hb_deadline && c->hb_deadline < t) t = c->hb_deadline;
            if (!c->hb_deadline && c->next_heartbeat < t) t = c->next_heartbeat;
            if (c->hs != H_NONE && c->head_deadline < t) t = c->head_deadline;
        }
        if (c->q_len && c->hs == H_NONE && c->next_send_ok < t) t = c->next_send_ok;
    }
    return t > now ? t - now : 0;
}

/* ---- lifecycle ---- */

knx_client *knx_client_new(const knx_client_cfg *cfg, const knx_client_cb *cb, tbgw_logger *log) {
    knx_client *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->cfg = *cfg;
    set_defaults(&c->cfg);
    if (cb) c->cb = *cb;
    c->log = log;
    c->fd = -1;
    c->gw_ip = c->cfg.gw_ip;
    c->gw_port = c->cfg.gw_port;
    c->q_cap = c->cfg.queue_cap;
    c->q = calloc(c->q_cap, sizeof *c->q);
    if (!c->q) {
        free(c);
        return NULL;
    }
    tbgw_backoff_init(&c->bo, c->cfg.reconnect_base_ms, c->cfg.reconnect_cap_ms);
    return c;
}

void knx_client_free(knx_client *c) {
    if (!c) return;
    if (c->st == ST_UP && c->cfg.mode == KNX_MODE_TUNNEL) {
        uint8_t buf[32];
        send_gw(c, buf, knx_enc_disconnect_req(buf, sizeof buf, c->channel, &c->local));
    }
    c->cb.on_sent = NULL;
    c->cb.on_state = NULL;
    fail_all(c, "client closed");
    close_fd(c);
    free(c->q);
    free(c);
}

void knx_client_reset(knx_client *c, const char *why) {
    if (c->st == ST_UP && c->cfg.mode == KNX_MODE_TUNNEL) {
        uint8_t buf[32];
        send_gw(c, buf, knx_enc_disconnect_req(buf, sizeof buf, c->channel, &c->local));
    }
    if (c->st == ST_UP || c->st == ST_CONNECT || c->st == ST_SEARCH) go_wait(c, tbgw_mono_ms(), why);
}

int knx_client_fd(const knx_client *c) {
    return c->fd;
}
short knx_client_events(const knx_client *c) {
    return (short)(POLLIN | (c->st == ST_TCP ? POLLOUT : 0));
}
int knx_client_connected(const knx_client *c) {
    return c->st == ST_UP;
}
size_t knx_client_queued(const knx_client *c) {
    return c->q_len;
}
void knx_client_get_stats(const knx_client *c, knx_client_stats *out) {
    *out = c->stats;
}
uint16_t knx_client_address(const knx_client *c) {
    return c->ia;
}
