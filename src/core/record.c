#include "core/record.h"

#include <stdlib.h>
#include <string.h>
#include <tbgw/err.h>

#include "util/buf.h"

typedef struct rec_builder {
    tbgw_buf tel, attr, out;
    uint32_t dp;
    const tbgw_converted *c;
    uint8_t flags;
    size_t limit;
    tbgw_record_sink sink;
    void *ud;
} rec_builder;

static void put_u16(tbgw_buf *b, uint16_t v) {
    uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    tbgw_buf_append(b, x, 2);
}

static void put_u32(tbgw_buf *b, uint32_t v) {
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    tbgw_buf_append(b, x, 4);
}

static int flush(rec_builder *rb) {
    if (rb->tel.len == 0 && rb->attr.len == 0) return 0;
    tbgw_buf *o = &rb->out;
    tbgw_buf_reset(o);
    size_t nl = strlen(rb->c->device_name), tl = strlen(rb->c->device_type);
    if (nl > 65535) nl = 65535;
    if (tl > 65535) tl = 65535;
    tbgw_buf_putc(o, 'T');
    tbgw_buf_putc(o, (char)rb->flags);
    put_u16(o, (uint16_t)nl);
    tbgw_buf_append(o, rb->c->device_name, nl);
    put_u16(o, (uint16_t)tl);
    tbgw_buf_append(o, rb->c->device_type, tl);
    put_u32(o, rb->dp);
    put_u32(o, (uint32_t)rb->tel.len);
    tbgw_buf_append(o, rb->tel.p, rb->tel.len);
    put_u32(o, (uint32_t)rb->attr.len);
    tbgw_buf_append(o, rb->attr.p, rb->attr.len);
    if (o->oom || rb->tel.oom || rb->attr.oom) return TBGW_ENOMEM;
    int rc = rb->sink(rb->ud, o->p, o->len);
    tbgw_buf_reset(&rb->tel);
    tbgw_buf_reset(&rb->attr);
    rb->dp = 0;
    return rc;
}

static int member(tbgw_buf *b, const tbgw_kv *kv) {
    tbgw_buf_json_str(b, kv->key);
    tbgw_buf_putc(b, ':');
    return tbgw_buf_json_value(b, &kv->v);
}

static int add_attributes(rec_builder *rb, tbgw_buf *m) {
    for (size_t i = 0; i < rb->c->n_attributes; i++) {
        tbgw_buf_reset(m);
        member(m, &rb->c->attributes[i]);
        if (rb->attr.len + rb->tel.len + m->len + 1 > rb->limit && (rb->attr.len || rb->tel.len)) {
            int rc = flush(rb);
            if (rc) return rc;
        }
        if (rb->attr.len) tbgw_buf_putc(&rb->attr, ',');
        tbgw_buf_append(&rb->attr, m->p, m->len);
        rb->dp++;
    }
    return 0;
}

/* Writes one {"ts":T,"values":{...}} group for the entries with ts == T starting at index from;
 * splits into several groups (and records) when it would not fit. done[] marks consumed entries. */
static int add_group(rec_builder *rb, size_t from, char *done, tbgw_buf *m, tbgw_buf *g) {
    const tbgw_converted *c = rb->c;
    int64_t ts = c->telemetry[from].ts;
    size_t i = from;
    while (i < c->n_telemetry) {
        tbgw_buf_reset(g);
        tbgw_buf_puts(g, "{\"ts\":");
        tbgw_buf_i64(g, ts);
        tbgw_buf_puts(g, ",\"values\":{");
        size_t head = g->len;
        uint32_t dp = 0;
        for (; i < c->n_telemetry; i++) {
            if (done[i] || c->telemetry[i].ts != ts) continue;
            tbgw_buf_reset(m);
            member(m, &c->telemetry[i]);
            size_t used = rb->attr.len + rb->tel.len + (rb->tel.len ? 1 : 0);
            if (g->len > head && used + g->len + m->len + 3 > rb->limit) break; /* group full */
            if (g->len > head) tbgw_buf_putc(g, ',');
            tbgw_buf_append(g, m->p, m->len);
            done[i] = 1;
            dp++;
        }
        tbgw_buf_puts(g, "}}");
        size_t used = rb->attr.len + rb->tel.len + (rb->tel.len ? 1 : 0);
        if (used + g->len > rb->limit && (rb->tel.len || rb->attr.len)) {
            int rc = flush(rb);
            if (rc) return rc;
        }
        if (rb->tel.len) tbgw_buf_putc(&rb->tel, ',');
        tbgw_buf_append(&rb->tel, g->p, g->len);
        rb->dp += dp;
        if (i < c->n_telemetry) {
            int rc = flush(rb);
            if (rc) return rc;
        }
    }
    return 0;
}

/* The encoder's buffers come from the thread's scratch pool: encoding a record (the core encodes
 * one per converted message) allocates nothing once the pool is warm. */
int tbgw_record_encode(const tbgw_converted *c, uint8_t flags, size_t max_payload, tbgw_record_sink sink,
                       void *ud) {
    rec_builder rb = {.c = c, .flags = flags, .sink = sink, .ud = ud};
    tbgw_buf m, g;
    tbgw_buf_scratch_take(&m);
    tbgw_buf_scratch_take(&g);
    tbgw_buf_scratch_take(&rb.tel);
    tbgw_buf_scratch_take(&rb.attr);
    tbgw_buf_scratch_take(&rb.out);
    size_t overhead = strlen(c->device_name) * 2 + 48; /* {"name":[ ... ]} with escaping slack */
    rb.limit = max_payload > overhead + 64 ? max_payload - overhead : 64;
    int rc = add_attributes(&rb, &m);
    char small[64];
    char *done = c->n_telemetry <= sizeof small ? small : malloc(c->n_telemetry);
    if (!done) rc = TBGW_ENOMEM;
    if (!rc) {
        memset(done, 0, c->n_telemetry);
        for (size_t i = 0; i < c->n_telemetry && !rc; i++)
            if (!done[i]) rc = add_group(&rb, i, done, &m, &g);
    }
    if (!rc) rc = flush(&rb);
    if (done != small) free(done);
    tbgw_buf_scratch_give(&m);
    tbgw_buf_scratch_give(&g);
    tbgw_buf_scratch_give(&rb.tel);
    tbgw_buf_scratch_give(&rb.attr);
    tbgw_buf_scratch_give(&rb.out);
    return rc;
}

static int get_u16(const uint8_t *p, size_t n, size_t *off, uint16_t *v) {
    if (n - *off < 2) return -1;
    *v = (uint16_t)(p[*off] | (p[*off + 1] << 8));
    *off += 2;
    return 0;
}

static int get_u32(const uint8_t *p, size_t n, size_t *off, uint32_t *v) {
    if (n - *off < 4) return -1;
    *v = (uint32_t)p[*off] | ((uint32_t)p[*off + 1] << 8) | ((uint32_t)p[*off + 2] << 16) |
         ((uint32_t)p[*off + 3] << 24);
    *off += 4;
    return 0;
}

int tbgw_record_decode(const uint8_t *p, size_t n, tbgw_record_view *v) {
    size_t off = 2;
    memset(v, 0, sizeof *v);
    if (n < 2 || p[0] != 'T') return TBGW_EPROTO;
    v->flags = p[1];
    if (get_u16(p, n, &off, &v->name_len) || n - off < v->name_len) return TBGW_EPROTO;
    v->name = (const char *)p + off;
    off += v->name_len;
    if (get_u16(p, n, &off, &v->type_len) || n - off < v->type_len) return TBGW_EPROTO;
    v->type = (const char *)p + off;
    off += v->type_len;
    if (get_u32(p, n, &off, &v->datapoints)) return TBGW_EPROTO;
    if (get_u32(p, n, &off, &v->tel_len) || n - off < v->tel_len) return TBGW_EPROTO;
    v->tel = (const char *)p + off;
    off += v->tel_len;
    if (get_u32(p, n, &off, &v->attr_len) || n - off < v->attr_len) return TBGW_EPROTO;
    v->attr = (const char *)p + off;
    off += v->attr_len;
    if (off != n || (v->tel_len == 0 && v->attr_len == 0) || v->name_len == 0) return TBGW_EPROTO;
    return 0;
}
