/* Arbitrary-precision integers: sign + magnitude in 32-bit limbs. Results that fit in 64 bits are
 * returned as PT_INT (big_norm), so a PT_BIG is always outside the int64 range. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "convert/pyexpr/internal.h"

#define MAX_LIMBS (1u << 20) /* 32 Mbit: larger results are refused before computing them */

static py_big *big_new(X *x, size_t n) {
    if (n > MAX_LIMBS) py_raise(x, "OverflowError", "integer result too large");
    py_big *b = py_alloc(x, sizeof *b + (n ? n : 1) * sizeof(uint32_t));
    b->neg = 0;
    b->n = n;
    memset(b->d, 0, (n ? n : 1) * sizeof(uint32_t));
    return b;
}

static py_big *big_abs(X *x, const py_big *a) {
    py_big *r = big_new(x, a->n);
    memcpy(r->d, a->d, a->n * sizeof(uint32_t));
    return r;
}

static void trim(py_big *b) {
    while (b->n > 0 && b->d[b->n - 1] == 0) b->n--;
    if (b->n == 0) b->neg = 0;
}

pv big_from_i64(X *x, int64_t i) {
    py_big *b = big_new(x, 2);
    uint64_t m = i < 0 ? (uint64_t)0 - (uint64_t)i : (uint64_t)i;
    b->neg = i < 0;
    b->d[0] = (uint32_t)m;
    b->d[1] = (uint32_t)(m >> 32);
    trim(b);
    return pv_ptr(PT_BIG, b);
}

py_big *big_of(X *x, pv v) {
    if (v.t == PT_BIG) return v.u.big;
    return big_from_i64(x, v.u.i).u.big;
}

pv big_norm(X *x, py_big *b) {
    trim(b);
    if (b->n <= 2) {
        uint64_t m = b->n ? b->d[0] : 0;
        if (b->n == 2) m |= (uint64_t)b->d[1] << 32;
        if (!b->neg && m <= (uint64_t)INT64_MAX) return pv_int((int64_t)m);
        if (b->neg && m <= (uint64_t)INT64_MAX + 1) return pv_int((int64_t)(0 - m));
    }
    return pv_ptr(PT_BIG, b);
}

static int mag_cmp(const py_big *a, const py_big *b) {
    if (a->n != b->n) return a->n < b->n ? -1 : 1;
    for (size_t i = a->n; i-- > 0;)
        if (a->d[i] != b->d[i]) return a->d[i] < b->d[i] ? -1 : 1;
    return 0;
}

int big_cmp(const py_big *a, const py_big *b) {
    if (a->neg != b->neg) return a->neg ? -1 : 1;
    int c = mag_cmp(a, b);
    return a->neg ? -c : c;
}

static py_big *mag_add(X *x, const py_big *a, const py_big *b) {
    if (a->n < b->n) {
        const py_big *t = a;
        a = b;
        b = t;
    }
    py_big *r = big_new(x, a->n + 1);
    uint64_t c = 0;
    for (size_t i = 0; i < a->n; i++) {
        c += (uint64_t)a->d[i] + (i < b->n ? b->d[i] : 0);
        r->d[i] = (uint32_t)c;
        c >>= 32;
    }
    r->d[a->n] = (uint32_t)c;
    trim(r);
    return r;
}

/* |a| - |b| with |a| >= |b| */
static py_big *mag_sub(X *x, const py_big *a, const py_big *b) {
    py_big *r = big_new(x, a->n);
    int64_t c = 0;
    for (size_t i = 0; i < a->n; i++) {
        c += (int64_t)a->d[i] - (i < b->n ? b->d[i] : 0);
        r->d[i] = (uint32_t)c;
        c = c < 0 ? -1 : 0;
    }
    trim(r);
    return r;
}

pv big_add(X *x, const py_big *a, const py_big *b, int negate_b) {
    int bneg = negate_b ? !b->neg && b->n : b->neg;
    py_big *r;
    if (a->neg == bneg) {
        r = mag_add(x, a, b);
        r->neg = a->neg;
    } else if (mag_cmp(a, b) >= 0) {
        r = mag_sub(x, a, b);
        r->neg = a->neg;
    } else {
        r = mag_sub(x, b, a);
        r->neg = bneg;
    }
    return big_norm(x, r);
}

pv big_mul(X *x, const py_big *a, const py_big *b) {
    if (a->n + b->n > MAX_LIMBS) py_raise(x, "OverflowError", "integer result too large");
    py_step(x, (uint64_t)a->n * b->n / 16);
    py_big *r = big_new(x, a->n + b->n);
    for (size_t i = 0; i < a->n; i++) {
        uint64_t c = 0;
        for (size_t j = 0; j < b->n; j++) {
            c += (uint64_t)a->d[i] * b->d[j] + r->d[i + j];
            r->d[i + j] = (uint32_t)c;
            c >>= 32;
        }
        r->d[i + b->n] = (uint32_t)c;
    }
    r->neg = a->neg != b->neg;
    return big_norm(x, r);
}

/* magnitude division (Knuth D): q = |a| / |b|, r = |a| % |b| */
static void mag_divmod(X *x, const py_big *a, const py_big *b, py_big **qo, py_big **ro) {
    if (mag_cmp(a, b) < 0) {
        *qo = big_new(x, 0);
        py_big *r = big_new(x, a->n);
        memcpy(r->d, a->d, a->n * sizeof(uint32_t));
        *ro = r;
        return;
    }
    py_step(x, (uint64_t)a->n * b->n / 16);
    if (b->n == 1) {
        py_big *q = big_new(x, a->n);
        uint64_t rem = 0;
        for (size_t i = a->n; i-- > 0;) {
            uint64_t cur = (rem << 32) | a->d[i];
            q->d[i] = (uint32_t)(cur / b->d[0]);
            rem = cur % b->d[0];
        }
        trim(q);
        py_big *r = big_new(x, 1);
        r->d[0] = (uint32_t)rem;
        trim(r);
        *qo = q;
        *ro = r;
        return;
    }
    size_t n = b->n, m = a->n - b->n;
    int s = __builtin_clz(b->d[n - 1]);
    uint32_t *v = py_alloc(x, n * sizeof(uint32_t)), *u = py_alloc(x, (a->n + 1) * sizeof(uint32_t));
    for (size_t i = n; i-- > 0;)
        v[i] = (b->d[i] << s) | (s && i ? (uint32_t)((uint64_t)b->d[i - 1] >> (32 - s)) : 0);
    u[a->n] = s ? (uint32_t)((uint64_t)a->d[a->n - 1] >> (32 - s)) : 0;
    for (size_t i = a->n; i-- > 0;)
        u[i] = (a->d[i] << s) | (s && i ? (uint32_t)((uint64_t)a->d[i - 1] >> (32 - s)) : 0);
    py_big *q = big_new(x, m + 1);
    for (size_t j = m + 1; j-- > 0;) {
        uint64_t num = ((uint64_t)u[j + n] << 32) | u[j + n - 1];
        uint64_t qhat = num / v[n - 1], rhat = num % v[n - 1];
        while (qhat >= (1ULL << 32) || qhat * v[n - 2] > ((rhat << 32) | u[j + n - 2])) {
            qhat--;
            rhat += v[n - 1];
            if (rhat >= (1ULL << 32)) break;
        }
        int64_t borrow = 0;
        uint64_t carry = 0;
        for (size_t i = 0; i < n; i++) {
            uint64_t p = qhat * v[i] + carry;
            carry = p >> 32;
            int64_t t = (int64_t)u[i + j] - borrow - (int64_t)(uint32_t)p;
            u[i + j] = (uint32_t)t;
            borrow = t < 0 ? 1 : 0;
        }
        int64_t t = (int64_t)u[j + n] - borrow - (int64_t)carry;
        u[j + n] = (uint32_t)t;
        if (t < 0) { /* add back */
            qhat--;
            uint64_t c = 0;
            for (size_t i = 0; i < n; i++) {
                c += (uint64_t)u[i + j] + v[i];
                u[i + j] = (uint32_t)c;
                c >>= 32;
            }
            u[j + n] += (uint32_t)c;
        }
        q->d[j] = (uint32_t)qhat;
    }
    trim(q);
    py_big *r = big_new(x, n);
    for (size_t i = 0; i < n; i++)
        r->d[i] = (u[i] >> s) | (s ? (uint32_t)((uint64_t)u[i + 1] << (32 - s)) : 0);
    trim(r);
    *qo = q;
    *ro = r;
}

void big_divmod(X *x, const py_big *a, const py_big *b, pv *qv, pv *rv) {
    if (b->n == 0) py_raise(x, "ZeroDivisionError", "integer division or modulo by zero");
    py_big *q, *r;
    mag_divmod(x, a, b, &q, &r);
    q->neg = a->neg != b->neg;
    r->neg = a->neg;
    trim(q);
    trim(r);
    if (r->n && a->neg != b->neg) { /* floor: q -= 1, r += b */
        py_big *onep = big_new(x, 1);
        onep->d[0] = 1;
        pv qq = big_add(x, q, onep, 1);
        pv rr = big_add(x, r, b, 0);
        if (qv) *qv = qq;
        if (rv) *rv = rr;
        return;
    }
    if (qv) *qv = big_norm(x, q);
    if (rv) *rv = big_norm(x, r);
}

size_t big_bits(const py_big *a) {
    if (!a->n) return 0;
    return (a->n - 1) * 32 + (32 - (size_t)__builtin_clz(a->d[a->n - 1]));
}

pv big_pow(X *x, const py_big *a, uint64_t e) {
    size_t bits = big_bits(a);
    if (bits > 1 && e > 0 && (double)(bits - 1) * (double)e > (double)MAX_LIMBS * 32)
        py_raise(x, "OverflowError", "integer result too large");
    pv result = pv_int(1);
    pv base = big_norm(x, big_of(x, pv_ptr(PT_BIG, (void *)a)));
    while (e) {
        if (e & 1) result = big_mul(x, big_of(x, result), big_of(x, base));
        e >>= 1;
        if (e) base = big_mul(x, big_of(x, base), big_of(x, base));
    }
    return result;
}

pv big_shift(X *x, const py_big *a, int64_t n) {
    if (n > 0) {
        if ((uint64_t)n / 32 + a->n + 1 > MAX_LIMBS) py_raise(x, "OverflowError", "integer result too large");
        size_t w = (size_t)n / 32, s = (size_t)n % 32;
        py_big *r = big_new(x, a->n + w + 1);
        for (size_t i = 0; i < a->n; i++) {
            uint64_t t = (uint64_t)a->d[i] << s;
            r->d[i + w] |= (uint32_t)t;
            r->d[i + w + 1] |= (uint32_t)(t >> 32);
        }
        r->neg = a->neg;
        return big_norm(x, r);
    }
    uint64_t k = (uint64_t)0 - (uint64_t)n;
    if (k >= (uint64_t)a->n * 32) return pv_int(a->neg ? -1 : 0);
    size_t w = (size_t)(k / 32), s = (size_t)(k % 32);
    py_big *r = big_new(x, a->n - w);
    int lost = 0;
    for (size_t i = 0; i < w; i++) lost |= a->d[i] != 0;
    if (s && (a->d[w] & ((1u << s) - 1))) lost = 1;
    for (size_t i = 0; i < r->n; i++) {
        uint64_t t = a->d[i + w] >> s;
        if (s && i + w + 1 < a->n) t |= (uint64_t)a->d[i + w + 1] << (32 - s);
        r->d[i] = (uint32_t)t;
    }
    r->neg = a->neg;
    trim(r);
    if (a->neg && lost) { /* floor for negatives */
        py_big *one = big_new(x, 1);
        one->d[0] = 1;
        return big_add(x, r->n ? r : big_of(x, pv_int(0)), one, 1);
    }
    return big_norm(x, r);
}

/* two's complement limbs of a, n limbs (n > a->n) */
static void twos(const py_big *a, uint32_t *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = i < a->n ? a->d[i] : 0;
    if (a->neg) {
        uint64_t c = 1;
        for (size_t i = 0; i < n; i++) {
            c += (uint32_t)~out[i];
            out[i] = (uint32_t)c;
            c >>= 32;
        }
    }
}

pv big_bitop(X *x, const py_big *a, const py_big *b, int op) {
    size_t n = (a->n > b->n ? a->n : b->n) + 1;
    uint32_t *ta = py_alloc(x, n * 4), *tb = py_alloc(x, n * 4);
    twos(a, ta, n);
    twos(b, tb, n);
    py_big *r = big_new(x, n);
    for (size_t i = 0; i < n; i++)
        r->d[i] = op == OP_AND ? ta[i] & tb[i] : op == OP_OR ? ta[i] | tb[i] : ta[i] ^ tb[i];
    if (r->d[n - 1] & 0x80000000u) { /* negative: magnitude = ~r + 1 */
        uint64_t c = 1;
        for (size_t i = 0; i < n; i++) {
            c += (uint32_t)~r->d[i];
            r->d[i] = (uint32_t)c;
            c >>= 32;
        }
        r->neg = 1;
    }
    return big_norm(x, r);
}

pv big_invert(X *x, const py_big *a) { /* ~a = -(a + 1) */
    py_big *one = big_new(x, 1);
    one->d[0] = 1;
    pv s = big_add(x, a, one, 0);
    py_big *r = big_of(x, s);
    py_big *c = big_new(x, r->n);
    memcpy(c->d, r->d, r->n * sizeof(uint32_t));
    c->neg = !r->neg && r->n;
    return big_norm(x, c);
}

double big_to_double(X *x, const py_big *a, int *overflow) {
    size_t bits = big_bits(a);
    *overflow = 0;
    if (bits > 1024) {
        *overflow = 1;
        return 0;
    }
    uint64_t m = 0;
    int sh = 0;
    if (bits <= 64) {
        for (size_t i = a->n; i-- > 0;) m = (m << 32) | a->d[i];
    } else {
        sh = (int)(bits - 64);
        size_t w = (size_t)sh / 32, s = (size_t)sh % 32;
        int sticky = 0;
        for (size_t i = 0; i < w; i++) sticky |= a->d[i] != 0;
        if (s && (a->d[w] & ((1u << s) - 1))) sticky = 1;
        for (size_t i = 0; i < 3 && i + w < a->n; i++) {
            uint64_t limb = a->d[i + w];
            if (i == 0)
                m |= limb >> s;
            else if (32 * i - s < 64)
                m |= limb << (32 * i - s);
        }
        if (sticky) m |= 1;
    }
    double d = ldexp((double)m, sh);
    if (isinf(d)) *overflow = 1;
    return a->neg ? -d : d;
}

pv big_from_double(X *x, double d) {
    int e;
    double fr = frexp(fabs(d), &e); /* d = fr * 2^e, 0.5 <= fr < 1 */
    if (e <= 63) return pv_int((int64_t)d);
    uint64_t m = (uint64_t)ldexp(fr, 64);
    py_big *b = big_new(x, 2);
    b->d[0] = (uint32_t)m;
    b->d[1] = (uint32_t)(m >> 32);
    trim(b);
    pv r = big_shift(x, b, e - 64);
    if (d < 0) {
        py_big *rb = big_of(x, r);
        py_big *c = big_new(x, rb->n);
        memcpy(c->d, rb->d, rb->n * sizeof(uint32_t));
        c->neg = 1;
        return big_norm(x, c);
    }
    return r;
}

void big_to_str(X *x, const py_big *a, unsigned base, tbgw_buf *out) {
    if (!a->n) {
        tbgw_buf_putc(out, '0');
        return;
    }
    size_t cap = a->n * 32 + 2;
    char *tmp = py_alloc(x, cap);
    size_t k = cap;
    static const char dig[] = "0123456789abcdef";
    if (base == 10) {
        uint32_t *t = py_alloc(x, a->n * sizeof(uint32_t));
        memcpy(t, a->d, a->n * sizeof(uint32_t));
        size_t n = a->n;
        py_step(x, (uint64_t)n * n / 64);
        while (n) {
            uint64_t rem = 0;
            for (size_t i = n; i-- > 0;) {
                uint64_t cur = (rem << 32) | t[i];
                t[i] = (uint32_t)(cur / 1000000000u);
                rem = cur % 1000000000u;
            }
            while (n && !t[n - 1]) n--;
            for (int j = 0; j < 9 && (n || rem); j++) {
                tmp[--k] = (char)('0' + rem % 10);
                rem /= 10;
            }
        }
        if (cap - k > 4300) /* Python's int_max_str_digits */
            py_raise(x, "ValueError",
                     "Exceeds the limit (4300 digits) for integer string conversion; use "
                     "sys.set_int_max_str_digits() to increase the limit");
    } else {
        unsigned sh = base == 16 ? 4 : base == 8 ? 3 : 1;
        size_t bits = big_bits(a);
        for (size_t b = 0; b < bits; b += sh) {
            unsigned v = 0;
            for (unsigned j = 0; j < sh; j++) {
                size_t bit = b + j;
                if (bit / 32 < a->n && (a->d[bit / 32] >> (bit % 32) & 1)) v |= 1u << j;
            }
            tmp[--k] = dig[v];
        }
    }
    if (a->neg) tmp[--k] = '-';
    tbgw_buf_append(out, tmp + k, cap - k);
}

pv big_parse(X *x, const char *s, size_t n, unsigned base) {
    py_big *r = big_new(x, n * 6 / 32 + 2);
    size_t used = 1;
    py_step(x, (uint64_t)n * n / 256);
    for (size_t i = 0; i < n; i++) {
        unsigned c = (unsigned char)s[i];
        unsigned d = c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
        uint64_t carry = d;
        for (size_t j = 0; j < used; j++) {
            carry += (uint64_t)r->d[j] * base;
            r->d[j] = (uint32_t)carry;
            carry >>= 32;
        }
        if (carry) r->d[used++] = (uint32_t)carry;
    }
    r->n = used;
    return big_norm(x, r);
}

pv big_truediv(X *x, const py_big *a, const py_big *b) {
    if (!b->n) py_raise(x, "ZeroDivisionError", "division by zero");
    if (!a->n) return pv_float(a->neg != b->neg ? -0.0 : 0.0);
    int64_t na = (int64_t)big_bits(a), nb = (int64_t)big_bits(b);
    int64_t s = 55 - (na - nb); /* quotient of (a << s) / b has 55 or 56 bits */
    py_big *num = big_abs(x, a), *den = big_abs(x, b);
    if (s > 0)
        num = big_of(x, big_shift(x, num, s));
    else if (s < 0)
        den = big_of(x, big_shift(x, den, -s));
    num = big_abs(x, num);
    den = big_abs(x, den);
    py_big *q, *r;
    mag_divmod(x, num, den, &q, &r);
    uint64_t m = 0;
    for (size_t i = q->n; i-- > 0;) m = (m << 32) | q->d[i];
    if (r->n) m |= 1;
    if (na - nb > 1025) py_raise(x, "OverflowError", "integer division result too large for a float");
    double d = ldexp((double)m, (int)-s);
    if (isinf(d)) py_raise(x, "OverflowError", "integer division result too large for a float");
    return pv_float(a->neg != b->neg ? -d : d);
}

uint64_t big_hash(const py_big *a) {
    uint64_t h = a->neg ? 0x51ed27 : 0x7ab3;
    for (size_t i = 0; i < a->n; i++) {
        h = (h ^ a->d[i]) * 0x100000001b3ULL;
        h ^= h >> 29;
    }
    return h;
}
