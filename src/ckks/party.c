/*
 * CKKS multi-party decryption and public-key switching (veil/party.h): the scheme's checks and metadata
 * around the element-level protocol of src/rlwe/multiparty.c.
 */
#include <math.h>
#include "ckks/ckks_internal.h"

/* log2 of Q_level. */
static double level_bits(const veil_context *ctx, size_t level)
{
    double bits = 0;
    for (size_t l = 0; l <= level; l++) bits += log2((double)ctx->ring->primes[l]);
    return bits;
}

/*
 * The smudging noise's width, refused when the parties' noise could reach Q_l / 4 (the values themselves must stay
 * below Q_l / 4, which their scale's plan ensures). Its effect on a decoded value, about 6 sigma sqrt(N_parties
 * N / 2) / scale at most, is the precision given up for hiding (docs/multiparty.md).
 */
static veil_status smudging_for(const veil_party_group *group, const veil_ckks_ciphertext *ct,
                                const veil_party_smudging *smudging, double *log2_sigma, const char *op, veil_error *err)
{
    if (!group) return veil_fail(err, VEIL_ERR_NULL, "%s: the group is NULL", op);
    if (!ct) return veil_fail(err, VEIL_ERR_NULL, "%s: the ciphertext is NULL", op);
    const veil_party_smudging s = veil_party_group_smudging(group, smudging);
    veil_status st = veil_party_smudging_sigma_bits(&s, log2_sigma, err);
    if (st) return st;
    const veil_context *ctx = group->ctx;
    const double q_bits = ct->el.ctx == ctx && ct->el.level < ctx->q_count ? level_bits(ctx, ct->el.level) : 0;
    /* N parties' noise: at most about 6 sqrt(N) sigma in a coefficient, which must stay below Q_l / 4 */
    const double noise_bits = *log2_sigma + 2.6 + 0.5 * log2((double)group->parties);
    if (ct->el.ctx == ctx && noise_bits > q_bits - 2)
        return veil_fail(err, VEIL_ERR_ARGUMENT,
                         "%s: smudging noise of 2^%.1f does not fit the %.1f-bit modulus at level %zu: decrypt at a "
                         "higher level, or ask for fewer smudging bits", op, *log2_sigma, q_bits, ct->el.level);
    return VEIL_OK;
}

veil_status veil_ckks_decrypt_share(veil_party_share **out, const veil_party_group *group, size_t party,
                                   const veil_ckks_ciphertext *ct, const veil_secret_key *sk,
                                   const veil_party_smudging *smudging, veil_prng *prng, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    double log2_sigma = 0;
    veil_status st = smudging_for(group, ct, smudging, &log2_sigma, "decryption share", err);
    if (st) return st;
    return veil_party_element_share(out, group, party, &ct->el, sk, NULL, log2_sigma, prng, err);
}

veil_status veil_ckks_decrypt_joint(veil_ckks_plaintext *out, const veil_party_group *group,
                                   const veil_ckks_ciphertext *ct, const veil_party_share *const *shares, size_t count,
                                   veil_error *err)
{
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(group, err);
    VEIL_REQUIRE(ct, err);
    if (out->ctx != group->ctx)
        return veil_fail(err, VEIL_ERR_MISMATCH, "joint decryption: the plaintext belongs to another context");
    veil_poly *phase = NULL;
    veil_status st = veil_party_combine(&phase, NULL, group, &ct->el, NULL, shares, count, err);
    if (st) return st;
    /* c_0 + sum_i (s_i c_1 + e_i) = c_0 + c_1 s + noise: the plaintext, smudged */
    veil_poly_free(out->m);
    out->m = phase;
    veil_poly_free(out->mqp);
    out->mqp = NULL;
    out->level = ct->el.level;
    out->scale = ct->scale;
    return VEIL_OK;
}

veil_status veil_ckks_switch_share(veil_party_share **out, const veil_party_group *group, size_t party,
                                  const veil_ckks_ciphertext *ct, const veil_secret_key *sk, const veil_public_key *to,
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

veil_status veil_ckks_switch_joint(veil_ckks_ciphertext *out, const veil_party_group *group,
                                  const veil_ckks_ciphertext *ct, const veil_public_key *to,
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
    const size_t level = ct->el.level;
    const double scale = ct->scale;
    veil_poly *pair[2] = {c0, c1};
    veil_ckks_adopt_pair(out, pair, level);
    out->scale = scale;
    return VEIL_OK;
}

/* ---- t-out-of-N (src/rlwe/threshold.c) ---------------------------------------------------------------------- */

veil_status veil_ckks_threshold_decrypt_share(veil_party_share **out, const veil_party_group *group,
                                            const veil_party_threshold_key *key, const size_t *set, size_t set_count,
                                            const veil_ckks_ciphertext *ct, const veil_party_smudging *smudging,
                                            veil_prng *prng, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    double log2_sigma = 0;
    veil_status st = smudging_for(group, ct, smudging, &log2_sigma, "threshold decryption share", err);
    if (st) return st;
    return veil_party_threshold_element_share(out, group, key, set, set_count, &ct->el, NULL, log2_sigma, prng, err);
}

veil_status veil_ckks_threshold_switch_share(veil_party_share **out, const veil_party_group *group,
                                           const veil_party_threshold_key *key, const size_t *set, size_t set_count,
                                           const veil_ckks_ciphertext *ct, const veil_public_key *to,
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
