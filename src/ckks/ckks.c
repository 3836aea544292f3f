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
    veil_poly_free(pt->mqp);
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

void veil_ckks_adopt_pair(veil_ckks_ciphertext *ct, veil_poly **pair, size_t level)
{
    veil_rlwe_element_release(&ct->el);
    ct->el.c[0] = pair[0];
    ct->el.c[1] = pair[1];
    pair[0] = pair[1] = NULL;
    ct->el.size = 2;
    ct->el.level = level;
    ct->el.seeded = false;
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
    veil_poly_free(out->mqp);
    out->mqp = NULL;
    out->level = ct->el.level;
    out->scale = ct->scale;
done:
    veil_poly_free(m);
    return st;
}

/* ---- evaluator ---------------------------------------------------------------------------------- */

/* log2 of the modulus at a level */
static double level_bits(const veil_context *ctx, size_t level)
{
    double bits = 0;
    for (size_t l = 0; l <= level && l < ctx->q_count; l++) bits += log2((double)ctx->ring->primes[l]);
    return bits;
}

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

/* out = a times k (big false) or wide (big true: an integer-valued double of any magnitude), a's scale. */
static veil_status mul_integer(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                               int64_t k, double wide, bool big, veil_error *err)
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
        VEIL_CHECK(big ? veil_poly_mul_integral(r.c[i], src, wide, err) : veil_poly_mul_scalar(r.c[i], src, k, err));
        veil_poly_free(src);
        src = NULL;
    }
    commit(out, &r, a->scale);
done:
    veil_poly_free(src);
    if (st != VEIL_OK) veil_rlwe_result_drop(&r, &out->el);
    return st;
}

veil_status veil_ckks_mul_integer(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                  int64_t k, veil_error *err)
{
    return mul_integer(ctx, out, a, k, 0, false, err);
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

veil_status veil_ckks_mul_accumulate(const veil_context *ctx, veil_ckks_ciphertext *acc, const veil_ckks_ciphertext *a,
                                     const veil_ckks_ciphertext *b, veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    veil_status st = VEIL_OK;
    VEIL_CHECK(check_ct(ctx, acc, "mul_accumulate", err));
    VEIL_CHECK(check_ct(ctx, a, "mul_accumulate", err));
    VEIL_CHECK(check_ct(ctx, b, "mul_accumulate", err));
    if (acc == a || acc == b) VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "mul_accumulate: the accumulator is an operand");
    if (a->el.size != 2 || b->el.size != 2)
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "mul_accumulate: relinearize the operands first (sizes %zu and %zu)",
                  a->el.size, b->el.size);
    const size_t level = a->el.level < b->el.level ? a->el.level : b->el.level;
    if (acc->el.size != 3 || acc->el.level != level)
        VEIL_FAIL(err, VEIL_ERR_MISMATCH, "mul_accumulate: the accumulator (size %zu, level %zu) does not match the "
                  "product (size 3, level %zu)", acc->el.size, acc->el.level, level);
    VEIL_CHECK(check_scales(acc->scale, a->scale * b->scale, acc->el.level, level, "mul_accumulate", err));
    veil_limb_products(ctx, acc->el.c[0], a->el.c[0], b->el.c[0], level, true);
    veil_limb_products(ctx, acc->el.c[1], a->el.c[0], b->el.c[1], level, true);
    veil_limb_products(ctx, acc->el.c[1], a->el.c[1], b->el.c[0], level, true);
    veil_limb_products(ctx, acc->el.c[2], a->el.c[1], b->el.c[1], level, true);
done:
    return st;
}

veil_status veil_ckks_mul_sum(const veil_context *ctx, veil_ckks_ciphertext *out,
                                    const veil_ckks_ciphertext *const *a, const veil_ckks_ciphertext *const *b,
                                    size_t count, veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(a, err);
    VEIL_REQUIRE(b, err);
    if (count == 0) return veil_fail(err, VEIL_ERR_ARGUMENT, "mul_sum: no terms");
    veil_status st = VEIL_OK;
    veil_rlwe_result r = {0};
    const veil_rlwe_element **ea = calloc(count, sizeof *ea), **eb = calloc(count, sizeof *eb);
    if (!ea || !eb) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "mul_sum");
    size_t level = SIZE_MAX;
    for (size_t i = 0; i < count; i++) {
        VEIL_CHECK(check_ct(ctx, a[i], "mul_sum", err));
        VEIL_CHECK(check_ct(ctx, b[i], "mul_sum", err));
        if (a[i] == out || b[i] == out) VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "mul_sum: the output is an operand");
        if (a[i]->el.size != 2 || b[i]->el.size != 2)
            VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "mul_sum: relinearize the operands first (sizes %zu and %zu)",
                      a[i]->el.size, b[i]->el.size);
        VEIL_CHECK(check_scales(a[0]->scale * b[0]->scale, a[i]->scale * b[i]->scale, 0, 0, "mul_sum", err));
        if (a[i]->el.level < level) level = a[i]->el.level;
        if (b[i]->el.level < level) level = b[i]->el.level;
        ea[i] = &a[i]->el;
        eb[i] = &b[i]->el;
    }
    VEIL_CHECK(check_out(ctx, out, err));
    VEIL_CHECK(veil_rlwe_result_init(&r, ctx, 3, level, err));
    veil_limb_tensor_sum(ctx, r.c, ea, eb, count, level);
    commit(out, &r, a[0]->scale * b[0]->scale);
done:
    if (st != VEIL_OK) veil_rlwe_result_drop(&r, &out->el);
    free(ea);
    free(eb);
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

/* ---- constants ---------------------------------------------------------------------------------- */

veil_status veil_ckks_add_constant(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                   double c, veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(out, err);
    veil_status st = VEIL_OK;
    VEIL_CHECK(check_ct(ctx, a, "add_constant", err));
    const double v = round(c * a->scale);
    /* beyond 2^62 (a 2^60 scale) from its exact residues, while below half the level's modulus */
    if (!isfinite(v) || (fabs(v) >= 4611686018427387904.0 && !(log2(fabs(v)) < level_bits(ctx, a->el.level) - 1)))
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "add_constant: %g at scale 2^%.1f does not fit the modulus at level %zu", c,
                  log2(a->scale), a->el.level);
    VEIL_CHECK(veil_ckks_mod_drop(ctx, out, a, a->el.level, err)); /* a copy (or a itself) */
    /* a constant polynomial is the same value in every NTT slot */
    const veil_ring *r = ctx->ring;
#pragma omp parallel for num_threads(r->threads) schedule(static)
    for (size_t l = 0; l <= out->el.level; l++) {
        const uint64_t q = r->primes[l], k = veil_reduce_integral(&r->mod[l], v);
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
    /* beyond 2^62 (a 2^60 scale, |c| above 4) from its exact residues, while below the level's modulus */
    const bool big = isfinite(k) && fabs(k) >= 4611686018427387904.0;
    if (!isfinite(k) || (big && !(log2(fabs(k)) < level_bits(ctx, a->el.level) - 1)))
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "mul_constant: %g does not fit the modulus at this level and scale", c);
    VEIL_CHECK(mul_integer(ctx, out, a, big ? 0 : (int64_t)k, k, big, err));
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
