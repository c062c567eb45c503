/* Arena, errors and the generic value operations (type names, truth, equality, hashing, ordering,
 * repr/str, dicts and sets, iteration). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "convert/pyexpr/internal.h"

struct py_chunk {
    py_chunk *next;
    size_t size, off;
    max_align_t data[];
};

void py_arena_init(py_arena *a, size_t limit, size_t chunk) {
    a->head = NULL;
    a->used = 0;
    a->limit = limit;
    a->chunk = chunk;
}

void py_arena_reset(py_arena *a) {
    py_chunk *c = a->head;
    while (c && c->next) {
        py_chunk *n = c->next;
        free(c);
        c = n;
    }
    /* keep the last (oldest) chunk when it has the standard size */
    if (c && c->size != a->chunk) {
        free(c);
        c = NULL;
    }
    if (c) c->off = 0;
    a->head = c;
    a->used = 0;
}

void py_arena_free(py_arena *a) {
    py_chunk *c = a->head;
    while (c) {
        py_chunk *n = c->next;
        free(c);
        c = n;
    }
    a->head = NULL;
    a->used = 0;
}

void *py_arena_alloc(py_arena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    if (a->limit && (n > a->limit || a->used + n > a->limit)) return NULL;
    py_chunk *c = a->head;
    if (!c || c->size - c->off < n) {
        size_t sz = n > a->chunk / 4 ? n : a->chunk;
        c = malloc(sizeof *c + sz);
        if (!c) return NULL;
        c->size = sz;
        c->off = 0;
        if (sz == a->chunk || !a->head) {
            c->next = a->head;
            a->head = c;
        } else { /* a big block: keep the current chunk in front for small allocations */
            c->next = a->head->next;
            a->head->next = c;
        }
    }
    void *p = (char *)c->data + c->off;
    c->off += n;
    a->used += n;
    return p;
}

/* ---- errors ---- */

void py_raise(X *x, const char *exc, const char *fmt, ...) {
    va_list ap;
    int k = snprintf(x->errmsg, sizeof x->errmsg, "%s: ", exc);
    va_start(ap, fmt);
    vsnprintf(x->errmsg + k, sizeof x->errmsg - (size_t)k, fmt, ap);
    va_end(ap);
    longjmp(*x->jb, 1);
}

void py_type_error(X *x, const char *fmt, ...) {
    va_list ap;
    int k = snprintf(x->errmsg, sizeof x->errmsg, "TypeError: ");
    va_start(ap, fmt);
    vsnprintf(x->errmsg + k, sizeof x->errmsg - (size_t)k, fmt, ap);
    va_end(ap);
    longjmp(*x->jb, 1);
}

void py_oom(X *x) {
    py_raise(x, "MemoryError", "the evaluation exceeded its memory limit (%zu bytes)", x->mem.limit);
}

void py_step(X *x, uint64_t n) {
    x->steps += n;
    if (x->steps > x->max_steps)
        py_raise(x, "RuntimeError", "the evaluation exceeded its limit of %llu steps",
                 (unsigned long long)x->max_steps);
}

void *py_alloc(X *x, size_t n) {
    void *p = py_arena_alloc(&x->mem, n);
    if (!p) py_oom(x);
    return p;
}

/* ---- constructors ---- */

size_t utf8_count(const char *s, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

pv pv_str_chars(X *x, const char *s, size_t n, size_t nchars) {
    py_str *p = py_alloc(x, sizeof *p + n + 1);
    p->n = n;
    p->nchars = nchars;
    if (n) memcpy(p->s, s, n);
    p->s[n] = 0;
    return pv_ptr(PT_STR, p);
}

pv pv_str(X *x, const char *s, size_t n) {
    return pv_str_chars(x, s, n, utf8_count(s, n));
}

pv pv_cstr(X *x, const char *s) {
    return pv_str(x, s, strlen(s));
}

pv pv_bytes(X *x, int t, const void *p, size_t n) {
    py_bytes *b = py_alloc(x, sizeof *b + n + 1);
    b->n = n;
    if (n) memcpy(b->b, p, n);
    b->b[n] = 0;
    return pv_ptr(t, b);
}

pv pv_list(X *x, int t, size_t cap) {
    py_list *l = py_alloc(x, sizeof *l);
    l->n = 0;
    l->cap = cap ? cap : 1;
    l->v = py_alloc(x, l->cap * sizeof(pv)); /* never NULL: memcpy of 0 items stays defined */
    l->kind = NULL;
    return pv_ptr(t, l);
}

void pv_list_push(X *x, py_list *l, pv v) {
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 8;
        pv *nv = py_alloc(x, nc * sizeof(pv));
        if (l->n) memcpy(nv, l->v, l->n * sizeof(pv));
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = v;
}

pv pv_tuple2(X *x, pv a, pv b) {
    pv t = pv_list(x, PT_TUPLE, 2);
    t.u.l->v[0] = a;
    t.u.l->v[1] = b;
    t.u.l->n = 2;
    return t;
}

pv pv_from_buf(X *x, tbgw_buf *b) {
    py_buf_check(x, b);
    return pv_str(x, b->p ? b->p : "", b->len);
}

void py_buf_check(X *x, tbgw_buf *b) {
    if (b->oom) py_raise(x, "MemoryError", "out of memory");
    if (x->mem.limit && b->len > x->mem.limit) py_oom(x);
}

tbgw_buf *py_buf(X *x) {
    if (x->nbufs == x->capbufs) {
        size_t nc = x->capbufs ? x->capbufs * 2 : 8;
        tbgw_buf **nb = realloc(x->bufs, nc * sizeof *nb);
        if (!nb) py_raise(x, "MemoryError", "out of memory");
        x->bufs = nb;
        x->capbufs = nc;
    }
    tbgw_buf *b = py_alloc(x, sizeof *b);
    tbgw_buf_init(b);
    x->bufs[x->nbufs++] = b;
    return b;
}

void py_buf_release(X *x, tbgw_buf *b) {
    for (size_t i = x->nbufs; i-- > 0;)
        if (x->bufs[i] == b) {
            tbgw_buf_free(b);
            x->bufs[i] = x->bufs[--x->nbufs];
            return;
        }
}

pv py_buf_done(X *x, tbgw_buf *b) {
    pv v = pv_from_buf(x, b);
    py_buf_release(x, b);
    return v;
}

void py_bufs_free(X *x) {
    for (size_t i = 0; i < x->nbufs; i++) tbgw_buf_free(x->bufs[i]);
    x->nbufs = 0;
}

/* ---- type names, truth ---- */

static const char *const tnames[PT_NTYPES] = {"NoneType",
                                              "bool",
                                              "int",
                                              "int",
                                              "float",
                                              "str",
                                              "bytes",
                                              "bytearray",
                                              "list",
                                              "tuple",
                                              "dict",
                                              "set",
                                              "range",
                                              "iterator",
                                              "function",
                                              "builtin_function_or_method",
                                              "builtin_function_or_method",
                                              "object"};

const char *pv_tname(pv v) {
    if (v.t >= PT_NTYPES) return "unbound";
    if (v.t == PT_ITER && v.u.l->kind) return v.u.l->kind;
    if (v.t == PT_OBJ) return v.u.o->type;
    if (v.t == PT_BUILTIN && py_builtins[v.u.i].type >= 0) return "type";
    return tnames[v.t];
}

int pv_truthy(X *x, pv v) {
    switch (v.t) {
    case PT_NONE:
        return 0;
    case PT_BOOL:
    case PT_INT:
        return v.u.i != 0;
    case PT_BIG:
        return 1;
    case PT_FLOAT:
        return v.u.f != 0.0;
    case PT_STR:
        return v.u.s->n != 0;
    case PT_BYTES:
    case PT_BYTEARRAY:
        return v.u.b->n != 0;
    case PT_LIST:
    case PT_TUPLE:
    case PT_ITER:
        return v.t == PT_ITER || v.u.l->n != 0;
    case PT_DICT:
    case PT_SET:
        return v.u.d->n != 0;
    case PT_RANGE:
        return pv_len(x, v) != 0;
    default:
        return 1;
    }
}

int pv_is_int(pv v) {
    return v.t == PT_INT || v.t == PT_BIG || v.t == PT_BOOL;
}
int pv_is_num(pv v) {
    return pv_is_int(v) || v.t == PT_FLOAT;
}

/* ---- equality and hashing ---- */

static int seq_eq(X *x, const py_list *a, const py_list *b) {
    if (a->n != b->n) return 0;
    for (size_t i = 0; i < a->n; i++)
        if (!pv_eq(x, a->v[i], b->v[i])) return 0;
    return 1;
}

static int dict_eq(X *x, const py_dict *a, const py_dict *b, int is_set) {
    if (a->n != b->n) return 0;
    for (size_t i = 0; i < a->n; i++) {
        pv o;
        if (!py_dict_get(x, b, a->k[i], &o)) return 0;
        if (!is_set && !pv_eq(x, a->v[i], o)) return 0;
    }
    return 1;
}

int pv_eq(X *x, pv a, pv b) {
    if (pv_is_num(a) && pv_is_num(b)) return num_cmp(x, a, b) == 0;
    int ta = a.t == PT_BYTEARRAY ? PT_BYTES : a.t, tb = b.t == PT_BYTEARRAY ? PT_BYTES : b.t;
    if (ta != tb) return 0;
    switch (ta) {
    case PT_NONE:
        return 1;
    case PT_STR:
        return a.u.s->n == b.u.s->n && !memcmp(a.u.s->s, b.u.s->s, a.u.s->n);
    case PT_BYTES:
        return a.u.b->n == b.u.b->n && !memcmp(a.u.b->b, b.u.b->b, a.u.b->n);
    case PT_LIST:
    case PT_TUPLE:
        py_step(x, a.u.l->n);
        return seq_eq(x, a.u.l, b.u.l);
    case PT_DICT:
    case PT_SET:
        py_step(x, a.u.d->n);
        return dict_eq(x, a.u.d, b.u.d, ta == PT_SET);
    case PT_RANGE: {
        int64_t la = pv_len(x, a), lb = pv_len(x, b);
        if (la != lb) return 0;
        if (la == 0) return 1;
        if (a.u.r->start != b.u.r->start) return 0;
        return la == 1 || a.u.r->step == b.u.r->step;
    }
    case PT_BUILTIN:
        return a.u.i == b.u.i;
    default:
        return a.u.p == b.u.p;
    }
}

static uint64_t mix(uint64_t h) {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static uint64_t bytes_hash(const void *p, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ULL;
    return mix(h);
}

uint64_t pv_hash(X *x, pv v) {
    switch (v.t) {
    case PT_NONE:
        return 0x1234567;
    case PT_BOOL:
    case PT_INT:
        return mix((uint64_t)v.u.i);
    case PT_BIG:
        return big_hash(v.u.big);
    case PT_FLOAT: {
        double f = v.u.f;
        if (f == floor(f) && fabs(f) < 9.2e18) return mix((uint64_t)(int64_t)f);
        if (isfinite(f) && f == floor(f)) {
            pv b = big_from_double(x, f);
            return b.t == PT_INT ? mix((uint64_t)b.u.i) : big_hash(b.u.big);
        }
        uint64_t bits;
        memcpy(&bits, &f, sizeof bits);
        return mix(bits ^ 0x9e3779b97f4a7c15ULL);
    }
    case PT_STR:
        return bytes_hash(v.u.s->s, v.u.s->n);
    case PT_BYTES:
        return bytes_hash(v.u.b->b, v.u.b->n);
    case PT_TUPLE: {
        uint64_t h = 0x345678;
        for (size_t i = 0; i < v.u.l->n; i++) h = mix(h ^ pv_hash(x, v.u.l->v[i])) + i;
        return h;
    }
    case PT_RANGE:
        return mix((uint64_t)v.u.r->start ^ mix((uint64_t)v.u.r->stop) ^ (uint64_t)v.u.r->step);
    case PT_BUILTIN:
        return mix((uint64_t)v.u.i + 77);
    case PT_LIST:
    case PT_DICT:
    case PT_SET:
    case PT_BYTEARRAY:
        py_type_error(x, "unhashable type: '%s'", pv_tname(v));
    default:
        return mix((uint64_t)(uintptr_t)v.u.p);
    }
}

/* ---- dicts and sets ---- */

pv pv_dict(X *x, int t) {
    py_dict *d = py_alloc(x, sizeof *d);
    memset(d, 0, sizeof *d);
    d->is_set = t == PT_SET;
    return pv_ptr(t, d);
}

static void dict_rehash(X *x, py_dict *d, size_t icap) {
    d->idx = py_alloc(x, icap * sizeof(int32_t));
    memset(d->idx, 0xff, icap * sizeof(int32_t));
    d->icap = icap;
    for (size_t i = 0; i < d->n; i++) {
        size_t j = d->h[i] & (icap - 1);
        while (d->idx[j] >= 0) j = (j + 1) & (icap - 1);
        d->idx[j] = (int32_t)i;
    }
}

static long dict_find(X *x, const py_dict *d, pv k, uint64_t h) {
    if (!d->icap) return -1;
    size_t j = h & (d->icap - 1);
    while (d->idx[j] >= 0) {
        int32_t i = d->idx[j];
        if (d->h[i] == h && pv_eq(x, d->k[i], k)) return i;
        j = (j + 1) & (d->icap - 1);
    }
    return -1;
}

int py_dict_get(X *x, const py_dict *d, pv k, pv *out) {
    long i = dict_find(x, d, k, pv_hash(x, k));
    if (i < 0) return 0;
    if (out) *out = d->is_set ? d->k[i] : d->v[i];
    return 1;
}

void py_dict_set(X *x, py_dict *d, pv k, pv v) {
    uint64_t h = pv_hash(x, k);
    long i = dict_find(x, d, k, h);
    if (i >= 0) {
        if (!d->is_set) d->v[i] = v;
        return;
    }
    if (d->n == d->cap) {
        size_t nc = d->cap ? d->cap * 2 : 8;
        pv *nk = py_alloc(x, nc * sizeof(pv));
        uint64_t *nh = py_alloc(x, nc * sizeof(uint64_t));
        if (d->n) {
            memcpy(nk, d->k, d->n * sizeof(pv));
            memcpy(nh, d->h, d->n * sizeof(uint64_t));
        }
        d->k = nk;
        d->h = nh;
        if (!d->is_set) {
            pv *nv = py_alloc(x, nc * sizeof(pv));
            if (d->n) memcpy(nv, d->v, d->n * sizeof(pv));
            d->v = nv;
        }
        d->cap = nc;
    }
    d->k[d->n] = k;
    if (!d->is_set) d->v[d->n] = v;
    d->h[d->n] = h;
    d->n++;
    if (d->n * 2 > d->icap) {
        dict_rehash(x, d, d->icap ? d->icap * 4 : 16);
    } else {
        size_t j = h & (d->icap - 1);
        while (d->idx[j] >= 0) j = (j + 1) & (d->icap - 1);
        d->idx[j] = (int32_t)(d->n - 1);
    }
}

/* ---- ordering ---- */

static int seq_cmp(X *x, const py_list *a, const py_list *b, const char *op, pv va, pv vb) {
    size_t n = a->n < b->n ? a->n : b->n;
    for (size_t i = 0; i < n; i++) {
        if (pv_eq(x, a->v[i], b->v[i])) continue;
        return pv_cmp(x, a->v[i], b->v[i], op);
    }
    return a->n < b->n ? -1 : a->n > b->n;
}

static int set_subset(X *x, const py_dict *a, const py_dict *b) {
    for (size_t i = 0; i < a->n; i++)
        if (!py_dict_get(x, b, a->k[i], NULL)) return 0;
    return 1;
}

/* Returns -1/0/1; -2 = unordered (nan, or sets that are not subsets of each other). */
int pv_cmp(X *x, pv a, pv b, const char *op) {
    if (pv_is_num(a) && pv_is_num(b)) return num_cmp(x, a, b);
    int ta = a.t == PT_BYTEARRAY ? PT_BYTES : a.t, tb = b.t == PT_BYTEARRAY ? PT_BYTES : b.t;
    if (ta == tb) {
        switch (ta) {
        case PT_STR: {
            size_t n = a.u.s->n < b.u.s->n ? a.u.s->n : b.u.s->n;
            int c = memcmp(a.u.s->s, b.u.s->s, n);
            if (c) return c < 0 ? -1 : 1;
            return a.u.s->n < b.u.s->n ? -1 : a.u.s->n > b.u.s->n;
        }
        case PT_BYTES: {
            size_t n = a.u.b->n < b.u.b->n ? a.u.b->n : b.u.b->n;
            int c = n ? memcmp(a.u.b->b, b.u.b->b, n) : 0;
            if (c) return c < 0 ? -1 : 1;
            return a.u.b->n < b.u.b->n ? -1 : a.u.b->n > b.u.b->n;
        }
        case PT_LIST:
        case PT_TUPLE:
            return seq_cmp(x, a.u.l, b.u.l, op, a, b);
        case PT_SET: {
            int ab = set_subset(x, a.u.d, b.u.d), ba = set_subset(x, b.u.d, a.u.d);
            if (ab && ba) return 0;
            if (ab) return -1;
            if (ba) return 1;
            return -2;
        }
        default:
            break;
        }
    }
    py_type_error(x, "'%s' not supported between instances of '%s' and '%s'", op, pv_tname(a), pv_tname(b));
}

/* ---- repr / str ---- */

static void repr_seq(X *x, const py_list *l, const char *open, const char *close, int tuple, tbgw_buf *out) {
    tbgw_buf_puts(out, open);
    for (size_t i = 0; i < l->n; i++) {
        if (i) tbgw_buf_puts(out, ", ");
        pv_repr(x, l->v[i], out);
    }
    if (tuple && l->n == 1) tbgw_buf_putc(out, ',');
    tbgw_buf_puts(out, close);
}

void pv_repr(X *x, pv v, tbgw_buf *out) {
    char tmp[64];
    py_step(x, 1);
    if (x->depth > x->max_depth) py_raise(x, "RecursionError", "maximum recursion depth exceeded");
    py_buf_check(x, out);
    switch (v.t) {
    case PT_NONE:
        tbgw_buf_puts(out, "None");
        break;
    case PT_BOOL:
        tbgw_buf_puts(out, v.u.i ? "True" : "False");
        break;
    case PT_INT:
        tbgw_buf_i64(out, v.u.i);
        break;
    case PT_BIG:
        big_to_str(x, v.u.big, 10, out);
        break;
    case PT_FLOAT:
        float_repr(v.u.f, tmp, sizeof tmp);
        tbgw_buf_puts(out, tmp);
        break;
    case PT_STR:
        repr_str(v.u.s->s, v.u.s->n, out);
        break;
    case PT_BYTES:
    case PT_BYTEARRAY:
        repr_bytes(v.t == PT_BYTEARRAY, v.u.b->b, v.u.b->n, out);
        break;
    case PT_LIST:
        repr_seq(x, v.u.l, "[", "]", 0, out);
        break;
    case PT_TUPLE:
        repr_seq(x, v.u.l, "(", ")", 1, out);
        break;
    case PT_ITER:
        tbgw_buf_printf(out, "<%s object>", pv_tname(v));
        break;
    case PT_DICT:
    case PT_SET:
        if (v.t == PT_SET && !v.u.d->n) {
            tbgw_buf_puts(out, "set()");
            break;
        }
        tbgw_buf_putc(out, '{');
        x->depth++;
        for (size_t i = 0; i < v.u.d->n; i++) {
            if (i) tbgw_buf_puts(out, ", ");
            pv_repr(x, v.u.d->k[i], out);
            if (v.t == PT_DICT) {
                tbgw_buf_puts(out, ": ");
                pv_repr(x, v.u.d->v[i], out);
            }
        }
        x->depth--;
        tbgw_buf_putc(out, '}');
        break;
    case PT_RANGE:
        if (v.u.r->step == 1)
            tbgw_buf_printf(out, "range(%lld, %lld)", (long long)v.u.r->start, (long long)v.u.r->stop);
        else
            tbgw_buf_printf(out, "range(%lld, %lld, %lld)", (long long)v.u.r->start, (long long)v.u.r->stop,
                            (long long)v.u.r->step);
        break;
    case PT_FUNC:
        tbgw_buf_puts(out, "<function <lambda>>");
        break;
    case PT_BUILTIN:
        if (py_builtins[v.u.i].type >= 0)
            tbgw_buf_printf(out, "<class '%s'>", py_builtins[v.u.i].name);
        else
            tbgw_buf_printf(out, "<built-in function %s>", py_builtins[v.u.i].name);
        break;
    case PT_METHOD:
        tbgw_buf_printf(out, "<built-in method of %s object>", pv_tname(v.u.m->self));
        break;
    case PT_OBJ:
        tbgw_buf_printf(out, "<%s object>", v.u.o->type);
        break;
    default:
        tbgw_buf_puts(out, "<?>");
        break;
    }
}

void pv_strv(X *x, pv v, tbgw_buf *out) {
    if (v.t == PT_STR)
        tbgw_buf_append(out, v.u.s->s, v.u.s->n);
    else
        pv_repr(x, v, out);
    py_buf_check(x, out);
}

/* ---- iteration ---- */

int64_t pv_len(X *x, pv v) {
    switch (v.t) {
    case PT_STR:
        return (int64_t)v.u.s->nchars;
    case PT_BYTES:
    case PT_BYTEARRAY:
        return (int64_t)v.u.b->n;
    case PT_LIST:
    case PT_TUPLE:
        return (int64_t)v.u.l->n;
    case PT_ITER:
        if (v.u.l->kind && !strncmp(v.u.l->kind, "dict_", 5)) return (int64_t)v.u.l->n;
        break;
    case PT_DICT:
    case PT_SET:
        return (int64_t)v.u.d->n;
    case PT_RANGE: {
        const py_range *r = v.u.r;
        if (r->step > 0 && r->start < r->stop)
            return (int64_t)(((uint64_t)(r->stop - r->start) - 1) / (uint64_t)r->step + 1);
        if (r->step < 0 && r->start > r->stop)
            return (int64_t)(((uint64_t)(r->start - r->stop) - 1) / (uint64_t)(-(r->step + 1) + 1) + 1);
        return 0;
    }
    default:
        break;
    }
    py_type_error(x, "object of type '%s' has no len()", pv_tname(v));
}

py_list *pv_iter(X *x, pv v) {
    switch (v.t) {
    case PT_LIST:
    case PT_TUPLE:
    case PT_ITER:
        return v.u.l;
    case PT_STR: {
        const py_str *s = v.u.s;
        pv l = pv_list(x, PT_LIST, s->nchars);
        py_step(x, s->nchars);
        for (size_t i = 0; i < s->n;) {
            size_t j = i + 1;
            while (j < s->n && ((unsigned char)s->s[j] & 0xC0) == 0x80) j++;
            l.u.l->v[l.u.l->n++] = pv_str_chars(x, s->s + i, j - i, 1);
            i = j;
        }
        return l.u.l;
    }
    case PT_BYTES:
    case PT_BYTEARRAY: {
        pv l = pv_list(x, PT_LIST, v.u.b->n);
        py_step(x, v.u.b->n);
        for (size_t i = 0; i < v.u.b->n; i++) l.u.l->v[l.u.l->n++] = pv_int(v.u.b->b[i]);
        return l.u.l;
    }
    case PT_DICT:
    case PT_SET: {
        pv l = pv_list(x, PT_LIST, v.u.d->n);
        py_step(x, v.u.d->n);
        if (v.u.d->n) memcpy(l.u.l->v, v.u.d->k, v.u.d->n * sizeof(pv));
        l.u.l->n = v.u.d->n;
        return l.u.l;
    }
    case PT_RANGE: {
        int64_t n = pv_len(x, v);
        py_step(x, (uint64_t)n);
        pv l = pv_list(x, PT_LIST, (size_t)n);
        int64_t cur = v.u.r->start;
        for (int64_t i = 0; i < n; i++, cur += v.u.r->step) l.u.l->v[i] = pv_int(cur);
        l.u.l->n = (size_t)n;
        return l.u.l;
    }
    default:
        break;
    }
    py_type_error(x, "'%s' object is not iterable", pv_tname(v));
}
