/*
 * veil-bench boot: CKKS bootstrapping. One JSON line per slot count: op "bootstrap", N, slots, threads, the
 * median and least seconds per bootstrap, the precision (mean over the slots of -log2 |error|, and the
 * worst slot) of uniform real inputs in [-1, 1] encrypted at level 0 and scale 2^40, the levels left, the
 * keys' bytes on the wire (Galois keys, the relinearization key and the encapsulation keys, seeded) and the peak resident memory;
 * also the least CPU time of the process per bootstrap (cpu_s_min: on a loaded machine, nearer to an idle run).
 *
 * Default: the preset VEIL_BENCH_BOOT_PRESET (boot-n65536-balanced) at the slot counts of
 * VEIL_BENCH_BOOT_SLOTS (a comma-separated list, default "32,32768"), VEIL_BENCH_BOOT_REPS bootstraps each
 * (default 3); VEIL_BENCH_BOOT_DFT_LEVELS sets the levels of each DFT (fewer diagonals and keys per level
 * with more levels: less memory at N = 2^16 full slots, two levels less left).
 * --quick: N = 2^10 at insecure test parameters, 512 and 32 slots, seconds.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include "bench.h"
#include "veil/veil.h"

#define BOOT_MAX_KEYS 512

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The process's CPU time: on a loaded machine, closer to what an idle one would take than the wall time. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static long peak_rss(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss * 1024L;
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The insecure N = 2^10 chain of tests/test_bootstrap.c with a uniform ternary secret and encapsulation of
 * weight 32, as in the presets (for --quick). */
static veil_params *quick_params(veil_ckks_bootstrap_config *config)
{
    veil_error err = {0};
    veil_params *params = NULL;
    unsigned q_bits[19], p_bits[4] = {50, 50, 50, 50};
    size_t c = 0;
    q_bits[c++] = 50;
    for (int i = 0; i < 2; i++) q_bits[c++] = 40;
    for (int i = 0; i < 3; i++) q_bits[c++] = 45;
    for (int i = 0; i < 13; i++) q_bits[c++] = 50;
    veil_params_spec spec = {.n = 1024, .q_count = c, .q_bits = q_bits, .p_count = 4, .p_bits = p_bits, .dnum = 7,
                             .secret = VEIL_SECRET_TERNARY, .security = VEIL_SECURITY_NONE};
    CHECK(veil_params_new(&params, &spec, &err));
    *config = (veil_ckks_bootstrap_config){.encapsulation_weight = 32};
    return params;
}

/* The precision of ct against x (count values, replicated over the N/2 slots): mean bits and worst bits. */
static void measure(const veil_context *ctx, const veil_ckks_encoder *enc, const veil_secret_key *sk,
                    const veil_ckks_ciphertext *ct, const double *x, size_t count, double *mean, double *worst)
{
    veil_error err = {0};
    const size_t half = veil_params_degree(veil_context_params(ctx)) / 2;
    veil_ckks_plaintext *pt = NULL;
    double *re = malloc(half * sizeof *re), *im = malloc(half * sizeof *im);
    CHECK(veil_ckks_plaintext_new(&pt, ctx, &err));
    CHECK(veil_ckks_decrypt(ctx, pt, ct, sk, &err));
    CHECK(veil_ckks_decode(enc, re, im, half, pt, &err));
    double sum = 0, max = 0;
    for (size_t i = 0; i < half; i++) {
        const double e = hypot(re[i] - x[i % count], im[i]);
        sum += -log2(e > 1e-300 ? e : 1e-300);
        if (e > max) max = e;
    }
    *mean = sum / (double)half;
    *worst = -log2(max);
    veil_ckks_plaintext_free(pt);
    free(re);
    free(im);
}

/* The bytes of the keys on the wire. */
static size_t keys_bytes(veil_switch_key *const *keys, size_t count, const veil_switch_key *rk)
{
    veil_error err = {0};
    size_t total = 0;
    for (size_t k = 0; k <= count; k++) {
        veil_buffer buf = {0};
        CHECK(veil_switch_key_save(&buf, k < count ? keys[k] : rk, 0, &err));
        total += buf.len;
        veil_buffer_free(&buf);
    }
    return total;
}

static void bench_slots(const veil_params *params, veil_ckks_bootstrap_config config, size_t slots, int threads,
                        int reps)
{
    veil_error err = {0};
    veil_context *ctx = NULL;
    veil_ckks_encoder *enc = NULL;
    veil_secret_key *sk = NULL;
    veil_switch_key *rk = NULL, **keys = calloc(BOOT_MAX_KEYS, sizeof *keys);
    veil_prng *prng = NULL;
    veil_ckks_bootstrapper *bt = NULL;
    veil_ckks_plaintext *pt = NULL;
    veil_ckks_ciphertext *ct = NULL, *out = NULL;
    veil_ring_options opts = {0};
    opts.threads = threads;
    uint8_t seed[VEIL_SEED_BYTES] = {3};
    CHECK(veil_context_new(&ctx, params, &opts, &err));
    CHECK(veil_prng_new_seeded(&prng, seed, 1, &err));
    CHECK(veil_ckks_encoder_new(&enc, ctx, &err));
    CHECK(veil_secret_key_new(&sk, ctx, prng, &err));
    CHECK(veil_relin_key_new(&rk, ctx, sk, prng, &err));
    veil_ckks_encapsulation_key *ek = NULL;
    if (config.encapsulation_weight)
        CHECK(veil_ckks_encapsulation_key_new(&ek, ctx, sk, config.encapsulation_weight, prng, &err));
    config.slots = slots;
    double t0 = now_s();
    CHECK(veil_ckks_bootstrapper_new(&bt, enc, &config, &err));
    const double setup_s = now_s() - t0;
    veil_ckks_bootstrap_info info;
    veil_ckks_bootstrapper_info(bt, &info);
    size_t count = 0;
    t0 = now_s();
    CHECK(veil_ckks_bootstrap_keys_new(ctx, bt, sk, prng, keys, BOOT_MAX_KEYS, &count, &err));
    const double keygen_s = now_s() - t0;
    size_t key_bytes = keys_bytes(keys, count, rk);
    if (ek) { /* the encapsulation keys count with the bootstrapping keys */
        veil_buffer buf = {0};
        CHECK(veil_ckks_encapsulation_key_save(&buf, ek, 0, &err));
        key_bytes += buf.len;
        veil_buffer_free(&buf);
    }
    const size_t n = veil_params_degree(params);
    double *x = malloc(slots * sizeof *x), *times = calloc((size_t)reps, sizeof *times), cpu_min = 1e300;
    srand(11);
    for (size_t i = 0; i < slots; i++) x[i] = 2.0 * rand() / RAND_MAX - 1.0;
    CHECK(veil_ckks_plaintext_new(&pt, ctx, &err));
    CHECK(veil_ckks_encode_sparse(enc, pt, x, NULL, slots, ldexp(1.0, 40), 0, &err));
    CHECK(veil_ckks_ciphertext_new(&ct, ctx, &err));
    CHECK(veil_ckks_ciphertext_new(&out, ctx, &err));
    CHECK(veil_ckks_encrypt_sk(ctx, ct, pt, sk, prng, &err));
    double mean_sum = 0, worst = 1e9;
    for (int r = 0; r < reps; r++) {
        t0 = now_s();
        const double c0 = cpu_s();
        CHECK(veil_ckks_bootstrap_encapsulated(ctx, bt, out, ct, rk, (const veil_switch_key *const *)keys, count, ek,
                                               &err));
        times[r] = now_s() - t0;
        if (cpu_s() - c0 < cpu_min) cpu_min = cpu_s() - c0;
        double m, w;
        measure(ctx, enc, sk, out, x, slots, &m, &w);
        mean_sum += m;
        if (w < worst) worst = w;
    }
    qsort(times, (size_t)reps, sizeof *times, cmp_double);
    printf("{\"op\":\"bootstrap\",\"N\":%zu,\"slots\":%zu,\"threads\":%d,\"s_median\":%.3f,\"s_min\":%.3f,"
           "\"precision_bits_mean\":%.2f,\"precision_bits_min\":%.2f,\"levels_left\":%zu,\"key_bytes\":%zu,"
           "\"peak_rss_bytes\":%ld,\"reps\":%d,\"galois_keys\":%zu,\"degree\":%zu,\"k_bound\":%.2f,"
           "\"log_qp\":%u,\"dnum\":%zu,\"setup_s\":%.2f,\"keygen_s\":%.2f,\"cpu_s_min\":%.3f,"
           "\"encapsulation_weight\":%zu,\"failure_log2\":%.0f,\"message_shift\":%zu,\"iterations\":%zu,"
           "\"iteration_shift\":%zu}\n",
           n, slots, threads, times[reps / 2], times[0], mean_sum / reps, worst, info.levels_left, key_bytes,
           peak_rss(), reps, count, info.degree, info.k_bound, veil_params_log_qp(params), veil_params_dnum(params),
           setup_s, keygen_s, cpu_min, config.encapsulation_weight, info.failure_log2, config.message_shift,
           config.iterations ? config.iterations : 1, config.iterations > 1 ? config.iteration_shift : 0);
    fflush(stdout);
    for (size_t k = 0; k < count; k++) veil_switch_key_free(keys[k]);
    free(keys);
    free(x);
    free(times);
    veil_ckks_ciphertext_free(ct);
    veil_ckks_ciphertext_free(out);
    veil_ckks_plaintext_free(pt);
    veil_ckks_bootstrapper_free(bt);
    veil_ckks_encapsulation_key_free(ek);
    veil_switch_key_free(rk);
    veil_secret_key_free(sk);
    veil_ckks_encoder_free(enc);
    veil_prng_free(prng);
    veil_context_free(ctx);
}

/*
 * Overrides of the configuration: VEIL_BENCH_BOOT_SHIFT (message_shift k), VEIL_BENCH_BOOT_ITERATIONS (2:
 * meta-BTS) and VEIL_BENCH_BOOT_ITERATION_SHIFT (its e).
 */
static void env_config(veil_ckks_bootstrap_config *config)
{
    const char *v = getenv("VEIL_BENCH_BOOT_SHIFT");
    if (v && *v) config->message_shift = (size_t)atoi(v);
    v = getenv("VEIL_BENCH_BOOT_ITERATIONS");
    if (v && *v) config->iterations = (size_t)atoi(v);
    v = getenv("VEIL_BENCH_BOOT_ITERATION_SHIFT");
    if (v && *v) config->iteration_shift = (size_t)atoi(v);
}

int bench_boot(const bench_config *cfg)
{
    veil_error err = {0};
    veil_params *params = NULL;
    veil_ckks_bootstrap_config config;
    const char *reps_env = getenv("VEIL_BENCH_BOOT_REPS");
    const int reps = reps_env && atoi(reps_env) > 0 ? atoi(reps_env) : (cfg->quick ? 5 : 3);
    if (cfg->quick) {
        params = quick_params(&config);
        env_config(&config);
        bench_slots(params, config, 512, cfg->threads, reps);
        bench_slots(params, config, 32, cfg->threads, reps);
        veil_params_free(params);
        return 0;
    }
    const char *preset = getenv("VEIL_BENCH_BOOT_PRESET");
    CHECK(veil_ckks_bootstrap_preset(&params, &config, preset ? preset : "boot-n65536-balanced", &err));
    const char *levels = getenv("VEIL_BENCH_BOOT_DFT_LEVELS"); /* CoeffToSlot's and SlotToCoeff's, overriding the preset's */
    if (levels && atoi(levels) > 0) config.cts_levels = config.stc_levels = (size_t)atoi(levels);
    env_config(&config);
    const char *list = getenv("VEIL_BENCH_BOOT_SLOTS");
    char buf[256];
    if (list) snprintf(buf, sizeof buf, "%s", list);
    else if (config.slots) snprintf(buf, sizeof buf, "%zu", config.slots); /* a preset for one slot count */
    else snprintf(buf, sizeof buf, "32,32768");
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        bench_slots(params, config, (size_t)strtoul(tok, NULL, 10), cfg->threads, reps);
    veil_params_free(params);
    return 0;
}
