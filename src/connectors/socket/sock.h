/* Internals of the Socket connector (spec §7.6): configuration, the byte/text helpers and the
 * runtime state of the event loop. */
#ifndef TBGW_CONNECTORS_SOCK_H
#define TBGW_CONNECTORS_SOCK_H

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <tbgw/connector.h>

#include "convert/custom_conv.h"
#include "util/buf.h"
#include "util/hmap.h"

/* ---- text helpers (sock_text.c; pure functions, fuzzed) ----------------------------------- */

/* A Python slice [from:to] or index [i]; absent bounds are open. */
typedef struct sock_slice {
    int has_from, has_to, single;
    int64_t from, to;
} sock_slice;

typedef enum sock_enc_kind {
    SOCK_ENC_UTF8 = 0,
    SOCK_ENC_HEX,   /* bytes as lowercase hex text (uplink); hex text to bytes (downlink) */
    SOCK_ENC_UTF16, /* Python "utf-16": BOM + little endian when encoding, BOM-detected when decoding */
    SOCK_ENC_UTF32,
    SOCK_ENC_ICONV, /* any other codec iconv knows (latin-1, ascii, cp1252, utf-16-be, ...) */
} sock_enc_kind;

typedef struct sock_enc {
    sock_enc_kind kind;
    char name[32];  /* as configured, lower case */
    char iconv[32]; /* iconv name for SOCK_ENC_ICONV */
} sock_enc;

/* Resolves a Python codec name. 0, or TBGW_EINVAL when iconv does not know it. */
int sock_enc_parse(const char *name, sock_enc *out);
/* Resolves [from:to] (Python semantics, negative from the end, clamped) against len. A single
 * index out of range gives -1, else 0. */
int sock_slice_resolve(const sock_slice *s, size_t len, size_t *a, size_t *b);
/* The reference's value decoding: hex, or NUL bytes removed and decoded (for UTF-16/32 codecs the
 * NUL characters are removed after decoding, so text in them decodes at all); bytes the codec
 * refuses give Python's repr of the (unstripped) slice, b'..'. Result is UTF-8 in out. 1 when repr was
 * used, 0 when decoded, TBGW_ENOMEM. */
int sock_decode(const sock_enc *e, const uint8_t *p, size_t n, tbgw_buf *out);
/* Encodes UTF-8 text for the wire. 0, or TBGW_EINVAL when the codec cannot represent it. */
int sock_encode(const sock_enc *e, const char *text, size_t len, tbgw_buf *out);
/* Python repr() of a bytes object. */
int sock_py_repr_bytes(const uint8_t *p, size_t n, tbgw_buf *out);
/* Python json.dumps() with default settings (", " and ": " separators, ensure_ascii). */
int sock_py_dumps(const json_t *v, tbgw_buf *out);
/* Finds every `[a:b]` / `[i]` in text (the reference's pattern `\[[^\s][0-9:]*]`). Returns the
 * count (0 when none) and fills *out (malloc'ed), or TBGW_EINVAL naming the bad one in err. */
int sock_slices_find(const char *text, sock_slice **out, size_t *n, char *err, size_t errlen);

/* ---- configuration (sock_config.c) -------------------------------------------------------- */

typedef struct sock_key {
    char *key;
    sock_slice slice;
    tbgw_report_strategy rs;
    int has_rs;
} sock_key;

/* attributeRequests[] entry: `${[a:b]==literal}` picks requests, `[a:b]...` names the keys. */
typedef struct sock_attr_req {
    int client;
    int whole;       /* expression without ${..}: the whole message equals `equal` */
    sock_slice cond; /* slice compared with `equal` */
    char *equal;
    sock_slice *names; /* slices naming the attributes */
    size_t n_names;
    char *literal_name; /* attributeNameExpression without slices: that name */
} sock_attr_req;

typedef struct sock_attr_update {
    char *attr;
    sock_enc enc;
} sock_attr_update;

typedef struct sock_rpc_cfg {
    char *method;
    int write; /* methodProcessing "write" (the only processing the reference has) */
    int with_response;
    sock_enc enc;
} sock_rpc_cfg;

typedef struct sock_device {
    char *name, *type;
    char *filter; /* address or addressFilter as configured */
    void *rx;     /* pcre2_code: `*` => `.*`, fullmatch */
    void *md;     /* its match data (used on the connector thread only) */
    sock_enc enc;
    sock_key *telemetry, *attributes;
    size_t n_telemetry, n_attributes;
    tbgw_report_strategy rs;
    int has_rs;
    tbgw_custom_conv *custom; /* `converter` names a custom converter */
    sock_attr_req *attr_reqs;
    size_t n_attr_reqs;
    sock_attr_update *attr_updates;
    size_t n_attr_updates;
    sock_rpc_cfg *rpcs;
    size_t n_rpcs;
    /* runtime: the peer that sent the last message matching this device */
    char last_peer[64];
    struct sockaddr_storage last_sa;
    socklen_t last_salen;
} sock_device;

typedef struct sock_cfg {
    int udp;
    char *bind_addr;
    int port;
    size_t buffer_size;
    size_t max_connections;    /* tbgw: concurrent TCP clients (default 10000) */
    size_t max_reads_per_turn; /* tbgw: recv() calls per connection per loop turn (fairness) */
    int64_t connect_timeout_ms;
    int64_t max_rate; /* tbgw: messages per second one TCP client may send (0 = unlimited) */
    sock_device *devices;
    size_t n_devices;
    int old_format;
} sock_cfg;

/* Converts the old (flat) format as the reference's adapter does; returns a new reference. */
json_t *sock_config_upgrade(const json_t *cfg, int *was_old);
int sock_config_parse(sock_cfg *c, const json_t *cfg, const tbgw_host *host, tbgw_err *err);
void sock_config_free(sock_cfg *c);
/* Whether a device's address filter matches "ip:port" (connector thread only: shared match data). */
int sock_device_matches(const sock_device *d, const char *peer, size_t len);

/* ---- runtime (sock_connector.c, sock_io.c, sock_downlink.c) ------------------------------- */

typedef enum sock_conn_kind { SOCK_LISTEN = 0, SOCK_UDP, SOCK_CLIENT, SOCK_OUT } sock_conn_kind;

typedef struct sock_conn {
    sock_conn_kind kind;
    int fd;
    char peer[64];
    struct sockaddr_storage sa;
    socklen_t salen;
    uint32_t *devs; /* devices whose filter matches this peer (accepted TCP connections) */
    size_t n_devs;
    tbgw_buf out; /* bytes waiting to be written */
    size_t out_off;
    int connecting;     /* SOCK_OUT: connect() in progress */
    int64_t deadline;   /* SOCK_OUT: give up at (monotonic ms) */
    uint64_t rpc;       /* SOCK_OUT: RPC answered when the write completes (0 = none) */
    int rpc_with_reply; /* reply {"result":"ok"} (else {"success":true}) */
    int in_epoll_out;
    struct sock_conn *next_out; /* list of SOCK_OUT connections */
    /* SOCK_CLIENT: token bucket of maxMessagesPerSecond; a client over it is not read for a while */
    double tokens;
    int64_t refilled, resume_at;
    int throttled;
    struct sock_conn *next_throttled;
} sock_conn;

typedef struct sock_pending_attr {
    uint64_t cookie;
    size_t dev;
    int single; /* one key requested: its value is sent, else the object */
    char *key;
    int64_t deadline;
    struct sock_pending_attr *next;
} sock_pending_attr;

typedef struct sock_counters {
    uint64_t messages, bytes, converted, unmatched, conv_errors, emit_drops, rejected_conns, refused_peers,
        attr_requests, downlink_writes, downlink_errors, throttled;
} sock_counters;

typedef struct sock {
    const tbgw_host *host;
    sock_cfg cfg;
    atomic_int stop;
    int ep;
    int dl_in_epoll;   /* host->downlink_fd is in the epoll set */
    sock_conn *srv;    /* listening TCP socket or the UDP socket */
    tbgw_hmap clients; /* "ip:port" -> sock_conn (accepted TCP connections) */
    size_t n_clients;
    sock_conn *outs;
    sock_conn *throttled; /* clients over their rate, resumed by the loop */
    uint8_t *rbuf;
    tbgw_converted *chain, **chain_tail;
    size_t chain_len;
    int64_t pause_until; /* the core was saturated: reading paused until then */
    sock_pending_attr *attrs;
    uint64_t next_cookie;
    sock_counters cnt;
    int64_t last_warn;
    uint64_t warn_suppressed;
    tbgw_conn_state state;
    tbgw_buf scratch;
} sock;

/* sock_io.c */
int sock_io_open(sock *s, tbgw_err *err);
void sock_io_close(sock *s);
/* One turn of the loop: sleeps until socket events, downlink work (host->downlink_fd is in the epoll
 * set) or timeout_ms (< 0: none), serves them and dispatches the downlink. 1 when the connector
 * should stop, 0, or TBGW_EIO. */
int sock_io_turn(sock *s, int64_t timeout_ms);
/* Queues bytes for a peer "ip:port" (sa may be NULL: resolved from peer): into its open TCP
 * connection, else a new connection (TCP) or a datagram from the server socket (UDP). With has_rpc
 * the RPC is answered exactly once: when the write completed, or with the error. */
int sock_io_send(sock *s, const char *peer, const struct sockaddr_storage *sa, socklen_t salen, const void *p,
                 size_t n, int has_rpc, uint64_t rpc, int with_reply);
/* Ends outgoing connections past their deadline; the next timer of the I/O (deadline, resume of a
 * throttled client, end of a pause; INT64_MAX: none). */
int64_t sock_io_expire(sock *s, int64_t now_mono);
/* Rate-limited warning (at most one per second; the rest are counted). */
void sock_warn(sock *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* sock_data.c: one message from a peer */
void sock_on_message(sock *s, const char *peer, const struct sockaddr_storage *sa, socklen_t salen,
                     const uint32_t *devs, size_t n_devs, const uint8_t *p, size_t n);
/* Converts one message for a device with the built-in converter (appends one record). */
int sock_convert(const sock_device *d, const uint8_t *p, size_t n, int64_t ts, tbgw_converted **out,
                 tbgw_err *err);
/* Whether the message is an attribute request of that entry; fills the requested names. */
int sock_attr_req_match(const sock_attr_req *r, const uint8_t *p, size_t n);
int sock_attr_req_names(const sock_attr_req *r, const uint8_t *p, size_t n, char ***names, size_t *count);
void sock_flush(sock *s);

/* sock_downlink.c */
int sock_on_attribute_update(sock *s, const tbgw_attr_update *u);
int sock_on_rpc(sock *s, const tbgw_rpc_req *r);
int sock_on_attribute_response(sock *s, uint64_t cookie, const char *device, const json_t *data);
void sock_request_attributes(sock *s, size_t dev, char **names, size_t n, int client);
/* Forgets attribute requests the platform did not answer in time; the next deadline (INT64_MAX). */
int64_t sock_downlink_expire(sock *s, int64_t now_mono);
void sock_downlink_free(sock *s);

#endif
