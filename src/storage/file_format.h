/* On-disk format of the file storage (see docs/STORAGE.md).
 *
 * Segment file "tbgw-seg-<first seq, 20 digits>.dat":
 *   header (32 bytes): "TBGWSEG1" | u32 version=1 | u32 flags=0 | u64 first_seq | u32 crc32(bytes 0..23) |
 * u32 0 records:           u32 len | u32 crc32(len bytes || payload) | payload[len]      (all little-endian)
 * The n-th record of a segment (from 0) has sequence number first_seq + n.
 *
 * State file "tbgw-state.dat": two 512-byte slots, written alternately (never both at once):
 *   "TBGWSTA1" | u64 generation | u64 committed_seq | u32 crc32(bytes 0..23) | u32 0
 * The valid slot with the highest generation wins; a torn write can only damage the slot being
 * written, so the previous pointer survives (atomic update without rename). */
#ifndef TBGW_STORAGE_FILE_FORMAT_H
#define TBGW_STORAGE_FILE_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#define TBGW_SEG_HDR       32u
#define TBGW_FRAME_HDR     8u
#define TBGW_MAX_RECORD    (64u << 20) /* largest record accepted (64 MiB) */
#define TBGW_STATE_SLOT    512u
#define TBGW_STATE_SLOT_SZ 32u
#define TBGW_SEG_PREFIX    "tbgw-seg-"
#define TBGW_SEG_SUFFIX    ".dat"
#define TBGW_STATE_NAME    "tbgw-state.dat"

void tbgw_seg_header_encode(uint8_t out[TBGW_SEG_HDR], uint64_t first_seq);
/* 0 and *first_seq if the header is valid, -1 otherwise. */
int tbgw_seg_header_decode(const uint8_t in[TBGW_SEG_HDR], uint64_t *first_seq);

/* Fills the 8-byte frame header for a payload. */
void tbgw_frame_header(uint8_t out[TBGW_FRAME_HDR], const void *data, uint32_t len);

void tbgw_state_encode(uint8_t out[TBGW_STATE_SLOT_SZ], uint64_t gen, uint64_t committed);
int tbgw_state_decode(const uint8_t in[TBGW_STATE_SLOT_SZ], uint64_t *gen, uint64_t *committed);

/* Parses "tbgw-seg-<20 digits>.dat"; 0 and *seq on success. */
int tbgw_seg_name_parse(const char *name, uint64_t *seq);

/* Buffered sequential reader of the frames of one segment, with pread on fd from offset off
 * up to end (exclusive). Keeps one window of the file in memory. */
typedef struct tbgw_frame_reader {
    int fd;
    uint64_t file_id; /* caller's name for the file (its first seq); the window belongs to it */
    uint64_t off, end;
    uint8_t *buf;
    size_t cap;
    uint64_t win_off; /* file offset of buf[0] */
    size_t win_len;   /* valid bytes in buf */
} tbgw_frame_reader;

enum {
    TBGW_FRAME_OK = 1,      /* data and len set (valid until the next call), off advanced */
    TBGW_FRAME_END = 0,     /* off == end */
    TBGW_FRAME_TORN = -1,   /* fewer bytes than the frame needs before end */
    TBGW_FRAME_BADLEN = -2, /* length over TBGW_MAX_RECORD */
    TBGW_FRAME_BADCRC = -3, /* checksum mismatch */
    TBGW_FRAME_IOERR = -4,  /* read failed (errno set) */
};

/* Positions the reader; the cached window is kept only when file_id is unchanged. */
void tbgw_frame_reader_seek(tbgw_frame_reader *r, int fd, uint64_t file_id, uint64_t off, uint64_t end);
/* Next frame; verify = 0 skips the checksum (used to find record offsets). */
int tbgw_frame_next(tbgw_frame_reader *r, int verify, const uint8_t **data, uint32_t *len);
/* Forgets the cached window (after the file was truncated). */
void tbgw_frame_reader_invalidate(tbgw_frame_reader *r);
void tbgw_frame_reader_free(tbgw_frame_reader *r);

#endif
