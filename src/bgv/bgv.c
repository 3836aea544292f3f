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
    if (ctx->params.t == 0) return veil_fail(err, VEIL_ERR_MISMATCH, "bgv ciphertext: a CKKS parameter set");
    *out = veil_alloc(1, sizeof **out);
    if (!*out) return veil_fail(err, VEIL_ERR_NO_MEMORY, "bgv ciphertext: out of memory");
    (*out)->ctx = ctx;
    return VEIL_OK;
}

void veil_bgv_ciphertext_free(veil_bgv_ciphertext *ct)
{
    if (!ct) return;
    for (int i = 0; i < 3; i++) veil_poly_free(ct->c[i]);
    veil_free(ct);
}

size_t veil_bgv_ciphertext_level(const veil_bgv_ciphertext *ct) { return ct ? ct->level : 0; }
size_t veil_bgv_ciphertext_size(const veil_bgv_ciphertext *ct) { return ct ? ct->size : 0; }

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
    if (!ct || ct->size < 2) return 0;
    const double b = level_bits(ct->ctx, ct->level) - 1 - ct->noise_bits;
    return b > 0 ? b : 0;
}

/* ---- operands: views of ciphertexts, switched and scaled without touching the originals ------------ */

typedef struct operand {
    veil_poly *c[3];
    bool owned; /* c[] are ours (switched or scaled copies), not the ciphertext's */
    size_t size, level;
    uint64_t factor;
    double noise;
} operand;

static void operand_view(operand *o, const veil_bgv_ciphertext *ct)
{
    memset(o, 0, sizeof *o);
    for (size_t i = 0; i < ct->size; i++) o->c[i] = ct->c[i];
    o->size = ct->size;
    o->level = ct->level;
    o->factor = ct->factor;
    o->noise = ct->noise_bits;
}

static void operand_release(operand *o)
{
    if (o->owned)
        for (int i = 0; i < 3; i++) veil_poly_free(o->c[i]);
    memset(o, 0, sizeof *o);
}

static void operand_replace(operand *o, veil_poly *const *c)
{
    if (o->owned)
        for (size_t i = 0; i < o->size; i++) veil_poly_free(o->c[i]);
    for (size_t i = 0; i < o->size; i++) o->c[i] = c[i];
    o->owned = true;
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
    if (o->level == 0)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "bgv: a ciphertext at level 0 cannot be switched down further");
    veil_poly *next[3] = {NULL, NULL, NULL};
    veil_status st = VEIL_OK;
    for (size_t i = 0; i < o->size && st == VEIL_OK; i++) {
        st = veil_context_poly_new(&next[i], ctx, o->level - 1, VEIL_FORM_EVAL, err);
        if (st == VEIL_OK) st = veil_poly_rescale_t(next[i], o->c[i], ctx->params.t, err);
    }
    if (st != VEIL_OK) {
        for (int i = 0; i < 3; i++) veil_poly_free(next[i]);
        return st;
    }
    const uint64_t t = ctx->params.t;
    o->factor = mulmod_t(o->factor, inverse_mod_t(ctx->ring->primes[o->level] % t, t), t);
    o->noise = log2_sum(o->noise - log2_q(ctx, o->level), floor_bits(ctx));
    o->level--;
    operand_replace(o, next);
    return VEIL_OK;
}

static veil_status operand_switch_to(const veil_context *ctx, operand *o, size_t level, veil_error *err)
{
    while (o->level > level) VEIL_TRY(operand_switch(ctx, o, err));
    return VEIL_OK;
}

/* o * k for an integer k (|k| < 2^62): the factor is kept, the noise grows by |k|. */
static veil_status operand_scale(const veil_context *ctx, operand *o, int64_t k, veil_error *err)
{
    veil_poly *next[3] = {NULL, NULL, NULL};
    veil_status st = VEIL_OK;
    for (size_t i = 0; i < o->size && st == VEIL_OK; i++) {
        st = veil_context_poly_new(&next[i], ctx, o->level, VEIL_FORM_EVAL, err);
        if (st == VEIL_OK) st = veil_poly_mul_scalar(next[i], o->c[i], k, err);
    }
    if (st != VEIL_OK) {
        for (int i = 0; i < 3; i++) veil_poly_free(next[i]);
        return st;
    }
    o->noise += log2(fabs((double)k) + 1.0);
    operand_replace(o, next);
    return VEIL_OK;
}

/* Brings a and b to one level (switching the higher down) and one factor (scaling one of them). */
static veil_status operands_align(const veil_context *ctx, operand *a, operand *b, veil_error *err)
{
    const size_t level = a->level < b->level ? a->level : b->level;
    VEIL_TRY(operand_switch_to(ctx, a, level, err));
    VEIL_TRY(operand_switch_to(ctx, b, level, err));
    if (a->factor == b->factor) return VEIL_OK;
    const uint64_t t = ctx->params.t;
    /* a * (f_b / f_a) has b's factor; b * (f_a / f_b) has a's: scale by the smaller multiplier */
    const int64_t ka = centered_mod_t(mulmod_t(b->factor, inverse_mod_t(a->factor, t), t), t);
    const int64_t kb = centered_mod_t(mulmod_t(a->factor, inverse_mod_t(b->factor, t), t), t);
    if (llabs(ka) <= llabs(kb)) {
        VEIL_TRY(operand_scale(ctx, a, ka, err));
        a->factor = b->factor;
    } else {
        VEIL_TRY(operand_scale(ctx, b, kb, err));
        b->factor = a->factor;
    }
    return VEIL_OK;
}

/* Switching before a product pays when the noise is above floor + log2(q_l) / 2 (see veil/bgv.h). */
static veil_status operand_prepare_for_product(const veil_context *ctx, operand *o, veil_error *err)
{
    const double floor = floor_bits(ctx);
    while (o->level > 0 && o->noise > floor + log2_q(ctx, o->level) / 2) VEIL_TRY(operand_switch(ctx, o, err));
    return VEIL_OK;
}

/* ---- results ---------------------------------------------------------------------------------------- */

static veil_status check_ct(const veil_context *ctx, const veil_bgv_ciphertext *ct, const char *op, veil_error *err)
{
    if (!ct) return veil_fail(err, VEIL_ERR_NULL, "%s: a ciphertext argument is NULL", op);
    if (ct->ctx != ctx) return veil_fail(err, VEIL_ERR_MISMATCH, "%s: a ciphertext belongs to another context", op);
    if (ct->size < 2) return veil_fail(err, VEIL_ERR_ARGUMENT, "%s: a ciphertext is empty", op);
    return VEIL_OK;
}

static veil_status check_out(const veil_context *ctx, const veil_bgv_ciphertext *out, const char *op, veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(out, err);
    if (out->ctx != ctx) return veil_fail(err, VEIL_ERR_MISMATCH, "%s: the output ciphertext belongs to another context", op);
    return VEIL_OK;
}

static veil_status check_pt(const veil_context *ctx, const veil_bgv_plaintext *pt, const char *op, veil_error *err)
{
    if (!pt) return veil_fail(err, VEIL_ERR_NULL, "%s: the plaintext is NULL", op);
    if (pt->ctx != ctx) return veil_fail(err, VEIL_ERR_MISMATCH, "%s: the plaintext belongs to another context", op);
    return VEIL_OK;
}

static veil_status new_polys(const veil_context *ctx, veil_poly **c, size_t size, size_t level, veil_error *err)
{
    memset(c, 0, 3 * sizeof *c);
    for (size_t i = 0; i < size; i++) {
        veil_status st = veil_context_poly_new(&c[i], ctx, level, VEIL_FORM_EVAL, err);
        if (st != VEIL_OK) {
            for (size_t j = 0; j < i; j++) veil_poly_free(c[j]);
            return st;
        }
    }
    return VEIL_OK;
}

static void free_polys(veil_poly **c)
{
    for (int i = 0; i < 3; i++) veil_poly_free(c[i]);
}

/* Moves complete polynomials into out (out may have been an input: its old polynomials go now). */
static void commit(veil_bgv_ciphertext *out, veil_poly **c, size_t size, size_t level, uint64_t factor, double noise)
{
    for (int i = 0; i < 3; i++) {
        veil_poly_free(out->c[i]);
        out->c[i] = (size_t)i < size ? c[i] : NULL;
    }
    out->size = size;
    out->level = level;
    out->factor = factor;
    out->noise_bits = noise;
    out->seeded = false;
}

/* Moves an operand into out, copying polynomials it only borrows. */
static veil_status commit_operand(const veil_context *ctx, veil_bgv_ciphertext *out, operand *o, veil_error *err)
{
    veil_poly *c[3] = {NULL, NULL, NULL};
    if (o->owned) {
        for (size_t i = 0; i < o->size; i++) c[i] = o->c[i];
        o->owned = false;
    } else {
        VEIL_TRY(new_polys(ctx, c, o->size, o->level, err));
        for (size_t i = 0; i < o->size; i++) veil_limbwise(ctx, c[i], o->c[i], NULL, o->level, VEIL_LIMB_COPY);
    }
    const size_t size = o->size, level = o->level;
    const uint64_t factor = o->factor;
    const double noise = o->noise;
    operand_release(o);
    commit(out, c, size, level, factor, noise);
    return VEIL_OK;
}

/* The plaintext times k (mod t), centered, lifted to a polynomial over q_0..q_level in evaluation form. */
static veil_status lift_plain(const veil_context *ctx, veil_poly **out, const uint64_t *m, uint64_t k, size_t level,
                              veil_error *err)
{
    const size_t n = ctx->params.n;
    const uint64_t t = ctx->params.t;
    int64_t *v = veil_alloc(n, sizeof *v);
    if (!v) return veil_fail(err, VEIL_ERR_NO_MEMORY, "bgv: out of memory");
    for (size_t j = 0; j < n; j++) v[j] = centered_mod_t(mulmod_t(m[j], k, t), t);
    veil_status st = veil_context_poly_new(out, ctx, level, VEIL_FORM_COEFF, err);
    if (st == VEIL_OK) st = veil_poly_set_i64(*out, v, err);
    if (st == VEIL_OK) st = veil_poly_to_eval(*out, err);
    veil_free_secret(v, n * sizeof *v);
    return st;
}

/* ---- encryption and decryption ---------------------------------------------------------------------- */

static veil_status encrypt(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_plaintext *pt,
                           const veil_public_key *pk, const veil_secret_key *sk, veil_prng *prng, veil_error *err)
{
    VEIL_TRY(check_out(ctx, out, "encrypt", err));
    VEIL_TRY(check_pt(ctx, pt, "encrypt", err));
    if ((pk && pk->ctx != ctx) || (sk && sk->ctx != ctx))
        return veil_fail(err, VEIL_ERR_MISMATCH, "encrypt: the key belongs to another context");
    veil_prng *use, *owned;
    VEIL_TRY(veil_prng_or_os(&use, &owned, prng, err));
    const size_t level = ctx->q_count - 1;
    veil_poly *c[3], *m = NULL;
    uint8_t seed[VEIL_SEED_BYTES];
    veil_status st = new_polys(ctx, c, 2, level, err);
    if (st == VEIL_OK)
        st = pk ? veil_encrypt_zero_pk(ctx, c[0], c[1], level, pk, use, err)
                : veil_encrypt_zero_sk(ctx, c[0], c[1], level, sk, seed, use, err);
    if (st == VEIL_OK) st = lift_plain(ctx, &m, pt->m, 1, level, err);
    if (st == VEIL_OK) {
        veil_limbwise(ctx, c[0], c[0], m, level, VEIL_LIMB_ADD);
        const double pk_noise = log2((double)ctx->params.t) + log2(1.0 + 6.0 * sqrt(secret_weight(ctx) / 12.0)) + 0.1;
        commit(out, c, 2, level, 1, pk ? pk_noise : fresh_sk_bits(ctx));
        if (sk) {
            out->seeded = true;
            memcpy(out->seed, seed, sizeof seed);
        }
    } else {
        free_polys(c);
    }
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
    const size_t n = ctx->params.n;
    veil_poly *phase = NULL;
    double *v = veil_alloc(n, sizeof *v);
    veil_status st = v ? VEIL_OK : veil_fail(err, VEIL_ERR_NO_MEMORY, "bgv: out of memory");
    if (st == VEIL_OK) st = veil_decrypt_phase(ctx, &phase, ct->c, ct->size, ct->level, sk, err);
    if (st == VEIL_OK) st = veil_poly_to_coeff(phase, err);
    if (st == VEIL_OK) st = veil_poly_centered_doubles(v, phase, err);
    if (st == VEIL_OK) {
        double worst = 0;
        for (size_t j = 0; j < n; j++) worst = fmax(worst, fabs(v[j]));
        const double b = level_bits(ctx, ct->level) - 1 - log2(worst + 1);
        *budget = b > 0 ? b : 0;
    }
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
    VEIL_TRY(check_ct(ctx, ct, "noise_budget", err));
    if (sk->ctx != ctx) return veil_fail(err, VEIL_ERR_MISMATCH, "noise_budget: the key belongs to another context");
    return measure_budget(ctx, ct, sk, bits, err);
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
    VEIL_TRY(check_ct(ctx, ct, "decrypt", err));
    VEIL_TRY(check_pt(ctx, out, "decrypt", err));
    if (sk->ctx != ctx) return veil_fail(err, VEIL_ERR_MISMATCH, "decrypt: the key belongs to another context");
    const size_t n = ctx->params.n;
    veil_poly *phase = NULL;
    uint64_t *m = veil_alloc(n, sizeof *m);
    veil_status st = m ? VEIL_OK : veil_fail(err, VEIL_ERR_NO_MEMORY, "decrypt: out of memory");
    if (st == VEIL_OK) st = veil_decrypt_phase(ctx, &phase, ct->c, ct->size, ct->level, sk, err);
    if (st == VEIL_OK) st = veil_poly_to_coeff(phase, err);
    if (st == VEIL_OK)
        st = phase_mod_t(ctx, m, phase, ct->level, inverse_mod_t(ct->factor, ctx->params.t), err);
    if (st == VEIL_OK) memcpy(out->m, m, n * sizeof *m); /* only a correct result reaches out */
    veil_poly_free(phase);
    veil_free_secret(m, n * sizeof *m);
    return st;
}

/* ---- the evaluator ---------------------------------------------------------------------------------- */

static veil_status add_sub(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                           const veil_bgv_ciphertext *b, veil_limb_op op, const char *name, veil_error *err)
{
    VEIL_TRY(check_out(ctx, out, name, err));
    VEIL_TRY(check_ct(ctx, a, name, err));
    VEIL_TRY(check_ct(ctx, b, name, err));
    operand x, y;
    operand_view(&x, a);
    operand_view(&y, b);
    veil_poly *c[3] = {NULL, NULL, NULL};
    const size_t size = x.size > y.size ? x.size : y.size;
    veil_status st = operands_align(ctx, &x, &y, err);
    if (st == VEIL_OK) st = new_polys(ctx, c, size, x.level, err);
    if (st == VEIL_OK) {
        for (size_t i = 0; i < size; i++) {
            if (i < x.size && i < y.size) veil_limbwise(ctx, c[i], x.c[i], y.c[i], x.level, op);
            else if (i < x.size) veil_limbwise(ctx, c[i], x.c[i], NULL, x.level, VEIL_LIMB_COPY);
            else veil_limbwise(ctx, c[i], y.c[i], NULL, x.level, op == VEIL_LIMB_SUB ? VEIL_LIMB_NEG : VEIL_LIMB_COPY);
        }
    }
    const size_t level = x.level;
    const uint64_t factor = x.factor;
    const double noise = log2_sum(x.noise, y.noise);
    operand_release(&x);
    operand_release(&y);
    if (st != VEIL_OK) {
        free_polys(c);
        return st;
    }
    commit(out, c, size, level, factor, noise);
    return VEIL_OK;
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
    VEIL_TRY(check_out(ctx, out, "negate", err));
    VEIL_TRY(check_ct(ctx, a, "negate", err));
    veil_poly *c[3];
    VEIL_TRY(new_polys(ctx, c, a->size, a->level, err));
    for (size_t i = 0; i < a->size; i++) veil_limbwise(ctx, c[i], a->c[i], NULL, a->level, VEIL_LIMB_NEG);
    commit(out, c, a->size, a->level, a->factor, a->noise_bits);
    return VEIL_OK;
}

static veil_status plain_op(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                            const veil_bgv_plaintext *p, int kind, const char *name, veil_error *err)
{
    VEIL_TRY(check_out(ctx, out, name, err));
    VEIL_TRY(check_ct(ctx, a, name, err));
    VEIL_TRY(check_pt(ctx, p, name, err));
    const uint64_t t = ctx->params.t;
    veil_poly *m = NULL, *c[3];
    /* added messages must carry a's factor; a product keeps it */
    VEIL_TRY(lift_plain(ctx, &m, p->m, kind == 2 ? 1 : a->factor, a->level, err));
    veil_status st = new_polys(ctx, c, a->size, a->level, err);
    if (st == VEIL_OK) {
        for (size_t i = 0; i < a->size; i++) {
            if (kind == 2) veil_limb_products(ctx, c[i], a->c[i], m, a->level, false);
            else if (i == 0) veil_limbwise(ctx, c[0], a->c[0], m, a->level, kind ? VEIL_LIMB_SUB : VEIL_LIMB_ADD);
            else veil_limbwise(ctx, c[i], a->c[i], NULL, a->level, VEIL_LIMB_COPY);
        }
        const double n = (double)ctx->params.n;
        const double noise = kind == 2 ? a->noise_bits + log2((double)t) + 0.5 * log2(n) - 1
                                       : log2_sum(a->noise_bits, log2((double)t) - 1);
        commit(out, c, a->size, a->level, a->factor, noise);
    }
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
    VEIL_TRY(check_out(ctx, out, "add_scalar", err));
    VEIL_TRY(check_ct(ctx, a, "add_scalar", err));
    const uint64_t t = ctx->params.t;
    /* a constant polynomial has the same value in every NTT position */
    const int64_t v = centered_mod_t(mulmod_t(scalar_mod_t(k, t), a->factor, t), t);
    veil_poly *c[3];
    VEIL_TRY(new_polys(ctx, c, a->size, a->level, err));
    for (size_t i = 0; i < a->size; i++) veil_limbwise(ctx, c[i], a->c[i], NULL, a->level, VEIL_LIMB_COPY);
    const veil_ring *r = ctx->ring;
    for (size_t l = 0; l <= a->level; l++) {
        const uint64_t q = r->primes[l], kv = veil_reduce_i64(&r->mod[l], v);
        uint64_t *x = veil_poly_limb(c[0], l);
        for (size_t j = 0; j < r->n; j++) x[j] = veil_addmod(x[j], kv, q);
    }
    commit(out, c, a->size, a->level, a->factor, log2_sum(a->noise_bits, log2((double)t) - 1));
    return VEIL_OK;
}

veil_status veil_bgv_mul_scalar(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                                int64_t k, veil_error *err)
{
    VEIL_TRY(check_out(ctx, out, "mul_scalar", err));
    VEIL_TRY(check_ct(ctx, a, "mul_scalar", err));
    operand o;
    operand_view(&o, a);
    veil_status st = operand_scale(ctx, &o, centered_mod_t(scalar_mod_t(k, ctx->params.t), ctx->params.t), err);
    if (st == VEIL_OK) st = commit_operand(ctx, out, &o, err);
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
        const uint64_t *x = veil_poly_limb_const(a[i]->c[poly], limb), w = (uint64_t)(k[i] < 0 ? -k[i] : k[i]);
        if (k[i] > 0)
            for (size_t j = 0; j < n; j++) acc[j] += (veil_u128)x[j] * w;
        else
            for (size_t j = 0; j < n; j++) acc[j] += (veil_u128)(q - x[j]) * w;
    }
    for (size_t j = 0; j < n; j++) out[j] = (uint64_t)(acc[j] % q);
}

veil_status veil_bgv_linear_combination(const veil_context *ctx, veil_bgv_ciphertext *out,
                                        const veil_bgv_ciphertext *const *a, const int64_t *k, size_t count,
                                        int64_t bias, veil_error *err)
{
    VEIL_TRY(check_out(ctx, out, "linear_combination", err));
    VEIL_REQUIRE(a, err);
    VEIL_REQUIRE(k, err);
    if (count == 0) return veil_fail(err, VEIL_ERR_ARGUMENT, "linear_combination: no terms");
    double weight = 0, noise = 0;
    for (size_t i = 0; i < count; i++) {
        VEIL_TRY(check_ct(ctx, a[i], "linear_combination", err));
        if (a[i]->size != a[0]->size || a[i]->level != a[0]->level || a[i]->factor != a[0]->factor)
            return veil_fail(err, VEIL_ERR_ARGUMENT, "linear_combination: term %zu differs from the first in size, "
                             "level or factor", i);
        if (k[i] <= -LINEAR_MAX_WEIGHT || k[i] >= LINEAR_MAX_WEIGHT)
            return veil_fail(err, VEIL_ERR_ARGUMENT, "linear_combination: weight %lld of term %zu is not below 2^20 "
                             "in magnitude", (long long)k[i], i);
        if (k[i] == 0) continue;
        weight += fabs((double)k[i]);
        noise = fmax(noise, a[i]->noise_bits);
    }
    const veil_bgv_ciphertext *first = a[0];
    const size_t size = first->size, level = first->level, n = ctx->ring->n;
    const uint64_t t = ctx->params.t, factor = first->factor;
    veil_u128 *acc = malloc(n * sizeof *acc);
    if (!acc) return veil_fail(err, VEIL_ERR_NO_MEMORY, "linear_combination");
    veil_poly *c[3];
    veil_status st = new_polys(ctx, c, size, level, err);
    if (st != VEIL_OK) {
        free(acc);
        return st;
    }
    /* the bias enters as bias * factor, so that the sum decrypts to (sum k_i m_i + bias) * factor */
    const int64_t v = centered_mod_t(mulmod_t(scalar_mod_t(bias, t), factor, t), t);
    for (size_t p = 0; p < size; p++)
        for (size_t l = 0; l <= level; l++) {
            const uint64_t q = ctx->ring->primes[l];
            uint64_t *o = veil_poly_limb(c[p], l);
            linear_limb(o, a, k, count, p, l, q, n, acc);
            if (p == 0 && v != 0) {
                const uint64_t kv = veil_reduce_i64(&ctx->ring->mod[l], v);
                for (size_t j = 0; j < n; j++) o[j] = veil_addmod(o[j], kv, q);
            }
        }
    free(acc);
    /* |sum k_i (m_i + t e_i)| <= sum |k_i| max |m_i + t e_i|, plus the bias below t/2 */
    noise = weight > 0 ? noise + log2(weight) : 0;
    if (v != 0) noise = weight > 0 ? log2_sum(noise, log2((double)t) - 1) : log2((double)t) - 1;
    commit(out, c, size, level, factor, noise);
    return VEIL_OK;
}

veil_status veil_bgv_mul(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                         const veil_bgv_ciphertext *b, veil_error *err)
{
    VEIL_TRY(check_out(ctx, out, "mul", err));
    VEIL_TRY(check_ct(ctx, a, "mul", err));
    VEIL_TRY(check_ct(ctx, b, "mul", err));
    if (a->size != 2 || b->size != 2)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "mul: relinearize the operands first (sizes %zu and %zu)", a->size,
                         b->size);
    operand x, y;
    operand_view(&x, a);
    operand_view(&y, b);
    veil_poly *c[3] = {NULL, NULL, NULL};
    veil_status st = operand_prepare_for_product(ctx, &x, err);
    if (st == VEIL_OK) st = operand_prepare_for_product(ctx, &y, err);
    if (st == VEIL_OK) {
        const size_t level = x.level < y.level ? x.level : y.level;
        st = operand_switch_to(ctx, &x, level, err);
        if (st == VEIL_OK) st = operand_switch_to(ctx, &y, level, err);
    }
    if (st == VEIL_OK) st = new_polys(ctx, c, 3, x.level, err);
    if (st == VEIL_OK) {
        /* (x0 + x1 s)(y0 + y1 s) = x0 y0 + (x0 y1 + x1 y0) s + x1 y1 s^2 */
        veil_limb_products(ctx, c[0], x.c[0], y.c[0], x.level, false);
        veil_limb_products(ctx, c[1], x.c[0], y.c[1], x.level, false);
        veil_limb_products(ctx, c[1], x.c[1], y.c[0], x.level, true);
        veil_limb_products(ctx, c[2], x.c[1], y.c[1], x.level, false);
    }
    const size_t level = x.level;
    const uint64_t factor = mulmod_t(x.factor, y.factor, ctx->params.t);
    const double noise = x.noise + y.noise + 0.5 * log2((double)ctx->params.n);
    operand_release(&x);
    operand_release(&y);
    if (st != VEIL_OK) {
        free_polys(c);
        return st;
    }
    commit(out, c, 3, level, factor, noise);
    return VEIL_OK;
}

veil_status veil_bgv_square(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                            veil_error *err)
{
    return veil_bgv_mul(ctx, out, a, a, err);
}

static veil_status check_key(const veil_context *ctx, const veil_switch_key *key, uint64_t galois, const char *op,
                             veil_error *err)
{
    if (!key) return veil_fail(err, VEIL_ERR_NULL, "%s: the key is NULL", op);
    if (key->ctx != ctx) return veil_fail(err, VEIL_ERR_MISMATCH, "%s: the key belongs to another context", op);
    if (key->galois != galois) {
        if (galois == 0) return veil_fail(err, VEIL_ERR_MISMATCH, "%s: this is a Galois key, not the relinearization key", op);
        return veil_fail(err, VEIL_ERR_MISMATCH, "%s: needs the Galois key for element %llu, got %llu", op,
                         (unsigned long long)galois, (unsigned long long)key->galois);
    }
    return VEIL_OK;
}

veil_status veil_bgv_relinearize(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                                 const veil_switch_key *relin_key, veil_error *err)
{
    VEIL_TRY(check_out(ctx, out, "relinearize", err));
    VEIL_TRY(check_ct(ctx, a, "relinearize", err));
    VEIL_TRY(check_key(ctx, relin_key, 0, "relinearize", err));
    operand o;
    operand_view(&o, a);
    if (a->size == 2) return commit_operand(ctx, out, &o, err); /* nothing to do: a copy */
    veil_poly *c[3];
    VEIL_TRY(new_polys(ctx, c, 2, a->level, err));
    veil_status st = veil_keyswitch(ctx, c[0], c[1], a->c[2], relin_key, err);
    if (st != VEIL_OK) {
        free_polys(c);
        return st;
    }
    veil_limbwise(ctx, c[0], c[0], a->c[0], a->level, VEIL_LIMB_ADD);
    veil_limbwise(ctx, c[1], c[1], a->c[1], a->level, VEIL_LIMB_ADD);
    commit(out, c, 2, a->level, a->factor, log2_sum(a->noise_bits, keyswitch_bits(ctx)));
    return VEIL_OK;
}

veil_status veil_bgv_mul_relin(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                               const veil_bgv_ciphertext *b, const veil_switch_key *relin_key, veil_error *err)
{
    /* checked first, so that a bad key leaves an aliased output untouched */
    VEIL_TRY(check_out(ctx, out, "mul_relin", err));
    VEIL_TRY(check_key(ctx, relin_key, 0, "mul_relin", err));
    VEIL_TRY(veil_bgv_mul(ctx, out, a, b, err));
    return veil_bgv_relinearize(ctx, out, out, relin_key, err);
}

veil_status veil_bgv_power(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                           uint64_t e, const veil_switch_key *relin_key, veil_error *err)
{
    VEIL_TRY(check_out(ctx, out, "power", err));
    VEIL_TRY(check_ct(ctx, a, "power", err));
    VEIL_TRY(check_key(ctx, relin_key, 0, "power", err));
    if (e == 0) return veil_fail(err, VEIL_ERR_ARGUMENT, "power: exponent 0 (encrypt a 1 instead)");
    veil_bgv_ciphertext *base = NULL, *acc = NULL;
    VEIL_TRY(veil_bgv_ciphertext_new(&base, ctx, err));
    veil_status st = veil_bgv_ciphertext_new(&acc, ctx, err);
    if (st == VEIL_OK) st = veil_bgv_relinearize(ctx, base, a, relin_key, err); /* a copy of size 2 */
    bool started = false;
    /* right-to-left binary exponentiation: acc *= base for every set bit, base squared in between */
    while (st == VEIL_OK && e) {
        if (e & 1) {
            st = started ? veil_bgv_mul_relin(ctx, acc, acc, base, relin_key, err) : veil_bgv_relinearize(ctx, acc, base, relin_key, err);
            started = true;
        }
        e >>= 1;
        if (st == VEIL_OK && e) st = veil_bgv_mul_relin(ctx, base, base, base, relin_key, err);
    }
    if (st == VEIL_OK) {
        operand o;
        operand_view(&o, acc);
        st = commit_operand(ctx, out, &o, err);
    }
    veil_bgv_ciphertext_free(base);
    veil_bgv_ciphertext_free(acc);
    return st;
}

veil_status veil_bgv_mod_switch_to(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                                   size_t level, veil_error *err)
{
    VEIL_TRY(check_out(ctx, out, "mod_switch", err));
    VEIL_TRY(check_ct(ctx, a, "mod_switch", err));
    if (level > a->level)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "mod_switch: cannot raise a ciphertext from level %zu to %zu", a->level,
                         level);
    operand o;
    operand_view(&o, a);
    veil_status st = operand_switch_to(ctx, &o, level, err);
    if (st == VEIL_OK) st = commit_operand(ctx, out, &o, err);
    operand_release(&o);
    return st;
}

veil_status veil_bgv_mod_switch(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                                veil_error *err)
{
    VEIL_TRY(check_ct(ctx, a, "mod_switch", err));
    if (a->level == 0) return veil_fail(err, VEIL_ERR_ARGUMENT, "mod_switch: the ciphertext is at level 0, no prime left to drop");
    return veil_bgv_mod_switch_to(ctx, out, a, a->level - 1, err);
}

static veil_status apply_galois(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                                uint64_t galois, const veil_switch_key *key, const char *op, veil_error *err)
{
    VEIL_TRY(check_out(ctx, out, op, err));
    VEIL_TRY(check_ct(ctx, a, op, err));
    if (a->size != 2) return veil_fail(err, VEIL_ERR_ARGUMENT, "%s: relinearize the ciphertext first", op);
    operand o;
    operand_view(&o, a);
    if (galois == 1) return commit_operand(ctx, out, &o, err); /* a rotation by 0 columns: a copy */
    VEIL_TRY(check_key(ctx, key, galois, op, err));
    veil_poly *c[3], *rot = NULL;
    /* (sigma(c0), sigma(c1)) decrypts under sigma(s); switch sigma(c1) back to s */
    VEIL_TRY(new_polys(ctx, c, 2, a->level, err));
    veil_status st = veil_context_poly_new(&rot, ctx, a->level, VEIL_FORM_EVAL, err);
    if (st == VEIL_OK) st = veil_poly_automorphism(rot, a->c[1], galois, err);
    if (st == VEIL_OK) st = veil_keyswitch(ctx, c[0], c[1], rot, key, err);
    if (st == VEIL_OK) st = veil_poly_automorphism(rot, a->c[0], galois, err);
    if (st == VEIL_OK) veil_limbwise(ctx, c[0], c[0], rot, a->level, VEIL_LIMB_ADD);
    veil_poly_free(rot);
    if (st != VEIL_OK) {
        free_polys(c);
        return st;
    }
    commit(out, c, 2, a->level, a->factor, log2_sum(a->noise_bits, keyswitch_bits(ctx)));
    return VEIL_OK;
}

veil_status veil_bgv_rotate_rows(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                                 long steps, const veil_switch_key *galois_key, veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    return apply_galois(ctx, out, a, veil_galois_element_rotation(ctx, steps), galois_key, "rotate_rows", err);
}

veil_status veil_bgv_swap_columns(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                                  const veil_switch_key *galois_key, veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    return apply_galois(ctx, out, a, veil_galois_element_conjugation(ctx), galois_key, "swap_columns", err);
}

static const veil_switch_key *find_key(const veil_switch_key *const *keys, size_t count, uint64_t galois)
{
    for (size_t k = 0; k < count; k++)
        if (keys[k] && keys[k]->galois == galois) return keys[k];
    return NULL;
}

veil_status veil_bgv_sum_slots(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                               const veil_switch_key *const *keys, size_t count, veil_error *err)
{
    VEIL_TRY(check_out(ctx, out, "sum_slots", err));
    VEIL_TRY(check_ct(ctx, a, "sum_slots", err));
    if (count) VEIL_REQUIRE(keys, err);
    veil_bgv_ciphertext *acc = NULL, *rot = NULL;
    VEIL_TRY(veil_bgv_ciphertext_new(&acc, ctx, err));
    veil_status st = veil_bgv_ciphertext_new(&rot, ctx, err);
    if (st == VEIL_OK) st = veil_bgv_mod_switch_to(ctx, acc, a, a->level, err); /* a copy */
    const size_t half = ctx->params.n / 2;
    for (size_t step = 1; st == VEIL_OK && step <= half; step <<= 1) {
        /* rows by 1, 2, ..., N/4; then the columns */
        const bool swap = step == half;
        const uint64_t g = swap ? veil_galois_element_conjugation(ctx) : veil_galois_element_rotation(ctx, (long)step);
        const veil_switch_key *key = count ? find_key(keys, count, g) : NULL;
        if (!key) {
            st = veil_fail(err, VEIL_ERR_MISMATCH, "sum_slots: no Galois key for %s (element %llu)",
                           swap ? "the column swap" : "a row rotation", (unsigned long long)g);
            break;
        }
        st = apply_galois(ctx, rot, acc, g, key, "sum_slots", err);
        if (st == VEIL_OK) st = veil_bgv_add(ctx, acc, acc, rot, err);
    }
    if (st == VEIL_OK) st = veil_bgv_mod_switch_to(ctx, out, acc, acc->level, err);
    veil_bgv_ciphertext_free(acc);
    veil_bgv_ciphertext_free(rot);
    return st;
}
