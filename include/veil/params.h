/*
 * veil/params.h - RLWE parameter sets (shared by CKKS and BGV) and their security check.
 *
 * A parameter set holds the ring degree N, the chain of Q primes (q_0 first: the one left at the last
 * level), the special primes P used by hybrid key switching, the number of key-switching digits dnum, the
 * secret distribution and the security level. Every set is checked against the HomomorphicEncryption.org
 * security standard (classical attacks, ternary secrets): the total size of Q*P, counted as the sum of the
 * bit lengths of its primes, may not exceed the standard's bound for N at the requested level. A set over
 * the bound is refused with VEIL_ERR_INSECURE unless the caller asks for VEIL_SECURITY_NONE (tests only);
 * the level is part of the set and of its hash, so every object made from it records the choice.
 * A BGV set also holds its plaintext modulus t: keys made for it carry errors multiplied by t.
 */
#ifndef VEIL_PARAMS_H
#define VEIL_PARAMS_H

#include <stddef.h>
#include <stdint.h>
#include "veil/core.h"

#ifdef __cplusplus
extern "C" {
#endif

VEIL_API_BEGIN

/* Security levels. The zero value is 128 bits, so a zero-initialised request is secure by default. */
typedef enum veil_security {
    VEIL_SECURITY_128 = 0,
    VEIL_SECURITY_192 = 1,
    VEIL_SECURITY_256 = 2,
    VEIL_SECURITY_NONE = 3 /* no check at all: for tests and experiments only, never for real data */
} veil_security;

typedef enum veil_secret_kind {
    VEIL_SECRET_TERNARY = 0,   /* coefficients uniform in {-1, 0, 1} */
    VEIL_SECRET_TERNARY_HW = 1 /* exactly hamming_weight nonzero coefficients in {-1, 1} */
} veil_secret_kind;

/*
 * The largest log2(QP) the standard allows for degree n at a level (27/19/14 at N=1024, ... 3523/2411/1866
 * at N=131072). 0 when n is not a power of two in [2^10, 2^17] or level is VEIL_SECURITY_NONE.
 */
unsigned veil_security_max_log_qp(size_t n, veil_security level);

/* The bit size that the security check uses for a list of primes: the sum of their bit lengths. */
unsigned veil_primes_log_product(const uint64_t *primes, size_t count);

/*
 * What a caller states to build a parameter set. Give either the primes themselves (q, p) or their sizes
 * in bits (q_bits, p_bits), and Veil picks NTT-friendly primes of those sizes (the largest ones, distinct).
 * dnum = 0 means one digit per special-prime group: ceil(q_count / p_count) digits.
 */
typedef struct veil_params_spec {
    size_t n;
    size_t q_count;
    const uint64_t *q;       /* q_count primes, or NULL to choose them from q_bits */
    const unsigned *q_bits;  /* q_count sizes when q is NULL */
    size_t p_count;          /* special primes for hybrid key switching (at least 1) */
    const uint64_t *p;
    const unsigned *p_bits;
    size_t dnum;             /* key-switching digits, 1..q_count; 0: automatic */
    veil_secret_kind secret;
    size_t hamming_weight;   /* for VEIL_SECRET_TERNARY_HW; 0: the default (see veil_params_new) */
    veil_security security;
    uint64_t plain_modulus;  /* BGV: the plaintext modulus t (2 <= t < 2^60, prime to every prime); 0: CKKS */
} veil_params_spec;

typedef struct veil_params veil_params;

/*
 * Builds and checks a parameter set. Errors: VEIL_ERR_ARGUMENT for a malformed spec (degree, prime that is
 * not NTT-friendly, duplicates, dnum out of range, special primes smaller than a digit),
 * VEIL_ERR_INSECURE when Q*P is larger than the standard allows at the requested level.
 * For VEIL_SECRET_TERNARY_HW with hamming_weight 0, the weight is 192 (or N/2 if smaller).
 */
veil_status veil_params_new(veil_params **out, const veil_params_spec *spec, veil_error *err);
void veil_params_free(veil_params *params);
/* An independent copy of a parameter set (freed with veil_params_free). */
veil_status veil_params_copy(veil_params **out, const veil_params *params, veil_error *err);

/*
 * Automatic selection. From the multiplicative depth, the scale (bits of each rescaling prime), the
 * size of the first prime (the precision left at the last level), the number of slots wanted (N >= 2 *
 * slots) and the security level, chooses the smallest degree N whose budget fits Q = {first, depth x
 * scale}, and the smallest dnum (hence the least key-switching work) whose special primes still fit.
 */
typedef struct veil_params_request {
    unsigned depth;        /* rescaling primes after the first (0 allowed) */
    unsigned scale_bits;   /* 20..60 */
    unsigned first_bits;   /* 20..61; 0 means scale_bits + 10, at most 60 */
    size_t slots;          /* 0: any */
    veil_security security;
    veil_secret_kind secret;
} veil_params_request;

veil_status veil_params_select(veil_params **out, const veil_params_request *request, veil_error *err);

/*
 * Named presets (primes of at most 50 bits, so that every limb takes the AVX2 kernels; 128-bit security):
 *   "ckks-n8192-d2"   N=8192,  Q = {50, 40, 40},  P = {50, 30}, dnum 3: depth 2, scale 2^40
 *   "ckks-n16384-d7"  N=16384, Q = {50, 7 x 40},  P = {50, 50}, dnum 4: depth 7, scale 2^40
 *   "ckks-n32768-d14" N=32768, Q = {50, 14 x 50}, P = {50, 50}, dnum 8: depth 14, scale 2^50
 *   "bgv-n8192"       N=8192,  Q = {44, 43, 43, 44}, P = {44}, t = 65537: depth 3
 *   "bgv-n16384"      N=16384, Q = {5 x 49, 3 x 48}, P = {49}, t = 65537: depth 7
 * VEIL_ERR_NOT_FOUND for an unknown name.
 */
veil_status veil_params_preset(veil_params **out, const char *name, veil_error *err);
/* A NULL-terminated list of the preset names. */
const char *const *veil_params_preset_names(void);

size_t veil_params_degree(const veil_params *params);
size_t veil_params_q_count(const veil_params *params);
size_t veil_params_p_count(const veil_params *params);
uint64_t veil_params_q(const veil_params *params, size_t i); /* 0 out of range */
uint64_t veil_params_p(const veil_params *params, size_t i); /* 0 out of range */
size_t veil_params_dnum(const veil_params *params);
veil_security veil_params_security(const veil_params *params);
veil_secret_kind veil_params_secret(const veil_params *params);
size_t veil_params_hamming_weight(const veil_params *params); /* 0 for uniform ternary */
unsigned veil_params_log_qp(const veil_params *params);
uint64_t veil_params_plain_modulus(const veil_params *params); /* BGV's t; 0 for a CKKS set */

#define VEIL_PARAMS_HASH_BYTES 32
/* BLAKE2b-256 of the set's canonical encoding: equal hashes mean equal parameter sets. */
void veil_params_hash(const veil_params *params, uint8_t out[VEIL_PARAMS_HASH_BYTES]);

VEIL_API_END

#ifdef __cplusplus
}
#endif
#endif /* VEIL_PARAMS_H */
