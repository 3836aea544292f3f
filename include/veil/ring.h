/*
 * veil/ring.h - the polynomial ring Z_Q[X]/(X^N + 1) in RNS form: modular arithmetic, NTT-friendly
 * primes, the negacyclic NTT, RNS polynomials and their operations, base conversions, rescaling,
 * automorphisms and samplers.
 *
 * A veil_ring holds the degree N and a table of primes (the full chain of a parameter set: the Q primes
 * followed by any special P primes) with every precomputation the operations need. It is read-only after
 * creation and may be shared by threads. A veil_poly is a polynomial over a subset of those primes (its
 * "base", a list of prime indices), in coefficient or evaluation (NTT) form.
 *
 * Limb size. Primes of up to 61 bits are accepted everywhere. Primes below 2^50 additionally get the
 * AVX2 kernels, which evaluate the butterflies with double-precision FMA (Veil's chosen limb size), or, where
 * the CPU has AVX-512 IFMA, the IFMA kernels (52-bit integer multiply-add; VEIL_NO_AVX512=1 keeps AVX2): use
 * primes of at most 50 bits for speed. Every kernel gives the same output bit for bit.
 */
#ifndef VEIL_RING_H
#define VEIL_RING_H

#include <stddef.h>
#include <stdint.h>
#include "veil/core.h"

#ifdef __cplusplus
extern "C" {
#endif

VEIL_API_BEGIN

#define VEIL_RING_MIN_LOG_N 10
#define VEIL_RING_MAX_LOG_N 17
#define VEIL_PRIME_MAX_BITS 61      /* largest prime size the ring accepts */
#define VEIL_PRIME_SIMD_MAX_BITS 50 /* primes below 2^50 use the AVX2 kernels */
#define VEIL_RING_MAX_PRIMES 64     /* most primes one ring may hold */

/* ---- Single-word modular arithmetic (q < 2^61 unless stated) ---------------------------------- */

uint64_t veil_mod_add(uint64_t a, uint64_t b, uint64_t q); /* a, b < q */
uint64_t veil_mod_sub(uint64_t a, uint64_t b, uint64_t q); /* a, b < q */
uint64_t veil_mod_mul(uint64_t a, uint64_t b, uint64_t q); /* any a, b; result < q */
uint64_t veil_mod_pow(uint64_t base, uint64_t exp, uint64_t q);
/* The inverse of a modulo q into *out; VEIL_ERR_ARGUMENT when gcd(a, q) != 1. */
veil_status veil_mod_inv(uint64_t *out, uint64_t a, uint64_t q, veil_error *err);

/* ---- Primes ------------------------------------------------------------------------------------ */

/* Deterministic primality for every 64-bit integer (Miller-Rabin with the first 12 prime bases). */
int veil_is_prime(uint64_t n);

/*
 * Chooses `count` distinct primes q = 1 (mod 2n), one per entry of bits[] (2^(bits-1) < q < 2^bits,
 * 20 <= bits <= 61), none equal to an entry of avoid[] (may be NULL when avoid_count is 0). Each is the
 * largest such prime not yet taken, so a repeated size gives the next prime down. n is a power of two in
 * [2^10, 2^17]. VEIL_ERR_NOT_FOUND when a size has too few primes.
 */
veil_status veil_prime_chain(uint64_t *out, const unsigned *bits, size_t count, size_t n,
                             const uint64_t *avoid, size_t avoid_count, veil_error *err);

/* The smallest primitive `order`-th root of unity modulo the prime q (order a power of two dividing q-1). */
veil_status veil_primitive_root(uint64_t *out, uint64_t q, uint64_t order, veil_error *err);

/* ---- The ring context -------------------------------------------------------------------------- */

typedef enum veil_kernel {
    VEIL_KERNEL_AUTO = 0,   /* AVX2 when the CPU has AVX2+FMA and VEIL_NO_AVX2 is not set to 1 */
    VEIL_KERNEL_SCALAR = 1, /* portable C only */
    VEIL_KERNEL_AVX2 = 2    /* demand AVX2; VEIL_ERR_UNSUPPORTED on a CPU without it */
} veil_kernel;

typedef struct veil_ring_options {
    veil_kernel kernel; /* default VEIL_KERNEL_AUTO */
    int threads;        /* 0: veil_threads_default() */
} veil_ring_options;

typedef struct veil_ring veil_ring;

/*
 * A ring of degree n (a power of two, 2^10..2^17) over `count` distinct primes, each q = 1 (mod 2n) and
 * below 2^61. opts may be NULL for the defaults.
 */
veil_status veil_ring_new(veil_ring **out, size_t n, const uint64_t *primes, size_t count,
                          const veil_ring_options *opts, veil_error *err);
void veil_ring_free(veil_ring *ring);

size_t veil_ring_degree(const veil_ring *ring);
size_t veil_ring_prime_count(const veil_ring *ring);
uint64_t veil_ring_prime(const veil_ring *ring, size_t index); /* 0 when index is out of range */
/* The kernel the ring's NTTs run: VEIL_KERNEL_SCALAR or VEIL_KERNEL_AVX2 (for primes below 2^50; also where
 * the AVX-512 IFMA kernels run, the level above it). */
veil_kernel veil_ring_kernel(const veil_ring *ring);
int veil_ring_threads(const veil_ring *ring);
/* Changes the thread count (>= 1). Not to be called while another thread uses the ring. */
veil_status veil_ring_set_threads(veil_ring *ring, int threads, veil_error *err);

/*
 * One-limb negacyclic NTT for the prime of the given index, in place.
 * Forward: coefficients in natural order -> evaluations at psi^(2*brv(j)+1) at position j (bit-reversed
 * order), psi the ring's primitive 2n-th root. Inverse: the exact inverse (including the 1/n factor).
 * in: values in [0, q); out: values in [0, q). The scalar and AVX2 kernels give identical output.
 */
veil_status veil_ntt_forward(const veil_ring *ring, size_t prime_index, uint64_t *coeffs, veil_error *err);
veil_status veil_ntt_inverse(const veil_ring *ring, size_t prime_index, uint64_t *coeffs, veil_error *err);

/* ---- RNS polynomials --------------------------------------------------------------------------- */

typedef enum veil_form {
    VEIL_FORM_COEFF = 0, /* coefficients, limb by limb */
    VEIL_FORM_EVAL = 1   /* NTT form: pointwise products are negacyclic products */
} veil_form;

typedef struct veil_poly veil_poly;

/* A zero polynomial over the primes base[0..count) of the ring (distinct valid indices, in any order). */
veil_status veil_poly_new(veil_poly **out, const veil_ring *ring, const size_t *base, size_t count,
                          veil_form form, veil_error *err);
/* A zero polynomial over the consecutive primes first .. first+count-1. */
veil_status veil_poly_new_range(veil_poly **out, const veil_ring *ring, size_t first, size_t count,
                                veil_form form, veil_error *err);
/* Wipes (a polynomial may hold a secret) and frees. Accepts NULL. */
void veil_poly_free(veil_poly *poly);

const veil_ring *veil_poly_ring(const veil_poly *poly);
size_t veil_poly_limb_count(const veil_poly *poly);
size_t veil_poly_prime_index(const veil_poly *poly, size_t limb); /* ring index of the limb's prime */
veil_form veil_poly_form(const veil_poly *poly);
/* The n residues of one limb (64-byte aligned); NULL when limb is out of range. */
uint64_t *veil_poly_limb(veil_poly *poly, size_t limb);
const uint64_t *veil_poly_limb_const(const veil_poly *poly, size_t limb);

/* dst = src; both over the same base. */
veil_status veil_poly_copy(veil_poly *dst, const veil_poly *src, veil_error *err);
/* Sets every limb from n signed coefficients (any int64); the form becomes VEIL_FORM_COEFF. */
veil_status veil_poly_set_i64(veil_poly *poly, const int64_t *coeffs, veil_error *err);
/* The same from n integer-valued doubles of any finite magnitude (exact residues; VEIL_ERR_ARGUMENT otherwise). */
veil_status veil_poly_set_integral(veil_poly *poly, const double *coeffs, veil_error *err);
/* Checks that every residue is below its prime (for data that came from outside). */
veil_status veil_poly_validate(const veil_poly *poly, veil_error *err);

/* Converts all limbs to evaluation / coefficient form (no-op when already there). */
veil_status veil_poly_to_eval(veil_poly *poly, veil_error *err);
veil_status veil_poly_to_coeff(veil_poly *poly, veil_error *err);

/* Element-wise operations. All operands share base and form; out may alias an input. */
veil_status veil_poly_add(veil_poly *out, const veil_poly *a, const veil_poly *b, veil_error *err);
veil_status veil_poly_sub(veil_poly *out, const veil_poly *a, const veil_poly *b, veil_error *err);
veil_status veil_poly_neg(veil_poly *out, const veil_poly *a, veil_error *err);
/* out = a * b (evaluation form required). */
veil_status veil_poly_mul(veil_poly *out, const veil_poly *a, const veil_poly *b, veil_error *err);
/* out += a * b (evaluation form required). */
veil_status veil_poly_mul_acc(veil_poly *out, const veil_poly *a, const veil_poly *b, veil_error *err);
/* out = a * s for a signed integer s (either form). */
veil_status veil_poly_mul_scalar(veil_poly *out, const veil_poly *a, int64_t s, veil_error *err);
/* The same by an integer-valued double of any finite magnitude (its exact residues). */
veil_status veil_poly_mul_integral(veil_poly *out, const veil_poly *a, double s, veil_error *err);

/*
 * CRT composition: coefficient i of the polynomial (coefficient form) as the integer in [0, Q), Q the
 * product of the poly's primes, written little-endian into out[i*words .. i*words+words). words must be
 * at least ceil(log2(Q)/64).
 */
veil_status veil_poly_crt_compose(uint64_t *out, size_t words, const veil_poly *poly, veil_error *err);
/* The converse: each coefficient from a little-endian multiword integer, reduced modulo each prime. */
veil_status veil_poly_set_multiword(veil_poly *poly, const uint64_t *in, size_t words, veil_error *err);

/* ---- Base conversion, rescaling, key-switching helpers ---------------------------------------- */

/*
 * Fast base conversion (Bajard-Eynard-Hasan-Zucca 2016, section 2.2) from base B = {b_i} to base C:
 * for x in [0, B), out = sum_i [x_i * (B/b_i)^-1]_{b_i} * (B/b_i) mod c_j, which equals x + u*B for
 * an integer 0 <= u < |B| (the documented error of this approximate conversion). Coefficient form.
 */
typedef struct veil_base_conv veil_base_conv;
veil_status veil_base_conv_new(veil_base_conv **out, const veil_ring *ring, const size_t *from, size_t from_count,
                               const size_t *to, size_t to_count, veil_error *err);
void veil_base_conv_free(veil_base_conv *conv);
/* in over the conversion's source base, out over its target base; both in coefficient form. */
veil_status veil_base_conv_apply(const veil_base_conv *conv, veil_poly *out, const veil_poly *in, veil_error *err);

/*
 * Rescale (CKKS) / modulus switch: divides by the poly's last prime q_l with rounding and drops that limb:
 * out = round(x / q_l) exactly, for x in [0, Q). Works in either form; out is over the first limbs of in
 * and in the same form (out may not alias in).
 */
veil_status veil_poly_rescale(veil_poly *out, const veil_poly *in, veil_error *err);

/*
 * ModUp for hybrid key switching (Han-Ki 2020): `in` over base D; `conv` converts from D to a base E
 * disjoint from D; out is over D followed by E (in that order) and receives in's limbs on D and, on E, the
 * centered representative x' of x mod D (x' = x or x - D, |x'| <= D/2; the conversion of
 * Halevi-Polyakov-Shoup 2019, which leaves no bias in the key-switching noise). Its correction is
 * computed in double precision: only when x mod D lies within (k^2 + 4) * 2^-53 * D of D/2 (k the number
 * of primes of D) may the other one of x, x - D come out. Either form; out takes in's form.
 */
veil_status veil_poly_mod_up(veil_poly *out, const veil_poly *in, const veil_base_conv *conv, veil_error *err);

/*
 * ModDown: `in` over base Q followed by base P; `conv` converts from P to Q; out over Q receives
 * round(x / P), off by one only when x mod P lies within (k^2 + 4) * 2^-53 * P of P/2 (k the number of
 * primes of P; the centered conversion of veil_poly_mod_up). Either form; out takes in's form.
 */
veil_status veil_poly_mod_down(veil_poly *out, const veil_poly *in, const veil_base_conv *conv, veil_error *err);

/*
 * The BGV forms of rescale and ModDown, for a plaintext modulus t >= 2 prime to every limb (Gentry-Halevi-
 * Smart 2012, section 3; Kim-Polyakov-Zucca 2021, section 3): out = (x - d) / D with d = x mod D and d = 0
 * mod t (d = t [x t^-1]_D centered), so that out = x * D^-1 mod t and |out - x / D| <= t / 2.
 */
veil_status veil_poly_rescale_t(veil_poly *out, const veil_poly *in, uint64_t t, veil_error *err);
veil_status veil_poly_mod_down_t(veil_poly *out, const veil_poly *in, const veil_base_conv *conv, uint64_t t,
                                 veil_error *err);

/*
 * Galois automorphism X -> X^k (k odd, 1 <= k < 2n) in either form: in coefficient form a signed
 * permutation of the coefficients; in evaluation form a permutation of the NTT slots. out must not alias in.
 */
veil_status veil_poly_automorphism(veil_poly *out, const veil_poly *in, uint64_t k, veil_error *err);

/* ---- Samplers ---------------------------------------------------------------------------------- */
/*
 * All samplers draw from a veil_prng, so a seeded prng reproduces their output exactly. Those producing
 * secret values (ternary, Hamming weight, error) run in time independent of the values they produce.
 */

/* Each limb uniform modulo its prime, by rejection sampling (no bias). The poly's form is kept (a
 * uniform polynomial is uniform in either form). */
veil_status veil_sample_uniform(veil_poly *out, veil_prng *prng, veil_error *err);

/* n coefficients uniform in {-1, 0, 1}. */
veil_status veil_sample_ternary(int8_t *out, size_t n, veil_prng *prng, veil_error *err);
/* n coefficients in {-1, 0, 1} with exactly h nonzero, positions and signs uniform (1 <= h <= n). */
veil_status veil_sample_ternary_hw(int8_t *out, size_t n, size_t h, veil_prng *prng, veil_error *err);

#define VEIL_CBD_ETA 21 /* centered binomial: variance 21/2, sigma 3.24, |e| <= 21 */
/* n coefficients from the centered binomial distribution: popcount(21 bits) - popcount(21 bits). */
veil_status veil_sample_cbd(int8_t *out, size_t n, veil_prng *prng, veil_error *err);

/*
 * n values from the rounded Gaussian of standard deviation sigma (1 <= sigma <= 1e17), for noise flooding.
 * Unlike the samplers above its running time may depend on the values drawn: do not use it for keys.
 */
veil_status veil_sample_gaussian_wide(int64_t *out, size_t n, double sigma, veil_prng *prng, veil_error *err);

/*
 * n values from the discrete Gaussian N_Z(0, sigma^2) with sigma^2 = sigma2_num / sigma2_den exactly
 * (1 <= sigma^2, 1 <= sigma2_den <= 2^32), P[x] = exp(-x^2 / (2 sigma^2)) / sum_y exp(-y^2 / (2 sigma^2)):
 * Canonne-Kamath-Steinke 2020, Algorithms 1-3, exact rational arithmetic on integers, for differential
 * privacy. One cut-off, changing the distribution by less than 2^-2800 in total variation: a
 * discrete-Laplace candidate beyond 64 t (t = floor(sigma) + 1) is rejected outright.
 * Timing: the rejection loops repeat a number of times that depends on rejected candidates only; within a
 * candidate every loop runs a fixed number of rounds without value-dependent branches, except with
 * probability below 2^-61 per kept value (see src/ring/dgauss.c). Cost: about 30 us per value (one core).
 */
#define VEIL_DGAUSS_MAX_DEN ((uint64_t)1 << 32)
#define VEIL_DGAUSS_MAX_SIGMA 2147483648.0 /* 2^31 */
veil_status veil_sample_discrete_gaussian(int64_t *out, size_t n, uint64_t sigma2_num, uint64_t sigma2_den,
                                          veil_prng *prng, veil_error *err);
/* A rational sigma^2 = *num / *den >= sigma^2 (rounded up, den a power of two <= 2^32, as large as keeps
 * num below 2^63, so the relative excess is below 2^-31 for sigma < 2^15), for 1 <= sigma <= 2^31. */
veil_status veil_dgauss_sigma2_rational(double sigma, uint64_t *num, uint64_t *den, veil_error *err);

/* Sets a poly (coefficient form) from n small signed coefficients, in constant time per coefficient. */
veil_status veil_poly_set_small(veil_poly *poly, const int8_t *coeffs, veil_error *err);

VEIL_API_END

#ifdef __cplusplus
}
#endif
#endif /* VEIL_RING_H */
