/* Change-of-value subscriptions (beyond the reference; device option `useCov`, default off): every
 * polled object of an active device is subscribed with SubscribeCOV (unconfirmed notifications,
 * renewed at half the lifetime); a notification is converted like a poll result and emitted at once.
 * Polling goes on as before, so an object whose device refuses the subscription is still read. */
#include <stdlib.h>
#include <string.h>

#include "connectors/bacnet/bacnet.h"
#include "util/time.h"

typedef struct cov_rq {
    bnc_device *d;
    uint16_t type;
    uint32_t inst;
} cov_rq;

static void send_next(bnc_device *d);

static void on_subscribed(void *ud, const bn_result *r) {
    cov_rq *q = ud;
    bnc_device *d = q->d;
    d->cov_inflight--;
    if (r->status == BN_OK) {
        d->cov_ok++;
    } else if (r->status != BN_E_CANCELLED) {
        char why[128];
        bn_result_text(r, why, sizeof why);
        d->cov_refused++;
        TBGW_INFOF(d->conn->h->log, "device %s: no COV subscription for object %u,%u (%s): polled only",
                   d->name, q->type, q->inst, why);
    }
    free(q);
    if (r->status != BN_E_CANCELLED) send_next(d);
}

static int seen(const bnc_device *d, size_t upto, uint16_t type, uint32_t inst) {
    for (size_t k = 0; k < upto; k++)
        if (d->points[k].type == type && d->points[k].inst == inst) return 1;
    return 0;
}

/* Subscribes the next objects, at most 8 requests in flight per device. */
static void send_next(bnc_device *d) {
    bnc_conn *c = d->conn;
    while (d->cov_inflight < 8 && d->cov_next < d->n_points) {
        size_t i = d->cov_next++;
        const bnc_point *p = &d->points[i];
        if (p->type == 8 || seen(d, i, p->type, p->inst)) continue;
        cov_rq *q = calloc(1, sizeof *q);
        if (!q) return;
        *q = (cov_rq){d, p->type, p->inst};
        uint8_t buf[32];
        bn_w w;
        bn_w_init(&w, buf, sizeof buf);
        bn_subscribe_cov(&w, d->cov_pid, p->type, p->inst, 0, d->cfg->cov_lifetime_s, 0);
        if (bn_client_request(c->cl, &d->addr, BN_SVC_SUBSCRIBE_COV, buf, w.len, d->iam.max_apdu, 0,
                              on_subscribed, q) != 0) {
            free(q);
            return;
        }
        d->cov_inflight++;
    }
}

void bnc_cov_tick(bnc_device *d, int64_t now) {
    if (!d->cfg->use_cov || d->state != BNC_ACTIVE || now < d->cov_renew_at || d->cov_inflight) return;
    if (!d->cov_pid) d->cov_pid = (uint32_t)(d->conn->n_devs + 1);
    d->cov_renew_at = now + (int64_t)d->cfg->cov_lifetime_s * 1000 / 2;
    d->cov_ok = d->cov_refused = 0;
    d->cov_next = 0;
    send_next(d);
}

typedef struct cov_ctx {
    bnc_result res[BNC_MAX_PROPS * 2];
    size_t n;
    uint16_t type;
    uint32_t inst;
} cov_ctx;

static void on_value(void *ud, const bn_propref *pr, const uint8_t *p, size_t n) {
    cov_ctx *x = ud;
    if (x->n == sizeof x->res / sizeof x->res[0]) return;
    x->res[x->n++] = (bnc_result){x->type, x->inst, pr->prop, (uint8_t *)p, n};
}

static bnc_device *device_at(bnc_conn *c, const bn_addr *src, uint32_t dev_inst) {
    for (size_t i = 0; i < c->n_devs; i++)
        if (c->devs[i]->iam.inst == dev_inst && bn_addr_equal(&c->devs[i]->addr, src) && c->devs[i]->name)
            return c->devs[i];
    return NULL;
}

void bnc_cov_notification(bnc_conn *c, const bn_addr *src, const uint8_t *p, size_t n) {
    bn_cov cov;
    char text[48];
    if (bn_cov_decode(p, n, &cov) != 0) {
        bn_addr_format(src, text, sizeof text);
        c->malformed++;
        TBGW_WARNF(c->h->log, "malformed COV notification from %s", text);
        return;
    }
    bnc_device *d = device_at(c, src, cov.dev_inst);
    if (!d) return;
    cov_ctx x = {.type = cov.type, .inst = cov.inst};
    if (bn_cov_values_walk(cov.values, cov.values_len, on_value, &x) != 0) {
        c->malformed++;
        TBGW_WARNF(c->h->log, "malformed COV notification from %s", d->addr_text);
        return;
    }
    /* the properties that only name keys come from the last poll */
    for (size_t i = 0; i < d->n_res && x.n < sizeof x.res / sizeof x.res[0]; i++) {
        const bnc_result *r = &d->res[i];
        if (r->type != cov.type || r->inst != cov.inst) continue;
        int have = 0;
        for (size_t k = 0; k < x.n; k++) have |= x.res[k].prop == r->prop;
        int tag = 0;
        for (size_t k = 0; k < d->n_points; k++) {
            const bnc_item *it = d->points[k].item;
            for (size_t j = 0; j < it->n_tags; j++) tag |= it->tags[j] == r->prop;
        }
        if (!have && tag) x.res[x.n++] = *r;
    }
    tbgw_converted *rec = tbgw_converted_new(d->name, d->type);
    tbgw_buf scratch;
    tbgw_buf_init(&scratch);
    int64_t ts = tbgw_now_ms();
    for (size_t i = 0; rec && i < d->n_points; i++)
        if (d->points[i].type == cov.type && d->points[i].inst == cov.inst)
            bnc_convert_point(x.res, x.n, &d->points[i], rec, ts, &scratch);
    tbgw_buf_free(&scratch);
    if (rec && tbgw_converted_count(rec) > 0) {
        c->h->stat_add(c->h, TBGW_STAT_CONV_PROCESSED, 1);
        c->h->emit(c->h, rec);
    } else {
        tbgw_converted_free(rec);
    }
}
