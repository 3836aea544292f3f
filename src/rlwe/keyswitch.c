/*
 * Hybrid key switching (Han, Ki, "Better bootstrapping for approximate homomorphic encryption", CT-RSA
 * 2020, section 3; the RNS form of Bajard et al.): decompose x over Q_l into digits, raise each digit to
 * Q_l*P by fast base conversion (ModUp), take the inner product with the key's digits over Q_l*P, and
 * divide by P (ModDown).
 */
#include <string.h>
#include "rlwe/rlwe_internal.h"

veil_status veil_keyswitch(const veil_context *ctx, veil_poly *out0, veil_poly *out1, const veil_poly *x,
                           const veil_switch_key *key, veil_error *err)
{
    const veil_ring *r = ctx->ring;
    const size_t n = r->n, level = x->count - 1;
    size_t qp[2 * VEIL_PARAMS_MAX_PRIMES];
    const size_t qp_count = veil_context_qp_base(ctx, level, qp);
    veil_poly *xc = NULL, *digit = NULL, *raised = NULL, *acc0 = NULL, *acc1 = NULL;
    veil_status st = veil_poly_new_range(&xc, r, 0, level + 1, VEIL_FORM_EVAL, err);
    if (st == VEIL_OK) st = veil_poly_new(&acc0, r, qp, qp_count, VEIL_FORM_EVAL, err);
    if (st == VEIL_OK) st = veil_poly_new(&acc1, r, qp, qp_count, VEIL_FORM_EVAL, err);
    if (st == VEIL_OK) st = veil_poly_copy(xc, x, err);
    if (st == VEIL_OK) st = veil_poly_to_coeff(xc, err);
    const size_t digits = level / ctx->alpha + 1;
    for (size_t j = 0; st == VEIL_OK && j < digits; j++) {
        const veil_base_conv *conv = ctx->modup[level * ctx->dnum + j];
        const size_t start = j * ctx->alpha, end = start + ctx->alpha - 1 < level ? start + ctx->alpha - 1 : level;
        const size_t len = end - start + 1;
        size_t from[VEIL_PARAMS_MAX_PRIMES], to[2 * VEIL_PARAMS_MAX_PRIMES], nt = 0;
        for (size_t i = 0; i < len; i++) from[i] = start + i;
        for (size_t i = 0; i < qp_count; i++)
            if (qp[i] < start || qp[i] > end) to[nt++] = qp[i];
        /* ModUp: the digit's residues (coefficient form) converted to every other prime, then NTT */
        st = veil_poly_new(&digit, r, from, len, VEIL_FORM_COEFF, err);
        if (st == VEIL_OK) st = veil_poly_new(&raised, r, to, nt, VEIL_FORM_COEFF, err);
        if (st != VEIL_OK) break;
        memcpy(veil_poly_limb(digit, 0), veil_poly_limb_const(xc, start), len * n * sizeof(uint64_t));
        st = veil_base_conv_apply_centered(conv, raised, digit, err); /* centered: no bias in the noise */
        if (st == VEIL_OK) st = veil_poly_to_eval(raised, err);
        if (st != VEIL_OK) break;
        /* inner product with the key's digit, limb by limb over Q_l and P */
        const bool accumulate = j > 0;
#pragma omp parallel for num_threads(r->threads) schedule(static)
        for (size_t t = 0; t < qp_count; t++) {
            const size_t prime = qp[t];
            const uint64_t *src;
            if (prime >= start && prime <= end) {
                src = veil_poly_limb_const(x, prime); /* the digit's own primes: x itself, already in NTT form */
            } else {
                size_t k = 0;
                while (to[k] != prime) k++;
                src = veil_poly_limb_const(raised, k);
            }
            veil_limb_mul(r, prime, veil_poly_limb(acc0, t), src, veil_poly_limb_const(key->b[j], prime), accumulate);
            veil_limb_mul(r, prime, veil_poly_limb(acc1, t), src, veil_poly_limb_const(key->a[j], prime), accumulate);
        }
        veil_poly_free(digit);
        veil_poly_free(raised);
        digit = raised = NULL;
    }
    /* ModDown: divide by P with rounding, back to Q_l */
    if (st == VEIL_OK) st = veil_poly_mod_down(out0, acc0, ctx->moddown[level], err);
    if (st == VEIL_OK) st = veil_poly_mod_down(out1, acc1, ctx->moddown[level], err);
    veil_poly_free(digit);
    veil_poly_free(raised);
    veil_poly_free(xc);
    veil_poly_free(acc0);
    veil_poly_free(acc1);
    return st;
}
