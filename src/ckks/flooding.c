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
    veil_poly *e = NULL;
    veil_ckks_plaintext *m = NULL;
    VEIL_CHECK(flooding_sigma(flooding, &log2_sigma, err));
    /* about 4.5 sigma is the largest of N Gaussian coefficients; it must stay well inside Q_l / 2 */
    double log2_q = 0;
    for (size_t l = 0; l <= ct->el.level && l < ctx->q_count; l++) log2_q += log2((double)ctx->ring->primes[l]);
    if (log2_sigma > 56 || log2_sigma + 2.2 + log2(ct->scale) > log2_q - 2)
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT,
                  "decrypt_flooded: flooding noise of 2^%.1f at scale 2^%.1f does not fit the %.1f-bit modulus at level "
                  "%zu: decrypt at a higher level, or bound the error more tightly",
                  log2_sigma, log2(ct->scale), log2_q, ct->el.level);
    VEIL_CHECK(veil_prng_or_os(&use, &owned, prng, err));
    noise = veil_alloc(n, sizeof *noise);
    if (!noise) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "decrypt_flooded: out of memory");
    VEIL_CHECK(veil_ckks_plaintext_new(&m, ctx, err));
    VEIL_CHECK(veil_ckks_decrypt(ctx, m, ct, sk, err));
    VEIL_CHECK(veil_sample_gaussian_wide(noise, n, exp2(log2_sigma), use, err));
    VEIL_CHECK(veil_context_poly_new(&e, ctx, ct->el.level, VEIL_FORM_COEFF, err));
    VEIL_CHECK(veil_poly_set_i64(e, noise, err));
    VEIL_CHECK(veil_poly_to_eval(e, err));
    VEIL_CHECK(veil_poly_add(m->m, m->m, e, err));
    /* only a flooded result ever reaches out */
    veil_poly_free(out->m);
    out->m = m->m;
    out->level = m->level;
    out->scale = m->scale;
    m->m = NULL;
done:
    veil_ckks_plaintext_free(m);
    veil_poly_free(e);
    veil_free_secret(noise, n * sizeof *noise);
    veil_prng_free(owned);
    return st;
}
