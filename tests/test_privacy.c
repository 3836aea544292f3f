/* The privacy accountant and budget: the zCDP conversion against closed forms, the calibration's round
 * trip, composition, a release over budget refused, and the budget file's validation (every field, the
 * digest, truncation). The comparison with Google's dp-accounting is tests/test_dp_accounting.sh. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "veil/ml.h"

/* The classic conversion rho + 2 sqrt(rho log(1/delta)) (Bun-Steinke 2016, Proposition 1.3). */
static double classic(double rho, double delta)
{
    return rho + 2.0 * sqrt(rho * log(1.0 / delta));
}

static void test_conversion(void **state)
{
    (void)state;
    const double rhos[] = {1e-4, 0.01, 0.1, 0.5, 1, 5, 40};
    const double deltas[] = {1e-5, 1e-8, 1e-12};
    for (size_t i = 0; i < sizeof rhos / sizeof rhos[0]; i++) {
        for (size_t j = 0; j < sizeof deltas / sizeof deltas[0]; j++) {
            double e = 0;
            assert_int_equal(veil_dp_epsilon(rhos[i], deltas[j], &e, NULL), VEIL_OK);
            /* tighter than the classic bound, and not absurdly so (at least 60% of it) */
            assert_true(e <= classic(rhos[i], deltas[j]));
            assert_true(e >= 0.6 * classic(rhos[i], deltas[j]));
            /* the infimum is no larger than the bound at any order we try by hand */
            for (double alpha = 1.5; alpha < 2000; alpha *= 1.7) {
                double at = alpha * rhos[i] + log1p(-1 / alpha) - (log(deltas[j]) + log(alpha)) / (alpha - 1);
                assert_true(e <= at + 1e-9);
            }
            /* round trip: the rho allowed at that epsilon is rho */
            double r = 0;
            if (e > VEIL_DP_MAX_EPSILON) continue;
            assert_int_equal(veil_dp_rho_for(e, deltas[j], &r, NULL), VEIL_OK);
            assert_true(fabs(r - rhos[i]) <= 1e-6 * rhos[i]);
        }
    }
    /* figures from a brute-force scan of 200,000 orders (Python, outside Veil) */
    const double ref[][3] = {{1e-4, 1e-5, 0.04504746216758773}, {0.1, 1e-5, 1.9142388326409852},
                             {1, 1e-8, 8.977218433561049}, {40, 1e-12, 104.9685835374846}};
    double e = -1;
    for (size_t i = 0; i < sizeof ref / sizeof ref[0]; i++) {
        assert_int_equal(veil_dp_epsilon(ref[i][0], ref[i][1], &e, NULL), VEIL_OK);
        assert_true(fabs(e - ref[i][2]) <= 1e-7 * ref[i][2]);
    }
    assert_int_equal(veil_dp_epsilon(0, 1e-6, &e, NULL), VEIL_OK);
    assert_true(e == 0);
    /* the sigma of one release: rho of that sigma gives back epsilon */
    double sigma = 0, rho = 0;
    assert_int_equal(veil_dp_sigma_for(2.0, 1.0, 1e-6, &sigma, NULL), VEIL_OK);
    assert_int_equal(veil_dp_gaussian_rho(2.0, sigma, &rho, NULL), VEIL_OK);
    assert_int_equal(veil_dp_epsilon(rho, 1e-6, &e, NULL), VEIL_OK);
    assert_true(fabs(e - 1.0) < 1e-6);
    /* the Gaussian's well-known figure: sensitivity 1, epsilon 1, delta 1e-5 -> sigma near 3.7 (analytic
     * Gaussian, Balle-Wang 2018, gives 3.73; the zCDP route costs a little more) */
    assert_int_equal(veil_dp_sigma_for(1.0, 1.0, 1e-5, &sigma, NULL), VEIL_OK);
    assert_true(sigma > 3.7 && sigma < 4.6);
}

static void test_bad_parameters(void **state)
{
    (void)state;
    veil_error err;
    double x;
    veil_dp_budget b;
    const double bad_eps[] = {0, -1, 101, NAN, INFINITY};
    for (size_t i = 0; i < sizeof bad_eps / sizeof bad_eps[0]; i++) {
        assert_int_equal(veil_dp_budget_init(&b, bad_eps[i], 1e-6, &err), VEIL_ERR_ARGUMENT);
        assert_int_equal(veil_dp_rho_for(bad_eps[i], 1e-6, &x, &err), VEIL_ERR_ARGUMENT);
    }
    const double bad_delta[] = {0, -1e-6, 0.5, 1, 1e-200, NAN};
    for (size_t i = 0; i < sizeof bad_delta / sizeof bad_delta[0]; i++) {
        assert_int_equal(veil_dp_budget_init(&b, 1, bad_delta[i], &err), VEIL_ERR_ARGUMENT);
        assert_int_equal(veil_dp_epsilon(0.1, bad_delta[i], &x, &err), VEIL_ERR_ARGUMENT);
    }
    assert_int_equal(veil_dp_epsilon(-0.1, 1e-6, &x, &err), VEIL_ERR_ARGUMENT);
    assert_int_equal(veil_dp_gaussian_rho(0, 1, &x, &err), VEIL_ERR_ARGUMENT);
    assert_int_equal(veil_dp_gaussian_rho(1, -1, &x, &err), VEIL_ERR_ARGUMENT);
    assert_int_equal(veil_dp_sigma_for(-1, 1, 1e-6, &x, &err), VEIL_ERR_ARGUMENT);
}

static void test_budget(void **state)
{
    (void)state;
    veil_dp_budget b;
    veil_error err;
    assert_int_equal(veil_dp_budget_init(&b, 2.0, 1e-6, NULL), VEIL_OK);
    /* releases of epsilon 0.5 each (at delta 1e-6) compose in zCDP: more than basic composition's 2 / 0.5 = 4
     * fit into epsilon 2, and the first that does not is refused */
    double rho = 0, sigma = 0;
    assert_int_equal(veil_dp_sigma_for(1.0, 0.5, 1e-6, &sigma, NULL), VEIL_OK);
    assert_int_equal(veil_dp_gaussian_rho(1.0, sigma, &rho, NULL), VEIL_OK);
    int fitted = 0;
    while (veil_dp_budget_charge(&b, rho, &err) == VEIL_OK) fitted++;
    assert_int_equal(err.status, VEIL_ERR_BUDGET);
    assert_non_null(strstr(err.detail, "privacy budget exceeded"));
    assert_true(fitted > 4 && fitted < 100);
    /* exactly as many as rho_limit / rho allows */
    assert_int_equal(fitted, (int)floor(b.rho_limit / rho));
    assert_int_equal(b.releases, (uint64_t)fitted);
    double spent = 0;
    assert_int_equal(veil_dp_budget_spent_epsilon(&b, &spent, NULL), VEIL_OK);
    assert_true(spent <= 2.0 && spent > 0.5);
    /* refused: nothing changed */
    veil_dp_budget before = b;
    assert_int_equal(veil_dp_budget_charge(&b, rho, NULL), VEIL_ERR_BUDGET);
    assert_memory_equal(&before, &b, sizeof b);
    assert_int_equal(veil_dp_budget_charge(&b, -1, NULL), VEIL_ERR_ARGUMENT);
    assert_int_equal(veil_dp_budget_charge(&b, NAN, NULL), VEIL_ERR_ARGUMENT);
}

static void test_budget_file(void **state)
{
    (void)state;
    veil_dp_budget b, back;
    veil_buffer buf = {0};
    veil_error err;
    assert_int_equal(veil_dp_budget_init(&b, 4.0, 1e-7, NULL), VEIL_OK);
    assert_int_equal(veil_dp_budget_charge(&b, 0.05, NULL), VEIL_OK);
    assert_int_equal(veil_dp_budget_save(&buf, &b, NULL), VEIL_OK);
    assert_int_equal(buf.len, 88);
    assert_true(veil_dp_budget_is(buf.data, buf.len));
    assert_int_equal(veil_dp_budget_load(&back, buf.data, buf.len, NULL), VEIL_OK);
    assert_memory_equal(&b, &back, sizeof b);
    /* every truncation, and one flipped bit anywhere, is refused as a format error */
    for (size_t len = 0; len < buf.len; len++)
        assert_int_equal(veil_dp_budget_load(&back, buf.data, len, &err), VEIL_ERR_FORMAT);
    for (size_t i = 0; i < buf.len; i++) {
        buf.data[i] ^= 0x10;
        assert_int_equal(veil_dp_budget_load(&back, buf.data, buf.len, &err), VEIL_ERR_FORMAT);
        buf.data[i] ^= 0x10;
    }
    veil_buffer_free(&buf);
    /* consistent digests over inconsistent values: a spent rho above the limit, a negative one, a limit that
     * is not that of (epsilon, delta), an absurd epsilon, releases without spending */
    veil_dp_budget bad[5];
    for (int i = 0; i < 5; i++) bad[i] = b;
    bad[0].rho_spent = b.rho_limit * 1.01;
    bad[1].rho_spent = -0.01;
    bad[2].rho_limit *= 2;
    bad[3].epsilon = 1e6;
    bad[4].rho_spent = 0;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(veil_dp_budget_save(&buf, &bad[i], NULL), VEIL_OK);
        assert_int_equal(veil_dp_budget_load(&back, buf.data, buf.len, &err), VEIL_ERR_FORMAT);
        veil_buffer_free(&buf);
    }
}

/*
 * The cost of a sum of n discrete Gaussian shares (Kairouz-Liu-Steinke 2021): D^2 / (2 n s^2) + tau 2^40, tau =
 * 10 sum_{k<n} exp(-2 pi^2 s^2 k / (k + 1)) with s in grid units; against the closed form at small s (where tau
 * matters), zero excess for one party and at Veil's grids, and the refusals.
 */
static void test_sum_of_shares(void **state)
{
    (void)state;
    veil_error err;
    double rho = 0;
    const double pi = 3.14159265358979323846;
    /* one party: the discrete Gaussian's own rho */
    assert_int_equal(veil_dp_sum_rho(2.0, 0.75, 0.01, 1, &rho, &err), VEIL_OK);
    assert_true(fabs(rho - 4.0 / (2 * 0.75 * 0.75)) <= 1e-15 * rho);
    /* s = 1 grid unit, 3 parties: tau = 10 (exp(-pi^2) + exp(-4 pi^2 / 3)), times 2^40 coordinates */
    assert_int_equal(veil_dp_sum_rho(1.0, 1.0, 1.0, 3, &rho, &err), VEIL_OK);
    const double tau = 10 * (exp(-pi * pi) + exp(-4 * pi * pi / 3));
    assert_true(fabs(rho - (1.0 / 6 + tau * 0x1p40)) <= 1e-12 * rho);
    /* the same sigma on a finer grid (2^20 units): the excess vanishes, rho = D^2 / (2 n s^2) */
    assert_int_equal(veil_dp_sum_rho(1.0, 1.0, 0x1p-20, 3, &rho, &err), VEIL_OK);
    assert_true(fabs(rho - 1.0 / 6) <= 1e-15);
    /* refused: a share below half a grid step, no parties or more than 64, a bad sensitivity */
    assert_int_equal(veil_dp_sum_rho(1.0, 0.4, 1.0, 3, &rho, &err), VEIL_ERR_ARGUMENT);
    assert_int_equal(veil_dp_sum_rho(1.0, 1.0, 1.0, 0, &rho, &err), VEIL_ERR_ARGUMENT);
    assert_int_equal(veil_dp_sum_rho(1.0, 1.0, 1.0, 65, &rho, &err), VEIL_ERR_ARGUMENT);
    assert_int_equal(veil_dp_sum_rho(-1.0, 1.0, 1.0, 3, &rho, &err), VEIL_ERR_ARGUMENT);
    assert_int_equal(veil_dp_sum_rho(1.0, NAN, 1.0, 3, &rho, &err), VEIL_ERR_ARGUMENT);
    /* completeness: a central release, shares enough or more, shares short */
    veil_dp_release r = {0};
    assert_true(veil_dp_release_complete(&r));
    r.parties = 3, r.shares = 3;
    assert_true(veil_dp_release_complete(&r));
    r.shares = 4;
    assert_true(veil_dp_release_complete(&r));
    r.shares = 2;
    assert_false(veil_dp_release_complete(&r));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conversion),
        cmocka_unit_test(test_bad_parameters),
        cmocka_unit_test(test_budget),
        cmocka_unit_test(test_budget_file),
        cmocka_unit_test(test_sum_of_shares),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
