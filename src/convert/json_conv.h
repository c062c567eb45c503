/* The JSON uplink converter (spec §5.3), shared by MQTT and the other JSON-speaking connectors.
 * Configuration = a mapping entry's `converter` object:
 *   deviceInfo {deviceNameExpressionSource, deviceNameExpression, deviceProfileExpressionSource,
 *               deviceProfileExpression}, attributes[] / timeseries[] ({type, key, value, keySource,
 *   tsField, dayfirst, yearfirst, reportStrategy} or "*"), useReceivedTs, sendDataOnlyOnChange,
 *   reportStrategy. The mapping entry's own reportStrategy (when given) applies to the device. */
#ifndef TBGW_CONVERT_JSON_CONV_H
#define TBGW_CONVERT_JSON_CONV_H

#include <jansson.h>
#include <stdint.h>
#include <tbgw/connector.h>
#include <tbgw/data.h>
#include <tbgw/err.h>
#include "convert/expr.h"
#include "util/buf.h"

typedef struct tbgw_json_conv tbgw_json_conv;

/* conv: the `converter` object; entry: the mapping entry (may be NULL); path: the converter's dotted
 * path for errors ("mapping[0].converter"). */
int tbgw_json_conv_new(const json_t *conv, const json_t *entry, const char *path, tbgw_json_conv **out,
                       tbgw_err *err);
/* The same; with tolerate set, one attributes/timeseries entry that cannot be used is reported through
 * that host (tbgw_cfg_skip_entry) and skipped instead of failing the converter. */
int tbgw_json_conv_new_ex(const json_t *conv, const json_t *entry, const char *path,
                          const tbgw_host *tolerate, tbgw_json_conv **out, tbgw_err *err);
void tbgw_json_conv_free(tbgw_json_conv *c);

/* Converts one decoded payload (object, or list of objects: results merged per device name).
 * Appends one record per device with at least one datapoint to *chain. Returns the number of records
 * appended, or a negative TBGW_E* with err naming the problem (TBGW_EINVAL: the payload cannot be
 * converted, e.g. not an object, or the device name is empty). Bad elements of a list are skipped
 * (err describes the first) and the others kept. recv_ts_ms = message receive time.
 * Non-fatal problems are reported in err with a return >= 0: TBGW_ENOENT when no configured key was
 * found at all, TBGW_EINVAL for a value that could not be cast to its type (it is sent as text). */
int tbgw_json_conv_convert(const tbgw_json_conv *c, const char *topic, const json_t *payload,
                           int64_t recv_ts_ms, tbgw_converted **chain, tbgw_err *err);

/* The same for a payload given as text (the JSON reader's flags are JSON_DECODE_ANY | JSON_ALLOW_NUL).
 * When the mapping allows it (tbgw_json_conv_reads_text), the text is scanned in place
 * (util/jscan.h) and only the values the mapping uses are read, with results identical to parsing it
 * with tbgw_json_loadb and calling tbgw_json_conv_convert, which is what happens otherwise. Text that
 * is not JSON returns TBGW_EPROTO, err = "invalid JSON at line L column C: <reason>". */
int tbgw_json_conv_convert_text(const tbgw_json_conv *c, const char *topic, const void *text, size_t len,
                                int64_t recv_ts_ms, tbgw_converted **chain, tbgw_err *err);
/* 1 when tbgw_json_conv_convert_text can convert an object payload without a jansson tree: no useEval,
 * no "*" lists, no tsField, and every `${}` of the device name, profile, keys and values is a plain
 * path (keys and indexes only). */
int tbgw_json_conv_reads_text(const tbgw_json_conv *c);

/* `useEval: true` (spec §5.2): a datapoint's rendered value text is evaluated as a Python
 * expression (convert/py_cast.h). A key whose evaluation fails is skipped (the reference loses the
 * whole message); fn is called for each failure with due = 1 at most once a minute per key, so the
 * caller can count every failure and log the due ones. Without fn the first failure of a message
 * is reported in convert's err (non-fatal, TBGW_EINVAL). */
typedef void (*tbgw_json_eval_report)(void *ud, const char *device, const char *key, const char *msg,
                                      int due);
void tbgw_json_conv_on_eval_error(tbgw_json_conv *c, tbgw_json_eval_report fn, void *ud);

/* Evaluates a device name/profile pair the way the converter does (used by connect/disconnect
 * requests). Returns 0 and malloc'ed strings (profile may be NULL when not configured); the caller
 * frees both on every return. TBGW_ENOENT = the name is empty. */
typedef struct tbgw_devinfo tbgw_devinfo;
int tbgw_devinfo_new(const json_t *device_info, const char *path, int need_profile, tbgw_devinfo **out,
                     tbgw_err *err);
void tbgw_devinfo_free(tbgw_devinfo *d);
int tbgw_devinfo_eval(const tbgw_devinfo *d, const char *topic, const json_t *body, char **name,
                      char **profile);
/* tbgw_devinfo_eval on a tree or a scanned text, into the caller's buffers (reset first): *name and *profile
 * (NULL when not configured) point into them. */
int tbgw_devinfo_eval_buf(const tbgw_devinfo *d, const char *topic, const tbgw_jsrc *body, tbgw_buf *name_buf,
                          tbgw_buf *profile_buf, const char **name, const char **profile);
/* 1 when every `${}` of the name and profile has a plain path (tbgw_expr_is_plain). */
int tbgw_devinfo_is_plain(const tbgw_devinfo *d);
/* 0 when the device name comes from a topic regex that does not match topic (the name is then the
 * literal expression), else 1. */
int tbgw_devinfo_topic_matched(const tbgw_devinfo *d, const char *topic);
/* Like tbgw_devinfo_eval, for requests: TBGW_ENOENT when the name cannot be found (a topic regex
 * that does not match, or a missing `${}` in the name) instead of falling back to literal text. */
int tbgw_devinfo_eval_strict(const tbgw_devinfo *d, const char *topic, const json_t *body, char **name,
                             char **profile);

#endif
