/* BVLL (Annex J), NPDU (clause 6), APDU (clause 20.1) and the services the gateway uses. */
#include <string.h>

#include "proto/bacnet/bn.h"

/* ---- BVLL ---- */

int bn_bvll_decode(const uint8_t *p, size_t n, bn_bvll *out) {
    memset(out, 0, sizeof *out);
    if (n < 4 || p[0] != 0x81) return -1;
    size_t len = ((size_t)p[2] << 8) | p[3];
    if (len != n) return -1;
    out->func = p[1];
    switch (out->func) {
    case BN_BVLC_RESULT:
        if (n != 6) return -1;
        out->result = (uint16_t)((p[4] << 8) | p[5]);
        return 0;
    case BN_BVLC_FORWARDED:
        if (n < 10) return -1;
        out->orig_ip = ((uint32_t)p[4] << 24) | ((uint32_t)p[5] << 16) | ((uint32_t)p[6] << 8) | p[7];
        out->orig_port = (uint16_t)((p[8] << 8) | p[9]);
        out->npdu = p + 10;
        out->npdu_len = n - 10;
        return 0;
    case BN_BVLC_REGISTER_FD:
        if (n != 6) return -1;
        out->ttl = (uint16_t)((p[4] << 8) | p[5]);
        return 0;
    case BN_BVLC_UNICAST:
    case BN_BVLC_BROADCAST:
    case BN_BVLC_DISTRIBUTE:
        out->npdu = p + 4;
        out->npdu_len = n - 4;
        return 0;
    default:
        return 0; /* other BBMD functions: recognised, no payload of interest */
    }
}

void bn_bvll_finish(uint8_t *frame, size_t total, uint8_t func) {
    frame[0] = 0x81;
    frame[1] = func;
    frame[2] = (uint8_t)(total >> 8);
    frame[3] = (uint8_t)total;
}

size_t bn_bvll_register_fd(uint8_t *out, uint16_t ttl) {
    bn_bvll_finish(out, 6, BN_BVLC_REGISTER_FD);
    out[4] = (uint8_t)(ttl >> 8);
    out[5] = (uint8_t)ttl;
    return 6;
}

size_t bn_bvll_delete_fdt(uint8_t *out, uint32_t ip, uint16_t port) {
    bn_bvll_finish(out, 10, BN_BVLC_DELETE_FDT);
    out[4] = (uint8_t)(ip >> 24);
    out[5] = (uint8_t)(ip >> 16);
    out[6] = (uint8_t)(ip >> 8);
    out[7] = (uint8_t)ip;
    out[8] = (uint8_t)(port >> 8);
    out[9] = (uint8_t)port;
    return 10;
}

/* ---- NPDU ---- */

int bn_npdu_decode(const uint8_t *p, size_t n, bn_npdu *out) {
    memset(out, 0, sizeof *out);
    if (n < 2 || p[0] != 0x01) return -1;
    uint8_t c = p[1];
    size_t o = 2;
    out->control = c;
    out->netmsg = (c & 0x80) != 0;
    out->expecting_reply = (c & 0x04) != 0;
    out->prio = c & 0x03;
    if (c & 0x20) {
        if (n - o < 3) return -1;
        out->dnet = (uint16_t)((p[o] << 8) | p[o + 1]);
        out->dlen = p[o + 2];
        o += 3;
        if (out->dlen > sizeof out->dadr || n - o < out->dlen) return -1;
        memcpy(out->dadr, p + o, out->dlen);
        o += out->dlen;
    }
    if (c & 0x08) {
        if (n - o < 3) return -1;
        out->snet = (uint16_t)((p[o] << 8) | p[o + 1]);
        out->slen = p[o + 2];
        o += 3;
        if (out->slen == 0 || out->slen > sizeof out->sadr || n - o < out->slen) return -1;
        memcpy(out->sadr, p + o, out->slen);
        o += out->slen;
    }
    if (c & 0x20) {
        if (o >= n) return -1;
        out->hop = p[o++];
    }
    if (out->netmsg) {
        if (o >= n) return -1;
        out->msgtype = p[o++];
        if (out->msgtype >= 0x80) {
            if (n - o < 2) return -1;
            o += 2; /* vendor id */
        }
    }
    out->apdu = p + o;
    out->apdu_len = n - o;
    return 0;
}

void bn_npdu_encode(bn_w *w, int expecting_reply, uint16_t dnet, const uint8_t *dadr, uint8_t dlen) {
    bn_put_u8(w, 0x01);
    uint8_t c = (uint8_t)((expecting_reply ? 0x04 : 0) | (dnet ? 0x20 : 0));
    bn_put_u8(w, c);
    if (dnet) {
        bn_put_u16(w, dnet);
        bn_put_u8(w, dlen);
        bn_put(w, dadr, dlen);
        bn_put_u8(w, 255); /* hop count */
    }
}

void bn_npdu_who_is_router(bn_w *w, uint16_t net) {
    bn_put_u8(w, 0x01);
    bn_put_u8(w, 0x80);
    bn_put_u8(w, 0x00);
    if (net) bn_put_u16(w, net);
}

int bn_npdu_i_am_router_decode(const uint8_t *p, size_t n, uint16_t *nets, size_t cap) {
    if (n % 2) return -1;
    size_t k = 0;
    for (size_t o = 0; o + 1 < n; o += 2) {
        if (k < cap) nets[k] = (uint16_t)((p[o] << 8) | p[o + 1]);
        k++;
    }
    return (int)(k < cap ? k : cap);
}

int bn_npdu_reject_decode(const uint8_t *p, size_t n, uint8_t *reason, uint16_t *net) {
    if (n < 3) return -1;
    *reason = p[0];
    *net = (uint16_t)((p[1] << 8) | p[2]);
    return 0;
}

void bn_npdu_i_am_router(bn_w *w, const uint16_t *nets, size_t n) {
    bn_put_u8(w, 0x01);
    bn_put_u8(w, 0x80);
    bn_put_u8(w, BN_NL_I_AM_ROUTER);
    for (size_t i = 0; i < n; i++) bn_put_u16(w, nets[i]);
}

/* ---- APDU ---- */

static const unsigned max_apdu_sizes[] = {50, 128, 206, 480, 1024, 1476};

unsigned bn_max_apdu_decode(uint8_t code) {
    return code < 6 ? max_apdu_sizes[code] : 50;
}

uint8_t bn_max_apdu_code(unsigned n) {
    uint8_t c = 0;
    for (uint8_t i = 0; i < 6; i++)
        if (n >= max_apdu_sizes[i]) c = i;
    return c;
}

int bn_apdu_decode(const uint8_t *p, size_t n, bn_apdu *out) {
    memset(out, 0, sizeof *out);
    if (n < 1) return -1;
    out->type = p[0] >> 4;
    size_t o = 0;
    switch (out->type) {
    case BN_PDU_CONFIRMED:
        if (n < 4) return -1;
        out->segmented = (p[0] & 0x08) != 0;
        out->more_follows = (p[0] & 0x04) != 0;
        out->seg_resp_accepted = (p[0] & 0x02) != 0;
        out->max_segs = (p[1] >> 4) & 0x07;
        out->max_apdu_code = p[1] & 0x0F;
        out->invoke_id = p[2];
        o = 3;
        if (out->segmented) {
            if (n < 6) return -1;
            out->seq = p[3];
            out->window = p[4];
            o = 5;
        }
        out->service = p[o++];
        break;
    case BN_PDU_UNCONFIRMED:
        if (n < 2) return -1;
        out->service = p[1];
        o = 2;
        break;
    case BN_PDU_SIMPLE_ACK:
        if (n != 3) return -1;
        out->invoke_id = p[1];
        out->service = p[2];
        o = 3;
        break;
    case BN_PDU_COMPLEX_ACK:
        if (n < 3) return -1;
        out->segmented = (p[0] & 0x08) != 0;
        out->more_follows = (p[0] & 0x04) != 0;
        out->invoke_id = p[1];
        o = 2;
        if (out->segmented) {
            if (n < 5) return -1;
            out->seq = p[2];
            out->window = p[3];
            o = 4;
        }
        out->service = p[o++];
        break;
    case BN_PDU_SEGMENT_ACK:
        if (n != 4) return -1;
        out->nak = (p[0] & 0x02) != 0;
        out->server = (p[0] & 0x01) != 0;
        out->invoke_id = p[1];
        out->seq = p[2];
        out->window = p[3];
        o = 4;
        break;
    case BN_PDU_ERROR:
        if (n < 3) return -1;
        out->invoke_id = p[1];
        out->service = p[2];
        o = 3;
        break;
    case BN_PDU_REJECT:
    case BN_PDU_ABORT:
        if (n != 3) return -1;
        out->server = (p[0] & 0x01) != 0;
        out->invoke_id = p[1];
        out->reason = p[2];
        o = 3;
        break;
    default:
        return -1;
    }
    out->data = p + o;
    out->len = n - o;
    return 0;
}

void bn_apdu_confirmed(bn_w *w, uint8_t invoke_id, uint8_t service, unsigned max_apdu_accepted) {
    bn_put_u8(w, 0x02);                                                  /* segmented response accepted */
    bn_put_u8(w, (uint8_t)(0x70 | bn_max_apdu_code(max_apdu_accepted))); /* more than 64 segments */
    bn_put_u8(w, invoke_id);
    bn_put_u8(w, service);
}

void bn_apdu_confirmed_segment(bn_w *w, uint8_t invoke_id, uint8_t service, unsigned max_apdu_accepted,
                               uint8_t seq, uint8_t window, int more_follows) {
    bn_put_u8(w, (uint8_t)(0x0A | (more_follows ? 0x04 : 0))); /* segmented, segmented response accepted */
    bn_put_u8(w, (uint8_t)(0x70 | bn_max_apdu_code(max_apdu_accepted)));
    bn_put_u8(w, invoke_id);
    bn_put_u8(w, seq);
    bn_put_u8(w, window);
    bn_put_u8(w, service);
}

void bn_apdu_unconfirmed(bn_w *w, uint8_t service) {
    bn_put_u8(w, 0x10);
    bn_put_u8(w, service);
}

void bn_apdu_segment_ack(bn_w *w, uint8_t invoke_id, uint8_t seq, uint8_t window, int nak) {
    bn_put_u8(w, (uint8_t)(0x40 | (nak ? 0x02 : 0)));
    bn_put_u8(w, invoke_id);
    bn_put_u8(w, seq);
    bn_put_u8(w, window);
}

void bn_apdu_complex_ack(bn_w *w, uint8_t invoke_id, uint8_t service) {
    bn_put_u8(w, 0x30);
    bn_put_u8(w, invoke_id);
    bn_put_u8(w, service);
}

void bn_apdu_simple_ack(bn_w *w, uint8_t invoke_id, uint8_t service) {
    bn_put_u8(w, 0x20);
    bn_put_u8(w, invoke_id);
    bn_put_u8(w, service);
}

void bn_apdu_error(bn_w *w, uint8_t invoke_id, uint8_t service, uint32_t eclass, uint32_t ecode) {
    bn_put_u8(w, 0x50);
    bn_put_u8(w, invoke_id);
    bn_put_u8(w, service);
    bn_enc_enum(w, eclass);
    bn_enc_enum(w, ecode);
}

void bn_apdu_reject(bn_w *w, uint8_t invoke_id, uint8_t reason) {
    bn_put_u8(w, 0x60);
    bn_put_u8(w, invoke_id);
    bn_put_u8(w, reason);
}

int bn_error_decode(const uint8_t *p, size_t n, uint32_t *eclass, uint32_t *ecode) {
    size_t o = 0;
    bn_value a, b;
    /* some services wrap the error in context tag [0] */
    if (bn_peek_open(p, n, 0, 0)) {
        bn_value open;
        if (bn_dec_item(p, n, &o, &open) != 0) return -1;
    }
    if (bn_dec_item(p, n, &o, &a) != 0 || bn_dec_item(p, n, &o, &b) != 0) return -1;
    if (a.type != BN_ENUM || b.type != BN_ENUM) return -1;
    *eclass = (uint32_t)a.v.u;
    *ecode = (uint32_t)b.v.u;
    return 0;
}

/* ---- Who-Is / I-Am ---- */

void bn_who_is(bn_w *w, int64_t low, int64_t high) {
    bn_apdu_unconfirmed(w, BN_USVC_WHO_IS);
    if (low >= 0 && high >= low) {
        bn_enc_ctx_unsigned(w, 0, (uint64_t)low);
        bn_enc_ctx_unsigned(w, 1, (uint64_t)high);
    }
}

int bn_who_is_decode(const uint8_t *p, size_t n, int64_t *low, int64_t *high) {
    *low = *high = -1;
    if (n == 0) return 0;
    size_t o = 0;
    uint64_t a, b;
    if (bn_dec_ctx_unsigned(p, n, &o, 0, &a) != 0 || bn_dec_ctx_unsigned(p, n, &o, 1, &b) != 0 || o != n)
        return -1;
    if (a > BN_MAX_INST || b > BN_MAX_INST) return -1;
    *low = (int64_t)a;
    *high = (int64_t)b;
    return 0;
}

void bn_i_am(bn_w *w, const bn_iam *a) {
    bn_apdu_unconfirmed(w, BN_USVC_I_AM);
    bn_enc_oid(w, 8, a->inst);
    bn_enc_unsigned(w, a->max_apdu);
    bn_enc_enum(w, a->segmentation);
    bn_enc_unsigned(w, a->vendor);
}

int bn_i_am_decode(const uint8_t *p, size_t n, bn_iam *out) {
    size_t o = 0;
    bn_value v[4];
    for (int i = 0; i < 4; i++)
        if (bn_dec_item(p, n, &o, &v[i]) != 0) return -1;
    if (v[0].type != BN_OID || v[0].v.oid.type != 8 || v[1].type != BN_UNSIGNED || v[2].type != BN_ENUM ||
        v[3].type != BN_UNSIGNED)
        return -1;
    out->inst = v[0].v.oid.inst;
    out->max_apdu = (uint32_t)(v[1].v.u > 65535 ? 65535 : v[1].v.u);
    out->segmentation = (uint32_t)(v[2].v.u > 3 ? 3 : v[2].v.u);
    out->vendor = (uint32_t)(v[3].v.u > 65535 ? 65535 : v[3].v.u);
    return 0;
}

/* ---- ReadProperty ---- */

void bn_rp_request(bn_w *w, uint16_t type, uint32_t inst, uint32_t prop, uint32_t index) {
    bn_enc_ctx_oid(w, 0, type, inst);
    bn_enc_ctx_enum(w, 1, prop);
    if (index != BN_ARRAY_ALL) bn_enc_ctx_unsigned(w, 2, index);
}

static int dec_propref(const uint8_t *p, size_t n, size_t *o, unsigned ptag, bn_propref *pr) {
    uint64_t v;
    if (bn_dec_ctx_unsigned(p, n, o, ptag, &v) != 0 || v > 0x3FFFFF) return -1;
    pr->prop = (uint32_t)v;
    pr->index = BN_ARRAY_ALL;
    if (bn_peek_ctx(p, n, *o, ptag + 1)) {
        /* 0xFFFFFFFF is the "whole array" value some stacks send explicitly */
        if (bn_dec_ctx_unsigned(p, n, o, ptag + 1, &v) != 0 || v > 0xFFFFFFFFu) return -1;
        pr->index = (uint32_t)v;
    }
    return 0;
}

int bn_rp_request_decode(const uint8_t *p, size_t n, uint16_t *type, uint32_t *inst, bn_propref *pr) {
    size_t o = 0;
    if (bn_dec_ctx_oid(p, n, &o, 0, type, inst) != 0 || dec_propref(p, n, &o, 1, pr) != 0) return -1;
    return o == n ? 0 : -1;
}

/* Skips the items of an open context tag up to and including its closing tag. */
static int skip_to_close(const uint8_t *p, size_t n, size_t *o, unsigned tag) {
    int depth = 0;
    for (;;) {
        bn_value v;
        if (bn_dec_item(p, n, o, &v) != 0) return -1;
        if (v.type == BN_OPEN) {
            if (++depth > 32) return -1;
        } else if (v.type == BN_CLOSE) {
            if (depth == 0) return v.ctx == tag ? 0 : -1;
            depth--;
        }
    }
}

int bn_rp_ack_decode(const uint8_t *p, size_t n, bn_rp_ack *out) {
    size_t o = 0;
    if (bn_dec_ctx_oid(p, n, &o, 0, &out->type, &out->inst) != 0 || dec_propref(p, n, &o, 1, &out->pr) != 0)
        return -1;
    if (!bn_peek_open(p, n, o, 3)) return -1;
    o++;
    size_t start = o;
    if (skip_to_close(p, n, &o, 3) != 0) return -1;
    out->value = p + start;
    out->value_len = o - 1 - start;
    return o == n ? 0 : -1;
}

void bn_rp_ack_begin(bn_w *w, uint16_t type, uint32_t inst, uint32_t prop, uint32_t index) {
    bn_rp_request(w, type, inst, prop, index);
    bn_enc_open(w, 3);
}

void bn_rp_ack_end(bn_w *w) {
    bn_enc_close(w, 3);
}

/* ---- ReadPropertyMultiple ---- */

void bn_rpm_object(bn_w *w, uint16_t type, uint32_t inst, const bn_propref *props, size_t n) {
    bn_enc_ctx_oid(w, 0, type, inst);
    bn_enc_open(w, 1);
    for (size_t i = 0; i < n; i++) {
        bn_enc_ctx_enum(w, 0, props[i].prop);
        if (props[i].index != BN_ARRAY_ALL) bn_enc_ctx_unsigned(w, 1, props[i].index);
    }
    bn_enc_close(w, 1);
}

static int rpm_one_result(const uint8_t *p, size_t n, size_t *o, bn_rpm_result *r, bn_rpm_fn fn, void *ud) {
    if (dec_propref(p, n, o, 2, &r->pr) != 0) return -1;
    r->is_error = 0;
    r->value = NULL;
    r->value_len = 0;
    if (bn_peek_open(p, n, *o, 4)) {
        (*o)++;
        size_t start = *o;
        if (skip_to_close(p, n, o, 4) != 0) return -1;
        r->value = p + start;
        r->value_len = *o - 1 - start;
    } else if (bn_peek_open(p, n, *o, 5)) {
        (*o)++;
        bn_value a, b, c;
        if (bn_dec_item(p, n, o, &a) != 0 || bn_dec_item(p, n, o, &b) != 0 || bn_dec_item(p, n, o, &c) != 0)
            return -1;
        if (a.type != BN_ENUM || b.type != BN_ENUM || c.type != BN_CLOSE || c.ctx != 5) return -1;
        r->is_error = 1;
        r->eclass = (uint32_t)a.v.u;
        r->ecode = (uint32_t)b.v.u;
    } else {
        return -1;
    }
    fn(ud, r);
    return 0;
}

int bn_rpm_ack_walk(const uint8_t *p, size_t n, bn_rpm_fn fn, void *ud) {
    size_t o = 0;
    while (o < n) {
        bn_rpm_result r;
        memset(&r, 0, sizeof r);
        if (bn_dec_ctx_oid(p, n, &o, 0, &r.type, &r.inst) != 0) return -1;
        if (!bn_peek_open(p, n, o, 1)) return -1;
        o++;
        while (!bn_peek_close(p, n, o, 1))
            if (rpm_one_result(p, n, &o, &r, fn, ud) != 0) return -1;
        o++;
    }
    return 0;
}

/* ---- WriteProperty ---- */

void bn_wp_begin(bn_w *w, uint16_t type, uint32_t inst, uint32_t prop, uint32_t index) {
    bn_rp_request(w, type, inst, prop, index);
    bn_enc_open(w, 3);
}

void bn_wp_end(bn_w *w, unsigned prio) {
    bn_enc_close(w, 3);
    if (prio >= 1 && prio <= 16) bn_enc_ctx_unsigned(w, 4, prio);
}

/* ---- COV ---- */

void bn_subscribe_cov(bn_w *w, uint32_t pid, uint16_t type, uint32_t inst, int confirmed, uint32_t lifetime,
                      int cancel) {
    bn_enc_ctx_unsigned(w, 0, pid);
    bn_enc_ctx_oid(w, 1, type, inst);
    if (cancel) return;
    bn_enc_ctx_bool(w, 2, confirmed);
    bn_enc_ctx_unsigned(w, 3, lifetime);
}

int bn_cov_decode(const uint8_t *p, size_t n, bn_cov *out) {
    size_t o = 0;
    uint64_t pid, left;
    uint16_t dt;
    memset(out, 0, sizeof *out);
    if (bn_dec_ctx_unsigned(p, n, &o, 0, &pid) != 0 ||
        bn_dec_ctx_oid(p, n, &o, 1, &dt, &out->dev_inst) != 0 ||
        bn_dec_ctx_oid(p, n, &o, 2, &out->type, &out->inst) != 0 ||
        bn_dec_ctx_unsigned(p, n, &o, 3, &left) != 0)
        return -1;
    if (!bn_peek_open(p, n, o, 4)) return -1;
    o++;
    size_t start = o;
    if (skip_to_close(p, n, &o, 4) != 0 || o != n) return -1;
    out->pid = (uint32_t)pid;
    out->time_left = (uint32_t)left;
    out->values = p + start;
    out->values_len = o - 1 - start;
    return 0;
}

int bn_cov_values_walk(const uint8_t *p, size_t n, bn_cov_fn fn, void *ud) {
    size_t o = 0;
    while (o < n) {
        bn_propref pr;
        if (dec_propref(p, n, &o, 0, &pr) != 0 || !bn_peek_open(p, n, o, 2)) return -1;
        o++;
        size_t start = o;
        if (skip_to_close(p, n, &o, 2) != 0) return -1;
        fn(ud, &pr, p + start, o - 1 - start);
        if (bn_peek_ctx(p, n, o, 3)) {
            uint64_t prio;
            if (bn_dec_ctx_unsigned(p, n, &o, 3, &prio) != 0) return -1;
        }
    }
    return 0;
}
