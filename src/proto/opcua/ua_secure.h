/* Secure conversation (Part 6 §6.7) for the security policies Basic128Rsa15, Basic256,
 * Basic256Sha256, Aes128_Sha256_RsaOaep and Aes256_Sha256_RsaPss with the modes Sign and
 * SignAndEncrypt (OpenSSL): asymmetric OpenSecureChannel chunks, key derivation, symmetric chunks. */
#ifndef TBGW_PROTO_OPCUA_SECURE_H
#define TBGW_PROTO_OPCUA_SECURE_H

#include <stddef.h>
#include <stdint.h>
#include <tbgw/err.h>

#include "proto/opcua/ua_chunk.h"
#include "util/buf.h"

typedef struct tbgw_ua_policy tbgw_ua_policy;

enum { TBGW_UA_MODE_NONE = 1, TBGW_UA_MODE_SIGN = 2, TBGW_UA_MODE_SIGN_ENCRYPT = 3 };

/* Looks a policy up by its short name ("Basic256Sha256") or URI; NULL when unknown. */
const tbgw_ua_policy *tbgw_ua_policy_find(const char *name_or_uri);
const char *tbgw_ua_policy_uri(const tbgw_ua_policy *p);
const char *tbgw_ua_policy_name(const tbgw_ua_policy *p);
/* Parses "None", "Sign", "SignAndEncrypt"; 0 when unknown. */
int tbgw_ua_mode_parse(const char *s);

typedef struct tbgw_ua_sec tbgw_ua_sec;

/* Loads the client certificate and key (PEM or DER files), the optional CA file (every certificate
 * in it is trusted; CRLs in it are used) and the optional CRL file (PEM with one or more CRLs, or
 * one DER CRL; needs a CA). When any CRL is loaded the server certificate is checked against its
 * issuer's CRL (X509_V_FLAG_CRL_CHECK). */
tbgw_ua_sec *tbgw_ua_sec_new(const tbgw_ua_policy *pol, int mode, const char *cert_path, const char *key_path,
                             const char *ca_path, const char *crl_path, tbgw_err *err);
void tbgw_ua_sec_free(tbgw_ua_sec *s);
const tbgw_ua_policy *tbgw_ua_sec_policy(const tbgw_ua_sec *s);
int tbgw_ua_sec_mode(const tbgw_ua_sec *s);
/* The client certificate (DER) and the application URI from its subjectAltName (NULL if none). */
const uint8_t *tbgw_ua_sec_cert(const tbgw_ua_sec *s, size_t *len);
const char *tbgw_ua_sec_app_uri(const tbgw_ua_sec *s);
/* Sets the server certificate (DER, from the endpoint) and checks it against the CA when one is
 * configured. */
int tbgw_ua_sec_set_server_cert(tbgw_ua_sec *s, const uint8_t *der, size_t len, tbgw_err *err);
/* A fresh client nonce for OpenSecureChannel. */
int tbgw_ua_sec_new_nonce(tbgw_ua_sec *s, const uint8_t **nonce, size_t *len);
/* Derives the symmetric keys for token_id from the server nonce (after the OPN response). */
int tbgw_ua_sec_derive(tbgw_ua_sec *s, uint32_t token_id, const uint8_t *server_nonce, size_t len);

/* Builds a signed and encrypted OPN chunk (asymmetric). */
int tbgw_ua_sec_encode_opn(tbgw_ua_sec *s, tbgw_buf *out, uint32_t channel_id, uint32_t seq,
                           uint32_t request_id, const uint8_t *body, size_t n);
/* Builds the symmetric chunks (MSG/CLO) of a message; seq is advanced per chunk. */
int tbgw_ua_sec_encode_msg(tbgw_ua_sec *s, tbgw_buf *out, const char *type, uint32_t channel_id,
                           uint32_t token_id, uint32_t *seq, uint32_t request_id, const uint8_t *body,
                           size_t n, uint32_t chunk_size, uint32_t max_chunks);
/* Decrypts and verifies a received chunk (frame already parsed into c); on success c->seq_num,
 * c->request_id, c->body and c->body_len refer to plaintext kept in s until the next call. */
int tbgw_ua_sec_decode(tbgw_ua_sec *s, const uint8_t *frame, size_t n, tbgw_ua_chunk *c);
/* Signs data with the client key using the policy's asymmetric signature (for ActivateSession). */
int tbgw_ua_sec_sign(tbgw_ua_sec *s, const uint8_t *data, size_t n, tbgw_buf *sig, const char **alg_uri);
/* Signs a || b with the client key using pol's asymmetric signature algorithm (user token
 * signatures, whose policy may differ from the channel's). */
int tbgw_ua_sec_sign_as(tbgw_ua_sec *s, const tbgw_ua_policy *pol, const uint8_t *a, size_t an,
                        const uint8_t *b, size_t bn, tbgw_buf *sig, const char **alg_uri);
/* Verifies a signature by the server (set_server_cert first) over a || b with the channel policy's
 * asymmetric signature algorithm; alg_uri (may be NULL/empty) must name that algorithm. 0 or
 * TBGW_EPROTO with the reason in err. */
int tbgw_ua_sec_verify_server(tbgw_ua_sec *s, const uint8_t *a, size_t an, const uint8_t *b, size_t bn,
                              const char *alg_uri, const uint8_t *sig, size_t sl, tbgw_err *err);
/* Length of the client's own certificate at the front of tbgw_ua_sec_cert (without its chain). */
size_t tbgw_ua_sec_cert_leaf_len(const tbgw_ua_sec *s);
/* The server's own certificate (DER, without its issuer chain). */
const uint8_t *tbgw_ua_sec_server_cert(const tbgw_ua_sec *s, size_t *len);

#endif
