/* Remote shell RPCs (spec §1.8, only with thingsboard.remoteShell: true): getTermInfo,
 * sendCommand {"command","cwd"?}, getCommandStatus, terminateCommand. One command at a time, run
 * by /bin/sh in its own process group; stdout and stderr are merged and returned in chunks of at
 * most TBGW_SHELL_CHUNK bytes per getCommandStatus. "cd" changes the shell's folder only (never the
 * gateway's working directory). Core thread only. */
#ifndef TBGW_CORE_SHELL_H
#define TBGW_CORE_SHELL_H

#include <jansson.h>
#include <tbgw/log.h>

#define TBGW_SHELL_CHUNK 4096

typedef struct tbgw_shell tbgw_shell;

int tbgw_shell_is_method(const char *method);
tbgw_shell *tbgw_shell_new(tbgw_logger *log);
/* Returns the reply content (owned by the caller). */
json_t *tbgw_shell_call(tbgw_shell *sh, const char *method, const json_t *params);
void tbgw_shell_free(tbgw_shell *sh);

#endif
