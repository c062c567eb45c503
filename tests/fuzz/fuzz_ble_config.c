/* Fuzzes the BLE connector's configuration walk (the connector JSON file): create/destroy with
 * arbitrary JSON, then every parsed item converted over the input bytes. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/ble/ble_conn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

extern const tbgw_connector_ops tbgw_connector_ble;

static void warn(const tbgw_host *h, const char *dotted, const char *msg) {
    (void)h, (void)dotted, (void)msg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static tbgw_logger quiet = {.name = "fuzz", .level = 1000};
    static tbgw_host host = {.abi = TBGW_CONNECTOR_ABI, .name = "BLE", .type = "ble", .config_warning = warn};
    host.log = host.conv_log = &quiet;
    json_t *j = json_loadb((const char *)data, size, 0, NULL);
    if (!j) return 0;
    void *self = NULL;
    tbgw_err err = {0};
    if (tbgw_connector_ble.create(&host, j, &self, &err) == 0) {
        bc *c = self;
        tbgw_converted *rec = tbgw_converted_new("dev", "default");
        for (size_t i = 0; rec && i < c->n_devs; i++)
            for (size_t k = 0; k < c->devs[i].n_items; k++)
                tbgw_ble_add(&c->conv, rec, &c->devs[i].items[k], data, size > 64 ? 64 : size, &err);
        tbgw_converted_free(rec);
        tbgw_connector_ble.destroy(self);
    }
    json_decref(j);
    return 0;
}
