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
    /* one scratch block: x in coefficient form, one raised digit, and the two accumulators over Q_l P */
    uint64_t *scratch = veil_alloc_scratch((level + 1 + 3 * qp_count) * n, sizeof(uint64_t));
    if (!scratch) return veil_fail(err, VEIL_ERR_NO_MEMORY, "key switching: out of memory");
    veil_poly xc, digit, raised, acc0, acc1;
    veil_poly_view(&xc, r, qp, level + 1, VEIL_FORM_EVAL, scratch);
    veil_poly_view(&acc0, r, qp, qp_count, VEIL_FORM_EVAL, scratch + (level + 1) * n);
    veil_poly_view(&acc1, r, qp, qp_count, VEIL_FORM_EVAL, scratch + (level + 1 + qp_count) * n);
    uint64_t *raised_data = scratch + (level + 1 + 2 * qp_count) * n;
    veil_status st = veil_poly_copy(&xc, x, err);
    if (st == VEIL_OK) st = veil_poly_to_coeff(&xc, err);
    const size_t digits = level / ctx->alpha + 1;
    for (size_t j = 0; st == VEIL_OK && j < digits; j++) {
        const veil_base_conv *conv = ctx->modup[level * ctx->dnum + j];
        const size_t start = j * ctx->alpha, end = start + ctx->alpha - 1 < level ? start + ctx->alpha - 1 : level;
        const size_t len = end - start + 1;
        size_t to[2 * VEIL_PARAMS_MAX_PRIMES], where[2 * VEIL_PARAMS_MAX_PRIMES], nt = 0;
        for (size_t i = 0; i < qp_count; i++)
            if (qp[i] < start || qp[i] > end) {
                where[i] = nt;
                to[nt++] = qp[i];
            }
        /* ModUp: the digit's residues (a view into xc) raised to every other prime (centered), then NTT */
        veil_poly_view(&digit, r, qp + start, len, VEIL_FORM_COEFF, veil_poly_limb_ptr(&xc, start));
        veil_poly_view(&raised, r, to, nt, VEIL_FORM_COEFF, raised_data);
        st = veil_base_conv_apply_centered(conv, &raised, &digit, err);
        if (st == VEIL_OK) st = veil_poly_to_eval(&raised, err);
        if (st != VEIL_OK) break;
        /* inner product with the key's digit, limb by limb over Q_l and P */
        const bool accumulate = j > 0;
#pragma omp parallel for num_threads(r->threads) schedule(static)
        for (size_t t = 0; t < qp_count; t++) {
            const size_t prime = qp[t];
            /* the digit's own primes: x itself, already in NTT form */
            const uint64_t *src = (prime >= start && prime <= end) ? veil_poly_limb_const(x, prime)
                                                                   : veil_poly_limb_ptr(&raised, where[t]);
            veil_limb_mul(r, prime, veil_poly_limb_ptr(&acc0, t), src, veil_poly_limb_const(key->b[j], prime), accumulate);
            veil_limb_mul(r, prime, veil_poly_limb_ptr(&acc1, t), src, veil_poly_limb_const(key->a[j], prime), accumulate);
        }
    }
    /* ModDown: divide by P with rounding, back to Q_l */
    if (st == VEIL_OK) st = veil_poly_mod_down(out0, &acc0, ctx->moddown[level], err);
    if (st == VEIL_OK) st = veil_poly_mod_down(out1, &acc1, ctx->moddown[level], err);
    veil_free(scratch);
    return st;
}
