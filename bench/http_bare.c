/* The ceiling for the REST bench: the HTTP module (tbgw_http.so, libmicrohttpd, the same options the
 * REST connector uses) with a handler that only answers 200. Usage: bench_http_bare -p port [-t threads]
 * Runs until killed; prints "ready" on stderr once listening. */
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "modules/http/http_module.h"
#include "util/module.h"

static int handler(void *ud, const tbgw_http_request *rq, tbgw_http_reply *out) {
    (void)ud;
    (void)rq;
    out->status = 200;
    out->ctype = "text/plain";
    return 0;
}

int main(int argc, char **argv) {
    int port = 0, opt;
    unsigned threads = 0;
    while ((opt = getopt(argc, argv, "p:t:")) != -1) {
        if (opt == 'p') port = atoi(optarg);
        else if (opt == 't') threads = (unsigned)atoi(optarg);
    }
    tbgw_err err = {0};
    const tbgw_http_module *m = tbgw_module_symbol(TBGW_HTTP_MODULE_NAME, TBGW_HTTP_MODULE_SYMBOL, &err);
    if (!m) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    tbgw_http_opts o = {.max_connections = 10000, .timeout_s = 30, .threads = threads, .max_body = 1u << 20};
    o.sa.sin_family = AF_INET;
    o.sa.sin_port = htons((uint16_t)port);
    o.sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char text[200];
    int bound;
    void *s = m->start_ex(&o, handler, NULL, &bound, text, sizeof text);
    if (!s) {
        fprintf(stderr, "%s\n", text);
        return 1;
    }
    fprintf(stderr, "ready on %d\n", bound);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    int sig;
    sigwait(&set, &sig);
    m->stop(s);
    return 0;
}
