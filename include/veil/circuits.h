/*
 * veil/circuits.h - circuits built from the CKKS and BGV operations: the layer between the schemes and ML.
 *
 * This layer owns what is computed from many scheme operations rather than by one: linear transforms (in
 * diagonal or sparse form, with hoisted rotations), polynomial evaluation (Chebyshev, baby-step giant-step,
 * with its level and scale planning), rotate-and-sum and inner products. The ML layer's evaluators and the
 * training kernels are made from these, and bootstrapping (a linear transform, a polynomial, a linear
 * transform) will be built here. The schemes never call into this layer; the primitives it builds on (one
 * rotation, hoisted rotations, products, rescaling) stay in veil/ckks.h and veil/bgv.h.
 *
 * As in the schemes: every function takes the context first and an optional veil_error last.
 */
#ifndef VEIL_CIRCUITS_H
#define VEIL_CIRCUITS_H

#include <stddef.h>
#include <stdint.h>
#include "veil/core.h"
#include "veil/rlwe.h"
#include "veil/ckks.h"
#include "veil/bgv.h"

#ifdef __cplusplus
extern "C" {
#endif

VEIL_API_BEGIN

/* ---- CKKS: rotate-and-sum, inner products ------------------------------------------------------------ */

/*
 * out = a + rot(a, steps[0]) + ... + rot(a, steps[count - 1]) with galois_keys[k] for steps[k] (no step
 * rotating by 0 slots): the rotations share one decomposition and ModUp of a's c1 (hoisting) and one
 * ModDown (their products are summed over QP first, as in the double hoisting of Bossuat et al., Eurocrypt
 * 2021), so that the sum costs about one key switch plus a cheap inner product per rotation. out may be a.
 */
veil_status veil_ckks_rotate_sum(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                 const long *steps, size_t count, const veil_switch_key *const *galois_keys,
                                 veil_error *err);
/*
 * Every slot of out holds the sum of a's first `slots` slots (slots a power of two, at most N/2; 0 means
 * N/2): log2(slots) rotations by 1, 2, 4, ... with the matching Galois keys, found among keys[0..count).
 */
veil_status veil_ckks_sum_slots(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                size_t slots, const veil_switch_key *const *keys, size_t count, veil_error *err);
/* The inner product of two encrypted vectors in every slot: mul, relinearize, rescale, then sum_slots. */
veil_status veil_ckks_inner_product(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                    const veil_ckks_ciphertext *b, size_t slots, const veil_switch_key *relin_key,
                                    const veil_switch_key *const *keys, size_t count, veil_error *err);

/* ---- CKKS: linear transforms ----------------------------------------------------------------------- */

/*
 * A dense layer in one call: out[o] = sum_i weights[o * in_count + i] * in[i] + bias[o] (bias may be NULL),
 * one level, the inputs read once (blocked over the coefficients; zero weights skipped). Inputs of size 3
 * (products not relinearized) are accepted: the outputs are then relinearized with relin_key, one
 * relinearization per output. The outputs must be distinct from the inputs; on failure they are unspecified.
 */
veil_status veil_ckks_linear_layer(const veil_context *ctx, veil_ckks_ciphertext *const *out, size_t out_count,
                                   const veil_ckks_ciphertext *const *in, size_t in_count, const double *weights,
                                   const double *bias, const veil_switch_key *relin_key, veil_error *err);

/* ---- CKKS: polynomials ------------------------------------------------------------------------------ */

/*
 * p(x) = sum_k coeffs[k] T_k(t), t = (2x - (lo + hi)) / (hi - lo), in the Chebyshev basis over [lo, hi], of
 * degree `degree` (coeffs has degree + 1 entries, degree <= 1024). Baby-step giant-step evaluation; uses
 * veil_ckks_chebyshev_depth(degree) levels and returns a ciphertext at a's scale. The error grows with the
 * coefficients and the degree (about 1e-8 * sum |c_k| * degree at scale 2^40).
 */
veil_status veil_ckks_eval_chebyshev(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                     const double *coeffs, size_t degree, double lo, double hi,
                                     const veil_switch_key *relin_key, veil_error *err);
/* The levels veil_ckks_eval_chebyshev uses for a degree (at most ceil(log2 degree) + 2). */
size_t veil_ckks_chebyshev_depth(size_t degree);

/* ---- BGV: rotate-and-sum ---------------------------------------------------------------------------- */

/*
 * Every slot of out holds the sum (mod t) of all N slots of a: rotations by 1, 2, 4, ... N/4 and one column
 * swap, with the keys found among keys[0..count).
 */
veil_status veil_bgv_sum_slots(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                               const veil_switch_key *const *keys, size_t count, veil_error *err);

VEIL_API_END

#ifdef __cplusplus
}
#endif
#endif /* VEIL_CIRCUITS_H */
