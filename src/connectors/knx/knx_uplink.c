/* Uplink of the KNX connector: polls (one GroupValueRead per distinct address of a device, each sent
 * after the previous one was confirmed; the device's record is emitted when every address answered or
 * the response wait ran out) and listening (writes and responses on the bus outside a poll are
 * reported as they happen). Device names render `${group address}` placeholders from the last value
 * seen on the bus; a placeholder without a value stays as it is (reference behaviour). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/json.h"
#include "connectors/knx/knx_conn.h"
#include "convert/expr.h"
#include "util/time.h"

void kx_value_str(const tbgw_value *v, tbgw_buf *out) {
    switch (v->type) {
    case TBGW_V_NULL:
        tbgw_buf_puts(out, "None");
        break;
    case TBGW_V_BOOL:
        tbgw_buf_puts(out, v->u.b ? "True" : "False");
        break;
    case TBGW_V_INT:
        tbgw_buf_i64(out, v->u.i);
        break;
    case TBGW_V_DOUBLE: {
        json_t *j = json_real(v->u.d);
        tbgw_fmt_json(out, j, TBGW_FMT_PY);
        json_decref(j);
        break;
    }
    case TBGW_V_UINT:
        tbgw_buf_printf(out, "%llu", (unsigned long long)v->u.u64);
        break;
    case TBGW_V_STRING:
    case TBGW_V_JSON:
    case TBGW_V_NUMBER:
        tbgw_buf_puts(out, v->u.s);
        break;
    }
}

static void repr_str(const char *s, tbgw_buf *out);

/* A JSON value as Python prints the equivalent dict/list ({'control': True, 'value': False}). */
static void repr_json(const json_t *j, tbgw_buf *out) {
    if (json_is_object(j)) {
        const char *k;
        const json_t *x;
        int first = 1;
        tbgw_buf_putc(out, '{');
        json_object_foreach((json_t *)j, k, x) {
            tbgw_buf_puts(out, first ? "" : ", ");
            first = 0;
            repr_str(k, out);
            tbgw_buf_puts(out, ": ");
            repr_json(x, out);
        }
        tbgw_buf_putc(out, '}');
    } else if (json_is_array(j)) {
        size_t i;
        const json_t *x;
        tbgw_buf_putc(out, '[');
        json_array_foreach(j, i, x) {
            tbgw_buf_puts(out, i ? ", " : "");
            repr_json(x, out);
        }
        tbgw_buf_putc(out, ']');
    } else if (json_is_string(j))
        repr_str(json_string_value(j), out);
    else
        tbgw_fmt_json(out, j, TBGW_FMT_PY);
}

void kx_value_repr(const tbgw_value *v, tbgw_buf *out) {
    if (v->type == TBGW_V_JSON) {
        json_t *j = tbgw_json_loads(v->u.s, JSON_DECODE_ANY, NULL);
        if (j)
            repr_json(j, out);
        else
            tbgw_buf_puts(out, v->u.s);
        json_decref(j);
        return;
    }
    if (v->type != TBGW_V_STRING) return kx_value_str(v, out);
    repr_str(v->u.s, out);
}

static void repr_str(const char *s, tbgw_buf *out) {
    char q = (strchr(s, '\'') && !strchr(s, '"')) ? '"' : '\'';
    tbgw_buf_putc(out, q);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\\' || c == (unsigned char)q) {
            tbgw_buf_putc(out, '\\');
            tbgw_buf_putc(out, (char)c);
        } else if (c == '\n')
            tbgw_buf_puts(out, "\\n");
        else if (c == '\r')
            tbgw_buf_puts(out, "\\r");
        else if (c == '\t')
            tbgw_buf_puts(out, "\\t");
        else if (c < 0x20 || c == 0x7F)
            tbgw_buf_printf(out, "\\x%02x", c);
        else
            tbgw_buf_putc(out, (char)c);
    }
    tbgw_buf_putc(out, q);
}

void kx_warn_undecodable(kx *k, uint16_t ga, const knx_dpt *d, const knx_payload *p, const char *who) {
    const tbgw_host *h = k->host;
    k->undecodable++;
    if (h->stat_add) h->stat_add(h, TBGW_STAT_CONVERTER_ERRORS, 1);
    int64_t now = tbgw_mono_ms();
    if (now < k->warn_at) {
        k->warn_suppressed++;
        return;
    }
    k->warn_at = now + 1000;
    char gs[16], num[16], hex[3 * KNX_MAX_APDU_DATA + 8];
    knx_ga_format(ga, k->ga_style, gs, sizeof gs);
    knx_dpt_number(d, num, sizeof num);
    size_t o = 0;
    if (p->small)
        o = (size_t)snprintf(hex, sizeof hex, "6-bit %u", (unsigned)p->data[0]);
    else
        for (size_t i = 0; i < p->len && o + 4 < sizeof hex; i++)
            o += (size_t)snprintf(hex + o, sizeof hex - o, "%s%02X", i ? " " : "", (unsigned)p->data[i]);
    hex[o] = '\0';
    TBGW_WARNF(
        h->conv_log ? h->conv_log : h->log,
        "knx: %s: group address %s: payload [%s] does not decode as %s (%s); dropped (%llu undecodable so "
        "far, %llu warnings suppressed)",
        who, gs, hex, knx_dpt_name(d), num, (unsigned long long)k->undecodable,
        (unsigned long long)k->warn_suppressed);
    k->warn_suppressed = 0;
}

/* Appends the rendered name/type template. */
static void render(kx *k, const kx_tmpl *t, tbgw_buf *out) {
    if (!t->is_expr || !t->dpt) {
        tbgw_buf_puts(out, t->text);
        return;
    }
    const char *p = t->text;
    size_t gi = 0;
    for (const char *s = strstr(p, "${"); s && gi < t->n_ga; s = strstr(p, "${")) {
        const char *e = strchr(s, '}');
        if (!e) break;
        tbgw_buf_append(out, p, (size_t)(s - p));
        const kx_ga *g = kx_ga_find(k, t->ga[gi++]);
        tbgw_value v;
        char text[KNX_DPT_TEXT_CAP];
        if (g && g->has_value && knx_dpt_decode(t->dpt, &g->last, &v, text, sizeof text) == 0)
            kx_value_str(&v, out);
        else
            tbgw_buf_append(out, s, (size_t)(e + 1 - s)); /* placeholder stays */
        p = e + 1;
    }
    tbgw_buf_puts(out, p);
}

/* Adds the points of dv reading ga (all of them when ga < 0 and their address answered) to c. */
static size_t add_points(kx *k, kx_device *dv, tbgw_converted *c, int ga, int64_t ts) {
    size_t n = 0;
    for (size_t i = 0; i < dv->n_points; i++) {
        const kx_point *pt = &dv->points[i];
        if (ga >= 0 && pt->ga != (uint16_t)ga) continue;
        if (ga < 0) {
            size_t j = 0;
            while (j < dv->n_gas && dv->gas[j] != pt->ga) j++;
            if (j == dv->n_gas || dv->answered[j] != 1) continue;
        }
        const kx_ga *g = kx_ga_find(k, pt->ga);
        if (!g || !g->has_value) continue;
        tbgw_value v;
        char text[KNX_DPT_TEXT_CAP];
        if (knx_dpt_decode(pt->dpt, &g->last, &v, text, sizeof text) < 0) {
            kx_warn_undecodable(k, pt->ga, pt->dpt, &g->last, pt->key);
            continue;
        }
        const tbgw_report_strategy *rs = pt->has_rs ? &pt->rs : NULL;
        int rc = pt->is_attr ? tbgw_converted_add_attribute(c, pt->key, &v, rs)
                             : tbgw_converted_add_telemetry(c, ts, pt->key, &v, rs);
        if (rc == 0) n++;
    }
    return n;
}

static void emit_device(kx *k, kx_device *dv, int ga, int64_t ts) {
    const tbgw_host *h = k->host;
    tbgw_buf name, type;
    tbgw_buf_init(&name);
    tbgw_buf_init(&type);
    render(k, &dv->name, &name);
    render(k, &dv->type, &type);
    tbgw_converted *c = tbgw_converted_new(tbgw_buf_cstr(&name), tbgw_buf_cstr(&type));
    if (c) {
        c->rs = dv->has_rs ? &dv->rs : NULL;
        if (add_points(k, dv, c, ga, ts) > 0) {
            if (h->stat_add) h->stat_add(h, TBGW_STAT_CONV_PROCESSED, 1);
            h->emit(h, c);
        } else
            tbgw_converted_free(c);
    }
    tbgw_buf_free(&name);
    tbgw_buf_free(&type);
}

static void finish_poll(kx *k, kx_device *dv) {
    dv->polling = 0;
    emit_device(k, dv, -1, dv->poll_ts);
}

static int all_answered(const kx_device *dv) {
    for (size_t j = 0; j < dv->n_gas; j++)
        if (!dv->answered[j]) return 0;
    return 1;
}

static void start_poll(kx *k, size_t di, int64_t now) {
    kx_device *dv = &k->devices[di];
    dv->next_poll = now + dv->poll_ms;
    if (!dv->n_gas) return;
    memset(dv->answered, 0, dv->n_gas);
    dv->reads_unconfirmed = 0;
    dv->poll_deadline = 0;
    dv->poll_ts = tbgw_now_ms();
    dv->gen++;
    for (size_t j = 0; j < dv->n_gas; j++) {
        uint64_t tag = kx_tag(KX_TAG_POLL, di, (uint64_t)dv->gen << 16 | j);
        if (knx_client_send(k->client, dv->gas[j], KNX_APCI_READ, NULL, tag) == 0)
            dv->reads_unconfirmed++;
        else
            dv->answered[j] = 2;
    }
    dv->polling = 1;
    if (dv->reads_unconfirmed < dv->n_gas) {
        int64_t t = tbgw_mono_ms();
        if (t >= k->queue_warn_at) {
            TBGW_WARNF(k->host->log, "knx: devices[%zu]: %zu of %zu reads not queued (outgoing queue full)",
                       di, dv->n_gas - dv->reads_unconfirmed, dv->n_gas);
            k->queue_warn_at = t + 10000;
        }
    }
    if (!dv->reads_unconfirmed) dv->polling = 0;
}

void kx_poll_sent(kx *k, size_t di, uint32_t gen_gi, int ok) {
    if (di >= k->n_devices) return;
    kx_device *dv = &k->devices[di];
    size_t gi = gen_gi & 0xFFFF;
    if (!dv->polling || (gen_gi >> 16) != dv->gen || gi >= dv->n_gas) return;
    if (!ok && !dv->answered[gi]) dv->answered[gi] = 2;
    if (dv->reads_unconfirmed && --dv->reads_unconfirmed == 0)
        dv->poll_deadline = tbgw_mono_ms() + k->read_timeout_ms;
    if (all_answered(dv)) finish_poll(k, dv);
}

void kx_poll_due(kx *k, int64_t now) {
    for (size_t i = 0; i < k->n_devices; i++) {
        kx_device *dv = &k->devices[i];
        if (dv->polling) {
            if (dv->poll_deadline && now >= dv->poll_deadline) finish_poll(k, dv);
            continue;
        }
        if (k->connected && now >= dv->next_poll) start_poll(k, i, now);
    }
}

int64_t kx_poll_next_ms(const kx *k, int64_t now) {
    int64_t t = now + 1000;
    for (size_t i = 0; i < k->n_devices; i++) {
        const kx_device *dv = &k->devices[i];
        int64_t due = dv->polling ? (dv->poll_deadline ? dv->poll_deadline : t) : dv->next_poll;
        if (due < t) t = due;
    }
    return t > now ? t - now : 0;
}

void kx_polls_reset(kx *k) {
    for (size_t i = 0; i < k->n_devices; i++) {
        kx_device *dv = &k->devices[i];
        if (dv->polling) finish_poll(k, dv); /* what answered before the loss is still reported */
        dv->next_poll = 0;
    }
}

void kx_on_telegram(kx *k, const knx_ldata *ld) {
    const tbgw_host *h = k->host;
    if (ld->apci != KNX_APCI_WRITE && ld->apci != KNX_APCI_RESPONSE) return;
    if (h->stat_add) {
        h->stat_add(h, TBGW_STAT_MSGS_RECEIVED, 1);
        h->stat_add(h, TBGW_STAT_BYTES_RECEIVED, (uint64_t)(ld->value.small ? 1 : ld->value.len));
    }
    kx_rpc_telegram(k, ld);
    kx_ga *g = kx_ga_find(k, ld->dst);
    if (!g) return;
    g->last = ld->value;
    g->has_value = 1;
    int64_t ts = tbgw_now_ms();
    for (size_t i = 0; i < k->n_devices; i++) {
        kx_device *dv = &k->devices[i];
        size_t j = 0;
        while (j < dv->n_gas && dv->gas[j] != ld->dst) j++;
        if (j == dv->n_gas) continue;
        if (dv->polling && !dv->answered[j]) {
            dv->answered[j] = 1;
            if (all_answered(dv) && !dv->reads_unconfirmed) finish_poll(k, dv);
            continue;
        }
        emit_device(k, dv, ld->dst, ts);
    }
}
