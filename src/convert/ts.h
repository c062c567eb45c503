/* Timestamps found in payloads: epoch milliseconds (numbers or digit strings) or date-time text. */
#ifndef TBGW_CONVERT_TS_H
#define TBGW_CONVERT_TS_H

#include <jansson.h>
#include <stdint.h>
#include "util/jscan.h"

/* Parses a timestamp value into epoch ms. Numbers are taken as milliseconds (reals truncated);
 * strings are digits (ms) or a date-time: ISO 8601 ("2024-01-31T12:00:00.5Z", "+02:00" offsets,
 * space instead of T), "31.01.2024 12:00:00", "01/31/2024 12:00" (dayfirst: "31/01/2024"),
 * "2024/01/31". Text without a zone is local time (like the reference). Returns 0 or -1. */
int tbgw_ts_parse(const json_t *v, int dayfirst, int yearfirst, int64_t *out);
int tbgw_ts_parse_jval(const tbgw_jval *v, int dayfirst, int yearfirst, int64_t *out);
int tbgw_ts_parse_text(const char *s, int dayfirst, int yearfirst, int64_t *out);

#endif
