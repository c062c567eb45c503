/* OCPP connector internals: configuration, OCPP-J frames, conversion. The WebSocket server and the
 * sessions are in ocpp.c; everything here is pure and fuzzed (tests/fuzz/fuzz_ocpp_frame.c). */
#ifndef TBGW_CONNECTORS_OCPP_INTERNAL_H
#define TBGW_CONNECTORS_OCPP_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <jansson.h>
#include <pcre2.h>
#include <tbgw/connkit.h>
#include <tbgw/data.h>

#include "convert/expr.h"

/* One attributes/timeseries entry: the actions it applies to and its templates. */
typedef struct ocpp_key {
    char **actions; /* messageTypeFilter, split at ',' */
    size_t n_actions;
    tbgw_expr *key, *value;
} ocpp_key;

/* One chargePoints[] entry. */
typedef struct ocpp_cp_cfg {
    pcre2_code *id_re, *host_re, *port_re;
    tbgw_expr *name, *type;
    ocpp_key *attrs, *ts;
    size_t n_attrs, n_ts;
    const json_t *cfg; /* the entry (attributeUpdates, serverSideRpc), owned by the connector's copy */
} ocpp_cp_cfg;

/* OCPP-J message types. */
enum { OCPP_CALL = 2, OCPP_RESULT = 3, OCPP_ERROR = 4 };

/* A decoded OCPP-J frame; strings and payload are borrowed from root. */
typedef struct ocpp_frame {
    json_t *root;
    int type;
    const char *uid;
    const char *action;    /* CALL */
    const json_t *payload; /* CALL, CALLRESULT */
    const char *err_code, *err_desc;
} ocpp_frame;

/* Parses one text frame. 0, or -1 with why and (when the frame had one) *uid_out set so that a
 * CALLERROR can be addressed; why names the OCPP error code and the reason ("FormationViolation: ..."). */
int ocpp_frame_parse(const char *text, size_t len, ocpp_frame *f, char *why, size_t why_len, char *uid_out,
                     size_t uid_len);
void ocpp_frame_clear(ocpp_frame *f);

/* Key conversion as the reference's OCPP library does it: camelCase -> snake_case on the way in,
 * snake_case -> camelCase on the way out; recursive over objects and arrays. New references. */
json_t *ocpp_snake_keys(const json_t *v);
json_t *ocpp_camel_keys(const json_t *v);
/* One key (out must hold 2 * strlen(in) + 1). */
void ocpp_snake_key(const char *in, char *out);

/* Builds [3,uid,payload] / [4,uid,code,desc,{}] / [2,uid,action,payload] as text (malloc'ed). */
char *ocpp_result_text(const char *uid, const json_t *payload);
char *ocpp_error_text(const char *uid, const char *code, const char *desc);
char *ocpp_call_text(const char *uid, const char *action, const json_t *payload);

/* The answer of the central system to a CALL from a charge point of protocol version v (16 or 201);
 * NULL with *code and *desc set for a CALLERROR. *tx_counter numbers transactions. */
json_t *ocpp_answer(int v, const char *action, const json_t *payload, int *tx_counter, const char **code,
                    const char **desc);

/* Device profile of a BootNotification payload (snake_case keys): {"Vendor": ..., "Model": ...}. */
json_t *ocpp_boot_profile(int v, const json_t *snake_payload);

/* Converts a payload (snake_case keys) of action into a record for device/type, by the entries whose
 * messageTypeFilter names the action. NULL when nothing applies. */
tbgw_converted *ocpp_convert(const ocpp_cp_cfg *cp, const char *device, const char *type, const char *action,
                             const json_t *snake_payload);

/* DataTransfer payloads: each top-level string field that parses as a JSON object or array is
 * replaced by it (as the reference does for "data"). New reference. */
json_t *ocpp_parse_embedded(const json_t *payload);

/* Parses a chargePoints[] entry; 0, or an error naming path. Bad attributes / timeseries entries are
 * reported through w and skipped. */
int ocpp_cp_parse(tbgw_cfg *w, const json_t *e, const char *path, ocpp_cp_cfg *out, tbgw_err *err);
void ocpp_cp_free(ocpp_cp_cfg *cp);
/* Whether the charge point id (the URL path without its slashes) and the peer match the entry. */
int ocpp_cp_matches(const ocpp_cp_cfg *cp, const char *id, const char *peer_host, int peer_port);

#endif
