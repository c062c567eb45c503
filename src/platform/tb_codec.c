#include "platform/tb_codec.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tbgw/err.h>

#include "util/buf.h"
#include "util/hmap.h"
#include "util/json.h"

typedef struct dev_acc {
    const char *name; /* platform name */
    size_t name_len;
    int own;
    size_t *tel, n_tel; /* record indexes with telemetry */
    size_t *attr, n_attr;
} dev_acc;

typedef struct packer {
    const tbgw_record_view *recs;
    size_t max;
    tb_msg_fn emit;
    void *ud;
    tbgw_buf msg;
    uint32_t dp;
    int open;     /* a gateway message object is open */
    int dev_open; /* a device array is open inside it */
} packer;

static int emit_msg(packer *p, const char *topic, int telemetry) {
    tb_msg m = {topic, p->msg.p, p->msg.len, p->dp, telemetry};
    int rc = p->msg.oom ? TBGW_ENOMEM : p->emit(p->ud, &m);
    tbgw_buf_reset(&p->msg);
    p->dp = 0;
    p->open = 0;
    p->dev_open = 0;
    return rc;
}

/* Merged attribute object text of a device ("{...}"), into out. */
static int merge_attrs(const packer *p, const dev_acc *d, tbgw_buf *out) {
    tbgw_buf_reset(out);
    tbgw_buf_putc(out, '{');
    for (size_t i = 0; i < d->n_attr; i++) {
        const tbgw_record_view *r = &p->recs[d->attr[i]];
        if (i) tbgw_buf_putc(out, ',');
        tbgw_buf_append(out, r->attr, r->attr_len);
    }
    tbgw_buf_putc(out, '}');
    if (d->n_attr > 1) { /* duplicate keys: the later record wins */
        json_t *j = tbgw_json_loadb(out->p, out->len, 0, NULL);
        if (j) {
            tbgw_buf_reset(out);
            tbgw_buf_json(out, j, 0);
            json_decref(j);
        }
    }
    return out->oom ? TBGW_ENOMEM : 0;
}

static int pack_own(packer *p, const dev_acc *d, tbgw_buf *tmp) {
    int rc = 0;
    if (d->n_attr) {
        rc = merge_attrs(p, d, tmp);
        if (!rc && tmp->len <= p->max) {
            tbgw_buf_append(&p->msg, tmp->p, tmp->len);
            rc = emit_msg(p, "v1/devices/me/attributes", 0);
        } else {
            for (size_t i = 0; i < d->n_attr && !rc; i++) {
                const tbgw_record_view *r = &p->recs[d->attr[i]];
                tbgw_buf_putc(&p->msg, '{');
                tbgw_buf_append(&p->msg, r->attr, r->attr_len);
                tbgw_buf_putc(&p->msg, '}');
                rc = emit_msg(p, "v1/devices/me/attributes", 0);
            }
        }
    }
    for (size_t i = 0; i < d->n_tel && !rc; i++) {
        const tbgw_record_view *r = &p->recs[d->tel[i]];
        if (p->msg.len && p->msg.len + r->tel_len + 2 > p->max) {
            tbgw_buf_putc(&p->msg, ']');
            rc = emit_msg(p, "v1/devices/me/telemetry", 1);
            if (rc) break;
        }
        tbgw_buf_putc(&p->msg, p->msg.len ? ',' : '[');
        tbgw_buf_append(&p->msg, r->tel, r->tel_len);
        p->dp += r->datapoints;
    }
    if (!rc && p->msg.len) {
        tbgw_buf_putc(&p->msg, ']');
        rc = emit_msg(p, "v1/devices/me/telemetry", 1);
    }
    return rc;
}

static void put_key(tbgw_buf *b, const dev_acc *d) {
    tbgw_buf_json_strn(b, d->name, d->name_len);
    tbgw_buf_putc(b, ':');
}

static int pack_gw_attrs(packer *p, dev_acc *devs, size_t nd, tbgw_buf *tmp, tbgw_buf *member) {
    int rc = 0;
    for (size_t k = 0; k < nd && !rc; k++) {
        dev_acc *d = &devs[k];
        if (d->own || !d->n_attr) continue;
        rc = merge_attrs(p, d, tmp);
        size_t parts = tmp->len + d->name_len + 8 <= p->max ? 1 : d->n_attr;
        for (size_t i = 0; i < parts && !rc; i++) {
            tbgw_buf_reset(member);
            put_key(member, d);
            if (parts == 1) {
                tbgw_buf_append(member, tmp->p, tmp->len);
            } else {
                const tbgw_record_view *r = &p->recs[d->attr[i]];
                tbgw_buf_putc(member, '{');
                tbgw_buf_append(member, r->attr, r->attr_len);
                tbgw_buf_putc(member, '}');
            }
            if (p->open && p->msg.len + member->len + 2 > p->max) {
                tbgw_buf_putc(&p->msg, '}');
                rc = emit_msg(p, "v1/gateway/attributes", 0);
                if (rc) break;
            }
            /* attributes of one device split over parts go in separate messages to keep "later wins" */
            if (p->open && parts > 1 && i > 0) {
                tbgw_buf_putc(&p->msg, '}');
                rc = emit_msg(p, "v1/gateway/attributes", 0);
                if (rc) break;
            }
            tbgw_buf_putc(&p->msg, p->open ? ',' : '{');
            p->open = 1;
            tbgw_buf_append(&p->msg, member->p, member->len);
        }
    }
    if (!rc && p->open) {
        tbgw_buf_putc(&p->msg, '}');
        rc = emit_msg(p, "v1/gateway/attributes", 0);
    }
    return rc;
}

static int close_tel(packer *p) {
    tbgw_buf_puts(&p->msg, "]}");
    return emit_msg(p, "v1/gateway/telemetry", 1);
}

static int pack_gw_tel(packer *p, dev_acc *devs, size_t nd) {
    int rc = 0;
    for (size_t k = 0; k < nd && !rc; k++) {
        dev_acc *d = &devs[k];
        if (d->own || !d->n_tel) continue;
        size_t key_len = d->name_len + 4;
        for (size_t i = 0; i < d->n_tel && !rc; i++) {
            const tbgw_record_view *r = &p->recs[d->tel[i]];
            size_t need = r->tel_len + 3 + (p->dev_open ? 0 : key_len + 2);
            if (p->open && p->msg.len + need > p->max) {
                rc = close_tel(p);
                if (rc) break;
            }
            if (!p->open) {
                tbgw_buf_putc(&p->msg, '{');
                p->open = 1;
            }
            if (!p->dev_open) {
                if (p->msg.len > 1) tbgw_buf_puts(&p->msg, "],");
                put_key(&p->msg, d);
                tbgw_buf_putc(&p->msg, '[');
                p->dev_open = 1;
            } else {
                tbgw_buf_putc(&p->msg, ',');
            }
            tbgw_buf_append(&p->msg, r->tel, r->tel_len);
            p->dp += r->datapoints;
        }
        p->dev_open = 0;
    }
    if (!rc && p->open) rc = close_tel(p);
    return rc;
}

int tb_codec_pack(const tbgw_record_view *recs, size_t n, size_t max_payload, tb_rename_fn rename,
                  void *rename_ud, tb_msg_fn emit, void *emit_ud) {
    packer p = {.recs = recs, .max = max_payload, .emit = emit, .ud = emit_ud};
    tbgw_buf_init(&p.msg);
    tbgw_hmap idx;
    tbgw_hmap_init(&idx);
    dev_acc *devs = calloc(n ? n : 1, sizeof *devs);
    size_t *slots = calloc(n ? 2 * n : 1, sizeof *slots);
    size_t nd = 0, used = 0;
    int rc = (!devs || !slots) ? TBGW_ENOMEM : 0;
    /* first pass: count per device to lay out index lists */
    size_t *cnt_t = calloc(n ? n : 1, sizeof *cnt_t), *cnt_a = calloc(n ? n : 1, sizeof *cnt_a);
    size_t *dev_of = calloc(n ? n : 1, sizeof *dev_of);
    if (!cnt_t || !cnt_a || !dev_of) rc = TBGW_ENOMEM;
    char key[70000];
    for (size_t i = 0; i < n && !rc; i++) {
        const tbgw_record_view *r = &recs[i];
        key[0] = (char)(r->flags & 1);
        memcpy(key + 1, r->name, r->name_len);
        void *v = tbgw_hmap_getn(&idx, key, (size_t)r->name_len + 1);
        size_t d;
        if (v) {
            d = (size_t)(uintptr_t)v - 1;
        } else {
            d = nd++;
            devs[d].own = r->flags & 1;
            const char *nn = rename ? rename(rename_ud, r->name, r->name_len) : NULL;
            devs[d].name = nn ? nn : r->name;
            devs[d].name_len = nn ? strlen(nn) : r->name_len;
            rc = tbgw_hmap_putn(&idx, key, (size_t)r->name_len + 1, (void *)(uintptr_t)(d + 1), NULL);
        }
        dev_of[i] = d;
        if (r->tel_len) cnt_t[d]++;
        if (r->attr_len) cnt_a[d]++;
    }
    for (size_t d = 0; d < nd && !rc; d++) {
        devs[d].tel = slots + used;
        used += cnt_t[d];
        devs[d].attr = slots + used;
        used += cnt_a[d];
    }
    for (size_t i = 0; i < n && !rc; i++) {
        dev_acc *d = &devs[dev_of[i]];
        if (recs[i].tel_len) d->tel[d->n_tel++] = i;
        if (recs[i].attr_len) d->attr[d->n_attr++] = i;
    }
    tbgw_buf tmp, member;
    tbgw_buf_init(&tmp);
    tbgw_buf_init(&member);
    for (size_t d = 0; d < nd && !rc; d++)
        if (devs[d].own) rc = pack_own(&p, &devs[d], &tmp);
    if (!rc) rc = pack_gw_attrs(&p, devs, nd, &tmp, &member);
    if (!rc) rc = pack_gw_tel(&p, devs, nd);
    tbgw_buf_free(&tmp);
    tbgw_buf_free(&member);
    tbgw_buf_free(&p.msg);
    tbgw_hmap_free(&idx, NULL);
    free(cnt_t);
    free(cnt_a);
    free(dev_of);
    free(slots);
    free(devs);
    return rc;
}

/* ---- downlink -------------------------------------------------------------------------------- */

static int64_t topic_tail_id(const char *topic, const char *prefix) {
    const char *s = topic + strlen(prefix);
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*s == 0 || *end || errno) return -1;
    return v;
}

static int starts(const char *s, const char *prefix) {
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return TBGW_EPROTO;
}

static int int_of(const json_t *j, int64_t *out) {
    if (json_is_integer(j)) {
        *out = json_integer_value(j);
        return 0;
    }
    if (json_is_string(j)) { /* some platforms send ids as strings */
        char *end;
        long long v = strtoll(json_string_value(j), &end, 10);
        if (*json_string_value(j) && !*end) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

int tb_codec_parse_down(const char *topic, const void *payload, size_t len, tb_down *d, char *err,
                        size_t errlen) {
    memset(d, 0, sizeof *d);
    if (strcmp(topic, TB_TOPIC_GW_ATTRIBUTES) == 0)
        d->kind = TB_DOWN_GW_ATTR_UPDATE;
    else if (strcmp(topic, TB_TOPIC_GW_ATTR_RESPONSE) == 0)
        d->kind = TB_DOWN_GW_ATTR_RESPONSE;
    else if (strcmp(topic, TB_TOPIC_GW_RPC) == 0)
        d->kind = TB_DOWN_GW_RPC;
    else if (strcmp(topic, TB_TOPIC_ME_ATTRIBUTES) == 0)
        d->kind = TB_DOWN_ME_ATTR_UPDATE;
    else if (starts(topic, TB_TOPIC_ME_ATTR_RESPONSE))
        d->kind = TB_DOWN_ME_ATTR_RESPONSE, d->topic_id = topic_tail_id(topic, TB_TOPIC_ME_ATTR_RESPONSE);
    else if (starts(topic, TB_TOPIC_ME_RPC_REQUEST))
        d->kind = TB_DOWN_ME_RPC_REQUEST, d->topic_id = topic_tail_id(topic, TB_TOPIC_ME_RPC_REQUEST);
    else if (starts(topic, TB_TOPIC_ME_RPC_RESPONSE))
        d->kind = TB_DOWN_ME_RPC_RESPONSE, d->topic_id = topic_tail_id(topic, TB_TOPIC_ME_RPC_RESPONSE);
    else
        return fail(err, errlen, "unexpected topic %s", topic);
    if (d->topic_id < 0) return fail(err, errlen, "topic %s: request id is not a number", topic);
    json_error_t je;
    d->root = tbgw_json_loadb(payload, len, JSON_DECODE_ANY, &je);
    if (!d->root) {
        snprintf(err, errlen, "%s: invalid JSON at %d:%d: %s", topic, je.line, je.column, je.text);
        return TBGW_EPROTO;
    }
    json_t *r = d->root;
    switch (d->kind) {
    case TB_DOWN_GW_ATTR_UPDATE:
        d->device = json_string_value(json_object_get(r, "device"));
        d->data = json_object_get(r, "data");
        if (!d->device || !json_is_object(d->data))
            return fail(err, errlen, "%s: expected {\"device\":\"name\",\"data\":{...}}", topic);
        break;
    case TB_DOWN_GW_ATTR_RESPONSE:
        d->device = json_string_value(json_object_get(r, "device"));
        if (int_of(json_object_get(r, "id"), &d->id))
            return fail(err, errlen, "%s: missing numeric \"id\"", topic);
        d->data = json_object_get(r, "values");
        if (!d->data) d->data = json_object_get(r, "value");
        break;
    case TB_DOWN_GW_RPC: {
        d->device = json_string_value(json_object_get(r, "device"));
        d->data = json_object_get(r, "data");
        if (!d->device || !json_is_object(d->data))
            return fail(err, errlen,
                        "%s: expected {\"device\":\"name\",\"data\":{\"id\",\"method\",\"params\"}}", topic);
        if (int_of(json_object_get(d->data, "id"), &d->id))
            return fail(err, errlen, "%s: data.id must be a number", topic);
        d->method = json_string_value(json_object_get(d->data, "method"));
        if (!d->method) return fail(err, errlen, "%s: data.method must be a string", topic);
        d->params = json_object_get(d->data, "params");
        break;
    }
    case TB_DOWN_ME_ATTR_UPDATE:
    case TB_DOWN_ME_ATTR_RESPONSE:
        if (!json_is_object(r)) return fail(err, errlen, "%s: expected a JSON object", topic);
        d->data = r;
        break;
    case TB_DOWN_ME_RPC_REQUEST:
        d->id = d->topic_id;
        d->method = json_string_value(json_object_get(r, "method"));
        if (!d->method) return fail(err, errlen, "%s: \"method\" must be a string", topic);
        d->params = json_object_get(r, "params");
        break;
    case TB_DOWN_ME_RPC_RESPONSE:
        d->data = r;
        break;
    default:
        break;
    }
    return 0;
}

void tb_down_free(tb_down *d) {
    json_decref(d->root);
    memset(d, 0, sizeof *d);
}

char *tb_codec_rpc_reply(const char *device, int64_t id, const json_t *content, int success, char *topic_buf,
                         size_t topic_len) {
    json_t *data = NULL;
    if (success >= 0) {
        json_t *obj = NULL;
        if (json_is_object(content) &&
            (json_object_get(content, "success") || json_object_get(content, "error") ||
             json_object_get(content, "response") || json_object_get(content, "result"))) {
            obj = json_deep_copy(content);
            json_object_set_new(obj, "success", json_boolean(success));
            json_t *res = json_object_get(obj, "result");
            if (res) {
                json_t *keep = json_incref(res);
                json_decref(obj);
                obj = keep;
            }
        } else {
            obj = json_pack("{s:b}", "success", success);
        }
        char *s = obj ? tbgw_json_dumps(obj, 0) : NULL;
        json_decref(obj);
        data = json_string(s ? s : "");
        free(s);
    } else {
        data = content ? json_incref((json_t *)content) : json_null();
    }
    char *out;
    if (device) {
        snprintf(topic_buf, topic_len, "%s", TB_TOPIC_GW_RPC);
        json_t *msg = json_pack("{s:s,s:I,s:o}", "device", device, "id", (json_int_t)id, "data", data);
        out = msg ? tbgw_json_dumps(msg, 0) : NULL;
        json_decref(msg);
    } else {
        snprintf(topic_buf, topic_len, "%s%lld", TB_TOPIC_ME_RPC_RESPONSE, (long long)id);
        out = data ? tbgw_json_dumps(data, 0) : NULL;
        json_decref(data);
    }
    return out;
}
