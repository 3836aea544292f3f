/*
 * Bootstrapping in CKKS inference (docs/bootstrapping.md, "In the ML layer"): the plan of a model deeper than
 * the leveled parameters hold. Its parts:
 *   parameters  the bootstrapping preset (128-bit, boot-n65536-balanced) or the small insecure test set;
 *   placement   walking the program's stages with the levels a bootstrapped ciphertext has, a bootstrap as
 *               late as possible, after a stage whose outputs can be scaled for free (an affine stage: its
 *               weights and bias; a polynomial: its coefficients), never after a square;
 *   range       the bootstrap reads values in [-1, 1]: the plan's interval arithmetic (bounds.c) bounds the
 *               values at each point, which are divided by the power of two 2^shift at least that bound
 *               (folded into the stage before) and multiplied by it after (an exact integer product); a point
 *               whose values cannot be bounded is refused, naming the layer;
 *   room        every stage's peak against the modulus of its level, as for leveled plans;
 *   keys, cost  the bootstrapper's Galois elements and the encapsulation key (their bytes), the time model;
 *   packings    throughput (one bootstrap per ciphertext, sparse slots of the batch) or latency (one sparse
 *               bootstrap of the sample's S slots per point, in the periodic layout: ml_plan.h); the plan
 *               estimates the other packing too (packing_choice).
 * The evaluator (ckks_infer.c) runs the same schedule from the evaluation keys' metadata extension, which
 * carries the inputs' range it was planned for, after checking it against the model (veil_ml_boot_check).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ml/ml_plan.h"
#include "veil/circuits.h"
#include "serial/serial_internal.h"

#define BOOT_SCALE_BITS 40     /* the presets' working scale: working primes of 40 bits, q_0 of 50 */
#define BOOT_TEST_N 1024       /* the insecure test set */
#define BOOT_TEST_WORK_LEVELS 4
/*
 * Values up to 2^10 at a bootstrap: its error is absolute on [-1, 1], multiplied by 2^shift after, and kept
 * within 2^-5 there (boot_max_shift: fewer for more slots).
 */
#define BOOT_MAX_SHIFT 10
#define ROOM_MARGIN_BITS 2     /* as ckks_plan.c */

static size_t next_pow2(size_t x)
{
    size_t p = 1;
    while (p < x) p *= 2;
    return p;
}

/*
 * The parameters and the bootstrap's configuration: the balanced preset at 128-bit, or at VEIL_SECURITY_NONE
 * the test set (N = 2^10: q_0 of 50 bits, 4 working levels of 40, SlotToCoeff 3 x 45, EvalMod 9 x 50,
 * CoeffToSlot 3 x 50, P 4 x 50; the same uniform ternary secret and weight-32 encapsulation as the preset).
 */
static veil_status boot_params(veil_params **out, veil_ckks_bootstrap_config *cfg, veil_security security,
                               veil_error *err)
{
    if (security == VEIL_SECURITY_128) return veil_ckks_bootstrap_preset(out, cfg, "boot-n65536-balanced", err);
    if (security != VEIL_SECURITY_NONE)
        return veil_fail(err, VEIL_ERR_UNSUPPORTED, "plan: bootstrapping parameters exist at 128-bit security only "
                         "(boot-n65536-balanced); the model needs more levels than a leveled set holds at this level");
    unsigned q_bits[1 + BOOT_TEST_WORK_LEVELS + 15], p_bits[4] = {50, 50, 50, 50};
    size_t c = 0;
    q_bits[c++] = 50;
    for (int i = 0; i < BOOT_TEST_WORK_LEVELS; i++) q_bits[c++] = BOOT_SCALE_BITS;
    for (int i = 0; i < 3; i++) q_bits[c++] = 45;
    for (int i = 0; i < 12; i++) q_bits[c++] = 50;
    const veil_params_spec spec = {.n = BOOT_TEST_N, .q_count = c, .q_bits = q_bits, .p_count = 4, .p_bits = p_bits,
                                   .dnum = 5, .secret = VEIL_SECRET_TERNARY, .security = VEIL_SECURITY_NONE};
    *cfg = (veil_ckks_bootstrap_config){.cts_levels = 3, .stc_levels = 3, .evalmod_scale = 0x1p50,
                                        .encapsulation_weight = 32};
    return veil_params_new(out, &spec, err);
}

static size_t stage_depth(const veil_stage *s)
{
    veil_program one = {.stages = (veil_stage *)s, .n_stages = 1};
    return veil_program_depth(&one);
}

/* Stages whose outputs can be divided by a constant for free: their weights or coefficients. */
static int foldable(const veil_stage *s)
{
    return s->kind == VEIL_STAGE_AFFINE || s->kind == VEIL_STAGE_CHEBYSHEV || s->kind == VEIL_STAGE_POWER;
}

static const char *what_of(const veil_stage *s) { return s->what ? s->what : "?"; }

static char *copy_text(const char *t)
{
    const size_t n = strlen(t) + 1;
    char *c = malloc(n);
    if (c) memcpy(c, t, n);
    return c;
}

static double log2_q(const veil_params *params, size_t level)
{
    double bits = 0;
    for (size_t i = 0; i <= level; i++) bits += log2((double)veil_params_q(params, i));
    return bits;
}

/* Whether a value of magnitude v fits the modulus at this level with the plan's scale (and the margin). */
static int fits(const veil_plan *plan, double v, size_t level)
{
    return log2(fmax(v, 1e-18)) + plan->scale_bits + 1 + ROOM_MARGIN_BITS <= log2_q(plan->params, level);
}

/*
 * A bootstrap's worst error on [-1, 1], in bits, by its slots, measured with the balanced preset at N = 2^16
 * (docs/bootstrapping.md, "What limits precision"): 14.7 with up to 32 sparse slots, half a bit less for each
 * doubling (SlotToCoeff sums the slots' errors), 9.7 with all 32,768.
 */
double veil_ml_boot_error_bits(size_t slots)
{
    const double s = slots > 32 ? (double)slots : 32.0;
    return 14.7 - 0.5 * log2(s / 32.0);
}

/*
 * The largest shift at a point whose bootstrap has `slots` slots: its error times 2^shift within 2^-5 (at
 * most BOOT_MAX_SHIFT): 9 with 32 slots, 4 with all 32,768. Past it the error is too coarse for what follows
 * (a shift of 2^5 at full slots before five squares decrypted 4% off the plaintext program, exit 0).
 */
static int32_t boot_max_shift(size_t slots)
{
    const int32_t k = (int32_t)floor(veil_ml_boot_error_bits(slots) - 5);
    return k < BOOT_MAX_SHIFT ? (k > 0 ? k : 0) : BOOT_MAX_SHIFT;
}

/* The shift that brings values bounded by `bound` into [-1, 1]: the least k >= 0 with bound <= 2^k. */
static int32_t shift_of(double bound) { return bound <= 1 ? 0 : (int32_t)ceil(log2(bound)); }

/* The bound of every stage's outputs over the inputs' box (interval arithmetic, bounds.c). */
static veil_status stage_bounds(double *bound, const veil_program *p, const double *box_lo, const double *box_hi,
                                int zero_slots, veil_error *err)
{
    veil_status st = VEIL_OK;
    double *lo = NULL, *hi = NULL;
    for (size_t j = 0; j < p->n_stages; j++) {
        const veil_stage *s = &p->stages[j];
        bound[j] = INFINITY;
        if (!foldable(s)) continue;
        free(lo);
        free(hi);
        lo = malloc(s->out_width * sizeof *lo);
        hi = malloc(s->out_width * sizeof *hi);
        if (!lo || !hi) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "plan");
        VEIL_CHECK(veil_program_bounds(p, j + 1, box_lo, box_hi, zero_slots, lo, hi, NULL, err));
        double peak = 0;
        for (size_t i = 0; i < s->out_width; i++) peak = fmax(peak, fmax(fabs(lo[i]), fabs(hi[i])));
        bound[j] = isnan(peak) ? INFINITY : peak;
    }
done:
    free(lo);
    free(hi);
    return st;
}

/*
 * Placement (levels L after a bootstrap, and for the inputs): the bootstraps go after foldable stages (an
 * affine stage: its weights and bias; a polynomial: its coefficients) whose outputs are bounded, so that each
 * run of stages between two of them fits L levels. Among all such placements, by dynamic programming over the
 * stages: the fewest ciphertexts bootstrapped (throughput: a point after a narrower layer costs less, one
 * bootstrap per output; latency: one per point, the sample's one ciphertext), then the least total shift (the bootstrap's error is absolute at [-1, 1]: multiplied by 2^shift
 * after; after a bounded activation such as tanh the shift is 0). A run also ends where a stage's peak (peak,
 * from the interval arithmetic) would not fit the modulus left at its level: the outputs, for one, need a
 * level above 0 when they can exceed 2^7 at the presets' 2^40 scale.
 */
static veil_status place(veil_ml_boot *b, const veil_plan *plan, const veil_program *p, size_t L, const double *bound,
                         const double *peak, veil_error *err)
{
    const size_t n = p->n_stages;
    veil_status st = VEIL_OK;
    /* state j + 1: a bootstrap after stage j (state 0: the inputs); cost INFINITY when unreachable */
    double *cost = malloc((n + 1) * sizeof *cost);
    long *from = malloc((n + 1) * sizeof *from);
    if (!cost || !from) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "plan");
    for (size_t i = 0; i < n; i++) {
        const size_t d = stage_depth(&p->stages[i]);
        if (d > L)
            VEIL_FAIL(err, VEIL_ERR_UNSUPPORTED, "plan: layer %zu (%s) needs %zu levels alone, more than the %zu a "
                      "bootstrapped ciphertext has: lower its degree (--degree)", i + 1, what_of(&p->stages[i]), d, L);
    }
    for (size_t i = 0; i <= n; i++) {
        cost[i] = INFINITY;
        from[i] = -1;
    }
    cost[0] = 0;
    double end_cost = INFINITY;
    long end_from = -1, reach = -1, bound_blocked = -1;
    for (size_t state = 0; state <= n; state++) {
        if (!isfinite(cost[state])) continue;
        size_t sum = 0;
        for (size_t t = state; t < n; t++) { /* the stages after the bootstrap: state, state + 1, ... */
            sum += stage_depth(&p->stages[t]);
            if (sum > L || !fits(plan, peak[t], L - sum)) break; /* out of levels, or of room at this level */
            if ((long)t > reach) reach = (long)t;
            if (t == n - 1) {
                if (cost[state] < end_cost) {
                    end_cost = cost[state];
                    end_from = (long)state;
                }
                break;
            }
            if (!foldable(&p->stages[t])) continue;
            if (!(bound[t] <= ldexp(1.0, boot_max_shift(plan->slots)))) {
                bound_blocked = (long)t;
                continue;
            }
            /* the latency packing bootstraps one ciphertext per point, whatever the layer's width */
            const double width = plan->packing == VEIL_PACKING_LATENCY ? 1.0 : (double)p->stages[t].out_width;
            const double c = cost[state] + 1e4 * width + shift_of(bound[t]);
            if (c < cost[t + 1]) {
                cost[t + 1] = c;
                from[t + 1] = (long)state;
            }
        }
    }
    if (n && end_from < 0) {
        if (bound_blocked >= 0)
            VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "plan: after layer %ld (%s) values reach |%.4g|: the bootstrap's error "
                      "(2^-%.1f with %zu slots) times 2^shift would pass 2^-5; %snarrow the inputs' range "
                      "(standardize them, or --input-range LO:HI)", bound_blocked + 1, what_of(&p->stages[bound_blocked]),
                      bound[bound_blocked], veil_ml_boot_error_bits(plan->slots), plan->slots,
                      plan->slots > 32 ? "bootstrap fewer slots (a smaller --batch, or --latency) or " : "");
        VEIL_FAIL(err, VEIL_ERR_UNSUPPORTED, "plan: no place for a bootstrap before layer %ld (%s): the stages "
                  "since the last possible one are squares, which cannot be scaled into the bootstrap's range for "
                  "free, or values that need more room than the levels left hold (|value| up to %.4g there)",
                  reach + 2, what_of(&p->stages[reach + 1]), peak[reach + 1]);
    }
    size_t count = 0;
    for (long s = end_from; s > 0; s = from[s]) count++;
    if (count > VEIL_ML_BOOT_MAX)
        VEIL_FAIL(err, VEIL_ERR_UNSUPPORTED, "plan: the model needs %zu bootstrap points, more than %d", count,
                  VEIL_ML_BOOT_MAX);
    b->count = count;
    for (long s = end_from, k = (long)count - 1; s > 0; s = from[s], k--) {
        b->after[k] = (uint32_t)(s - 1);
        b->bound[k] = bound[s - 1];
        b->shift[k] = shift_of(bound[s - 1]);
    }
done:
    free(cost);
    free(from);
    return st;
}

/* Every stage's peak against the modulus at the level of its outputs (levels reset at each bootstrap). */
static veil_status boot_room(const veil_params *params, unsigned scale_bits, const veil_ml_boot *b,
                             const veil_program *p, const double *peak, double in_peak, veil_error *err)
{
    size_t level = b->levels, next = 0;
    double need = log2(fmax(in_peak, 1e-18)) + scale_bits + 1 + ROOM_MARGIN_BITS;
    if (need > log2_q(params, level))
        return veil_fail(err, VEIL_ERR_ARGUMENT, "the inputs reach |x| %.4g, beyond what CKKS holds at the "
                         "bootstrapping parameters' level %zu: narrow the inputs' range", in_peak, level);
    for (size_t i = 0; i < p->n_stages; i++) {
        const size_t d = stage_depth(&p->stages[i]);
        if (d > level)
            return veil_fail(err, VEIL_ERR_MISMATCH, "the bootstrapping schedule leaves layer %zu (%s) %zu levels, it "
                             "needs %zu", i + 1, what_of(&p->stages[i]), level, d);
        level -= d;
        need = log2(fmax(peak[i], 1e-18)) + scale_bits + 1 + ROOM_MARGIN_BITS;
        if (!(need <= log2_q(params, level)))
            return veil_fail(err, VEIL_ERR_ARGUMENT, "layer %zu (%s) can reach |value| %.4g, beyond what CKKS "
                             "holds at its level %zu with a %u-bit scale: the results would wrap around; narrow the "
                             "inputs' range (standardize them, or --input-range LO:HI)", i + 1,
                             what_of(&p->stages[i]), peak[i], level, scale_bits);
        if (next < b->count && b->after[next] == i) {
            level = b->levels;
            next++;
        }
    }
    return VEIL_OK;
}

/* The inputs' box: declared (one interval per input or for all), else the model's calibration; else refused. */
static veil_status boot_box(veil_plan *plan, const veil_model *m, const veil_plan_request *req, veil_error *err)
{
    const size_t w = m->program.in_width;
    plan->ckks.box_lo = malloc(w * sizeof(double));
    plan->ckks.box_hi = malloc(w * sizeof(double));
    if (!plan->ckks.box_lo || !plan->ckks.box_hi) return veil_fail(err, VEIL_ERR_NO_MEMORY, "plan");
    for (size_t i = 0; i < w; i++) {
        if (req->box_lo && req->box_hi) {
            plan->ckks.box_lo[i] = req->box_lo[i];
            plan->ckks.box_hi[i] = req->box_hi[i];
        } else if (req->have_range) {
            plan->ckks.box_lo[i] = req->range_lo;
            plan->ckks.box_hi[i] = req->range_hi;
        } else if (m->box_lo) {
            plan->ckks.box_lo[i] = m->box_lo[i];
            plan->ckks.box_hi[i] = m->box_hi[i];
        } else {
            return veil_fail(err, VEIL_ERR_ARGUMENT, "plan: a plan with bootstraps needs the inputs' range, to keep "
                             "the values where a bootstrap reads them: declare it (--input-range LO:HI or "
                             "--calibrate X.csv)");
        }
    }
    return VEIL_OK;
}

double veil_ml_boot_seconds(size_t n, size_t slots)
{
    /* measured at N = 2^16 (docs/performance.md, "CKKS bootstrapping", cpu_s_min): 14.4 s with sparse slots,
     * 26.3 s with full slots (both halves through EvalMod); scaled as N log N */
    const double at_16 = 2 * slots < n / 2 + 1 ? 14.4 : 26.3;
    return at_16 * (double)n / 65536.0 * log2((double)n) / 16.0;
}

veil_status veil_ml_boot_elements(const veil_context *ctx, const veil_ml_boot *b, uint64_t **out, size_t *count,
                                  veil_error *err)
{
    veil_ckks_encoder *enc = NULL;
    veil_ckks_bootstrapper *bt = NULL;
    veil_ckks_bootstrap_info info;
    veil_status st = VEIL_OK;
    *out = NULL;
    *count = 0;
    VEIL_CHECK(veil_ckks_encoder_new(&enc, ctx, err));
    VEIL_CHECK(veil_ckks_bootstrapper_new(&bt, enc, &b->config, err));
    veil_ckks_bootstrapper_info(bt, &info);
    *out = calloc(info.galois_count + 1, sizeof **out);
    if (!*out) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "bootstrapping keys");
    VEIL_CHECK(veil_ckks_bootstrap_galois_elements(bt, *out, count, info.galois_count, err));
done:
    if (st != VEIL_OK) {
        free(*out);
        *out = NULL;
    }
    veil_ckks_bootstrapper_free(bt);
    veil_ckks_encoder_free(enc);
    return st;
}

/* The bootstrapper's levels left and Galois elements for the plan's parameters and configuration. */
static veil_status boot_keys_of(veil_plan *plan, veil_error *err)
{
    veil_context *ctx = NULL;
    veil_ckks_encoder *enc = NULL;
    veil_ckks_bootstrapper *bt = NULL;
    veil_ckks_bootstrap_info info;
    veil_status st = VEIL_OK;
    VEIL_CHECK(veil_context_new(&ctx, plan->params, NULL, err));
    VEIL_CHECK(veil_ckks_encoder_new(&enc, ctx, err));
    VEIL_CHECK(veil_ckks_bootstrapper_new(&bt, enc, &plan->boot.config, err));
    veil_ckks_bootstrapper_info(bt, &info);
    plan->boot.levels = info.levels_left;
    plan->boot_galois = calloc(info.galois_count + 1, sizeof *plan->boot_galois);
    if (!plan->boot_galois) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "plan");
    VEIL_CHECK(veil_ckks_bootstrap_galois_elements(bt, plan->boot_galois, &plan->n_boot_galois, info.galois_count,
                                                   err));
done:
    veil_ckks_bootstrapper_free(bt);
    veil_ckks_encoder_free(enc);
    veil_context_free(ctx);
    return st;
}

/* Sizes and estimates of a plan with bootstraps (the bundle's metadata extension and keys included). */
static void boot_estimate(veil_plan *plan, const veil_program *p)
{
    veil_plan_info *in = &plan->info;
    const veil_params *prm = plan->params;
    const int latency = plan->packing == VEIL_PACKING_LATENCY;
    const size_t n = veil_params_degree(prm);
    const double key = (double)veil_switch_key_stored_bytes(prm), encaps = (double)veil_ckks_encapsulation_key_stored_bytes(prm);
    const size_t galois = plan->n_steps + plan->n_boot_galois;
    const size_t keys = 1 + galois; /* relinearization, the latency packing's rotations and bootstrapping */
    const size_t items = veil_params_stored_bytes(prm) + veil_public_key_stored_bytes(prm) + keys * (size_t)key +
                         (size_t)encaps;
    in->eval_key_bytes = (double)veil_set_stored_bytes(VEIL_META_BYTES + veil_ml_boot_ext_bytes(&plan->boot, p->in_width),
                                                       3 + galois + 1, items);
    in->ciphertext_bytes = (double)veil_ckks_ciphertext_stored_bytes(prm, veil_params_q_count(prm) - 1, 2, true);
    in->bootstrap_points = plan->boot.count;
    in->bootstrap_levels = plan->boot.levels;
    in->bootstrap_error_bits = veil_ml_boot_error_bits(plan->slots);
    in->bootstraps = 0;
    for (size_t k = 0; k < plan->boot.count; k++) in->bootstraps += latency ? 1 : p->stages[plan->boot.after[k]].out_width;
    in->bootstrap_seconds = (double)in->bootstraps * veil_ml_boot_seconds(n, plan->slots);
    in->bootstrap_key_bytes = (double)plan->n_boot_galois * key + encaps;
    /* the leveled part of the time model, on the parameters' working levels, plus the bootstraps */
    in->estimated_seconds = veil_plan_ckks_seconds(plan, p) + in->bootstrap_seconds;
    const double ct = veil_ciphertext_memory(prm, veil_params_q_count(prm) - 1);
    const size_t wmax = veil_program_max_width(p);
    /* a batch's input file (as veil_ckks_plan_input_bytes: not called, ckks_plan.c calls this file) */
    const size_t fresh = veil_ckks_ciphertext_stored_bytes(prm, veil_params_q_count(prm) - 1, 2, true);
    const size_t in_cts = latency ? 1 : p->in_width;
    const double inputs = (double)veil_set_stored_bytes(VEIL_META_BYTES, 1 + in_cts,
                                                        veil_params_stored_bytes(prm) + in_cts * fresh);
    /* the bootstrapper's DFT matrices and temporaries: about 12 ciphertexts at the top level (measured: 4.2 GB at
     * N = 2^16 with 32 slots, keys included) */
    const double work = latency ? ct * (4 + 12) + veil_plan_diagonal_bytes(plan, p) + inputs
                                : ct * (double)(in->in_ciphertexts + 2 * wmax + 12) + inputs;
    veil_plan_memory(plan, 1, (double)keys + encaps / key, 0, work);
}

/* The bootstrapping keys without the elements the plan's rotations (the latency packing's) give already. */
static veil_status drop_step_elements(veil_plan *plan, veil_error *err)
{
    veil_context *ctx = NULL;
    veil_status st = VEIL_OK;
    if (!plan->n_steps) return VEIL_OK;
    VEIL_CHECK(veil_context_new(&ctx, plan->params, NULL, err));
    size_t kept = 0;
    for (size_t i = 0; i < plan->n_boot_galois; i++) {
        int among = 0;
        for (size_t j = 0; j < plan->n_steps && !among; j++)
            among = veil_galois_element_rotation(ctx, plan->steps[j]) == plan->boot_galois[i];
        if (!among) plan->boot_galois[kept++] = plan->boot_galois[i];
    }
    plan->n_boot_galois = kept;
done:
    veil_context_free(ctx);
    return st;
}

veil_status veil_ml_boot_plan_keys(veil_plan *plan, veil_error *err)
{
    const size_t levels = plan->boot.levels;
    veil_status st = boot_keys_of(plan, err);
    if (st != VEIL_OK) return st;
    if (plan->boot.levels != levels)
        return veil_fail(err, VEIL_ERR_FORMAT, "plan: the bootstrapping schedule's level (%zu) is not its "
                         "bootstrapper's (%zu)", levels, plan->boot.levels);
    return drop_step_elements(plan, err);
}

/*
 * The plan in one packing. levels: 0, or (the other packing's estimate, packing_choice) the level a bootstrap
 * returns to, known already: the bootstrapper is not built (its DFT matrices), its keys left out of the sizes.
 */
static veil_status plan_boot_one(veil_plan *plan, const veil_model *m, const veil_plan_request *req, size_t levels,
                                 veil_error *err)
{
    const veil_program *p = &m->program;
    const int latency = req->packing == VEIL_PACKING_LATENCY;
    veil_status st = VEIL_OK;
    double *peak = NULL, *bound = NULL, *olo = NULL, *ohi = NULL;
    if (req->flood)
        return veil_fail(err, VEIL_ERR_UNSUPPORTED, "plan: flooded decryption (--flood) with bootstrapping is not "
                         "supported yet");
    if (!latency && req->batch > ((size_t)1 << 15))
        return veil_fail(err, VEIL_ERR_ARGUMENT, "plan: batch %zu is above the bootstrapping parameters' slots",
                         req->batch);
    veil_params_free(plan->params);
    plan->params = NULL;
    VEIL_CHECK(boot_params(&plan->params, &plan->boot.config, req->security, err));
    const size_t n = veil_params_degree(plan->params);
    if (!latency && req->batch > n / 2)
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "plan: batch %zu is above the %zu slots of the bootstrapping parameters",
                  req->batch, n / 2);
    plan->scale_bits = BOOT_SCALE_BITS;
    if (latency) {
        /* one sample over S slots (the widest layer, a power of two), repeated with period S: a sparse bootstrap
         * of S slots reads exactly the sample's values (the periodic layout, veil_latency_span) */
        plan->slots = next_pow2(veil_program_max_width(p));
        plan->batch = 1;
        if (plan->slots > n / 2)
            VEIL_FAIL(err, VEIL_ERR_UNSUPPORTED, "plan: a layer of %zu values is wider than the %zu slots of the "
                      "bootstrapping parameters", veil_program_max_width(p), n / 2);
    } else {
        /* the batch a power of two: sparse bootstrapping reads the slots as copies of a vector of that length */
        plan->slots = req->batch ? next_pow2(req->batch) : n / 2;
        plan->batch = plan->slots;
    }
    plan->boot.config.slots = plan->slots;
    if (levels) plan->boot.levels = levels; /* the same parameters and DFT levels, whatever the slots */
    else VEIL_CHECK(boot_keys_of(plan, err));
    VEIL_CHECK(boot_box(plan, m, req, err));
    const size_t ns = p->n_stages ? p->n_stages : 1;
    peak = calloc(ns, sizeof *peak);
    bound = calloc(ns, sizeof *bound);
    olo = malloc(p->out_width * sizeof *olo);
    ohi = malloc(p->out_width * sizeof *ohi);
    if (!peak || !bound || !olo || !ohi) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "plan");
    /* every value's bound (unscaled: the scaled values before a bootstrap are smaller) and the outputs'; in the
     * latency packing, the padding slots' values too (they are bootstrapped with the sample's) */
    VEIL_CHECK(veil_program_bounds(p, p->n_stages, plan->ckks.box_lo, plan->ckks.box_hi, latency, olo, ohi, peak, err));
    VEIL_CHECK(stage_bounds(bound, p, plan->ckks.box_lo, plan->ckks.box_hi, latency, err));
    VEIL_CHECK(place(&plan->boot, plan, p, plan->boot.levels, bound, peak, err));
    if (!plan->boot.count)
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "plan: the model's %zu levels fit the %zu of the bootstrapping parameters "
                  "without a bootstrap: plan it without bootstrapping", veil_program_depth(p), plan->boot.levels);
    for (size_t k = 0; k < plan->boot.count; k++) {
        plan->boot_what[k] = copy_text(what_of(&p->stages[plan->boot.after[k]]));
        if (!plan->boot_what[k]) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "plan");
    }
    /* the check the evaluator makes of the bundle's schedule: the shifts, the levels and the room at each */
    if ((st = veil_ml_boot_check(p, &plan->boot, plan->ckks.box_lo, plan->ckks.box_hi, plan->params, plan->scale_bits,
                                 latency, err)) != VEIL_OK) {
        if (st == VEIL_ERR_MISMATCH) st = VEIL_ERR_ARGUMENT;
        goto done;
    }
    /* the latency packing's rotations (in the periodic layout, veil_latency_span), and the bootstrapping keys
     * without the elements those give already */
    if (latency) VEIL_CHECK(veil_ckks_plan_latency_steps(plan, p, err));
    VEIL_CHECK(drop_step_elements(plan, err));
    double out_peak = 0;
    for (size_t i = 0; i < p->out_width; i++) out_peak = fmax(out_peak, fmax(fabs(olo[i]), fabs(ohi[i])));
    plan->bound = out_peak;
    veil_plan_info_from_params(plan);
    veil_ckks_plan_info_shape(plan, p);
    veil_plan_info *in = &plan->info;
    in->rotations = plan->n_steps + plan->n_boot_galois;
    boot_estimate(plan, p);
done:
    free(peak);
    free(bound);
    free(olo);
    free(ohi);
    return st;
}

/* The packings' costs (veil_plan_info): this plan's, and the other packing's from planning the model in it. */
static void packing_choice(veil_plan *plan, const veil_model *m, const veil_plan_request *req)
{
    veil_plan_info *in = &plan->info;
    const int latency = plan->packing == VEIL_PACKING_LATENCY;
    veil_plan_request other = *req;
    other.packing = latency ? VEIL_PACKING_THROUGHPUT : VEIL_PACKING_LATENCY;
    other.batch = latency ? 0 : req->batch;
    veil_plan *alt = calloc(1, sizeof *alt);
    veil_error ignored = {VEIL_OK, ""};
    int ok = 0;
    if (alt) {
        alt->packing = other.packing;
        alt->in_width = plan->in_width;
        alt->out_width = plan->out_width;
        alt->final_op = plan->final_op;
        alt->scheme = plan->scheme;
        ok = plan_boot_one(alt, m, &other, plan->boot.levels, &ignored) == VEIL_OK;
    }
    const veil_plan *lat = latency ? plan : ok ? alt : NULL, *thr = latency ? (ok ? alt : NULL) : plan;
    in->latency_sample_seconds = lat ? lat->info.estimated_seconds : 0;
    in->throughput_batch_seconds = thr ? thr->info.estimated_seconds : 0;
    in->throughput_batch = thr ? thr->batch : 0;
    veil_plan_free(alt);
}

veil_status veil_ckks_plan_boot(veil_plan *plan, const veil_model *m, const veil_plan_request *req, veil_error *err)
{
    const veil_status st = plan_boot_one(plan, m, req, 0, err);
    if (st == VEIL_OK) packing_choice(plan, m, req);
    return st;
}

veil_status veil_plan_bootstrap_point(const veil_plan *plan, size_t k, size_t *stage, const char **what, int *shift,
                                      double *bound, veil_error *err)
{
    VEIL_REQUIRE(plan, err);
    if (k >= plan->boot.count)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "plan: bootstrap point %zu of %zu", k, plan->boot.count);
    if (stage) *stage = plan->boot.after[k];
    if (what) *what = plan->boot_what[k] ? plan->boot_what[k] : "?";
    if (shift) *shift = plan->boot.shift[k];
    if (bound) *bound = plan->boot.bound[k];
    return VEIL_OK;
}

/* ---- the bundle's metadata extension: "VEIL-BT2", count, levels, the configuration, the points, the range -- */

/*
 * The configuration's precision options in the word after the encapsulation weight (a reserved 0 before they
 * were carried, which reads as none: no message shift, one iteration): message_shift in bits 0-7, iterations
 * in 8-15, iteration_shift in 16-23, the rest 0. Without them the evaluator would bootstrap otherwise than
 * planned (another level after a bootstrap, or a silent loss of precision).
 */
static uint64_t precision_word(const veil_ckks_bootstrap_config *c)
{
    return (uint64_t)c->message_shift | (uint64_t)c->iterations << 8 | (uint64_t)c->iteration_shift << 16;
}

static const uint8_t boot_tag[8] = {'V', 'E', 'I', 'L', '-', 'B', 'T', '2'};
static const uint8_t boot_tag_v1[8] = {'V', 'E', 'I', 'L', '-', 'B', 'T', '1'};
#define BOOT_EXT_HEAD 64

size_t veil_ml_boot_ext_bytes(const veil_ml_boot *b, size_t w)
{
    return b->count ? BOOT_EXT_HEAD + 16 * b->count + veil_ml_range_bytes(w) : 0;
}

void veil_ml_boot_ext_encode(uint8_t *out, const veil_ml_boot *b, size_t w, double bound, const double *lo,
                             const double *hi)
{
    uint64_t scale;
    memcpy(&scale, &b->config.evalmod_scale, sizeof scale);
    memcpy(out, boot_tag, sizeof boot_tag);
    veil_ml_put64(out + 8, b->count);
    veil_ml_put64(out + 16, b->levels);
    veil_ml_put64(out + 24, b->config.slots);
    veil_ml_put64(out + 32, (uint64_t)b->config.cts_levels | (uint64_t)b->config.stc_levels << 32);
    veil_ml_put64(out + 40, scale);
    veil_ml_put64(out + 48, b->config.encapsulation_weight);
    veil_ml_put64(out + 56, precision_word(&b->config));
    for (size_t k = 0; k < b->count; k++) {
        veil_ml_put64(out + BOOT_EXT_HEAD + 16 * k, b->after[k]);
        veil_ml_put64(out + BOOT_EXT_HEAD + 16 * k + 8, (uint64_t)(int64_t)b->shift[k]);
    }
    veil_ml_range_encode(out + BOOT_EXT_HEAD + 16 * b->count, bound, lo, hi, w);
}

veil_status veil_ml_boot_ext_decode(veil_ml_boot *b, const uint8_t *in, size_t len, size_t n_stages_max, size_t w,
                                    double *bound, double **lo, double **hi, veil_error *err)
{
    memset(b, 0, sizeof *b);
    *lo = *hi = NULL;
    if (len >= sizeof boot_tag_v1 && memcmp(in, boot_tag_v1, sizeof boot_tag_v1) == 0)
        return veil_fail(err, VEIL_ERR_FORMAT, "eval keys: a bootstrapping schedule of an earlier Veil, without the "
                         "inputs' range the evaluator checks it against the model with: make the keys again");
    if (len < BOOT_EXT_HEAD || memcmp(in, boot_tag, sizeof boot_tag) != 0)
        return veil_fail(err, VEIL_ERR_FORMAT, "eval keys: unknown metadata extension");
    const uint64_t count = veil_ml_get64(in + 8), levels = veil_ml_get64(in + 16), slots = veil_ml_get64(in + 24),
                   dft = veil_ml_get64(in + 32), scale_bits = veil_ml_get64(in + 40),
                   weight = veil_ml_get64(in + 48), precision = veil_ml_get64(in + 56);
    const uint64_t message_shift = precision & 0xff, iterations = precision >> 8 & 0xff,
                   iteration_shift = precision >> 16 & 0xff;
    double scale;
    memcpy(&scale, &scale_bits, sizeof scale);
    if (count == 0 || count > VEIL_ML_BOOT_MAX || len != BOOT_EXT_HEAD + 16 * count + veil_ml_range_bytes(w) ||
        levels == 0 || levels > 64 || slots == 0 || slots > ((uint64_t)1 << 16) || (slots & (slots - 1)) != 0 ||
        (dft & 0xffffffff) == 0 || (dft & 0xffffffff) > 8 || (dft >> 32) == 0 || (dft >> 32) > 8 || !isfinite(scale) ||
        scale < 0 || weight > ((uint64_t)1 << 16) || (precision >> 24) != 0 || message_shift > 8 || iterations > 2 ||
        iteration_shift > 30)
        return veil_fail(err, VEIL_ERR_FORMAT, "eval keys: the bootstrapping schedule is invalid");
    b->count = (size_t)count;
    b->levels = (size_t)levels;
    b->config = (veil_ckks_bootstrap_config){.slots = (size_t)slots, .cts_levels = (size_t)(dft & 0xffffffff),
                                             .stc_levels = (size_t)(dft >> 32), .evalmod_scale = scale,
                                             .encapsulation_weight = (size_t)weight,
                                             .message_shift = (size_t)message_shift, .iterations = (size_t)iterations,
                                             .iteration_shift = (size_t)iteration_shift};
    for (size_t k = 0; k < b->count; k++) {
        const uint64_t after = veil_ml_get64(in + BOOT_EXT_HEAD + 16 * k);
        const int64_t shift = (int64_t)veil_ml_get64(in + BOOT_EXT_HEAD + 16 * k + 8);
        if (after >= n_stages_max || shift < 0 || shift > BOOT_MAX_SHIFT || (k && after <= b->after[k - 1]))
            return veil_fail(err, VEIL_ERR_FORMAT, "eval keys: bootstrap point %zu is invalid", k + 1);
        b->after[k] = (uint32_t)after;
        b->shift[k] = (int32_t)shift;
    }
    const size_t at = BOOT_EXT_HEAD + 16 * b->count;
    return veil_ml_range_decode(in + at, len - at, w, bound, lo, hi, err);
}

veil_status veil_ml_boot_check(const veil_program *p, veil_ml_boot *b, const double *lo, const double *hi,
                               const veil_params *params, unsigned scale_bits, int zero_slots, veil_error *err)
{
    const size_t ns = p->n_stages ? p->n_stages : 1;
    veil_status st = VEIL_OK;
    double *peak = calloc(ns, sizeof *peak), *bound = calloc(ns, sizeof *bound);
    double *olo = malloc(p->out_width * sizeof *olo), *ohi = malloc(p->out_width * sizeof *ohi);
    if (!peak || !bound || !olo || !ohi) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "bootstrapping schedule");
    VEIL_CHECK(veil_program_bounds(p, p->n_stages, lo, hi, zero_slots, olo, ohi, peak, err));
    VEIL_CHECK(stage_bounds(bound, p, lo, hi, zero_slots, err));
    for (size_t k = 0; k < b->count; k++) {
        const size_t at = b->after[k];
        if (at >= p->n_stages || !foldable(&p->stages[at]))
            VEIL_FAIL(err, VEIL_ERR_MISMATCH, "the bootstrapping schedule's point %zu (after layer %zu) does not fit "
                      "this model: the keys were made for another plan", k + 1, at + 1);
        /* the shift brings the values into [-1, 1], where the bootstrap reads them; beyond, its result is wrong */
        if (b->shift[k] > boot_max_shift(b->config.slots))
            VEIL_FAIL(err, VEIL_ERR_MISMATCH, "the bootstrapping schedule's point %zu, after layer %zu (%s), multiplies "
                      "the bootstrap's error (up to 2^-%.1f with %zu slots) by 2^%d, past 2^-5: the keys were made by an "
                      "older plan; make them again (a smaller --batch, or --latency)", k + 1, at + 1,
                      what_of(&p->stages[at]), veil_ml_boot_error_bits(b->config.slots), b->config.slots, b->shift[k]);
        if (!(bound[at] <= ldexp(1.0, b->shift[k])))
            VEIL_FAIL(err, VEIL_ERR_MISMATCH, "the bootstrapping schedule's point %zu, after layer %zu (%s), divides "
                      "the values by 2^%d, but over the inputs' range they reach |%.4g|: the bootstrap would read them "
                      "outside [-1, 1]; the keys were made for another plan", k + 1, at + 1, what_of(&p->stages[at]),
                      b->shift[k], bound[at]);
        b->bound[k] = bound[at];
    }
    double in_peak = 0;
    for (size_t i = 0; i < p->in_width; i++) in_peak = fmax(in_peak, fmax(fabs(lo[i]), fabs(hi[i])));
    VEIL_CHECK(boot_room(params, scale_bits, b, p, peak, in_peak, err));
done:
    free(peak);
    free(bound);
    free(olo);
    free(ohi);
    return st;
}

/* ---- the evaluator's program ---------------------------------------------------------------------------- */

static veil_status copy_doubles(double **out, const double *in, size_t n, veil_error *err)
{
    *out = NULL;
    if (!in) return VEIL_OK;
    *out = malloc((n ? n : 1) * sizeof **out);
    if (!*out) return veil_fail(err, VEIL_ERR_NO_MEMORY, "evaluator");
    memcpy(*out, in, n * sizeof **out);
    return VEIL_OK;
}

veil_status veil_ml_boot_program(veil_program *out, const veil_program *p, const veil_ml_boot *b, veil_error *err)
{
    veil_status st = VEIL_OK;
    *out = *p;
    out->stages = calloc(p->n_stages ? p->n_stages : 1, sizeof *out->stages);
    out->n_stages = 0;
    if (!out->stages) return veil_fail(err, VEIL_ERR_NO_MEMORY, "evaluator");
    for (size_t i = 0; i < p->n_stages; i++) {
        const veil_stage *s = &p->stages[i];
        veil_stage *t = &out->stages[i];
        *t = *s;
        t->w = t->b = t->coeffs = NULL;
        t->what = NULL;
        out->n_stages = i + 1;
        VEIL_CHECK(copy_doubles(&t->w, s->w, s->out_width * s->in_width, err));
        VEIL_CHECK(copy_doubles(&t->b, s->b, s->out_width, err));
        VEIL_CHECK(copy_doubles(&t->coeffs, s->coeffs, s->degree + 1, err));
    }
    for (size_t k = 0; k < b->count; k++) {
        if (b->after[k] >= p->n_stages || !foldable(&p->stages[b->after[k]]))
            VEIL_FAIL(err, VEIL_ERR_MISMATCH, "the evaluation keys' bootstrap point %zu (after layer %u) does not fit "
                      "this model", k + 1, b->after[k] + 1);
        veil_stage *t = &out->stages[b->after[k]];
        const double f = ldexp(1.0, -b->shift[k]); /* exact: a power of two */
        if (t->kind == VEIL_STAGE_AFFINE) {
            if (!t->w || !t->b)
                VEIL_FAIL(err, VEIL_ERR_UNSUPPORTED, "bootstraps after a layer of encrypted weights are not supported");
            for (size_t i = 0; i < t->out_width * t->in_width; i++) t->w[i] *= f;
            for (size_t i = 0; i < t->out_width; i++) t->b[i] *= f;
        } else {
            for (size_t i = 0; i <= t->degree; i++) t->coeffs[i] *= f;
        }
    }
done:
    if (st != VEIL_OK) veil_program_clear(out);
    return st;
}
