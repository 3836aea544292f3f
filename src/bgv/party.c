/*
 * BGV multi-party decryption and public-key switching (veil/party.h): the scheme's checks, noise estimates and
 * exact decoding around the element-level protocol of src/rlwe/multiparty.c.
 */
#include <math.h>
#include "bgv/bgv_internal.h"

static double level_bits(const veil_context *ctx, size_t level)
{
    double bits = 0;
    for (size_t l = 0; l <= level; l++) bits += log2((double)ctx->ring->primes[l]);
    return bits;
}

/* log2 of the largest coefficient N parties' smudging (t E_i, each E_i of width 2^log2_sigma) may reach. */
static double smudged_bits(const veil_context *ctx, size_t parties, double log2_sigma)
{
    return log2((double)ctx->params.t) + log2_sigma + 2.6 + 0.5 * log2((double)parties);
}

/*
 * The smudging width: 2^bits times the ciphertext's error bound, by default its noise estimate over t (the
 * phase is m + t e); refused when the smudged phase would reach Q_l / 4.
 */
static veil_status smudging_for(const veil_party_group *group, const veil_bgv_ciphertext *ct,
                                const veil_party_smudging *smudging, double *log2_sigma, const char *op, veil_error *err)
{
    if (!group) return veil_fail(err, VEIL_ERR_NULL, "%s: the group is NULL", op);
    if (!ct) return veil_fail(err, VEIL_ERR_NULL, "%s: the ciphertext is NULL", op);
    const veil_context *ctx = group->ctx;
    veil_party_smudging s = veil_party_group_smudging(group, smudging);
    if (s.error_bits == 0 && ct->el.ctx == ctx)
        s.error_bits = fmax(0.0, ct->noise_bits - log2((double)ctx->params.t));
    veil_status st = veil_party_smudging_sigma_bits(&s, log2_sigma, err);
    if (st) return st;
    if (ct->el.ctx != ctx || ct->el.level >= ctx->q_count) return VEIL_OK; /* the element checks report it */
    const double q_bits = level_bits(ctx, ct->el.level), need = smudged_bits(ctx, group->parties, *log2_sigma);
    if (need > q_bits - 2)
        return veil_fail(err, VEIL_ERR_NOISE,
                         "%s: smudging noise of t 2^%.1f (error bound 2^%.1f) needs %.1f bits, the modulus at level %zu "
                         "has %.1f (with 2 bits of margin): decrypt at a higher level, or use larger parameters",
                         op, *log2_sigma, s.error_bits, need, ct->el.level, q_bits);
    return VEIL_OK;
}

veil_status veil_bgv_decrypt_share(veil_party_share **out, const veil_party_group *group, size_t party,
                                  const veil_bgv_ciphertext *ct, const veil_secret_key *sk,
                                  const veil_party_smudging *smudging, veil_prng *prng, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    double log2_sigma = 0;
    veil_status st = smudging_for(group, ct, smudging, &log2_sigma, "decryption share", err);
    if (st) return st;
    return veil_party_element_share(out, group, party, &ct->el, sk, NULL, log2_sigma, prng, err);
}

veil_status veil_bgv_decrypt_joint(veil_bgv_plaintext *out, const veil_party_group *group,
                                  const veil_bgv_ciphertext *ct, const veil_party_share *const *shares, size_t count,
                                  veil_error *err)
{
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(group, err);
    VEIL_REQUIRE(ct, err);
    veil_poly *phase = NULL;
    veil_status st = veil_party_combine(&phase, NULL, group, &ct->el, NULL, shares, count, err);
    if (st) return st;
    /* the phase m + t (e + sum_i E_i): exact while it stays below Q_l / 4 (checked as it is decoded) */
    st = veil_bgv_decode_phase(group->ctx, out, phase, ct, err);
    veil_poly_free(phase);
    return st;
}

veil_status veil_bgv_switch_share(veil_party_share **out, const veil_party_group *group, size_t party,
                                 const veil_bgv_ciphertext *ct, const veil_secret_key *sk, const veil_public_key *to,
                                 const veil_party_smudging *smudging, veil_prng *prng, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(to, err);
    double log2_sigma = 0;
    veil_status st = smudging_for(group, ct, smudging, &log2_sigma, "key-switching share", err);
    if (st) return st;
    return veil_party_element_share(out, group, party, &ct->el, sk, to, log2_sigma, prng, err);
}

veil_status veil_bgv_switch_joint(veil_bgv_ciphertext *out, const veil_party_group *group,
                                 const veil_bgv_ciphertext *ct, const veil_public_key *to,
                                 const veil_party_share *const *shares, size_t count, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(group, err);
    VEIL_REQUIRE(ct, err);
    VEIL_REQUIRE(to, err);
    veil_status st = veil_rlwe_check_output(group->ctx, &out->el, "joint key switching", err);
    if (st) return st;
    veil_poly *c0 = NULL, *c1 = NULL;
    st = veil_party_combine(&c0, &c1, group, &ct->el, to, shares, count, err);
    if (st) return st;
    double sigma = 0;
    for (size_t k = 0; k < count; k++) sigma = fmax(sigma, shares[k]->log2_sigma);
    /* the new noise: the old, plus the smudging and the receiver key's u e + e1 s' (a few bits over t) */
    const double added = smudged_bits(group->ctx, count, sigma);
    const double noise = fmax(ct->noise_bits, added) + 1.0;
    const size_t level = ct->el.level;
    const uint64_t factor = ct->factor;
    veil_rlwe_element_release(&out->el);
    out->el.c[0] = c0;
    out->el.c[1] = c1;
    out->el.size = 2;
    out->el.level = level;
    out->factor = factor;
    out->noise_bits = noise;
    return VEIL_OK;
}

/* ---- t-out-of-N (src/rlwe/threshold.c) ---------------------------------------------------------------------- */

veil_status veil_bgv_threshold_decrypt_share(veil_party_share **out, const veil_party_group *group,
                                            const veil_party_threshold_key *key, const size_t *set, size_t set_count,
                                            const veil_bgv_ciphertext *ct, const veil_party_smudging *smudging,
                                            veil_prng *prng, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    double log2_sigma = 0;
    veil_status st = smudging_for(group, ct, smudging, &log2_sigma, "threshold decryption share", err);
    if (st) return st;
    return veil_party_threshold_element_share(out, group, key, set, set_count, &ct->el, NULL, log2_sigma, prng, err);
}

veil_status veil_bgv_threshold_switch_share(veil_party_share **out, const veil_party_group *group,
                                           const veil_party_threshold_key *key, const size_t *set, size_t set_count,
                                           const veil_bgv_ciphertext *ct, const veil_public_key *to,
                                           const veil_party_smudging *smudging, veil_prng *prng, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(to, err);
    double log2_sigma = 0;
    veil_status st = smudging_for(group, ct, smudging, &log2_sigma, "threshold key-switching share", err);
    if (st) return st;
    return veil_party_threshold_element_share(out, group, key, set, set_count, &ct->el, to, log2_sigma, prng, err);
}
