/* Named loggers. Without a logging configuration every line goes to stderr as
 * "YYYY-mm-dd HH:MM:SS.mmm |LEVEL| [name] message"; tbgw_log_configure() (logs.json) adds handlers
 * (console streams, rotating files) with their own formats and levels, chosen per logger name. */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <tbgw/log.h>

#include "util/log_config.h"
#include "util/log_file.h"

#define MAX_RULES 64

typedef struct rule {
    char name[64];
    int level;
} rule;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static tbgw_logger *g_loggers;
static rule g_rules[MAX_RULES];
static int g_nrules;
static int g_root_level = TBGW_INFO;
static int g_root_set;
static FILE *g_stream;
static tbgw_log_sink_fn g_sink;
static void *g_sink_ud;
static tbgw_log_record_sink_fn g_rsink;
static void *g_rsink_ud;
static unsigned long g_errors;

static int env_level(void) {
    const char *e = getenv("TBGW_LOG_LEVEL");
    return e ? tbgw_level_parse(e) : -1;
}

/* Longest matching rule (exact name or dotted prefix) wins, else root. */
static int level_for(const char *name) {
    int best = -1;
    size_t best_len = 0;
    for (int i = 0; i < g_nrules; i++) {
        size_t n = strlen(g_rules[i].name);
        if (strncmp(name, g_rules[i].name, n) == 0 && (name[n] == 0 || name[n] == '.') && n >= best_len) {
            best = g_rules[i].level;
            best_len = n;
        }
    }
    if (best >= 0) return best;
    int e = env_level();
    if (e >= 0 && !g_root_set) return e;
    return g_root_level;
}

tbgw_logger *tbgw_logger_get(const char *name) {
    pthread_mutex_lock(&g_lock);
    tbgw_logger *lg;
    for (lg = g_loggers; lg; lg = lg->next)
        if (strcmp(lg->name, name) == 0) break;
    if (!lg) {
        lg = calloc(1, sizeof *lg);
        if (!lg) {
            static tbgw_logger fallback = {"oom", TBGW_ERROR, 0, NULL};
            pthread_mutex_unlock(&g_lock);
            return &fallback;
        }
        snprintf(lg->name, sizeof lg->name, "%s", name);
        lg->level = level_for(lg->name);
        lg->next = g_loggers;
        g_loggers = lg;
    }
    pthread_mutex_unlock(&g_lock);
    return lg;
}

void tbgw_log_set_level(const char *name, int level) {
    pthread_mutex_lock(&g_lock);
    if (!name || !*name) {
        g_root_level = level;
        g_root_set = 1;
    } else {
        int i;
        for (i = 0; i < g_nrules; i++)
            if (strcmp(g_rules[i].name, name) == 0) break;
        if (i == g_nrules && g_nrules < MAX_RULES) g_nrules++;
        if (i < MAX_RULES) {
            snprintf(g_rules[i].name, sizeof g_rules[i].name, "%s", name);
            g_rules[i].level = level;
        }
    }
    for (tbgw_logger *lg = g_loggers; lg; lg = lg->next) lg->level = level_for(lg->name);
    pthread_mutex_unlock(&g_lock);
}

void tbgw_log_set_stream(FILE *f) {
    g_stream = f;
}

void tbgw_log_set_record_sink(tbgw_log_record_sink_fn fn, void *ud) {
    pthread_mutex_lock(&g_lock);
    g_rsink = fn;
    g_rsink_ud = ud;
    pthread_mutex_unlock(&g_lock);
}

void tbgw_log_set_sink(tbgw_log_sink_fn fn, void *ud) {
    pthread_mutex_lock(&g_lock);
    g_sink = fn;
    g_sink_ud = ud;
    pthread_mutex_unlock(&g_lock);
}

unsigned long tbgw_log_error_total(void) {
    return __atomic_load_n(&g_errors, __ATOMIC_RELAXED);
}

const char *tbgw_level_name(tbgw_level level) {
    if (level <= TBGW_TRACE) return "TRACE";
    if (level <= TBGW_DEBUG) return "DEBUG";
    if (level <= TBGW_INFO) return "INFO";
    if (level <= TBGW_WARNING) return "WARNING";
    if (level <= TBGW_ERROR) return "ERROR";
    if (level <= TBGW_CRITICAL) return "CRITICAL";
    return "NONE";
}

int tbgw_level_parse(const char *s) {
    if (!s) return -1;
    while (isspace((unsigned char)*s)) s++;
    if (isdigit((unsigned char)*s)) return atoi(s);
    static const struct {
        const char *n;
        int l;
    } t[] = {
        {"TRACE", TBGW_TRACE},  {"DEBUG", TBGW_DEBUG}, {"INFO", TBGW_INFO},         {"WARNING", TBGW_WARNING},
        {"WARN", TBGW_WARNING}, {"ERROR", TBGW_ERROR}, {"CRITICAL", TBGW_CRITICAL}, {"FATAL", TBGW_CRITICAL},
        {"NONE", TBGW_NONE},    {"NOTSET", 0}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (strcasecmp(s, t[i].n) == 0) return t[i].l;
    return -1;
}

/* ---- handlers (logs.json) ------------------------------------------------------------------ */

#define MAX_HANDLERS      32
#define MAX_RULE_HANDLERS 8
#define DEFAULT_FORMAT    "%(asctime)s.%(msecs)03d |%(levelname)s| [%(name)s] %(message)s"
#define DEFAULT_DATEFMT   "%Y-%m-%d %H:%M:%S"

typedef struct handler {
    char name[64];
    int level;
    char *fmt, *datefmt;
    FILE *stream; /* console handler */
    tbgw_rotfile rf;
    int is_file;
} handler;

typedef struct route {
    char name[64];
    int nh, h[MAX_RULE_HANDLERS];
    int propagate;
} route;

typedef struct logcfg {
    int check_only; /* validate without opening files */
    handler h[MAX_HANDLERS];
    int nh;
    route r[MAX_RULES];
    int nr;
    int root_nh, root_h[MAX_RULE_HANDLERS];
} logcfg;

static logcfg *g_cfg; /* NULL: default console output */

static void cfg_free(logcfg *c) {
    if (!c) return;
    for (int i = 0; i < c->nh; i++) {
        free(c->h[i].fmt);
        free(c->h[i].datefmt);
        if (c->h[i].is_file) tbgw_rotfile_close(&c->h[i].rf);
    }
    free(c);
}

/* Handlers for a logger name: the most specific route first, up the dotted hierarchy while
 * routes propagate, then the root's. Returns the count. */
static int pick_handlers(const logcfg *c, const char *name, int *out) {
    int n = 0, done[MAX_RULES] = {0};
    for (;;) {
        int best = -1;
        size_t best_len = 0;
        for (int i = 0; i < c->nr; i++) {
            size_t l = strlen(c->r[i].name);
            if (!done[i] && strncmp(name, c->r[i].name, l) == 0 && (name[l] == 0 || name[l] == '.') &&
                (best < 0 || l > best_len)) {
                best = i;
                best_len = l;
            }
        }
        if (best < 0) break;
        done[best] = 1;
        for (int k = 0; k < c->r[best].nh && n < MAX_HANDLERS; k++) out[n++] = c->r[best].h[k];
        if (!c->r[best].propagate) return n;
    }
    for (int k = 0; k < c->root_nh && n < MAX_HANDLERS; k++) out[n++] = c->root_h[k];
    return n;
}

static void emit_default(const tbgw_log_record *r) {
    char line[2300];
    size_t len = tbgw_log_format(DEFAULT_FORMAT, DEFAULT_DATEFMT, r, line, sizeof line - 1);
    line[len++] = '\n';
    fwrite(line, 1, len, g_stream ? g_stream : stderr);
}

static void emit(const tbgw_log_record *r) {
    pthread_mutex_lock(&g_lock);
    if (!g_cfg) {
        pthread_mutex_unlock(&g_lock);
        emit_default(r);
        return;
    }
    int hs[MAX_HANDLERS];
    int n = pick_handlers(g_cfg, r->logger, hs);
    if (n == 0 && r->level >= TBGW_WARNING) { /* Python's "last resort" */
        pthread_mutex_unlock(&g_lock);
        emit_default(r);
        return;
    }
    unsigned long long seen = 0; /* a handler listed twice writes once */
    for (int i = 0; i < n; i++) {
        handler *h = &g_cfg->h[hs[i]];
        if (r->level < h->level || (hs[i] < 64 && (seen & (1ull << hs[i])))) continue;
        if (hs[i] < 64) seen |= 1ull << hs[i];
        char line[2300];
        size_t len = tbgw_log_format(h->fmt ? h->fmt : DEFAULT_FORMAT, h->fmt ? h->datefmt : DEFAULT_DATEFMT,
                                     r, line, sizeof line - 1);
        line[len++] = '\n';
        if (h->is_file)
            tbgw_rotfile_write(&h->rf, line, len, r->tv.tv_sec);
        else
            fwrite(line, 1, len, h->stream);
    }
    pthread_mutex_unlock(&g_lock);
}

void tbgw_log_vwrite_at(tbgw_logger *lg, tbgw_level level, const char *file, int line, const char *func,
                        const char *fmt, va_list ap) {
    char msg[2048];
    int m = vsnprintf(msg, sizeof msg, fmt, ap);
    (void)m;
    tbgw_log_record r = {lg->name, (int)level, file, func, line, {0, 0}, msg};
    gettimeofday(&r.tv, NULL);
    if (level >= TBGW_ERROR) {
        __atomic_add_fetch(&lg->errors, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&g_errors, 1, __ATOMIC_RELAXED);
    }
    emit(&r);
    if (__atomic_load_n(&g_sink, __ATOMIC_RELAXED) || __atomic_load_n(&g_rsink, __ATOMIC_RELAXED)) {
        pthread_mutex_lock(&g_lock);
        tbgw_log_sink_fn sink = g_sink;
        void *ud = g_sink_ud;
        tbgw_log_record_sink_fn rsink = g_rsink;
        void *rud = g_rsink_ud;
        pthread_mutex_unlock(&g_lock);
        if (sink) {
            char text[2300];
            tbgw_log_format(DEFAULT_FORMAT, DEFAULT_DATEFMT, &r, text, sizeof text);
            sink(ud, lg, level, text);
        }
        if (rsink) rsink(rud, lg, &r);
    }
}

void tbgw_log_vwrite(tbgw_logger *lg, tbgw_level level, const char *fmt, va_list ap) {
    tbgw_log_vwrite_at(lg, level, NULL, 0, NULL, fmt, ap);
}

void tbgw_log_write(tbgw_logger *lg, tbgw_level level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    tbgw_log_vwrite_at(lg, level, NULL, 0, NULL, fmt, ap);
    va_end(ap);
}

void tbgw_log_write_at(tbgw_logger *lg, tbgw_level level, const char *file, int line, const char *func,
                       const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    tbgw_log_vwrite_at(lg, level, file, line, func, fmt, ap);
    va_end(ap);
}

void tbgw_log_foreach(void (*cb)(void *ud, tbgw_logger *lg), void *ud) {
    pthread_mutex_lock(&g_lock);
    tbgw_logger *list = g_loggers;
    pthread_mutex_unlock(&g_lock);
    /* loggers are only ever prepended and never freed: walking without the lock is safe */
    for (tbgw_logger *lg = list; lg; lg = lg->next) cb(ud, lg);
}

/* ---- logs.json ------------------------------------------------------------------------------ */

static int json_level(const json_t *v, const char *path, int *out, tbgw_err *err) {
    if (!v) return 0;
    int l = json_is_integer(v)  ? (int)json_integer_value(v)
            : json_is_string(v) ? tbgw_level_parse(json_string_value(v))
                                : -1;
    if (l < 0)
        return tbgw_err_set(
            err, TBGW_EINVAL,
            "%s: expected a level (TRACE, DEBUG, INFO, WARNING, ERROR, CRITICAL, NONE or a number)", path);
    *out = l;
    return 0;
}

static int find_handler(const logcfg *c, const char *name) {
    for (int i = 0; i < c->nh; i++)
        if (strcmp(c->h[i].name, name) == 0) return i;
    return -1;
}

static int load_handler(logcfg *c, const json_t *formatters, const char *name, const json_t *hj,
                        tbgw_err *err) {
    char p[160];
    if (c->nh >= MAX_HANDLERS)
        return tbgw_err_set(err, TBGW_EINVAL, "handlers: more than %d handlers", MAX_HANDLERS);
    if (!json_is_object(hj)) return tbgw_err_set(err, TBGW_EINVAL, "handlers.%s: expected an object", name);
    handler *h = &c->h[c->nh];
    memset(h, 0, sizeof *h);
    snprintf(h->name, sizeof h->name, "%s", name);
    snprintf(p, sizeof p, "handlers.%s.level", name);
    if (json_level(json_object_get(hj, "level"), p, &h->level, err)) return err->code;
    const char *fname = json_string_value(json_object_get(hj, "formatter"));
    if (fname) {
        json_t *f = json_object_get(formatters, fname);
        if (!json_is_object(f))
            return tbgw_err_set(err, TBGW_EINVAL,
                                "handlers.%s.formatter: no formatter \"%s\" in \"formatters\"", name, fname);
        const char *fs = json_string_value(json_object_get(f, "format"));
        const char *df = json_string_value(json_object_get(f, "datefmt"));
        snprintf(p, sizeof p, "formatters.%s.format", fname);
        if (fs && tbgw_log_format_check(fs, p, err)) return err->code;
        h->fmt = strdup(fs ? fs : "%(message)s");
        h->datefmt = df ? strdup(df) : NULL;
    }
    const char *cls = json_string_value(json_object_get(hj, "class"));
    if (!cls) cls = "logging.StreamHandler";
    if (strstr(cls, "StreamHandler")) {
        const char *st = json_string_value(json_object_get(hj, "stream"));
        h->stream = st && strstr(st, "stdout") ? stdout : stderr;
    } else if (strstr(cls, "FileHandler")) {
        const char *fn = json_string_value(json_object_get(hj, "filename"));
        if (!fn || !*fn)
            return tbgw_err_set(err, TBGW_EINVAL, "handlers.%s.filename: required for %s", name, cls);
        int when = TBGW_ROT_NONE;
        if (strstr(cls, "TimedRotating")) {
            json_t *w = json_object_get(hj, "when");
            when = tbgw_rot_when_parse(w ? json_string_value(w) : "h");
            if (when < 0)
                return tbgw_err_set(err, TBGW_EINVAL,
                                    "handlers.%s.when: expected S, M, H, D, midnight or W0..W6", name);
        }
        json_t *iv = json_object_get(hj, "interval"), *bc = json_object_get(hj, "backupCount"),
               *mb = json_object_get(hj, "maxBytes");
        if ((iv && (!json_is_integer(iv) || json_integer_value(iv) < 1)) ||
            (bc && (!json_is_integer(bc) || json_integer_value(bc) < 0)) ||
            (mb && (!json_is_integer(mb) || json_integer_value(mb) < 0)))
            return tbgw_err_set(
                err, TBGW_EINVAL,
                "handlers.%s: interval must be an integer >= 1, backupCount and maxBytes integers >= 0",
                name);
        char *path = strstr(cls, "tb_rotating_file_handler") || strstr(cls, "TimedRotating")
                         ? tbgw_log_file_name(fn)
                         : strdup(fn);
        int rc = c->check_only
                     ? 0
                     : tbgw_rotfile_open(&h->rf, path, when, iv ? (long)json_integer_value(iv) : 1,
                                         bc ? (int)json_integer_value(bc) : 0,
                                         mb ? (long long)json_integer_value(mb) : 0, time(NULL), err);
        free(path);
        if (rc) {
            char tmp[sizeof err->msg];
            snprintf(tmp, sizeof tmp, "%s", err->msg);
            return tbgw_err_set(err, rc, "handlers.%s.filename: %s", name, tmp);
        }
        h->is_file = !c->check_only;
    } else {
        return tbgw_err_set(
            err, TBGW_EINVAL,
            "handlers.%s.class: unsupported \"%s\" (expected logging.StreamHandler, FileHandler, "
            "RotatingFileHandler or TimedRotatingFileHandler)",
            name, cls);
    }
    c->nh++;
    return 0;
}

static int load_route(logcfg *c, const char *path, const json_t *hl, int *nh, int *hs, tbgw_err *err) {
    if (!hl) return 0;
    if (!json_is_array(hl))
        return tbgw_err_set(err, TBGW_EINVAL, "%s.handlers: expected a list of names", path);
    size_t i;
    json_t *v;
    json_array_foreach(hl, i, v) {
        int idx = json_is_string(v) ? find_handler(c, json_string_value(v)) : -1;
        if (idx < 0)
            return tbgw_err_set(err, TBGW_EINVAL, "%s.handlers[%zu]: no handler %s%s%s in \"handlers\"", path,
                                i, json_is_string(v) ? "\"" : "",
                                json_is_string(v) ? json_string_value(v) : "", json_is_string(v) ? "\"" : "");
        if (*nh < MAX_RULE_HANDLERS) hs[(*nh)++] = idx;
    }
    return 0;
}

static int build_cfg(logcfg *c, const json_t *logs, tbgw_err *err) {
    const json_t *formatters = json_object_get(logs, "formatters");
    const char *name;
    json_t *v;
    json_object_foreach((json_t *)json_object_get(logs, "handlers"), name, v) {
        if (load_handler(c, formatters, name, v, err)) return err->code;
    }
    json_object_foreach((json_t *)json_object_get(logs, "loggers"), name, v) {
        char p[160];
        snprintf(p, sizeof p, "loggers.%s", name);
        int lvl = -1;
        char lp[200];
        snprintf(lp, sizeof lp, "%s.level", p);
        if (json_level(json_object_get(v, "level"), lp, &lvl, err)) return err->code;
        json_t *hl = json_object_get(v, "handlers");
        json_t *prop = json_object_get(v, "propagate");
        if (!hl && !prop) continue;
        if (c->nr >= MAX_RULES)
            return tbgw_err_set(err, TBGW_EINVAL, "loggers: more than %d loggers", MAX_RULES);
        route *r = &c->r[c->nr++];
        snprintf(r->name, sizeof r->name, "%s", name);
        r->propagate = prop ? json_is_true(prop) : 1;
        if (load_route(c, p, hl, &r->nh, r->h, err)) return err->code;
    }
    json_t *root = json_object_get(logs, "root");
    int lvl = -1;
    if (json_level(json_object_get(root, "level"), "root.level", &lvl, err)) return err->code;
    return load_route(c, "root", json_object_get(root, "handlers"), &c->root_nh, c->root_h, err);
}

int tbgw_log_configure(const json_t *logs, tbgw_err *err) {
    if (!json_is_object(logs))
        return tbgw_err_set(err, TBGW_EINVAL, "the logging configuration must be an object");
    logcfg *c = calloc(1, sizeof *c);
    if (!c) return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    if (build_cfg(c, logs, err)) {
        cfg_free(c);
        return err->code;
    }
    if (!json_object_get(logs, "handlers") && !json_object_get(json_object_get(logs, "root"), "handlers")) {
        /* levels only (no handlers anywhere): keep the default console output */
        cfg_free(c);
        c = NULL;
    }
    pthread_mutex_lock(&g_lock);
    logcfg *old = g_cfg;
    g_cfg = c;
    pthread_mutex_unlock(&g_lock);
    cfg_free(old);
    /* levels: root first, then per logger (a logger's own level wins over its parent's) */
    json_t *rl = json_object_get(json_object_get(logs, "root"), "level");
    int lvl;
    if (rl && json_level(rl, "root.level", &lvl, err) == 0) tbgw_log_set_level(NULL, lvl);
    const char *name;
    json_t *v;
    json_object_foreach((json_t *)json_object_get(logs, "loggers"), name, v) {
        json_t *l = json_object_get(v, "level");
        if (l && json_level(l, name, &lvl, err) == 0) tbgw_log_set_level(name, lvl);
    }
    return 0;
}

int tbgw_log_check(const json_t *logs, tbgw_err *err) {
    if (!json_is_object(logs))
        return tbgw_err_set(err, TBGW_EINVAL, "the logging configuration must be an object");
    logcfg *c = calloc(1, sizeof *c);
    if (!c) return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    c->check_only = 1;
    int rc = build_cfg(c, logs, err);
    cfg_free(c);
    return rc;
}

void tbgw_log_reset(void) {
    pthread_mutex_lock(&g_lock);
    logcfg *old = g_cfg;
    g_cfg = NULL;
    pthread_mutex_unlock(&g_lock);
    cfg_free(old);
}
