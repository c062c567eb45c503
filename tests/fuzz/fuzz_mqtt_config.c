/* Fuzzes the MQTT connector configuration parser (including old-format adaptation). */
#include <jansson.h>
#include <stdint.h>
#include <string.h>
#include "connectors/mqtt/mqtt_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* custom converters would dlopen paths taken from the input: keep them out */
    if (memmem(data, size, "custom", 6) || memmem(data, size, "CUSTOM", 6)) return 0;
    json_t *j = json_loadb((const char *)data, size, 0, NULL);
    if (!j) return 0;
    mq_config cfg;
    tbgw_err err = {0};
    if (mq_config_parse(&cfg, j, NULL, &err) == 0) mq_config_free(&cfg);
    json_decref(j);
    return 0;
}
