/*
 * CKKS plaintexts, ciphertexts, encryption, decryption and the evaluator. A ciphertext is an RLWE element
 * (src/rlwe/element.c: its checks, sums, relinearization and automorphisms) with a scale beside it; what is
 * CKKS's own here is the scale: its checks and alignment, products and rescaling.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "ckks/ckks_internal.h"

/* ---- objects ----------------------------------------------------------------------------------- */

veil_status veil_ckks_plaintext_new(veil_ckks_plaintext **out, const veil_context *ctx, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(ctx, err);
    veil_status st = VEIL_OK;
    *out = veil_alloc(1, sizeof **out);
    if (!*out) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "plaintext: out of memory");
    (*out)->ctx = ctx;
done:
    return st;
}

void veil_ckks_plaintext_free(veil_ckks_plaintext *pt)
{
    if (!pt) return;
    veil_poly_free(pt->m);
    veil_free_secret(pt, sizeof *pt);
}

veil_status veil_ckks_ciphertext_new(veil_ckks_ciphertext **out, const veil_context *ctx, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(ctx, err);
    veil_status st = VEIL_OK;
    *out = veil_alloc(1, sizeof **out);
    if (!*out) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "ciphertext: out of memory");
    veil_rlwe_element_init(&(*out)->el, ctx);
done:
    return st;
}

void veil_ckks_ciphertext_free(veil_ckks_ciphertext *ct)
{
    if (!ct) return;
    veil_rlwe_element_release(&ct->el);
    veil_free(ct);
}

size_t veil_ckks_plaintext_level(const veil_ckks_plaintext *pt) { return pt ? pt->level : 0; }
double veil_ckks_plaintext_scale(const veil_ckks_plaintext *pt) { return pt ? pt->scale : 0; }
size_t veil_ckks_ciphertext_level(const veil_ckks_ciphertext *ct) { return ct ? ct->el.level : 0; }
double veil_ckks_ciphertext_scale(const veil_ckks_ciphertext *ct) { return ct ? ct->scale : 0; }
size_t veil_ckks_ciphertext_size(const veil_ckks_ciphertext *ct) { return ct ? ct->el.size : 0; }

/* ---- checks ------------------------------------------------------------------------------------- */

static veil_status check_ct(const veil_context *ctx, const veil_ckks_ciphertext *ct, const char *op, veil_error *err)
{
    return veil_rlwe_check_element(ctx, veil_ckks_element(ct), op, err);
}

/* The output must be a ciphertext of this context: its polynomials are replaced by ones of this ring. */
static veil_status check_out(const veil_context *ctx, const veil_ckks_ciphertext *out, veil_error *err)
{
    return veil_rlwe_check_output(ctx, &out->el, NULL, err);
}

bool veil_ckks_same_scale(double a, double b)
{
    return fabs(a - b) <= ldexp(fmax(a, b), -40);
}

static veil_status check_scales(double a, double b, size_t la, size_t lb, const char *op, veil_error *err)
{
    if (veil_ckks_same_scale(a, b)) return VEIL_OK;
    return veil_fail(err, VEIL_ERR_MISMATCH,
                     "%s: operands have different scales (2^%.4f at level %zu, 2^%.4f at level %zu) that one "
                     "constant product cannot align (too far apart, or no level left): rescale one of them first",
                     op, log2(a), la, log2(b), lb);
}

static veil_status check_pt(const veil_context *ctx, const veil_ckks_plaintext *pt, const char *op, veil_error *err)
{
    if (!pt) return veil_fail(err, VEIL_ERR_NULL, "%s: the plaintext is NULL", op);
    if (pt->ctx != ctx) return veil_fail(err, VEIL_ERR_MISMATCH, "%s: the plaintext belongs to another context", op);
    if (!pt->m) return veil_fail(err, VEIL_ERR_ARGUMENT, "%s: the plaintext is empty", op);
    return VEIL_OK;
}

/* Moves a complete result into out, at the given scale. */
static void commit(veil_ckks_ciphertext *out, veil_rlwe_result *r, double scale)
{
    veil_rlwe_result_commit(&out->el, r);
    out->scale = scale;
}

/* ---- encryption and decryption ------------------------------------------------------------------ */

/* pt plus an encryption of zero, with the public key (pk) or the secret key (sk: a seeded result). */
static veil_status encrypt(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_plaintext *pt,
                           const veil_public_key *pk, const veil_secret_key *sk, veil_prng *prng, veil_error *err)
{
    veil_status st = VEIL_OK;
    veil_prng *use = NULL, *owned = NULL;
    veil_rlwe_result r = {0};
    uint8_t seed[VEIL_SEED_BYTES];
    VEIL_CHECK(check_pt(ctx, pt, "encrypt", err));
    if ((pk ? pk->ctx : sk->ctx) != ctx || out->el.ctx != ctx)
        VEIL_FAIL(err, VEIL_ERR_MISMATCH, "encrypt: objects of another context");
    VEIL_CHECK(veil_prng_or_os(&use, &owned, prng, err));
    VEIL_CHECK(veil_rlwe_result_init(&r, ctx, 2, pt->level, err));
    if (pk) VEIL_CHECK(veil_encrypt_zero_pk(ctx, r.c[0], r.c[1], pt->level, pk, use, err));
    else VEIL_CHECK(veil_encrypt_zero_sk(ctx, r.c[0], r.c[1], pt->level, sk, seed, use, err));
    veil_limbwise(ctx, r.c[0], r.c[0], pt->m, pt->level, VEIL_LIMB_ADD);
    commit(out, &r, pt->scale);
    if (sk) {
        out->el.seeded = true; /* c1 is the seed's expansion: a stored copy keeps only the seed */
        memcpy(out->el.seed, seed, sizeof seed);
    }
done:
    if (st != VEIL_OK) veil_rlwe_result_drop(&r, &out->el);
    veil_prng_free(owned);
    return st;
}

veil_status veil_ckks_encrypt_pk(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_plaintext *pt,
                                 const veil_public_key *pk, veil_prng *prng, veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(pk, err);
    return encrypt(ctx, out, pt, pk, NULL, prng, err);
}

veil_status veil_ckks_encrypt_sk(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_plaintext *pt,
                                 const veil_secret_key *sk, veil_prng *prng, veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(sk, err);
    return encrypt(ctx, out, pt, NULL, sk, prng, err);
}

veil_status veil_ckks_decrypt(const veil_context *ctx, veil_ckks_plaintext *out, const veil_ckks_ciphertext *ct,
                              const veil_secret_key *sk, veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(sk, err);
    veil_status st = VEIL_OK;
    veil_poly *m = NULL;
    VEIL_CHECK(check_ct(ctx, ct, "decrypt", err));
    if (sk->ctx != ctx || out->ctx != ctx) VEIL_FAIL(err, VEIL_ERR_MISMATCH, "decrypt: objects of another context");
    VEIL_CHECK(veil_decrypt_phase(ctx, &m, ct->el.c, ct->el.size, ct->el.level, sk, err));
    veil_poly_free(out->m);
    out->m = m;
    m = NULL;
    out->level = ct->el.level;
    out->scale = ct->scale;
done:
    veil_poly_free(m);
    return st;
}

/* ---- evaluator ---------------------------------------------------------------------------------- */

/*
 * Can `own` be brought to scale `target` by one constant product: the integer round(target * q_l / own) must
 * be at least 2^20 (precision) and below 2^62 (it must fit), and a level must be left.
 */
static bool alignable(const veil_context *ctx, const veil_ckks_ciphertext *own, double target)
{
    if (own->el.level == 0) return false;
    const double k = target * (double)ctx->ring->primes[own->el.level] / own->scale;
    return k >= 0x1p20 && k < 0x1p62;
}

/* a + b or a - b, operands of one scale (checked). */
static veil_status add_sub_same(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                const veil_ckks_ciphertext *b, bool subtract, veil_error *err)
{
    veil_status st = VEIL_OK;
    veil_rlwe_result r = {0};
    const size_t level = a->el.level < b->el.level ? a->el.level : b->el.level;
    const size_t size = a->el.size > b->el.size ? a->el.size : b->el.size;
    VEIL_CHECK(check_out(ctx, out, err));
    VEIL_CHECK(veil_rlwe_result_reuse(&r, &out->el, &a->el, &b->el, ctx, size, level, err));
    veil_rlwe_add_sub(ctx, r.c, &a->el, &b->el, level, subtract ? VEIL_LIMB_SUB : VEIL_LIMB_ADD);
    commit(out, &r, a->scale);
done:
    if (st != VEIL_OK) veil_rlwe_result_drop(&r, &out->el);
    return st;
}

static veil_status add_sub(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                           const veil_ckks_ciphertext *b, bool subtract, veil_error *err);

/*
 * Operands at different scales (typically the drift of rescaling by primes that are not exactly the scale):
 * the one at the higher level, or either at equal levels, is multiplied by 1 at the other's scale, which uses
 * one of its levels. Scales too far apart for one constant product, or no level left, are an error.
 */
static veil_status add_sub_aligned(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                   const veil_ckks_ciphertext *b, bool subtract, veil_error *err)
{
    const char *op = subtract ? "sub" : "add";
    const size_t la = a->el.level, lb = b->el.level;
    bool move_a;
    if (la != lb && alignable(ctx, la > lb ? a : b, la > lb ? b->scale : a->scale)) move_a = la > lb;
    else if (la == lb && alignable(ctx, b, a->scale)) move_a = false;
    else if (la == lb && alignable(ctx, a, b->scale)) move_a = true;
    else return check_scales(a->scale, b->scale, la, lb, op, err);
    veil_status st = VEIL_OK;
    veil_ckks_ciphertext *t = NULL;
    VEIL_CHECK(veil_ckks_ciphertext_new(&t, ctx, err));
    VEIL_CHECK(veil_ckks_mul_constant_at(ctx, t, move_a ? a : b, 1.0, move_a ? b->scale : a->scale, err));
    VEIL_CHECK(move_a ? add_sub(ctx, out, t, b, subtract, err) : add_sub(ctx, out, a, t, subtract, err));
done:
    veil_ckks_ciphertext_free(t);
    return st;
}

static veil_status add_sub(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                           const veil_ckks_ciphertext *b, bool subtract, veil_error *err)
{
    const char *op = subtract ? "sub" : "add";
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(out, err);
    veil_status st = VEIL_OK;
    VEIL_CHECK(check_ct(ctx, a, op, err));
    VEIL_CHECK(check_ct(ctx, b, op, err));
    VEIL_CHECK(veil_ckks_same_scale(a->scale, b->scale) ? add_sub_same(ctx, out, a, b, subtract, err)
                                                        : add_sub_aligned(ctx, out, a, b, subtract, err));
done:
    return st;
}

veil_status veil_ckks_add(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                          const veil_ckks_ciphertext *b, veil_error *err)
{
    return add_sub(ctx, out, a, b, false, err);
}

veil_status veil_ckks_sub(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                          const veil_ckks_ciphertext *b, veil_error *err)
{
    return add_sub(ctx, out, a, b, true, err);
}

/* Each polynomial of a copied (VEIL_LIMB_COPY) or negated (VEIL_LIMB_NEG) at `level`, a's scale. */
static veil_status map(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                       size_t level, veil_limb_op op, veil_error *err)
{
    veil_status st = VEIL_OK;
    veil_rlwe_result r = {0};
    VEIL_CHECK(check_out(ctx, out, err));
    VEIL_CHECK(veil_rlwe_result_reuse(&r, &out->el, &a->el, NULL, ctx, a->el.size, level, err));
    veil_rlwe_map(ctx, r.c, &a->el, level, op);
    commit(out, &r, a->scale);
done:
    if (st != VEIL_OK) veil_rlwe_result_drop(&r, &out->el);
    return st;
}

veil_status veil_ckks_negate(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                             veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(out, err);
    veil_status st = VEIL_OK;
    VEIL_CHECK(check_ct(ctx, a, "negate", err));
    VEIL_CHECK(map(ctx, out, a, a->el.level, VEIL_LIMB_NEG, err));
done:
    return st;
}

static veil_status plain_op(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                            const veil_ckks_plaintext *p, bool multiply, veil_error *err)
{
    const char *op = multiply ? "mul_plain" : "add_plain";
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(out, err);
    veil_status st = VEIL_OK;
    veil_rlwe_result r = {0};
    VEIL_CHECK(check_ct(ctx, a, op, err));
    VEIL_CHECK(check_pt(ctx, p, op, err));
    if (!multiply) VEIL_CHECK(check_scales(a->scale, p->scale, a->el.level, p->level, op, err));
    const size_t level = a->el.level < p->level ? a->el.level : p->level;
    VEIL_CHECK(check_out(ctx, out, err));
    VEIL_CHECK(veil_rlwe_result_reuse(&r, &out->el, &a->el, NULL, ctx, a->el.size, level, err));
    for (size_t i = 0; i < a->el.size; i++) {
        if (multiply) veil_limb_products(ctx, r.c[i], a->el.c[i], p->m, level, false);
        else if (i == 0) veil_limbwise(ctx, r.c[i], a->el.c[i], p->m, level, VEIL_LIMB_ADD);
        else veil_limbwise(ctx, r.c[i], a->el.c[i], NULL, level, VEIL_LIMB_COPY);
    }
    commit(out, &r, multiply ? a->scale * p->scale : a->scale);
done:
    if (st != VEIL_OK) veil_rlwe_result_drop(&r, &out->el);
    return st;
}

veil_status veil_ckks_add_plain(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                const veil_ckks_plaintext *p, veil_error *err)
{
    return plain_op(ctx, out, a, p, false, err);
}

veil_status veil_ckks_mul_plain(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                const veil_ckks_plaintext *p, veil_error *err)
{
    return plain_op(ctx, out, a, p, true, err);
}

veil_status veil_ckks_mul_plain_accumulate(const veil_context *ctx, veil_ckks_ciphertext *acc,
                                           const veil_ckks_ciphertext *a, const veil_ckks_plaintext *p,
                                           veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    veil_status st = VEIL_OK;
    VEIL_CHECK(check_ct(ctx, acc, "mul_plain_accumulate", err));
    VEIL_CHECK(check_ct(ctx, a, "mul_plain_accumulate", err));
    VEIL_CHECK(check_pt(ctx, p, "mul_plain_accumulate", err));
    if (acc == a) VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "mul_plain_accumulate: the accumulator is the operand");
    const size_t level = a->el.level < p->level ? a->el.level : p->level;
    if (acc->el.size != a->el.size || acc->el.level != level)
        VEIL_FAIL(err, VEIL_ERR_MISMATCH, "mul_plain_accumulate: the accumulator (size %zu, level %zu) does not "
                  "match the product (size %zu, level %zu)", acc->el.size, acc->el.level, a->el.size, level);
    VEIL_CHECK(check_scales(acc->scale, a->scale * p->scale, acc->el.level, level, "mul_plain_accumulate", err));
    for (size_t i = 0; i < a->el.size; i++) veil_limb_products(ctx, acc->el.c[i], a->el.c[i], p->m, level, true);
    acc->el.seeded = false;
done:
    return st;
}

veil_status veil_ckks_mul_integer(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                  int64_t k, veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(out, err);
    veil_status st = VEIL_OK;
    veil_rlwe_result r = {0};
    veil_poly *src = NULL;
    VEIL_CHECK(check_ct(ctx, a, "mul_integer", err));
    VEIL_CHECK(check_out(ctx, out, err));
    VEIL_CHECK(veil_rlwe_result_init(&r, ctx, a->el.size, a->el.level, err));
    for (size_t i = 0; i < a->el.size; i++) {
        VEIL_CHECK(veil_context_poly_new(&src, ctx, a->el.level, VEIL_FORM_EVAL, err));
        veil_limbwise(ctx, src, a->el.c[i], NULL, a->el.level, VEIL_LIMB_COPY);
        VEIL_CHECK(veil_poly_mul_scalar(r.c[i], src, k, err));
        veil_poly_free(src);
        src = NULL;
    }
    commit(out, &r, a->scale);
done:
    veil_poly_free(src);
    if (st != VEIL_OK) veil_rlwe_result_drop(&r, &out->el);
    return st;
}

veil_status veil_ckks_mul(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                          const veil_ckks_ciphertext *b, veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(out, err);
    veil_status st = VEIL_OK;
    veil_rlwe_result r = {0};
    VEIL_CHECK(check_ct(ctx, a, "mul", err));
    VEIL_CHECK(check_ct(ctx, b, "mul", err));
    if (a->el.size != 2 || b->el.size != 2)
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "mul: relinearize the operands first (sizes %zu and %zu)", a->el.size,
                  b->el.size);
    const size_t level = a->el.level < b->el.level ? a->el.level : b->el.level;
    VEIL_CHECK(check_out(ctx, out, err));
    VEIL_CHECK(veil_rlwe_result_reuse(&r, &out->el, &a->el, &b->el, ctx, 3, level, err));
    /* (a0 + a1 s)(b0 + b1 s) = a0 b0 + (a0 b1 + a1 b0) s + a1 b1 s^2 */
    veil_limb_products(ctx, r.c[0], a->el.c[0], b->el.c[0], level, false);
    veil_limb_products(ctx, r.c[1], a->el.c[0], b->el.c[1], level, false);
    veil_limb_products(ctx, r.c[1], a->el.c[1], b->el.c[0], level, true);
    veil_limb_products(ctx, r.c[2], a->el.c[1], b->el.c[1], level, false);
    commit(out, &r, a->scale * b->scale);
done:
    if (st != VEIL_OK) veil_rlwe_result_drop(&r, &out->el);
    return st;
}

/* Relinearization of a ciphertext of size 3 (checked). */
static veil_status relinearize3(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                const veil_switch_key *relin_key, veil_error *err)
{
    veil_status st = VEIL_OK;
    veil_rlwe_result r = {0};
    VEIL_CHECK(check_out(ctx, out, err));
    VEIL_CHECK(veil_rlwe_result_reuse(&r, &out->el, &a->el, NULL, ctx, 2, a->el.level, err));
    VEIL_CHECK(veil_rlwe_relinearize(ctx, r.c, &a->el, relin_key, err));
    commit(out, &r, a->scale);
done:
    if (st != VEIL_OK) veil_rlwe_result_drop(&r, &out->el);
    return st;
}

veil_status veil_ckks_relinearize(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                  const veil_switch_key *relin_key, veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(out, err);
    veil_status st = VEIL_OK;
    VEIL_CHECK(check_ct(ctx, a, "relinearize", err));
    VEIL_CHECK(veil_rlwe_check_switch_key(ctx, relin_key, 0, "relinearize", err));
    /* size 2: nothing to do, a copy */
    VEIL_CHECK(a->el.size == 2 ? veil_ckks_mod_drop(ctx, out, a, a->el.level, err)
                               : relinearize3(ctx, out, a, relin_key, err));
done:
    return st;
}

/*
 * A scale at or above the modulus of the level a rescale lands on leaves room only for values below 1/2:
 * refused rather than let the values wrap around (it happens when scales drift, rescaled by primes far from
 * them).
 */
static veil_status check_rescaled_scale(const veil_context *ctx, double scale, size_t level, const char *op,
                                        veil_error *err)
{
    double log_q = 0;
    for (size_t i = 0; i <= level; i++) log_q += log2((double)ctx->ring->primes[i]);
    if (log2(scale) >= log_q)
        return veil_fail(err, VEIL_ERR_ARGUMENT,
                         "%s: the scale 2^%.2f would reach the %.1f-bit modulus of level %zu (the scale has drifted)", op,
                         log2(scale), log_q, level);
    return VEIL_OK;
}

veil_status veil_ckks_rescale(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                              veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(out, err);
    veil_status st = VEIL_OK;
    veil_rlwe_result r = {0};
    VEIL_CHECK(check_ct(ctx, a, "rescale", err));
    if (a->el.level == 0)
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "rescale: the ciphertext is at level 0, no prime left to drop");
    const double new_scale = a->scale / (double)ctx->ring->primes[a->el.level];
    VEIL_CHECK(check_rescaled_scale(ctx, new_scale, a->el.level - 1, "rescale", err));
    VEIL_CHECK(check_out(ctx, out, err));
    VEIL_CHECK(veil_rlwe_result_reuse(&r, &out->el, &a->el, NULL, ctx, a->el.size, a->el.level - 1, err));
    for (size_t i = 0; i < a->el.size; i++) VEIL_CHECK(veil_poly_rescale(r.c[i], a->el.c[i], err));
    commit(out, &r, new_scale);
done:
    if (st != VEIL_OK) veil_rlwe_result_drop(&r, &out->el);
    return st;
}

veil_status veil_ckks_mul_relin_rescale(const veil_context *ctx, veil_ckks_ciphertext *out,
                                        const veil_ckks_ciphertext *a, const veil_ckks_ciphertext *b,
                                        const veil_switch_key *relin_key, veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(out, err);
    veil_status st = VEIL_OK;
    /* every check that relinearize and rescale would make comes first, so a failure leaves out untouched
     * (out may be one of the inputs) */
    VEIL_CHECK(check_ct(ctx, a, "mul_relin_rescale", err));
    VEIL_CHECK(check_ct(ctx, b, "mul_relin_rescale", err));
    VEIL_CHECK(veil_rlwe_check_switch_key(ctx, relin_key, 0, "mul_relin_rescale", err));
    if (a->el.level == 0 || b->el.level == 0)
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "mul_relin_rescale: an operand is at level 0, no prime left to rescale by");
    const size_t level = a->el.level < b->el.level ? a->el.level : b->el.level;
    VEIL_CHECK(check_rescaled_scale(ctx, a->scale * b->scale / (double)ctx->ring->primes[level], level - 1,
                                    "mul_relin_rescale", err));
    VEIL_CHECK(veil_ckks_mul(ctx, out, a, b, err));
    VEIL_CHECK(veil_ckks_relinearize(ctx, out, out, relin_key, err));
    VEIL_CHECK(veil_ckks_rescale(ctx, out, out, err));
done:
    return st;
}

veil_status veil_ckks_mod_drop(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                               size_t level, veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(out, err);
    veil_status st = VEIL_OK;
    VEIL_CHECK(check_ct(ctx, a, "mod_drop", err));
    if (level > a->el.level)
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "mod_drop: cannot raise a ciphertext from level %zu to %zu", a->el.level,
                  level);
    VEIL_CHECK(map(ctx, out, a, level, VEIL_LIMB_COPY, err));
done:
    return st;
}

/* The automorphism of a checked ciphertext for a Galois element other than 1. */
static veil_status galois_switch(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                 uint64_t galois, const veil_switch_key *key, const char *op, veil_error *err)
{
    veil_status st = VEIL_OK;
    veil_rlwe_result r = {0};
    VEIL_CHECK(veil_rlwe_check_switch_key(ctx, key, galois, op, err));
    if (a->el.size != 2) VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "%s: relinearize the ciphertext first", op);
    VEIL_CHECK(check_out(ctx, out, err));
    VEIL_CHECK(veil_rlwe_result_reuse(&r, &out->el, &a->el, NULL, ctx, 2, a->el.level, err));
    VEIL_CHECK(veil_rlwe_apply_galois(ctx, r.c, &a->el, galois, key, err));
    commit(out, &r, a->scale);
done:
    if (st != VEIL_OK) veil_rlwe_result_drop(&r, &out->el);
    return st;
}

static veil_status apply_galois(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                uint64_t galois, const veil_switch_key *key, const char *op, veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(out, err);
    veil_status st = VEIL_OK;
    VEIL_CHECK(check_ct(ctx, a, op, err));
    /* a rotation by 0 slots: a copy */
    VEIL_CHECK(galois == 1 ? veil_ckks_mod_drop(ctx, out, a, a->el.level, err)
                           : galois_switch(ctx, out, a, galois, key, op, err));
done:
    return st;
}

veil_status veil_ckks_rotate(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                             long steps, const veil_switch_key *galois_key, veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    return apply_galois(ctx, out, a, veil_galois_element_rotation(ctx, steps), galois_key, "rotate", err);
}

veil_status veil_ckks_conjugate(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                const veil_switch_key *galois_key, veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    return apply_galois(ctx, out, a, veil_galois_element_conjugation(ctx), galois_key, "conjugate", err);
}

/* Checks the outputs of a hoisted rotation, their keys, and prepares their results. */
static veil_status hoisted_outputs(const veil_context *ctx, veil_ckks_ciphertext *const *outs,
                                   const veil_ckks_ciphertext *a, const long *steps, size_t count,
                                   const veil_switch_key *const *galois_keys, uint64_t *galois, veil_rlwe_result *rs,
                                   veil_error *err)
{
    veil_status st = VEIL_OK;
    for (size_t k = 0; k < count; k++) {
        if (!outs[k] || outs[k] == a || outs[k]->el.ctx != ctx)
            VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "rotate_hoisted: output %zu is NULL, the input, or of another context", k);
        for (size_t m = 0; m < k; m++)
            if (outs[m] == outs[k])
                VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "rotate_hoisted: outputs %zu and %zu are the same object", m, k);
        galois[k] = veil_galois_element_rotation(ctx, steps[k]);
        if (galois[k] != 1) VEIL_CHECK(veil_rlwe_check_switch_key(ctx, galois_keys[k], galois[k], "rotate_hoisted", err));
        VEIL_CHECK(veil_rlwe_result_reuse(&rs[k], &outs[k]->el, &a->el, NULL, ctx, 2, a->el.level, err));
    }
done:
    return st;
}

veil_status veil_ckks_rotate_hoisted(const veil_context *ctx, veil_ckks_ciphertext *const *outs,
                                     const veil_ckks_ciphertext *a, const long *steps, size_t count,
                                     const veil_switch_key *const *galois_keys, veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(outs, err);
    VEIL_REQUIRE(steps, err);
    VEIL_REQUIRE(galois_keys, err);
    veil_status st = VEIL_OK;
    uint64_t *galois = NULL;
    veil_rlwe_result *rs = NULL;
    veil_poly **o0 = NULL, **o1 = NULL, *rc0 = NULL;
    const veil_switch_key **keys = NULL;
    VEIL_CHECK(check_ct(ctx, a, "rotate_hoisted", err));
    if (a->el.size != 2) VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "rotate_hoisted: relinearize the ciphertext first");
    if (count == 0 || count > 4096) VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "rotate_hoisted: %zu rotations", count);
    galois = veil_alloc(count, sizeof *galois);
    rs = veil_alloc(count, sizeof *rs);
    o0 = veil_alloc(count, sizeof *o0);
    o1 = veil_alloc(count, sizeof *o1);
    keys = veil_alloc(count, sizeof *keys);
    if (!galois || !rs || !o0 || !o1 || !keys) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "rotate_hoisted: out of memory");
    VEIL_CHECK(hoisted_outputs(ctx, outs, a, steps, count, galois_keys, galois, rs, err));
    /* the rotations by 0 slots (element 1) are copies; the others share one ModUp */
    size_t switched = 0;
    for (size_t k = 0; k < count; k++) {
        if (galois[k] == 1) continue;
        o0[switched] = rs[k].c[0];
        o1[switched] = rs[k].c[1];
        galois[switched] = galois[k];
        keys[switched++] = galois_keys[k];
    }
    VEIL_CHECK(veil_context_poly_new(&rc0, ctx, a->el.level, VEIL_FORM_EVAL, err));
    if (switched) VEIL_CHECK(veil_keyswitch_hoisted(ctx, o0, o1, a->el.c[1], galois, keys, switched, err));
    for (size_t k = 0, j = 0; k < count; k++) {
        if (veil_galois_element_rotation(ctx, steps[k]) == 1) {
            veil_limbwise(ctx, rs[k].c[0], a->el.c[0], NULL, a->el.level, VEIL_LIMB_COPY);
            veil_limbwise(ctx, rs[k].c[1], a->el.c[1], NULL, a->el.level, VEIL_LIMB_COPY);
            continue;
        }
        VEIL_CHECK(veil_poly_automorphism(rc0, a->el.c[0], galois[j++], err));
        veil_limbwise(ctx, rs[k].c[0], rs[k].c[0], rc0, a->el.level, VEIL_LIMB_ADD);
    }
done:
    for (size_t k = 0; rs && k < count; k++) {
        if (st == VEIL_OK) commit(outs[k], &rs[k], a->scale);
        else veil_rlwe_result_drop(&rs[k], outs[k] ? &outs[k]->el : NULL);
    }
    veil_poly_free(rc0);
    veil_free(galois);
    veil_free(rs);
    veil_free(o0);
    veil_free(o1);
    veil_free(keys);
    return st;
}

/* The Galois elements of a rotate-and-sum's steps, each checked against its key. */
static veil_status rotate_sum_elements(const veil_context *ctx, uint64_t *galois, const long *steps, size_t count,
                                       const veil_switch_key *const *galois_keys, veil_error *err)
{
    veil_status st = VEIL_OK;
    for (size_t k = 0; k < count; k++) {
        galois[k] = veil_galois_element_rotation(ctx, steps[k]);
        if (galois[k] == 1) VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "rotate_sum: step %ld rotates by 0 slots", steps[k]);
        VEIL_CHECK(veil_rlwe_check_switch_key(ctx, galois_keys[k], galois[k], "rotate_sum", err));
    }
done:
    return st;
}

veil_status veil_ckks_rotate_sum(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                 const long *steps, size_t count, const veil_switch_key *const *galois_keys,
                                 veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(steps, err);
    VEIL_REQUIRE(galois_keys, err);
    veil_status st = VEIL_OK;
    uint64_t *galois = NULL;
    veil_rlwe_result r = {0};
    VEIL_CHECK(veil_rlwe_check_element(ctx, veil_ckks_element(a), "rotate_sum", err));
    if (a->el.size != 2) VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "rotate_sum: relinearize the ciphertext first");
    if (count == 0 || count > 4096) VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "rotate_sum: %zu rotations", count);
    galois = veil_alloc(count, sizeof *galois);
    if (!galois) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "rotate_sum: out of memory");
    VEIL_CHECK(rotate_sum_elements(ctx, galois, steps, count, galois_keys, err));
    VEIL_CHECK(veil_rlwe_check_output(ctx, &out->el, NULL, err));
    VEIL_CHECK(veil_rlwe_result_reuse(&r, &out->el, &a->el, NULL, ctx, 2, a->el.level, err));
    VEIL_CHECK(veil_rlwe_galois_sum(ctx, r.c, &a->el, galois, galois_keys, count, err));
    const double scale = a->scale;
    veil_rlwe_result_commit(&out->el, &r);
    out->scale = scale;
done:
    if (st != VEIL_OK) veil_rlwe_result_drop(&r, &out->el);
    veil_free(galois);
    return st;
}

/* The key for Galois element `galois` among keys[0..count), NULL if none. */
static const veil_switch_key *find_key(const veil_switch_key *const *keys, size_t count, uint64_t galois)
{
    for (size_t k = 0; k < count; k++)
        if (keys[k] && keys[k]->galois == galois) return keys[k];
    return NULL;
}

veil_status veil_ckks_sum_slots(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                size_t slots, const veil_switch_key *const *keys, size_t count, veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(out, err);
    veil_status st = VEIL_OK;
    veil_ckks_ciphertext *acc = NULL, *rot = NULL;
    VEIL_CHECK(veil_rlwe_check_element(ctx, veil_ckks_element(a), "sum_slots", err));
    if (count) VEIL_REQUIRE(keys, err);
    const size_t max_slots = ctx->params.n / 2;
    if (slots == 0) slots = max_slots;
    if (slots > max_slots || (slots & (slots - 1)) != 0)
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "sum_slots: %zu slots is not a power of two up to %zu", slots, max_slots);
    VEIL_CHECK(veil_ckks_ciphertext_new(&acc, ctx, err));
    VEIL_CHECK(veil_ckks_ciphertext_new(&rot, ctx, err));
    VEIL_CHECK(veil_ckks_mod_drop(ctx, acc, a, a->el.level, err)); /* a copy */
    for (size_t step = 1; step < slots; step <<= 1) {
        const uint64_t g = veil_galois_element_rotation(ctx, (long)step);
        const veil_switch_key *key = find_key(keys, count, g);
        if (!key)
            VEIL_FAIL(err, VEIL_ERR_MISMATCH, "sum_slots: no Galois key for a rotation by %zu (element %llu)", step,
                      (unsigned long long)g);
        VEIL_CHECK(veil_ckks_rotate(ctx, rot, acc, (long)step, key, err));
        VEIL_CHECK(veil_ckks_add(ctx, acc, acc, rot, err));
    }
    VEIL_CHECK(veil_ckks_mod_drop(ctx, out, acc, acc->el.level, err));
done:
    veil_ckks_ciphertext_free(acc);
    veil_ckks_ciphertext_free(rot);
    return st;
}

veil_status veil_ckks_inner_product(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                    const veil_ckks_ciphertext *b, size_t slots, const veil_switch_key *relin_key,
                                    const veil_switch_key *const *keys, size_t count, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    veil_status st = VEIL_OK;
    veil_ckks_ciphertext *prod = NULL;
    VEIL_CHECK(veil_ckks_ciphertext_new(&prod, ctx, err));
    VEIL_CHECK(veil_ckks_mul_relin_rescale(ctx, prod, a, b, relin_key, err));
    VEIL_CHECK(veil_ckks_sum_slots(ctx, out, prod, slots, keys, count, err));
done:
    veil_ckks_ciphertext_free(prod);
    return st;
}

/* ---- constants ---------------------------------------------------------------------------------- */

veil_status veil_ckks_add_constant(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                   double c, veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(out, err);
    veil_status st = VEIL_OK;
    VEIL_CHECK(check_ct(ctx, a, "add_constant", err));
    const double v = round(c * a->scale);
    if (!isfinite(v) || fabs(v) >= 4611686018427387904.0)
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "add_constant: %g at scale 2^%.1f does not fit 62 bits", c, log2(a->scale));
    VEIL_CHECK(veil_ckks_mod_drop(ctx, out, a, a->el.level, err)); /* a copy (or a itself) */
    /* a constant polynomial is the same value in every NTT slot */
    const veil_ring *r = ctx->ring;
#pragma omp parallel for num_threads(r->threads) schedule(static)
    for (size_t l = 0; l <= out->el.level; l++) {
        const uint64_t q = r->primes[l], k = veil_reduce_i64(&r->mod[l], (int64_t)v);
        uint64_t *x = veil_poly_limb(out->el.c[0], l);
        for (size_t j = 0; j < r->n; j++) x[j] = veil_addmod(x[j], k, q);
    }
done:
    return st;
}

veil_status veil_ckks_mul_constant_at(const veil_context *ctx, veil_ckks_ciphertext *out,
                                      const veil_ckks_ciphertext *a, double c, double target, veil_error *err)
{
    veil_status st = VEIL_OK;
    VEIL_CHECK(check_ct(ctx, a, "mul_constant", err));
    if (a->el.level == 0) VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "mul_constant: the ciphertext is at level 0, no level left");
    const double k = round(c * target * (double)ctx->ring->primes[a->el.level] / a->scale);
    if (!isfinite(k) || fabs(k) >= 4611686018427387904.0)
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "mul_constant: %g does not fit 62 bits at this level and scale", c);
    VEIL_CHECK(veil_ckks_mul_integer(ctx, out, a, (int64_t)k, err));
    VEIL_CHECK(veil_ckks_rescale(ctx, out, out, err));
    out->scale = target; /* the rounding of k is a relative error of at most 1 / (2|k|) on the value */
done:
    return st;
}

veil_status veil_ckks_mul_constant_to_scale(const veil_context *ctx, veil_ckks_ciphertext *out,
                                            const veil_ckks_ciphertext *a, double c, double scale, veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(a, err);
    if (!(scale >= 1.0) || !isfinite(scale))
        return veil_fail(err, VEIL_ERR_ARGUMENT, "mul_constant_to_scale: scale %g is not a finite number >= 1", scale);
    return veil_ckks_mul_constant_at(ctx, out, a, c, scale, err);
}

veil_status veil_ckks_mul_constant(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                   double c, veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(a, err);
    return veil_ckks_mul_constant_at(ctx, out, a, c, a->scale, err);
}

#define LINCOMB_CHUNK 32 /* products of 61-bit residues summed in 128 bits before one reduction */

/*
 * A whole dense layer: out[o] = sum_i weights[o][i] in[i] + bias[o] for every o, with one level. The same
 * integer weights round(w q_l) (products summed with lazy reduction, one rescale), but the coefficients are visited in blocks
 * of LAYER_BLOCK and, inside a block, every output is accumulated from the inputs' stretches while they are
 * in cache: the inputs are read from memory once per layer, not once per output. Zero weights cost nothing
 * (a convolution's matrix is mostly zeros). Inputs of size 3 (products not yet relinearized) give outputs
 * of size 3, relinearized here with relin_key: one relinearization per output instead of one per input.
 */
#define LAYER_BLOCK 128

typedef struct sparse_rows {
    size_t *start, *col; /* CSR: the nonzero weights of output o are start[o] .. start[o + 1] */
    int64_t *w;
    size_t *cstart, *crow, *perm; /* CSC of the same: input i's entries cstart[i] .., CSR index perm[e] */
} sparse_rows;

static void sparse_free(sparse_rows *sr)
{
    free(sr->start);
    free(sr->col);
    free(sr->w);
    free(sr->cstart);
    free(sr->crow);
    free(sr->perm);
}

/* The column-major index of the nonzeros (for the input-major kernel). */
static veil_status sparse_columns(sparse_rows *sr, size_t out_count, size_t in_count, veil_error *err)
{
    const size_t nnz = sr->start[out_count];
    sr->cstart = calloc(in_count + 2, sizeof *sr->cstart);
    sr->crow = calloc(nnz + 1, sizeof *sr->crow);
    sr->perm = calloc(nnz + 1, sizeof *sr->perm);
    if (!sr->cstart || !sr->crow || !sr->perm) return veil_fail(err, VEIL_ERR_NO_MEMORY, "linear_layer");
    for (size_t k = 0; k < nnz; k++) sr->cstart[sr->col[k] + 1]++;
    for (size_t i = 0; i < in_count; i++) sr->cstart[i + 1] += sr->cstart[i];
    size_t *fill = calloc(in_count + 1, sizeof *fill);
    if (!fill) return veil_fail(err, VEIL_ERR_NO_MEMORY, "linear_layer");
    for (size_t o = 0; o < out_count; o++)
        for (size_t k = sr->start[o]; k < sr->start[o + 1]; k++) {
            const size_t i = sr->col[k], e = sr->cstart[i] + fill[i]++;
            sr->crow[e] = o;
            sr->perm[e] = k;
        }
    free(fill);
    return VEIL_OK;
}

static veil_status sparse_weights(sparse_rows *sr, const double *weights, size_t out_count, size_t in_count,
                                  double q_l, veil_error *err)
{
    size_t nnz = 0;
    for (size_t i = 0; i < out_count * in_count; i++) nnz += round(weights[i] * q_l) != 0;
    sr->start = calloc(out_count + 1, sizeof *sr->start);
    sr->col = calloc(nnz + 1, sizeof *sr->col);
    sr->w = calloc(nnz + 1, sizeof *sr->w);
    if (!sr->start || !sr->col || !sr->w) return veil_fail(err, VEIL_ERR_NO_MEMORY, "linear_layer: %zu weights", nnz);
    size_t k = 0;
    for (size_t o = 0; o < out_count; o++) {
        sr->start[o] = k;
        for (size_t i = 0; i < in_count; i++) {
            const double v = round(weights[o * in_count + i] * q_l);
            if (!isfinite(v) || fabs(v) >= 0x1p62)
                return veil_fail(err, VEIL_ERR_ARGUMENT, "linear_layer: weight %g does not fit 62 bits at this level",
                                 weights[o * in_count + i]);
            if (v == 0) continue;
            sr->col[k] = i;
            sr->w[k++] = (int64_t)v;
        }
    }
    sr->start[out_count] = k;
    return VEIL_OK;
}

/* The input-major kernel's working memory, one per thread, allocated once per layer. */
typedef struct layer_scratch {
    double *acc;
    uint32_t *counts;
    uint64_t **outs;
    const uint64_t **ins;
} layer_scratch;

static bool scratch_init(layer_scratch *ls, size_t out_count, size_t in_count, size_t block)
{
    ls->acc = veil_alloc_scratch(out_count * block, sizeof *ls->acc);
    ls->counts = malloc(out_count * sizeof *ls->counts);
    ls->outs = malloc(out_count * sizeof *ls->outs);
    ls->ins = malloc(in_count * sizeof *ls->ins);
    return ls->acc && ls->counts && ls->outs && ls->ins;
}

static void scratch_free(layer_scratch *ls)
{
    veil_free(ls->acc);
    free(ls->counts);
    free(ls->outs);
    free(ls->ins);
}

/* The layer's sums for limb j of polynomial c, coefficients [b0, b1), every output. */
static void layer_block(const veil_context *ctx, const sparse_rows *sr, const double *wd, const double *wq,
                        const uint64_t *wr, veil_poly *const *dst, const veil_ckks_ciphertext *const *in,
                        size_t in_count, size_t out_count, size_t c, size_t j, size_t b0, size_t b1, bool simd,
                        const double *cwd, const double *cwq, const layer_scratch *ls)
{
    const veil_modulus *mod = &ctx->ring->mod[j];
    const uint64_t *src[LINCOMB_CHUNK];
    if (simd && cwd && ls) { /* input-major: the accumulators of every output stay in cache */
        for (size_t o = 0; o < out_count; o++) ls->outs[o] = veil_poly_limb_ptr(dst[o], j) + b0;
        for (size_t i = 0; i < in_count; i++) ls->ins[i] = veil_poly_limb_ptr(in[i]->el.c[c], j) + b0;
        veil_layer_block_avx2(ls->acc, ls->counts, ls->outs, ls->ins, in_count, out_count, sr->cstart, sr->crow, cwd,
                              cwq, b1 - b0, mod->q);
        return;
    }
    for (size_t o = 0; o < out_count; o++) {
        uint64_t *d = veil_poly_limb_ptr(dst[o], j) + b0;
        const size_t s0 = sr->start[o], s1 = sr->start[o + 1];
        if (s0 == s1) {
            memset(d, 0, (b1 - b0) * sizeof *d);
            continue;
        }
        if (simd) {
            /* veil_dot_ptrs_avx2 takes any number of terms; the pointers in chunks */
            for (size_t k0 = s0; k0 < s1; k0 += LINCOMB_CHUNK) {
                const size_t k1 = k0 + LINCOMB_CHUNK < s1 ? k0 + LINCOMB_CHUNK : s1;
                for (size_t k = k0; k < k1; k++) src[k - k0] = veil_poly_limb_ptr(in[sr->col[k]]->el.c[c], j) + b0;
                if (k0 == s0) {
                    veil_dot_ptrs_avx2(d, src, k1 - k0, wd + k0, wq + k0, b1 - b0, mod->q);
                } else {
                    uint64_t part[LAYER_BLOCK];
                    veil_dot_ptrs_avx2(part, src, k1 - k0, wd + k0, wq + k0, b1 - b0, mod->q);
                    for (size_t t = 0; t < b1 - b0; t++) d[t] = veil_addmod(d[t], part[t], mod->q);
                }
            }
            continue;
        }
        for (size_t t = 0; t < b1 - b0; t++) {
            veil_u128 acc = 0;
            for (size_t k = s0; k < s1; k++) {
                acc += (veil_u128)wr[k] * veil_poly_limb_ptr(in[sr->col[k]]->el.c[c], j)[b0 + t];
                if ((k - s0) % LINCOMB_CHUNK == LINCOMB_CHUNK - 1) acc = veil_reduce128(mod, acc);
            }
            d[t] = veil_reduce128(mod, acc);
        }
    }
}

veil_status veil_ckks_linear_layer(const veil_context *ctx, veil_ckks_ciphertext *const *out, size_t out_count,
                                   const veil_ckks_ciphertext *const *in, size_t in_count, const double *weights,
                                   const double *bias, const veil_switch_key *relin_key, veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(in, err);
    VEIL_REQUIRE(weights, err);
    if (in_count == 0 || out_count == 0) return veil_fail(err, VEIL_ERR_ARGUMENT, "linear_layer: no inputs or outputs");
    for (size_t i = 0; i < in_count; i++) {
        VEIL_TRY(check_ct(ctx, in[i], "linear_layer", err));
        if (in[i]->el.size != in[0]->el.size || in[i]->el.level != in[0]->el.level || !veil_ckks_same_scale(in[i]->scale, in[0]->scale))
            return veil_fail(err, VEIL_ERR_MISMATCH, "linear_layer: input %zu differs from the first in size, level or "
                             "scale", i);
    }
    for (size_t o = 0; o < out_count; o++) {
        VEIL_TRY(veil_rlwe_check_output(ctx, &out[o]->el, NULL, err));
        for (size_t i = 0; i < in_count; i++)
            if (out[o] == in[i]) return veil_fail(err, VEIL_ERR_ARGUMENT, "linear_layer: an output is also an input");
    }
    const size_t size = in[0]->el.size, level = in[0]->el.level, n = ctx->ring->n;
    if (level == 0) return veil_fail(err, VEIL_ERR_ARGUMENT, "linear_layer: the inputs are at level 0");
    if (size == 3) VEIL_TRY(veil_rlwe_check_switch_key(ctx, relin_key, 0, "linear_layer", err));
    const double q_l = (double)ctx->ring->primes[level];
    sparse_rows sr = {0};
    veil_status st = sparse_weights(&sr, weights, out_count, in_count, q_l, err);
    const size_t nnz = sr.start ? sr.start[out_count] : 0;
    double *wd = calloc((nnz + 1) * (level + 1), sizeof *wd), *wq = calloc((nnz + 1) * (level + 1), sizeof *wq);
    uint64_t *wr = calloc((nnz + 1) * (level + 1), sizeof *wr);
    veil_poly **polys = calloc(out_count * size, sizeof *polys);
    if (st == VEIL_OK && (!wd || !wq || !wr || !polys)) st = veil_fail(err, VEIL_ERR_NO_MEMORY, "linear_layer");
    /* the AVX2 kernels take primes below 2^50; a larger one (a first prime grown for the outputs' bound)
     * has its limb summed by the scalar kernel, the other limbs keep the vector one */
    const bool simd = ctx->ring->kernel == VEIL_KERNEL_AVX2;
    for (size_t j = 0; st == VEIL_OK && j <= level; j++) {
        const uint64_t q = ctx->ring->primes[j];
        for (size_t k = 0; k < nnz; k++) {
            const uint64_t mag = (uint64_t)(sr.w[k] < 0 ? -sr.w[k] : sr.w[k]) % q, r = sr.w[k] < 0 && mag ? q - mag : mag;
            wr[j * nnz + k] = r;
            wd[j * nnz + k] = r > q / 2 ? -(double)(q - r) : (double)r;
            wq[j * nnz + k] = wd[j * nnz + k] / (double)q;
        }
    }
    for (size_t i = 0; st == VEIL_OK && i < out_count * size; i++)
        st = veil_context_poly_new(&polys[i], ctx, level, VEIL_FORM_EVAL, err);
    /* the weights in column order too, for the input-major kernel; blocks sized so its accumulators fit L2 */
    double *cwd = NULL, *cwq = NULL;
    size_t block = LAYER_BLOCK;
    if (st == VEIL_OK && simd && out_count >= 8) { /* few outputs: their sums stay in registers output-major */
        st = sparse_columns(&sr, out_count, in_count, err);
        cwd = calloc((nnz + 1) * (level + 1), sizeof *cwd);
        cwq = calloc((nnz + 1) * (level + 1), sizeof *cwq);
        if (st == VEIL_OK && (!cwd || !cwq)) st = veil_fail(err, VEIL_ERR_NO_MEMORY, "linear_layer");
        for (size_t j = 0; st == VEIL_OK && j <= level; j++)
            for (size_t e = 0; e < nnz; e++) {
                cwd[j * nnz + e] = wd[j * nnz + sr.perm[e]];
                cwq[j * nnz + e] = wq[j * nnz + sr.perm[e]];
            }
        block = (size_t)1 << 15; /* 256 KiB of accumulators: 2^15 doubles over the outputs */
        block = (block / (out_count ? out_count : 1)) & ~(size_t)3;
        if (block > 256) block = 256;
        if (block < 16) block = 16;
        if (block > n) block = n;
    }
    if (st == VEIL_OK) {
        const size_t blocks = (n + block - 1) / block;
        veil_poly **dst = calloc(out_count, sizeof *dst);
        if (!dst) st = veil_fail(err, VEIL_ERR_NO_MEMORY, "linear_layer");
        for (size_t c = 0; st == VEIL_OK && c < size; c++) {
            for (size_t o = 0; o < out_count; o++) dst[o] = polys[o * size + c];
#pragma omp parallel num_threads(ctx->ring->threads)
            {
                /* per thread, once: without it (out of memory) the output-major path needs none */
                layer_scratch ls = {0};
                const bool have = cwd && scratch_init(&ls, out_count, in_count, block);
                for (size_t j = 0; j <= level; j++) {
#pragma omp for schedule(static)
                    for (size_t b = 0; b < blocks; b++)
                        layer_block(ctx, &sr, wd + j * nnz, wq + j * nnz, wr + j * nnz, dst, in, in_count, out_count,
                                    c, j, b * block, (b + 1) * block < n ? (b + 1) * block : n,
                                    simd && ctx->ring->primes[j] < ((uint64_t)1 << VEIL_PRIME_SIMD_MAX_BITS),
                                    cwd ? cwd + j * nnz : NULL, cwq ? cwq + j * nnz : NULL, have ? &ls : NULL);
                }
                scratch_free(&ls);
            }
        }
        free(dst);
    }
    /* each output: adopt its polynomials, rescale (the weights carried q_l), bias, relinearize */
    for (size_t o = 0; st == VEIL_OK && o < out_count; o++) {
        veil_ckks_ciphertext *y = out[o];
        for (size_t c = 0; c < 3; c++) {
            veil_poly_free(y->el.c[c]);
            y->el.c[c] = c < size ? polys[o * size + c] : NULL;
            if (c < size) polys[o * size + c] = NULL;
        }
        y->el.size = size;
        y->el.level = level;
        y->scale = in[0]->scale * q_l;
        y->el.seeded = false;
        /* relinearized before the rescale, so that the key switch's noise is divided by q_l too */
        if (size == 3) st = veil_ckks_relinearize(ctx, y, y, relin_key, err);
        if (st == VEIL_OK) st = veil_ckks_rescale(ctx, y, y, err);
        if (st == VEIL_OK) y->scale = in[0]->scale;
        if (st == VEIL_OK && bias && bias[o] != 0) st = veil_ckks_add_constant(ctx, y, y, bias[o], err);
    }
    for (size_t i = 0; polys && i < out_count * size; i++) veil_poly_free(polys[i]);
    free(polys);
    free(cwd);
    free(cwq);
    free(wd);
    free(wq);
    free(wr);
    sparse_free(&sr);
    return st;
}

/*
 * Chebyshev evaluation by baby-step giant-step (Bossuat et al., Eurocrypt 2021, section 4; Han-Ki 2020):
 * baby steps T_1..T_g (g a power of two near sqrt(d)), giant steps T_g, T_2g, T_4g, ...; the polynomial is
 * divided by the largest giant step T_D not above its degree, p = q T_D + r (T_k = 2 T_D T_k-D - T_2D-k),
 * recursively, down to leaves of degree < g that are sums of constant multiples of baby steps.
 * Scales: every subtree is evaluated at a target scale chosen so that the product q * T_D lands exactly on
 * its parent's target (q at target * q_t / scale(T_D), q_t the prime that product's rescale drops), so
 * every sum adds operands of one scale. Levels are predicted before anything is computed.
 */
typedef struct cheb_state {
    const veil_context *ctx;
    const veil_switch_key *rk;
    veil_ckks_ciphertext **T; /* T[k] for k <= g and for the giant steps (k = g * 2^i) */
    long *level;              /* level of T[k] (also filled by the dry run) */
    size_t g, max_index;
} cheb_state;

static size_t cheb_baby(size_t degree)
{
    size_t g = 2;
    while (g * g < degree + 1) g *= 2;
    return g;
}

static bool all_zero(const double *c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (c[i] != 0.0) return false;
    return true;
}

/* The largest giant step D = g * 2^i <= degree. */
static size_t cheb_giant(const cheb_state *cs, size_t degree)
{
    size_t d = cs->g;
    while (2 * d <= degree) d *= 2;
    return d;
}

/* q (degree deg - D) and r (degree < D) with p = q T_D + r. q and r have room for D entries. */
static void cheb_divide(double *q, double *r, const double *c, size_t deg, size_t D)
{
    memset(q, 0, D * sizeof *q);
    memcpy(r, c, D * sizeof *r);
    q[0] = c[D];
    for (size_t k = D + 1; k <= deg; k++) {
        q[k - D] += 2 * c[k];
        r[2 * D - k] -= c[k];
    }
}

/* The level at which cheb_eval leaves p (degree deg). Mirrors cheb_eval exactly. */
static long cheb_level(const cheb_state *cs, const double *c, size_t deg)
{
    if (deg < cs->g) {
        long lv = cs->level[1];
        for (size_t j = 1; j <= deg; j++)
            if (c[j] != 0.0 && cs->level[j] < lv) lv = cs->level[j];
        return lv - 1;
    }
    const size_t D = cheb_giant(cs, deg);
    double q[4096], r[4096];
    cheb_divide(q, r, c, deg, D);
    long lq = cheb_level(cs, q, deg - D), lp = (lq < cs->level[D] ? lq : cs->level[D]) - 1;
    if (all_zero(r, D)) return lp;
    long lr = cheb_level(cs, r, D - 1);
    return lp < lr ? lp : lr;
}

static veil_status cheb_eval(const cheb_state *cs, veil_ckks_ciphertext *out, const double *c, size_t deg, double target,
                             veil_error *err)
{
    const veil_context *ctx = cs->ctx;
    if (deg < cs->g) { /* a leaf: sum of c_j T_j, each brought to the target scale, plus c_0 */
        bool started = false;
        veil_ckks_ciphertext *term = NULL;
        VEIL_TRY(veil_ckks_ciphertext_new(&term, ctx, err));
        veil_status st = VEIL_OK;
        for (size_t j = 1; st == VEIL_OK && j <= deg; j++) {
            if (c[j] == 0.0) continue;
            st = veil_ckks_mul_constant_at(ctx, started ? term : out, cs->T[j], c[j], target, err);
            if (st == VEIL_OK && started) st = veil_ckks_add(ctx, out, out, term, err);
            started = true;
        }
        if (st == VEIL_OK && !started) st = veil_ckks_mul_constant_at(ctx, out, cs->T[1], 0.0, target, err);
        if (st == VEIL_OK) st = veil_ckks_add_constant(ctx, out, out, c[0], err);
        veil_ckks_ciphertext_free(term);
        return st;
    }
    const size_t D = cheb_giant(cs, deg);
    double *q = veil_alloc(2 * D, sizeof *q), *r = q ? q + D : NULL;
    if (!q) return veil_fail(err, VEIL_ERR_NO_MEMORY, "eval_chebyshev: out of memory");
    cheb_divide(q, r, c, deg, D);
    const long lq = cheb_level(cs, q, deg - D), t = lq < cs->level[D] ? lq : cs->level[D];
    veil_ckks_ciphertext *qe = NULL, *re = NULL;
    veil_status st = veil_ckks_ciphertext_new(&qe, ctx, err);
    if (st == VEIL_OK) st = veil_ckks_ciphertext_new(&re, ctx, err);
    /* q at the scale that makes q * T_D land on target after the rescale drops prime t */
    if (st == VEIL_OK) st = cheb_eval(cs, qe, q, deg - D, target * (double)ctx->ring->primes[t] / cs->T[D]->scale, err);
    if (st == VEIL_OK && (long)qe->el.level != lq)
        st = veil_fail(err, VEIL_ERR_INTERNAL, "eval_chebyshev: predicted level %ld, got %zu", lq, qe->el.level);
    if (st == VEIL_OK) st = veil_ckks_mul_relin_rescale(ctx, out, qe, cs->T[D], cs->rk, err);
    if (st == VEIL_OK) {
        out->scale = target; /* exact up to floating-point rounding of the product of scales */
        if (!all_zero(r, D)) {
            st = cheb_eval(cs, re, r, D - 1, target, err);
            if (st == VEIL_OK) st = veil_ckks_add(ctx, out, out, re, err);
        }
    }
    veil_ckks_ciphertext_free(qe);
    veil_ckks_ciphertext_free(re);
    veil_free(q);
    return st;
}

/* Levels of the powers for an input at `top`, without computing them (the dry run of the power steps). */
static void cheb_power_levels(long *level, size_t g, size_t max_index, long top)
{
    level[1] = top - 1; /* the linear map */
    for (size_t k = 2; k <= g; k++) {
        const size_t h = k / 2;
        level[k] = (k % 2 == 0 ? level[h] : (level[h] < level[h + 1] ? level[h] : level[h + 1])) - 1;
    }
    for (size_t d = 2 * g; d <= max_index; d *= 2) level[d] = level[d / 2] - 1;
}

size_t veil_ckks_chebyshev_depth(size_t degree)
{
    if (degree == 0) return 0;
    if (degree > 1024) return (size_t)-1;
    cheb_state cs = {0};
    long level[2049];
    double c[1025];
    cs.g = cheb_baby(degree);
    cs.max_index = cheb_giant(&cs, degree < cs.g ? cs.g : degree);
    cs.level = level;
    const long top = 100000;
    cheb_power_levels(level, cs.g, cs.max_index, top);
    for (size_t k = 0; k <= degree; k++) c[k] = 1.0; /* all terms present: the deepest case */
    return (size_t)(top - cheb_level(&cs, c, degree));
}

veil_status veil_ckks_eval_chebyshev(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                     const double *coeffs, size_t degree, double lo, double hi,
                                     const veil_switch_key *relin_key, veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(coeffs, err);
    VEIL_TRY(check_ct(ctx, a, "eval_chebyshev", err));
    if (!(hi > lo) || !isfinite(lo) || !isfinite(hi))
        return veil_fail(err, VEIL_ERR_ARGUMENT, "eval_chebyshev: [%g, %g] is not an interval", lo, hi);
    if (degree > 1024) return veil_fail(err, VEIL_ERR_ARGUMENT, "eval_chebyshev: degree %zu above 1024", degree);
    for (size_t k = 0; k <= degree; k++)
        if (!isfinite(coeffs[k])) return veil_fail(err, VEIL_ERR_ARGUMENT, "eval_chebyshev: coefficient %zu is not finite", k);
    const size_t depth = veil_ckks_chebyshev_depth(degree);
    if (depth > a->el.level)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "eval_chebyshev: degree %zu needs %zu levels, the ciphertext has %zu",
                         degree, depth, a->el.level);
    if (degree == 0) {
        veil_ckks_ciphertext *z = NULL;
        VEIL_TRY(veil_ckks_ciphertext_new(&z, ctx, err));
        veil_status st = veil_ckks_mul_integer(ctx, z, a, 0, err);
        if (st == VEIL_OK) st = veil_ckks_add_constant(ctx, out, z, coeffs[0], err);
        veil_ckks_ciphertext_free(z);
        return st;
    }
    cheb_state cs = {ctx, relin_key, NULL, NULL, cheb_baby(degree), 0};
    cs.max_index = cheb_giant(&cs, degree < cs.g ? cs.g : degree);
    cs.T = veil_alloc(cs.max_index + 1, sizeof *cs.T);
    cs.level = veil_alloc(cs.max_index + 1, sizeof *cs.level);
    veil_status st = (cs.T && cs.level) ? VEIL_OK : veil_fail(err, VEIL_ERR_NO_MEMORY, "eval_chebyshev: out of memory");
    /* T_1 = t = alpha x + beta, then the baby steps and the giant steps */
    const double alpha = 2.0 / (hi - lo), beta = -(hi + lo) / (hi - lo), scale = a->scale;
    for (size_t k = 1; st == VEIL_OK && k <= cs.max_index; k++)
        if (k <= cs.g || (k % cs.g == 0 && ((k / cs.g) & (k / cs.g - 1)) == 0)) st = veil_ckks_ciphertext_new(&cs.T[k], ctx, err);
    if (st == VEIL_OK) st = veil_ckks_mul_constant_at(ctx, cs.T[1], a, alpha, scale, err);
    if (st == VEIL_OK) st = veil_ckks_add_constant(ctx, cs.T[1], cs.T[1], beta, err);
    for (size_t k = 2; st == VEIL_OK && k <= cs.g; k++) {
        const size_t h = k / 2;
        if (k % 2 == 0) { /* T_2h = 2 T_h^2 - 1 */
            st = veil_ckks_mul_relin_rescale(ctx, cs.T[k], cs.T[h], cs.T[h], relin_key, err);
            if (st == VEIL_OK) st = veil_ckks_mul_integer(ctx, cs.T[k], cs.T[k], 2, err);
            if (st == VEIL_OK) st = veil_ckks_add_constant(ctx, cs.T[k], cs.T[k], -1.0, err);
        } else { /* T_2h+1 = 2 T_h T_h+1 - T_1 */
            st = veil_ckks_mul_relin_rescale(ctx, cs.T[k], cs.T[h], cs.T[h + 1], relin_key, err);
            if (st == VEIL_OK) st = veil_ckks_mul_integer(ctx, cs.T[k], cs.T[k], 2, err);
            if (st == VEIL_OK) st = veil_ckks_sub(ctx, cs.T[k], cs.T[k], cs.T[1], err); /* aligns T_1's scale */
        }
    }
    for (size_t d = 2 * cs.g; st == VEIL_OK && d <= cs.max_index; d *= 2) {
        st = veil_ckks_mul_relin_rescale(ctx, cs.T[d], cs.T[d / 2], cs.T[d / 2], relin_key, err);
        if (st == VEIL_OK) st = veil_ckks_mul_integer(ctx, cs.T[d], cs.T[d], 2, err);
        if (st == VEIL_OK) st = veil_ckks_add_constant(ctx, cs.T[d], cs.T[d], -1.0, err);
    }
    for (size_t k = 1; st == VEIL_OK && k <= cs.max_index; k++)
        if (cs.T[k]) cs.level[k] = (long)cs.T[k]->el.level;
    if (st == VEIL_OK) {
        double *c = veil_alloc(degree + 1, sizeof *c);
        if (!c) st = veil_fail(err, VEIL_ERR_NO_MEMORY, "eval_chebyshev: out of memory");
        else {
            memcpy(c, coeffs, (degree + 1) * sizeof *c);
            st = cheb_eval(&cs, out, c, degree, scale, err);
            veil_free(c);
        }
    }
    for (size_t k = 1; cs.T && k <= cs.max_index; k++) veil_ckks_ciphertext_free(cs.T[k]);
    veil_free(cs.T);
    veil_free(cs.level);
    return st;
}
