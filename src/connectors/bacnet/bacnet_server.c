/* The gateway's own BACnet device object: I-Am, and ReadProperty / ReadPropertyMultiple of its
 * device object; every other request gets an Error or a Reject. */
#include <string.h>

#include "connectors/bacnet/bacnet.h"

static const uint32_t device_props[] = {75,  77, 79, 112, 121, 120, 70, 44, 12, 98,
                                        139, 97, 96, 76,  62,  107, 11, 73, 30, 155};

void bnc_send_i_am(bnc_conn *c, const bn_addr *dst) {
    uint8_t buf[32];
    bn_w w;
    bn_w_init(&w, buf, sizeof buf);
    bn_iam a = {c->cfg.app.instance, c->cfg.app.max_apdu, c->cfg.app.segmentation, c->cfg.app.vendor};
    bn_i_am(&w, &a);
    bn_client_send_unconfirmed(c->cl, dst, buf, w.len, 0);
}

/* Encodes one property value of our device object; -1 unknown property, -2 bad index. */
static int encode_prop(bnc_conn *c, uint32_t prop, uint32_t index, bn_w *w) {
    const bnc_app *a = &c->cfg.app;
    if (index != BN_ARRAY_ALL && prop != 76) return -2;
    switch (prop) {
    case 75:
        bn_enc_oid(w, 8, a->instance);
        break;
    case 77:
        bn_enc_charstr(w, a->object_name, strlen(a->object_name));
        break;
    case 79:
        bn_enc_enum(w, 8);
        break;
    case 112:
        bn_enc_enum(w, 0);
        break; /* operational */
    case 121:
        bn_enc_charstr(w, "ThingsBoard", 11);
        break;
    case 120:
        bn_enc_unsigned(w, a->vendor);
        break;
    case 70:
        bn_enc_charstr(w, "tbgw", 4);
        break;
    case 44:
    case 12:
        bn_enc_charstr(w, "1.0", 3);
        break;
    case 98:
        bn_enc_unsigned(w, 1);
        break;
    case 139:
        bn_enc_unsigned(w, 14);
        break;
    case 97: {
        uint8_t bits[41] = {0};
        bits[12] = bits[14] = bits[15] = bits[26] = bits[34] = 1; /* RP, RPM, WP, I-Am, Who-Is */
        bn_enc_bitstr(w, bits, 41);
        break;
    }
    case 96: {
        uint8_t bits[60] = {0};
        bits[8] = 1;
        bn_enc_bitstr(w, bits, 60);
        break;
    }
    case 76:
        if (index == 0)
            bn_enc_unsigned(w, 1);
        else if (index == BN_ARRAY_ALL || index == 1)
            bn_enc_oid(w, 8, a->instance);
        else
            return -2;
        break;
    case 62:
        bn_enc_unsigned(w, a->max_apdu);
        break;
    case 107:
        bn_enc_enum(w, a->segmentation);
        break;
    case 11:
        bn_enc_unsigned(w, (uint64_t)a->apdu_timeout_ms);
        break;
    case 73:
        bn_enc_unsigned(w, (uint64_t)a->apdu_retries);
        break;
    case 30:
        break; /* deviceAddressBinding: empty list */
    case 155:
        bn_enc_unsigned(w, 1);
        break;
    default:
        return -1;
    }
    return 0;
}

static void serve_rp(bnc_conn *c, const bn_apdu *req, bn_w *w) {
    uint16_t type;
    uint32_t inst;
    bn_propref pr;
    if (bn_rp_request_decode(req->data, req->len, &type, &inst, &pr) != 0) {
        bn_apdu_reject(w, req->invoke_id, 4); /* invalid-tag */
        return;
    }
    if (type != 8 || (inst != c->cfg.app.instance && inst != BN_MAX_INST)) {
        bn_apdu_error(w, req->invoke_id, req->service, 1, 31);
        return;
    }
    bn_apdu_complex_ack(w, req->invoke_id, req->service);
    bn_rp_ack_begin(w, 8, c->cfg.app.instance, pr.prop, pr.index);
    size_t mark = w->len;
    int r = encode_prop(c, pr.prop, pr.index, w);
    if (r != 0) {
        (void)mark;
        bn_w_init(w, w->p, w->cap);
        bn_apdu_error(w, req->invoke_id, req->service, 2, r == -1 ? 32 : 42);
        return;
    }
    bn_rp_ack_end(w);
}

static void rpm_one(bnc_conn *c, bn_w *w, uint32_t prop, uint32_t index) {
    bn_enc_ctx_enum(w, 2, prop);
    if (index != BN_ARRAY_ALL) bn_enc_ctx_unsigned(w, 3, index);
    uint8_t tmp[600];
    bn_w v;
    bn_w_init(&v, tmp, sizeof tmp);
    int r = encode_prop(c, prop, index, &v);
    if (r == 0 && !v.overflow) {
        bn_enc_open(w, 4);
        bn_put(w, tmp, v.len);
        bn_enc_close(w, 4);
    } else {
        bn_enc_open(w, 5);
        bn_enc_enum(w, 2);
        bn_enc_enum(w, r == -2 ? 42 : 32);
        bn_enc_close(w, 5);
    }
}

static void serve_rpm(bnc_conn *c, const bn_apdu *req, bn_w *w) {
    const uint8_t *p = req->data;
    size_t n = req->len, off = 0;
    bn_apdu_complex_ack(w, req->invoke_id, req->service);
    while (off < n) {
        uint16_t type;
        uint32_t inst;
        if (bn_dec_ctx_oid(p, n, &off, 0, &type, &inst) != 0 || !bn_peek_open(p, n, off, 1)) goto bad;
        off++;
        int ours = type == 8 && (inst == c->cfg.app.instance || inst == BN_MAX_INST);
        bn_enc_ctx_oid(w, 0, type, ours ? c->cfg.app.instance : inst);
        bn_enc_open(w, 1);
        while (!bn_peek_close(p, n, off, 1)) {
            uint64_t prop, idx = BN_ARRAY_ALL;
            if (bn_dec_ctx_unsigned(p, n, &off, 0, &prop) != 0) goto bad;
            if (bn_peek_ctx(p, n, off, 1) && bn_dec_ctx_unsigned(p, n, &off, 1, &idx) != 0) goto bad;
            if (!ours) {
                bn_enc_ctx_enum(w, 2, (uint32_t)prop);
                bn_enc_open(w, 5);
                bn_enc_enum(w, 1);
                bn_enc_enum(w, 31);
                bn_enc_close(w, 5);
            } else if (prop == 8 || prop == 105) { /* all, required */
                for (size_t i = 0; i < sizeof device_props / sizeof device_props[0]; i++)
                    rpm_one(c, w, device_props[i], BN_ARRAY_ALL);
            } else {
                rpm_one(c, w, (uint32_t)prop, (uint32_t)idx);
            }
        }
        off++;
        bn_enc_close(w, 1);
    }
    return;
bad:
    bn_w_init(w, w->p, w->cap);
    bn_apdu_reject(w, req->invoke_id, 4);
}

void bnc_serve(bnc_conn *c, const bn_addr *src, const bn_apdu *req, bn_w *w) {
    switch (req->service) {
    case BN_SVC_READ_PROPERTY:
        serve_rp(c, req, w);
        break;
    case BN_SVC_READ_PROP_MULTIPLE:
        serve_rpm(c, req, w);
        break;
    case BN_SVC_WRITE_PROPERTY:
        bn_apdu_error(w, req->invoke_id, req->service, 2, 40);
        break;
    case BN_SVC_CONFIRMED_COV:
        bnc_cov_notification(c, src, req->data, req->len);
        bn_apdu_simple_ack(w, req->invoke_id, req->service);
        break;
    default:
        bn_apdu_reject(w, req->invoke_id, 9);
        break; /* unrecognized-service */
    }
    if (w->overflow) {
        bn_w_init(w, w->p, w->cap);
        bn_put_u8(w, 0x71); /* abort from the server: segmentation not supported */
        bn_put_u8(w, req->invoke_id);
        bn_put_u8(w, 4);
    }
}
