/*
 * AVX-512 IFMA kernels (compiled with -mavx512f -mavx512ifma; only called when veil_cpu_has_ifma()).
 * vpmadd52luq / vpmadd52huq add the low and the high 52 bits of a 52 x 52-bit product to 64-bit lanes, eight at
 * a time (Boemer et al., "Intel HEXL: Accelerating Homomorphic Encryption with Intel AVX512-IFMA52", WAHC 2021).
 * For residues below 2^50, a sum of products then needs no reduction until the end: each term adds less than
 * 2^52 to the low accumulator and less than 2^48 to the high one, so 4096 terms fit 64 bits.
 */
#include <immintrin.h>
#include <string.h>
#include "ring/ring_internal.h"

bool veil_cpu_has_ifma(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512ifma");
}

#define IFMA_BLOCK 256 /* coefficients whose accumulators (2 x 256 x 8 bytes) stay in L1 while the terms stream */

void veil_dot_ptrs_ifma(uint64_t *lo_out, uint64_t *hi_out, const uint64_t *const *y, size_t terms,
                        const uint64_t *w, size_t n)
{
    __m512i lo[IFMA_BLOCK / 8], hi[IFMA_BLOCK / 8];
    for (size_t j0 = 0; j0 < n; j0 += IFMA_BLOCK) {
        const size_t len = n - j0 < IFMA_BLOCK ? n - j0 : IFMA_BLOCK, vecs = len / 8;
        for (size_t k = 0; k < vecs; k++) lo[k] = hi[k] = _mm512_setzero_si512();
        for (size_t i = 0; i < terms; i++) {
            const __m512i wi = _mm512_set1_epi64((long long)w[i]);
            const uint64_t *yi = y[i] + j0;
            for (size_t k = 0; k < vecs; k++) {
                const __m512i x = _mm512_loadu_si512((const void *)(yi + 8 * k));
                lo[k] = _mm512_madd52lo_epu64(lo[k], x, wi);
                hi[k] = _mm512_madd52hi_epu64(hi[k], x, wi);
            }
        }
        for (size_t k = 0; k < vecs; k++) {
            _mm512_storeu_si512((void *)(lo_out + j0 + 8 * k), lo[k]);
            _mm512_storeu_si512((void *)(hi_out + j0 + 8 * k), hi[k]);
        }
        for (size_t t = vecs * 8; t < len; t++) { /* n is a power of two >= 1024: never, but exact all the same */
            veil_u128 s = 0;
            for (size_t i = 0; i < terms; i++) s += (veil_u128)w[i] * y[i][j0 + t];
            lo_out[j0 + t] = (uint64_t)s & (((uint64_t)1 << 52) - 1);
            hi_out[j0 + t] = (uint64_t)(s >> 52);
        }
    }
}

/* ---- a layer's outputs that share their inputs, register-blocked ---------------------------------------- */

#define MASK52 ((((uint64_t)1) << 52) - 1)

typedef struct {
    __m512i q, two_q, four_q, neg_q, mask, c52, c52s, c104, c104s, one, one_s;
} layer_mod;

/* floor(w 2^52 / q): the 52-bit Shoup quotient of a constant w < q. */
static uint64_t quot52(uint64_t w, uint64_t q)
{
    return (uint64_t)(((veil_u128)w << 52) / q);
}

static layer_mod layer_mod_of(uint64_t q)
{
    const uint64_t c52 = (uint64_t)(((veil_u128)1 << 52) % q);
    const uint64_t c104 = (uint64_t)(((veil_u128)c52 * c52) % q);
    layer_mod m;
    m.q = _mm512_set1_epi64((long long)q);
    m.two_q = _mm512_set1_epi64((long long)(2 * q));
    m.four_q = _mm512_set1_epi64((long long)(4 * q));
    m.neg_q = _mm512_set1_epi64((long long)(0 - q));
    m.mask = _mm512_set1_epi64((long long)MASK52);
    m.c52 = _mm512_set1_epi64((long long)c52);
    m.c52s = _mm512_set1_epi64((long long)quot52(c52, q));
    m.c104 = _mm512_set1_epi64((long long)c104);
    m.c104s = _mm512_set1_epi64((long long)quot52(c104, q));
    m.one = _mm512_set1_epi64(1);
    m.one_s = _mm512_set1_epi64((long long)quot52(1, q));
    return m;
}

/* x w mod q lazily (Shoup with a 52-bit quotient, as ntt_ifma.c). in: x < 2^52, w < q, ws = quot52(w). out: [0, 2q). */
static inline __m512i lazy_mulmod(__m512i x, __m512i w, __m512i ws, const layer_mod *m)
{
    const __m512i zero = _mm512_setzero_si512();
    const __m512i c = _mm512_madd52hi_epu64(zero, x, ws);
    __m512i r = _mm512_madd52lo_epu64(zero, x, w);
    r = _mm512_madd52lo_epu64(r, c, m->neg_q);
    return _mm512_and_si512(r, m->mask);
}

static inline __m512i sub_if_ge(__m512i x, __m512i k)
{
    return _mm512_min_epu64(x, _mm512_sub_epi64(x, k));
}

/*
 * hi 2^52 + lo mod q, for lo < 2^62 and hi < 2^58 (at most 1024 terms of residues below 2^50): the low sum's carries
 * moved up, the high sum split at bit 52, so that hi 2^52 + lo = h1 2^104 + h0 2^52 + l0 with every part below
 * 2^52, each part times its power of two mod q by a Shoup multiplication ([0, 2q) each), the sum brought to [0, q).
 */
static inline __m512i reduce_sum(__m512i lo, __m512i hi, const layer_mod *m)
{
    hi = _mm512_add_epi64(hi, _mm512_srli_epi64(lo, 52));
    const __m512i l0 = _mm512_and_si512(lo, m->mask), h0 = _mm512_and_si512(hi, m->mask);
    const __m512i h1 = _mm512_srli_epi64(hi, 52);
    __m512i r = _mm512_add_epi64(lazy_mulmod(l0, m->one, m->one_s, m), lazy_mulmod(h0, m->c52, m->c52s, m));
    r = _mm512_add_epi64(r, lazy_mulmod(h1, m->c104, m->c104s, m)); /* [0, 6q) */
    return sub_if_ge(sub_if_ge(sub_if_ge(r, m->four_q), m->two_q), m->q);
}

/* out[t] (+)= the sums of T outputs over V vectors of eight coefficients at offset j: accumulators in registers. */
static inline __attribute__((always_inline)) void layer_tile(uint64_t *const *out, const uint64_t *const *in,
                                                            size_t terms, const uint64_t *w, size_t stride, size_t j,
                                                            const int T, const int V, bool add, const layer_mod *m)
{
    __m512i lo[4][2], hi[4][2];
    for (int t = 0; t < T; t++)
        for (int v = 0; v < V; v++) lo[t][v] = hi[t][v] = _mm512_setzero_si512();
    for (size_t k = 0; k < terms; k++) {
        __m512i x[2];
        for (int v = 0; v < V; v++) x[v] = _mm512_loadu_si512((const void *)(in[k] + j + 8 * v));
        for (int t = 0; t < T; t++) {
            const __m512i wt = _mm512_set1_epi64((long long)w[k * stride + (size_t)t]);
            for (int v = 0; v < V; v++) {
                lo[t][v] = _mm512_madd52lo_epu64(lo[t][v], x[v], wt);
                hi[t][v] = _mm512_madd52hi_epu64(hi[t][v], x[v], wt);
            }
        }
    }
    for (int t = 0; t < T; t++)
        for (int v = 0; v < V; v++) {
            __m512i r = reduce_sum(lo[t][v], hi[t][v], m);
            uint64_t *d = out[t] + j + 8 * v;
            if (add) {
                r = _mm512_add_epi64(r, _mm512_loadu_si512((const void *)d));
                r = sub_if_ge(r, m->q);
            }
            _mm512_storeu_si512((void *)d, r);
        }
}

static void layer_tiles(uint64_t *const *out, const uint64_t *const *in, size_t terms, const uint64_t *w,
                        size_t stride, size_t len, const int T, bool add, const layer_mod *m)
{
    size_t j = 0;
    switch (T) { /* constant T and V: the accumulators stay in registers */
    case 1:
        for (; j + 16 <= len; j += 16) layer_tile(out, in, terms, w, stride, j, 1, 2, add, m);
        break;
    case 2:
        for (; j + 16 <= len; j += 16) layer_tile(out, in, terms, w, stride, j, 2, 2, add, m);
        break;
    case 3:
        for (; j + 16 <= len; j += 16) layer_tile(out, in, terms, w, stride, j, 3, 2, add, m);
        break;
    default:
        for (; j + 16 <= len; j += 16) layer_tile(out, in, terms, w, stride, j, 4, 2, add, m);
        break;
    }
    for (; j + 8 <= len; j += 8) {
        if (T == 1) layer_tile(out, in, terms, w, stride, j, 1, 1, add, m);
        else if (T == 2) layer_tile(out, in, terms, w, stride, j, 2, 1, add, m);
        else if (T == 3) layer_tile(out, in, terms, w, stride, j, 3, 1, add, m);
        else layer_tile(out, in, terms, w, stride, j, 4, 1, add, m);
    }
}

void veil_layer_group_ifma(uint64_t *const *out, size_t members, const uint64_t *const *in, size_t terms,
                           const uint64_t *w, size_t len, uint64_t q)
{
    const layer_mod m = layer_mod_of(q);
    for (size_t t0 = 0; t0 < members; t0 += 4) {
        const int T = members - t0 >= 4 ? 4 : (int)(members - t0);
        if (terms == 0) {
            for (int t = 0; t < T; t++) memset(out[t0 + (size_t)t], 0, len * sizeof(uint64_t));
            continue;
        }
        for (size_t k0 = 0; k0 < terms; k0 += VEIL_LAYER_GROUP_MAX_TERMS) {
            const size_t k1 = terms - k0 > VEIL_LAYER_GROUP_MAX_TERMS ? k0 + VEIL_LAYER_GROUP_MAX_TERMS : terms;
            layer_tiles(out + t0, in + k0, k1 - k0, w + k0 * members + t0, members, len, T, k0 > 0, &m);
        }
    }
}
