/* Internals shared by the client's files (not for connectors). */
#ifndef TBGW_PROTO_OPCUA_INTERNAL_H
#define TBGW_PROTO_OPCUA_INTERNAL_H

#include "proto/opcua/ua_chunk.h"
#include "proto/opcua/ua_client.h"

/* Binary encoding ids of the service messages (ns=0). */
enum {
    UA_ID_SERVICE_FAULT = 397,
    UA_ID_GET_ENDPOINTS_REQ = 428,
    UA_ID_GET_ENDPOINTS_RESP = 431,
    UA_ID_OPN_REQ = 446,
    UA_ID_OPN_RESP = 449,
    UA_ID_CLO_REQ = 452,
    UA_ID_CREATE_SESSION_REQ = 461,
    UA_ID_CREATE_SESSION_RESP = 464,
    UA_ID_ACTIVATE_SESSION_REQ = 467,
    UA_ID_ACTIVATE_SESSION_RESP = 470,
    UA_ID_CLOSE_SESSION_REQ = 473,
    UA_ID_CLOSE_SESSION_RESP = 476,
    UA_ID_BROWSE_REQ = 527,
    UA_ID_BROWSE_RESP = 530,
    UA_ID_BROWSE_NEXT_REQ = 533,
    UA_ID_BROWSE_NEXT_RESP = 536,
    UA_ID_TRANSLATE_REQ = 554,
    UA_ID_TRANSLATE_RESP = 557,
    UA_ID_READ_REQ = 631,
    UA_ID_READ_RESP = 634,
    UA_ID_WRITE_REQ = 673,
    UA_ID_WRITE_RESP = 676,
    UA_ID_CALL_REQ = 712,
    UA_ID_CALL_RESP = 715,
    UA_ID_CREATE_MI_REQ = 751,
    UA_ID_CREATE_MI_RESP = 754,
    UA_ID_DELETE_MI_REQ = 781,
    UA_ID_DELETE_MI_RESP = 784,
    UA_ID_CREATE_SUB_REQ = 787,
    UA_ID_CREATE_SUB_RESP = 790,
    UA_ID_DATA_CHANGE = 811,
    UA_ID_STATUS_CHANGE = 820,
    UA_ID_PUBLISH_REQ = 826,
    UA_ID_PUBLISH_RESP = 829,
    UA_ID_REPUBLISH_REQ = 832,
    UA_ID_REPUBLISH_RESP = 835,
    UA_ID_DELETE_SUB_REQ = 847,
    UA_ID_DELETE_SUB_RESP = 850,
    UA_ID_ANONYMOUS_TOKEN = 321,
    UA_ID_USERNAME_TOKEN = 324,
    UA_ID_X509_TOKEN = 327,
};

#define UA_BAD(s) (((s)&0x80000000u) != 0)

/* Starts a request body: type id + RequestHeader. */
void tbgw_ua_req_begin(tbgw_ua_client *c, tbgw_buf *b, uint32_t type_id);
/* Sends the request in b and waits for its response. On success d reads the response after its
 * ResponseHeader (backed by resp, which the caller frees). A ServiceFault or a Bad serviceResult
 * gives TBGW_EPROTO with last_status set. */
int tbgw_ua_req_call(tbgw_ua_client *c, tbgw_buf *b, uint32_t resp_type, tbgw_buf *resp, tbgw_ua_dec *d);
/* Records an error text (and status) on the client. Returns code. */
int tbgw_ua_client_fail(tbgw_ua_client *c, int code, uint32_t status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
tbgw_logger *tbgw_ua_client_log(tbgw_ua_client *c);
/* Subscription bookkeeping for the publish loop. */
void tbgw_ua_client_sub_added(tbgw_ua_client *c, int64_t keepalive_ms);
void tbgw_ua_client_sub_removed(tbgw_ua_client *c);
/* Test hook: the next n publish responses carrying notifications are dropped as if lost on the
 * way, so the Republish path runs. */
void tbgw_ua_client_test_drop_publish(tbgw_ua_client *c, int n);
/* Service bodies (after the RequestHeader / ResponseHeader), kept apart from the I/O so they can
 * be tested and fuzzed. */
/* DeleteMonitoredItemsRequest: subscriptionId, monitoredItemIds[n]. */
void tbgw_ua_enc_delete_mi(tbgw_buf *b, uint32_t sub_id, const uint32_t *ids, size_t n);
/* A results StatusCode[] of exactly n entries followed by diagnosticInfos[] (DeleteMonitoredItems,
 * Write, DeleteSubscriptions responses; the diagnostics may be missing). Returns 0 or the decoder's
 * error (TBGW_EPROTO, TBGW_ENOMEM); status is filled only on 0. */
int tbgw_ua_dec_status_results(tbgw_ua_dec *d, size_t n, uint32_t *status);
/* CreateMonitoredItemsResponse results[] of exactly n MonitoredItemCreateResults: status[i] and,
 * when ids is not NULL, the server's monitoredItemId ids[i]. Returns 0 or the decoder's error. */
int tbgw_ua_dec_create_mi_results(tbgw_ua_dec *d, size_t n, uint32_t *status, uint32_t *ids);

/* Encrypts the user password for a token policy that names a security policy (OpenSSL). */
int tbgw_ua_encrypt_secret(const char *policy_uri, const uint8_t *cert_der, size_t cert_len,
                           const char *password, const uint8_t *nonce, size_t nonce_len, tbgw_buf *out,
                           const char **alg_uri);

/* The endpoint with the wanted security policy and mode, found in a GetEndpointsResponse. */
typedef struct tbgw_ua_endpoint_pick {
    const char *want_policy; /* policy URI; NULL matches nothing */
    uint32_t want_mode;      /* 1 None, 2 Sign, 3 SignAndEncrypt */
    int found;
    tbgw_buf server_cert; /* its certificate (DER, possibly a chain) */
    /* its user token policies: the first anonymous and username ones, and the best X509 one
     * whose security policy is supported (x509_offered: any X509 policy at all) */
    char *anon_id, *user_id, *user_uri, *x509_id, *x509_uri;
    int x509_offered;
} tbgw_ua_endpoint_pick;
/* Decodes the endpoints array of a GetEndpointsResponse (after its ResponseHeader) into p, whose
 * want_* fields and server_cert (initialised) the caller sets. Returns 0 or the decoder's error. */
int tbgw_ua_endpoints_decode(tbgw_ua_dec *d, tbgw_ua_endpoint_pick *p);
void tbgw_ua_endpoint_pick_clear(tbgw_ua_endpoint_pick *p);

/* A CreateSessionResponse after its ResponseHeader. */
typedef struct tbgw_ua_session_resp {
    tbgw_ua_nodeid session_id, auth_token;
    double timeout_ms;
    tbgw_ua_bytes nonce, cert, sig_alg, sig;
    uint32_t max_request;
} tbgw_ua_session_resp;
/* Always initialises r (clear it with tbgw_ua_session_resp_clear). Returns 0 or the error. */
int tbgw_ua_create_session_decode(tbgw_ua_dec *d, tbgw_ua_session_resp *r);
void tbgw_ua_session_resp_clear(tbgw_ua_session_resp *r);

/* Cryptographically random bytes (OpenSSL). 0 or TBGW_EIO. */
int tbgw_ua_random(uint8_t *p, size_t n);
/* Length of the first certificate of a DER certificate chain; 0 when it does not parse. */
size_t tbgw_ua_cert_leaf_len(const uint8_t *der, size_t len);

#endif
