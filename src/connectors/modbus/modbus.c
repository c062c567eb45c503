/* The Modbus connector (spec §7.2): master polling of slaves over one non-blocking event loop, and the
 * gateway's own Modbus server (slave mode). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/modbus/mbc.h"
#include "util/time.h"

static int same_endpoint(const tbgw_mb_endpoint *a, const tbgw_mb_endpoint *b) {
    if (a->transport != b->transport || a->framing != b->framing) return 0;
    if (a->transport == TBGW_MB_SERIAL) return !strcmp(a->path, b->path);
    if (a->transport == TBGW_MB_LOCAL) return a->local_store == b->local_store;
    return a->port == b->port && !strcmp(tbgw_mb_ep_host(a), tbgw_mb_ep_host(b));
}

static tbgw_mb_conn *find_conn(mbc *m, const tbgw_mb_endpoint *ep) {
    for (size_t i = 0; i < tbgw_mb_loop_conn_count(m->loop); i++) {
        tbgw_mb_conn *c = tbgw_mb_loop_conn_at(m->loop, i);
        if (same_endpoint(tbgw_mb_conn_endpoint(c), ep)) return c;
    }
    return NULL;
}

tbgw_mb_conn *mbc_conn_for(mbc *m, const tbgw_mb_endpoint *ep) {
    tbgw_mb_conn *c = find_conn(m, ep);
    return c ? c : tbgw_mb_conn_new(m->loop, ep);
}

tbgw_mb_conn *mbc_conn_adhoc(mbc *m, tbgw_mb_endpoint *ep) {
    tbgw_mb_conn *c = find_conn(m, ep);
    if (c) {
        mbc_endpoint_clear(ep);
        return c;
    }
    tbgw_mb_endpoint *n = realloc(m->adhoc, (m->n_adhoc + 1) * sizeof *n);
    if (!n) {
        mbc_endpoint_clear(ep);
        return NULL;
    }
    m->adhoc = n;
    m->adhoc[m->n_adhoc++] = *ep; /* its strings stay until the loop is gone */
    return tbgw_mb_conn_new(m->loop, ep);
}

/* After the loop was freed: the ad-hoc endpoints its connections borrowed from. */
static void free_adhoc(mbc *m) {
    for (size_t i = 0; i < m->n_adhoc; i++) mbc_endpoint_clear(&m->adhoc[i]);
    free(m->adhoc);
    m->adhoc = NULL;
    m->n_adhoc = 0;
}

static void mbc_free(mbc *m) {
    if (!m) return;
    mbc_rpc_free_all(m);
    tbgw_mb_loop_free(m->loop);
    free_adhoc(m);
    mbc_config_free(m);
    mbc_endpoint_clear(&m->server_ep);
    for (size_t i = 0; i < sizeof m->identity_strs / sizeof m->identity_strs[0]; i++)
        free(m->identity_strs[i]);
    free(m->store);
    free(m);
}

static int op_create(const tbgw_host *host, const json_t *cfg, void **self, tbgw_err *err) {
    mbc *m = calloc(1, sizeof *m);
    if (!m) return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    m->host = host;
    int rc = mbc_config_parse(m, cfg, err);
    if (rc < 0) {
        mbc_free(m);
        return rc;
    }
    if (!m->n_slaves && !m->server_enabled)
        TBGW_WARNF(host->log, "modbus: no slaves configured and no server enabled; nothing to do");
    *self = m;
    return 0;
}

static void set_state(mbc *m) {
    size_t up = 0, polled = 0;
    for (size_t i = 0; i < m->n_slaves; i++)
        if (m->slaves[i].n_blocks) {
            polled++;
            up += m->slaves[i].connected ? 1u : 0u;
        }
    tbgw_conn_state st = (!polled || up) ? TBGW_CONN_CONNECTED : TBGW_CONN_DISCONNECTED;
    if (st != m->state) {
        m->state = st;
        if (m->host->set_state)
            m->host->set_state(m->host, st, st == TBGW_CONN_CONNECTED ? NULL : m->last_error);
    }
}

static int op_run(void *self) {
    mbc *m = self;
    const tbgw_host *h = m->host;
    m->loop = tbgw_mb_loop_new(h->log);
    if (!m->loop) return TBGW_ENOMEM;
    if (tbgw_mb_loop_watch(m->loop, h->downlink_fd) < 0) {
        tbgw_mb_loop_free(m->loop);
        m->loop = NULL;
        return TBGW_EIO;
    }
    tbgw_err err = {0};
    if (m->server_enabled && mbc_server_start(m, &err) < 0) {
        TBGW_ERRORF(h->log, "%s", err.msg);
        snprintf(m->last_error, sizeof m->last_error, "%.200s", err.msg);
        tbgw_mb_loop_free(m->loop);
        m->loop = NULL;
        return err.code ? err.code : TBGW_EIO;
    }
    int64_t now = tbgw_mono_ms();
    for (size_t i = 0; i < m->n_slaves; i++) {
        mbc_slave *sl = &m->slaves[i];
        sl->conn = mbc_conn_for(m, &sl->ep);
        if (!sl->conn) return TBGW_ENOMEM;
        /* staggered start: spread first polls over one period so slaves do not fire together */
        sl->next_poll =
            now + (int64_t)((uint64_t)sl->poll_ms * i / (m->n_slaves ? m->n_slaves : 1)) % sl->poll_ms;
        sl->connected = sl->failures = 0;
        sl->hold_until = 0;
    }
    m->state = TBGW_CONN_STARTING;
    TBGW_INFOF(h->log, "modbus: polling %zu slave(s)%s", m->n_slaves,
               m->server ? ", serving slave mode" : "");
    int rc = 0;
    while (!m->stop) {
        if (h->dispatch(h)) break;
        now = tbgw_mono_ms();
        mbc_poll_due(m, now);
        mbc_rpc_expire(m, now);
        set_state(m);
        /* sleep until I/O, downlink (the host's descriptor is in the loop's epoll set), the next poll
         * or the next RPC deadline; the loop itself shortens this for its own request timers */
        now = tbgw_mono_ms();
        int64_t wait = mbc_poll_next_ms(m, now);
        int64_t rpc_due = mbc_rpc_next_deadline(m);
        if (rpc_due != INT64_MAX && rpc_due - now < wait) wait = rpc_due - now < 0 ? 0 : rpc_due - now;
        if (tbgw_mb_loop_run(m->loop, (int)wait) < 0) {
            rc = TBGW_EIO;
            break;
        }
    }
    for (size_t i = 0; i < m->n_slaves; i++)
        if (m->slaves[i].connected && h->device_disconnected)
            h->device_disconnected(h, m->slaves[i].device_name);
    for (size_t i = 0; i < m->n_slaves; i++) {
        m->slaves[i].conn = NULL;
        m->slaves[i].connected = 0;
        m->slaves[i].polling = 0;
    }
    mbc_rpc_free_all(m);
    tbgw_mb_loop_free(m->loop);
    free_adhoc(m);
    m->loop = NULL;
    m->server = NULL;
    return rc;
}

static void op_stop(void *self) {
    mbc *m = self;
    m->stop = 1;
}

static void op_destroy(void *self) {
    mbc_free(self);
}

static int op_attr(void *self, const tbgw_attr_update *u) {
    mbc *m = self;
    return m->loop ? mbc_on_attribute_update(m, u) : 0;
}

static int op_rpc(void *self, const tbgw_rpc_req *r) {
    mbc *m = self;
    if (!m->loop) {
        m->host->rpc_reply(m->host, r->handle, json_pack("{s:s}", "error", "connector is not running"), -1);
        return 0;
    }
    return mbc_on_rpc(m, r);
}

static void op_status(void *self, tbgw_connector_status *out) {
    mbc *m = self;
    out->state = m->state;
    snprintf(out->last_error, sizeof out->last_error, "%s", m->last_error);
}

const tbgw_connector_ops tbgw_connector_modbus = {
    .abi = TBGW_CONNECTOR_ABI,
    .type = "modbus",
    .flags = TBGW_CONNECTOR_COPIES_CONFIG, /* points, writes, variants, identity: all copied */
    .create = op_create,
    .run = op_run,
    .stop = op_stop,
    .destroy = op_destroy,
    .on_attribute_update = op_attr,
    .on_rpc = op_rpc,
    .status = op_status,
};
