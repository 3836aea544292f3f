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
/*
 * The same with the outputs at the inputs' scale / 2^shift (shift at most 16): the weights are taken as the
 * integers round(w q_l / 2^shift), so that outputs too large for their level's modulus at the inputs' scale fit
 * it (the last layer of a network, whose outputs land on the first prime alone). shift 0 is
 * veil_ckks_linear_layer.
 */
veil_status veil_ckks_linear_layer_shifted(const veil_context *ctx, veil_ckks_ciphertext *const *out,
                                           size_t out_count, const veil_ckks_ciphertext *const *in, size_t in_count,
                                           const double *weights, const double *bias, unsigned shift,
                                           const veil_switch_key *relin_key, veil_error *err);

/*
 * A linear transform in diagonal form by baby-step giant-step (the diagonal method of Halevi-Shoup, "Algorithms
 * in HElib", 2014; the baby steps hoisted as in Halevi-Shoup, "Faster homomorphic linear transformations in
 * HElib", 2018). With b = baby and u = unit:
 *
 *     out = sum_j rot( sum_{i < b} diags[j b + i] * rot(x, i u), j b u ),   j < ceil(n_diags / b)
 *
 * so that, when diags[k] encodes the diagonal d_k rotated by -(k - k mod b) u slots
 * (veil_ckks_linear_transform_encode), out = sum_k d_k * rot(x, k u): the matrix-vector product W x of the
 * matrix whose k-th diagonal (in steps of u slots) is d_k. A NULL diagonal is all zero and skipped, and so
 * are the rotations only it would use. About b - 1 hoisted baby rotations of x (sharing one ModUp per thread)
 * and n_diags / b giant rotations; b = veil_ckks_linear_transform_baby(n_diags) minimises their sum.
 *
 * Arguments: the diagonals are plaintexts of x's level and one scale; keys[0..key_count) holds the Galois
 * keys of the rotations by i u (0 < i < b) and j b u (j >= 1) that non-NULL diagonals use, found by their
 * Galois element; x must be relinearized (size 2). Up to `threads` threads (0: one) share the baby
 * rotations, then the giant-step groups; the result does not depend on the count. Diagonals from
 * veil_ckks_linear_transform_encode_extended (all of them, at x's level): double hoisting, below.
 * Output: out at x's level and scale times the diagonals' scale, NOT rescaled (the caller rescales, for
 * example after further rotations and sums). Every diagonal NULL (or n_diags 0): out = 0 * x, at x's scale.
 * out may be x. Errors: VEIL_ERR_MISMATCH naming the rotation whose key is missing or of another context
 * (checked before anything is computed), VEIL_ERR_MISMATCH for a diagonal of another context than x's,
 * VEIL_ERR_ARGUMENT for baby or unit 0, and the errors of the products and rotations.
 */
veil_status veil_ckks_linear_transform(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *x,
                                       const veil_ckks_plaintext *const *diags, size_t n_diags, size_t baby, long unit,
                                       const veil_switch_key *const *keys, size_t key_count, size_t threads,
                                       veil_error *err);
/* The baby step of a transform of n_diags diagonals: the least power of two b with b * b >= n_diags. */
size_t veil_ckks_linear_transform_baby(size_t n_diags);
/*
 * Encodes diagonal k of a transform for veil_ckks_linear_transform with this baby step and unit: diag holds
 * its N/2 values (diag[t] multiplies slot t of rot(x, k unit)); out is diag rotated by -(k - k mod baby) unit
 * slots, at `scale` and `level`. The scale q_level makes the rescale after the transform return to x's scale.
 */
veil_status veil_ckks_linear_transform_encode(const veil_ckks_encoder *enc, veil_ckks_plaintext *out,
                                              const double *diag, size_t k, size_t baby, long unit, double scale,
                                              size_t level, veil_error *err);
/*
 * As veil_ckks_linear_transform_encode, and also keeps the diagonal's residues modulo the key-switching primes P
 * (the plaintext's memory times 1 + |P| / (level + 1)), so that it is encoded over Q_level P: when every diagonal of a transform has it, at x's level and
 * one scale, veil_ckks_linear_transform runs with double hoisting (Bossuat, Troncoso-Pastoriza, Hubaux,
 * Eurocrypt 2021, sections 4-5): baby rotations kept over Q_level P, products and giant rotations there, one
 * ModDown per transform. Re-encoding the plaintext (veil_ckks_encode) drops the extended copy.
 */
veil_status veil_ckks_linear_transform_encode_extended(const veil_ckks_encoder *enc, veil_ckks_plaintext *out,
                                                       const double *diag, size_t k, size_t baby, long unit,
                                                       double scale, size_t level, veil_error *err);

/*
 * The same transform with encrypted diagonals (model weights encrypted by their owner, docs/marketplace.md):
 * diags[k] a ciphertext of size 2 holding what veil_ckks_linear_transform_encode would encode (the diagonal
 * pre-rotated by its giant step), at x's level (or above) and one scale. Each giant group's products are summed
 * unrelinearized (veil_ckks_mul_sum) and relinearized once with relin_key before the group's giant rotation.
 * Output as veil_ckks_linear_transform: size 2, x's scale times the diagonals', NOT rescaled; out must not be a
 * diagonal (it may be x). Errors as veil_ckks_linear_transform's.
 */
veil_status veil_ckks_linear_transform_encrypted(const veil_context *ctx, veil_ckks_ciphertext *out,
                                                 const veil_ckks_ciphertext *x,
                                                 const veil_ckks_ciphertext *const *diags, size_t n_diags,
                                                 size_t baby, long unit, const veil_switch_key *relin_key,
                                                 const veil_switch_key *const *keys, size_t key_count, size_t threads,
                                                 veil_error *err);

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

/* ---- CKKS: bootstrapping --------------------------------------------------------------------------- */

/*
 * Bootstrapping (Cheon, Han, Kim, Kim, Song, Eurocrypt 2018; the structure of Bossuat, Mouchet,
 * Troncoso-Pastoriza and Hubaux, Eurocrypt 2021, sections 4-6) turns a ciphertext at any level into one at
 * a high level that holds the same values, so that a computation may go on without limit:
 *   ModRaise     the ciphertext at level 0 read over the whole Q chain: it decrypts to m + q_0 I, I a small
 *                integer polynomial (|I| <= (h + 1) / 2 for a secret of Hamming weight h);
 *   SubSum       for sparse slots (slots < N/2), the rotations by slots, 2 slots, ... that keep the part of
 *                that polynomial the slots see;
 *   CoeffToSlot  the inverse DFT as cts_levels sparse-diagonal linear transforms (baby-step giant-step,
 *                hoisted): the coefficients (m + q_0 I) / q_0 in the slots, real and imaginary halves split
 *                by a conjugation into two ciphertexts, or for slots <= N/4 placed side by side in one;
 *   EvalMod      sin(2 pi x) / (2 pi) as a Chebyshev interpolant on [-K, K] (veil_ckks_eval_chebyshev),
 *                which is x - round(x) = m / q_0 up to (2 pi)^2 (m / q_0)^3 / 6; or, with double_angle = r,
 *                cos(2 pi (x - 1/4) / 2^r) and r double-angle steps (Bossuat et al. 2021, section 6);
 *   SlotToCoeff  the forward DFT as stc_levels transforms, back to the coefficients, at the input's scale.
 *
 * A bootstrapper holds what a parameter set and a slot count need (the DFT matrices, encoded or, for the
 * largest, as slot values encoded when used; the polynomial; an encoder of its own); it is read-only after
 * creation and may be shared by threads. The keys it needs are ordinary
 * Galois keys (veil_galois_key_new, veil_switch_key_save/load) for the elements that
 * veil_ckks_bootstrap_galois_elements lists, and the relinearization key.
 */
typedef struct veil_ckks_bootstrapper veil_ckks_bootstrapper;

typedef struct veil_ckks_bootstrap_config {
    size_t slots;       /* the slot count of the ciphertexts: a power of two up to N/2; 0: N/2 */
    size_t cts_levels;  /* levels of CoeffToSlot, 1..8; 0: 3 */
    size_t stc_levels;  /* levels of SlotToCoeff, 1..8; 0: 3 */
    double k_bound;     /* K: the interval [-K, K] of EvalMod; 0: from the secret distribution (see below) */
    double evalmod_scale; /* the scale EvalMod runs at (its primes should be about as large); 0: q_0 */
    size_t double_angle; /* r, 0..6: EvalMod as cos(2 pi (x - 1/4) / 2^r) followed by r steps c <- 2c^2 - 1
                            (a degree about 2^r times lower for r more levels); 0: the sine itself */
    size_t degree;      /* the Chebyshev degree of EvalMod, at most 1024; 0: the least past which every
                           coefficient is below 2^-45 (2^-46 for the cosine) */
    size_t encapsulation_weight; /* h' > 0: sparse-secret encapsulation with an ephemeral secret of that
                                    Hamming weight (veil_ckks_encapsulation_key_new; K then follows h', not
                                    the main secret); 0: none, ModRaise under the main secret */
    size_t message_shift; /* k, 0..8: the level-0 input is multiplied by 2^k before ModRaise (exact) and
                             SlotToCoeff divides by it, so that EvalMod's absolute error is read 2^k times
                             smaller; the input's scale times 2^k must stay at most q_0 / 16. The sine's
                             cubic error grows as (2^k m / q_0)^3: it pays where the message polynomial's
                             coefficients are small against the slot values (full slots of varied values,
                             about 2^-7 of them for uniform ones), not for a constant vector (its constant
                             coefficient is the value itself; docs/bootstrapping.md). 0: none */
    size_t iterations;    /* 1 or 2 (0: 1). 2: iterated bootstrapping (meta-BTS, Bae et al. 2022): the
                             first bootstrap's error, input minus result at level 0, is multiplied by 2^e
                             (iteration_shift), bootstrapped again, divided by 2^e (one
                             level) and added to the first result: about twice the time, one level less, the
                             error of the second bootstrap divided by 2^e */
    size_t iteration_shift; /* e, 1..30 (0: 8): 2^e times the first bootstrap's worst error must stay within
                               [-1, 1] (so e at most its worst precision in bits, less a margin) */
} veil_ckks_bootstrap_config;

/* What a bootstrapper does with a parameter set. */
typedef struct veil_ckks_bootstrap_info {
    size_t slots;
    size_t levels_left;   /* the level of a bootstrapped ciphertext */
    size_t depth;         /* the levels bootstrapping consumes from the top */
    size_t degree;        /* of the EvalMod polynomial */
    double k_bound;       /* K */
    double failure_log2;  /* log2 of the probability that some coefficient of (m + q_0 I) / q_0 leaves [-K, K]
                             (-1e9 when impossible) */
    size_t galois_count;  /* the Galois keys it needs */
} veil_ckks_bootstrap_info;

/*
 * A bootstrapper for enc's context. K: by default the secret's worst case, (h + 1) / 2 for a secret of
 * Hamming weight h (VEIL_SECRET_TERNARY_HW; the failure probability is then 0), or, where smaller, the K
 * whose failure probability (each coefficient a sum of h + 1 uniform variables on [-1/2, 1/2], over all N
 * coefficients) is at most 2^-128. A uniform ternary secret of large N needs a degree above 1024: refused,
 * use a sparse secret. Errors: VEIL_ERR_ARGUMENT for a bad configuration, a chain without the levels it
 * needs (the message says how many), or EvalMod levels whose primes are far from its scale;
 * VEIL_ERR_NO_MEMORY.
 */
veil_status veil_ckks_bootstrapper_new(veil_ckks_bootstrapper **out, const veil_ckks_encoder *enc,
                                       const veil_ckks_bootstrap_config *config, veil_error *err);
void veil_ckks_bootstrapper_free(veil_ckks_bootstrapper *bt);
void veil_ckks_bootstrapper_info(const veil_ckks_bootstrapper *bt, veil_ckks_bootstrap_info *out);
/* The Galois elements of the keys bootstrapping needs (info.galois_count of them; max_out at least that). */
veil_status veil_ckks_bootstrap_galois_elements(const veil_ckks_bootstrapper *bt, uint64_t *out, size_t *count,
                                                size_t max_out, veil_error *err);
/*
 * Generates those keys into keys[0..*count) (max_keys at least info.galois_count); free each with
 * veil_switch_key_free. prng NULL: the OS CSPRNG. On failure nothing is left allocated.
 */
veil_status veil_ckks_bootstrap_keys_new(const veil_context *ctx, const veil_ckks_bootstrapper *bt,
                                         const veil_secret_key *sk, veil_prng *prng, veil_switch_key **keys,
                                         size_t max_keys, size_t *count, veil_error *err);

/*
 * Sparse-secret encapsulation (Bossuat, Troncoso-Pastoriza, Hubaux, ACNS 2022): the main secret s stays
 * dense (uniform ternary, so that the HE standard's table applies to it), and bootstrapping switches its
 * level-0 ciphertext to an ephemeral secret s' of small Hamming weight h' before ModRaise, where the overflow
 * is then at most (h' + 1) / 2, and back to s right after. The key from s to s' exists only over q_0 p_0
 * (the first Q prime and the first special prime: an RLWE sample under the sparse s' over about 100 bits,
 * secure where one over Q P would not be); the key from s' to s is an ordinary switching key under s.
 * Generated from the secret key (prng NULL: the OS CSPRNG; s' is drawn, used and wiped); saved and loaded
 * by veil_ckks_encapsulation_key_save/load (veil/serial.h), seeded. Errors: VEIL_ERR_ARGUMENT for a weight
 * outside 1..N/2, a BGV set, a set without special primes or with p_0 much smaller than q_0.
 */
typedef struct veil_ckks_encapsulation_key veil_ckks_encapsulation_key;
veil_status veil_ckks_encapsulation_key_new(veil_ckks_encapsulation_key **out, const veil_context *ctx,
                                            const veil_secret_key *sk, size_t weight, veil_prng *prng,
                                            veil_error *err);
void veil_ckks_encapsulation_key_free(veil_ckks_encapsulation_key *key);
/* h', the weight of the ephemeral secret; 0 for NULL. */
size_t veil_ckks_encapsulation_key_weight(const veil_ckks_encapsulation_key *key);

/*
 * out = a bootstrapped: the same values at level info.levels_left and at a's scale. a may be at any level
 * (it is dropped to level 0 first) and must be relinearized; its scale (times 2^config.message_shift) must be
 * at most q_0 / 16 (the ratio q_0 / scale is what keeps m / q_0 small), and its values (real and imaginary parts) should lie in
 * [-1, 1]: the sine's error grows as the cube of the values and its precision is documented for that range
 * (docs/bootstrapping.md). A sparse ciphertext (config.slots < N/2) must hold its values as
 * veil_ckks_encode_sparse makes them. keys[0..key_count) must hold the Galois keys above. out may be a.
 * Errors: VEIL_ERR_MISMATCH for another context or a missing key (named), VEIL_ERR_ARGUMENT for a
 * ciphertext of size 3 or a scale too large, and the errors of the operations.
 */
veil_status veil_ckks_bootstrap(const veil_context *ctx, const veil_ckks_bootstrapper *bt, veil_ckks_ciphertext *out,
                                const veil_ckks_ciphertext *a, const veil_switch_key *relin_key,
                                const veil_switch_key *const *keys, size_t key_count, veil_error *err);
/*
 * The same with sparse-secret encapsulation: encaps is required when the bootstrapper was made with
 * config.encapsulation_weight > 0 (and must be of that weight and of ctx: VEIL_ERR_MISMATCH otherwise), and
 * must be NULL when not. veil_ckks_bootstrap is this with encaps NULL.
 */
veil_status veil_ckks_bootstrap_encapsulated(const veil_context *ctx, const veil_ckks_bootstrapper *bt,
                                             veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                             const veil_switch_key *relin_key, const veil_switch_key *const *keys,
                                             size_t key_count, const veil_ckks_encapsulation_key *encaps,
                                             veil_error *err);

/*
 * Bootstrapping presets: a parameter set (N = 2^16, 128-bit, uniform ternary secret) and the configuration
 * that goes with it (sparse-secret encapsulation of weight 32: make the key with
 * veil_ckks_encapsulation_key_new(config->encapsulation_weight) and bootstrap with
 * veil_ckks_bootstrap_encapsulated; set config->slots for sparse slots). "boot-n65536-balanced": 10 levels
 * left at a 2^40 scale, every prime below 2^50; "boot-n65536-precise": EvalMod at 2^60, also 10 levels left;
 * "boot-n65536-full": the balanced chain for full slots (config->slots = N/2), with the message shift and
 * iterated bootstrapping (config->message_shift, config->iterations): 9 levels left, twice the time.
 * docs/bootstrapping.md has their figures. VEIL_ERR_NOT_FOUND for an unknown name.
 */
veil_status veil_ckks_bootstrap_preset(veil_params **params, veil_ckks_bootstrap_config *config, const char *name,
                                       veil_error *err);
/* A NULL-terminated list of the bootstrapping presets' names. */
const char *const *veil_ckks_bootstrap_preset_names(void);

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
