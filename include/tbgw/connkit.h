/* The connector kit: what every connector repeats, in one place (docs/ARCHITECTURE.md, "Writing a
 * connector"). Built-in connectors and plugins (.so, resolved from the tbgw executable) use it.
 *
 * - TBGW_CONNECTOR_PLUGIN(ops): the entry point of a plugin, with the ABI check.
 * - tbgw_cfg: the configuration walk. create() reads its file with typed getters whose errors name
 *   the field ("mapping[2].timeout: expected an integer, got a string"); a connector-level error is
 *   returned from create() (the host adds "file:line:col: " and refuses the connector), while a bad
 *   per-key entry is reported with its file:line:column through host->config_warning (counted in
 *   connectorsErrors, listed by --check-config) and skipped.
 * - tbgw_cfg_keys / tbgw_cfg_device: device entries (deviceName/deviceType, reportStrategy) and their
 *   key lists (timeseries, attributes, attributeUpdates, rpc) with per-key report strategies.
 * - tbgw_rpc_*: the RPC reply forms of the spec (gateway.md §1.7).
 * - tbgw_params_*: the reserved get/set parameter strings ("type=16int;address=3;value=7;").
 * - tbgw_host_poll: the sleep of a connector's own loop on its descriptors, host->downlink_fd and its
 *   next timer, with the downlink dispatched when it is due.
 *
 * Threading: the tbgw_cfg calls run in create() (core thread), the RPC calls on the connector
 * thread (inside on_rpc or later), like the host calls they wrap. */
#ifndef TBGW_CONNKIT_H
#define TBGW_CONNKIT_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <tbgw/connector.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- entry point ----------------------------------------------------------------------------- */

/* Defines tbgw_connector_entry() of a plugin returning &ops for ABI TBGW_CONNECTOR_ABI. */
#define TBGW_CONNECTOR_PLUGIN(ops)                                                                           \
    const tbgw_connector_ops *tbgw_connector_entry(uint32_t abi);                                            \
    const tbgw_connector_ops *tbgw_connector_entry(uint32_t abi) {                                           \
        return abi == TBGW_CONNECTOR_ABI ? &(ops) : NULL;                                                    \
    }

/* ---- configuration walk ---------------------------------------------------------------------- */

typedef struct tbgw_cfg {
    const tbgw_host *host;
    tbgw_err *err;    /* the connector-level error create() returns */
    unsigned skipped; /* per-key entries reported and skipped */
} tbgw_cfg;

void tbgw_cfg_init(tbgw_cfg *w, const tbgw_host *host, tbgw_err *err);
/* "file:line:col" of a dotted path ("mapping[1].timeseries[0]") in the connector's file, or "" when
 * the host has no document (a test host). Returns buf. */
const char *tbgw_cfg_where(const tbgw_cfg *w, const char *path, char *buf, size_t len);
/* Reports a bad per-key entry at path through host->config_warning (a WARNING "file:line:col: path:
 * <msg>; the entry is skipped", one connectorsErrors, listed by --check-config; hosts without it get
 * the same line on their logger), w->skipped + 1. */
void tbgw_cfg_skip(tbgw_cfg *w, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* tbgw_cfg_skip for an error message as parsers write it, reported at the field it names: msg either
 * starts with the entry's own path (tbgw_cfg_skip_err: "<path>.value: missing", as tbgw_cfg_each
 * reports a refused entry) or with a field relative to it (tbgw_cfg_skip_msg: "value: bad type",
 * "polling.period: ..."). A field "name@N" (N a character offset inside that string value, as the
 * expression parsers write) is reported at that character's line:column. A message without a leading
 * field is reported at path as the reason. */
void tbgw_cfg_skip_err(tbgw_cfg *w, const char *path, const char *msg);
void tbgw_cfg_skip_msg(tbgw_cfg *w, const char *path, const char *msg);
/* A connector-level error: fills w->err with "path: <msg>" and returns TBGW_EINVAL. */
int tbgw_cfg_fail(tbgw_cfg *w, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Typed fields of object o (whose dotted path is path; "" or NULL at the top). A missing key (or
 * null) gives def; a wrong type or range gives TBGW_EINVAL with "path.key: expected ..." in err. */
int tbgw_cfg_get_str(const json_t *o, const char *path, const char *key, const char *def, const char **out,
                     tbgw_err *err);
int tbgw_cfg_get_int(const json_t *o, const char *path, const char *key, int64_t def, int64_t min,
                     int64_t max, int64_t *out, tbgw_err *err);
int tbgw_cfg_get_bool(const json_t *o, const char *path, const char *key, int def, int *out, tbgw_err *err);
int tbgw_cfg_get_num(const json_t *o, const char *path, const char *key, double def, double min, double max,
                     double *out, tbgw_err *err);

/* Numbers as the reference's files carry them (it reads them with Python's int() / float(), and the
 * UI writes some as strings): what tbgw_cfg_get_int_ex / _num_ex accept beyond JSON numbers. */
#define TBGW_CFG_NUM_STRING 1u /* "502", " 2.5": a string holding the number */
#define TBGW_CFG_NUM_TRUNC  2u /* int_ex: 4000.7 is 4000 (else only integral numbers like 10.0) */
#define TBGW_CFG_NUM_BOOL   4u /* true / false as 1 / 0 */
int tbgw_cfg_get_int_ex(const json_t *o, const char *path, const char *key, int64_t def, int64_t min,
                        int64_t max, unsigned flags, int64_t *out, tbgw_err *err);
int tbgw_cfg_get_num_ex(const json_t *o, const char *path, const char *key, double def, double min,
                        double max, unsigned flags, double *out, tbgw_err *err);

/* Called for each entry of an array; a negative return (with err filled) skips the entry. err may name
 * the entry relative to it ("key: missing") or, as the shared converters write them, by a full path
 * inside it ("<path>.timeseries[1].value: missing", "<path>.value@4: ..."): the skip is then reported
 * at that field. TBGW_ENOMEM is never tolerated: it ends the walk. */
typedef int (*tbgw_cfg_entry_fn)(tbgw_cfg *w, const json_t *entry, const char *path, size_t index, void *ud,
                                 tbgw_err *err);
/* Walks parent[key] (a missing key is an empty list): entries that are not objects or that fn
 * refuses are reported and skipped. Returns the number accepted, or TBGW_EINVAL (w->err filled) when
 * parent[key] is not an array — a broken section refuses the connector — or TBGW_ENOMEM. */
int tbgw_cfg_each(tbgw_cfg *w, const json_t *parent, const char *parent_path, const char *key,
                  tbgw_cfg_entry_fn fn, void *ud);

/* Parses one entry into slot (zeroed memory of the list's element size). */
typedef int (*tbgw_cfg_slot_fn)(tbgw_cfg *w, const json_t *entry, const char *path, void *slot, void *ud,
                                tbgw_err *err);
/* A list of connector structs: allocates *items for parent[key] (elements of size bytes) and parses
 * each object entry into the next slot with fn (through tbgw_cfg_each: bad entries reported and
 * skipped); a refused slot is released with drop (may be NULL) and zeroed. *items stays NULL for an
 * empty or missing list. Returns the number parsed, TBGW_EINVAL (not a list) or TBGW_ENOMEM, *items
 * holding the slots parsed so far for the caller to free. */
int tbgw_cfg_list(tbgw_cfg *w, const json_t *parent, const char *parent_path, const char *key, size_t size,
                  void **items, size_t *n, tbgw_cfg_slot_fn fn, void (*drop)(void *slot), void *ud);

/* ---- device and key entries ------------------------------------------------------------------ */

typedef struct tbgw_cfg_key {
    char *key;               /* "key" (or "tag", "attributeOnThingsBoard", "method": see name_fields) */
    const char *type;        /* "type" as written, NULL when absent (borrowed from the config) */
    const json_t *cfg;       /* the entry (borrowed): the connector reads its own fields from it */
    tbgw_report_strategy rs; /* the entry's reportStrategy */
    int has_rs;              /* rs set (not "inherit") */
    char path[96];           /* dotted path of the entry, for later messages */
} tbgw_cfg_key;

typedef struct tbgw_cfg_keys {
    tbgw_cfg_key *v;
    size_t n;
} tbgw_cfg_keys;

/* Parses parent[section] as a list of key entries. The name is the first present string field of
 * name_fields (NULL = {"key", "tag"}); an entry without one, with a bad reportStrategy, or refused by
 * extra (which reads the connector's own fields; index is the entry's index in out) is reported and
 * skipped. Returns the number of keys or TBGW_EINVAL (section not an array). */
int tbgw_cfg_keys_parse(tbgw_cfg *w, const json_t *parent, const char *parent_path, const char *section,
                        const char *const *name_fields, tbgw_cfg_entry_fn extra, void *ud,
                        tbgw_cfg_keys *out);
void tbgw_cfg_keys_free(tbgw_cfg_keys *k);

typedef struct tbgw_cfg_device {
    const char *name, *type; /* deviceName (or name), deviceType (or type; "default"); borrowed */
    tbgw_report_strategy rs; /* the device-level reportStrategy */
    int has_rs;
    tbgw_cfg_keys timeseries, attributes, attribute_updates, rpc;
} tbgw_cfg_device;

/* Parses a device entry: name and type, reportStrategy, and the four key lists (attributeUpdates are
 * named by "attributeOnThingsBoard", "key" or "tag"; rpc by "method", "tag" or "key"). A device
 * without a name, with a broken reportStrategy or a key list that is not a list gives TBGW_EINVAL with
 * err relative to the device ("deviceName: missing ..."; the caller skips the device or refuses the
 * connector); bad keys inside are reported and skipped. */
int tbgw_cfg_device_parse(tbgw_cfg *w, const json_t *dev, const char *path, tbgw_cfg_device *out,
                          tbgw_err *err);
void tbgw_cfg_device_free(tbgw_cfg_device *d);

/* ---- RPC replies (spec gateway.md §1.7); each leads to exactly one host->rpc_reply ------------- */

/* {"result": <result>} as an object; result is stolen (NULL = null). */
int tbgw_rpc_result(const tbgw_host *h, uint64_t handle, json_t *result);
/* {"result": {"value": <value>}}: the reserved get/set answer of Modbus and OPC-UA; value stolen. */
int tbgw_rpc_value(const tbgw_host *h, uint64_t handle, json_t *value);
/* {"error": "<text>"} as an object. */
int tbgw_rpc_error(const tbgw_host *h, uint64_t handle, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* {"error": "<text>", "success": false} as a JSON string (success_sent False: a failed request). */
int tbgw_rpc_failed(const tbgw_host *h, uint64_t handle, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* {"success": true|false} as a JSON string (one-way requests). */
int tbgw_rpc_success(const tbgw_host *h, uint64_t handle, int ok);
/* {"success": true|false} as an object (the reply of CAN and ODBC requests, not success_sent). */
int tbgw_rpc_success_object(const tbgw_host *h, uint64_t handle, int ok);

/* ---- reserved get/set parameters ------------------------------------------------------------- */

typedef struct tbgw_param {
    char *key, *value;
} tbgw_param;

typedef struct tbgw_params {
    tbgw_param *v;
    size_t n;
} tbgw_params;

#define TBGW_PARAMS_LENIENT 1u /* segments without '=' are ignored instead of refused */

/* Parses "k1=v1;k2=v2;..." (spaces around keys trimmed, values kept as written, a value may contain
 * '=', the last ';' is optional, empty segments ignored; a later equal key overrides). A segment
 * without '=' (unless TBGW_PARAMS_LENIENT) or with an empty key gives TBGW_EINVAL with err naming it. */
int tbgw_params_parse(const char *text, unsigned flags, tbgw_params *out, tbgw_err *err);
/* The value of key (exact match), or NULL. */
const char *tbgw_params_get(const tbgw_params *p, const char *key);
/* An integer value: 0, TBGW_ENOENT when absent, TBGW_EINVAL when not an integer. */
int tbgw_params_int(const tbgw_params *p, const char *key, int64_t *out);
/* {"k1":"v1",...} (new reference). */
json_t *tbgw_params_object(const tbgw_params *p);
void tbgw_params_free(tbgw_params *p);

/* ---- waiting ---------------------------------------------------------------------------------- */

/* Sleeps in one poll() on fds[0..n) (may be NULL when n is 0; entries with fd < 0 are ignored, as by
 * poll) and host->downlink_fd until one is ready or timeout_ms passes (< 0: no timeout; the next
 * timer of the loop is what a connector passes), fills fds[].revents, and dispatches the downlink
 * work when downlink_fd is readable. Returns 1 when the connector should stop (at once, whatever the
 * timeout), else 0 (EINTR included), or TBGW_EIO when poll() fails. A host without a downlink
 * descriptor (dispatch NULL) gets poll() slices of at most 20 ms with host->wait(h, 0) between them.
 * Connector thread only. */
int tbgw_host_poll(const tbgw_host *h, struct pollfd *fds, size_t n, int64_t timeout_ms);

#ifdef __cplusplus
}
#endif
#endif
