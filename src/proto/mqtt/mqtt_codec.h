/* MQTT 3.1, 3.1.1 and 5 packet codec: framing of a byte stream, decoding of the packets a client
 * receives (CONNACK, PUBLISH, PUBACK..PUBCOMP, SUBACK, UNSUBACK, PINGRESP, DISCONNECT, AUTH) and
 * encoding of the packets it sends. Decoding never allocates: topic, payload and property values
 * are pointers into the caller's buffer. Every decoder checks every length against the packet and
 * returns a negative code with a short reason on malformed input. */
#ifndef TBGW_PROTO_MQTT_CODEC_H
#define TBGW_PROTO_MQTT_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include "util/buf.h"

enum {
    MQTT_CONNECT = 1,
    MQTT_CONNACK,
    MQTT_PUBLISH,
    MQTT_PUBACK,
    MQTT_PUBREC,
    MQTT_PUBREL,
    MQTT_PUBCOMP,
    MQTT_SUBSCRIBE,
    MQTT_SUBACK,
    MQTT_UNSUBSCRIBE,
    MQTT_UNSUBACK,
    MQTT_PINGREQ,
    MQTT_PINGRESP,
    MQTT_DISCONNECT,
    MQTT_AUTH,
};

#define MQTT_V31  3
#define MQTT_V311 4
#define MQTT_V5   5

/* Largest remaining length the protocol can express (four length bytes). */
#define MQTT_MAX_REMAINING 268435455u

/* One framed packet: body points just after the fixed header. */
typedef struct mqtt_frame {
    uint8_t type, flags;
    const uint8_t *body;
    size_t len;   /* remaining length */
    size_t total; /* fixed header + body */
} mqtt_frame;

/* Frames the next packet at buf[0..n). Returns 1 with *f when it is complete, 0 when more bytes are
 * needed (*need: the whole packet's size once the header is complete, else 0), or -1 with *why on a
 * malformed fixed header (a remaining length longer than four bytes, or packet type 0). */
int mqtt_frame_next(const uint8_t *buf, size_t n, mqtt_frame *f, size_t *need, const char **why);

/* Properties of a v5 packet (the ones a client acts on; the rest are checked and skipped). */
typedef struct mqtt_props {
    const char *reason; /* Reason String (not NUL-terminated) */
    size_t reason_len;
    uint32_t session_expiry;
    int has_session_expiry;
    int server_keepalive; /* -1 when absent */
    int receive_max;      /* 0 when absent */
    int max_qos;          /* -1 when absent */
    int topic_alias_max;
    uint32_t max_packet; /* 0 when absent */
    const char *assigned_id;
    size_t assigned_id_len;
} mqtt_props;

/* Checks and reads a property section of len bytes (without its length prefix). */
int mqtt_props_parse(const uint8_t *p, size_t len, mqtt_props *out, const char **why);

typedef struct mqtt_connack {
    int session_present;
    int code; /* v3 return code or v5 reason code */
    mqtt_props props;
} mqtt_connack;

typedef struct mqtt_publish {
    const uint8_t *topic; /* not NUL-terminated */
    size_t topic_len;
    const uint8_t *payload;
    size_t payload_len;
    int qos, retain, dup;
    uint16_t mid; /* 0 for QoS 0 */
} mqtt_publish;

/* PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK (ids and v5 reason codes) and DISCONNECT / AUTH. */
typedef struct mqtt_ack {
    uint16_t mid;
    int code; /* v5 reason code, 0 when absent */
    mqtt_props props;
} mqtt_ack;

typedef struct mqtt_suback {
    uint16_t mid;
    const uint8_t *codes; /* one granted QoS / reason code per topic filter */
    size_t n;
} mqtt_suback;

int mqtt_parse_connack(const mqtt_frame *f, int version, mqtt_connack *out, const char **why);
int mqtt_parse_publish(const mqtt_frame *f, int version, mqtt_publish *out, const char **why);
int mqtt_parse_ack(const mqtt_frame *f, int version, mqtt_ack *out, const char **why);
int mqtt_parse_suback(const mqtt_frame *f, int version, mqtt_suback *out, const char **why);

/* Text of a refusing CONNACK code (v3 return codes 1..5, v5 reason codes; "refused" for others) and
 * of a v5 reason code (DISCONNECT, SUBACK, ...). */
const char *mqtt_connack_text(int version, int code);
const char *mqtt_reason_text(int code);

/* ---- encoders: each appends one packet to out; 0, or TBGW_ENOMEM / TBGW_EINVAL (too long). */
typedef struct mqtt_connect_opts {
    int version;
    const char *client_id;
    const char *username, *password;
    int keepalive;
    int clean;
    uint32_t session_expiry; /* v5 */
    int receive_max;         /* v5, 0 = not sent */
} mqtt_connect_opts;

int mqtt_enc_connect(tbgw_buf *out, const mqtt_connect_opts *o);
/* PUBLISH (a resend sets the DUP flag, bit 3 of the packet's first byte, in place). */
int mqtt_enc_publish(tbgw_buf *out, int version, const char *topic, const void *payload, size_t len, int qos,
                     int retain, int dup, uint16_t mid);
/* PUBACK / PUBREC / PUBREL / PUBCOMP (v5: reason code 0 is left out, as the spec allows). */
int mqtt_enc_ack(tbgw_buf *out, int type, uint16_t mid);
int mqtt_enc_subscribe(tbgw_buf *out, int version, uint16_t mid, const char *filter, int qos);
int mqtt_enc_unsubscribe(tbgw_buf *out, int version, uint16_t mid, const char *filter);
int mqtt_enc_pingreq(tbgw_buf *out);
int mqtt_enc_disconnect(tbgw_buf *out, int version);

#endif
