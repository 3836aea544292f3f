/*
 * CKKS bootstrapping: ModRaise, SubSum (sparse slots), CoeffToSlot, EvalMod, SlotToCoeff (veil/circuits.h
 * has the contract; Bossuat, Mouchet, Troncoso-Pastoriza, Hubaux, Eurocrypt 2021, sections 4-6).
 *
 * Scales. After ModRaise the ciphertext decrypts to t = m + q_0 I over the whole chain; read at scale q_0 its
 * slots hold the DFT of t / q_0. CoeffToSlot keeps that scale (each diagonal is encoded at the prime its
 * rescale drops) but for its last level, whose diagonals carry S / q_0 more: EvalMod sees
 * x = t_i / q_0 = I_i + m_i / q_0 at its scale S and returns sin(2 pi x) / (2 pi) ~ m_i / q_0 at S. The first
 * SlotToCoeff level takes the scale back to q_0, where the phase is m itself: the input's message at the
 * input's scale, and the result is relabelled so. EvalMod's rounding errors are absolute, so that a larger S
 * (with primes of its size) means more precision.
 */
#include <complex.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "circuits/circuits_internal.h"

#define BOOT_NODES 2048           /* Chebyshev nodes of the EvalMod interpolant */
#define BOOT_MAX_DEGREE 1024
#define BOOT_TAIL_BITS 45         /* automatic degree: the coefficients left out are below 2^-45 */
#define BOOT_FAILURE_BITS 128     /* automatic K: failure probability at most 2^-128 */
#define BOOT_IMPOSSIBLE (-1e9)

struct veil_ckks_bootstrapper {
    const veil_context *ctx;
    veil_ckks_bootstrap_info info;
    size_t cts_count, stc_count, top, stc_start;
    double eval_scale;    /* EvalMod's scale */
    unsigned raise_shift; /* the ciphertext is multiplied by 2^raise_shift after ModRaise */
    unsigned message_shift;   /* k: the level-0 input is multiplied by 2^k (SlotToCoeff divides by it) */
    size_t iterations;        /* 1, or 2: meta-BTS */
    unsigned iteration_shift; /* e: the second bootstrap reads the first one's error times 2^e */
    size_t double_angle;  /* r double-angle steps after the polynomial */
    size_t eval_end;      /* the level the polynomial is dropped to, before the double-angle steps */
    bool packed;          /* sparse slots: both halves in one ciphertext, one EvalMod */
    size_t encapsulation_weight; /* h' of the ephemeral sparse secret; 0: none */
    veil_boot_dft_level cts[VEIL_BOOT_MAX_DFT_LEVELS], stc[VEIL_BOOT_MAX_DFT_LEVELS];
    veil_ckks_encoder *enc; /* its own: encodes the DFTs' whole diagonals when they are used */
    double *cheb; /* degree + 1 Chebyshev coefficients of sin(2 pi x) / (2 pi) on [-K, K] */
    uint64_t *galois;
};

/* log2 of erfc(z), also where erfc underflows (its asymptotic form). */
static double log2_erfc(double z)
{
    const double pi = 3.14159265358979323846264338327950288;
    if (z < 5) return log2(erfc(z));
    return (-z * z - log(z * sqrt(pi))) / log(2.0);
}

/*
 * log2 of the probability that some coefficient of x = (c_0 + c_1 s) / q_0 leaves [-K, K]: each is a sum of
 * h + 1 independent uniform variables on [-1/2, 1/2] (c_1 uniform mod q_0), about N(0, (h + 1) / 12), over N
 * coefficients. A weight-h secret bounds |x| by (h + 1) / 2 whatever the ciphertext: probability 0 beyond.
 */
static double failure_log2(size_t n, size_t h, double k)
{
    const size_t weight = h ? h : 2 * n / 3; /* uniform ternary: two thirds of the coefficients on average */
    if (h && k >= (double)(h + 1) / 2) return BOOT_IMPOSSIBLE;
    const double sigma = sqrt((double)(weight + 1) / 12.0);
    const double p = log2((double)n) + log2_erfc(k / (sigma * sqrt(2.0)));
    return p < 0 ? p : 0;
}

/* The default K: the worst case of a weight-h secret, or the least K with a failure probability <= 2^-128. */
static double auto_k_bound(size_t n, size_t h)
{
    double k = 1;
    while (failure_log2(n, h, k) > -BOOT_FAILURE_BITS) k += 0.25;
    return k;
}

/*
 * Chebyshev coefficients on [-K, K] at BOOT_NODES nodes, degree up to BOOT_MAX_DEGREE, of sin(2 pi x) / (2 pi),
 * or for r double-angle steps of cos(2 pi (x - 1/4) / 2^r) (whose r-th double angle is sin(2 pi x)).
 */
static void sine_coefficients(double *c, double k, size_t r)
{
    const double pi = 3.14159265358979323846264338327950288;
    for (size_t d = 0; d <= BOOT_MAX_DEGREE; d++) c[d] = 0;
    for (size_t j = 0; j < BOOT_NODES; j++) {
        const double theta = pi * ((double)j + 0.5) / BOOT_NODES, x = cos(theta);
        const double f = r ? cos(2 * pi * (k * x - 0.25) / ldexp(1.0, (int)r)) : sin(2 * pi * k * x) / (2 * pi);
        /* T_d(x) = cos(d theta) by rotating (cos, sin) by theta, restarted from cos() and sin() every 32 steps
         * (the three-term recurrence of T_d loses up to 1 / sin(theta) times more near the interval's ends) */
        const double ct = x, st = sin(theta);
        double cd = 1, sd = 0;
        for (size_t d = 0; d <= BOOT_MAX_DEGREE; d++) {
            if (d % 32 == 0) {
                cd = cos((double)d * theta);
                sd = sin((double)d * theta);
            }
            c[d] += f * cd;
            const double next = cd * ct - sd * st;
            sd = sd * ct + cd * st;
            cd = next;
        }
    }
    for (size_t d = 0; d <= BOOT_MAX_DEGREE; d++) c[d] *= 2.0 / BOOT_NODES;
    c[0] /= 2;
    /* the sine is odd: its even coefficients are rounding noise, set to the exact 0 (the evaluation then computes
     * only the odd powers) */
    for (size_t d = 0; !r && d <= BOOT_MAX_DEGREE; d += 2) c[d] = 0;
}

/*
 * The least degree past which every coefficient is below 2^-bits (past about 2 pi K / 2^r they decay faster
 * than geometrically, so that their sum is of the same size); 0 when none up to the maximum. Each
 * coefficient, not their sum, is compared: the sum of hundreds of rounding-sized ones would decide otherwise.
 */
static size_t sine_degree(const double *c, int bits)
{
    size_t d = BOOT_MAX_DEGREE;
    while (d > 0 && fabs(c[d]) < ldexp(1.0, -bits)) d--;
    return d + 1 >= BOOT_MAX_DEGREE ? 0 : d; /* the sine is odd: its even coefficients are 0 */
}

/* The configuration with its defaults, checked against the context. */
static veil_status resolve_config(veil_ckks_bootstrap_config *c, const veil_ckks_bootstrap_config *given,
                                  const veil_context *ctx, veil_error *err)
{
    const size_t half = ctx->params.n / 2;
    *c = given ? *given : (veil_ckks_bootstrap_config){0};
    if (c->slots == 0) c->slots = half;
    if (c->cts_levels == 0) c->cts_levels = 3;
    if (c->stc_levels == 0) c->stc_levels = 3;
    if (c->slots > half || (c->slots & (c->slots - 1)) != 0)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "bootstrap: %zu slots is not a power of two up to %zu", c->slots, half);
    if (c->cts_levels > VEIL_BOOT_MAX_DFT_LEVELS || c->stc_levels > VEIL_BOOT_MAX_DFT_LEVELS)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "bootstrap: %zu and %zu DFT levels (1..%d each)", c->cts_levels,
                         c->stc_levels, VEIL_BOOT_MAX_DFT_LEVELS);
    if (c->double_angle > 6)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "bootstrap: %zu double-angle steps (0..6)", c->double_angle);
    if (c->degree > BOOT_MAX_DEGREE)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "bootstrap: degree %zu above %d", c->degree, BOOT_MAX_DEGREE);
    if (!(c->k_bound >= 0) || !isfinite(c->k_bound) || (c->k_bound > 0 && c->k_bound < 1))
        return veil_fail(err, VEIL_ERR_ARGUMENT, "bootstrap: K = %g (1 or more, or 0 for automatic)", c->k_bound);
    const double q0 = (double)ctx->ring->primes[0];
    if (!(c->evalmod_scale >= 0) || !isfinite(c->evalmod_scale) ||
        (c->evalmod_scale > 0 &&
         (c->evalmod_scale < q0 / 1024 || c->evalmod_scale > 0x1p61 || c->evalmod_scale > q0 * 0x1p30)))
        return veil_fail(err, VEIL_ERR_ARGUMENT,
                         "bootstrap: EvalMod scale %g (q_0 / 1024 .. min(2^61, 2^30 q_0), or 0 for q_0)",
                         c->evalmod_scale);
    if (ctx->params.t != 0) return veil_fail(err, VEIL_ERR_ARGUMENT, "bootstrap: a BGV parameter set");
    if (c->message_shift > 8)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "bootstrap: message shift %zu (0..8)", c->message_shift);
    if (c->iterations == 0) c->iterations = 1;
    if (c->iterations > 2)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "bootstrap: %zu iterations (1 or 2)", c->iterations);
    if (c->iteration_shift == 0) c->iteration_shift = 8;
    if (c->iteration_shift > 30)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "bootstrap: iteration shift %zu (1..30, or 0 for 8)",
                         c->iteration_shift);
    if (c->encapsulation_weight > half)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "bootstrap: encapsulation weight %zu (0, or 1..N/2)",
                         c->encapsulation_weight);
    return VEIL_OK;
}

/* EvalMod's interval and polynomial. */
static veil_status setup_evalmod(veil_ckks_bootstrapper *bt, const veil_ckks_bootstrap_config *c, veil_error *err)
{
    /* with encapsulation, ModRaise happens under the ephemeral secret of weight h' */
    const size_t n = bt->ctx->params.n;
    const size_t h = c->encapsulation_weight ? c->encapsulation_weight
                     : bt->ctx->params.secret == VEIL_SECRET_TERNARY_HW ? bt->ctx->params.hamming_weight : 0;
    veil_ckks_bootstrap_info *info = &bt->info;
    info->k_bound = c->k_bound > 0 ? c->k_bound : auto_k_bound(n, h);
    info->failure_log2 = failure_log2(n, h, info->k_bound);
    bt->cheb = calloc(BOOT_MAX_DEGREE + 1, sizeof *bt->cheb);
    if (!bt->cheb) return veil_fail(err, VEIL_ERR_NO_MEMORY, "bootstrap: out of memory");
    bt->double_angle = c->double_angle;
    sine_coefficients(bt->cheb, info->k_bound, c->double_angle);
    /* the cosine's coefficients (of a function 2 pi times larger) are computed to about 2^-49: cut at 2^-46 */
    info->degree = c->degree ? c->degree : sine_degree(bt->cheb, c->double_angle ? 46 : BOOT_TAIL_BITS);
    if (info->degree == 0)
        return veil_fail(err, VEIL_ERR_ARGUMENT,
                         "bootstrap: K = %g needs a sine of degree above %d (a uniform ternary secret at N = %zu): use "
                         "a sparse secret (VEIL_SECRET_TERNARY_HW)",
                         info->k_bound, BOOT_MAX_DEGREE, n);
    return VEIL_OK;
}

/* The levels: CoeffToSlot from the top, EvalMod, SlotToCoeff; refused when the chain is too short. */
static veil_status plan_levels(veil_ckks_bootstrapper *bt, veil_error *err)
{
    const size_t depth = veil_ckks_chebyshev_depth(bt->info.degree) + bt->double_angle;
    const size_t need = bt->cts_count + depth + bt->stc_count;
    bt->top = bt->ctx->q_count - 1;
    if (need > bt->top)
        return veil_fail(err, VEIL_ERR_ARGUMENT,
                         "bootstrap: needs %zu levels (%zu CoeffToSlot, %zu EvalMod for degree %zu, %zu SlotToCoeff) "
                         "above level 0, the parameter set has %zu",
                         need, bt->cts_count, depth, bt->info.degree, bt->stc_count, bt->top);
    bt->stc_start = bt->top - bt->cts_count - depth;
    bt->eval_end = bt->stc_start + bt->double_angle;
    /* EvalMod's products rescale by the primes of its levels: far from its scale, the scale would run away */
    for (size_t l = bt->stc_start + 1; l <= bt->top - bt->cts_count; l++) {
        const double bits = log2((double)bt->ctx->ring->primes[l]), want = log2(bt->eval_scale);
        if (fabs(bits - want) > 4)
            return veil_fail(err, VEIL_ERR_ARGUMENT,
                             "bootstrap: EvalMod runs at scale 2^%.1f but its level %zu has a %.0f-bit prime (its %zu "
                             "levels need primes of about the scale's size)",
                             want, l, ceil(bits), depth);
    }
    /* meta-BTS: the second bootstrap's result is divided by 2^e with a constant product (one level) */
    const size_t extra = bt->iterations > 1 ? 1 : 0;
    if (need + extra > bt->top)
        return veil_fail(err, VEIL_ERR_ARGUMENT,
                         "bootstrap: iterated bootstrapping needs %zu levels above level 0, the parameter set has %zu",
                         need + extra, bt->top);
    bt->info.depth = need + extra;
    bt->info.levels_left = bt->top - need - extra;
    return VEIL_OK;
}

static bool has_element(const uint64_t *list, size_t count, uint64_t g)
{
    for (size_t k = 0; k < count; k++)
        if (list[k] == g) return true;
    return false;
}

static void add_element(veil_ckks_bootstrapper *bt, uint64_t g)
{
    if (g != 1 && !has_element(bt->galois, bt->info.galois_count, g)) bt->galois[bt->info.galois_count++] = g;
}

/* The Galois elements: the DFTs' rotations, SubSum's rotations, the conjugation. */
static veil_status collect_elements(veil_ckks_bootstrapper *bt, veil_error *err)
{
    const veil_context *ctx = bt->ctx;
    size_t max = 64;
    for (size_t i = 0; i < bt->cts_count; i++) max += bt->cts[i].step_count;
    for (size_t i = 0; i < bt->stc_count; i++) max += bt->stc[i].step_count;
    bt->galois = calloc(max, sizeof *bt->galois);
    if (!bt->galois) return veil_fail(err, VEIL_ERR_NO_MEMORY, "bootstrap: out of memory");
    for (size_t i = 0; i < bt->cts_count; i++)
        for (size_t k = 0; k < bt->cts[i].step_count; k++)
            add_element(bt, veil_galois_element_rotation(ctx, bt->cts[i].steps[k]));
    for (size_t i = 0; i < bt->stc_count; i++)
        for (size_t k = 0; k < bt->stc[i].step_count; k++)
            add_element(bt, veil_galois_element_rotation(ctx, bt->stc[i].steps[k]));
    for (size_t step = bt->info.slots; step < ctx->params.n / 2; step *= 2)
        add_element(bt, veil_galois_element_rotation(ctx, (long)step));
    if (bt->packed) add_element(bt, veil_galois_element_rotation(ctx, (long)bt->info.slots));
    add_element(bt, veil_galois_element_conjugation(ctx));
    return VEIL_OK;
}

veil_status veil_ckks_bootstrapper_new(veil_ckks_bootstrapper **out, const veil_ckks_encoder *enc,
                                       const veil_ckks_bootstrap_config *config, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(enc, err);
    veil_status st = VEIL_OK;
    veil_ckks_bootstrap_config c;
    veil_ckks_bootstrapper *bt = NULL;
    double complex *masks = NULL;
    VEIL_CHECK(resolve_config(&c, config, enc->ctx, err));
    bt = calloc(1, sizeof *bt);
    if (!bt) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "bootstrap: out of memory");
    bt->ctx = enc->ctx;
    VEIL_CHECK(veil_ckks_encoder_new(&bt->enc, enc->ctx, err));
    bt->info.slots = c.slots;
    bt->cts_count = c.cts_levels;
    bt->stc_count = c.stc_levels;
    bt->encapsulation_weight = c.encapsulation_weight;
    bt->eval_scale = c.evalmod_scale > 0 ? c.evalmod_scale : (double)enc->ctx->ring->primes[0];
    bt->message_shift = (unsigned)c.message_shift;
    bt->iterations = c.iterations;
    bt->iteration_shift = (unsigned)c.iteration_shift;
    VEIL_CHECK(setup_evalmod(bt, &c, err));
    VEIL_CHECK(plan_levels(bt, err));
    /* CoeffToSlot: 1/2 for the split into real and imaginary parts, 1/gap for SubSum's sum of gap copies */
    const double gap = (double)(enc->slots / c.slots);
    /*
     * From q_0 to EvalMod's scale: the power of two 2^k <= S / q_0 as an exact product after ModRaise (no
     * level, no diagonal at a larger scale), the rest (below 2) in the last CoeffToSlot level's diagonals; the
     * first SlotToCoeff level takes the whole ratio back.
     */
    const double q0 = (double)enc->ctx->ring->primes[0], ratio = bt->eval_scale / q0;
    bt->raise_shift = ratio >= 2 ? (unsigned)floor(log2(ratio)) : 0;
    /*
     * Sparse slots (2 slots <= N/2): the real and imaginary halves side by side in one ciphertext of period
     * 2 slots, so that EvalMod runs once. CoeffToSlot's last level is masked by D (1 on the first half of each
     * period, -i on the second): then y + conj(y) holds a on the first half and b on the second. SlotToCoeff's
     * first level reads v = a + i b as P . r + Q . rot(r, slots) (P = 1, Q = i on the first half; P = i, Q = 1
     * on the second, where r repeats with period 2 slots).
     */
    bt->packed = 2 * c.slots <= enc->slots;
    const size_t period = 2 * c.slots;
    veil_boot_dft_mask cts_mask = {bt->cts_count - 1, period, NULL, {NULL, NULL}};
    veil_boot_dft_mask stc_mask = {0, period, NULL, {NULL, NULL}};
    if (bt->packed) {
        masks = malloc(3 * period * sizeof *masks);
        if (!masks) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "bootstrap: out of memory");
        for (size_t t = 0; t < period; t++) {
            const bool first = t < c.slots;
            masks[t] = first ? 1.0 : -I;
            masks[period + t] = first ? 1.0 : I;
            masks[2 * period + t] = first ? I : 1.0;
        }
        cts_mask.out = masks;
        stc_mask.in[0] = masks + period;
        stc_mask.in[1] = masks + 2 * period;
    }
    VEIL_CHECK(veil_boot_dft_build(bt->cts, bt->cts_count, enc, c.slots, true, 1.0 / (2.0 * gap), bt->top,
                                   ldexp(ratio, -(int)bt->raise_shift), bt->cts_count - 1,
                                   bt->packed ? &cts_mask : NULL, err));
    /* the scale EvalMod ends at: S, then squared and divided by the prime of each double-angle step */
    double end_scale = bt->eval_scale;
    for (size_t i = 0; i < bt->double_angle; i++)
        end_scale = end_scale * end_scale / (double)enc->ctx->ring->primes[bt->eval_end - i];
    const double pi = 3.14159265358979323846264338327950288;
    /* after r double angles EvalMod returns sin(2 pi x), 2 pi times the sine's output: divided here, with the
     * 2^k the input was multiplied by */
    const double stc_factor = ldexp(bt->double_angle ? 1.0 / (2 * pi) : 1.0, -(int)bt->message_shift);
    VEIL_CHECK(veil_boot_dft_build(bt->stc, bt->stc_count, enc, c.slots, false, stc_factor,
                                   bt->stc_start, q0 / end_scale, 0, bt->packed ? &stc_mask : NULL, err));
    VEIL_CHECK(collect_elements(bt, err));
    *out = bt;
    bt = NULL;
done:
    veil_ckks_bootstrapper_free(bt);
    free(masks);
    return st;
}

void veil_ckks_bootstrapper_free(veil_ckks_bootstrapper *bt)
{
    if (!bt) return;
    veil_boot_dft_free(bt->cts, bt->cts_count);
    veil_boot_dft_free(bt->stc, bt->stc_count);
    veil_ckks_encoder_free(bt->enc);
    free(bt->cheb);
    free(bt->galois);
    free(bt);
}

void veil_ckks_bootstrapper_info(const veil_ckks_bootstrapper *bt, veil_ckks_bootstrap_info *out)
{
    if (!out) return;
    if (!bt) {
        memset(out, 0, sizeof *out);
        return;
    }
    *out = bt->info;
}

veil_status veil_ckks_bootstrap_galois_elements(const veil_ckks_bootstrapper *bt, uint64_t *out, size_t *count,
                                                size_t max_out, veil_error *err)
{
    VEIL_REQUIRE(bt, err);
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(count, err);
    if (max_out < bt->info.galois_count)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "bootstrap: room for %zu Galois elements, %zu needed", max_out,
                         bt->info.galois_count);
    memcpy(out, bt->galois, bt->info.galois_count * sizeof *out);
    *count = bt->info.galois_count;
    return VEIL_OK;
}

veil_status veil_ckks_bootstrap_keys_new(const veil_context *ctx, const veil_ckks_bootstrapper *bt,
                                         const veil_secret_key *sk, veil_prng *prng, veil_switch_key **keys,
                                         size_t max_keys, size_t *count, veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(bt, err);
    VEIL_REQUIRE(sk, err);
    VEIL_REQUIRE(keys, err);
    VEIL_REQUIRE(count, err);
    *count = 0;
    if (bt->ctx != ctx || sk->ctx != ctx)
        return veil_fail(err, VEIL_ERR_MISMATCH, "bootstrap_keys_new: the bootstrapper or the key is of another context");
    if (max_keys < bt->info.galois_count)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "bootstrap_keys_new: room for %zu keys, %zu needed", max_keys,
                         bt->info.galois_count);
    veil_status st = VEIL_OK;
    size_t made = 0;
    for (; made < bt->info.galois_count; made++)
        VEIL_CHECK(veil_galois_key_new(&keys[made], ctx, sk, bt->galois[made], prng, err));
    *count = made;
done:
    if (st != VEIL_OK)
        for (size_t k = 0; k < made; k++) {
            veil_switch_key_free(keys[k]);
            keys[k] = NULL;
        }
    return st;
}

/* ---- the circuit ------------------------------------------------------------------------------------ */

static const veil_switch_key *find_key(const veil_switch_key *const *keys, size_t count, uint64_t g)
{
    for (size_t k = 0; k < count; k++)
        if (keys[k] && keys[k]->galois == g) return keys[k];
    return NULL;
}

/* Every key the circuit uses is present and of this context, checked before anything is computed. */
static veil_status check_keys(const veil_context *ctx, const veil_ckks_bootstrapper *bt,
                              const veil_switch_key *relin_key, const veil_switch_key *const *keys, size_t count,
                              veil_error *err)
{
    veil_status st = VEIL_OK;
    VEIL_CHECK(veil_rlwe_check_switch_key(ctx, relin_key, 0, "bootstrap", err));
    for (size_t k = 0; k < bt->info.galois_count; k++) {
        const veil_switch_key *key = find_key(keys, count, bt->galois[k]);
        if (!key)
            VEIL_FAIL(err, VEIL_ERR_MISMATCH,
                      "bootstrap: no Galois key for element %llu (%zu keys given, %zu needed: "
                      "veil_ckks_bootstrap_keys_new makes them)",
                      (unsigned long long)bt->galois[k], count, bt->info.galois_count);
        VEIL_CHECK(veil_rlwe_check_switch_key(ctx, key, bt->galois[k], "bootstrap", err));
    }
done:
    return st;
}

/*
 * ModRaise: a level-0 ciphertext's polynomials, centered mod q_0, read as polynomials over the whole chain;
 * labelled with scale q_0 (its slots then hold the DFT of (m + q_0 I) / q_0).
 */
static veil_status mod_raise(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                             size_t top, veil_error *err)
{
    veil_status st = VEIL_OK;
    const size_t n = ctx->params.n;
    const uint64_t q0 = ctx->ring->primes[0];
    veil_poly *low = NULL, *raised[2] = {NULL, NULL};
    int64_t *v = malloc(n * sizeof *v);
    if (!v) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "bootstrap: out of memory");
    VEIL_CHECK(veil_context_poly_new(&low, ctx, 0, VEIL_FORM_EVAL, err));
    for (int i = 0; i < 2; i++) {
        VEIL_CHECK(veil_poly_copy(low, a->el.c[i], err));
        VEIL_CHECK(veil_poly_to_coeff(low, err));
        const uint64_t *x = veil_poly_limb_ptr(low, 0);
        for (size_t j = 0; j < n; j++) v[j] = x[j] > q0 / 2 ? (int64_t)x[j] - (int64_t)q0 : (int64_t)x[j];
        VEIL_CHECK(veil_context_poly_new(&raised[i], ctx, top, VEIL_FORM_COEFF, err));
        VEIL_CHECK(veil_poly_set_i64(raised[i], v, err));
        VEIL_CHECK(veil_poly_to_eval(raised[i], err));
    }
    veil_ckks_adopt_pair(out, raised, top);
    out->scale = (double)q0;
done:
    veil_poly_free(low);
    veil_poly_free(raised[0]);
    veil_poly_free(raised[1]);
    free(v);
    return st;
}

/* x <- i x: the product by X^(N/2), which is i at every slot (zeta^(5^k N/2) = i^(5^k) = i). Exact. */
static veil_status mul_by_i(const veil_context *ctx, veil_ckks_ciphertext *x, veil_error *err)
{
    veil_status st = VEIL_OK;
    const size_t n = ctx->params.n, h = n / 2;
    uint64_t *tmp = malloc(h * sizeof *tmp);
    if (!tmp) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "bootstrap: out of memory");
    for (size_t c = 0; c < x->el.size; c++) {
        veil_poly *p = x->el.c[c];
        VEIL_CHECK(veil_poly_to_coeff(p, err));
        for (size_t l = 0; l < veil_poly_limb_count(p); l++) {
            uint64_t *a = veil_poly_limb_ptr(p, l);
            const uint64_t q = ctx->ring->primes[veil_poly_prime_index(p, l)];
            /* X^(N/2) * sum a_j X^j: a_j moves to j + N/2, the upper half wraps around negated */
            memcpy(tmp, a + h, h * sizeof *tmp);
            memmove(a + h, a, h * sizeof *a);
            for (size_t j = 0; j < h; j++) a[j] = tmp[j] ? q - tmp[j] : 0;
        }
        VEIL_CHECK(veil_poly_to_eval(p, err));
    }
    x->el.seeded = false;
done:
    free(tmp);
    return st;
}

/*
 * EvalMod of one real part: the polynomial, dropped to its planned level, then the double-angle steps
 * c <- 2 c^2 - 1 (cos 2a = 2 cos^2 a - 1), ending where SlotToCoeff starts.
 */
static veil_status eval_mod(const veil_context *ctx, const veil_ckks_bootstrapper *bt, veil_ckks_ciphertext *out,
                            const veil_ckks_ciphertext *x, const veil_switch_key *relin_key, veil_error *err)
{
    veil_status st = VEIL_OK;
    const double k = bt->info.k_bound;
    VEIL_CHECK(veil_ckks_eval_chebyshev(ctx, out, x, bt->cheb, bt->info.degree, -k, k, relin_key, err));
    if (out->el.level < bt->eval_end)
        VEIL_FAIL(err, VEIL_ERR_INTERNAL, "bootstrap: EvalMod left level %zu, below the planned %zu", out->el.level,
                  bt->eval_end);
    if (out->el.level > bt->eval_end) VEIL_CHECK(veil_ckks_mod_drop(ctx, out, out, bt->eval_end, err));
    for (size_t i = 0; i < bt->double_angle; i++) {
        VEIL_CHECK(veil_ckks_mul_relin_rescale(ctx, out, out, out, relin_key, err));
        VEIL_CHECK(veil_ckks_mul_integer(ctx, out, out, 2, err));
        VEIL_CHECK(veil_ckks_add_constant(ctx, out, out, -1.0, err));
    }
done:
    return st;
}

/*
 * CoeffToSlot leaves y with slots (a_i + i b_i) / 2, a and b the two halves of the coefficients over q_0:
 * a = y + conj(y) and b = -i (y - conj(y)), each EvalMod'ed, then recombined as a + i b.
 */
static veil_status split_evalmod_join(const veil_context *ctx, const veil_ckks_bootstrapper *bt,
                                      veil_ckks_ciphertext *y, const veil_switch_key *relin_key,
                                      const veil_switch_key *conj_key, veil_ckks_ciphertext *const tmp[3],
                                      veil_error *err)
{
    veil_status st = VEIL_OK;
    veil_ckks_ciphertext *conj = tmp[0], *re = tmp[1], *im = tmp[2];
    VEIL_CHECK(veil_ckks_conjugate(ctx, conj, y, conj_key, err));
    VEIL_CHECK(veil_ckks_add(ctx, re, y, conj, err));
    VEIL_CHECK(veil_ckks_sub(ctx, im, conj, y, err)); /* i (conj - y) = -i (y - conj) */
    VEIL_CHECK(mul_by_i(ctx, im, err));
    VEIL_CHECK(eval_mod(ctx, bt, y, re, relin_key, err));
    VEIL_CHECK(eval_mod(ctx, bt, conj, im, relin_key, err));
    VEIL_CHECK(mul_by_i(ctx, conj, err));
    VEIL_CHECK(veil_ckks_add(ctx, y, y, conj, err));
done:
    return st;
}

/*
 * Sparse slots: y (after the masked CoeffToSlot) + conj(y) holds both halves; one EvalMod gives r in y, and
 * rot(r, slots) in tmp[1], the two inputs of SlotToCoeff's first level.
 */
static veil_status packed_evalmod(const veil_context *ctx, const veil_ckks_bootstrapper *bt, veil_ckks_ciphertext *y,
                                  const veil_switch_key *relin_key, const veil_switch_key *conj_key,
                                  const veil_switch_key *const *keys, size_t key_count,
                                  veil_ckks_ciphertext *const tmp[3], veil_error *err)
{
    veil_status st = VEIL_OK;
    const long slots = (long)bt->info.slots;
    VEIL_CHECK(veil_ckks_conjugate(ctx, tmp[0], y, conj_key, err));
    VEIL_CHECK(veil_ckks_add(ctx, tmp[0], tmp[0], y, err));
    VEIL_CHECK(eval_mod(ctx, bt, y, tmp[0], relin_key, err));
    VEIL_CHECK(veil_ckks_rotate(ctx, tmp[1], y, slots,
                                find_key(keys, key_count, veil_galois_element_rotation(ctx, slots)), err));
done:
    return st;
}

static veil_status check_input(const veil_context *ctx, const veil_ckks_bootstrapper *bt,
                               const veil_ckks_ciphertext *a, veil_error *err)
{
    veil_status st = VEIL_OK;
    if (bt->ctx != ctx) VEIL_FAIL(err, VEIL_ERR_MISMATCH, "bootstrap: the bootstrapper is of another context");
    VEIL_CHECK(veil_rlwe_check_element(ctx, veil_ckks_element(a), "bootstrap", err));
    if (a->el.size != 2) VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "bootstrap: relinearize the ciphertext first");
    const double q0 = (double)ctx->ring->primes[0];
    if (!(ldexp(a->scale, (int)bt->message_shift) <= q0 / 16))
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT,
                  "bootstrap: the scale 2^%.1f (times 2^%u, the message shift) is above q_0 / 16 = 2^%.1f (the ratio "
                  "q_0 / scale keeps EvalMod's sine linear): rescale first or use a larger first prime",
                  log2(a->scale), bt->message_shift, log2(q0 / 16));
done:
    return st;
}

veil_status veil_ckks_bootstrap(const veil_context *ctx, const veil_ckks_bootstrapper *bt, veil_ckks_ciphertext *out,
                                const veil_ckks_ciphertext *a, const veil_switch_key *relin_key,
                                const veil_switch_key *const *keys, size_t key_count, veil_error *err)
{
    return veil_ckks_bootstrap_encapsulated(ctx, bt, out, a, relin_key, keys, key_count, NULL, err);
}

static veil_status check_encapsulation(const veil_context *ctx, const veil_ckks_bootstrapper *bt,
                                       const veil_ckks_encapsulation_key *encaps, veil_error *err)
{
    if (!bt->encapsulation_weight && encaps)
        return veil_fail(err, VEIL_ERR_MISMATCH,
                         "bootstrap: an encapsulation key for a bootstrapper made without encapsulation");
    if (bt->encapsulation_weight && !encaps)
        return veil_fail(err, VEIL_ERR_MISMATCH,
                         "bootstrap: the bootstrapper uses sparse-secret encapsulation (weight %zu): the "
                         "encapsulation key is missing (veil_ckks_encapsulation_key_new)",
                         bt->encapsulation_weight);
    if (encaps && (encaps->ctx != ctx || encaps->weight != bt->encapsulation_weight))
        return veil_fail(err, VEIL_ERR_MISMATCH,
                         "bootstrap: the encapsulation key is of another context or weight (%zu, the bootstrapper "
                         "%zu)",
                         encaps->weight, bt->encapsulation_weight);
    return VEIL_OK;
}

/* One bootstrap of a (checked): its values at level levels_left (+ 1 with meta-BTS) and a's scale. */
static veil_status bootstrap_once(const veil_context *ctx, const veil_ckks_bootstrapper *bt,
                                  veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                  const veil_switch_key *relin_key, const veil_switch_key *const *keys,
                                  size_t key_count, const veil_ckks_encapsulation_key *encaps, veil_error *err)
{
    veil_status st = VEIL_OK;
    veil_ckks_ciphertext *y = NULL, *tmp[3] = {NULL, NULL, NULL};
    const double scale = a->scale;
    VEIL_CHECK(veil_ckks_ciphertext_new(&y, ctx, err));
    for (int i = 0; i < 3; i++) VEIL_CHECK(veil_ckks_ciphertext_new(&tmp[i], ctx, err));
    VEIL_CHECK(veil_ckks_mod_drop(ctx, tmp[0], a, 0, err));
    /* 2^k m: exact at level 0; EvalMod's error is then read 2^k times smaller (SlotToCoeff divides by 2^k) */
    if (bt->message_shift)
        VEIL_CHECK(veil_ckks_mul_integer(ctx, tmp[0], tmp[0], (int64_t)1 << bt->message_shift, err));
    if (encaps) VEIL_CHECK(veil_boot_switch_to_sparse(ctx, tmp[0], encaps, err));
    VEIL_CHECK(mod_raise(ctx, y, tmp[0], bt->top, err));
    if (encaps) VEIL_CHECK(veil_boot_switch_to_dense(ctx, y, encaps, err));
    /* SubSum: the part of y's polynomial in X^(N / (2 slots)) (sparse slots) */
    VEIL_CHECK(veil_boot_sub_sum(ctx, y, bt->info.slots, keys, key_count, err));
    if (bt->raise_shift) {
        VEIL_CHECK(veil_ckks_mul_integer(ctx, y, y, (int64_t)1 << bt->raise_shift, err));
        y->scale = ldexp(y->scale, (int)bt->raise_shift); /* the same values t / q_0, at a larger scale */
    }
    VEIL_CHECK(veil_boot_dft_apply(bt->enc, y, NULL, bt->cts, bt->cts_count, keys, key_count, err));
    const veil_switch_key *conj_key = find_key(keys, key_count, veil_galois_element_conjugation(ctx));
    if (bt->packed) {
        VEIL_CHECK(packed_evalmod(ctx, bt, y, relin_key, conj_key, keys, key_count, tmp, err));
        VEIL_CHECK(veil_boot_dft_apply(bt->enc, y, tmp[1], bt->stc, bt->stc_count, keys, key_count, err));
    } else {
        VEIL_CHECK(split_evalmod_join(ctx, bt, y, relin_key, conj_key, tmp, err));
        VEIL_CHECK(veil_boot_dft_apply(bt->enc, y, NULL, bt->stc, bt->stc_count, keys, key_count, err));
    }
    /* the phase is now the input's message: relabel with its scale */
    VEIL_CHECK(veil_ckks_mod_drop(ctx, out, y, y->el.level, err));
    out->scale = scale;
done:
    veil_ckks_ciphertext_free(y);
    for (int i = 0; i < 3; i++) veil_ckks_ciphertext_free(tmp[i]);
    return st;
}

/*
 * Iterated bootstrapping (meta-BTS; Bae, Cheon, Cho, Kim, Kim, "META-BTS: Bootstrapping Precision Beyond the
 * Limit", CCS 2022, section 3): b_1 = BTS(a) = m + e_1; d = a - b_1 at level 0 = -e_1 (plus a's own noise),
 * small, so 2^e d still lies in the bootstrap's range; b_2 = BTS(2^e d) = 2^e d + e_2; the result
 * b_1 + 2^-e b_2 = m + 2^-e e_2: the second bootstrap's absolute error divided by 2^e (the product by 2^-e
 * is a constant product: one level).
 */
static veil_status bootstrap_twice(const veil_context *ctx, const veil_ckks_bootstrapper *bt,
                                   veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                   const veil_switch_key *relin_key, const veil_switch_key *const *keys,
                                   size_t key_count, const veil_ckks_encapsulation_key *encaps, veil_error *err)
{
    veil_status st = VEIL_OK;
    veil_ckks_ciphertext *first = NULL, *diff = NULL;
    VEIL_CHECK(veil_ckks_ciphertext_new(&first, ctx, err));
    VEIL_CHECK(veil_ckks_ciphertext_new(&diff, ctx, err));
    VEIL_CHECK(bootstrap_once(ctx, bt, first, a, relin_key, keys, key_count, encaps, err));
    VEIL_CHECK(veil_ckks_mod_drop(ctx, diff, a, 0, err));
    VEIL_CHECK(veil_ckks_mod_drop(ctx, out, first, 0, err));
    VEIL_CHECK(veil_ckks_sub(ctx, diff, diff, out, err));
    VEIL_CHECK(veil_ckks_mul_integer(ctx, diff, diff, (int64_t)1 << bt->iteration_shift, err));
    VEIL_CHECK(bootstrap_once(ctx, bt, out, diff, relin_key, keys, key_count, encaps, err));
    VEIL_CHECK(veil_ckks_mul_constant(ctx, out, out, ldexp(1.0, -(int)bt->iteration_shift), err));
    VEIL_CHECK(veil_ckks_mod_drop(ctx, first, first, out->el.level, err));
    first->scale = out->scale; /* both hold their values at a's scale (the constant product keeps it) */
    VEIL_CHECK(veil_ckks_add(ctx, out, out, first, err));
done:
    veil_ckks_ciphertext_free(first);
    veil_ckks_ciphertext_free(diff);
    return st;
}

veil_status veil_ckks_bootstrap_encapsulated(const veil_context *ctx, const veil_ckks_bootstrapper *bt,
                                             veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                             const veil_switch_key *relin_key, const veil_switch_key *const *keys,
                                             size_t key_count, const veil_ckks_encapsulation_key *encaps,
                                             veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(bt, err);
    VEIL_REQUIRE(out, err);
    if (key_count) VEIL_REQUIRE(keys, err);
    veil_status st = VEIL_OK;
    VEIL_CHECK(check_input(ctx, bt, a, err));
    VEIL_CHECK(veil_rlwe_check_output(ctx, &out->el, "bootstrap", err));
    VEIL_CHECK(check_keys(ctx, bt, relin_key, keys, key_count, err));
    VEIL_CHECK(check_encapsulation(ctx, bt, encaps, err));
    if (bt->iterations > 1)
        VEIL_CHECK(bootstrap_twice(ctx, bt, out, a, relin_key, keys, key_count, encaps, err));
    else
        VEIL_CHECK(bootstrap_once(ctx, bt, out, a, relin_key, keys, key_count, encaps, err));
done:
    return st;
}

/* ---- presets ----------------------------------------------------------------------------------------- */

/*
 * Parameter sets for bootstrapping at N = 2^16, 128-bit by the HE standard's table (docs/bootstrapping.md):
 * a uniform ternary main secret with sparse-secret encapsulation (an ephemeral secret of Hamming weight 32
 * inside the bootstrap: K = 16.5, failure probability 0; the sine has degree 147, 9 levels), q_0 of 50 bits
 * against the 2^40 working scale, then from the bottom up the working levels, SlotToCoeff, EvalMod and
 * CoeffToSlot.
 */
typedef struct boot_preset {
    const char *name;
    size_t work, stc, eval, cts, p_count, dnum;
    unsigned work_bits, stc_bits, eval_bits, cts_bits, p_bits;
    size_t slots, message_shift, iterations, iteration_shift; /* the configuration's (0: its defaults) */
} boot_preset;

static const boot_preset boot_presets[] = {
    /* every prime below 2^50 (the AVX2 kernels); 10 levels left at 2^40 (log QP 1635 of 1747) */
    {"boot-n65536-balanced", 10, 3, 9, 3, 9, 3, 40, 45, 50, 50, 50, 0, 0, 0, 0},
    /* EvalMod at 2^60 and CoeffToSlot over 60-bit primes (their rounding is what limits precision); 10 levels
     * left, 4 digits (log QP 1725 of 1747) */
    {"boot-n65536-precise", 10, 3, 9, 3, 7, 4, 40, 45, 60, 60, 60, 0, 0, 0, 0},
    /* full slots: the balanced chain with the precision options, for one level and twice the time: the input
     * times 2^3 before ModRaise and meta-BTS with e = 11 (the first bootstrap's error stays within 2^-11 for
     * any values in range, a constant vector's cubic term included, so the second one corrects it); 9 levels
     * left */
    {"boot-n65536-full", 10, 3, 9, 3, 9, 3, 40, 45, 50, 50, 50, 32768, 3, 2, 11},
};

static const char *const boot_preset_names[] = {"boot-n65536-balanced", "boot-n65536-precise", "boot-n65536-full",
                                                NULL};

const char *const *veil_ckks_bootstrap_preset_names(void)
{
    return boot_preset_names;
}

veil_status veil_ckks_bootstrap_preset(veil_params **params, veil_ckks_bootstrap_config *config, const char *name,
                                       veil_error *err)
{
    VEIL_REQUIRE(params, err);
    *params = NULL;
    VEIL_REQUIRE(config, err);
    VEIL_REQUIRE(name, err);
    for (size_t k = 0; k < sizeof boot_presets / sizeof boot_presets[0]; k++) {
        const boot_preset *bp = &boot_presets[k];
        if (strcmp(bp->name, name) != 0) continue;
        unsigned q_bits[VEIL_PARAMS_MAX_PRIMES], p_bits[VEIL_PARAMS_MAX_PRIMES];
        size_t c = 0;
        q_bits[c++] = 50;
        for (size_t i = 0; i < bp->work; i++) q_bits[c++] = bp->work_bits;
        for (size_t i = 0; i < bp->stc; i++) q_bits[c++] = bp->stc_bits;
        for (size_t i = 0; i < bp->eval; i++) q_bits[c++] = bp->eval_bits;
        for (size_t i = 0; i < bp->cts; i++) q_bits[c++] = bp->cts_bits;
        for (size_t i = 0; i < bp->p_count; i++) p_bits[i] = bp->p_bits;
        const veil_params_spec spec = {.n = 65536, .q_count = c, .q_bits = q_bits, .p_count = bp->p_count,
                                       .p_bits = p_bits, .dnum = bp->dnum, .secret = VEIL_SECRET_TERNARY,
                                       .security = VEIL_SECURITY_128};
        /* the sine of degree 147 on [-16.5, 16.5] (9 levels); the key to the ephemeral secret lives over
         * q_0 p_0 only (100 or 110 bits) */
        *config = (veil_ckks_bootstrap_config){.cts_levels = bp->cts, .stc_levels = bp->stc,
                                               .evalmod_scale = ldexp(1.0, (int)bp->eval_bits),
                                               .encapsulation_weight = VEIL_BOOT_ENCAPSULATION_WEIGHT,
                                               .slots = bp->slots, .message_shift = bp->message_shift,
                                               .iterations = bp->iterations, .iteration_shift = bp->iteration_shift};
        return veil_params_new(params, &spec, err);
    }
    return veil_fail(err, VEIL_ERR_NOT_FOUND, "no bootstrapping preset named '%s'", name);
}
