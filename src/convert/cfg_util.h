/* Small helpers for configuration parsing inside src/convert and the connectors that use it. */
#ifndef TBGW_CONVERT_CFG_UTIL_H
#define TBGW_CONVERT_CFG_UTIL_H

#include <jansson.h>
#include <stdint.h>
#include <tbgw/connector.h>
#include <tbgw/err.h>

/* Prefixes err->msg with "<prefix>." (or "<prefix>: " when sep is ':'), truncating at the end.
 * Returns rc unchanged; a NULL err or rc == 0 is a no-op. */
int tbgw_err_prefix(tbgw_err *err, int rc, const char *prefix, char sep);

/* Typed getters for optional/required fields of a config object; errors name "<path>.<key>".
 * tbgw_cfg_str: *out borrowed from o (dflt when missing and not required).
 * tbgw_cfg_seconds_ms: a number of seconds (integer, real or numeric string) as milliseconds.
 * tbgw_cfg_int: an integer (also a numeric string) within lo..hi.
 * tbgw_cfg_bool: true/false. */
int tbgw_cfg_str(const json_t *o, const char *key, const char *path, int required, const char *dflt,
                 const char **out, tbgw_err *err);
int tbgw_cfg_seconds_ms(const json_t *o, const char *key, const char *path, int64_t dflt_ms, int64_t *out,
                        tbgw_err *err);
int tbgw_cfg_int(const json_t *o, const char *key, const char *path, int64_t dflt, int64_t lo, int64_t hi,
                 int64_t *out, tbgw_err *err);
int tbgw_cfg_bool(const json_t *o, const char *key, const char *path, int dflt, int *out, tbgw_err *err);
/* tbgw_cfg_str copied: *out malloc'ed, NULL when missing and not required. */
int tbgw_cfg_strdup(const json_t *o, const char *key, const char *path, int required, char **out,
                    tbgw_err *err);
/* The tolerant rule for per-key entries (one timeseries/attribute/RPC/mapping entry): an entry that
 * cannot be used is reported and skipped, the connector starts with every other entry. err->msg is
 * "dotted.path: reason" as the parsers write it; it goes to host->config_warning (file:line:column,
 * --check-config) or, without one, to the connector's log. Returns 0 (go on without the entry), or
 * err->code unchanged for out of memory, which is never tolerated. */
int tbgw_cfg_skip_entry(const tbgw_host *h, const tbgw_err *err);

#endif
