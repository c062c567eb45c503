/* The HTTP server module (tbgw_http.so, on libmicrohttpd): the gateway's HTTP servers (the metrics
 * endpoint and the REST connector). Loaded through util/module.h only when one of them is configured,
 * so libmicrohttpd and its TLS stack are not mapped into gateways that do not use them. The interface
 * carries plain C types only; the module links nothing of the gateway. */
#ifndef TBGW_MODULES_HTTP_MODULE_H
#define TBGW_MODULES_HTTP_MODULE_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#define TBGW_HTTP_MODULE_NAME   "tbgw_http"
#define TBGW_HTTP_MODULE_SYMBOL "tbgw_http_module_v1"

typedef struct tbgw_http_reply {
    unsigned status;   /* HTTP status code */
    const char *ctype; /* Content-Type; a static string */
    char *body;        /* malloc'ed by the handler, freed by the module */
    size_t len;
} tbgw_http_reply;

/* Called on the server's thread for every request; fills out (body may stay NULL: empty). */
typedef void (*tbgw_http_handler)(void *ud, const char *method, const char *url, tbgw_http_reply *out);

/* ---- full requests (start_ex) */

typedef struct tbgw_http_kv {
    const char *key, *value; /* decoded */
    size_t value_len;
} tbgw_http_kv;

/* Everything of one request, borrowed for the handler call. */
typedef struct tbgw_http_request {
    uint64_t id;                        /* names the request in reply() when the handler answers later */
    const char *method, *path, *client; /* client: "address:port" */
    const char *ctype;                  /* Content-Type or NULL */
    const tbgw_http_kv *query;          /* decoded query arguments, in order */
    size_t n_query;
    const tbgw_http_kv *form; /* fields of an x-www-form-urlencoded or multipart/form-data body */
    size_t n_form;
    const char *body; /* the raw body, NUL-terminated (len excludes the NUL) */
    size_t body_len;
    const char *user, *password; /* Basic credentials; NULL when absent or malformed */
} tbgw_http_request;

#define TBGW_HTTP_LATER 1 /* handler result: the answer comes through reply() */

/* Runs on one of the server's threads (several at once). Returns 0 with out filled, or
 * TBGW_HTTP_LATER: the connection waits (without holding a thread) until reply() names req->id. */
typedef int (*tbgw_http_handler_ex)(void *ud, const tbgw_http_request *req, tbgw_http_reply *out);

/* A request the server answered itself (413: body over max_body; 400: malformed request). */
typedef void (*tbgw_http_refusal_fn)(void *ud, const char *client, unsigned status, const char *why);

typedef struct tbgw_http_opts {
    struct sockaddr_in sa; /* port 0: any free port */
    unsigned max_connections;
    unsigned timeout_s;             /* idle connections (slow clients) are closed after this */
    unsigned threads;               /* worker threads (0: one per core) */
    size_t max_body;                /* larger bodies get 413 */
    const char *cert_pem, *key_pem; /* TLS when both are set */
    tbgw_http_refusal_fn on_refusal;
} tbgw_http_opts;

typedef struct tbgw_http_module {
    /* Listens on sa (port 0: any free port, returned in *bound_port). NULL when it cannot listen. */
    void *(*start)(const struct sockaddr_in *sa, unsigned max_connections, unsigned timeout_s,
                   tbgw_http_handler handler, void *ud, int *bound_port);
    /* Stops the server; no handler runs after it returns. Waiting requests are answered 503. */
    void (*stop)(void *server);
    /* A server with full requests. NULL with err filled when it cannot start. */
    void *(*start_ex)(const tbgw_http_opts *o, tbgw_http_handler_ex handler, void *ud, int *bound_port,
                      char *err, size_t err_len);
    /* Answers a request the handler left waiting; any thread. Copies body. 0, or -1 when id is not
     * waiting (already answered, or the server stopped). */
    int (*reply)(void *server, uint64_t id, unsigned status, const char *ctype, const char *body, size_t len);
} tbgw_http_module;

#endif
