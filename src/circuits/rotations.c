/*
 * Rotate-and-sum circuits: every slot receives a sum over rotations of the vector (CKKS, BGV), and the
 * inner products made from them.
 */
#include "ckks/ckks_internal.h"
#include "bgv/bgv_internal.h"
#include "veil/circuits.h"

/* ---- CKKS --------------------------------------------------------------------------------------------- */

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

/* ---- BGV ---------------------------------------------------------------------------------------------- */

static veil_status check_out(const veil_context *ctx, const veil_bgv_ciphertext *out, const char *op, veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(out, err);
    return veil_rlwe_check_output(ctx, &out->el, op, err);
}

veil_status veil_bgv_sum_slots(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                               const veil_switch_key *const *keys, size_t count, veil_error *err)
{
    veil_status st = VEIL_OK;
    veil_bgv_ciphertext *acc = NULL, *rot = NULL;
    VEIL_CHECK(check_out(ctx, out, "sum_slots", err));
    VEIL_CHECK(veil_rlwe_check_element(ctx, veil_bgv_element(a), "sum_slots", err));
    if (count) VEIL_REQUIRE(keys, err);
    VEIL_CHECK(veil_bgv_ciphertext_new(&acc, ctx, err));
    VEIL_CHECK(veil_bgv_ciphertext_new(&rot, ctx, err));
    VEIL_CHECK(veil_bgv_mod_switch_to(ctx, acc, a, a->el.level, err)); /* a copy */
    const size_t half = ctx->params.n / 2;
    for (size_t step = 1; step <= half; step <<= 1) {
        /* rows by 1, 2, ..., N/4; then the columns */
        const bool swap = step == half;
        const uint64_t g = swap ? veil_galois_element_conjugation(ctx) : veil_galois_element_rotation(ctx, (long)step);
        const veil_switch_key *key = count ? find_key(keys, count, g) : NULL;
        if (!key)
            VEIL_FAIL(err, VEIL_ERR_MISMATCH, "sum_slots: no Galois key for %s (element %llu)",
                      swap ? "the column swap" : "a row rotation", (unsigned long long)g);
        VEIL_CHECK(veil_bgv_apply_galois(ctx, rot, acc, g, key, "sum_slots", err));
        VEIL_CHECK(veil_bgv_add(ctx, acc, acc, rot, err));
    }
    VEIL_CHECK(veil_bgv_mod_switch_to(ctx, out, acc, acc->el.level, err));
done:
    veil_bgv_ciphertext_free(acc);
    veil_bgv_ciphertext_free(rot);
    return st;
}
