/*
 * Measuring a ciphertext's error with the secret key, and decryption with flooding noise (IND-CPA-D).
 *
 * Li and Micciancio (Eurocrypt 2021) showed that a CKKS decryption m + e handed to someone who also holds
 * the ciphertext reveals e, and from e and the ciphertext the secret key. The defence is to add, at
 * decryption, fresh Gaussian noise much wider than e (noise flooding), sized from a bound on e: here the
 * error measured by the key holder on a run of the same computation on data it knows, which is how
 * OpenFHE's noise-estimation mode works, or a bound the caller derives otherwise.
 */
#include <math.h>
#include <string.h>
#include "ckks/ckks_internal.h"

veil_status veil_ckks_measure_error(const veil_ckks_encoder *enc, veil_ckks_error *out, const veil_ckks_ciphertext *ct,
                                    const veil_secret_key *sk, const double *re, const double *im, size_t count,
                                    veil_error *err)
{
    VEIL_REQUIRE(enc, err);
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(ct, err);
    VEIL_REQUIRE(re, err);
    const veil_context *ctx = enc->ctx;
    if (count == 0 || count > enc->slots)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "measure_error: %zu expected values (1 to %zu)", count, enc->slots);
    veil_status st = VEIL_OK;
    veil_ckks_plaintext *got = NULL, *want = NULL;
    const size_t n = enc->n;
    double *coeffs = veil_alloc(n, sizeof *coeffs), *dr = veil_alloc(count, sizeof *dr);
    double *di = veil_alloc(count, sizeof *di);
    if (!coeffs || !dr || !di) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "measure_error: out of memory");
    VEIL_CHECK(veil_ckks_plaintext_new(&got, ctx, err));
    VEIL_CHECK(veil_ckks_plaintext_new(&want, ctx, err));
    VEIL_CHECK(veil_ckks_decrypt(ctx, got, ct, sk, err));
    VEIL_CHECK(veil_ckks_decode(enc, dr, di, count, got, err));
    VEIL_CHECK(veil_ckks_encode(enc, want, re, im, count, got->scale, got->level, err));
    /* the error polynomial: decrypted minus the exact encoding (off by the encoding's rounding, <= 1/2) */
    VEIL_CHECK(veil_poly_sub(got->m, got->m, want->m, err));
    VEIL_CHECK(veil_poly_to_coeff(got->m, err));
    VEIL_CHECK(veil_poly_centered_doubles(coeffs, got->m, err));
    double coeff = 0, slot = 0;
    for (size_t j = 0; j < n; j++) coeff = fmax(coeff, fabs(coeffs[j]));
    for (size_t i = 0; i < count; i++) slot = fmax(slot, hypot(dr[i] - re[i], di[i] - (im ? im[i] : 0.0)));
    out->coeff_bits = log2(coeff + 1.0);
    out->slot_error = slot;
    out->precision_bits = slot > 0 ? -log2(slot) : 64.0;
done:
    veil_ckks_plaintext_free(got);
    veil_ckks_plaintext_free(want);
    veil_free_secret(coeffs, n * sizeof *coeffs);
    veil_free_secret(dr, count * sizeof *dr);
    veil_free_secret(di, count * sizeof *di);
    return st;
}

/*
 * The error of a ciphertext whose slots hold real values, without knowing them. Real slots make the message
 * m invariant under X -> X^-1 (its conjugate slots equal its slots): m_j = -m_{N-j} for 0 < j < N. So
 * c_j + c_{N-j} of the decryption c = m + e is e_j + e_{N-j} alone: the error's part that the symmetry
 * sends to its negative (the slots' imaginary parts, seen in the coefficients). An error made of rounding
 * and Gaussian terms puts as much weight there as in the symmetric part (both are carried alike by every
 * product with a real-slotted value, as the automorphism is a ring map), so the largest |e_j + e_{N-j}| / 2,
 * times 4, bounds every coefficient of e: a bit for the symmetric part, a bit for the tails (the largest of N
 * iid coefficients is about 1.5 times the largest of these N / 2). Against a bound from the slots (the
 * largest imaginary part, which sums N coefficients) it gains up to log2 sqrt(N) bits for an error spread
 * over the coefficients; 3 bits on trained weights, whose error is concentrated (docs/training.md).
 */
veil_status veil_ckks_estimate_error_real(const veil_context *ctx, double *error_bits, const veil_ckks_ciphertext *ct,
                                          const veil_secret_key *sk, veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(error_bits, err);
    VEIL_REQUIRE(ct, err);
    VEIL_REQUIRE(sk, err);
    veil_status st = VEIL_OK;
    const size_t n = ctx->params.n;
    veil_ckks_plaintext *pt = NULL;
    double *c = veil_alloc(n, sizeof *c), largest = 0;
    if (!c) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "estimate_error: out of memory");
    VEIL_CHECK(veil_ckks_plaintext_new(&pt, ctx, err));
    VEIL_CHECK(veil_ckks_decrypt(ctx, pt, ct, sk, err));
    VEIL_CHECK(veil_poly_to_coeff(pt->m, err));
    VEIL_CHECK(veil_poly_centered_doubles(c, pt->m, err));
    for (size_t j = 1; j <= n / 2; j++) largest = fmax(largest, fabs(c[j] + c[n - j]) / 2);
    if (!isfinite(largest)) VEIL_FAIL(err, VEIL_ERR_NOISE, "estimate_error: the ciphertext does not decrypt to numbers");
    *error_bits = log2(4.0 * largest + 1.0);
done:
    veil_ckks_plaintext_free(pt);
    veil_free_secret(c, n * sizeof *c);
    return st;
}

/* sigma = sqrt(24 k) 2^(s/2) B: the Gaussian-mechanism sizing of Li, Micciancio, Schultz and Sorrell
 * (Crypto 2022) for s bits of statistical security over k decryptions of related ciphertexts. */
static veil_status flooding_sigma(const veil_ckks_flooding *f, double *log2_sigma, veil_error *err)
{
    const unsigned s = f->statistical_security ? f->statistical_security : VEIL_FLOODING_DEFAULT_SECURITY;
    const double k = f->queries ? (double)f->queries : (double)VEIL_FLOODING_DEFAULT_QUERIES;
    if (!(f->error_bits >= 0) || !(f->error_bits <= 60))
        return veil_fail(err, VEIL_ERR_ARGUMENT, "flooding: an error bound of 2^%g is not in [2^0, 2^60]", f->error_bits);
    if (s > 128) return veil_fail(err, VEIL_ERR_ARGUMENT, "flooding: %u bits of statistical security (at most 128)", s);
    *log2_sigma = 0.5 * log2(24.0 * k) + 0.5 * s + f->error_bits;
    return VEIL_OK;
}

veil_status veil_ckks_flooding_bits(const veil_ckks_flooding *flooding, double *log2_sigma, veil_error *err)
{
    VEIL_REQUIRE(flooding, err);
    VEIL_REQUIRE(log2_sigma, err);
    return flooding_sigma(flooding, log2_sigma, err);
}

/*
 * The noise must not carry a coefficient of the decryption m (coefficient form) past Q_l / 2, where it would
 * wrap and spoil every slot: the largest |m_j| plus 8 sigma (a Gaussian's tail beyond that is below 2^-49
 * per coefficient) must stay within Q_l / 2. What matters is the room the values leave, not the scale.
 */
static veil_status fits_modulus(const veil_context *ctx, const veil_ckks_plaintext *m, double *coeffs,
                                double log2_sigma, veil_error *err)
{
    double log2_q = 0, largest = 0;
    for (size_t l = 0; l <= m->level && l < ctx->q_count; l++) log2_q += log2((double)ctx->ring->primes[l]);
    veil_status st = veil_poly_centered_doubles(coeffs, m->m, err);
    if (st != VEIL_OK) return st;
    for (size_t j = 0; j < ctx->params.n; j++) largest = fmax(largest, fabs(coeffs[j]));
    const double need = log2(largest + 8.0 * exp2(log2_sigma));
    if (!(need < log2_q - 1))
        return veil_fail(err, VEIL_ERR_ARGUMENT,
                         "decrypt_flooded: flooding noise of 2^%.1f on values of up to 2^%.1f (scale 2^%.1f) does not "
                         "fit the %.1f-bit modulus at level %zu: decrypt at a higher level, or bound the error more "
                         "tightly", log2_sigma, log2(largest + 1), log2(m->scale), log2_q, m->level);
    return VEIL_OK;
}

veil_status veil_ckks_decrypt_flooded(const veil_context *ctx, veil_ckks_plaintext *out, const veil_ckks_ciphertext *ct,
                                      const veil_secret_key *sk, const veil_ckks_flooding *flooding, veil_prng *prng,
                                      veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(ct, err);
    VEIL_REQUIRE(flooding, err);
    if (out->ctx != ctx) return veil_fail(err, VEIL_ERR_MISMATCH, "decrypt_flooded: the plaintext belongs to another context");
    veil_status st = VEIL_OK;
    double log2_sigma = 0;
    veil_prng *use = NULL, *owned = NULL;
    const size_t n = ctx->params.n;
    int64_t *noise = NULL;
    double *coeffs = NULL;
    veil_poly *e = NULL;
    veil_ckks_plaintext *m = NULL;
    VEIL_CHECK(flooding_sigma(flooding, &log2_sigma, err));
    if (log2_sigma > 56)
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "decrypt_flooded: flooding noise of 2^%.1f is beyond the sampler's 2^56",
                  log2_sigma);
    VEIL_CHECK(veil_prng_or_os(&use, &owned, prng, err));
    noise = veil_alloc(n, sizeof *noise);
    coeffs = veil_alloc(n, sizeof *coeffs);
    if (!noise || !coeffs) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "decrypt_flooded: out of memory");
    VEIL_CHECK(veil_ckks_plaintext_new(&m, ctx, err));
    VEIL_CHECK(veil_ckks_decrypt(ctx, m, ct, sk, err));
    VEIL_CHECK(veil_poly_to_coeff(m->m, err));
    VEIL_CHECK(fits_modulus(ctx, m, coeffs, log2_sigma, err));
    VEIL_CHECK(veil_sample_gaussian_wide(noise, n, exp2(log2_sigma), use, err));
    VEIL_CHECK(veil_context_poly_new(&e, ctx, ct->el.level, VEIL_FORM_COEFF, err));
    VEIL_CHECK(veil_poly_set_i64(e, noise, err));
    VEIL_CHECK(veil_poly_add(m->m, m->m, e, err));
    VEIL_CHECK(veil_poly_to_eval(m->m, err));
    /* only a flooded result ever reaches out */
    veil_poly_free(out->m);
    out->m = m->m;
    veil_poly_free(out->mqp);
    out->mqp = NULL;
    out->level = m->level;
    out->scale = m->scale;
    m->m = NULL;
done:
    veil_ckks_plaintext_free(m);
    veil_poly_free(e);
    veil_free_secret(noise, n * sizeof *noise);
    veil_free_secret(coeffs, n * sizeof *coeffs);
    veil_prng_free(owned);
    return st;
}
