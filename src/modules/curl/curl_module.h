/* The HTTP client module (tbgw_curl.so, on libcurl's multi interface), loaded through util/module.h
 * only when a connector makes HTTP requests (Request, REST), so libcurl and its own dependencies are
 * not mapped into gateways that do not. Used through util/http_client.h; the interface carries plain
 * C types only. */
#ifndef TBGW_MODULES_CURL_MODULE_H
#define TBGW_MODULES_CURL_MODULE_H

#include <stddef.h>
#include <stdint.h>

#define TBGW_CURL_MODULE_NAME   "tbgw_curl"
#define TBGW_CURL_MODULE_SYMBOL "tbgw_curl_module_v1"

typedef struct tbgw_http_resp {
    long status;       /* HTTP status; 0 when the transfer failed (error says why) */
    const char *error; /* transport error text or NULL */
    const char *body;  /* NUL-terminated, borrowed for the callback */
    size_t len;
    const char *ctype;  /* response Content-Type or NULL */
    int64_t elapsed_ms; /* from submit to completion */
    int tries;          /* tries made */
} tbgw_http_resp;

/* Called once per submitted request, from poll() (or from client_free with status 0 and error
 * "aborted"). The response is borrowed for the call. */
typedef void (*tbgw_http_done_fn)(void *ud, const tbgw_http_resp *r);

/* One request; every string is copied by submit(). */
typedef struct tbgw_curl_req {
    const char *method, *url;
    const char *const *header_lines; /* "Name: value" */
    size_t n_headers;
    const char *body; /* NULL = no body */
    size_t body_len;
    const char *username, *password, *cert, *key, *ca;
    int verify_tls, follow_redirects, tries;
    int64_t timeout_ms, budget_ms;
    size_t max_body;
} tbgw_curl_req;

typedef struct tbgw_curl_module {
    void *(*client_new)(void);
    void (*client_free)(void *client);
    int (*submit)(void *client, const tbgw_curl_req *r, tbgw_http_done_fn fn, void *ud); /* 0 or < 0 */
    int (*poll)(void *client, int timeout_ms);
    size_t (*running)(const void *client);
    /* poll() that also wakes up when extra_fd (>= 0) is readable; timeout_ms < 0: no limit but the
     * transfers' own timers. *extra_ready: extra_fd was readable (or no wait happened). */
    int (*poll_fd)(void *client, int timeout_ms, int extra_fd, int *extra_ready);
    /* Ends the current (or next) wait of poll/poll_fd early; the one call that any thread may make. */
    void (*wakeup)(void *client);
} tbgw_curl_module;

#endif
