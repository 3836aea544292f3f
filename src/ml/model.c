/* Models: loading an ONNX file, the plaintext reference, and the plan (parameters, packing, keys). */
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <stdio.h>
#include <sodium.h>
#include "ml/ml_internal.h"
#include "ml/ml_plan.h"
#include "veil/ckks.h"
#include "veil/rlwe.h"
#include "serial/serial_internal.h"

#define MAX_MODEL_BYTES ((size_t)1 << 30)

/* Hash of the model as the server evaluates it: the ONNX bytes and what the lowering was told. */
static void model_hash(veil_model *m, const uint8_t *data, size_t len)
{
    crypto_generichash_state h;
    crypto_generichash_init(&h, (const unsigned char *)"veil-model-v2", 13, sizeof m->hash);
    crypto_generichash_update(&h, data, len);
    /* every stage's kind and polynomial (an approximation's range and degree, a server-side sigmoid), and the
     * final operation: keys made for one lowering never pass for another */
    for (size_t i = 0; i < m->program.n_stages; i++) {
        const veil_stage *s = &m->program.stages[i];
        double v[6] = {(double)s->kind, (double)s->in_width, (double)s->out_width, (double)s->degree, s->lo, s->hi};
        crypto_generichash_update(&h, (const unsigned char *)v, sizeof v);
        if (s->coeffs && s->kind != VEIL_STAGE_AFFINE)
            crypto_generichash_update(&h, (const unsigned char *)s->coeffs, (s->degree + 1) * sizeof *s->coeffs);
    }
    const double fin[2] = {(double)m->program.final_op, m->program.out_scale};
    crypto_generichash_update(&h, (const unsigned char *)fin, sizeof fin);
    if (m->program.integer) crypto_generichash_update(&h, (const unsigned char *)"exact", 5);
    crypto_generichash_final(&h, m->hash, sizeof m->hash);
}

/* The shape of one sample: the declared input shape with the batch dimension (the first, at rank >= 2) as 1. */
static veil_status sample_shape(veil_model *m, const veil_value_info *in, veil_error *err)
{
    if (in->rank == (size_t)-1)
        return veil_fail(err, VEIL_ERR_UNSUPPORTED, "input '%s' has no declared tensor shape", in->name);
    if (in->elem_type != VEIL_DT_FLOAT && in->elem_type != VEIL_DT_DOUBLE)
        return veil_fail(err, VEIL_ERR_UNSUPPORTED, "input '%s' is not a float tensor", in->name);
    m->input_rank = in->rank;
    for (size_t i = 0; i < in->rank; i++) {
        int64_t d = in->dims[i];
        if (i == 0 && in->rank >= 2) d = 1;
        if (d <= 0)
            return veil_fail(err, VEIL_ERR_UNSUPPORTED, "input '%s': dimension %zu is unknown or zero (Veil needs "
                             "the shape of one sample)", in->name, i);
        m->input_dims[i] = d;
    }
    return VEIL_OK;
}

veil_status veil_model_from_graph(veil_model **out, veil_graph *g, const uint8_t *data, size_t len,
                                  const int64_t *dims, size_t rank, const veil_model_options *opts, veil_error *err)
{
    veil_model *m = calloc(1, sizeof *m);
    if (!m) {
        veil_graph_clear(g);
        return veil_fail(err, VEIL_ERR_NO_MEMORY, "model");
    }
    m->graph = *g;
    memset(g, 0, sizeof *g);
    if (opts) m->options = *opts;
    veil_status st = VEIL_OK;
    if (m->graph.n_inputs != 1)
        st = veil_fail(err, VEIL_ERR_UNSUPPORTED, "the model has %zu inputs besides its weights; Veil encrypts models "
                       "of one input", m->graph.n_inputs);
    if (st == VEIL_OK) {
        const veil_value_info *in = &m->graph.inputs[0];
        m->input_name = in->name;
        if (dims) {
            m->input_rank = rank;
            memcpy(m->input_dims, dims, rank * sizeof *dims);
        } else {
            st = sample_shape(m, in, err);
        }
    }
    if (st == VEIL_OK) st = veil_program_lower(m, err);
    if (st == VEIL_OK) model_hash(m, data, len);
    if (st != VEIL_OK) {
        veil_model_free(m);
        return st;
    }
    *out = m;
    return VEIL_OK;
}

veil_status veil_model_load_onnx(veil_model **out, const uint8_t *data, size_t len, const veil_model_options *opts,
                                 veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(data, err);
    veil_graph g;
    VEIL_TRY(veil_graph_parse(&g, data, len, err));
    return veil_model_from_graph(out, &g, data, len, NULL, 0, opts, err);
}

veil_status veil_model_load_onnx_file(veil_model **out, const char *path, const veil_model_options *opts,
                                      veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(path, err);
    veil_buffer buf = {0};
    VEIL_TRY(veil_file_read(&buf, path, MAX_MODEL_BYTES, err));
    veil_status st = veil_model_load_onnx(out, buf.data, buf.len, opts, err);
    veil_buffer_free(&buf);
    return st;
}

void veil_model_free(veil_model *m)
{
    if (!m) return;
    veil_program_clear(&m->program);
    veil_graph_clear(&m->graph);
    free(m->box_lo);
    free(m->box_hi);
    free(m->report);
    free(m);
}

size_t veil_model_input_width(const veil_model *m) { return m ? m->program.in_width : 0; }
size_t veil_model_output_width(const veil_model *m) { return m ? veil_final_width(&m->program) : 0; }
size_t veil_model_raw_width(const veil_model *m) { return m ? m->program.out_width : 0; }
const char *veil_model_report(const veil_model *m) { return m && m->report ? m->report : ""; }

veil_status veil_model_run_plain(const veil_model *m, double *out, const double *in, size_t rows, veil_error *err)
{
    VEIL_REQUIRE(m, err);
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(in, err);
    const size_t w_in = m->program.in_width, w_out = veil_final_width(&m->program);
    veil_env env = {0};
    veil_tensor x = {0};
    veil_status st = veil_graph_run_nodes(&m->graph, 0, 0, &env, err);
    if (st == VEIL_OK) st = veil_tensor_init(&x, VEIL_DT_FLOAT, m->input_rank, m->input_dims, err);
    for (size_t r = 0; st == VEIL_OK && r < rows; r++) {
        memcpy(x.data, in + r * w_in, w_in * sizeof(double));
        st = veil_env_put(&env, m->input_name, &x, err);
        if (st == VEIL_OK) st = veil_graph_run_nodes(&m->graph, 0, m->graph.n_nodes, &env, err);
        if (st != VEIL_OK) break;
        const veil_tensor *y = veil_env_get(&env, m->graph.outputs[0].name);
        if (!y || y->size != w_out) {
            st = veil_fail(err, VEIL_ERR_INTERNAL, "plain run: the output has %zu values, the program %zu",
                           y ? y->size : 0, w_out);
            break;
        }
        memcpy(out + r * w_out, y->data, w_out * sizeof(double));
    }
    veil_tensor_clear(&x);
    veil_env_clear(&env);
    return st;
}

veil_status veil_model_run_program(const veil_model *m, double *out, const double *in, size_t rows, veil_error *err)
{
    VEIL_REQUIRE(m, err);
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(in, err);
    const veil_program *p = &m->program;
    const size_t w_in = p->in_width, w_raw = p->out_width, w_out = veil_final_width(p);
    double *row = calloc(w_raw + 1, sizeof *row);
    if (!row) return veil_fail(err, VEIL_ERR_NO_MEMORY, "program run");
    veil_status st = VEIL_OK;
    for (size_t r = 0; st == VEIL_OK && r < rows; r++) {
        st = veil_program_run_plain(p, in + r * w_in, row, err);
        for (size_t i = 0; p->integer && i < w_raw; i++) row[i] *= p->out_scale;
        if (st == VEIL_OK) veil_final_apply(p, row, w_raw);
        if (st == VEIL_OK) memcpy(out + r * w_out, row, w_out * sizeof *row);
    }
    free(row);
    return st;
}

veil_status veil_model_run_integer(const veil_model *m, int64_t *out, const int64_t *in, size_t rows,
                                   veil_error *err)
{
    VEIL_REQUIRE(m, err);
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(in, err);
    if (!m->program.integer)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "integer run: the model was not loaded for exact inference");
    veil_status st = VEIL_OK;
    for (size_t r = 0; st == VEIL_OK && r < rows; r++)
        st = veil_program_run_integer(&m->program, in + r * m->program.in_width, out + r * m->program.out_width, err);
    return st;
}

double veil_model_output_scale(const veil_model *m) { return m && m->program.integer ? m->program.out_scale : 1.0; }

veil_status veil_model_range_excess(const veil_model *m, const double *in, size_t rows, double *excess,
                                    veil_error *err)
{
    VEIL_REQUIRE(m, err);
    VEIL_REQUIRE(in, err);
    VEIL_REQUIRE(excess, err);
    *excess = 0;
    double *y = calloc(m->program.out_width + 1, sizeof *y);
    if (!y) return veil_fail(err, VEIL_ERR_NO_MEMORY, "range check");
    veil_status st = VEIL_OK;
    for (size_t r = 0; st == VEIL_OK && r < rows; r++)
        st = veil_program_run_plain_excess(&m->program, in + r * m->program.in_width, y, excess, err);
    free(y);
    return st;
}

/* ---- the plan ------------------------------------------------------------------------------------ */

void veil_plan_info_from_params(veil_plan *plan)
{
    veil_plan_info *in = &plan->info;
    in->packing = plan->packing;
    in->n = veil_params_degree(plan->params);
    in->slots = plan->slots;
    in->batch = plan->batch;
    in->scale_bits = plan->scale_bits;
    in->log_qp = veil_params_log_qp(plan->params);
    in->q_count = veil_params_q_count(plan->params);
    in->p_count = veil_params_p_count(plan->params);
    in->dnum = veil_params_dnum(plan->params);
    in->rotations = plan->n_steps;
}

/* ---- sizes: exact, from the parameters and the wire format (docs/wire-format.md) ---------------------- */

static const veil_params *plan_params(const veil_plan *plan, size_t m)
{
    return m ? plan->crt_params[m] : plan->params;
}

static size_t fresh_bytes(const veil_plan *plan, size_t m)
{
    const veil_params *p = plan_params(plan, m);
    const size_t top = veil_params_q_count(p) - 1;
    return plan->scheme == VEIL_ML_BGV ? veil_bgv_ciphertext_stored_bytes(p, top, 2, true)
                                       : veil_ckks_ciphertext_stored_bytes(p, top, 2, true);
}

/*
 * The bundle veil_eval_keys_save writes: CKKS, [parameters, public key, relinearization key, Galois keys];
 * exact inference, per modulus [parameters, public key, relinearization key]. Every object uncompressed.
 */
static size_t eval_bundle_bytes(const veil_plan *plan)
{
    if (plan->scheme == VEIL_ML_BGV) {
        size_t items = 0;
        for (size_t m = 0; m < plan->crt_count; m++) {
            const veil_params *p = plan_params(plan, m);
            items += veil_params_stored_bytes(p) + veil_public_key_stored_bytes(p) + veil_switch_key_stored_bytes(p);
        }
        return veil_set_stored_bytes(VEIL_META_EXACT_BYTES, 3 * plan->crt_count, items);
    }
    const veil_params *p = plan->params;
    const size_t items = veil_params_stored_bytes(p) + veil_public_key_stored_bytes(p) +
                         (1 + plan->n_steps) * veil_switch_key_stored_bytes(p);
    return veil_set_stored_bytes(VEIL_META_BYTES, 3 + plan->n_steps, items);
}

void veil_plan_sizes(veil_plan *plan)
{
    plan->info.eval_key_bytes = (double)eval_bundle_bytes(plan);
    plan->info.ciphertext_bytes = (double)fresh_bytes(plan, 0);
}

size_t veil_plan_input_bytes(const veil_plan *plan, size_t rows)
{
    if (!plan || rows == 0) return 0;
    if (plan->packing == VEIL_PACKING_TRAINING) return veil_train_data_bytes(plan, rows);
    const size_t batch = plan->packing == VEIL_PACKING_LATENCY ? 1 : plan->batch;
    if (batch == 0) return 0;
    const size_t per = (rows + batch - 1) / batch * (plan->packing == VEIL_PACKING_LATENCY ? 1 : plan->in_width);
    const size_t groups = plan->scheme == VEIL_ML_BGV ? plan->crt_count : 1;
    size_t items = 0;
    for (size_t m = 0; m < groups; m++) items += veil_params_stored_bytes(plan_params(plan, m)) + per * fresh_bytes(plan, m);
    return veil_set_stored_bytes(plan->scheme == VEIL_ML_BGV ? VEIL_META_EXACT_BYTES : VEIL_META_BYTES,
                                 groups * (1 + per), items);
}

void veil_plan_free(veil_plan *plan)
{
    if (!plan) return;
    veil_params_free(plan->params);
    for (size_t i = 1; i < VEIL_CRT_MAX; i++) veil_params_free(plan->crt_params[i]);
    free(plan->steps);
    free(plan->box_lo);
    free(plan->box_hi);
    free(plan);
}

static size_t next_pow2(size_t x)
{
    size_t p = 1;
    while (p < x) p *= 2;
    return p;
}

/* The baby-step size of a diagonal matrix-vector product over S slots: about sqrt(S), a power of two. */
size_t veil_bsgs_baby(size_t slots)
{
    size_t g = 1;
    while (g * g < slots) g *= 2;
    return g;
}

static int has_step(const long *steps, size_t n, long s)
{
    for (size_t i = 0; i < n; i++)
        if (steps[i] == s) return 1;
    return 0;
}

size_t veil_latency_diagonals(size_t out_width, size_t slots)
{
    const size_t K = next_pow2(out_width);
    return K < slots ? K : slots;
}

double veil_latency_diag(const veil_stage *s, size_t slots, size_t K, size_t k, size_t i)
{
    const size_t row = i % K, col = (i + k) % slots;
    return row < s->out_width && col < s->in_width ? s->w[row * s->in_width + col] : 0.0;
}

size_t veil_latency_lanes(const veil_program *p, size_t stage, size_t slots, size_t half_n)
{
    const veil_stage *s = &p->stages[stage];
    if (s->kind != VEIL_STAGE_AFFINE || veil_latency_diagonals(s->out_width, slots) != slots || half_n < 2 * slots)
        return 1;
    for (size_t i = 0; i < stage; i++)
        if (p->stages[i].kind == VEIL_STAGE_AFFINE) return 1; /* only the first affine stage reads the lanes */
    /* the other lanes are left with partial sums that only the next affine stage clears: between the two, a
     * square keeps them bounded, while a polynomial approximation could blow them past the modulus */
    size_t next = stage + 1;
    while (next < p->n_stages && p->stages[next].kind == VEIL_STAGE_SQUARE) next++;
    if (next >= p->n_stages || p->stages[next].kind != VEIL_STAGE_AFFINE) return 1;
    return half_n / slots < slots ? half_n / slots : slots; /* at least one diagonal per lane */
}

/* Rotations of the latency packing: per affine stage, the BSGS diagonals used, the sum of the lanes and the
 * sums of the hybrid method's parts, all in steps of R slots but the lanes'. */
static veil_status latency_steps(veil_plan *plan, const veil_program *p, veil_error *err)
{
    const size_t S = plan->slots, half = veil_params_degree(plan->params) / 2, R = half / S;
    size_t cap = 4 * S + 64;
    plan->steps = calloc(cap, sizeof *plan->steps);
    if (!plan->steps) return veil_fail(err, VEIL_ERR_NO_MEMORY, "plan");
    for (size_t i = 0; i < p->n_stages; i++) {
        const veil_stage *s = &p->stages[i];
        if (s->kind != VEIL_STAGE_AFFINE) continue;
        const size_t K = veil_latency_diagonals(s->out_width, S), lanes = veil_latency_lanes(p, i, S, half);
        const size_t Kl = K / lanes, g = veil_bsgs_baby(Kl);
        for (size_t r = 1; r < lanes; r *= 2)
            if (!has_step(plan->steps, plan->n_steps, (long)r)) plan->steps[plan->n_steps++] = (long)r;
        for (size_t r = K; r < S; r *= 2)
            if (!has_step(plan->steps, plan->n_steps, (long)(r * R))) plan->steps[plan->n_steps++] = (long)(r * R);
        for (size_t k = 0; k < Kl; k++) {
            int nonzero = 0;
            for (size_t b = 0; b < lanes && !nonzero; b++)
                for (size_t t = 0; t < S && !nonzero; t++) nonzero = veil_latency_diag(s, S, K, b * Kl + k, t) != 0;
            if (!nonzero) continue;
            long baby = (long)(k % g * R), giant = (long)((k - k % g) * R);
            if (baby && !has_step(plan->steps, plan->n_steps, baby)) plan->steps[plan->n_steps++] = baby;
            if (giant && !has_step(plan->steps, plan->n_steps, giant)) plan->steps[plan->n_steps++] = giant;
        }
    }
    return VEIL_OK;
}

static size_t max_width(const veil_program *p)
{
    size_t w = p->in_width;
    for (size_t i = 0; i < p->n_stages; i++) {
        if (p->stages[i].in_width > w) w = p->stages[i].in_width;
        if (p->stages[i].out_width > w) w = p->stages[i].out_width;
    }
    return w;
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
static veil_status choose_params(veil_params **out, size_t depth, size_t slots, veil_security security,
                                 unsigned first_bits, unsigned max_scale, unsigned *scale_bits, veil_error *err)
{
    static const unsigned scales[] = {36, 33, 30};
    veil_params *best = NULL;
    unsigned best_scale = 0;
    veil_error last = {VEIL_OK, ""};
    for (size_t i = 0; i < sizeof scales / sizeof *scales; i++) {
        if (scales[i] > max_scale || scales[i] + 3 < max_scale) continue; /* max_scale and 3 bits below */
        veil_params_request req = {.depth = (unsigned)depth, .scale_bits = scales[i], .first_bits = first_bits,
                                   .slots = slots, .security = security};
        veil_params *p = NULL;
        if (veil_params_select(&p, &req, &last) != VEIL_OK) continue;
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
 * Checks the inputs (at the top level) and every stage's peak (at the level of its outputs, the lowest it
 * touches) against the moduli. *deficit: the most bits any of them lacks (0 when all fit); *worst: the stage
 * lacking them (SIZE_MAX: the inputs).
 */
static void room(const veil_plan *plan, const veil_program *p, double in_peak, const double *peak, double *deficit,
                 size_t *worst)
{
    size_t level = veil_params_q_count(plan->params) - 1;
    *deficit = bits_needed(in_peak, plan->scale_bits) - log2_q(plan->params, level);
    *worst = SIZE_MAX;
    for (size_t i = 0; i < p->n_stages; i++) {
        veil_program one = {.stages = &p->stages[i], .n_stages = 1};
        const size_t d = veil_program_depth(&one);
        level = level >= d ? level - d : 0;
        double lack = bits_needed(peak[i], plan->scale_bits) - log2_q(plan->params, level);
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
    VEIL_TRY(veil_program_bounds(b->p, b->p->n_stages, b->lo, b->hi, b->zero_slots, b->olo, b->ohi, b->peak, err));
    b->out_peak = 0;
    for (size_t i = 0; i < b->p->out_width; i++) b->out_peak = fmax(b->out_peak, fmax(fabs(b->olo[i]), fabs(b->ohi[i])));
    return VEIL_OK;
}

/* No range declared: the widest [-R, R] (R = 2^k/4, up to 2^30) that the plan's parameters guarantee. */
static veil_status widest_box(veil_plan *plan, bounds_work *b, veil_error *err)
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
        if (bounds_of_box(b, &last) == VEIL_OK) room(plan, b->p, b->in_peak, b->peak, &deficit, &worst);
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
    plan->box_lo = malloc(w * sizeof(double));
    plan->box_hi = malloc(w * sizeof(double));
    b.peak = calloc(n, sizeof *b.peak);
    b.olo = malloc(p->out_width * sizeof *b.olo);
    b.ohi = malloc(p->out_width * sizeof *b.ohi);
    b.lo = plan->box_lo;
    b.hi = plan->box_hi;
    veil_status st = b.lo && b.hi && b.peak && b.olo && b.ohi ? VEIL_OK : veil_fail(err, VEIL_ERR_NO_MEMORY, "plan");
    const char *source = "declared";
    for (size_t i = 0; st == VEIL_OK && i < w; i++) {
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
    if (st == VEIL_OK && !source) {
        st = widest_box(plan, &b, err);
    } else if (st == VEIL_OK) {
        st = bounds_of_box(&b, err);
        double deficit = 0;
        size_t worst = SIZE_MAX;
        if (st == VEIL_OK) room(plan, p, b.in_peak, b.peak, &deficit, &worst);
        /*
         * First a larger first prime (room at every level), then a smaller scale: 3 bits less scale give 3 more
         * at level 0 and 1, where the outputs and the last products live (less precision; fewer bits at higher
         * levels, which room() checks again). A first prime the security level cannot afford ends its growth.
         */
        unsigned first = FIRST_PRIME_BITS, max_scale = SCALE_BITS;
        int grow = 1;
        while (st == VEIL_OK && deficit > 0) {
            unsigned try_first = first, try_scale = max_scale;
            if (grow && first < MAX_FIRST_PRIME_BITS)
                try_first = first + (unsigned)ceil(deficit) > MAX_FIRST_PRIME_BITS ? MAX_FIRST_PRIME_BITS
                                                                                     : first + (unsigned)ceil(deficit);
            else if (plan->scale_bits > MIN_SCALE_BITS)
                try_scale = plan->scale_bits - 3 < MIN_SCALE_BITS ? MIN_SCALE_BITS : plan->scale_bits - 3;
            else
                break;
            veil_params *params = NULL;
            unsigned scale_bits = 0;
            veil_error ignored = {VEIL_OK, ""};
            if (choose_params(&params, depth, slots_wanted, req->security, try_first, try_scale, &scale_bits,
                              &ignored) != VEIL_OK) {
                if (try_first == first) break;
                grow = 0; /* a first prime the security level cannot afford: shrink the scale instead */
                continue;
            }
            first = try_first;
            max_scale = try_scale;
            veil_params_free(plan->params);
            plan->params = params;
            plan->scale_bits = scale_bits;
            room(plan, p, b.in_peak, b.peak, &deficit, &worst);
        }
        if (st == VEIL_OK && deficit > 0) {
            const double v = worst == SIZE_MAX ? b.in_peak : b.peak[worst];
            char where[200];
            if (worst == SIZE_MAX) snprintf(where, sizeof where, "the inputs themselves");
            else snprintf(where, sizeof where, "layer %zu (%s)", worst + 1, p->stages[worst].what ? p->stages[worst].what : "?");
            st = veil_fail(err, VEIL_ERR_ARGUMENT, "on the %s inputs' range, %s can reach |value| %.4g, beyond what "
                           "CKKS holds at its level with a %.0f-bit first prime and a %u-bit scale (%.1f bits short): "
                           "the results would wrap around; narrow the inputs' range (standardize them, or "
                           "--input-range LO:HI)", source, where, v, log2((double)veil_params_q(plan->params, 0)),
                           plan->scale_bits, deficit);
        }
    }
    if (st == VEIL_OK) plan->bound = b.out_peak;
    free(b.peak);
    free(b.olo);
    free(b.ohi);
    return st;
}

/*
 * The time estimate: a cost model of the evaluator (docs/ml.md, "Estimates"), counting what each stage does
 * at its level and pricing it with three constants fitted to `veil-bench estimates` on the project's machine
 * (single thread, AVX2; docs/performance.md): NTT_NS per coefficient, limb and log2 N of a transform (key
 * switches, rescales), MUL_NS per coefficient and limb of a product (key products, plaintext products), and
 * LIN_NS per coefficient and limb of a term of the throughput packing's fused linear layer (lazy reduction).
 */
#define NTT_NS 0.33
#define MUL_NS 1.07
#define LIN_NS 0.24

typedef struct cost_model {
    double n, lg, special, alpha;
} cost_model;

static cost_model cost_of(const veil_plan_info *in)
{
    cost_model c = {(double)in->n, log2((double)in->n), (double)in->p_count,
                    ceil((double)in->q_count / (double)(in->dnum ? in->dnum : 1))};
    return c;
}

/* A rescale: the last limb's inverse transform and the others' forward ones, both polynomials. */
static double rescale_s(const cost_model *c, size_t level) { return NTT_NS * 1e-9 * c->n * c->lg * 2 * ((double)level + 1); }

/* A key switch at a level: ModUp of its digits to QP, the key products, ModDown (in transforms of a limb). */
static double ks_s(const cost_model *c, size_t level)
{
    const double q = (double)level + 1, digits = ceil(q / c->alpha);
    return NTT_NS * 1e-9 * c->n * c->lg * (digits * (q + c->special) + 2 * (q + c->special)) +
           MUL_NS * 1e-9 * c->n * 2 * digits * (q + c->special);
}

/* A rotation after the first of a hoisted group: its key products and ModDown only. */
static double hoisted_s(const cost_model *c, size_t level)
{
    const double q = (double)level + 1, digits = ceil(q / c->alpha);
    return NTT_NS * 1e-9 * c->n * c->lg * 2 * (q + c->special) + MUL_NS * 1e-9 * c->n * 2 * digits * (q + c->special);
}

double veil_key_switch_seconds(const veil_plan_info *info, size_t level)
{
    const cost_model c = cost_of(info);
    return ks_s(&c, level);
}

double veil_hoisted_rotation_seconds(const veil_plan_info *info, size_t level)
{
    const cost_model c = cost_of(info);
    return hoisted_s(&c, level);
}

double veil_rescale_seconds(const veil_plan_info *info, size_t level)
{
    const cost_model c = cost_of(info);
    return rescale_s(&c, level);
}

/* polys polynomials of a ciphertext times a plaintext or a scalar */
static double product_s(const cost_model *c, size_t level, double polys) { return MUL_NS * 1e-9 * c->n * polys * ((double)level + 1); }

/* Ciphertext products of an elementwise stage (the square, the power basis, Chebyshev by baby-step giant-step). */
static double stage_mults(const veil_stage *s)
{
    if (s->kind == VEIL_STAGE_SQUARE) return 1;
    if (s->kind == VEIL_STAGE_POWER) return s->degree >= 3 ? 2 : s->degree == 2 ? 1 : 0;
    return ceil(2 * sqrt((double)s->degree + 1)) + ceil(log2((double)s->degree + 1));
}

/*
 * One ciphertext through an elementwise stage starting at level l; relin: its products are relinearized. A
 * polynomial's coefficients are constant products, each rescaled (veil_ckks_mul_constant).
 */
static double elementwise_s(const cost_model *c, const veil_stage *s, size_t l, int relin)
{
    const double mults = stage_mults(s);
    return mults * (product_s(c, l, 4) + (relin ? ks_s(c, l) : 0) + rescale_s(c, l)) +
           (s->kind == VEIL_STAGE_SQUARE ? 0 : (product_s(c, l, 2) + rescale_s(c, l)) * (double)s->degree);
}

/* A throughput affine stage at level l: the fused layer (every nonzero weight a product), a rescale per
 * output, and the relinearization of outputs when its input is an unrelinearized square. */
static double throughput_affine_s(const cost_model *c, const veil_stage *s, size_t l, int lazy_input)
{
    size_t nnz = 0;
    for (size_t k = 0; k < s->in_width * s->out_width; k++) nnz += s->w[k] != 0;
    return LIN_NS * 1e-9 * c->n * (lazy_input ? 3 : 2) * ((double)l + 1) * (double)nnz +
           (double)s->out_width * (rescale_s(c, l) + (lazy_input ? ks_s(c, l) : 0));
}

/* A latency affine stage (he.c latency_affine): the used diagonals' products, the hoisted baby steps, the
 * giant steps, the sums of lanes and of the hybrid method's parts, one rescale and the bias. */
static double latency_affine_s(const cost_model *c, const veil_plan *plan, const veil_program *p, size_t i, size_t l)
{
    const veil_stage *s = &p->stages[i];
    const size_t S = plan->slots, half = veil_params_degree(plan->params) / 2;
    const size_t K = veil_latency_diagonals(s->out_width, S), lanes = veil_latency_lanes(p, i, S, half);
    const size_t Kl = K / lanes, g = veil_bsgs_baby(Kl);
    size_t products = 0, babies = 0, giants = 0;
    for (size_t k = 0; k < Kl; k++) {
        int nonzero = 0;
        for (size_t b = 0; b < lanes && !nonzero; b++)
            for (size_t t = 0; t < S && !nonzero; t++) nonzero = veil_latency_diag(s, S, K, b * Kl + k, t) != 0;
        products += (size_t)nonzero;
    }
    babies = (g < Kl ? g : Kl) - 1;
    giants = (Kl + g - 1) / g - 1;
    double sums = 0;
    for (size_t r = 1; r < lanes; r *= 2) sums++;
    for (size_t r = K; r < S; r *= 2) sums++;
    return product_s(c, l, 2) * (double)products + (babies ? ks_s(c, l) + hoisted_s(c, l) * (double)(babies - 1) : 0) +
           (ks_s(c, l) + product_s(c, l, 2)) * (double)giants + ks_s(c, l - 1) * sums + 2 * rescale_s(c, l);
}

static size_t stage_levels(const veil_stage *s)
{
    veil_program one = {.stages = (veil_stage *)s, .n_stages = 1};
    return veil_program_depth(&one);
}

static double estimate_seconds(const veil_plan *plan, const veil_program *p)
{
    const cost_model c = cost_of(&plan->info);
    size_t level = plan->info.q_count - 1, w = p->in_width;
    double t = 0;
    for (size_t i = 0; i < p->n_stages; i++) {
        const veil_stage *s = &p->stages[i];
        const int next_affine = i + 1 < p->n_stages && p->stages[i + 1].kind == VEIL_STAGE_AFFINE;
        const int lazy_input = i > 0 && p->stages[i - 1].kind == VEIL_STAGE_SQUARE;
        if (plan->packing == VEIL_PACKING_THROUGHPUT) {
            if (s->kind == VEIL_STAGE_AFFINE) t += throughput_affine_s(&c, s, level, lazy_input);
            else t += (double)w * elementwise_s(&c, s, level, !(s->kind == VEIL_STAGE_SQUARE && next_affine));
        } else {
            t += s->kind == VEIL_STAGE_AFFINE ? latency_affine_s(&c, plan, p, i, level) : elementwise_s(&c, s, level, 1);
        }
        w = s->out_width;
        const size_t used = stage_levels(s);
        level = level >= used ? level - used : 0;
    }
    return t;
}

/*
 * The memory model (docs/ml.md, "Estimates"): the process itself, each context's ring tables (about 72 bytes
 * per coefficient and prime, measured), keys in memory (a and b of every digit over QP, 64-bit residues) and
 * the ciphertexts a computation holds.
 */
#define PROCESS_BYTES 10e6
#define CONTEXT_BYTES 72.0

static double qp_poly_bytes(const veil_params *p)
{
    return 8.0 * (double)veil_params_degree(p) * (double)(veil_params_q_count(p) + veil_params_p_count(p));
}

double veil_ciphertext_memory(const veil_params *p, size_t level)
{
    return 2 * 8.0 * (double)veil_params_degree(p) * ((double)level + 1);
}

void veil_plan_memory(veil_plan *plan, double work_bytes)
{
    veil_plan_info *in = &plan->info;
    const size_t groups = plan->scheme == VEIL_ML_BGV ? plan->crt_count : 1;
    double server = PROCESS_BYTES, keygen = PROCESS_BYTES;
    for (size_t m = 0; m < groups; m++) {
        const veil_params *p = plan_params(plan, m);
        const double context = CONTEXT_BYTES / 8 * qp_poly_bytes(p), pk = 2 * qp_poly_bytes(p);
        const double key = 2 * qp_poly_bytes(p) * (double)veil_params_dnum(p);
        const double switch_keys = plan->scheme == VEIL_ML_BGV ? 1 : (double)(1 + plan->n_steps);
        server += context + pk + key * switch_keys;
        /* veil keygen: one key in memory at a time, with as much again of temporaries, and its stored form;
         * exact inference keeps its few keys and writes the bundle from memory */
        keygen += context + pk + 2 * key + (plan->scheme == VEIL_ML_BGV ? 0 : (double)veil_switch_key_stored_bytes(p));
    }
    if (plan->scheme == VEIL_ML_BGV) keygen += in->eval_key_bytes;
    /* the server reads the bundle's file whole while it parses the keys, then works */
    in->estimated_memory_bytes = server + fmax(in->eval_key_bytes, work_bytes);
    in->keygen_memory_bytes = keygen;
}

/* The latency packing's diagonals, encoded once per evaluator (bytes). */
static double diagonal_bytes(const veil_plan *plan, const veil_program *p)
{
    const size_t S = plan->slots, half = veil_params_degree(plan->params) / 2;
    size_t level = plan->info.q_count - 1;
    double bytes = 0;
    for (size_t i = 0; i < p->n_stages; i++) {
        const veil_stage *s = &p->stages[i];
        if (s->kind == VEIL_STAGE_AFFINE)
            bytes += veil_ciphertext_memory(plan->params, level) / 2 *
                     (double)(veil_latency_diagonals(s->out_width, S) / veil_latency_lanes(p, i, S, half));
        const size_t used = stage_levels(s);
        level = level >= used ? level - used : 0;
    }
    return bytes;
}

static void estimate(veil_plan *plan, const veil_program *p)
{
    veil_plan_info *in = &plan->info;
    veil_plan_sizes(plan);
    in->estimated_seconds = estimate_seconds(plan, p);
    /* a batch's inputs (their file too), two layers' outputs, and the latency packing's diagonals */
    const double ct = veil_ciphertext_memory(plan->params, in->q_count - 1);
    double work = ct * (double)(in->in_ciphertexts + 2 * max_width(p)) +
                  (double)veil_plan_input_bytes(plan, plan->packing == VEIL_PACKING_LATENCY ? 1 : plan->batch);
    if (plan->packing == VEIL_PACKING_LATENCY) work = ct * 4 + diagonal_bytes(plan, p);
    veil_plan_memory(plan, work);
}

veil_status veil_model_plan(veil_plan **out, const veil_model *m, const veil_plan_request *req, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(m, err);
    veil_plan_request dflt = {0};
    if (!req) req = &dflt;
    if (req->packing != VEIL_PACKING_THROUGHPUT && req->packing != VEIL_PACKING_LATENCY)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "plan: unknown packing %d", (int)req->packing);
    if (req->security >= VEIL_SECURITY_NONE)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "plan: a security level of 128, 192 or 256 bits is required");
    if (req->scheme != VEIL_ML_CKKS && req->scheme != VEIL_ML_BGV)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "plan: unknown scheme %d", (int)req->scheme);
    const veil_program *p = &m->program;
    if ((req->scheme == VEIL_ML_BGV) != (p->integer != 0))
        return veil_fail(err, VEIL_ERR_ARGUMENT, p->integer ? "plan: the model was loaded for exact inference: plan it with BGV"
                         : "plan: exact inference (BGV) needs the model loaded for it (options.integer, `--scheme bgv`)");
    veil_plan *plan = calloc(1, sizeof *plan);
    if (!plan) return veil_fail(err, VEIL_ERR_NO_MEMORY, "plan");
    memcpy(plan->model_hash, m->hash, sizeof plan->model_hash);
    plan->packing = req->packing;
    plan->in_width = p->in_width;
    plan->out_width = p->out_width;
    plan->final_op = p->final_op;
    if (req->scheme == VEIL_ML_BGV) {
        veil_status st = veil_exact_plan(plan, m, req, err);
        if (st != VEIL_OK) {
            veil_plan_free(plan);
            return st;
        }
        *out = plan;
        return VEIL_OK;
    }
    size_t depth = veil_program_depth(p);
    size_t slots_wanted;
    if (req->packing == VEIL_PACKING_LATENCY) {
        plan->slots = next_pow2(max_width(p));
        slots_wanted = plan->slots;
    } else {
        if (req->batch > ((size_t)1 << 16)) {
            veil_plan_free(plan);
            return veil_fail(err, VEIL_ERR_ARGUMENT, "plan: batch %zu is above 65536 samples per ciphertext", req->batch);
        }
        slots_wanted = req->batch;
    }
    veil_status st = choose_params(&plan->params, depth, slots_wanted, req->security, FIRST_PRIME_BITS,
                                   SCALE_BITS, &plan->scale_bits, err);
    if (st == VEIL_OK) st = plan_bounds(plan, m, req, depth, slots_wanted, err);
    if (st != VEIL_OK) {
        veil_plan_free(plan);
        return st;
    }
    const size_t n = veil_params_degree(plan->params);
    if (req->packing == VEIL_PACKING_THROUGHPUT) {
        plan->slots = req->batch ? next_pow2(req->batch) : n / 2;
        plan->batch = req->batch ? req->batch : n / 2;
    } else {
        plan->batch = 1;
        if ((st = latency_steps(plan, p, err)) != VEIL_OK) {
            veil_plan_free(plan);
            return st;
        }
    }
    veil_plan_info_from_params(plan);
    veil_plan_info *in = &plan->info;
    in->depth = depth;
    in->in_ciphertexts = plan->packing == VEIL_PACKING_THROUGHPUT ? p->in_width : 1;
    in->out_ciphertexts = plan->packing == VEIL_PACKING_THROUGHPUT ? p->out_width : 1;
    in->output_bound = plan->bound;
    in->input_lo = INFINITY;
    in->input_hi = -INFINITY;
    for (size_t i = 0; i < p->in_width; i++) {
        in->input_lo = fmin(in->input_lo, plan->box_lo[i]);
        in->input_hi = fmax(in->input_hi, plan->box_hi[i]);
    }
    estimate(plan, p);
    *out = plan;
    return VEIL_OK;
}

void veil_plan_get_info(const veil_plan *plan, veil_plan_info *info)
{
    if (plan && info) *info = plan->info;
}

size_t veil_plan_rotations(const veil_plan *plan, long *steps, size_t max)
{
    if (!plan) return 0;
    for (size_t i = 0; steps && i < plan->n_steps && i < max; i++) steps[i] = plan->steps[i];
    return plan->n_steps;
}
