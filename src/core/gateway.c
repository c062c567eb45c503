/* Gateway lifecycle, ingress (connector -> storage) and the publish pump (storage -> platform). */
#include "core/gateway.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <tbgw/log.h>
#include <unistd.h>

#include "core/gateway_int.h"
#include "core/mgmt.h"
#include "core/custom_stats.h"
#include "core/record.h"
#include "core/service.h"
#include "core/stats.h"
#include "platform/tb_codec.h"
#include "util/buf.h"
#include "util/heap.h"
#include "util/time.h"

#define GATEWAY_DEVICE_NAME "currentThingsBoardGateway"
#define INGRESS_CAP         200000 /* datapoints queued between connectors and the core */

/* Heap trimming after a burst: records acknowledged since the last trim, delay once nothing is in
 * flight, the longest a due trim waits for a pause of a flow that never pauses, free memory in the
 * arenas below which trimming is not worth the walk. */
#define TRIM_AFTER_RECORDS 1000
#define TRIM_DELAY_MS      1000
#define TRIM_MAX_WAIT_MS   5000
#define TRIM_MIN_FREE      (512 * 1024)

static void pump(tbgw_gateway *gw);
static void schedule_pump(tbgw_gateway *gw, uint64_t delay_ms);

/* ---- ingress -------------------------------------------------------------------------------- */

int tbgw_gw_ingress_push(tbgw_gateway *gw, in_item *it, int keep) {
    pthread_mutex_lock(&gw->in_mu);
    if (it->kind == IN_DATA && gw->in_weight + it->weight > gw->in_cap) {
        pthread_mutex_unlock(&gw->in_mu);
        if (keep) { /* the records go back to the connector, only the wrapper is freed */
            it->data = NULL;
            __atomic_add_fetch(&gw->cnt.ingress_refused, 1, __ATOMIC_RELAXED);
        } else {
            __atomic_add_fetch(&gw->cnt.ingress_drops, it->weight, __ATOMIC_RELAXED);
        }
        tbgw_in_free(it);
        return TBGW_EAGAIN;
    }
    it->next = NULL;
    if (gw->in_tail)
        gw->in_tail->next = it;
    else
        gw->in_head = it;
    gw->in_tail = it;
    gw->in_weight += it->weight;
    pthread_mutex_unlock(&gw->in_mu);
    uv_async_send(&gw->async);
    return 0;
}

static int storage_sink(void *ud, const void *rec, size_t len) {
    tbgw_gateway *gw = ud;
    int rc = gw->st->ops->append(gw->st, rec, len);
    if (rc) {
        gw->cnt.storage_drops++;
        int64_t now = tbgw_mono_ms();
        if (now - gw->last_drop_log > 10000) {
            gw->last_drop_log = now;
            TBGW_ERRORF(gw->slog, "storage refused a record (%s); %llu records dropped so far",
                        tbgw_strerror(rc), (unsigned long long)gw->cnt.storage_drops);
        }
        return 0; /* keep going with the other records */
    }
    gw->cnt.records_appended++;
    return 0;
}

/* ci: the connector whose event this is (counted as its "EventsProduced"), or NULL. */
static void store(tbgw_gateway *gw, const tbgw_converted *c, uint8_t flags, conn_inst *ci) {
    uint64_t before = gw->cnt.records_appended;
    tbgw_record_encode(c, flags, gw->max_payload, storage_sink, gw);
    if (ci) ci->storage_pushed += gw->cnt.records_appended - before;
    gw->cnt.events_produced++;
    gw->cnt.attr_produced += c->n_attributes;
    gw->cnt.ts_produced += c->n_telemetry;
}

void tbgw_gw_publish_connect(tbgw_gateway *gw, tbgw_device *d) {
    if (!gw->ready || d->connect_sent || d->inactive) return;
    tbgw_buf b;
    tbgw_buf_init(&b);
    tbgw_buf_puts(&b, "{\"device\":");
    tbgw_buf_json_str(&b, tbgw_devices_platform_name(&gw->devs, d->name));
    tbgw_buf_puts(&b, ",\"type\":");
    tbgw_buf_json_str(&b, d->type ? d->type : "default");
    tbgw_buf_putc(&b, '}');
    if (tbgw_gw_publish(gw, TB_TOPIC_CONNECT, b.p, b.len, gw->cfg->qos) == 0) d->connect_sent = 1;
    tbgw_buf_free(&b);
}

void tbgw_gw_device_gone(tbgw_gateway *gw, const char *name) {
    char *n = strdup(name);
    if (!n) return;
    tbgw_gw_publish_disconnect(gw, n);
    tbgw_devices_remove(&gw->devs, n);
    free(n);
}

void tbgw_gw_remote_logging(tbgw_gateway *gw, const json_t *level) {
    const char *s = json_string_value(level);
    int l = s ? tbgw_level_parse(s) : -1;
    if (l < 0) {
        TBGW_WARNF(gw->log, "RemoteLoggingLevel \"%s\" not understood", s ? s : "?");
        return;
    }
    tbgw_mgmt_remote_level(gw, l);
    TBGW_INFOF(gw->log, "remote logging level set to %s", s);
}

void tbgw_gw_publish_disconnect(tbgw_gateway *gw, const char *name) {
    if (!gw->ready) return;
    tbgw_buf b;
    tbgw_buf_init(&b);
    tbgw_buf_puts(&b, "{\"device\":");
    tbgw_buf_json_str(&b, tbgw_devices_platform_name(&gw->devs, name));
    tbgw_buf_putc(&b, '}');
    tbgw_gw_publish(gw, TB_TOPIC_DISCONNECT, b.p, b.len, gw->cfg->qos);
    tbgw_buf_free(&b);
}

/* Registers the device of a record; queues its connectorType/connectorName attributes once. */
static tbgw_device *touch_device(tbgw_gateway *gw, conn_inst *ci, const char *name, const char *type) {
    int is_new;
    tbgw_device *d = tbgw_devices_add(&gw->devs, name, type, ci->entry->name, ci->entry->id, ci, &is_new);
    if (!d) return NULL;
    d->last_seen_ms = tbgw_now_ms();
    d->inactive = 0;
    if (is_new)
        TBGW_INFOF(gw->log, "device \"%s\" connected through connector \"%s\"", name, ci->entry->name);
    tbgw_gw_publish_connect(gw, d);
    if (!d->attrs_sent) {
        tbgw_converted *a = tbgw_converted_new(name, d->type);
        if (a) {
            tbgw_value t = tbgw_value_string(ci->entry->type), n = tbgw_value_string(ci->entry->name);
            tbgw_converted_add_attribute(a, "connectorType", &t, NULL);
            tbgw_converted_add_attribute(a, "connectorName", &n, NULL);
            store(gw, a, TBGW_RECORD_META, NULL);
            tbgw_converted_free(a);
            d->attrs_sent = 1;
        }
    }
    if (is_new) tbgw_router_dispatch_waiting(gw, name);
    return d;
}

static void process_data(tbgw_gateway *gw, conn_inst *ci, tbgw_converted *chain) {
    int64_t now = tbgw_now_ms();
    for (tbgw_converted *c = chain; c; c = c->next) {
        if (!c->device_name || !*c->device_name || tbgw_converted_count(c) == 0) {
            __atomic_add_fetch(&ci->stats[TBGW_STAT_CONV_DROPPED], 1, __ATOMIC_RELAXED);
            TBGW_DEBUGF(ci->host.log, "dropped a record without device name or datapoints");
            continue;
        }
        if (!tbgw_mgmt_accept(gw, ci, c->device_name, tbgw_converted_count(c))) continue;
        tbgw_device *d = tbgw_devices_get(&gw->devs, c->device_name);
        if (!d || !d->attrs_sent) {
            touch_device(gw, ci, c->device_name, c->device_type);
        } else {
            d->last_seen_ms = now;
            if (d->inactive) { /* disconnected for inactivity: connect again */
                d->inactive = 0;
                tbgw_gw_publish_connect(gw, d);
            }
        }
        if (tbgw_report_filter(gw->report, ci->entry->id, &ci->entry->rs, c, now) == 0) continue;
        store(gw, c, 0, ci);
    }
}

static void report_emit(void *ud, const char *connector_id, tbgw_converted *c) {
    tbgw_gateway *gw = ud;
    conn_inst *ci = NULL;
    for (size_t i = 0; connector_id && i < gw->n_conns && !ci; i++)
        if (gw->conns[i] && gw->conns[i]->entry->id && strcmp(gw->conns[i]->entry->id, connector_id) == 0)
            ci = gw->conns[i];
    store(gw, c, 0, ci);
    tbgw_converted_free(c);
}

void tbgw_gw_drain_ingress(tbgw_gateway *gw) {
    pthread_mutex_lock(&gw->in_mu);
    in_item *list = gw->in_head;
    gw->in_head = gw->in_tail = NULL;
    gw->in_weight = 0;
    pthread_mutex_unlock(&gw->in_mu);
    while (list) {
        in_item *it = list;
        list = it->next;
        conn_inst *ci = it->inst;
        switch (it->kind) {
        case IN_DATA:
            process_data(gw, ci, it->data);
            break;
        case IN_DEV_CONNECT:
            if (tbgw_mgmt_accept(gw, ci, it->device, 0)) touch_device(gw, ci, it->device, it->type);
            break;
        case IN_DEV_DISCONNECT:
            if (tbgw_devices_get(&gw->devs, it->device)) {
                tbgw_gw_publish_disconnect(gw, it->device);
                tbgw_devices_remove(&gw->devs, it->device);
                TBGW_INFOF(gw->log, "device \"%s\" disconnected", it->device);
            }
            break;
        case IN_RPC_REPLY:
            tbgw_router_rpc_reply(gw, it);
            break;
        case IN_ATTR_REQUEST:
            tbgw_router_attr_request(gw, it);
            break;
        }
        tbgw_in_free(it);
    }
}

static void on_async(uv_async_t *a) {
    tbgw_gateway *gw = a->data;
    if (__atomic_load_n(&gw->stop_requested, __ATOMIC_RELAXED) && !gw->stopping) tbgw_gw_request_stop(gw, 0);
    tbgw_gw_drain_ingress(gw);
    pump(gw);
}

static void on_tick(uv_timer_t *t);

/* The earliest deadline of the core's periodic work (monotonic ms): the tick runs only then, so an
 * idle gateway sleeps until I/O, a hand-off from a connector or something that is really due. */
static int64_t tick_due(tbgw_gateway *gw, int64_t now) {
    int64_t due = now + 3600000;
#define GW_AT(x)                                                                                             \
    do {                                                                                                     \
        int64_t t_ = (x);                                                                                    \
        if (t_ < due) due = t_;                                                                              \
    } while (0)
    if (gw->limits_req_id && !gw->ready) GW_AT(gw->limits_deadline + 1);
    int64_t rep = tbgw_report_next_due(gw->report); /* wall clock */
    if (rep != INT64_MAX) GW_AT(now + (rep - tbgw_now_ms()));
    GW_AT(tbgw_router_next_due(gw));
    GW_AT(tbgw_mgmt_next_due(gw, now));
    if (gw->devs.dirty) GW_AT(now + 100); /* saves of connected_devices.json are coalesced */
    if (gw->cfg->check_connectors_s > 0 && !gw->stopping) GW_AT(gw->next_file_check);
    if (gw->draining) GW_AT(gw->drain_deadline + 1);
    if (gw->st->ops->sync_due) GW_AT(gw->st->ops->sync_due(gw->st));
    if (gw->trim_at) GW_AT(gw->trim_at);
#undef GW_AT
    return due;
}

/* (Re)arms the one-shot tick for the earliest deadline unless it is armed for an earlier time. */
static void arm_tick(tbgw_gateway *gw) {
    int64_t now = tbgw_mono_ms();
    int64_t due = tick_due(gw, now);
    if (gw->tick_at && gw->tick_at <= due && uv_is_active((uv_handle_t *)&gw->tick_timer)) return;
    gw->tick_at = due;
    uv_timer_start(&gw->tick_timer, on_tick, (uint64_t)(due > now ? due - now : 0), 0);
}

/* Before the loop sleeps: group commit (make what was appended durable), then the next tick. */
static void on_prepare(uv_prepare_t *p) {
    tbgw_gateway *gw = p->data;
    gw->st->ops->sync(gw->st);
    arm_tick(gw);
}

/* ---- platform publishing --------------------------------------------------------------------- */

int tbgw_gw_publish(tbgw_gateway *gw, const char *topic, const char *payload, size_t len, int qos) {
    int mid;
    tb_limit_take(&gw->dev_limits.l[0], 1);
    int rc = tb_client_publish(gw->tb, topic, payload, len, qos, &mid);
    if (rc == 0) gw->cnt.msgs_pushed++;
    if (rc == 0) tb_client_push(gw->tb); /* replies and requests leave now; data packs are coalesced */
    return rc;
}

static const char *rename_cb(void *ud, const char *name, size_t len) {
    tbgw_gateway *gw = ud;
    if (!gw->devs.renames.count) return NULL;
    char tmp[1024];
    if (len >= sizeof tmp) return NULL;
    memcpy(tmp, name, len);
    tmp[len] = 0;
    return tbgw_hmap_get(&gw->devs.renames, tmp);
}

static int collect_msg(void *ud, const tb_msg *m) {
    msg_vec *v = ud;
    if (v->n == v->cap) {
        size_t nc = v->cap ? v->cap * 2 : 8;
        void *nm = realloc(v->m, nc * sizeof *v->m);
        if (!nm) return TBGW_ENOMEM;
        v->m = nm;
        v->cap = nc;
    }
    v->m[v->n].t = v->topics.len;
    tbgw_buf_append(&v->topics, m->topic, strlen(m->topic) + 1);
    v->m[v->n].p = v->payloads.len;
    tbgw_buf_append(&v->payloads, m->payload, m->len);
    tbgw_buf_putc(&v->payloads, 0);
    v->m[v->n].len = m->len;
    v->m[v->n].dp = m->datapoints;
    v->m[v->n].tel = m->telemetry;
    v->n++;
    return v->topics.oom || v->payloads.oom ? TBGW_ENOMEM : 0;
}

static void flight_free(flight *f) {
    tbgw_pack_free(&f->pack);
    free(f->mids);
    free(f->by_conn);
    free(f);
}

/* Adds the acknowledged records to their connectors' counts (those still configured). */
static void count_sent(tbgw_gateway *gw, const conn_count *cc, size_t n) {
    for (size_t k = 0; k < n; k++)
        for (size_t i = 0; i < gw->n_conns; i++)
            if (gw->conns[i] && gw->conns[i] == cc[k].ci) {
                gw->conns[i]->events_sent += cc[k].n;
                break;
            }
}

static void commit_done(tbgw_gateway *gw) {
    while (gw->fl_head && gw->fl_head->pending == 0) {
        flight *f = gw->fl_head;
        gw->st->ops->commit(gw->st, &f->pack);
        gw->cnt.events_sent += f->pack.n;
        count_sent(gw, f->by_conn, f->n_by_conn);
        gw->fl_head = f->next;
        if (!gw->fl_head) gw->fl_tail = NULL;
        flight_free(f);
    }
    /* At least TRIM_AFTER_RECORDS records were acknowledged since the last trim: a trim of the heap is
     * due shortly, so the gateway returns near its footprint once the burst is delivered. */
    if (!gw->trim_at && gw->cnt.events_sent - gw->trim_mark >= TRIM_AFTER_RECORDS) {
        gw->trim_since = tbgw_mono_ms();
        gw->trim_at = gw->trim_since + TRIM_DELAY_MS;
    }
}

/* Returns the heap's free memory to the system once no pack is in flight any more. A busy gateway
 * re-arms: the trim waits for the flow to stop or pause, but at most TRIM_MAX_WAIT_MS, so a gateway
 * whose flow never pauses (many devices polled steadily) is trimmed too, at most once per that wait
 * and only while the arenas hold at least TRIM_MIN_FREE. */
static void heap_trim_tick(tbgw_gateway *gw, int64_t now) {
    if (!gw->trim_at || now < gw->trim_at) return;
    if (gw->fl_head && now - gw->trim_since < TRIM_MAX_WAIT_MS) {
        gw->trim_at = now + TRIM_DELAY_MS;
        return;
    }
    gw->trim_at = 0;
    gw->trim_mark = gw->cnt.events_sent;
    size_t was = tbgw_heap_trim(TRIM_MIN_FREE);
    if (was) TBGW_DEBUGF(gw->log, "heap trimmed after a burst (%zu kB were free in the arenas)", was / 1024);
}

/* Attributes the records of a staged pack to the connectors that own their devices. Records of
 * devices no connector owns now (stored before a restart and not seen since) count only in the total. */
static void count_by_conn(tbgw_gateway *gw, staged_pack *sp, const tbgw_record_view *views, size_t nv) {
    const char *prev = NULL;
    uint16_t prev_len = 0;
    void *ci = NULL;
    for (size_t i = 0; i < nv; i++) {
        const tbgw_record_view *v = &views[i];
        if (v->flags & (TBGW_RECORD_OWN | TBGW_RECORD_META)) continue;
        if (!prev || v->name_len != prev_len || memcmp(v->name, prev, prev_len) != 0) {
            char tmp[1024];
            ci = NULL;
            if (v->name_len < sizeof tmp) {
                memcpy(tmp, v->name, v->name_len);
                tmp[v->name_len] = 0;
                tbgw_device *d = tbgw_devices_get(&gw->devs, tmp);
                ci = d ? d->owner : NULL;
            }
            prev = v->name;
            prev_len = v->name_len;
        }
        if (!ci) continue;
        size_t k = 0;
        while (k < sp->n_by_conn && sp->by_conn[k].ci != ci) k++;
        if (k == sp->n_by_conn) {
            conn_count *nb = realloc(sp->by_conn, (k + 1) * sizeof *nb);
            if (!nb) return; /* per-connector counts are best effort */
            sp->by_conn = nb;
            sp->by_conn[k] = (conn_count){ci, 0};
            sp->n_by_conn++;
        }
        sp->by_conn[k].n++;
    }
}

static traffic_limits *limits_for(tbgw_gateway *gw, const char *topic) {
    return strncmp(topic, "v1/gateway/", 11) == 0 ? &gw->dev_limits : &gw->own_limits;
}

static void msg_vec_free(msg_vec *v) {
    free(v->m);
    tbgw_buf_free(&v->topics);
    tbgw_buf_free(&v->payloads);
    memset(v, 0, sizeof *v);
}

/* Reads and encodes the next pack into gw->staged. Returns 1 if staged, 0 if storage is empty. */
static int stage_next(tbgw_gateway *gw) {
    staged_pack *sp = &gw->staged;
    if (gw->st->ops->peek(gw->st, gw->pack_size, &sp->pack) || sp->pack.n == 0) {
        tbgw_pack_free(&sp->pack);
        return 0;
    }
    tbgw_record_view *views = calloc(sp->pack.n, sizeof *views);
    size_t nv = 0;
    for (size_t i = 0; views && i < sp->pack.n; i++) {
        if (tbgw_record_decode(sp->pack.recs[i].data, sp->pack.recs[i].len, &views[nv]) == 0) {
            nv++;
        } else {
            gw->cnt.bad_records++;
            TBGW_ERRORF(gw->slog, "dropping a malformed storage record (seq %llu, %u bytes)",
                        (unsigned long long)(sp->pack.first_seq + i), sp->pack.recs[i].len);
        }
    }
    tbgw_buf_init(&sp->mv.topics);
    tbgw_buf_init(&sp->mv.payloads);
    int rc =
        views ? tb_codec_pack(views, nv, gw->max_payload, rename_cb, gw, collect_msg, &sp->mv) : TBGW_ENOMEM;
    if (rc == 0) count_by_conn(gw, sp, views, nv);
    free(views);
    if (rc) {
        TBGW_ERRORF(gw->log, "cannot encode a pack (%s); retrying later", tbgw_strerror(rc));
        msg_vec_free(&sp->mv);
        tbgw_pack_free(&sp->pack);
        gw->st->ops->rewind(gw->st);
        return -1;
    }
    sp->active = 1;
    return 1;
}

static void staged_clear(tbgw_gateway *gw) {
    if (!gw->staged.active) return;
    msg_vec_free(&gw->staged.mv);
    tbgw_pack_free(&gw->staged.pack);
    free(gw->staged.by_conn);
    gw->staged.by_conn = NULL;
    gw->staged.n_by_conn = 0;
    gw->staged.active = 0;
}

/* Publishes one pack; returns 1 if sent, 0 if nothing to send, -1 to stop pumping now. */
static int pump_one(tbgw_gateway *gw) {
    if (!gw->staged.active) {
        int r = stage_next(gw);
        if (r <= 0) return r;
    }
    msg_vec *mv = &gw->staged.mv;
    /* Rate limits (spec §1.3): the whole pack waits until every bucket admits it. */
    int64_t now = tbgw_mono_ms();
    double need[2][3] = {{0}};
    for (size_t i = 0; i < mv->n; i++) {
        int own = limits_for(gw, mv->topics.p + mv->m[i].t) == &gw->own_limits;
        need[own][0] += 1;
        need[own][1] += 1;
        if (mv->m[i].tel) need[own][2] += mv->m[i].dp;
    }
    int64_t wait = 0;
    for (int own = 0; own < 2; own++) {
        traffic_limits *tl = own ? &gw->own_limits : &gw->dev_limits;
        for (int k = 0; k < 3; k++) {
            int64_t w = need[own][k] > 0 ? tb_limit_wait_ms(&tl->l[k], need[own][k], now) : 0;
            if (w > wait) wait = w;
        }
    }
    if (wait > 0) {
        TBGW_DEBUGF(gw->log, "rate limited: next pack in %lld ms", (long long)wait);
        schedule_pump(gw, (uint64_t)wait);
        return -1;
    }
    for (int own = 0; own < 2; own++)
        for (int k = 0; k < 3; k++)
            tb_limit_take(&(own ? &gw->own_limits : &gw->dev_limits)->l[k], need[own][k]);
    flight *f = calloc(1, sizeof *f);
    if (f && mv->n) f->mids = calloc(mv->n, sizeof *f->mids);
    if (!f || (mv->n && !f->mids)) {
        free(f);
        schedule_pump(gw, 100);
        return -1;
    }
    f->pack = gw->staged.pack;
    memset(&gw->staged.pack, 0, sizeof gw->staged.pack);
    f->by_conn = gw->staged.by_conn;
    f->n_by_conn = gw->staged.n_by_conn;
    gw->staged.by_conn = NULL;
    gw->staged.n_by_conn = 0;
    int rc = 0;
    for (size_t i = 0; i < mv->n; i++) {
        int mid = 0;
        rc = tb_client_publish(gw->tb, mv->topics.p + mv->m[i].t, mv->payloads.p + mv->m[i].p, mv->m[i].len,
                               gw->cfg->qos, &mid);
        if (rc == TBGW_EINVAL) {
            /* the session refuses this message for good (larger than the server's packet limit):
             * retrying would block every later pack, so it is dropped, counted and logged */
            gw->cnt.storage_drops++;
            TBGW_ERRORF(gw->log, "the platform session refuses a %zu-byte message on %s (too large); dropped",
                        mv->m[i].len, mv->topics.p + mv->m[i].t);
            rc = 0;
            continue;
        }
        if (rc) break;
        f->mids[f->n_mids++] = mid;
        gw->cnt.msgs_pushed++;
    }
    staged_clear(gw);
    /* a pack whose publish failed is never committed; the failure means the session is ending, and
     * the session loss drops it from the window and re-reads it from storage */
    f->pending = rc ? f->n_mids + 1 : f->n_mids;
    if (gw->fl_tail)
        gw->fl_tail->next = f;
    else
        gw->fl_head = f;
    gw->fl_tail = f;
    gw->inflight_msgs += f->n_mids;
    if (rc) {
        TBGW_WARNF(gw->log, "publish failed (%s); the pack stays in storage", tbgw_strerror(rc));
        return -1;
    }
    commit_done(gw); /* a pack of only malformed records has no messages */
    return 1;
}

static void pump(tbgw_gateway *gw) {
    if (!gw->ready) return;
    while (gw->inflight_msgs < gw->max_inflight) {
        int r = pump_one(gw);
        if (r <= 0) break;
    }
    if (gw->draining && !gw->fl_head) {
        tbgw_storage_stats s;
        gw->st->ops->stats(gw->st, &s);
        if (s.records == 0) uv_stop(&gw->loop);
    }
}

static void on_pump_timer(uv_timer_t *t) {
    tbgw_gateway *gw = t->data;
    gw->pump_scheduled = 0;
    pump(gw);
}

static void schedule_pump(tbgw_gateway *gw, uint64_t delay_ms) {
    if (gw->pump_scheduled) return;
    gw->pump_scheduled = 1;
    uv_timer_start(&gw->pump_timer, on_pump_timer, delay_ms, 0);
}

static void on_publish(void *ud, int mid) {
    tbgw_gateway *gw = ud;
    for (flight *f = gw->fl_head; f; f = f->next) {
        for (size_t i = 0; i < f->n_mids; i++) {
            if (f->mids[i] == mid) {
                f->mids[i] = -1;
                f->pending--;
                gw->inflight_msgs--;
                commit_done(gw);
                pump(gw);
                return;
            }
        }
    }
}

/* ---- session ------------------------------------------------------------------------------ */

static void session_ready(tbgw_gateway *gw) {
    gw->ready = 1;
    tbgw_remote_on_ready(gw);
    const char *k;
    void *v;
    for (size_t i = 0; (i = tbgw_hmap_next(&gw->devs.by_name, i, &k, &v)) != 0;)
        tbgw_gw_publish_connect(gw, v);
    pump(gw);
}

static void parse_limit_set(tbgw_gateway *gw, traffic_limits *tl, const json_t *obj) {
    const char *keys[3] = {"messages", "telemetryMessages", "telemetryDataPoints"};
    int pct = tb_limit_default_pct();
    for (int i = 0; i < 3; i++) {
        const char *s = json_string_value(json_object_get(obj, keys[i]));
        tb_limit_parse(&tl->l[i], s ? s : "0:0,", gw->cfg->host, pct, tbgw_mono_ms());
    }
}

void tbgw_gw_apply_session_limits(tbgw_gateway *gw, const json_t *resp) {
    gw->limits_req_id = 0;
    if (json_is_object(resp) && !json_object_get(resp, "error")) {
        int pct = tb_limit_default_pct();
        json_t *mp = json_object_get(resp, "maxPayloadSize");
        if (json_is_integer(mp) && json_integer_value(mp) > 0) {
            size_t m = (size_t)(json_integer_value(mp) * pct / 100);
            size_t cfgmax = (size_t)gw->cfg->max_payload_size;
            gw->max_payload = m < cfgmax ? m : cfgmax;
        }
        json_t *rl = json_object_get(resp, "rateLimits"), *grl = json_object_get(resp, "gatewayRateLimits");
        if (json_is_object(rl)) parse_limit_set(gw, &gw->own_limits, rl);
        if (json_is_object(grl)) parse_limit_set(gw, &gw->dev_limits, grl);
        json_t *mi = json_object_get(resp, "maxInflightMessages");
        if (json_is_integer(mi)) {
            double m = (double)json_integer_value(mi);
            for (int i = 0; i < 2; i++) {
                double cap = tb_limit_min_cap(&gw->dev_limits.l[i]);
                if (cap > 0 && cap < m) m = cap;
            }
            size_t inflight = (size_t)(m * pct / 100);
            if (json_integer_value(mi) == 0) inflight = 10000;
            gw->max_inflight = inflight ? inflight : 1;
        }
        TBGW_INFOF(gw->log, "session limits: max payload %zu bytes, %zu messages in flight", gw->max_payload,
                   gw->max_inflight);
    } else {
        TBGW_WARNF(gw->log, "getSessionLimits answered with an error; keeping defaults");
    }
    gw->limits_once = 1;
    if (!gw->ready) session_ready(gw);
}

static void on_ready(void *ud) {
    tbgw_gateway *gw = ud;
    tbgw_service_status("connected to the platform");
    int srv = tb_client_server_max_packet(gw->tb);
    if (srv > 0 && (size_t)(srv * 8 / 10) < gw->max_payload) gw->max_payload = (size_t)(srv * 8 / 10);
    int rm = tb_client_server_receive_max(gw->tb);
    if (rm > 0 && (size_t)rm < gw->max_inflight) gw->max_inflight = (size_t)rm;
    char topic[64];
    gw->limits_req_id = ++gw->own_req_counter;
    snprintf(topic, sizeof topic, "%s%lld", TB_TOPIC_ME_RPC_REQUEST, (long long)gw->limits_req_id);
    const char *req = "{\"method\":\"getSessionLimits\",\"params\":{\"timeout\":5000}}";
    int mid;
    tb_client_publish(gw->tb, topic, req, strlen(req), 1, &mid);
    gw->limits_deadline = tbgw_mono_ms() + gw->cfg->session_limits_timeout_ms;
    /* later reconnects do not wait (as the reference); a zero timeout does not wait at all */
    if (gw->limits_once || gw->cfg->session_limits_timeout_ms <= 0) session_ready(gw);
}

static void on_lost(void *ud, const char *why) {
    tbgw_gateway *gw = ud;
    char status[300];
    snprintf(status, sizeof status, "platform disconnected: %s", why ? why : "connection lost");
    tbgw_service_status(status);
    gw->ready = 0;
    gw->limits_req_id = 0;
    while (gw->fl_head) {
        flight *f = gw->fl_head;
        gw->fl_head = f->next;
        flight_free(f);
    }
    gw->fl_tail = NULL;
    gw->inflight_msgs = 0;
    staged_clear(gw);
    gw->st->ops->rewind(gw->st);
    const char *k;
    void *v;
    for (size_t i = 0; (i = tbgw_hmap_next(&gw->devs.by_name, i, &k, &v)) != 0;)
        ((tbgw_device *)v)->connect_sent = 0;
    gw->own_req_counter = 0;
    gw->own_attr_req_counter = 0;
    tbgw_router_session_lost(gw);
    if (gw->draining) uv_stop(&gw->loop);
}

static void on_message(void *ud, const char *topic, const void *payload, size_t len) {
    tbgw_gateway *gw = ud;
    gw->cnt.msgs_received++;
    tbgw_router_on_message(gw, topic, payload, len);
}

/* ---- statistics (spec §1.9) ------------------------------------------------------------- */

void tbgw_gw_store_own_converted(tbgw_gateway *gw, const tbgw_converted *c) {
    tbgw_record_encode(c, TBGW_RECORD_OWN, gw->max_payload, storage_sink, gw);
}

/* Stores a gateway-own record built from a JSON object of key/values. */
void tbgw_gw_store_own(tbgw_gateway *gw, json_t *values, int telemetry) {
    tbgw_converted *c = tbgw_converted_new("currentThingsBoardGateway", "gateway");
    if (!c) return;
    const char *k;
    json_t *v;
    int64_t ts = tbgw_now_ms();
    json_object_foreach(values, k, v) {
        tbgw_value tv;
        char *tmp;
        if (tbgw_value_from_json(v, &tv, &tmp) != 0) continue;
        if (telemetry)
            tbgw_converted_add_telemetry(c, ts, k, &tv, NULL);
        else
            tbgw_converted_add_attribute(c, k, &tv, NULL);
        free(tmp);
    }
    if (tbgw_converted_count(c)) tbgw_record_encode(c, TBGW_RECORD_OWN, gw->max_payload, storage_sink, gw);
    tbgw_converted_free(c);
}

static void send_stats(tbgw_gateway *gw) {
    json_t *machine = json_object();
    tbgw_stats_machine(machine, &gw->cpu_prev, gw->cfg->dir);
    json_object_set_new(machine, "msgsSentToPlatform", json_integer((json_int_t)gw->cnt.msgs_pushed));
    json_object_set_new(machine, "msgsReceivedFromPlatform", json_integer((json_int_t)gw->cnt.msgs_received));
    tbgw_storage_stats ss;
    gw->st->ops->stats(gw->st, &ss);
    json_t *service =
        json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "storageMsgPulled",
                  (json_int_t)(ss.committed - gw->stats_prev_committed), "storageMsgCount",
                  (json_int_t)ss.records, "platformMsgPushed",
                  (json_int_t)(gw->cnt.msgs_pushed - gw->stats_prev_pushed), "platformAttrProduced",
                  (json_int_t)gw->cnt.attr_produced, "platformTsProduced", (json_int_t)gw->cnt.ts_produced,
                  "storageDropped", (json_int_t)ss.dropped, "storageDiskBytes", (json_int_t)ss.disk_bytes);
    gw->stats_prev_committed = ss.committed;
    gw->stats_prev_pushed = gw->cnt.msgs_pushed;
    gw->cnt.attr_produced = gw->cnt.ts_produced = 0;
    json_t *conns = json_object();
    for (size_t i = 0; i < gw->n_conns; i++) {
        conn_inst *ci = gw->conns[i];
        if (!ci) continue;
        uint64_t s[TBGW_STAT__COUNT];
        for (int k = 0; k < TBGW_STAT__COUNT; k++) {
            s[k] = __atomic_exchange_n(&ci->stats[k], 0, __ATOMIC_RELAXED);
            ci->stats_total[k] += s[k];
        }
        json_object_set_new(conns, ci->entry->name,
                            json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "connectorMsgsReceived",
                                      (json_int_t)s[TBGW_STAT_MSGS_RECEIVED], "connectorBytesReceived",
                                      (json_int_t)s[TBGW_STAT_BYTES_RECEIVED], "storageMsgPushed",
                                      (json_int_t)(ci->storage_pushed - ci->stats_prev_pushed),
                                      "convertersMsgProcessed", (json_int_t)s[TBGW_STAT_CONV_PROCESSED],
                                      "convertersMsgDropped", (json_int_t)s[TBGW_STAT_CONV_DROPPED],
                                      "connectorsErrors", (json_int_t)s[TBGW_STAT_CONNECTOR_ERRORS],
                                      "convertersErrors", (json_int_t)s[TBGW_STAT_CONVERTER_ERRORS]));
        /* tbgw additions: the supervisor's view of the connector */
        tbgw_conn_state state;
        char lasterr[256];
        tbgw_conn_state_get(ci, &state, lasterr, sizeof lasterr);
        json_t *cs = json_object_get(conns, ci->entry->name);
        json_object_set_new(cs, "state", json_string(tbgw_conn_state_name(state)));
        json_object_set_new(cs, "restarts", json_integer(ci->restarts));
        if (lasterr[0]) json_object_set_new(cs, "lastError", json_string(lasterr));
        ci->stats_prev_pushed = ci->storage_pushed;
    }
    json_t *all = json_pack("{s:o,s:o,s:o}", "machineStats", machine, "serviceStats", service,
                            "connectorsStats", conns);
    tbgw_gw_store_own(gw, all, 1);
    json_decref(all);
}

static void custom_work(uv_work_t *w) {
    tbgw_gateway *gw = w->data;
    gw->custom_result = tbgw_custom_stats_run(gw->custom_cmds);
}

static void custom_done(uv_work_t *w, int status) {
    tbgw_gateway *gw = w->data;
    gw->custom_busy = 0;
    if (status == 0 && gw->custom_result && json_object_size(gw->custom_result)) {
        tbgw_gw_store_own(gw, gw->custom_result, 1);
        pump(gw);
    }
    json_decref(gw->custom_result);
    gw->custom_result = NULL;
}

static void on_custom_timer(uv_timer_t *t) {
    tbgw_gateway *gw = t->data;
    if (gw->custom_busy || gw->stopping) return;
    gw->custom_work.data = gw;
    if (uv_queue_work(&gw->loop, &gw->custom_work, custom_work, custom_done) == 0) gw->custom_busy = 1;
}

static void on_stats_timer(uv_timer_t *t) {
    send_stats(t->data);
    pump(t->data);
}

/* ---- timers and lifecycle ----------------------------------------------------------------- */

static void on_tick(uv_timer_t *t) {
    tbgw_gateway *gw = t->data;
    int64_t now = tbgw_mono_ms();
    gw->tick_at = 0; /* on_prepare arms the next one */
    if (gw->limits_req_id && !gw->ready && now > gw->limits_deadline) {
        TBGW_WARNF(gw->log, "no answer to getSessionLimits within %d ms; continuing with defaults",
                   gw->cfg->session_limits_timeout_ms);
        gw->limits_req_id = 0;
        session_ready(gw);
    }
    tbgw_report_tick(gw->report, tbgw_now_ms(), report_emit, gw);
    tbgw_router_tick(gw, now);
    tbgw_mgmt_tick(gw, now);
    if (gw->devs.dirty) tbgw_devices_save(&gw->devs);
    if (gw->cfg->check_connectors_s > 0 && now >= gw->next_file_check && !gw->stopping) {
        gw->next_file_check = now + (int64_t)gw->cfg->check_connectors_s * 1000;
        tbgw_remote_check_files(gw);
    }
    if (gw->draining && now > gw->drain_deadline) uv_stop(&gw->loop);
    pump(gw);
    heap_trim_tick(gw, now);
}

void tbgw_gw_request_stop(tbgw_gateway *gw, int restart) {
    if (gw->stopping) return;
    gw->stopping = 1;
    gw->restart_requested = restart;
    TBGW_INFOF(gw->log, "stopping: connectors first, then flushing what the platform accepts");
    tbgw_service_stopping();
    int64_t deadline = tbgw_mono_ms() + 2500;
    for (size_t i = 0; i < gw->n_conns; i++) {
        int64_t left = deadline - tbgw_mono_ms();
        if (gw->conns[i]) tbgw_conn_stop(gw->conns[i], left > 100 ? (int)left : 100);
    }
    tbgw_gw_drain_ingress(gw);
    gw->st->ops->sync(gw->st);
    gw->draining = 1;
    gw->drain_deadline = tbgw_mono_ms() + 1500;
    if (!gw->ready) {
        uv_stop(&gw->loop);
        return;
    }
    pump(gw);
}

static void on_signal(uv_signal_t *s, int signum) {
    tbgw_gateway *gw = s->data;
    TBGW_INFOF(gw->log, "received signal %d", signum);
    tbgw_gw_request_stop(gw, 0);
}

void tbgw_gateway_stop(tbgw_gateway *gw) {
    __atomic_store_n(&gw->stop_requested, 1, __ATOMIC_RELAXED);
    uv_async_send(&gw->async);
}

static void load_cb(void *ud, const char *name, const char *type, const char *cname, const char *cid,
                    const char *renamed) {
    tbgw_gateway *gw = ud;
    (void)renamed;
    for (size_t i = 0; i < gw->n_conns; i++) {
        conn_inst *ci = gw->conns[i];
        if (!ci) continue;
        if ((cid && strcmp(ci->entry->id, cid) == 0) || (cname && strcmp(ci->entry->name, cname) == 0)) {
            int is_new;
            tbgw_device *d =
                tbgw_devices_add(&gw->devs, name, type, ci->entry->name, ci->entry->id, ci, &is_new);
            if (d) d->attrs_sent = 1;
            return;
        }
    }
}

tbgw_gateway *tbgw_gateway_new(tbgw_config *cfg, char **argv) {
    tbgw_gateway *gw = calloc(1, sizeof *gw);
    if (!gw) return NULL;
    gw->cfg = cfg;
    gw->argv = argv;
    gw->log = tbgw_logger_get("service");
    gw->slog = tbgw_logger_get("storage");
    gw->in_cap = INGRESS_CAP;
    /* TBGW_INGRESS_CAP: a smaller queue makes the core refuse batches early (tests of the saturation path) */
    const char *icap = getenv("TBGW_INGRESS_CAP");
    if (icap && atol(icap) > 0) gw->in_cap = (size_t)atol(icap);
    gw->max_payload = (size_t)cfg->max_payload_size;
    gw->max_inflight = 100;
    pthread_mutex_init(&gw->in_mu, NULL);
    int pct = tb_limit_default_pct();
    int64_t now = tbgw_mono_ms();
    /* [0] messages, [1] telemetry messages, [2] datapoints: config keys per spec §1.3 */
    tb_limit_parse(&gw->own_limits.l[0], cfg->rate_limits[2], cfg->host, pct, now);
    tb_limit_parse(&gw->own_limits.l[1], cfg->rate_limits[0], cfg->host, pct, now);
    tb_limit_parse(&gw->own_limits.l[2], cfg->rate_limits[1], cfg->host, pct, now);
    tb_limit_parse(&gw->dev_limits.l[0], cfg->rate_limits[3], cfg->host, pct, now);
    tb_limit_parse(&gw->dev_limits.l[1], cfg->rate_limits[4], cfg->host, pct, now);
    tb_limit_parse(&gw->dev_limits.l[2], cfg->rate_limits[5], cfg->host, pct, now);
    tbgw_err err = {0};
    if (tbgw_storage_open(cfg->storage, cfg->dir, &gw->st, &err)) {
        tbgw_doc_prefix_error(cfg->doc, &err);
        TBGW_ERRORF(gw->slog, "%s", err.msg);
        tbgw_gateway_free(gw);
        return NULL;
    }
    json_t *rc = json_object_get(cfg->storage, "read_records_count");
    if (!rc) rc = json_object_get(cfg->storage, "max_read_records_count");
    gw->pack_size = json_is_integer(rc) && json_integer_value(rc) > 0 ? (size_t)json_integer_value(rc) : 1000;
    gw->report = tbgw_report_new(&cfg->rs, cfg->rs_disabled);
    char *devpath = tbgw_config_resolve(cfg, "connected_devices.json");
    tbgw_devices_init(&gw->devs, devpath);
    free(devpath);
    if (uv_loop_init(&gw->loop)) {
        tbgw_gateway_free(gw);
        return NULL;
    }
    uv_async_init(&gw->loop, &gw->async, on_async);
    gw->async.data = gw;
    uv_signal_init(&gw->loop, &gw->sig_term);
    uv_signal_init(&gw->loop, &gw->sig_int);
    gw->sig_term.data = gw->sig_int.data = gw;
    uv_timer_init(&gw->loop, &gw->tick_timer);
    uv_timer_init(&gw->loop, &gw->pump_timer);
    uv_timer_init(&gw->loop, &gw->stats_timer);
    uv_timer_init(&gw->loop, &gw->custom_timer);
    gw->custom_timer.data = gw;
    gw->tick_timer.data = gw->pump_timer.data = gw->stats_timer.data = gw;
    uv_prepare_init(&gw->loop, &gw->prepare);
    gw->prepare.data = gw;
    tb_client_cbs cbs = {on_ready, on_lost, on_message, on_publish};
    gw->tb = tb_client_new(&gw->loop, cfg, &cbs, gw);
    gw->conns = calloc(cfg->n_conns ? cfg->n_conns : 1, sizeof *gw->conns);
    for (size_t i = 0; i < cfg->n_conns; i++) {
        memset(&err, 0, sizeof err);
        gw->conns[i] = tbgw_conn_new(gw, &cfg->conns[i], cfg->dir, &err);
        if (!gw->conns[i]) {
            TBGW_ERRORF(gw->log, "connector \"%s\" not started: %s", cfg->conns[i].name, err.msg);
            continue;
        }
        gw->n_conns = i + 1;
    }
    gw->n_conns = cfg->n_conns;
    tbgw_devices_load(&gw->devs, load_cb, gw);
    if (tbgw_mgmt_new(gw) != 0) {
        tbgw_gateway_free(gw);
        return NULL;
    }
    /* the connector files' source texts and the trees of connectors that copied what they keep
     * (TBGW_CONNECTOR_COPIES_CONFIG) were freed: give those pages back before the first poll */
    size_t was = tbgw_heap_trim(TRIM_MIN_FREE);
    if (was)
        TBGW_DEBUGF(gw->log, "heap trimmed after loading the configuration (%zu kB were free)", was / 1024);
    return gw;
}

int tbgw_gateway_run(tbgw_gateway *gw) {
    signal(SIGPIPE, SIG_IGN);
    uv_signal_start(&gw->sig_term, on_signal, SIGTERM);
    uv_signal_start(&gw->sig_int, on_signal, SIGINT);
    uv_prepare_start(&gw->prepare, on_prepare);
    arm_tick(gw);
    for (size_t i = 0; i < gw->n_conns; i++) {
        if (!gw->conns[i]) continue;
        if (tbgw_conn_start(gw->conns[i]))
            TBGW_ERRORF(gw->log, "cannot start a thread for connector \"%s\"", gw->conns[i]->entry->name);
        else
            TBGW_INFOF(gw->log, "connector \"%s\" (%s) started", gw->conns[i]->entry->name,
                       gw->conns[i]->entry->type);
    }
    if (gw->cfg->remote_configuration) tbgw_remote_publish_all(gw);
    if (gw->cfg->stats_enable) {
        json_t *st = json_object();
        tbgw_stats_static(st, gw->cfg->dir);
        tbgw_gw_store_own(gw, st, 0);
        json_decref(st);
        json_t *prime = json_object(); /* first CPU sample, so the first period has a baseline */
        tbgw_stats_machine(prime, &gw->cpu_prev, gw->cfg->dir);
        json_decref(prime);
        if (gw->cfg->custom_stats_enable && gw->cfg->custom_stats_file) {
            char *p = tbgw_config_resolve(gw->cfg, gw->cfg->custom_stats_file);
            tbgw_err err = {0};
            gw->custom_cmds = p ? tbgw_custom_stats_load(p, &err) : NULL;
            free(p);
            if (!gw->custom_cmds) {
                TBGW_ERRORF(gw->log, "custom statistics disabled: %s", err.msg);
            } else {
                uint64_t cp =
                    (uint64_t)(gw->cfg->custom_stats_period_s > 0 ? gw->cfg->custom_stats_period_s : 1) *
                    1000;
                uv_timer_start(&gw->custom_timer, on_custom_timer, 0, cp);
            }
        }
        uint64_t period = (uint64_t)gw->cfg->stats_period_s * 1000;
        uv_timer_start(&gw->stats_timer, on_stats_timer, period, period);
    }
    tbgw_mgmt_start(gw);
    tb_client_start(gw->tb);
    TBGW_INFOF(gw->log, "tbgw %s started with %zu connector(s), %s storage", TBGW_VERSION, gw->n_conns,
               gw->st->ops->type);
    tbgw_service_ready(&gw->loop, "connecting to the platform");
    uv_run(&gw->loop, UV_RUN_DEFAULT);
    if (!gw->stopping) tbgw_gw_request_stop(gw, 0);
    tbgw_devices_save(&gw->devs);
    gw->st->ops->sync(gw->st);
    tbgw_storage_stats s;
    gw->st->ops->stats(gw->st, &s);
    TBGW_INFOF(gw->log, "stopped; %llu record(s) remain in storage", (unsigned long long)s.records);
    return 0;
}

static void close_walk(uv_handle_t *h, void *arg) {
    (void)arg;
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

void tbgw_gateway_free(tbgw_gateway *gw) {
    if (!gw) return;
    for (size_t i = 0; gw->conns && i < gw->n_conns; i++)
        if (gw->conns[i]) {
            tbgw_conn_stop(gw->conns[i], 1000);
            tbgw_conn_free(gw->conns[i]);
        }
    tbgw_mgmt_free(gw);
    free(gw->conns);
    int restart = gw->restart_requested;
    if (gw->tb) {
        tb_client_free(gw->tb);
        tbgw_service_close();
        uv_walk(&gw->loop, close_walk, NULL);
        uv_run(&gw->loop, UV_RUN_NOWAIT);
        uv_loop_close(&gw->loop);
    }
    {
        in_item *it = gw->in_head;
        while (it) {
            in_item *n = it->next;
            tbgw_in_free(it);
            it = n;
        }
    }
    while (gw->fl_head) {
        flight *f = gw->fl_head;
        gw->fl_head = f->next;
        flight_free(f);
    }
    tbgw_router_free(gw);
    staged_clear(gw);
    if (!gw->custom_busy) json_decref(gw->custom_cmds); /* a running command still reads it */
    if (gw->st) gw->st->ops->close(gw->st);
    tbgw_report_free(gw->report);
    tbgw_devices_free(&gw->devs);
    pthread_mutex_destroy(&gw->in_mu);
    char **argv = gw->argv;
    tbgw_config_free(gw->cfg);
    free(gw);
    if (restart && argv) {
        execv("/proc/self/exe", argv);
    }
}

int tbgw_gateway_check_connectors(const tbgw_config *cfg, FILE *out, int *warnings) {
    int errors = 0;
    for (size_t i = 0; i < cfg->n_conns; i++) {
        tbgw_err err = {0};
        tbgw_conn_entry *e = &cfg->conns[i];
        e->check_out = out;
        e->check_warnings = 0;
        conn_inst *ci = tbgw_conn_new(NULL, e, cfg->dir, &err);
        e->check_out = NULL;
        if (warnings) *warnings += e->check_warnings;
        if (!ci) {
            fprintf(out, "%s\n", err.msg);
            errors++;
            continue;
        }
        tbgw_conn_free(ci);
    }
    return errors + tbgw_mgmt_check(cfg, out);
}
