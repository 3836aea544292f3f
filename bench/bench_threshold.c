/*
 * The t-out-of-N benchmark (veil/party.h, "t-out-of-N"): 2 of 3 parties at ckks-n8192-d2 (N = 8192, as
 * `veil-bench party`), each operation as one party (or the combiner) runs it: a box key, one party's N deals,
 * one party's threshold key from the N deals addressed to it, a threshold decryption share, the fusion of
 * t shares (decoding included), and the whole threshold decryption by t parties. Extra fields: "parties",
 * "threshold", and "bytes", the stored size of what the operation produces and sends (for the fusion, the
 * shares it reads). Also the largest error at scale 2^40 with the default smudging.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench.h"
#include "veil/veil.h"

#define PARTIES 3
#define THRESHOLD 2

typedef struct threshold_case {
    veil_context *ctx;
    veil_party_group *group;
    veil_prng *prng;
    veil_secret_key *sk[PARTIES];
    veil_party_box_key *box[PARTIES];
    veil_party_deal *deals[PARTIES][PARTIES];
    veil_party_threshold_key *key[PARTIES];
    veil_party_share *dec[THRESHOLD];
    veil_ckks_encoder *enc;
    veil_ckks_plaintext *pt;
    veil_ckks_ciphertext *ct;
    double *values;
    size_t slots;
} threshold_case;

static const size_t set[THRESHOLD] = {1, 3}; /* party 2 offline */

static void run_box_key(void *p)
{
    threshold_case *c = p;
    veil_error err = {0};
    veil_party_box_key *k = NULL;
    CHECK(veil_party_box_key_new(&k, c->group, 1, c->sk[0], &err));
    veil_party_box_key_free(k);
}

static void run_deal(void *p)
{
    threshold_case *c = p;
    veil_error err = {0};
    veil_party_deal *d[PARTIES];
    CHECK(veil_party_deal_make(d, PARTIES, c->group, 1, c->sk[0], (const veil_party_box_key *const *)c->box, PARTIES,
                               c->prng, &err));
    for (size_t j = 0; j < PARTIES; j++) veil_party_deal_free(d[j]);
}

static void run_threshold_key(void *p)
{
    threshold_case *c = p;
    veil_error err = {0};
    const veil_party_deal *mine[PARTIES];
    for (size_t i = 0; i < PARTIES; i++) mine[i] = c->deals[i][0];
    veil_party_threshold_key *k = NULL;
    CHECK(veil_party_threshold_key_new(&k, c->group, 1, c->sk[0], (const veil_party_box_key *const *)c->box, PARTIES,
                                       mine, PARTIES, &err));
    veil_party_threshold_key_free(k);
}

static void run_share(void *p)
{
    threshold_case *c = p;
    veil_error err = {0};
    veil_party_share *s = NULL;
    CHECK(veil_ckks_threshold_decrypt_share(&s, c->group, c->key[2], set, THRESHOLD, c->ct, NULL, c->prng, &err));
    veil_party_share_free(s);
}

static void run_fusion(void *p)
{
    threshold_case *c = p;
    veil_error err = {0};
    CHECK(veil_ckks_decrypt_joint(c->pt, c->group, c->ct, (const veil_party_share *const *)c->dec, THRESHOLD, &err));
    CHECK(veil_ckks_decode(c->enc, c->values, NULL, c->slots, c->pt, &err));
}

static void run_total(void *p)
{
    threshold_case *c = p;
    veil_error err = {0};
    veil_party_share *s[THRESHOLD];
    for (size_t k = 0; k < THRESHOLD; k++)
        CHECK(veil_ckks_threshold_decrypt_share(&s[k], c->group, c->key[set[k] - 1], set, THRESHOLD, c->ct, NULL,
                                                c->prng, &err));
    CHECK(veil_ckks_decrypt_joint(c->pt, c->group, c->ct, (const veil_party_share *const *)s, THRESHOLD, &err));
    CHECK(veil_ckks_decode(c->enc, c->values, NULL, c->slots, c->pt, &err));
    for (size_t k = 0; k < THRESHOLD; k++) veil_party_share_free(s[k]);
}

static void emit(const char *op, const threshold_case *c, size_t limbs, int threads, bench_result r, size_t bytes)
{
    char extra[128];
    snprintf(extra, sizeof extra, ",\"parties\":%d,\"threshold\":%d,\"bytes\":%zu", PARTIES, THRESHOLD, bytes);
    bench_emit(op, veil_params_degree(veil_context_params(c->ctx)), limbs, threads, r, extra);
}

int bench_threshold(const bench_config *cfg)
{
    veil_error err = {0};
    threshold_case c = {0};
    veil_params *params = NULL;
    const double budget = cfg->quick ? 0.3 : 2.0;
    uint8_t seed[VEIL_SEED_BYTES] = {13};
    veil_ring_options opts = {VEIL_KERNEL_AUTO, cfg->threads};
    CHECK(veil_params_preset(&params, "ckks-n8192-d2", &err));
    CHECK(veil_context_new(&c.ctx, params, &opts, &err));
    CHECK(veil_prng_new_seeded(&c.prng, seed, 1, &err));
    CHECK(veil_party_group_new(&c.group, c.ctx, PARTIES, THRESHOLD, c.prng, &err));
    veil_party_share *pks[PARTIES], *agg = NULL;
    veil_public_key *pk = NULL;
    for (size_t i = 0; i < PARTIES; i++) {
        CHECK(veil_secret_key_new(&c.sk[i], c.ctx, c.prng, &err));
        CHECK(veil_party_public_key_share(&pks[i], c.group, i + 1, c.sk[i], c.prng, &err));
        CHECK(veil_party_box_key_new(&c.box[i], c.group, i + 1, c.sk[i], &err));
    }
    CHECK(veil_party_aggregate(&agg, c.group, (const veil_party_share *const *)pks, PARTIES, &err));
    CHECK(veil_party_public_key(&pk, c.group, agg, &err));
    for (size_t i = 0; i < PARTIES; i++)
        CHECK(veil_party_deal_make(c.deals[i], PARTIES, c.group, i + 1, c.sk[i], (const veil_party_box_key *const *)c.box,
                                   PARTIES, c.prng, &err));
    for (size_t j = 0; j < PARTIES; j++) {
        const veil_party_deal *mine[PARTIES];
        for (size_t i = 0; i < PARTIES; i++) mine[i] = c.deals[i][j];
        CHECK(veil_party_threshold_key_new(&c.key[j], c.group, j + 1, c.sk[j], (const veil_party_box_key *const *)c.box,
                                           PARTIES, mine, PARTIES, &err));
    }
    const size_t top = veil_context_max_level(c.ctx), n = veil_params_degree(params);
    c.slots = n / 2;
    c.values = calloc(c.slots, sizeof *c.values);
    double *want = calloc(c.slots, sizeof *want);
    if (!c.values || !want) return 1;
    srand(7);
    for (size_t i = 0; i < c.slots; i++) want[i] = 2.0 * rand() / RAND_MAX - 1.0;
    CHECK(veil_ckks_encoder_new(&c.enc, c.ctx, &err));
    CHECK(veil_ckks_plaintext_new(&c.pt, c.ctx, &err));
    CHECK(veil_ckks_ciphertext_new(&c.ct, c.ctx, &err));
    CHECK(veil_ckks_encode(c.enc, c.pt, want, NULL, c.slots, ldexp(1.0, 40), top, &err));
    CHECK(veil_ckks_encrypt_pk(c.ctx, c.ct, c.pt, pk, c.prng, &err));
    for (size_t k = 0; k < THRESHOLD; k++)
        CHECK(veil_ckks_threshold_decrypt_share(&c.dec[k], c.group, c.key[set[k] - 1], set, THRESHOLD, c.ct, NULL,
                                                c.prng, &err));
    veil_buffer b = {0};
    size_t box_bytes, deal_bytes, key_bytes, share_bytes;
    CHECK(veil_party_box_key_save(&b, c.box[0], &err));
    box_bytes = b.len;
    veil_buffer_free(&b);
    CHECK(veil_party_deal_save(&b, c.deals[0][1], &err));
    deal_bytes = b.len;
    veil_buffer_free(&b);
    CHECK(veil_party_threshold_key_save(&b, c.key[0], &err));
    key_bytes = b.len;
    veil_buffer_free(&b);
    CHECK(veil_party_share_save(&b, c.dec[0], 0, &err));
    share_bytes = b.len;
    veil_buffer_free(&b);
    const size_t q = top + 1;
    emit("threshold_box_key", &c, 0, cfg->threads, bench_time(run_box_key, &c, budget), box_bytes);
    emit("threshold_deal", &c, q, cfg->threads, bench_time(run_deal, &c, budget), PARTIES * deal_bytes);
    emit("threshold_key", &c, q, cfg->threads, bench_time(run_threshold_key, &c, budget), key_bytes);
    emit("threshold_partial_decrypt", &c, q, cfg->threads, bench_time(run_share, &c, budget), share_bytes);
    emit("threshold_fusion", &c, q, cfg->threads, bench_time(run_fusion, &c, budget), THRESHOLD * share_bytes);
    emit("threshold_decrypt_total", &c, q, cfg->threads, bench_time(run_total, &c, budget), THRESHOLD * share_bytes);
    run_fusion(&c);
    double worst = 0;
    for (size_t i = 0; i < c.slots; i++) worst = fmax(worst, fabs(c.values[i] - want[i]));
    printf("{\"op\":\"threshold_decrypt_max_error\",\"N\":%zu,\"parties\":%d,\"threshold\":%d,\"scale_bits\":40,"
           "\"smudging_bits\":%d,\"max_abs_error\":%.3e}\n", n, PARTIES, THRESHOLD, VEIL_PARTY_DEFAULT_SMUDGING_BITS,
           worst);
    for (size_t i = 0; i < PARTIES; i++) {
        veil_party_share_free(pks[i]);
        veil_secret_key_free(c.sk[i]);
        veil_party_box_key_free(c.box[i]);
        veil_party_threshold_key_free(c.key[i]);
        for (size_t j = 0; j < PARTIES; j++) veil_party_deal_free(c.deals[i][j]);
    }
    for (size_t k = 0; k < THRESHOLD; k++) veil_party_share_free(c.dec[k]);
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
