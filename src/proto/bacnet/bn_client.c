/* BACnet/IP endpoint: transactions, segmentation (both directions), router cache, foreign-device
 * registration. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto/bacnet/bn_client.h"
#include "util/time.h"

#define MAX_SEGMENTED (256 * 1024)

typedef struct txn {
    uint8_t invoke;
    uint8_t service;
    bn_addr dst;
    uint8_t *frame; /* the request as sent, for retries */
    size_t frame_len;
    int64_t deadline;
    int64_t started; /* first sent (a route with no frame since then is forgotten on timeout) */
    int held;        /* not sent yet: its router is busy */
    int tries;
    bn_done_fn cb;
    void *ud;
    uint8_t *seg; /* reassembled segmented ACK */
    size_t seg_len;
    int seg_next; /* next expected sequence number, -1 = not segmenting */
    /* a segmented request: the whole service request, sent in chunks of `chunk` octets */
    uint8_t *req;
    size_t req_len, chunk;
    int n_segs, acked, sent; /* highest acknowledged sequence number (-1 none), segments sent */
    int req_done;            /* every segment acknowledged: waiting for the answer */
    uint8_t window;
    size_t idx; /* position in act */
    struct txn *next_in_bucket;
} txn;

/* Invoke ids are unique per peer: transactions are found by (peer, invoke id) in a hash table. */
#define N_BUCKETS  4096
#define MAX_ROUTES 64

typedef struct route {
    uint16_t net;
    uint32_t ip;
    uint16_t port;
    int64_t heard;      /* last frame from that network (or the router's I-Am-Router-To-Network) */
    int64_t busy_until; /* Router-Busy-To-Network */
} route;

/* A segmented request to us being reassembled (clause 5.4.5, window size 1). */
#define MAX_RX_SEG 8
typedef struct rxseg {
    bn_addr src;
    bn_apdu first; /* header of segment 0 (invoke id, service, what the requester accepts) */
    uint8_t *buf;
    size_t len;
    int next; /* next expected sequence number, 0 = slot free */
    int64_t deadline;
} rxseg;

struct bn_client {
    int fd;
    rxseg rx[MAX_RX_SEG];
    bn_client_opts o;
    bn_handlers h;
    uint16_t port;
    txn *bucket[N_BUCKETS];
    txn **act; /* every pending transaction */
    size_t n_act, cap_act;
    uint8_t next_invoke;
    int64_t fd_renew_at;
    uint32_t self_ip;
    uint8_t window;
    route routes[MAX_ROUTES];
    size_t n_routes;
    bn_client_stats st;
};

static size_t bucket_of(const bn_addr *a, uint8_t invoke) {
    uint32_t h = a->ip * 2654435761u ^ ((uint32_t)a->port << 8) ^ ((uint32_t)a->net << 20) ^ invoke;
    if (a->net && a->mac_len) h ^= (uint32_t)a->mac[a->mac_len - 1] << 12;
    return (h ^ (h >> 15)) % N_BUCKETS;
}

static txn *lookup(const bn_client *c, const bn_addr *a, uint8_t invoke) {
    for (txn *t = c->bucket[bucket_of(a, invoke)]; t; t = t->next_in_bucket)
        if (t->invoke == invoke && bn_addr_equal(&t->dst, a)) return t;
    return NULL;
}

/* Unlinks and frees t (its callback has run or will not). */
static void txn_drop(bn_client *c, txn *t) {
    txn **pp = &c->bucket[bucket_of(&t->dst, t->invoke)];
    while (*pp && *pp != t) pp = &(*pp)->next_in_bucket;
    if (*pp) *pp = t->next_in_bucket;
    c->act[t->idx] = c->act[--c->n_act];
    c->act[t->idx]->idx = t->idx;
    free(t->frame);
    free(t->seg);
    free(t->req);
    free(t);
}

void bn_addr_format(const bn_addr *a, char *out, size_t cap) {
    if (a->net) {
        uint64_t station = 0;
        for (unsigned i = 0; i < a->mac_len && i < 8; i++) station = (station << 8) | a->mac[i];
        snprintf(out, cap, "%u:%llu", a->net, (unsigned long long)station);
        return;
    }
    if (a->port == BN_DEFAULT_PORT)
        snprintf(out, cap, "%u.%u.%u.%u", a->ip >> 24, (a->ip >> 16) & 255, (a->ip >> 8) & 255, a->ip & 255);
    else
        snprintf(out, cap, "%u.%u.%u.%u:%u", a->ip >> 24, (a->ip >> 16) & 255, (a->ip >> 8) & 255,
                 a->ip & 255, a->port);
}

int bn_addr_equal(const bn_addr *a, const bn_addr *b) {
    if (a->ip != b->ip || a->port != b->port || a->net != b->net) return 0;
    if (!a->net) return 1;
    return a->mac_len == b->mac_len && memcmp(a->mac, b->mac, a->mac_len) == 0;
}

void bn_result_text(const bn_result *r, char *out, size_t cap) {
    switch (r->status) {
    case BN_OK:
        snprintf(out, cap, "ok");
        break;
    case BN_E_TIMEOUT:
        snprintf(out, cap, "no answer (timeout)");
        break;
    case BN_E_ERROR:
        snprintf(out, cap, "error: %s/%s", bn_error_class_name(r->eclass), bn_error_code_name(r->ecode));
        break;
    case BN_E_REJECT:
        snprintf(out, cap, "rejected: %s", bn_reject_name(r->reason));
        break;
    case BN_E_ABORT:
        snprintf(out, cap, "aborted: %s", bn_abort_name(r->reason));
        break;
    case BN_E_DECODE:
        snprintf(out, cap, "malformed answer");
        break;
    case BN_E_SEND:
        snprintf(out, cap, "cannot send");
        break;
    case BN_E_NETWORK:
        snprintf(out, cap, "rejected by the router: %s", bn_network_reject_name(r->reason));
        break;
    default:
        snprintf(out, cap, "cancelled");
        break;
    }
}

static int send_to(bn_client *c, uint32_t ip, uint16_t port, const uint8_t *p, size_t n) {
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(ip);
    sa.sin_port = htons(port);
    ssize_t r = sendto(c->fd, p, n, 0, (struct sockaddr *)&sa, sizeof sa);
    if (r != (ssize_t)n) return -1;
    c->st.tx_frames++;
    return 0;
}

static uint32_t local_ip_towards(uint32_t ip, uint16_t port) {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    if (s < 0) return 0;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(ip);
    sa.sin_port = htons(port);
    uint32_t out = 0;
    socklen_t sl = sizeof sa;
    if (connect(s, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(s, (struct sockaddr *)&sa, &sl) == 0)
        out = ntohl(sa.sin_addr.s_addr);
    close(s);
    return out;
}

static void register_fd(bn_client *c) {
    uint8_t f[6];
    size_t n = bn_bvll_register_fd(f, c->o.ttl);
    send_to(c, c->o.bbmd_ip, c->o.bbmd_port, f, n);
    int64_t every = c->o.ttl > 2 ? (int64_t)c->o.ttl * 1000 / 2 : 1000;
    c->fd_renew_at = tbgw_mono_ms() + every;
}

bn_client *bn_client_open(const bn_client_opts *o, const bn_handlers *h, char *errtext, size_t cap) {
    bn_client *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(errtext, cap, "out of memory");
        return NULL;
    }
    c->o = *o;
    if (h) c->h = *h;
    if (!c->o.timeout_ms) c->o.timeout_ms = 3000;
    if (c->o.retries < 0) c->o.retries = 0;
    if (!c->o.max_apdu) c->o.max_apdu = BN_MAX_APDU;
    c->window = 4;
    c->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        snprintf(errtext, cap, "socket: %s", strerror(errno));
        free(c);
        return NULL;
    }
    int one = 1;
    setsockopt(c->fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one);
    setsockopt(c->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    /* answers of many devices polled at once arrive in bursts: room for a few hundred frames */
    int rcvbuf = 4 << 20;
    setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(o->bind_ip);
    sa.sin_port = htons(o->port);
    if (bind(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        snprintf(errtext, cap, "bind to UDP port %u: %s", o->port, strerror(errno));
        close(c->fd);
        free(c);
        return NULL;
    }
    socklen_t sl = sizeof sa;
    getsockname(c->fd, (struct sockaddr *)&sa, &sl);
    c->port = ntohs(sa.sin_port);
    if (c->o.bbmd_ip) {
        c->self_ip = o->bind_ip ? o->bind_ip : local_ip_towards(o->bbmd_ip, o->bbmd_port);
        register_fd(c);
    }
    return c;
}

static void finish(bn_client *c, txn *t, bn_result *r) {
    bn_done_fn cb = t->cb;
    void *ud = t->ud;
    r->service = t->service;
    uint8_t *seg = t->seg; /* the data of a segmented answer lives until the callback returns */
    t->seg = NULL;
    txn_drop(c, t);
    if (cb) cb(ud, r);
    free(seg);
}

void bn_client_close(bn_client *c) {
    if (!c) return;
    while (c->n_act) {
        bn_result r = {.status = BN_E_CANCELLED};
        finish(c, c->act[c->n_act - 1], &r);
    }
    free(c->act);
    for (int i = 0; i < MAX_RX_SEG; i++) free(c->rx[i].buf);
    if (c->o.bbmd_ip && c->self_ip) {
        uint8_t f[10];
        size_t n = bn_bvll_delete_fdt(f, c->self_ip, c->port);
        send_to(c, c->o.bbmd_ip, c->o.bbmd_port, f, n);
    }
    close(c->fd);
    free(c);
}

int bn_client_fd(const bn_client *c) {
    return c->fd;
}

uint16_t bn_client_port(const bn_client *c) {
    return c->port;
}

void bn_client_get_stats(const bn_client *c, bn_client_stats *out) {
    *out = c->st;
}

int bn_client_router_to(const bn_client *c, uint16_t net, bn_addr *router) {
    for (size_t i = 0; i < c->n_routes; i++)
        if (c->routes[i].net == net) {
            memset(router, 0, sizeof *router);
            router->ip = c->routes[i].ip;
            router->port = c->routes[i].port;
            return 0;
        }
    return -1;
}

static route *find_route(bn_client *c, uint16_t net) {
    for (size_t i = 0; i < c->n_routes; i++)
        if (c->routes[i].net == net) return &c->routes[i];
    return NULL;
}

/* The route a frame to dst (behind a router, sent to ip:port) takes, when it is in the cache. */
static route *route_of(bn_client *c, const bn_addr *dst) {
    if (!dst->net || dst->net == 0xFFFF) return NULL;
    route *r = find_route(c, dst->net);
    return r && r->ip == dst->ip && r->port == dst->port ? r : NULL;
}

static int route_busy(bn_client *c, const bn_addr *dst, int64_t now) {
    route *r = route_of(c, dst);
    return r && r->busy_until > now;
}

/* Remembers that net is reached through hop; tells the owner when that is new or changed. */
static void learn_route(bn_client *c, uint16_t net, const bn_addr *hop) {
    if (net == 0 || net == 0xFFFF) return;
    route *r = find_route(c, net);
    int64_t now = tbgw_mono_ms();
    if (r && r->ip == hop->ip && r->port == hop->port) {
        r->heard = now;
        return;
    }
    if (!r) {
        if (c->n_routes == MAX_ROUTES) return;
        r = &c->routes[c->n_routes++];
    }
    r->net = net;
    r->ip = hop->ip;
    r->port = hop->port;
    r->heard = now;
    r->busy_until = 0;
    if (c->h.route) {
        bn_addr a = {.ip = hop->ip, .port = hop->port};
        c->h.route(c->h.ud, net, &a);
    }
}

/* Drops the route to net (the owner looks for a router again). */
static void forget_route(bn_client *c, route *r, const char *why) {
    bn_addr a = {.ip = r->ip, .port = r->port};
    uint16_t net = r->net;
    *r = c->routes[--c->n_routes];
    if (c->h.route_lost) c->h.route_lost(c->h.ud, net, &a, why);
}

/* Frames an APDU to dst (NPDU routing when dst is behind a router) and sends it. */
static int send_apdu(bn_client *c, const bn_addr *dst, int expecting_reply, const uint8_t *apdu, size_t n,
                     uint8_t *frame, size_t *frame_len) {
    bn_addr via = *dst;
    if (dst->net && dst->net != 0xFFFF && !dst->ip) {
        bn_addr r;
        if (bn_client_router_to(c, dst->net, &r) != 0) return -1; /* no router known for that network */
        via.ip = r.ip;
        via.port = r.port;
    }
    dst = &via;
    uint8_t local[BN_MAX_FRAME];
    uint8_t *f = frame ? frame : local;
    bn_w w;
    bn_w_init(&w, f, BN_MAX_FRAME);
    bn_put(&w, "\0\0\0\0", 4);
    bn_npdu_encode(&w, expecting_reply, dst->net, dst->mac, dst->mac_len);
    bn_put(&w, apdu, n);
    if (w.overflow) return -1;
    bn_bvll_finish(f, w.len, BN_BVLC_UNICAST);
    if (frame_len) *frame_len = w.len;
    if (route_busy(c, dst, tbgw_mono_ms())) return 1; /* held: the router is busy */
    return send_to(c, dst->ip, dst->port, f, w.len);
}

int bn_client_send_unconfirmed(bn_client *c, const bn_addr *dst, const uint8_t *apdu, size_t n, int global) {
    if (dst) return send_apdu(c, dst, 0, apdu, n, NULL, NULL);
    return bn_client_broadcast(c, BN_DEFAULT_PORT, apdu, n, global);
}

static int broadcast_frame(bn_client *c, uint16_t port, uint8_t *f, bn_w *wp) {
    bn_w w = *wp;
    if (w.overflow) return -1;
    if (c->o.bbmd_ip) {
        bn_bvll_finish(f, w.len, BN_BVLC_DISTRIBUTE);
        return send_to(c, c->o.bbmd_ip, c->o.bbmd_port, f, w.len);
    }
    bn_bvll_finish(f, w.len, BN_BVLC_BROADCAST);
    return send_to(c, c->o.broadcast_ip ? c->o.broadcast_ip : 0xFFFFFFFFu, port ? port : BN_DEFAULT_PORT, f,
                   w.len);
}

int bn_client_broadcast(bn_client *c, uint16_t port, const uint8_t *apdu, size_t n, int global) {
    uint8_t f[BN_MAX_FRAME];
    bn_w w;
    bn_w_init(&w, f, sizeof f);
    bn_put(&w, "\0\0\0\0", 4);
    bn_npdu_encode(&w, 0, global ? 0xFFFF : 0, NULL, 0);
    bn_put(&w, apdu, n);
    return broadcast_frame(c, port, f, &w);
}

int bn_client_who_is_router(bn_client *c, uint16_t port, uint16_t net) {
    uint8_t f[16];
    bn_w w;
    bn_w_init(&w, f, sizeof f);
    bn_put(&w, "\0\0\0\0", 4);
    bn_npdu_who_is_router(&w, net);
    return broadcast_frame(c, port, f, &w);
}

void bn_client_set_window(bn_client *c, unsigned window) {
    c->window = (uint8_t)(window < 1 ? 1 : window > 127 ? 127 : window);
}

/* Sends segment k of a segmented request. */
static void send_segment(bn_client *c, txn *t, int k) {
    uint8_t apdu[BN_MAX_APDU];
    bn_w w;
    bn_w_init(&w, apdu, sizeof apdu);
    size_t off = (size_t)k * t->chunk;
    size_t len = t->req_len - off < t->chunk ? t->req_len - off : t->chunk;
    bn_apdu_confirmed_segment(&w, t->invoke, t->service, c->o.max_apdu, (uint8_t)k, t->window,
                              k < t->n_segs - 1);
    bn_put(&w, t->req + off, len);
    if (w.overflow) return;
    c->st.segments_sent++;
    send_apdu(c, &t->dst, 1, apdu, w.len, NULL, NULL);
}

/* Sends the segments of the window after the last acknowledged one: those not sent yet, or all
 * of them again (resend). */
static void send_window(bn_client *c, txn *t, int resend) {
    int last = t->acked + t->window;
    if (last > t->n_segs - 1) last = t->n_segs - 1;
    int first = resend || t->sent <= t->acked ? t->acked + 1 : t->sent;
    for (int k = first; k <= last; k++) send_segment(c, t, k);
    if (last + 1 > t->sent) t->sent = last + 1;
    t->deadline = tbgw_mono_ms() + c->o.timeout_ms;
}

/* Starts (again) a segmented request: the first segment alone, its SegmentACK gives the window. */
static void start_segmented(bn_client *c, txn *t) {
    t->acked = -1;
    t->req_done = 0;
    send_segment(c, t, 0);
    t->sent = 1;
    t->deadline = tbgw_mono_ms() + c->o.timeout_ms;
}

int bn_client_request(bn_client *c, const bn_addr *dst, uint8_t service, const uint8_t *req, size_t n,
                      unsigned peer_max_apdu, int peer_takes_segments, bn_done_fn cb, void *ud) {
    if (peer_max_apdu < 50) peer_max_apdu = 50;
    if (peer_max_apdu > BN_MAX_APDU) peer_max_apdu = BN_MAX_APDU;
    bn_addr via = *dst;
    if (via.net && via.net != 0xFFFF && !via.ip) { /* through the router known for its network */
        bn_addr r;
        if (bn_client_router_to(c, via.net, &r) != 0) return -1;
        via.ip = r.ip;
        via.port = r.port;
    }
    dst = &via;
    int segmented = n + 4 > peer_max_apdu;
    if (segmented && (!peer_takes_segments || (n + peer_max_apdu - 7) / (peer_max_apdu - 6) > 255)) return -1;
    int id = -1;
    for (int k = 0; k < 256 && id < 0; k++) {
        uint8_t cand = (uint8_t)(c->next_invoke + k);
        if (!lookup(c, dst, cand)) id = cand;
    }
    if (id < 0) return -2; /* 256 requests pending to that peer */
    c->next_invoke = (uint8_t)(id + 1);
    if (c->n_act == c->cap_act) {
        size_t cap = c->cap_act ? c->cap_act * 2 : 64;
        txn **na = realloc(c->act, cap * sizeof *na);
        if (!na) return -1;
        c->act = na;
        c->cap_act = cap;
    }
    txn *t = calloc(1, sizeof *t);
    if (!t) return -1;
    t->invoke = (uint8_t)id;
    t->dst = *dst;
    t->service = service;
    t->cb = cb;
    t->ud = ud;
    t->seg_next = -1;
    if (segmented) {
        t->req = malloc(n);
        if (!t->req) return free(t), -1;
        memcpy(t->req, req, n);
        t->req_len = n;
        t->chunk = peer_max_apdu - 6;
        t->n_segs = (int)((n + t->chunk - 1) / t->chunk);
        t->window = c->window;
        if (route_busy(c, dst, tbgw_mono_ms())) {
            t->held = 1;
            t->acked = -1;
            t->deadline = tbgw_mono_ms() + c->o.timeout_ms;
        } else {
            start_segmented(c, t);
        }
    } else {
        uint8_t apdu[BN_MAX_APDU], frame[BN_MAX_FRAME];
        bn_w w;
        bn_w_init(&w, apdu, sizeof apdu);
        bn_apdu_confirmed(&w, (uint8_t)id, service, c->o.max_apdu);
        bn_put(&w, req, n);
        size_t flen = 0;
        /* a failed send is retried; a frame for a busy router waits */
        if (!w.overflow) t->held = send_apdu(c, dst, 1, apdu, w.len, frame, &flen) == 1;
        if (!flen) {
            free(t);
            return -1;
        }
        t->frame = malloc(flen);
        if (!t->frame) return free(t), -1;
        memcpy(t->frame, frame, flen);
        t->frame_len = flen;
        t->deadline = tbgw_mono_ms() + c->o.timeout_ms;
    }
    t->started = tbgw_mono_ms();
    size_t b = bucket_of(dst, t->invoke);
    t->next_in_bucket = c->bucket[b];
    c->bucket[b] = t;
    t->idx = c->n_act;
    c->act[c->n_act++] = t;
    return 0;
}

size_t bn_client_pending(const bn_client *c, const bn_addr *dst) {
    size_t n = 0;
    for (size_t i = 0; i < c->n_act; i++)
        if (!dst || bn_addr_equal(&c->act[i]->dst, dst)) n++;
    return n;
}

void bn_client_cancel(bn_client *c, void *ud) {
    for (size_t i = c->n_act; i-- > 0;)
        if (i < c->n_act && c->act[i]->ud == ud) {
            bn_result r = {.status = BN_E_CANCELLED};
            finish(c, c->act[i], &r);
        }
}

static void bad(bn_client *c, const bn_addr *src, const char *what) {
    c->st.malformed++;
    if (c->h.malformed) c->h.malformed(c->h.ud, src, what);
}

static void seg_ack(bn_client *c, txn *t, uint8_t seq, int nak) {
    uint8_t a[4];
    bn_w w;
    bn_w_init(&w, a, sizeof a);
    bn_apdu_segment_ack(&w, t->invoke, seq, 1, nak);
    send_apdu(c, &t->dst, 0, a, w.len, NULL, NULL);
}

static void on_complex_ack(bn_client *c, const bn_addr *src, txn *t, const bn_apdu *a) {
    bn_result r = {.status = BN_OK};
    if (!a->segmented) {
        r.data = a->data;
        r.len = a->len;
        finish(c, t, &r);
        return;
    }
    c->st.segments++;
    if (a->seq == 0 && t->seg_next < 0) t->seg_next = 0;
    if (t->seg_next < 0 || a->seq != (uint8_t)t->seg_next) {
        if (t->seg_next > 0) seg_ack(c, t, (uint8_t)(t->seg_next - 1), 1);
        return;
    }
    if (t->seg_len + a->len > MAX_SEGMENTED) {
        bad(c, src, "segmented answer too long");
        r.status = BN_E_DECODE;
        finish(c, t, &r);
        return;
    }
    uint8_t *nb = realloc(t->seg, t->seg_len + a->len + 1);
    if (!nb) {
        r.status = BN_E_DECODE;
        finish(c, t, &r);
        return;
    }
    t->seg = nb;
    memcpy(t->seg + t->seg_len, a->data, a->len);
    t->seg_len += a->len;
    t->seg_next++;
    seg_ack(c, t, a->seq, 0);
    t->deadline = tbgw_mono_ms() + c->o.timeout_ms;
    if (a->more_follows) return;
    r.data = t->seg;
    r.len = t->seg_len;
    finish(c, t, &r);
}

static void on_answer(bn_client *c, const bn_addr *src, const bn_apdu *a) {
    txn *t = lookup(c, src, a->invoke_id);
    if (!t) return; /* late or foreign answer */
    bn_result r = {.status = BN_OK};
    switch (a->type) {
    case BN_PDU_SIMPLE_ACK:
        finish(c, t, &r);
        return;
    case BN_PDU_COMPLEX_ACK:
        if (a->service != t->service) {
            bad(c, src, "answer for another service");
            return;
        }
        on_complex_ack(c, src, t, a);
        return;
    case BN_PDU_ERROR:
        r.status = BN_E_ERROR;
        if (bn_error_decode(a->data, a->len, &r.eclass, &r.ecode) != 0) {
            bad(c, src, "malformed Error PDU");
            r.status = BN_E_DECODE;
        }
        finish(c, t, &r);
        return;
    case BN_PDU_REJECT:
        r.status = BN_E_REJECT;
        r.reason = a->reason;
        finish(c, t, &r);
        return;
    case BN_PDU_ABORT:
        r.status = BN_E_ABORT;
        r.reason = a->reason;
        finish(c, t, &r);
        return;
    default:
        return;
    }
}

/* SegmentACK of a segmented request of ours: slides the window, or resends after a NAK. */
static void on_segment_ack(bn_client *c, const bn_addr *src, const bn_apdu *a) {
    txn *t = lookup(c, src, a->invoke_id);
    if (!t || !t->req || t->req_done || !a->server) return; /* late, foreign, or not for a request */
    int seq = a->seq;
    if (seq < t->acked || seq >= t->sent || (seq == t->acked && !a->nak)) {
        if (!a->nak) return; /* duplicate or out of the window */
        seq = t->acked;
    }
    t->acked = seq;
    t->tries = 0;
    if (a->window >= 1 && a->window <= 127) t->window = a->window;
    if (t->acked == t->n_segs - 1) { /* all there: the answer comes next */
        t->req_done = 1;
        t->deadline = tbgw_mono_ms() + c->o.timeout_ms;
        return;
    }
    send_window(c, t, a->nak); /* after a NAK: the segments from the one missing */
}

/* Answers a whole confirmed request to us (the owner writes the reply APDU). */
static void serve_request(bn_client *c, const bn_addr *src, const bn_apdu *a) {
    uint8_t out[BN_MAX_APDU];
    unsigned fits = bn_max_apdu_decode(a->max_apdu_code); /* what the requester takes */
    bn_w w;
    bn_w_init(&w, out, fits < sizeof out ? fits : sizeof out);
    if (c->h.confirmed) c->h.confirmed(c->h.ud, src, a, &w);
    if (w.overflow || w.len == 0) {
        bn_w_init(&w, out, sizeof out);
        bn_apdu_reject(&w, a->invoke_id, 9);
    }
    send_apdu(c, src, 0, out, w.len, NULL, NULL);
}

/* SegmentACK or Abort of the server side of a segmented request. */
static void rx_reply(bn_client *c, const bn_addr *src, uint8_t invoke, uint8_t seq, int nak,
                     int abort_reason) {
    uint8_t o[4];
    size_t n = 4;
    if (abort_reason >= 0) {
        o[0] = 0x71; /* Abort, from the server */
        o[1] = invoke;
        o[2] = (uint8_t)abort_reason;
        n = 3;
    } else {
        o[0] = (uint8_t)(0x41 | (nak ? 0x02 : 0)); /* SegmentACK, from the server */
        o[1] = invoke;
        o[2] = seq;
        o[3] = 1; /* actual window size */
    }
    send_apdu(c, src, 0, o, n, NULL, NULL);
}

/* A segment of a request to us (clause 5.4.5): each in-order segment acknowledged (window 1), an
 * out-of-order one answered with a negative SegmentACK for the last one received; the last one
 * completes the request. */
static void on_request_segment(bn_client *c, const bn_addr *src, const bn_apdu *a) {
    rxseg *r = NULL, *free_slot = NULL;
    for (int i = 0; i < MAX_RX_SEG && !r; i++) {
        if (c->rx[i].next && c->rx[i].first.invoke_id == a->invoke_id && bn_addr_equal(&c->rx[i].src, src))
            r = &c->rx[i];
        else if (!c->rx[i].next && !free_slot)
            free_slot = &c->rx[i];
    }
    if (!r) {
        if (a->seq != 0) return; /* a segment of something already over */
        if (!free_slot) {
            rx_reply(c, src, a->invoke_id, 0, 0, 9); /* out-of-resources */
            return;
        }
        r = free_slot;
        r->src = *src;
        r->first = *a;
        r->len = 0;
    } else if (a->seq != (uint8_t)r->next) {
        if (a->seq == 0 && r->next == 1) { /* the first segment again: our ACK was lost */
            rx_reply(c, src, a->invoke_id, 0, 0, -1);
            return;
        }
        rx_reply(c, src, a->invoke_id, (uint8_t)(r->next - 1), 1, -1);
        return;
    }
    if (r->len + a->len > BN_MAX_REQUEST) {
        rx_reply(c, src, a->invoke_id, 0, 0, 1); /* buffer-overflow */
        r->next = 0;
        return;
    }
    uint8_t *nb = realloc(r->buf, r->len + a->len + 1);
    if (!nb) {
        rx_reply(c, src, a->invoke_id, 0, 0, 9);
        r->next = 0;
        return;
    }
    r->buf = nb;
    memcpy(r->buf + r->len, a->data, a->len);
    r->len += a->len;
    rx_reply(c, src, a->invoke_id, a->seq, 0, -1);
    r->next = a->seq + 1;
    r->deadline = tbgw_mono_ms() + (int64_t)c->o.timeout_ms * 4;
    if (a->more_follows) {
        if (r->next > 255) { /* more than 256 segments cannot be numbered */
            rx_reply(c, src, a->invoke_id, 0, 0, 1);
            r->next = 0;
        }
        return;
    }
    c->st.segments_received++;
    bn_apdu whole = r->first;
    whole.segmented = whole.more_follows = 0;
    whole.data = r->buf;
    whole.len = r->len;
    r->next = 0; /* the slot is free again; the buffer stays for the next one */
    serve_request(c, src, &whole);
}

static void on_request(bn_client *c, const bn_addr *src, const bn_apdu *a) {
    if (a->segmented)
        on_request_segment(c, src, a);
    else
        serve_request(c, src, a);
}

/* Tells the owner about a router's network message: "router <addr> <text>". */
static void note(bn_client *c, const bn_addr *router, const char *what, uint16_t net, const char *why) {
    if (!c->h.network_note) return;
    char text[192], rt[48];
    bn_addr_format(router, rt, sizeof rt);
    snprintf(text, sizeof text, "router %s %s network %u%s%s", rt, what, net, why[0] ? ": " : "", why);
    c->h.network_note(c->h.ud, router, text);
}

/* Router-Busy / Router-Available-To-Network: nets (none = every network through that router). */
static void set_busy(bn_client *c, const bn_addr *router, const uint16_t *nets, int k, int busy) {
    int64_t now = tbgw_mono_ms();
    for (size_t i = 0; i < c->n_routes; i++) {
        route *r = &c->routes[i];
        int listed = k == 0;
        for (int j = 0; j < k && !listed; j++) listed = nets[j] == r->net;
        if (!listed || r->ip != router->ip || r->port != router->port) continue;
        r->heard = now;
        r->busy_until = busy ? now + BN_ROUTER_BUSY_MS : 0;
        note(c, router, busy ? "is busy for" : "takes messages again for", r->net,
             busy ? "requests to it wait (30 s at most, or until it is available)" : "");
        if (busy) continue;
        for (size_t t = 0; t < c->n_act; t++) /* what waited goes now */
            if (c->act[t]->held && route_of(c, &c->act[t]->dst) == r) c->act[t]->deadline = now;
    }
}

/* Ends every request to net through router with the router's reject reason. */
static void fail_network(bn_client *c, const bn_addr *router, uint16_t net, uint8_t reason) {
    for (size_t i = c->n_act; i-- > 0;) {
        if (i >= c->n_act) continue;
        txn *t = c->act[i];
        if (t->dst.net != net || t->dst.ip != router->ip || t->dst.port != router->port) continue;
        bn_result r = {.status = BN_E_NETWORK, .reason = reason};
        finish(c, t, &r);
    }
}

/* Network-layer messages (clause 6.4): we route nothing. I-Am-Router-To-Network fills the router
 * cache; Router-Busy holds the requests through that router, Router-Available lets them go;
 * Reject-Message-To-Network ends the requests to that network (and forgets its route when the
 * router cannot reach it). Other messages are skipped. */
static void on_network_message(bn_client *c, const bn_addr *src, const bn_npdu *np) {
    uint16_t nets[64];
    int k;
    switch (np->msgtype) {
    case BN_NL_I_AM_ROUTER:
    case BN_NL_ROUTER_BUSY:
    case BN_NL_ROUTER_AVAILABLE:
        k = bn_npdu_i_am_router_decode(np->apdu, np->apdu_len, nets, 64);
        if (k < 0) {
            bad(c, src, "malformed network-layer message (odd network list)");
            return;
        }
        if (np->msgtype == BN_NL_I_AM_ROUTER)
            for (int i = 0; i < k; i++) learn_route(c, nets[i], src);
        else
            set_busy(c, src, nets, k, np->msgtype == BN_NL_ROUTER_BUSY);
        return;
    case BN_NL_REJECT: {
        uint8_t reason;
        uint16_t net;
        if (bn_npdu_reject_decode(np->apdu, np->apdu_len, &reason, &net) != 0) {
            bad(c, src, "malformed Reject-Message-To-Network");
            return;
        }
        if (reason == 2) { /* router-busy */
            set_busy(c, src, &net, 1, 1);
            return;
        }
        note(c, src, "rejected a message to", net, bn_network_reject_name(reason));
        fail_network(c, src, net, reason);
        route *r = find_route(c, net);
        if (r && r->ip == src->ip && r->port == src->port && (reason == 1 || reason == 6)) {
            char why[96];
            snprintf(why, sizeof why, "rejected a message to it: %s", bn_network_reject_name(reason));
            forget_route(c, r, why);
        }
        return;
    }
    default:
        return;
    }
}

void bn_client_input(bn_client *c, const bn_addr *from, const uint8_t *p, size_t n) {
    c->st.rx_frames++;
    bn_bvll b;
    if (bn_bvll_decode(p, n, &b) != 0) {
        bad(c, from, "not a BACnet/IP frame");
        return;
    }
    bn_addr src = *from;
    if (b.func == BN_BVLC_FORWARDED) {
        src.ip = b.orig_ip;
        src.port = b.orig_port;
    }
    if (!b.npdu) return; /* BVLC-Result and other BBMD messages */
    bn_npdu np;
    if (bn_npdu_decode(b.npdu, b.npdu_len, &np) != 0) {
        bad(c, &src, "malformed NPDU");
        return;
    }
    if (np.netmsg) {
        if (!np.dnet || np.dnet == 0xFFFF) on_network_message(c, &src, &np);
        return;
    }
    if (np.dnet && np.dnet != 0xFFFF) return; /* for another network */
    if (np.snet) {
        learn_route(c, np.snet, &src); /* the frame came through the router for its source network */
        src.net = np.snet;
        src.mac_len = np.slen;
        memcpy(src.mac, np.sadr, np.slen);
    }
    bn_apdu a;
    if (bn_apdu_decode(np.apdu, np.apdu_len, &a) != 0) {
        bad(c, &src, "malformed APDU");
        return;
    }
    switch (a.type) {
    case BN_PDU_UNCONFIRMED:
        if (c->h.unconfirmed) c->h.unconfirmed(c->h.ud, &src, a.service, a.data, a.len);
        return;
    case BN_PDU_CONFIRMED:
        on_request(c, &src, &a);
        return;
    case BN_PDU_SEGMENT_ACK:
        on_segment_ack(c, &src, &a);
        return;
    default:
        on_answer(c, &src, &a);
        return;
    }
}

static void run_timers(bn_client *c) {
    int64_t now = tbgw_mono_ms();
    for (size_t i = c->n_act; i-- > 0;) {
        if (i >= c->n_act) continue; /* a callback finished others */
        txn *t = c->act[i];
        if (now < t->deadline) continue;
        if (route_busy(c, &t->dst, now)) { /* held while its router is busy: no retry counted */
            route *r = route_of(c, &t->dst);
            t->deadline = r->busy_until;
            if (!t->req_done && t->seg_next < 0) t->held = 1;
            continue;
        }
        if (t->held) { /* the router is available again: sent now, as a first attempt */
            t->held = 0;
            t->started = now;
            if (t->req) {
                start_segmented(c, t);
            } else {
                send_to(c, t->dst.ip, t->dst.port, t->frame, t->frame_len);
                t->deadline = now + c->o.timeout_ms;
            }
            continue;
        }
        if (t->tries < c->o.retries && t->seg_next < 0) {
            t->tries++;
            c->st.retries++;
            if (!t->req) {
                send_to(c, t->dst.ip, t->dst.port, t->frame, t->frame_len);
                t->deadline = now + c->o.timeout_ms;
            } else if (t->req_done || t->acked < 0) {
                start_segmented(c, t); /* no answer, or no first SegmentACK: the request again */
            } else {
                send_window(c, t, 1); /* the unacknowledged part of the window again */
            }
            continue;
        }
        c->st.timeouts++;
        route *rt = route_of(c, &t->dst);
        if (rt && rt->heard < t->started) /* nothing came through that router since: it is gone */
            forget_route(c, rt, "no longer answers");
        bn_result r = {.status = BN_E_TIMEOUT};
        finish(c, t, &r);
    }
    for (int i = 0; i < MAX_RX_SEG; i++) /* a segmented request whose next segment never came */
        if (c->rx[i].next && now >= c->rx[i].deadline) c->rx[i].next = 0;
    if (c->o.bbmd_ip && now >= c->fd_renew_at) register_fd(c);
}

int bn_client_poll(bn_client *c, int timeout_ms) {
    return bn_client_poll_with(c, timeout_ms, -1, NULL);
}

int bn_client_poll_with(bn_client *c, int timeout_ms, int extra_fd, int *extra_ready) {
    struct pollfd pfd[2] = {{.fd = c->fd, .events = POLLIN}, {.fd = extra_fd, .events = POLLIN}};
    int64_t next = -1, now = tbgw_mono_ms();
    for (size_t i = 0; i < c->n_act; i++)
        if (next < 0 || c->act[i]->deadline < next) next = c->act[i]->deadline;
    if (next >= 0 && next - now < timeout_ms) timeout_ms = next > now ? (int)(next - now) : 0;
    int r = poll(pfd, extra_fd >= 0 ? 2 : 1, timeout_ms);
    if (extra_ready) *extra_ready = r > 0 && extra_fd >= 0 && (pfd[1].revents & (POLLIN | POLLERR | POLLHUP));
    if (r > 0 && (pfd[0].revents & POLLIN)) {
        for (int k = 0; k < 1024; k++) {
            uint8_t buf[BN_MAX_FRAME + 64];
            struct sockaddr_in sa;
            socklen_t sl = sizeof sa;
            ssize_t n = recvfrom(c->fd, buf, sizeof buf, 0, (struct sockaddr *)&sa, &sl);
            if (n < 0) break;
            bn_addr from = {.ip = ntohl(sa.sin_addr.s_addr), .port = ntohs(sa.sin_port)};
            bn_client_input(c, &from, buf, (size_t)n);
        }
    }
    run_timers(c);
    return r < 0 && errno != EINTR ? -1 : 0;
}
