/* UA-TCP framing and message chunking (Part 6 §6.7, §7.1). */
#include "proto/opcua/ua_chunk.h"

#include <string.h>
#include <tbgw/err.h>

static const char *const frame_types[] = {"MSG", "OPN", "CLO", "HEL", "ACK", "ERR", "RHE"};

static int frame_type_index(const uint8_t *p) {
    for (size_t i = 0; i < sizeof frame_types / sizeof frame_types[0]; i++)
        if (memcmp(p, frame_types[i], 3) == 0) return (int)i;
    return -1;
}

static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

int64_t tbgw_ua_frame_size(const uint8_t *p, size_t n, uint32_t max_size) {
    if (n < TBGW_UA_HEADER_LEN) return TBGW_EAGAIN;
    int t = frame_type_index(p);
    if (t < 0) return TBGW_EPROTO;
    uint8_t flag = p[3];
    if (t <= 2) {
        if (flag != 'F' && flag != 'C' && flag != 'A') return TBGW_EPROTO;
    } else if (flag != 'F') {
        return TBGW_EPROTO;
    }
    uint32_t size = rd32(p + 4);
    uint32_t min = t <= 2 ? TBGW_UA_SYM_HDR_LEN : TBGW_UA_HEADER_LEN;
    if (size < min || (max_size && size > max_size)) return TBGW_EPROTO;
    return size;
}

/* Reads a length-prefixed ByteString/String field in place (no copy). */
static int field(tbgw_ua_dec *d, const uint8_t **p, int32_t *len) {
    int32_t n = tbgw_ua_dec_i32(d);
    if (d->err) return d->err;
    *len = n < 0 ? -1 : n;
    *p = NULL;
    if (n > 0) {
        if ((size_t)n > tbgw_ua_dec_left(d)) return d->err = TBGW_EPROTO;
        *p = d->p + d->pos;
        d->pos += (size_t)n;
    }
    return 0;
}

int tbgw_ua_chunk_parse(const uint8_t *frame, size_t n, tbgw_ua_chunk *out) {
    memset(out, 0, sizeof *out);
    int64_t size = tbgw_ua_frame_size(frame, n, 0);
    if (size < 0) return (int)size;
    if ((size_t)size != n) return TBGW_EPROTO;
    memcpy(out->type, frame, 3);
    out->flag = (char)frame[3];
    out->size = (uint32_t)size;
    tbgw_ua_dec d;
    tbgw_ua_dec_init(&d, frame, n);
    tbgw_ua_dec_skip(&d, TBGW_UA_HEADER_LEN);
    int t = frame_type_index(frame);
    if (t >= 3) { /* HEL, ACK, ERR, RHE: body follows the header */
        out->body = frame + TBGW_UA_HEADER_LEN;
        out->body_len = n - TBGW_UA_HEADER_LEN;
        return 0;
    }
    out->channel_id = tbgw_ua_dec_u32(&d);
    if (t == 1) { /* OPN: asymmetric security header */
        if (field(&d, &out->policy_uri, &out->policy_uri_len) ||
            field(&d, &out->sender_cert, &out->sender_cert_len) ||
            field(&d, &out->receiver_thumb, &out->receiver_thumb_len))
            return TBGW_EPROTO;
    } else {
        out->token_id = tbgw_ua_dec_u32(&d);
    }
    out->secured_offset = d.pos;
    out->seq_num = tbgw_ua_dec_u32(&d);
    out->request_id = tbgw_ua_dec_u32(&d);
    if (d.err) return TBGW_EPROTO;
    out->body = frame + d.pos;
    out->body_len = n - d.pos;
    return 0;
}

static void put_header(tbgw_buf *b, const char *type, char flag, uint32_t size) {
    tbgw_buf_append(b, type, 3);
    tbgw_buf_putc(b, flag);
    tbgw_ua_enc_u32(b, size);
}

/* Patches the size field of a frame that started at offset start. */
static void patch_size(tbgw_buf *b, size_t start) {
    if (b->oom) return;
    uint32_t size = (uint32_t)(b->len - start);
    uint8_t *p = (uint8_t *)b->p + start + 4;
    p[0] = (uint8_t)size, p[1] = (uint8_t)(size >> 8), p[2] = (uint8_t)(size >> 16),
    p[3] = (uint8_t)(size >> 24);
}

void tbgw_ua_hello_encode(tbgw_buf *b, const tbgw_ua_hello *h) {
    size_t start = b->len;
    put_header(b, "HEL", 'F', 0);
    tbgw_ua_enc_u32(b, h->version);
    tbgw_ua_enc_u32(b, h->recv_buf);
    tbgw_ua_enc_u32(b, h->send_buf);
    tbgw_ua_enc_u32(b, h->max_msg);
    tbgw_ua_enc_u32(b, h->max_chunks);
    tbgw_ua_enc_cstr(b, h->url);
    patch_size(b, start);
}

int tbgw_ua_ack_decode(const uint8_t *body, size_t n, tbgw_ua_ack *out) {
    tbgw_ua_dec d;
    tbgw_ua_dec_init(&d, body, n);
    out->version = tbgw_ua_dec_u32(&d);
    out->recv_buf = tbgw_ua_dec_u32(&d);
    out->send_buf = tbgw_ua_dec_u32(&d);
    out->max_msg = tbgw_ua_dec_u32(&d);
    out->max_chunks = tbgw_ua_dec_u32(&d);
    if (d.err) return TBGW_EPROTO;
    if (out->recv_buf < TBGW_UA_MIN_BUFFER || out->send_buf < TBGW_UA_MIN_BUFFER) return TBGW_EPROTO;
    return 0;
}

int tbgw_ua_err_decode(const uint8_t *body, size_t n, uint32_t *status, char *reason, size_t reason_cap) {
    tbgw_ua_dec d;
    tbgw_ua_dec_init(&d, body, n);
    *status = tbgw_ua_dec_u32(&d);
    if (reason && reason_cap) reason[0] = 0;
    int32_t len = tbgw_ua_dec_i32(&d);
    if (d.err) return TBGW_EPROTO;
    if (len > 0) {
        if ((size_t)len > tbgw_ua_dec_left(&d)) return TBGW_EPROTO;
        if (reason && reason_cap) {
            size_t k = (size_t)len < reason_cap - 1 ? (size_t)len : reason_cap - 1;
            memcpy(reason, d.p + d.pos, k);
            reason[k] = 0;
        }
    }
    return 0;
}

void tbgw_ua_err_encode(tbgw_buf *b, uint32_t status, const char *reason) {
    size_t start = b->len;
    put_header(b, "ERR", 'F', 0);
    tbgw_ua_enc_u32(b, status);
    tbgw_ua_enc_cstr(b, reason);
    patch_size(b, start);
}

int tbgw_ua_chunk_split(tbgw_buf *out, const char *type, uint32_t channel_id, uint32_t token_id,
                        uint32_t *seq, uint32_t request_id, const uint8_t *body, size_t n,
                        uint32_t chunk_size, uint32_t max_chunks) {
    size_t overhead = TBGW_UA_SYM_HDR_LEN + TBGW_UA_SEQ_HDR_LEN;
    if (chunk_size <= overhead) return TBGW_EINVAL;
    size_t room = chunk_size - overhead;
    size_t chunks = n == 0 ? 1 : (n + room - 1) / room;
    if (max_chunks && chunks > max_chunks) return TBGW_EINVAL;
    size_t off = 0;
    for (size_t i = 0; i < chunks; i++) {
        size_t part = n - off < room ? n - off : room;
        size_t start = out->len;
        put_header(out, type, i + 1 == chunks ? 'F' : 'C', 0);
        tbgw_ua_enc_u32(out, channel_id);
        tbgw_ua_enc_u32(out, token_id);
        tbgw_ua_enc_u32(out, (*seq)++);
        tbgw_ua_enc_u32(out, request_id);
        if (part) tbgw_buf_append(out, body + off, part);
        patch_size(out, start);
        off += part;
    }
    return out->oom ? TBGW_ENOMEM : 0;
}

int tbgw_ua_chunk_opn(tbgw_buf *out, uint32_t channel_id, const char *policy_uri, uint32_t *seq,
                      uint32_t request_id, const uint8_t *body, size_t n) {
    size_t start = out->len;
    put_header(out, "OPN", 'F', 0);
    tbgw_ua_enc_u32(out, channel_id);
    tbgw_ua_enc_cstr(out, policy_uri);
    tbgw_ua_enc_raw_bytes(out, NULL, -1); /* sender certificate */
    tbgw_ua_enc_raw_bytes(out, NULL, -1); /* receiver thumbprint */
    tbgw_ua_enc_u32(out, (*seq)++);
    tbgw_ua_enc_u32(out, request_id);
    tbgw_buf_append(out, body, n);
    patch_size(out, start);
    return out->oom ? TBGW_ENOMEM : 0;
}

/* ------------------------------------------------------------------ assembler */

void tbgw_ua_asm_init(tbgw_ua_assembler *a, uint32_t max_msg, uint32_t max_chunks) {
    memset(a, 0, sizeof *a);
    for (int i = 0; i < TBGW_UA_ASM_SLOTS; i++) tbgw_buf_init(&a->slot[i].body);
    tbgw_buf_init(&a->done);
    a->max_msg = max_msg;
    a->max_chunks = max_chunks;
}

void tbgw_ua_asm_free(tbgw_ua_assembler *a) {
    for (int i = 0; i < TBGW_UA_ASM_SLOTS; i++) tbgw_buf_free(&a->slot[i].body);
    tbgw_buf_free(&a->done);
    memset(a, 0, sizeof *a);
}

static void slot_release(tbgw_ua_assembler *a, int i) {
    a->slot[i].used = 0;
    a->slot[i].chunks = 0;
    tbgw_buf_reset(&a->slot[i].body);
}

static int slot_find(tbgw_ua_assembler *a, uint32_t request_id, int create) {
    int free_slot = -1;
    for (int i = 0; i < TBGW_UA_ASM_SLOTS; i++) {
        if (a->slot[i].used && a->slot[i].request_id == request_id) return i;
        if (!a->slot[i].used && free_slot < 0) free_slot = i;
    }
    if (!create || free_slot < 0) return -1;
    a->slot[free_slot].used = 1;
    a->slot[free_slot].request_id = request_id;
    a->slot[free_slot].chunks = 0;
    tbgw_buf_reset(&a->slot[free_slot].body);
    return free_slot;
}

static void finish(tbgw_ua_assembler *a, int i, const uint8_t **msg, size_t *len) {
    tbgw_buf tmp = a->done;
    a->done = a->slot[i].body;
    a->slot[i].body = tmp;
    slot_release(a, i);
    *msg = (const uint8_t *)a->done.p;
    *len = a->done.len;
}

int tbgw_ua_asm_feed(tbgw_ua_assembler *a, const tbgw_ua_chunk *c, const uint8_t **msg, size_t *len,
                     uint32_t *request_id) {
    *msg = NULL;
    *len = 0;
    *request_id = c->request_id;
    if (c->flag == 'A') {
        int i = slot_find(a, c->request_id, 0);
        if (i >= 0) slot_release(a, i);
        tbgw_buf_reset(&a->done);
        if (tbgw_buf_append(&a->done, c->body, c->body_len)) return TBGW_ENOMEM;
        *msg = (const uint8_t *)a->done.p;
        *len = a->done.len;
        return 2;
    }
    if (c->flag != 'F' && c->flag != 'C') return TBGW_EPROTO;
    int i = slot_find(a, c->request_id, 1);
    if (i < 0) return TBGW_EFULL;
    if (a->max_chunks && a->slot[i].chunks + 1 > a->max_chunks) goto too_big;
    if (a->max_msg && a->slot[i].body.len + c->body_len > a->max_msg) goto too_big;
    a->slot[i].chunks++;
    if (c->body_len && tbgw_buf_append(&a->slot[i].body, c->body, c->body_len)) {
        slot_release(a, i);
        return TBGW_ENOMEM;
    }
    if (c->flag == 'C') return 0;
    finish(a, i, msg, len);
    return 1;
too_big:
    slot_release(a, i);
    return TBGW_EFULL;
}
