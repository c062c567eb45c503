/* The Socket connector (spec §7.6): a TCP or UDP server for devices that send raw bytes; values are
 * byte slices of each message. One epoll loop on the connector thread serves every connection and
 * host->downlink_fd, and sleeps until I/O, downlink work or its next deadline. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tbgw/connkit.h>

#include "connectors/socket/sock.h"
#include "util/time.h"

static void sock_free(sock *s) {
    if (!s) return;
    sock_downlink_free(s);
    sock_config_free(&s->cfg);
    tbgw_buf_free(&s->scratch);
    free(s);
}

static int op_create(const tbgw_host *host, const json_t *cfg, void **self, tbgw_err *err) {
    sock *s = calloc(1, sizeof *s);
    if (!s) return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    s->host = host;
    s->ep = -1;
    tbgw_buf_init(&s->scratch);
    int rc = sock_config_parse(&s->cfg, cfg, host, err);
    if (rc < 0) {
        sock_free(s);
        return rc;
    }
    if (s->cfg.old_format)
        TBGW_WARNF(host->log,
                   "Old Socket connector configuration format detected. Automatic conversion is applied.");
    if (!s->cfg.n_devices)
        TBGW_WARNF(host->log, "socket: no devices configured; every message will be dropped");
    *self = s;
    return 0;
}

static void set_state(sock *s, tbgw_conn_state st, const char *text) {
    if (st == s->state) return;
    s->state = st;
    if (s->host->set_state) s->host->set_state(s->host, st, text);
}

static void free_chain(sock *s) {
    tbgw_converted_free(s->chain);
    s->chain = NULL;
    s->chain_tail = &s->chain;
    s->chain_len = 0;
}

static int op_run(void *self) {
    sock *s = self;
    const tbgw_host *h = s->host;
    tbgw_err err = {0};
    s->chain = NULL;
    s->chain_tail = &s->chain;
    s->chain_len = 0;
    s->pause_until = 0;
    if (sock_io_open(s, &err) < 0) {
        TBGW_ERRORF(h->log, "%s", err.msg);
        set_state(s, TBGW_CONN_FAILED, err.msg);
        sock_io_close(s);
        return err.code ? err.code : TBGW_EIO;
    }
    set_state(s, TBGW_CONN_CONNECTED, NULL);
    int rc = 0;
    while (!s->stop) {
        int64_t now = tbgw_mono_ms();
        int64_t next = sock_io_expire(s, now), dl = sock_downlink_expire(s, now);
        if (dl < next) next = dl;
        int64_t timeout = next == INT64_MAX ? -1 : next > now ? next - now : 0;
        int r = sock_io_turn(s, timeout);
        if (r == 1) break;
        if (r < 0) {
            rc = r;
            break;
        }
    }
    sock_flush(s);
    free_chain(s);
    sock_io_close(s);
    sock_downlink_free(s);
    TBGW_INFOF(
        h->log,
        "socket stopped: %llu message(s), %llu byte(s), %llu converted, %llu unmatched, %llu dropped, "
        "%llu conversion error(s), %llu refused connection(s), %llu pause(s) of clients over their rate",
        (unsigned long long)s->cnt.messages, (unsigned long long)s->cnt.bytes,
        (unsigned long long)s->cnt.converted, (unsigned long long)s->cnt.unmatched,
        (unsigned long long)s->cnt.emit_drops, (unsigned long long)s->cnt.conv_errors,
        (unsigned long long)(s->cnt.refused_peers + s->cnt.rejected_conns),
        (unsigned long long)s->cnt.throttled);
    set_state(s, TBGW_CONN_STOPPED, NULL);
    return rc;
}

static void op_stop(void *self) {
    sock *s = self;
    s->stop = 1;
}

static void op_destroy(void *self) {
    sock_free(self);
}

static int op_attr(void *self, const tbgw_attr_update *u) {
    sock *s = self;
    return s->srv ? sock_on_attribute_update(s, u) : 0;
}

static int op_rpc(void *self, const tbgw_rpc_req *r) {
    sock *s = self;
    if (!s->srv) {
        tbgw_rpc_failed(s->host, r->handle, "connector is not running");
        return 0;
    }
    return sock_on_rpc(s, r);
}

static int op_attr_resp(void *self, uint64_t cookie, const char *device, const json_t *data) {
    sock *s = self;
    return s->srv ? sock_on_attribute_response(s, cookie, device, data) : 0;
}

const tbgw_connector_ops tbgw_connector_socket = {
    .abi = TBGW_CONNECTOR_ABI,
    .type = "socket",
    .create = op_create,
    .run = op_run,
    .stop = op_stop,
    .destroy = op_destroy,
    .on_attribute_update = op_attr,
    .on_rpc = op_rpc,
    .on_attribute_response = op_attr_resp,
};
