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

/* An RLWE element (src/rlwe), its correction factor and its noise estimate. */
struct veil_bgv_ciphertext {
    veil_rlwe_element el;
    uint64_t factor;   /* the ciphertext decrypts to factor * m mod t (each modulus switch multiplies by q^-1) */
    double noise_bits; /* the evaluator's estimate of log2 |m + t e| */
};

/* The element of a ciphertext, NULL for NULL (what the element checks report). */
static inline const veil_rlwe_element *veil_bgv_element(const veil_bgv_ciphertext *ct)
{
    return ct ? &ct->el : NULL;
}

/*
 * The automorphism X -> X^galois of a into out with the Galois key (galois 1: a copy), op naming the
 * operation in error messages (the rotations, the column swap, and the circuits built from them).
 */
veil_status veil_bgv_apply_galois(const veil_context *ctx, veil_bgv_ciphertext *out, const veil_bgv_ciphertext *a,
                                  uint64_t galois, const veil_switch_key *key, const char *op, veil_error *err);

/* The message of a phase (evaluation form; turned to coefficient form here) of ct's level and factor, into out. */
veil_status veil_bgv_decode_phase(const veil_context *ctx, veil_bgv_plaintext *out, veil_poly *phase,
                                  const veil_bgv_ciphertext *ct, veil_error *err);

#endif
