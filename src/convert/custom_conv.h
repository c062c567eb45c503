/* Loading custom converters from shared objects (include/tbgw/converter.h). */
#ifndef TBGW_CONVERT_CUSTOM_CONV_H
#define TBGW_CONVERT_CUSTOM_CONV_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <tbgw/converter.h>

typedef struct tbgw_custom_conv tbgw_custom_conv;

/* Resolves `extension` to a shared object path (malloc'ed). An extension containing '/' or ending in
 * ".so" is a path (relative to config_dir); otherwise these are tried in order:
 *   <config_dir>/extensions/<conn_type>/<extension>.so
 *   <dir>/<conn_type>/<extension>.so and <dir>/<extension>.so for each dir of $TBGW_EXTENSIONS_PATH
 *   (colon-separated).
 * Returns NULL when no candidate exists; tried then lists the candidates for the error message. */
char *tbgw_custom_conv_resolve(const char *extension, const char *conn_type, const char *config_dir,
                               char *tried, size_t tried_len);

/* conv: the `converter` object (with "extension"). path names it for errors. When no file is found
 * by tbgw_custom_conv_resolve, every .so in <folder of the executable>/plugins and in the folders of
 * $TBGW_EXTENSIONS_PATH is asked for the converter name. TBGW_ENOENT when none provides it. */
int tbgw_custom_conv_new(const json_t *conv, const char *conn_type, const char *config_dir, const char *path,
                         tbgw_logger *log, tbgw_custom_conv **out, tbgw_err *err);
/* Loads an explicit .so path (tests, tools). */
int tbgw_custom_conv_load(const char *so_path, const char *name, const json_t *conv, tbgw_logger *log,
                          tbgw_custom_conv **out, tbgw_err *err);
void tbgw_custom_conv_free(tbgw_custom_conv *c);
/* Appends the plugin's records to *chain; returns the number of records appended or a negative TBGW_E*. */
int tbgw_custom_conv_convert(tbgw_custom_conv *c, const char *topic, const uint8_t *payload, size_t len,
                             tbgw_converted **chain, tbgw_err *err);

#endif
