/* tbgw_http.so: the HTTP server module (see http_module.h) on libmicrohttpd.
 *
 * start_ex servers: epoll, an internal thread pool, bodies buffered up to max_body (413 beyond, also
 * from Content-Length before any byte is read), form bodies decoded by MHD's post processor, and
 * suspended connections for answers that come later (reply() resumes them from any thread). */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "modules/http/http_module.h"

typedef struct kv_list {
    tbgw_http_kv *v;
    size_t n, cap;
} kv_list;

typedef struct req_ctx {
    struct req_ctx *next; /* waiting list */
    uint64_t id;
    struct MHD_Connection *conn;
    char *body;
    size_t len, cap;
    int too_big, waiting, ready, suspended;
    unsigned status;
    char *ctype, *rbody;
    size_t rlen;
} req_ctx;

typedef struct server {
    struct MHD_Daemon *d;
    tbgw_http_handler handler;
    tbgw_http_handler_ex handler_ex;
    void *ud;
    tbgw_http_opts o;
    char *cert, *key;
    pthread_mutex_t mu;
    req_ctx *waiting;
    uint64_t next_id;
    int stopping;
} server;

/* ------------------------------------------------------------------ v1: simple handler */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **ctx) {
    (void)version;
    (void)upload;
    (void)upload_size;
    (void)ctx;
    server *s = cls;
    tbgw_http_reply r = {500, "text/plain", NULL, 0};
    s->handler(s->ud, method, url, &r);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(r.len, r.body ? r.body : (char *)"", MHD_RESPMEM_MUST_COPY);
    free(r.body);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", r.ctype ? r.ctype : "text/plain");
    enum MHD_Result ret = MHD_queue_response(c, r.status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void *start(const struct sockaddr_in *sa, unsigned max_connections, unsigned timeout_s,
                   tbgw_http_handler handler, void *ud, int *bound_port) {
    server *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->handler = handler;
    s->ud = ud;
    pthread_mutex_init(&s->mu, NULL);
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, ntohs(sa->sin_port), NULL,
                            NULL, on_request, s, MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)sa,
                            MHD_OPTION_CONNECTION_LIMIT, max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
                            timeout_s, MHD_OPTION_END);
    if (!s->d) {
        pthread_mutex_destroy(&s->mu);
        free(s);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    *bound_port = di ? di->port : ntohs(sa->sin_port);
    return s;
}

/* ------------------------------------------------------------------ full requests */

static enum MHD_Result send_reply(struct MHD_Connection *c, unsigned status, const char *ctype,
                                  const char *body, size_t len) {
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, body ? (void *)body : (void *)"", MHD_RESPMEM_MUST_COPY);
    if (!resp) return MHD_NO;
    if (ctype) MHD_add_response_header(resp, "Content-Type", ctype);
    enum MHD_Result ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static int kv_add(kv_list *l, const char *k, const char *v, size_t vlen) {
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 8;
        tbgw_http_kv *nv = realloc(l->v, nc * sizeof *nv);
        if (!nv) return -1;
        l->v = nv;
        l->cap = nc;
    }
    char *kc = strdup(k ? k : ""), *vc = malloc(vlen + 1);
    if (!kc || !vc) {
        free(kc);
        free(vc);
        return -1;
    }
    if (vlen) memcpy(vc, v, vlen);
    vc[vlen] = 0;
    l->v[l->n++] = (tbgw_http_kv){kc, vc, vlen};
    return 0;
}

static void kv_free(kv_list *l) {
    for (size_t i = 0; i < l->n; i++) {
        free((char *)l->v[i].key);
        free((char *)l->v[i].value);
    }
    free(l->v);
}

static enum MHD_Result on_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    (void)kind;
    kv_add(cls, key, value ? value : "", value ? strlen(value) : 0);
    return MHD_YES;
}

/* Multipart fields arrive in pieces (off > 0 continues the previous one). */
static enum MHD_Result on_field(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
                                const char *ctype, const char *enc, const char *data, uint64_t off,
                                size_t size) {
    (void)kind;
    (void)filename;
    (void)ctype;
    (void)enc;
    kv_list *l = cls;
    if (off > 0 && l->n && !strcmp(l->v[l->n - 1].key, key)) {
        tbgw_http_kv *last = &l->v[l->n - 1];
        char *nv = realloc((char *)last->value, last->value_len + size + 1);
        if (!nv) return MHD_NO;
        memcpy(nv + last->value_len, data, size);
        last->value_len += size;
        nv[last->value_len] = 0;
        last->value = nv;
        return MHD_YES;
    }
    return kv_add(l, key, data, size) ? MHD_NO : MHD_YES;
}

static int is_form(const char *ct) {
    return ct && (!strncasecmp(ct, "application/x-www-form-urlencoded", 33) ||
                  !strncasecmp(ct, "multipart/form-data", 19));
}

/* "a.b.c.d:port" (no printf: this runs for every request) */
static void client_text(struct MHD_Connection *c, char *out, size_t n) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr_in *sa = ci ? (const struct sockaddr_in *)ci->client_addr : NULL;
    if (n < 22 || !sa || sa->sin_family != AF_INET) {
        snprintf(out, n, "?");
        return;
    }
    const unsigned char *a = (const unsigned char *)&sa->sin_addr;
    unsigned vals[5] = {a[0], a[1], a[2], a[3], ntohs(sa->sin_port)};
    char *p = out;
    for (int i = 0; i < 5; i++) {
        char d[6];
        int k = 0;
        unsigned v = vals[i];
        do d[k++] = (char)('0' + v % 10);
        while ((v /= 10));
        while (k) *p++ = d[--k];
        *p++ = i < 3 ? '.' : i == 3 ? ':' : 0;
    }
}

static void refuse(server *s, struct MHD_Connection *c, unsigned status, const char *why) {
    if (!s->o.on_refusal) return;
    char client[64];
    client_text(c, client, sizeof client);
    s->o.on_refusal(s->ud, client, status, why);
}

/* The whole request is here: decode it and ask the handler. */
static enum MHD_Result dispatch(server *s, struct MHD_Connection *c, req_ctx *x, const char *url,
                                const char *method) {
    kv_list query = {0}, form = {0};
    char client[64];
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, on_arg, &query);
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    if (is_form(ct) && x->len) {
        struct MHD_PostProcessor *pp = MHD_create_post_processor(c, 16384, on_field, &form);
        if (pp) {
            MHD_post_process(pp, x->body, x->len);
            MHD_destroy_post_processor(pp);
        }
    }
    char *pass = NULL;
    char *user = MHD_basic_auth_get_username_password(c, &pass);
    client_text(c, client, sizeof client);
    tbgw_http_request rq = {.id = x->id,
                            .method = method,
                            .path = url,
                            .client = client,
                            .ctype = ct,
                            .query = query.v,
                            .n_query = query.n,
                            .form = form.v,
                            .n_form = form.n,
                            .body = x->body ? x->body : "",
                            .body_len = x->len,
                            .user = user,
                            .password = user ? (pass ? pass : "") : NULL};
    tbgw_http_reply r = {500, "text/plain", NULL, 0};
    pthread_mutex_lock(&s->mu); /* registered before the handler runs: reply() may come at once */
    x->waiting = 1;
    x->next = s->waiting;
    s->waiting = x;
    pthread_mutex_unlock(&s->mu);
    int later = s->handler_ex(s->ud, &rq, &r);
    if (user) MHD_free(user);
    if (pass) MHD_free(pass);
    kv_free(&query);
    kv_free(&form);
    pthread_mutex_lock(&s->mu);
    if (later == TBGW_HTTP_LATER && !x->ready && !s->stopping) {
        x->suspended = 1;
        MHD_suspend_connection(c);
        pthread_mutex_unlock(&s->mu);
        return MHD_YES;
    }
    if (x->waiting)
        for (req_ctx **pp = &s->waiting; *pp; pp = &(*pp)->next)
            if (*pp == x) {
                *pp = x->next;
                break;
            }
    x->waiting = 0;
    pthread_mutex_unlock(&s->mu);
    if (later == TBGW_HTTP_LATER && !x->ready) return send_reply(c, 503, "text/plain", "stopping\n", 9);
    if (later == TBGW_HTTP_LATER) return send_reply(c, x->status, x->ctype, x->rbody, x->rlen);
    enum MHD_Result ret = send_reply(c, r.status, r.ctype, r.body, r.len);
    free(r.body);
    return ret;
}

static enum MHD_Result on_request_ex(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                     const char *version, const char *upload, size_t *upload_size,
                                     void **ctx) {
    (void)version;
    server *s = cls;
    req_ctx *x = *ctx;
    if (!x) {
        if (!(x = calloc(1, sizeof *x))) return MHD_NO;
        x->conn = c;
        *ctx = x;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > s->o.max_body) {
            x->too_big = 1;
            refuse(s, c, 413, "body larger than maxBodySize");
            return send_reply(c, 413, "text/plain", "request body too large\n", 23);
        }
        return MHD_YES;
    }
    if (x->ready) /* resumed: the answer is here */
        return send_reply(c, x->status, x->ctype, x->rbody, x->rlen);
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (x->too_big) return MHD_YES;
        if (x->len + n > s->o.max_body) {
            x->too_big = 1;
            free(x->body);
            x->body = NULL;
            x->len = 0;
            return MHD_YES;
        }
        if (x->len + n + 1 > x->cap) {
            size_t nc = x->cap ? x->cap : 1024;
            while (nc < x->len + n + 1) nc *= 2;
            char *nb = realloc(x->body, nc);
            if (!nb) return MHD_NO;
            x->body = nb;
            x->cap = nc;
        }
        memcpy(x->body + x->len, upload, n);
        x->len += n;
        x->body[x->len] = 0;
        return MHD_YES;
    }
    if (x->too_big) {
        refuse(s, c, 413, "body larger than maxBodySize");
        return send_reply(c, 413, "text/plain", "request body too large\n", 23);
    }
    pthread_mutex_lock(&s->mu);
    x->id = ++s->next_id;
    pthread_mutex_unlock(&s->mu);
    return dispatch(s, c, x, url, method);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **ctx,
                         enum MHD_RequestTerminationCode code) {
    (void)c;
    server *s = cls;
    req_ctx *x = *ctx;
    if (!x) return;
    if (code == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED)
        refuse(s, c, 408, "connection timed out (slow client)");
    pthread_mutex_lock(&s->mu);
    if (x->waiting)
        for (req_ctx **pp = &s->waiting; *pp; pp = &(*pp)->next)
            if (*pp == x) {
                *pp = x->next;
                break;
            }
    pthread_mutex_unlock(&s->mu);
    free(x->body);
    free(x->ctype);
    free(x->rbody);
    free(x);
    *ctx = NULL;
}

static int reply(void *p, uint64_t id, unsigned status, const char *ctype, const char *body, size_t len) {
    server *s = p;
    int rc = -1;
    pthread_mutex_lock(&s->mu);
    for (req_ctx **pp = &s->waiting; *pp; pp = &(*pp)->next) {
        req_ctx *x = *pp;
        if (x->id != id || x->ready) continue;
        x->status = status;
        x->ctype = ctype ? strdup(ctype) : NULL;
        if ((x->rbody = malloc(len + 1))) {
            if (len) memcpy(x->rbody, body, len);
            x->rlen = len;
        }
        x->ready = 1;
        *pp = x->next;
        x->waiting = 0;
        /* still inside the handler (not suspended yet): dispatch() answers; else resume */
        if (x->suspended) MHD_resume_connection(x->conn);
        rc = 0;
        break;
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static unsigned cores(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 && n < 256 ? (unsigned)n : 1;
}

static void *start_ex(const tbgw_http_opts *o, tbgw_http_handler_ex handler, void *ud, int *bound_port,
                      char *err, size_t err_len) {
    int tls = o->cert_pem && o->key_pem;
    if (tls && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        snprintf(err, err_len, "this libmicrohttpd has no TLS support");
        return NULL;
    }
    server *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->handler_ex = handler;
    s->ud = ud;
    s->o = *o;
    if (!s->o.max_body) s->o.max_body = 1u << 20;
    unsigned threads = o->threads ? o->threads : cores();
    pthread_mutex_init(&s->mu, NULL);
    unsigned flags =
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (tls) {
        flags |= MHD_USE_TLS;
        s->cert = strdup(o->cert_pem);
        s->key = strdup(o->key_pem);
    }
    struct MHD_OptionItem opts[] = {
        {MHD_OPTION_SOCK_ADDR, 0, (void *)&s->o.sa},
        {MHD_OPTION_CONNECTION_LIMIT, (intptr_t)(o->max_connections ? o->max_connections : 10000), NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)(o->timeout_s ? o->timeout_s : 30), NULL},
        {MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)threads, NULL},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, s},
        {MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, NULL},
        /* MHD clears a connection's pool for every request: 16 KiB (not 32) holds headers and the
         * read buffer; bodies are copied out as they arrive */
        {MHD_OPTION_CONNECTION_MEMORY_LIMIT, 16384, NULL},
        {tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, s->cert},
        {tls ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, s->key},
        {MHD_OPTION_END, 0, NULL},
    };
    s->d = MHD_start_daemon(flags, ntohs(o->sa.sin_port), NULL, NULL, on_request_ex, s, MHD_OPTION_ARRAY,
                            opts, MHD_OPTION_END);
    if (!s->d) {
        char a[INET_ADDRSTRLEN] = "?";
        inet_ntop(AF_INET, &o->sa.sin_addr, a, sizeof a);
        snprintf(err, err_len, "cannot listen on %s:%u%s (port in use, or bad certificate/key?)", a,
                 ntohs(o->sa.sin_port), tls ? " with TLS" : "");
        pthread_mutex_destroy(&s->mu);
        free(s->cert);
        free(s->key);
        free(s);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    *bound_port = di ? di->port : ntohs(o->sa.sin_port);
    return s;
}

static void stop(void *p) {
    server *s = p;
    if (!s) return;
    if (s->handler_ex) { /* answer whatever still waits, then stop */
        pthread_mutex_lock(&s->mu);
        s->stopping = 1;
        pthread_mutex_unlock(&s->mu);
        for (;;) {
            pthread_mutex_lock(&s->mu);
            uint64_t id = s->waiting ? s->waiting->id : 0;
            int any = s->waiting != NULL;
            pthread_mutex_unlock(&s->mu);
            if (!any || reply(s, id, 503, "text/plain", "stopping\n", 9)) break;
        }
    }
    MHD_stop_daemon(s->d);
    pthread_mutex_destroy(&s->mu);
    free(s->cert);
    free(s->key);
    free(s);
}

__attribute__((visibility("default")))
const tbgw_http_module tbgw_http_module_v1 = {start, stop, start_ex, reply};
