/* Fuzzes the OCPP connector's handling of a charge point's frame: OCPP-J parsing, the key
 * conversions, the central system's answer, DataTransfer's embedded JSON and the conversion by the
 * reference configuration's templates. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/ocpp/ocpp_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static ocpp_cp_cfg cp;
    static int ready;
    if (!ready) {
        json_error_t je;
        json_t *e = json_loads(
            "{\"idRegexpPattern\": \"bidon/hello/CP_1\", \"deviceNameExpression\": \"${Vendor} "
            "${Model}\", \"attributes\": [{\"messageTypeFilter\": \"MeterValues,\", \"key\": "
            "\"temp1\", \"value\": \"${meter_value[:].sampled_value[:].value}\"}], \"timeseries\": "
            "[{\"messageTypeFilter\": \"DataTransfer,\", \"key\": \"temp\", \"value\": "
            "\"${data.temp}\"}]}",
            0, &je);
        tbgw_err err;
        tbgw_cfg w;
        tbgw_cfg_init(&w, NULL, &err);
        if (!e || ocpp_cp_parse(&w, e, "cp", &cp, &err) != 0) abort();
        ready = 1; /* e stays referenced by cp */
    }
    ocpp_frame f;
    char why[200], uid[40];
    if (ocpp_frame_parse((const char *)data, size, &f, why, sizeof why, uid, sizeof uid) != 0) {
        free(ocpp_error_text(uid[0] ? uid : "-1", "ProtocolError", why));
        return 0;
    }
    if (f.type == OCPP_CALL) {
        json_t *snake = ocpp_snake_keys(f.payload);
        json_t *parsed = ocpp_parse_embedded(snake);
        json_t *camel = ocpp_camel_keys(parsed);
        int tx = 0;
        const char *code = NULL, *desc = NULL;
        json_t *ans = ocpp_answer(data[0] & 1 ? 16 : 201, f.action, f.payload, &tx, &code, &desc);
        free(ans ? ocpp_result_text(f.uid, ans) : ocpp_error_text(f.uid, code, desc));
        json_t *profile = ocpp_boot_profile(16, snake);
        tbgw_converted_free(ocpp_convert(&cp, "dev", "default", f.action, parsed));
        json_decref(profile);
        json_decref(ans);
        json_decref(camel);
        json_decref(parsed);
        json_decref(snake);
    }
    ocpp_frame_clear(&f);
    return 0;
}
