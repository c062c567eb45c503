#include "util/json.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <tbgw/err.h>

/* ---- number nodes ----------------------------------------------------------------------------- */

#define NODE_TAG0 '\0'
#define NODE_TAG1 '\xff'

json_t *tbgw_json_number_text(const char *text, size_t len) {
    if (!text || !len) return NULL;
    char small[64];
    char *t = len + 3 <= sizeof small ? small : malloc(len + 3);
    if (!t) return NULL;
    t[0] = NODE_TAG0;
    t[1] = NODE_TAG1;
    memcpy(t + 2, text, len);
    t[len + 2] = 0;
    json_t *j = json_stringn_nocheck(t, len + 2);
    if (t != small) free(t);
    return j;
}

json_t *tbgw_json_u64(uint64_t u) {
    if (u <= (uint64_t)INT64_MAX) return json_integer((json_int_t)u);
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)u);
    return tbgw_json_number_text(tmp, (size_t)n);
}

const char *tbgw_json_number_of(const json_t *j, size_t *len) {
    if (!json_is_string(j)) return NULL;
    size_t n = json_string_length(j);
    const char *s = json_string_value(j);
    if (n < 3 || s[0] != NODE_TAG0 || s[1] != NODE_TAG1) return NULL;
    if (len) *len = n - 2;
    return s + 2;
}

int tbgw_json_is_number(const json_t *j) {
    return json_is_number(j) || tbgw_json_number_of(j, NULL) != NULL;
}

double tbgw_json_number_double(const json_t *j) {
    const char *t = tbgw_json_number_of(j, NULL);
    return t ? strtod(t, NULL) : json_number_value(j);
}

int tbgw_int_text(const char *s, size_t n, int64_t *i, uint64_t *u) {
    size_t k = 0;
    int neg = n > 0 && s[0] == '-';
    if (neg) k++;
    if (k == n) return -1;
    uint64_t acc = 0;
    int over = 0;
    for (; k < n; k++) {
        if (s[k] < '0' || s[k] > '9') return -1;
        unsigned dgt = (unsigned)(s[k] - '0');
        if (acc > (UINT64_MAX - dgt) / 10) over = 1;
        acc = acc * 10 + dgt;
    }
    if (over) return 2;
    if (neg) {
        if (acc > (uint64_t)INT64_MAX + 1) return 2;
        *i = acc == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)acc;
        return 0;
    }
    if (acc <= (uint64_t)INT64_MAX) {
        *i = (int64_t)acc;
        return 0;
    }
    *u = acc;
    return 1;
}

/* ---- parsing ---------------------------------------------------------------------------------- */

/* A number token the first parse could not hold, moved out of the text (placeholder string). */
typedef struct big_num {
    size_t orig_off, orig_len; /* in the original text */
    size_t new_off, new_len;   /* the placeholder in the rewritten text */
} big_num;

typedef struct rewrite {
    const char *src;
    size_t len;
    tbgw_buf out;
    big_num *nums;
    size_t n, cap;
    char nonce[17];
    size_t nul_at; /* offset of a \u0000 escape in a string, or SIZE_MAX */
} rewrite;

static pthread_once_t nonce_once = PTHREAD_ONCE_INIT;
static uint64_t nonce_seed;

static void nonce_init(void) {
    if (getrandom(&nonce_seed, sizeof nonce_seed, GRND_NONBLOCK) != (ssize_t)sizeof nonce_seed)
        nonce_seed = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
}

/* 1 when the number token [p, p+n) would make jansson fail: an integer beyond int64, or a real
 * beyond the double range. */
static int too_big(const char *p, size_t n) {
    int is_int = 1;
    for (size_t k = 0; k < n; k++)
        if (p[k] == '.' || p[k] == 'e' || p[k] == 'E') is_int = 0;
    if (is_int) {
        int64_t i;
        uint64_t u;
        return tbgw_int_text(p, n, &i, &u) > 0;
    }
    char small[64];
    char *t = n < sizeof small ? small : malloc(n + 1);
    if (!t) return 0;
    memcpy(t, p, n);
    t[n] = 0;
    errno = 0;
    double d = strtod(t, NULL);
    int big = errno == ERANGE && isinf(d);
    if (t != small) free(t);
    return big;
}

static size_t number_end(const char *s, size_t i, size_t n) {
    size_t j = i;
    if (j < n && s[j] == '-') j++;
    while (j < n && ((s[j] >= '0' && s[j] <= '9') || s[j] == '.' || s[j] == 'e' || s[j] == 'E' ||
                     ((s[j] == '+' || s[j] == '-') && (s[j - 1] == 'e' || s[j - 1] == 'E'))))
        j++;
    return j;
}

/* Copies the string literal starting at s[i] ('"'); returns the offset after it. */
static size_t copy_string(rewrite *rw, size_t i) {
    const char *s = rw->src;
    size_t j = i + 1;
    while (j < rw->len && s[j] != '"') {
        if (s[j] == '\\' && j + 1 < rw->len) {
            if (s[j + 1] == 'u' && j + 5 < rw->len && !strncmp(s + j + 2, "0000", 4) &&
                rw->nul_at == SIZE_MAX)
                rw->nul_at = j;
            j++;
        }
        j++;
    }
    if (j < rw->len) j++;
    tbgw_buf_append(&rw->out, s + i, j - i);
    return j;
}

static int rewrite_text(rewrite *rw) {
    const char *s = rw->src;
    size_t i = 0;
    while (i < rw->len) {
        char c = s[i];
        if (c == '"') {
            i = copy_string(rw, i);
            continue;
        }
        if (c != '-' && (c < '0' || c > '9')) {
            tbgw_buf_putc(&rw->out, c);
            i++;
            continue;
        }
        size_t j = number_end(s, i, rw->len);
        if (!too_big(s + i, j - i)) {
            tbgw_buf_append(&rw->out, s + i, j - i);
            i = j;
            continue;
        }
        if (rw->n == rw->cap) {
            size_t nc = rw->cap ? rw->cap * 2 : 8;
            big_num *nn = realloc(rw->nums, nc * sizeof *nn);
            if (!nn) return TBGW_ENOMEM;
            rw->nums = nn;
            rw->cap = nc;
        }
        big_num *b = &rw->nums[rw->n];
        b->orig_off = i;
        b->orig_len = j - i;
        b->new_off = rw->out.len;
        tbgw_buf_printf(&rw->out, "\"\\u0000%s%zu\"", rw->nonce, rw->n);
        b->new_len = rw->out.len - b->new_off;
        rw->n++;
        i = j;
    }
    return rw->out.oom ? TBGW_ENOMEM : 0;
}

/* Replaces every placeholder under *slot (document order) by its number node. */
static int restore(rewrite *rw, json_t *j, json_t **replace) {
    *replace = NULL;
    if (json_is_string(j)) {
        const char *s = json_string_value(j);
        size_t nl = strlen(rw->nonce);
        if (json_string_length(j) > nl + 1 && s[0] == 0 && !memcmp(s + 1, rw->nonce, nl)) {
            char *end;
            unsigned long k = strtoul(s + 1 + nl, &end, 10);
            if (*end || k >= rw->n) return 0;
            *replace = tbgw_json_number_text(rw->src + rw->nums[k].orig_off, rw->nums[k].orig_len);
            return *replace ? 0 : TBGW_ENOMEM;
        }
        return 0;
    }
    int rc = 0;
    if (json_is_array(j)) {
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v) {
            json_t *r;
            if ((rc = restore(rw, v, &r))) return rc;
            if (r) json_array_set_new(j, i, r);
        }
    } else if (json_is_object(j)) {
        for (void *it = json_object_iter(j); it; it = json_object_iter_next(j, it)) {
            json_t *r;
            if ((rc = restore(rw, json_object_iter_value(it), &r))) return rc;
            if (r) json_object_iter_set_new(j, it, r);
        }
    }
    return rc;
}

/* Maps an offset in the rewritten text back to the original one. */
static size_t orig_offset(const rewrite *rw, size_t pos) {
    long long shift = 0;
    for (size_t k = 0; k < rw->n; k++) {
        const big_num *b = &rw->nums[k];
        if (pos < b->new_off) break;
        if (pos < b->new_off + b->new_len) return b->orig_off;
        shift += (long long)b->new_len - (long long)b->orig_len;
    }
    return (size_t)((long long)pos - shift);
}

static void set_error(json_error_t *err, const rewrite *rw, size_t off, const char *text) {
    if (!err) return;
    int line = 1, col = 0;
    for (size_t k = 0; k < off && k < rw->len; k++) {
        unsigned char c = (unsigned char)rw->src[k];
        if (c == '\n') {
            line++;
            col = 0;
        } else if (c < 0x80 || c > 0xbf) { /* characters, not UTF-8 continuation bytes */
            col++;
        }
    }
    char keep[JSON_ERROR_TEXT_LENGTH];
    snprintf(keep, sizeof keep, "%s", text);
    memset(err, 0, sizeof *err);
    err->line = line;
    err->column = col;
    err->position = (int)off;
    snprintf(err->source, sizeof err->source, "<buffer>");
    snprintf(err->text, sizeof err->text - 1, "%s", keep);
}

static json_t *load_rewritten(rewrite *rw, size_t flags, json_error_t *err) {
    json_error_t je;
    json_t *j = json_loadb(rw->out.p, rw->out.len, flags | JSON_ALLOW_NUL, &je);
    if (!j) {
        set_error(err, rw, orig_offset(rw, (size_t)(je.position > 0 ? je.position : 0)), je.text);
        return NULL;
    }
    json_t *r = NULL;
    if (restore(rw, j, &r)) {
        json_decref(j);
        set_error(err, rw, 0, "out of memory");
        return NULL;
    }
    if (r) {
        json_decref(j);
        j = r;
    }
    return j;
}

json_t *tbgw_json_loadb(const void *text, size_t len, size_t flags, json_error_t *err) {
    json_error_t je;
    json_t *j = json_loadb(text, len, flags, &je);
    if (j || json_error_code(&je) != json_error_numeric_overflow) {
        if (!j && err) *err = je;
        return j;
    }
    rewrite rw = {.src = text, .len = len, .nul_at = SIZE_MAX};
    pthread_once(&nonce_once, nonce_init);
    static _Atomic uint64_t calls;
    uint64_t nv = nonce_seed ^ (++calls * 0x9e3779b97f4a7c15ull);
    snprintf(rw.nonce, sizeof rw.nonce, "%016llx", (unsigned long long)nv);
    tbgw_buf_init(&rw.out);
    j = NULL;
    if (rewrite_text(&rw))
        set_error(err, &rw, 0, "out of memory");
    else if (rw.nul_at != SIZE_MAX && !(flags & JSON_ALLOW_NUL))
        set_error(err, &rw, rw.nul_at, "\\u0000 is not allowed without JSON_ALLOW_NUL");
    else
        j = load_rewritten(&rw, flags, err);
    tbgw_buf_free(&rw.out);
    free(rw.nums);
    return j;
}

json_t *tbgw_json_loads(const char *text, size_t flags, json_error_t *err) {
    return tbgw_json_loadb(text, text ? strlen(text) : 0, flags, err);
}

/* ---- writing ---------------------------------------------------------------------------------- */

/* The code point at s[*i] (valid UTF-8 assumed; a truncated sequence yields its first byte). */
static uint32_t utf8_next(const char *s, size_t n, size_t *i) {
    const unsigned char *u = (const unsigned char *)s + *i;
    size_t left = n - *i, len = 1;
    uint32_t cp = u[0];
    if (u[0] >= 0xf0 && left >= 4) {
        cp = (uint32_t)(u[0] & 7) << 18 | (uint32_t)(u[1] & 63) << 12 | (uint32_t)(u[2] & 63) << 6 |
             (u[3] & 63);
        len = 4;
    } else if (u[0] >= 0xe0 && left >= 3) {
        cp = (uint32_t)(u[0] & 15) << 12 | (uint32_t)(u[1] & 63) << 6 | (u[2] & 63);
        len = 3;
    } else if (u[0] >= 0xc0 && left >= 2) {
        cp = (uint32_t)(u[0] & 31) << 6 | (u[1] & 63);
        len = 2;
    }
    *i += len;
    return cp;
}

/* Python json.dumps(ensure_ascii=True): everything outside ' '..'~' escaped, \uXXXX with UTF-16
 * surrogate pairs beyond the BMP. The input is valid UTF-8 (jansson checked it). */
static int py_str(tbgw_buf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    tbgw_buf_putc(b, '"');
    for (size_t i = 0; i < n;) {
        uint32_t cp = utf8_next(s, n, &i);
        const char *esc = cp == '"'    ? "\\\""
                          : cp == '\\' ? "\\\\"
                          : cp == '\n' ? "\\n"
                          : cp == '\r' ? "\\r"
                          : cp == '\t' ? "\\t"
                          : cp == '\b' ? "\\b"
                          : cp == '\f' ? "\\f"
                                       : NULL;
        if (esc) {
            tbgw_buf_puts(b, esc);
            continue;
        }
        if (cp >= 0x20 && cp <= 0x7e) {
            tbgw_buf_putc(b, (char)cp);
            continue;
        }
        uint32_t units[2] = {cp, 0};
        int nu = 1;
        if (cp > 0xffff) {
            cp -= 0x10000;
            units[0] = 0xd800 | (cp >> 10);
            units[1] = 0xdc00 | (cp & 0x3ff);
            nu = 2;
        }
        for (int k = 0; k < nu; k++) {
            char u[6] = {'\\',
                         'u',
                         hex[units[k] >> 12 & 15],
                         hex[units[k] >> 8 & 15],
                         hex[units[k] >> 4 & 15],
                         hex[units[k] & 15]};
            tbgw_buf_append(b, u, 6);
        }
    }
    return tbgw_buf_putc(b, '"');
}

static void newline(tbgw_buf *b, int indent, int depth) {
    tbgw_buf_putc(b, '\n');
    for (int i = 0; i < indent * depth; i++) tbgw_buf_putc(b, ' ');
}

/* indent > 0: pretty-printed like jansson; indent < 0: Python json.dumps() defaults. */
static int dump(tbgw_buf *b, const json_t *j, int indent, int depth) {
    int py = indent < 0;
    if (py) indent = 0;
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        if (!json_object_size(j)) return tbgw_buf_puts(b, "{}");
        tbgw_buf_putc(b, '{');
        json_t *o = (json_t *)j;
        for (void *it = json_object_iter(o); it; it = json_object_iter_next(o, it)) {
            if (it != json_object_iter(o)) tbgw_buf_puts(b, py ? ", " : ",");
            if (indent) newline(b, indent, depth + 1);
            if (py)
                py_str(b, json_object_iter_key(it), json_object_iter_key_len(it));
            else
                tbgw_buf_json_strn(b, json_object_iter_key(it), json_object_iter_key_len(it));
            tbgw_buf_puts(b, indent || py ? ": " : ":");
            dump(b, json_object_iter_value(it), py ? -1 : indent, depth + 1);
        }
        if (indent) newline(b, indent, depth);
        return tbgw_buf_putc(b, '}');
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(j);
        if (!n) return tbgw_buf_puts(b, "[]");
        tbgw_buf_putc(b, '[');
        for (size_t i = 0; i < n; i++) {
            if (i) tbgw_buf_puts(b, py ? ", " : ",");
            if (indent) newline(b, indent, depth + 1);
            dump(b, json_array_get(j, i), py ? -1 : indent, depth + 1);
        }
        if (indent) newline(b, indent, depth);
        return tbgw_buf_putc(b, ']');
    }
    case JSON_STRING: {
        size_t n;
        const char *num = tbgw_json_number_of(j, &n);
        if (num) return tbgw_buf_append(b, num, n);
        if (py) return py_str(b, json_string_value(j), json_string_length(j));
        return tbgw_buf_json_strn(b, json_string_value(j), json_string_length(j));
    }
    case JSON_INTEGER:
        return tbgw_buf_i64(b, json_integer_value(j));
    case JSON_REAL: {
        tbgw_value v = tbgw_value_double(json_real_value(j));
        return tbgw_buf_json_value(b, &v);
    }
    case JSON_TRUE:
        return tbgw_buf_puts(b, "true");
    case JSON_FALSE:
        return tbgw_buf_puts(b, "false");
    case JSON_NULL:
        return tbgw_buf_puts(b, "null");
    }
    return TBGW_EINVAL;
}

int tbgw_buf_json(tbgw_buf *b, const json_t *j, int indent) {
    if (!j) return TBGW_EINVAL;
    dump(b, j, indent < 0 ? 0 : indent, 0);
    return b->oom ? TBGW_ENOMEM : 0;
}

int tbgw_buf_json_py(tbgw_buf *b, const json_t *j) {
    if (!j) return TBGW_EINVAL;
    dump(b, j, -1, 0);
    return b->oom ? TBGW_ENOMEM : 0;
}

char *tbgw_json_dumps(const json_t *j, int indent) {
    tbgw_buf b;
    tbgw_buf_init(&b);
    if (tbgw_buf_json(&b, j, indent) || !tbgw_buf_cstr(&b)) {
        tbgw_buf_free(&b);
        return NULL;
    }
    return b.p; /* the caller frees it */
}
