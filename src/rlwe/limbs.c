/* Limb-by-limb arithmetic on a context's polynomials, and fresh small polynomials (shared by the schemes). */
#include <string.h>
#include "rlwe/rlwe_internal.h"

/* out[0..level] = a (op) b limb by limb; a and b may be at higher levels (their extra limbs are ignored). */
void veil_limbwise(const veil_context *ctx, veil_poly *out, const veil_poly *a, const veil_poly *b, size_t level,
                   veil_limb_op op)
{
    const veil_ring *r = ctx->ring;
    const size_t n = r->n;
#pragma omp parallel for num_threads(r->threads) schedule(static)
    for (size_t l = 0; l <= level; l++) {
        const uint64_t q = r->primes[l];
        const uint64_t *x = veil_poly_limb_const(a, l), *y = b ? veil_poly_limb_const(b, l) : NULL;
        uint64_t *o = veil_poly_limb(out, l);
        switch (op) {
        case VEIL_LIMB_ADD: for (size_t j = 0; j < n; j++) o[j] = veil_addmod(x[j], y[j], q); break;
        case VEIL_LIMB_SUB: for (size_t j = 0; j < n; j++) o[j] = veil_submod(x[j], y[j], q); break;
        case VEIL_LIMB_NEG: for (size_t j = 0; j < n; j++) o[j] = veil_submod(0, x[j], q); break;
        case VEIL_LIMB_COPY: memcpy(o, x, n * sizeof *o); break;
        }
    }
}

/* out[0..level] = a * b (or += when accumulate), limb by limb. */
void veil_limb_products(const veil_context *ctx, veil_poly *out, const veil_poly *a, const veil_poly *b, size_t level,
                        bool accumulate)
{
    const veil_ring *r = ctx->ring;
#pragma omp parallel for num_threads(r->threads) schedule(static)
    for (size_t l = 0; l <= level; l++)
        veil_limb_mul(r, l, veil_poly_limb(out, l), veil_poly_limb_const(a, l), veil_poly_limb_const(b, l), accumulate);
}

veil_status veil_small_poly(veil_poly **out, const veil_context *ctx, size_t level, bool ternary, veil_prng *prng,
                              veil_error *err)
{
    VEIL_TRY(veil_context_poly_new(out, ctx, level, VEIL_FORM_COEFF, err));
    veil_status st = ternary ? veil_sample_ternary_poly(*out, prng, err) : veil_sample_error_poly(*out, prng, err);
    if (st == VEIL_OK) st = veil_poly_to_eval(*out, err);
    return st;
}

/* A fresh small polynomial (error or ternary) over the given base, in evaluation form. */
veil_status veil_small_poly_over(veil_poly **out, const veil_context *ctx, const size_t *base, size_t count,
                                   bool ternary, veil_prng *prng, veil_error *err)
{
    VEIL_TRY(veil_poly_new(out, ctx->ring, base, count, VEIL_FORM_COEFF, err));
    veil_status st = ternary ? veil_sample_ternary_poly(*out, prng, err) : veil_sample_error_poly(*out, prng, err);
    if (st == VEIL_OK) st = veil_poly_to_eval(*out, err);
    return st;
}
