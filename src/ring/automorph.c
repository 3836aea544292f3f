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
 * a(psi^((2*brv(j)+1)*k)), which is slot brv(((2*brv(j)+1)*k mod 2n - 1) / 2). A pure permutation, the
 * same for every limb: computed once per call.
 */
void veil_automorphism_permutation(uint32_t *perm, const veil_ring *r, uint64_t k)
{
    const size_t n = r->n;
    const uint64_t mask = 2 * (uint64_t)n - 1;
    for (size_t j = 0; j < n; j++) {
        uint64_t e = ((2 * (uint64_t)r->bitrev[j] + 1) * k) & mask;
        perm[j] = r->bitrev[(e - 1) >> 1];
    }
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
            for (size_t j = 0; j < n; j++) y[j] = x[perm[j]];
        else
            automorph_coeff(y, x, n, k, r->primes[in->base[l]]);
    }
done:
    veil_free(perm);
    return st;
}
