/* The BGV benchmark: keys, encoding, encryption and the evaluator at the bgv-* presets (t = 65537). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench.h"
#include "veil/veil.h"

typedef struct bgv_case {
    veil_context *ctx;
    veil_bgv_encoder *enc;
    veil_secret_key *sk;
    veil_public_key *pk;
    veil_switch_key *rk, *gk;
    veil_prng *prng;
    veil_bgv_plaintext *pt;
    veil_bgv_ciphertext *a, *b, *prod, *out;
    uint64_t *values;
    size_t n;
} bgv_case;

static void run_keygen_relin(void *p) { bgv_case *c = p; veil_switch_key *k; veil_relin_key_new(&k, c->ctx, c->sk, c->prng, NULL); veil_switch_key_free(k); }
static void run_encode(void *p) { bgv_case *c = p; veil_bgv_encode(c->enc, c->pt, c->values, c->n, NULL); }
static void run_decode(void *p) { bgv_case *c = p; veil_bgv_decode(c->enc, c->values, c->n, c->pt, NULL); }
static void run_encrypt_pk(void *p) { bgv_case *c = p; veil_bgv_encrypt_pk(c->ctx, c->out, c->pt, c->pk, c->prng, NULL); }
static void run_encrypt_sk(void *p) { bgv_case *c = p; veil_bgv_encrypt_sk(c->ctx, c->out, c->pt, c->sk, c->prng, NULL); }
static void run_decrypt(void *p) { bgv_case *c = p; veil_bgv_decrypt(c->ctx, c->pt, c->a, c->sk, NULL); }
static void run_decrypt_decode(void *p) { run_decrypt(p); run_decode(p); }
static void run_add(void *p) { bgv_case *c = p; veil_bgv_add(c->ctx, c->out, c->a, c->b, NULL); }
static void run_mul(void *p) { bgv_case *c = p; veil_bgv_mul(c->ctx, c->out, c->a, c->b, NULL); }
static void run_relin(void *p) { bgv_case *c = p; veil_bgv_relinearize(c->ctx, c->out, c->prod, c->rk, NULL); }
static void run_mul_relin(void *p) { bgv_case *c = p; veil_bgv_mul_relin(c->ctx, c->out, c->a, c->b, c->rk, NULL); }
static void run_mod_switch(void *p) { bgv_case *c = p; veil_bgv_mod_switch(c->ctx, c->out, c->a, NULL); }
static void run_rotate(void *p) { bgv_case *c = p; veil_bgv_rotate_rows(c->ctx, c->out, c->a, 1, c->gk, NULL); }

static void bench_preset(const char *name, int threads, double budget)
{
    veil_error err = {0};
    veil_params *params = NULL;
    bgv_case c = {0};
    CHECK(veil_params_preset(&params, name, &err));
    veil_ring_options opts = {VEIL_KERNEL_AUTO, threads};
    CHECK(veil_context_new(&c.ctx, params, &opts, &err));
    CHECK(veil_prng_new_os(&c.prng, &err));
    CHECK(veil_bgv_encoder_new(&c.enc, c.ctx, &err));
    CHECK(veil_secret_key_new(&c.sk, c.ctx, c.prng, &err));
    CHECK(veil_public_key_new(&c.pk, c.ctx, c.sk, c.prng, &err));
    CHECK(veil_relin_key_new(&c.rk, c.ctx, c.sk, c.prng, &err));
    CHECK(veil_galois_key_new(&c.gk, c.ctx, c.sk, veil_galois_element_rotation(c.ctx, 1), c.prng, &err));
    c.n = veil_params_degree(params);
    const size_t top = veil_context_max_level(c.ctx);
    c.values = malloc(c.n * sizeof *c.values);
    for (size_t i = 0; i < c.n; i++) c.values[i] = (i * 7919u) % veil_params_plain_modulus(params);
    CHECK(veil_bgv_plaintext_new(&c.pt, c.ctx, &err));
    CHECK(veil_bgv_ciphertext_new(&c.a, c.ctx, &err));
    CHECK(veil_bgv_ciphertext_new(&c.b, c.ctx, &err));
    CHECK(veil_bgv_ciphertext_new(&c.prod, c.ctx, &err));
    CHECK(veil_bgv_ciphertext_new(&c.out, c.ctx, &err));
    CHECK(veil_bgv_encode(c.enc, c.pt, c.values, c.n, &err));
    CHECK(veil_bgv_encrypt_pk(c.ctx, c.a, c.pt, c.pk, c.prng, &err));
    CHECK(veil_bgv_encrypt_pk(c.ctx, c.b, c.pt, c.pk, c.prng, &err));
    CHECK(veil_bgv_mul(c.ctx, c.prod, c.a, c.b, &err));
    char extra[128];
    snprintf(extra, sizeof extra, ",\"set\":\"%s\",\"t\":%llu,\"log_q\":%u", name,
             (unsigned long long)veil_params_plain_modulus(params),
             veil_params_log_qp(params) - (unsigned)(64 - __builtin_clzll(veil_params_p(params, 0))));
    struct { const char *op; bench_fn fn; } ops[] = {
        {"keygen_relin", run_keygen_relin}, {"encode", run_encode}, {"encrypt_pk", run_encrypt_pk},
        {"encrypt_sk", run_encrypt_sk}, {"decrypt", run_decrypt}, {"decode", run_decode},
        {"decrypt_decode", run_decrypt_decode}, {"add", run_add}, {"mul", run_mul}, {"relin", run_relin},
        {"mul_relin", run_mul_relin}, {"mod_switch", run_mod_switch}, {"rotate", run_rotate}};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        if (ops[i].fn == run_decode) run_decrypt(&c); /* decode what decrypt produced */
        bench_emit(ops[i].op, c.n, top + 1, threads, bench_time(ops[i].fn, &c, budget), extra);
    }
    veil_buffer b = {0};
    CHECK(veil_bgv_ciphertext_save(&b, c.a, 0, &err));
    printf("{\"op\":\"size_ciphertext_pk\",\"N\":%zu,\"set\":\"%s\",\"bytes\":%zu}\n", c.n, name, b.len);
    veil_buffer_free(&b);
    CHECK(veil_switch_key_save(&b, c.rk, 0, &err));
    printf("{\"op\":\"size_relin_key_seeded\",\"N\":%zu,\"set\":\"%s\",\"bytes\":%zu}\n", c.n, name, b.len);
    veil_buffer_free(&b);
    free(c.values);
    veil_bgv_plaintext_free(c.pt);
    veil_bgv_ciphertext_free(c.a);
    veil_bgv_ciphertext_free(c.b);
    veil_bgv_ciphertext_free(c.prod);
    veil_bgv_ciphertext_free(c.out);
    veil_switch_key_free(c.rk);
    veil_switch_key_free(c.gk);
    veil_public_key_free(c.pk);
    veil_secret_key_free(c.sk);
    veil_bgv_encoder_free(c.enc);
    veil_prng_free(c.prng);
    veil_context_free(c.ctx);
    veil_params_free(params);
}

int bench_bgv(const bench_config *cfg)
{
    const double budget = cfg->quick ? 0.05 : 0.5;
    bench_preset("bgv-n8192", cfg->threads, budget);
    if (!cfg->quick) bench_preset("bgv-n16384", cfg->threads, budget);
    return 0;
}
