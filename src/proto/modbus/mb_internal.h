/* Internals shared by the files of the Modbus stack. */
#ifndef TBGW_PROTO_MB_INTERNAL_H
#define TBGW_PROTO_MB_INTERNAL_H

#include <openssl/ssl.h>
#include <stdint.h>
#include "proto/modbus/mb_loop.h"

/* Every object registered with epoll starts with one of these. */
typedef struct mb_handler {
    void (*on_io)(struct mb_handler *h, uint32_t events);
} mb_handler;

struct tbgw_mb_loop {
    int epfd;
    tbgw_logger *log;
    tbgw_mb_conn **conns;
    size_t n_conns, cap_conns;
    tbgw_mb_server **servers;
    size_t n_servers, cap_servers;
    tbgw_mb_counters ctr;
    /* shared by the loop's connections (one thread): a request frame is encoded and written from
     * tx_scratch, answers are read into rx_scratch; only bytes still pending (a frame half sent or
     * half received) are kept by the connection, in a buffer of their size */
    uint8_t tx_scratch[TBGW_MB_MAX_FRAME];
    uint8_t rx_scratch[1100];
    int rx_busy;
};

int mb_epoll_add(tbgw_mb_loop *l, int fd, mb_handler *h, uint32_t events);
int mb_epoll_mod(tbgw_mb_loop *l, int fd, mb_handler *h, uint32_t events);
void mb_epoll_del(tbgw_mb_loop *l, int fd);

/* Opens a non-blocking TCP (connect in progress allowed) or connected UDP socket. */
int mb_socket_open(const char *host, int port, int udp, int *in_progress);
/* Opens a non-blocking listening TCP socket or bound UDP socket. */
int mb_socket_listen(const char *host, int port, int udp);
struct termios;
/* Fills t (as read by tcgetattr) for the endpoint: raw, baudrate, bytesize 5-8, parity N/E/O, stopbits
 * 1/2, no flow control, non-blocking reads. TBGW_EINVAL for an unsupported baudrate. */
int mb_serial_termios(const tbgw_mb_endpoint *ep, struct termios *t, char *errbuf, size_t errlen);
/* Opens and configures a serial port (raw, baudrate/parity/stopbits/bytesize), non-blocking. */
int mb_serial_open(const tbgw_mb_endpoint *ep, char *errbuf, size_t errlen);
/* TLS client context from the endpoint's files (NULL on failure, message in errbuf). */
SSL_CTX *mb_tls_client_ctx(const tbgw_mb_endpoint *ep, char *errbuf, size_t errlen);
/* TLS server context (certificate and key required). */
SSL_CTX *mb_tls_server_ctx(const tbgw_mb_endpoint *ep, char *errbuf, size_t errlen);
void mb_hex(const uint8_t *p, size_t n, char *out, size_t outlen);

void mb_server_free(tbgw_mb_server *s);
/* Frees server clients closed during the last event batch. */
void mb_server_sweep(tbgw_mb_server *s);

#endif
