/* Internals of the Python-expression evaluator (see convert/pyexpr.h).
 *
 * Values are small tagged structs passed by value. Everything an evaluation allocates comes from
 * the context's arena and is released in one step when the context is reset, so the evaluator
 * needs no reference counts and an error anywhere unwinds with longjmp to tbgw_py_eval(). Compiled
 * expressions keep their constants in their own arena (immutable once compiled). */
#ifndef TBGW_CONVERT_PYEXPR_INTERNAL_H
#define TBGW_CONVERT_PYEXPR_INTERNAL_H

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include "convert/pyexpr.h"
#include "util/buf.h"

/* ---- arena ---- */
typedef struct py_chunk py_chunk;
typedef struct py_arena {
    py_chunk *head;
    size_t used;  /* bytes handed out since the last reset */
    size_t limit; /* 0 = unlimited */
    size_t chunk; /* allocation unit */
} py_arena;
void py_arena_init(py_arena *a, size_t limit, size_t chunk);
void py_arena_reset(py_arena *a); /* keeps the first chunk */
void py_arena_free(py_arena *a);
void *py_arena_alloc(py_arena *a, size_t n); /* NULL when out of memory or over the limit */

/* ---- values ---- */
typedef enum py_type {
    PT_NONE,
    PT_BOOL,
    PT_INT, /* int64 fast path */
    PT_BIG, /* arbitrary precision; never holds a value that fits int64 */
    PT_FLOAT,
    PT_STR,
    PT_BYTES,
    PT_BYTEARRAY,
    PT_LIST,
    PT_TUPLE,
    PT_DICT,
    PT_SET,
    PT_RANGE,
    PT_ITER,    /* enumerate/zip/map/filter/reversed/dict views: a materialized one-shot list */
    PT_FUNC,    /* lambda closure */
    PT_BUILTIN, /* builtin function or type */
    PT_METHOD,  /* builtin method bound to a receiver */
    PT_OBJ,     /* object bound by a connector, attributes only */
    PT_NTYPES,
    PT_UNBOUND = 0xFF /* a comprehension variable not assigned yet (never escapes a frame) */
} py_type;

typedef struct pv {
    uint8_t t;
    union {
        int64_t i; /* BOOL, INT, BUILTIN (index) */
        double f;
        void *p;
        struct py_str *s;
        struct py_bytes *b;
        struct py_big *big;
        struct py_list *l; /* LIST, TUPLE, ITER */
        struct py_dict *d; /* DICT, SET */
        struct py_range *r;
        struct py_func *fn;
        struct py_method *m;
        struct py_obj *o;
    } u;
} pv;

typedef struct py_str {
    size_t n;      /* bytes */
    size_t nchars; /* code points */
    char s[];      /* UTF-8, NUL-terminated */
} py_str;
typedef struct py_bytes {
    size_t n;
    unsigned char b[];
} py_bytes;
typedef struct py_big {
    int neg;
    size_t n; /* limbs, little endian; n >= 1, top limb non-zero */
    uint32_t d[];
} py_big;
typedef struct py_list {
    size_t n, cap;
    pv *v;
    const char *kind; /* PT_ITER: the Python type name ("enumerate", "dict_items", ...) */
} py_list;
typedef struct py_dict {
    size_t n, cap; /* entries (insertion order) */
    pv *k, *v;     /* v is NULL for sets */
    uint64_t *h;
    int32_t *idx; /* open addressing: -1 empty */
    size_t icap;  /* power of two */
    int is_set;
} py_dict;
typedef struct py_range {
    int64_t start, stop, step;
} py_range;
struct py_frame;
typedef struct py_func {
    int32_t node; /* the LAMBDA node */
    struct py_frame *env;
} py_func;
typedef struct py_method {
    pv self;
    int id; /* method table index */
} py_method;
typedef struct py_obj {
    const char *type;
    size_t n;
    const char **names;
    pv *vals;
} py_obj;

typedef struct py_frame {
    struct py_frame *parent;
    pv slot[];
} py_frame;

/* ---- compiled form ---- */
typedef enum py_kind {
    K_CONST,   /* consts[v] */
    K_NAME,    /* local: depth a, slot b; global: a = -1, b = global index */
    K_ATTR,    /* a.name(consts[v]) */
    K_SUB,     /* a[b] */
    K_SLICE,   /* a b c: lower upper step (-1 = absent) */
    K_CALL,    /* a(args list; keyword names in consts) */
    K_UNARY,   /* op a */
    K_BINOP,   /* a op b */
    K_BOOLOP,  /* and/or over list */
    K_NOT,     /* not a */
    K_COMPARE, /* list: operand op operand op ...; ops in the ops array */
    K_IFEXP,   /* a if b else c */
    K_LIST,    /* list of elements (K_STAR allowed) */
    K_TUPLE,
    K_SET,
    K_DICT,   /* list: k v k v ... (k = -1: ** v) */
    K_STAR,   /* *a inside displays and calls */
    K_DSTAR,  /* **a inside calls */
    K_KW,     /* keyword argument: consts[v] = a */
    K_COMP,   /* comprehension: op = kind (list/set/dict/gen), a = element, b = value (dict),
                 list = clauses (K_FOR / K_IF) */
    K_FOR,    /* for target(a) in iter(b); binds into the comprehension frame */
    K_IF,     /* a */
    K_LAMBDA, /* a = body, v = number of params, frame size in op */
    K_FSTR,   /* list of parts: K_CONST literal or K_FVAL */
    K_FVAL,   /* a = value, b = format spec (K_FSTR or -1), op = conversion char */
    K_TARGET, /* tuple target: list of K_NAME / K_TARGET */
    K_NKINDS
} py_kind;

typedef struct py_node {
    uint8_t kind;
    uint8_t op;
    uint16_t flags;
    uint32_t pos; /* byte offset in the source */
    int32_t a, b, c;
    uint32_t list, n; /* children: e->kids[list .. list+n) */
    uint32_t v;
} py_node;

struct tbgw_py {
    char *src;
    size_t len;
    py_node *nodes;
    size_t nnodes;
    int32_t *kids;
    size_t nkids;
    uint8_t *cmpops;
    size_t ncmpops;
    pv *consts;
    size_t nconsts;
    char **globals; /* free names in order of first use */
    size_t nglobals;
    int32_t root;
    unsigned flags;
    py_arena mem; /* constants */
};

/* binary operators (K_BINOP op) */
enum {
    OP_ADD,
    OP_SUB,
    OP_MUL,
    OP_TRUEDIV,
    OP_FLOORDIV,
    OP_MOD,
    OP_POW,
    OP_LSHIFT,
    OP_RSHIFT,
    OP_AND,
    OP_OR,
    OP_XOR,
    OP_MATMUL,
    OP_NBIN
};
/* unary */
enum { UOP_NEG, UOP_POS, UOP_INV };
/* comparisons */
enum { CMP_LT, CMP_LE, CMP_EQ, CMP_NE, CMP_GT, CMP_GE, CMP_IN, CMP_NOTIN, CMP_IS, CMP_ISNOT };
/* comprehension kinds */
enum { COMP_LIST, COMP_SET, COMP_DICT, COMP_GEN };

/* ---- evaluation state ---- */
typedef struct py_binding {
    const char *name;
    pv v;
} py_binding;

struct tbgw_py_ctx {
    py_arena mem;
    jmp_buf *jb;
    const tbgw_py *e; /* expression being evaluated */
    uint64_t steps, max_steps;
    int depth, max_depth;
    py_binding *binds;
    size_t nbinds, capbinds;
    pv *gcache; /* resolved globals of e (per evaluation) */
    uint8_t *gdone;
    size_t capglobals;
    int strict;
    tbgw_buf **bufs; /* text buffers in use (freed when an error unwinds) */
    size_t nbufs, capbufs;
    char errmsg[400];
    pv result;
};
typedef struct tbgw_py_ctx X;

/* errors: never return */
_Noreturn void py_raise(X *x, const char *exc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
_Noreturn void py_oom(X *x);
_Noreturn void py_type_error(X *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void py_step(X *x, uint64_t n);

void *py_alloc(X *x, size_t n);

/* constructors */
static inline pv pv_none(void) {
    pv v = {PT_NONE, {0}};
    return v;
}
static inline pv pv_bool(int b) {
    pv v = {PT_BOOL, {0}};
    v.u.i = b != 0;
    return v;
}
static inline pv pv_int(int64_t i) {
    pv v = {PT_INT, {0}};
    v.u.i = i;
    return v;
}
static inline pv pv_float(double f) {
    pv v = {PT_FLOAT, {0}};
    v.u.f = f;
    return v;
}
static inline pv pv_ptr(int t, void *p) {
    pv v;
    v.t = (uint8_t)t;
    v.u.p = p;
    return v;
}
pv pv_str(X *x, const char *s, size_t n);
pv pv_str_chars(X *x, const char *s, size_t n, size_t nchars);
pv pv_cstr(X *x, const char *s);
pv pv_bytes(X *x, int t, const void *p, size_t n);
pv pv_list(X *x, int t, size_t cap);
void pv_list_push(X *x, py_list *l, pv v);
pv pv_tuple2(X *x, pv a, pv b);
pv pv_dict(X *x, int t);
void py_dict_set(X *x, py_dict *d, pv k, pv v);
int py_dict_get(X *x, const py_dict *d, pv k, pv *out);
size_t utf8_count(const char *s, size_t n);

const char *pv_tname(pv v);
int pv_truthy(X *x, pv v);
int pv_eq(X *x, pv a, pv b);
uint64_t pv_hash(X *x, pv v);
/* -1, 0, 1 for a < b ordering; raises TypeError when unordered (op names the operator) */
int pv_cmp(X *x, pv a, pv b, const char *op);
void pv_repr(X *x, pv v, tbgw_buf *out);
void pv_strv(X *x, pv v, tbgw_buf *out); /* str() */
pv pv_from_buf(X *x, tbgw_buf *b);
void py_buf_check(X *x, tbgw_buf *b);
tbgw_buf *py_buf(X *x);            /* a tracked text buffer */
pv py_buf_done(X *x, tbgw_buf *b); /* its text as a str; the buffer is released */
void py_buf_release(X *x, tbgw_buf *b);
void py_bufs_free(X *x); /* releases every tracked buffer */
/* iteration: materializes any iterable into a list of items (borrowed for lists/tuples) */
py_list *pv_iter(X *x, pv v);
int64_t pv_len(X *x, pv v);

/* ---- numbers (num.c, big.c) ---- */
pv big_from_i64(X *x, int64_t i); /* PT_BIG even when small: internal use */
pv big_norm(X *x, py_big *b);     /* PT_INT when it fits */
py_big *big_of(X *x, pv v);       /* INT/BOOL/BIG as a bignum */
pv big_add(X *x, const py_big *a, const py_big *b, int negate_b);
pv big_mul(X *x, const py_big *a, const py_big *b);
void big_divmod(X *x, const py_big *a, const py_big *b, pv *q, pv *r); /* floor semantics */
pv big_pow(X *x, const py_big *a, uint64_t e);
pv big_shift(X *x, const py_big *a, int64_t n); /* n > 0 left, n < 0 right (floor) */
pv big_bitop(X *x, const py_big *a, const py_big *b, int op);
pv big_invert(X *x, const py_big *a);
int big_cmp(const py_big *a, const py_big *b);
double big_to_double(X *x, const py_big *a, int *overflow);
pv big_from_double(X *x, double d); /* d integral and finite */
void big_to_str(X *x, const py_big *a, unsigned base, tbgw_buf *out);
/* parses digits in base (no sign, no prefix, underscores already removed); NULL-free */
pv big_parse(X *x, const char *s, size_t n, unsigned base);
pv big_truediv(X *x, const py_big *a, const py_big *b);
uint64_t big_hash(const py_big *a);
size_t big_bits(const py_big *a);

pv num_binop(X *x, int op, pv a, pv b, int *handled);
pv num_unary(X *x, int op, pv a);
int num_cmp(X *x, pv a, pv b); /* both numeric; -2 when unordered (nan) */
pv num_pow3(X *x, pv a, pv b, pv m);
void float_repr(double d, char *out, size_t cap);
pv int_from_float(X *x, double d);
double pv_to_double(X *x, pv v); /* int/bool/float; raises OverflowError */
int pv_is_int(pv v);             /* INT, BIG, BOOL */
int pv_is_num(pv v);
int64_t pv_index(X *x, pv v, const char *what); /* int index, raises for big/other */
pv py_round(X *x, pv v, int has_nd, pv nd);
pv py_divmod(X *x, pv a, pv b);

/* ---- strings and formatting (format.c) ---- */
void py_format_spec(X *x, pv v, const char *spec, size_t n, tbgw_buf *out);
pv py_percent(X *x, pv fmt, pv args);
pv py_str_format(X *x, pv fmt, const pv *args, size_t nargs, const pv *kwn, const pv *kwv, size_t nkw);
void repr_str(const char *s, size_t n, tbgw_buf *out);
void repr_bytes(int bytearray, const unsigned char *b, size_t n, tbgw_buf *out);

/* ---- builtins and methods (builtins.c, methods.c) ---- */
typedef struct py_args {
    const pv *v;
    size_t n;
    const pv *kwn; /* str names */
    const pv *kwv;
    size_t nkw;
} py_args;
typedef pv (*py_bfn)(X *x, pv self, const py_args *a);
typedef struct py_builtin {
    const char *name;
    py_bfn fn;
    int type; /* the py_type this builtin names as a class, or -1 */
} py_builtin;
extern const py_builtin py_builtins[];
extern const size_t py_nbuiltins;
int py_builtin_find(const char *name);
pv py_getattr(X *x, pv obj, const char *name);
pv py_call(X *x, pv fn, const py_args *a);
pv py_call_value(X *x, pv fn, pv arg); /* one positional argument */
pv py_kwarg(X *x, const py_args *a, const char *name, int pos, int *found);
void py_args_max(X *x, const py_args *a, const char *fn, size_t max_pos, const char *const *kw);
pv py_sorted(X *x, pv it, pv key, int reverse);
pv py_to_int(X *x, pv v, int has_base, int64_t base);
pv py_to_float(X *x, pv v);
pv py_to_str(X *x, pv v);
pv py_encode(X *x, pv s, pv enc, pv errors);
pv py_decode(X *x, pv b, pv enc, pv errors);

/* case mapping (ucase.c) */
uint32_t py_upper(uint32_t c);
uint32_t py_lower(uint32_t c);
int py_is_cased_letter(uint32_t c);
uint32_t py_utf8_next(const char *s, size_t n, size_t *i);
void py_put_utf8(tbgw_buf *b, uint32_t cp);

/* evaluation (eval.c) */
pv py_eval_node(X *x, int32_t n, py_frame *f);
pv py_binop(X *x, int op, pv a, pv b);
int py_compare(X *x, int op, pv a, pv b);
int py_contains(X *x, pv container, pv item);
pv py_slice(X *x, pv obj, pv lo, pv hi, pv step);
pv py_call_lambda(X *x, const py_func *fn, const py_args *a);
pv py_index_get(X *x, pv obj, pv key);

/* parser (parse.c) */
int py_compile(tbgw_py *e, tbgw_err *err, size_t *err_off);

#endif
