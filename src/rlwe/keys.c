/* Secret, public and key-switching keys. */
#include <string.h>
#include "rlwe/rlwe_internal.h"

veil_status veil_prng_or_os(veil_prng **use, veil_prng **owned, veil_prng *prng, veil_error *err)
{
    *owned = NULL;
    *use = prng;
    if (prng) return VEIL_OK;
    VEIL_TRY(veil_prng_new_os(owned, err));
    *use = *owned;
    return VEIL_OK;
}

veil_status veil_uniform_from_seed(veil_poly *out, const uint8_t seed[VEIL_SEED_BYTES], uint64_t stream,
                                   veil_error *err)
{
    veil_prng *prng = NULL;
    VEIL_TRY(veil_prng_new_seeded(&prng, seed, stream, err));
    veil_status st = veil_sample_uniform(out, prng, err);
    veil_prng_free(prng);
    return st;
}

veil_status veil_sample_error_poly(veil_poly *out, veil_prng *prng, veil_error *err)
{
    const size_t n = veil_ring_degree(veil_poly_ring(out));
    int8_t *e = veil_alloc(n, 1);
    if (!e) return veil_fail(err, VEIL_ERR_NO_MEMORY, "out of memory for an error polynomial");
    veil_status st = veil_sample_cbd(e, n, prng, err);
    if (st == VEIL_OK) st = veil_poly_set_small(out, e, err);
    veil_free_secret(e, n);
    return st;
}

veil_status veil_sample_key_error(veil_poly *out, const veil_context *ctx, veil_prng *prng, veil_error *err)
{
    VEIL_TRY(veil_sample_error_poly(out, prng, err));
    if (ctx->params.t) VEIL_TRY(veil_poly_mul_scalar(out, out, (int64_t)ctx->params.t, err)); /* BGV: t e */
    return VEIL_OK;
}

veil_status veil_sample_ternary_poly(veil_poly *out, veil_prng *prng, veil_error *err)
{
    const size_t n = veil_ring_degree(veil_poly_ring(out));
    int8_t *t = veil_alloc(n, 1);
    if (!t) return veil_fail(err, VEIL_ERR_NO_MEMORY, "out of memory for a ternary polynomial");
    veil_status st = veil_sample_ternary(t, n, prng, err);
    if (st == VEIL_OK) st = veil_poly_set_small(out, t, err);
    veil_free_secret(t, n);
    return st;
}

veil_status veil_secret_key_from_coeffs(veil_secret_key **out, const veil_context *ctx, const int8_t *coeffs,
                                        veil_error *err)
{
    const size_t n = ctx->params.n;
    veil_secret_key *sk = veil_alloc(1, sizeof *sk);
    if (sk) {
        sk->ctx = ctx;
        sk->coeffs = veil_alloc(n, 1);
    }
    size_t base[2 * VEIL_PARAMS_MAX_PRIMES];
    const size_t count = veil_context_qp_base(ctx, ctx->q_count - 1, base);
    veil_status st = (sk && sk->coeffs) ? VEIL_OK : veil_fail(err, VEIL_ERR_NO_MEMORY, "secret key: out of memory");
    if (st == VEIL_OK) st = veil_poly_new(&sk->s, ctx->ring, base, count, VEIL_FORM_COEFF, err);
    if (st == VEIL_OK) {
        memcpy(sk->coeffs, coeffs, n);
        st = veil_poly_set_small(sk->s, coeffs, err);
    }
    if (st == VEIL_OK) st = veil_poly_to_eval(sk->s, err);
    if (st != VEIL_OK) {
        veil_secret_key_free(sk);
        return st;
    }
    *out = sk;
    return VEIL_OK;
}

veil_status veil_secret_key_new(veil_secret_key **out, const veil_context *ctx, veil_prng *prng, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(ctx, err);
    const size_t n = ctx->params.n;
    veil_prng *use, *owned;
    VEIL_TRY(veil_prng_or_os(&use, &owned, prng, err));
    int8_t *coeffs = veil_alloc(n, 1);
    veil_status st = coeffs ? VEIL_OK : veil_fail(err, VEIL_ERR_NO_MEMORY, "secret key: out of memory");
    if (st == VEIL_OK) {
        if (ctx->params.secret == VEIL_SECRET_TERNARY_HW)
            st = veil_sample_ternary_hw(coeffs, n, ctx->params.hamming_weight, use, err);
        else
            st = veil_sample_ternary(coeffs, n, use, err);
    }
    if (st == VEIL_OK) st = veil_secret_key_from_coeffs(out, ctx, coeffs, err);
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
    VEIL_TRY(veil_poly_new(out, ctx->ring, base, count, VEIL_FORM_EVAL, err));
    const size_t n = ctx->params.n;
    for (size_t i = 0; i < count; i++) {
        /* the key's limbs are Q then P, in ring index order */
        memcpy(veil_poly_limb(*out, i), veil_poly_limb_const(sk->s, base[i]), n * sizeof(uint64_t));
    }
    return VEIL_OK;
}

veil_status veil_public_key_new(veil_public_key **out, const veil_context *ctx, const veil_secret_key *sk,
                                veil_prng *prng, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(sk, err);
    if (sk->ctx != ctx) return veil_fail(err, VEIL_ERR_MISMATCH, "public key: the secret key belongs to another context");
    veil_prng *use, *owned;
    VEIL_TRY(veil_prng_or_os(&use, &owned, prng, err));
    const size_t top = ctx->q_count - 1;
    size_t base[2 * VEIL_PARAMS_MAX_PRIMES];
    const size_t count = veil_context_qp_base(ctx, top, base);
    veil_public_key *pk = veil_alloc(1, sizeof *pk);
    veil_poly *s = NULL;
    veil_status st = pk ? VEIL_OK : veil_fail(err, VEIL_ERR_NO_MEMORY, "public key: out of memory");
    if (st == VEIL_OK) st = veil_poly_new(&pk->a, ctx->ring, base, count, VEIL_FORM_EVAL, err);
    if (st == VEIL_OK) st = veil_poly_new(&pk->b, ctx->ring, base, count, VEIL_FORM_COEFF, err);
    if (st == VEIL_OK) st = secret_part(&s, sk, top, 1, err);
    if (st == VEIL_OK) {
        veil_prng_bytes(use, pk->seed, sizeof pk->seed);
        st = veil_uniform_from_seed(pk->a, pk->seed, 0, err);
    }
    if (st == VEIL_OK) st = veil_sample_key_error(pk->b, ctx, use, err);
    if (st == VEIL_OK) st = veil_poly_to_eval(pk->b, err);
    if (st == VEIL_OK) {
        /* b = e - a*s */
        veil_poly *as = NULL;
        st = veil_poly_new(&as, ctx->ring, base, count, VEIL_FORM_EVAL, err);
        if (st == VEIL_OK) st = veil_poly_mul(as, pk->a, s, err);
        if (st == VEIL_OK) st = veil_poly_sub(pk->b, pk->b, as, err);
        veil_poly_free(as);
    }
    veil_poly_free(s);
    veil_prng_free(owned);
    if (st != VEIL_OK) {
        veil_public_key_free(pk);
        return st;
    }
    pk->ctx = ctx;
    *out = pk;
    return VEIL_OK;
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
    veil_switch_key *k = veil_alloc(1, sizeof *k);
    if (!k) return veil_fail(err, VEIL_ERR_NO_MEMORY, "switching key: out of memory");
    k->ctx = ctx;
    k->galois = galois;
    k->digits = ctx->dnum;
    k->a = veil_alloc(k->digits, sizeof *k->a);
    k->b = veil_alloc(k->digits, sizeof *k->b);
    veil_status st = (k->a && k->b) ? VEIL_OK : veil_fail(err, VEIL_ERR_NO_MEMORY, "switching key: out of memory");
    size_t base[2 * VEIL_PARAMS_MAX_PRIMES];
    const size_t count = veil_context_qp_base(ctx, ctx->q_count - 1, base);
    const size_t n = ctx->params.n;
    veil_poly *as = NULL;
    if (st == VEIL_OK) st = veil_poly_new(&as, ctx->ring, base, count, VEIL_FORM_EVAL, err);
    veil_prng_bytes(prng, k->seed, sizeof k->seed);
    for (size_t j = 0; st == VEIL_OK && j < k->digits; j++) {
        st = veil_poly_new(&k->a[j], ctx->ring, base, count, VEIL_FORM_EVAL, err);
        if (st == VEIL_OK) st = veil_poly_new(&k->b[j], ctx->ring, base, count, VEIL_FORM_COEFF, err);
        if (st == VEIL_OK) st = veil_uniform_from_seed(k->a[j], k->seed, 1 + j, err);
        if (st == VEIL_OK) st = veil_sample_key_error(k->b[j], ctx, prng, err);
        if (st == VEIL_OK) st = veil_poly_to_eval(k->b[j], err);
        if (st == VEIL_OK) st = veil_poly_mul(as, k->a[j], sk->s, err);
        if (st == VEIL_OK) st = veil_poly_sub(k->b[j], k->b[j], as, err);
        if (st != VEIL_OK) break;
        const size_t start = j * ctx->alpha, end = start + ctx->alpha < ctx->q_count ? start + ctx->alpha : ctx->q_count;
        for (size_t i = start; i < end; i++) {
            const uint64_t q = ctx->ring->primes[i], w = ctx->p_mod_q[i], ws = veil_shoup_precompute(w, q);
            uint64_t *b = veil_poly_limb(k->b[j], i);
            const uint64_t *sf = veil_poly_limb_const(s_from, i);
            for (size_t t = 0; t < n; t++) b[t] = veil_addmod(b[t], veil_mulmod_shoup(sf[t], w, ws, q), q);
        }
    }
    veil_poly_free(as);
    if (st != VEIL_OK) {
        veil_switch_key_free(k);
        return st;
    }
    *out = k;
    return VEIL_OK;
}

veil_status veil_relin_key_new(veil_switch_key **out, const veil_context *ctx, const veil_secret_key *sk,
                               veil_prng *prng, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(sk, err);
    if (sk->ctx != ctx) return veil_fail(err, VEIL_ERR_MISMATCH, "relinearization key: the secret key belongs to another context");
    veil_prng *use, *owned;
    VEIL_TRY(veil_prng_or_os(&use, &owned, prng, err));
    size_t base[2 * VEIL_PARAMS_MAX_PRIMES];
    const size_t count = veil_context_qp_base(ctx, ctx->q_count - 1, base);
    veil_poly *s2 = NULL;
    veil_status st = veil_poly_new(&s2, ctx->ring, base, count, VEIL_FORM_EVAL, err);
    if (st == VEIL_OK) st = veil_poly_mul(s2, sk->s, sk->s, err);
    if (st == VEIL_OK) st = switch_key_new(out, ctx, sk, s2, 0, use, err);
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
    veil_prng *use, *owned;
    VEIL_TRY(veil_prng_or_os(&use, &owned, prng, err));
    size_t base[2 * VEIL_PARAMS_MAX_PRIMES];
    const size_t count = veil_context_qp_base(ctx, ctx->q_count - 1, base);
    veil_poly *rotated = NULL;
    veil_status st = veil_poly_new(&rotated, ctx->ring, base, count, VEIL_FORM_EVAL, err);
    if (st == VEIL_OK) st = veil_poly_automorphism(rotated, sk->s, galois_element, err);
    if (st == VEIL_OK) st = switch_key_new(out, ctx, sk, rotated, galois_element, use, err);
    veil_poly_free(rotated);
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
