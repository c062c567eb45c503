/* Public API of the evaluator (convert/pyexpr.h): compile, contexts and bindings, evaluation,
 * results as JSON / datapoint values / text. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "convert/pyexpr/internal.h"
#include "util/json.h"

/* ---- compile ---- */

int tbgw_py_compile(const char *src, size_t len, unsigned flags, tbgw_py **out, tbgw_err *err,
                    size_t *err_off) {
    *out = NULL;
    if (err_off) *err_off = 0;
    if (len > (1u << 24)) return tbgw_err_set(err, TBGW_EINVAL, "SyntaxError: expression too long");
    /* the source must be valid UTF-8 without NUL bytes */
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)src[i];
        size_t l = c < 0x80                 ? 1
                   : c >= 0xC2 && c <= 0xDF ? 2
                   : c >= 0xE0 && c <= 0xEF ? 3
                   : c >= 0xF0 && c <= 0xF4 ? 4
                                            : 0;
        int ok = l && i + l <= len && c != 0;
        for (size_t j = 1; ok && j < l; j++) ok = ((unsigned char)src[i + j] & 0xC0) == 0x80;
        if (ok && l == 3) {
            unsigned char c1 = (unsigned char)src[i + 1];
            if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 > 0x9F)) ok = 0;
        }
        if (ok && l == 4) {
            unsigned char c1 = (unsigned char)src[i + 1];
            if ((c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 > 0x8F)) ok = 0;
        }
        if (!ok) {
            if (err_off) *err_off = i;
            return tbgw_err_set(err, TBGW_EINVAL, "SyntaxError: %s (column %zu)",
                                c ? "invalid UTF-8 in expression" : "source code cannot contain null bytes",
                                i + 1);
        }
        i += l;
    }
    tbgw_py *e = calloc(1, sizeof *e);
    if (!e) return TBGW_ENOMEM;
    e->src = malloc(len + 1);
    if (!e->src) {
        free(e);
        return TBGW_ENOMEM;
    }
    /* universal newlines, as Python reads source: \r\n and a lone \r become \n */
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            e->src[n++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n') i++;
        } else {
            e->src[n++] = src[i];
        }
    }
    e->src[n] = 0;
    e->len = n;
    e->flags = flags;
    py_arena_init(&e->mem, 0, 4096);
    int rc = py_compile(e, err, err_off);
    if (rc) {
        tbgw_py_free(e);
        return rc;
    }
    *out = e;
    return 0;
}

void tbgw_py_free(tbgw_py *e) {
    if (!e) return;
    for (size_t i = 0; i < e->nglobals; i++) free(e->globals[i]);
    free(e->globals);
    free(e->nodes);
    free(e->kids);
    free(e->cmpops);
    free(e->consts);
    py_arena_free(&e->mem);
    free(e->src);
    free(e);
}

const char *tbgw_py_source(const tbgw_py *e) {
    return e->src;
}

/* ---- contexts ---- */

tbgw_py_ctx *tbgw_py_ctx_new(const tbgw_py_limits *lim) {
    X *x = calloc(1, sizeof *x);
    if (!x) return NULL;
    x->max_steps = lim && lim->max_steps ? lim->max_steps : 1000000;
    x->max_depth = lim && lim->max_depth ? lim->max_depth : 100;
    py_arena_init(&x->mem, lim && lim->max_memory ? lim->max_memory : 16u << 20, 65536);
    return x;
}

void tbgw_py_ctx_reset(tbgw_py_ctx *x) {
    py_bufs_free(x);
    x->nbinds = 0; /* names live in the arena */
    py_arena_reset(&x->mem);
}

void tbgw_py_ctx_free(tbgw_py_ctx *x) {
    if (!x) return;
    tbgw_py_ctx_reset(x);
    free(x->binds);
    free(x->bufs);
    free(x->gcache);
    free(x->gdone);
    py_arena_free(&x->mem);
    free(x);
}

/* Runs body with errors caught: evaluates to 0 or TBGW_EINVAL / TBGW_ENOMEM with x->errmsg set. */
#define GUARDED(x, ...)                                                                                      \
    do {                                                                                                     \
        jmp_buf jb_;                                                                                         \
        jmp_buf *saved_ = (x)->jb;                                                                           \
        (x)->jb = &jb_;                                                                                      \
        if (setjmp(jb_)) {                                                                                   \
            (x)->jb = saved_;                                                                                \
            py_bufs_free(x);                                                                                 \
            rc_ = TBGW_EINVAL;                                                                               \
            break;                                                                                           \
        }                                                                                                    \
        __VA_ARGS__;                                                                                         \
        (x)->jb = saved_;                                                                                    \
        rc_ = 0;                                                                                             \
    } while (0)

static tbgw_py_val *box(X *x, pv v) {
    pv *b = py_arena_alloc(&x->mem, sizeof *b);
    if (b) *b = v;
    return b;
}

tbgw_py_val *tbgw_py_none(tbgw_py_ctx *c) {
    return box(c, pv_none());
}
tbgw_py_val *tbgw_py_bool(tbgw_py_ctx *c, int b) {
    return box(c, pv_bool(b));
}
tbgw_py_val *tbgw_py_int(tbgw_py_ctx *c, int64_t i) {
    return box(c, pv_int(i));
}
tbgw_py_val *tbgw_py_float(tbgw_py_ctx *c, double d) {
    return box(c, pv_float(d));
}

tbgw_py_val *tbgw_py_str(tbgw_py_ctx *x, const char *s, size_t n) {
    int rc_;
    pv v = pv_none();
    GUARDED(x, v = pv_str(x, s, n));
    return rc_ ? NULL : box(x, v);
}

tbgw_py_val *tbgw_py_bytes(tbgw_py_ctx *x, const void *p, size_t n) {
    int rc_;
    pv v = pv_none();
    GUARDED(x, v = pv_bytes(x, PT_BYTES, p, n));
    return rc_ ? NULL : box(x, v);
}

static pv from_json(X *x, const json_t *j, int depth) {
    if (depth > 64) py_raise(x, "ValueError", "JSON value nested too deeply");
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        pv d = pv_dict(x, PT_DICT);
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)j, k, v)
            py_dict_set(x, d.u.d, pv_cstr(x, k), from_json(x, v, depth + 1));
        return d;
    }
    case JSON_ARRAY: {
        pv l = pv_list(x, PT_LIST, json_array_size(j));
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v) l.u.l->v[l.u.l->n++] = from_json(x, v, depth + 1);
        return l;
    }
    case JSON_STRING:
        return pv_str(x, json_string_value(j), json_string_length(j));
    case JSON_INTEGER:
        return pv_int(json_integer_value(j));
    case JSON_REAL:
        return pv_float(json_real_value(j));
    case JSON_TRUE:
        return pv_bool(1);
    case JSON_FALSE:
        return pv_bool(0);
    default:
        return pv_none();
    }
}

tbgw_py_val *tbgw_py_from_json(tbgw_py_ctx *x, const json_t *j) {
    int rc_;
    pv v = pv_none();
    if (!j) return NULL;
    GUARDED(x, v = from_json(x, j, 0));
    return rc_ ? NULL : box(x, v);
}

tbgw_py_val *tbgw_py_from_value(tbgw_py_ctx *x, const tbgw_value *tv) {
    switch (tv->type) {
    case TBGW_V_NULL:
        return tbgw_py_none(x);
    case TBGW_V_BOOL:
        return tbgw_py_bool(x, tv->u.b);
    case TBGW_V_INT:
        return tbgw_py_int(x, tv->u.i);
    case TBGW_V_DOUBLE:
        return tbgw_py_float(x, tv->u.d);
    case TBGW_V_STRING:
        return tbgw_py_str(x, tv->u.s, strlen(tv->u.s));
    case TBGW_V_JSON: {
        json_t *j = tbgw_json_loads(tv->u.s, JSON_DECODE_ANY, NULL);
        tbgw_py_val *r = j ? tbgw_py_from_json(x, j) : NULL;
        json_decref(j);
        return r;
    }
    case TBGW_V_UINT:
    case TBGW_V_NUMBER: { /* exact integers beyond int64; other number texts as floats */
        char tmp[32];
        const char *t = tv->u.s;
        if (tv->type == TBGW_V_UINT) {
            snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)tv->u.u64);
            t = tmp;
        }
        int rc_, neg = *t == '-';
        size_t n = strlen(t + neg);
        pv v = pv_none();
        if (strspn(t + neg, "0123456789") == n && n)
            GUARDED(x, v = big_parse(x, t + neg, n, 10); if (neg) v = num_unary(x, UOP_NEG, v));
        else
            GUARDED(x, v = pv_float(strtod(t, NULL)));
        return rc_ ? NULL : box(x, v);
    }
    }
    return NULL;
}

tbgw_py_val *tbgw_py_object(tbgw_py_ctx *x, const char *type_name) {
    int rc_;
    pv v = pv_none();
    GUARDED(x, {
        py_obj *o = py_alloc(x, sizeof *o);
        memset(o, 0, sizeof *o);
        o->type = pv_cstr(x, type_name ? type_name : "object").u.s->s;
        v = pv_ptr(PT_OBJ, o);
    });
    return rc_ ? NULL : box(x, v);
}

int tbgw_py_setattr(tbgw_py_ctx *x, tbgw_py_val *obj, const char *name, const tbgw_py_val *v) {
    if (!obj || obj->t != PT_OBJ || !v) return TBGW_EINVAL;
    int rc_;
    GUARDED(x, {
        py_obj *o = obj->u.o;
        size_t i;
        for (i = 0; i < o->n; i++)
            if (!strcmp(o->names[i], name)) break;
        if (i == o->n) {
            const char **nn = py_alloc(x, (o->n + 1) * sizeof *nn);
            pv *nv = py_alloc(x, (o->n + 1) * sizeof *nv);
            if (o->n) {
                memcpy(nn, o->names, o->n * sizeof *nn);
                memcpy(nv, o->vals, o->n * sizeof *nv);
            }
            nn[o->n] = pv_cstr(x, name).u.s->s;
            o->names = nn;
            o->vals = nv;
            o->n++;
        }
        o->vals[i] = *v;
    });
    return rc_ ? TBGW_ENOMEM : 0;
}

int tbgw_py_bind(tbgw_py_ctx *x, const char *name, const tbgw_py_val *v) {
    if (!v) return TBGW_EINVAL;
    if (x->nbinds == x->capbinds) {
        size_t nc = x->capbinds ? x->capbinds * 2 : 8;
        py_binding *nb = realloc(x->binds, nc * sizeof *nb);
        if (!nb) return TBGW_ENOMEM;
        x->binds = nb;
        x->capbinds = nc;
    }
    size_t nl = strlen(name);
    char *n = py_arena_alloc(&x->mem, nl + 1);
    if (!n) return TBGW_ENOMEM;
    memcpy(n, name, nl + 1);
    x->binds[x->nbinds].name = n;
    x->binds[x->nbinds].v = *v;
    x->nbinds++;
    return 0;
}

int tbgw_py_bind_json_members(tbgw_py_ctx *x, const json_t *obj) {
    if (!json_is_object(obj)) return TBGW_EINVAL;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v) {
        tbgw_py_val *pvv = tbgw_py_from_json(x, v);
        if (!pvv) return TBGW_ENOMEM;
        int rc = tbgw_py_bind(x, k, pvv);
        if (rc) return rc;
    }
    return 0;
}

/* ---- evaluation ---- */

/* the per-evaluation cache of resolved free names, grown to the largest expression seen */
static int prepare(X *x, const tbgw_py *e) {
    if (e->nglobals > x->capglobals) {
        pv *gc = realloc(x->gcache, e->nglobals * sizeof(pv));
        if (gc) x->gcache = gc;
        uint8_t *gd = realloc(x->gdone, e->nglobals);
        if (gd) x->gdone = gd;
        if (!gc || !gd) return TBGW_ENOMEM;
        x->capglobals = e->nglobals;
    }
    if (e->nglobals) memset(x->gdone, 0, e->nglobals);
    return 0;
}

int tbgw_py_eval(const tbgw_py *e, tbgw_py_ctx *x, const tbgw_py_val **out, tbgw_err *err) {
    *out = NULL;
    if (prepare(x, e)) return tbgw_err_set(err, TBGW_ENOMEM, "MemoryError: out of memory");
    x->e = e;
    x->steps = 0;
    x->depth = 0;
    x->strict = (e->flags & TBGW_PY_STRICT) != 0;
    int rc_;
    pv r = pv_none();
    GUARDED(x, r = py_eval_node(x, e->root, NULL));
    if (rc_) return tbgw_err_set(err, TBGW_EINVAL, "%s", x->errmsg);
    tbgw_py_val *b = box(x, r);
    if (!b) return tbgw_err_set(err, TBGW_ENOMEM, "MemoryError: out of memory");
    *out = b;
    return 0;
}

int tbgw_py_apply(tbgw_py_ctx *x, const char *name, const tbgw_py_val *v, const tbgw_py_val **out,
                  tbgw_err *err) {
    int b = py_builtin_find(name);
    *out = NULL;
    if (b < 0) return tbgw_err_set(err, TBGW_EINVAL, "NameError: name '%s' is not defined", name);
    x->steps = 0;
    x->depth = 0;
    int rc_;
    pv r = pv_none();
    GUARDED(x, {
        py_args a = {v, 1, NULL, NULL, 0};
        r = py_builtins[b].fn(x, pv_none(), &a);
    });
    if (rc_) return tbgw_err_set(err, TBGW_EINVAL, "%s", x->errmsg);
    tbgw_py_val *bx = box(x, r);
    if (!bx) return tbgw_err_set(err, TBGW_ENOMEM, "MemoryError: out of memory");
    *out = bx;
    return 0;
}

/* ---- results ---- */

int tbgw_py_truthy(tbgw_py_ctx *x, const tbgw_py_val *v) {
    int rc_, t = 0;
    x->steps = 0;
    GUARDED(x, t = pv_truthy(x, *v));
    return rc_ ? 0 : t;
}

int tbgw_py_repr(tbgw_py_ctx *x, const tbgw_py_val *v, tbgw_buf *out) {
    int rc_;
    x->steps = 0;
    x->depth = 0;
    GUARDED(x, {
        tbgw_buf *b = py_buf(x);
        pv_repr(x, *v, b);
        tbgw_buf_append(out, b->p ? b->p : "", b->len);
        py_buf_release(x, b);
    });
    return rc_;
}

int tbgw_py_text(tbgw_py_ctx *x, const tbgw_py_val *v, tbgw_buf *out) {
    int rc_;
    x->steps = 0;
    x->depth = 0;
    GUARDED(x, {
        tbgw_buf *b = py_buf(x);
        pv_strv(x, *v, b);
        tbgw_buf_append(out, b->p ? b->p : "", b->len);
        py_buf_release(x, b);
    });
    return rc_;
}

/* first pass: everything that can fail for a reason other than memory */
static void json_check(X *x, pv v, int depth) {
    py_step(x, 1);
    if (depth > 64) py_raise(x, "ValueError", "value nested too deeply for JSON");
    switch (v.t) {
    case PT_NONE:
    case PT_BOOL:
    case PT_INT:
    case PT_STR:
        return;
    case PT_BIG:
        (void)pv_to_double(x, v);
        return;
    case PT_FLOAT:
        if (!isfinite(v.u.f)) py_raise(x, "ValueError", "Out of range float values are not JSON compliant");
        return;
    case PT_LIST:
    case PT_TUPLE:
    case PT_ITER:
        for (size_t i = 0; i < v.u.l->n; i++) json_check(x, v.u.l->v[i], depth + 1);
        return;
    case PT_DICT:
        for (size_t i = 0; i < v.u.d->n; i++) {
            pv k = v.u.d->k[i];
            if (k.t == PT_FLOAT && !isfinite(k.u.f))
                py_raise(x, "ValueError", "Out of range float values are not JSON compliant");
            if (!(k.t == PT_STR || k.t == PT_BOOL || k.t == PT_NONE || k.t == PT_INT || k.t == PT_FLOAT))
                py_type_error(x, "keys must be str, int, float, bool or None, not %s", pv_tname(k));
            json_check(x, v.u.d->v[i], depth + 1);
        }
        return;
    default:
        py_type_error(x, "Object of type %s is not JSON serializable", pv_tname(v));
    }
}

/* second pass: builds the JSON; NULL only when out of memory */
static json_t *json_build(X *x, pv v) {
    switch (v.t) {
    case PT_NONE:
        return json_null();
    case PT_BOOL:
        return json_boolean(v.u.i);
    case PT_INT:
        return json_integer(v.u.i);
    case PT_BIG: {
        int of;
        return json_real(big_to_double(x, v.u.big, &of));
    }
    case PT_FLOAT:
        return json_real(v.u.f);
    case PT_STR:
        return json_stringn(v.u.s->s, v.u.s->n);
    case PT_LIST:
    case PT_TUPLE:
    case PT_ITER: {
        json_t *a = json_array();
        for (size_t i = 0; a && i < v.u.l->n; i++)
            if (json_array_append_new(a, json_build(x, v.u.l->v[i]))) {
                json_decref(a);
                a = NULL;
            }
        return a;
    }
    case PT_DICT: {
        json_t *o = json_object();
        for (size_t i = 0; o && i < v.u.d->n; i++) {
            pv k = v.u.d->k[i];
            char kb[64];
            const char *key = kb;
            if (k.t == PT_STR)
                key = k.u.s->s;
            else if (k.t == PT_BOOL)
                key = k.u.i ? "true" : "false";
            else if (k.t == PT_NONE)
                key = "null";
            else if (k.t == PT_INT)
                snprintf(kb, sizeof kb, "%lld", (long long)k.u.i);
            else
                float_repr(k.u.f, kb, sizeof kb);
            if (json_object_set_new(o, key, json_build(x, v.u.d->v[i]))) {
                json_decref(o);
                o = NULL;
            }
        }
        return o;
    }
    default:
        return NULL;
    }
}

int tbgw_py_to_json(tbgw_py_ctx *x, const tbgw_py_val *v, json_t **out, tbgw_err *err) {
    int rc_;
    json_t *j = NULL;
    x->steps = 0;
    GUARDED(x, json_check(x, *v, 0));
    if (rc_) return tbgw_err_set(err, TBGW_EINVAL, "%s", x->errmsg);
    j = json_build(x, *v);
    if (!j) return tbgw_err_set(err, TBGW_ENOMEM, "MemoryError: out of memory");
    *out = j;
    return 0;
}

int tbgw_py_to_value(tbgw_py_ctx *x, const tbgw_py_val *v, tbgw_value *out, tbgw_buf *scratch,
                     tbgw_err *err) {
    switch (v->t) {
    case PT_NONE:
        *out = tbgw_value_null();
        return 0;
    case PT_BOOL:
        *out = tbgw_value_bool((int)v->u.i);
        return 0;
    case PT_INT:
        *out = tbgw_value_int(v->u.i);
        return 0;
    case PT_FLOAT:
        if (!isfinite(v->u.f))
            return tbgw_err_set(err, TBGW_EINVAL, "ValueError: %f is not a valid JSON number", v->u.f);
        *out = tbgw_value_double(v->u.f);
        return 0;
    case PT_STR: {
        size_t at = scratch->len;
        tbgw_buf_append(scratch, v->u.s->s, v->u.s->n);
        tbgw_buf_putc(scratch, 0);
        if (scratch->oom) return TBGW_ENOMEM;
        *out = tbgw_value_string(scratch->p + at);
        return 0;
    }
    case PT_BIG: { /* beyond int64: TBGW_V_UINT when it fits 64 unsigned bits, else the exact digits */
        const py_big *b = v->u.big;
        if (!b->neg && b->n <= 2) {
            *out = tbgw_value_uint((uint64_t)b->d[0] | (b->n > 1 ? (uint64_t)b->d[1] << 32 : 0));
            return 0;
        }
        size_t at = scratch->len;
        int rc_;
        GUARDED(x, big_to_str(x, v->u.big, 10, scratch));
        if (rc_) return tbgw_err_set(err, TBGW_EINVAL, "%s", x->errmsg);
        tbgw_buf_putc(scratch, 0);
        if (scratch->oom) return TBGW_ENOMEM;
        out->type = TBGW_V_NUMBER;
        out->u.s = scratch->p + at;
        return 0;
    }
    case PT_LIST:
    case PT_TUPLE:
    case PT_DICT:
    case PT_ITER: {
        size_t at = scratch->len;
        {
            json_t *j = NULL;
            int rc = tbgw_py_to_json(x, v, &j, err);
            if (rc) return rc;
            char *s = tbgw_json_dumps(j, 0);
            json_decref(j);
            if (!s) return TBGW_ENOMEM;
            tbgw_buf_puts(scratch, s);
            free(s);
        }
        tbgw_buf_putc(scratch, 0);
        if (scratch->oom) return TBGW_ENOMEM;
        out->type = TBGW_V_JSON;
        out->u.s = scratch->p + at;
        return 0;
    }
    default:
        return tbgw_err_set(err, TBGW_EINVAL, "TypeError: a value of type '%s' cannot be sent", pv_tname(*v));
    }
}

const char *tbgw_py_last_error(const tbgw_py_ctx *x) {
    return x->errmsg;
}
