#include "platform/rate_limit.h"

#include <stdlib.h>
#include <string.h>

static int cloud_host(const char *host) {
    if (!host) return 0;
    return strstr(host, "thingsboard.cloud") || (strstr(host, "tb") && strstr(host, "cloud")) ||
           strstr(host, "demo.thingsboard.io");
}

int tb_limit_default_pct(void) {
    const char *e = getenv("TB_DEFAULT_RATE_LIMIT_PERCENTAGE");
    int p = e ? atoi(e) : 80;
    return p > 0 && p <= 100 ? p : 80;
}

int tb_limit_parse(tb_limit *l, const char *spec, const char *host, int pct, int64_t now_ms) {
    memset(l, 0, sizeof *l);
    l->last_ms = now_ms;
    if (!spec) return 0;
    if (strcmp(spec, "DEFAULT_TELEMETRY_RATE_LIMIT") == 0 || strcmp(spec, "DEFAULT_MESSAGES_RATE_LIMIT") == 0)
        spec = cloud_host(host) ? "10:1,60:60," : "";
    else if (strcmp(spec, "DEFAULT_TELEMETRY_DP_RATE_LIMIT") == 0)
        spec = cloud_host(host) ? "10:1,300:60," : "";
    const char *s = spec;
    while (*s) {
        while (*s == ',' || *s == ';' || *s == ' ') s++;
        if (!*s) break;
        char *end;
        double cap = strtod(s, &end);
        if (*end != ':') goto bad;
        double secs = strtod(end + 1, &end);
        if (*end && *end != ',' && *end != ';' && *end != ' ') goto bad;
        s = end;
        if (cap <= 0 || secs <= 0) continue; /* "0:0" = no limit */
        if (l->n == TB_LIMIT_MAX_BUCKETS) continue;
        tb_bucket *b = &l->b[l->n++];
        b->cap = (double)(long long)(cap * pct / 100.0);
        if (b->cap < 1) b->cap = 1;
        b->tokens = b->cap;
        b->per_ms = b->cap / (secs * 1000.0);
    }
    return 0;
bad:
    memset(l, 0, sizeof *l);
    l->last_ms = now_ms;
    return -1;
}

static void refill(tb_limit *l, int64_t now) {
    int64_t dt = now - l->last_ms;
    if (dt <= 0) return;
    l->last_ms = now;
    for (int i = 0; i < l->n; i++) {
        tb_bucket *b = &l->b[i];
        b->tokens += b->per_ms * (double)dt;
        if (b->tokens > b->cap) b->tokens = b->cap;
    }
}

int tb_limit_ready(tb_limit *l, double n, int64_t now_ms) {
    refill(l, now_ms);
    for (int i = 0; i < l->n; i++) {
        const tb_bucket *b = &l->b[i];
        if (b->tokens < n && b->tokens < b->cap) return 0;
    }
    return 1;
}

void tb_limit_take(tb_limit *l, double n) {
    for (int i = 0; i < l->n; i++) l->b[i].tokens -= n;
}

int64_t tb_limit_wait_ms(tb_limit *l, double n, int64_t now_ms) {
    refill(l, now_ms);
    double worst = 0;
    for (int i = 0; i < l->n; i++) {
        const tb_bucket *b = &l->b[i];
        double target = n < b->cap ? n : b->cap;
        if (b->tokens >= target) continue;
        double ms = (target - b->tokens) / b->per_ms;
        if (ms > worst) worst = ms;
    }
    return (int64_t)worst + (worst > 0 ? 1 : 0);
}

double tb_limit_min_cap(const tb_limit *l) {
    double m = 0;
    for (int i = 0; i < l->n; i++)
        if (m == 0 || l->b[i].cap < m) m = l->b[i].cap;
    return m;
}
