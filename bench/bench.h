/* Shared helpers of veil-bench: timing and JSON-lines output. */
#ifndef VEIL_BENCH_H
#define VEIL_BENCH_H

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

/* Aborts the benchmark with the failing call and its detail (expects a veil_error named err in scope). */
#define CHECK(call)                                                                                  \
    do {                                                                                             \
        veil_status s_ = (call);                                                                     \
        if (s_ != VEIL_OK) {                                                                         \
            fprintf(stderr, "veil-bench: %s failed: %s (%s)\n", #call, veil_strerror(s_), err.detail); \
            exit(1);                                                                                 \
        }                                                                                            \
    } while (0)

typedef struct bench_config {
    int quick;   /* fewer sizes and repetitions */
    int threads; /* thread count given to contexts */
} bench_config;

typedef void (*bench_fn)(void *arg);

typedef struct bench_result {
    double us_median, us_min;
    int reps;
} bench_result;

/* Runs fn(arg) repeatedly (after a warm-up) for about `budget_s` seconds, at least 5 times. */
bench_result bench_time(bench_fn fn, void *arg, double budget_s);

/* One encrypted evaluation for bench_time: bench_eval_run(&(bench_eval_case){ev, in}) (bench_ml.c). */
typedef struct bench_eval_case {
    struct veil_evaluator *ev;
    struct veil_ciphertexts *in;
} bench_eval_case;
void bench_eval_run(void *arg);

/* Prints one JSON object on its own line; extra is either NULL or ',"key":value...' appended verbatim. */
void bench_emit(const char *op, size_t n, size_t limbs, int threads, bench_result r, const char *extra);

int bench_ring(const bench_config *cfg);
int bench_ckks(const bench_config *cfg);
int bench_precision(const bench_config *cfg);
int bench_bgv(const bench_config *cfg);
int bench_ml(const bench_config *cfg);
int bench_serve(const bench_config *cfg);
int bench_train(const bench_config *cfg);
int bench_cnn(const bench_config *cfg);
int bench_estimates(const bench_config *cfg);
int bench_party(const bench_config *cfg);
int bench_boot(const bench_config *cfg);

#endif
