/*
 * Encryptions of zero and the decryption phase, shared by CKKS and BGV: a scheme adds its encoded message
 * to c0 of an encryption of zero, and reads its message from the phase c0 + c1 s (+ c2 s^2). For a BGV set
 * every error is multiplied by t (and ModDown keeps d = 0 mod t), so the phase is m + t e.
 */
#include <string.h>
#include "rlwe/rlwe_internal.h"

/* An error polynomial over the given base in evaluation form: e, or t e for BGV. */
static veil_status error_over(veil_poly **out, const veil_context *ctx, const size_t *base, size_t count,
                              veil_prng *prng, veil_error *err)
{
    veil_status st = VEIL_OK;
    VEIL_CHECK(veil_small_poly_over(out, ctx, base, count, false, prng, err));
    if (ctx->params.t) VEIL_CHECK(veil_poly_mul_scalar(*out, *out, (int64_t)ctx->params.t, err));
done:
    return st;
}

veil_status veil_encrypt_zero_pk(const veil_context *ctx, veil_poly *c0, veil_poly *c1, size_t level,
                                 const veil_public_key *pk, veil_prng *prng, veil_error *err)
{
    size_t qp[2 * VEIL_PARAMS_MAX_PRIMES];
    const size_t count = veil_context_qp_base(ctx, level, qp);
    veil_status st = VEIL_OK;
    veil_poly *u = NULL, *e[2] = {NULL, NULL}, *t[2] = {NULL, NULL};
    /* over Q_l P: (u b + e0, u a + e1), then divided by P (ModDown), which divides the noise by P too */
    VEIL_CHECK(veil_small_poly_over(&u, ctx, qp, count, true, prng, err));
    for (int i = 0; i < 2; i++) {
        VEIL_CHECK(error_over(&e[i], ctx, qp, count, prng, err));
        VEIL_CHECK(veil_poly_new(&t[i], ctx->ring, qp, count, VEIL_FORM_EVAL, err));
    }
    const veil_poly *key[2] = {pk->b, pk->a};
#pragma omp parallel for num_threads(ctx->ring->threads) schedule(static)
    for (size_t k = 0; k < count; k++)
        for (int i = 0; i < 2; i++) {
            uint64_t *o = veil_poly_limb(t[i], k);
            memcpy(o, veil_poly_limb_const(e[i], k), ctx->ring->n * sizeof *o);
            veil_limb_mul(ctx->ring, qp[k], o, veil_poly_limb_const(u, k), veil_poly_limb_const(key[i], qp[k]), true);
        }
    VEIL_CHECK(veil_context_mod_down(ctx, c0, t[0], level, err));
    VEIL_CHECK(veil_context_mod_down(ctx, c1, t[1], level, err));
done:
    veil_poly_free(u);
    for (int i = 0; i < 2; i++) {
        veil_poly_free(e[i]);
        veil_poly_free(t[i]);
    }
    return st;
}

veil_status veil_encrypt_zero_sk(const veil_context *ctx, veil_poly *c0, veil_poly *c1, size_t level,
                                 const veil_secret_key *sk, uint8_t seed[VEIL_SEED_BYTES], veil_prng *prng,
                                 veil_error *err)
{
    size_t base[VEIL_PARAMS_MAX_PRIMES];
    for (size_t i = 0; i <= level; i++) base[i] = i;
    veil_status st = VEIL_OK;
    veil_poly *e = NULL;
    /* (-a s + e, a), a from a fresh seed */
    VEIL_CHECK(error_over(&e, ctx, base, level + 1, prng, err));
    veil_prng_bytes(prng, seed, VEIL_SEED_BYTES);
    VEIL_CHECK(veil_uniform_from_seed(c1, seed, 0, err));
    veil_limb_products(ctx, c0, c1, sk->s, level, false);
    veil_limbwise(ctx, c0, e, c0, level, VEIL_LIMB_SUB);
done:
    veil_poly_free(e);
    return st;
}

veil_status veil_decrypt_phase(const veil_context *ctx, veil_poly **out, veil_poly *const *c, size_t size,
                               size_t level, const veil_secret_key *sk, veil_error *err)
{
    veil_status st = VEIL_OK;
    veil_poly *m = NULL, *s2 = NULL;
    /* c0 + c1 s (+ c2 s^2), by Horner: ((c2 s) + c1) s + c0 */
    VEIL_CHECK(veil_context_poly_new(&m, ctx, level, VEIL_FORM_EVAL, err));
    if (size == 3) {
        veil_limb_products(ctx, m, c[2], sk->s, level, false);
        veil_limbwise(ctx, m, m, c[1], level, VEIL_LIMB_ADD);
        VEIL_CHECK(veil_context_poly_new(&s2, ctx, level, VEIL_FORM_EVAL, err));
        veil_limb_products(ctx, s2, m, sk->s, level, false);
        veil_limbwise(ctx, m, s2, c[0], level, VEIL_LIMB_ADD);
    } else {
        veil_limbwise(ctx, m, c[0], NULL, level, VEIL_LIMB_COPY);
        veil_limb_products(ctx, m, c[1], sk->s, level, true);
    }
    *out = m;
    m = NULL;
done:
    veil_poly_free(s2);
    veil_poly_free(m);
    return st;
}
