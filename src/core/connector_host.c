/* One thread per connector instance, supervised: a connector whose run() fails is restarted
 * with capped full-jitter backoff. The host vtable is a connector's only way out. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <tbgw/log.h>

#include "core/gateway_int.h"
#include "core/registry.h"
#include "util/time.h"
#include "util/wakefd.h"

static conn_inst *CI(const tbgw_host *h) {
    return (conn_inst *)h->core;
}

void tbgw_in_free(in_item *it) {
    if (!it) return;
    tbgw_converted_free(it->data);
    free(it->device);
    free(it->type);
    json_decref(it->json);
    free(it);
}

void tbgw_dn_free(dn_item *it) {
    if (!it) return;
    free(it->device);
    free(it->method);
    json_decref(it->data);
    json_decref(it->params);
    free(it);
}

static in_item *in_new(const tbgw_host *h, in_kind k) {
    in_item *it = calloc(1, sizeof *it);
    if (it) {
        it->kind = k;
        it->inst = CI(h);
    }
    return it;
}

/* keep: a refused chain goes back to the caller (offer) instead of being dropped (emit) */
static int push_data(const tbgw_host *h, tbgw_converted *chain, int keep) {
    conn_inst *ci = CI(h);
    if (!chain) return 0;
    in_item *it = in_new(h, IN_DATA);
    if (!it) {
        if (keep) return TBGW_EAGAIN;
        tbgw_converted_free(chain);
        return TBGW_ENOMEM;
    }
    it->data = chain;
    for (tbgw_converted *c = chain; c; c = c->next) it->weight += tbgw_converted_count(c);
    size_t n = it->weight;
    int rc = tbgw_gw_ingress_push(ci->gw, it, keep);
    if (rc == TBGW_EAGAIN && keep) return rc;
    if (rc) __atomic_add_fetch(&ci->stats[TBGW_STAT_CONV_DROPPED], n, __ATOMIC_RELAXED);
    return rc;
}

static int h_emit(const tbgw_host *h, tbgw_converted *chain) {
    return push_data(h, chain, 0);
}

static int h_offer(const tbgw_host *h, tbgw_converted *chain) {
    return push_data(h, chain, 1);
}

static int h_device_connected(const tbgw_host *h, const char *device, const char *type) {
    if (!device) return TBGW_EINVAL;
    in_item *it = in_new(h, IN_DEV_CONNECT);
    if (!it) return TBGW_ENOMEM;
    it->device = strdup(device);
    it->type = strdup(type && *type ? type : "default");
    return tbgw_gw_ingress_push(CI(h)->gw, it, 0);
}

static int h_device_disconnected(const tbgw_host *h, const char *device) {
    if (!device) return TBGW_EINVAL;
    in_item *it = in_new(h, IN_DEV_DISCONNECT);
    if (!it) return TBGW_ENOMEM;
    it->device = strdup(device);
    return tbgw_gw_ingress_push(CI(h)->gw, it, 0);
}

static int h_rpc_reply(const tbgw_host *h, uint64_t handle, json_t *content, int success) {
    in_item *it = in_new(h, IN_RPC_REPLY);
    if (!it) {
        json_decref(content);
        return TBGW_ENOMEM;
    }
    it->handle = handle;
    it->json = content;
    it->success = success;
    return tbgw_gw_ingress_push(CI(h)->gw, it, 0);
}

static int h_request_attributes(const tbgw_host *h, const char *device, const char *const *keys,
                                size_t n_keys, int client_scope, uint64_t cookie) {
    if (!device) return TBGW_EINVAL;
    in_item *it = in_new(h, IN_ATTR_REQUEST);
    if (!it) return TBGW_ENOMEM;
    it->device = strdup(device);
    it->json = json_array();
    for (size_t i = 0; i < n_keys; i++) json_array_append_new(it->json, json_string(keys[i]));
    it->client = client_scope;
    it->cookie = cookie;
    return tbgw_gw_ingress_push(CI(h)->gw, it, 0);
}

static void dispatch(conn_inst *ci, dn_item *it) {
    const tbgw_connector_ops *ops = ci->ops;
    switch (it->kind) {
    case DN_ATTR_UPDATE:
        if (ops->on_attribute_update) {
            tbgw_attr_update u = {it->device, it->data};
            ops->on_attribute_update(ci->self, &u);
        }
        break;
    case DN_RPC:
        if (ops->on_rpc) {
            tbgw_rpc_req r = {it->handle, it->device, it->id, it->method, it->params, it->timeout_ms};
            ops->on_rpc(ci->self, &r);
        } else {
            json_t *e = json_pack("{s:s}", "error", "this connector does not support RPC");
            h_rpc_reply(&ci->host, it->handle, e, -1);
        }
        break;
    case DN_ATTR_RESPONSE:
        if (ops->on_attribute_response)
            ops->on_attribute_response(ci->self, it->cookie, it->device, it->data);
        break;
    }
    tbgw_dn_free(it);
}

static void abs_deadline(struct timespec *ts, int ms) {
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Makes downlink_fd readable (under ci->mu). One write per batch: nothing is written while the
 * descriptor is still readable from an earlier one. */
static void arm_locked(conn_inst *ci) {
    if (ci->efd_armed || ci->efd < 0) return;
    tbgw_wakefd_kick(ci->efd);
    ci->efd_armed = 1;
}

static int h_dispatch(const tbgw_host *h) {
    conn_inst *ci = CI(h);
    pthread_mutex_lock(&ci->mu);
    dn_item *list = ci->inbox_head;
    ci->inbox_head = ci->inbox_tail = NULL;
    ci->inbox_len = 0;
    int stop = ci->stop;
    if (ci->efd_armed && !stop) { /* a stop keeps the descriptor readable */
        tbgw_wakefd_drain(ci->efd);
        ci->efd_armed = 0;
    }
    pthread_mutex_unlock(&ci->mu);
    while (list) {
        dn_item *next = list->next;
        if (stop)
            tbgw_dn_free(list);
        else
            dispatch(ci, list);
        list = next;
    }
    return stop;
}

static int h_wait(const tbgw_host *h, int timeout_ms) {
    if (timeout_ms > 0) tbgw_wakefd_wait(CI(h)->efd, timeout_ms);
    return h_dispatch(h);
}

static void h_stat_add(const tbgw_host *h, tbgw_stat stat, uint64_t n) {
    if ((unsigned)stat < TBGW_STAT__COUNT) __atomic_add_fetch(&CI(h)->stats[stat], n, __ATOMIC_RELAXED);
}

static void h_config_warning(const tbgw_host *h, const char *dotted, const char *msg) {
    conn_inst *ci = CI(h);
    tbgw_conn_entry *e = ci->entry;
    tbgw_err err = {0, ""};
    tbgw_doc_error(e ? e->doc : NULL, &err, dotted, "%s", msg ? msg : "invalid entry");
    if (e && e->check_out) {
        fprintf(e->check_out, "warning: %s\n", err.msg);
        e->check_warnings++;
        return;
    }
    TBGW_WARNF(h->log, "%s; the entry is skipped", err.msg);
    h_stat_add(h, TBGW_STAT_CONNECTOR_ERRORS, 1);
}

static void h_set_state(const tbgw_host *h, tbgw_conn_state state, const char *error_text) {
    conn_inst *ci = CI(h);
    pthread_mutex_lock(&ci->mu);
    ci->state = state;
    if (error_text) snprintf(ci->last_error, sizeof ci->last_error, "%s", error_text);
    pthread_mutex_unlock(&ci->mu);
}

const char *tbgw_conn_state_name(tbgw_conn_state st) {
    static const char *const names[] = {"STOPPED", "STARTING", "CONNECTED", "DISCONNECTED", "FAILED"};
    return (unsigned)st < sizeof names / sizeof names[0] ? names[st] : "UNKNOWN";
}

void tbgw_conn_state_get(conn_inst *ci, tbgw_conn_state *st, char *err, size_t errlen) {
    pthread_mutex_lock(&ci->mu);
    *st = ci->state;
    if (err) snprintf(err, errlen, "%s", ci->last_error);
    pthread_mutex_unlock(&ci->mu);
}

void tbgw_conn_post(conn_inst *ci, dn_item *it) {
    pthread_mutex_lock(&ci->mu);
    if (ci->stop) {
        pthread_mutex_unlock(&ci->mu);
        tbgw_dn_free(it);
        return;
    }
    it->next = NULL;
    if (ci->inbox_tail)
        ci->inbox_tail->next = it;
    else
        ci->inbox_head = it;
    ci->inbox_tail = it;
    ci->inbox_len++;
    arm_locked(ci);
    pthread_mutex_unlock(&ci->mu);
}

static void *conn_thread(void *arg) {
    conn_inst *ci = arg;
    char tname[16]; /* the connector's name, as the reference names its connector threads */
    snprintf(tname, sizeof tname, "%s", ci->entry->name);
    pthread_setname_np(pthread_self(), tname);
    tbgw_backoff bo;
    tbgw_backoff_init(&bo, 1000, 60000);
    for (;;) {
        h_set_state(&ci->host, TBGW_CONN_STARTING, NULL);
        int64_t started = tbgw_mono_ms();
        int rc = ci->ops->run(ci->self);
        pthread_mutex_lock(&ci->mu);
        int stop = ci->stop;
        pthread_mutex_unlock(&ci->mu);
        if (stop) break;
        char msg[160];
        snprintf(msg, sizeof msg, "connector stopped unexpectedly (%s)", rc ? tbgw_strerror(rc) : "returned");
        h_set_state(&ci->host, TBGW_CONN_FAILED, msg);
        if (tbgw_mono_ms() - started > 60000) tbgw_backoff_reset(&bo);
        int64_t d = tbgw_backoff_next(&bo);
        ci->restarts++;
        TBGW_ERRORF(ci->host.log, "%s; restarting in %lld ms", msg, (long long)d);
        struct timespec dl;
        abs_deadline(&dl, (int)d);
        pthread_mutex_lock(&ci->mu);
        while (!ci->stop)
            if (pthread_cond_timedwait(&ci->cv, &ci->mu, &dl) == ETIMEDOUT) break;
        stop = ci->stop;
        pthread_mutex_unlock(&ci->mu);
        if (stop) break;
    }
    h_set_state(&ci->host, TBGW_CONN_STOPPED, NULL);
    pthread_mutex_lock(&ci->mu);
    ci->finished = 1;
    pthread_cond_broadcast(&ci->cv);
    pthread_mutex_unlock(&ci->mu);
    return NULL;
}

conn_inst *tbgw_conn_new(struct tbgw_gateway *gw, tbgw_conn_entry *e, const char *config_dir, tbgw_err *err) {
    const tbgw_connector_ops *ops =
        e->plugin ? tbgw_registry_load_plugin(e->plugin, err) : tbgw_registry_get(e->type, err);
    if (!ops) {
        if (!e->plugin && err) {
            char why[sizeof err->msg];
            snprintf(why, sizeof why, "%s", err->msg);
            tbgw_err_set(err, err->code, "connector \"%s\": %s", e->name, why);
        }
        return NULL;
    }
    conn_inst *ci = calloc(1, sizeof *ci);
    if (!ci) {
        tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
        return NULL;
    }
    ci->gw = gw;
    ci->ops = ops;
    ci->entry = e;
    pthread_mutex_init(&ci->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&ci->cv, &ca);
    pthread_condattr_destroy(&ca);
    ci->efd = tbgw_wakefd_new();
    if (ci->efd < 0) {
        tbgw_err_set(err, TBGW_EIO, "connector \"%s\": eventfd: %s", e->name, strerror(errno));
        tbgw_conn_free(ci);
        return NULL;
    }
    char lname[128];
    tbgw_host *h = &ci->host;
    h->abi = TBGW_CONNECTOR_ABI;
    h->name = e->name;
    h->type = e->type;
    h->id = e->id;
    h->config_dir = config_dir;
    snprintf(lname, sizeof lname, "connector.%s", e->name);
    h->log = tbgw_logger_get(lname);
    snprintf(lname, sizeof lname, "converter.%s", e->name);
    h->conv_log = tbgw_logger_get(lname);
    h->emit = h_emit;
    h->device_connected = h_device_connected;
    h->device_disconnected = h_device_disconnected;
    h->rpc_reply = h_rpc_reply;
    h->request_attributes = h_request_attributes;
    h->wait = h_wait;
    h->stat_add = h_stat_add;
    h->set_state = h_set_state;
    h->config_warning = h_config_warning;
    h->offer = h_offer;
    h->core = ci;
    h->downlink_fd = ci->efd;
    h->dispatch = h_dispatch;
    int rc = ops->create(h, e->doc->root, &ci->self, err);
    if (rc) {
        if (err->code == 0) tbgw_err_set(err, rc, "invalid configuration");
        tbgw_doc_prefix_error(e->doc, err);
        tbgw_conn_free(ci);
        return NULL;
    }
    /* the parsed configuration stays; its source text is needed again only for a later warning's
     * position (re-read then). A connector that copied what it keeps leaves the tree to the core:
     * kept packed (the remote configuration reads it back with tbgw_doc_tree) */
    if (!e->check_out) {
        tbgw_doc_release_text(e->doc);
        if (ops->flags & TBGW_CONNECTOR_COPIES_CONFIG) tbgw_doc_pack(e->doc);
    }
    return ci;
}

int tbgw_conn_start(conn_inst *ci) {
    if (pthread_create(&ci->thread, NULL, conn_thread, ci)) return TBGW_ENOMEM;
    ci->thread_started = 1;
    return 0;
}

int tbgw_conn_stop(conn_inst *ci, int timeout_ms) {
    pthread_mutex_lock(&ci->mu); /* final: downlink_fd stays readable, every dispatch() answers 1 */
    ci->stop = 1;
    arm_locked(ci);
    pthread_cond_broadcast(&ci->cv);
    pthread_mutex_unlock(&ci->mu);
    if (!ci->thread_started) return 0;
    if (ci->ops->stop) ci->ops->stop(ci->self);
    struct timespec dl;
    abs_deadline(&dl, timeout_ms);
    pthread_mutex_lock(&ci->mu);
    while (!ci->finished)
        if (pthread_cond_timedwait(&ci->cv, &ci->mu, &dl) == ETIMEDOUT) break;
    int finished = ci->finished;
    pthread_mutex_unlock(&ci->mu);
    if (!finished) {
        TBGW_ERRORF(ci->host.log, "connector did not stop within %d ms; abandoning its thread", timeout_ms);
        pthread_detach(ci->thread);
        ci->thread_started = 0;
        return TBGW_ETIMEDOUT;
    }
    pthread_join(ci->thread, NULL);
    ci->thread_started = 0;
    return 0;
}

void tbgw_conn_free(conn_inst *ci) {
    if (!ci) return;
    if (ci->thread_started) return; /* a thread that never stopped still uses it */
    if (ci->self && ci->ops->destroy) ci->ops->destroy(ci->self);
    dn_item *it = ci->inbox_head;
    while (it) {
        dn_item *n = it->next;
        tbgw_dn_free(it);
        it = n;
    }
    pthread_mutex_destroy(&ci->mu);
    pthread_cond_destroy(&ci->cv);
    if (ci->efd >= 0) close(ci->efd);
    if (ci->owns_entry) {
        tbgw_config_entry_free(ci->entry);
        free(ci->entry);
    }
    free(ci);
}
