/* Parameter sets: the security table cell by cell, validation, automatic selection, presets, hashing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdint.h>
#include <string.h>
#include "veil/veil.h"

/* The largest unused prime below 2^bits that is 1 mod 2n (bits may be below 20, unlike veil_prime_chain). */
static uint64_t prime_of_bits(unsigned bits, size_t n, const uint64_t *avoid, size_t avoid_count)
{
    const uint64_t step = 2 * (uint64_t)n;
    for (uint64_t c = ((((uint64_t)1 << bits) - 1) / step) * step + 1; c > ((uint64_t)1 << (bits - 1)); c -= step) {
        int used = 0;
        for (size_t i = 0; i < avoid_count; i++) used |= avoid[i] == c;
        if (!used && veil_is_prime(c)) return c;
    }
    return 0;
}

/*
 * At least two distinct primes (one for Q, one for P) whose bit lengths add up to exactly `total`, sizes
 * spread evenly; 0 when no such set exists at this degree (a prime 1 mod 2n needs more than log2(2n) bits).
 */
static size_t primes_totalling(uint64_t *out, unsigned total, size_t n)
{
    size_t count = (total + 60) / 61;
    if (count < 2) count = 2;
    for (size_t i = 0; i < count; i++) {
        unsigned b = total / (unsigned)count + (i < total % count ? 1 : 0);
        if (b < 2 || ((uint64_t)1 << (b - 1)) < 2 * (uint64_t)n) return 0;
        out[i] = prime_of_bits(b, n, out, i);
        if (out[i] == 0) return 0;
    }
    return count;
}

static void test_security_table(void **state)
{
    (void)state;
    static const unsigned table[8][3] = {{27, 19, 14},    {54, 37, 29},     {109, 75, 58},     {218, 152, 118},
                                         {438, 305, 237}, {881, 611, 476},  {1747, 1199, 929}, {3523, 2411, 1866}};
    size_t checked = 0;
    for (size_t row = 0; row < 8; row++) {
        const size_t n = (size_t)1024 << row;
        for (int level = 0; level < 3; level++) {
            const unsigned limit = table[row][level];
            assert_int_equal(veil_security_max_log_qp(n, (veil_security)level), limit);
            for (unsigned over = 0; over <= 1; over++) {
                uint64_t primes[VEIL_RING_MAX_PRIMES];
                size_t count = primes_totalling(primes, limit + over, n);
                if (count == 0) continue; /* no two NTT primes of these sizes exist at this degree */
                /* the largest prime is the special one, and one digit per prime keeps P >= every digit */
                size_t largest = 0;
                for (size_t i = 1; i < count; i++)
                    if (primes[i] > primes[largest]) largest = i;
                uint64_t tmp = primes[count - 1];
                primes[count - 1] = primes[largest];
                primes[largest] = tmp;
                veil_params_spec spec = {n, count - 1, primes, NULL, 1, primes + count - 1, NULL, count - 1,
                                         VEIL_SECRET_TERNARY, 0, (veil_security)level, 0};
                veil_params *p = NULL;
                veil_error err = {0};
                veil_status st = veil_params_new(&p, &spec, &err);
                if (over == 0) {
                    assert_int_equal(st, VEIL_OK);
                    assert_int_equal(veil_params_log_qp(p), limit);
                } else {
                    assert_int_equal(st, VEIL_ERR_INSECURE);
                    assert_non_null(strstr(err.detail, "exceeds"));
                    assert_null(p);
                    /* the same set is accepted when the caller explicitly gives up security */
                    spec.security = VEIL_SECURITY_NONE;
                    assert_int_equal(veil_params_new(&p, &spec, &err), VEIL_OK);
                    assert_int_equal(veil_params_security(p), VEIL_SECURITY_NONE);
                }
                veil_params_free(p);
                checked++;
            }
        }
    }
    /* all 48 cases but the 8 that no pair of NTT primes can reach: the three cells at N = 1024 (no 13-bit
     * prime is 1 mod 2048) and 29 bits at N = 2048 (no 15-bit prime is 1 mod 4096) */
    assert_int_equal(checked, 40);
    assert_int_equal(veil_security_max_log_qp(512, VEIL_SECURITY_128), 0);
    assert_int_equal(veil_security_max_log_qp(3000, VEIL_SECURITY_128), 0);
    assert_int_equal(veil_security_max_log_qp(4096, VEIL_SECURITY_NONE), 0);
}

static void test_bits_and_validation(void **state)
{
    (void)state;
    veil_error err = {0};
    veil_params *p = NULL;
    const unsigned qb[] = {50, 40, 40}, pb[] = {50};
    veil_params_spec spec = {8192, 3, NULL, qb, 1, NULL, pb, 0, VEIL_SECRET_TERNARY, 0, VEIL_SECURITY_128, 0};
    assert_int_equal(veil_params_new(&p, &spec, &err), VEIL_OK);
    assert_int_equal(veil_params_degree(p), 8192);
    assert_int_equal(veil_params_q_count(p), 3);
    assert_int_equal(veil_params_p_count(p), 1);
    assert_int_equal(veil_params_dnum(p), 3);
    assert_int_equal(veil_params_log_qp(p), 180);
    for (size_t i = 0; i < 3; i++) {
        uint64_t q = veil_params_q(p, i);
        assert_int_equal(q % 16384, 1);
        assert_true(q >> (qb[i] - 1) == 1);
    }
    assert_int_equal(veil_params_q(p, 3), 0);
    veil_params_free(p);

    /* a digit larger than P */
    const unsigned big_q[] = {50, 50, 50, 50}, small_p[] = {40};
    veil_params_spec digits = {8192, 4, NULL, big_q, 1, NULL, small_p, 2, VEIL_SECRET_TERNARY, 0, VEIL_SECURITY_128, 0};
    assert_int_equal(veil_params_new(&p, &digits, &err), VEIL_ERR_ARGUMENT);
    assert_non_null(strstr(err.detail, "digit"));
    /* bad degree, dnum, counts, levels, duplicate primes */
    veil_params_spec bad = spec;
    bad.n = 3000;
    assert_int_equal(veil_params_new(&p, &bad, &err), VEIL_ERR_ARGUMENT);
    bad = spec;
    bad.dnum = 4;
    assert_int_equal(veil_params_new(&p, &bad, &err), VEIL_ERR_ARGUMENT);
    bad = spec;
    bad.p_count = 0;
    assert_int_equal(veil_params_new(&p, &bad, &err), VEIL_ERR_ARGUMENT);
    bad = spec;
    bad.security = (veil_security)7;
    assert_int_equal(veil_params_new(&p, &bad, &err), VEIL_ERR_ARGUMENT);
    uint64_t dup[2];
    unsigned b50 = 50;
    assert_int_equal(veil_prime_chain(dup, &b50, 1, 8192, NULL, 0, NULL), VEIL_OK);
    dup[1] = dup[0];
    veil_params_spec twice = {8192, 1, dup, NULL, 1, dup + 1, NULL, 0, VEIL_SECRET_TERNARY, 0, VEIL_SECURITY_128, 0};
    assert_int_equal(veil_params_new(&p, &twice, &err), VEIL_ERR_ARGUMENT);
    dup[1] = 12289; /* prime but not 1 mod 16384 */
    assert_int_equal(veil_params_new(&p, &twice, &err), VEIL_ERR_ARGUMENT);
    assert_int_equal(veil_params_new(&p, NULL, &err), VEIL_ERR_NULL);
    /* Hamming-weight secrets */
    veil_params_spec hw = spec;
    hw.secret = VEIL_SECRET_TERNARY_HW;
    assert_int_equal(veil_params_new(&p, &hw, &err), VEIL_OK);
    assert_int_equal(veil_params_hamming_weight(p), 192);
    veil_params_free(p);
    hw.hamming_weight = 9000;
    assert_int_equal(veil_params_new(&p, &hw, &err), VEIL_ERR_ARGUMENT);
}

static void test_select(void **state)
{
    (void)state;
    veil_error err = {0};
    veil_params *p = NULL;
    /* depth 2 at 40 bits: 50 + 80 + P(50) = 180 bits fits N = 8192 (218) but not 4096 (109) */
    veil_params_request req = {2, 40, 50, 0, VEIL_SECURITY_128, VEIL_SECRET_TERNARY};
    assert_int_equal(veil_params_select(&p, &req, &err), VEIL_OK);
    assert_int_equal(veil_params_degree(p), 8192);
    assert_int_equal(veil_params_dnum(p), 3); /* fewer digits would need P of 100 or 150 bits: over 218 */
    assert_true(veil_params_log_qp(p) <= 218);
    veil_params_free(p);
    /* more slots force a larger N */
    req.slots = 8192;
    assert_int_equal(veil_params_select(&p, &req, &err), VEIL_OK);
    assert_int_equal(veil_params_degree(p), 16384);
    veil_params_free(p);
    /* higher security needs a larger N for the same depth */
    req.slots = 0;
    req.security = VEIL_SECURITY_256;
    assert_int_equal(veil_params_select(&p, &req, &err), VEIL_OK);
    assert_true(veil_params_log_qp(p) <= veil_security_max_log_qp(veil_params_degree(p), VEIL_SECURITY_256));
    assert_true(veil_params_degree(p) >= 8192);
    veil_params_free(p);
    /* impossible: depth 60 at 60-bit scale */
    veil_params_request huge = {60, 60, 60, 0, VEIL_SECURITY_128, VEIL_SECRET_TERNARY};
    assert_int_equal(veil_params_select(&p, &huge, &err), VEIL_ERR_NOT_FOUND);
    veil_params_request none = {2, 40, 50, 0, VEIL_SECURITY_NONE, VEIL_SECRET_TERNARY};
    assert_int_equal(veil_params_select(&p, &none, &err), VEIL_ERR_ARGUMENT);
}

static void test_presets_and_hash(void **state)
{
    (void)state;
    veil_error err = {0};
    const char *const *names = veil_params_preset_names();
    uint8_t h[8][VEIL_PARAMS_HASH_BYTES];
    size_t k = 0;
    for (; names[k]; k++) {
        veil_params *p = NULL, *again = NULL;
        assert_int_equal(veil_params_preset(&p, names[k], &err), VEIL_OK);
        assert_int_equal(veil_params_security(p), VEIL_SECURITY_128);
        assert_true(veil_params_log_qp(p) <= veil_security_max_log_qp(veil_params_degree(p), VEIL_SECURITY_128));
        for (size_t i = 0; i < veil_params_q_count(p); i++) assert_true(veil_params_q(p, i) < ((uint64_t)1 << 50));
        veil_params_hash(p, h[k]);
        assert_int_equal(veil_params_preset(&again, names[k], &err), VEIL_OK);
        uint8_t h2[VEIL_PARAMS_HASH_BYTES];
        veil_params_hash(again, h2);
        assert_memory_equal(h[k], h2, sizeof h2);
        for (size_t j = 0; j < k; j++) assert_memory_not_equal(h[j], h[k], sizeof h2);
        veil_params_free(p);
        veil_params_free(again);
    }
    assert_true(k >= 3);
    veil_params *p = NULL;
    assert_int_equal(veil_params_preset(&p, "no-such-set", &err), VEIL_ERR_NOT_FOUND);
    /* the security level is part of the hash */
    const unsigned qb[] = {40}, pb[] = {40};
    veil_params_spec a = {4096, 1, NULL, qb, 1, NULL, pb, 0, VEIL_SECRET_TERNARY, 0, VEIL_SECURITY_128, 0};
    veil_params_spec b = a;
    b.security = VEIL_SECURITY_NONE;
    veil_params *pa = NULL, *pb_ = NULL;
    assert_int_equal(veil_params_new(&pa, &a, &err), VEIL_OK);
    assert_int_equal(veil_params_new(&pb_, &b, &err), VEIL_OK);
    uint8_t ha[32], hb[32];
    veil_params_hash(pa, ha);
    veil_params_hash(pb_, hb);
    assert_memory_not_equal(ha, hb, 32);
    veil_params_free(pa);
    veil_params_free(pb_);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_security_table),
        cmocka_unit_test(test_bits_and_validation),
        cmocka_unit_test(test_select),
        cmocka_unit_test(test_presets_and_hash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
