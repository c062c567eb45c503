#ifndef TBGW_UTIL_TIME_H
#define TBGW_UTIL_TIME_H
#include <stdint.h>
/* Monotonic clock in milliseconds (never goes back). */
int64_t tbgw_mono_ms(void);
/* Sleeps ms milliseconds (restarting on EINTR). */
void tbgw_sleep_ms(int64_t ms);
#endif
