/*
 * The bootstrapping DFTs' double-hoisted linear transforms (src/circuits/dft.c: baby rotations and giant-step
 * sums kept over Q_l P, one ModDown per level) against the plain evaluation of the same transform: every
 * diagonal on its own rotation of the input (an ordinary key switching each), its product, its giant rotation,
 * summed over Q_l. At N = 2^10, small insecure parameters; each level of CoeffToSlot and SlotToCoeff at full
 * slots (both the compact diagonals and the whole ones), and at 32 sparse slots.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <complex.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "circuits/circuits_internal.h"

#define N 1024
#define HALF (N / 2)
#define MAX_KEYS 64
/* the two evaluations differ by their key switchings' rounding: measured 2^-32.0 to 2^-30.8 (values up to 6) */
#define DIFF_BITS 28

typedef struct dft_fixture {
    veil_params *params;
    veil_context *ctx;
    veil_ckks_encoder *enc;
    veil_secret_key *sk;
    veil_prng *prng;
    veil_switch_key *keys[MAX_KEYS];
    size_t key_count;
} dft_fixture;

static dft_fixture *fx;

/* q_0 50 bits, 6 primes of 50 bits for the DFT levels; P 2 x 50 (4 digits of 2 primes) */
static int setup(void **state)
{
    (void)state;
    fx = calloc(1, sizeof *fx);
    unsigned q_bits[7] = {50, 50, 50, 50, 50, 50, 50}, p_bits[2] = {50, 50};
    veil_params_spec spec = {.n = N, .q_count = 7, .q_bits = q_bits, .p_count = 2, .p_bits = p_bits, .dnum = 4,
                             .secret = VEIL_SECRET_TERNARY_HW, .hamming_weight = 32, .security = VEIL_SECURITY_NONE};
    veil_error err = {0};
    uint8_t seed[VEIL_SEED_BYTES] = {23};
    if (veil_params_new(&fx->params, &spec, &err) || veil_context_new(&fx->ctx, fx->params, NULL, &err) ||
        veil_prng_new_seeded(&fx->prng, seed, 1, &err) || veil_ckks_encoder_new(&fx->enc, fx->ctx, &err) ||
        veil_secret_key_new(&fx->sk, fx->ctx, fx->prng, &err)) {
        fprintf(stderr, "setup: %s\n", err.detail);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (size_t k = 0; k < fx->key_count; k++) veil_switch_key_free(fx->keys[k]);
    veil_secret_key_free(fx->sk);
    veil_ckks_encoder_free(fx->enc);
    veil_prng_free(fx->prng);
    veil_context_free(fx->ctx);
    veil_params_free(fx->params);
    free(fx);
    return 0;
}

static const veil_switch_key *key_of(long steps)
{
    const uint64_t g = veil_galois_element_rotation(fx->ctx, steps);
    for (size_t k = 0; k < fx->key_count; k++)
        if (veil_switch_key_galois_element(fx->keys[k]) == g) return fx->keys[k];
    veil_error err = {0};
    assert_true(fx->key_count < MAX_KEYS);
    assert_int_equal(veil_galois_key_new(&fx->keys[fx->key_count], fx->ctx, fx->sk, g, fx->prng, &err), VEIL_OK);
    return fx->keys[fx->key_count++];
}

/* Random values in [-1, 1] + i [-1, 1], `slots` of them repeated over the N/2 slots, encrypted at `level`. */
static veil_ckks_ciphertext *encrypt_random(size_t slots, size_t level, unsigned seed)
{
    double re[HALF], im[HALF];
    srand(seed);
    for (size_t i = 0; i < slots; i++) {
        re[i] = 2.0 * rand() / RAND_MAX - 1.0;
        im[i] = 2.0 * rand() / RAND_MAX - 1.0;
    }
    for (size_t i = slots; i < HALF; i++) {
        re[i] = re[i % slots];
        im[i] = im[i % slots];
    }
    veil_ckks_plaintext *pt = NULL;
    veil_ckks_ciphertext *ct = NULL;
    veil_error err = {0};
    assert_int_equal(veil_ckks_plaintext_new(&pt, fx->ctx, NULL), VEIL_OK);
    assert_int_equal(veil_ckks_encode(fx->enc, pt, re, im, HALF, ldexp(1.0, 40), level, &err), VEIL_OK);
    assert_int_equal(veil_ckks_ciphertext_new(&ct, fx->ctx, NULL), VEIL_OK);
    assert_int_equal(veil_ckks_encrypt_sk(fx->ctx, ct, pt, fx->sk, fx->prng, &err), VEIL_OK);
    veil_ckks_plaintext_free(pt);
    return ct;
}

/* Diagonal d of a level as a plaintext over Q_level (its limbs of Q; the stored ones go on over P). */
static veil_ckks_plaintext *diagonal_plaintext(const veil_boot_dft_level *lv, const veil_boot_diag *d)
{
    veil_ckks_plaintext *pt = NULL;
    veil_error err = {0};
    static double zero[HALF];
    assert_int_equal(veil_ckks_plaintext_new(&pt, fx->ctx, NULL), VEIL_OK);
    if (!d->v) {
        assert_int_equal(veil_ckks_encode(fx->enc, pt, d->re, d->im, HALF, lv->encode_scale, lv->level, &err),
                         VEIL_OK);
        return pt;
    }
    assert_int_equal(veil_ckks_encode(fx->enc, pt, zero, zero, HALF, lv->encode_scale, lv->level, &err), VEIL_OK);
    const size_t per = N / d->run;
    for (size_t t = 0; t <= lv->level; t++) {
        uint64_t *limb = veil_poly_limb_ptr(pt->m, t);
        for (size_t i = 0; i < N; i++) limb[i] = d->v[t * per + i / d->run];
    }
    return pt;
}

/* ct <- rot(ct, steps) (no change for 0 steps). */
static void rotate(veil_ckks_ciphertext *ct, long steps)
{
    veil_error err = {0};
    if (veil_galois_element_rotation(fx->ctx, steps) == 1) return;
    assert_int_equal(veil_ckks_rotate(fx->ctx, ct, ct, steps, key_of(steps), &err), VEIL_OK);
}

/* The plain evaluation: sum_k rot(diags[k] * rot(x, (i - shift) unit), j baby unit), k = j baby + i, rescaled. */
static veil_ckks_ciphertext *plain_transform(const veil_boot_dft_level *lv, const veil_ckks_ciphertext *x)
{
    veil_error err = {0};
    veil_ckks_ciphertext *acc = NULL, *term = NULL;
    const size_t b = lv->baby < lv->n_diags ? lv->baby : lv->n_diags;
    assert_int_equal(veil_ckks_ciphertext_new(&term, fx->ctx, NULL), VEIL_OK);
    for (size_t k = 0; k < lv->n_diags; k++) {
        if (!lv->diags[k]) continue;
        assert_int_equal(veil_ckks_mul_integer(fx->ctx, term, x, 1, &err), VEIL_OK); /* a copy */
        rotate(term, ((long)(k % b) - lv->shift) * lv->unit);
        veil_ckks_plaintext *pt = diagonal_plaintext(lv, lv->diags[k]);
        assert_int_equal(veil_ckks_mul_plain(fx->ctx, term, term, pt, &err), VEIL_OK);
        veil_ckks_plaintext_free(pt);
        rotate(term, (long)(k - k % b) * lv->unit);
        if (!acc) {
            acc = term;
            term = NULL;
            assert_int_equal(veil_ckks_ciphertext_new(&term, fx->ctx, NULL), VEIL_OK);
        } else {
            assert_int_equal(veil_ckks_add(fx->ctx, acc, acc, term, &err), VEIL_OK);
        }
    }
    assert_non_null(acc);
    assert_int_equal(veil_ckks_rescale(fx->ctx, acc, acc, &err), VEIL_OK);
    veil_ckks_ciphertext_free(term);
    return acc;
}

static void decrypt(const veil_ckks_ciphertext *ct, double *re, double *im)
{
    veil_ckks_plaintext *pt = NULL;
    veil_error err = {0};
    assert_int_equal(veil_ckks_plaintext_new(&pt, fx->ctx, NULL), VEIL_OK);
    assert_int_equal(veil_ckks_decrypt(fx->ctx, pt, ct, fx->sk, &err), VEIL_OK);
    assert_int_equal(veil_ckks_decode(fx->enc, re, im, HALF, pt, &err), VEIL_OK);
    veil_ckks_plaintext_free(pt);
}

/* Each level of the DFT (CoeffToSlot when inverse) at `slots` slots: double-hoisted against plain. */
static void check_levels(size_t slots, bool inverse, size_t count)
{
    veil_boot_dft_level levels[VEIL_BOOT_MAX_DFT_LEVELS];
    veil_error err = {0};
    const size_t top = fx->ctx->q_count - 1;
    assert_int_equal(veil_boot_dft_build(levels, count, fx->enc, slots, inverse, 1.0, top, 1.0, 0, NULL, &err),
                     VEIL_OK);
    bool whole = false, compact = false;
    for (size_t i = 0; i < count; i++) {
        const veil_boot_dft_level *lv = &levels[i];
        for (size_t k = 0; k < lv->n_diags; k++) {
            if (!lv->diags[k]) continue;
            whole = whole || !lv->diags[k]->v;
            compact = compact || lv->diags[k]->v;
        }
        for (size_t s = 0; s < lv->step_count; s++) (void)key_of(lv->steps[s]);
        veil_ckks_ciphertext *x = encrypt_random(slots, lv->level, (unsigned)(7 * i + slots + inverse));
        veil_ckks_ciphertext *ref = plain_transform(lv, x);
        assert_int_equal(veil_boot_dft_apply(fx->enc, x, NULL, lv, 1, (const veil_switch_key *const *)fx->keys,
                                             fx->key_count, &err),
                         VEIL_OK);
        assert_int_equal(veil_ckks_ciphertext_level(x), veil_ckks_ciphertext_level(ref));
        assert_true(fabs(veil_ckks_ciphertext_scale(x) / veil_ckks_ciphertext_scale(ref) - 1) < 1e-12);
        double xr[HALF], xi[HALF], rr[HALF], ri[HALF], diff = 0, size = 0;
        decrypt(x, xr, xi);
        decrypt(ref, rr, ri);
        for (size_t t = 0; t < HALF; t++) {
            diff = fmax(diff, hypot(xr[t] - rr[t], xi[t] - ri[t]));
            size = fmax(size, hypot(rr[t], ri[t]));
        }
        printf("slots %zu, %s level %zu: %zu diagonals, baby %zu: largest value %.3f, difference 2^%.1f\n", slots,
               inverse ? "CoeffToSlot" : "SlotToCoeff", i, lv->n_diags, lv->baby, size, log2(diff));
        assert_true(size > 0.25);
        assert_true(diff < ldexp(1.0, -DIFF_BITS));
        veil_ckks_ciphertext_free(x);
        veil_ckks_ciphertext_free(ref);
    }
    if (slots == HALF) assert_true(whole && compact); /* both kinds of diagonal were exercised */
    veil_boot_dft_free(levels, count);
}

static void test_dft_full_slots(void **state)
{
    (void)state;
    check_levels(HALF, true, 3);
    check_levels(HALF, false, 3);
}

static void test_dft_sparse_slots(void **state)
{
    (void)state;
    check_levels(32, true, 2);
    check_levels(32, false, 2);
}

/* A missing key: a clear error, no result. */
static void test_dft_missing_key(void **state)
{
    (void)state;
    veil_boot_dft_level levels[1];
    veil_error err = {0};
    const size_t top = fx->ctx->q_count - 1;
    assert_int_equal(veil_boot_dft_build(levels, 1, fx->enc, HALF, true, 1.0, top, 1.0, 0, NULL, &err), VEIL_OK);
    veil_ckks_ciphertext *x = encrypt_random(HALF, top, 3);
    assert_int_equal(veil_boot_dft_apply(fx->enc, x, NULL, levels, 1, NULL, 0, &err), VEIL_ERR_MISMATCH);
    assert_non_null(strstr(err.detail, "no Galois key"));
    veil_ckks_ciphertext_free(x);
    veil_boot_dft_free(levels, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dft_full_slots),
        cmocka_unit_test(test_dft_sparse_slots),
        cmocka_unit_test(test_dft_missing_key),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
