/*
 * Encrypted training across the parties' records (docs/multiparty.md): joint training keys of 3 parties (the
 * protocol of veil/party.h, as `veil party` runs it), three data sets encrypted under the joint public key with
 * one declared feature range, veil_train_run_sets on their union, and the weights decrypted jointly
 * (veil_train_decrypt_joint): within 1e-3 of the same training under one key on the union. Refusals: a set under other keys among the sets, no set, too many,
 * a share set missing, shares smudged beyond the tolerance, a set scaled by another range (at decryption).
 * VEIL_SECURITY_NONE with a small ring (the algorithm is the same).
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "veil/veil.h"

#define PARTIES 3
#define FEATURES 3
#define SETS 3
#define ROWS_PER_SET 40
#define ITERATIONS 2

static void check(veil_status st, const veil_error *err)
{
    if (st != VEIL_OK) fail_msg("%s", err->detail);
}

static void expect_error(veil_status st, veil_status want, const veil_error *err, const char *fragment)
{
    if (st != want) fail_msg("status %d (wanted %d): %s", (int)st, (int)want, err->detail);
    if (fragment && !strstr(err->detail, fragment)) fail_msg("'%s' does not say '%s'", err->detail, fragment);
}

static double uniform(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (double)(*s >> 8) / (double)(1u << 24) * 2.0 - 1.0;
}

/* rows x FEATURES within [-4, 4], labels from a noisy linear rule */
static void make_data(unsigned seed, size_t rows, double *x, double *y)
{
    unsigned s = seed;
    for (size_t r = 0; r < rows; r++) {
        double t = 0.2;
        for (size_t j = 0; j < FEATURES; j++) {
            const double v = uniform(&s);
            x[r * FEATURES + j] = (1.0 + (double)j) * v;
            t += (j % 2 ? -1.5 : 2.0) * v;
        }
        y[r] = t + 0.3 * uniform(&s) > 0;
    }
}

/* The parties' secret shares, the joint key set and the joint evaluation keys of a plan. */
typedef struct joint_keys {
    veil_context *ctx;
    veil_party_group *group;
    veil_buffer group_bytes;
    veil_secret_key *sk[PARTIES];
    veil_buffer sk_bytes[PARTIES];
    veil_keyset *joint;
    veil_eval_keys *ek;
} joint_keys;

static void make_joint_keys(joint_keys *j, const veil_plan *plan, veil_prng *prng)
{
    veil_error err = {0};
    memset(j, 0, sizeof *j);
    check(veil_context_new(&j->ctx, veil_plan_params(plan), NULL, &err), &err);
    check(veil_party_group_new(&j->group, j->ctx, PARTIES, 0, prng, &err), &err);
    check(veil_party_group_save(&j->group_bytes, j->group, &err), &err);
    veil_secret_key *u[PARTIES];
    veil_party_share *pk_s[PARTIES], *r1[PARTIES], *r2[PARTIES], *pk_agg = NULL, *r1_agg = NULL, *r2_agg = NULL;
    for (size_t i = 0; i < PARTIES; i++) {
        check(veil_secret_key_new(&j->sk[i], j->ctx, prng, &err), &err);
        check(veil_secret_key_save(&j->sk_bytes[i], j->sk[i], 0, &err), &err);
        check(veil_party_public_key_share(&pk_s[i], j->group, i + 1, j->sk[i], prng, &err), &err);
        check(veil_party_relin_share_1(&r1[i], &u[i], j->group, i + 1, j->sk[i], prng, &err), &err);
    }
    check(veil_party_aggregate(&pk_agg, j->group, (const veil_party_share *const *)pk_s, PARTIES, &err), &err);
    check(veil_party_aggregate(&r1_agg, j->group, (const veil_party_share *const *)r1, PARTIES, &err), &err);
    for (size_t i = 0; i < PARTIES; i++)
        check(veil_party_relin_share_2(&r2[i], j->group, i + 1, j->sk[i], u[i], r1_agg, prng, &err), &err);
    check(veil_party_aggregate(&r2_agg, j->group, (const veil_party_share *const *)r2, PARTIES, &err), &err);
    veil_public_key *pk = NULL;
    veil_switch_key *rk = NULL;
    check(veil_party_public_key(&pk, j->group, pk_agg, &err), &err);
    check(veil_party_relin_key(&rk, j->group, r1_agg, r2_agg, &err), &err);
    long steps[128];
    const size_t rotations = veil_plan_rotations(plan, steps, 128);
    assert_true(rotations < 128);
    veil_buffer keys[129] = {{0}}, pkb = {0}, ekb = {0};
    check(veil_switch_key_save(&keys[0], rk, 0, &err), &err);
    for (size_t r = 0; r < rotations; r++) {
        veil_party_share *gs[PARTIES], *g_agg = NULL;
        veil_switch_key *gk = NULL;
        const uint64_t ge = veil_galois_element_rotation(j->ctx, steps[r]);
        for (size_t i = 0; i < PARTIES; i++)
            check(veil_party_galois_share(&gs[i], j->group, i + 1, j->sk[i], ge, prng, &err), &err);
        check(veil_party_aggregate(&g_agg, j->group, (const veil_party_share *const *)gs, PARTIES, &err), &err);
        check(veil_party_galois_key(&gk, j->group, g_agg, &err), &err);
        check(veil_switch_key_save(&keys[1 + r], gk, 0, &err), &err);
        for (size_t i = 0; i < PARTIES; i++) veil_party_share_free(gs[i]);
        veil_party_share_free(g_agg);
        veil_switch_key_free(gk);
    }
    check(veil_public_key_save(&pkb, pk, 0, &err), &err);
    check(veil_keyset_joint(&j->joint, plan, pkb.data, pkb.len, &err), &err);
    check(veil_eval_keys_joint_save(&ekb, j->joint, keys, 1 + rotations, &err), &err);
    check(veil_eval_keys_load(&j->ek, ekb.data, ekb.len, &err), &err);
    for (size_t r = 0; r <= rotations; r++) veil_buffer_free(&keys[r]);
    veil_buffer_free(&pkb);
    veil_buffer_free(&ekb);
    for (size_t i = 0; i < PARTIES; i++) {
        veil_secret_key_free(u[i]);
        veil_party_share_free(pk_s[i]);
        veil_party_share_free(r1[i]);
        veil_party_share_free(r2[i]);
    }
    veil_party_share_free(pk_agg);
    veil_party_share_free(r1_agg);
    veil_party_share_free(r2_agg);
    veil_public_key_free(pk);
    veil_switch_key_free(rk);
}

static void free_joint_keys(joint_keys *j)
{
    for (size_t i = 0; i < PARTIES; i++) {
        veil_secret_key_free(j->sk[i]);
        veil_buffer_free(&j->sk_bytes[i]);
    }
    veil_eval_keys_free(j->ek);
    veil_keyset_free(j->joint);
    veil_buffer_free(&j->group_bytes);
    veil_party_group_free(j->group);
    veil_context_free(j->ctx);
}

/* A set encrypted with `keys` (a key set, joint or not) and declared range, then loaded with the server's keys. */
static veil_ciphertexts *encrypt_set(const veil_keyset *keys, const veil_eval_keys *server, const double *x,
                                     const double *y, size_t rows, double half_width, veil_prng *prng)
{
    veil_error err = {0};
    double lo[FEATURES], hi[FEATURES];
    for (size_t j = 0; j < FEATURES; j++) {
        lo[j] = -half_width;
        hi[j] = half_width;
    }
    veil_ciphertexts *set = NULL, *loaded = NULL;
    veil_buffer b = {0};
    check(veil_train_encrypt_ranged(&set, keys, x, y, rows, lo, hi, prng, &err), &err);
    check(veil_ciphertexts_save(&b, set, &err), &err);
    check(veil_ciphertexts_load(&loaded, NULL, server, b.data, b.len, &err), &err);
    veil_ciphertexts_free(set);
    veil_buffer_free(&b);
    return loaded;
}

/* The model set, reloaded with the joint key set, decrypted jointly by all parties (smudging bits 0: default). */
static veil_status decrypt_jointly(double *w, const joint_keys *j, const veil_ciphertexts *model_server,
                                   size_t parties, unsigned bits, double *bound, veil_error *err)
{
    veil_buffer mb = {0}, shares[PARTIES] = {{0}};
    veil_ciphertexts *model = NULL;
    const veil_party_smudging smudging = {.bits = bits};
    check(veil_ciphertexts_save(&mb, model_server, err), err);
    check(veil_ciphertexts_load(&model, j->joint, NULL, mb.data, mb.len, err), err);
    for (size_t i = 0; i < parties; i++)
        check(veil_ciphertexts_decrypt_share(&shares[i], j->joint, j->group_bytes.data, j->group_bytes.len, i + 1,
                                             j->sk_bytes[i].data, j->sk_bytes[i].len, model, &smudging, err),
              err);
    const veil_status st = veil_train_decrypt_joint(w, j->joint, j->group_bytes.data, j->group_bytes.len, model,
                                                    shares, parties, 0, bound, err);
    for (size_t i = 0; i < parties; i++) veil_buffer_free(&shares[i]);
    veil_buffer_free(&mb);
    veil_ciphertexts_free(model);
    return st;
}

static void test_train_run_sets_joint(void **state)
{
    (void)state;
    veil_error err = {0};
    veil_prng *prng = NULL;
    uint8_t seed[VEIL_SEED_BYTES] = {18};
    check(veil_prng_new_seeded(&prng, seed, 1, &err), &err);
    const veil_train_request req = {.task = VEIL_TRAIN_LOGISTIC, .features = FEATURES, .iterations = ITERATIONS,
                                    .security = VEIL_SECURITY_NONE, .ring_degree = 2048};
    veil_plan *plan = NULL;
    check(veil_train_plan(&plan, &req, &err), &err);
    joint_keys j;
    make_joint_keys(&j, plan, prng);

    /* three parties' records, and their union */
    double x[SETS * ROWS_PER_SET * FEATURES], y[SETS * ROWS_PER_SET];
    for (size_t h = 0; h < SETS; h++)
        make_data(7 + (unsigned)h, ROWS_PER_SET, x + h * ROWS_PER_SET * FEATURES, y + h * ROWS_PER_SET);
    veil_ciphertexts *sets[SETS];
    for (size_t h = 0; h < SETS; h++)
        sets[h] = encrypt_set(j.joint, j.ek, x + h * ROWS_PER_SET * FEATURES, y + h * ROWS_PER_SET, ROWS_PER_SET,
                              4.0, prng);
    const veil_train_options opts = {.iterations = ITERATIONS};
    veil_ciphertexts *model = NULL;
    check(veil_train_run_sets(&model, j.ek, (const veil_ciphertexts *const *)sets, SETS, &opts, NULL, NULL, &err),
          &err);
    double w[FEATURES + 1], bound = -1;
    check(decrypt_jointly(w, &j, model, PARTIES, 0, &bound, &err), &err);
    assert_true(bound > 0 && bound < 1e-3); /* 2^20 per share at this plan's 2^40 scale and N = 2048 */

    /* the same training under one key, on the union as one set */
    veil_keyset *single = NULL;
    veil_eval_keys *single_ek = NULL;
    check(veil_keyset_generate(&single, &single_ek, plan, prng, NULL, NULL, &err), &err);
    veil_ciphertexts *all = encrypt_set(single, single_ek, x, y, SETS * ROWS_PER_SET, 4.0, prng), *single_model = NULL;
    check(veil_train_run(&single_model, single_ek, all, &opts, NULL, NULL, &err), &err);
    veil_buffer sb = {0};
    veil_ciphertexts *single_loaded = NULL;
    check(veil_ciphertexts_save(&sb, single_model, &err), &err);
    check(veil_ciphertexts_load(&single_loaded, single, NULL, sb.data, sb.len, &err), &err);
    double ws[FEATURES + 1];
    check(veil_train_decrypt(ws, single, single_loaded, &err), &err);
    double worst = 0;
    for (size_t k = 0; k <= FEATURES; k++) worst = fmax(worst, fabs(w[k] - ws[k]));
    printf("joint training on %d sets: weights %.4f %.4f %.4f %.4f, largest difference from one key %.2e, smudging "
           "bound %.2e\n", SETS, w[0], w[1], w[2], w[3], worst, bound);
    assert_true(worst < 1e-3);
    /* a trained model, not zeros: the rule's signs (+, -, +), each far above the difference */
    assert_true(w[1] > 5e-3 && w[2] < -5e-3 && w[3] > 5e-3);

    /* refusals: a set under other keys among the sets (before any work), no set, too many */
    const veil_ciphertexts *mixed[2] = {sets[0], all};
    veil_ciphertexts *none = NULL;
    expect_error(veil_train_run_sets(&none, j.ek, mixed, 2, &opts, NULL, NULL, &err), VEIL_ERR_MISMATCH, &err,
                 "other keys");
    assert_null(none);
    expect_error(veil_train_run_sets(&none, single_ek, (const veil_ciphertexts *const *)sets, 1, &opts, NULL, NULL,
                                     &err), VEIL_ERR_MISMATCH, &err, "other keys");
    expect_error(veil_train_run_sets(&none, j.ek, (const veil_ciphertexts *const *)sets, 0, &opts, NULL, NULL, &err),
                 VEIL_ERR_ARGUMENT, &err, "data sets");
    const veil_ciphertexts *many[VEIL_TRAIN_MAX_SETS + 1];
    for (size_t h = 0; h <= VEIL_TRAIN_MAX_SETS; h++) many[h] = sets[h % SETS];
    expect_error(veil_train_run_sets(&none, j.ek, many, VEIL_TRAIN_MAX_SETS + 1, &opts, NULL, NULL, &err),
                 VEIL_ERR_ARGUMENT, &err, "data sets");
    /* the joint decryption: a party's shares missing, smudging beyond the tolerance (nothing written) */
    double untouched[FEATURES + 1] = {42, 42, 42, 42};
    expect_error(decrypt_jointly(untouched, &j, model, PARTIES - 1, 0, NULL, &err), VEIL_ERR_ARGUMENT, &err,
                 "missing");
    expect_error(decrypt_jointly(untouched, &j, model, PARTIES, 36, NULL, &err), VEIL_ERR_NOISE, &err,
                 "beyond the tolerance");
    for (size_t k = 0; k <= FEATURES; k++) assert_true(untouched[k] == 42);
    /* a set scaled by another declared range: trained on, refused at decryption */
    veil_ciphertexts *wide = encrypt_set(j.joint, j.ek, x, y, ROWS_PER_SET, 8.0, prng), *bad_model = NULL;
    const veil_ciphertexts *scaled[2] = {sets[1], wide};
    check(veil_train_run_sets(&bad_model, j.ek, scaled, 2, &opts, NULL, NULL, &err), &err);
    expect_error(decrypt_jointly(untouched, &j, bad_model, PARTIES, 0, NULL, &err), VEIL_ERR_MISMATCH, &err,
                 "scaled differently");
    /* the jointly trained model is not a key holder's: its keys do not decrypt it */
    expect_error(veil_train_decrypt(untouched, single, model, &err), VEIL_ERR_MISMATCH, &err, "other keys");

    veil_ciphertexts_free(bad_model);
    veil_ciphertexts_free(wide);
    veil_ciphertexts_free(single_loaded);
    veil_buffer_free(&sb);
    veil_ciphertexts_free(single_model);
    veil_ciphertexts_free(all);
    veil_eval_keys_free(single_ek);
    veil_keyset_free(single);
    veil_ciphertexts_free(model);
    for (size_t h = 0; h < SETS; h++) veil_ciphertexts_free(sets[h]);
    free_joint_keys(&j);
    veil_plan_free(plan);
    veil_prng_free(prng);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_train_run_sets_joint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
