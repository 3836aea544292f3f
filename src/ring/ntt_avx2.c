/*
 * AVX2 kernels for primes q < 2^50: the negacyclic NTT and pointwise products, in double precision.
 *
 * AVX2 has no 64x64-bit multiplier, but the FMA unit multiplies two 53-bit doubles exactly when the
 * product is split into a rounded high part and an exact low part:
 *     h = fl(a*w),  l = fma(a, w, -h)            so that a*w = h + l exactly;
 *     c = round(a * (w/q))                       the quotient, off by at most one;
 *     r = fma(-c, q, h) + l                      = a*w - c*q exactly, |r| <= q.
 * Every intermediate is an integer below 2^53 in magnitude, so nothing is rounded away (see
 * docs/design.md, "The AVX2 kernels", for the bounds). Values are kept in a signed, lazily reduced form
 * (|x| <= 2.5q between passes); twiddles are stored balanced (|w| <= q/2) with w/q beside them.
 * The transforms read and write uint64 residues in [0, q) and give exactly the scalar kernel's output.
 * Two butterfly stages are fused per pass over memory and the last (first, for the inverse) three
 * stages run in registers on blocks of eight values.
 */
#include <immintrin.h>
#include <string.h>
#include "ring/ring_internal.h"

#define MAGIC52 4503599627370496.0 /* 2^52: adding it places an integer below 2^52 in the mantissa */

bool veil_cpu_has_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

/* ---- tables ------------------------------------------------------------------------------------ */

static double balanced(uint64_t w, uint64_t q)
{
    return w > q / 2 ? -(double)(q - w) : (double)w;
}

/* Forward: [w (n) | w/q (n) | stage n/4 pairs (n/2) | their w/q (n/2)]. Inverse: [w (n) | w/q (n) |
 * stage n/2 lanes (n/2) | w/q (n/2) | stage n/4 lanes (n/2) | w/q (n/2) | 1/n, (1/n)/q]. */
veil_status veil_ntt_simd_tables_init(veil_ntt_tables *t)
{
    const size_t n = t->n;
    const uint64_t q = t->q;
    const double qd = (double)q;
    t->simd_fwd = veil_alloc(3 * n, sizeof(double));
    t->simd_inv = veil_alloc(5 * n + 8, sizeof(double));
    if (!t->simd_fwd || !t->simd_inv) {
        veil_ntt_simd_tables_free(t);
        return VEIL_ERR_NO_MEMORY;
    }
    double *fw = t->simd_fwd, *fwq = fw + n, *f2 = fw + 2 * n, *f2q = f2 + n / 2;
    double *iw = t->simd_inv, *iwq = iw + n, *h1 = iw + 2 * n, *h1q = h1 + n / 2;
    double *h2 = h1 + n, *h2q = h2 + n / 2, *ninv = iw + 5 * n;
    for (size_t i = 0; i < n; i++) {
        fw[i] = balanced(t->fwd[i], q);
        fwq[i] = fw[i] / qd;
        iw[i] = balanced(t->inv[i], q);
        iwq[i] = iw[i] / qd;
    }
    for (size_t k = 0; k < n / 8; k++) {
        /* forward stage t=2: lanes (a0,a1,b0,b1) use groups 2k, 2k, 2k+1, 2k+1 */
        size_t g = n / 4 + 2 * k;
        const size_t fsel[4] = {g, g, g + 1, g + 1};
        /* inverse stage t=1: lanes (a0,b0,a2,b2) use groups 4k, 4k+2, 4k+1, 4k+3 */
        size_t g1 = n / 2 + 4 * k;
        const size_t isel1[4] = {g1, g1 + 2, g1 + 1, g1 + 3};
        /* inverse stage t=2: lanes (a0,a1,b0,b1) use groups 2k, 2k, 2k+1, 2k+1 */
        for (size_t l = 0; l < 4; l++) {
            f2[4 * k + l] = fw[fsel[l]];
            f2q[4 * k + l] = fwq[fsel[l]];
            h1[4 * k + l] = iw[isel1[l]];
            h1q[4 * k + l] = iwq[isel1[l]];
            h2[4 * k + l] = iw[fsel[l]];
            h2q[4 * k + l] = iwq[fsel[l]];
        }
    }
    ninv[0] = balanced(t->n_inv, q);
    ninv[1] = ninv[0] / qd;
    return VEIL_OK;
}

void veil_ntt_simd_tables_free(veil_ntt_tables *t)
{
    veil_free(t->simd_fwd);
    veil_free(t->simd_inv);
    t->simd_fwd = t->simd_inv = NULL;
}

/* ---- vector helpers ---------------------------------------------------------------------------- */

typedef struct {
    __m256d q, qinv;
} modq;

/* r = x*w mod q with |r| <= q. in: |x| <= 2^52, |w| <= q/2, wq = w/q. */
static inline __m256d mulmod(__m256d x, __m256d w, __m256d wq, modq m)
{
    __m256d h = _mm256_mul_pd(x, w);
    __m256d l = _mm256_fmsub_pd(x, w, h);
    __m256d c = _mm256_round_pd(_mm256_mul_pd(x, wq), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    return _mm256_add_pd(_mm256_fnmadd_pd(c, m.q, h), l);
}

/* Balanced reduction. in: |x| < 2^53. out: |x| <= q/2 + 1. */
static inline __m256d reduce(__m256d x, modq m)
{
    __m256d c = _mm256_round_pd(_mm256_mul_pd(x, m.qinv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    return _mm256_fnmadd_pd(c, m.q, x);
}

/* Canonical residue. in: |x| < 2^53. out: [0, q). */
static inline __m256d canonical(__m256d x, modq m)
{
    x = reduce(x, m);
    __m256d neg = _mm256_cmp_pd(x, _mm256_setzero_pd(), _CMP_LT_OQ);
    return _mm256_add_pd(x, _mm256_and_pd(neg, m.q));
}

/* uint64 in [0, 2^52) -> double, and back (for integral doubles in [0, 2^52)). */
static inline __m256d load_u64(const uint64_t *p)
{
    const __m256i magic = _mm256_set1_epi64x(0x4330000000000000LL);
    __m256i v = _mm256_loadu_si256((const __m256i *)p);
    return _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(v, magic)), _mm256_set1_pd(MAGIC52));
}

static inline void store_u64(uint64_t *p, __m256d x)
{
    const __m256i magic = _mm256_set1_epi64x(0x4330000000000000LL);
    __m256i v = _mm256_castpd_si256(_mm256_add_pd(x, _mm256_set1_pd(MAGIC52)));
    _mm256_storeu_si256((__m256i *)p, _mm256_xor_si256(v, magic));
}

static inline __m256d ld(const double *p) { return _mm256_loadu_pd(p); }
static inline void st(double *p, __m256d x) { _mm256_storeu_pd(p, x); }
static inline __m256d bc(const double *p) { return _mm256_broadcast_sd(p); }

static void to_double(uint64_t *a, size_t n)
{
    double *d = (double *)(void *)a;
    for (size_t j = 0; j < n; j += 4) st(d + j, load_u64(a + j));
}

/* ---- forward ----------------------------------------------------------------------------------- */

/* One Cooley-Tukey stage with m groups of half-size t (t >= 4). in: |x| <= 2.5q. out: |x| <= 2.5q. */
static void fwd_radix2(double *a, const double *fw, const double *fwq, size_t m, size_t t, modq mq)
{
    for (size_t i = 0; i < m; i++) {
        __m256d w = bc(fw + m + i), wq = bc(fwq + m + i);
        double *x = a + 2 * i * t, *y = x + t;
        for (size_t j = 0; j < t; j += 4) {
            __m256d u = reduce(ld(x + j), mq);
            __m256d v = mulmod(ld(y + j), w, wq, mq);
            st(x + j, _mm256_add_pd(u, v));
            st(y + j, _mm256_sub_pd(u, v));
        }
    }
}

/* Stages (m, t) and (2m, t/2) fused, t >= 8. in: |x| <= 2.5q. out: |x| <= 2.5q. */
static void fwd_radix4(double *a, const double *fw, const double *fwq, size_t m, size_t t, modq mq)
{
    const size_t h = t / 2;
    for (size_t i = 0; i < m; i++) {
        __m256d w1 = bc(fw + m + i), w1q = bc(fwq + m + i);
        __m256d w2 = bc(fw + 2 * m + 2 * i), w2q = bc(fwq + 2 * m + 2 * i);
        __m256d w3 = bc(fw + 2 * m + 2 * i + 1), w3q = bc(fwq + 2 * m + 2 * i + 1);
        double *p0 = a + 2 * i * t, *p1 = p0 + h, *p2 = p0 + t, *p3 = p2 + h;
        for (size_t j = 0; j < h; j += 4) {
            __m256d x0 = reduce(ld(p0 + j), mq), x1 = reduce(ld(p1 + j), mq);
            __m256d v2 = mulmod(ld(p2 + j), w1, w1q, mq), v3 = mulmod(ld(p3 + j), w1, w1q, mq);
            __m256d y0 = _mm256_add_pd(x0, v2), y2 = _mm256_sub_pd(x0, v2); /* |y| <= 1.5q */
            __m256d y1 = _mm256_add_pd(x1, v3), y3 = _mm256_sub_pd(x1, v3);
            __m256d r1 = mulmod(y1, w2, w2q, mq), r3 = mulmod(y3, w3, w3q, mq);
            st(p0 + j, _mm256_add_pd(y0, r1));
            st(p1 + j, _mm256_sub_pd(y0, r1));
            st(p2 + j, _mm256_add_pd(y2, r3));
            st(p3 + j, _mm256_sub_pd(y2, r3));
        }
    }
}

/* The last three stages (t = 4, 2, 1) on blocks of eight, writing canonical uint64 residues. */
static void fwd_tail(double *a, const veil_ntt_tables *tab, modq mq)
{
    const size_t n = tab->n;
    const double *fw = tab->simd_fwd, *fwq = fw + n, *f2 = fw + 2 * n, *f2q = f2 + n / 2;
    const double *f3 = fw + n / 2, *f3q = fwq + n / 2;
    for (size_t k = 0; k < n / 8; k++) {
        double *p = a + 8 * k;
        /* t = 4: (a_i, b_i) with group k */
        __m256d A = reduce(ld(p), mq), B = ld(p + 4);
        __m256d v = mulmod(B, bc(fw + n / 8 + k), bc(fwq + n / 8 + k), mq);
        __m256d A1 = _mm256_add_pd(A, v), B1 = _mm256_sub_pd(A, v); /* |.| <= 1.5q */
        /* t = 2: U = (a0,a1,b0,b1), V = (a2,a3,b2,b3) */
        __m256d U = _mm256_permute2f128_pd(A1, B1, 0x20), V = _mm256_permute2f128_pd(A1, B1, 0x31);
        v = mulmod(V, ld(f2 + 4 * k), ld(f2q + 4 * k), mq);
        __m256d U2 = _mm256_add_pd(U, v), V2 = _mm256_sub_pd(U, v); /* |.| <= 2.5q */
        /* t = 1: X = (a0,a2,b0,b2), Y = (a1,a3,b1,b3); groups 4k..4k+3 in lane order */
        __m256d X = reduce(_mm256_unpacklo_pd(U2, V2), mq), Y = _mm256_unpackhi_pd(U2, V2);
        v = mulmod(Y, ld(f3 + 4 * k), ld(f3q + 4 * k), mq);
        __m256d X3 = canonical(_mm256_add_pd(X, v), mq), Y3 = canonical(_mm256_sub_pd(X, v), mq);
        /* back to natural order: (a0,a1,b0,b1), (a2,a3,b2,b3), then (a0..a3), (b0..b3) */
        __m256d lo = _mm256_unpacklo_pd(X3, Y3), hi = _mm256_unpackhi_pd(X3, Y3);
        store_u64((uint64_t *)(void *)p, _mm256_permute2f128_pd(lo, hi, 0x20));
        store_u64((uint64_t *)(void *)(p + 4), _mm256_permute2f128_pd(lo, hi, 0x31));
    }
}

void veil_ntt_forward_avx2(const veil_ntt_tables *tab, uint64_t *a)
{
    const size_t n = tab->n;
    const modq mq = {_mm256_set1_pd((double)tab->q), _mm256_set1_pd(1.0 / (double)tab->q)};
    const double *fw = tab->simd_fwd, *fwq = fw + n;
    double *d = (double *)(void *)a;
    to_double(a, n);
    size_t m = 1, t = n / 2;
    if ((tab->log_n - 3) % 2 == 1) { /* an odd number of stages before the tail: one radix-2 pass */
        fwd_radix2(d, fw, fwq, m, t, mq);
        m *= 2; t /= 2;
    }
    for (; t >= 8; m *= 4, t /= 4) fwd_radix4(d, fw, fwq, m, t, mq);
    fwd_tail(d, tab, mq);
}

/* ---- inverse ----------------------------------------------------------------------------------- */

/* The first three stages (t = 1, 2, 4) on blocks of eight, from uint64 residues. out: |x| <= q. */
static void inv_head(double *a, const veil_ntt_tables *tab, modq mq)
{
    const size_t n = tab->n;
    const double *iw = tab->simd_inv, *iwq = iw + n, *h1 = iw + 2 * n, *h1q = h1 + n / 2;
    const double *h2 = h1 + n, *h2q = h2 + n / 2;
    for (size_t k = 0; k < n / 8; k++) {
        double *p = a + 8 * k;
        __m256d A = load_u64((uint64_t *)(void *)p), B = load_u64((uint64_t *)(void *)(p + 4));
        /* t = 1: U = (a0,b0,a2,b2), V = (a1,b1,a3,b3) */
        __m256d U = _mm256_unpacklo_pd(A, B), V = _mm256_unpackhi_pd(A, B);
        __m256d S = _mm256_add_pd(U, V);                                          /* <= 2q */
        __m256d D = mulmod(_mm256_sub_pd(U, V), ld(h1 + 4 * k), ld(h1q + 4 * k), mq); /* <= q */
        /* t = 2: from S=(a0,b0,a2,b2), D=(a1,b1,a3,b3) to U=(a0,a1,b0,b1), V=(a2,a3,b2,b3) */
        __m256d lo = _mm256_unpacklo_pd(S, D), hi = _mm256_unpackhi_pd(S, D);
        U = _mm256_permute2f128_pd(lo, hi, 0x20);
        V = _mm256_permute2f128_pd(lo, hi, 0x31);
        S = reduce(_mm256_add_pd(U, V), mq);                                      /* <= q/2 */
        D = mulmod(_mm256_sub_pd(U, V), ld(h2 + 4 * k), ld(h2q + 4 * k), mq);     /* <= q */
        /* t = 4: A = (a0..a3), B = (b0..b3) */
        A = _mm256_permute2f128_pd(S, D, 0x20);
        B = _mm256_permute2f128_pd(S, D, 0x31);
        st(p, reduce(_mm256_add_pd(A, B), mq));
        st(p + 4, mulmod(_mm256_sub_pd(A, B), bc(iw + n / 8 + k), bc(iwq + n / 8 + k), mq));
    }
}

/* Gentleman-Sande stages (m groups of half-size t) and (m/2, 2t) fused. in: |x| <= q. out: |x| <= q. */
static void inv_radix4(double *a, const double *iw, const double *iwq, size_t m, size_t t, modq mq)
{
    for (size_t i = 0; i < m / 2; i++) {
        __m256d wa = bc(iw + m + 2 * i), waq = bc(iwq + m + 2 * i);
        __m256d wb = bc(iw + m + 2 * i + 1), wbq = bc(iwq + m + 2 * i + 1);
        __m256d wc = bc(iw + m / 2 + i), wcq = bc(iwq + m / 2 + i);
        double *p0 = a + 4 * i * t, *p1 = p0 + t, *p2 = p1 + t, *p3 = p2 + t;
        for (size_t j = 0; j < t; j += 4) {
            __m256d x0 = ld(p0 + j), x1 = ld(p1 + j), x2 = ld(p2 + j), x3 = ld(p3 + j);
            __m256d s0 = _mm256_add_pd(x0, x1), d0 = mulmod(_mm256_sub_pd(x0, x1), wa, waq, mq);
            __m256d s1 = _mm256_add_pd(x2, x3), d1 = mulmod(_mm256_sub_pd(x2, x3), wb, wbq, mq);
            st(p0 + j, reduce(_mm256_add_pd(s0, s1), mq));
            st(p2 + j, mulmod(_mm256_sub_pd(s0, s1), wc, wcq, mq));
            st(p1 + j, reduce(_mm256_add_pd(d0, d1), mq));
            st(p3 + j, mulmod(_mm256_sub_pd(d0, d1), wc, wcq, mq));
        }
    }
}

/* One Gentleman-Sande stage. in: |x| <= q. out: |x| <= q. */
static void inv_radix2(double *a, const double *iw, const double *iwq, size_t m, size_t t, modq mq)
{
    for (size_t i = 0; i < m; i++) {
        __m256d w = bc(iw + m + i), wq = bc(iwq + m + i);
        double *x = a + 2 * i * t, *y = x + t;
        for (size_t j = 0; j < t; j += 4) {
            __m256d u = ld(x + j), v = ld(y + j);
            st(x + j, reduce(_mm256_add_pd(u, v), mq));
            st(y + j, mulmod(_mm256_sub_pd(u, v), w, wq, mq));
        }
    }
}

void veil_ntt_inverse_avx2(const veil_ntt_tables *tab, uint64_t *a)
{
    const size_t n = tab->n;
    const modq mq = {_mm256_set1_pd((double)tab->q), _mm256_set1_pd(1.0 / (double)tab->q)};
    const double *iw = tab->simd_inv, *iwq = iw + n, *ninv = iw + 5 * n;
    double *d = (double *)(void *)a;
    inv_head(d, tab, mq);
    size_t m = n / 16, t = 8;
    for (; m >= 2; m /= 4, t *= 4) inv_radix4(d, iw, iwq, m, t, mq);
    if (m == 1) inv_radix2(d, iw, iwq, m, t, mq);
    const __m256d w = bc(ninv), wq = bc(ninv + 1);
    for (size_t j = 0; j < n; j += 4) store_u64(a + j, canonical(mulmod(ld(d + j), w, wq, mq), mq));
}

/* ---- pointwise product ------------------------------------------------------------------------- */

/*
 * x*y mod q with both factors variable, x, y in [0, q): the quotient estimated from fl(x*y) * (1/q)
 * (relative error about 2^-52 on a value below 2^50, so off by at most one), then the exact remainder as
 * in mulmod. out: |r| <= q.
 */
static inline __m256d mulmod_var(__m256d x, __m256d y, modq m)
{
    __m256d h = _mm256_mul_pd(x, y);
    __m256d l = _mm256_fmsub_pd(x, y, h);
    __m256d c = _mm256_round_pd(_mm256_mul_pd(h, m.qinv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    return _mm256_add_pd(_mm256_fnmadd_pd(c, m.q, h), l);
}

void veil_mul_avx2(uint64_t *out, const uint64_t *a, const uint64_t *b, size_t n, uint64_t q)
{
    const modq mq = {_mm256_set1_pd((double)q), _mm256_set1_pd(1.0 / (double)q)};
    size_t j = 0;
    for (; j + 4 <= n; j += 4) store_u64(out + j, canonical(mulmod_var(load_u64(a + j), load_u64(b + j), mq), mq));
    for (; j < n; j++) out[j] = veil_mod_mul(a[j], b[j], q);
}

void veil_mul_acc_avx2(uint64_t *out, const uint64_t *a, const uint64_t *b, size_t n, uint64_t q)
{
    const modq mq = {_mm256_set1_pd((double)q), _mm256_set1_pd(1.0 / (double)q)};
    size_t j = 0;
    for (; j + 4 <= n; j += 4) {
        __m256d r = _mm256_add_pd(mulmod_var(load_u64(a + j), load_u64(b + j), mq), load_u64(out + j)); /* |r| < 2q */
        store_u64(out + j, canonical(r, mq));
    }
    for (; j < n; j++) out[j] = veil_mod_add(veil_mod_mul(a[j], b[j], q), out[j], q);
}

/* ---- multiplication by a constant -------------------------------------------------------------- */

typedef struct {
    __m256d w, wq;
} constq;

static inline constq const_of(uint64_t w, uint64_t q)
{
    double wb = balanced(w, q);
    constq c = {_mm256_set1_pd(wb), _mm256_set1_pd(wb / (double)q)};
    return c;
}

void veil_mul_const_avx2(uint64_t *out, const uint64_t *a, size_t n, uint64_t q, uint64_t w)
{
    const modq mq = {_mm256_set1_pd((double)q), _mm256_set1_pd(1.0 / (double)q)};
    const constq c = const_of(w, q);
    size_t j = 0;
    for (; j + 4 <= n; j += 4) store_u64(out + j, canonical(mulmod(load_u64(a + j), c.w, c.wq, mq), mq));
    for (; j < n; j++) out[j] = veil_mod_mul(a[j], w, q);
}

void veil_sub_mul_const_avx2(uint64_t *out, const uint64_t *x, const uint64_t *d, size_t n, uint64_t q, uint64_t w)
{
    const modq mq = {_mm256_set1_pd((double)q), _mm256_set1_pd(1.0 / (double)q)};
    const constq c = const_of(w, q);
    size_t j = 0;
    for (; j + 4 <= n; j += 4) {
        __m256d t = _mm256_sub_pd(load_u64(x + j), load_u64(d + j)); /* |t| < q */
        store_u64(out + j, canonical(mulmod(t, c.w, c.wq, mq), mq));
    }
    for (; j < n; j++) out[j] = veil_mod_mul(veil_mod_sub(x[j], d[j], q), w, q);
}

void veil_center_reduce_avx2(uint64_t *out, const uint64_t *v, size_t n, uint64_t q_from, uint64_t q)
{
    const modq mq = {_mm256_set1_pd((double)q), _mm256_set1_pd(1.0 / (double)q)};
    const __m256d qf = _mm256_set1_pd((double)q_from), half = _mm256_set1_pd((double)(q_from / 2));
    size_t j = 0;
    for (; j + 4 <= n; j += 4) {
        __m256d x = load_u64(v + j);
        __m256d big = _mm256_cmp_pd(x, half, _CMP_GT_OQ);
        x = _mm256_sub_pd(x, _mm256_and_pd(big, qf)); /* centered: |x| <= q_from / 2 */
        store_u64(out + j, canonical(x, mq));
    }
    for (; j < n; j++) {
        uint64_t r = v[j] % q, sub = (q_from % q) & (0 - (uint64_t)(v[j] > q_from / 2));
        out[j] = veil_mod_sub(r, sub, q);
    }
}

void veil_dot_const_avx2(uint64_t *out, const uint64_t *y, size_t stride, size_t terms, const double *w,
                         const double *wq, size_t n, uint64_t q)
{
    const modq mq = {_mm256_set1_pd((double)q), _mm256_set1_pd(1.0 / (double)q)};
    size_t j = 0;
    for (; j + 4 <= n; j += 4) {
        __m256d acc = _mm256_setzero_pd();
        for (size_t i = 0; i < terms; i++) {
            /* each term |.| <= q (y < 2^50, |w| <= q/2: the quotient estimate is off by under one); reduce
             * every 8 terms so that |acc| <= 8q + q/2 + 1 < 2^53 */
            acc = _mm256_add_pd(acc, mulmod(load_u64(y + i * stride + j), bc(w + i), bc(wq + i), mq));
            if ((i & 7) == 7) acc = reduce(acc, mq);
        }
        store_u64(out + j, canonical(acc, mq));
    }
    for (; j < n; j++) {
        uint64_t acc = 0;
        for (size_t i = 0; i < terms; i++) {
            double wi = w[i];
            uint64_t wu = wi < 0 ? q - (uint64_t)(-wi) : (uint64_t)wi;
            acc = veil_mod_add(acc, veil_mod_mul(y[i * stride + j], wu, q), q);
        }
        out[j] = acc;
    }
}

/*
 * Blocked over the coefficients: the accumulators of a block of DOT_BLOCK coefficients stay in L1 while each
 * term streams through its own contiguous stretch (one stream at a time, not `terms` streams at once).
 */
#define DOT_BLOCK 512
void veil_dot_ptrs_avx2(uint64_t *out, const uint64_t *const *y, size_t terms, const double *w, const double *wq,
                        size_t n, uint64_t q)
{
    const modq mq = {_mm256_set1_pd((double)q), _mm256_set1_pd(1.0 / (double)q)};
    __m256d acc[DOT_BLOCK / 4];
    size_t j0 = 0;
    while (j0 + 4 <= n) {
        const size_t len = n - j0 >= DOT_BLOCK ? DOT_BLOCK : (n - j0) & ~(size_t)3, vecs = len / 4;
        for (size_t k = 0; k < vecs; k++) acc[k] = _mm256_setzero_pd();
        for (size_t i = 0; i < terms; i++) {
            /* as veil_dot_const_avx2: reduced every 8 terms, so that |acc| < 2^53 */
            const __m256d wi = bc(w + i), wqi = bc(wq + i);
            const uint64_t *yi = y[i] + j0;
            for (size_t k = 0; k < vecs; k++) acc[k] = _mm256_add_pd(acc[k], mulmod(load_u64(yi + 4 * k), wi, wqi, mq));
            if ((i & 7) == 7)
                for (size_t k = 0; k < vecs; k++) acc[k] = reduce(acc[k], mq);
        }
        for (size_t k = 0; k < vecs; k++) store_u64(out + j0 + 4 * k, canonical(acc[k], mq));
        j0 += len;
    }
    for (size_t j = j0; j < n; j++) {
        uint64_t sum = 0;
        for (size_t i = 0; i < terms; i++) {
            double wi = w[i];
            uint64_t wu = wi < 0 ? q - (uint64_t)(-wi) : (uint64_t)wi;
            sum = veil_mod_add(sum, veil_mod_mul(y[i][j], wu, q), q);
        }
        out[j] = sum;
    }
}

/*
 * One block of a sparse layer, input-major: each input's stretch is converted to doubles once and added,
 * times its weight, into the accumulators of every output that uses it; an accumulator is reduced after
 * every 8 terms (|acc| < 2^53) and stored canonically at the end. The accumulators (out_count x len
 * doubles) stay in cache while the inputs stream by, which is what makes a dense layer compute-bound.
 */
void veil_layer_block_avx2(double *acc, uint32_t *counts, uint64_t *const *out, const uint64_t *const *in,
                           size_t in_count, size_t out_count, const size_t *col_start, const size_t *col_row,
                           const double *w, const double *wq, size_t len, uint64_t q)
{
    const modq mq = {_mm256_set1_pd((double)q), _mm256_set1_pd(1.0 / (double)q)};
    const size_t vecs = len / 4;
    __m256d xb[64];
    memset(acc, 0, out_count * len * sizeof *acc);
    memset(counts, 0, out_count * sizeof *counts);
    for (size_t i = 0; i < in_count; i++) {
        if (col_start[i] == col_start[i + 1]) continue;
        for (size_t k = 0; k < vecs; k++) xb[k] = load_u64(in[i] + 4 * k);
        for (size_t e = col_start[i]; e < col_start[i + 1]; e++) {
            const size_t o = col_row[e];
            const __m256d we = bc(w + e), wqe = bc(wq + e);
            double *a = acc + o * len;
            for (size_t k = 0; k < vecs; k++)
                st(a + 4 * k, _mm256_add_pd(ld(a + 4 * k), mulmod(xb[k], we, wqe, mq)));
            if (++counts[o] == 8) {
                counts[o] = 0;
                for (size_t k = 0; k < vecs; k++) st(a + 4 * k, reduce(ld(a + 4 * k), mq));
            }
        }
    }
    for (size_t o = 0; o < out_count; o++)
        for (size_t k = 0; k < vecs; k++) store_u64(out[o] + 4 * k, canonical(ld(acc + o * len + 4 * k), mq));
}
