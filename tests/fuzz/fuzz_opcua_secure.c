/* Fuzz target: received secured chunks (asymmetric OPN and symmetric MSG, Sign and SignAndEncrypt)
 * through tbgw_ua_sec_decode, and an encode/decode round trip of the input as a message body. */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/opcua/ua_secure.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static tbgw_ua_sec *secs[2];

/* A self-signed RSA certificate serves as both our and the server's certificate. */
static int setup(void) {
    EVP_PKEY *key = EVP_RSA_gen(2048);
    X509 *x = X509_new();
    if (!key || !x) return -1;
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC, (const unsigned char *)"fuzz",
                               -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509_sign(x, key, EVP_sha256());
    char cert[64], pkey[64];
    snprintf(cert, sizeof cert, "/tmp/tbgw-fuzz-sec-%d.pem", (int)getpid());
    snprintf(pkey, sizeof pkey, "/tmp/tbgw-fuzz-sec-%d.key", (int)getpid());
    FILE *f = fopen(cert, "w");
    PEM_write_X509(f, x);
    fclose(f);
    f = fopen(pkey, "w");
    PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    unsigned char *der = NULL;
    int dl = i2d_X509(x, &der);
    for (int m = 0; m < 2; m++) {
        tbgw_err err = {0};
        secs[m] =
            tbgw_ua_sec_new(tbgw_ua_policy_find("Basic256Sha256"),
                            m ? TBGW_UA_MODE_SIGN_ENCRYPT : TBGW_UA_MODE_SIGN, cert, pkey, NULL, NULL, &err);
        if (!secs[m] || tbgw_ua_sec_set_server_cert(secs[m], der, (size_t)dl, &err)) return -1;
        /* the same nonce on both sides makes the client and server keys equal: a round trip decodes */
        const uint8_t *nonce;
        size_t nl;
        tbgw_ua_sec_new_nonce(secs[m], &nonce, &nl);
        uint8_t copy[64];
        memcpy(copy, nonce, nl);
        tbgw_ua_sec_derive(secs[m], 1, copy, nl);
    }
    OPENSSL_free(der);
    unlink(cert);
    unlink(pkey);
    X509_free(x);
    EVP_PKEY_free(key);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int ready = 0;
    if (!ready) {
        if (setup()) abort();
        ready = 1;
    }
    if (size < 1) return 0;
    tbgw_ua_sec *s = secs[data[0] & 1];
    /* 1. the input as a received frame */
    int64_t fs = tbgw_ua_frame_size(data + 1, size - 1, 1 << 20);
    if (fs > 0 && (size_t)fs == size - 1) {
        tbgw_ua_chunk c;
        if (tbgw_ua_chunk_parse(data + 1, size - 1, &c) == 0 && (c.type[0] == 'O' || c.type[0] == 'M'))
            tbgw_ua_sec_decode(s, data + 1, size - 1, &c);
    }
    /* 2. the input as a CreateSession server signature (must never verify) */
    tbgw_err err = {0};
    if (tbgw_ua_sec_verify_server(s, data, size / 2, data + size / 2, size - size / 2, NULL, data + 1,
                                  size - 1, &err) == 0)
        abort();
    /* 3. the input as a body: encode, then decode every chunk and compare */
    tbgw_buf out;
    tbgw_buf_init(&out);
    uint32_t seq = 1;
    if (tbgw_ua_sec_encode_msg(s, &out, "MSG", 7, 1, &seq, 9, data + 1, size - 1, 8192, 0) == 0) {
        size_t off = 0, got = 0;
        while (off < out.len) {
            int64_t n = tbgw_ua_frame_size((const uint8_t *)out.p + off, out.len - off, 8192);
            tbgw_ua_chunk c;
            if (n <= 0 || tbgw_ua_chunk_parse((const uint8_t *)out.p + off, (size_t)n, &c) ||
                tbgw_ua_sec_decode(s, (const uint8_t *)out.p + off, (size_t)n, &c) || c.request_id != 9 ||
                got + c.body_len > size - 1 || memcmp(c.body, data + 1 + got, c.body_len) != 0)
                abort();
            got += c.body_len;
            off += (size_t)n;
        }
        if (got != size - 1) abort();
    }
    tbgw_buf_free(&out);
    return 0;
}
