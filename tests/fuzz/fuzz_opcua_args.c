/* Fuzz target: OPC-UA RPC inputs. The first byte picks: the get/set params splitter (text), the
 * Argument structures of an InputArguments value (a Variant, and one Argument body), or a JSON value
 * encoded as a declared argument (type and value rank from the next two bytes). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/opcua/opcua.h"
#include "proto/opcua/ua_argument.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void params_text(const uint8_t *data, size_t size) {
    char *s = strndup((const char *)data, size);
    if (!s) return;
    char *t, *v;
    if (opcua_set_split(s, &t, &v) == 0) {
        free(t);
        free(v);
    }
    free(opcua_get_target(s));
    free(s);
}

static void arguments(const uint8_t *data, size_t size) {
    tbgw_ua_dec d;
    tbgw_ua_dec_init(&d, data, size);
    tbgw_ua_variant v;
    if (tbgw_ua_dec_variant(&d, &v) == 0) {
        tbgw_ua_argument *a;
        size_t n;
        if (tbgw_ua_arguments_from_variant(&v, &a, &n) == 0) {
            for (size_t i = 0; i < n; i++) (void)tbgw_ua_builtin_of_datatype(&a[i].data_type);
            tbgw_ua_arguments_free(a, n);
        }
        tbgw_ua_variant_clear(&v);
    }
    tbgw_ua_extobj eo;
    memset(&eo, 0, sizeof eo);
    eo.type_id = tbgw_ua_nodeid_num(0, TBGW_UA_NS0_ARGUMENT_BINARY);
    eo.enc = TBGW_UA_EO_BINARY;
    eo.body.len = (int32_t)size;
    eo.body.data = (uint8_t *)(uintptr_t)data;
    tbgw_ua_argument a;
    if (tbgw_ua_argument_decode(&eo, &a) == 0) tbgw_ua_argument_clear(&a);
}

static void typed_value(const uint8_t *data, size_t size) {
    if (size < 2) return;
    tbgw_ua_argument a;
    memset(&a, 0, sizeof a);
    a.name = (char *)(uintptr_t) "x";
    a.data_type = tbgw_ua_nodeid_num(0, (uint32_t)(data[0] % 32));
    a.value_rank = (int32_t)(data[1] % 6) - 3;
    uint32_t dim = data[1] / 6 % 4;
    if (dim) {
        a.dims = &dim;
        a.n_dims = 1;
    }
    json_t *j = json_loadb((const char *)data + 2, size - 2, JSON_DECODE_ANY, NULL);
    if (!j) return;
    tbgw_ua_variant v;
    char err[256];
    if (opcua_arg_from_json(j, &a, tbgw_ua_builtin_of_datatype(&a.data_type), 0, &v, err, sizeof err) == 0) {
        tbgw_buf b;
        tbgw_buf_init(&b);
        tbgw_ua_enc_variant(&b, &v);
        tbgw_buf_free(&b);
        tbgw_ua_variant_clear(&v);
    }
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    switch (data[0] % 3) {
    case 0:
        params_text(data + 1, size - 1);
        break;
    case 1:
        arguments(data + 1, size - 1);
        break;
    default:
        typed_value(data + 1, size - 1);
    }
    return 0;
}
