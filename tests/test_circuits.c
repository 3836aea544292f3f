/*
 * Circuits (veil/circuits.h) on CKKS ciphertexts, against the same computations on the plaintext vectors:
 * rotate-and-sum and inner products, Chebyshev evaluation, the linear layer, the baby-step giant-step linear
 * transform. Run with both NTT kernels. (BGV's sum_slots is checked with the BGV rotations in test_bgv, CKKS's
 * rotate_sum with the hoisted rotations in test_ckks.)
 */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <complex.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "veil/veil.h"
#include "ckks_fixture.h"

/* sum_slots and inner_product against the plaintext sums; the rotation key set helper. */
static void test_sums_and_key_sets(void **state)
{
    (void)state;
    const size_t s = fx->slots;
    double *ar = calloc(s, 8), *br = calloc(s, 8), *er = calloc(s, 8);
    random_values(ar, NULL, s, 13);
    random_values(br, NULL, s, 14);
    veil_error err = {0};
    /* the smallest key set composing the rotations 1, 2, 4, ... is those rotations themselves */
    long steps[12];
    size_t nsteps = 0;
    for (size_t st = 1; st < s; st <<= 1) steps[nsteps++] = (long)st;
    uint64_t elements[64];
    size_t nkeys = 0;
    assert_int_equal(veil_rotation_key_set(elements, &nkeys, 64, fx->ctx, steps, nsteps, &err), VEIL_OK);
    assert_int_equal(nkeys, nsteps);
    /* arbitrary steps 3, 5, 6, 7, 9, 10, 11, 12, 13: powers of two (1, 2, 4, 8) are fewer keys than the steps */
    const long many[] = {3, 5, 6, 7, 9, 10, 11, 12, 13};
    assert_int_equal(veil_rotation_key_set(elements, &nkeys, 64, fx->ctx, many, 9, &err), VEIL_OK);
    assert_int_equal(nkeys, 4);
    assert_int_equal(veil_rotation_key_set(elements, &nkeys, 2, fx->ctx, many, 9, &err), VEIL_ERR_ARGUMENT);
    veil_switch_key *keys[12];
    for (size_t k = 0; k < nsteps; k++)
        assert_int_equal(veil_galois_key_new(&keys[k], fx->ctx, fx->sk, veil_galois_element_rotation(fx->ctx, steps[k]),
                                             fx->prng, &err), VEIL_OK);
    veil_ckks_ciphertext *a = encrypt(ar, NULL, 2), *b = encrypt(br, NULL, 2), *c = NULL;
    assert_int_equal(veil_ckks_ciphertext_new(&c, fx->ctx, NULL), VEIL_OK);
    assert_int_equal(veil_ckks_sum_slots(fx->ctx, c, a, 0, (const veil_switch_key *const *)keys, nsteps, &err), VEIL_OK);
    double sum = 0, dot = 0;
    for (size_t i = 0; i < s; i++) {
        sum += ar[i];
        dot += ar[i] * br[i];
    }
    for (size_t i = 0; i < s; i++) er[i] = sum;
    double e = max_error(c, er, NULL);
    printf("sum of %zu slots: max error %.3g\n", s, e);
    assert_true(e < 2e-6); /* 12 rotations: each doubles the noise it adds to (sqrt(4096) = 64x one rotation) */
    assert_int_equal(veil_ckks_inner_product(fx->ctx, c, a, b, 0, fx->rk, (const veil_switch_key *const *)keys, nsteps,
                                             &err), VEIL_OK);
    for (size_t i = 0; i < s; i++) er[i] = dot;
    e = max_error(c, er, NULL);
    printf("inner product: max error %.3g\n", e);
    assert_true(e < 2e-6);
    /* sparse packing: 16 values replicated; a rotation by 3 is cyclic on 16; the 16-slot sum is their sum */
    {
        double v[16], out[16];
        for (int i = 0; i < 16; i++) v[i] = 0.1 * i - 0.7;
        veil_ckks_plaintext *sp = NULL;
        veil_ckks_ciphertext *sc = NULL, *rot = NULL;
        veil_switch_key *k3 = NULL;
        assert_int_equal(veil_ckks_plaintext_new(&sp, fx->ctx, NULL), VEIL_OK);
        assert_int_equal(veil_ckks_encode_sparse(fx->enc, sp, v, NULL, 16, fx->scale, 2, &err), VEIL_OK);
        assert_int_equal(veil_ckks_ciphertext_new(&sc, fx->ctx, NULL), VEIL_OK);
        assert_int_equal(veil_ckks_ciphertext_new(&rot, fx->ctx, NULL), VEIL_OK);
        assert_int_equal(veil_ckks_encrypt_pk(fx->ctx, sc, sp, fx->pk, fx->prng, &err), VEIL_OK);
        assert_int_equal(veil_galois_key_new(&k3, fx->ctx, fx->sk, veil_galois_element_rotation(fx->ctx, 3), fx->prng, &err),
                         VEIL_OK);
        assert_int_equal(veil_ckks_rotate(fx->ctx, rot, sc, 3, k3, &err), VEIL_OK);
        assert_int_equal(veil_ckks_decrypt(fx->ctx, sp, rot, fx->sk, &err), VEIL_OK);
        assert_int_equal(veil_ckks_decode(fx->enc, out, NULL, 16, sp, &err), VEIL_OK);
        for (int i = 0; i < 16; i++) assert_true(fabs(out[i] - v[(i + 3) % 16]) < 1e-7);
        assert_int_equal(veil_ckks_sum_slots(fx->ctx, rot, sc, 16, (const veil_switch_key *const *)keys, nsteps, &err),
                         VEIL_OK);
        assert_int_equal(veil_ckks_decrypt(fx->ctx, sp, rot, fx->sk, &err), VEIL_OK);
        assert_int_equal(veil_ckks_decode(fx->enc, out, NULL, 16, sp, &err), VEIL_OK);
        for (int i = 0; i < 16; i++) assert_true(fabs(out[i] - (0.1 * 120 - 0.7 * 16)) < 1e-6);
        assert_int_equal(veil_ckks_encode_sparse(fx->enc, sp, v, NULL, 12, fx->scale, 2, &err), VEIL_ERR_ARGUMENT);
        veil_switch_key_free(k3);
        veil_ckks_ciphertext_free(sc);
        veil_ckks_ciphertext_free(rot);
        veil_ckks_plaintext_free(sp);
    }
    /* a missing key is named */
    assert_int_equal(veil_ckks_sum_slots(fx->ctx, c, a, 0, (const veil_switch_key *const *)keys, nsteps - 1, &err),
                     VEIL_ERR_MISMATCH);
    assert_non_null(strstr(err.detail, "no Galois key"));
    for (size_t k = 0; k < nsteps; k++) veil_switch_key_free(keys[k]);
    veil_ckks_ciphertext_free(a);
    veil_ckks_ciphertext_free(b);
    veil_ckks_ciphertext_free(c);
    free(ar); free(br); free(er);
}

/* Chebyshev sum at x by Clenshaw's recurrence, in double precision: the reference. */
static double chebyshev_plain(const double *c, size_t degree, double x, double lo, double hi)
{
    const double t = (2 * x - (lo + hi)) / (hi - lo);
    double b1 = 0, b2 = 0;
    for (size_t k = degree; k >= 1; k--) {
        double b = 2 * t * b1 - b2 + c[k];
        b2 = b1;
        b1 = b;
    }
    return t * b1 - b2 + c[0];
}

/* A degree-31 Chebyshev approximation of the logistic sigmoid on [-8, 8], encrypted vs in the clear. */
static void test_chebyshev(void **state)
{
    (void)state;
    veil_error err = {0};
    veil_params *params = NULL;
    veil_context *ctx = NULL;
    veil_ckks_encoder *enc = NULL;
    veil_secret_key *sk = NULL;
    veil_switch_key *rk = NULL;
    assert_int_equal(veil_params_preset(&params, "ckks-n16384-d7", &err), VEIL_OK);
    assert_int_equal(veil_context_new(&ctx, params, NULL, &err), VEIL_OK);
    assert_int_equal(veil_ckks_encoder_new(&enc, ctx, &err), VEIL_OK);
    assert_int_equal(veil_secret_key_new(&sk, ctx, fx->prng, &err), VEIL_OK);
    assert_int_equal(veil_relin_key_new(&rk, ctx, sk, fx->prng, &err), VEIL_OK);
    const size_t degree = 31, slots = 8192;
    const double lo = -8, hi = 8, pi = 3.14159265358979323846;
    double c[32] = {0};
    for (size_t k = 0; k <= degree; k++) {
        for (size_t j = 0; j <= degree; j++) {
            double theta = pi * (j + 0.5) / (degree + 1), x = cos(theta) * (hi - lo) / 2 + (hi + lo) / 2;
            c[k] += 2.0 / (degree + 1) / (1 + exp(-x)) * cos(k * theta);
        }
    }
    c[0] /= 2;
    assert_int_equal(veil_ckks_chebyshev_depth(degree), 7);
    double *x = calloc(slots, 8), *y = calloc(slots, 8);
    srand(21);
    for (size_t i = 0; i < slots; i++) x[i] = lo + (hi - lo) * rand() / RAND_MAX;
    veil_ckks_plaintext *pt = NULL;
    veil_ckks_ciphertext *ct = NULL, *res = NULL;
    assert_int_equal(veil_ckks_plaintext_new(&pt, ctx, &err), VEIL_OK);
    assert_int_equal(veil_ckks_encode(enc, pt, x, NULL, slots, ldexp(1, 40), 7, &err), VEIL_OK);
    assert_int_equal(veil_ckks_ciphertext_new(&ct, ctx, &err), VEIL_OK);
    assert_int_equal(veil_ckks_ciphertext_new(&res, ctx, &err), VEIL_OK);
    assert_int_equal(veil_ckks_encrypt_sk(ctx, ct, pt, sk, fx->prng, &err), VEIL_OK);
    assert_int_equal(veil_ckks_eval_chebyshev(ctx, res, ct, c, degree, lo, hi, rk, &err), VEIL_OK);
    assert_int_equal(veil_ckks_ciphertext_level(res), 0);
    assert_true(fabs(veil_ckks_ciphertext_scale(res) - ldexp(1, 40)) < 1);
    assert_int_equal(veil_ckks_decrypt(ctx, pt, res, sk, &err), VEIL_OK);
    assert_int_equal(veil_ckks_decode(enc, y, NULL, slots, pt, &err), VEIL_OK);
    double worst = 0, approx = 0;
    for (size_t i = 0; i < slots; i++) {
        worst = fmax(worst, fabs(y[i] - chebyshev_plain(c, degree, x[i], lo, hi)));
        approx = fmax(approx, fabs(chebyshev_plain(c, degree, x[i], lo, hi) - 1 / (1 + exp(-x[i]))));
    }
    printf("chebyshev degree %zu: encrypted vs clear %.3g, approximation error %.3g\n", degree, worst, approx);
    assert_true(worst < 1e-6);
    /* other degrees, with zero coefficients, random values: every level prediction must hold */
    const size_t degrees[] = {1, 2, 3, 5, 8, 13, 16, 20, 31};
    for (size_t t = 0; t < sizeof degrees / sizeof degrees[0]; t++) {
        double r[32] = {0};
        for (size_t k = 0; k <= degrees[t]; k++) r[k] = (k % 3 == 1) ? 0.0 : 2.0 * rand() / RAND_MAX - 1.0;
        r[degrees[t]] = 0.5;
        assert_int_equal(veil_ckks_eval_chebyshev(ctx, res, ct, r, degrees[t], lo, hi, rk, &err), VEIL_OK);
        assert_int_equal(veil_ckks_ciphertext_level(res), 7 - veil_ckks_chebyshev_depth(degrees[t]));
        assert_int_equal(veil_ckks_decrypt(ctx, pt, res, sk, &err), VEIL_OK);
        assert_int_equal(veil_ckks_decode(enc, y, NULL, slots, pt, &err), VEIL_OK);
        double w = 0;
        for (size_t i = 0; i < slots; i++) w = fmax(w, fabs(y[i] - chebyshev_plain(r, degrees[t], x[i], lo, hi)));
        /* errors of T_k grow with k (T_2k = 2 T_k^2 - 1 doubles the slope), weighted by the coefficients */
        double l1 = 0;
        for (size_t k = 0; k <= degrees[t]; k++) l1 += fabs(r[k]);
        printf("chebyshev degree %zu (depth %zu): %.3g (sum |c| %.2f)\n", degrees[t],
               veil_ckks_chebyshev_depth(degrees[t]), w, l1);
        assert_true(w < 5e-8 * l1 * (double)degrees[t]);
    }
    /* one level short */
    assert_int_equal(veil_ckks_mod_drop(ctx, ct, ct, 6, &err), VEIL_OK);
    assert_int_equal(veil_ckks_eval_chebyshev(ctx, res, ct, c, degree, lo, hi, rk, &err), VEIL_ERR_ARGUMENT);
    assert_non_null(strstr(err.detail, "needs 7 levels"));
    /* constants */
    assert_int_equal(veil_ckks_mul_constant(ctx, res, ct, -0.75, &err), VEIL_OK);
    assert_int_equal(veil_ckks_add_constant(ctx, res, res, 0.5, &err), VEIL_OK);
    assert_int_equal(veil_ckks_decrypt(ctx, pt, res, sk, &err), VEIL_OK);
    assert_int_equal(veil_ckks_decode(enc, y, NULL, slots, pt, &err), VEIL_OK);
    worst = 0;
    for (size_t i = 0; i < slots; i++) worst = fmax(worst, fabs(y[i] - (0.5 - 0.75 * x[i])));
    assert_true(worst < 1e-7);
    free(x);
    free(y);
    veil_ckks_plaintext_free(pt);
    veil_ckks_ciphertext_free(ct);
    veil_ckks_ciphertext_free(res);
    veil_switch_key_free(rk);
    veil_secret_key_free(sk);
    veil_ckks_encoder_free(enc);
    veil_context_free(ctx);
    veil_params_free(params);
}

/* A degree-63 Chebyshev polynomial (the precision case) at N = 32768, scale 2^50. */
static void test_chebyshev_63(void **state)
{
    (void)state;
    veil_error err = {0};
    veil_params *params = NULL;
    veil_context *ctx = NULL;
    veil_ckks_encoder *enc = NULL;
    veil_secret_key *sk = NULL;
    veil_switch_key *rk = NULL;
    assert_int_equal(veil_params_preset(&params, "ckks-n32768-d14", &err), VEIL_OK);
    assert_int_equal(veil_context_new(&ctx, params, NULL, &err), VEIL_OK);
    assert_int_equal(veil_ckks_encoder_new(&enc, ctx, &err), VEIL_OK);
    assert_int_equal(veil_secret_key_new(&sk, ctx, fx->prng, &err), VEIL_OK);
    assert_int_equal(veil_relin_key_new(&rk, ctx, sk, fx->prng, &err), VEIL_OK);
    const size_t degree = 63, slots = 16384, top = 14;
    double c[64];
    srand(63);
    for (size_t k = 0; k <= degree; k++) c[k] = (2.0 * rand() / RAND_MAX - 1.0) / (double)(1 + k); /* decaying */
    double *x = calloc(slots, 8), *y = calloc(slots, 8);
    for (size_t i = 0; i < slots; i++) x[i] = 2.0 * rand() / RAND_MAX - 1.0;
    veil_ckks_plaintext *pt = NULL;
    veil_ckks_ciphertext *ct = NULL, *res = NULL;
    assert_int_equal(veil_ckks_plaintext_new(&pt, ctx, &err), VEIL_OK);
    assert_int_equal(veil_ckks_encode(enc, pt, x, NULL, slots, ldexp(1, 50), top, &err), VEIL_OK);
    assert_int_equal(veil_ckks_ciphertext_new(&ct, ctx, &err), VEIL_OK);
    assert_int_equal(veil_ckks_ciphertext_new(&res, ctx, &err), VEIL_OK);
    assert_int_equal(veil_ckks_encrypt_sk(ctx, ct, pt, sk, fx->prng, &err), VEIL_OK);
    assert_int_equal(veil_ckks_eval_chebyshev(ctx, res, ct, c, degree, -1, 1, rk, &err), VEIL_OK);
    assert_int_equal(veil_ckks_ciphertext_level(res), top - veil_ckks_chebyshev_depth(degree));
    assert_int_equal(veil_ckks_decrypt(ctx, pt, res, sk, &err), VEIL_OK);
    assert_int_equal(veil_ckks_decode(enc, y, NULL, slots, pt, &err), VEIL_OK);
    double worst = 0, l1 = 0;
    for (size_t i = 0; i < slots; i++) worst = fmax(worst, fabs(y[i] - chebyshev_plain(c, degree, x[i], -1, 1)));
    for (size_t k = 0; k <= degree; k++) l1 += fabs(c[k]);
    printf("chebyshev degree 63 at N=32768, scale 2^50: encrypted vs clear %.3g (%.1f bits; sum |c| %.2f)\n", worst,
           -log2(worst), l1);
    /* the header's rule, 1e-8 * sum |c| * degree at scale 2^40, is 2^10 smaller at 2^50; twice that */
    assert_true(worst < 2e-11 * l1 * (double)degree);
    free(x);
    free(y);
    veil_ckks_plaintext_free(pt);
    veil_ckks_ciphertext_free(ct);
    veil_ckks_ciphertext_free(res);
    veil_switch_key_free(rk);
    veil_secret_key_free(sk);
    veil_ckks_encoder_free(enc);
    veil_context_free(ctx);
    veil_params_free(params);
}

/*
 * The preset ckks-n8192-d2 (*params) and `count` ciphertexts in their stored form, ciphertext i holding the 128
 * values f(128 i + r) at scale 2^40 and level 2, encrypted under a secret key made now.
 */
static void stored_inputs(veil_params **params, veil_buffer *in_bytes, size_t count, double (*f)(double))
{
    veil_error err = {0};
    veil_context *ctx = NULL;
    veil_ckks_encoder *enc = NULL;
    veil_secret_key *sk = NULL;
    veil_ckks_plaintext *pt = NULL;
    enum { COUNT = 128 };
    double x[COUNT];
    assert_int_equal(veil_params_preset(params, "ckks-n8192-d2", &err), VEIL_OK);
    assert_int_equal(veil_context_new(&ctx, *params, NULL, &err), VEIL_OK);
    assert_int_equal(veil_ckks_encoder_new(&enc, ctx, &err), VEIL_OK);
    assert_int_equal(veil_secret_key_new(&sk, ctx, fx->prng, &err), VEIL_OK);
    assert_int_equal(veil_ckks_plaintext_new(&pt, ctx, &err), VEIL_OK);
    for (size_t i = 0; i < count; i++) {
        for (size_t r = 0; r < COUNT; r++) x[r] = f((double)(i * COUNT + r));
        veil_ckks_ciphertext *ct = NULL;
        assert_int_equal(veil_ckks_encode(enc, pt, x, NULL, COUNT, ldexp(1.0, 40), 2, &err), VEIL_OK);
        assert_int_equal(veil_ckks_ciphertext_new(&ct, ctx, &err), VEIL_OK);
        assert_int_equal(veil_ckks_encrypt_sk(ctx, ct, pt, sk, fx->prng, &err), VEIL_OK);
        memset(&in_bytes[i], 0, sizeof in_bytes[i]);
        assert_int_equal(veil_ckks_ciphertext_save(&in_bytes[i], ct, 0, &err), VEIL_OK);
        veil_ckks_ciphertext_free(ct);
    }
    veil_ckks_plaintext_free(pt);
    veil_secret_key_free(sk);
    veil_ckks_encoder_free(enc);
    veil_context_free(ctx);
}

/*
 * One layer of `count` inputs (input i the stored ciphertext i % distinct) to `outs` outputs in a context made
 * now: its outputs' bytes, one after another.
 */
static void group_layer_bytes(veil_buffer *out_bytes, const veil_params *params, const veil_buffer *in_bytes,
                              size_t distinct, size_t count, size_t outs, const double *w)
{
    veil_error err = {0};
    veil_context *ctx = NULL;
    assert_int_equal(veil_context_new(&ctx, params, NULL, &err), VEIL_OK);
    veil_ckks_ciphertext *base[40], **in = calloc(count, sizeof *in), *out[16];
    assert_non_null(in);
    for (size_t i = 0; i < distinct; i++)
        assert_int_equal(veil_ckks_ciphertext_load(&base[i], ctx, in_bytes[i].data, in_bytes[i].len, &err), VEIL_OK);
    for (size_t i = 0; i < count; i++) in[i] = base[i % distinct];
    for (size_t o = 0; o < outs; o++) assert_int_equal(veil_ckks_ciphertext_new(&out[o], ctx, &err), VEIL_OK);
    assert_int_equal(veil_ckks_linear_layer(ctx, out, outs, (const veil_ckks_ciphertext *const *)in, count, w, NULL,
                                            NULL, &err),
                     VEIL_OK);
    for (size_t o = 0; o < outs; o++) {
        veil_buffer one = {0};
        assert_int_equal(veil_ckks_ciphertext_save(&one, out[o], 0, &err), VEIL_OK);
        uint8_t *grown = realloc(out_bytes->data, out_bytes->len + one.len);
        assert_non_null(grown);
        memcpy(grown + out_bytes->len, one.data, one.len);
        out_bytes->data = grown;
        out_bytes->len += one.len;
        veil_buffer_free(&one);
        veil_ckks_ciphertext_free(out[o]);
    }
    for (size_t i = 0; i < distinct; i++) veil_ckks_ciphertext_free(base[i]);
    free(in);
    veil_context_free(ctx);
}

/*
 * The AVX-512 IFMA sums of a layer (where the CPU has them) and the AVX2 ones (VEIL_NO_AVX512=1) give the same
 * bits: both are exact modular sums.
 */
static void test_linear_layer_ifma_equals_avx2(void **state)
{
    (void)state;
    veil_params *params = NULL;
    enum { IN = 40 };
    veil_buffer in_bytes[IN];
    double w[IN];
    stored_inputs(&params, in_bytes, IN, sin);
    for (size_t i = 0; i < IN; i++) w[i] = (double)((int)(i % 9) - 4) * 0.37;
    /* one output of 40 inputs: two chunks of terms */
    veil_buffer a = {0}, b = {0};
    group_layer_bytes(&a, params, in_bytes, IN, IN, 1, w);
    setenv("VEIL_NO_AVX512", "1", 1);
    group_layer_bytes(&b, params, in_bytes, IN, IN, 1, w);
    unsetenv("VEIL_NO_AVX512");
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.data, b.data, a.len);
    veil_buffer_free(&a);
    veil_buffer_free(&b);
    for (size_t i = 0; i < IN; i++) veil_buffer_free(&in_bytes[i]);
    veil_params_free(params);
}

/*
 * The IFMA kernel's groups (outputs that read the same inputs, four at a time): a dense group of 6, a sparse
 * group of 5, outputs of their own, an all-zero output, and 1,030 terms (the sums taken in two parts), each
 * output the same bits at the IFMA level as at the AVX2 one (VEIL_NO_AVX512=1).
 */
static void test_linear_layer_groups_ifma_equals_avx2(void **state)
{
    (void)state;
    veil_params *params = NULL;
    enum { DISTINCT = 40, OUT = 14 };
    veil_buffer in_bytes[DISTINCT];
    stored_inputs(&params, in_bytes, DISTINCT, cos);
    const size_t counts[2] = {DISTINCT, 1030};
    for (size_t run = 0; run < 2; run++) {
        const size_t in_count = counts[run];
        double *w = calloc(OUT * in_count, sizeof *w);
        assert_non_null(w);
        for (size_t o = 0; o < OUT; o++)
            for (size_t i = 0; i < in_count; i++) {
                const double v = (double)((int)((o * 7 + i * 3) % 11) - 5) * 0.29 + 0.01;
                if (o < 6) w[o * in_count + i] = v;                          /* dense: one group */
                else if (o < 11) w[o * in_count + i] = i % 3 == 0 ? v : 0;   /* sparse: another */
                else if (o < 13) w[o * in_count + i] = i % (o - 8) == 1 ? v : 0; /* alone */
                /* output 13: all zero */
            }
        veil_buffer a = {0}, b = {0};
        group_layer_bytes(&a, params, in_bytes, DISTINCT, in_count, OUT, w);
        setenv("VEIL_NO_AVX512", "1", 1);
        group_layer_bytes(&b, params, in_bytes, DISTINCT, in_count, OUT, w);
        unsetenv("VEIL_NO_AVX512");
        assert_int_equal(a.len, b.len);
        assert_memory_equal(a.data, b.data, a.len);
        veil_buffer_free(&a);
        veil_buffer_free(&b);
        free(w);
    }
    for (size_t i = 0; i < DISTINCT; i++) veil_buffer_free(&in_bytes[i]);
    veil_params_free(params);
}

/*
 * A layer of 9 inputs to 10 outputs (the input-major kernel) over 64 values in [-100, 100] at scale 2^36 and level
 * 1, weights up to 112.5 and biases up to 9000: outputs up to about 3e4, on parameters of the given first prime.
 */
enum { WIDE_IN = 9, WIDE_OUT = 10, WIDE_COUNT = 64 };
typedef struct wide_layer {
    veil_params *params;
    veil_context *ctx;
    veil_ckks_encoder *enc;
    veil_secret_key *sk;
    veil_ckks_plaintext *pt;
    double x[WIDE_IN][WIDE_COUNT], w[WIDE_OUT * WIDE_IN], b[WIDE_OUT];
    veil_ckks_ciphertext *in[WIDE_IN], *out[WIDE_OUT];
} wide_layer;

static void wide_layer_init(wide_layer *t, unsigned first_bits, unsigned seed)
{
    veil_error err = {0};
    memset(t, 0, sizeof *t);
    veil_params_request req = {.depth = 2, .scale_bits = 36, .first_bits = first_bits, .security = VEIL_SECURITY_128};
    assert_int_equal(veil_params_select(&t->params, &req, &err), VEIL_OK);
    assert_int_equal(veil_context_new(&t->ctx, t->params, NULL, &err), VEIL_OK);
    assert_int_equal(veil_ckks_encoder_new(&t->enc, t->ctx, &err), VEIL_OK);
    assert_int_equal(veil_secret_key_new(&t->sk, t->ctx, fx->prng, &err), VEIL_OK);
    assert_int_equal(veil_ckks_plaintext_new(&t->pt, t->ctx, &err), VEIL_OK);
    unsigned s = seed;
    for (size_t i = 0; i < WIDE_IN; i++) {
        for (size_t r = 0; r < WIDE_COUNT; r++) {
            s = s * 1103515245u + 12345u;
            t->x[i][r] = (double)(s >> 8) / (double)(1u << 24) * 200.0 - 100.0;
        }
        assert_int_equal(veil_ckks_encode(t->enc, t->pt, t->x[i], NULL, WIDE_COUNT, ldexp(1.0, 36), 1, &err), VEIL_OK);
        assert_int_equal(veil_ckks_ciphertext_new(&t->in[i], t->ctx, &err), VEIL_OK);
        assert_int_equal(veil_ckks_encrypt_sk(t->ctx, t->in[i], t->pt, t->sk, fx->prng, &err), VEIL_OK);
    }
    for (size_t k = 0; k < WIDE_OUT * WIDE_IN; k++) t->w[k] = (double)((int)(k % 7) - 3) * 37.5;
    for (size_t o = 0; o < WIDE_OUT; o++) {
        t->b[o] = 1000.0 * (double)o;
        assert_int_equal(veil_ckks_ciphertext_new(&t->out[o], t->ctx, &err), VEIL_OK);
    }
}

/* The outputs decrypted against the plaintext layer: the largest error, and the largest |output| (*top). */
static double wide_layer_error(wide_layer *t, double *top)
{
    veil_error err = {0};
    double got[WIDE_COUNT], worst = 0;
    *top = 0;
    for (size_t o = 0; o < WIDE_OUT; o++) {
        assert_int_equal(veil_ckks_decrypt(t->ctx, t->pt, t->out[o], t->sk, &err), VEIL_OK);
        assert_int_equal(veil_ckks_decode(t->enc, got, NULL, WIDE_COUNT, t->pt, &err), VEIL_OK);
        for (size_t r = 0; r < WIDE_COUNT; r++) {
            double want = t->b[o];
            for (size_t i = 0; i < WIDE_IN; i++) want += t->w[o * WIDE_IN + i] * t->x[i][r];
            worst = fmax(worst, fabs(got[r] - want));
            *top = fmax(*top, fabs(want));
        }
    }
    return worst;
}

static void wide_layer_free(wide_layer *t)
{
    for (size_t o = 0; o < WIDE_OUT; o++) veil_ckks_ciphertext_free(t->out[o]);
    for (size_t i = 0; i < WIDE_IN; i++) veil_ckks_ciphertext_free(t->in[i]);
    veil_ckks_plaintext_free(t->pt);
    veil_secret_key_free(t->sk);
    veil_ckks_encoder_free(t->enc);
    veil_context_free(t->ctx);
    veil_params_free(t->params);
}

/*
 * A linear layer whose limbs mix a 60-bit first prime (beyond the AVX2 kernels, as the ML plans choose when
 * the outputs' bound asks for it) with 36-bit ones: each limb takes its own kernel, and the sums are the
 * plaintext's (run under both kernels, test_ckks and test_ckks_scalar).
 */
static void test_linear_layer_large_first_prime(void **state)
{
    (void)state;
    veil_error err = {0};
    wide_layer *t = malloc(sizeof *t);
    assert_non_null(t);
    wide_layer_init(t, 60, 5); /* values beyond what 2^14 above the scale holds */
    assert_true(veil_params_q(t->params, 0) >= ((uint64_t)1 << 59));
    assert_int_equal(veil_ckks_linear_layer(t->ctx, t->out, WIDE_OUT, (const veil_ckks_ciphertext *const *)t->in,
                                            WIDE_IN, t->w, t->b, NULL, &err),
                     VEIL_OK);
    double top = 0;
    assert_true(wide_layer_error(t, &top) < 1e-3); /* outputs up to 3e4, at scale 2^36 with a 60-bit q_0 */
    wide_layer_free(t);
    free(t);
}

/*
 * The last layer of a network at a lower scale (veil_ckks_linear_layer_shifted): outputs up to 3e4 at scale 2^36
 * outgrow a 50-bit first prime (they wrap around without the shift), and fit it at 2^32 with the plaintext's
 * values; the outputs carry the lower scale.
 */
static void test_linear_layer_shifted(void **state)
{
    (void)state;
    veil_error err = {0};
    wide_layer *t = malloc(sizeof *t);
    assert_non_null(t);
    wide_layer_init(t, 50, 7);
    assert_true(veil_params_q(t->params, 0) < ((uint64_t)1 << 50));
    const veil_ckks_ciphertext *const *in = (const veil_ckks_ciphertext *const *)t->in;
    for (unsigned shift = 0; shift <= 4; shift += 4) {
        assert_int_equal(veil_ckks_linear_layer_shifted(t->ctx, t->out, WIDE_OUT, in, WIDE_IN, t->w, t->b, shift, NULL,
                                                        &err),
                         VEIL_OK);
        for (size_t o = 0; o < WIDE_OUT; o++)
            assert_true(fabs(veil_ckks_ciphertext_scale(t->out[o]) / ldexp(1.0, 36 - (int)shift) - 1) < 1e-12);
        double top = 0;
        const double worst = wide_layer_error(t, &top);
        assert_true(top > 2e4); /* beyond q_0 / 2 at 2^36: 2^49 / 2^36 = 8192 */
        if (shift == 0) assert_true(worst > 1.0); /* wrapped around */
        else assert_true(worst < 1e-3);
    }
    assert_int_equal(veil_ckks_linear_layer_shifted(t->ctx, t->out, WIDE_OUT, in, WIDE_IN, t->w, t->b, 17, NULL, &err),
                     VEIL_ERR_ARGUMENT);
    wide_layer_free(t);
    free(t);
}

/*
 * At a 2^60 scale (inference keys with flooding's room) weights, biases, constants and encoded values times
 * the scale pass 2^62: the layer, add_constant, mul_constant and the encoder carry them by their exact
 * residues, and the results match the plaintext's to the scale's precision; past the level's modulus they
 * are refused.
 */
static void test_linear_layer_wide_integers(void **state)
{
    (void)state;
    veil_error err = {0};
    veil_params *params = NULL;
    veil_context *ctx = NULL;
    veil_ckks_encoder *enc = NULL;
    veil_secret_key *sk = NULL;
    veil_params_request req = {.depth = 2, .scale_bits = 60, .first_bits = 61, .security = VEIL_SECURITY_128};
    assert_int_equal(veil_params_select(&params, &req, &err), VEIL_OK);
    assert_int_equal(veil_context_new(&ctx, params, NULL, &err), VEIL_OK);
    assert_int_equal(veil_ckks_encoder_new(&enc, ctx, &err), VEIL_OK);
    assert_int_equal(veil_secret_key_new(&sk, ctx, fx->prng, &err), VEIL_OK);
    enum { IN = 5, OUT = 9, COUNT = 32 }; /* 9 outputs: the input-major kernel where it applies */
    const double scale = ldexp(1.0, 60);
    double x[IN][COUNT], w[OUT * IN], b[OUT], got[COUNT];
    veil_ckks_ciphertext *in[IN], *out[OUT], *t = NULL;
    veil_ckks_plaintext *pt = NULL;
    assert_int_equal(veil_ckks_plaintext_new(&pt, ctx, &err), VEIL_OK);
    for (size_t i = 0; i < IN; i++) {
        for (size_t r = 0; r < COUNT; r++) x[i][r] = 100.0 * sin((double)(i * COUNT + r)); /* 100 * 2^60: 2^66.6 */
        assert_int_equal(veil_ckks_encode(enc, pt, x[i], NULL, COUNT, scale, 2, &err), VEIL_OK);
        assert_int_equal(veil_ckks_ciphertext_new(&in[i], ctx, &err), VEIL_OK);
        assert_int_equal(veil_ckks_encrypt_sk(ctx, in[i], pt, sk, fx->prng, &err), VEIL_OK);
    }
    for (size_t k = 0; k < OUT * IN; k++) w[k] = (double)((int)(k % 7) - 3) * 43.3 + (k % 5 == 0 ? 0.001 : 0);
    for (size_t o = 0; o < OUT; o++) {
        b[o] = 250.0 * (double)o - 1000.0;
        assert_int_equal(veil_ckks_ciphertext_new(&out[o], ctx, &err), VEIL_OK);
    }
    assert_int_equal(veil_ckks_linear_layer(ctx, out, OUT, (const veil_ckks_ciphertext *const *)in, IN, w, b, NULL, &err),
                     VEIL_OK);
    double worst = 0;
    for (size_t o = 0; o < OUT; o++) {
        assert_int_equal(veil_ckks_decrypt(ctx, pt, out[o], sk, &err), VEIL_OK);
        assert_int_equal(veil_ckks_decode(enc, got, NULL, COUNT, pt, &err), VEIL_OK);
        for (size_t r = 0; r < COUNT; r++) {
            double want = b[o];
            for (size_t i = 0; i < IN; i++) want += w[o * IN + i] * x[i][r];
            worst = fmax(worst, fabs(got[r] - want));
        }
    }
    printf("2^60 scale, weights up to 130 and biases up to 1000: largest error %.3g\n", worst);
    assert_true(worst < 1e-6); /* outputs up to 6.5e4: 2^-36 relative, far inside the 2^60 scale's precision */
    /* a constant past 2^62 at this scale, added and multiplied */
    assert_int_equal(veil_ckks_ciphertext_new(&t, ctx, &err), VEIL_OK);
    assert_int_equal(veil_ckks_add_constant(ctx, t, in[0], 12345.5, &err), VEIL_OK); /* 2^73.6 */
    assert_int_equal(veil_ckks_mul_constant(ctx, t, t, -7.25, &err), VEIL_OK);       /* 7.25 q_2: 2^62.9 */
    assert_int_equal(veil_ckks_decrypt(ctx, pt, t, sk, &err), VEIL_OK);
    assert_int_equal(veil_ckks_decode(enc, got, NULL, COUNT, pt, &err), VEIL_OK);
    worst = 0;
    for (size_t r = 0; r < COUNT; r++) worst = fmax(worst, fabs(got[r] - (x[0][r] + 12345.5) * -7.25));
    assert_true(worst < 1e-6); /* values up to 9e4 */
    /* past the modulus of the level: refused */
    w[3] = 1e40;
    assert_int_equal(veil_ckks_linear_layer(ctx, out, OUT, (const veil_ckks_ciphertext *const *)in, IN, w, b, NULL, &err),
                     VEIL_ERR_ARGUMENT);
    assert_non_null(strstr(err.detail, "does not fit the modulus"));
    assert_int_equal(veil_ckks_add_constant(ctx, t, in[0], 1e40, &err), VEIL_ERR_ARGUMENT);
    assert_int_equal(veil_ckks_mul_constant(ctx, t, in[0], 1e40, &err), VEIL_ERR_ARGUMENT);
    for (size_t o = 0; o < OUT; o++) veil_ckks_ciphertext_free(out[o]);
    for (size_t i = 0; i < IN; i++) veil_ckks_ciphertext_free(in[i]);
    veil_ckks_ciphertext_free(t);
    veil_ckks_plaintext_free(pt);
    veil_secret_key_free(sk);
    veil_ckks_encoder_free(enc);
    veil_context_free(ctx);
    veil_params_free(params);
}

/*
 * One linear transform of n diagonals in steps of `unit` slots with baby step b, against W x in double
 * precision: random diagonals, NULL where k % 5 == 3, in all of group 1 (its giant rotation skipped) and in
 * the column i == 2 (its baby rotation skipped), keys only for the rotations used. On 1 and 2 threads (the same
 * ciphertext), with out == x, then with a key missing.
 */
static void check_transform(size_t n, size_t b, long unit, unsigned seed)
{
    const size_t s = fx->slots, level = 2, groups = (n + b - 1) / b;
    const double q = (double)veil_params_q(fx->params, level);
    veil_error err = {0};
    double *xv = calloc(s, sizeof *xv), *want = calloc(s, sizeof *want), *d = calloc(s, sizeof *d);
    double *got = calloc(s, sizeof *got), *got2 = calloc(s, sizeof *got2);
    veil_ckks_plaintext **diags = calloc(n, sizeof *diags), **diagx = calloc(n, sizeof *diagx), *pt = NULL;
    random_values(xv, NULL, s, seed);
    srand(seed + 1);
    for (size_t k = 0; k < n; k++) {
        for (size_t t = 0; t < s; t++) d[t] = 2.0 * rand() / RAND_MAX - 1.0;
        if (k % 5 == 3 || k / b == 1 || k % b == 2) continue;
        for (size_t t = 0; t < s; t++) want[t] += d[t] * xv[(t + k * (size_t)unit) % s];
        assert_int_equal(veil_ckks_plaintext_new(&diags[k], fx->ctx, NULL), VEIL_OK);
        assert_int_equal(veil_ckks_linear_transform_encode(fx->enc, diags[k], d, k, b, unit, q, level, &err), VEIL_OK);
        assert_int_equal(veil_ckks_plaintext_new(&diagx[k], fx->ctx, NULL), VEIL_OK);
        assert_int_equal(veil_ckks_linear_transform_encode_extended(fx->enc, diagx[k], d, k, b, unit, q, level, &err),
                         VEIL_OK);
    }
    /* the keys of the rotations a non-NULL diagonal uses: baby steps first, then giant steps */
    veil_switch_key *keys[64];
    size_t nkeys = 0;
    for (size_t i = 1; i < b; i++) {
        int used = 0;
        for (size_t k = i; k < n; k += b) used |= diags[k] != NULL;
        if (used)
            assert_int_equal(veil_galois_key_new(&keys[nkeys++], fx->ctx, fx->sk,
                                                 veil_galois_element_rotation(fx->ctx, (long)i * unit), fx->prng, &err),
                             VEIL_OK);
    }
    for (size_t j = 1; j < groups; j++) {
        int used = 0;
        for (size_t k = j * b; k < n && k < (j + 1) * b; k++) used |= diags[k] != NULL;
        if (used)
            assert_int_equal(veil_galois_key_new(&keys[nkeys++], fx->ctx, fx->sk,
                                                 veil_galois_element_rotation(fx->ctx, (long)(j * b) * unit), fx->prng,
                                                 &err),
                             VEIL_OK);
    }
    const veil_switch_key *const *ks = (const veil_switch_key *const *)keys;
    const veil_ckks_plaintext *const *ds = (const veil_ckks_plaintext *const *)diags;
    veil_ckks_ciphertext *x = encrypt(xv, NULL, level), *out = NULL;
    assert_int_equal(veil_ckks_ciphertext_new(&out, fx->ctx, NULL), VEIL_OK);
    assert_int_equal(veil_ckks_plaintext_new(&pt, fx->ctx, NULL), VEIL_OK);
    for (size_t threads = 1; threads <= 2; threads++) {
        assert_int_equal(veil_ckks_linear_transform(fx->ctx, out, x, ds, n, b, unit, ks, nkeys, threads, &err), VEIL_OK);
        /* not rescaled: x's level, the scale times q_l */
        assert_int_equal(veil_ckks_ciphertext_level(out), level);
        assert_true(fabs(veil_ckks_ciphertext_scale(out) / (fx->scale * q) - 1) < 1e-9);
        assert_int_equal(veil_ckks_rescale(fx->ctx, out, out, &err), VEIL_OK);
        const double e = max_error(out, want, NULL);
        printf("linear transform, %zu diagonals, baby step %zu, unit %ld, %zu thread(s): max error %.3g\n", n, b, unit,
               threads, e);
        assert_true(e < 1e-6);
        assert_int_equal(veil_ckks_decrypt(fx->ctx, pt, out, fx->sk, &err), VEIL_OK);
        assert_int_equal(veil_ckks_decode(fx->enc, threads == 1 ? got : got2, NULL, s, pt, &err), VEIL_OK);
    }
    assert_memory_equal(got, got2, s * sizeof *got); /* the threads change no operation */
    /*
     * double hoisting (diagonals also over Q_l P): the same result as the single-hoisted transform within
     * both's rounding (one ModDown instead of one per rotation), on 1 and 2 threads, in place
     */
    const veil_ckks_plaintext *const *dxs = (const veil_ckks_plaintext *const *)diagx;
    for (size_t threads = 1; threads <= 2; threads++) {
        assert_int_equal(veil_ckks_linear_transform(fx->ctx, out, x, dxs, n, b, unit, ks, nkeys, threads, &err),
                         VEIL_OK);
        assert_int_equal(veil_ckks_ciphertext_level(out), level);
        assert_int_equal(veil_ckks_ciphertext_size(out), 2);
        assert_true(fabs(veil_ckks_ciphertext_scale(out) / (fx->scale * q) - 1) < 1e-9);
        assert_int_equal(veil_ckks_rescale(fx->ctx, out, out, &err), VEIL_OK);
        const double e = max_error(out, want, NULL);
        assert_int_equal(veil_ckks_decrypt(fx->ctx, pt, out, fx->sk, &err), VEIL_OK);
        assert_int_equal(veil_ckks_decode(fx->enc, got2, NULL, s, pt, &err), VEIL_OK);
        double apart = 0;
        for (size_t t = 0; t < s; t++) apart = fmax(apart, fabs(got2[t] - got[t]));
        printf("linear transform, double hoisted, %zu diagonals, %zu thread(s): max error %.3g, %.3g from the "
               "single-hoisted one\n", n, threads, e, apart);
        assert_true(e < 1e-7); /* 2e-8 measured, below the single-hoisted transform's */
        assert_true(apart < 1e-7);
    }
    /* a missing key is named before anything is computed */
    assert_int_equal(veil_ckks_linear_transform(fx->ctx, out, x, dxs, n, b, unit, ks, nkeys - 1, 1, &err),
                     VEIL_ERR_MISMATCH);
    assert_non_null(strstr(err.detail, "no Galois key"));
    {
        veil_ckks_ciphertext *y = encrypt(xv, NULL, level);
        assert_int_equal(veil_ckks_linear_transform(fx->ctx, y, y, dxs, n, b, unit, ks, nkeys, 1, &err), VEIL_OK);
        assert_int_equal(veil_ckks_rescale(fx->ctx, y, y, &err), VEIL_OK);
        assert_true(max_error(y, want, NULL) < 1e-6);
        veil_ckks_ciphertext_free(y);
    }
    /* in place */
    assert_int_equal(veil_ckks_linear_transform(fx->ctx, x, x, ds, n, b, unit, ks, nkeys, 2, &err), VEIL_OK);
    assert_int_equal(veil_ckks_rescale(fx->ctx, x, x, &err), VEIL_OK);
    assert_true(max_error(x, want, NULL) < 1e-6);
    veil_ckks_ciphertext_free(x);
    x = encrypt(xv, NULL, level);
    /* the same diagonals encrypted (veil_ckks_linear_transform_encrypted: encrypted model weights) */
    veil_ckks_ciphertext **cd = calloc(n, sizeof *cd);
    for (size_t k = 0; k < n; k++) {
        if (!diags[k]) continue;
        assert_int_equal(veil_ckks_ciphertext_new(&cd[k], fx->ctx, NULL), VEIL_OK);
        assert_int_equal(veil_ckks_encrypt_sk(fx->ctx, cd[k], diags[k], fx->sk, fx->prng, &err), VEIL_OK);
    }
    const veil_ckks_ciphertext *const *cds = (const veil_ckks_ciphertext *const *)cd;
    for (size_t threads = 1; threads <= 2; threads++) {
        assert_int_equal(veil_ckks_linear_transform_encrypted(fx->ctx, out, x, cds, n, b, unit, fx->rk, ks, nkeys,
                                                              threads, &err),
                         VEIL_OK);
        assert_int_equal(veil_ckks_ciphertext_level(out), level);
        assert_int_equal(veil_ckks_ciphertext_size(out), 2);
        assert_true(fabs(veil_ckks_ciphertext_scale(out) / (fx->scale * q) - 1) < 1e-9);
        assert_int_equal(veil_ckks_rescale(fx->ctx, out, out, &err), VEIL_OK);
        const double e = max_error(out, want, NULL);
        printf("linear transform, encrypted diagonals, %zu diagonals, %zu thread(s): max error %.3g\n", n, threads, e);
        assert_true(e < 1e-5);
    }
    assert_int_equal(veil_ckks_linear_transform_encrypted(fx->ctx, out, x, cds, n, b, unit, fx->rk, ks, nkeys - 1, 1,
                                                          &err),
                     VEIL_ERR_MISMATCH);
    assert_non_null(strstr(err.detail, "no Galois key"));
    for (size_t k = 0; k < n; k++)
        if (cd[k]) {
            assert_int_equal(veil_ckks_linear_transform_encrypted(fx->ctx, cd[k], x, cds, n, b, unit, fx->rk, ks, nkeys,
                                                                  1, &err),
                             VEIL_ERR_ARGUMENT); /* the output is a diagonal */
            break;
        }
    for (size_t k = 0; k < n; k++) veil_ckks_ciphertext_free(cd[k]);
    free(cd);
    /* a missing key is named: the last giant step, then the first baby step */
    assert_int_equal(veil_ckks_linear_transform(fx->ctx, out, x, ds, n, b, unit, ks, nkeys - 1, 1, &err),
                     VEIL_ERR_MISMATCH);
    assert_non_null(strstr(err.detail, "no Galois key"));
    char step[32];
    snprintf(step, sizeof step, "by %ld slots", (long)((groups - 1) * b) * unit);
    assert_non_null(strstr(err.detail, step));
    assert_int_equal(veil_ckks_linear_transform(fx->ctx, out, x, ds, n, b, unit, ks + 1, nkeys - 1, 2, &err),
                     VEIL_ERR_MISMATCH);
    snprintf(step, sizeof step, "by %ld slots", unit);
    assert_non_null(strstr(err.detail, step));
    for (size_t k = 0; k < nkeys; k++) veil_switch_key_free(keys[k]);
    for (size_t k = 0; k < n; k++) veil_ckks_plaintext_free(diags[k]);
    for (size_t k = 0; k < n; k++) veil_ckks_plaintext_free(diagx[k]);
    free(diags);
    free(diagx);
    veil_ckks_plaintext_free(pt);
    veil_ckks_ciphertext_free(x);
    veil_ckks_ciphertext_free(out);
    free(xv); free(want); free(d); free(got); free(got2);
}

/* veil_ckks_linear_transform at two sizes (one with the default baby step, one with another), and its edges. */
static void test_linear_transform(void **state)
{
    (void)state;
    assert_int_equal(veil_ckks_linear_transform_baby(1), 1);
    assert_int_equal(veil_ckks_linear_transform_baby(12), 4);
    assert_int_equal(veil_ckks_linear_transform_baby(40), 8);
    assert_int_equal(veil_ckks_linear_transform_baby(64), 8);
    check_transform(12, 3, 1, 21);
    check_transform(40, veil_ckks_linear_transform_baby(40), 64, 22);
    /* every diagonal NULL: x times 0 at x's scale and level, no key needed */
    veil_error err = {0};
    double *xv = calloc(fx->slots, sizeof *xv), *zero = calloc(fx->slots, sizeof *zero);
    random_values(xv, NULL, fx->slots, 23);
    const veil_ckks_plaintext *none[4] = {NULL};
    veil_ckks_ciphertext *x = encrypt(xv, NULL, 2), *out = NULL;
    assert_int_equal(veil_ckks_ciphertext_new(&out, fx->ctx, NULL), VEIL_OK);
    assert_int_equal(veil_ckks_linear_transform(fx->ctx, out, x, none, 4, 2, 1, NULL, 0, 1, &err), VEIL_OK);
    assert_int_equal(veil_ckks_ciphertext_level(out), 2);
    assert_true(veil_ckks_ciphertext_scale(out) == fx->scale);
    assert_true(max_error(out, zero, NULL) < 1e-9);
    assert_int_equal(veil_ckks_linear_transform(fx->ctx, out, x, none, 4, 0, 1, NULL, 0, 1, &err), VEIL_ERR_ARGUMENT);
    assert_int_equal(veil_ckks_linear_transform(fx->ctx, out, x, none, 4, 2, 0, NULL, 0, 1, &err), VEIL_ERR_ARGUMENT);
    veil_ckks_ciphertext_free(x);
    veil_ckks_ciphertext_free(out);
    free(xv);
    free(zero);
}

/*
 * Diagonals encoded over Q_l P (double hoisting) by the encoder of another context, of the same parameters: refused
 * as the single-hoisted transform refuses them (every plaintext product checks its context), not computed with
 * the other context's ring.
 */
static void test_linear_transform_extended_other_context(void **state)
{
    (void)state;
    veil_error err = {0};
    veil_context *other = NULL;
    veil_ckks_encoder *enc = NULL;
    veil_ckks_plaintext *d[1] = {NULL};
    const size_t level = 2;
    double *xv = calloc(fx->slots, sizeof *xv), *dv = calloc(fx->slots, sizeof *dv);
    assert_non_null(xv);
    assert_non_null(dv);
    random_values(xv, NULL, fx->slots, 24);
    for (size_t t = 0; t < fx->slots; t++) dv[t] = 0.5;
    const double q = (double)veil_params_q(fx->params, level);
    assert_int_equal(veil_context_new(&other, fx->params, NULL, &err), VEIL_OK);
    assert_int_equal(veil_ckks_encoder_new(&enc, other, &err), VEIL_OK);
    assert_int_equal(veil_ckks_plaintext_new(&d[0], other, &err), VEIL_OK);
    assert_int_equal(veil_ckks_linear_transform_encode_extended(enc, d[0], dv, 0, 1, 1, q, level, &err), VEIL_OK);
    veil_ckks_ciphertext *x = encrypt(xv, NULL, level), *out = NULL;
    assert_int_equal(veil_ckks_ciphertext_new(&out, fx->ctx, NULL), VEIL_OK);
    const veil_ckks_plaintext *const *ds = (const veil_ckks_plaintext *const *)d;
    assert_int_equal(veil_ckks_linear_transform(fx->ctx, out, x, ds, 1, 1, 1, NULL, 0, 1, &err), VEIL_ERR_MISMATCH);
    assert_non_null(strstr(err.detail, "another context"));
    /* of its own context: the one diagonal (no rotation) computed by the double-hoisted path */
    veil_ckks_plaintext_free(d[0]);
    d[0] = NULL;
    assert_int_equal(veil_ckks_plaintext_new(&d[0], fx->ctx, &err), VEIL_OK);
    assert_int_equal(veil_ckks_linear_transform_encode_extended(fx->enc, d[0], dv, 0, 1, 1, q, level, &err), VEIL_OK);
    assert_int_equal(veil_ckks_linear_transform(fx->ctx, out, x, ds, 1, 1, 1, NULL, 0, 1, &err), VEIL_OK);
    assert_int_equal(veil_ckks_rescale(fx->ctx, out, out, &err), VEIL_OK);
    for (size_t t = 0; t < fx->slots; t++) xv[t] *= 0.5;
    assert_true(max_error(out, xv, NULL) < 1e-6);
    /* a Galois key of the other context, for the rotation a second diagonal needs: refused the same way */
    veil_secret_key *sk = NULL;
    veil_switch_key *key = NULL;
    veil_ckks_plaintext *d2[2] = {d[0], NULL};
    assert_int_equal(veil_secret_key_new(&sk, other, fx->prng, &err), VEIL_OK);
    assert_int_equal(veil_galois_key_new(&key, other, sk, veil_galois_element_rotation(other, 1), fx->prng, &err),
                     VEIL_OK);
    assert_int_equal(veil_ckks_plaintext_new(&d2[1], fx->ctx, &err), VEIL_OK);
    assert_int_equal(veil_ckks_linear_transform_encode_extended(fx->enc, d2[1], dv, 1, 2, 1, q, level, &err), VEIL_OK);
    assert_int_equal(veil_ckks_linear_transform_encode_extended(fx->enc, d2[0], dv, 0, 2, 1, q, level, &err), VEIL_OK);
    const veil_switch_key *keys[1] = {key};
    assert_int_equal(veil_ckks_linear_transform(fx->ctx, out, x, (const veil_ckks_plaintext *const *)d2, 2, 2, 1, keys,
                                                1, 1, &err),
                     VEIL_ERR_MISMATCH);
    assert_non_null(strstr(err.detail, "another context"));
    veil_switch_key_free(key);
    veil_secret_key_free(sk);
    veil_ckks_plaintext_free(d2[1]);
    veil_ckks_ciphertext_free(x);
    veil_ckks_ciphertext_free(out);
    veil_ckks_plaintext_free(d[0]);
    veil_ckks_encoder_free(enc);
    veil_context_free(other);
    free(xv);
    free(dv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sums_and_key_sets),
        cmocka_unit_test(test_chebyshev),
        cmocka_unit_test(test_chebyshev_63),
        cmocka_unit_test(test_linear_layer_large_first_prime),
        cmocka_unit_test(test_linear_layer_shifted),
        cmocka_unit_test(test_linear_layer_wide_integers),
        cmocka_unit_test(test_linear_layer_ifma_equals_avx2),
        cmocka_unit_test(test_linear_layer_groups_ifma_equals_avx2),
        cmocka_unit_test(test_linear_transform),
        cmocka_unit_test(test_linear_transform_extended_other_context),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
