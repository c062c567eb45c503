/* Downlink of the Socket connector: attribute updates, RPC (configured methods and the reserved
 * `set`) and the answers to attribute requests, written to the device's last address. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <tbgw/connkit.h>

#include "connectors/socket/sock.h"
#include "convert/expr.h"
#include "util/time.h"

#define ATTR_REQ_TTL_MS 30000

static sock_device *find_device(sock *s, const char *name) {
    for (size_t i = 0; name && i < s->cfg.n_devices; i++)
        if (!strcmp(s->cfg.devices[i].name, name)) return &s->cfg.devices[i];
    return NULL;
}

/* Python str() of a value, encoded. */
static int encode_value(const sock_enc *e, const json_t *v, tbgw_buf *out) {
    tbgw_buf t;
    tbgw_buf_init(&t);
    int rc = v ? tbgw_fmt_json(&t, v, TBGW_FMT_PY) : tbgw_buf_puts(&t, "None");
    if (rc >= 0) rc = sock_encode(e, t.p ? t.p : "", t.len, out);
    tbgw_buf_free(&t);
    return rc;
}

static int device_send(sock *s, sock_device *d, const tbgw_buf *b, int has_rpc, uint64_t rpc,
                       int with_reply) {
    if (!d->last_peer[0]) {
        char m[300];
        snprintf(m, sizeof m, "device %s has not sent anything yet: its address is unknown", d->name);
        TBGW_WARNF(s->host->log, "%s", m);
        s->cnt.downlink_errors++;
        if (has_rpc) tbgw_rpc_failed(s->host, rpc, "%s", m);
        return TBGW_ENOENT;
    }
    return sock_io_send(s, d->last_peer, d->last_salen ? &d->last_sa : NULL, d->last_salen, b->p ? b->p : "",
                        b->len, has_rpc, rpc, with_reply);
}

int sock_on_attribute_update(sock *s, const tbgw_attr_update *u) {
    sock_device *d = find_device(s, u->device);
    if (!d) {
        TBGW_WARNF(s->host->log, "attribute update for unknown device %s", u->device ? u->device : "?");
        return TBGW_ENOENT;
    }
    tbgw_buf b;
    tbgw_buf_init(&b);
    for (size_t i = 0; i < d->n_attr_updates; i++) {
        const sock_attr_update *au = &d->attr_updates[i];
        const json_t *v = json_object_get(u->data, au->attr);
        if (!v) continue;
        tbgw_buf_reset(&b);
        if (encode_value(&au->enc, v, &b) < 0) {
            TBGW_WARNF(s->host->log, "attribute %s of %s cannot be encoded as %s; not sent", au->attr,
                       d->name, au->enc.name);
            s->cnt.downlink_errors++;
            continue;
        }
        TBGW_DEBUGF(s->host->log, "attribute %s (%zu bytes) to %s at %s", au->attr, b.len, d->name,
                    d->last_peer);
        device_send(s, d, &b, 0, 0, 0);
    }
    tbgw_buf_free(&b);
    return 0;
}

/* Reserved `set`: params "address=..;port=..;value=..;" (an empty value counts as missing). */
static int rpc_set(sock *s, const tbgw_rpc_req *r) {
    const tbgw_host *h = s->host;
    const char *ps = json_string_value(r->params);
    tbgw_params kv = {0};
    tbgw_err err = {0};
    if (tbgw_params_parse(ps ? ps : "", TBGW_PARAMS_LENIENT, &kv, &err) < 0) {
        tbgw_rpc_failed(h, r->handle, "%s", err.msg);
        return 0;
    }
    const char *addr = tbgw_params_get(&kv, "address"), *value = tbgw_params_get(&kv, "value");
    int64_t pn = -1;
    int prc = tbgw_params_int(&kv, "port", &pn);
    if (!addr || !*addr || !value || !*value || prc == TBGW_ENOENT) {
        tbgw_rpc_failed(h, r->handle, "Not enough params (address=..;port=..;value=..;)");
    } else if (prc < 0 || pn < 1 || pn > 65535) {
        tbgw_rpc_failed(h, r->handle, "Param \"port\" have to be int type");
    } else {
        char peer[128];
        snprintf(peer, sizeof peer, "%s:%lld", addr, (long long)pn);
        sock_io_send(s, peer, NULL, 0, value, strlen(value), 1, r->handle, 1);
    }
    tbgw_params_free(&kv);
    return 0;
}

int sock_on_rpc(sock *s, const tbgw_rpc_req *r) {
    const tbgw_host *h = s->host;
    if (!strcmp(r->method, "set")) return rpc_set(s, r);
    sock_device *d = find_device(s, r->device);
    if (!d) {
        tbgw_rpc_failed(h, r->handle, "device not found");
        return TBGW_ENOENT;
    }
    for (size_t i = 0; i < d->n_rpcs; i++) {
        const sock_rpc_cfg *rc = &d->rpcs[i];
        if (strcmp(rc->method, r->method)) continue;
        tbgw_buf b;
        tbgw_buf_init(&b);
        if (encode_value(&rc->enc, r->params, &b) < 0) {
            tbgw_rpc_failed(h, r->handle, "params cannot be encoded as %s", rc->enc.name);
        } else {
            TBGW_DEBUGF(h->log, "rpc %s (%zu bytes) to %s at %s", r->method, b.len, d->name, d->last_peer);
            device_send(s, d, &b, 1, r->handle, rc->with_response);
        }
        tbgw_buf_free(&b);
        return 0;
    }
    tbgw_rpc_failed(h, r->handle, "no serverSideRpc entry of device %s has methodRPC '%s'", d->name,
                    r->method);
    return TBGW_ENOENT;
}

void sock_request_attributes(sock *s, size_t dev, char **names, size_t n, int client) {
    sock_pending_attr *pa = calloc(1, sizeof *pa);
    if (!pa) goto out;
    pa->cookie = ++s->next_cookie;
    pa->dev = dev;
    pa->single = n == 1;
    pa->key = n ? strdup(names[0]) : NULL;
    pa->deadline = tbgw_mono_ms() + ATTR_REQ_TTL_MS;
    pa->next = s->attrs;
    s->attrs = pa;
    TBGW_DEBUGF(s->host->log, "requesting %zu %s attribute(s) of %s", n, client ? "client" : "shared",
                s->cfg.devices[dev].name);
    s->host->request_attributes(s->host, s->cfg.devices[dev].name, (const char *const *)names, n, client,
                                pa->cookie);
out:
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

int sock_on_attribute_response(sock *s, uint64_t cookie, const char *device, const json_t *data) {
    sock_pending_attr *pa = NULL;
    for (sock_pending_attr **pp = &s->attrs; *pp; pp = &(*pp)->next)
        if ((*pp)->cookie == cookie) {
            pa = *pp;
            *pp = pa->next;
            break;
        }
    if (!pa) return TBGW_ENOENT;
    sock_device *d = &s->cfg.devices[pa->dev];
    if (!data) {
        TBGW_WARNF(s->host->log, "attribute request for %s timed out", d->name);
    } else {
        /* one key: json.dumps of its value; several: of the {key: value} object */
        const json_t *v = pa->single ? json_object_get(data, pa->key) : data;
        json_t *null = json_null();
        tbgw_buf b;
        tbgw_buf_init(&b);
        sock_py_dumps(v ? v : null, &b);
        TBGW_DEBUGF(s->host->log, "attribute response for %s: %.*s", d->name,
                    (int)(b.len > 200 ? 200 : b.len), b.p ? b.p : "");
        device_send(s, d, &b, 0, 0, 0);
        tbgw_buf_free(&b);
        json_decref(null);
    }
    free(pa->key);
    free(pa);
    (void)device;
    return 0;
}

int64_t sock_downlink_expire(sock *s, int64_t now) {
    int64_t next = INT64_MAX;
    for (sock_pending_attr **pp = &s->attrs; *pp;) {
        sock_pending_attr *pa = *pp;
        if (now < pa->deadline) {
            if (pa->deadline < next) next = pa->deadline;
            pp = &pa->next;
            continue;
        }
        *pp = pa->next;
        free(pa->key);
        free(pa);
    }
    return next;
}

void sock_downlink_free(sock *s) {
    while (s->attrs) {
        sock_pending_attr *pa = s->attrs;
        s->attrs = pa->next;
        free(pa->key);
        free(pa);
    }
}
