/*
 * Galois automorphisms X -> X^k: inverse exponent gives the identity in both forms, the two forms
 * agree, the map is a ring homomorphism, and bad exponents are refused. Run with both NTT kernels.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdint.h>
#include <string.h>
#include "ring/ring_internal.h"

typedef struct fixture {
    veil_ring *ring;
    veil_prng *prng;
    size_t n, count;
} fixture;

static fixture make(size_t n)
{
    fixture f = {NULL, NULL, n, 4};
    const unsigned bits[] = {50, 50, 40, 60};
    uint64_t q[4];
    uint8_t seed[VEIL_SEED_BYTES] = {77};
    assert_int_equal(veil_prime_chain(q, bits, 4, n, NULL, 0, NULL), VEIL_OK);
    assert_int_equal(veil_ring_new(&f.ring, n, q, 4, NULL, NULL), VEIL_OK);
    assert_int_equal(veil_prng_new_seeded(&f.prng, seed, n, NULL), VEIL_OK);
    return f;
}

static veil_poly *poly(const fixture *f, veil_form form, int random)
{
    veil_poly *p = NULL;
    assert_int_equal(veil_poly_new_range(&p, f->ring, 0, f->count, form, NULL), VEIL_OK);
    if (random) assert_int_equal(veil_sample_uniform(p, f->prng, NULL), VEIL_OK);
    return p;
}

static void assert_poly_equal(const veil_poly *a, const veil_poly *b)
{
    assert_int_equal(veil_poly_form(a), veil_poly_form(b));
    assert_memory_equal(veil_poly_limb_const(a, 0), veil_poly_limb_const(b, 0),
                        veil_poly_limb_count(a) * veil_ring_degree(veil_poly_ring(a)) * sizeof(uint64_t));
}

/* Exponents used: conjugation 2n-1, rotations 5^r mod 2n, and a few other odd values. */
static size_t exponents(uint64_t *k, size_t n)
{
    size_t c = 0;
    uint64_t m = 2 * n, g = 1;
    k[c++] = 1;
    k[c++] = m - 1;
    for (int r = 1; r <= 5; r++) {
        g = g * 5 % m;
        k[c++] = g;
    }
    k[c++] = m - 5; /* 5^-r family with conjugation */
    k[c++] = 3;
    k[c++] = m / 2 + 1;
    return c;
}

static void test_inverse_is_identity(void **state)
{
    (void)state;
    for (size_t n = 1024; n <= 4096; n *= 4) {
        fixture f = make(n);
        uint64_t ks[16];
        size_t nk = exponents(ks, n);
        for (int form = 0; form < 2; form++) {
            veil_poly *a = poly(&f, form ? VEIL_FORM_EVAL : VEIL_FORM_COEFF, 1);
            veil_poly *b = poly(&f, VEIL_FORM_COEFF, 0), *c = poly(&f, VEIL_FORM_COEFF, 0);
            for (size_t i = 0; i < nk; i++) {
                uint64_t kinv;
                assert_int_equal(veil_mod_inv(&kinv, ks[i], 2 * n, NULL), VEIL_OK);
                assert_int_equal(veil_poly_automorphism(b, a, ks[i], NULL), VEIL_OK);
                assert_int_equal(veil_poly_automorphism(c, b, kinv, NULL), VEIL_OK);
                assert_poly_equal(c, a);
                if (ks[i] != 1) assert_memory_not_equal(veil_poly_limb(b, 0), veil_poly_limb(a, 0), n * sizeof(uint64_t));
            }
            veil_poly_free(a);
            veil_poly_free(b);
            veil_poly_free(c);
        }
        veil_prng_free(f.prng);
        veil_ring_free(f.ring);
    }
}

/* sigma_k in coefficient form, then NTT, equals NTT then sigma_k in evaluation form. */
static void test_forms_agree(void **state)
{
    (void)state;
    for (size_t n = 1024; n <= 4096; n *= 4) {
        fixture f = make(n);
        uint64_t ks[16];
        size_t nk = exponents(ks, n);
        veil_poly *a = poly(&f, VEIL_FORM_COEFF, 1), *ae = poly(&f, VEIL_FORM_COEFF, 0);
        veil_poly *b = poly(&f, VEIL_FORM_COEFF, 0), *c = poly(&f, VEIL_FORM_COEFF, 0);
        veil_poly_copy(ae, a, NULL);
        veil_poly_to_eval(ae, NULL);
        for (size_t i = 0; i < nk; i++) {
            assert_int_equal(veil_poly_automorphism(b, a, ks[i], NULL), VEIL_OK);
            veil_poly_to_eval(b, NULL);
            assert_int_equal(veil_poly_automorphism(c, ae, ks[i], NULL), VEIL_OK);
            assert_poly_equal(b, c);
        }
        /* the definition on a monomial: X -> X^k, and X^(n-1) -> -X^... with the sign of X^n = -1 */
        veil_poly *x = poly(&f, VEIL_FORM_COEFF, 0);
        for (size_t l = 0; l < f.count; l++) veil_poly_limb(x, l)[1] = 1;
        assert_int_equal(veil_poly_automorphism(b, x, 2 * n - 1, NULL), VEIL_OK);
        for (size_t l = 0; l < f.count; l++) {
            /* X^(2n-1) = X^(2n) * X^-1 = -X^(n-1) * X^n * ... : X^(2n-1) = -X^(n-1) */
            assert_int_equal(veil_poly_limb(b, l)[n - 1], veil_ring_prime(f.ring, l) - 1);
            assert_int_equal(veil_poly_limb(b, l)[1], 0);
        }
        veil_poly_free(x);
        veil_poly_free(a);
        veil_poly_free(ae);
        veil_poly_free(b);
        veil_poly_free(c);
        veil_prng_free(f.prng);
        veil_ring_free(f.ring);
    }
}

/* sigma(a * b) = sigma(a) * sigma(b), products in evaluation form. */
static void test_homomorphism(void **state)
{
    (void)state;
    fixture f = make(2048);
    veil_poly *a = poly(&f, VEIL_FORM_COEFF, 1), *b = poly(&f, VEIL_FORM_COEFF, 1);
    veil_poly *ab = poly(&f, VEIL_FORM_COEFF, 0), *sa = poly(&f, VEIL_FORM_COEFF, 0);
    veil_poly *sb = poly(&f, VEIL_FORM_COEFF, 0), *sab = poly(&f, VEIL_FORM_COEFF, 0);
    const uint64_t k = 25; /* 5^2 */
    veil_poly_to_eval(a, NULL);
    veil_poly_to_eval(b, NULL);
    veil_poly_mul(ab, a, b, NULL);
    veil_poly_to_coeff(ab, NULL);
    veil_poly_automorphism(sab, ab, k, NULL); /* coefficient form */
    veil_poly_to_coeff(a, NULL);
    veil_poly_to_coeff(b, NULL);
    veil_poly_automorphism(sa, a, k, NULL);
    veil_poly_automorphism(sb, b, k, NULL);
    veil_poly_to_eval(sa, NULL);
    veil_poly_to_eval(sb, NULL);
    veil_poly_mul(sa, sa, sb, NULL);
    veil_poly_to_coeff(sa, NULL);
    assert_poly_equal(sa, sab);
    veil_poly_free(a);
    veil_poly_free(b);
    veil_poly_free(ab);
    veil_poly_free(sa);
    veil_poly_free(sb);
    veil_poly_free(sab);
    veil_prng_free(f.prng);
    veil_ring_free(f.ring);
}

/*
 * The evaluation-form permutation (computed block by block, automorph.c) equals its definition
 * perm[j] = brv(((2 brv(j) + 1) k mod 2n - 1) / 2) for every odd k, and applying it (one permuted block load per
 * eight slots at the IFMA level, a scalar loop otherwise) equals the scalar gather out[j] = in[perm[j]].
 */
static void test_permutation_matches_definition(void **state)
{
    (void)state;
    const size_t sizes[] = {1024, 2048};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        const size_t n = sizes[s];
        fixture f = make(n);
        uint32_t *perm = veil_alloc(n, sizeof *perm);
        uint64_t *in = veil_alloc(n, sizeof *in), *out = veil_alloc(n, sizeof *out);
        assert_non_null(perm);
        assert_non_null(in);
        assert_non_null(out);
        for (size_t j = 0; j < n; j++) in[j] = 1000003 * (uint64_t)j + 17;
        for (uint64_t k = 1; k < 2 * n; k += 2) {
            veil_automorphism_permutation(perm, f.ring, k);
            for (size_t j = 0; j < n; j++) {
                const uint64_t e = ((2 * (uint64_t)f.ring->bitrev[j] + 1) * k) & (2 * n - 1);
                assert_int_equal(perm[j], f.ring->bitrev[(e - 1) >> 1]);
            }
            veil_permute_slots(f.ring, out, in, perm);
            for (size_t j = 0; j < n; j++) assert_int_equal(out[j], in[perm[j]]);
        }
        veil_free(perm);
        veil_free(in);
        veil_free(out);
        veil_prng_free(f.prng);
        veil_ring_free(f.ring);
    }
}

static void test_bad_arguments(void **state)
{
    (void)state;
    fixture f = make(1024);
    veil_error err = {0};
    veil_poly *a = poly(&f, VEIL_FORM_COEFF, 1), *b = poly(&f, VEIL_FORM_COEFF, 0), *c = NULL;
    assert_int_equal(veil_poly_new_range(&c, f.ring, 0, 2, VEIL_FORM_COEFF, NULL), VEIL_OK);
    assert_int_equal(veil_poly_automorphism(b, a, 4, &err), VEIL_ERR_ARGUMENT);
    assert_non_null(strstr(err.detail, "odd"));
    assert_int_equal(veil_poly_automorphism(b, a, 0, &err), VEIL_ERR_ARGUMENT);
    assert_int_equal(veil_poly_automorphism(b, a, 2049, &err), VEIL_ERR_ARGUMENT);
    assert_int_equal(veil_poly_automorphism(a, a, 5, &err), VEIL_ERR_ARGUMENT);
    assert_int_equal(veil_poly_automorphism(c, a, 5, &err), VEIL_ERR_MISMATCH);
    assert_int_equal(veil_poly_automorphism(NULL, a, 5, &err), VEIL_ERR_NULL);
    veil_poly_free(a);
    veil_poly_free(b);
    veil_poly_free(c);
    veil_prng_free(f.prng);
    veil_ring_free(f.ring);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inverse_is_identity),
        cmocka_unit_test(test_forms_agree),
        cmocka_unit_test(test_homomorphism),
        cmocka_unit_test(test_permutation_matches_definition),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
