/* Log output building blocks: Python-logging style formatting of one record and a rotating log
 * file with the semantics of TimedRotatingFileHandler (when/interval/backupCount) plus maxBytes. */
#ifndef TBGW_UTIL_LOG_FILE_H
#define TBGW_UTIL_LOG_FILE_H

#include <stdio.h>
#include <sys/time.h>
#include <tbgw/err.h>
#include <tbgw/log.h>
#include <time.h>

/* One log event, before formatting. */
typedef struct tbgw_log_record {
    const char *logger; /* logger name */
    int level;
    const char *file, *func; /* source location (file may be a path), may be NULL */
    int line;
    struct timeval tv;
    const char *msg; /* the formatted message */
} tbgw_log_record;

/* Formats r with a Python %-style format ("%(asctime)s.%(msecs)03d |%(levelname)s| %(message)s").
 * Known keys: asctime, msecs, levelname, levelno, name, message, filename, module, funcName,
 * lineno, pathname, process, thread, threadName, created, relativeCreated. Unknown keys are kept
 * as written. datefmt is a strftime format (NULL: "%Y-%m-%d %H:%M:%S,mmm" like Python).
 * Always NUL-terminates; returns the length written (truncated to n-1). */
size_t tbgw_log_format(const char *fmt, const char *datefmt, const tbgw_log_record *r, char *out, size_t n);
/* Checks a format string; returns 0 or TBGW_EINVAL naming the problem in err (path is the field). */
int tbgw_log_format_check(const char *fmt, const char *path, tbgw_err *err);

typedef enum tbgw_rot_when {
    TBGW_ROT_NONE = -1, /* size-only (RotatingFileHandler) or plain FileHandler */
    TBGW_ROT_S,
    TBGW_ROT_M,
    TBGW_ROT_H,
    TBGW_ROT_D,
    TBGW_ROT_MIDNIGHT,
    TBGW_ROT_W0 /* .. W6 = W0 + day (Monday = 0) */
} tbgw_rot_when;

typedef struct tbgw_rotfile {
    char *path;
    FILE *f;
    long long size;
    int when; /* tbgw_rot_when (+0..6 for weekdays) */
    long interval_s;
    int backup_count;
    long long max_bytes;
    int utc;
    time_t rollover_at;
    unsigned rollovers; /* done so far (for tests) */
} tbgw_rotfile;

/* Parses "S", "M", "H", "D", "midnight", "W0".."W6" (case-insensitive); -1 if unknown. */
int tbgw_rot_when_parse(const char *s);
/* Opens (appending) path, creating missing folders. interval in units of `when`. now = time(NULL)
 * except in tests. Returns 0 or a TBGW_E* with err naming the file. */
int tbgw_rotfile_open(tbgw_rotfile *rf, const char *path, int when, long interval, int backup_count,
                      long long max_bytes, time_t now, tbgw_err *err);
/* Writes one line (with its newline), rotating first when due. Never fails loudly: on an I/O error
 * the line is lost and the next write retries. */
void tbgw_rotfile_write(tbgw_rotfile *rf, const char *line, size_t len, time_t now);
void tbgw_rotfile_close(tbgw_rotfile *rf);
/* The file name used by the reference for a configured name: the base name converted to
 * snake_case with ".log" (service.log, tb_connection.log, "My Conn.log" -> my_conn.log).
 * TB_GW_LOGS_PATH, when set, replaces the folder. Caller frees. */
char *tbgw_log_file_name(const char *configured);

#endif
