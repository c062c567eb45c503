/* Fuzzes the Socket connector configuration parser (old-format adaptation, devices, slices,
 * attribute request expressions, encodings, address patterns) and device matching. */
#include <jansson.h>
#include <stdint.h>
#include <string.h>

#include "connectors/socket/sock.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* custom converters would dlopen files named by the input: keep them out */
    if (memmem(data, size, "converter", 9)) return 0;
    static tbgw_host host;
    if (!host.log) {
        host.log = tbgw_logger_get("fuzz.socket");
        host.log->level = TBGW_NONE;
        host.conv_log = host.log;
        host.config_dir = "/nonexistent";
    }
    json_t *j = json_loadb((const char *)data, size, 0, NULL);
    if (!j) return 0;
    sock_cfg cfg;
    tbgw_err err = {0};
    if (sock_config_parse(&cfg, j, &host, &err) == 0) {
        for (size_t i = 0; i < cfg.n_devices; i++) {
            sock_device_matches(&cfg.devices[i], "127.0.0.1:5000", 14);
            for (size_t k = 0; k < cfg.devices[i].n_attr_reqs; k++) {
                char **names;
                size_t n;
                sock_attr_req_match(&cfg.devices[i].attr_reqs[k], data, size);
                if (sock_attr_req_names(&cfg.devices[i].attr_reqs[k], data, size, &names, &n) == 0) {
                    for (size_t x = 0; x < n; x++) free(names[x]);
                    free(names);
                }
            }
            tbgw_converted *c = NULL;
            if (sock_convert(&cfg.devices[i], data, size, 0, &c, &err) >= 0) tbgw_converted_free(c);
        }
        sock_config_free(&cfg);
    }
    json_decref(j);
    return 0;
}
