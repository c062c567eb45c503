/* tbgw_http.so: the HTTP server module (see http_module.h) on libmicrohttpd. */
#include <microhttpd.h>
#include <stdlib.h>

#include "modules/http/http_module.h"

typedef struct server {
    struct MHD_Daemon *d;
    tbgw_http_handler handler;
    void *ud;
} server;

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
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, ntohs(sa->sin_port), NULL,
                            NULL, on_request, s, MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)sa,
                            MHD_OPTION_CONNECTION_LIMIT, max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
                            timeout_s, MHD_OPTION_END);
    if (!s->d) {
        free(s);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    *bound_port = di ? di->port : ntohs(sa->sin_port);
    return s;
}

static void stop(void *p) {
    server *s = p;
    if (!s) return;
    MHD_stop_daemon(s->d);
    free(s);
}

__attribute__((visibility("default"))) const tbgw_http_module tbgw_http_module_v1 = {start, stop};
