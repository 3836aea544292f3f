/*
 * BGV: every operation checked slot by slot against the same computation on integers mod t (0 wrong slots),
 * chains of products down to the last level, the noise budget (measured vs estimated, and exhaustion
 * reported), CRT over two plaintext moduli, parameter selection and bad input.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "veil/veil.h"

#define T 65537u

typedef struct fixture {
    veil_params *params;
    veil_context *ctx;
    veil_bgv_encoder *enc;
    veil_secret_key *sk;
    veil_public_key *pk;
    veil_switch_key *rk, *gk[6]; /* rotations by 1, 2, 4, ..., and the column swap last */
    veil_prng *prng;
    size_t n;
} fixture;

static fixture *fx;

static int setup(void **state)
{
    (void)state;
    fx = calloc(1, sizeof *fx);
    veil_error err = {0};
    uint8_t seed[VEIL_SEED_BYTES] = {9};
    if (veil_params_preset(&fx->params, "bgv-n8192", &err) || veil_context_new(&fx->ctx, fx->params, NULL, &err) ||
        veil_prng_new_seeded(&fx->prng, seed, 0, &err) || veil_bgv_encoder_new(&fx->enc, fx->ctx, &err) ||
        veil_secret_key_new(&fx->sk, fx->ctx, fx->prng, &err) ||
        veil_public_key_new(&fx->pk, fx->ctx, fx->sk, fx->prng, &err) ||
        veil_relin_key_new(&fx->rk, fx->ctx, fx->sk, fx->prng, &err)) {
        fprintf(stderr, "setup: %s\n", err.detail);
        return -1;
    }
    const long steps[5] = {1, 3, -1, 7, 1024};
    for (int k = 0; k < 5; k++)
        if (veil_galois_key_new(&fx->gk[k], fx->ctx, fx->sk, veil_galois_element_rotation(fx->ctx, steps[k]), fx->prng,
                                &err))
            return -1;
    if (veil_galois_key_new(&fx->gk[5], fx->ctx, fx->sk, veil_galois_element_conjugation(fx->ctx), fx->prng, &err))
        return -1;
    fx->n = veil_params_degree(fx->params);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int k = 0; k < 6; k++) veil_switch_key_free(fx->gk[k]);
    veil_switch_key_free(fx->rk);
    veil_public_key_free(fx->pk);
    veil_secret_key_free(fx->sk);
    veil_bgv_encoder_free(fx->enc);
    veil_prng_free(fx->prng);
    veil_context_free(fx->ctx);
    veil_params_free(fx->params);
    free(fx);
    return 0;
}

static uint64_t *random_vector(unsigned seed, uint64_t bound)
{
    uint64_t *v = malloc(fx->n * sizeof *v);
    srand(seed);
    for (size_t i = 0; i < fx->n; i++) v[i] = ((uint64_t)rand() * 65536u + (uint64_t)rand()) % bound;
    return v;
}

static veil_bgv_ciphertext *encrypt(const uint64_t *v, bool with_pk)
{
    veil_bgv_plaintext *pt = NULL;
    veil_bgv_ciphertext *ct = NULL;
    assert_int_equal(veil_bgv_plaintext_new(&pt, fx->ctx, NULL), VEIL_OK);
    assert_int_equal(veil_bgv_encode(fx->enc, pt, v, fx->n, NULL), VEIL_OK);
    assert_int_equal(veil_bgv_ciphertext_new(&ct, fx->ctx, NULL), VEIL_OK);
    if (with_pk) assert_int_equal(veil_bgv_encrypt_pk(fx->ctx, ct, pt, fx->pk, fx->prng, NULL), VEIL_OK);
    else assert_int_equal(veil_bgv_encrypt_sk(fx->ctx, ct, pt, fx->sk, fx->prng, NULL), VEIL_OK);
    veil_bgv_plaintext_free(pt);
    return ct;
}

/* How many slots of the decryption differ from expect (and decryption must succeed). */
static size_t wrong_slots(const veil_bgv_ciphertext *ct, const uint64_t *expect)
{
    veil_bgv_plaintext *pt = NULL;
    veil_error err = {0};
    uint64_t *got = malloc(fx->n * sizeof *got);
    assert_int_equal(veil_bgv_plaintext_new(&pt, fx->ctx, NULL), VEIL_OK);
    veil_status st = veil_bgv_decrypt(fx->ctx, pt, ct, fx->sk, &err);
    if (st != VEIL_OK) fprintf(stderr, "decrypt: %s\n", err.detail);
    assert_int_equal(st, VEIL_OK);
    assert_int_equal(veil_bgv_decode(fx->enc, got, fx->n, pt, &err), VEIL_OK);
    size_t wrong = 0;
    for (size_t i = 0; i < fx->n; i++) wrong += got[i] != expect[i];
    veil_bgv_plaintext_free(pt);
    free(got);
    return wrong;
}

static double budget(const veil_bgv_ciphertext *ct)
{
    double b = -1;
    assert_int_equal(veil_bgv_noise_budget(fx->ctx, &b, ct, fx->sk, NULL), VEIL_OK);
    return b;
}

static void test_encoding(void **state)
{
    (void)state;
    veil_error err = {0};
    veil_bgv_plaintext *pt = NULL;
    assert_true(veil_bgv_encoder_batching(fx->enc));
    assert_int_equal(veil_bgv_plaintext_new(&pt, fx->ctx, NULL), VEIL_OK);
    uint64_t *v = random_vector(1, T), *back = calloc(fx->n, 8);
    assert_int_equal(veil_bgv_encode(fx->enc, pt, v, fx->n, &err), VEIL_OK);
    assert_int_equal(veil_bgv_decode(fx->enc, back, fx->n, pt, &err), VEIL_OK);
    assert_memory_equal(v, back, fx->n * 8);
    /* signed values: the centered representatives come back */
    int64_t s[5] = {-32768, -1, 0, 1, 32768}, sb[5];
    assert_int_equal(veil_bgv_encode_signed(fx->enc, pt, s, 5, &err), VEIL_OK);
    assert_int_equal(veil_bgv_decode_signed(fx->enc, sb, 5, pt, &err), VEIL_OK);
    assert_memory_equal(s, sb, sizeof s);
    assert_int_equal(veil_bgv_encode_coeffs(fx->enc, pt, s, 5, &err), VEIL_OK);
    assert_int_equal(veil_bgv_decode_coeffs(fx->enc, sb, 5, pt, &err), VEIL_OK);
    assert_memory_equal(s, sb, sizeof s);
    /* out of range values are refused with their index */
    uint64_t big[2] = {1, T};
    assert_int_equal(veil_bgv_encode(fx->enc, pt, big, 2, &err), VEIL_ERR_ARGUMENT);
    assert_non_null(strstr(err.detail, "value 1"));
    int64_t too_small[1] = {-32769};
    assert_int_equal(veil_bgv_encode_signed(fx->enc, pt, too_small, 1, &err), VEIL_ERR_ARGUMENT);
    assert_int_equal(veil_bgv_encode(fx->enc, pt, v, fx->n + 1, &err), VEIL_ERR_ARGUMENT);
    free(v);
    free(back);
    veil_bgv_plaintext_free(pt);
}

static void test_encrypt_decrypt(void **state)
{
    (void)state;
    uint64_t *v = random_vector(2, T);
    veil_bgv_ciphertext *a = encrypt(v, true), *b = encrypt(v, false);
    assert_int_equal(wrong_slots(a, v), 0);
    assert_int_equal(wrong_slots(b, v), 0);
    /* the estimate never claims more budget than there is, and is not far below it */
    printf("fresh budget: pk %.1f (estimate %.1f), sk %.1f (estimate %.1f) bits\n", budget(a),
           veil_bgv_noise_budget_estimate(a), budget(b), veil_bgv_noise_budget_estimate(b));
    assert_true(veil_bgv_noise_budget_estimate(a) <= budget(a));
    assert_true(veil_bgv_noise_budget_estimate(b) <= budget(b));
    assert_true(budget(a) - veil_bgv_noise_budget_estimate(a) < 8);
    veil_bgv_ciphertext_free(a);
    veil_bgv_ciphertext_free(b);
    free(v);
}

static void test_arithmetic(void **state)
{
    (void)state;
    veil_error err = {0};
    const size_t n = fx->n;
    uint64_t *x = random_vector(3, T), *y = random_vector(4, T), *e = calloc(n, 8);
    veil_bgv_ciphertext *a = encrypt(x, true), *b = encrypt(y, false), *c = NULL;
    veil_bgv_plaintext *p = NULL;
    assert_int_equal(veil_bgv_ciphertext_new(&c, fx->ctx, NULL), VEIL_OK);
    assert_int_equal(veil_bgv_plaintext_new(&p, fx->ctx, NULL), VEIL_OK);
    assert_int_equal(veil_bgv_encode(fx->enc, p, y, n, NULL), VEIL_OK);
    assert_int_equal(veil_bgv_add(fx->ctx, c, a, b, &err), VEIL_OK);
    for (size_t i = 0; i < n; i++) e[i] = (x[i] + y[i]) % T;
    assert_int_equal(wrong_slots(c, e), 0);
    assert_int_equal(veil_bgv_sub(fx->ctx, c, a, b, &err), VEIL_OK);
    for (size_t i = 0; i < n; i++) e[i] = (x[i] + T - y[i]) % T;
    assert_int_equal(wrong_slots(c, e), 0);
    assert_int_equal(veil_bgv_negate(fx->ctx, c, a, &err), VEIL_OK);
    for (size_t i = 0; i < n; i++) e[i] = (T - x[i]) % T;
    assert_int_equal(wrong_slots(c, e), 0);
    assert_int_equal(veil_bgv_add_plain(fx->ctx, c, a, p, &err), VEIL_OK);
    for (size_t i = 0; i < n; i++) e[i] = (x[i] + y[i]) % T;
    assert_int_equal(wrong_slots(c, e), 0);
    assert_int_equal(veil_bgv_sub_plain(fx->ctx, c, a, p, &err), VEIL_OK);
    for (size_t i = 0; i < n; i++) e[i] = (x[i] + T - y[i]) % T;
    assert_int_equal(wrong_slots(c, e), 0);
    assert_int_equal(veil_bgv_mul_plain(fx->ctx, c, a, p, &err), VEIL_OK);
    for (size_t i = 0; i < n; i++) e[i] = x[i] * y[i] % T;
    assert_int_equal(wrong_slots(c, e), 0);
    assert_int_equal(veil_bgv_add_scalar(fx->ctx, c, a, -5, &err), VEIL_OK);
    for (size_t i = 0; i < n; i++) e[i] = (x[i] + T - 5) % T;
    assert_int_equal(wrong_slots(c, e), 0);
    assert_int_equal(veil_bgv_mul_scalar(fx->ctx, c, a, -3, &err), VEIL_OK);
    for (size_t i = 0; i < n; i++) e[i] = x[i] * (T - 3) % T;
    assert_int_equal(wrong_slots(c, e), 0);
    /* the product, before and after relinearization, and a square */
    assert_int_equal(veil_bgv_mul(fx->ctx, c, a, b, &err), VEIL_OK);
    assert_int_equal(veil_bgv_ciphertext_size(c), 3);
    for (size_t i = 0; i < n; i++) e[i] = x[i] * y[i] % T;
    assert_int_equal(wrong_slots(c, e), 0);
    assert_int_equal(veil_bgv_relinearize(fx->ctx, c, c, fx->rk, &err), VEIL_OK);
    assert_int_equal(wrong_slots(c, e), 0);
    assert_int_equal(veil_bgv_square(fx->ctx, c, a, &err), VEIL_OK);
    for (size_t i = 0; i < n; i++) e[i] = x[i] * x[i] % T;
    assert_int_equal(wrong_slots(c, e), 0);
    /* a switched ciphertext (another level and factor) meets a fresh one: aligned automatically */
    veil_bgv_ciphertext *low = NULL;
    assert_int_equal(veil_bgv_ciphertext_new(&low, fx->ctx, NULL), VEIL_OK);
    assert_int_equal(veil_bgv_mod_switch(fx->ctx, low, a, &err), VEIL_OK);
    assert_int_equal(veil_bgv_ciphertext_level(low), 2);
    assert_int_equal(wrong_slots(low, x), 0);
    assert_int_equal(veil_bgv_mod_switch_to(fx->ctx, low, low, 0, &err), VEIL_OK);
    assert_int_equal(wrong_slots(low, x), 0);
    assert_int_equal(veil_bgv_add(fx->ctx, c, b, low, &err), VEIL_OK);
    assert_int_equal(veil_bgv_ciphertext_level(c), 0);
    for (size_t i = 0; i < n; i++) e[i] = (x[i] + y[i]) % T;
    assert_int_equal(wrong_slots(c, e), 0);
    assert_int_equal(veil_bgv_mod_switch(fx->ctx, c, low, &err), VEIL_ERR_ARGUMENT);
    assert_int_equal(veil_bgv_mod_switch_to(fx->ctx, c, low, 1, &err), VEIL_ERR_ARGUMENT);
    veil_bgv_ciphertext_free(low);
    veil_bgv_plaintext_free(p);
    veil_bgv_ciphertext_free(a);
    veil_bgv_ciphertext_free(b);
    veil_bgv_ciphertext_free(c);
    free(x);
    free(y);
    free(e);
}

/* x1 * x2 * ... down to the last level: exact every time, the budget falling as estimated. */
static void test_chain_and_budget(void **state)
{
    (void)state;
    veil_error err = {0};
    const size_t n = fx->n;
    uint64_t *e = random_vector(5, T);
    veil_bgv_ciphertext *acc = encrypt(e, true);
    double last = budget(acc);
    for (unsigned k = 0; k < 3; k++) {
        uint64_t *y = random_vector(10 + k, T);
        veil_bgv_ciphertext *b = encrypt(y, k % 2 == 0);
        assert_int_equal(veil_bgv_mul_relin(fx->ctx, acc, acc, b, fx->rk, &err), VEIL_OK);
        for (size_t i = 0; i < n; i++) e[i] = e[i] * y[i] % T;
        const double measured = budget(acc), estimate = veil_bgv_noise_budget_estimate(acc);
        printf("product %u: level %zu, budget %.1f bits (estimate %.1f)\n", k + 1, veil_bgv_ciphertext_level(acc),
               measured, estimate);
        assert_int_equal(veil_bgv_ciphertext_level(acc), 3 - k);
        assert_true(measured < last);
        assert_true(estimate <= measured && measured - estimate < 20);
        assert_int_equal(wrong_slots(acc, e), 0);
        last = measured;
        veil_bgv_ciphertext_free(b);
        free(y);
    }
    /* one product more than the set was made for: at level 0 the noise overflows, and decryption says so */
    uint64_t *y = random_vector(20, T);
    veil_bgv_ciphertext *b = encrypt(y, true);
    assert_int_equal(veil_bgv_mul_relin(fx->ctx, acc, acc, b, fx->rk, &err), VEIL_OK);
    assert_int_equal(veil_bgv_mul_relin(fx->ctx, acc, acc, b, fx->rk, &err), VEIL_OK);
    assert_int_equal(veil_bgv_ciphertext_level(acc), 0);
    assert_true(veil_bgv_noise_budget_estimate(acc) == 0);
    veil_bgv_plaintext *pt = NULL;
    assert_int_equal(veil_bgv_plaintext_new(&pt, fx->ctx, NULL), VEIL_OK);
    assert_int_equal(veil_bgv_decrypt(fx->ctx, pt, acc, fx->sk, &err), VEIL_ERR_NOISE);
    assert_non_null(strstr(err.detail, "exhausted"));
    veil_bgv_plaintext_free(pt);
    veil_bgv_ciphertext_free(b);
    veil_bgv_ciphertext_free(acc);
    free(y);
    free(e);
}

static void test_power(void **state)
{
    (void)state;
    veil_error err = {0};
    uint64_t *x = random_vector(6, T), *e = calloc(fx->n, 8);
    veil_bgv_ciphertext *a = encrypt(x, true), *c = NULL;
    assert_int_equal(veil_bgv_ciphertext_new(&c, fx->ctx, NULL), VEIL_OK);
    const uint64_t exps[3] = {1, 5, 7};
    for (int k = 0; k < 3; k++) {
        assert_int_equal(veil_bgv_power(fx->ctx, c, a, exps[k], fx->rk, &err), VEIL_OK);
        for (size_t i = 0; i < fx->n; i++) {
            uint64_t r = 1;
            for (uint64_t j = 0; j < exps[k]; j++) r = r * x[i] % T;
            e[i] = r;
        }
        assert_int_equal(wrong_slots(c, e), 0);
    }
    assert_int_equal(veil_bgv_power(fx->ctx, c, a, 0, fx->rk, &err), VEIL_ERR_ARGUMENT);
    veil_bgv_ciphertext_free(a);
    veil_bgv_ciphertext_free(c);
    free(x);
    free(e);
}

static void test_rotations(void **state)
{
    (void)state;
    veil_error err = {0};
    const size_t n = fx->n, half = n / 2;
    uint64_t *x = random_vector(7, T), *e = calloc(n, 8);
    veil_bgv_ciphertext *a = encrypt(x, true), *c = NULL;
    assert_int_equal(veil_bgv_ciphertext_new(&c, fx->ctx, NULL), VEIL_OK);
    const long steps[5] = {1, 3, -1, 7, 1024};
    for (int k = 0; k < 5; k++) {
        assert_int_equal(veil_bgv_rotate_rows(fx->ctx, c, a, steps[k], fx->gk[k], &err), VEIL_OK);
        for (size_t r = 0; r < 2; r++)
            for (size_t i = 0; i < half; i++)
                e[r * half + i] = x[r * half + (size_t)(((long)i + steps[k]) % (long)half + (long)half) % half];
        assert_int_equal(wrong_slots(c, e), 0);
    }
    assert_int_equal(veil_bgv_swap_columns(fx->ctx, c, a, fx->gk[5], &err), VEIL_OK);
    for (size_t i = 0; i < half; i++) {
        e[i] = x[half + i];
        e[half + i] = x[i];
    }
    assert_int_equal(wrong_slots(c, e), 0);
    /* rotation by 0 is a copy without a key; a wrong key is named */
    assert_int_equal(veil_bgv_rotate_rows(fx->ctx, c, a, 0, NULL, &err), VEIL_OK);
    assert_int_equal(wrong_slots(c, x), 0);
    assert_int_equal(veil_bgv_rotate_rows(fx->ctx, c, a, 2, fx->gk[0], &err), VEIL_ERR_MISMATCH);
    assert_non_null(strstr(err.detail, "Galois key"));
    /* sum of all slots: rotation keys for 1, 2, ..., N/4 and the swap */
    veil_switch_key *keys[13];
    size_t count = 0;
    for (size_t s = 1; s < half; s <<= 1)
        assert_int_equal(veil_galois_key_new(&keys[count++], fx->ctx, fx->sk,
                                             veil_galois_element_rotation(fx->ctx, (long)s), fx->prng, &err), VEIL_OK);
    assert_int_equal(veil_bgv_sum_slots(fx->ctx, c, a, (const veil_switch_key *const *)keys, count, &err),
                     VEIL_ERR_MISMATCH); /* no swap key yet */
    keys[count++] = fx->gk[5];
    assert_int_equal(veil_bgv_sum_slots(fx->ctx, c, a, (const veil_switch_key *const *)keys, count, &err), VEIL_OK);
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) total = (total + x[i]) % T;
    for (size_t i = 0; i < n; i++) e[i] = total;
    assert_int_equal(wrong_slots(c, e), 0);
    for (size_t k = 0; k + 1 < count; k++) veil_switch_key_free(keys[k]);
    veil_bgv_ciphertext_free(a);
    veil_bgv_ciphertext_free(c);
    free(x);
    free(e);
}

/* x * y * z with inputs up to 2^10 or 2^11: products up to 2^31, beyond t, exact through CRT over 65537 and
 * 114689 (their product is 2^32.8). */
static void test_crt(void **state)
{
    (void)state;
    veil_error err = {0};
    const uint64_t moduli[2] = {65537, 114689};
    const size_t n = 64;
    int64_t x[64], y[64], z[64], expect[64], got[64];
    srand(8);
    for (size_t i = 0; i < n; i++) {
        x[i] = rand() % 2048 - 1024;
        y[i] = rand() % 2048;
        z[i] = rand() % 2048 - 1024;
        expect[i] = x[i] * y[i] * z[i];
    }
    uint64_t res_x[2][64], res_y[2][64], res_z[2][64], out[2][64];
    uint64_t *rx[2] = {res_x[0], res_x[1]}, *ry[2] = {res_y[0], res_y[1]}, *rz[2] = {res_z[0], res_z[1]};
    assert_int_equal(veil_bgv_crt_split(moduli, 2, x, n, rx, &err), VEIL_OK);
    assert_int_equal(veil_bgv_crt_split(moduli, 2, y, n, ry, &err), VEIL_OK);
    assert_int_equal(veil_bgv_crt_split(moduli, 2, z, n, rz, &err), VEIL_OK);
    for (int k = 0; k < 2; k++) {
        const unsigned qb[4] = {44, 43, 43, 44}, pb[1] = {44};
        veil_params_spec spec = {8192, 4, NULL, qb, 1, NULL, pb, 4, VEIL_SECRET_TERNARY, 0, VEIL_SECURITY_128, moduli[k]};
        veil_params *params = NULL;
        veil_context *ctx = NULL;
        veil_bgv_encoder *enc = NULL;
        veil_secret_key *sk = NULL;
        veil_switch_key *rk = NULL;
        veil_bgv_plaintext *pt = NULL;
        veil_bgv_ciphertext *c[3];
        assert_int_equal(veil_params_new(&params, &spec, &err), VEIL_OK);
        assert_int_equal(veil_context_new(&ctx, params, NULL, &err), VEIL_OK);
        assert_int_equal(veil_bgv_encoder_new(&enc, ctx, &err), VEIL_OK);
        assert_int_equal(veil_secret_key_new(&sk, ctx, fx->prng, &err), VEIL_OK);
        assert_int_equal(veil_relin_key_new(&rk, ctx, sk, fx->prng, &err), VEIL_OK);
        assert_int_equal(veil_bgv_plaintext_new(&pt, ctx, &err), VEIL_OK);
        const uint64_t *in[3] = {res_x[k], res_y[k], res_z[k]};
        for (int j = 0; j < 3; j++) {
            assert_int_equal(veil_bgv_encode(enc, pt, in[j], n, &err), VEIL_OK);
            assert_int_equal(veil_bgv_ciphertext_new(&c[j], ctx, &err), VEIL_OK);
            assert_int_equal(veil_bgv_encrypt_sk(ctx, c[j], pt, sk, fx->prng, &err), VEIL_OK);
        }
        assert_int_equal(veil_bgv_mul_relin(ctx, c[0], c[0], c[1], rk, &err), VEIL_OK);
        assert_int_equal(veil_bgv_mul_relin(ctx, c[0], c[0], c[2], rk, &err), VEIL_OK);
        assert_int_equal(veil_bgv_decrypt(ctx, pt, c[0], sk, &err), VEIL_OK);
        assert_int_equal(veil_bgv_decode(enc, out[k], n, pt, &err), VEIL_OK);
        for (int j = 0; j < 3; j++) veil_bgv_ciphertext_free(c[j]);
        veil_bgv_plaintext_free(pt);
        veil_switch_key_free(rk);
        veil_secret_key_free(sk);
        veil_bgv_encoder_free(enc);
        veil_context_free(ctx);
        veil_params_free(params);
    }
    const uint64_t *outs[2] = {out[0], out[1]};
    assert_int_equal(veil_bgv_crt_compose(moduli, 2, outs, n, got, &err), VEIL_OK);
    assert_memory_equal(got, expect, sizeof got);
    /* a single modulus would have wrapped */
    size_t wrapped = 0;
    for (size_t i = 0; i < n; i++) wrapped += expect[i] > 32768 || expect[i] < -32768;
    assert_true(wrapped > n / 2);
    /* bad moduli, residues out of range, values beyond int64 */
    const uint64_t same[2] = {65537, 65537 * 3};
    assert_int_equal(veil_bgv_crt_split(same, 2, x, n, rx, &err), VEIL_ERR_ARGUMENT);
    assert_int_equal(veil_bgv_crt_split(moduli, 1, x, n, rx, &err), VEIL_ERR_ARGUMENT);
    out[0][0] = moduli[0];
    assert_int_equal(veil_bgv_crt_compose(moduli, 2, outs, n, got, &err), VEIL_ERR_ARGUMENT);
    const uint64_t wide[3] = {(1ull << 59) - 55, (1ull << 58) - 27, (1ull << 57) - 25};
    uint64_t r0 = 0, r1 = 1, r2 = 5;
    const uint64_t *rw[3] = {&r0, &r1, &r2};
    int64_t v = 0;
    veil_status st = veil_bgv_crt_compose(wide, 3, rw, 1, &v, &err);
    assert_true(st == VEIL_ERR_ARGUMENT || st == VEIL_OK); /* coprime? then too wide to fit */
    if (st == VEIL_OK) assert_true(v % (int64_t)wide[0] == 0);
}

/* The fused linear layer against the same sums mod t, after a product (a factor and a lower level). */
static void test_linear_combination(void **state)
{
    (void)state;
    enum { TERMS = 5 };
    veil_bgv_ciphertext *x[TERMS], *out = NULL;
    uint64_t *v[TERMS];
    const int64_t k[TERMS] = {3, -7, 0, (1 << 19) - 1, -(1 << 19)};
    for (int i = 0; i < TERMS; i++) {
        v[i] = random_vector(40 + (unsigned)i, T);
        x[i] = encrypt(v[i], i % 2 == 0);
        /* a square first: the terms then carry a factor and sit lower (switched the same way) */
        assert_int_equal(veil_bgv_mul_relin(fx->ctx, x[i], x[i], x[i], fx->rk, NULL), VEIL_OK);
    }
    assert_int_equal(veil_bgv_ciphertext_new(&out, fx->ctx, NULL), VEIL_OK);
    veil_error err = {0};
    assert_int_equal(veil_bgv_linear_combination(fx->ctx, out, (const veil_bgv_ciphertext *const *)x, k, TERMS, -12345,
                                                 &err), VEIL_OK);
    uint64_t *expect = malloc(fx->n * sizeof *expect);
    for (size_t j = 0; j < fx->n; j++) {
        int64_t acc = -12345;
        for (int i = 0; i < TERMS; i++) acc = (acc + k[i] * (int64_t)(v[i][j] * v[i][j] % T)) % (int64_t)T;
        expect[j] = (uint64_t)((acc + (int64_t)T) % (int64_t)T);
    }
    assert_int_equal(wrong_slots(out, expect), 0);
    /* the estimate stays below the measured noise, as for every other operation */
    assert_true(veil_bgv_noise_budget_estimate(out) <= budget(out) + 1);
    /* refusals: no terms, a weight too large, terms at different levels */
    assert_int_equal(veil_bgv_linear_combination(fx->ctx, out, (const veil_bgv_ciphertext *const *)x, k, 0, 0, &err),
                     VEIL_ERR_ARGUMENT);
    const int64_t big[2] = {1, (int64_t)1 << 20};
    assert_int_equal(veil_bgv_linear_combination(fx->ctx, out, (const veil_bgv_ciphertext *const *)x, big, 2, 0, &err),
                     VEIL_ERR_ARGUMENT);
    assert_non_null(strstr(err.detail, "2^20"));
    assert_int_equal(veil_bgv_mod_switch(fx->ctx, x[1], x[1], NULL), VEIL_OK);
    assert_int_equal(veil_bgv_linear_combination(fx->ctx, out, (const veil_bgv_ciphertext *const *)x, k, 2, 0, &err),
                     VEIL_ERR_ARGUMENT);
    assert_non_null(strstr(err.detail, "level"));
    for (int i = 0; i < TERMS; i++) {
        veil_bgv_ciphertext_free(x[i]);
        free(v[i]);
    }
    veil_bgv_ciphertext_free(out);
    free(expect);
}

static void test_parameters_and_refusals(void **state)
{
    (void)state;
    veil_error err = {0};
    /* automatic selection: depth and batching honoured, 128-bit security */
    veil_bgv_request req = {4, 65537, true, 0, VEIL_SECURITY_128, 0};
    veil_params *p = NULL;
    assert_int_equal(veil_bgv_params_select(&p, &req, &err), VEIL_OK);
    assert_int_equal(veil_params_q_count(p), 5);
    assert_int_equal(veil_params_plain_modulus(p), 65537);
    assert_true(veil_params_log_qp(p) <= veil_security_max_log_qp(veil_params_degree(p), VEIL_SECURITY_128));
    assert_int_equal(65536 % (2 * veil_params_degree(p)), 0);
    veil_params_free(p);
    req.t = 65537 * 2;
    assert_int_equal(veil_bgv_params_select(&p, &req, &err), VEIL_ERR_NOT_FOUND); /* no batching with an even t */
    req.batching = false;
    assert_int_equal(veil_bgv_params_select(&p, &req, &err), VEIL_OK);
    veil_params_free(p);
    /* t that is a multiple of a prime of the chain, and t = 1 */
    const unsigned qb[2] = {30, 30}, pb[1] = {30};
    veil_params_spec spec = {4096, 2, NULL, qb, 1, NULL, pb, 0, VEIL_SECRET_TERNARY, 0, VEIL_SECURITY_128, 1};
    assert_int_equal(veil_params_new(&p, &spec, &err), VEIL_ERR_ARGUMENT);
    /* a t without batching: slots refused, coefficients fine */
    spec.plain_modulus = 257;
    assert_int_equal(veil_params_new(&p, &spec, &err), VEIL_OK);
    veil_context *ctx = NULL;
    veil_bgv_encoder *enc = NULL;
    veil_bgv_plaintext *pt = NULL;
    assert_int_equal(veil_context_new(&ctx, p, NULL, &err), VEIL_OK);
    assert_int_equal(veil_bgv_encoder_new(&enc, ctx, &err), VEIL_OK);
    assert_false(veil_bgv_encoder_batching(enc));
    assert_int_equal(veil_bgv_plaintext_new(&pt, ctx, &err), VEIL_OK);
    uint64_t one = 1;
    int64_t c[2] = {-128, 128};
    assert_int_equal(veil_bgv_encode(enc, pt, &one, 1, &err), VEIL_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.detail, "batching"));
    assert_int_equal(veil_bgv_encode_coeffs(enc, pt, c, 2, &err), VEIL_OK);
    /* objects of another context, and a CKKS context */
    veil_bgv_ciphertext *ct = NULL, *mine = NULL;
    assert_int_equal(veil_bgv_ciphertext_new(&ct, ctx, &err), VEIL_OK);
    assert_int_equal(veil_bgv_encrypt_pk(fx->ctx, ct, pt, fx->pk, NULL, &err), VEIL_ERR_MISMATCH);
    uint64_t *x = random_vector(3, T);
    mine = encrypt(x, true);
    assert_int_equal(veil_bgv_add(fx->ctx, ct, mine, mine, &err), VEIL_ERR_MISMATCH);
    assert_int_equal(veil_bgv_mul_relin(fx->ctx, mine, mine, mine, fx->gk[0], &err), VEIL_ERR_MISMATCH);
    assert_int_equal(wrong_slots(mine, x), 0); /* the failed in-place product left it whole */
    veil_params *ckks = NULL;
    veil_context *cctx = NULL;
    veil_bgv_encoder *cenc = NULL;
    assert_int_equal(veil_params_preset(&ckks, "ckks-n8192-d2", &err), VEIL_OK);
    assert_int_equal(veil_context_new(&cctx, ckks, NULL, &err), VEIL_OK);
    assert_int_equal(veil_bgv_encoder_new(&cenc, cctx, &err), VEIL_ERR_MISMATCH);
    free(x);
    veil_bgv_ciphertext_free(ct);
    veil_bgv_ciphertext_free(mine);
    veil_context_free(cctx);
    veil_params_free(ckks);
    veil_bgv_plaintext_free(pt);
    veil_bgv_encoder_free(enc);
    veil_context_free(ctx);
    veil_params_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encoding),   cmocka_unit_test(test_encrypt_decrypt),
        cmocka_unit_test(test_arithmetic), cmocka_unit_test(test_chain_and_budget),
        cmocka_unit_test(test_power),      cmocka_unit_test(test_rotations),
        cmocka_unit_test(test_crt),        cmocka_unit_test(test_parameters_and_refusals),
        cmocka_unit_test(test_linear_combination),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
