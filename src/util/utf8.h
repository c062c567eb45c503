/* UTF-8 validation shared by the byte-oriented connectors. */
#ifndef TBGW_UTIL_UTF8_H
#define TBGW_UTIL_UTF8_H
#include <stddef.h>
#include <stdint.h>
/* 1 when p[0..n) is UTF-8 as Python's strict decoder accepts it (no surrogates, overlongs or code
 * points above U+10FFFF), else 0. */
int tbgw_utf8_valid(const uint8_t *p, size_t n);
/* Writes code point cp (at most U+10FFFF) as UTF-8 into out; returns the length (1..4). */
size_t tbgw_utf8_put(char out[4], uint32_t cp);
#endif
