#include <stdio.h>
#include <tbgw/err.h>

int tbgw_err_vset(tbgw_err *err, int code, const char *fmt, va_list ap) {
    if (err) {
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    }
    return code;
}

int tbgw_err_set(tbgw_err *err, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    tbgw_err_vset(err, code, fmt, ap);
    va_end(ap);
    return code;
}

const char *tbgw_strerror(int code) {
    switch (code) {
    case TBGW_OK:
        return "ok";
    case TBGW_EINVAL:
        return "invalid argument";
    case TBGW_ENOMEM:
        return "out of memory";
    case TBGW_EAGAIN:
        return "saturated";
    case TBGW_EIO:
        return "I/O error";
    case TBGW_ENOENT:
        return "not found";
    case TBGW_ETIMEDOUT:
        return "timed out";
    case TBGW_ESTOPPED:
        return "stopped";
    case TBGW_EPROTO:
        return "protocol error";
    case TBGW_EFULL:
        return "full";
    default:
        return "unknown error";
    }
}
