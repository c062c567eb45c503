#include "util/backoff.h"

#include <time.h>
#include <unistd.h>

uint64_t tbgw_rand_next(uint64_t *s) {
    uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

void tbgw_backoff_init(tbgw_backoff *b, int64_t base_ms, int64_t cap_ms) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    b->base_ms = base_ms > 0 ? base_ms : 1;
    b->cap_ms = cap_ms >= b->base_ms ? cap_ms : b->base_ms;
    b->attempt = 0;
    b->rng = (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)b;
}

int64_t tbgw_backoff_next(tbgw_backoff *b) {
    int64_t ceil = b->base_ms;
    for (unsigned i = 0; i < b->attempt && ceil < b->cap_ms; i++) ceil *= 2;
    if (ceil > b->cap_ms) ceil = b->cap_ms;
    if (b->attempt < 63) b->attempt++;
    int64_t floor = b->base_ms / 10 > 0 ? b->base_ms / 10 : 1;
    int64_t d = (int64_t)(tbgw_rand_next(&b->rng) % (uint64_t)(ceil + 1));
    return d < floor ? floor : d;
}

void tbgw_backoff_reset(tbgw_backoff *b) {
    b->attempt = 0;
}
