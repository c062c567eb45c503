/* /metrics and /healthz (see metrics.h). */
#include "core/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "modules/http/http_module.h"
#include "util/module.h"

struct tbgw_metrics {
    const tbgw_http_module *http;
    void *server;
    pthread_mutex_t mu;
    tbgw_metrics_snap snap; /* latest from the core thread */
    int port;
};

static const char *state_name(int state) {
    switch (state) {
    case TBGW_CONN_STOPPED:
        return "STOPPED";
    case TBGW_CONN_STARTING:
        return "STARTING";
    case TBGW_CONN_CONNECTED:
        return "CONNECTED";
    case TBGW_CONN_DISCONNECTED:
        return "DISCONNECTED";
    case TBGW_CONN_FAILED:
        return "FAILED";
    default:
        return "UNKNOWN";
    }
}

/* Label value escaping: backslash, double quote and newline. */
static void label(tbgw_buf *b, const char *s) {
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            tbgw_buf_putc(b, '\\'), tbgw_buf_putc(b, *s);
        else if (*s == '\n')
            tbgw_buf_puts(b, "\\n");
        else
            tbgw_buf_putc(b, *s);
    }
}

static void metric(tbgw_buf *b, const char *name, const char *type, const char *help, uint64_t v) {
    tbgw_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name,
                    (unsigned long long)v);
}

typedef struct conn_metric {
    const char *name, *type, *help;
    int stat; /* TBGW_STAT_*; -1 storage_pushed, -2 restarts, -3 events_sent */
} conn_metric;

static void render_conns(const tbgw_metrics_snap *s, tbgw_buf *b) {
    static const conn_metric cm[] = {
        {"tbgw_connector_messages_received_total", "counter", "Messages received by the connector",
         TBGW_STAT_MSGS_RECEIVED},
        {"tbgw_connector_bytes_received_total", "counter", "Bytes received by the connector",
         TBGW_STAT_BYTES_RECEIVED},
        {"tbgw_connector_converted_total", "counter", "Messages processed by converters",
         TBGW_STAT_CONV_PROCESSED},
        {"tbgw_connector_converter_dropped_total", "counter", "Messages dropped by converters",
         TBGW_STAT_CONV_DROPPED},
        {"tbgw_connector_errors_total", "counter", "Connector errors", TBGW_STAT_CONNECTOR_ERRORS},
        {"tbgw_connector_converter_errors_total", "counter", "Converter errors", TBGW_STAT_CONVERTER_ERRORS},
        {"tbgw_connector_storage_pushed_total", "counter", "Records the connector put into storage", -1},
        {"tbgw_connector_restarts_total", "counter", "Restarts of the connector after a failure", -2},
        {"tbgw_connector_events_sent_total", "counter",
         "Records of the connector's devices the platform acknowledged", -3},
    };
    tbgw_buf_puts(b, "# HELP tbgw_connector_state Connector state (1 for the current state)\n"
                     "# TYPE tbgw_connector_state gauge\n");
    for (size_t i = 0; i < s->n_conns; i++) {
        const tbgw_metrics_conn *c = &s->conns[i];
        for (int st = TBGW_CONN_STOPPED; st <= TBGW_CONN_FAILED; st++) {
            tbgw_buf_puts(b, "tbgw_connector_state{connector=\"");
            label(b, c->name);
            tbgw_buf_puts(b, "\",type=\"");
            label(b, c->type);
            tbgw_buf_printf(b, "\",state=\"%s\"} %d\n", state_name(st), c->state == st);
        }
    }
    for (size_t k = 0; k < sizeof cm / sizeof cm[0]; k++) {
        tbgw_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", cm[k].name, cm[k].help, cm[k].name, cm[k].type);
        for (size_t i = 0; i < s->n_conns; i++) {
            const tbgw_metrics_conn *c = &s->conns[i];
            uint64_t v = cm[k].stat >= 0    ? c->stats[cm[k].stat]
                         : cm[k].stat == -1 ? c->storage_pushed
                         : cm[k].stat == -2 ? c->restarts
                                            : c->events_sent;
            tbgw_buf_printf(b, "%s{connector=\"", cm[k].name);
            label(b, c->name);
            tbgw_buf_printf(b, "\"} %llu\n", (unsigned long long)v);
        }
    }
}

void tbgw_metrics_render(const tbgw_metrics_snap *s, tbgw_buf *b) {
    metric(b, "tbgw_up", "gauge", "1 while the gateway runs", 1);
    metric(b, "tbgw_platform_connected", "gauge", "1 while the ThingsBoard session is up",
           (uint64_t)s->platform_connected);
    metric(b, "tbgw_messages_sent_total", "counter", "MQTT messages published to the platform", s->msgs_sent);
    metric(b, "tbgw_messages_received_total", "counter", "MQTT messages received from the platform",
           s->msgs_received);
    metric(b, "tbgw_events_produced_total", "counter", "Records produced by connectors and stored",
           s->events_produced);
    metric(b, "tbgw_inflight_messages", "gauge", "Messages published and not yet acknowledged", s->inflight);
    metric(b, "tbgw_devices", "gauge", "Devices known to the gateway", s->devices);
    metric(b, "tbgw_storage_records", "gauge", "Records waiting in storage (queue depth)",
           s->storage_records);
    metric(b, "tbgw_storage_bytes", "gauge", "Payload bytes waiting in storage", s->storage_bytes);
    metric(b, "tbgw_storage_disk_bytes", "gauge", "Bytes the storage uses on disk", s->storage_disk_bytes);
    metric(b, "tbgw_storage_appended_total", "counter", "Records appended to storage", s->storage_appended);
    metric(b, "tbgw_storage_committed_total", "counter", "Records acknowledged by the platform and removed",
           s->storage_committed);
    metric(b, "tbgw_storage_dropped_total", "counter", "Records the storage dropped (cap, TTL, corruption)",
           s->storage_dropped);
    metric(b, "tbgw_storage_refused_total", "counter", "Records the storage refused to append",
           s->storage_refused);
    metric(b, "tbgw_ingress_dropped_total", "counter",
           "Datapoints dropped because the ingress queue was full", s->ingress_dropped);
    metric(b, "tbgw_ingress_refused_total", "counter",
           "Batches refused while the ingress queue was full and kept by their connector for later",
           s->ingress_refused);
    metric(b, "tbgw_filtered_records_total", "counter", "Records dropped by device filtering",
           s->filtered_records);
    metric(b, "tbgw_filtered_datapoints_total", "counter", "Datapoints dropped by device filtering",
           s->filtered_datapoints);
    metric(b, "tbgw_bad_records_total", "counter", "Unreadable records skipped", s->bad_records);
    metric(b, "tbgw_downlink_errors_total", "counter", "Malformed downlink messages", s->downlink_errors);
    metric(b, "tbgw_log_errors_total", "counter", "ERROR and CRITICAL log lines", s->log_errors);
    render_conns(s, b);
}

int tbgw_metrics_health(const tbgw_metrics_snap *s, tbgw_buf *b) {
    int ok = s->platform_connected;
    tbgw_buf_printf(b, "{\"platform\":\"%s\",\"connectors\":{",
                    s->platform_connected ? "connected" : "disconnected");
    for (size_t i = 0; i < s->n_conns; i++) {
        if (s->conns[i].state == TBGW_CONN_FAILED) ok = 0;
        if (i) tbgw_buf_putc(b, ',');
        tbgw_buf_json_str(b, s->conns[i].name);
        tbgw_buf_putc(b, ':');
        tbgw_buf_json_str(b, state_name(s->conns[i].state));
    }
    tbgw_buf_printf(b, "},\"status\":\"%s\"}\n", ok ? "ok" : "unhealthy");
    return ok;
}

/* The body of b moves into the reply. */
static void reply(tbgw_http_reply *r, unsigned status, const char *ctype, tbgw_buf *b) {
    r->status = status;
    r->ctype = ctype;
    r->len = b->len;
    r->body = b->p; /* malloc'ed by tbgw_buf; the module frees it */
    b->p = NULL;
}

static void handler(void *ud, const char *method, const char *url, tbgw_http_reply *r) {
    tbgw_metrics *m = ud;
    tbgw_buf b;
    tbgw_buf_init(&b);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        tbgw_buf_puts(&b, "only GET\n");
        reply(r, 405, "text/plain", &b);
        return;
    }
    tbgw_metrics_snap *s = malloc(sizeof *s);
    if (!s) return; /* 500, empty */
    pthread_mutex_lock(&m->mu);
    memcpy(s, &m->snap, sizeof *s);
    pthread_mutex_unlock(&m->mu);
    if (strcmp(url, "/metrics") == 0) {
        tbgw_metrics_render(s, &b);
        reply(r, 200, "text/plain; version=0.0.4; charset=utf-8", &b);
    } else if (strcmp(url, "/healthz") == 0) {
        int ok = tbgw_metrics_health(s, &b);
        reply(r, ok ? 200 : 503, "application/json", &b);
    } else {
        tbgw_buf_puts(&b, "not found: try /metrics or /healthz\n");
        reply(r, 404, "text/plain", &b);
    }
    tbgw_buf_free(&b);
    free(s);
}

tbgw_metrics *tbgw_metrics_start(const char *host, int port, tbgw_err *err) {
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host ? host : "127.0.0.1", &sa.sin_addr) != 1) {
        tbgw_err_set(err, TBGW_EINVAL,
                     "metrics.host: expected an IPv4 address such as 127.0.0.1 or 0.0.0.0, got \"%s\"", host);
        return NULL;
    }
    const tbgw_http_module *http = tbgw_module_symbol(TBGW_HTTP_MODULE_NAME, TBGW_HTTP_MODULE_SYMBOL, err);
    if (!http) return NULL;
    tbgw_metrics *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    pthread_mutex_init(&m->mu, NULL);
    m->http = http;
    m->server = http->start(&sa, 16, 10, handler, m, &m->port);
    if (!m->server) {
        tbgw_err_set(err, TBGW_EIO, "cannot listen on %s:%d (port in use?); /metrics is off", host, port);
        pthread_mutex_destroy(&m->mu);
        free(m);
        return NULL;
    }
    return m;
}

int tbgw_metrics_port(const tbgw_metrics *m) {
    return m ? m->port : 0;
}

void tbgw_metrics_update(tbgw_metrics *m, const tbgw_metrics_snap *s) {
    if (!m) return;
    pthread_mutex_lock(&m->mu);
    memcpy(&m->snap, s, sizeof *s - sizeof s->conns + s->n_conns * sizeof s->conns[0]);
    pthread_mutex_unlock(&m->mu);
}

void tbgw_metrics_stop(tbgw_metrics *m) {
    if (!m) return;
    m->http->stop(m->server);
    pthread_mutex_destroy(&m->mu);
    free(m);
}
