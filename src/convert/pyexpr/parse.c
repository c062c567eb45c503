/* Parser: Python 3 expression grammar and precedence to a node array. Names are resolved after the
 * parse (a comprehension's element is parsed before its `for` clause binds the names it uses):
 * each K_NAME records its scope, and resolution turns it into (frame depth, slot) or a free name. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "convert/pyexpr/lex.h"

typedef struct scope {
    int parent;
    size_t n, cap;
    const py_str **names;
} scope;

typedef struct P {
    tbgw_py *e;
    X *x;
    py_lexer lx;
    py_tok *t;
    size_t nt, i;
    scope *scopes;
    size_t nscopes, capscopes;
    int cur;    /* current scope, -1 = top level */
    int depth;  /* bracket and unary nesting */
    int rdepth; /* recursion through p_test / p_power (if-else, lambda, ** chains) */
    size_t capnodes, capkids, capconsts, capcmp;
    py_tok **alltoks; /* every token array, freed at the end */
    size_t nall;
} P;

typedef struct vec {
    int32_t *v;
    size_t n, cap;
} vec;

static void vpush(P *p, vec *v, int32_t n) {
    if (v->n == v->cap) {
        size_t nc = v->cap ? v->cap * 2 : 8;
        int32_t *nv = py_alloc(p->x, nc * sizeof(int32_t));
        if (v->n) memcpy(nv, v->v, v->n * sizeof(int32_t));
        v->v = nv;
        v->cap = nc;
    }
    v->v[v->n++] = n;
}

static void *grow(P *p, void *arr, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return arr;
    size_t nc = *cap ? *cap * 2 : 32;
    while (nc < need) nc *= 2;
    void *na = realloc(arr, nc * elem);
    if (!na) py_raise(p->x, "MemoryError", "out of memory");
    *cap = nc;
    return na;
}

static int32_t node(P *p, int kind, uint32_t pos) {
    tbgw_py *e = p->e;
    if (e->nnodes >= 1u << 24) py_syntax(&p->lx, pos, "expression too large");
    e->nodes = grow(p, e->nodes, &p->capnodes, e->nnodes + 1, sizeof(py_node));
    py_node *nd = &e->nodes[e->nnodes];
    memset(nd, 0, sizeof *nd);
    nd->kind = (uint8_t)kind;
    nd->pos = pos;
    nd->a = nd->b = nd->c = -1;
    return (int32_t)e->nnodes++;
}

#define N(i) (p->e->nodes[(i)])

static void set_kids(P *p, int32_t n, const vec *v) {
    tbgw_py *e = p->e;
    e->kids = grow(p, e->kids, &p->capkids, e->nkids + v->n + 1, sizeof(int32_t));
    if (v->n) memcpy(e->kids + e->nkids, v->v, v->n * sizeof(int32_t));
    N(n).list = (uint32_t)e->nkids;
    N(n).n = (uint32_t)v->n;
    e->nkids += v->n;
}

static uint32_t add_const(P *p, pv v) {
    tbgw_py *e = p->e;
    e->consts = grow(p, e->consts, &p->capconsts, e->nconsts + 1, sizeof(pv));
    e->consts[e->nconsts] = v;
    return (uint32_t)e->nconsts++;
}

static int32_t const_node(P *p, pv v, uint32_t pos) {
    int32_t n = node(p, K_CONST, pos);
    N(n).v = add_const(p, v);
    return n;
}

/* ---- tokens ---- */

static const py_tok *peek(P *p) {
    return &p->t[p->i];
}
static const py_tok *peek2(P *p) {
    return p->i + 1 < p->nt ? &p->t[p->i + 1] : &p->t[p->nt - 1];
}
static const py_tok *next(P *p) {
    const py_tok *t = &p->t[p->i];
    if (t->t != T_END) p->i++;
    return t;
}
static int accept(P *p, int t) {
    if (peek(p)->t == t) {
        next(p);
        return 1;
    }
    return 0;
}

static _Noreturn void unexpected(P *p) {
    const py_tok *t = peek(p);
    if (t->t == T_END) py_syntax(&p->lx, t->pos, "unexpected end of expression");
    if (t->t == T_KW_OTHER)
        py_syntax(&p->lx, t->pos, "'%.*s' is not supported in expressions", (int)(t->end - t->pos),
                  p->lx.src + t->pos);
    if (t->t == T_WALRUS) py_syntax(&p->lx, t->pos, "assignment expressions (:=) are not supported");
    if (t->t == T_AUGASSIGN || t->t == '=' || t->t == ';')
        py_syntax(&p->lx, t->pos, "invalid syntax (statements are not expressions)");
    if (t->t == T_ELLIPSIS) py_syntax(&p->lx, t->pos, "Ellipsis (...) is not supported");
    py_syntax(&p->lx, t->pos, "invalid syntax");
}

static void expect(P *p, int t, const char *what) {
    if (!accept(p, t)) {
        if (peek(p)->t == T_END) py_syntax(&p->lx, peek(p)->pos, "'%s' was never closed or is missing", what);
        unexpected(p);
    }
}

/* ---- scopes ---- */

static int new_scope(P *p, int parent) {
    p->scopes = grow(p, p->scopes, &p->capscopes, p->nscopes + 1, sizeof(scope));
    scope *s = &p->scopes[p->nscopes];
    memset(s, 0, sizeof *s);
    s->parent = parent;
    return (int)p->nscopes++;
}

static int declare(P *p, int sc, const py_str *name, uint32_t pos) {
    scope *s = &p->scopes[sc];
    for (size_t i = 0; i < s->n; i++)
        if (s->names[i]->n == name->n && !memcmp(s->names[i]->s, name->s, name->n)) return (int)i;
    if (s->n >= 250) py_syntax(&p->lx, pos, "too many names in one scope");
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 4;
        const py_str **nn = py_alloc(p->x, nc * sizeof *nn);
        if (s->n) memcpy(nn, s->names, s->n * sizeof *nn);
        s->names = nn;
        s->cap = nc;
    }
    s->names[s->n] = name;
    return (int)s->n++;
}

static pv name_str(P *p, const py_tok *t) {
    const char *s = p->lx.src + t->pos;
    size_t n = t->end - t->pos;
    if (n >= 4 && s[0] == '_' && s[1] == '_' && s[n - 1] == '_' && s[n - 2] == '_')
        py_syntax(&p->lx, t->pos, "access to dunder names ('%.*s') is not supported", (int)n, s);
    return pv_str(p->x, s, n);
}

static int32_t name_node(P *p, const py_tok *t) {
    int32_t n = node(p, K_NAME, t->pos);
    N(n).v = add_const(p, name_str(p, t));
    N(n).c = p->cur;
    return n;
}

/* ---- grammar ---- */

static int32_t p_test(P *p);
static int32_t p_or(P *p);
static int32_t p_expr(P *p);
static int32_t p_testlist(P *p, int allow_tuple);

static int32_t p_fstring(P *p, const py_tok *t, int level);

static int32_t p_strings(P *p) {
    const py_tok *t = peek(p);
    uint32_t pos = t->pos;
    int has_f = 0, has_bytes = -1;
    size_t start = p->i;
    while (peek(p)->t == T_STR || peek(p)->t == T_FSTR) {
        const py_tok *s = next(p);
        int isb = s->t == T_STR && s->val.t == PT_BYTES;
        if (s->t == T_FSTR) has_f = 1;
        if (has_bytes >= 0 && has_bytes != isb)
            py_syntax(&p->lx, s->pos, "cannot mix bytes and nonbytes literals");
        has_bytes = isb;
    }
    size_t end = p->i;
    if (!has_f) {
        if (end - start == 1) return const_node(p, p->t[start].val, pos);
        tbgw_buf *b = py_buf(p->x);
        for (size_t k = start; k < end; k++) {
            pv v = p->t[k].val;
            if (v.t == PT_BYTES)
                tbgw_buf_append(b, v.u.b->b, v.u.b->n);
            else
                tbgw_buf_append(b, v.u.s->s, v.u.s->n);
        }
        py_buf_check(p->x, b);
        pv r = has_bytes ? pv_bytes(p->x, PT_BYTES, b->p ? b->p : "", b->len)
                         : pv_str(p->x, b->p ? b->p : "", b->len);
        py_buf_release(p->x, b);
        return const_node(p, r, pos);
    }
    int32_t n = node(p, K_FSTR, pos);
    vec parts = {0};
    for (size_t k = start; k < end; k++) {
        const py_tok *s = &p->t[k];
        if (s->t == T_STR) {
            vpush(p, &parts, const_node(p, s->val, s->pos));
        } else {
            int32_t f = p_fstring(p, s, 0);
            for (uint32_t j = 0; j < N(f).n; j++) vpush(p, &parts, p->e->kids[N(f).list + j]);
        }
    }
    set_kids(p, n, &parts);
    return n;
}

static int32_t p_target(P *p, int sc);

static int32_t p_target_atom(P *p, int sc) {
    const py_tok *t = peek(p);
    if (t->t == T_NAME) {
        next(p);
        int32_t n = node(p, K_NAME, t->pos);
        pv nm = name_str(p, t);
        N(n).v = add_const(p, nm);
        N(n).a = 0;
        N(n).b = declare(p, sc, nm.u.s, t->pos);
        N(n).flags = 1; /* resolved */
        return n;
    }
    if (t->t == '(' || t->t == '[') {
        int close = t->t == '(' ? ')' : ']';
        next(p);
        int32_t n = p_target(p, sc);
        expect(p, close, close == ')' ? "(" : "[");
        return n;
    }
    if (t->t == '*') py_syntax(&p->lx, t->pos, "starred assignment targets are not supported");
    py_syntax(&p->lx, t->pos, "invalid comprehension target");
}

static int32_t p_target(P *p, int sc) {
    uint32_t pos = peek(p)->pos;
    int32_t first = p_target_atom(p, sc);
    if (peek(p)->t != ',') return first;
    int32_t n = node(p, K_TARGET, pos);
    vec v = {0};
    vpush(p, &v, first);
    while (accept(p, ',')) {
        int t = peek(p)->t;
        if (t != T_NAME && t != '(' && t != '[' && t != '*') break;
        vpush(p, &v, p_target_atom(p, sc));
    }
    set_kids(p, n, &v);
    return n;
}

/* comprehension clauses after the element; the element's names/scopes are moved into the new scope */
static int32_t p_comp(P *p, int kind, int32_t elt, int32_t val, uint32_t pos, size_t node_mark,
                      size_t scope_mark) {
    int outer = p->cur;
    int sc = new_scope(p, outer);
    for (size_t k = node_mark; k < p->e->nnodes; k++)
        if (N(k).kind == K_NAME && !N(k).flags && N(k).c == outer) N(k).c = sc;
    for (size_t k = scope_mark; k < p->nscopes - 1; k++)
        if (p->scopes[k].parent == outer) p->scopes[k].parent = sc;
    int32_t n = node(p, K_COMP, pos);
    N(n).op = (uint8_t)kind;
    N(n).a = elt;
    N(n).b = val;
    N(n).c = sc;
    vec cl = {0};
    int first = 1;
    while (peek(p)->t == T_FOR || peek(p)->t == T_IF) {
        const py_tok *t = next(p);
        if (t->t == T_FOR) {
            int32_t f = node(p, K_FOR, t->pos);
            int32_t tgt = p_target(p, sc);
            expect(p, T_IN, "in");
            p->cur = first ? outer : sc; /* the first iterable is evaluated outside */
            int32_t it = p_or(p);
            p->cur = sc;
            N(f).a = tgt;
            N(f).b = it;
            vpush(p, &cl, f);
            first = 0;
        } else {
            if (first) unexpected(p);
            int32_t c = node(p, K_IF, t->pos);
            p->cur = sc;
            /* `if` operands are or_tests without conditional expressions (Python grammar) */
            int32_t cond = p_or(p);
            N(c).a = cond;
            vpush(p, &cl, c);
        }
    }
    p->cur = outer;
    set_kids(p, n, &cl);
    return n;
}

static int32_t p_star_or_test(P *p) {
    if (peek(p)->t == '*') {
        const py_tok *t = next(p);
        int32_t n = node(p, K_STAR, t->pos);
        int32_t a = p_expr(p); /* may grow the node array: assign afterwards */
        N(n).a = a;
        return n;
    }
    return p_test(p);
}

/* ( ... ) and [ ... ]: tuple/list display, parenthesized expression or comprehension */
static int32_t p_seq(P *p, int close, uint32_t pos) {
    int is_list = close == ']';
    if (accept(p, close)) {
        int32_t n = is_list ? node(p, K_LIST, pos) : const_node(p, pv_list(p->x, PT_TUPLE, 0), pos);
        return n;
    }
    size_t nm = p->e->nnodes, sm = p->nscopes;
    int32_t first = p_star_or_test(p);
    if (peek(p)->t == T_FOR) {
        if (N(first).kind == K_STAR)
            py_syntax(&p->lx, N(first).pos, "iterable unpacking cannot be used in comprehension");
        int32_t n = p_comp(p, is_list ? COMP_LIST : COMP_GEN, first, -1, pos, nm, sm);
        expect(p, close, is_list ? "[" : "(");
        return n;
    }
    if (!is_list && peek(p)->t == close && N(first).kind == K_STAR)
        py_syntax(&p->lx, N(first).pos, "cannot use starred expression here");
    if (!is_list && peek(p)->t == close && N(first).kind != K_STAR) {
        next(p);
        return first; /* parenthesized expression */
    }
    int32_t n = node(p, is_list ? K_LIST : K_TUPLE, pos);
    vec v = {0};
    vpush(p, &v, first);
    while (accept(p, ',')) {
        if (peek(p)->t == close) break;
        vpush(p, &v, p_star_or_test(p));
    }
    expect(p, close, is_list ? "[" : "(");
    set_kids(p, n, &v);
    return n;
}

static int32_t p_dict_or_set(P *p, uint32_t pos) {
    if (accept(p, '}')) return node(p, K_DICT, pos);
    size_t nm = p->e->nnodes, sm = p->nscopes;
    vec v = {0};
    int is_dict;
    if (peek(p)->t == T_POW) {
        next(p);
        is_dict = 1;
        vpush(p, &v, -1);
        vpush(p, &v, p_expr(p));
    } else {
        int32_t k = p_star_or_test(p);
        is_dict = N(k).kind != K_STAR && accept(p, ':');
        if (is_dict) {
            int32_t val = p_test(p);
            if (peek(p)->t == T_FOR) {
                int32_t n = p_comp(p, COMP_DICT, k, val, pos, nm, sm);
                expect(p, '}', "{");
                return n;
            }
            vpush(p, &v, k);
            vpush(p, &v, val);
        } else {
            if (peek(p)->t == T_FOR) {
                int32_t n = p_comp(p, COMP_SET, k, -1, pos, nm, sm);
                expect(p, '}', "{");
                return n;
            }
            vpush(p, &v, k);
        }
    }
    while (accept(p, ',')) {
        if (peek(p)->t == '}') break;
        if (is_dict) {
            if (accept(p, T_POW)) {
                vpush(p, &v, -1);
                vpush(p, &v, p_expr(p));
                continue;
            }
            vpush(p, &v, p_test(p));
            expect(p, ':', ":");
            vpush(p, &v, p_test(p));
        } else {
            vpush(p, &v, p_star_or_test(p));
        }
    }
    expect(p, '}', "{");
    int32_t n = node(p, is_dict ? K_DICT : K_SET, pos);
    set_kids(p, n, &v);
    return n;
}

static int32_t p_atom(P *p) {
    const py_tok *t = peek(p);
    switch (t->t) {
    case T_NAME:
        next(p);
        return name_node(p, t);
    case T_NUM:
        next(p);
        return const_node(p, t->val, t->pos);
    case T_STR:
    case T_FSTR:
        return p_strings(p);
    case T_NONE:
        next(p);
        return const_node(p, pv_none(), t->pos);
    case T_TRUE:
        next(p);
        return const_node(p, pv_bool(1), t->pos);
    case T_FALSE:
        next(p);
        return const_node(p, pv_bool(0), t->pos);
    case '(':
    case '[':
    case '{': {
        if (++p->depth > 150) py_syntax(&p->lx, t->pos, "too many nested parentheses");
        next(p);
        int32_t n = t->t == '{' ? p_dict_or_set(p, t->pos) : p_seq(p, t->t == '(' ? ')' : ']', t->pos);
        p->depth--;
        return n;
    }
    default:
        unexpected(p);
    }
}

static int32_t p_slice_part(P *p) {
    int t = peek(p)->t;
    if (t == ':' || t == ']' || t == ',') return -1;
    return p_test(p);
}

static int32_t p_subscript(P *p) {
    uint32_t pos = peek(p)->pos;
    int32_t lo = p_slice_part(p);
    if (peek(p)->t != ':') return lo;
    next(p);
    int32_t n = node(p, K_SLICE, pos);
    int32_t hi = p_slice_part(p), st = -1;
    if (accept(p, ':')) st = p_slice_part(p);
    N(n).a = lo;
    N(n).b = hi;
    N(n).c = st;
    return n;
}

static int32_t p_call(P *p, int32_t fn, uint32_t pos) {
    int32_t n = node(p, K_CALL, pos);
    N(n).a = fn;
    vec v = {0};
    int seen_kw = 0;
    while (peek(p)->t != ')') {
        const py_tok *t = peek(p);
        if (t->t == '*' || t->t == T_POW) {
            next(p);
            int32_t s = node(p, t->t == '*' ? K_STAR : K_DSTAR, t->pos);
            int32_t sa = p_test(p);
            N(s).a = sa;
            if (t->t == T_POW) seen_kw = 1;
            vpush(p, &v, s);
        } else if (t->t == T_NAME && peek2(p)->t == '=') {
            next(p);
            next(p);
            for (size_t j = 0; j < v.n; j++) {
                const py_node *o = &N(v.v[j]);
                const py_str *on = o->kind == K_KW ? p->e->consts[o->v].u.s : NULL;
                if (on && on->n == t->end - t->pos && !memcmp(on->s, p->lx.src + t->pos, on->n))
                    py_syntax(&p->lx, t->pos, "keyword argument repeated: %s", on->s);
            }
            int32_t k = node(p, K_KW, t->pos);
            N(k).v = add_const(p, name_str(p, t));
            int32_t ka = p_test(p);
            N(k).a = ka;
            seen_kw = 1;
            vpush(p, &v, k);
        } else {
            if (seen_kw) py_syntax(&p->lx, t->pos, "positional argument follows keyword argument");
            size_t nm = p->e->nnodes, sm = p->nscopes;
            int32_t a = p_test(p);
            if (peek(p)->t == T_FOR) {
                a = p_comp(p, COMP_GEN, a, -1, t->pos, nm, sm);
                if (v.n || peek(p)->t != ')')
                    py_syntax(&p->lx, t->pos, "generator expression must be parenthesized");
            }
            vpush(p, &v, a);
        }
        if (!accept(p, ',')) break;
    }
    expect(p, ')', "(");
    set_kids(p, n, &v);
    return n;
}

static int32_t p_primary(P *p) {
    int32_t n = p_atom(p);
    for (;;) {
        const py_tok *t = peek(p);
        if (t->t == '.') {
            next(p);
            const py_tok *nm = next(p);
            if (nm->t != T_NAME) py_syntax(&p->lx, nm->pos, "invalid syntax (attribute name expected)");
            if (p->lx.src[nm->pos] == '_')
                py_syntax(&p->lx, nm->pos, "access to private attribute '%.*s' is not supported",
                          (int)(nm->end - nm->pos), p->lx.src + nm->pos);
            int32_t a = node(p, K_ATTR, nm->pos);
            N(a).a = n;
            N(a).v = add_const(p, pv_str(p->x, p->lx.src + nm->pos, nm->end - nm->pos));
            n = a;
        } else if (t->t == '(') {
            next(p);
            if (++p->depth > 150) py_syntax(&p->lx, t->pos, "too many nested parentheses");
            n = p_call(p, n, t->pos);
            p->depth--;
        } else if (t->t == '[') {
            next(p);
            if (++p->depth > 150) py_syntax(&p->lx, t->pos, "too many nested parentheses");
            int32_t s = node(p, K_SUB, t->pos);
            int32_t idx = p_subscript(p);
            if (idx < 0) py_syntax(&p->lx, t->pos, "invalid syntax (empty subscript)");
            if (peek(p)->t == ',') { /* a[i, j] = a[(i, j)] */
                int32_t tup = node(p, K_TUPLE, N(idx).pos);
                vec v = {0};
                vpush(p, &v, idx);
                while (accept(p, ',')) {
                    if (peek(p)->t == ']') break;
                    int32_t more = p_subscript(p);
                    if (more < 0) unexpected(p);
                    vpush(p, &v, more);
                }
                set_kids(p, tup, &v);
                idx = tup;
            }
            expect(p, ']', "[");
            p->depth--;
            N(s).a = n;
            N(s).b = idx;
            n = s;
        } else {
            return n;
        }
    }
}

static int32_t p_factor(P *p);

static int32_t p_power(P *p) {
    int32_t n = p_primary(p);
    if (peek(p)->t == T_POW) {
        const py_tok *t = next(p);
        if (++p->rdepth > 300) py_syntax(&p->lx, t->pos, "expression nested too deeply");
        int32_t b = node(p, K_BINOP, t->pos);
        N(b).op = OP_POW;
        N(b).a = n;
        int32_t r = p_factor(p);
        N(b).b = r;
        p->rdepth--;
        return b;
    }
    return n;
}

static int32_t p_factor(P *p) {
    const py_tok *t = peek(p);
    if (t->t == '-' || t->t == '+' || t->t == '~') {
        next(p);
        if (++p->depth > 150) py_syntax(&p->lx, t->pos, "expression nested too deeply");
        int32_t n = node(p, K_UNARY, t->pos);
        N(n).op = t->t == '-' ? UOP_NEG : t->t == '+' ? UOP_POS : UOP_INV;
        int32_t a = p_factor(p);
        N(n).a = a;
        p->depth--;
        /* fold -<number literal> so that -9223372036854775808 and -0.0 are constants */
        if (N(a).kind == K_CONST && pv_is_num(p->e->consts[N(a).v]) && N(n).op == UOP_NEG) {
            pv c = p->e->consts[N(a).v];
            if (c.t != PT_BOOL) {
                N(n).kind = K_CONST;
                N(n).v = add_const(p, num_unary(p->x, N(n).op, c));
            }
        }
        return n;
    }
    return p_power(p);
}

typedef struct binlevel {
    int toks[5];
    int ops[5];
} binlevel;

static const binlevel levels[] = {
    {{'|'}, {OP_OR}},
    {{'^'}, {OP_XOR}},
    {{'&'}, {OP_AND}},
    {{T_LSHIFT, T_RSHIFT}, {OP_LSHIFT, OP_RSHIFT}},
    {{'+', '-'}, {OP_ADD, OP_SUB}},
    {{'*', '/', '%', T_FLOORDIV, '@'}, {OP_MUL, OP_TRUEDIV, OP_MOD, OP_FLOORDIV, OP_MATMUL}},
};

static int32_t p_binary(P *p, int level) {
    if (level >= (int)(sizeof levels / sizeof levels[0])) return p_factor(p);
    int32_t n = p_binary(p, level + 1);
    for (;;) {
        const py_tok *t = peek(p);
        int op = -1;
        for (int k = 0; k < 5 && levels[level].toks[k]; k++)
            if (levels[level].toks[k] == t->t) op = levels[level].ops[k];
        if (op < 0) return n;
        if (op == OP_MATMUL) py_syntax(&p->lx, t->pos, "the @ operator is not supported");
        next(p);
        int32_t b = node(p, K_BINOP, t->pos);
        N(b).op = (uint8_t)op;
        N(b).a = n;
        int32_t r = p_binary(p, level + 1);
        N(b).b = r;
        n = b;
    }
}

static int32_t p_expr(P *p) {
    return p_binary(p, 0);
}

static int cmp_op(P *p) {
    const py_tok *t = peek(p);
    switch (t->t) {
    case '<':
        next(p);
        return CMP_LT;
    case '>':
        next(p);
        return CMP_GT;
    case T_LE:
        next(p);
        return CMP_LE;
    case T_GE:
        next(p);
        return CMP_GE;
    case T_EQ:
        next(p);
        return CMP_EQ;
    case T_NE:
        next(p);
        return CMP_NE;
    case T_IN:
        next(p);
        return CMP_IN;
    case T_IS:
        next(p);
        return accept(p, T_NOT) ? CMP_ISNOT : CMP_IS;
    case T_NOT:
        if (peek2(p)->t == T_IN) {
            next(p);
            next(p);
            return CMP_NOTIN;
        }
        return -1;
    default:
        return -1;
    }
}

static int32_t p_comparison(P *p) {
    uint32_t pos = peek(p)->pos;
    int32_t first = p_expr(p);
    int op = cmp_op(p);
    if (op < 0) return first;
    int32_t n = node(p, K_COMPARE, pos);
    vec v = {0};
    vpush(p, &v, first);
    N(n).v = (uint32_t)p->e->ncmpops;
    while (op >= 0) {
        p->e->cmpops = grow(p, p->e->cmpops, &p->capcmp, p->e->ncmpops + 1, 1);
        p->e->cmpops[p->e->ncmpops++] = (uint8_t)op;
        vpush(p, &v, p_expr(p));
        op = cmp_op(p);
    }
    set_kids(p, n, &v);
    return n;
}

static int32_t p_not(P *p) {
    const py_tok *t = peek(p);
    if (t->t == T_NOT) {
        next(p);
        if (++p->depth > 150) py_syntax(&p->lx, t->pos, "expression nested too deeply");
        int32_t n = node(p, K_NOT, t->pos);
        int32_t a = p_not(p);
        N(n).a = a;
        p->depth--;
        return n;
    }
    return p_comparison(p);
}

static int32_t p_boolop(P *p, int is_or) {
    uint32_t pos = peek(p)->pos;
    int32_t first = is_or ? p_boolop(p, 0) : p_not(p);
    int tok = is_or ? T_OR : T_AND;
    if (peek(p)->t != tok) return first;
    int32_t n = node(p, K_BOOLOP, pos);
    N(n).op = (uint8_t)is_or;
    vec v = {0};
    vpush(p, &v, first);
    while (accept(p, tok)) vpush(p, &v, is_or ? p_boolop(p, 0) : p_not(p));
    set_kids(p, n, &v);
    return n;
}

static int32_t p_or(P *p) {
    return p_boolop(p, 1);
}

static int32_t p_lambda(P *p) {
    const py_tok *lt = next(p);
    int sc = new_scope(p, p->cur);
    int32_t n = node(p, K_LAMBDA, lt->pos);
    vec names = {0};
    while (peek(p)->t != ':') {
        const py_tok *t = peek(p);
        if (t->t == '*' || t->t == T_POW)
            py_syntax(&p->lx, t->pos, "lambda with *args or **kwargs is not supported");
        if (t->t != T_NAME) unexpected(p);
        next(p);
        pv nm = name_str(p, t);
        int before = (int)p->scopes[sc].n;
        int slot = declare(p, sc, nm.u.s, t->pos);
        if (slot < before) py_syntax(&p->lx, t->pos, "duplicate argument '%s' in lambda", nm.u.s->s);
        vpush(p, &names, (int32_t)add_const(p, nm));
        if (peek(p)->t == '=')
            py_syntax(&p->lx, peek(p)->pos, "lambda with default arguments is not supported");
        if (!accept(p, ',')) break;
    }
    expect(p, ':', ":");
    int outer = p->cur;
    p->cur = sc;
    int32_t body = p_test(p);
    p->cur = outer;
    N(n).a = body;
    N(n).c = sc;
    N(n).v = (uint32_t)names.n;
    set_kids(p, n, &names);
    return n;
}

static int32_t p_test_inner(P *p);

static int32_t p_test(P *p) {
    if (++p->rdepth > 300) py_syntax(&p->lx, peek(p)->pos, "expression nested too deeply");
    int32_t n = p_test_inner(p);
    p->rdepth--;
    return n;
}

static int32_t p_test_inner(P *p) {
    if (peek(p)->t == T_LAMBDA) return p_lambda(p);
    uint32_t pos = peek(p)->pos;
    int32_t body = p_or(p);
    if (peek(p)->t == T_WALRUS) unexpected(p);
    if (peek(p)->t != T_IF) return body;
    next(p);
    int32_t n = node(p, K_IFEXP, pos);
    int32_t cond = p_or(p);
    expect(p, T_ELSE, "else");
    int32_t other = p_test(p);
    N(n).a = body;
    N(n).b = cond;
    N(n).c = other;
    return n;
}

/* the eval grammar's `expressions`: no starred items outside brackets */
static int32_t p_testlist(P *p, int allow_tuple) {
    uint32_t pos = peek(p)->pos;
    if (peek(p)->t == '*') unexpected(p);
    int32_t first = p_test(p);
    if (!allow_tuple || peek(p)->t != ',') {
        if (N(first).kind == K_STAR) py_syntax(&p->lx, pos, "can't use starred expression here");
        return first;
    }
    int32_t n = node(p, K_TUPLE, pos);
    vec v = {0};
    vpush(p, &v, first);
    while (accept(p, ',')) {
        int t = peek(p)->t;
        if (t == T_END || t == ')' || t == '}' || t == ':' || t == '!' || t == '=') break;
        if (t == '*') unexpected(p);
        vpush(p, &v, p_test(p));
    }
    set_kids(p, n, &v);
    return n;
}

/* ---- f-strings ---- */

/* parses src[a, b) as a nested expression with the current scopes */
static int32_t p_sub_expr(P *p, size_t a, size_t b) {
    size_t nt = 0, cap = p->nall;
    p->alltoks = grow(p, p->alltoks, &cap, p->nall + 1, sizeof(py_tok *));
    p->alltoks[p->nall++] = NULL;
    py_lex(&p->lx, a, b, &p->alltoks[p->nall - 1], &nt);
    py_tok *toks = p->alltoks[p->nall - 1];
    py_tok *st = p->t;
    size_t snt = p->nt, si = p->i;
    p->t = toks;
    p->nt = nt;
    p->i = 0;
    if (peek(p)->t == T_END) py_syntax(&p->lx, a, "f-string: empty expression not allowed");
    int32_t n = p_testlist(p, 1);
    if (peek(p)->t != T_END) unexpected(p);
    p->t = st;
    p->nt = snt;
    p->i = si;
    return n;
}

/* the end of a replacement field's expression: a '}', '!' (not '!='), ':' or '=' at depth 0 */
static size_t field_expr_end(P *p, size_t i, size_t b) {
    const char *s = p->lx.src;
    int depth = 0;
    char q = 0;
    for (; i < b; i++) {
        char c = s[i];
        if (q) {
            if (c == q) q = 0;
            continue;
        }
        if (c == '\'' || c == '"') {
            q = c;
        } else if (c == '(' || c == '[' || c == '{') {
            depth++;
        } else if ((c == ')' || c == ']' || c == '}') && depth > 0) {
            depth--;
        } else if (depth == 0) {
            if (c == '}' || c == ':') return i;
            if (c == '!' && !(i + 1 < b && s[i + 1] == '=')) return i;
            if (c == '=' && !(i + 1 < b && s[i + 1] == '=') && !(i > 0 && strchr("=!<>", s[i - 1]))) return i;
        } else if (c == '\\') {
            py_syntax(&p->lx, i, "f-string expression part cannot include a backslash");
        }
    }
    py_syntax(&p->lx, i, "f-string: expecting '}'");
}

static int32_t fstr_body(P *p, size_t a, size_t b, int raw, int level, uint32_t pos);

static size_t p_field(P *p, size_t i, size_t b, int raw, int level, vec *parts) {
    const char *s = p->lx.src;
    size_t ee = field_expr_end(p, i, b);
    int32_t fv = node(p, K_FVAL, (uint32_t)i);
    int32_t ex = p_sub_expr(p, i, ee);
    N(fv).a = ex;
    size_t j = ee;
    if (s[j] == '=') { /* f'{x=}': the text, then repr unless a format spec or conversion is given */
        vpush(p, parts, const_node(p, pv_str(p->x, s + i, j + 1 - i), (uint32_t)i));
        N(fv).op = 'r';
        j++;
    }
    if (j < b && s[j] == '!') {
        if (j + 1 >= b || !strchr("sra", s[j + 1]) || !s[j + 1])
            py_syntax(&p->lx, j, "f-string: invalid conversion character: expected 's', 'r', or 'a'");
        N(fv).op = (uint8_t)s[j + 1];
        j += 2;
    }
    if (j < b && s[j] == ':') {
        if (level >= 1) py_syntax(&p->lx, j, "f-string: expressions nested too deeply");
        size_t k = j + 1;
        int depth = 0;
        while (k < b && (depth > 0 || s[k] != '}')) {
            if (s[k] == '{') depth++;
            if (s[k] == '}') depth--;
            k++;
        }
        if (N(fv).op == 'r' && s[ee] == '=') N(fv).op = 0;
        int32_t spec = fstr_body(p, j + 1, k, raw, level + 1, (uint32_t)j);
        N(fv).b = spec;
        j = k;
    }
    if (j >= b || s[j] != '}') py_syntax(&p->lx, j, "f-string: expecting '}'");
    vpush(p, parts, fv);
    return j + 1;
}

static int32_t fstr_body(P *p, size_t a, size_t b, int raw, int level, uint32_t pos) {
    const char *s = p->lx.src;
    int32_t n = node(p, K_FSTR, pos);
    vec parts = {0};
    size_t lit = a;
    for (size_t i = a; i < b;) {
        if (s[i] == '\\' && !raw) { /* an escape; a backslash does not escape a brace */
            i += i + 1 < b && (s[i + 1] == '{' || s[i + 1] == '}') ? 1 : 2;
            continue;
        }
        if (s[i] == '{' || s[i] == '}') {
            if (i > lit)
                vpush(p, &parts, const_node(p, py_decode_literal(&p->lx, lit, i, raw, 0), (uint32_t)lit));
            if (i + 1 < b && s[i + 1] == s[i]) {
                vpush(p, &parts, const_node(p, pv_str(p->x, s + i, 1), (uint32_t)i));
                i += 2;
                lit = i;
                continue;
            }
            if (s[i] == '}') py_syntax(&p->lx, i, "f-string: single '}' is not allowed");
            i = p_field(p, i + 1, b, raw, level, &parts);
            lit = i;
            continue;
        }
        i++;
    }
    if (b > lit) vpush(p, &parts, const_node(p, py_decode_literal(&p->lx, lit, b, raw, 0), (uint32_t)lit));
    set_kids(p, n, &parts);
    return n;
}

static int32_t p_fstring(P *p, const py_tok *t, int level) {
    return fstr_body(p, t->a, t->b, t->raw, level, t->pos);
}

/* ---- name resolution ---- */

static void resolve(P *p) {
    tbgw_py *e = p->e;
    for (size_t k = 0; k < e->nnodes; k++) {
        py_node *nd = &e->nodes[k];
        if (nd->kind == K_COMP || nd->kind == K_LAMBDA) nd->flags = (uint16_t)p->scopes[nd->c].n;
        if (nd->kind != K_NAME || nd->flags) continue;
        const py_str *nm = e->consts[nd->v].u.s;
        int depth = 0, found = 0;
        for (int sc = nd->c; sc >= 0; sc = p->scopes[sc].parent, depth++) {
            const scope *s = &p->scopes[sc];
            for (size_t i = 0; i < s->n; i++)
                if (s->names[i]->n == nm->n && !memcmp(s->names[i]->s, nm->s, nm->n)) {
                    nd->a = depth;
                    nd->b = (int32_t)i;
                    found = 1;
                    break;
                }
            if (found) break;
        }
        if (found) continue;
        size_t g;
        for (g = 0; g < e->nglobals; g++)
            if (!strcmp(e->globals[g], nm->s)) break;
        if (g == e->nglobals) {
            char **ng = realloc(e->globals, (e->nglobals + 1) * sizeof *ng);
            if (!ng) py_raise(p->x, "MemoryError", "out of memory");
            e->globals = ng;
            if (!(e->globals[e->nglobals] = strdup(nm->s))) py_raise(p->x, "MemoryError", "out of memory");
            e->nglobals++;
        }
        nd->a = -1;
        nd->b = (int32_t)g;
    }
}

/* Evaluation recurses on the tree: a very deep one (1+1+...+1 with 10,000 terms) is refused at
 * load rather than risking the stack of a connector thread. */
#define MAX_TREE_DEPTH 400

static int tree_depth_ok(const tbgw_py *e, int32_t n, int d) {
    if (n < 0) return 1;
    if (d > MAX_TREE_DEPTH) return 0;
    const py_node *nd = &e->nodes[n];
    if (nd->kind == K_CONST || nd->kind == K_NAME) return 1;    /* a, b, c of a name are not nodes */
    int c_is_node = nd->kind == K_SLICE || nd->kind == K_IFEXP; /* elsewhere c is a scope or unused */
    if (!tree_depth_ok(e, nd->a, d + 1) || !tree_depth_ok(e, nd->b, d + 1) ||
        (c_is_node && !tree_depth_ok(e, nd->c, d + 1)))
        return 0;
    if (nd->kind == K_LAMBDA) return 1; /* its kids are parameter names */
    for (uint32_t i = 0; i < nd->n; i++)
        if (!tree_depth_ok(e, e->kids[nd->list + i], d + 1)) return 0;
    return 1;
}

static void p_cleanup(P *p) {
    for (size_t i = 0; i < p->nall; i++) free(p->alltoks[i]);
    free(p->alltoks);
    free(p->scopes);
    py_bufs_free(p->x);
    free(p->x->bufs);
}

int py_compile(tbgw_py *e, tbgw_err *err, size_t *err_off) {
    X x;
    jmp_buf jb;
    memset(&x, 0, sizeof x);
    py_arena_init(&x.mem, 0, 4096); /* a compiled expression keeps these chunks: small ones */
    x.jb = &jb;
    x.max_steps = UINT64_MAX;
    x.max_depth = 1000;
    P p;
    memset(&p, 0, sizeof p);
    p.e = e;
    p.x = &x;
    p.lx.src = e->src;
    p.lx.len = e->len;
    p.lx.x = &x;
    p.lx.err_off = err_off;
    p.cur = -1;
    size_t dummy = 0;
    if (!err_off) p.lx.err_off = &dummy;
    *p.lx.err_off = 0;
    if (setjmp(jb)) {
        tbgw_err_set(err, TBGW_EINVAL, "%s (column %zu)", x.errmsg, *p.lx.err_off + 1);
        p_cleanup(&p);
        e->mem = x.mem;
        return TBGW_EINVAL;
    }
    size_t cap = 0;
    p.alltoks = grow(&p, NULL, &cap, 1, sizeof(py_tok *));
    p.nall = 1;
    p.alltoks[0] = NULL;
    /* eval() strips leading spaces and tabs */
    size_t from = 0;
    while (from < e->len && (e->src[from] == ' ' || e->src[from] == '\t')) from++;
    py_lex(&p.lx, from, e->len, &p.alltoks[0], &p.nt);
    p.t = p.alltoks[0];
    if (peek(&p)->t == T_END) py_syntax(&p.lx, e->len, "invalid syntax (empty expression)");
    e->root = p_testlist(&p, 1);
    if (peek(&p)->t != T_END) unexpected(&p);
    if (!tree_depth_ok(e, e->root, 0))
        py_syntax(&p.lx, 0, "expression nested too deeply (more than %d levels)", MAX_TREE_DEPTH);
    resolve(&p);
    p_cleanup(&p);
    e->mem = x.mem;
    return 0;
}
