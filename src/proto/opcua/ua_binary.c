/* OPC UA binary encoding of the built-in types (Part 6 §5.2). */
#include "proto/opcua/ua_types.h"

#include <stdlib.h>
#include <string.h>
#include <tbgw/err.h>

/* ------------------------------------------------------------------ decoder primitives */

void tbgw_ua_dec_init(tbgw_ua_dec *d, const void *p, size_t len) {
    d->p = p;
    d->len = len;
    d->pos = 0;
    d->err = 0;
    d->depth = 0;
}

size_t tbgw_ua_dec_left(const tbgw_ua_dec *d) {
    return d->err ? 0 : d->len - d->pos;
}

static const uint8_t *take(tbgw_ua_dec *d, size_t n) {
    if (d->err) return NULL;
    if (n > d->len - d->pos) {
        d->err = TBGW_EPROTO;
        return NULL;
    }
    const uint8_t *p = d->p + d->pos;
    d->pos += n;
    return p;
}

void tbgw_ua_dec_skip(tbgw_ua_dec *d, size_t n) {
    (void)take(d, n);
}

uint8_t tbgw_ua_dec_u8(tbgw_ua_dec *d) {
    const uint8_t *p = take(d, 1);
    return p ? p[0] : 0;
}

uint16_t tbgw_ua_dec_u16(tbgw_ua_dec *d) {
    const uint8_t *p = take(d, 2);
    return p ? (uint16_t)(p[0] | (p[1] << 8)) : 0;
}

uint32_t tbgw_ua_dec_u32(tbgw_ua_dec *d) {
    const uint8_t *p = take(d, 4);
    if (!p) return 0;
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

int32_t tbgw_ua_dec_i32(tbgw_ua_dec *d) {
    return (int32_t)tbgw_ua_dec_u32(d);
}

uint64_t tbgw_ua_dec_u64(tbgw_ua_dec *d) {
    uint64_t lo = tbgw_ua_dec_u32(d);
    uint64_t hi = tbgw_ua_dec_u32(d);
    return lo | (hi << 32);
}

int64_t tbgw_ua_dec_i64(tbgw_ua_dec *d) {
    return (int64_t)tbgw_ua_dec_u64(d);
}

double tbgw_ua_dec_double(tbgw_ua_dec *d) {
    uint64_t u = tbgw_ua_dec_u64(d);
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
}

float tbgw_ua_dec_float(tbgw_ua_dec *d) {
    uint32_t u = tbgw_ua_dec_u32(d);
    float v;
    memcpy(&v, &u, sizeof v);
    return v;
}

int32_t tbgw_ua_dec_count(tbgw_ua_dec *d, size_t min_elem_size) {
    int32_t n = tbgw_ua_dec_i32(d);
    if (d->err) return 0;
    if (n < -1 || n > TBGW_UA_MAX_ARRAY) goto bad;
    if (n > 0 && min_elem_size > 0 && (size_t)n > (d->len - d->pos) / min_elem_size) goto bad;
    return n;
bad:
    d->err = TBGW_EPROTO;
    return 0;
}

/* ------------------------------------------------------------------ helpers */

void tbgw_ua_bytes_clear(tbgw_ua_bytes *s) {
    free(s->data);
    s->data = NULL;
    s->len = -1;
}

int tbgw_ua_bytes_set(tbgw_ua_bytes *s, const void *p, size_t n) {
    if (n > INT32_MAX - 1) return TBGW_EINVAL;
    uint8_t *c = malloc(n + 1);
    if (!c) return TBGW_ENOMEM;
    if (n) memcpy(c, p, n);
    c[n] = 0;
    s->data = c;
    s->len = (int32_t)n;
    return 0;
}

static void fail(tbgw_ua_dec *d, int code) {
    if (!d->err) d->err = code;
}

int tbgw_ua_dec_bytes(tbgw_ua_dec *d, tbgw_ua_bytes *out) {
    out->len = -1;
    out->data = NULL;
    int32_t n = tbgw_ua_dec_i32(d);
    if (d->err) return d->err;
    if (n < 0) return 0; /* any negative length is a null string */
    const uint8_t *p = take(d, (size_t)n);
    if (!p) return d->err;
    if (tbgw_ua_bytes_set(out, p, (size_t)n)) fail(d, TBGW_ENOMEM);
    return d->err;
}

/* ------------------------------------------------------------------ NodeId */

static int dec_nodeid_body(tbgw_ua_dec *d, uint8_t form, tbgw_ua_nodeid *out) {
    memset(out, 0, sizeof *out);
    out->str.len = -1;
    switch (form) {
    case 0x00:
        out->num = tbgw_ua_dec_u8(d);
        break;
    case 0x01:
        out->ns = tbgw_ua_dec_u8(d);
        out->num = tbgw_ua_dec_u16(d);
        break;
    case 0x02:
        out->ns = tbgw_ua_dec_u16(d);
        out->num = tbgw_ua_dec_u32(d);
        break;
    case 0x03:
    case 0x05:
        out->ns = tbgw_ua_dec_u16(d);
        out->type = form == 0x03 ? TBGW_UA_ID_STRING : TBGW_UA_ID_BYTESTRING;
        tbgw_ua_dec_bytes(d, &out->str);
        break;
    case 0x04: {
        out->ns = tbgw_ua_dec_u16(d);
        out->type = TBGW_UA_ID_GUID;
        const uint8_t *p = take(d, 16);
        if (p) memcpy(out->guid, p, 16);
        break;
    }
    default:
        fail(d, TBGW_EPROTO);
    }
    return d->err;
}

int tbgw_ua_dec_nodeid(tbgw_ua_dec *d, tbgw_ua_nodeid *out) {
    uint8_t form = tbgw_ua_dec_u8(d);
    if (!d->err && (form & 0xC0)) fail(d, TBGW_EPROTO); /* expanded flags in a plain NodeId */
    dec_nodeid_body(d, form & 0x3F, out);
    if (d->err) tbgw_ua_nodeid_clear(out);
    return d->err;
}

int tbgw_ua_dec_expnodeid(tbgw_ua_dec *d, tbgw_ua_expnodeid *out) {
    memset(out, 0, sizeof *out);
    out->ns_uri.len = -1;
    out->id.str.len = -1;
    uint8_t form = tbgw_ua_dec_u8(d);
    if (d->err) return d->err;
    dec_nodeid_body(d, form & 0x3F, &out->id);
    if (form & 0x80) tbgw_ua_dec_bytes(d, &out->ns_uri);
    if (form & 0x40) out->server_index = tbgw_ua_dec_u32(d);
    if (d->err) tbgw_ua_expnodeid_clear(out);
    return d->err;
}

/* ------------------------------------------------------------------ small structures */

int tbgw_ua_dec_qname(tbgw_ua_dec *d, tbgw_ua_qname *out) {
    out->ns = tbgw_ua_dec_u16(d);
    tbgw_ua_dec_bytes(d, &out->name);
    if (d->err) tbgw_ua_qname_clear(out);
    return d->err;
}

int tbgw_ua_dec_ltext(tbgw_ua_dec *d, tbgw_ua_ltext *out) {
    out->locale.len = out->text.len = -1;
    out->locale.data = out->text.data = NULL;
    uint8_t mask = tbgw_ua_dec_u8(d);
    if (mask & 0x01) tbgw_ua_dec_bytes(d, &out->locale);
    if (mask & 0x02) tbgw_ua_dec_bytes(d, &out->text);
    if (d->err) tbgw_ua_ltext_clear(out);
    return d->err;
}

int tbgw_ua_dec_extobj(tbgw_ua_dec *d, tbgw_ua_extobj *out) {
    memset(out, 0, sizeof *out);
    out->body.len = -1;
    tbgw_ua_dec_nodeid(d, &out->type_id);
    uint8_t enc = tbgw_ua_dec_u8(d);
    if (!d->err) {
        if (enc > 2) fail(d, TBGW_EPROTO);
        out->enc = (tbgw_ua_eo_enc)enc;
        if (enc != 0) tbgw_ua_dec_bytes(d, &out->body);
    }
    if (d->err) tbgw_ua_extobj_clear(out);
    return d->err;
}

int tbgw_ua_dec_diag(tbgw_ua_dec *d, tbgw_ua_diag *out) {
    memset(out, 0, sizeof *out);
    out->additional_info.len = -1;
    if (++d->depth > TBGW_UA_MAX_DEPTH) fail(d, TBGW_EPROTO);
    uint8_t m = tbgw_ua_dec_u8(d);
    out->mask = m;
    if (m & 0x01) out->symbolic_id = tbgw_ua_dec_i32(d);
    if (m & 0x02) out->ns_uri = tbgw_ua_dec_i32(d);
    if (m & 0x08) out->locale = tbgw_ua_dec_i32(d);
    if (m & 0x04) out->localized_text = tbgw_ua_dec_i32(d);
    if (m & 0x10) tbgw_ua_dec_bytes(d, &out->additional_info);
    if (m & 0x20) out->inner_status = tbgw_ua_dec_u32(d);
    if ((m & 0x40) && !d->err) {
        out->inner = calloc(1, sizeof *out->inner);
        if (!out->inner)
            fail(d, TBGW_ENOMEM);
        else
            tbgw_ua_dec_diag(d, out->inner);
    }
    d->depth--;
    if (d->err) tbgw_ua_diag_clear(out);
    return d->err;
}

int tbgw_ua_dec_skip_diags(tbgw_ua_dec *d) {
    int32_t n = tbgw_ua_dec_count(d, 1);
    for (int32_t i = 0; i < n && !d->err; i++) {
        tbgw_ua_diag di;
        if (tbgw_ua_dec_diag(d, &di) == 0) tbgw_ua_diag_clear(&di);
    }
    return d->err;
}

int tbgw_ua_dec_skip_strings(tbgw_ua_dec *d) {
    int32_t n = tbgw_ua_dec_count(d, 4);
    for (int32_t i = 0; i < n && !d->err; i++) {
        int32_t l = tbgw_ua_dec_i32(d);
        if (l > 0) tbgw_ua_dec_skip(d, (size_t)l);
    }
    return d->err;
}

/* ------------------------------------------------------------------ Variant */

/* Smallest encoded size of one element, for count checks. */
static size_t min_size(uint8_t type) {
    static const uint8_t sz[26] = {0, 1,  1, 1, 2, 2, 4, 4, 8, 8, 4, 8, 4,
                                   8, 16, 4, 4, 2, 1, 4, 6, 1, 3, 1, 1, 1};
    return type < 26 ? sz[type] : 1;
}

static void scalar_clear(uint8_t type, tbgw_ua_scalar *s);

/* Types held through a pointer in tbgw_ua_scalar: allocate the box, decode into it. On error the
 * sub-decoder has released its parts and the box is freed here. */
static void dec_boxed(tbgw_ua_dec *d, uint8_t type, tbgw_ua_scalar *s) {
    void **box = type == TBGW_UA_EXTENSIONOBJECT  ? (void **)&s->eo
                 : type == TBGW_UA_DATAVALUE      ? (void **)&s->dv
                 : type == TBGW_UA_VARIANT        ? (void **)&s->var
                 : type == TBGW_UA_DIAGNOSTICINFO ? (void **)&s->diag
                                                  : (void **)&s->nodeid;
    static const size_t sizes[] = {[TBGW_UA_NODEID] = sizeof(tbgw_ua_expnodeid),
                                   [TBGW_UA_EXPANDEDNODEID] = sizeof(tbgw_ua_expnodeid),
                                   [TBGW_UA_EXTENSIONOBJECT] = sizeof(tbgw_ua_extobj),
                                   [TBGW_UA_DATAVALUE] = sizeof(tbgw_ua_datavalue),
                                   [TBGW_UA_VARIANT] = sizeof(tbgw_ua_variant),
                                   [TBGW_UA_DIAGNOSTICINFO] = sizeof(tbgw_ua_diag)};
    *box = calloc(1, sizes[type]);
    if (!*box) {
        fail(d, TBGW_ENOMEM);
        return;
    }
    switch (type) {
    case TBGW_UA_NODEID:
        s->nodeid->ns_uri.len = -1;
        tbgw_ua_dec_nodeid(d, &s->nodeid->id);
        break;
    case TBGW_UA_EXPANDEDNODEID:
        tbgw_ua_dec_expnodeid(d, s->nodeid);
        break;
    case TBGW_UA_EXTENSIONOBJECT:
        tbgw_ua_dec_extobj(d, s->eo);
        break;
    case TBGW_UA_DATAVALUE:
        tbgw_ua_dec_datavalue(d, s->dv);
        break;
    case TBGW_UA_VARIANT:
        tbgw_ua_dec_variant(d, s->var);
        break;
    default:
        tbgw_ua_dec_diag(d, s->diag);
        break;
    }
    if (d->err) {
        free(*box);
        *box = NULL;
    }
}

static int dec_scalar(tbgw_ua_dec *d, uint8_t type, tbgw_ua_scalar *s) {
    memset(s, 0, sizeof *s);
    switch (type) {
    case TBGW_UA_BOOLEAN:
        s->u = tbgw_ua_dec_u8(d) ? 1 : 0;
        break;
    case TBGW_UA_SBYTE:
        s->i = (int8_t)tbgw_ua_dec_u8(d);
        break;
    case TBGW_UA_BYTE:
        s->u = tbgw_ua_dec_u8(d);
        break;
    case TBGW_UA_INT16:
        s->i = (int16_t)tbgw_ua_dec_u16(d);
        break;
    case TBGW_UA_UINT16:
        s->u = tbgw_ua_dec_u16(d);
        break;
    case TBGW_UA_INT32:
        s->i = tbgw_ua_dec_i32(d);
        break;
    case TBGW_UA_UINT32:
        s->u = tbgw_ua_dec_u32(d);
        break;
    case TBGW_UA_INT64:
    case TBGW_UA_DATETIME:
        s->i = tbgw_ua_dec_i64(d);
        break; /* dt aliases i */
    case TBGW_UA_UINT64:
        s->u = tbgw_ua_dec_u64(d);
        break;
    case TBGW_UA_FLOAT:
        s->d = tbgw_ua_dec_float(d);
        break;
    case TBGW_UA_DOUBLE:
        s->d = tbgw_ua_dec_double(d);
        break;
    case TBGW_UA_STATUSCODE:
        s->status = tbgw_ua_dec_u32(d);
        break;
    case TBGW_UA_STRING:
    case TBGW_UA_BYTESTRING:
    case TBGW_UA_XMLELEMENT:
        tbgw_ua_dec_bytes(d, &s->s);
        break;
    case TBGW_UA_GUID: {
        const uint8_t *p = take(d, 16);
        if (p) memcpy(s->guid, p, 16);
        break;
    }
    case TBGW_UA_QUALIFIEDNAME:
        tbgw_ua_dec_qname(d, &s->qn);
        break;
    case TBGW_UA_LOCALIZEDTEXT:
        tbgw_ua_dec_ltext(d, &s->lt);
        break;
    case TBGW_UA_NODEID:
    case TBGW_UA_EXPANDEDNODEID:
    case TBGW_UA_EXTENSIONOBJECT:
    case TBGW_UA_DATAVALUE:
    case TBGW_UA_VARIANT:
    case TBGW_UA_DIAGNOSTICINFO:
        dec_boxed(d, type, s);
        break;
    default:
        fail(d, TBGW_EPROTO);
    }
    if (d->err) memset(s, 0, sizeof *s);
    return d->err;
}

static int dec_variant_body(tbgw_ua_dec *d, uint8_t mask, tbgw_ua_variant *out) {
    uint8_t type = mask & 0x3F;
    if (type > TBGW_UA_DIAGNOSTICINFO) return fail(d, TBGW_EPROTO), d->err;
    out->type = type;
    if (type == 0) return 0;
    int32_t n = 1;
    if (mask & 0x80) {
        out->is_array = 1;
        n = tbgw_ua_dec_count(d, min_size(type));
        out->n = n;
    } else if (type == TBGW_UA_VARIANT) {
        return fail(d, TBGW_EPROTO), d->err; /* a Variant may not directly hold a Variant */
    } else {
        out->n = 1;
    }
    if (d->err) return d->err;
    if (n > 0) {
        out->v = calloc((size_t)n, sizeof *out->v);
        if (!out->v) return fail(d, TBGW_ENOMEM), d->err;
        for (int32_t i = 0; i < n; i++) {
            if (dec_scalar(d, type, &out->v[i])) {
                out->n = i; /* clear what was decoded */
                return d->err;
            }
        }
    }
    if (mask & 0x40) {
        if (!(mask & 0x80)) return fail(d, TBGW_EPROTO), d->err;
        int32_t nd = tbgw_ua_dec_count(d, 4);
        if (!d->err && (nd < 1 || nd > TBGW_UA_MAX_DIMENSION)) fail(d, TBGW_EPROTO);
        if (d->err) return d->err;
        out->dims = calloc((size_t)nd, sizeof *out->dims);
        if (!out->dims) return fail(d, TBGW_ENOMEM), d->err;
        out->n_dims = nd;
        for (int32_t i = 0; i < nd; i++) out->dims[i] = tbgw_ua_dec_i32(d);
    }
    return d->err;
}

int tbgw_ua_dec_variant(tbgw_ua_dec *d, tbgw_ua_variant *out) {
    memset(out, 0, sizeof *out);
    if (++d->depth > TBGW_UA_MAX_DEPTH) fail(d, TBGW_EPROTO);
    uint8_t mask = tbgw_ua_dec_u8(d);
    if (!d->err) dec_variant_body(d, mask, out);
    d->depth--;
    if (d->err) tbgw_ua_variant_clear(out);
    return d->err;
}

int tbgw_ua_dec_datavalue(tbgw_ua_dec *d, tbgw_ua_datavalue *out) {
    memset(out, 0, sizeof *out);
    if (++d->depth > TBGW_UA_MAX_DEPTH) fail(d, TBGW_EPROTO);
    uint8_t m = tbgw_ua_dec_u8(d);
    out->mask = m;
    if ((m & TBGW_UA_DV_VALUE) && !d->err) tbgw_ua_dec_variant(d, &out->value);
    if (m & TBGW_UA_DV_STATUS) out->status = tbgw_ua_dec_u32(d);
    if (m & TBGW_UA_DV_SOURCE_TS) out->source_ts = tbgw_ua_dec_i64(d);
    if (m & TBGW_UA_DV_SOURCE_PICO) out->source_pico = tbgw_ua_dec_u16(d);
    if (m & TBGW_UA_DV_SERVER_TS) out->server_ts = tbgw_ua_dec_i64(d);
    if (m & TBGW_UA_DV_SERVER_PICO) out->server_pico = tbgw_ua_dec_u16(d);
    d->depth--;
    if (d->err) tbgw_ua_datavalue_clear(out);
    return d->err;
}

/* ------------------------------------------------------------------ clear */

static void scalar_clear(uint8_t type, tbgw_ua_scalar *s) {
    switch (type) {
    case TBGW_UA_STRING:
    case TBGW_UA_BYTESTRING:
    case TBGW_UA_XMLELEMENT:
        tbgw_ua_bytes_clear(&s->s);
        break;
    case TBGW_UA_NODEID:
    case TBGW_UA_EXPANDEDNODEID:
        if (s->nodeid) tbgw_ua_expnodeid_clear(s->nodeid);
        free(s->nodeid);
        break;
    case TBGW_UA_QUALIFIEDNAME:
        tbgw_ua_qname_clear(&s->qn);
        break;
    case TBGW_UA_LOCALIZEDTEXT:
        tbgw_ua_ltext_clear(&s->lt);
        break;
    case TBGW_UA_EXTENSIONOBJECT:
        if (s->eo) tbgw_ua_extobj_clear(s->eo);
        free(s->eo);
        break;
    case TBGW_UA_DATAVALUE:
        if (s->dv) tbgw_ua_datavalue_clear(s->dv);
        free(s->dv);
        break;
    case TBGW_UA_VARIANT:
        if (s->var) tbgw_ua_variant_clear(s->var);
        free(s->var);
        break;
    case TBGW_UA_DIAGNOSTICINFO:
        if (s->diag) tbgw_ua_diag_clear(s->diag);
        free(s->diag);
        break;
    default:
        break;
    }
    memset(s, 0, sizeof *s);
}

void tbgw_ua_variant_clear(tbgw_ua_variant *v) {
    if (!v) return;
    for (int32_t i = 0; i < v->n && v->v; i++) scalar_clear(v->type, &v->v[i]);
    free(v->v);
    free(v->dims);
    memset(v, 0, sizeof *v);
}

void tbgw_ua_datavalue_clear(tbgw_ua_datavalue *dv) {
    if (!dv) return;
    tbgw_ua_variant_clear(&dv->value);
    memset(dv, 0, sizeof *dv);
}

void tbgw_ua_nodeid_clear(tbgw_ua_nodeid *id) {
    if (!id) return;
    tbgw_ua_bytes_clear(&id->str);
    memset(id, 0, sizeof *id);
    id->str.len = -1;
}

void tbgw_ua_expnodeid_clear(tbgw_ua_expnodeid *id) {
    if (!id) return;
    tbgw_ua_nodeid_clear(&id->id);
    tbgw_ua_bytes_clear(&id->ns_uri);
    id->server_index = 0;
}

void tbgw_ua_qname_clear(tbgw_ua_qname *q) {
    tbgw_ua_bytes_clear(&q->name);
    q->ns = 0;
}

void tbgw_ua_ltext_clear(tbgw_ua_ltext *t) {
    tbgw_ua_bytes_clear(&t->locale);
    tbgw_ua_bytes_clear(&t->text);
}

void tbgw_ua_extobj_clear(tbgw_ua_extobj *eo) {
    tbgw_ua_nodeid_clear(&eo->type_id);
    tbgw_ua_bytes_clear(&eo->body);
    eo->enc = TBGW_UA_EO_NONE;
}

void tbgw_ua_diag_clear(tbgw_ua_diag *di) {
    if (!di) return;
    tbgw_ua_bytes_clear(&di->additional_info);
    if (di->inner) {
        tbgw_ua_diag_clear(di->inner);
        free(di->inner);
    }
    memset(di, 0, sizeof *di);
    di->additional_info.len = -1;
}

/* ------------------------------------------------------------------ encoder */

static void put(tbgw_buf *b, const void *p, size_t n) {
    tbgw_buf_append(b, p, n);
}

void tbgw_ua_enc_u8(tbgw_buf *b, uint8_t v) {
    put(b, &v, 1);
}

void tbgw_ua_enc_u16(tbgw_buf *b, uint16_t v) {
    uint8_t p[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    put(b, p, 2);
}

void tbgw_ua_enc_u32(tbgw_buf *b, uint32_t v) {
    uint8_t p[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(b, p, 4);
}

void tbgw_ua_enc_i32(tbgw_buf *b, int32_t v) {
    tbgw_ua_enc_u32(b, (uint32_t)v);
}

void tbgw_ua_enc_u64(tbgw_buf *b, uint64_t v) {
    tbgw_ua_enc_u32(b, (uint32_t)v);
    tbgw_ua_enc_u32(b, (uint32_t)(v >> 32));
}

void tbgw_ua_enc_i64(tbgw_buf *b, int64_t v) {
    tbgw_ua_enc_u64(b, (uint64_t)v);
}

void tbgw_ua_enc_double(tbgw_buf *b, double v) {
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    tbgw_ua_enc_u64(b, u);
}

void tbgw_ua_enc_float(tbgw_buf *b, float v) {
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    tbgw_ua_enc_u32(b, u);
}

void tbgw_ua_enc_raw_bytes(tbgw_buf *b, const void *p, int32_t len) {
    if (len < 0 || (!p && len > 0)) {
        tbgw_ua_enc_i32(b, -1);
        return;
    }
    tbgw_ua_enc_i32(b, len);
    if (len) put(b, p, (size_t)len);
}

void tbgw_ua_enc_bytes(tbgw_buf *b, const tbgw_ua_bytes *s) {
    tbgw_ua_enc_raw_bytes(b, s->data, s->len);
}

void tbgw_ua_enc_cstr(tbgw_buf *b, const char *s) {
    if (!s) {
        tbgw_ua_enc_i32(b, -1);
        return;
    }
    size_t n = strlen(s);
    tbgw_ua_enc_raw_bytes(b, s, n > INT32_MAX ? -1 : (int32_t)n);
}

static void enc_nodeid_flags(tbgw_buf *b, const tbgw_ua_nodeid *id, uint8_t flags) {
    switch (id->type) {
    case TBGW_UA_ID_NUMERIC:
        if (id->ns == 0 && id->num <= 0xFF) {
            tbgw_ua_enc_u8(b, flags | 0x00);
            tbgw_ua_enc_u8(b, (uint8_t)id->num);
        } else if (id->ns <= 0xFF && id->num <= 0xFFFF) {
            tbgw_ua_enc_u8(b, flags | 0x01);
            tbgw_ua_enc_u8(b, (uint8_t)id->ns);
            tbgw_ua_enc_u16(b, (uint16_t)id->num);
        } else {
            tbgw_ua_enc_u8(b, flags | 0x02);
            tbgw_ua_enc_u16(b, id->ns);
            tbgw_ua_enc_u32(b, id->num);
        }
        break;
    case TBGW_UA_ID_STRING:
    case TBGW_UA_ID_BYTESTRING:
        tbgw_ua_enc_u8(b, flags | (id->type == TBGW_UA_ID_STRING ? 0x03 : 0x05));
        tbgw_ua_enc_u16(b, id->ns);
        tbgw_ua_enc_bytes(b, &id->str);
        break;
    case TBGW_UA_ID_GUID:
        tbgw_ua_enc_u8(b, flags | 0x04);
        tbgw_ua_enc_u16(b, id->ns);
        put(b, id->guid, 16);
        break;
    }
}

void tbgw_ua_enc_nodeid(tbgw_buf *b, const tbgw_ua_nodeid *id) {
    enc_nodeid_flags(b, id, 0);
}

void tbgw_ua_enc_expnodeid(tbgw_buf *b, const tbgw_ua_expnodeid *id) {
    uint8_t flags = (uint8_t)((id->ns_uri.len >= 0 ? 0x80 : 0) | (id->server_index ? 0x40 : 0));
    enc_nodeid_flags(b, &id->id, flags);
    if (flags & 0x80) tbgw_ua_enc_bytes(b, &id->ns_uri);
    if (flags & 0x40) tbgw_ua_enc_u32(b, id->server_index);
}

void tbgw_ua_enc_qname(tbgw_buf *b, const tbgw_ua_qname *q) {
    tbgw_ua_enc_u16(b, q->ns);
    tbgw_ua_enc_bytes(b, &q->name);
}

void tbgw_ua_enc_ltext(tbgw_buf *b, const tbgw_ua_ltext *t) {
    uint8_t m = (uint8_t)((t->locale.len >= 0 ? 1 : 0) | (t->text.len >= 0 ? 2 : 0));
    tbgw_ua_enc_u8(b, m);
    if (m & 1) tbgw_ua_enc_bytes(b, &t->locale);
    if (m & 2) tbgw_ua_enc_bytes(b, &t->text);
}

void tbgw_ua_enc_extobj(tbgw_buf *b, const tbgw_ua_extobj *eo) {
    tbgw_ua_enc_nodeid(b, &eo->type_id);
    tbgw_ua_enc_u8(b, (uint8_t)eo->enc);
    if (eo->enc != TBGW_UA_EO_NONE) tbgw_ua_enc_bytes(b, &eo->body);
}

void tbgw_ua_enc_diag(tbgw_buf *b, const tbgw_ua_diag *di) {
    uint8_t m = di->mask & 0x7F;
    if (!di->inner) m &= (uint8_t)~0x40;
    tbgw_ua_enc_u8(b, m);
    if (m & 0x01) tbgw_ua_enc_i32(b, di->symbolic_id);
    if (m & 0x02) tbgw_ua_enc_i32(b, di->ns_uri);
    if (m & 0x08) tbgw_ua_enc_i32(b, di->locale);
    if (m & 0x04) tbgw_ua_enc_i32(b, di->localized_text);
    if (m & 0x10) tbgw_ua_enc_bytes(b, &di->additional_info);
    if (m & 0x20) tbgw_ua_enc_u32(b, di->inner_status);
    if (m & 0x40) tbgw_ua_enc_diag(b, di->inner);
}

static int enc_scalar(tbgw_buf *b, uint8_t type, const tbgw_ua_scalar *s, unsigned depth) {
    switch (type) {
    case TBGW_UA_BOOLEAN:
        tbgw_ua_enc_u8(b, s->u ? 1 : 0);
        break;
    case TBGW_UA_SBYTE:
        tbgw_ua_enc_u8(b, (uint8_t)(int8_t)s->i);
        break;
    case TBGW_UA_BYTE:
        tbgw_ua_enc_u8(b, (uint8_t)s->u);
        break;
    case TBGW_UA_INT16:
        tbgw_ua_enc_u16(b, (uint16_t)(int16_t)s->i);
        break;
    case TBGW_UA_UINT16:
        tbgw_ua_enc_u16(b, (uint16_t)s->u);
        break;
    case TBGW_UA_INT32:
        tbgw_ua_enc_i32(b, (int32_t)s->i);
        break;
    case TBGW_UA_UINT32:
        tbgw_ua_enc_u32(b, (uint32_t)s->u);
        break;
    case TBGW_UA_INT64:
        tbgw_ua_enc_i64(b, s->i);
        break;
    case TBGW_UA_UINT64:
        tbgw_ua_enc_u64(b, s->u);
        break;
    case TBGW_UA_FLOAT:
        tbgw_ua_enc_float(b, (float)s->d);
        break;
    case TBGW_UA_DOUBLE:
        tbgw_ua_enc_double(b, s->d);
        break;
    case TBGW_UA_DATETIME:
        tbgw_ua_enc_i64(b, s->dt);
        break;
    case TBGW_UA_STATUSCODE:
        tbgw_ua_enc_u32(b, s->status);
        break;
    case TBGW_UA_STRING:
    case TBGW_UA_BYTESTRING:
    case TBGW_UA_XMLELEMENT:
        tbgw_ua_enc_bytes(b, &s->s);
        break;
    case TBGW_UA_GUID:
        put(b, s->guid, 16);
        break;
    case TBGW_UA_NODEID:
        if (!s->nodeid) return TBGW_EINVAL;
        tbgw_ua_enc_nodeid(b, &s->nodeid->id);
        break;
    case TBGW_UA_EXPANDEDNODEID:
        if (!s->nodeid) return TBGW_EINVAL;
        tbgw_ua_enc_expnodeid(b, s->nodeid);
        break;
    case TBGW_UA_QUALIFIEDNAME:
        tbgw_ua_enc_qname(b, &s->qn);
        break;
    case TBGW_UA_LOCALIZEDTEXT:
        tbgw_ua_enc_ltext(b, &s->lt);
        break;
    case TBGW_UA_EXTENSIONOBJECT:
        if (!s->eo) return TBGW_EINVAL;
        tbgw_ua_enc_extobj(b, s->eo);
        break;
    case TBGW_UA_DATAVALUE:
        if (!s->dv || depth > TBGW_UA_MAX_DEPTH) return TBGW_EINVAL;
        return tbgw_ua_enc_datavalue(b, s->dv);
    case TBGW_UA_VARIANT:
        if (!s->var || depth > TBGW_UA_MAX_DEPTH) return TBGW_EINVAL;
        return tbgw_ua_enc_variant(b, s->var);
    case TBGW_UA_DIAGNOSTICINFO:
        if (!s->diag) return TBGW_EINVAL;
        tbgw_ua_enc_diag(b, s->diag);
        break;
    default:
        return TBGW_EINVAL;
    }
    return b->oom ? TBGW_ENOMEM : 0;
}

int tbgw_ua_enc_variant(tbgw_buf *b, const tbgw_ua_variant *v) {
    if (v->type > TBGW_UA_DIAGNOSTICINFO) return TBGW_EINVAL;
    if (v->type == 0) {
        tbgw_ua_enc_u8(b, 0);
        return b->oom ? TBGW_ENOMEM : 0;
    }
    uint8_t mask = v->type;
    if (v->is_array) mask |= 0x80;
    if (v->is_array && v->n_dims > 0) mask |= 0x40;
    if (!v->is_array && (v->n != 1 || !v->v || v->type == TBGW_UA_VARIANT)) return TBGW_EINVAL;
    tbgw_ua_enc_u8(b, mask);
    if (v->is_array) tbgw_ua_enc_i32(b, v->n < 0 ? -1 : v->n);
    for (int32_t i = 0; i < v->n; i++) {
        int rc = enc_scalar(b, v->type, &v->v[i], 1);
        if (rc) return rc;
    }
    if (mask & 0x40) {
        tbgw_ua_enc_i32(b, v->n_dims);
        for (int32_t i = 0; i < v->n_dims; i++) tbgw_ua_enc_i32(b, v->dims[i]);
    }
    return b->oom ? TBGW_ENOMEM : 0;
}

int tbgw_ua_enc_datavalue(tbgw_buf *b, const tbgw_ua_datavalue *dv) {
    uint8_t m = dv->mask & 0x3F;
    tbgw_ua_enc_u8(b, m);
    if (m & TBGW_UA_DV_VALUE) {
        int rc = tbgw_ua_enc_variant(b, &dv->value);
        if (rc) return rc;
    }
    if (m & TBGW_UA_DV_STATUS) tbgw_ua_enc_u32(b, dv->status);
    if (m & TBGW_UA_DV_SOURCE_TS) tbgw_ua_enc_i64(b, dv->source_ts);
    if (m & TBGW_UA_DV_SOURCE_PICO) tbgw_ua_enc_u16(b, dv->source_pico);
    if (m & TBGW_UA_DV_SERVER_TS) tbgw_ua_enc_i64(b, dv->server_ts);
    if (m & TBGW_UA_DV_SERVER_PICO) tbgw_ua_enc_u16(b, dv->server_pico);
    return b->oom ? TBGW_ENOMEM : 0;
}
