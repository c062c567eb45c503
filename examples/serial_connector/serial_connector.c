/* A custom connector built as a plugin: the equivalent of the reference gateway's custom serial
 * connector (extensions/serial, config custom_serial.json). It is the complete example of
 * docs/PLUGINS.md and uses nothing but include/tbgw/.
 *
 * tb_gateway.json: {"type": "serial", "class": "SerialConnector", "configuration": "custom_serial.json"}
 * and the built SerialConnector.so in <config dir>/extensions/serial/ (or "plugin": "<path>.so").
 *
 * Each device is a serial port read in one poll loop on the connector thread. The byte stream is cut
 * after every `delimiter` (default "\n"); a partial chunk is taken as it is when no byte arrived for
 * `timeout` seconds. Each chunk is converted by the device's telemetry/attributes entries (type,
 * fromDelimiter/untilDelimiter, fromByte/toByte). Attribute updates write `stringToDevice` with
 * ${<attribute>}, ${deviceName} and ${deviceType} replaced; RPCs write the params encoded by the
 * entry's `type` and, withResponse, answer with the device's next chunk converted by responseType. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <tbgw/connector.h>

#define RX_MAX        4096
#define MAX_DEVICES   64
#define REOPEN_MS     3000
#define LOOP_SLICE_MS 50

typedef struct pending_rpc {
    int active;
    uint64_t handle;
    const json_t *entry; /* serverSideRpc entry (config-owned) */
    int64_t deadline_ms;
} pending_rpc;

typedef struct sdev {
    char name[256], type[128], port[512];
    json_t *cfg; /* the device's configuration object (a reference) */
    speed_t speed;
    int bytesize, stopbits2, parity, rtscts, xonxoff, exclusive;
    int64_t timeout_ms;
    char delim[16];
    size_t delim_len;
    int big_endian, has_downlink;
    int fd;
    int64_t reopen_at_ms, last_rx_ms;
    unsigned char rx[RX_MAX];
    size_t rx_len;
    pending_rpc rpc;
    int open_error_logged;
} sdev;

typedef struct sconn {
    const tbgw_host *h;
    sdev dev[MAX_DEVICES];
    size_t n_dev;
    volatile int stop;
} sconn;

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- configuration ---- */

static const char *str_or(const json_t *o, const char *k1, const char *k2, const char *def) {
    const char *s = json_string_value(json_object_get(o, k1));
    if (!s && k2) s = json_string_value(json_object_get(o, k2));
    return s ? s : def;
}

static speed_t baud_constant(long baud) {
    static const struct {
        long baud;
        speed_t c;
    } t[] = {{1200, B1200},     {2400, B2400},     {4800, B4800},      {9600, B9600},     {19200, B19200},
             {38400, B38400},   {57600, B57600},   {115200, B115200},  {230400, B230400}, {460800, B460800},
             {500000, B500000}, {921600, B921600}, {1000000, B1000000}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (t[i].baud == baud) return t[i].c;
    return 0;
}

static int device_parse(sdev *d, const json_t *jd, size_t idx, tbgw_err *err) {
    snprintf(d->name, sizeof d->name, "%s", str_or(jd, "deviceName", "name", "SerialDevice"));
    snprintf(d->type, sizeof d->type, "%s", str_or(jd, "deviceType", "type", "default"));
    snprintf(d->port, sizeof d->port, "%s", str_or(jd, "port", NULL, "/dev/ttyUSB0"));
    json_t *v = json_object_get(jd, "baudrate");
    long baud = v ? (long)json_integer_value(v) : 9600;
    d->speed = baud_constant(baud);
    if (!d->speed || (v && !json_is_integer(v)))
        return tbgw_err_set(err, TBGW_EINVAL, "devices[%zu].baudrate: unsupported baud rate", idx);
    v = json_object_get(jd, "bytesize");
    d->bytesize = v ? (int)json_integer_value(v) : 8;
    if (d->bytesize < 5 || d->bytesize > 8)
        return tbgw_err_set(err, TBGW_EINVAL, "devices[%zu].bytesize: expected 5 to 8", idx);
    v = json_object_get(jd, "stopbits");
    double sb = v ? json_number_value(v) : 1;
    if (sb != 1 && sb != 1.5 && sb != 2)
        return tbgw_err_set(err, TBGW_EINVAL, "devices[%zu].stopbits: expected 1, 1.5 or 2", idx);
    d->stopbits2 = sb > 1;
    const char *par = str_or(jd, "parity", NULL, "N");
    if (strlen(par) != 1 || !strchr("NEOMS", par[0]))
        return tbgw_err_set(err, TBGW_EINVAL, "devices[%zu].parity: expected N, E, O, M or S", idx);
    d->parity = par[0];
    d->rtscts = json_is_true(json_object_get(jd, "rtscts"));
    d->xonxoff = json_is_true(json_object_get(jd, "xonxoff"));
    d->exclusive = json_is_true(json_object_get(jd, "exclusive"));
    v = json_object_get(jd, "timeout");
    d->timeout_ms = v && json_is_number(v) ? (int64_t)(json_number_value(v) * 1000) : 1000;
    if (d->timeout_ms <= 0) d->timeout_ms = 1000;
    const char *del = str_or(jd, "delimiter", NULL, "\n");
    if (!*del || strlen(del) >= sizeof d->delim)
        return tbgw_err_set(err, TBGW_EINVAL, "devices[%zu].delimiter: expected 1 to %zu characters", idx,
                            sizeof d->delim - 1);
    snprintf(d->delim, sizeof d->delim, "%s", del);
    d->delim_len = strlen(d->delim);
    d->big_endian = strcmp(str_or(jd, "byteorder", NULL, "big"), "little") != 0;
    const char *up = str_or(jd, "converter", "uplink_converter", NULL);
    if (!up)
        return tbgw_err_set(err, TBGW_EINVAL,
                            "devices[%zu]: \"converter\" (SerialUplinkConverter) is required", idx);
    if (strcmp(up, "SerialUplinkConverter") != 0)
        return tbgw_err_set(err, TBGW_EINVAL,
                            "devices[%zu].converter: \"%s\" is not available (this connector has "
                            "SerialUplinkConverter)",
                            idx, up);
    const char *down = str_or(jd, "downlink_converter", NULL, NULL);
    if (down && strcmp(down, "SerialDownlinkConverter") != 0)
        return tbgw_err_set(err, TBGW_EINVAL,
                            "devices[%zu].downlink_converter: \"%s\" is not available (this "
                            "connector has SerialDownlinkConverter)",
                            idx, down);
    d->has_downlink = down != NULL;
    d->cfg = json_incref((json_t *)jd);
    d->fd = -1;
    return 0;
}

static int sc_create(const tbgw_host *h, const json_t *cfg, void **self, tbgw_err *err) {
    const json_t *devs = json_object_get(cfg, "devices");
    if (!json_is_array(devs) || json_array_size(devs) == 0)
        return tbgw_err_set(err, TBGW_EINVAL, "devices: expected a non-empty list of serial devices");
    if (json_array_size(devs) > MAX_DEVICES)
        return tbgw_err_set(err, TBGW_EINVAL, "devices: at most %d devices per connector", MAX_DEVICES);
    sconn *s = calloc(1, sizeof *s);
    if (!s) return tbgw_err_set(err, TBGW_ENOMEM, "out of memory");
    s->h = h;
    size_t i;
    const json_t *jd;
    json_array_foreach(devs, i, jd) {
        tbgw_err derr = {0};
        if (!json_is_object(jd)) {
            tbgw_err_set(&derr, TBGW_EINVAL, "devices[%zu]: expected an object", i);
        } else if (device_parse(&s->dev[s->n_dev], jd, i, &derr) == 0) {
            s->n_dev++;
            continue;
        }
        /* One bad device is reported and skipped; the others run. */
        TBGW_ERRORF(h->log, "%s; device skipped", derr.msg);
        memset(&s->dev[s->n_dev], 0, sizeof s->dev[s->n_dev]);
    }
    if (s->n_dev == 0) {
        free(s);
        return tbgw_err_set(err, TBGW_EINVAL, "devices: no usable device (see the errors above)");
    }
    *self = s;
    return 0;
}

static void sc_destroy(void *self) {
    sconn *s = self;
    for (size_t i = 0; i < s->n_dev; i++) {
        if (s->dev[i].fd >= 0) close(s->dev[i].fd);
        json_decref(s->dev[i].cfg);
    }
    free(s);
}

static void sc_stop(void *self) {
    ((sconn *)self)->stop = 1;
}

/* ---- the serial line ---- */

static int port_open(sdev *d) {
    int fd = open(d->port, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct termios t;
    if (tcgetattr(fd, &t) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    cfmakeraw(&t);
    cfsetispeed(&t, d->speed);
    cfsetospeed(&t, d->speed);
    t.c_cflag &= ~(tcflag_t)(CSIZE | PARENB | PARODD | CMSPAR | CSTOPB | CRTSCTS);
    static const tcflag_t sizes[] = {CS5, CS6, CS7, CS8};
    t.c_cflag |= sizes[d->bytesize - 5] | CLOCAL | CREAD;
    if (d->parity != 'N') t.c_cflag |= PARENB;
    if (d->parity == 'O' || d->parity == 'M') t.c_cflag |= PARODD;
    if (d->parity == 'M' || d->parity == 'S') t.c_cflag |= CMSPAR;
    if (d->stopbits2) t.c_cflag |= CSTOPB;
    if (d->rtscts) t.c_cflag |= CRTSCTS;
    t.c_iflag &= ~(tcflag_t)(IXON | IXOFF | IXANY);
    if (d->xonxoff) t.c_iflag |= IXON | IXOFF;
    t.c_cc[VMIN] = 0;
    t.c_cc[VTIME] = 0;
    if (tcsetattr(fd, TCSANOW, &t) != 0 || (d->exclusive && ioctl(fd, TIOCEXCL) != 0)) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

static void port_close(sconn *s, sdev *d, const char *why) {
    if (d->fd >= 0) {
        close(d->fd);
        TBGW_WARNF(s->h->log, "device %s: port %s closed (%s); reopening in %d s", d->name, d->port, why,
                   REOPEN_MS / 1000);
    }
    d->fd = -1;
    d->rx_len = 0;
    d->reopen_at_ms = mono_ms() + REOPEN_MS;
}

/* Writes all of buf, waiting up to 1 s for the line to drain. 0 or -1. */
static int port_write(sdev *d, const void *buf, size_t n) {
    const unsigned char *p = buf;
    int64_t deadline = mono_ms() + 1000;
    while (n > 0) {
        if (d->fd < 0) return -1;
        ssize_t w = write(d->fd, p, n);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EINTR) return -1;
        int64_t left = deadline - mono_ms();
        if (left <= 0) return -1;
        struct pollfd pf = {.fd = d->fd, .events = POLLOUT};
        poll(&pf, 1, (int)left);
    }
    return 0;
}

/* ---- uplink conversion (SerialUplinkConverter) ---- */

static ssize_t find_bytes(const unsigned char *p, size_t n, const char *needle) {
    size_t m = strlen(needle);
    if (m == 0) return 0;
    for (size_t i = 0; i + m <= n; i++)
        if (memcmp(p + i, needle, m) == 0) return (ssize_t)i;
    return -1;
}

/* Python slice bounds [a:b] over n bytes. */
static void py_slice(long a, long b, size_t n, size_t *from, size_t *to) {
    long ln = (long)n;
    if (a < 0) a = a + ln < 0 ? 0 : a + ln;
    if (b < 0) b = b + ln < 0 ? 0 : b + ln;
    if (a > ln) a = ln;
    if (b > ln) b = ln;
    *from = (size_t)a;
    *to = b < a ? (size_t)a : (size_t)b;
}

/* The part of the chunk an entry takes: delimiters first, else byte positions. */
static void entry_slice(const json_t *e, const unsigned char *data, size_t n, size_t *from, size_t *to) {
    *from = 0;
    *to = n;
    const char *fd = json_string_value(json_object_get(e, "fromDelimiter"));
    const char *ud = json_string_value(json_object_get(e, "untilDelimiter"));
    if ((fd && *fd) || (ud && *ud)) {
        ssize_t fp = fd && *fd ? find_bytes(data, n, fd) : 0;
        ssize_t up = ud && *ud ? find_bytes(data, n, ud) : -1;
        if (fp != -1 && up != -1 && fp < up) {
            *from = (size_t)fp;
            *to = (size_t)up;
        } else if (fp != -1 && (size_t)fp < n) {
            *from = (size_t)fp;
        } else if (up != -1 && (size_t)up < n) {
            *to = (size_t)up;
        }
        return;
    }
    const json_t *fb = json_object_get(e, "fromByte"), *tb = json_object_get(e, "toByte");
    long a = json_is_integer(fb) ? (long)json_integer_value(fb) : 0;
    long b = json_is_integer(tb) ? (long)json_integer_value(tb) : (long)n;
    if (json_is_integer(tb) && json_integer_value(tb) == 0) b = (long)n; /* 0 means "not given" */
    py_slice(a, b, n, from, to);
}

static int is_space(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* The text of [p, p+n) with surrounding white space removed, NUL-terminated into out. */
static char *stripped(const unsigned char *p, size_t n, char *out, size_t out_len) {
    while (n && is_space(*p)) p++, n--;
    while (n && is_space(p[n - 1])) n--;
    if (n >= out_len) n = out_len - 1;
    memcpy(out, p, n);
    out[n] = 0;
    return out;
}

static int valid_utf8(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!len || i + len > n) return 0;
        for (size_t k = 1; k < len; k++)
            if ((p[i + k] & 0xC0) != 0x80) return 0;
        i += len;
    }
    return 1;
}

/* Python int() of text: optional sign, digits, single underscores between digits. */
static int parse_int(const char *s, int64_t *out) {
    const char *p = s;
    int neg = 0;
    if (*p == '+' || *p == '-') neg = *p++ == '-';
    if (!(*p >= '0' && *p <= '9')) return -1;
    uint64_t v = 0;
    for (; *p; p++) {
        if (*p == '_' && p[1] >= '0' && p[1] <= '9' && p[-1] >= '0' && p[-1] <= '9') continue;
        if (*p < '0' || *p > '9') return -1;
        if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10) return -1;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (neg ? v > (uint64_t)INT64_MAX + 1 : v > (uint64_t)INT64_MAX) return -1;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

/* Converts one chunk by one entry. 0 with *out set (strings point into buf or *js), -1 when the
 * entry yields nothing for this chunk (why says what). */
static int convert_value(const json_t *e, const unsigned char *data, size_t n, tbgw_value *out, char *buf,
                         size_t buf_len, json_t **js, char **tmp, const char **why) {
    size_t a, b;
    entry_slice(e, data, n, &a, &b);
    const unsigned char *p = data + a;
    size_t len = b - a;
    const char *type = json_string_value(json_object_get(e, "type"));
    if (!type) type = "";
    *why = NULL;
    if (strcmp(type, "string") == 0 || strcmp(type, "json") == 0) {
        if (!valid_utf8(p, len)) {
            *why = "not UTF-8";
            return -1;
        }
        stripped(p, len, buf, buf_len);
        if (strcmp(type, "string") == 0) {
            if (!*buf) {
                *why = "empty";
                return -1;
            }
            *out = tbgw_value_string(buf);
            return 0;
        }
        json_error_t je;
        *js = json_loads(buf, JSON_DECODE_ANY, &je);
        if (!*js || tbgw_value_from_json(*js, out, tmp) != 0) {
            *why = "not JSON";
            return -1;
        }
        return 0;
    }
    if (strcmp(type, "int") == 0 || strcmp(type, "float") == 0 || strcmp(type, "double") == 0 ||
        strcmp(type, "bool") == 0) {
        stripped(p, len, buf, buf_len);
        int64_t iv;
        if (strcmp(type, "int") == 0 || strcmp(type, "bool") == 0) {
            if (parse_int(buf, &iv) == 0) {
                *out = strcmp(type, "int") == 0 ? tbgw_value_int(iv) : tbgw_value_bool(iv != 0);
                return 0;
            }
            if (strcmp(type, "bool") == 0) {
                *out = tbgw_value_bool(strcasecmp(buf, "true") == 0);
                return 0;
            }
            *why = "not an integer";
            return -1;
        }
        char *end;
        errno = 0;
        double dv = strtod(buf, &end);
        if (!*buf || *end || !isfinite(dv)) {
            *why = "not a finite number";
            return -1;
        }
        *out = tbgw_value_double(dv);
        return 0;
    }
    /* any other type: the bytes as lower-case hex */
    if (len * 2 + 1 > buf_len) len = (buf_len - 1) / 2;
    for (size_t i = 0; i < len; i++) snprintf(buf + 2 * i, 3, "%02x", p[i]);
    buf[2 * len] = 0;
    if (!len) {
        *why = "empty";
        return -1;
    }
    *out = tbgw_value_string(buf);
    return 0;
}

static void convert_list(sconn *s, sdev *d, tbgw_converted *c, const json_t *list, int telemetry,
                         const unsigned char *data, size_t n, int64_t ts) {
    size_t i;
    const json_t *e;
    json_array_foreach(list, i, e) {
        const char *key = json_string_value(json_object_get(e, "key"));
        if (!key) continue;
        char buf[RX_MAX * 2 + 1];
        json_t *js = NULL;
        char *tmp = NULL;
        tbgw_value v;
        const char *why;
        if (convert_value(e, data, n, &v, buf, sizeof buf, &js, &tmp, &why) == 0) {
            if (telemetry)
                tbgw_converted_add_telemetry(c, ts, key, &v, NULL);
            else
                tbgw_converted_add_attribute(c, key, &v, NULL);
        } else if (why && strcmp(why, "empty") != 0) {
            TBGW_DEBUGF(s->h->conv_log, "device %s: key %s: %s", d->name, key, why);
            s->h->stat_add(s->h, TBGW_STAT_CONVERTER_ERRORS, 1);
        }
        json_decref(js);
        free(tmp);
    }
}

/* ---- downlink ---- */

static void reply(sconn *s, uint64_t handle, json_t *content) {
    s->h->rpc_reply(s->h, handle, content, -1);
}

static json_t *error_reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *error_reply(const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return json_pack("{s:s,s:b}", "error", msg, "success", 0);
}

/* A chunk that answers a pending RPC. */
static void rpc_answer(sconn *s, sdev *d, const unsigned char *data, size_t n) {
    const json_t *e = d->rpc.entry;
    d->rpc.active = 0;
    json_t *conv = json_object();
    const char *rt = json_string_value(json_object_get(e, "responseType"));
    if (rt) json_object_set_new(conv, "type", json_string(rt));
    json_t *v;
    if ((v = json_object_get(e, "responseFromByte"))) json_object_set(conv, "fromByte", v);
    if ((v = json_object_get(e, "responseToByte"))) json_object_set(conv, "toByte", v);
    if ((v = json_object_get(e, "responseUntilDelimiter"))) json_object_set(conv, "untilDelimiter", v);
    if (json_object_size(conv) == 0) {
        json_decref(conv);
        reply(s, d->rpc.handle, error_reply("no response conversion configured (%s)", "responseType"));
        return;
    }
    char buf[RX_MAX * 2 + 1];
    json_t *js = NULL;
    char *tmp = NULL;
    tbgw_value tv;
    const char *why;
    json_t *result = NULL;
    if (convert_value(conv, data, n, &tv, buf, sizeof buf, &js, &tmp, &why) == 0) {
        switch (tv.type) {
        case TBGW_V_BOOL:
            result = json_boolean(tv.u.b);
            break;
        case TBGW_V_INT:
            result = json_integer(tv.u.i);
            break;
        case TBGW_V_DOUBLE:
            result = json_real(tv.u.d);
            break;
        case TBGW_V_STRING:
            result = json_string(tv.u.s);
            break;
        default:
            result = js ? json_incref(js) : json_null();
            break;
        }
        reply(s, d->rpc.handle, json_pack("{s:o}", "result", result));
    } else {
        reply(s, d->rpc.handle, error_reply("cannot convert the response: %s", why ? why : "empty"));
    }
    json_decref(js);
    json_decref(conv);
    free(tmp);
}

/* Encodes RPC params as the entry's type says (SerialDownlinkConverter). Returns the length, or
 * -1 with *why set. */
static ssize_t encode_params(const sdev *d, const json_t *entry, const json_t *params, unsigned char *out,
                             size_t out_len, const char **why) {
    const char *type = json_string_value(json_object_get(entry, "type"));
    if (!params || json_is_null(params)) {
        *why = "No data to send";
        return -1;
    }
    if (type && strcmp(type, "int") == 0) {
        if (!json_is_integer(params) || json_integer_value(params) < 0) {
            *why = "params: expected a non-negative integer";
            return -1;
        }
        uint64_t v = (uint64_t)json_integer_value(params);
        size_t len = 1;
        while (len < 8 && (v >> (8 * len))) len++;
        for (size_t i = 0; i < len; i++) {
            unsigned char byte = (unsigned char)(v >> (8 * i));
            out[d->big_endian ? len - 1 - i : i] = byte;
        }
        return (ssize_t)len;
    }
    if (type && (strcmp(type, "float") == 0 || strcmp(type, "double") == 0)) {
        if (!json_is_number(params)) {
            *why = "params: expected a number";
            return -1;
        }
        double dv = json_number_value(params);
        float fv = (float)dv;
        uint64_t bits;
        size_t len;
        if ((double)fv == dv) { /* single precision when it holds the value exactly */
            uint32_t b32;
            memcpy(&b32, &fv, 4);
            bits = b32;
            len = 4;
        } else {
            memcpy(&bits, &dv, 8);
            len = 8;
        }
        for (size_t i = 0; i < len; i++) {
            unsigned char byte = (unsigned char)(bits >> (8 * i)); /* least significant first */
            out[d->big_endian ? len - 1 - i : i] = byte;
        }
        return (ssize_t)len;
    }
    const char *text = json_string_value(params);
    char *dump = NULL;
    if (!text) text = dump = json_dumps(params, JSON_COMPACT | JSON_ENCODE_ANY);
    size_t len = text ? strlen(text) : 0;
    if (len > out_len) len = out_len;
    if (text) memcpy(out, text, len);
    free(dump);
    if (!len) {
        *why = "No data to send";
        return -1;
    }
    return (ssize_t)len;
}

static sdev *device_named(sconn *s, const char *name) {
    for (size_t i = 0; name && i < s->n_dev; i++)
        if (strcmp(s->dev[i].name, name) == 0) return &s->dev[i];
    return NULL;
}

static int sc_rpc(void *self, const tbgw_rpc_req *r) {
    sconn *s = self;
    sdev *d = device_named(s, r->device);
    if (!d) {
        reply(s, r->handle, error_reply("Unknown device %s", r->device ? r->device : "(none)"));
        return 0;
    }
    const json_t *entry = NULL, *e;
    size_t i;
    json_array_foreach(json_object_get(d->cfg, "serverSideRpc"), i, e) {
        const char *m = json_string_value(json_object_get(e, "method"));
        if (m && strcmp(m, r->method) == 0) {
            entry = e;
            break;
        }
    }
    if (!entry) {
        reply(s, r->handle, json_pack("{s:s,s:b}", "error", "Method not found", "success", 0));
        return 0;
    }
    if (!d->has_downlink) {
        reply(s, r->handle, error_reply("Downlink converter not defined for device %s", d->name));
        return 0;
    }
    if (d->rpc.active) {
        reply(s, r->handle, error_reply("device %s is answering another request", d->name));
        return 0;
    }
    unsigned char out[RX_MAX];
    const char *why = NULL;
    ssize_t n = encode_params(d, entry, r->params, out, sizeof out, &why);
    if (n < 0) {
        reply(s, r->handle, error_reply("%s", why));
        return 0;
    }
    if (port_write(d, out, (size_t)n) != 0) {
        reply(s, r->handle, error_reply("cannot write to port %s", d->port));
        return 0;
    }
    if (!json_is_true(json_object_get(entry, "withResponse"))) {
        reply(s, r->handle, json_pack("{s:b}", "success", 1));
        return 0;
    }
    const json_t *to = json_object_get(entry, "responseTimeoutSec");
    d->rpc.active = 1;
    d->rpc.handle = r->handle;
    d->rpc.entry = entry;
    d->rpc.deadline_ms = mono_ms() + (json_is_number(to) ? (int64_t)(json_number_value(to) * 1000) : 5000);
    return 0;
}

/* str(value) as Python prints a JSON value decoded by the reference (strings raw, True/False). */
static void py_str(const json_t *v, char *out, size_t out_len) {
    if (json_is_string(v)) {
        snprintf(out, out_len, "%s", json_string_value(v));
    } else if (json_is_boolean(v)) {
        snprintf(out, out_len, "%s", json_is_true(v) ? "True" : "False");
    } else if (json_is_null(v)) {
        snprintf(out, out_len, "None");
    } else if (json_is_integer(v)) {
        snprintf(out, out_len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    } else if (json_is_real(v)) {
        double d = json_real_value(v);
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(out, out_len, "%.*g", prec, d);
            if (strtod(out, NULL) == d) break;
        }
        if (!strpbrk(out, ".eEn")) strncat(out, ".0", out_len - strlen(out) - 1);
    } else {
        char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        snprintf(out, out_len, "%s", t ? t : "");
        free(t);
    }
}

/* Replaces every `pat` in `in` with `rep` into out (truncating at out_len). */
static void replace_all(const char *in, const char *pat, const char *rep, char *out, size_t out_len) {
    size_t o = 0, pl = strlen(pat), rl = strlen(rep);
    while (*in && o + 1 < out_len) {
        if (pl && strncmp(in, pat, pl) == 0) {
            size_t k = rl < out_len - 1 - o ? rl : out_len - 1 - o;
            memcpy(out + o, rep, k);
            o += k;
            in += pl;
        } else {
            out[o++] = *in++;
        }
    }
    out[o] = 0;
}

static int sc_attr_update(void *self, const tbgw_attr_update *u) {
    sconn *s = self;
    sdev *d = device_named(s, u->device);
    if (!d) return 0;
    int found = 0;
    size_t i;
    const json_t *e;
    json_array_foreach(json_object_get(d->cfg, "attributeUpdates"), i, e) {
        const char *attr = json_string_value(json_object_get(e, "attributeOnPlatform"));
        const char *tmpl = json_string_value(json_object_get(e, "stringToDevice"));
        const json_t *val = attr ? json_object_get(u->data, attr) : NULL;
        if (!val || !tmpl) continue;
        found = 1;
        char sval[1024], pat[300], a[RX_MAX], b[RX_MAX];
        py_str(val, sval, sizeof sval);
        snprintf(pat, sizeof pat, "${%s}", attr);
        replace_all(tmpl, pat, sval, a, sizeof a);
        replace_all(a, "${deviceName}", d->name, b, sizeof b);
        replace_all(b, "${deviceType}", d->type, a, sizeof a);
        if (port_write(d, a, strlen(a)) != 0)
            TBGW_ERRORF(s->h->log, "device %s: cannot write attribute %s to port %s", d->name, attr, d->port);
    }
    if (!found) TBGW_ERRORF(s->h->log, "device %s: no attributeUpdates entry for this update", d->name);
    return 0;
}

/* ---- the loop ---- */

static void chunk_ready(sconn *s, sdev *d, size_t n) {
    s->h->stat_add(s->h, TBGW_STAT_MSGS_RECEIVED, 1);
    s->h->stat_add(s->h, TBGW_STAT_BYTES_RECEIVED, n);
    if (d->rpc.active) {
        rpc_answer(s, d, d->rx, n);
    } else {
        tbgw_converted *c = tbgw_converted_new(d->name, d->type);
        if (c) {
            int64_t ts = tbgw_now_ms();
            const json_t *tl = json_object_get(d->cfg, "timeseries");
            if (!tl) tl = json_object_get(d->cfg, "telemetry");
            convert_list(s, d, c, tl, 1, d->rx, n, ts);
            convert_list(s, d, c, json_object_get(d->cfg, "attributes"), 0, d->rx, n, ts);
            if (tbgw_converted_count(c) > 0) {
                s->h->stat_add(s->h, TBGW_STAT_CONV_PROCESSED, 1);
                s->h->emit(s->h, c);
            } else {
                s->h->stat_add(s->h, TBGW_STAT_CONV_DROPPED, 1);
                tbgw_converted_free(c);
            }
        }
    }
    memmove(d->rx, d->rx + n, d->rx_len - n);
    d->rx_len -= n;
}

static void device_read(sconn *s, sdev *d) {
    for (;;) {
        if (d->rx_len == sizeof d->rx) chunk_ready(s, d, d->rx_len); /* a chunk without delimiter */
        ssize_t r = read(d->fd, d->rx + d->rx_len, sizeof d->rx - d->rx_len);
        if (r > 0) {
            size_t scan_from = d->rx_len >= d->delim_len ? d->rx_len - d->delim_len + 1 : 0;
            d->rx_len += (size_t)r;
            d->last_rx_ms = mono_ms();
            for (;;) {
                ssize_t at = find_bytes(d->rx + scan_from, d->rx_len - scan_from, d->delim);
                if (at < 0) break;
                chunk_ready(s, d, scan_from + (size_t)at + d->delim_len);
                scan_from = 0;
            }
            continue;
        }
        /* With VMIN = VTIME = 0 an empty line reads 0 bytes; a hang-up shows as POLLHUP. */
        if (r < 0 && errno != EAGAIN && errno != EINTR) port_close(s, d, strerror(errno));
        return;
    }
}

static void update_state(sconn *s) {
    size_t open_ports = 0;
    for (size_t i = 0; i < s->n_dev; i++) open_ports += s->dev[i].fd >= 0;
    if (open_ports == s->n_dev)
        s->h->set_state(s->h, TBGW_CONN_CONNECTED, NULL);
    else
        s->h->set_state(s->h, TBGW_CONN_DISCONNECTED, "a serial port is not open");
}

static void timers(sconn *s, int64_t now) {
    int changed = 0;
    for (size_t i = 0; i < s->n_dev; i++) {
        sdev *d = &s->dev[i];
        if (d->fd < 0 && now >= d->reopen_at_ms) {
            int fd = port_open(d);
            if (fd >= 0) {
                d->fd = fd;
                d->open_error_logged = 0;
                TBGW_INFOF(s->h->log, "device %s: port %s open", d->name, d->port);
            } else {
                if (!d->open_error_logged)
                    TBGW_ERRORF(s->h->log, "device %s: cannot open %s: %s (retrying every %d s)", d->name,
                                d->port, strerror(-fd), REOPEN_MS / 1000);
                d->open_error_logged = 1;
                d->reopen_at_ms = now + REOPEN_MS;
            }
            changed = 1;
        }
        if (d->fd >= 0 && d->rx_len && now - d->last_rx_ms >= d->timeout_ms) chunk_ready(s, d, d->rx_len);
        if (d->rpc.active && now >= d->rpc.deadline_ms) {
            d->rpc.active = 0;
            reply(s, d->rpc.handle, error_reply("no response from device %s in time", d->name));
        }
    }
    if (changed) update_state(s);
}

static int sc_run(void *self) {
    sconn *s = self;
    for (size_t i = 0; i < s->n_dev; i++) s->h->device_connected(s->h, s->dev[i].name, s->dev[i].type);
    update_state(s);
    while (!s->stop) {
        struct pollfd pf[MAX_DEVICES];
        sdev *who[MAX_DEVICES];
        nfds_t n = 0;
        for (size_t i = 0; i < s->n_dev; i++) {
            if (s->dev[i].fd < 0) continue;
            pf[n] = (struct pollfd){.fd = s->dev[i].fd, .events = POLLIN};
            who[n++] = &s->dev[i];
        }
        int r = poll(pf, n, LOOP_SLICE_MS);
        for (nfds_t i = 0; r > 0 && i < n; i++) {
            if (pf[i].revents & POLLIN) device_read(s, who[i]);
            if (who[i]->fd >= 0 && (pf[i].revents & (POLLHUP | POLLERR | POLLNVAL)))
                port_close(s, who[i], "hang-up");
        }
        timers(s, mono_ms());
        if (s->h->wait(s->h, 0)) break;
    }
    for (size_t i = 0; i < s->n_dev; i++) {
        if (s->dev[i].rpc.active)
            reply(s, s->dev[i].rpc.handle, error_reply("connector %s stopped", s->h->name));
        s->dev[i].rpc.active = 0;
    }
    return 0;
}

static const tbgw_connector_ops ops = {
    .abi = TBGW_CONNECTOR_ABI,
    .type = "serial",
    .create = sc_create,
    .run = sc_run,
    .stop = sc_stop,
    .destroy = sc_destroy,
    .on_attribute_update = sc_attr_update,
    .on_rpc = sc_rpc,
};

const tbgw_connector_ops *tbgw_connector_entry(uint32_t abi);
const tbgw_connector_ops *tbgw_connector_entry(uint32_t abi) {
    return abi == TBGW_CONNECTOR_ABI ? &ops : NULL;
}
