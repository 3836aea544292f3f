/*
 * The RLWE element shared by CKKS and BGV ciphertexts: its checks, its outputs under construction, and the
 * operations that do not depend on what the phase encodes (sums, relinearization, Galois automorphisms with
 * key switching). The schemes check their own metadata (scales, correction factors) and call these.
 */
#include <string.h>
#include "rlwe/rlwe_internal.h"

void veil_rlwe_element_init(veil_rlwe_element *e, const veil_context *ctx)
{
    memset(e, 0, sizeof *e);
    e->ctx = ctx;
}

void veil_rlwe_element_release(veil_rlwe_element *e)
{
    for (int i = 0; i < 3; i++) {
        veil_poly_free(e->c[i]);
        e->c[i] = NULL;
    }
    e->size = 0;
    e->seeded = false;
}

/* ---- checks ------------------------------------------------------------------------------------------ */

veil_status veil_rlwe_check_element(const veil_context *ctx, const veil_rlwe_element *e, const char *op,
                                    veil_error *err)
{
    if (!e) return veil_fail(err, VEIL_ERR_NULL, "%s: a ciphertext argument is NULL", op);
    if (e->ctx != ctx) return veil_fail(err, VEIL_ERR_MISMATCH, "%s: a ciphertext belongs to another context", op);
    if (e->size < 2) return veil_fail(err, VEIL_ERR_ARGUMENT, "%s: a ciphertext is empty", op);
    return VEIL_OK;
}

veil_status veil_rlwe_check_output(const veil_context *ctx, const veil_rlwe_element *out, const char *op,
                                   veil_error *err)
{
    if (out->ctx == ctx) return VEIL_OK;
    if (!op) return veil_fail(err, VEIL_ERR_MISMATCH, "the output ciphertext belongs to another context");
    return veil_fail(err, VEIL_ERR_MISMATCH, "%s: the output ciphertext belongs to another context", op);
}

veil_status veil_rlwe_check_switch_key(const veil_context *ctx, const veil_switch_key *key, uint64_t galois,
                                       const char *op, veil_error *err)
{
    if (!key) return veil_fail(err, VEIL_ERR_NULL, "%s: the key is NULL", op);
    if (key->ctx != ctx) return veil_fail(err, VEIL_ERR_MISMATCH, "%s: the key belongs to another context", op);
    if (key->galois == galois) return VEIL_OK;
    if (galois == 0)
        return veil_fail(err, VEIL_ERR_MISMATCH, "%s: this is a Galois key, not the relinearization key", op);
    return veil_fail(err, VEIL_ERR_MISMATCH, "%s: needs the Galois key for element %llu, got %llu", op,
                     (unsigned long long)galois, (unsigned long long)key->galois);
}

/* ---- results ----------------------------------------------------------------------------------------- */

veil_status veil_rlwe_result_init(veil_rlwe_result *r, const veil_context *ctx, size_t size, size_t level,
                                  veil_error *err)
{
    veil_status st = VEIL_OK;
    memset(r, 0, sizeof *r);
    r->size = size;
    r->level = level;
    for (size_t i = 0; i < size; i++) VEIL_CHECK(veil_context_poly_new(&r->c[i], ctx, level, VEIL_FORM_EVAL, err));
done:
    return st;
}

veil_status veil_rlwe_result_reuse(veil_rlwe_result *r, veil_rlwe_element *out, const veil_rlwe_element *a,
                                   const veil_rlwe_element *b, const veil_context *ctx, size_t size, size_t level,
                                   veil_error *err)
{
    veil_status st = VEIL_OK;
    memset(r, 0, sizeof *r);
    r->size = size;
    r->level = level;
    const bool reusable = out != a && out != b;
    for (size_t i = 0; i < size; i++) {
        if (reusable && out->c[i] && veil_poly_limb_count(out->c[i]) == level + 1) {
            r->c[i] = out->c[i];
            r->borrowed[i] = true;
        } else {
            VEIL_CHECK(veil_context_poly_new(&r->c[i], ctx, level, VEIL_FORM_EVAL, err));
        }
    }
done:
    return st;
}

void veil_rlwe_result_drop(veil_rlwe_result *r, veil_rlwe_element *out)
{
    bool touched = false;
    for (int i = 0; i < 3; i++) {
        if (r->borrowed[i]) touched = true;
        else veil_poly_free(r->c[i]);
        r->c[i] = NULL;
        r->borrowed[i] = false;
    }
    if (touched) {
        out->size = 0;
        out->seeded = false;
    }
}

void veil_rlwe_result_commit(veil_rlwe_element *out, veil_rlwe_result *r)
{
    for (int i = 0; i < 3; i++) {
        if (r->borrowed[i]) continue; /* already the output's own polynomial */
        veil_poly_free(out->c[i]);
        out->c[i] = r->c[i];
    }
    out->size = r->size;
    out->level = r->level;
    out->seeded = false;
    memset(r, 0, sizeof *r); /* the polynomials are the output's now */
}

/* ---- operations -------------------------------------------------------------------------------------- */

void veil_rlwe_add_sub(const veil_context *ctx, veil_poly *const *out, const veil_rlwe_element *a,
                       const veil_rlwe_element *b, size_t level, veil_limb_op op)
{
    const size_t size = a->size > b->size ? a->size : b->size;
    for (size_t i = 0; i < size; i++) {
        if (i < a->size && i < b->size) veil_limbwise(ctx, out[i], a->c[i], b->c[i], level, op);
        else if (i < a->size) veil_limbwise(ctx, out[i], a->c[i], NULL, level, VEIL_LIMB_COPY);
        else veil_limbwise(ctx, out[i], b->c[i], NULL, level, op == VEIL_LIMB_SUB ? VEIL_LIMB_NEG : VEIL_LIMB_COPY);
    }
}

void veil_rlwe_map(const veil_context *ctx, veil_poly *const *out, const veil_rlwe_element *a, size_t level,
                   veil_limb_op op)
{
    for (size_t i = 0; i < a->size; i++) veil_limbwise(ctx, out[i], a->c[i], NULL, level, op);
}

veil_status veil_rlwe_relinearize(const veil_context *ctx, veil_poly *const *out, const veil_rlwe_element *a,
                                  const veil_switch_key *key, veil_error *err)
{
    veil_status st = VEIL_OK;
    VEIL_CHECK(veil_keyswitch(ctx, out[0], out[1], a->c[2], key, err));
    veil_limbwise(ctx, out[0], out[0], a->c[0], a->level, VEIL_LIMB_ADD);
    veil_limbwise(ctx, out[1], out[1], a->c[1], a->level, VEIL_LIMB_ADD);
done:
    return st;
}

veil_status veil_rlwe_apply_galois(const veil_context *ctx, veil_poly *const *out, const veil_rlwe_element *a,
                                   uint64_t galois, const veil_switch_key *key, veil_error *err)
{
    veil_status st = VEIL_OK;
    veil_poly *rot = NULL;
    VEIL_CHECK(veil_context_poly_new(&rot, ctx, a->level, VEIL_FORM_EVAL, err));
    VEIL_CHECK(veil_poly_automorphism(rot, a->c[1], galois, err));
    VEIL_CHECK(veil_keyswitch(ctx, out[0], out[1], rot, key, err));
    VEIL_CHECK(veil_poly_automorphism(rot, a->c[0], galois, err));
    veil_limbwise(ctx, out[0], out[0], rot, a->level, VEIL_LIMB_ADD);
done:
    veil_poly_free(rot);
    return st;
}

veil_status veil_rlwe_galois_sum(const veil_context *ctx, veil_poly *const *out, const veil_rlwe_element *a,
                                 const uint64_t *galois, const veil_switch_key *const *keys, size_t count,
                                 veil_error *err)
{
    veil_status st = VEIL_OK;
    veil_poly *rot = NULL;
    VEIL_CHECK(veil_context_poly_new(&rot, ctx, a->level, VEIL_FORM_EVAL, err));
    /* sum_k (sigma_k(c0) + switch(sigma_k(c1))): the switched parts share one ModUp and one ModDown */
    VEIL_CHECK(veil_keyswitch_hoisted_sum(ctx, out[0], out[1], a->c[1], galois, keys, count, err));
    for (size_t k = 0; k < count; k++) {
        VEIL_CHECK(veil_poly_automorphism(rot, a->c[0], galois[k], err));
        veil_limbwise(ctx, out[0], out[0], rot, a->level, VEIL_LIMB_ADD);
    }
    /* and the unrotated term */
    veil_limbwise(ctx, out[0], out[0], a->c[0], a->level, VEIL_LIMB_ADD);
    veil_limbwise(ctx, out[1], out[1], a->c[1], a->level, VEIL_LIMB_ADD);
done:
    veil_poly_free(rot);
    return st;
}

veil_status veil_rlwe_element_expand_seed(veil_rlwe_element *e, veil_error *err)
{
    return veil_uniform_from_seed(e->c[1], e->seed, 0, err);
}
