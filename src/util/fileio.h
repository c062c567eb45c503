/* Atomic file replacement with numbered backups. */
#ifndef TBGW_UTIL_FILEIO_H
#define TBGW_UTIL_FILEIO_H
#include <stddef.h>
/* Writes data to path through a temporary file, fsync and rename; the previous content is kept as
 * path.bak1 (older ones shift to .bak2 ... .bak<backups>). Returns 0 or a negative TBGW_E*. */
int tbgw_file_write_atomic(const char *path, const char *data, size_t len, int backups);
#endif
