/* The ring context: degree, primes, and every precomputation of the NTT. */
#include <stdlib.h>
#include <string.h>
#include "ring/ring_internal.h"

veil_status veil_ntt_tables_init(veil_ntt_tables *t, size_t n, uint64_t q, bool want_simd, bool want_ifma,
                                  veil_error *err);
void veil_ntt_tables_free(veil_ntt_tables *t);

static bool avx2_disabled_by_env(void)
{
    const char *v = getenv("VEIL_NO_AVX2");
    return v != NULL && strcmp(v, "1") == 0;
}

static bool avx512_disabled_by_env(void)
{
    const char *v = getenv("VEIL_NO_AVX512");
    return v != NULL && strcmp(v, "1") == 0;
}

static veil_status check_degree(size_t n, veil_error *err)
{
    if (n < ((size_t)1 << VEIL_RING_MIN_LOG_N) || n > ((size_t)1 << VEIL_RING_MAX_LOG_N) || (n & (n - 1)) != 0)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "ring degree %zu is not a power of two in [2^%d, 2^%d]", n,
                         VEIL_RING_MIN_LOG_N, VEIL_RING_MAX_LOG_N);
    return VEIL_OK;
}

static veil_status check_primes(size_t n, const uint64_t *primes, size_t count, veil_error *err)
{
    if (count == 0 || count > VEIL_RING_MAX_PRIMES)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "a ring needs 1 to %d primes, not %zu", VEIL_RING_MAX_PRIMES, count);
    for (size_t i = 0; i < count; i++) {
        uint64_t q = primes[i];
        if (q >= ((uint64_t)1 << VEIL_PRIME_MAX_BITS) || !veil_is_prime(q))
            return veil_fail(err, VEIL_ERR_ARGUMENT, "modulus %zu (%llu) is not a prime below 2^%d", i,
                             (unsigned long long)q, VEIL_PRIME_MAX_BITS);
        if (q % (2 * (uint64_t)n) != 1)
            return veil_fail(err, VEIL_ERR_ARGUMENT, "prime %llu is not NTT-friendly: it must be 1 mod 2n = %llu",
                             (unsigned long long)q, (unsigned long long)(2 * n));
        for (size_t j = 0; j < i; j++)
            if (primes[j] == q)
                return veil_fail(err, VEIL_ERR_ARGUMENT, "prime %llu appears twice", (unsigned long long)q);
    }
    return VEIL_OK;
}

static veil_status choose_kernel(veil_kernel *out, veil_kernel requested, veil_error *err)
{
    switch (requested) {
    case VEIL_KERNEL_AUTO:
        *out = (veil_cpu_has_avx2() && !avx2_disabled_by_env()) ? VEIL_KERNEL_AVX2 : VEIL_KERNEL_SCALAR;
        return VEIL_OK;
    case VEIL_KERNEL_SCALAR:
        *out = VEIL_KERNEL_SCALAR;
        return VEIL_OK;
    case VEIL_KERNEL_AVX2:
        if (!veil_cpu_has_avx2())
            return veil_fail(err, VEIL_ERR_UNSUPPORTED, "the AVX2 kernel was requested but this CPU lacks AVX2/FMA");
        *out = VEIL_KERNEL_AVX2;
        return VEIL_OK;
    }
    return veil_fail(err, VEIL_ERR_ARGUMENT, "unknown kernel %d", (int)requested);
}

veil_status veil_ring_new(veil_ring **out, size_t n, const uint64_t *primes, size_t count,
                          const veil_ring_options *opts, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(primes, err);
    veil_status st = VEIL_OK;
    veil_ring *r = NULL;
    VEIL_CHECK(check_degree(n, err));
    VEIL_CHECK(check_primes(n, primes, count, err));
    veil_ring_options o = {VEIL_KERNEL_AUTO, 0};
    if (opts) o = *opts;
    if (o.threads < 0) VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "thread count %d is negative", o.threads);
    veil_kernel kernel = VEIL_KERNEL_SCALAR;
    VEIL_CHECK(choose_kernel(&kernel, o.kernel, err));

    r = veil_alloc(1, sizeof *r);
    if (!r) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "out of memory for the ring");
    r->n = n;
    while (((size_t)1 << r->log_n) < n) r->log_n++;
    r->count = count;
    r->threads = o.threads > 0 ? o.threads : veil_threads_default();
    r->kernel = VEIL_KERNEL_SCALAR;
    r->bitrev = veil_alloc(n, sizeof *r->bitrev);
    r->pool = veil_pool_new();
    if (!r->bitrev || !r->pool) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "out of memory for the ring");
    for (size_t j = 0; j < n; j++) r->bitrev[j] = (uint32_t)veil_bitrev(j, r->log_n);
    /* the IFMA level: the AVX2 one where the CPU also has AVX-512 IFMA, unless VEIL_NO_AVX512=1 */
    const bool ifma = kernel == VEIL_KERNEL_AVX2 && veil_cpu_has_ifma() && !avx512_disabled_by_env();
    for (size_t i = 0; i < count; i++) {
        r->primes[i] = primes[i];
        veil_modulus_init(&r->mod[i], primes[i]);
        VEIL_CHECK(veil_ntt_tables_init(&r->ntt[i], n, primes[i], kernel == VEIL_KERNEL_AVX2, ifma, err));
        if (r->ntt[i].use_simd) r->kernel = VEIL_KERNEL_AVX2;
    }
    r->ifma = r->kernel == VEIL_KERNEL_AVX2 && ifma;
    *out = r;
    r = NULL;
done:
    veil_ring_free(r);
    return st;
}

void veil_ring_free(veil_ring *ring)
{
    if (!ring) return;
    for (size_t i = 0; i < ring->count; i++) veil_ntt_tables_free(&ring->ntt[i]);
    veil_free(ring->bitrev);
    veil_pool_free(ring->pool);
    veil_free(ring);
}

size_t veil_ring_degree(const veil_ring *ring) { return ring ? ring->n : 0; }
size_t veil_ring_prime_count(const veil_ring *ring) { return ring ? ring->count : 0; }
veil_kernel veil_ring_kernel(const veil_ring *ring) { return ring ? ring->kernel : VEIL_KERNEL_SCALAR; }
int veil_ring_threads(const veil_ring *ring) { return ring ? ring->threads : 0; }

uint64_t veil_ring_prime(const veil_ring *ring, size_t index)
{
    return (ring && index < ring->count) ? ring->primes[index] : 0;
}

veil_status veil_ring_set_threads(veil_ring *ring, int threads, veil_error *err)
{
    VEIL_REQUIRE(ring, err);
    if (threads < 1) return veil_fail(err, VEIL_ERR_ARGUMENT, "thread count %d must be at least 1", threads);
    ring->threads = threads;
    return VEIL_OK;
}

static veil_status check_limb_args(const veil_ring *ring, size_t index, const uint64_t *coeffs, const char *fn,
                                   veil_error *err)
{
    if (!ring || !coeffs) return veil_fail(err, VEIL_ERR_NULL, "%s: ring or coefficients are NULL", fn);
    if (index >= ring->count)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "%s: prime index %zu out of range (ring has %zu primes)", fn,
                         index, ring->count);
    const uint64_t q = ring->primes[index];
    for (size_t j = 0; j < ring->n; j++)
        if (coeffs[j] >= q)
            return veil_fail(err, VEIL_ERR_ARGUMENT, "%s: coefficient %zu is not below the prime %llu", fn, j,
                             (unsigned long long)q);
    return VEIL_OK;
}

veil_status veil_ntt_forward(const veil_ring *ring, size_t prime_index, uint64_t *coeffs, veil_error *err)
{
    veil_status st = VEIL_OK;
    VEIL_CHECK(check_limb_args(ring, prime_index, coeffs, __func__, err));
    veil_ntt_forward_limb(&ring->ntt[prime_index], coeffs);
done:
    return st;
}

veil_status veil_ntt_inverse(const veil_ring *ring, size_t prime_index, uint64_t *coeffs, veil_error *err)
{
    veil_status st = VEIL_OK;
    VEIL_CHECK(check_limb_args(ring, prime_index, coeffs, __func__, err));
    veil_ntt_inverse_limb(&ring->ntt[prime_index], coeffs);
done:
    return st;
}
