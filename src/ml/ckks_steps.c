/*
 * The latency packing's slots and rotation steps (a plan's Galois keys), and the info's shape of a plan, shared
 * by the leveled plan (ckks_plan.c) and the plan with bootstraps (ckks_boot.c).
 */
#include <math.h>
#include <stdlib.h>
#include "ml/ml_plan.h"
#include "veil/ckks.h"
#include "veil/circuits.h"

/* The widest vector of the program: its inputs and every stage's inputs and outputs (the latency packing's slots). */
size_t veil_program_max_width(const veil_program *p)
{
    size_t w = p->in_width;
    for (size_t i = 0; i < p->n_stages; i++) {
        if (p->stages[i].in_width > w) w = p->stages[i].in_width;
        if (p->stages[i].out_width > w) w = p->stages[i].out_width;
    }
    return w;
}

static int has_step(const long *steps, size_t n, long s)
{
    for (size_t i = 0; i < n; i++)
        if (steps[i] == s) return 1;
    return 0;
}

/* Rotations of the latency packing: per affine stage, the BSGS diagonals used, the sum of the lanes and the
 * sums of the hybrid method's parts, all in steps of R slots but the lanes' (R = 1 in the periodic layout of
 * plans with bootstraps, veil_latency_span). */
veil_status veil_ckks_plan_latency_steps(veil_plan *plan, const veil_program *p, veil_error *err)
{
    const size_t S = plan->slots, R = veil_latency_span(veil_params_degree(plan->params) / 2, S, plan->boot.count != 0) / S;
    const size_t half = R * S;
    size_t cap = 4 * S + 64;
    plan->steps = calloc(cap, sizeof *plan->steps);
    if (!plan->steps) return veil_fail(err, VEIL_ERR_NO_MEMORY, "plan");
    for (size_t i = 0; i < p->n_stages; i++) {
        const veil_stage *s = &p->stages[i];
        if (s->kind != VEIL_STAGE_AFFINE) continue;
        const size_t K = veil_latency_diagonals(s->out_width, S), lanes = veil_latency_lanes(p, i, S, half);
        const size_t Kl = K / lanes, g = veil_ckks_linear_transform_baby(Kl);
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

void veil_ckks_plan_info_shape(veil_plan *plan, const veil_program *p)
{
    veil_plan_info *in = &plan->info;
    in->depth = veil_program_depth(p);
    in->in_ciphertexts = plan->packing == VEIL_PACKING_THROUGHPUT ? p->in_width : 1;
    in->out_ciphertexts = plan->packing == VEIL_PACKING_THROUGHPUT ? p->out_width : 1;
    in->output_bound = plan->bound;
    in->input_lo = INFINITY;
    in->input_hi = -INFINITY;
    for (size_t i = 0; i < p->in_width; i++) {
        in->input_lo = fmin(in->input_lo, plan->ckks.box_lo[i]);
        in->input_hi = fmax(in->input_hi, plan->ckks.box_hi[i]);
    }
}
