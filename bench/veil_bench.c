/*
 * veil-bench: Veil's benchmarks. One JSON object per line on standard output:
 *   {"op":..., "N":..., "limbs":..., "threads":..., "us_median":..., "us_min":..., "reps":..., ...}
 * Single-thread figures: VEIL_THREADS=1 taskset -c 1 veil-bench ring
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "bench.h"
#include "omp_wait.h"
#include "veil/veil.h"

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

bench_result bench_time(bench_fn fn, void *arg, double budget_s)
{
    enum { MAX_REPS = 2000 };
    static double samples[MAX_REPS];
    fn(arg); /* warm-up: caches, page faults, lazily built tables */
    double start = now_us();
    int reps = 0;
    while (reps < MAX_REPS && (reps < 5 || now_us() - start < budget_s * 1e6)) {
        double t0 = now_us();
        fn(arg);
        samples[reps++] = now_us() - t0;
    }
    qsort(samples, (size_t)reps, sizeof samples[0], cmp_double);
    bench_result r = {samples[reps / 2], samples[0], reps};
    return r;
}

void bench_emit(const char *op, size_t n, size_t limbs, int threads, bench_result r, const char *extra)
{
    printf("{\"op\":\"%s\",\"N\":%zu,\"limbs\":%zu,\"threads\":%d,\"us_median\":%.2f,\"us_min\":%.2f,\"reps\":%d%s}\n",
           op, n, limbs, threads, r.us_median, r.us_min, r.reps, extra ? extra : "");
    fflush(stdout);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: veil-bench SUITE [--quick] [--threads T]\n"
            "suites:\n"
            "  ring    NTT, pointwise products, base conversion, rescale and sampling, N = 2^12..2^16\n"
            "  ckks    CKKS keys, encoding, encryption and evaluator at the presets (--quick: N = 8192 only)\n"
            "          (VEIL_BENCH_CKKS_PRESET=ckks-n16384-d7: that preset only)\n"
            "  precision  CKKS errors at N = 8192 over 10 key seeds, measured as the SEAL harness does\n"
            "  bgv     BGV keys, encoding, encryption and evaluator at bgv-n8192 and bgv-n16384, t = 65537\n"
            "  ml      logistic regression, 30 features: 8192 samples (throughput) and one (latency), server time\n"
            "  serve   the same model behind veil serve on loopback: p50/p99, predictions/s, overhead over direct\n"
            "          (VEIL_BENCH_SERVE_ONLY=cluster: through running servers and balancers, bench/scale_overhead.sh)\n"
            "  cnn     examples/fashion's network on Fashion-MNIST (VEIL_BENCH_CNN_DIR): images/s and latency\n"
            "  train   encrypted logistic regression, 1579 x 18 (iDASH shape), 7 NAG iterations: whole training time\n"
            "          (VEIL_BENCH_TRAIN_ITERATIONS=30: bootstrapped past the leveled limit)\n"
            "  estimates  the plan's server-time estimate against the measured time, four networks, both packings\n"
            "  party   multi-party keys, 3 parties at N = 8192: joint public key, partial decryption, fusion, error\n"
            "  boot    CKKS bootstrapping at boot-n65536-balanced, 32 and 32768 slots (--quick: N = 2^10, insecure)\n"
            "  threshold  t-out-of-N, 2 of 3 parties at N = 8192: box key, dealing, threshold key, decryption, error\n"
            "options:\n"
            "  --quick       fewer sizes and repetitions (seconds instead of minutes)\n"
            "  --threads T   threads per operation (default: VEIL_THREADS, else all cores)\n"
            "Output: one JSON object per line. For single-thread figures pin the process:\n"
            "  VEIL_THREADS=1 taskset -c 1 veil-bench ring\n");
}

int main(int argc, char **argv)
{
    veil_omp_passive_wait(argv); /* OMP_WAIT_POLICY=passive unless set: may execute the program again */
#ifdef __GLIBC__
    /* Deep computations (encrypted training at N = 2^16) allocate and free blocks of many megabytes again and
     * again: keep freed memory in the process (glibc would map each block above its threshold afresh and
     * fault its pages in again, a third of the time at that size). The program's choice, not the library's. */
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
    bench_config cfg = {0, veil_threads_default()};
    const char *suite = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) cfg.quick = 1;
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            char *end;
            long t = strtol(argv[++i], &end, 10);
            if (*end || t < 1 || t > 1024) {
                fprintf(stderr, "veil-bench: bad thread count '%s'\n", argv[i]);
                return 2;
            }
            cfg.threads = (int)t;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (argv[i][0] != '-' && !suite) suite = argv[i];
        else {
            fprintf(stderr, "veil-bench: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!suite) {
        usage(stderr);
        return 2;
    }
    if (strcmp(suite, "ring") == 0) return bench_ring(&cfg);
    if (strcmp(suite, "ckks") == 0) return bench_ckks(&cfg);
    if (strcmp(suite, "precision") == 0) return bench_precision(&cfg);
    if (strcmp(suite, "bgv") == 0) return bench_bgv(&cfg);
    if (strcmp(suite, "ml") == 0) return bench_ml(&cfg);
    if (strcmp(suite, "serve") == 0) return bench_serve(&cfg);
    if (strcmp(suite, "train") == 0) return bench_train(&cfg);
    if (strcmp(suite, "cnn") == 0) return bench_cnn(&cfg);
    if (strcmp(suite, "estimates") == 0) return bench_estimates(&cfg);
    if (strcmp(suite, "party") == 0) return bench_party(&cfg);
    if (strcmp(suite, "boot") == 0) return bench_boot(&cfg);
    if (strcmp(suite, "threshold") == 0) return bench_threshold(&cfg);
    fprintf(stderr, "veil-bench: unknown suite '%s'\n", suite);
    return 2;
}
