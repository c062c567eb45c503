/* A KNXnet/IP client for one thread: tunnelling over UDP or TCP (CONNECT, CONNECTIONSTATE heartbeat,
 * TUNNELING_REQUEST/ACK with sequence counters and one repeat after the 1 s ACK timeout, L_Data.con
 * awaited before the next request, reconnect with capped full-jitter backoff) or routing (multicast
 * ROUTING_INDICATION, ROUTING_BUSY pauses), and gateway search (SEARCH_REQUEST on the multicast
 * group, responses logged; the first one is used when no gateway address is configured).
 *
 * Non-blocking: the owner polls knx_client_fd() for knx_client_events() and calls knx_client_step()
 * whenever it is ready or knx_client_next_ms() has passed. Callbacks run inside knx_client_step(). */
#ifndef TBGW_PROTO_KNX_CLIENT_H
#define TBGW_PROTO_KNX_CLIENT_H

#include <stdint.h>
#include <tbgw/log.h>

#include "proto/knx/knx_frame.h"

typedef enum knx_mode { KNX_MODE_TUNNEL = 0, KNX_MODE_ROUTING } knx_mode;

typedef struct knx_client_cfg {
    knx_mode mode;
    int tcp;        /* tunnelling over TCP (no TUNNELING_ACK; frames cut from the stream) */
    uint32_t gw_ip; /* host order; 0 = search for a gateway */
    uint16_t gw_port;
    uint32_t local_ip; /* 0 = any */
    uint16_t local_port;
    uint32_t mcast_ip; /* routing and search */
    uint16_t mcast_port;
    uint16_t individual;        /* source address of routed telegrams */
    int search;                 /* search (and log the gateways found) before the first connect */
    int describe;               /* DESCRIPTION_REQUEST once the tunnel is up: the gateway's name in the log */
    int64_t search_ms;          /* how long a search collects responses (default 3000) */
    int search_stop_on_found;   /* end the search at the first response */
    int64_t heartbeat_ms;       /* CONNECTIONSTATE_REQUEST period (default 60000) */
    int64_t ack_timeout_ms;     /* TUNNELING_ACK wait (default 1000) */
    int64_t confirm_timeout_ms; /* L_Data.con wait (default 3000) */
    int64_t connect_timeout_ms; /* CONNECT_RESPONSE / CONNECTIONSTATE_RESPONSE wait (default 10000) */
    int64_t reconnect_base_ms, reconnect_cap_ms;
    int64_t min_interval_ms; /* rate limit between telegrams (0 = none) */
    size_t queue_cap;        /* outgoing telegrams (default 1024) */
} knx_client_cfg;

typedef struct knx_client_cb {
    void *ud;
    /* A group telegram from the bus (L_Data.ind). */
    void (*on_telegram)(void *ud, const knx_ldata *ld);
    /* The outcome of one knx_client_send(): ok = confirmed by the gateway (routing: sent). */
    void (*on_sent)(void *ud, uint64_t tag, int ok, const char *why);
    /* Connection established (1) or lost (0, why says how). */
    void (*on_state)(void *ud, int up, const char *why);
} knx_client_cb;

typedef struct knx_client_stats {
    uint64_t frames_in, frames_bad, telegrams_in, telegrams_out, repeats, connects, losses, search_found;
} knx_client_stats;

typedef struct knx_client knx_client;

knx_client *knx_client_new(const knx_client_cfg *cfg, const knx_client_cb *cb, tbgw_logger *log);
void knx_client_free(knx_client *c);    /* disconnects politely; NULL is a no-op */
int knx_client_fd(const knx_client *c); /* -1 while there is no socket */
/* The poll() events to wait for on knx_client_fd(): POLLIN, plus POLLOUT while a TCP connect runs. */
short knx_client_events(const knx_client *c);
int knx_client_connected(const knx_client *c);
/* Reads every pending datagram and runs the timers. */
void knx_client_step(knx_client *c, int64_t now_ms);
/* Milliseconds until the next timer is due (>= 0). */
int64_t knx_client_next_ms(const knx_client *c, int64_t now_ms);
/* Queues a group telegram. TBGW_EAGAIN when not connected, TBGW_EFULL when the queue is full. */
int knx_client_send(knx_client *c, uint16_t ga, uint16_t apci, const knx_payload *value, uint64_t tag);
size_t knx_client_queued(const knx_client *c);
/* Drops the connection now (as if lost) and reconnects after the backoff. */
void knx_client_reset(knx_client *c, const char *why);
void knx_client_get_stats(const knx_client *c, knx_client_stats *out);
/* The individual address the tunnel was given (0 before that). */
uint16_t knx_client_address(const knx_client *c);

#endif
