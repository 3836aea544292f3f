/*
 * Base conversion, rescale, ModUp and ModDown against exact big-integer arithmetic (GMP), with the
 * documented error of each approximate conversion asserted. Run twice by ctest (AVX2 and scalar NTT).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <gmp.h>
#include "ring/ring_internal.h"

#define WORDS 20

typedef struct fixture {
    veil_ring *ring;
    veil_prng *prng;
    size_t n;
} fixture;

static fixture make(size_t n, const unsigned *bits, size_t count)
{
    fixture f = {NULL, NULL, n};
    uint64_t q[VEIL_RING_MAX_PRIMES];
    uint8_t seed[VEIL_SEED_BYTES] = {9, (uint8_t)count};
    assert_int_equal(veil_prime_chain(q, bits, count, n, NULL, 0, NULL), VEIL_OK);
    assert_int_equal(veil_ring_new(&f.ring, n, q, count, NULL, NULL), VEIL_OK);
    assert_int_equal(veil_prng_new_seeded(&f.prng, seed, 0, NULL), VEIL_OK);
    return f;
}

static void release(fixture *f)
{
    veil_prng_free(f->prng);
    veil_ring_free(f->ring);
}

/* All coefficients at once (faster than coeff_of in a loop). */
static mpz_t *coeffs_of(const veil_poly *p, size_t n)
{
    uint64_t *w = malloc(n * WORDS * sizeof *w);
    veil_poly *c = NULL;
    assert_int_equal(veil_poly_new(&c, p->ring, p->base, p->count, p->form, NULL), VEIL_OK);
    veil_poly_copy(c, p, NULL);
    veil_poly_to_coeff(c, NULL);
    assert_int_equal(veil_poly_crt_compose(w, WORDS, c, NULL), VEIL_OK);
    mpz_t *z = malloc(n * sizeof *z);
    for (size_t j = 0; j < n; j++) {
        mpz_init(z[j]);
        mpz_import(z[j], WORDS, -1, sizeof(uint64_t), 0, 0, w + j * WORDS);
    }
    veil_poly_free(c);
    free(w);
    return z;
}

static void free_coeffs(mpz_t *z, size_t n)
{
    for (size_t j = 0; j < n; j++) mpz_clear(z[j]);
    free(z);
}

static void product(mpz_t out, const veil_ring *r, const size_t *idx, size_t count)
{
    mpz_set_ui(out, 1);
    for (size_t i = 0; i < count; i++) mpz_mul_ui(out, out, veil_ring_prime(r, idx[i]));
}

/* out_j = (x + u*B) mod c_j for one u in [0, |B|), the same for every target prime. */
static void test_base_conversion(void **state)
{
    (void)state;
    const unsigned bits[] = {50, 61, 40, 50, 45, 60, 50, 50, 36, 55};
    const size_t sizes[] = {1024, 4096};
    for (size_t s = 0; s < 2; s++) {
        fixture f = make(sizes[s], bits, 10);
        for (size_t kf = 1; kf <= 6; kf++) {
            size_t from[6], to[4];
            for (size_t i = 0; i < kf; i++) from[i] = i;
            for (size_t j = 0; j < 4; j++) to[j] = 6 + j;
            veil_base_conv *conv = NULL;
            veil_poly *in = NULL, *out = NULL;
            assert_int_equal(veil_base_conv_new(&conv, f.ring, from, kf, to, 4, NULL), VEIL_OK);
            assert_int_equal(veil_poly_new(&in, f.ring, from, kf, VEIL_FORM_COEFF, NULL), VEIL_OK);
            assert_int_equal(veil_poly_new(&out, f.ring, to, 4, VEIL_FORM_COEFF, NULL), VEIL_OK);
            assert_int_equal(veil_sample_uniform(in, f.prng, NULL), VEIL_OK);
            assert_int_equal(veil_base_conv_apply(conv, out, in, NULL), VEIL_OK);
            mpz_t *x = coeffs_of(in, f.n), *y = coeffs_of(out, f.n);
            mpz_t B, C, diff, u, rem;
            mpz_inits(B, C, diff, u, rem, NULL);
            product(B, f.ring, from, kf);
            product(C, f.ring, to, 4);
            for (size_t j = 0; j < f.n; j++) {
                /* find the u in [0, |B|) with y = x + u*B modulo every target prime (one u for all) */
                int found = 0;
                for (unsigned long k = 0; k < kf && !found; k++) {
                    mpz_mul_ui(u, B, k);
                    mpz_add(u, u, x[j]);
                    mpz_sub(diff, u, y[j]);
                    mpz_mod(rem, diff, C);
                    found = mpz_sgn(rem) == 0;
                }
                assert_true(found);
            }
            mpz_clears(B, C, diff, u, rem, NULL);
            free_coeffs(x, f.n);
            free_coeffs(y, f.n);
            veil_poly_free(in);
            veil_poly_free(out);
            veil_base_conv_free(conv);
        }
        release(&f);
    }
}

/* Many source primes of the AVX2 size (the vector path reduces its sum every 8 terms). */
static void test_base_conversion_wide(void **state)
{
    (void)state;
    unsigned bits[24];
    for (size_t i = 0; i < 24; i++) bits[i] = i % 3 ? 50 : 49;
    fixture f = make(1024, bits, 24);
    const size_t kf = 20;
    size_t from[20], to[4] = {20, 21, 22, 23};
    for (size_t i = 0; i < kf; i++) from[i] = i;
    veil_base_conv *conv = NULL;
    veil_poly *in = NULL, *out = NULL;
    assert_int_equal(veil_base_conv_new(&conv, f.ring, from, kf, to, 4, NULL), VEIL_OK);
    assert_int_equal(veil_poly_new(&in, f.ring, from, kf, VEIL_FORM_COEFF, NULL), VEIL_OK);
    assert_int_equal(veil_poly_new(&out, f.ring, to, 4, VEIL_FORM_COEFF, NULL), VEIL_OK);
    assert_int_equal(veil_sample_uniform(in, f.prng, NULL), VEIL_OK);
    for (size_t i = 0; i < kf; i++) veil_poly_limb(in, i)[0] = veil_ring_prime(f.ring, i) - 1; /* x = B - 1 */
    assert_int_equal(veil_base_conv_apply(conv, out, in, NULL), VEIL_OK);
    mpz_t *x = coeffs_of(in, f.n);
    mpz_t B, t, expect;
    mpz_inits(B, t, expect, NULL);
    product(B, f.ring, from, kf);
    for (size_t j = 0; j < f.n; j++) {
        /* u = the one value in [0, kf) for which x + u*B matches the first target residue */
        unsigned long u = 0;
        for (; u < kf; u++) {
            mpz_mul_ui(t, B, u);
            mpz_add(t, t, x[j]);
            if (mpz_fdiv_ui(t, veil_ring_prime(f.ring, to[0])) == veil_poly_limb(out, 0)[j]) break;
        }
        assert_true(u < kf);
        for (size_t k = 1; k < 4; k++) assert_int_equal(mpz_fdiv_ui(t, veil_ring_prime(f.ring, to[k])), veil_poly_limb(out, k)[j]);
    }
    mpz_clears(B, t, expect, NULL);
    free_coeffs(x, f.n);
    veil_poly_free(in);
    veil_poly_free(out);
    veil_base_conv_free(conv);
    release(&f);
}

/* Rescale: exactly round(x / q_last), in both forms. */
static void test_rescale_exact(void **state)
{
    (void)state;
    const unsigned bits[] = {50, 50, 45, 61, 40, 50};
    for (size_t count = 2; count <= 6; count += 2) {
        fixture f = make(2048, bits, count);
        for (int form = 0; form < 2; form++) {
            veil_poly *in = NULL, *out = NULL;
            assert_int_equal(veil_poly_new_range(&in, f.ring, 0, count, VEIL_FORM_COEFF, NULL), VEIL_OK);
            assert_int_equal(veil_poly_new_range(&out, f.ring, 0, count - 1, VEIL_FORM_COEFF, NULL), VEIL_OK);
            assert_int_equal(veil_sample_uniform(in, f.prng, NULL), VEIL_OK);
            /* extreme coefficients: 0, Q-1 and values near multiples of q_last +- q_last/2 */
            for (size_t l = 0; l < count; l++) {
                veil_poly_limb(in, l)[0] = 0;
                veil_poly_limb(in, l)[1] = veil_ring_prime(f.ring, l) - 1;
            }
            /* x mod q_last right at the rounding boundary (q_last - 1) / 2 and around it */
            const uint64_t half = veil_ring_prime(f.ring, count - 1) / 2;
            for (size_t t = 0; t < 7; t++) veil_poly_limb(in, count - 1)[2 + t] = half - 3 + t;
            mpz_t *x = coeffs_of(in, f.n);
            if (form == 1) assert_int_equal(veil_poly_to_eval(in, NULL), VEIL_OK);
            assert_int_equal(veil_poly_rescale(out, in, NULL), VEIL_OK);
            assert_int_equal(veil_poly_form(out), form == 1 ? VEIL_FORM_EVAL : VEIL_FORM_COEFF);
            mpz_t *y = coeffs_of(out, f.n);
            mpz_t ql, Qout, expect;
            mpz_inits(ql, Qout, expect, NULL);
            mpz_set_ui(ql, veil_ring_prime(f.ring, count - 1));
            mpz_set_ui(Qout, 1);
            for (size_t l = 0; l + 1 < count; l++) mpz_mul_ui(Qout, Qout, veil_ring_prime(f.ring, l));
            for (size_t j = 0; j < f.n; j++) {
                /* round(x / q) = floor((x + floor(q/2)) / q) for odd q */
                mpz_fdiv_q_2exp(expect, ql, 1);
                mpz_add(expect, expect, x[j]);
                mpz_fdiv_q(expect, expect, ql);
                mpz_mod(expect, expect, Qout);
                assert_int_equal(mpz_cmp(expect, y[j]), 0);
            }
            mpz_clears(ql, Qout, expect, NULL);
            free_coeffs(x, f.n);
            free_coeffs(y, f.n);
            veil_poly_free(in);
            veil_poly_free(out);
        }
        release(&f);
    }
}

/* ModUp: D limbs unchanged; the E limbs hold the centered representative of x mod D (|x'| <= D/2). */
static void test_mod_up(void **state)
{
    (void)state;
    const unsigned bits[] = {50, 50, 50, 50, 50, 50, 50};
    fixture f = make(1024, bits, 7);
    for (size_t kd = 1; kd <= 4; kd++) {
        for (int form = 0; form < 2; form++) {
            size_t from[4], to[3], all[7];
            for (size_t i = 0; i < kd; i++) all[i] = from[i] = i;
            for (size_t j = 0; j < 3; j++) all[kd + j] = to[j] = 4 + j;
            veil_base_conv *conv = NULL;
            veil_poly *in = NULL, *out = NULL, *copy = NULL;
            assert_int_equal(veil_base_conv_new(&conv, f.ring, from, kd, to, 3, NULL), VEIL_OK);
            assert_int_equal(veil_poly_new(&in, f.ring, from, kd, VEIL_FORM_COEFF, NULL), VEIL_OK);
            assert_int_equal(veil_poly_new(&copy, f.ring, from, kd, VEIL_FORM_COEFF, NULL), VEIL_OK);
            assert_int_equal(veil_poly_new(&out, f.ring, all, kd + 3, VEIL_FORM_COEFF, NULL), VEIL_OK);
            veil_sample_uniform(in, f.prng, NULL);
            mpz_t *x = coeffs_of(in, f.n);
            if (form == 1) veil_poly_to_eval(in, NULL);
            veil_poly_copy(copy, in, NULL);
            assert_int_equal(veil_poly_mod_up(out, in, conv, NULL), VEIL_OK);
            assert_memory_equal(veil_poly_limb(out, 0), veil_poly_limb(copy, 0), kd * f.n * sizeof(uint64_t));
            assert_memory_equal(veil_poly_limb(in, 0), veil_poly_limb(copy, 0), kd * f.n * sizeof(uint64_t));
            mpz_t *y = coeffs_of(out, f.n);
            mpz_t D, diff, u, rem;
            mpz_inits(D, diff, u, rem, NULL);
            product(D, f.ring, from, kd);
            mpz_t DE, half, slack;
            mpz_inits(DE, half, slack, NULL);
            product(DE, f.ring, all, kd + 3);
            mpz_fdiv_q_2exp(half, D, 1);
            mpz_fdiv_q_2exp(slack, D, 40);
            for (size_t j = 0; j < f.n; j++) {
                /* y is the centered representative of x mod D, written modulo D*E: x, or x - D + D*E */
                if (mpz_cmp(y[j], x[j]) == 0) {
                    mpz_add(diff, half, slack);
                    assert_true(mpz_cmp(x[j], diff) <= 0);
                } else {
                    mpz_sub(diff, x[j], D);
                    mpz_add(diff, diff, DE);
                    assert_int_equal(mpz_cmp(y[j], diff), 0);
                    mpz_sub(diff, half, slack);
                    assert_true(mpz_cmp(x[j], diff) >= 0);
                }
            }
            mpz_clears(DE, half, slack, NULL);
            mpz_clears(D, diff, u, rem, NULL);
            free_coeffs(x, f.n);
            free_coeffs(y, f.n);
            veil_poly_free(in);
            veil_poly_free(copy);
            veil_poly_free(out);
            veil_base_conv_free(conv);
        }
    }
    release(&f);
}

/* ModDown: round(x / P), in both forms (off by one only when x mod P is within 2^-45 P of P/2). */
static void test_mod_down(void **state)
{
    (void)state;
    const unsigned bits[] = {50, 45, 50, 61, 50, 50, 40};
    fixture f = make(1024, bits, 7);
    for (size_t kp = 1; kp <= 3; kp++) {
        for (int form = 0; form < 2; form++) {
            const size_t kq = 4;
            size_t qidx[4] = {0, 1, 2, 3}, pidx[3] = {4, 5, 6}, all[7];
            for (size_t i = 0; i < kq; i++) all[i] = qidx[i];
            for (size_t i = 0; i < kp; i++) all[kq + i] = pidx[i];
            veil_base_conv *conv = NULL;
            veil_poly *in = NULL, *out = NULL;
            assert_int_equal(veil_base_conv_new(&conv, f.ring, pidx, kp, qidx, kq, NULL), VEIL_OK);
            assert_int_equal(veil_poly_new(&in, f.ring, all, kq + kp, VEIL_FORM_COEFF, NULL), VEIL_OK);
            assert_int_equal(veil_poly_new(&out, f.ring, qidx, kq, VEIL_FORM_COEFF, NULL), VEIL_OK);
            veil_sample_uniform(in, f.prng, NULL);
            mpz_t *x = coeffs_of(in, f.n);
            if (form == 1) veil_poly_to_eval(in, NULL);
            assert_int_equal(veil_poly_mod_down(out, in, conv, NULL), VEIL_OK);
            assert_int_equal(veil_poly_form(out), form == 1 ? VEIL_FORM_EVAL : VEIL_FORM_COEFF);
            mpz_t *y = coeffs_of(out, f.n);
            mpz_t P, Q, r, diff;
            mpz_inits(P, Q, r, diff, NULL);
            product(P, f.ring, pidx, kp);
            product(Q, f.ring, qidx, kq);
            for (size_t j = 0; j < f.n; j++) {
                mpz_fdiv_q_2exp(r, P, 1);
                mpz_add(r, r, x[j]);
                mpz_fdiv_q(r, r, P); /* round(x / P) */
                mpz_sub(diff, r, y[j]);
                mpz_mod(diff, diff, Q); /* 0, or 1 / Q-1 at an exact-tie boundary (never met by random x) */
                assert_int_equal(mpz_sgn(diff), 0);
            }
            mpz_clears(P, Q, r, diff, NULL);
            free_coeffs(x, f.n);
            free_coeffs(y, f.n);
            veil_poly_free(in);
            veil_poly_free(out);
            veil_base_conv_free(conv);
        }
    }
    release(&f);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    const unsigned bits[] = {50, 50, 50, 50};
    fixture f = make(1024, bits, 4);
    veil_error err = {0};
    veil_base_conv *conv = NULL;
    size_t a[2] = {0, 1}, b[2] = {2, 3}, overlap[2] = {1, 2}, bad[1] = {4};
    assert_int_equal(veil_base_conv_new(&conv, f.ring, a, 2, overlap, 2, &err), VEIL_ERR_ARGUMENT);
    assert_int_equal(veil_base_conv_new(&conv, f.ring, a, 2, bad, 1, &err), VEIL_ERR_ARGUMENT);
    assert_int_equal(veil_base_conv_new(&conv, f.ring, a, 0, b, 2, &err), VEIL_ERR_ARGUMENT);
    assert_int_equal(veil_base_conv_new(&conv, NULL, a, 2, b, 2, &err), VEIL_ERR_NULL);
    assert_int_equal(veil_base_conv_new(&conv, f.ring, a, 2, b, 2, &err), VEIL_OK);
    veil_poly *in = NULL, *out = NULL, *wrong = NULL, *one = NULL;
    veil_poly_new(&in, f.ring, a, 2, VEIL_FORM_EVAL, NULL);
    veil_poly_new(&out, f.ring, b, 2, VEIL_FORM_COEFF, NULL);
    veil_poly_new(&wrong, f.ring, b, 2, VEIL_FORM_COEFF, NULL);
    veil_poly_new(&one, f.ring, a, 1, VEIL_FORM_COEFF, NULL);
    assert_int_equal(veil_base_conv_apply(conv, out, in, &err), VEIL_ERR_MISMATCH); /* eval form */
    assert_non_null(strstr(err.detail, "coefficient form"));
    assert_int_equal(veil_base_conv_apply(conv, out, wrong, &err), VEIL_ERR_MISMATCH); /* wrong base */
    assert_int_equal(veil_poly_rescale(out, one, &err), VEIL_ERR_ARGUMENT);          /* one limb */
    assert_int_equal(veil_poly_rescale(out, in, &err), VEIL_ERR_MISMATCH);           /* wrong output base */
    assert_int_equal(veil_poly_mod_up(out, in, conv, &err), VEIL_ERR_MISMATCH);
    assert_int_equal(veil_poly_mod_down(out, in, conv, &err), VEIL_ERR_MISMATCH);
    assert_int_equal(veil_poly_mod_down(NULL, in, conv, &err), VEIL_ERR_NULL);
    veil_poly_free(in);
    veil_poly_free(out);
    veil_poly_free(wrong);
    veil_poly_free(one);
    veil_base_conv_free(conv);
    veil_base_conv_free(NULL);
    release(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base_conversion), cmocka_unit_test(test_base_conversion_wide),
        cmocka_unit_test(test_rescale_exact),
        cmocka_unit_test(test_mod_up),          cmocka_unit_test(test_mod_down),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
