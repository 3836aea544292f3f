/*
 * CKKS inference, the evaluator of both packings (encryption and decryption: ckks_io.c; keys: ckks_keys.c).
 *
 * Throughput packing (CryptoNets, Gilad-Bachrach et al. 2016): slot r of ciphertext f holds feature f of
 * sample r. An affine stage is, per output, one fused linear combination of the input ciphertexts (scalar
 * weights, lazy reduction, one rescale); elementwise stages act on each ciphertext. No rotations.
 *
 * Latency packing: one sample's features over S values (a power of two at least the widest layer) in each
 * of R = N/2S lanes, value s of lane b at slot s R + b, so that a rotation by i R is cyclic over S in every
 * lane. An affine stage W (m x n, padded) is the diagonal method (Halevi-Shoup 2014): W x = sum_k d_k *
 * rot(x, k), computed by baby-step giant-step with hoisted baby rotations (veil_ckks_linear_transform,
 * veil/circuits.h), the diagonals encoded once, when the evaluator is made. A narrow layer uses the hybrid
 * method's K extended diagonals, and the first full-width layer spreads its diagonals over the lanes
 * (veil_latency_diagonals, veil_latency_lanes in ml_plan.h).
 */
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <omp.h>
#include "ml/ml_plan.h"
#include "veil/circuits.h"
#include <sodium.h>

/* ---- the evaluator ------------------------------------------------------------------------------------ */

typedef struct prepared_stage {
    size_t level;                 /* of the stage's input */
    veil_ckks_plaintext **diag;   /* latency affine: n_diag pre-rotated diagonals (NULL when zero) */
    size_t n_diag, lanes;
    double *bias_slots;           /* latency: the bias, at every copy of each row in lane 0 of the N/2 slots */
} prepared_stage;

typedef struct ckks_evaluator {
    const veil_model *model;
    const veil_eval_keys *keys;
    veil_ckks_encoder *enc;
    prepared_stage *stages;
    size_t n_stages, slots; /* copies: freeing needs neither the model nor the keys */
    size_t threads;
    /* bootstraps (keys->boot.count > 0): the program with the stages before them scaled (ckks_boot.c), the
     * bootstrapper; prog is the model's program otherwise */
    const veil_program *prog;
    veil_program boot_prog;
    veil_ckks_bootstrapper *bt;
    size_t span; /* the latency formulas' N/2: N/2, or the slots in the periodic layout (veil_latency_span) */
    unsigned out_shift; /* the last stage's outputs at the scale / 2^out_shift (veil_ckks_output_shift) */
} ckks_evaluator;

static const veil_switch_key *galois_for(const veil_eval_keys *k, long step, veil_error *err)
{
    uint64_t e = veil_galois_element_rotation(k->ctx, step);
    for (size_t i = 0; i < k->n_galois; i++)
        if (veil_switch_key_galois_element(k->galois[i]) == e) return k->galois[i];
    veil_fail(err, VEIL_ERR_MISMATCH, "the evaluation keys lack the Galois key of rotation %ld", step);
    return NULL;
}

/* out = x rotated by step slots, with the eval keys' Galois key for it. */
static veil_status rotate_by(const ckks_evaluator *ev, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *x,
                             long step, veil_error *err)
{
    const veil_switch_key *gk = galois_for(ev->keys, step, err);
    return gk ? veil_ckks_rotate(ev->keys->ctx, out, x, step, gk, err) : VEIL_ERR_MISMATCH;
}

static size_t stage_depth(const veil_stage *s)
{
    veil_program one = {.stages = (veil_stage *)s, .n_stages = 1};
    return veil_program_depth(&one);
}

void veil_ml_ckks_evaluator_free(void *state)
{
    ckks_evaluator *ev = state;
    if (!ev) return;
    for (size_t i = 0; ev->stages && i < ev->n_stages; i++) {
        prepared_stage *ps = &ev->stages[i];
        for (size_t k = 0; ps->diag && k < ps->n_diag; k++) veil_ckks_plaintext_free(ps->diag[k]);
        free(ps->diag);
        free(ps->bias_slots);
    }
    free(ev->stages);
    veil_ckks_bootstrapper_free(ev->bt);
    veil_program_clear(&ev->boot_prog);
    veil_ckks_encoder_free(ev->enc);
    free(ev);
}

/* Whether the keys' schedule bootstraps after stage si, and at which point (index into boot.after). */
static int boot_after(const ckks_evaluator *ev, size_t si, size_t *k)
{
    const veil_ml_boot *b = &ev->keys->boot;
    for (size_t i = 0; i < b->count; i++)
        if (b->after[i] == si) {
            *k = i;
            return 1;
        }
    return 0;
}

/*
 * The bootstraps of the keys' schedule: the scaled program, the stages' levels checked (each segment within
 * the levels a bootstrap returns), the bootstrapper, and its keys present (named when missing).
 */
static veil_status prepare_boot(ckks_evaluator *ev, veil_error *err)
{
    const veil_eval_keys *keys = ev->keys;
    const veil_ml_boot *b = &keys->boot;
    const veil_program *p = &ev->model->program;
    veil_status st = VEIL_OK;
    uint64_t *elements = NULL;
    size_t count = 0;
    if (ev->model->enc)
        VEIL_FAIL(err, VEIL_ERR_UNSUPPORTED, "bootstraps run with the model's weights in the clear (not an encrypted "
                  "model)");
    if (keys->meta.packing == VEIL_PACKING_LATENCY && keys->meta.layout != VEIL_LAYOUT_PERIODIC)
        VEIL_FAIL(err, VEIL_ERR_MISMATCH, "the keys bootstrap in the latency packing without its periodic layout");
    if (b->levels > veil_context_max_level(keys->ctx))
        VEIL_FAIL(err, VEIL_ERR_MISMATCH, "the keys' bootstrapping schedule starts at level %zu, above their parameters' "
                  "%zu", b->levels, veil_context_max_level(keys->ctx));
    size_t level = b->levels, k;
    for (size_t i = 0; i < p->n_stages; i++) {
        const size_t d = stage_depth(&p->stages[i]);
        if (d > level)
            VEIL_FAIL(err, VEIL_ERR_MISMATCH, "the keys' bootstrapping schedule leaves layer %zu %zu levels, it needs %zu: "
                      "the keys were made for another model", i + 1, level, d);
        level -= d;
        if (boot_after(ev, i, &k)) level = b->levels;
    }
    /* the schedule against the model's bounds over the inputs' range it was planned for: every point's shift
     * brings its values into [-1, 1], every stage's values fit their level (else a wrong result, refused) */
    veil_ml_boot checked = *b;
    if (!keys->boot_lo || !keys->boot_hi)
        VEIL_FAIL(err, VEIL_ERR_MISMATCH, "the keys' bootstrapping schedule carries no inputs' range");
    VEIL_CHECK(veil_ml_boot_check(p, &checked, keys->boot_lo, keys->boot_hi, keys->params, keys->meta.scale_bits,
                                  keys->meta.packing == VEIL_PACKING_LATENCY, err));
    VEIL_CHECK(veil_ml_boot_program(&ev->boot_prog, p, b, err));
    ev->prog = &ev->boot_prog;
    VEIL_CHECK(veil_ckks_bootstrapper_new(&ev->bt, ev->enc, &b->config, err));
    veil_ckks_bootstrap_info info;
    veil_ckks_bootstrapper_info(ev->bt, &info);
    if (info.levels_left != b->levels)
        VEIL_FAIL(err, VEIL_ERR_MISMATCH, "the keys' bootstrapping schedule expects level %zu after a bootstrap, the "
                  "bootstrapper gives %zu", b->levels, info.levels_left);
    elements = calloc(info.galois_count + 1, sizeof *elements);
    if (!elements) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "evaluator");
    VEIL_CHECK(veil_ckks_bootstrap_galois_elements(ev->bt, elements, &count, info.galois_count, err));
    for (size_t e = 0; e < count; e++) {
        int found = 0;
        for (size_t i = 0; i < keys->n_galois && !found; i++) found = veil_switch_key_galois_element(keys->galois[i]) == elements[e];
        if (!found)
            VEIL_FAIL(err, VEIL_ERR_MISMATCH, "the evaluation keys lack a bootstrapping key (Galois element %llu, %zu "
                      "needed): make the keys with this model's plan", (unsigned long long)elements[e], count);
    }
    if (b->config.encapsulation_weight && !keys->encaps)
        VEIL_FAIL(err, VEIL_ERR_MISMATCH, "the evaluation keys lack bootstrapping's encapsulation key");
done:
    free(elements);
    return st;
}

/*
 * Latency: the diagonals of an affine stage, pre-rotated for the giant steps of veil_ckks_linear_transform
 * (in steps of R slots), encoded at scale q_l over all N/2 slots (value s of lane b at slot s R + b). Lane b
 * of diagonal k' holds d_{b K' + k'} when the stage spreads its K diagonals over the lanes (K' = K / lanes),
 * and only lane 0 is used otherwise.
 */
static veil_status prepare_latency(ckks_evaluator *ev, const veil_stage *s, size_t stage, prepared_stage *ps,
                                   veil_error *err)
{
    const veil_context *ctx = ev->keys->ctx;
    const size_t S = ev->slots, half = veil_params_degree(veil_context_params(ctx)) / 2, R = ev->span / S;
    const size_t K = veil_latency_diagonals(s->out_width, S);
    const size_t lanes = veil_latency_lanes(&ev->model->program, stage, S, ev->span), Kl = K / lanes;
    const size_t g = veil_ckks_linear_transform_baby(Kl);
    const double q_l = (double)veil_params_q(veil_context_params(ctx), ps->level);
    veil_status st = VEIL_OK;
    double *v = calloc(half, sizeof *v);
    ps->bias_slots = calloc(half, sizeof *ps->bias_slots); /* the evaluator holds them */
    ps->diag = calloc(Kl, sizeof *ps->diag);
    if (!v || !ps->bias_slots || !ps->diag) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "evaluator");
    ps->n_diag = Kl;
    ps->lanes = lanes;
    /* the hybrid method leaves at value i of lane 0 a copy of row i mod K: each copy gets its bias, so that
     * every value of lane 0 is an output of the layer or 0 (rows K > out_width), which the bounds cover (in the
     * periodic layout, R = 1: every slot, the sample's S values repeated) */
    for (size_t i = 0; i < half / R; i++)
        if (i % K < s->out_width) ps->bias_slots[i * R] = s->b[i % K];
    for (size_t k = 0; k < Kl; k++) {
        int nonzero = 0;
        for (size_t t = 0; t < half; t++) {
            /* D_k[t]: value t / R of lane t mod R */
            const size_t lane = t % R;
            v[t] = lane < lanes ? veil_latency_diag(s, S, K, lane * Kl + k, t / R) : 0.0;
            if (v[t] != 0) nonzero = 1;
        }
        if (!nonzero) continue;
        VEIL_CHECK(veil_ckks_plaintext_new(&ps->diag[k], ctx, err));
        /* double hoisting (the diagonals' residues mod P kept too) runs the giant steps one after another: it
         * saves CPU time, which is wall time on one thread, but on two idle cores it was slower than the
         * single-hoisted transform's giant steps side by side (docs/performance.md, "Quiet machine") */
        if (ev->threads == 1)
            VEIL_CHECK(veil_ckks_linear_transform_encode_extended(ev->enc, ps->diag[k], v, k, g, (long)R, q_l,
                                                                  ps->level, err));
        else
            VEIL_CHECK(veil_ckks_linear_transform_encode(ev->enc, ps->diag[k], v, k, g, (long)R, q_l, ps->level, err));
    }
done:
    free(v);
    return st;
}

/* The evaluator of a model and its keys (checked against each other): the latency packing's diagonals encoded. */
veil_status veil_ml_ckks_evaluator_new(void **state, const veil_model *model, const veil_eval_keys *keys,
                                       size_t threads, veil_error *err)
{
    const veil_program *p = &model->program;
    if (!keys->boot.count && veil_program_depth(p) > veil_context_max_level(keys->ctx))
        return veil_fail(err, VEIL_ERR_MISMATCH, "the keys' parameters have %zu levels, the model needs %zu",
                         veil_context_max_level(keys->ctx), veil_program_depth(p));
    if (model->enc && (model->enc->ctx != keys->ctx ||
                       sodium_memcmp(model->enc->key_id, keys->meta.key_id, VEIL_ID_BYTES) != 0))
        return veil_fail(err, VEIL_ERR_MISMATCH, "the encrypted model was loaded with other evaluation keys");
    if (model->enc && keys->meta.packing != model->enc->packing)
        return veil_fail(err, VEIL_ERR_MISMATCH, "the encrypted model's packing is not these keys'");
    ckks_evaluator *ev = calloc(1, sizeof *ev);
    if (!ev) return veil_fail(err, VEIL_ERR_NO_MEMORY, "evaluator");
    ev->model = model;
    ev->keys = keys;
    ev->n_stages = p->n_stages;
    ev->slots = (size_t)keys->meta.slots;
    ev->span = veil_latency_span(veil_params_degree(keys->params) / 2, ev->slots,
                                 keys->meta.layout == VEIL_LAYOUT_PERIODIC);
    ev->threads = threads ? threads : 1;
    veil_status st = VEIL_OK; /* an encrypted model's last weights carry the shift (encmodel.c, weight_scale) */
    VEIL_CHECK(veil_ml_ckks_keys_output_shift(&ev->out_shift, p, keys, err));
    ev->stages = calloc(p->n_stages + 1, sizeof *ev->stages);
    if (!ev->stages) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "evaluator");
    VEIL_CHECK(veil_ckks_encoder_new(&ev->enc, keys->ctx, err));
    ev->prog = p;
    if (keys->boot.count) VEIL_CHECK(prepare_boot(ev, err));
    size_t level = keys->boot.count ? keys->boot.levels : veil_context_max_level(keys->ctx), bk;
    for (size_t i = 0; i < p->n_stages; i++) {
        ev->stages[i].level = level;
        if (keys->meta.packing == VEIL_PACKING_LATENCY && p->stages[i].kind == VEIL_STAGE_AFFINE) {
            if (p->stages[i].in_width > keys->meta.slots || p->stages[i].out_width > keys->meta.slots)
                VEIL_FAIL(err, VEIL_ERR_MISMATCH, "a layer is wider than the keys' %llu slots",
                          (unsigned long long)keys->meta.slots);
            if (model->enc) { /* its diagonals are the model's ciphertexts (encrypted_latency_affine) */
                ev->stages[i].lanes = veil_latency_lanes(p, i, ev->slots, ev->span);
                ev->stages[i].n_diag = veil_latency_diagonals(p->stages[i].out_width, ev->slots) / ev->stages[i].lanes;
            } else {
                /* the stages before bootstraps scaled (ev->prog) */
                VEIL_CHECK(prepare_latency(ev, &ev->prog->stages[i], i, &ev->stages[i], err));
            }
        }
        level -= stage_depth(&p->stages[i]);
        if (boot_after(ev, i, &bk)) level = keys->boot.levels;
    }
    *state = ev;
    ev = NULL;
done:
    veil_ml_ckks_evaluator_free(ev);
    return st;
}

/* An elementwise stage on one ciphertext. */
static veil_status elementwise(const ckks_evaluator *ev, const veil_stage *s, veil_ckks_ciphertext *out,
                               const veil_ckks_ciphertext *x, veil_error *err)
{
    const veil_context *ctx = ev->keys->ctx;
    const veil_switch_key *rk = ev->keys->relin;
    if (s->kind == VEIL_STAGE_SQUARE) return veil_ckks_mul_relin_rescale(ctx, out, x, x, rk, err);
    if (s->kind == VEIL_STAGE_CHEBYSHEV)
        return veil_ckks_eval_chebyshev(ctx, out, x, s->coeffs, s->degree, s->lo, s->hi, rk, err);
    /* power basis, degree <= 3: c0 + c1 x + c2 x^2 + (c3 x) x^2, two levels */
    const double *c = s->coeffs;
    veil_ckks_ciphertext *x2 = NULL, *t = NULL, *acc = NULL;
    veil_status st = VEIL_OK;
    VEIL_CHECK(veil_ckks_ciphertext_new(&t, ctx, err));
    VEIL_CHECK(veil_ckks_ciphertext_new(&acc, ctx, err));
    VEIL_CHECK(veil_ckks_mul_constant(ctx, acc, x, s->degree >= 1 ? c[1] : 0.0, err));
    if (s->degree >= 2) {
        VEIL_CHECK(veil_ckks_ciphertext_new(&x2, ctx, err));
        VEIL_CHECK(veil_ckks_mul_relin_rescale(ctx, x2, x, x, rk, err));
        if (c[2] != 0) {
            VEIL_CHECK(veil_ckks_mul_constant(ctx, t, x2, c[2], err));
            VEIL_CHECK(veil_ckks_add(ctx, acc, acc, t, err));
        }
        if (s->degree >= 3 && c[3] != 0) {
            VEIL_CHECK(veil_ckks_mul_constant(ctx, t, x, c[3], err));
            VEIL_CHECK(veil_ckks_mul_relin_rescale(ctx, t, t, x2, rk, err));
            VEIL_CHECK(veil_ckks_add(ctx, acc, acc, t, err));
        }
    }
    VEIL_CHECK(veil_ckks_add_constant(ctx, out, acc, c[0], err));
done:
    veil_ckks_ciphertext_free(x2);
    veil_ckks_ciphertext_free(t);
    veil_ckks_ciphertext_free(acc);
    return st;
}

/* Latency: one affine stage on one sample (at most VEIL_LATENCY_THREADS threads share its transform). */
#define VEIL_LATENCY_THREADS 16

static veil_status latency_affine(const ckks_evaluator *ev, const prepared_stage *ps, veil_ckks_ciphertext *out,
                                  const veil_ckks_ciphertext *x, veil_error *err)
{
    const veil_context *ctx = ev->keys->ctx;
    const size_t S = ev->slots, half = veil_params_degree(veil_context_params(ctx)) / 2, R = ev->span / S;
    const size_t Kl = ps->n_diag, K = Kl * ps->lanes;
    const size_t threads = ev->threads < VEIL_LATENCY_THREADS ? ev->threads : VEIL_LATENCY_THREADS;
    veil_status st = VEIL_OK;
    veil_ckks_plaintext *bias = NULL;
    veil_ckks_ciphertext *acc = NULL, *prod = NULL;
    int have_acc = 0;
    for (size_t k = 0; k < Kl && !have_acc; k++) have_acc = ps->diag[k] != NULL;
    VEIL_CHECK(veil_ckks_ciphertext_new(&acc, ctx, err));
    VEIL_CHECK(veil_ckks_ciphertext_new(&prod, ctx, err));
    /* W x over the pre-rotated diagonals, in steps of R slots (one value in every lane), not rescaled; an
     * all-zero matrix gives x times 0, at x's scale */
    VEIL_CHECK(veil_ckks_linear_transform(ctx, acc, x, (const veil_ckks_plaintext *const *)ps->diag, Kl,
                                          veil_ckks_linear_transform_baby(Kl), (long)R,
                                          (const veil_switch_key *const *)ev->keys->galois, ev->keys->n_galois,
                                          threads, err));
    if (have_acc) VEIL_CHECK(veil_ckks_rescale(ctx, acc, acc, err));
    /* the lanes' parts of every row, added into lane 0 (lanes are adjacent slots) */
    for (size_t r = 1; have_acc && r < ps->lanes; r *= 2) {
        VEIL_CHECK(rotate_by(ev, prod, acc, (long)r, err));
        VEIL_CHECK(veil_ckks_add(ctx, acc, acc, prod, err));
    }
    /* the hybrid method: value s holds the part of row s mod K; the parts of a row are K values apart */
    for (size_t r = K; have_acc && r < S; r *= 2) {
        VEIL_CHECK(rotate_by(ev, prod, acc, (long)(r * R), err));
        VEIL_CHECK(veil_ckks_add(ctx, acc, acc, prod, err));
    }
    VEIL_CHECK(veil_ckks_plaintext_new(&bias, ctx, err));
    VEIL_CHECK(veil_ckks_encode(ev->enc, bias, ps->bias_slots, NULL, half, veil_ckks_ciphertext_scale(acc),
                                veil_ckks_ciphertext_level(acc), err));
    VEIL_CHECK(veil_ckks_add_plain(ctx, out, acc, bias, err));
done:
    veil_ckks_plaintext_free(bias);
    veil_ckks_ciphertext_free(acc);
    veil_ckks_ciphertext_free(prod);
    return st;
}

/*
 * Latency, an encrypted model's affine stage (encmodel.c): the same steps as latency_affine with the model's
 * encrypted diagonals (relinearized once per giant step) and its encrypted bias vector, brought from scale q_l to
 * the result's by one constant product, as the throughput packing's biases.
 */
static veil_status encrypted_latency_affine(const ckks_evaluator *ev, size_t si, veil_ckks_ciphertext *out,
                                           const veil_ckks_ciphertext *x, veil_error *err)
{
    const prepared_stage *ps = &ev->stages[si];
    const veil_context *ctx = ev->keys->ctx;
    const size_t S = ev->slots, R = ev->span / S;
    const size_t Kl = ps->n_diag, K = Kl * ps->lanes;
    const size_t threads = ev->threads < VEIL_LATENCY_THREADS ? ev->threads : VEIL_LATENCY_THREADS;
    veil_ckks_ciphertext *const *diags = ev->model->enc->w[si];
    veil_status st = VEIL_OK;
    veil_ckks_ciphertext *acc = NULL, *prod = NULL;
    int have_acc = 0;
    for (size_t k = 0; k < Kl && !have_acc; k++) have_acc = diags[k] != NULL;
    VEIL_CHECK(veil_ckks_ciphertext_new(&acc, ctx, err));
    VEIL_CHECK(veil_ckks_ciphertext_new(&prod, ctx, err));
    VEIL_CHECK(veil_ckks_linear_transform_encrypted(ctx, acc, x, (const veil_ckks_ciphertext *const *)diags, Kl,
                                                    veil_ckks_linear_transform_baby(Kl), (long)R, ev->keys->relin,
                                                    (const veil_switch_key *const *)ev->keys->galois,
                                                    ev->keys->n_galois, threads, err));
    if (have_acc) VEIL_CHECK(veil_ckks_rescale(ctx, acc, acc, err));
    for (size_t r = 1; have_acc && r < ps->lanes; r *= 2) {
        VEIL_CHECK(rotate_by(ev, prod, acc, (long)r, err));
        VEIL_CHECK(veil_ckks_add(ctx, acc, acc, prod, err));
    }
    for (size_t r = K; have_acc && r < S; r *= 2) {
        VEIL_CHECK(rotate_by(ev, prod, acc, (long)(r * R), err));
        VEIL_CHECK(veil_ckks_add(ctx, acc, acc, prod, err));
    }
    VEIL_CHECK(veil_ckks_mul_constant_to_scale(ctx, prod, ev->model->enc->b[si][0], 1.0,
                                               veil_ckks_ciphertext_scale(acc), err));
    if (!have_acc) VEIL_CHECK(veil_ckks_mod_drop(ctx, acc, acc, veil_ckks_ciphertext_level(prod), err));
    VEIL_CHECK(veil_ckks_add(ctx, out, acc, prod, err));
done:
    veil_ckks_ciphertext_free(acc);
    veil_ckks_ciphertext_free(prod);
    return st;
}

typedef struct progress {
    veil_progress_fn fn;
    void *arg;
    size_t done, total;
} progress;

static void tick(progress *pr, size_t units)
{
    if (!pr->fn) return;
#pragma omp critical(veil_progress)
    {
        pr->done += units;
        pr->fn(pr->arg, pr->done, pr->total);
    }
}

/*
 * One output of an elementwise stage (a square feeding an affine layer left unrelinearized when lazy). With
 * `consume` the input (the batch's own, read by this output only) is freed once used: the layer's inputs and
 * outputs are not all held at once (a CNN's convolution outputs and their unrelinearized squares, ~2 GB a batch
 * at N = 2^14, when batches run side by side).
 */
static veil_status elementwise_output(const ckks_evaluator *ev, const veil_stage *s, int lazy, veil_ckks_ciphertext *y,
                                      veil_ckks_ciphertext **xp, int consume, progress *pr, veil_error *err)
{
    const veil_context *ctx = ev->keys->ctx;
    const veil_ckks_ciphertext *x = *xp;
    veil_status st = VEIL_OK;
    if (lazy) {
        VEIL_CHECK(veil_ckks_mul(ctx, y, x, x, err));
        VEIL_CHECK(veil_ckks_rescale(ctx, y, y, err));
    } else {
        VEIL_CHECK(elementwise(ev, s, y, x, err));
    }
done:
    if (consume) {
        veil_ckks_ciphertext_free(*xp);
        *xp = NULL;
    }
    tick(pr, 1);
    return st;
}

static void free_layer(veil_ckks_ciphertext **c, size_t n)
{
    for (size_t i = 0; c && i < n; i++) veil_ckks_ciphertext_free(c[i]);
    free(c);
}

/*
 * An encrypted model's affine stage, one output (encmodel.c): y = sum_i Enc(w_i) x_i, accumulated unrelinearized
 * (size 3), relinearized and rescaled once; then the bias, brought from scale q_l to the result's scale by one
 * constant product (it uses the level the result just left), added.
 */
static veil_status encrypted_affine_output(const ckks_evaluator *ev, size_t si, size_t o, veil_ckks_ciphertext *y,
                                           veil_ckks_ciphertext *const *x, progress *pr, veil_error *err)
{
    const veil_stage *s = &ev->model->program.stages[si];
    const veil_context *ctx = ev->keys->ctx;
    veil_ckks_ciphertext *const *w = ev->model->enc->w[si] + o * s->in_width;
    veil_ckks_ciphertext *bias = NULL;
    veil_status st = VEIL_OK;
    VEIL_CHECK(veil_ckks_mul_sum(ctx, y, (const veil_ckks_ciphertext *const *)w,
                                       (const veil_ckks_ciphertext *const *)x, s->in_width, err));
    VEIL_CHECK(veil_ckks_relinearize(ctx, y, y, ev->keys->relin, err));
    VEIL_CHECK(veil_ckks_rescale(ctx, y, y, err));
    VEIL_CHECK(veil_ckks_ciphertext_new(&bias, ctx, err));
    VEIL_CHECK(veil_ckks_mul_constant_to_scale(ctx, bias, ev->model->enc->b[si][o], 1.0,
                                               veil_ckks_ciphertext_scale(y), err));
    VEIL_CHECK(veil_ckks_add(ctx, y, y, bias, err));
done:
    veil_ckks_ciphertext_free(bias);
    tick(pr, 1);
    return st;
}

/* One ciphertext bootstrapped and its values multiplied back by 2^shift (exact: an integer product). */
static veil_status bootstrap_one(const ckks_evaluator *ev, veil_ckks_ciphertext *x, int shift, progress *pr,
                                 veil_error *err)
{
    const veil_eval_keys *k = ev->keys;
    veil_status st = VEIL_OK;
    if (veil_ckks_ciphertext_size(x) != 2) VEIL_CHECK(veil_ckks_relinearize(k->ctx, x, x, k->relin, err));
    VEIL_CHECK(veil_ckks_bootstrap_encapsulated(k->ctx, ev->bt, x, x, k->relin, (const veil_switch_key *const *)k->galois,
                                                k->n_galois, k->encaps, err));
    if (shift > 0) VEIL_CHECK(veil_ckks_mul_integer(k->ctx, x, x, (int64_t)1 << shift, err));
done:
    tick(pr, 1);
    return st;
}

/* Bootstraps: the inputs of a batch, dropped to the level the schedule starts at, into fresh ciphertexts. */
static veil_status boot_inputs(const ckks_evaluator *ev, veil_ckks_ciphertext **out, veil_ckks_ciphertext *const *in,
                               size_t width, veil_error *err)
{
    const veil_context *ctx = ev->keys->ctx;
    const size_t start = ev->keys->boot.levels;
    veil_status st = VEIL_OK;
    for (size_t i = 0; i < width; i++) {
        const size_t level = veil_ckks_ciphertext_level(in[i]);
        if (level < start)
            VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "evaluate: input ciphertext %zu is at level %zu, below the level %zu the "
                      "model's plan starts at (not a fresh encryption under these keys)", i + 1, level, start);
        VEIL_CHECK(veil_ckks_ciphertext_new(&out[i], ctx, err));
        VEIL_CHECK(veil_ckks_mod_drop(ctx, out[i], in[i], start, err));
    }
done:
    return st;
}

/*
 * Throughput: one batch (cur: its width ciphertexts, read only; result: its outputs), `threads` threads sharing
 * each of its layers' outputs (1 when batches run side by side).
 */
static veil_status run_batch(const ckks_evaluator *ev, size_t threads, veil_ckks_ciphertext **cur, size_t width,
                             veil_ckks_ciphertext **result, progress *pr, veil_error *err)
{
    const veil_program *p = ev->prog;
    const veil_context *ctx = ev->keys->ctx;
    veil_ckks_ciphertext **x = cur;
    veil_ckks_ciphertext **owned = NULL, **y = NULL;
    size_t y_width = 0, bk;
    veil_status st = VEIL_OK;
    if (ev->keys->boot.count) {
        owned = calloc(width, sizeof *owned);
        if (!owned) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "evaluate");
        VEIL_CHECK(boot_inputs(ev, owned, cur, width, err));
        x = owned;
    }
    for (size_t si = 0; si < p->n_stages; si++) {
        const veil_stage *s = &p->stages[si];
        const size_t ow = s->out_width;
        y = calloc(ow, sizeof *y);
        if (!y) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "evaluate");
        y_width = ow;
        for (size_t o = 0; o < ow; o++) VEIL_CHECK(veil_ckks_ciphertext_new(&y[o], ctx, err));
        if (s->kind == VEIL_STAGE_AFFINE && ev->model->enc) {
            VEIL_PARALLEL_PARTS(ow, threads, err, encrypted_affine_output(ev, si, part, y[part], x, pr, &e_));
        } else if (s->kind == VEIL_STAGE_AFFINE) {
            /* the whole layer at once: inputs read once; products left unrelinearized are relinearized here */
            st = veil_ckks_linear_layer_shifted(ctx, y, ow, (const veil_ckks_ciphertext *const *)x, s->in_width,
                                                s->w, s->b, si + 1 == p->n_stages ? ev->out_shift : 0,
                                                ev->keys->relin, err);
            tick(pr, ow);
        } else { /* elementwise */
            /* a square feeding an affine layer stays unrelinearized: the layer relinearizes its fewer outputs */
            const int lazy = s->kind == VEIL_STAGE_SQUARE && si + 1 < p->n_stages && !ev->model->enc &&
                             p->stages[si + 1].kind == VEIL_STAGE_AFFINE;
            VEIL_PARALLEL_PARTS(ow, threads, err,
                                elementwise_output(ev, s, lazy, y[part], &x[part], x == owned, pr, &e_));
        }
        if (st != VEIL_OK) goto done;
        if (ev->keys->boot.count && boot_after(ev, si, &bk)) {
            const int shift = ev->keys->boot.shift[bk];
            VEIL_PARALLEL_PARTS(ow, threads, err, bootstrap_one(ev, y[part], shift, pr, &e_));
            if (st != VEIL_OK) goto done;
        }
        free_layer(owned, width);
        owned = y;
        y = NULL;
        x = owned;
        width = ow;
    }
    for (size_t o = 0; o < width; o++) {
        if (owned) {
            veil_ckks_ciphertext_free(result[o]);
            result[o] = owned[o];
            owned[o] = NULL;
        } else {
            VEIL_CHECK(veil_ckks_add_constant(ctx, result[o], x[o], 0.0, err)); /* a program without stages */
        }
    }
done:
    free_layer(y, y_width);
    free_layer(owned, width);
    return st;
}

/* Latency: one sample through every stage (one unit of progress). */
static veil_status run_sample(const ckks_evaluator *ev, const veil_ckks_ciphertext *in, veil_ckks_ciphertext *out,
                              progress *pr, veil_error *err)
{
    const veil_program *p = ev->prog;
    const veil_context *ctx = ev->keys->ctx;
    veil_ckks_ciphertext *a = NULL, *b = NULL;
    veil_status st = VEIL_OK;
    size_t bk;
    VEIL_CHECK(veil_ckks_ciphertext_new(&a, ctx, err));
    VEIL_CHECK(veil_ckks_ciphertext_new(&b, ctx, err));
    const veil_ckks_ciphertext *x = in;
    progress none = {0};
    if (ev->keys->boot.count) { /* the input at the level the schedule starts at (as boot_inputs) */
        const size_t level = veil_ckks_ciphertext_level(in), start = ev->keys->boot.levels;
        if (level < start)
            VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "evaluate: an input ciphertext is at level %zu, below the level %zu the "
                      "model's plan starts at (not a fresh encryption under these keys)", level, start);
        VEIL_CHECK(veil_ckks_mod_drop(ctx, b, in, start, err));
        x = b;
    }
    for (size_t si = 0; si < p->n_stages; si++) {
        const veil_stage *s = &p->stages[si];
        veil_ckks_ciphertext *y = x == a ? b : a;
        if (s->kind == VEIL_STAGE_AFFINE && ev->model->enc) VEIL_CHECK(encrypted_latency_affine(ev, si, y, x, err));
        else if (s->kind == VEIL_STAGE_AFFINE) VEIL_CHECK(latency_affine(ev, &ev->stages[si], y, x, err));
        else VEIL_CHECK(elementwise(ev, s, y, x, err));
        /* a sparse bootstrap of the sample's S slots (the periodic layout), its values brought back by 2^shift */
        if (ev->keys->boot.count && boot_after(ev, si, &bk))
            VEIL_CHECK(bootstrap_one(ev, y, ev->keys->boot.shift[bk], &none, err));
        x = y;
    }
    VEIL_CHECK(veil_ckks_add_constant(ctx, out, x, 0.0, err));
done:
    veil_ckks_ciphertext_free(a);
    veil_ckks_ciphertext_free(b);
    tick(pr, 1);
    return st;
}

/* The model on a set of inputs: the throughput packing batch by batch, the latency packing sample by sample. */
veil_status veil_ml_ckks_evaluator_run(const void *state, veil_ciphertexts **out, const veil_ciphertexts *in,
                                       veil_progress_fn fn, void *arg, veil_error *err)
{
    const ckks_evaluator *ev = state;
    const veil_eval_keys *k = ev->keys;
    const veil_program *p = ev->prog;
    veil_ml_meta meta = in->meta;
    meta.kind = VEIL_SET_OUTPUTS;
    meta.width = (uint32_t)p->out_width;
    const size_t batches = veil_ciphertexts_batches(&in->meta);
    const size_t per_out = meta.packing == VEIL_PACKING_THROUGHPUT ? p->out_width : 1;
    veil_ciphertexts *res = NULL;
    progress pr = {fn, arg, 0, 0};
    veil_status st = VEIL_OK;
    VEIL_CHECK(veil_ciphertexts_alloc(&res, k->ctx, &meta, batches * per_out, err));
    if (meta.packing == VEIL_PACKING_THROUGHPUT) {
        for (size_t i = 0; i < p->n_stages; i++) pr.total += p->stages[i].out_width * batches;
        for (size_t i = 0; i < k->boot.count; i++) pr.total += p->stages[k->boot.after[i]].out_width * batches;
        /* Several batches and several threads: whole batches side by side, one thread each (each core busy with
         * its own batch, no barrier inside a batch where a thread waits for the other), as many rounds as there
         * are batches per thread; the batches left over (fewer than the threads) one after the other, the threads
         * sharing each layer. The ring's own parallel regions inside a batch run side by side are nested ones
         * (one thread, OpenMP's default). Each batch is computed the same way either way: the same bytes. */
        const size_t side = ev->threads > 1 && batches >= ev->threads ? batches - batches % ev->threads : 0;
        VEIL_PARALLEL_PARTS(side, ev->threads, err,
                            run_batch(ev, 1, in->cts + part * p->in_width, p->in_width, res->cts + part * per_out,
                                      &pr, &e_));
        if (st != VEIL_OK) goto done;
        for (size_t b = side; b < batches; b++)
            VEIL_CHECK(run_batch(ev, ev->threads, in->cts + b * p->in_width, p->in_width, res->cts + b * per_out,
                                 &pr, err));
    } else {
        pr.total = batches;
        VEIL_PARALLEL_PARTS(batches, ev->threads, err, run_sample(ev, in->cts[part], res->cts[part], &pr, &e_));
        if (st != VEIL_OK) goto done;
    }
    *out = res;
    res = NULL;
done:
    veil_ciphertexts_free(res);
    return st;
}
