/*
 * veil/rlwe.h - what CKKS and BGV share: the context, keys, ciphertexts and key switching.
 *
 * A context holds a parameter set and the ring over all its primes (the Q chain followed by the special
 * primes P), with the precomputations of hybrid key switching (Han-Ki, CT-RSA 2020): the Q primes are cut
 * into dnum digits of alpha = ceil(|Q| / dnum) consecutive primes; a key-switching key holds one RLWE
 * sample over QP per digit. A context is read-only after creation and may be shared by threads.
 *
 * Ciphertexts live at a level l (0..|Q|-1): their polynomials are over q_0 .. q_l, in evaluation form.
 */
#ifndef VEIL_RLWE_H
#define VEIL_RLWE_H

#include <stddef.h>
#include <stdint.h>
#include "veil/core.h"
#include "veil/params.h"
#include "veil/ring.h"

#ifdef __cplusplus
extern "C" {
#endif

VEIL_API_BEGIN

typedef struct veil_context veil_context;

/* opts may be NULL (AVX2 when available, VEIL_THREADS threads). */
veil_status veil_context_new(veil_context **out, const veil_params *params, const veil_ring_options *opts,
                             veil_error *err);
void veil_context_free(veil_context *ctx);
const veil_params *veil_context_params(const veil_context *ctx);
const veil_ring *veil_context_ring(const veil_context *ctx);
size_t veil_context_max_level(const veil_context *ctx); /* |Q| - 1 */

/* ---- keys -------------------------------------------------------------------------------------- */

typedef struct veil_secret_key veil_secret_key;
typedef struct veil_public_key veil_public_key;
typedef struct veil_switch_key veil_switch_key; /* relinearization or Galois key */

/* A secret key from the parameter set's distribution. prng NULL: the OS CSPRNG. Wiped when freed. */
veil_status veil_secret_key_new(veil_secret_key **out, const veil_context *ctx, veil_prng *prng, veil_error *err);
void veil_secret_key_free(veil_secret_key *sk);

/*
 * pk = (-a*s + e, a) over Q and P, a uniform, e from the centered binomial error distribution. Encryption
 * works over Q_l*P and divides by P, which divides the encryption noise by P as well (what remains is the
 * rounding of that division).
 */
veil_status veil_public_key_new(veil_public_key **out, const veil_context *ctx, const veil_secret_key *sk,
                                veil_prng *prng, veil_error *err);
void veil_public_key_free(veil_public_key *pk);

/* The relinearization key: switches s^2 to s. */
veil_status veil_relin_key_new(veil_switch_key **out, const veil_context *ctx, const veil_secret_key *sk,
                               veil_prng *prng, veil_error *err);
/* A Galois key for X -> X^k (k odd, below 2N): switches s(X^k) to s. */
veil_status veil_galois_key_new(veil_switch_key **out, const veil_context *ctx, const veil_secret_key *sk,
                                uint64_t galois_element, veil_prng *prng, veil_error *err);
void veil_switch_key_free(veil_switch_key *key);
/* The Galois element of a Galois key; 0 for a relinearization key. */
uint64_t veil_switch_key_galois_element(const veil_switch_key *key);

/*
 * The Galois element that rotates CKKS slots (or BGV rows) left by `steps` (negative: right):
 * 5^steps mod 2N; and the one for complex conjugation (or BGV column swap): 2N - 1.
 */
uint64_t veil_galois_element_rotation(const veil_context *ctx, long steps);
uint64_t veil_galois_element_conjugation(const veil_context *ctx);

/*
 * The smallest set of rotation keys that composes every rotation in steps[] (each a signed slot count):
 * the powers of two up to the largest step, in both directions when needed, or the steps themselves when
 * that is fewer keys. Writes at most max_out Galois elements to out and their number to *count.
 */
veil_status veil_rotation_key_set(uint64_t *out, size_t *count, size_t max_out, const veil_context *ctx,
                                  const long *steps, size_t step_count, veil_error *err);

VEIL_API_END

#ifdef __cplusplus
}
#endif
#endif /* VEIL_RLWE_H */
