/* Modbus application protocol: PDU codec (client and server side) and the three framings
 * (MBAP for TCP/UDP/TLS, RTU with CRC16, ASCII with LRC). Pure functions, no I/O. */
#ifndef TBGW_PROTO_MB_PDU_H
#define TBGW_PROTO_MB_PDU_H

#include <stddef.h>
#include <stdint.h>

#define TBGW_MB_MAX_PDU        253
#define TBGW_MB_MAX_READ_REGS  125
#define TBGW_MB_MAX_READ_BITS  2000
#define TBGW_MB_MAX_WRITE_REGS 123
#define TBGW_MB_MAX_WRITE_BITS 1968
/* Largest encoded frame of any framing (ASCII: ':' + 2 * (1 + 253 + 1) + CRLF). */
#define TBGW_MB_MAX_FRAME 520

enum {
    TBGW_MB_FC_READ_COILS = 1,
    TBGW_MB_FC_READ_DISCRETE = 2,
    TBGW_MB_FC_READ_HOLDING = 3,
    TBGW_MB_FC_READ_INPUT = 4,
    TBGW_MB_FC_WRITE_COIL = 5,
    TBGW_MB_FC_WRITE_REGISTER = 6,
    TBGW_MB_FC_WRITE_COILS = 15,
    TBGW_MB_FC_WRITE_REGISTERS = 16,
    TBGW_MB_FC_MEI = 43, /* encapsulated interface transport; MEI type 14 = read device identification */
};
#define TBGW_MB_MEI_DEVICE_ID 14

/* Exception codes. */
enum {
    TBGW_MB_EX_ILLEGAL_FUNCTION = 1,
    TBGW_MB_EX_ILLEGAL_ADDRESS = 2,
    TBGW_MB_EX_ILLEGAL_VALUE = 3,
    TBGW_MB_EX_DEVICE_FAILURE = 4,
};

/* One request. Reads: fc 1-4 with addr/count. fc 5: value (0 or 1). fc 6: value. fc 15: count coils
 * packed LSB-first in data. fc 16: count registers big-endian in data. */
typedef struct tbgw_mb_req {
    uint8_t fc;
    uint16_t addr;
    uint16_t count;
    uint16_t value;
    uint8_t data[246];
    size_t data_len;
} tbgw_mb_req;

/* A parsed response. exception != 0 for an exception response. For reads data points at the payload
 * after the byte count (coils packed LSB-first, registers big-endian); for writes at the 4 echoed bytes. */
typedef struct tbgw_mb_rsp {
    uint8_t fc;
    uint8_t exception;
    const uint8_t *data;
    size_t data_len;
} tbgw_mb_rsp;

int tbgw_mb_fc_is_read(uint8_t fc);
int tbgw_mb_fc_is_write(uint8_t fc);
const char *tbgw_mb_exception_name(uint8_t code);

/* Status of a well-formed read answer that carries fewer bytes than requested (byte count 0 included):
 * an "empty" response in pymodbus terms, retried only with retryOnEmpty. Distinct from TBGW_E*. */
#define TBGW_MB_EEMPTY (-64)

/* Encodes req into out; returns the PDU length or TBGW_EINVAL (bad count, buffer too small). */
int tbgw_mb_pdu_encode_req(const tbgw_mb_req *req, uint8_t *out, size_t cap);
/* Parses a response PDU to req. Returns 0 (rsp filled, possibly an exception), TBGW_MB_EEMPTY for a
 * consistent read answer with a byte count smaller than requested (rsp->data/data_len hold what came),
 * or TBGW_EPROTO when the PDU is malformed or does not answer req (wrong function, byte count, echo). */
int tbgw_mb_pdu_parse_rsp(const tbgw_mb_req *req, const uint8_t *pdu, size_t len, tbgw_mb_rsp *rsp);
/* Server side: parses a request PDU. Returns 0, or a positive exception code to answer with. */
int tbgw_mb_pdu_parse_req(const uint8_t *pdu, size_t len, tbgw_mb_req *req);
/* Expected full PDU length from its first bytes: >0 length, 0 = need more bytes, TBGW_EPROTO = unknown
 * function. is_request selects the direction. Used by RTU framing, which carries no length. */
int tbgw_mb_pdu_expected_len(const uint8_t *pdu, size_t avail, int is_request);

/* Bit helpers: bit i of a packed LSB-first bit array. */
static inline int tbgw_mb_bit_get(const uint8_t *p, size_t i) {
    return (p[i / 8] >> (i % 8)) & 1;
}
static inline void tbgw_mb_bit_set(uint8_t *p, size_t i, int v) {
    if (v)
        p[i / 8] |= (uint8_t)(1u << (i % 8));
    else
        p[i / 8] &= (uint8_t) ~(1u << (i % 8));
}

/* ---- framing ---- */
typedef enum tbgw_mb_framing {
    TBGW_MB_FRAMING_SOCKET = 0, /* MBAP header */
    TBGW_MB_FRAMING_RTU,
    TBGW_MB_FRAMING_ASCII,
    TBGW_MB_FRAMING_TLS, /* bare PDU, as the reference's "tls" method frames Modbus over TLS */
} tbgw_mb_framing;

typedef struct tbgw_mb_frame {
    uint16_t tid; /* MBAP only */
    uint8_t unit;
    uint8_t pdu[TBGW_MB_MAX_PDU];
    size_t pdu_len;
} tbgw_mb_frame;

uint16_t tbgw_mb_crc16(const uint8_t *p, size_t n);
uint8_t tbgw_mb_lrc(const uint8_t *p, size_t n);

/* The longest frame of a framing that the decoder accepts (MBAP 260, RTU 256, ASCII 513, bare 253). */
size_t tbgw_mb_frame_max(tbgw_mb_framing f);
/* Encodes one frame; returns its length or TBGW_EINVAL. */
int tbgw_mb_frame_encode(tbgw_mb_framing f, uint16_t tid, uint8_t unit, const uint8_t *pdu, size_t pdu_len,
                         uint8_t *out, size_t cap);
/* Decodes one frame at the start of buf. Returns the bytes consumed (> 0) with out filled, 0 when more
 * bytes are needed, TBGW_EPROTO for a corrupt frame (bad CRC/LRC/header): the caller discards its
 * buffer. is_request: direction (RTU needs it to know the length). */
int tbgw_mb_frame_decode(tbgw_mb_framing f, int is_request, const uint8_t *buf, size_t len,
                         tbgw_mb_frame *out);

#endif
