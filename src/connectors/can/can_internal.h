/* CAN connector internals: frames, the two transports (SocketCAN raw and slcan, the LAWICEL ASCII
 * protocol of serial USB-CAN adapters), and the byte converters of the reference
 * (BytesCanUplinkConverter / BytesCanDownlinkConverter). can_codec.c is pure and fuzzed. */
#ifndef TBGW_CONNECTORS_CAN_INTERNAL_H
#define TBGW_CONNECTORS_CAN_INTERNAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <tbgw/data.h>
#include <tbgw/err.h>

#include "convert/pyexpr.h"
#include "util/buf.h"

#define CAN_MAX_DATA 64

typedef struct can_msg {
    uint32_t id;
    int extended, fd, brs;
    uint8_t len;
    uint8_t data[CAN_MAX_DATA];
} can_msg;

/* ---- transports ---- */

typedef struct can_transport can_transport;
struct can_transport {
    int fd; /* readable when frames arrive */
    /* Reads what the descriptor has; calls on_frame for every complete frame. 0, or -1 when the bus is
     * gone (the connector reopens it). */
    int (*read)(can_transport *t, void (*on_frame)(void *ud, const can_msg *m), void *ud);
    int (*write)(can_transport *t, const can_msg *m, tbgw_err *err);
    void (*close)(can_transport *t);
    char buf[256]; /* slcan: a partial line */
    size_t blen;
    int fd_frames;
};

/* SocketCAN raw on interface ifname (CAN FD frames enabled when fd), kernel filters for ids. */
can_transport *can_socketcan_open(const char *ifname, int fd, const uint32_t *ids, const int *ext,
                                  size_t n_ids, tbgw_err *err);
/* SocketCAN framing on an already open descriptor (a PF_CAN socket, or a socketpair in tests). */
can_transport *can_socketcan_wrap(int sock, int fd_frames);
/* slcan on a serial port: "C", "S<n>" for the bitrate, "O"; frames "t%03X%d<hex>" / "T%08X%d<hex>". */
can_transport *can_slcan_open(const char *port, long bitrate, tbgw_err *err);
can_transport *can_slcan_wrap(int fd);

/* slcan lines: one frame to text (with '\r'); text to a frame (0, or -1 when the line is not a frame). */
size_t can_slcan_format(const can_msg *m, char *out, size_t n);
int can_slcan_parse(const char *line, size_t len, can_msg *m);
/* The S<n> code of a bitrate, -1 when slcan has none. */
int can_slcan_speed(long bitrate);

/* ---- converters ---- */

typedef enum { CV_BOOL, CV_INT, CV_FLOAT, CV_STRING, CV_RAW } can_vtype;

typedef struct can_value_spec {
    int start, length; /* length -1: to the end */
    int little;
    can_vtype type;
    int is_double, is_signed;
    char encoding[16];
} can_value_spec;

/* Parses "start:length[:byteorder]:type[:signed|encoding]" or the dict form. */
int can_value_parse(const json_t *v, can_value_spec *out, tbgw_err *err);

/* Decodes a value from data; 0, or -1 when the item yields nothing (too short, not decodable). The
 * result is bound into ctx as a Python value (ints of any size, str, bool, float). */
int can_value_decode(const can_value_spec *s, const uint8_t *data, size_t len, tbgw_py_ctx *ctx,
                     const tbgw_py_val **out);

/* The command of an item ("start:length[:byteorder]:value" or dict). */
typedef struct can_cmd {
    int start, length, little;
    uint64_t value;
} can_cmd;
int can_cmd_parse(const json_t *v, can_cmd *out, tbgw_err *err);
/* The command value of a frame under the layout; -1 when the frame is too short. */
int can_cmd_of(const can_cmd *layout, const uint8_t *data, size_t len, uint64_t *out);

/* Hex text with optional spaces to bytes; the number of bytes, or -1. */
int can_hex(const char *s, uint8_t *out, size_t max);

/* Downlink options (attributeUpdates / serverSideRpc entries, or RPC params). */
typedef struct can_down {
    long node_id;
    int extended, fd, brs, response;
    uint8_t hex[CAN_MAX_DATA];
    int hex_len; /* -1: none */
    int data_length, little, is_signed;
    char encoding[16];
    uint8_t before[CAN_MAX_DATA], after[CAN_MAX_DATA];
    int before_len, after_len;
    const tbgw_py *expr; /* dataExpression */
    tbgw_py *own_expr;   /* the one parsed here (NULL when expr is the defaults') */
    int strict;
} can_down;

/* Parses options from o over defaults d (NULL: the reference's defaults). */
int can_down_parse(const json_t *o, const can_down *d, int strict, can_down *out, tbgw_err *err);
void can_down_free(can_down *d);
/* Encodes data (the update's {"value": v} or the RPC's params) into frame bytes as the reference's
 * downlink converter. Returns the length or -1 with err. */
int can_down_encode(const can_down *d, const json_t *data, tbgw_py_ctx *ctx, uint8_t *out, size_t max,
                    tbgw_err *err);

#endif
