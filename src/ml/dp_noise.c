/*
 * Differentially private releases of encrypted model outputs (docs/privacy.md): the evaluator adds discrete
 * Gaussian noise (veil_sample_discrete_gaussian) to every slot of every output ciphertext before the set
 * leaves it, and records the release (epsilon, delta, sensitivity, sigma, grid, rho) after the set's
 * metadata, so that the key holder's decryption can charge the key set's budget.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "ml/ml_plan.h"
#include "veil/ring.h"
#include "veil/ckks.h"

static const uint8_t dp_tag[8] = {'V', 'E', 'I', 'L', '-', 'D', 'P', '1'};

static void put_f64(uint8_t *p, double d)
{
    uint64_t v;
    memcpy(&v, &d, sizeof v);
    veil_ml_put64(p, v);
}

static double get_f64(const uint8_t *p)
{
    uint64_t v = veil_ml_get64(p);
    double d;
    memcpy(&d, &v, sizeof d);
    return d;
}

void veil_ml_dp_encode(uint8_t out[VEIL_DP_TAIL_BYTES], const veil_dp_release *dp)
{
    memcpy(out, dp_tag, sizeof dp_tag);
    put_f64(out + 8, dp->epsilon);
    put_f64(out + 16, dp->delta);
    put_f64(out + 24, dp->sensitivity);
    put_f64(out + 32, dp->sigma);
    put_f64(out + 40, dp->resolution);
    put_f64(out + 48, dp->rho);
}

int veil_ml_dp_tail(const uint8_t *meta, size_t meta_len, veil_dp_release *dp, veil_error *err)
{
    if (meta_len < VEIL_META_BYTES + VEIL_DP_TAIL_BYTES) return 0;
    const uint8_t *t = meta + meta_len - VEIL_DP_TAIL_BYTES;
    if (memcmp(t, dp_tag, sizeof dp_tag) != 0) return 0;
    veil_dp_release d = {get_f64(t + 8), get_f64(t + 16), get_f64(t + 24), get_f64(t + 32), get_f64(t + 40),
                         get_f64(t + 48)};
    double limit = 0;
    const int ok = veil_dp_rho_for(d.epsilon, d.delta, &limit, NULL) == VEIL_OK && isfinite(d.sensitivity) &&
                   d.sensitivity > 0 && isfinite(d.sigma) && d.sigma > 0 && isfinite(d.resolution) &&
                   d.resolution > 0 && d.resolution <= d.sigma && isfinite(d.rho) && d.rho > 0 &&
                   fabs(d.rho - d.sensitivity * d.sensitivity / (2 * d.sigma * d.sigma)) <= 1e-9 * d.rho &&
                   d.rho <= limit * (1 + 1e-9);
    if (!ok) {
        veil_fail(err, VEIL_ERR_FORMAT, "ciphertext set: its differential-privacy record is inconsistent");
        return -1;
    }
    *dp = d;
    return 1;
}

veil_status veil_plan_dp_sensitivity(const veil_plan *plan, double *sensitivity, veil_error *err)
{
    VEIL_REQUIRE(plan, err);
    VEIL_REQUIRE(sensitivity, err);
    if (plan->scheme != VEIL_ML_CKKS || !(plan->bound > 0) || !isfinite(plan->bound))
        return veil_fail(err, VEIL_ERR_UNSUPPORTED, "privacy: this plan bounds no outputs; give the sensitivity");
    *sensitivity = 2.0 * plan->bound * sqrt((double)plan->out_width);
    return VEIL_OK;
}

int veil_ciphertexts_dp_release(const veil_ciphertexts *cts, veil_dp_release *out)
{
    if (!cts || !cts->has_dp) return 0;
    if (out) *out = cts->dp;
    return 1;
}

/* The grid 2^-k: k = min(scale bits, the largest with sigma * 2^k <= 2^30); the integers' sigma^2 rational. */
static veil_status ckks_grid(double sigma, unsigned scale_bits, double *resolution, uint64_t *num, uint64_t *den,
                             veil_error *err)
{
    int k = (int)scale_bits;
    while (k > -64 && ldexp(sigma, k) > 0x1p30) k--;
    *resolution = ldexp(1.0, -k);
    const double sigma_int = ldexp(sigma, k);
    if (sigma_int < 1.0)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "privacy: sigma %g is below the scale's resolution 2^-%u", sigma,
                         scale_bits);
    return veil_dgauss_sigma2_rational(sigma_int, num, den, err);
}

/* Noise on every slot of each ciphertext: encoded at the ciphertext's scale and level, then added. */
static veil_status ckks_add_noise(veil_ciphertexts *cts, const veil_eval_keys *keys, uint64_t num, uint64_t den,
                                  double resolution, veil_prng *prng, veil_error *err)
{
    const size_t half = veil_params_degree(keys->params) / 2;
    veil_status st = VEIL_OK;
    veil_ckks_encoder *enc = NULL;
    veil_ckks_plaintext *pt = NULL;
    int64_t *z = malloc(half * sizeof *z);
    double *v = malloc(half * sizeof *v);
    if (!z || !v) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "privacy: noise of %zu slots", half);
    VEIL_CHECK(veil_ckks_encoder_new(&enc, cts->ctx, err));
    VEIL_CHECK(veil_ckks_plaintext_new(&pt, cts->ctx, err));
    for (size_t i = 0; i < cts->count; i++) {
        VEIL_CHECK(veil_sample_discrete_gaussian(z, half, num, den, prng, err));
        for (size_t j = 0; j < half; j++) v[j] = (double)z[j] * resolution; /* exact: |z| < 2^53, a power of 2 */
        VEIL_CHECK(veil_ckks_encode(enc, pt, v, NULL, half, veil_ckks_ciphertext_scale(cts->cts[i]),
                                    veil_ckks_ciphertext_level(cts->cts[i]), err));
        VEIL_CHECK(veil_ckks_add_plain(cts->ctx, cts->cts[i], cts->cts[i], pt, err));
    }
done:
    if (z) veil_wipe(z, half * sizeof *z);
    if (v) veil_wipe(v, half * sizeof *v);
    free(z);
    free(v);
    veil_ckks_plaintext_free(pt);
    veil_ckks_encoder_free(enc);
    return st;
}

veil_status veil_ciphertexts_add_dp_noise(veil_ciphertexts *cts, const veil_eval_keys *keys, double epsilon,
                                          double delta, double sensitivity, veil_prng *prng, veil_error *err)
{
    VEIL_REQUIRE(cts, err);
    VEIL_REQUIRE(keys, err);
    veil_status st = VEIL_OK;
    veil_prng *own = NULL;
    veil_dp_release d = {epsilon, delta, sensitivity, 0, 0, 0};
    uint64_t num = 0, den = 0;
    if (cts->meta.kind != VEIL_SET_OUTPUTS)
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "privacy: noise goes on a model's outputs, not on inputs or training sets");
    if (cts->has_dp) VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "privacy: this set is already a noisy release");
    if (cts->meta.scheme != VEIL_ML_CKKS)
        VEIL_FAIL(err, VEIL_ERR_UNSUPPORTED, "privacy: output noise on exact (BGV) results is not supported yet");
    if (cts->ctx != keys->ctx) VEIL_FAIL(err, VEIL_ERR_MISMATCH, "privacy: the outputs were not made with these keys");
    VEIL_CHECK(veil_dp_sigma_for(sensitivity, epsilon, delta, &d.sigma, err));
    VEIL_CHECK(ckks_grid(d.sigma, cts->meta.scale_bits, &d.resolution, &num, &den, err));
    d.sigma = sqrt((double)num / (double)den) * d.resolution; /* the sigma drawn: rounded up */
    VEIL_CHECK(veil_dp_gaussian_rho(sensitivity, d.sigma, &d.rho, err));
    {
        /* the noisy outputs must still fit the parameters: |value| below q_0 / (4 scale) */
        const double limit = (double)veil_params_q(keys->params, 0) / 4 / ldexp(1.0, (int)cts->meta.scale_bits);
        const double need = (keys->meta.bound > 0 ? keys->meta.bound : 0) + 40 * d.sigma;
        if (!(need < limit))
            VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "privacy: noise of sigma %g (epsilon %g, sensitivity %g) does not fit "
                      "the parameters, whose outputs must stay below %g: a larger epsilon, or keys for a larger range",
                      d.sigma, epsilon, sensitivity, limit);
    }
    if (!prng) VEIL_CHECK(veil_prng_new_os(&own, err));
    VEIL_CHECK(ckks_add_noise(cts, keys, num, den, d.resolution, prng ? prng : own, err));
    cts->has_dp = 1;
    cts->dp = d;
done:
    veil_prng_free(own);
    return st;
}
