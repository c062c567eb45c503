/* CAN connector (docs/connectors/can.md): devices by arbitration id, uplink byte fields with Python
 * expressions (src/convert/pyexpr), periodic polling frames, attribute updates and RPC as frames; the
 * bus through SocketCAN or an slcan serial adapter. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <tbgw/connector.h>
#include <tbgw/connkit.h>

#include "connectors/can/can_internal.h"
#include "util/time.h"

typedef struct can_item {
    char *key;
    int is_ts;
    uint32_t node;
    int ext;
    int has_cmd;
    can_cmd cmd;
    can_value_spec spec;
    tbgw_py *expr;
    struct can_dev *dev;
} can_item;

typedef struct can_poll {
    can_msg msg;
    int once;
    int64_t period_ms, next_at;
} can_poll;

typedef struct can_dev {
    char *name, *type;
    int strict, unknown_rpc, override_rpc;
    const json_t *cfg; /* attributeUpdates, serverSideRpc (in the connector's copy) */
} can_dev;

typedef struct canc {
    const tbgw_host *h;
    json_t *cfg;
    char iface[16], channel[256];
    long bitrate;
    int fd_frames, reconnect;
    long reconnect_count;
    int64_t reconnect_ms;
    can_dev *devs;
    size_t n_devs;
    can_item *items;
    size_t n_items;
    can_poll *polls;
    size_t n_polls;
    can_transport *bus;
    int64_t reopen_at;
    long attempts;
    tbgw_py_ctx *ctx;
    volatile int stop;
} canc;

/* ---- configuration ---- */

static void cc_destroy(void *self) {
    canc *c = self;
    for (size_t i = 0; i < c->n_items; i++) {
        free(c->items[i].key);
        tbgw_py_free(c->items[i].expr);
    }
    for (size_t i = 0; i < c->n_devs; i++) {
        free(c->devs[i].name);
        free(c->devs[i].type);
    }
    free(c->items);
    free(c->devs);
    free(c->polls);
    if (c->bus) c->bus->close(c->bus);
    tbgw_py_ctx_free(c->ctx);
    json_decref(c->cfg);
    free(c);
}

/* An attributes[]/timeseries[] entry; errors relative to the entry (the kit names it). */
static int parse_item(tbgw_cfg *w, canc *c, can_dev *d, const json_t *e, int is_ts, const char *path,
                      tbgw_err *err) {
    const char *key = json_string_value(json_object_get(e, "key"));
    const json_t *node = json_object_get(e, "nodeId");
    if (!key) return tbgw_err_set(err, TBGW_EINVAL, "key: expected a string");
    if (!json_is_integer(node) || json_integer_value(node) < 0)
        return tbgw_err_set(err, TBGW_EINVAL, "nodeId: expected the arbitration id (an integer)");
    can_item it = {0};
    it.is_ts = is_ts;
    it.dev = d;
    it.node = (uint32_t)json_integer_value(node);
    it.ext = json_is_true(json_object_get(e, "isExtendedId"));
    if ((!it.ext && it.node > 0x7FF) || it.node > 0x1FFFFFFF)
        return tbgw_err_set(err, TBGW_EINVAL, "nodeId: %u does not fit a%s id", it.node,
                            it.ext ? "n extended" : " standard (11-bit; set isExtendedId)");
    if (can_value_parse(json_object_get(e, "value"), &it.spec, err) != 0) return TBGW_EINVAL;
    const json_t *cmd = json_object_get(e, "command");
    if (cmd) {
        if (can_cmd_parse(cmd, &it.cmd, err) != 0) return TBGW_EINVAL;
        it.has_cmd = 1;
    }
    const char *ex = json_string_value(json_object_get(e, "expression"));
    if (ex && *ex) {
        size_t off = 0;
        tbgw_err e2 = {0};
        if (tbgw_py_compile(ex, strlen(ex), d->strict ? TBGW_PY_STRICT : 0, &it.expr, &e2, &off) != 0)
            return tbgw_err_set(err, TBGW_EINVAL, "expression@%zu: %s", off, e2.msg);
    }
    const json_t *poll = json_object_get(e, "polling");
    if (json_is_object(poll)) {
        const char *hex = json_string_value(json_object_get(poll, "dataInHex"));
        can_poll p = {0};
        int n = hex ? can_hex(hex, p.msg.data, CAN_MAX_DATA) : 0;
        if (n < 0 || n > (json_is_true(json_object_get(e, "isFd")) ? 64 : 8)) {
            char pp[160];
            snprintf(pp, sizeof pp, "%s.polling.dataInHex", path);
            tbgw_cfg_skip(w, pp, "\"%s\" is not a frame's hex bytes; no polling for it", hex ? hex : "");
        } else {
            const char *type = json_string_value(json_object_get(poll, "type"));
            const json_t *per = json_object_get(poll, "period");
            p.msg.id = it.node;
            p.msg.extended = it.ext;
            p.msg.fd = json_is_true(json_object_get(e, "isFd"));
            p.msg.brs = json_is_true(json_object_get(e, "bitrateSwitch"));
            p.msg.len = (uint8_t)n;
            p.once = type && strcmp(type, "once") == 0;
            p.period_ms = (int64_t)((json_is_number(per) ? json_number_value(per) : 1.0) * 1000);
            if (p.period_ms < 10) p.period_ms = 10;
            c->polls[c->n_polls++] = p;
        }
    }
    it.key = strdup(key);
    c->items[c->n_items++] = it;
    return 0;
}

typedef struct item_ctx {
    canc *c;
    can_dev *d;
    int is_ts;
} item_ctx;

static int item_entry(tbgw_cfg *w, const json_t *e, const char *path, size_t index, void *ud, tbgw_err *err) {
    (void)index;
    item_ctx *x = ud;
    tbgw_err ierr = {0};
    if (parse_item(w, x->c, x->d, e, x->is_ts, path, &ierr) < 0) {
        if (ierr.code == TBGW_ENOMEM) return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
        tbgw_cfg_skip_msg(w, path, ierr.msg); /* at the field named (one bad key: reported, skipped) */
    }
    return 0;
}

/* devices[] entry: a device without a name is reported and skipped, so is each bad key inside. */
static int device_entry(tbgw_cfg *w, const json_t *d, const char *path, size_t index, void *ud,
                        tbgw_err *err) {
    (void)index;
    canc *c = ud;
    const char *name = json_string_value(json_object_get(d, "name"));
    if (!name) return tbgw_err_set(err, TBGW_EINVAL, "name: expected a string (the device is skipped)");
    can_dev *dv = &c->devs[c->n_devs++];
    dv->name = strdup(name);
    const char *type = json_string_value(json_object_get(d, "type"));
    dv->type = strdup(type ? type : "can");
    const json_t *st = json_object_get(d, "strictEval");
    dv->strict = !st || json_is_true(st);
    dv->unknown_rpc = json_is_true(json_object_get(d, "enableUnknownRpc"));
    dv->override_rpc = dv->unknown_rpc || json_is_true(json_object_get(d, "overrideRpcConfig"));
    dv->cfg = d;
    if (!dv->name || !dv->type) return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    for (int ts = 0; ts < 2; ts++) {
        item_ctx x = {c, dv, ts};
        const char *sect = ts ? "timeseries" : "attributes";
        const json_t *list = json_object_get(d, sect);
        if (json_is_array(list)) {
            tbgw_cfg_each(w, d, path, sect, item_entry, &x);
        } else if (list && !json_is_null(list)) { /* tolerated as before, but said: nothing in it */
            char sp[160];
            snprintf(sp, sizeof sp, "%s.%s", path, sect);
            tbgw_cfg_skip(w, sp, "expected a list; the section is ignored");
        }
    }
    return 0;
}

static int cc_create(const tbgw_host *h, const json_t *cfg, void **self, tbgw_err *err) {
    const json_t *devs = json_object_get(cfg, "devices");
    if (!json_is_array(devs)) return tbgw_err_set(err, TBGW_EINVAL, "devices: expected a list");
    const char *iface = json_string_value(json_object_get(cfg, "interface"));
    if (!iface) iface = "socketcan";
    if (strcmp(iface, "socketcan") && strcmp(iface, "slcan"))
        return tbgw_err_set(err, TBGW_EINVAL, "interface: \"%s\" is not available (socketcan or slcan)",
                            iface);
    canc *c = calloc(1, sizeof *c);
    if (!c) return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    c->h = h;
    c->cfg = json_deep_copy(cfg);
    snprintf(c->iface, sizeof c->iface, "%s", iface);
    const char *ch = json_string_value(json_object_get(cfg, "channel"));
    snprintf(c->channel, sizeof c->channel, "%s", ch ? ch : "vcan0");
    const json_t *be = json_object_get(cfg, "backend");
    c->fd_frames = json_is_true(json_object_get(be, "fd"));
    const json_t *br = json_object_get(be, "bitrate");
    c->bitrate = json_is_integer(br) ? (long)json_integer_value(br) : 500000;
    const json_t *rc = json_object_get(cfg, "reconnect");
    c->reconnect = !rc || json_is_true(rc);
    const json_t *rp = json_object_get(cfg, "reconnectPeriod");
    c->reconnect_ms = (int64_t)((json_is_number(rp) ? json_number_value(rp) : 30.0) * 1000);
    const json_t *cnt = json_object_get(cfg, "reconnectCount");
    c->reconnect_count = json_is_integer(cnt) ? (long)json_integer_value(cnt) : -1;
    devs = json_object_get(c->cfg, "devices");
    size_t total = 0, i;
    const json_t *d;
    json_array_foreach(devs, i, d) total +=
        json_array_size(json_object_get(d, "attributes")) + json_array_size(json_object_get(d, "timeseries"));
    c->devs = calloc(json_array_size(devs) + 1, sizeof *c->devs);
    c->items = calloc(total + 1, sizeof *c->items);
    c->polls = calloc(total + 1, sizeof *c->polls);
    c->ctx = tbgw_py_ctx_new(NULL);
    if (!c->devs || !c->items || !c->polls || !c->ctx) {
        cc_destroy(c);
        return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    }
    tbgw_cfg w;
    tbgw_cfg_init(&w, h, err);
    if (tbgw_cfg_each(&w, c->cfg, NULL, "devices", device_entry, c) < 0) {
        cc_destroy(c);
        return TBGW_EINVAL;
    }
    *self = c;
    return 0;
}

static void cc_stop(void *self) {
    ((canc *)self)->stop = 1;
}

/* ---- the bus ---- */

static void bus_open(canc *c) {
    tbgw_err err = {0};
    if (strcmp(c->iface, "slcan") == 0) {
        c->bus = can_slcan_open(c->channel, c->bitrate, &err);
    } else {
        uint32_t *ids = calloc(c->n_items + 1, sizeof *ids);
        int *ext = calloc(c->n_items + 1, sizeof *ext);
        for (size_t i = 0; ids && ext && i < c->n_items; i++)
            ids[i] = c->items[i].node, ext[i] = c->items[i].ext;
        c->bus = can_socketcan_open(c->channel, c->fd_frames, ids, ext, c->n_items, &err);
        free(ids);
        free(ext);
    }
    if (!c->bus) {
        c->attempts++;
        c->h->set_state(c->h, TBGW_CONN_DISCONNECTED, err.msg);
        if (c->attempts == 1 || c->attempts % 10 == 0)
            TBGW_ERRORF(c->h->log, "%s (attempt %ld; next in %lld ms)", err.msg, c->attempts,
                        (long long)c->reconnect_ms);
        c->reopen_at = tbgw_mono_ms() + c->reconnect_ms;
        return;
    }
    c->attempts = 0;
    TBGW_INFOF(c->h->log, "bus %s on %s open", c->iface, c->channel);
    c->h->set_state(c->h, TBGW_CONN_CONNECTED, NULL);
    int64_t now = tbgw_mono_ms();
    for (size_t i = 0; i < c->n_polls; i++) c->polls[i].next_at = now; /* once and always: at open */
}

static void bus_lost(canc *c, const char *why) {
    TBGW_ERRORF(c->h->log, "bus %s on %s: %s; %s", c->iface, c->channel, why,
                c->reconnect ? "reopening" : "reconnect is off: the connector stops");
    if (c->bus) c->bus->close(c->bus);
    c->bus = NULL;
    c->h->set_state(c->h, TBGW_CONN_DISCONNECTED, why);
    c->reopen_at = tbgw_mono_ms() + c->reconnect_ms;
}

static int send_msg(canc *c, const can_msg *m, tbgw_err *err) {
    if (!c->bus) return tbgw_err_set(err, TBGW_EIO, "the bus is not open");
    if (c->bus->write(c->bus, m, err) != 0) {
        if (err->code == TBGW_EIO) bus_lost(c, err->msg);
        return -1;
    }
    return 0;
}

/* ---- uplink ---- */

static void add_item(canc *c, tbgw_converted **rec, const can_item *it, const can_msg *m) {
    tbgw_py_ctx_reset(c->ctx);
    const tbgw_py_val *v = NULL, *r;
    tbgw_err err = {0};
    if (can_value_decode(&it->spec, m->data, m->len, c->ctx, &v) != 0) {
        TBGW_DEBUGF(c->h->conv_log, "%s: key %s: frame 0x%X too short or not decodable", it->dev->name,
                    it->key, m->id);
        c->h->stat_add(c->h, TBGW_STAT_CONVERTER_ERRORS, 1);
        return;
    }
    r = v;
    if (it->expr) {
        tbgw_py_val *data = tbgw_py_bytes(c->ctx, m->data, m->len);
        if (!data || tbgw_py_bind(c->ctx, "value", v) || tbgw_py_bind(c->ctx, "can_data", data) ||
            tbgw_py_eval(it->expr, c->ctx, &r, &err)) {
            TBGW_WARNF(c->h->conv_log, "%s: key %s: %s", it->dev->name, it->key,
                       err.msg[0] ? err.msg : "out of memory");
            c->h->stat_add(c->h, TBGW_STAT_CONVERTER_ERRORS, 1);
            return;
        }
    }
    tbgw_value tv;
    tbgw_buf scratch;
    tbgw_buf_init(&scratch);
    if (tbgw_py_to_value(c->ctx, r, &tv, &scratch, &err) == 0) {
        if (!*rec) *rec = tbgw_converted_new(it->dev->name, it->dev->type);
        if (*rec) {
            if (it->is_ts)
                tbgw_converted_add_telemetry(*rec, tbgw_now_ms(), it->key, &tv, NULL);
            else
                tbgw_converted_add_attribute(*rec, it->key, &tv, NULL);
        }
    } else {
        TBGW_WARNF(c->h->conv_log, "%s: key %s: %s", it->dev->name, it->key, err.msg);
    }
    tbgw_buf_free(&scratch);
}

static void on_frame(void *ud, const can_msg *m) {
    canc *c = ud;
    c->h->stat_add(c->h, TBGW_STAT_MSGS_RECEIVED, 1);
    c->h->stat_add(c->h, TBGW_STAT_BYTES_RECEIVED, m->len);
    /* one record per device; items with a command decode the frames of that command, items without
     * one decode every frame of their id */
    tbgw_converted *chain = NULL;
    for (size_t d = 0; d < c->n_devs; d++) {
        tbgw_converted *rec = NULL;
        for (size_t i = 0; i < c->n_items; i++) {
            const can_item *it = &c->items[i];
            if (it->dev != &c->devs[d] || it->node != m->id || it->ext != m->extended) continue;
            uint64_t cmd;
            if (it->has_cmd && (can_cmd_of(&it->cmd, m->data, m->len, &cmd) != 0 || cmd != it->cmd.value))
                continue;
            add_item(c, &rec, it, m);
        }
        if (rec) {
            rec->next = chain;
            chain = rec;
        }
    }
    if (chain) {
        c->h->stat_add(c->h, TBGW_STAT_CONV_PROCESSED, 1);
        c->h->emit(c->h, chain);
    }
}

/* ---- downlink ---- */

static can_dev *dev_named(canc *c, const char *name) {
    for (size_t i = 0; name && i < c->n_devs; i++)
        if (strcmp(c->devs[i].name, name) == 0) return &c->devs[i];
    return NULL;
}

static int send_down(canc *c, const can_down *o, const json_t *data, tbgw_err *err) {
    if (o->node_id < 0) return tbgw_err_set(err, TBGW_EINVAL, "nodeId: missing");
    can_msg m = {0};
    int n = can_down_encode(o, data, c->ctx, m.data, o->fd ? 64 : 8, err);
    if (n < 0) return -1;
    m.id = (uint32_t)o->node_id;
    m.extended = o->extended;
    m.fd = o->fd;
    m.brs = o->brs;
    m.len = (uint8_t)n;
    return send_msg(c, &m, err);
}

static int cc_attr_update(void *self, const tbgw_attr_update *u) {
    canc *c = self;
    can_dev *d = dev_named(c, u->device);
    if (!d) return 0;
    const char *key;
    const json_t *val;
    json_object_foreach((json_t *)u->data, key, val) {
        const json_t *entry = NULL, *e;
        size_t i;
        json_array_foreach(json_object_get(d->cfg, "attributeUpdates"), i, e) {
            const char *on = json_string_value(json_object_get(e, "attributeOnThingsBoard"));
            if (!on) on = json_string_value(json_object_get(e, "attribute"));
            if (on && strcmp(on, key) == 0) entry = e;
        }
        if (!entry) {
            TBGW_WARNF(c->h->log, "%s: no attributeUpdates entry for %s", d->name, key);
            continue; /* the other keys still go (the reference stops here) */
        }
        can_down o;
        tbgw_err err = {0};
        json_t *data = json_pack("{s:O}", "value", val);
        if (can_down_parse(entry, NULL, d->strict, &o, &err) != 0 || send_down(c, &o, data, &err) != 0)
            TBGW_ERRORF(c->h->log, "%s: attribute %s not sent: %s", d->name, key, err.msg);
        can_down_free(&o);
        json_decref(data);
    }
    return 0;
}

static int reply(canc *c, const tbgw_rpc_req *r, json_t *content) {
    return c->h->rpc_reply(c->h, r->handle, content, -1); /* the forms of the reference's CAN connector */
}

/* Reserved set: "k=v;..." as the downlink options and the data (numbers and booleans coerced). */
static int rpc_set(canc *c, can_dev *d, const tbgw_rpc_req *r) {
    tbgw_params kv = {0};
    tbgw_err perr;
    const char *p = json_string_value(r->params);
    json_t *o = p && tbgw_params_parse(p, TBGW_PARAMS_LENIENT, &kv, &perr) == 0 ? tbgw_params_object(&kv)
                                                                                : json_object();
    int64_t n;
    if (tbgw_params_int(&kv, "value", &n) == 0)
        json_object_set_new(o, "value", json_integer(n)); /* a number */
    tbgw_params_free(&kv);
    can_down opt;
    tbgw_err err = {0};
    int ok = can_down_parse(o, NULL, d->strict, &opt, &err) == 0 && send_down(c, &opt, o, &err) == 0;
    can_down_free(&opt);
    json_decref(o);
    if (!ok) return reply(c, r, json_pack("{s:s}", "set", err.msg));
    return tbgw_rpc_result(c->h, r->handle, json_pack("{s:b}", "success", 1));
}

static int cc_rpc(void *self, const tbgw_rpc_req *r) {
    canc *c = self;
    can_dev *d = dev_named(c, r->device);
    if (!d) return tbgw_rpc_error(c->h, r->handle, "Unsupported connector RPC");
    if (strcmp(r->method, "set") == 0) return rpc_set(c, d, r);
    const json_t *entry = NULL, *e;
    size_t i;
    json_array_foreach(json_object_get(d->cfg, "serverSideRpc"), i, e) {
        const char *m = json_string_value(json_object_get(e, "method"));
        if (m && strcmp(m, r->method) == 0) entry = e;
    }
    if (!entry && !d->unknown_rpc) return tbgw_rpc_error(c->h, r->handle, "Method not found");
    can_down base, opt;
    tbgw_err err = {0};
    int merged = d->override_rpc;
    int ok = 1;
    memset(&base, 0, sizeof base);
    if (entry) {
        ok = can_down_parse(entry, NULL, d->strict, &base, &err) == 0;
    } else {
        ok = can_down_parse(NULL, NULL, d->strict, &base, &err) == 0; /* defaults */
    }
    if (merged) base.response = 1; /* merged configurations answer by default */
    if (entry && json_object_get(entry, "response"))
        base.response = json_is_true(json_object_get(entry, "response"));
    /* params override the configuration (the configured dataBefore/dataAfter/expression stay) */
    if (ok && merged && json_is_object(r->params))
        ok = can_down_parse(r->params, &base, d->strict, &opt, &err) == 0;
    else if (ok)
        opt = base, opt.own_expr = NULL;
    int sent = ok && send_down(c, &opt, r->params, &err) == 0;
    int answer = opt.response;
    if (ok && merged && json_is_object(r->params)) can_down_free(&opt);
    can_down_free(&base);
    if (!ok) return tbgw_rpc_error(c->h, r->handle, "%s", err.msg);
    if (!sent) TBGW_ERRORF(c->h->log, "%s: RPC %s not sent: %s", d->name, r->method, err.msg);
    if (answer)
        return sent ? tbgw_rpc_success_object(c->h, r->handle, 1)
                    : reply(c, r, json_pack("{s:b,s:s}", "success", 0, "error", err.msg));
    return 0; /* response off: no reply, as configured */
}

/* ---- the loop ---- */

static void polls_due(canc *c, int64_t now, int64_t *next) {
    for (size_t i = 0; i < c->n_polls && c->bus; i++) {
        can_poll *p = &c->polls[i];
        if (p->next_at < 0) continue;
        if (now >= p->next_at) {
            tbgw_err err = {0};
            if (send_msg(c, &p->msg, &err) != 0)
                TBGW_WARNF(c->h->log, "polling frame 0x%X: %s", p->msg.id, err.msg);
            p->next_at = p->once ? -1 : now + p->period_ms;
        }
        if (p->next_at >= 0 && p->next_at < *next) *next = p->next_at;
    }
}

/* The connector thread sleeps in one poll() on the bus descriptor and host->downlink_fd until a
 * frame, downlink work (dispatched at once) or the next polling frame or reopen is due. */
static int cc_run(void *self) {
    canc *c = self;
    for (size_t i = 0; i < c->n_devs; i++) c->h->device_connected(c->h, c->devs[i].name, c->devs[i].type);
    while (!c->stop) {
        int64_t now = tbgw_mono_ms();
        if (!c->bus && now >= c->reopen_at) {
            if (c->reconnect_count >= 0 && c->attempts > c->reconnect_count) {
                c->h->set_state(c->h, TBGW_CONN_FAILED, "reconnectCount reached");
                while (!c->stop && tbgw_host_poll(c->h, NULL, 0, -1) == 0) {
                }
                break;
            }
            bus_open(c);
        }
        int64_t next = INT64_MAX;
        polls_due(c, now, &next);
        if (!c->bus && c->reopen_at < next) next = c->reopen_at;
        int64_t timeout = -1;
        if (next != INT64_MAX) {
            timeout = next - tbgw_mono_ms();
            if (timeout < 0) timeout = 0;
        }
        struct pollfd pf = {.fd = c->bus ? c->bus->fd : -1, .events = POLLIN};
        int r = tbgw_host_poll(c->h, &pf, 1, timeout);
        if (r == 1) break;
        if (r < 0) tbgw_sleep_ms(10); /* poll() failing (ENOMEM): no busy loop */
        /* the downlink may have lost the bus meanwhile (a failed write): then its revents are stale */
        if (r == 0 && pf.revents && c->bus && c->bus->fd == pf.fd) {
            if (pf.revents & (POLLERR | POLLHUP | POLLNVAL))
                bus_lost(c, "the device went away");
            else if (c->bus->read(c->bus, on_frame, c) != 0)
                bus_lost(c, strerror(errno));
        }
    }
    return 0;
}

const tbgw_connector_ops tbgw_connector_can = {
    .abi = TBGW_CONNECTOR_ABI,
    .type = "can",
    .create = cc_create,
    .run = cc_run,
    .stop = cc_stop,
    .destroy = cc_destroy,
    .on_attribute_update = cc_attr_update,
    .on_rpc = cc_rpc,
};
