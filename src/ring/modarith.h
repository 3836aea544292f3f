/*
 * Inline single-word modular arithmetic for the ring layer's kernels (internal).
 * Ranges are stated as in: / out: for every lazy function.
 */
#ifndef VEIL_RING_MODARITH_H
#define VEIL_RING_MODARITH_H

#include <stdint.h>
#include <math.h>

__extension__ typedef unsigned __int128 veil_u128;
__extension__ typedef __int128 veil_i128;

/* A modulus with its Barrett constant floor(2^128 / q) split into two words. */
typedef struct veil_modulus {
    uint64_t q;
    uint64_t ratio_hi, ratio_lo;
    unsigned bits;
} veil_modulus;

void veil_modulus_init(veil_modulus *m, uint64_t q); /* q >= 2, q < 2^62 */

/* Barrett reduction of a 128-bit value (Barrett 1986; HAC 14.42). in: any x < 2^128. out: [0, q). */
static inline uint64_t veil_reduce128(const veil_modulus *m, veil_u128 x)
{
    uint64_t lo = (uint64_t)x, hi = (uint64_t)(x >> 64);
    /* estimate floor(x / q) as the high words of x * ratio, keeping only what can reach bit 128 */
    veil_u128 t = (veil_u128)lo * m->ratio_hi + (((veil_u128)lo * m->ratio_lo) >> 64);
    uint64_t carry = (uint64_t)(t >> 64);
    t = (veil_u128)hi * m->ratio_lo + (uint64_t)t;
    uint64_t quot = hi * m->ratio_hi + carry + (uint64_t)(t >> 64);
    uint64_t r = lo - quot * m->q; /* in [0, 3q) */
    r -= m->q & (0 - (uint64_t)(r >= m->q));
    r -= m->q & (0 - (uint64_t)(r >= m->q));
    return r;
}

/* in: x < 2^64. out: [0, q). */
static inline uint64_t veil_reduce64(const veil_modulus *m, uint64_t x)
{
    return veil_reduce128(m, x);
}

/* in: a, b any 64-bit. out: [0, q). */
static inline uint64_t veil_mulmod(const veil_modulus *m, uint64_t a, uint64_t b)
{
    return veil_reduce128(m, (veil_u128)a * b);
}

/* in: a, b in [0, q). out: [0, q). Branch-free. */
static inline uint64_t veil_addmod(uint64_t a, uint64_t b, uint64_t q)
{
    uint64_t s = a + b;
    return s - (q & (0 - (uint64_t)(s >= q)));
}

/* in: a, b in [0, q). out: [0, q). Branch-free. */
static inline uint64_t veil_submod(uint64_t a, uint64_t b, uint64_t q)
{
    uint64_t d = a - b;
    return d + (q & (0 - (uint64_t)(a < b)));
}

/* Shoup's precomputed quotient for a fixed multiplier w < q: floor(w * 2^64 / q). */
static inline uint64_t veil_shoup_precompute(uint64_t w, uint64_t q)
{
    return (uint64_t)(((veil_u128)w << 64) / q);
}

/*
 * Shoup multiplication by a fixed w with ws = floor(w * 2^64 / q) (Harvey 2014, Alg. 2).
 * in: a any 64-bit, w < q, q < 2^63. out: [0, 2q).
 */
static inline uint64_t veil_mulmod_shoup_lazy(uint64_t a, uint64_t w, uint64_t ws, uint64_t q)
{
    uint64_t quot = (uint64_t)(((veil_u128)a * ws) >> 64);
    return a * w - quot * q;
}

/* As above with the final correction. out: [0, q). */
static inline uint64_t veil_mulmod_shoup(uint64_t a, uint64_t w, uint64_t ws, uint64_t q)
{
    uint64_t r = veil_mulmod_shoup_lazy(a, w, ws, q);
    return r - (q & (0 - (uint64_t)(r >= q)));
}

/* Reduces a signed integer modulo q. out: [0, q). */
static inline uint64_t veil_reduce_i64(const veil_modulus *m, int64_t x)
{
    uint64_t mag = x < 0 ? (uint64_t)0 - (uint64_t)x : (uint64_t)x;
    uint64_t r = veil_reduce64(m, mag);
    uint64_t neg = m->q - r;
    neg = neg == m->q ? 0 : neg;
    return x < 0 ? neg : r;
}

/*
 * Reduces an integer-valued double of any finite magnitude modulo q, exactly: beyond 2^62 it is a 53-bit
 * integer times 2^e, whose residue is the mantissa's doubled e times. out: [0, q).
 */
static inline uint64_t veil_reduce_integral(const veil_modulus *m, double x)
{
    if (fabs(x) < 0x1p62) return veil_reduce_i64(m, (int64_t)x);
    int e = 0;
    const double f = frexp(fabs(x), &e); /* |x| = f 2^e, f in [1/2, 1) */
    uint64_t r = veil_reduce64(m, (uint64_t)ldexp(f, 53));
    for (e -= 53; e > 0; e--) r = r >= m->q - r ? r - (m->q - r) : r + r;
    return x < 0 && r ? m->q - r : r;
}

#endif
