/* The REST connector (spec §7.4): an HTTP(S) server for devices that push data, plus outgoing HTTP
 * requests for attribute updates and RPC.
 *
 * run() starts the server (the HTTP module's worker threads decode, convert and emit requests), then
 * loops on the connector thread: curl_multi_poll sleeps on host->downlink_fd and the outgoing
 * requests' sockets until one is ready or the earliest parked request's deadline (a request parked
 * meanwhile with an earlier one wakes it up); host->dispatch runs the downlink, parked requests past
 * their timeout get 408. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "connectors/rest/rest.h"
#include "util/time.h"

#define RS_TURN_MS 10 /* hosts without downlink_fd */

static int rs_create(const tbgw_host *host, const json_t *cfg, void **self, tbgw_err *err) {
    rs_conn *c = calloc(1, sizeof *c);
    if (!c) return TBGW_ENOMEM;
    c->host = host;
    int rc = rs_config_parse(&c->cfg, cfg, host, err);
    if (rc) {
        free(c);
        return rc;
    }
    pthread_mutex_init(&c->mu, NULL);
    *self = c;
    return 0;
}

static void set_state(rs_conn *c, tbgw_conn_state s, const char *text) {
    c->st.state = s;
    snprintf(c->st.last_error, sizeof c->st.last_error, "%s", text ? text : "");
    c->host->set_state(c->host, s, text);
}

static int rs_run(void *self) {
    rs_conn *c = self;
    const tbgw_host *h = c->host;
    tbgw_err err = {0};
    set_state(c, TBGW_CONN_STARTING, NULL);
    if (!c->http && !(c->http = tbgw_http_client_new(&err))) {
        TBGW_ERRORF(h->log, "%s", err.msg);
        set_state(c, TBGW_CONN_FAILED, err.msg);
        return TBGW_EIO;
    }
    if (rs_server_start(c, &err)) {
        TBGW_ERRORF(h->log, "%s", err.msg);
        set_state(c, TBGW_CONN_FAILED, err.msg);
        return TBGW_EIO; /* the host restarts the connector with backoff */
    }
    set_state(c, TBGW_CONN_CONNECTED, NULL);
    /* hosts of ABI 1 have downlink_fd: sleep until downlink work, an outgoing transfer's activity or
     * the earliest parked deadline; an older host gets RS_TURN_MS slices with wait(0) in between */
    int evented = h->dispatch && h->downlink_fd >= 0;
    int ready = 1;
    while (!atomic_load(&c->stop)) {
        if (evented ? ready && h->dispatch(h) : h->wait(h, 0)) break;
        rs_pending_expire(c, tbgw_mono_ms());
        tbgw_http_client_poll_until(c->http, rs_pending_arm(c), evented ? h->downlink_fd : -1, RS_TURN_MS,
                                    &ready);
    }
    atomic_store(&c->stop, 1);
    rs_server_stop(c);
    tbgw_http_client_free(c->http);
    c->http = NULL;
    set_state(c, TBGW_CONN_STOPPED, NULL);
    return 0;
}

static void rs_stop(void *self) {
    rs_conn *c = self;
    atomic_store(&c->stop, 1);
}

static void rs_destroy(void *self) {
    rs_conn *c = self;
    if (!c) return;
    atomic_store(&c->stop, 1);
    rs_server_stop(c);
    tbgw_http_client_free(c->http);
    rs_config_free(&c->cfg);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static void rs_status(void *self, tbgw_connector_status *out) {
    rs_conn *c = self;
    *out = c->st;
}

const tbgw_connector_ops tbgw_connector_rest = {
    .abi = TBGW_CONNECTOR_ABI,
    .type = "rest",
    .create = rs_create,
    .run = rs_run,
    .stop = rs_stop,
    .destroy = rs_destroy,
    .on_attribute_update = rs_on_attribute_update,
    .on_rpc = rs_on_rpc,
    .on_attribute_response = rs_on_attribute_response,
    .status = rs_status,
};
