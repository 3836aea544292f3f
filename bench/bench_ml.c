/*
 * The ML benchmark: the logistic regression of the peers' figures (30 standardized features, sigmoid as
 * 0.5 + 0.15012 z - 0.0015930 z^3 evaluated on the server), with automatically chosen parameters:
 *   ml_lr_throughput  8192 samples per call (throughput packing): server time for the whole batch;
 *   ml_lr_latency     one sample (latency packing): server time for it;
 *   ml_lr_throughput_encrypted_weights  the same batch with the model's weights encrypted under the data
 *                     owner's public key (veil_model_encrypt; ciphertext-by-ciphertext products), and its
 *                     time against the model in the clear (vs_clear).
 * Keys and encryption are the client's and not timed here; the evaluator is made once (as a server would).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench.h"
#include "veil/veil.h"
#include "ml/ml_plan.h"

#define FEATURES 30

void bench_eval_run(void *p)
{
    bench_eval_case *c = p;
    veil_ciphertexts *out = NULL;
    veil_evaluator_run(c->ev, &out, c->in, NULL, NULL, NULL);
    veil_ciphertexts_free(out);
}

static double gauss(unsigned *state)
{
    double u = 0;
    for (int i = 0; i < 12; i++) u += (double)(*state = *state * 1103515245u + 12345u) / 4294967296.0;
    return u - 6.0;
}

/* x [batch, 30] -> Gemm(w, b) -> Sigmoid, evaluated on the server as the peers' degree-3 polynomial. */
static veil_model *lr_model(veil_error *errp)
{
    veil_error err = {0};
    veil_graph g = {0};
    double w[FEATURES], b = 0.1;
    unsigned s = 12345;
    for (int i = 0; i < FEATURES; i++) w[i] = 0.3 * gauss(&s);
    int64_t in_dims[2] = {-1, FEATURES}, w_dims[2] = {1, FEATURES}, b_dims[1] = {1};
    const char *gemm_in[3] = {"x", "w", "b"}, *sig_in[1] = {"logit"};
    CHECK(veil_graph_add_input(&g, "x", in_dims, 2, &err));
    CHECK(veil_graph_add_init(&g, "w", w, w_dims, 2, &err));
    CHECK(veil_graph_add_init(&g, "b", &b, b_dims, 1, &err));
    CHECK(veil_graph_add_node(&g, "Gemm", gemm_in, 3, "logit", "transB", 1, &err));
    CHECK(veil_graph_add_node(&g, "Sigmoid", sig_in, 1, "p", NULL, 0, &err));
    CHECK(veil_graph_add_output(&g, "p", &err));
    veil_model_options opts = {.server_sigmoid = 1};
    veil_model *m = NULL;
    const char *tag = "bench-lr-30";
    CHECK(veil_model_from_graph(&m, &g, (const uint8_t *)tag, strlen(tag), NULL, 0, &opts, &err));
    (void)errp;
    return m;
}

/*
 * The throughput row again with the weights encrypted (docs/marketplace.md): the model owner's file, loaded by
 * the server with the eval keys; checked against the plaintext program as the row in the clear is.
 */
static void bench_encrypted_weights(const veil_model *m, const veil_keyset *ks, const veil_eval_keys *ek,
                                    const veil_ciphertexts *in, const double *x, size_t samples, int threads,
                                    double budget, double clear_us)
{
    veil_error err = {0};
    veil_buffer b = {0};
    veil_model *em = NULL;
    CHECK(veil_model_encrypt(&b, m, ek, NULL, &err));
    const size_t model_bytes = b.len;
    CHECK(veil_model_load_encrypted(&em, ek, b.data, b.len, &err));
    veil_buffer_free(&b);
    bench_eval_case c = {.in = (veil_ciphertexts *)in};
    CHECK(veil_evaluator_new(&c.ev, em, ek, (size_t)threads, &err));
    veil_ciphertexts *out = NULL, *mine = NULL;
    CHECK(veil_evaluator_run(c.ev, &out, in, NULL, NULL, &err));
    CHECK(veil_ciphertexts_save(&b, out, &err));
    CHECK(veil_ciphertexts_load(&mine, ks, NULL, b.data, b.len, &err));
    veil_buffer_free(&b);
    double *y = malloc(samples * sizeof *y), worst = 0;
    CHECK(veil_ciphertexts_decrypt(y, NULL, ks, mine, &err));
    for (size_t r = 0; r < samples; r++) {
        double ref;
        CHECK(veil_program_run_plain(&m->program, x + r * FEATURES, &ref, &err));
        worst = fmax(worst, fabs(ref - y[r]));
    }
    bench_result res = bench_time(bench_eval_run, &c, budget);
    veil_plan_info info = {0};
    char extra[256];
    snprintf(extra, sizeof extra,
             ",\"packing\":\"throughput\",\"samples\":%zu,\"features\":%d,\"us_per_sample\":%.3f,"
             "\"max_error\":%.3g,\"model_bytes\":%zu,\"vs_clear\":%.2f",
             samples, FEATURES, res.us_min / (double)samples, worst, model_bytes, res.us_min / clear_us);
    (void)info;
    bench_emit("ml_lr_throughput_encrypted_weights", veil_params_degree(ek->params),
               veil_context_max_level(ek->ctx) + 1, threads, res, extra);
    free(y);
    veil_ciphertexts_free(out);
    veil_ciphertexts_free(mine);
    veil_evaluator_free(c.ev);
    veil_model_free(em);
}

static void bench_packing(veil_model *m, veil_packing packing, size_t samples, int threads, double budget)
{
    veil_error err = {0};
    veil_plan *plan = NULL;
    veil_plan_request req = {.packing = packing, .batch = packing == VEIL_PACKING_THROUGHPUT ? samples : 0};
    CHECK(veil_model_plan(&plan, m, &req, &err));
    veil_plan_info info;
    veil_plan_get_info(plan, &info);
    veil_keyset *ks = NULL;
    veil_eval_keys *ek = NULL;
    CHECK(veil_keyset_generate(&ks, &ek, plan, NULL, NULL, NULL, &err));
    double *x = malloc(samples * FEATURES * sizeof *x);
    unsigned s = 777;
    /* standardized features: within [-1, 1], the range the default plan bounds the model for */
    for (size_t i = 0; i < samples * FEATURES; i++) x[i] = gauss(&s) / 6.0;
    veil_ciphertexts *client = NULL;
    CHECK(veil_ciphertexts_encrypt(&client, ks, x, samples, NULL, &err));
    /* the server's copy, loaded with its keys, as veil eval does */
    veil_buffer b = {0};
    bench_eval_case c = {0};
    CHECK(veil_ciphertexts_save(&b, client, &err));
    CHECK(veil_ciphertexts_load(&c.in, NULL, ek, b.data, b.len, &err));
    veil_buffer_free(&b);
    CHECK(veil_evaluator_new(&c.ev, m, ek, (size_t)threads, &err));

    /* correctness of what is timed: the decrypted result against the same polynomial in plaintext */
    veil_ciphertexts *out = NULL;
    CHECK(veil_evaluator_run(c.ev, &out, c.in, NULL, NULL, &err));
    CHECK(veil_ciphertexts_save(&b, out, &err));
    veil_ciphertexts *mine = NULL;
    CHECK(veil_ciphertexts_load(&mine, ks, NULL, b.data, b.len, &err));
    veil_buffer_free(&b);
    double *y = malloc(samples * sizeof *y), worst = 0;
    CHECK(veil_ciphertexts_decrypt(y, NULL, ks, mine, &err));
    for (size_t r = 0; r < samples; r++) {
        double ref;
        CHECK(veil_program_run_plain(&m->program, x + r * FEATURES, &ref, &err));
        worst = fmax(worst, fabs(ref - y[r]));
    }

    bench_result res = bench_time(bench_eval_run, &c, budget);
    char extra[256];
    snprintf(extra, sizeof extra,
             ",\"packing\":\"%s\",\"samples\":%zu,\"features\":%d,\"us_per_sample\":%.3f,\"depth\":%zu,"
             "\"scale_bits\":%u,\"log_qp\":%u,\"rotation_keys\":%zu,\"max_error\":%.3g,\"estimated_us\":%.0f",
             packing == VEIL_PACKING_LATENCY ? "latency" : "throughput", samples, FEATURES,
             res.us_min / (double)samples, info.depth, info.scale_bits, info.log_qp, info.rotations, worst,
             info.estimated_seconds * 1e6);
    bench_emit(packing == VEIL_PACKING_LATENCY ? "ml_lr_latency" : "ml_lr_throughput", info.n, info.q_count, threads,
               res, extra);
    if (packing == VEIL_PACKING_THROUGHPUT)
        bench_encrypted_weights(m, ks, ek, c.in, x, samples, threads, budget, res.us_min);
    free(x);
    free(y);
    veil_ciphertexts_free(out);
    veil_ciphertexts_free(mine);
    veil_ciphertexts_free(client);
    veil_ciphertexts_free(c.in);
    veil_evaluator_free(c.ev);
    veil_keyset_free(ks);
    veil_eval_keys_free(ek);
    veil_plan_free(plan);
}

int bench_ml(const bench_config *cfg)
{
    veil_error err = {0};
    veil_model *m = lr_model(&err);
    const double budget = cfg->quick ? 0.3 : 3.0;
    const char *only = getenv("VEIL_BENCH_ML_ONLY"); /* "throughput" or "latency": one packing (for profiling) */
    if (!only || strcmp(only, "latency") != 0)
        bench_packing(m, VEIL_PACKING_THROUGHPUT, cfg->quick ? 1024 : 8192, cfg->threads, budget);
    if (!only || strcmp(only, "throughput") != 0) bench_packing(m, VEIL_PACKING_LATENCY, 1, cfg->threads, budget);
    veil_model_free(m);
    return 0;
}
