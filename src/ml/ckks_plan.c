/*
 * CKKS inference plans: the parameters for the program's depth and slots, the bounds of every value the
 * circuit computes (and the moduli with that headroom), the latency packing's rotations, the exact stored
 * sizes and the estimates.
 */
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <stdio.h>
#include "ml/ml_plan.h"
#include "veil/ckks.h"
#include "veil/circuits.h"
#include "serial/serial_internal.h"

static size_t next_pow2(size_t x)
{
    size_t p = 1;
    while (p < x) p *= 2;
    return p;
}

/* ---- sizes: exact, from the parameters and the wire format (docs/wire-format.md) ---------------------- */

/* A fresh input ciphertext, stored (seeded). */
static size_t fresh_bytes(const veil_params *p)
{
    return veil_ckks_ciphertext_stored_bytes(p, veil_params_q_count(p) - 1, 2, true);
}

/* The bundle veil_eval_keys_save writes: [parameters, public key, relinearization key, Galois keys], uncompressed. */
static size_t eval_bundle_bytes(const veil_plan *plan)
{
    const veil_params *p = plan->params;
    const size_t galois = veil_ml_plan_galois_count(plan), encaps = (size_t)veil_ml_plan_has_encaps(plan);
    const size_t items = veil_params_stored_bytes(p) + veil_public_key_stored_bytes(p) +
                         (1 + galois) * veil_switch_key_stored_bytes(p) +
                         encaps * veil_ckks_encapsulation_key_stored_bytes(p);
    /* with bootstraps, the metadata carries the schedule (veil_ml_boot_ext_bytes), else the inputs' range */
    const size_t ext = plan->boot.count ? veil_ml_boot_ext_bytes(&plan->boot, plan->in_width)
                       : plan->ckks.box_lo && plan->packing != VEIL_PACKING_TRAINING ? veil_ml_range_bytes(plan->in_width) : 0;
    return veil_set_stored_bytes(VEIL_META_BYTES + ext, 3 + galois + encaps, items);
}

void veil_ckks_plan_sizes(veil_plan *plan)
{
    plan->info.eval_key_bytes = (double)eval_bundle_bytes(plan);
    plan->info.ciphertext_bytes = (double)fresh_bytes(plan->params);
}

size_t veil_ckks_plan_input_bytes(const veil_plan *plan, size_t rows)
{
    const size_t batch = plan->packing == VEIL_PACKING_LATENCY ? 1 : plan->batch;
    if (batch == 0) return 0;
    const size_t per = (rows + batch - 1) / batch * (plan->packing == VEIL_PACKING_LATENCY ? 1 : plan->in_width);
    const size_t items = veil_params_stored_bytes(plan->params) + per * fresh_bytes(plan->params);
    return veil_set_stored_bytes(VEIL_META_BYTES, 1 + per, items);
}

/*
 * Chooses the parameters: the smallest ring for the depth and slots, then the largest scale (max_scale or 3
 * bits below: 36 or 33 by default).
 * The first prime has first_bits (50 by default: every prime below 2^50, where the AVX2 kernels apply); the
 * bounds (below) ask for more when the outputs need it.
 */
#define FIRST_PRIME_BITS 50
#define MAX_FIRST_PRIME_BITS 60
#define SCALE_BITS 36
#define MIN_SCALE_BITS 30
/*
 * Room for flooded decryption (veil_plan_request.flood): flooding's noise, 2^(21 + log2 B) for an error B in
 * the coefficients, moves an output by 6 sigma sqrt(N/2) / scale; under 1e-3 asks for scale / B >= 2^40, about
 * the precision of the whole computation, so a scale near the primes' largest everywhere (as for training's
 * flooded weights), and one more level: the outputs at a 2^60 scale do not fit a 61-bit prime alone.
 */
#define FLOOD_SCALE_BITS 60
#define FLOOD_FIRST_BITS 61
static veil_status choose_flood_params(veil_params **out, size_t depth, size_t slots, veil_security security,
                                       unsigned *scale_bits, veil_error *err)
{
    veil_params_request req = {.depth = (unsigned)depth + 1, .scale_bits = FLOOD_SCALE_BITS,
                               .first_bits = FLOOD_FIRST_BITS, .slots = slots, .security = security};
    veil_error last = {VEIL_OK, ""};
    if (veil_params_select(out, &req, &last) != VEIL_OK)
        return veil_fail(err, last.status ? last.status : VEIL_ERR_NOT_FOUND,
                         "the model needs %zu levels, and room for flooded decryption a 2^60 scale and one level "
                         "more: no parameter set at this security level holds them (%s); no keys were made", depth,
                         last.detail);
    *scale_bits = FLOOD_SCALE_BITS;
    return VEIL_OK;
}

/*
 * Two primes at the bottom (the latency packing's room for its outputs, plan_bounds): Q = {q_0 of first_bits,
 * q_1 of bottom_bits, depth primes of scale_bits}, the outputs left at level 1 (q_0 q_1) instead of a first
 * prime above 50 bits. Every prime, special ones too, stays within 50 bits, where the IFMA and AVX2 kernels
 * apply (a larger one takes the scalar kernels in every NTT, product and base conversion of its limb). The
 * smallest ring for the slots, then the fewest key-switching digits, each with the fewest 50-bit special primes
 * whose product covers its largest digit (veil_params_new checks it), within the security level's log2(QP).
 */
#define SPECIAL_PRIME_BITS 50
#define MIN_BOTTOM_BITS 24 /* primes of 1 mod 2N below it are few at N = 2^17 */
static veil_status select_two_bottom(veil_params **out, size_t depth, unsigned scale_bits, unsigned first_bits,
                                     unsigned bottom_bits, size_t slots, veil_security security, veil_error *err)
{
    const size_t q_count = depth + 2;
    unsigned q_bits[VEIL_RING_MAX_PRIMES], p_bits[VEIL_RING_MAX_PRIMES];
    if (q_count + 1 > VEIL_RING_MAX_PRIMES || security >= VEIL_SECURITY_NONE)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "parameter selection: depth %zu is too large", depth);
    q_bits[0] = first_bits;
    q_bits[1] = bottom_bits;
    unsigned q_total = first_bits + bottom_bits;
    for (size_t i = 2; i < q_count; i++) q_total += q_bits[i] = scale_bits;
    for (size_t i = 0; i + q_count < VEIL_RING_MAX_PRIMES; i++) p_bits[i] = SPECIAL_PRIME_BITS;
    for (size_t n = 1024; n <= 131072; n *= 2) {
        if (slots > n / 2) continue;
        const unsigned limit = veil_security_max_log_qp(n, security);
        for (size_t dnum = 1; dnum <= q_count; dnum++) {
            const size_t alpha = (q_count + dnum - 1) / dnum;
            unsigned widest = 0; /* the largest digit's bits */
            for (size_t start = 0; start < q_count; start += alpha) {
                unsigned bits = 0;
                for (size_t i = start; i < start + alpha && i < q_count; i++) bits += q_bits[i];
                if (bits > widest) widest = bits;
            }
            const size_t p_count = (widest + SPECIAL_PRIME_BITS - 1) / SPECIAL_PRIME_BITS;
            if (q_count + p_count > VEIL_RING_MAX_PRIMES || q_total + p_count * SPECIAL_PRIME_BITS > limit) continue;
            veil_params_spec spec = {n, q_count, NULL, q_bits, p_count, NULL, p_bits, dnum, VEIL_SECRET_TERNARY, 0,
                                     security, 0};
            veil_error attempt = {VEIL_OK, ""};
            const veil_status st = veil_params_new(out, &spec, &attempt);
            if (st == VEIL_OK) return VEIL_OK;
            if (st != VEIL_ERR_NOT_FOUND) return veil_fail(err, st, "%s", attempt.detail);
        }
    }
    return veil_fail(err, VEIL_ERR_NOT_FOUND, "parameter selection: no N up to 2^17 fits depth %zu with a %u-bit scale "
                     "and two primes at the bottom at this security level", depth, scale_bits);
}

/* The parameters for a scale of min_scale bits (veil_plan_request.min_scale_bits), or else the largest of
 * max_scale and the 3 bits below it among 36, 33, 30; with bottom_bits > 0, two primes at the bottom
 * (select_two_bottom). */
static veil_status choose_params(veil_params **out, size_t depth, size_t slots, veil_security security,
                                 unsigned first_bits, unsigned bottom_bits, unsigned max_scale, unsigned min_scale,
                                 unsigned *scale_bits, veil_error *err)
{
    static const unsigned ordinary[] = {36, 33, 30};
    const unsigned *scales = min_scale ? &min_scale : ordinary;
    const size_t n_scales = min_scale ? 1 : sizeof ordinary / sizeof *ordinary;
    veil_params *best = NULL;
    unsigned best_scale = 0;
    veil_error last = {VEIL_OK, ""};
    /* a larger scale: the first prime keeps the ordinary plan's room above it (14 bits), up to flooding's 61 */
    const unsigned room = FIRST_PRIME_BITS - SCALE_BITS;
    if (min_scale && first_bits < min_scale + room)
        first_bits = min_scale + room > FLOOD_FIRST_BITS ? FLOOD_FIRST_BITS : min_scale + room;
    for (size_t i = 0; i < n_scales; i++) {
        if (!min_scale && (scales[i] > max_scale || scales[i] + 3 < max_scale)) continue; /* max_scale, 3 below */
        veil_params_request req = {.depth = (unsigned)depth, .scale_bits = scales[i], .first_bits = first_bits,
                                   .slots = slots, .security = security};
        veil_params *p = NULL;
        const veil_status got = bottom_bits ? select_two_bottom(&p, depth, scales[i], first_bits, bottom_bits, slots,
                                                                security, &last)
                                            : veil_params_select(&p, &req, &last);
        if (got != VEIL_OK) continue;
        if (!best || veil_params_degree(p) < veil_params_degree(best)) {
            veil_params_free(best);
            best = p;
            best_scale = scales[i];
        } else {
            veil_params_free(p);
        }
    }
    if (!best)
        return veil_fail(err, last.status ? last.status : VEIL_ERR_NOT_FOUND,
                         "the model needs %zu levels (one per affine layer, square and approximation step), more "
                         "than any parameter set at this security level holds (%s); no keys were made", depth,
                         last.detail);
    *out = best;
    *scale_bits = best_scale;
    return VEIL_OK;
}

/* ---- bounds: every value the circuit computes fits the modulus of its level -------------------------- */

/*
 * A CKKS value v at scale D on level l (modulus Q_l = q_0 .. q_l) decrypts correctly while |v| D < Q_l / 2;
 * beyond, it wraps around and the wrap spreads to every slot. ROOM_MARGIN_BITS more cover the scales'
 * drift from D and the noise.
 */
#define ROOM_MARGIN_BITS 2
#define MAX_RANGE_INPUTS 65000 /* 16 bytes each in a key set's metadata, at most 2^20 bytes */

static double log2_q(const veil_params *params, size_t level)
{
    double bits = 0;
    for (size_t i = 0; i <= level; i++) bits += log2((double)veil_params_q(params, i));
    return bits;
}

/* Bits that a value of magnitude v needs at the plan's scale, with the margin. */
static double bits_needed(double v, unsigned scale_bits)
{
    return (v > 0 ? log2(v) : -60) + scale_bits + 1 + ROOM_MARGIN_BITS;
}

/*
 * The last stage's outputs at a smaller scale (ml_plan.h): the bits by which the outputs' bound, at the plan's
 * scale, outgrows the modulus of their level, up to MAX_OUTPUT_SHIFT; 0 unless the last stage is affine and
 * the packing the throughput one (its weights are exact integers at any scale; the latency packing's diagonals
 * are rounded at their scale, which would cost precision).
 */
#define MAX_OUTPUT_SHIFT 8
#define MIN_OUTPUT_SCALE_BITS 24
unsigned veil_ckks_output_shift(const veil_program *p, veil_packing packing, const veil_params *params,
                                unsigned scale_bits, double bound)
{
    if (packing != VEIL_PACKING_THROUGHPUT || !p || p->n_stages == 0 || p->stages[p->n_stages - 1].kind != VEIL_STAGE_AFFINE || !params) return 0;
    const size_t depth = veil_program_depth(p), top = veil_params_q_count(params) - 1;
    if (depth > top) return 0;
    const double lack = ceil(bits_needed(bound, scale_bits) - log2_q(params, top - depth));
    if (!(lack > 0)) return 0;
    const double most = fmin(MAX_OUTPUT_SHIFT, (double)scale_bits - MIN_OUTPUT_SCALE_BITS);
    return most > 0 ? (unsigned)fmin(lack, most) : 0;
}

/*
 * The bound is the plan's (meta.bound), which every CKKS inference bundle carries in its metadata extension
 * (VEIL-RN1, or the bootstrapping schedule's): a bundle without it would give no shift where the plan took one,
 * and outputs beyond q_0 / 2 at the full scale would wrap around; it is refused unless no bound could shift.
 */
veil_status veil_ml_ckks_keys_output_shift(unsigned *shift, const veil_program *p, const veil_eval_keys *k,
                                           veil_error *err)
{
    const veil_packing packing = (veil_packing)k->meta.packing;
    *shift = 0;
    if (veil_ckks_output_shift(p, packing, k->params, k->meta.scale_bits, INFINITY) == 0) return VEIL_OK;
    if (!k->boot_lo || !k->boot_hi)
        return veil_fail(err, VEIL_ERR_FORMAT, "these evaluation keys carry no outputs' bound (a bundle of an earlier "
                         "Veil): the scale their plan chose for the outputs is unknown; make the keys again");
    *shift = veil_ckks_output_shift(p, packing, k->params, k->meta.scale_bits, k->meta.bound);
    return VEIL_OK;
}

/*
 * Checks the inputs (at the top level) and every stage's peak (at the level of its outputs, the lowest it
 * touches) against the moduli; the last stage at the scale veil_ckks_output_shift gives it for the outputs'
 * bound out_peak. *deficit: the most bits any of them lacks (0 when all fit); *worst: the stage lacking them
 * (SIZE_MAX: the inputs).
 */
static void room(const veil_plan *plan, const veil_program *p, double in_peak, const double *peak, double out_peak,
                 double *deficit, size_t *worst)
{
    size_t level = veil_params_q_count(plan->params) - 1;
    /* out_peak < 0: no shift (the widest box keeps the outputs at the plan's scale; their bound then fits, and the
     * evaluator finds no shift either) */
    const unsigned shift = out_peak < 0 ? 0 : veil_ckks_output_shift(p, plan->packing, plan->params,
                                                                      plan->scale_bits, out_peak);
    *deficit = bits_needed(in_peak, plan->scale_bits) - log2_q(plan->params, level);
    *worst = SIZE_MAX;
    for (size_t i = 0; i < p->n_stages; i++) {
        veil_program one = {.stages = &p->stages[i], .n_stages = 1};
        const size_t d = veil_program_depth(&one);
        level = level >= d ? level - d : 0;
        const unsigned scale = i + 1 == p->n_stages ? plan->scale_bits - shift : plan->scale_bits;
        double lack = bits_needed(peak[i], scale) - log2_q(plan->params, level);
        if (!(lack <= 1e6)) lack = 1e6; /* an infinite (or NaN) peak: no parameters hold it */
        if (lack > *deficit) {
            *deficit = lack;
            *worst = i;
        }
    }
    if (*deficit < 0) *deficit = 0;
}

typedef struct bounds_work {
    const veil_program *p;
    double *lo, *hi;          /* the box */
    double *peak, *olo, *ohi; /* per stage; the outputs' ranges */
    double in_peak, out_peak;
    int zero_slots;
} bounds_work;

static veil_status bounds_of_box(bounds_work *b, veil_error *err)
{
    b->in_peak = 0;
    for (size_t i = 0; i < b->p->in_width; i++) b->in_peak = fmax(b->in_peak, fmax(fabs(b->lo[i]), fabs(b->hi[i])));
    veil_status st = VEIL_OK;
    VEIL_CHECK(veil_program_bounds(b->p, b->p->n_stages, b->lo, b->hi, b->zero_slots, b->olo, b->ohi, b->peak, err));
    b->out_peak = 0;
    for (size_t i = 0; i < b->p->out_width; i++) b->out_peak = fmax(b->out_peak, fmax(fabs(b->olo[i]), fabs(b->ohi[i])));
done:
    return st;
}

/*
 * Flooding and the latency packing: its diagonals are plaintexts rounded at scale q_l, and that rounding (1/2
 * per coefficient) multiplies the inputs' polynomial, an error of about 4 |x| sqrt(N/2) in the outputs'
 * coefficients as flooded decryption estimates it (2^21 with the breast-cancer model's raw inputs up to a few
 * thousand), which flooding's noise, sqrt(24 k) 2^(s/2) B (k = 128, s = 30), moves by 6 sigma sqrt(N/2) / scale.
 * The largest |input| that keeps that within 1e-3; wider inputs are refused at the plan (standardize them,
 * or use the throughput packing, whose weights are exact integers). Decryption measures the error itself.
 */
static double flood_latency_input_limit(const veil_plan *plan)
{
    const double sigma_factor = sqrt(24.0 * VEIL_FLOODING_DEFAULT_QUERIES) * exp2(VEIL_FLOODING_DEFAULT_SECURITY / 2.0);
    const double half = (double)veil_params_degree(plan->params) / 2;
    return VEIL_DECRYPT_DEFAULT_TOLERANCE * exp2(plan->scale_bits) / (6.0 * 4.0 * sigma_factor * half);
}

/* No range declared: the widest [-R, R] (R = 2^k/4, up to 2^30) that the plan's parameters guarantee. */
static veil_status widest_box(veil_plan *plan, bounds_work *b, veil_error *err, double limit)
{
    const size_t w = b->p->in_width;
    int best = INT32_MIN;
    veil_error last = {VEIL_OK, ""};
    for (int lo = -80, hi = 120; lo <= hi;) { /* R = 2^(k/4): k in [-80, 120] */
        const int k = lo + (hi - lo) / 2;
        const double r = exp2(k / 4.0);
        for (size_t i = 0; i < w; i++) {
            b->lo[i] = -r;
            b->hi[i] = r;
        }
        double deficit = 1;
        size_t worst;
        if (r <= limit && bounds_of_box(b, &last) == VEIL_OK) room(plan, b->p, b->in_peak, b->peak, -1, &deficit, &worst);
        if (deficit <= 0) {
            best = k;
            lo = k + 1;
        } else {
            hi = k - 1;
        }
    }
    if (best == INT32_MIN)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "no input range makes this model's results certain with these "
                         "parameters (%s): declare the inputs' range (--input-range LO:HI or --calibrate X.csv)",
                         last.status ? last.detail : "its values outgrow the moduli");
    const double r = exp2(best / 4.0);
    for (size_t i = 0; i < w; i++) {
        b->lo[i] = -r;
        b->hi[i] = r;
    }
    return bounds_of_box(b, err);
}

/*
 * The inputs' range (veil_plan_request), every value's bound over it, and the first prime that leaves room
 * for all of them: the parameters are chosen again with a larger first prime when the outputs need it (up to
 * 60 bits), and the plan is refused, naming the layer and its bound, when no first prime is enough.
 */
static veil_status plan_bounds(veil_plan *plan, const veil_model *m, const veil_plan_request *req, size_t depth,
                               size_t slots_wanted, veil_error *err)
{
    const veil_program *p = &m->program;
    const size_t w = p->in_width, n = p->n_stages ? p->n_stages : 1;
    if (w > MAX_RANGE_INPUTS)
        return veil_fail(err, VEIL_ERR_UNSUPPORTED, "the model reads %zu values per sample; key sets carry the range of "
                         "at most %d", w, MAX_RANGE_INPUTS);
    bounds_work b = {.p = p, .zero_slots = req->packing == VEIL_PACKING_LATENCY};
    plan->ckks.box_lo = malloc(w * sizeof(double));
    plan->ckks.box_hi = malloc(w * sizeof(double));
    b.peak = calloc(n, sizeof *b.peak);
    b.olo = malloc(p->out_width * sizeof *b.olo);
    b.ohi = malloc(p->out_width * sizeof *b.ohi);
    b.lo = plan->ckks.box_lo;
    b.hi = plan->ckks.box_hi;
    veil_status st = VEIL_OK;
    if (!b.lo || !b.hi || !b.peak || !b.olo || !b.ohi) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "plan");
    const char *source = "declared";
    for (size_t i = 0; i < w; i++) {
        if (req->box_lo && req->box_hi) {
            b.lo[i] = req->box_lo[i];
            b.hi[i] = req->box_hi[i];
        } else if (req->have_range) {
            b.lo[i] = req->range_lo;
            b.hi[i] = req->range_hi;
        } else if (m->box_lo) {
            b.lo[i] = m->box_lo[i];
            b.hi[i] = m->box_hi[i];
            source = "calibrated";
        } else {
            source = NULL;
            break;
        }
    }
    const double limit = req->flood && req->packing == VEIL_PACKING_LATENCY ? flood_latency_input_limit(plan)
                                                                            : INFINITY;
    if (!source) {
        VEIL_CHECK(widest_box(plan, &b, err, limit));
    } else {
        VEIL_CHECK(bounds_of_box(&b, err));
        if (!(b.in_peak <= limit))
            VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "on the %s inputs' range, inputs reach |x| %.4g: flooded decryption "
                      "of the latency packing keeps 1e-3 only for inputs up to %.4g (its diagonals' rounding grows "
                      "with the inputs): standardize the inputs, or use the throughput packing", source, b.in_peak,
                      limit);
        double deficit = 0;
        size_t worst = SIZE_MAX;
        room(plan, p, b.in_peak, b.peak, b.out_peak, &deficit, &worst);
        /*
         * First a larger first prime (room at every level), then a smaller scale: 3 bits less scale give 3 more
         * at level 0 and 1, where the outputs and the last products live (less precision; fewer bits at higher
         * levels, which room() checks again). A first prime the security level cannot afford ends its growth.
         * The latency packing grows a second prime at the bottom instead (select_two_bottom), up to 50 bits: one
         * more limb, but every limb on the vector kernels (a first prime above 50 bits, and special primes as
         * large, put 4 of the CNN's 9 limbs on the scalar ones: 0.43 s of CPU against 0.20 s), and the same scale.
         */
        const unsigned min_scale = req->min_scale_bits > SCALE_BITS ? req->min_scale_bits : 0;
        const int two_bottom = req->packing == VEIL_PACKING_LATENCY && !min_scale;
        unsigned first = min_scale ? (unsigned)log2((double)veil_params_q(plan->params, 0)) + 1 : FIRST_PRIME_BITS,
                 max_scale = SCALE_BITS, bottom = 0;
        int grow = 1;
        while (deficit > 0 && !req->flood) { /* flooding's room: the first prime and scale are fixed */
            unsigned try_first = first, try_scale = max_scale, try_bottom = bottom;
            const unsigned max_first = min_scale ? FLOOD_FIRST_BITS : MAX_FIRST_PRIME_BITS; /* flooding's 61 */
            if (grow && two_bottom && bottom < SPECIAL_PRIME_BITS) {
                /* a b-bit prime adds more than b - 1 bits */
                const unsigned want = bottom + (unsigned)ceil(deficit) + 1;
                try_bottom = want < MIN_BOTTOM_BITS ? MIN_BOTTOM_BITS : want > SPECIAL_PRIME_BITS ? SPECIAL_PRIME_BITS : want;
            } else if (grow && !two_bottom && first < max_first) {
                try_first = first + (unsigned)ceil(deficit) > max_first ? max_first : first + (unsigned)ceil(deficit);
            } else if (plan->scale_bits > MIN_SCALE_BITS && !min_scale) { /* the smudging's scale is kept */
                try_scale = plan->scale_bits - 3 < MIN_SCALE_BITS ? MIN_SCALE_BITS : plan->scale_bits - 3;
            } else {
                break;
            }
            veil_params *params = NULL;
            unsigned scale_bits = 0;
            veil_error ignored = {VEIL_OK, ""};
            if (choose_params(&params, depth, slots_wanted, req->security, try_first, try_bottom, try_scale, min_scale,
                              &scale_bits, &ignored) != VEIL_OK) {
                if (try_first == first && try_bottom == bottom) break;
                grow = 0; /* a first prime the security level cannot afford: shrink the scale instead */
                continue;
            }
            first = try_first;
            bottom = try_bottom;
            max_scale = try_scale;
            veil_params_free(plan->params);
            plan->params = params;
            plan->scale_bits = scale_bits;
            room(plan, p, b.in_peak, b.peak, b.out_peak, &deficit, &worst);
        }
        if (deficit > 0) {
            const double v = worst == SIZE_MAX ? b.in_peak : b.peak[worst];
            char where[200];
            if (worst == SIZE_MAX) snprintf(where, sizeof where, "the inputs themselves");
            else snprintf(where, sizeof where, "layer %zu (%s)", worst + 1, p->stages[worst].what ? p->stages[worst].what : "?");
            VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "on the %s inputs' range, %s can reach |value| %.4g, beyond what "
                      "CKKS holds at its level with a %.0f-bit first prime and a %u-bit scale (%.1f bits short): "
                      "the results would wrap around; narrow the inputs' range (standardize them, or "
                      "--input-range LO:HI)", source, where, v, log2((double)veil_params_q(plan->params, 0)),
                      plan->scale_bits, deficit);
        }
    }
    plan->bound = b.out_peak;
done:
    free(b.peak);
    free(b.olo);
    free(b.ohi);
    return st;
}

static void estimate(veil_plan *plan, const veil_program *p)
{
    veil_plan_info *in = &plan->info;
    veil_ckks_plan_sizes(plan);
    in->estimated_seconds = veil_plan_ckks_seconds(plan, p);
    /* a batch's inputs (their file too), two layers' outputs, and the latency packing's diagonals */
    const double ct = veil_ciphertext_memory(plan->params, in->q_count - 1);
    double work = ct * (double)(in->in_ciphertexts + 2 * veil_program_max_width(p)) +
                  (double)veil_ckks_plan_input_bytes(plan, plan->packing == VEIL_PACKING_LATENCY ? 1 : plan->batch);
    if (plan->packing == VEIL_PACKING_LATENCY) work = ct * 4 + veil_plan_diagonal_bytes(plan, p);
    veil_plan_memory(plan, 1, (double)(1 + plan->n_steps), 0, work);
}

/*
 * A model deeper than any leveled parameter set holds (or req->bootstrap): the bootstrapping plan
 * (ckks_boot.c), refused with both reasons when it fails too.
 */
static veil_status plan_deep(veil_plan *plan, const veil_model *m, const veil_plan_request *req, const veil_error *why,
                             veil_error *err)
{
    if (req->bootstrap || req->security == VEIL_SECURITY_NONE) return veil_ckks_plan_boot(plan, m, req, err);
    veil_error boot = {VEIL_OK, ""};
    const veil_status st = veil_ckks_plan_boot(plan, m, req, &boot);
    if (st == VEIL_OK) return VEIL_OK;
    return veil_fail(err, st, "%s; with bootstrapping: %s", why->detail, boot.detail);
}

/* The back end's plan (veil_ml_backend.plan): parameters, bounds, rotations, sizes and estimates. */
veil_status veil_ckks_plan(veil_plan *plan, const veil_model *m, const veil_plan_request *req, veil_error *err)
{
    const veil_program *p = &m->program;
    size_t depth = veil_program_depth(p);
    size_t slots_wanted;
    if (req->packing == VEIL_PACKING_LATENCY) {
        plan->slots = next_pow2(veil_program_max_width(p));
        slots_wanted = plan->slots;
    } else {
        if (req->batch > ((size_t)1 << 16))
            return veil_fail(err, VEIL_ERR_ARGUMENT, "plan: batch %zu is above 65536 samples per ciphertext", req->batch);
        slots_wanted = req->batch;
    }
    if (req->bootstrap || req->security == VEIL_SECURITY_NONE) return plan_deep(plan, m, req, NULL, err);
    {
        /* deeper than any leveled set (whatever the slots): bootstraps, or both reasons when they are refused */
        veil_params *probe = NULL;
        unsigned probe_scale = 0;
        veil_error why = {VEIL_OK, ""};
        if (choose_params(&probe, depth, 1, req->security, FIRST_PRIME_BITS, 0, SCALE_BITS, 0, &probe_scale, &why) !=
            VEIL_OK)
            return plan_deep(plan, m, req, &why, err);
        veil_params_free(probe);
    }
    veil_status st = VEIL_OK;
    if (req->min_scale_bits > FLOOD_SCALE_BITS)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "plan: a scale of 2^%u asked (at most 2^%d)", req->min_scale_bits,
                         FLOOD_SCALE_BITS);
    if (req->flood)
        VEIL_CHECK(choose_flood_params(&plan->params, depth, slots_wanted, req->security, &plan->scale_bits, err));
    else
        VEIL_CHECK(choose_params(&plan->params, depth, slots_wanted, req->security, FIRST_PRIME_BITS, 0, SCALE_BITS,
                                 req->min_scale_bits > SCALE_BITS ? req->min_scale_bits : 0, &plan->scale_bits, err));
    VEIL_CHECK(plan_bounds(plan, m, req, depth, slots_wanted, err));
    const size_t n = veil_params_degree(plan->params);
    if (req->packing == VEIL_PACKING_THROUGHPUT) {
        plan->slots = req->batch ? next_pow2(req->batch) : n / 2;
        plan->batch = req->batch ? req->batch : n / 2;
    } else {
        plan->batch = 1;
        VEIL_CHECK(veil_ckks_plan_latency_steps(plan, p, err));
    }
    veil_plan_info_from_params(plan);
    veil_ckks_plan_info_shape(plan, p);
    estimate(plan, p);
done:
    return st;
}
