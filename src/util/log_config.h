/* Logging configuration: levels per logger name and handlers (reference logs.json semantics). */
#ifndef TBGW_UTIL_LOG_CONFIG_H
#define TBGW_UTIL_LOG_CONFIG_H
#include <jansson.h>
#include <stdio.h>
#include <tbgw/err.h>
#include <tbgw/log.h>

#include "util/log_file.h"

/* Sets the level for a logger name and its descendants ("connector" covers "connector.X").
 * name NULL or "" sets the root level. Existing loggers are updated. */
void tbgw_log_set_level(const char *name, int level);
/* Output stream of the default console output (default stderr). */
void tbgw_log_set_stream(FILE *f);
/* Extra sink called for every line written, with the line in the default console format
 * (no newline). It must not log itself. */
typedef void (*tbgw_log_sink_fn)(void *ud, const tbgw_logger *lg, tbgw_level level, const char *line);
void tbgw_log_set_sink(tbgw_log_sink_fn fn, void *ud);
/* Sink receiving every record before formatting (outside any logging lock); used by remote
 * logging. It must not log itself. */
typedef void (*tbgw_log_record_sink_fn)(void *ud, const tbgw_logger *lg, const tbgw_log_record *r);
void tbgw_log_set_record_sink(tbgw_log_record_sink_fn fn, void *ud);
/* Total ERROR+ lines logged. */
unsigned long tbgw_log_error_total(void);
/* Calls cb for every logger created so far. */
void tbgw_log_foreach(void (*cb)(void *ud, tbgw_logger *lg), void *ud);

/* Applies a logs.json document (Python logging dictConfig subset): "formatters" (format, datefmt),
 * "handlers" (logging.StreamHandler with stream ext://sys.stdout|stderr; FileHandler,
 * RotatingFileHandler, TimedRotatingFileHandler with filename, when, interval, backupCount,
 * maxBytes; level; formatter), "loggers" (level, handlers, propagate) and "root". Relative file
 * names are relative to the working directory (TB_GW_LOGS_PATH replaces the folder). Validates
 * everything before changing anything: on error the previous configuration stays and err names
 * the field ("handlers.serviceHandler.when: ..."). */
int tbgw_log_configure(const json_t *logs, tbgw_err *err);
/* Validates a logs.json document like tbgw_log_configure, without opening files or changing anything. */
int tbgw_log_check(const json_t *logs, tbgw_err *err);
/* Back to the default console output (closes log files). */
void tbgw_log_reset(void);
#endif
