/*
 * The training benchmark: logistic regression on the iDASH 2017 shape (1,579 records, 18 features) by
 * Nesterov's accelerated gradient, 7 iterations, degree-3 sigmoid, 128-bit security:
 *   train_logistic  the server's whole training (seconds), with the AUC of the decrypted model beside the
 *                   AUC of the same algorithm in float64, the largest weight difference, key generation and
 *                   encryption times (the data owner's), the evaluation keys' size and the memory peak.
 * The data: VEIL_BENCH_TRAIN_CSV (a CSV whose last column is the 0/1 label, such as the one
 * examples/training/make_idash.py writes), else a synthetic set of that shape (a fixed seed).
 * VEIL_BENCH_TRAIN_ITERATIONS: another iteration count (7 by default); past what a leveled 128-bit set holds,
 * the plan bootstraps the weights (docs/training.md): "bootstraps" counts them, "cpu_s" is the process's CPU
 * time for the training (the fairer figure on a loaded machine), and the evaluation keys' size is the plan's
 * (exact; the bundle is not built in memory beside the keys).
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include "bench.h"
#include "veil/veil.h"

#define ROWS 1579
#define FEATURES 18
#define ITERATIONS 7

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The share of records whose score's sign matches the label. */
static double accuracy(const double *score, const double *label, size_t n)
{
    size_t ok = 0;
    for (size_t i = 0; i < n; i++) ok += (score[i] > 0) == (label[i] > 0.5);
    return n ? (double)ok / (double)n : 0;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double gauss(unsigned *state)
{
    double u = 0;
    for (int i = 0; i < 12; i++) u += (double)(*state = *state * 1103515245u + 12345u) / 4294967296.0;
    return u - 6.0;
}

/* Features on different scales; labels drawn from a logistic model of a few of them (AUC about 0.8). */
static void synthetic(double *x, double *y)
{
    unsigned s = 2017;
    for (size_t r = 0; r < ROWS; r++) {
        double z = -0.2;
        for (size_t j = 0; j < FEATURES; j++) {
            const double v = gauss(&s);
            x[r * FEATURES + j] = 10.0 * (double)j + v * (1.0 + (double)(j % 5));
            if (j % 3 == 0) z += (j % 2 ? -0.6 : 0.8) * v;
        }
        const double u = (double)(s = s * 1103515245u + 12345u) / 4294967296.0;
        y[r] = u < 1.0 / (1.0 + exp(-z));
    }
}

/* The AUC of scores against 0/1 labels: the probability that a positive outranks a negative. */
static double auc(const double *score, const double *label, size_t n)
{
    double pairs = 0, wins = 0;
    for (size_t i = 0; i < n; i++) {
        if (label[i] < 0.5) continue;
        for (size_t j = 0; j < n; j++) {
            if (label[j] > 0.5) continue;
            pairs++;
            wins += score[i] > score[j] ? 1.0 : score[i] == score[j] ? 0.5 : 0.0;
        }
    }
    return pairs ? wins / pairs : 0;
}

static void scores(double *out, const double *w, const double *x, size_t rows, size_t features)
{
    for (size_t r = 0; r < rows; r++) {
        out[r] = w[0];
        for (size_t j = 0; j < features; j++) out[r] += w[1 + j] * x[r * features + j];
    }
}

int bench_train(const bench_config *cfg)
{
    veil_error err = {0};
    size_t rows = ROWS, features = FEATURES;
    double *x = NULL, *y = NULL;
    const char *csv = getenv("VEIL_BENCH_TRAIN_CSV");
    if (csv && *csv) {
        double *all = NULL;
        size_t width = 0;
        CHECK(veil_csv_read(csv, 0, &all, &rows, &width, &err));
        if (width < 2) {
            fprintf(stderr, "veil-bench: %s needs features and a label column\n", csv);
            return 1;
        }
        features = width - 1;
        x = malloc(rows * features * sizeof *x);
        y = malloc(rows * sizeof *y);
        for (size_t r = 0; r < rows; r++) {
            memcpy(x + r * features, all + r * width, features * sizeof *x);
            y[r] = all[r * width + features];
        }
        free(all);
    } else {
        x = malloc(rows * features * sizeof *x);
        y = malloc(rows * sizeof *y);
        synthetic(x, y);
    }
    char threads[16];
    snprintf(threads, sizeof threads, "%d", cfg->threads);
    setenv("VEIL_THREADS", threads, 1); /* the contexts of the keys below */

    const char *it_env = getenv("VEIL_BENCH_TRAIN_ITERATIONS");
    const int iterations = it_env && atoi(it_env) > 0 ? atoi(it_env) : ITERATIONS;
    veil_train_request req = {.task = VEIL_TRAIN_LOGISTIC, .features = features, .iterations = (size_t)iterations,
                              .degree = 3};
    veil_plan *plan = NULL;
    CHECK(veil_train_plan(&plan, &req, &err));
    veil_plan_info info;
    veil_plan_get_info(plan, &info);
    veil_keyset *ks = NULL;
    veil_eval_keys *ek = NULL;
    double t0 = now();
    CHECK(veil_keyset_generate(&ks, &ek, plan, NULL, NULL, NULL, &err));
    const double keygen_s = now() - t0;
    veil_train_info ti;
    CHECK(veil_plan_get_train_info(plan, &ti, &err));
    size_t eval_bytes = (size_t)info.eval_key_bytes;
    if (!ti.bootstrap_level) {
        veil_buffer eb = {0};
        CHECK(veil_eval_keys_save(&eb, ek, &err));
        eval_bytes = eb.len;
        veil_buffer_free(&eb);
    }
    veil_ciphertexts *data = NULL, *model = NULL;
    t0 = now();
    CHECK(veil_train_encrypt(&data, ks, x, y, rows, NULL, &err));
    const double encrypt_s = now() - t0;
    veil_train_options opts = {.iterations = (size_t)iterations, .threads = (size_t)cfg->threads};
    t0 = now();
    const double c0 = cpu_now();
    CHECK(veil_train_run(&model, ek, data, &opts, NULL, NULL, &err));
    const double train_s = now() - t0, train_cpu_s = cpu_now() - c0;
    double *w = calloc(features + 1, sizeof *w), *wp = calloc(features + 1, sizeof *wp), tmax = 0;
    double *sc = malloc(rows * sizeof *sc), *scp = malloc(rows * sizeof *scp);
    CHECK(veil_train_decrypt(w, ks, model, &err));
    CHECK(veil_train_run_plain(wp, &req, &opts, x, y, rows, &tmax, &err));
    double diff = 0;
    for (size_t j = 0; j <= features; j++) diff = fmax(diff, fabs(w[j] - wp[j]) / fmax(1.0, fabs(wp[j])));
    scores(sc, w, x, rows, features);
    scores(scp, wp, x, rows, features);
    double score_diff = 0; /* what the model computes: z = w.x + b on every record */
    for (size_t r = 0; r < rows; r++) score_diff = fmax(score_diff, fabs(sc[r] - scp[r]) / fmax(1.0, fabs(scp[r])));
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    /* the plan's estimate: per iteration and ciphertext of records */
    const double estimated_s = info.estimated_seconds * iterations * (double)((rows + info.batch - 1) / info.batch);
    char extra[900];
    snprintf(extra, sizeof extra,
             ",\"rows\":%zu,\"features\":%zu,\"iterations\":%d,\"degree\":3,\"seconds\":%.3f,\"estimated_s\":%.3f,\"auc\":%.4f,"
             "\"auc_plain\":%.4f,\"max_weight_diff\":%.3g,\"max_score_diff\":%.3g,\"t_max\":%.2f,\"keygen_s\":%.2f,\"encrypt_s\":%.2f,"
             "\"eval_key_bytes\":%zu,\"peak_rss_bytes\":%ld,\"scale_bits\":%u,\"dnum\":%zu,\"special_primes\":%zu,"
             "\"cpu_s\":%.3f,\"accuracy\":%.4f,\"accuracy_plain\":%.4f,\"bootstraps\":%zu,\"bootstrap_level\":%zu",
             rows, features, iterations, train_s, estimated_s, auc(sc, y, rows), auc(scp, y, rows), diff, score_diff, tmax, keygen_s, encrypt_s,
             eval_bytes, ru.ru_maxrss * 1024L, info.scale_bits, info.dnum, info.p_count, train_cpu_s,
             accuracy(sc, y, rows), accuracy(scp, y, rows), veil_train_bootstraps(&ti, (size_t)iterations),
             ti.bootstrap_level);
    bench_result r = {train_s * 1e6, train_s * 1e6, 1};
    bench_emit("train_logistic", info.n, info.q_count, cfg->threads, r, extra);
    free(w);
    free(wp);
    free(sc);
    free(scp);
    free(x);
    free(y);
    veil_ciphertexts_free(model);
    veil_ciphertexts_free(data);
    veil_eval_keys_free(ek);
    veil_keyset_free(ks);
    veil_plan_free(plan);
    return 0;
}
