/* The Socket connector's event loop: one epoll set holds the listening (or UDP) socket, every
 * accepted connection and the outgoing connections made for downlink writes. Level-triggered;
 * each connection gets at most maxReadsPerTurn reads per turn, so a flooding client cannot starve
 * the others. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include <tbgw/connkit.h>

#include "connectors/socket/sock.h"
#include "util/time.h"

#define MAX_EVENTS    256
#define MAX_OUT_BYTES (4u << 20) /* per connection: downlink bytes not yet written */

void sock_warn(sock *s, const char *fmt, ...) {
    int64_t now = tbgw_mono_ms();
    if (now - s->last_warn < 1000) {
        s->warn_suppressed++;
        return;
    }
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (s->warn_suppressed)
        TBGW_WARNF(s->host->log, "%s (%llu similar message(s) suppressed)", msg,
                   (unsigned long long)s->warn_suppressed);
    else
        TBGW_WARNF(s->host->log, "%s", msg);
    s->warn_suppressed = 0;
    s->last_warn = now;
}

static void format_peer(const struct sockaddr_storage *sa, char *out, size_t cap) {
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
        port = ntohs(a->sin_port);
    } else if (sa->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
        port = ntohs(a->sin6_port);
        if (!strncmp(ip, "::ffff:", 7) && strchr(ip, '.')) memmove(ip, ip + 7, strlen(ip + 7) + 1);
    }
    snprintf(out, cap, "%s:%d", ip, port);
}

static void match_devices(sock *s, const char *peer, uint32_t *devs, size_t *n) {
    size_t len = strlen(peer);
    *n = 0;
    for (size_t i = 0; i < s->cfg.n_devices; i++)
        if (sock_device_matches(&s->cfg.devices[i], peer, len)) devs[(*n)++] = (uint32_t)i;
}

static int ep_ctl(sock *s, int op, sock_conn *c, uint32_t events) {
    struct epoll_event ev = {.events = events, .data.ptr = c};
    return epoll_ctl(s->ep, op, c->fd, &ev);
}

static void rpc_done(sock *s, uint64_t rpc, int with_reply, const char *error) {
    const tbgw_host *h = s->host;
    if (error)
        tbgw_rpc_failed(h, rpc, "%s", error);
    else if (with_reply)
        tbgw_rpc_result(h, rpc, json_string("ok"));
    else
        tbgw_rpc_success(h, rpc, 1);
}

static void conn_free(sock *s, sock_conn *c, const char *error) {
    if (c->fd >= 0) {
        epoll_ctl(s->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    if (c->kind == SOCK_CLIENT) {
        for (sock_conn **pp = &s->throttled; c->throttled && *pp; pp = &(*pp)->next_throttled)
            if (*pp == c) {
                *pp = c->next_throttled;
                break;
            }
        if (tbgw_hmap_get(&s->clients, c->peer) == c) tbgw_hmap_del(&s->clients, c->peer);
        s->n_clients--;
        TBGW_DEBUGF(s->host->log, "connection %s closed", c->peer);
    } else if (c->kind == SOCK_OUT) {
        for (sock_conn **pp = &s->outs; *pp; pp = &(*pp)->next_out)
            if (*pp == c) {
                *pp = c->next_out;
                break;
            }
        if (error) {
            s->cnt.downlink_errors++;
            TBGW_WARNF(s->host->log, "writing to %s: %s", c->peer, error);
        }
        if (c->rpc) rpc_done(s, c->rpc, c->rpc_with_reply, error);
    }
    free(c->devs);
    tbgw_buf_free(&c->out);
    free(c);
}

static int raise_nofile(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl)) return -1;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    return 0;
}

int sock_io_open(sock *s, tbgw_err *err) {
    const sock_cfg *c = &s->cfg;
    raise_nofile();
    s->ep = epoll_create1(EPOLL_CLOEXEC);
    if (s->ep < 0) return tbgw_err_set(err, TBGW_EIO, "epoll_create1: %s", strerror(errno));
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = c->udp ? SOCK_DGRAM : SOCK_STREAM,
                             .ai_flags = AI_PASSIVE},
                    *ai = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", c->port);
    int gr = getaddrinfo(c->bind_addr, port, &hints, &ai);
    if (gr) return tbgw_err_set(err, TBGW_EIO, "socket.address '%s': %s", c->bind_addr, gai_strerror(gr));
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd >= 0 && c->udp) {
        int rcv = 4 << 20;
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    }
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) || (!c->udp && listen(fd, SOMAXCONN))) {
        int e = errno;
        if (fd >= 0) close(fd);
        freeaddrinfo(ai);
        return tbgw_err_set(err, TBGW_EIO, "cannot %s %s %s:%d: %s", fd < 0 ? "create" : "bind",
                            c->udp ? "UDP" : "TCP", c->bind_addr, c->port, strerror(e));
    }
    freeaddrinfo(ai);
    s->srv = calloc(1, sizeof *s->srv);
    s->rbuf = malloc(c->buffer_size);
    if (!s->srv || !s->rbuf) {
        close(fd);
        return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    }
    s->srv->kind = c->udp ? SOCK_UDP : SOCK_LISTEN;
    s->srv->fd = fd;
    tbgw_buf_init(&s->srv->out);
    ep_ctl(s, EPOLL_CTL_ADD, s->srv, EPOLLIN);
    if (s->host->dispatch && s->host->downlink_fd >= 0) { /* downlink work wakes the loop (data.ptr NULL) */
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
        if (epoll_ctl(s->ep, EPOLL_CTL_ADD, s->host->downlink_fd, &ev))
            return tbgw_err_set(err, TBGW_EIO, "epoll_ctl(downlink descriptor): %s", strerror(errno));
        s->dl_in_epoll = 1;
    }
    tbgw_hmap_init(&s->clients);
    TBGW_INFOF(s->host->log, "%s socket is up on %s:%d (%zu device(s))", c->udp ? "UDP" : "TCP", c->bind_addr,
               c->port, c->n_devices);
    return 0;
}

void sock_io_close(sock *s) {
    while (s->outs) conn_free(s, s->outs, "the connector stopped");
    const char *k;
    void *v;
    sock_conn **all = calloc(s->n_clients + 1, sizeof *all);
    size_t n = 0;
    for (size_t i = 0; all && (i = tbgw_hmap_next(&s->clients, i, &k, &v)) != 0;) all[n++] = v;
    for (size_t i = 0; i < n; i++) conn_free(s, all[i], NULL);
    free(all);
    tbgw_hmap_free(&s->clients, NULL);
    if (s->srv) {
        close(s->srv->fd);
        tbgw_buf_free(&s->srv->out);
        free(s->srv);
        s->srv = NULL;
    }
    if (s->ep >= 0) close(s->ep);
    s->ep = -1;
    s->dl_in_epoll = 0;
    free(s->rbuf);
    s->rbuf = NULL;
}

static void accept_all(sock *s) {
    uint32_t *devs = calloc(s->cfg.n_devices + 1, sizeof *devs);
    if (!devs) return;
    for (int k = 0; k < 256; k++) {
        struct sockaddr_storage sa;
        socklen_t sl = sizeof sa;
        int fd = accept4(s->srv->fd, (struct sockaddr *)&sa, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE) sock_warn(s, "accept: %s", strerror(errno));
            break;
        }
        char peer[64];
        format_peer(&sa, peer, sizeof peer);
        if (s->n_clients >= s->cfg.max_connections) {
            close(fd);
            s->cnt.rejected_conns++;
            sock_warn(s, "connection from %s refused: %zu connections open (socket.maxConnections)", peer,
                      s->n_clients);
            continue;
        }
        size_t n;
        match_devices(s, peer, devs, &n);
        if (!n) {
            close(fd);
            s->cnt.refused_peers++;
            sock_warn(s, "connection from %s refused: its address matches no device", peer);
            continue;
        }
        sock_conn *c = calloc(1, sizeof *c);
        if (!c || !(c->devs = malloc(n * sizeof *c->devs))) {
            free(c);
            close(fd);
            break;
        }
        c->kind = SOCK_CLIENT;
        c->fd = fd;
        c->tokens = (double)s->cfg.max_rate;
        c->refilled = tbgw_mono_ms();
        c->sa = sa;
        c->salen = sl;
        memcpy(c->devs, devs, n * sizeof *devs);
        c->n_devs = n;
        snprintf(c->peer, sizeof c->peer, "%s", peer);
        tbgw_buf_init(&c->out);
        void *old = NULL;
        tbgw_hmap_put(&s->clients, peer, c, &old);
        s->n_clients++;
        ep_ctl(s, EPOLL_CTL_ADD, c, EPOLLIN | EPOLLRDHUP);
        TBGW_DEBUGF(s->host->log, "new connection %s", peer);
    }
    free(devs);
}

/* Token bucket (burst of one second's worth); 0 when the client must wait. */
static int take_token(sock *s, sock_conn *c, int64_t now) {
    if (!s->cfg.max_rate) return 1;
    double rate = (double)s->cfg.max_rate;
    c->tokens += (double)(now - c->refilled) * rate / 1000.0;
    if (c->tokens > rate) c->tokens = rate;
    c->refilled = now;
    if (c->tokens >= 1) {
        c->tokens -= 1;
        return 1;
    }
    return 0;
}

static void throttle(sock *s, sock_conn *c, int64_t now) {
    ep_ctl(s, EPOLL_CTL_MOD, c, c->in_epoll_out ? EPOLLOUT : 0);
    c->throttled = 1;
    c->resume_at = now + 50;
    c->next_throttled = s->throttled;
    s->throttled = c;
    s->cnt.throttled++;
    sock_warn(s, "%s sends more than %lld messages/s (socket.maxMessagesPerSecond); reading it is paused",
              c->peer, (long long)s->cfg.max_rate);
}

static void resume_throttled(sock *s, int64_t now) {
    for (sock_conn **pp = &s->throttled; *pp;) {
        sock_conn *c = *pp;
        if (now < c->resume_at) {
            pp = &c->next_throttled;
            continue;
        }
        *pp = c->next_throttled;
        c->throttled = 0;
        ep_ctl(s, EPOLL_CTL_MOD, c, EPOLLIN | EPOLLRDHUP | (c->in_epoll_out ? EPOLLOUT : 0));
    }
}

/* hangup: the peer is gone, what it sent is read regardless of its rate */
static void read_client(sock *s, sock_conn *c, int hangup) {
    int64_t now = tbgw_mono_ms();
    for (size_t k = 0; k < s->cfg.max_reads_per_turn || hangup; k++) {
        if (!hangup && !take_token(s, c, now)) {
            throttle(s, c, now);
            return;
        }
        ssize_t n = recv(c->fd, s->rbuf, s->cfg.buffer_size, 0);
        if (n > 0) {
            sock_on_message(s, c->peer, &c->sa, c->salen, c->devs, c->n_devs, s->rbuf, (size_t)n);
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
        conn_free(s, c, NULL);
        return;
    }
}

static void read_udp(sock *s) {
    uint32_t *devs = calloc(s->cfg.n_devices + 1, sizeof *devs);
    if (!devs) return;
    /* consecutive datagrams from one peer reuse its device match */
    struct sockaddr_storage last;
    socklen_t last_len = 0;
    char peer[64] = "";
    size_t nd = 0;
    for (size_t k = 0; k < s->cfg.max_reads_per_turn * 16; k++) {
        struct sockaddr_storage sa;
        socklen_t sl = sizeof sa;
        ssize_t n = recvfrom(s->srv->fd, s->rbuf, s->cfg.buffer_size, 0, (struct sockaddr *)&sa, &sl);
        if (n < 0) break;
        if (sl != last_len || memcmp(&sa, &last, sl)) {
            format_peer(&sa, peer, sizeof peer);
            match_devices(s, peer, devs, &nd);
            memcpy(&last, &sa, sl);
            last_len = sl;
        }
        sock_on_message(s, peer, &sa, sl, devs, nd, s->rbuf, (size_t)n);
    }
    free(devs);
}

/* Writes what is queued; 1 when everything is written, 0 when waiting, -1 on error (errno). */
static int flush_out(sock *s, sock_conn *c) {
    while (c->out_off < c->out.len) {
        ssize_t n = send(c->fd, c->out.p + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) {
            if (!c->in_epoll_out) {
                ep_ctl(s, EPOLL_CTL_MOD, c,
                       (c->kind == SOCK_CLIENT && !c->throttled ? EPOLLIN | EPOLLRDHUP : 0) | EPOLLOUT);
                c->in_epoll_out = 1;
            }
            return 0;
        }
        return -1;
    }
    tbgw_buf_reset(&c->out);
    c->out_off = 0;
    if (c->in_epoll_out && c->kind == SOCK_CLIENT) {
        ep_ctl(s, EPOLL_CTL_MOD, c, c->throttled ? 0 : EPOLLIN | EPOLLRDHUP);
        c->in_epoll_out = 0;
    }
    return 1;
}

static void on_out_event(sock *s, sock_conn *c, uint32_t ev) {
    if (c->connecting) {
        int e = 0;
        socklen_t l = sizeof e;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &l) || e) {
            char m[160];
            snprintf(m, sizeof m, "cannot connect to %s: %s", c->peer, strerror(e ? e : errno));
            conn_free(s, c, m);
            return;
        }
        c->connecting = 0;
    }
    (void)ev;
    int r = flush_out(s, c);
    if (r < 0) {
        char m[160];
        snprintf(m, sizeof m, "write to %s failed: %s", c->peer, strerror(errno));
        conn_free(s, c, m);
    } else if (r == 1) {
        s->cnt.downlink_writes++;
        shutdown(c->fd, SHUT_WR);
        conn_free(s, c, NULL);
    }
}

/* 1 when the connection was closed */
static int on_client_writable(sock *s, sock_conn *c) {
    if (flush_out(s, c) >= 0) return 0;
    conn_free(s, c, NULL);
    return 1;
}

int sock_io_turn(sock *s, int64_t timeout_ms) {
    const tbgw_host *h = s->host;
    if (timeout_ms > INT32_MAX) timeout_ms = INT32_MAX;
    if (!s->dl_in_epoll) { /* a host without the downlink descriptor: slices with wait() */
        if (h->wait(h, 0)) return 1;
        if (timeout_ms < 0 || timeout_ms > 10) timeout_ms = 10;
    }
    int64_t now = tbgw_mono_ms();
    if (s->pause_until > now) { /* the core is saturated: only downlink until the pause ends */
        int64_t w = s->pause_until - now;
        return tbgw_host_poll(h, NULL, 0, timeout_ms >= 0 && timeout_ms < w ? timeout_ms : w) == 1;
    }
    if (s->throttled) resume_throttled(s, now);
    struct epoll_event evs[MAX_EVENTS];
    int n = epoll_wait(s->ep, evs, MAX_EVENTS, (int)timeout_ms);
    if (n < 0) return errno == EINTR ? 0 : TBGW_EIO;
    int downlink = 0;
    for (int i = 0; i < n; i++) {
        sock_conn *c = evs[i].data.ptr;
        uint32_t ev = evs[i].events;
        if (!c) {
            downlink = 1;
            continue;
        }
        switch (c->kind) {
        case SOCK_LISTEN:
            accept_all(s);
            break;
        case SOCK_UDP:
            read_udp(s);
            break;
        case SOCK_CLIENT:
            if ((ev & EPOLLOUT) && on_client_writable(s, c)) break;
            if (ev & (EPOLLHUP | EPOLLERR))
                read_client(s, c, 1);
            else if ((ev & (EPOLLIN | EPOLLRDHUP)) && !c->throttled)
                read_client(s, c, 0);
            break;
        case SOCK_OUT:
            on_out_event(s, c, ev);
            break;
        }
    }
    sock_flush(s);
    /* after the I/O events: a dispatch may close connections evs[] still points to */
    return downlink && h->dispatch(h) ? 1 : 0;
}

int64_t sock_io_expire(sock *s, int64_t now) {
    int64_t next = INT64_MAX;
    for (sock_conn *c = s->outs, *nx; c; c = nx) {
        nx = c->next_out;
        if (now >= c->deadline) {
            char m[160];
            snprintf(m, sizeof m, "writing to %s timed out", c->peer);
            conn_free(s, c, m);
        } else if (c->deadline < next) {
            next = c->deadline;
        }
    }
    for (const sock_conn *c = s->throttled; c; c = c->next_throttled)
        if (c->resume_at < next) next = c->resume_at;
    if (s->pause_until > now && s->pause_until < next) next = s->pause_until;
    return next;
}

static int resolve(const char *peer, struct sockaddr_storage *sa, socklen_t *salen, int udp) {
    char host[64];
    snprintf(host, sizeof host, "%s", peer);
    char *colon = strrchr(host, ':');
    if (!colon) return -1;
    *colon = 0;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = udp ? SOCK_DGRAM : SOCK_STREAM}, *ai;
    if (getaddrinfo(host, colon + 1, &hints, &ai)) return -1;
    memcpy(sa, ai->ai_addr, ai->ai_addrlen);
    *salen = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

static int new_out(sock *s, const char *peer, const struct sockaddr_storage *sa, socklen_t salen,
                   const void *p, size_t n, int has_rpc, uint64_t rpc, int with_reply, char *err,
                   size_t errlen) {
    int fd = socket(sa->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return TBGW_EIO;
    }
    int r = connect(fd, (const struct sockaddr *)sa, salen);
    if (r < 0 && errno != EINPROGRESS) {
        snprintf(err, errlen, "cannot connect to %s: %s", peer, strerror(errno));
        close(fd);
        return TBGW_EIO;
    }
    sock_conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        snprintf(err, errlen, "out of memory");
        return TBGW_ENOMEM;
    }
    c->kind = SOCK_OUT;
    c->fd = fd;
    c->connecting = r < 0;
    c->deadline = tbgw_mono_ms() + s->cfg.connect_timeout_ms;
    c->rpc = has_rpc ? rpc : 0;
    c->rpc_with_reply = with_reply;
    snprintf(c->peer, sizeof c->peer, "%s", peer);
    tbgw_buf_init(&c->out);
    tbgw_buf_append(&c->out, p, n);
    c->next_out = s->outs;
    s->outs = c;
    c->in_epoll_out = 1;
    ep_ctl(s, EPOLL_CTL_ADD, c, EPOLLOUT);
    return 0;
}

int sock_io_send(sock *s, const char *peer, const struct sockaddr_storage *sa, socklen_t salen, const void *p,
                 size_t n, int has_rpc, uint64_t rpc, int with_reply) {
    char err[200] = "";
    struct sockaddr_storage tmp;
    int rc = 0;
    if (!sa || !salen) {
        if (resolve(peer, &tmp, &salen, s->cfg.udp)) {
            snprintf(err, sizeof err, "cannot resolve the address %s", peer);
            rc = TBGW_EINVAL;
            goto done;
        }
        sa = &tmp;
    }
    if (s->cfg.udp) {
        ssize_t w = sendto(s->srv->fd, p, n, MSG_NOSIGNAL, (const struct sockaddr *)sa, salen);
        if (w < 0) {
            snprintf(err, sizeof err, "sending a datagram to %s: %s", peer, strerror(errno));
            rc = TBGW_EIO;
        } else {
            s->cnt.downlink_writes++;
        }
        goto done;
    }
    sock_conn *c = tbgw_hmap_get(&s->clients, peer);
    if (c) {
        if (c->out.len - c->out_off + n > MAX_OUT_BYTES) {
            snprintf(err, sizeof err, "%s does not read what it is sent (%zu bytes waiting)", peer,
                     c->out.len - c->out_off);
            rc = TBGW_EFULL;
            goto done;
        }
        tbgw_buf_append(&c->out, p, n);
        s->cnt.downlink_writes++;
        if (flush_out(s, c) < 0) {
            snprintf(err, sizeof err, "write to %s failed: %s", peer, strerror(errno));
            conn_free(s, c, NULL);
            rc = TBGW_EIO;
        }
        goto done;
    }
    rc = new_out(s, peer, sa, salen, p, n, has_rpc, rpc, with_reply, err, sizeof err);
    if (rc == 0) return 0; /* answered when the write completes */
done:
    if (rc < 0) {
        s->cnt.downlink_errors++;
        TBGW_WARNF(s->host->log, "%s", err);
    }
    if (has_rpc) rpc_done(s, rpc, with_reply, rc < 0 ? err : NULL);
    return rc;
}
