/* Uplink of the Socket connector: one received chunk or datagram is one message; every device whose
 * address filter matches the peer gets it (attribute request or data). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/socket/sock.h"
#include "util/time.h"
#include "util/utf8.h"

static int add_keys(const sock_device *d, const sock_key *keys, size_t n, int attrs, const uint8_t *p,
                    size_t len, int64_t ts, tbgw_converted *c, tbgw_buf *b) {
    for (size_t i = 0; i < n; i++) {
        size_t a, z;
        if (sock_slice_resolve(&keys[i].slice, len, &a, &z) < 0) continue;
        tbgw_buf_reset(b);
        if (sock_decode(&d->enc, p + a, z - a, b) < 0) return TBGW_ENOMEM;
        tbgw_value v = tbgw_value_string(tbgw_buf_cstr(b));
        if (!v.u.s) return TBGW_ENOMEM;
        const tbgw_report_strategy *rs = keys[i].has_rs ? &keys[i].rs : NULL;
        int rc = attrs ? tbgw_converted_add_attribute(c, keys[i].key, &v, rs)
                       : tbgw_converted_add_telemetry(c, ts, keys[i].key, &v, rs);
        if (rc < 0) return rc;
    }
    return 0;
}

int sock_convert(const sock_device *d, const uint8_t *p, size_t n, int64_t ts, tbgw_converted **out,
                 tbgw_err *err) {
    *out = NULL;
    tbgw_converted *c = tbgw_converted_new(d->name, d->type);
    if (!c) return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    c->rs = d->has_rs ? &d->rs : NULL;
    tbgw_buf b;
    tbgw_buf_init(&b);
    int rc = add_keys(d, d->telemetry, d->n_telemetry, 0, p, n, ts, c, &b);
    if (!rc) rc = add_keys(d, d->attributes, d->n_attributes, 1, p, n, ts, c, &b);
    tbgw_buf_free(&b);
    if (rc < 0) {
        tbgw_converted_free(c);
        return tbgw_err_set(err, rc, "out of memory");
    }
    if (!c->n_telemetry && !c->n_attributes) {
        tbgw_converted_free(c);
        return 0;
    }
    *out = c;
    return 1;
}

int sock_attr_req_match(const sock_attr_req *r, const uint8_t *p, size_t n) {
    size_t el = strlen(r->equal);
    if (r->whole) return n == el && !memcmp(p, r->equal, n);
    size_t a, z;
    if (sock_slice_resolve(&r->cond, n, &a, &z) < 0) return 0;
    /* the reference decodes the slice as UTF-8 and compares the text */
    return z - a == el && !memcmp(p + a, r->equal, el) && tbgw_utf8_valid(p + a, el);
}

int sock_attr_req_names(const sock_attr_req *r, const uint8_t *p, size_t n, char ***names, size_t *count) {
    *names = NULL;
    *count = 0;
    size_t want = r->literal_name ? 1 : r->n_names;
    char **v = calloc(want + 1, sizeof *v);
    if (!v) return TBGW_ENOMEM;
    size_t k = 0;
    int rc = 0;
    if (r->literal_name) {
        if (!(v[k++] = strdup(r->literal_name))) rc = TBGW_ENOMEM;
    }
    for (size_t i = 0; !rc && i < r->n_names; i++) {
        size_t a, z;
        if (sock_slice_resolve(&r->names[i], n, &a, &z) < 0) {
            rc = TBGW_ENOENT; /* message too short for an index */
            break;
        }
        /* names are text: NUL bytes cut, invalid UTF-8 refused */
        size_t m = z - a;
        const void *nul = memchr(p + a, 0, m);
        if (nul) m = (size_t)((const uint8_t *)nul - (p + a));
        if (!m || !tbgw_utf8_valid(p + a, m)) {
            rc = TBGW_EPROTO;
            break;
        }
        if (!(v[k++] = strndup((const char *)p + a, m))) rc = TBGW_ENOMEM;
    }
    if (rc) {
        for (size_t i = 0; i < k; i++) free(v[i]);
        free(v);
        return rc;
    }
    *names = v;
    *count = k;
    return 0;
}

void sock_flush(sock *s) {
    if (!s->chain) return;
    tbgw_converted *c = s->chain;
    size_t n = s->chain_len;
    s->chain = NULL;
    s->chain_tail = &s->chain;
    s->chain_len = 0;
    int rc = s->host->emit(s->host, c);
    if (rc == TBGW_EAGAIN) {
        s->cnt.emit_drops += n;
        /* the core is saturated: stop reading for a moment so TCP pushes back on the devices */
        s->pause_until = tbgw_mono_ms() + 50;
        sock_warn(s, "the gateway is saturated: %zu message(s) dropped, reading paused", n);
    }
}

static void append(sock *s, tbgw_converted *c) {
    while (c) {
        tbgw_converted *next = c->next;
        c->next = NULL;
        *s->chain_tail = c;
        s->chain_tail = &c->next;
        s->chain_len++;
        c = next;
    }
    if (s->chain_len >= 256) sock_flush(s);
}

/* Answers the attribute requests of device d the message stands for; 1 when it was one. */
static int attribute_requests(sock *s, size_t di, const uint8_t *p, size_t n) {
    const sock_device *d = &s->cfg.devices[di];
    int any = 0;
    for (size_t i = 0; i < d->n_attr_reqs; i++) {
        const sock_attr_req *r = &d->attr_reqs[i];
        if (!sock_attr_req_match(r, p, n)) continue;
        any = 1;
        char **names;
        size_t cnt;
        int rc = sock_attr_req_names(r, p, n, &names, &cnt);
        if (rc < 0) {
            s->cnt.conv_errors++;
            s->host->stat_add(s->host, TBGW_STAT_CONVERTER_ERRORS, 1);
            sock_warn(s, "attribute request from %s for %s: %s", d->last_peer, d->name,
                      rc == TBGW_ENOENT ? "message too short for attributeNameExpression"
                                        : "attribute name is not text");
            continue;
        }
        s->cnt.attr_requests++;
        sock_request_attributes(s, di, names, cnt, r->client);
    }
    return any;
}

void sock_on_message(sock *s, const char *peer, const struct sockaddr_storage *sa, socklen_t salen,
                     const uint32_t *devs, size_t n_devs, const uint8_t *p, size_t n) {
    const tbgw_host *h = s->host;
    s->cnt.messages++;
    s->cnt.bytes += n;
    h->stat_add(h, TBGW_STAT_MSGS_RECEIVED, 1);
    h->stat_add(h, TBGW_STAT_BYTES_RECEIVED, n);
    if (!n_devs) {
        s->cnt.unmatched++;
        h->stat_add(h, TBGW_STAT_CONV_DROPPED, 1);
        sock_warn(s, "message from %s matches no device address; dropped", peer);
        return;
    }
    int64_t ts = tbgw_now_ms();
    for (size_t k = 0; k < n_devs; k++) {
        sock_device *d = &s->cfg.devices[devs[k]];
        snprintf(d->last_peer, sizeof d->last_peer, "%s", peer);
        memcpy(&d->last_sa, sa, salen);
        d->last_salen = salen;
        if (d->n_attr_reqs && attribute_requests(s, devs[k], p, n)) continue;
        tbgw_converted *c = NULL;
        tbgw_err err = {0};
        int rc = d->custom ? tbgw_custom_conv_convert(d->custom, peer, p, n, &c, &err)
                           : sock_convert(d, p, n, ts, &c, &err);
        if (rc < 0) {
            tbgw_converted_free(c);
            s->cnt.conv_errors++;
            h->stat_add(h, TBGW_STAT_CONVERTER_ERRORS, 1);
            sock_warn(s, "converting a message from %s for %s: %s", peer, d->name, err.msg);
            continue;
        }
        if (!c) continue;
        s->cnt.converted++;
        h->stat_add(h, TBGW_STAT_CONV_PROCESSED, 1);
        append(s, c);
    }
}
