/* Timestamp parsing for converters (spec §5.3 ts/timestamp/tsField). */
#include "convert/ts.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int read_num(const char **p, int min_digits, int max_digits, int *out) {
    int n = 0, v = 0;
    while (isdigit((unsigned char)**p) && n < max_digits) {
        v = v * 10 + (**p - '0');
        (*p)++;
        n++;
    }
    if (n < min_digits) return -1;
    *out = v;
    return 0;
}

/* Time part "HH:MM[:SS[.frac]]" then an optional zone "Z" / "+HH[:MM]" / "-HHMM". */
static int parse_time(const char **pp, struct tm *tm, int *ms, int *has_zone, long *zone_s) {
    const char *p = *pp;
    if (read_num(&p, 1, 2, &tm->tm_hour) || *p++ != ':' || read_num(&p, 2, 2, &tm->tm_min)) return -1;
    if (*p == ':') {
        p++;
        if (read_num(&p, 2, 2, &tm->tm_sec)) return -1;
        if (*p == '.' || *p == ',') {
            p++;
            int digits = 0, frac = 0;
            while (isdigit((unsigned char)*p)) {
                if (digits < 3) frac = frac * 10 + (*p - '0');
                digits++;
                p++;
            }
            if (!digits) return -1;
            for (int d = digits; d < 3; d++) frac *= 10;
            *ms = frac;
        }
    }
    while (*p == ' ') p++;
    if (*p == 'Z' || *p == 'z') {
        *has_zone = 1;
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1, hh, mm = 0;
        p++;
        if (read_num(&p, 2, 2, &hh)) return -1;
        if (*p == ':') p++;
        if (isdigit((unsigned char)*p) && read_num(&p, 2, 2, &mm)) return -1;
        *has_zone = 1;
        *zone_s = sign * (hh * 3600L + mm * 60L);
    }
    *pp = p;
    return 0;
}

static int parse_date(const char **pp, struct tm *tm, int dayfirst, int yearfirst) {
    const char *p = *pp;
    int a, b, c;
    if (read_num(&p, 1, 4, &a)) return -1;
    char sep = *p;
    if (sep != '-' && sep != '/' && sep != '.') return -1;
    p++;
    if (read_num(&p, 1, 2, &b) || *p++ != sep || read_num(&p, 1, 4, &c)) return -1;
    int y, m, d;
    if (a > 31 || (yearfirst && c <= 31)) { /* Y-M-D (or Y-D-M with dayfirst) */
        y = a;
        m = dayfirst && sep != '-' ? c : b;
        d = dayfirst && sep != '-' ? b : c;
    } else if (sep == '.' || dayfirst) {
        d = a, m = b, y = c;
    } else {
        m = a, d = b, y = c;
    }
    if (y < 100) y += 2000;
    if (m < 1 || m > 12 || d < 1 || d > 31) return -1;
    tm->tm_year = y - 1900;
    tm->tm_mon = m - 1;
    tm->tm_mday = d;
    *pp = p;
    return 0;
}

int tbgw_ts_parse_text(const char *s, int dayfirst, int yearfirst, int64_t *out) {
    while (isspace((unsigned char)*s)) s++;
    if (!*s) return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!errno && end != s && !*end) {
        *out = v;
        return 0;
    }
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *p = s;
    int ms = 0, has_zone = 0;
    long zone_s = 0;
    if (parse_date(&p, &tm, dayfirst, yearfirst)) return -1;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        while (*p == ' ') p++;
        if (*p && parse_time(&p, &tm, &ms, &has_zone, &zone_s)) return -1;
    }
    while (isspace((unsigned char)*p)) p++;
    if (*p) return -1;
    time_t t;
    if (has_zone) {
        t = timegm(&tm) - zone_s;
    } else {
        tm.tm_isdst = -1;
        t = mktime(&tm);
    }
    if (t == (time_t)-1 && has_zone == 0 && tm.tm_year != 69) return -1;
    *out = (int64_t)t * 1000 + ms;
    return 0;
}

int tbgw_ts_parse_jval(const tbgw_jval *v, int dayfirst, int yearfirst, int64_t *out) {
    if (v->type == JSON_INTEGER) {
        *out = v->i;
        return 0;
    }
    if (v->type == JSON_REAL) {
        double d = v->d;
        if (!isfinite(d) || fabs(d) > 9.2e18) return -1;
        *out = (int64_t)d;
        return 0;
    }
    if (v->type == JSON_STRING) return tbgw_ts_parse_text(v->node ? "" : v->s, dayfirst, yearfirst, out);
    return -1;
}

int tbgw_ts_parse(const json_t *v, int dayfirst, int yearfirst, int64_t *out) {
    tbgw_jval jv;
    if (tbgw_jval_of(v, &jv)) return -1;
    return tbgw_ts_parse_jval(&jv, dayfirst, yearfirst, out);
}
