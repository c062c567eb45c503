/* BACnet/IP connector (docs/connectors/bacnet.md): our own device on a UDP port, Who-Is discovery of
 * the configured devices, I-Am matching, objectList discovery, polling with ReadPropertyMultiple
 * (ReadProperty for devices that reject it), conversion as the reference's uplink converter. One
 * thread; every device is asynchronous, so a silent device never delays the others. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/bacnet/bacnet.h"
#include "util/time.h"

typedef enum { RQ_NAME, RQ_LIST_WHOLE, RQ_LIST_INDEX, RQ_RPM, RQ_RP } rq_kind;

typedef struct rq_spec {
    uint16_t type;
    uint32_t inst;
    uint32_t props[2 * BNC_MAX_PROPS];
    size_t n_props;
} rq_spec;

typedef struct rq {
    bnc_device *d;
    rq_kind kind;
    uint32_t index;
    rq_spec *specs; /* RQ_RPM: the objects of the batch; RQ_RP: one spec with one property */
    size_t n_specs;
} rq;

static void dev_setup(bnc_device *d);
static void who_is(bnc_conn *c, const bn_addr *dst, const bnc_devcfg *dc, uint16_t bport, int global);
static void start_cycle(bnc_device *d);

/* ---- requests ---- */

static void on_done(void *ud, const bn_result *r);

static int send_rq(bnc_device *d, rq *q, uint8_t service, const uint8_t *req, size_t n) {
    bnc_conn *c = d->conn;
    unsigned max = d->iam.max_apdu ? d->iam.max_apdu : 480;
    if (bn_client_request(c->cl, &d->addr, service, req, n, max, bnc_takes_segments(d), on_done, q) != 0) {
        TBGW_ERRORF(c->h->log, "%s: request does not fit the device's APDU size or too many pending",
                    d->addr_text);
        free(q->specs);
        free(q);
        return -1;
    }
    d->inflight++;
    return 0;
}

static int read_property(bnc_device *d, rq_kind kind, uint16_t type, uint32_t inst, uint32_t prop,
                         uint32_t index) {
    rq *q = calloc(1, sizeof *q);
    if (!q) return -1;
    q->d = d;
    q->kind = kind;
    q->index = index;
    if (kind == RQ_RP) {
        q->specs = calloc(1, sizeof *q->specs);
        if (!q->specs) return free(q), -1;
        q->specs->type = type;
        q->specs->inst = inst;
        q->specs->props[0] = prop;
        q->specs->n_props = 1;
        q->n_specs = 1;
    }
    uint8_t buf[64];
    bn_w w;
    bn_w_init(&w, buf, sizeof buf);
    bn_rp_request(&w, type, inst, prop, index);
    return send_rq(d, q, BN_SVC_READ_PROPERTY, buf, w.len);
}

/* ---- results of a poll cycle ---- */

static void store_result(bnc_device *d, uint16_t type, uint32_t inst, uint32_t prop, const uint8_t *p,
                         size_t n) {
    if (d->n_res == d->cap_res) {
        size_t cap = d->cap_res ? d->cap_res * 2 : 16;
        bnc_result *nr = realloc(d->res, cap * sizeof *nr);
        if (!nr) return;
        d->res = nr;
        d->cap_res = cap;
    }
    bnc_result *r = &d->res[d->n_res];
    r->data = malloc(n ? n : 1);
    if (!r->data) return;
    memcpy(r->data, p, n);
    r->len = n;
    r->type = type;
    r->inst = inst;
    r->prop = prop;
    d->n_res++;
}

static void clear_results(bnc_device *d) {
    for (size_t i = 0; i < d->n_res; i++) free(d->res[i].data);
    d->n_res = 0;
}

static const bnc_result *find_result(const bnc_result *res, size_t n, uint16_t type, uint32_t inst,
                                     uint32_t prop) {
    for (size_t i = 0; i < n; i++)
        if (res[i].type == type && res[i].inst == inst && res[i].prop == prop) return &res[i];
    return NULL;
}

typedef struct key_ctx {
    const bnc_result *res;
    size_t n;
    const bnc_point *pt;
    int missing;
} key_ctx;

static int resolve_tag(void *ud, const char *placeholder, const tbgw_path *path, tbgw_buf *out) {
    (void)path;
    key_ctx *k = ud;
    int p = bnc_property_parse(k->pt->item->proprietary, placeholder);
    const bnc_result *r = p < 0 ? NULL : find_result(k->res, k->n, k->pt->type, k->pt->inst, (uint32_t)p);
    if (!r || bnc_value_text(r->type, r->prop, r->data, r->len, out) != 0) {
        k->missing = 1;
        return TBGW_ENOENT;
    }
    return 0;
}

static int is_tag(const bnc_item *it, uint32_t p) {
    for (size_t i = 0; i < it->n_tags; i++)
        if (it->tags[i] == p) return 1;
    return 0;
}

static void add_dp(tbgw_converted *rec, const bnc_item *it, int64_t ts, const char *key, const bnc_result *r,
                   tbgw_buf *scratch) {
    tbgw_value v;
    if (bnc_value_convert(r->type, r->prop, r->data, r->len, &v, scratch) != 0) return;
    if (it->attr)
        tbgw_converted_add_attribute(rec, key, &v, NULL);
    else
        tbgw_converted_add_telemetry(rec, ts, key, &v, NULL);
}

/* One point into datapoints: ${prop} tags name the key; one property gives `key`, several
 * `key.<propName>`. */
void bnc_convert_point(const bnc_result *res, size_t n_res, const bnc_point *pt, tbgw_converted *rec,
                       int64_t ts, tbgw_buf *scratch) {
    const bnc_item *it = pt->item;
    key_ctx kc = {res, n_res, pt, 0};
    tbgw_buf key;
    tbgw_buf_init(&key);
    tbgw_expr_render_cb(it->key_expr, resolve_tag, &kc, TBGW_MISSING_KEEP, &key);
    const bnc_result *emit[64];
    size_t n = 0;
    int all = 0;
    for (size_t i = 0; i < it->n_props; i++) all |= it->props[i] == 8;
    for (size_t i = 0; i < n_res && n < 64; i++) {
        const bnc_result *r = &res[i];
        if (r->type != pt->type || r->inst != pt->inst) continue;
        int wanted = all && !is_tag(it, r->prop);
        for (size_t k = 0; !wanted && k < it->n_props; k++) wanted = it->props[k] == r->prop;
        if (!wanted) continue;
        int dup = 0;
        for (size_t k = 0; k < n; k++) dup |= emit[k]->prop == r->prop;
        if (!dup) emit[n++] = r;
    }
    /* properties that only name the key are not values unless nothing else remains */
    size_t kept = 0, values = 0;
    for (size_t i = 0; i < n; i++)
        if (!is_tag(it, emit[i]->prop)) emit[kept++] = emit[i];
    if (kept) n = kept;
    for (size_t i = 0; i < it->n_props; i++) values += !is_tag(it, it->props[i]);
    int suffix = all || values > 1;
    for (size_t i = 0; i < n; i++) {
        if (!suffix) {
            add_dp(rec, it, ts, tbgw_buf_cstr(&key), emit[i], scratch);
            continue;
        }
        char full[512], num[16];
        const char *pn = bnc_property_name(it->proprietary, emit[i]->prop);
        if (!pn) snprintf(num, sizeof num, "%u", emit[i]->prop), pn = num;
        snprintf(full, sizeof full, "%s.%s", tbgw_buf_cstr(&key), pn);
        add_dp(rec, it, ts, full, emit[i], scratch);
    }
    tbgw_buf_free(&key);
}

static void finish_cycle(bnc_device *d) {
    bnc_conn *c = d->conn;
    int64_t now = tbgw_mono_ms();
    if (d->cycle_ok == 0 && d->cycle_fail > 0) {
        int64_t wait = tbgw_backoff_next(&d->backoff);
        if (d->state != BNC_INACTIVE)
            TBGW_WARNF(c->h->log, "device %s (%s) stopped answering; marked inactive, retrying in %lld ms",
                       d->name, d->addr_text, (long long)wait);
        else
            TBGW_DEBUGF(c->h->log, "device %s (%s) still not answering; next retry in %lld ms", d->name,
                        d->addr_text, (long long)wait);
        d->state = BNC_INACTIVE;
        d->retry_at = now + wait;
        clear_results(d);
        return;
    }
    if (d->state == BNC_INACTIVE) {
        TBGW_INFOF(c->h->log, "device %s (%s) answers again", d->name, d->addr_text);
        d->cov_renew_at = 0; /* it may have lost its subscriptions */
    }
    d->state = BNC_ACTIVE;
    tbgw_backoff_reset(&d->backoff);
    tbgw_converted *rec = tbgw_converted_new(d->name, d->type);
    tbgw_buf scratch;
    tbgw_buf_init(&scratch);
    int64_t ts = tbgw_now_ms();
    for (size_t i = 0; rec && i < d->n_points; i++)
        bnc_convert_point(d->res, d->n_res, &d->points[i], rec, ts, &scratch);
    tbgw_buf_free(&scratch);
    if (rec && tbgw_converted_count(rec) > 0) {
        c->h->stat_add(c->h, TBGW_STAT_CONV_PROCESSED, 1);
        c->h->emit(c->h, rec);
    } else {
        tbgw_converted_free(rec);
    }
    /* adaptive period: a cycle longer than the period stretches it; fast cycles shrink it back */
    int64_t took = now - d->cycle_start;
    d->period = took > d->cfg->poll_ms ? took : d->cfg->poll_ms;
    d->next_poll = d->cycle_start + d->period;
}

/* ---- answers ---- */

typedef struct rpm_ctx {
    bnc_device *d;
    int n;
} rpm_ctx;

static void on_rpm_result(void *ud, const bn_rpm_result *r) {
    rpm_ctx *x = ud;
    if (r->is_error) {
        TBGW_DEBUGF(x->d->conn->h->log, "%s: %s,%u property %u: %s/%s", x->d->name,
                    bn_object_type_name(r->type) ? bn_object_type_name(r->type) : "?", r->inst, r->pr.prop,
                    bn_error_class_name(r->eclass), bn_error_code_name(r->ecode));
        return;
    }
    store_result(x->d, r->type, r->inst, r->pr.prop, r->value, r->value_len);
    x->n++;
}

static void fallback_rp(bnc_device *d, const rq *q) {
    for (size_t i = 0; i < q->n_specs; i++)
        for (size_t k = 0; k < q->specs[i].n_props; k++)
            if (q->specs[i].props[k] != 8)
                read_property(d, RQ_RP, q->specs[i].type, q->specs[i].inst, q->specs[i].props[k],
                              BN_ARRAY_ALL);
}

static void malformed(bnc_device *d, const char *what) {
    d->conn->malformed++;
    d->conn->h->stat_add(d->conn->h, TBGW_STAT_CONNECTOR_ERRORS, 1);
    TBGW_WARNF(d->conn->h->log, "malformed %s from %s", what, d->addr_text);
}

static void on_poll_answer(bnc_device *d, rq *q, const bn_result *r) {
    char why[128];
    if (r->status == BN_OK) {
        if (q->kind == RQ_RPM) {
            rpm_ctx x = {d, 0};
            if (bn_rpm_ack_walk(r->data, r->len, on_rpm_result, &x) != 0)
                malformed(d, "ReadPropertyMultiple-ACK");
            d->cycle_ok++;
        } else {
            bn_rp_ack a;
            if (bn_rp_ack_decode(r->data, r->len, &a) != 0) {
                malformed(d, "ReadProperty-ACK");
            } else {
                store_result(d, a.type, a.inst, a.pr.prop, a.value, a.value_len);
            }
            d->cycle_ok++;
        }
        return;
    }
    if (r->status == BN_E_TIMEOUT) {
        d->cycle_fail++;
        return;
    }
    if (q->kind == RQ_RPM && (r->status == BN_E_REJECT || r->status == BN_E_ABORT ||
                              (r->status == BN_E_ERROR && r->eclass == 5))) {
        bn_result_text(r, why, sizeof why);
        TBGW_INFOF(d->conn->h->log,
                   "device %s does not take ReadPropertyMultiple (%s): polling with ReadProperty", d->name,
                   why);
        d->rpm = 0;
        d->cycle_ok++;
        fallback_rp(d, q);
        return;
    }
    d->cycle_ok++; /* the device answered */
    bn_result_text(r, why, sizeof why);
    if (q->kind == RQ_RP)
        TBGW_DEBUGF(d->conn->h->log, "%s: reading %u,%u property %u: %s", d->name, q->specs->type,
                    q->specs->inst, q->specs->props[0], why);
}

static void objects_add(bnc_device *d, const uint8_t *p, size_t n) {
    size_t off = 0;
    while (off < n) {
        bn_value v;
        if (bn_dec_item(p, n, &off, &v) != 0) {
            malformed(d, "objectList");
            return;
        }
        if (v.type != BN_OID) continue;
        uint32_t *no = realloc(d->objects, (d->n_objects + 1) * sizeof *no);
        if (!no) return;
        d->objects = no;
        d->objects[d->n_objects++] = ((uint32_t)v.v.oid.type << 22) | v.v.oid.inst;
    }
}

static void list_next(bnc_device *d) {
    while (d->list_next <= d->list_len && d->inflight < 8) {
        read_property(d, RQ_LIST_INDEX, 8, d->iam.inst, 76, (uint32_t)d->list_next);
        d->list_next++;
    }
}

static void on_list_answer(bnc_device *d, rq *q, const bn_result *r) {
    bn_rp_ack a;
    int ok = r->status == BN_OK && bn_rp_ack_decode(r->data, r->len, &a) == 0;
    if (r->status == BN_OK && !ok) malformed(d, "objectList answer");
    if (q->kind == RQ_LIST_WHOLE) {
        if (ok) {
            objects_add(d, a.value, a.value_len);
        } else {
            /* too long for an unsegmented answer, or not allowed whole: index by index */
            read_property(d, RQ_LIST_INDEX, 8, d->iam.inst, 76, 0);
        }
        return;
    }
    if (q->index == 0) {
        size_t off = 0;
        bn_value v;
        if (!ok || bn_dec_item(a.value, a.value_len, &off, &v) != 0 || v.type != BN_UNSIGNED) {
            char why[96];
            bn_result_text(r, why, sizeof why);
            TBGW_ERRORF(d->conn->h->log, "device %s: cannot read the objectList length: %s", d->name, why);
            return;
        }
        d->list_len = v.v.u > 100000 ? 100000 : (size_t)v.v.u;
        d->list_next = 1;
        list_next(d);
        return;
    }
    if (ok) {
        objects_add(d, a.value, a.value_len);
    } else {
        uint32_t *nf = realloc(d->failed_idx, (d->n_failed + 1) * sizeof *nf);
        if (nf) {
            d->failed_idx = nf;
            d->failed_idx[d->n_failed++] = q->index;
        }
    }
    list_next(d);
}

/* The objectName (device object, property 77) of a ReadProperty answer as text (malloc'ed), or NULL. */
static char *object_name_of(const bn_result *r) {
    bn_rp_ack a;
    tbgw_buf t;
    tbgw_buf_init(&t);
    char *name = NULL;
    if (bn_rp_ack_decode(r->data, r->len, &a) == 0 && bnc_value_text(8, 77, a.value, a.value_len, &t) == 0)
        name = strdup(tbgw_buf_cstr(&t));
    tbgw_buf_free(&t);
    return name;
}

static void on_done(void *ud, const bn_result *r) {
    rq *q = ud;
    bnc_device *d = q->d;
    d->inflight--;
    if (r->status != BN_E_CANCELLED) {
        switch (q->kind) {
        case RQ_NAME:
            if (r->status == BN_OK) d->object_name = object_name_of(r);
            if (!d->object_name) {
                /* as the reference: the instance number stands in for the name */
                char num[16];
                snprintf(num, sizeof num, "%u", d->iam.inst);
                d->object_name = strdup(num);
            }
            dev_setup(d);
            break;
        case RQ_LIST_WHOLE:
        case RQ_LIST_INDEX:
            on_list_answer(d, q, r);
            break;
        case RQ_RPM:
        case RQ_RP:
            on_poll_answer(d, q, r);
            break;
        }
        if (d->inflight == 0) {
            if (d->state == BNC_LISTING) {
                d->state = BNC_ACTIVE;
                dev_setup(d);
            } else if ((q->kind == RQ_RPM || q->kind == RQ_RP) &&
                       (d->state == BNC_ACTIVE || d->state == BNC_INACTIVE)) {
                finish_cycle(d);
            }
        }
    }
    free(q->specs);
    free(q);
}

/* ---- points and the poll cycle ---- */

static int item_needs_list(const bnc_item *it) {
    return it->inst == BNC_INST_ANY;
}

static void add_point(bnc_device *d, const bnc_item *it, uint16_t type, uint32_t inst) {
    bnc_point *np = realloc(d->points, (d->n_points + 1) * sizeof *np);
    if (!np) return;
    d->points = np;
    d->points[d->n_points++] = (bnc_point){it, type, inst};
}

static void build_points(bnc_device *d) {
    free(d->points);
    d->points = NULL;
    d->n_points = 0;
    for (size_t i = 0; i < d->cfg->n_items; i++) {
        const bnc_item *it = &d->cfg->items[i];
        if (it->inst == BNC_INST_SELF) {
            add_point(d, it, 8, d->iam.inst);
        } else if (it->inst >= 0) {
            add_point(d, it, (uint16_t)it->types[0], (uint32_t)it->inst);
        } else {
            for (size_t k = 0; k < d->n_objects; k++) {
                uint16_t t = (uint16_t)(d->objects[k] >> 22);
                uint32_t inst = d->objects[k] & BN_MAX_INST;
                int want = 0;
                for (size_t j = 0; j < it->n_types; j++)
                    want |= it->types[j] == -1 ? t != 8 : it->types[j] == t;
                if (want) add_point(d, it, t, inst);
            }
        }
    }
}

static void dev_setup(bnc_device *d) {
    bnc_conn *c = d->conn;
    if (!d->name) {
        json_t *body = json_pack("{s:s,s:s,s:I,s:I}", "objectName", d->object_name ? d->object_name : "",
                                 "address", d->addr_text, "objectId", (json_int_t)d->iam.inst, "vendorId",
                                 (json_int_t)d->iam.vendor);
        const bnc_router *r = d->router;
        if (body && r && r->state == BNC_ROUTER_DONE) {
            json_object_set_new(body, "routerName", json_string(r->name ? r->name : ""));
            json_object_set_new(body, "routerId", json_integer(r->inst));
            json_object_set_new(body, "routerVendorId", json_integer(r->vendor));
            json_object_set_new(body, "routerAddress", json_string(r->addr_text));
        }
        tbgw_buf b;
        tbgw_buf_init(&b);
        if (d->cfg->name_const)
            tbgw_buf_puts(&b, tbgw_expr_text(d->cfg->name_expr));
        else
            tbgw_expr_render(d->cfg->name_expr, body, TBGW_FMT_PY, TBGW_MISSING_KEEP, &b);
        d->name = strdup(tbgw_buf_cstr(&b));
        tbgw_buf_reset(&b);
        if (d->cfg->profile_const)
            tbgw_buf_puts(&b, tbgw_expr_text(d->cfg->profile_expr));
        else
            tbgw_expr_render(d->cfg->profile_expr, body, TBGW_FMT_PY, TBGW_MISSING_KEEP, &b);
        d->type = strdup(b.len ? tbgw_buf_cstr(&b) : "default");
        tbgw_buf_free(&b);
        json_decref(body);
        TBGW_INFOF(c->h->log, "device %s (instance %u at %s, vendor %u) found for devices[%zu]", d->name,
                   d->iam.inst, d->addr_text, d->iam.vendor, d->cfg->index);
        c->h->device_connected(c->h, d->name, d->type);
    }
    int need_list = 0;
    for (size_t i = 0; i < d->cfg->n_items; i++) need_list |= item_needs_list(&d->cfg->items[i]);
    if (need_list && d->state != BNC_ACTIVE && d->n_objects == 0 && d->list_len == 0) {
        d->state = BNC_LISTING;
        int whole = d->iam.segmentation == 0 || d->iam.segmentation == 1;
        read_property(d, whole ? RQ_LIST_WHOLE : RQ_LIST_INDEX, 8, d->iam.inst, 76, whole ? BN_ARRAY_ALL : 0);
        return;
    }
    build_points(d);
    d->state = BNC_ACTIVE;
    d->next_poll = tbgw_mono_ms();
    d->next_rescan = d->next_poll + c->cfg.app.rescan_ms;
}

/* Groups the points by object: the properties to read (values and key tags). */
static size_t collect_specs(const bnc_device *d, rq_spec *specs, size_t cap) {
    size_t n = 0;
    for (size_t i = 0; i < d->n_points; i++) {
        const bnc_point *p = &d->points[i];
        rq_spec *s = NULL;
        for (size_t k = 0; k < n && !s; k++)
            if (specs[k].type == p->type && specs[k].inst == p->inst) s = &specs[k];
        if (!s) {
            if (n == cap) break;
            s = &specs[n++];
            memset(s, 0, sizeof *s);
            s->type = p->type;
            s->inst = p->inst;
        }
        const bnc_item *it = p->item;
        for (size_t k = 0; k < it->n_props + it->n_tags; k++) {
            uint32_t pr = k < it->n_props ? it->props[k] : it->tags[k - it->n_props];
            int dup = 0;
            for (size_t j = 0; j < s->n_props; j++) dup |= s->props[j] == pr;
            if (!dup && s->n_props < 2 * BNC_MAX_PROPS) s->props[s->n_props++] = pr;
        }
    }
    return n;
}

static void send_rpm_batch(bnc_device *d, const rq_spec *specs, size_t n) {
    rq *q = calloc(1, sizeof *q);
    if (!q) return;
    q->d = d;
    q->kind = RQ_RPM;
    q->specs = malloc(n * sizeof *q->specs);
    if (!q->specs) return free(q);
    memcpy(q->specs, specs, n * sizeof *specs);
    q->n_specs = n;
    uint8_t buf[BN_MAX_APDU];
    bn_w w;
    bn_w_init(&w, buf, sizeof buf);
    for (size_t i = 0; i < n; i++) {
        bn_propref pr[2 * BNC_MAX_PROPS];
        for (size_t k = 0; k < specs[i].n_props; k++) pr[k] = (bn_propref){specs[i].props[k], BN_ARRAY_ALL};
        bn_rpm_object(&w, specs[i].type, specs[i].inst, pr, specs[i].n_props);
    }
    send_rq(d, q, BN_SVC_READ_PROP_MULTIPLE, buf, w.len);
}

static void start_cycle(bnc_device *d) {
    size_t cap = d->n_points ? d->n_points : 1;
    rq_spec *specs = malloc(cap * sizeof *specs);
    if (!specs) return;
    size_t n = collect_specs(d, specs, cap);
    d->cycle_start = tbgw_mono_ms();
    d->cycle_ok = d->cycle_fail = 0;
    clear_results(d);
    if (n == 0) {
        free(specs);
        d->next_poll = d->cycle_start + d->cfg->poll_ms;
        return;
    }
    if (d->rpm) {
        /* as the reference: floor(floor(maxAPDU / 26) / maxPropsPerObject) objects per request,
         * `all` counting as 6 properties */
        unsigned apdu = d->iam.max_apdu ? d->iam.max_apdu : 480;
        if (apdu > BN_MAX_APDU) apdu = BN_MAX_APDU;
        size_t maxp = 1;
        for (size_t i = 0; i < n; i++) {
            size_t np = 0;
            for (size_t k = 0; k < specs[i].n_props; k++) np += specs[i].props[k] == 8 ? 6 : 1;
            if (np > maxp) maxp = np;
        }
        size_t per = (apdu / 26) / maxp;
        if (per < 1) per = 1;
        for (size_t i = 0; i < n; i += per) send_rpm_batch(d, specs + i, n - i < per ? n - i : per);
    } else {
        for (size_t i = 0; i < n; i++)
            for (size_t k = 0; k < specs[i].n_props; k++)
                if (specs[i].props[k] != 8)
                    read_property(d, RQ_RP, specs[i].type, specs[i].inst, specs[i].props[k], BN_ARRAY_ALL);
    }
    free(specs);
    if (d->inflight == 0) d->next_poll = d->cycle_start + d->cfg->poll_ms;
}

static void rescan(bnc_device *d) {
    bnc_conn *c = d->conn;
    d->next_rescan = tbgw_mono_ms() + c->cfg.app.rescan_ms;
    if (!d->n_failed || d->inflight) return;
    uint32_t *idx = d->failed_idx;
    size_t n = d->n_failed;
    d->failed_idx = NULL;
    d->n_failed = 0;
    TBGW_INFOF(c->h->log, "device %s: reading %zu objectList entries again", d->name, n);
    d->state = BNC_LISTING;
    for (size_t i = 0; i < n; i++) read_property(d, RQ_LIST_INDEX, 8, d->iam.inst, 76, idx[i]);
    d->list_next = d->list_len + 1;
    free(idx);
}

/* ---- routers (${routerName}, ${routerId}, ${routerVendorId}, ${routerAddress}) ---- */

/* Naming after the I-Am: the router's info first when the templates want it, then objectName. */
static void dev_name(bnc_device *d) {
    if (d->router && d->router->state < BNC_ROUTER_DONE) { /* router_settled continues */
        d->router->waiters++;
        return;
    }
    if (d->cfg->need_object_name)
        read_property(d, RQ_NAME, 8, d->iam.inst, 77, BN_ARRAY_ALL);
    else
        dev_setup(d);
}

/* The router answered (or gave up): the devices waiting for it go on naming. */
static void router_settled(bnc_conn *c, bnc_router *r) {
    if (r->state == BNC_ROUTER_FAILED)
        TBGW_ERRORF(c->h->log,
                    "router %s did not answer Who-Is: router templates of its devices stay unresolved",
                    r->addr_text);
    else
        TBGW_INFOF(c->h->log, "router %s: device %u \"%s\", vendor %u", r->addr_text, r->inst,
                   r->name ? r->name : "", r->vendor);
    r->waiters = 0;
    for (size_t i = 0; i < c->n_devs; i++) {
        bnc_device *d = c->devs[i];
        if (d->router == r && d->state == BNC_NAMING && !d->name && d->inflight == 0) dev_name(d);
    }
}

static void on_router_name(void *ud, const bn_result *r) {
    bnc_router *rt = ud;
    if (r->status == BN_E_CANCELLED) return;
    if (r->status == BN_OK) rt->name = object_name_of(r);
    if (!rt->name) { /* as for a device's objectName: the instance number stands in */
        char num[16];
        snprintf(num, sizeof num, "%u", rt->inst);
        rt->name = strdup(num);
    }
    rt->state = BNC_ROUTER_DONE;
}

static bnc_router *router_find(bnc_conn *c, const bn_addr *ra) {
    for (size_t i = 0; i < c->n_routers; i++)
        if (c->routers[i]->addr.ip == ra->ip && c->routers[i]->addr.port == ra->port) return c->routers[i];
    return NULL;
}

/* The router of a device's network: known, or asked now (unicast Who-Is to its address). */
static bnc_router *router_for(bnc_conn *c, uint16_t net) {
    bn_addr ra;
    if (bn_client_router_to(c->cl, net, &ra) != 0) return NULL;
    bnc_router *r = router_find(c, &ra);
    if (r && r->state != BNC_ROUTER_FAILED) return r;
    if (!r) { /* a router that did not answer is asked again for the next device behind it */
        bnc_router **nr = realloc(c->routers, (c->n_routers + 1) * sizeof *nr);
        if (!nr) return NULL;
        c->routers = nr;
        r = calloc(1, sizeof *r);
        if (!r) return NULL;
        r->addr = ra;
        bn_addr_format(&ra, r->addr_text, sizeof r->addr_text);
        c->routers[c->n_routers++] = r;
    }
    r->state = BNC_ROUTER_ASKING;
    r->deadline = tbgw_mono_ms() + c->cfg.app.discovery_timeout_ms;
    uint8_t buf[8];
    bn_w w;
    bn_w_init(&w, buf, sizeof buf);
    bn_who_is(&w, -1, -1);
    bn_client_send_unconfirmed(c->cl, &ra, buf, w.len, 0);
    return r;
}

/* An I-Am from a router being asked: its instance and vendor, then its objectName. */
static int router_i_am(bnc_conn *c, const bn_addr *src, const bn_iam *iam) {
    if (src->net) return 0;
    bnc_router *r = router_find(c, src);
    if (!r || r->state != BNC_ROUTER_ASKING) return 0;
    r->inst = iam->inst;
    r->vendor = iam->vendor;
    r->state = BNC_ROUTER_NAMING;
    r->deadline = tbgw_mono_ms() + c->cfg.app.discovery_timeout_ms +
                  (int64_t)c->cfg.app.apdu_timeout_ms * (c->cfg.app.apdu_retries + 1);
    uint8_t buf[16];
    bn_w w;
    bn_w_init(&w, buf, sizeof buf);
    bn_rp_request(&w, 8, iam->inst, 77, BN_ARRAY_ALL);
    if (bn_client_request(c->cl, &r->addr, BN_SVC_READ_PROPERTY, buf, w.len, iam->max_apdu, 0, on_router_name,
                          r) != 0) {
        char num[16];
        snprintf(num, sizeof num, "%u", r->inst);
        r->name = strdup(num);
        r->state = BNC_ROUTER_DONE;
    }
    return 1;
}

/* Routers that answered or timed out: the waiting devices go on. */
static void tick_routers(bnc_conn *c, int64_t now) {
    for (size_t i = 0; i < c->n_routers; i++) {
        bnc_router *r = c->routers[i];
        if (r->state == BNC_ROUTER_ASKING && now >= r->deadline) r->state = BNC_ROUTER_FAILED;
        if (r->waiters && r->state >= BNC_ROUTER_DONE) router_settled(c, r);
    }
}

/* ---- discovery ---- */

static void who_is(bnc_conn *c, const bn_addr *dst, const bnc_devcfg *dc, uint16_t bport, int global) {
    uint8_t buf[32];
    bn_w w;
    bn_w_init(&w, buf, sizeof buf);
    int64_t lo = -1, hi = -1;
    if (dc && dc->has_id && !dc->id.any && dc->id.n_ranges == 1 && !dc->id.regex) {
        lo = dc->id.ranges[0][0];
        hi = dc->id.ranges[0][1];
    }
    bn_who_is(&w, lo, hi);
    if (dst)
        bn_client_send_unconfirmed(c->cl, dst, buf, w.len, 0);
    else
        bn_client_broadcast(c->cl, bport, buf, w.len, global);
}

/* A device on a remote network: Who-Is through its router when one is known (to the station, or
 * a remote broadcast for "net:*"), else Who-Is-Router-To-Network (once per discovery) on the
 * application's port and 47808; the router's answer sends the Who-Is (on_route). */
static void remote_who_is(bnc_conn *c, const bnc_devcfg *dc, int *asked) {
    bn_addr ra;
    if (bn_client_router_to(c->cl, dc->net, &ra) == 0) {
        bn_addr a = {.net = dc->net, .mac_len = dc->mac_len};
        memcpy(a.mac, dc->mac, dc->mac_len);
        who_is(c, &a, dc, 0, 0);
        return;
    }
    if (*asked) return;
    *asked = 1;
    bn_client_who_is_router(c->cl, c->cfg.app.port, 0);
    if (c->cfg.app.port != BN_DEFAULT_PORT) bn_client_who_is_router(c->cl, BN_DEFAULT_PORT, 0);
}

static void on_route(void *ud, uint16_t net, const bn_addr *router) {
    bnc_conn *c = ud;
    char text[48];
    bn_addr_format(router, text, sizeof text);
    TBGW_INFOF(c->h->log, "network %u is reached through the router at %s", net, text);
    for (size_t i = 0; i < c->n_devs; i++) { /* a newer router for the network takes over */
        bn_addr *a = &c->devs[i]->addr;
        if (a->net == net) a->ip = router->ip, a->port = router->port;
    }
    int asked = 1;
    for (size_t i = 0; i < c->cfg.n_devs; i++)
        if (c->cfg.devs[i].net == net) remote_who_is(c, &c->cfg.devs[i], &asked);
}

/* The router for net went away (or cannot reach it): forgotten; a Who-Is-Router-To-Network looks
 * for one again, and the devices behind it are retried with their backoff meanwhile. */
static void on_route_lost(void *ud, uint16_t net, const bn_addr *router, const char *why) {
    bnc_conn *c = ud;
    char text[48];
    bn_addr_format(router, text, sizeof text);
    TBGW_WARNF(c->h->log, "network %u: the router at %s %s; forgotten, looking for a router again", net, text,
               why);
    int asked = 0;
    for (size_t i = 0; i < c->cfg.n_devs; i++)
        if (c->cfg.devs[i].net == net) remote_who_is(c, &c->cfg.devs[i], &asked);
}

static void on_network_note(void *ud, const bn_addr *router, const char *text) {
    (void)router;
    bnc_conn *c = ud;
    TBGW_WARNF(c->h->log, "%s", text);
}

/* One broadcast per distinct device port (47808 for patterns with port "*"). */
static void discover(bnc_conn *c) {
    uint32_t sent[16];
    size_t n_sent = 0;
    int asked_routers = 0;
    for (size_t i = 0; i < c->cfg.n_devs; i++) {
        const bnc_devcfg *dc = &c->cfg.devs[i];
        if (dc->net) {
            remote_who_is(c, dc, &asked_routers);
        } else if (dc->unicast) {
            bn_addr a = {.ip = dc->ip, .port = dc->port};
            who_is(c, &a, dc, 0, 0);
        } else {
            /* "*" and "a.b.X.X" a local broadcast; "*:*", "a.b.X.X:port" a global one (DNET
             * 0xFFFF: routers pass it on), as the reference's who-is addresses */
            uint32_t key = dc->port | (uint32_t)dc->global << 16;
            int dup = 0;
            for (size_t k = 0; k < n_sent; k++) dup |= sent[k] == key;
            if (!dup && n_sent < 16) {
                sent[n_sent++] = key;
                who_is(c, NULL, NULL, dc->port, dc->global);
            }
        }
        for (size_t k = 0; k < dc->n_alt; k++) {
            char host[64];
            unsigned a, b, cc, dd, port = BN_DEFAULT_PORT;
            if (sscanf(dc->alt[k], "%u.%u.%u.%u:%u", &a, &b, &cc, &dd, &port) >= 4 && a < 256 && b < 256 &&
                cc < 256 && dd < 256 && port > 0 && port < 65536) {
                bn_addr x = {.ip = (a << 24) | (b << 16) | (cc << 8) | dd, .port = (uint16_t)port};
                who_is(c, &x, dc, 0, 0);
            }
            (void)host;
        }
    }
}

static int cfg_matches(const bnc_devcfg *dc, const char *addr, uint32_t inst) {
    int am = bnc_address_match(dc->address, addr);
    for (size_t k = 0; !am && k < dc->n_alt; k++) am = strcmp(dc->alt[k], addr) == 0;
    if (!am) return 0;
    return !dc->has_id || bnc_id_match(&dc->id, inst);
}

static void on_i_am(bnc_conn *c, const bn_addr *src, const bn_iam *iam) {
    if (iam->inst == c->cfg.app.instance && src->port == bn_client_port(c->cl)) return; /* ourselves */
    router_i_am(c, src, iam); /* a router asked for ${routerName}: it may be a configured device too */
    char text[48];
    bn_addr_format(src, text, sizeof text);
    int known = 0;
    for (size_t i = 0; i < c->n_devs; i++) {
        bnc_device *d = c->devs[i];
        if (d->iam.inst != iam->inst) continue;
        if (!bn_addr_equal(&d->addr, src)) {
            /* behind a router: the same station through another router is the same device */
            bn_addr a = d->addr;
            if (!a.net || a.net != src->net) continue;
            a.ip = src->ip, a.port = src->port;
            if (!bn_addr_equal(&a, src)) continue;
            d->addr = a;
        }
        known = 1;
        if (d->state == BNC_INACTIVE && d->inflight == 0) {
            d->retry_at = 0; /* poll it now */
        }
    }
    if (known) return;
    for (size_t i = 0; i < c->cfg.n_devs; i++) {
        const bnc_devcfg *dc = &c->cfg.devs[i];
        if (!cfg_matches(dc, text, iam->inst)) continue;
        if (c->n_devs == c->cap_devs) {
            size_t cap = c->cap_devs ? c->cap_devs * 2 : 8;
            bnc_device **nd = realloc(c->devs, cap * sizeof *nd);
            if (!nd) return;
            c->devs = nd;
            c->cap_devs = cap;
        }
        bnc_device *d = calloc(1, sizeof *d);
        if (!d) return;
        d->conn = c;
        d->cfg = dc;
        d->addr = *src;
        snprintf(d->addr_text, sizeof d->addr_text, "%s", text);
        d->iam = *iam;
        d->rpm = 1;
        d->state = BNC_NAMING;
        tbgw_backoff_init(&d->backoff, 1000, 60000);
        c->devs[c->n_devs++] = d;
        if (dc->need_router && src->net) {
            d->router = router_for(c, src->net);
            if (!d->router)
                TBGW_WARNF(c->h->log, "router not found for device %s (network %u)", text, src->net);
        }
        dev_name(d);
    }
}

/* ---- endpoint callbacks ---- */

static void h_unconfirmed(void *ud, const bn_addr *src, uint8_t service, const uint8_t *p, size_t n) {
    bnc_conn *c = ud;
    c->h->stat_add(c->h, TBGW_STAT_MSGS_RECEIVED, 1);
    c->h->stat_add(c->h, TBGW_STAT_BYTES_RECEIVED, n);
    char text[48];
    if (service == BN_USVC_I_AM) {
        bn_iam iam;
        if (bn_i_am_decode(p, n, &iam) != 0) {
            bn_addr_format(src, text, sizeof text);
            c->malformed++;
            TBGW_WARNF(c->h->log, "malformed I-Am from %s", text);
            return;
        }
        on_i_am(c, src, &iam);
    } else if (service == BN_USVC_COV_NOTIFICATION) {
        bnc_cov_notification(c, src, p, n);
    } else if (service == BN_USVC_WHO_IS) {
        int64_t lo, hi;
        if (bn_who_is_decode(p, n, &lo, &hi) != 0) return;
        if (lo < 0 || (c->cfg.app.instance >= lo && c->cfg.app.instance <= hi)) bnc_send_i_am(c, src);
    }
}

static void h_confirmed(void *ud, const bn_addr *src, const bn_apdu *req, bn_w *w) {
    bnc_conn *c = ud;
    bnc_serve(c, src, req, w);
}

static void h_malformed(void *ud, const bn_addr *src, const char *what) {
    bnc_conn *c = ud;
    char text[48];
    bn_addr_format(src, text, sizeof text);
    c->malformed++;
    c->h->stat_add(c->h, TBGW_STAT_CONNECTOR_ERRORS, 1);
    TBGW_WARNF(c->h->log, "%s from %s (dropped)", what, text);
}

/* ---- lifecycle ---- */

static int bc_create(const tbgw_host *h, const json_t *cfg, void **self, tbgw_err *err) {
    bnc_conn *c = calloc(1, sizeof *c);
    if (!c) return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    c->h = h;
    if (bnc_config_parse(h, cfg, &c->cfg, err) != 0) {
        free(c);
        return err->code ? err->code : TBGW_EINVAL;
    }
    *self = c;
    return 0;
}

static void dev_free(bnc_device *d) {
    clear_results(d);
    free(d->res);
    free(d->points);
    free(d->objects);
    free(d->failed_idx);
    free(d->name);
    free(d->type);
    free(d->object_name);
    free(d);
}

static void bc_destroy(void *self) {
    bnc_conn *c = self;
    if (c->cl) bn_client_close(c->cl);
    for (size_t i = 0; i < c->n_devs; i++) dev_free(c->devs[i]);
    free(c->devs);
    for (size_t i = 0; i < c->n_routers; i++) {
        free(c->routers[i]->name);
        free(c->routers[i]);
    }
    free(c->routers);
    bnc_config_free(&c->cfg);
    free(c);
}

static void bc_stop(void *self) {
    ((bnc_conn *)self)->stop = 1;
}

/* Starts what is due; returns when the next device timer is due (now + 1 s at the latest). */
static int64_t tick_devices(bnc_conn *c, int64_t now) {
    int64_t next = now + 1000;
    for (size_t i = 0; i < c->n_devs; i++) {
        bnc_device *d = c->devs[i];
        bnc_cov_tick(d, now);
        if (d->cfg->use_cov && d->cov_renew_at > now && d->cov_renew_at < next) next = d->cov_renew_at;
        if (d->inflight) continue;
        if (d->state == BNC_ACTIVE && now >= d->next_poll) {
            if (d->n_failed && now >= d->next_rescan) {
                rescan(d);
                continue;
            }
            start_cycle(d);
        } else if (d->state == BNC_INACTIVE && now >= d->retry_at) {
            bn_addr ra;
            if (d->addr.net && bn_client_router_to(c->cl, d->addr.net, &ra) != 0) { /* its router is gone */
                bn_client_who_is_router(c->cl, c->cfg.app.port, 0);
                if (c->cfg.app.port != BN_DEFAULT_PORT) bn_client_who_is_router(c->cl, BN_DEFAULT_PORT, 0);
            }
            who_is(c, &d->addr, NULL, 0, 0);
            start_cycle(d);
        }
        if (d->inflight) continue;
        int64_t due = d->state == BNC_ACTIVE ? d->next_poll : d->state == BNC_INACTIVE ? d->retry_at : next;
        if (due < next) next = due;
    }
    return next;
}

static int bc_run(void *self) {
    bnc_conn *c = self;
    const bnc_app *a = &c->cfg.app;
    bn_client_opts o = {.bind_ip = a->bind_ip,
                        .port = a->port,
                        .broadcast_ip = a->broadcast_ip,
                        .max_apdu = a->max_apdu,
                        .timeout_ms = a->apdu_timeout_ms,
                        .retries = a->apdu_retries,
                        .bbmd_ip = a->bbmd_ip,
                        .bbmd_port = a->bbmd_port,
                        .ttl = a->ttl};
    bn_handlers hd = {.ud = c,
                      .unconfirmed = h_unconfirmed,
                      .confirmed = h_confirmed,
                      .malformed = h_malformed,
                      .route = on_route,
                      .route_lost = on_route_lost,
                      .network_note = on_network_note};
    char why[200];
    c->cl = bn_client_open(&o, &hd, why, sizeof why);
    if (!c->cl) {
        TBGW_ERRORF(c->h->log, "cannot open the BACnet/IP endpoint: %s", why);
        c->h->set_state(c->h, TBGW_CONN_FAILED, why);
        return TBGW_EIO;
    }
    TBGW_INFOF(c->h->log, "BACnet/IP device %u (\"%s\") on UDP port %u%s", a->instance, a->object_name,
               bn_client_port(c->cl), a->bbmd_ip ? ", registered as a foreign device" : "");
    c->h->set_state(c->h, TBGW_CONN_CONNECTED, NULL);
    bnc_send_i_am(c, NULL);
    c->next_discover = 0;
    while (!c->stop) {
        int64_t now = tbgw_mono_ms();
        if (now >= c->next_discover) {
            discover(c);
            c->next_discover = now + a->discover_ms;
        }
        tick_routers(c, now);
        int64_t next = tick_devices(c, now);
        if (next > c->next_discover) next = c->next_discover;
        if (c->h->dispatch && c->h->downlink_fd >= 0) {
            /* sleep until a frame, downlink work or the next timer (at most 1 s) */
            int ready = 0, wait_ms = (int)(next - now < 1 ? 1 : next - now > 1000 ? 1000 : next - now);
            bn_client_poll_with(c->cl, wait_ms, c->h->downlink_fd, &ready);
            if (ready && c->h->dispatch(c->h)) break;
        } else {
            bn_client_poll(c->cl, 20);
            if (c->h->wait(c->h, 0)) break;
        }
    }
    bn_client_close(c->cl);
    c->cl = NULL;
    for (size_t i = 0; i < c->n_devs; i++) c->devs[i]->inflight = 0;
    c->h->set_state(c->h, TBGW_CONN_STOPPED, NULL);
    return 0;
}

bnc_device *bnc_find_device(bnc_conn *c, const char *name) {
    for (size_t i = 0; name && i < c->n_devs; i++)
        if (c->devs[i]->name && strcmp(c->devs[i]->name, name) == 0) return c->devs[i];
    return NULL;
}

const tbgw_connector_ops tbgw_connector_bacnet = {
    .abi = TBGW_CONNECTOR_ABI,
    .type = "bacnet",
    .create = bc_create,
    .run = bc_run,
    .stop = bc_stop,
    .destroy = bc_destroy,
    .on_attribute_update = bnc_on_attr_update,
    .on_rpc = bnc_on_rpc,
};
