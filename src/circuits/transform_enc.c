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
#include "circuits/circuits_internal.h"

static int enc_present(const void *diags, size_t k)
{
    return ((const veil_ckks_ciphertext *const *)diags)[k] != NULL;
}

/* inner <- sum_i diags[j b + i] * xr[i]: one sum of products, relinearized once. */
static veil_status enc_inner(const veil_bsgs *tr, size_t j, const veil_ckks_ciphertext *const *xr,
                             veil_ckks_ciphertext *inner, int *have_inner, veil_error *err)
{
    const veil_ckks_ciphertext *const *diags = tr->diags;
    const size_t b = tr->baby;
    veil_status st = VEIL_OK;
    size_t terms = 0;
    const veil_ckks_ciphertext **a = calloc(b, sizeof *a), **x = calloc(b, sizeof *x);
    if (!a || !x) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "%s: out of memory", tr->name);
    for (size_t i = 0; i < b && j * b + i < tr->n_diags; i++) {
        if (!diags[j * b + i]) continue;
        a[terms] = diags[j * b + i];
        x[terms++] = xr[i];
    }
    if (!terms) goto done;
    VEIL_CHECK(veil_ckks_mul_sum(tr->ctx, inner, a, x, terms, err));
    VEIL_CHECK(veil_ckks_relinearize(tr->ctx, inner, inner, tr->relin, err));
    *have_inner = 1;
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
    VEIL_CHECK(veil_rlwe_check_element(ctx, veil_ckks_element(x), "linear_transform_encrypted", err));
    VEIL_CHECK(veil_rlwe_check_output(ctx, &out->el, "linear_transform_encrypted", err));
    for (size_t k = 0; k < n_diags; k++)
        if (diags[k] == out) VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "linear_transform_encrypted: out is a diagonal");
    /* out may be x, no longer read once the baby steps are made (as in transform.c) */
    const veil_bsgs tr = {ctx,     "linear_transform_encrypted", diags, enc_present, enc_inner, relin_key,
                          n_diags, baby < n_diags ? baby : n_diags,  unit};
    VEIL_CHECK(veil_bsgs_apply(&tr, out, x, keys, key_count, threads, err));
done:
    return st;
}
