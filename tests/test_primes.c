/* NTT-friendly primes and roots of unity, checked against GMP's primality test. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <gmp.h>
#include <stdint.h>
#include "ring/ring_internal.h"

static int gmp_is_prime(uint64_t n)
{
    mpz_t z;
    mpz_init(z);
    mpz_import(z, 1, -1, sizeof n, 0, 0, &n);
    int r = mpz_probab_prime_p(z, 40);
    mpz_clear(z);
    return r != 0;
}

static void test_is_prime_against_gmp(void **state)
{
    (void)state;
    /* strong pseudoprimes to several small bases, Carmichael numbers, and primes next to them */
    static const uint64_t hard[] = {561, 1105, 2047, 3215031751ULL, 2152302898747ULL, 3474749660383ULL,
                                    341550071728321ULL, 3825123056546413051ULL, 18446744073709551557ULL,
                                    18446744073709551615ULL, 4611686018427387847ULL, 2305843009213693951ULL,
                                    0, 1, 2, 3, 4};
    for (size_t i = 0; i < sizeof hard / sizeof hard[0]; i++) assert_int_equal(veil_is_prime(hard[i]), gmp_is_prime(hard[i]));
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    for (int i = 0; i < 20000; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        uint64_t c = x | 1;
        assert_int_equal(veil_is_prime(c), gmp_is_prime(c));
        assert_int_equal(veil_is_prime(c >> 20), gmp_is_prime(c >> 20));
    }
}

static void test_prime_chain(void **state)
{
    (void)state;
    veil_error err = {0};
    for (unsigned log_n = VEIL_RING_MIN_LOG_N; log_n <= VEIL_RING_MAX_LOG_N; log_n++) {
        size_t n = (size_t)1 << log_n;
        unsigned bits[] = {60, 50, 50, 50, 40, 40, 61, 30};
        uint64_t q[8];
        assert_int_equal(veil_prime_chain(q, bits, 8, n, NULL, 0, &err), VEIL_OK);
        for (size_t i = 0; i < 8; i++) {
            assert_true(gmp_is_prime(q[i]));
            assert_int_equal(q[i] % (2 * n), 1);
            assert_true(q[i] < ((uint64_t)1 << bits[i]) && q[i] > ((uint64_t)1 << (bits[i] - 1)));
            for (size_t j = 0; j < i; j++) assert_true(q[i] != q[j]);
        }
        /* a repeated size takes the next prime down */
        assert_true(q[1] > q[2] && q[2] > q[3]);
        /* avoided primes are skipped */
        uint64_t r;
        assert_int_equal(veil_prime_chain(&r, &bits[1], 1, n, q, 8, &err), VEIL_OK);
        assert_true(r < q[3]);
    }
}

static void test_primitive_root(void **state)
{
    (void)state;
    veil_error err = {0};
    /* brute force on a small prime: the root returned is the smallest of order 2n */
    const uint64_t q = 12289, order = 2048;
    uint64_t psi;
    assert_int_equal(veil_primitive_root(&psi, q, order, &err), VEIL_OK);
    assert_int_equal(veil_mod_pow(psi, order, q), 1);
    assert_int_equal(veil_mod_pow(psi, order / 2, q), q - 1);
    for (uint64_t x = 2; x < psi; x++) assert_false(veil_mod_pow(x, order / 2, q) == q - 1);
    unsigned bits[] = {50, 60};
    uint64_t primes[2];
    assert_int_equal(veil_prime_chain(primes, bits, 2, 1 << 17, NULL, 0, &err), VEIL_OK);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(veil_primitive_root(&psi, primes[i], 1 << 18, &err), VEIL_OK);
        assert_int_equal(veil_mod_pow(psi, 1 << 17, primes[i]), primes[i] - 1);
    }
}

static void test_bad_arguments(void **state)
{
    (void)state;
    veil_error err = {0};
    uint64_t q[16], psi;
    unsigned ok = 50, small = 19, big = 62, tiny = 20;
    assert_int_equal(veil_prime_chain(q, &small, 1, 1024, NULL, 0, &err), VEIL_ERR_ARGUMENT);
    assert_true(err.detail[0] != '\0');
    assert_int_equal(veil_prime_chain(q, &big, 1, 1024, NULL, 0, &err), VEIL_ERR_ARGUMENT);
    assert_int_equal(veil_prime_chain(q, &ok, 1, 1000, NULL, 0, &err), VEIL_ERR_ARGUMENT);
    assert_int_equal(veil_prime_chain(q, &ok, 1, 1 << 18, NULL, 0, &err), VEIL_ERR_ARGUMENT);
    assert_int_equal(veil_prime_chain(NULL, &ok, 1, 1024, NULL, 0, &err), VEIL_ERR_NULL);
    unsigned many[16];
    for (int i = 0; i < 16; i++) many[i] = tiny;
    assert_int_equal(veil_prime_chain(q, many, 16, 1 << 17, NULL, 0, &err), VEIL_ERR_NOT_FOUND);
    assert_int_equal(veil_primitive_root(&psi, 12289, 3, &err), VEIL_ERR_ARGUMENT);      /* not a power of two */
    assert_int_equal(veil_primitive_root(&psi, 12289, 8192, &err), VEIL_ERR_ARGUMENT);   /* does not divide q-1 */
    assert_int_equal(veil_primitive_root(&psi, 12291, 2, &err), VEIL_ERR_ARGUMENT);      /* not prime */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_is_prime_against_gmp),
        cmocka_unit_test(test_prime_chain),
        cmocka_unit_test(test_primitive_root),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
