/* Secure conversation with OpenSSL (Part 6 §6.7): asymmetric OPN chunks (RSA sign + encrypt),
 * P_SHA key derivation, symmetric chunks (HMAC + AES-CBC). */
#include "proto/opcua/ua_secure.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { PAD_PKCS1, PAD_OAEP_SHA1, PAD_OAEP_SHA256 };
enum { SIG_PKCS1_SHA1, SIG_PKCS1_SHA256, SIG_PSS_SHA256 };

struct tbgw_ua_policy {
    const char *name, *uri;
    int sym_sha256;
    size_t sign_key_len, enc_key_len, nonce_len;
    int asym_pad, asym_sig;
    const char *sig_uri;
};

#define PFX "http://opcfoundation.org/UA/SecurityPolicy#"
static const tbgw_ua_policy policies[] = {
    {"Basic128Rsa15", PFX "Basic128Rsa15", 0, 16, 16, 16, PAD_PKCS1, SIG_PKCS1_SHA1,
     "http://www.w3.org/2000/09/xmldsig#rsa-sha1"},
    {"Basic256", PFX "Basic256", 0, 24, 32, 32, PAD_OAEP_SHA1, SIG_PKCS1_SHA1,
     "http://www.w3.org/2000/09/xmldsig#rsa-sha1"},
    {"Basic256Sha256", PFX "Basic256Sha256", 1, 32, 32, 32, PAD_OAEP_SHA1, SIG_PKCS1_SHA256,
     "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"},
    {"Aes128_Sha256_RsaOaep", PFX "Aes128_Sha256_RsaOaep", 1, 32, 16, 32, PAD_OAEP_SHA1, SIG_PKCS1_SHA256,
     "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"},
    {"Aes256_Sha256_RsaPss", PFX "Aes256_Sha256_RsaPss", 1, 32, 32, 32, PAD_OAEP_SHA256, SIG_PSS_SHA256,
     "http://opcfoundation.org/UA/security/rsa-pss-sha2-256"},
};

typedef struct keyset {
    uint32_t token;
    uint8_t sign[32], enc[32], iv[16];
} keyset;

struct tbgw_ua_sec {
    const tbgw_ua_policy *pol;
    int mode;
    EVP_PKEY *key;
    uint8_t *cert_der;
    int cert_len;
    char *app_uri;
    X509_STORE *ca;
    int has_crl;
    EVP_PKEY *srv_key;
    uint8_t *srv_der;
    size_t srv_len, srv_leaf_len;
    uint8_t srv_thumb[20];
    uint8_t nonce[32];
    keyset cli, srv[2]; /* srv[1]: the previous token, still accepted after a renewal */
    tbgw_buf plain;
};

const tbgw_ua_policy *tbgw_ua_policy_find(const char *s) {
    for (size_t i = 0; s && i < sizeof policies / sizeof policies[0]; i++)
        if (strcmp(s, policies[i].name) == 0 || strcmp(s, policies[i].uri) == 0) return &policies[i];
    return NULL;
}

const char *tbgw_ua_policy_uri(const tbgw_ua_policy *p) {
    return p->uri;
}

const char *tbgw_ua_policy_name(const tbgw_ua_policy *p) {
    return p->name;
}

int tbgw_ua_mode_parse(const char *s) {
    if (!s) return 0;
    if (strcmp(s, "None") == 0) return TBGW_UA_MODE_NONE;
    if (strcmp(s, "Sign") == 0) return TBGW_UA_MODE_SIGN;
    if (strcmp(s, "SignAndEncrypt") == 0) return TBGW_UA_MODE_SIGN_ENCRYPT;
    return 0;
}

const tbgw_ua_policy *tbgw_ua_sec_policy(const tbgw_ua_sec *s) {
    return s->pol;
}

int tbgw_ua_sec_mode(const tbgw_ua_sec *s) {
    return s->mode;
}

const uint8_t *tbgw_ua_sec_cert(const tbgw_ua_sec *s, size_t *len) {
    *len = (size_t)s->cert_len;
    return s->cert_der;
}

const char *tbgw_ua_sec_app_uri(const tbgw_ua_sec *s) {
    return s->app_uri;
}

const uint8_t *tbgw_ua_sec_server_cert(const tbgw_ua_sec *s, size_t *len) {
    *len = s->srv_leaf_len;
    return s->srv_der;
}

/* ------------------------------------------------------------------ loading */

static X509 *load_cert(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    if (!x) {
        rewind(f);
        x = d2i_X509_fp(f, NULL);
    }
    fclose(f);
    return x;
}

static EVP_PKEY *load_key(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    if (!k) {
        rewind(f);
        k = d2i_PrivateKey_fp(f, NULL);
    }
    fclose(f);
    return k;
}

static char *san_uri(X509 *x) {
    GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    char *uri = NULL;
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names) && !uri; i++) {
        GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
        if (g->type == GEN_URI)
            uri = strndup((const char *)ASN1_STRING_get0_data(g->d.uniformResourceIdentifier),
                          (size_t)ASN1_STRING_length(g->d.uniformResourceIdentifier));
    }
    GENERAL_NAMES_free(names);
    return uri;
}

/* Further certificates in a PEM file (the issuer chain) are sent after the leaf, as Part 6 allows. */
static int append_chain(tbgw_ua_sec *s, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    X509 *x;
    int first = 1, rc = 0;
    while (rc == 0 && (x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
        if (!first) {
            unsigned char *der = NULL;
            int n = i2d_X509(x, &der);
            unsigned char *all = n > 0 ? OPENSSL_realloc(s->cert_der, (size_t)(s->cert_len + n)) : NULL;
            if (!all)
                rc = TBGW_ENOMEM;
            else {
                memcpy(all + s->cert_len, der, (size_t)n);
                s->cert_der = all;
                s->cert_len += n;
            }
            OPENSSL_free(der);
        }
        first = 0;
        X509_free(x);
    }
    ERR_clear_error();
    fclose(f);
    return rc;
}

/* Adds every certificate and CRL of a PEM file (or the one certificate or CRL of a DER file) to
 * the store. */
static int load_trust(X509_STORE *st, const char *path, int *n_certs, int *n_crls) {
    FILE *f = fopen(path, "rb");
    if (!f) return TBGW_EINVAL;
    int rc = 0;
    STACK_OF(X509_INFO) *infos = PEM_X509_INFO_read(f, NULL, NULL, NULL);
    for (int i = 0; infos && i < sk_X509_INFO_num(infos) && rc == 0; i++) {
        X509_INFO *in = sk_X509_INFO_value(infos, i);
        if (in->x509) {
            if (!X509_STORE_add_cert(st, in->x509)) rc = TBGW_EINVAL;
            (*n_certs)++;
        }
        if (in->crl) {
            if (!X509_STORE_add_crl(st, in->crl)) rc = TBGW_EINVAL;
            (*n_crls)++;
        }
    }
    int found = infos && sk_X509_INFO_num(infos) > 0;
    sk_X509_INFO_pop_free(infos, X509_INFO_free);
    if (!found && rc == 0) { /* DER */
        rewind(f);
        X509 *x = d2i_X509_fp(f, NULL);
        if (x) {
            rc = X509_STORE_add_cert(st, x) ? 0 : TBGW_EINVAL;
            (*n_certs)++;
            X509_free(x);
        } else {
            rewind(f);
            X509_CRL *crl = d2i_X509_CRL_fp(f, NULL);
            if (crl) {
                rc = X509_STORE_add_crl(st, crl) ? 0 : TBGW_EINVAL;
                (*n_crls)++;
                X509_CRL_free(crl);
            }
        }
    }
    ERR_clear_error();
    fclose(f);
    return rc;
}

tbgw_ua_sec *tbgw_ua_sec_new(const tbgw_ua_policy *pol, int mode, const char *cert_path, const char *key_path,
                             const char *ca_path, const char *crl_path, tbgw_err *err) {
    tbgw_ua_sec *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->pol = pol;
    s->mode = mode;
    tbgw_buf_init(&s->plain);
    X509 *x = cert_path ? load_cert(cert_path) : NULL;
    if (!x) {
        tbgw_err_set(err, TBGW_EINVAL, "cannot read the client certificate %s",
                     cert_path ? cert_path : "(none)");
        goto fail;
    }
    s->cert_len = i2d_X509(x, &s->cert_der);
    s->app_uri = san_uri(x);
    X509_free(x);
    if (append_chain(s, cert_path)) {
        tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
        goto fail;
    }
    s->key = key_path ? load_key(key_path) : NULL;
    if (!s->key || s->cert_len <= 0 || EVP_PKEY_get_base_id(s->key) != EVP_PKEY_RSA) {
        tbgw_err_set(err, TBGW_EINVAL, "cannot read the RSA private key %s", key_path ? key_path : "(none)");
        goto fail;
    }
    if (ca_path) {
        s->ca = X509_STORE_new();
        int n_certs = 0, n_crls = 0;
        if (!s->ca || load_trust(s->ca, ca_path, &n_certs, &n_crls) || n_certs == 0) {
            tbgw_err_set(err, TBGW_EINVAL, "cannot read the CA certificate %s", ca_path);
            goto fail;
        }
        if (crl_path && (load_trust(s->ca, crl_path, &n_certs, &n_crls) || n_crls == 0)) {
            tbgw_err_set(err, TBGW_EINVAL, "cannot read a certificate revocation list from %s", crl_path);
            goto fail;
        }
        /* with CRLs at hand the server certificate is checked against its issuer's CRL */
        if (n_crls > 0) X509_STORE_set_flags(s->ca, X509_V_FLAG_CRL_CHECK);
        s->has_crl = n_crls > 0;
    } else if (crl_path) {
        tbgw_err_set(err, TBGW_EINVAL, "a certificate revocation list (%s) needs a CA certificate", crl_path);
        goto fail;
    }
    return s;
fail:
    tbgw_ua_sec_free(s);
    return NULL;
}

void tbgw_ua_sec_free(tbgw_ua_sec *s) {
    if (!s) return;
    EVP_PKEY_free(s->key);
    EVP_PKEY_free(s->srv_key);
    OPENSSL_free(s->cert_der);
    free(s->srv_der);
    free(s->app_uri);
    X509_STORE_free(s->ca);
    tbgw_buf_free(&s->plain);
    OPENSSL_cleanse(s, sizeof *s);
    free(s);
}

int tbgw_ua_sec_set_server_cert(tbgw_ua_sec *s, const uint8_t *der, size_t len, tbgw_err *err) {
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    if (!x) return tbgw_err_set(err, TBGW_EPROTO, "the server certificate cannot be parsed");
    if (s->ca) {
        X509_STORE_CTX *ctx = X509_STORE_CTX_new();
        int ok = ctx && X509_STORE_CTX_init(ctx, s->ca, x, NULL) && X509_verify_cert(ctx) == 1;
        int code = ctx ? X509_STORE_CTX_get_error(ctx) : 0;
        X509_STORE_CTX_free(ctx);
        if (!ok) {
            char subject[256], serial[80] = "?";
            X509_NAME_oneline(X509_get_subject_name(x), subject, sizeof subject);
            BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
            char *hex = bn ? BN_bn2hex(bn) : NULL;
            if (hex) snprintf(serial, sizeof serial, "%s", hex);
            OPENSSL_free(hex);
            BN_free(bn);
            X509_free(x);
            if (code == X509_V_ERR_CERT_REVOKED)
                return tbgw_err_set(err, TBGW_EPROTO,
                                    "the server certificate %s (serial %s) is revoked by its CA's "
                                    "certificate revocation list",
                                    subject, serial);
            return tbgw_err_set(
                err, TBGW_EPROTO, "the server certificate %s (serial %s) is not trusted by the CA: %s%s",
                subject, serial, X509_verify_cert_error_string(code),
                code == X509_V_ERR_UNABLE_TO_GET_CRL ? " (no CRL of its issuer was configured)" : "");
        }
    }
    EVP_PKEY_free(s->srv_key);
    s->srv_key = X509_get_pubkey(x);
    X509_free(x);
    free(s->srv_der);
    s->srv_der = malloc(len);
    if (!s->srv_key || !s->srv_der) return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    memcpy(s->srv_der, der, len);
    s->srv_len = len;
    unsigned int tl = 20;
    s->srv_leaf_len = (size_t)(p - der);
    EVP_Digest(der, s->srv_leaf_len, s->srv_thumb, &tl, EVP_sha1(), NULL); /* the leaf of a chain */
    return 0;
}

int tbgw_ua_sec_new_nonce(tbgw_ua_sec *s, const uint8_t **nonce, size_t *len) {
    if (RAND_bytes(s->nonce, (int)s->pol->nonce_len) != 1) return TBGW_EIO;
    *nonce = s->nonce;
    *len = s->pol->nonce_len;
    return 0;
}

/* ------------------------------------------------------------------ primitives */

static const EVP_MD *sym_md(const tbgw_ua_sec *s) {
    return s->pol->sym_sha256 ? EVP_sha256() : EVP_sha1();
}

static size_t sym_sig_len(const tbgw_ua_sec *s) {
    return s->pol->sym_sha256 ? 32 : 20;
}

/* P_SHA1 / P_SHA256 (RFC 5246 §5). */
static int p_hash(const EVP_MD *md, const uint8_t *secret, size_t sl, const uint8_t *seed, size_t seedl,
                  uint8_t *out, size_t outl) {
    uint8_t a[64], buf[64 + 64];
    unsigned int alen = 0, hl = 0;
    if (seedl > 64) return TBGW_EINVAL;
    if (!HMAC(md, secret, (int)sl, seed, seedl, a, &alen)) return TBGW_EIO;
    size_t off = 0;
    while (off < outl) {
        memcpy(buf, a, alen);
        memcpy(buf + alen, seed, seedl);
        uint8_t h[64];
        if (!HMAC(md, secret, (int)sl, buf, alen + seedl, h, &hl)) return TBGW_EIO;
        size_t k = outl - off < hl ? outl - off : hl;
        memcpy(out + off, h, k);
        off += k;
        if (!HMAC(md, secret, (int)sl, a, alen, a, &alen)) return TBGW_EIO;
    }
    return 0;
}

static int derive_keys(const tbgw_ua_sec *s, const uint8_t *secret, size_t sl, const uint8_t *seed,
                       size_t seedl, keyset *k) {
    uint8_t out[32 + 32 + 16];
    size_t n = s->pol->sign_key_len + s->pol->enc_key_len + 16;
    int rc = p_hash(sym_md(s), secret, sl, seed, seedl, out, n);
    if (rc) return rc;
    memcpy(k->sign, out, s->pol->sign_key_len);
    memcpy(k->enc, out + s->pol->sign_key_len, s->pol->enc_key_len);
    memcpy(k->iv, out + s->pol->sign_key_len + s->pol->enc_key_len, 16);
    OPENSSL_cleanse(out, sizeof out);
    return 0;
}

int tbgw_ua_sec_derive(tbgw_ua_sec *s, uint32_t token_id, const uint8_t *server_nonce, size_t len) {
    if (len != s->pol->nonce_len) return TBGW_EPROTO;
    s->srv[1] = s->srv[0];
    int rc = derive_keys(s, server_nonce, len, s->nonce, s->pol->nonce_len, &s->cli);
    if (rc == 0) rc = derive_keys(s, s->nonce, s->pol->nonce_len, server_nonce, len, &s->srv[0]);
    s->cli.token = s->srv[0].token = token_id;
    return rc;
}

static int set_padding(EVP_PKEY_CTX *ctx, int pad) {
    if (pad == PAD_PKCS1) return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) > 0;
    if (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) <= 0) return 0;
    if (pad == PAD_OAEP_SHA256)
        return EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()) > 0 &&
               EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) > 0;
    return 1;
}

static size_t pad_overhead(int pad) {
    return pad == PAD_PKCS1 ? 11 : pad == PAD_OAEP_SHA1 ? 42 : 66;
}

/* RSA in blocks: encrypt (pub) or decrypt (priv). */
static int rsa_blocks(EVP_PKEY *key, int pad, int encrypt, const uint8_t *in, size_t n, tbgw_buf *out) {
    size_t ks = (size_t)EVP_PKEY_get_size(key);
    size_t in_block = encrypt ? ks - pad_overhead(pad) : ks;
    if (!encrypt && n % ks) return TBGW_EPROTO;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key, NULL);
    int ok = ctx && (encrypt ? EVP_PKEY_encrypt_init(ctx) : EVP_PKEY_decrypt_init(ctx)) > 0 &&
             set_padding(ctx, pad);
    for (size_t off = 0; ok && off < n; off += in_block) {
        size_t k = n - off < in_block ? n - off : in_block;
        size_t ol = ks;
        if (tbgw_buf_reserve(out, ks)) {
            ok = 0;
            break;
        }
        uint8_t *dst = (uint8_t *)out->p + out->len;
        ok = (encrypt ? EVP_PKEY_encrypt(ctx, dst, &ol, in + off, k)
                      : EVP_PKEY_decrypt(ctx, dst, &ol, in + off, k)) > 0;
        if (ok) out->len += ol;
    }
    EVP_PKEY_CTX_free(ctx);
    return ok ? 0 : TBGW_EPROTO;
}

static int rsa_sig_setup(EVP_MD_CTX *mctx, EVP_PKEY *key, int alg, int sign) {
    EVP_PKEY_CTX *pctx = NULL;
    const EVP_MD *md = alg == SIG_PKCS1_SHA1 ? EVP_sha1() : EVP_sha256();
    int ok = sign ? EVP_DigestSignInit(mctx, &pctx, md, NULL, key) > 0
                  : EVP_DigestVerifyInit(mctx, &pctx, md, NULL, key) > 0;
    if (ok && alg == SIG_PSS_SHA256)
        ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) > 0;
    return ok;
}

static int rsa_sign2(EVP_PKEY *key, int alg, const uint8_t *a, size_t an, const uint8_t *b, size_t bn,
                     uint8_t *sig, size_t *sl) {
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    int ok = m && rsa_sig_setup(m, key, alg, 1) && EVP_DigestSignUpdate(m, a, an) > 0 &&
             (bn == 0 || EVP_DigestSignUpdate(m, b, bn) > 0) && EVP_DigestSignFinal(m, sig, sl) > 0;
    EVP_MD_CTX_free(m);
    return ok ? 0 : TBGW_EIO;
}

static int rsa_verify2(EVP_PKEY *key, int alg, const uint8_t *a, size_t an, const uint8_t *b, size_t bn,
                       const uint8_t *sig, size_t sl) {
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    int ok = m && rsa_sig_setup(m, key, alg, 0) && EVP_DigestVerifyUpdate(m, a, an) > 0 &&
             (bn == 0 || EVP_DigestVerifyUpdate(m, b, bn) > 0) && EVP_DigestVerifyFinal(m, sig, sl) == 1;
    EVP_MD_CTX_free(m);
    return ok ? 0 : TBGW_EPROTO;
}

static int hmac2(const tbgw_ua_sec *s, const uint8_t *key, const uint8_t *a, size_t an, const uint8_t *b,
                 size_t bn, uint8_t *out) {
    uint8_t *buf = malloc(an + bn + 1);
    if (!buf) return TBGW_ENOMEM;
    memcpy(buf, a, an);
    if (bn) memcpy(buf + an, b, bn);
    unsigned int ol = 0;
    int ok = HMAC(sym_md(s), key, (int)s->pol->sign_key_len, buf, an + bn, out, &ol) != NULL;
    free(buf);
    return ok ? 0 : TBGW_EIO;
}

static int aes_cbc(const tbgw_ua_sec *s, const keyset *k, int encrypt, const uint8_t *in, size_t n,
                   uint8_t *out) {
    const EVP_CIPHER *c = s->pol->enc_key_len == 16 ? EVP_aes_128_cbc() : EVP_aes_256_cbc();
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int l1 = 0, l2 = 0;
    int ok = ctx && EVP_CipherInit_ex(ctx, c, NULL, k->enc, k->iv, encrypt) &&
             EVP_CIPHER_CTX_set_padding(ctx, 0) && EVP_CipherUpdate(ctx, out, &l1, in, (int)n) &&
             EVP_CipherFinal_ex(ctx, out + l1, &l2);
    EVP_CIPHER_CTX_free(ctx);
    return ok && (size_t)(l1 + l2) == n ? 0 : TBGW_EPROTO;
}

static void wr32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16), p[3] = (uint8_t)(v >> 24);
}

/* Appends PaddingSize, the padding bytes and (for keys over 2048 bits) ExtraPaddingSize. */
static void put_padding(tbgw_buf *b, size_t pad, int extra) {
    uint8_t v = (uint8_t)(pad & 0xFF);
    tbgw_buf_append(b, &v, 1);
    for (size_t i = 0; i < pad; i++) tbgw_buf_append(b, &v, 1);
    if (extra) {
        uint8_t e = (uint8_t)(pad >> 8);
        tbgw_buf_append(b, &e, 1);
    }
}

/* ------------------------------------------------------------------ OPN */

int tbgw_ua_sec_encode_opn(tbgw_ua_sec *s, tbgw_buf *out, uint32_t channel_id, uint32_t seq,
                           uint32_t request_id, const uint8_t *body, size_t n) {
    if (!s->srv_key) return TBGW_EINVAL;
    size_t start = out->len;
    tbgw_buf_append(out, "OPNF\0\0\0\0", 8);
    tbgw_ua_enc_u32(out, channel_id);
    tbgw_ua_enc_cstr(out, s->pol->uri);
    tbgw_ua_enc_raw_bytes(out, s->cert_der, s->cert_len);
    tbgw_ua_enc_raw_bytes(out, s->srv_thumb, 20);
    size_t hdr_len = out->len - start;
    size_t srv_ks = (size_t)EVP_PKEY_get_size(s->srv_key), sig_len = (size_t)EVP_PKEY_get_size(s->key);
    size_t block = srv_ks - pad_overhead(s->pol->asym_pad);
    int extra = srv_ks > 256;
    size_t fixed = 8 + n + 1 + (size_t)extra + sig_len;
    size_t pad = (block - fixed % block) % block;
    tbgw_buf plain;
    tbgw_buf_init(&plain);
    tbgw_ua_enc_u32(&plain, seq);
    tbgw_ua_enc_u32(&plain, request_id);
    tbgw_buf_append(&plain, body, n);
    put_padding(&plain, pad, extra);
    size_t total_plain = plain.len + sig_len;
    size_t total = hdr_len + total_plain / block * srv_ks;
    int rc = plain.oom || out->oom ? TBGW_ENOMEM : 0;
    if (rc == 0) {
        wr32((uint8_t *)out->p + start + 4, (uint32_t)total);
        uint8_t sig[1024];
        size_t sl = sizeof sig;
        rc = sig_len <= sizeof sig ? rsa_sign2(s->key, s->pol->asym_sig, (const uint8_t *)out->p + start,
                                               hdr_len, (const uint8_t *)plain.p, plain.len, sig, &sl)
                                   : TBGW_EINVAL;
        if (rc == 0) rc = tbgw_buf_append(&plain, sig, sl);
    }
    if (rc == 0) rc = rsa_blocks(s->srv_key, s->pol->asym_pad, 1, (const uint8_t *)plain.p, plain.len, out);
    tbgw_buf_free(&plain);
    if (rc == 0 && out->len - start != total) rc = TBGW_EIO;
    return rc;
}

/* ------------------------------------------------------------------ MSG */

int tbgw_ua_sec_encode_msg(tbgw_ua_sec *s, tbgw_buf *out, const char *type, uint32_t channel_id,
                           uint32_t token_id, uint32_t *seq, uint32_t request_id, const uint8_t *body,
                           size_t n, uint32_t chunk_size, uint32_t max_chunks) {
    int enc = s->mode == TBGW_UA_MODE_SIGN_ENCRYPT;
    size_t sig_len = sym_sig_len(s);
    size_t max_plain = chunk_size - 16;
    if (enc) max_plain -= max_plain % 16;
    size_t room = max_plain - 8 - sig_len - (enc ? 1 + 15 : 0);
    size_t chunks = n == 0 ? 1 : (n + room - 1) / room;
    if (max_chunks && chunks > max_chunks) return TBGW_EINVAL;
    tbgw_buf plain;
    tbgw_buf_init(&plain);
    int rc = 0;
    size_t off = 0;
    for (size_t i = 0; i < chunks && rc == 0; i++) {
        size_t part = n - off < room ? n - off : room;
        uint8_t hdr[16];
        memcpy(hdr, type, 3);
        hdr[3] = i + 1 == chunks ? 'F' : 'C';
        wr32(hdr + 8, channel_id);
        wr32(hdr + 12, token_id);
        tbgw_buf_reset(&plain);
        tbgw_ua_enc_u32(&plain, (*seq)++);
        tbgw_ua_enc_u32(&plain, request_id);
        tbgw_buf_append(&plain, body + off, part);
        if (enc) put_padding(&plain, (16 - (plain.len + 1 + sig_len) % 16) % 16, 0);
        wr32(hdr + 4, (uint32_t)(16 + plain.len + sig_len));
        uint8_t sig[32];
        rc = plain.oom ? TBGW_ENOMEM
                       : hmac2(s, s->cli.sign, hdr, 16, (const uint8_t *)plain.p, plain.len, sig);
        if (rc == 0) rc = tbgw_buf_append(&plain, sig, sig_len);
        if (rc == 0) rc = tbgw_buf_append(out, hdr, 16);
        if (rc == 0 && enc) {
            rc = tbgw_buf_reserve(out, plain.len);
            if (rc == 0)
                rc =
                    aes_cbc(s, &s->cli, 1, (const uint8_t *)plain.p, plain.len, (uint8_t *)out->p + out->len);
            if (rc == 0) out->len += plain.len;
        } else if (rc == 0) {
            rc = tbgw_buf_append(out, plain.p, plain.len);
        }
        off += part;
    }
    tbgw_buf_free(&plain);
    return rc;
}

/* ------------------------------------------------------------------ receive */

/* Strips the padding in front of sig_start; returns the body end or 0 when malformed. */
static size_t unpad(const uint8_t *p, size_t sig_start, int extra) {
    if (sig_start < 8 + 1 + (size_t)extra) return 0;
    size_t pad = p[sig_start - 1];
    if (extra) pad = (pad << 8) | p[sig_start - 2];
    if (pad + 1 + (size_t)extra > sig_start - 8) return 0;
    size_t body_end = sig_start - pad - 1 - (size_t)extra;
    uint8_t v = (uint8_t)(pad & 0xFF);
    for (size_t i = body_end; i < body_end + 1 + pad; i++)
        if (p[i] != v) return 0;
    return body_end;
}

static int decode_opn(tbgw_ua_sec *s, const uint8_t *frame, size_t n, tbgw_ua_chunk *c) {
    if (!s->srv_key || (size_t)c->policy_uri_len != strlen(s->pol->uri) ||
        memcmp(c->policy_uri, s->pol->uri, strlen(s->pol->uri)) != 0)
        return TBGW_EPROTO;
    size_t off = c->secured_offset;
    tbgw_buf_reset(&s->plain);
    if (rsa_blocks(s->key, s->pol->asym_pad, 0, frame + off, n - off, &s->plain)) return TBGW_EPROTO;
    size_t sig_len = (size_t)EVP_PKEY_get_size(s->srv_key);
    const uint8_t *p = (const uint8_t *)s->plain.p;
    if (s->plain.len < sig_len + 9) return TBGW_EPROTO;
    size_t sig_start = s->plain.len - sig_len;
    if (rsa_verify2(s->srv_key, s->pol->asym_sig, frame, off, p, sig_start, p + sig_start, sig_len))
        return TBGW_EPROTO;
    size_t body_end = unpad(p, sig_start, EVP_PKEY_get_size(s->key) > 256);
    if (!body_end) return TBGW_EPROTO;
    c->seq_num = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    c->request_id = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
    c->body = p + 8;
    c->body_len = body_end - 8;
    return 0;
}

static int decode_sym(tbgw_ua_sec *s, const uint8_t *frame, size_t n, tbgw_ua_chunk *c) {
    const keyset *k = c->token_id == s->srv[0].token   ? &s->srv[0]
                      : c->token_id == s->srv[1].token ? &s->srv[1]
                                                       : NULL;
    if (!k || n < 16) return TBGW_EPROTO;
    int enc = s->mode == TBGW_UA_MODE_SIGN_ENCRYPT;
    size_t len = n - 16;
    tbgw_buf_reset(&s->plain);
    if (tbgw_buf_reserve(&s->plain, len)) return TBGW_ENOMEM;
    uint8_t *p = (uint8_t *)s->plain.p;
    if (enc) {
        if (len % 16 || aes_cbc(s, k, 0, frame + 16, len, p)) return TBGW_EPROTO;
    } else {
        memcpy(p, frame + 16, len);
    }
    s->plain.len = len;
    size_t sig_len = sym_sig_len(s);
    if (len < sig_len + 8) return TBGW_EPROTO;
    size_t sig_start = len - sig_len;
    uint8_t mac[32];
    if (hmac2(s, k->sign, frame, 16, p, sig_start, mac) || CRYPTO_memcmp(mac, p + sig_start, sig_len) != 0)
        return TBGW_EPROTO;
    size_t body_end = enc ? unpad(p, sig_start, 0) : sig_start;
    if (!body_end) return TBGW_EPROTO;
    c->seq_num = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    c->request_id = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
    c->body = p + 8;
    c->body_len = body_end - 8;
    return 0;
}

int tbgw_ua_sec_decode(tbgw_ua_sec *s, const uint8_t *frame, size_t n, tbgw_ua_chunk *c) {
    if (memcmp(c->type, "OPN", 3) == 0) return decode_opn(s, frame, n, c);
    return decode_sym(s, frame, n, c);
}

int tbgw_ua_sec_sign(tbgw_ua_sec *s, const uint8_t *data, size_t n, tbgw_buf *sig, const char **alg_uri) {
    size_t sl = (size_t)EVP_PKEY_get_size(s->key);
    if (tbgw_buf_reserve(sig, sl)) return TBGW_ENOMEM;
    int rc = rsa_sign2(s->key, s->pol->asym_sig, data, n, NULL, 0, (uint8_t *)sig->p + sig->len, &sl);
    if (rc == 0) sig->len += sl;
    *alg_uri = s->pol->sig_uri;
    return rc;
}

int tbgw_ua_sec_sign_as(tbgw_ua_sec *s, const tbgw_ua_policy *pol, const uint8_t *a, size_t an,
                        const uint8_t *b, size_t bn, tbgw_buf *sig, const char **alg_uri) {
    size_t sl = (size_t)EVP_PKEY_get_size(s->key);
    if (tbgw_buf_reserve(sig, sl)) return TBGW_ENOMEM;
    int rc = rsa_sign2(s->key, pol->asym_sig, a, an, b, bn, (uint8_t *)sig->p + sig->len, &sl);
    if (rc == 0) sig->len += sl;
    *alg_uri = pol->sig_uri;
    return rc;
}

int tbgw_ua_sec_verify_server(tbgw_ua_sec *s, const uint8_t *a, size_t an, const uint8_t *b, size_t bn,
                              const char *alg_uri, const uint8_t *sig, size_t sl, tbgw_err *err) {
    if (!s->srv_key) return tbgw_err_set(err, TBGW_EINVAL, "no server certificate");
    if (alg_uri && *alg_uri && strcmp(alg_uri, s->pol->sig_uri) != 0)
        return tbgw_err_set(err, TBGW_EPROTO, "the server signed with %s, expected %s for %s", alg_uri,
                            s->pol->sig_uri, s->pol->name);
    if (!sig || sl != (size_t)EVP_PKEY_get_size(s->srv_key))
        return tbgw_err_set(err, TBGW_EPROTO, "the server signature has %zu bytes, expected %d", sig ? sl : 0,
                            EVP_PKEY_get_size(s->srv_key));
    if (rsa_verify2(s->srv_key, s->pol->asym_sig, a, an, b, bn, sig, sl) != 0) {
        ERR_clear_error();
        return tbgw_err_set(err, TBGW_EPROTO,
                            "the server signature does not verify with the server certificate's key");
    }
    return 0;
}

size_t tbgw_ua_sec_cert_leaf_len(const tbgw_ua_sec *s) {
    const unsigned char *p = s->cert_der;
    X509 *x = d2i_X509(NULL, &p, s->cert_len);
    if (!x) return 0;
    X509_free(x);
    return (size_t)(p - s->cert_der);
}
