/* The ring benchmark: NTT, pointwise products, base conversion, rescale and sampling. */
#include <stdio.h>
#include <stdlib.h>
#include "bench.h"
#include "veil/veil.h"
#include "ring/ring_internal.h"


typedef struct ring_case {
    veil_ring *ring;
    veil_poly *a, *b, *c, *small_out;
    veil_base_conv *conv;
    veil_prng *prng;
    uint64_t *limb;
    int8_t *small;
    size_t n, limbs, special;
    int64_t *wide; /* the discrete Gaussian's values (differential privacy, docs/privacy.md) */
} ring_case;

static void run_ntt_fwd(void *p) { ring_case *c = p; veil_ntt_forward(c->ring, 0, c->limb, NULL); }
static void run_ntt_inv(void *p) { ring_case *c = p; veil_ntt_inverse(c->ring, 0, c->limb, NULL); }
static void run_ntt_fwd_inv(void *p)
{
    ring_case *c = p;
    veil_ntt_forward(c->ring, 0, c->limb, NULL);
    veil_ntt_inverse(c->ring, 0, c->limb, NULL);
}
static void run_mul(void *p) { ring_case *c = p; veil_poly_mul(c->c, c->a, c->b, NULL); }
static void run_mul_acc(void *p) { ring_case *c = p; veil_poly_mul_acc(c->c, c->a, c->b, NULL); }
static void run_base_conv(void *p) { ring_case *c = p; veil_base_conv_apply(c->conv, c->small_out, c->a, NULL); }
static void run_rescale(void *p) { ring_case *c = p; veil_poly_rescale(c->small_out, c->b, NULL); }
static void run_uniform(void *p) { ring_case *c = p; veil_sample_uniform(c->a, c->prng, NULL); }
static void run_ternary(void *p) { ring_case *c = p; veil_sample_ternary(c->small, c->n, c->prng, NULL); }
static void run_cbd(void *p) { ring_case *c = p; veil_sample_cbd(c->small, c->n, c->prng, NULL); }
/* N_Z(0, 2^40): sigma 2^20, the size output noise takes on its grid */
static void run_dgauss(void *p)
{
    ring_case *c = p;
    veil_sample_discrete_gaussian(c->wide, c->n, (uint64_t)1 << 40, 1, c->prng, NULL);
}

/* The level the ring's 50-bit NTTs and products run: "ifma" (AVX-512 IFMA), "avx2" or "scalar". */
static const char *kernel_name(const veil_ring *r)
{
    return r->ifma ? "ifma" : veil_ring_kernel(r) == VEIL_KERNEL_AVX2 ? "avx2" : "scalar";
}

/* One-limb NTT figures; us_min_per_60bit scales the time to 60 bits of modulus (the peers' limb). */
static void bench_ntt(size_t n, unsigned bits, veil_kernel kernel, int threads, double budget)
{
    veil_error err = {0};
    uint64_t q;
    CHECK(veil_prime_chain(&q, &bits, 1, n, NULL, 0, &err));
    veil_ring_options opts = {kernel, threads};
    ring_case c = {0};
    c.n = n;
    CHECK(veil_ring_new(&c.ring, n, &q, 1, &opts, &err));
    c.limb = veil_alloc(n, sizeof(uint64_t));
    for (size_t j = 0; j < n; j++) c.limb[j] = (j * 0x9E3779B97F4A7C15ULL) % q;
    struct { const char *op; bench_fn fn; } ops[] = {
        {"ntt_fwd", run_ntt_fwd}, {"ntt_inv", run_ntt_inv}, {"ntt_fwd_inv", run_ntt_fwd_inv}};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        bench_result r = bench_time(ops[i].fn, &c, budget);
        char extra[160];
        snprintf(extra, sizeof extra, ",\"kernel\":\"%s\",\"prime_bits\":%u,\"us_min_per_60bit\":%.2f",
                 kernel_name(c.ring), bits, r.us_min * 60.0 / bits);
        bench_emit(ops[i].op, n, 1, 1, r, extra);
    }
    veil_free(c.limb);
    veil_ring_free(c.ring);
}

/* Multi-limb operations over `limbs` 50-bit primes plus `special` more for the conversion target. */
static void bench_rns(size_t n, size_t limbs, size_t special, int threads, double budget)
{
    veil_error err = {0};
    size_t total = limbs + special;
    unsigned bits[VEIL_RING_MAX_PRIMES];
    uint64_t primes[VEIL_RING_MAX_PRIMES];
    for (size_t i = 0; i < total; i++) bits[i] = 50;
    CHECK(veil_prime_chain(primes, bits, total, n, NULL, 0, &err));
    veil_ring_options opts = {VEIL_KERNEL_AUTO, threads};
    ring_case c = {0};
    c.n = n;
    c.limbs = limbs;
    c.special = special;
    CHECK(veil_ring_new(&c.ring, n, primes, total, &opts, &err));
    CHECK(veil_prng_new_os(&c.prng, &err));
    CHECK(veil_poly_new_range(&c.a, c.ring, 0, limbs, VEIL_FORM_EVAL, &err));
    CHECK(veil_poly_new_range(&c.b, c.ring, 0, limbs, VEIL_FORM_EVAL, &err));
    CHECK(veil_poly_new_range(&c.c, c.ring, 0, limbs, VEIL_FORM_EVAL, &err));
    CHECK(veil_sample_uniform(c.a, c.prng, &err));
    CHECK(veil_sample_uniform(c.b, c.prng, &err));
    c.small = veil_alloc(n, 1);
    char extra[96];
    snprintf(extra, sizeof extra, ",\"kernel\":\"%s\",\"prime_bits\":50", kernel_name(c.ring));

    bench_emit("mul", n, limbs, threads, bench_time(run_mul, &c, budget), extra);
    bench_emit("mul_acc", n, limbs, threads, bench_time(run_mul_acc, &c, budget), extra);

    /* rescale of an evaluation-form polynomial: the CKKS case (one inverse and limbs-1 forward NTTs) */
    CHECK(veil_poly_new_range(&c.small_out, c.ring, 0, limbs - 1, VEIL_FORM_EVAL, &err));
    bench_emit("rescale", n, limbs, threads, bench_time(run_rescale, &c, budget), extra);
    veil_poly_free(c.small_out);

    /* fast base conversion from the `limbs` primes to the `special` ones (coefficient form) */
    size_t from[VEIL_RING_MAX_PRIMES], to[VEIL_RING_MAX_PRIMES];
    for (size_t i = 0; i < limbs; i++) from[i] = i;
    for (size_t i = 0; i < special; i++) to[i] = limbs + i;
    CHECK(veil_base_conv_new(&c.conv, c.ring, from, limbs, to, special, &err));
    CHECK(veil_poly_to_coeff(c.a, &err));
    CHECK(veil_poly_new(&c.small_out, c.ring, to, special, VEIL_FORM_COEFF, &err));
    char conv_extra[160];
    snprintf(conv_extra, sizeof conv_extra, "%s,\"from\":%zu,\"to\":%zu", extra, limbs, special);
    bench_emit("base_conv", n, limbs, threads, bench_time(run_base_conv, &c, budget), conv_extra);

    bench_emit("sample_uniform", n, limbs, 1, bench_time(run_uniform, &c, budget), extra);
    bench_emit("sample_ternary", n, 1, 1, bench_time(run_ternary, &c, budget), NULL);
    bench_emit("sample_cbd", n, 1, 1, bench_time(run_cbd, &c, budget), NULL);
    if (n == 4096) { /* about 30 us a value: one size is enough */
        c.wide = malloc(n * sizeof *c.wide);
        if (c.wide) bench_emit("sample_dgauss", n, 1, 1, bench_time(run_dgauss, &c, budget), ",\"sigma\":1048576");
        free(c.wide);
    }

    veil_free(c.small);
    veil_poly_free(c.small_out);
    veil_base_conv_free(c.conv);
    veil_poly_free(c.a);
    veil_poly_free(c.b);
    veil_poly_free(c.c);
    veil_prng_free(c.prng);
    veil_ring_free(c.ring);
}

int bench_ring(const bench_config *cfg)
{
    const double budget = cfg->quick ? 0.02 : 0.4;
    const unsigned max_log_n = cfg->quick ? 14 : 16;
    for (unsigned log_n = 12; log_n <= max_log_n; log_n++) {
        size_t n = (size_t)1 << log_n;
        bench_ntt(n, 50, VEIL_KERNEL_AUTO, 1, budget);
        bench_ntt(n, 60, VEIL_KERNEL_SCALAR, 1, budget);
    }
    for (unsigned log_n = 12; log_n <= max_log_n; log_n++) {
        size_t n = (size_t)1 << log_n;
        /* N/2048 primes of 50 bits: about the modulus the 128-bit security standard allows here */
        size_t limbs = n / 2048;
        bench_rns(n, limbs, limbs >= 8 ? limbs / 4 : 1, cfg->threads, budget);
    }
    return 0;
}
