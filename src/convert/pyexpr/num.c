/* Python number semantics: int (64-bit fast path, bignum on overflow), float, bool as int;
 * true/floor division, modulo signs, **, shifts, exact int/float comparisons, repr, round. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "convert/pyexpr/internal.h"

double pv_to_double(X *x, pv v) {
    if (v.t == PT_FLOAT) return v.u.f;
    if (v.t == PT_BIG) {
        int of;
        double d = big_to_double(x, v.u.big, &of);
        if (of) py_raise(x, "OverflowError", "int too large to convert to float");
        return d;
    }
    return (double)v.u.i;
}

pv int_from_float(X *x, double d) {
    if (isnan(d)) py_raise(x, "ValueError", "cannot convert float NaN to integer");
    if (isinf(d)) py_raise(x, "OverflowError", "cannot convert float infinity to integer");
    d = trunc(d);
    if (d >= -9.2e18 && d <= 9.2e18) return pv_int((int64_t)d);
    return big_from_double(x, d);
}

int64_t pv_index(X *x, pv v, const char *what) {
    if (v.t == PT_INT || v.t == PT_BOOL) return v.u.i;
    if (v.t == PT_BIG) py_raise(x, "IndexError", "cannot fit 'int' into an index-sized integer");
    py_type_error(x, "%s", what);
}

/* ---- float helpers ---- */

void float_repr(double d, char *out, size_t cap) {
    if (isnan(d)) {
        snprintf(out, cap, "nan");
        return;
    }
    if (isinf(d)) {
        snprintf(out, cap, d < 0 ? "-inf" : "inf");
        return;
    }
    char buf[40];
    int p;
    for (p = 1; p <= 17; p++) {
        snprintf(buf, sizeof buf, "%.*e", p - 1, d);
        if (strtod(buf, NULL) == d) break;
    }
    /* buf = [-]d[.ddd]e[+-]XX */
    char digits[24];
    size_t nd = 0;
    const char *q = buf;
    int neg = *q == '-';
    if (neg) q++;
    for (; *q && *q != 'e'; q++)
        if (*q != '.') digits[nd++] = *q;
    digits[nd] = 0;
    int exp = atoi(q + 1);
    while (nd > 1 && digits[nd - 1] == '0') digits[--nd] = 0;
    char *o = out;
    size_t left = cap;
#define PUT(c)                                                                                               \
    do {                                                                                                     \
        if (left > 1) {                                                                                      \
            *o++ = (c);                                                                                      \
            left--;                                                                                          \
        }                                                                                                    \
    } while (0)
    if (neg) PUT('-');
    if (exp < -4 || exp >= 16) {
        PUT(digits[0]);
        if (nd > 1) {
            PUT('.');
            for (size_t i = 1; i < nd; i++) PUT(digits[i]);
        }
        char e[12];
        snprintf(e, sizeof e, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
        for (char *c = e; *c; c++) PUT(*c);
    } else if (exp < 0) {
        PUT('0');
        PUT('.');
        for (int i = -1; i > exp; i--) PUT('0');
        for (size_t i = 0; i < nd; i++) PUT(digits[i]);
    } else {
        for (int i = 0; i <= exp; i++) PUT((size_t)i < nd ? digits[i] : '0');
        PUT('.');
        if ((size_t)exp + 1 < nd)
            for (size_t i = (size_t)exp + 1; i < nd; i++) PUT(digits[i]);
        else
            PUT('0');
    }
#undef PUT
    *o = 0;
}

static void float_divmod(X *x, double a, double b, double *fd, double *md, const char *zmsg) {
    if (b == 0.0) py_raise(x, "ZeroDivisionError", "%s", zmsg);
    double mod = fmod(a, b);
    double div = (a - mod) / b;
    if (mod != 0.0) {
        if ((b < 0) != (mod < 0)) {
            mod += b;
            div -= 1.0;
        }
    } else {
        mod = copysign(0.0, b);
    }
    double floordiv;
    if (div != 0.0) {
        floordiv = floor(div);
        if (div - floordiv > 0.5) floordiv += 1.0;
    } else {
        floordiv = copysign(0.0, a / b);
    }
    if (fd) *fd = floordiv;
    if (md) *md = mod;
}

static double float_pow(X *x, double a, double b) {
    if (b == 0.0) return 1.0;
    if (isnan(a)) return a;
    if (isnan(b)) return a == 1.0 ? 1.0 : b;
    if (a == 0.0 && b < 0 && isfinite(b))
        py_raise(x, "ZeroDivisionError", "0.0 cannot be raised to a negative power");
    if (a < 0 && isfinite(a) && isfinite(b) && b != floor(b))
        py_raise(x, "ValueError", "complex results are not supported");
    errno = 0;
    double r = pow(a, b);
    if (isinf(r) && isfinite(a) && isfinite(b))
        py_raise(x, "OverflowError", "(34, 'Numerical result out of range')");
    return r;
}

static pv float_binop(X *x, int op, double a, double b, int *handled) {
    double r;
    switch (op) {
    case OP_ADD:
        return pv_float(a + b);
    case OP_SUB:
        return pv_float(a - b);
    case OP_MUL:
        return pv_float(a * b);
    case OP_TRUEDIV:
        if (b == 0.0) py_raise(x, "ZeroDivisionError", "float division by zero");
        return pv_float(a / b);
    case OP_FLOORDIV:
        float_divmod(x, a, b, &r, NULL, "float floor division by zero");
        return pv_float(r);
    case OP_MOD:
        float_divmod(x, a, b, NULL, &r, "float modulo");
        return pv_float(r);
    case OP_POW:
        return pv_float(float_pow(x, a, b));
    default:
        *handled = 0;
        return pv_none();
    }
}

/* ---- ints ---- */

static pv int_pow(X *x, pv a, pv b) {
    if (b.t == PT_BIG) {
        if (b.u.big->neg) return pv_float(float_pow(x, pv_to_double(x, a), pv_to_double(x, b)));
        if (a.t != PT_BIG && (a.u.i == 0 || a.u.i == 1)) return pv_int(a.u.i);
        if (a.t != PT_BIG && a.u.i == -1) return pv_int(b.u.big->d[0] & 1 ? -1 : 1);
        py_raise(x, "OverflowError", "integer result too large");
    }
    int64_t e = b.u.i;
    if (e < 0) {
        double da = pv_to_double(x, a);
        if (da == 0.0) py_raise(x, "ZeroDivisionError", "0.0 cannot be raised to a negative power");
        return pv_float(float_pow(x, da, (double)e));
    }
    if (a.t != PT_BIG) {
        int64_t base = a.u.i, res = 1;
        uint64_t k = (uint64_t)e;
        int of = 0;
        while (k && !of) {
            if (k & 1) of |= __builtin_mul_overflow(res, base, &res);
            k >>= 1;
            if (k) of |= __builtin_mul_overflow(base, base, &base);
        }
        if (!of) return pv_int(res);
    }
    return big_pow(x, big_of(x, a), (uint64_t)e);
}

static pv small_floordiv(X *x, int64_t a, int64_t b, int want_mod, int *big) {
    if (b == 0)
        py_raise(x, "ZeroDivisionError",
                 want_mod ? "integer modulo by zero" : "integer division or modulo by zero");
    if (a == INT64_MIN && b == -1) {
        *big = 1;
        return pv_none();
    }
    int64_t q = a / b, r = a % b;
    if (r && ((r < 0) != (b < 0))) {
        q--;
        r += b;
    }
    return pv_int(want_mod ? r : q);
}

static pv int_shift(X *x, int op, pv a, pv b) {
    if ((b.t == PT_BIG && b.u.big->neg) || (b.t != PT_BIG && b.u.i < 0))
        py_raise(x, "ValueError", "negative shift count");
    if (b.t == PT_BIG) {
        if (op == OP_RSHIFT)
            return pv_int(pv_truthy(x, a) && (a.t == PT_BIG ? a.u.big->neg : a.u.i < 0) ? -1 : 0);
        if (a.t != PT_BIG && a.u.i == 0) return pv_int(0);
        py_raise(x, "OverflowError", "too many digits in integer");
    }
    int64_t n = b.u.i;
    if (a.t != PT_BIG) {
        int64_t v = a.u.i;
        if (op == OP_RSHIFT) return pv_int(n >= 64 ? (v < 0 ? -1 : 0) : v >> n);
        if (v == 0) return pv_int(0);
        if (n < 63) {
            int64_t r = (int64_t)((uint64_t)v << n);
            if ((r >> n) == v) return pv_int(r);
        }
    }
    if (n > (int64_t)1 << 40) py_raise(x, "OverflowError", "too many digits in integer");
    return big_shift(x, big_of(x, a), op == OP_LSHIFT ? n : -n);
}

static pv int_binop(X *x, int op, pv a, pv b, int *handled) {
    int small = a.t != PT_BIG && b.t != PT_BIG;
    int64_t r;
    int big = 0;
    switch (op) {
    case OP_ADD:
        if (small && !__builtin_add_overflow(a.u.i, b.u.i, &r)) return pv_int(r);
        return big_add(x, big_of(x, a), big_of(x, b), 0);
    case OP_SUB:
        if (small && !__builtin_sub_overflow(a.u.i, b.u.i, &r)) return pv_int(r);
        return big_add(x, big_of(x, a), big_of(x, b), 1);
    case OP_MUL:
        if (small && !__builtin_mul_overflow(a.u.i, b.u.i, &r)) return pv_int(r);
        return big_mul(x, big_of(x, a), big_of(x, b));
    case OP_TRUEDIV:
        if (small && llabs(a.u.i) <= (1LL << 53) && llabs(b.u.i) <= (1LL << 53)) {
            if (b.u.i == 0) py_raise(x, "ZeroDivisionError", "division by zero");
            return pv_float((double)a.u.i / (double)b.u.i);
        }
        return big_truediv(x, big_of(x, a), big_of(x, b));
    case OP_FLOORDIV:
    case OP_MOD: {
        if (small) {
            pv v = small_floordiv(x, a.u.i, b.u.i, op == OP_MOD, &big);
            if (!big) return v;
        }
        py_big *bb = big_of(x, b);
        if (!bb->n)
            py_raise(x, "ZeroDivisionError",
                     op == OP_MOD ? "integer modulo by zero" : "integer division or modulo by zero");
        pv q, m;
        big_divmod(x, big_of(x, a), bb, &q, &m);
        return op == OP_MOD ? m : q;
    }
    case OP_POW:
        return int_pow(x, a, b);
    case OP_LSHIFT:
    case OP_RSHIFT:
        return int_shift(x, op, a, b);
    case OP_AND:
    case OP_OR:
    case OP_XOR:
        if (small) return pv_int(op == OP_AND ? a.u.i & b.u.i : op == OP_OR ? a.u.i | b.u.i : a.u.i ^ b.u.i);
        return big_bitop(x, big_of(x, a), big_of(x, b), op);
    default:
        *handled = 0;
        return pv_none();
    }
}

pv num_binop(X *x, int op, pv a, pv b, int *handled) {
    *handled = 1;
    if (a.t == PT_FLOAT || b.t == PT_FLOAT) {
        if (op >= OP_LSHIFT) {
            *handled = 0;
            return pv_none();
        }
        return float_binop(x, op, pv_to_double(x, a), pv_to_double(x, b), handled);
    }
    if (a.t == PT_BOOL && b.t == PT_BOOL && (op == OP_AND || op == OP_OR || op == OP_XOR))
        return pv_bool(op == OP_AND ? a.u.i & b.u.i : op == OP_OR ? a.u.i | b.u.i : a.u.i ^ b.u.i);
    if (a.t == PT_BOOL) a.t = PT_INT;
    if (b.t == PT_BOOL) b.t = PT_INT;
    return int_binop(x, op, a, b, handled);
}

pv num_unary(X *x, int op, pv a) {
    if (a.t == PT_FLOAT) {
        if (op == UOP_INV) py_type_error(x, "bad operand type for unary ~: 'float'");
        return pv_float(op == UOP_NEG ? -a.u.f : a.u.f);
    }
    if (a.t == PT_BOOL) a.t = PT_INT;
    if (op == UOP_POS) return a;
    if (a.t == PT_INT) {
        if (op == UOP_INV) return pv_int(~a.u.i);
        if (a.u.i != INT64_MIN) return pv_int(-a.u.i);
    }
    py_big *b = big_of(x, a);
    if (op == UOP_INV) return big_invert(x, b);
    return big_add(x, big_of(x, pv_int(0)), b, 1);
}

/* int vs float, exactly */
static int int_float_cmp(X *x, pv i, double f) {
    if (isnan(f)) return -2;
    if (isinf(f)) return f > 0 ? -1 : 1;
    if (i.t != PT_BIG && llabs(i.u.i) < (1LL << 53)) {
        double d = (double)i.u.i;
        return d < f ? -1 : d > f;
    }
    double fl = floor(f);
    pv fb = big_from_double(x, fl);
    int c = big_cmp(big_of(x, i), big_of(x, fb));
    if (c == 0 && f > fl) return -1;
    return c;
}

int num_cmp(X *x, pv a, pv b) {
    if (a.t == PT_FLOAT && b.t == PT_FLOAT) {
        if (isnan(a.u.f) || isnan(b.u.f)) return -2;
        return a.u.f < b.u.f ? -1 : a.u.f > b.u.f;
    }
    if (a.t == PT_FLOAT) {
        int c = int_float_cmp(x, b, a.u.f);
        return c == -2 ? -2 : -c;
    }
    if (b.t == PT_FLOAT) return int_float_cmp(x, a, b.u.f);
    if (a.t != PT_BIG && b.t != PT_BIG) return a.u.i < b.u.i ? -1 : a.u.i > b.u.i;
    return big_cmp(big_of(x, a), big_of(x, b));
}

pv num_pow3(X *x, pv a, pv b, pv m) {
    if (!pv_is_int(a) || !pv_is_int(b) || !pv_is_int(m))
        py_type_error(x, "pow() 3rd argument not allowed unless all arguments are integers");
    if (!pv_truthy(x, m)) py_raise(x, "ValueError", "pow() 3rd argument cannot be 0");
    int h;
    if (num_cmp(x, b, pv_int(0)) < 0) {
        /* modular inverse by the extended Euclidean algorithm */
        pv mm = num_unary(x, UOP_POS, m);
        if (num_cmp(x, mm, pv_int(0)) < 0) mm = num_unary(x, UOP_NEG, mm);
        pv r0 = mm, r1 = num_binop(x, OP_MOD, a, mm, &h), t0 = pv_int(0), t1 = pv_int(1);
        while (pv_truthy(x, r1)) {
            py_step(x, 1);
            pv q = num_binop(x, OP_FLOORDIV, r0, r1, &h);
            pv r2 = num_binop(x, OP_SUB, r0, num_binop(x, OP_MUL, q, r1, &h), &h);
            pv t2 = num_binop(x, OP_SUB, t0, num_binop(x, OP_MUL, q, t1, &h), &h);
            r0 = r1;
            r1 = r2;
            t0 = t1;
            t1 = t2;
        }
        if (num_cmp(x, r0, pv_int(1)) != 0)
            py_raise(x, "ValueError", "base is not invertible for the given modulus");
        a = num_binop(x, OP_MOD, t0, mm, &h);
        b = num_unary(x, UOP_NEG, b);
    }
    pv result = pv_int(1), base = num_binop(x, OP_MOD, a, m, &h);
    py_big *e = big_of(x, b);
    size_t bits = big_bits(e);
    for (size_t i = 0; i < bits; i++) {
        py_step(x, 1);
        if (e->d[i / 32] >> (i % 32) & 1)
            result = num_binop(x, OP_MOD, num_binop(x, OP_MUL, result, base, &h), m, &h);
        base = num_binop(x, OP_MOD, num_binop(x, OP_MUL, base, base, &h), m, &h);
    }
    return num_binop(x, OP_MOD, result, m, &h);
}

pv py_divmod(X *x, pv a, pv b) {
    int h;
    if (a.t == PT_FLOAT || b.t == PT_FLOAT) {
        double fd, md;
        float_divmod(x, pv_to_double(x, a), pv_to_double(x, b), &fd, &md, "float divmod()");
        return pv_tuple2(x, pv_float(fd), pv_float(md));
    }
    if (!pv_truthy(x, b)) py_raise(x, "ZeroDivisionError", "integer division or modulo by zero");
    return pv_tuple2(x, num_binop(x, OP_FLOORDIV, a, b, &h), num_binop(x, OP_MOD, a, b, &h));
}

/* round(float, negative ndigits): exact decimal rounding, half to even */
static double round_neg(double d, int64_t k) {
    char digits[400];
    double t = trunc(fabs(d)), frac = fabs(d) - t;
    snprintf(digits, sizeof digits, "%.0f", t);
    size_t n = strlen(digits);
    if (k > 330) return copysign(0.0, d);
    char q[400];
    size_t nq = n > (size_t)k ? n - (size_t)k : 0;
    memcpy(q, digits, nq);
    q[nq] = 0;
    /* compare the dropped part with half */
    int cmp;
    const char *r = digits + nq;
    size_t nr = n - nq;
    if (nr < (size_t)k)
        cmp = -1;
    else {
        cmp = r[0] > '5' ? 1 : r[0] < '5' ? -1 : 0;
        for (size_t i = 1; i < nr && cmp == 0; i++)
            if (r[i] != '0') cmp = 1;
        if (cmp == 0 && frac > 0) cmp = 1;
    }
    int up = cmp > 0 || (cmp == 0 && nq && ((q[nq - 1] - '0') & 1));
    if (!nq) {
        strcpy(q, "0");
        nq = 1;
    }
    if (up) {
        size_t i = nq;
        while (i > 0 && q[i - 1] == '9') q[--i] = '0';
        if (i == 0) {
            memmove(q + 1, q, nq + 1);
            q[0] = '1';
            nq++;
        } else {
            q[i - 1]++;
        }
    }
    char out[800];
    snprintf(out, sizeof out, "%se%lld", q, (long long)k);
    double res = strtod(out, NULL);
    return copysign(res, d);
}

static pv round_float(X *x, double d, int has_nd, int64_t nd) {
    if (!has_nd) {
        double r = nearbyint(d);
        if (fabs(d - trunc(d)) == 0.5) r = 2.0 * nearbyint(d / 2.0); /* ties to even */
        return int_from_float(x, r);
    }
    if (!isfinite(d) || d == 0.0) return pv_float(d);
    if (nd > 323) return pv_float(d);
    if (nd < -308) return pv_float(0.0 * d);
    if (nd < 0) {
        double r = round_neg(d, -nd);
        if (isinf(r)) py_raise(x, "OverflowError", "rounded value too large to represent");
        return pv_float(r);
    }
    char buf[800];
    snprintf(buf, sizeof buf, "%.*f", (int)nd, d);
    double r = strtod(buf, NULL);
    if (r == 0.0) r = copysign(0.0, d);
    return pv_float(r);
}

pv py_round(X *x, pv v, int has_nd, pv nd) {
    if (has_nd && nd.t == PT_NONE) has_nd = 0;
    int64_t k = 0;
    if (has_nd) {
        if (!pv_is_int(nd)) py_type_error(x, "'%s' object cannot be interpreted as an integer", pv_tname(nd));
        k = nd.t == PT_BIG ? (nd.u.big->neg ? INT64_MIN / 2 : INT64_MAX / 2) : nd.u.i;
    }
    if (v.t == PT_FLOAT) return round_float(x, v.u.f, has_nd, k);
    if (!pv_is_int(v)) py_type_error(x, "type %s doesn't define __round__ method", pv_tname(v));
    if (v.t == PT_BOOL) v = pv_int(v.u.i);
    if (!has_nd || k >= 0) return v;
    /* int rounded to a power of ten, half to even */
    int h;
    if (k < -4000) return pv_int(0);
    pv p = num_binop(x, OP_POW, pv_int(10), pv_int(-k), &h);
    pv q = num_binop(x, OP_FLOORDIV, v, p, &h), r = num_binop(x, OP_MOD, v, p, &h);
    pv twice = num_binop(x, OP_MUL, r, pv_int(2), &h);
    int c = num_cmp(x, twice, p);
    pv one = pv_int(1);
    if (c > 0 || (c == 0 && pv_truthy(x, num_binop(x, OP_AND, q, one, &h))))
        q = num_binop(x, OP_ADD, q, one, &h);
    return num_binop(x, OP_MUL, q, p, &h);
}
