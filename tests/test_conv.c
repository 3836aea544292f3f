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

/* Sets coefficient j of p (coefficient form) to the integer v (reduced modulo each prime). */
static void set_coeff(veil_poly *p, size_t j, const mpz_t v)
{
    uint64_t w[WORDS] = {0};
    size_t count = 0;
    mpz_export(w, &count, -1, sizeof(uint64_t), 0, 0, v);
    assert_true(count <= WORDS);
    for (size_t l = 0; l < p->count; l++) {
        mpz_t r;
        mpz_init(r);
        mpz_mod_ui(r, v, veil_ring_prime(p->ring, p->base[l]));
        veil_poly_limb(p, l)[j] = mpz_get_ui(r);
        mpz_clear(r);
    }
}

/*
 * The documented boundary of the centered conversion from a base B of k primes: only x mod B within
 * (k^2 + 4) * 2^-53 * B of B/2 may give the other representative. slack = that distance, rounded up.
 */
static void centered_slack(mpz_t slack, const mpz_t B, size_t k)
{
    mpz_mul_ui(slack, B, (unsigned long)(k * k + 4));
    mpz_cdiv_q_2exp(slack, slack, 53);
}

/*
 * Coefficients 2..9 of p around the rounding boundary of the centered conversion from B: floor(B/2) + d
 * for d in {-slack-2, -slack-1, -1, 0, 1, 2, slack+1, slack+2}, plus `offset` (a multiple of B, or 0).
 */
static void set_boundary(veil_poly *p, const mpz_t B, size_t k, const mpz_t offset)
{
    mpz_t half, slack, v;
    mpz_inits(half, slack, v, NULL);
    mpz_fdiv_q_2exp(half, B, 1);
    centered_slack(slack, B, k);
    static const long mult[8] = {-1, -1, 0, 0, 0, 0, 1, 1}, add[8] = {-2, -1, -1, 0, 1, 2, 1, 2};
    for (size_t i = 0; i < 8; i++) { /* v = floor(B/2) + mult*slack + add + offset */
        mpz_mul_si(v, slack, mult[i]);
        if (add[i] < 0) mpz_sub_ui(v, v, (unsigned long)-add[i]);
        else mpz_add_ui(v, v, (unsigned long)add[i]);
        mpz_add(v, v, half);
        mpz_add(v, v, offset);
        set_coeff(p, 2 + i, v);
    }
    mpz_clears(half, slack, v, NULL);
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
            for (size_t i = 0; i < kf; i++) { /* x = 0 and x = B - 1 */
                veil_poly_limb(in, i)[0] = 0;
                veil_poly_limb(in, i)[1] = veil_ring_prime(f.ring, from[i]) - 1;
            }
            assert_int_equal(veil_base_conv_apply(conv, out, in, NULL), VEIL_OK);
            assert_int_equal(veil_poly_form(out), VEIL_FORM_COEFF);
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

/*
 * One ModUp check: D limbs unchanged (and the input untouched); the E limbs hold the centered
 * representative of x mod D (|x'| <= D/2), i.e. x or x - D written modulo D*E. Only x within
 * (k^2 + 4) * 2^-53 * D of D/2 may give the other representative (the documented floating-point boundary).
 */
static void check_mod_up(fixture *f, const size_t *from, size_t kd, const size_t *to, size_t ke, int form)
{
    size_t all[VEIL_RING_MAX_PRIMES];
    for (size_t i = 0; i < kd; i++) all[i] = from[i];
    for (size_t j = 0; j < ke; j++) all[kd + j] = to[j];
    veil_base_conv *conv = NULL;
    veil_poly *in = NULL, *out = NULL, *copy = NULL;
    assert_int_equal(veil_base_conv_new(&conv, f->ring, from, kd, to, ke, NULL), VEIL_OK);
    assert_int_equal(veil_poly_new(&in, f->ring, from, kd, VEIL_FORM_COEFF, NULL), VEIL_OK);
    assert_int_equal(veil_poly_new(&copy, f->ring, from, kd, VEIL_FORM_COEFF, NULL), VEIL_OK);
    assert_int_equal(veil_poly_new(&out, f->ring, all, kd + ke, VEIL_FORM_COEFF, NULL), VEIL_OK);
    assert_int_equal(veil_sample_uniform(in, f->prng, NULL), VEIL_OK);
    for (size_t i = 0; i < kd; i++) { /* x = 0 and x = D - 1 */
        veil_poly_limb(in, i)[0] = 0;
        veil_poly_limb(in, i)[1] = veil_ring_prime(f->ring, from[i]) - 1;
    }
    mpz_t D, DE, half, slack, t;
    mpz_inits(D, DE, half, slack, t, NULL);
    product(D, f->ring, from, kd);
    product(DE, f->ring, all, kd + ke);
    mpz_fdiv_q_2exp(half, D, 1);
    centered_slack(slack, D, kd);
    mpz_set_ui(t, 0);
    set_boundary(in, D, kd, t); /* x at and around D/2, and just outside the documented slack */
    mpz_t *x = coeffs_of(in, f->n);
    if (form == 1) assert_int_equal(veil_poly_to_eval(in, NULL), VEIL_OK);
    assert_int_equal(veil_poly_copy(copy, in, NULL), VEIL_OK);
    assert_int_equal(veil_poly_mod_up(out, in, conv, NULL), VEIL_OK);
    assert_int_equal(veil_poly_form(out), form == 1 ? VEIL_FORM_EVAL : VEIL_FORM_COEFF);
    assert_memory_equal(veil_poly_limb(out, 0), veil_poly_limb(copy, 0), kd * f->n * sizeof(uint64_t));
    assert_memory_equal(veil_poly_limb(in, 0), veil_poly_limb(copy, 0), kd * f->n * sizeof(uint64_t));
    mpz_t *y = coeffs_of(out, f->n);
    for (size_t j = 0; j < f->n; j++) {
        if (mpz_cmp(y[j], x[j]) == 0) { /* x' = x: x <= D/2 (up to the boundary slack) */
            mpz_add(t, half, slack);
            assert_true(mpz_cmp(x[j], t) <= 0);
        } else { /* x' = x - D < 0: x >= D/2 (up to the slack) */
            mpz_sub(t, x[j], D);
            mpz_add(t, t, DE);
            assert_int_equal(mpz_cmp(y[j], t), 0);
            mpz_sub(t, half, slack);
            assert_true(mpz_cmp(x[j], t) >= 0);
        }
    }
    mpz_clears(D, DE, half, slack, t, NULL);
    free_coeffs(x, f->n);
    free_coeffs(y, f->n);
    veil_poly_free(in);
    veil_poly_free(copy);
    veil_poly_free(out);
    veil_base_conv_free(conv);
}

/* ModUp with 50-bit primes (the AVX2 path) and with mixed 40..61-bit primes (the scalar path), both forms. */
static void test_mod_up(void **state)
{
    (void)state;
    const unsigned bits50[] = {50, 50, 50, 50, 50, 50, 50};
    fixture f = make(1024, bits50, 7);
    for (size_t kd = 1; kd <= 4; kd++) {
        const size_t from[4] = {0, 1, 2, 3}, to[3] = {4, 5, 6};
        for (int form = 0; form < 2; form++) check_mod_up(&f, from, kd, to, 3, form);
    }
    release(&f);
    const unsigned mixed[] = {61, 40, 55, 45, 60, 50, 58, 42, 61};
    f = make(4096, mixed, 9);
    for (size_t kd = 1; kd <= 6; kd++) {
        const size_t from[6] = {0, 1, 2, 3, 4, 5}, to[3] = {8, 6, 7}; /* target base not in ring order */
        for (int form = 0; form < 2; form++) check_mod_up(&f, from, kd, to, 3, form);
    }
    release(&f);
}

/*
 * One ModDown check: for x uniform in [0, QP), and x with x mod P at and around P/2, out = round(x / P)
 * mod Q exactly, except within the documented boundary (x mod P within (k^2 + 4) * 2^-53 * P of P/2)
 * where it may be off by one.
 */
static void check_mod_down(fixture *f, const size_t *qidx, size_t kq, const size_t *pidx, size_t kp, int form)
{
    size_t all[VEIL_RING_MAX_PRIMES];
    for (size_t i = 0; i < kq; i++) all[i] = qidx[i];
    for (size_t i = 0; i < kp; i++) all[kq + i] = pidx[i];
    veil_base_conv *conv = NULL;
    veil_poly *in = NULL, *out = NULL;
    assert_int_equal(veil_base_conv_new(&conv, f->ring, pidx, kp, qidx, kq, NULL), VEIL_OK);
    assert_int_equal(veil_poly_new(&in, f->ring, all, kq + kp, VEIL_FORM_COEFF, NULL), VEIL_OK);
    assert_int_equal(veil_poly_new(&out, f->ring, qidx, kq, VEIL_FORM_COEFF, NULL), VEIL_OK);
    assert_int_equal(veil_sample_uniform(in, f->prng, NULL), VEIL_OK);
    for (size_t i = 0; i < kq + kp; i++) { /* x = 0 and x = QP - 1 */
        veil_poly_limb(in, i)[0] = 0;
        veil_poly_limb(in, i)[1] = veil_ring_prime(f->ring, all[i]) - 1;
    }
    mpz_t P, Q, r, off, half, slack, dist;
    mpz_inits(P, Q, r, off, half, slack, dist, NULL);
    product(P, f->ring, pidx, kp);
    product(Q, f->ring, qidx, kq);
    mpz_fdiv_q_2exp(half, P, 1);
    centered_slack(slack, P, kp);
    mpz_fdiv_q_2exp(off, Q, 1);
    mpz_mul(off, off, P); /* x = (Q/2) * P + (P/2 + d): x mod P at and around P/2 */
    set_boundary(in, P, kp, off);
    mpz_t *x = coeffs_of(in, f->n);
    if (form == 1) assert_int_equal(veil_poly_to_eval(in, NULL), VEIL_OK);
    assert_int_equal(veil_poly_mod_down(out, in, conv, NULL), VEIL_OK);
    assert_int_equal(veil_poly_form(out), form == 1 ? VEIL_FORM_EVAL : VEIL_FORM_COEFF);
    mpz_t *y = coeffs_of(out, f->n);
    for (size_t j = 0; j < f->n; j++) {
        mpz_add(r, half, x[j]);
        mpz_fdiv_q(r, r, P); /* round(x / P) = floor((x + floor(P/2)) / P), P odd */
        mpz_sub(r, y[j], r);
        mpz_mod(r, r, Q); /* out - round(x / P) mod Q */
        mpz_mod(dist, x[j], P);
        mpz_sub(dist, dist, half);
        mpz_abs(dist, dist);
        if (mpz_cmp(dist, slack) > 0) assert_int_equal(mpz_sgn(r), 0); /* exact outside the boundary */
        else if (mpz_sgn(r) != 0) { /* inside: round(x/P) or the other neighbour, off by one */
            mpz_add_ui(r, r, 1);
            mpz_mod(r, r, Q);
            assert_true(mpz_cmp_ui(r, 2) == 0 || mpz_sgn(r) == 0);
        }
    }
    mpz_clears(P, Q, r, off, half, slack, dist, NULL);
    free_coeffs(x, f->n);
    free_coeffs(y, f->n);
    veil_poly_free(in);
    veil_poly_free(out);
    veil_base_conv_free(conv);
}

/*
 * The BGV forms: with y the output and D the dropped primes' product, r = x - y D (mod Q D, centered) must be
 * the d of the definition: r = x mod D, r = 0 mod t, |r| <= t D (t D / 2 up to the conversion's boundary).
 */
static void check_bgv_division(const mpz_t *x, const mpz_t *y, size_t n, const mpz_t Q, const mpz_t D, uint64_t t)
{
    mpz_t QD, half, r, a, bound;
    mpz_inits(QD, half, r, a, bound, NULL);
    mpz_mul(QD, Q, D);
    mpz_fdiv_q_2exp(half, QD, 1);
    mpz_mul_ui(bound, D, t);
    for (size_t j = 0; j < n; j++) {
        mpz_mul(r, y[j], D);
        mpz_sub(r, x[j], r);
        mpz_mod(r, r, QD);
        if (mpz_cmp(r, half) > 0) mpz_sub(r, r, QD);
        assert_true(mpz_fdiv_ui(r, t) == 0);
        mpz_sub(a, r, x[j]);
        assert_true(mpz_divisible_p(a, D));
        mpz_abs(a, r);
        assert_true(mpz_cmp(a, bound) <= 0);
    }
    mpz_clears(QD, half, r, a, bound, NULL);
}

static void test_bgv_rescale_mod_down(void **state)
{
    (void)state;
    const unsigned bits[] = {50, 45, 61, 50, 40};
    const uint64_t ts[] = {2, 257, 65537, (1ull << 30) + 3};
    fixture f = make(1024, bits, 5);
    for (size_t k = 0; k < 4; k++) {
        for (int form = 0; form < 2; form++) {
            /* rescale: Q = q0 q1 q2, D = q3 */
            veil_poly *in = NULL, *out = NULL;
            assert_int_equal(veil_poly_new_range(&in, f.ring, 0, 4, VEIL_FORM_COEFF, NULL), VEIL_OK);
            assert_int_equal(veil_poly_new_range(&out, f.ring, 0, 3, VEIL_FORM_COEFF, NULL), VEIL_OK);
            assert_int_equal(veil_sample_uniform(in, f.prng, NULL), VEIL_OK);
            mpz_t *x = coeffs_of(in, f.n);
            if (form) assert_int_equal(veil_poly_to_eval(in, NULL), VEIL_OK);
            assert_int_equal(veil_poly_rescale_t(out, in, ts[k], NULL), VEIL_OK);
            if (form) assert_int_equal(veil_poly_to_coeff(out, NULL), VEIL_OK);
            mpz_t *y = coeffs_of(out, f.n);
            mpz_t Q, D;
            mpz_inits(Q, D, NULL);
            const size_t qi[3] = {0, 1, 2}, di[1] = {3}, pi[2] = {3, 4};
            product(Q, f.ring, qi, 3);
            product(D, f.ring, di, 1);
            check_bgv_division((const mpz_t *)x, (const mpz_t *)y, f.n, Q, D, ts[k]);
            free_coeffs(x, f.n);
            free_coeffs(y, f.n);
            veil_poly_free(in);
            veil_poly_free(out);
            /* ModDown: Q = q0 q1 q2, P = q3 q4 */
            veil_base_conv *conv = NULL;
            const size_t all[5] = {0, 1, 2, 3, 4};
            assert_int_equal(veil_base_conv_new(&conv, f.ring, pi, 2, qi, 3, NULL), VEIL_OK);
            assert_int_equal(veil_poly_new(&in, f.ring, all, 5, VEIL_FORM_COEFF, NULL), VEIL_OK);
            assert_int_equal(veil_poly_new(&out, f.ring, qi, 3, VEIL_FORM_COEFF, NULL), VEIL_OK);
            assert_int_equal(veil_sample_uniform(in, f.prng, NULL), VEIL_OK);
            x = coeffs_of(in, f.n);
            if (form) assert_int_equal(veil_poly_to_eval(in, NULL), VEIL_OK);
            assert_int_equal(veil_poly_mod_down_t(out, in, conv, ts[k], NULL), VEIL_OK);
            if (form) assert_int_equal(veil_poly_to_coeff(out, NULL), VEIL_OK);
            y = coeffs_of(out, f.n);
            product(D, f.ring, pi, 2);
            check_bgv_division((const mpz_t *)x, (const mpz_t *)y, f.n, Q, D, ts[k]);
            mpz_clears(Q, D, NULL);
            free_coeffs(x, f.n);
            free_coeffs(y, f.n);
            veil_poly_free(in);
            veil_poly_free(out);
            veil_base_conv_free(conv);
        }
    }
    veil_error err = {0};
    veil_poly *a = NULL, *b = NULL;
    assert_int_equal(veil_poly_new_range(&a, f.ring, 0, 2, VEIL_FORM_COEFF, NULL), VEIL_OK);
    assert_int_equal(veil_poly_new_range(&b, f.ring, 0, 1, VEIL_FORM_COEFF, NULL), VEIL_OK);
    assert_int_equal(veil_poly_rescale_t(b, a, 1, &err), VEIL_ERR_ARGUMENT);
    veil_poly_free(a);
    veil_poly_free(b);
    release(&f);
}

/* ModDown with 1..6 special primes of 40..61 bits, N = 1024 and 4096, both forms. */
static void test_mod_down(void **state)
{
    (void)state;
    const unsigned bits[] = {50, 45, 50, 61, 50, 50, 40};
    fixture f = make(1024, bits, 7);
    for (size_t kp = 1; kp <= 3; kp++) {
        const size_t qidx[4] = {0, 1, 2, 3}, pidx[3] = {4, 5, 6};
        for (int form = 0; form < 2; form++) check_mod_down(&f, qidx, 4, pidx, kp, form);
    }
    release(&f);
    const unsigned mixed[] = {50, 50, 50, 61, 40, 55, 45, 60, 58};
    f = make(4096, mixed, 9);
    for (size_t kp = 1; kp <= 6; kp++) {
        const size_t qidx[3] = {0, 1, 2}, pidx[6] = {8, 3, 4, 5, 6, 7}; /* P not in ring order */
        for (int form = 0; form < 2; form++) check_mod_down(&f, qidx, 3, pidx, kp, form);
    }
    const size_t q50[3] = {0, 1, 2}, p50[1] = {3}; /* all-50-bit Q with a 61-bit P: mixed kernels */
    for (int form = 0; form < 2; form++) check_mod_down(&f, q50, 3, p50, 1, form);
    release(&f);
}

/*
 * Runs base conversion, rescale, ModUp and ModDown on x (over Q then P) in the given form and returns the
 * four results in coefficient form.
 */
static void run_all(veil_poly *res[4], const veil_ring *r, const veil_poly *x, const veil_base_conv *up,
                    const veil_base_conv *down, veil_form form)
{
    const size_t q[4] = {0, 1, 2, 3}, p[2] = {4, 5}, all[6] = {0, 1, 2, 3, 4, 5};
    veil_poly *xe = NULL, *xq = NULL;
    assert_int_equal(veil_poly_new(&xe, r, all, 6, VEIL_FORM_COEFF, NULL), VEIL_OK);
    assert_int_equal(veil_poly_new(&xq, r, q, 4, VEIL_FORM_COEFF, NULL), VEIL_OK);
    assert_int_equal(veil_poly_copy(xe, x, NULL), VEIL_OK);
    memcpy(veil_poly_limb(xq, 0), veil_poly_limb_const(x, 0), 4 * veil_ring_degree(r) * sizeof(uint64_t));
    assert_int_equal(veil_poly_new(&res[0], r, p, 2, VEIL_FORM_COEFF, NULL), VEIL_OK);
    assert_int_equal(veil_base_conv_apply(up, res[0], xq, NULL), VEIL_OK);
    if (form == VEIL_FORM_EVAL) {
        assert_int_equal(veil_poly_to_eval(xe, NULL), VEIL_OK);
        assert_int_equal(veil_poly_to_eval(xq, NULL), VEIL_OK);
    }
    assert_int_equal(veil_poly_new(&res[1], r, all, 5, VEIL_FORM_COEFF, NULL), VEIL_OK);
    assert_int_equal(veil_poly_new(&res[2], r, all, 6, VEIL_FORM_COEFF, NULL), VEIL_OK);
    assert_int_equal(veil_poly_new(&res[3], r, q, 4, VEIL_FORM_COEFF, NULL), VEIL_OK);
    assert_int_equal(veil_poly_rescale(res[1], xe, NULL), VEIL_OK);
    assert_int_equal(veil_poly_mod_up(res[2], xq, up, NULL), VEIL_OK);
    assert_int_equal(veil_poly_mod_down(res[3], xe, down, NULL), VEIL_OK);
    for (int k = 1; k < 4; k++) {
        assert_int_equal(veil_poly_form(res[k]), form);
        assert_int_equal(veil_poly_to_coeff(res[k], NULL), VEIL_OK);
    }
    veil_poly_free(xe);
    veil_poly_free(xq);
}

/* The same bits with 1, 2 and 3 threads, and from evaluation form as from coefficient form. */
static void test_thread_count_independent(void **state)
{
    (void)state;
    const unsigned bits[] = {50, 50, 50, 61, 50, 50};
    fixture f = make(4096, bits, 6);
    const size_t q[4] = {0, 1, 2, 3}, p[2] = {4, 5};
    veil_base_conv *up = NULL, *down = NULL;
    assert_int_equal(veil_base_conv_new(&up, f.ring, q, 4, p, 2, NULL), VEIL_OK);
    assert_int_equal(veil_base_conv_new(&down, f.ring, p, 2, q, 4, NULL), VEIL_OK);
    veil_poly *x = NULL, *ref[4], *got[4];
    assert_int_equal(veil_poly_new_range(&x, f.ring, 0, 6, VEIL_FORM_COEFF, NULL), VEIL_OK);
    assert_int_equal(veil_sample_uniform(x, f.prng, NULL), VEIL_OK);
    assert_int_equal(veil_ring_set_threads(f.ring, 1, NULL), VEIL_OK);
    run_all(ref, f.ring, x, up, down, VEIL_FORM_COEFF);
    for (int t = 1; t <= 3; t++) {
        assert_int_equal(veil_ring_set_threads(f.ring, t, NULL), VEIL_OK);
        for (int form = 0; form < 2; form++) {
            if (t == 1 && form == 0) continue;
            run_all(got, f.ring, x, up, down, (veil_form)form);
            for (int k = 0; k < 4; k++) {
                const size_t limbs = veil_poly_limb_count(ref[k]);
                assert_int_equal(veil_poly_limb_count(got[k]), limbs);
                assert_memory_equal(veil_poly_limb(got[k], 0), veil_poly_limb(ref[k], 0), limbs * f.n * sizeof(uint64_t));
                veil_poly_free(got[k]);
            }
        }
    }
    for (int k = 0; k < 4; k++) veil_poly_free(ref[k]);
    veil_poly_free(x);
    veil_base_conv_free(up);
    veil_base_conv_free(down);
    release(&f);
}

/* Status and a non-empty detail. */
#define EXPECT(call, status)                                                                                  \
    do {                                                                                                      \
        err.detail[0] = '\0';                                                                                 \
        assert_int_equal((call), (status));                                                                   \
        assert_true(err.detail[0] != '\0');                                                                   \
    } while (0)

static void test_bad_arguments(void **state)
{
    (void)state;
    const unsigned bits[] = {50, 50, 50, 50, 50};
    fixture f = make(1024, bits, 5), g = make(1024, bits, 5);
    veil_error err = {0};
    veil_base_conv *conv = NULL, *other = NULL;
    size_t a[2] = {0, 1}, b[2] = {2, 3}, ba[2] = {3, 2}, overlap[2] = {1, 2}, bad[1] = {5}, dup[2] = {2, 2};
    size_t ab[4] = {0, 1, 2, 3}, ab_swapped[4] = {0, 1, 3, 2}, ba_first[4] = {2, 3, 0, 1}, c4[1] = {4};
    EXPECT(veil_base_conv_new(&conv, f.ring, a, 2, overlap, 2, &err), VEIL_ERR_ARGUMENT);
    assert_null(conv);
    EXPECT(veil_base_conv_new(&conv, f.ring, a, 2, bad, 1, &err), VEIL_ERR_ARGUMENT);
    EXPECT(veil_base_conv_new(&conv, f.ring, a, 2, dup, 2, &err), VEIL_ERR_ARGUMENT);
    EXPECT(veil_base_conv_new(&conv, f.ring, a, 0, b, 2, &err), VEIL_ERR_ARGUMENT);
    EXPECT(veil_base_conv_new(&conv, f.ring, a, 2, b, 0, &err), VEIL_ERR_ARGUMENT);
    EXPECT(veil_base_conv_new(&conv, NULL, a, 2, b, 2, &err), VEIL_ERR_NULL);
    EXPECT(veil_base_conv_new(&conv, f.ring, NULL, 2, b, 2, &err), VEIL_ERR_NULL);
    EXPECT(veil_base_conv_new(NULL, f.ring, a, 2, b, 2, &err), VEIL_ERR_NULL);
    assert_int_equal(veil_base_conv_new(&conv, f.ring, a, 2, b, 2, &err), VEIL_OK);
    assert_int_equal(veil_base_conv_new(&other, g.ring, a, 2, b, 2, &err), VEIL_OK);
    veil_poly *in = NULL, *out = NULL, *wrong = NULL, *one = NULL, *out_ba = NULL, *inq = NULL, *in_g = NULL;
    veil_poly *up = NULL, *up_bad = NULL, *down_in = NULL, *down_bad = NULL, *three = NULL, *c_out = NULL;
    veil_poly_new(&in, f.ring, a, 2, VEIL_FORM_EVAL, NULL);
    veil_poly_new(&inq, f.ring, a, 2, VEIL_FORM_COEFF, NULL);
    veil_poly_new(&in_g, g.ring, a, 2, VEIL_FORM_COEFF, NULL);
    veil_poly_new(&out, f.ring, b, 2, VEIL_FORM_COEFF, NULL);
    veil_poly_new(&out_ba, f.ring, ba, 2, VEIL_FORM_COEFF, NULL);
    veil_poly_new(&wrong, f.ring, b, 2, VEIL_FORM_COEFF, NULL);
    veil_poly_new(&one, f.ring, a, 1, VEIL_FORM_COEFF, NULL);
    veil_poly_new(&three, f.ring, ab, 3, VEIL_FORM_COEFF, NULL);
    veil_poly_new(&c_out, f.ring, c4, 1, VEIL_FORM_COEFF, NULL);
    veil_poly_new(&up, f.ring, ab, 4, VEIL_FORM_COEFF, NULL);
    veil_poly_new(&up_bad, f.ring, ab_swapped, 4, VEIL_FORM_COEFF, NULL);
    veil_poly_new(&down_in, f.ring, ba_first, 4, VEIL_FORM_COEFF, NULL);
    veil_poly_new(&down_bad, f.ring, ab, 4, VEIL_FORM_COEFF, NULL);
    /* base conversion: coefficient form, exactly the source and target bases, same ring */
    EXPECT(veil_base_conv_apply(conv, out, in, &err), VEIL_ERR_MISMATCH); /* eval form */
    assert_non_null(strstr(err.detail, "coefficient form"));
    EXPECT(veil_base_conv_apply(conv, out, wrong, &err), VEIL_ERR_MISMATCH); /* input over the target base */
    EXPECT(veil_base_conv_apply(conv, out_ba, inq, &err), VEIL_ERR_MISMATCH); /* target base out of order */
    EXPECT(veil_base_conv_apply(conv, out, one, &err), VEIL_ERR_MISMATCH);    /* part of the source base */
    EXPECT(veil_base_conv_apply(conv, out, in_g, &err), VEIL_ERR_MISMATCH);   /* another ring */
    EXPECT(veil_base_conv_apply(other, out, inq, &err), VEIL_ERR_MISMATCH);   /* conversion of another ring */
    EXPECT(veil_base_conv_apply(NULL, out, inq, &err), VEIL_ERR_NULL);
    EXPECT(veil_base_conv_apply(conv, NULL, inq, &err), VEIL_ERR_NULL);
    assert_int_equal(veil_base_conv_apply(conv, out, inq, &err), VEIL_OK);
    /* rescale: two limbs or more, output over the first limbs, no aliasing */
    EXPECT(veil_poly_rescale(out, one, &err), VEIL_ERR_ARGUMENT); /* one limb */
    EXPECT(veil_poly_rescale(out, in, &err), VEIL_ERR_MISMATCH);  /* wrong output base */
    EXPECT(veil_poly_rescale(in, in, &err), VEIL_ERR_MISMATCH);   /* same limb count: not the first limbs */
    EXPECT(veil_poly_rescale(c_out, in, &err), VEIL_ERR_MISMATCH); /* one limb, but not in's first */
    EXPECT(veil_poly_rescale(one, three, &err), VEIL_ERR_MISMATCH); /* drops two limbs */
    EXPECT(veil_poly_rescale(NULL, in, &err), VEIL_ERR_NULL);
    EXPECT(veil_poly_rescale(one, NULL, &err), VEIL_ERR_NULL);
    assert_int_equal(veil_poly_rescale(one, inq, &err), VEIL_OK);
    /* ModUp: input over D, output over D then E */
    EXPECT(veil_poly_mod_up(out, in, conv, &err), VEIL_ERR_MISMATCH);
    EXPECT(veil_poly_mod_up(up_bad, inq, conv, &err), VEIL_ERR_MISMATCH); /* E out of order */
    EXPECT(veil_poly_mod_up(up, wrong, conv, &err), VEIL_ERR_MISMATCH);   /* input over E */
    EXPECT(veil_poly_mod_up(up, in_g, conv, &err), VEIL_ERR_MISMATCH);    /* another ring */
    EXPECT(veil_poly_mod_up(up, inq, NULL, &err), VEIL_ERR_NULL);
    assert_int_equal(veil_poly_mod_up(up, inq, conv, &err), VEIL_OK);
    /* ModDown with conv: {0,1} -> {2,3}: input over {2,3} then {0,1}, output over {2,3} */
    EXPECT(veil_poly_mod_down(out, in, conv, &err), VEIL_ERR_MISMATCH);
    EXPECT(veil_poly_mod_down(out, down_bad, conv, &err), VEIL_ERR_MISMATCH); /* P first */
    EXPECT(veil_poly_mod_down(out_ba, down_in, conv, &err), VEIL_ERR_MISMATCH); /* Q out of order */
    EXPECT(veil_poly_mod_down(inq, down_in, conv, &err), VEIL_ERR_MISMATCH);    /* output over P */
    EXPECT(veil_poly_mod_down(NULL, in, conv, &err), VEIL_ERR_NULL);
    EXPECT(veil_poly_mod_down(out, down_in, NULL, &err), VEIL_ERR_NULL);
    assert_int_equal(veil_poly_mod_down(out, down_in, conv, &err), VEIL_OK);
    veil_poly *polys[] = {in, out, wrong, one, out_ba, inq, in_g, up, up_bad, down_in, down_bad, three, c_out};
    for (size_t i = 0; i < sizeof polys / sizeof *polys; i++) veil_poly_free(polys[i]);
    veil_base_conv_free(conv);
    veil_base_conv_free(other);
    veil_base_conv_free(NULL);
    release(&f);
    release(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base_conversion), cmocka_unit_test(test_base_conversion_wide),
        cmocka_unit_test(test_rescale_exact),
        cmocka_unit_test(test_mod_up),          cmocka_unit_test(test_mod_down),
        cmocka_unit_test(test_bgv_rescale_mod_down),
        cmocka_unit_test(test_bgv_rescale_mod_down),
        cmocka_unit_test(test_thread_count_independent), cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
