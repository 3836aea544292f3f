/*
 * The sum of encrypted sets (veil/ml.h, veil_ciphertexts_add): what an aggregating server does with the
 * parties' encrypted updates under one joint key (docs/multiparty.md, "The server as aggregator"). Additions
 * only: no key, no level used, the error of the sum is the sum of the errors.
 */
#include <math.h>
#include <string.h>
#include "ml/ml_plan.h"

/* Two sets' noise shares sum when they are shares of the same noise (same release, grid and parties). */
static veil_status same_shares(const veil_dp_release *a, const veil_dp_release *b, veil_error *err)
{
    const double sa = a->sigma / sqrt((double)a->shares), sb = b->sigma / sqrt((double)b->shares);
    if (a->epsilon != b->epsilon || a->delta != b->delta || a->sensitivity != b->sensitivity ||
        a->resolution != b->resolution || a->parties != b->parties || fabs(sa - sb) > 1e-12 * sa)
        return veil_fail(err, VEIL_ERR_MISMATCH, "the sets' differential-privacy noise shares differ (epsilon %g and "
                         "%g, delta %g and %g, sensitivity %g and %g, parties %u and %u): every party must add a share "
                         "of the same noise", a->epsilon, b->epsilon, a->delta, b->delta, a->sensitivity,
                         b->sensitivity, a->parties, b->parties);
    if (a->shares + b->shares > 64)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "more than 64 noise shares summed");
    return VEIL_OK;
}

veil_status veil_ciphertexts_add(veil_ciphertexts *acc, const veil_ciphertexts *in, veil_error *err)
{
    VEIL_REQUIRE(acc, err);
    VEIL_REQUIRE(in, err);
    veil_status st = VEIL_OK;
    if (acc->bcts || in->bcts || acc->meta.scheme != VEIL_ML_CKKS || in->meta.scheme != VEIL_ML_CKKS)
        VEIL_FAIL(err, VEIL_ERR_UNSUPPORTED, "only CKKS sets are summed (an exact BGV set is not)");
    /* distributed noise (veil_ciphertexts_add_dp_share): sets with shares of the same noise sum, counting them */
    const int shares = acc->has_dp && in->has_dp && acc->dp.parties && in->dp.parties;
    if ((acc->has_dp || in->has_dp) && !shares) {
        if ((acc->has_dp && acc->dp.parties) || (in->has_dp && in->dp.parties))
            VEIL_FAIL(err, VEIL_ERR_MISMATCH, "one set carries a differential-privacy noise share and the other none: "
                      "every party's update must carry its share");
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "a differentially private release is not summed (its noise would add up)");
    }
    if (shares) VEIL_CHECK(same_shares(&acc->dp, &in->dp, err));
    if (acc->ctx != in->ctx || acc->count != in->count || acc->meta.rows != in->meta.rows ||
        acc->meta.width != in->meta.width || acc->meta.kind != in->meta.kind ||
        acc->meta.packing != in->meta.packing || acc->meta.scale_bits != in->meta.scale_bits ||
        memcmp(acc->meta.key_id, in->meta.key_id, sizeof acc->meta.key_id) != 0)
        VEIL_FAIL(err, VEIL_ERR_MISMATCH, "the sets differ (keys, rows, width or packing): they cannot be summed");
    for (size_t i = 0; i < acc->count; i++)
        VEIL_CHECK(veil_ckks_add(acc->ctx, acc->cts[i], acc->cts[i], in->cts[i], err));
    acc->meta.bound += in->meta.bound; /* the sum's values are bounded by the sum of the bounds */
    if (shares) { /* the sum carries both sets' shares: sigma that of all of them, rho unchanged (parties') */
        const double one = acc->dp.sigma / sqrt((double)acc->dp.shares);
        acc->dp.shares += in->dp.shares;
        acc->dp.sigma = one * sqrt((double)acc->dp.shares);
    }
done:
    return st;
}
