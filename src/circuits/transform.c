/*
 * Linear transforms of CKKS ciphertexts in diagonal form (Halevi-Shoup 2014): W x = sum_k d_k * rot(x, k u),
 * computed by baby-step giant-step, k = j b + i:
 *
 *     W x = sum_j rot( sum_i rot(d_{j b + i}, -j b u) * rot(x, i u), j b u )
 *
 * about 2 sqrt(K) rotations for K diagonals instead of K. The baby rotations rot(x, i u) share one
 * decomposition and ModUp of x (hoisting, Halevi-Shoup 2018); the diagonals are encoded once, pre-rotated by
 * their giant step. The latency packing of src/ml is made of this; bootstrapping's DFTs (dft.c) run the same
 * algorithm over compactly stored diagonals.
 */
#include <stdlib.h>
#include "ckks/ckks_internal.h"
#include "veil/circuits.h"

size_t veil_ckks_linear_transform_baby(size_t n_diags)
{
    size_t g = 1;
    while (g * g < n_diags) g *= 2;
    return g;
}

veil_status veil_ckks_linear_transform_encode(const veil_ckks_encoder *enc, veil_ckks_plaintext *out,
                                              const double *diag, size_t k, size_t baby, long unit, double scale,
                                              size_t level, veil_error *err)
{
    VEIL_REQUIRE(enc, err);
    VEIL_REQUIRE(diag, err);
    if (baby == 0) return veil_fail(err, VEIL_ERR_ARGUMENT, "linear_transform_encode: a baby step of 0 diagonals");
    const size_t half = enc->slots;
    /* the giant step's rotation, reduced mod N/2 (unit may be negative) */
    const uint64_t giant = (uint64_t)((k - k % baby) % half);
    const uint64_t u = (uint64_t)(unit % (long)half + (long)half) % half, shift = giant * u % half;
    veil_status st = VEIL_OK;
    double *v = malloc(half * sizeof *v);
    if (!v) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "linear_transform_encode: out of memory");
    /* rot(d, -shift)[t] = d[t - shift] */
    for (size_t t = 0; t < half; t++) v[t] = diag[(t + half - shift) % half];
    VEIL_CHECK(veil_ckks_encode(enc, out, v, NULL, half, scale, level, err));
done:
    free(v);
    return st;
}

/* The Galois key of a rotation by `steps` slots among keys[0..count) (the first that matches), or a failure naming it. */
static veil_status rotation_key(const veil_context *ctx, const veil_switch_key **key, long steps,
                                const veil_switch_key *const *keys, size_t count, veil_error *err)
{
    const uint64_t g = veil_galois_element_rotation(ctx, steps);
    for (size_t k = 0; k < count; k++)
        if (keys[k] && keys[k]->galois == g) {
            *key = keys[k];
            return VEIL_OK;
        }
    return veil_fail(err, VEIL_ERR_MISMATCH, "linear_transform: no Galois key for a rotation by %ld slots (element %llu)",
                     steps, (unsigned long long)g);
}

/* What the giant-step groups read. */
typedef struct transform {
    const veil_context *ctx;
    const veil_ckks_plaintext *const *diags;
    size_t n_diags, baby;
    long unit;
    const veil_ckks_ciphertext **xr;        /* xr[i] = rot(x, i unit) where a diagonal uses it */
    const veil_switch_key **giant_keys;     /* giant_keys[j]: rotation by j baby unit, for the groups used */
} transform;

/* Giant-step groups j0 .. j1 - 1: acc (when *have, else a copy) += rot(sum_i diags[j b + i] * xr[i], j b u). */
static veil_status giant_groups(const transform *tr, size_t j0, size_t j1, veil_ckks_ciphertext *acc,
                                veil_ckks_ciphertext *inner, int *have, veil_error *err)
{
    const veil_context *ctx = tr->ctx;
    const size_t b = tr->baby;
    veil_status st = VEIL_OK;
    for (size_t j = j0; j < j1; j++) {
        int have_inner = 0;
        for (size_t i = 0; i < b && j * b + i < tr->n_diags; i++) {
            const veil_ckks_plaintext *d = tr->diags[j * b + i];
            if (!d) continue;
            VEIL_CHECK(have_inner ? veil_ckks_mul_plain_accumulate(ctx, inner, tr->xr[i], d, err)
                                  : veil_ckks_mul_plain(ctx, inner, tr->xr[i], d, err));
            have_inner = 1;
        }
        if (!have_inner) continue;
        if (j > 0) VEIL_CHECK(veil_ckks_rotate(ctx, inner, inner, (long)(j * b) * tr->unit, tr->giant_keys[j], err));
        VEIL_CHECK(*have ? veil_ckks_add(ctx, acc, acc, inner, err) : veil_ckks_add_constant(ctx, acc, inner, 0.0, err));
        *have = 1;
    }
done:
    return st;
}

veil_status veil_ckks_linear_transform(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *x,
                                       const veil_ckks_plaintext *const *diags, size_t n_diags, size_t baby, long unit,
                                       const veil_switch_key *const *keys, size_t key_count, size_t threads,
                                       veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(out, err);
    if (n_diags) VEIL_REQUIRE(diags, err);
    if (key_count) VEIL_REQUIRE(keys, err);
    if (baby == 0) return veil_fail(err, VEIL_ERR_ARGUMENT, "linear_transform: a baby step of 0 diagonals");
    if (unit == 0) return veil_fail(err, VEIL_ERR_ARGUMENT, "linear_transform: a unit of 0 slots");
    veil_status st = VEIL_OK;
    transform tr = {ctx, diags, n_diags, baby < n_diags ? baby : n_diags, unit, NULL, NULL};
    veil_ckks_ciphertext **rotated = NULL, **outs = NULL, **inner = NULL, **accs = NULL, *acc = NULL;
    long *steps = NULL;
    const veil_switch_key **baby_keys = NULL;
    int *have = NULL;
    size_t used = 0, nb = 0, gt = 0;
    VEIL_CHECK(veil_rlwe_check_element(ctx, veil_ckks_element(x), "linear_transform", err));
    VEIL_CHECK(veil_rlwe_check_output(ctx, &out->el, "linear_transform", err));
    for (size_t k = 0; k < n_diags && !used; k++) used = diags[k] != NULL;
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
        VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "linear_transform: out of memory");
    /* baby steps: the rotations of x by i unit, 0 < i < b, that a diagonal uses */
    tr.xr[0] = x;
    for (size_t i = 1; i < b; i++) {
        int needed = 0;
        for (size_t k = i; k < n_diags && !needed; k += b) needed = diags[k] != NULL;
        if (!needed) continue;
        VEIL_CHECK(veil_ckks_ciphertext_new(&rotated[i], ctx, err));
        VEIL_CHECK(rotation_key(ctx, &baby_keys[nb], (long)i * unit, keys, key_count, err));
        steps[nb] = (long)i * unit;
        tr.xr[i] = rotated[i];
        outs[nb++] = rotated[i];
    }
    /* giant steps: every key is found before anything is computed */
    for (size_t j = 1; j < groups; j++) {
        int needed = 0;
        for (size_t i = 0; i < b && j * b + i < n_diags && !needed; i++) needed = diags[j * b + i] != NULL;
        if (needed) VEIL_CHECK(rotation_key(ctx, &tr.giant_keys[j], (long)(j * b) * unit, keys, key_count, err));
    }
    /* the baby steps share one ModUp per thread; the threads take the giant-step groups in turn */
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
                        giant_groups(&tr, part * groups / gt, (part + 1) * groups / gt, accs[part], inner[part],
                                     &have[part], &e_));
    if (st != VEIL_OK) goto done;
    /* the threads' sums, in their order, into the first that has one */
    for (size_t t = 0; t < gt; t++) {
        if (!have[t]) continue;
        if (!acc) acc = accs[t];
        else VEIL_CHECK(veil_ckks_add(ctx, acc, acc, accs[t], err));
    }
    /* the sum moves into out (x, should out be x, is no longer read); out's old contents are freed with acc */
    const veil_ckks_ciphertext moved = *out;
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
