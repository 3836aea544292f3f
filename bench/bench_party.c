/*
 * The multi-party benchmark (veil/party.h): 3 parties at ckks-n8192-d2 (N = 8192, the moduli of OpenFHE's
 * threshold harness in /work/shared/peers), each operation as one party (or the combiner) runs it. Extra
 * fields: "parties", and "bytes", the stored size of what the operation produces and sends (a share, or for
 * the fusion the shares it reads). Also the joint decryption's largest error at scale 2^40 with the default
 * smudging (2^20), against OpenFHE's 5.3e-4.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench.h"
#include "veil/veil.h"

#define PARTIES 3

typedef struct party_case {
    veil_context *ctx;
    veil_party_group *group;
    veil_prng *prng;
    veil_secret_key *sk[PARTIES];
    veil_party_share *pk_shares[PARTIES], *dec[PARTIES];
    veil_ckks_encoder *enc;
    veil_ckks_plaintext *pt;
    veil_ckks_ciphertext *ct;
    double *values;
    size_t slots;
} party_case;

static void free_share(veil_party_share **s)
{
    veil_party_share_free(*s);
    *s = NULL;
}

/* The joint public key: each party's secret share and public-key share, the aggregate and the key. */
static void run_joint_pk(void *p)
{
    party_case *c = p;
    veil_error err = {0};
    veil_party_share *s[PARTIES], *agg = NULL;
    veil_public_key *pk = NULL;
    for (size_t i = 0; i < PARTIES; i++) {
        veil_secret_key *sk = NULL;
        CHECK(veil_secret_key_new(&sk, c->ctx, c->prng, &err));
        CHECK(veil_party_public_key_share(&s[i], c->group, i + 1, sk, c->prng, &err));
        veil_secret_key_free(sk);
    }
    CHECK(veil_party_aggregate(&agg, c->group, (const veil_party_share *const *)s, PARTIES, &err));
    CHECK(veil_party_public_key(&pk, c->group, agg, &err));
    veil_public_key_free(pk);
    veil_party_share_free(agg);
    for (size_t i = 0; i < PARTIES; i++) veil_party_share_free(s[i]);
}

static void run_pk_share(void *p)
{
    party_case *c = p;
    veil_error err = {0};
    veil_party_share *s = NULL;
    CHECK(veil_party_public_key_share(&s, c->group, 1, c->sk[0], c->prng, &err));
    veil_party_share_free(s);
}

static void run_partial_decrypt(void *p)
{
    party_case *c = p;
    veil_error err = {0};
    veil_party_share *s = NULL;
    CHECK(veil_ckks_decrypt_share(&s, c->group, 2, c->ct, c->sk[1], NULL, c->prng, &err));
    veil_party_share_free(s);
}

/* The fusion, decoding included (as OpenFHE's MultipartyDecryptFusion). */
static void run_fusion(void *p)
{
    party_case *c = p;
    veil_error err = {0};
    CHECK(veil_ckks_decrypt_joint(c->pt, c->group, c->ct, (const veil_party_share *const *)c->dec, PARTIES, &err));
    CHECK(veil_ckks_decode(c->enc, c->values, NULL, c->slots, c->pt, &err));
}

static void run_threshold_total(void *p)
{
    party_case *c = p;
    veil_error err = {0};
    veil_party_share *s[PARTIES];
    for (size_t i = 0; i < PARTIES; i++)
        CHECK(veil_ckks_decrypt_share(&s[i], c->group, i + 1, c->ct, c->sk[i], NULL, c->prng, &err));
    CHECK(veil_ckks_decrypt_joint(c->pt, c->group, c->ct, (const veil_party_share *const *)s, PARTIES, &err));
    CHECK(veil_ckks_decode(c->enc, c->values, NULL, c->slots, c->pt, &err));
    for (size_t i = 0; i < PARTIES; i++) veil_party_share_free(s[i]);
}

static size_t stored_bytes(const veil_party_share *s)
{
    veil_error err = {0};
    veil_buffer b = {0};
    CHECK(veil_party_share_save(&b, s, 0, &err));
    const size_t n = b.len;
    veil_buffer_free(&b);
    return n;
}

static void emit(const char *op, const party_case *c, size_t limbs, int threads, bench_result r, size_t bytes)
{
    char extra[96];
    snprintf(extra, sizeof extra, ",\"parties\":%d,\"bytes\":%zu", PARTIES, bytes);
    bench_emit(op, veil_params_degree(veil_context_params(c->ctx)), limbs, threads, r, extra);
}

int bench_party(const bench_config *cfg)
{
    veil_error err = {0};
    party_case c = {0};
    veil_params *params = NULL;
    const double budget = cfg->quick ? 0.3 : 2.0;
    uint8_t seed[VEIL_SEED_BYTES] = {11};
    veil_ring_options opts = {VEIL_KERNEL_AUTO, cfg->threads};
    CHECK(veil_params_preset(&params, "ckks-n8192-d2", &err));
    CHECK(veil_context_new(&c.ctx, params, &opts, &err));
    CHECK(veil_prng_new_seeded(&c.prng, seed, 1, &err));
    CHECK(veil_party_group_new(&c.group, c.ctx, PARTIES, 0, c.prng, &err));
    veil_party_share *agg = NULL;
    veil_public_key *pk = NULL;
    for (size_t i = 0; i < PARTIES; i++) {
        CHECK(veil_secret_key_new(&c.sk[i], c.ctx, c.prng, &err));
        CHECK(veil_party_public_key_share(&c.pk_shares[i], c.group, i + 1, c.sk[i], c.prng, &err));
    }
    CHECK(veil_party_aggregate(&agg, c.group, (const veil_party_share *const *)c.pk_shares, PARTIES, &err));
    CHECK(veil_party_public_key(&pk, c.group, agg, &err));
    const size_t top = veil_context_max_level(c.ctx), n = veil_params_degree(params);
    const size_t qp = veil_params_q_count(params) + veil_params_p_count(params);
    c.slots = n / 2;
    c.values = calloc(c.slots, sizeof *c.values);
    double *want = calloc(c.slots, sizeof *want);
    if (!c.values || !want) return 1;
    srand(5);
    for (size_t i = 0; i < c.slots; i++) want[i] = 2.0 * rand() / RAND_MAX - 1.0;
    CHECK(veil_ckks_encoder_new(&c.enc, c.ctx, &err));
    CHECK(veil_ckks_plaintext_new(&c.pt, c.ctx, &err));
    CHECK(veil_ckks_ciphertext_new(&c.ct, c.ctx, &err));
    CHECK(veil_ckks_encode(c.enc, c.pt, want, NULL, c.slots, ldexp(1.0, 40), top, &err));
    CHECK(veil_ckks_encrypt_pk(c.ctx, c.ct, c.pt, pk, c.prng, &err));
    for (size_t i = 0; i < PARTIES; i++)
        CHECK(veil_ckks_decrypt_share(&c.dec[i], c.group, i + 1, c.ct, c.sk[i], NULL, c.prng, &err));

    emit("party_joint_public_key", &c, qp, cfg->threads, bench_time(run_joint_pk, &c, budget),
         PARTIES * stored_bytes(c.pk_shares[0]));
    emit("party_public_key_share", &c, qp, cfg->threads, bench_time(run_pk_share, &c, budget),
         stored_bytes(c.pk_shares[0]));
    emit("party_partial_decrypt", &c, top + 1, cfg->threads, bench_time(run_partial_decrypt, &c, budget),
         stored_bytes(c.dec[0]));
    emit("party_fusion", &c, top + 1, cfg->threads, bench_time(run_fusion, &c, budget),
         PARTIES * stored_bytes(c.dec[0]));
    emit("party_threshold_decrypt_total", &c, top + 1, cfg->threads, bench_time(run_threshold_total, &c, budget),
         PARTIES * stored_bytes(c.dec[0]));
    /* the joint decryption's error at scale 2^40, default smudging */
    run_fusion(&c);
    double worst = 0;
    for (size_t i = 0; i < c.slots; i++) worst = fmax(worst, fabs(c.values[i] - want[i]));
    printf("{\"op\":\"party_decrypt_max_error\",\"N\":%zu,\"parties\":%d,\"scale_bits\":40,\"smudging_bits\":%d,"
           "\"max_abs_error\":%.3e}\n", n, PARTIES, VEIL_PARTY_DEFAULT_SMUDGING_BITS, worst);
    for (size_t i = 0; i < PARTIES; i++) {
        free_share(&c.pk_shares[i]);
        free_share(&c.dec[i]);
        veil_secret_key_free(c.sk[i]);
    }
    free(want);
    free(c.values);
    veil_party_share_free(agg);
    veil_public_key_free(pk);
    veil_ckks_ciphertext_free(c.ct);
    veil_ckks_plaintext_free(c.pt);
    veil_ckks_encoder_free(c.enc);
    veil_party_group_free(c.group);
    veil_prng_free(c.prng);
    veil_context_free(c.ctx);
    veil_params_free(params);
    return 0;
}
