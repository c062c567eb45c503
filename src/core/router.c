/* Downlink: attribute updates, attribute responses and RPC to the owning connector, exactly one
 * reply per RPC, and the gateway's own RPC methods (spec §1.5, §1.7, §1.8). */
#include <stdlib.h>
#include <string.h>
#include <tbgw/log.h>

#include "core/gateway.h"
#include "core/gateway_int.h"
#include "core/mgmt.h"
#include "platform/tb_codec.h"
#include "util/json.h"
#include "util/time.h"

#define UNKNOWN_DEVICE_WAIT_MS  5000
#define ATTR_REQUEST_TIMEOUT_MS 20000

static void reply_raw(tbgw_gateway *gw, const char *device, int64_t id, const json_t *content, int success) {
    char topic[128];
    char *payload = tb_codec_rpc_reply(device, id, content, success, topic, sizeof topic);
    if (!payload) return;
    if (tbgw_gw_publish(gw, topic, payload, strlen(payload), 1))
        TBGW_WARNF(gw->log, "RPC %lld reply not sent: not connected", (long long)id);
    free(payload);
}

static void reply_error(tbgw_gateway *gw, const char *device, int64_t id, const char *msg, int code) {
    json_t *e = json_pack("{s:s,s:i}", "error", msg, "code", code);
    reply_raw(gw, device, id, e, -1);
    json_decref(e);
}

static pending_rpc *add_pending(tbgw_gateway *gw, const char *device, int64_t id, int64_t timeout_ms) {
    pending_rpc *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->handle = ++gw->next_handle;
    p->device = device ? strdup(device) : NULL;
    p->id = id;
    p->deadline = tbgw_mono_ms() + timeout_ms;
    p->next = gw->rpcs;
    gw->rpcs = p;
    return p;
}

static void pending_free(pending_rpc *p) {
    free(p->device);
    tbgw_dn_free(p->waiting);
    free(p);
}

static pending_rpc *take_pending(tbgw_gateway *gw, uint64_t handle) {
    for (pending_rpc **pp = &gw->rpcs; *pp; pp = &(*pp)->next) {
        if ((*pp)->handle == handle) {
            pending_rpc *p = *pp;
            *pp = p->next;
            return p;
        }
    }
    return NULL;
}

void tbgw_router_rpc_reply(tbgw_gateway *gw, in_item *it) {
    pending_rpc *p = take_pending(gw, it->handle);
    if (!p) {
        TBGW_DEBUGF(gw->log, "late or duplicate RPC reply from connector \"%s\" ignored",
                    it->inst->entry->name);
        return;
    }
    reply_raw(gw, p->device, p->id, it->json, it->success);
    pending_free(p);
}

static dn_item *dn_new(dn_kind k, const char *device) {
    dn_item *d = calloc(1, sizeof *d);
    if (d) {
        d->kind = k;
        d->device = device ? strdup(device) : NULL;
    }
    return d;
}

/* ---- device RPC --------------------------------------------------------------------------- */

static void device_rpc(tbgw_gateway *gw, tb_down *m) {
    const char *local = tbgw_devices_local_name(&gw->devs, m->device);
    tbgw_device *d = tbgw_devices_get(&gw->devs, local);
    dn_item *it = dn_new(DN_RPC, local);
    if (!it) return;
    it->id = m->id;
    it->method = strdup(m->method);
    it->params = m->params ? json_incref(m->params) : NULL;
    it->timeout_ms = gw->cfg->device_rpc_timeout_ms;
    conn_inst *owner = d ? d->owner : NULL;
    pending_rpc *p =
        add_pending(gw, m->device, m->id, owner ? gw->cfg->device_rpc_timeout_ms : UNKNOWN_DEVICE_WAIT_MS);
    if (!p) {
        tbgw_dn_free(it);
        return;
    }
    it->handle = p->handle;
    if (owner) {
        TBGW_DEBUGF(gw->log, "RPC %lld \"%s\" for \"%s\" -> connector \"%s\"", (long long)m->id, m->method,
                    local, owner->entry->name);
        tbgw_conn_post(owner, it);
    } else {
        p->waiting = it; /* the device may show up within a few seconds */
    }
}

void tbgw_router_dispatch_waiting(tbgw_gateway *gw, const char *device) {
    for (pending_rpc *p = gw->rpcs; p; p = p->next) {
        if (!p->waiting || strcmp(p->waiting->device, device) != 0) continue;
        tbgw_device *d = tbgw_devices_get(&gw->devs, device);
        if (!d || !d->owner) continue;
        p->deadline = tbgw_mono_ms() + gw->cfg->device_rpc_timeout_ms;
        tbgw_conn_post(d->owner, p->waiting);
        p->waiting = NULL;
    }
}

/* ---- gateway RPC (own device) ------------------------------------------------------------- */

static json_t *gw_stats(tbgw_gateway *gw) {
    json_t *o = json_pack("{s:I,s:I}", "eventsProduced", (json_int_t)gw->cnt.events_produced, "eventsSent",
                          (json_int_t)gw->cnt.events_sent);
    for (size_t i = 0; i < gw->n_conns; i++) {
        conn_inst *ci = gw->conns[i];
        if (!ci) continue;
        char name[200], key[260];
        size_t k = 0;
        for (const char *s = ci->entry->name; *s && k < sizeof name - 1; s++)
            if (*s != ' ') name[k++] = *s;
        name[k] = 0;
        snprintf(key, sizeof key, "%sEventsProduced", name);
        json_object_set_new(o, key, json_integer((json_int_t)ci->storage_pushed));
        snprintf(key, sizeof key, "%sEventsSent", name);
        json_object_set_new(o, key, json_integer((json_int_t)ci->events_sent));
    }
    return o;
}

static json_t *gw_devices(tbgw_gateway *gw) {
    json_t *resp = json_object();
    const char *k;
    void *v;
    for (size_t i = 0; (i = tbgw_hmap_next(&gw->devs.by_name, i, &k, &v)) != 0;) {
        tbgw_device *d = v;
        json_object_set_new(resp, tbgw_devices_platform_name(&gw->devs, k),
                            json_string(d->connector_name ? d->connector_name : ""));
    }
    return json_pack("{s:i,s:o}", "code", 200, "resp", resp);
}

static json_t *gw_method(tbgw_gateway *gw, const char *name, const json_t *params) {
    if (strcmp(name, "ping") == 0) return json_pack("{s:i,s:s}", "code", 200, "resp", "pong");
    if (strcmp(name, "stats") == 0) return gw_stats(gw);
    if (strcmp(name, "devices") == 0) return gw_devices(gw);
    if (strcmp(name, "version") == 0)
        return json_pack("{s:i,s:{s:s,s:s}}", "code", 200, "resp", "current_version", TBGW_VERSION,
                         "implementation", "tbgw");
    if (strcmp(name, "device_renamed") == 0) {
        if (!json_is_object(params) || json_object_size(params) == 0)
            return json_pack("{s:s,s:i}", "error", "params must be {\"<old name>\":\"<new name>\"}", "code",
                             400);
        const char *old;
        json_t *nv;
        json_object_foreach((json_t *)params, old, nv) {
            if (!json_is_string(nv)) continue;
            if (!gw->cfg->handle_device_renaming) {
                TBGW_INFOF(gw->log, "device rename %s -> %s ignored (handleDeviceRenaming is false)", old,
                           json_string_value(nv));
                continue;
            }
            tbgw_devices_rename(&gw->devs, old, json_string_value(nv));
            TBGW_INFOF(gw->log, "device \"%s\" renamed to \"%s\"", old, json_string_value(nv));
        }
        return json_pack("{s:b}", "success", 1);
    }
    if (strcmp(name, "device_deleted") == 0) {
        const char *dev = json_string_value(params);
        if (!dev) return json_pack("{s:s,s:i}", "error", "params must be the device name", "code", 400);
        tbgw_devices_delete(&gw->devs, dev);
        TBGW_INFOF(gw->log, "device \"%s\" deleted on the platform; forgotten", dev);
        return json_pack("{s:b}", "success", 1);
    }
    if (strcmp(name, "restart") == 0) {
        tbgw_gw_request_stop(gw, 1);
        return json_pack("{s:b}", "success", 1);
    }
    return NULL;
}

static void own_rpc(tbgw_gateway *gw, tb_down *m) {
    const char *method = m->method;
    if (tbgw_mgmt_rpc(gw, m->id, method, m->params)) return; /* reboot, remote shell */
    const char *us = strchr(method, '_');
    size_t plen = us ? (size_t)(us - method) : strlen(method);
    if (plen == 7 && strncmp(method, "gateway", 7) == 0) {
        json_t *r = gw_method(gw, us ? us + 1 : "", m->params);
        if (!r) {
            reply_error(gw, NULL, m->id, "Method not found", 404);
            return;
        }
        reply_raw(gw, NULL, m->id, r, -1);
        json_decref(r);
        return;
    }
    /* connector RPC: "<type>_<method>" to every connector of that type; the first reply wins.
     * Matching on the whole type (not just the text before the first "_") lets types that
     * contain "_" (custom connectors) receive their RPCs too. */
    pending_rpc *p = NULL;
    for (size_t i = 0; i < gw->n_conns; i++) {
        conn_inst *ci = gw->conns[i];
        size_t tl = ci ? strlen(ci->entry->type) : 0;
        if (!ci || strncmp(ci->entry->type, method, tl) != 0 || method[tl] != '_') continue;
        us = method + tl;
        if (!p && !(p = add_pending(gw, NULL, m->id, gw->cfg->device_rpc_timeout_ms))) return;
        dn_item *it = dn_new(DN_RPC, NULL);
        if (!it) continue;
        it->handle = p->handle;
        it->id = m->id;
        it->method = strdup(us ? us + 1 : "");
        it->params = m->params ? json_incref(m->params) : NULL;
        it->timeout_ms = gw->cfg->device_rpc_timeout_ms;
        tbgw_conn_post(ci, it);
    }
    if (!p) {
        char msg[200];
        snprintf(msg, sizeof msg, "%.*s - connector not found in available connectors.", (int)plen, method);
        reply_error(gw, NULL, m->id, msg, 404);
    }
}

/* ---- attributes --------------------------------------------------------------------------- */

static void attr_update(tbgw_gateway *gw, tb_down *m) {
    const char *local = tbgw_devices_local_name(&gw->devs, m->device);
    tbgw_device *d = tbgw_devices_get(&gw->devs, local);
    if (!d || !d->owner) {
        TBGW_DEBUGF(gw->log, "attribute update for unknown device \"%s\" ignored", m->device);
        return;
    }
    dn_item *it = dn_new(DN_ATTR_UPDATE, local);
    if (!it) return;
    it->data = json_incref(m->data);
    tbgw_conn_post(d->owner, it);
}

void tbgw_router_attr_request(tbgw_gateway *gw, in_item *it) {
    pending_attr *p = calloc(1, sizeof *p);
    if (!p) return;
    p->id = ++gw->attr_req_counter;
    p->inst = it->inst;
    p->cookie = it->cookie;
    p->device = strdup(it->device);
    p->keys = json_incref(it->json);
    p->deadline = tbgw_mono_ms() + ATTR_REQUEST_TIMEOUT_MS;
    p->next = gw->attrs;
    gw->attrs = p;
    json_t *req = json_pack("{s:O,s:s,s:b,s:I}", "keys", it->json, "device",
                            tbgw_devices_platform_name(&gw->devs, it->device), "client", it->client, "id",
                            (json_int_t)p->id);
    char *s = req ? tbgw_json_dumps(req, 0) : NULL;
    json_decref(req);
    if (s && tbgw_gw_publish(gw, TB_TOPIC_GW_ATTR_REQUEST, s, strlen(s), 1))
        p->deadline = 0; /* not connected: answer "no data" on the next tick */
    free(s);
}

static void answer_attr(tbgw_gateway *gw, pending_attr *p, json_t *data) {
    dn_item *it = dn_new(DN_ATTR_RESPONSE, p->device);
    if (it) {
        it->cookie = p->cookie;
        it->data = data;
        tbgw_conn_post(p->inst, it);
    } else {
        json_decref(data);
    }
    free(p->device);
    json_decref(p->keys);
    free(p);
}

static void attr_response(tbgw_gateway *gw, tb_down *m) {
    for (pending_attr **pp = &gw->attrs; *pp; pp = &(*pp)->next) {
        pending_attr *p = *pp;
        if (p->id != m->id) continue;
        *pp = p->next;
        json_t *data;
        if (json_is_object(json_object_get(m->root, "values"))) {
            data = json_incref(json_object_get(m->root, "values"));
        } else {
            data = json_object();
            const char *key = json_string_value(json_array_get(p->keys, 0));
            if (key && m->data) json_object_set(data, key, m->data);
        }
        answer_attr(gw, p, data);
        return;
    }
    TBGW_DEBUGF(gw->log, "attribute response %lld without a request ignored", (long long)m->id);
}

/* ---- entry points ------------------------------------------------------------------------- */

void tbgw_router_on_message(tbgw_gateway *gw, const char *topic, const void *payload, size_t len) {
    tb_down m;
    char err[256];
    if (tb_codec_parse_down(topic, payload, len, &m, err, sizeof err)) {
        gw->cnt.downlink_errors++;
        TBGW_WARNF(gw->log, "ignoring downlink message: %s", err);
        if (m.kind == TB_DOWN_GW_RPC && m.device && json_is_object(m.data) &&
            json_is_integer(json_object_get(m.data, "id")))
            reply_error(gw, m.device, json_integer_value(json_object_get(m.data, "id")), err, 400);
        else if (m.kind == TB_DOWN_ME_RPC_REQUEST && m.topic_id > 0)
            reply_error(gw, NULL, m.topic_id, err, 400);
        tb_down_free(&m);
        return;
    }
    switch (m.kind) {
    case TB_DOWN_GW_ATTR_UPDATE:
        attr_update(gw, &m);
        break;
    case TB_DOWN_GW_ATTR_RESPONSE:
        attr_response(gw, &m);
        break;
    case TB_DOWN_GW_RPC:
        device_rpc(gw, &m);
        break;
    case TB_DOWN_ME_RPC_REQUEST:
        own_rpc(gw, &m);
        break;
    case TB_DOWN_ME_RPC_RESPONSE:
        if (gw->limits_req_id && m.topic_id == gw->limits_req_id) tbgw_gw_apply_session_limits(gw, m.root);
        break;
    case TB_DOWN_ME_ATTR_UPDATE:
        tbgw_remote_on_attributes(gw, m.data);
        break;
    case TB_DOWN_ME_ATTR_RESPONSE:
        tbgw_remote_on_attributes(gw, json_object_get(m.data, "shared"));
        break;
    default:
        break;
    }
    tb_down_free(&m);
}

int64_t tbgw_router_next_due(const tbgw_gateway *gw) {
    int64_t due = INT64_MAX;
    for (const pending_rpc *p = gw->rpcs; p; p = p->next)
        if (p->deadline < due) due = p->deadline;
    for (const pending_attr *p = gw->attrs; p; p = p->next)
        if (p->deadline < due) due = p->deadline;
    return due;
}

void tbgw_router_tick(tbgw_gateway *gw, int64_t now) {
    for (pending_rpc **pp = &gw->rpcs; *pp;) {
        pending_rpc *p = *pp;
        if (now < p->deadline) {
            pp = &p->next;
            continue;
        }
        *pp = p->next;
        TBGW_WARNF(gw->log, "RPC %lld for %s timed out", (long long)p->id,
                   p->device ? p->device : "the gateway");
        reply_error(gw, p->device, p->id, "Request timeout", 408);
        pending_free(p);
    }
    for (pending_attr **pp = &gw->attrs; *pp;) {
        pending_attr *p = *pp;
        if (now < p->deadline) {
            pp = &p->next;
            continue;
        }
        *pp = p->next;
        TBGW_WARNF(gw->log, "attribute request %lld for \"%s\" got no answer", (long long)p->id, p->device);
        answer_attr(gw, p, NULL);
    }
}

void tbgw_router_session_lost(tbgw_gateway *gw) {
    gw->attr_req_counter = 0;
    while (gw->attrs) {
        pending_attr *p = gw->attrs;
        gw->attrs = p->next;
        answer_attr(gw, p, NULL);
    }
}

void tbgw_router_free(tbgw_gateway *gw) {
    while (gw->rpcs) {
        pending_rpc *p = gw->rpcs;
        gw->rpcs = p->next;
        pending_free(p);
    }
    while (gw->attrs) {
        pending_attr *p = gw->attrs;
        gw->attrs = p->next;
        free(p->device);
        json_decref(p->keys);
        free(p);
    }
}
