/* Tokenizer: names, keywords, numbers (int of any size, float), string and bytes literals with
 * escapes, raw and f-string prefixes, operators. Newlines only inside brackets (as in eval). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "convert/pyexpr/lex.h"
#include "util/utf8.h"

void py_syntax(py_lexer *lx, size_t pos, const char *fmt, ...) {
    va_list ap;
    X *x = lx->x;
    int k = snprintf(x->errmsg, sizeof x->errmsg, "SyntaxError: ");
    va_start(ap, fmt);
    vsnprintf(x->errmsg + k, sizeof x->errmsg - (size_t)k, fmt, ap);
    va_end(ap);
    if (lx->err_off) *lx->err_off = pos;
    longjmp(*x->jb, 1);
}

static const struct {
    const char *w;
    int t;
} kws[] = {
    {"False", T_FALSE},
    {"None", T_NONE},
    {"True", T_TRUE},
    {"and", T_AND},
    {"else", T_ELSE},
    {"for", T_FOR},
    {"if", T_IF},
    {"in", T_IN},
    {"is", T_IS},
    {"lambda", T_LAMBDA},
    {"not", T_NOT},
    {"or", T_OR},
    {"as", T_KW_OTHER},
    {"assert", T_KW_OTHER},
    {"async", T_KW_OTHER},
    {"await", T_KW_OTHER},
    {"break", T_KW_OTHER},
    {"class", T_KW_OTHER},
    {"continue", T_KW_OTHER},
    {"def", T_KW_OTHER},
    {"del", T_KW_OTHER},
    {"elif", T_KW_OTHER},
    {"except", T_KW_OTHER},
    {"finally", T_KW_OTHER},
    {"from", T_KW_OTHER},
    {"global", T_KW_OTHER},
    {"import", T_KW_OTHER},
    {"nonlocal", T_KW_OTHER},
    {"pass", T_KW_OTHER},
    {"raise", T_KW_OTHER},
    {"return", T_KW_OTHER},
    {"try", T_KW_OTHER},
    {"while", T_KW_OTHER},
    {"with", T_KW_OTHER},
    {"yield", T_KW_OTHER},
};

int py_is_id_start(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}
int py_is_id(unsigned char c) {
    return py_is_id_start(c) || (c >= '0' && c <= '9');
}

int py_keyword(const char *s, size_t n) {
    for (size_t k = 0; k < sizeof kws / sizeof kws[0]; k++)
        if (strlen(kws[k].w) == n && !memcmp(kws[k].w, s, n)) return kws[k].t;
    return 0;
}

void py_put_utf8(tbgw_buf *b, uint32_t cp) {
    char u[4];
    tbgw_buf_append(b, u, tbgw_utf8_put(u, cp));
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* one escape at s[i] == '\\'; returns the index after it */
static size_t escape(py_lexer *lx, size_t i, size_t b, int bytes, tbgw_buf *out) {
    const char *s = lx->src;
    if (i + 1 >= b) { /* a backslash ending an f-string segment (before a '{') stays */
        tbgw_buf_putc(out, '\\');
        return i + 1;
    }
    char c = s[i + 1];
    static const char simple_from[] = "\n\\'\"abfnrtv";
    static const char simple_to[] = "\0\\'\"\a\b\f\n\r\t\v";
    const char *p = strchr(simple_from, c);
    if (p && c) {
        if (c != '\n') tbgw_buf_putc(out, simple_to[p - simple_from]); /* backslash-newline: nothing */
        return i + 2;
    }
    if (c >= '0' && c <= '7') {
        unsigned v = 0;
        size_t j = i + 1;
        for (int k = 0; k < 3 && j < b && s[j] >= '0' && s[j] <= '7'; k++, j++)
            v = v * 8 + (unsigned)(s[j] - '0');
        if (bytes)
            tbgw_buf_putc(out, (char)(v & 0xFF));
        else
            py_put_utf8(out, v);
        return j;
    }
    int digits = c == 'x' ? 2 : (!bytes && c == 'u') ? 4 : (!bytes && c == 'U') ? 8 : 0;
    if (digits) {
        uint32_t v = 0;
        for (int k = 0; k < digits; k++) {
            int h = i + 2 + (size_t)k < b ? hexval(s[i + 2 + (size_t)k]) : -1;
            if (h < 0) py_syntax(lx, i, "(%s error) truncated \\%c escape", bytes ? "value" : "unicode", c);
            v = v * 16 + (uint32_t)h;
        }
        if (bytes)
            tbgw_buf_putc(out, (char)v);
        else if (v > 0x10FFFF)
            py_syntax(lx, i, "(unicode error) illegal Unicode character");
        else if (v >= 0xD800 && v <= 0xDFFF)
            py_syntax(lx, i, "surrogate code points are not supported");
        else
            py_put_utf8(out, v);
        return i + 2 + (size_t)digits;
    }
    if (!bytes && c == 'N') py_syntax(lx, i, "\\N{...} escapes are not supported");
    tbgw_buf_putc(out, '\\'); /* unknown escapes stay as they are */
    return i + 1;
}

pv py_decode_literal(py_lexer *lx, size_t a, size_t b, int raw, int bytes) {
    X *x = lx->x;
    tbgw_buf *out = py_buf(x); /* tracked: freed when an error unwinds */
    const char *s = lx->src;
    for (size_t i = a; i < b;) {
        unsigned char c = (unsigned char)s[i];
        if (bytes && c >= 0x80) py_syntax(lx, i, "bytes can only contain ASCII literal characters");
        if (c == '\\' && !raw) {
            i = escape(lx, i, b, bytes, out);
            continue;
        }
        if (c == '\\' && raw && i + 1 < b) { /* raw: the backslash and the next char stay */
            tbgw_buf_append(out, s + i, 2);
            i += 2;
            continue;
        }
        tbgw_buf_putc(out, (char)c);
        i++;
    }
    py_buf_check(x, out);
    pv v = bytes ? pv_bytes(x, PT_BYTES, out->p ? out->p : "", out->len)
                 : pv_str(x, out->p ? out->p : "", out->len);
    py_buf_release(x, out);
    return v;
}

/* finds the end of a string body starting at i (after the opening quote(s)) */
static size_t string_end(py_lexer *lx, size_t i, char q, int triple, int raw, size_t to, size_t start) {
    const char *s = lx->src;
    while (i < to) {
        if (s[i] == '\\') {
            i += 2;
            continue;
        }
        if (s[i] == q && (!triple || (i + 2 < to && s[i + 1] == q && s[i + 2] == q))) return i;
        if (s[i] == '\n' && !triple) break;
        i++;
    }
    (void)raw;
    py_syntax(lx, start,
              triple ? "unterminated triple-quoted string literal" : "unterminated string literal");
}

static size_t lex_number(py_lexer *lx, size_t i, size_t to, py_tok *t) {
    const char *s = lx->src;
    size_t st = i;
    char clean[512];
    size_t nc = 0;
    unsigned base = 10;
    if (s[i] == '0' && i + 1 < to && strchr("xXoObB", s[i + 1])) {
        base = (s[i + 1] | 0x20) == 'x' ? 16 : (s[i + 1] | 0x20) == 'o' ? 8 : 2;
        i += 2;
        if (i < to && s[i] == '_') i++;
    }
    int is_float = 0, has_exp = 0;
    for (; i < to; i++) {
        char c = s[i];
        int ok = base == 16 ? hexval(c) >= 0
                            : (c >= '0' && c <= '9' && (unsigned)(c - '0') < (base == 10 ? 10u : base));
        if (base == 10 && !ok && c >= '8' && c <= '9') ok = 1;
        if (ok) {
            if (nc >= sizeof clean - 1) py_syntax(lx, st, "numeric literal too long");
            clean[nc++] = c;
            continue;
        }
        if (c == '_' && i + 1 < to &&
            (base == 16 ? hexval(s[i + 1]) >= 0 : s[i + 1] >= '0' && s[i + 1] <= '9') && nc &&
            (base == 16 ? hexval(s[i - 1]) >= 0 : s[i - 1] >= '0' && s[i - 1] <= '9'))
            continue;
        if (base == 10 && c == '.' && !is_float && !has_exp) {
            is_float = 1;
            clean[nc++] = c;
            continue;
        }
        if (base == 10 && (c == 'e' || c == 'E') && !has_exp) {
            size_t j = i + 1;
            has_exp = 1;
            if (j < to && (s[j] == '+' || s[j] == '-')) j++;
            if (j < to && s[j] >= '0' && s[j] <= '9') {
                is_float = 1;
                clean[nc++] = 'e';
                if (s[i + 1] == '-' || s[i + 1] == '+') clean[nc++] = s[i + 1];
                i = j - 1;
                continue;
            }
            py_syntax(lx, st, "invalid decimal literal");
        }
        break;
    }
    if (i < to && (s[i] == 'j' || s[i] == 'J')) py_syntax(lx, st, "complex numbers are not supported");
    if (i < to && py_is_id(s[i]) &&
        !(s[i] == 'i' || s[i] == 'e' || s[i] == 'o' || s[i] == 'a' || s[i] == 'n'))
        py_syntax(lx, st, "invalid decimal literal");
    clean[nc] = 0;
    if (!nc || (base != 10 && is_float)) py_syntax(lx, st, "invalid number literal");
    t->t = T_NUM;
    if (is_float) {
        t->val = pv_float(strtod(clean, NULL));
    } else {
        if (base == 10 && nc > 1 && clean[0] == '0') {
            for (size_t k = 0; k < nc; k++)
                if (clean[k] != '0')
                    py_syntax(lx, st, "leading zeros in decimal integer literals are not permitted");
        }
        t->val = big_parse(lx->x, clean, nc, base);
    }
    return i;
}

static size_t lex_op(py_lexer *lx, size_t i, size_t to, py_tok *t) {
    const char *s = lx->src;
    static const struct {
        const char *op;
        int t;
    } ops[] = {{"...", T_ELLIPSIS},  {"**=", T_AUGASSIGN}, {"//=", T_AUGASSIGN}, {">>=", T_AUGASSIGN},
               {"<<=", T_AUGASSIGN}, {"**", T_POW},        {"//", T_FLOORDIV},   {"<<", T_LSHIFT},
               {">>", T_RSHIFT},     {"<=", T_LE},         {">=", T_GE},         {"==", T_EQ},
               {"!=", T_NE},         {"->", T_ARROW},      {":=", T_WALRUS},     {"+=", T_AUGASSIGN},
               {"-=", T_AUGASSIGN},  {"*=", T_AUGASSIGN},  {"/=", T_AUGASSIGN},  {"%=", T_AUGASSIGN},
               {"&=", T_AUGASSIGN},  {"|=", T_AUGASSIGN},  {"^=", T_AUGASSIGN},  {"@=", T_AUGASSIGN}};
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        size_t n = strlen(ops[k].op);
        if (i + n <= to && !memcmp(s + i, ops[k].op, n)) {
            t->t = ops[k].t;
            return i + n;
        }
    }
    if (strchr("+-*/%@&|^~<>()[]{},:.;=!", s[i]) && s[i]) {
        t->t = (unsigned char)s[i];
        return i + 1;
    }
    py_syntax(lx, i, "invalid character '%c' (U+%04X)", s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?',
              (unsigned)(unsigned char)s[i]);
}

/* a string literal with optional prefix starting at i */
static size_t lex_string(py_lexer *lx, size_t i, size_t pstart, size_t to, const char *prefix, size_t np,
                         py_tok *t) {
    int raw = 0, bytes = 0, f = 0;
    for (size_t k = 0; k < np; k++) {
        char c = (char)(prefix[k] | 0x20);
        raw |= c == 'r';
        bytes |= c == 'b';
        f |= c == 'f';
    }
    const char *s = lx->src;
    char q = s[i];
    int triple = i + 2 < to && s[i + 1] == q && s[i + 2] == q;
    size_t body = i + (triple ? 3 : 1);
    size_t end = string_end(lx, body, q, triple, raw, to, pstart);
    if (f) {
        t->t = T_FSTR;
        t->a = (uint32_t)body;
        t->b = (uint32_t)end;
        t->raw = raw;
    } else {
        t->t = T_STR;
        t->val = py_decode_literal(lx, body, end, raw, bytes);
    }
    return end + (triple ? 3 : 1);
}

static int prefix_ok(const char *p, size_t n) {
    char a = n > 0 ? (char)(p[0] | 0x20) : 0, b = n > 1 ? (char)(p[1] | 0x20) : 0;
    if (n == 1) return a == 'r' || a == 'b' || a == 'f' || a == 'u';
    if (n == 2) return (a == 'r' && (b == 'b' || b == 'f')) || ((a == 'b' || a == 'f') && b == 'r');
    return 0;
}

void py_lex(py_lexer *lx, size_t from, size_t to, py_tok **out, size_t *n) {
    size_t cap = 16, cnt = 0;
    py_tok *toks = malloc(cap * sizeof *toks);
    *out = toks;
    *n = 0;
    if (!toks) py_raise(lx->x, "MemoryError", "out of memory");
    const char *s = lx->src;
    int depth = 0;
    size_t i = from;
    for (;;) {
        while (i < to && (s[i] == ' ' || s[i] == '\t' || s[i] == '\f' || s[i] == '\r' ||
                          (s[i] == '\n' && depth > 0) || (s[i] == '\\' && i + 1 < to && s[i + 1] == '\n'))) {
            i += s[i] == '\\' ? 2 : 1;
        }
        if (i < to && s[i] == '#') {
            while (i < to && s[i] != '\n') i++;
            continue;
        }
        if (cnt + 1 >= cap) {
            py_tok *nt = realloc(toks, cap * 2 * sizeof *toks);
            if (!nt) py_raise(lx->x, "MemoryError", "out of memory");
            toks = nt;
            *out = toks;
            cap *= 2;
        }
        py_tok *t = &toks[cnt];
        memset(t, 0, sizeof *t);
        t->pos = (uint32_t)i;
        if (i >= to) {
            t->t = T_END;
            t->end = (uint32_t)i;
            cnt++;
            break;
        }
        unsigned char c = (unsigned char)s[i];
        if (c == '\n' &&
            cnt == 0) { /* blank lines before the expression; the first line may not be indented */
            size_t j = ++i;
            while (j < to && (s[j] == ' ' || s[j] == '\t' || s[j] == '\f')) j++;
            if (j > i && j < to && s[j] != '\n' && s[j] != '#' && s[j - 1] != '\f')
                py_syntax(lx, i, "unexpected indent");
            continue;
        }
        if (c == '\n') {
            /* a trailing newline is fine; anything after it is not an expression */
            size_t j = i;
            while (j < to && (s[j] == '\n' || s[j] == ' ' || s[j] == '\t' || s[j] == '\r' || s[j] == '\f' ||
                              s[j] == '#')) {
                if (s[j] == '#')
                    while (j < to && s[j] != '\n') j++;
                else
                    j++;
            }
            if (j >= to) {
                /* spaces after the last newline (no newline after them): Python's "unexpected indent" */
                size_t k = to;
                while (k > i && (s[k - 1] == ' ' || s[k - 1] == '\t'))
                    k--; /* a form feed resets the indent */
                size_t m = k;
                while (m > i && s[m - 1] == '\f') m--;
                if (k < to && s[m - 1] == '\n') py_syntax(lx, k, "unexpected indent");
                i = j;
                continue;
            }
            py_syntax(lx, i, "invalid syntax (a statement or a second line is not an expression)");
        }
        if (py_is_id_start(c)) {
            size_t j = i;
            while (j < to && py_is_id((unsigned char)s[j])) j++;
            if (j < to && (s[j] == '\'' || s[j] == '"') && prefix_ok(s + i, j - i)) {
                i = lex_string(lx, j, i, to, s + i, j - i, t);
            } else {
                int kw = py_keyword(s + i, j - i);
                t->t = kw ? kw : T_NAME;
                i = j;
            }
        } else if (c >= '0' && c <= '9') {
            i = lex_number(lx, i, to, t);
        } else if (c == '.' && i + 1 < to && s[i + 1] >= '0' && s[i + 1] <= '9') {
            i = lex_number(lx, i, to, t);
        } else if (c == '\'' || c == '"') {
            i = lex_string(lx, i, i, to, "", 0, t);
        } else {
            i = lex_op(lx, i, to, t);
            if (t->t == '(' || t->t == '[' || t->t == '{') depth++;
            if ((t->t == ')' || t->t == ']' || t->t == '}') && depth > 0) depth--;
        }
        t->end = (uint32_t)i;
        cnt++;
    }
    *n = cnt;
}
