/* The Request connector (spec §7.5): polls HTTP endpoints and turns platform requests into HTTP
 * requests.
 *
 * run() owns one libcurl multi handle: every due endpoint is started on it, and curl_multi_poll sleeps
 * on the transfers' sockets and host->downlink_fd together until one is ready or the next poll (or a
 * retry, or a transfer timeout) is due — no fixed slices, so an idle connector does not wake up
 * between its polls. Finished transfers are converted on this thread, and host->dispatch runs
 * attribute updates and RPC here too. All transfers progress concurrently, so a slow or dead endpoint
 * holds only its own schedule. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "connectors/request/request.h"
#include "util/time.h"

#define RQ_TURN_MS 10 /* hosts without downlink_fd */

/* ------------------------------------------------------------------ schedule (binary min-heap) */

static void heap_set(rq_conn *c, size_t i, rq_map *m) {
    c->heap[i] = m;
    m->heap_pos = i + 1;
}

static void sift_up(rq_conn *c, size_t i) {
    rq_map *m = c->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (c->heap[parent]->next_due <= m->next_due) break;
        heap_set(c, i, c->heap[parent]);
        i = parent;
    }
    heap_set(c, i, m);
}

static void sift_down(rq_conn *c, size_t i) {
    rq_map *m = c->heap[i];
    for (;;) {
        size_t l = 2 * i + 1, best = i;
        int64_t due = m->next_due;
        if (l < c->n_heap && c->heap[l]->next_due < due) best = l, due = c->heap[l]->next_due;
        if (l + 1 < c->n_heap && c->heap[l + 1]->next_due < due) best = l + 1;
        if (best == i) break;
        heap_set(c, i, c->heap[best]);
        i = best;
    }
    heap_set(c, i, m);
}

void rq_schedule(rq_conn *c, rq_map *m) {
    if (!c->heap || m->disabled || m->heap_pos) return;
    c->heap[c->n_heap] = m;
    sift_up(c, c->n_heap++);
}

static rq_map *heap_pop(rq_conn *c) {
    rq_map *top = c->heap[0];
    top->heap_pos = 0;
    if (--c->n_heap) {
        c->heap[0] = c->heap[c->n_heap];
        sift_down(c, 0);
    }
    return top;
}

/* ------------------------------------------------------------------ connector ops */

static int rq_create(const tbgw_host *host, const json_t *cfg, void **self, tbgw_err *err) {
    rq_conn *c = calloc(1, sizeof *c);
    if (!c) return TBGW_ENOMEM;
    c->host = host;
    int rc = rq_config_parse(&c->cfg, cfg, host, err);
    if (rc) {
        free(c);
        return rc;
    }
    for (size_t i = 0; i < c->cfg.n_maps; i++) {
        rq_map *m = &c->cfg.maps[i];
        tbgw_backoff_init(&m->backoff, 1000, m->period_ms > 1000 ? m->period_ms : 1000);
        m->last_ok = 1;
    }
    if (!(c->heap = calloc(c->cfg.n_maps + 1, sizeof *c->heap))) {
        rq_config_free(&c->cfg);
        free(c);
        return TBGW_ENOMEM;
    }
    *self = c;
    return 0;
}

/* Starts the due polls; returns the earliest next due time (monotonic ms), INT64_MAX when none. */
static int64_t start_due(rq_conn *c, int64_t now) {
    while (c->n_heap && c->heap[0]->next_due <= now) {
        rq_poll_start(c, heap_pop(c)); /* a failure to start puts it back on the schedule */
        now = tbgw_mono_ms();
    }
    return c->n_heap ? c->heap[0]->next_due : INT64_MAX;
}

static int rq_run(void *self) {
    rq_conn *c = self;
    const tbgw_host *h = c->host;
    tbgw_err err = {0};
    if (!c->http && !(c->http = tbgw_http_client_new(&err))) {
        TBGW_ERRORF(h->log, "%s", err.msg);
        c->host->set_state(h, TBGW_CONN_FAILED, err.msg);
        return TBGW_EIO;
    }
    /* first polls spread over the first second (at most one period), so that many endpoints with
     * the same period do not all fire in the same millisecond, round after round */
    int64_t now = tbgw_mono_ms();
    for (size_t i = 0; i < c->cfg.n_maps; i++) {
        rq_map *m = &c->cfg.maps[i];
        int64_t spread = m->period_ms < 1000 ? m->period_ms : 1000;
        m->next_due = now + (int64_t)i * spread / (int64_t)c->cfg.n_maps;
        m->heap_pos = 0;
        rq_schedule(c, m);
    }
    c->st.state = TBGW_CONN_STARTING;
    h->set_state(h, TBGW_CONN_STARTING, NULL);
    TBGW_INFOF(h->log, "polling %zu endpoint(s) of %s", c->cfg.n_maps, c->cfg.host);
    /* hosts of ABI 1 have downlink_fd: sleep on the transfers, the downlink and the next due poll at
     * once; an older host gets RQ_TURN_MS slices with wait(0) in between */
    int evented = h->dispatch && h->downlink_fd >= 0;
    int ready = 1;
    while (!atomic_load(&c->stop)) {
        if (evented ? ready && h->dispatch(h) : h->wait(h, 0)) break;
        int64_t next = start_due(c, tbgw_mono_ms());
        tbgw_http_client_poll_until(c->http, next, evented ? h->downlink_fd : -1, RQ_TURN_MS, &ready);
    }
    atomic_store(&c->stop, 1);
    tbgw_http_client_free(c->http); /* aborts what is in flight */
    c->http = NULL;
    for (size_t i = 0; i < c->cfg.n_maps; i++) c->cfg.maps[i].in_flight = c->cfg.maps[i].heap_pos = 0;
    c->n_heap = 0;
    c->st.state = TBGW_CONN_STOPPED;
    h->set_state(h, TBGW_CONN_STOPPED, NULL);
    return 0;
}

static void rq_stop(void *self) {
    rq_conn *c = self;
    atomic_store(&c->stop, 1);
}

static void rq_destroy(void *self) {
    rq_conn *c = self;
    if (!c) return;
    atomic_store(&c->stop, 1);
    tbgw_http_client_free(c->http);
    rq_config_free(&c->cfg);
    tbgw_py_ctx_free(c->py);
    free(c->heap);
    free(c);
}

static void rq_status(void *self, tbgw_connector_status *out) {
    rq_conn *c = self;
    *out = c->st;
}

const tbgw_connector_ops tbgw_connector_request = {
    .abi = TBGW_CONNECTOR_ABI,
    .type = "request",
    .create = rq_create,
    .run = rq_run,
    .stop = rq_stop,
    .destroy = rq_destroy,
    .on_attribute_update = rq_on_attribute_update,
    .on_rpc = rq_on_rpc,
    .status = rq_status,
};
