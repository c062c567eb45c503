/* Asynchronous HTTP(S) client on one libcurl multi handle, driven by the thread that owns it. The
 * libcurl part is the module tbgw_curl.so (modules/curl/curl_module.h), loaded by the first
 * tbgw_http_client_new(), so gateways without HTTP connectors never map libcurl.
 *
 * Requests are submitted with a completion callback; tbgw_http_client_poll() waits (curl_multi_poll)
 * for socket activity up to a timeout, advances every transfer and calls the callbacks of the finished
 * ones, on the calling thread. A slow or dead server only holds its own transfer: every transfer has
 * its own timeout and they all progress concurrently. Used by the Request connector (polling and
 * downlink) and the REST connector (outgoing attribute updates and RPC). Not thread-safe: one owner
 * (tbgw_http_client_wakeup excepted). */
#ifndef TBGW_UTIL_HTTP_CLIENT_H
#define TBGW_UTIL_HTTP_CLIENT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <tbgw/err.h>
#include "modules/curl/curl_module.h"

typedef struct tbgw_http_client tbgw_http_client;

typedef struct tbgw_http_req {
    const char *method; /* "GET", "POST", ... (NULL = GET) */
    const char *url;
    const json_t *headers; /* {"Name": "value"} or NULL; non-string values are sent as JSON text */
    const char *body;      /* NULL = no body */
    size_t body_len;
    const char *username, *password; /* basic auth when username is not NULL */
    const char *cert, *key, *ca;     /* client certificate and key (PEM), CA bundle; NULL = none */
    int verify_tls;                  /* verify the server certificate and host name */
    int follow_redirects;
    int64_t timeout_ms; /* one try; <= 0: 30 s */
    size_t max_body;    /* response bytes kept; 0 = 16 MiB */
    /* Retries: a try that fails (transport error or HTTP 5xx) is repeated after a capped backoff
     * (100 ms doubling, at most 2 s) up to `tries` tries in all (0 or 1: once), within `budget_ms`
     * from submit when > 0 (each try's timeout is cut to what is left). */
    int tries;
    int64_t budget_ms;
} tbgw_http_req;

/* tbgw_http_resp and tbgw_http_done_fn: see modules/curl/curl_module.h. */

/* NULL with err naming the problem (the module cannot be loaded, or no memory). */
tbgw_http_client *tbgw_http_client_new(tbgw_err *err);
/* Aborts the transfers still running (their callbacks run with error "aborted") and frees. */
void tbgw_http_client_free(tbgw_http_client *c);
/* Starts a request; every string of r is copied. 0, or a negative TBGW_E* (the callback is not
 * called then). */
int tbgw_http_client_submit(tbgw_http_client *c, const tbgw_http_req *r, tbgw_http_done_fn fn, void *ud);
/* Waits up to timeout_ms for activity, advances the transfers and completes the finished ones.
 * Returns the number of transfers still running. */
int tbgw_http_client_poll(tbgw_http_client *c, int timeout_ms);
/* The same, also woken up when extra_fd (>= 0; a connector's host->downlink_fd) is readable:
 * the loop of a connector that sleeps on its transfers and its downlink at once. timeout_ms < 0
 * waits for activity only (retries and transfer timeouts still wake it up). *extra_ready: extra_fd
 * was readable, or no wait happened (timeout 0) — dispatch then. */
int tbgw_http_client_poll_fd(tbgw_http_client *c, int timeout_ms, int extra_fd, int *extra_ready);
size_t tbgw_http_client_running(const tbgw_http_client *c);
/* One turn of a connector loop around the client: waits until due (monotonic ms; INT64_MAX: no timer
 * of the caller's own), a transfer's activity or extra_fd; with extra_fd < 0 (a host without
 * downlink_fd) at most slice_ms, and *extra_ready is then 1 (the caller dispatches every turn). */
int tbgw_http_client_poll_until(tbgw_http_client *c, int64_t due, int extra_fd, int slice_ms,
                                int *extra_ready);
/* Ends the owner's current (or next) wait early: the one call other threads may make. */
void tbgw_http_client_wakeup(tbgw_http_client *c);

#endif
