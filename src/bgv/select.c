/* Automatic BGV parameter selection (see veil_bgv_params_select in veil/bgv.h). */
#include <math.h>
#include "bgv/bgv_internal.h"

veil_status veil_bgv_params_select(veil_params **out, const veil_bgv_request *req, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(req, err);
    if (req->depth < 1 || req->depth > 30)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "bgv parameter selection: depth %u is not in [1, 30]", req->depth);
    if (req->t < 2 || req->t >= ((uint64_t)1 << 40))
        return veil_fail(err, VEIL_ERR_ARGUMENT, "bgv parameter selection: t = %llu is not in [2, 2^40)",
                         (unsigned long long)req->t);
    if (req->linear_bits > 40)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "bgv parameter selection: %u bits of linear growth (at most 40)",
                         req->linear_bits);
    if (req->security >= VEIL_SECURITY_NONE)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "bgv parameter selection: a security level is required");
    veil_status st = VEIL_OK;
    for (size_t n = 4096; n <= 131072; n *= 2) {
        if (n < req->min_n) continue;
        if (req->batching && (req->t % (2 * (uint64_t)n) != 1 || !veil_is_prime(req->t))) continue;
        /* the floor a modulus switch leaves, t (1/2 + 6 sqrt(h / 12)), and what a product adds to it */
        const double floor_bits = log2((double)req->t) + log2(0.5 + 6.0 * sqrt(2.0 * (double)n / 3.0 / 12.0));
        const double product_bits = 2 * floor_bits + 0.5 * log2((double)n);
        unsigned q_bits[VEIL_PARAMS_MAX_PRIMES];
        /* q_0 keeps 12 bits above the floor; q_1 with q_0 holds a product; every other prime brings a
         * product's noise back to the floor */
        /* a linear layer before each product multiplies both operands (2 L), one after the last adds L */
        const double lin = (double)req->linear_bits;
        const unsigned first = (unsigned)ceil(floor_bits + 12 + lin),
                       mid = (unsigned)ceil(product_bits - floor_bits + 4 + 2 * lin);
        const unsigned second = (unsigned)ceil(product_bits + 3 * lin + 4) > first
                                    ? (unsigned)ceil(product_bits + 3 * lin + 4) - first
                                    : 0;
        /* a level whose growth exceeds one prime (large t, linear layers) takes two or more smaller ones */
        const unsigned per_level = (mid + 57) / 58, level_bits = (mid + per_level - 1) / per_level;
        const size_t q_count = (size_t)req->depth * per_level + 1;
        if (first > 60 || q_count >= VEIL_PARAMS_MAX_PRIMES) break;
        q_bits[0] = first < 30 ? 30 : first;
        for (size_t i = 1; i < q_count; i++) q_bits[i] = level_bits < 30 ? 30 : level_bits;
        if (q_bits[1] < second) q_bits[1] = second > 60 ? 60 : second;
        unsigned p_bits = 0, total = 0;
        for (size_t i = 0; i < q_count; i++) {
            total += q_bits[i];
            if (q_bits[i] > p_bits) p_bits = q_bits[i];
        }
        if (total + p_bits > veil_security_max_log_qp(n, req->security)) continue;
        veil_params_spec spec = {n, q_count, NULL, q_bits, 1, NULL, &p_bits, q_count, VEIL_SECRET_TERNARY, 0,
                                 req->security, req->t};
        veil_error attempt = {VEIL_OK, ""};
        st = veil_params_new(out, &spec, &attempt);
        if (st == VEIL_ERR_NOT_FOUND) continue;
        if (st != VEIL_OK) VEIL_FAIL(err, st, "%s", attempt.detail);
        goto done;
    }
    VEIL_FAIL(err, VEIL_ERR_NOT_FOUND,
              "bgv parameter selection: no N up to 2^17 holds depth %u with t = %llu%s at the requested security",
              req->depth, (unsigned long long)req->t, req->batching ? " (batching)" : "");
done:
    return st;
}
