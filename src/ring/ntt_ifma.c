/*
 * AVX-512 IFMA kernels for primes q < 2^50: the negacyclic NTT and pointwise products, eight 64-bit lanes.
 * Compiled with -mavx512f -mavx512ifma; only called when veil_cpu_has_ifma() (the ring decides, ring.c).
 *
 * vpmadd52luq / vpmadd52huq give the low and the high 52 bits of a product of two 52-bit integers
 * (Boemer et al., "Intel HEXL: Accelerating Homomorphic Encryption with Intel AVX512-IFMA52", WAHC 2021, Sec. 3).
 * The NTT is Harvey's lazy butterfly (Harvey 2014, Alg. 4) with Shoup quotients taken to 2^52 instead of 2^64:
 * for w < q and ws = floor(w * 2^52 / q), and any x < 2^52,
 *     c = floor(x * ws / 2^52)  satisfies  x*w/q - 2 < c <= x*w/q,  so  r = x*w - c*q  lies in [0, 2q),
 * and r is computed modulo 2^52 (the low halves of x*w and of c*(2^52 - q) added, then masked), which is exact
 * because 2q < 2^52. Values stay in [0, 4q) in the forward transform and [0, 2q) in the inverse, both below 2^52
 * since q < 2^50. The transforms read and write residues in [0, q): the output equals the scalar kernel's bit for
 * bit (both compute the same residues exactly; only the lazy intermediate representatives differ).
 * Two stages are fused per pass over memory; the last three forward stages (first three inverse ones) run in
 * registers on blocks of sixteen values, the lanes rearranged between stages by 128-bit lane shuffles and unpacks,
 * eight blocks interleaved.
 */
#include <immintrin.h>
#include "ring/ring_internal.h"

#define MASK52 ((((uint64_t)1) << 52) - 1)

/* ---- tables ------------------------------------------------------------------------------------ */

static uint64_t shoup52(uint64_t w, uint64_t q)
{
    return (uint64_t)(((veil_u128)w << 52) / q);
}

/*
 * Forward and inverse: [w (n/8) | ws (n/8) | stage t=4 lanes (n/2) | ws (n/2) | stage t=2 lanes | ws | stage t=1
 * lanes | ws], the inverse then [1/n, its ws, w_1/n, its ws]: the passes over memory read the powers below n/8 (in
 * bit-reversed order, with their 52-bit Shoup quotients ws), the stages in registers their own copies of the
 * others. Lane l of block b (sixteen values) in the stage of half-size t uses group (16b + pos)/(2t), pos the
 * block position its lane holds (see fwd_tail and inv_head): the group offsets below.
 */
static const unsigned lanes_t4_fwd[8] = {0, 0, 0, 0, 1, 1, 1, 1}, lanes_t4_inv[8] = {0, 0, 1, 1, 0, 0, 1, 1};
static const unsigned lanes_t2[8] = {0, 0, 2, 2, 1, 1, 3, 3}, lanes_t1[8] = {0, 1, 4, 5, 2, 3, 6, 7};

/* Where table k (0: stage t=4, 1: its ws, 2: t=2, 3: ws, 4: t=1, 5: ws) of the stages in registers starts. */
static inline size_t lane_table(size_t n, int k)
{
    return n / 4 + (size_t)k * (n / 2);
}

#define IFMA_TABLE_WORDS(n) ((n) / 4 + 3 * (n))

veil_status veil_ntt_ifma_tables_init(veil_ntt_tables *t)
{
    const size_t n = t->n;
    const uint64_t q = t->q;
    t->ifma_fwd = veil_alloc(IFMA_TABLE_WORDS(n), sizeof(uint64_t));
    t->ifma_inv = veil_alloc(IFMA_TABLE_WORDS(n) + 8, sizeof(uint64_t));
    if (!t->ifma_fwd || !t->ifma_inv) {
        veil_ntt_ifma_tables_free(t);
        return VEIL_ERR_NO_MEMORY;
    }
    uint64_t *tabs[2] = {t->ifma_fwd, t->ifma_inv};
    const uint64_t *pows[2] = {t->fwd, t->inv};
    const unsigned *t4[2] = {lanes_t4_fwd, lanes_t4_inv};
    for (int k = 0; k < 2; k++) {
        const uint64_t *pw = pows[k];
        uint64_t *w = tabs[k], *ws = w + n / 8;
        for (size_t i = 0; i < n / 8; i++) {
            w[i] = pw[i];
            ws[i] = shoup52(pw[i], q);
        }
        uint64_t *w4 = w + lane_table(n, 0), *w4s = w + lane_table(n, 1), *w2 = w + lane_table(n, 2);
        uint64_t *w2s = w + lane_table(n, 3), *w1 = w + lane_table(n, 4), *w1s = w + lane_table(n, 5);
        for (size_t b = 0; b < n / 16; b++)
            for (size_t l = 0; l < 8; l++) {
                const size_t g4 = n / 8 + 2 * b + t4[k][l], g2 = n / 4 + 4 * b + lanes_t2[l];
                const size_t g1 = n / 2 + 8 * b + lanes_t1[l];
                w4[8 * b + l] = pw[g4];
                w4s[8 * b + l] = shoup52(pw[g4], q);
                w2[8 * b + l] = pw[g2];
                w2s[8 * b + l] = shoup52(pw[g2], q);
                w1[8 * b + l] = pw[g1];
                w1s[8 * b + l] = shoup52(pw[g1], q);
            }
    }
    uint64_t *tail = t->ifma_inv + IFMA_TABLE_WORDS(n);
    tail[0] = t->n_inv;
    tail[1] = shoup52(t->n_inv, q);
    tail[2] = veil_mulmod_shoup(t->inv[1], t->n_inv, t->n_inv_shoup, q);
    tail[3] = shoup52(tail[2], q);
    return VEIL_OK;
}

void veil_ntt_ifma_tables_free(veil_ntt_tables *t)
{
    veil_free(t->ifma_fwd);
    veil_free(t->ifma_inv);
    t->ifma_fwd = t->ifma_inv = NULL;
}

/* ---- vector helpers ---------------------------------------------------------------------------- */

typedef struct {
    __m512i q, two_q, neg_q, mask;
} modq;

static inline modq modq_of(uint64_t q)
{
    modq m = {_mm512_set1_epi64((long long)q), _mm512_set1_epi64((long long)(2 * q)),
              _mm512_set1_epi64((long long)(0 - q)), _mm512_set1_epi64((long long)MASK52)};
    return m;
}

static inline __m512i ld(const uint64_t *p) { return _mm512_loadu_si512((const void *)p); }
static inline void st(uint64_t *p, __m512i x) { _mm512_storeu_si512((void *)p, x); }
static inline __m512i bc(const uint64_t *p) { return _mm512_set1_epi64((long long)*p); }

/* x*w mod q, lazily. in: x < 2^52, w < q, ws = shoup52(w). out: [0, 2q). */
static inline __m512i mulmod_lazy(__m512i x, __m512i w, __m512i ws, modq m)
{
    const __m512i zero = _mm512_setzero_si512();
    __m512i c = _mm512_madd52hi_epu64(zero, x, ws);
    __m512i r = _mm512_madd52lo_epu64(zero, x, w);
    r = _mm512_madd52lo_epu64(r, c, m.neg_q); /* + (-c*q mod 2^52), below 2^53 */
    return _mm512_and_si512(r, m.mask);
}

/* x - k if x >= k, for x < k + 2^63: the unsigned minimum of x and the wrapped difference. */
static inline __m512i sub_if_ge(__m512i x, __m512i k)
{
    return _mm512_min_epu64(x, _mm512_sub_epi64(x, k));
}

/* Forward (Cooley-Tukey) butterfly. in: x, y in [0, 4q). out: x + wy, x - wy in [0, 4q). */
static inline void ct(__m512i *x, __m512i *y, __m512i w, __m512i ws, modq m)
{
    __m512i u = sub_if_ge(*x, m.two_q);
    __m512i v = mulmod_lazy(*y, w, ws, m);
    *x = _mm512_add_epi64(u, v);
    *y = _mm512_add_epi64(_mm512_sub_epi64(u, v), m.two_q);
}

/* Inverse (Gentleman-Sande) butterfly. in: x, y in [0, 2q). out: x + y, (x - y) w in [0, 2q). */
static inline void gs(__m512i *x, __m512i *y, __m512i w, __m512i ws, modq m)
{
    __m512i u = *x, v = *y;
    *x = sub_if_ge(_mm512_add_epi64(u, v), m.two_q);
    *y = mulmod_lazy(_mm512_add_epi64(_mm512_sub_epi64(u, v), m.two_q), w, ws, m);
}

/* Lane selections of _mm512_permutex2var_epi64 (indices 8..15 name the second source). */
#define SEL(a, b, c, d, e, f, g, h) _mm512_set_epi64(h, g, f, e, d, c, b, a)

/* ---- forward ----------------------------------------------------------------------------------- */

/* Values per cache block (16 KiB, half of L1): the stages whose groups fit one are run block after block. */
#define NTT_BLOCK 2048

/* Blocks of sixteen the stages in registers interleave. */
#define TAIL_WAYS 8
_Static_assert((NTT_BLOCK / 16) % TAIL_WAYS == 0 && (((size_t)1 << VEIL_RING_MIN_LOG_N) / 16) % TAIL_WAYS == 0,
               "the stages in registers run whole groups of TAIL_WAYS blocks");

static void fwd_radix2(uint64_t *a, const uint64_t *w, const uint64_t *ws, size_t m, size_t t, modq mq)
{
    for (size_t i = 0; i < m; i++) {
        const __m512i wi = bc(w + m + i), wsi = bc(ws + m + i);
        uint64_t *x = a + 2 * i * t, *y = x + t;
        for (size_t j = 0; j < t; j += 8) {
            __m512i u = ld(x + j), v = ld(y + j);
            ct(&u, &v, wi, wsi, mq);
            st(x + j, u);
            st(y + j, v);
        }
    }
}

/* Stages (m, t) and (2m, t/2) fused, t >= 16, on the groups i0..i1-1 of stage m (2t values each). */
static void fwd_radix4(uint64_t *a, const uint64_t *w, const uint64_t *ws, size_t m, size_t t, size_t i0, size_t i1,
                       modq mq)
{
    const size_t h = t / 2;
    for (size_t i = i0; i < i1; i++) {
        const __m512i w1 = bc(w + m + i), w1s = bc(ws + m + i);
        const __m512i w2 = bc(w + 2 * m + 2 * i), w2s = bc(ws + 2 * m + 2 * i);
        const __m512i w3 = bc(w + 2 * m + 2 * i + 1), w3s = bc(ws + 2 * m + 2 * i + 1);
        uint64_t *p0 = a + 2 * i * t, *p1 = p0 + h, *p2 = p0 + t, *p3 = p2 + h;
        for (size_t j = 0; j < h; j += 8) {
            __m512i x0 = ld(p0 + j), x1 = ld(p1 + j), x2 = ld(p2 + j), x3 = ld(p3 + j);
            ct(&x0, &x2, w1, w1s, mq);
            ct(&x1, &x3, w1, w1s, mq);
            ct(&x0, &x1, w2, w2s, mq);
            ct(&x2, &x3, w3, w3s, mq);
            st(p0 + j, x0);
            st(p1 + j, x1);
            st(p2 + j, x2);
            st(p3 + j, x3);
        }
    }
}

/*
 * The stages t = 4, 2, 1 on the blocks of sixteen b0..b1-1, then the reduction to [0, q). The pairs of each stage
 * are gathered by 128-bit lane shuffles and in-lane unpacks (cheaper than two-source permutes); one pair of
 * permutes restores the natural order at the end. Positions held by X / Y, stage by stage:
 *   t = 4: 0-3 8-11 / 4-7 12-15;  t = 2: 0 1 8 9 4 5 12 13 / 2 3 10 11 6 7 14 15;
 *   t = 1: 0 2 8 10 4 6 12 14 / 1 3 9 11 5 7 13 15.
 */
static void fwd_tail(uint64_t *a, const uint64_t *w, size_t n, size_t b0, size_t b1, modq mq)
{
    const uint64_t *w4 = w + lane_table(n, 0), *w4s = w + lane_table(n, 1), *w2 = w + lane_table(n, 2);
    const uint64_t *w2s = w + lane_table(n, 3), *w1 = w + lane_table(n, 4), *w1s = w + lane_table(n, 5);
    const __m512i lo = SEL(0, 8, 1, 9, 4, 12, 5, 13), hi = SEL(2, 10, 3, 11, 6, 14, 7, 15);
    /* TAIL_WAYS blocks per iteration, step by step, so that their dependency chains overlap (b1 - b0, a cache
     * block of at least 1024 values over sixteen, is a multiple of it) */
    for (size_t b = b0; b < b1; b += TAIL_WAYS) {
        __m512i X[TAIL_WAYS], Y[TAIL_WAYS], X2[TAIL_WAYS], Y2[TAIL_WAYS];
        for (int u = 0; u < TAIL_WAYS; u++) {
            const __m512i A = ld(a + 16 * (b + u)), B = ld(a + 16 * (b + u) + 8);
            X[u] = _mm512_shuffle_i64x2(A, B, 0x44);
            Y[u] = _mm512_shuffle_i64x2(A, B, 0xEE);
        }
        for (int u = 0; u < TAIL_WAYS; u++) ct(&X[u], &Y[u], ld(w4 + 8 * (b + u)), ld(w4s + 8 * (b + u)), mq);
        for (int u = 0; u < TAIL_WAYS; u++) {
            X2[u] = _mm512_shuffle_i64x2(X[u], Y[u], 0x88);
            Y2[u] = _mm512_shuffle_i64x2(X[u], Y[u], 0xDD);
        }
        for (int u = 0; u < TAIL_WAYS; u++) ct(&X2[u], &Y2[u], ld(w2 + 8 * (b + u)), ld(w2s + 8 * (b + u)), mq);
        for (int u = 0; u < TAIL_WAYS; u++) {
            X[u] = _mm512_unpacklo_epi64(X2[u], Y2[u]);
            Y[u] = _mm512_unpackhi_epi64(X2[u], Y2[u]);
        }
        for (int u = 0; u < TAIL_WAYS; u++) ct(&X[u], &Y[u], ld(w1 + 8 * (b + u)), ld(w1s + 8 * (b + u)), mq);
        for (int u = 0; u < TAIL_WAYS; u++) {
            X[u] = sub_if_ge(sub_if_ge(X[u], mq.two_q), mq.q);
            Y[u] = sub_if_ge(sub_if_ge(Y[u], mq.two_q), mq.q);
            st(a + 16 * (b + u), _mm512_permutex2var_epi64(X[u], lo, Y[u]));
            st(a + 16 * (b + u) + 8, _mm512_permutex2var_epi64(X[u], hi, Y[u]));
        }
    }
}

void veil_ntt_forward_ifma(const veil_ntt_tables *tab, uint64_t *a)
{
    const size_t n = tab->n;
    const modq mq = modq_of(tab->q);
    const uint64_t *w = tab->ifma_fwd, *ws = w + n / 8;
    size_t m = 1, t = n / 2;
    if ((tab->log_n - 3) % 2 == 1) { /* an odd number of stages before the tail: one radix-2 pass */
        fwd_radix2(a, w, ws, m, t, mq);
        m *= 2;
        t /= 2;
    }
    /* whole passes while a group spans more than a cache block, then each block to the end in turn */
    for (; t >= 16 && 2 * t > NTT_BLOCK; m *= 4, t /= 4) fwd_radix4(a, w, ws, m, t, 0, m, mq);
    const size_t block = n < NTT_BLOCK ? n : NTT_BLOCK;
    for (size_t s0 = 0; s0 < n; s0 += block) {
        size_t mb = m, tb = t;
        for (; tb >= 16; mb *= 4, tb /= 4) fwd_radix4(a, w, ws, mb, tb, s0 / (2 * tb), (s0 + block) / (2 * tb), mq);
        fwd_tail(a, w, n, s0 / 16, (s0 + block) / 16, mq);
    }
}

/* ---- inverse ----------------------------------------------------------------------------------- */

/*
 * The stages t = 1, 2, 4 on the blocks of sixteen b0..b1-1, the mirror of fwd_tail: one pair of permutes, then
 * unpacks and 128-bit lane shuffles. At t = 4, X / Y hold positions 0 1 8 9 2 3 10 11 / 4 5 12 13 6 7 14 15.
 * in: [0, q). out: [0, 2q).
 */
static void inv_head(uint64_t *a, const uint64_t *w, size_t n, size_t b0, size_t b1, modq mq)
{
    const uint64_t *w4 = w + lane_table(n, 0), *w4s = w + lane_table(n, 1), *w2 = w + lane_table(n, 2);
    const uint64_t *w2s = w + lane_table(n, 3), *w1 = w + lane_table(n, 4), *w1s = w + lane_table(n, 5);
    const __m512i x1 = SEL(0, 2, 8, 10, 4, 6, 12, 14), y1 = SEL(1, 3, 9, 11, 5, 7, 13, 15);
    for (size_t b = b0; b < b1; b += TAIL_WAYS) { /* interleaved as in fwd_tail */
        __m512i X[TAIL_WAYS], Y[TAIL_WAYS], X2[TAIL_WAYS], Y2[TAIL_WAYS];
        for (int u = 0; u < TAIL_WAYS; u++) {
            const __m512i A = ld(a + 16 * (b + u)), B = ld(a + 16 * (b + u) + 8);
            X[u] = _mm512_permutex2var_epi64(A, x1, B);
            Y[u] = _mm512_permutex2var_epi64(A, y1, B);
        }
        for (int u = 0; u < TAIL_WAYS; u++) gs(&X[u], &Y[u], ld(w1 + 8 * (b + u)), ld(w1s + 8 * (b + u)), mq);
        for (int u = 0; u < TAIL_WAYS; u++) {
            X2[u] = _mm512_unpacklo_epi64(X[u], Y[u]);
            Y2[u] = _mm512_unpackhi_epi64(X[u], Y[u]);
        }
        for (int u = 0; u < TAIL_WAYS; u++) gs(&X2[u], &Y2[u], ld(w2 + 8 * (b + u)), ld(w2s + 8 * (b + u)), mq);
        for (int u = 0; u < TAIL_WAYS; u++) {
            X[u] = _mm512_shuffle_i64x2(X2[u], Y2[u], 0x44);
            Y[u] = _mm512_shuffle_i64x2(X2[u], Y2[u], 0xEE);
        }
        for (int u = 0; u < TAIL_WAYS; u++) gs(&X[u], &Y[u], ld(w4 + 8 * (b + u)), ld(w4s + 8 * (b + u)), mq);
        for (int u = 0; u < TAIL_WAYS; u++) {
            st(a + 16 * (b + u), _mm512_shuffle_i64x2(X[u], Y[u], 0x88));
            st(a + 16 * (b + u) + 8, _mm512_shuffle_i64x2(X[u], Y[u], 0xDD));
        }
    }
}

/* One stage on the groups i0..i1-1 (2t values each). */
static void inv_radix2(uint64_t *a, const uint64_t *w, const uint64_t *ws, size_t m, size_t t, size_t i0, size_t i1,
                       modq mq)
{
    for (size_t i = i0; i < i1; i++) {
        const __m512i wi = bc(w + m + i), wsi = bc(ws + m + i);
        uint64_t *x = a + 2 * i * t, *y = x + t;
        for (size_t j = 0; j < t; j += 8) {
            __m512i u = ld(x + j), v = ld(y + j);
            gs(&u, &v, wi, wsi, mq);
            st(x + j, u);
            st(y + j, v);
        }
    }
}

/* Stages (m, t) and (m/2, 2t) fused, m >= 4, on the groups i0..i1-1 of stage m/2 (4t values each). */
static void inv_radix4(uint64_t *a, const uint64_t *w, const uint64_t *ws, size_t m, size_t t, size_t i0, size_t i1,
                       modq mq)
{
    for (size_t i = i0; i < i1; i++) {
        const __m512i wa = bc(w + m + 2 * i), was = bc(ws + m + 2 * i);
        const __m512i wb = bc(w + m + 2 * i + 1), wbs = bc(ws + m + 2 * i + 1);
        const __m512i wc = bc(w + m / 2 + i), wcs = bc(ws + m / 2 + i);
        uint64_t *p0 = a + 4 * i * t, *p1 = p0 + t, *p2 = p1 + t, *p3 = p2 + t;
        for (size_t j = 0; j < t; j += 8) {
            __m512i x0 = ld(p0 + j), x1 = ld(p1 + j), x2 = ld(p2 + j), x3 = ld(p3 + j);
            gs(&x0, &x1, wa, was, mq);
            gs(&x2, &x3, wb, wbs, mq);
            gs(&x0, &x2, wc, wcs, mq);
            gs(&x1, &x3, wc, wcs, mq);
            st(p0 + j, x0);
            st(p1 + j, x1);
            st(p2 + j, x2);
            st(p3 + j, x3);
        }
    }
}

/* The stages m = 2 and m = 1 with the factor 1/n folded into the last: x' = (u+v)/n, y' = (u-v) w_1/n. out: [0, q). */
static void inv_last(uint64_t *a, const uint64_t *w, const uint64_t *ws, const uint64_t *tail, size_t n, modq mq)
{
    const size_t t = n / 4;
    const __m512i wa = bc(w + 2), was = bc(ws + 2), wb = bc(w + 3), wbs = bc(ws + 3);
    const __m512i ni = bc(tail), nis = bc(tail + 1), wn = bc(tail + 2), wns = bc(tail + 3);
    uint64_t *p0 = a, *p1 = p0 + t, *p2 = p1 + t, *p3 = p2 + t;
    for (size_t j = 0; j < t; j += 8) {
        __m512i x0 = ld(p0 + j), x1 = ld(p1 + j), x2 = ld(p2 + j), x3 = ld(p3 + j);
        gs(&x0, &x1, wa, was, mq);
        gs(&x2, &x3, wb, wbs, mq);
        /* u + v and u - v + 2q lie below 4q < 2^52 */
        __m512i s0 = _mm512_add_epi64(x0, x2), d0 = _mm512_add_epi64(_mm512_sub_epi64(x0, x2), mq.two_q);
        __m512i s1 = _mm512_add_epi64(x1, x3), d1 = _mm512_add_epi64(_mm512_sub_epi64(x1, x3), mq.two_q);
        st(p0 + j, sub_if_ge(mulmod_lazy(s0, ni, nis, mq), mq.q));
        st(p2 + j, sub_if_ge(mulmod_lazy(d0, wn, wns, mq), mq.q));
        st(p1 + j, sub_if_ge(mulmod_lazy(s1, ni, nis, mq), mq.q));
        st(p3 + j, sub_if_ge(mulmod_lazy(d1, wn, wns, mq), mq.q));
    }
}

void veil_ntt_inverse_ifma(const veil_ntt_tables *tab, uint64_t *a)
{
    const size_t n = tab->n;
    const modq mq = modq_of(tab->q);
    const uint64_t *w = tab->ifma_inv, *ws = w + n / 8;
    /* the stages m = n/16 .. 1 (t = 8 .. n/2): an odd count starts with one radix-2 pass; the stages whose
     * groups fit a cache block run block after block, the others in whole passes */
    const size_t block = n < NTT_BLOCK ? n : NTT_BLOCK;
    const bool odd = (tab->log_n - 3) % 2 == 1;
    size_t m = 0, t = 0;
    for (size_t s0 = 0; s0 < n; s0 += block) {
        inv_head(a, w, n, s0 / 16, (s0 + block) / 16, mq);
        m = n / 16;
        t = 8;
        if (odd) {
            inv_radix2(a, w, ws, m, t, s0 / (2 * t), (s0 + block) / (2 * t), mq);
            m /= 2;
            t *= 2;
        }
        for (; m >= 4 && 4 * t <= block; m /= 4, t *= 4) inv_radix4(a, w, ws, m, t, s0 / (4 * t), (s0 + block) / (4 * t), mq);
    }
    for (; m >= 4; m /= 4, t *= 4) inv_radix4(a, w, ws, m, t, 0, m / 2, mq);
    inv_last(a, w, ws, w + IFMA_TABLE_WORDS(n), n, mq);
}

/* ---- pointwise products ------------------------------------------------------------------------ */

/*
 * Barrett reduction of x = a*b (+ c) for q < 2^50 of bit length L (Barrett 1986, with 52-bit words as in HEXL's
 * multiplication): c1 = floor(x / 2^(L-1)) < 2^51 and mu = floor(2^(51+L) / q) < 2^52 give the quotient estimate
 * floor(c1 * mu / 2^52), at most 2 below floor(x / q) for x < 2^(2L); the remainder, below 3q < 2^52, is computed
 * modulo 2^52 and brought to [0, q) by two conditional subtractions.
 */
typedef struct {
    modq m;
    __m512i mu, shift_lo, shift_hi;
} barrett52;

static barrett52 barrett_of(uint64_t q)
{
    unsigned bits = 0;
    while (bits < 64 && (q >> bits) != 0) bits++;
    barrett52 b;
    b.m = modq_of(q);
    b.mu = _mm512_set1_epi64((long long)(uint64_t)(((veil_u128)1 << (51 + bits)) / q));
    b.shift_lo = _mm512_set1_epi64((long long)(bits - 1));
    b.shift_hi = _mm512_set1_epi64((long long)(53 - bits));
    return b;
}

/* in: a, b in [0, q), acc in [0, q) (zero for a plain product). out: a*b + acc mod q, in [0, q). */
static inline __m512i mul_add_mod(__m512i a, __m512i b, __m512i acc, const barrett52 *br)
{
    const __m512i zero = _mm512_setzero_si512();
    __m512i lo = _mm512_madd52lo_epu64(acc, a, b); /* acc + low 52 bits: below 2^53 */
    __m512i hi = _mm512_madd52hi_epu64(zero, a, b);
    __m512i c1 = _mm512_add_epi64(_mm512_sllv_epi64(hi, br->shift_hi), _mm512_srlv_epi64(lo, br->shift_lo));
    __m512i c3 = _mm512_madd52hi_epu64(zero, c1, br->mu);
    __m512i r = _mm512_and_si512(_mm512_madd52lo_epu64(lo, c3, br->m.neg_q), br->m.mask); /* [0, 3q) */
    return sub_if_ge(sub_if_ge(r, br->m.two_q), br->m.q);
}

void veil_mul_ifma(uint64_t *out, const uint64_t *a, const uint64_t *b, size_t n, uint64_t q)
{
    const barrett52 br = barrett_of(q);
    const __m512i zero = _mm512_setzero_si512();
    size_t j = 0;
    for (; j + 8 <= n; j += 8) st(out + j, mul_add_mod(ld(a + j), ld(b + j), zero, &br));
    for (; j < n; j++) out[j] = veil_mod_mul(a[j], b[j], q);
}

void veil_mul_acc_ifma(uint64_t *out, const uint64_t *a, const uint64_t *b, size_t n, uint64_t q)
{
    const barrett52 br = barrett_of(q);
    size_t j = 0;
    for (; j + 8 <= n; j += 8) st(out + j, mul_add_mod(ld(a + j), ld(b + j), ld(out + j), &br));
    for (; j < n; j++) out[j] = veil_mod_add(veil_mod_mul(a[j], b[j], q), out[j], q);
}

/* ---- multiplication by a constant, and the centered reduction of rescale and ModDown ----------- */

/* x*w mod q for a constant w < q (Shoup, 52-bit quotient). in: x < 2^52. out: [0, q). */
static inline __m512i mulmod_const(__m512i x, __m512i w, __m512i ws, modq m)
{
    return sub_if_ge(mulmod_lazy(x, w, ws, m), m.q);
}

void veil_mul_const_ifma(uint64_t *out, const uint64_t *a, size_t n, uint64_t q, uint64_t w)
{
    const modq mq = modq_of(q);
    const __m512i wv = _mm512_set1_epi64((long long)w), ws = _mm512_set1_epi64((long long)shoup52(w, q));
    size_t j = 0;
    for (; j + 8 <= n; j += 8) st(out + j, mulmod_const(ld(a + j), wv, ws, mq));
    for (; j < n; j++) out[j] = veil_mod_mul(a[j], w, q);
}

void veil_sub_mul_const_ifma(uint64_t *out, const uint64_t *x, const uint64_t *d, size_t n, uint64_t q, uint64_t w)
{
    const modq mq = modq_of(q);
    const __m512i wv = _mm512_set1_epi64((long long)w), ws = _mm512_set1_epi64((long long)shoup52(w, q));
    size_t j = 0;
    for (; j + 8 <= n; j += 8) {
        const __m512i t = _mm512_sub_epi64(_mm512_add_epi64(ld(x + j), mq.q), ld(d + j)); /* (0, 2q) */
        st(out + j, mulmod_const(t, wv, ws, mq));
    }
    for (; j < n; j++) out[j] = veil_mod_mul(veil_mod_sub(x[j], d[j], q), w, q);
}

void veil_center_reduce_ifma(uint64_t *out, const uint64_t *v, size_t n, uint64_t q_from, uint64_t q)
{
    const modq mq = modq_of(q);
    const __m512i one = _mm512_set1_epi64(1), one_s = _mm512_set1_epi64((long long)shoup52(1, q));
    const __m512i half = _mm512_set1_epi64((long long)(q_from / 2));
    const __m512i qf_mod = _mm512_set1_epi64((long long)(q_from % q));
    size_t j = 0;
    for (; j + 8 <= n; j += 8) {
        const __m512i x = ld(v + j);
        const __m512i r = mulmod_const(x, one, one_s, mq); /* x mod q */
        /* the centered representative x - q_from when x > q_from / 2: subtract q_from mod q */
        const __mmask8 big = _mm512_cmpgt_epu64_mask(x, half);
        const __m512i s = _mm512_maskz_mov_epi64(big, qf_mod);
        const __m512i d = _mm512_sub_epi64(r, s);
        st(out + j, _mm512_min_epu64(d, _mm512_add_epi64(d, mq.q))); /* d + q when d wrapped below zero */
    }
    for (; j < n; j++) {
        uint64_t r = v[j] % q, sub = (q_from % q) & (0 - (uint64_t)(v[j] > q_from / 2));
        out[j] = veil_mod_sub(r, sub, q);
    }
}

/* ---- sums and differences (AVX-512F; run at the IFMA level) ------------------------------------ */

/* out = a + b, a - b or -a (b NULL, negate) mod q, for a, b in [0, q): the wrapped and the corrected value's
 * unsigned minimum. */
void veil_add_sub_avx512(uint64_t *out, const uint64_t *a, const uint64_t *b, size_t n, uint64_t q, int op)
{
    const __m512i qv = _mm512_set1_epi64((long long)q), zero = _mm512_setzero_si512();
    size_t j = 0;
    if (op > 0) {
        for (; j + 8 <= n; j += 8) {
            const __m512i s = _mm512_add_epi64(ld(a + j), ld(b + j));
            st(out + j, _mm512_min_epu64(s, _mm512_sub_epi64(s, qv)));
        }
        for (; j < n; j++) out[j] = veil_addmod(a[j], b[j], q);
    } else {
        for (; j + 8 <= n; j += 8) {
            const __m512i d = _mm512_sub_epi64(b ? ld(a + j) : zero, b ? ld(b + j) : ld(a + j));
            st(out + j, _mm512_min_epu64(d, _mm512_add_epi64(d, qv)));
        }
        for (; j < n; j++) out[j] = b ? veil_submod(a[j], b[j], q) : veil_submod(0, a[j], q);
    }
}

/* ---- the dot product of base conversion ---------------------------------------------------------- */

/*
 * out[t] = sum_i y[i*stride + t] * w[i] mod q for t < n: the products' low and high 52 bits summed exactly (as in
 * dot_ifma.c), the low sum's carries moved to the high one, then hi * (2^52 mod q) + lo reduced by two Shoup
 * multiplications. y and w below 2^50, at most 16 terms (so that hi < 16 * 2^48 + 16 < 2^52).
 */
void veil_dot_const_ifma(uint64_t *out, const uint64_t *y, size_t stride, size_t terms, const uint64_t *w, size_t n,
                         uint64_t q)
{
    const modq mq = modq_of(q);
    const uint64_t c52 = (uint64_t)(((veil_u128)1 << 52) % q);
    const __m512i c52v = _mm512_set1_epi64((long long)c52), c52s = _mm512_set1_epi64((long long)shoup52(c52, q));
    const __m512i one = _mm512_set1_epi64(1), one_s = _mm512_set1_epi64((long long)shoup52(1, q));
    const __m512i zero = _mm512_setzero_si512();
    size_t j = 0;
    for (; j + 8 <= n; j += 8) {
        __m512i lo = zero, hi = zero;
        for (size_t i = 0; i < terms; i++) {
            const __m512i x = ld(y + i * stride + j), wi = _mm512_set1_epi64((long long)w[i]);
            lo = _mm512_madd52lo_epu64(lo, x, wi);
            hi = _mm512_madd52hi_epu64(hi, x, wi);
        }
        hi = _mm512_add_epi64(hi, _mm512_srli_epi64(lo, 52));
        lo = _mm512_and_si512(lo, mq.mask);
        const __m512i r = _mm512_add_epi64(mulmod_lazy(hi, c52v, c52s, mq), mulmod_lazy(lo, one, one_s, mq));
        st(out + j, sub_if_ge(sub_if_ge(r, mq.two_q), mq.q)); /* [0, 4q) -> [0, q) */
    }
    for (; j < n; j++) {
        veil_u128 acc = 0;
        for (size_t i = 0; i < terms; i++) acc += (veil_u128)y[i * stride + j] * w[i];
        out[j] = (uint64_t)(acc % q);
    }
}

/* ---- the automorphism's slot permutation (AVX-512F; run at the IFMA level) ---------------------------- */

/* out[j] = in[perm[j]]: block j/8 of out is block perm[j]/8 of in with its lanes permuted by perm[j..j+7] mod 8
 * (the block structure of veil_automorphism_permutation, automorph.c). */
void veil_permute_blocks_avx512(uint64_t *out, const uint64_t *in, const uint32_t *perm, size_t n)
{
    for (size_t j = 0; j < n; j += 8) {
        const __m512i idx = _mm512_cvtepu32_epi64(_mm256_loadu_si256((const __m256i *)(const void *)(perm + j)));
        st(out + j, _mm512_permutexvar_epi64(idx, ld(in + (perm[j] & ~(uint32_t)7))));
    }
}
