/* Polling: per-slave schedule, block reads, one timestamp per poll, dead-slave isolation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/modbus/mbc.h"
#include "util/json.h"
#include "util/time.h"

static void finish_poll(mbc_slave *sl);
static void block_done(void *ud, int status, const tbgw_mb_rsp *rsp);

static void submit_block(mbc_block *b) {
    mbc_slave *sl = b->sl;
    tbgw_mb_req req = {.fc = (uint8_t)b->fc, .addr = b->addr, .count = b->count};
    if (tbgw_mb_conn_submit(sl->conn, sl->unit, &req, 0, block_done, b) < 0) {
        b->done = 1;
        b->status = TBGW_EINVAL;
        if (--sl->outstanding == 0) finish_poll(sl);
    }
}

/* At most one warning per block per minute; the rest are counted and summarised. */
static int warn_ok(mbc_block *b) {
    int64_t now = tbgw_mono_ms();
    if (b->last_warn && now - b->last_warn < 60000) {
        b->suppressed++;
        return 0;
    }
    b->last_warn = now;
    return 1;
}

static const char *status_text(int st) {
    switch (st) {
    case TBGW_ETIMEDOUT:
        return "no response";
    case TBGW_EIO:
        return "connection failed";
    case TBGW_EPROTO:
        return "invalid response";
    case TBGW_MB_EEMPTY:
        return "empty or short response";
    default:
        return "request failed";
    }
}

/* Whether a failed request gets another attempt (spec'd in docs/connectors/modbus.md): a timeout
 * always, a short/empty answer with retryOnEmpty, an invalid one with retryOnInvalid, all bounded by
 * `retries` extra attempts. Exceptions and transport failures are final. */
int mbc_retry_ok(int status, int tries, int retries, int on_empty, int on_invalid) {
    if (tries >= retries) return 0;
    if (status == TBGW_ETIMEDOUT) return 1;
    if (status == TBGW_MB_EEMPTY) return on_empty;
    if (status == TBGW_EPROTO) return on_invalid;
    return 0;
}

static int should_retry(const mbc_slave *sl, int status, int tries) {
    return !sl->m->stop && mbc_retry_ok(status, tries, sl->retries, sl->retry_on_empty, sl->retry_on_invalid);
}

static void block_done(void *ud, int status, const tbgw_mb_rsp *rsp) {
    mbc_block *b = ud;
    mbc_slave *sl = b->sl;
    const tbgw_host *h = sl->m->host;
    if (status == 0 && !rsp->exception) {
        b->len = (uint16_t)(rsp->data_len < b->cap ? rsp->data_len : b->cap);
        memcpy(b->data, rsp->data, b->len);
        b->status = 0;
        if (h->stat_add) {
            h->stat_add(h, TBGW_STAT_MSGS_RECEIVED, 1);
            h->stat_add(h, TBGW_STAT_BYTES_RECEIVED, rsp->data_len);
        }
    } else if (status == 0) {
        b->status = TBGW_EPROTO;
        b->exception = rsp->exception;
        if (h->stat_add) h->stat_add(h, TBGW_STAT_CONNECTOR_ERRORS, 1);
        if (warn_ok(b)) {
            TBGW_WARNF(h->log,
                       "%s: unit %u fc %d address %u count %u: exception %u (%s), keys dropped (%llu more "
                       "since the last report)",
                       sl->device_name, sl->unit, b->fc, b->addr, b->count, rsp->exception,
                       tbgw_mb_exception_name(rsp->exception), (unsigned long long)b->suppressed);
            b->suppressed = 0;
        }
    } else if (should_retry(sl, status, b->tries)) {
        b->tries++;
        sl->retried++;
        TBGW_DEBUGF(h->log, "%s: unit %u fc %d address %u: %s, attempt %d of %d", sl->device_name, sl->unit,
                    b->fc, b->addr, status_text(status), b->tries + 1, sl->retries + 1);
        submit_block(b);
        return;
    } else {
        b->status = status;
        if (status == TBGW_MB_EEMPTY || status == TBGW_EPROTO) {
            int empty = status == TBGW_MB_EEMPTY;
            if (empty)
                sl->empty_drops++;
            else
                sl->invalid_drops++;
            if (h->stat_add) h->stat_add(h, TBGW_STAT_CONNECTOR_ERRORS, 1);
            if (warn_ok(b)) {
                if (empty)
                    TBGW_WARNF(h->log,
                               "%s: unit %u fc %d address %u count %u: empty or short response (%zu of %u "
                               "byte(s)) after %d attempt(s)%s, keys dropped (%llu more since the last "
                               "report)",
                               sl->device_name, sl->unit, b->fc, b->addr, b->count, rsp ? rsp->data_len : 0,
                               b->fc <= 2 ? (b->count + 7) / 8 : b->count * 2, b->tries + 1,
                               sl->retry_on_empty ? "" : " (retryOnEmpty is off)",
                               (unsigned long long)b->suppressed);
                else
                    TBGW_WARNF(
                        h->log,
                        "%s: unit %u fc %d address %u count %u: invalid response after %d attempt(s)%s, "
                        "keys dropped (%llu more since the last report)",
                        sl->device_name, sl->unit, b->fc, b->addr, b->count, b->tries + 1,
                        sl->retry_on_invalid ? "" : " (retryOnInvalid is off)",
                        (unsigned long long)b->suppressed);
                b->suppressed = 0;
            }
        }
    }
    b->done = 1;
    if (--sl->outstanding == 0) finish_poll(sl);
}

/* The count bits starting at bit `off` of a packed bit array, repacked from bit 0. */
static size_t extract_bits(const uint8_t *src, size_t src_len, size_t off, int count, uint8_t *out) {
    size_t nbytes = ((size_t)count + 7) / 8;
    memset(out, 0, nbytes);
    for (size_t i = 0; i < (size_t)count && (off + i) / 8 < src_len; i++)
        if (tbgw_mb_bit_get(src, off + i)) tbgw_mb_bit_set(out, i, 1);
    return nbytes;
}

static int add_point(mbc_slave *sl, tbgw_converted *c, const mbc_point *p) {
    const mbc_block *b = &sl->blocks[p->block];
    uint8_t tmp[256];
    const uint8_t *data;
    size_t len;
    if (p->fc <= 2) {
        len = extract_bits(b->data, b->len, p->block_off, p->count, tmp);
        data = tmp;
    } else {
        size_t off = p->block_off * 2;
        data = b->data + off;
        len = off < b->len ? b->len - off : 0;
        if (len > (size_t)p->count * 2) len = (size_t)p->count * 2;
    }
    char err[160] = "";
    json_t *v = tbgw_mbv_decode(p->spec, p->fc, data, len, err, sizeof err);
    const tbgw_host *h = sl->m->host;
    if (!v) {
        if (warn_ok(&sl->blocks[p->block]))
            TBGW_WARNF(h->conv_log ? h->conv_log : h->log, "%s: key %s: cannot decode: %s", sl->device_name,
                       p->key, err);
        if (h->stat_add) h->stat_add(h, TBGW_STAT_CONVERTER_ERRORS, 1);
        return 0;
    }
    tbgw_value tv;
    char *tmp_text = NULL;
    int rc = tbgw_value_from_json(v, &tv, &tmp_text);
    if (rc == 0) {
        const tbgw_report_strategy *rs = p->rs;
        rc = p->is_attr ? tbgw_converted_add_attribute(c, p->key, &tv, rs)
                        : tbgw_converted_add_telemetry(c, sl->poll_ts, p->key, &tv, rs);
    }
    free(tmp_text);
    json_decref(v);
    return rc == 0 ? 1 : 0;
}

/* uplink_converter: one JSON document per poll with the raw data of every key that was read,
 * {"deviceName","deviceType","ts","unitId","data":{key:{kind,type,functionCode,address,objectsCount,
 * "registers":[..] | "bits":[..]}}}; the plugin's records replace the built-in decoding. */
static void custom_uplink(mbc_slave *sl) {
    const tbgw_host *h = sl->m->host;
    json_t *data = json_object();
    for (size_t i = 0; i < sl->n_points; i++) {
        const mbc_point *p = &sl->points[i];
        const mbc_block *b = &sl->blocks[p->block];
        if (b->status != 0) continue;
        json_t *vals = json_array();
        if (p->fc <= 2) {
            for (size_t k = 0; k < (size_t)p->count && (p->block_off + k) / 8 < b->len; k++)
                json_array_append_new(vals, json_integer(tbgw_mb_bit_get(b->data, p->block_off + k)));
        } else {
            for (size_t k = 0; k < (size_t)p->count && (p->block_off + k) * 2 + 1 < b->len; k++) {
                size_t o = (p->block_off + k) * 2;
                json_array_append_new(vals, json_integer(b->data[o] << 8 | b->data[o + 1]));
            }
        }
        json_object_set_new(
            data, p->key,
            json_pack("{s:s,s:s,s:i,s:i,s:i,s:o}", "kind", p->is_attr ? "attributes" : "timeseries", "type",
                      tbgw_mbv_type_name(p->spec->type), "functionCode", p->fc, "address", (int)p->addr,
                      "objectsCount", p->count, p->fc <= 2 ? "bits" : "registers", vals));
    }
    if (!json_object_size(data)) {
        json_decref(data);
        return;
    }
    json_t *doc =
        json_pack("{s:s,s:s,s:I,s:i,s:o}", "deviceName", sl->device_name, "deviceType", sl->device_type, "ts",
                  (json_int_t)sl->poll_ts, "unitId", (int)sl->unit, "data", data);
    char *text = doc ? tbgw_json_dumps(doc, 0) : NULL;
    json_decref(doc);
    if (!text) return;
    tbgw_converted *chain = NULL;
    tbgw_err err = {0};
    int rc = tbgw_custom_conv_convert(sl->uplink, sl->device_name, (const uint8_t *)text, strlen(text),
                                      &chain, &err);
    free(text);
    if (rc < 0 || err.code) {
        if (warn_ok(&sl->blocks[0]))
            TBGW_WARNF(h->conv_log ? h->conv_log : h->log, "%s: uplink_converter failed: %s", sl->device_name,
                       err.msg[0] ? err.msg : tbgw_strerror(rc));
        if (h->stat_add) h->stat_add(h, TBGW_STAT_CONVERTER_ERRORS, 1);
    }
    if (!chain) return;
    for (tbgw_converted *c = chain; c; c = c->next)
        if (!c->rs && sl->has_rs) c->rs = &sl->rs;
    if (h->stat_add) h->stat_add(h, TBGW_STAT_CONV_PROCESSED, 1);
    h->emit(h, chain);
}

static void slave_failed(mbc_slave *sl, int status) {
    const tbgw_host *h = sl->m->host;
    sl->failures++;
    sl->poll_errors++;
    int64_t now = tbgw_mono_ms();
    int long_wait = sl->failures % sl->attempt_count == 0;
    sl->hold_until = now + (long_wait ? sl->wait_after_ms : sl->attempt_ms);
    if (h->stat_add) h->stat_add(h, TBGW_STAT_CONNECTOR_ERRORS, 1);
    if (sl->failures == 1 || long_wait)
        TBGW_WARNF(h->log, "%s (unit %u on %s): %s; %d failed attempt(s), next try in %lld ms",
                   sl->device_name, sl->unit, tbgw_mb_conn_name(sl->conn), status_text(status), sl->failures,
                   (long long)(sl->hold_until - now));
    if (sl->connected) {
        sl->connected = 0;
        if (h->device_disconnected) h->device_disconnected(h, sl->device_name);
    }
    snprintf(sl->m->last_error, sizeof sl->m->last_error, "%s: %s", sl->device_name, status_text(status));
}

static void finish_poll(mbc_slave *sl) {
    sl->polling = 0;
    size_t ok = 0;
    int transport_err = 0;
    for (size_t i = 0; i < sl->n_blocks; i++) {
        if (sl->blocks[i].status == 0)
            ok++;
        else if (sl->blocks[i].status == TBGW_EIO || sl->blocks[i].status == TBGW_ETIMEDOUT)
            transport_err = sl->blocks[i].status;
    }
    if (sl->m->stop) return;
    if (!ok && transport_err) {
        slave_failed(sl, transport_err);
        return;
    }
    const tbgw_host *h = sl->m->host;
    if (sl->failures) TBGW_INFOF(h->log, "%s (unit %u): answering again", sl->device_name, sl->unit);
    sl->failures = 0;
    if (!sl->connected) {
        sl->connected = 1;
        if (h->device_connected) h->device_connected(h, sl->device_name, sl->device_type);
    }
    if (sl->uplink) {
        custom_uplink(sl);
        return;
    }
    tbgw_converted *c = tbgw_converted_new(sl->device_name, sl->device_type);
    if (!c) return;
    c->rs = sl->has_rs ? &sl->rs : NULL;
    size_t n = 0;
    for (size_t i = 0; i < sl->n_points; i++)
        if (sl->blocks[sl->points[i].block].status == 0) n += (size_t)add_point(sl, c, &sl->points[i]);
    if (!n) {
        tbgw_converted_free(c);
        return;
    }
    if (h->stat_add) h->stat_add(h, TBGW_STAT_CONV_PROCESSED, 1);
    h->emit(h, c);
}

static void start_poll(mbc_slave *sl) {
    sl->polling = 1;
    sl->polls++;
    sl->poll_ts = tbgw_now_ms();
    sl->outstanding = (int)sl->n_blocks;
    for (size_t i = 0; i < sl->n_blocks; i++) {
        mbc_block *b = &sl->blocks[i];
        b->sl = sl;
        b->done = 0;
        b->status = 0;
        b->exception = 0;
        b->tries = 0;
        b->len = 0;
    }
    for (size_t i = 0; i < sl->n_blocks && sl->polling; i++) submit_block(&sl->blocks[i]);
}

void mbc_poll_due(mbc *m, int64_t now) {
    for (size_t i = 0; i < m->n_slaves; i++) {
        mbc_slave *sl = &m->slaves[i];
        if (!sl->n_blocks || now < sl->next_poll) continue;
        sl->next_poll += sl->poll_ms;
        if (sl->next_poll <= now) sl->next_poll = now + sl->poll_ms; /* fell behind: skip, do not burst */
        if (sl->polling || now < sl->hold_until) continue;
        start_poll(sl);
    }
}

int64_t mbc_poll_next_ms(mbc *m, int64_t now) {
    int64_t best = 3600000; /* nothing polled: only I/O, downlink or an RPC deadline wakes the loop */
    for (size_t i = 0; i < m->n_slaves; i++) {
        mbc_slave *sl = &m->slaves[i];
        if (!sl->n_blocks) continue;
        int64_t d = sl->next_poll - now;
        if (d < best) best = d;
    }
    return best < 0 ? 0 : best;
}
