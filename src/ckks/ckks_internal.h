/* Internal definitions of the CKKS layer. */
#ifndef VEIL_CKKS_INTERNAL_H
#define VEIL_CKKS_INTERNAL_H

#include <complex.h>
#include "veil/ckks.h"
#include "rlwe/rlwe_internal.h"

struct veil_ckks_encoder {
    const veil_context *ctx;
    size_t n, slots;        /* slots = n / 2 */
    double complex *roots;  /* roots[j] = exp(2 pi i j / 2n), j in [0, 2n] */
    uint64_t *rot_group;    /* rot_group[j] = 5^j mod 2n, j < slots */
};

struct veil_ckks_plaintext {
    const veil_context *ctx;
    veil_poly *m; /* over q_0..q_level, evaluation form */
    size_t level;
    double scale;
};

struct veil_ckks_ciphertext {
    const veil_context *ctx;
    veil_poly *c[3]; /* over q_0..q_level, evaluation form; c[2] only while size is 3 */
    size_t size, level;
    double scale;
    bool seeded;     /* fresh secret-key encryption: c[1] = uniform from (seed, stream 0) */
    uint8_t seed[VEIL_SEED_BYTES];
};

/* Makes *p a polynomial over q_0..q_level (reallocating when its level differs); contents unspecified. */
veil_status veil_ckks_poly_at(veil_poly **p, const veil_context *ctx, size_t level, veil_error *err);

#endif
