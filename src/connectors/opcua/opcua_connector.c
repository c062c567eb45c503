/* OPC-UA connector: connects with our own client stack, discovers the devices of mapping[] and their
 * nodes, and delivers values by polling or subscriptions (spec gateway.md §7.3). Reconnects with
 * backoff; after a reconnect or a lost subscription everything is resolved and subscribed again.
 * A periodic rescan keeps the subscription: only the monitored items of nodes that appeared are
 * created and those of nodes that vanished deleted. Between the requests of a scan the connector
 * keeps serving publish responses and downlink (RPCs, attribute updates), so neither waits for it. */
#include <stdlib.h>
#include <string.h>

#include "connectors/opcua/opcua.h"
#include "util/backoff.h"
#include "util/buf.h"
#include "util/time.h"

#define MAX_DEVICE_MATCHES 256
#define RETRY_SCAN_MS      5000 /* a node not found or not subscribed is looked for again this soon */
#define YIELD_MS           5    /* a scan serves publishing and downlink at least this often */
#define CREATE_BATCH       500  /* monitored items per CreateMonitoredItems request */

/* ------------------------------------------------------------------ devices */

static void free_device_set(opcua_device *devs, size_t n) {
    for (size_t i = 0; i < n; i++) {
        opcua_device *d = &devs[i];
        for (size_t k = 0; k < d->n_dps; k++) {
            tbgw_ua_nodeid_clear(&d->dps[k].node);
            free(d->dps[k].node_text);
        }
        free(d->dps);
        tbgw_ua_nodeid_clear(&d->node);
        free(d->name);
        free(d->profile);
        tbgw_converted_free(d->pending);
    }
    free(devs);
}

static void free_devices(opcua_conn *oc) {
    free_device_set(oc->devs, oc->n_devs);
    free(oc->flat);
    free(oc->items);
    oc->devs = NULL;
    oc->flat = NULL;
    oc->items = NULL;
    oc->n_devs = oc->n_flat = oc->n_items = oc->items_cap = 0;
}

opcua_device *opcua_find_device(opcua_conn *oc, const char *name) {
    for (size_t i = 0; name && i < oc->n_devs; i++)
        if (strcmp(oc->devs[i].name, name) == 0) return &oc->devs[i];
    return NULL;
}

void opcua_scan_info_get(const void *self, opcua_scan_info *out) {
    const opcua_conn *oc = self;
    memset(out, 0, sizeof *out);
    out->sub_id = oc->sub_id;
    out->scans = oc->scans;
    out->scanning = oc->scanning;
    out->devices = oc->n_devs;
    for (size_t i = 0; i < oc->n_devs; i++)
        for (size_t k = 0; k < oc->devs[i].n_dps; k++) out->monitored += oc->devs[i].dps[k].monitored != 0;
}

/* A scan in progress: the device set being discovered (the committed one stays in use meanwhile). */
typedef struct scan_set {
    opcua_device *devs;
    size_t n, cap;
    opcua_browse_cache *cache;
    size_t missing; /* datapoints whose node was not found */
} scan_set;

static int poll_once(opcua_conn *oc);
static void flush(opcua_conn *oc);

/* Called between the requests of a scan: serves publish responses (or a due poll) and the host's
 * downlink (RPCs, attribute updates) while the client is idle. Downlink is served only once a
 * device set exists, so an RPC during the very first scan waits for its device like before.
 * Returns non-zero to abort the scan (stop requested, connection lost). */
static int scan_yield(void *ctx) {
    opcua_conn *oc = ctx;
    if (!oc->scanning || oc->in_yield) return 0;
    int64_t now = tbgw_mono_ms();
    if (now - oc->last_yield_ms < YIELD_MS) return 0;
    oc->in_yield = 1;
    int rc = 0;
    if (oc->cfg.subscriptions) {
        rc = tbgw_ua_client_poll(oc->client, 0);
    } else if (now >= oc->next_poll_ms) {
        rc = poll_once(oc);
        oc->next_poll_ms += oc->cfg.poll_period_ms;
        if (oc->next_poll_ms < now) oc->next_poll_ms = now + oc->cfg.poll_period_ms;
    }
    flush(oc);
    if (rc == 0 && oc->n_devs > 0 && oc->host->dispatch(oc->host)) oc->stop = 1;
    if (oc->stop)
        rc = TBGW_ESTOPPED;
    else if (rc == 0 && !tbgw_ua_client_connected(oc->client))
        rc = TBGW_EIO;
    oc->last_yield_ms = tbgw_mono_ms();
    oc->in_yield = 0;
    return rc;
}

/* Expands ${...} parts of a name/profile expression with the values of the nodes they name. */
static char *expand_expr(opcua_conn *oc, opcua_browse_cache *cache, const char *expr, opcua_src src,
                         const tbgw_ua_nodeid *base) {
    if (src == OPCUA_SRC_CONST || !strstr(expr, "${")) return strdup(expr);
    tbgw_buf out;
    tbgw_buf_init(&out);
    const char *p = expr;
    while (*p) {
        const char *a = strstr(p, "${");
        const char *b = a ? strchr(a + 2, '}') : NULL;
        if (!a || !b) {
            tbgw_buf_puts(&out, p);
            break;
        }
        tbgw_buf_append(&out, p, (size_t)(a - p));
        char *body = strndup(a + 2, (size_t)(b - a - 2));
        tbgw_ua_nodeid id;
        int n = body ? opcua_resolve(oc->client, cache, base, body, &id, 1) : TBGW_ENOMEM;
        free(body);
        if (n <= 0) {
            tbgw_buf_free(&out);
            return NULL;
        }
        tbgw_ua_datavalue dv;
        int rc = tbgw_ua_read(oc->client, &id, 1, TBGW_UA_ATTR_VALUE, &dv);
        tbgw_ua_nodeid_clear(&id);
        if (rc) {
            tbgw_buf_free(&out);
            return NULL;
        }
        tbgw_value v;
        char *tmp = NULL;
        if (opcua_value_convert(&dv, "", &v, &tmp) == 0) {
            if (v.type == TBGW_V_STRING || v.type == TBGW_V_JSON)
                tbgw_buf_puts(&out, v.u.s);
            else if (v.type != TBGW_V_NULL)
                tbgw_buf_json_value(&out, &v);
        }
        free(tmp);
        tbgw_ua_datavalue_clear(&dv);
        p = b + 1;
    }
    char *s = out.oom ? NULL : strdup(tbgw_buf_cstr(&out));
    tbgw_buf_free(&out);
    return s;
}

static int resolve_dp(opcua_conn *oc, scan_set *ss, opcua_device *d, opcua_dp *dp) {
    if (dp->cfg->type == OPCUA_SRC_CONST) return 0;
    char *body = opcua_expr_body(dp->cfg->value);
    if (!body) return TBGW_ENOMEM;
    int n = opcua_resolve(oc->client, ss->cache, &d->node, body, &dp->node, 1);
    free(body);
    if (n < 0) return n;
    if (n == 0) {
        TBGW_WARNF(oc->host->log, "Node not found; device: %s, key: %s, path: %s", d->name, dp->cfg->key,
                   dp->cfg->value);
        ss->missing++;
        return 0;
    }
    dp->resolved = 1;
    tbgw_buf t;
    tbgw_buf_init(&t);
    tbgw_ua_nodeid_format(&dp->node, &t);
    dp->node_text = t.oom ? NULL : strdup(tbgw_buf_cstr(&t));
    tbgw_buf_free(&t);
    return dp->node_text ? 0 : TBGW_ENOMEM;
}

static int add_device(opcua_conn *oc, scan_set *ss, const opcua_mapping *m, tbgw_ua_nodeid *node) {
    char *name = expand_expr(oc, ss->cache, m->name_expr, m->name_src, node);
    char *profile = expand_expr(oc, ss->cache, m->profile_expr, m->profile_src, node);
    if (!tbgw_ua_client_connected(oc->client)) {
        free(name);
        free(profile);
        return TBGW_EIO;
    }
    if (!name || !*name) {
        TBGW_WARNF(oc->host->log, "device name expression %s could not be evaluated; device skipped",
                   m->name_expr);
        free(name);
        free(profile);
        return 0;
    }
    if (ss->n == ss->cap) {
        size_t nc = ss->cap ? ss->cap * 2 : 8;
        opcua_device *nd = realloc(ss->devs, nc * sizeof *nd);
        if (!nd) {
            free(name);
            free(profile);
            return TBGW_ENOMEM;
        }
        ss->devs = nd;
        ss->cap = nc;
    }
    opcua_device *d = &ss->devs[ss->n++];
    memset(d, 0, sizeof *d);
    d->map = m;
    d->node = *node;
    *node = tbgw_ua_nodeid_num(0, 0);
    d->name = name;
    d->profile = profile ? profile : strdup("default");
    d->n_dps = m->n_attrs + m->n_ts;
    d->dps = calloc(d->n_dps ? d->n_dps : 1, sizeof *d->dps);
    if (!d->dps || !d->profile) return TBGW_ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < d->n_dps; i++) { /* all set up first: the set is freed as a whole */
        opcua_dp *dp = &d->dps[i];
        dp->is_attr = i < m->n_attrs;
        dp->cfg = dp->is_attr ? &m->attrs[i] : &m->ts[i - m->n_attrs];
        dp->node = tbgw_ua_nodeid_num(0, 0);
    }
    for (size_t i = 0; rc == 0 && i < d->n_dps; i++) {
        rc = resolve_dp(oc, ss, d, &d->dps[i]);
        if (rc == 0) rc = scan_yield(oc);
    }
    return rc;
}

/* Discovers devices and their nodes into ss (nothing of the committed state changes). */
static int discover(opcua_conn *oc, scan_set *ss) {
    ss->cache = opcua_cache_new();
    if (!ss->cache) return TBGW_ENOMEM;
    opcua_cache_set_yield(ss->cache, scan_yield, oc);
    tbgw_ua_nodeid *nodes = calloc(MAX_DEVICE_MATCHES, sizeof *nodes);
    if (!nodes) return TBGW_ENOMEM;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < oc->cfg.n_maps; i++) {
        const opcua_mapping *m = &oc->cfg.maps[i];
        int n = opcua_resolve(oc->client, ss->cache, NULL, m->pattern, nodes, MAX_DEVICE_MATCHES);
        if (n < 0) {
            rc = n;
            break;
        }
        if (n == 0) TBGW_WARNF(oc->host->log, "mapping[%zu]: no node matches %s", i, m->pattern);
        for (int k = 0; k < n; k++) {
            if (rc == 0) rc = add_device(oc, ss, m, &nodes[k]);
            tbgw_ua_nodeid_clear(&nodes[k]);
        }
    }
    free(nodes);
    return rc;
}

static int cmp_dev(const void *a, const void *b) {
    const opcua_device *x = *(const opcua_device *const *)a, *y = *(const opcua_device *const *)b;
    int c = strcmp(x->name, y->name);
    if (c) return c;
    return (uintptr_t)x->map < (uintptr_t)y->map ? -1 : (uintptr_t)x->map > (uintptr_t)y->map;
}

/* Gives a datapoint a new client handle (items[] grows; handles are never reused within a
 * subscription, so a late notification of a deleted item cannot land on another datapoint). */
static int new_handle(opcua_conn *oc, opcua_dp *dp) {
    if (oc->n_items == 0) oc->n_items = 1;
    if (oc->n_items >= UINT32_MAX) return TBGW_EFULL;
    if (oc->n_items >= oc->items_cap) {
        size_t nc = oc->items_cap ? oc->items_cap * 2 : 64;
        opcua_dp **ni = realloc(oc->items, nc * sizeof *ni);
        if (!ni) return TBGW_ENOMEM;
        oc->items = ni;
        oc->items_cap = nc;
    }
    dp->handle = (uint32_t)oc->n_items++;
    oc->items[dp->handle] = dp;
    return 0;
}

/* Forgets every monitored item (the subscription is gone: new session, or lost). */
static void forget_items(opcua_conn *oc) {
    for (size_t i = 0; i < oc->n_devs; i++)
        for (size_t k = 0; k < oc->devs[i].n_dps; k++) {
            oc->devs[i].dps[k].monitored = 0;
            oc->devs[i].dps[k].handle = 0;
        }
    free(oc->items);
    oc->items = NULL;
    oc->n_items = oc->items_cap = 0;
    oc->sub_id = 0;
}

static int subscribe_new(opcua_conn *oc, size_t *added);
static void add_constants(opcua_conn *oc, opcua_device *only, int64_t now);

/* Replaces the committed device set with ss: datapoints whose (device, key, node) is unchanged keep
 * their monitored item and client handle, monitored items of datapoints that vanished or moved are
 * deleted, new ones are created. Devices that appear are reported connected, those that vanish
 * disconnected. */
static int commit(opcua_conn *oc, scan_set *ss, int64_t started) {
    opcua_device **old = malloc((oc->n_devs ? oc->n_devs : 1) * sizeof *old);
    opcua_dp **flat = NULL;
    uint32_t *gone = NULL;
    size_t total = 0, n_gone = 0, kept = 0, added = 0;
    for (size_t i = 0; i < ss->n; i++) total += ss->devs[i].n_dps;
    flat = malloc((total ? total : 1) * sizeof *flat);
    size_t n_old_items = 0;
    for (size_t i = 0; i < oc->n_devs; i++)
        for (size_t k = 0; k < oc->devs[i].n_dps; k++) n_old_items += oc->devs[i].dps[k].monitored != 0;
    gone = malloc((n_old_items ? n_old_items : 1) * sizeof *gone);
    if (!old || !flat || !gone) {
        free(old);
        free(flat);
        free(gone);
        return TBGW_ENOMEM;
    }
    for (size_t i = 0; i < oc->n_devs; i++) {
        old[i] = &oc->devs[i];
        old[i]->matched = 0;
    }
    qsort(old, oc->n_devs, sizeof *old, cmp_dev);
    for (size_t i = 0; i < ss->n; i++)
        for (size_t k = 0; k < ss->devs[i].n_dps; k++) ss->devs[i].dps[k].dev = &ss->devs[i];
    /* match devices and their datapoints; kept monitored items move to the new datapoints */
    for (size_t i = 0; i < ss->n; i++) {
        opcua_device *d = &ss->devs[i];
        opcua_device *key = d;
        opcua_device **hit = oc->n_devs ? bsearch(&key, old, oc->n_devs, sizeof *old, cmp_dev) : NULL;
        opcua_device *od = hit ? *hit : NULL;
        d->matched = od != NULL;
        if (od) {
            od->matched = 1;
            for (size_t k = 0; k < d->n_dps; k++) {
                opcua_dp *ndp = &d->dps[k], *odp = &od->dps[k];
                if (!odp->monitored || !ndp->resolved || !tbgw_ua_nodeid_equal(&odp->node, &ndp->node))
                    continue;
                ndp->monitored = 1;
                ndp->handle = odp->handle;
                ndp->mon_id = odp->mon_id;
                odp->monitored = 0; /* taken over */
                oc->items[ndp->handle] = ndp;
                kept++;
            }
        }
    }
    /* what remains monitored in the old set is gone */
    for (size_t i = 0; i < oc->n_devs; i++)
        for (size_t k = 0; k < oc->devs[i].n_dps; k++) {
            opcua_dp *odp = &oc->devs[i].dps[k];
            if (!odp->monitored) continue;
            gone[n_gone++] = odp->mon_id;
            oc->items[odp->handle] = NULL;
        }
    flush(oc); /* values collected for the old set */
    /* lifecycle: vanished devices (unless a device of that name remains), then new ones */
    for (size_t i = 0; i < oc->n_devs; i++) {
        opcua_device *od = &oc->devs[i];
        int remains = od->matched;
        for (size_t k = 0; !remains && k < ss->n; k++) remains = strcmp(ss->devs[k].name, od->name) == 0;
        if (remains) continue;
        TBGW_INFOF(oc->host->log, "Device node gone: %s", od->name);
        oc->host->device_disconnected(oc->host, od->name);
    }
    free_device_set(oc->devs, oc->n_devs);
    free(oc->flat);
    free(old);
    oc->devs = ss->devs;
    oc->n_devs = ss->n;
    ss->devs = NULL;
    ss->n = ss->cap = 0;
    opcua_cache_set_yield(ss->cache, NULL, NULL);
    opcua_cache_free(oc->cache);
    oc->cache = ss->cache;
    ss->cache = NULL;
    oc->flat = flat;
    oc->n_flat = 0;
    for (size_t i = 0; i < oc->n_devs; i++)
        for (size_t k = 0; k < oc->devs[i].n_dps; k++) {
            opcua_dp *dp = &oc->devs[i].dps[k];
            dp->dev = &oc->devs[i];
            if (dp->resolved) oc->flat[oc->n_flat++] = dp;
        }
    size_t appeared = 0;
    for (size_t i = 0; i < oc->n_devs; i++) {
        opcua_device *d = &oc->devs[i];
        if (d->matched && !oc->announce_all) continue;
        if (!d->matched) {
            TBGW_INFOF(oc->host->log, "Added device node: %s", d->name);
            appeared++;
        }
        oc->host->device_connected(oc->host, d->name, d->profile);
    }
    int rc = 0;
    size_t failed = 0;
    if (oc->cfg.subscriptions) {
        if (oc->sub_lost) { /* lost meanwhile: everything goes into a new subscription */
            if (oc->sub_id) tbgw_ua_sub_delete(oc->client, oc->sub_id);
            forget_items(oc);
            oc->sub_lost = 0;
            n_gone = kept = 0;
        }
        if (n_gone && oc->sub_id) {
            rc = tbgw_ua_sub_remove(oc->client, oc->sub_id, gone, n_gone, NULL);
            if (rc == 0) rc = scan_yield(oc);
        }
        if (rc == 0) rc = subscribe_new(oc, &added);
        for (size_t i = 0; i < oc->n_flat; i++) failed += !oc->flat[i]->monitored;
        /* constants of the devices that appeared (with the subscription's first values) */
        int64_t now = tbgw_now_ms();
        for (size_t i = 0; rc == 0 && i < oc->n_devs; i++)
            if (!oc->devs[i].matched || oc->announce_all) add_constants(oc, &oc->devs[i], now);
        flush(oc);
    }
    free(gone);
    oc->incomplete = ss->missing + failed;
    if (rc == 0) oc->announce_all = 0;
    TBGW_INFOF(oc->host->log,
               "%zu device(s), %zu node(s) mapped (%zu device(s) new; monitored items: %zu kept, %zu added, "
               "%zu removed, %zu failed) in %lld ms",
               oc->n_devs, oc->n_flat, appeared, kept, added, n_gone, failed,
               (long long)(tbgw_mono_ms() - started));
    return rc;
}

/* Resolves everything again and applies the difference to the subscription (or the read list). */
static int rescan(opcua_conn *oc) {
    int64_t started = tbgw_mono_ms();
    scan_set ss = {0};
    oc->scanning = 1;
    oc->last_yield_ms = started;
    int rc = discover(oc, &ss);
    if (rc == 0) rc = commit(oc, &ss, started);
    free_device_set(ss.devs, ss.n);
    opcua_cache_free(ss.cache);
    oc->scanning = 0;
    if (rc == 0) oc->scans++;
    return rc;
}

/* ------------------------------------------------------------------ values */

static int64_t pick_ts(const opcua_dp *dp, const tbgw_ua_datavalue *dv, int64_t now) {
    int64_t dt = 0;
    if (dp->cfg->tsloc == OPCUA_TS_SOURCE && (dv->mask & TBGW_UA_DV_SOURCE_TS)) dt = dv->source_ts;
    if (dp->cfg->tsloc == OPCUA_TS_SERVER && (dv->mask & TBGW_UA_DV_SERVER_TS)) dt = dv->server_ts;
    return dt > 0 ? tbgw_ua_datetime_to_ms(dt) : now;
}

static tbgw_converted *pending_for(opcua_device *d) {
    if (!d->pending) d->pending = tbgw_converted_new(d->name, d->profile);
    if (d->pending && d->map->has_rs) d->pending->rs = &d->map->rs;
    return d->pending;
}

static void add_value(opcua_conn *oc, opcua_dp *dp, const tbgw_ua_datavalue *dv, int64_t now) {
    tbgw_converted *c = pending_for(dp->dev);
    if (!c) return;
    tbgw_value v;
    char *tmp = NULL;
    if (opcua_value_convert(dv, dp->node_text ? dp->node_text : "", &v, &tmp)) {
        oc->host->stat_add(oc->host, TBGW_STAT_CONVERTER_ERRORS, 1);
        return;
    }
    const tbgw_report_strategy *rs = dp->cfg->has_rs ? &dp->cfg->rs : NULL;
    if (dp->is_attr)
        tbgw_converted_add_attribute(c, dp->cfg->key, &v, rs);
    else
        tbgw_converted_add_telemetry(c, pick_ts(dp, dv, now), dp->cfg->key, &v, rs);
    free(tmp);
}

/* Constant datapoints of one device (only != NULL) or of all. */
static void add_constants(opcua_conn *oc, opcua_device *only, int64_t now) {
    for (size_t i = 0; i < oc->n_devs; i++) {
        if (only && only != &oc->devs[i]) continue;
        for (size_t k = 0; k < oc->devs[i].n_dps; k++) {
            opcua_dp *dp = &oc->devs[i].dps[k];
            if (dp->cfg->type != OPCUA_SRC_CONST) continue;
            tbgw_converted *c = pending_for(&oc->devs[i]);
            json_t *j = tbgw_json_loads(dp->cfg->value, JSON_DECODE_ANY, NULL);
            tbgw_value v = tbgw_value_string(dp->cfg->value);
            char *tmp = NULL;
            if (j) tbgw_value_from_json(j, &v, &tmp);
            const tbgw_report_strategy *rs = dp->cfg->has_rs ? &dp->cfg->rs : NULL;
            if (c && dp->is_attr)
                tbgw_converted_add_attribute(c, dp->cfg->key, &v, rs);
            else if (c)
                tbgw_converted_add_telemetry(c, now, dp->cfg->key, &v, rs);
            free(tmp);
            json_decref(j);
        }
    }
}

static void flush(opcua_conn *oc) {
    tbgw_converted *head = NULL, **tail = &head;
    uint64_t n = 0;
    for (size_t i = 0; i < oc->n_devs; i++) {
        tbgw_converted *c = oc->devs[i].pending;
        if (!c) continue;
        oc->devs[i].pending = NULL;
        if (tbgw_converted_count(c) == 0) {
            tbgw_converted_free(c);
            continue;
        }
        n += tbgw_converted_count(c);
        *tail = c;
        tail = &c->next;
    }
    if (!head) return;
    oc->host->stat_add(oc->host, TBGW_STAT_CONV_PROCESSED, n);
    if (oc->host->emit(oc->host, head) == TBGW_EAGAIN)
        TBGW_WARNF(oc->host->log, "core saturated: %llu value(s) dropped", (unsigned long long)n);
}

static int poll_once(opcua_conn *oc) {
    int64_t now = tbgw_now_ms();
    if (oc->n_flat > 0) {
        tbgw_ua_nodeid *ids = malloc(oc->n_flat * sizeof *ids);
        tbgw_ua_datavalue *dvs = malloc(oc->n_flat * sizeof *dvs);
        if (!ids || !dvs) {
            free(ids);
            free(dvs);
            return TBGW_ENOMEM;
        }
        for (size_t i = 0; i < oc->n_flat; i++) ids[i] = oc->flat[i]->node; /* shallow: not freed */
        int rc = tbgw_ua_read(oc->client, ids, oc->n_flat, TBGW_UA_ATTR_VALUE, dvs);
        free(ids);
        if (rc) {
            free(dvs);
            return rc;
        }
        oc->host->stat_add(oc->host, TBGW_STAT_MSGS_RECEIVED, oc->n_flat);
        for (size_t i = 0; i < oc->n_flat; i++) {
            add_value(oc, oc->flat[i], &dvs[i], now);
            tbgw_ua_datavalue_clear(&dvs[i]);
        }
        free(dvs);
    }
    add_constants(oc, NULL, now);
    flush(oc);
    return 0;
}

static void on_data(void *ctx, uint32_t sub, uint32_t handle, const tbgw_ua_datavalue *dv) {
    opcua_conn *oc = ctx;
    if (sub != oc->sub_id || handle == 0 || handle >= oc->n_items || !oc->items[handle]) return;
    oc->host->stat_add(oc->host, TBGW_STAT_MSGS_RECEIVED, 1);
    add_value(oc, oc->items[handle], dv, tbgw_now_ms());
}

static void on_sub_lost(void *ctx, uint32_t sub, uint32_t status) {
    opcua_conn *oc = ctx;
    if (sub == oc->sub_id) oc->sub_lost = 1;
}

/* Creates monitored items for the resolved datapoints that have none, in batches with the
 * connector's yield between them (the subscription is created first when there is none). */
static int subscribe_new(opcua_conn *oc, size_t *added) {
    size_t want = 0;
    for (size_t i = 0; i < oc->n_flat; i++) want += !oc->flat[i]->monitored;
    *added = 0;
    if (want == 0) return 0;
    int rc = 0;
    if (!oc->sub_id) {
        rc = tbgw_ua_sub_create(oc->client, (double)oc->cfg.sub_period_ms, &oc->sub_id);
        if (rc) return rc;
        free(oc->items);
        oc->items = NULL;
        oc->n_items = oc->items_cap = 0;
    }
    size_t cap = want < CREATE_BATCH ? want : CREATE_BATCH;
    tbgw_ua_nodeid *ids = malloc(cap * sizeof *ids);
    uint32_t *handles = malloc(cap * sizeof *handles);
    uint32_t *st = malloc(cap * sizeof *st);
    uint32_t *mon = malloc(cap * sizeof *mon);
    opcua_dp **batch = malloc(cap * sizeof *batch);
    if (!ids || !handles || !st || !mon || !batch) rc = TBGW_ENOMEM;
    size_t bad = 0, next = 0;
    while (rc == 0 && next < oc->n_flat) {
        size_t k = 0;
        for (; next < oc->n_flat && k < cap; next++) {
            opcua_dp *dp = oc->flat[next];
            if (dp->monitored) continue;
            if ((rc = new_handle(oc, dp)) != 0) break;
            batch[k] = dp;
            ids[k] = dp->node; /* shallow */
            handles[k] = dp->handle;
            k++;
        }
        if (rc || k == 0) break;
        rc = tbgw_ua_sub_add_ids(oc->client, oc->sub_id, ids, handles, k, 0, st, mon);
        for (size_t i = 0; i < k; i++) {
            opcua_dp *dp = batch[i];
            if (rc == 0 && !(st[i] & 0x80000000u)) {
                dp->monitored = 1;
                dp->mon_id = mon[i];
                (*added)++;
                continue;
            }
            oc->items[dp->handle] = NULL;
            dp->handle = 0;
            if (rc) continue;
            char nb[16];
            if (bad++ < 10)
                TBGW_WARNF(oc->host->log, "cannot subscribe to %s (device %s, key %s): %s", dp->node_text,
                           dp->dev->name, dp->cfg->key, tbgw_ua_status_name(st[i], nb));
        }
        if (rc == 0) rc = scan_yield(oc);
    }
    free(ids);
    free(handles);
    free(st);
    free(mon);
    free(batch);
    return rc;
}

/* ------------------------------------------------------------------ lifecycle */

/* The next discovery: after scanPeriodInMillis, or soon when some node was missing (a bad node is
 * never silently dropped: it is looked for again until it appears). */
static void schedule_scan(opcua_conn *oc, int64_t now) {
    int64_t period = oc->cfg.scan_period_ms > 0 ? oc->cfg.scan_period_ms : INT64_MAX / 2;
    if (oc->incomplete && period > RETRY_SCAN_MS) period = RETRY_SCAN_MS;
    oc->next_scan_ms = now + period;
}

static int conn_create(const tbgw_host *host, const json_t *cfg, void **self, tbgw_err *err) {
    opcua_conn *oc = calloc(1, sizeof *oc);
    if (!oc) return TBGW_ENOMEM;
    oc->host = host;
    int rc = opcua_cfg_parse(cfg, host->config_dir, host, &oc->cfg, err);
    if (rc) {
        opcua_cfg_free(&oc->cfg);
        free(oc);
        return rc;
    }
    *self = oc;
    return 0;
}

static void set_state(opcua_conn *oc, tbgw_conn_state st, const char *text) {
    oc->state = st;
    size_t n = text ? strnlen(text, sizeof oc->last_error - 1) : 0;
    if (n) memcpy(oc->last_error, text, n);
    oc->last_error[n] = 0;
    oc->host->set_state(oc->host, st, text);
}

/* Waits ms through host->wait (which returns early to dispatch downlink or for a stop). Returns 1
 * when asked to stop. */
static int idle(opcua_conn *oc, int64_t ms) {
    int64_t end = tbgw_mono_ms() + ms;
    do {
        int64_t left = end - tbgw_mono_ms();
        if (oc->stop || oc->host->wait(oc->host, (int)(left > INT32_MAX ? INT32_MAX : left < 0 ? 0 : left)))
            return 1;
    } while (tbgw_mono_ms() < end);
    return 0;
}

static int session_up(opcua_conn *oc) {
    tbgw_err err = {0};
    int rc = tbgw_ua_client_connect(oc->client, &err);
    if (rc) {
        set_state(oc, TBGW_CONN_DISCONNECTED, err.msg);
        return rc;
    }
    /* a new session has no subscription: every node is subscribed again, every device announced */
    forget_items(oc);
    opcua_sigs_free(oc); /* the server may have restarted with other methods */
    oc->sub_lost = 0;
    oc->announce_all = 1;
    oc->next_poll_ms = tbgw_mono_ms();
    rc = rescan(oc);
    if (rc) {
        set_state(oc, TBGW_CONN_DISCONNECTED, tbgw_ua_client_last_error(oc->client));
        tbgw_ua_client_disconnect(oc->client);
        return rc;
    }
    set_state(oc, TBGW_CONN_CONNECTED, NULL);
    schedule_scan(oc, tbgw_mono_ms());
    return 0;
}

/* One turn while connected: poll or publish, periodic re-discovery. */
static int turn(opcua_conn *oc) {
    int64_t now = tbgw_mono_ms();
    int rc = 0;
    if (now >= oc->next_scan_ms || oc->sub_lost) {
        if (oc->sub_lost) { /* everything goes into a new subscription */
            TBGW_WARNF(oc->host->log, "subscription lost; subscribing again");
            if (oc->sub_id) tbgw_ua_sub_delete(oc->client, oc->sub_id); /* also a lost one: the count */
            forget_items(oc);
            oc->sub_lost = 0;
        }
        rc = rescan(oc);
        schedule_scan(oc, tbgw_mono_ms());
        if (rc) return rc;
    }
    if (!oc->cfg.subscriptions && now >= oc->next_poll_ms) {
        rc = poll_once(oc);
        oc->next_poll_ms += oc->cfg.poll_period_ms;
        if (oc->next_poll_ms < now) oc->next_poll_ms = now + oc->cfg.poll_period_ms;
        if (rc) return rc;
    }
    /* sleep until a publish response (or other message) arrives, downlink is queued (the host's
     * descriptor is the client's wake descriptor), or the next scan, poll or client timer is due */
    int64_t due = tbgw_ua_client_next_due(oc->client);
    if (oc->next_scan_ms < due) due = oc->next_scan_ms;
    if (!oc->cfg.subscriptions && oc->next_poll_ms < due) due = oc->next_poll_ms;
    int64_t left = due - tbgw_mono_ms();
    rc = tbgw_ua_client_poll(oc->client, left <= 0 ? 0 : left > 3600000 ? 3600000 : (int)left);
    flush(oc);
    return rc;
}

static int conn_run(void *self) {
    opcua_conn *oc = self;
    tbgw_ua_client_cfg cc = {0};
    cc.url = oc->cfg.url;
    cc.timeout_ms = oc->cfg.timeout_ms;
    cc.session_timeout_ms = oc->cfg.session_timeout_ms;
    cc.app_uri = oc->cfg.app_uri;
    cc.username = oc->cfg.username;
    cc.password = oc->cfg.password;
    if (oc->cfg.cert_identity && oc->cfg.mode != 1) { /* certificates: the named policy applies */
        cc.security_policy = oc->cfg.security ? oc->cfg.security : "Basic256Sha256";
        cc.security_mode = oc->cfg.mode;
        cc.cert_path = oc->cfg.cert_path;
        cc.key_path = oc->cfg.key_path;
        cc.ca_path = oc->cfg.ca_path;
        cc.crl_path = oc->cfg.crl_path;
    }
    if (oc->cfg.cert_identity) { /* the X509 user token, when the server wants one (or asked for) */
        cc.user_cert_path = oc->cfg.cert_path;
        cc.user_key_path = oc->cfg.key_path;
        cc.user_token = oc->cfg.user_token;
    }
    cc.log = oc->host->log;
    cc.on_data = on_data;
    cc.on_sub_lost = on_sub_lost;
    cc.ctx = oc;
    oc->client = tbgw_ua_client_new(&cc);
    if (!oc->client) return TBGW_ENOMEM;
    tbgw_ua_client_set_wake_fd(oc->client, oc->host->downlink_fd);
    if (!oc->cfg.cert_identity && oc->cfg.security && strcmp(oc->cfg.security, "None") != 0)
        TBGW_INFOF(oc->host->log,
                   "security policy %s is not in effect: the identity carries no certificates, "
                   "connecting with SecurityPolicy None",
                   oc->cfg.security);
    set_state(oc, TBGW_CONN_STARTING, NULL);
    tbgw_backoff bo;
    tbgw_backoff_init(&bo, oc->cfg.reconnect_delay_ms, 30000);
    int failures = 0, rc = 0;
    while (!oc->stop) {
        if (!tbgw_ua_client_connected(oc->client)) {
            if (session_up(oc) != 0) {
                if (oc->stop) break;
                failures++;
                if (failures == 1 || failures % 10 == 0)
                    TBGW_ERRORF(oc->host->log, "cannot connect to %s: %s (attempt %d)", oc->cfg.url,
                                oc->last_error, failures);
                oc->host->stat_add(oc->host, TBGW_STAT_CONNECTOR_ERRORS, 1);
                if (oc->cfg.reconnect_retries > 0 && failures >= oc->cfg.reconnect_retries) {
                    rc = TBGW_EIO;
                    break;
                }
                if (idle(oc, tbgw_backoff_next(&bo))) break;
                continue;
            }
            failures = 0;
            tbgw_backoff_reset(&bo);
        }
        if (turn(oc) != 0 || !tbgw_ua_client_connected(oc->client)) {
            if (oc->stop) break;
            TBGW_WARNF(oc->host->log, "connection to %s lost: %s", oc->cfg.url,
                       tbgw_ua_client_last_error(oc->client));
            set_state(oc, TBGW_CONN_DISCONNECTED, tbgw_ua_client_last_error(oc->client));
            tbgw_ua_client_disconnect(oc->client);
            continue;
        }
        uint64_t bytes = tbgw_ua_client_bytes_received(oc->client);
        if (bytes > oc->bytes_reported) {
            oc->host->stat_add(oc->host, TBGW_STAT_BYTES_RECEIVED, bytes - oc->bytes_reported);
            oc->bytes_reported = bytes;
        }
        if (oc->host->dispatch(oc->host)) break;
    }
    for (size_t i = 0; i < oc->n_devs; i++) oc->host->device_disconnected(oc->host, oc->devs[i].name);
    tbgw_ua_client_disconnect(oc->client);
    free_devices(oc);
    opcua_cache_free(oc->cache);
    oc->cache = NULL;
    opcua_sigs_free(oc);
    tbgw_ua_client_free(oc->client);
    oc->client = NULL;
    set_state(oc, rc ? TBGW_CONN_FAILED : TBGW_CONN_STOPPED, rc ? oc->last_error : NULL);
    return rc;
}

static void conn_stop(void *self) {
    ((opcua_conn *)self)->stop = 1;
}

static void conn_destroy(void *self) {
    opcua_conn *oc = self;
    if (!oc) return;
    free_devices(oc);
    opcua_cache_free(oc->cache);
    opcua_sigs_free(oc);
    tbgw_ua_client_free(oc->client);
    opcua_cfg_free(&oc->cfg);
    free(oc);
}

static void conn_status(void *self, tbgw_connector_status *out) {
    opcua_conn *oc = self;
    out->state = oc->state;
    snprintf(out->last_error, sizeof out->last_error, "%s", oc->last_error);
}

const tbgw_connector_ops tbgw_connector_opcua = {
    .abi = TBGW_CONNECTOR_ABI,
    .type = "opcua",
    .flags = 0,
    .create = conn_create,
    .run = conn_run,
    .stop = conn_stop,
    .destroy = conn_destroy,
    .on_attribute_update = opcua_on_attribute_update,
    .on_rpc = opcua_on_rpc,
    .on_attribute_response = NULL,
    .status = conn_status,
};
