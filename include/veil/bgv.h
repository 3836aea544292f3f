/*
 * veil/bgv.h - the BGV scheme (Brakerski, Gentry, Vaikuntanathan, ITCS 2012) in its RNS form with modulus
 * switching (Gentry-Halevi-Smart, Crypto 2012) managed automatically as in Kim-Polyakov-Zucca (2021):
 * exact arithmetic on vectors of N integers modulo a plaintext modulus t.
 *
 * A BGV parameter set is an RLWE set with a plaintext modulus (veil_params_spec.plain_modulus, or
 * veil_bgv_params_select / the "bgv-*" presets). A ciphertext decrypts to its phase c0 + c1 s = m + t e
 * (mod Q_l); decryption is exact while |m + t e| < Q_l / 2. The noise budget is the number of bits left
 * between the two: log2(Q_l / 2) - log2 |m + t e|.
 *
 * Modulus switching (dropping q_l and dividing by it) shrinks the noise and costs a level. By default a
 * multiplication switches each operand down first whenever that leaves more budget after the product
 * (when the operand's noise exceeds floor + log2(q_l) / 2 bits, the floor being what switching itself
 * leaves), and operands at different levels are switched to the lower one; veil_bgv_mod_switch does it
 * by hand. Every ciphertext carries an estimate of its noise that needs no secret
 * (veil_bgv_noise_budget_estimate); the key holder can measure the true budget (veil_bgv_noise_budget).
 *
 * Outputs may alias inputs. Every operation takes the context first and an optional veil_error last.
 */
#ifndef VEIL_BGV_H
#define VEIL_BGV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "veil/core.h"
#include "veil/rlwe.h"
#include "veil/party.h"

#ifdef __cplusplus
extern "C" {
#endif

VEIL_API_BEGIN

/* ---- parameters ---------------------------------------------------------------------------------- */

/*
 * Chooses a BGV set for `depth` multiplications with plaintext modulus t at a security level: the smallest
 * N (at least min_n, and 2N dividing t - 1 when batching is asked) whose budget holds a first prime for
 * the final noise, one prime per multiplication sized to the noise a product adds, and the special primes.
 */
typedef struct veil_bgv_request {
    unsigned depth;       /* multiplications on the longest path (1..30) */
    uint64_t t;           /* plaintext modulus, 2 <= t < 2^40 */
    bool batching;        /* require t prime and t = 1 mod 2N (N slots) */
    size_t min_n;         /* 0: any */
    veil_security security;
    /*
     * Bits of noise growth a plaintext linear layer adds between products (log2 of the largest sum of
     * |weights| of veil_bgv_linear_combination); 0: none. Each prime then absorbs that growth too.
     */
    unsigned linear_bits;
} veil_bgv_request;

veil_status veil_bgv_params_select(veil_params **out, const veil_bgv_request *request, veil_error *err);

/* ---- encoding ------------------------------------------------------------------------------------ */

typedef struct veil_bgv_encoder veil_bgv_encoder;
typedef struct veil_bgv_plaintext veil_bgv_plaintext;
typedef struct veil_bgv_ciphertext veil_bgv_ciphertext;

/* The encoder; batching is available when t is a prime = 1 mod 2N. */
veil_status veil_bgv_encoder_new(veil_bgv_encoder **out, const veil_context *ctx, veil_error *err);
void veil_bgv_encoder_free(veil_bgv_encoder *enc);
bool veil_bgv_encoder_batching(const veil_bgv_encoder *enc);

veil_status veil_bgv_plaintext_new(veil_bgv_plaintext **out, const veil_context *ctx, veil_error *err);
void veil_bgv_plaintext_free(veil_bgv_plaintext *pt);

/*
 * Batch encoding: count <= N values into the slots, seen as a 2 x N/2 matrix (values[0 .. N/2) the first
 * row, values[N/2 .. N) the second); missing values are 0. Row rotations rotate both rows, the column swap
 * exchanges them. Unsigned values must be < t; signed values must lie in [-(t-1)/2, t/2] and decode back
 * (decode_signed gives the centered representative). VEIL_ERR_ARGUMENT names the first value out of range.
 */
veil_status veil_bgv_encode(const veil_bgv_encoder *enc, veil_bgv_plaintext *out, const uint64_t *values, size_t count,
                            veil_error *err);
veil_status veil_bgv_encode_signed(const veil_bgv_encoder *enc, veil_bgv_plaintext *out, const int64_t *values,
                                   size_t count, veil_error *err);
veil_status veil_bgv_decode(const veil_bgv_encoder *enc, uint64_t *values, size_t count, const veil_bgv_plaintext *pt,
                            veil_error *err);
veil_status veil_bgv_decode_signed(const veil_bgv_encoder *enc, int64_t *values, size_t count,
                                   const veil_bgv_plaintext *pt, veil_error *err);
/* Coefficient encoding (no batching needed): value i is the coefficient of X^i, signed, |v| <= t/2. */
veil_status veil_bgv_encode_coeffs(const veil_bgv_encoder *enc, veil_bgv_plaintext *out, const int64_t *values,
                                   size_t count, veil_error *err);
veil_status veil_bgv_decode_coeffs(const veil_bgv_encoder *enc, int64_t *values, size_t count,
                                   const veil_bgv_plaintext *pt, veil_error *err);

/* ---- encryption ---------------------------------------------------------------------------------- */

veil_status veil_bgv_ciphertext_new(veil_bgv_ciphertext **out, const veil_context *ctx, veil_error *err);
void veil_bgv_ciphertext_free(veil_bgv_ciphertext *ct);
size_t veil_bgv_ciphertext_level(const veil_bgv_ciphertext *ct);
size_t veil_bgv_ciphertext_size(const veil_bgv_ciphertext *ct);

/* Encryption at the top level with the public or the secret key (seeded form); prng NULL: the OS CSPRNG. */
veil_status veil_bgv_encrypt_pk(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_plaintext *pt,
                                const veil_public_key *pk, veil_prng *prng, veil_error *err);
veil_status veil_bgv_encrypt_sk(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_plaintext *pt,
                                const veil_secret_key *sk, veil_prng *prng, veil_error *err);
/*
 * Exact decryption. VEIL_ERR_NOISE when the noise budget is exhausted (less than one bit left): the
 * result would be garbage, so none is written.
 */
veil_status veil_bgv_decrypt(const veil_context *ctx, veil_bgv_plaintext *out, const veil_bgv_ciphertext *ct,
                             const veil_secret_key *sk, veil_error *err);
/* The noise budget in bits, measured with the secret key (0 when exhausted). */
veil_status veil_bgv_noise_budget(const veil_context *ctx, double *bits, const veil_bgv_ciphertext *ct,
                                  const veil_secret_key *sk, veil_error *err);
/* The evaluator's estimate of the same, without the key (a heuristic upper bound on the noise, so the
 * estimate is at most the measured budget in practice). */
double veil_bgv_noise_budget_estimate(const veil_bgv_ciphertext *ct);

/* ---- evaluator ----------------------------------------------------------------------------------- */

veil_status veil_bgv_add(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                         const veil_bgv_ciphertext *b, veil_error *err);
veil_status veil_bgv_sub(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                         const veil_bgv_ciphertext *b, veil_error *err);
veil_status veil_bgv_negate(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                            veil_error *err);
veil_status veil_bgv_add_plain(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                               const veil_bgv_plaintext *p, veil_error *err);
veil_status veil_bgv_sub_plain(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                               const veil_bgv_plaintext *p, veil_error *err);
veil_status veil_bgv_mul_plain(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                               const veil_bgv_plaintext *p, veil_error *err);
/* a + k and a * k for an integer k (taken mod t) in every slot. */
veil_status veil_bgv_add_scalar(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                                int64_t k, veil_error *err);
veil_status veil_bgv_mul_scalar(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                                int64_t k, veil_error *err);
/*
 * out = sum_i k_i a_i + bias (bias in every slot), for integers |k_i| < 2^20, in one pass with 128-bit lazy
 * accumulation: the linear layer of exact inference. The a_i (count >= 1) must share size, level and
 * factor, as the outputs of one layer do; terms with k_i = 0 cost nothing.
 */
veil_status veil_bgv_linear_combination(const veil_context *ctx, veil_bgv_ciphertext *out,
                                        const veil_bgv_ciphertext *const *a, const int64_t *k, size_t count,
                                        int64_t bias, veil_error *err);
/* a * b (size 3; relinearize afterwards), with the automatic modulus switching described above. */
veil_status veil_bgv_mul(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                         const veil_bgv_ciphertext *b, veil_error *err);
veil_status veil_bgv_square(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                            veil_error *err);
veil_status veil_bgv_relinearize(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                                 const veil_switch_key *relin_key, veil_error *err);
/* a * b, relinearized: the usual product. */
veil_status veil_bgv_mul_relin(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                               const veil_bgv_ciphertext *b, const veil_switch_key *relin_key, veil_error *err);
/* a^e (e >= 1) by repeated squaring, relinearized after every product. */
veil_status veil_bgv_power(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                           uint64_t e, const veil_switch_key *relin_key, veil_error *err);
/* Modulus switching by hand: one level down, or down to `level`. */
veil_status veil_bgv_mod_switch(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                                veil_error *err);
veil_status veil_bgv_mod_switch_to(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                                   size_t level, veil_error *err);
/*
 * Rotates both rows left by `steps` (negative: right) with the Galois key of
 * veil_galois_element_rotation(ctx, steps); swaps the two rows with that of
 * veil_galois_element_conjugation(ctx).
 */
veil_status veil_bgv_rotate_rows(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                                 long steps, const veil_switch_key *galois_key, veil_error *err);
veil_status veil_bgv_swap_columns(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                                  const veil_switch_key *galois_key, veil_error *err);

/* ---- CRT over several plaintext moduli ------------------------------------------------------------- */

/*
 * Results larger than one t: run the same computation under k (2..4) parameter sets that differ only in
 * their pairwise coprime plaintext moduli t_0..t_k-1, on the residues of the inputs, and recompose. split
 * writes values mod t_i into residues[i][0..count); compose returns the integer congruent to every
 * residue in [-(T-1)/2, T/2], T the product of the moduli, and VEIL_ERR_ARGUMENT when that integer does
 * not fit an int64_t.
 */
veil_status veil_bgv_crt_split(const uint64_t *moduli, size_t k, const int64_t *values, size_t count,
                               uint64_t *const *residues, veil_error *err);
veil_status veil_bgv_crt_compose(const uint64_t *moduli, size_t k, const uint64_t *const *residues, size_t count,
                                 int64_t *values, veil_error *err);

/* ---- multi-party decryption and key switching (veil/party.h, docs/multiparty.md) -------------------------- */

/*
 * Party `party`'s share of the joint decryption of ct (2 polynomials; relinearize first), with its secret share
 * sk and smudging noise (NULL: the defaults). The default error bound is the ciphertext's noise estimate over t; the smudged phase must keep a bit of
 * budget: VEIL_ERR_NOISE before anything is made when t 2^(log2 sigma + 3) reaches Q_l / 4.
 */
veil_status veil_bgv_decrypt_share(veil_party_share **out, const veil_party_group *group, size_t party,
                                   const veil_bgv_ciphertext *ct, const veil_secret_key *sk,
                                   const veil_party_smudging *smudging, veil_prng *prng, veil_error *err);
/*
 * Combines the decryption shares of all N parties (any order) of exactly this ciphertext: out receives the exact message (VEIL_ERR_NOISE, and nothing written, when the budget is exhausted).
 * A share of another ciphertext, group or kind, a duplicated or a missing party: an error, nothing written.
 */
veil_status veil_bgv_decrypt_joint(veil_bgv_plaintext *out, const veil_party_group *group, const veil_bgv_ciphertext *ct,
                                   const veil_party_share *const *shares, size_t count, veil_error *err);
/* Party `party`'s share of re-encrypting ct under the receiver's public key `to`, without decrypting it. */
veil_status veil_bgv_switch_share(veil_party_share **out, const veil_party_group *group, size_t party,
                                  const veil_bgv_ciphertext *ct, const veil_secret_key *sk, const veil_public_key *to,
                                  const veil_party_smudging *smudging, veil_prng *prng, veil_error *err);
/* Combines the switching shares of all N parties into out: the ciphertext under the receiver's key, at ct's level and factor, its noise estimate raised by the smudging. */
veil_status veil_bgv_switch_joint(veil_bgv_ciphertext *out, const veil_party_group *group, const veil_bgv_ciphertext *ct,
                                  const veil_public_key *to, const veil_party_share *const *shares, size_t count,
                                  veil_error *err);

VEIL_API_END

#ifdef __cplusplus
}
#endif
#endif /* VEIL_BGV_H */
