/*
 * Linear transforms whose diagonals are ciphertexts (encrypted model weights, docs/marketplace.md): the same
 * baby-step giant-step as transform.c,
 *
 *     W x = sum_j rot( sum_i Enc(rot(d_{j b + i}, -j b u)) * rot(x, i u), j b u )
 *
 * the diagonals pre-rotated by their giant step before they were encrypted (by the model owner, with
 * veil_ckks_linear_transform_encode), so that only x is rotated here. Each giant group's inner sum is a sum of
 * ciphertext products (veil_ckks_mul_sum: size 3, reduced once per coefficient), relinearized once before its
 * giant rotation.
 */
#include <stdlib.h>
#include "ckks/ckks_internal.h"
#include "veil/circuits.h"

/* The Galois key of a rotation by `steps` slots among keys[0..count), or a failure naming it. */
static veil_status find_rotation_key(const veil_context *ctx, const veil_switch_key **key, long steps,
                                     const veil_switch_key *const *keys, size_t count, veil_error *err)
{
    const uint64_t g = veil_galois_element_rotation(ctx, steps);
    for (size_t k = 0; k < count; k++)
        if (keys[k] && keys[k]->galois == g) {
            *key = keys[k];
            return VEIL_OK;
        }
    return veil_fail(err, VEIL_ERR_MISMATCH,
                     "linear_transform_encrypted: no Galois key for a rotation by %ld slots (element %llu)", steps,
                     (unsigned long long)g);
}

typedef struct enc_transform {
    const veil_context *ctx;
    const veil_ckks_ciphertext *const *diags;
    size_t n_diags, baby;
    long unit;
    const veil_ckks_ciphertext **xr;    /* xr[i] = rot(x, i unit) where a diagonal uses it */
    const veil_switch_key **giant_keys; /* giant_keys[j]: rotation by j baby unit */
    const veil_switch_key *relin;
} enc_transform;

/* Giant-step groups j0 .. j1 - 1 into acc (*have: acc holds a sum already). */
static veil_status enc_giant_groups(const enc_transform *tr, size_t j0, size_t j1, veil_ckks_ciphertext *acc,
                                    veil_ckks_ciphertext *inner, int *have, veil_error *err)
{
    const veil_context *ctx = tr->ctx;
    const size_t b = tr->baby;
    veil_status st = VEIL_OK;
    const veil_ckks_ciphertext **a = calloc(b, sizeof *a), **x = calloc(b, sizeof *x);
    if (!a || !x) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "linear_transform_encrypted: out of memory");
    for (size_t j = j0; j < j1; j++) {
        size_t terms = 0;
        for (size_t i = 0; i < b && j * b + i < tr->n_diags; i++) {
            if (!tr->diags[j * b + i]) continue;
            a[terms] = tr->diags[j * b + i];
            x[terms++] = tr->xr[i];
        }
        if (!terms) continue;
        VEIL_CHECK(veil_ckks_mul_sum(ctx, inner, a, x, terms, err));
        VEIL_CHECK(veil_ckks_relinearize(ctx, inner, inner, tr->relin, err));
        if (j > 0) VEIL_CHECK(veil_ckks_rotate(ctx, inner, inner, (long)(j * b) * tr->unit, tr->giant_keys[j], err));
        VEIL_CHECK(*have ? veil_ckks_add(ctx, acc, acc, inner, err) : veil_ckks_add_constant(ctx, acc, inner, 0.0, err));
        *have = 1;
    }
done:
    free(a);
    free(x);
    return st;
}

veil_status veil_ckks_linear_transform_encrypted(const veil_context *ctx, veil_ckks_ciphertext *out,
                                                 const veil_ckks_ciphertext *x,
                                                 const veil_ckks_ciphertext *const *diags, size_t n_diags,
                                                 size_t baby, long unit, const veil_switch_key *relin_key,
                                                 const veil_switch_key *const *keys, size_t key_count, size_t threads,
                                                 veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(relin_key, err);
    if (n_diags) VEIL_REQUIRE(diags, err);
    if (key_count) VEIL_REQUIRE(keys, err);
    if (baby == 0) return veil_fail(err, VEIL_ERR_ARGUMENT, "linear_transform_encrypted: a baby step of 0 diagonals");
    if (unit == 0) return veil_fail(err, VEIL_ERR_ARGUMENT, "linear_transform_encrypted: a unit of 0 slots");
    veil_status st = VEIL_OK;
    enc_transform tr = {ctx, diags, n_diags, baby < n_diags ? baby : n_diags, unit, NULL, NULL, relin_key};
    veil_ckks_ciphertext **rotated = NULL, **outs = NULL, **inner = NULL, **accs = NULL, *acc = NULL;
    long *steps = NULL;
    const veil_switch_key **baby_keys = NULL;
    int *have = NULL;
    size_t used = 0, nb = 0, gt = 0;
    VEIL_CHECK(veil_rlwe_check_element(ctx, veil_ckks_element(x), "linear_transform_encrypted", err));
    VEIL_CHECK(veil_rlwe_check_output(ctx, &out->el, "linear_transform_encrypted", err));
    for (size_t k = 0; k < n_diags; k++)
        if (diags[k]) {
            if (diags[k] == out) VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "linear_transform_encrypted: out is a diagonal");
            used = 1;
        }
    if (!used) { /* an all-zero matrix */
        VEIL_CHECK(veil_ckks_mul_integer(ctx, out, x, 0, err));
        goto done;
    }
    const size_t b = tr.baby, groups = (n_diags + b - 1) / b;
    threads = threads ? threads : 1;
    gt = groups < threads ? groups : threads;
    tr.xr = calloc(b, sizeof *tr.xr);
    tr.giant_keys = calloc(groups, sizeof *tr.giant_keys);
    rotated = calloc(b, sizeof *rotated);
    outs = calloc(b, sizeof *outs);
    steps = calloc(b, sizeof *steps);
    baby_keys = calloc(b, sizeof *baby_keys);
    inner = calloc(gt, sizeof *inner);
    accs = calloc(gt, sizeof *accs);
    have = calloc(gt, sizeof *have);
    if (!tr.xr || !tr.giant_keys || !rotated || !outs || !steps || !baby_keys || !inner || !accs || !have)
        VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "linear_transform_encrypted: out of memory");
    tr.xr[0] = x;
    for (size_t i = 1; i < b; i++) {
        int needed = 0;
        for (size_t k = i; k < n_diags && !needed; k += b) needed = diags[k] != NULL;
        if (!needed) continue;
        VEIL_CHECK(veil_ckks_ciphertext_new(&rotated[i], ctx, err));
        VEIL_CHECK(find_rotation_key(ctx, &baby_keys[nb], (long)i * unit, keys, key_count, err));
        steps[nb] = (long)i * unit;
        tr.xr[i] = rotated[i];
        outs[nb++] = rotated[i];
    }
    for (size_t j = 1; j < groups; j++) {
        int needed = 0;
        for (size_t i = 0; i < b && j * b + i < n_diags && !needed; i++) needed = diags[j * b + i] != NULL;
        if (needed) VEIL_CHECK(find_rotation_key(ctx, &tr.giant_keys[j], (long)(j * b) * unit, keys, key_count, err));
    }
    const size_t bt = nb < threads ? (nb ? nb : 1) : threads;
    if (nb) {
        VEIL_PARALLEL_PARTS(bt, bt, err,
                            veil_ckks_rotate_hoisted(ctx, outs + part * nb / bt, x, steps + part * nb / bt,
                                                     (part + 1) * nb / bt - part * nb / bt, baby_keys + part * nb / bt,
                                                     &e_));
        if (st != VEIL_OK) goto done;
    }
    for (size_t t = 0; t < gt; t++) {
        VEIL_CHECK(veil_ckks_ciphertext_new(&inner[t], ctx, err));
        VEIL_CHECK(veil_ckks_ciphertext_new(&accs[t], ctx, err));
    }
    VEIL_PARALLEL_PARTS(gt, gt, err,
                        enc_giant_groups(&tr, part * groups / gt, (part + 1) * groups / gt, accs[part], inner[part],
                                         &have[part], &e_));
    if (st != VEIL_OK) goto done;
    for (size_t t = 0; t < gt; t++) {
        if (!have[t]) continue;
        if (!acc) acc = accs[t];
        else VEIL_CHECK(veil_ckks_add(ctx, acc, acc, accs[t], err));
    }
    const veil_ckks_ciphertext moved = *out; /* as transform.c: out may be x, no longer read */
    *out = *acc;
    *acc = moved;
done:
    for (size_t i = 0; rotated && i < tr.baby; i++) veil_ckks_ciphertext_free(rotated[i]);
    for (size_t t = 0; t < gt && inner && accs; t++) {
        veil_ckks_ciphertext_free(inner[t]);
        veil_ckks_ciphertext_free(accs[t]);
    }
    free(rotated);
    free(outs);
    free(steps);
    free(baby_keys);
    free(inner);
    free(accs);
    free(have);
    free(tr.xr);
    free(tr.giant_keys);
    return st;
}
