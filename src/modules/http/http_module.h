/* The HTTP server module (tbgw_http.so, on libmicrohttpd): a small server for the gateway's own
 * endpoints. Loaded through util/module.h only when an endpoint is configured, so libmicrohttpd and
 * its TLS stack are not mapped into gateways that do not use them. The interface carries plain C
 * types only; the module links nothing of the gateway. */
#ifndef TBGW_MODULES_HTTP_MODULE_H
#define TBGW_MODULES_HTTP_MODULE_H

#include <netinet/in.h>
#include <stddef.h>

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

typedef struct tbgw_http_module {
    /* Listens on sa (port 0: any free port, returned in *bound_port). NULL when it cannot listen. */
    void *(*start)(const struct sockaddr_in *sa, unsigned max_connections, unsigned timeout_s,
                   tbgw_http_handler handler, void *ud, int *bound_port);
    /* Stops the server; no handler runs after it returns. */
    void (*stop)(void *server);
} tbgw_http_module;

#endif
