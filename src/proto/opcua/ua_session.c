/* Decoding of the session-establishment responses (Part 4 §5.4.2 GetEndpoints, §5.6.2 CreateSession):
 * the endpoint the client wants and its user token policies, and the CreateSession results the
 * client checks (server certificate, nonce, signature). Nothing here trusts the wire; a malformed
 * response leaves d->err set and nothing allocated in the outputs beyond what *_clear frees. */
#include "proto/opcua/ua_internal.h"

#include <stdlib.h>
#include <string.h>

#include "proto/opcua/ua_secure.h"

static char *bytes_str(const tbgw_ua_bytes *s) {
    return s->len >= 0 && s->data ? strdup((const char *)s->data) : NULL;
}

static void skip_bytes(tbgw_ua_dec *d, int n) {
    tbgw_ua_bytes s;
    for (int i = 0; i < n; i++)
        if (tbgw_ua_dec_bytes(d, &s) == 0) tbgw_ua_bytes_clear(&s);
}

static void skip_app_description(tbgw_ua_dec *d) {
    skip_bytes(d, 2); /* applicationUri, productUri */
    tbgw_ua_ltext lt;
    if (tbgw_ua_dec_ltext(d, &lt) == 0) tbgw_ua_ltext_clear(&lt);
    tbgw_ua_dec_u32(d); /* applicationType */
    skip_bytes(d, 2);   /* gatewayServerUri, discoveryProfileUri */
    tbgw_ua_dec_skip_strings(d);
}

/* How well an X509 token policy fits: 0 unusable, higher is better. A policy without a security
 * policy URI uses the channel's, which only works on a secured channel. */
static int x509_rank(const tbgw_ua_bytes *uri, int secured) {
    if (uri->len <= 0) return secured ? 4 : 0;
    const char *u = (const char *)uri->data;
    if (strcmp(u, TBGW_UA_POLICY_NONE) == 0) return secured ? 4 : 0;
    const tbgw_ua_policy *p = tbgw_ua_policy_find(u);
    if (!p) return 0;
    return strcmp(tbgw_ua_policy_name(p), "Basic256Sha256") == 0 ? 3 : 2;
}

static void replace(char **dst, char *src) {
    free(*dst);
    *dst = src;
}

/* One EndpointDescription; the first usable one (policy and mode as wanted) fills p. */
static void read_endpoint(tbgw_ua_dec *d, tbgw_ua_endpoint_pick *p) {
    tbgw_ua_bytes url, cert, policy;
    tbgw_ua_dec_bytes(d, &url);
    skip_app_description(d);
    tbgw_ua_dec_bytes(d, &cert);
    uint32_t mode = tbgw_ua_dec_u32(d);
    tbgw_ua_dec_bytes(d, &policy);
    int usable = !d->err && !p->found && p->want_policy && mode == p->want_mode && policy.len > 0 &&
                 strcmp((const char *)policy.data, p->want_policy) == 0;
    if (usable) {
        p->found = 1;
        if (cert.len > 0) tbgw_buf_append(&p->server_cert, cert.data, (size_t)cert.len);
    }
    int secured = p->want_mode != 1;
    int best_x509 = 0;
    int32_t n = tbgw_ua_dec_count(d, 4 + 4 + 4 + 4 + 4);
    for (int32_t i = 0; i < n && !d->err; i++) {
        tbgw_ua_bytes pid, issued, issuer, puri;
        tbgw_ua_dec_bytes(d, &pid);
        uint32_t type = tbgw_ua_dec_u32(d);
        tbgw_ua_dec_bytes(d, &issued);
        tbgw_ua_dec_bytes(d, &issuer);
        tbgw_ua_dec_bytes(d, &puri);
        if (usable && !d->err) {
            if (type == 0 && !p->anon_id) p->anon_id = bytes_str(&pid);
            if (type == 1 && !p->user_id) {
                p->user_id = bytes_str(&pid);
                p->user_uri = bytes_str(&puri);
            }
            int r = type == 2 ? x509_rank(&puri, secured) : 0;
            if (type == 2) p->x509_offered = 1;
            if (r > best_x509) {
                best_x509 = r;
                replace(&p->x509_id, bytes_str(&pid));
                replace(&p->x509_uri, bytes_str(&puri));
            }
        }
        tbgw_ua_bytes_clear(&pid);
        tbgw_ua_bytes_clear(&issued);
        tbgw_ua_bytes_clear(&issuer);
        tbgw_ua_bytes_clear(&puri);
    }
    skip_bytes(d, 1);  /* transportProfileUri */
    tbgw_ua_dec_u8(d); /* securityLevel */
    tbgw_ua_bytes_clear(&url);
    tbgw_ua_bytes_clear(&cert);
    tbgw_ua_bytes_clear(&policy);
}

int tbgw_ua_endpoints_decode(tbgw_ua_dec *d, tbgw_ua_endpoint_pick *p) {
    int32_t n = tbgw_ua_dec_count(d, 16);
    for (int32_t i = 0; i < n && !d->err; i++) read_endpoint(d, p);
    if (p->server_cert.oom && !d->err) d->err = TBGW_ENOMEM;
    return d->err;
}

void tbgw_ua_endpoint_pick_clear(tbgw_ua_endpoint_pick *p) {
    tbgw_buf_free(&p->server_cert);
    free(p->anon_id);
    free(p->user_id);
    free(p->user_uri);
    free(p->x509_id);
    free(p->x509_uri);
    p->anon_id = p->user_id = p->user_uri = p->x509_id = p->x509_uri = NULL;
    p->found = p->x509_offered = 0;
}

int tbgw_ua_create_session_decode(tbgw_ua_dec *d, tbgw_ua_session_resp *r) {
    memset(r, 0, sizeof *r);
    r->session_id = tbgw_ua_nodeid_num(0, 0);
    r->auth_token = tbgw_ua_nodeid_num(0, 0);
    r->nonce.len = r->cert.len = r->sig_alg.len = r->sig.len = -1;
    if (tbgw_ua_dec_nodeid(d, &r->session_id)) return d->err ? d->err : TBGW_EPROTO;
    if (tbgw_ua_dec_nodeid(d, &r->auth_token)) return d->err ? d->err : TBGW_EPROTO;
    r->timeout_ms = tbgw_ua_dec_double(d);
    tbgw_ua_dec_bytes(d, &r->nonce);
    tbgw_ua_dec_bytes(d, &r->cert);
    /* serverEndpoints: read through and not used (the client took them from GetEndpoints) */
    tbgw_ua_endpoint_pick none;
    memset(&none, 0, sizeof none);
    tbgw_buf_init(&none.server_cert);
    tbgw_ua_endpoints_decode(d, &none);
    tbgw_ua_endpoint_pick_clear(&none);
    int32_t n = tbgw_ua_dec_count(d, 8); /* serverSoftwareCertificates: certificateData, signature */
    for (int32_t i = 0; i < n && !d->err; i++) skip_bytes(d, 2);
    tbgw_ua_dec_bytes(d, &r->sig_alg);
    tbgw_ua_dec_bytes(d, &r->sig);
    r->max_request = tbgw_ua_dec_u32(d);
    return d->err;
}

void tbgw_ua_session_resp_clear(tbgw_ua_session_resp *r) {
    tbgw_ua_nodeid_clear(&r->session_id);
    tbgw_ua_nodeid_clear(&r->auth_token);
    tbgw_ua_bytes_clear(&r->nonce);
    tbgw_ua_bytes_clear(&r->cert);
    tbgw_ua_bytes_clear(&r->sig_alg);
    tbgw_ua_bytes_clear(&r->sig);
}
