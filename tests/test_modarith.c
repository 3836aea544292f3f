/* Single-word modular arithmetic: Barrett, Shoup, inverses and powers against 128-bit division. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdint.h>
#include "ring/ring_internal.h"

static uint64_t rng_state = 0x243F6A8885A308D3ULL;
static uint64_t next_u64(void) /* splitmix64: a fixed, reproducible test stream */
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static const uint64_t moduli[] = {
    3, 12289, 1099511480321ULL /* 40-bit */, 1125899906826241ULL /* 50-bit */,
    1152921504606846883ULL /* 60-bit */, 2305843009213693951ULL /* 2^61 - 1 */, 4611686018427387847ULL /* < 2^62 */};

static void test_barrett(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof moduli / sizeof moduli[0]; k++) {
        veil_modulus m;
        veil_modulus_init(&m, moduli[k]);
        const uint64_t q = moduli[k];
        const uint64_t edge[] = {0, 1, q - 1, q, q + 1, 2 * q - 1, UINT64_MAX};
        for (size_t i = 0; i < 7; i++)
            for (size_t j = 0; j < 7; j++) {
                veil_u128 x = (veil_u128)edge[i] * edge[j];
                assert_int_equal(veil_reduce128(&m, x), (uint64_t)(x % q));
                assert_int_equal(veil_reduce128(&m, x + edge[i]), (uint64_t)((x + edge[i]) % q));
            }
        for (int i = 0; i < 100000; i++) {
            veil_u128 x = ((veil_u128)next_u64() << 64) | next_u64();
            assert_int_equal(veil_reduce128(&m, x), (uint64_t)(x % q));
            uint64_t a = next_u64(), b = next_u64();
            assert_int_equal(veil_mulmod(&m, a, b), (uint64_t)(((veil_u128)a * b) % q));
            assert_int_equal(veil_mod_mul(a, b, q), (uint64_t)(((veil_u128)a * b) % q));
            int64_t s = (int64_t)next_u64();
            veil_u128 mag = s < 0 ? (veil_u128)(-(veil_i128)s) : (veil_u128)s;
            uint64_t expect = (uint64_t)(mag % q);
            if (s < 0 && expect) expect = q - expect;
            assert_int_equal(veil_reduce_i64(&m, s), expect);
        }
    }
}

static void test_shoup_and_add(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof moduli / sizeof moduli[0]; k++) {
        const uint64_t q = moduli[k];
        for (int i = 0; i < 100000; i++) {
            uint64_t w = next_u64() % q, ws = veil_shoup_precompute(w, q);
            uint64_t a = next_u64();
            uint64_t lazy = veil_mulmod_shoup_lazy(a, w, ws, q);
            uint64_t exact = (uint64_t)(((veil_u128)a * w) % q);
            assert_true(lazy < 2 * q);
            assert_true(lazy == exact || lazy == exact + q);
            assert_int_equal(veil_mulmod_shoup(a, w, ws, q), exact);
            uint64_t x = next_u64() % q, y = next_u64() % q;
            assert_int_equal(veil_mod_add(x, y, q), (uint64_t)(((veil_u128)x + y) % q));
            assert_int_equal(veil_mod_sub(x, y, q), (uint64_t)(((veil_u128)x + q - y) % q));
        }
        assert_int_equal(veil_mod_add(q - 1, q - 1, q), q - 2);
        assert_int_equal(veil_mod_sub(0, q - 1, q), 1 % q);
    }
}

static void test_inverse_and_power(void **state)
{
    (void)state;
    veil_error err = {0};
    for (size_t k = 1; k < sizeof moduli / sizeof moduli[0]; k++) {
        const uint64_t q = moduli[k];
        for (int i = 0; i < 2000; i++) {
            uint64_t a = 1 + next_u64() % (q - 1), inv = 0;
            if (q == 2305843009213693951ULL || veil_is_prime(q)) {
                assert_int_equal(veil_mod_inv(&inv, a, q, &err), VEIL_OK);
                assert_int_equal(veil_mod_mul(a, inv, q), 1);
            }
        }
        /* Fermat: a^(q-1) = 1 for prime q */
        if (veil_is_prime(q)) assert_int_equal(veil_mod_pow(5, q - 1, q), 1);
    }
    assert_int_equal(veil_mod_pow(3, 0, 7), 1);
    assert_int_equal(veil_mod_pow(2, 10, 1000), 24);
    uint64_t inv;
    assert_int_equal(veil_mod_inv(&inv, 6, 9, &err), VEIL_ERR_ARGUMENT);
    assert_true(err.detail[0] != '\0');
    assert_int_equal(veil_mod_inv(&inv, 0, 12289, NULL), VEIL_ERR_ARGUMENT);
    assert_int_equal(veil_mod_inv(NULL, 3, 7, NULL), VEIL_ERR_NULL);
    assert_int_equal(veil_mod_inv(&inv, 3, 1, NULL), VEIL_ERR_ARGUMENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_barrett),
        cmocka_unit_test(test_shoup_and_add),
        cmocka_unit_test(test_inverse_and_power),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
