/* Evaluation of the compiled tree: one function per node kind, dispatched through a table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "convert/pyexpr/internal.h"

#define KID(nd, i) (x->e->kids[(nd)->list + (i)])

static pv ev(X *x, int32_t n, py_frame *f) {
    return py_eval_node(x, n, f);
}

static pv e_const(X *x, const py_node *nd, py_frame *f) {
    return x->e->consts[nd->v];
}

static pv lookup_global(X *x, int32_t g) {
    if (x->gdone[g]) return x->gcache[g];
    const char *name = x->e->globals[g];
    pv v;
    int found = 0;
    for (size_t i = x->nbinds; i-- > 0;)
        if (!strcmp(x->binds[i].name, name)) {
            v = x->binds[i].v;
            found = 1;
            break;
        }
    if (!found && !x->strict) {
        int b = py_builtin_find(name);
        if (b >= 0) {
            v = pv_ptr(PT_BUILTIN, NULL);
            v.u.i = b;
            found = 1;
        }
    }
    if (!found) py_raise(x, "NameError", "name '%s' is not defined", name);
    x->gcache[g] = v;
    x->gdone[g] = 1;
    return v;
}

static pv e_name(X *x, const py_node *nd, py_frame *f) {
    if (nd->a < 0) return lookup_global(x, nd->b);
    for (int32_t d = nd->a; d > 0; d--) f = f->parent;
    pv v = f->slot[nd->b];
    if (v.t == PT_UNBOUND)
        py_raise(x, "UnboundLocalError",
                 "cannot access local variable '%s' where it is not associated with a value",
                 x->e->consts[nd->v].u.s->s);
    return v;
}

static pv e_attr(X *x, const py_node *nd, py_frame *f) {
    pv o = ev(x, nd->a, f);
    return py_getattr(x, o, x->e->consts[nd->v].u.s->s);
}

/* ---- indexing and slicing ---- */

static int64_t slice_bound(X *x, pv v) {
    if (v.t == PT_INT || v.t == PT_BOOL) return v.u.i;
    if (v.t == PT_BIG) return v.u.big->neg ? INT64_MIN / 4 : INT64_MAX / 4;
    py_type_error(x, "slice indices must be integers or None or have an __index__ method");
}

/* PySlice_AdjustIndices semantics; returns the number of items */
static int64_t adjust(X *x, int64_t len, pv lo, pv hi, pv st, int64_t *start, int64_t *step, int64_t *stop) {
    int64_t s = st.t == PT_NONE ? 1 : slice_bound(x, st);
    if (s == 0) py_raise(x, "ValueError", "slice step cannot be zero");
    int64_t a, b;
    if (lo.t == PT_NONE) {
        a = s < 0 ? len - 1 : 0;
    } else {
        a = slice_bound(x, lo);
        if (a < 0) {
            a += len;
            if (a < 0) a = s < 0 ? -1 : 0;
        } else if (a >= len) {
            a = s < 0 ? len - 1 : len;
        }
    }
    if (hi.t == PT_NONE) {
        b = s < 0 ? -1 : len;
    } else {
        b = slice_bound(x, hi);
        if (b < 0) {
            b += len;
            if (b < 0) b = s < 0 ? -1 : 0;
        } else if (b >= len) {
            b = s < 0 ? len - 1 : len;
        }
    }
    *start = a;
    *step = s;
    if (stop) *stop = b;
    if (s > 0) return b > a ? (b - a - 1) / s + 1 : 0;
    return a > b ? (a - b - 1) / (-s) + 1 : 0;
}

/* byte offsets of the code points of a non-ASCII string */
static size_t *char_offsets(X *x, const py_str *s) {
    size_t *off = py_alloc(x, (s->nchars + 1) * sizeof(size_t));
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++)
        if (((unsigned char)s->s[i] & 0xC0) != 0x80) off[k++] = i;
    off[k] = s->n;
    return off;
}

static pv str_slice(X *x, const py_str *s, int64_t a, int64_t step, int64_t cnt) {
    py_step(x, (uint64_t)cnt);
    if (s->n == s->nchars) {
        if (step == 1) return pv_str_chars(x, s->s + a, (size_t)cnt, (size_t)cnt);
        char *buf = py_alloc(x, (size_t)cnt + 1);
        for (int64_t i = 0; i < cnt; i++) buf[i] = s->s[a + i * step];
        return pv_str_chars(x, buf, (size_t)cnt, (size_t)cnt);
    }
    size_t *off = char_offsets(x, s);
    if (step == 1) return pv_str_chars(x, s->s + off[a], off[a + cnt] - off[a], (size_t)cnt);
    tbgw_buf *b = py_buf(x);
    for (int64_t i = 0; i < cnt; i++) {
        int64_t c = a + i * step;
        tbgw_buf_append(b, s->s + off[c], off[c + 1] - off[c]);
    }
    return py_buf_done(x, b);
}

pv py_slice(X *x, pv obj, pv lo, pv hi, pv st) {
    int64_t a, step, cnt;
    switch (obj.t) {
    case PT_STR:
        cnt = adjust(x, (int64_t)obj.u.s->nchars, lo, hi, st, &a, &step, NULL);
        return str_slice(x, obj.u.s, a, step, cnt);
    case PT_BYTES:
    case PT_BYTEARRAY: {
        cnt = adjust(x, (int64_t)obj.u.b->n, lo, hi, st, &a, &step, NULL);
        py_step(x, (uint64_t)cnt);
        pv r = pv_bytes(x, obj.t, "", 0);
        py_bytes *nb = py_alloc(x, sizeof *nb + (size_t)cnt + 1);
        nb->n = (size_t)cnt;
        for (int64_t i = 0; i < cnt; i++) nb->b[i] = obj.u.b->b[a + i * step];
        r.u.b = nb;
        return r;
    }
    case PT_LIST:
    case PT_TUPLE: {
        cnt = adjust(x, (int64_t)obj.u.l->n, lo, hi, st, &a, &step, NULL);
        py_step(x, (uint64_t)cnt);
        pv r = pv_list(x, obj.t, (size_t)cnt);
        for (int64_t i = 0; i < cnt; i++) r.u.l->v[i] = obj.u.l->v[a + i * step];
        r.u.l->n = (size_t)cnt;
        return r;
    }
    case PT_RANGE: {
        int64_t b;
        cnt = adjust(x, pv_len(x, obj), lo, hi, st, &a, &step, &b);
        (void)cnt;
        py_range *r = py_alloc(x, sizeof *r);
        r->start = obj.u.r->start + a * obj.u.r->step;
        r->stop = obj.u.r->start + b * obj.u.r->step;
        r->step = obj.u.r->step * step;
        return pv_ptr(PT_RANGE, r);
    }
    default:
        py_type_error(x, "'%s' object is not subscriptable", pv_tname(obj));
    }
}

static int64_t seq_index(X *x, pv key, int64_t len, const char *what, const char *tname) {
    if (key.t != PT_INT && key.t != PT_BOOL && key.t != PT_BIG) {
        if (!strcmp(tname, "str"))
            py_type_error(x, "string indices must be integers, not '%s'", pv_tname(key));
        py_type_error(x, "%s indices must be integers or slices, not %s", tname, pv_tname(key));
    }
    if (key.t == PT_BIG) py_raise(x, "IndexError", "cannot fit 'int' into an index-sized integer");
    int64_t i = key.u.i;
    if (i < 0) i += len;
    if (i < 0 || i >= len) py_raise(x, "IndexError", "%s", what);
    return i;
}

pv py_index_get(X *x, pv obj, pv key) {
    switch (obj.t) {
    case PT_DICT: {
        pv v;
        if (py_dict_get(x, obj.u.d, key, &v)) return v;
        tbgw_buf *b = py_buf(x);
        pv_repr(x, key, b);
        pv s = py_buf_done(x, b);
        py_raise(x, "KeyError", "%s", s.u.s->s);
    }
    case PT_LIST:
        return obj.u.l->v[seq_index(x, key, (int64_t)obj.u.l->n, "list index out of range", "list")];
    case PT_TUPLE:
        return obj.u.l->v[seq_index(x, key, (int64_t)obj.u.l->n, "tuple index out of range", "tuple")];
    case PT_BYTES:
    case PT_BYTEARRAY:
        return pv_int(obj.u.b->b[seq_index(x, key, (int64_t)obj.u.b->n, "index out of range",
                                           obj.t == PT_BYTES ? "byte" : "bytearray")]);
    case PT_STR: {
        const py_str *s = obj.u.s;
        int64_t i = seq_index(x, key, (int64_t)s->nchars, "string index out of range", "str");
        if (s->n == s->nchars) return pv_str_chars(x, s->s + i, 1, 1);
        size_t *off = char_offsets(x, s);
        return pv_str_chars(x, s->s + off[i], off[i + 1] - off[i], 1);
    }
    case PT_RANGE: {
        int64_t i = seq_index(x, key, pv_len(x, obj), "range object index out of range", "range");
        return pv_int(obj.u.r->start + i * obj.u.r->step);
    }
    default:
        py_type_error(x, "'%s' object is not subscriptable", pv_tname(obj));
    }
}

static pv e_sub(X *x, const py_node *nd, py_frame *f) {
    pv o = ev(x, nd->a, f);
    const py_node *ix = &x->e->nodes[nd->b];
    if (ix->kind == K_SLICE) {
        pv lo = ix->a >= 0 ? ev(x, ix->a, f) : pv_none();
        pv hi = ix->b >= 0 ? ev(x, ix->b, f) : pv_none();
        pv st = ix->c >= 0 ? ev(x, ix->c, f) : pv_none();
        if (o.t == PT_DICT) py_type_error(x, "unhashable type: 'slice'");
        return py_slice(x, o, lo, hi, st);
    }
    if (ix->kind == K_TUPLE)
        for (uint32_t i = 0; i < ix->n; i++)
            if (x->e->nodes[KID(ix, i)].kind == K_SLICE) { /* a[1:2, 3]: a tuple holding a slice */
                if (o.t == PT_DICT) py_type_error(x, "unhashable type: 'slice'");
                return py_index_get(x, o, pv_list(x, PT_TUPLE, 0));
            }
    return py_index_get(x, o, ev(x, nd->b, f));
}

static pv e_slice(X *x, const py_node *nd, py_frame *f) {
    py_raise(x, "TypeError", "slices are only supported inside []");
}

/* ---- calls ---- */

static py_list *star_items(X *x, pv v, pv fn, int only_arg) {
    switch (v.t) {
    case PT_LIST:
    case PT_TUPLE:
    case PT_ITER:
    case PT_STR:
    case PT_BYTES:
    case PT_BYTEARRAY:
    case PT_DICT:
    case PT_SET:
    case PT_RANGE:
        return pv_iter(x, v);
    default:
        break;
    }
    if (only_arg && (fn.t == PT_BUILTIN || fn.t == PT_FUNC))
        py_type_error(x, "%s() argument after * must be an iterable, not %s",
                      fn.t == PT_BUILTIN ? py_builtins[fn.u.i].name : "<lambda>", pv_tname(v));
    py_type_error(x, "Value after * must be an iterable, not %s", pv_tname(v));
}

static pv e_call(X *x, const py_node *nd, py_frame *f) {
    pv fn = ev(x, nd->a, f);
    pv pos = pv_list(x, PT_LIST, nd->n);
    py_list *kn = NULL, *kv = NULL;
    for (uint32_t i = 0; i < nd->n; i++) {
        const py_node *an = &x->e->nodes[KID(nd, i)];
        if (an->kind == K_STAR) {
            py_list *it = star_items(x, ev(x, an->a, f), fn, nd->n == 1);
            for (size_t j = 0; j < it->n; j++) pv_list_push(x, pos.u.l, it->v[j]);
        } else if (an->kind == K_KW || an->kind == K_DSTAR) {
            if (!kn) {
                kn = pv_list(x, PT_LIST, 4).u.l;
                kv = pv_list(x, PT_LIST, 4).u.l;
            }
            if (an->kind == K_KW) {
                pv name = x->e->consts[an->v];
                pv_list_push(x, kn, name);
                pv_list_push(x, kv, ev(x, an->a, f));
            } else {
                pv d = ev(x, an->a, f);
                if (d.t != PT_DICT)
                    py_type_error(x, "%s%sargument after ** must be a mapping, not %s",
                                  fn.t == PT_BUILTIN ? py_builtins[fn.u.i].name
                                  : fn.t == PT_FUNC  ? "<lambda>"
                                                     : "",
                                  fn.t == PT_BUILTIN || fn.t == PT_FUNC ? "() " : "", pv_tname(d));
                for (size_t j = 0; j < d.u.d->n; j++) {
                    if (d.u.d->k[j].t != PT_STR) py_type_error(x, "keywords must be strings");
                    pv_list_push(x, kn, d.u.d->k[j]);
                    pv_list_push(x, kv, d.u.d->v[j]);
                }
            }
        } else {
            pv_list_push(x, pos.u.l, ev(x, KID(nd, i), f));
        }
    }
    py_args a = {pos.u.l->v, pos.u.l->n, kn ? kn->v : NULL, kv ? kv->v : NULL, kn ? kn->n : 0};
    return py_call(x, fn, &a);
}

pv py_call_lambda(X *x, const py_func *fn, const py_args *a) {
    const py_node *nd = &x->e->nodes[fn->node];
    uint32_t np = nd->v;
    if (a->n > np)
        py_type_error(x, "<lambda>() takes %u positional argument%s but %zu %s given", np, np == 1 ? "" : "s",
                      a->n, a->n == 1 ? "was" : "were");
    py_frame *fr = py_alloc(x, sizeof *fr + (nd->flags + 1) * sizeof(pv));
    fr->parent = fn->env;
    uint8_t *set = py_alloc(x, np + 1);
    memset(set, 0, np + 1);
    for (size_t i = 0; i < a->n; i++) {
        fr->slot[i] = a->v[i];
        set[i] = 1;
    }
    for (size_t k = 0; k < a->nkw; k++) {
        uint32_t j;
        for (j = 0; j < np; j++)
            if (pv_eq(x, x->e->consts[KID(nd, j)], a->kwn[k])) break;
        if (j == np) py_type_error(x, "<lambda>() got an unexpected keyword argument '%s'", a->kwn[k].u.s->s);
        if (set[j]) py_type_error(x, "<lambda>() got multiple values for argument '%s'", a->kwn[k].u.s->s);
        fr->slot[j] = a->kwv[k];
        set[j] = 1;
    }
    for (uint32_t j = 0; j < np; j++)
        if (!set[j]) {
            size_t missing = 0;
            for (uint32_t k = 0; k < np; k++) missing += !set[k];
            py_type_error(x, "<lambda>() missing %zu required positional argument%s: '%s'%s", missing,
                          missing == 1 ? "" : "s", x->e->consts[KID(nd, j)].u.s->s,
                          missing > 1 ? " ..." : "");
        }
    if (++x->depth > x->max_depth) py_raise(x, "RecursionError", "maximum recursion depth exceeded");
    pv r = ev(x, nd->a, fr);
    x->depth--;
    return r;
}

static pv e_lambda(X *x, const py_node *nd, py_frame *f) {
    py_func *fn = py_alloc(x, sizeof *fn);
    fn->node = (int32_t)(nd - x->e->nodes);
    fn->env = f;
    return pv_ptr(PT_FUNC, fn);
}

/* ---- operators ---- */

static pv e_unary(X *x, const py_node *nd, py_frame *f) {
    pv a = ev(x, nd->a, f);
    if (pv_is_num(a)) return num_unary(x, nd->op, a);
    py_type_error(x, "bad operand type for unary %c: '%s'",
                  nd->op == UOP_NEG   ? '-'
                  : nd->op == UOP_POS ? '+'
                                      : '~',
                  pv_tname(a));
}

static const char *const binsym[OP_NBIN] = {"+",  "-",  "*", "/", "//", "%", "** or pow()",
                                            "<<", ">>", "&", "|", "^",  "@"};

static pv seq_repeat(X *x, pv s, pv n) {
    if (n.t == PT_BIG && !n.u.big->neg)
        py_raise(x, "OverflowError", "cannot fit 'int' into an index-sized integer");
    int64_t k = n.t == PT_BIG ? 0 : n.u.i;
    if (k < 0) k = 0;
    size_t unit = s.t == PT_STR ? s.u.s->n : (s.t == PT_BYTES || s.t == PT_BYTEARRAY) ? s.u.b->n : s.u.l->n;
    if (unit && (uint64_t)k > (x->mem.limit ? x->mem.limit : SIZE_MAX / 32) / unit) py_oom(x);
    size_t total = unit * (size_t)k;
    py_step(x, total / 8);
    if (s.t == PT_STR) {
        char *buf = py_alloc(x, total + 1);
        for (int64_t i = 0; i < k; i++) memcpy(buf + (size_t)i * unit, s.u.s->s, unit);
        return pv_str_chars(x, buf, total, s.u.s->nchars * (size_t)k);
    }
    if (s.t == PT_BYTES || s.t == PT_BYTEARRAY) {
        char *buf = py_alloc(x, total + 1);
        for (int64_t i = 0; i < k; i++) memcpy(buf + (size_t)i * unit, s.u.b->b, unit);
        return pv_bytes(x, s.t, buf, total);
    }
    py_step(x, total);
    pv r = pv_list(x, s.t, total);
    for (int64_t i = 0; i < k; i++) memcpy(r.u.l->v + (size_t)i * unit, s.u.l->v, unit * sizeof(pv));
    r.u.l->n = total;
    return r;
}

static pv concat(X *x, pv a, pv b) {
    if (a.t == PT_STR) {
        size_t n = a.u.s->n + b.u.s->n;
        char *buf = py_alloc(x, n + 1);
        memcpy(buf, a.u.s->s, a.u.s->n);
        memcpy(buf + a.u.s->n, b.u.s->s, b.u.s->n);
        return pv_str_chars(x, buf, n, a.u.s->nchars + b.u.s->nchars);
    }
    if (a.t == PT_BYTES || a.t == PT_BYTEARRAY) {
        size_t n = a.u.b->n + b.u.b->n;
        char *buf = py_alloc(x, n + 1);
        memcpy(buf, a.u.b->b, a.u.b->n);
        memcpy(buf + a.u.b->n, b.u.b->b, b.u.b->n);
        return pv_bytes(x, a.t, buf, n);
    }
    size_t n = a.u.l->n + b.u.l->n;
    py_step(x, n);
    pv r = pv_list(x, a.t, n);
    memcpy(r.u.l->v, a.u.l->v, a.u.l->n * sizeof(pv));
    memcpy(r.u.l->v + a.u.l->n, b.u.l->v, b.u.l->n * sizeof(pv));
    r.u.l->n = n;
    return r;
}

static pv set_op(X *x, int op, pv a, pv b) {
    pv r = pv_dict(x, a.t);
    const py_dict *da = a.u.d, *db = b.u.d;
    py_step(x, da->n + db->n);
    if (a.t == PT_DICT) { /* d1 | d2 */
        for (size_t i = 0; i < da->n; i++) py_dict_set(x, r.u.d, da->k[i], da->v[i]);
        for (size_t i = 0; i < db->n; i++) py_dict_set(x, r.u.d, db->k[i], db->v[i]);
        return r;
    }
    for (size_t i = 0; i < da->n; i++) {
        int in_b = py_dict_get(x, db, da->k[i], NULL);
        if (op == OP_OR || (op == OP_AND && in_b) || ((op == OP_SUB || op == OP_XOR) && !in_b))
            py_dict_set(x, r.u.d, da->k[i], pv_none());
    }
    if (op == OP_OR || op == OP_XOR)
        for (size_t i = 0; i < db->n; i++)
            if (op == OP_OR || !py_dict_get(x, da, db->k[i], NULL))
                py_dict_set(x, r.u.d, db->k[i], pv_none());
    return r;
}

static int is_bytes(pv v) {
    return v.t == PT_BYTES || v.t == PT_BYTEARRAY;
}

pv py_binop(X *x, int op, pv a, pv b) {
    if (pv_is_num(a) && pv_is_num(b)) {
        int handled;
        pv r = num_binop(x, op, a, b, &handled);
        if (handled) return r;
    }
    switch (op) {
    case OP_ADD:
        if ((a.t == PT_STR && b.t == PT_STR) || (is_bytes(a) && is_bytes(b)) ||
            (a.t == PT_LIST && b.t == PT_LIST) || (a.t == PT_TUPLE && b.t == PT_TUPLE))
            return concat(x, a, b);
        if (a.t == PT_STR) py_type_error(x, "can only concatenate str (not \"%s\") to str", pv_tname(b));
        if (a.t == PT_LIST || a.t == PT_TUPLE)
            py_type_error(x, "can only concatenate %s (not \"%s\") to %s", pv_tname(a), pv_tname(b),
                          pv_tname(a));
        if (is_bytes(a)) py_type_error(x, "can't concat %s to %s", pv_tname(b), pv_tname(a));
        break;
    case OP_MUL: {
        int sa = a.t == PT_STR || is_bytes(a) || a.t == PT_LIST || a.t == PT_TUPLE;
        int sb = b.t == PT_STR || is_bytes(b) || b.t == PT_LIST || b.t == PT_TUPLE;
        if (sa && pv_is_int(b)) return seq_repeat(x, a, b);
        if (sb && pv_is_int(a)) return seq_repeat(x, b, a);
        if (sa && !pv_is_num(b) && b.t != PT_FLOAT)
            py_type_error(x, "can't multiply sequence by non-int of type '%s'", pv_tname(b));
        if (sa || sb)
            py_type_error(x, "can't multiply sequence by non-int of type '%s'", pv_tname(sa ? b : a));
        break;
    }
    case OP_MOD:
        if (a.t == PT_STR) return py_percent(x, a, b);
        break;
    case OP_OR:
    case OP_AND:
    case OP_XOR:
    case OP_SUB:
        if (a.t == PT_SET && b.t == PT_SET) return set_op(x, op, a, b);
        if (op == OP_OR && a.t == PT_DICT && b.t == PT_DICT) return set_op(x, op, a, b);
        break;
    default:
        break;
    }
    py_type_error(x, "unsupported operand type(s) for %s: '%s' and '%s'", binsym[op], pv_tname(a),
                  pv_tname(b));
}

static pv e_binop(X *x, const py_node *nd, py_frame *f) {
    pv a = ev(x, nd->a, f);
    pv b = ev(x, nd->b, f);
    return py_binop(x, nd->op, a, b);
}

static pv e_boolop(X *x, const py_node *nd, py_frame *f) {
    pv v = pv_none();
    for (uint32_t i = 0; i < nd->n; i++) {
        v = ev(x, KID(nd, i), f);
        int t = pv_truthy(x, v);
        if (nd->op ? t : !t) return v;
    }
    return v;
}

static pv e_not(X *x, const py_node *nd, py_frame *f) {
    return pv_bool(!pv_truthy(x, ev(x, nd->a, f)));
}

int py_contains(X *x, pv c, pv item) {
    switch (c.t) {
    case PT_STR:
        if (item.t != PT_STR)
            py_type_error(x, "'in <string>' requires string as left operand, not %s", pv_tname(item));
        return memmem(c.u.s->s, c.u.s->n, item.u.s->s, item.u.s->n) != NULL || item.u.s->n == 0;
    case PT_BYTES:
    case PT_BYTEARRAY:
        if (pv_is_int(item)) {
            if (item.t == PT_BIG || item.u.i < 0 || item.u.i > 255)
                py_raise(x, "ValueError", "byte must be in range(0, 256)");
            return memchr(c.u.b->b, (int)item.u.i, c.u.b->n) != NULL;
        }
        if (!is_bytes(item)) py_type_error(x, "a bytes-like object is required, not '%s'", pv_tname(item));
        return item.u.b->n == 0 || memmem(c.u.b->b, c.u.b->n, item.u.b->b, item.u.b->n) != NULL;
    case PT_DICT:
    case PT_SET:
        return py_dict_get(x, c.u.d, item, NULL);
    case PT_RANGE: {
        if (!pv_is_int(item) || item.t == PT_BIG) {
            if (item.t != PT_FLOAT) return 0;
        }
        py_list *l = pv_iter(x, c);
        for (size_t i = 0; i < l->n; i++)
            if (pv_eq(x, l->v[i], item)) return 1;
        return 0;
    }
    case PT_LIST:
    case PT_TUPLE:
    case PT_ITER:
        py_step(x, c.u.l->n);
        for (size_t i = 0; i < c.u.l->n; i++)
            if (pv_eq(x, c.u.l->v[i], item)) return 1;
        return 0;
    default:
        py_type_error(x, "argument of type '%s' is not iterable", pv_tname(c));
    }
}

static int identical(pv a, pv b) {
    if (a.t != b.t) return 0;
    switch (a.t) {
    case PT_NONE:
        return 1;
    case PT_BOOL:
        return a.u.i == b.u.i;
    case PT_INT:
        return a.u.i == b.u.i && a.u.i >= -5 && a.u.i <= 256;
    case PT_BUILTIN:
        return a.u.i == b.u.i;
    case PT_FLOAT:
        return 0;
    case PT_TUPLE:
        return a.u.l == b.u.l || (a.u.l->n == 0 && b.u.l->n == 0); /* () is a singleton */
    default:
        return a.u.p == b.u.p;
    }
}

int py_compare(X *x, int op, pv a, pv b) {
    static const char *const sym[] = {"<", "<=", "==", "!=", ">", ">="};
    switch (op) {
    case CMP_EQ:
        return pv_eq(x, a, b);
    case CMP_NE:
        return !pv_eq(x, a, b);
    case CMP_IN:
        return py_contains(x, b, a);
    case CMP_NOTIN:
        return !py_contains(x, b, a);
    case CMP_IS:
        return identical(a, b);
    case CMP_ISNOT:
        return !identical(a, b);
    default: {
        int c = pv_cmp(x, a, b, sym[op]);
        if (c == -2) return 0;
        switch (op) {
        case CMP_LT:
            return c < 0;
        case CMP_LE:
            return c <= 0;
        case CMP_GT:
            return c > 0;
        default:
            return c >= 0;
        }
    }
    }
}

static pv e_compare(X *x, const py_node *nd, py_frame *f) {
    pv a = ev(x, KID(nd, 0), f);
    for (uint32_t i = 1; i < nd->n; i++) {
        pv b = ev(x, KID(nd, i), f);
        if (!py_compare(x, x->e->cmpops[nd->v + i - 1], a, b)) return pv_bool(0);
        a = b;
    }
    return pv_bool(1);
}

static pv e_ifexp(X *x, const py_node *nd, py_frame *f) {
    return pv_truthy(x, ev(x, nd->b, f)) ? ev(x, nd->a, f) : ev(x, nd->c, f);
}

/* ---- displays ---- */

static pv e_seq(X *x, const py_node *nd, py_frame *f) {
    int t = nd->kind == K_LIST ? PT_LIST : nd->kind == K_TUPLE ? PT_TUPLE : PT_SET;
    if (t == PT_SET) {
        pv s = pv_dict(x, PT_SET);
        for (uint32_t i = 0; i < nd->n; i++) {
            const py_node *en = &x->e->nodes[KID(nd, i)];
            if (en->kind == K_STAR) {
                py_list *it = star_items(x, ev(x, en->a, f), pv_none(), 0);
                for (size_t j = 0; j < it->n; j++) py_dict_set(x, s.u.d, it->v[j], pv_none());
            } else {
                py_dict_set(x, s.u.d, ev(x, KID(nd, i), f), pv_none());
            }
        }
        return s;
    }
    pv l = pv_list(x, t, nd->n);
    for (uint32_t i = 0; i < nd->n; i++) {
        const py_node *en = &x->e->nodes[KID(nd, i)];
        if (en->kind == K_STAR) {
            py_list *it = star_items(x, ev(x, en->a, f), pv_none(), 0);
            py_step(x, it->n);
            for (size_t j = 0; j < it->n; j++) pv_list_push(x, l.u.l, it->v[j]);
        } else {
            pv_list_push(x, l.u.l, ev(x, KID(nd, i), f));
        }
    }
    return l;
}

static pv e_dict(X *x, const py_node *nd, py_frame *f) {
    pv d = pv_dict(x, PT_DICT);
    for (uint32_t i = 0; i + 1 < nd->n; i += 2) {
        if (KID(nd, i) < 0) {
            pv m = ev(x, KID(nd, i + 1), f);
            if (m.t != PT_DICT) py_type_error(x, "'%s' object is not a mapping", pv_tname(m));
            for (size_t j = 0; j < m.u.d->n; j++) py_dict_set(x, d.u.d, m.u.d->k[j], m.u.d->v[j]);
            continue;
        }
        pv k = ev(x, KID(nd, i), f);
        pv v = ev(x, KID(nd, i + 1), f);
        py_dict_set(x, d.u.d, k, v);
    }
    return d;
}

static void assign(X *x, int32_t tn, py_frame *cf, pv v) {
    const py_node *t = &x->e->nodes[tn];
    if (t->kind == K_NAME) {
        cf->slot[t->b] = v;
        return;
    }
    switch (v.t) {
    case PT_LIST:
    case PT_TUPLE:
    case PT_ITER:
    case PT_STR:
    case PT_BYTES:
    case PT_BYTEARRAY:
    case PT_DICT:
    case PT_SET:
    case PT_RANGE:
        break;
    default:
        py_type_error(x, "cannot unpack non-iterable %s object", pv_tname(v));
    }
    py_list *it = pv_iter(x, v);
    if (it->n != t->n) {
        if (it->n > t->n) py_raise(x, "ValueError", "too many values to unpack (expected %u)", t->n);
        py_raise(x, "ValueError", "not enough values to unpack (expected %u, got %zu)", t->n, it->n);
    }
    for (uint32_t i = 0; i < t->n; i++) assign(x, KID(t, i), cf, it->v[i]);
}

static void comp_run(X *x, const py_node *nd, py_frame *cf, py_frame *outer, uint32_t ci, pv acc) {
    if (ci == nd->n) {
        py_step(x, 1);
        if (nd->op == COMP_DICT) {
            pv k = ev(x, nd->a, cf);
            py_dict_set(x, acc.u.d, k, ev(x, nd->b, cf));
        } else if (nd->op == COMP_SET) {
            py_dict_set(x, acc.u.d, ev(x, nd->a, cf), pv_none());
        } else {
            pv_list_push(x, acc.u.l, ev(x, nd->a, cf));
        }
        return;
    }
    const py_node *cl = &x->e->nodes[KID(nd, ci)];
    if (cl->kind == K_IF) {
        if (pv_truthy(x, ev(x, cl->a, cf))) comp_run(x, nd, cf, outer, ci + 1, acc);
        return;
    }
    pv src = ev(x, cl->b, ci == 0 ? outer : cf);
    py_list *it = pv_iter(x, src);
    size_t n = it->n;
    for (size_t i = 0; i < n && i < it->n; i++) {
        py_step(x, 1);
        assign(x, cl->a, cf, it->v[i]);
        comp_run(x, nd, cf, outer, ci + 1, acc);
    }
}

static pv e_comp(X *x, const py_node *nd, py_frame *f) {
    py_frame *cf = py_alloc(x, sizeof *cf + (nd->flags + 1) * sizeof(pv));
    cf->parent = f;
    for (uint16_t i = 0; i <= nd->flags; i++) cf->slot[i].t = PT_UNBOUND;
    pv acc;
    if (nd->op == COMP_DICT || nd->op == COMP_SET) {
        acc = pv_dict(x, nd->op == COMP_DICT ? PT_DICT : PT_SET);
    } else {
        acc = pv_list(x, nd->op == COMP_GEN ? PT_ITER : PT_LIST, 0);
        if (nd->op == COMP_GEN) acc.u.l->kind = "generator";
    }
    comp_run(x, nd, cf, f, 0, acc);
    return acc;
}

static pv e_fstr(X *x, const py_node *nd, py_frame *f) {
    tbgw_buf *b = py_buf(x);
    for (uint32_t i = 0; i < nd->n; i++) {
        const py_node *part = &x->e->nodes[KID(nd, i)];
        if (part->kind == K_CONST) {
            const py_str *s = x->e->consts[part->v].u.s;
            tbgw_buf_append(b, s->s, s->n);
            continue;
        }
        pv v = ev(x, part->a, f);
        if (part->op == 'r' || part->op == 'a') {
            tbgw_buf *r = py_buf(x);
            pv_repr(x, v, r);
            v = py_buf_done(x, r);
        } else if (part->op == 's') {
            v = py_to_str(x, v);
        }
        if (part->b >= 0) {
            pv spec = ev(x, part->b, f);
            py_format_spec(x, v, spec.u.s->s, spec.u.s->n, b);
        } else {
            pv_strv(x, v, b);
        }
        py_buf_check(x, b);
    }
    return py_buf_done(x, b);
}

static pv e_bad(X *x, const py_node *nd, py_frame *f) {
    py_raise(x, "SystemError", "unexpected node kind %d", nd->kind);
}

typedef pv (*evfn)(X *x, const py_node *nd, py_frame *f);
static const evfn table[K_NKINDS] = {
    [K_CONST] = e_const,   [K_NAME] = e_name,  [K_ATTR] = e_attr,       [K_SUB] = e_sub,
    [K_SLICE] = e_slice,   [K_CALL] = e_call,  [K_UNARY] = e_unary,     [K_BINOP] = e_binop,
    [K_BOOLOP] = e_boolop, [K_NOT] = e_not,    [K_COMPARE] = e_compare, [K_IFEXP] = e_ifexp,
    [K_LIST] = e_seq,      [K_TUPLE] = e_seq,  [K_SET] = e_seq,         [K_DICT] = e_dict,
    [K_STAR] = e_bad,      [K_DSTAR] = e_bad,  [K_KW] = e_bad,          [K_COMP] = e_comp,
    [K_FOR] = e_bad,       [K_IF] = e_bad,     [K_LAMBDA] = e_lambda,   [K_FSTR] = e_fstr,
    [K_FVAL] = e_bad,      [K_TARGET] = e_bad,
};

pv py_eval_node(X *x, int32_t n, py_frame *f) {
    py_step(x, 1);
    const py_node *nd = &x->e->nodes[n];
    return table[nd->kind](x, nd, f);
}
