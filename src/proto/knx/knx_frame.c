/* KNXnet/IP and cEMI codecs (see knx_frame.h). */
#include "proto/knx/knx_frame.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tbgw/err.h>

static uint16_t rd16(const uint8_t *p) {
    return (uint16_t)((p[0] << 8) | p[1]);
}
static void wr16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

const char *knx_status_name(uint8_t status) {
    switch (status) {
    case KNX_E_NO_ERROR:
        return "E_NO_ERROR";
    case KNX_E_CONNECTION_ID:
        return "E_CONNECTION_ID";
    case KNX_E_CONNECTION_TYPE:
        return "E_CONNECTION_TYPE";
    case KNX_E_CONNECTION_OPTION:
        return "E_CONNECTION_OPTION";
    case KNX_E_NO_MORE_CONNECTIONS:
        return "E_NO_MORE_CONNECTIONS";
    case KNX_E_DATA_CONNECTION:
        return "E_DATA_CONNECTION";
    case KNX_E_KNX_CONNECTION:
        return "E_KNX_CONNECTION";
    case KNX_E_TUNNELLING_LAYER:
        return "E_TUNNELLING_LAYER";
    default:
        return "unknown status";
    }
}

const char *knx_service_name(uint16_t service) {
    switch (service) {
    case KNX_SEARCH_REQ:
        return "SEARCH_REQUEST";
    case KNX_SEARCH_RES:
        return "SEARCH_RESPONSE";
    case KNX_DESCRIPTION_REQ:
        return "DESCRIPTION_REQUEST";
    case KNX_DESCRIPTION_RES:
        return "DESCRIPTION_RESPONSE";
    case KNX_CONNECT_REQ:
        return "CONNECT_REQUEST";
    case KNX_CONNECT_RES:
        return "CONNECT_RESPONSE";
    case KNX_CONNSTATE_REQ:
        return "CONNECTIONSTATE_REQUEST";
    case KNX_CONNSTATE_RES:
        return "CONNECTIONSTATE_RESPONSE";
    case KNX_DISCONNECT_REQ:
        return "DISCONNECT_REQUEST";
    case KNX_DISCONNECT_RES:
        return "DISCONNECT_RESPONSE";
    case KNX_TUNNEL_REQ:
        return "TUNNELING_REQUEST";
    case KNX_TUNNEL_ACK:
        return "TUNNELING_ACK";
    case KNX_ROUTING_IND:
        return "ROUTING_INDICATION";
    case KNX_ROUTING_LOST:
        return "ROUTING_LOST_MESSAGE";
    case KNX_ROUTING_BUSY:
        return "ROUTING_BUSY";
    default:
        return "unknown service";
    }
}

/* ---- addresses ---- */

/* Parses up to 3 unsigned parts separated by sep. Returns the number of parts, or -1. */
static int split_parts(const char *s, char sep, unsigned long parts[3]) {
    int n = 0;
    const char *p = s;
    if (!s || !*s) return -1;
    for (;;) {
        if (*p < '0' || *p > '9') return -1;
        char *end;
        unsigned long v = strtoul(p, &end, 10);
        if (end - p > 5) return -1;
        if (n == 3) return -1;
        parts[n++] = v;
        if (*end == '\0') return n;
        if (*end != sep) return -1;
        p = end + 1;
    }
}

int knx_ga_parse(const char *s, uint16_t *out) {
    unsigned long v[3];
    int n = split_parts(s, '/', v);
    if (n == 3) {
        if (v[0] > 31 || v[1] > 7 || v[2] > 255) return -1;
        *out = (uint16_t)(v[0] << 11 | v[1] << 8 | v[2]);
        return 0;
    }
    if (n == 2) {
        if (v[0] > 31 || v[1] > 2047) return -1;
        *out = (uint16_t)(v[0] << 11 | v[1]);
        return 0;
    }
    if (n == 1) {
        if (v[0] > 65535) return -1;
        *out = (uint16_t)v[0];
        return 0;
    }
    return -1;
}

void knx_ga_format(uint16_t ga, knx_ga_style style, char *out, size_t cap) {
    if (style == KNX_GA_FREE)
        snprintf(out, cap, "%u", (unsigned)ga);
    else if (style == KNX_GA_SHORT)
        snprintf(out, cap, "%u/%u", (unsigned)(ga >> 11), (unsigned)(ga & 0x7FF));
    else
        snprintf(out, cap, "%u/%u/%u", (unsigned)(ga >> 11), (unsigned)((ga >> 8) & 7),
                 (unsigned)(ga & 0xFF));
}

int knx_ia_parse(const char *s, uint16_t *out) {
    unsigned long v[3];
    if (split_parts(s, '.', v) != 3 || v[0] > 15 || v[1] > 15 || v[2] > 255) return -1;
    *out = (uint16_t)(v[0] << 12 | v[1] << 8 | v[2]);
    return 0;
}

void knx_ia_format(uint16_t ia, char *out, size_t cap) {
    snprintf(out, cap, "%u.%u.%u", (unsigned)(ia >> 12), (unsigned)((ia >> 8) & 15), (unsigned)(ia & 0xFF));
}

/* ---- KNXnet/IP ---- */

int knx_header_parse(const uint8_t *p, size_t len, knx_header *out) {
    if (len < KNX_HDR_LEN || p[0] != KNX_HDR_LEN || p[1] != KNX_PROTO_VERSION) return TBGW_EPROTO;
    out->service = rd16(p + 2);
    out->total_len = rd16(p + 4);
    if (out->total_len < KNX_HDR_LEN || out->total_len > len) return TBGW_EPROTO;
    return 0;
}

int knx_stream_frame_len(const uint8_t *p, size_t len) {
    if (len < KNX_HDR_LEN) return 0;
    size_t total = (size_t)(p[4] << 8 | p[5]);
    if (p[0] != KNX_HDR_LEN || p[1] != KNX_PROTO_VERSION || total < KNX_HDR_LEN || total > KNX_MAX_FRAME)
        return TBGW_EPROTO;
    return len < total ? 0 : (int)total;
}

static int parse_hpai(const uint8_t *p, size_t len, knx_hpai *h) {
    if (len < 8 || p[0] != 8) return TBGW_EPROTO;
    h->proto = p[1];
    h->ip = (uint32_t)p[2] << 24 | (uint32_t)p[3] << 16 | (uint32_t)p[4] << 8 | p[5];
    h->port = rd16(p + 6);
    return 0;
}

static void put_hpai(uint8_t *p, const knx_hpai *h) {
    p[0] = 8;
    p[1] = h->proto ? h->proto : KNX_HPAI_UDP;
    p[2] = (uint8_t)(h->ip >> 24);
    p[3] = (uint8_t)(h->ip >> 16);
    p[4] = (uint8_t)(h->ip >> 8);
    p[5] = (uint8_t)h->ip;
    wr16(p + 6, h->port);
}

/* Device information DIB (type 1, 54 octets) inside search/description responses. */
static int parse_dibs(const uint8_t *p, size_t len, knx_frame *f) {
    while (len >= 2) {
        size_t dl = p[0];
        if (dl < 2 || dl > len) return TBGW_EPROTO;
        if (p[1] == 0x01 && dl >= 54) {
            f->medium = p[2];
            f->dev_ia = rd16(p + 4);
            memcpy(f->name, p + 24, 30);
            f->name[30] = '\0';
            for (size_t i = 0; i < 30 && f->name[i]; i++)
                if ((unsigned char)f->name[i] < 0x20) f->name[i] = '?';
        }
        p += dl;
        len -= dl;
    }
    return 0;
}

/* Connection header of tunnelling frames: length 4, channel, sequence, status/reserved. */
static int parse_conn_header(const uint8_t *b, size_t n, knx_frame *out) {
    if (n < 4 || b[0] != 4) return TBGW_EPROTO;
    out->channel = b[1];
    out->seq = b[2];
    out->status = b[3];
    return 0;
}

int knx_frame_parse(const uint8_t *p, size_t len, knx_frame *out) {
    knx_header h;
    memset(out, 0, sizeof *out);
    if (knx_header_parse(p, len, &h) < 0 || h.total_len != len) return TBGW_EPROTO;
    out->service = h.service;
    const uint8_t *b = p + KNX_HDR_LEN;
    size_t n = len - KNX_HDR_LEN;
    switch (h.service) {
    case KNX_SEARCH_REQ:
    case KNX_DESCRIPTION_REQ:
        return parse_hpai(b, n, &out->hpai);
    case KNX_CONNECT_REQ: /* control HPAI, data HPAI, CRI */
        if (parse_hpai(b, n, &out->hpai) < 0 || n < 18 || b[8] != 8 || b[16] < 2 || (size_t)b[16] > n - 16)
            return TBGW_EPROTO;
        return 0;
    case KNX_SEARCH_RES:
        if (parse_hpai(b, n, &out->hpai) < 0) return TBGW_EPROTO;
        return parse_dibs(b + 8, n - 8, out);
    case KNX_DESCRIPTION_RES:
        return parse_dibs(b, n, out);
    case KNX_CONNECT_RES:
        if (n < 2) return TBGW_EPROTO;
        out->channel = b[0];
        out->status = b[1];
        if (out->status != KNX_E_NO_ERROR) return 0;
        if (parse_hpai(b + 2, n - 2, &out->hpai) < 0) return TBGW_EPROTO;
        if (n < 14 || b[10] < 2 || (size_t)b[10] > n - 10) return TBGW_EPROTO;
        if (b[10] >= 4) out->ia = rd16(b + 12);
        return 0;
    case KNX_CONNSTATE_REQ:
    case KNX_DISCONNECT_REQ:
        if (n < 2) return TBGW_EPROTO;
        out->channel = b[0];
        return parse_hpai(b + 2, n - 2, &out->hpai);
    case KNX_CONNSTATE_RES:
    case KNX_DISCONNECT_RES:
        if (n < 2) return TBGW_EPROTO;
        out->channel = b[0];
        out->status = b[1];
        return 0;
    case KNX_TUNNEL_REQ:
        if (parse_conn_header(b, n, out) < 0) return TBGW_EPROTO;
        out->status = 0;
        out->cemi = b + 4;
        out->cemi_len = n - 4;
        return out->cemi_len ? 0 : TBGW_EPROTO;
    case KNX_TUNNEL_ACK:
        return parse_conn_header(b, n, out);
    case KNX_ROUTING_IND:
        out->cemi = b;
        out->cemi_len = n;
        return n ? 0 : TBGW_EPROTO;
    case KNX_ROUTING_BUSY:
        if (n < 6 || b[0] != 6) return TBGW_EPROTO;
        out->busy_wait_ms = rd16(b + 2);
        return 0;
    case KNX_ROUTING_LOST:
        return n >= 4 ? 0 : TBGW_EPROTO;
    default:
        return TBGW_ENOENT;
    }
}

static int put_header(uint8_t *out, size_t cap, uint16_t service, size_t total) {
    if (cap < total || total > 0xFFFF) return TBGW_EINVAL;
    out[0] = KNX_HDR_LEN;
    out[1] = KNX_PROTO_VERSION;
    wr16(out + 2, service);
    wr16(out + 4, (uint16_t)total);
    return 0;
}

int knx_enc_search_req(uint8_t *out, size_t cap, const knx_hpai *discovery) {
    if (put_header(out, cap, KNX_SEARCH_REQ, 14) < 0) return TBGW_EINVAL;
    put_hpai(out + 6, discovery);
    return 14;
}

int knx_enc_description_req(uint8_t *out, size_t cap, const knx_hpai *control) {
    if (put_header(out, cap, KNX_DESCRIPTION_REQ, 14) < 0) return TBGW_EINVAL;
    put_hpai(out + 6, control);
    return 14;
}

int knx_enc_connect_req(uint8_t *out, size_t cap, const knx_hpai *control, const knx_hpai *data) {
    if (put_header(out, cap, KNX_CONNECT_REQ, 26) < 0) return TBGW_EINVAL;
    put_hpai(out + 6, control);
    put_hpai(out + 14, data);
    out[22] = 4;    /* CRI length */
    out[23] = 0x04; /* TUNNEL_CONNECTION */
    out[24] = 0x02; /* TUNNEL_LINKLAYER */
    out[25] = 0;
    return 26;
}

static int enc_chan_hpai(uint8_t *out, size_t cap, uint16_t service, uint8_t channel,
                         const knx_hpai *control) {
    if (put_header(out, cap, service, 16) < 0) return TBGW_EINVAL;
    out[6] = channel;
    out[7] = 0;
    put_hpai(out + 8, control);
    return 16;
}

int knx_enc_connstate_req(uint8_t *out, size_t cap, uint8_t channel, const knx_hpai *control) {
    return enc_chan_hpai(out, cap, KNX_CONNSTATE_REQ, channel, control);
}

int knx_enc_disconnect_req(uint8_t *out, size_t cap, uint8_t channel, const knx_hpai *control) {
    return enc_chan_hpai(out, cap, KNX_DISCONNECT_REQ, channel, control);
}

int knx_enc_disconnect_res(uint8_t *out, size_t cap, uint8_t channel, uint8_t status) {
    if (put_header(out, cap, KNX_DISCONNECT_RES, 8) < 0) return TBGW_EINVAL;
    out[6] = channel;
    out[7] = status;
    return 8;
}

int knx_enc_tunnel_req(uint8_t *out, size_t cap, uint8_t channel, uint8_t seq, const uint8_t *cemi,
                       size_t cemi_len) {
    size_t total = 10 + cemi_len;
    if (put_header(out, cap, KNX_TUNNEL_REQ, total) < 0) return TBGW_EINVAL;
    out[6] = 4;
    out[7] = channel;
    out[8] = seq;
    out[9] = 0;
    memcpy(out + 10, cemi, cemi_len);
    return (int)total;
}

int knx_enc_tunnel_ack(uint8_t *out, size_t cap, uint8_t channel, uint8_t seq, uint8_t status) {
    if (put_header(out, cap, KNX_TUNNEL_ACK, 10) < 0) return TBGW_EINVAL;
    out[6] = 4;
    out[7] = channel;
    out[8] = seq;
    out[9] = status;
    return 10;
}

int knx_enc_routing_ind(uint8_t *out, size_t cap, const uint8_t *cemi, size_t cemi_len) {
    size_t total = 6 + cemi_len;
    if (put_header(out, cap, KNX_ROUTING_IND, total) < 0) return TBGW_EINVAL;
    memcpy(out + 6, cemi, cemi_len);
    return (int)total;
}

/* ---- cEMI ---- */

int knx_cemi_parse(const uint8_t *p, size_t len, knx_ldata *out) {
    memset(out, 0, sizeof *out);
    if (len < 2) return TBGW_EPROTO;
    out->code = p[0];
    if (out->code != KNX_CEMI_LDATA_REQ && out->code != KNX_CEMI_LDATA_CON && out->code != KNX_CEMI_LDATA_IND)
        return TBGW_ENOENT;
    size_t off = 2 + (size_t)p[1];
    if (len < off + 7) return TBGW_EPROTO;
    const uint8_t *q = p + off;
    out->ctrl1 = q[0];
    out->ctrl2 = q[1];
    out->src = rd16(q + 2);
    out->dst = rd16(q + 4);
    out->group = (q[1] & 0x80) ? 1 : 0;
    out->confirm_error = (out->code == KNX_CEMI_LDATA_CON && (q[0] & 0x01)) ? 1 : 0;
    size_t npdu = q[6];
    if (len < off + 7 + npdu + 1) return TBGW_EPROTO;
    const uint8_t *t = q + 7; /* TPCI/APCI octets */
    if (npdu == 0) {          /* a transport control frame (T_Connect, ...): no APCI */
        out->apci = 0xFFFF;
        return 0;
    }
    if ((t[0] & 0xFC) != 0) { /* numbered/connection-oriented transport data: not a group value */
        out->apci = 0xFFFF;
        return 0;
    }
    out->apci = (uint16_t)(((t[0] & 0x03) << 8) | t[1]);
    if ((out->apci & 0x3C0) <= KNX_APCI_WRITE) {
        out->apci &= 0x3C0; /* group value services carry 6 data bits in the low APCI bits */
        if (npdu == 1) {
            out->value.small = 1;
            out->value.len = 0;
            out->value.data[0] = t[1] & 0x3F;
        } else {
            size_t dl = npdu - 1;
            if (dl > KNX_MAX_APDU_DATA) return TBGW_EPROTO;
            out->value.len = (uint8_t)dl;
            memcpy(out->value.data, t + 2, dl);
        }
    }
    return 0;
}

int knx_cemi_encode_group(uint8_t *out, size_t cap, uint8_t code, uint16_t src, uint16_t dst, uint16_t apci,
                          const knx_payload *value) {
    size_t dl = (apci == KNX_APCI_READ || !value || value->small) ? 0 : value->len;
    if (dl > KNX_MAX_APDU_DATA) return TBGW_EINVAL;
    size_t total = 11 + dl;
    if (cap < total) return TBGW_EINVAL;
    out[0] = code;
    out[1] = 0;    /* no additional information */
    out[2] = 0xBC; /* standard frame, do not repeat, broadcast, low priority */
    out[3] = 0xE0; /* group address, hop count 6 */
    wr16(out + 4, src);
    wr16(out + 6, dst);
    out[8] = (uint8_t)(1 + dl);
    out[9] = (uint8_t)((apci >> 8) & 0x03);
    out[10] = (uint8_t)(apci & 0xFF);
    if (apci != KNX_APCI_READ && value) {
        if (value->small)
            out[10] |= value->data[0] & 0x3F;
        else
            memcpy(out + 11, value->data, dl);
    }
    return (int)total;
}
