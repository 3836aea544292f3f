/*
 * RNS polynomials: element-wise operations against per-residue arithmetic, the NTT product against the
 * big-integer negacyclic product (FLINT) after CRT composition, CRT round trips against GMP, thread-count
 * independence, and argument errors. Run twice by ctest (AVX2 and VEIL_NO_AVX2=1).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <gmp.h>
#include <flint/fmpz.h>
#include <flint/fmpz_poly.h>
#include "ring/ring_internal.h"

static veil_ring *make_ring(size_t n, const unsigned *bits, size_t count)
{
    uint64_t q[16];
    veil_ring *r = NULL;
    veil_error err = {0};
    assert_int_equal(veil_prime_chain(q, bits, count, n, NULL, 0, &err), VEIL_OK);
    assert_int_equal(veil_ring_new(&r, n, q, count, NULL, &err), VEIL_OK);
    return r;
}

static veil_poly *random_poly(const veil_ring *r, size_t count, veil_form form, veil_prng *prng)
{
    veil_poly *p = NULL;
    assert_int_equal(veil_poly_new_range(&p, r, 0, count, form, NULL), VEIL_OK);
    assert_int_equal(veil_sample_uniform(p, prng, NULL), VEIL_OK);
    return p;
}

static veil_prng *test_prng(uint8_t tag)
{
    uint8_t seed[VEIL_SEED_BYTES] = {tag};
    veil_prng *p = NULL;
    assert_int_equal(veil_prng_new_seeded(&p, seed, 0, NULL), VEIL_OK);
    return p;
}

/* One form: every element-wise operation against veil_mod_* on each residue (products only in NTT form). */
static void elementwise_in_form(veil_form form)
{
    const unsigned bits[] = {50, 49, 61, 36};
    veil_ring *r = make_ring(2048, bits, 4);
    veil_prng *prng = test_prng((uint8_t)(1 + 16 * form));
    veil_poly *a = random_poly(r, 4, form, prng), *b = random_poly(r, 4, form, prng);
    veil_poly *o = random_poly(r, 4, form, prng), *acc = random_poly(r, 4, VEIL_FORM_EVAL, prng);
    veil_poly *acc0 = NULL;
    veil_error err = {0};
    assert_int_equal(veil_poly_new_range(&acc0, r, 0, 4, VEIL_FORM_EVAL, NULL), VEIL_OK);
    assert_int_equal(veil_poly_copy(acc0, acc, NULL), VEIL_OK);
    const int64_t scalars[] = {0, 1, -1, 7, -123456789, INT64_MAX, INT64_MIN, (int64_t)1 << 62, -((int64_t)1 << 61) - 5};
    const int nscalars = (int)(sizeof scalars / sizeof *scalars);
    for (int op = 0; op < 5 + nscalars; op++) {
        if (form == VEIL_FORM_COEFF && (op == 3 || op == 4)) { /* products need evaluation form */
            err.detail[0] = '\0';
            assert_int_equal(op == 3 ? veil_poly_mul(o, a, b, &err) : veil_poly_mul_acc(o, a, b, &err), VEIL_ERR_MISMATCH);
            assert_true(err.detail[0] != '\0');
            continue;
        }
        switch (op) {
        case 0: assert_int_equal(veil_poly_add(o, a, b, NULL), VEIL_OK); break;
        case 1: assert_int_equal(veil_poly_sub(o, a, b, NULL), VEIL_OK); break;
        case 2: assert_int_equal(veil_poly_neg(o, a, NULL), VEIL_OK); break;
        case 3: assert_int_equal(veil_poly_mul(o, a, b, NULL), VEIL_OK); break;
        case 4: assert_int_equal(veil_poly_mul_acc(acc, a, b, NULL), VEIL_OK); break;
        default: assert_int_equal(veil_poly_mul_scalar(o, a, scalars[op - 5], NULL), VEIL_OK); break;
        }
        if (op != 4) assert_int_equal(veil_poly_form(o), form);
        for (size_t l = 0; l < 4; l++) {
            const uint64_t q = veil_ring_prime(r, l);
            const uint64_t *x = veil_poly_limb(a, l), *y = veil_poly_limb(b, l), *z = veil_poly_limb(o, l);
            for (size_t j = 0; j < 2048; j++) {
                uint64_t expect;
                switch (op) {
                case 0: expect = veil_mod_add(x[j], y[j], q); break;
                case 1: expect = veil_mod_sub(x[j], y[j], q); break;
                case 2: expect = veil_mod_sub(0, x[j], q); break;
                case 3: expect = veil_mod_mul(x[j], y[j], q); break;
                case 4:
                    expect = veil_mod_add(veil_poly_limb(acc0, l)[j], veil_mod_mul(x[j], y[j], q), q);
                    assert_int_equal(veil_poly_limb(acc, l)[j], expect);
                    continue;
                default: {
                    int64_t s = scalars[op - 5];
                    veil_i128 sm = s % (veil_i128)q;
                    if (sm < 0) sm += q;
                    expect = veil_mod_mul(x[j], (uint64_t)sm, q);
                }
                }
                assert_int_equal(z[j], expect);
            }
        }
    }
    /* in-place use: out aliases an input */
    assert_int_equal(veil_poly_copy(o, a, NULL), VEIL_OK);
    assert_int_equal(veil_poly_add(o, o, o, NULL), VEIL_OK);
    for (size_t j = 0; j < 2048; j++)
        assert_int_equal(veil_poly_limb(o, 0)[j], veil_mod_add(veil_poly_limb(a, 0)[j], veil_poly_limb(a, 0)[j], veil_ring_prime(r, 0)));
    assert_int_equal(veil_poly_mul_scalar(o, o, -3, NULL), VEIL_OK);
    for (size_t j = 0; j < 2048; j++) {
        const uint64_t q = veil_ring_prime(r, 2), two_a = veil_mod_add(veil_poly_limb(a, 2)[j], veil_poly_limb(a, 2)[j], q);
        assert_int_equal(veil_poly_limb(o, 2)[j], veil_mod_mul(two_a, q - 3, q));
    }
    veil_poly_free(a);
    veil_poly_free(b);
    veil_poly_free(o);
    veil_poly_free(acc);
    veil_poly_free(acc0);
    veil_prng_free(prng);
    veil_ring_free(r);
}

static void test_elementwise(void **state)
{
    (void)state;
    elementwise_in_form(VEIL_FORM_EVAL);
    elementwise_in_form(VEIL_FORM_COEFF);
}

/* Compose every coefficient of p into an fmpz (the integer in [0, Q)). */
static void to_fmpz_poly(fmpz_poly_t out, const veil_poly *p, size_t n, size_t words)
{
    uint64_t *w = malloc(n * words * sizeof *w);
    assert_int_equal(veil_poly_crt_compose(w, words, p, NULL), VEIL_OK);
    mpz_t z;
    mpz_init(z);
    fmpz_poly_zero(out);
    for (size_t j = 0; j < n; j++) {
        mpz_import(z, words, -1, sizeof(uint64_t), 0, 0, w + j * words);
        fmpz_t f;
        fmpz_init(f);
        fmpz_set_mpz(f, z);
        fmpz_poly_set_coeff_fmpz(out, (slong)j, f);
        fmpz_clear(f);
    }
    mpz_clear(z);
    free(w);
}

/* The NTT product over several primes equals the integer negacyclic product reduced mod Q. */
static void test_product_against_flint(void **state)
{
    (void)state;
    const unsigned bits[] = {50, 50, 45, 60};
    const size_t sizes[] = {1024, 8192};
    for (size_t s = 0; s < 2; s++) {
        const size_t n = sizes[s], words = 4;
        veil_ring *r = make_ring(n, bits, 4);
        veil_prng *prng = test_prng(2);
        veil_poly *a = random_poly(r, 4, VEIL_FORM_COEFF, prng), *b = random_poly(r, 4, VEIL_FORM_COEFF, prng);
        fmpz_poly_t fa, fb, fc, fr;
        fmpz_poly_init(fa);
        fmpz_poly_init(fb);
        fmpz_poly_init(fc);
        fmpz_poly_init(fr);
        to_fmpz_poly(fa, a, n, words);
        to_fmpz_poly(fb, b, n, words);
        fmpz_poly_mul(fc, fa, fb);
        fmpz_t Q, c, hi;
        fmpz_init(Q);
        fmpz_init(c);
        fmpz_init(hi);
        fmpz_one(Q);
        for (size_t i = 0; i < 4; i++) fmpz_mul_ui(Q, Q, veil_ring_prime(r, i));
        /* reduce mod X^n + 1, then mod Q */
        for (size_t j = 0; j < n; j++) {
            fmpz_poly_get_coeff_fmpz(c, fc, (slong)j);
            fmpz_poly_get_coeff_fmpz(hi, fc, (slong)(j + n));
            fmpz_sub(c, c, hi);
            fmpz_mod(c, c, Q);
            fmpz_poly_set_coeff_fmpz(fr, (slong)j, c);
        }
        assert_int_equal(veil_poly_to_eval(a, NULL), VEIL_OK);
        assert_int_equal(veil_poly_to_eval(b, NULL), VEIL_OK);
        assert_int_equal(veil_poly_mul(a, a, b, NULL), VEIL_OK);
        assert_int_equal(veil_poly_to_coeff(a, NULL), VEIL_OK);
        fmpz_poly_t got;
        fmpz_poly_init(got);
        to_fmpz_poly(got, a, n, words);
        assert_true(fmpz_poly_equal(got, fr));
        fmpz_poly_clear(got);
        fmpz_clear(Q);
        fmpz_clear(c);
        fmpz_clear(hi);
        fmpz_poly_clear(fa);
        fmpz_poly_clear(fb);
        fmpz_poly_clear(fc);
        fmpz_poly_clear(fr);
        veil_poly_free(a);
        veil_poly_free(b);
        veil_prng_free(prng);
        veil_ring_free(r);
    }
}

/* CRT composition against GMP: residues of a random integer compose back to it, and back again. */
static void test_crt_round_trip(void **state)
{
    (void)state;
    const unsigned bits[] = {61, 50, 50, 40, 30, 55};
    const size_t n = 1024, words = 5;
    veil_ring *r = make_ring(n, bits, 6);
    veil_prng *prng = test_prng(3);
    veil_poly *p = random_poly(r, 6, VEIL_FORM_COEFF, prng), *back = NULL;
    assert_int_equal(veil_poly_new_range(&back, r, 0, 6, VEIL_FORM_EVAL, NULL), VEIL_OK);
    uint64_t *w = malloc(n * words * sizeof *w);
    assert_int_equal(veil_poly_crt_compose(w, words, p, NULL), VEIL_OK);
    mpz_t x, Q, rem;
    mpz_inits(x, Q, rem, NULL);
    mpz_set_ui(Q, 1);
    for (size_t i = 0; i < 6; i++) mpz_mul_ui(Q, Q, veil_ring_prime(r, i));
    for (size_t j = 0; j < n; j++) {
        mpz_import(x, words, -1, sizeof(uint64_t), 0, 0, w + j * words);
        assert_true(mpz_cmp(x, Q) < 0);
        for (size_t i = 0; i < 6; i++) assert_int_equal(mpz_fdiv_ui(x, veil_ring_prime(r, i)), veil_poly_limb(p, i)[j]);
    }
    assert_int_equal(veil_poly_set_multiword(back, w, words, NULL), VEIL_OK);
    assert_int_equal(veil_poly_form(back), VEIL_FORM_COEFF);
    assert_memory_equal(veil_poly_limb(back, 0), veil_poly_limb(p, 0), 6 * n * sizeof(uint64_t));
    /* too few words for Q */
    veil_error err = {0};
    assert_int_equal(veil_poly_crt_compose(w, 2, p, &err), VEIL_ERR_ARGUMENT);
    assert_true(err.detail[0] != '\0');
    /* evaluation form is refused */
    assert_int_equal(veil_poly_to_eval(p, NULL), VEIL_OK);
    assert_int_equal(veil_poly_crt_compose(w, words, p, &err), VEIL_ERR_MISMATCH);
    mpz_clears(x, Q, rem, NULL);
    free(w);
    veil_poly_free(p);
    veil_poly_free(back);
    veil_prng_free(prng);
    veil_ring_free(r);
}

/*
 * set_multiword against GMP on integers far above Q (8 words, all-ones words included), over a base not in
 * ring order; crt_compose with more words than needed pads with zeros, and a one-limb poly composes to
 * its residues.
 */
static void test_multiword_against_gmp(void **state)
{
    (void)state;
    const unsigned bits[] = {61, 50, 50, 40, 30, 55};
    const size_t n = 1024, words = 8, base[4] = {5, 0, 3, 1};
    veil_ring *r = make_ring(n, bits, 6);
    veil_prng *prng = test_prng(5);
    veil_poly *p = NULL, *one = NULL;
    assert_int_equal(veil_poly_new(&p, r, base, 4, VEIL_FORM_EVAL, NULL), VEIL_OK);
    assert_int_equal(veil_poly_new(&one, r, base + 1, 1, VEIL_FORM_COEFF, NULL), VEIL_OK);
    uint64_t *w = malloc(n * words * sizeof *w), *back = malloc(n * words * sizeof *back);
    veil_prng_bytes(prng, w, n * words * sizeof *w);
    for (size_t k = 0; k < words; k++) {
        w[0 * words + k] = 0;          /* 0 */
        w[1 * words + k] = UINT64_MAX; /* 2^512 - 1 */
        w[2 * words + k] = k == 0;     /* 1 */
    }
    assert_int_equal(veil_poly_set_multiword(p, w, words, NULL), VEIL_OK);
    assert_int_equal(veil_poly_form(p), VEIL_FORM_COEFF);
    mpz_t x, Q, y;
    mpz_inits(x, Q, y, NULL);
    mpz_set_ui(Q, 1);
    for (size_t i = 0; i < 4; i++) mpz_mul_ui(Q, Q, veil_ring_prime(r, base[i]));
    for (size_t j = 0; j < n; j++) {
        mpz_import(x, words, -1, sizeof(uint64_t), 0, 0, w + j * words);
        for (size_t i = 0; i < 4; i++)
            assert_int_equal(mpz_fdiv_ui(x, veil_ring_prime(r, base[i])), veil_poly_limb(p, i)[j]);
    }
    /* compose back: x mod Q, little-endian, zero above Q's words */
    memset(back, 0xAB, n * words * sizeof *back);
    assert_int_equal(veil_poly_crt_compose(back, words, p, NULL), VEIL_OK);
    for (size_t j = 0; j < n; j++) {
        mpz_import(x, words, -1, sizeof(uint64_t), 0, 0, w + j * words);
        mpz_mod(x, x, Q);
        mpz_import(y, words, -1, sizeof(uint64_t), 0, 0, back + j * words);
        assert_int_equal(mpz_cmp(x, y), 0);
        for (size_t k = 4; k < words; k++) assert_int_equal(back[j * words + k], 0); /* Q < 2^206 */
    }
    /* one word per coefficient, and a single-limb poly */
    assert_int_equal(veil_poly_set_multiword(one, w, 1, NULL), VEIL_OK);
    const uint64_t q0 = veil_ring_prime(r, base[1]);
    for (size_t j = 0; j < n; j++) assert_int_equal(veil_poly_limb(one, 0)[j], w[j] % q0);
    assert_int_equal(veil_poly_crt_compose(back, 1, one, NULL), VEIL_OK);
    for (size_t j = 0; j < n; j++) assert_int_equal(back[j], w[j] % q0);
    /* errors */
    veil_error err = {0};
    assert_int_equal(veil_poly_set_multiword(p, w, 0, &err), VEIL_ERR_ARGUMENT);
    assert_true(err.detail[0] != '\0');
    err.detail[0] = '\0';
    assert_int_equal(veil_poly_set_multiword(p, NULL, words, &err), VEIL_ERR_NULL);
    assert_true(err.detail[0] != '\0');
    assert_int_equal(veil_poly_set_multiword(NULL, w, words, &err), VEIL_ERR_NULL);
    assert_int_equal(veil_poly_crt_compose(NULL, words, p, &err), VEIL_ERR_NULL);
    assert_int_equal(veil_poly_crt_compose(back, words, NULL, &err), VEIL_ERR_NULL);
    err.detail[0] = '\0';
    assert_int_equal(veil_poly_crt_compose(back, 3, p, &err), VEIL_ERR_ARGUMENT); /* Q needs 4 words */
    assert_true(err.detail[0] != '\0');
    mpz_clears(x, Q, y, NULL);
    free(w);
    free(back);
    veil_poly_free(p);
    veil_poly_free(one);
    veil_prng_free(prng);
    veil_ring_free(r);
}

/* Every operation gives the same bits with one thread and with two. */
static void test_thread_count_independent(void **state)
{
    (void)state;
    const unsigned bits[] = {50, 50, 50, 50, 50, 61};
    veil_ring *r = make_ring(4096, bits, 6);
    veil_prng *prng = test_prng(4);
    veil_poly *a = random_poly(r, 6, VEIL_FORM_COEFF, prng), *b = random_poly(r, 6, VEIL_FORM_COEFF, prng);
    veil_poly *out[2] = {NULL, NULL};
    for (int t = 0; t < 2; t++) {
        assert_int_equal(veil_ring_set_threads(r, t + 1, NULL), VEIL_OK);
        veil_poly *x = NULL, *y = NULL;
        assert_int_equal(veil_poly_new_range(&x, r, 0, 6, VEIL_FORM_COEFF, NULL), VEIL_OK);
        assert_int_equal(veil_poly_new_range(&y, r, 0, 6, VEIL_FORM_COEFF, NULL), VEIL_OK);
        veil_poly_copy(x, a, NULL);
        veil_poly_copy(y, b, NULL);
        veil_poly_to_eval(x, NULL);
        veil_poly_to_eval(y, NULL);
        veil_poly_mul(x, x, y, NULL);
        veil_poly_mul_acc(x, x, y, NULL);
        veil_poly_to_coeff(x, NULL);
        assert_int_equal(veil_poly_new_range(&out[t], r, 0, 5, VEIL_FORM_COEFF, NULL), VEIL_OK);
        assert_int_equal(veil_poly_rescale(out[t], x, NULL), VEIL_OK);
        veil_poly_free(x);
        veil_poly_free(y);
    }
    assert_memory_equal(veil_poly_limb(out[0], 0), veil_poly_limb(out[1], 0), 5 * 4096 * sizeof(uint64_t));
    veil_poly_free(out[0]);
    veil_poly_free(out[1]);
    veil_poly_free(a);
    veil_poly_free(b);
    veil_prng_free(prng);
    veil_ring_free(r);
}

static void test_set_and_validate(void **state)
{
    (void)state;
    const unsigned bits[] = {50, 30};
    veil_ring *r = make_ring(1024, bits, 2);
    veil_poly *p = NULL;
    veil_error err = {0};
    assert_int_equal(veil_poly_new_range(&p, r, 0, 2, VEIL_FORM_EVAL, &err), VEIL_OK);
    int64_t c[1024];
    int8_t s[1024];
    for (int j = 0; j < 1024; j++) {
        c[j] = (j % 3 == 0) ? -(int64_t)j * 1000003 : (int64_t)j << 40;
        s[j] = (int8_t)((j % 43) - 21);
    }
    c[5] = INT64_MIN;
    c[6] = INT64_MAX;
    assert_int_equal(veil_poly_set_i64(p, c, &err), VEIL_OK);
    assert_int_equal(veil_poly_form(p), VEIL_FORM_COEFF);
    for (size_t l = 0; l < 2; l++) {
        const uint64_t q = veil_ring_prime(r, l);
        for (int j = 0; j < 1024; j++) {
            veil_i128 m = c[j] % (veil_i128)q;
            if (m < 0) m += q;
            assert_int_equal(veil_poly_limb(p, l)[j], (uint64_t)m);
        }
    }
    assert_int_equal(veil_poly_set_small(p, s, &err), VEIL_OK);
    for (size_t l = 0; l < 2; l++) {
        const uint64_t q = veil_ring_prime(r, l);
        for (int j = 0; j < 1024; j++)
            assert_int_equal(veil_poly_limb(p, l)[j], s[j] < 0 ? q - (uint64_t)(-s[j]) : (uint64_t)s[j]);
    }
    assert_int_equal(veil_poly_validate(p, &err), VEIL_OK);
    veil_poly_limb(p, 1)[100] = veil_ring_prime(r, 1);
    assert_int_equal(veil_poly_validate(p, &err), VEIL_ERR_ARGUMENT);
    assert_non_null(strstr(err.detail, "limb 1"));
    veil_poly_free(p);
    veil_ring_free(r);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    const unsigned bits[] = {50, 50, 50};
    veil_ring *r = make_ring(1024, bits, 3), *r2 = make_ring(1024, bits, 3);
    veil_error err = {0};
    veil_poly *a = NULL, *b = NULL, *c = NULL, *d = NULL, *e = NULL;
    assert_int_equal(veil_poly_new_range(&a, r, 0, 2, VEIL_FORM_EVAL, &err), VEIL_OK);
    assert_int_equal(veil_poly_new_range(&b, r, 1, 2, VEIL_FORM_EVAL, &err), VEIL_OK);
    assert_int_equal(veil_poly_new_range(&c, r, 0, 2, VEIL_FORM_COEFF, &err), VEIL_OK);
    assert_int_equal(veil_poly_new_range(&d, r2, 0, 2, VEIL_FORM_EVAL, &err), VEIL_OK);
    assert_int_equal(veil_poly_add(a, a, b, &err), VEIL_ERR_MISMATCH);
    assert_non_null(strstr(err.detail, "bases"));
    assert_int_equal(veil_poly_add(a, a, c, &err), VEIL_ERR_MISMATCH);
    assert_non_null(strstr(err.detail, "form"));
    assert_int_equal(veil_poly_add(a, a, d, &err), VEIL_ERR_MISMATCH);
    assert_non_null(strstr(err.detail, "rings"));
    assert_int_equal(veil_poly_mul(c, c, c, &err), VEIL_ERR_MISMATCH);
    assert_non_null(strstr(err.detail, "NTT"));
    assert_int_equal(veil_poly_mul_acc(c, a, a, &err), VEIL_ERR_MISMATCH);
    assert_int_equal(veil_poly_add(NULL, a, a, &err), VEIL_ERR_NULL);
    assert_int_equal(veil_poly_add(a, a, NULL, &err), VEIL_ERR_NULL);
    assert_int_equal(veil_poly_copy(a, b, &err), VEIL_ERR_MISMATCH);
    assert_int_equal(veil_poly_new_range(&e, r, 2, 2, VEIL_FORM_EVAL, &err), VEIL_ERR_ARGUMENT);
    assert_null(e);
    assert_int_equal(veil_poly_new_range(&e, r, 0, 0, VEIL_FORM_EVAL, &err), VEIL_ERR_ARGUMENT);
    size_t dup[2] = {1, 1}, out_of_range[2] = {0, 3};
    assert_int_equal(veil_poly_new(&e, r, dup, 2, VEIL_FORM_EVAL, &err), VEIL_ERR_ARGUMENT);
    assert_int_equal(veil_poly_new(&e, r, out_of_range, 2, VEIL_FORM_EVAL, &err), VEIL_ERR_ARGUMENT);
    assert_int_equal(veil_poly_new(&e, r, dup, 2, (veil_form)5, &err), VEIL_ERR_ARGUMENT);
    assert_int_equal(veil_poly_new(&e, NULL, dup, 1, VEIL_FORM_EVAL, &err), VEIL_ERR_NULL);
    assert_null(veil_poly_limb(a, 2));
    assert_int_equal(veil_poly_limb_count(a), 2);
    assert_int_equal(veil_poly_prime_index(b, 1), 2);
    assert_ptr_equal(veil_poly_ring(a), r);
    veil_poly_free(a);
    veil_poly_free(b);
    veil_poly_free(c);
    veil_poly_free(d);
    veil_poly_free(NULL);
    veil_ring_free(r);
    veil_ring_free(r2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_elementwise),      cmocka_unit_test(test_product_against_flint),
        cmocka_unit_test(test_crt_round_trip),   cmocka_unit_test(test_multiword_against_gmp),
        cmocka_unit_test(test_thread_count_independent),
        cmocka_unit_test(test_set_and_validate), cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
