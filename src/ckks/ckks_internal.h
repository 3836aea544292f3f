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
    veil_poly *mqp; /* NULL, or m's residues on P's primes (veil_ckks_linear_transform_encode_extended) */
    size_t level;
    double scale;
};

/* An RLWE element (src/rlwe) and the scale of the values it encrypts. */
struct veil_ckks_ciphertext {
    veil_rlwe_element el;
    double scale;
};

/* The element of a ciphertext, NULL for NULL (what the element checks report). */
static inline const veil_rlwe_element *veil_ckks_element(const veil_ckks_ciphertext *ct)
{
    return ct ? &ct->el : NULL;
}

/* Are two scales equal up to the rounding of their computation (40 bits)? */
bool veil_ckks_same_scale(double a, double b);

/*
 * out = a * c at exactly `target` scale, one level down: the integer round(c * target * q_l / scale), then a
 * rescale (veil_ckks_mul_constant_to_scale without its check of the target).
 */
veil_status veil_ckks_mul_constant_at(const veil_context *ctx, veil_ckks_ciphertext *out,
                                      const veil_ckks_ciphertext *a, double c, double target, veil_error *err);

/*
 * ct <- (pair[0], pair[1]): two polynomials over q_0..q_level in evaluation form, taken (pair's entries set to
 * NULL); ct's former polynomials released. Its scale is the caller's to set.
 */
void veil_ckks_adopt_pair(veil_ckks_ciphertext *ct, veil_poly **pair, size_t level);

/* Makes *p a polynomial over q_0..q_level (reallocating when its level differs); contents unspecified. */
veil_status veil_ckks_poly_at(veil_poly **p, const veil_context *ctx, size_t level, veil_error *err);

/*
 * As veil_ckks_encode, into m, a polynomial over any primes of the ring (over Q_level P for the sums that
 * double hoisting keeps over the extended basis); the coefficients are bounded by Q_level's modulus.
 */
veil_status veil_ckks_encode_poly(const veil_ckks_encoder *enc, veil_poly *m, const double *re, const double *im,
                                  size_t count, double scale, size_t level, veil_error *err);

#endif
