/*
 * veil-bench precision: CKKS error as the SEAL harness measures it (real inputs in [-1, 1], max |error| of
 * the real part) at the N=8192 preset, for fresh public-key encryption and mul+relin+rescale, over 10 key
 * seeds; one JSON line per seed and one with the medians.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "bench.h"
#include "veil/veil.h"

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double max_real_error(const veil_context *ctx, const veil_ckks_encoder *enc, const veil_secret_key *sk,
                             const veil_ckks_ciphertext *ct, const double *expect, double *out, size_t slots)
{
    veil_error err = {0};
    veil_ckks_plaintext *pt = NULL;
    CHECK(veil_ckks_plaintext_new(&pt, ctx, &err));
    CHECK(veil_ckks_decrypt(ctx, pt, ct, sk, &err));
    CHECK(veil_ckks_decode(enc, out, NULL, slots, pt, &err));
    double worst = 0;
    for (size_t i = 0; i < slots; i++) worst = fmax(worst, fabs(out[i] - expect[i]));
    veil_ckks_plaintext_free(pt);
    return worst;
}

int bench_precision(const bench_config *cfg)
{
    (void)cfg;
    veil_error err = {0};
    veil_params *params = NULL;
    veil_context *ctx = NULL;
    veil_ckks_encoder *enc = NULL;
    CHECK(veil_params_preset(&params, "ckks-n8192-d2", &err));
    CHECK(veil_context_new(&ctx, params, NULL, &err));
    CHECK(veil_ckks_encoder_new(&enc, ctx, &err));
    const size_t slots = 4096, seeds = 10;
    double *a = malloc(slots * 8), *b = malloc(slots * 8), *ab = malloc(slots * 8), *out = malloc(slots * 8);
    double fresh[10], prod[10];
    srand(1);
    for (size_t i = 0; i < slots; i++) {
        a[i] = 2.0 * rand() / RAND_MAX - 1;
        b[i] = 2.0 * rand() / RAND_MAX - 1;
        ab[i] = a[i] * b[i];
    }
    for (size_t seed = 0; seed < seeds; seed++) {
        uint8_t s[VEIL_SEED_BYTES] = {(uint8_t)seed, 7};
        veil_prng *prng = NULL;
        veil_secret_key *sk = NULL;
        veil_public_key *pk = NULL;
        veil_switch_key *rk = NULL;
        veil_ckks_plaintext *pt = NULL;
        veil_ckks_ciphertext *ca = NULL, *cb = NULL;
        CHECK(veil_prng_new_seeded(&prng, s, 0, &err));
        CHECK(veil_secret_key_new(&sk, ctx, prng, &err));
        CHECK(veil_public_key_new(&pk, ctx, sk, prng, &err));
        CHECK(veil_relin_key_new(&rk, ctx, sk, prng, &err));
        CHECK(veil_ckks_plaintext_new(&pt, ctx, &err));
        CHECK(veil_ckks_ciphertext_new(&ca, ctx, &err));
        CHECK(veil_ckks_ciphertext_new(&cb, ctx, &err));
        CHECK(veil_ckks_encode(enc, pt, a, NULL, slots, ldexp(1, 40), 2, &err));
        CHECK(veil_ckks_encrypt_pk(ctx, ca, pt, pk, prng, &err));
        CHECK(veil_ckks_encode(enc, pt, b, NULL, slots, ldexp(1, 40), 2, &err));
        CHECK(veil_ckks_encrypt_pk(ctx, cb, pt, pk, prng, &err));
        fresh[seed] = max_real_error(ctx, enc, sk, ca, a, out, slots);
        CHECK(veil_ckks_mul_relin_rescale(ctx, ca, ca, cb, rk, &err));
        prod[seed] = max_real_error(ctx, enc, sk, ca, ab, out, slots);
        printf("{\"op\":\"precision\",\"set\":\"ckks-n8192-d2\",\"seed\":%zu,\"fresh\":%.3e,\"mul_relin_rescale\":%.3e}\n",
               seed, fresh[seed], prod[seed]);
        veil_ckks_ciphertext_free(ca);
        veil_ckks_ciphertext_free(cb);
        veil_ckks_plaintext_free(pt);
        veil_switch_key_free(rk);
        veil_public_key_free(pk);
        veil_secret_key_free(sk);
        veil_prng_free(prng);
    }
    qsort(fresh, seeds, sizeof *fresh, cmp);
    qsort(prod, seeds, sizeof *prod, cmp);
    printf("{\"op\":\"precision_median\",\"set\":\"ckks-n8192-d2\",\"seeds\":%zu,\"fresh\":%.3e,\"mul_relin_rescale\":%.3e,"
           "\"fresh_min\":%.3e,\"fresh_max\":%.3e,\"mul_min\":%.3e,\"mul_max\":%.3e}\n",
           seeds, (fresh[4] + fresh[5]) / 2, (prod[4] + prod[5]) / 2, fresh[0], fresh[9], prod[0], prod[9]);
    free(a);
    free(b);
    free(ab);
    free(out);
    veil_ckks_encoder_free(enc);
    veil_context_free(ctx);
    veil_params_free(params);
    return 0;
}
