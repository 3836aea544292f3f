/* Galois automorphisms X -> X^k of Z_q[X]/(X^n + 1), in coefficient and evaluation form. */
#include "ring/ring_internal.h"

/* Coefficient form: x^i -> x^(i*k mod 2n), with a sign flip when i*k mod 2n >= n (X^n = -1). */
static void automorph_coeff(uint64_t *out, const uint64_t *in, size_t n, uint64_t k, uint64_t q)
{
    const uint64_t mask = 2 * (uint64_t)n - 1;
    for (size_t i = 0; i < n; i++) {
        uint64_t e = ((uint64_t)i * k) & mask;
        uint64_t v = in[i];
        if (e < n) out[e] = v;
        else out[e - n] = v ? q - v : 0;
    }
}

/*
 * Evaluation form: slot j holds a(psi^(2*brv(j)+1)); sigma_k(a) evaluated there is
 * a(psi^((2*brv(j)+1)*k)), which is slot brv(i') with i' = (brv(j)*k + (k-1)/2) mod n. A pure permutation, the
 * same for every limb: computed once per call.
 * For j = 8a + b, brv(j) = brv(8a) + brv3(b) * n/8, so i' = B + (brv3(b)*k mod 8) * n/8 mod n with
 * B = (brv(8a)*k + (k-1)/2) mod n: only the top three bits of i' depend on b, i.e. only the low three bits of
 * brv(i'). Each block of eight output slots therefore reads one aligned block of eight input slots, permuted
 * by one of eight lane patterns (chosen by the top three bits t of B): perm[8a + b] = (brv(B) & ~7) | lane[t][b].
 * veil_permute_slots relies on this block structure (n >= 2^10, so n is a multiple of 8).
 */
void veil_automorphism_permutation(uint32_t *perm, const veil_ring *r, uint64_t k)
{
    const size_t n = r->n;
    static const uint32_t brv3[8] = {0, 4, 2, 6, 1, 5, 3, 7};
    uint32_t lane[8][8];
    for (size_t t = 0; t < 8; t++)
        for (size_t b = 0; b < 8; b++) lane[t][b] = brv3[(t + brv3[b] * k) & 7];
    const uint64_t c = (k - 1) / 2, low = (uint64_t)n - 1;
    const unsigned shift = r->log_n - 3;
    for (size_t a = 0; a < n / 8; a++) {
        const uint64_t B = ((uint64_t)r->bitrev[8 * a] * k + c) & low;
        const uint32_t base = r->bitrev[B] & ~(uint32_t)7;
        const uint32_t *pattern = lane[B >> shift];
        for (size_t b = 0; b < 8; b++) perm[8 * a + b] = base | pattern[b];
    }
}

void veil_permute_slots(const veil_ring *r, uint64_t *out, const uint64_t *in, const uint32_t *perm)
{
    const size_t n = r->n;
    if (r->ifma && n % 8 == 0) {
        veil_permute_blocks_avx512(out, in, perm, n);
        return;
    }
    for (size_t j = 0; j < n; j++) out[j] = in[perm[j]];
}

veil_status veil_poly_automorphism(veil_poly *out, const veil_poly *in, uint64_t k, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(in, err);
    veil_status st = VEIL_OK;
    uint32_t *perm = NULL;
    VEIL_CHECK(veil_poly_check_base(out, in, "veil_poly_automorphism", err));
    const veil_ring *r = in->ring;
    const size_t n = r->n;
    if ((k & 1) == 0 || k >= 2 * (uint64_t)n)
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "automorphism exponent %llu is not odd and below 2n = %zu",
                  (unsigned long long)k, 2 * n);
    if (out == in) VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "veil_poly_automorphism: out must not alias in");
    out->form = in->form;
    if (in->form == VEIL_FORM_EVAL) {
        perm = veil_alloc_scratch(n, sizeof *perm);
        if (!perm) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "veil_poly_automorphism: out of memory");
        veil_automorphism_permutation(perm, r, k);
    }
    const int threads = in->count > 1 ? r->threads : 1;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (size_t l = 0; l < in->count; l++) {
        const uint64_t *x = veil_poly_limb_ptr(in, l);
        uint64_t *y = veil_poly_limb_ptr(out, l);
        if (perm)
            veil_permute_slots(r, y, x, perm);
        else
            automorph_coeff(y, x, n, k, r->primes[in->base[l]]);
    }
done:
    veil_free(perm);
    return st;
}
