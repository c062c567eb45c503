/* Attribute access and the whitelisted methods of built-in types (str, bytes, list, tuple, dict,
 * set, int, float); attributes of objects bound by a connector. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "convert/pyexpr/internal.h"

typedef struct py_mdef {
    int type; /* PT_STR, PT_BYTES (bytes and bytearray), PT_LIST, PT_TUPLE, PT_DICT, PT_SET, PT_INT, PT_FLOAT
               */
    const char *name;
    py_bfn fn;
    int is_static; /* int.from_bytes, bytes.fromhex */
} py_mdef;

static int group(pv v) {
    switch (v.t) {
    case PT_BOOL:
    case PT_BIG:
        return PT_INT;
    case PT_BYTEARRAY:
        return PT_BYTES;
    default:
        return v.t;
    }
}

static void argn(X *x, const py_args *a, const char *fn, size_t min, size_t max) {
    if (a->nkw) py_type_error(x, "%s() takes no keyword arguments", fn);
    if (max == 0 && a->n) py_type_error(x, "%s() takes no arguments (%zu given)", fn, a->n);
    if (min == 1 && max == 1 && a->n != 1)
        py_type_error(x, "%s() takes exactly one argument (%zu given)", fn, a->n);
    if (a->n < min)
        py_type_error(x, "%s expected at least %zu argument%s, got %zu", fn, min, min == 1 ? "" : "s", a->n);
    if (a->n > max)
        py_type_error(x, "%s expected at most %zu argument%s, got %zu", fn, max, max == 1 ? "" : "s", a->n);
}

static const py_str *str_arg(X *x, pv v, const char *fn) {
    if (v.t != PT_STR) py_type_error(x, "%s() argument must be str, not %s", fn, pv_tname(v));
    return v.u.s;
}

/* char index of a byte offset */
static int64_t char_index(const py_str *s, size_t off) {
    return (int64_t)utf8_count(s->s, off);
}

/* ---- str ---- */

static int is_ws(unsigned char c) {
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

static pv s_split_impl(X *x, pv self, const py_args *a, int right) {
    static const char *const kw[] = {"sep", "maxsplit", NULL};
    py_args_max(x, a, right ? "rsplit" : "split", 2, kw);
    const py_str *s = self.u.s;
    int hs, hm;
    pv sep = py_kwarg(x, a, "sep", 0, &hs), mx = py_kwarg(x, a, "maxsplit", 1, &hm);
    int64_t maxsplit = hm ? pv_index(x, mx, "'maxsplit' must be an integer") : -1;
    pv out = pv_list(x, PT_LIST, 0);
    py_step(x, s->n);
    if (!hs || sep.t == PT_NONE) {
        /* runs of whitespace; leading/trailing ignored */
        if (!right) {
            size_t i = 0;
            while (i < s->n) {
                while (i < s->n && is_ws((unsigned char)s->s[i])) i++;
                if (i >= s->n) break;
                if (maxsplit >= 0 && (int64_t)out.u.l->n >= maxsplit) {
                    size_t e = s->n;
                    while (e > i && is_ws((unsigned char)s->s[e - 1])) e--;
                    pv_list_push(x, out.u.l, pv_str(x, s->s + i, e - i));
                    break;
                }
                size_t j = i;
                while (j < s->n && !is_ws((unsigned char)s->s[j])) j++;
                pv_list_push(x, out.u.l, pv_str(x, s->s + i, j - i));
                i = j;
            }
            return out;
        }
        size_t e = s->n;
        while (e > 0) {
            while (e > 0 && is_ws((unsigned char)s->s[e - 1])) e--;
            if (!e) break;
            if (maxsplit >= 0 && (int64_t)out.u.l->n >= maxsplit) {
                size_t b = 0;
                while (b < e && is_ws((unsigned char)s->s[b])) b++;
                pv_list_push(x, out.u.l, pv_str(x, s->s + b, e - b));
                break;
            }
            size_t b = e;
            while (b > 0 && !is_ws((unsigned char)s->s[b - 1])) b--;
            pv_list_push(x, out.u.l, pv_str(x, s->s + b, e - b));
            e = b;
        }
        for (size_t i = 0; i < out.u.l->n / 2; i++) {
            pv t = out.u.l->v[i];
            out.u.l->v[i] = out.u.l->v[out.u.l->n - 1 - i];
            out.u.l->v[out.u.l->n - 1 - i] = t;
        }
        return out;
    }
    const py_str *sp = str_arg(x, sep, "split");
    if (!sp->n) py_raise(x, "ValueError", "empty separator");
    if (!right) {
        size_t i = 0;
        for (;;) {
            const char *hit = maxsplit >= 0 && (int64_t)out.u.l->n >= maxsplit
                                  ? NULL
                                  : memmem(s->s + i, s->n - i, sp->s, sp->n);
            if (!hit) {
                pv_list_push(x, out.u.l, pv_str(x, s->s + i, s->n - i));
                return out;
            }
            pv_list_push(x, out.u.l, pv_str(x, s->s + i, (size_t)(hit - (s->s + i))));
            i = (size_t)(hit - s->s) + sp->n;
        }
    }
    size_t e = s->n;
    for (;;) {
        long found = -1;
        if (!(maxsplit >= 0 && (int64_t)out.u.l->n >= maxsplit))
            for (long k = (long)e - (long)sp->n; k >= 0; k--)
                if (!memcmp(s->s + k, sp->s, sp->n)) {
                    found = k;
                    break;
                }
        if (found < 0) {
            pv_list_push(x, out.u.l, pv_str(x, s->s, e));
            break;
        }
        pv_list_push(x, out.u.l, pv_str(x, s->s + found + sp->n, e - (size_t)found - sp->n));
        e = (size_t)found;
    }
    for (size_t i = 0; i < out.u.l->n / 2; i++) {
        pv t = out.u.l->v[i];
        out.u.l->v[i] = out.u.l->v[out.u.l->n - 1 - i];
        out.u.l->v[out.u.l->n - 1 - i] = t;
    }
    return out;
}

static pv s_split(X *x, pv self, const py_args *a) {
    return s_split_impl(x, self, a, 0);
}
static pv s_rsplit(X *x, pv self, const py_args *a) {
    return s_split_impl(x, self, a, 1);
}

static pv s_join(X *x, pv self, const py_args *a) {
    argn(x, a, "join", 1, 1);
    py_list *it = pv_iter(x, a->v[0]);
    tbgw_buf *b = py_buf(x);
    for (size_t i = 0; i < it->n; i++) {
        pv e = it->v[i];
        if (e.t != PT_STR)
            py_type_error(x, "sequence item %zu: expected str instance, %s found", i, pv_tname(e));
        if (i) tbgw_buf_append(b, self.u.s->s, self.u.s->n);
        tbgw_buf_append(b, e.u.s->s, e.u.s->n);
        py_buf_check(x, b);
    }
    return py_buf_done(x, b);
}

static pv strip_impl(X *x, pv self, const py_args *a, int left, int right, const char *fn) {
    argn(x, a, fn, 0, 1);
    const py_str *s = self.u.s;
    const py_str *chars = a->n && a->v[0].t != PT_NONE ? str_arg(x, a->v[0], fn) : NULL;
    size_t i = 0, e = s->n;
    /* chars: ASCII and whole UTF-8 sequences compared byte-wise per code point */
#define IN_SET(pos, len)                                                                                     \
    (chars ? (memmem(chars->s, chars->n, s->s + (pos), (len)) != NULL) : is_ws((unsigned char)s->s[pos]))
    while (left && i < e) {
        size_t l = 1;
        while (i + l < e && ((unsigned char)s->s[i + l] & 0xC0) == 0x80) l++;
        if (!IN_SET(i, l)) break;
        i += l;
    }
    while (right && e > i) {
        size_t st = e - 1;
        while (st > i && ((unsigned char)s->s[st] & 0xC0) == 0x80) st--;
        if (!IN_SET(st, e - st)) break;
        e = st;
    }
#undef IN_SET
    return pv_str(x, s->s + i, e - i);
}

static pv s_strip(X *x, pv self, const py_args *a) {
    return strip_impl(x, self, a, 1, 1, "strip");
}
static pv s_lstrip(X *x, pv self, const py_args *a) {
    return strip_impl(x, self, a, 1, 0, "lstrip");
}
static pv s_rstrip(X *x, pv self, const py_args *a) {
    return strip_impl(x, self, a, 0, 1, "rstrip");
}

static pv map_case(X *x, pv self, const py_args *a, int mode, const char *fn) {
    argn(x, a, fn, 0, 0);
    const py_str *s = self.u.s;
    tbgw_buf *o = py_buf(x);
    int start = 1;
    for (size_t i = 0; i < s->n;) {
        uint32_t c = py_utf8_next(s->s, s->n, &i), r;
        int letter = py_is_cased_letter(c);
        switch (mode) {
        case 0:
            r = py_lower(c);
            break;
        case 1:
            r = py_upper(c);
            break;
        case 2:
            r = start ? py_upper(c) : py_lower(c);
            break; /* capitalize: first char only */
        case 3:
            r = start ? py_upper(c) : py_lower(c);
            break; /* title: after a non-letter */
        default:
            r = py_upper(c) != c ? py_upper(c) : py_lower(c);
            break; /* swapcase */
        }
        if (c == 0xDF && (mode == 1 || (mode >= 2 && mode <= 3 && start) || mode == 4)) {
            tbgw_buf_puts(o, mode == 1 || mode == 4 ? "SS" : "Ss");
        } else {
            py_put_utf8(o, r);
        }
        start = mode == 2 ? 0 : !letter;
    }
    return py_buf_done(x, o);
}

static pv s_lower(X *x, pv self, const py_args *a) {
    return map_case(x, self, a, 0, "lower");
}
static pv s_upper(X *x, pv self, const py_args *a) {
    return map_case(x, self, a, 1, "upper");
}
static pv s_capitalize(X *x, pv self, const py_args *a) {
    return map_case(x, self, a, 2, "capitalize");
}
static pv s_title(X *x, pv self, const py_args *a) {
    return map_case(x, self, a, 3, "title");
}
static pv s_swapcase(X *x, pv self, const py_args *a) {
    return map_case(x, self, a, 4, "swapcase");
}

static pv s_replace(X *x, pv self, const py_args *a) {
    argn(x, a, "replace", 2, 3);
    const py_str *s = self.u.s, *old = str_arg(x, a->v[0], "replace"), *nw = str_arg(x, a->v[1], "replace");
    int64_t count = a->n > 2 ? pv_index(x, a->v[2], "'count' must be an integer") : -1;
    tbgw_buf *b = py_buf(x);
    size_t i = 0;
    int64_t done = 0;
    if (!old->n) { /* insert between every character */
        for (size_t k = 0; k <= s->n; k++) {
            if (k == s->n || ((unsigned char)s->s[k] & 0xC0) != 0x80) {
                if (count < 0 || done < count) {
                    tbgw_buf_append(b, nw->s, nw->n);
                    done++;
                }
            }
            if (k < s->n) tbgw_buf_putc(b, s->s[k]);
            py_buf_check(x, b);
        }
        return py_buf_done(x, b);
    }
    while (i <= s->n) {
        const char *hit = (count < 0 || done < count) ? memmem(s->s + i, s->n - i, old->s, old->n) : NULL;
        if (!hit) {
            tbgw_buf_append(b, s->s + i, s->n - i);
            break;
        }
        tbgw_buf_append(b, s->s + i, (size_t)(hit - s->s) - i);
        tbgw_buf_append(b, nw->s, nw->n);
        py_buf_check(x, b);
        i = (size_t)(hit - s->s) + old->n;
        done++;
    }
    return py_buf_done(x, b);
}

static int affix_match(X *x, const py_str *s, pv p, int end, const char *fn) {
    if (p.t == PT_TUPLE) {
        for (size_t i = 0; i < p.u.l->n; i++)
            if (affix_match(x, s, p.u.l->v[i], end, fn)) return 1;
        return 0;
    }
    if (p.t != PT_STR)
        py_type_error(x, "%s first arg must be str or a tuple of str, not %s", fn, pv_tname(p));
    if (p.u.s->n > s->n) return 0;
    return !memcmp(end ? s->s + s->n - p.u.s->n : s->s, p.u.s->s, p.u.s->n);
}

static pv s_startswith(X *x, pv self, const py_args *a) {
    argn(x, a, "startswith", 1, 1);
    return pv_bool(affix_match(x, self.u.s, a->v[0], 0, "startswith"));
}
static pv s_endswith(X *x, pv self, const py_args *a) {
    argn(x, a, "endswith", 1, 1);
    return pv_bool(affix_match(x, self.u.s, a->v[0], 1, "endswith"));
}

/* find family over [start, end) given as char indexes */
static int64_t find_impl(X *x, pv self, const py_args *a, int right, const char *fn) {
    argn(x, a, fn, 1, 3);
    const py_str *s = self.u.s, *sub = str_arg(x, a->v[0], fn);
    int64_t len = (int64_t)s->nchars, st = 0, en = len;
    if (a->n > 1 && a->v[1].t != PT_NONE) st = pv_index(x, a->v[1], "slice indices must be integers or None");
    if (a->n > 2 && a->v[2].t != PT_NONE) en = pv_index(x, a->v[2], "slice indices must be integers or None");
    if (st < 0) st = st + len < 0 ? 0 : st + len;
    if (en < 0) en = en + len < 0 ? 0 : en + len;
    if (en > len) en = len;
    if (st > len || st > en) return -1;
    /* byte offsets of st/en */
    size_t bs = 0, be = 0;
    int64_t ci = 0;
    for (size_t i = 0; i <= s->n; i++) {
        if (i == s->n || ((unsigned char)s->s[i] & 0xC0) != 0x80) {
            if (ci == st) bs = i;
            if (ci == en) be = i;
            ci++;
        }
    }
    if (sub->n > be - bs) return -1;
    if (!right) {
        const char *hit = sub->n ? memmem(s->s + bs, be - bs, sub->s, sub->n) : s->s + bs;
        return hit ? char_index(s, (size_t)(hit - s->s)) : -1;
    }
    for (size_t k = be - sub->n + 1; k-- > bs;)
        if (!memcmp(s->s + k, sub->s, sub->n)) return char_index(s, k);
    return -1;
}

static pv s_find(X *x, pv self, const py_args *a) {
    return pv_int(find_impl(x, self, a, 0, "find"));
}
static pv s_rfind(X *x, pv self, const py_args *a) {
    return pv_int(find_impl(x, self, a, 1, "rfind"));
}
static pv s_index(X *x, pv self, const py_args *a) {
    int64_t r = find_impl(x, self, a, 0, "index");
    if (r < 0) py_raise(x, "ValueError", "substring not found");
    return pv_int(r);
}
static pv s_rindex(X *x, pv self, const py_args *a) {
    int64_t r = find_impl(x, self, a, 1, "rindex");
    if (r < 0) py_raise(x, "ValueError", "substring not found");
    return pv_int(r);
}

static pv s_count(X *x, pv self, const py_args *a) {
    argn(x, a, "count", 1, 1);
    const py_str *s = self.u.s, *sub = str_arg(x, a->v[0], "count");
    if (!sub->n) return pv_int((int64_t)s->nchars + 1);
    int64_t n = 0;
    for (size_t i = 0; i + sub->n <= s->n;) {
        const char *hit = memmem(s->s + i, s->n - i, sub->s, sub->n);
        if (!hit) break;
        n++;
        i = (size_t)(hit - s->s) + sub->n;
    }
    return pv_int(n);
}

static pv s_format(X *x, pv self, const py_args *a) {
    return py_str_format(x, self, a->v, a->n, a->kwn, a->kwv, a->nkw);
}

static pv pad(X *x, pv self, const py_args *a, int how, const char *fn) {
    argn(x, a, fn, 1, 2);
    int64_t w = pv_index(x, a->v[0], "integer argument expected");
    const char *fill = " ";
    size_t fl = 1;
    if (a->n > 1) {
        const py_str *f = str_arg(x, a->v[1], fn);
        if (f->nchars != 1) py_type_error(x, "The fill character must be exactly one character long");
        fill = f->s;
        fl = f->n;
    }
    const py_str *s = self.u.s;
    if (w <= (int64_t)s->nchars) return self;
    if (x->mem.limit && (uint64_t)w > x->mem.limit) py_oom(x);
    size_t total = (size_t)w - s->nchars, left = how == 0   ? 0
                                                 : how == 1 ? total
                                                            : total / 2 + (total & (size_t)w & 1);
    tbgw_buf *b = py_buf(x);
    for (size_t i = 0; i < left; i++) tbgw_buf_append(b, fill, fl);
    tbgw_buf_append(b, s->s, s->n);
    for (size_t i = left; i < total; i++) tbgw_buf_append(b, fill, fl);
    return py_buf_done(x, b);
}

static pv s_ljust(X *x, pv self, const py_args *a) {
    return pad(x, self, a, 0, "ljust");
}
static pv s_rjust(X *x, pv self, const py_args *a) {
    return pad(x, self, a, 1, "rjust");
}
static pv s_center(X *x, pv self, const py_args *a) {
    return pad(x, self, a, 2, "center");
}

static pv s_zfill(X *x, pv self, const py_args *a) {
    argn(x, a, "zfill", 1, 1);
    int64_t w = pv_index(x, a->v[0], "integer argument expected");
    const py_str *s = self.u.s;
    if (w <= (int64_t)s->nchars) return self;
    if (x->mem.limit && (uint64_t)w > x->mem.limit) py_oom(x);
    size_t fill = (size_t)w - s->nchars;
    tbgw_buf *b = py_buf(x);
    size_t i = 0;
    if (s->n && (s->s[0] == '+' || s->s[0] == '-')) {
        tbgw_buf_putc(b, s->s[0]);
        i = 1;
    }
    for (size_t k = 0; k < fill; k++) tbgw_buf_putc(b, '0');
    tbgw_buf_append(b, s->s + i, s->n - i);
    return py_buf_done(x, b);
}

static pv char_class(X *x, pv self, const py_args *a, int (*pred)(int), const char *fn) {
    argn(x, a, fn, 0, 0);
    const py_str *s = self.u.s;
    if (!s->n) return pv_bool(0);
    int letters = pred == isalpha || pred == isalnum;
    for (size_t i = 0; i < s->n;) {
        uint32_t c = py_utf8_next(s->s, s->n, &i);
        if (c >= 0x80 ? !(letters && py_is_cased_letter(c)) : !pred((int)c)) return pv_bool(0);
    }
    return pv_bool(1);
}

static int is_space_c(int c) {
    return is_ws((unsigned char)c);
}
static pv s_isdigit(X *x, pv self, const py_args *a) {
    return char_class(x, self, a, isdigit, "isdigit");
}
static pv s_isalpha(X *x, pv self, const py_args *a) {
    return char_class(x, self, a, isalpha, "isalpha");
}
static pv s_isalnum(X *x, pv self, const py_args *a) {
    return char_class(x, self, a, isalnum, "isalnum");
}
static pv s_isspace(X *x, pv self, const py_args *a) {
    return char_class(x, self, a, is_space_c, "isspace");
}

static pv case_check(X *x, pv self, const py_args *a, int upper, const char *fn) {
    argn(x, a, fn, 0, 0);
    int cased = 0;
    const py_str *s = self.u.s;
    for (size_t i = 0; i < s->n;) {
        uint32_t c = py_utf8_next(s->s, s->n, &i);
        if (!py_is_cased_letter(c)) continue;
        int is_lower = py_upper(c) != c || c == 0xDF, is_upper = py_lower(c) != c;
        if (upper ? is_lower : is_upper) return pv_bool(0);
        cased = 1;
    }
    return pv_bool(cased);
}
static pv s_islower(X *x, pv self, const py_args *a) {
    return case_check(x, self, a, 0, "islower");
}
static pv s_isupper(X *x, pv self, const py_args *a) {
    return case_check(x, self, a, 1, "isupper");
}

static pv partition_impl(X *x, pv self, const py_args *a, int right) {
    argn(x, a, right ? "rpartition" : "partition", 1, 1);
    const py_str *s = self.u.s, *sep = str_arg(x, a->v[0], "partition");
    if (!sep->n) py_raise(x, "ValueError", "empty separator");
    long at = -1;
    if (!right) {
        const char *h = memmem(s->s, s->n, sep->s, sep->n);
        if (h) at = h - s->s;
    } else {
        for (long k = (long)s->n - (long)sep->n; k >= 0; k--)
            if (!memcmp(s->s + k, sep->s, sep->n)) {
                at = k;
                break;
            }
    }
    pv t = pv_list(x, PT_TUPLE, 3);
    t.u.l->n = 3;
    pv empty = pv_str(x, "", 0);
    if (at < 0) {
        t.u.l->v[0] = right ? empty : self;
        t.u.l->v[1] = empty;
        t.u.l->v[2] = right ? self : empty;
        return t;
    }
    t.u.l->v[0] = pv_str(x, s->s, (size_t)at);
    t.u.l->v[1] = a->v[0];
    t.u.l->v[2] = pv_str(x, s->s + at + sep->n, s->n - (size_t)at - sep->n);
    return t;
}
static pv s_partition(X *x, pv self, const py_args *a) {
    return partition_impl(x, self, a, 0);
}
static pv s_rpartition(X *x, pv self, const py_args *a) {
    return partition_impl(x, self, a, 1);
}

static pv s_splitlines(X *x, pv self, const py_args *a) {
    argn(x, a, "splitlines", 0, 1);
    int keep = a->n && pv_truthy(x, a->v[0]);
    const py_str *s = self.u.s;
    pv out = pv_list(x, PT_LIST, 0);
    size_t i = 0;
    while (i < s->n) {
        size_t j = i;
        while (j < s->n && !strchr("\n\r\v\f\x1c\x1d\x1e", s->s[j])) j++;
        size_t e = j;
        if (j < s->n) j += (s->s[j] == '\r' && j + 1 < s->n && s->s[j + 1] == '\n') ? 2 : 1;
        pv_list_push(x, out.u.l, pv_str(x, s->s + i, (keep ? j : e) - i));
        i = j;
    }
    return out;
}

static pv affix_remove(X *x, pv self, const py_args *a, int suffix) {
    argn(x, a, suffix ? "removesuffix" : "removeprefix", 1, 1);
    const py_str *s = self.u.s, *p = str_arg(x, a->v[0], suffix ? "removesuffix" : "removeprefix");
    if (p->n > s->n || memcmp(suffix ? s->s + s->n - p->n : s->s, p->s, p->n) || !p->n) return self;
    return suffix ? pv_str(x, s->s, s->n - p->n) : pv_str(x, s->s + p->n, s->n - p->n);
}
static pv s_removeprefix(X *x, pv self, const py_args *a) {
    return affix_remove(x, self, a, 0);
}
static pv s_removesuffix(X *x, pv self, const py_args *a) {
    return affix_remove(x, self, a, 1);
}

static int codec(X *x, pv enc) {
    if (enc.t == PT_NONE) return 0;
    if (enc.t != PT_STR) py_type_error(x, "encoding must be str, not %s", pv_tname(enc));
    char n[32];
    size_t k = 0;
    for (size_t i = 0; i < enc.u.s->n && k < sizeof n - 1; i++) {
        char c = (char)tolower((unsigned char)enc.u.s->s[i]);
        if (c != '-' && c != '_') n[k++] = c;
    }
    n[k] = 0;
    if (!strcmp(n, "utf8") || !strcmp(n, "u8")) return 0;
    if (!strcmp(n, "ascii") || !strcmp(n, "usascii")) return 1;
    if (!strcmp(n, "latin1") || !strcmp(n, "iso88591") || !strcmp(n, "l1")) return 2;
    py_raise(x, "LookupError", "unknown encoding: %s", enc.u.s->s);
}

static int err_mode(X *x, pv errors) {
    if (errors.t != PT_STR) return 0;
    if (!strcmp(errors.u.s->s, "ignore")) return 1;
    if (!strcmp(errors.u.s->s, "replace")) return 2;
    return 0;
}

pv py_encode(X *x, pv s, pv enc, pv errors) {
    int c = codec(x, enc), em = err_mode(x, errors);
    const py_str *str = s.u.s;
    if (c == 0) return pv_bytes(x, PT_BYTES, str->s, str->n);
    unsigned char *o = py_alloc(x, str->n + 1);
    size_t k = 0, ci = 0;
    for (size_t i = 0; i < str->n; ci++) {
        unsigned char b = (unsigned char)str->s[i];
        uint32_t cp = b;
        size_t l = 1;
        if (b >= 0xF0)
            cp = b & 7u, l = 4;
        else if (b >= 0xE0)
            cp = b & 15u, l = 3;
        else if (b >= 0xC0)
            cp = b & 31u, l = 2;
        for (size_t j = 1; j < l; j++) cp = cp << 6 | ((unsigned char)str->s[i + j] & 0x3Fu);
        uint32_t lim = c == 1 ? 0x80 : 0x100;
        if (cp < lim) {
            o[k++] = (unsigned char)cp;
        } else if (em == 2) {
            o[k++] = '?';
        } else if (em == 0) {
            py_raise(x, "UnicodeEncodeError",
                     "'%s' codec can't encode character '\\x%02x' in position %zu: ordinal not in range(%u)",
                     c == 1 ? "ascii" : "latin-1", cp, ci, lim);
        }
        i += l;
    }
    return pv_bytes(x, PT_BYTES, o, k);
}

pv py_decode(X *x, pv bv, pv enc, pv errors) {
    int c = codec(x, enc), em = err_mode(x, errors);
    const py_bytes *b = bv.u.b;
    tbgw_buf *o = py_buf(x);
    for (size_t i = 0; i < b->n;) {
        unsigned char ch = b->b[i];
        if (c == 2 || ch < 0x80) {
            if (ch < 0x80) {
                tbgw_buf_putc(o, (char)ch);
            } else {
                tbgw_buf_putc(o, (char)(0xC0 | ch >> 6));
                tbgw_buf_putc(o, (char)(0x80 | (ch & 0x3F)));
            }
            i++;
            continue;
        }
        size_t l = 0;
        const char *why = "invalid start byte";
        if (c == 0) {
            size_t need = ch >= 0xC2 && ch <= 0xDF   ? 2
                          : ch >= 0xE0 && ch <= 0xEF ? 3
                          : ch >= 0xF0 && ch <= 0xF4 ? 4
                                                     : 0;
            if (need) {
                size_t j = 1;
                for (; j < need && i + j < b->n; j++) {
                    unsigned char cc = b->b[i + j];
                    int ok = (cc & 0xC0) == 0x80;
                    if (j == 1 && ch == 0xE0 && cc < 0xA0) ok = 0;
                    if (j == 1 && ch == 0xED && cc > 0x9F) ok = 0;
                    if (j == 1 && ch == 0xF0 && cc < 0x90) ok = 0;
                    if (j == 1 && ch == 0xF4 && cc > 0x8F) ok = 0;
                    if (!ok) break;
                }
                if (j == need)
                    l = need;
                else
                    why = i + j >= b->n ? "unexpected end of data" : "invalid continuation byte";
            }
        } else {
            why = "ordinal not in range(128)";
        }
        if (l) {
            tbgw_buf_append(o, b->b + i, l);
            i += l;
            continue;
        }
        if (em == 0)
            py_raise(x, "UnicodeDecodeError", "'%s' codec can't decode byte 0x%02x in position %zu: %s",
                     c == 1 ? "ascii" : "utf-8", ch, i, why);
        if (em == 2) tbgw_buf_puts(o, "\xEF\xBF\xBD");
        i++;
    }
    return py_buf_done(x, o);
}

static pv s_encode(X *x, pv self, const py_args *a) {
    static const char *const kw[] = {"encoding", "errors", NULL};
    py_args_max(x, a, "encode", 2, kw);
    int he, hr;
    pv enc = py_kwarg(x, a, "encoding", 0, &he), err = py_kwarg(x, a, "errors", 1, &hr);
    return py_encode(x, self, he ? enc : pv_none(), hr ? err : pv_none());
}

/* ---- bytes ---- */

static pv b_decode(X *x, pv self, const py_args *a) {
    static const char *const kw[] = {"encoding", "errors", NULL};
    py_args_max(x, a, "decode", 2, kw);
    int he, hr;
    pv enc = py_kwarg(x, a, "encoding", 0, &he), err = py_kwarg(x, a, "errors", 1, &hr);
    return py_decode(x, self, he ? enc : pv_none(), hr ? err : pv_none());
}

static pv b_hex(X *x, pv self, const py_args *a) {
    static const char *const kw[] = {"sep", "bytes_per_sep", NULL};
    py_args_max(x, a, "hex", 2, kw);
    int hs, hb;
    pv sep = py_kwarg(x, a, "sep", 0, &hs), bps = py_kwarg(x, a, "bytes_per_sep", 1, &hb);
    const py_bytes *b = self.u.b;
    const char *sp = NULL;
    if (hs) {
        if (sep.t == PT_STR && sep.u.s->n == 1)
            sp = sep.u.s->s;
        else if ((sep.t == PT_BYTES) && sep.u.b->n == 1)
            sp = (const char *)sep.u.b->b;
        else
            py_raise(x, "ValueError", "sep must be length 1.");
    }
    int64_t per = hb ? pv_index(x, bps, "bytes_per_sep must be an integer") : 1;
    if (per == 0) sp = NULL;
    uint64_t ap = per < 0 ? (uint64_t)0 - (uint64_t)per : (uint64_t)per;
    tbgw_buf *o = py_buf(x);
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < b->n; i++) {
        if (sp && i) {
            /* groups counted from the right for positive counts, from the left for negative */
            size_t pos = per > 0 ? b->n - i : i;
            if (pos % ap == 0) tbgw_buf_putc(o, *sp);
        }
        tbgw_buf_putc(o, hx[b->b[i] >> 4]);
        tbgw_buf_putc(o, hx[b->b[i] & 15]);
    }
    return py_buf_done(x, o);
}

static pv b_fromhex(X *x, pv self, const py_args *a) {
    argn(x, a, "fromhex", 1, 1);
    const py_str *s = str_arg(x, a->v[0], "fromhex");
    unsigned char *o = py_alloc(x, s->n / 2 + 1);
    size_t k = 0;
    for (size_t i = 0; i < s->n;) {
        if (is_ws((unsigned char)s->s[i])) {
            i++;
            continue;
        }
        int h = isxdigit((unsigned char)s->s[i]) ? s->s[i] : -1;
        int l = i + 1 < s->n && isxdigit((unsigned char)s->s[i + 1]) ? s->s[i + 1] : -1;
        if (h < 0 || l < 0)
            py_raise(x, "ValueError", "non-hexadecimal number found in fromhex() arg at position %zu",
                     h < 0 ? i : i + 1);
        o[k++] = (unsigned char)(strtol((char[]){(char)h, (char)l, 0}, NULL, 16));
        i += 2;
    }
    pv r = pv_bytes(x, PT_BYTES, o, k);
    if (self.t == PT_BUILTIN && py_builtins[self.u.i].type == PT_BYTEARRAY) r.t = PT_BYTEARRAY;
    return r;
}

static pv b_count(X *x, pv self, const py_args *a) {
    argn(x, a, "count", 1, 1);
    const py_bytes *b = self.u.b;
    pv sub = a->v[0];
    if (pv_is_int(sub)) {
        int64_t n = 0;
        for (size_t i = 0; i < b->n; i++) n += b->b[i] == sub.u.i;
        return pv_int(n);
    }
    if (sub.t != PT_BYTES && sub.t != PT_BYTEARRAY)
        py_type_error(x, "argument should be integer or bytes-like object, not '%s'", pv_tname(sub));
    if (!sub.u.b->n) return pv_int((int64_t)b->n + 1);
    int64_t n = 0;
    for (size_t i = 0; i + sub.u.b->n <= b->n;) {
        const unsigned char *h = memmem(b->b + i, b->n - i, sub.u.b->b, sub.u.b->n);
        if (!h) break;
        n++;
        i = (size_t)(h - b->b) + sub.u.b->n;
    }
    return pv_int(n);
}

static pv b_find(X *x, pv self, const py_args *a) {
    argn(x, a, "find", 1, 1);
    const py_bytes *b = self.u.b;
    pv sub = a->v[0];
    if (pv_is_int(sub)) {
        const unsigned char *h = memchr(b->b, (int)sub.u.i, b->n);
        return pv_int(h ? h - b->b : -1);
    }
    if (sub.t != PT_BYTES && sub.t != PT_BYTEARRAY)
        py_type_error(x, "argument should be integer or bytes-like object, not '%s'", pv_tname(sub));
    const unsigned char *h = sub.u.b->n ? memmem(b->b, b->n, sub.u.b->b, sub.u.b->n) : b->b;
    return pv_int(h ? h - b->b : -1);
}

/* ---- list / tuple / dict / set ---- */

static pv l_index(X *x, pv self, const py_args *a) {
    argn(x, a, "index", 1, 1);
    for (size_t i = 0; i < self.u.l->n; i++)
        if (pv_eq(x, self.u.l->v[i], a->v[0])) return pv_int((int64_t)i);
    if (self.t == PT_TUPLE) py_raise(x, "ValueError", "tuple.index(x): x not in tuple");
    tbgw_buf *b = py_buf(x);
    pv_repr(x, a->v[0], b);
    pv r = py_buf_done(x, b);
    py_raise(x, "ValueError", "%s is not in list", r.u.s->s);
}

static pv l_count(X *x, pv self, const py_args *a) {
    argn(x, a, "count", 1, 1);
    int64_t n = 0;
    for (size_t i = 0; i < self.u.l->n; i++) n += pv_eq(x, self.u.l->v[i], a->v[0]);
    return pv_int(n);
}

static pv l_copy(X *x, pv self, const py_args *a) {
    argn(x, a, "copy", 0, 0);
    pv r = pv_list(x, PT_LIST, self.u.l->n);
    memcpy(r.u.l->v, self.u.l->v, self.u.l->n * sizeof(pv));
    r.u.l->n = self.u.l->n;
    return r;
}

static pv d_get(X *x, pv self, const py_args *a) {
    argn(x, a, "get", 1, 2);
    pv v;
    if (py_dict_get(x, self.u.d, a->v[0], &v)) return v;
    return a->n > 1 ? a->v[1] : pv_none();
}

static pv d_view(X *x, pv self, int which, const char *kind) {
    const py_dict *d = self.u.d;
    pv r = pv_list(x, PT_ITER, d->n);
    r.u.l->kind = kind;
    py_step(x, d->n);
    for (size_t i = 0; i < d->n; i++)
        r.u.l->v[i] = which == 0 ? d->k[i] : which == 1 ? d->v[i] : pv_tuple2(x, d->k[i], d->v[i]);
    r.u.l->n = d->n;
    return r;
}

static pv d_keys(X *x, pv self, const py_args *a) {
    argn(x, a, "keys", 0, 0);
    return d_view(x, self, 0, "dict_keys");
}
static pv d_values(X *x, pv self, const py_args *a) {
    argn(x, a, "values", 0, 0);
    return d_view(x, self, 1, "dict_values");
}
static pv d_items(X *x, pv self, const py_args *a) {
    argn(x, a, "items", 0, 0);
    return d_view(x, self, 2, "dict_items");
}

static pv d_copy(X *x, pv self, const py_args *a) {
    argn(x, a, "copy", 0, 0);
    pv r = pv_dict(x, self.t);
    for (size_t i = 0; i < self.u.d->n; i++)
        py_dict_set(x, r.u.d, self.u.d->k[i], self.t == PT_DICT ? self.u.d->v[i] : pv_none());
    return r;
}

static pv set_method(X *x, pv self, const py_args *a, int op, const char *fn) {
    pv acc = self;
    for (size_t i = 0; i < a->n; i++) {
        pv o = a->v[i];
        if (o.t != PT_SET) {
            pv s = pv_dict(x, PT_SET);
            py_list *it = pv_iter(x, o);
            for (size_t j = 0; j < it->n; j++) py_dict_set(x, s.u.d, it->v[j], pv_none());
            o = s;
        }
        acc = py_binop(x, op, acc, o);
    }
    if (!a->n) {
        py_args none = {0};
        return d_copy(x, self, &none);
    }
    (void)fn;
    return acc;
}

static pv st_union(X *x, pv self, const py_args *a) {
    return set_method(x, self, a, OP_OR, "union");
}
static pv st_intersection(X *x, pv self, const py_args *a) {
    return set_method(x, self, a, OP_AND, "intersection");
}
static pv st_difference(X *x, pv self, const py_args *a) {
    return set_method(x, self, a, OP_SUB, "difference");
}
static pv st_issubset(X *x, pv self, const py_args *a) {
    argn(x, a, "issubset", 1, 1);
    py_list *it = pv_iter(x, a->v[0]);
    pv s = pv_dict(x, PT_SET);
    for (size_t j = 0; j < it->n; j++) py_dict_set(x, s.u.d, it->v[j], pv_none());
    for (size_t i = 0; i < self.u.d->n; i++)
        if (!py_dict_get(x, s.u.d, self.u.d->k[i], NULL)) return pv_bool(0);
    return pv_bool(1);
}
static pv st_issuperset(X *x, pv self, const py_args *a) {
    argn(x, a, "issuperset", 1, 1);
    py_list *it = pv_iter(x, a->v[0]);
    for (size_t j = 0; j < it->n; j++)
        if (!py_dict_get(x, self.u.d, it->v[j], NULL)) return pv_bool(0);
    return pv_bool(1);
}

/* ---- int / float ---- */

static int byteorder(X *x, pv v, int given) {
    if (!given) return 1;
    if (v.t != PT_STR) py_type_error(x, "to_bytes() argument 'byteorder' must be str, not %s", pv_tname(v));
    if (!strcmp(v.u.s->s, "big")) return 1;
    if (!strcmp(v.u.s->s, "little")) return 0;
    py_raise(x, "ValueError", "byteorder must be either 'little' or 'big'");
}

static pv i_from_bytes(X *x, pv self, const py_args *a) {
    static const char *const kw[] = {"bytes", "byteorder", "signed", NULL};
    py_args_max(x, a, "from_bytes", 2, kw);
    int hb, ho, hs;
    pv b = py_kwarg(x, a, "bytes", 0, &hb), o = py_kwarg(x, a, "byteorder", 1, &ho),
       sg = py_kwarg(x, a, "signed", -1, &hs);
    if (!hb) py_type_error(x, "from_bytes() missing required argument 'bytes' (pos 1)");
    int big = byteorder(x, o, ho), sgn = hs && pv_truthy(x, sg);
    const unsigned char *p;
    size_t n;
    if (b.t == PT_BYTES || b.t == PT_BYTEARRAY) {
        p = b.u.b->b;
        n = b.u.b->n;
    } else {
        py_args one = {&b, 1, NULL, NULL, 0};
        int bi = py_builtin_find("bytes");
        pv conv = py_builtins[bi].fn(x, pv_none(), &one);
        p = conv.u.b->b;
        n = conv.u.b->n;
    }
    pv r = pv_int(0);
    int h;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = big ? p[i] : p[n - 1 - i];
        r = num_binop(x, OP_OR, num_binop(x, OP_LSHIFT, r, pv_int(8), &h), pv_int(c), &h);
    }
    if (sgn && n && (big ? p[0] : p[n - 1]) & 0x80)
        r = num_binop(x, OP_SUB, r, num_binop(x, OP_LSHIFT, pv_int(1), pv_int((int64_t)n * 8), &h), &h);
    return r;
}

static pv i_to_bytes(X *x, pv self, const py_args *a) {
    static const char *const kw[] = {"length", "byteorder", "signed", NULL};
    py_args_max(x, a, "to_bytes", 2, kw);
    int hl, ho, hs;
    pv l = py_kwarg(x, a, "length", 0, &hl), o = py_kwarg(x, a, "byteorder", 1, &ho),
       sg = py_kwarg(x, a, "signed", -1, &hs);
    int64_t len = hl ? pv_index(x, l, "'length' must be an integer") : 1;
    if (len < 0) py_raise(x, "ValueError", "length argument must be non-negative");
    if (x->mem.limit && (uint64_t)len > x->mem.limit) py_oom(x);
    int big = byteorder(x, o, ho), sgn = hs && pv_truthy(x, sg);
    int h;
    if (!sgn && num_cmp(x, self, pv_int(0)) < 0)
        py_raise(x, "OverflowError", "can't convert negative int to unsigned");
    pv lim = num_binop(x, OP_LSHIFT, pv_int(1),
                       pv_int(len * 8 - (sgn ? 1 : 0) < 0 ? 0 : len * 8 - (sgn ? 1 : 0)), &h);
    pv nlim = num_unary(x, UOP_NEG, lim);
    if (num_cmp(x, self, lim) >= 0 || (sgn && num_cmp(x, self, nlim) < 0) || (len == 0 && pv_truthy(x, self)))
        py_raise(x, "OverflowError", "int too big to convert");
    pv v = self;
    if (num_cmp(x, v, pv_int(0)) < 0)
        v = num_binop(x, OP_ADD, v, num_binop(x, OP_LSHIFT, pv_int(1), pv_int(len * 8), &h), &h);
    unsigned char *out = py_alloc(x, (size_t)len + 1);
    for (int64_t i = 0; i < len; i++) {
        pv byte = num_binop(x, OP_AND, v, pv_int(255), &h);
        out[big ? len - 1 - i : i] = (unsigned char)byte.u.i;
        v = num_binop(x, OP_RSHIFT, v, pv_int(8), &h);
    }
    return pv_bytes(x, PT_BYTES, out, (size_t)len);
}

static pv i_bit_length(X *x, pv self, const py_args *a) {
    argn(x, a, "bit_length", 0, 0);
    return pv_int((int64_t)big_bits(big_of(x, self)));
}

static pv f_is_integer(X *x, pv self, const py_args *a) {
    argn(x, a, "is_integer", 0, 0);
    return pv_bool(isfinite(self.u.f) && self.u.f == floor(self.u.f));
}

static const py_mdef methods[] = {
    {PT_STR, "capitalize", s_capitalize, 0},
    {PT_STR, "center", s_center, 0},
    {PT_STR, "count", s_count, 0},
    {PT_STR, "encode", s_encode, 0},
    {PT_STR, "endswith", s_endswith, 0},
    {PT_STR, "find", s_find, 0},
    {PT_STR, "format", s_format, 0},
    {PT_STR, "index", s_index, 0},
    {PT_STR, "isalnum", s_isalnum, 0},
    {PT_STR, "isalpha", s_isalpha, 0},
    {PT_STR, "isdecimal", s_isdigit, 0},
    {PT_STR, "isdigit", s_isdigit, 0},
    {PT_STR, "islower", s_islower, 0},
    {PT_STR, "isnumeric", s_isdigit, 0},
    {PT_STR, "isspace", s_isspace, 0},
    {PT_STR, "isupper", s_isupper, 0},
    {PT_STR, "join", s_join, 0},
    {PT_STR, "ljust", s_ljust, 0},
    {PT_STR, "lower", s_lower, 0},
    {PT_STR, "lstrip", s_lstrip, 0},
    {PT_STR, "partition", s_partition, 0},
    {PT_STR, "removeprefix", s_removeprefix, 0},
    {PT_STR, "removesuffix", s_removesuffix, 0},
    {PT_STR, "replace", s_replace, 0},
    {PT_STR, "rfind", s_rfind, 0},
    {PT_STR, "rindex", s_rindex, 0},
    {PT_STR, "rjust", s_rjust, 0},
    {PT_STR, "rpartition", s_rpartition, 0},
    {PT_STR, "rsplit", s_rsplit, 0},
    {PT_STR, "rstrip", s_rstrip, 0},
    {PT_STR, "split", s_split, 0},
    {PT_STR, "splitlines", s_splitlines, 0},
    {PT_STR, "startswith", s_startswith, 0},
    {PT_STR, "strip", s_strip, 0},
    {PT_STR, "swapcase", s_swapcase, 0},
    {PT_STR, "title", s_title, 0},
    {PT_STR, "upper", s_upper, 0},
    {PT_STR, "zfill", s_zfill, 0},
    {PT_BYTES, "count", b_count, 0},
    {PT_BYTES, "decode", b_decode, 0},
    {PT_BYTES, "find", b_find, 0},
    {PT_BYTES, "fromhex", b_fromhex, 1},
    {PT_BYTES, "hex", b_hex, 0},
    {PT_LIST, "copy", l_copy, 0},
    {PT_LIST, "count", l_count, 0},
    {PT_LIST, "index", l_index, 0},
    {PT_TUPLE, "count", l_count, 0},
    {PT_TUPLE, "index", l_index, 0},
    {PT_DICT, "copy", d_copy, 0},
    {PT_DICT, "get", d_get, 0},
    {PT_DICT, "items", d_items, 0},
    {PT_DICT, "keys", d_keys, 0},
    {PT_DICT, "values", d_values, 0},
    {PT_SET, "copy", d_copy, 0},
    {PT_SET, "difference", st_difference, 0},
    {PT_SET, "intersection", st_intersection, 0},
    {PT_SET, "issubset", st_issubset, 0},
    {PT_SET, "issuperset", st_issuperset, 0},
    {PT_SET, "union", st_union, 0},
    {PT_INT, "bit_length", i_bit_length, 0},
    {PT_INT, "from_bytes", i_from_bytes, 1},
    {PT_INT, "to_bytes", i_to_bytes, 0},
    {PT_FLOAT, "is_integer", f_is_integer, 0},
};
static const size_t nmethods = sizeof methods / sizeof methods[0];

static int find_method(int type, const char *name) {
    for (size_t i = 0; i < nmethods; i++)
        if (methods[i].type == type && !strcmp(methods[i].name, name)) return (int)i;
    return -1;
}

pv py_getattr(X *x, pv obj, const char *name) {
    if (obj.t == PT_OBJ) {
        const py_obj *o = obj.u.o;
        for (size_t i = 0; i < o->n; i++)
            if (!strcmp(o->names[i], name)) return o->vals[i];
        py_raise(x, "AttributeError", "'%s' object has no attribute '%s'", o->type, name);
    }
    int type = obj.t == PT_BUILTIN ? py_builtins[obj.u.i].type : group(obj);
    if (obj.t == PT_BUILTIN && type == PT_BYTEARRAY) type = PT_BYTES;
    int m = type >= 0 ? find_method(type, name) : -1;
    if (m < 0 || (obj.t != PT_BUILTIN && methods[m].is_static && 0)) {
        if (obj.t == PT_BUILTIN && py_builtins[obj.u.i].type >= 0)
            py_raise(x, "AttributeError", "type object '%s' has no attribute '%s'", py_builtins[obj.u.i].name,
                     name);
        py_raise(x, "AttributeError", "'%s' object has no attribute '%s'", pv_tname(obj), name);
    }
    py_method *pm = py_alloc(x, sizeof *pm);
    pm->self = obj;
    pm->id = m;
    return pv_ptr(PT_METHOD, pm);
}

pv py_call(X *x, pv fn, const py_args *a) {
    py_step(x, 1);
    switch (fn.t) {
    case PT_BUILTIN:
        return py_builtins[fn.u.i].fn(x, fn, a);
    case PT_FUNC:
        return py_call_lambda(x, fn.u.fn, a);
    case PT_METHOD: {
        const py_mdef *m = &methods[fn.u.m->id];
        pv self = fn.u.m->self;
        if (self.t == PT_BUILTIN && !m->is_static) { /* unbound: str.upper(s) */
            if (!a->n || group(a->v[0]) != m->type)
                py_type_error(x, "descriptor '%s' for '%s' objects doesn't apply to a '%s' object", m->name,
                              py_builtins[self.u.i].name, a->n ? pv_tname(a->v[0]) : "NoneType");
            py_args rest = {a->v + 1, a->n - 1, a->kwn, a->kwv, a->nkw};
            return m->fn(x, a->v[0], &rest);
        }
        return m->fn(x, self, a);
    }
    default:
        py_type_error(x, "'%s' object is not callable", pv_tname(fn));
    }
}
