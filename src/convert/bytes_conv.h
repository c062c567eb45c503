/* The MQTT bytes uplink converter (spec §5.4). Every `[a:b]`, `[a:]`, `[:b]`, `[:]` or `[i]` inside
 * deviceNameExpression / deviceProfileExpression (source "message"), key and value is replaced by
 * that slice of the payload (Python slice semantics, negative indexes from the end) decoded as UTF-8
 * (invalid sequences become U+FFFD, NUL bytes are dropped), or as lowercase hex when the entry has
 * `hexMode: true`. Values are strings; telemetry is stamped with the receive time. */
#ifndef TBGW_CONVERT_BYTES_CONV_H
#define TBGW_CONVERT_BYTES_CONV_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <tbgw/connector.h>
#include <tbgw/data.h>
#include <tbgw/err.h>
#include "util/buf.h"

typedef struct tbgw_bytes_conv tbgw_bytes_conv;
typedef struct tbgw_slice_tmpl tbgw_slice_tmpl;

int tbgw_bytes_conv_new(const json_t *conv, const json_t *entry, const char *path, tbgw_bytes_conv **out,
                        tbgw_err *err);
/* The same; with tolerate set, one attributes/timeseries entry that cannot be used is reported through
 * that host (tbgw_cfg_skip_entry) and skipped instead of failing the converter. */
int tbgw_bytes_conv_new_ex(const json_t *conv, const json_t *entry, const char *path,
                           const tbgw_host *tolerate, tbgw_bytes_conv **out, tbgw_err *err);
void tbgw_bytes_conv_free(tbgw_bytes_conv *c);
/* Appends at most one record to *chain. Returns the number of records appended or a negative TBGW_E*. */
int tbgw_bytes_conv_convert(const tbgw_bytes_conv *c, const char *topic, const uint8_t *payload, size_t len,
                            int64_t recv_ts_ms, tbgw_converted **chain, tbgw_err *err);

/* Slice templates on their own (also used by tests and other byte-oriented converters). */
int tbgw_slice_compile(const char *text, tbgw_slice_tmpl **out, tbgw_err *err);
void tbgw_slice_free(tbgw_slice_tmpl *t);
/* Appends the rendered template. Returns 0, or TBGW_ENOENT when a single index is out of range. */
int tbgw_slice_render(const tbgw_slice_tmpl *t, const uint8_t *p, size_t len, int hex, tbgw_buf *out);

#endif
