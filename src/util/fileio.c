#include "util/fileio.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <tbgw/err.h>
#include <unistd.h>

int tbgw_file_write_atomic(const char *path, const char *data, size_t len, int backups) {
    char tmp[4200], a[4200], b[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return TBGW_EIO;
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);
        if (n <= 0) {
            close(fd);
            unlink(tmp);
            return TBGW_EIO;
        }
        off += (size_t)n;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        unlink(tmp);
        return TBGW_EIO;
    }
    if (backups > 0 && access(path, F_OK) == 0) {
        for (int i = backups; i > 1; i--) {
            snprintf(a, sizeof a, "%s.bak%d", path, i - 1);
            snprintf(b, sizeof b, "%s.bak%d", path, i);
            rename(a, b);
        }
        snprintf(a, sizeof a, "%s.bak1", path);
        unlink(a);
        if (link(path, a) != 0) { /* keep going: a missing backup must not block the update */
        }
    }
    if (rename(tmp, path) != 0) {
        unlink(tmp);
        return TBGW_EIO;
    }
    return 0;
}
