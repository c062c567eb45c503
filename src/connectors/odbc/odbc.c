/* ODBC connector (docs/connectors/odbc.md): polls a database through unixODBC with an iterator
 * column (optionally persisted across restarts), maps each row onto a device record, and runs
 * RPCs and attribute updates as SQL statements or procedure calls with bound parameters. Every
 * statement carries SQL_ATTR_QUERY_TIMEOUT (and a watchdog cancels it past that), so a hanging query
 * cannot stall the connector: statements run synchronously on the connector thread, and downlink
 * queued meanwhile waits at most polling.queryTimeout (30 s by default) or one batch of 100 rows;
 * between polls the thread sleeps on host->downlink_fd and serves downlink the moment it arrives. */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/evp.h>
#include <tbgw/connector.h>
#include <tbgw/connkit.h>

#include "util/json.h"
#include "connectors/odbc/odbc_internal.h"
#include "convert/custom_conv.h"
#include "connectors/odbc/odbc_sql.h"
#include "util/backoff.h"
#include "util/fileio.h"
#include "util/time.h"

#define BATCH_ROWS 100

typedef struct attr_update {
    regex_t dev, key;
    const char *query;
    const json_t *args;
} attr_update;

/* Cancels a statement that runs past its timeout, for drivers that do not honour
 * SQL_ATTR_QUERY_TIMEOUT in every wait (SQLite's lock waits): SQLCancel from a second thread. */
typedef struct watchdog {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    SQLHSTMT st;
    struct timespec deadline;
    int quit, running, fired;
} watchdog;

typedef struct odbcc {
    const tbgw_host *h;
    json_t *cfg;
    const char *conn_str;
    const json_t *conn_attrs;
    int reconnect;
    int64_t reconnect_ms, period_ms;
    int query_timeout_s;
    const char *query, *it_col, *it_query;
    const json_t *it_value_cfg;
    int persistent;
    odbc_mapping map;
    int has_map;              /* 0: a custom converter without mapping.device.name */
    tbgw_custom_conv *custom; /* "converter": rows go to this plugin */
    json_t *methods;          /* name -> {args, query, result} */
    int enable_unknown, override_cfg;
    attr_update *aus;
    size_t n_aus;
    /* runtime (connector thread) */
    SQLHENV env;
    SQLHDBC dbc;
    SQLHSTMT poll;
    int connected;
    json_t *it_value; /* NULL until known */
    int64_t total;
    char it_path[1200];
    tbgw_py_ctx *py;
    odbc_codec cx; /* connection.encoding / decoding */
    int cx_open;
    watchdog wd;
    volatile int stop;
} odbcc;

static void *wd_main(void *arg) {
    watchdog *w = arg;
    pthread_mutex_lock(&w->mu);
    while (!w->quit) {
        if (!w->st) {
            pthread_cond_wait(&w->cv, &w->mu);
            continue;
        }
        if (pthread_cond_timedwait(&w->cv, &w->mu, &w->deadline) == ETIMEDOUT && w->st) {
            SQLCancel(w->st);
            w->st = NULL;
            w->fired = 1;
        }
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static void wd_start(watchdog *w) {
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    w->running = pthread_create(&w->th, NULL, wd_main, w) == 0;
}

static void wd_stop(watchdog *w) {
    if (!w->running) return;
    pthread_mutex_lock(&w->mu);
    w->quit = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->th, NULL);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    w->running = 0;
}

/* " (timed out after N s, cancelled)" when the watchdog cancelled the last statement, else "". */
static const char *wd_note(watchdog *w, int seconds, char *buf, size_t n) {
    if (!w->running) return "";
    pthread_mutex_lock(&w->mu);
    int fired = w->fired;
    pthread_mutex_unlock(&w->mu);
    if (!fired) return "";
    snprintf(buf, n, " (timed out after %d s, cancelled)", seconds);
    return buf;
}

/* Arms the watchdog for st (NULL disarms). */
static void wd_arm(watchdog *w, SQLHSTMT st, int seconds) {
    if (!w->running || (st && seconds <= 0)) return;
    pthread_mutex_lock(&w->mu);
    if (st) w->fired = 0;
    w->st = st;
    clock_gettime(CLOCK_MONOTONIC, &w->deadline);
    w->deadline.tv_sec += seconds;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* ---- configuration ---- */

/* A tolerated mistake at dotted, through the kit (file:line:column, counted, --check-config). */
static void warn_cb(void *ud, const char *dotted, const char *msg) {
    tbgw_cfg w;
    tbgw_cfg_init(&w, ud, NULL);
    tbgw_cfg_skip(&w, dotted, "%s", msg);
}

static void oc_destroy(void *self) {
    odbcc *c = self;
    odbc_mapping_free(&c->map);
    tbgw_custom_conv_free(c->custom);
    if (c->cx_open) odbc_codec_close(&c->cx);
    for (size_t i = 0; i < c->n_aus; i++) regfree(&c->aus[i].dev), regfree(&c->aus[i].key);
    free(c->aus);
    json_decref(c->methods);
    json_decref(c->it_value);
    tbgw_py_ctx_free(c->py);
    json_decref(c->cfg);
    free(c);
}

static int64_t seconds_ms(const json_t *o, const char *key, double dflt) {
    const json_t *v = json_object_get(o, key);
    double s = json_is_number(v) ? json_number_value(v) : dflt;
    return s < 0 ? 0 : (int64_t)(s * 1000);
}

static int full_regex(regex_t *re, const char *pat) {
    char buf[600];
    snprintf(buf, sizeof buf, "^(%s)$", pat && *pat ? pat : ".*");
    return regcomp(re, buf, REG_EXTENDED | REG_NOSUB);
}

static int parse_rpc(odbcc *c, const json_t *rpc, tbgw_err *err) {
    if (!c->methods && !(c->methods = json_object())) return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    c->enable_unknown = json_is_true(json_object_get(rpc, "enableUnknownRpc"));
    c->override_cfg = json_is_true(json_object_get(rpc, "overrideRpcConfig"));
    size_t i;
    const json_t *m;
    json_array_foreach(json_object_get(rpc, "methods"), i, m) {
        if (json_is_string(m)) {
            json_object_set_new(c->methods, json_string_value(m), json_object());
            continue;
        }
        const char *name = json_string_value(json_object_get(m, "name"));
        if (!name) {
            char path[64];
            snprintf(path, sizeof path, "serverSideRpc.methods[%zu]", i);
            warn_cb((void *)c->h, path, "expected a procedure name or {\"name\": ...}");
            continue;
        }
        json_t *e = json_deep_copy(m);
        if (!json_object_get(e, "args") && json_is_array(json_object_get(e, "params")))
            json_object_set(e, "args", json_object_get(e, "params")); /* legacy name */
        json_object_set_new(c->methods, name, e);
    }
    return 0;
}

static int attr_update_entry(tbgw_cfg *w, const json_t *e, const char *path, size_t index, void *ud,
                             tbgw_err *err) {
    (void)w, (void)path;
    odbcc *c = ud;
    attr_update *a = &c->aus[index];
    a->query = json_string_value(json_object_get(e, "query"));
    a->args = json_object_get(e, "args");
    if (!a->query) return tbgw_err_set(err, TBGW_EINVAL, "query: expected SQL with ? parameters");
    if (full_regex(&a->dev, json_string_value(json_object_get(e, "deviceNameFilter"))) != 0)
        return tbgw_err_set(err, TBGW_EINVAL, "deviceNameFilter: not a valid regular expression");
    if (full_regex(&a->key, json_string_value(json_object_get(e, "attributeFilter"))) != 0) {
        regfree(&a->dev);
        return tbgw_err_set(err, TBGW_EINVAL, "attributeFilter: not a valid regular expression");
    }
    c->n_aus = index + 1;
    return 0;
}

/* attributeUpdates[]: a bad entry is reported with its position and skipped. */
static int parse_attr_updates(odbcc *c, const json_t *cfg, tbgw_err *err) {
    c->aus = calloc(json_array_size(json_object_get(cfg, "attributeUpdates")) + 1, sizeof *c->aus);
    if (!c->aus) return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    tbgw_cfg w;
    tbgw_cfg_init(&w, c->h, err);
    int n = tbgw_cfg_each(&w, cfg, NULL, "attributeUpdates", attr_update_entry, c);
    return n < 0 ? n : 0;
}

/* The driver manager and the drivers it loads keep process-wide state (unixODBC's profile cache,
 * drivers' thread-local data and exit handlers); they stay mapped when this module is unloaded. */
static void pin_driver_manager(void) {
    const char *libs[] = {"libodbc.so.2", "libodbcinst.so.2"};
    for (int i = 0; i < 2; i++) (void)dlopen(libs[i], RTLD_LAZY | RTLD_NOLOAD | RTLD_NODELETE);
}

/* "converter": a custom uplink converter's name (as the reference) or a converter object
 * ({"type": "custom", "extension": <Name>, "extensionConfig": ...}). It gets the mapping too. */
static int parse_converter(odbcc *c, tbgw_err *err) {
    const json_t *cv = json_object_get(c->cfg, "converter");
    if (!cv || (json_is_string(cv) && !*json_string_value(cv))) return 0;
    json_t *conv =
        json_is_string(cv) ? json_pack("{s:s,s:s}", "type", "custom", "extension", json_string_value(cv))
        : json_is_object(cv) && json_is_string(json_object_get(cv, "extension")) ? json_deep_copy(cv)
                                                                                 : NULL;
    if (!conv)
        return tbgw_err_set(
            err, TBGW_EINVAL,
            "converter: expected a converter name or {\"type\": \"custom\", \"extension\": <name>}");
    const json_t *mapping = json_object_get(c->cfg, "mapping");
    if (mapping && !json_object_get(conv, "mapping")) json_object_set(conv, "mapping", (json_t *)mapping);
    const tbgw_host *h = c->h;
    int rc = tbgw_custom_conv_new(conv, "odbc", h->config_dir ? h->config_dir : ".", "converter", h->conv_log,
                                  &c->custom, err);
    json_decref(conv);
    return rc < 0 ? rc : 0;
}

static int oc_create(const tbgw_host *h, const json_t *cfg, void **self, tbgw_err *err) {
    pin_driver_manager();
    const json_t *conn = json_object_get(cfg, "connection"), *poll = json_object_get(cfg, "polling");
    const json_t *it = json_object_get(poll, "iterator");
    if (!json_is_string(json_object_get(conn, "str")))
        return tbgw_err_set(err, TBGW_EINVAL, "connection.str: expected the ODBC connection string");
    if (!json_is_string(json_object_get(poll, "query")))
        return tbgw_err_set(err, TBGW_EINVAL,
                            "polling.query: expected SQL with one ? for the iterator value");
    if (!json_is_string(json_object_get(it, "column")))
        return tbgw_err_set(err, TBGW_EINVAL, "polling.iterator.column: expected the iterator column's name");
    if (!json_object_get(it, "value") && !json_is_string(json_object_get(it, "query")))
        return tbgw_err_set(err, TBGW_EINVAL, "polling.iterator: expected \"value\" or \"query\"");
    odbcc *c = calloc(1, sizeof *c);
    if (!c) return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    c->h = h;
    c->cfg = json_deep_copy(cfg);
    if (!c->cfg) {
        free(c);
        return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    }
    conn = json_object_get(c->cfg, "connection"), poll = json_object_get(c->cfg, "polling");
    it = json_object_get(poll, "iterator");
    c->conn_str = json_string_value(json_object_get(conn, "str"));
    c->conn_attrs = json_object_get(conn, "attributes");
    const json_t *rc = json_object_get(conn, "reconnect");
    c->reconnect = rc ? json_is_true(rc) : 1;
    c->reconnect_ms = seconds_ms(conn, "reconnectPeriod", 60);
    c->period_ms = seconds_ms(poll, "period", 60);
    c->query_timeout_s = (int)(seconds_ms(poll, "queryTimeout", 30) / 1000);
    c->query = json_string_value(json_object_get(poll, "query"));
    c->it_col = json_string_value(json_object_get(it, "column"));
    c->it_query = json_string_value(json_object_get(it, "query"));
    c->it_value_cfg = json_object_get(it, "value");
    c->persistent = json_is_true(json_object_get(it, "persistent"));
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)c->conn_attrs, k, v) {
        if (strcmp(k, "autocommit") && strcmp(k, "timeout") && strcmp(k, "readonly") && strcmp(k, "ansi")) {
            char path[300];
            snprintf(path, sizeof path, "connection.attributes.%s", k);
            warn_cb((void *)h, path, "unknown connection attribute");
        }
    }
    const json_t *dec = json_object_get(conn, "decoding");
    if (dec && !json_is_object(dec))
        warn_cb((void *)h, "connection.decoding", "expected {\"char\", \"wchar\", \"metadata\"}: ignored");
    const char *meta = json_string_value(json_object_get(dec, "metadata"));
    if (meta && *meta && strncasecmp(meta, "utf", 3))
        warn_cb((void *)h, "connection.decoding.metadata", "column names are always read as UTF-8");
    const json_t *mapping = json_object_get(c->cfg, "mapping");
    int r = odbc_codec_open(&c->cx, conn, err);
    c->cx_open = r == 0;
    if (r == 0) r = parse_converter(c, err);
    c->has_map = !c->custom || json_is_string(json_object_get(json_object_get(mapping, "device"), "name"));
    if (r == 0 && c->has_map) r = odbc_mapping_parse(mapping, &c->map, warn_cb, (void *)h, err);
    if (r == 0) r = parse_rpc(c, json_object_get(c->cfg, "serverSideRpc"), err);
    if (r == 0) r = parse_attr_updates(c, c->cfg, err);
    c->py = r == 0 ? tbgw_py_ctx_new(NULL) : NULL;
    if (r != 0 || !c->py) {
        if (r == 0) r = tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
        oc_destroy(c);
        return r;
    }
    *self = c;
    return 0;
}

static void oc_stop(void *self) {
    ((odbcc *)self)->stop = 1;
}

/* Sleeps ms on host->downlink_fd, serving downlink work the moment it is queued; 1 when stopping.
 * ODBC has no descriptor of its own: statements run synchronously, bounded by the query timeout. */
static int pause_ms(odbcc *c, int64_t ms) {
    int64_t end = tbgw_mono_ms() + ms;
    do {
        int64_t left = end - tbgw_mono_ms();
        int r = tbgw_host_poll(c->h, NULL, 0, left < 0 ? 0 : left);
        if (r == 1) c->stop = 1;
        if (r < 0) tbgw_sleep_ms(10); /* poll() failing (ENOMEM): no busy loop */
    } while (!c->stop && tbgw_mono_ms() < end);
    return c->stop;
}

/* ---- connection ---- */

static void disconnect(odbcc *c) {
    if (c->poll) SQLFreeHandle(SQL_HANDLE_STMT, c->poll);
    c->poll = NULL;
    if (c->dbc) {
        if (c->connected) SQLDisconnect(c->dbc);
        SQLFreeHandle(SQL_HANDLE_DBC, c->dbc);
    }
    if (c->env) SQLFreeHandle(SQL_HANDLE_ENV, c->env);
    c->dbc = c->env = NULL;
    if (c->connected) TBGW_INFOF(c->h->log, "connection to the database closed");
    c->connected = 0;
}

static void iterator_path(odbcc *c) {
    char parts[4][256] = {"", "", ""};
    SQLUSMALLINT what[3] = {SQL_DRIVER_NAME, SQL_SERVER_NAME, SQL_DATABASE_NAME};
    for (int i = 0; i < 3; i++) {
        SQLSMALLINT len = 0;
        if (!SQL_SUCCEEDED(SQLGetInfo(c->dbc, what[i], parts[i], sizeof parts[i], &len))) parts[i][0] = 0;
    }
    char key[1400];
    snprintf(key, sizeof key, "%s%s%s%s%s", parts[0], parts[1], parts[2], c->h->name ? c->h->name : "",
             c->it_col);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_Digest(key, strlen(key), md, &mdlen, EVP_sha1(), NULL);
    char hex[2 * EVP_MAX_MD_SIZE + 1] = "";
    for (unsigned i = 0; i < mdlen; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
    snprintf(c->it_path, sizeof c->it_path, "%s/odbc/%s.json", c->h->config_dir ? c->h->config_dir : ".",
             hex);
}

static void set_conn_attr(odbcc *c, SQLINTEGER attr, SQLULEN v) {
    SQLRETURN rc = SQLSetConnectAttr(c->dbc, attr, (SQLPOINTER)v, 0);
    if (!SQL_SUCCEEDED(rc)) {
        char d[600];
        odbc_diag(SQL_HANDLE_DBC, c->dbc, d, sizeof d);
        TBGW_WARNF(c->h->log, "connection attribute %d not accepted: %s", (int)attr, d);
    }
}

static int connect_db(odbcc *c) {
    const json_t *pooling = json_object_get(json_object_get(c->cfg, "pyodbc"), "pooling");
    if (pooling)
        SQLSetEnvAttr(NULL, SQL_ATTR_CONNECTION_POOLING,
                      (SQLPOINTER)(uintptr_t)(json_is_true(pooling) ? SQL_CP_ONE_PER_DRIVER : SQL_CP_OFF), 0);
    if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_ENV, SQL_NULL_HANDLE, &c->env)) ||
        !SQL_SUCCEEDED(SQLSetEnvAttr(c->env, SQL_ATTR_ODBC_VERSION, (SQLPOINTER)SQL_OV_ODBC3, 0)) ||
        !SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_DBC, c->env, &c->dbc))) {
        TBGW_ERRORF(c->h->log, "cannot allocate ODBC handles");
        disconnect(c);
        return -1;
    }
    /* the connect runs on the connector thread: without connection.attributes.timeout it is bounded
     * by the query timeout too (for drivers that honour it), so downlink is not held for minutes */
    const json_t *t = json_object_get(c->conn_attrs, "timeout");
    if (json_is_integer(t) && json_integer_value(t) > 0)
        set_conn_attr(c, SQL_ATTR_LOGIN_TIMEOUT, (SQLULEN)json_integer_value(t));
    else if (c->query_timeout_s > 0)
        set_conn_attr(c, SQL_ATTR_LOGIN_TIMEOUT, (SQLULEN)c->query_timeout_s);
    SQLCHAR out[1024];
    SQLSMALLINT outlen = 0;
    SQLRETURN rc = SQLDriverConnect(c->dbc, NULL, (SQLCHAR *)c->conn_str, SQL_NTS, out, sizeof out, &outlen,
                                    SQL_DRIVER_NOPROMPT);
    pin_driver_manager(); /* libodbcinst is loaded by the first connect */
    if (!SQL_SUCCEEDED(rc)) {
        char d[600];
        odbc_diag(SQL_HANDLE_DBC, c->dbc, d, sizeof d);
        TBGW_ERRORF(c->h->log, "cannot connect to the database: %s", d);
        c->h->set_state(c->h, TBGW_CONN_DISCONNECTED, d);
        disconnect(c);
        return -1;
    }
    c->connected = 1;
    const json_t *ac = json_object_get(c->conn_attrs, "autocommit");
    if (ac) set_conn_attr(c, SQL_ATTR_AUTOCOMMIT, json_is_true(ac) ? SQL_AUTOCOMMIT_ON : SQL_AUTOCOMMIT_OFF);
    const json_t *ro = json_object_get(c->conn_attrs, "readonly");
    if (json_is_true(ro)) set_conn_attr(c, SQL_ATTR_ACCESS_MODE, SQL_MODE_READ_ONLY);
    iterator_path(c);
    TBGW_INFOF(c->h->log, "connected to the database");
    c->h->set_state(c->h, TBGW_CONN_CONNECTED, NULL);
    return 0;
}

/* A statement with the query timeout set. */
static SQLHSTMT new_stmt(odbcc *c) {
    SQLHSTMT st = NULL;
    if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_STMT, c->dbc, &st))) return NULL;
    if (c->query_timeout_s > 0)
        SQLSetStmtAttr(st, SQL_ATTR_QUERY_TIMEOUT, (SQLPOINTER)(uintptr_t)c->query_timeout_s, 0);
    return st;
}

/* Executes sql with args bound (a JSON array or NULL). With row != NULL the first result row (or
 * an empty object) is returned there. 0, or -1 with diag. */
static int exec_sql(odbcc *c, const char *sql, const json_t *args, json_t **row, char *diag, size_t dn) {
    SQLHSTMT st = new_stmt(c);
    if (!st) return snprintf(diag, dn, "cannot allocate a statement"), -1;
    size_t n = json_array_size(args);
    odbc_param *ps = calloc(n + 1, sizeof *ps);
    int ok = ps && SQL_SUCCEEDED(SQLPrepare(st, (SQLCHAR *)sql, SQL_NTS));
    for (size_t i = 0; ok && i < n; i++)
        ok = odbc_bind_json(st, (SQLUSMALLINT)(i + 1), json_array_get(args, i), &c->cx, &ps[i]) == 0;
    wd_arm(&c->wd, st, c->query_timeout_s);
    SQLRETURN rc = ok ? SQLExecute(st) : SQL_ERROR;
    ok = SQL_SUCCEEDED(rc) || rc == SQL_NO_DATA;
    if (!ok) {
        char d[600], note[64];
        odbc_diag(SQL_HANDLE_STMT, st, d, sizeof d);
        snprintf(diag, dn, "%s%s", d, wd_note(&c->wd, c->query_timeout_s, note, sizeof note));
    }
    if (ok && row) {
        SQLSMALLINT nc = 0;
        char **names;
        SQLSMALLINT *types;
        int bad = 0;
        *row = NULL;
        if (odbc_describe(st, &nc, &names, &types) == 0 && nc > 0 && SQL_SUCCEEDED(SQLFetch(st)))
            *row = odbc_fetch_row(st, nc, names, types, &c->cx, &bad);
        if (!*row) *row = json_object();
        odbc_names_free(nc, names, types);
    }
    wd_arm(&c->wd, NULL, 0);
    for (size_t i = 0; ps && i < n; i++) odbc_param_free(&ps[i]);
    free(ps);
    SQLFreeHandle(SQL_HANDLE_STMT, st);
    return ok ? 0 : -1;
}

/* ---- iterator ---- */

static int iterator_load(odbcc *c) {
    json_error_t je;
    json_t *j = json_load_file(c->it_path, 0, &je);
    const json_t *v = json_object_get(j, "value");
    if (!v || json_is_null(v)) {
        json_decref(j);
        return -1;
    }
    c->it_value = json_incref((json_t *)v);
    c->total = json_integer_value(json_object_get(j, "total"));
    json_decref(j);
    return 0;
}

static void iterator_save(odbcc *c) {
    json_t *j =
        json_pack("{s:s,s:O,s:I}", "name", c->it_col, "value", c->it_value, "total", (json_int_t)c->total);
    char *text = j ? tbgw_json_dumps(j, 2) : NULL; /* the iterator value may be any size */
    char dir[1200];
    snprintf(dir, sizeof dir, "%s", c->it_path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    mkdir(dir, 0750);
    if (!text || tbgw_file_write_atomic(c->it_path, text, strlen(text), 0) != 0)
        TBGW_WARNF(c->h->log, "cannot write the iterator file %s: %s", c->it_path, strerror(errno));
    free(text);
    json_decref(j);
}

/* 0 when the iterator has a value; 1 when it has none yet (empty table), -1 on a database error. */
static int iterator_init(odbcc *c) {
    if (c->it_value) return 0;
    if (c->persistent && iterator_load(c) == 0) {
        TBGW_INFOF(c->h->log, "iterator %s restored from %s", c->it_col, c->it_path);
        return 0;
    }
    if (c->it_value_cfg) {
        c->it_value = json_incref((json_t *)c->it_value_cfg);
        return 0;
    }
    char diag[600];
    json_t *row = NULL;
    if (exec_sql(c, c->it_query, NULL, &row, diag, sizeof diag) != 0) {
        TBGW_ERRORF(c->h->log, "polling.iterator.query failed: %s", diag);
        return -1;
    }
    const char *k;
    json_t *v = NULL, *first = NULL;
    json_object_foreach(row, k, v) {
        first = v;
        break;
    }
    if (first && !json_is_null(first)) c->it_value = json_incref(first);
    json_decref(row);
    if (!c->it_value) {
        TBGW_INFOF(c->h->log,
                   "polling.iterator.query gave no value yet (empty table?); asked again after %lld ms",
                   (long long)c->period_ms);
        return 1;
    }
    return 0;
}

/* ---- polling ---- */

static void flush(odbcc *c, tbgw_converted **chain, tbgw_converted **tail) {
    if (!*chain) return;
    c->h->stat_add(c->h, TBGW_STAT_CONV_PROCESSED, tbgw_converted_count(*chain));
    c->h->emit(c->h, *chain);
    *chain = *tail = NULL;
}

/* A row through the custom converter: the row as JSON text, the device name as the topic. */
static tbgw_converted *custom_row(odbcc *c, const json_t *row, tbgw_err *err) {
    tbgw_buf name;
    tbgw_buf_init(&name);
    tbgw_converted *rec = NULL;
    char *text = NULL;
    if (c->has_map && odbc_device_name(&c->map, c->py, row, &name, err) != 0) goto out;
    if (!(text = tbgw_json_dumps(row, 0))) {
        tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
        goto out;
    }
    const char *topic = c->has_map ? tbgw_buf_cstr(&name) : c->h->name ? c->h->name : "";
    int n = tbgw_custom_conv_convert(c->custom, topic, (const uint8_t *)text, strlen(text), &rec, err);
    if (n < 0) {
        if (!err->code) tbgw_err_set(err, n, "custom converter failed");
        tbgw_converted_free(rec);
        rec = NULL;
    } else if (!rec) {
        tbgw_err_set(err, TBGW_ENOENT, "no datapoint");
    }
out:
    free(text);
    tbgw_buf_free(&name);
    return rec;
}

static void handle_row(odbcc *c, json_t *row, tbgw_converted **chain, tbgw_converted **tail, size_t *nb) {
    size_t item_errors = 0;
    tbgw_err e = {0};
    tbgw_converted *rec =
        c->custom ? custom_row(c, row, &e) : odbc_convert_row(&c->map, c->py, row, &item_errors, &e);
    if (item_errors) c->h->stat_add(c->h, TBGW_STAT_CONVERTER_ERRORS, item_errors);
    if (!rec && e.code != TBGW_ENOENT) {
        c->h->stat_add(c->h, TBGW_STAT_CONV_DROPPED, 1);
        TBGW_WARNF(c->h->conv_log, "row skipped: %s", e.msg);
    }
    /* the iterator moves past every row read, so a broken row is not read again */
    json_t *iv = json_object_get(row, c->it_col);
    if (iv && !json_is_null(iv)) {
        json_decref(c->it_value);
        c->it_value = json_incref(iv);
    }
    if (!rec) return;
    if (*tail)
        (*tail)->next = rec;
    else
        *chain = rec;
    while (rec->next) rec = rec->next; /* a converter may give several records */
    *tail = rec;
    if (++*nb >= BATCH_ROWS) {
        flush(c, chain, tail);
        *nb = 0;
    }
}

static int poll_once(odbcc *c) {
    char diag[600];
    if (!c->poll) {
        c->poll = new_stmt(c);
        if (!c->poll || !SQL_SUCCEEDED(SQLPrepare(c->poll, (SQLCHAR *)c->query, SQL_NTS))) {
            if (c->poll) odbc_diag(SQL_HANDLE_STMT, c->poll, diag, sizeof diag);
            TBGW_ERRORF(c->h->log, "polling.query cannot be prepared: %s", c->poll ? diag : "no statement");
            return -1;
        }
    }
    odbc_param p;
    json_t *bound = json_incref(c->it_value);
    if (odbc_bind_json(c->poll, 1, bound, &c->cx, &p) != 0) {
        odbc_diag(SQL_HANDLE_STMT, c->poll, diag, sizeof diag);
        TBGW_ERRORF(c->h->log, "polling.query: cannot bind the iterator value: %s", diag);
        json_decref(bound);
        return -1;
    }
    wd_arm(&c->wd, c->poll, c->query_timeout_s);
    SQLRETURN rc = SQLExecute(c->poll);
    if (!SQL_SUCCEEDED(rc) && rc != SQL_NO_DATA) {
        wd_arm(&c->wd, NULL, 0);
        char note[64];
        odbc_diag(SQL_HANDLE_STMT, c->poll, diag, sizeof diag);
        TBGW_ERRORF(c->h->log, "polling.query failed: %s%s", diag,
                    wd_note(&c->wd, c->query_timeout_s, note, sizeof note));
        c->h->stat_add(c->h, TBGW_STAT_CONNECTOR_ERRORS, 1);
        odbc_param_free(&p);
        json_decref(bound);
        return -1;
    }
    SQLSMALLINT nc = 0;
    char **names = NULL;
    SQLSMALLINT *types = NULL;
    long long rows = 0;
    tbgw_converted *chain = NULL, *tail = NULL;
    size_t nb = 0;
    if (rc != SQL_NO_DATA && odbc_describe(c->poll, &nc, &names, &types) == 0 && nc > 0) {
        while (!c->stop && SQL_SUCCEEDED(rc = SQLFetch(c->poll))) {
            rows++;
            c->h->stat_add(c->h, TBGW_STAT_MSGS_RECEIVED, 1);
            int bad = 0;
            json_t *row = odbc_fetch_row(c->poll, nc, names, types, &c->cx, &bad);
            if (!row) {
                c->h->stat_add(c->h, TBGW_STAT_CONV_DROPPED, 1);
                TBGW_WARNF(c->h->log, "row %lld cannot be read; skipped", rows);
                continue;
            }
            handle_row(c, row, &chain, &tail, &nb);
            json_decref(row);
            if (rows % BATCH_ROWS == 0 && c->h->wait(c->h, 0)) c->stop = 1;
        }
        if (rc == SQL_ERROR) {
            char note[64];
            odbc_diag(SQL_HANDLE_STMT, c->poll, diag, sizeof diag);
            TBGW_ERRORF(c->h->log, "fetching rows failed: %s%s", diag,
                        wd_note(&c->wd, c->query_timeout_s, note, sizeof note));
        }
    }
    wd_arm(&c->wd, NULL, 0);
    flush(c, &chain, &tail);
    odbc_names_free(nc, names, types);
    SQLFreeStmt(c->poll, SQL_CLOSE);
    SQLFreeStmt(c->poll, SQL_RESET_PARAMS);
    odbc_param_free(&p);
    json_decref(bound);
    c->total += rows;
    TBGW_DEBUGF(c->h->log, "polling done: %lld rows, %lld in total", rows, (long long)c->total);
    if (c->persistent && rows > 0) iterator_save(c);
    return 0;
}

static int oc_run(void *self) {
    odbcc *c = self;
    tbgw_backoff bo;
    tbgw_backoff_init(&bo, c->reconnect_ms < 1000 ? c->reconnect_ms : 1000, c->reconnect_ms);
    c->h->set_state(c->h, TBGW_CONN_STARTING, NULL);
    wd_start(&c->wd);
    while (!c->stop) {
        if (!c->connected) {
            if (connect_db(c) != 0) {
                if (!c->reconnect) {
                    c->h->set_state(c->h, TBGW_CONN_FAILED, "cannot connect and reconnect is off");
                    while (!c->stop) pause_ms(c, 60000); /* RPCs still get their "not connected" answer */
                    break;
                }
                int64_t d = tbgw_backoff_next(&bo);
                TBGW_INFOF(c->h->log, "connecting again in %lld ms", (long long)d);
                pause_ms(c, d);
                continue;
            }
            tbgw_backoff_reset(&bo);
        }
        int r = iterator_init(c);
        if (r == 0) r = poll_once(c);
        if (r < 0) disconnect(c); /* reconnect on the next pass, as the reference */
        if (!c->stop) pause_ms(c, r < 0 ? 0 : c->period_ms);
    }
    disconnect(c);
    wd_stop(&c->wd);
    return 0;
}

/* ---- downlink ---- */

/* Procedure and method names go into "{CALL name (...)}": only identifiers are accepted. */
static int valid_name(const char *s) {
    if (!s || !*s) return 0;
    for (; *s; s++)
        if (!(*s == '_' || *s == '.' || (*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') ||
              (*s >= 'A' && *s <= 'Z')))
            return 0;
    return 1;
}

static void call_sql(char *out, size_t n, const char *proc, size_t nargs) {
    int k = snprintf(out, n, "{CALL %s", proc);
    for (size_t i = 0; i < nargs && k > 0 && (size_t)k < n; i++)
        k += snprintf(out + k, n - (size_t)k, i ? ",?" : " (?");
    snprintf(out + k, n - (size_t)k, "%s}", nargs ? ")" : "");
}

/* The value of key in the reserved params, NULL when absent or empty. */
static const char *param(const tbgw_params *p, const char *key) {
    const char *v = tbgw_params_get(p, key);
    return v && *v ? v : NULL;
}

/* Reserved get/set: "procedure_name=<name>;" or "query=<sql>;" (a query may hold '='), "value=a,b;"
 * bound in order, "with_result=true;" answers the first row. */
static int reserved_rpc(odbcc *c, const tbgw_rpc_req *r) {
    const char *ps = json_string_value(r->params);
    tbgw_params kv = {0};
    tbgw_err perr = {0};
    if (ps && tbgw_params_parse(ps, TBGW_PARAMS_LENIENT, &kv, &perr) < 0) tbgw_params_free(&kv);
    const char *proc = param(&kv, "procedure_name"), *query = param(&kv, "query"),
               *wr = param(&kv, "with_result");
    char *values = param(&kv, "value") ? strdup(param(&kv, "value")) : NULL;
    json_t *args = json_array();
    for (char *save = NULL, *t = values ? strtok_r(values, ",", &save) : NULL; t;
         t = strtok_r(NULL, ",", &save))
        json_array_append_new(args, json_string(t));
    int with_result = wr && strcasecmp(wr, "true") == 0;
    char sql[1024], diag[700] = "";
    json_t *row = NULL;
    int rc = -1;
    if (query) {
        rc = exec_sql(c, query, args, with_result ? &row : NULL, diag, sizeof diag);
    } else if (valid_name(proc)) {
        call_sql(sql, sizeof sql, proc, json_array_size(args));
        rc = exec_sql(c, sql, args, with_result ? &row : NULL, diag, sizeof diag);
    } else {
        snprintf(diag, sizeof diag, "expected params \"procedure_name=<name>;\" or \"query=<sql>;\"");
    }
    if (rc != 0) TBGW_ERRORF(c->h->log, "RPC %s: %s", r->method, diag);
    int sent = rc != 0 ? c->h->rpc_reply(
                             c->h, r->handle,
                             json_pack("{s:s+}", r->method, "Error during executing reserved RPC ", diag), -1)
               : with_result ? tbgw_rpc_result(c->h, r->handle, row)
                             : tbgw_rpc_result(c->h, r->handle, json_pack("{s:b}", "success", 1));
    free(values);
    tbgw_params_free(&kv);
    json_decref(args);
    return sent;
}

static int oc_rpc(void *self, const tbgw_rpc_req *r) {
    odbcc *c = self;
    if (!r->method) return tbgw_rpc_success_object(c->h, r->handle, 0);
    if (!c->connected) {
        TBGW_WARNF(c->h->log, "RPC %s: not connected to the database", r->method);
        return tbgw_rpc_success_object(c->h, r->handle, 0);
    }
    if (strcmp(r->method, "get") == 0 || strcmp(r->method, "set") == 0) return reserved_rpc(c, r);
    const json_t *mc = json_object_get(c->methods, r->method);
    json_t *m;
    if (!mc) {
        if (!c->enable_unknown) {
            TBGW_WARNF(c->h->log, "RPC %s: unknown method (serverSideRpc.methods)", r->method);
            return tbgw_rpc_success_object(c->h, r->handle, 0);
        }
        m = json_object();
        if (json_is_object(r->params)) json_object_update(m, (json_t *)r->params);
    } else {
        m = json_deep_copy(mc);
        if (c->override_cfg && json_is_object(r->params)) json_object_update(m, (json_t *)r->params);
    }
    const json_t *args = json_object_get(m, "args");
    if (!json_is_array(args))
        args = json_is_array(json_object_get(m, "params")) ? json_object_get(m, "params") : NULL;
    const char *query = json_string_value(json_object_get(m, "query"));
    int with_result = json_is_true(json_object_get(m, "result"));
    char sql[1024], diag[700] = "";
    json_t *row = NULL;
    int rc = -1;
    if (query) {
        rc = exec_sql(c, query, args, with_result ? &row : NULL, diag, sizeof diag);
    } else if (valid_name(r->method)) {
        call_sql(sql, sizeof sql, r->method, json_array_size(args));
        rc = exec_sql(c, sql, args, with_result ? &row : NULL, diag, sizeof diag);
    } else {
        snprintf(diag, sizeof diag, "%s is not a procedure name", r->method);
    }
    json_decref(m);
    if (rc != 0) {
        TBGW_ERRORF(c->h->log, "RPC %s failed: %s", r->method, diag);
        c->h->stat_add(c->h, TBGW_STAT_CONNECTOR_ERRORS, 1);
        return tbgw_rpc_success_object(c->h, r->handle, 0);
    }
    return with_result ? c->h->rpc_reply(c->h, r->handle, row, -1)
                       : tbgw_rpc_success_object(c->h, r->handle, 1);
}

/* args entries "${deviceName}", "${attributeKey}", "${attributeValue}" bind those; others as given. */
static json_t *update_args(const attr_update *a, const char *device, const char *key, const json_t *value) {
    json_t *out = json_array();
    size_t i;
    const json_t *e;
    json_array_foreach(a->args, i, e) {
        const char *s = json_string_value(e);
        if (s && strcmp(s, "${deviceName}") == 0)
            json_array_append_new(out, json_string(device));
        else if (s && strcmp(s, "${attributeKey}") == 0)
            json_array_append_new(out, json_string(key));
        else if (s && strcmp(s, "${attributeValue}") == 0)
            json_array_append(out, (json_t *)value);
        else
            json_array_append(out, (json_t *)e);
    }
    return out;
}

static int oc_attr_update(void *self, const tbgw_attr_update *u) {
    odbcc *c = self;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)u->data, k, v) {
        for (size_t i = 0; i < c->n_aus; i++) {
            attr_update *a = &c->aus[i];
            if (regexec(&a->dev, u->device, 0, NULL, 0) != 0 || regexec(&a->key, k, 0, NULL, 0) != 0)
                continue;
            if (!c->connected) {
                TBGW_WARNF(c->h->log, "attribute update %s of %s: not connected to the database", k,
                           u->device);
                continue;
            }
            json_t *args = update_args(a, u->device, k, v);
            char diag[700];
            if (exec_sql(c, a->query, args, NULL, diag, sizeof diag) != 0) {
                TBGW_ERRORF(c->h->log, "attribute update %s of %s failed: %s", k, u->device, diag);
                c->h->stat_add(c->h, TBGW_STAT_CONNECTOR_ERRORS, 1);
            }
            json_decref(args);
        }
    }
    return 0;
}

const tbgw_connector_ops tbgw_connector_odbc = {
    .abi = TBGW_CONNECTOR_ABI,
    .type = "odbc",
    .create = oc_create,
    .run = oc_run,
    .stop = oc_stop,
    .destroy = oc_destroy,
    .on_attribute_update = oc_attr_update,
    .on_rpc = oc_rpc,
};
