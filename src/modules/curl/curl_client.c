/* tbgw_curl.so: the asynchronous HTTP client on a libcurl multi handle (see curl_module.h and
 * util/http_client.h). util/buf.c, backoff.c and time.c are compiled into the module as well, so it
 * needs nothing from the process that loads it. */
#include "modules/curl/curl_module.h"

#include <curl/curl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <tbgw/err.h>
#include "util/backoff.h"
#include "util/buf.h"
#include "util/time.h"

#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_MAX_BODY   (16u << 20)
#define CURL_NO_TIMER_MS   1000 /* longest wait while transfers run and libcurl names no timeout */

typedef struct xfer {
    struct xfer *next, *prev;
    CURL *e;
    struct curl_slist *hdrs;
    char *body;
    tbgw_buf resp;
    size_t max_body;
    int too_big, tries_left, tries, in_multi;
    int64_t start, timeout_ms, deadline, due; /* monotonic ms; deadline 0 = none */
    tbgw_backoff backoff;
    tbgw_http_done_fn fn;
    void *ud;
    char errbuf[CURL_ERROR_SIZE];
} xfer;

#define POOL_MAX 64 /* idle easy handles kept for reuse (their buffers stay allocated) */

typedef struct tbgw_http_client {
    CURLM *m;
    CURL *pool[POOL_MAX];
    size_t n_pool;
    xfer *list;
    size_t running, parked;
} tbgw_http_client;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void *client_new(void) {
    pthread_once(&curl_once, curl_init_once);
    tbgw_http_client *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->m = curl_multi_init();
    if (!c->m) {
        free(c);
        return NULL;
    }
    curl_multi_setopt(c->m, CURLMOPT_MAX_HOST_CONNECTIONS, 64L);
    return c;
}

static void xfer_free(tbgw_http_client *c, xfer *x) {
    if (x->prev)
        x->prev->next = x->next;
    else
        c->list = x->next;
    if (x->next) x->next->prev = x->prev;
    if (x->in_multi) curl_multi_remove_handle(c->m, x->e);
    if (c->n_pool < POOL_MAX) {
        curl_easy_reset(x->e);
        c->pool[c->n_pool++] = x->e;
    } else {
        curl_easy_cleanup(x->e);
    }
    curl_slist_free_all(x->hdrs);
    free(x->body);
    tbgw_buf_free(&x->resp);
    free(x);
    c->running--;
}

static void client_free(void *p) {
    tbgw_http_client *c = p;
    if (!c) return;
    while (c->list) {
        xfer *x = c->list;
        tbgw_http_resp r = {.status = 0, .error = "aborted", .body = "", .len = 0};
        tbgw_http_done_fn fn = x->fn;
        void *ud = x->ud;
        xfer_free(c, x);
        if (fn) fn(ud, &r);
    }
    while (c->n_pool) curl_easy_cleanup(c->pool[--c->n_pool]);
    curl_multi_cleanup(c->m);
    free(c);
}

static size_t on_data(char *p, size_t size, size_t n, void *ud) {
    xfer *x = ud;
    size_t len = size * n;
    if (x->resp.len + len > x->max_body) {
        x->too_big = 1;
        return 0; /* aborts the transfer */
    }
    return tbgw_buf_append(&x->resp, p, len) ? 0 : len;
}

static int add_headers(xfer *x, const char *const *lines, size_t n) {
    for (size_t i = 0; i < n; i++) {
        struct curl_slist *l = curl_slist_append(x->hdrs, lines[i]);
        if (!l) return TBGW_ENOMEM;
        x->hdrs = l;
    }
    struct curl_slist *l = curl_slist_append(x->hdrs, "Expect:"); /* no 100-continue round trip */
    if (!l) return TBGW_ENOMEM;
    x->hdrs = l;
    return 0;
}

static void set_method(CURL *e, const char *method, const xfer *x, size_t body_len) {
    if (x->body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body);
    }
    if (!strcasecmp(method, "HEAD"))
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    else if (!strcasecmp(method, "GET") && !x->body)
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    else if (strcasecmp(method, "POST") || !x->body)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
}

/* Starts (or restarts) the transfer of x on the multi handle, its timeout cut to the budget. */
static int add_try(tbgw_http_client *c, xfer *x) {
    int64_t to = x->timeout_ms;
    if (x->deadline) {
        int64_t left = x->deadline - tbgw_mono_ms();
        if (left < 1) left = 1;
        if (left < to) to = left;
    }
    curl_easy_setopt(x->e, CURLOPT_TIMEOUT_MS, (long)to);
    x->tries++;
    x->too_big = 0;
    x->errbuf[0] = 0;
    tbgw_buf_reset(&x->resp);
    if (curl_multi_add_handle(c->m, x->e) != CURLM_OK) return TBGW_ENOMEM;
    x->in_multi = 1;
    return 0;
}

static int submit(void *p, const tbgw_curl_req *r, tbgw_http_done_fn fn, void *ud) {
    tbgw_http_client *c = p;
    xfer *x = calloc(1, sizeof *x);
    if (!x) return TBGW_ENOMEM;
    tbgw_buf_init(&x->resp);
    x->fn = fn;
    x->ud = ud;
    x->max_body = r->max_body ? r->max_body : DEFAULT_MAX_BODY;
    x->start = tbgw_mono_ms();
    x->e = c->n_pool ? c->pool[--c->n_pool] : curl_easy_init();
    if (!x->e) goto fail;
    if (r->body) {
        if (!(x->body = malloc(r->body_len + 1))) goto fail;
        memcpy(x->body, r->body, r->body_len);
        x->body[r->body_len] = 0;
    }
    if (add_headers(x, r->header_lines, r->n_headers)) goto fail;
    CURL *e = x->e;
    curl_easy_setopt(e, CURLOPT_URL, r->url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs);
    x->timeout_ms = r->timeout_ms > 0 ? r->timeout_ms : DEFAULT_TIMEOUT_MS;
    x->tries_left = r->tries > 1 ? r->tries : 1;
    if (r->budget_ms > 0) x->deadline = x->start + r->budget_ms;
    tbgw_backoff_init(&x->backoff, 100, 2000);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, r->follow_redirects ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, 30L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, r->verify_tls ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, r->verify_tls ? 2L : 0L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    if (r->username) {
        curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(e, CURLOPT_USERNAME, r->username);
        curl_easy_setopt(e, CURLOPT_PASSWORD, r->password ? r->password : "");
    }
    if (r->cert) curl_easy_setopt(e, CURLOPT_SSLCERT, r->cert);
    if (r->key) curl_easy_setopt(e, CURLOPT_SSLKEY, r->key);
    if (r->ca) curl_easy_setopt(e, CURLOPT_CAINFO, r->ca);
    set_method(e, r->method ? r->method : "GET", x, r->body_len);
    if (add_try(c, x)) goto fail;
    x->next = c->list;
    if (c->list) c->list->prev = x;
    c->list = x;
    c->running++;
    return 0;
fail:
    if (x->e) curl_easy_cleanup(x->e);
    curl_slist_free_all(x->hdrs);
    free(x->body);
    tbgw_buf_free(&x->resp);
    free(x);
    return TBGW_ENOMEM;
}

/* 1 when x failed in a way worth another try and has tries and time left: it is parked. */
static int park_for_retry(tbgw_http_client *c, xfer *x, CURLcode code) {
    long status = 0;
    if (code == CURLE_OK) curl_easy_getinfo(x->e, CURLINFO_RESPONSE_CODE, &status);
    if ((code == CURLE_OK && status < 500) || x->too_big || x->tries >= x->tries_left) return 0;
    int64_t now = tbgw_mono_ms(), delay = tbgw_backoff_next(&x->backoff);
    if (x->deadline && now + delay >= x->deadline) return 0;
    curl_multi_remove_handle(c->m, x->e);
    x->in_multi = 0;
    x->due = now + delay;
    c->parked++;
    return 1;
}

static void complete(tbgw_http_client *c, xfer *x, CURLcode code) {
    if (park_for_retry(c, x, code)) return;
    tbgw_http_resp r = {0};
    r.tries = x->tries;
    char err[CURL_ERROR_SIZE + 64];
    if (code == CURLE_OK) {
        curl_easy_getinfo(x->e, CURLINFO_RESPONSE_CODE, &r.status);
        char *ct = NULL;
        curl_easy_getinfo(x->e, CURLINFO_CONTENT_TYPE, &ct);
        r.ctype = ct;
    } else {
        if (x->too_big)
            snprintf(err, sizeof err, "response larger than %zu bytes", x->max_body);
        else
            snprintf(err, sizeof err, "%s", x->errbuf[0] ? x->errbuf : curl_easy_strerror(code));
        r.error = err;
    }
    const char *body = tbgw_buf_cstr(&x->resp);
    r.body = body ? body : "";
    r.len = body ? x->resp.len : 0;
    r.elapsed_ms = tbgw_mono_ms() - x->start;
    /* unlink first: the callback may submit new transfers */
    tbgw_http_done_fn fn = x->fn;
    void *ud = x->ud;
    tbgw_buf resp = x->resp;
    char *ctype = r.ctype ? strdup(r.ctype) : NULL;
    r.ctype = ctype;
    tbgw_buf_init(&x->resp);
    xfer_free(c, x);
    if (fn) fn(ud, &r);
    free(ctype);
    tbgw_buf_free(&resp);
}

/* Restarts parked transfers that are due; returns ms until the next one (or timeout_ms). */
static int restart_parked(tbgw_http_client *c, int timeout_ms) {
    if (!c->parked) return timeout_ms;
    int64_t now = tbgw_mono_ms(), next = now + timeout_ms;
    for (xfer *x = c->list; x; x = x->next) {
        if (x->in_multi) continue;
        if (x->due <= now) {
            c->parked--;
            if (add_try(c, x)) { /* cannot restart: report the failure now */
                x->tries_left = x->tries;
                complete(c, x, CURLE_OUT_OF_MEMORY);
                return 0; /* the list changed */
            }
        } else if (x->due < next) {
            next = x->due;
        }
    }
    return (int)(next - now);
}

/* Completes the transfers libcurl reports done; returns how many. */
static int drain(tbgw_http_client *c) {
    CURLMsg *msg;
    int left, n = 0;
    while ((msg = curl_multi_info_read(c->m, &left))) {
        if (msg->msg != CURLMSG_DONE) continue;
        xfer *x = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        if (x) complete(c, x, msg->data.result);
        n++;
    }
    return n;
}

/* Waits (at most timeout_ms; < 0: no limit but the transfers' own timers) for socket activity of the
 * transfers or for extra_fd (>= 0) to become readable, then advances the transfers and completes the
 * finished ones. *extra_ready (may be NULL) tells whether extra_fd was readable; it is 1 as well when
 * no wait happened, so the caller never misses work. A transfer that finishes in the first step is
 * completed before any wait (and there is no wait then: its callback may have work for the caller). */
static int poll_fd(void *p, int timeout_ms, int extra_fd, int *extra_ready) {
    tbgw_http_client *c = p;
    int still = 0;
    struct curl_waitfd w = {.fd = extra_fd, .events = CURL_WAIT_POLLIN, .revents = 0};
    unsigned nw = extra_fd >= 0 ? 1u : 0u;
    if (timeout_ms < 0) timeout_ms = INT_MAX;
    timeout_ms = restart_parked(c, timeout_ms);
    int waited = 0;
    if (c->running) {
        curl_multi_perform(c->m, &still);
        if (drain(c)) timeout_ms = 0;
    }
    if (c->running && timeout_ms > 0) {
        long curl_to = -1;
        curl_multi_timeout(c->m, &curl_to);
        int to = timeout_ms;
        if (curl_to >= 0 && curl_to < to) to = (int)curl_to;
        /* -1: libcurl has no timer stored, which does not mean it needs none (TLS, resolver) */
        if (curl_to < 0 && to > CURL_NO_TIMER_MS) to = CURL_NO_TIMER_MS;
        if (to > 0) {
            curl_multi_poll(c->m, nw ? &w : NULL, nw, to, NULL);
            waited = 1;
        }
        curl_multi_perform(c->m, &still);
    } else if (!c->running && timeout_ms > 0) {
        curl_multi_poll(c->m, nw ? &w : NULL, nw, timeout_ms, NULL);
        waited = 1;
    }
    if (extra_ready) *extra_ready = !waited || (w.revents & CURL_WAIT_POLLIN) != 0;
    drain(c);
    return (int)c->running;
}

static void wakeup(void *p) {
    curl_multi_wakeup(((tbgw_http_client *)p)->m);
}

static int poll_client(void *p, int timeout_ms) {
    return poll_fd(p, timeout_ms < 0 ? 0 : timeout_ms, -1, NULL);
}

static size_t running(const void *p) {
    return ((const tbgw_http_client *)p)->running;
}

__attribute__((visibility("default"))) const tbgw_curl_module tbgw_curl_module_v1 = {
    client_new, client_free, submit, poll_client, running, poll_fd, wakeup};
