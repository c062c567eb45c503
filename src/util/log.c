/* Named loggers writing "YYYY-mm-dd HH:MM:SS.mmm |LEVEL| [name] message" lines. */
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

void tbgw_log_vwrite(tbgw_logger *lg, tbgw_level level, const char *fmt, va_list ap) {
    char line[2048];
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    localtime_r(&tv.tv_sec, &tm);
    int n = (int)strftime(line, sizeof line, "%Y-%m-%d %H:%M:%S", &tm);
    n += snprintf(line + n, sizeof line - (size_t)n, ".%03d |%s| [%s] ", (int)(tv.tv_usec / 1000),
                  tbgw_level_name(level), lg->name);
    int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    if (m < 0) m = 0;
    size_t len = (size_t)n + (size_t)m;
    if (len >= sizeof line - 1) len = sizeof line - 2;
    line[len] = '\n';
    line[len + 1] = 0;
    if (level >= TBGW_ERROR) {
        __atomic_add_fetch(&lg->errors, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&g_errors, 1, __ATOMIC_RELAXED);
    }
    FILE *f = g_stream ? g_stream : stderr;
    fwrite(line, 1, len + 1, f);
    tbgw_log_sink_fn sink = g_sink;
    if (sink) {
        line[len] = 0;
        sink(g_sink_ud, lg, level, line);
    }
}

void tbgw_log_write(tbgw_logger *lg, tbgw_level level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    tbgw_log_vwrite(lg, level, fmt, ap);
    va_end(ap);
}
