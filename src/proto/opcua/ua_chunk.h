/* UA-TCP framing (Part 6 §7.1): HEL/ACK/ERR messages, secure-conversation chunk headers, and
 * message chunking in both directions (splitting a body into MSG chunks, reassembling received
 * chunks into complete messages). Security processing (SecurityPolicy None only here) sits between
 * the frame and the assembler. */
#ifndef TBGW_PROTO_OPCUA_CHUNK_H
#define TBGW_PROTO_OPCUA_CHUNK_H

#include <stddef.h>
#include <stdint.h>
#include "proto/opcua/ua_types.h"
#include "util/buf.h"

#define TBGW_UA_HEADER_LEN  8
#define TBGW_UA_MIN_BUFFER  8192 /* Part 6: receive/send buffers are at least 8192 bytes */
#define TBGW_UA_SEQ_HDR_LEN 8
#define TBGW_UA_SYM_HDR_LEN (TBGW_UA_HEADER_LEN + 4 + 4) /* header + channel id + token id */

typedef struct tbgw_ua_hello {
    uint32_t version, recv_buf, send_buf, max_msg, max_chunks;
    const char *url; /* encoding only */
} tbgw_ua_hello;

typedef struct tbgw_ua_ack {
    uint32_t version, recv_buf, send_buf, max_msg, max_chunks;
} tbgw_ua_ack;

/* A parsed chunk; pointers point into the frame given to tbgw_ua_chunk_parse. */
typedef struct tbgw_ua_chunk {
    char type[4];  /* "MSG", "OPN", "CLO", "HEL", "ACK", "ERR", "RHE" */
    char flag;     /* 'F', 'C' or 'A' */
    uint32_t size; /* whole frame */
    uint32_t channel_id;
    uint32_t token_id;         /* MSG/CLO */
    const uint8_t *policy_uri; /* OPN: SecurityPolicyUri */
    int32_t policy_uri_len;
    const uint8_t *sender_cert; /* OPN */
    int32_t sender_cert_len;
    const uint8_t *receiver_thumb; /* OPN */
    int32_t receiver_thumb_len;
    size_t secured_offset;        /* offset of the sequence header inside the frame */
    uint32_t seq_num, request_id; /* valid after the sequence header was read */
    const uint8_t *body;          /* after the sequence header (or after the 8-byte header for HEL/ACK/ERR) */
    size_t body_len;
} tbgw_ua_chunk;

/* Checks a frame header (first 8 bytes). Returns the frame size (>= 8) or TBGW_EPROTO when the type
 * is unknown or the size is below the minimum or above max_size. TBGW_EAGAIN when fewer than 8
 * bytes are available. */
int64_t tbgw_ua_frame_size(const uint8_t *p, size_t n, uint32_t max_size);

/* Parses the headers of a complete frame. For MSG/OPN/CLO the sequence header is read too (for
 * SecurityPolicy None the sequence header directly follows the security header). */
int tbgw_ua_chunk_parse(const uint8_t *frame, size_t n, tbgw_ua_chunk *out);

void tbgw_ua_hello_encode(tbgw_buf *b, const tbgw_ua_hello *h);
int tbgw_ua_ack_decode(const uint8_t *body, size_t n, tbgw_ua_ack *out);
/* ERR body: StatusCode + Reason. reason (may be NULL) receives a NUL-terminated copy. */
int tbgw_ua_err_decode(const uint8_t *body, size_t n, uint32_t *status, char *reason, size_t reason_cap);
void tbgw_ua_err_encode(tbgw_buf *b, uint32_t status, const char *reason);

/* Splits body into symmetric (MSG or CLO) chunks of at most chunk_size bytes each, appended to
 * out. seq is incremented per chunk. SecurityPolicy None. Returns 0, TBGW_EINVAL (too many chunks
 * for max_chunks, 0 = unlimited) or TBGW_ENOMEM. */
int tbgw_ua_chunk_split(tbgw_buf *out, const char *type, uint32_t channel_id, uint32_t token_id,
                        uint32_t *seq, uint32_t request_id, const uint8_t *body, size_t n,
                        uint32_t chunk_size, uint32_t max_chunks);

/* One OPN chunk with an asymmetric header for SecurityPolicy None. */
int tbgw_ua_chunk_opn(tbgw_buf *out, uint32_t channel_id, const char *policy_uri, uint32_t *seq,
                      uint32_t request_id, const uint8_t *body, size_t n);

/* Reassembles chunks of possibly interleaved messages (keyed by request id). */
#define TBGW_UA_ASM_SLOTS 8
typedef struct tbgw_ua_assembler {
    struct {
        int used;
        uint32_t request_id;
        uint32_t chunks;
        tbgw_buf body;
    } slot[TBGW_UA_ASM_SLOTS];
    tbgw_buf done;       /* the last completed message */
    uint32_t max_msg;    /* 0 = unlimited */
    uint32_t max_chunks; /* 0 = unlimited */
} tbgw_ua_assembler;

void tbgw_ua_asm_init(tbgw_ua_assembler *a, uint32_t max_msg, uint32_t max_chunks);
void tbgw_ua_asm_free(tbgw_ua_assembler *a);
/* Feeds one chunk's body. Returns:
 *   1  a message completed: msg/len point to it (valid until the next call); *request_id set;
 *   0  more chunks are needed;
 *   2  the sender aborted the message ('A'): msg/len hold the abort body (StatusCode + reason);
 *   TBGW_EPROTO / TBGW_EFULL on limits or a bad flag (the partial message is discarded). */
int tbgw_ua_asm_feed(tbgw_ua_assembler *a, const tbgw_ua_chunk *c, const uint8_t **msg, size_t *len,
                     uint32_t *request_id);

#endif
