/* BACnet/IP endpoint: one UDP socket, confirmed-request transactions (invoke ids, timeout, retries,
 * segmented responses reassembled and acknowledged), foreign-device registration with TTL renewal,
 * and dispatch of unconfirmed and confirmed requests addressed to us. Single-threaded: call
 * bn_client_poll() from the owner's loop. */
#ifndef TBGW_PROTO_BN_CLIENT_H
#define TBGW_PROTO_BN_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "proto/bacnet/bn.h"

/* A BACnet address: IP:port of the BACnet/IP hop, plus the remote network and station when the
 * device sits behind a router (net 0 = local). */
typedef struct bn_addr {
    uint32_t ip; /* host order */
    uint16_t port;
    uint16_t net;
    uint8_t mac_len;
    uint8_t mac[8];
} bn_addr;

/* "192.168.1.5", "192.168.1.5:47809" (port only when it is not 47808), "2001:10" for net:station. */
void bn_addr_format(const bn_addr *a, char *out, size_t cap);
int bn_addr_equal(const bn_addr *a, const bn_addr *b);

enum {
    BN_OK = 0,
    BN_E_TIMEOUT = -1,
    BN_E_ERROR = -2,  /* Error-PDU: eclass/ecode */
    BN_E_REJECT = -3, /* Reject-PDU: reason */
    BN_E_ABORT = -4,  /* Abort-PDU: reason */
    BN_E_DECODE = -5, /* malformed answer */
    BN_E_SEND = -6,
    BN_E_CANCELLED = -7,
    BN_E_NETWORK = -8, /* Reject-Message-To-Network from the router: reason */
};

/* The largest request the endpoint takes (sent in segments to a peer that accepts them). */
#define BN_MAX_REQUEST 16384

typedef struct bn_result {
    int status;
    uint8_t service;
    uint32_t eclass, ecode, reason;
    const uint8_t *data; /* service ACK payload (valid during the callback) */
    size_t len;
} bn_result;

/* A clear text for a failed result ("error: property/unknown-property", "rejected: unrecognized-service"). */
void bn_result_text(const bn_result *r, char *out, size_t cap);

typedef void (*bn_done_fn)(void *ud, const bn_result *r);

typedef struct bn_client bn_client;

typedef struct bn_handlers {
    void *ud;
    /* Unconfirmed request from src (I-Am, Who-Is, COV notification). */
    void (*unconfirmed)(void *ud, const bn_addr *src, uint8_t service, const uint8_t *p, size_t n);
    /* Confirmed request to us: write the whole reply APDU into w (an Error or Reject at least). */
    void (*confirmed)(void *ud, const bn_addr *src, const bn_apdu *req, bn_w *w);
    /* A frame that could not be decoded (counted by the owner). */
    void (*malformed)(void *ud, const bn_addr *src, const char *what);
    /* A route learned or changed: net is reached through router (an I-Am-Router-To-Network, or a
     * frame from router with that network as its source). */
    void (*route)(void *ud, uint16_t net, const bn_addr *router);
    /* A route forgotten: nothing came through the router for net while a request to that network
     * went unanswered through all its retries, or the router rejected a message to net as not
     * reachable. why is a clear text. */
    void (*route_lost)(void *ud, uint16_t net, const bn_addr *router, const char *why);
    /* Other network-layer news worth a log line (a router busy or available again, a rejected
     * message). */
    void (*network_note)(void *ud, const bn_addr *router, const char *text);
} bn_handlers;

typedef struct bn_client_opts {
    uint32_t bind_ip; /* host order, 0 = any */
    uint16_t port;
    uint32_t broadcast_ip; /* for local broadcasts */
    unsigned max_apdu;     /* what we accept */
    int timeout_ms;        /* per attempt, default 3000 */
    int retries;           /* default 3 */
    uint32_t bbmd_ip;      /* foreign-device mode when non-zero */
    uint16_t bbmd_port;
    uint16_t ttl;
} bn_client_opts;

/* Opens the socket. NULL on failure with errtext filled. */
bn_client *bn_client_open(const bn_client_opts *o, const bn_handlers *h, char *errtext, size_t cap);
void bn_client_close(bn_client *c);
int bn_client_fd(const bn_client *c);
uint16_t bn_client_port(const bn_client *c); /* the bound port */

/* Sends an unconfirmed request APDU to dst, or as a broadcast when dst is NULL (local broadcast to
 * the configured broadcast address and port 47808, or Distribute-Broadcast-To-Network in
 * foreign-device mode). global: NPDU DNET 0xFFFF. */
int bn_client_send_unconfirmed(bn_client *c, const bn_addr *dst, const uint8_t *apdu, size_t n, int global);
/* The same broadcast to another UDP port (devices on a non-standard port). */
int bn_client_broadcast(bn_client *c, uint16_t port, const uint8_t *apdu, size_t n, int global);

/* Starts a confirmed request: service and its encoded request. A request larger than peer_max_apdu
 * is sent in segments when peer_takes_segments (the peer's segmentation-supported is
 * segmented-both or segmented-receive): a window of segments at a time, each window acknowledged by
 * the peer's SegmentACK, resent on timeout or a negative ACK. cb runs exactly once (from
 * bn_client_poll or bn_client_close). Returns 0, or <0 when the request does not fit (too large
 * for an unsegmenting peer, more than 255 segments) or all 256 invoke ids to that peer are in use.
 * A dst behind a router (net != 0) with ip 0 is sent through the router known for its network. */
int bn_client_request(bn_client *c, const bn_addr *dst, uint8_t service, const uint8_t *req, size_t n,
                      unsigned peer_max_apdu, int peer_takes_segments, bn_done_fn cb, void *ud);
/* Proposed window size of segmented requests (default 4, 1..127). */
void bn_client_set_window(bn_client *c, unsigned window);

/* Router-Busy-To-Network (clause 6.6.3.6): requests to a network whose router said it is busy are
 * held (not sent, no retry counted) until its Router-Available-To-Network, at most 30 s. */
#define BN_ROUTER_BUSY_MS 30000

/* Routers (clause 6): Who-Is-Router-To-Network as a local broadcast on port (net 0 = any network),
 * or through the BBMD in foreign-device mode. */
int bn_client_who_is_router(bn_client *c, uint16_t port, uint16_t net);
/* The router known for net: its IP and port in *router (net 0). 0, or -1 when none is known. */
int bn_client_router_to(const bn_client *c, uint16_t net, bn_addr *router);
/* Number of outstanding transactions to dst (all when dst is NULL). */
size_t bn_client_pending(const bn_client *c, const bn_addr *dst);
/* Cancels pending transactions whose ud equals ud (callbacks run with BN_E_CANCELLED). */
void bn_client_cancel(bn_client *c, void *ud);

/* Waits up to timeout_ms for frames, handles them, runs timeouts and the foreign-device renewal. */
int bn_client_poll(bn_client *c, int timeout_ms);
/* The same, also waking when extra_fd (>= 0) is readable; *extra_ready tells whether it was. */
int bn_client_poll_with(bn_client *c, int timeout_ms, int extra_fd, int *extra_ready);

/* Handles one received datagram (exposed for tests and fuzzing). */
void bn_client_input(bn_client *c, const bn_addr *from, const uint8_t *p, size_t n);

typedef struct bn_client_stats {
    uint64_t rx_frames, tx_frames, malformed, timeouts, retries, segments, segments_sent;
    uint64_t segments_received; /* segmented requests to us reassembled */
} bn_client_stats;
void bn_client_get_stats(const bn_client *c, bn_client_stats *out);

#endif
