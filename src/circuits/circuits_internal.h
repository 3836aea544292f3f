/*
 * Internal definitions of CKKS bootstrapping (src/circuits/bootstrap.c, dft.c): the homomorphic DFTs
 * CoeffToSlot and SlotToCoeff as a few levels of sparse-diagonal linear transforms.
 */
#ifndef VEIL_CIRCUITS_INTERNAL_H
#define VEIL_CIRCUITS_INTERNAL_H

#include "ckks/ckks_internal.h"
#include "veil/circuits.h"

#define VEIL_BOOT_MAX_DFT_LEVELS 8
#define VEIL_BOOT_ENCAPSULATION_WEIGHT 32 /* the presets' ephemeral secret (Bossuat et al. 2022) */

/*
 * A DFT diagonal in evaluation form at its level: limb j's residues at v + j (N / run), each standing for
 * `run` consecutive evaluations. A diagonal of period p slots (the levels of small butterflies, and every
 * level with sparse slots) is a polynomial in X^(N/2p), whose evaluations come in runs of N/2p equal values:
 * stored once each, it takes N/2p times less memory. A whole diagonal (run 1: the level of the largest
 * butterflies at full slots) is kept as its slot values, one limb's worth instead of level + 1, and encoded
 * each time it is used (an FFT and level + 1 NTTs: at N = 2^16 full slots about 0.3 s a bootstrap, for
 * 0.6 GB less).
 */
typedef struct veil_boot_diag {
    uint64_t *v;
    size_t run;
    double *re, *im; /* a whole diagonal (run 1) is kept as its N/2 slot values, v NULL: encoded when used */
} veil_boot_diag;

/*
 * One level of a homomorphic DFT: the product of a few butterfly stages, a matrix whose nonzero diagonals
 * are multiples of `unit` slots, applied as out = sum_k diags[k] * rot(x, (k - shift) unit) by baby-step
 * giant-step on x rotated by -shift unit (the window of offsets made nonnegative), then rescaled. The
 * diagonals are encoded at `level` with the scale diag_scale: the prime that the rescale drops, times ratio.
 */
typedef struct veil_boot_dft_level {
    veil_boot_diag **diags; /* n_diags, NULL where zero */
    veil_boot_diag **diags2; /* with two inputs (see veil_boot_dft_mask): the second input's, or NULL */
    size_t n_diags, baby, level;
    double ratio; /* the diagonals' scale over the prime their rescale drops */
    double diag_scale, encode_scale; /* the diagonals' scale, and the one asked of the encoder */
    long unit, shift;
    long *steps; /* the rotations this level uses: baby steps (i - shift) unit, giant steps j baby unit */
    size_t step_count;
} veil_boot_dft_level;

/*
 * Masks on one DFT level, of period `period` slots (sparse slots: 2 slots, where the real and imaginary halves
 * sit side by side): out[t] multiplies output slot t; in[0][t] multiplies input slot t (as read through the
 * diagonal's rotation); in[1], when not NULL, makes the level take a second input with its own input mask
 * (diags2): out = M (in[0] . x) + M (in[1] . x2).
 */
typedef struct veil_boot_dft_mask {
    size_t level, period;
    const double complex *out;
    const double complex *in[2];
} veil_boot_dft_mask;

/*
 * Builds `count` levels of the DFT of `slots` slots (the encoder's special FFT of that length, acting on
 * the slot vector replicated N / (2 slots) times, without its bit reversal): inverse (CoeffToSlot, the
 * stages from the largest butterflies down) or forward (SlotToCoeff, from the smallest up). The first
 * level applied is multiplied by `factor`. Level i is encoded at top_level - i with the scale of its prime,
 * times `ratio` for level ratio_index (so that the transform moves the scale by that ratio).
 */
veil_status veil_boot_dft_build(veil_boot_dft_level *levels, size_t count, const veil_ckks_encoder *enc, size_t slots,
                                bool inverse, double complex factor, size_t top_level, double ratio,
                                size_t ratio_index, const veil_boot_dft_mask *mask, veil_error *err);
void veil_boot_dft_free(veil_boot_dft_level *levels, size_t count);

/*
 * x <- the DFT levels applied to x, one level each (keys found by Galois element among keys[0..count)); a
 * level with two inputs takes x2 as its second (x2 is then overwritten). enc (of x's context) encodes the
 * whole diagonals.
 */
veil_status veil_boot_dft_apply(const veil_ckks_encoder *enc, veil_ckks_ciphertext *x, veil_ckks_ciphertext *x2,
                                const veil_boot_dft_level *levels, size_t level_count,
                                const veil_switch_key *const *keys, size_t key_count, veil_error *err);

/*
 * SubSum: x <- x + rot(x, slots), then + rot(., 2 slots), ..., up to N/4 slots (nothing when slots >= N/2): the
 * sum of rot(x, j slots) over j < N / (2 slots), the part of x's polynomial in X^(N / (2 slots)). With double
 * hoisting: the running sum kept over Q_l P, each rotation's key switching on its c_1 divided by P (one ModDown
 * of one polynomial each), the sum divided by P once at the end. (In radix 4, three rotations sharing one ModUp
 * and one ModDown per factor 4, it took as long at N = 2^16, the hoisted key switchings' permuted digits costing
 * about as much as the ModUps saved, for 5 more keys.)
 */
veil_status veil_boot_sub_sum(const veil_context *ctx, veil_ckks_ciphertext *x, size_t slots,
                              const veil_switch_key *const *keys, size_t key_count, veil_error *err);

/*
 * Sparse-secret encapsulation keys (Bossuat, Troncoso-Pastoriza, Hubaux, ACNS 2022): `to_sparse` switches
 * the main secret s to the sparse secret s' (Hamming weight `weight`) at level 0 only: one RLWE sample under
 * s' over q_0 p_0 (ring indices 0 and q_count), b = -a s' + e + p_0 s, a the expansion of `seed` (stream 1);
 * `to_dense` is an ordinary switching key from s' to s over Q P.
 */
struct veil_ckks_encapsulation_key {
    const veil_context *ctx;
    size_t weight;
    uint8_t seed[VEIL_SEED_BYTES];
    veil_poly *b, *a; /* over {q_0, p_0}, evaluation form */
    veil_switch_key *to_dense;
};

/* The base {q_0, p_0} of the key switching to the sparse secret. */
void veil_boot_encaps_base(const veil_context *ctx, size_t base[2]);
/* A key with its polynomials allocated (a expanded from seed by the caller), to_dense NULL. */
veil_status veil_boot_encaps_alloc(veil_ckks_encapsulation_key **out, const veil_context *ctx, size_t weight,
                                   veil_error *err);

/*
 * x (level 0, under s) <- the same phase under s' (Bossuat et al. 2022): c_1 centered mod q_0, times the key
 * over q_0 p_0, divided by p_0 with rounding.
 */
veil_status veil_boot_switch_to_sparse(const veil_context *ctx, veil_ckks_ciphertext *x,
                                       const veil_ckks_encapsulation_key *key, veil_error *err);
/* x (any level, under s') <- the same phase under s, by the ordinary key switching with key->to_dense. */
veil_status veil_boot_switch_to_dense(const veil_context *ctx, veil_ckks_ciphertext *x,
                                      const veil_ckks_encapsulation_key *key, veil_error *err);

/*
 * The baby-step giant-step driver of the linear transforms in diagonal form (transform.c), shared by
 * veil_ckks_linear_transform (plaintext diagonals) and veil_ckks_linear_transform_encrypted (ciphertext
 * diagonals, transform_enc.c): the caller says which diagonals are present and how a giant-step group's inner
 * sum is made; the driver rotates x by the baby steps (hoisted), finds every key first, runs the groups on
 * `threads` threads and sums their results.
 */
typedef struct veil_bsgs veil_bsgs;
/* inner <- sum_i diags[j baby + i] * xr[i] over the present diagonals of group j; *have_inner: there was one. */
typedef veil_status (*veil_bsgs_inner_fn)(const veil_bsgs *tr, size_t j, const veil_ckks_ciphertext *const *xr,
                                          veil_ckks_ciphertext *inner, int *have_inner, veil_error *err);
struct veil_bsgs {
    const veil_context *ctx;
    const char *name;                         /* the prefix of the errors ("linear_transform") */
    const void *diags;                        /* the caller's n_diags diagonals, read by present and inner */
    int (*present)(const void *diags, size_t k); /* diagonal k is not zero */
    veil_bsgs_inner_fn inner;
    const veil_switch_key *relin;             /* for inner, where its products need it */
    size_t n_diags, baby;                     /* baby <= n_diags, > 0 */
    long unit;
};
/*
 * out <- sum_k diags[k] * rot(x, k unit) (x and out checked by the caller; out may be x), keys found by Galois
 * element among keys[0..key_count).
 */
veil_status veil_bsgs_apply(const veil_bsgs *tr, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *x,
                            const veil_switch_key *const *keys, size_t key_count, size_t threads, veil_error *err);

/*
 * A giant step of a double-hoisted transform (Bossuat et al. 2021, section 5): acc (over Q_level P; = when
 * !have, else +=) rot(inner, by Galois element g) where inner is a sum over Q_level P before ModDown: inner[1]
 * divided by P into down (over Q_level), raised again and multiplied by the key; inner[0] permuted where it is
 * (into rotated, over Q_level P). The rotation's own ModDown waits for the transform's one.
 */
veil_status veil_bsgs_giant_extended(const veil_context *ctx, veil_poly *const *acc, const veil_poly *const *inner,
                                     veil_poly *down, veil_poly *rotated, uint64_t g, const veil_switch_key *key,
                                     bool have, size_t level, veil_error *err);

#endif
