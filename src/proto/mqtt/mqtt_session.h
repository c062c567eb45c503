/* A non-blocking MQTT 3.1 / 3.1.1 / 5 client session over TCP or TLS (OpenSSL), driven by its
 * owner's poll loop: the owner polls mqtt_session_fd() for mqtt_session_events(), passes what became
 * ready to mqtt_session_io(), calls mqtt_session_tick() when mqtt_session_due() is reached and
 * mqtt_session_flush() at the end of each turn.
 *
 * Reads: one read() (or SSL_read) of up to 64 KB per wake-up into one buffer; packets are framed
 * from the buffer and topic / payload are handed to on_message as pointers into it (both
 * NUL-terminated in place, nothing is allocated per packet). A packet larger than the buffer grows
 * it up to cfg.max_packet; the buffer shrinks back once drained.
 * Writes: every packet is appended to one output buffer, so the acknowledgements of one read burst
 * and everything published meanwhile leave in one write() when the owner flushes (TCP_NODELAY is on:
 * each flush is one segment train, nothing waits for Nagle).
 * Outgoing QoS 1 / 2 messages keep their encoded packet until acknowledged; at most the window
 * (Receive Maximum of a v5 broker, else 20) are in flight, the rest queue. After a reconnect the
 * messages in flight are sent again with DUP set (or their PUBREL), as libmosquitto does.
 * Incoming QoS 2 is delivered on PUBLISH; its packet identifier is remembered until PUBREL so that
 * a resent PUBLISH is acknowledged without being delivered twice. */
#ifndef TBGW_PROTO_MQTT_SESSION_H
#define TBGW_PROTO_MQTT_SESSION_H

#include <netdb.h>
#include <stddef.h>
#include <stdint.h>
#include "proto/mqtt/mqtt_codec.h"
#include "util/buf.h"

typedef struct ssl_ctx_st mqtt_ssl_ctx;
typedef struct ssl_st mqtt_ssl;

typedef struct mqtt_session_cfg {
    const char *host;
    int port;
    const char *client_id;
    int version; /* MQTT_V31, MQTT_V311, MQTT_V5 */
    int keepalive;
    int clean;               /* clean session (v3) / clean start (v5) */
    uint32_t session_expiry; /* v5 */
    const char *username, *password;
    int tls, tls_insecure;                      /* insecure: no check of the broker's name */
    const char *ca_file, *cert_file, *key_file; /* no ca_file: the broker's certificate is not verified */
    int connect_timeout_ms;                     /* TCP + TLS + CONNACK; 0: 10 s */
    size_t max_packet;                          /* largest incoming packet in bytes; 0: 64 MB */
} mqtt_session_cfg;

typedef struct mqtt_session_cb {
    void *ud;
    /* code 0: connected (text NULL); otherwise the broker refused, text says why. */
    void (*on_connack)(void *ud, int code, const char *text);
    void (*on_message)(void *ud, const char *topic, const uint8_t *payload, size_t len, int qos, int retain);
    /* One call per filter of a SUBACK: code is the granted QoS, or a failure code (>= 0x80). */
    void (*on_suback)(void *ud, const char *filter, int code);
    /* The connection (or the attempt) ended; protocol_error: the broker sent a malformed packet. */
    void (*on_lost)(void *ud, const char *why, int protocol_error);
} mqtt_session_cb;

typedef enum { MQS_IDLE, MQS_TCP, MQS_TLS, MQS_CONNACK, MQS_UP } mqtt_session_state;

typedef struct mqs_out mqs_out;
typedef struct mqs_sub mqs_sub;

typedef struct mqtt_session {
    mqtt_session_cfg cfg;
    mqtt_session_cb cb;
    mqtt_ssl_ctx *ctx;
    mqtt_ssl *ssl;
    int fd;
    mqtt_session_state state;
    struct addrinfo *ai, *ai_next; /* addresses still to try for the current attempt */
    int tls_events;                /* POLLIN / POLLOUT the TLS layer waits for */
    int paused;                    /* the owner takes no messages now: packets stay in the buffer */
    uint8_t *rbuf;
    size_t rcap, rlen, rpos;
    tbgw_buf wbuf;
    size_t wpos;
    int64_t deadline;  /* monotonic ms: end of the connect attempt */
    int64_t last_out;  /* monotonic ms of the last write */
    int64_t ping_sent; /* monotonic ms of an unanswered PINGREQ, 0 none */
    int keepalive;     /* seconds, as granted by the broker */
    uint16_t next_mid;
    mqs_out *out, **out_tail;
    size_t n_out, n_inflight, window;
    uint16_t *qos2_in;
    size_t n_qos2, cap_qos2;
    mqs_sub *subs;
    uint64_t protocol_errors;
    char err[256];
} mqtt_session;

/* Prepares s (TLS context, buffers); strings in cfg must outlive s. 0 or TBGW_EINVAL with err. */
int mqtt_session_init(mqtt_session *s, const mqtt_session_cfg *cfg, const mqtt_session_cb *cb, char *err,
                      size_t errlen);
void mqtt_session_free(mqtt_session *s);

/* Starts a connection attempt (resolves, connects without blocking). 0, or <0 with s->err. */
int mqtt_session_start(mqtt_session *s, int64_t now);
/* Sends DISCONNECT (best effort) and closes; nothing is reported to on_lost. */
void mqtt_session_disconnect(mqtt_session *s);

int mqtt_session_fd(const mqtt_session *s);
int mqtt_session_up(const mqtt_session *s);
/* Poll events to watch (want_read 0: the owner does not take messages now). */
short mqtt_session_events(const mqtt_session *s, int want_read);
/* Handles readiness; returns the number of PUBLISH packets delivered. */
int mqtt_session_io(mqtt_session *s, short revents, int64_t now);
/* Delivers the packets already buffered (after a pause ended). Returns the number delivered. */
int mqtt_session_process(mqtt_session *s, int64_t now);
void mqtt_session_pause(mqtt_session *s, int on);
/* Writes what is buffered (one write while the socket takes it). */
void mqtt_session_flush(mqtt_session *s, int64_t now);
/* Monotonic ms at which mqtt_session_tick has work (keep-alive, connect timeout); INT64_MAX none. */
int64_t mqtt_session_due(const mqtt_session *s);
void mqtt_session_tick(mqtt_session *s, int64_t now);

/* Queues a PUBLISH. QoS 0 needs a connection (TBGW_EIO without); QoS 1/2 wait for one.
 * TBGW_EFULL when the queue or the output buffer is full, TBGW_EINVAL for a bad topic. */
int mqtt_session_publish(mqtt_session *s, const char *topic, const void *payload, size_t len, int qos,
                         int retain);
int mqtt_session_subscribe(mqtt_session *s, const char *filter, int qos);
int mqtt_session_unsubscribe(mqtt_session *s, const char *filter);

#endif
