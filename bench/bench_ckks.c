/* The CKKS benchmark: keys, encoding, encryption and the evaluator at the presets that match the peers' sets. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench.h"
#include "veil/veil.h"


typedef struct ckks_case {
    veil_context *ctx;
    veil_ckks_encoder *enc;
    veil_secret_key *sk;
    veil_public_key *pk;
    veil_switch_key *rk, *gk;
    veil_prng *prng;
    veil_ckks_plaintext *pt;
    veil_ckks_ciphertext *a, *b, *prod, *out, *outs[8];
    veil_switch_key *gks[8];
    double *values, scale;
    size_t slots, top;
} ckks_case;

static void run_keygen_sk(void *p) { ckks_case *c = p; veil_secret_key *k; veil_secret_key_new(&k, c->ctx, c->prng, NULL); veil_secret_key_free(k); }
static void run_keygen_pk(void *p) { ckks_case *c = p; veil_public_key *k; veil_public_key_new(&k, c->ctx, c->sk, c->prng, NULL); veil_public_key_free(k); }
static void run_keygen_relin(void *p) { ckks_case *c = p; veil_switch_key *k; veil_relin_key_new(&k, c->ctx, c->sk, c->prng, NULL); veil_switch_key_free(k); }
static void run_keygen_galois(void *p)
{
    ckks_case *c = p;
    veil_switch_key *k;
    veil_galois_key_new(&k, c->ctx, c->sk, veil_galois_element_rotation(c->ctx, 1), c->prng, NULL);
    veil_switch_key_free(k);
}
static void run_encode(void *p) { ckks_case *c = p; veil_ckks_encode(c->enc, c->pt, c->values, NULL, c->slots, c->scale, c->top, NULL); }
static void run_decode(void *p) { ckks_case *c = p; veil_ckks_decode(c->enc, c->values, NULL, c->slots, c->pt, NULL); }
static void run_encrypt_pk(void *p) { ckks_case *c = p; veil_ckks_encrypt_pk(c->ctx, c->out, c->pt, c->pk, c->prng, NULL); }
static void run_encrypt_sk(void *p) { ckks_case *c = p; veil_ckks_encrypt_sk(c->ctx, c->out, c->pt, c->sk, c->prng, NULL); }
static void run_decrypt(void *p) { ckks_case *c = p; veil_ckks_decrypt(c->ctx, c->pt, c->a, c->sk, NULL); }
static void run_add(void *p) { ckks_case *c = p; veil_ckks_add(c->ctx, c->out, c->a, c->b, NULL); }
static void run_mul(void *p) { ckks_case *c = p; veil_ckks_mul(c->ctx, c->out, c->a, c->b, NULL); }
static void run_relin(void *p) { ckks_case *c = p; veil_ckks_relinearize(c->ctx, c->out, c->prod, c->rk, NULL); }
static void run_rescale(void *p) { ckks_case *c = p; veil_ckks_rescale(c->ctx, c->out, c->a, NULL); }
static void run_mrr(void *p) { ckks_case *c = p; veil_ckks_mul_relin_rescale(c->ctx, c->out, c->a, c->b, c->rk, NULL); }
static void run_rotate(void *p) { ckks_case *c = p; veil_ckks_rotate(c->ctx, c->out, c->a, 1, c->gk, NULL); }
static double cheb_coeffs[64];
static size_t cheb_degree;
static void run_chebyshev(void *p)
{
    ckks_case *c = p;
    veil_ckks_eval_chebyshev(c->ctx, c->out, c->a, cheb_coeffs, cheb_degree, -8, 8, c->rk, NULL);
}
static const long hoisted_steps[8] = {1, 2, 3, 4, 5, 6, 7, 8};
static void run_rotate_hoisted8(void *p)
{
    ckks_case *c = p;
    veil_ckks_rotate_hoisted(c->ctx, c->outs, c->a, hoisted_steps, 8, (const veil_switch_key *const *)c->gks, NULL);
}
static void run_rotate_separate8(void *p)
{
    ckks_case *c = p;
    for (int k = 0; k < 8; k++) veil_ckks_rotate(c->ctx, c->outs[k], c->a, hoisted_steps[k], c->gks[k], NULL);
}

static void bench_preset(const char *name, int threads, double budget)
{
    veil_error err = {0};
    veil_params *params = NULL;
    ckks_case c = {0};
    CHECK(veil_params_preset(&params, name, &err));
    veil_ring_options opts = {VEIL_KERNEL_AUTO, threads};
    CHECK(veil_context_new(&c.ctx, params, &opts, &err));
    CHECK(veil_prng_new_os(&c.prng, &err));
    CHECK(veil_ckks_encoder_new(&c.enc, c.ctx, &err));
    CHECK(veil_secret_key_new(&c.sk, c.ctx, c.prng, &err));
    CHECK(veil_public_key_new(&c.pk, c.ctx, c.sk, c.prng, &err));
    CHECK(veil_relin_key_new(&c.rk, c.ctx, c.sk, c.prng, &err));
    CHECK(veil_galois_key_new(&c.gk, c.ctx, c.sk, veil_galois_element_rotation(c.ctx, 1), c.prng, &err));
    const size_t n = veil_params_degree(params);
    c.slots = n / 2;
    c.top = veil_context_max_level(c.ctx);
    c.scale = ldexp(1.0, (int)(log2((double)veil_params_q(params, c.top)) + 0.5));
    c.values = malloc(c.slots * sizeof *c.values);
    for (size_t i = 0; i < c.slots; i++) c.values[i] = sin((double)i);
    CHECK(veil_ckks_plaintext_new(&c.pt, c.ctx, &err));
    CHECK(veil_ckks_ciphertext_new(&c.a, c.ctx, &err));
    CHECK(veil_ckks_ciphertext_new(&c.b, c.ctx, &err));
    CHECK(veil_ckks_ciphertext_new(&c.prod, c.ctx, &err));
    CHECK(veil_ckks_ciphertext_new(&c.out, c.ctx, &err));
    CHECK(veil_ckks_encode(c.enc, c.pt, c.values, NULL, c.slots, c.scale, c.top, &err));
    CHECK(veil_ckks_encrypt_pk(c.ctx, c.a, c.pt, c.pk, c.prng, &err));
    CHECK(veil_ckks_encrypt_pk(c.ctx, c.b, c.pt, c.pk, c.prng, &err));
    CHECK(veil_ckks_mul(c.ctx, c.prod, c.a, c.b, &err));
    for (int k = 0; k < 8; k++) {
        CHECK(veil_ckks_ciphertext_new(&c.outs[k], c.ctx, &err));
        CHECK(veil_galois_key_new(&c.gks[k], c.ctx, c.sk, veil_galois_element_rotation(c.ctx, hoisted_steps[k]), c.prng, &err));
    }
    char extra[96];
    snprintf(extra, sizeof extra, ",\"set\":\"%s\",\"level\":%zu", name, c.top);
    struct { const char *op; bench_fn fn; } ops[] = {
        {"keygen_secret", run_keygen_sk}, {"keygen_public", run_keygen_pk}, {"keygen_relin", run_keygen_relin},
        {"keygen_galois", run_keygen_galois}, {"encode", run_encode}, {"encrypt_pk", run_encrypt_pk},
        {"encrypt_sk", run_encrypt_sk}, {"decrypt", run_decrypt}, {"decode", run_decode}, {"add", run_add},
        {"mul", run_mul}, {"relin", run_relin}, {"rescale", run_rescale}, {"mul_relin_rescale", run_mrr},
        {"rotate", run_rotate}, {"rotate_hoisted8", run_rotate_hoisted8}, {"rotate_separate8", run_rotate_separate8}};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        if (ops[i].fn == run_decode) run_decrypt(&c); /* decode what decrypt produced */
        bench_emit(ops[i].op, n, c.top + 1, threads, bench_time(ops[i].fn, &c, budget), extra);
    }
    /* the largest Chebyshev degree (at most 63) that the set's depth allows, on [-8, 8] */
    cheb_degree = 0;
    while (cheb_degree < 63 && veil_ckks_chebyshev_depth(2 * cheb_degree + 1) <= c.top) cheb_degree = 2 * cheb_degree + 1;
    if (cheb_degree >= 3) {
        for (size_t k = 0; k <= cheb_degree; k++) cheb_coeffs[k] = 1.0 / (double)(k + 1);
        char cheb_extra[160];
        snprintf(cheb_extra, sizeof cheb_extra, "%s,\"degree\":%zu,\"depth\":%zu", extra, cheb_degree,
                 veil_ckks_chebyshev_depth(cheb_degree));
        bench_emit("chebyshev", n, c.top + 1, threads, bench_time(run_chebyshev, &c, budget), cheb_extra);
    }
    /* serialized sizes (seeded where the object allows it; zstd does not shrink uniform residues) */
    veil_ckks_ciphertext *fresh_sk = NULL;
    CHECK(veil_ckks_ciphertext_new(&fresh_sk, c.ctx, &err));
    CHECK(veil_ckks_encrypt_sk(c.ctx, fresh_sk, c.pt, c.sk, c.prng, &err));
    struct { const char *what; const void *obj; } sizes[] = {
        {"ciphertext_pk", c.a}, {"ciphertext_sk_seeded", fresh_sk}, {"public_key_seeded", c.pk},
        {"relin_key_seeded", c.rk}, {"galois_key_seeded", c.gk}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        veil_buffer b = {0};
        if (i < 2) CHECK(veil_ckks_ciphertext_save(&b, sizes[i].obj, 0, &err));
        else if (i == 2) CHECK(veil_public_key_save(&b, sizes[i].obj, 0, &err));
        else CHECK(veil_switch_key_save(&b, sizes[i].obj, 0, &err));
        printf("{\"op\":\"size_%s\",\"N\":%zu,\"set\":\"%s\",\"bytes\":%zu}\n", sizes[i].what, n, name, b.len);
        if (i == 4) /* the power-of-two rotation set SEAL generates by default: 2 * log2(N/2) keys */
            printf("{\"op\":\"size_galois_pow2_set_seeded\",\"N\":%zu,\"set\":\"%s\",\"keys\":%d,\"bytes\":%zu}\n",
                   n, name, 2 * (int)log2((double)(n / 2)), b.len * 2 * (size_t)log2((double)(n / 2)));
        veil_buffer_free(&b);
    }
    veil_ckks_ciphertext_free(fresh_sk);
    for (int k = 0; k < 8; k++) {
        veil_ckks_ciphertext_free(c.outs[k]);
        veil_switch_key_free(c.gks[k]);
    }
    free(c.values);
    veil_ckks_plaintext_free(c.pt);
    veil_ckks_ciphertext_free(c.a);
    veil_ckks_ciphertext_free(c.b);
    veil_ckks_ciphertext_free(c.prod);
    veil_ckks_ciphertext_free(c.out);
    veil_switch_key_free(c.rk);
    veil_switch_key_free(c.gk);
    veil_public_key_free(c.pk);
    veil_secret_key_free(c.sk);
    veil_ckks_encoder_free(c.enc);
    veil_prng_free(c.prng);
    veil_context_free(c.ctx);
    veil_params_free(params);
}

int bench_ckks(const bench_config *cfg)
{
    const double budget = cfg->quick ? 0.05 : 0.5;
    const char *const *names = veil_params_preset_names();
    const char *only = getenv("VEIL_BENCH_CKKS_PRESET"); /* one preset (for back-to-back runs of one set) */
    for (size_t k = 0, done = 0; names[k]; k++) {
        if (strncmp(names[k], "ckks-", 5) != 0) continue;
        if (only && strcmp(names[k], only) != 0) continue;
        if (cfg->quick && done > 0) break;
        bench_preset(names[k], cfg->threads, budget);
        done++;
    }
    return 0;
}
