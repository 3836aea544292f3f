/*
 * Exact inference (BGV), the plan: the bound of every output, the plaintext moduli and the ring.
 *
 * The plan propagates the inputs' integer range through the program by interval arithmetic: an affine row
 * maps [lo, hi] to b + sum_i (w_i > 0 ? w_i [lo_i, hi_i] : w_i [hi_i, lo_i]), a square to [0 or the smaller
 * square, the larger square]. The outputs' worst-case bound B fixes the plaintext moduli: BGV computes
 * modulo t, so the result is exact when the product T of the moduli exceeds 2 B + 1 (the centered residue is
 * the integer). One t below 2^40 holds 39 bits; larger bounds take k = 2 .. 4 moduli, each its own parameter
 * set and keys, combined by the CRT at decryption (Veil's CRT recomposition, veil_bgv_crt_compose). The plan
 * takes the k and ring that cost least (k x N x primes).
 */
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include "ml/ml_plan.h"
#include "veil/serial.h"
#include "veil/ring.h"
#include "serial/serial_internal.h"

#define MAX_BOUND_BITS 62.0 /* the outputs are recomposed into int64 */
#define MAX_T_BITS 39       /* veil_bgv_params_select takes t below 2^40 */
#define MIN_T_BITS 17
#define BGV_TERM_NS 2.5  /* calibrated: docs/ml.md, "Estimates" */

/* ---- the plan ------------------------------------------------------------------------------------ */

/* The bound of every output over inputs in [lo, hi], the linear layers' largest noise growth, the squares. */
static veil_status program_bounds(const veil_program *p, int64_t lo, int64_t hi, double *bound, double *bound_bits,
                                  double *linear_bits, unsigned *squares, veil_error *err)
{
    size_t maxw = p->in_width;
    for (size_t i = 0; i < p->n_stages; i++)
        if (p->stages[i].out_width > maxw) maxw = p->stages[i].out_width;
    long double *l = calloc(maxw, sizeof *l), *h = calloc(maxw, sizeof *h), *nl = calloc(maxw, sizeof *nl),
                *nh = calloc(maxw, sizeof *nh);
    if (!l || !h || !nl || !nh) {
        free(l), free(h), free(nl), free(nh);
        return veil_fail(err, VEIL_ERR_NO_MEMORY, "plan");
    }
    for (size_t i = 0; i < p->in_width; i++) l[i] = (long double)lo, h[i] = (long double)hi;
    long double worst = fmaxl(fabsl((long double)lo), fabsl((long double)hi));
    double growth = 0;
    *squares = 0;
    for (size_t si = 0; si < p->n_stages; si++) {
        const veil_stage *s = &p->stages[si];
        if (s->kind != VEIL_STAGE_SQUARE && s->kind != VEIL_STAGE_AFFINE) {
            free(l), free(h), free(nl), free(nh);
            return veil_fail(err, VEIL_ERR_UNSUPPORTED, "plan: exact inference takes affine layers and squares only");
        }
        if (s->kind == VEIL_STAGE_SQUARE) {
            (*squares)++;
            for (size_t i = 0; i < s->in_width; i++) {
                const long double a = l[i] * l[i], b = h[i] * h[i];
                nh[i] = fmaxl(a, b);
                nl[i] = l[i] <= 0 && h[i] >= 0 ? 0 : fminl(a, b);
            }
        } else {
            for (size_t r = 0; r < s->out_width; r++) {
                long double a = s->b[r], b = s->b[r];
                double weight = 0;
                for (size_t c = 0; c < s->in_width; c++) {
                    const long double w = s->w[r * s->in_width + c];
                    a += w > 0 ? w * l[c] : w * h[c];
                    b += w > 0 ? w * h[c] : w * l[c];
                    weight += fabs(s->w[r * s->in_width + c]);
                }
                nl[r] = a, nh[r] = b;
                if (weight > 0) growth = fmax(growth, log2(weight));
            }
        }
        for (size_t i = 0; i < s->out_width; i++) {
            l[i] = nl[i], h[i] = nh[i];
            worst = fmaxl(worst, fmaxl(fabsl(l[i]), fabsl(h[i])));
        }
    }
    long double out = 0;
    for (size_t i = 0; i < p->out_width; i++) out = fmaxl(out, fmaxl(fabsl(l[i]), fabsl(h[i])));
    free(l), free(h), free(nl), free(nh);
    /* every value must fit the int64 reference; the outputs fix the moduli */
    const double worst_bits = worst > 0 ? (double)log2l(worst) : 0;
    if (worst_bits >= MAX_BOUND_BITS)
        return veil_fail(err, VEIL_ERR_UNSUPPORTED, "plan: the quantized network's values may reach 2^%.1f on inputs "
                         "in [%lld, %lld]; exact inference holds 2^%.0f: quantize to fewer bits (weights or inputs), "
                         "no keys were made", worst_bits, (long long)lo, (long long)hi, MAX_BOUND_BITS);
    *bound_bits = out > 0 ? (double)log2l(out) : 0;
    *bound = ceil((double)out * (1 + 0x1p-40)); /* rounded up: every output is an integer at most this */
    *linear_bits = ceil(growth);
    return VEIL_OK;
}

/* k distinct primes t = 1 mod 2n of `bits` bits, the largest first; 0 when there are not enough. */
static int find_moduli(uint64_t *t, size_t k, unsigned bits, size_t n)
{
    const uint64_t step = 2 * (uint64_t)n, top = ((uint64_t)1 << bits) - 1, bottom = (uint64_t)1 << (bits - 1);
    uint64_t c = top - (top - 1) % step; /* the largest value = 1 mod 2n below 2^bits */
    size_t found = 0;
    for (; found < k && c > bottom; c -= step)
        if (veil_is_prime(c)) t[found++] = c;
    return found == k;
}

typedef struct candidate {
    veil_params *params[VEIL_CRT_MAX];
    uint64_t t[VEIL_CRT_MAX];
    size_t k, n;
    double cost;
} candidate;

static void candidate_clear(candidate *c)
{
    for (size_t i = 0; i < VEIL_CRT_MAX; i++) veil_params_free(c->params[i]);
    memset(c, 0, sizeof *c);
}

/* The cheapest ring for k moduli of `bits` bits each (c->k = 0 when none holds them). */
static void try_moduli(candidate *c, size_t k, unsigned bits, unsigned depth, unsigned linear_bits,
                       veil_security security, size_t min_slots)
{
    memset(c, 0, sizeof *c);
    for (size_t n = 4096; n <= 65536; n *= 2) {
        if (n < min_slots || !find_moduli(c->t, k, bits, n)) continue;
        int ok = 1;
        double primes = 0;
        for (size_t i = 0; i < k && ok; i++) {
            veil_bgv_request req = {depth, c->t[i], true, n, security, linear_bits};
            veil_error ignored = {VEIL_OK, ""};
            ok = veil_bgv_params_select(&c->params[i], &req, &ignored) == VEIL_OK &&
                 veil_params_degree(c->params[i]) == n;
            if (ok) primes += (double)(veil_params_q_count(c->params[i]) + veil_params_p_count(c->params[i]));
        }
        if (ok) {
            c->k = k;
            c->n = n;
            c->cost = (double)n * primes;
            return;
        }
        candidate_clear(c);
    }
}

/* A fresh input ciphertext of modulus m, stored (seeded). */
static size_t fresh_bytes(const veil_plan *plan, size_t m)
{
    const veil_params *p = m ? plan->bgv.crt_params[m] : plan->params;
    return veil_bgv_ciphertext_stored_bytes(p, veil_params_q_count(p) - 1, 2, true);
}

/* The bundle veil_eval_keys_save writes: per modulus [parameters, public key, relinearization key], uncompressed. */
static size_t eval_bundle_bytes(const veil_plan *plan)
{
    size_t items = 0;
    for (size_t m = 0; m < plan->bgv.crt_count; m++) {
        const veil_params *p = m ? plan->bgv.crt_params[m] : plan->params;
        items += veil_params_stored_bytes(p) + veil_public_key_stored_bytes(p) + veil_switch_key_stored_bytes(p);
    }
    return veil_set_stored_bytes(VEIL_META_EXACT_BYTES, 3 * plan->bgv.crt_count, items);
}

size_t veil_bgv_plan_input_bytes(const veil_plan *plan, size_t rows)
{
    const size_t batch = plan->batch;
    if (batch == 0) return 0;
    const size_t per = (rows + batch - 1) / batch * plan->in_width;
    size_t items = 0;
    for (size_t m = 0; m < plan->bgv.crt_count; m++)
        items += veil_params_stored_bytes(m ? plan->bgv.crt_params[m] : plan->params) + per * fresh_bytes(plan, m);
    return veil_set_stored_bytes(VEIL_META_EXACT_BYTES, plan->bgv.crt_count * (1 + per), items);
}

veil_status veil_bgv_plan(veil_plan *plan, const veil_model *m, const veil_plan_request *req, veil_error *err)
{
    const veil_program *p = &m->program;
    if (req->packing != VEIL_PACKING_THROUGHPUT)
        return veil_fail(err, VEIL_ERR_UNSUPPORTED, "plan: exact inference (BGV) runs the throughput packing only");
    if (req->input_lo > req->input_hi || req->input_lo <= -((int64_t)1 << 40) || req->input_hi >= ((int64_t)1 << 40))
        return veil_fail(err, VEIL_ERR_ARGUMENT, "plan: the inputs' integer range [%lld, %lld] is empty or beyond 2^40",
                         (long long)req->input_lo, (long long)req->input_hi);
    if (req->batch > ((size_t)1 << 16))
        return veil_fail(err, VEIL_ERR_ARGUMENT, "plan: batch %zu is above 65536 samples per ciphertext", req->batch);
    double bound = 0, bound_bits = 0, linear_bits = 0;
    unsigned squares = 0;
    veil_status st = program_bounds(p, req->input_lo, req->input_hi, &bound, &bound_bits, &linear_bits, &squares, err);
    if (st != VEIL_OK) return st; /* nothing held */
    if (squares > 20)
        return veil_fail(err, VEIL_ERR_UNSUPPORTED, "plan: %u squares; exact inference holds at most 20", squares);
    /* T > 2 B + 1: the bits of 2 B + 2, with one bit to spare, shared among k moduli */
    const double need = bound_bits + 2;
    candidate best = {0};
    for (size_t k = 1; k <= VEIL_CRT_MAX; k++) {
        unsigned bits = (unsigned)ceil(need / (double)k);
        if (bits < MIN_T_BITS) bits = MIN_T_BITS;
        /* the primes found sit below 2^bits: one more bit when their product falls short */
        for (const unsigned first = bits; bits <= MAX_T_BITS && bits <= first + 2; bits++) {
            candidate c;
            try_moduli(&c, k, bits, squares ? squares : 1, (unsigned)linear_bits, req->security, req->batch);
            double have = 0;
            for (size_t i = 0; i < c.k; i++) have += log2((double)c.t[i]);
            if (c.k && have >= need) { /* more bits would only cost more */
                if (!best.k || c.cost < best.cost) {
                    candidate_clear(&best);
                    best = c;
                } else {
                    candidate_clear(&c);
                }
                break;
            }
            candidate_clear(&c);
        }
    }
    if (!best.k)
        return veil_fail(err, VEIL_ERR_NOT_FOUND, "plan: no BGV parameters hold outputs of 2^%.1f with %u squares and "
                         "linear layers growing the noise by 2^%.0f at this security level; no keys were made",
                         bound_bits, squares, linear_bits);
    plan->scheme = VEIL_ML_BGV;
    plan->bgv.crt_count = best.k;
    plan->params = best.params[0];
    for (size_t i = 1; i < best.k; i++) plan->bgv.crt_params[i] = best.params[i];
    plan->bgv.input_lo = req->input_lo;
    plan->bgv.input_hi = req->input_hi;
    plan->bgv.out_scale = p->out_scale;
    plan->bound = bound;
    plan->slots = best.n;
    plan->batch = req->batch ? req->batch : best.n;
    plan->scale_bits = 0;
    veil_plan_info_from_params(plan);
    veil_plan_info *in = &plan->info;
    in->scheme = VEIL_ML_BGV;
    in->depth = squares;
    in->crt_count = best.k;
    in->modulus_bits = 0;
    for (size_t i = 0; i < best.k; i++) {
        in->plain_moduli[i] = best.t[i];
        in->modulus_bits += log2((double)best.t[i]);
    }
    in->bound_bits = bound_bits;
    in->in_ciphertexts = p->in_width * best.k;
    in->out_ciphertexts = p->out_width * best.k;
    plan->info.eval_key_bytes = (double)eval_bundle_bytes(plan);
    plan->info.ciphertext_bytes = (double)fresh_bytes(plan, 0);
    const double n = (double)best.n, limbs = (double)in->q_count;
    size_t nnz = 0, wide = p->in_width;
    for (size_t i = 0; i < p->n_stages; i++) {
        const veil_stage *s = &p->stages[i];
        if (s->kind == VEIL_STAGE_AFFINE)
            for (size_t j = 0; j < s->in_width * s->out_width; j++) nnz += s->w[j] != 0;
        if (s->out_width > wide) wide = s->out_width;
    }
    /* per modulus: BGV_TERM_NS per coefficient and limb of a term of a linear layer (128-bit lazy sums, scalar
     * code), and for every square of the widest layer a key switch and a modulus switch (plan.c's cost model) */
    const size_t top = in->q_count - 1;
    in->estimated_seconds = (double)best.k * (BGV_TERM_NS * 1e-9 * n * limbs * 2 * (double)nnz +
                                              (veil_key_switch_seconds(in, top) + veil_rescale_seconds(in, top)) *
                                                  (double)wide * squares);
    /* a batch's inputs and the widest layer's outputs, per modulus */
    veil_plan_memory(plan, best.k, 1, 1, (double)best.k * (double)(p->in_width + wide) *
                               veil_ciphertext_memory(plan->params, in->q_count - 1));
    return VEIL_OK;
}

