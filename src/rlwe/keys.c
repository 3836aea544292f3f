/* Secret, public and key-switching keys. */
#include <string.h>
#include "rlwe/rlwe_internal.h"

veil_status veil_prng_or_os(veil_prng **use, veil_prng **owned, veil_prng *prng, veil_error *err)
{
    veil_status st = VEIL_OK;
    *owned = NULL;
    *use = prng;
    if (prng) goto done;
    VEIL_CHECK(veil_prng_new_os(owned, err));
    *use = *owned;
done:
    return st;
}

veil_status veil_uniform_from_seed(veil_poly *out, const uint8_t seed[VEIL_SEED_BYTES], uint64_t stream,
                                   veil_error *err)
{
    veil_status st = VEIL_OK;
    veil_prng *prng = NULL;
    VEIL_CHECK(veil_prng_new_seeded(&prng, seed, stream, err));
    VEIL_CHECK(veil_sample_uniform(out, prng, err));
done:
    veil_prng_free(prng);
    return st;
}

veil_status veil_sample_error_poly(veil_poly *out, veil_prng *prng, veil_error *err)
{
    const size_t n = veil_ring_degree(veil_poly_ring(out));
    veil_status st = VEIL_OK;
    int8_t *e = veil_alloc(n, 1);
    if (!e) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "out of memory for an error polynomial");
    VEIL_CHECK(veil_sample_cbd(e, n, prng, err));
    VEIL_CHECK(veil_poly_set_small(out, e, err));
done:
    veil_free_secret(e, n);
    return st;
}

veil_status veil_sample_key_error(veil_poly *out, const veil_context *ctx, veil_prng *prng, veil_error *err)
{
    veil_status st = VEIL_OK;
    VEIL_CHECK(veil_sample_error_poly(out, prng, err));
    if (ctx->params.t) VEIL_CHECK(veil_poly_mul_scalar(out, out, (int64_t)ctx->params.t, err)); /* BGV: t e */
done:
    return st;
}

veil_status veil_sample_ternary_poly(veil_poly *out, veil_prng *prng, veil_error *err)
{
    const size_t n = veil_ring_degree(veil_poly_ring(out));
    veil_status st = VEIL_OK;
    int8_t *t = veil_alloc(n, 1);
    if (!t) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "out of memory for a ternary polynomial");
    VEIL_CHECK(veil_sample_ternary(t, n, prng, err));
    VEIL_CHECK(veil_poly_set_small(out, t, err));
done:
    veil_free_secret(t, n);
    return st;
}

veil_status veil_secret_key_from_coeffs(veil_secret_key **out, const veil_context *ctx, const int8_t *coeffs,
                                        veil_error *err)
{
    veil_status st = VEIL_OK;
    const size_t n = ctx->params.n;
    veil_secret_key *sk = veil_alloc(1, sizeof *sk);
    if (sk) {
        sk->ctx = ctx;
        sk->coeffs = veil_alloc(n, 1);
    }
    size_t base[2 * VEIL_PARAMS_MAX_PRIMES];
    const size_t count = veil_context_qp_base(ctx, ctx->q_count - 1, base);
    if (!sk || !sk->coeffs) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "secret key: out of memory");
    VEIL_CHECK(veil_poly_new(&sk->s, ctx->ring, base, count, VEIL_FORM_COEFF, err));
    memcpy(sk->coeffs, coeffs, n);
    VEIL_CHECK(veil_poly_set_small(sk->s, coeffs, err));
    VEIL_CHECK(veil_poly_to_eval(sk->s, err));
    *out = sk;
    sk = NULL;
done:
    veil_secret_key_free(sk);
    return st;
}

veil_status veil_secret_key_new(veil_secret_key **out, const veil_context *ctx, veil_prng *prng, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(ctx, err);
    veil_status st = VEIL_OK;
    const size_t n = ctx->params.n;
    veil_prng *use = NULL, *owned = NULL;
    int8_t *coeffs = NULL;
    VEIL_CHECK(veil_prng_or_os(&use, &owned, prng, err));
    coeffs = veil_alloc(n, 1);
    if (!coeffs) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "secret key: out of memory");
    if (ctx->params.secret == VEIL_SECRET_TERNARY_HW)
        VEIL_CHECK(veil_sample_ternary_hw(coeffs, n, ctx->params.hamming_weight, use, err));
    else
        VEIL_CHECK(veil_sample_ternary(coeffs, n, use, err));
    VEIL_CHECK(veil_secret_key_from_coeffs(out, ctx, coeffs, err));
done:
    veil_free_secret(coeffs, n);
    veil_prng_free(owned);
    return st;
}

void veil_secret_key_free(veil_secret_key *sk)
{
    if (!sk) return;
    veil_poly_free(sk->s); /* wipes */
    veil_free_secret(sk->coeffs, sk->ctx->params.n);
    veil_free_secret(sk, sizeof *sk);
}

/* The limbs 0..level (and, when with_p, the special limbs) of the secret key as a polynomial view copy. */
static veil_status secret_part(veil_poly **out, const veil_secret_key *sk, size_t level, int with_p, veil_error *err)
{
    const veil_context *ctx = sk->ctx;
    size_t base[2 * VEIL_PARAMS_MAX_PRIMES];
    size_t count = with_p ? veil_context_qp_base(ctx, level, base) : level + 1;
    if (!with_p)
        for (size_t i = 0; i <= level; i++) base[i] = i;
    veil_status st = VEIL_OK;
    VEIL_CHECK(veil_poly_new(out, ctx->ring, base, count, VEIL_FORM_EVAL, err));
    const size_t n = ctx->params.n;
    for (size_t i = 0; i < count; i++) {
        /* the key's limbs are Q then P, in ring index order */
        memcpy(veil_poly_limb(*out, i), veil_poly_limb_const(sk->s, base[i]), n * sizeof(uint64_t));
    }
done:
    return st;
}

veil_status veil_public_key_new(veil_public_key **out, const veil_context *ctx, const veil_secret_key *sk,
                                veil_prng *prng, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(sk, err);
    if (sk->ctx != ctx) return veil_fail(err, VEIL_ERR_MISMATCH, "public key: the secret key belongs to another context");
    veil_status st = VEIL_OK;
    veil_prng *use = NULL, *owned = NULL;
    veil_public_key *pk = NULL;
    veil_poly *s = NULL, *as = NULL;
    VEIL_CHECK(veil_prng_or_os(&use, &owned, prng, err));
    const size_t top = ctx->q_count - 1;
    size_t base[2 * VEIL_PARAMS_MAX_PRIMES];
    const size_t count = veil_context_qp_base(ctx, top, base);
    pk = veil_alloc(1, sizeof *pk);
    if (!pk) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "public key: out of memory");
    VEIL_CHECK(veil_poly_new(&pk->a, ctx->ring, base, count, VEIL_FORM_EVAL, err));
    VEIL_CHECK(veil_poly_new(&pk->b, ctx->ring, base, count, VEIL_FORM_COEFF, err));
    VEIL_CHECK(secret_part(&s, sk, top, 1, err));
    veil_prng_bytes(use, pk->seed, sizeof pk->seed);
    VEIL_CHECK(veil_uniform_from_seed(pk->a, pk->seed, 0, err));
    VEIL_CHECK(veil_sample_key_error(pk->b, ctx, use, err));
    VEIL_CHECK(veil_poly_to_eval(pk->b, err));
    /* b = e - a*s */
    VEIL_CHECK(veil_poly_new(&as, ctx->ring, base, count, VEIL_FORM_EVAL, err));
    VEIL_CHECK(veil_poly_mul(as, pk->a, s, err));
    VEIL_CHECK(veil_poly_sub(pk->b, pk->b, as, err));
    pk->ctx = ctx;
    *out = pk;
    pk = NULL;
done:
    veil_poly_free(as);
    veil_poly_free(s);
    veil_prng_free(owned);
    veil_public_key_free(pk);
    return st;
}

void veil_public_key_free(veil_public_key *pk)
{
    if (!pk) return;
    veil_poly_free(pk->a);
    veil_poly_free(pk->b);
    veil_free(pk);
}

/*
 * A key switching s' (given over Q and P, evaluation form) to s: for each digit j,
 * b_j = -a_j*s + e_j + P*s' on the digit's primes, -a_j*s + e_j elsewhere (Han-Ki 2020, section 3).
 */
static veil_status switch_key_new(veil_switch_key **out, const veil_context *ctx, const veil_secret_key *sk,
                                  const veil_poly *s_from, uint64_t galois, veil_prng *prng, veil_error *err)
{
    veil_status st = VEIL_OK;
    veil_poly *as = NULL;
    veil_switch_key *k = veil_alloc(1, sizeof *k);
    if (!k) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "switching key: out of memory");
    k->ctx = ctx;
    k->galois = galois;
    k->digits = ctx->dnum;
    k->a = veil_alloc(k->digits, sizeof *k->a);
    k->b = veil_alloc(k->digits, sizeof *k->b);
    if (!k->a || !k->b) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "switching key: out of memory");
    size_t base[2 * VEIL_PARAMS_MAX_PRIMES];
    const size_t count = veil_context_qp_base(ctx, ctx->q_count - 1, base);
    const size_t n = ctx->params.n;
    VEIL_CHECK(veil_poly_new(&as, ctx->ring, base, count, VEIL_FORM_EVAL, err));
    veil_prng_bytes(prng, k->seed, sizeof k->seed);
    for (size_t j = 0; j < k->digits; j++) {
        VEIL_CHECK(veil_poly_new(&k->a[j], ctx->ring, base, count, VEIL_FORM_EVAL, err));
        VEIL_CHECK(veil_poly_new(&k->b[j], ctx->ring, base, count, VEIL_FORM_COEFF, err));
        VEIL_CHECK(veil_uniform_from_seed(k->a[j], k->seed, 1 + j, err));
        VEIL_CHECK(veil_sample_key_error(k->b[j], ctx, prng, err));
        VEIL_CHECK(veil_poly_to_eval(k->b[j], err));
        VEIL_CHECK(veil_poly_mul(as, k->a[j], sk->s, err));
        VEIL_CHECK(veil_poly_sub(k->b[j], k->b[j], as, err));
        const size_t start = j * ctx->alpha, end = start + ctx->alpha < ctx->q_count ? start + ctx->alpha : ctx->q_count;
        for (size_t i = start; i < end; i++) {
            const uint64_t q = ctx->ring->primes[i], w = ctx->p_mod_q[i], ws = veil_shoup_precompute(w, q);
            uint64_t *b = veil_poly_limb(k->b[j], i);
            const uint64_t *sf = veil_poly_limb_const(s_from, i);
            for (size_t t = 0; t < n; t++) b[t] = veil_addmod(b[t], veil_mulmod_shoup(sf[t], w, ws, q), q);
        }
    }
    *out = k;
    k = NULL;
done:
    veil_poly_free(as);
    veil_switch_key_free(k);
    return st;
}

veil_status veil_relin_key_new(veil_switch_key **out, const veil_context *ctx, const veil_secret_key *sk,
                               veil_prng *prng, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(sk, err);
    if (sk->ctx != ctx) return veil_fail(err, VEIL_ERR_MISMATCH, "relinearization key: the secret key belongs to another context");
    veil_status st = VEIL_OK;
    veil_prng *use = NULL, *owned = NULL;
    veil_poly *s2 = NULL;
    VEIL_CHECK(veil_prng_or_os(&use, &owned, prng, err));
    size_t base[2 * VEIL_PARAMS_MAX_PRIMES];
    const size_t count = veil_context_qp_base(ctx, ctx->q_count - 1, base);
    VEIL_CHECK(veil_poly_new(&s2, ctx->ring, base, count, VEIL_FORM_EVAL, err));
    VEIL_CHECK(veil_poly_mul(s2, sk->s, sk->s, err));
    VEIL_CHECK(switch_key_new(out, ctx, sk, s2, 0, use, err));
done:
    veil_poly_free(s2);
    veil_prng_free(owned);
    return st;
}

veil_status veil_galois_key_new(veil_switch_key **out, const veil_context *ctx, const veil_secret_key *sk,
                                uint64_t galois_element, veil_prng *prng, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(sk, err);
    if (sk->ctx != ctx) return veil_fail(err, VEIL_ERR_MISMATCH, "Galois key: the secret key belongs to another context");
    if ((galois_element & 1) == 0 || galois_element >= 2 * (uint64_t)ctx->params.n || galois_element == 1)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "Galois key: element %llu is not odd in [3, 2N)",
                         (unsigned long long)galois_element);
    veil_status st = VEIL_OK;
    veil_prng *use = NULL, *owned = NULL;
    veil_poly *rotated = NULL;
    VEIL_CHECK(veil_prng_or_os(&use, &owned, prng, err));
    size_t base[2 * VEIL_PARAMS_MAX_PRIMES];
    const size_t count = veil_context_qp_base(ctx, ctx->q_count - 1, base);
    VEIL_CHECK(veil_poly_new(&rotated, ctx->ring, base, count, VEIL_FORM_EVAL, err));
    VEIL_CHECK(veil_poly_automorphism(rotated, sk->s, galois_element, err));
    VEIL_CHECK(switch_key_new(out, ctx, sk, rotated, galois_element, use, err));
done:
    veil_poly_free(rotated);
    veil_prng_free(owned);
    return st;
}

veil_status veil_switch_key_new_from(veil_switch_key **out, const veil_context *ctx, const veil_secret_key *sk,
                                    const veil_poly *s_from, veil_prng *prng, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    veil_status st = VEIL_OK;
    veil_prng *use = NULL, *owned = NULL;
    VEIL_CHECK(veil_prng_or_os(&use, &owned, prng, err));
    VEIL_CHECK(switch_key_new(out, ctx, sk, s_from, 0, use, err));
done:
    veil_prng_free(owned);
    return st;
}

void veil_switch_key_free(veil_switch_key *key)
{
    if (!key) return;
    for (size_t j = 0; j < key->digits; j++) {
        if (key->a) veil_poly_free(key->a[j]);
        if (key->b) veil_poly_free(key->b[j]);
    }
    veil_free(key->a);
    veil_free(key->b);
    veil_free(key);
}

uint64_t veil_switch_key_galois_element(const veil_switch_key *key)
{
    return key ? key->galois : 0;
}
