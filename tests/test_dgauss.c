/* The discrete Gaussian sampler (Canonne-Kamath-Steinke 2020): chi-square against the exact probabilities
 * for several rational sigma^2 from a fixed seed, the test's power (the same samples fail against a
 * sigma 20% off), reproducibility, a large sigma, and bad arguments. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "ring/ring_internal.h"

enum { SAMPLES = 6000 };

static veil_prng *seeded(uint8_t tag, uint64_t stream)
{
    uint8_t seed[VEIL_SEED_BYTES];
    for (int i = 0; i < VEIL_SEED_BYTES; i++) seed[i] = (uint8_t)(tag * 7 + i);
    veil_prng *p = NULL;
    assert_int_equal(veil_prng_new_seeded(&p, seed, stream, NULL), VEIL_OK);
    return p;
}

/* Wilson-Hilferty: the chi-square quantile of `dof` degrees of freedom at the normal quantile z. */
static double chi2_quantile(double dof, double z)
{
    double c = 2.0 / (9.0 * dof);
    double r = 1.0 - c + z * sqrt(c);
    return dof * r * r * r;
}

/*
 * Pearson's statistic of the samples against N_Z(0, sigma2): one bin per integer of [-b, b] where b is the
 * largest value whose expected count is at least 5, the two tails merged into the edge bins. *dof gets
 * the number of bins minus one.
 */
static double chi_square(const int64_t *x, size_t n, double sigma2, size_t *dof)
{
    const long reach = (long)(60.0 * sqrt(sigma2)) + 10;
    double total = 0;
    for (long v = -reach; v <= reach; v++) total += exp(-(double)v * (double)v / (2.0 * sigma2));
    long b = 0;
    while (n * exp(-(double)(b + 1) * (double)(b + 1) / (2.0 * sigma2)) / total >= 5.0) b++;
    const size_t bins = (size_t)(2 * b + 1);
    double *observed = calloc(bins, sizeof *observed), *expected = calloc(bins, sizeof *expected);
    assert_non_null(observed);
    assert_non_null(expected);
    for (long v = -reach; v <= reach; v++) {
        long c = v < -b ? -b : (v > b ? b : v);
        expected[c + b] += (double)n * exp(-(double)v * (double)v / (2.0 * sigma2)) / total;
    }
    for (size_t i = 0; i < n; i++) {
        long c = x[i] < -b ? -b : (x[i] > b ? b : (long)x[i]);
        observed[c + b] += 1;
    }
    double chi = 0;
    for (size_t k = 0; k < bins; k++) chi += (observed[k] - expected[k]) * (observed[k] - expected[k]) / expected[k];
    free(observed);
    free(expected);
    *dof = bins - 1;
    return chi;
}

static void test_distribution(void **state)
{
    (void)state;
    const uint64_t rationals[][2] = {{1, 1}, {9, 4}, {10, 1}, {1007, 10}, {(uint64_t)1 << 40, (uint64_t)1 << 32}};
    int64_t *x = malloc(SAMPLES * sizeof *x);
    assert_non_null(x);
    for (size_t r = 0; r < sizeof rationals / sizeof rationals[0]; r++) {
        const double sigma2 = (double)rationals[r][0] / (double)rationals[r][1];
        veil_prng *prng = seeded((uint8_t)(r + 1), 3);
        assert_int_equal(veil_sample_discrete_gaussian(x, SAMPLES, rationals[r][0], rationals[r][1], prng, NULL),
                         VEIL_OK);
        veil_prng_free(prng);
        size_t dof = 0;
        double chi = chi_square(x, SAMPLES, sigma2, &dof);
        double limit = chi2_quantile((double)dof, 3.09); /* p = 0.001 */
        print_message("sigma^2 = %g: chi-square %.1f over %zu dof (limit %.1f)\n", sigma2, chi, dof, limit);
        assert_true(chi < limit);
        /* power: against sigma^2 * 1.44 (sigma 20% larger) the same samples are rejected */
        double wrong = chi_square(x, SAMPLES, sigma2 * 1.44, &dof);
        print_message("  against sigma 20%% larger: %.1f over %zu dof\n", wrong, dof);
        assert_true(wrong > chi2_quantile((double)dof, 3.09));
        /* symmetric, mean near 0: |mean| < 4 sigma / sqrt(n) */
        double mean = 0;
        for (size_t i = 0; i < SAMPLES; i++) mean += (double)x[i];
        mean /= SAMPLES;
        assert_true(fabs(mean) < 4.0 * sqrt(sigma2 / SAMPLES));
    }
    free(x);
}

static void test_reproducible_and_large(void **state)
{
    (void)state;
    int64_t a[64], b[64];
    veil_prng *p = seeded(9, 1), *q = seeded(9, 1);
    assert_int_equal(veil_sample_discrete_gaussian(a, 64, 50, 1, p, NULL), VEIL_OK);
    assert_int_equal(veil_sample_discrete_gaussian(b, 64, 50, 1, q, NULL), VEIL_OK);
    assert_memory_equal(a, b, sizeof a);
    veil_prng_free(p);
    veil_prng_free(q);
    /* the largest sigma (2^31): the sample standard deviation within 15% of sigma */
    uint64_t num = 0, den = 0;
    assert_int_equal(veil_dgauss_sigma2_rational(VEIL_DGAUSS_MAX_SIGMA, &num, &den, NULL), VEIL_OK);
    int64_t big[400];
    veil_prng *r = seeded(10, 0);
    assert_int_equal(veil_sample_discrete_gaussian(big, 400, num, den, r, NULL), VEIL_OK);
    veil_prng_free(r);
    double ss = 0;
    for (int i = 0; i < 400; i++) ss += (double)big[i] * (double)big[i];
    double sd = sqrt(ss / 400);
    assert_true(fabs(sd / VEIL_DGAUSS_MAX_SIGMA - 1.0) < 0.15);
}

static void test_rational(void **state)
{
    (void)state;
    const double sigmas[] = {1.0, 1.5, 3.7, 1234.567, 65536.5, 2147483648.0};
    for (size_t i = 0; i < sizeof sigmas / sizeof sigmas[0]; i++) {
        uint64_t num = 0, den = 0;
        assert_int_equal(veil_dgauss_sigma2_rational(sigmas[i], &num, &den, NULL), VEIL_OK);
        long double exact = (long double)sigmas[i] * sigmas[i];
        long double got = (long double)num / (long double)den;
        assert_true(got >= exact);                      /* rounded up: never less noise */
        assert_true(got - exact <= exact * 1e-9L + 1.0L / den);
        assert_true(den >= 1 && den <= VEIL_DGAUSS_MAX_DEN && num >= den);
    }
}

static void test_bad_arguments(void **state)
{
    (void)state;
    int64_t x[4];
    veil_prng *p = seeded(3, 0);
    veil_error err;
    assert_int_equal(veil_sample_discrete_gaussian(x, 4, 1, 0, p, &err), VEIL_ERR_ARGUMENT);
    assert_int_equal(veil_sample_discrete_gaussian(x, 4, 1, 2, p, &err), VEIL_ERR_ARGUMENT); /* sigma^2 < 1 */
    assert_int_equal(veil_sample_discrete_gaussian(x, 4, UINT64_MAX, VEIL_DGAUSS_MAX_DEN + 1, p, &err),
                     VEIL_ERR_ARGUMENT);
    assert_int_equal(veil_sample_discrete_gaussian(x, 4, 4, 1, NULL, &err), VEIL_ERR_NULL);
    uint64_t num, den;
    assert_int_equal(veil_dgauss_sigma2_rational(0.5, &num, &den, &err), VEIL_ERR_ARGUMENT);
    assert_int_equal(veil_dgauss_sigma2_rational(NAN, &num, &den, &err), VEIL_ERR_ARGUMENT);
    assert_int_equal(veil_dgauss_sigma2_rational(INFINITY, &num, &den, &err), VEIL_ERR_ARGUMENT);
    assert_int_equal(veil_dgauss_sigma2_rational(4e9, &num, &den, &err), VEIL_ERR_ARGUMENT);
    veil_prng_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_distribution),
        cmocka_unit_test(test_reproducible_and_large),
        cmocka_unit_test(test_rational),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
