/*
 * Differential privacy: the accountant and the per-key-set budget (docs/privacy.md).
 *
 * Releases are Gaussian mechanisms (the discrete Gaussian of src/ring/dgauss.c): a query of L2 sensitivity
 * D answered with noise N_Z(0, sigma^2) is rho-zCDP with rho = D^2 / (2 sigma^2) (Canonne-Kamath-Steinke
 * 2020, Theorem 14: the same rho as the continuous Gaussian). zCDP composes by adding the rhos
 * (Bun-Steinke 2016, Lemma 2.3), and rho-zCDP is (epsilon, delta)-DP for
 *   epsilon = inf_{alpha > 1} alpha rho + log(1 - 1/alpha) - (log delta + log alpha) / (alpha - 1)
 * (Canonne-Kamath-Steinke 2020, Proposition 12 / Corollary 13), tighter than the classic
 * rho + 2 sqrt(rho log(1/delta)) at every rho and delta; it is also epsilon = 0 when
 * delta >= sqrt(1 - exp(-rho)) (the Bretagnolle-Huber bound on the KL divergence rho).
 *
 * The budget file: "VEILDPB\0", version (u32 LE), zero (u32), epsilon, delta, rho_limit, rho_spent
 * (IEEE-754 binary64, little-endian), releases (u64 LE), then the BLAKE2b-256 of everything before it.
 */
#include <math.h>
#include <string.h>
#include <sodium.h>
#include "ml/ml_internal.h"

#define BUDGET_MAGIC "VEILDPB"
#define BUDGET_VERSION 1u
#define DIGEST_BYTES 32
#define BUDGET_BODY (8 + 4 + 4 + 5 * 8)
#define BUDGET_BYTES (BUDGET_BODY + DIGEST_BYTES)

static veil_status check_epsilon_delta(double epsilon, double delta, veil_error *err)
{
    if (!(epsilon > 0) || !(epsilon <= VEIL_DP_MAX_EPSILON))
        return veil_fail(err, VEIL_ERR_ARGUMENT, "privacy: epsilon %g outside (0, %g]", epsilon, VEIL_DP_MAX_EPSILON);
    if (!(delta >= VEIL_DP_MIN_DELTA) || !(delta <= VEIL_DP_MAX_DELTA))
        return veil_fail(err, VEIL_ERR_ARGUMENT, "privacy: delta %g outside [%g, %g]", delta, VEIL_DP_MIN_DELTA,
                         VEIL_DP_MAX_DELTA);
    return VEIL_OK;
}

/* The conversion's bound at one order alpha > 1. */
static double epsilon_at(double rho, double delta, double alpha)
{
    return alpha * rho + log1p(-1.0 / alpha) - (log(delta) + log(alpha)) / (alpha - 1.0);
}

/* The infimum over alpha: a log-spaced scan of alpha - 1 in [1e-6, 1e8], then golden-section search
 * between the best point's neighbours (the bound is unimodal in alpha). */
static double epsilon_of(double rho, double delta)
{
    if (rho == 0) return 0;
    if (delta * delta + expm1(-rho) >= 0) return 0;
    enum { STEPS = 1400 };
    double best = INFINITY, best_x = 0;
    const double x0 = -6, x1 = 8;
    for (int i = 0; i <= STEPS; i++) {
        double x = x0 + (x1 - x0) * i / STEPS;
        double e = epsilon_at(rho, delta, 1.0 + pow(10.0, x));
        if (e < best) best = e, best_x = x;
    }
    double a = best_x - (x1 - x0) / STEPS, b = best_x + (x1 - x0) / STEPS;
    const double g = 0.6180339887498949;
    for (int i = 0; i < 80; i++) {
        double c = b - g * (b - a), d = a + g * (b - a);
        if (epsilon_at(rho, delta, 1.0 + pow(10.0, c)) < epsilon_at(rho, delta, 1.0 + pow(10.0, d))) b = d;
        else a = c;
    }
    double e = epsilon_at(rho, delta, 1.0 + pow(10.0, (a + b) / 2));
    if (e < best) best = e;
    return best > 0 ? best : 0;
}

veil_status veil_dp_epsilon(double rho, double delta, double *epsilon, veil_error *err)
{
    VEIL_REQUIRE(epsilon, err);
    if (!(rho >= 0) || !isfinite(rho)) return veil_fail(err, VEIL_ERR_ARGUMENT, "privacy: rho %g is not >= 0", rho);
    if (!(delta >= VEIL_DP_MIN_DELTA) || !(delta <= VEIL_DP_MAX_DELTA))
        return veil_fail(err, VEIL_ERR_ARGUMENT, "privacy: delta %g outside [%g, %g]", delta, VEIL_DP_MIN_DELTA,
                         VEIL_DP_MAX_DELTA);
    *epsilon = epsilon_of(rho, delta);
    return VEIL_OK;
}

/* The largest rho whose epsilon at delta is at most epsilon: bisection (epsilon_of increases with rho). */
static double rho_of(double epsilon, double delta)
{
    double lo = 0, hi = 1;
    while (epsilon_of(hi, delta) <= epsilon) lo = hi, hi *= 2;
    for (int i = 0; i < 200 && hi - lo > hi * 1e-15; i++) {
        double mid = (lo + hi) / 2;
        if (epsilon_of(mid, delta) <= epsilon) lo = mid; else hi = mid;
    }
    return lo;
}

veil_status veil_dp_rho_for(double epsilon, double delta, double *rho, veil_error *err)
{
    VEIL_REQUIRE(rho, err);
    veil_status st = VEIL_OK;
    VEIL_CHECK(check_epsilon_delta(epsilon, delta, err));
    *rho = rho_of(epsilon, delta);
done:
    return st;
}

veil_status veil_dp_gaussian_rho(double sensitivity, double sigma, double *rho, veil_error *err)
{
    VEIL_REQUIRE(rho, err);
    if (!(sensitivity > 0) || !isfinite(sensitivity))
        return veil_fail(err, VEIL_ERR_ARGUMENT, "privacy: sensitivity %g is not a positive number", sensitivity);
    if (!(sigma > 0) || !isfinite(sigma))
        return veil_fail(err, VEIL_ERR_ARGUMENT, "privacy: sigma %g is not a positive number", sigma);
    *rho = sensitivity * sensitivity / (2.0 * sigma * sigma);
    return VEIL_OK;
}

veil_status veil_dp_sigma_for(double sensitivity, double epsilon, double delta, double *sigma, veil_error *err)
{
    VEIL_REQUIRE(sigma, err);
    veil_status st = VEIL_OK;
    double rho = 0;
    if (!(sensitivity > 0) || !isfinite(sensitivity))
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "privacy: sensitivity %g is not a positive number", sensitivity);
    VEIL_CHECK(veil_dp_rho_for(epsilon, delta, &rho, err));
    *sigma = sensitivity / sqrt(2.0 * rho);
done:
    return st;
}

/* ---- the budget ---------------------------------------------------------------------------------- */

veil_status veil_dp_budget_init(veil_dp_budget *b, double epsilon, double delta, veil_error *err)
{
    VEIL_REQUIRE(b, err);
    veil_status st = VEIL_OK;
    VEIL_CHECK(check_epsilon_delta(epsilon, delta, err));
    memset(b, 0, sizeof *b);
    b->epsilon = epsilon;
    b->delta = delta;
    b->rho_limit = rho_of(epsilon, delta);
done:
    return st;
}

veil_status veil_dp_budget_spent_epsilon(const veil_dp_budget *b, double *epsilon, veil_error *err)
{
    VEIL_REQUIRE(b, err);
    return veil_dp_epsilon(b->rho_spent, b->delta, epsilon, err);
}

veil_status veil_dp_budget_check(const veil_dp_budget *b, double rho, veil_error *err)
{
    VEIL_REQUIRE(b, err);
    if (!(rho > 0) || !isfinite(rho))
        return veil_fail(err, VEIL_ERR_ARGUMENT, "privacy: a release's rho %g is not a positive number", rho);
    const double total = b->rho_spent + rho;
    if (total > b->rho_limit) {
        double now = 0, after = 0;
        (void)veil_dp_epsilon(b->rho_spent, b->delta, &now, NULL);
        (void)veil_dp_epsilon(total, b->delta, &after, NULL);
        return veil_fail(err, VEIL_ERR_BUDGET,
                         "privacy budget exceeded: this release (rho %.4g) would bring epsilon to %.4g at delta %g, "
                         "over the key set's limit %.4g (spent so far: epsilon %.4g in %llu release%s); nothing "
                         "was released",
                         rho, after, b->delta, b->epsilon, now, (unsigned long long)b->releases,
                         b->releases == 1 ? "" : "s");
    }
    return VEIL_OK;
}

veil_status veil_dp_budget_charge(veil_dp_budget *b, double rho, veil_error *err)
{
    veil_status st = VEIL_OK;
    VEIL_CHECK(veil_dp_budget_check(b, rho, err));
    b->rho_spent += rho;
    b->releases++;
done:
    return st;
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static void put_f64(uint8_t *p, double d)
{
    uint64_t v;
    memcpy(&v, &d, sizeof v);
    put_u64(p, v);
}

static double get_f64(const uint8_t *p)
{
    uint64_t v = get_u64(p);
    double d;
    memcpy(&d, &v, sizeof d);
    return d;
}

veil_status veil_dp_budget_save(veil_buffer *out, const veil_dp_budget *b, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(b, err);
    veil_status st = VEIL_OK;
    out->data = NULL;
    out->len = 0;
    uint8_t *p = veil_alloc(1, BUDGET_BYTES);
    if (!p) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "out of memory for a budget file");
    memcpy(p, BUDGET_MAGIC, 8); /* with its terminating zero */
    put_u64(p + 8, BUDGET_VERSION);
    put_f64(p + 16, b->epsilon);
    put_f64(p + 24, b->delta);
    put_f64(p + 32, b->rho_limit);
    put_f64(p + 40, b->rho_spent);
    put_u64(p + 48, b->releases);
    crypto_generichash(p + BUDGET_BODY, DIGEST_BYTES, p, BUDGET_BODY, NULL, 0);
    out->data = p;
    out->len = BUDGET_BYTES;
done:
    return st;
}

int veil_dp_budget_is(const uint8_t *data, size_t len)
{
    return data && len >= 8 && memcmp(data, BUDGET_MAGIC, 8) == 0;
}

veil_status veil_dp_budget_load(veil_dp_budget *b, const uint8_t *data, size_t len, veil_error *err)
{
    VEIL_REQUIRE(b, err);
    VEIL_REQUIRE(data, err);
    veil_status st = VEIL_OK;
    uint8_t digest[DIGEST_BYTES];
    veil_dp_budget v;
    if (!veil_dp_budget_is(data, len)) VEIL_FAIL(err, VEIL_ERR_FORMAT, "not a privacy budget file");
    if (len != BUDGET_BYTES)
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "budget file: %zu bytes where %d were expected", len, BUDGET_BYTES);
    if (get_u64(data + 8) != BUDGET_VERSION)
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "budget file: unknown version (reserved field %llx)",
                  (unsigned long long)get_u64(data + 8));
    crypto_generichash(digest, DIGEST_BYTES, data, BUDGET_BODY, NULL, 0);
    if (sodium_memcmp(digest, data + BUDGET_BODY, DIGEST_BYTES) != 0)
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "budget file: integrity digest mismatch (damaged or edited)");
    v.epsilon = get_f64(data + 16);
    v.delta = get_f64(data + 24);
    v.rho_limit = get_f64(data + 32);
    v.rho_spent = get_f64(data + 40);
    v.releases = get_u64(data + 48);
    {
        veil_error why = {0};
        if (check_epsilon_delta(v.epsilon, v.delta, &why) != VEIL_OK)
            VEIL_FAIL(err, VEIL_ERR_FORMAT, "budget file: %s", why.detail);
    }
    {
        const double limit = rho_of(v.epsilon, v.delta);
        if (!(fabs(v.rho_limit - limit) <= 1e-9 * limit))
            VEIL_FAIL(err, VEIL_ERR_FORMAT, "budget file: its rho limit %g is not that of epsilon %g at delta %g",
                      v.rho_limit, v.epsilon, v.delta);
    }
    if (!(v.rho_spent >= 0) || !(v.rho_spent <= v.rho_limit))
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "budget file: spent rho %g outside [0, %g]", v.rho_spent, v.rho_limit);
    if (v.releases > ((uint64_t)1 << 48) || (v.releases == 0) != (v.rho_spent == 0))
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "budget file: %llu releases with rho %g spent",
                  (unsigned long long)v.releases, v.rho_spent);
    *b = v;
done:
    return st;
}
