/*
 * Multi-party keys (veil/party.h): joint keys made by three parties work as single-party keys (encryption,
 * products with relinearization, rotations) in CKKS (precision measured) and BGV (exact); joint decryption
 * and public-key switching; one party's share alone decrypts nothing near the message; and every share that
 * does not belong (another group, round, ciphertext, parameter set, a duplicate, a missing party, damaged or
 * forged bytes) is refused. Small insecure parameters (VEIL_SECURITY_NONE) keep it to seconds.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "veil/veil.h"
#include "serial/serial_internal.h"

#define PARTIES 3

typedef struct joint {
    veil_params *params;
    veil_context *ctx;
    veil_prng *prng;
    veil_party_group *group;
    veil_secret_key *sk[PARTIES];
    veil_public_key *pk;
    veil_switch_key *rk, *gk;
    long step;
} joint;

static void check(veil_status st, const veil_error *err)
{
    if (st != VEIL_OK) fprintf(stderr, "unexpected failure: %s\n", err->detail);
    assert_int_equal(st, VEIL_OK);
}

static void expect_error(veil_status st, veil_status want, const veil_error *err, const char *fragment)
{
    if (st != want || !strstr(err->detail, fragment))
        fprintf(stderr, "expected status %d with '%s', got %d: %s\n", (int)want, fragment, (int)st, err->detail);
    assert_int_equal(st, want);
    assert_non_null(strstr(err->detail, fragment));
}

static void free_shares(veil_party_share **s, size_t n)
{
    for (size_t i = 0; i < n; i++) veil_party_share_free(s[i]);
}

/* The whole key-generation protocol: round 1 (public key, relinearization), round 2 (relinearization, Galois). */
static void make_joint(joint *j, const veil_params_spec *spec, long step)
{
    veil_error err = {0};
    uint8_t seed[VEIL_SEED_BYTES] = {7};
    memset(j, 0, sizeof *j);
    j->step = step;
    check(veil_params_new(&j->params, spec, &err), &err);
    check(veil_context_new(&j->ctx, j->params, NULL, &err), &err);
    check(veil_prng_new_seeded(&j->prng, seed, 3, &err), &err);
    check(veil_party_group_new(&j->group, j->ctx, PARTIES, 0, j->prng, &err), &err);
    assert_int_equal(veil_party_group_parties(j->group), PARTIES);
    assert_int_equal(veil_party_group_threshold(j->group), PARTIES);
    veil_party_share *pk[PARTIES], *r1[PARTIES], *r2[PARTIES], *g[PARTIES];
    veil_secret_key *u[PARTIES];
    veil_party_share *pk_agg = NULL, *r1_agg = NULL, *r2_agg = NULL, *g_agg = NULL;
    const uint64_t galois = veil_galois_element_rotation(j->ctx, step);
    for (size_t i = 0; i < PARTIES; i++) {
        check(veil_secret_key_new(&j->sk[i], j->ctx, j->prng, &err), &err);
        check(veil_party_public_key_share(&pk[i], j->group, i + 1, j->sk[i], j->prng, &err), &err);
        check(veil_party_relin_share_1(&r1[i], &u[i], j->group, i + 1, j->sk[i], j->prng, &err), &err);
        assert_int_equal(veil_party_share_round(r1[i]), 1);
        assert_int_equal(veil_party_share_party(r1[i]), i + 1);
    }
    /* the shares arrive in any order */
    const veil_party_share *order[PARTIES] = {pk[2], pk[0], pk[1]};
    check(veil_party_aggregate(&pk_agg, j->group, order, PARTIES, &err), &err);
    assert_int_equal(veil_party_share_party(pk_agg), 0);
    check(veil_party_public_key(&j->pk, j->group, pk_agg, &err), &err);
    check(veil_party_aggregate(&r1_agg, j->group, (const veil_party_share *const *)r1, PARTIES, &err), &err);
    for (size_t i = 0; i < PARTIES; i++) {
        check(veil_party_relin_share_2(&r2[i], j->group, i + 1, j->sk[i], u[i], r1_agg, j->prng, &err), &err);
        check(veil_party_galois_share(&g[i], j->group, i + 1, j->sk[i], galois, j->prng, &err), &err);
        assert_int_equal(veil_party_share_round(r2[i]), 2);
        veil_secret_key_free(u[i]);
    }
    check(veil_party_aggregate(&r2_agg, j->group, (const veil_party_share *const *)r2, PARTIES, &err), &err);
    check(veil_party_relin_key(&j->rk, j->group, r1_agg, r2_agg, &err), &err);
    check(veil_party_aggregate(&g_agg, j->group, (const veil_party_share *const *)g, PARTIES, &err), &err);
    check(veil_party_galois_key(&j->gk, j->group, g_agg, &err), &err);
    assert_int_equal(veil_switch_key_galois_element(j->gk), galois);
    /* an aggregate is no party's share, and a party's share is no aggregate */
    const veil_party_share *with_agg[PARTIES] = {pk[0], pk[1], pk_agg};
    veil_party_share *bad = NULL;
    expect_error(veil_party_aggregate(&bad, j->group, with_agg, PARTIES, &err), VEIL_ERR_ARGUMENT, &err, "aggregate");
    veil_public_key *bad_pk = NULL;
    expect_error(veil_party_public_key(&bad_pk, j->group, pk[0], &err), VEIL_ERR_ARGUMENT, &err, "not the aggregate");
    veil_switch_key *bad_rk = NULL;
    expect_error(veil_party_relin_key(&bad_rk, j->group, r2_agg, r1_agg, &err), VEIL_ERR_MISMATCH, &err,
                 "expected the relinearization round-1 aggregate");
    free_shares(pk, PARTIES);
    free_shares(r1, PARTIES);
    free_shares(r2, PARTIES);
    free_shares(g, PARTIES);
    veil_party_share_free(pk_agg);
    veil_party_share_free(r1_agg);
    veil_party_share_free(r2_agg);
    veil_party_share_free(g_agg);
}

static void free_joint(joint *j)
{
    for (size_t i = 0; i < PARTIES; i++) veil_secret_key_free(j->sk[i]);
    veil_public_key_free(j->pk);
    veil_switch_key_free(j->rk);
    veil_switch_key_free(j->gk);
    veil_party_group_free(j->group);
    veil_prng_free(j->prng);
    veil_context_free(j->ctx);
    veil_params_free(j->params);
}

/* N = 4096, Q = {50, 40, 40}, P = {50}, dnum 3: insecure, for tests only. */
static const unsigned ckks_q[3] = {50, 40, 40}, ckks_p[1] = {50};
static const veil_params_spec ckks_spec = {4096, 3, NULL, ckks_q, 1, NULL, ckks_p, 3, VEIL_SECRET_TERNARY, 0,
                                           VEIL_SECURITY_NONE, 0};

/* The three parties' decryption shares of ct, joined. */
static void ckks_joint_decrypt_smudged(const joint *j, veil_ckks_plaintext *pt, const veil_ckks_ciphertext *ct,
                                       const veil_party_smudging *smudging)
{
    veil_error err = {0};
    veil_party_share *d[PARTIES];
    for (size_t i = 0; i < PARTIES; i++)
        check(veil_ckks_decrypt_share(&d[i], j->group, i + 1, ct, j->sk[i], smudging, j->prng, &err), &err);
    check(veil_ckks_decrypt_joint(pt, j->group, ct, (const veil_party_share *const *)d, PARTIES, &err), &err);
    free_shares(d, PARTIES);
}

static void ckks_joint_decrypt(const joint *j, veil_ckks_plaintext *pt, const veil_ckks_ciphertext *ct)
{
    ckks_joint_decrypt_smudged(j, pt, ct, NULL);
}

static void ckks_joint_keys(const veil_params_spec *spec)
{
    joint j;
    make_joint(&j, spec, 1);
    veil_error err = {0};
    veil_ckks_encoder *enc = NULL;
    veil_ckks_plaintext *pt = NULL;
    veil_ckks_ciphertext *x = NULL, *y = NULL;
    const size_t slots = 2048;
    const double scale = ldexp(1.0, 40);
    double *a = malloc(slots * sizeof *a), *b = malloc(slots * sizeof *b), *got = malloc(slots * sizeof *got);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(got);
    srand(5);
    for (size_t i = 0; i < slots; i++) {
        a[i] = 2.0 * rand() / RAND_MAX - 1.0;
        b[i] = 2.0 * rand() / RAND_MAX - 1.0;
    }
    check(veil_ckks_encoder_new(&enc, j.ctx, &err), &err);
    check(veil_ckks_plaintext_new(&pt, j.ctx, &err), &err);
    check(veil_ckks_ciphertext_new(&x, j.ctx, &err), &err);
    check(veil_ckks_ciphertext_new(&y, j.ctx, &err), &err);
    check(veil_ckks_encode(enc, pt, a, NULL, slots, scale, veil_context_max_level(j.ctx), &err), &err);
    check(veil_ckks_encrypt_pk(j.ctx, x, pt, j.pk, j.prng, &err), &err);
    check(veil_ckks_encode(enc, pt, b, NULL, slots, scale, veil_context_max_level(j.ctx), &err), &err);
    check(veil_ckks_encrypt_pk(j.ctx, y, pt, j.pk, j.prng, &err), &err);
    /* fresh: decrypts jointly to the message */
    ckks_joint_decrypt(&j, pt, x);
    check(veil_ckks_decode(enc, got, NULL, slots, pt, &err), &err);
    double fresh = 0;
    for (size_t i = 0; i < slots; i++) fresh = fmax(fresh, fabs(got[i] - a[i]));
    /* x * y (joint relinearization key), rotated left by one (joint Galois key) */
    check(veil_ckks_mul_relin_rescale(j.ctx, x, x, y, j.rk, &err), &err);
    check(veil_ckks_rotate(j.ctx, x, x, 1, j.gk, &err), &err);
    ckks_joint_decrypt(&j, pt, x);
    check(veil_ckks_decode(enc, got, NULL, slots, pt, &err), &err);
    double worst = 0;
    for (size_t i = 0; i < slots; i++) worst = fmax(worst, fabs(got[i] - a[(i + 1) % slots] * b[(i + 1) % slots]));
    /* the joint keys' own error, seen through the least smudging (2^1): as a single owner's keys give */
    const veil_party_smudging least = {.bits = 1};
    ckks_joint_decrypt_smudged(&j, pt, x, &least);
    check(veil_ckks_decode(enc, got, NULL, slots, pt, &err), &err);
    double keys_only = 0;
    for (size_t i = 0; i < slots; i++)
        keys_only = fmax(keys_only, fabs(got[i] - a[(i + 1) % slots] * b[(i + 1) % slots]));
    printf("ckks joint keys: fresh error %.2e (%.1f bits), after product and rotation %.2e (%.1f bits), with "
           "2^1 smudging %.2e (%.1f bits)\n", fresh, -log2(fresh), worst, -log2(worst), keys_only, -log2(keys_only));
    assert_true(fresh < 1e-3);
    assert_true(worst < 1e-3);
    assert_true(keys_only < 1e-5);
    /* one party's share alone decrypts nothing near the message */
    check(veil_ckks_decrypt(j.ctx, pt, x, j.sk[0], &err), &err);
    check(veil_ckks_decode(enc, got, NULL, slots, pt, &err), &err);
    double alone = 0;
    for (size_t i = 0; i < slots; i++) alone = fmax(alone, fabs(got[i] - a[(i + 1) % slots] * b[(i + 1) % slots]));
    printf("ckks: one party's share alone is off by %.2e\n", alone);
    assert_true(alone > 1e3);
    /* nor do two of the three shares: the third party is missing */
    veil_party_share *d[PARTIES];
    for (size_t i = 0; i < PARTIES; i++)
        check(veil_ckks_decrypt_share(&d[i], j.group, i + 1, x, j.sk[i], NULL, j.prng, &err), &err);
    expect_error(veil_ckks_decrypt_joint(pt, j.group, x, (const veil_party_share *const *)d, 2, &err), VEIL_ERR_ARGUMENT,
                 &err, "party 3's share is missing");
    /* the shares of another ciphertext */
    expect_error(veil_ckks_decrypt_joint(pt, j.group, y, (const veil_party_share *const *)d, PARTIES, &err),
                 VEIL_ERR_MISMATCH, &err, "another ciphertext");
    /* a duplicated share */
    const veil_party_share *dup[PARTIES] = {d[0], d[1], d[1]};
    expect_error(veil_ckks_decrypt_joint(pt, j.group, x, dup, PARTIES, &err), VEIL_ERR_ARGUMENT, &err, "appears twice");
    free_shares(d, PARTIES);
    /* a size-3 ciphertext must be relinearized first */
    check(veil_ckks_mul(j.ctx, y, y, y, &err), &err);
    veil_party_share *s3 = NULL;
    expect_error(veil_ckks_decrypt_share(&s3, j.group, 1, y, j.sk[0], NULL, j.prng, &err), VEIL_ERR_ARGUMENT, &err,
                 "relinearize");
    free(a);
    free(b);
    free(got);
    veil_ckks_ciphertext_free(x);
    veil_ckks_ciphertext_free(y);
    veil_ckks_plaintext_free(pt);
    veil_ckks_encoder_free(enc);
    free_joint(&j);
}

static void test_ckks_joint_keys(void **state)
{
    (void)state;
    ckks_joint_keys(&ckks_spec);
}

/* Digits of two primes each (alpha = 2): the gadget covers each digit's primes. */
static void test_ckks_wide_digits(void **state)
{
    (void)state;
    const unsigned q[4] = {50, 40, 40, 40}, p[2] = {50, 50};
    const veil_params_spec spec = {4096, 4, NULL, q, 2, NULL, p, 2, VEIL_SECRET_TERNARY, 0, VEIL_SECURITY_NONE, 0};
    ckks_joint_keys(&spec);
}

static void test_ckks_public_key_switch(void **state)
{
    (void)state;
    joint j;
    make_joint(&j, &ckks_spec, 2);
    veil_error err = {0};
    veil_ckks_encoder *enc = NULL;
    veil_ckks_plaintext *pt = NULL;
    veil_ckks_ciphertext *x = NULL, *z = NULL;
    veil_secret_key *receiver = NULL;
    veil_public_key *receiver_pk = NULL;
    const size_t slots = 2048;
    double *a = malloc(slots * sizeof *a), *got = malloc(slots * sizeof *got);
    assert_non_null(a);
    assert_non_null(got);
    for (size_t i = 0; i < slots; i++) a[i] = sin(0.01 * (double)i);
    check(veil_secret_key_new(&receiver, j.ctx, j.prng, &err), &err);
    check(veil_public_key_new(&receiver_pk, j.ctx, receiver, j.prng, &err), &err);
    check(veil_ckks_encoder_new(&enc, j.ctx, &err), &err);
    check(veil_ckks_plaintext_new(&pt, j.ctx, &err), &err);
    check(veil_ckks_ciphertext_new(&x, j.ctx, &err), &err);
    check(veil_ckks_ciphertext_new(&z, j.ctx, &err), &err);
    check(veil_ckks_encode(enc, pt, a, NULL, slots, ldexp(1.0, 40), 1, &err), &err);
    check(veil_ckks_encrypt_pk(j.ctx, x, pt, j.pk, j.prng, &err), &err);
    veil_party_share *s[PARTIES];
    for (size_t i = 0; i < PARTIES; i++)
        check(veil_ckks_switch_share(&s[i], j.group, i + 1, x, j.sk[i], receiver_pk, NULL, j.prng, &err), &err);
    check(veil_ckks_switch_joint(z, j.group, x, receiver_pk, (const veil_party_share *const *)s, PARTIES, &err), &err);
    /* the receiver alone decrypts it, with an ordinary decryption */
    check(veil_ckks_decrypt(j.ctx, pt, z, receiver, &err), &err);
    check(veil_ckks_decode(enc, got, NULL, slots, pt, &err), &err);
    double worst = 0;
    for (size_t i = 0; i < slots; i++) worst = fmax(worst, fabs(got[i] - a[i]));
    printf("ckks public-key switching: error %.2e under the receiver's key\n", worst);
    assert_true(worst < 1e-3);
    /* switching shares are not decryption shares, and are bound to their receiver */
    expect_error(veil_ckks_decrypt_joint(pt, j.group, x, (const veil_party_share *const *)s, PARTIES, &err),
                 VEIL_ERR_MISMATCH, &err, "key-switching share");
    veil_public_key *other_pk = NULL;
    check(veil_public_key_new(&other_pk, j.ctx, j.sk[0], j.prng, &err), &err);
    expect_error(veil_ckks_switch_joint(z, j.group, x, other_pk, (const veil_party_share *const *)s, PARTIES, &err),
                 VEIL_ERR_MISMATCH, &err, "receiver key");
    veil_public_key_free(other_pk);
    free_shares(s, PARTIES);
    free(a);
    free(got);
    veil_ckks_ciphertext_free(x);
    veil_ckks_ciphertext_free(z);
    veil_ckks_plaintext_free(pt);
    veil_ckks_encoder_free(enc);
    veil_public_key_free(receiver_pk);
    veil_secret_key_free(receiver);
    free_joint(&j);
}

/* BGV: N = 4096, Q = 4 x 50 bits, P = 55 bits, t = 65537 (batching): insecure, for tests only. */
static const unsigned bgv_q[4] = {50, 50, 50, 50}, bgv_p[1] = {55};
static const veil_params_spec bgv_spec = {4096, 4, NULL, bgv_q, 1, NULL, bgv_p, 4, VEIL_SECRET_TERNARY, 0,
                                          VEIL_SECURITY_NONE, 65537};

static void test_bgv_joint_keys(void **state)
{
    (void)state;
    joint j;
    make_joint(&j, &bgv_spec, 3);
    veil_error err = {0};
    veil_bgv_encoder *enc = NULL;
    veil_bgv_plaintext *pt = NULL;
    veil_bgv_ciphertext *x = NULL, *y = NULL, *z = NULL;
    veil_secret_key *receiver = NULL;
    veil_public_key *receiver_pk = NULL;
    const size_t n = 4096, row = n / 2;
    const uint64_t t = 65537;
    uint64_t *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *got = malloc(n * sizeof *got);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(got);
    srand(9);
    for (size_t i = 0; i < n; i++) {
        a[i] = (uint64_t)rand() % t;
        b[i] = (uint64_t)rand() % t;
    }
    check(veil_bgv_encoder_new(&enc, j.ctx, &err), &err);
    check(veil_bgv_plaintext_new(&pt, j.ctx, &err), &err);
    check(veil_bgv_ciphertext_new(&x, j.ctx, &err), &err);
    check(veil_bgv_ciphertext_new(&y, j.ctx, &err), &err);
    check(veil_bgv_ciphertext_new(&z, j.ctx, &err), &err);
    check(veil_bgv_encode(enc, pt, a, n, &err), &err);
    check(veil_bgv_encrypt_pk(j.ctx, x, pt, j.pk, j.prng, &err), &err);
    check(veil_bgv_encode(enc, pt, b, n, &err), &err);
    check(veil_bgv_encrypt_pk(j.ctx, y, pt, j.pk, j.prng, &err), &err);
    check(veil_bgv_mul_relin(j.ctx, x, x, y, j.rk, &err), &err);
    check(veil_bgv_rotate_rows(j.ctx, x, x, 3, j.gk, &err), &err);
    veil_party_share *d[PARTIES];
    for (size_t i = 0; i < PARTIES; i++)
        check(veil_bgv_decrypt_share(&d[i], j.group, i + 1, x, j.sk[i], NULL, j.prng, &err), &err);
    check(veil_bgv_decrypt_joint(pt, j.group, x, (const veil_party_share *const *)d, PARTIES, &err), &err);
    check(veil_bgv_decode(enc, got, n, pt, &err), &err);
    /* exact: both rows rotated left by 3 */
    for (size_t i = 0; i < n; i++) {
        const size_t r = i / row, c = i % row, from = r * row + (c + 3) % row;
        assert_int_equal(got[i], a[from] * b[from] % t);
    }
    free_shares(d, PARTIES);
    /* one party's share alone: not the message (or refused: the phase fills the modulus) */
    if (veil_bgv_decrypt(j.ctx, pt, x, j.sk[1], &err) == VEIL_OK) {
        check(veil_bgv_decode(enc, got, n, pt, &err), &err);
        size_t same = 0;
        for (size_t i = 0; i < n; i++) {
            const size_t r = i / row, c = i % row, from = r * row + (c + 3) % row;
            same += got[i] == a[from] * b[from] % t;
        }
        assert_true(same < n / 100);
    }
    /* public-key switching to a receiver, exact under the receiver's key */
    check(veil_secret_key_new(&receiver, j.ctx, j.prng, &err), &err);
    check(veil_public_key_new(&receiver_pk, j.ctx, receiver, j.prng, &err), &err);
    for (size_t i = 0; i < PARTIES; i++)
        check(veil_bgv_switch_share(&d[i], j.group, i + 1, x, j.sk[i], receiver_pk, NULL, j.prng, &err), &err);
    check(veil_bgv_switch_joint(z, j.group, x, receiver_pk, (const veil_party_share *const *)d, PARTIES, &err), &err);
    check(veil_bgv_decrypt(j.ctx, pt, z, receiver, &err), &err);
    check(veil_bgv_decode(enc, got, n, pt, &err), &err);
    for (size_t i = 0; i < n; i++) {
        const size_t r = i / row, c = i % row, from = r * row + (c + 3) % row;
        assert_int_equal(got[i], a[from] * b[from] % t);
    }
    free_shares(d, PARTIES);
    /* smudging that does not fit the modulus is refused before anything is made */
    veil_party_smudging huge = {.bits = 40, .error_bits = 0};
    veil_party_share *none = NULL;
    check(veil_bgv_mod_switch_to(j.ctx, y, y, 0, &err), &err);
    expect_error(veil_bgv_decrypt_share(&none, j.group, 1, y, j.sk[0], &huge, j.prng, &err), VEIL_ERR_NOISE, &err,
                 "smudging");
    assert_null(none);
    free(a);
    free(b);
    free(got);
    veil_bgv_ciphertext_free(x);
    veil_bgv_ciphertext_free(y);
    veil_bgv_ciphertext_free(z);
    veil_bgv_plaintext_free(pt);
    veil_bgv_encoder_free(enc);
    veil_public_key_free(receiver_pk);
    veil_secret_key_free(receiver);
    free_joint(&j);
}

/* Saves a share, edits its bytes (resealed when reseal: a forger's edit, not an accident), loads it back. */
static veil_status reload_edited(veil_party_share **out, const veil_context *ctx, const veil_party_share *s,
                                 size_t offset, uint8_t xor_with, bool reseal, veil_error *err)
{
    veil_buffer buf = {0};
    check(veil_party_share_save(&buf, s, 0, err), err);
    buf.data[offset] ^= xor_with;
    if (reseal) veil_object_reseal(buf.data, buf.len);
    veil_status st = veil_party_share_load(out, ctx, buf.data, buf.len, err);
    veil_buffer_free(&buf);
    return st;
}

static void test_wire_and_refusals(void **state)
{
    (void)state;
    joint j;
    make_joint(&j, &ckks_spec, 1);
    veil_error err = {0};
    veil_buffer buf = {0};
    /* the group and the joint keys travel as Veil objects; the relinearization key in full form */
    veil_party_group *g2 = NULL;
    check(veil_party_group_save(&buf, j.group, &err), &err);
    check(veil_party_group_load(&g2, j.ctx, buf.data, buf.len, &err), &err);
    assert_memory_equal(veil_party_group_id(g2), veil_party_group_id(j.group), VEIL_PARTY_ID_BYTES);
    assert_int_equal(veil_party_group_smudging_bits(g2), VEIL_PARTY_DEFAULT_SMUDGING_BITS);
    veil_party_group_free(g2);
    /* the group's smudging bits: stored only when not the default, the shares' default, forged values refused */
    const size_t plain_len = buf.len;
    veil_buffer_free(&buf);
    expect_error(veil_party_group_set_smudging_bits(j.group, 61, &err), VEIL_ERR_ARGUMENT, &err, "at most 60");
    check(veil_party_group_set_smudging_bits(j.group, 16, &err), &err);
    check(veil_party_group_save(&buf, j.group, &err), &err);
    assert_int_equal(buf.len, plain_len + 8);
    check(veil_party_group_load(&g2, j.ctx, buf.data, buf.len, &err), &err);
    assert_int_equal(veil_party_group_smudging_bits(g2), 16);
    {
        veil_ckks_encoder *enc = NULL;
        veil_ckks_plaintext *pt = NULL;
        veil_ckks_ciphertext *ct = NULL;
        veil_party_share *d = NULL;
        const double one = 1;
        const veil_party_smudging given = {.bits = 24};
        check(veil_ckks_encoder_new(&enc, j.ctx, &err), &err);
        check(veil_ckks_plaintext_new(&pt, j.ctx, &err), &err);
        check(veil_ckks_ciphertext_new(&ct, j.ctx, &err), &err);
        check(veil_ckks_encode(enc, pt, &one, NULL, 1, 0x1p30, veil_context_max_level(j.ctx), &err), &err);
        check(veil_ckks_encrypt_pk(j.ctx, ct, pt, j.pk, j.prng, &err), &err);
        check(veil_ckks_decrypt_share(&d, g2, 1, ct, j.sk[0], NULL, j.prng, &err), &err);
        assert_true(veil_party_share_smudging_bits(d) == 16); /* the group's */
        veil_party_share_free(d);
        check(veil_ckks_decrypt_share(&d, g2, 1, ct, j.sk[0], &given, j.prng, &err), &err);
        assert_true(veil_party_share_smudging_bits(d) == 24); /* asked for */
        veil_party_share_free(d);
        check(veil_ckks_decrypt_share(&d, j.group, 1, ct, j.sk[0], NULL, j.prng, &err), &err);
        assert_true(veil_party_share_smudging_bits(d) == 16);
        veil_party_share_free(d);
        veil_ckks_ciphertext_free(ct);
        veil_ckks_plaintext_free(pt);
        veil_ckks_encoder_free(enc);
    }
    veil_party_group_free(g2);
    static const uint8_t forged_bits[] = {0, 20, 61};
    for (size_t k = 0; k < sizeof forged_bits; k++) {
        buf.data[buf.len - VEIL_DIGEST_BYTES - 8] = forged_bits[k];
        veil_object_reseal(buf.data, buf.len);
        expect_error(veil_party_group_load(&g2, j.ctx, buf.data, buf.len, &err), VEIL_ERR_FORMAT, &err,
                     "smudging bits");
    }
    veil_buffer_free(&buf);
    check(veil_party_group_set_smudging_bits(j.group, VEIL_PARTY_DEFAULT_SMUDGING_BITS, &err), &err);
    check(veil_party_group_save(&buf, j.group, &err), &err);
    assert_int_equal(buf.len, plain_len); /* the default: the layout of before */
    veil_buffer_free(&buf);
    veil_switch_key *rk2 = NULL;
    check(veil_switch_key_save(&buf, j.rk, 0, &err), &err);
    check(veil_switch_key_load(&rk2, j.ctx, buf.data, buf.len, &err), &err);
    veil_buffer_free(&buf);
    veil_switch_key_free(rk2);
    veil_public_key *pk2 = NULL;
    check(veil_public_key_save(&buf, j.pk, 0, &err), &err);
    check(veil_public_key_load(&pk2, j.ctx, buf.data, buf.len, &err), &err);
    veil_buffer_free(&buf);
    veil_public_key_free(pk2);

    veil_party_share *s[PARTIES], *loaded[PARTIES], *bad = NULL;
    for (size_t i = 0; i < PARTIES; i++) {
        check(veil_party_public_key_share(&s[i], j.group, i + 1, j.sk[i], j.prng, &err), &err);
        check(veil_party_share_save(&buf, s[i], VEIL_SAVE_COMPRESS, &err), &err);
        check(veil_party_share_load(&loaded[i], j.ctx, buf.data, buf.len, &err), &err);
        veil_buffer_free(&buf);
    }
    veil_party_share *agg = NULL;
    check(veil_party_aggregate(&agg, j.group, (const veil_party_share *const *)loaded, PARTIES, &err), &err);
    veil_party_share_free(agg);

    /* damaged bytes: the digest */
    expect_error(reload_edited(&bad, j.ctx, s[0], 200, 0x10, false, &err), VEIL_ERR_FORMAT, &err, "corrupt");
    /* forged fields, resealed: the round of another kind, a party beyond the group, a coefficient too large */
    const size_t head = VEIL_HEADER_BYTES, party_at = head + 32, round_at = head + 32 + 24;
    expect_error(reload_edited(&bad, j.ctx, s[0], round_at, 0x03, true, &err), VEIL_ERR_FORMAT, &err, "round");
    expect_error(reload_edited(&bad, j.ctx, s[0], party_at, 0x04, true, &err), VEIL_ERR_FORMAT, &err, "party 5 of 3");
    /* a share whose party number was changed to another's: a duplicate at combination */
    check(reload_edited(&bad, j.ctx, s[1], party_at, 0x02 ^ 0x01, true, &err), &err); /* party 2 -> 1 */
    const veil_party_share *forged[PARTIES] = {s[0], bad, s[2]};
    expect_error(veil_party_aggregate(&agg, j.group, forged, PARTIES, &err), VEIL_ERR_ARGUMENT, &err, "appears twice");
    veil_party_share_free(bad);
    bad = NULL;

    /* another group */
    veil_party_group *other = NULL;
    veil_party_share *foreign = NULL;
    check(veil_party_group_new(&other, j.ctx, PARTIES, 0, j.prng, &err), &err);
    check(veil_party_public_key_share(&foreign, other, 2, j.sk[1], j.prng, &err), &err);
    const veil_party_share *mixed[PARTIES] = {s[0], foreign, s[2]};
    expect_error(veil_party_aggregate(&agg, j.group, mixed, PARTIES, &err), VEIL_ERR_MISMATCH, &err, "another group");
    veil_party_share_free(foreign);
    veil_party_group_free(other);

    /* another round: a relinearization share among public-key shares */
    veil_party_share *r1 = NULL;
    veil_secret_key *u = NULL;
    check(veil_party_relin_share_1(&r1, &u, j.group, 2, j.sk[1], j.prng, &err), &err);
    const veil_party_share *rounds[PARTIES] = {s[0], r1, s[2]};
    expect_error(veil_party_aggregate(&agg, j.group, rounds, PARTIES, &err), VEIL_ERR_MISMATCH, &err,
                 "expected a public-key share");
    veil_party_share_free(r1);
    veil_secret_key_free(u);

    /* Galois shares of different elements */
    veil_party_share *ga[PARTIES];
    for (size_t i = 0; i < PARTIES; i++)
        check(veil_party_galois_share(&ga[i], j.group, i + 1, j.sk[i],
                                      veil_galois_element_rotation(j.ctx, i == 2 ? 2 : 1), j.prng, &err), &err);
    expect_error(veil_party_aggregate(&agg, j.group, (const veil_party_share *const *)ga, PARTIES, &err),
                 VEIL_ERR_MISMATCH, &err, "Galois element");
    free_shares(ga, PARTIES);

    /* a party outside the group, and a key of another context */
    expect_error(veil_party_public_key_share(&bad, j.group, 4, j.sk[0], j.prng, &err), VEIL_ERR_ARGUMENT, &err,
                 "not in this group");
    expect_error(veil_party_public_key_share(&bad, j.group, 0, j.sk[0], j.prng, &err), VEIL_ERR_ARGUMENT, &err,
                 "not in this group");

    /* another parameter set: refused on loading */
    veil_params_spec spec2 = ckks_spec;
    const unsigned q2[3] = {50, 40, 30};
    spec2.q_bits = q2;
    veil_params *p2 = NULL;
    veil_context *c2 = NULL;
    check(veil_params_new(&p2, &spec2, &err), &err);
    check(veil_context_new(&c2, p2, NULL, &err), &err);
    check(veil_party_share_save(&buf, s[0], 0, &err), &err);
    expect_error(veil_party_share_load(&bad, c2, buf.data, buf.len, &err), VEIL_ERR_MISMATCH, &err,
                 "another parameter set");
    veil_buffer_free(&buf);
    veil_context_free(c2);
    veil_params_free(p2);

    /* thresholds outside 2..N are refused, not ignored (t-out-of-N itself: test_threshold) */
    veil_party_group *tg = NULL;
    expect_error(veil_party_group_new(&tg, j.ctx, 3, 4, j.prng, &err), VEIL_ERR_ARGUMENT, &err, "threshold of 4 of 3");
    expect_error(veil_party_group_new(&tg, j.ctx, 3, 1, j.prng, &err), VEIL_ERR_ARGUMENT, &err, "threshold of 1 of 3");
    assert_null(tg);
    expect_error(veil_party_group_new(&tg, j.ctx, 1, 0, j.prng, &err), VEIL_ERR_ARGUMENT, &err, "1 parties");

    free_shares(s, PARTIES);
    free_shares(loaded, PARTIES);
    free_joint(&j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ckks_joint_keys),
        cmocka_unit_test(test_ckks_wide_digits),
        cmocka_unit_test(test_ckks_public_key_switch),
        cmocka_unit_test(test_bgv_joint_keys),
        cmocka_unit_test(test_wire_and_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
