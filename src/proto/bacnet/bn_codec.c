/* BACnet tag codec (ASHRAE 135 clause 20.2): application and context tags, every primitive type. */
#include <string.h>

#include "proto/bacnet/bn.h"

void bn_w_init(bn_w *w, uint8_t *buf, size_t cap) {
    w->p = buf;
    w->len = 0;
    w->cap = cap;
    w->overflow = 0;
}

void bn_put(bn_w *w, const void *data, size_t n) {
    if (w->overflow || n > w->cap - w->len) {
        w->overflow = 1;
        return;
    }
    if (n) memcpy(w->p + w->len, data, n);
    w->len += n;
}

void bn_put_u8(bn_w *w, uint8_t b) {
    bn_put(w, &b, 1);
}

void bn_put_u16(bn_w *w, uint16_t v) {
    uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    bn_put(w, b, 2);
}

static void put_be(bn_w *w, uint64_t v, unsigned n) {
    for (unsigned i = n; i-- > 0;) bn_put_u8(w, (uint8_t)(v >> (8 * i)));
}

static unsigned unsigned_len(uint64_t v) {
    unsigned n = 1;
    while (n < 8 && (v >> (8 * n)) != 0) n++;
    return n;
}

static unsigned signed_len(int64_t v) {
    unsigned n = 1;
    while (n < 8) {
        int64_t lo = -((int64_t)1 << (8 * n - 1)), hi = ((int64_t)1 << (8 * n - 1)) - 1;
        if (v >= lo && v <= hi) break;
        n++;
    }
    return n;
}

void bn_enc_tag(bn_w *w, unsigned tag, int context, uint32_t lvt) {
    uint8_t first = (uint8_t)((context ? 0x08 : 0) | (lvt <= 4 ? lvt : 5));
    if (tag <= 14)
        first |= (uint8_t)(tag << 4);
    else
        first |= 0xF0;
    bn_put_u8(w, first);
    if (tag > 14) bn_put_u8(w, (uint8_t)tag);
    if (lvt <= 4) return;
    if (lvt < 254) {
        bn_put_u8(w, (uint8_t)lvt);
    } else if (lvt <= 0xFFFF) {
        bn_put_u8(w, 254);
        put_be(w, lvt, 2);
    } else {
        bn_put_u8(w, 255);
        put_be(w, lvt, 4);
    }
}

static void enc_open_close(bn_w *w, unsigned tag, uint8_t kind) {
    if (tag <= 14) {
        bn_put_u8(w, (uint8_t)((tag << 4) | 0x08 | kind));
    } else {
        bn_put_u8(w, (uint8_t)(0xF8 | kind));
        bn_put_u8(w, (uint8_t)tag);
    }
}

void bn_enc_open(bn_w *w, unsigned tag) {
    enc_open_close(w, tag, 6);
}
void bn_enc_close(bn_w *w, unsigned tag) {
    enc_open_close(w, tag, 7);
}
void bn_enc_null(bn_w *w) {
    bn_enc_tag(w, BN_NULL, 0, 0);
}
void bn_enc_bool(bn_w *w, int b) {
    bn_enc_tag(w, BN_BOOLEAN, 0, b ? 1 : 0);
}
void bn_enc_unsigned(bn_w *w, uint64_t v) {
    unsigned n = unsigned_len(v);
    bn_enc_tag(w, BN_UNSIGNED, 0, n);
    put_be(w, v, n);
}
void bn_enc_signed(bn_w *w, int64_t v) {
    unsigned n = signed_len(v);
    bn_enc_tag(w, BN_SIGNED, 0, n);
    put_be(w, (uint64_t)v, n);
}
void bn_enc_real(bn_w *w, float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    bn_enc_tag(w, BN_REAL, 0, 4);
    put_be(w, u, 4);
}
void bn_enc_double(bn_w *w, double v) {
    uint64_t u;
    memcpy(&u, &v, 8);
    bn_enc_tag(w, BN_DOUBLE, 0, 8);
    put_be(w, u, 8);
}
void bn_enc_octets(bn_w *w, const uint8_t *p, size_t n) {
    bn_enc_tag(w, BN_OCTETS, 0, (uint32_t)n);
    bn_put(w, p, n);
}
void bn_enc_charstr(bn_w *w, const char *s, size_t n) {
    bn_enc_tag(w, BN_CHARSTR, 0, (uint32_t)n + 1);
    bn_put_u8(w, 0);
    bn_put(w, s, n);
}
void bn_enc_bitstr(bn_w *w, const uint8_t *bits, size_t nbits) {
    size_t bytes = (nbits + 7) / 8;
    bn_enc_tag(w, BN_BITSTR, 0, (uint32_t)bytes + 1);
    bn_put_u8(w, (uint8_t)(bytes * 8 - nbits));
    for (size_t i = 0; i < bytes; i++) {
        uint8_t b = 0;
        for (size_t j = 0; j < 8 && i * 8 + j < nbits; j++)
            if (bits[i * 8 + j]) b |= (uint8_t)(0x80 >> j);
        bn_put_u8(w, b);
    }
}
void bn_enc_enum(bn_w *w, uint32_t v) {
    unsigned n = unsigned_len(v);
    bn_enc_tag(w, BN_ENUM, 0, n);
    put_be(w, v, n);
}
void bn_enc_date(bn_w *w, const uint8_t dt[4]) {
    bn_enc_tag(w, BN_DATE, 0, 4);
    bn_put(w, dt, 4);
}
void bn_enc_time(bn_w *w, const uint8_t dt[4]) {
    bn_enc_tag(w, BN_TIME, 0, 4);
    bn_put(w, dt, 4);
}
void bn_enc_oid(bn_w *w, uint16_t type, uint32_t inst) {
    bn_enc_tag(w, BN_OID, 0, 4);
    put_be(w, ((uint32_t)type << 22) | (inst & BN_MAX_INST), 4);
}

void bn_enc_value(bn_w *w, const bn_value *v) {
    switch (v->type) {
    case BN_NULL:
        bn_enc_null(w);
        break;
    case BN_BOOLEAN:
        bn_enc_bool(w, v->v.b);
        break;
    case BN_UNSIGNED:
        bn_enc_unsigned(w, v->v.u);
        break;
    case BN_SIGNED:
        bn_enc_signed(w, v->v.i);
        break;
    case BN_REAL:
        bn_enc_real(w, v->v.r);
        break;
    case BN_DOUBLE:
        bn_enc_double(w, v->v.d);
        break;
    case BN_OCTETS:
        bn_enc_octets(w, v->data, v->len);
        break;
    case BN_CHARSTR:
        bn_enc_charstr(w, (const char *)v->data, v->len);
        break;
    case BN_ENUM:
        bn_enc_enum(w, (uint32_t)v->v.u);
        break;
    case BN_DATE:
        bn_enc_date(w, v->v.dt);
        break;
    case BN_TIME:
        bn_enc_time(w, v->v.dt);
        break;
    case BN_OID:
        bn_enc_oid(w, v->v.oid.type, v->v.oid.inst);
        break;
    case BN_BITSTR:
        bn_enc_tag(w, BN_BITSTR, 0, (uint32_t)v->len + 1);
        bn_put_u8(w, v->unused);
        bn_put(w, v->data, v->len);
        break;
    default:
        w->overflow = 1;
        break;
    }
}

void bn_enc_ctx_unsigned(bn_w *w, unsigned tag, uint64_t v) {
    unsigned n = unsigned_len(v);
    bn_enc_tag(w, tag, 1, n);
    put_be(w, v, n);
}
void bn_enc_ctx_enum(bn_w *w, unsigned tag, uint32_t v) {
    bn_enc_ctx_unsigned(w, tag, v);
}
void bn_enc_ctx_oid(bn_w *w, unsigned tag, uint16_t type, uint32_t inst) {
    bn_enc_tag(w, tag, 1, 4);
    put_be(w, ((uint32_t)type << 22) | (inst & BN_MAX_INST), 4);
}
void bn_enc_ctx_bool(bn_w *w, unsigned tag, int b) {
    bn_enc_tag(w, tag, 1, 1);
    bn_put_u8(w, b ? 1 : 0);
}

/* ---- reader ---- */

int bn_dec_tag(const uint8_t *p, size_t n, size_t *off, bn_tag *t) {
    size_t o = *off;
    if (o >= n) return -1;
    uint8_t first = p[o++];
    memset(t, 0, sizeof *t);
    t->num = first >> 4;
    t->context = (first & 0x08) != 0;
    if (t->num == 15) {
        if (o >= n) return -1;
        t->num = p[o++];
    }
    uint32_t lvt = first & 0x07;
    if (t->context && lvt == 6) {
        t->open = 1;
    } else if (t->context && lvt == 7) {
        t->close = 1;
    } else if (lvt == 5) {
        if (o >= n) return -1;
        uint8_t b = p[o++];
        if (b == 254) {
            if (n - o < 2) return -1;
            lvt = ((uint32_t)p[o] << 8) | p[o + 1];
            o += 2;
        } else if (b == 255) {
            if (n - o < 4) return -1;
            lvt = ((uint32_t)p[o] << 24) | ((uint32_t)p[o + 1] << 16) | ((uint32_t)p[o + 2] << 8) | p[o + 3];
            o += 4;
        } else {
            lvt = b;
        }
    }
    t->len = (t->open || t->close) ? 0 : lvt;
    /* an application boolean carries its value in the length field */
    if (!t->context && t->num == BN_BOOLEAN) {
        if (lvt > 1) return -1;
    } else if (!t->open && !t->close && t->len > n - o) {
        return -1;
    }
    *off = o;
    return 0;
}

uint64_t bn_raw_unsigned(const uint8_t *p, size_t len) {
    uint64_t v = 0;
    for (size_t i = 0; i < len && i < 8; i++) v = (v << 8) | p[i];
    return v;
}

static int dec_app(const uint8_t *c, const bn_tag *t, bn_value *out) {
    size_t len = t->len;
    switch (t->num) {
    case BN_NULL:
        return len == 0 ? 0 : -1;
    case BN_BOOLEAN:
        out->v.b = (int)t->len;
        return 0;
    case BN_UNSIGNED:
    case BN_ENUM:
        if (len < 1 || len > 8) return -1;
        out->v.u = bn_raw_unsigned(c, len);
        return 0;
    case BN_SIGNED: {
        if (len < 1 || len > 8) return -1;
        uint64_t u = bn_raw_unsigned(c, len);
        if (len < 8 && (c[0] & 0x80)) u |= ~(uint64_t)0 << (8 * len);
        out->v.i = (int64_t)u;
        return 0;
    }
    case BN_REAL: {
        if (len != 4) return -1;
        uint32_t u = (uint32_t)bn_raw_unsigned(c, 4);
        memcpy(&out->v.r, &u, 4);
        return 0;
    }
    case BN_DOUBLE: {
        if (len != 8) return -1;
        uint64_t u = bn_raw_unsigned(c, 8);
        memcpy(&out->v.d, &u, 8);
        return 0;
    }
    case BN_OCTETS:
        out->data = c;
        out->len = len;
        return 0;
    case BN_CHARSTR:
        if (len < 1) return -1;
        out->charset = c[0];
        out->data = c + 1;
        out->len = len - 1;
        return 0;
    case BN_BITSTR:
        if (len < 1 || c[0] > 7 || (len == 1 && c[0] != 0)) return -1;
        out->unused = c[0];
        out->data = c + 1;
        out->len = len - 1;
        return 0;
    case BN_DATE:
    case BN_TIME:
        if (len != 4) return -1;
        memcpy(out->v.dt, c, 4);
        return 0;
    case BN_OID: {
        if (len != 4) return -1;
        uint32_t u = (uint32_t)bn_raw_unsigned(c, 4);
        out->v.oid.type = (uint16_t)(u >> 22);
        out->v.oid.inst = u & BN_MAX_INST;
        return 0;
    }
    default:
        return -1; /* reserved application tags */
    }
}

int bn_dec_item(const uint8_t *p, size_t n, size_t *off, bn_value *out) {
    bn_tag t;
    size_t o = *off;
    if (bn_dec_tag(p, n, &o, &t) != 0) return -1;
    memset(out, 0, sizeof *out);
    if (t.open || t.close) {
        out->type = t.open ? BN_OPEN : BN_CLOSE;
        out->ctx = (uint8_t)t.num;
        *off = o;
        return 0;
    }
    if (t.context) {
        out->type = BN_CTXPRIM;
        out->ctx = (uint8_t)t.num;
        out->data = p + o;
        out->len = t.len;
        *off = o + t.len;
        return 0;
    }
    out->type = (uint8_t)t.num;
    if (dec_app(p + o, &t, out) != 0) return -1;
    *off = o + (t.num == BN_BOOLEAN ? 0 : t.len);
    return 0;
}

int bn_dec_until_close(const uint8_t *p, size_t n, size_t *off, unsigned ctx, bn_value *out, size_t cap) {
    size_t o = *off, cnt = 0;
    int depth = 0;
    for (;;) {
        bn_value v;
        if (bn_dec_item(p, n, &o, &v) != 0) return -1;
        if (v.type == BN_CLOSE) {
            if (depth == 0) {
                if (v.ctx != ctx) return -1;
                break;
            }
            depth--;
        } else if (v.type == BN_OPEN) {
            if (++depth > 16) return -1;
        }
        if (cnt == cap) return -2;
        out[cnt++] = v;
    }
    *off = o;
    return (int)cnt;
}

int bn_peek_ctx(const uint8_t *p, size_t n, size_t off, unsigned tag) {
    bn_tag t;
    return bn_dec_tag(p, n, &off, &t) == 0 && t.context && !t.open && !t.close && t.num == tag;
}
int bn_peek_open(const uint8_t *p, size_t n, size_t off, unsigned tag) {
    bn_tag t;
    return bn_dec_tag(p, n, &off, &t) == 0 && t.open && t.num == tag;
}
int bn_peek_close(const uint8_t *p, size_t n, size_t off, unsigned tag) {
    bn_tag t;
    return bn_dec_tag(p, n, &off, &t) == 0 && t.close && t.num == tag;
}

int bn_dec_ctx_unsigned(const uint8_t *p, size_t n, size_t *off, unsigned tag, uint64_t *v) {
    bn_tag t;
    size_t o = *off;
    if (bn_dec_tag(p, n, &o, &t) != 0 || !t.context || t.open || t.close || t.num != tag) return -1;
    if (t.len < 1 || t.len > 8) return -1;
    *v = bn_raw_unsigned(p + o, t.len);
    *off = o + t.len;
    return 0;
}

int bn_dec_ctx_oid(const uint8_t *p, size_t n, size_t *off, unsigned tag, uint16_t *type, uint32_t *inst) {
    bn_tag t;
    size_t o = *off;
    if (bn_dec_tag(p, n, &o, &t) != 0 || !t.context || t.open || t.close || t.num != tag || t.len != 4)
        return -1;
    uint32_t u = (uint32_t)bn_raw_unsigned(p + o, 4);
    *type = (uint16_t)(u >> 22);
    *inst = u & BN_MAX_INST;
    *off = o + 4;
    return 0;
}
