/* A small blocking OPC UA client: UA-TCP, secure channel (SecurityPolicy None or secured, see
 * ua_secure.h), session (anonymous, username or X509 identity) and the services a gateway needs. One client
 * is used from one thread. Every call is bounded by the configured timeout; a transport or session failure
 * leaves the client disconnected, and the caller reconnects (which re-creates the channel and the session;
 * subscriptions are the caller's to re-create). */
#ifndef TBGW_PROTO_OPCUA_CLIENT_H
#define TBGW_PROTO_OPCUA_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <tbgw/err.h>
#include <tbgw/log.h>
#include "proto/opcua/ua_types.h"

#define TBGW_UA_POLICY_NONE "http://opcfoundation.org/UA/SecurityPolicy#None"

/* Attribute ids (Part 6 A.1). */
enum {
    TBGW_UA_ATTR_NODEID = 1,
    TBGW_UA_ATTR_NODECLASS = 2,
    TBGW_UA_ATTR_BROWSENAME = 3,
    TBGW_UA_ATTR_DISPLAYNAME = 4,
    TBGW_UA_ATTR_VALUE = 13,
    TBGW_UA_ATTR_DATATYPE = 14,
};

/* Well-known ns=0 node ids. */
enum {
    TBGW_UA_NS0_ROOT = 84,
    TBGW_UA_NS0_OBJECTS = 85,
    TBGW_UA_NS0_HIERARCHICAL = 33,
    TBGW_UA_NS0_HAS_COMPONENT = 47,
    TBGW_UA_NS0_HAS_SUBTYPE = 45,
    TBGW_UA_NS0_NAMESPACE_ARRAY = 2255,
    TBGW_UA_NS0_SERVER_STATE = 2259,
};

/* When a user certificate is configured: AUTO sends the anonymous token when the endpoint offers
 * one and else the X509 token (when offered); CERTIFICATE always sends the X509 token. */
enum { TBGW_UA_TOKEN_AUTO = 0, TBGW_UA_TOKEN_CERTIFICATE = 1 };

typedef void (*tbgw_ua_datachange_fn)(void *ctx, uint32_t sub_id, uint32_t client_handle,
                                      const tbgw_ua_datavalue *dv);
/* A subscription was lost on the server (StatusChangeNotification, BadSubscriptionIdInvalid). */
typedef void (*tbgw_ua_sublost_fn)(void *ctx, uint32_t sub_id, uint32_t status);

typedef struct tbgw_ua_client_cfg {
    const char *url;           /* opc.tcp://host:port/path */
    int timeout_ms;            /* per request (and connect) */
    double session_timeout_ms; /* requested session timeout */
    const char *app_uri;       /* client application URI; NULL = "urn:tbgw:client" */
    const char *username;      /* NULL = anonymous identity */
    const char *password;
    /* Secure channel: policy short name or URI (NULL or "None" = SecurityPolicy None), mode 2 = Sign,
     * 3 = SignAndEncrypt; client certificate and key files (PEM or DER), CA to check the server
     * certificate against (optional). */
    const char *security_policy;
    int security_mode;
    const char *cert_path, *key_path, *ca_path;
    /* Certificate revocation lists (PEM, one or more; or one DER) checked with the CA; CRLs inside
     * the CA file are used too. NULL = none. */
    const char *crl_path;
    /* X509 user identity: certificate and key (PEM or DER). Used per user_token when no username is
     * configured. NULL = none. */
    const char *user_cert_path, *user_key_path;
    int user_token;               /* TBGW_UA_TOKEN_AUTO or TBGW_UA_TOKEN_CERTIFICATE */
    uint32_t channel_lifetime_ms; /* requested secure channel lifetime; 0 = 600000 */
    tbgw_logger *log;             /* NULL = "opcua" */
    tbgw_ua_datachange_fn on_data;
    tbgw_ua_sublost_fn on_sub_lost;
    void *ctx;
} tbgw_ua_client_cfg;

typedef struct tbgw_ua_client tbgw_ua_client;

/* Copies cfg strings. NULL on allocation failure. */
tbgw_ua_client *tbgw_ua_client_new(const tbgw_ua_client_cfg *cfg);
void tbgw_ua_client_free(tbgw_ua_client *c);
/* TCP connect, HEL/ACK, OpenSecureChannel, GetEndpoints, CreateSession, ActivateSession. */
int tbgw_ua_client_connect(tbgw_ua_client *c, tbgw_err *err);
/* CloseSession + CloseSecureChannel (best effort) and close the socket. */
void tbgw_ua_client_disconnect(tbgw_ua_client *c);
int tbgw_ua_client_connected(const tbgw_ua_client *c);
/* Bytes received from servers since the client was made. */
uint64_t tbgw_ua_client_bytes_received(const tbgw_ua_client *c);
/* The current security token id (changes when the channel is renewed). */
uint32_t tbgw_ua_client_token_id(const tbgw_ua_client *c);
/* The OPC UA StatusCode of the last failed service call (0 when the failure was not a status). */
uint32_t tbgw_ua_client_last_status(const tbgw_ua_client *c);
const char *tbgw_ua_client_last_error(const tbgw_ua_client *c);
/* Services publishing, channel renewal and keep-alive for up to timeout_ms; data changes are handed
 * to cfg->on_data. Returns 0 or an error (the client is then disconnected). */
int tbgw_ua_client_poll(tbgw_ua_client *c, int timeout_ms);
/* While tbgw_ua_client_poll waits, fd becoming readable ends the wait early (it is not read); it
 * returns after the messages already received are handled, too. -1 = none (the default). Service
 * calls (Read, Write, Browse, ...) are never cut short by it. */
void tbgw_ua_client_set_wake_fd(tbgw_ua_client *c, int fd);
/* The monotonic ms by which tbgw_ua_client_poll must be called again for the client's own timers
 * (secure channel renewal, the publish keep-alive check or the session keep-alive read). */
int64_t tbgw_ua_client_next_due(const tbgw_ua_client *c);

/* ---- services; all return 0 or a negative TBGW_E* (TBGW_EPROTO with last_status for a Bad
 * service result). Per-operation status codes are returned in the outputs. ---- */

typedef struct tbgw_ua_ref {
    tbgw_ua_expnodeid node;
    tbgw_ua_qname browse_name;
    tbgw_ua_ltext display_name;
    uint32_t node_class;
    int is_forward;
} tbgw_ua_ref;
void tbgw_ua_refs_free(tbgw_ua_ref *refs, size_t n);

/* Browse forward hierarchical references of node (BrowseNext followed until done). */
int tbgw_ua_browse(tbgw_ua_client *c, const tbgw_ua_nodeid *node, tbgw_ua_ref **refs, size_t *n);
/* The same; between two requests (Browse, BrowseNext, ...) yield(ctx) is called while no request is
 * outstanding, so the caller may use the client meanwhile. A non-zero return ends the browse with
 * that code. yield may be NULL. */
int tbgw_ua_browse_ex(tbgw_ua_client *c, const tbgw_ua_nodeid *node, tbgw_ua_ref **refs, size_t *n,
                      int (*yield)(void *ctx), void *ctx);
/* Browse inverse references of type ref_type (ns=0 numeric id, subtypes included) of node: e.g.
 * HasSubtype (45) gives a DataType's supertype. */
int tbgw_ua_browse_inverse(tbgw_ua_client *c, const tbgw_ua_nodeid *node, uint32_t ref_type,
                           tbgw_ua_ref **refs, size_t *n);
/* Reads attribute attr of n nodes into out[n] (each cleared by the caller). */
int tbgw_ua_read(tbgw_ua_client *c, const tbgw_ua_nodeid *nodes, size_t n, uint32_t attr,
                 tbgw_ua_datavalue *out);
/* Writes the value attribute of n nodes; status[n] receives each result. */
int tbgw_ua_write(tbgw_ua_client *c, const tbgw_ua_nodeid *nodes, const tbgw_ua_variant *values, size_t n,
                  uint32_t *status);
/* Follows a path of browse names (hierarchical references, subtypes included) from start.
 * *status receives the operation status; out is set when it is Good. */
int tbgw_ua_translate(tbgw_ua_client *c, const tbgw_ua_nodeid *start, const tbgw_ua_qname *path, size_t n,
                      tbgw_ua_nodeid *out, uint32_t *status);
/* Calls method on object. outs/n_outs receive the output arguments (free each with
 * tbgw_ua_variant_clear and the array with free). */
int tbgw_ua_call(tbgw_ua_client *c, const tbgw_ua_nodeid *object, const tbgw_ua_nodeid *method,
                 const tbgw_ua_variant *args, size_t n_args, uint32_t *status, tbgw_ua_variant **outs,
                 size_t *n_outs);

int tbgw_ua_sub_create(tbgw_ua_client *c, double interval_ms, uint32_t *sub_id);
/* Creates data-change monitored items (value attribute, reporting). status[n] per item. */
int tbgw_ua_sub_add(tbgw_ua_client *c, uint32_t sub_id, const tbgw_ua_nodeid *nodes, const uint32_t *handles,
                    size_t n, double sampling_ms, uint32_t *status);
/* The same; ids[n] (may be NULL) receives the server's monitoredItemId of each item. */
int tbgw_ua_sub_add_ids(tbgw_ua_client *c, uint32_t sub_id, const tbgw_ua_nodeid *nodes,
                        const uint32_t *handles, size_t n, double sampling_ms, uint32_t *status,
                        uint32_t *ids);
/* DeleteMonitoredItems: removes the monitored items ids[n] (monitoredItemIds) of sub_id; status[n]
 * (may be NULL) receives each result. */
int tbgw_ua_sub_remove(tbgw_ua_client *c, uint32_t sub_id, const uint32_t *ids, size_t n, uint32_t *status);
int tbgw_ua_sub_delete(tbgw_ua_client *c, uint32_t sub_id);

/* StatusCode name ("BadNodeIdUnknown"); unknown codes as "0x80AB0000". buf is used for those. */
const char *tbgw_ua_status_name(uint32_t status, char buf[16]);

#endif
