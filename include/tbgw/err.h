/* Error codes and the user-facing error message carrier. */
#ifndef TBGW_ERR_H
#define TBGW_ERR_H

#include <stdarg.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    TBGW_OK = 0,
    TBGW_EINVAL = -1, /* invalid argument or configuration */
    TBGW_ENOMEM = -2, /* out of memory */
    TBGW_EAGAIN = -3, /* saturated, try again later (data was NOT kept) */
    TBGW_EIO = -4,    /* I/O failure */
    TBGW_ENOENT = -5, /* not found */
    TBGW_ETIMEDOUT = -6,
    TBGW_ESTOPPED = -7, /* the component is stopping */
    TBGW_EPROTO = -8,   /* protocol violation by the peer */
    TBGW_EFULL = -9,    /* bounded container is full */
};

/* A user-facing error: a message naming file/line/field or device and what was expected. */
typedef struct tbgw_err {
    int code;
    char msg[512];
} tbgw_err;

/* Sets err (if not NULL) and returns code. */
int tbgw_err_set(tbgw_err *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int tbgw_err_vset(tbgw_err *err, int code, const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));
const char *tbgw_strerror(int code);

#ifdef __cplusplus
}
#endif
#endif
