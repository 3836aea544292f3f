/*
 * Encrypted training of linear and logistic regression (veil/train.h).
 *
 * Layout. A record takes a block of B slots (B a power of two, B >= F + 2), R = slots / B records per
 * ciphertext. The data owner encrypts layout A: record r's values z_r = (1, x_r) (times the label's sign
 * 2y - 1 for logistic regression) in slots rB .. rB + F, the rest zero. The weights v live in layout A too,
 * replicated in every block.
 *
 * One iteration (Kim, Song, Kim, Lee, Cheon, JMIR Med Inform 2018, section "Methods", with the layout
 * changes below):
 *   1. u = Z (.) v, then u += rot(u, 1), rot(u, 2), ..., rot(u, B/2): slot rB holds t_r = z_r . v;
 *   2. a plaintext mask keeps slots rB, times a constant alpha (the learning rate is folded in there);
 *   3. the odd polynomial -k q(t) = -k (a1 t + a3 t^3 + ...) in t' = alpha t (alpha chosen so that the
 *      leading coefficient is 1, which saves a constant product);
 *   4. the same rotations again spread each record's value from rB over rB - B + 1 .. rB: that is where the
 *      record sits in layout X = A rotated left by B - 1, which the data owner encrypts too;
 *   5. a product with Z_X, summed over the ciphertexts (one relinearization), and over the records by
 *      rotations by B, 2B, ..., slots/2: every block of the sum holds the gradient, in layout X;
 *   6. one rotation by 1 brings it back to layout A, and Nesterov's update is a linear combination of
 *      ciphertexts from this and the previous iteration with public constants, each product taken at a
 *      level above the gradient's, so that it costs no level of its own.
 * Both the sum (step 1) and the spreading (step 4) are the same left window sum, in hoisted radix-4 groups
 * (veil_ckks_rotate_sum); the shift between layouts A and X is what makes one serve both.
 *
 * The constant term of sigma(-t) (1/2) times sum_r z_r comes from the data owner (who can compute it), as
 * the mean of z_r (its factor lr/2 then keeps precision in mul_constant's integer, where lr/2n would not),
 * and the first iteration (from v = 0) is that term alone. Linear regression uses the same steps with the
 * residual k (t_r - y_r) in place of the polynomial; its constant part is the mean of y_r z_r.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <omp.h>
#include "ml/ml_plan.h"
#include "veil/ckks.h"
#include "veil/ring.h"
#include "veil/train.h"
#include "veil/circuits.h"
#include "veil/serial.h"
#include "serial/serial_internal.h"

#define TRAIN_FIRST_BITS 50
/* Flooded weights (veil_train_request.flood): the weights' error is about 2^17 in the coefficients whatever
 * the scale (fresh and rounding errors carried through the iterations), so flooding's noise of 2^(17 + 23.8)
 * moves a weight by 6 sigma sqrt(N/2) / scale, under 1e-3 only at a 2^60 scale (docs/training.md). */
#define TRAIN_FLOOD_SCALE_BITS 60
#define TRAIN_FLOOD_FIRST_BITS 61
#define DEFAULT_DEGREE 3
#define DEFAULT_RANGE 8
#define DEFAULT_LEARNING_RATE 1.0
#define DEFAULT_DP_PREDICTION_BOUND 2.0 /* linear DP-GD: |z.v| <= 2, twice the scaled label's range */
#define MAX_DP_PREDICTION_BOUND 1e6
#define MAX_FEATURES 1023
#define MAX_ROWS ((size_t)1 << 20)
#define MAX_MAGNITUDE 1e12
#define KS_MARGIN_BITS 60 /* P exceeds every key-switching digit by this much: its noise stays far below the scale */
#define STATS_LEVEL 2 /* the scaling is encrypted as (mantissa, exponent) pairs at this level */

static size_t log2_exact(size_t x)
{
    size_t k = 0;
    while (((size_t)1 << k) < x) k++;
    return k;
}

/*
 * A window sum over 2^count offsets by stride, in radix-4 groups: offsets {1, 2, 3} x b for b = stride,
 * 4 stride, 16 stride, ..., and {b} for a last odd bit. Each group is one hoisted rotation sum (one ModUp and
 * one ModDown for its three rotations). Writes the group of index g to out (at most 3 steps), returns its size
 * (0 past the last group).
 */
static size_t window_group(long *out, size_t stride, size_t count, size_t g)
{
    if (2 * g >= count) return 0;
    const long b = (long)stride << (2 * g);
    out[0] = b;
    if (2 * g + 1 == count) return 1;
    out[1] = 2 * b;
    out[2] = 3 * b;
    return 3;
}

/* Every rotation step the training uses: the two window sums (block, records); the layout shift 1 is in both. */
static size_t train_steps(long *out, size_t block, size_t slots)
{
    size_t n = 0;
    const size_t strides[2] = {1, block}, counts[2] = {log2_exact(block), log2_exact(slots / block)};
    for (size_t w = 0; w < 2; w++) {
        long group[3];
        for (size_t g = 0, k; (k = window_group(group, strides[w], counts[w], g)) > 0; g++)
            for (size_t i = 0; i < k; i++) {
                size_t j = 0;
                while (j < n && out[j] != group[i]) j++;
                if (j == n) out[n++] = group[i];
            }
    }
    return n;
}

/* Levels of one iteration and of the first one (from w = 0). */
static size_t per_iteration(unsigned task, unsigned degree)
{
    return task == VEIL_TRAIN_LINEAR ? 3 : 2 + (degree + 3) / 2;
}
static size_t first_iteration(unsigned task)
{
    (void)task; /* from w = 0 the gradient is a constant ciphertext times a public number */
    return 1;
}

static size_t depth_for(unsigned task, unsigned degree, size_t iterations)
{
    return first_iteration(task) + per_iteration(task, degree) * (iterations - 1);
}

static size_t max_iterations(unsigned task, unsigned degree, size_t levels)
{
    if (levels < first_iteration(task)) return 0;
    return 1 + (levels - first_iteration(task)) / per_iteration(task, degree);
}

/*
 * The level the data is encrypted for ("top"): the context's highest, or with bootstrapping (levels holds the
 * level a bootstrap returns to, L) L + 1, so that the first iteration's product leaves the weights at L, where
 * every bootstrap puts them back: the levels above are bootstrapping's own.
 */
static size_t train_top(size_t max_level, uint32_t boot) { return boot ? (size_t)boot + 1 : max_level; }

/* The levels the records are encrypted at: layout A for the first iteration's product, X for its last. */
static size_t level_a(size_t top) { return top >= 1 ? top - 1 : 0; }
static size_t level_x(size_t top, unsigned task, unsigned degree)
{
    const size_t per = per_iteration(task, degree);
    return top >= per ? top - per : 0;
}

size_t veil_train_data_bytes(const veil_plan *plan, size_t rows)
{
    const veil_params *p = plan->params;
    const size_t top = train_top(veil_params_q_count(p) - 1, plan->train.boot), nct = plan->batch ? (rows + plan->batch - 1) / plan->batch : 0;
    const size_t a = veil_ckks_ciphertext_stored_bytes(p, level_a(top), 2, true);
    const size_t x = veil_ckks_ciphertext_stored_bytes(p, level_x(top, plan->train.task, plan->train.degree), 2, true);
    const size_t items = veil_params_stored_bytes(p) + nct * (a + x) + veil_ckks_ciphertext_stored_bytes(p, top, 2, true) +
                         veil_ckks_ciphertext_stored_bytes(p, top < STATS_LEVEL ? top : STATS_LEVEL, 2, true);
    return veil_set_stored_bytes(VEIL_META_BYTES, 2 * nct + 3, items);
}

/*
 * The least-squares fit of sigmoid(t) - 1/2 by an odd polynomial of the degree over [-range, range] (Kim et
 * al. fit the same way), on 4001 points, in u = t / range for conditioning; c[i] multiplies t^(2i+1).
 */
static void sigmoid_fit(unsigned degree, unsigned range, double c[4])
{
    const size_t terms = (degree + 1) / 2, points = 4001;
    double a[4][5] = {{0}};
    for (size_t p = 0; p < points; p++) {
        const double u = -1.0 + 2.0 * (double)p / (double)(points - 1), t = u * range;
        const double target = 1.0 / (1.0 + exp(-t)) - 0.5;
        double pw[4];
        for (size_t i = 0; i < terms; i++) pw[i] = pow(u, (double)(2 * i + 1));
        for (size_t i = 0; i < terms; i++) {
            for (size_t j = 0; j < terms; j++) a[i][j] += pw[i] * pw[j];
            a[i][terms] += pw[i] * target;
        }
    }
    for (size_t i = 0; i < terms; i++) { /* Gauss-Jordan with partial pivoting on a 4x4 system at most */
        size_t piv = i;
        for (size_t r = i + 1; r < terms; r++)
            if (fabs(a[r][i]) > fabs(a[piv][i])) piv = r;
        for (size_t k = 0; k <= terms; k++) {
            double tmp = a[i][k];
            a[i][k] = a[piv][k];
            a[piv][k] = tmp;
        }
        for (size_t r = 0; r < terms; r++) {
            if (r == i) continue;
            const double f = a[r][i] / a[i][i];
            for (size_t k = i; k <= terms; k++) a[r][k] -= f * a[i][k];
        }
    }
    for (size_t i = 0; i < 4; i++) c[i] = i < terms ? a[i][terms] / a[i][i] / pow((double)range, (double)(2 * i + 1)) : 0;
}

/* The spec's hash: keys, data and models carry it, so that none mixes with another spec's. */
static void train_hash(uint8_t out[VEIL_ID_BYTES], unsigned task, size_t features, unsigned degree, unsigned range,
                       unsigned scale_bits)
{
    uint8_t buf[32] = "veil-train-1";
    const uint64_t f[5] = {task, features, degree, range, scale_bits};
    for (size_t i = 0; i < 5; i++)
        for (size_t b = 0; b < 4; b++) buf[12 + 4 * i + b] = (uint8_t)(f[i] >> (8 * b));
    crypto_generichash(out, VEIL_ID_BYTES, buf, sizeof buf, NULL, 0);
}

/* ---- the plan ----------------------------------------------------------------------------------- */

static veil_status check_request(const veil_train_request *r, unsigned *degree, unsigned *range, veil_error *err)
{
    if (r->task != VEIL_TRAIN_LOGISTIC && r->task != VEIL_TRAIN_LINEAR)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "train: unknown task %d", (int)r->task);
    if (r->features < 1 || r->features > MAX_FEATURES)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "train: %zu features (1 to %d)", r->features, MAX_FEATURES);
    if (r->iterations < 1 || r->iterations > 1000)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "train: %zu iterations (1 to 1000)", r->iterations);
    *degree = r->task == VEIL_TRAIN_LINEAR ? 0 : r->degree ? r->degree : DEFAULT_DEGREE;
    *range = r->task == VEIL_TRAIN_LINEAR ? 0 : r->range ? r->range : DEFAULT_RANGE;
    if (r->task == VEIL_TRAIN_LOGISTIC && *degree != 3 && *degree != 5 && *degree != 7)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "train: the sigmoid's degree is 3, 5 or 7, not %u", *degree);
    if (r->task == VEIL_TRAIN_LOGISTIC && *range > 64)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "train: the sigmoid's range is 1 to 64, not %u", *range);
    if (r->task == VEIL_TRAIN_LINEAR && (r->degree || r->range))
        return veil_fail(err, VEIL_ERR_ARGUMENT, "train: linear regression has no sigmoid (degree and range are 0)");
    return VEIL_OK;
}

/*
 * Parameters for a depth: Q = {50, depth x scale} bits, the fewest key-switching digits whose special primes
 * fit the security budget. The special primes (50 bits) need only exceed the largest digit by a margin, so
 * there are ceil((digit + 60) / 50) of them rather than one per prime of a digit.
 */
static veil_status params_for(veil_params **out, size_t n, size_t depth, unsigned scale, unsigned first,
                              veil_security security, veil_error *err)
{
    const size_t q_count = depth + 1;
    if (q_count + 1 > VEIL_RING_MAX_PRIMES) return veil_fail(err, VEIL_ERR_NOT_FOUND, "too many primes");
    unsigned q_bits[VEIL_RING_MAX_PRIMES], p_bits[VEIL_RING_MAX_PRIMES];
    q_bits[0] = first;
    for (size_t i = 1; i < q_count; i++) q_bits[i] = scale;
    const unsigned q_total = first + (unsigned)depth * scale;
    const unsigned limit = security == VEIL_SECURITY_NONE ? ~0u : veil_security_max_log_qp(n, security);
    for (size_t dnum = 1; dnum <= q_count; dnum++) {
        const size_t alpha = (q_count + dnum - 1) / dnum;
        const unsigned digit = first + (unsigned)(alpha - 1) * scale; /* the first digit holds q_0 */
        const size_t p_count = (digit + KS_MARGIN_BITS + TRAIN_FIRST_BITS - 1) / TRAIN_FIRST_BITS;
        if (q_count + p_count > VEIL_RING_MAX_PRIMES || q_total + p_count * TRAIN_FIRST_BITS > limit) continue;
        for (size_t i = 0; i < p_count; i++) p_bits[i] = TRAIN_FIRST_BITS;
        veil_params_spec spec = {.n = n, .q_count = q_count, .q_bits = q_bits, .p_count = p_count, .p_bits = p_bits,
                                 .dnum = dnum, .security = security};
        if (veil_params_new(out, &spec, err) == VEIL_OK) return VEIL_OK;
    }
    return veil_fail(err, VEIL_ERR_NOT_FOUND, "depth %zu does not fit N = %zu", depth, n);
}

/*
 * The smallest ring for the depth (at least 2^12); in it, the largest scale that fits (40, 38 or 36 bits). A
 * smaller scale can leave room for fewer key-switching digits (at N = 2^16 with 31 levels, 38 bits take 3
 * digits where 40 bits take 4), but measured on the iDASH benchmark that saved no time, and every bit of
 * scale is a bit of precision in the weights.
 */
static veil_status choose_params(veil_params **out, unsigned *scale_bits, size_t depth, size_t slots,
                                 const veil_train_request *req, veil_error *err)
{
    static const unsigned plain_scales[] = {40, 38, 36}, flood_scales[] = {TRAIN_FLOOD_SCALE_BITS};
    /* a larger scale asked (veil_train_request.min_scale_bits): exactly it, the first prime 10 bits above */
    const unsigned asked = !req->flood && req->min_scale_bits > plain_scales[0] ? req->min_scale_bits : 0;
    const unsigned *scales = req->flood ? flood_scales : asked ? &asked : plain_scales;
    const size_t n_scales = req->flood || asked ? 1 : sizeof plain_scales / sizeof *plain_scales;
    const unsigned first = req->flood ? TRAIN_FLOOD_FIRST_BITS
                           : asked    ? (asked + 10 > TRAIN_FIRST_BITS ? asked + 10 : TRAIN_FIRST_BITS)
                                      : TRAIN_FIRST_BITS;
    if (asked > TRAIN_FLOOD_SCALE_BITS - 10)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "train: a scale of 2^%u asked (at most 2^%d; --flood: 2^%d)", asked,
                         TRAIN_FLOOD_SCALE_BITS - 10, TRAIN_FLOOD_SCALE_BITS);
    const veil_security security = req->security;
    if (req->ring_degree) { /* given (tests) */
        *scale_bits = scales[0];
        return params_for(out, req->ring_degree, depth, scales[0], first, security, err);
    }
    if (security == VEIL_SECURITY_NONE)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "train: without a security level, give the ring degree");
    for (size_t n = 4096; n <= 131072; n *= 2) {
        if (n / 2 < slots) continue;
        for (size_t i = 0; i < n_scales; i++) {
            veil_error e = {VEIL_OK, ""};
            if (params_for(out, n, depth, scales[i], first, security, &e) == VEIL_OK) {
                *scale_bits = scales[i];
                return VEIL_OK;
            }
        }
    }
    return veil_fail(err, VEIL_ERR_NOT_FOUND,
                     "train: no parameter set holds %zu levels at this security level: ask for fewer iterations", depth);
}

/* ---- bootstrapping past the leveled limit (docs/training.md, docs/bootstrapping.md) -------------------------- */

/*
 * The bootstrap's layout above the working levels is the balanced preset's: SlotToCoeff on 3 x 45 bits,
 * EvalMod (the sine of degree 147 on [-16.5, 16.5], sparse-secret encapsulation of weight 32) on 9 x 50 bits at
 * 2^50, CoeffToSlot on 3 x 50 bits. The weights are bootstrapped with one record's block of slots.
 */
#define BOOT_CTS 3
#define BOOT_STC 3
#define BOOT_EVAL 9
#define BOOT_DEPTH (BOOT_CTS + BOOT_EVAL + BOOT_STC)
#define BOOT_STC_BITS 45
#define BOOT_EVAL_BITS 50
#define BOOT_MAX_ITERATIONS 1000
#define BOOT_MAX_SHIFT 4096.0 /* the weights' guaranteed bound, scaled into [-1, 1]: at most 2^12 (12 bits lost) */

static veil_ckks_bootstrap_config boot_config(size_t slots)
{
    return (veil_ckks_bootstrap_config){.slots = slots, .cts_levels = BOOT_CTS, .stc_levels = BOOT_STC,
                                        .evalmod_scale = ldexp(1.0, BOOT_EVAL_BITS),
                                        .encapsulation_weight = VEIL_ML_BOOT_WEIGHT};
}

/* Iterations between two bootstraps when a bootstrap returns the weights to level `level`: one level is kept
 * for the product that scales the weights into bootstrapping's range. */
static size_t boot_every(unsigned task, unsigned degree, size_t level)
{
    return level > 1 ? (level - 1) / per_iteration(task, degree) : 0;
}

size_t veil_train_bootstraps(const veil_train_info *info, size_t iterations)
{
    if (!info || !info->bootstrap_level || !info->iterations_per_bootstrap || iterations < 2) return 0;
    return (iterations - 2) / info->iterations_per_bootstrap; /* before t = 1 + j m, j >= 1, t < K */
}

/* Bootstrap before iteration t (from 0)? */
static int boot_before(size_t t, size_t every) { return every && t > 1 && (t - 1) % every == 0; }

/*
 * Q = {50, work x scale, 3 x 45, 9 x 50, 3 x 50} bits, a uniform ternary secret, P of 50-bit primes at least as
 * large as the largest key-switching digit (as the bootstrapping presets), the fewest digits (at most max_dnum)
 * that fit the security level. NOT_FOUND when none does.
 */
static veil_status boot_params_for(veil_params **out, size_t n, size_t work, unsigned scale, veil_security security,
                                   size_t max_dnum, veil_error *err)
{
    unsigned q_bits[VEIL_RING_MAX_PRIMES], p_bits[VEIL_RING_MAX_PRIMES];
    size_t q = 0;
    if (1 + work + BOOT_DEPTH >= VEIL_RING_MAX_PRIMES) return veil_fail(err, VEIL_ERR_NOT_FOUND, "too many primes");
    q_bits[q++] = TRAIN_FIRST_BITS;
    for (size_t i = 0; i < work; i++) q_bits[q++] = scale;
    for (size_t i = 0; i < BOOT_STC; i++) q_bits[q++] = BOOT_STC_BITS;
    for (size_t i = 0; i < BOOT_EVAL + BOOT_CTS; i++) q_bits[q++] = BOOT_EVAL_BITS;
    unsigned q_total = 0;
    for (size_t i = 0; i < q; i++) q_total += q_bits[i];
    const unsigned limit = security == VEIL_SECURITY_NONE ? ~0u : veil_security_max_log_qp(n, security);
    for (size_t dnum = 1; dnum <= max_dnum && dnum <= q; dnum++) {
        const size_t alpha = (q + dnum - 1) / dnum;
        unsigned digit = 0;
        for (size_t d = 0; d * alpha < q; d++) {
            unsigned bits = 0;
            for (size_t i = d * alpha; i < q && i < (d + 1) * alpha; i++) bits += q_bits[i];
            if (bits > digit) digit = bits;
        }
        const size_t p_count = (digit + BOOT_EVAL_BITS - 1) / BOOT_EVAL_BITS;
        if (q + p_count > VEIL_RING_MAX_PRIMES || q_total + p_count * BOOT_EVAL_BITS > limit) continue;
        for (size_t i = 0; i < p_count; i++) p_bits[i] = BOOT_EVAL_BITS;
        veil_params_spec spec = {.n = n, .q_count = q, .q_bits = q_bits, .p_count = p_count, .p_bits = p_bits,
                                 .dnum = dnum, .secret = VEIL_SECRET_TERNARY, .security = security};
        if (veil_params_new(out, &spec, err) == VEIL_OK) return VEIL_OK;
    }
    return veil_fail(err, VEIL_ERR_NOT_FOUND, "bootstrapping with %zu working levels does not fit N = %zu", work, n);
}

/*
 * The parameters with bootstrapping: the ring given (tests: 2 iterations between bootstraps), or the smallest
 * ring of the security level (from 2^16) and in it the fewest digits that leave 2 iterations between
 * bootstraps (else 1), with the most iterations those digits allow (up to 4).
 */
static veil_status choose_boot_params(veil_params **out, size_t *work, const veil_train_request *req, unsigned task,
                                      unsigned degree, size_t block, veil_error *err)
{
    const size_t per = per_iteration(task, degree);
    if (req->ring_degree) {
        *work = 2 * per + 1;
        return boot_params_for(out, req->ring_degree, *work, 40, req->security, 64, err);
    }
    if (req->security == VEIL_SECURITY_NONE)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "train: without a security level, give the ring degree");
    for (size_t n = 65536; n <= 131072; n *= 2) {
        if (n / 2 < block) continue;
        for (size_t want = 2; want >= 1; want--)
            for (size_t dnum = 1; dnum <= 8; dnum++)
                for (size_t m = 4; m >= want; m--) {
                    veil_error e = {VEIL_OK, ""};
                    *work = m * per + 1;
                    if (boot_params_for(out, n, *work, 40, req->security, dnum, &e) == VEIL_OK) return VEIL_OK;
                }
    }
    return veil_fail(err, VEIL_ERR_NOT_FOUND, "train: no parameter set of this security level holds bootstrapping "
                     "and an iteration (%zu levels)", per);
}

/*
 * Bootstrapping's Galois elements that the training's rotations do not give, and its info, from a bootstrapper
 * made for the plan's parameters (its DFT matrices over one block of slots: small).
 */
static veil_status boot_elements(veil_plan *plan, veil_ckks_bootstrap_info *info, veil_error *err)
{
    veil_context *ctx = NULL;
    veil_ckks_encoder *enc = NULL;
    veil_ckks_bootstrapper *bt = NULL;
    uint64_t *all = NULL;
    veil_status st = VEIL_OK;
    const veil_ckks_bootstrap_config cfg = boot_config(plan->train.boot_slots);
    VEIL_CHECK(veil_context_new(&ctx, plan->params, NULL, err));
    VEIL_CHECK(veil_ckks_encoder_new(&enc, ctx, err));
    VEIL_CHECK(veil_ckks_bootstrapper_new(&bt, enc, &cfg, err));
    veil_ckks_bootstrapper_info(bt, info);
    size_t count = 0;
    all = calloc(info->galois_count + 1, sizeof *all);
    plan->train.boot_elements = calloc(info->galois_count + 1, sizeof *plan->train.boot_elements);
    if (!all || !plan->train.boot_elements) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "plan");
    VEIL_CHECK(veil_ckks_bootstrap_galois_elements(bt, all, &count, info->galois_count + 1, err));
    for (size_t i = 0; i < count; i++) {
        int have = 0;
        for (size_t j = 0; j < plan->n_steps && !have; j++)
            have = veil_galois_element_rotation(ctx, plan->steps[j]) == all[i];
        if (!have) plan->train.boot_elements[plan->train.n_boot_elements++] = all[i];
    }
done:
    free(all);
    veil_ckks_bootstrapper_free(bt);
    veil_ckks_encoder_free(enc);
    veil_context_free(ctx);
    return st;
}

/*
 * The time model of one bootstrap (docs/ml.md "Estimates"): about 2 key switches per Galois key it uses (the
 * DFTs' baby and giant steps, SubSum), and the equivalent of 64 for EvalMod's polynomial of degree 147 (its
 * relinearized products and rescales) and the encapsulation, at the middle of bootstrapping's levels.
 * Calibrated on the 30-iteration iDASH run (docs/performance.md): 6.1 s of CPU measured per bootstrap.
 */
static double boot_seconds(const veil_plan_info *in, size_t galois)
{
    const size_t mid = in->q_count - 1 - BOOT_DEPTH / 2;
    return (double)(2 * galois + 64) * veil_key_switch_seconds(in, mid);
}

veil_status veil_train_plan(veil_plan **out, const veil_train_request *req, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(req, err);
    unsigned degree, range;
    veil_status st = check_request(req, &degree, &range, err);
    if (st != VEIL_OK) return st; /* nothing held */
    if (req->security > VEIL_SECURITY_NONE)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "train: unknown security level %d", (int)req->security);
    veil_plan *plan = calloc(1, sizeof *plan);
    if (!plan) return veil_fail(err, VEIL_ERR_NO_MEMORY, "plan");
    const size_t block = veil_train_block(req->features), depth = depth_for(req->task, degree, req->iterations);
    if (req->bootstrap < -1 || req->bootstrap > 1)
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "train: bootstrap is -1, 0 or 1, not %d", req->bootstrap);
    int boot = req->bootstrap == 1;
    if (!boot) {
        veil_error e = {VEIL_OK, ""};
        st = choose_params(&plan->params, &plan->scale_bits, depth, block, req, &e);
        /* no leveled set holds the iterations: bootstrap, unless asked not to */
        if (st == VEIL_ERR_NOT_FOUND && req->bootstrap == 0 && !req->flood) boot = 1;
        else if (st != VEIL_OK) VEIL_FAIL(err, st, "%s", e.detail);
    }
    size_t work = 0;
    if (boot) {
        if (req->flood)
            VEIL_FAIL(err, VEIL_ERR_UNSUPPORTED, "train: flooded weights (a 2^60 scale) with bootstrapping, whose q_0 "
                      "of 50 bits holds scales up to 2^46: not supported; ask for fewer iterations");
        VEIL_CHECK(choose_boot_params(&plan->params, &work, req, req->task, degree, block, err));
        plan->scale_bits = 40;
        plan->train.boot = (uint32_t)work;
    }
    const size_t n = veil_params_degree(plan->params), slots = n / 2;
    if (slots < block)
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "train: %zu slots cannot hold a record of %zu features", slots, req->features);
    plan->packing = VEIL_PACKING_TRAINING;
    plan->slots = slots;
    plan->batch = slots / block;
    plan->in_width = req->features;
    plan->out_width = req->features + 1;
    plan->final_op = (veil_final_op)req->task;
    plan->train.task = req->task;
    plan->train.degree = degree;
    plan->train.range = range;
    train_hash(plan->model_hash, req->task, req->features, degree, range, plan->scale_bits);
    plan->steps = calloc(MAX_TRAIN_STEPS, sizeof *plan->steps);
    if (!plan->steps) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "plan");
    plan->n_steps = train_steps(plan->steps, block, slots);
    veil_ckks_bootstrap_info bi = {0};
    if (boot) {
        plan->train.boot_slots = block;
        VEIL_CHECK(boot_elements(plan, &bi, err));
        plan->train.boot_galois = bi.galois_count;
        if (bi.levels_left != work)
            VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "train: bootstrapping returns to level %zu, the plan expected %zu",
                      bi.levels_left, work);
    }
    veil_plan_info_from_params(plan);
    veil_plan_info *in = &plan->info;
    in->depth = boot ? in->q_count - 1 : depth;
    in->in_ciphertexts = 1; /* per slots/B records, plus one for the scaling */
    in->out_ciphertexts = 2;
    veil_ckks_plan_sizes(plan);
    /* per iteration and ciphertext of records, at the middle level (plan.c's cost model, docs/ml.md): 3 key
     * switches, two window sums of ceil(log4 B) hoisted groups (a key switch and two more rotations' products
     * each), a window sum of ceil(log4 R) groups and 2 key switches shared, and the rescales of the levels */
    const size_t mid = (in->q_count - 1) / 2;
    const size_t groups_b = (log2_exact(block) + 1) / 2, groups_r = (log2_exact(plan->batch) + 1) / 2;
    const double ks = veil_key_switch_seconds(in, mid), group = ks + 2 * veil_hoisted_rotation_seconds(in, mid);
    in->estimated_seconds = ks * 5 + group * (double)(2 * groups_b + groups_r) +
                            veil_rescale_seconds(in, mid) * (double)(2 * per_iteration(req->task, degree));
    /* the server's working set: about a dozen ciphertexts at the top level */
    /* with bootstrapping: its keys, and its encoded DFT diagonals (about 40 plaintexts at the top levels) */
    veil_plan_memory(plan, 1, (double)(1 + veil_ml_plan_galois_count(plan) + (boot ? 1 : 0)), 0,
                     (boot ? 52.0 : 12.0) * veil_ciphertext_memory(plan->params, in->q_count - 1));
    *out = plan;
    plan = NULL;
done:
    veil_plan_free(plan);
    return st;
}

static void fill_info(veil_train_info *info, unsigned task, size_t features, unsigned degree, unsigned range,
                      size_t records, size_t levels, uint32_t boot)
{
    memset(info, 0, sizeof *info);
    info->task = (veil_train_task)task;
    info->features = features;
    info->block = veil_train_block(features);
    info->records_per_ciphertext = records;
    info->degree = degree;
    info->range = range;
    info->depth_per_iteration = per_iteration(task, degree);
    info->max_iterations = max_iterations(task, degree, boot ? train_top(levels, boot) : levels);
    if (boot) {
        info->bootstrap_level = boot;
        info->iterations_per_bootstrap = boot_every(task, degree, boot);
        info->bootstrap_slots = info->block;
        info->max_iterations = BOOT_MAX_ITERATIONS;
    }
    if (task == VEIL_TRAIN_LOGISTIC) sigmoid_fit(degree, range, info->coefficients);
}

veil_status veil_plan_get_train_info(const veil_plan *plan, veil_train_info *info, veil_error *err)
{
    VEIL_REQUIRE(plan, err);
    VEIL_REQUIRE(info, err);
    if (plan->packing != VEIL_PACKING_TRAINING)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "this plan is for inference, not training");
    fill_info(info, plan->train.task, plan->in_width, plan->train.degree, plan->train.range, plan->batch,
              veil_params_q_count(plan->params) - 1, plan->train.boot);
    if (plan->train.boot) {
        info->bootstrap_galois_keys = plan->train.n_boot_elements;
        info->bootstrap_key_bytes = (double)(plan->train.n_boot_elements * veil_switch_key_stored_bytes(plan->params) +
                                             veil_ckks_encapsulation_key_stored_bytes(plan->params));
        info->bootstrap_seconds = boot_seconds(&plan->info, plan->train.boot_galois);
    }
    return VEIL_OK;
}

static veil_status meta_info(const veil_ml_meta *m, const veil_context *ctx, veil_train_info *info, veil_error *err)
{
    if (m->packing != VEIL_PACKING_TRAINING)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "these keys were made for inference, not for training");
    fill_info(info, m->final_op, m->in_width, m->train.degree, m->train.range, (size_t)m->batch,
              veil_context_max_level(ctx), m->train.boot);
    return VEIL_OK;
}

veil_status veil_eval_keys_get_train_info(const veil_eval_keys *keys, veil_train_info *info, veil_error *err)
{
    VEIL_REQUIRE(keys, err);
    VEIL_REQUIRE(info, err);
    return meta_info(&keys->meta, keys->ctx, info, err);
}

veil_status veil_keyset_get_train_info(const veil_keyset *keys, veil_train_info *info, veil_error *err)
{
    VEIL_REQUIRE(keys, err);
    VEIL_REQUIRE(info, err);
    return meta_info(&keys->meta, keys->ctx, info, err);
}

/* ---- the data owner's scaling ------------------------------------------------------------------------ */

/* Each feature (and a linear label) centred on its mean and divided by its largest deviation: [-1, 1]. */
typedef struct scaling {
    double *mean, *dev; /* features + 1: the label's last (linear regression) */
    int declared;       /* from a declared feature range, not the data (DP-GD) */
} scaling;

static void scaling_free(scaling *s)
{
    free(s->mean);
    free(s->dev);
    s->mean = s->dev = NULL;
}

static veil_status check_rows(unsigned task, size_t features, const double *x, const double *y, size_t rows,
                              veil_error *err)
{
    if (rows == 0) return veil_fail(err, VEIL_ERR_ARGUMENT, "train: no rows");
    if (rows > MAX_ROWS) return veil_fail(err, VEIL_ERR_ARGUMENT, "train: %zu rows (at most %zu)", rows, MAX_ROWS);
    for (size_t r = 0; r < rows; r++) {
        for (size_t j = 0; j < features; j++) {
            const double v = x[r * features + j];
            if (!isfinite(v)) return veil_fail(err, VEIL_ERR_ARGUMENT, "train: row %zu, feature %zu is not a finite number", r + 1, j + 1);
            if (fabs(v) > MAX_MAGNITUDE)
                return veil_fail(err, VEIL_ERR_ARGUMENT, "train: row %zu, feature %zu is %g, above 1e12 in magnitude", r + 1, j + 1, v);
        }
        if (!isfinite(y[r])) return veil_fail(err, VEIL_ERR_ARGUMENT, "train: the label of row %zu is not a finite number", r + 1);
        if (task == VEIL_TRAIN_LOGISTIC && y[r] != 0.0 && y[r] != 1.0)
            return veil_fail(err, VEIL_ERR_ARGUMENT, "train: the label of row %zu is %g; logistic regression needs 0 or 1", r + 1, y[r]);
        if (fabs(y[r]) > MAX_MAGNITUDE)
            return veil_fail(err, VEIL_ERR_ARGUMENT, "train: the label of row %zu is above 1e12 in magnitude", r + 1);
    }
    return VEIL_OK;
}

static veil_status scaling_alloc(scaling *s, size_t features, veil_error *err)
{
    s->mean = calloc(features + 1, sizeof *s->mean);
    s->dev = calloc(features + 1, sizeof *s->dev);
    if (s->mean && s->dev) return VEIL_OK;
    scaling_free(s);
    return veil_fail(err, VEIL_ERR_NO_MEMORY, "train: scaling");
}

static veil_status scaling_of(scaling *s, unsigned task, size_t features, const double *x, const double *y, size_t rows,
                              veil_error *err)
{
    veil_status st = VEIL_OK;
    VEIL_CHECK(scaling_alloc(s, features, err));
    for (size_t j = 0; j <= features; j++) {
        const int label = j == features;
        if (label && task != VEIL_TRAIN_LINEAR) {
            s->mean[j] = 0;
            s->dev[j] = 1;
            continue;
        }
        double sum = 0;
        for (size_t r = 0; r < rows; r++) sum += label ? y[r] : x[r * features + j];
        const double mean = sum / (double)rows;
        double dev = 0;
        for (size_t r = 0; r < rows; r++) dev = fmax(dev, fabs((label ? y[r] : x[r * features + j]) - mean));
        if (!(dev > 1e-12 * fmax(1.0, fabs(mean)))) {
            scaling_free(s);
            if (label) VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "train: the label has no variance (every row has %g)", mean);
            VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "train: feature %zu has no variance (every row has %g): drop it", j + 1,
                      mean);
        }
        s->mean[j] = mean;
        s->dev[j] = dev;
    }
done:
    return st; /* on failure nothing is held (scaling_alloc frees what it made) */
}

/* Record r's block in layout A: (1, scaled x_r), times 2y - 1 for logistic regression. */
static void record_values(double *out, unsigned task, size_t features, const scaling *s, const double *x, double y)
{
    const double sign = task == VEIL_TRAIN_LOGISTIC ? 2 * y - 1 : 1;
    out[0] = sign;
    for (size_t j = 0; j < features; j++) out[1 + j] = sign * (x[j] - s->mean[j]) / s->dev[j];
}

/* Weights on scaled features (bias first) to weights on raw ones. */
static void unscale(double *w, unsigned task, size_t features, const scaling *s)
{
    const double ym = task == VEIL_TRAIN_LINEAR ? s->mean[features] : 0, yd = task == VEIL_TRAIN_LINEAR ? s->dev[features] : 1;
    double bias = w[0];
    for (size_t j = 0; j < features; j++) {
        bias -= w[1 + j] * s->mean[j] / s->dev[j];
        w[1 + j] = yd * w[1 + j] / s->dev[j];
    }
    w[0] = ym + yd * bias;
}

/* ---- the schedule, shared by the encrypted and the plaintext runs --------------------------------------- */

typedef struct step_constants {
    double k;       /* the gradient's factor: lr/n (1 - eta) (logistic); -lr/n (linear, on the residual) */
    double eta;     /* Nesterov's momentum of this iteration (0 for the last, and for linear regression) */
    double shrink;  /* 1 - lr l2 */
} step_constants;

/* lambda_1 = 1, lambda_{t+1} = (1 + sqrt(1 + 4 lambda_t^2)) / 2, eta_t = (1 - lambda_{t+1}) / lambda_{t+2} (eta_0 = 0). */
static void schedule(step_constants *c, size_t iterations, unsigned task, double lr, double l2, size_t rows)
{
    double lambda = 1.0;
    for (size_t t = 0; t < iterations; t++) {
        const double next = (1 + sqrt(1 + 4 * lambda * lambda)) / 2;
        c[t].eta = task == VEIL_TRAIN_LOGISTIC && t + 1 < iterations ? (1 - lambda) / next : 0;
        c[t].shrink = 1 - lr * l2;
        c[t].k = task == VEIL_TRAIN_LOGISTIC ? lr / (double)rows * (1 - c[t].eta) : -lr / (double)rows;
        lambda = next;
    }
}

static veil_status check_options(const veil_train_options *o, double *lr, veil_error *err)
{
    *lr = o->learning_rate ? o->learning_rate : DEFAULT_LEARNING_RATE;
    if (!isfinite(*lr) || *lr <= 0 || *lr > 1000)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "train: the learning rate must be in (0, 1000], not %g", *lr);
    if (!isfinite(o->l2) || o->l2 < 0 || *lr * o->l2 >= 1)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "train: the L2 strength must be >= 0 with lr * l2 < 1, not %g", o->l2);
    return VEIL_OK;
}

/* ---- plaintext reference ------------------------------------------------------------------------------- */

veil_status veil_train_run_plain(double *weights, const veil_train_request *req, const veil_train_options *opts,
                                 const double *x, const double *y, size_t rows, double *t_max, veil_error *err)
{
    VEIL_REQUIRE(weights, err);
    VEIL_REQUIRE(req, err);
    VEIL_REQUIRE(opts, err);
    VEIL_REQUIRE(x, err);
    VEIL_REQUIRE(y, err);
    unsigned degree, range;
    double lr;
    const veil_train_request one = {.task = req->task, .features = req->features, .iterations = 1,
                                    .degree = req->degree, .range = req->range};
    veil_status st = VEIL_OK;
    scaling s = {0};
    double *z = NULL, *v = NULL, *w = NULL, *g = NULL, *wn = NULL, *ys = NULL;
    step_constants *c = NULL;
    VEIL_CHECK(check_request(&one, &degree, &range, err));
    VEIL_CHECK(check_options(opts, &lr, err));
    if (opts->iterations < 1 || opts->iterations > 1000)
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "train_plain: give the iterations (1 to 1000)");
    VEIL_CHECK(check_rows(req->task, req->features, x, y, rows, err));
    VEIL_CHECK(scaling_of(&s, req->task, req->features, x, y, rows, err));
    const size_t F = req->features, K = opts->iterations, W = F + 1;
    z = malloc(rows * W * sizeof *z), v = calloc(W, sizeof *v), w = calloc(W, sizeof *w);
    g = calloc(W, sizeof *g), wn = calloc(W, sizeof *wn), ys = malloc(rows * sizeof *ys);
    c = calloc(K, sizeof *c);
    if (!z || !v || !w || !g || !wn || !ys || !c) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "train_plain");
    for (size_t r = 0; r < rows; r++) {
        record_values(z + r * W, req->task, F, &s, x + r * F, y[r]);
        ys[r] = req->task == VEIL_TRAIN_LINEAR ? (y[r] - s.mean[F]) / s.dev[F] : 0;
    }
    schedule(c, K, req->task, lr, opts->l2, rows);
    double coef[4];
    if (req->task == VEIL_TRAIN_LOGISTIC) sigmoid_fit(degree, range, coef);
    double tm = 0;
    for (size_t t = 0; t < K; t++) {
        memset(g, 0, W * sizeof *g);
        for (size_t r = 0; r < rows; r++) {
            double dot = 0;
            for (size_t j = 0; j < W; j++) dot += z[r * W + j] * v[j];
            tm = fmax(tm, fabs(dot));
            double e;
            if (req->task == VEIL_TRAIN_LOGISTIC) {
                double q = 0, p = dot;
                for (size_t i = 0; i < (degree + 1) / 2; i++, p *= dot * dot) q += coef[i] * p;
                e = 0.5 - q; /* sigmoid(-dot) */
            } else {
                e = dot - ys[r];
            }
            for (size_t j = 0; j < W; j++) g[j] += e * z[r * W + j];
        }
        /* w_{t+1} = shrink v_t + G_t (G_t = k g / (1 - eta)); v_{t+1} = (1 - eta) w_{t+1} + eta w_t */
        for (size_t j = 0; j < W; j++) {
            wn[j] = c[t].shrink * v[j] + c[t].k * g[j] / (1 - c[t].eta);
            v[j] = (1 - c[t].eta) * wn[j] + c[t].eta * w[j];
            w[j] = wn[j];
        }
    }
    memcpy(weights, w, W * sizeof *w);
    unscale(weights, req->task, F, &s);
    if (t_max) *t_max = tm;
done:
    free(z), free(v), free(w), free(g), free(wn), free(ys), free(c);
    scaling_free(&s);
    return st;
}

/* ---- encryption ------------------------------------------------------------------------------------------ */

/* The scaling as (mantissa, exponent) pairs: the values span far more than one CKKS scale can hold. */
/* Slot 4 (F + 1) of the scaling ciphertext: 1 when the scaling is a declared range (DP-GD), else 0. */
static void scaling_pack(double *out, const scaling *s, size_t features)
{
    out[4 * (features + 1)] = s->declared;
    for (size_t j = 0; j <= features; j++) {
        int e;
        out[4 * j] = frexp(s->mean[j], &e);
        out[4 * j + 1] = e;
        out[4 * j + 2] = frexp(s->dev[j], &e);
        out[4 * j + 3] = e;
    }
}

static veil_status scaling_unpack(scaling *s, const double *in, size_t features, veil_error *err)
{
    veil_status st = VEIL_OK;
    VEIL_CHECK(scaling_alloc(s, features, err));
    for (size_t j = 0; j <= features; j++) {
        /* frexp mantissas: |m| in [0.5, 1) (0 for a zero mean); means within 1e12, deviations in [1e-12, 2e12] */
        const double e1 = round(in[4 * j + 1]), e2 = round(in[4 * j + 3]), m1 = in[4 * j], m2 = in[4 * j + 2];
        const double mean = ldexp(m1, (int)fmax(-200, fmin(200, e1))), dev = ldexp(m2, (int)fmax(-200, fmin(200, e2)));
        if (!isfinite(e1) || !isfinite(e2) || !isfinite(m1) || !isfinite(m2) || fabs(e1) > 200 || fabs(e2) > 200 ||
            fabs(m1) > 1.01 || !(m2 >= 0.49 && m2 <= 1.01) || !(fabs(mean) <= 2e12) || !(dev >= 0.5e-12 && dev <= 4e12)) {
            scaling_free(s);
            VEIL_FAIL(err, VEIL_ERR_MISMATCH, "train: the scaling does not decrypt (other keys?)");
        }
        s->mean[j] = mean;
        s->dev[j] = dev;
    }
    s->declared = fabs(in[4 * (features + 1)] - 1.0) < 0.25; /* CKKS's error is far below 1/4 */
done:
    return st;
}

static veil_status encrypt_with(veil_ciphertexts **out, const veil_keyset *k, const double *x, const double *y,
                                size_t rows, const double *range, veil_prng *prng, veil_error *err);

veil_status veil_train_encrypt(veil_ciphertexts **out, const veil_keyset *k, const double *x, const double *y,
                               size_t rows, veil_prng *prng, veil_error *err)
{
    return encrypt_with(out, k, x, y, rows, NULL, prng, err);
}

static veil_status encrypt_ranged(veil_ciphertexts **out, const veil_keyset *k, const double *x, const double *y,
                                  size_t rows, const double *lo, const double *hi, double label_lo, double label_hi,
                                  veil_prng *prng, veil_error *err);

veil_status veil_train_encrypt_ranged(veil_ciphertexts **out, const veil_keyset *k, const double *x,
                                      const double *y, size_t rows, const double *lo, const double *hi,
                                      veil_prng *prng, veil_error *err)
{
    VEIL_REQUIRE(k, err);
    const size_t F = k->meta.in_width;
    if (F > MAX_FEATURES) return veil_fail(err, VEIL_ERR_MISMATCH, "train: these keys are not for training");
    if (k->meta.final_op == VEIL_TRAIN_LINEAR)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "train: linear regression's declared ranges include the label's "
                         "(veil_train_encrypt_ranged_labels; veil encrypt --label-range LO:HI)");
    return encrypt_ranged(out, k, x, y, rows, lo, hi, NAN, NAN, prng, err);
}

veil_status veil_train_encrypt_ranged_labels(veil_ciphertexts **out, const veil_keyset *k, const double *x,
                                             const double *y, size_t rows, const double *lo, const double *hi,
                                             double label_lo, double label_hi, veil_prng *prng, veil_error *err)
{
    VEIL_REQUIRE(k, err);
    if (k->meta.final_op != VEIL_TRAIN_LINEAR)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "train: a label range is for linear regression (logistic "
                         "regression's labels are 0 and 1)");
    if (!isfinite(label_lo) || !isfinite(label_hi) || !(label_lo < label_hi) || fabs(label_lo) > MAX_MAGNITUDE ||
        fabs(label_hi) > MAX_MAGNITUDE)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "train: the label's declared range [%g, %g] is not LO < HI, finite",
                         label_lo, label_hi);
    return encrypt_ranged(out, k, x, y, rows, lo, hi, label_lo, label_hi, prng, err);
}

/* The features' declared ranges checked, then the label's pair after them (NaN: none, logistic regression). */
static veil_status encrypt_ranged(veil_ciphertexts **out, const veil_keyset *k, const double *x, const double *y,
                                  size_t rows, const double *lo, const double *hi, double label_lo, double label_hi,
                                  veil_prng *prng, veil_error *err)
{
    VEIL_REQUIRE(lo, err);
    VEIL_REQUIRE(hi, err);
    const size_t F = k->meta.in_width;
    if (F > MAX_FEATURES) return veil_fail(err, VEIL_ERR_MISMATCH, "train: these keys are not for training");
    double range[2 * (MAX_FEATURES + 2)];
    range[2 * F] = label_lo;
    range[2 * F + 1] = label_hi;
    for (size_t j = 0; j < F; j++) {
        if (!isfinite(lo[j]) || !isfinite(hi[j]) || !(lo[j] < hi[j]) || fabs(lo[j]) > MAX_MAGNITUDE ||
            fabs(hi[j]) > MAX_MAGNITUDE)
            return veil_fail(err, VEIL_ERR_ARGUMENT, "train: feature %zu's declared range [%g, %g] is not LO < HI, "
                             "finite", j + 1, lo[j], hi[j]);
        range[2 * j] = lo[j];
        range[2 * j + 1] = hi[j];
    }
    return encrypt_with(out, k, x, y, rows, range, prng, err);
}

/* Every feature from its declared range (range[2j], range[2j + 1]); linear regression's label from the pair after
 * them (range[2F], range[2F + 1]); logistic regression's label needs none. */
static veil_status scaling_declared(scaling *s, unsigned task, size_t features, const double *x, const double *y,
                                    size_t rows, const double *range, veil_error *err)
{
    veil_status st = VEIL_OK;
    const int linear = task == VEIL_TRAIN_LINEAR;
    if (linear && !(range[2 * features] < range[2 * features + 1]))
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "train: linear regression's declared ranges need the label's");
    for (size_t r = 0; linear && r < rows; r++)
        if (y[r] < range[2 * features] || y[r] > range[2 * features + 1])
            VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "train: the label of row %zu is %g, outside its declared range [%g, %g] "
                      "that bounds each record's contribution: nothing encrypted", r + 1, y[r], range[2 * features],
                      range[2 * features + 1]);
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < features; j++)
            if (x[r * features + j] < range[2 * j] || x[r * features + j] > range[2 * j + 1])
                VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "train: row %zu, feature %zu is %g, outside its declared range "
                          "[%g, %g] that bounds each record's contribution: nothing encrypted", r + 1, j + 1,
                          x[r * features + j], range[2 * j], range[2 * j + 1]);
    VEIL_CHECK(scaling_alloc(s, features, err));
    for (size_t j = 0; j < features; j++) {
        s->mean[j] = (range[2 * j] + range[2 * j + 1]) / 2;
        s->dev[j] = (range[2 * j + 1] - range[2 * j]) / 2;
    }
    s->mean[features] = linear ? (range[2 * features] + range[2 * features + 1]) / 2 : 0;
    s->dev[features] = linear ? (range[2 * features + 1] - range[2 * features]) / 2 : 1;
    s->declared = 1;
done:
    return st;
}

static veil_status encrypt_with(veil_ciphertexts **out, const veil_keyset *k, const double *x, const double *y,
                                size_t rows, const double *range, veil_prng *prng, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(k, err);
    VEIL_REQUIRE(x, err);
    VEIL_REQUIRE(y, err);
    if (k->meta.packing != VEIL_PACKING_TRAINING)
        return veil_fail(err, VEIL_ERR_MISMATCH, "train: these keys were made for inference, not for training");
    const unsigned task = k->meta.final_op;
    const size_t F = k->meta.in_width, B = veil_train_block(F), R = (size_t)k->meta.batch, slots = (size_t)k->meta.slots;
    veil_status st = VEIL_OK;
    scaling s = {0};
    veil_ckks_encoder *enc = NULL;
    veil_ckks_plaintext *pt = NULL;
    veil_ciphertexts *set = NULL;
    double *v = NULL, *sum = NULL, rec[MAX_FEATURES + 1];
    VEIL_CHECK(check_rows(task, F, x, y, rows, err));
    if (range) VEIL_CHECK(scaling_declared(&s, task, F, x, y, rows, range, err));
    else VEIL_CHECK(scaling_of(&s, task, F, x, y, rows, err));
    veil_ml_meta meta = k->meta;
    meta.kind = VEIL_SET_TRAIN_DATA;
    meta.rows = rows;
    meta.width = (uint32_t)F;
    if (meta.train.boot && (size_t)meta.train.boot + 1 > veil_context_max_level(k->ctx))
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "train: the keys' bootstrapping level is above their parameters'");
    const size_t nct = (rows + R - 1) / R, count = veil_train_data_count(&meta);
    const size_t top = train_top(veil_context_max_level(k->ctx), meta.train.boot), stats_level = top < STATS_LEVEL ? top : STATS_LEVEL;
    const double scale = ldexp(1.0, (int)meta.scale_bits);
    v = calloc(slots, sizeof *v);
    if (!v) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "train: encrypt");
    if (4 * (F + 1) + 1 > slots) VEIL_FAIL(err, VEIL_ERR_UNSUPPORTED, "train: too many features for the slots");
    VEIL_CHECK(veil_ckks_encoder_new(&enc, k->ctx, err));
    VEIL_CHECK(veil_ckks_plaintext_new(&pt, k->ctx, err));
    VEIL_CHECK(veil_ciphertexts_alloc(&set, k->ctx, &meta, count, err));
    sum = calloc(F + 1, sizeof *sum);
    if (!sum) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "train: encrypt");
    for (size_t r = 0; r < rows; r++) { /* logistic: mean of z_r; linear: mean of y_r z_r */
        record_values(rec, task, F, &s, x + r * F, y[r]);
        const double f = task == VEIL_TRAIN_LINEAR ? (y[r] - s.mean[F]) / s.dev[F] : 1.0;
        for (size_t j = 0; j <= F; j++) sum[j] += f * rec[j] / (double)rows;
    }
    for (size_t i = 0; i < count; i++) {
        memset(v, 0, slots * sizeof *v);
        size_t level = top;
        if (i == count - 1) {
            scaling_pack(v, &s, F);
            level = stats_level;
        } else if (i == count - 2) {
            for (size_t b = 0; b < R; b++) memcpy(v + b * B, sum, (F + 1) * sizeof *v); /* replicated, layout A */
        } else {
            /* layout A: record r at rB; layout X (A rotated left by B - 1): at rB - B + 1, cyclically */
            const int x_layout = i >= nct;
            const size_t c = i % nct, first = c * R, n = rows - first < R ? rows - first : R;
            for (size_t r = 0; r < n; r++)
                record_values(v + (x_layout ? (r * B + slots - B + 1) % slots : r * B), task, F, &s, x + (first + r) * F,
                              y[first + r]);
            level = x_layout ? level_x(top, task, meta.train.degree) : level_a(top);
        }
        VEIL_CHECK(veil_ckks_encode(enc, pt, v, NULL, slots, scale, level, err));
        /* a joint key set (multi-party keys, veil/party.h) holds only the joint public key */
        if (k->sk) VEIL_CHECK(veil_ckks_encrypt_sk(k->ctx, set->cts[i], pt, k->sk, prng, err));
        else VEIL_CHECK(veil_ckks_encrypt_pk(k->ctx, set->cts[i], pt, k->pk, prng, err));
    }
    *out = set;
    set = NULL;
done:
    if (sum) sodium_memzero(sum, (F + 1) * sizeof *sum);
    free(sum);
    sodium_memzero(rec, sizeof rec);
    sodium_memzero(v, v ? slots * sizeof *v : 0);
    free(v);
    scaling_free(&s);
    veil_ckks_plaintext_free(pt);
    veil_ckks_encoder_free(enc);
    veil_ciphertexts_free(set);
    return st;
}

/* ---- the server's training ----------------------------------------------------------------------------- */

typedef struct trainer {
    const veil_context *ctx;
    const veil_switch_key *relin;
    const veil_eval_keys *keys; /* the Galois keys of train_steps */
    veil_ckks_encoder *enc;
    unsigned task, degree;
    double scale;           /* 2^scale_bits: where every iteration brings its values back */
    size_t slots, block, records, nct, rows, features;
    size_t first, end; /* this process's ciphertexts of records: first .. end - 1 of the nct (all when alone) */
    const veil_train_split *split; /* NULL: alone */
    double coef[4];
    int threads;
    /* DP-GD: noise N_Z(0, num/den) * resolution on each coordinate of the gradient sum, every iteration */
    int dp;
    uint64_t dp_num, dp_den;
    double dp_resolution;
    veil_prng *dp_prng;
    /* bootstrapping (keys made past the leveled limit): every `boot_every` iterations, the weights times
     * 1 / boot_shift[t] (a power of two at least their guaranteed bound) are bootstrapped, then multiplied back */
    veil_ckks_bootstrapper *bt;
    size_t boot_every;
    double *boot_shift;
} trainer;

typedef veil_ckks_ciphertext ct_t;

static veil_status ct_new(ct_t **c, const trainer *tr, veil_error *err) { return veil_ckks_ciphertext_new(c, tr->ctx, err); }

static veil_status copy_ct(const trainer *tr, ct_t *out, const ct_t *a, veil_error *err)
{
    return veil_ckks_mod_drop(tr->ctx, out, a, veil_ckks_ciphertext_level(a), err);
}

static const veil_switch_key *find_rotation(const veil_eval_keys *k, long step)
{
    const uint64_t e = veil_galois_element_rotation(k->ctx, step);
    for (size_t i = 0; i < k->n_galois; i++)
        if (veil_switch_key_galois_element(k->galois[i]) == e) return k->galois[i];
    return NULL;
}

/* a = sum of rot(a, m stride) for m < 2^count (slot i sums a[i .. i + 2^count stride) by stride), in place. */
static veil_status window_sum(const trainer *tr, ct_t *a, size_t stride, size_t count, veil_error *err)
{
    long steps[3];
    veil_status st = VEIL_OK;
    for (size_t g = 0, k; (k = window_group(steps, stride, count, g)) > 0; g++) {
        const veil_switch_key *keys[3];
        for (size_t i = 0; i < k; i++) keys[i] = find_rotation(tr->keys, steps[i]); /* checked before the run */
        VEIL_CHECK(veil_ckks_rotate_sum(tr->ctx, a, a, steps, k, keys, err));
    }
done:
    return st;
}

static veil_status mul_relin_rescale(const trainer *tr, ct_t *out, const ct_t *a, const ct_t *b, veil_error *err)
{
    return veil_ckks_mul_relin_rescale(tr->ctx, out, a, b, tr->relin, err);
}

/*
 * out = a masked to the slots rB (r < records), times alpha: one level. The mask is encoded at q_l times
 * 2^scale_bits / a's scale, so that out lands exactly on 2^scale_bits: the primes are not exactly 2^scale_bits,
 * and without this the scale's drift would be cubed by the polynomial in every iteration (with 32-bit
 * primes at N = 2^16 it reached 2^56 by the seventh iteration and overflowed the last level).
 */
static veil_status mask(const trainer *tr, ct_t *out, const ct_t *a, double alpha, veil_error *err)
{
    const size_t level = veil_ckks_ciphertext_level(a);
    double *m = calloc(tr->slots, sizeof *m);
    if (!m) return veil_fail(err, VEIL_ERR_NO_MEMORY, "train: mask");
    for (size_t r = 0; r < tr->records; r++) m[r * tr->block] = alpha;
    veil_ckks_plaintext *pt = NULL;
    veil_status st = VEIL_OK;
    const double q = (double)veil_params_q(veil_context_params(tr->ctx), level);
    VEIL_CHECK(veil_ckks_plaintext_new(&pt, tr->ctx, err));
    VEIL_CHECK(veil_ckks_encode(tr->enc, pt, m, NULL, tr->slots, q * tr->scale / veil_ckks_ciphertext_scale(a), level,
                                err));
    VEIL_CHECK(veil_ckks_mul_plain(tr->ctx, out, a, pt, err));
    VEIL_CHECK(veil_ckks_rescale(tr->ctx, out, out, err));
done:
    veil_ckks_plaintext_free(pt);
    free(m);
    return st;
}

/* The signed real d-th root (d odd). */
static double odd_root(double x, unsigned d) { return x < 0 ? -pow(-x, 1.0 / d) : pow(x, 1.0 / d); }

/*
 * p = -k q(t) for t' = alpha t held in tp (alpha = (-k a_d)^(1/d), so that the leading coefficient is 1):
 * -k q(t) = t' (b0 + b1 s + ... + s^(d-1)/2), s = t'^2, b_i = -k a_(2i+1) / alpha^(2i+1).
 * Degree 3: 2 levels; 5: 3 levels; 7: 4 levels.
 */
static veil_status odd_polynomial(const trainer *tr, ct_t *p, const ct_t *tp, double alpha, double k, ct_t *s, ct_t *s2,
                                  ct_t *tmp, veil_error *err)
{
    double b[4];
    for (unsigned i = 0; i < (tr->degree + 1) / 2; i++) b[i] = -k * tr->coef[i] / pow(alpha, 2.0 * i + 1);
    veil_status st = VEIL_OK;
    VEIL_CHECK(mul_relin_rescale(tr, s, tp, tp, err));
    if (tr->degree == 3) {
        VEIL_CHECK(veil_ckks_add_constant(tr->ctx, s, s, b[0], err));
        VEIL_CHECK(mul_relin_rescale(tr, p, s, tp, err));
        goto done;
    }
    VEIL_CHECK(mul_relin_rescale(tr, s2, s, s, err));
    if (tr->degree == 5) {
        VEIL_CHECK(veil_ckks_mul_constant_to_scale(tr->ctx, tmp, s, b[1], veil_ckks_ciphertext_scale(s2), err));
        VEIL_CHECK(veil_ckks_add(tr->ctx, s2, s2, tmp, err));
        VEIL_CHECK(veil_ckks_add_constant(tr->ctx, s2, s2, b[0], err));
        VEIL_CHECK(mul_relin_rescale(tr, p, s2, tp, err));
        goto done;
    }
    VEIL_CHECK(veil_ckks_add_constant(tr->ctx, tmp, s, b[2], err)); /* (s + b2) s^2 + b1 s + b0 */
    VEIL_CHECK(mul_relin_rescale(tr, p, tmp, s2, err));
    VEIL_CHECK(veil_ckks_mul_constant_to_scale(tr->ctx, tmp, s, b[1], veil_ckks_ciphertext_scale(p), err));
    VEIL_CHECK(veil_ckks_add(tr->ctx, p, p, tmp, err));
    VEIL_CHECK(veil_ckks_add_constant(tr->ctx, p, p, b[0], err));
    VEIL_CHECK(mul_relin_rescale(tr, p, p, tp, err));
done:
    return st;
}

/*
 * One ciphertext of records, steps 1-5 up to the product with Z_X (left unrelinearized in prod):
 * logistic: -k q(z_r . v) z_r; linear: alpha (z_r . v) z_r (the labels' part is added once, outside).
 */
static veil_status record_terms(const trainer *tr, ct_t *prod, const ct_t *za, const ct_t *zx, const ct_t *v, double k,
                                veil_error *err)
{
    ct_t *u = NULL, *tp = NULL, *s = NULL, *s2 = NULL, *tmp = NULL, *p = NULL;
    const size_t lb = log2_exact(tr->block);
    double alpha = k;
    if (tr->task == VEIL_TRAIN_LOGISTIC) alpha = odd_root(-k * tr->coef[(tr->degree - 1) / 2], tr->degree);
    veil_status st = VEIL_OK;
    VEIL_CHECK(ct_new(&u, tr, err));
    VEIL_CHECK(ct_new(&tp, tr, err));
    VEIL_CHECK(ct_new(&s, tr, err));
    VEIL_CHECK(ct_new(&s2, tr, err));
    VEIL_CHECK(ct_new(&tmp, tr, err));
    VEIL_CHECK(ct_new(&p, tr, err));
    VEIL_CHECK(mul_relin_rescale(tr, u, za, v, err));
    VEIL_CHECK(window_sum(tr, u, 1, lb, err));
    VEIL_CHECK(mask(tr, tp, u, alpha, err));
    if (tr->task == VEIL_TRAIN_LOGISTIC) VEIL_CHECK(odd_polynomial(tr, p, tp, alpha, k, s, s2, tmp, err));
    else VEIL_CHECK(copy_ct(tr, p, tp, err));
    VEIL_CHECK(window_sum(tr, p, 1, lb, err));
    VEIL_CHECK(veil_ckks_mul(tr->ctx, prod, p, zx, err));
done:
    veil_ckks_ciphertext_free(u);
    veil_ckks_ciphertext_free(tp);
    veil_ckks_ciphertext_free(s);
    veil_ckks_ciphertext_free(s2);
    veil_ckks_ciphertext_free(tmp);
    veil_ckks_ciphertext_free(p);
    return st;
}

/*
 * Split training: acc (this process's partial sum; have: whether it has one) += the other processes' partial
 * sums, exchanged serialized (veil_train_split). Every part must have acc's level, size and scale exactly:
 * the additions are then exact, and every process holds the one-process sum.
 */
static veil_status sum_over_parts(const trainer *tr, ct_t *acc, int have, veil_error *err)
{
    const veil_train_split *sp = tr->split;
    veil_buffer mine = {0}, *all = calloc(sp->parts, sizeof *all);
    ct_t *part = NULL;
    veil_status st = VEIL_OK;
    if (!all) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "train: split");
    if (have) VEIL_CHECK(veil_ckks_ciphertext_save(&mine, acc, 0, err));
    if (sp->exchange(sp->arg, &mine, all) != 0)
        VEIL_FAIL(err, VEIL_ERR_IO, "train: process %zu of %zu: the exchange of the gradient parts failed", sp->part,
                  sp->parts);
    for (size_t p = 0; p < sp->parts; p++) {
        if (p == sp->part || all[p].len == 0) continue;
        veil_ckks_ciphertext_free(part);
        part = NULL;
        veil_error why = {0}; /* its own detail: err's is formatted from it */
        if (veil_ckks_ciphertext_load(&part, tr->ctx, all[p].data, all[p].len, &why) != VEIL_OK)
            VEIL_FAIL(err, VEIL_ERR_FORMAT, "train: the gradient part of process %zu: %s", p, why.detail);
        if (!have) {
            VEIL_CHECK(copy_ct(tr, acc, part, err));
            have = 1;
            continue;
        }
        if (veil_ckks_ciphertext_level(part) != veil_ckks_ciphertext_level(acc) ||
            veil_ckks_ciphertext_size(part) != veil_ckks_ciphertext_size(acc) ||
            veil_ckks_ciphertext_scale(part) != veil_ckks_ciphertext_scale(acc))
            VEIL_FAIL(err, VEIL_ERR_MISMATCH, "train: the gradient part of process %zu is at another level, size or "
                      "scale than this one's (the processes do not train on the same data and options)", p);
        VEIL_CHECK(veil_ckks_add(tr->ctx, acc, acc, part, err));
    }
    if (!have) VEIL_FAIL(err, VEIL_ERR_INTERNAL, "train: no process had records");
done:
    veil_ckks_ciphertext_free(part);
    veil_buffer_free(&mine);
    for (size_t p = 0; all && p < sp->parts; p++) veil_buffer_free(&all[p]);
    free(all);
    return st;
}

/*
 * Sums this process's size-3 products (n of them), and the other processes' when split; relinearizes,
 * rescales, sums over records, back to layout A.
 */
static veil_status reduce_records(const trainer *tr, ct_t *out, ct_t *const *prods, size_t n, veil_error *err)
{
    veil_status st = VEIL_OK;
    if (n) VEIL_CHECK(copy_ct(tr, out, prods[0], err));
    for (size_t c = 1; c < n; c++) VEIL_CHECK(veil_ckks_add(tr->ctx, out, out, prods[c], err));
    if (tr->split && tr->split->parts > 1) VEIL_CHECK(sum_over_parts(tr, out, n > 0, err));
    VEIL_CHECK(veil_ckks_relinearize(tr->ctx, out, out, tr->relin, err));
    VEIL_CHECK(veil_ckks_rescale(tr->ctx, out, out, err));
    VEIL_CHECK(window_sum(tr, out, tr->block, log2_exact(tr->slots / tr->block), err));
    VEIL_CHECK(veil_ckks_rotate(tr->ctx, out, out, 1, find_rotation(tr->keys, 1), err));
done:
    return st;
}

/* record_terms into a new ciphertext *out (freed by the caller, also on failure). */
static veil_status record_terms_new(const trainer *tr, ct_t **out, const ct_t *za, const ct_t *zx, const ct_t *v,
                                    double k, veil_error *err)
{
    veil_status st = VEIL_OK;
    VEIL_CHECK(veil_ckks_ciphertext_new(out, tr->ctx, err));
    VEIL_CHECK(record_terms(tr, *out, za, zx, v, k, err));
done:
    return st;
}

/*
 * The gradient part that needs the records: over this process's ciphertexts (all of them when alone; in
 * parallel), then reduced (with the other processes' when split).
 */
static veil_status gradient_terms(const trainer *tr, ct_t *out, ct_t *const *za, ct_t *const *zx, const ct_t *v, double k,
                                  veil_error *err)
{
    const size_t n = tr->end - tr->first;
    ct_t **prods = calloc(n ? n : 1, sizeof *prods);
    if (!prods) return veil_fail(err, VEIL_ERR_NO_MEMORY, "train");
    veil_status st = VEIL_OK;
    VEIL_PARALLEL_PARTS(n, tr->threads, err,
                        record_terms_new(tr, &prods[part], za[tr->first + part], zx[tr->first + part], v, k, &e_));
    if (st != VEIL_OK) goto done;
    VEIL_CHECK(reduce_records(tr, out, prods, n, err));
done:
    for (size_t c = 0; c < n; c++) veil_ckks_ciphertext_free(prods[c]);
    free(prods);
    return st;
}

/* acc += c * a at acc's scale (a at a higher level: the product's level is not acc's bottleneck). */
static veil_status add_scaled(const trainer *tr, ct_t *acc, const ct_t *a, double c, ct_t *tmp, veil_error *err)
{
    if (c == 0) return VEIL_OK;
    veil_status st = VEIL_OK;
    VEIL_CHECK(veil_ckks_mul_constant_to_scale(tr->ctx, tmp, a, c, veil_ckks_ciphertext_scale(acc), err));
    VEIL_CHECK(veil_ckks_add(tr->ctx, acc, acc, tmp, err));
done:
    return st;
}

/*
 * DP-GD: g += k N, N a fresh vector of the discrete Gaussian on the gradient sum's F + 1 coordinates, the same
 * vector in every record's block (the gradient sum is replicated over the blocks in layout A).
 */
static veil_status add_gradient_noise(const trainer *tr, ct_t *g, double k, size_t features, veil_error *err)
{
    veil_status st = VEIL_OK;
    veil_ckks_plaintext *pt = NULL;
    int64_t z[MAX_FEATURES + 1];
    double *v = calloc(tr->slots, sizeof *v);
    if (!v) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "train: noise");
    VEIL_CHECK(veil_sample_discrete_gaussian(z, features + 1, tr->dp_num, tr->dp_den, tr->dp_prng, err));
    for (size_t b = 0; b < tr->records; b++)
        for (size_t j = 0; j <= features; j++) v[b * tr->block + j] = k * (double)z[j] * tr->dp_resolution;
    VEIL_CHECK(veil_ckks_plaintext_new(&pt, tr->ctx, err));
    VEIL_CHECK(veil_ckks_encode(tr->enc, pt, v, NULL, tr->slots, veil_ckks_ciphertext_scale(g),
                                veil_ckks_ciphertext_level(g), err));
    VEIL_CHECK(veil_ckks_add_plain(tr->ctx, g, g, pt, err));
done:
    veil_wipe(z, sizeof z);
    if (v) veil_wipe(v, tr->slots * sizeof *v);
    free(v);
    veil_ckks_plaintext_free(pt);
    return st;
}

typedef struct train_state {
    ct_t *v, *v_prev, *g_prev; /* v_t, v_{t-1}, and G'_{t-1} (the previous gradient step, times 1 - eta) */
    int have_prev;
    ct_t *w; /* after a bootstrap: w_t, bootstrapped (it replaces v_{t-1} and G'_{t-1} in this iteration) */
} train_state;

/*
 * One iteration t from v_t (v = NULL: t = 0, w_0 = v_0 = 0):
 *   G'_t = k_t (sum of the record terms + 1/2 sum z)   (logistic; k_t = lr/n (1 - eta_t))
 *   G'_t = k_t (sum of (z.v) z - sum y z)               (linear; k_t = -lr/n, eta_t = 0)
 *   w_{t+1} = shrink v_t + G'_t / (1 - eta_t)
 *   v_{t+1} = (1 - eta_t) w_{t+1} + eta_t w_t,  w_t = shrink_{t-1} v_{t-1} + G'_{t-1} / (1 - eta_{t-1})
 */
static veil_status iterate(const trainer *tr, train_state *s, ct_t *const *za, ct_t *const *zx, ct_t *const *cst,
                           const size_t *cst_rows, size_t n_sets, const step_constants *c, size_t t, veil_error *err)
{
    ct_t *g = NULL, *tmp = NULL, *next = NULL;
    veil_status st = VEIL_OK;
    VEIL_CHECK(ct_new(&g, tr, err));
    VEIL_CHECK(ct_new(&tmp, tr, err));
    VEIL_CHECK(ct_new(&next, tr, err));
    if (t > 0) VEIL_CHECK(gradient_terms(tr, g, za, zx, s->v, c[t].k, err));
    for (size_t h = 0; h < n_sets; h++) {
        /* each set's constant part is a mean over its n_h records (so that this factor stays near lr, not lr / n) */
        const double n = (double)cst_rows[h];
        const double cst_factor = tr->task == VEIL_TRAIN_LOGISTIC ? 0.5 * c[t].k * n : -c[t].k * n;
        if (t == 0 && h == 0) VEIL_CHECK(veil_ckks_mul_constant(tr->ctx, g, cst[h], cst_factor, err));
        else VEIL_CHECK(add_scaled(tr, g, cst[h], cst_factor, tmp, err));
    }
    /* G'_t = k_t (gradient sum + noise): logistic regression's gradient sum is that of sigmoid(-z.v) z */
    if (tr->dp) VEIL_CHECK(add_gradient_noise(tr, g, c[t].k, tr->features, err));
    /* next = G'_t + (1 - eta_t) shrink_t v_t + eta_t (shrink_{t-1} v_{t-1} + G'_{t-1} / (1 - eta_{t-1})) */
    VEIL_CHECK(copy_ct(tr, next, g, err));
    if (t > 0) VEIL_CHECK(add_scaled(tr, next, s->v, (1 - c[t].eta) * c[t].shrink, tmp, err));
    if (s->w) { /* w_t = shrink_{t-1} v_{t-1} + G'_{t-1} / (1 - eta_{t-1}), bootstrapped */
        VEIL_CHECK(add_scaled(tr, next, s->w, c[t].eta, tmp, err));
    } else {
        if (t > 0 && s->have_prev) VEIL_CHECK(add_scaled(tr, next, s->v_prev, c[t].eta * c[t - 1].shrink, tmp, err));
        if (t > 0) VEIL_CHECK(add_scaled(tr, next, s->g_prev, c[t].eta / (1 - c[t - 1].eta), tmp, err));
    }
    veil_ckks_ciphertext_free(s->w);
    s->w = NULL;
    ct_t *old_prev = s->v_prev;
    s->v_prev = s->v;
    s->have_prev = t > 0;
    s->v = next;
    next = old_prev;
    ct_t *old_g = s->g_prev;
    s->g_prev = g;
    g = old_g;
done:
    veil_ckks_ciphertext_free(g);
    veil_ckks_ciphertext_free(tmp);
    veil_ckks_ciphertext_free(next);
    return st;
}

/*
 * DP-GD's calibration (docs/privacy.md). A record's term of the gradient sum is e z with z = (+-1, scaled
 * features) in [-1, 1]^(F+1) (a declared range) and e = 1/2 - q(z.v), q the polynomial sigmoid: |e| <= E, the
 * largest |1/2 - q(t)| over the sigmoid's range |t| <= R (the training's own premise: z.v stays in it).
 * Linear regression: the term is (z.v - y) z with the label y scaled into [-1, 1] by its declared range and
 * |z.v| <= R (opts->dp_prediction_bound, the premise), so E = R + 1 (the first iteration's y z alone: E = 1).
 * Replacing one record moves the sum by at most D = 2 E sqrt(F + 1) in L2. K iterations of noise sigma cost
 * rho = K D^2 / (2 sigma^2), so sigma = D sqrt(K / (2 rho)), rho that of (epsilon, delta). The release records
 * the single-release equivalent sigma / sqrt(K), whose rho is the whole training's.
 */
static veil_status dp_setup(trainer *tr, veil_dp_release *dp, const veil_train_options *opts, size_t K,
                            unsigned range, veil_error *err)
{
    veil_status st = VEIL_OK;
    double rho = 0, e_max = 0, sigma = 0;
    const double bound = opts->dp_prediction_bound ? opts->dp_prediction_bound : DEFAULT_DP_PREDICTION_BOUND;
    if (tr->task == VEIL_TRAIN_LINEAR && (!(bound > 0) || !(bound <= MAX_DP_PREDICTION_BOUND)))
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "train: DP-GD's prediction bound %g is outside (0, %g]", bound,
                  (double)MAX_DP_PREDICTION_BOUND);
    if (tr->task != VEIL_TRAIN_LINEAR && opts->dp_prediction_bound)
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "train: the prediction bound is linear regression's (logistic regression's "
                  "is the sigmoid's range, from the keys)");
    VEIL_CHECK(veil_dp_rho_for(opts->dp_epsilon, opts->dp_delta, &rho, err));
    /* linear regression: the residual z.v - y with |z.v| <= R (the premise) and the scaled label |y| <= 1 */
    if (tr->task == VEIL_TRAIN_LINEAR) e_max = bound + 1;
    for (int i = -4000; tr->task != VEIL_TRAIN_LINEAR && i <= 4000; i++) { /* |1/2 - q| over [-R, R]: q is odd, smooth */
        const double t = (double)range * i / 4000.0;
        double q = 0, p = t;
        for (size_t j = 0; j < (tr->degree + 1) / 2; j++, p *= t * t) q += tr->coef[j] * p;
        e_max = fmax(e_max, fabs(0.5 - q));
    }
    if (tr->task != VEIL_TRAIN_LINEAR) e_max *= 1.01; /* the grid's between-points */
    const double sens = 2.0 * e_max * sqrt((double)tr->features + 1.0);
    sigma = sens * sqrt((double)K / (2.0 * rho));
    {
        int k = 0;
        while (ldexp(sigma, k) > 0x1p30) k--;
        while (ldexp(sigma, k + 1) <= 0x1p30 && k < 60) k++;
        tr->dp_resolution = ldexp(1.0, -k);
        VEIL_CHECK(veil_dgauss_sigma2_rational(ldexp(sigma, k), &tr->dp_num, &tr->dp_den, err));
        sigma = sqrt((double)tr->dp_num / (double)tr->dp_den) * tr->dp_resolution;
    }
    VEIL_CHECK(veil_prng_new_os(&tr->dp_prng, err));
    tr->dp = 1;
    *dp = (veil_dp_release){.epsilon = opts->dp_epsilon, .delta = opts->dp_delta, .sensitivity = sens,
                            .sigma = sigma / sqrt((double)K), .resolution = tr->dp_resolution};
    dp->rho = sens * sens / (2.0 * dp->sigma * dp->sigma);
done:
    return st;
}

/* ---- bootstrapping the weights --------------------------------------------------------------------------- */

/* The largest |1/2 - q(t)| over the sigmoid's range [-R, R] (the grid's 8001 points, plus 1%). */
static double sigmoid_error_max(const double *coef, unsigned degree, unsigned range)
{
    double e = 0;
    for (int i = -4000; i <= 4000; i++) {
        const double t = (double)range * i / 4000.0;
        double q = 0, p = t;
        for (size_t j = 0; j < (degree + 1) / 2; j++, p *= t * t) q += coef[j] * p;
        e = fmax(e, fabs(0.5 - q));
    }
    return 1.01 * e;
}

/*
 * bound[t]: a bound on every coordinate of v_t and w_t (the values bootstrapped before iteration t), from the
 * public schedule alone (the scaled features and z_r lie in [-1, 1]).
 * Logistic regression, under the training's premise that |z.v| stays within the sigmoid's range (so that
 * |1/2 - q(z.v)| <= E): the gradient step lr/n sum e_r z_r is at most lr E, w_{t+1} = shrink v_t + that step,
 * v_t = w_t - eta_{t-1} (w_t - w_{t-1}); with A_t >= |w_t| and D_t >= |w_t - w_{t-1}|:
 *   D_{t+1} <= (1 - shrink) A_t + shrink |eta_{t-1}| D_t + lr E,  A_{t+1} <= A_t + D_{t+1},  |v_t| <= A_t + |eta_{t-1}| D_t.
 * Linear regression: w_{t+1} = (shrink I - lr H) w_t + lr b with H = X^T X / n, whose largest eigenvalue is at
 * most its trace, F + 1; with lr (F + 1) <= 1 the matrix has norm at most 1, so |w_t| <= t lr |b|_2 <=
 * t lr sqrt(F + 1). A larger learning rate has no such bound: refused.
 */
static veil_status weight_bounds(double *bound, const trainer *tr, const step_constants *c, size_t K, double lr,
                                 unsigned range, veil_error *err)
{
    if (tr->task == VEIL_TRAIN_LINEAR) {
        const double f1 = (double)tr->features + 1;
        if (lr * f1 > 1)
            return veil_fail(err, VEIL_ERR_UNSUPPORTED,
                             "train: linear regression with bootstrapping needs a learning rate of at most 1/(F + 1) "
                             "= %g (then the weights provably stay within t lr sqrt(F + 1) and are scaled into "
                             "bootstrapping's range); %g given", 1 / f1, lr);
        for (size_t t = 0; t < K; t++) bound[t] = (double)t * lr * sqrt(f1);
        return VEIL_OK;
    }
    const double e = sigmoid_error_max(tr->coef, tr->degree, range);
    double a = 0, d = 0;
    for (size_t t = 0; t < K; t++) {
        const double eta_prev = t > 0 ? fabs(c[t - 1].eta) : 0;
        bound[t] = a + eta_prev * d; /* |v_t| (and |w_t| <= a) */
        const double shrink = c[t].shrink, d_next = (1 - shrink) * a + shrink * eta_prev * d + lr * e;
        d = d_next;
        a += d_next;
    }
    return VEIL_OK;
}

/*
 * Bootstrapping's setup for a run of K iterations: the encapsulation key and bootstrapping's Galois keys
 * (named when missing), the bootstrapper (over one block of slots), and for each bootstrap the power of two
 * that scales the weights' guaranteed bound into [-1, 1] (refused beyond 2^12, where bootstrapping would keep
 * too few bits).
 */
static veil_status boot_setup(trainer *tr, const veil_eval_keys *keys, const step_constants *c, size_t K, double lr,
                              unsigned range, veil_error *err)
{
    veil_status st = VEIL_OK;
    uint64_t *elements = NULL;
    double *bound = NULL;
    if (!keys->encaps)
        VEIL_FAIL(err, VEIL_ERR_MISMATCH, "train: these keys were made for bootstrapped training, but the bundle holds "
                  "no bootstrapping keys (encapsulation key): make them with `veil keygen --train ... --iterations K`");
    if (tr->dp)
        VEIL_FAIL(err, VEIL_ERR_UNSUPPORTED, "train: DP-GD with bootstrapping (the noise has no hard bound for the "
                  "weights' scaling): not supported; use keys for the leveled iterations");
    const veil_ckks_bootstrap_config cfg = boot_config(tr->block);
    VEIL_CHECK(veil_ckks_bootstrapper_new(&tr->bt, tr->enc, &cfg, err));
    veil_ckks_bootstrap_info bi;
    veil_ckks_bootstrapper_info(tr->bt, &bi);
    if (bi.levels_left != keys->meta.train.boot)
        VEIL_FAIL(err, VEIL_ERR_MISMATCH, "train: bootstrapping returns to level %zu, the keys were made for %u",
                  bi.levels_left, keys->meta.train.boot);
    size_t count = 0;
    elements = calloc(bi.galois_count + 1, sizeof *elements);
    bound = calloc(K, sizeof *bound);
    tr->boot_shift = calloc(K, sizeof *tr->boot_shift);
    if (!elements || !bound || !tr->boot_shift) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "train");
    VEIL_CHECK(veil_ckks_bootstrap_galois_elements(tr->bt, elements, &count, bi.galois_count + 1, err));
    for (size_t i = 0; i < count; i++) {
        size_t j = 0;
        while (j < keys->n_galois && veil_switch_key_galois_element(keys->galois[j]) != elements[i]) j++;
        if (j == keys->n_galois)
            VEIL_FAIL(err, VEIL_ERR_MISMATCH, "train: the evaluation keys lack bootstrapping's Galois key for element "
                      "%llu: make them with `veil keygen --train ... --iterations K`", (unsigned long long)elements[i]);
    }
    tr->boot_every = boot_every(tr->task, tr->degree, keys->meta.train.boot);
    if (tr->boot_every == 0) VEIL_FAIL(err, VEIL_ERR_MISMATCH, "train: the keys' bootstrapping leaves no iteration");
    VEIL_CHECK(weight_bounds(bound, tr, c, K, lr, range, err));
    for (size_t t = 0; t < K; t++) {
        if (!boot_before(t, tr->boot_every)) continue;
        double shift = 1;
        while (shift < bound[t]) shift *= 2;
        if (shift > BOOT_MAX_SHIFT)
            VEIL_FAIL(err, VEIL_ERR_UNSUPPORTED, "train: before iteration %zu the weights' guaranteed bound is %.3g; "
                      "bootstrapping them keeps too little precision beyond 2^12: lower the learning rate or the "
                      "iterations", t + 1, bound[t]);
        tr->boot_shift[t] = shift;
    }
done:
    free(elements);
    free(bound);
    return st;
}

/*
 * x <- bootstrap(x / shift) * shift: one level for the product by 1 / shift (none when x holds the values
 * divided by shift already), none for the integer product.
 */
static veil_status boot_one(const trainer *tr, ct_t *x, double shift, int divided, veil_error *err)
{
    const veil_eval_keys *k = tr->keys;
    veil_status st = VEIL_OK;
    if (!divided) VEIL_CHECK(veil_ckks_mul_constant(tr->ctx, x, x, 1.0 / shift, err));
    VEIL_CHECK(veil_ckks_bootstrap_encapsulated(tr->ctx, tr->bt, x, x, tr->relin,
                                                (const veil_switch_key *const *)k->galois, k->n_galois, k->encaps,
                                                err));
    if (shift > 1) VEIL_CHECK(veil_ckks_mul_integer(tr->ctx, x, x, (int64_t)shift, err));
done:
    return st;
}

/*
 * Before iteration t: v_t and, when Nesterov's momentum eta_t is not 0, w_t = shrink_{t-1} v_{t-1} +
 * G'_{t-1} / (1 - eta_{t-1}) (which iterate otherwise forms from v_{t-1} and G'_{t-1}) bootstrapped, the two
 * in parallel when the run has 2 threads or more (the bootstrapper and the keys are read-only).
 */
static veil_status refresh(const trainer *tr, train_state *s, const step_constants *c, size_t t, veil_error *err)
{
    veil_status st = VEIL_OK;
    ct_t *w = NULL, *tmp = NULL;
    if (c[t].eta != 0) {
        const double shift = tr->boot_shift[t];
        VEIL_CHECK(ct_new(&w, tr, err));
        VEIL_CHECK(ct_new(&tmp, tr, err));
        /* w_t / shift in one level: G'_{t-1} at v_t's level, v_{t-1} above it */
        VEIL_CHECK(veil_ckks_mul_constant(tr->ctx, w, s->g_prev, 1.0 / ((1 - c[t - 1].eta) * shift), err));
        VEIL_CHECK(add_scaled(tr, w, s->v_prev, c[t - 1].shrink / shift, tmp, err));
    }
    ct_t *const xs[2] = {s->v, w};
    VEIL_PARALLEL_PARTS(w ? 2 : 1, tr->threads, err, boot_one(tr, xs[part], tr->boot_shift[t], part == 1, &e_));
    if (st != VEIL_OK) goto done;
    s->w = w;
    w = NULL;
done:
    veil_ckks_ciphertext_free(w);
    veil_ckks_ciphertext_free(tmp);
    return st;
}

veil_status veil_train_run(veil_ciphertexts **out, const veil_eval_keys *keys, const veil_ciphertexts *data,
                           const veil_train_options *opts, veil_progress_fn progress, void *progress_arg,
                           veil_error *err)
{
    return veil_train_run_sets(out, keys, &data, 1, opts, progress, progress_arg, err);
}

static veil_status check_data_set(const veil_eval_keys *keys, const veil_ciphertexts *data, veil_error *err)
{
    VEIL_REQUIRE(data, err);
    if (data->meta.kind != VEIL_SET_TRAIN_DATA)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "train: this ciphertext set is not an encrypted training data set");
    if (sodium_memcmp(data->meta.key_id, keys->meta.key_id, VEIL_ID_BYTES) != 0)
        return veil_fail(err, VEIL_ERR_MISMATCH, "train: the data was encrypted under other keys than these");
    if (data->ctx != keys->ctx)
        return veil_fail(err, VEIL_ERR_MISMATCH, "train: load the data set with these evaluation keys");
    if (data->meta.in_width != keys->meta.in_width || data->meta.batch != keys->meta.batch ||
        data->meta.slots != keys->meta.slots || data->count != veil_train_data_count(&data->meta))
        return veil_fail(err, VEIL_ERR_MISMATCH, "train: the data set does not match the keys' features or packing");
    return VEIL_OK;
}

veil_status veil_train_run_sets(veil_ciphertexts **out, const veil_eval_keys *keys,
                                const veil_ciphertexts *const *sets, size_t n_sets, const veil_train_options *opts,
                                veil_progress_fn progress, void *progress_arg, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(keys, err);
    VEIL_REQUIRE(sets, err);
    veil_train_options dflt = {0};
    if (!opts) opts = &dflt;
    if (opts->threads > VEIL_ML_THREADS_MAX)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "train: %zu threads; at most %d", opts->threads, VEIL_ML_THREADS_MAX);
    if (keys->meta.packing != VEIL_PACKING_TRAINING)
        return veil_fail(err, VEIL_ERR_MISMATCH, "train: these evaluation keys were made for inference, not for training");
    if (n_sets < 1 || n_sets > VEIL_TRAIN_MAX_SETS)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "train: %zu data sets (1 to %d)", n_sets, VEIL_TRAIN_MAX_SETS);
    uint64_t total_rows = 0;
    for (size_t h = 0; h < n_sets; h++) {
        veil_status cs = check_data_set(keys, sets[h], err);
        if (cs != VEIL_OK) return cs;
        total_rows += sets[h]->meta.rows;
    }
    if (total_rows > ((uint64_t)1 << 20))
        return veil_fail(err, VEIL_ERR_UNSUPPORTED, "train: %llu records in all (at most 2^20)",
                         (unsigned long long)total_rows);
    const veil_ciphertexts *data = sets[0];
    double lr;
    veil_status st = check_options(opts, &lr, err);
    if (st != VEIL_OK) return st; /* nothing held */
    const veil_train_split *split = opts->split;
    if (split && (split->parts < 1 || split->parts > 65536 || split->part >= split->parts ||
                  (split->parts > 1 && !split->exchange)))
        return veil_fail(err, VEIL_ERR_ARGUMENT, "train: split: process %zu of %zu (or no exchange)", split->part,
                         split->parts);
    if (split && split->parts > 1 && (opts->dp_epsilon || opts->dp_delta))
        return veil_fail(err, VEIL_ERR_UNSUPPORTED, "train: DP-GD is not split over processes (each would draw its "
                         "own noise): train in one process");
    veil_train_info info = {0};
    st = meta_info(&keys->meta, keys->ctx, &info, err);
    if (st != VEIL_OK) return st;
    if (info.bootstrap_level && !opts->iterations)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "train: keys with bootstrapping allow any number of iterations (up to "
                         "%zu): give it", info.max_iterations);
    const size_t K = opts->iterations ? opts->iterations : info.max_iterations;
    if (K > info.max_iterations)
        return veil_fail(err, VEIL_ERR_UNSUPPORTED,
                         "train: %zu iterations asked, but these keys' parameters allow at most %zu (%zu levels, %zu per "
                         "iteration): make keys for more iterations",
                         K, info.max_iterations, veil_context_max_level(keys->ctx), info.depth_per_iteration);
    trainer tr = {.ctx = keys->ctx, .relin = keys->relin, .task = info.task, .degree = info.degree,
                  .scale = ldexp(1.0, (int)keys->meta.scale_bits), .slots = (size_t)keys->meta.slots,
                  .block = info.block, .records = info.records_per_ciphertext,
                  .rows = (size_t)total_rows};
    for (size_t h = 0; h < n_sets; h++) /* each set's records fill its own ciphertexts */
        tr.nct += ((size_t)sets[h]->meta.rows + tr.records - 1) / tr.records;
    tr.end = tr.nct;
    if (split && split->parts > 1) { /* this process's share of the ciphertexts of records */
        tr.split = split;
        tr.first = split->part * tr.nct / split->parts;
        tr.end = (split->part + 1) * tr.nct / split->parts;
    }
    tr.threads = (int)(opts->threads ? opts->threads : (size_t)veil_ring_threads(veil_context_ring(keys->ctx)));
    if ((size_t)tr.threads > tr.end - tr.first) tr.threads = (int)(tr.end - tr.first); /* the loops are over them */
    if (tr.threads < 1) tr.threads = 1;
    memcpy(tr.coef, info.coefficients, sizeof tr.coef);
    tr.keys = keys;
    tr.features = keys->meta.in_width;
    veil_dp_release dp = {0};
    if (opts->dp_epsilon || opts->dp_delta) {
        st = dp_setup(&tr, &dp, opts, K, info.range, err);
        if (st != VEIL_OK) return st;
    }
    long steps[MAX_TRAIN_STEPS];
    const size_t n_steps = train_steps(steps, tr.block, tr.slots);
    step_constants *c = NULL;
    train_state s = {0};
    veil_ciphertexts *set = NULL;
    ct_t **za = NULL, **zx = NULL, **cst = NULL;
    size_t *cst_rows = NULL;
    for (size_t i = 0; i < n_steps; i++)
        if (!find_rotation(keys, steps[i]))
            VEIL_FAIL(err, VEIL_ERR_MISMATCH, "train: the evaluation keys lack the rotation by %ld", steps[i]);
    c = calloc(K, sizeof *c);
    if (!c) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "train");
    schedule(c, K, tr.task, lr, opts->l2, tr.rows);
    VEIL_CHECK(veil_ckks_encoder_new(&tr.enc, tr.ctx, err));
    if (info.bootstrap_level) VEIL_CHECK(boot_setup(&tr, keys, c, K, lr, info.range, err));
    /* each data owner's set: Z_A and Z_X for each ciphertext of records, the constant part, the scaling */
    za = calloc(tr.nct, sizeof *za);
    zx = calloc(tr.nct, sizeof *zx);
    cst = calloc(n_sets, sizeof *cst);
    cst_rows = calloc(n_sets, sizeof *cst_rows);
    if (!za || !zx || !cst || !cst_rows) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "train");
    for (size_t h = 0, at = 0; h < n_sets; h++) {
        const size_t nct_h = ((size_t)sets[h]->meta.rows + tr.records - 1) / tr.records;
        for (size_t i = 0; i < nct_h; i++, at++) {
            za[at] = sets[h]->cts[i];
            zx[at] = sets[h]->cts[nct_h + i];
        }
        cst[h] = sets[h]->cts[2 * nct_h];
        cst_rows[h] = (size_t)sets[h]->meta.rows;
    }
    for (size_t i = tr.first; i < tr.end; i++) /* a share loaded by veil_train_run_serialized: this part's */
        if (!za[i] || !zx[i]) VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "train: ciphertext of records %zu was not loaded", i);
    for (size_t h = 0; h < n_sets; h++)
        if (!cst[h] || !sets[h]->cts[sets[h]->count - 1])
            VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "train: data set %zu was not loaded whole", h + 1);
    if (progress) progress(progress_arg, 0, K);
    for (size_t t = 0; t < K; t++) {
        if (tr.bt && boot_before(t, tr.boot_every)) VEIL_CHECK(refresh(&tr, &s, c, t, err));
        VEIL_CHECK(iterate(&tr, &s, za, zx, cst, cst_rows, n_sets, c, t, err));
        if (progress) progress(progress_arg, t + 1, K);
    }
    veil_ml_meta meta = data->meta;
    meta.kind = VEIL_SET_TRAIN_MODEL;
    meta.width = meta.out_width;
    meta.rows = total_rows;
    VEIL_CHECK(veil_ciphertexts_alloc(&set, tr.ctx, &meta, 1 + n_sets, err));
    VEIL_CHECK(copy_ct(&tr, set->cts[0], s.v, err));
    for (size_t h = 0; h < n_sets; h++) /* every set's scaling: decryption checks that they agree */
        VEIL_CHECK(copy_ct(&tr, set->cts[1 + h], sets[h]->cts[sets[h]->count - 1], err));
    set->has_dp = tr.dp;
    set->dp = dp;
    *out = set;
    set = NULL;
done:
    veil_ckks_ciphertext_free(s.v);
    veil_ckks_ciphertext_free(s.v_prev);
    veil_ckks_ciphertext_free(s.g_prev);
    veil_ckks_ciphertext_free(s.w);
    veil_ckks_bootstrapper_free(tr.bt);
    free(tr.boot_shift);
    veil_ckks_encoder_free(tr.enc);
    veil_prng_free(tr.dp_prng);
    free(c);
    free(za);
    free(zx);
    free(cst);
    free(cst_rows);
    veil_ciphertexts_free(set);
    return st;
}

/* ---- decryption and the model -------------------------------------------------------------------------- */

/*
 * Set h's scaling against the first's: a relative difference beyond 1% means the sets were scaled differently
 * and the weights would be unscaled wrongly: refused. 1%, not less: a model switched from joint keys carries the
 * parties' smudging noise (up to ~4e-3 on a mantissa at the default 2^20 bits, docs/multiparty.md), on every
 * scaling independently. Declared ranges closer than 1% pass unnoticed (docs/training.md).
 */
static veil_status check_same_scaling(const scaling *first, veil_ml_plaintext_fn get, void *arg,
                                      veil_ckks_encoder *enc, veil_ckks_plaintext *pt, double *vals, size_t F, size_t h,
                                      veil_error *err)
{
    scaling o = {0};
    veil_status st = VEIL_OK;
    VEIL_CHECK(get(arg, pt, h, err));
    VEIL_CHECK(veil_ckks_decode(enc, vals, NULL, 4 * (F + 1) + 1, pt, err));
    VEIL_CHECK(scaling_unpack(&o, vals, F, err));
    for (size_t j = 0; j <= F; j++)
        if (fabs(o.mean[j] - first->mean[j]) > 1e-2 * fmax(1.0, fabs(first->mean[j])) ||
            fabs(o.dev[j] - first->dev[j]) > 1e-2 * fabs(first->dev[j]) || o.declared != first->declared)
            VEIL_FAIL(err, VEIL_ERR_MISMATCH, "train: data set %zu was scaled differently from the first (column %zu): "
                      "every data owner must encrypt with the same declared range (--feature-range)", h, j);
done:
    scaling_free(&o);
    return st;
}

veil_status veil_train_decrypt(double *weights, const veil_keyset *k, const veil_ciphertexts *model, veil_error *err)
{
    return veil_train_decrypt_ex(weights, k, model, NULL, err);
}

veil_status veil_train_decrypt_ex(double *weights, const veil_keyset *k, const veil_ciphertexts *model,
                                  const veil_decrypt_options *opts, veil_error *err)
{
    VEIL_REQUIRE(weights, err);
    VEIL_REQUIRE(k, err);
    VEIL_REQUIRE(model, err);
    veil_status st = veil_ml_train_check_model(k, model, err);
    if (st) return st;
    veil_ml_key_source src = {.k = k, .set = model};
    /* the weights and the scaling alike: both go into the weights handed on */
    if ((st = veil_ml_flood_size(&src.fl, k, model->cts, model->count, opts, err))) return st;
    return veil_ml_train_weights(weights, k, model, veil_ml_key_source_get, &src, err);
}

veil_status veil_ml_train_check_model(const veil_keyset *k, const veil_ciphertexts *model, veil_error *err)
{
    if (model->meta.kind != VEIL_SET_TRAIN_MODEL)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "train: this set is not a trained model (veil train's output)");
    if (sodium_memcmp(model->meta.key_id, k->meta.key_id, VEIL_ID_BYTES) != 0)
        return veil_fail(err, VEIL_ERR_MISMATCH, "train: the model was trained on data encrypted under other keys");
    if (model->ctx != k->ctx) return veil_fail(err, VEIL_ERR_MISMATCH, "train: load the model with this key set");
    if (model->meta.in_width != k->meta.in_width || model->count < 2 || model->count > 1 + VEIL_TRAIN_MAX_SETS)
        return veil_fail(err, VEIL_ERR_MISMATCH, "train: the model has %u features, the keys %u", model->meta.in_width,
                         k->meta.in_width);
    return VEIL_OK;
}

veil_status veil_ml_train_weights(double *weights, const veil_keyset *k, const veil_ciphertexts *model,
                                  veil_ml_plaintext_fn get, void *arg, veil_error *err)
{
    const size_t F = k->meta.in_width, slots = (size_t)k->meta.slots;
    veil_ckks_encoder *enc = NULL;
    veil_ckks_plaintext *pt = NULL;
    double *vals = calloc(slots, sizeof *vals);
    scaling s = {0};
    veil_status st = VEIL_OK;
    if (!vals) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "train: decrypt");
    VEIL_CHECK(veil_ckks_encoder_new(&enc, k->ctx, err));
    VEIL_CHECK(veil_ckks_plaintext_new(&pt, k->ctx, err));
    VEIL_CHECK(get(arg, pt, 0, err));
    VEIL_CHECK(veil_ckks_decode(enc, weights, NULL, F + 1, pt, err));
    VEIL_CHECK(get(arg, pt, 1, err));
    VEIL_CHECK(veil_ckks_decode(enc, vals, NULL, 4 * (F + 1) + 1, pt, err));
    VEIL_CHECK(scaling_unpack(&s, vals, F, err));
    for (size_t h = 2; h < model->count; h++) /* several data sets: they must have been scaled alike */
        VEIL_CHECK(check_same_scaling(&s, get, arg, enc, pt, vals, F, h, err));
    if (model->has_dp && !s.declared)
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "train: a DP-trained model of data scaled by its own statistics (which the "
                  "weights' unscaling would reveal): encrypt the data with a declared feature range");
    /* weights beyond what the parameters hold have wrapped around: refuse them rather than return them */
    const double limit = veil_keyset_output_limit(k);
    for (size_t j = 0; j <= F; j++)
        if (!isfinite(weights[j]) || fabs(weights[j]) > limit)
            VEIL_FAIL(err, VEIL_ERR_MISMATCH, "train: weight %zu decrypts to %g, beyond the %g the parameters hold "
                      "(a learning rate too large for the data?)", j, weights[j], limit);
    unscale(weights, model->meta.final_op, F, &s);
    for (size_t j = 0; j <= F; j++)
        if (!isfinite(weights[j])) VEIL_FAIL(err, VEIL_ERR_MISMATCH, "train: the scaling does not decrypt");
done:
    scaling_free(&s);
    if (vals) sodium_memzero(vals, slots * sizeof *vals);
    free(vals);
    veil_ckks_plaintext_free(pt);
    veil_ckks_encoder_free(enc);
    return st;
}

veil_status veil_train_to_onnx(veil_buffer *out, veil_train_task task, const double *weights, size_t features,
                               veil_error *err)
{
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(weights, err);
    if (features < 1 || features > MAX_FEATURES)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "train: %zu features", features);
    for (size_t j = 0; j <= features; j++)
        if (!isfinite(weights[j])) return veil_fail(err, VEIL_ERR_ARGUMENT, "train: weight %zu is not finite", j);
    veil_graph g = {0};
    const int64_t in_dims[2] = {-1, (int64_t)features}, w_dims[2] = {(int64_t)features, 1}, b_dims[1] = {1};
    const char *gemm_in[3] = {"x", "W", "b"}, *sig_in[1] = {"z"};
    uint8_t *bytes = NULL;
    size_t len = 0;
    veil_status st = VEIL_OK;
    VEIL_CHECK(veil_graph_add_input(&g, "x", in_dims, 2, err));
    VEIL_CHECK(veil_graph_add_init(&g, "W", weights + 1, w_dims, 2, err));
    VEIL_CHECK(veil_graph_add_init(&g, "b", weights, b_dims, 1, err));
    VEIL_CHECK(veil_graph_add_node(&g, "Gemm", gemm_in, 3, task == VEIL_TRAIN_LOGISTIC ? "z" : "y", NULL, 0, err));
    if (task == VEIL_TRAIN_LOGISTIC) VEIL_CHECK(veil_graph_add_node(&g, "Sigmoid", sig_in, 1, "y", NULL, 0, err));
    VEIL_CHECK(veil_graph_add_output(&g, "y", err));
    /* [N, 1]: ONNX's checker wants the outputs' shapes */
    g.outputs[0].rank = 2;
    g.outputs[0].dims[0] = -1;
    g.outputs[0].dims[1] = 1;
    VEIL_CHECK(veil_graph_to_onnx(&g, &bytes, &len, err));
    out->data = bytes;
    out->len = len;
done:
    veil_graph_clear(&g);
    return st;
}
