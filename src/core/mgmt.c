/* Gateway management hooks on the core thread (see mgmt.h). */
#include "core/mgmt.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <tbgw/log.h>
#include <unistd.h>

#include "core/filter.h"
#include "core/gateway.h"
#include "core/gateway_int.h"
#include "core/metrics.h"
#include "core/shell.h"
#include "platform/tb_codec.h"
#include "util/log_config.h"
#include "util/time.h"

#define LOG_QUEUE_CAP       1000
#define LOG_LINES_PER_MSG   20
#define LOG_FLUSH_MS        1000
#define ERRORS_SEND_MS      5000
#define ERRORS_RESET_MS     60000
#define FILTER_LOG_EVERY_MS 10000
#define REMOTE_FORMAT                                                                                        \
    "%(asctime)s,%(msecs)03d - |%(levelname)s|<%(threadName)s> [%(filename)s] - %(module)s %(funcName)s - "  \
    "%(lineno)d - %(message)s"

typedef struct log_line {
    int64_t ts;
    char *key; /* SERVICE_LOGS, <connector>_LOGS, ... */
    char *line;
    int also_logs; /* gateway loggers also fill "LOGS" */
} log_line;

typedef struct remote_conn {
    char *name;
    int level;
} remote_conn;

typedef struct tbgw_mgmt {
    struct tbgw_gateway *gw;
    tbgw_logger *log;
    /* remote logging: the sink runs on any thread */
    pthread_mutex_t mu;
    log_line q[LOG_QUEUE_CAP];
    size_t q_head, q_len;
    uint64_t q_dropped;
    int remote_level; /* atomic; TBGW_NONE = off */
    remote_conn *rconns;
    size_t n_rconns;
    int64_t last_flush, last_log_ts;
    /* error counters */
    json_t *err_base, *err_sent;
    int64_t err_last_send, err_last_reset;
    /* filtering */
    tbgw_filter *filter;
    uint64_t filtered_records, filtered_dps;
    int64_t filter_last_log;
    /* inactivity */
    int64_t inact_last;
    /* reboot */
    int64_t reboot_at;
    /* metrics */
    tbgw_metrics *metrics;
    tbgw_metrics_snap snap;
    /* remote shell */
    tbgw_shell *shell;
} tbgw_mgmt;

/* ---- remote logging ----------------------------------------------------------------------- */

const char *tbgw_mgmt_log_key(const char *logger, char *buf, size_t n) {
    static const char *const map[][2] = {{"service", "SERVICE_LOGS"},
                                         {"extension", "EXTENSION_LOGS"},
                                         {"tb_connection", "CONNECTION_LOGS"},
                                         {"storage", "STORAGE_LOGS"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(logger, map[i][0]) == 0) return map[i][1];
    const char *dot = strchr(logger, '.');
    if (dot && (strncmp(logger, "connector.", 10) == 0 || strncmp(logger, "converter.", 10) == 0)) {
        snprintf(buf, n, "%s_LOGS", dot + 1);
        return buf;
    }
    return NULL;
}

/* Level at which a logger's lines go to the platform (TBGW_NONE: not at all). */
static int remote_level_for(tbgw_mgmt *m, const char *logger) {
    const char *dot = strchr(logger, '.');
    if (dot && (strncmp(logger, "connector.", 10) == 0 || strncmp(logger, "converter.", 10) == 0)) {
        for (size_t i = 0; i < m->n_rconns; i++)
            if (strcmp(m->rconns[i].name, dot + 1) == 0) return m->rconns[i].level;
        return TBGW_NONE;
    }
    return __atomic_load_n(&m->remote_level, __ATOMIC_RELAXED);
}

static void log_sink(void *ud, const tbgw_logger *lg, const tbgw_log_record *r) {
    tbgw_mgmt *m = ud;
    int lvl = remote_level_for(m, lg->name);
    if (lvl >= TBGW_NONE || r->level < lvl) return;
    char kb[128];
    const char *key = tbgw_mgmt_log_key(lg->name, kb, sizeof kb);
    if (!key) return;
    char line[2400];
    tbgw_log_format(REMOTE_FORMAT, "%Y-%m-%d %H:%M:%S", r, line, sizeof line);
    char *k = strdup(key), *l = strdup(line);
    pthread_mutex_lock(&m->mu);
    if (m->q_len == LOG_QUEUE_CAP || !k || !l) {
        m->q_dropped++;
        pthread_mutex_unlock(&m->mu);
        free(k);
        free(l);
        return;
    }
    log_line *e = &m->q[(m->q_head + m->q_len++) % LOG_QUEUE_CAP];
    e->ts = (int64_t)r->tv.tv_sec * 1000 + r->tv.tv_usec / 1000;
    e->key = k;
    e->line = l;
    e->also_logs = strncmp(lg->name, "connector.", 10) != 0 && strncmp(lg->name, "converter.", 10) != 0;
    pthread_mutex_unlock(&m->mu);
}

/* One telemetry message of at most LOG_LINES_PER_MSG lines; at most one per tick, so the platform
 * gets at most 10 log messages a second. */
static void flush_logs(tbgw_mgmt *m, int64_t now) {
    tbgw_gateway *gw = m->gw;
    log_line batch[LOG_LINES_PER_MSG];
    size_t n = 0;
    uint64_t dropped;
    pthread_mutex_lock(&m->mu);
    if (m->q_len == 0 || (m->q_len < LOG_LINES_PER_MSG && now - m->last_flush < LOG_FLUSH_MS)) {
        pthread_mutex_unlock(&m->mu);
        return;
    }
    while (n < LOG_LINES_PER_MSG && m->q_len) {
        batch[n++] = m->q[m->q_head];
        m->q_head = (m->q_head + 1) % LOG_QUEUE_CAP;
        m->q_len--;
    }
    dropped = m->q_dropped;
    m->q_dropped = 0;
    pthread_mutex_unlock(&m->mu);
    m->last_flush = now;
    tbgw_converted *c = tbgw_converted_new("currentThingsBoardGateway", "gateway");
    for (size_t i = 0; i < n; i++) {
        /* one entry per line: equal timestamps would overwrite each other on the platform */
        int64_t ts = batch[i].ts > m->last_log_ts ? batch[i].ts : m->last_log_ts + 1;
        m->last_log_ts = ts;
        tbgw_value v = tbgw_value_string(batch[i].line);
        if (c) {
            tbgw_converted_add_telemetry(c, ts, batch[i].key, &v, NULL);
            if (batch[i].also_logs) tbgw_converted_add_telemetry(c, ts, "LOGS", &v, NULL);
        }
        free(batch[i].key);
        free(batch[i].line);
    }
    if (c && dropped) {
        char note[128];
        snprintf(note, sizeof note, "%llu log line(s) not sent: remote log queue full",
                 (unsigned long long)dropped);
        tbgw_value v = tbgw_value_string(note);
        tbgw_converted_add_telemetry(c, ++m->last_log_ts, "LOGS", &v, NULL);
    }
    if (c) tbgw_gw_store_own_converted(gw, c);
    tbgw_converted_free(c);
}

static void clear_queue(tbgw_mgmt *m) {
    pthread_mutex_lock(&m->mu);
    while (m->q_len) {
        free(m->q[m->q_head].key);
        free(m->q[m->q_head].line);
        m->q_head = (m->q_head + 1) % LOG_QUEUE_CAP;
        m->q_len--;
    }
    pthread_mutex_unlock(&m->mu);
}

void tbgw_mgmt_remote_level(tbgw_gateway *gw, int level) {
    tbgw_mgmt *m = gw->mgmt;
    if (!m) return;
    __atomic_store_n(&m->remote_level, level >= TBGW_NONE ? TBGW_NONE : level, __ATOMIC_RELAXED);
    if (level >= TBGW_NONE) clear_queue(m);
}

/* ---- error counters ----------------------------------------------------------------------- */

static void collect_errors(void *ud, tbgw_logger *lg) {
    json_t *cur = ud;
    uint64_t e = __atomic_load_n(&lg->errors, __ATOMIC_RELAXED);
    if (!e) return;
    const char *name = lg->name, *dot = strchr(name, '.');
    if (dot && (strncmp(name, "connector.", 10) == 0 || strncmp(name, "converter.", 10) == 0)) name = dot + 1;
    char key[160];
    snprintf(key, sizeof key, "%s_ERRORS_COUNT", name);
    json_int_t prev = json_integer_value(json_object_get(cur, key));
    json_object_set_new(cur, key, json_integer(prev + (json_int_t)e));
}

static void send_errors(tbgw_mgmt *m, int64_t now) {
    json_t *cur = json_object();
    tbgw_log_foreach(collect_errors, cur);
    if (now - m->err_last_reset >= ERRORS_RESET_MS) {
        m->err_last_reset = now;
        json_decref(m->err_base);
        m->err_base = json_deep_copy(cur);
    }
    json_t *batch = json_object();
    const char *k;
    json_t *v;
    json_int_t all = 0;
    json_object_foreach(cur, k, v) {
        json_int_t n = json_integer_value(v) - json_integer_value(json_object_get(m->err_base, k));
        json_object_set_new(batch, k, json_integer(n));
        all += n;
    }
    json_decref(cur);
    json_object_set_new(batch, "ALL_ERRORS_COUNT", json_integer(all));
    /* nothing is sent until the first error: an error-free gateway stays quiet */
    int first_quiet = !m->err_sent && all == 0;
    if (!first_quiet && (!m->err_sent || !json_equal(batch, m->err_sent))) {
        tbgw_converted *c = tbgw_converted_new("currentThingsBoardGateway", "gateway");
        int64_t ts = tbgw_now_ms();
        json_object_foreach(batch, k, v) {
            tbgw_value tv = tbgw_value_int(json_integer_value(v));
            if (c) tbgw_converted_add_telemetry(c, ts, k, &tv, NULL);
        }
        if (c) tbgw_gw_store_own_converted(m->gw, c);
        tbgw_converted_free(c);
        json_decref(m->err_sent);
        m->err_sent = batch;
    } else {
        json_decref(batch);
    }
}

/* ---- device filtering and inactivity ------------------------------------------------------ */

int tbgw_mgmt_accept(tbgw_gateway *gw, conn_inst *ci, const char *device, size_t datapoints) {
    tbgw_mgmt *m = gw->mgmt;
    if (!m || !m->filter || tbgw_filter_allows(m->filter, ci->entry->name, device)) return 1;
    m->filtered_records++;
    m->filtered_dps += datapoints;
    int64_t now = tbgw_mono_ms();
    if (now - m->filter_last_log >= FILTER_LOG_EVERY_MS) {
        m->filter_last_log = now;
        TBGW_INFOF(m->log,
                   "device filter: dropped data of \"%s\" from connector \"%s\" (%llu record(s), %llu "
                   "datapoint(s) dropped so far)",
                   device, ci->entry->name, (unsigned long long)m->filtered_records,
                   (unsigned long long)m->filtered_dps);
    }
    return 0;
}

static void check_inactivity(tbgw_mgmt *m) {
    tbgw_gateway *gw = m->gw;
    int64_t now = tbgw_now_ms(), timeout = (int64_t)gw->cfg->inactivity_timeout_s * 1000;
    const char *k;
    void *v;
    for (size_t i = 0; (i = tbgw_hmap_next(&gw->devs.by_name, i, &k, &v)) != 0;) {
        tbgw_device *d = v;
        if (!d->last_seen_ms) d->last_seen_ms = now; /* known from connected_devices.json: from now on */
        if (d->inactive || !d->connect_sent || now - d->last_seen_ms <= timeout) continue;
        TBGW_INFOF(m->log,
                   "device \"%s\" sent nothing for %lld s (inactivityTimeoutSeconds %d); disconnecting",
                   d->name, (long long)((now - d->last_seen_ms) / 1000), gw->cfg->inactivity_timeout_s);
        tbgw_gw_publish_disconnect(gw, d->name);
        d->inactive = 1;
        d->connect_sent = 0;
    }
}

/* ---- RPC: reboot, remote shell ------------------------------------------------------------- */

static void reply(tbgw_gateway *gw, int64_t id, json_t *content, int qos) {
    char topic[128];
    char *payload = tb_codec_rpc_reply(NULL, id, content, -1, topic, sizeof topic);
    json_decref(content);
    if (!payload) return;
    tbgw_gw_publish(gw, topic, payload, strlen(payload), qos);
    free(payload);
}

static void run_detached(const char *cmd) {
    pid_t pid = fork();
    if (pid == 0) {
        setsid();
        if (fork() == 0) {
            execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
            _exit(127);
        }
        _exit(0);
    }
    if (pid > 0) waitpid(pid, NULL, 0);
}

/* Deletes <config dir>/.credentials: the next start provisions again. */
static json_t *remove_credentials(tbgw_gateway *gw) {
    char *p = tbgw_config_resolve(gw->cfg, ".credentials");
    json_t *r;
    if (!p) return json_pack("{s:s,s:i}", "error", "out of memory", "code", 500);
    if (access(p, F_OK) != 0) {
        r = json_pack("{s:s,s:i}", "error", "no provisioned credentials found", "code", 404);
    } else if (unlink(p) != 0) {
        char msg[300];
        snprintf(msg, sizeof msg, "cannot remove %s: %s", p, strerror(errno));
        r = json_pack("{s:s,s:i}", "error", msg, "code", 500);
    } else {
        TBGW_WARNF(gw->log, "provisioned credentials %s removed; the next start provisions again", p);
        r = json_pack("{s:i,s:s}", "code", 200, "resp",
                      "provisioned credentials removed; the next start provisions again");
    }
    free(p);
    return r;
}

int tbgw_mgmt_rpc(tbgw_gateway *gw, int64_t id, const char *method, const json_t *params) {
    tbgw_mgmt *m = gw->mgmt;
    if (!m) return 0;
    if (strcmp(method, "gateway_reboot") == 0) {
        if (!gw->cfg->allow_reboot) {
            TBGW_WARNF(m->log, "gateway_reboot refused: thingsboard.allowReboot is false");
            reply(
                gw, id,
                json_pack("{s:s,s:i}", "error",
                          "gateway_reboot is disabled on this gateway (set thingsboard.allowReboot to true)",
                          "code", 403),
                1);
            return 1;
        }
        double delay = json_is_number(params) ? json_number_value(params) : 0;
        if (delay < 1) delay = 1;
        m->reboot_at = tbgw_mono_ms() + (int64_t)(delay * 1000);
        TBGW_WARNF(m->log, "gateway_reboot: running \"%s\" in %.0f s", gw->cfg->reboot_command, delay);
        reply(gw, id, json_pack("{s:b}", "success", 1), 1);
        return 1;
    }
    if (strcmp(method, "gateway_remove_provisioned_credentials") == 0) {
        reply(gw, id, remove_credentials(gw), 1);
        return 1;
    }
    if (tbgw_shell_is_method(method)) {
        if (!gw->cfg->remote_shell) {
            reply(gw, id,
                  json_pack("{s:s,s:i}", "error",
                            "remote shell is disabled on this gateway (thingsboard.remoteShell is false)",
                            "code", 403),
                  0);
            return 1;
        }
        if (!m->shell) m->shell = tbgw_shell_new(m->log);
        json_t *r = m->shell ? tbgw_shell_call(m->shell, method, params)
                             : json_pack("{s:s,s:i}", "error", "out of memory", "code", 500);
        reply(gw, id, r, 0);
        return 1;
    }
    return 0;
}

/* ---- metrics snapshot --------------------------------------------------------------------- */

static void snapshot(tbgw_mgmt *m) {
    tbgw_gateway *gw = m->gw;
    tbgw_metrics_snap *s = &m->snap;
    s->platform_connected = gw->ready;
    s->msgs_sent = gw->cnt.msgs_pushed;
    s->msgs_received = gw->cnt.msgs_received;
    s->events_produced = gw->cnt.events_produced;
    s->storage_refused = gw->cnt.storage_drops;
    s->ingress_dropped = __atomic_load_n(&gw->cnt.ingress_drops, __ATOMIC_RELAXED);
    s->ingress_refused = __atomic_load_n(&gw->cnt.ingress_refused, __ATOMIC_RELAXED);
    s->bad_records = gw->cnt.bad_records;
    s->downlink_errors = gw->cnt.downlink_errors;
    s->filtered_records = m->filtered_records;
    s->filtered_datapoints = m->filtered_dps;
    s->log_errors = tbgw_log_error_total();
    tbgw_storage_stats ss;
    gw->st->ops->stats(gw->st, &ss);
    s->storage_records = ss.records;
    s->storage_bytes = ss.bytes;
    s->storage_disk_bytes = ss.disk_bytes;
    s->storage_dropped = ss.dropped;
    s->storage_appended = ss.appended;
    s->storage_committed = ss.committed;
    s->inflight = gw->inflight_msgs;
    s->devices = gw->devs.by_name.count;
    size_t n = 0;
    for (size_t i = 0; i < gw->n_conns && n < TBGW_METRICS_MAX_CONNS; i++) {
        conn_inst *ci = gw->conns[i];
        if (!ci) continue;
        tbgw_metrics_conn *mc = &s->conns[n++];
        snprintf(mc->name, sizeof mc->name, "%s", ci->entry->name);
        snprintf(mc->type, sizeof mc->type, "%s", ci->entry->type);
        tbgw_conn_state st;
        tbgw_conn_state_get(ci, &st, NULL, 0);
        mc->state = (int)st;
        mc->restarts = ci->restarts;
        for (int k = 0; k < TBGW_STAT__COUNT; k++)
            mc->stats[k] = ci->stats_total[k] + __atomic_load_n(&ci->stats[k], __ATOMIC_RELAXED);
        mc->storage_pushed = ci->storage_pushed;
        mc->events_sent = ci->events_sent;
    }
    s->n_conns = n;
    tbgw_metrics_update(m->metrics, s);
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

void tbgw_mgmt_tick(tbgw_gateway *gw, int64_t now) {
    tbgw_mgmt *m = gw->mgmt;
    if (!m) return;
    if (gw->ready) flush_logs(m, now);
    if (gw->ready && now - m->err_last_send >= ERRORS_SEND_MS) {
        m->err_last_send = now;
        send_errors(m, now);
    }
    if (gw->cfg->inactivity_check && gw->ready &&
        now - m->inact_last >=
            (int64_t)(gw->cfg->inactivity_period_s > 0 ? gw->cfg->inactivity_period_s : 1) * 1000) {
        m->inact_last = now;
        check_inactivity(m);
    }
    if (m->reboot_at && now >= m->reboot_at) {
        m->reboot_at = 0;
        TBGW_WARNF(m->log, "gateway_reboot: running \"%s\"", gw->cfg->reboot_command);
        run_detached(gw->cfg->reboot_command);
    }
    if (m->metrics) snapshot(m);
}

int64_t tbgw_mgmt_next_due(tbgw_gateway *gw, int64_t now) {
    tbgw_mgmt *m = gw->mgmt;
    int64_t due = INT64_MAX;
    if (!m) return due;
#define MG_AT(x)                                                                                             \
    do {                                                                                                     \
        int64_t t_ = (x);                                                                                    \
        if (t_ < due) due = t_;                                                                              \
    } while (0)
    if (gw->ready) MG_AT(m->err_last_send + ERRORS_SEND_MS);
    if (gw->ready && (m->n_rconns || __atomic_load_n(&m->remote_level, __ATOMIC_RELAXED) != TBGW_NONE)) {
        /* lines are queued from any thread without waking the loop: looked at once a second */
        pthread_mutex_lock(&m->mu);
        size_t q = m->q_len;
        pthread_mutex_unlock(&m->mu);
        MG_AT(q >= LOG_LINES_PER_MSG ? now : q ? m->last_flush + LOG_FLUSH_MS : now + LOG_FLUSH_MS);
    }
    if (gw->cfg->inactivity_check && gw->ready)
        MG_AT(m->inact_last +
              (int64_t)(gw->cfg->inactivity_period_s > 0 ? gw->cfg->inactivity_period_s : 1) * 1000);
    if (m->reboot_at) MG_AT(m->reboot_at);
    if (m->metrics) MG_AT(now + 100); /* the /metrics snapshot */
#undef MG_AT
    return due;
}

static void load_remote_conns(tbgw_mgmt *m, const tbgw_config *cfg) {
    m->rconns = calloc(cfg->n_conns + 1, sizeof *m->rconns);
    if (!m->rconns) return;
    for (size_t i = 0; i < cfg->n_conns; i++) {
        const tbgw_conn_entry *e = &cfg->conns[i];
        json_t *root = tbgw_doc_tree(e->doc); /* packed once its connector was created */
        int on = json_is_true(json_object_get(root, "enableRemoteLogging"));
        int lvl = tbgw_level_parse(json_string_value(json_object_get(root, "logLevel")));
        json_decref(root);
        if (!on) continue;
        m->rconns[m->n_rconns].name = strdup(e->name);
        m->rconns[m->n_rconns++].level = lvl >= 0 ? lvl : TBGW_INFO;
    }
}

int tbgw_mgmt_new(tbgw_gateway *gw) {
    tbgw_mgmt *m = calloc(1, sizeof *m);
    if (!m) return TBGW_ENOMEM;
    m->gw = gw;
    m->log = gw->log;
    m->remote_level = TBGW_NONE;
    m->err_last_reset = tbgw_mono_ms();
    pthread_mutex_init(&m->mu, NULL);
    gw->mgmt = m;
    load_remote_conns(m, gw->cfg);
    if (gw->cfg->filter_enable) {
        char *path = tbgw_config_resolve(gw->cfg, gw->cfg->filter_file);
        tbgw_err err = {0};
        m->filter = tbgw_filter_load(path, &err);
        free(path);
        if (!m->filter) {
            TBGW_ERRORF(m->log, "thingsboard.deviceFiltering: %s", err.msg);
            return TBGW_EINVAL;
        }
        TBGW_INFOF(m->log, "device filtering enabled (%s)", gw->cfg->filter_file);
    }
    return 0;
}

void tbgw_mgmt_start(tbgw_gateway *gw) {
    tbgw_mgmt *m = gw->mgmt;
    if (!m) return;
    tbgw_log_set_record_sink(log_sink, m);
    if (gw->cfg->metrics_enable) {
        tbgw_err err = {0};
        m->metrics = tbgw_metrics_start(gw->cfg->metrics_host, gw->cfg->metrics_port, &err);
        if (!m->metrics) {
            TBGW_ERRORF(m->log, "metrics: %s", err.msg);
        } else {
            snapshot(m);
            TBGW_INFOF(m->log, "metrics on http://%s:%d/metrics and /healthz", gw->cfg->metrics_host,
                       tbgw_metrics_port(m->metrics));
        }
    }
}

void tbgw_mgmt_free(tbgw_gateway *gw) {
    tbgw_mgmt *m = gw->mgmt;
    if (!m) return;
    tbgw_log_set_record_sink(NULL, NULL);
    tbgw_metrics_stop(m->metrics);
    tbgw_shell_free(m->shell);
    clear_queue(m);
    tbgw_filter_free(m->filter);
    for (size_t i = 0; i < m->n_rconns; i++) free(m->rconns[i].name);
    free(m->rconns);
    json_decref(m->err_base);
    json_decref(m->err_sent);
    pthread_mutex_destroy(&m->mu);
    free(m);
    gw->mgmt = NULL;
}

int tbgw_mgmt_check(const tbgw_config *cfg, FILE *out) {
    int errors = 0;
    if (cfg->filter_enable) {
        char *path = tbgw_config_resolve(cfg, cfg->filter_file);
        tbgw_err err = {0};
        tbgw_filter *f = tbgw_filter_load(path, &err);
        free(path);
        if (!f) {
            fprintf(out, "%s\n", err.msg);
            errors++;
        }
        tbgw_filter_free(f);
    }
    return errors;
}
