/* TCP helpers for the platform session (libmosquitto). */
#ifndef TBGW_UTIL_TCP_H
#define TBGW_UTIL_TCP_H

/* Sends at once what Nagle's algorithm holds back on a TCP socket (TCP_NODELAY switched on and off
 * again pushes the pending segments): for a latency-critical message, such as an RPC reply written
 * right after the PUBACK of its request, which would otherwise wait for the peer's delayed ACK
 * (40 ms on Linux). The socket keeps coalescing small writes otherwise (throughput). */
void tbgw_tcp_push(int fd);

#endif
