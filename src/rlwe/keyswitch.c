/*
 * Hybrid key switching (Han, Ki, "Better bootstrapping for approximate homomorphic encryption", CT-RSA
 * 2020, section 3; the RNS form of Bajard et al.): decompose x over Q_l into digits, raise each digit to
 * Q_l*P by fast base conversion (ModUp), take the inner product with the key's digits over Q_l*P, and
 * divide by P (ModDown).
 */
#include <string.h>
#include "rlwe/rlwe_internal.h"

/*
 * Digit j of x raised to all of Q_l P, in evaluation form: limb t (prime qp[t]) at raised[t], which points into x
 * for the digit's own limbs and into work (qp_count limbs of n) for the others, converted (centered, exact) from
 * xc (x in coefficient form) and NTT'd there. Nothing is copied.
 */
static veil_status raise_digit(const veil_context *ctx, const uint64_t **raised, size_t j, const veil_poly *x,
                               veil_poly *xc, const size_t *qp, size_t qp_count, uint64_t *work, veil_error *err)
{
    veil_status st = VEIL_OK;
    const veil_ring *r = ctx->ring;
    const size_t level = x->count - 1;
    const size_t start = j * ctx->alpha, end = start + ctx->alpha - 1 < level ? start + ctx->alpha - 1 : level;
    const size_t len = end - start + 1;
    size_t to[2 * VEIL_PARAMS_MAX_PRIMES], where[2 * VEIL_PARAMS_MAX_PRIMES], nt = 0;
    for (size_t i = 0; i < qp_count; i++)
        if (qp[i] < start || qp[i] > end) {
            where[i] = nt;
            to[nt++] = qp[i];
        }
    veil_poly digit, converted;
    veil_poly_view(&digit, r, qp + start, len, VEIL_FORM_COEFF, veil_poly_limb_ptr(xc, start));
    veil_poly_view(&converted, r, to, nt, VEIL_FORM_COEFF, work);
    VEIL_CHECK(veil_base_conv_apply_centered(ctx->modup[level * ctx->dnum + j], &converted, &digit, err));
    VEIL_CHECK(veil_poly_to_eval(&converted, err));
    for (size_t t = 0; t < qp_count; t++)
        raised[t] = (qp[t] >= start && qp[t] <= end) ? veil_poly_limb_const(x, qp[t])
                                                     : veil_poly_limb_ptr(&converted, where[t]);
done:
    return st;
}

/* acc0/acc1 (+)= raised (permuted slot-wise by perm when not NULL) times the key's digit j (= when !accumulate). */
static void accumulate_digit(const veil_context *ctx, veil_poly *acc0, veil_poly *acc1, const uint64_t *const *raised,
                             const uint32_t *perm, uint64_t *gathered, const veil_switch_key *key, size_t j,
                             const size_t *qp, size_t qp_count, bool accumulate)
{
    const veil_ring *r = ctx->ring;
    const size_t n = r->n;
#pragma omp parallel for num_threads(r->threads) schedule(static)
    for (size_t t = 0; t < qp_count; t++) {
        const uint64_t *src = raised[t];
        if (perm) {
            uint64_t *g = gathered + t * n;
            veil_permute_slots(r, g, src, perm);
            src = g;
        }
        veil_limb_mul(r, qp[t], veil_poly_limb(acc0, t), src, veil_poly_limb_const(key->b[j], qp[t]), accumulate);
        veil_limb_mul(r, qp[t], veil_poly_limb(acc1, t), src, veil_poly_limb_const(key->a[j], qp[t]), accumulate);
    }
}

veil_status veil_keyswitch(const veil_context *ctx, veil_poly *out0, veil_poly *out1, const veil_poly *x,
                           const veil_switch_key *key, veil_error *err)
{
    const veil_ring *r = ctx->ring;
    const size_t n = r->n, level = x->count - 1;
    size_t qp[2 * VEIL_PARAMS_MAX_PRIMES];
    const size_t qp_count = veil_context_qp_base(ctx, level, qp);
    /* one scratch block: x in coefficient form, one digit's conversion work area, and the two accumulators over
     * Q_l P */
    const size_t scratch_bytes = veil_pool_block_bytes((level + 1 + 3 * qp_count) * n * sizeof(uint64_t));
    veil_status st = VEIL_OK;
    uint64_t *scratch = veil_pool_get(r->pool, scratch_bytes, false); /* ciphertext data: nothing secret */
    if (!scratch) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "key switching: out of memory");
    veil_poly xc, acc0, acc1;
    veil_poly_view(&xc, r, qp, level + 1, VEIL_FORM_EVAL, scratch);
    veil_poly_view(&acc0, r, qp, qp_count, VEIL_FORM_EVAL, scratch + (level + 1) * n);
    veil_poly_view(&acc1, r, qp, qp_count, VEIL_FORM_EVAL, scratch + (level + 1 + qp_count) * n);
    uint64_t *work = scratch + (level + 1 + 2 * qp_count) * n;
    const uint64_t *raised[2 * VEIL_PARAMS_MAX_PRIMES];
    VEIL_CHECK(veil_poly_copy(&xc, x, err));
    VEIL_CHECK(veil_poly_to_coeff(&xc, err));
    const size_t digits = level / ctx->alpha + 1;
    for (size_t j = 0; j < digits; j++) {
        VEIL_CHECK(raise_digit(ctx, raised, j, x, &xc, qp, qp_count, work, err));
        accumulate_digit(ctx, &acc0, &acc1, raised, NULL, NULL, key, j, qp, qp_count, j > 0);
    }
    /* ModDown: divide by P with rounding, back to Q_l */
    VEIL_CHECK(veil_context_mod_down(ctx, out0, &acc0, level, err));
    VEIL_CHECK(veil_context_mod_down(ctx, out1, &acc1, level, err));
done:
    veil_pool_put(r->pool, scratch, scratch_bytes, false);
    return st;
}

veil_status veil_keyswitch_raise(const veil_context *ctx, veil_keyswitch_raised *rx, const veil_poly *x,
                                 veil_error *err)
{
    const veil_ring *r = ctx->ring;
    const size_t n = r->n, level = x->count - 1, digits = level / ctx->alpha + 1;
    memset(rx, 0, sizeof *rx);
    rx->ctx = ctx;
    rx->level = level;
    rx->digits = digits;
    rx->qp_count = veil_context_qp_base(ctx, level, rx->qp);
    const size_t qp_count = rx->qp_count;
    /* x in coefficient form, every digit's converted limbs (kept for all the products), the gathered (permuted)
     * digit; the pointers to each raised digit's limbs */
    rx->scratch_bytes = veil_pool_block_bytes((level + 1 + (digits + 1) * qp_count) * n * sizeof(uint64_t));
    veil_status st = VEIL_OK;
    rx->scratch = veil_pool_get(r->pool, rx->scratch_bytes, false); /* ciphertext data: nothing secret */
    rx->perm = veil_alloc_scratch(n, sizeof *rx->perm);
    rx->raised = veil_alloc_scratch(digits * qp_count, sizeof *rx->raised);
    if (!rx->scratch || !rx->perm || !rx->raised) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "key switching: out of memory");
    veil_poly xc;
    uint64_t *converted = rx->scratch + (level + 1) * n;
    rx->gathered = converted + digits * qp_count * n;
    veil_poly_view(&xc, r, rx->qp, level + 1, VEIL_FORM_EVAL, rx->scratch);
    VEIL_CHECK(veil_poly_copy(&xc, x, err));
    VEIL_CHECK(veil_poly_to_coeff(&xc, err));
    /* one ModUp for all rotations (Halevi-Shoup 2018): the automorphism commutes with it, and in evaluation
     * form it is a permutation of the slots, applied to the raised digits by each product */
    for (size_t j = 0; j < digits; j++)
        VEIL_CHECK(raise_digit(ctx, rx->raised + j * qp_count, j, x, &xc, rx->qp, qp_count,
                               converted + j * qp_count * n, err));
done:
    if (st != VEIL_OK) veil_keyswitch_raised_release(rx);
    return st;
}

void veil_keyswitch_raised_release(veil_keyswitch_raised *rx)
{
    if (!rx || !rx->ctx) return;
    if (rx->scratch) veil_pool_put(rx->ctx->ring->pool, rx->scratch, rx->scratch_bytes, false);
    veil_free(rx->perm);
    veil_free(rx->raised);
    memset(rx, 0, sizeof *rx);
}

veil_status veil_keyswitch_raised_product(veil_keyswitch_raised *rx, uint64_t galois, const veil_switch_key *key,
                                          veil_poly *acc0, veil_poly *acc1, bool accumulate, veil_error *err)
{
    const veil_context *ctx = rx->ctx;
    if (acc0->count != rx->qp_count || acc1->count != rx->qp_count || acc0->form != VEIL_FORM_EVAL ||
        acc1->form != VEIL_FORM_EVAL || memcmp(acc0->base, rx->qp, rx->qp_count * sizeof *rx->qp) != 0 ||
        memcmp(acc1->base, rx->qp, rx->qp_count * sizeof *rx->qp) != 0)
        return veil_fail(err, VEIL_ERR_MISMATCH, "key switching: the accumulators must be over Q_%zu P", rx->level);
    if (galois != 1) veil_automorphism_permutation(rx->perm, ctx->ring, galois);
    for (size_t j = 0; j < rx->digits; j++)
        accumulate_digit(ctx, acc0, acc1, rx->raised + j * rx->qp_count, galois != 1 ? rx->perm : NULL, rx->gathered,
                         key, j, rx->qp, rx->qp_count, j > 0 || accumulate);
    return VEIL_OK;
}

/* out = a * w mod the ring's prime `prime` (in place allowed), by the ring's vector kernels where they apply. */
static void limb_mul_const(const veil_ring *r, size_t prime, uint64_t *out, const uint64_t *a, uint64_t w)
{
    const size_t n = r->n;
    const uint64_t q = r->primes[prime];
    if (r->ntt[prime].use_ifma) {
        veil_mul_const_ifma(out, a, n, q, w);
    } else if (r->ntt[prime].use_simd) {
        veil_mul_const_avx2(out, a, n, q, w);
    } else {
        const uint64_t ws = veil_shoup_precompute(w, q);
        for (size_t i = 0; i < n; i++) out[i] = veil_mulmod_shoup(a[i], w, ws, q);
    }
}

veil_status veil_keyswitch_add_p_times(const veil_context *ctx, veil_poly *out, const veil_poly *c, uint64_t galois,
                                       bool accumulate, veil_error *err)
{
    const veil_ring *r = ctx->ring;
    const size_t n = r->n, level = c->count - 1;
    size_t qp[2 * VEIL_PARAMS_MAX_PRIMES];
    const size_t qp_count = veil_context_qp_base(ctx, level, qp);
    if (out->count != qp_count || out->form != VEIL_FORM_EVAL || c->form != VEIL_FORM_EVAL ||
        memcmp(out->base, qp, qp_count * sizeof *qp) != 0 || memcmp(c->base, qp, (level + 1) * sizeof *qp) != 0)
        return veil_fail(err, VEIL_ERR_MISMATCH, "key switching: P times a polynomial over Q_l, into Q_l P");
    veil_status st = VEIL_OK;
    const size_t scratch_bytes = accumulate ? veil_pool_block_bytes((level + 1) * n * sizeof(uint64_t)) : 0;
    uint64_t *scratch = accumulate ? veil_pool_get(r->pool, scratch_bytes, false) : NULL; /* nothing secret */
    uint32_t *perm = galois != 1 ? veil_alloc_scratch(n, sizeof *perm) : NULL;
    if ((accumulate && !scratch) || (galois != 1 && !perm))
        VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "key switching: out of memory");
    if (perm) veil_automorphism_permutation(perm, r, galois);
#pragma omp parallel for num_threads(r->threads) schedule(static)
    for (size_t t = 0; t <= level; t++) {
        uint64_t *dst = accumulate ? scratch + t * n : veil_poly_limb_ptr(out, t);
        const uint64_t *src = veil_poly_limb_ptr(c, t);
        if (perm) {
            veil_permute_slots(r, dst, src, perm);
            src = dst;
        }
        limb_mul_const(r, t, dst, src, ctx->p_mod_q[t]);
    }
    if (accumulate) {
        veil_poly sum;
        veil_poly_view(&sum, r, qp, level + 1, VEIL_FORM_EVAL, scratch);
        veil_limbwise(ctx, out, out, &sum, level, VEIL_LIMB_ADD);
    } else {
        /* P = 0 modulo P's primes */
        memset(veil_poly_limb_ptr(out, level + 1), 0, (qp_count - level - 1) * n * sizeof(uint64_t));
    }
done:
    if (scratch) veil_pool_put(r->pool, scratch, scratch_bytes, false);
    veil_free(perm);
    return st;
}

/*
 * The shared body of the hoisted forms: one ModUp of x, then for each k the permuted digits times keys[k];
 * with sum, all of them accumulated over Q_l P and divided by P once (out0[0], out1[0]), else one ModDown
 * per k.
 */
static veil_status keyswitch_hoisted(const veil_context *ctx, veil_poly *const *out0, veil_poly *const *out1,
                                     const veil_poly *x, const uint64_t *galois, const veil_switch_key *const *keys,
                                     size_t count, bool sum, veil_error *err)
{
    const veil_ring *r = ctx->ring;
    const size_t n = r->n, level = x->count - 1;
    veil_keyswitch_raised rx;
    veil_status st = veil_keyswitch_raise(ctx, &rx, x, err);
    if (st != VEIL_OK) return st;
    const size_t qp_count = rx.qp_count;
    const size_t scratch_bytes = veil_pool_block_bytes(2 * qp_count * n * sizeof(uint64_t));
    uint64_t *scratch = veil_pool_get(r->pool, scratch_bytes, false); /* nothing secret */
    if (!scratch) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "hoisted key switching: out of memory");
    veil_poly acc0, acc1;
    veil_poly_view(&acc0, r, rx.qp, qp_count, VEIL_FORM_EVAL, scratch);
    veil_poly_view(&acc1, r, rx.qp, qp_count, VEIL_FORM_EVAL, scratch + qp_count * n);
    for (size_t k = 0; k < count; k++) {
        VEIL_CHECK(veil_keyswitch_raised_product(&rx, galois[k], keys[k], &acc0, &acc1, sum && k > 0, err));
        if (sum && k + 1 < count) continue;
        VEIL_CHECK(veil_context_mod_down(ctx, out0[sum ? 0 : k], &acc0, level, err));
        VEIL_CHECK(veil_context_mod_down(ctx, out1[sum ? 0 : k], &acc1, level, err));
    }
done:
    if (scratch) veil_pool_put(r->pool, scratch, scratch_bytes, false);
    veil_keyswitch_raised_release(&rx);
    return st;
}

veil_status veil_keyswitch_hoisted(const veil_context *ctx, veil_poly *const *out0, veil_poly *const *out1,
                                   const veil_poly *x, const uint64_t *galois, const veil_switch_key *const *keys,
                                   size_t count, veil_error *err)
{
    return keyswitch_hoisted(ctx, out0, out1, x, galois, keys, count, false, err);
}

veil_status veil_keyswitch_hoisted_sum(const veil_context *ctx, veil_poly *out0, veil_poly *out1, const veil_poly *x,
                                       const uint64_t *galois, const veil_switch_key *const *keys, size_t count,
                                       veil_error *err)
{
    return keyswitch_hoisted(ctx, &out0, &out1, x, galois, keys, count, true, err);
}
