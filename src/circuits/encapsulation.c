/*
 * Sparse-secret encapsulation for bootstrapping (Bossuat, Troncoso-Pastoriza, Hubaux, "Bootstrapping for
 * approximate homomorphic encryption with negligible failure-probability by using sparse-secret
 * encapsulation", ACNS 2022). The main secret s is dense; bootstrapping switches its level-0 ciphertext to
 * an ephemeral sparse secret s' (weight h' << N), raises the modulus there, where the overflow I of
 * c_0 + c_1 s' is bounded by (h' + 1) / 2, and switches back to s at the top of the chain.
 *
 * Security (the paper, section 5): the key from s to s' is an RLWE sample under the sparse s', so it lives
 * over the small modulus q_0 p_0 only (about 100 bits here; the ciphertext at level 0 needs no more), where
 * a weight-32 secret at N = 2^16 is far above 128-bit security; it is never extended to the rest of the
 * chain. The key from s' to s is an encryption under the dense s over Q P, covered by the HE standard's
 * table like every other key.
 */
#include <stdlib.h>
#include <string.h>
#include "circuits/circuits_internal.h"

void veil_boot_encaps_base(const veil_context *ctx, size_t base[2])
{
    base[0] = 0;
    base[1] = ctx->q_count; /* p_0, the first special prime */
}

veil_status veil_boot_encaps_alloc(veil_ckks_encapsulation_key **out, const veil_context *ctx, size_t weight,
                                   veil_error *err)
{
    veil_status st = VEIL_OK;
    size_t base[2];
    veil_boot_encaps_base(ctx, base);
    veil_ckks_encapsulation_key *k = veil_alloc(1, sizeof *k);
    if (!k) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "encapsulation key: out of memory");
    k->ctx = ctx;
    k->weight = weight;
    VEIL_CHECK(veil_poly_new(&k->b, ctx->ring, base, 2, VEIL_FORM_EVAL, err));
    VEIL_CHECK(veil_poly_new(&k->a, ctx->ring, base, 2, VEIL_FORM_EVAL, err));
    *out = k;
    k = NULL;
done:
    veil_ckks_encapsulation_key_free(k);
    return st;
}

void veil_ckks_encapsulation_key_free(veil_ckks_encapsulation_key *key)
{
    if (!key) return;
    veil_poly_free(key->a);
    veil_poly_free(key->b);
    veil_switch_key_free(key->to_dense);
    veil_free(key);
}

size_t veil_ckks_encapsulation_key_weight(const veil_ckks_encapsulation_key *key)
{
    return key ? key->weight : 0;
}

/* The two limbs {q_0, p_0} of a secret key's polynomial (full Q P base, limb i = ring index i). */
static veil_status restrict_secret(veil_poly **out, const veil_secret_key *sk, veil_error *err)
{
    const veil_context *ctx = sk->ctx;
    size_t base[2];
    veil_boot_encaps_base(ctx, base);
    veil_status st = VEIL_OK;
    VEIL_CHECK(veil_poly_new(out, ctx->ring, base, 2, VEIL_FORM_EVAL, err));
    for (size_t i = 0; i < 2; i++)
        memcpy(veil_poly_limb(*out, i), veil_poly_limb_const(sk->s, base[i]), ctx->params.n * sizeof(uint64_t));
done:
    return st;
}

/* b = -a s' + e + p_0 s over {q_0, p_0} (p_0 s is 0 mod p_0). */
static veil_status make_to_sparse(veil_ckks_encapsulation_key *k, const veil_secret_key *sk,
                                  const veil_secret_key *sparse, veil_prng *prng, veil_error *err)
{
    const veil_context *ctx = k->ctx;
    veil_status st = VEIL_OK;
    veil_poly *s = NULL, *sp = NULL, *as = NULL;
    VEIL_CHECK(restrict_secret(&s, sk, err));
    VEIL_CHECK(restrict_secret(&sp, sparse, err));
    size_t base[2];
    veil_boot_encaps_base(ctx, base);
    VEIL_CHECK(veil_poly_new(&as, ctx->ring, base, 2, VEIL_FORM_EVAL, err));
    veil_prng_bytes(prng, k->seed, sizeof k->seed);
    VEIL_CHECK(veil_uniform_from_seed(k->a, k->seed, 1, err));
    k->b->form = VEIL_FORM_COEFF;
    VEIL_CHECK(veil_sample_key_error(k->b, ctx, prng, err));
    VEIL_CHECK(veil_poly_to_eval(k->b, err));
    VEIL_CHECK(veil_poly_mul(as, k->a, sp, err));
    VEIL_CHECK(veil_poly_sub(k->b, k->b, as, err));
    {
        const uint64_t q0 = ctx->ring->primes[0], p0 = ctx->ring->primes[ctx->q_count];
        const uint64_t w = p0 % q0;
        uint64_t *b = veil_poly_limb(k->b, 0);
        const uint64_t *s0 = veil_poly_limb_const(s, 0);
        for (size_t t = 0; t < ctx->params.n; t++) b[t] = veil_mod_add(b[t], veil_mod_mul(s0[t], w, q0), q0);
    }
done:
    veil_poly_free(s);
    veil_poly_free(sp);
    veil_poly_free(as);
    return st;
}

veil_status veil_ckks_encapsulation_key_new(veil_ckks_encapsulation_key **out, const veil_context *ctx,
                                            const veil_secret_key *sk, size_t weight, veil_prng *prng,
                                            veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(sk, err);
    if (sk->ctx != ctx)
        return veil_fail(err, VEIL_ERR_MISMATCH, "encapsulation key: the secret key belongs to another context");
    if (ctx->params.t != 0) return veil_fail(err, VEIL_ERR_ARGUMENT, "encapsulation key: a BGV parameter set");
    if (ctx->p_count == 0)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "encapsulation key: the parameter set has no special prime");
    if (weight < 1 || weight > ctx->params.n / 2)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "encapsulation key: weight %zu (1..N/2)", weight);
    if (ctx->ring->primes[ctx->q_count] < ctx->ring->primes[0] / 4)
        return veil_fail(err, VEIL_ERR_ARGUMENT,
                         "encapsulation key: the special prime p_0 is much smaller than q_0 (its key switching "
                         "noise would be q_0 / p_0 times larger)");
    veil_status st = VEIL_OK;
    veil_prng *use = NULL, *owned = NULL;
    veil_secret_key *sparse = NULL;
    veil_ckks_encapsulation_key *k = NULL;
    const size_t n = ctx->params.n;
    int8_t *coeffs = veil_alloc(n, 1);
    if (!coeffs) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "encapsulation key: out of memory");
    VEIL_CHECK(veil_prng_or_os(&use, &owned, prng, err));
    VEIL_CHECK(veil_sample_ternary_hw(coeffs, n, weight, use, err));
    VEIL_CHECK(veil_secret_key_from_coeffs(&sparse, ctx, coeffs, err));
    VEIL_CHECK(veil_boot_encaps_alloc(&k, ctx, weight, err));
    VEIL_CHECK(make_to_sparse(k, sk, sparse, use, err));
    VEIL_CHECK(veil_switch_key_new_from(&k->to_dense, ctx, sk, sparse->s, use, err));
    *out = k;
    k = NULL;
done:
    veil_ckks_encapsulation_key_free(k);
    veil_secret_key_free(sparse); /* wipes */
    veil_free_secret(coeffs, n);
    veil_prng_free(owned);
    return st;
}

veil_status veil_boot_switch_to_sparse(const veil_context *ctx, veil_ckks_ciphertext *x,
                                       const veil_ckks_encapsulation_key *key, veil_error *err)
{
    veil_status st = VEIL_OK;
    const size_t n = ctx->params.n;
    const uint64_t q0 = ctx->ring->primes[0], p0 = ctx->ring->primes[ctx->q_count];
    size_t base[2];
    veil_boot_encaps_base(ctx, base);
    veil_poly *d = NULL, *u0 = NULL, *u1 = NULL, *c1 = NULL;
    int64_t *v = malloc(n * sizeof *v);
    if (!v) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "bootstrap: out of memory");
    if (x->el.level != 0 || x->el.size != 2)
        VEIL_FAIL(err, VEIL_ERR_INTERNAL, "bootstrap: the switch to the sparse secret takes a level-0 ciphertext");
    /* d = c_1 centered mod q_0, over {q_0, p_0} */
    VEIL_CHECK(veil_context_poly_new(&c1, ctx, 0, VEIL_FORM_EVAL, err));
    VEIL_CHECK(veil_poly_copy(c1, x->el.c[1], err));
    VEIL_CHECK(veil_poly_to_coeff(c1, err));
    const uint64_t *cx = veil_poly_limb_const(c1, 0);
    for (size_t j = 0; j < n; j++) v[j] = cx[j] > q0 / 2 ? (int64_t)cx[j] - (int64_t)q0 : (int64_t)cx[j];
    VEIL_CHECK(veil_poly_new(&d, ctx->ring, base, 2, VEIL_FORM_COEFF, err));
    VEIL_CHECK(veil_poly_set_i64(d, v, err));
    VEIL_CHECK(veil_poly_to_eval(d, err));
    VEIL_CHECK(veil_poly_new(&u0, ctx->ring, base, 2, VEIL_FORM_EVAL, err));
    VEIL_CHECK(veil_poly_new(&u1, ctx->ring, base, 2, VEIL_FORM_EVAL, err));
    VEIL_CHECK(veil_poly_mul(u0, d, key->b, err));
    VEIL_CHECK(veil_poly_mul(u1, d, key->a, err));
    VEIL_CHECK(veil_poly_to_coeff(u0, err));
    VEIL_CHECK(veil_poly_to_coeff(u1, err));
    /* ModDown by p_0: (u mod q_0 - [u mod p_0]) / p_0, [.] centered; u0 + u1 s' ~ d s */
    uint64_t p_inv = 0;
    VEIL_CHECK(veil_mod_inv(&p_inv, p0 % q0, q0, err));
    veil_poly *u[2] = {u0, u1};
    for (int i = 0; i < 2; i++) {
        uint64_t *lq = veil_poly_limb(u[i], 0);
        const uint64_t *lp = veil_poly_limb_const(u[i], 1);
        for (size_t j = 0; j < n; j++) {
            const int64_t r = lp[j] > p0 / 2 ? (int64_t)lp[j] - (int64_t)p0 : (int64_t)lp[j];
            const uint64_t rq = r < 0 ? q0 - ((uint64_t)(-r) % q0) : (uint64_t)r % q0;
            lq[j] = veil_mod_mul(veil_mod_sub(lq[j], rq == q0 ? 0 : rq, q0), p_inv, q0);
        }
    }
    /* (c_0 + u0, u1) over q_0, evaluation form */
    memcpy(veil_poly_limb(c1, 0), veil_poly_limb_const(u1, 0), n * sizeof(uint64_t));
    VEIL_CHECK(veil_poly_to_eval(c1, err));
    {
        veil_poly *t = NULL;
        VEIL_CHECK(veil_context_poly_new(&t, ctx, 0, VEIL_FORM_COEFF, err));
        memcpy(veil_poly_limb(t, 0), veil_poly_limb_const(u0, 0), n * sizeof(uint64_t));
        st = veil_poly_to_eval(t, err);
        if (st == VEIL_OK) st = veil_poly_add(x->el.c[0], x->el.c[0], t, err);
        veil_poly_free(t);
        if (st != VEIL_OK) goto done;
    }
    VEIL_CHECK(veil_poly_copy(x->el.c[1], c1, err));
    x->el.seeded = false;
done:
    veil_poly_free(d);
    veil_poly_free(u0);
    veil_poly_free(u1);
    veil_poly_free(c1);
    free(v);
    return st;
}

veil_status veil_boot_switch_to_dense(const veil_context *ctx, veil_ckks_ciphertext *x,
                                      const veil_ckks_encapsulation_key *key, veil_error *err)
{
    veil_status st = VEIL_OK;
    veil_poly *o0 = NULL, *o1 = NULL;
    const size_t level = x->el.level;
    VEIL_CHECK(veil_context_poly_new(&o0, ctx, level, VEIL_FORM_EVAL, err));
    VEIL_CHECK(veil_context_poly_new(&o1, ctx, level, VEIL_FORM_EVAL, err));
    VEIL_CHECK(veil_keyswitch(ctx, o0, o1, x->el.c[1], key->to_dense, err));
    VEIL_CHECK(veil_poly_add(x->el.c[0], x->el.c[0], o0, err));
    veil_poly_free(x->el.c[1]);
    x->el.c[1] = o1;
    o1 = NULL;
    x->el.seeded = false;
done:
    veil_poly_free(o0);
    veil_poly_free(o1);
    return st;
}
