#include "util/tcp.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

void tbgw_tcp_push(int fd) {
    if (fd < 0) return;
    int on = 1, off = 0;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on) == 0)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &off, sizeof off);
}
