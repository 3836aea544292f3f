/* CKKS plaintexts, ciphertexts, encryption, decryption and the evaluator. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "ckks/ckks_internal.h"

/* ---- objects ----------------------------------------------------------------------------------- */

veil_status veil_ckks_plaintext_new(veil_ckks_plaintext **out, const veil_context *ctx, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(ctx, err);
    *out = veil_alloc(1, sizeof **out);
    if (!*out) return veil_fail(err, VEIL_ERR_NO_MEMORY, "plaintext: out of memory");
    (*out)->ctx = ctx;
    return VEIL_OK;
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
    *out = veil_alloc(1, sizeof **out);
    if (!*out) return veil_fail(err, VEIL_ERR_NO_MEMORY, "ciphertext: out of memory");
    (*out)->ctx = ctx;
    return VEIL_OK;
}

void veil_ckks_ciphertext_free(veil_ckks_ciphertext *ct)
{
    if (!ct) return;
    for (int i = 0; i < 3; i++) veil_poly_free(ct->c[i]);
    veil_free(ct);
}

size_t veil_ckks_plaintext_level(const veil_ckks_plaintext *pt) { return pt ? pt->level : 0; }
double veil_ckks_plaintext_scale(const veil_ckks_plaintext *pt) { return pt ? pt->scale : 0; }
size_t veil_ckks_ciphertext_level(const veil_ckks_ciphertext *ct) { return ct ? ct->level : 0; }
double veil_ckks_ciphertext_scale(const veil_ckks_ciphertext *ct) { return ct ? ct->scale : 0; }
size_t veil_ckks_ciphertext_size(const veil_ckks_ciphertext *ct) { return ct ? ct->size : 0; }

/* A result under construction: polynomials at one level, moved into the output only when complete, so
 * that an output aliasing an input is never overwritten while the input is still read. */
typedef struct result {
    veil_poly *c[3];
    bool borrowed[3]; /* c[i] is the output's own polynomial (result_reuse), not ours to free */
    size_t size, level;
    double scale;
} result;

/* The output must be a ciphertext of this context: its polynomials are replaced by ones of this ring. */
static veil_status check_out(const veil_context *ctx, const veil_ckks_ciphertext *out, veil_error *err)
{
    if (out->ctx != ctx) return veil_fail(err, VEIL_ERR_MISMATCH, "the output ciphertext belongs to another context");
    return VEIL_OK;
}

static veil_status result_init(result *r, const veil_ckks_ciphertext *out, const veil_context *ctx, size_t size,
                               size_t level, veil_error *err)
{
    memset(r, 0, sizeof *r);
    r->size = size;
    r->level = level;
    VEIL_TRY(check_out(ctx, out, err));
    for (size_t i = 0; i < size; i++) VEIL_TRY(veil_context_poly_new(&r->c[i], ctx, level, VEIL_FORM_EVAL, err));
    return VEIL_OK;
}

/*
 * As result_init, but takes the output's own polynomials when they have the right level and the output is
 * none of the inputs (the common case of a caller-provided output in a loop): no allocation then.
 */
static veil_status result_reuse(result *r, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                const veil_ckks_ciphertext *b, const veil_context *ctx, size_t size, size_t level,
                                veil_error *err)
{
    memset(r, 0, sizeof *r);
    r->size = size;
    r->level = level;
    VEIL_TRY(check_out(ctx, out, err));
    const bool reusable = out != a && out != b;
    for (size_t i = 0; i < size; i++) {
        if (reusable && out->c[i] && veil_poly_limb_count(out->c[i]) == level + 1) {
            r->c[i] = out->c[i];
            r->borrowed[i] = true;
        } else {
            VEIL_TRY(veil_context_poly_new(&r->c[i], ctx, level, VEIL_FORM_EVAL, err));
        }
    }
    return VEIL_OK;
}

/*
 * Gives up a result after a failure. An output whose own polynomials were borrowed may have been partly
 * written: it is left empty (size 0), so that it is refused by every later operation instead of decrypting
 * to garbage.
 */
static void result_drop(result *r, veil_ckks_ciphertext *out)
{
    bool touched = false;
    for (int i = 0; i < 3; i++) {
        if (r->borrowed[i]) touched = true;
        else veil_poly_free(r->c[i]);
    }
    if (touched) {
        out->size = 0;
        out->seeded = false;
    }
}

static void result_commit(veil_ckks_ciphertext *out, result *r)
{
    for (int i = 0; i < 3; i++) {
        if (r->borrowed[i]) continue; /* already the output's own polynomial */
        veil_poly_free(out->c[i]);
        out->c[i] = r->c[i];
    }
    out->size = r->size;
    out->level = r->level;
    out->scale = r->scale;
    out->seeded = false;
}

static veil_status check_ct(const veil_context *ctx, const veil_ckks_ciphertext *ct, const char *op, veil_error *err)
{
    if (!ct) return veil_fail(err, VEIL_ERR_NULL, "%s: a ciphertext argument is NULL", op);
    if (ct->ctx != ctx) return veil_fail(err, VEIL_ERR_MISMATCH, "%s: a ciphertext belongs to another context", op);
    if (ct->size < 2) return veil_fail(err, VEIL_ERR_ARGUMENT, "%s: a ciphertext is empty", op);
    return VEIL_OK;
}

static bool same_scale(double a, double b)
{
    return fabs(a - b) <= ldexp(fmax(a, b), -40);
}

static veil_status check_scales(double a, double b, size_t la, size_t lb, const char *op, veil_error *err)
{
    if (same_scale(a, b)) return VEIL_OK;
    return veil_fail(err, VEIL_ERR_MISMATCH,
                     "%s: operands have different scales (2^%.4f at level %zu, 2^%.4f at level %zu) that one "
                     "constant product cannot align (too far apart, or no level left): rescale one of them first",
                     op, log2(a), la, log2(b), lb);
}

/* ---- limb-level helpers ------------------------------------------------------------------------ */

/* ---- encryption and decryption ------------------------------------------------------------------ */

static veil_status check_pt(const veil_context *ctx, const veil_ckks_plaintext *pt, const char *op, veil_error *err)
{
    if (!pt) return veil_fail(err, VEIL_ERR_NULL, "%s: the plaintext is NULL", op);
    if (pt->ctx != ctx) return veil_fail(err, VEIL_ERR_MISMATCH, "%s: the plaintext belongs to another context", op);
    if (!pt->m) return veil_fail(err, VEIL_ERR_ARGUMENT, "%s: the plaintext is empty", op);
    return VEIL_OK;
}

/* A fresh small polynomial (error or ternary) over q_0..q_level in evaluation form. */
veil_status veil_ckks_encrypt_pk(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_plaintext *pt,
                                 const veil_public_key *pk, veil_prng *prng, veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(pk, err);
    VEIL_TRY(check_pt(ctx, pt, "encrypt", err));
    if (pk->ctx != ctx || out->ctx != ctx) return veil_fail(err, VEIL_ERR_MISMATCH, "encrypt: objects of another context");
    veil_prng *use, *owned;
    VEIL_TRY(veil_prng_or_os(&use, &owned, prng, err));
    result r;
    veil_status st = result_init(&r, out, ctx, 2, pt->level, err);
    if (st == VEIL_OK) st = veil_encrypt_zero_pk(ctx, r.c[0], r.c[1], pt->level, pk, use, err);
    if (st == VEIL_OK) {
        veil_limbwise(ctx, r.c[0], r.c[0], pt->m, pt->level, VEIL_LIMB_ADD);
        r.scale = pt->scale;
        result_commit(out, &r);
    } else {
        result_drop(&r, out);
    }
    veil_prng_free(owned);
    return st;
}

veil_status veil_ckks_encrypt_sk(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_plaintext *pt,
                                 const veil_secret_key *sk, veil_prng *prng, veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(sk, err);
    VEIL_TRY(check_pt(ctx, pt, "encrypt", err));
    if (sk->ctx != ctx || out->ctx != ctx) return veil_fail(err, VEIL_ERR_MISMATCH, "encrypt: objects of another context");
    veil_prng *use, *owned;
    VEIL_TRY(veil_prng_or_os(&use, &owned, prng, err));
    result r;
    uint8_t seed[VEIL_SEED_BYTES];
    veil_status st = result_init(&r, out, ctx, 2, pt->level, err);
    if (st == VEIL_OK) st = veil_encrypt_zero_sk(ctx, r.c[0], r.c[1], pt->level, sk, seed, use, err);
    if (st == VEIL_OK) {
        veil_limbwise(ctx, r.c[0], r.c[0], pt->m, pt->level, VEIL_LIMB_ADD);
        r.scale = pt->scale;
        result_commit(out, &r);
        out->seeded = true; /* c1 is the seed's expansion: a stored copy keeps only the seed */
        memcpy(out->seed, seed, sizeof seed);
    } else {
        result_drop(&r, out);
    }
    veil_prng_free(owned);
    return st;
}

veil_status veil_ckks_decrypt(const veil_context *ctx, veil_ckks_plaintext *out, const veil_ckks_ciphertext *ct,
                              const veil_secret_key *sk, veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(sk, err);
    VEIL_TRY(check_ct(ctx, ct, "decrypt", err));
    if (sk->ctx != ctx || out->ctx != ctx) return veil_fail(err, VEIL_ERR_MISMATCH, "decrypt: objects of another context");
    veil_poly *m = NULL;
    VEIL_TRY(veil_decrypt_phase(ctx, &m, ct->c, ct->size, ct->level, sk, err));
    veil_poly_free(out->m);
    out->m = m;
    out->level = ct->level;
    out->scale = ct->scale;
    return VEIL_OK;
}

/* ---- evaluator ---------------------------------------------------------------------------------- */

static veil_status mul_constant_to_scale(const veil_context *ctx, veil_ckks_ciphertext *out,
                                         const veil_ckks_ciphertext *a, double c, double target, veil_error *err);
static veil_status add_sub(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                           const veil_ckks_ciphertext *b, bool subtract, veil_error *err);

/*
 * Can `own` be brought to scale `target` by one constant product: the integer round(target * q_l / own) must
 * be at least 2^20 (precision) and below 2^62 (it must fit), and a level must be left.
 */
static bool alignable(const veil_context *ctx, const veil_ckks_ciphertext *own, double target)
{
    if (own->level == 0) return false;
    const double k = target * (double)ctx->ring->primes[own->level] / own->scale;
    return k >= 0x1p20 && k < 0x1p62;
}

/*
 * Operands at different scales (typically the drift of rescaling by primes that are not exactly the scale):
 * the one at the higher level, or either at equal levels, is multiplied by 1 at the other's scale, which uses
 * one of its levels. Scales too far apart for one constant product, or no level left, are an error.
 */
static veil_status add_sub_aligned(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                   const veil_ckks_ciphertext *b, bool subtract, veil_error *err)
{
    const char *op = subtract ? "sub" : "add";
    bool move_a;
    if (a->level != b->level && alignable(ctx, a->level > b->level ? a : b, a->level > b->level ? b->scale : a->scale))
        move_a = a->level > b->level;
    else if (a->level == b->level && alignable(ctx, b, a->scale)) move_a = false;
    else if (a->level == b->level && alignable(ctx, a, b->scale)) move_a = true;
    else return check_scales(a->scale, b->scale, a->level, b->level, op, err);
    veil_ckks_ciphertext *t = NULL;
    VEIL_TRY(veil_ckks_ciphertext_new(&t, ctx, err));
    veil_status st = mul_constant_to_scale(ctx, t, move_a ? a : b, 1.0, move_a ? b->scale : a->scale, err);
    if (st == VEIL_OK) st = move_a ? add_sub(ctx, out, t, b, subtract, err) : add_sub(ctx, out, a, t, subtract, err);
    veil_ckks_ciphertext_free(t);
    return st;
}

static veil_status add_sub(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                           const veil_ckks_ciphertext *b, bool subtract, veil_error *err)
{
    const char *op = subtract ? "sub" : "add";
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(out, err);
    VEIL_TRY(check_ct(ctx, a, op, err));
    VEIL_TRY(check_ct(ctx, b, op, err));
    if (!same_scale(a->scale, b->scale)) return add_sub_aligned(ctx, out, a, b, subtract, err);
    const size_t level = a->level < b->level ? a->level : b->level;
    const size_t size = a->size > b->size ? a->size : b->size;
    result r;
    veil_status st = result_reuse(&r, out, a, b, ctx, size, level, err);
    if (st != VEIL_OK) {
        result_drop(&r, out);
        return st;
    }
    for (size_t i = 0; i < size; i++) {
        if (i < a->size && i < b->size) veil_limbwise(ctx, r.c[i], a->c[i], b->c[i], level, subtract ? VEIL_LIMB_SUB : VEIL_LIMB_ADD);
        else if (i < a->size) veil_limbwise(ctx, r.c[i], a->c[i], NULL, level, VEIL_LIMB_COPY);
        else veil_limbwise(ctx, r.c[i], b->c[i], NULL, level, subtract ? VEIL_LIMB_NEG : VEIL_LIMB_COPY);
    }
    r.scale = a->scale;
    result_commit(out, &r);
    return VEIL_OK;
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

veil_status veil_ckks_negate(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                             veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(out, err);
    VEIL_TRY(check_ct(ctx, a, "negate", err));
    result r;
    veil_status st = result_reuse(&r, out, a, NULL, ctx, a->size, a->level, err);
    if (st != VEIL_OK) {
        result_drop(&r, out);
        return st;
    }
    for (size_t i = 0; i < a->size; i++) veil_limbwise(ctx, r.c[i], a->c[i], NULL, a->level, VEIL_LIMB_NEG);
    r.scale = a->scale;
    result_commit(out, &r);
    return VEIL_OK;
}

static veil_status plain_op(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                            const veil_ckks_plaintext *p, bool multiply, veil_error *err)
{
    const char *op = multiply ? "mul_plain" : "add_plain";
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(out, err);
    VEIL_TRY(check_ct(ctx, a, op, err));
    VEIL_TRY(check_pt(ctx, p, op, err));
    if (!multiply) VEIL_TRY(check_scales(a->scale, p->scale, a->level, p->level, op, err));
    const size_t level = a->level < p->level ? a->level : p->level;
    result r;
    veil_status st = result_reuse(&r, out, a, NULL, ctx, a->size, level, err);
    if (st != VEIL_OK) {
        result_drop(&r, out);
        return st;
    }
    for (size_t i = 0; i < a->size; i++) {
        if (multiply) veil_limb_products(ctx, r.c[i], a->c[i], p->m, level, false);
        else if (i == 0) veil_limbwise(ctx, r.c[i], a->c[i], p->m, level, VEIL_LIMB_ADD);
        else veil_limbwise(ctx, r.c[i], a->c[i], NULL, level, VEIL_LIMB_COPY);
    }
    r.scale = multiply ? a->scale * p->scale : a->scale;
    result_commit(out, &r);
    return VEIL_OK;
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
    VEIL_TRY(check_ct(ctx, acc, "mul_plain_accumulate", err));
    VEIL_TRY(check_ct(ctx, a, "mul_plain_accumulate", err));
    VEIL_TRY(check_pt(ctx, p, "mul_plain_accumulate", err));
    if (acc == a) return veil_fail(err, VEIL_ERR_ARGUMENT, "mul_plain_accumulate: the accumulator is the operand");
    const size_t level = a->level < p->level ? a->level : p->level;
    if (acc->size != a->size || acc->level != level)
        return veil_fail(err, VEIL_ERR_MISMATCH, "mul_plain_accumulate: the accumulator (size %zu, level %zu) does not "
                         "match the product (size %zu, level %zu)", acc->size, acc->level, a->size, level);
    VEIL_TRY(check_scales(acc->scale, a->scale * p->scale, acc->level, level, "mul_plain_accumulate", err));
    for (size_t i = 0; i < a->size; i++) veil_limb_products(ctx, acc->c[i], a->c[i], p->m, level, true);
    acc->seeded = false;
    return VEIL_OK;
}

veil_status veil_ckks_mul_integer(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                  int64_t k, veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(out, err);
    VEIL_TRY(check_ct(ctx, a, "mul_integer", err));
    result r;
    veil_status st = result_init(&r, out, ctx, a->size, a->level, err);
    for (size_t i = 0; st == VEIL_OK && i < a->size; i++) {
        veil_poly *src = NULL;
        st = veil_context_poly_new(&src, ctx, a->level, VEIL_FORM_EVAL, err);
        if (st == VEIL_OK) {
            veil_limbwise(ctx, src, a->c[i], NULL, a->level, VEIL_LIMB_COPY);
            st = veil_poly_mul_scalar(r.c[i], src, k, err);
        }
        veil_poly_free(src);
    }
    if (st != VEIL_OK) {
        result_drop(&r, out);
        return st;
    }
    r.scale = a->scale;
    result_commit(out, &r);
    return VEIL_OK;
}

veil_status veil_ckks_mul(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                          const veil_ckks_ciphertext *b, veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(out, err);
    VEIL_TRY(check_ct(ctx, a, "mul", err));
    VEIL_TRY(check_ct(ctx, b, "mul", err));
    if (a->size != 2 || b->size != 2)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "mul: relinearize the operands first (sizes %zu and %zu)", a->size,
                         b->size);
    const size_t level = a->level < b->level ? a->level : b->level;
    result r;
    veil_status st = result_reuse(&r, out, a, b, ctx, 3, level, err);
    if (st != VEIL_OK) {
        result_drop(&r, out);
        return st;
    }
    /* (a0 + a1 s)(b0 + b1 s) = a0 b0 + (a0 b1 + a1 b0) s + a1 b1 s^2 */
    veil_limb_products(ctx, r.c[0], a->c[0], b->c[0], level, false);
    veil_limb_products(ctx, r.c[1], a->c[0], b->c[1], level, false);
    veil_limb_products(ctx, r.c[1], a->c[1], b->c[0], level, true);
    veil_limb_products(ctx, r.c[2], a->c[1], b->c[1], level, false);
    r.scale = a->scale * b->scale;
    result_commit(out, &r);
    return VEIL_OK;
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

veil_status veil_ckks_relinearize(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                  const veil_switch_key *relin_key, veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(out, err);
    VEIL_TRY(check_ct(ctx, a, "relinearize", err));
    VEIL_TRY(check_key(ctx, relin_key, 0, "relinearize", err));
    if (a->size == 2) return veil_ckks_mod_drop(ctx, out, a, a->level, err); /* nothing to do: a copy */
    result r;
    veil_status st = result_reuse(&r, out, a, NULL, ctx, 2, a->level, err);
    if (st == VEIL_OK) st = veil_keyswitch(ctx, r.c[0], r.c[1], a->c[2], relin_key, err);
    if (st != VEIL_OK) {
        result_drop(&r, out);
        return st;
    }
    veil_limbwise(ctx, r.c[0], r.c[0], a->c[0], a->level, VEIL_LIMB_ADD);
    veil_limbwise(ctx, r.c[1], r.c[1], a->c[1], a->level, VEIL_LIMB_ADD);
    r.scale = a->scale;
    result_commit(out, &r);
    return VEIL_OK;
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
    VEIL_TRY(check_ct(ctx, a, "rescale", err));
    if (a->level == 0) return veil_fail(err, VEIL_ERR_ARGUMENT, "rescale: the ciphertext is at level 0, no prime left to drop");
    const double new_scale = a->scale / (double)ctx->ring->primes[a->level];
    VEIL_TRY(check_rescaled_scale(ctx, new_scale, a->level - 1, "rescale", err));
    result r;
    veil_status st = result_reuse(&r, out, a, NULL, ctx, a->size, a->level - 1, err);
    for (size_t i = 0; st == VEIL_OK && i < a->size; i++) st = veil_poly_rescale(r.c[i], a->c[i], err);
    if (st != VEIL_OK) {
        result_drop(&r, out);
        return st;
    }
    r.scale = new_scale;
    result_commit(out, &r);
    return VEIL_OK;
}

veil_status veil_ckks_mul_relin_rescale(const veil_context *ctx, veil_ckks_ciphertext *out,
                                        const veil_ckks_ciphertext *a, const veil_ckks_ciphertext *b,
                                        const veil_switch_key *relin_key, veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(out, err);
    /* every check that relinearize and rescale would make comes first, so a failure leaves out untouched
     * (out may be one of the inputs) */
    VEIL_TRY(check_ct(ctx, a, "mul_relin_rescale", err));
    VEIL_TRY(check_ct(ctx, b, "mul_relin_rescale", err));
    VEIL_TRY(check_key(ctx, relin_key, 0, "mul_relin_rescale", err));
    if (a->level == 0 || b->level == 0)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "mul_relin_rescale: an operand is at level 0, no prime left to rescale by");
    const size_t level = a->level < b->level ? a->level : b->level;
    VEIL_TRY(check_rescaled_scale(ctx, a->scale * b->scale / (double)ctx->ring->primes[level], level - 1,
                                  "mul_relin_rescale", err));
    VEIL_TRY(veil_ckks_mul(ctx, out, a, b, err));
    VEIL_TRY(veil_ckks_relinearize(ctx, out, out, relin_key, err));
    return veil_ckks_rescale(ctx, out, out, err);
}

veil_status veil_ckks_mod_drop(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                               size_t level, veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(out, err);
    VEIL_TRY(check_ct(ctx, a, "mod_drop", err));
    if (level > a->level)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "mod_drop: cannot raise a ciphertext from level %zu to %zu", a->level,
                         level);
    result r;
    veil_status st = result_reuse(&r, out, a, NULL, ctx, a->size, level, err);
    if (st != VEIL_OK) {
        result_drop(&r, out);
        return st;
    }
    for (size_t i = 0; i < a->size; i++) veil_limbwise(ctx, r.c[i], a->c[i], NULL, level, VEIL_LIMB_COPY);
    r.scale = a->scale;
    result_commit(out, &r);
    return VEIL_OK;
}

static veil_status apply_galois(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                uint64_t galois, const veil_switch_key *key, const char *op, veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(out, err);
    VEIL_TRY(check_ct(ctx, a, op, err));
    if (galois == 1) return veil_ckks_mod_drop(ctx, out, a, a->level, err); /* a rotation by 0 slots: a copy */
    VEIL_TRY(check_key(ctx, key, galois, op, err));
    if (a->size != 2) return veil_fail(err, VEIL_ERR_ARGUMENT, "%s: relinearize the ciphertext first", op);
    result r;
    veil_poly *rc1 = NULL;
    /* (sigma(c0), sigma(c1)) decrypts under sigma(s); switch sigma(c1) back to s */
    veil_status st = result_reuse(&r, out, a, NULL, ctx, 2, a->level, err);
    if (st == VEIL_OK) st = veil_context_poly_new(&rc1, ctx, a->level, VEIL_FORM_EVAL, err);
    if (st == VEIL_OK) st = veil_poly_automorphism(rc1, a->c[1], galois, err);
    if (st == VEIL_OK) st = veil_keyswitch(ctx, r.c[0], r.c[1], rc1, key, err);
    if (st == VEIL_OK) st = veil_poly_automorphism(rc1, a->c[0], galois, err);
    if (st != VEIL_OK) {
        veil_poly_free(rc1);
        result_drop(&r, out);
        return st;
    }
    veil_limbwise(ctx, r.c[0], r.c[0], rc1, a->level, VEIL_LIMB_ADD);
    veil_poly_free(rc1);
    r.scale = a->scale;
    result_commit(out, &r);
    return VEIL_OK;
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

veil_status veil_ckks_rotate_hoisted(const veil_context *ctx, veil_ckks_ciphertext *const *outs,
                                     const veil_ckks_ciphertext *a, const long *steps, size_t count,
                                     const veil_switch_key *const *galois_keys, veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(outs, err);
    VEIL_REQUIRE(steps, err);
    VEIL_REQUIRE(galois_keys, err);
    VEIL_TRY(check_ct(ctx, a, "rotate_hoisted", err));
    if (a->size != 2) return veil_fail(err, VEIL_ERR_ARGUMENT, "rotate_hoisted: relinearize the ciphertext first");
    if (count == 0 || count > 4096) return veil_fail(err, VEIL_ERR_ARGUMENT, "rotate_hoisted: %zu rotations", count);
    uint64_t *galois = veil_alloc(count, sizeof *galois);
    result *rs = veil_alloc(count, sizeof *rs);
    veil_poly **o0 = veil_alloc(count, sizeof *o0), **o1 = veil_alloc(count, sizeof *o1);
    const veil_switch_key **keys = veil_alloc(count, sizeof *keys);
    veil_status st = (galois && rs && o0 && o1 && keys) ? VEIL_OK : veil_fail(err, VEIL_ERR_NO_MEMORY, "rotate_hoisted: out of memory");
    for (size_t k = 0; st == VEIL_OK && k < count; k++) {
        if (!outs[k] || outs[k] == a || outs[k]->ctx != ctx) st = veil_fail(err, VEIL_ERR_ARGUMENT, "rotate_hoisted: output %zu is NULL, the input, or of another context", k);
        for (size_t m = 0; st == VEIL_OK && m < k; m++)
            if (outs[m] == outs[k]) st = veil_fail(err, VEIL_ERR_ARGUMENT, "rotate_hoisted: outputs %zu and %zu are the same object", m, k);
        if (st != VEIL_OK) break;
        galois[k] = veil_galois_element_rotation(ctx, steps[k]);
        if (galois[k] != 1) st = check_key(ctx, galois_keys[k], galois[k], "rotate_hoisted", err);
        if (st == VEIL_OK) st = result_reuse(&rs[k], outs[k], a, NULL, ctx, 2, a->level, err);
    }
    /* the rotations by 0 slots (element 1) are copies; the others share one ModUp */
    size_t switched = 0;
    for (size_t k = 0; st == VEIL_OK && k < count; k++) {
        if (galois[k] == 1) continue;
        o0[switched] = rs[k].c[0];
        o1[switched] = rs[k].c[1];
        galois[switched] = galois[k];
        keys[switched++] = galois_keys[k];
    }
    veil_poly *rc0 = NULL;
    if (st == VEIL_OK) st = veil_context_poly_new(&rc0, ctx, a->level, VEIL_FORM_EVAL, err);
    if (st == VEIL_OK && switched) st = veil_keyswitch_hoisted(ctx, o0, o1, a->c[1], galois, keys, switched, err);
    for (size_t k = 0, j = 0; st == VEIL_OK && k < count; k++) {
        rs[k].scale = a->scale;
        if (veil_galois_element_rotation(ctx, steps[k]) == 1) {
            veil_limbwise(ctx, rs[k].c[0], a->c[0], NULL, a->level, VEIL_LIMB_COPY);
            veil_limbwise(ctx, rs[k].c[1], a->c[1], NULL, a->level, VEIL_LIMB_COPY);
            continue;
        }
        st = veil_poly_automorphism(rc0, a->c[0], galois[j++], err);
        if (st == VEIL_OK) veil_limbwise(ctx, rs[k].c[0], rs[k].c[0], rc0, a->level, VEIL_LIMB_ADD);
    }
    for (size_t k = 0; rs && k < count; k++) {
        if (st == VEIL_OK) result_commit(outs[k], &rs[k]);
        else result_drop(&rs[k], outs[k]);
    }
    veil_poly_free(rc0);
    veil_free(galois);
    veil_free(rs);
    veil_free(o0);
    veil_free(o1);
    veil_free(keys);
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
    VEIL_TRY(check_ct(ctx, a, "rotate_sum", err));
    if (a->size != 2) return veil_fail(err, VEIL_ERR_ARGUMENT, "rotate_sum: relinearize the ciphertext first");
    if (count == 0 || count > 4096) return veil_fail(err, VEIL_ERR_ARGUMENT, "rotate_sum: %zu rotations", count);
    uint64_t *galois = veil_alloc(count, sizeof *galois);
    if (!galois) return veil_fail(err, VEIL_ERR_NO_MEMORY, "rotate_sum: out of memory");
    veil_status st = VEIL_OK;
    for (size_t k = 0; st == VEIL_OK && k < count; k++) {
        galois[k] = veil_galois_element_rotation(ctx, steps[k]);
        if (galois[k] == 1) st = veil_fail(err, VEIL_ERR_ARGUMENT, "rotate_sum: step %ld rotates by 0 slots", steps[k]);
        else st = check_key(ctx, galois_keys[k], galois[k], "rotate_sum", err);
    }
    result r;
    veil_poly *rot = NULL;
    if (st == VEIL_OK) st = result_reuse(&r, out, a, NULL, ctx, 2, a->level, err);
    else memset(&r, 0, sizeof r);
    if (st == VEIL_OK) st = veil_context_poly_new(&rot, ctx, a->level, VEIL_FORM_EVAL, err);
    /* sum_k (sigma_k(c0) + switch(sigma_k(c1))): the switched parts share one ModUp and one ModDown */
    if (st == VEIL_OK) st = veil_keyswitch_hoisted_sum(ctx, r.c[0], r.c[1], a->c[1], galois, galois_keys, count, err);
    for (size_t k = 0; st == VEIL_OK && k < count; k++) {
        st = veil_poly_automorphism(rot, a->c[0], galois[k], err);
        if (st == VEIL_OK) veil_limbwise(ctx, r.c[0], r.c[0], rot, a->level, VEIL_LIMB_ADD);
    }
    if (st == VEIL_OK) { /* and the unrotated term */
        veil_limbwise(ctx, r.c[0], r.c[0], a->c[0], a->level, VEIL_LIMB_ADD);
        veil_limbwise(ctx, r.c[1], r.c[1], a->c[1], a->level, VEIL_LIMB_ADD);
        r.scale = a->scale;
        result_commit(out, &r);
    } else if (r.size) {
        result_drop(&r, out);
    }
    veil_poly_free(rot);
    veil_free(galois);
    return st;
}

veil_status veil_ckks_sum_slots(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                size_t slots, const veil_switch_key *const *keys, size_t count, veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(out, err);
    VEIL_TRY(check_ct(ctx, a, "sum_slots", err));
    if (count) VEIL_REQUIRE(keys, err);
    const size_t max_slots = ctx->params.n / 2;
    if (slots == 0) slots = max_slots;
    if (slots > max_slots || (slots & (slots - 1)) != 0)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "sum_slots: %zu slots is not a power of two up to %zu", slots, max_slots);
    veil_ckks_ciphertext *acc = NULL, *rot = NULL;
    VEIL_TRY(veil_ckks_ciphertext_new(&acc, ctx, err));
    veil_status st = veil_ckks_ciphertext_new(&rot, ctx, err);
    if (st == VEIL_OK) st = veil_ckks_mod_drop(ctx, acc, a, a->level, err); /* a copy */
    for (size_t step = 1; st == VEIL_OK && step < slots; step <<= 1) {
        const uint64_t g = veil_galois_element_rotation(ctx, (long)step);
        const veil_switch_key *key = NULL;
        for (size_t k = 0; k < count && !key; k++)
            if (keys[k] && keys[k]->galois == g) key = keys[k];
        if (!key) {
            st = veil_fail(err, VEIL_ERR_MISMATCH, "sum_slots: no Galois key for a rotation by %zu (element %llu)", step,
                           (unsigned long long)g);
            break;
        }
        st = veil_ckks_rotate(ctx, rot, acc, (long)step, key, err);
        if (st == VEIL_OK) st = veil_ckks_add(ctx, acc, acc, rot, err);
    }
    if (st == VEIL_OK) st = veil_ckks_mod_drop(ctx, out, acc, acc->level, err);
    veil_ckks_ciphertext_free(acc);
    veil_ckks_ciphertext_free(rot);
    return st;
}

veil_status veil_ckks_inner_product(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                    const veil_ckks_ciphertext *b, size_t slots, const veil_switch_key *relin_key,
                                    const veil_switch_key *const *keys, size_t count, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    veil_ckks_ciphertext *prod = NULL;
    VEIL_TRY(veil_ckks_ciphertext_new(&prod, ctx, err));
    veil_status st = veil_ckks_mul_relin_rescale(ctx, prod, a, b, relin_key, err);
    if (st == VEIL_OK) st = veil_ckks_sum_slots(ctx, out, prod, slots, keys, count, err);
    veil_ckks_ciphertext_free(prod);
    return st;
}

/* ---- constants and polynomials ------------------------------------------------------------------ */

veil_status veil_ckks_add_constant(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                   double c, veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(out, err);
    VEIL_TRY(check_ct(ctx, a, "add_constant", err));
    const double v = round(c * a->scale);
    if (!isfinite(v) || fabs(v) >= 4611686018427387904.0)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "add_constant: %g at scale 2^%.1f does not fit 62 bits", c, log2(a->scale));
    VEIL_TRY(veil_ckks_mod_drop(ctx, out, a, a->level, err)); /* a copy (or a itself) */
    /* a constant polynomial is the same value in every NTT slot */
    const veil_ring *r = ctx->ring;
#pragma omp parallel for num_threads(r->threads) schedule(static)
    for (size_t l = 0; l <= out->level; l++) {
        const uint64_t q = r->primes[l], k = veil_reduce_i64(&r->mod[l], (int64_t)v);
        uint64_t *x = veil_poly_limb(out->c[0], l);
        for (size_t j = 0; j < r->n; j++) x[j] = veil_addmod(x[j], k, q);
    }
    return VEIL_OK;
}

/* out = a * c at exactly `target` scale, one level down: the integer round(c * target * q_l / scale). */
static veil_status mul_constant_to_scale(const veil_context *ctx, veil_ckks_ciphertext *out,
                                         const veil_ckks_ciphertext *a, double c, double target, veil_error *err)
{
    VEIL_TRY(check_ct(ctx, a, "mul_constant", err));
    if (a->level == 0) return veil_fail(err, VEIL_ERR_ARGUMENT, "mul_constant: the ciphertext is at level 0, no level left");
    const double k = round(c * target * (double)ctx->ring->primes[a->level] / a->scale);
    if (!isfinite(k) || fabs(k) >= 4611686018427387904.0)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "mul_constant: %g does not fit 62 bits at this level and scale", c);
    VEIL_TRY(veil_ckks_mul_integer(ctx, out, a, (int64_t)k, err));
    VEIL_TRY(veil_ckks_rescale(ctx, out, out, err));
    out->scale = target; /* the rounding of k is a relative error of at most 1 / (2|k|) on the value */
    return VEIL_OK;
}

veil_status veil_ckks_mul_constant_to_scale(const veil_context *ctx, veil_ckks_ciphertext *out,
                                            const veil_ckks_ciphertext *a, double c, double scale, veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(a, err);
    if (!(scale >= 1.0) || !isfinite(scale))
        return veil_fail(err, VEIL_ERR_ARGUMENT, "mul_constant_to_scale: scale %g is not a finite number >= 1", scale);
    return mul_constant_to_scale(ctx, out, a, c, scale, err);
}

veil_status veil_ckks_mul_constant(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                   double c, veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(a, err);
    return mul_constant_to_scale(ctx, out, a, c, a->scale, err);
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
        for (size_t i = 0; i < in_count; i++) ls->ins[i] = veil_poly_limb_ptr(in[i]->c[c], j) + b0;
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
                for (size_t k = k0; k < k1; k++) src[k - k0] = veil_poly_limb_ptr(in[sr->col[k]]->c[c], j) + b0;
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
                acc += (veil_u128)wr[k] * veil_poly_limb_ptr(in[sr->col[k]]->c[c], j)[b0 + t];
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
        if (in[i]->size != in[0]->size || in[i]->level != in[0]->level || !same_scale(in[i]->scale, in[0]->scale))
            return veil_fail(err, VEIL_ERR_MISMATCH, "linear_layer: input %zu differs from the first in size, level or "
                             "scale", i);
    }
    for (size_t o = 0; o < out_count; o++) {
        VEIL_TRY(check_out(ctx, out[o], err));
        for (size_t i = 0; i < in_count; i++)
            if (out[o] == in[i]) return veil_fail(err, VEIL_ERR_ARGUMENT, "linear_layer: an output is also an input");
    }
    const size_t size = in[0]->size, level = in[0]->level, n = ctx->ring->n;
    if (level == 0) return veil_fail(err, VEIL_ERR_ARGUMENT, "linear_layer: the inputs are at level 0");
    if (size == 3) VEIL_TRY(check_key(ctx, relin_key, 0, "linear_layer", err));
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
            veil_poly_free(y->c[c]);
            y->c[c] = c < size ? polys[o * size + c] : NULL;
            if (c < size) polys[o * size + c] = NULL;
        }
        y->size = size;
        y->level = level;
        y->scale = in[0]->scale * q_l;
        y->seeded = false;
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
            st = mul_constant_to_scale(ctx, started ? term : out, cs->T[j], c[j], target, err);
            if (st == VEIL_OK && started) st = veil_ckks_add(ctx, out, out, term, err);
            started = true;
        }
        if (st == VEIL_OK && !started) st = mul_constant_to_scale(ctx, out, cs->T[1], 0.0, target, err);
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
    if (st == VEIL_OK && (long)qe->level != lq)
        st = veil_fail(err, VEIL_ERR_INTERNAL, "eval_chebyshev: predicted level %ld, got %zu", lq, qe->level);
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
    if (depth > a->level)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "eval_chebyshev: degree %zu needs %zu levels, the ciphertext has %zu",
                         degree, depth, a->level);
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
    if (st == VEIL_OK) st = mul_constant_to_scale(ctx, cs.T[1], a, alpha, scale, err);
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
        if (cs.T[k]) cs.level[k] = (long)cs.T[k]->level;
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
