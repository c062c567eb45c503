/* Encoding and decoding of the file storage's segment headers, frames and state slots. */
#include "storage/file_format.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/crc32.h"

#define SEG_MAGIC   "TBGWSEG1"
#define STATE_MAGIC "TBGWSTA1"
#define SEG_VERSION 1u
#define READ_CHUNK  (256u << 10)

static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p) {
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

void tbgw_seg_header_encode(uint8_t out[TBGW_SEG_HDR], uint64_t first_seq) {
    memset(out, 0, TBGW_SEG_HDR);
    memcpy(out, SEG_MAGIC, 8);
    put32(out + 8, SEG_VERSION);
    put64(out + 16, first_seq);
    put32(out + 24, tbgw_crc32(0, out, 24));
}

int tbgw_seg_header_decode(const uint8_t in[TBGW_SEG_HDR], uint64_t *first_seq) {
    if (memcmp(in, SEG_MAGIC, 8) != 0 || get32(in + 8) != SEG_VERSION) return -1;
    if (get32(in + 24) != tbgw_crc32(0, in, 24)) return -1;
    uint64_t s = get64(in + 16);
    if (s == 0 || s > (UINT64_MAX >> 2)) return -1;
    *first_seq = s;
    return 0;
}

static uint32_t frame_crc(const uint8_t lenbytes[4], const void *data, uint32_t len) {
    return tbgw_crc32(tbgw_crc32(0, lenbytes, 4), data, len);
}

void tbgw_frame_header(uint8_t out[TBGW_FRAME_HDR], const void *data, uint32_t len) {
    put32(out, len);
    put32(out + 4, frame_crc(out, data, len));
}

void tbgw_state_encode(uint8_t out[TBGW_STATE_SLOT_SZ], uint64_t gen, uint64_t committed) {
    memset(out, 0, TBGW_STATE_SLOT_SZ);
    memcpy(out, STATE_MAGIC, 8);
    put64(out + 8, gen);
    put64(out + 16, committed);
    put32(out + 24, tbgw_crc32(0, out, 24));
}

int tbgw_state_decode(const uint8_t in[TBGW_STATE_SLOT_SZ], uint64_t *gen, uint64_t *committed) {
    if (memcmp(in, STATE_MAGIC, 8) != 0 || get32(in + 24) != tbgw_crc32(0, in, 24)) return -1;
    *gen = get64(in + 8);
    *committed = get64(in + 16);
    return 0;
}

int tbgw_seg_name_parse(const char *name, uint64_t *seq) {
    size_t pl = strlen(TBGW_SEG_PREFIX), sl = strlen(TBGW_SEG_SUFFIX);
    if (strlen(name) != pl + 20 + sl || strncmp(name, TBGW_SEG_PREFIX, pl) != 0 ||
        strcmp(name + pl + 20, TBGW_SEG_SUFFIX) != 0)
        return -1;
    uint64_t v = 0;
    for (size_t i = pl; i < pl + 20; i++) {
        if (name[i] < '0' || name[i] > '9') return -1;
        uint64_t d = (uint64_t)(name[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return -1;
        v = v * 10 + d;
    }
    *seq = v;
    return 0;
}

void tbgw_frame_reader_seek(tbgw_frame_reader *r, int fd, uint64_t file_id, uint64_t off, uint64_t end) {
    if (r->fd != fd || r->file_id != file_id) r->win_len = 0;
    r->fd = fd;
    r->file_id = file_id;
    r->off = off;
    r->end = end;
}

void tbgw_frame_reader_invalidate(tbgw_frame_reader *r) {
    r->win_len = 0;
}

void tbgw_frame_reader_free(tbgw_frame_reader *r) {
    free(r->buf);
    memset(r, 0, sizeof *r);
    r->fd = -1;
}

/* Makes bytes [off, off+need) available in the window; returns a pointer or NULL (errno set). */
static const uint8_t *window(tbgw_frame_reader *r, uint64_t off, size_t need) {
    if (off >= r->win_off && off + need <= r->win_off + r->win_len) return r->buf + (off - r->win_off);
    size_t want = need > READ_CHUNK ? need : READ_CHUNK;
    if (off + want > r->end) want = (size_t)(r->end - off);
    if (want < need) want = need;
    if (want > r->cap) {
        uint8_t *nb = realloc(r->buf, want);
        if (!nb) {
            errno = ENOMEM;
            return NULL;
        }
        r->buf = nb;
        r->cap = want;
    }
    size_t got = 0;
    while (got < want) {
        ssize_t n = pread(r->fd, r->buf + got, want - got, (off_t)(off + got));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            r->win_len = 0;
            return NULL;
        }
        if (n == 0) break;
        got += (size_t)n;
    }
    r->win_off = off;
    r->win_len = got;
    if (got < need) {
        errno = 0; /* file shorter than expected */
        return NULL;
    }
    return r->buf;
}

int tbgw_frame_next(tbgw_frame_reader *r, int verify, const uint8_t **data, uint32_t *len) {
    if (r->off >= r->end) return TBGW_FRAME_END;
    if (r->end - r->off < TBGW_FRAME_HDR) return TBGW_FRAME_TORN;
    const uint8_t *h = window(r, r->off, TBGW_FRAME_HDR);
    if (!h) return errno ? TBGW_FRAME_IOERR : TBGW_FRAME_TORN;
    uint32_t n = get32(h), crc = get32(h + 4);
    if (n > TBGW_MAX_RECORD) return TBGW_FRAME_BADLEN;
    if (r->end - r->off - TBGW_FRAME_HDR < n) return TBGW_FRAME_TORN;
    const uint8_t *f = window(r, r->off, TBGW_FRAME_HDR + (size_t)n);
    if (!f) return errno ? TBGW_FRAME_IOERR : TBGW_FRAME_TORN;
    if (verify && frame_crc(f, f + TBGW_FRAME_HDR, n) != crc) return TBGW_FRAME_BADCRC;
    *data = f + TBGW_FRAME_HDR;
    *len = n;
    r->off += TBGW_FRAME_HDR + n;
    return TBGW_FRAME_OK;
}
