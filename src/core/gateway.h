/* The gateway: wires configuration, storage, connectors and the platform session on one libuv
 * loop (the core thread). */
#ifndef TBGW_CORE_GATEWAY_H
#define TBGW_CORE_GATEWAY_H

#include <stdio.h>

#include "core/config.h"

typedef struct tbgw_gateway tbgw_gateway;

/* Takes ownership of cfg. Returns NULL with a logged reason (storage path, ...). */
tbgw_gateway *tbgw_gateway_new(tbgw_config *cfg, char **argv);
/* Runs until SIGTERM/SIGINT (or tbgw_gateway_stop). Returns the process exit code. */
int tbgw_gateway_run(tbgw_gateway *gw);
void tbgw_gateway_stop(tbgw_gateway *gw); /* thread-safe */
void tbgw_gateway_free(tbgw_gateway *gw);

/* Creates and destroys every connector of cfg to validate its configuration (no I/O).
 * Problems go to out as "file:line:col: message". Returns the number of errors. */
int tbgw_gateway_check_connectors(const tbgw_config *cfg, FILE *out, int *warnings);
#endif
