/* Fuzzes the BACnet connector's configuration walk (new and old format, items, ranges, deviceId
 * forms, EDE from base64), the EDE CSV parser and the Python-literal values of the special writes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/bacnet/bacnet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void warning(const tbgw_host *h, const char *dotted, const char *msg) {
    (void)h;
    (void)dotted;
    (void)msg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    tbgw_err err = {0};
    json_t *ede = bnc_ede_devices(text, size && data[0] == ',' ? ',' : ';', &err);
    json_decref(ede);
    /* the Python literals of weeklySchedule / listOfObjectPropertyReferences writes */
    json_t *lit = json_string(text);
    if (lit) {
        uint8_t buf[BN_MAX_APDU];
        bn_w w;
        char why[128];
        bn_w_init(&w, buf, sizeof buf);
        bnc_encode_special(&w, 123, lit, 2, why, sizeof why);
        bn_w_init(&w, buf, sizeof buf);
        bnc_encode_special(&w, 54, lit, 0xFFFF, why, sizeof why);
        json_decref(lit);
    }
    json_t *j = json_loadb(text, size, 0, NULL);
    free(text);
    if (!j) return 0;
    tbgw_host h;
    memset(&h, 0, sizeof h);
    h.log = tbgw_logger_get("connector.fuzz");
    h.conv_log = h.log;
    h.config_warning = warning;
    h.config_dir = "/nonexistent";
    bnc_config c;
    if (bnc_config_parse(&h, j, &c, &err) == 0) {
        for (size_t i = 0; i < c.n_devs; i++) {
            bnc_address_match(c.devs[i].address, "192.168.1.5:47809");
            bnc_id_match(&c.devs[i].id, 1234);
        }
        bnc_config_free(&c);
    }
    json_decref(j);
    return 0;
}
