/* The in-place JSON scanner (util/jscan.h). */
#include "util/jscan.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <tbgw/err.h>

#include "util/json.h"
#include "util/utf8.h"

/* Storage above these sizes is freed after the message instead of being kept for the next one. */
#define KEEP_TOKENS 1024
#define KEEP_STR    (16 * 1024)

typedef struct jscratch {
    tbgw_jtok *tok;
    size_t ntok, tcap;
    char *str;
    size_t scap, slen;
    struct tree_ref {
        size_t t;
        json_t *j;
    } * trees;
    size_t ntrees, trcap;
} jscratch;

static pthread_key_t js_key;
static pthread_once_t js_once = PTHREAD_ONCE_INIT;

static void js_free(void *p) {
    jscratch *s = p;
    if (!s) return;
    free(s->tok);
    free(s->str);
    free(s->trees);
    free(s);
}

static void js_init(void) {
    pthread_key_create(&js_key, js_free);
}

/* The thread's scratch, taken out of its slot while a doc uses it (a nested scan gets its own). */
static jscratch *js_take(void) {
    pthread_once(&js_once, js_init);
    jscratch *s = pthread_getspecific(js_key);
    if (s) {
        pthread_setspecific(js_key, NULL);
        return s;
    }
    return calloc(1, sizeof *s);
}

static void js_give(jscratch *s) {
    for (size_t i = 0; i < s->ntrees; i++) json_decref(s->trees[i].j);
    s->ntrees = 0;
    if (s->tcap > KEEP_TOKENS) {
        free(s->tok);
        s->tok = NULL;
        s->tcap = 0;
    }
    if (s->scap > KEEP_STR) {
        free(s->str);
        s->str = NULL;
        s->scap = 0;
    }
    if (pthread_getspecific(js_key) || pthread_setspecific(js_key, s)) js_free(s);
}

static long new_tok(jscratch *s, uint8_t type, size_t start) {
    if (s->ntok == s->tcap) {
        size_t nc = s->tcap ? s->tcap * 2 : 64;
        tbgw_jtok *nt = realloc(s->tok, nc * sizeof *nt);
        if (!nt) return -1;
        s->tok = nt;
        s->tcap = nc;
    }
    tbgw_jtok *t = &s->tok[s->ntok];
    t->type = type;
    t->start = (uint32_t)start;
    t->end = (uint32_t)start;
    t->next = 0;
    t->s = t->n = 0;
    return (long)s->ntok++;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static long hex4(const char *p) {
    long v = 0;
    for (int k = 0; k < 4; k++) {
        int h = hexval(p[k]);
        if (h < 0) return -1;
        v = v * 16 + h;
    }
    return v;
}

/* Decodes the escapes of p[0..n) (already checked to be well-formed) into o; -1 for a lone or
 * mismatched surrogate. */
static long unescape(const char *p, size_t n, char *o) {
    size_t k = 0, w = 0;
    while (k < n) {
        if (p[k] != '\\') {
            o[w++] = p[k++];
            continue;
        }
        char e = p[k + 1];
        k += 2;
        if (e != 'u') {
            o[w++] = e == 'b'   ? '\b'
                     : e == 'f' ? '\f'
                     : e == 'n' ? '\n'
                     : e == 'r' ? '\r'
                     : e == 't' ? '\t'
                                : e; /* " \ / */
            continue;
        }
        uint32_t cp = (uint32_t)hex4(p + k);
        k += 4;
        if (cp >= 0xdc00 && cp <= 0xdfff) return -1;
        if (cp >= 0xd800 && cp <= 0xdbff) {
            if (k + 6 > n || p[k] != '\\' || p[k + 1] != 'u') return -1;
            uint32_t lo = (uint32_t)hex4(p + k + 2);
            if (lo < 0xdc00 || lo > 0xdfff) return -1;
            k += 6;
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        }
        w += tbgw_utf8_put(o + w, cp);
    }
    return (long)w;
}

/* The string literal at s[*i] == '"'. key: an object key (no NUL allowed). */
static int scan_string(jscratch *js, const char *s, size_t n, size_t *i, int key) {
    size_t j = *i + 1;
    int esc = 0, high = 0;
    for (;;) {
        if (j >= n) return -1;
        unsigned char c = (unsigned char)s[j];
        if (c == '"') break;
        if (c < 0x20) return -1;
        if (c == '\\') {
            if (j + 1 >= n) return -1;
            char e = s[j + 1];
            if (e == 'u') {
                if (j + 6 > n || hex4(s + j + 2) < 0) return -1;
                j += 6;
            } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' || e == 'r' ||
                       e == 't') {
                j += 2;
            } else {
                return -1;
            }
            esc = 1;
            continue;
        }
        high |= c >= 0x80;
        j++;
    }
    size_t b = *i + 1;
    if (high && !tbgw_utf8_valid((const uint8_t *)s + b, j - b)) return -1;
    long t = new_tok(js, JSON_STRING, *i);
    if (t < 0) return -1;
    tbgw_jtok *tk = &js->tok[t];
    char *o = js->str + js->slen;
    long w = (long)(j - b);
    if (esc)
        w = unescape(s + b, j - b, o);
    else
        memcpy(o, s + b, j - b);
    if (w < 0 || (key && esc && memchr(o, 0, (size_t)w))) return -1; /* raw text holds no NUL */
    o[w] = 0;
    tk->s = (uint32_t)js->slen;
    tk->n = (uint32_t)w;
    js->slen += (size_t)w + 1;
    tk->end = (uint32_t)(j + 1);
    tk->next = (uint32_t)js->ntok;
    *i = j + 1;
    return 0;
}

static int isdig(char c) {
    return c >= '0' && c <= '9';
}

static int scan_number(jscratch *js, const char *s, size_t n, size_t *i) {
    size_t j = *i;
    int real = 0;
    if (j < n && s[j] == '-') j++;
    if (j >= n || !isdig(s[j])) return -1;
    if (s[j] == '0')
        j++;
    else
        while (j < n && isdig(s[j])) j++;
    if (j < n && s[j] == '.') {
        j++;
        if (j >= n || !isdig(s[j])) return -1;
        while (j < n && isdig(s[j])) j++;
        real = 1;
    }
    if (j < n && (s[j] == 'e' || s[j] == 'E')) {
        j++;
        if (j < n && (s[j] == '+' || s[j] == '-')) j++;
        if (j >= n || !isdig(s[j])) return -1;
        while (j < n && isdig(s[j])) j++;
        real = 1;
    }
    long t = new_tok(js, real ? JSON_REAL : JSON_INTEGER, *i);
    if (t < 0) return -1;
    tbgw_jtok *tk = &js->tok[t];
    memcpy(js->str + js->slen, s + *i, j - *i);
    js->str[js->slen + (j - *i)] = 0;
    tk->s = (uint32_t)js->slen;
    tk->n = (uint32_t)(j - *i);
    js->slen += j - *i + 1;
    tk->end = (uint32_t)j;
    tk->next = (uint32_t)js->ntok;
    *i = j;
    return 0;
}

static int scan_literal(jscratch *js, const char *s, size_t n, size_t *i) {
    static const struct {
        const char *w;
        size_t n;
        uint8_t type;
    } lits[] = {{"true", 4, JSON_TRUE}, {"false", 5, JSON_FALSE}, {"null", 4, JSON_NULL}};
    for (size_t k = 0; k < 3; k++) {
        if (n - *i < lits[k].n || memcmp(s + *i, lits[k].w, lits[k].n)) continue;
        long t = new_tok(js, lits[k].type, *i);
        if (t < 0) return -1;
        *i += lits[k].n;
        js->tok[t].end = (uint32_t)*i;
        js->tok[t].next = (uint32_t)js->ntok;
        return 0;
    }
    return -1;
}

static size_t skip_ws(const char *s, size_t n, size_t i) {
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
    return i;
}

static void close_container(jscratch *js, size_t t, size_t end) {
    js->tok[t].end = (uint32_t)end;
    js->tok[t].next = (uint32_t)js->ntok;
}

static int scan(jscratch *js, const char *s, size_t n) {
    enum { WANT_VALUE, WANT_KEY, AFTER_VALUE } state = WANT_VALUE;
    uint32_t stack[TBGW_JSCAN_MAX_DEPTH];
    int depth = 0;
    size_t i = 0;
    for (;;) {
        i = skip_ws(s, n, i);
        if (state == AFTER_VALUE) {
            if (depth == 0) return i == n ? 0 : -1;
            if (i >= n) return -1;
            size_t top = stack[depth - 1];
            int obj = js->tok[top].type == JSON_OBJECT;
            if (s[i] == ',') {
                i++;
                state = obj ? WANT_KEY : WANT_VALUE;
            } else if (s[i] == (obj ? '}' : ']')) {
                close_container(js, top, ++i);
                depth--;
            } else {
                return -1;
            }
            continue;
        }
        if (i >= n) return -1;
        if (state == WANT_KEY) {
            if (s[i] != '"' || scan_string(js, s, n, &i, 1)) return -1;
            i = skip_ws(s, n, i);
            if (i >= n || s[i] != ':') return -1;
            i++;
            state = WANT_VALUE;
            continue;
        }
        char c = s[i];
        if (c == '{' || c == '[') {
            if (depth == TBGW_JSCAN_MAX_DEPTH) return -1;
            long t = new_tok(js, c == '{' ? JSON_OBJECT : JSON_ARRAY, i);
            if (t < 0) return -1;
            stack[depth++] = (uint32_t)t;
            i = skip_ws(s, n, i + 1);
            if (i < n && s[i] == (c == '{' ? '}' : ']')) {
                close_container(js, (size_t)t, ++i);
                depth--;
                state = AFTER_VALUE;
            } else {
                state = c == '{' ? WANT_KEY : WANT_VALUE;
            }
            continue;
        }
        int rc = c == '"'               ? scan_string(js, s, n, &i, 0)
                 : c == '-' || isdig(c) ? scan_number(js, s, n, &i)
                                        : scan_literal(js, s, n, &i);
        if (rc) return -1;
        state = AFTER_VALUE;
    }
}

int tbgw_jscan(const char *text, size_t len, tbgw_jdoc *doc) {
    memset(doc, 0, sizeof *doc);
    if (!text || len == 0 || len >= (size_t)UINT32_MAX - 4) return -1;
    jscratch *js = js_take();
    if (!js) return -1;
    js->ntok = js->slen = js->ntrees = 0;
    /* every decoded string and copied number, with its NUL, fits in the bytes of its token plus
     * the one after it */
    if (js->scap < len + 2) {
        free(js->str);
        js->scap = len + 2 < 256 ? 256 : len + 2;
        if (!(js->str = malloc(js->scap))) js->scap = 0;
    }
    if (!js->str || scan(js, text, len)) {
        js_give(js);
        return -1;
    }
    doc->text = text;
    doc->len = len;
    doc->tok = js->tok;
    doc->n = js->ntok;
    doc->str = js->str;
    doc->scratch = js;
    return 0;
}

void tbgw_jscan_done(tbgw_jdoc *doc) {
    if (doc->scratch) js_give(doc->scratch);
    memset(doc, 0, sizeof *doc);
}

/* keys are short: a byte loop beats a call to memcmp */
static int same_bytes(const char *a, const char *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i]) return 0;
    return 1;
}

long tbgw_jdoc_member(const tbgw_jdoc *d, size_t o, const char *key, size_t klen) {
    const tbgw_jtok *t = d->tok;
    if (o >= d->n || t[o].type != JSON_OBJECT) return -1;
    long found = -1;
    for (size_t k = o + 1; k < t[o].next; k = t[k + 1].next)
        if (t[k].n == klen && same_bytes(d->str + t[k].s, key, klen)) found = (long)k + 1;
    return found;
}

long tbgw_jdoc_element(const tbgw_jdoc *d, size_t a, long idx) {
    const tbgw_jtok *t = d->tok;
    if (a >= d->n || t[a].type != JSON_ARRAY) return -1;
    long count = 0;
    for (size_t k = a + 1; k < t[a].next; k = t[k].next) count++;
    if (idx < 0) idx += count;
    if (idx < 0 || idx >= count) return -1;
    size_t k = a + 1;
    while (idx-- > 0) k = t[k].next;
    return (long)k;
}

int tbgw_jval_of(const json_t *j, tbgw_jval *out) {
    memset(out, 0, sizeof *out);
    if (!j) return TBGW_ENOENT;
    out->type = json_typeof(j);
    out->j = j;
    switch (out->type) {
    case JSON_STRING: {
        const char *num = tbgw_json_number_of(j, &out->n);
        out->node = num != NULL;
        if (num) {
            out->s = num;
        } else {
            out->s = json_string_value(j);
            out->n = json_string_length(j);
        }
        break;
    }
    case JSON_INTEGER:
        out->i = json_integer_value(j);
        out->d = (double)out->i;
        break;
    case JSON_REAL:
        out->d = json_real_value(j);
        break;
    default:
        break;
    }
    return 0;
}

static int tree_of(tbgw_jdoc *d, size_t t, const json_t **out) {
    jscratch *js = d->scratch;
    for (size_t k = 0; k < js->ntrees; k++)
        if (js->trees[k].t == t) {
            *out = js->trees[k].j;
            return 0;
        }
    if (js->ntrees == js->trcap) {
        size_t nc = js->trcap ? js->trcap * 2 : 4;
        struct tree_ref *nt = realloc(js->trees, nc * sizeof *nt);
        if (!nt) return TBGW_ENOMEM;
        js->trees = nt;
        js->trcap = nc;
    }
    const tbgw_jtok *tk = &d->tok[t];
    json_t *j =
        tbgw_json_loadb(d->text + tk->start, tk->end - tk->start, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (!j) return TBGW_ENOMEM; /* the scanner accepted it: only memory can be missing */
    js->trees[js->ntrees].t = t;
    js->trees[js->ntrees].j = j;
    js->ntrees++;
    *out = j;
    return 0;
}

int tbgw_jdoc_val(tbgw_jdoc *d, size_t t, tbgw_jval *out) {
    memset(out, 0, sizeof *out);
    const tbgw_jtok *tk = &d->tok[t];
    out->type = (json_type)tk->type;
    switch (out->type) {
    case JSON_OBJECT:
    case JSON_ARRAY:
        return tree_of(d, t, &out->j);
    case JSON_STRING:
        out->s = d->str + tk->s;
        out->n = tk->n;
        return 0;
    case JSON_INTEGER: {
        uint64_t u;
        int64_t i;
        if (tbgw_int_text(d->str + tk->s, tk->n, &i, &u) == 0) {
            out->i = i;
            out->d = (double)out->i;
            return 0;
        }
        break; /* beyond int64: a number node */
    }
    case JSON_REAL: {
        errno = 0;
        out->d = strtod(d->str + tk->s, NULL);
        if (!(errno == ERANGE && isinf(out->d))) return 0;
        out->d = 0;
        break; /* beyond the double range: a number node */
    }
    default:
        return 0;
    }
    out->type = JSON_STRING;
    out->node = 1;
    out->s = d->str + tk->s;
    out->n = tk->n;
    return 0;
}
