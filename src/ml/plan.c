/*
 * Plans, the part every scheme shares: the info from the parameters, the latency packing's layout, and the
 * time and memory models of the estimates (docs/ml.md, "Estimates").
 */
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include "ml/ml_plan.h"
#include "veil/circuits.h"
#include "serial/serial_internal.h"

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

void veil_plan_free(veil_plan *plan)
{
    if (!plan) return;
    veil_params_free(plan->params);
    for (size_t i = 1; i < VEIL_CRT_MAX; i++) veil_params_free(plan->bgv.crt_params[i]);
    free(plan->steps);
    free(plan->train.boot_elements);
    free(plan->ckks.box_lo);
    free(plan->ckks.box_hi);
    free(plan->boot_galois);
    for (size_t k = 0; k < VEIL_ML_BOOT_MAX; k++) free(plan->boot_what[k]);
    free(plan);
}

static size_t next_pow2(size_t x)
{
    size_t p = 1;
    while (p < x) p *= 2;
    return p;
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

/* A latency affine stage (ckks_infer.c latency_affine): the used diagonals' products, the hoisted baby steps, the
 * giant steps, the sums of lanes and of the hybrid method's parts, one rescale and the bias. */
static double latency_affine_s(const cost_model *c, const veil_plan *plan, const veil_program *p, size_t i, size_t l)
{
    const veil_stage *s = &p->stages[i];
    const size_t S = plan->slots, half = veil_latency_span(veil_params_degree(plan->params) / 2, S, plan->boot.count != 0);
    const size_t K = veil_latency_diagonals(s->out_width, S), lanes = veil_latency_lanes(p, i, S, half);
    const size_t Kl = K / lanes, g = veil_ckks_linear_transform_baby(Kl);
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
           (ks_s(c, l) + product_s(c, l, 2)) * (double)giants + ks_s(c, l ? l - 1 : 0) * sums + 2 * rescale_s(c, l);
}

static size_t stage_levels(const veil_stage *s)
{
    veil_program one = {.stages = (veil_stage *)s, .n_stages = 1};
    return veil_program_depth(&one);
}

double veil_plan_ckks_seconds(const veil_plan *plan, const veil_program *p)
{
    const cost_model c = cost_of(&plan->info);
    /* with bootstraps (ckks_boot.c), the stages run from the level a bootstrap returns to, reset after each point */
    const size_t top = plan->boot.count ? plan->boot.levels : plan->info.q_count - 1;
    size_t level = top, w = p->in_width, next = 0;
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
        if (next < plan->boot.count && plan->boot.after[next] == i) {
            level = top;
            next++;
        }
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

void veil_plan_memory(veil_plan *plan, size_t groups, double switch_keys, int keys_in_memory, double work_bytes)
{
    veil_plan_info *in = &plan->info;
    double server = PROCESS_BYTES, keygen = PROCESS_BYTES;
    for (size_t m = 0; m < groups; m++) {
        const veil_params *p = m ? plan->bgv.crt_params[m] : plan->params;
        const double context = CONTEXT_BYTES / 8 * qp_poly_bytes(p), pk = 2 * qp_poly_bytes(p);
        const double key = 2 * qp_poly_bytes(p) * (double)veil_params_dnum(p);
        server += context + pk + key * switch_keys;
        /* veil keygen: one key in memory at a time, with as much again of temporaries, and its stored form;
         * exact inference keeps its few keys and writes the bundle from memory */
        keygen += context + pk + 2 * key + (keys_in_memory ? 0 : (double)veil_switch_key_stored_bytes(p));
    }
    if (keys_in_memory) keygen += in->eval_key_bytes;
    /* the server reads the bundle's file whole while it parses the keys, then works */
    in->estimated_memory_bytes = server + fmax(in->eval_key_bytes, work_bytes);
    in->keygen_memory_bytes = keygen;
}

/* The latency packing's diagonals, encoded once per evaluator (bytes). */
double veil_plan_diagonal_bytes(const veil_plan *plan, const veil_program *p)
{
    const size_t S = plan->slots, half = veil_latency_span(veil_params_degree(plan->params) / 2, S, plan->boot.count != 0);
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
