/* KNXnet/IP frames (header, HPAI, core/tunnelling/routing services) and cEMI L_Data messages with
 * group and individual addresses and the group APCI (GroupValueRead/Response/Write). Pure functions,
 * no I/O: encoders write into a caller buffer and return the length (or <0), decoders validate every
 * length field and return TBGW_EPROTO for anything malformed. */
#ifndef TBGW_PROTO_KNX_FRAME_H
#define TBGW_PROTO_KNX_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define KNX_HDR_LEN       6
#define KNX_PROTO_VERSION 0x10
#define KNX_MAX_FRAME     256
#define KNX_MAX_APDU_DATA 14 /* longest group value we send or accept (DPT 16: 14 octets) */
#define KNX_DEFAULT_PORT  3671
#define KNX_DEFAULT_MCAST "224.0.23.12"

/* Service type identifiers. */
enum {
    KNX_SEARCH_REQ = 0x0201,
    KNX_SEARCH_RES = 0x0202,
    KNX_DESCRIPTION_REQ = 0x0203,
    KNX_DESCRIPTION_RES = 0x0204,
    KNX_CONNECT_REQ = 0x0205,
    KNX_CONNECT_RES = 0x0206,
    KNX_CONNSTATE_REQ = 0x0207,
    KNX_CONNSTATE_RES = 0x0208,
    KNX_DISCONNECT_REQ = 0x0209,
    KNX_DISCONNECT_RES = 0x020A,
    KNX_TUNNEL_REQ = 0x0420,
    KNX_TUNNEL_ACK = 0x0421,
    KNX_ROUTING_IND = 0x0530,
    KNX_ROUTING_LOST = 0x0531,
    KNX_ROUTING_BUSY = 0x0532,
};

/* Host protocol codes of an HPAI. */
enum { KNX_HPAI_UDP = 0x01, KNX_HPAI_TCP = 0x02 };

/* cEMI message codes. */
enum { KNX_CEMI_LDATA_REQ = 0x11, KNX_CEMI_LDATA_CON = 0x2E, KNX_CEMI_LDATA_IND = 0x29 };

/* Group APCI. */
enum { KNX_APCI_READ = 0x000, KNX_APCI_RESPONSE = 0x040, KNX_APCI_WRITE = 0x080 };

/* Connect response / connection state status codes. */
enum {
    KNX_E_NO_ERROR = 0x00,
    KNX_E_CONNECTION_ID = 0x21,
    KNX_E_CONNECTION_TYPE = 0x22,
    KNX_E_CONNECTION_OPTION = 0x23,
    KNX_E_NO_MORE_CONNECTIONS = 0x24,
    KNX_E_DATA_CONNECTION = 0x26,
    KNX_E_KNX_CONNECTION = 0x27,
    KNX_E_TUNNELLING_LAYER = 0x29,
};
const char *knx_status_name(uint8_t status);
const char *knx_service_name(uint16_t service);

/* ---- addresses ---- */
typedef enum knx_ga_style { KNX_GA_LONG = 0, KNX_GA_SHORT, KNX_GA_FREE } knx_ga_style;

/* Parses "main/middle/sub" (5/3/8 bits), "main/sub" (5/11 bits) or a plain number 0..65535.
 * 0 or -1 when malformed or out of range. */
int knx_ga_parse(const char *s, uint16_t *out);
/* Writes the address in the given style ("1/0/6", "1/6", "2054"). */
void knx_ga_format(uint16_t ga, knx_ga_style style, char *out, size_t cap);
/* Individual addresses "area.line.device" (4/4/8 bits). */
int knx_ia_parse(const char *s, uint16_t *out);
void knx_ia_format(uint16_t ia, char *out, size_t cap);

/* ---- KNXnet/IP ---- */
typedef struct knx_hpai {
    uint8_t proto; /* KNX_HPAI_UDP / TCP */
    uint32_t ip;   /* host order; 0 = "route back" (NAT mode) */
    uint16_t port;
} knx_hpai;

typedef struct knx_header {
    uint16_t service;
    uint16_t total_len;
} knx_header;

/* Validates the 6-byte header against len (header length 6, version 0x10, total length <= len).
 * 0 or TBGW_EPROTO. */
int knx_header_parse(const uint8_t *p, size_t len, knx_header *out);

/* A decoded frame of any service we handle; body points into the input. */
typedef struct knx_frame {
    uint16_t service;
    uint8_t channel;     /* connect res, connstate, disconnect, tunnel req/ack */
    uint8_t status;      /* connect res, connstate res, disconnect res, tunnel ack */
    uint8_t seq;         /* tunnel req/ack */
    knx_hpai hpai;       /* search req (discovery), search res (control), connect res (data),
                            connstate/disconnect req (control), description req */
    uint16_t ia;         /* connect res: the individual address assigned to the tunnel */
    const uint8_t *cemi; /* tunnel req, routing indication */
    size_t cemi_len;
    uint16_t busy_wait_ms; /* routing busy */
    /* search / description response: device information DIB */
    char name[31];
    uint16_t dev_ia;
    uint8_t medium;
} knx_frame;

/* Decodes one datagram (the whole of it: total length must equal len). 0 or TBGW_EPROTO. Services
 * this file does not know give TBGW_ENOENT with out->service set. */
int knx_frame_parse(const uint8_t *p, size_t len, knx_frame *out);

/* KNXnet/IP over TCP: the length of the complete frame at the start of p (> 0), 0 when more octets
 * are needed, TBGW_EPROTO when the stream cannot hold a frame there (bad header or length). */
int knx_stream_frame_len(const uint8_t *p, size_t len);

/* Encoders; each returns the frame length or TBGW_EINVAL when cap is too small. */
int knx_enc_search_req(uint8_t *out, size_t cap, const knx_hpai *discovery);
int knx_enc_description_req(uint8_t *out, size_t cap, const knx_hpai *control);
/* Tunnel connection on the link layer. */
int knx_enc_connect_req(uint8_t *out, size_t cap, const knx_hpai *control, const knx_hpai *data);
int knx_enc_connstate_req(uint8_t *out, size_t cap, uint8_t channel, const knx_hpai *control);
int knx_enc_disconnect_req(uint8_t *out, size_t cap, uint8_t channel, const knx_hpai *control);
int knx_enc_disconnect_res(uint8_t *out, size_t cap, uint8_t channel, uint8_t status);
int knx_enc_tunnel_req(uint8_t *out, size_t cap, uint8_t channel, uint8_t seq, const uint8_t *cemi,
                       size_t cemi_len);
int knx_enc_tunnel_ack(uint8_t *out, size_t cap, uint8_t channel, uint8_t seq, uint8_t status);
int knx_enc_routing_ind(uint8_t *out, size_t cap, const uint8_t *cemi, size_t cemi_len);

/* ---- cEMI ---- */
/* A group value: up to 6 bits inside the APCI octet (small) or data octets after it. */
typedef struct knx_payload {
    uint8_t small; /* 1: value in the APCI octet */
    uint8_t len;   /* data octets when !small */
    uint8_t data[KNX_MAX_APDU_DATA];
} knx_payload;

typedef struct knx_ldata {
    uint8_t code; /* KNX_CEMI_LDATA_* */
    uint8_t ctrl1, ctrl2;
    uint16_t src, dst;
    uint8_t group;         /* destination is a group address */
    uint8_t confirm_error; /* L_Data.con: the frame was not sent */
    uint16_t apci;         /* KNX_APCI_* (other APCIs are reported as they are) */
    knx_payload value;     /* read: empty */
} knx_ldata;

/* Decodes an L_Data cEMI message (additional information skipped). Group telegrams with other
 * TPCI/APCI decode with apci set; longer payloads than KNX_MAX_APDU_DATA are TBGW_EPROTO. */
int knx_cemi_parse(const uint8_t *p, size_t len, knx_ldata *out);
/* Encodes an L_Data (req for tunnelling, ind for routing) group telegram from src to the group dst:
 * standard frame, low priority, hop count 6. */
int knx_cemi_encode_group(uint8_t *out, size_t cap, uint8_t code, uint16_t src, uint16_t dst, uint16_t apci,
                          const knx_payload *value);

#endif
