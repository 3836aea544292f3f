/*
 * veil/ckks.h - the CKKS scheme (Cheon, Kim, Kim, Song, Asiacrypt 2017), in its RNS form (Cheon, Han,
 * Kim, Kim, Song, SAC 2018): approximate arithmetic on vectors of up to N/2 complex (or real) numbers.
 *
 * A plaintext or ciphertext carries its level (it lives over q_0..q_level) and its scale (the factor by
 * which the encoded values were multiplied). Operations check levels and scales and say which operands
 * disagree; veil_ckks_rescale divides by the last prime and drops one level.
 *
 * Outputs may alias inputs (in-place use). Every operation takes the context first and an optional
 * veil_error last.
 */
#ifndef VEIL_CKKS_H
#define VEIL_CKKS_H

#include <stddef.h>
#include <stdint.h>
#include "veil/core.h"
#include "veil/rlwe.h"
#include "veil/party.h"

#ifdef __cplusplus
extern "C" {
#endif

VEIL_API_BEGIN

typedef struct veil_ckks_encoder veil_ckks_encoder;
typedef struct veil_ckks_plaintext veil_ckks_plaintext;
typedef struct veil_ckks_ciphertext veil_ckks_ciphertext;

/* The encoder: canonical embedding through the special FFT over the 2N-th roots of unity. */
veil_status veil_ckks_encoder_new(veil_ckks_encoder **out, const veil_context *ctx, veil_error *err);
void veil_ckks_encoder_free(veil_ckks_encoder *enc);

/* Empty objects, filled by encode / encrypt / the operations. */
veil_status veil_ckks_plaintext_new(veil_ckks_plaintext **out, const veil_context *ctx, veil_error *err);
void veil_ckks_plaintext_free(veil_ckks_plaintext *pt);
veil_status veil_ckks_ciphertext_new(veil_ckks_ciphertext **out, const veil_context *ctx, veil_error *err);
void veil_ckks_ciphertext_free(veil_ckks_ciphertext *ct);

size_t veil_ckks_plaintext_level(const veil_ckks_plaintext *pt);
double veil_ckks_plaintext_scale(const veil_ckks_plaintext *pt);
size_t veil_ckks_ciphertext_level(const veil_ckks_ciphertext *ct);
double veil_ckks_ciphertext_scale(const veil_ckks_ciphertext *ct);
size_t veil_ckks_ciphertext_size(const veil_ckks_ciphertext *ct); /* 2, or 3 after a product */

/*
 * Encodes count values (re[i] + i*im[i]; im may be NULL for real values) at the given scale and level.
 * count is at most N/2; fewer values are padded with zeros. |value * scale| must stay below 2^62.
 */
veil_status veil_ckks_encode(const veil_ckks_encoder *enc, veil_ckks_plaintext *out, const double *re,
                             const double *im, size_t count, double scale, size_t level, veil_error *err);
/*
 * Sparse packing: encodes `slots` values (a power of two dividing N/2) replicated N / (2 slots) times over
 * the full slot vector, so that rotations act on them as a cyclic vector of length `slots` and
 * veil_ckks_sum_slots(..., slots, ...) (veil/circuits.h) sums them. Decode the first `slots` values as
 * usual.
 */
veil_status veil_ckks_encode_sparse(const veil_ckks_encoder *enc, veil_ckks_plaintext *out, const double *re,
                                    const double *im, size_t slots, double scale, size_t level, veil_error *err);
/* Decodes the first count slots into re (and im when not NULL). */
veil_status veil_ckks_decode(const veil_ckks_encoder *enc, double *re, double *im, size_t count,
                             const veil_ckks_plaintext *pt, veil_error *err);

/* Encryption with the public key or the secret key at the plaintext's level; prng NULL: the OS CSPRNG. */
veil_status veil_ckks_encrypt_pk(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_plaintext *pt,
                                 const veil_public_key *pk, veil_prng *prng, veil_error *err);
veil_status veil_ckks_encrypt_sk(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_plaintext *pt,
                                 const veil_secret_key *sk, veil_prng *prng, veil_error *err);
veil_status veil_ckks_decrypt(const veil_context *ctx, veil_ckks_plaintext *out, const veil_ckks_ciphertext *ct,
                              const veil_secret_key *sk, veil_error *err);

/* ---- error measurement and flooded decryption (IND-CPA-D) ----------------------------------------- */

/* What a key holder measures on a ciphertext whose expected values it knows. */
typedef struct veil_ckks_error {
    double coeff_bits;     /* log2(1 + the largest coefficient of the error polynomial), at the ciphertext's scale */
    double slot_error;     /* the largest |decoded - expected| over the compared slots */
    double precision_bits; /* -log2(slot_error) */
} veil_ckks_error;

/*
 * Decrypts ct with the secret key and compares it with the values it should hold (re + i*im, count slots,
 * im may be NULL): the error in the coefficients (what flooding must hide) and in the slots (the precision
 * a result has). This is the decoding precision estimate, and the noise estimate that sizes flooding.
 */
veil_status veil_ckks_measure_error(const veil_ckks_encoder *enc, veil_ckks_error *out, const veil_ckks_ciphertext *ct,
                                    const veil_secret_key *sk, const double *re, const double *im, size_t count,
                                    veil_error *err);

/*
 * A bound on the error of a ciphertext whose slots hold real values, from its decryption alone (no expected
 * values): log2 of 4 times the largest coefficient of the error's part that conjugation negates, which real
 * values leave free of the message (flooding.c says why). An estimate for error_bits below when no run on
 * known data is at hand; it presumes the error spreads over both parts alike, as rounding and Gaussian
 * errors do, and is meaningless for complex-valued slots.
 */
veil_status veil_ckks_estimate_error_real(const veil_context *ctx, double *error_bits, const veil_ckks_ciphertext *ct,
                                          const veil_secret_key *sk, veil_error *err);

#define VEIL_FLOODING_DEFAULT_SECURITY 30 /* bits of statistical security */
#define VEIL_FLOODING_DEFAULT_QUERIES 128 /* decryptions of related ciphertexts an adversary may see */

/* How wide flooding noise must be: a bound on the error, and the security wanted (0: the defaults above). */
typedef struct veil_ckks_flooding {
    double error_bits;             /* log2 of a bound on the coefficient error (veil_ckks_error.coeff_bits) */
    unsigned statistical_security; /* s */
    unsigned long queries;         /* k */
} veil_ckks_flooding;

/*
 * log2 of the flooding noise's standard deviation: sigma = sqrt(24 k) * 2^(s/2) * 2^error_bits (the
 * Gaussian mechanism as sized by Li, Micciancio, Schultz and Sorrell, Crypto 2022). With the defaults this
 * is error_bits + 20.8: a flooded result loses about that many bits plus log2(sqrt(N)) + 2 of precision
 * against its scale, so the scale at decryption must leave room for it.
 */
veil_status veil_ckks_flooding_bits(const veil_ckks_flooding *flooding, double *log2_sigma, veil_error *err);

/*
 * Decryption for results that will be shown to anyone but the key holder (another party, a published
 * statistic, a threshold protocol): decrypts and adds a fresh rounded Gaussian of the width above to every
 * coefficient, so that the result no longer reveals the ciphertext's error (Li-Micciancio, Eurocrypt 2021).
 * Size error_bits by running the same computation once on data you know and calling
 * veil_ckks_measure_error on it (the error depends on the computation, not on the data, to a few bits;
 * add a margin), or from an analysis. Plain veil_ckks_decrypt is fine when the result stays with the key
 * holder. Refused when the noise (8 sigma) would carry a coefficient of the decryption past half the modulus
 * at the ciphertext's level (a wrap); the scale itself sets no limit. prng NULL: the OS CSPRNG.
 */
veil_status veil_ckks_decrypt_flooded(const veil_context *ctx, veil_ckks_plaintext *out, const veil_ckks_ciphertext *ct,
                                      const veil_secret_key *sk, const veil_ckks_flooding *flooding, veil_prng *prng,
                                      veil_error *err);

/* ---- evaluator ---------------------------------------------------------------------------------- */

/*
 * a + b, a - b, -a. Operands at different levels are brought to the lower one. Operands at slightly
 * different scales (the drift of rescaling) are aligned: the one at the higher level (either at equal
 * levels) is multiplied by 1 at the other's scale, which uses one of its levels. Scales too far apart for
 * that (a ratio above 2^20 or so), or at level 0, are an error that names both.
 */
veil_status veil_ckks_add(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                          const veil_ckks_ciphertext *b, veil_error *err);
veil_status veil_ckks_sub(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                          const veil_ckks_ciphertext *b, veil_error *err);
veil_status veil_ckks_negate(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                             veil_error *err);
veil_status veil_ckks_add_plain(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                const veil_ckks_plaintext *p, veil_error *err);
/* a * p: the scales multiply. */
veil_status veil_ckks_mul_plain(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                const veil_ckks_plaintext *p, veil_error *err);
/*
 * acc += a * p in place, with no intermediate ciphertext: the inner sums of matrix-vector products. acc must
 * have a's size, the level of the product and its scale (a product of the same kind made it).
 */
veil_status veil_ckks_mul_plain_accumulate(const veil_context *ctx, veil_ckks_ciphertext *acc,
                                           const veil_ckks_ciphertext *a, const veil_ckks_plaintext *p,
                                           veil_error *err);
/* a * k for an integer k: the scale is unchanged. */
veil_status veil_ckks_mul_integer(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                  int64_t k, veil_error *err);
/* a + c for a real constant c (no level used). */
veil_status veil_ckks_add_constant(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                   double c, veil_error *err);
/*
 * a * c for a real constant c, keeping the scale: multiplies by the integer round(c * q_l) and rescales, so it
 * uses one level. The result's value is c * a up to a relative error of 1 / (2 |c| q_l).
 */
veil_status veil_ckks_mul_constant(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                   double c, veil_error *err);
/*
 * a * c brought to a chosen scale in the same level: multiplies by round(c * scale * q_l / a.scale) and
 * rescales, so that operands computed along different paths (whose scales drift apart with rescaling) can be
 * added without the level an alignment costs. Refused when that integer does not fit 62 bits.
 */
veil_status veil_ckks_mul_constant_to_scale(const veil_context *ctx, veil_ckks_ciphertext *out,
                                            const veil_ckks_ciphertext *a, double c, double scale, veil_error *err);

/* a * b: size 3, the scales multiply (relinearize and rescale afterwards). */
veil_status veil_ckks_mul(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                          const veil_ckks_ciphertext *b, veil_error *err);
/*
 * acc += a * b in place for a and b of size 2: acc of size 3 at the product's level and scale (a veil_ckks_mul
 * of the same kind made it). A sum of products is relinearized and rescaled once, after the last.
 */
veil_status veil_ckks_mul_accumulate(const veil_context *ctx, veil_ckks_ciphertext *acc, const veil_ckks_ciphertext *a,
                                     const veil_ckks_ciphertext *b, veil_error *err);
/*
 * out = sum_i a_i * b_i (size 3, unrelinearized) for count pairs of size-2 ciphertexts of one product scale: the
 * products summed in 128 bits and reduced once per coefficient (encrypted weights times encrypted inputs).
 */
veil_status veil_ckks_mul_sum(const veil_context *ctx, veil_ckks_ciphertext *out,
                                    const veil_ckks_ciphertext *const *a, const veil_ckks_ciphertext *const *b,
                                    size_t count, veil_error *err);
/* Size 3 -> size 2 with the relinearization key. */
veil_status veil_ckks_relinearize(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                  const veil_switch_key *relin_key, veil_error *err);
/*
 * Divides by the last prime of the level (exact rounding) and drops a level; the scale follows. Refused when
 * the new scale would reach the remaining modulus (a drifted scale: the values would wrap around);
 * veil_ckks_mul_relin_rescale checks the same before it changes anything.
 */
veil_status veil_ckks_rescale(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                              veil_error *err);
/* a * b, relinearized and rescaled: the usual product. */
veil_status veil_ckks_mul_relin_rescale(const veil_context *ctx, veil_ckks_ciphertext *out,
                                        const veil_ckks_ciphertext *a, const veil_ckks_ciphertext *b,
                                        const veil_switch_key *relin_key, veil_error *err);
/* Drops limbs down to `level` without changing the value or the scale. */
veil_status veil_ckks_mod_drop(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                               size_t level, veil_error *err);
/*
 * Slot rotation to the left by `steps` (negative: right) with the Galois key of element
 * veil_galois_element_rotation(ctx, steps); conjugation with that of veil_galois_element_conjugation(ctx).
 * VEIL_ERR_MISMATCH names the missing element when the key does not match.
 */
veil_status veil_ckks_rotate(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                             long steps, const veil_switch_key *galois_key, veil_error *err);
/*
 * Rotations of one ciphertext by several steps at once, sharing the decomposition and ModUp of its c1
 * (hoisting, Halevi-Shoup 2018): outs[i] = rotate(a, steps[i]) with galois_keys[i]. Faster than count
 * separate rotations as soon as count >= 2. The outputs must be distinct objects other than a.
 */
veil_status veil_ckks_rotate_hoisted(const veil_context *ctx, veil_ckks_ciphertext *const *outs,
                                     const veil_ckks_ciphertext *a, const long *steps, size_t count,
                                     const veil_switch_key *const *galois_keys, veil_error *err);
veil_status veil_ckks_conjugate(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                const veil_switch_key *galois_key, veil_error *err);

/* ---- multi-party decryption and key switching (veil/party.h, docs/multiparty.md) -------------------------- */

/*
 * Party `party`'s share of the joint decryption of ct (2 polynomials; relinearize first), with its secret share
 * sk and smudging noise (NULL: the defaults). The parties' smudging noise must stay below Q_l / 4 (6 sqrt(N) sigma), else VEIL_ERR_ARGUMENT
 * before anything is made. It costs precision: about 6 sigma sqrt(N_parties N / 2) / scale at most on a value
 * (docs/multiparty.md: 2^20 at scale 2^40, N = 8192, 3 parties: 4e-4).
 */
veil_status veil_ckks_decrypt_share(veil_party_share **out, const veil_party_group *group, size_t party,
                                   const veil_ckks_ciphertext *ct, const veil_secret_key *sk,
                                   const veil_party_smudging *smudging, veil_prng *prng, veil_error *err);
/*
 * Combines the decryption shares of all N parties (any order) of exactly this ciphertext: out receives the plaintext (the ciphertext's level and scale): decode it as usual.
 * A share of another ciphertext, group or kind, a duplicated or a missing party: an error, nothing written.
 */
veil_status veil_ckks_decrypt_joint(veil_ckks_plaintext *out, const veil_party_group *group, const veil_ckks_ciphertext *ct,
                                   const veil_party_share *const *shares, size_t count, veil_error *err);
/* Party `party`'s share of re-encrypting ct under the receiver's public key `to`, without decrypting it. */
veil_status veil_ckks_switch_share(veil_party_share **out, const veil_party_group *group, size_t party,
                                  const veil_ckks_ciphertext *ct, const veil_secret_key *sk, const veil_public_key *to,
                                  const veil_party_smudging *smudging, veil_prng *prng, veil_error *err);
/* Combines the switching shares of all N parties into out: the ciphertext under the receiver's key, at ct's level and scale. */
veil_status veil_ckks_switch_joint(veil_ckks_ciphertext *out, const veil_party_group *group, const veil_ckks_ciphertext *ct,
                                  const veil_public_key *to, const veil_party_share *const *shares, size_t count,
                                  veil_error *err);

/* ---- t-out-of-N threshold decryption (veil/party.h, "t-out-of-N"; docs/multiparty.md) ------------------------ */

/*
 * The share of party `key`'s owner in the set `set` (set_count party numbers, each once, the owner among them,
 * at least the group's threshold) of the joint decryption of ct: lambda_j S_j c_1 plus smudging noise, as
 * veil_ckks_decrypt_share (the same smudging and checks). Combine the shares of every party of the set
 * with veil_ckks_decrypt_joint: the result is that of the N-out-of-N decryption.
 */
veil_status veil_ckks_threshold_decrypt_share(veil_party_share **out, const veil_party_group *group,
                                            const veil_party_threshold_key *key, const size_t *set, size_t set_count,
                                            const veil_ckks_ciphertext *ct, const veil_party_smudging *smudging,
                                            veil_prng *prng, veil_error *err);
/* The same for public-key switching towards `to`; combine with veil_ckks_switch_joint. */
veil_status veil_ckks_threshold_switch_share(veil_party_share **out, const veil_party_group *group,
                                           const veil_party_threshold_key *key, const size_t *set, size_t set_count,
                                           const veil_ckks_ciphertext *ct, const veil_public_key *to,
                                           const veil_party_smudging *smudging, veil_prng *prng, veil_error *err);

VEIL_API_END

#ifdef __cplusplus
}
#endif
#endif /* VEIL_CKKS_H */
