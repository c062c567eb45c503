/* Custom command statistics (spec §1.9): commands from the statistics configuration file run every
 * customStatsSendPeriodInSeconds; each one's stdout becomes gateway telemetry under its key. */
#ifndef TBGW_CORE_CUSTOM_STATS_H
#define TBGW_CORE_CUSTOM_STATS_H
#include <jansson.h>
#include <tbgw/err.h>

/* Loads [{"command": [..] | "shell text", "timeout": s, "attributeOnGateway": "Key"}, ...].
 * Returns a new array of validated entries, or NULL with err naming the file and entry. */
json_t *tbgw_custom_stats_load(const char *path, tbgw_err *err);
/* Runs every command (blocking; call off the core loop) and returns {"Key": value, ...}: a number
 * when stdout parses as one, else the trimmed text. Failed or timed-out commands are left out. */
json_t *tbgw_custom_stats_run(const json_t *commands);
#endif
