/* The HTTP client (see http_client.h): a thin layer over the tbgw_curl module. */
#include "util/json.h"
#include "util/http_client.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include "util/buf.h"
#include "util/module.h"
#include "util/time.h"

struct tbgw_http_client {
    const tbgw_curl_module *mod;
    void *impl;
};

tbgw_http_client *tbgw_http_client_new(tbgw_err *err) {
    const tbgw_curl_module *mod = tbgw_module_symbol(TBGW_CURL_MODULE_NAME, TBGW_CURL_MODULE_SYMBOL, err);
    if (!mod) return NULL;
    tbgw_http_client *c = calloc(1, sizeof *c);
    if (!c || !(c->impl = mod->client_new())) {
        free(c);
        tbgw_err_set(err, TBGW_ENOMEM, "cannot create an HTTP client");
        return NULL;
    }
    c->mod = mod;
    return c;
}

void tbgw_http_client_free(tbgw_http_client *c) {
    if (!c) return;
    c->mod->client_free(c->impl);
    free(c);
}

int tbgw_http_client_submit(tbgw_http_client *c, const tbgw_http_req *r, tbgw_http_done_fn fn, void *ud) {
    size_t n = json_object_size(r->headers), i = 0;
    char **lines = n ? calloc(n, sizeof *lines) : NULL;
    if (n && !lines) return TBGW_ENOMEM;
    const char *k;
    const json_t *v;
    tbgw_buf line;
    tbgw_buf_init(&line);
    json_object_foreach((json_t *)r->headers, k, v) {
        tbgw_buf_reset(&line);
        tbgw_buf_printf(&line, "%s: ", k);
        if (json_is_string(v)) {
            tbgw_buf_puts(&line, json_string_value(v));
        } else {
            char *t = tbgw_json_dumps(v, 0);
            if (t) tbgw_buf_puts(&line, t);
            free(t);
        }
        const char *s = tbgw_buf_cstr(&line);
        if (s && (lines[i] = strdup(s))) i++;
    }
    tbgw_buf_free(&line);
    tbgw_curl_req q = {.method = r->method ? r->method : "GET",
                       .url = r->url,
                       .header_lines = (const char *const *)lines,
                       .n_headers = i,
                       .body = r->body,
                       .body_len = r->body_len,
                       .username = r->username,
                       .password = r->password,
                       .cert = r->cert,
                       .key = r->key,
                       .ca = r->ca,
                       .verify_tls = r->verify_tls,
                       .follow_redirects = r->follow_redirects,
                       .tries = r->tries,
                       .timeout_ms = r->timeout_ms,
                       .budget_ms = r->budget_ms,
                       .max_body = r->max_body};
    int rc = i == n ? c->mod->submit(c->impl, &q, fn, ud) : TBGW_ENOMEM;
    for (size_t j = 0; j < i; j++) free(lines[j]);
    free(lines);
    return rc;
}

int tbgw_http_client_poll(tbgw_http_client *c, int timeout_ms) {
    return c->mod->poll(c->impl, timeout_ms);
}

int tbgw_http_client_poll_fd(tbgw_http_client *c, int timeout_ms, int extra_fd, int *extra_ready) {
    return c->mod->poll_fd(c->impl, timeout_ms, extra_fd, extra_ready);
}

int tbgw_http_client_poll_until(tbgw_http_client *c, int64_t due, int extra_fd, int slice_ms,
                                int *extra_ready) {
    int64_t wait = -1; /* nothing due: only activity ends the wait */
    if (due != INT64_MAX) {
        wait = due - tbgw_mono_ms();
        wait = wait < 0 ? 0 : wait > INT_MAX ? INT_MAX : wait;
    }
    if (extra_fd >= 0) return c->mod->poll_fd(c->impl, (int)wait, extra_fd, extra_ready);
    if (extra_ready) *extra_ready = 1;
    return c->mod->poll(c->impl, wait < 0 || wait > slice_ms ? slice_ms : (int)wait);
}

size_t tbgw_http_client_running(const tbgw_http_client *c) {
    return c->mod->running(c->impl);
}

void tbgw_http_client_wakeup(tbgw_http_client *c) {
    c->mod->wakeup(c->impl);
}
