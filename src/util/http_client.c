/* Asynchronous HTTP client on a libcurl multi handle (see http_client.h). */
#include "util/http_client.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <tbgw/err.h>
#include "util/buf.h"
#include "util/time.h"

#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_MAX_BODY   (16u << 20)

typedef struct xfer {
    struct xfer *next, *prev;
    CURL *e;
    struct curl_slist *hdrs;
    char *body;
    tbgw_buf resp;
    size_t max_body;
    int too_big;
    int64_t start;
    tbgw_http_done_fn fn;
    void *ud;
    char errbuf[CURL_ERROR_SIZE];
} xfer;

struct tbgw_http_client {
    CURLM *m;
    xfer *list;
    size_t running;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

tbgw_http_client *tbgw_http_client_new(void) {
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
    curl_multi_remove_handle(c->m, x->e);
    curl_easy_cleanup(x->e);
    curl_slist_free_all(x->hdrs);
    free(x->body);
    tbgw_buf_free(&x->resp);
    free(x);
    c->running--;
}

void tbgw_http_client_free(tbgw_http_client *c) {
    if (!c) return;
    while (c->list) {
        xfer *x = c->list;
        tbgw_http_resp r = {.status = 0, .error = "aborted", .body = "", .len = 0};
        tbgw_http_done_fn fn = x->fn;
        void *ud = x->ud;
        xfer_free(c, x);
        if (fn) fn(ud, &r);
    }
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

static int add_headers(xfer *x, const json_t *headers) {
    const char *k;
    const json_t *v;
    tbgw_buf line;
    tbgw_buf_init(&line);
    json_object_foreach((json_t *)headers, k, v) {
        tbgw_buf_reset(&line);
        tbgw_buf_printf(&line, "%s: ", k);
        if (json_is_string(v)) {
            tbgw_buf_puts(&line, json_string_value(v));
        } else {
            char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            if (t) tbgw_buf_puts(&line, t);
            free(t);
        }
        const char *s = tbgw_buf_cstr(&line);
        struct curl_slist *n = s ? curl_slist_append(x->hdrs, s) : NULL;
        if (!n) {
            tbgw_buf_free(&line);
            return TBGW_ENOMEM;
        }
        x->hdrs = n;
    }
    tbgw_buf_free(&line);
    struct curl_slist *n = curl_slist_append(x->hdrs, "Expect:"); /* no 100-continue round trip */
    if (!n) return TBGW_ENOMEM;
    x->hdrs = n;
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

int tbgw_http_client_submit(tbgw_http_client *c, const tbgw_http_req *r, tbgw_http_done_fn fn, void *ud) {
    xfer *x = calloc(1, sizeof *x);
    if (!x) return TBGW_ENOMEM;
    tbgw_buf_init(&x->resp);
    x->fn = fn;
    x->ud = ud;
    x->max_body = r->max_body ? r->max_body : DEFAULT_MAX_BODY;
    x->start = tbgw_mono_ms();
    x->e = curl_easy_init();
    if (!x->e) goto fail;
    if (r->body) {
        if (!(x->body = malloc(r->body_len + 1))) goto fail;
        memcpy(x->body, r->body, r->body_len);
        x->body[r->body_len] = 0;
    }
    if (add_headers(x, r->headers)) goto fail;
    CURL *e = x->e;
    curl_easy_setopt(e, CURLOPT_URL, r->url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(r->timeout_ms > 0 ? r->timeout_ms : DEFAULT_TIMEOUT_MS));
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
    if (curl_multi_add_handle(c->m, e) != CURLM_OK) goto fail;
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

static void complete(tbgw_http_client *c, xfer *x, CURLcode code) {
    tbgw_http_resp r = {0};
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

int tbgw_http_client_poll(tbgw_http_client *c, int timeout_ms) {
    int still = 0;
    if (c->running) {
        curl_multi_perform(c->m, &still);
        if (timeout_ms > 0) {
            long curl_to = -1;
            curl_multi_timeout(c->m, &curl_to);
            int to = timeout_ms;
            if (curl_to >= 0 && curl_to < to) to = (int)curl_to;
            curl_multi_poll(c->m, NULL, 0, to, NULL);
        }
        curl_multi_perform(c->m, &still);
    } else if (timeout_ms > 0) {
        curl_multi_poll(c->m, NULL, 0, timeout_ms, NULL);
    }
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(c->m, &left))) {
        if (msg->msg != CURLMSG_DONE) continue;
        xfer *x = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        if (x) complete(c, x, msg->data.result);
    }
    return (int)c->running;
}

size_t tbgw_http_client_running(const tbgw_http_client *c) {
    return c->running;
}

int tbgw_url_quote(tbgw_buf *out, const char *s, size_t n) {
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' ||
            ch == '.' || ch == '-' || ch == '~' || ch == '/') {
            tbgw_buf_putc(out, (char)ch);
        } else {
            tbgw_buf_putc(out, '%');
            tbgw_buf_putc(out, hex[ch >> 4]);
            tbgw_buf_putc(out, hex[ch & 15]);
        }
    }
    return out->oom ? TBGW_ENOMEM : 0;
}
