/* Capped exponential backoff with full jitter: delay = random(0, min(cap, base * 2^attempt)). */
#ifndef TBGW_UTIL_BACKOFF_H
#define TBGW_UTIL_BACKOFF_H
#include <stdint.h>

typedef struct tbgw_backoff {
    int64_t base_ms, cap_ms;
    unsigned attempt;
    uint64_t rng;
} tbgw_backoff;

void tbgw_backoff_init(tbgw_backoff *b, int64_t base_ms, int64_t cap_ms);
/* Next delay in ms (at least 1/10 of base, so retries never spin). */
int64_t tbgw_backoff_next(tbgw_backoff *b);
void tbgw_backoff_reset(tbgw_backoff *b);
/* xorshift64* step, for cheap jitter. */
uint64_t tbgw_rand_next(uint64_t *state);
#endif
