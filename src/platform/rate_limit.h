/* Client-side rate limits (spec §1.3): "capacity:seconds,..." token buckets refilled continuously. */
#ifndef TBGW_PLATFORM_RATE_LIMIT_H
#define TBGW_PLATFORM_RATE_LIMIT_H
#include <stdint.h>

#define TB_LIMIT_MAX_BUCKETS 8

typedef struct tb_bucket {
    double cap, tokens, per_ms;
} tb_bucket;

typedef struct tb_limit {
    tb_bucket b[TB_LIMIT_MAX_BUCKETS];
    int n; /* 0 = unlimited */
    int64_t last_ms;
} tb_limit;

/* Parses spec (NULL/""/"0:0" = unlimited); capacities scaled by pct/100. Symbolic names
 * DEFAULT_TELEMETRY_RATE_LIMIT, DEFAULT_TELEMETRY_DP_RATE_LIMIT, DEFAULT_MESSAGES_RATE_LIMIT resolve
 * per host (spec §1.3). Returns 0 or -1 on a malformed spec (then unlimited). */
int tb_limit_parse(tb_limit *l, const char *spec, const char *host, int pct, int64_t now_ms);
/* True when every bucket holds n tokens (a bucket at full capacity always admits, so a request
 * larger than the capacity cannot starve). */
int tb_limit_ready(tb_limit *l, double n, int64_t now_ms);
void tb_limit_take(tb_limit *l, double n);
/* Milliseconds until tb_limit_ready(n) would hold (0 if now). */
int64_t tb_limit_wait_ms(tb_limit *l, double n, int64_t now_ms);
/* Smallest bucket capacity (0 if unlimited). */
double tb_limit_min_cap(const tb_limit *l);
/* Default percentage from TB_DEFAULT_RATE_LIMIT_PERCENTAGE (80). */
int tb_limit_default_pct(void);
#endif
