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
        if (r->ifma && op != VEIL_LIMB_COPY) { /* AVX-512: eight lanes */
            veil_add_sub_avx512(o, x, op == VEIL_LIMB_NEG ? NULL : y, n, q, op == VEIL_LIMB_ADD ? 1 : 0);
            continue;
        }
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

/*
 * out[k] = sum_i (a_i x b_i)[k], k = 0, 1, 2, for elements of size 2 (the tensor product: a0 b0, a0 b1 + a1 b0,
 * a1 b1), limb by limb. The products are summed in 128 bits and reduced once every `fold` terms (a term adds at
 * most 2 q^2 < 2^(2 bits + 1) to an accumulator): 4 multiplications and no reduction per term and coefficient.
 */
#define TENSOR_BLOCK 256
void veil_limb_tensor_sum(const veil_context *ctx, veil_poly *const out[3], const veil_rlwe_element *const *a,
                          const veil_rlwe_element *const *b, size_t count, size_t level)
{
    const veil_ring *r = ctx->ring;
    const size_t n = r->n;
#pragma omp parallel for num_threads(r->threads) schedule(static)
    for (size_t l = 0; l <= level; l++) {
        const veil_modulus *m = &r->mod[l];
        const unsigned bits = m->bits;
        const size_t fold = bits >= 63 ? 1 : 2 * bits + 1 >= 127 ? 1 : (size_t)1 << (127 - 2 * bits - 1 < 30 ? 127 - 2 * bits - 1 : 30);
        veil_u128 acc[3][TENSOR_BLOCK];
        for (size_t j0 = 0; j0 < n; j0 += TENSOR_BLOCK) {
            const size_t len = n - j0 < TENSOR_BLOCK ? n - j0 : TENSOR_BLOCK;
            memset(acc, 0, sizeof acc);
            for (size_t i = 0; i < count; i++) {
                const uint64_t *a0 = veil_poly_limb_const(a[i]->c[0], l) + j0, *a1 = veil_poly_limb_const(a[i]->c[1], l) + j0;
                const uint64_t *b0 = veil_poly_limb_const(b[i]->c[0], l) + j0, *b1 = veil_poly_limb_const(b[i]->c[1], l) + j0;
                for (size_t j = 0; j < len; j++) {
                    acc[0][j] += (veil_u128)a0[j] * b0[j];
                    acc[1][j] += (veil_u128)a0[j] * b1[j] + (veil_u128)a1[j] * b0[j];
                    acc[2][j] += (veil_u128)a1[j] * b1[j];
                }
                if ((i + 1) % fold == 0)
                    for (size_t k = 0; k < 3; k++)
                        for (size_t j = 0; j < len; j++) acc[k][j] = veil_reduce128(m, acc[k][j]);
            }
            for (size_t k = 0; k < 3; k++) {
                uint64_t *o = veil_poly_limb(out[k], l) + j0;
                for (size_t j = 0; j < len; j++) o[j] = veil_reduce128(m, acc[k][j]);
            }
        }
    }
}

veil_status veil_small_poly(veil_poly **out, const veil_context *ctx, size_t level, bool ternary, veil_prng *prng,
                              veil_error *err)
{
    veil_status st = VEIL_OK;
    VEIL_CHECK(veil_context_poly_new(out, ctx, level, VEIL_FORM_COEFF, err));
    VEIL_CHECK(ternary ? veil_sample_ternary_poly(*out, prng, err) : veil_sample_error_poly(*out, prng, err));
    VEIL_CHECK(veil_poly_to_eval(*out, err));
done:
    return st;
}

/* A fresh small polynomial (error or ternary) over the given base, in evaluation form. */
veil_status veil_small_poly_over(veil_poly **out, const veil_context *ctx, const size_t *base, size_t count,
                                   bool ternary, veil_prng *prng, veil_error *err)
{
    veil_status st = VEIL_OK;
    VEIL_CHECK(veil_poly_new(out, ctx->ring, base, count, VEIL_FORM_COEFF, err));
    VEIL_CHECK(ternary ? veil_sample_ternary_poly(*out, prng, err) : veil_sample_error_poly(*out, prng, err));
    VEIL_CHECK(veil_poly_to_eval(*out, err));
done:
    return st;
}

veil_status veil_poly_centered_doubles(double *out, const veil_poly *p, veil_error *err)
{
    const size_t n = veil_ring_degree(veil_poly_ring(p)), k = veil_poly_limb_count(p), words = k + 1;
    if (k == 1) {
        const uint64_t q = veil_ring_prime(veil_poly_ring(p), veil_poly_prime_index(p, 0));
        const uint64_t *x = veil_poly_limb_const(p, 0);
        for (size_t j = 0; j < n; j++) out[j] = x[j] > q / 2 ? -(double)(q - x[j]) : (double)x[j];
        return VEIL_OK;
    }
    veil_status st = VEIL_OK;
    uint64_t *w = veil_alloc(n * words, sizeof *w), qw[VEIL_RING_MAX_PRIMES + 1] = {1};
    if (!w) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "centered coefficients: out of memory");
    VEIL_CHECK(veil_poly_crt_compose(w, words, p, err));
    /* Q as a multiword integer */
    for (size_t i = 0; i < k; i++) {
        uint64_t prime = veil_ring_prime(veil_poly_ring(p), veil_poly_prime_index(p, i)), carry = 0;
        for (size_t t = 0; t < words; t++) {
            veil_u128 v = (veil_u128)qw[t] * prime + carry;
            qw[t] = (uint64_t)v;
            carry = (uint64_t)(v >> 64);
        }
    }
    for (size_t j = 0; j < n; j++) {
        uint64_t *x = w + j * words;
        /* x > Q/2  <=>  2x > Q: then the value is x - Q < 0 */
        int negative = 0;
        for (size_t t = words; t-- > 0;) {
            uint64_t two_x = (x[t] << 1) | (t ? x[t - 1] >> 63 : 0);
            if (two_x != qw[t]) {
                negative = two_x > qw[t];
                break;
            }
        }
        double v = 0;
        if (negative) { /* |value| = Q - x */
            uint64_t borrow = 0;
            for (size_t t = 0; t < words; t++) {
                uint64_t d = qw[t] - x[t] - borrow;
                borrow = (qw[t] < x[t]) || (qw[t] - x[t] < borrow);
                x[t] = d;
            }
        }
        for (size_t t = words; t-- > 0;) v = v * 18446744073709551616.0 + (double)x[t];
        out[j] = negative ? -v : v;
    }
done:
    veil_free_secret(w, n * words * sizeof *w);
    return st;
}
