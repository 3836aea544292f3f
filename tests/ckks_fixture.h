/*
 * The CKKS tests' shared fixture (test_ckks, test_circuits): the preset ckks-n8192-d2 with seeded keys, inputs in
 * [-1, 1], encryption at the fixture's scale, and the largest decrypted error against expected values. Include it
 * after cmocka.h.
 */
#ifndef VEIL_TEST_CKKS_FIXTURE_H
#define VEIL_TEST_CKKS_FIXTURE_H

#include <complex.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "veil/veil.h"

typedef struct fixture {
    veil_params *params;
    veil_context *ctx;
    veil_ckks_encoder *enc;
    veil_secret_key *sk;
    veil_public_key *pk;
    veil_switch_key *rk;
    veil_prng *prng;
    size_t slots;
    double scale;
} fixture;

static fixture *fx;

static inline int setup(void **state)
{
    (void)state;
    fx = calloc(1, sizeof *fx);
    veil_error err = {0};
    uint8_t seed[VEIL_SEED_BYTES] = {42};
    if (veil_params_preset(&fx->params, "ckks-n8192-d2", &err) || veil_context_new(&fx->ctx, fx->params, NULL, &err) ||
        veil_prng_new_seeded(&fx->prng, seed, 1, &err) || veil_ckks_encoder_new(&fx->enc, fx->ctx, &err) ||
        veil_secret_key_new(&fx->sk, fx->ctx, fx->prng, &err) ||
        veil_public_key_new(&fx->pk, fx->ctx, fx->sk, fx->prng, &err) ||
        veil_relin_key_new(&fx->rk, fx->ctx, fx->sk, fx->prng, &err)) {
        fprintf(stderr, "setup: %s\n", err.detail);
        return -1;
    }
    fx->slots = veil_params_degree(fx->params) / 2;
    fx->scale = ldexp(1.0, 40);
    return 0;
}

static inline int teardown(void **state)
{
    (void)state;
    veil_switch_key_free(fx->rk);
    veil_public_key_free(fx->pk);
    veil_secret_key_free(fx->sk);
    veil_ckks_encoder_free(fx->enc);
    veil_prng_free(fx->prng);
    veil_context_free(fx->ctx);
    veil_params_free(fx->params);
    free(fx);
    return 0;
}

static inline void random_values(double *re, double *im, size_t count, unsigned seed)
{
    srand(seed);
    for (size_t i = 0; i < count; i++) {
        re[i] = 2.0 * rand() / RAND_MAX - 1.0;
        if (im) im[i] = 2.0 * rand() / RAND_MAX - 1.0;
    }
}

static inline veil_ckks_ciphertext *encrypt(const double *re, const double *im, size_t level)
{
    veil_ckks_plaintext *pt = NULL;
    veil_ckks_ciphertext *ct = NULL;
    assert_int_equal(veil_ckks_plaintext_new(&pt, fx->ctx, NULL), VEIL_OK);
    assert_int_equal(veil_ckks_encode(fx->enc, pt, re, im, fx->slots, fx->scale, level, NULL), VEIL_OK);
    assert_int_equal(veil_ckks_ciphertext_new(&ct, fx->ctx, NULL), VEIL_OK);
    assert_int_equal(veil_ckks_encrypt_pk(fx->ctx, ct, pt, fx->pk, fx->prng, NULL), VEIL_OK);
    veil_ckks_plaintext_free(pt);
    return ct;
}

/* Decrypts and returns the largest error against the expected complex values. */
static inline double max_error(const veil_ckks_ciphertext *ct, const double *re, const double *im)
{
    veil_ckks_plaintext *pt = NULL;
    veil_error err = {0};
    double *dr = malloc(fx->slots * sizeof *dr), *di = malloc(fx->slots * sizeof *di);
    assert_int_equal(veil_ckks_plaintext_new(&pt, fx->ctx, NULL), VEIL_OK);
    assert_int_equal(veil_ckks_decrypt(fx->ctx, pt, ct, fx->sk, &err), VEIL_OK);
    assert_int_equal(veil_ckks_decode(fx->enc, dr, di, fx->slots, pt, &err), VEIL_OK);
    double worst = 0;
    for (size_t i = 0; i < fx->slots; i++) {
        double e = cabs((dr[i] + I * di[i]) - (re[i] + I * (im ? im[i] : 0)));
        if (e > worst) worst = e;
    }
    veil_ckks_plaintext_free(pt);
    free(dr);
    free(di);
    return worst;
}

#endif
