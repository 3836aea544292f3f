/* Samplers: distributions (chi-square, moments), exact Hamming weight, reproducibility from a seed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "ring/ring_internal.h"

static veil_prng *seeded(uint8_t tag, uint64_t stream)
{
    uint8_t seed[VEIL_SEED_BYTES];
    for (int i = 0; i < VEIL_SEED_BYTES; i++) seed[i] = (uint8_t)(tag + i);
    veil_prng *p = NULL;
    assert_int_equal(veil_prng_new_seeded(&p, seed, stream, NULL), VEIL_OK);
    return p;
}

/* Uniform mod q: below q, chi-square over 64 buckets (63 dof, p = 0.001 -> 103.4), for each limb. */
static void test_uniform(void **state)
{
    (void)state;
    const unsigned bits[] = {50, 61, 21};
    uint64_t q[3];
    veil_ring *r = NULL;
    assert_int_equal(veil_prime_chain(q, bits, 3, 4096, NULL, 0, NULL), VEIL_OK);
    assert_int_equal(veil_ring_new(&r, 4096, q, 3, NULL, NULL), VEIL_OK);
    veil_poly *p = NULL;
    assert_int_equal(veil_poly_new_range(&p, r, 0, 3, VEIL_FORM_EVAL, NULL), VEIL_OK);
    veil_prng *prng = seeded(1, 0);
    for (size_t l = 0; l < 3; l++) {
        double counts[64] = {0};
        for (int round = 0; round < 16; round++) {
            assert_int_equal(veil_sample_uniform(p, prng, NULL), VEIL_OK);
            for (size_t j = 0; j < 4096; j++) {
                uint64_t v = veil_poly_limb(p, l)[j];
                assert_true(v < q[l]);
                counts[(size_t)((double)v / (double)q[l] * 64.0)]++;
            }
        }
        double chi = 0, expect = 16.0 * 4096 / 64;
        for (int b = 0; b < 64; b++) chi += (counts[b] - expect) * (counts[b] - expect) / expect;
        assert_true(chi < 103.4);
    }
    assert_int_equal(veil_poly_form(p), VEIL_FORM_EVAL);
    /* fixed vector: the first residues from seed (1, 2, ..., 32), stream 0 */
    veil_prng *fixed = seeded(1, 0);
    veil_sample_uniform(p, fixed, NULL);
    const uint64_t *x = veil_poly_limb(p, 0);
    uint64_t expect[4];
    {
        /* recompute from the stream itself: masked 50-bit little-endian words below q, in order */
        veil_prng *raw = seeded(1, 0);
        size_t k = 0;
        while (k < 4) {
            uint64_t v = veil_prng_u64(raw) & (((uint64_t)1 << 50) - 1);
            if (v < q[0]) expect[k++] = v;
        }
        veil_prng_free(raw);
    }
    assert_memory_equal(x, expect, sizeof expect);
    veil_prng_free(fixed);
    veil_prng_free(prng);
    veil_poly_free(p);
    veil_ring_free(r);
}

static void test_ternary(void **state)
{
    (void)state;
    const size_t n = 1 << 18;
    int8_t *s = malloc(n);
    veil_prng *prng = seeded(2, 0);
    assert_int_equal(veil_sample_ternary(s, n, prng, NULL), VEIL_OK);
    double counts[3] = {0};
    for (size_t j = 0; j < n; j++) {
        assert_true(s[j] >= -1 && s[j] <= 1);
        counts[s[j] + 1]++;
    }
    double chi = 0, expect = n / 3.0;
    for (int b = 0; b < 3; b++) chi += (counts[b] - expect) * (counts[b] - expect) / expect;
    assert_true(chi < 13.82); /* 2 dof, p = 0.001 */
    /* reproducible from the seed */
    int8_t *t = malloc(n);
    veil_prng *again = seeded(2, 0);
    veil_sample_ternary(t, n, again, NULL);
    assert_memory_equal(s, t, n);
    veil_prng_free(again);
    veil_prng_free(prng);
    free(s);
    free(t);
}

static void test_hamming_weight(void **state)
{
    (void)state;
    const size_t cases[][2] = {{1024, 1}, {1024, 64}, {1024, 1024}, {4096, 192}, {1000, 333}, {65536, 8192}};
    veil_prng *prng = seeded(3, 0);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const size_t n = cases[c][0], h = cases[c][1];
        int8_t *s = malloc(n);
        assert_int_equal(veil_sample_ternary_hw(s, n, h, prng, NULL), VEIL_OK);
        size_t nonzero = 0, plus = 0;
        for (size_t j = 0; j < n; j++) {
            assert_true(s[j] >= -1 && s[j] <= 1);
            nonzero += s[j] != 0;
            plus += s[j] == 1;
        }
        assert_int_equal(nonzero, h);
        if (h >= 192) assert_true(plus > h / 2 - 4 * h / 20 && plus < h / 2 + 4 * h / 20);
        free(s);
    }
    /* positions are uniform: over many draws with n = 64, h = 8, each position is nonzero ~1/8 of the time */
    const size_t n = 64, h = 8, runs = 20000;
    double counts[64] = {0};
    int8_t s[64];
    for (size_t r = 0; r < runs; r++) {
        veil_sample_ternary_hw(s, n, h, prng, NULL);
        for (size_t j = 0; j < n; j++) counts[j] += s[j] != 0;
    }
    double chi = 0, expect = (double)runs * h / n;
    for (size_t j = 0; j < n; j++) chi += (counts[j] - expect) * (counts[j] - expect) / expect;
    assert_true(chi < 103.4); /* 63 dof, p = 0.001 (conservative: counts are not independent) */
    veil_prng_free(prng);
}

static void test_cbd(void **state)
{
    (void)state;
    const size_t n = 1 << 20;
    int8_t *e = malloc(n);
    veil_prng *prng = seeded(4, 0);
    assert_int_equal(veil_sample_cbd(e, n, prng, NULL), VEIL_OK);
    double sum = 0, sq = 0;
    for (size_t j = 0; j < n; j++) {
        assert_true(e[j] >= -VEIL_CBD_ETA && e[j] <= VEIL_CBD_ETA);
        sum += e[j];
        sq += (double)e[j] * e[j];
    }
    double mean = sum / n, var = sq / n - mean * mean;
    assert_true(mean > -0.05 && mean < 0.05);
    assert_true(var > 10.5 * 0.97 && var < 10.5 * 1.03);
    /* fixed vector: the first values are popcount differences of the stream's 64-bit words */
    veil_prng *raw = seeded(4, 0);
    for (int j = 0; j < 16; j++) {
        uint64_t w = veil_prng_u64(raw);
        int a = __builtin_popcountll(w & ((1u << 21) - 1)), b = __builtin_popcountll((w >> 21) & ((1u << 21) - 1));
        assert_int_equal(e[j], a - b);
    }
    veil_prng_free(raw);
    veil_prng_free(prng);
    free(e);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    veil_error err = {0};
    veil_prng *prng = seeded(5, 0);
    int8_t s[16];
    assert_int_equal(veil_sample_ternary(s, 0, prng, &err), VEIL_ERR_ARGUMENT);
    assert_int_equal(veil_sample_ternary(NULL, 16, prng, &err), VEIL_ERR_NULL);
    assert_int_equal(veil_sample_cbd(s, 16, NULL, &err), VEIL_ERR_NULL);
    assert_int_equal(veil_sample_ternary_hw(s, 16, 0, prng, &err), VEIL_ERR_ARGUMENT);
    assert_int_equal(veil_sample_ternary_hw(s, 16, 17, prng, &err), VEIL_ERR_ARGUMENT);
    assert_non_null(strstr(err.detail, "Hamming"));
    assert_int_equal(veil_sample_uniform(NULL, prng, &err), VEIL_ERR_NULL);
    veil_prng_free(prng);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uniform), cmocka_unit_test(test_ternary), cmocka_unit_test(test_hamming_weight),
        cmocka_unit_test(test_cbd),     cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
