/* BLE connector (docs/connectors/ble.md): BlueZ over D-Bus on the connector thread. Devices are
 * connected as soon as the adapter sees them; characteristics are read every pollPeriod or
 * followed by notifications; advertisement-only devices report their manufacturer data. */
#include <ctype.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "connectors/ble/ble_conn.h"
#include "convert/report_cfg.h"
#include "util/time.h"

/* ---- configuration ---- */

static int64_t num(const json_t *o, const char *k, int64_t def) {
    const json_t *v = json_object_get(o, k);
    return json_is_number(v) ? (int64_t)json_number_value(v) : def;
}

/* A reportStrategy of the object at path; a mistake is reported and the strategy ignored. */
static tbgw_report_strategy strategy(bc *c, const json_t *o, const char *path, tbgw_report_strategy def) {
    tbgw_report_strategy rs = {0};
    tbgw_err err = {0};
    if (tbgw_rs_parse_in(o, path, &rs, &err) != 0) {
        c->h->config_warning(c->h, path, err.msg);
        return def;
    }
    return rs.type != TBGW_RS_UNSET ? rs : def;
}

static int item_parse(bc *c, bdev *d, const json_t *e, const char *path, int telemetry, bitem *it) {
    const char *key = json_string_value(json_object_get(e, "key"));
    const char *expr = json_string_value(json_object_get(e, "valueExpression"));
    const char *method = json_string_value(json_object_get(e, "method"));
    const char *uuid = json_string_value(json_object_get(e, "characteristicUUID"));
    const char *src = json_string_value(json_object_get(e, "dataSourceType"));
    const char *dtype = json_string_value(json_object_get(d->cfg, "type"));
    char p[160];
    if (!key)
        return snprintf(p, sizeof p, "%s.key", path), c->h->config_warning(c->h, p, "expected a string"), -1;
    if (!expr)
        return snprintf(p, sizeof p, "%s.valueExpression", path),
               c->h->config_warning(c->h, p, "expected a string"), -1;
    memset(it, 0, sizeof *it);
    it->telemetry = telemetry;
    it->adv = src && strcmp(src, "characteristic") != 0;
    if (!it->adv) {
        if (!uuid)
            return snprintf(p, sizeof p, "%s.characteristicUUID", path),
                   c->h->config_warning(c->h, p, "expected the characteristic's UUID"), -1;
        if (method && strcasecmp(method, "notify") != 0 && strcasecmp(method, "read") != 0)
            return snprintf(p, sizeof p, "%s.method", path),
                   c->h->config_warning(c->h, p, "expected \"read\" or \"notify\""), -1;
        it->notify = method && strcasecmp(method, "notify") == 0;
        for (size_t i = 0; uuid[i] && i + 1 < sizeof it->uuid; i++)
            it->uuid[i] = (char)tolower((unsigned char)uuid[i]);
    }
    it->hex = it->adv ? !(dtype && strcmp(dtype, "bytes") == 0) : (dtype && strcmp(dtype, "hex") == 0);
    const char *compute = json_string_value(json_object_get(e, "compute"));
    if (compute && *compute && it->hex) {
        tbgw_err err = {0};
        size_t off = 0;
        if (tbgw_py_compile(compute, strlen(compute), 0, &it->compute, &err, &off) != 0) {
            snprintf(p, sizeof p, "%s.compute@%zu", path, off);
            c->h->config_warning(c->h, p, err.msg);
            return -1;
        }
    }
    it->rs = strategy(c, e, path, d->rs);
    it->key = strdup(key);
    it->expr = strdup(expr);
    return 0;
}

static void dev_free(bdev *d) {
    for (size_t i = 0; i < d->n_items; i++) {
        free(d->items[i].key);
        free(d->items[i].expr);
        if (d->items[i].compute) tbgw_py_free(d->items[i].compute);
    }
    free(d->items);
    for (size_t i = 0; i < d->n_chars; i++) free(d->chars[i].path);
    free(d->chars);
    free(d->path);
    free(d->mfr);
    tbgw_converted_free(d->batch);
}

/* On a mistake that disables the device: field = its dotted path, err = the reason. */
static int dev_parse(bc *c, const json_t *jd, size_t idx, bdev *d, char *field, size_t fn, tbgw_err *err) {
    char path[64];
    snprintf(path, sizeof path, "devices[%zu]", idx);
    d->cfg = jd;
    d->name = json_string_value(json_object_get(jd, "name"));
    if (!d->name || !*d->name)
        return snprintf(field, fn, "%s.name", path),
               tbgw_err_set(err, TBGW_EINVAL, "expected a string; device skipped");
    d->type = json_string_value(json_object_get(jd, "deviceType"));
    if (!d->type) d->type = "default";
    const char *mac = json_string_value(json_object_get(jd, "MACAddress"));
    if (!mac || strlen(mac) != 17 || !strchr(mac, ':'))
        return snprintf(field, fn, "%s.MACAddress", path),
               tbgw_err_set(err, TBGW_EINVAL,
                            "expected a Bluetooth address AA:BB:CC:DD:EE:FF; device skipped");
    for (int i = 0; i < 17; i++) d->mac[i] = (char)toupper((unsigned char)mac[i]);
    if (json_object_get(jd, "extension"))
        c->h->config_warning(c->h, path,
                             "extension: custom converter classes are not available; the built-in "
                             "converter is used");
    d->poll_ms = num(jd, "pollPeriod", 5000);
    if (d->poll_ms < 10) d->poll_ms = 10;
    d->timeout_ms = num(jd, "timeout", 10000);
    if (d->timeout_ms < 100) d->timeout_ms = 100;
    d->connect_retry = (int)num(jd, "connectRetry", 5);
    d->retry_ms = (int64_t)(json_number_value(json_object_get(jd, "connectRetryInSeconds")) * 1000);
    d->wait_after_ms = (int64_t)(json_number_value(json_object_get(jd, "waitAfterConnectRetries")) * 1000);
    d->show_map = json_is_true(json_object_get(jd, "showMap"));
    d->rs = strategy(c, jd, path, (tbgw_report_strategy){0});
    const json_t *tl = json_object_get(jd, "telemetry"), *al = json_object_get(jd, "attributes");
    d->items = calloc(json_array_size(tl) + json_array_size(al) + 1, sizeof *d->items);
    if (!d->items) return snprintf(field, fn, "%s", path), tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    for (int t = 1; t >= 0; t--) {
        size_t i;
        const json_t *e;
        json_array_foreach(t ? tl : al, i, e) {
            char p[96];
            snprintf(p, sizeof p, "%s.%s[%zu]", path, t ? "telemetry" : "attributes", i);
            if (item_parse(c, d, e, p, t, &d->items[d->n_items]) == 0) {
                if (!d->items[d->n_items].adv) d->has_chars = 1;
                d->n_items++;
            }
        }
    }
    if (d->show_map) d->has_chars = 1;
    return 0;
}

static void ble_destroy(void *self) {
    bc *c = self;
    for (size_t i = 0; i < c->n_devs; i++) dev_free(&c->devs[i]);
    free(c->devs);
    tbgw_ble_conv_free(&c->conv);
    json_decref(c->cfg);
    free(c);
}

static int ble_create(const tbgw_host *h, const json_t *cfg, void **self, tbgw_err *err) {
    const json_t *devs = json_object_get(cfg, "devices");
    if (devs && !json_is_array(devs)) return tbgw_err_set(err, TBGW_EINVAL, "devices: expected a list");
    const json_t *ad = json_object_get(cfg, "adapter");
    if (ad && !json_is_string(ad))
        return tbgw_err_set(err, TBGW_EINVAL, "adapter: expected \"hci0\" or an address");
    bc *c = calloc(1, sizeof *c);
    if (!c || tbgw_ble_conv_init(&c->conv) != 0) {
        free(c);
        return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    }
    c->h = h;
    c->cfg = json_deep_copy(cfg);
    c->adapter_want = json_string_value(json_object_get(c->cfg, "adapter"));
    c->scan_period_ms = num(cfg, "scannerPollPeriod", 5000);
    if (c->scan_period_ms < 100) c->scan_period_ms = 100;
    c->show_map = json_is_true(json_object_get(cfg, "showMap"));
    c->scan_name = json_string_value(json_object_get(json_object_get(c->cfg, "scanner"), "deviceName"));
    devs = json_object_get(c->cfg, "devices");
    c->devs = calloc(json_array_size(devs) + 1, sizeof *c->devs);
    if (!c->devs) {
        ble_destroy(c);
        return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    }
    size_t i;
    const json_t *jd;
    json_array_foreach(devs, i, jd) {
        tbgw_err derr = {0};
        bdev *d = &c->devs[c->n_devs];
        char field[96] = "devices";
        if (dev_parse(c, jd, i, d, field, sizeof field, &derr) != 0) {
            c->h->config_warning(c->h, field, derr.msg);
            dev_free(d);
            memset(d, 0, sizeof *d);
            continue;
        }
        c->n_devs++;
    }
    *self = c;
    return 0;
}

static void ble_stop(void *self) {
    ((bc *)self)->stop = 1;
}

/* ---- events ---- */

static void emit(bc *c, tbgw_converted *rec) {
    if (tbgw_converted_count(rec) > 0) {
        c->h->stat_add(c->h, TBGW_STAT_CONV_PROCESSED, 1);
        c->h->emit(c->h, rec);
    } else {
        tbgw_converted_free(rec);
    }
}

static void add(bc *c, bdev *d, tbgw_converted *rec, const bitem *it, const uint8_t *p, size_t n) {
    tbgw_err err = {0};
    if (tbgw_ble_add(&c->conv, rec, it, p, n, &err) != 0) {
        c->h->stat_add(c->h, TBGW_STAT_CONVERTER_ERRORS, 1);
        TBGW_ERRORF(c->h->conv_log, "%s: %s; value skipped", d->name, err.msg);
    }
}

void ble_on_value(bc *c, bdev *d, const bchar *ch, const uint8_t *p, size_t n) {
    c->h->stat_add(c->h, TBGW_STAT_MSGS_RECEIVED, 1);
    c->h->stat_add(c->h, TBGW_STAT_BYTES_RECEIVED, n);
    tbgw_converted *rec = tbgw_converted_new(d->name, d->type);
    if (!rec) return;
    for (size_t i = 0; i < d->n_items; i++)
        if (d->items[i].notify && !d->items[i].adv && strcmp(d->items[i].uuid, ch->uuid) == 0)
            add(c, d, rec, &d->items[i], p, n);
    emit(c, rec);
}

void ble_on_seen(bc *c, bdev *d) {
    TBGW_INFOF(c->h->log, "%s (%s) seen as %s", d->name, d->mac, d->path);
    d->next_connect = tbgw_mono_ms(); /* as soon as it is seen */
    d->next_poll = d->has_chars ? d->next_poll : tbgw_mono_ms();
    d->failures = 0;
}

void ble_on_gone(bc *c, bdev *d) {
    TBGW_WARNF(c->h->log, "%s (%s) went away", d->name, d->mac);
    ble_forget(d);
}

void ble_forget(bdev *d) {
    for (size_t i = 0; i < d->n_chars; i++) free(d->chars[i].path);
    free(d->chars);
    d->chars = NULL;
    d->n_chars = 0;
    free(d->path);
    d->path = NULL;
    ble_dev_reset(d);
}

void ble_on_disconnected(bc *c, bdev *d) {
    TBGW_WARNF(c->h->log, "%s (%s) disconnected; reconnecting", d->name, d->mac);
    ble_dev_reset(d);
    d->next_connect = tbgw_mono_ms() + 1000 + d->retry_ms;
}

void ble_gatt_map(bdev *d, tbgw_buf *out) {
    for (size_t i = 0; i < d->n_chars; i++)
        tbgw_buf_printf(out, "%sCharacteristic %s (%s) [%s]", i ? "\n" : "", d->chars[i].uuid,
                        d->chars[i].path, d->chars[i].flags);
}

/* ---- polling ---- */

static void notify_done(bc *c, bdev *d, const ble_call *k, sd_bus_message *reply, const char *error) {
    (void)reply;
    const char *key = k->key;
    bchar *ch = ble_char_at(d, key);
    if (!error) return;
    if (ch) ch->notifying = 0;
    TBGW_ERRORF(c->h->log, "%s: StartNotify %s: %s", d->name, ch ? ch->uuid : key, error);
}

/* StartNotify once per characteristic that notify items name. */
static void subscribe(bc *c, bdev *d) {
    for (size_t i = 0; i < d->n_items; i++) {
        bitem *it = &d->items[i];
        bchar *ch = it->notify && !it->adv ? ble_char(d, it->uuid) : NULL;
        if (!ch || ch->notifying) continue;
        ch->notifying = 1;
        ble_call k = {0};
        snprintf(k.key, sizeof k.key, "%s", ch->path);
        if (ble_call_async(c, d, ch->path, BLE_CHAR_IF, "StartNotify", notify_done, &k, NULL) < 0)
            ch->notifying = 0;
    }
}

static void adv_items(bc *c, bdev *d, tbgw_converted *rec) {
    if (!d->has_mfr) return;
    for (size_t i = 0; i < d->n_items; i++)
        if (d->items[i].adv) add(c, d, rec, &d->items[i], d->mfr, d->mfr_len);
}

void ble_dev_reset(bdev *d) {
    d->gen++;
    d->connected = d->connecting = 0;
    d->pending = 0;
    tbgw_converted_free(d->batch);
    d->batch = NULL;
    for (size_t i = 0; i < d->n_chars; i++) d->chars[i].notifying = 0;
}

static void poll_finish(bc *c, bdev *d) {
    tbgw_converted *rec = d->batch;
    d->batch = NULL;
    adv_items(c, d, rec);
    subscribe(c, d);
    emit(c, rec);
}

static int soft_error(const char *why) {
    return strstr(why, "not found") || strstr(why, "not permitted") || strstr(why, "Not permitted") ||
           strstr(why, "not supported") || strstr(why, "Not supported");
}

static void read_done(bc *c, bdev *d, const ble_call *k, sd_bus_message *reply, const char *error) {
    const bitem *it = k->arg;
    const void *p = NULL;
    size_t n = 0;
    if (!error && sd_bus_message_read_array(reply, 'y', &p, &n) < 0) error = "malformed ReadValue reply";
    if (error) {
        TBGW_ERRORF(c->h->log, "%s: reading %s: %s", d->name, it->uuid, error);
        if (!soft_error(error)) { /* anything else: reconnect */
            ble_disconnect(c, d);
            d->next_connect = tbgw_mono_ms() + 1000 + d->retry_ms;
            return;
        }
    } else {
        c->h->stat_add(c->h, TBGW_STAT_MSGS_RECEIVED, 1);
        c->h->stat_add(c->h, TBGW_STAT_BYTES_RECEIVED, n);
        add(c, d, d->batch, it, p, n);
    }
    if (--d->pending == 0) poll_finish(c, d);
}

/* Starts the reads of one poll; the values go up together when the last one is answered. */
static void poll_dev(bc *c, bdev *d) {
    if (d->pending) return; /* the previous poll is still being answered */
    d->batch = tbgw_converted_new(d->name, d->type);
    if (!d->batch) return;
    for (size_t i = 0; i < d->n_items; i++) {
        bitem *it = &d->items[i];
        if (it->notify || it->adv) continue;
        bchar *ch = ble_char(d, it->uuid);
        if (!ch) {
            TBGW_DEBUGF(c->h->log, "%s: characteristic %s not found", d->name, it->uuid);
            continue;
        }
        ble_call k = {.arg = it};
        if (ble_call_async(c, d, ch->path, BLE_CHAR_IF, "ReadValue", read_done, &k, "a{sv}", 0) >= 0)
            d->pending++;
    }
    if (!d->pending) poll_finish(c, d);
}

static void connect_done(bc *c, bdev *d, const ble_call *k, sd_bus_message *reply, const char *error) {
    (void)k, (void)reply;
    int64_t now = tbgw_mono_ms();
    d->connecting = 0;
    if (error) {
        d->failures++;
        d->next_connect = now + 1000 + d->retry_ms;
        if (d->connect_retry > 0 && d->failures % d->connect_retry == 0) d->next_connect += d->wait_after_ms;
        TBGW_ERRORF(c->h->log, "%s (%s): connect failed (%d): %s", d->name, d->mac, d->failures, error);
        return;
    }
    d->failures = 0;
    d->connected = 1;
    ble_bus_refresh(c);
    TBGW_INFOF(c->h->log, "%s (%s) connected", d->name, d->mac);
    c->h->set_state(c->h, TBGW_CONN_CONNECTED, NULL);
    if (d->show_map) {
        tbgw_buf m;
        tbgw_buf_init(&m);
        ble_gatt_map(d, &m);
        TBGW_INFOF(c->h->log, "%s GATT map:\n%s", d->name, m.len ? tbgw_buf_cstr(&m) : "(empty)");
        tbgw_buf_free(&m);
    }
    subscribe(c, d);
    d->next_poll = now;
}

static void try_connect(bc *c, bdev *d) {
    d->connecting = 1;
    if (ble_call_async(c, d, d->path, BLE_DEVICE_IF, "Connect", connect_done, NULL, NULL) < 0) {
        d->connecting = 0;
        d->next_connect = tbgw_mono_ms() + 1000 + d->retry_ms;
    }
}

/* Due work of every device; returns when the next is due (monotonic ms). */
static int64_t min64(int64_t a, int64_t b) {
    return a < b ? a : b;
}

/* Due work of every device; returns when the next is due (monotonic ms, at most 1 s ahead). */
static int64_t tick(bc *c) {
    int64_t now = tbgw_mono_ms(), due = now + 1000;
    for (size_t i = 0; i < c->n_devs && !c->stop; i++) {
        bdev *d = &c->devs[i];
        if (!d->path) continue;
        if (!d->has_chars) { /* advertisement only: never connects */
            if (now >= d->next_poll) {
                d->next_poll = now + d->poll_ms;
                tbgw_converted *rec = tbgw_converted_new(d->name, d->type);
                if (rec) adv_items(c, d, rec), emit(c, rec);
            }
            due = min64(due, d->next_poll);
            continue;
        }
        if (!d->connected && !d->connecting && now >= d->next_connect) try_connect(c, d);
        if (d->connected && now >= d->next_poll) {
            d->next_poll = now + d->poll_ms;
            poll_dev(c, d);
        }
        if (d->connected)
            due = min64(due, d->next_poll);
        else if (!d->connecting)
            due = min64(due, d->next_connect);
    }
    if (now >= c->next_scan) {
        c->next_scan = now + c->scan_period_ms;
        ble_bus_discovery(c);
    }
    return min64(due, c->next_scan);
}

/* Sleeps until BlueZ sends something, downlink work is queued, an sd-bus call times out or the next
 * device work is due; then dispatches the downlink. 1 when the connector should stop. */
static int wait_io(bc *c, int64_t due) {
    struct pollfd p[2] = {{.fd = sd_bus_get_fd(c->bus), .events = (short)sd_bus_get_events(c->bus)},
                          {.fd = c->h->downlink_fd, .events = POLLIN}};
    int64_t ms = due - tbgw_mono_ms();
    uint64_t t;
    if (sd_bus_get_timeout(c->bus, &t) >= 0 && t != UINT64_MAX) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t now_us = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
        ms = min64(ms, t <= now_us ? 0 : (int64_t)((t - now_us + 999) / 1000));
    }
    if (ms < 0) ms = 0;
    if (ms > 1000) ms = 1000;
    poll(p, 2, (int)ms);
    return c->h->dispatch(c->h);
}

static void show_map(bc *c) {
    for (size_t i = 0; i < c->n_devs; i++) {
        bdev *d = &c->devs[i];
        if (d->path && (!c->scan_name || strcmp(c->scan_name, d->name) == 0))
            TBGW_INFOF(c->h->log, "found device %s: %s", d->mac, d->name);
    }
}

static int ble_run(void *self) {
    bc *c = self;
    c->next_open = 0;
    while (!c->stop) {
        if (!c->bus && tbgw_mono_ms() >= c->next_open) {
            if (ble_bus_open(c) < 0) {
                c->next_open = tbgw_mono_ms() + 2000;
                c->h->set_state(c->h, TBGW_CONN_DISCONNECTED, "BlueZ not available");
            } else {
                c->next_scan = tbgw_mono_ms() + c->scan_period_ms;
                if (c->show_map) show_map(c);
            }
        }
        if (c->bus) {
            int r = 0;
            for (int i = 0; i < 256 && (r = sd_bus_process(c->bus, NULL)) > 0; i++) {
            }
            if (r < 0 || c->lost) {
                if (r < 0) TBGW_ERRORF(c->h->log, "D-Bus connection lost: %s", strerror(-r));
                ble_bus_close(c);
                c->next_open = tbgw_mono_ms() + 1000;
                continue;
            }
            int64_t due = tick(c);
            if (c->h->dispatch && c->h->downlink_fd >= 0) {
                if (wait_io(c, due)) break;
                continue;
            }
            sd_bus_wait(c->bus, 50000); /* a host without downlink_fd: 50 ms slices */
        }
        if (c->h->wait(c->h, c->bus ? 0 : 50)) break;
    }
    for (size_t i = 0; c->bus && i < c->n_devs; i++)
        if (c->devs[i].connected) ble_disconnect(c, &c->devs[i]);
    if (c->bus) ble_bus_close(c);
    return 0;
}

const tbgw_connector_ops tbgw_connector_ble = {
    .abi = TBGW_CONNECTOR_ABI,
    .type = "ble",
    .create = ble_create,
    .run = ble_run,
    .stop = ble_stop,
    .destroy = ble_destroy,
    .on_attribute_update = ble_attr_update,
    .on_rpc = ble_rpc,
};
