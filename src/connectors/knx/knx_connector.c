/* The KNX connector (spec connectors.md §9) on tbgw's own KNXnet/IP client (src/proto/knx): the
 * connector thread sleeps in one poll() on the client's UDP socket and host->downlink_fd until a
 * telegram, downlink work (attribute updates, RPC, dispatched at once) or the next timer of the
 * client, the polls or the RPC deadlines (at most 1 s). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tbgw/connkit.h>

#include "connectors/knx/knx_conn.h"
#include "util/time.h"

static void cb_telegram(void *ud, const knx_ldata *ld) {
    kx_on_telegram(ud, ld);
}

static void cb_sent(void *ud, uint64_t tag, int ok, const char *why) {
    kx *k = ud;
    unsigned kind = (unsigned)(tag >> 56);
    uint64_t a = (tag >> 32) & 0xFFFFFFu, b = tag & 0xFFFFFFFFu;
    if (kind == KX_TAG_POLL)
        kx_poll_sent(k, (size_t)a, (uint32_t)b, ok);
    else if (kind == KX_TAG_RPC)
        kx_rpc_sent(k, b, ok, why);
    else if (kind == KX_TAG_WRITE && !ok && a < k->n_attr_updates) {
        char gs[16];
        knx_ga_format(k->attr_updates[a].ga, k->ga_style, gs, sizeof gs);
        TBGW_ERRORF(k->host->log, "knx: attribute %s: GroupValueWrite %s failed: %s", k->attr_updates[a].key,
                    gs, why ? why : "not sent");
    }
}

static void set_state(kx *k, tbgw_conn_state st, const char *why) {
    if (why) snprintf(k->last_error, sizeof k->last_error, "%s", why);
    if (st == k->state) return;
    k->state = st;
    if (k->host->set_state) k->host->set_state(k->host, st, st == TBGW_CONN_CONNECTED ? NULL : k->last_error);
}

static void cb_state(void *ud, int up, const char *why) {
    kx *k = ud;
    k->connected = up;
    if (up) {
        kx_polls_reset(k); /* every device is polled right after (re)connecting */
        set_state(k, TBGW_CONN_CONNECTED, NULL);
    } else {
        kx_polls_reset(k);
        set_state(k, TBGW_CONN_DISCONNECTED, why);
    }
}

static void kx_free(kx *k) {
    if (!k) return;
    kx_config_free(k);
    free(k);
}

static int op_create(const tbgw_host *host, const json_t *cfg, void **self, tbgw_err *err) {
    kx *k = calloc(1, sizeof *k);
    if (!k) return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    k->host = host;
    int rc = kx_config_parse(k, cfg, err);
    if (rc < 0) {
        kx_free(k);
        return rc;
    }
    if (!k->n_devices && !k->n_attr_updates && !k->n_rpcs)
        TBGW_WARNF(host->log, "knx: no devices, attributeUpdates or serverSideRpc configured; nothing to do");
    *self = k;
    return 0;
}

static int op_run(void *self) {
    kx *k = self;
    const tbgw_host *h = k->host;
    knx_client_cb cb = {.ud = k, .on_telegram = cb_telegram, .on_sent = cb_sent, .on_state = cb_state};
    k->client = knx_client_new(&k->ccfg, &cb, h->log);
    if (!k->client) return TBGW_ENOMEM;
    k->state = TBGW_CONN_STARTING;
    k->connected = 0;
    TBGW_INFOF(h->log, "knx: %zu device(s), %zu group address(es) listened to", k->n_devices, k->n_gas);
    while (!k->stop) {
        int64_t now = tbgw_mono_ms();
        knx_client_step(k->client, now);
        kx_poll_due(k, now);
        kx_rpc_expire(k, now);
        now = tbgw_mono_ms();
        int64_t wait = knx_client_next_ms(k->client, now);
        int64_t pw = kx_poll_next_ms(k, now), rw = kx_rpc_next_ms(k, now);
        if (pw < wait) wait = pw;
        if (rw < wait) wait = rw;
        struct pollfd pfd = {.fd = knx_client_fd(k->client), .events = knx_client_events(k->client)};
        int r = tbgw_host_poll(h, &pfd, 1, wait);
        if (r == 1) break;
        if (r < 0) tbgw_sleep_ms(10); /* poll() failing (ENOMEM): no busy loop */
    }
    kx_rpc_fail_all(k, "connector stopped");
    knx_client *c = k->client;
    k->client = NULL;
    knx_client_free(c);
    k->connected = 0;
    for (size_t i = 0; i < k->n_devices; i++) k->devices[i].polling = 0;
    return 0;
}

static void op_stop(void *self) {
    kx *k = self;
    k->stop = 1;
}

static void op_destroy(void *self) {
    kx_free(self);
}

static int op_attr(void *self, const tbgw_attr_update *u) {
    kx *k = self;
    if (!k->client) return 0;
    return kx_on_attribute_update(k, u);
}

static int op_rpc(void *self, const tbgw_rpc_req *r) {
    kx *k = self;
    if (!k->client) {
        k->host->rpc_reply(k->host, r->handle, json_pack("{s:s}", "result", "connector is not running"), 0);
        return 0;
    }
    return kx_on_rpc(k, r);
}

const tbgw_connector_ops tbgw_connector_knx = {
    .abi = TBGW_CONNECTOR_ABI,
    .type = "knx",
    .create = op_create,
    .run = op_run,
    .stop = op_stop,
    .destroy = op_destroy,
    .on_attribute_update = op_attr,
    .on_rpc = op_rpc,
};
