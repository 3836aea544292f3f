/*
 * Linear transforms of CKKS ciphertexts in diagonal form (Halevi-Shoup 2014): W x = sum_k d_k * rot(x, k u),
 * computed by baby-step giant-step, k = j b + i:
 *
 *     W x = sum_j rot( sum_i rot(d_{j b + i}, -j b u) * rot(x, i u), j b u )
 *
 * about 2 sqrt(K) rotations for K diagonals instead of K. The baby rotations rot(x, i u) share one
 * decomposition and ModUp of x (hoisting, Halevi-Shoup 2018); the diagonals are encoded once, pre-rotated by
 * their giant step. Diagonals encoded also over Q_l P (veil_ckks_linear_transform_encode_extended) run with
 * double hoisting instead (Bossuat et al. 2021): everything summed over Q_l P, one ModDown. The latency
 * packing of src/ml is made of this; bootstrapping's DFTs (dft.c) run the same algorithm over compactly stored
 * diagonals.
 */
#include <stdlib.h>
#include <string.h>
#include "circuits/circuits_internal.h"

size_t veil_ckks_linear_transform_baby(size_t n_diags)
{
    size_t g = 1;
    while (g * g < n_diags) g *= 2;
    return g;
}

/* The body of veil_ckks_linear_transform_encode(_extended): also over Q_level P when `extended`. */
static veil_status transform_encode(const veil_ckks_encoder *enc, veil_ckks_plaintext *out, const double *diag,
                                    size_t k, size_t baby, long unit, double scale, size_t level, bool extended,
                                    veil_error *err)
{
    VEIL_REQUIRE(enc, err);
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(diag, err);
    if (baby == 0) return veil_fail(err, VEIL_ERR_ARGUMENT, "linear_transform_encode: a baby step of 0 diagonals");
    const size_t half = enc->slots;
    /* the giant step's rotation, reduced mod N/2 (unit may be negative) */
    const uint64_t giant = (uint64_t)((k - k % baby) % half);
    const uint64_t u = (uint64_t)(unit % (long)half + (long)half) % half, shift = giant * u % half;
    veil_status st = VEIL_OK;
    veil_poly *mqp = NULL;
    double *v = malloc(half * sizeof *v);
    if (!v) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "linear_transform_encode: out of memory");
    /* rot(d, -shift)[t] = d[t - shift] */
    for (size_t t = 0; t < half; t++) v[t] = diag[(t + half - shift) % half];
    VEIL_CHECK(veil_ckks_encode(enc, out, v, NULL, half, scale, level, err));
    if (extended) {
        size_t qp[2 * VEIL_PARAMS_MAX_PRIMES];
        const size_t count = veil_context_qp_base(enc->ctx, level, qp);
        /* only P's residues: Q_level's are m's (set only once complete) */
        VEIL_CHECK(veil_poly_new(&mqp, enc->ctx->ring, qp + level + 1, count - level - 1, VEIL_FORM_EVAL, err));
        VEIL_CHECK(veil_ckks_encode_poly(enc, mqp, v, NULL, half, scale, level, err));
        out->mqp = mqp; /* veil_ckks_encode dropped any former one */
        mqp = NULL;
    }
done:
    veil_poly_free(mqp);
    free(v);
    return st;
}

veil_status veil_ckks_linear_transform_encode(const veil_ckks_encoder *enc, veil_ckks_plaintext *out,
                                              const double *diag, size_t k, size_t baby, long unit, double scale,
                                              size_t level, veil_error *err)
{
    return transform_encode(enc, out, diag, k, baby, unit, scale, level, false, err);
}

veil_status veil_ckks_linear_transform_encode_extended(const veil_ckks_encoder *enc, veil_ckks_plaintext *out,
                                                       const double *diag, size_t k, size_t baby, long unit,
                                                       double scale, size_t level, veil_error *err)
{
    return transform_encode(enc, out, diag, k, baby, unit, scale, level, true, err);
}

/*
 * The Galois key of a rotation by `steps` slots among keys[0..count) (the first that matches), of the transform's
 * context (the double-hoisted path multiplies by its limbs directly), or a failure naming it.
 */
static veil_status rotation_key(const veil_bsgs *tr, const veil_switch_key **key, long steps,
                                const veil_switch_key *const *keys, size_t count, veil_error *err)
{
    const uint64_t g = veil_galois_element_rotation(tr->ctx, steps);
    for (size_t k = 0; k < count; k++)
        if (keys[k] && keys[k]->galois == g) {
            *key = keys[k];
            return veil_rlwe_check_switch_key(tr->ctx, *key, g, tr->name, err);
        }
    return veil_fail(err, VEIL_ERR_MISMATCH, "%s: no Galois key for a rotation by %ld slots (element %llu)", tr->name,
                     steps, (unsigned long long)g);
}

/* What the driver holds while it runs. */
typedef struct bsgs_work {
    size_t groups, nb, gt;              /* giant-step groups, baby rotations, threads over the groups */
    const veil_ckks_ciphertext **xr;    /* xr[i] = rot(x, i unit) where a diagonal uses it */
    const veil_switch_key **giant_keys; /* giant_keys[j]: rotation by j baby unit, for the groups used */
    veil_ckks_ciphertext **rotated, **outs, **inner, **accs;
    long *steps;                        /* the baby rotations: outs[0..nb) = rot(x, steps[..]) by baby_keys[..] */
    const veil_switch_key **baby_keys;
    int *have;                          /* have[t]: accs[t] holds a sum */
} bsgs_work;

static veil_status bsgs_alloc(const veil_bsgs *tr, bsgs_work *w, size_t threads, veil_error *err)
{
    const size_t b = tr->baby;
    w->groups = (tr->n_diags + b - 1) / b;
    w->gt = w->groups < threads ? w->groups : threads;
    w->xr = calloc(b, sizeof *w->xr);
    w->giant_keys = calloc(w->groups, sizeof *w->giant_keys);
    w->rotated = calloc(b, sizeof *w->rotated);
    w->outs = calloc(b, sizeof *w->outs);
    w->steps = calloc(b, sizeof *w->steps);
    w->baby_keys = calloc(b, sizeof *w->baby_keys);
    w->inner = calloc(w->gt, sizeof *w->inner);
    w->accs = calloc(w->gt, sizeof *w->accs);
    w->have = calloc(w->gt, sizeof *w->have);
    if (!w->xr || !w->giant_keys || !w->rotated || !w->outs || !w->steps || !w->baby_keys || !w->inner || !w->accs ||
        !w->have)
        return veil_fail(err, VEIL_ERR_NO_MEMORY, "%s: out of memory", tr->name);
    return VEIL_OK;
}

static void bsgs_free(const veil_bsgs *tr, bsgs_work *w)
{
    for (size_t i = 0; w->rotated && i < tr->baby; i++) veil_ckks_ciphertext_free(w->rotated[i]);
    for (size_t t = 0; t < w->gt && w->inner && w->accs; t++) {
        veil_ckks_ciphertext_free(w->inner[t]);
        veil_ckks_ciphertext_free(w->accs[t]);
    }
    free(w->rotated);
    free(w->outs);
    free(w->steps);
    free(w->baby_keys);
    free(w->inner);
    free(w->accs);
    free(w->have);
    free(w->xr);
    free(w->giant_keys);
}

/* Every key is found before anything is computed. */
static veil_status bsgs_keys(const veil_bsgs *tr, bsgs_work *w, const veil_ckks_ciphertext *x,
                             const veil_switch_key *const *keys, size_t key_count, veil_error *err)
{
    const size_t b = tr->baby;
    veil_status st = VEIL_OK;
    /* baby steps: the rotations of x by i unit, 0 < i < b, that a diagonal uses */
    w->xr[0] = x;
    for (size_t i = 1; i < b; i++) {
        int needed = 0;
        for (size_t k = i; k < tr->n_diags && !needed; k += b) needed = tr->present(tr->diags, k);
        if (!needed) continue;
        VEIL_CHECK(veil_ckks_ciphertext_new(&w->rotated[i], tr->ctx, err));
        VEIL_CHECK(rotation_key(tr, &w->baby_keys[w->nb], (long)i * tr->unit, keys, key_count, err));
        w->steps[w->nb] = (long)i * tr->unit;
        w->xr[i] = w->rotated[i];
        w->outs[w->nb++] = w->rotated[i];
    }
    /* giant steps */
    for (size_t j = 1; j < w->groups; j++) {
        int needed = 0;
        for (size_t i = 0; i < b && j * b + i < tr->n_diags && !needed; i++) needed = tr->present(tr->diags, j * b + i);
        if (needed) VEIL_CHECK(rotation_key(tr, &w->giant_keys[j], (long)(j * b) * tr->unit, keys, key_count, err));
    }
done:
    return st;
}

/* Giant-step groups j0 .. j1 - 1: acc (when *have, else a copy) += rot(sum_i diags[j b + i] * xr[i], j b u). */
static veil_status giant_groups(const veil_bsgs *tr, const bsgs_work *w, size_t j0, size_t j1,
                                veil_ckks_ciphertext *acc, veil_ckks_ciphertext *inner, int *have, veil_error *err)
{
    const veil_context *ctx = tr->ctx;
    const size_t b = tr->baby;
    veil_status st = VEIL_OK;
    for (size_t j = j0; j < j1; j++) {
        int have_inner = 0;
        VEIL_CHECK(tr->inner(tr, j, w->xr, inner, &have_inner, err));
        if (!have_inner) continue;
        if (j > 0) VEIL_CHECK(veil_ckks_rotate(ctx, inner, inner, (long)(j * b) * tr->unit, w->giant_keys[j], err));
        VEIL_CHECK(*have ? veil_ckks_add(ctx, acc, acc, inner, err) : veil_ckks_add_constant(ctx, acc, inner, 0.0, err));
        *have = 1;
    }
done:
    return st;
}

/* *acc <- the sum: the baby steps share one ModUp per thread; the threads take the giant-step groups in turn. */
static veil_status bsgs_run(const veil_bsgs *tr, bsgs_work *w, const veil_ckks_ciphertext *x, size_t threads,
                            veil_ckks_ciphertext **acc, veil_error *err)
{
    const veil_context *ctx = tr->ctx;
    const size_t nb = w->nb, gt = w->gt, groups = w->groups, bt = nb < threads ? (nb ? nb : 1) : threads;
    veil_status st = VEIL_OK;
    if (nb) {
        VEIL_PARALLEL_PARTS(bt, bt, err,
                            veil_ckks_rotate_hoisted(ctx, w->outs + part * nb / bt, x, w->steps + part * nb / bt,
                                                     (part + 1) * nb / bt - part * nb / bt,
                                                     w->baby_keys + part * nb / bt, &e_));
        if (st != VEIL_OK) goto done;
    }
    for (size_t t = 0; t < gt; t++) {
        VEIL_CHECK(veil_ckks_ciphertext_new(&w->inner[t], ctx, err));
        VEIL_CHECK(veil_ckks_ciphertext_new(&w->accs[t], ctx, err));
    }
    VEIL_PARALLEL_PARTS(gt, gt, err,
                        giant_groups(tr, w, part * groups / gt, (part + 1) * groups / gt, w->accs[part],
                                     w->inner[part], &w->have[part], &e_));
    if (st != VEIL_OK) goto done;
    /* the threads' sums, in their order, into the first that has one */
    for (size_t t = 0; t < gt; t++) {
        if (!w->have[t]) continue;
        if (!*acc) *acc = w->accs[t];
        else VEIL_CHECK(veil_ckks_add(ctx, *acc, *acc, w->accs[t], err));
    }
done:
    return st;
}

veil_status veil_bsgs_apply(const veil_bsgs *tr, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *x,
                            const veil_switch_key *const *keys, size_t key_count, size_t threads, veil_error *err)
{
    int used = 0;
    for (size_t k = 0; k < tr->n_diags && !used; k++) used = tr->present(tr->diags, k);
    if (!used) return veil_ckks_mul_integer(tr->ctx, out, x, 0, err); /* an all-zero matrix */
    veil_status st = VEIL_OK;
    bsgs_work w = {0};
    veil_ckks_ciphertext *acc = NULL;
    threads = threads ? threads : 1;
    VEIL_CHECK(bsgs_alloc(tr, &w, threads, err));
    VEIL_CHECK(bsgs_keys(tr, &w, x, keys, key_count, err));
    VEIL_CHECK(bsgs_run(tr, &w, x, threads, &acc, err));
    /* the sum moves into out (x, should out be x, is no longer read); out's old contents are freed with acc */
    const veil_ckks_ciphertext moved = *out;
    *out = *acc;
    *acc = moved;
done:
    bsgs_free(tr, &w);
    return st;
}

static int plain_present(const void *diags, size_t k)
{
    return ((const veil_ckks_plaintext *const *)diags)[k] != NULL;
}

/* inner <- sum_i diags[j b + i] * xr[i], multiply-accumulated. */
static veil_status plain_inner(const veil_bsgs *tr, size_t j, const veil_ckks_ciphertext *const *xr,
                               veil_ckks_ciphertext *inner, int *have_inner, veil_error *err)
{
    const veil_ckks_plaintext *const *diags = tr->diags;
    const size_t b = tr->baby;
    veil_status st = VEIL_OK;
    for (size_t i = 0; i < b && j * b + i < tr->n_diags; i++) {
        const veil_ckks_plaintext *d = diags[j * b + i];
        if (!d) continue;
        VEIL_CHECK(*have_inner ? veil_ckks_mul_plain_accumulate(tr->ctx, inner, xr[i], d, err)
                               : veil_ckks_mul_plain(tr->ctx, inner, xr[i], d, err));
        *have_inner = 1;
    }
done:
    return st;
}

/*
 * Double hoisting (Bossuat, Troncoso-Pastoriza, Hubaux, Eurocrypt 2021, sections 4-5) for diagonals that carry
 * their encoding over Q_l P: whether every diagonal has it, of x's context, at x's level and one scale (else the
 * single-hoisted path runs, and refuses a plaintext of another context as every product does).
 */
static bool plain_extended(const veil_ckks_plaintext *const *diags, size_t n_diags, const veil_ckks_ciphertext *x)
{
    bool any = false;
    const veil_ckks_plaintext *first = NULL;
    for (size_t k = 0; k < n_diags; k++) {
        const veil_ckks_plaintext *d = diags[k];
        if (!d) continue;
        if (d->ctx != x->el.ctx || !d->mqp || d->level != x->el.level || d->m->count != d->level + 1 ||
            (first && d->scale != first->scale))
            return false;
        if (!first) first = d;
        any = true;
    }
    return any && x->el.size == 2;
}

/* The polynomials of one double-hoisted transform (over Q_l P unless said). */
typedef struct dh_work {
    size_t qp_count;
    size_t qp[2 * VEIL_PARAMS_MAX_PRIMES];
    veil_poly **baby[2];                 /* rot(x, i u) before ModDown, NULL where unused */
    veil_poly *inner[2], *acc[2], *rotated;
    veil_poly *down, *res[2];            /* over Q_l */
    const veil_switch_key **baby_keys, **giant_keys;
    veil_keyswitch_raised rx;
} dh_work;

static void dh_free(dh_work *w, size_t b)
{
    for (size_t c = 0; c < 2; c++) {
        for (size_t i = 0; w->baby[c] && i < b; i++) veil_poly_free(w->baby[c][i]);
        free(w->baby[c]);
        veil_poly_free(w->inner[c]);
        veil_poly_free(w->acc[c]);
        veil_poly_free(w->res[c]);
    }
    veil_poly_free(w->rotated);
    veil_poly_free(w->down);
    free(w->baby_keys);
    free(w->giant_keys);
    veil_keyswitch_raised_release(&w->rx);
}

/* The keys of the baby and giant rotations that non-NULL diagonals use, all found before anything is computed. */
static veil_status dh_keys(const veil_bsgs *tr, dh_work *w, const veil_switch_key *const *keys, size_t key_count,
                           veil_error *err)
{
    const size_t b = tr->baby, groups = (tr->n_diags + b - 1) / b;
    veil_status st = VEIL_OK;
    w->baby_keys = calloc(b, sizeof *w->baby_keys);
    w->giant_keys = calloc(groups, sizeof *w->giant_keys);
    if (!w->baby_keys || !w->giant_keys) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "%s: out of memory", tr->name);
    for (size_t k = 0; k < tr->n_diags; k++) {
        if (!tr->present(tr->diags, k)) continue;
        const size_t i = k % b, j = k / b;
        if (i && !w->baby_keys[i]) VEIL_CHECK(rotation_key(tr, &w->baby_keys[i], (long)i * tr->unit, keys, key_count, err));
        if (j && !w->giant_keys[j])
            VEIL_CHECK(rotation_key(tr, &w->giant_keys[j], (long)(j * b) * tr->unit, keys, key_count, err));
    }
done:
    return st;
}

/*
 * The baby rotations rot(x, i u) over Q_l P, from one ModUp of x's c_1 and without ModDown:
 * (P sigma(c_0) + u_0, u_1) with u_0 + u_1 s ~= P sigma(c_1) sigma(s); the unrotated one (i = 0) is P x.
 */
static veil_status dh_baby(const veil_bsgs *tr, dh_work *w, const veil_ckks_ciphertext *x, veil_error *err)
{
    const veil_context *ctx = tr->ctx;
    const size_t b = tr->baby;
    veil_status st = VEIL_OK;
    bool raised = false;
    for (size_t i = 0; i < b; i++) {
        bool used = false;
        for (size_t k = i; k < tr->n_diags && !used; k += b) used = tr->present(tr->diags, k);
        if (!used) continue;
        for (size_t c = 0; c < 2; c++)
            VEIL_CHECK(veil_poly_new(&w->baby[c][i], ctx->ring, w->qp, w->qp_count, VEIL_FORM_EVAL, err));
        if (i == 0) {
            VEIL_CHECK(veil_keyswitch_add_p_times(ctx, w->baby[0][0], x->el.c[0], 1, false, err));
            VEIL_CHECK(veil_keyswitch_add_p_times(ctx, w->baby[1][0], x->el.c[1], 1, false, err));
            continue;
        }
        if (!raised) VEIL_CHECK(veil_keyswitch_raise(ctx, &w->rx, x->el.c[1], err));
        raised = true;
        const uint64_t g = veil_galois_element_rotation(ctx, (long)i * tr->unit);
        VEIL_CHECK(veil_keyswitch_raised_product(&w->rx, g, w->baby_keys[i], w->baby[0][i], w->baby[1][i], false, err));
        VEIL_CHECK(veil_keyswitch_add_p_times(ctx, w->baby[0][i], x->el.c[0], g, true, err));
    }
done:
    veil_keyswitch_raised_release(&w->rx);
    return st;
}

veil_status veil_bsgs_giant_extended(const veil_context *ctx, veil_poly *const *acc, const veil_poly *const *inner,
                                     veil_poly *down, veil_poly *rotated, uint64_t g, const veil_switch_key *key,
                                     bool have, size_t level, veil_error *err)
{
    veil_status st = VEIL_OK;
    veil_keyswitch_raised rx = {0};
    VEIL_CHECK(veil_context_mod_down(ctx, down, inner[1], level, err));
    VEIL_CHECK(veil_keyswitch_raise(ctx, &rx, down, err));
    VEIL_CHECK(veil_keyswitch_raised_product(&rx, g, key, acc[0], acc[1], have, err));
    VEIL_CHECK(veil_poly_automorphism(rotated, inner[0], g, err));
    VEIL_CHECK(veil_poly_add(acc[0], acc[0], rotated, err));
done:
    veil_keyswitch_raised_release(&rx);
    return st;
}

/* out (=, or += when accumulate) a times the diagonal d over Q_l P: Q_l's residues in d->m, P's in d->mqp. */
static void plain_product_qp(const veil_ring *r, const dh_work *w, veil_poly *out, const veil_poly *a,
                             const veil_ckks_plaintext *d, size_t level, bool accumulate)
{
#pragma omp parallel for num_threads(r->threads) schedule(static)
    for (size_t t = 0; t < w->qp_count; t++) {
        const uint64_t *dt = t <= level ? veil_poly_limb_ptr(d->m, t) : veil_poly_limb_ptr(d->mqp, t - level - 1);
        veil_limb_mul(r, w->qp[t], veil_poly_limb_ptr(out, t), veil_poly_limb_ptr(a, t), dt, accumulate);
    }
}

/* out <- sum_j rot(sum_i diags[j b + i] * rot(x, i u), j b u), every sum over Q_l P, one ModDown at the end. */
static veil_status plain_double_hoisted(const veil_bsgs *tr, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *x,
                                        const veil_switch_key *const *keys, size_t key_count, veil_error *err)
{
    const veil_context *ctx = tr->ctx;
    const veil_ckks_plaintext *const *diags = tr->diags;
    const size_t b = tr->baby, groups = (tr->n_diags + b - 1) / b, level = x->el.level;
    veil_status st = VEIL_OK;
    double diag_scale = 0;
    bool have = false;
    dh_work w;
    memset(&w, 0, sizeof w);
    w.qp_count = veil_context_qp_base(ctx, level, w.qp);
    for (size_t c = 0; c < 2; c++) {
        w.baby[c] = calloc(b, sizeof *w.baby[c]);
        if (!w.baby[c]) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "%s: out of memory", tr->name);
        VEIL_CHECK(veil_poly_new(&w.inner[c], ctx->ring, w.qp, w.qp_count, VEIL_FORM_EVAL, err));
        VEIL_CHECK(veil_poly_new(&w.acc[c], ctx->ring, w.qp, w.qp_count, VEIL_FORM_EVAL, err));
        VEIL_CHECK(veil_context_poly_new(&w.res[c], ctx, level, VEIL_FORM_EVAL, err));
    }
    VEIL_CHECK(veil_poly_new(&w.rotated, ctx->ring, w.qp, w.qp_count, VEIL_FORM_EVAL, err));
    VEIL_CHECK(veil_context_poly_new(&w.down, ctx, level, VEIL_FORM_EVAL, err));
    VEIL_CHECK(dh_keys(tr, &w, keys, key_count, err));
    VEIL_CHECK(dh_baby(tr, &w, x, err));
    for (size_t j = 0; j < groups; j++) {
        bool started = false;
        for (size_t i = 0; i < b && j * b + i < tr->n_diags; i++) {
            const veil_ckks_plaintext *d = diags[j * b + i];
            if (!d) continue;
            diag_scale = d->scale;
            for (size_t c = 0; c < 2; c++) plain_product_qp(ctx->ring, &w, w.inner[c], w.baby[c][i], d, level, started);
            started = true;
        }
        if (!started) continue;
        if (j > 0) {
            const uint64_t g = veil_galois_element_rotation(ctx, (long)(j * b) * tr->unit);
            VEIL_CHECK(veil_bsgs_giant_extended(ctx, w.acc, (const veil_poly *const *)w.inner, w.down, w.rotated, g,
                                                w.giant_keys[j], have, level, err));
        } else {
            for (size_t c = 0; c < 2; c++) { /* the first group: no rotation, and nothing summed yet */
                veil_poly *t = w.acc[c];
                w.acc[c] = w.inner[c];
                w.inner[c] = t;
            }
        }
        have = true;
    }
    /* the one ModDown of the transform */
    for (size_t c = 0; c < 2; c++) VEIL_CHECK(veil_context_mod_down(ctx, w.res[c], w.acc[c], level, err));
    const double scale = x->scale * diag_scale;
    veil_ckks_adopt_pair(out, w.res, level);
    out->scale = scale;
done:
    dh_free(&w, b);
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
    VEIL_CHECK(veil_rlwe_check_element(ctx, veil_ckks_element(x), "linear_transform", err));
    VEIL_CHECK(veil_rlwe_check_output(ctx, &out->el, "linear_transform", err));
    const veil_bsgs tr = {ctx,      "linear_transform", diags, plain_present, plain_inner, NULL,
                          n_diags, baby < n_diags ? baby : n_diags, unit};
    if (plain_extended(diags, n_diags, x)) VEIL_CHECK(plain_double_hoisted(&tr, out, x, keys, key_count, err));
    else VEIL_CHECK(veil_bsgs_apply(&tr, out, x, keys, key_count, threads, err));
done:
    return st;
}
