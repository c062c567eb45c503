/* Fuzzes the BACnet stack's decoding of received datagrams: BVLL, NPDU, APDU and every service
 * decoder the connector uses (I-Am, Who-Is, ReadProperty(-ACK), ReadPropertyMultiple-ACK, Error,
 * COV notification), the tag codec, and the conversion of a property value to a platform value.
 * Also feeds the datagram to a real endpoint (bound to an ephemeral loopback port): network-layer
 * messages (I-Am-Router-To-Network into its router cache, Router-Busy/Available, Reject-Message-
 * To-Network), SegmentACKs of segmented requests and segments of requests to it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/bacnet/bacnet.h"
#include "proto/bacnet/bn_client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void on_rpm(void *ud, const bn_rpm_result *r) {
    tbgw_buf *b = ud;
    if (!r->is_error) bnc_value_text(r->type, r->pr.prop, r->value, r->value_len, b);
}

static void on_cov(void *ud, const bn_propref *pr, const uint8_t *p, size_t n) {
    tbgw_buf *b = ud;
    bnc_value_text(0, pr->prop, p, n, b);
}

static void apdu_services(const uint8_t *p, size_t n, tbgw_buf *b) {
    bn_apdu a;
    if (bn_apdu_decode(p, n, &a) != 0) return;
    bn_iam iam;
    int64_t lo, hi;
    bn_rp_ack ra;
    uint16_t t;
    uint32_t inst, ec, cc;
    bn_propref pr;
    bn_cov cov;
    bn_i_am_decode(a.data, a.len, &iam);
    bn_who_is_decode(a.data, a.len, &lo, &hi);
    bn_rp_request_decode(a.data, a.len, &t, &inst, &pr);
    if (bn_rp_ack_decode(a.data, a.len, &ra) == 0) {
        tbgw_value v;
        bnc_value_convert(ra.type, ra.pr.prop, ra.value, ra.value_len, &v, b);
    }
    bn_rpm_ack_walk(a.data, a.len, on_rpm, b);
    bn_error_decode(a.data, a.len, &ec, &cc);
    if (bn_cov_decode(a.data, a.len, &cov) == 0) bn_cov_values_walk(cov.values, cov.values_len, on_cov, b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static bn_client *cl;
    if (!cl) {
        bn_client_opts o = {.bind_ip = 0x7F000001, .port = 0, .timeout_ms = 100};
        char why[100];
        cl = bn_client_open(&o, NULL, why, sizeof why);
    }
    tbgw_buf b;
    tbgw_buf_init(&b);
    bn_bvll bv;
    if (bn_bvll_decode(data, size, &bv) == 0 && bv.npdu) {
        bn_npdu np;
        if (bn_npdu_decode(bv.npdu, bv.npdu_len, &np) == 0) {
            uint16_t nets[8];
            if (np.netmsg)
                bn_npdu_i_am_router_decode(np.apdu, np.apdu_len, nets, 8);
            else
                apdu_services(np.apdu, np.apdu_len, &b);
        }
    }
    /* the raw bytes as an APDU and as a property value */
    apdu_services(data, size, &b);
    tbgw_value v;
    tbgw_buf_reset(&b);
    bnc_value_convert(2, 85, data, size, &v, &b);
    tbgw_buf_free(&b);
    if (cl) {
        bn_addr from = {.ip = 0x7F000001, .port = 9};
        /* a segmented request in flight to that address, for the SegmentACKs among the inputs */
        if (bn_client_pending(cl, &from) == 0) {
            static uint8_t req[400];
            bn_client_request(cl, &from, BN_SVC_WRITE_PROPERTY, req, sizeof req, 50, 1, NULL, NULL);
        }
        bn_client_input(cl, &from, data, size);
    }
    return 0;
}
