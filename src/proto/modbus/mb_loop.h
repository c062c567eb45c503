/* Non-blocking Modbus client and server over TCP, UDP, TLS (OpenSSL) and serial lines (termios), driven
 * by one epoll loop so a single thread talks to hundreds of slaves at once.
 *
 * A tbgw_mb_conn is one transport (a TCP/UDP/TLS socket or a serial port) with a queue of requests; it
 * has at most one request in flight, so a serial line shared by several unit ids is serialized by
 * construction, while different connections run in parallel. Urgent requests (writes, RPC) go to
 * the head of the queue. A connection connects lazily on the first request and, when the transport
 * fails, fails every queued request with TBGW_EIO and waits for the next submit. */
#ifndef TBGW_PROTO_MB_LOOP_H
#define TBGW_PROTO_MB_LOOP_H

#include <stdint.h>
#include <tbgw/err.h>
#include <tbgw/log.h>
#include "proto/modbus/mb_pdu.h"

typedef struct tbgw_mb_loop tbgw_mb_loop;
typedef struct tbgw_mb_conn tbgw_mb_conn;
typedef struct tbgw_mb_server tbgw_mb_server;

typedef enum tbgw_mb_transport {
    TBGW_MB_TCP = 0,
    TBGW_MB_UDP,
    TBGW_MB_TLS,
    TBGW_MB_SERIAL,
    TBGW_MB_LOCAL, /* in-process: requests execute against local_store (the gateway's own server) */
} tbgw_mb_transport;

struct tbgw_mb_store;

/* The strings are borrowed (NULL = none; host NULL = 127.0.0.1): a connection or server keeps a copy
 * of the structure but points to the same strings, so they must stay alive until the loop is freed. */
typedef struct tbgw_mb_endpoint {
    tbgw_mb_transport transport;
    tbgw_mb_framing framing;
    const char *host;
    const char *path; /* serial device */
    const char *tls_ca, *tls_cert, *tls_key, *tls_password;
    int port;
    int baudrate;
    int bytesize, stopbits;
    char parity; /* 'N', 'E', 'O' */
    uint8_t handle_local_echo;
    uint8_t tls_verify;
    int64_t timeout_ms;                /* connect and response timeout */
    int64_t delay_between_ms;          /* pause after each response before the next request */
    struct tbgw_mb_store *local_store; /* TBGW_MB_LOCAL only */
} tbgw_mb_endpoint;

static inline const char *tbgw_mb_ep_host(const tbgw_mb_endpoint *ep) {
    return ep->host ? ep->host : "127.0.0.1";
}

/* status: 0 = answered (rsp valid; rsp->exception may be set), TBGW_ETIMEDOUT, TBGW_EIO (transport
 * down or connect failed), TBGW_EPROTO (invalid answer: bad CRC/LRC/MBAP header, wrong function, byte
 * count or echo), TBGW_MB_EEMPTY (a consistent read answer with fewer bytes than requested; rsp holds
 * them). A frame for another transaction id (MBAP) or unit id (RTU/ASCII) is a stale answer: it is
 * discarded and counted, and the request keeps waiting for its own answer (or times out).
 * rsp is borrowed for the call (NULL unless status is 0 or TBGW_MB_EEMPTY). */
typedef void (*tbgw_mb_done_fn)(void *ud, int status, const tbgw_mb_rsp *rsp);

typedef struct tbgw_mb_counters {
    uint64_t requests, responses, timeouts, bad_frames, exceptions, io_errors, bytes_rx, bytes_tx;
    uint64_t empty; /* short/empty read answers */
    uint64_t stale; /* discarded frames of another transaction or unit */
} tbgw_mb_counters;

/* Serial line timing: bits per character (start + data + parity + stop bits) and the RTU inter-frame
 * silence t3.5 in microseconds (3.5 character times; fixed 1750 us above 19200 baud, as the Modbus
 * serial line specification recommends). */
int tbgw_mb_char_bits(const tbgw_mb_endpoint *ep);
int64_t tbgw_mb_t35_us(const tbgw_mb_endpoint *ep);
int tbgw_mb_baud_supported(int baudrate);

tbgw_mb_loop *tbgw_mb_loop_new(tbgw_logger *log);
/* Closes every connection and server. Pending callbacks are dropped without being called. */
void tbgw_mb_loop_free(tbgw_mb_loop *l);
/* One turn: waits up to timeout_ms (less when a deadline is nearer) and processes I/O and timers. */
int tbgw_mb_loop_run(tbgw_mb_loop *l, int timeout_ms);
/* Adds a foreign descriptor (e.g. the host's downlink eventfd) to the loop's wait: when it becomes
 * readable, tbgw_mb_loop_run returns; its owner services it (level-triggered, so it must be drained
 * or removed from the loop by closing it after tbgw_mb_loop_free). */
int tbgw_mb_loop_watch(tbgw_mb_loop *l, int fd);
const tbgw_mb_counters *tbgw_mb_loop_counters(const tbgw_mb_loop *l);

/* No I/O happens here; the connection opens on the first request. Owned by the loop. */
tbgw_mb_conn *tbgw_mb_conn_new(tbgw_mb_loop *l, const tbgw_mb_endpoint *ep);
/* Queues a request (copied). Returns 0 or TBGW_EINVAL (unencodable) / TBGW_ENOMEM. The callback runs
 * later from tbgw_mb_loop_run, never from inside submit. */
int tbgw_mb_conn_submit(tbgw_mb_conn *c, uint8_t unit, const tbgw_mb_req *req, int urgent, tbgw_mb_done_fn cb,
                        void *ud);
/* Drops queued (not in-flight) requests whose ud matches, without calling their callbacks. */
size_t tbgw_mb_conn_cancel(tbgw_mb_conn *c, void *ud);
int tbgw_mb_conn_is_up(const tbgw_mb_conn *c);
size_t tbgw_mb_conn_pending(const tbgw_mb_conn *c);
const char *tbgw_mb_conn_name(const tbgw_mb_conn *c);
const tbgw_mb_endpoint *tbgw_mb_conn_endpoint(const tbgw_mb_conn *c);
size_t tbgw_mb_loop_conn_count(const tbgw_mb_loop *l);
tbgw_mb_conn *tbgw_mb_loop_conn_at(const tbgw_mb_loop *l, size_t i);

/* ---- server side ---- */
/* Device identification objects served by function 43 / MEI 14 (Read Device Identification):
 * 0 VendorName, 1 ProductCode, 2 MajorMinorRevision (basic: always served, "" when NULL),
 * 3 VendorUrl, 4 ProductName, 5 ModelName, 6 UserApplicationName (regular), 0x80..0xFF extended
 * (regular and extended ones exist only when not NULL). Strings are borrowed. */
typedef struct tbgw_mb_identity {
    const char *obj[256];
} tbgw_mb_identity;

typedef struct tbgw_mb_store {
    uint8_t coils[65536];
    uint8_t discrete[65536];
    uint16_t holding[65536];
    uint16_t input[65536];
    const tbgw_mb_identity *identity; /* NULL: function 43 answers exception 1 */
} tbgw_mb_store;

/* Called after a write request changed the store. */
typedef void (*tbgw_mb_write_fn)(void *ud, uint8_t fc, uint16_t addr, uint16_t count);

/* Executes one request PDU against the store; writes the response PDU to rsp (TBGW_MB_MAX_PDU bytes)
 * and returns its length. Functions 1-6, 15, 16 and 43/14 (device identification).
 * *wrote is set to 1 when the store changed. Never fails: bad requests get exception responses. */
size_t tbgw_mb_store_execute(tbgw_mb_store *s, const uint8_t *pdu, size_t len, uint8_t *rsp, int *wrote,
                             tbgw_mb_req *parsed);

/* Serves store on ep (TCP, UDP or serial; port 0 picks a free port). unit 0 answers every unit id. */
tbgw_mb_server *tbgw_mb_server_new(tbgw_mb_loop *l, const tbgw_mb_endpoint *ep, uint8_t unit,
                                   tbgw_mb_store *store, tbgw_mb_write_fn on_write, void *ud, tbgw_err *err);
int tbgw_mb_server_port(const tbgw_mb_server *s);

#endif
