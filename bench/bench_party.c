/*
 * The multi-party benchmark (veil/party.h): 3 parties at ckks-n8192-d2 (N = 8192, the moduli of OpenFHE's
 * threshold harness in /work/shared/peers), each operation as one party (or the combiner) runs it. Extra
 * fields: "parties", and "bytes", the stored size of what the operation produces and sends (a share, or for
 * the fusion the shares it reads). Also the joint decryption's largest error at scale 2^40 with the default
 * smudging (2^20), against OpenFHE's 5.3e-4. Then federated aggregation among 10 parties (bench_federated).
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

/*
 * Federated aggregation (the FLASHE comparison): 10 parties each encrypt a 100,000-parameter update
 * under the joint public key (25 ciphertexts of 4096 slots at level 0, scale 2^40), the server sums them, and
 * the parties decrypt the sum jointly.
 */
#define FED_PARTIES 10
#define FED_PARAMS 100000

typedef struct fed_case {
    veil_context *ctx;
    veil_party_group *group;
    veil_prng *prng;
    veil_secret_key *sk[FED_PARTIES];
    veil_public_key *pk;
    veil_ckks_encoder *enc;
    veil_ckks_plaintext *pt;
    veil_ckks_ciphertext **cts[FED_PARTIES], **sum;
    veil_party_share **shares; /* [ct * FED_PARTIES + party] */
    double *update, *out;
    size_t slots, count;
} fed_case;

static void fed_encrypt(void *p) /* party 1 encrypts its update */
{
    fed_case *c = p;
    veil_error err = {0};
    for (size_t k = 0; k < c->count; k++) {
        const size_t first = k * c->slots, n = FED_PARAMS - first < c->slots ? FED_PARAMS - first : c->slots;
        CHECK(veil_ckks_encode(c->enc, c->pt, c->update + first, NULL, n, ldexp(1.0, 40), 0, &err));
        CHECK(veil_ckks_encrypt_pk(c->ctx, c->cts[0][k], c->pt, c->pk, c->prng, &err));
    }
}

static void fed_sum(void *p) /* the server */
{
    fed_case *c = p;
    veil_error err = {0};
    for (size_t k = 0; k < c->count; k++) {
        CHECK(veil_ckks_add(c->ctx, c->sum[k], c->cts[0][k], c->cts[1][k], &err));
        for (size_t i = 2; i < FED_PARTIES; i++) CHECK(veil_ckks_add(c->ctx, c->sum[k], c->sum[k], c->cts[i][k], &err));
    }
}

static void fed_share(void *p) /* party 1's decryption shares of the sum */
{
    fed_case *c = p;
    veil_error err = {0};
    for (size_t k = 0; k < c->count; k++) {
        veil_party_share *s = NULL;
        CHECK(veil_ckks_decrypt_share(&s, c->group, 1, c->sum[k], c->sk[0], NULL, c->prng, &err));
        veil_party_share_free(s);
    }
}

static void fed_fusion(void *p) /* the 10 parties' shares into the summed update */
{
    fed_case *c = p;
    veil_error err = {0};
    for (size_t k = 0; k < c->count; k++) {
        const size_t first = k * c->slots, n = FED_PARAMS - first < c->slots ? FED_PARAMS - first : c->slots;
        CHECK(veil_ckks_decrypt_joint(c->pt, c->group, c->sum[k],
                                      (const veil_party_share *const *)c->shares + k * FED_PARTIES, FED_PARTIES, &err));
        CHECK(veil_ckks_decode(c->enc, c->out + first, NULL, n, c->pt, &err));
    }
}

static void bench_federated(const bench_config *cfg, veil_context *ctx, double budget)
{
    veil_error err = {0};
    fed_case c = {0};
    uint8_t seed[VEIL_SEED_BYTES] = {12};
    c.ctx = ctx;
    c.slots = veil_params_degree(veil_context_params(ctx)) / 2;
    c.count = (FED_PARAMS + c.slots - 1) / c.slots;
    CHECK(veil_prng_new_seeded(&c.prng, seed, 2, &err));
    CHECK(veil_party_group_new(&c.group, ctx, FED_PARTIES, 0, c.prng, &err));
    veil_party_share *pks[FED_PARTIES], *agg = NULL;
    for (size_t i = 0; i < FED_PARTIES; i++) {
        CHECK(veil_secret_key_new(&c.sk[i], ctx, c.prng, &err));
        CHECK(veil_party_public_key_share(&pks[i], c.group, i + 1, c.sk[i], c.prng, &err));
    }
    CHECK(veil_party_aggregate(&agg, c.group, (const veil_party_share *const *)pks, FED_PARTIES, &err));
    CHECK(veil_party_public_key(&c.pk, c.group, agg, &err));
    CHECK(veil_ckks_encoder_new(&c.enc, ctx, &err));
    CHECK(veil_ckks_plaintext_new(&c.pt, ctx, &err));
    c.update = calloc(FED_PARAMS, sizeof *c.update);
    c.out = calloc(c.count * c.slots, sizeof *c.out);
    double *want = calloc(FED_PARAMS, sizeof *want);
    c.sum = calloc(c.count, sizeof *c.sum);
    c.shares = calloc(c.count * FED_PARTIES, sizeof *c.shares);
    if (!c.update || !c.out || !want || !c.sum || !c.shares) exit(1);
    srand(7);
    size_t ct_bytes = 0, share_bytes = 0;
    /* every party's update, encrypted (party 1's last, so that the timed encryption rewrites the same) */
    for (size_t i = FED_PARTIES; i-- > 0;) {
        c.cts[i] = calloc(c.count, sizeof *c.cts[i]);
        if (!c.cts[i]) exit(1);
        for (size_t k = 0; k < c.count; k++) CHECK(veil_ckks_ciphertext_new(&c.cts[i][k], ctx, &err));
        for (size_t j = 0; j < FED_PARAMS; j++) {
            c.update[j] = 2.0 * rand() / RAND_MAX - 1.0;
            want[j] += c.update[j];
        }
        veil_ckks_ciphertext **keep = c.cts[0];
        c.cts[0] = c.cts[i];
        fed_encrypt(&c);
        c.cts[0] = keep;
    }
    for (size_t k = 0; k < c.count; k++) {
        veil_buffer b = {0};
        CHECK(veil_ckks_ciphertext_save(&b, c.cts[0][k], 0, &err));
        ct_bytes += b.len;
        veil_buffer_free(&b);
        CHECK(veil_ckks_ciphertext_new(&c.sum[k], ctx, &err));
    }
    char extra[160];
    const size_t n = veil_params_degree(veil_context_params(ctx));
    snprintf(extra, sizeof extra, ",\"parties\":%d,\"parameters\":%d,\"ciphertexts\":%zu,\"bytes\":%zu", FED_PARTIES,
             FED_PARAMS, c.count, ct_bytes);
    bench_emit("fed_encrypt_update", n, 1, cfg->threads, bench_time(fed_encrypt, &c, budget), extra);
    snprintf(extra, sizeof extra, ",\"parties\":%d,\"parameters\":%d,\"ciphertexts\":%zu,\"bytes\":%zu", FED_PARTIES,
             FED_PARAMS, c.count, FED_PARTIES * ct_bytes);
    bench_emit("fed_server_sum", n, 1, cfg->threads, bench_time(fed_sum, &c, budget), extra);
    /* the shares of the final sum (encryption and sum are done) */
    for (size_t k = 0; k < c.count; k++)
        for (size_t i = 0; i < FED_PARTIES; i++) {
            CHECK(veil_ckks_decrypt_share(&c.shares[k * FED_PARTIES + i], c.group, i + 1, c.sum[k], c.sk[i], NULL,
                                          c.prng, &err));
            if (i == 0) share_bytes += stored_bytes(c.shares[k * FED_PARTIES]);
        }
    snprintf(extra, sizeof extra, ",\"parties\":%d,\"parameters\":%d,\"ciphertexts\":%zu,\"bytes\":%zu", FED_PARTIES,
             FED_PARAMS, c.count, share_bytes);
    bench_emit("fed_partial_decrypt_update", n, 1, cfg->threads, bench_time(fed_share, &c, budget), extra);
    snprintf(extra, sizeof extra, ",\"parties\":%d,\"parameters\":%d,\"ciphertexts\":%zu,\"bytes\":%zu", FED_PARTIES,
             FED_PARAMS, c.count, FED_PARTIES * share_bytes);
    bench_emit("fed_fusion_update", n, 1, cfg->threads, bench_time(fed_fusion, &c, budget), extra);
    fed_fusion(&c);
    double worst = 0;
    for (size_t j = 0; j < FED_PARAMS; j++) worst = fmax(worst, fabs(c.out[j] - want[j]));
    printf("{\"op\":\"fed_sum_max_error\",\"N\":%zu,\"parties\":%d,\"parameters\":%d,\"max_abs_error\":%.3e}\n", n,
           FED_PARTIES, FED_PARAMS, worst);
    for (size_t i = 0; i < FED_PARTIES; i++) {
        for (size_t k = 0; k < c.count; k++) veil_ckks_ciphertext_free(c.cts[i][k]);
        free(c.cts[i]);
        veil_secret_key_free(c.sk[i]);
        veil_party_share_free(pks[i]);
    }
    for (size_t k = 0; k < c.count; k++) {
        veil_ckks_ciphertext_free(c.sum[k]);
        for (size_t i = 0; i < FED_PARTIES; i++) veil_party_share_free(c.shares[k * FED_PARTIES + i]);
    }
    free(c.sum);
    free(c.shares);
    free(c.update);
    free(c.out);
    free(want);
    veil_party_share_free(agg);
    veil_public_key_free(c.pk);
    veil_ckks_plaintext_free(c.pt);
    veil_ckks_encoder_free(c.enc);
    veil_party_group_free(c.group);
    veil_prng_free(c.prng);
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
    bench_federated(cfg, c.ctx, budget);
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
