/*
 * The negacyclic NTT: round trips, agreement with the definition (evaluation at odd powers of psi) and
 * with the schoolbook negacyclic product, and bit-for-bit agreement of the AVX2 and scalar kernels at
 * every supported degree, and of the AVX-512 IFMA and scalar kernels (NTT and pointwise products). Run three times by
 * ctest: as is (the IFMA level where the CPU has it), with VEIL_NO_AVX512=1 (AVX2) and with VEIL_NO_AVX2=1.
 */
#define _POSIX_C_SOURCE 200809L /* setenv, strdup */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "ring/ring_internal.h"

static uint64_t rng_state = 0x0123456789ABCDEFULL;
static uint64_t next_u64(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static veil_ring *make_ring(size_t n, const unsigned *bits, size_t count, veil_kernel kernel)
{
    veil_error err = {0};
    uint64_t q[8];
    veil_ring *r = NULL;
    assert_int_equal(veil_prime_chain(q, bits, count, n, NULL, 0, &err), VEIL_OK);
    veil_ring_options o = {kernel, 1};
    assert_int_equal(veil_ring_new(&r, n, q, count, &o, &err), VEIL_OK);
    return r;
}

/* Random residues, with the extreme values 0 and q-1 mixed in to stress the lazy bounds. */
static void fill(uint64_t *a, size_t n, uint64_t q, int pattern)
{
    for (size_t j = 0; j < n; j++) {
        switch (pattern) {
        case 0: a[j] = next_u64() % q; break;
        case 1: a[j] = q - 1; break;
        case 2: a[j] = (j & 1) ? q - 1 : 0; break;
        default: a[j] = (next_u64() & 1) ? q - 1 - (next_u64() & 3) : next_u64() & 3; break;
        }
    }
}

static void test_round_trip_all_degrees(void **state)
{
    (void)state;
    const unsigned bits[] = {50, 45, 36, 60, 61};
    for (unsigned log_n = VEIL_RING_MIN_LOG_N; log_n <= VEIL_RING_MAX_LOG_N; log_n++) {
        size_t n = (size_t)1 << log_n;
        veil_ring *r = make_ring(n, bits, 5, VEIL_KERNEL_AUTO);
        uint64_t *a = veil_alloc(n, 8), *b = veil_alloc(n, 8);
        for (size_t i = 0; i < 5; i++) {
            uint64_t q = veil_ring_prime(r, i);
            for (int pattern = 0; pattern < 4; pattern++) {
                fill(a, n, q, pattern);
                memcpy(b, a, n * 8);
                assert_int_equal(veil_ntt_forward(r, i, b, NULL), VEIL_OK);
                for (size_t j = 0; j < n; j++) assert_true(b[j] < q);
                assert_int_equal(veil_ntt_inverse(r, i, b, NULL), VEIL_OK);
                assert_memory_equal(a, b, n * 8);
            }
        }
        veil_free(a);
        veil_free(b);
        veil_ring_free(r);
    }
}

/* Position j of the forward transform is the polynomial evaluated at psi^(2*brv(j)+1). */
static void test_matches_definition(void **state)
{
    (void)state;
    const unsigned bits[] = {50, 60};
    for (unsigned log_n = 10; log_n <= 13; log_n += 3) {
        size_t n = (size_t)1 << log_n;
        veil_ring *r = make_ring(n, bits, 2, VEIL_KERNEL_AUTO);
        uint64_t *a = veil_alloc(n, 8), *b = veil_alloc(n, 8);
        for (size_t i = 0; i < 2; i++) {
            const uint64_t q = veil_ring_prime(r, i), psi = r->ntt[i].psi;
            fill(a, n, q, 0);
            memcpy(b, a, n * 8);
            veil_ntt_forward(r, i, b, NULL);
            for (size_t j = 0; j < n; j += n / 64 + 1) {
                uint64_t x = veil_mod_pow(psi, 2 * veil_bitrev(j, log_n) + 1, q), acc = 0;
                for (size_t k = n; k-- > 0;) acc = veil_mod_add(veil_mod_mul(acc, x, q), a[k], q);
                assert_int_equal(b[j], acc);
            }
        }
        veil_free(a);
        veil_free(b);
        veil_ring_free(r);
    }
}

/* NTT product against the schoolbook negacyclic product, N = 1024. */
static void test_product_schoolbook(void **state)
{
    (void)state;
    const size_t n = 1024;
    const unsigned bits[] = {50, 61, 31};
    veil_ring *r = make_ring(n, bits, 3, VEIL_KERNEL_AUTO);
    uint64_t *a = veil_alloc(n, 8), *b = veil_alloc(n, 8), *c = veil_alloc(n, 8), *ref = veil_alloc(n, 8);
    for (size_t i = 0; i < 3; i++) {
        const uint64_t q = veil_ring_prime(r, i);
        fill(a, n, q, 0);
        fill(b, n, q, 3);
        memset(ref, 0, n * 8);
        for (size_t x = 0; x < n; x++)
            for (size_t y = 0; y < n; y++) {
                uint64_t p = veil_mod_mul(a[x], b[y], q);
                size_t k = x + y;
                if (k < n) ref[k] = veil_mod_add(ref[k], p, q);
                else ref[k - n] = veil_mod_sub(ref[k - n], p, q); /* X^n = -1 */
            }
        veil_ntt_forward(r, i, a, NULL);
        veil_ntt_forward(r, i, b, NULL);
        for (size_t j = 0; j < n; j++) c[j] = veil_mod_mul(a[j], b[j], q);
        veil_ntt_inverse(r, i, c, NULL);
        assert_memory_equal(c, ref, n * 8);
    }
    veil_free(a);
    veil_free(b);
    veil_free(c);
    veil_free(ref);
    veil_ring_free(r);
}

/*
 * A ring at the AVX2 level (ifma false: VEIL_NO_AVX512=1 while it is made) or the AVX-512 IFMA level (ifma true:
 * the variable cleared while it is made); the caller's environment is restored either way.
 */
static veil_ring *make_vector_ring(size_t n, const unsigned *bits, size_t count, bool ifma)
{
    const char *old = getenv("VEIL_NO_AVX512");
    char *saved = old ? strdup(old) : NULL;
    if (ifma) unsetenv("VEIL_NO_AVX512");
    else setenv("VEIL_NO_AVX512", "1", 1);
    veil_ring *r = make_ring(n, bits, count, VEIL_KERNEL_AVX2);
    if (saved) setenv("VEIL_NO_AVX512", saved, 1);
    else unsetenv("VEIL_NO_AVX512");
    free(saved);
    return r;
}

/* A vector kernel (AVX2 or IFMA) equals the scalar kernel bit for bit, forward and inverse, at every degree. */
static void vector_equals_scalar(bool ifma)
{
    const unsigned bits[] = {50, 49, 41, 30, 20};
    for (unsigned log_n = VEIL_RING_MIN_LOG_N; log_n <= VEIL_RING_MAX_LOG_N; log_n++) {
        size_t n = (size_t)1 << log_n;
        veil_ring *vec = make_vector_ring(n, bits, 5, ifma);
        veil_ring *sca = make_ring(n, bits, 5, VEIL_KERNEL_SCALAR);
        assert_int_equal(veil_ring_kernel(vec), VEIL_KERNEL_AVX2);
        assert_int_equal(veil_ring_kernel(sca), VEIL_KERNEL_SCALAR);
        assert_true(vec->ifma == ifma);
        assert_false(sca->ifma);
        uint64_t *a = veil_alloc(n, 8), *b = veil_alloc(n, 8);
        for (size_t i = 0; i < 5; i++) {
            assert_true(vec->ntt[i].use_simd);
            assert_true(vec->ntt[i].use_ifma == ifma);
            assert_false(sca->ntt[i].use_ifma);
            const uint64_t q = veil_ring_prime(vec, i);
            for (int pattern = 0; pattern < 4; pattern++) {
                fill(a, n, q, pattern);
                memcpy(b, a, n * 8);
                veil_ntt_forward(vec, i, a, NULL);
                veil_ntt_forward(sca, i, b, NULL);
                assert_memory_equal(a, b, n * 8);
                /* inverse on an arbitrary input (not only on forward outputs) */
                fill(a, n, q, pattern);
                memcpy(b, a, n * 8);
                veil_ntt_inverse(vec, i, a, NULL);
                veil_ntt_inverse(sca, i, b, NULL);
                assert_memory_equal(a, b, n * 8);
            }
        }
        veil_free(a);
        veil_free(b);
        veil_ring_free(vec);
        veil_ring_free(sca);
    }
}

static void test_avx2_equals_scalar(void **state)
{
    (void)state;
    if (!veil_cpu_has_avx2()) skip();
    vector_equals_scalar(false);
}

static void test_ifma_equals_scalar(void **state)
{
    (void)state;
    if (!veil_cpu_has_avx2() || !veil_cpu_has_ifma()) {
        print_message("no AVX-512 IFMA on this CPU: skipped\n");
        return;
    }
    vector_equals_scalar(true);
}

/*
 * The IFMA and AVX2 pointwise products (out = a*b, out += a*b), products by a constant and centered reductions
 * (of rescale and ModDown) equal the 128-bit reference for primes from 20 to 50
 * bits, with the extreme residues mixed in, and lengths that are not a multiple of the lanes.
 */
static void test_vector_products_exact(void **state)
{
    (void)state;
    if (!veil_cpu_has_avx2()) skip();
    const bool ifma = veil_cpu_has_ifma();
    const unsigned bits[] = {50, 49, 47, 41, 36, 30, 26, 20};
    uint64_t q[9];
    veil_error err = {0};
    assert_int_equal(veil_prime_chain(q, bits, 8, 1024, NULL, 0, &err), VEIL_OK);
    /* and the smallest 50-bit NTT prime, where the Barrett quotient estimate is least precise */
    q[8] = ((uint64_t)1 << 49) + 1;
    while (!veil_is_prime(q[8])) q[8] += 2048;
    const size_t n = 1027;
    uint64_t *a = veil_alloc(n, 8), *b = veil_alloc(n, 8), *c = veil_alloc(n, 8), *want = veil_alloc(n, 8);
    uint64_t *got = veil_alloc(n, 8);
    for (size_t i = 0; i < 9; i++) {
        veil_modulus m;
        veil_modulus_init(&m, q[i]);
        for (int pattern = 0; pattern < 4; pattern++) {
            fill(a, n, q[i], pattern);
            fill(b, n, q[i], (pattern + 1) % 4);
            fill(c, n, q[i], (pattern + 3) % 4);
            for (size_t j = 0; j < n; j++) want[j] = veil_reduce128(&m, (veil_u128)a[j] * b[j]);
            veil_mul_avx2(got, a, b, n, q[i]);
            assert_memory_equal(got, want, n * 8);
            if (ifma) {
                veil_mul_ifma(got, a, b, n, q[i]);
                assert_memory_equal(got, want, n * 8);
            }
            for (size_t j = 0; j < n; j++) want[j] = veil_reduce128(&m, (veil_u128)a[j] * b[j] + c[j]);
            memcpy(got, c, n * 8);
            veil_mul_acc_avx2(got, a, b, n, q[i]);
            assert_memory_equal(got, want, n * 8);
            if (ifma) {
                memcpy(got, c, n * 8);
                veil_mul_acc_ifma(got, a, b, n, q[i]);
                assert_memory_equal(got, want, n * 8);
            }
            /* by a constant (b[0]), of a difference, and the centered reduction from another prime */
            for (size_t j = 0; j < n; j++) want[j] = veil_reduce128(&m, (veil_u128)a[j] * b[0]);
            veil_mul_const_avx2(got, a, n, q[i], b[0]);
            assert_memory_equal(got, want, n * 8);
            if (ifma) {
                veil_mul_const_ifma(got, a, n, q[i], b[0]);
                assert_memory_equal(got, want, n * 8);
            }
            for (size_t j = 0; j < n; j++) want[j] = veil_reduce128(&m, (veil_u128)veil_submod(a[j], c[j], q[i]) * b[1]);
            veil_sub_mul_const_avx2(got, a, c, n, q[i], b[1]);
            assert_memory_equal(got, want, n * 8);
            if (ifma) {
                veil_sub_mul_const_ifma(got, a, c, n, q[i], b[1]);
                assert_memory_equal(got, want, n * 8);
            }
            if (ifma) { /* sums and differences (AVX-512F, run at the IFMA level) */
                for (size_t j = 0; j < n; j++) want[j] = veil_addmod(a[j], c[j], q[i]);
                veil_add_sub_avx512(got, a, c, n, q[i], 1);
                assert_memory_equal(got, want, n * 8);
                for (size_t j = 0; j < n; j++) want[j] = veil_submod(a[j], c[j], q[i]);
                veil_add_sub_avx512(got, a, c, n, q[i], 0);
                assert_memory_equal(got, want, n * 8);
                for (size_t j = 0; j < n; j++) want[j] = veil_submod(0, a[j], q[i]);
                veil_add_sub_avx512(got, a, NULL, n, q[i], 0);
                assert_memory_equal(got, want, n * 8);
            }
            if (ifma) { /* the base conversion's dot product: up to 16 terms below 2^50, weights below q */
                const size_t terms = (size_t)(pattern * 5 + 1), stride = 1032;
                uint64_t *ys = veil_alloc(terms * stride, 8), w[16];
                for (size_t k = 0; k < terms; k++) {
                    fill(ys + k * stride, n, q[(i + k) % 9], (pattern + (int)k) % 4);
                    w[k] = k % 2 ? q[i] - 1 : next_u64() % q[i];
                }
                for (size_t j = 0; j < n; j++) {
                    veil_u128 acc = 0;
                    for (size_t k = 0; k < terms; k++) acc += (veil_u128)ys[k * stride + j] * w[k];
                    want[j] = veil_reduce128(&m, acc);
                }
                veil_dot_const_ifma(got, ys, stride, terms, w, n, q[i]);
                assert_memory_equal(got, want, n * 8);
                veil_free(ys);
            }
            const uint64_t qf = q[(i + 1) % 9];
            fill(a, n, qf, pattern);
            for (size_t j = 0; j < n; j++) {
                const uint64_t r = a[j] % q[i], sub = a[j] > qf / 2 ? qf % q[i] : 0;
                want[j] = veil_submod(r, sub, q[i]);
            }
            veil_center_reduce_avx2(got, a, n, qf, q[i]);
            assert_memory_equal(got, want, n * 8);
            if (ifma) {
                veil_center_reduce_ifma(got, a, n, qf, q[i]);
                assert_memory_equal(got, want, n * 8);
            }
        }
    }
    veil_free(a);
    veil_free(b);
    veil_free(c);
    veil_free(want);
    veil_free(got);
}

/* Primes of 2^50 and above use the scalar kernel even in an AVX2 ring (round trips: see above). */
static void test_wide_primes_stay_scalar(void **state)
{
    (void)state;
    if (!veil_cpu_has_avx2()) skip();
    const unsigned bits[] = {51, 61};
    veil_ring *r = make_ring(4096, bits, 2, VEIL_KERNEL_AVX2);
    assert_false(r->ntt[0].use_simd);
    assert_false(r->ntt[1].use_simd);
    assert_false(r->ntt[0].use_ifma);
    assert_false(r->ntt[1].use_ifma);
    veil_ring_free(r);
}

static void test_env_forces_scalar(void **state)
{
    (void)state;
    const unsigned bits[] = {50};
    veil_ring *r = make_ring(1024, bits, 1, VEIL_KERNEL_AUTO);
    const char *env = getenv("VEIL_NO_AVX2");
    const bool no_avx2 = env && strcmp(env, "1") == 0;
    if (no_avx2) assert_int_equal(veil_ring_kernel(r), VEIL_KERNEL_SCALAR);
    else assert_int_equal(veil_ring_kernel(r), veil_cpu_has_avx2() ? VEIL_KERNEL_AVX2 : VEIL_KERNEL_SCALAR);
    /* VEIL_NO_AVX512=1 keeps the AVX2 level; otherwise the IFMA one wherever AVX2 and IFMA are both there */
    const char *env512 = getenv("VEIL_NO_AVX512");
    const bool want_ifma = !no_avx2 && veil_cpu_has_avx2() && veil_cpu_has_ifma() && !(env512 && strcmp(env512, "1") == 0);
    assert_true(r->ifma == want_ifma);
    assert_true(r->ntt[0].use_ifma == want_ifma);
    print_message("NTT level: %s\n", want_ifma ? "AVX-512 IFMA" : no_avx2 || !veil_cpu_has_avx2() ? "scalar" : "AVX2");
    veil_ring_free(r);
}

/*
 * The AVX-512 IFMA dot product is exact: hi * 2^52 + lo equals the 128-bit sum of the products, for residues up
 * to 2^52 - 1, up to 4096 terms, and lengths that are not a multiple of its 8 lanes (skipped on CPUs without it).
 */
static void test_ifma_dot_exact(void **state)
{
    (void)state;
    if (!veil_cpu_has_ifma()) {
        print_message("no AVX-512 IFMA on this CPU: skipped\n");
        return;
    }
    static const size_t terms_cases[] = {1, 7, 32, 4096}, n_cases[] = {8, 256, 1000};
    const uint64_t top = ((uint64_t)1 << 52) - 1;
    for (size_t a = 0; a < sizeof terms_cases / sizeof *terms_cases; a++)
        for (size_t b = 0; b < sizeof n_cases / sizeof *n_cases; b++) {
            const size_t terms = terms_cases[a], n = n_cases[b];
            uint64_t *w = malloc(terms * sizeof *w), *lo = malloc(n * sizeof *lo), *hi = malloc(n * sizeof *hi);
            uint64_t **y = malloc(terms * sizeof *y);
            assert_non_null(w);
            assert_non_null(lo);
            assert_non_null(hi);
            assert_non_null(y);
            for (size_t i = 0; i < terms; i++) {
                w[i] = i % 3 == 0 ? top : next_u64() & top;
                assert_non_null(y[i] = malloc(n * sizeof *y[i]));
                for (size_t t = 0; t < n; t++) y[i][t] = (i + t) % 5 == 0 ? top : next_u64() & top;
            }
            veil_dot_ptrs_ifma(lo, hi, (const uint64_t *const *)y, terms, w, n);
            for (size_t t = 0; t < n; t++) {
                veil_u128 want = 0;
                for (size_t i = 0; i < terms; i++) want += (veil_u128)w[i] * y[i][t];
                assert_true(((veil_u128)hi[t] << 52) + lo[t] == want);
            }
            for (size_t i = 0; i < terms; i++) free(y[i]);
            free(y);
            free(w);
            free(lo);
            free(hi);
        }
}

static void test_bad_arguments(void **state)
{
    (void)state;
    veil_error err = {0};
    veil_ring *r = NULL;
    uint64_t q[2];
    unsigned bits[] = {50, 50};
    assert_int_equal(veil_prime_chain(q, bits, 2, 1024, NULL, 0, &err), VEIL_OK);
    assert_int_equal(veil_ring_new(&r, 1000, q, 2, NULL, &err), VEIL_ERR_ARGUMENT);
    assert_non_null(strstr(err.detail, "power of two"));
    assert_null(r);
    assert_int_equal(veil_ring_new(&r, 512, q, 2, NULL, &err), VEIL_ERR_ARGUMENT);
    assert_int_equal(veil_ring_new(&r, 1 << 18, q, 2, NULL, &err), VEIL_ERR_ARGUMENT);
    assert_int_equal(veil_ring_new(&r, 1024, q, 0, NULL, &err), VEIL_ERR_ARGUMENT);
    assert_int_equal(veil_ring_new(&r, 1024, NULL, 2, NULL, &err), VEIL_ERR_NULL);
    assert_int_equal(veil_ring_new(NULL, 1024, q, 2, NULL, &err), VEIL_ERR_NULL);
    /* a prime that is not 1 mod 2n (q is 1 mod 2048, so not mod 4096 in general) */
    uint64_t not_friendly = 1099511627689ULL; /* prime, = 2^40 - 87 */
    assert_int_equal(veil_ring_new(&r, 1024, &not_friendly, 1, NULL, &err), VEIL_ERR_ARGUMENT);
    assert_non_null(strstr(err.detail, "NTT-friendly"));
    uint64_t composite = q[0] + 2048; /* 1 mod 2n but (checked) not prime, or fall back below */
    while (veil_is_prime(composite)) composite += 2048;
    assert_int_equal(veil_ring_new(&r, 1024, &composite, 1, NULL, &err), VEIL_ERR_ARGUMENT);
    uint64_t dup[2] = {q[0], q[0]};
    assert_int_equal(veil_ring_new(&r, 1024, dup, 2, NULL, &err), VEIL_ERR_ARGUMENT);
    uint64_t too_big = 4611686018427387847ULL;
    assert_int_equal(veil_ring_new(&r, 1024, &too_big, 1, NULL, &err), VEIL_ERR_ARGUMENT);
    veil_ring_options bad = {(veil_kernel)7, 1};
    assert_int_equal(veil_ring_new(&r, 1024, q, 2, &bad, &err), VEIL_ERR_ARGUMENT);
    veil_ring_options neg = {VEIL_KERNEL_AUTO, -1};
    assert_int_equal(veil_ring_new(&r, 1024, q, 2, &neg, &err), VEIL_ERR_ARGUMENT);

    assert_int_equal(veil_ring_new(&r, 1024, q, 2, NULL, &err), VEIL_OK);
    uint64_t *a = veil_alloc(1024, 8);
    assert_int_equal(veil_ntt_forward(r, 2, a, &err), VEIL_ERR_ARGUMENT);
    assert_int_equal(veil_ntt_forward(r, 0, NULL, &err), VEIL_ERR_NULL);
    assert_int_equal(veil_ntt_inverse(NULL, 0, a, &err), VEIL_ERR_NULL);
    a[17] = q[0];
    assert_int_equal(veil_ntt_forward(r, 0, a, &err), VEIL_ERR_ARGUMENT);
    assert_non_null(strstr(err.detail, "not below"));
    assert_int_equal(veil_ring_set_threads(r, 0, &err), VEIL_ERR_ARGUMENT);
    veil_free(a);
    veil_ring_free(r);
    veil_ring_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_all_degrees),
        cmocka_unit_test(test_matches_definition),
        cmocka_unit_test(test_product_schoolbook),
        cmocka_unit_test(test_avx2_equals_scalar),
        cmocka_unit_test(test_ifma_equals_scalar),
        cmocka_unit_test(test_vector_products_exact),
        cmocka_unit_test(test_wide_primes_stay_scalar),
        cmocka_unit_test(test_env_forces_scalar),
        cmocka_unit_test(test_ifma_dot_exact),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
