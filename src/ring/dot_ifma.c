/*
 * AVX-512 IFMA kernels (compiled with -mavx512f -mavx512ifma; only called when veil_cpu_has_ifma()).
 * vpmadd52luq / vpmadd52huq add the low and the high 52 bits of a 52 x 52-bit product to 64-bit lanes, eight at
 * a time (Boemer et al., "Intel HEXL: Accelerating Homomorphic Encryption with Intel AVX512-IFMA52", WAHC 2021).
 * For residues below 2^50, a sum of products then needs no reduction until the end: each term adds less than
 * 2^52 to the low accumulator and less than 2^48 to the high one, so 4096 terms fit 64 bits.
 */
#include <immintrin.h>
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
