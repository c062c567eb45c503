/* Python-logging style formatting and the rotating log file (see log_file.h). */
#include "util/log_file.h"

#include <ctype.h>
#include <stdint.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "util/buf.h"

/* Formats here come from logs.json (checked by tbgw_log_format_check) or from fixed tables. */
#pragma GCC diagnostic ignored "-Wformat-nonliteral"

/* ---- formatting ------------------------------------------------------------------------------ */

static const char *base_name(const char *p) {
    if (!p) return "";
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

typedef struct fval {
    int is_num, is_real;
    long long n;
    double d;
    const char *s;
    char tmp[64];
} fval;

static int lookup(const char *key, size_t klen, const char *datefmt, const tbgw_log_record *r, fval *v) {
    memset(v, 0, sizeof *v);
#define K(lit) (klen == sizeof(lit) - 1 && memcmp(key, lit, klen) == 0)
    if (K("asctime")) {
        struct tm tm;
        localtime_r(&r->tv.tv_sec, &tm);
        size_t m = strftime(v->tmp, sizeof v->tmp, datefmt ? datefmt : "%Y-%m-%d %H:%M:%S", &tm);
        if (!datefmt) snprintf(v->tmp + m, sizeof v->tmp - m, ",%03d", (int)(r->tv.tv_usec / 1000));
        v->s = v->tmp;
    } else if (K("msecs")) {
        v->is_num = 1;
        v->n = r->tv.tv_usec / 1000;
    } else if (K("levelname")) {
        v->s = tbgw_level_name((tbgw_level)r->level);
    } else if (K("levelno")) {
        v->is_num = 1;
        v->n = r->level;
    } else if (K("name")) {
        v->s = r->logger;
    } else if (K("message")) {
        v->s = r->msg;
    } else if (K("filename")) {
        v->s = r->file ? base_name(r->file) : r->logger;
    } else if (K("pathname")) {
        v->s = r->file ? r->file : r->logger;
    } else if (K("module")) {
        const char *b = r->file ? base_name(r->file) : r->logger;
        snprintf(v->tmp, sizeof v->tmp, "%s", b);
        char *dot = strrchr(v->tmp, '.');
        if (dot && r->file) *dot = 0;
        v->s = v->tmp;
    } else if (K("funcName")) {
        v->s = r->func ? r->func : "-";
    } else if (K("lineno")) {
        v->is_num = 1;
        v->n = r->line;
    } else if (K("process")) {
        v->is_num = 1;
        v->n = getpid();
    } else if (K("thread")) {
        v->is_num = 1;
        v->n = gettid();
    } else if (K("threadName")) {
        if (prctl(PR_GET_NAME, v->tmp, 0, 0, 0) != 0) snprintf(v->tmp, sizeof v->tmp, "thread");
        v->s = v->tmp;
    } else if (K("created") || K("relativeCreated")) {
        v->is_real = 1;
        v->d = (double)r->tv.tv_sec + r->tv.tv_usec / 1e6;
    } else {
        return -1;
    }
#undef K
    return 0;
}

/* Renders one "%(key)<spec><conv>" item (the C format is built from a checked spec). */
static void render(tbgw_buf *b, const char *spec, size_t slen, char conv, const fval *v) {
    char cf[32];
    if (slen > 20) slen = 20;
    /* widths and precisions above 999 (a typo in logs.json) would ask printf for gigabytes */
    for (size_t i = 0, run = 0; i < slen; i++) {
        run = (spec[i] >= '0' && spec[i] <= '9') ? run + 1 : 0;
        if (run > 3) {
            slen = 0;
            break;
        }
    }
    if (v->is_num && (conv == 'd' || conv == 'i' || conv == 'x' || conv == 'X')) {
        snprintf(cf, sizeof cf, "%%%.*sll%c", (int)slen, spec, conv == 'i' ? 'd' : conv);
        tbgw_buf_printf(b, cf, v->n);
    } else if ((v->is_real || v->is_num) && (conv == 'f' || conv == 'e' || conv == 'g')) {
        snprintf(cf, sizeof cf, "%%%.*s%c", (int)slen, spec, conv);
        tbgw_buf_printf(b, cf, v->is_real ? v->d : (double)v->n);
    } else {
        char tmp[64];
        const char *s = v->s;
        if (!s) {
            if (v->is_real)
                snprintf(tmp, sizeof tmp, "%f", v->d);
            else
                snprintf(tmp, sizeof tmp, "%lld", v->n);
            s = tmp;
        }
        snprintf(cf, sizeof cf, "%%%.*ss", (int)slen, spec);
        tbgw_buf_printf(b, cf, s);
    }
}

size_t tbgw_log_format(const char *fmt, const char *datefmt, const tbgw_log_record *r, char *out, size_t n) {
    tbgw_buf b;
    tbgw_buf_init(&b);
    for (const char *p = fmt; *p;) {
        if (p[0] != '%') {
            const char *q = strchr(p, '%');
            size_t len = q ? (size_t)(q - p) : strlen(p);
            tbgw_buf_append(&b, p, len);
            p += len;
            continue;
        }
        if (p[1] == '%') {
            tbgw_buf_putc(&b, '%');
            p += 2;
            continue;
        }
        const char *close = p[1] == '(' ? strchr(p + 2, ')') : NULL;
        if (!close) {
            tbgw_buf_putc(&b, *p++);
            continue;
        }
        const char *spec = close + 1, *c = spec;
        while (*c && strchr("-+ #0123456789.", *c)) c++;
        fval v;
        if (!*c || lookup(p + 2, (size_t)(close - p - 2), datefmt, r, &v) != 0) {
            size_t len = (size_t)(c - p) + (*c ? 1 : 0);
            tbgw_buf_append(&b, p, len);
            p += len;
            continue;
        }
        render(&b, spec, (size_t)(c - spec), *c, &v);
        p = c + 1;
    }
    size_t len = b.len < n ? b.len : n - 1;
    if (n) {
        if (len) memcpy(out, b.p, len);
        out[len] = 0;
    }
    tbgw_buf_free(&b);
    return len;
}

int tbgw_log_format_check(const char *fmt, const char *path, tbgw_err *err) {
    for (const char *p = fmt; *p; p++) {
        if (*p != '%') continue;
        if (p[1] == '%') {
            p++;
            continue;
        }
        if (p[1] != '(')
            return tbgw_err_set(err, TBGW_EINVAL, "%s: \"%%\" must be followed by \"(name)\" or \"%%\"",
                                path);
        const char *close = strchr(p + 2, ')');
        if (!close) return tbgw_err_set(err, TBGW_EINVAL, "%s: unterminated \"%%(\"", path);
        const char *c = close + 1;
        while (*c && strchr("-+ #0123456789.", *c)) c++;
        if (!*c || !strchr("sdifeEgGxXr", *c))
            return tbgw_err_set(err, TBGW_EINVAL, "%s: \"%%(%.*s)\" needs a conversion such as s or d", path,
                                (int)(close - p - 2), p + 2);
        p = c;
    }
    return 0;
}

/* ---- rotating file --------------------------------------------------------------------------- */

int tbgw_rot_when_parse(const char *s) {
    if (!s) return -1;
    if (strcasecmp(s, "S") == 0) return TBGW_ROT_S;
    if (strcasecmp(s, "M") == 0) return TBGW_ROT_M;
    if (strcasecmp(s, "H") == 0) return TBGW_ROT_H;
    if (strcasecmp(s, "D") == 0) return TBGW_ROT_D;
    if (strcasecmp(s, "midnight") == 0) return TBGW_ROT_MIDNIGHT;
    if ((s[0] == 'W' || s[0] == 'w') && s[1] >= '0' && s[1] <= '6' && !s[2])
        return TBGW_ROT_W0 + (s[1] - '0');
    return -1;
}

static long unit_s(int when) {
    switch (when) {
    case TBGW_ROT_S:
        return 1;
    case TBGW_ROT_M:
        return 60;
    case TBGW_ROT_H:
        return 3600;
    case TBGW_ROT_D:
    case TBGW_ROT_MIDNIGHT:
        return 86400;
    default:
        return 7 * 86400;
    }
}

static const char *suffix_fmt(const tbgw_rotfile *rf) {
    if (rf->max_bytes > 0) return "%Y-%m-%d_%H-%M-%S";
    switch (rf->when) {
    case TBGW_ROT_S:
        return "%Y-%m-%d_%H-%M-%S";
    case TBGW_ROT_M:
        return "%Y-%m-%d_%H-%M";
    case TBGW_ROT_H:
        return "%Y-%m-%d_%H";
    default:
        return "%Y-%m-%d";
    }
}

static time_t compute_rollover(const tbgw_rotfile *rf, time_t t) {
    if (rf->when < 0) return (time_t)INT64_MAX; /* size-only rotation */
    if (rf->when < TBGW_ROT_MIDNIGHT) return t + rf->interval_s;
    struct tm tm;
    if (rf->utc)
        gmtime_r(&t, &tm);
    else
        localtime_r(&t, &tm);
    time_t r = t + (86400 - (tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec));
    if (rf->when >= TBGW_ROT_W0) {
        int day = (tm.tm_wday + 6) % 7; /* Monday = 0 */
        int want = rf->when - TBGW_ROT_W0;
        if (day != want) r += (long)(want > day ? want - day : 6 - day + want + 1) * 86400;
    }
    return r;
}

static int mkdirs(const char *path) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    char *slash = strrchr(tmp, '/');
    if (!slash || slash == tmp) return 0;
    *slash = 0;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
    return 0;
}

int tbgw_rotfile_open(tbgw_rotfile *rf, const char *path, int when, long interval, int backup_count,
                      long long max_bytes, time_t now, tbgw_err *err) {
    memset(rf, 0, sizeof *rf);
    if (mkdirs(path) != 0)
        return tbgw_err_set(err, TBGW_EIO, "cannot create the folder of %s: %s", path, strerror(errno));
    rf->f = fopen(path, "a");
    if (!rf->f) return tbgw_err_set(err, TBGW_EIO, "cannot open %s: %s", path, strerror(errno));
    rf->path = strdup(path);
    rf->when = when;
    rf->interval_s = (interval > 0 ? interval : 1) * unit_s(when);
    rf->backup_count = backup_count;
    rf->max_bytes = max_bytes;
    struct stat st;
    time_t t = now;
    if (stat(path, &st) == 0) {
        rf->size = st.st_size;
        if (st.st_size > 0) t = st.st_mtime;
    }
    rf->rollover_at = compute_rollover(rf, t);
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Deletes the oldest "<file>.<date...>" backups beyond backup_count. */
static void prune(tbgw_rotfile *rf) {
    if (rf->backup_count <= 0) return;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", rf->path);
    char *slash = strrchr(dir, '/');
    const char *base = slash ? slash + 1 : rf->path;
    if (slash)
        *slash = 0;
    else
        snprintf(dir, sizeof dir, ".");
    size_t blen = strlen(base);
    DIR *d = opendir(dir);
    if (!d) return;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, base, blen) != 0 || e->d_name[blen] != '.' ||
            !isdigit((unsigned char)e->d_name[blen + 1]))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nn = realloc(names, cap * sizeof *names);
            if (!nn) break;
            names = nn;
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i + (size_t)rf->backup_count < n; i++) {
        char p[8192];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

static void rollover(tbgw_rotfile *rf, time_t now, int by_size) {
    if (rf->f) fclose(rf->f);
    rf->f = NULL;
    time_t stamp = by_size ? now : rf->rollover_at - rf->interval_s;
    struct tm tm;
    if (rf->utc)
        gmtime_r(&stamp, &tm);
    else
        localtime_r(&stamp, &tm);
    char sfx[64], dst[8192];
    strftime(sfx, sizeof sfx, suffix_fmt(rf), &tm);
    snprintf(dst, sizeof dst, "%s.%s", rf->path, sfx);
    if (by_size) {
        /* several size rollovers within one second: keep them all */
        for (int i = 1; access(dst, F_OK) == 0 && i < 1000; i++)
            snprintf(dst, sizeof dst, "%s.%s.%d", rf->path, sfx, i);
    } else {
        unlink(dst);
    }
    rename(rf->path, dst);
    prune(rf);
    rf->f = fopen(rf->path, "a");
    rf->size = 0;
    rf->rollovers++;
    if (!by_size || now >= rf->rollover_at) {
        time_t next = compute_rollover(rf, now);
        while (next <= now) next += rf->interval_s;
        rf->rollover_at = next;
    }
}

void tbgw_rotfile_write(tbgw_rotfile *rf, const char *line, size_t len, time_t now) {
    if (!rf->path) return;
    if (now >= rf->rollover_at)
        rollover(rf, now, 0);
    else if (rf->max_bytes > 0 && rf->size > 0 && rf->size + (long long)len >= rf->max_bytes)
        rollover(rf, now, 1);
    if (!rf->f && !(rf->f = fopen(rf->path, "a"))) return;
    if (fwrite(line, 1, len, rf->f) == len) rf->size += (long long)len;
    fflush(rf->f);
}

void tbgw_rotfile_close(tbgw_rotfile *rf) {
    if (rf->f) fclose(rf->f);
    free(rf->path);
    memset(rf, 0, sizeof *rf);
}

char *tbgw_log_file_name(const char *configured) {
    const char *slash = strrchr(configured, '/');
    const char *base = slash ? slash + 1 : configured;
    size_t blen = strlen(base);
    if (blen >= 4 && strcmp(base + blen - 4, ".log") == 0) blen -= 4;
    tbgw_buf s;
    tbgw_buf_init(&s);
    int prev_us = 1; /* strips leading "_" */
    for (size_t i = 0; i < blen; i++) {
        unsigned char ch = (unsigned char)base[i];
        if (isspace(ch) || ch == '-' || ch == '_') {
            if (!prev_us) tbgw_buf_putc(&s, '_');
            prev_us = 1;
            continue;
        }
        if (isupper(ch) && i > 0 &&
            (islower((unsigned char)base[i - 1]) || isdigit((unsigned char)base[i - 1])) && !prev_us)
            tbgw_buf_putc(&s, '_');
        if (!isalnum(ch)) continue;
        tbgw_buf_putc(&s, (char)tolower(ch));
        prev_us = 0;
    }
    while (s.len && s.p[s.len - 1] == '_') s.len--;
    tbgw_buf out;
    tbgw_buf_init(&out);
    const char *env = getenv("TB_GW_LOGS_PATH");
    if (env && *env)
        tbgw_buf_printf(&out, "%s/", env);
    else if (slash)
        tbgw_buf_append(&out, configured, (size_t)(slash - configured + 1));
    tbgw_buf_append(&out, s.p ? s.p : "", s.len);
    tbgw_buf_puts(&out, ".log");
    tbgw_buf_free(&s);
    return out.p;
}
