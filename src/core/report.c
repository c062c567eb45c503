#include "core/report.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/hmap.h"

typedef struct entry {
    char *connector_id, *device, *type, *key;
    int telemetry;
    tbgw_value v;
    char *vtext; /* owned string storage for v */
    tbgw_report_strategy rs;
    int64_t last_report_ms, expires_ms;
    size_t periodic_idx; /* index+1 in periodic list, 0 if none */
} entry;

struct tbgw_report {
    tbgw_report_strategy gw;
    int disabled;
    tbgw_hmap cache;
    entry **periodic;
    size_t n_periodic, cap_periodic;
    int64_t next_due;
    tbgw_buf key;
};

static void entry_free(void *p) {
    entry *e = p;
    if (!e) return;
    free(e->connector_id);
    free(e->device);
    free(e->type);
    free(e->key);
    free(e->vtext);
    free(e);
}

tbgw_report *tbgw_report_new(const tbgw_report_strategy *gateway_rs, int disabled) {
    tbgw_report *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->gw = *gateway_rs;
    if (r->gw.type == TBGW_RS_UNSET) r->gw.type = TBGW_RS_ON_RECEIVED;
    if (r->gw.ttl_s <= 0) r->gw.ttl_s = 86400;
    r->disabled = disabled;
    r->next_due = INT64_MAX;
    tbgw_hmap_init(&r->cache);
    tbgw_buf_init(&r->key);
    return r;
}

void tbgw_report_free(tbgw_report *r) {
    if (!r) return;
    tbgw_hmap_free(&r->cache, entry_free);
    free(r->periodic);
    tbgw_buf_free(&r->key);
    free(r);
}

static const tbgw_report_strategy *effective(const tbgw_report *r, const tbgw_kv *kv, const tbgw_converted *c,
                                             const tbgw_report_strategy *conn) {
    if (kv->rs && kv->rs->type != TBGW_RS_UNSET) return kv->rs;
    if (c->rs && c->rs->type != TBGW_RS_UNSET) return c->rs;
    if (conn && conn->type != TBGW_RS_UNSET) return conn;
    return &r->gw;
}

static void set_value(entry *e, const tbgw_value *v) {
    free(e->vtext);
    e->vtext = NULL;
    e->v = *v;
    if (tbgw_value_has_text(v)) {
        e->vtext = strdup(v->u.s ? v->u.s : "");
        e->v.u.s = e->vtext;
    }
}

static int is_periodic(tbgw_rs_type t) {
    return t == TBGW_RS_ON_REPORT_PERIOD || t == TBGW_RS_ON_CHANGE_OR_REPORT_PERIOD;
}

static void periodic_add(tbgw_report *r, entry *e) {
    if (e->periodic_idx) return;
    if (r->n_periodic == r->cap_periodic) {
        size_t nc = r->cap_periodic ? r->cap_periodic * 2 : 16;
        entry **np = realloc(r->periodic, nc * sizeof *np);
        if (!np) return;
        r->periodic = np;
        r->cap_periodic = nc;
    }
    r->periodic[r->n_periodic++] = e;
    e->periodic_idx = r->n_periodic;
    int64_t due = e->last_report_ms + e->rs.period_ms - 50;
    if (due < r->next_due) r->next_due = due;
}

static void periodic_remove(tbgw_report *r, entry *e) {
    if (!e->periodic_idx) return;
    size_t i = e->periodic_idx - 1;
    r->periodic[i] = r->periodic[--r->n_periodic];
    if (i < r->n_periodic) r->periodic[i]->periodic_idx = i + 1;
    e->periodic_idx = 0;
}

/* Returns 1 to forward. */
static int decide(tbgw_report *r, const char *cid, const tbgw_converted *c, const tbgw_kv *kv, int telemetry,
                  const tbgw_report_strategy *rs, int64_t now) {
    tbgw_buf *k = &r->key;
    tbgw_buf_reset(k);
    tbgw_buf_puts(k, cid);
    tbgw_buf_putc(k, '\x1f');
    tbgw_buf_puts(k, c->device_name);
    tbgw_buf_putc(k, telemetry ? '\x1e' : '\x1d');
    tbgw_buf_puts(k, kv->key);
    entry *e = tbgw_hmap_getn(&r->cache, k->p, k->len);
    if (e && now > e->expires_ms) { /* expired: counts as first value */
        periodic_remove(r, e);
        entry_free(tbgw_hmap_deln(&r->cache, k->p, k->len));
        e = NULL;
    }
    int64_t ttl_ms = (rs->ttl_s > 0 ? rs->ttl_s : 86400) * 1000;
    if (!e) {
        e = calloc(1, sizeof *e);
        if (!e) return 1;
        e->connector_id = strdup(cid);
        e->device = strdup(c->device_name);
        e->type = strdup(c->device_type);
        e->key = strdup(kv->key);
        e->telemetry = telemetry;
        e->rs = *rs;
        set_value(e, &kv->v);
        e->last_report_ms = now;
        e->expires_ms = now + ttl_ms;
        if (tbgw_hmap_putn(&r->cache, k->p, k->len, e, NULL)) {
            entry_free(e);
            return 1;
        }
        if (is_periodic(rs->type)) periodic_add(r, e);
        return 1;
    }
    e->rs = *rs;
    int changed = !tbgw_value_equal(&e->v, &kv->v);
    if (changed) {
        set_value(e, &kv->v);
        e->expires_ms = now + ttl_ms;
    }
    if (is_periodic(rs->type))
        periodic_add(r, e);
    else
        periodic_remove(r, e);
    switch (rs->type) {
    case TBGW_RS_ON_CHANGE:
    case TBGW_RS_ON_CHANGE_OR_REPORT_PERIOD:
        return changed;
    case TBGW_RS_ON_REPORT_PERIOD:
        return 0;
    default:
        return 1;
    }
}

static size_t filter_list(tbgw_report *r, const char *cid, const tbgw_report_strategy *conn,
                          tbgw_converted *c, tbgw_kv *kvs, size_t n, int telemetry, int64_t now) {
    size_t out = 0;
    for (size_t i = 0; i < n; i++) {
        const tbgw_report_strategy *rs = effective(r, &kvs[i], c, conn);
        int keep = 1;
        if (rs->type != TBGW_RS_ON_RECEIVED && rs->type != TBGW_RS_DISABLED)
            keep = decide(r, cid, c, &kvs[i], telemetry, rs, now);
        if (keep) kvs[out++] = kvs[i];
    }
    return out;
}

size_t tbgw_report_filter(tbgw_report *r, const char *connector_id, const tbgw_report_strategy *connector_rs,
                          tbgw_converted *c, int64_t now_ms) {
    if (r->disabled) return tbgw_converted_count(c);
    const char *cid = connector_id ? connector_id : "";
    c->n_telemetry = filter_list(r, cid, connector_rs, c, c->telemetry, c->n_telemetry, 1, now_ms);
    c->n_attributes = filter_list(r, cid, connector_rs, c, c->attributes, c->n_attributes, 0, now_ms);
    return tbgw_converted_count(c);
}

void tbgw_report_tick(tbgw_report *r, int64_t now, tbgw_report_emit_fn emit, void *ud) {
    if (now < r->next_due) return;
    tbgw_hmap groups;
    tbgw_hmap_init(&groups);
    tbgw_buf gk;
    tbgw_buf_init(&gk);
    int64_t next = INT64_MAX;
    for (size_t i = 0; i < r->n_periodic;) {
        entry *e = r->periodic[i];
        if (now > e->expires_ms) { /* stale: stop until new data arrives */
            periodic_remove(r, e);
            continue;
        }
        if (now - e->last_report_ms + 50 >= e->rs.period_ms) {
            tbgw_buf_reset(&gk);
            tbgw_buf_puts(&gk, e->connector_id);
            tbgw_buf_putc(&gk, '\x1f');
            tbgw_buf_puts(&gk, e->device);
            tbgw_converted *c = tbgw_hmap_getn(&groups, gk.p, gk.len);
            if (!c) {
                c = tbgw_converted_new(e->device, e->type);
                if (c && tbgw_hmap_putn(&groups, gk.p, gk.len, c, NULL)) {
                    tbgw_converted_free(c);
                    c = NULL;
                }
            }
            if (c) {
                static const tbgw_report_strategy pass = {TBGW_RS_ON_RECEIVED, 0, 86400};
                if (e->telemetry)
                    tbgw_converted_add_telemetry(c, now, e->key, &e->v, &pass);
                else
                    tbgw_converted_add_attribute(c, e->key, &e->v, &pass);
            }
            e->last_report_ms = now;
        }
        int64_t due = e->last_report_ms + e->rs.period_ms - 50;
        if (due < next) next = due;
        i++;
    }
    r->next_due = next;
    const char *k;
    void *v;
    for (size_t i = 0; (i = tbgw_hmap_next(&groups, i, &k, &v)) != 0;) {
        const char *sep = strchr(k, '\x1f');
        char cid[128];
        size_t n = sep ? (size_t)(sep - k) : 0;
        if (n >= sizeof cid) n = sizeof cid - 1;
        memcpy(cid, k, n);
        cid[n] = 0;
        emit(ud, cid, v);
    }
    tbgw_hmap_free(&groups, NULL);
    tbgw_buf_free(&gk);
}

int64_t tbgw_report_next_due(const tbgw_report *r) {
    return r->next_due;
}

void tbgw_report_clear_connector(tbgw_report *r, const char *connector_id) {
    const char *k;
    void *v;
    size_t n = strlen(connector_id);
    for (size_t i = 0; (i = tbgw_hmap_next(&r->cache, i, &k, &v)) != 0;) {
        if (strncmp(k, connector_id, n) == 0 && k[n] == '\x1f') {
            entry *e = v;
            periodic_remove(r, e);
            entry_free(tbgw_hmap_del(&r->cache, k));
        }
    }
}

size_t tbgw_report_size(const tbgw_report *r) {
    return r->cache.count;
}
