/* Fuzz target: the OPC UA binary decoder (Variant, DataValue, DiagnosticInfo, ExpandedNodeId, ...)
 * and a re-encode of whatever decoded; the GetEndpoints and CreateSession response bodies the client
 * picks its endpoint, user token policies and session checks from. */
#include <stddef.h>
#include <stdint.h>

#include <stdlib.h>
#include <string.h>

#include "connectors/opcua/opcua.h"
#include "proto/opcua/ua_internal.h"
#include "proto/opcua/ua_types.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    tbgw_ua_dec d;
    tbgw_ua_dec_init(&d, data + 1, size - 1);
    tbgw_buf b;
    tbgw_buf_init(&b);
    switch (data[0] % 8) {
    case 0: {
        tbgw_ua_variant v;
        if (tbgw_ua_dec_variant(&d, &v) == 0) {
            tbgw_ua_enc_variant(&b, &v);
            tbgw_ua_variant_clear(&v);
        }
        break;
    }
    case 1: {
        tbgw_ua_datavalue dv;
        if (tbgw_ua_dec_datavalue(&d, &dv) == 0) {
            tbgw_ua_enc_datavalue(&b, &dv);
            /* the connector's value conversion of whatever a server sends */
            tbgw_value out;
            char *tmp = NULL;
            if (opcua_value_convert(&dv, "ns=1;s=X", &out, &tmp) == 0) free(tmp);
            json_decref(opcua_variant_to_json(&dv.value));
            tbgw_ua_datavalue_clear(&dv);
        }
        break;
    }
    case 2: {
        tbgw_ua_diag di;
        if (tbgw_ua_dec_diag(&d, &di) == 0) {
            tbgw_ua_enc_diag(&b, &di);
            tbgw_ua_diag_clear(&di);
        }
        break;
    }
    case 3: {
        tbgw_ua_expnodeid e;
        if (tbgw_ua_dec_expnodeid(&d, &e) == 0) {
            tbgw_ua_enc_expnodeid(&b, &e);
            tbgw_ua_nodeid_format(&e.id, &b);
            tbgw_ua_expnodeid_clear(&e);
        }
        break;
    }
    case 4: {
        tbgw_ua_extobj eo;
        if (tbgw_ua_dec_extobj(&d, &eo) == 0) {
            tbgw_ua_enc_extobj(&b, &eo);
            tbgw_ua_extobj_clear(&eo);
        }
        tbgw_ua_ltext lt;
        if (tbgw_ua_dec_ltext(&d, &lt) == 0) tbgw_ua_ltext_clear(&lt);
        break;
    }
    case 6: {
        static const char *const wants[] = {"http://opcfoundation.org/UA/SecurityPolicy#None",
                                            "http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256"};
        tbgw_ua_endpoint_pick p;
        memset(&p, 0, sizeof p);
        tbgw_buf_init(&p.server_cert);
        p.want_policy = wants[(data[0] >> 3) & 1];
        p.want_mode = 1 + ((data[0] >> 4) % 3);
        tbgw_ua_endpoints_decode(&d, &p);
        tbgw_ua_endpoint_pick_clear(&p);
        break;
    }
    case 7: {
        tbgw_ua_session_resp r;
        if (tbgw_ua_create_session_decode(&d, &r) == 0)
            tbgw_ua_cert_leaf_len(r.cert.data, r.cert.len > 0 ? (size_t)r.cert.len : 0);
        tbgw_ua_session_resp_clear(&r);
        break;
    }
    default: {
        /* node id text form */
        char text[128];
        size_t n = size - 1 < sizeof text - 1 ? size - 1 : sizeof text - 1;
        for (size_t i = 0; i < n; i++) text[i] = (char)(data[1 + i] ? data[1 + i] : ' ');
        text[n] = 0;
        tbgw_ua_nodeid id;
        if (tbgw_ua_nodeid_parse(text, &id) == 0) {
            tbgw_ua_nodeid_format(&id, &b);
            tbgw_ua_nodeid_clear(&id);
        }
        break;
    }
    }
    tbgw_buf_free(&b);
    return 0;
}
