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
#include "veil/bgv.h"

static const uint8_t dp_tag[8] = {'V', 'E', 'I', 'L', '-', 'D', 'P', '1'};
/* a set carrying distributed noise shares: share_sigma in place of sigma, and (parties, shares) in place of rho */
static const uint8_t share_tag[8] = {'V', 'E', 'I', 'L', '-', 'D', 'P', 'S'};
#define DP_MAX_SHARES 64u /* the largest group */
/* d in Kairouz-Liu-Steinke's tau d: more noisy coordinates than any set holds (2^40) */
#define DP_SUM_COORDINATES 0x1p40

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
    if (dp->parties) { /* noise shares: the sigma of one share, and the counts */
        memcpy(out, share_tag, sizeof share_tag);
        put_f64(out + 8, dp->epsilon);
        put_f64(out + 16, dp->delta);
        put_f64(out + 24, dp->sensitivity);
        put_f64(out + 32, dp->sigma / sqrt((double)dp->shares));
        put_f64(out + 40, dp->resolution);
        veil_ml_put64(out + 48, (uint64_t)dp->parties | (uint64_t)dp->shares << 32);
        return;
    }
    memcpy(out, dp_tag, sizeof dp_tag);
    put_f64(out + 8, dp->epsilon);
    put_f64(out + 16, dp->delta);
    put_f64(out + 24, dp->sensitivity);
    put_f64(out + 32, dp->sigma);
    put_f64(out + 40, dp->resolution);
    put_f64(out + 48, dp->rho);
}

/*
 * Kairouz, Liu, Steinke (ICML 2021, Section 3): n shares of N_Z(0, s^2) (s >= 1/2 grid units) summed, an integer
 * shift of L2 norm D: D_alpha <= alpha D^2 / (2 n s^2) + tau d for every alpha >= 1, tau = 10 sum_{k=1}^{n-1}
 * exp(-2 pi^2 s^2 k / (k + 1)); as alpha >= 1, tau d <= alpha tau d, so the sum is (D^2 / (2 n s^2) + tau d)-zCDP.
 * In grid units D / resolution and s = share_sigma / resolution: the ratio D^2 / s^2 is the same in output units.
 */
veil_status veil_dp_sum_rho(double sensitivity, double share_sigma, double resolution, uint32_t parties, double *rho,
                            veil_error *err)
{
    VEIL_REQUIRE(rho, err);
    if (!(sensitivity > 0) || !isfinite(sensitivity))
        return veil_fail(err, VEIL_ERR_ARGUMENT, "privacy: sensitivity %g is not a positive number", sensitivity);
    if (!(resolution > 0) || !isfinite(resolution) || !(share_sigma >= resolution / 2) || !isfinite(share_sigma))
        return veil_fail(err, VEIL_ERR_ARGUMENT, "privacy: a noise share of sigma %g on a grid of %g (at least half "
                         "a step is needed)", share_sigma, resolution);
    if (parties < 1 || parties > DP_MAX_SHARES)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "privacy: %u parties (1 to %u)", parties, DP_MAX_SHARES);
    const double s = share_sigma / resolution, pi = 3.14159265358979323846;
    double tau = 0;
    for (uint32_t k = 1; k < parties; k++) tau += 10.0 * exp(-2.0 * pi * pi * s * s * k / (k + 1.0));
    *rho = sensitivity * sensitivity / (2.0 * parties * share_sigma * share_sigma) + tau * DP_SUM_COORDINATES;
    return VEIL_OK;
}

int veil_dp_release_complete(const veil_dp_release *r)
{
    return r && (r->parties == 0 || r->shares >= r->parties);
}

/* A set's record of noise shares: validated, rho that of `parties` shares, sigma that of the shares it carries. */
static int share_tail(const uint8_t *t, veil_dp_release *dp, veil_error *err)
{
    const uint64_t counts = veil_ml_get64(t + 48);
    veil_dp_release d = {get_f64(t + 8), get_f64(t + 16), get_f64(t + 24), get_f64(t + 32), get_f64(t + 40), 0,
                         (uint32_t)counts, (uint32_t)(counts >> 32)};
    const double share_sigma = d.sigma;
    double limit = 0;
    int ok = veil_dp_rho_for(d.epsilon, d.delta, &limit, NULL) == VEIL_OK && d.parties >= 1 &&
             d.parties <= DP_MAX_SHARES && d.shares >= 1 && d.shares <= DP_MAX_SHARES && isfinite(share_sigma) &&
             isfinite(d.resolution) && d.resolution > 0 && share_sigma >= d.resolution &&
             veil_dp_sum_rho(d.sensitivity, share_sigma, d.resolution, d.parties, &d.rho, NULL) == VEIL_OK &&
             d.rho <= limit * (1 + 1e-9);
    if (!ok) {
        veil_fail(err, VEIL_ERR_FORMAT, "ciphertext set: its record of differential-privacy noise shares is "
                  "inconsistent");
        return -1;
    }
    d.sigma = share_sigma * sqrt((double)d.shares); /* the noise the set carries */
    *dp = d;
    return 1;
}

int veil_ml_dp_tail(const uint8_t *meta, size_t meta_len, veil_dp_release *dp, veil_error *err)
{
    if (meta_len < VEIL_META_BYTES + VEIL_DP_TAIL_BYTES) return 0;
    const uint8_t *t = meta + meta_len - VEIL_DP_TAIL_BYTES;
    if (memcmp(t, share_tag, sizeof share_tag) == 0) return share_tail(t, dp, err);
    if (memcmp(t, dp_tag, sizeof dp_tag) != 0) return 0;
    veil_dp_release d = {get_f64(t + 8), get_f64(t + 16), get_f64(t + 24), get_f64(t + 32), get_f64(t + 40),
                         get_f64(t + 48), 0, 0};
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
    if (!(plan->bound > 0) || !isfinite(plan->bound) || plan->packing == VEIL_PACKING_TRAINING)
        return veil_fail(err, VEIL_ERR_UNSUPPORTED, "privacy: this plan bounds no outputs; give the sensitivity");
    /* exact inference bounds the integers: the outputs are those times the output scale */
    const double unit = plan->scheme == VEIL_ML_BGV ? fabs(plan->bgv.out_scale) : 1.0;
    *sensitivity = 2.0 * plan->bound * unit * sqrt((double)plan->out_width);
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
static veil_status ckks_add_noise_ctx(veil_ciphertexts *cts, uint64_t num, uint64_t den, double resolution,
                                      veil_prng *prng, veil_error *err)
{
    const size_t half = veil_params_degree(veil_context_params(cts->ctx)) / 2;
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

/*
 * Exact inference: the outputs are integers (times the output scale), so the noise is grid * N_Z(0, s^2)
 * on the integers themselves (bgv_grid). The same integer goes into every plaintext modulus (its residue mod t_m), so that the CRT
 * composition of the noisy residues is the noisy integer.
 */
static veil_status bgv_add_noise(veil_ciphertexts *cts, const veil_eval_keys *keys, uint64_t num, uint64_t den,
                                 uint64_t grid, veil_prng *prng, veil_error *err)
{
    const size_t k = cts->meta.bgv.crt_count, per = cts->count / k, slots = (size_t)cts->meta.slots;
    veil_status st = VEIL_OK;
    veil_bgv_encoder *enc[VEIL_CRT_MAX] = {NULL};
    veil_bgv_plaintext *pt[VEIL_CRT_MAX] = {NULL};
    int64_t *z = malloc(slots * sizeof *z);
    uint64_t *v = malloc(slots * sizeof *v);
    if (!z || !v) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "privacy: noise of %zu slots", slots);
    for (size_t m = 0; m < k; m++) {
        const veil_context *ctx = m ? keys->bgv.crt[m].ctx : keys->ctx;
        if (cts->bctx[m] != ctx) VEIL_FAIL(err, VEIL_ERR_MISMATCH, "privacy: the outputs were not made with these keys");
        VEIL_CHECK(veil_bgv_encoder_new(&enc[m], ctx, err));
        VEIL_CHECK(veil_bgv_plaintext_new(&pt[m], ctx, err));
    }
    for (size_t i = 0; i < per; i++) {
        VEIL_CHECK(veil_sample_discrete_gaussian(z, slots, num, den, prng, err));
        for (size_t m = 0; m < k; m++) {
            const uint64_t t = veil_params_plain_modulus(veil_context_params(cts->bctx[m]));
            for (size_t j = 0; j < slots; j++) { /* (z * grid) mod t, z * grid < 2^61 */
                const int64_t r = (z[j] * (int64_t)grid) % (int64_t)t;
                v[j] = (uint64_t)(r < 0 ? r + (int64_t)t : r);
            }
            VEIL_CHECK(veil_bgv_encode(enc[m], pt[m], v, slots, err));
            VEIL_CHECK(veil_bgv_add_plain(cts->bctx[m], cts->bcts[m * per + i], cts->bcts[m * per + i], pt[m], err));
        }
    }
done:
    if (z) veil_wipe(z, slots * sizeof *z);
    if (v) veil_wipe(v, slots * sizeof *v);
    free(z);
    free(v);
    for (size_t m = 0; m < VEIL_CRT_MAX; m++) {
        veil_bgv_plaintext_free(pt[m]);
        veil_bgv_encoder_free(enc[m]);
    }
    return st;
}

/*
 * Exact inference: sigma in integers (the output scale's units, at least 1). Up to 2^30 the noise is the
 * discrete Gaussian on the integers (grid 1, the exact guarantee); above, on the multiples of g = 2^j, the
 * smallest with sigma_int / g <= 2^30 (the guarantee then holds for the integers rounded to multiples of
 * g, as with CKKS's grid). *grid gets g; the bound and the noise's tail must stay below half the moduli's
 * product.
 */
static veil_status bgv_grid(veil_dp_release *d, const veil_ciphertexts *cts, const veil_eval_keys *keys,
                            uint64_t *num, uint64_t *den, uint64_t *grid, veil_error *err)
{
    veil_status st = VEIL_OK;
    const double unit = fabs(cts->meta.bgv.out_scale);
    double sigma_int = d->sigma / unit;
    if (sigma_int < 1) sigma_int = 1; /* more noise than asked: the rho charged is that of this sigma */
    uint64_t g = 1;
    while (sigma_int / (double)g > 0x1p30 && g < ((uint64_t)1 << 24)) g <<= 1;
    if (sigma_int / (double)g > 0x1p30)
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "privacy: noise of sigma %g is 2^%.0f output units, beyond the 2^54 the "
                  "exact noise takes: a larger epsilon or a smaller sensitivity", d->sigma, log2(sigma_int));
    VEIL_CHECK(veil_dgauss_sigma2_rational(sigma_int / (double)g, num, den, err));
    *grid = g;
    d->resolution = unit * (double)g;
    d->sigma = sqrt((double)*num / (double)*den) * d->resolution;
    {
        double half_t = 0.5;
        for (size_t m = 0; m < cts->meta.bgv.crt_count; m++)
            half_t *= (double)veil_params_plain_modulus(veil_context_params(cts->bctx[m]));
        const double need = keys->meta.bound + 40 * (d->sigma / unit);
        if (!(need < half_t))
            VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "privacy: noise of sigma %g does not fit the plaintext moduli (the "
                      "outputs and the noise must stay below 2^%.1f): a larger epsilon or a smaller sensitivity",
                      d->sigma, log2(half_t));
    }
done:
    return st;
}

/* The CKKS outputs' scale: the plan's, or 2^s lower where it lowered the last layer's (veil_ckks_output_shift);
 * the largest of the ciphertexts' own. */
static double outputs_scale(const veil_ciphertexts *cts)
{
    double scale = cts->count ? 0 : ldexp(1.0, (int)cts->meta.scale_bits);
    for (size_t i = 0; i < cts->count; i++) scale = fmax(scale, veil_ckks_ciphertext_scale(cts->cts[i]));
    return scale;
}

veil_status veil_ciphertexts_add_dp_noise(veil_ciphertexts *cts, const veil_eval_keys *keys, double epsilon,
                                          double delta, double sensitivity, veil_prng *prng, veil_error *err)
{
    VEIL_REQUIRE(cts, err);
    VEIL_REQUIRE(keys, err);
    veil_status st = VEIL_OK;
    veil_prng *own = NULL;
    veil_dp_release d = {epsilon, delta, sensitivity, 0, 0, 0, 0, 0};
    uint64_t num = 0, den = 0, grid = 1;
    if (cts->meta.kind != VEIL_SET_OUTPUTS)
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "privacy: noise goes on a model's outputs, not on inputs or training sets");
    if (cts->has_dp) VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "privacy: this set is already a noisy release");
    const int exact = cts->meta.scheme == VEIL_ML_BGV;
    if (cts->meta.scheme != keys->meta.scheme || (!exact && cts->ctx != keys->ctx))
        VEIL_FAIL(err, VEIL_ERR_MISMATCH, "privacy: the outputs were not made with these keys");
    VEIL_CHECK(veil_dp_sigma_for(sensitivity, epsilon, delta, &d.sigma, err));
    if (exact) {
        VEIL_CHECK(bgv_grid(&d, cts, keys, &num, &den, &grid, err));
    } else {
        VEIL_CHECK(ckks_grid(d.sigma, cts->meta.scale_bits, &d.resolution, &num, &den, err));
        d.sigma = sqrt((double)num / (double)den) * d.resolution; /* the sigma drawn: rounded up */
    }
    VEIL_CHECK(veil_dp_gaussian_rho(sensitivity, d.sigma, &d.rho, err));
    if (!exact) {
        /* the noisy outputs must still fit the parameters: |value| below q_0 / (4 scale) */
        const double limit = (double)veil_params_q(keys->params, 0) / 4 / outputs_scale(cts);
        const double need = (keys->meta.bound > 0 ? keys->meta.bound : 0) + 40 * d.sigma;
        if (!(need < limit))
            VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "privacy: noise of sigma %g (epsilon %g, sensitivity %g) does not fit "
                      "the parameters, whose outputs must stay below %g: a larger epsilon, or keys for a larger range",
                      d.sigma, epsilon, sensitivity, limit);
    }
    if (!prng) VEIL_CHECK(veil_prng_new_os(&own, err));
    if (exact) VEIL_CHECK(bgv_add_noise(cts, keys, num, den, grid, prng ? prng : own, err));
    else VEIL_CHECK(ckks_add_noise_ctx(cts, num, den, d.resolution, prng ? prng : own, err));
    cts->has_dp = 1;
    cts->dp = d;
done:
    veil_prng_free(own);
    return st;
}

veil_status veil_ciphertexts_add_dp_share(veil_ciphertexts *cts, double epsilon, double delta, double sensitivity,
                                          uint32_t parties, veil_prng *prng, veil_error *err)
{
    VEIL_REQUIRE(cts, err);
    veil_status st = VEIL_OK;
    veil_prng *own = NULL;
    veil_dp_release d = {epsilon, delta, sensitivity, 0, 0, 0, parties, 1};
    uint64_t num = 0, den = 0;
    double sigma = 0, limit = 0;
    if (cts->meta.kind != VEIL_SET_OUTPUTS)
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "privacy: noise shares go on a model's outputs (a party's update), not on "
                  "inputs or training sets");
    if (cts->meta.scheme != VEIL_ML_CKKS || cts->bcts)
        VEIL_FAIL(err, VEIL_ERR_UNSUPPORTED, "privacy: noise shares go on CKKS sets (joint keys are CKKS only)");
    if (cts->has_dp) VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "privacy: this set already carries noise");
    if (parties < 1 || parties > DP_MAX_SHARES)
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "privacy: %u parties share the noise (1 to %u)", parties, DP_MAX_SHARES);
    VEIL_CHECK(veil_dp_sigma_for(sensitivity, epsilon, delta, &sigma, err));
    VEIL_CHECK(veil_dp_rho_for(epsilon, delta, &limit, err));
    /* each share N_Z(0, sigma^2 / n) on the grid; the share's sigma rounded up, so n shares hold at least sigma */
    VEIL_CHECK(ckks_grid(sigma / sqrt((double)parties), cts->meta.scale_bits, &d.resolution, &num, &den, err));
    d.sigma = sqrt((double)num / (double)den) * d.resolution; /* one share's, drawn */
    VEIL_CHECK(veil_dp_sum_rho(sensitivity, d.sigma, d.resolution, parties, &d.rho, err));
    if (!(d.rho <= limit * (1 + 1e-9)))
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "privacy: %u shares of sigma %g on the grid %g cost rho %g, above the %g of "
                  "epsilon %g (the sum of discrete Gaussians' excess): a larger sensitivity grid", parties, d.sigma,
                  d.resolution, d.rho, limit, epsilon);
    {
        /* the outputs' bound and the full noise's tail (as a single evaluator's) must fit: q_0 / (4 scale) */
        const double room = (double)veil_params_q(veil_context_params(cts->ctx), 0) / 4 / outputs_scale(cts);
        const double need = (cts->meta.bound > 0 ? cts->meta.bound : 0) + 40 * d.sigma * sqrt((double)parties);
        if (!(need < room))
            VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "privacy: a noise share of sigma %g (epsilon %g, sensitivity %g) does "
                      "not fit the parameters, whose values must stay below %g: a larger epsilon", d.sigma, epsilon,
                      sensitivity, room);
    }
    if (!prng) VEIL_CHECK(veil_prng_new_os(&own, err));
    VEIL_CHECK(ckks_add_noise_ctx(cts, num, den, d.resolution, prng ? prng : own, err));
    cts->has_dp = 1;
    cts->dp = d; /* sigma: the one share it carries */
done:
    veil_prng_free(own);
    return st;
}
