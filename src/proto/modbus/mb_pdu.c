#include "proto/modbus/mb_pdu.h"

#include <string.h>
#include <tbgw/err.h>

int tbgw_mb_fc_is_read(uint8_t fc) {
    return fc >= 1 && fc <= 4;
}

int tbgw_mb_fc_is_write(uint8_t fc) {
    return fc == 5 || fc == 6 || fc == 15 || fc == 16;
}

const char *tbgw_mb_exception_name(uint8_t code) {
    switch (code) {
    case 1:
        return "illegal function";
    case 2:
        return "illegal data address";
    case 3:
        return "illegal data value";
    case 4:
        return "slave device failure";
    case 5:
        return "acknowledge";
    case 6:
        return "slave device busy";
    case 8:
        return "memory parity error";
    case 10:
        return "gateway path unavailable";
    case 11:
        return "gateway target device failed to respond";
    default:
        return "unknown exception";
    }
}

static void put16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p) {
    return (uint16_t)((p[0] << 8) | p[1]);
}

int tbgw_mb_pdu_encode_req(const tbgw_mb_req *r, uint8_t *out, size_t cap) {
    if (cap < 5) return TBGW_EINVAL;
    out[0] = r->fc;
    put16(out + 1, r->addr);
    switch (r->fc) {
    case 1:
    case 2:
        if (r->count < 1 || r->count > TBGW_MB_MAX_READ_BITS) return TBGW_EINVAL;
        put16(out + 3, r->count);
        return 5;
    case 3:
    case 4:
        if (r->count < 1 || r->count > TBGW_MB_MAX_READ_REGS) return TBGW_EINVAL;
        put16(out + 3, r->count);
        return 5;
    case 5:
        put16(out + 3, r->value ? 0xFF00 : 0x0000);
        return 5;
    case 6:
        put16(out + 3, r->value);
        return 5;
    case 15:
    case 16: {
        size_t nbytes = r->fc == 15 ? (size_t)(r->count + 7) / 8 : (size_t)r->count * 2;
        unsigned max = r->fc == 15 ? TBGW_MB_MAX_WRITE_BITS : TBGW_MB_MAX_WRITE_REGS;
        if (r->count < 1 || r->count > max || r->data_len < nbytes || cap < 6 + nbytes) return TBGW_EINVAL;
        put16(out + 3, r->count);
        out[5] = (uint8_t)nbytes;
        memcpy(out + 6, r->data, nbytes);
        return (int)(6 + nbytes);
    }
    default:
        return TBGW_EINVAL;
    }
}

int tbgw_mb_pdu_parse_rsp(const tbgw_mb_req *req, const uint8_t *pdu, size_t len, tbgw_mb_rsp *rsp) {
    memset(rsp, 0, sizeof *rsp);
    if (len < 2) return TBGW_EPROTO;
    rsp->fc = pdu[0] & 0x7F;
    if (rsp->fc != req->fc) return TBGW_EPROTO;
    if (pdu[0] & 0x80) {
        if (len != 2) return TBGW_EPROTO;
        rsp->exception = pdu[1] ? pdu[1] : 0xFF;
        return 0;
    }
    if (tbgw_mb_fc_is_read(req->fc)) {
        size_t want = req->fc <= 2 ? (size_t)(req->count + 7) / 8 : (size_t)req->count * 2;
        if (len == 2u + pdu[1] && pdu[1] < want) { /* well formed, but short or empty */
            rsp->data = pdu + 2;
            rsp->data_len = pdu[1];
            return TBGW_MB_EEMPTY;
        }
        if (pdu[1] != want || len != 2 + want) return TBGW_EPROTO;
        rsp->data = pdu + 2;
        rsp->data_len = want;
        return 0;
    }
    if (len != 5 || get16(pdu + 1) != req->addr) return TBGW_EPROTO;
    uint16_t v = get16(pdu + 3);
    if (req->fc == 5 && v != (req->value ? 0xFF00 : 0)) return TBGW_EPROTO;
    if (req->fc == 6 && v != req->value) return TBGW_EPROTO;
    if ((req->fc == 15 || req->fc == 16) && v != req->count) return TBGW_EPROTO;
    rsp->data = pdu + 1;
    rsp->data_len = 4;
    return 0;
}

int tbgw_mb_pdu_parse_req(const uint8_t *pdu, size_t len, tbgw_mb_req *req) {
    memset(req, 0, sizeof *req);
    if (len < 1) return TBGW_MB_EX_ILLEGAL_FUNCTION;
    req->fc = pdu[0];
    switch (req->fc) {
    case 1:
    case 2:
    case 3:
    case 4: {
        if (len != 5) return TBGW_MB_EX_ILLEGAL_VALUE;
        req->addr = get16(pdu + 1);
        req->count = get16(pdu + 3);
        unsigned max = req->fc <= 2 ? TBGW_MB_MAX_READ_BITS : TBGW_MB_MAX_READ_REGS;
        if (req->count < 1 || req->count > max) return TBGW_MB_EX_ILLEGAL_VALUE;
        if ((uint32_t)req->addr + req->count > 65536u) return TBGW_MB_EX_ILLEGAL_ADDRESS;
        return 0;
    }
    case 5:
    case 6:
        if (len != 5) return TBGW_MB_EX_ILLEGAL_VALUE;
        req->addr = get16(pdu + 1);
        req->value = get16(pdu + 3);
        req->count = 1;
        if (req->fc == 5) {
            if (req->value != 0xFF00 && req->value != 0) return TBGW_MB_EX_ILLEGAL_VALUE;
            req->value = req->value ? 1 : 0;
        }
        return 0;
    case 15:
    case 16: {
        if (len < 6) return TBGW_MB_EX_ILLEGAL_VALUE;
        req->addr = get16(pdu + 1);
        req->count = get16(pdu + 3);
        unsigned max = req->fc == 15 ? TBGW_MB_MAX_WRITE_BITS : TBGW_MB_MAX_WRITE_REGS;
        if (req->count < 1 || req->count > max) return TBGW_MB_EX_ILLEGAL_VALUE;
        size_t nbytes = req->fc == 15 ? (size_t)(req->count + 7) / 8 : (size_t)req->count * 2;
        if (pdu[5] != nbytes || len != 6 + nbytes) return TBGW_MB_EX_ILLEGAL_VALUE;
        if ((uint32_t)req->addr + req->count > 65536u) return TBGW_MB_EX_ILLEGAL_ADDRESS;
        memcpy(req->data, pdu + 6, nbytes);
        req->data_len = nbytes;
        return 0;
    }
    default:
        return TBGW_MB_EX_ILLEGAL_FUNCTION;
    }
}

int tbgw_mb_pdu_expected_len(const uint8_t *pdu, size_t avail, int is_request) {
    if (avail < 1) return 0;
    uint8_t fc = pdu[0];
    if (!is_request && (fc & 0x80)) return 2;
    switch (fc) {
    case 1:
    case 2:
    case 3:
    case 4:
        if (is_request) return 5;
        if (avail < 2) return 0;
        return 2 + pdu[1];
    case 5:
    case 6:
        return 5;
    case 15:
    case 16:
        if (!is_request) return 5;
        if (avail < 6) return 0;
        return 6 + pdu[5];
    case TBGW_MB_FC_MEI: {
        if (avail < 2) return 0;
        if (pdu[1] != TBGW_MB_MEI_DEVICE_ID) return TBGW_EPROTO;
        if (is_request) return 4;
        /* fc, mei, read code, conformity, more follows, next id, count, then {id, len, value} */
        if (avail < 7) return 0;
        size_t off = 7;
        for (unsigned i = 0; i < pdu[6]; i++) {
            if (off + 2 > avail) return off + 2 > TBGW_MB_MAX_PDU ? TBGW_EPROTO : 0;
            off += 2 + (size_t)pdu[off + 1];
            if (off > TBGW_MB_MAX_PDU) return TBGW_EPROTO;
        }
        return (int)off;
    }
    default:
        return TBGW_EPROTO;
    }
}

/* ---- framing ---- */

uint16_t tbgw_mb_crc16(const uint8_t *p, size_t n) {
    uint16_t crc = 0xFFFF;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int b = 0; b < 8; b++) crc = (crc & 1) ? (uint16_t)((crc >> 1) ^ 0xA001) : (uint16_t)(crc >> 1);
    }
    return crc;
}

uint8_t tbgw_mb_lrc(const uint8_t *p, size_t n) {
    uint8_t s = 0;
    for (size_t i = 0; i < n; i++) s = (uint8_t)(s + p[i]);
    return (uint8_t)(-s);
}

static const char HEXD[] = "0123456789ABCDEF";

static int hexval(uint8_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

int tbgw_mb_frame_encode(tbgw_mb_framing f, uint16_t tid, uint8_t unit, const uint8_t *pdu, size_t pdu_len,
                         uint8_t *out, size_t cap) {
    if (pdu_len < 1 || pdu_len > TBGW_MB_MAX_PDU) return TBGW_EINVAL;
    switch (f) {
    case TBGW_MB_FRAMING_SOCKET:
        if (cap < 7 + pdu_len) return TBGW_EINVAL;
        put16(out, tid);
        put16(out + 2, 0);
        put16(out + 4, (uint16_t)(pdu_len + 1));
        out[6] = unit;
        memcpy(out + 7, pdu, pdu_len);
        return (int)(7 + pdu_len);
    case TBGW_MB_FRAMING_RTU: {
        if (cap < 3 + pdu_len) return TBGW_EINVAL;
        out[0] = unit;
        memcpy(out + 1, pdu, pdu_len);
        uint16_t crc = tbgw_mb_crc16(out, 1 + pdu_len);
        out[1 + pdu_len] = (uint8_t)crc;
        out[2 + pdu_len] = (uint8_t)(crc >> 8);
        return (int)(3 + pdu_len);
    }
    case TBGW_MB_FRAMING_TLS:
        if (cap < pdu_len) return TBGW_EINVAL;
        memcpy(out, pdu, pdu_len);
        return (int)pdu_len;
    case TBGW_MB_FRAMING_ASCII: {
        size_t n = 1 + 2 * (pdu_len + 2) + 2;
        if (cap < n) return TBGW_EINVAL;
        uint8_t raw[TBGW_MB_MAX_PDU + 2];
        raw[0] = unit;
        memcpy(raw + 1, pdu, pdu_len);
        raw[1 + pdu_len] = tbgw_mb_lrc(raw, 1 + pdu_len);
        size_t o = 0;
        out[o++] = ':';
        for (size_t i = 0; i < pdu_len + 2; i++) {
            out[o++] = (uint8_t)HEXD[raw[i] >> 4];
            out[o++] = (uint8_t)HEXD[raw[i] & 15];
        }
        out[o++] = '\r';
        out[o++] = '\n';
        return (int)o;
    }
    }
    return TBGW_EINVAL;
}

static int decode_mbap(const uint8_t *buf, size_t len, tbgw_mb_frame *out) {
    if (len < 7) return 0;
    uint16_t plen = get16(buf + 4);
    if (get16(buf + 2) != 0 || plen < 2 || plen > TBGW_MB_MAX_PDU + 1) return TBGW_EPROTO;
    if (len < (size_t)6 + plen) return 0;
    out->tid = get16(buf);
    out->unit = buf[6];
    out->pdu_len = (size_t)plen - 1;
    memcpy(out->pdu, buf + 7, out->pdu_len);
    return 6 + plen;
}

static int decode_rtu(int is_request, const uint8_t *buf, size_t len, tbgw_mb_frame *out) {
    if (len < 2) return 0;
    int plen = tbgw_mb_pdu_expected_len(buf + 1, len - 1, is_request);
    if (plen <= 0) return plen;
    if (plen > TBGW_MB_MAX_PDU) return TBGW_EPROTO;
    size_t total = 1 + (size_t)plen + 2;
    if (len < total) return 0;
    uint16_t crc = tbgw_mb_crc16(buf, 1 + (size_t)plen);
    if (buf[1 + plen] != (uint8_t)crc || buf[2 + plen] != (uint8_t)(crc >> 8)) return TBGW_EPROTO;
    out->tid = 0;
    out->unit = buf[0];
    out->pdu_len = (size_t)plen;
    memcpy(out->pdu, buf + 1, out->pdu_len);
    return (int)total;
}

static int decode_ascii(const uint8_t *buf, size_t len, tbgw_mb_frame *out) {
    if (len < 1) return 0;
    if (buf[0] != ':') return TBGW_EPROTO;
    const uint8_t *lf = memchr(buf, '\n', len);
    if (!lf) return len > TBGW_MB_MAX_FRAME ? TBGW_EPROTO : 0;
    size_t end = (size_t)(lf - buf);
    if (end < 2 || buf[end - 1] != '\r') return TBGW_EPROTO;
    size_t nhex = end - 2; /* between ':' and CR */
    if (nhex % 2 || nhex < 6 || nhex / 2 > TBGW_MB_MAX_PDU + 2) return TBGW_EPROTO;
    uint8_t raw[TBGW_MB_MAX_PDU + 2];
    size_t n = nhex / 2;
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(buf[1 + 2 * i]), lo = hexval(buf[2 + 2 * i]);
        if (hi < 0 || lo < 0) return TBGW_EPROTO;
        raw[i] = (uint8_t)(hi << 4 | lo);
    }
    if (tbgw_mb_lrc(raw, n - 1) != raw[n - 1]) return TBGW_EPROTO;
    out->tid = 0;
    out->unit = raw[0];
    out->pdu_len = n - 2;
    memcpy(out->pdu, raw + 1, out->pdu_len);
    return (int)(end + 1);
}

static int decode_bare(int is_request, const uint8_t *buf, size_t len, tbgw_mb_frame *out) {
    int plen = tbgw_mb_pdu_expected_len(buf, len, is_request);
    if (plen <= 0) return plen;
    if (plen > TBGW_MB_MAX_PDU) return TBGW_EPROTO;
    if (len < (size_t)plen) return 0;
    out->tid = 0;
    out->unit = 0;
    out->pdu_len = (size_t)plen;
    memcpy(out->pdu, buf, out->pdu_len);
    return plen;
}

size_t tbgw_mb_frame_max(tbgw_mb_framing f) {
    switch (f) {
    case TBGW_MB_FRAMING_SOCKET:
        return 7 + TBGW_MB_MAX_PDU; /* MBAP header (length field <= 254) and the PDU */
    case TBGW_MB_FRAMING_RTU:
        return 1 + TBGW_MB_MAX_PDU + 2;
    case TBGW_MB_FRAMING_ASCII:
        return 1 + 2 * (1 + TBGW_MB_MAX_PDU + 1) + 2;
    case TBGW_MB_FRAMING_TLS:
        return TBGW_MB_MAX_PDU;
    }
    return TBGW_MB_MAX_FRAME;
}

int tbgw_mb_frame_decode(tbgw_mb_framing f, int is_request, const uint8_t *buf, size_t len,
                         tbgw_mb_frame *out) {
    switch (f) {
    case TBGW_MB_FRAMING_SOCKET:
        return decode_mbap(buf, len, out);
    case TBGW_MB_FRAMING_RTU:
        return decode_rtu(is_request, buf, len, out);
    case TBGW_MB_FRAMING_ASCII:
        return decode_ascii(buf, len, out);
    case TBGW_MB_FRAMING_TLS:
        return decode_bare(is_request, buf, len, out);
    }
    return TBGW_EPROTO;
}
