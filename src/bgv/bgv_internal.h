/* Internal definitions of the BGV layer. */
#ifndef VEIL_BGV_INTERNAL_H
#define VEIL_BGV_INTERNAL_H

#include "veil/bgv.h"
#include "rlwe/rlwe_internal.h"

struct veil_bgv_encoder {
    const veil_context *ctx;
    uint64_t t;
    size_t n;
    veil_ring *slots_ring; /* the NTT modulo t (batching only) */
    size_t *slot_pos;      /* slot i -> its position in the NTT's output (batching only) */
};

struct veil_bgv_plaintext {
    const veil_context *ctx;
    uint64_t *m; /* N coefficients in [0, t) */
};

struct veil_bgv_ciphertext {
    const veil_context *ctx;
    veil_poly *c[3]; /* over q_0..q_level, evaluation form */
    size_t size, level;
    uint64_t factor;   /* the ciphertext decrypts to factor * m mod t (each modulus switch multiplies by q^-1) */
    double noise_bits; /* the evaluator's estimate of log2 |m + t e| */
    bool seeded;       /* fresh secret-key encryption: c[1] = uniform from (seed, stream 0) */
    uint8_t seed[VEIL_SEED_BYTES];
};

#endif
