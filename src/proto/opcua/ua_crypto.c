/* Asymmetric encryption of user identity secrets (Part 4 §7.36.3) with OpenSSL. */
#include <openssl/evp.h>
#include <limits.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <string.h>

#include "proto/opcua/ua_internal.h"

#define POLICY_PREFIX "http://opcfoundation.org/UA/SecurityPolicy#"

typedef struct {
    const char *policy;
    int padding;     /* RSA_PKCS1_PADDING or RSA_PKCS1_OAEP_PADDING */
    int oaep_sha256; /* OAEP with SHA-256 instead of SHA-1 */
    const char *alg; /* encryptionAlgorithm URI */
    int overhead;    /* padding bytes per block */
} policy_info;

static const policy_info policies[] = {
    {"Basic128Rsa15", RSA_PKCS1_PADDING, 0, "http://www.w3.org/2001/04/xmlenc#rsa-1_5", 11},
    {"Basic256", RSA_PKCS1_OAEP_PADDING, 0, "http://www.w3.org/2001/04/xmlenc#rsa-oaep", 42},
    {"Basic256Sha256", RSA_PKCS1_OAEP_PADDING, 0, "http://www.w3.org/2001/04/xmlenc#rsa-oaep", 42},
    {"Aes128_Sha256_RsaOaep", RSA_PKCS1_OAEP_PADDING, 0, "http://www.w3.org/2001/04/xmlenc#rsa-oaep", 42},
    {"Aes256_Sha256_RsaPss", RSA_PKCS1_OAEP_PADDING, 1,
     "http://opcfoundation.org/UA/security/rsa-oaep-sha2-256", 66},
};

int tbgw_ua_encrypt_secret(const char *policy_uri, const uint8_t *cert_der, size_t cert_len,
                           const char *password, const uint8_t *nonce, size_t nonce_len, tbgw_buf *out,
                           const char **alg_uri) {
    const policy_info *pi = NULL;
    size_t pl = strlen(POLICY_PREFIX);
    if (strncmp(policy_uri, POLICY_PREFIX, pl) != 0) return TBGW_EINVAL;
    for (size_t i = 0; i < sizeof policies / sizeof policies[0]; i++)
        if (strcmp(policy_uri + pl, policies[i].policy) == 0) pi = &policies[i];
    if (!pi || !cert_der || cert_len == 0) return TBGW_EINVAL;
    const unsigned char *p = cert_der;
    X509 *x = d2i_X509(NULL, &p, (long)cert_len);
    if (!x) return TBGW_EINVAL;
    EVP_PKEY *key = X509_get_pubkey(x);
    X509_free(x);
    if (!key) return TBGW_EINVAL;
    /* plaintext: UInt32 length of (password + nonce), password, server nonce */
    tbgw_buf plain;
    tbgw_buf_init(&plain);
    size_t pwl = strlen(password);
    tbgw_ua_enc_u32(&plain, (uint32_t)(pwl + nonce_len));
    tbgw_buf_append(&plain, password, pwl);
    if (nonce_len) tbgw_buf_append(&plain, nonce, nonce_len);
    int rc = plain.oom ? TBGW_ENOMEM : 0;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key, NULL);
    size_t ksize = (size_t)EVP_PKEY_get_size(key);
    size_t block = ksize > (size_t)pi->overhead ? ksize - (size_t)pi->overhead : 0;
    if (!ctx || block == 0 || EVP_PKEY_encrypt_init(ctx) <= 0 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx, pi->padding) <= 0)
        rc = TBGW_EINVAL;
    if (rc == 0 && pi->oaep_sha256 &&
        (EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()) <= 0 ||
         EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) <= 0))
        rc = TBGW_EINVAL;
    for (size_t off = 0; rc == 0 && off < plain.len; off += block) {
        size_t k = plain.len - off < block ? plain.len - off : block;
        size_t outl = ksize;
        if (tbgw_buf_reserve(out, ksize)) {
            rc = TBGW_ENOMEM;
            break;
        }
        if (EVP_PKEY_encrypt(ctx, (unsigned char *)out->p + out->len, &outl,
                             (const unsigned char *)plain.p + off, k) <= 0) {
            rc = TBGW_EINVAL;
            break;
        }
        out->len += outl;
    }
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(key);
    tbgw_buf_free(&plain);
    if (rc == 0) *alg_uri = pi->alg;
    return rc;
}

int tbgw_ua_random(uint8_t *p, size_t n) {
    return RAND_bytes(p, (int)n) == 1 ? 0 : TBGW_EIO;
}

size_t tbgw_ua_cert_leaf_len(const uint8_t *der, size_t len) {
    if (!der || len == 0 || len > (size_t)LONG_MAX) return 0;
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    if (!x) return 0;
    X509_free(x);
    return (size_t)(p - der);
}
