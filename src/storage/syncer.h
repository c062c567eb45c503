/* Background fsync: a thread that flushes file descriptors handed to it, so that the "interval"
 * durability policy never blocks the core loop on the disk. Internal to src/storage/. */
#ifndef TBGW_STORAGE_SYNCER_H
#define TBGW_STORAGE_SYNCER_H

#include <tbgw/log.h>

#define TBGW_SYNCER_MAX_FDS 32

typedef struct tbgw_syncer tbgw_syncer;

/* dir: the directory fsynced when a round asks for it. NULL when out of memory / no thread. */
tbgw_syncer *tbgw_syncer_new(const char *dir, tbgw_logger *lg);
/* Starts a round: fdatasync of each fd (then closed by the syncer; pass dup()s) and, if sync_dir,
 * an fsync of the directory. Takes the fds only when it returns 0; TBGW_EAGAIN while the previous
 * round still runs, TBGW_EINVAL for more than TBGW_SYNCER_MAX_FDS fds. */
int tbgw_syncer_submit(tbgw_syncer *y, const int *fds, int n, int sync_dir);
/* Rounds completed so far (for tests). */
unsigned long tbgw_syncer_rounds(tbgw_syncer *y);
/* Waits for the running round, stops the thread. NULL is a no-op. */
void tbgw_syncer_free(tbgw_syncer *y);

#endif
