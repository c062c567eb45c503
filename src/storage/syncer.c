/* Background fsync thread (see syncer.h). */
#include "storage/syncer.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <tbgw/err.h>

#include "storage/common.h"

struct tbgw_syncer {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int fds[TBGW_SYNCER_MAX_FDS];
    int n, sync_dir, busy, stop;
    unsigned long rounds;
    char *dir;
    tbgw_logger *log;
};

static void *run(void *arg) {
    tbgw_syncer *y = arg;
    pthread_mutex_lock(&y->mu);
    for (;;) {
        while (!y->busy && !y->stop) pthread_cond_wait(&y->cv, &y->mu);
        if (!y->busy && y->stop) break;
        int fds[TBGW_SYNCER_MAX_FDS], n = y->n, dir = y->sync_dir;
        memcpy(fds, y->fds, sizeof fds);
        pthread_mutex_unlock(&y->mu);
        for (int i = 0; i < n; i++) {
            if (fdatasync(fds[i]) != 0)
                TBGW_ERRORF(y->log, "storage: background fsync in \"%s\" failed: %s", y->dir,
                            strerror(errno));
            close(fds[i]);
        }
        if (dir && tbgw_storage_fsync_dir(y->dir) != 0)
            TBGW_ERRORF(y->log, "storage: fsync of directory \"%s\" failed", y->dir);
        pthread_mutex_lock(&y->mu);
        y->busy = 0;
        y->rounds++;
        pthread_cond_broadcast(&y->cv);
    }
    pthread_mutex_unlock(&y->mu);
    return NULL;
}

tbgw_syncer *tbgw_syncer_new(const char *dir, tbgw_logger *lg) {
    tbgw_syncer *y = calloc(1, sizeof *y);
    if (!y) return NULL;
    y->dir = strdup(dir);
    y->log = lg;
    pthread_mutex_init(&y->mu, NULL);
    pthread_cond_init(&y->cv, NULL);
    if (!y->dir || pthread_create(&y->th, NULL, run, y) != 0) {
        pthread_cond_destroy(&y->cv);
        pthread_mutex_destroy(&y->mu);
        free(y->dir);
        free(y);
        return NULL;
    }
    return y;
}

int tbgw_syncer_submit(tbgw_syncer *y, const int *fds, int n, int sync_dir) {
    if (n < 0 || n > TBGW_SYNCER_MAX_FDS) return TBGW_EINVAL;
    pthread_mutex_lock(&y->mu);
    if (y->busy) {
        pthread_mutex_unlock(&y->mu);
        return TBGW_EAGAIN;
    }
    if (n) memcpy(y->fds, fds, (size_t)n * sizeof *fds);
    y->n = n;
    y->sync_dir = sync_dir;
    y->busy = 1;
    pthread_cond_broadcast(&y->cv);
    pthread_mutex_unlock(&y->mu);
    return 0;
}

unsigned long tbgw_syncer_rounds(tbgw_syncer *y) {
    pthread_mutex_lock(&y->mu);
    unsigned long r = y->rounds;
    pthread_mutex_unlock(&y->mu);
    return r;
}

void tbgw_syncer_free(tbgw_syncer *y) {
    if (!y) return;
    pthread_mutex_lock(&y->mu);
    y->stop = 1;
    pthread_cond_broadcast(&y->cv);
    pthread_mutex_unlock(&y->mu);
    pthread_join(y->th, NULL);
    pthread_cond_destroy(&y->cv);
    pthread_mutex_destroy(&y->mu);
    free(y->dir);
    free(y);
}
