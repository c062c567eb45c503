/* Named, level-checked loggers (names follow the reference: service, tb_connection, storage,
 * connector.<name>, converter, extension). Thread-safe. */
#ifndef TBGW_LOG_H
#define TBGW_LOG_H

#include <stdarg.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tbgw_level {
    TBGW_TRACE = 5,
    TBGW_DEBUG = 10,
    TBGW_INFO = 20,
    TBGW_WARNING = 30,
    TBGW_ERROR = 40,
    TBGW_CRITICAL = 50,
    TBGW_NONE = 100,
} tbgw_level;

typedef struct tbgw_logger {
    char name[64];
    volatile int level; /* messages below this level are not formatted */
    uint64_t errors;    /* ERROR and above logged through this logger */
    struct tbgw_logger *next;
} tbgw_logger;

/* Returns the logger with that name, creating it (level from the logging configuration,
 * falling back to the parent name "a" of "a.b", then the root level). Never NULL. */
tbgw_logger *tbgw_logger_get(const char *name);

void tbgw_log_write(tbgw_logger *lg, tbgw_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void tbgw_log_vwrite(tbgw_logger *lg, tbgw_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
/* With the source location (file, line, function) for formats using %(filename)s, %(lineno)d, ... */
void tbgw_log_write_at(tbgw_logger *lg, tbgw_level level, const char *file, int line, const char *func,
                       const char *fmt, ...) __attribute__((format(printf, 6, 7)));
void tbgw_log_vwrite_at(tbgw_logger *lg, tbgw_level level, const char *file, int line, const char *func,
                        const char *fmt, va_list ap) __attribute__((format(printf, 6, 0)));

/* Parses "TRACE|DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL|NONE" or a number; returns -1 if unknown. */
int tbgw_level_parse(const char *s);
const char *tbgw_level_name(tbgw_level level);

#define TBGW_LOG(lg, lvl, ...)                                                                               \
    do {                                                                                                     \
        if ((int)(lvl) >= (lg)->level)                                                                       \
            tbgw_log_write_at((lg), (lvl), __FILE__, __LINE__, __func__, __VA_ARGS__);                       \
    } while (0)
#define TBGW_TRACEF(lg, ...) TBGW_LOG(lg, TBGW_TRACE, __VA_ARGS__)
#define TBGW_DEBUGF(lg, ...) TBGW_LOG(lg, TBGW_DEBUG, __VA_ARGS__)
#define TBGW_INFOF(lg, ...)  TBGW_LOG(lg, TBGW_INFO, __VA_ARGS__)
#define TBGW_WARNF(lg, ...)  TBGW_LOG(lg, TBGW_WARNING, __VA_ARGS__)
#define TBGW_ERRORF(lg, ...) TBGW_LOG(lg, TBGW_ERROR, __VA_ARGS__)

#ifdef __cplusplus
}
#endif
#endif
