/*
 * BGV ciphertexts, encryption, decryption, the noise budget and the evaluator.
 *
 * Modulus switching from Q_l to Q_(l-1) computes (c - d) / q_l with d = c mod q_l and d = 0 mod t
 * (veil_poly_rescale_t), so the phase stays m + t e and the message picks up a factor q_l^-1 mod t, kept in
 * the ciphertext and removed at decryption (Kim-Polyakov-Zucca 2021, section 3). Operands with different
 * factors are aligned by a scalar product before additions.
 *
 * The noise estimate is log2 of a heuristic bound on |m + t e| in the coefficients (Costache-Smart style:
 * a sum of n independent terms of deviation sigma is bounded by 6 sqrt(n) sigma).
 *
 * A ciphertext is an RLWE element (src/rlwe/element.c: its checks, sums, relinearization and automorphisms)
 * with its factor and noise estimate beside it; what is BGV's own here is the factor, modulus switching and
 * the noise model.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "bgv/bgv_internal.h"

/* ---- objects -------------------------------------------------------------------------------------- */

veil_status veil_bgv_ciphertext_new(veil_bgv_ciphertext **out, const veil_context *ctx, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(ctx, err);
    veil_status st = VEIL_OK;
    if (ctx->params.t == 0) VEIL_FAIL(err, VEIL_ERR_MISMATCH, "bgv ciphertext: a CKKS parameter set");
    *out = veil_alloc(1, sizeof **out);
    if (!*out) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "bgv ciphertext: out of memory");
    veil_rlwe_element_init(&(*out)->el, ctx);
done:
    return st;
}

void veil_bgv_ciphertext_free(veil_bgv_ciphertext *ct)
{
    if (!ct) return;
    veil_rlwe_element_release(&ct->el);
    veil_free(ct);
}

size_t veil_bgv_ciphertext_level(const veil_bgv_ciphertext *ct) { return ct ? ct->el.level : 0; }
size_t veil_bgv_ciphertext_size(const veil_bgv_ciphertext *ct) { return ct ? ct->el.size : 0; }

/* ---- the noise model ------------------------------------------------------------------------------ */

static double log2_sum(double a, double b)
{
    return fmax(a, b) + log2(1.0 + exp2(-fabs(a - b)));
}

static double secret_weight(const veil_context *ctx)
{
    return ctx->params.hamming_weight ? (double)ctx->params.hamming_weight : 2.0 * (double)ctx->params.n / 3.0;
}

/* What a division by a prime (or by P) leaves: t (r0 + r1 s), r uniform in [-1/2, 1/2]. */
static double floor_bits(const veil_context *ctx)
{
    return log2((double)ctx->params.t) + log2(0.5 + 6.0 * sqrt(secret_weight(ctx) / 12.0));
}

/* A fresh secret-key encryption: |m + t e| <= t/2 + 21 t (the centered binomial error is at most 21). */
static double fresh_sk_bits(const veil_context *ctx)
{
    return log2(21.5 * (double)ctx->params.t);
}

static double log2_q(const veil_context *ctx, size_t i)
{
    return log2((double)ctx->ring->primes[i]);
}

/* Key switching adds sum_j d_j t e_j / P (d_j below a digit's product D) and the division's floor. */
static double keyswitch_bits(const veil_context *ctx)
{
    double digit = 0, p = 0;
    for (size_t i = 0; i < ctx->alpha && i < ctx->q_count; i++) digit += 1 + floor(log2_q(ctx, ctx->q_count - 1 - i));
    for (size_t i = 0; i < ctx->p_count; i++) p += log2_q(ctx, ctx->q_count + i);
    const double n = (double)ctx->params.n, terms = (double)ctx->dnum * n;
    const double product = log2((double)ctx->params.t) + log2(6.0 * sqrt(terms / 12.0) * 3.24) + digit - p;
    return log2_sum(product, floor_bits(ctx));
}

static double level_bits(const veil_context *ctx, size_t level)
{
    double bits = 0;
    for (size_t i = 0; i <= level; i++) bits += log2_q(ctx, i);
    return bits;
}

double veil_bgv_noise_budget_estimate(const veil_bgv_ciphertext *ct)
{
    if (!ct || ct->el.size < 2) return 0;
    const double b = level_bits(ct->el.ctx, ct->el.level) - 1 - ct->noise_bits;
    return b > 0 ? b : 0;
}

/* ---- operands: views of ciphertexts, switched and scaled without touching the originals ------------ */

typedef struct operand {
    veil_rlwe_element e; /* the ciphertext's polynomials, or switched or scaled copies of them (owned) */
    bool owned;
    uint64_t factor;
    double noise;
} operand;

static void operand_view(operand *o, const veil_bgv_ciphertext *ct)
{
    memset(o, 0, sizeof *o);
    o->e = ct->el;
    /* only the polynomials the ciphertext uses: an operand that comes to own its polynomials frees all three */
    for (size_t i = ct->el.size; i < 3; i++) o->e.c[i] = NULL;
    o->e.seeded = false;
    o->factor = ct->factor;
    o->noise = ct->noise_bits;
}

static void operand_release(operand *o)
{
    if (o->owned) veil_rlwe_element_release(&o->e);
    memset(o, 0, sizeof *o);
}

/* Makes the polynomials of a complete result (o's size, one level) o's own. */
static void operand_replace(operand *o, veil_rlwe_result *r)
{
    if (o->owned)
        for (size_t i = 0; i < o->e.size; i++) veil_poly_free(o->e.c[i]);
    for (size_t i = 0; i < o->e.size; i++) o->e.c[i] = r->c[i];
    o->e.level = r->level;
    o->owned = true;
    memset(r, 0, sizeof *r);
}

static uint64_t mulmod_t(uint64_t a, uint64_t b, uint64_t t)
{
    return (uint64_t)((veil_u128)a * b % t);
}

static uint64_t inverse_mod_t(uint64_t a, uint64_t t)
{
    uint64_t inv = 0;
    veil_mod_inv(&inv, a % t, t, NULL);
    return inv;
}

static int64_t centered_mod_t(uint64_t v, uint64_t t)
{
    return v > t / 2 ? -(int64_t)(t - v) : (int64_t)v;
}

/* One modulus switch: divide by q_level (d = 0 mod t), one level down. */
static veil_status operand_switch(const veil_context *ctx, operand *o, veil_error *err)
{
    veil_status st = VEIL_OK;
    veil_rlwe_result next = {0};
    if (o->e.level == 0)
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "bgv: a ciphertext at level 0 cannot be switched down further");
    next.size = o->e.size;
    next.level = o->e.level - 1;
    for (size_t i = 0; i < o->e.size; i++) {
        VEIL_CHECK(veil_context_poly_new(&next.c[i], ctx, next.level, VEIL_FORM_EVAL, err));
        VEIL_CHECK(veil_poly_rescale_t(next.c[i], o->e.c[i], ctx->params.t, err));
    }
    const uint64_t t = ctx->params.t;
    o->factor = mulmod_t(o->factor, inverse_mod_t(ctx->ring->primes[o->e.level] % t, t), t);
    o->noise = log2_sum(o->noise - log2_q(ctx, o->e.level), floor_bits(ctx));
    operand_replace(o, &next);
done:
    veil_rlwe_result_drop(&next, NULL); /* empty unless a step failed */
    return st;
}

static veil_status operand_switch_to(const veil_context *ctx, operand *o, size_t level, veil_error *err)
{
    veil_status st = VEIL_OK;
    while (o->e.level > level) VEIL_CHECK(operand_switch(ctx, o, err));
done:
    return st;
}

/* o * k for an integer k (|k| < 2^62): the factor is kept, the noise grows by |k|. */
static veil_status operand_scale(const veil_context *ctx, operand *o, int64_t k, veil_error *err)
{
    veil_status st = VEIL_OK;
    veil_rlwe_result next = {0};
    next.size = o->e.size;
    next.level = o->e.level;
    for (size_t i = 0; i < o->e.size; i++) {
        VEIL_CHECK(veil_context_poly_new(&next.c[i], ctx, o->e.level, VEIL_FORM_EVAL, err));
        VEIL_CHECK(veil_poly_mul_scalar(next.c[i], o->e.c[i], k, err));
    }
    o->noise += log2(fabs((double)k) + 1.0);
    operand_replace(o, &next);
done:
    veil_rlwe_result_drop(&next, NULL); /* empty unless a step failed */
    return st;
}

/* Brings a and b to one level (switching the higher down) and one factor (scaling one of them). */
static veil_status operands_align(const veil_context *ctx, operand *a, operand *b, veil_error *err)
{
    veil_status st = VEIL_OK;
    const size_t level = a->e.level < b->e.level ? a->e.level : b->e.level;
    VEIL_CHECK(operand_switch_to(ctx, a, level, err));
    VEIL_CHECK(operand_switch_to(ctx, b, level, err));
    if (a->factor == b->factor) goto done;
    const uint64_t t = ctx->params.t;
    /* a * (f_b / f_a) has b's factor; b * (f_a / f_b) has a's: scale by the smaller multiplier */
    const int64_t ka = centered_mod_t(mulmod_t(b->factor, inverse_mod_t(a->factor, t), t), t);
    const int64_t kb = centered_mod_t(mulmod_t(a->factor, inverse_mod_t(b->factor, t), t), t);
    if (llabs(ka) <= llabs(kb)) {
        VEIL_CHECK(operand_scale(ctx, a, ka, err));
        a->factor = b->factor;
    } else {
        VEIL_CHECK(operand_scale(ctx, b, kb, err));
        b->factor = a->factor;
    }
done:
    return st;
}

/* Switching before a product pays when the noise is above floor + log2(q_l) / 2 (see veil/bgv.h). */
static veil_status operand_prepare_for_product(const veil_context *ctx, operand *o, veil_error *err)
{
    veil_status st = VEIL_OK;
    const double floor = floor_bits(ctx);
    while (o->e.level > 0 && o->noise > floor + log2_q(ctx, o->e.level) / 2) VEIL_CHECK(operand_switch(ctx, o, err));
done:
    return st;
}

/* ---- checks and results ----------------------------------------------------------------------------- */

static veil_status check_ct(const veil_context *ctx, const veil_bgv_ciphertext *ct, const char *op, veil_error *err)
{
    return veil_rlwe_check_element(ctx, veil_bgv_element(ct), op, err);
}

static veil_status check_out(const veil_context *ctx, const veil_bgv_ciphertext *out, const char *op, veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(out, err);
    return veil_rlwe_check_output(ctx, &out->el, op, err);
}

static veil_status check_pt(const veil_context *ctx, const veil_bgv_plaintext *pt, const char *op, veil_error *err)
{
    if (!pt) return veil_fail(err, VEIL_ERR_NULL, "%s: the plaintext is NULL", op);
    if (pt->ctx != ctx) return veil_fail(err, VEIL_ERR_MISMATCH, "%s: the plaintext belongs to another context", op);
    return VEIL_OK;
}

/* Moves a complete result into out (out may have been an input: its old polynomials go now). */
static void commit(veil_bgv_ciphertext *out, veil_rlwe_result *r, uint64_t factor, double noise)
{
    veil_rlwe_result_commit(&out->el, r);
    out->factor = factor;
    out->noise_bits = noise;
}

/* Moves an operand into out, copying polynomials it only borrows. */
static veil_status commit_operand(const veil_context *ctx, veil_bgv_ciphertext *out, operand *o, veil_error *err)
{
    veil_status st = VEIL_OK;
    veil_rlwe_result r = {0};
    if (o->owned) {
        r.size = o->e.size;
        r.level = o->e.level;
        for (size_t i = 0; i < o->e.size; i++) r.c[i] = o->e.c[i];
        o->owned = false;
    } else {
        VEIL_CHECK(veil_rlwe_result_init(&r, ctx, o->e.size, o->e.level, err));
        veil_rlwe_map(ctx, r.c, &o->e, o->e.level, VEIL_LIMB_COPY);
    }
    const uint64_t factor = o->factor;
    const double noise = o->noise;
    operand_release(o);
    commit(out, &r, factor, noise);
done:
    veil_rlwe_result_drop(&r, NULL); /* empty unless a step failed */
    return st;
}

/* The plaintext times k (mod t), centered, lifted to a polynomial over q_0..q_level in evaluation form. */
static veil_status lift_plain(const veil_context *ctx, veil_poly **out, const uint64_t *m, uint64_t k, size_t level,
                              veil_error *err)
{
    veil_status st = VEIL_OK;
    const size_t n = ctx->params.n;
    const uint64_t t = ctx->params.t;
    int64_t *v = veil_alloc(n, sizeof *v);
    if (!v) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "bgv: out of memory");
    for (size_t j = 0; j < n; j++) v[j] = centered_mod_t(mulmod_t(m[j], k, t), t);
    VEIL_CHECK(veil_context_poly_new(out, ctx, level, VEIL_FORM_COEFF, err));
    VEIL_CHECK(veil_poly_set_i64(*out, v, err));
    VEIL_CHECK(veil_poly_to_eval(*out, err));
done:
    veil_free_secret(v, n * sizeof *v);
    return st;
}

/* ---- encryption and decryption ---------------------------------------------------------------------- */

static veil_status encrypt(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_plaintext *pt,
                           const veil_public_key *pk, const veil_secret_key *sk, veil_prng *prng, veil_error *err)
{
    veil_status st = VEIL_OK;
    veil_prng *use = NULL, *owned = NULL;
    veil_rlwe_result r = {0};
    veil_poly *m = NULL;
    uint8_t seed[VEIL_SEED_BYTES];
    VEIL_CHECK(check_out(ctx, out, "encrypt", err));
    VEIL_CHECK(check_pt(ctx, pt, "encrypt", err));
    if ((pk && pk->ctx != ctx) || (sk && sk->ctx != ctx))
        VEIL_FAIL(err, VEIL_ERR_MISMATCH, "encrypt: the key belongs to another context");
    VEIL_CHECK(veil_prng_or_os(&use, &owned, prng, err));
    const size_t level = ctx->q_count - 1;
    VEIL_CHECK(veil_rlwe_result_init(&r, ctx, 2, level, err));
    if (pk) VEIL_CHECK(veil_encrypt_zero_pk(ctx, r.c[0], r.c[1], level, pk, use, err));
    else VEIL_CHECK(veil_encrypt_zero_sk(ctx, r.c[0], r.c[1], level, sk, seed, use, err));
    VEIL_CHECK(lift_plain(ctx, &m, pt->m, 1, level, err));
    veil_limbwise(ctx, r.c[0], r.c[0], m, level, VEIL_LIMB_ADD);
    const double pk_noise = log2((double)ctx->params.t) + log2(1.0 + 6.0 * sqrt(secret_weight(ctx) / 12.0)) + 0.1;
    commit(out, &r, 1, pk ? pk_noise : fresh_sk_bits(ctx));
    if (sk) {
        out->el.seeded = true;
        memcpy(out->el.seed, seed, sizeof seed);
    }
done:
    veil_rlwe_result_drop(&r, NULL); /* empty unless a step failed */
    veil_poly_free(m);
    veil_prng_free(owned);
    return st;
}

veil_status veil_bgv_encrypt_pk(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_plaintext *pt,
                                const veil_public_key *pk, veil_prng *prng, veil_error *err)
{
    VEIL_REQUIRE(pk, err);
    return encrypt(ctx, out, pt, pk, NULL, prng, err);
}

veil_status veil_bgv_encrypt_sk(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_plaintext *pt,
                                const veil_secret_key *sk, veil_prng *prng, veil_error *err)
{
    VEIL_REQUIRE(sk, err);
    return encrypt(ctx, out, pt, NULL, sk, prng, err);
}

/* log2 of the largest |phase| coefficient, and the budget log2(Q_l) - 1 - that. */
static veil_status measure_budget(const veil_context *ctx, const veil_bgv_ciphertext *ct, const veil_secret_key *sk,
                                  double *budget, veil_error *err)
{
    veil_status st = VEIL_OK;
    const size_t n = ctx->params.n;
    veil_poly *phase = NULL;
    double *v = veil_alloc(n, sizeof *v);
    if (!v) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "bgv: out of memory");
    VEIL_CHECK(veil_decrypt_phase(ctx, &phase, ct->el.c, ct->el.size, ct->el.level, sk, err));
    VEIL_CHECK(veil_poly_to_coeff(phase, err));
    VEIL_CHECK(veil_poly_centered_doubles(v, phase, err));
    double worst = 0;
    for (size_t j = 0; j < n; j++) worst = fmax(worst, fabs(v[j]));
    const double b = level_bits(ctx, ct->el.level) - 1 - log2(worst + 1);
    *budget = b > 0 ? b : 0;
done:
    veil_poly_free(phase);
    veil_free_secret(v, n * sizeof *v);
    return st;
}

veil_status veil_bgv_noise_budget(const veil_context *ctx, double *bits, const veil_bgv_ciphertext *ct,
                                  const veil_secret_key *sk, veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(bits, err);
    VEIL_REQUIRE(sk, err);
    veil_status st = VEIL_OK;
    VEIL_CHECK(check_ct(ctx, ct, "noise_budget", err));
    if (sk->ctx != ctx) VEIL_FAIL(err, VEIL_ERR_MISMATCH, "noise_budget: the key belongs to another context");
    VEIL_CHECK(measure_budget(ctx, ct, sk, bits, err));
done:
    return st;
}


/*
 * The phase's centered value modulo t, coefficient by coefficient, without big integers: with y_i =
 * x_i (Q/q_i)^-1 mod q_i, x = sum_i y_i (Q/q_i) - v Q where v = round(sum_i y_i / q_i) gives the centered
 * representative (Halevi-Polyakov-Shoup 2019, section 2.3); the fraction f = sum y_i / q_i - v is x / Q,
 * so |f| > 1/4 means the phase reached Q/4: no budget left.
 */
static veil_status phase_mod_t(const veil_context *ctx, uint64_t *out, const veil_poly *phase, size_t level,
                               uint64_t factor_inverse, veil_error *err)
{
    const veil_ring *r = ctx->ring;
    const size_t n = r->n, k = level + 1;
    const uint64_t t = ctx->params.t;
    uint64_t inv[VEIL_PARAMS_MAX_PRIMES], inv_shoup[VEIL_PARAMS_MAX_PRIMES], rest_t[VEIL_PARAMS_MAX_PRIMES];
    double recip[VEIL_PARAMS_MAX_PRIMES];
    uint64_t q_t = 1; /* Q mod t */
    for (size_t i = 0; i < k; i++) {
        const uint64_t q = r->primes[i];
        uint64_t rest_q = 1, rt = 1; /* (Q / q_i) mod q_i and mod t */
        for (size_t j = 0; j < k; j++) {
            if (j == i) continue;
            rest_q = veil_mulmod(&r->mod[i], rest_q, r->primes[j] % q);
            rt = mulmod_t(rt, r->primes[j] % t, t);
        }
        veil_mod_inv(&inv[i], rest_q, q, NULL);
        inv_shoup[i] = veil_shoup_precompute(inv[i], q);
        rest_t[i] = rt;
        recip[i] = 1.0 / (double)q;
        q_t = mulmod_t(q_t, q % t, t);
    }
    double worst = 0;
    for (size_t j = 0; j < n; j++) {
        veil_u128 acc = 0;
        double frac = 0;
        for (size_t i = 0; i < k; i++) {
            const uint64_t y = veil_mulmod_shoup(veil_poly_limb_const(phase, i)[j], inv[i], inv_shoup[i], r->primes[i]);
            acc += (veil_u128)(y % t) * rest_t[i];
            frac += (double)y * recip[i];
        }
        const double v = nearbyint(frac);
        worst = fmax(worst, fabs(frac - v));
        const uint64_t vq = mulmod_t((uint64_t)v % t, q_t, t);
        const uint64_t x = (uint64_t)(acc % t);
        out[j] = mulmod_t((x + t - vq) % t, factor_inverse, t);
    }
    if (worst > 0.25)
        return veil_fail(err, VEIL_ERR_NOISE,
                         "decrypt: the ciphertext's noise budget is exhausted (the phase reaches %.2f of the modulus at "
                         "level %zu): the result would be wrong; use larger parameters or fewer operations",
                         worst, level);
    return VEIL_OK;
}

veil_status veil_bgv_decrypt(const veil_context *ctx, veil_bgv_plaintext *out, const veil_bgv_ciphertext *ct,
                             const veil_secret_key *sk, veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(sk, err);
    veil_status st = VEIL_OK;
    const size_t n = ctx->params.n;
    veil_poly *phase = NULL;
    uint64_t *m = NULL;
    VEIL_CHECK(check_ct(ctx, ct, "decrypt", err));
    VEIL_CHECK(check_pt(ctx, out, "decrypt", err));
    if (sk->ctx != ctx) VEIL_FAIL(err, VEIL_ERR_MISMATCH, "decrypt: the key belongs to another context");
    m = veil_alloc(n, sizeof *m);
    if (!m) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "decrypt: out of memory");
    VEIL_CHECK(veil_decrypt_phase(ctx, &phase, ct->el.c, ct->el.size, ct->el.level, sk, err));
    VEIL_CHECK(veil_poly_to_coeff(phase, err));
    VEIL_CHECK(phase_mod_t(ctx, m, phase, ct->el.level, inverse_mod_t(ct->factor, ctx->params.t), err));
    memcpy(out->m, m, n * sizeof *m); /* only a correct result reaches out */
done:
    veil_poly_free(phase);
    if (m) veil_free_secret(m, n * sizeof *m);
    return st;
}

veil_status veil_bgv_decode_phase(const veil_context *ctx, veil_bgv_plaintext *out, veil_poly *phase,
                                  const veil_bgv_ciphertext *ct, veil_error *err)
{
    veil_status st = VEIL_OK;
    const size_t n = ctx->params.n;
    uint64_t *m = NULL;
    VEIL_CHECK(check_pt(ctx, out, "joint decryption", err));
    m = veil_alloc(n, sizeof *m);
    if (!m) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "joint decryption: out of memory");
    VEIL_CHECK(veil_poly_to_coeff(phase, err));
    VEIL_CHECK(phase_mod_t(ctx, m, phase, ct->el.level, inverse_mod_t(ct->factor, ctx->params.t), err));
    memcpy(out->m, m, n * sizeof *m);
done:
    if (m) veil_free_secret(m, n * sizeof *m);
    return st;
}

/* ---- the evaluator ---------------------------------------------------------------------------------- */

static veil_status add_sub(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                           const veil_bgv_ciphertext *b, veil_limb_op op, const char *name, veil_error *err)
{
    veil_status st = VEIL_OK;
    operand x = {0}, y = {0};
    veil_rlwe_result r = {0};
    VEIL_CHECK(check_out(ctx, out, name, err));
    VEIL_CHECK(check_ct(ctx, a, name, err));
    VEIL_CHECK(check_ct(ctx, b, name, err));
    operand_view(&x, a);
    operand_view(&y, b);
    const size_t size = x.e.size > y.e.size ? x.e.size : y.e.size;
    VEIL_CHECK(operands_align(ctx, &x, &y, err));
    VEIL_CHECK(veil_rlwe_result_init(&r, ctx, size, x.e.level, err));
    veil_rlwe_add_sub(ctx, r.c, &x.e, &y.e, x.e.level, op);
    commit(out, &r, x.factor, log2_sum(x.noise, y.noise));
done:
    veil_rlwe_result_drop(&r, NULL); /* empty unless a step failed */
    operand_release(&x);
    operand_release(&y);
    return st;
}

veil_status veil_bgv_add(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                         const veil_bgv_ciphertext *b, veil_error *err)
{
    return add_sub(ctx, out, a, b, VEIL_LIMB_ADD, "add", err);
}

veil_status veil_bgv_sub(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                         const veil_bgv_ciphertext *b, veil_error *err)
{
    return add_sub(ctx, out, a, b, VEIL_LIMB_SUB, "sub", err);
}

veil_status veil_bgv_negate(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                            veil_error *err)
{
    veil_status st = VEIL_OK;
    veil_rlwe_result r = {0};
    VEIL_CHECK(check_out(ctx, out, "negate", err));
    VEIL_CHECK(check_ct(ctx, a, "negate", err));
    VEIL_CHECK(veil_rlwe_result_init(&r, ctx, a->el.size, a->el.level, err));
    veil_rlwe_map(ctx, r.c, &a->el, a->el.level, VEIL_LIMB_NEG);
    commit(out, &r, a->factor, a->noise_bits);
done:
    veil_rlwe_result_drop(&r, NULL); /* empty unless a step failed */
    return st;
}

static veil_status plain_op(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                            const veil_bgv_plaintext *p, int kind, const char *name, veil_error *err)
{
    veil_status st = VEIL_OK;
    veil_poly *m = NULL;
    veil_rlwe_result r = {0};
    VEIL_CHECK(check_out(ctx, out, name, err));
    VEIL_CHECK(check_ct(ctx, a, name, err));
    VEIL_CHECK(check_pt(ctx, p, name, err));
    const uint64_t t = ctx->params.t;
    const size_t level = a->el.level;
    /* added messages must carry a's factor; a product keeps it */
    VEIL_CHECK(lift_plain(ctx, &m, p->m, kind == 2 ? 1 : a->factor, level, err));
    VEIL_CHECK(veil_rlwe_result_init(&r, ctx, a->el.size, level, err));
    for (size_t i = 0; i < a->el.size; i++) {
        if (kind == 2) veil_limb_products(ctx, r.c[i], a->el.c[i], m, level, false);
        else if (i == 0) veil_limbwise(ctx, r.c[0], a->el.c[0], m, level, kind ? VEIL_LIMB_SUB : VEIL_LIMB_ADD);
        else veil_limbwise(ctx, r.c[i], a->el.c[i], NULL, level, VEIL_LIMB_COPY);
    }
    const double n = (double)ctx->params.n;
    const double noise = kind == 2 ? a->noise_bits + log2((double)t) + 0.5 * log2(n) - 1
                                   : log2_sum(a->noise_bits, log2((double)t) - 1);
    commit(out, &r, a->factor, noise);
done:
    veil_rlwe_result_drop(&r, NULL); /* empty unless a step failed */
    veil_poly_free(m);
    return st;
}

veil_status veil_bgv_add_plain(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                               const veil_bgv_plaintext *p, veil_error *err)
{
    return plain_op(ctx, out, a, p, 0, "add_plain", err);
}

veil_status veil_bgv_sub_plain(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                               const veil_bgv_plaintext *p, veil_error *err)
{
    return plain_op(ctx, out, a, p, 1, "sub_plain", err);
}

veil_status veil_bgv_mul_plain(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                               const veil_bgv_plaintext *p, veil_error *err)
{
    return plain_op(ctx, out, a, p, 2, "mul_plain", err);
}

static uint64_t scalar_mod_t(int64_t k, uint64_t t)
{
    const uint64_t mag = k < 0 ? (uint64_t)(-(k + 1)) + 1 : (uint64_t)k;
    const uint64_t r = mag % t;
    return k < 0 ? (t - r) % t : r;
}

veil_status veil_bgv_add_scalar(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                                int64_t k, veil_error *err)
{
    veil_status st = VEIL_OK;
    veil_rlwe_result r = {0};
    VEIL_CHECK(check_out(ctx, out, "add_scalar", err));
    VEIL_CHECK(check_ct(ctx, a, "add_scalar", err));
    const uint64_t t = ctx->params.t;
    /* a constant polynomial has the same value in every NTT position */
    const int64_t v = centered_mod_t(mulmod_t(scalar_mod_t(k, t), a->factor, t), t);
    VEIL_CHECK(veil_rlwe_result_init(&r, ctx, a->el.size, a->el.level, err));
    veil_rlwe_map(ctx, r.c, &a->el, a->el.level, VEIL_LIMB_COPY);
    const veil_ring *ring = ctx->ring;
    for (size_t l = 0; l <= a->el.level; l++) {
        const uint64_t q = ring->primes[l], kv = veil_reduce_i64(&ring->mod[l], v);
        uint64_t *x = veil_poly_limb(r.c[0], l);
        for (size_t j = 0; j < ring->n; j++) x[j] = veil_addmod(x[j], kv, q);
    }
    commit(out, &r, a->factor, log2_sum(a->noise_bits, log2((double)t) - 1));
done:
    veil_rlwe_result_drop(&r, NULL); /* empty unless a step failed */
    return st;
}

veil_status veil_bgv_mul_scalar(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                                int64_t k, veil_error *err)
{
    veil_status st = VEIL_OK;
    operand o = {0};
    VEIL_CHECK(check_out(ctx, out, "mul_scalar", err));
    VEIL_CHECK(check_ct(ctx, a, "mul_scalar", err));
    operand_view(&o, a);
    VEIL_CHECK(operand_scale(ctx, &o, centered_mod_t(scalar_mod_t(k, ctx->params.t), ctx->params.t), err));
    VEIL_CHECK(commit_operand(ctx, out, &o, err));
done:
    operand_release(&o);
    return st;
}

#define LINEAR_MAX_WEIGHT ((int64_t)1 << 20)

/*
 * One residue polynomial of sum_i k_i a_i mod q. A term adds x |k| when k > 0 and (q - x) |k| when k < 0,
 * both below 2^80, so 2^40 terms fit a 128-bit accumulator before the one reduction per coefficient.
 */
static void linear_limb(uint64_t *out, const veil_bgv_ciphertext *const *a, const int64_t *k, size_t count,
                        size_t poly, size_t limb, uint64_t q, size_t n, veil_u128 *acc)
{
    memset(acc, 0, n * sizeof *acc);
    for (size_t i = 0; i < count; i++) {
        if (k[i] == 0) continue;
        const uint64_t *x = veil_poly_limb_const(a[i]->el.c[poly], limb), w = (uint64_t)(k[i] < 0 ? -k[i] : k[i]);
        if (k[i] > 0)
            for (size_t j = 0; j < n; j++) acc[j] += (veil_u128)x[j] * w;
        else
            for (size_t j = 0; j < n; j++) acc[j] += (veil_u128)(q - x[j]) * w;
    }
    for (size_t j = 0; j < n; j++) out[j] = (uint64_t)(acc[j] % q);
}

/* Checks the terms of a linear combination; their total weight and largest noise. */
static veil_status linear_terms(const veil_context *ctx, const veil_bgv_ciphertext *const *a, const int64_t *k,
                                size_t count, double *weight, double *noise, veil_error *err)
{
    veil_status st = VEIL_OK;
    *weight = 0;
    *noise = 0;
    for (size_t i = 0; i < count; i++) {
        VEIL_CHECK(check_ct(ctx, a[i], "linear_combination", err));
        if (a[i]->el.size != a[0]->el.size || a[i]->el.level != a[0]->el.level || a[i]->factor != a[0]->factor)
            VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "linear_combination: term %zu differs from the first in size, level or "
                      "factor", i);
        if (k[i] <= -LINEAR_MAX_WEIGHT || k[i] >= LINEAR_MAX_WEIGHT)
            VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "linear_combination: weight %lld of term %zu is not below 2^20 in "
                      "magnitude", (long long)k[i], i);
        if (k[i] == 0) continue;
        *weight += fabs((double)k[i]);
        *noise = fmax(*noise, a[i]->noise_bits);
    }
done:
    return st;
}

veil_status veil_bgv_linear_combination(const veil_context *ctx, veil_bgv_ciphertext *out,
                                        const veil_bgv_ciphertext *const *a, const int64_t *k, size_t count,
                                        int64_t bias, veil_error *err)
{
    veil_status st = VEIL_OK;
    veil_u128 *acc = NULL;
    veil_rlwe_result r = {0};
    double weight = 0, noise = 0;
    VEIL_CHECK(check_out(ctx, out, "linear_combination", err));
    VEIL_REQUIRE(a, err);
    VEIL_REQUIRE(k, err);
    if (count == 0) VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "linear_combination: no terms");
    VEIL_CHECK(linear_terms(ctx, a, k, count, &weight, &noise, err));
    const veil_bgv_ciphertext *first = a[0];
    const size_t size = first->el.size, level = first->el.level, n = ctx->ring->n;
    const uint64_t t = ctx->params.t, factor = first->factor;
    acc = malloc(n * sizeof *acc);
    if (!acc) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "linear_combination");
    VEIL_CHECK(veil_rlwe_result_init(&r, ctx, size, level, err));
    /* the bias enters as bias * factor, so that the sum decrypts to (sum k_i m_i + bias) * factor */
    const int64_t v = centered_mod_t(mulmod_t(scalar_mod_t(bias, t), factor, t), t);
    for (size_t p = 0; p < size; p++)
        for (size_t l = 0; l <= level; l++) {
            const uint64_t q = ctx->ring->primes[l];
            uint64_t *o = veil_poly_limb(r.c[p], l);
            linear_limb(o, a, k, count, p, l, q, n, acc);
            if (p == 0 && v != 0) {
                const uint64_t kv = veil_reduce_i64(&ctx->ring->mod[l], v);
                for (size_t j = 0; j < n; j++) o[j] = veil_addmod(o[j], kv, q);
            }
        }
    /* |sum k_i (m_i + t e_i)| <= sum |k_i| max |m_i + t e_i|, plus the bias below t/2 */
    noise = weight > 0 ? noise + log2(weight) : 0;
    if (v != 0) noise = weight > 0 ? log2_sum(noise, log2((double)t) - 1) : log2((double)t) - 1;
    commit(out, &r, factor, noise);
done:
    veil_rlwe_result_drop(&r, NULL); /* empty unless a step failed */
    free(acc);
    return st;
}

veil_status veil_bgv_mul(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                         const veil_bgv_ciphertext *b, veil_error *err)
{
    veil_status st = VEIL_OK;
    operand x = {0}, y = {0};
    veil_rlwe_result r = {0};
    VEIL_CHECK(check_out(ctx, out, "mul", err));
    VEIL_CHECK(check_ct(ctx, a, "mul", err));
    VEIL_CHECK(check_ct(ctx, b, "mul", err));
    if (a->el.size != 2 || b->el.size != 2)
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "mul: relinearize the operands first (sizes %zu and %zu)", a->el.size,
                  b->el.size);
    operand_view(&x, a);
    operand_view(&y, b);
    VEIL_CHECK(operand_prepare_for_product(ctx, &x, err));
    VEIL_CHECK(operand_prepare_for_product(ctx, &y, err));
    const size_t level = x.e.level < y.e.level ? x.e.level : y.e.level;
    VEIL_CHECK(operand_switch_to(ctx, &x, level, err));
    VEIL_CHECK(operand_switch_to(ctx, &y, level, err));
    VEIL_CHECK(veil_rlwe_result_init(&r, ctx, 3, level, err));
    /* (x0 + x1 s)(y0 + y1 s) = x0 y0 + (x0 y1 + x1 y0) s + x1 y1 s^2 */
    veil_limb_products(ctx, r.c[0], x.e.c[0], y.e.c[0], level, false);
    veil_limb_products(ctx, r.c[1], x.e.c[0], y.e.c[1], level, false);
    veil_limb_products(ctx, r.c[1], x.e.c[1], y.e.c[0], level, true);
    veil_limb_products(ctx, r.c[2], x.e.c[1], y.e.c[1], level, false);
    const double noise = x.noise + y.noise + 0.5 * log2((double)ctx->params.n);
    commit(out, &r, mulmod_t(x.factor, y.factor, ctx->params.t), noise);
done:
    veil_rlwe_result_drop(&r, NULL); /* empty unless a step failed */
    operand_release(&x);
    operand_release(&y);
    return st;
}

veil_status veil_bgv_square(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                            veil_error *err)
{
    return veil_bgv_mul(ctx, out, a, a, err);
}

veil_status veil_bgv_relinearize(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                                 const veil_switch_key *relin_key, veil_error *err)
{
    veil_status st = VEIL_OK;
    operand o = {0};
    veil_rlwe_result r = {0};
    VEIL_CHECK(check_out(ctx, out, "relinearize", err));
    VEIL_CHECK(check_ct(ctx, a, "relinearize", err));
    VEIL_CHECK(veil_rlwe_check_switch_key(ctx, relin_key, 0, "relinearize", err));
    if (a->el.size == 2) { /* nothing to do: a copy */
        operand_view(&o, a);
        VEIL_CHECK(commit_operand(ctx, out, &o, err));
        goto done;
    }
    VEIL_CHECK(veil_rlwe_result_init(&r, ctx, 2, a->el.level, err));
    VEIL_CHECK(veil_rlwe_relinearize(ctx, r.c, &a->el, relin_key, err));
    commit(out, &r, a->factor, log2_sum(a->noise_bits, keyswitch_bits(ctx)));
done:
    veil_rlwe_result_drop(&r, NULL); /* empty unless a step failed */
    operand_release(&o);
    return st;
}

veil_status veil_bgv_mul_relin(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                               const veil_bgv_ciphertext *b, const veil_switch_key *relin_key, veil_error *err)
{
    veil_status st = VEIL_OK;
    /* checked first, so that a bad key leaves an aliased output untouched */
    VEIL_CHECK(check_out(ctx, out, "mul_relin", err));
    VEIL_CHECK(veil_rlwe_check_switch_key(ctx, relin_key, 0, "mul_relin", err));
    VEIL_CHECK(veil_bgv_mul(ctx, out, a, b, err));
    VEIL_CHECK(veil_bgv_relinearize(ctx, out, out, relin_key, err));
done:
    return st;
}

veil_status veil_bgv_power(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                           uint64_t e, const veil_switch_key *relin_key, veil_error *err)
{
    veil_status st = VEIL_OK;
    veil_bgv_ciphertext *base = NULL, *acc = NULL;
    operand o = {0};
    VEIL_CHECK(check_out(ctx, out, "power", err));
    VEIL_CHECK(check_ct(ctx, a, "power", err));
    VEIL_CHECK(veil_rlwe_check_switch_key(ctx, relin_key, 0, "power", err));
    if (e == 0) VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "power: exponent 0 (encrypt a 1 instead)");
    VEIL_CHECK(veil_bgv_ciphertext_new(&base, ctx, err));
    VEIL_CHECK(veil_bgv_ciphertext_new(&acc, ctx, err));
    VEIL_CHECK(veil_bgv_relinearize(ctx, base, a, relin_key, err)); /* a copy of size 2 */
    bool started = false;
    /* right-to-left binary exponentiation: acc *= base for every set bit, base squared in between */
    while (e) {
        if (e & 1) {
            VEIL_CHECK(started ? veil_bgv_mul_relin(ctx, acc, acc, base, relin_key, err)
                               : veil_bgv_relinearize(ctx, acc, base, relin_key, err));
            started = true;
        }
        e >>= 1;
        if (e) VEIL_CHECK(veil_bgv_mul_relin(ctx, base, base, base, relin_key, err));
    }
    operand_view(&o, acc);
    VEIL_CHECK(commit_operand(ctx, out, &o, err));
done:
    operand_release(&o);
    veil_bgv_ciphertext_free(base);
    veil_bgv_ciphertext_free(acc);
    return st;
}

veil_status veil_bgv_mod_switch_to(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                                   size_t level, veil_error *err)
{
    veil_status st = VEIL_OK;
    operand o = {0};
    VEIL_CHECK(check_out(ctx, out, "mod_switch", err));
    VEIL_CHECK(check_ct(ctx, a, "mod_switch", err));
    if (level > a->el.level)
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "mod_switch: cannot raise a ciphertext from level %zu to %zu", a->el.level,
                  level);
    operand_view(&o, a);
    VEIL_CHECK(operand_switch_to(ctx, &o, level, err));
    VEIL_CHECK(commit_operand(ctx, out, &o, err));
done:
    operand_release(&o);
    return st;
}

veil_status veil_bgv_mod_switch(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                                veil_error *err)
{
    veil_status st = VEIL_OK;
    VEIL_CHECK(check_ct(ctx, a, "mod_switch", err));
    if (a->el.level == 0)
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "mod_switch: the ciphertext is at level 0, no prime left to drop");
    VEIL_CHECK(veil_bgv_mod_switch_to(ctx, out, a, a->el.level - 1, err));
done:
    return st;
}

veil_status veil_bgv_apply_galois(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                                  uint64_t galois, const veil_switch_key *key, const char *op, veil_error *err)
{
    veil_status st = VEIL_OK;
    operand o = {0};
    veil_rlwe_result r = {0};
    VEIL_CHECK(check_out(ctx, out, op, err));
    VEIL_CHECK(check_ct(ctx, a, op, err));
    if (a->el.size != 2) VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "%s: relinearize the ciphertext first", op);
    if (galois == 1) { /* a rotation by 0 columns: a copy */
        operand_view(&o, a);
        VEIL_CHECK(commit_operand(ctx, out, &o, err));
        goto done;
    }
    VEIL_CHECK(veil_rlwe_check_switch_key(ctx, key, galois, op, err));
    VEIL_CHECK(veil_rlwe_result_init(&r, ctx, 2, a->el.level, err));
    VEIL_CHECK(veil_rlwe_apply_galois(ctx, r.c, &a->el, galois, key, err));
    commit(out, &r, a->factor, log2_sum(a->noise_bits, keyswitch_bits(ctx)));
done:
    veil_rlwe_result_drop(&r, NULL); /* empty unless a step failed */
    operand_release(&o);
    return st;
}

veil_status veil_bgv_rotate_rows(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                                 long steps, const veil_switch_key *galois_key, veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    return veil_bgv_apply_galois(ctx, out, a, veil_galois_element_rotation(ctx, steps), galois_key, "rotate_rows", err);
}

veil_status veil_bgv_swap_columns(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                                  const veil_switch_key *galois_key, veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    return veil_bgv_apply_galois(ctx, out, a, veil_galois_element_conjugation(ctx), galois_key, "swap_columns", err);
}
