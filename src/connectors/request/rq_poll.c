/* Request connector: polling one endpoint (spec §7.5). A poll is one HTTP request on the shared curl
 * multi handle; when its response arrives it is decoded, unpacked (dataUnpackExpression), completed
 * by its sub-requests (all in flight at once) and converted; the records go to the core in one emit.
 * The next poll of an endpoint is due scanPeriod after the start of the last one; a failed poll is
 * retried after a capped backoff (never later than the regular schedule). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "util/json.h"
#include "connectors/request/request.h"
#include "util/time.h"

typedef struct rq_poll {
    rq_conn *c;
    rq_map *m;
    json_t *root;  /* decoded response */
    json_t *data;  /* root or the unpacked part of it (borrowed from root) */
    int pending;   /* sub-requests in flight */
    int64_t recv;  /* wall clock of the main response */
    int64_t start; /* monotonic ms */
} rq_poll;

typedef struct rq_subreq {
    rq_poll *p;
    json_t *item;
    const rq_sub *sub;
} rq_subreq;

/* ------------------------------------------------------------------ emit and bookkeeping */

void rq_emit(rq_conn *c, tbgw_converted *chain) {
    if (!chain) return;
    int rc = c->host->emit(c->host, chain);
    if (rc == TBGW_EAGAIN) {
        if (c->refused++ % 100 == 0)
            TBGW_WARNF(c->host->log, "core saturated: converted data was refused (%llu so far)",
                       (unsigned long long)c->refused);
    } else {
        c->emitted++;
    }
}

static void set_state(rq_conn *c, tbgw_conn_state s, const char *text) {
    if (c->st.state == s && !text) return;
    c->st.state = s;
    snprintf(c->st.last_error, sizeof c->st.last_error, "%s", text ? text : "");
    c->host->set_state(c->host, s, text);
}

static void poll_done(rq_conn *c, rq_map *m, int ok, const char *why) {
    int64_t now = tbgw_mono_ms();
    int64_t regular = m->last_start + m->period_ms;
    m->in_flight = 0;
    m->polls++;
    if (ok) {
        tbgw_backoff_reset(&m->backoff);
        if (!m->last_ok) TBGW_INFOF(c->host->log, "%s answers again", m->url);
        m->last_ok = 1;
        if (c->st.state != TBGW_CONN_CONNECTED) set_state(c, TBGW_CONN_CONNECTED, NULL);
        m->next_due = regular;
    } else {
        m->failures++;
        c->host->stat_add(c->host, TBGW_STAT_CONNECTOR_ERRORS, 1);
        int64_t retry = now + tbgw_backoff_next(&m->backoff);
        m->next_due = retry < regular ? retry : regular;
        if (m->next_due < now) m->next_due = now;
        char text[300];
        snprintf(text, sizeof text, "request to %s failed: %s", m->url, why);
        if (m->last_ok || m->failures == 1 || m->polls % 100 == 0)
            TBGW_WARNF(c->host->log, "%s (retry in %lld ms; %llu failures so far)", text,
                       (long long)(m->next_due - now), (unsigned long long)m->failures);
        else
            TBGW_DEBUGF(c->host->log, "%s", text);
        m->last_ok = 0;
        size_t bad = 0;
        for (size_t i = 0; i < c->cfg.n_maps; i++) bad += !c->cfg.maps[i].last_ok;
        if (bad == c->cfg.n_maps) set_state(c, TBGW_CONN_DISCONNECTED, text);
    }
    if (m->next_due < now) { /* the answer took longer than the scan period */
        m->late++;
        m->next_due = now;
    }
    rq_schedule(c, m);
}

static void poll_free(rq_poll *p) {
    json_decref(p->root);
    free(p);
}

/* ------------------------------------------------------------------ conversion */

static void convert_json(rq_poll *p) {
    rq_conn *c = p->c;
    tbgw_err err = {0};
    tbgw_converted *chain = NULL;
    int rc = tbgw_json_conv_convert(p->m->json, p->m->url, p->data, p->recv, &chain, &err);
    if (rc < 0) {
        c->host->stat_add(c->host, TBGW_STAT_CONVERTER_ERRORS, 1);
        TBGW_WARNF(c->host->conv_log, "response of %s: %s", p->m->url,
                   err.msg[0] ? err.msg : tbgw_strerror(rc));
        tbgw_converted_free(chain);
        return;
    }
    c->host->stat_add(c->host, TBGW_STAT_CONV_PROCESSED, 1);
    if (err.code) TBGW_DEBUGF(c->host->conv_log, "response of %s: %s", p->m->url, err.msg);
    rq_emit(c, chain);
}

static void finish(rq_poll *p) {
    if (!atomic_load(&p->c->stop)) convert_json(p);
    poll_free(p);
}

/* processingFunction(answer, key): its result replaces the answer (a dict is merged into the element
 * like an object answer, None adds nothing). Takes v; NULL when the function fails (logged, counted). */
static json_t *process(rq_conn *c, const rq_poll *p, const rq_sub *sub, json_t *v) {
    tbgw_err err = {0};
    json_t *res = NULL;
    if (!c->py && !(c->py = tbgw_py_ctx_new(NULL))) {
        json_decref(v);
        return NULL;
    }
    tbgw_py_ctx_reset(c->py);
    const tbgw_py_val *args[2] = {tbgw_py_from_json(c->py, v),
                                  tbgw_py_str(c->py, sub->key, strlen(sub->key))};
    const tbgw_py_val *out;
    int rc = !args[0] || !args[1] ? tbgw_err_set(&err, TBGW_ENOMEM, "MemoryError: out of memory")
                                  : tbgw_py_call_def(sub->fn, c->py, args, 2, &out, &err);
    if (!rc) rc = tbgw_py_to_json(c->py, out, &res, &err);
    json_decref(v);
    tbgw_py_ctx_reset(c->py);
    if (rc) {
        c->host->stat_add(c->host, TBGW_STAT_CONVERTER_ERRORS, 1);
        TBGW_WARNF(c->host->conv_log, "sub-request %s of %s: processingFunction %s() failed: %s", sub->key,
                   p->m->url, tbgw_py_def_name(sub->fn), err.msg);
        return NULL;
    }
    if (json_is_null(res)) {
        json_decref(res);
        return NULL;
    }
    return res;
}

static void on_sub_done(void *ud, const tbgw_http_resp *r) {
    rq_subreq *s = ud;
    rq_poll *p = s->p;
    rq_conn *c = p->c;
    if (r->status >= 200 && r->status < 300) {
        c->host->stat_add(c->host, TBGW_STAT_BYTES_RECEIVED, r->len);
        json_t *v = tbgw_json_loadb(r->body, r->len, JSON_DECODE_ANY, NULL);
        if (!v) v = json_stringn(r->body, r->len);
        if (v && s->sub->fn) v = process(c, p, s->sub, v);
        if (json_is_object(v))
            json_object_update(s->item, v); /* the reference merges the answer into the item */
        else if (v)
            json_object_set(s->item, s->sub->key, v);
        json_decref(v);
    } else {
        TBGW_WARNF(c->host->log, "sub-request %s of %s failed: %s", s->sub->key, p->m->url,
                   r->error ? r->error : "unexpected HTTP status");
        c->host->stat_add(c->host, TBGW_STAT_CONNECTOR_ERRORS, 1);
    }
    json_decref(s->item);
    free(s);
    if (--p->pending == 0) finish(p);
}

static void submit_sub(rq_poll *p, json_t *item, const rq_sub *sub, tbgw_buf *url) {
    rq_conn *c = p->c;
    tbgw_dl_vars vars = {.root = item, .quote = 1};
    tbgw_buf_reset(url);
    tbgw_buf rel;
    tbgw_buf_init(&rel);
    if (tbgw_dl_render(sub->url, &vars, &rel) || !tbgw_buf_cstr(&rel)) {
        TBGW_DEBUGF(c->host->log, "sub-request %s of %s: its url refers to a missing field", sub->key,
                    p->m->url);
        tbgw_buf_free(&rel);
        return;
    }
    char *full = rq_join_url(p->m->url, rel.p);
    tbgw_buf_free(&rel);
    rq_subreq *s = calloc(1, sizeof *s);
    tbgw_http_req req = {.method = p->m->method,
                         .url = full,
                         .headers = p->m->headers,
                         .follow_redirects = p->m->redirects,
                         .timeout_ms = p->m->timeout_ms};
    rq_req_auth(c, &req);
    if (!full || !s) goto fail;
    s->p = p;
    s->item = json_incref(item);
    s->sub = sub;
    if (tbgw_http_client_submit(c->http, &req, on_sub_done, s)) {
        json_decref(item);
        goto fail;
    }
    p->pending++;
    free(full);
    return;
fail:
    free(s);
    free(full);
    TBGW_WARNF(c->host->log, "sub-request %s of %s could not be started", sub->key, p->m->url);
}

static void start_subs(rq_poll *p) {
    tbgw_buf url;
    tbgw_buf_init(&url);
    p->pending = 1; /* held until every sub-request is submitted */
    for (size_t k = 0; k < p->m->n_subs; k++) {
        const rq_sub *sub = &p->m->subs[k];
        if (sub->unsupported) continue;
        if (json_is_array(p->data)) {
            size_t i;
            json_t *item;
            json_array_foreach(p->data, i, item) if (json_is_object(item)) submit_sub(p, item, sub, &url);
        } else if (json_is_object(p->data)) {
            submit_sub(p, p->data, sub, &url);
        }
    }
    tbgw_buf_free(&url);
    if (--p->pending == 0) finish(p);
}

/* ------------------------------------------------------------------ main response */

static int handle_body(rq_poll *p, const tbgw_http_resp *r) {
    rq_conn *c = p->c;
    rq_map *m = p->m;
    if (m->custom) {
        tbgw_err err = {0};
        tbgw_converted *chain = NULL;
        int rc = tbgw_custom_conv_convert(m->conv, m->url, (const uint8_t *)r->body, r->len, &chain, &err);
        if (rc < 0) {
            c->host->stat_add(c->host, TBGW_STAT_CONVERTER_ERRORS, 1);
            TBGW_WARNF(c->host->conv_log, "response of %s: %s", m->url,
                       err.msg[0] ? err.msg : tbgw_strerror(rc));
            tbgw_converted_free(chain);
        } else {
            c->host->stat_add(c->host, TBGW_STAT_CONV_PROCESSED, 1);
            rq_emit(c, chain);
        }
        return 1;
    }
    json_error_t je;
    p->root = tbgw_json_loadb(r->body, r->len, JSON_DECODE_ANY, &je);
    if (!p->root) {
        c->host->stat_add(c->host, TBGW_STAT_CONVERTER_ERRORS, 1);
        TBGW_WARNF(c->host->conv_log, "response of %s is not JSON (line %d column %d: %s)", m->url, je.line,
                   je.column, je.text);
        return 1;
    }
    p->data = p->root;
    if (m->unpack) {
        p->data = (json_t *)tbgw_path_get(m->unpack, p->root);
        if (!p->data) {
            c->host->stat_add(c->host, TBGW_STAT_CONVERTER_ERRORS, 1);
            TBGW_WARNF(c->host->conv_log, "response of %s: dataUnpackExpression matches nothing", m->url);
            return 1;
        }
    }
    if (m->n_subs) {
        start_subs(p);
        return 0; /* p lives on until the sub-requests are done */
    }
    convert_json(p);
    return 1;
}

static void on_poll_done(void *ud, const tbgw_http_resp *r) {
    rq_poll *p = ud;
    rq_conn *c = p->c;
    rq_map *m = p->m;
    char why[300];
    if (atomic_load(&c->stop) && r->error && !strcmp(r->error, "aborted")) {
        m->in_flight = 0;
        poll_free(p);
        return;
    }
    if (r->status < 200 || r->status >= 300) {
        if (r->error)
            snprintf(why, sizeof why, "%s", r->error);
        else
            snprintf(why, sizeof why, "HTTP status %ld", r->status);
        poll_done(c, m, 0, why);
        poll_free(p);
        return;
    }
    poll_done(c, m, 1, NULL);
    c->host->stat_add(c->host, TBGW_STAT_MSGS_RECEIVED, 1);
    c->host->stat_add(c->host, TBGW_STAT_BYTES_RECEIVED, r->len);
    TBGW_TRACEF(c->host->log, "%s answered %ld in %lld ms (%zu bytes)", m->url, r->status,
                (long long)r->elapsed_ms, r->len);
    p->recv = tbgw_now_ms();
    if (handle_body(p, r)) poll_free(p);
}

void rq_poll_start(rq_conn *c, rq_map *m) {
    rq_poll *p = calloc(1, sizeof *p);
    m->last_start = tbgw_mono_ms();
    if (!p) {
        poll_done(c, m, 0, "out of memory");
        return;
    }
    p->c = c;
    p->m = m;
    p->start = m->last_start;
    tbgw_http_req req = {.method = m->method,
                         .url = m->url,
                         .headers = m->headers,
                         .body = m->body,
                         .body_len = m->body_len,
                         .follow_redirects = m->redirects,
                         .timeout_ms = m->timeout_ms};
    rq_req_auth(c, &req);
    m->in_flight = 1;
    if (tbgw_http_client_submit(c->http, &req, on_poll_done, p)) {
        free(p);
        poll_done(c, m, 0, "the request could not be started");
    }
}

void rq_poll_feed(rq_conn *c, rq_map *m, const tbgw_http_resp *r) {
    rq_poll *p = calloc(1, sizeof *p);
    if (!p) return;
    p->c = c;
    p->m = m;
    m->in_flight = 1;
    m->last_start = p->start = tbgw_mono_ms();
    on_poll_done(p, r);
}
