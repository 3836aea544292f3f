/*
 * The sum of encrypted sets (veil/ml.h, veil_ciphertexts_add): what an aggregating server does with the
 * parties' encrypted updates under one joint key (docs/multiparty.md, "The server as aggregator"). Additions
 * only: no key, no level used, the error of the sum is the sum of the errors.
 */
#include <string.h>
#include "ml/ml_plan.h"

veil_status veil_ciphertexts_add(veil_ciphertexts *acc, const veil_ciphertexts *in, veil_error *err)
{
    VEIL_REQUIRE(acc, err);
    VEIL_REQUIRE(in, err);
    veil_status st = VEIL_OK;
    if (acc->bcts || in->bcts || acc->meta.scheme != VEIL_ML_CKKS || in->meta.scheme != VEIL_ML_CKKS)
        VEIL_FAIL(err, VEIL_ERR_UNSUPPORTED, "only CKKS sets are summed (an exact BGV set is not)");
    if (acc->has_dp || in->has_dp)
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "a differentially private release is not summed (its noise would add up)");
    if (acc->ctx != in->ctx || acc->count != in->count || acc->meta.rows != in->meta.rows ||
        acc->meta.width != in->meta.width || acc->meta.kind != in->meta.kind ||
        acc->meta.packing != in->meta.packing || acc->meta.scale_bits != in->meta.scale_bits ||
        memcmp(acc->meta.key_id, in->meta.key_id, sizeof acc->meta.key_id) != 0)
        VEIL_FAIL(err, VEIL_ERR_MISMATCH, "the sets differ (keys, rows, width or packing): they cannot be summed");
    for (size_t i = 0; i < acc->count; i++)
        VEIL_CHECK(veil_ckks_add(acc->ctx, acc->cts[i], acc->cts[i], in->cts[i], err));
    acc->meta.bound += in->meta.bound; /* the sum's values are bounded by the sum of the bounds */
done:
    return st;
}
