/* Device provisioning of the gateway itself (spec §1.10). Used when tb_gateway.json has no
 * thingsboard.security section but a thingsboard.provisioning one:
 *   {"type": "ACCESS_TOKEN" | "MQTT_BASIC" | "X509_CERTIFICATE", "provisionDeviceKey": "...",
 *    "provisionDeviceSecret": "...", "deviceName": "...", "access_token" | "client_id", "username",
 *    "password" | "caCert", "timeoutSeconds": 60 (tbgw)}
 * Credentials from an earlier run in <config dir>/.credentials win. Otherwise a separate MQTT
 * session (user "provision") publishes /provision/request and waits for /provision/response; a
 * SUCCESS answer is saved to .credentials (mode 0600) and used. */
#ifndef TBGW_PLATFORM_PROVISION_H
#define TBGW_PLATFORM_PROVISION_H

#include <jansson.h>
#include <tbgw/err.h>

#include "core/config.h"

/* Fills cfg->sec. Returns 0 (also when provisioning does not apply) or an error in err. */
int tbgw_provision(tbgw_config *cfg, tbgw_err *err);

/* Builds the request body for a provisioning section (random credentials where missing; X.509:
 * generates <dir>/cert.pem and <dir>/key.pem). Exposed for tests. */
json_t *tbgw_provision_request(const json_t *prov, const char *dir, tbgw_err *err);
/* Applies saved credentials (the platform's answer, plus "caCert" for X.509) to cfg->sec. */
int tbgw_provision_apply(tbgw_config *cfg, const json_t *creds, const char *source, tbgw_err *err);

#endif
