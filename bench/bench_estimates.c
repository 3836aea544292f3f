/*
 * The plan's time estimate against the measured server time (`veil-bench estimates`): small networks of
 * the shapes Veil is used for, each in both packings, with the parameters their plans choose:
 *   lin10   10 -> 1, nothing else (a linear regression, depth 1);
 *   lr30    30 -> 1, then the server-side degree-3 sigmoid (the peers' logistic regression, depth 3);
 *   mlp64   64 -> 32, square, -> 10 (the digits MLP);
 *   mlp196  196 -> 64, square, -> 10 (a wider first layer: the latency packing's lanes).
 * One line per case (op "estimate"): estimated_us (veil_plan_info.estimated_seconds), the measured minimum
 * (us_min) and median of veil_evaluator_run on one batch (throughput) or one sample (latency), and their
 * ratio measured / estimated. Single-thread figures: VEIL_THREADS=1 taskset -c 1 veil-bench estimates --threads 1.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench.h"
#include "veil/veil.h"
#include "ml/ml_plan.h"

typedef struct shape {
    const char *name;
    size_t widths[4]; /* input, hidden..., output; 0 ends */
    int square;        /* a square after the first layer */
    int sigmoid;       /* a final Sigmoid evaluated on the server */
} shape;

static const shape shapes[] = {
    {"lin10", {10, 1, 0, 0}, 0, 0},
    {"lr30", {30, 1, 0, 0}, 0, 1},
    {"mlp64", {64, 32, 10, 0}, 1, 0},
    {"mlp196", {196, 64, 10, 0}, 1, 0},
};

static double uniform(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (double)(*s >> 8) / (double)(1u << 24) * 2.0 - 1.0;
}

/* Gemm layers with random weights (|w| about 1/sqrt(fan-in)), a square after the first if asked. */
static veil_model *build(const shape *sh)
{
    veil_error err = {0};
    veil_graph g = {0};
    unsigned s = 99;
    size_t layers = 0;
    while (layers + 1 < 4 && sh->widths[layers + 1]) layers++;
    int64_t in_dims[2] = {-1, (int64_t)sh->widths[0]};
    CHECK(veil_graph_add_input(&g, "x", in_dims, 2, &err));
    char prev[16] = "x";
    for (size_t l = 0; l < layers; l++) {
        const size_t n = sh->widths[l], m = sh->widths[l + 1];
        double *w = malloc(n * m * sizeof *w), *b = malloc(m * sizeof *b);
        for (size_t i = 0; i < n * m; i++) w[i] = uniform(&s) / sqrt((double)n);
        for (size_t i = 0; i < m; i++) b[i] = 0.1 * uniform(&s);
        char wn[16], bn[16], out[16], act[16];
        snprintf(wn, sizeof wn, "w%zu", l);
        snprintf(bn, sizeof bn, "b%zu", l);
        snprintf(out, sizeof out, "h%zu", l);
        int64_t wd[2] = {(int64_t)m, (int64_t)n}, bd[1] = {(int64_t)m};
        CHECK(veil_graph_add_init(&g, wn, w, wd, 2, &err));
        CHECK(veil_graph_add_init(&g, bn, b, bd, 1, &err));
        const char *gin[3] = {prev, wn, bn};
        CHECK(veil_graph_add_node(&g, "Gemm", gin, 3, out, "transB", 1, &err));
        snprintf(prev, sizeof prev, "%s", out);
        if (l == 0 && sh->square && layers > 1) {
            snprintf(act, sizeof act, "a%zu", l);
            const char *sq[2] = {prev, prev};
            CHECK(veil_graph_add_node(&g, "Mul", sq, 2, act, NULL, 0, &err));
            snprintf(prev, sizeof prev, "%s", act);
        }
        free(w);
        free(b);
    }
    if (sh->sigmoid) {
        const char *sin[1] = {prev};
        CHECK(veil_graph_add_node(&g, "Sigmoid", sin, 1, "p", NULL, 0, &err));
        snprintf(prev, sizeof prev, "p");
    }
    CHECK(veil_graph_add_output(&g, prev, &err));
    veil_model_options opts = {.server_sigmoid = sh->sigmoid};
    veil_model *m = NULL;
    CHECK(veil_model_from_graph(&m, &g, (const uint8_t *)sh->name, strlen(sh->name), NULL, 0, &opts, &err));
    return m;
}

static void bench_case(const shape *sh, veil_model *m, veil_packing packing, int threads, double budget)
{
    veil_error err = {0};
    veil_plan *plan = NULL;
    veil_plan_request req = {.packing = packing, .have_range = 1, .range_lo = -1, .range_hi = 1};
    CHECK(veil_model_plan(&plan, m, &req, &err));
    veil_plan_info info;
    veil_plan_get_info(plan, &info);
    veil_keyset *ks = NULL;
    veil_eval_keys *ek = NULL;
    CHECK(veil_keyset_generate(&ks, &ek, plan, NULL, NULL, NULL, &err));
    const size_t rows = packing == VEIL_PACKING_LATENCY ? 1 : info.batch, w = sh->widths[0];
    double *x = malloc(rows * w * sizeof *x);
    unsigned s = 7;
    for (size_t i = 0; i < rows * w; i++) x[i] = 0.9 * uniform(&s);
    bench_eval_case c = {0};
    CHECK(veil_ciphertexts_encrypt(&c.in, ks, x, rows, NULL, &err));
    CHECK(veil_evaluator_new(&c.ev, m, ek, (size_t)threads, &err));
    veil_ciphertexts *first = NULL; /* one checked run: a failing evaluation is never timed */
    CHECK(veil_evaluator_run(c.ev, &first, c.in, NULL, NULL, &err));
    veil_ciphertexts_free(first);
    bench_result r = bench_time(bench_eval_run, &c, budget);
    const double est = info.estimated_seconds * 1e6;
    char extra[320];
    snprintf(extra, sizeof extra,
             ",\"model\":\"%s\",\"packing\":\"%s\",\"samples\":%zu,\"depth\":%zu,\"dnum\":%zu,\"special\":%zu,"
             "\"rotation_keys\":%zu,\"estimated_us\":%.0f,\"ratio\":%.2f",
             sh->name, packing == VEIL_PACKING_LATENCY ? "latency" : "throughput", rows, info.depth, info.dnum,
             info.p_count, info.rotations, est, r.us_min / est);
    bench_emit("estimate", info.n, info.q_count, threads, r, extra);
    free(x);
    veil_ciphertexts_free(c.in);
    veil_evaluator_free(c.ev);
    veil_eval_keys_free(ek);
    veil_keyset_free(ks);
    veil_plan_free(plan);
}

int bench_estimates(const bench_config *cfg)
{
    const double budget = cfg->quick ? 0.3 : 2.0;
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        veil_model *m = build(&shapes[i]);
        bench_case(&shapes[i], m, VEIL_PACKING_THROUGHPUT, cfg->threads, budget);
        bench_case(&shapes[i], m, VEIL_PACKING_LATENCY, cfg->threads, budget);
        veil_model_free(m);
    }
    return 0;
}
