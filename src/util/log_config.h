/* Logging configuration: levels per logger name (reference logs.json semantics). */
#ifndef TBGW_UTIL_LOG_CONFIG_H
#define TBGW_UTIL_LOG_CONFIG_H
#include <stdio.h>
#include <tbgw/log.h>

/* Sets the level for a logger name and its descendants ("connector" covers "connector.X").
 * name NULL or "" sets the root level. Existing loggers are updated. */
void tbgw_log_set_level(const char *name, int level);
/* Output stream (default stderr). */
void tbgw_log_set_stream(FILE *f);
/* Extra sink called for every line written (after formatting); used by remote logging. */
typedef void (*tbgw_log_sink_fn)(void *ud, const tbgw_logger *lg, tbgw_level level, const char *line);
void tbgw_log_set_sink(tbgw_log_sink_fn fn, void *ud);
/* Total ERROR+ lines logged. */
unsigned long tbgw_log_error_total(void);
#endif
