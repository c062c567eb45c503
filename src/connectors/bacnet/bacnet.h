/* BACnet connector internals shared by its files, its unit tests and its fuzz targets. */
#ifndef TBGW_CONNECTORS_BACNET_H
#define TBGW_CONNECTORS_BACNET_H

#include <jansson.h>
#include <stdint.h>
#include <tbgw/connector.h>

#include "convert/expr.h"
#include "proto/bacnet/bn_client.h"
#include "util/backoff.h"
#include "util/buf.h"

#define BNC_MAX_PROPS 16
#define BNC_INST_ANY  (-1) /* objectId "*": every object of the type(s) from the objectList */
#define BNC_INST_SELF (-2) /* objectType "device": the device's own instance */

/* One configured item ("*" sections and ranges already expanded as far as the config allows). */
typedef struct bnc_item {
    char *key;
    tbgw_expr *key_expr;
    int attr;     /* 1 = attributes, 0 = timeseries */
    int types[8]; /* object types (several only with objectId "*"); -1 = any type ("*" section) */
    size_t n_types;
    int64_t inst;                  /* instance, BNC_INST_ANY or BNC_INST_SELF */
    uint32_t props[BNC_MAX_PROPS]; /* properties to emit */
    size_t n_props;
    uint32_t tags[BNC_MAX_PROPS]; /* properties named by ${...} in the key, read for naming */
    size_t n_tags;
    int proprietary; /* loadProprietaryDevices: vendor property names known */
} bnc_item;

/* deviceId matcher */
typedef struct bnc_idmatch {
    int any;
    int64_t (*ranges)[2];
    size_t n_ranges;
    char *regex; /* text form of a regex deviceId, matched against the decimal instance */
} bnc_idmatch;

/* One entry of "devices" in the configuration. */
typedef struct bnc_devcfg {
    size_t index;
    char *address; /* pattern without the mask: "192.168.1.5:47809", "*", "192.168.X.X:*" */
    uint32_t ip;   /* when the address names one host */
    uint16_t port;
    int unicast;  /* Who-Is can go to ip:port */
    int global;   /* a pattern with a ':' (not net:*): Who-Is as a global broadcast, as the reference */
    uint16_t net; /* "net:station" / "net:*": a device behind a router (station bytes in mac) */
    uint8_t mac[8], mac_len;
    int need_router; /* a name/profile template uses ${routerName}, ${routerId}, ... */
    int proprietary; /* loadProprietaryDevices (copied from the config) */
    int has_id;
    bnc_idmatch id;
    char **alt;
    size_t n_alt;
    tbgw_expr *name_expr, *profile_expr;
    int name_const, profile_const;
    int need_object_name;
    int64_t poll_ms;
    bnc_item *items;
    size_t n_items;
    int use_cov;
    uint32_t cov_lifetime_s;           /* covLifetime: SubscribeCOV lifetime, renewed at half */
    const json_t *attr_updates, *rpcs; /* borrowed from the connector's config copy */
} bnc_devcfg;

typedef struct bnc_app {
    uint32_t bind_ip, broadcast_ip;
    uint16_t port;
    uint32_t instance;
    char *object_name;
    unsigned max_apdu;
    uint32_t segmentation;
    uint32_t vendor;
    int64_t discovery_timeout_ms, rescan_ms, discover_ms;
    int apdu_timeout_ms, apdu_retries;
    uint32_t bbmd_ip;
    uint16_t bbmd_port, ttl;
} bnc_app;

typedef struct bnc_config {
    json_t *root; /* the (converted) configuration, owns what devcfg borrows */
    bnc_app app;
    bnc_devcfg *devs;
    size_t n_devs;
    int proprietary; /* loadProprietaryDevices */
} bnc_config;

/* Parses the connector file (new or old format; EDE import). Bad per-key entries are reported with
 * host->config_warning and skipped; a fatal mistake fills err ("dotted.path: message"). */
int bnc_config_parse(const tbgw_host *h, const json_t *cfg, bnc_config *out, tbgw_err *err);
void bnc_config_free(bnc_config *c);
/* Mask normalisation (spec 2.1): returns the kept text or "24". */
const char *bnc_mask_normalise(const char *mask);
/* Old format -> new format (a new reference). */
json_t *bnc_config_upgrade(const json_t *old);
/* EDE CSV text into a devices list (NULL on a malformed file, err filled). */
json_t *bnc_ede_devices(const char *text, char sep, tbgw_err *err);

/* Property by name: the standard ones, and with proprietary the vendor extensions (descriptionList). */
int bnc_property_parse(int proprietary, const char *name);
const char *bnc_property_name(int proprietary, uint32_t prop);

/* Address patterns (spec 2.3): does the I-Am source address string match the device pattern? */
int bnc_address_match(const char *pattern, const char *addr);
int bnc_id_match(const bnc_idmatch *m, uint32_t inst);

/* ---- values ---- */
/* Converts a property value (encoded items) as the reference does: a single Real/Double becomes a
 * double rounded to 2 decimals, anything else its Python str() text. Returns 0, or -1 malformed. */
int bnc_value_convert(uint16_t otype, uint32_t prop, const uint8_t *p, size_t n, tbgw_value *out,
                      tbgw_buf *text);
/* str() text of a value into text (what RPC reads answer). */
int bnc_value_text(uint16_t otype, uint32_t prop, const uint8_t *p, size_t n, tbgw_buf *text);
/* Encodes a downlink value (JSON) for a WriteProperty of prop on an object of type otype. */
int bnc_value_encode(bn_w *w, uint16_t otype, uint32_t prop, const json_t *v, char *why, size_t cap);

/* Special writes (bacnet_sched.c): weeklySchedule (123) with values typed as the presentValue of
 * objects of type elem_otype (0xFFFF: by the literal), listOfObjectPropertyReferences (54). */
int bnc_encode_special(bn_w *w, uint32_t prop, const json_t *value, uint16_t elem_otype, char *why,
                       size_t cap);
json_t *bnc_py_literal(const char *s);
/* The object type of the first reference in an encoded listOfObjectPropertyReferences, or 0xFFFF. */
uint16_t bnc_first_reference_type(const uint8_t *p, size_t n);

/* ---- runtime ---- */
typedef struct bnc_point { /* one concrete object/property set a device polls */
    const bnc_item *item;
    uint16_t type;
    uint32_t inst;
} bnc_point;

typedef struct bnc_result { /* one value of the running poll cycle */
    uint16_t type;
    uint32_t inst;
    uint32_t prop;
    uint8_t *data;
    size_t len;
} bnc_result;

typedef enum { BNC_NAMING, BNC_LISTING, BNC_ACTIVE, BNC_INACTIVE } bnc_state;

typedef struct bnc_conn bnc_conn;

/* What the router of a remote network says about itself (for ${routerName} & co). */
typedef enum { BNC_ROUTER_ASKING, BNC_ROUTER_NAMING, BNC_ROUTER_DONE, BNC_ROUTER_FAILED } bnc_router_state;
typedef struct bnc_router {
    bn_addr addr;
    char addr_text[48];
    bnc_router_state state;
    uint32_t inst, vendor;
    char *name;
    int64_t deadline;
    size_t waiters; /* devices waiting for the router's info */
} bnc_router;

typedef struct bnc_device {
    bnc_conn *conn;
    const bnc_devcfg *cfg;
    bn_addr addr;
    char addr_text[48];
    bn_iam iam;
    char *name, *type, *object_name;
    bnc_state state;
    int rpm; /* 1 = use ReadPropertyMultiple, 0 = the device rejected it: ReadProperty */
    bnc_point *points;
    size_t n_points;
    uint32_t *objects; /* objectList (type << 22 | instance) */
    size_t n_objects, list_len, list_next;
    uint32_t *failed_idx; /* objectList indexes that could not be read */
    size_t n_failed;
    int64_t next_poll, period, cycle_start, next_rescan, retry_at;
    int inflight, cycle_ok, cycle_fail;
    bnc_result *res;
    size_t n_res, cap_res;
    tbgw_backoff backoff;
    bnc_router *router; /* waited for (state NAMING) / the router's info for the templates */
    int64_t cov_renew_at;
    uint32_t cov_pid;
    size_t cov_ok, cov_refused, cov_next;
    int cov_inflight;
} bnc_device;

struct bnc_conn {
    const tbgw_host *h;
    bnc_config cfg;
    bn_client *cl;
    bnc_device **devs;
    size_t n_devs, cap_devs;
    int64_t next_discover;
    bnc_router **routers;
    size_t n_routers;
    volatile int stop;
    uint64_t malformed;
};

/* The device takes segmented requests (segmentation-supported both or receive). */
static inline int bnc_takes_segments(const bnc_device *d) {
    return d->iam.segmentation == 0 || d->iam.segmentation == 2;
}

/* Converts one point from a set of results (bacnet.c). */
void bnc_convert_point(const bnc_result *res, size_t n_res, const bnc_point *pt, tbgw_converted *rec,
                       int64_t ts, tbgw_buf *scratch);
/* COV (bacnet_cov.c): subscriptions of a device that has useCov, renewed before they lapse; a
 * notification is converted and emitted at once. */
void bnc_cov_tick(bnc_device *d, int64_t now);
void bnc_cov_notification(bnc_conn *c, const bn_addr *src, const uint8_t *p, size_t n);

/* Downlink (bacnet_rpc.c). */
int bnc_on_attr_update(void *self, const tbgw_attr_update *u);
int bnc_on_rpc(void *self, const tbgw_rpc_req *r);
bnc_device *bnc_find_device(bnc_conn *c, const char *name);
/* Our own device object (bacnet_server.c). */
void bnc_serve(bnc_conn *c, const bn_addr *src, const bn_apdu *req, bn_w *w);
void bnc_send_i_am(bnc_conn *c, const bn_addr *dst);

#endif
