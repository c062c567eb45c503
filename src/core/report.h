/* Report strategies (spec §4): which datapoints are forwarded, and periodic re-sending.
 * Precedence key > device > connector > gateway. Core thread only. */
#ifndef TBGW_CORE_REPORT_H
#define TBGW_CORE_REPORT_H

#include <stdint.h>
#include <tbgw/data.h>

typedef struct tbgw_report tbgw_report;

tbgw_report *tbgw_report_new(const tbgw_report_strategy *gateway_rs, int disabled);
void tbgw_report_free(tbgw_report *r);
/* Removes from c the datapoints that must not be forwarded now and updates the cache.
 * Returns the number of datapoints left. */
size_t tbgw_report_filter(tbgw_report *r, const char *connector_id, const tbgw_report_strategy *connector_rs,
                          tbgw_converted *c, int64_t now_ms);
typedef void (*tbgw_report_emit_fn)(void *ud, const char *connector_id, tbgw_converted *c);
/* Emits the values whose period elapsed (telemetry re-stamped with now). */
void tbgw_report_tick(tbgw_report *r, int64_t now_ms, tbgw_report_emit_fn emit, void *ud);
/* Next time tick has work (INT64_MAX when none). */
int64_t tbgw_report_next_due(const tbgw_report *r);
/* Drops the cache of one connector (its configuration changed). */
void tbgw_report_clear_connector(tbgw_report *r, const char *connector_id);
size_t tbgw_report_size(const tbgw_report *r);
#endif
