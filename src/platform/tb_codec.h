/* ThingsBoard gateway MQTT API: topics, uplink packing, downlink parsing, RPC reply encoding
 * (spec §1.4–§1.8). Pure functions, no I/O. */
#ifndef TBGW_PLATFORM_TB_CODEC_H
#define TBGW_PLATFORM_TB_CODEC_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/record.h"

#define TB_TOPIC_CONNECT          "v1/gateway/connect"
#define TB_TOPIC_DISCONNECT       "v1/gateway/disconnect"
#define TB_TOPIC_GW_TELEMETRY     "v1/gateway/telemetry"
#define TB_TOPIC_GW_ATTRIBUTES    "v1/gateway/attributes"
#define TB_TOPIC_GW_ATTR_REQUEST  "v1/gateway/attributes/request"
#define TB_TOPIC_GW_ATTR_RESPONSE "v1/gateway/attributes/response"
#define TB_TOPIC_GW_RPC           "v1/gateway/rpc"
#define TB_TOPIC_ME_TELEMETRY     "v1/devices/me/telemetry"
#define TB_TOPIC_ME_ATTRIBUTES    "v1/devices/me/attributes"
#define TB_TOPIC_ME_ATTR_REQUEST  "v1/devices/me/attributes/request/"
#define TB_TOPIC_ME_ATTR_RESPONSE "v1/devices/me/attributes/response/"
#define TB_TOPIC_ME_RPC_REQUEST   "v1/devices/me/rpc/request/"
#define TB_TOPIC_ME_RPC_RESPONSE  "v1/devices/me/rpc/response/"

/* One MQTT message produced by the packer. */
typedef struct tb_msg {
    const char *topic;
    const char *payload;
    size_t len;
    uint32_t datapoints;
    int telemetry; /* counts against telemetry limits */
} tb_msg;

/* Maps a device name to its platform name (renaming); returns NULL to keep it. */
typedef const char *(*tb_rename_fn)(void *ud, const char *name, size_t len);
typedef int (*tb_msg_fn)(void *ud, const tb_msg *m);

/* Packs decoded records into as few messages of at most max_payload bytes as possible: per device
 * telemetry lists concatenated in order and attribute objects merged (later wins); several devices
 * share one v1/gateway message. Attribute messages come before telemetry messages.
 * Calls emit for each message; returns 0 or the first error. */
int tb_codec_pack(const tbgw_record_view *recs, size_t n, size_t max_payload, tb_rename_fn rename,
                  void *rename_ud, tb_msg_fn emit, void *emit_ud);

/* Downlink message kinds. */
typedef enum tb_down_kind {
    TB_DOWN_UNKNOWN = 0,
    TB_DOWN_GW_ATTR_UPDATE,   /* v1/gateway/attributes */
    TB_DOWN_GW_ATTR_RESPONSE, /* v1/gateway/attributes/response */
    TB_DOWN_GW_RPC,           /* v1/gateway/rpc */
    TB_DOWN_ME_ATTR_UPDATE,   /* v1/devices/me/attributes */
    TB_DOWN_ME_ATTR_RESPONSE, /* v1/devices/me/attributes/response/{n} */
    TB_DOWN_ME_RPC_REQUEST,   /* v1/devices/me/rpc/request/{id} */
    TB_DOWN_ME_RPC_RESPONSE,  /* v1/devices/me/rpc/response/{n} */
} tb_down_kind;

typedef struct tb_down {
    tb_down_kind kind;
    int64_t topic_id;   /* {n}/{id} from the topic */
    json_t *root;       /* parsed payload (owned) */
    const char *device; /* gateway messages: target device (borrowed from root) */
    json_t *data;       /* attr update: the key/values; rpc: {"id","method","params"}; borrowed */
    int64_t id;         /* rpc id / attribute request id */
    const char *method; /* rpc method */
    json_t *params;     /* rpc params (may be NULL) */
} tb_down;

/* Parses a downlink message. Returns 0, or TBGW_EPROTO with err naming what is wrong (the message
 * is then dropped and counted by the caller). Free with tb_down_free. */
int tb_codec_parse_down(const char *topic, const void *payload, size_t len, tb_down *out, char *err,
                        size_t errlen);
void tb_down_free(tb_down *d);

/* Encodes an RPC reply the way the reference does (spec §1.7). device NULL = the gateway's own RPC.
 * success: -1 = content as is; 0/1 = "success_sent". Returns a malloc'd payload, and topic in
 * topic_buf. content is borrowed (may be NULL). */
char *tb_codec_rpc_reply(const char *device, int64_t id, const json_t *content, int success, char *topic_buf,
                         size_t topic_len);

#endif
